/* test_pep440.c — src/util/pep440.c against what packaging 23's Version
 * says (the expectations were printed by it): PEP 440's own ordering
 * example, the spellings that normalise to the same version, the strings it
 * refuses, and upstream's sort key with unparsable strings first. */
#include <stdlib.h>

#include "unit.h"
#include "util/pep440.h"

static int cmp(const char *a, const char *b)
{
	pep440_t x, y;
	if (pep440_parse(a, &x) || pep440_parse(b, &y))
		return 99;
	int c = pep440_cmp(&x, &y);
	return c < 0 ? -1 : c > 0;
}

static int valid(const char *s)
{
	pep440_t v;
	return pep440_parse(s, &v) == 0;
}

static int sort_cmp(const void *a, const void *b)
{
	return pep440_sort_cmp(*(const char *const *)a, *(const char *const *)b);
}

int main(void)
{
	/* PEP 440's example order, plus an epoch */
	static const char *order[] = {
		"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
		"1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5",
		"1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1", "2!0.1",
	};
	size_t n = sizeof(order) / sizeof(*order);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (cmp(order[i], order[j]) != (i < j ? -1 : i > j)) {
				unit_fail(__FILE__, __LINE__, "PEP 440 order");
				fprintf(stderr, "    %s vs %s: %d\n", order[i], order[j], cmp(order[i], order[j]));
			}
	unit_checks++;

	/* equal spellings */
	static const char *same[][2] = {
		{ "1.0", "1.0.0" }, { "1.0", "v1.0" }, { "1.0RC1", "1.0rc1" }, { "1.0-1", "1.0.post1" },
		{ "1.01", "1.1" }, { "1.0c1", "1.0rc1" }, { "1.0alpha1", "1.0a1" }, { "1.0.pre2", "1.0rc2" },
		{ "1.0rev3", "1.0.post3" }, { "  1.0\n", "1.0" }, { "1.0a", "1.0a0" }, { "1.0.dev", "1.0.dev0" },
		{ "0!1.0", "1.0" }, { "1.0+ABC", "1.0+abc" }, { "1.0+a-b_c", "1.0+a.b.c" }, { "1.0+1", "1.0+01" },
		{ "1.0_a1", "1.0a1" }, { "1.0-dev1", "1.0.dev1" }, { "1.0beta", "1.0b0" }, { "1.0.post", "1.0.post0" },
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(*same); i++)
		if (!CHECK(cmp(same[i][0], same[i][1]) == 0))
			fprintf(stderr, "    %s vs %s\n", same[i][0], same[i][1]);
	/* numbers longer than any integer type, as Python's ints */
	CHECK_INT(cmp("100000000000000000000001", "100000000000000000000000"), 1);
	CHECK_INT(cmp("1.0.99999999999999999999", "1.0.100000000000000000000"), -1);

	static const char *invalid[] = {
		"", "1.0.", "a1.0", "1.0+", "1.0++a", "1..0", "1.0-", "1.0a1a2", "v", "1.0 1", "1!", "1.0+a..b", "1.0_1",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(*invalid); i++)
		if (!CHECK(!valid(invalid[i])))
			fprintf(stderr, "    accepted '%s'\n", invalid[i]);
	CHECK(valid("01"));

	/* upstream's _version_sort_key: NULL, then unparsable by code point, then versions */
	const char *list[] = { "1.10", "zeta", "1.9", NULL, "1.0rc1", "Alpha", "2!0.1", "1.0" };
	const char *want[] = { NULL, "Alpha", "zeta", "1.0rc1", "1.0", "1.9", "1.10", "2!0.1" };
	qsort(list, 8, sizeof(*list), sort_cmp);
	for (int i = 0; i < 8; i++)
		CHECK_STR(list[i], want[i]);
	return unit_done("pep440");
}
