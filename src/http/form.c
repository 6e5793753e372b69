/* form.c — see form.h. The multipart reader follows RFC 7578 as browsers
 * and python clients (httpx, requests) write it: parts separated by
 * "--boundary" lines, each with CRLF-terminated headers, a blank line and
 * its bytes; the closing delimiter is "--boundary--". */
#include "http/form.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

static char *urldecode(arena_t *a, const char *s, size_t n, size_t *outlen)
{
	char *out = arena_alloc(a, n + 1), *w = out;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*w++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
			   hexval((unsigned char)s[i + 2]) >= 0) {
			*w++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	if (outlen)
		*outlen = (size_t)(w - out);
	return out;
}

static void add_field(http_req_t *req, http_form_t *out, int *cap, http_form_field_t f)
{
	if (out->n == *cap) {
		int ncap = *cap ? *cap * 2 : 8;
		http_form_field_t *nf = arena_alloc(&req->arena, (size_t)ncap * sizeof(*nf));
		if (out->n)
			memcpy(nf, out->f, (size_t)out->n * sizeof(*nf));
		out->f = nf;
		*cap = ncap;
	}
	out->f[out->n++] = f;
}

static void parse_urlencoded(http_req_t *req, http_form_t *out)
{
	const char *p = req->body.buf, *end = p + req->body.len;
	int cap = 0;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		if (stop > p) {
			http_form_field_t f = { 0 };
			const char *kend = eq ? eq : stop;
			f.name = urldecode(&req->arena, p, (size_t)(kend - p), NULL);
			f.data = eq ? urldecode(&req->arena, eq + 1, (size_t)(stop - eq - 1), &f.len)
				    : arena_strdup(&req->arena, "");
			add_field(req, out, &cap, f);
		}
		p = stop + 1;
	}
}

static const void *memmem_(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	return memmem(hay, hlen, needle, nlen);
}

/* The value of parameter `key` (name, filename, boundary) in a header
 * value such as `form-data; name="file"; filename="a.whl"`; arena copy or
 * NULL. The value is read parameter by parameter, each quoted string as a
 * whole (with its backslash escapes), so that a ';' or `name=` inside a
 * quoted value (a field called `x; name=y`) is not taken for a parameter,
 * as python-multipart (Starlette's reader) reads it. */
static char *header_param(arena_t *a, const char *v, size_t vlen, const char *key)
{
	size_t klen = strlen(key);
	const char *end = v + vlen;
	/* past the first token (form-data, multipart/form-data) */
	const char *p = memchr(v, ';', vlen);
	while (p && p < end) {
		p++; /* the ';' */
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		const char *name = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		size_t nlen = (size_t)(p - name);
		while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
			nlen--;
		if (p >= end || *p == ';')
			continue; /* a parameter without a value */
		p++; /* the '=' */
		sb_t s = SB_INIT;
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				sb_addc(&s, *p);
			}
			if (p < end)
				p++; /* the closing quote */
			while (p < end && *p != ';')
				p++;
		} else {
			const char *q = p;
			while (p < end && *p != ';' && *p != ' ' && *p != '\t')
				p++;
			sb_add(&s, q, (size_t)(p - q));
			while (p < end && *p != ';')
				p++;
		}
		if (nlen == klen && !strncasecmp(name, key, klen)) {
			char *r = arena_strndup(a, s.buf, s.len);
			sb_release(&s);
			return r;
		}
		sb_release(&s);
	}
	return NULL;
}

static int parse_multipart(http_req_t *req, const char *ctype, http_form_t *out, const char **why)
{
	const char *boundary = header_param(&req->arena, ctype, strlen(ctype), "boundary");
	if (!boundary || !*boundary) {
		*why = "Missing boundary in multipart.";
		return -1;
	}
	char *delim = arena_printf(&req->arena, "--%s", boundary);
	size_t dlen = strlen(delim);
	const char *body = req->body.buf, *end = body + req->body.len;
	const char *p = memmem_(body, req->body.len, delim, dlen);
	int cap = 0;
	if (!p) {
		*why = "There was an error parsing the body";
		return -1;
	}
	for (;;) {
		p += dlen;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return 0; /* closing delimiter */
		/* the rest of the delimiter line */
		const char *eol = memmem_(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			break;
		p = eol + 2;
		http_form_field_t f = { 0 };
		/* headers */
		for (;;) {
			eol = memmem_(p, (size_t)(end - p), "\r\n", 2);
			if (!eol)
				goto bad;
			if (eol == p) {
				p += 2;
				break;
			}
			const char *colon = memchr(p, ':', (size_t)(eol - p));
			if (colon && (size_t)(colon - p) == 19 && !strncasecmp(p, "Content-Disposition", 19)) {
				const char *v = colon + 1;
				f.name = header_param(&req->arena, v, (size_t)(eol - v), "name");
				f.filename = header_param(&req->arena, v, (size_t)(eol - v), "filename");
			}
			p = eol + 2;
		}
		/* the part's bytes run up to CRLF + delimiter */
		char *crlf_delim = arena_printf(&req->arena, "\r\n%s", delim);
		const char *next = memmem_(p, (size_t)(end - p), crlf_delim, dlen + 2);
		if (!next)
			goto bad;
		if (f.name) {
			f.len = (size_t)(next - p);
			f.data = arena_strndup(&req->arena, p, f.len);
			add_field(req, out, &cap, f);
		}
		p = next + 2;
	}
bad:
	*why = "There was an error parsing the body";
	return -1;
}

int http_form_parse(http_req_t *req, http_form_t *out, const char **why)
{
	out->f = NULL;
	out->n = 0;
	const char *ctype = http_header(req, "Content-Type");
	if (!ctype || !req->body.len)
		return 0;
	size_t tlen = strcspn(ctype, "; ");
	if (tlen == 33 && !strncasecmp(ctype, "application/x-www-form-urlencoded", 33)) {
		parse_urlencoded(req, out);
		return 0;
	}
	if (tlen == 19 && !strncasecmp(ctype, "multipart/form-data", 19))
		return parse_multipart(req, ctype, out, why);
	return 0;
}

const http_form_field_t *http_form_get(const http_form_t *form, const char *name)
{
	for (int i = form->n - 1; i >= 0; i--)
		if (!strcmp(form->f[i].name, name))
			return &form->f[i];
	return NULL;
}
