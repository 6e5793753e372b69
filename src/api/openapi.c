/* openapi.c — builds the OpenAPI 3.1 document from the route table and the
 * declarations of api/openapi_models.c (the notation is in openapi.h), and
 * serves it with the Swagger UI and ReDoc pages, loading their assets from
 * FastAPI's CDN or from FRACTAL_DOCS_ASSETS_URL. */
#include "api/openapi.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "build_config.h"
#include "config/settings.h"

/* ---- the notation -> JSON Schema ---- */

struct parser {
	const char *p;
	sb_t *err;
	const char *where;
	json_t *refs; /* names referenced, to check against the models */
};

static int fail(struct parser *ps, const char *what)
{
	if (!ps->err->len)
		sb_addf(ps->err, "%s: %s at \"%.30s\"", ps->where, what, ps->p);
	return -1;
}

static json_t *ref(struct parser *ps, const char *name, size_t n)
{
	char *s = xstrndup(name, n);
	json_object_set_new(ps->refs, s, json_string(ps->where));
	json_t *r = json_pack("{s:s+}", "$ref", "#/components/schemas/", s);
	free(s);
	return r;
}

static json_t *parse_type(struct parser *ps);

static json_t *scalar(const char *w, size_t n)
{
	static const struct {
		const char *word;
		const char *schema;
	} words[] = {
		{ "int", "{\"type\":\"integer\"}" },
		{ "num", "{\"type\":\"number\"}" },
		{ "str", "{\"type\":\"string\"}" },
		{ "str+", "{\"type\":\"string\",\"minLength\":1}" },
		{ "bool", "{\"type\":\"boolean\"}" },
		{ "any", "{}" },
		{ "dt", "{\"type\":\"string\",\"format\":\"date-time\"}" },
		{ "email", "{\"type\":\"string\",\"format\":\"email\"}" },
		{ "obj", "{\"type\":\"object\",\"additionalProperties\":true}" },
		{ "null", "{\"type\":\"null\"}" },
		{ "pos", "{\"type\":\"integer\",\"minimum\":1}" },
		{ "nonneg", "{\"type\":\"integer\",\"minimum\":0}" },
		{ "binary", "{\"type\":\"string\",\"format\":\"binary\"}" },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && !strncmp(words[i].word, w, n))
			return json_loads(words[i].schema, 0, NULL);
	return NULL;
}

static json_t *parse_atom(struct parser *ps)
{
	const char *p = ps->p;
	if (*p == '[' || *p == '{') {
		char close = *p == '[' ? ']' : '}';
		ps->p++;
		json_t *t = parse_type(ps);
		if (!t)
			return NULL;
		if (*ps->p != close) {
			json_decref(t);
			fail(ps, "unclosed list or map");
			return NULL;
		}
		ps->p++;
		return close == ']' ? json_pack("{s:s,s:o}", "type", "array", "items", t)
				    : json_pack("{s:s,s:o}", "type", "object", "additionalProperties", t);
	}
	if (*p == '(') {
		json_t *items = json_array();
		do {
			ps->p++;
			json_t *t = parse_type(ps);
			if (!t) {
				json_decref(items);
				return NULL;
			}
			json_array_append_new(items, t);
		} while (*ps->p == ',');
		if (*ps->p != ')') {
			json_decref(items);
			fail(ps, "unclosed tuple");
			return NULL;
		}
		ps->p++;
		size_t n = json_array_size(items);
		return json_pack("{s:s,s:o,s:I,s:I}", "type", "array", "prefixItems", items, "minItems", (json_int_t)n,
				 "maxItems", (json_int_t)n);
	}
	size_t n = 0;
	while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '+')
		n++;
	if (!n) {
		fail(ps, "a type expected");
		return NULL;
	}
	ps->p += n;
	if (n == 4 && !strncmp(p, "enum", 4) && *ps->p == '(') {
		json_t *vals = json_array();
		const char *s = ++ps->p;
		for (;;) {
			size_t m = strcspn(s, ",)");
			if (!s[m] || !m) {
				json_decref(vals);
				fail(ps, "bad enum");
				return NULL;
			}
			json_array_append_new(vals, json_stringn(s, m));
			s += m + 1;
			if (s[-1] == ')')
				break;
		}
		ps->p = s;
		return json_pack("{s:s,s:o}", "type", "string", "enum", vals);
	}
	if (isupper((unsigned char)p[0]))
		return ref(ps, p, n);
	json_t *t = scalar(p, n);
	if (!t)
		fail(ps, "unknown type");
	return t;
}

static json_t *parse_type(struct parser *ps)
{
	json_t *t = parse_atom(ps);
	if (!t || *ps->p != '|')
		return t;
	json_t *any = json_array();
	json_array_append_new(any, t);
	while (*ps->p == '|') {
		ps->p++;
		t = parse_atom(ps);
		if (!t) {
			json_decref(any);
			return NULL;
		}
		json_array_append_new(any, t);
	}
	return json_pack("{s:o}", "anyOf", any);
}

/* A type expression alone. New reference, or NULL with err set. */
static json_t *type_of(struct parser *ps, const char *text)
{
	ps->p = text;
	json_t *t = parse_type(ps);
	if (t && *ps->p) {
		json_decref(t);
		fail(ps, "trailing text");
		return NULL;
	}
	return t;
}

/* Fields into props (name -> schema) and req (names); 0 or -1. */
static int parse_fields(struct parser *ps, const char *text, json_t *props, json_t *req)
{
	ps->p = text;
	for (;;) {
		while (*ps->p == ' ')
			ps->p++;
		if (!*ps->p)
			return 0;
		size_t n = strcspn(ps->p, "?: ");
		if (!n)
			return fail(ps, "a field name expected");
		char *name = xstrndup(ps->p, n);
		ps->p += n;
		int optional = *ps->p == '?';
		if (optional)
			ps->p++;
		if (*ps->p != ':') {
			free(name);
			return fail(ps, "':' expected");
		}
		ps->p++;
		json_t *t = parse_type(ps);
		if (!t) {
			free(name);
			return -1;
		}
		if (*ps->p && *ps->p != ' ') {
			free(name);
			json_decref(t);
			return fail(ps, "a space expected after a field");
		}
		json_object_set_new(props, name, t);
		size_t i;
		json_t *v;
		json_array_foreach(req, i, v) {
			if (!strcmp(json_string_value(v), name)) {
				json_array_remove(req, i);
				break;
			}
		}
		if (!optional)
			json_array_append_new(req, json_string(name));
		free(name);
	}
}

/* An object schema from fields (with its required list when any). */
static json_t *object_of(json_t *props, json_t *req, int forbid)
{
	json_t *o = json_pack("{s:s,s:O}", "type", "object", "properties", props);
	if (json_array_size(req))
		json_object_set(o, "required", req);
	if (forbid)
		json_object_set_new(o, "additionalProperties", json_false());
	return o;
}

static json_t *model_schema(struct parser *ps, json_t *schemas, const char *def)
{
	if (def[0] == '=') {
		while (*++def == ' ')
			;
		return type_of(ps, def);
	}
	int forbid = 0;
	json_t *props = json_object(), *req = json_array();
	if (!strncmp(def, "! ", 2)) {
		forbid = 1;
		def += 2;
	}
	if (def[0] == '^') {
		size_t n = strcspn(def + 1, " ");
		char *base = xstrndup(def + 1, n);
		json_t *b = json_object_get(schemas, base);
		free(base);
		if (!b) {
			json_decref(props);
			json_decref(req);
			fail(ps, "unknown base (declare it first)");
			return NULL;
		}
		json_object_update(props, json_object_get(b, "properties"));
		if (json_object_get(b, "required"))
			json_array_extend(req, json_object_get(b, "required"));
		def += 1 + n;
	}
	json_t *o = NULL;
	if (!parse_fields(ps, def, props, req))
		o = object_of(props, req, forbid);
	json_decref(props);
	json_decref(req);
	return o;
}

/* ---- the document ---- */

/* The components every document has: FastAPI's validation errors and our
 * error body. */
static const api_model_t base_models[] = {
	{ "ValidationError", "loc:[str|int] msg:str type:str input?:any ctx?:obj" },
	{ "HTTPValidationError", "detail?:[ValidationError]" },
	{ "HTTPError", "detail:str|obj|null|[str] data?:any" },
	{ 0 },
};

static const api_op_t *op_of(const http_route_t *r)
{
	for (const api_op_t *o = api_ops; o->method; o++)
		if (!strcmp(o->method, r->method) && !strcmp(o->pattern, r->pattern))
			return o;
	return NULL;
}

static const http_route_t *route_of(const api_op_t *o)
{
	for (const http_route_t *r = http_routes; r->method; r++)
		if (!strcmp(o->method, r->method) && !strcmp(o->pattern, r->pattern))
			return r;
	return NULL;
}

/* FastAPI's tags follow the routers; ours follow the path: the resource
 * after /api/v2, /admin/v2 (or a project's), "auth" for /auth. */
static char *tag_of(const char *pattern)
{
	const char *rest = pattern, *prefix = "";
	if (!strncmp(pattern, "/api/v2/project/{project_id}/", 29) && pattern[29])
		rest = pattern + 29;
	else if (!strncmp(pattern, "/api/v2/", 8))
		rest = pattern + 8;
	else if (!strncmp(pattern, "/admin/v2/", 10)) {
		rest = pattern + 10;
		prefix = "admin ";
	} else if (!strncmp(pattern, "/auth/", 6))
		return xstrdup("auth");
	else if (!strncmp(pattern, "/api/", 5))
		return xstrdup("api");
	size_t n = strcspn(rest, "/");
	sb_t t = SB_INIT;
	sb_adds(&t, prefix);
	sb_add(&t, rest, n);
	return sb_detach(&t);
}

static char *operation_id(const http_route_t *r)
{
	sb_t s = SB_INIT;
	for (const char *p = r->method; *p; p++)
		sb_addc(&s, (char)tolower((unsigned char)*p));
	for (const char *p = r->pattern; *p; p++)
		sb_addc(&s, isalnum((unsigned char)*p) ? *p : '_');
	while (s.len && s.buf[s.len - 1] == '_')
		s.buf[--s.len] = '\0';
	return sb_detach(&s);
}

static json_t *content(const char *media, json_t *schema)
{
	return json_pack("{s:{s:o}}", media, "schema", schema);
}

static int add_operation(struct parser *ps, json_t *paths, const http_route_t *r, const api_op_t *o)
{
	json_t *params = json_array();
	/* path parameters */
	for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
		size_t n = strcspn(p + 1, "}");
		char *name = xstrndup(p + 1, n);
		int is_id = n > 3 && !strcmp(name + n - 3, "_id");
		json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name", name, "in", "path", "required",
							1, "schema", "type", is_id ? "integer" : "string"));
		free(name);
	}
	/* query parameters */
	if (o->query) {
		json_t *props = json_object(), *req = json_array();
		if (parse_fields(ps, o->query, props, req)) {
			json_decref(props);
			json_decref(req);
			json_decref(params);
			return -1;
		}
		const char *k;
		json_t *v;
		json_object_foreach(props, k, v)
		{
			int required = 0;
			size_t i;
			json_t *q;
			json_array_foreach(req, i, q) {
				required |= !strcmp(json_string_value(q), k);
			}
			json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:O}", "name", k, "in", "query",
								"required", required, "schema", v));
		}
		json_decref(props);
		json_decref(req);
	}
	char *tag = tag_of(r->pattern), *opid = operation_id(r);
	json_t *op = json_pack("{s:[s],s:s,s:s}", "tags", tag, "summary", o->summary ? o->summary : "",
			       "operationId", opid);
	free(tag);
	free(opid);
	int has_input = json_array_size(params) > 0;
	if (has_input)
		json_object_set(op, "parameters", params);
	json_decref(params);
	/* the body */
	json_t *body = NULL;
	const char *media = "application/json";
	if (o->body)
		body = type_of(ps, o->body);
	else if (o->form) {
		body = ref(ps, o->form, strlen(o->form));
		media = "application/x-www-form-urlencoded";
	} else if (o->multipart) {
		body = ref(ps, o->multipart, strlen(o->multipart));
		media = "multipart/form-data";
	}
	if ((o->body || o->form || o->multipart) && !body) {
		json_decref(op);
		return -1;
	}
	if (body) {
		has_input = 1;
		json_object_set_new(op, "requestBody", json_pack("{s:o,s:b}", "content", content(media, body), "required", 1));
	}
	/* the answers */
	json_t *responses = json_object(), *ok = json_pack("{s:s}", "description", "Successful Response");
	if (o->resp) {
		json_t *t = type_of(ps, o->resp);
		if (!t) {
			json_decref(ok);
			json_decref(responses);
			json_decref(op);
			return -1;
		}
		json_object_set_new(ok, "content", content(o->media ? o->media : "application/json", t));
	}
	char code[8];
	snprintf(code, sizeof(code), "%d", o->status ? o->status : 200);
	json_object_set_new(responses, code, ok);
	if (has_input)
		json_object_set_new(responses, "422",
				    json_pack("{s:s,s:o}", "description", "Validation Error", "content",
					      content("application/json",
						      json_pack("{s:[{s:s},{s:s}]}", "anyOf", "$ref",
								"#/components/schemas/HTTPValidationError", "$ref",
								"#/components/schemas/HTTPError"))));
	json_object_set_new(responses, "default",
			    json_pack("{s:s,s:o}", "description", "Error", "content",
				      content("application/json", json_pack("{s:s}", "$ref", "#/components/schemas/HTTPError"))));
	json_object_set_new(op, "responses", responses);
	if (r->auth != AUTH_NONE)
		json_object_set_new(op, "security", json_pack("[{s:[]},{s:[]}]", "OAuth2PasswordBearer", "APIKeyCookie"));
	json_t *item = json_object_get(paths, r->pattern);
	if (!item) {
		item = json_object();
		json_object_set_new(paths, r->pattern, item);
	}
	char method[8] = { 0 };
	for (size_t i = 0; r->method[i] && i < sizeof(method) - 1; i++)
		method[i] = (char)tolower((unsigned char)r->method[i]);
	json_object_set_new(item, method, op);
	return 0;
}

static int add_models(struct parser *ps, json_t *schemas, const api_model_t *models)
{
	for (const api_model_t *m = models; m->name; m++) {
		ps->where = m->name;
		if (json_object_get(schemas, m->name))
			return fail(ps, "declared twice");
		json_t *s = model_schema(ps, schemas, m->def);
		if (!s)
			return -1;
		if (!json_object_get(s, "$ref") && !json_object_get(s, "anyOf"))
			json_object_set_new(s, "title", json_string(m->name));
		json_object_set_new(schemas, m->name, s);
	}
	return 0;
}

int openapi_build(sb_t *out, sb_t *err)
{
	struct parser ps = { .err = err, .where = "", .refs = json_object() };
	json_t *schemas = json_object(), *paths = json_object();
	int rc = -1;
	if (add_models(&ps, schemas, base_models) || add_models(&ps, schemas, api_models))
		goto out;
	for (const http_route_t *r = http_routes; r->method; r++) {
		if (r->hidden)
			continue;
		const api_op_t *o = op_of(r);
		char where[256];
		snprintf(where, sizeof(where), "%s %s", r->method, r->pattern);
		ps.where = where;
		if (!o) {
			fail(&ps, "no operation in api/openapi_models.c");
			goto out;
		}
		if (add_operation(&ps, paths, r, o))
			goto out;
	}
	for (const api_op_t *o = api_ops; o->method; o++)
		if (!route_of(o) || route_of(o)->hidden) {
			sb_addf(err, "%s %s: an operation without its route in api/routes.c", o->method, o->pattern);
			goto out;
		}
	const char *name;
	json_t *v;
	json_object_foreach(ps.refs, name, v) {
		if (!json_object_get(schemas, name)) {
			sb_addf(err, "%s: refers to the undeclared model %s", json_string_value(v), name);
			goto out;
		}
	}
	json_t *doc = json_pack(
		"{s:s,s:{s:s,s:s},s:O,s:{s:O,s:{s:{s:s,s:{s:{s:{},s:s}}},s:{s:s,s:s,s:s}}}}", "openapi", "3.1.0", "info",
		"title", "FastAPI", "version", FRACTAL_VERSION, "paths", paths, "components", "schemas", schemas,
		"securitySchemes", "OAuth2PasswordBearer", "type", "oauth2", "flows", "password", "scopes", "tokenUrl",
		"/auth/token/login", "APIKeyCookie", "type", "apiKey", "in", "cookie", "name", "fastapiusersauth");
	char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	sb_adds(out, s);
	free(s);
	rc = 0;
out:
	json_decref(ps.refs);
	json_decref(schemas);
	json_decref(paths);
	return rc;
}

/* ---- the pages ---- */

static pthread_once_t doc_once = PTHREAD_ONCE_INIT;
static char *doc_json; /* built once, kept for the life of the process */
static char doc_error[512];

static void build_once(void)
{
	sb_t out = SB_INIT, err = SB_INIT;
	if (openapi_build(&out, &err))
		snprintf(doc_error, sizeof(doc_error), "%s", err.buf ? err.buf : "?");
	else
		doc_json = sb_detach(&out);
	sb_release(&out);
	sb_release(&err);
}

void api_openapi_json(http_req_t *req)
{
	pthread_once(&doc_once, build_once);
	if (!doc_json) {
		http_error_500(req, "the OpenAPI document: %s", doc_error);
		return;
	}
	http_json(req, 200, doc_json);
}

#define CDN "https://cdn.jsdelivr.net/npm"
#define FAVICON "https://fastapi.tiangolo.com/img/favicon.png"

/* FRACTAL_DOCS_ASSETS_URL, without a trailing slash, or NULL. */
static const char *assets_base(http_req_t *req)
{
	const char *b = settings_raw("FRACTAL_DOCS_ASSETS_URL");
	if (!b || !*b)
		return NULL;
	size_t n = strlen(b);
	while (n && b[n - 1] == '/')
		n--;
	return arena_strndup(&req->arena, b, n);
}

static void html(http_req_t *req, sb_t *page)
{
	http_json_sb(req, 200, page);
	req->content_type = "text/html; charset=utf-8";
}

void api_docs(http_req_t *req)
{
	const char *base = assets_base(req);
	sb_t p = SB_INIT;
	sb_addf(&p,
		"<!DOCTYPE html>\n<html>\n<head>\n<link type=\"text/css\" rel=\"stylesheet\" "
		"href=\"%s/swagger-ui-dist@5/swagger-ui.css\">\n<link rel=\"shortcut icon\" href=\"%s%s\">\n"
		"<title>FastAPI - Swagger UI</title>\n</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
		"<script src=\"%s/swagger-ui-dist@5/swagger-ui-bundle.js\"></script>\n<script>\n"
		"const ui = SwaggerUIBundle({\n  url: '/openapi.json',\n  dom_id: '#swagger-ui',\n"
		"  layout: 'BaseLayout',\n  deepLinking: true,\n  showExtensions: true,\n  showCommonExtensions: true,\n"
		"  oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect',\n"
		"  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],\n});\n"
		"</script>\n</body>\n</html>\n",
		base ? base : CDN, base ? base : "", base ? "/swagger-ui-dist@5/favicon-32x32.png" : FAVICON,
		base ? base : CDN);
	html(req, &p);
}

void api_redoc(http_req_t *req)
{
	const char *base = assets_base(req);
	sb_t p = SB_INIT;
	sb_addf(&p,
		"<!DOCTYPE html>\n<html>\n<head>\n<title>FastAPI - ReDoc</title>\n<meta charset=\"utf-8\"/>\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<link rel=\"shortcut icon\" href=\"%s%s\">\n"
		"<style>body { margin: 0; padding: 0; }</style>\n</head>\n<body>\n"
		"<noscript>ReDoc needs JavaScript.</noscript>\n<redoc spec-url=\"/openapi.json\"></redoc>\n"
		"<script src=\"%s/redoc@2/bundles/redoc.standalone.js\"></script>\n</body>\n</html>\n",
		base ? base : "", base ? "/redoc@2/favicon.png" : FAVICON, base ? base : CDN);
	html(req, &p);
}

/* Swagger UI's page for the OAuth2 flows that come back through a redirect
 * (authorization code, implicit): it hands what the provider sent to the
 * window that opened it. The password flow of /auth/token/login does not
 * use it; FastAPI serves it all the same. */
void api_docs_oauth2_redirect(http_req_t *req)
{
	sb_t p = SB_INIT;
	sb_adds(&p,
		"<!DOCTYPE html>\n<html lang=\"en-US\">\n<head><title>Swagger UI: OAuth2 Redirect</title></head>\n<body>\n"
		"<script>\n'use strict';\n(function () {\n"
		"  var owner = window.opener && window.opener.swaggerUIRedirectOauth2;\n"
		"  if (!owner) { document.body.textContent = 'No Swagger UI window to return to.'; return; }\n"
		"  var text = /code|token|error/.test(window.location.hash) ? window.location.hash.substring(1)\n"
		"                                                          : window.location.search.substring(1);\n"
		"  var qp = {};\n"
		"  new URLSearchParams(text).forEach(function (v, k) { qp[k] = v; });\n"
		"  var isValid = qp.state === owner.state;\n"
		"  var flow = owner.auth.schema.get('flow');\n"
		"  if ((flow === 'accessCode' || flow === 'authorizationCode' || flow === 'authorization_code') &&\n"
		"      !owner.auth.code) {\n"
		"    if (!isValid) owner.errCb({authId: owner.auth.name, source: 'auth', level: 'warning',\n"
		"                               message: 'The state of the answer does not match the request.'});\n"
		"    if (qp.code) {\n"
		"      delete owner.state;\n"
		"      owner.auth.code = qp.code;\n"
		"      owner.callback({auth: owner.auth, redirectUrl: owner.redirectUrl});\n"
		"    } else {\n"
		"      owner.errCb({authId: owner.auth.name, source: 'auth', level: 'error',\n"
		"                   message: qp.error ? '[' + qp.error + ']: ' + (qp.error_description || '')\n"
		"                                     : 'The server sent no code.'});\n"
		"    }\n"
		"  } else {\n"
		"    owner.callback({auth: owner.auth, token: qp, isValid: isValid, redirectUrl: owner.redirectUrl});\n"
		"  }\n"
		"  window.close();\n"
		"})();\n</script>\n</body>\n</html>\n");
	html(req, &p);
}
