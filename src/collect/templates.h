/* templates.h — the bash scripts of task collection and of the task-group
 * lifecycle, compiled into the binary and written as they are next to the
 * task group. Where upstream's have __NAME__ placeholders replaced by the
 * values, ours read FRACTAL_NAME environment variables (and the pinned
 * versions as arguments) that collect/steps.c passes to bash, so that no
 * value is ever parsed as shell (docs/security.md). Their output lines, and
 * the labels that pip.c and pixi.c parse from the pip-show and pixi
 * post-install scripts, are upstream's. */
#ifndef COLLECT_TEMPLATES_H
#define COLLECT_TEMPLATES_H

typedef struct collect_template {
	const char *name;   /* upstream's file name, e.g. "1_create_venv.sh" */
	const char *text;
} collect_template_t;

extern const collect_template_t tpl_create_venv, tpl_pip_install, tpl_pip_freeze, tpl_pip_show,
	tpl_pip_install_from_freeze, tpl_pixi_extract, tpl_pixi_install, tpl_pixi_post_install;

#endif
