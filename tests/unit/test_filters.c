/* test_filters.c — src/model/filters.c: both matching forms (JSON tree and
 * compiled table) against the one table of cases in filter_cases.json (its
 * path is argv[1]; tests/test_projects.py runs the same table through the
 * images query route), then Python's == on scalars, the type-filter merge
 * and the table's type accessors. */
#include <jansson.h>
#include <stdlib.h>

#include "model/filters.h"
#include "unit.h"

/* The matching zarr_urls, comma-separated, for one case in one form. */
static void matches(sb_t *out, json_t *images, const filters_table_t *t, json_t *tf, json_t *af, int compiled)
{
	filters_compiled_t *f = compiled ? filters_compile(t, tf, af) : NULL;
	size_t i;
	json_t *img;
	sb_reset(out);
	json_array_foreach(images, i, img) {
		int ok = compiled ? filters_compiled_match(f, t, i) : filters_match(img, tf, af);
		if (ok) {
			if (out->len)
				sb_addc(out, ',');
			sb_adds(out, json_string_value(json_object_get(img, "zarr_url")));
		}
	}
	filters_compiled_free(f);
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
	filters_table_t t;
	filters_table_init(&t);
	size_t i;
	json_t *c;
	json_array_foreach(images, i, c)
		filters_table_add(&t, c);
	CHECK_INT(filters_table_count(&t), json_array_size(images));
	sb_t want = SB_INIT, got = SB_INIT;
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
		for (int compiled = 0; compiled < 2; compiled++) {
			matches(&got, images, &t, tf, af, compiled);
			if (strcmp(got.buf, want.buf)) {
				char *s = json_dumps(c, JSON_COMPACT);
				unit_fail(__FILE__, __LINE__, compiled ? "compiled form" : "JSON-tree form");
				fprintf(stderr, "    case %zu %s\n    got  [%s]\n", i, s, got.buf);
				free(s);
			}
			unit_checks++;
		}
		/* the two halves of the JSON-tree form agree with the whole */
		json_t *img;
		json_array_foreach(images, k, img)
			CHECK(filters_match(img, tf, af) ==
			      (filters_match_types(img, tf) && filters_match_attributes(img, af)));
	}
	sb_release(&want);
	sb_release(&got);
	filters_table_release(&t);
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
	filters_table_t t;
	filters_table_init(&t);
	filters_table_add(&t, img);
	filters_compiled_t *f = filters_compile(&t, NULL, af);
	CHECK(filters_compiled_match(f, &t, 0));
	filters_compiled_free(f);
	filters_table_release(&t);
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

static void type_accessors(void)
{
	filters_table_t t;
	filters_table_init(&t);
	CHECK_INT(filters_type_count(&t), 0);
	CHECK(filters_type_key(&t, 0) == NULL);
	const char *imgs[] = {
		"{\"zarr_url\": \"/a\", \"types\": {\"3D\": true, \"mip\": false}}",
		"{\"zarr_url\": \"/b\"}",
		"{\"zarr_url\": \"/c\", \"types\": {\"label\": true, \"3D\": false}}",
	};
	for (int i = 0; i < 3; i++) {
		json_t *img = json_loads(imgs[i], 0, NULL);
		filters_table_add(&t, img);
		json_decref(img);
	}
	CHECK_INT(filters_type_count(&t), 3);
	CHECK_STR(filters_type_key(&t, 0), "3D");
	CHECK_STR(filters_type_key(&t, 1), "mip");
	CHECK_STR(filters_type_key(&t, 2), "label");
	CHECK_INT(filters_image_type(&t, 0, 0), 1);
	CHECK_INT(filters_image_type(&t, 0, 1), 0);
	CHECK_INT(filters_image_type(&t, 0, 2), -1);
	CHECK_INT(filters_image_type(&t, 1, 0), -1);
	CHECK_INT(filters_image_type(&t, 2, 0), 0);
	CHECK_INT(filters_image_type(&t, 2, 2), 1);
	/* many images: the table's arrays grow */
	for (int i = 0; i < 1000; i++) {
		json_t *img = json_pack("{s:s, s:{s:i, s:s}, s:{s:b}}", "zarr_url", "/x", "attributes", "n", i,
					"s", i % 2 ? "odd" : "even", "types", "big", i % 3 == 0);
		filters_table_add(&t, img);
		json_decref(img);
	}
	json_t *af = json_loads("{\"s\": [\"odd\"], \"n\": [3, 5, 6, 9]}", 0, NULL);
	json_t *tf = json_loads("{\"big\": true}", 0, NULL);
	filters_compiled_t *f = filters_compile(&t, tf, af);
	int n = 0;
	for (size_t i = 0; i < filters_table_count(&t); i++)
		n += filters_compiled_match(f, &t, i);
	CHECK_INT(n, 2); /* 3 and 9 */
	filters_compiled_free(f);
	json_decref(af);
	json_decref(tf);
	filters_table_release(&t);
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
	type_accessors();
	return unit_done("filters");
}
