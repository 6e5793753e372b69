/* http.h — requests, responses and routing, on top of libmicrohttpd.
 *
 * A handler gets an http_req_t whose guard the router has already checked
 * (req->user and req->db set, see enum auth_level), reads what it needs
 * (path parameters, query arguments, body), and answers through http_json()
 * or http_error*(); every error body is upstream's {"detail": ...}, and
 * every 500 leaves through http_error_500(), which logs why. All memory a
 * handler allocates comes from req->arena and dies with the request.
 * Nothing below src/api/ sees this header's MHD types. */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "util/arena.h"
#include "util/sb.h"

#define HTTP_MAX_PARAMS 6
#define HTTP_MAX_BODY (256u << 20) /* 256 MiB: image lists can be large */
/* The body limit of a request no user is known for (a route without a
 * guard, or a failed token on a route with a .before check): login forms
 * are tiny (docs/security.md, finding 2) */
#define HTTP_MAX_ANON_BODY (64u << 10)

typedef struct http_user {
	int64_t id;
	const char *email;
	int is_active, is_superuser, is_verified, is_guest;
	int64_t profile_id;   /* 0: none */
} http_user_t;

typedef struct http_req http_req_t;
typedef void (*http_handler_fn)(http_req_t *req);
typedef void (*http_work_fn)(http_req_t *req);

struct http_req {
	const char *method;
	const char *path;                /* without the query string */
	const char *params[HTTP_MAX_PARAMS];  /* {placeholders} of the route, in order */
	int nparams;
	sb_t body;                       /* the request body */
	arena_t arena;
	const struct http_route *route;  /* the route matched (router.c), NULL: none */
	http_user_t *user;               /* set by the route's guard (router.c) */
	db_t *db;                        /* the worker thread's connection, set by the router
					  * before the handler of a guarded route: never NULL
					  * there; NULL for AUTH_NONE routes (see http_db) */
	/* response */
	int status;
	sb_t resp;
	const char *content_type;
	const char *location;            /* Location header, if any */
	const char *extra_header_name, *extra_header_value;
	/* a borrowed span answered after resp (http_json_span), or none */
	const char *span;
	size_t span_len;
	const char *span_tail;
	void (*span_release)(void *);
	void *span_cls;
	/* offloaded work (see http_offload) */
	int phase;                       /* 0 first call; 1 after the work ran */
	void *work_state;
	/* private */
	struct http_conn_ctx *ctx;
};

/* Answers with a JSON body (copied). */
void http_json(http_req_t *req, int status, const char *json);
/* Answers with the JSON in sb (taken over; sb is left empty). */
void http_json_sb(http_req_t *req, int status, sb_t *sb);
/* Answers with a JSON body that is head (taken; sb is left empty), then
 * the len bytes at span, then tail (a constant string). span is not copied:
 * it is read while the answer goes out, and release(cls) is called once
 * (when the answer is sent or dropped, or when another answer replaces
 * this one; NULL: nothing to call) to let go of what keeps it alive. For an answer as large as a
 * dataset's export (its image list's text, 187 MB at 10^6 images), which
 * would otherwise be a copy of it for as long as the client reads. */
void http_json_span(http_req_t *req, int status, sb_t *head, const char *span, size_t len, const char *tail,
		    void (*release)(void *), void *cls);
/* {"detail": "<text>"} */
void http_error(http_req_t *req, int status, const char *detail);
void http_errorf(http_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The one door for a 500: logs "METHOD PATH: <why>" (never to the
 * client) and answers {"detail": "Internal Server Error"}. */
void http_error_500(http_req_t *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* {"detail": <raw JSON>} */
void http_error_json(http_req_t *req, int status, const char *detail_json);

/* An answer with no body (200 for stars, 201, 204...). */
void http_empty(http_req_t *req, int status);

/* A request header, or NULL. */
const char *http_header(http_req_t *req, const char *name);
/* A query argument, or NULL. */
const char *http_query(http_req_t *req, const char *name);
/* A cookie, or NULL. */
const char *http_cookie(http_req_t *req, const char *name);

/* The worker thread's database connection (opened on first use, kept for
 * the life of the thread). NULL after answering 500 when it cannot open.
 * Handlers use req->db, which the router set from this; only an AUTH_NONE
 * route that needs the database (login, after checking its form) calls it. */
db_t *http_db(http_req_t *req);

/* Runs work(req) on the slow-work threads (password hashing), so that the
 * request threads keep serving others; the handler is then called again
 * with req->phase == 1 to finish. A handler calls this and returns. */
void http_offload(http_req_t *req, http_work_fn work);

/* Routing (router.c). Patterns are exact paths whose segments may be
 * "{name}" placeholders; the table is the one in api/routes.c.
 *
 * Each route names its guard, upstream's dependency (routes.md's caller
 * column), as redis names a command's flags: the router checks it before
 * the handler runs, so handlers neither authenticate nor open the
 * database. A token comes from "Authorization: Bearer <jwt>" or the
 * fastapiusersauth cookie; it must verify with JWT_SECRET_KEY, carry
 * fastapi-users' audience, not be expired and name an active user, else
 * 401 {"detail": "Unauthorized"}; a user below the level gets upstream's
 * 403. AUTH_UNSET (a route written without a guard) is refused with a 500. */
enum auth_level {
	AUTH_UNSET,       /* never valid: every route names its guard */
	AUTH_NONE,        /* anyone: no token; the handler gets no connection */
	AUTH_ACTIVE,      /* current_user_act */
	AUTH_VERIFIED,    /* current_user_act_ver */
	AUTH_SUPERUSER,   /* current_superuser_act */
	AUTH_GUEST,       /* get_api_guest: verified, with a profile */
	AUTH_USER,        /* get_api_user: as guest, and not a guest-only user */
};

/* A check some routes make before their guard, where upstream resolves a
 * dependency before the user's (a body that must be JSON, pagination):
 * 0, or -1 after answering. It must not touch the database. */
typedef int (*http_check_fn)(http_req_t *req);

typedef struct http_route {
	const char *method;
	const char *pattern;
	http_handler_fn handler;
	enum auth_level auth;
	http_check_fn before;  /* NULL: none */
	int hidden;            /* 1: not in the OpenAPI document (its own pages) */
} http_route_t;
extern const http_route_t http_routes[];

/* The route req->method and req->path reach, or NULL (a 404, 405 or 307):
 * the server reads its .auth before accepting a body. */
const http_route_t *http_route_of(http_req_t *req);

/* Runs the router on req: the handler, or 404/405/307 as Starlette does.
 * A guarded route whose req->user is already set (the server checked the
 * token before reading the body) runs its .before check only. */
void http_dispatch(http_req_t *req, const char *query, const char *host);

/* Server (server.c), driven by cli/start.c:
 *   http_start()        listens and starts the request threads; SIGINT and
 *                       SIGTERM are blocked in the calling thread and in
 *                       every thread started after. 0, or -1 with a message
 *                       in err;
 *   http_wait_signal()  blocks until SIGINT or SIGTERM and returns it;
 *   http_quiesce()      stops accepting connections;
 *   http_drain()        until no request is in flight or the deadline (on
 *                       mono_usec()); returns the number still in flight;
 *   http_stop()         stops the daemon (cutting what is left). */
/* uds: listen on this UNIX socket instead of host:port (NULL: TCP); the
 * metrics listener and FRACTAL_HTTP_* limits come from the settings. */
int http_start(const char *host, int port, const char *uds, sb_t *err);
int http_wait_signal(void);
void http_quiesce(void);
int http_drain(int64_t deadline_usec);
void http_stop(void);

#endif
