/* fuzz_form.c — libFuzzer target for http/form.c, the urlencoded and
 * multipart/form-data reader of the login form and task collection's
 * uploads.
 *
 * The first byte chooses the mode:
 * - even: the rest is a Content-Type line and a body (split at the first
 *   '\n'), parsed as the server would; every field must be NUL-terminated
 *   at its length and, for multipart, a slice of the body;
 * - odd: the rest is a list of parts (name, filename, data, split at 0xff
 *   bytes; a name or filename is cleaned of what a client escapes), encoded
 *   the way httpx and browsers write multipart bodies with a boundary that
 *   occurs in no part; the parse must give back exactly those parts.
 *
 * The reader's only outside call is http_header() (server.c, on top of
 * libmicrohttpd): here it answers the Content-Type of the input. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "http/form.h"
#include "util/arena.h"
#include "util/sb.h"

static const char *fuzz_ctype;

const char *http_header(http_req_t *req, const char *name)
{
	(void)req;
	return !strcasecmp(name, "Content-Type") ? fuzz_ctype : NULL;
}

static void check_fields(const http_form_t *form, const sb_t *body, int multipart)
{
	for (int i = 0; i < form->n; i++) {
		const http_form_field_t *f = &form->f[i];
		assert(f->name && f->data && f->data[f->len] == '\0');
		if (multipart)
			assert(f->len <= body->len && memmem(body->buf, body->len, f->data, f->len));
		assert(http_form_get(form, f->name));
	}
}

static void raw(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t clen = nl ? (size_t)(nl - data) : size;
	http_req_t req = { 0 };
	sb_init(&req.body, 0);
	fuzz_ctype = arena_strndup(&req.arena, (const char *)data, clen);
	if (nl)
		sb_add(&req.body, nl + 1, size - clen - 1);
	http_form_t form;
	const char *why = NULL;
	if (http_form_parse(&req, &form, &why) == 0)
		check_fields(&form, &req.body, strncasecmp(fuzz_ctype, "multipart", 9) == 0);
	else
		assert(why && *why);
	sb_release(&req.body);
	arena_free(&req.arena);
}

typedef struct part {
	const char *name, *filename;
	size_t nlen, flen;
	const uint8_t *data;
	size_t len;
} part_t;

/* Appends a name or filename without the bytes a client escapes. */
static void add_clean(sb_t *sb, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("\"\\\r\n", s[i]) && s[i])
			sb_addc(sb, s[i]);
}

static void roundtrip(const uint8_t *data, size_t size)
{
	part_t parts[16];
	int n = 0;
	const uint8_t *p = data, *end = data + size;
	const uint8_t *fields[3];
	size_t lens[3];
	while (p < end && n < 16) {
		for (int k = 0; k < 3; k++) {
			const uint8_t *sep = p < end ? memchr(p, 0xff, (size_t)(end - p)) : NULL;
			const uint8_t *stop = sep ? sep : end;
			fields[k] = p;
			lens[k] = p < end ? (size_t)(stop - p) : 0;
			p = sep ? sep + 1 : end;
		}
		parts[n++] = (part_t){ (const char *)fields[0], (const char *)fields[1], lens[0], lens[1], fields[2],
				       lens[2] };
	}
	http_req_t req = { 0 };
	sb_init(&req.body, 0);
	/* a boundary found in no part (nor across the encoding) */
	char boundary[64];
	sb_t names[16], fnames[16];
	for (int i = 0; i < n; i++) {
		sb_init(&names[i], 0);
		sb_init(&fnames[i], 0);
		add_clean(&names[i], parts[i].name, parts[i].nlen);
		add_clean(&fnames[i], parts[i].filename, parts[i].flen);
	}
	for (unsigned tries = 0;; tries++) {
		snprintf(boundary, sizeof(boundary), "----fuzzboundary%u", tries);
		sb_reset(&req.body);
		for (int i = 0; i < n; i++) {
			sb_addf(&req.body, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, names[i].buf);
			if (fnames[i].len)
				sb_addf(&req.body, "; filename=\"%s\"\r\nContent-Type: application/octet-stream",
					fnames[i].buf);
			sb_adds(&req.body, "\r\n\r\n");
			sb_add(&req.body, parts[i].data, parts[i].len);
			sb_adds(&req.body, "\r\n");
		}
		sb_addf(&req.body, "--%s--\r\n", boundary);
		/* the delimiter must occur exactly where we put it */
		size_t count = 0, dlen = strlen(boundary);
		for (const char *q = req.body.buf; (q = memmem(q, req.body.len - (size_t)(q - req.body.buf), boundary, dlen));
		     q++)
			count++;
		if (count == (size_t)n + 1)
			break;
	}
	fuzz_ctype = arena_printf(&req.arena, "multipart/form-data; boundary=%s", boundary);
	http_form_t form;
	const char *why = NULL;
	int rc = http_form_parse(&req, &form, &why);
	assert(rc == 0);
	assert(form.n == n);
	for (int i = 0; i < n; i++) {
		const http_form_field_t *f = &form.f[i];
		assert(!strcmp(f->name, names[i].buf));
		if (fnames[i].len)
			assert(f->filename && !strcmp(f->filename, fnames[i].buf));
		else
			assert(!f->filename);
		assert(f->len == parts[i].len && !memcmp(f->data, parts[i].data, f->len));
		sb_release(&names[i]);
		sb_release(&fnames[i]);
	}
	sb_release(&req.body);
	arena_free(&req.arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		roundtrip(data + 1, size - 1);
	else
		raw(data + 1, size - 1);
	return 0;
}
