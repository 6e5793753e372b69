/* openapi.h — the OpenAPI 3.1 document of the API, generated from the route
 * table (api/routes.c) and the shapes declared in api/openapi_models.c, and
 * the pages that show it (/docs, /redoc), as FastAPI serves them.
 *
 * Shapes are written once in a small notation, turned into JSON Schema by
 * openapi_build():
 *   a model       fields separated by spaces, "name:type" (required) or
 *                 "name?:type" (optional); "! " first: extra fields are
 *                 refused (pydantic's extra='forbid'); "^Base " first: Base's
 *                 fields, then these (a field of the same name replaces
 *                 Base's); "= type" instead of fields: an alias of a type
 *   a type        int, num, str, str+ (at least one character), bool, any,
 *                 dt (an ISO 8601 date-time), email, obj (any object),
 *                 null, pos (int >= 1), nonneg (int >= 0),
 *                 enum(a,b,...) (strings), a model's name (a $ref), [T] (a
 *                 list), {T} (an object of T values), (T,U) (a tuple),
 *                 T|U (either; "T|null" is pydantic's "T | None")
 * Every route of the table (but the pages below, .hidden) has exactly one
 * api_op_t; openapi_build() refuses a route without one, an operation
 * without its route and a reference to an undeclared model, so that the
 * document cannot drift from the table silently. tests/test_openapi.py
 * checks the result with a real OpenAPI validator and checks the suite's
 * real answers against it (tests/conftest.py). */
#ifndef API_OPENAPI_H
#define API_OPENAPI_H

#include "http/http.h"
#include "util/sb.h"

typedef struct api_model {
	const char *name;
	const char *def;
} api_model_t;

typedef struct api_op {
	const char *method;
	const char *pattern;
	int status;            /* the success status */
	const char *query;     /* query parameters, as a model's fields; NULL: none */
	const char *body;      /* the JSON body's type; NULL: none */
	const char *form;      /* a form body: model name (urlencoded); NULL: none */
	const char *multipart; /* a multipart/form-data body: model name */
	const char *resp;      /* the success answer's type; NULL: no body */
	const char *media;     /* the answer's media type when not JSON (a file) */
	const char *summary;
} api_op_t;

extern const api_model_t api_models[]; /* ends with { 0 } */
extern const api_op_t api_ops[];       /* ends with { 0 } */

/* The document as compact JSON into out; 0, or -1 with why in err. */
int openapi_build(sb_t *out, sb_t *err);

/* GET /openapi.json, /docs, /docs/oauth2-redirect, /redoc (AUTH_NONE). */
void api_openapi_json(http_req_t *req);
void api_docs(http_req_t *req);
void api_docs_oauth2_redirect(http_req_t *req);
void api_redoc(http_req_t *req);

#endif
