/* fuzz_pyrepr.c — libFuzzer target for model/pyrepr.c.
 *
 * The input is used three ways: as a string (valid UTF-8 only, as Python's
 * str is), whose repr() is read back with Python's escape rules and must
 * give the same text; as JSON, whose repr() must be valid UTF-8 and whose
 * floats must read back as the same double; and as a path, where
 * str(PurePosixPath(str(p))) == str(p) and parent / name rebuild str(p). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/pyrepr.h"

/* The length of the valid UTF-8 sequence at s, or 0 (overlongs,
 * surrogates and code points past U+10FFFF are not valid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!need || need > n)
		return 0;
	unsigned cp = need == 1 ? c : c & (0x3f >> (need - 1));
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

static int valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0, l; i < n; i += l)
		if (!(l = utf8_len((const unsigned char *)s + i, n - i)))
			return 0;
	return 1;
}

static void put_utf8(sb_t *sb, unsigned cp)
{
	if (cp < 0x80) {
		sb_addc(sb, (char)cp);
	} else if (cp < 0x800) {
		sb_addc(sb, (char)(0xc0 | cp >> 6));
		sb_addc(sb, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		sb_addc(sb, (char)(0xe0 | cp >> 12));
		sb_addc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		sb_addc(sb, (char)(0x80 | (cp & 0x3f)));
	} else {
		sb_addc(sb, (char)(0xf0 | cp >> 18));
		sb_addc(sb, (char)(0x80 | ((cp >> 12) & 0x3f)));
		sb_addc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		sb_addc(sb, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A Python string literal (quoted, with the escapes repr() writes) read
 * back into out; 0 when it is not one. */
static int unrepr(const char *r, size_t n, sb_t *out)
{
	if (n < 2 || (r[0] != '\'' && r[0] != '"') || r[n - 1] != r[0])
		return 0;
	char q = r[0];
	for (size_t i = 1; i < n - 1; i++) {
		if (r[i] == q)
			return 0; /* an unescaped quote inside */
		if (r[i] != '\\') {
			sb_addc(out, r[i]);
			continue;
		}
		if (++i >= n - 1)
			return 0;
		char c = r[i];
		if (c == '\\' || c == '\'' || c == '"') {
			sb_addc(out, c);
		} else if (c == 'n' || c == 'r' || c == 't') {
			sb_addc(out, c == 'n' ? '\n' : c == 'r' ? '\r' : '\t');
		} else if (c == 'x' || c == 'u' || c == 'U') {
			size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			if (i + digits >= n - 1)
				return 0;
			char hex[9] = { 0 };
			memcpy(hex, r + i + 1, digits);
			char *endp;
			unsigned long cp = strtoul(hex, &endp, 16);
			if (*endp)
				return 0;
			put_utf8(out, (unsigned)cp);
			i += digits;
		} else {
			return 0;
		}
	}
	return 1;
}

static void check_floats(json_t *v)
{
	if (json_is_real(v)) {
		sb_t r = SB_INIT;
		py_repr_json(&r, v);
		assert(strtod(r.buf, NULL) == json_real_value(v));
		/* Python writes a float with a '.', an 'e', or as inf/nan */
		assert(strpbrk(r.buf, ".e") || strstr(r.buf, "inf") || strstr(r.buf, "nan"));
		sb_release(&r);
		return;
	}
	size_t i;
	json_t *x;
	const char *k;
	if (json_is_array(v))
		json_array_foreach(v, i, x)
			check_floats(x);
	if (json_is_object(v))
		json_object_foreach(v, k, x)
			check_floats(x);
}

static void check_paths(const char *s)
{
	sb_t str = SB_INIT, again = SB_INIT, parent = SB_INIT, name = SB_INIT, join = SB_INIT;
	py_path_str(&str, s);
	py_path_str(&again, str.buf);
	assert(!strcmp(str.buf, again.buf));
	py_path_parent(&parent, s);
	py_path_name(&name, s);
	assert(!strchr(name.buf ? name.buf : "", '/'));
	if (name.len) {
		if (strcmp(parent.buf, ".")) {
			sb_adds(&join, parent.buf);
			if (parent.buf[parent.len - 1] != '/')
				sb_addc(&join, '/');
		}
		sb_adds(&join, name.buf);
		assert(!strcmp(join.buf, str.buf));
	} else {
		/* a root or ".": its own parent */
		assert(!strcmp(parent.buf, str.buf));
	}
	sb_release(&str);
	sb_release(&again);
	sb_release(&parent);
	sb_release(&name);
	sb_release(&join);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	sb_t r = SB_INIT, back = SB_INIT;
	py_repr_str(&r, s, size); /* any bytes: no crash */
	if (valid_utf8(s, size)) {
		assert(valid_utf8(r.buf, r.len));
		assert(unrepr(r.buf, r.len, &back));
		assert(back.len == size && !memcmp(back.buf ? back.buf : "", s, size));
	}
	sb_release(&r);
	sb_release(&back);

	json_t *v = fuzz_json(data, size);
	if (v) {
		sb_t j = SB_INIT;
		py_repr_json(&j, v);
		assert(valid_utf8(j.buf, j.len));
		sb_reset(&j);
		py_str_json(&j, v);
		if (json_is_object(v)) {
			sb_reset(&j);
			py_repr_keys(&j, v);
			assert(j.buf[0] == '[' && j.buf[j.len - 1] == ']');
		}
		assert(py_type_name(v));
		sb_release(&j);
		check_floats(v);
		json_decref(v);
	}

	char *p = malloc(size + 1);
	memcpy(p, data, size);
	p[size] = '\0';
	check_paths(p);
	free(p);
	return 0;
}
