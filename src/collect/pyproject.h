/* pyproject.h — upstream's simplify_pyproject_toml (tasks/v2/utils_pixi.py)
 * for a pixi package's pyproject.toml, done on the text instead of through
 * a TOML parser and writer: the platforms of [tool.pixi.workspace] and
 * [tool.pixi.project] become [<platform>], [tool.pixi.environments] keeps
 * only <environment>, [tool.pixi.tasks] goes away; every other line stays
 * as written. It handles the layouts pixi documents (one table per
 * section, values possibly over several lines); tables written inline
 * (`pixi = { ... }`) are left as they are. */
#ifndef COLLECT_PYPROJECT_H
#define COLLECT_PYPROJECT_H

#include "util/sb.h"

/* 0 with the new text appended to out (the input unchanged when it has no
 * [tool.pixi...] table), or -1 with the reason in why. */
int pyproject_simplify(const char *text, const char *environment, const char *platform, sb_t *out, sb_t *why);

#endif
