/* params.c — see params.h. */
#include "api/params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/jsonspan.h"
#include "util/timeutil.h"

/* path and query parameters arrive as strings: pydantic's lax int and bool */
static const vfield_t int_field = { .type = V_INT }, bool_field = { .type = V_BOOL };

/* The parameter's text v coerced as f says, or NULL with the error at
 * [where, name] added to e. */
static json_t *param_value(const vfield_t *f, const char *where, const char *name, const char *v, verr_t *e)
{
	json_t *s = json_string(v);
	json_t *loc = json_pack("[s,s]", where, name);
	json_t *r = v_value(f, s, loc, e);
	json_decref(loc);
	json_decref(s);
	return r;
}

int verr_reply(verr_t *e, http_req_t *req)
{
	if (!json_array_size(e->list)) {
		verr_free(e);
		return 0;
	}
	char *s = json_dumps(e->list, JSON_COMPACT | JSON_PRESERVE_ORDER);
	http_error_json(req, 422, s);
	free(s);
	verr_free(e);
	return 1;
}

/* FastAPI (0.132 on, strict_content_type) parses a body as JSON only under
 * application/json or application/<x>+json; any other Content-Type, or none,
 * hands the route the raw bytes, which then fail the model's validation as a
 * value that is not an object. That is what keeps a cross-site "simple"
 * request (text/plain, a form, multipart; no preflight) from creating
 * objects with the fastapiusersauth cookie. */
static int is_json_type(const char *ct)
{
	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n < 12 || strncasecmp(ct, "application/", 12))
		return 0;
	const char *sub = ct + 12;
	size_t sn = n - 12;
	return (sn == 4 && !strncasecmp(sub, "json", 4)) || (sn > 5 && !strncasecmp(sub + sn - 5, "+json", 5));
}

/* The raw body as the string FastAPI's error echoes (its bytes decoded as
 * UTF-8; a byte that is not UTF-8 becomes '?', where upstream would fail). */
static json_t *raw_body_string(const http_req_t *req)
{
	json_t *s = json_stringn(req->body.buf, req->body.len);
	if (s)
		return s;
	char *copy = xmalloc(req->body.len);
	for (size_t i = 0; i < req->body.len; i++)
		copy[i] = (unsigned char)req->body.buf[i] < 0x80 ? req->body.buf[i] : '?';
	s = json_stringn(copy, req->body.len);
	free(copy);
	return s;
}

json_t *v_parse_body(http_req_t *req, verr_t *e)
{
	if (req->body.len == 0) {
		verr_add(e, "missing", json_pack("[s]", "body"), "Field required", NULL, NULL);
		return NULL;
	}
	if (!is_json_type(http_header(req, "Content-Type")))
		return raw_body_string(req);
	size_t pos;
	if (json_text_too_deep(req->body.buf, req->body.len, JSON_MAX_INPUT_DEPTH, &pos)) {
		json_t *empty = json_object();
		sb_t m = SB_INIT;
		sb_addf(&m, "Nesting too deep: more than %d levels of arrays and objects", JSON_MAX_INPUT_DEPTH);
		verr_add(e, "json_invalid", json_pack("[s,i]", "body", (json_int_t)pos), "JSON decode error", empty,
			 json_pack("{s:s}", "error", m.buf));
		sb_release(&m);
		json_decref(empty);
		return NULL;
	}
	json_error_t jerr;
	json_t *body = json_loadb(req->body.buf, req->body.len, JSON_DECODE_ANY, &jerr);
	if (!body) {
		json_t *empty = json_object(); /* verr_add borrows the input */
		verr_add(e, "json_invalid", json_pack("[s,i]", "body", jerr.position), "JSON decode error", empty,
			 json_pack("{s:s}", "error", jerr.text));
		json_decref(empty);
		return NULL;
	}
	return body;
}

json_t *v_body_e(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra, verr_t *e)
{
	json_t *body = v_parse_body(req, e);
	if (!body)
		return NULL;
	json_t *base = json_pack("[s]", "body"), *out = NULL;
	if (!json_is_object(body))
		v_add_not_object(e, json_incref(base), body);
	else
		out = v_object(body, fields, nfields, forbid_extra, base, e);
	json_decref(base);
	json_decref(body);
	return out;
}

json_t *v_body(http_req_t *req, const vfield_t *fields, int nfields, int forbid_extra)
{
	verr_t e;
	verr_init(&e);
	json_t *out = v_body_e(req, fields, nfields, forbid_extra, &e);
	if (verr_reply(&e, req)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *v_body_split(http_req_t *req, const char *key, const vfield_t *fields, int nfields, int forbid_extra,
		     const char **span, size_t *len)
{
	const char *keys[] = { key, NULL }, *val;
	size_t vlen, pos;
	const char *s = req->body.buf;
	if (!req->body.len || !is_json_type(http_header(req, "Content-Type")) ||
	    json_text_too_deep(s, req->body.len, JSON_MAX_INPUT_DEPTH, &pos) || json_object_spans(s, keys, &val, &vlen) ||
	    !val || *val != '[' || (size_t)(val + vlen - s) > req->body.len)
		return NULL;
	/* the body with "[]" for the list: what is left is small */
	sb_t rest = SB_INIT;
	sb_add(&rest, s, (size_t)(val - s));
	sb_adds(&rest, "[]");
	sb_add(&rest, val + vlen, req->body.len - (size_t)(val + vlen - s));
	json_t *body = json_loadb(rest.buf, rest.len, JSON_DECODE_ANY, NULL), *out = NULL;
	sb_release(&rest);
	json_t *empty = json_object_get(body, key); /* NULL unless body is an object */
	if (json_is_array(empty) && !json_array_size(empty)) {
		/* (a key spelt with escapes, or twice, can leave another value
		 * for jansson, which keeps the last: then the general path) */
		verr_t e;
		verr_init(&e);
		json_t *base = json_pack("[s]", "body");
		out = v_object(body, fields, nfields, forbid_extra, base, &e);
		json_decref(base);
		if (json_array_size(e.list)) {
			json_decref(out);
			out = NULL;
		}
		verr_free(&e);
	}
	json_decref(body);
	if (out) {
		*span = val;
		*len = vlen;
	}
	return out;
}

json_t *v_body_model(http_req_t *req, v_model_fn check, int object)
{
	verr_t e;
	verr_init(&e);
	json_t *body = v_parse_body(req, &e), *out = NULL;
	if (body) {
		json_t *loc = json_pack("[s]", "body");
		if (object && !json_is_object(body))
			v_add_not_object(&e, json_incref(loc), body);
		else
			out = check(body, loc, &e);
		json_decref(loc);
		json_decref(body);
	}
	if (verr_reply(&e, req)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int v_path_int_e(http_req_t *req, int idx, const char *name, int64_t *out, verr_t *e)
{
	json_t *r = param_value(&int_field, "path", name, idx < req->nparams ? req->params[idx] : "", e);
	if (!r)
		return -1;
	*out = json_integer_value(r);
	json_decref(r);
	return 0;
}

int v_path_int(http_req_t *req, int idx, const char *name, int64_t *out)
{
	verr_t e;
	verr_init(&e);
	if (v_path_int_e(req, idx, name, out, &e)) {
		verr_reply(&e, req);
		return -1;
	}
	verr_free(&e);
	return 0;
}

int v_query_bool(http_req_t *req, const char *name, int *out)
{
	verr_t e;
	verr_init(&e);
	int rc = v_query_bool_e(req, name, out, &e);
	verr_reply(&e, req);
	return rc;
}

int v_query_int(http_req_t *req, const char *name, int64_t *out, int *present)
{
	verr_t e;
	verr_init(&e);
	int rc = v_query_int_e(req, name, 0, out, present, &e);
	verr_reply(&e, req);
	return rc;
}

int v_query_int_e(http_req_t *req, const char *name, int required, int64_t *out, int *present, verr_t *e)
{
	const char *v = http_query(req, name);
	if (present)
		*present = v != NULL;
	if (!v) {
		if (!required)
			return 0;
		verr_add(e, "missing", json_pack("[s,s]", "query", name), "Field required", NULL, NULL);
		return -1;
	}
	json_t *r = param_value(&int_field, "query", name, v, e);
	if (!r)
		return -1;
	*out = json_integer_value(r);
	json_decref(r);
	return 0;
}

int v_query_bool_e(http_req_t *req, const char *name, int *out, verr_t *e)
{
	const char *v = http_query(req, name);
	if (!v)
		return 0;
	json_t *r = param_value(&bool_field, "query", name, v, e);
	if (!r)
		return -1;
	*out = json_is_true(r);
	json_decref(r);
	return 0;
}

int v_query_ts(http_req_t *req, const char *name, char *out)
{
	const char *v = http_query(req, name);
	out[0] = '\0';
	if (!v)
		return 0;
	int rc = ts_parse_aware(v, out, 40);
	if (!rc)
		return 0;
	verr_t e;
	verr_init(&e);
	json_t *s = json_string(v);
	if (rc == -2)
		verr_add(&e, "timezone_aware", json_pack("[s,s]", "query", name), "Input should have timezone info", s, NULL);
	else
		verr_add(&e, "datetime_from_date_parsing", json_pack("[s,s]", "query", name),
			 "Input should be a valid datetime or date, invalid character in year", s,
			 json_pack("{s:s}", "error", "invalid character in year"));
	json_decref(s);
	verr_reply(&e, req);
	out[0] = '\0';
	return -1;
}

int v_pagination(http_req_t *req, int64_t *page, int64_t *page_size)
{
	int has_size = 0;
	*page = 1;
	*page_size = 0;
	if (v_query_int(req, "page", page, NULL) || v_query_int(req, "page_size", page_size, &has_size))
		return -1;
	/* the model's own checks end up as text in a 422 detail string */
	const char *field = NULL;
	int64_t bad = 0;
	if (*page < 1) {
		field = "page";
		bad = *page;
	} else if (has_size && *page_size < 1) {
		field = "page_size";
		bad = *page_size;
	}
	if (field) {
		http_errorf(req, 422, "Invalid pagination parameters. Original error: '1 validation error for "
				      "PaginationRequest\n%s\n  Input should be greater than or equal to 1 "
				      "[type=greater_than_equal, input_value=%lld, input_type=int]\n    For further "
				      "information visit https://errors.pydantic.dev/2.12/v/greater_than_equal'.",
			    field, (long long)bad);
		return -1;
	}
	if (!has_size && *page > 1) {
		http_errorf(req, 422, "Invalid pagination parameters. Original error: '1 validation error for "
				      "PaginationRequest\n  Value error, page_size is None but page=%lld is greater than 1. "
				      "[type=value_error, input_value={'page': %lld, 'page_size': None}, input_type=dict]\n"
				      "    For further information visit https://errors.pydantic.dev/2.12/v/value_error'.",
			    (long long)*page, (long long)*page);
		return -1;
	}
	return 0;
}

int64_t v_page_offset(int64_t page, int64_t page_size)
{
	if (page_size <= 0 || page <= 1)
		return 0;
	if (page - 1 > INT64_MAX / page_size)
		return INT64_MAX;
	return (page - 1) * page_size;
}

int v_query_int_required(http_req_t *req, const char *name, int64_t *out)
{
	verr_t e;
	verr_init(&e);
	int rc = v_query_int_e(req, name, 1, out, NULL, &e);
	verr_reply(&e, req);
	return rc;
}
