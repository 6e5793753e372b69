/* test_jsonspan.c — src/util/jsonspan.c: the spans of chosen members, in
 * any position, with nested values, strings holding braces and escaped
 * quotes, whitespace, and what it refuses as not an object; the nesting
 * depth check, which skips brackets inside strings. */
#include <stdlib.h>

#include "unit.h"
#include "util/jsonspan.h"

static const char *const KEYS[] = { "a", "task_list", "b", NULL };

/* The span of key k, or "(none)" / "(error)", in a static buffer. */
static const char *span(const char *s, int k)
{
	static char buf[256];
	const char *vals[3];
	size_t lens[3];
	if (json_object_spans(s, KEYS, vals, lens))
		return "(error)";
	if (!vals[k])
		return "(none)";
	snprintf(buf, sizeof(buf), "%.*s", (int)lens[k], vals[k]);
	return buf;
}

int main(void)
{
	CHECK_STR(span("{}", 0), "(none)");
	CHECK_STR(span(" { } ", 0), "(none)");
	CHECK_STR(span("{\"a\":1}", 0), "1");
	CHECK_STR(span("{\"a\":1}", 2), "(none)");
	CHECK_STR(span("{\"x\": 1, \"a\" : \"s\" , \"b\":null}", 0), "\"s\"");
	CHECK_STR(span("{\"x\": 1, \"a\" : \"s\" , \"b\":null}", 2), "null");
	CHECK_STR(span("{\"a\": -1.5e3,\n\t\"b\": true}", 0), "-1.5e3");
	CHECK_STR(span("{\"a\": -1.5e3,\n\t\"b\": true}", 2), "true");
	const char *nested = "{\"task_list\": [{\"args\": {\"x\": \"}]\\\"{\"}}, []], \"a\": {\"b\": 2}, \"b\": \"\\\"\"}";
	CHECK_STR(span(nested, 1), "[{\"args\": {\"x\": \"}]\\\"{\"}}, []]");
	CHECK_STR(span(nested, 0), "{\"b\": 2}");
	CHECK_STR(span(nested, 2), "\"\\\"\"");
	/* a key inside a nested object is not a member */
	CHECK_STR(span("{\"x\": {\"a\": 1}}", 0), "(none)");
	/* a longer key with the same prefix is another key */
	CHECK_STR(span("{\"ab\": 1, \"a\": 2}", 0), "2");
	/* the last of repeated keys wins, as with json.loads */
	CHECK_STR(span("{\"a\": 1, \"a\": 2}", 0), "2");
	static const char *bad[] = {
		"", "[]", "1", "\"a\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1", "{\"a\":1,}", "{a:1}",
		"{\"a\":\"open}", "{\"a\":[1,2}", "{\"a\":1 \"b\":2}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (!CHECK(!strcmp(span(bad[i], 0), "(error)")))
			fprintf(stderr, "    accepted '%s'\n", bad[i]);
	size_t pos = 0;
	CHECK(!json_text_too_deep("[[{}]]", 6, 3, &pos));
	CHECK(json_text_too_deep("[[{}]]", 6, 2, &pos) && pos == 2);
	CHECK(json_text_too_deep("{\"a\": [[1]]}", 12, 2, &pos) && pos == 7);
	/* brackets in strings, escaped quotes included, do not count */
	const char *str = "[\"[[[\\\"[[\", {\"{{\": 1}]";
	CHECK(!json_text_too_deep(str, strlen(str), 2, &pos));
	CHECK(json_text_too_deep(str, strlen(str), 1, &pos) && str[pos] == '{');
	/* json_array_count answers what SQLite's json_array_length does */
	CHECK(json_array_count("[]") == 0);
	CHECK(json_array_count(" [ ] ") == 0);
	CHECK(json_array_count("[1]") == 1);
	CHECK(json_array_count("[{\"a\": [1, 2]}, \"],[\", null ,3]") == 4);
	CHECK(json_array_count("{\"a\": [1, 2]}") == 0);
	CHECK(json_array_count("\"x\"") == 0);
	CHECK(json_array_count("7 ") == 0);
	static const char *not_json[] = { "", " ", "[", "[1,]", "[,1]", "[1 2]", "[1]]", "[1] x", "[\"a]", "{\"a\":1" };
	for (size_t i = 0; i < sizeof(not_json) / sizeof(*not_json); i++)
		if (!CHECK(json_array_count(not_json[i]) == -1))
			fprintf(stderr, "    counted '%s'\n", not_json[i]);
	return unit_done("jsonspan");
}
