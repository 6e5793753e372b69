/* pyrepr.c — see pyrepr.h. */
#include "model/pyrepr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One UTF-8 code point at s (n bytes left); its length in *len. Invalid
 * bytes come back as themselves, one at a time. */
static unsigned decode(const unsigned char *s, size_t n, size_t *len)
{
	unsigned c = s[0];
	size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (need == 1 || need > n) {
		*len = 1;
		return c;
	}
	unsigned cp = c & (0x3f >> (need - 1));
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*len = 1;
			return c;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	*len = need;
	return cp;
}

/* Python's str.isprintable() for the code points that matter in practice:
 * controls, the Latin-1 gap, soft hyphen and the separators it escapes. */
static int printable(unsigned cp)
{
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad)
		return 0;
	if (cp == 0x2028 || cp == 0x2029 || (cp >= 0x200b && cp <= 0x200f) || cp == 0xfeff)
		return 0;
	return 1;
}

void py_repr_str(sb_t *sb, const char *s, size_t n)
{
	int has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
	char quote = has_single && !has_double ? '"' : '\'';
	sb_addc(sb, quote);
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t len;
		unsigned cp = decode(p, (size_t)(end - p), &len);
		if (cp == (unsigned char)quote || cp == '\\') {
			sb_addc(sb, '\\');
			sb_addc(sb, (char)cp);
		} else if (cp == '\n') {
			sb_adds(sb, "\\n");
		} else if (cp == '\r') {
			sb_adds(sb, "\\r");
		} else if (cp == '\t') {
			sb_adds(sb, "\\t");
		} else if (!printable(cp)) {
			if (cp <= 0xff)
				sb_addf(sb, "\\x%02x", cp);
			else
				sb_addf(sb, "\\u%04x", cp);
		} else {
			sb_add(sb, p, len);
		}
		p += len;
	}
	sb_addc(sb, quote);
}

/* repr(float): the shortest digits that read back the same, printed in
 * fixed notation for exponents -4..15 and in scientific one otherwise. */
static void py_repr_float(sb_t *sb, double d)
{
	if (isnan(d)) {
		sb_adds(sb, "nan");
		return;
	}
	if (isinf(d)) {
		sb_adds(sb, d < 0 ? "-inf" : "inf");
		return;
	}
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* buf: [-]D[.DDD]e[+-]XX */
	char digits[24];
	size_t nd = 0;
	const char *p = buf;
	int neg = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	digits[nd] = '\0';
	int exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	if (neg)
		sb_addc(sb, '-');
	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			sb_adds(sb, "0.");
			for (int i = -1; i > exp; i--)
				sb_addc(sb, '0');
			sb_adds(sb, digits);
		} else if ((size_t)exp + 1 >= nd) {
			sb_adds(sb, digits);
			for (size_t i = nd; i < (size_t)exp + 1; i++)
				sb_addc(sb, '0');
			sb_adds(sb, ".0");
		} else {
			sb_add(sb, digits, (size_t)exp + 1);
			sb_addc(sb, '.');
			sb_adds(sb, digits + exp + 1);
		}
	} else {
		sb_addc(sb, digits[0]);
		if (nd > 1) {
			sb_addc(sb, '.');
			sb_adds(sb, digits + 1);
		}
		sb_addf(sb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
}

void py_repr_json(sb_t *sb, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		int first = 1;
		sb_addc(sb, '{');
		json_object_foreach(v, k, x) {
			if (!first)
				sb_adds(sb, ", ");
			first = 0;
			py_repr_str(sb, k, strlen(k));
			sb_adds(sb, ": ");
			py_repr_json(sb, x);
		}
		sb_addc(sb, '}');
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;
		sb_addc(sb, '[');
		json_array_foreach(v, i, x) {
			if (i)
				sb_adds(sb, ", ");
			py_repr_json(sb, x);
		}
		sb_addc(sb, ']');
		break;
	}
	case JSON_STRING:
		py_repr_str(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		sb_addf(sb, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		py_repr_float(sb, json_real_value(v));
		break;
	case JSON_TRUE:
		sb_adds(sb, "True");
		break;
	case JSON_FALSE:
		sb_adds(sb, "False");
		break;
	case JSON_NULL:
		sb_adds(sb, "None");
		break;
	}
}

void py_str_json(sb_t *sb, json_t *v)
{
	if (json_is_string(v))
		sb_add(sb, json_string_value(v), json_string_length(v));
	else
		py_repr_json(sb, v);
}

void py_repr_keys(sb_t *sb, json_t *obj)
{
	const char *k;
	json_t *x;
	int first = 1;
	sb_addc(sb, '[');
	json_object_foreach(obj, k, x) {
		if (!first)
			sb_adds(sb, ", ");
		first = 0;
		py_repr_str(sb, k, strlen(k));
	}
	sb_addc(sb, ']');
}

const char *py_type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "dict";
	case JSON_ARRAY:
		return "list";
	case JSON_STRING:
		return "str";
	case JSON_INTEGER:
		return "int";
	case JSON_REAL:
		return "float";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	case JSON_NULL:
		break;
	}
	return "NoneType";
}

/* ---- pathlib.PurePosixPath ---- */

/* The root ("", "/" or "//") and the components of s, joined by "/" into
 * parts; *last is the offset in parts of the last component (or -1). */
static const char *path_split(const char *s, sb_t *parts, long *last)
{
	const char *root = "";
	if (s[0] == '/')
		root = s[1] == '/' && s[2] != '/' ? "//" : "/";
	*last = -1;
	const char *p = s;
	while (*p) {
		while (*p == '/')
			p++;
		const char *b = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - b);
		if (len == 0 || (len == 1 && b[0] == '.'))
			continue;
		if (parts->len)
			sb_addc(parts, '/');
		*last = (long)parts->len;
		sb_add(parts, b, len);
	}
	return root;
}

void py_path_str(sb_t *sb, const char *s)
{
	sb_t parts = SB_INIT;
	long last;
	const char *root = path_split(s, &parts, &last);
	if (!*root && !parts.len)
		sb_addc(sb, '.');
	sb_adds(sb, root);
	sb_add(sb, parts.buf, parts.len);
	sb_release(&parts);
}

void py_path_parent(sb_t *sb, const char *s)
{
	sb_t parts = SB_INIT;
	long last;
	const char *root = path_split(s, &parts, &last);
	/* the parent of a root (or of ".") is itself */
	size_t keep = last <= 0 ? 0 : (size_t)last - 1;
	if (!*root && keep == 0)
		sb_addc(sb, '.');
	sb_adds(sb, root);
	sb_add(sb, parts.buf, keep);
	sb_release(&parts);
}

void py_path_name(sb_t *sb, const char *s)
{
	sb_t parts = SB_INIT;
	long last;
	path_split(s, &parts, &last);
	if (last >= 0)
		sb_adds(sb, parts.buf + last);
	sb_release(&parts);
}
