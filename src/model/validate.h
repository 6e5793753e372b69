/* validate.h — request validation the way upstream's FastAPI + pydantic
 * (lax mode) does it, with the same 422 bodies:
 *   {"detail": [{"type", "loc", "msg", "input"[, "ctx"]}, ...]}
 * so that clients that read those errors (fractal-web shows them) work.
 *
 * A route describes its body model as a table of vfield_t and calls
 * v_body(); it gets back a new object holding only the fields that were
 * sent (pydantic's exclude_unset), each coerced to its type (a numeric
 * string for an int, "true" for a bool, a stripped NonEmptyStr, ...), or
 * NULL after the 422 has been answered. Every error of the body is
 * reported at once, in field order, then extra fields, as pydantic does.
 * Path and query parameters have helpers with the same error shapes. */
#ifndef VALIDATE_H
#define VALIDATE_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"

enum vtype {
	V_ANY,         /* any JSON value */
	V_STR,         /* str */
	V_NONEMPTY,    /* NonEmptyStr: stripped, at least 1 character */
	V_INT,         /* int */
	V_NONNEG,      /* NonNegativeInt */
	V_FLOAT,       /* float */
	V_BOOL,        /* bool */
	V_EMAIL,       /* EmailStr (lower-cased domain, as email-validator) */
	V_DICT,        /* dict[str, Any] */
	V_LIST,        /* list[item] */
};

/* A custom check (pydantic's AfterValidator): may replace *val (steal the
 * reference it gets and return a new one); returns NULL on success or an
 * error message (static or in msg) for a "Value error, <msg>". */
typedef const char *(*vcheck_fn)(json_t **val, sb_t *msg);

typedef struct vfield {
	const char *name;
	enum vtype type;
	int required;
	int nullable;            /* "X | None" */
	enum vtype item;         /* V_LIST: the items' type */
	vcheck_fn check;         /* after the type check, or NULL */
	const char *pattern;     /* strings: a POSIX ERE they must match, or NULL */
	int min_length;          /* lists: at least this many items */
} vfield_t;

/* An error list being built. */
typedef struct verr {
	json_t *list;
} verr_t;

void verr_init(verr_t *e);
/* Adds one error; loc is stolen; input borrowed (NULL: JSON null); ctx stolen (may be NULL). */
void verr_add(verr_t *e, const char *type, json_t *loc, const char *msg, json_t *input, json_t *ctx);
/* pydantic's model_attributes_type: a model's input that is not an object
 * (loc stolen, input borrowed, as verr_add). */
void v_add_not_object(verr_t *e, json_t *loc, json_t *input);
/* Answers 422 with the errors (and frees them) if there are any; returns 1 then, else 0. */
int verr_reply(verr_t *e, http_req_t *req);
void verr_free(verr_t *e);

/* Parses and validates the JSON body against fields. Returns a new object
 * (caller decrefs) or NULL after answering 422. */
json_t *v_body(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra);
/* The same, adding the errors to e instead of answering (for routes that
 * report path or query errors in the same 422). Returns the object of the
 * valid fields (caller decrefs), or NULL when the body is missing, not JSON
 * or not an object; check e for errors. */
json_t *v_body_e(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra, verr_t *e);

/* Validates the members of one object (a model nested in a body, or each
 * item of a list body) with errors at base + field (base borrowed). Always
 * returns a new object of the valid fields; check e for errors. */
json_t *v_object(json_t *obj, const vfield_t *fields, int nfields, int forbid_extra, json_t *base, verr_t *e);

/* Validates one value (used by v_body, and by routes with nested models);
 * returns a new reference to the coerced value, or NULL after adding errors
 * at loc (borrowed). */
json_t *v_value(const vfield_t *f, json_t *val, json_t *loc, verr_t *e);

/* Path parameter number idx as an int; 0 or -1 after answering 422. */
int v_path_int(http_req_t *req, int idx, const char *name, int64_t *out);
/* The same, adding the error to e instead of answering: FastAPI reports
 * the errors of path parameters and body in one 422. */
int v_path_int_e(http_req_t *req, int idx, const char *name, int64_t *out, verr_t *e);
/* The JSON body (new reference), or NULL after adding FastAPI's error to
 * e: "missing" at ["body"] for an empty body, "json_invalid" otherwise. */
json_t *v_parse_body(http_req_t *req, verr_t *e);
/* Query parameters: absent leaves *out as is; 0, or -1 after answering 422. */
int v_query_bool(http_req_t *req, const char *name, int *out);
int v_query_int(http_req_t *req, const char *name, int64_t *out, int *present);
/* The same two, adding the error to e instead of answering, since FastAPI
 * reports the errors of every path and query parameter in one 422. The int
 * one adds "missing" when required and absent. */
int v_query_int_e(http_req_t *req, const char *name, int required, int64_t *out, int *present, verr_t *e);
int v_query_bool_e(http_req_t *req, const char *name, int *out, verr_t *e);
/* A required int query parameter (422 "missing" when absent). */
int v_query_int_required(http_req_t *req, const char *name, int64_t *out);
/* An AwareDatetime query parameter, canonicalised into out (40 bytes);
 * out[0] is '\0' when absent. */
int v_query_ts(http_req_t *req, const char *name, char *out);

/* upstream's get_pagination_params: page >= 1 (default 1), page_size >= 1
 * or absent (*page_size = 0). -1 after answering 422. */
int v_pagination(http_req_t *req, int64_t *page, int64_t *page_size);

/* Appends pydantic's str(ValidationError) for a list of errors (as built
 * by verr_add): "N validation error(s) for <title>" and one entry per
 * error. Defined in model/resource.c, its first user. */
void verr_render(json_t *errs, const char *title, sb_t *out);

/* Shared checks. */
const char *check_email(json_t **val, sb_t *msg);

#endif
