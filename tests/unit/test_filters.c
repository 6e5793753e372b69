/* test_filters.c — src/model/filters.c: the JSON-tree matching against the
 * one table of cases in filter_cases.json (its path is argv[1]; tests/test_projects.py runs the same table through the
 * images query route, test_imgindex.c through the index), then Python's ==
 * on scalars and the type-filter merge. */
#include <jansson.h>
#include <stdlib.h>

#include "model/filters.h"
#include "unit.h"

/* The matching zarr_urls, comma-separated, for one case. */
static void matches(sb_t *out, json_t *images, json_t *tf, json_t *af)
{
	size_t i;
	json_t *img;
	sb_reset(out);
	json_array_foreach(images, i, img) {
		if (filters_match(img, tf, af)) {
			if (out->len)
				sb_addc(out, ',');
			sb_adds(out, json_string_value(json_object_get(img, "zarr_url")));
		}
	}
}

static void table_cases(const char *path)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	if (!CHECK(doc != NULL)) {
		fprintf(stderr, "    %s: %s\n", path, jerr.text);
		return;
	}
	json_t *images = json_object_get(doc, "images"), *cases = json_object_get(doc, "cases");
	CHECK(json_array_size(images) > 0 && json_array_size(cases) > 0);
	sb_t want = SB_INIT, got = SB_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		json_t *tf = json_array_get(c, 0), *af = json_array_get(c, 1), *exp = json_array_get(c, 2);
		sb_reset(&want);
		size_t k;
		json_t *z;
		json_array_foreach(exp, k, z) {
			if (k)
				sb_addc(&want, ',');
			sb_adds(&want, json_string_value(z));
		}
		matches(&got, images, tf, af);
		if (strcmp(got.buf, want.buf)) {
			char *s = json_dumps(c, JSON_COMPACT);
			unit_fail(__FILE__, __LINE__, "JSON-tree form");
			fprintf(stderr, "    case %zu %s\n    got  [%s]\n", i, s, got.buf);
			free(s);
		}
		unit_checks++;
		/* the two halves agree with the whole */
		json_t *img;
		json_array_foreach(images, k, img)
			CHECK(filters_match(img, tf, af) ==
			      (filters_match_types(img, tf) && filters_match_attributes(img, af)));
	}
	sb_release(&want);
	sb_release(&got);
	json_decref(doc);
}

static int eq(const char *a, const char *b)
{
	json_t *x = json_loads(a, JSON_DECODE_ANY, NULL), *y = json_loads(b, JSON_DECODE_ANY, NULL);
	int r = filters_value_eq(x, y);
	json_decref(x);
	json_decref(y);
	return r;
}

static void value_eq(void)
{
	CHECK(eq("1", "1"));
	CHECK(eq("1", "1.0"));
	CHECK(eq("1.0", "1"));
	CHECK(eq("true", "1"));
	CHECK(eq("1.0", "true"));
	CHECK(eq("false", "0"));
	CHECK(eq("false", "-0.0"));
	CHECK(!eq("true", "2"));
	CHECK(eq("\"a\"", "\"a\""));
	CHECK(!eq("\"a\"", "\"A\""));
	CHECK(!eq("\"1\"", "1"));
	CHECK(!eq("1", "\"1\""));
	CHECK(!eq("0", "null"));
	CHECK(eq("null", "null"));
	CHECK(!eq("0.1", "0.10000000000000002"));
	/* exact, as Python compares int and float: 2**53 + 1 is not 2.0**53 */
	CHECK(eq("9007199254740992", "9007199254740992.0"));
	CHECK(!eq("9007199254740993", "9007199254740992.0"));
	CHECK(!eq("9007199254740993", "9007199254740992"));
	CHECK(!eq("9223372036854775807", "9.2233720368547758e18"));
	CHECK(!eq("[1]", "[1]"));
	/* a missing attribute is None: only a None filter value would match it */
	json_t *img = json_loads("{\"attributes\": {}, \"types\": {}}", 0, NULL);
	json_t *af = json_loads("{\"x\": [null]}", 0, NULL);
	CHECK(filters_match_attributes(img, af));
	/* the unboxed form */
	json_t *one = json_integer(1), *s = json_string("a");
	CHECK(filters_value_eq_scalar(one, FILTERS_REAL, 0, 1.0, NULL, 0));
	CHECK(filters_value_eq_scalar(one, FILTERS_INT, 1, 0, NULL, 0));
	CHECK(!filters_value_eq_scalar(one, FILTERS_STR, 0, 0, "1", 1));
	CHECK(filters_value_eq_scalar(s, FILTERS_STR, 0, 0, "a", 1));
	CHECK(!filters_value_eq_scalar(s, FILTERS_STR, 0, 0, "ab", 2));
	CHECK(!filters_value_eq_scalar(one, FILTERS_REAL, 0, 9007199254740992.0, NULL, 0));
	CHECK(!filters_value_eq_scalar(one, FILTERS_OTHER, 1, 1, NULL, 0));
	CHECK(filters_value_eq_scalar(json_null(), FILTERS_NULL, 0, 0, NULL, 0));
	json_decref(one);
	json_decref(s);
	json_decref(af);
	json_decref(img);
}

static void merge_case(const char *in, const char *wf, const char *want, const char *want_err)
{
	json_t *a = json_loads(in, 0, NULL), *b = json_loads(wf, 0, NULL);
	sb_t err = SB_INIT;
	json_t *m = filters_merge_types(a, b, &err);
	char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
	CHECK_STR(s, want);
	CHECK_STR(err.buf, want_err ? want_err : "");
	free(s);
	json_decref(m);
	json_decref(a);
	json_decref(b);
	sb_release(&err);
}

static void merge(void)
{
	merge_case("{}", "{}", "{}", NULL);
	merge_case("{\"a\": true}", "{}", "{\"a\":true}", NULL);
	merge_case("{}", "{\"a\": false}", "{\"a\":false}", NULL);
	/* the task's keys first, then the workflow task's new ones */
	merge_case("{\"b\": true, \"a\": false}", "{\"c\": true, \"a\": false}",
		   "{\"b\":true,\"a\":false,\"c\":true}", NULL);
	merge_case("{\"a\": true, \"b\": true}", "{\"b\": false}", NULL,
		   "Cannot merge type filters `{'a': True, 'b': True}` (from task) and "
		   "`{'b': False}` (from workflowtask).");
	/* the message is appended to what err holds */
	json_t *a = json_loads("{\"x\": false}", 0, NULL), *b = json_loads("{\"x\": true}", 0, NULL);
	sb_t err = SB_INIT;
	sb_adds(&err, "Original error: ");
	CHECK(filters_merge_types(a, b, &err) == NULL);
	CHECK_STR(err.buf, "Original error: Cannot merge type filters `{'x': False}` (from task) and "
			   "`{'x': True}` (from workflowtask).");
	sb_release(&err);
	json_decref(a);
	json_decref(b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s filter_cases.json\n", argv[0]);
		return 2;
	}
	table_cases(argv[1]);
	value_eq();
	merge();
	return unit_done("filters");
}
