/* router.c — matches a path against the route table (api/routes.c) and
 * answers what Starlette answers when nothing matches: 405 when the path
 * exists with another method, 307 to the same path with the trailing slash
 * toggled when that one exists (FastAPI's redirect_slashes), else 404. */
#include "http/http.h"

#include <string.h>

/* 1 if path matches pattern; fills params (pointers into the arena). */
static int match(http_req_t *req, const char *pattern, const char *path, int fill)
{
	const char *p = pattern, *s = path;
	int n = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t len = strcspn(s, "/");
			if (!pe || len == 0)
				return 0;
			if (fill) {
				if (n == HTTP_MAX_PARAMS)
					return 0;
				req->params[n] = arena_strndup(&req->arena, s, len);
			}
			n++;
			p = pe + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	if (*p || *s)
		return 0;
	if (fill)
		req->nparams = n;
	return 1;
}

enum { NO_MATCH, PATH_MATCH, FULL_MATCH };

static int lookup(http_req_t *req, const char *path, const http_route_t **found)
{
	int best = NO_MATCH;
	for (const http_route_t *r = http_routes; r->method; r++) {
		if (!match(req, r->pattern, path, 0))
			continue;
		if (!strcmp(r->method, req->method)) {
			*found = r;
			return FULL_MATCH;
		}
		best = PATH_MATCH;
	}
	return best;
}

void http_dispatch(http_req_t *req, const char *query, const char *host)
{
	const http_route_t *route = NULL;
	int m = lookup(req, req->path, &route);
	if (m == FULL_MATCH) {
		match(req, route->pattern, req->path, 1);
		route->handler(req);
		return;
	}
	if (m == PATH_MATCH) {
		http_error(req, 405, "Method Not Allowed");
		return;
	}
	/* redirect_slashes: try the other spelling */
	size_t len = strlen(req->path);
	char *alt;
	if (len > 1 && req->path[len - 1] == '/')
		alt = arena_strndup(&req->arena, req->path, len - 1);
	else
		alt = arena_printf(&req->arena, "%s/", req->path);
	if (lookup(req, alt, &route) != NO_MATCH) {
		req->location = arena_printf(&req->arena, "http://%s%s%s%s", host ? host : "localhost", alt,
					     query && *query ? "?" : "", query && *query ? query : "");
		req->status = 307;
		sb_reset(&req->resp);
		req->content_type = NULL;
		return;
	}
	http_error(req, 404, "Not Found");
}
