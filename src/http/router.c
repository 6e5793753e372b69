/* router.c — matches a path against the route table (api/routes.c),
 * checks the route's guard, then calls its handler; answers what Starlette
 * answers when nothing matches: 405 when the path exists with another
 * method, 307 to the same path with the trailing slash toggled when that
 * one exists (FastAPI's redirect_slashes), else 404.
 *
 * The guard runs here, before the handler, as redis's processCommand checks
 * a command's flags (CMD_NO_AUTH...) before calling it: first the route's
 * `before` check if any, then authentication at the route's level (which
 * opens the worker's database connection and answers its 500 when it
 * cannot), so that a handler starts with req->user and a req->db that is
 * never NULL. */
#include "http/http.h"

#include <string.h>

#include "http/auth.h"

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

/* 0 when the handler may run; -1 after answering. */
static int guard(http_req_t *req, const http_route_t *route)
{
	if (route->auth == AUTH_NONE)
		return 0;
	if (route->auth == AUTH_UNSET) {
		http_error_500(req, "the route %s %s has no guard in the route table", route->method, route->pattern);
		return -1;
	}
	if (req->phase == 1) {
		/* the second call of an offloaded request (http_offload): its
		 * guard passed on the first; the connection is this thread's */
		req->db = http_db(req);
		return req->db ? 0 : -1;
	}
	if (route->before && route->before(req))
		return -1;
	if (req->user)
		return 0; /* checked before the body was read (http_route_of) */
	return auth_require(req, route->auth);
}

const http_route_t *http_route_of(http_req_t *req)
{
	const http_route_t *route = NULL;
	return lookup(req, req->path, &route) == FULL_MATCH ? route : NULL;
}

void http_dispatch(http_req_t *req, const char *query, const char *host)
{
	const http_route_t *route = NULL;
	int m = lookup(req, req->path, &route);
	if (m == FULL_MATCH) {
		req->route = route;
		match(req, route->pattern, req->path, 1);
		if (!guard(req, route))
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
