/* pep440.h — version strings as Python's packaging.version.Version reads
 * and orders them (PEP 440): an optional "v", an epoch "N!", the release
 * "1.2.3", a pre-release (a/alpha, b/beta, rc/c/pre/preview), a
 * post-release (post/rev/r, or "-N"), a dev release and a local part
 * "+abc.1", each with packaging's optional separators, case-insensitive,
 * surrounding whitespace allowed.
 *
 * Upstream orders task-group versions with it (GET /api/v2/task-group/)
 * and picks the latest PyPI release and the version-update candidates.
 * Numbers are compared as digit strings, so they may be arbitrarily long as
 * Python's ints are. A parsed version points into the string it came from
 * and allocates nothing. */
#ifndef PEP440_H
#define PEP440_H

#include <stddef.h>

typedef struct pep440_num {
	const char *d;   /* digits with leading zeros skipped; NULL or empty: 0 */
	size_t n;
} pep440_num_t;

typedef struct pep440 {
	pep440_num_t epoch;
	const char *release;    /* "1.02.3" as written (digits and dots) */
	size_t release_len;
	int pre;                /* 0 none, 1 a, 2 b, 3 rc */
	pep440_num_t pre_n;
	int has_post;
	pep440_num_t post_n;
	int has_dev;
	pep440_num_t dev_n;
	const char *local;      /* after '+', as written; NULL if none */
	size_t local_len;
} pep440_t;

/* 0 and *v filled when s is a valid version, -1 when packaging would raise
 * InvalidVersion. */
int pep440_parse(const char *s, pep440_t *v);

/* <0, 0, >0 as Version(a) <, ==, > Version(b). */
int pep440_cmp(const pep440_t *a, const pep440_t *b);

/* upstream's _version_sort_key order, ascending: unparsable strings first
 * (by code point, i.e. bytewise on UTF-8), then valid versions in PEP 440
 * order. NULL (no version) sorts before both. */
int pep440_sort_cmp(const char *a, const char *b);

#endif
