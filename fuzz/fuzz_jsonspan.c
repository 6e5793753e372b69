/* fuzz_jsonspan.c — libFuzzer target for util/jsonspan.c: the member scan
 * of a stored JSON object and the nesting-depth check of request bodies.
 *
 * Beyond "no crash, no out-of-bounds read" on any text, it checks what the
 * functions promise:
 * - on any text, every span the scan finds lies inside the text;
 * - on the texts the scan is meant for (an object jansson wrote, compact or
 *   with PostgreSQL's ", " and ": " spacing), it finds each chosen member
 *   and the span reads back as the member's value;
 * - on valid JSON without repeated keys, json_text_too_deep() says "too deep" exactly when the
 *   parsed tree is deeper than the limit, and json_array_count() is the parsed
 *   array's length (0 for another value). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char *const keys[] = { "a", "id", "name", "task_list", "", NULL };
#define NKEYS (sizeof(keys) / sizeof(keys[0]) - 1)

static int tree_depth(json_t *v)
{
	int d = 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *m;
		json_object_foreach(v, k, m) {
			int md = tree_depth(m);
			if (md > d)
				d = md;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m) {
			int md = tree_depth(m);
			if (md > d)
				d = md;
		}
		return d + 1;
	}
	return 0;
}

/* Scans s (NUL-terminated); checks the spans' bounds and returns rc. */
static int scan(const char *s, const char **vals, size_t *lens)
{
	size_t n = strlen(s);
	int rc = json_object_spans(s, keys, vals, lens);
	if (rc == 0)
		for (size_t k = 0; k < NKEYS; k++)
			if (vals[k])
				assert(vals[k] >= s && vals[k] + lens[k] <= s + n);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *vals[NKEYS];
	size_t lens[NKEYS];

	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	scan(s, vals, lens);
	long count = json_array_count(s);

	/* the text's depth is the tree's when no member is given twice (a
	 * repeated key's earlier value is in the text, not in the tree) */
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	/* on valid JSON (without a NUL, where the scan stops), the count is
	 * the array's length, or 0 for another value */
	if (v && strlen(s) == size)
		assert(count == (long)(json_is_array(v) ? json_array_size(v) : 0));
	free(s);
	for (int max = 0; max <= 6; max += 3) {
		size_t pos = 0;
		int got = json_text_too_deep((const char *)data, size, max, &pos);
		if (v)
			assert(got == (tree_depth(v) > max));
		if (got)
			assert(pos < size && (data[pos] == '[' || data[pos] == '{'));
	}
	if (json_is_object(v)) {
		const size_t flags[] = { JSON_COMPACT, 0 };
		for (size_t f = 0; f < 2; f++) {
			char *t = json_dumps(v, flags[f] | JSON_ENCODE_ANY);
			assert(t);
			assert(scan(t, vals, lens) == 0);
			for (size_t k = 0; k < NKEYS; k++) {
				json_t *want = json_object_get(v, keys[k]);
				assert(!want == !vals[k]);
				if (!want)
					continue;
				json_t *got = json_loadb(vals[k], lens[k], JSON_DECODE_ANY, NULL);
				assert(got && json_equal(got, want));
				json_decref(got);
			}
			free(t);
		}
	}
	json_decref(v);
	return 0;
}
