/* form.h — HTML form bodies: application/x-www-form-urlencoded and
 * multipart/form-data (file uploads), read from the request body that the
 * server has already collected (the body limit applies as for JSON).
 *
 * Everything lives in the request arena: field values are NUL-terminated
 * copies (a file's bytes too, with an extra NUL that len excludes). */
#ifndef HTTP_FORM_H
#define HTTP_FORM_H

#include <stddef.h>

#include "http/http.h"

typedef struct http_form_field {
	const char *name;
	const char *filename;  /* the part's filename= (file uploads), else NULL */
	const char *data;
	size_t len;
} http_form_field_t;

typedef struct http_form {
	http_form_field_t *f;
	int n;
} http_form_t;

/* Parses the body by its Content-Type; any other type (or an empty body)
 * gives an empty form, as Starlette does. Returns 0, or -1 with a static
 * reason in *why when a multipart body is malformed. */
int http_form_parse(http_req_t *req, http_form_t *out, const char **why);

/* The last field with that name (Starlette keeps the last), or NULL. */
const http_form_field_t *http_form_get(const http_form_t *form, const char *name);

#endif
