/* params.h — a request's parameters (body, path, query, pagination) read
 * and validated the way upstream's FastAPI + pydantic (lax mode) does it,
 * and the 422 reply with upstream's body:
 *   {"detail": [{"type", "loc", "msg", "input"[, "ctx"]}, ...]}
 * so that clients that read those errors (fractal-web shows them) work.
 *
 * The values themselves are validated by model/validate.h (vfield_t,
 * v_value, v_object, the error list verr_t), which knows no HTTP; this
 * module is where a request meets it. A route describes its body model as
 * a table of vfield_t and calls v_body(); it gets back a new object holding
 * only the fields that were sent (pydantic's exclude_unset), each coerced
 * to its type, or NULL after the 422 has been answered. A route whose model
 * has its own validator (images, tasks) calls v_body_model(). Every body is
 * parsed by v_parse_body(), the one parser. Functions named *_e add their
 * errors to e instead of answering, since FastAPI reports the errors of
 * every path and query parameter and of the body in one 422. */
#ifndef API_PARAMS_H
#define API_PARAMS_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"
#include "model/validate.h"

/* Answers 422 with the errors (and frees them) if there are any; returns 1
 * then, else 0 (e freed too). */
int verr_reply(verr_t *e, http_req_t *req);

/* The JSON body (new reference; any JSON value), or NULL after adding
 * FastAPI's error to e: "missing" at ["body"] for an empty body,
 * "json_invalid" for a body that is not JSON or nests deeper than
 * JSON_MAX_INPUT_DEPTH (util/jsonspan.h; upstream has no limit of its own:
 * Python's json gives up near 1,000 levels, and FastAPI answers that
 * RecursionError with a 400). A body sent with a Content-Type other than JSON (or
 * none) is not parsed: it comes back as a JSON string of its raw text, which
 * the route's model then refuses as FastAPI does (not an object). */
json_t *v_parse_body(http_req_t *req, verr_t *e);

/* Parses and validates the JSON body against fields. Returns a new object
 * (caller decrefs) or NULL after answering 422. */
json_t *v_body(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra);
/* The same, adding the errors to e instead of answering. Returns the
 * object of the valid fields (caller decrefs), or NULL when the body is
 * missing, not JSON or not an object; check e for errors. */
json_t *v_body_e(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra, verr_t *e);

/* v_body for a body whose member key holds a large list (a dataset
 * import's images): the list stays text, out of the tree, and *span, *len
 * give its "[...]" inside req->body for the caller to read one item at a
 * time. The object returned (caller decrefs) has key set to an empty
 * list. Returns NULL without answering whenever the general path must run
 * instead: a body that is not JSON, not an object, has no such list, or
 * fails validation (that path's errors echo the whole input, list
 * included). A list item that is not valid JSON is the caller's to find;
 * it then takes the general path too. */
json_t *v_body_split(http_req_t *req, const char *key, const vfield_t *fields, int nfields, int forbid_extra,
		     const char **span, size_t *len);

/* A model validator: a new reference to the validated value, or NULL with
 * errors added to e at locations below loc (in and loc borrowed). */
typedef json_t *(*v_model_fn)(json_t *in, json_t *loc, verr_t *e);
/* Parses the body and validates it with check at ["body"]; when object is
 * set, a body that is not an object is pydantic's model_attributes_type
 * error instead. Returns check's value (caller decrefs) or NULL after
 * answering 422. */
json_t *v_body_model(http_req_t *req, v_model_fn check, int object);

/* Path parameter number idx as an int; 0 or -1 after answering 422. */
int v_path_int(http_req_t *req, int idx, const char *name, int64_t *out);
int v_path_int_e(http_req_t *req, int idx, const char *name, int64_t *out, verr_t *e);

/* Query parameters: absent leaves *out as is; 0, or -1 after answering 422. */
int v_query_bool(http_req_t *req, const char *name, int *out);
int v_query_int(http_req_t *req, const char *name, int64_t *out, int *present);
/* The int one adds "missing" when required and absent. */
int v_query_int_e(http_req_t *req, const char *name, int required, int64_t *out, int *present, verr_t *e);
int v_query_bool_e(http_req_t *req, const char *name, int *out, verr_t *e);
/* A required int query parameter (422 "missing" when absent). */
int v_query_int_required(http_req_t *req, const char *name, int64_t *out);
/* An AwareDatetime query parameter, canonicalised into out (40 bytes);
 * out[0] is '\0' when absent. */
int v_query_ts(http_req_t *req, const char *name, char *out);

/* upstream's get_pagination_params: page >= 1 (default 1), page_size >= 1
 * or absent (*page_size = 0: every item, and then page must be 1). -1 after
 * answering 422. */
int v_pagination(http_req_t *req, int64_t *page, int64_t *page_size);
/* The number of items before page (page and page_size as v_pagination
 * leaves them): 0 when page_size is 0, and INT64_MAX when (page - 1) *
 * page_size does not fit, so that a huge page is an empty one. */
int64_t v_page_offset(int64_t page, int64_t page_size);

#endif
