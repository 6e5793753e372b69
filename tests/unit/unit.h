/* unit.h — what the C unit tests share: CHECK() and its typed variants
 * report file:line and what differed, count the failure and go on;
 * unit_done() prints the tally and is main's return value (0: all passed).
 * Each test program includes this once; it has no other dependency.
 * The suite: meson.build's test() targets, run by scripts/test.sh. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_checks, unit_failures;

static int unit_fail(const char *file, int line, const char *what)
{
	unit_failures++;
	fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
	return 0;
}

#define CHECK(cond) \
	(unit_checks++, (cond) ? 1 : unit_fail(__FILE__, __LINE__, #cond))

#define CHECK_INT(got, want)                                                                   \
	do {                                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);                       \
		unit_checks++;                                                                 \
		if (g_ != w_) {                                                                \
			unit_fail(__FILE__, __LINE__, #got " == " #want);                      \
			fprintf(stderr, "    got %lld, want %lld\n", g_, w_);                     \
		}                                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                                   \
	do {                                                                                   \
		const char *g_ = (got), *w_ = (want);                                          \
		unit_checks++;                                                                 \
		if (!g_ || !w_ ? g_ != w_ : strcmp(g_, w_) != 0) {                             \
			unit_fail(__FILE__, __LINE__, #got " == " #want);                      \
			fprintf(stderr, "    got  %s\n    want %s\n", g_ ? g_ : "(null)",        \
				w_ ? w_ : "(null)");                                           \
		}                                                                              \
	} while (0)

static int unit_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
