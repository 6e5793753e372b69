/* pypi.h — the package version a pip collection installs, from the index's
 * Simple JSON API (upstream's get_package_version_from_pypi): GET
 * <index>/<normalized name>/ with Accept: application/vnd.pypi.simple.v1+json,
 * 5 s timeout, the "versions" list. The index is https://pypi.org/simple,
 * or FRACTAL_PYPI_SIMPLE_URL (ours, for tests against a local index). */
#ifndef COLLECT_PYPI_H
#define COLLECT_PYPI_H

#include "util/sb.h"

/* 0 and *out (malloc'd): `version` itself when listed, else the last
 * listed version starting with it (plain string order, as upstream), or
 * the newest (PEP 440) when version is NULL. -1 with upstream's 422 detail
 * in msg. */
int pypi_resolve(const char *name, const char *version, char **out, sb_t *msg);

/* normalize_package_name: lower case, runs of "-_." become "-" (malloc'd). */
char *pkg_normalize(const char *name);

#endif
