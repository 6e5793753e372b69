/* jsonspan.c — see jsonspan.h. A scanner, not a validator: it finds where
 * each value ends and trusts the rest (the texts it reads are ones we or
 * PostgreSQL wrote). */
#include "util/jsonspan.h"

#include <string.h>

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at the opening quote; returns past the closing one, or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

/* Returns the end of the value starting at p, or NULL. */
static const char *skip_value(const char *p)
{
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (*p) {
			if (*p == '"') {
				if (!(p = skip_string(p)))
					return NULL;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0)
				return p + 1;
			p++;
		}
		return NULL;
	}
	const char *q = p;
	while (*q && !strchr(",}] \t\r\n", *q))
		q++;
	return q > p ? q : NULL;
}

const char *json_skip_ws(const char *p)
{
	return ws(p);
}

const char *json_skip_value(const char *p)
{
	return skip_value(p);
}

long json_array_count(const char *s)
{
	const char *p = ws(s);
	long n = 0;
	if (*p != '[') {
		p = skip_value(p);
		return p && !*ws(p) ? 0 : -1;
	}
	p = ws(p + 1);
	if (*p != ']')
		for (;;) {
			if (!(p = skip_value(p)))
				return -1;
			n++;
			p = ws(p);
			if (*p == ']')
				break;
			if (*p++ != ',')
				return -1;
			p = ws(p);
		}
	return *ws(p + 1) ? -1 : n;
}

int json_object_spans(const char *s, const char *const *keys, const char **vals, size_t *lens)
{
	int nkeys = 0;
	while (keys[nkeys])
		vals[nkeys++] = NULL;
	const char *p = ws(s);
	if (*p++ != '{')
		return -1;
	p = ws(p);
	if (*p == '}')
		return 0;
	for (;;) {
		if (*p != '"')
			return -1;
		const char *k = p + 1, *ke = skip_string(p);
		if (!ke)
			return -1;
		size_t klen = (size_t)(ke - 1 - k);
		p = ws(ke);
		if (*p++ != ':')
			return -1;
		p = ws(p);
		const char *v = p, *ve = skip_value(p);
		if (!ve)
			return -1;
		for (int i = 0; i < nkeys; i++)
			if (strlen(keys[i]) == klen && !memcmp(keys[i], k, klen)) {
				vals[i] = v;
				lens[i] = (size_t)(ve - v);
			}
		p = ws(ve);
		if (*p == '}')
			return 0;
		if (*p++ != ',')
			return -1;
		p = ws(p);
	}
}

int json_text_too_deep(const char *s, size_t n, int max, size_t *pos)
{
	int depth = 0, in_str = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max) {
				*pos = i;
				return 1;
			}
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 0;
}
