/* test_pyrepr.c — src/model/pyrepr.c against what CPython 3.11 prints
 * (repr() of json.loads(text), str() of pathlib.PurePosixPath). */
#include <jansson.h>
#include <stdlib.h>

#include "model/pyrepr.h"
#include "unit.h"

static sb_t out;

static const char *repr(const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	sb_reset(&out);
	if (!v)
		return "(not JSON)";
	py_repr_json(&out, v);
	json_decref(v);
	return out.buf;
}

static const char *str(const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	sb_reset(&out);
	py_str_json(&out, v);
	json_decref(v);
	return out.buf;
}

typedef void (*path_fn)(sb_t *, const char *);

static const char *path(path_fn f, const char *s)
{
	sb_reset(&out);
	f(&out, s);
	return out.buf;
}

int main(void)
{
	sb_init(&out, 0);
	CHECK_STR(repr("{\"a\": [1, 2.5, true, null], \"b\": \"it's\"}"), "{'a': [1, 2.5, True, None], 'b': \"it's\"}");
	CHECK_STR(repr("[1e16, 1e-05, 0.1, 100.0, 1.5e300, -0.0, 123456789012345678]"),
		  "[1e+16, 1e-05, 0.1, 100.0, 1.5e+300, -0.0, 123456789012345678]");
	CHECK_STR(repr("[0.30000000000000004, 1e15, 123.456, 5e-324]"), "[0.30000000000000004, 1000000000000000.0, 123.456, 5e-324]");
	CHECK_STR(repr("\"a\\\"b'c\""), "'a\"b\\'c'");
	CHECK_STR(repr("\"tab\\tnl\\n\\u00e9\\u0001\\u007f\\\\\""), "'tab\\tnl\\n\xc3\xa9\\x01\\x7f\\\\'");
	CHECK_STR(repr("\"\\u2028x\\ud83d\\ude00\""), "'\\u2028x\xf0\x9f\x98\x80'");
	CHECK_STR(repr("{\"k\\\"ey\": {\"n\": -3}}"), "{'k\"ey': {'n': -3}}");
	CHECK_STR(repr("{}"), "{}");
	CHECK_STR(repr("[]"), "[]");
	CHECK_STR(repr("\"\""), "''");
	CHECK_STR(str("\"it's\""), "it's");
	CHECK_STR(str("[\"a\"]"), "['a']");
	CHECK_STR(str("false"), "False");
	json_t *o = json_loads("{\"x\": 1, \"y'\": 2}", 0, NULL);
	sb_reset(&out);
	py_repr_keys(&out, o);
	CHECK_STR(out.buf, "['x', \"y'\"]");
	json_decref(o);
	sb_reset(&out);
	py_repr_str(&out, "a\0b", 3);
	CHECK_STR(out.buf, "'a\\x00b'");

	json_t *v[] = { json_object(), json_array(), json_string(""), json_integer(1), json_real(1), json_true(), json_null() };
	const char *names[] = { "dict", "list", "str", "int", "float", "bool", "NoneType" };
	for (int i = 0; i < 7; i++) {
		CHECK_STR(py_type_name(v[i]), names[i]);
		json_decref(v[i]);
	}

	/* str(PurePosixPath(s)), .parent, .name */
	static const char *paths[][4] = {
		{ "a//b/./c/", "a/b/c", "a/b", "c" }, { "//x/y", "//x/y", "//x", "y" }, { "///x", "/x", "/", "x" },
		{ "/", "/", "/", "" }, { "", ".", ".", "" }, { "a", "a", ".", "a" }, { "/a/b", "/a/b", "/a", "b" },
		{ ".", ".", ".", "" },
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
		CHECK_STR(path(py_path_str, paths[i][0]), paths[i][1]);
		CHECK_STR(path(py_path_parent, paths[i][0]), paths[i][2]);
		CHECK_STR(path(py_path_name, paths[i][0]), paths[i][3]);
	}
	sb_release(&out);
	return unit_done("pyrepr");
}
