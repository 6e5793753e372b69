/* server.c — the HTTP server: libmicrohttpd with an internal pool of
 * request threads (epoll), each with its own database connection, plus two
 * slow-work threads for password hashing (http_offload), so that a burst of
 * logins never stalls other requests.
 *
 * Lifecycle of a request: MHD calls access() once with no body, then once
 * per body chunk, then once more with none. On the first call, a request
 * with a body has its route's guard checked (before_body(): no large body
 * is read for an unknown client); then we collect the body (413 beyond its
 * limit, 503 beyond the budget of buffered bodies), dispatch, and queue the
 * answer. GET /api/alive/ is answered on the first call from one shared,
 * prebuilt response: no allocation, no logging, no database.
 *
 * Shutdown is driven by cli/start.c against its one deadline (http.h):
 * http_wait_signal() returns on SIGINT/SIGTERM, http_quiesce() stops the
 * listener, http_drain() lets requests in flight finish until the deadline,
 * http_stop() stops the daemon and each thread's database connection
 * closes.
 *
 * The request threads poll() rather than epoll(): libmicrohttpd 0.9.75's
 * MHD_quiesce_daemon() on an epoll daemon with a thread pool races its
 * worker threads for removing the listening socket from their epoll sets,
 * and the loser aborts the process ("Failed to remove listen FD from epoll
 * set"), which this server hit at shutdown under load. With poll() quiesce
 * only wakes the workers. */
#include "http/http.h"

#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "config/settings.h"
#include "http/auth.h"
#include "http/metrics.h"
#include "util/log.h"
#include "util/timeutil.h"

struct http_conn_ctx {
	http_req_t req;
	struct MHD_Connection *conn;
	int64_t t0;
	struct timeval wall0; /* for the slow-response line's timestamps */
	const char *version;  /* "HTTP/1.1" (static) */
	sb_t query;           /* the query, as the router and the log lines show it */
	int queued;           /* an answer was queued */
	int too_large;        /* a refusal (enum refusal): the body is dropped */
	size_t limit;         /* the body limit of this request */
	size_t reserved;      /* bytes of the buffered-body budget it holds */
	int anonymous;        /* no user known before the body (before_body) */
	int suspended;
	int big;             /* a body or answer over BIG_REQUEST bytes */
	http_work_fn work;
	struct http_conn_ctx *next_work;
};

/*
 * After a request that moved over this many bytes (a dataset import, an
 * export of 100,000 images) its memory is free but glibc keeps the pages in
 * the thread's arena: malloc_trim() gives them back, so that one large
 * request does not set the server's resident size for good.
 */
#define BIG_REQUEST (1 << 20)

/* MHD 0.9.75 has one inactivity timeout, for a connection that has not sent
 * its headers as for an idle keep-alive one or a stalled upload: 30 s, not
 * 120 (docs/security.md, finding 2) */
#define HTTP_IDLE_TIMEOUT 30

/* Why a request's body is dropped, answered once the request is in. */
enum refusal {
	REFUSE_NONE,
	REFUSE_TOO_LARGE, /* 413 */
	REFUSE_BUSY,      /* 503: the budget of buffered bodies is spent */
	REFUSE_AUTH,      /* over HTTP_MAX_ANON_BODY with no user: see before_body */
};

/* The budget of request bodies buffered in memory across all connections
 * (FRACTAL_HTTP_BODY_BUDGET) and what is held of it; the per-address
 * connection limit (FRACTAL_HTTP_CONNECTIONS_PER_IP). docs/security.md,
 * finding 2. */
static size_t body_budget = (size_t)1 << 30;
static unsigned conns_per_ip = 256;
static atomic_size_t buffered;

static atomic_int inflight;
static struct MHD_Response *alive_response;
/* the context of GET /api/alive/ requests: no allocation for them */
static struct http_conn_ctx alive_marker;
static struct MHD_Daemon *daemon_handle;
static struct MHD_Daemon *metrics_daemon; /* FRACTAL_METRICS_ADDRESS's listener */
static const http_route_t *alive_route, *metrics_route;
static char *uds_path;                    /* the UNIX socket we listen on, removed at stop */

/* ---- per-thread database connection ---- */

static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static void close_thread_db(void *p)
{
	db_close(p);
}

static void make_db_key(void)
{
	pthread_key_create(&db_key, close_thread_db);
}

db_t *http_db(http_req_t *req)
{
	pthread_once(&db_key_once, make_db_key);
	db_t *db = pthread_getspecific(db_key);
	if (db)
		return db;
	sb_t err = SB_INIT;
	db = db_open(0, &err);
	if (!db) {
		log_error("database connection failed: %s", err.buf);
		sb_release(&err);
		if (req)
			http_error(req, 500, "Database connection failed");
		return NULL;
	}
	sb_release(&err);
	pthread_setspecific(db_key, db);
	return db;
}

/* ---- responses ---- */

/* Lets go of a span answer not (or no longer) to be sent. */
static void span_drop(http_req_t *req)
{
	if (req->span_release)
		req->span_release(req->span_cls);
	req->span = NULL;
	req->span_len = 0;
	req->span_tail = NULL;
	req->span_release = NULL;
	req->span_cls = NULL;
}

void http_json_span(http_req_t *req, int status, sb_t *head, const char *span, size_t len, const char *tail,
		    void (*release)(void *), void *cls)
{
	http_json_sb(req, status, head);
	req->span = span;
	req->span_len = len;
	req->span_tail = tail ? tail : "";
	req->span_release = release;
	req->span_cls = cls;
}

/* What a span answer's reader reads: head, span, tail, one after the
 * other, as libmicrohttpd asks for them. */
struct span_body {
	char *head;
	size_t head_len;
	const char *span;
	size_t span_len;
	const char *tail;
	size_t tail_len;
	void (*release)(void *);
	void *cls;
};

static ssize_t span_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct span_body *b = cls;
	const char *part[3] = { b->head, b->span, b->tail };
	size_t plen[3] = { b->head_len, b->span_len, b->tail_len }, done = 0;
	for (int k = 0; k < 3 && done < max; k++) {
		if (pos >= plen[k]) {
			pos -= plen[k];
			continue;
		}
		size_t n = plen[k] - (size_t)pos;
		if (n > max - done)
			n = max - done;
		memcpy(buf + done, part[k] + pos, n);
		done += n;
		pos = 0;
	}
	return done ? (ssize_t)done : MHD_CONTENT_READER_END_OF_STREAM;
}

static void span_free(void *cls)
{
	struct span_body *b = cls;
	if (b->release)
		b->release(b->cls);
	free(b->head);
	free(b);
}

/* The span answer of req as a response of libmicrohttpd's, which now owns
 * what the span holds (req's is cleared). */
static struct MHD_Response *span_response(http_req_t *req)
{
	struct span_body *b = xcalloc(1, sizeof(*b));
	b->head_len = req->resp.len;
	b->head = sb_detach(&req->resp);
	b->span = req->span;
	b->span_len = req->span_len;
	b->tail = req->span_tail;
	b->tail_len = strlen(req->span_tail);
	b->release = req->span_release;
	b->cls = req->span_cls;
	req->span_release = NULL;
	span_drop(req);
	return MHD_create_response_from_callback(b->head_len + b->span_len + b->tail_len, 256 * 1024, span_read, b,
						 span_free);
}

void http_json_sb(http_req_t *req, int status, sb_t *sb)
{
	span_drop(req);
	req->status = status;
	sb_release(&req->resp);
	req->resp = *sb;
	sb_init(sb, 0);
	req->content_type = "application/json";
}

void http_json(http_req_t *req, int status, const char *json)
{
	span_drop(req);
	req->status = status;
	sb_reset(&req->resp);
	sb_adds(&req->resp, json);
	req->content_type = "application/json";
}

void http_error_json(http_req_t *req, int status, const char *detail_json)
{
	span_drop(req);
	req->status = status;
	sb_reset(&req->resp);
	sb_adds(&req->resp, "{\"detail\":");
	sb_adds(&req->resp, detail_json);
	sb_addc(&req->resp, '}');
	req->content_type = "application/json";
}

void http_empty(http_req_t *req, int status)
{
	span_drop(req);
	req->status = status;
	req->content_type = NULL;
	sb_reset(&req->resp);
}

void http_error(http_req_t *req, int status, const char *detail)
{
	span_drop(req);
	req->status = status;
	sb_reset(&req->resp);
	sb_adds(&req->resp, "{\"detail\":");
	sb_add_json_str(&req->resp, detail);
	sb_addc(&req->resp, '}');
	req->content_type = "application/json";
}

void http_errorf(http_req_t *req, int status, const char *fmt, ...)
{
	sb_t sb = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	http_error(req, status, sb.buf);
	sb_release(&sb);
}

void http_error_500(http_req_t *req, const char *fmt, ...)
{
	sb_t sb = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	log_error("%s %s: %s", req->method, req->path, sb.buf);
	sb_release(&sb);
	http_error(req, 500, "Internal Server Error");
}

const char *http_header(http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->ctx->conn, MHD_HEADER_KIND, name);
}

const char *http_query(http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->ctx->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_cookie(http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->ctx->conn, MHD_COOKIE_KIND, name);
}

/* ---- slow work (password hashing) ---- */

#define SLOW_THREADS 2

static pthread_mutex_t work_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static struct http_conn_ctx *work_head, *work_tail;
static int work_stop;
static pthread_t slow_threads[SLOW_THREADS];

void http_offload(http_req_t *req, http_work_fn work)
{
	struct http_conn_ctx *ctx = req->ctx;
	ctx->work = work;
	ctx->suspended = 1;
}

static void *slow_worker(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&work_mu);
		while (!work_head && !work_stop)
			pthread_cond_wait(&work_cv, &work_mu);
		if (!work_head) {
			pthread_mutex_unlock(&work_mu);
			break;
		}
		struct http_conn_ctx *ctx = work_head;
		work_head = ctx->next_work;
		if (!work_head)
			work_tail = NULL;
		pthread_mutex_unlock(&work_mu);
		ctx->work(&ctx->req);
		ctx->work = NULL;
		ctx->req.phase = 1;
		MHD_resume_connection(ctx->conn);
	}
	/* this thread's database connection closes through the key destructor */
	return NULL;
}

static void enqueue_work(struct http_conn_ctx *ctx)
{
	MHD_suspend_connection(ctx->conn);
	pthread_mutex_lock(&work_mu);
	ctx->next_work = NULL;
	if (work_tail)
		work_tail->next_work = ctx;
	else
		work_head = ctx;
	work_tail = ctx;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&work_mu);
}

/* ---- MHD callbacks ---- */

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	sb_t *sb = cls;
	(void)kind;
	if (sb->len)
		sb_addc(sb, '&');
	sb_adds(sb, key);
	if (value) {
		sb_addc(sb, '=');
		sb_adds(sb, value);
	}
	return MHD_YES;
}

static enum MHD_Result send_response(struct http_conn_ctx *ctx)
{
	http_req_t *req = &ctx->req;
	size_t len = req->resp.len + req->span_len;
	if (len > BIG_REQUEST)
		ctx->big = 1;
	struct MHD_Response *resp;
	if (req->span)
		resp = span_response(req);
	else
		resp = MHD_create_response_from_buffer(len, sb_detach(&req->resp), MHD_RESPMEM_MUST_FREE);
	if (req->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
	if (req->location)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, req->location);
	if (req->status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "");
	if (req->extra_header_name)
		MHD_add_response_header(resp, req->extra_header_name, req->extra_header_value);
	enum MHD_Result r = MHD_queue_response(ctx->conn, (unsigned)req->status, resp);
	MHD_destroy_response(resp);
	ctx->queued = r == MHD_YES;
	return r;
}

static void req_plain_error(http_req_t *req, int status, const char *text)
{
	span_drop(req);
	req->status = status;
	sb_reset(&req->resp);
	sb_adds(&req->resp, text);
	req->content_type = "text/plain; charset=utf-8";
}

/* Takes n more bytes of the buffered-body budget for ctx: 0, or -1 when
 * the budget is spent (nothing taken). */
static int reserve(struct http_conn_ctx *ctx, size_t n)
{
	size_t was = atomic_fetch_add(&buffered, n);
	if (was + n > body_budget) {
		atomic_fetch_sub(&buffered, n);
		return -1;
	}
	ctx->reserved += n;
	return 0;
}

/* Runs the router on ctx's request (the query and Host from MHD). */
static void dispatch(struct http_conn_ctx *ctx)
{
	http_req_t *req = &ctx->req;
	req->status = 200;
	http_dispatch(req, ctx->query.buf, MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, "Host"));
}

/* The answer of a refused body into ctx->req. */
static void refuse(struct http_conn_ctx *ctx, enum refusal why)
{
	http_req_t *req = &ctx->req;
	ctx->too_large = why;
	const http_route_t *r;
	if (why == REFUSE_BUSY) {
		http_error(req, 503, "Too many request bodies in memory: retry later");
		req->extra_header_name = MHD_HTTP_HEADER_RETRY_AFTER;
		req->extra_header_value = "5";
	} else if (why == REFUSE_AUTH && !(r = http_route_of(req))) {
		dispatch(ctx); /* 404, 405 or 307: no handler runs */
	} else if (why == REFUSE_AUTH && r->auth > AUTH_NONE && auth_require(req, r->auth)) {
		/* the guard's own answer (401, 403), as the route gives it */
	} else {
		http_errorf(req, 413, "Request body too large (limit: %zu bytes)", ctx->limit);
	}
}

/*
 * Called with the headers of a request that announces a body, before any
 * of it is read (docs/security.md, finding 2), so that no large body is
 * buffered for a client that could not send it anyway. A guarded route
 * checks the token now; a request with no user known (a failed token, a
 * route without a guard such as login, a path that reaches no route) may
 * send at most HTTP_MAX_ANON_BODY bytes. Over that, its answer is the one
 * it would get anyway, given now without the body when the Content-Length
 * says so (MHD then closes the connection, dropping the body): the guard's
 * 401 or 403, the 404, 405 or 307 of a path without route, else 413. Within
 * it, the request runs as before (a route's .before check answers its 422
 * before the guard's 401, as upstream does), and keeps its connection.
 *
 * A known Content-Length takes its share of the budget of buffered bodies
 * now; without room, the body is dropped as it comes and the 503 answered
 * after it (the client, known or within the small limit, gets a clean
 * answer rather than a reset in mid-upload). Returns 1 when the answer is
 * in ctx->req, to be sent now, else 0.
 */
static int before_body(struct http_conn_ctx *ctx, unsigned long long cl)
{
	http_req_t *req = &ctx->req;
	const http_route_t *r = http_route_of(req);
	if (!r || r->auth <= AUTH_NONE) {
		ctx->anonymous = 1;
	} else if (auth_require(req, r->auth)) {
		/* answered again once the body is in (router.c's guard) */
		ctx->anonymous = 1;
		req->user = NULL;
		req->status = 0;
		req->extra_header_name = NULL;
		sb_reset(&req->resp);
	}
	if (ctx->anonymous)
		ctx->limit = HTTP_MAX_ANON_BODY;
	if (cl > ctx->limit) {
		refuse(ctx, ctx->anonymous ? REFUSE_AUTH : REFUSE_TOO_LARGE);
		return 1;
	}
	if (cl && reserve(ctx, (size_t)cl))
		ctx->too_large = REFUSE_BUSY; /* answered after the body, dropped */
	return 0;
}

/* ---- the request's log lines and counters ---- */

static const char *version_of(const char *v)
{
	return v && !strcmp(v, "HTTP/1.0") ? "HTTP/1.0" : "HTTP/1.1";
}

/* "host:port" of the client, as uvicorn prints it ("" on a UNIX socket) */
static void client_addr(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char host[INET6_ADDRSTRLEN] = "";
	out[0] = '\0';
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in6->sin6_port));
	}
}

/* upstream's _endpoint_has_background_task: no slow-response line for
 * these, their work goes on after the answer */
static int has_background_task(const char *method, const char *path)
{
	return !strcmp(method, "POST") && (strstr(path, "/job/submit/") || strstr(path, "/task/collect/pi") ||
					   (strstr(path, "/task-group/") && !strstr(path, "core")));
}

static void iso_local_ms(const struct timeval *tv, char *out, size_t n)
{
	struct tm tm;
	char buf[32];
	localtime_r(&tv->tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03d", buf, (int)(tv->tv_usec / 1000 % 1000));
}

/*
 * After an answer: the request's counters (/metrics), uvicorn's access line
 * with the duration (logger uvicorn.access, INFO, buffered), and upstream's
 * slow-response warning past FRACTAL_LONG_REQUEST_TIME, which names the
 * route template: "GET /api/v2/project/{project_id}/?, 200, 31.02, <start>,
 * <end>" (local times, as upstream's datetime.now().isoformat()).
 */
static void request_done(struct MHD_Connection *conn, const char *method, const char *path, const char *query,
			 const char *version, int status, const http_route_t *route, int64_t usec,
			 const struct timeval *wall0)
{
	double secs = (double)usec / 1e6;
	http_metrics_observe(route, method, status, secs);
	if (log_enabled_for("uvicorn.access", LOG_INFO)) {
		char addr[INET6_ADDRSTRLEN + 8], code[64], small[512];
		client_addr(conn, addr, sizeof(addr));
		const char *reason = MHD_get_reason_phrase_for((unsigned)status);
		snprintf(code, sizeof(code), "%d%s%s", status, *reason ? " " : "", reason);
		char *line = small;
		int len = snprintf(small, sizeof(small), "%s %s%s%s %s", method, path, *query ? "?" : "", query, version);
		if (len >= (int)sizeof(small)) {
			line = xmalloc((size_t)len + 1);
			snprintf(line, (size_t)len + 1, "%s %s%s%s %s", method, path, *query ? "?" : "", query, version);
		}
		struct log_access a = { addr, line, code };
		/* the milliseconds with two decimals, without the cost of %f */
		long long hundredths = (usec + 5) / 10;
		log_access(LOG_INFO, "uvicorn.access", &a, "%s - \"%s\" %s %lld.%02lldms", addr, line, code,
			   hundredths / 100, hundredths % 100);
		if (line != small)
			free(line);
	}
	if (secs > settings.long_request_time && !has_background_task(method, path)) {
		struct timeval now;
		char t0[48], t1[48];
		gettimeofday(&now, NULL);
		iso_local_ms(wall0, t0, sizeof(t0));
		iso_local_ms(&now, t1, sizeof(t1));
		log_msg(LOG_WARNING, "slow-response", "%s %s?%s, %d, %.2f, %s, %s", method, route ? route->pattern : path,
			query, status, secs, t0, t1);
	}
}

/* GET /api/alive/ allocates nothing: its start time waits here between the
 * two calls MHD makes for it (on the same thread, back to back) */
static __thread struct {
	struct MHD_Connection *conn;
	int64_t t0;
} alive_start;

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	struct http_conn_ctx *ctx = *con_cls;
	if (ctx == &alive_marker) {
		enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, alive_response);
		int64_t now = mono_usec();
		struct timeval wall;
		gettimeofday(&wall, NULL);
		request_done(conn, method, url, "", version_of(version), 200, alive_route,
			     alive_start.conn == conn ? now - alive_start.t0 : 0, &wall);
		return r;
	}
	if (!ctx) {
		/* answered on the next call, once the request is complete: a
		 * response queued on the first call makes MHD close the connection */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* both framings: a proxy in front may read the other one (request
		 * smuggling); refused below, on every route */
		int both = cl && MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
		if (!both && method[0] == 'G' && !strcmp(url, "/api/alive/") && !strcmp(method, "GET") &&
		    !MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL)) {
			*con_cls = &alive_marker;
			alive_start.conn = conn;
			alive_start.t0 = mono_usec();
			return MHD_YES;
		}
		atomic_fetch_add(&inflight, 1);
		ctx = xcalloc(1, sizeof(*ctx));
		ctx->conn = conn;
		ctx->t0 = mono_usec();
		gettimeofday(&ctx->wall0, NULL);
		ctx->version = version_of(version);
		sb_init(&ctx->query, 0);
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_arg, &ctx->query);
		ctx->req.ctx = ctx;
		ctx->req.method = method;
		ctx->req.path = url;
		sb_init(&ctx->req.body, 0);
		sb_init(&ctx->req.resp, 0);
		*con_cls = ctx;
		if (both) {
			/* before the body, with the answer of uvicorn's httptools
			 * parser; MHD closes the connection after it (too_large
			 * drops what body arrives) */
			ctx->too_large = REFUSE_TOO_LARGE;
			req_plain_error(&ctx->req, 400, "Invalid HTTP request received.");
			return send_response(ctx);
		}
		ctx->limit = HTTP_MAX_BODY;
		if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
			/* answer now, before reading any of it; MHD closes the
			 * connection after this response */
			ctx->too_large = REFUSE_TOO_LARGE;
			http_errorf(&ctx->req, 413, "Request body too large (limit: %u bytes)", HTTP_MAX_BODY);
			return send_response(ctx);
		}
		int has_body = (cl && strtoull(cl, NULL, 10) > 0) ||
			       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
		if (has_body && before_body(ctx, cl ? strtoull(cl, NULL, 10) : 0))
			return send_response(ctx);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t len = ctx->req.body.len + *upload_data_size;
		if (!ctx->too_large && len > ctx->limit)
			ctx->too_large = ctx->anonymous ? REFUSE_AUTH : REFUSE_TOO_LARGE;
		if (!ctx->too_large && len > ctx->reserved && reserve(ctx, len - ctx->reserved))
			ctx->too_large = REFUSE_BUSY;
		if (!ctx->too_large)
			sb_add(&ctx->req.body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	http_req_t *req = &ctx->req;
	if (ctx->too_large) {
		refuse(ctx, ctx->too_large);
		return send_response(ctx);
	}
	if (req->phase == 0 && !ctx->suspended) {
		dispatch(ctx);
		if (ctx->suspended) {
			enqueue_work(ctx);
			return MHD_YES;
		}
	} else if (req->phase == 1 && ctx->suspended) {
		ctx->suspended = 0;
		http_dispatch(req, NULL, NULL);
	}
	return send_response(ctx);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	struct http_conn_ctx *ctx = *con_cls;
	if (!ctx || ctx == &alive_marker)
		return;
	if (ctx->queued)
		request_done(conn, ctx->req.method, ctx->req.path, ctx->query.buf, ctx->version, ctx->req.status,
			     ctx->req.route, mono_usec() - ctx->t0, &ctx->wall0);
	sb_release(&ctx->query);
	int big = ctx->big || ctx->req.body.len > BIG_REQUEST;
	if (ctx->reserved)
		atomic_fetch_sub(&buffered, ctx->reserved);
	sb_release(&ctx->req.body);
	sb_release(&ctx->req.resp);
	span_drop(&ctx->req);
	arena_free(&ctx->req.arena);
	free(ctx);
	*con_cls = NULL;
	if (big)
		malloc_trim(0);
	atomic_fetch_sub(&inflight, 1);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* MHD's own unescaping (%HH) except that %00 stays as it is: decoded, the
 * NUL would end the C string and "/api/v2/project/1/%00/../x" would be
 * served as "/api/v2/project/1/". Left in place, it makes the path match
 * nothing (404) or fail a path parameter (422), as a NUL does in Starlette;
 * a query value keeps the three characters. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	char *w = s;
	for (const char *r = s; *r;) {
		int hi, lo;
		if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi || lo)) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	sb_t sb = SB_INIT;
	sb_vaddf(&sb, fmt, ap);
	while (sb.len && sb.buf[sb.len - 1] == '\n')
		sb.buf[--sb.len] = '\0';
	log_msg(LOG_WARNING, "http", "%s", sb.buf);
	sb_release(&sb);
}

/* ---- the metrics listener (FRACTAL_METRICS_ADDRESS) ---- */

/* Serves GET /metrics alone, to anyone who can reach its address (the
 * operator's choice: a loopback or private address), with no guard: the
 * route's handler runs with this thread's database connection. */
static enum MHD_Result metrics_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	if (!*con_cls) { /* answered once the request is in */
		*con_cls = conn;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	http_req_t req = { .method = method, .path = url, .status = 200 };
	sb_init(&req.body, 0);
	sb_init(&req.resp, 0);
	if (strcmp(url, "/metrics"))
		http_error(&req, 404, "Not Found");
	else if (strcmp(method, "GET"))
		http_error(&req, 405, "Method Not Allowed");
	else if ((req.db = http_db(&req)))
		metrics_route->handler(&req);
	size_t len = req.resp.len;
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, sb_detach(&req.resp), MHD_RESPMEM_MUST_FREE);
	if (req.content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req.content_type);
	enum MHD_Result r = MHD_queue_response(conn, (unsigned)req.status, resp);
	MHD_destroy_response(resp);
	sb_release(&req.body);
	arena_free(&req.arena);
	return r;
}

/* "HOST:PORT" or "[V6]:PORT" into host (malloc'd) and port; -1 if malformed */
static int split_address(const char *a, char **host, int *port)
{
	const char *colon = strrchr(a, ':');
	if (!colon || colon == a)
		return -1;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 1 || p > 65535)
		return -1;
	const char *h = a;
	size_t hl = (size_t)(colon - a);
	if (h[0] == '[') {
		if (hl < 3 || h[hl - 1] != ']')
			return -1;
		h++;
		hl -= 2;
	}
	*host = xstrndup(h, hl);
	*port = (int)p;
	return 0;
}

static const http_route_t *find_route(const char *method, const char *pattern)
{
	for (const http_route_t *r = http_routes; r->method; r++)
		if (!strcmp(r->method, method) && !strcmp(r->pattern, pattern))
			return r;
	return NULL;
}

/* FRACTAL_ENABLE_METRICS and FRACTAL_METRICS_ADDRESS: 0, or -1 with a
 * message; *addr set (malloc'd) when metrics have their own listener. */
static int read_metrics_settings(char **addr, sb_t *err)
{
	const char *on = settings_raw("FRACTAL_ENABLE_METRICS");
	const char *where = settings_raw("FRACTAL_METRICS_ADDRESS");
	*addr = NULL;
	if (on && strcmp(on, "true") && strcmp(on, "false")) {
		sb_addf(err, "invalid settings: FRACTAL_ENABLE_METRICS: Input should be 'true' or 'false' (got '%s')", on);
		return -1;
	}
	int enabled = on && !strcmp(on, "true");
	if (where && !enabled) {
		sb_adds(err, "invalid settings: FRACTAL_METRICS_ADDRESS is set but FRACTAL_ENABLE_METRICS is not 'true'");
		return -1;
	}
	if (!enabled)
		return 0;
	metrics_route = find_route("GET", "/metrics");
	if (where) {
		char *h;
		int p;
		if (split_address(where, &h, &p)) {
			sb_addf(err, "invalid settings: FRACTAL_METRICS_ADDRESS: Input should be HOST:PORT (got '%s')", where);
			return -1;
		}
		free(h);
		*addr = xstrdup(where);
	}
	http_metrics_enable(*addr != NULL);
	return 0;
}

static struct MHD_Daemon *start_metrics_listener(const char *addr, sb_t *err)
{
	char *host;
	int port;
	split_address(addr, &host, &port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	int gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai) {
		sb_addf(err, "FRACTAL_METRICS_ADDRESS: cannot resolve host '%s': %s", host, gai_strerror(gai));
		free(host);
		return NULL;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
			 (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, metrics_cb, NULL,
						MHD_OPTION_SOCK_ADDR, ai->ai_addr,
						MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT,
						MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
						MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
						MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d)
		sb_addf(err, "FRACTAL_METRICS_ADDRESS: cannot listen on %s (address in use, or not allowed)", addr);
	else
		log_info("Metrics served on http://%s/metrics", addr);
	free(host);
	return d;
}

/* ---- the UNIX socket ---- */

/*
 * A listening UNIX socket at path with the given file mode (FRACTAL_UNIX_SOCKET_MODE,
 * default 0660: the proxy's group may connect, others not). A socket file
 * left by a server that died is removed; one a live server answers on, or a
 * file that is not a socket, is refused. The umask is narrowed around
 * bind() so that the file never exists with wider permissions. Returns the
 * descriptor, or -1 with a message.
 */
static int listen_unix(const char *path, unsigned mode, sb_t *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		sb_addf(err, "the UNIX socket path '%s' is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct stat st;
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			sb_addf(err, "'%s' exists and is not a socket: not removed", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int live = probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int why = errno;
		if (probe >= 0)
			close(probe);
		if (live) {
			sb_addf(err, "another server is listening on the UNIX socket '%s'", path);
			return -1;
		}
		if (why != ECONNREFUSED && why != ENOENT) {
			sb_addf(err, "cannot check the UNIX socket '%s': %s", path, strerror(why));
			return -1;
		}
		if (unlink(path) && errno != ENOENT) {
			sb_addf(err, "cannot remove the stale UNIX socket '%s': %s", path, strerror(errno));
			return -1;
		}
		log_info("Removed the stale UNIX socket %s", path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sb_addf(err, "cannot create a UNIX socket: %s", strerror(errno));
		return -1;
	}
	mode_t old = umask((mode_t)(~mode & 0777));
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int why = errno;
	umask(old);
	if (rc || chmod(path, (mode_t)mode) || listen(fd, 1024)) {
		if (!rc)
			why = errno;
		sb_addf(err, "cannot listen on the UNIX socket '%s': %s", path, strerror(why));
		close(fd);
		if (!rc)
			unlink(path);
		return -1;
	}
	return fd;
}

static int read_socket_mode(unsigned *mode, sb_t *err)
{
	const char *raw = settings_raw("FRACTAL_UNIX_SOCKET_MODE");
	*mode = 0660;
	if (!raw)
		return 0;
	char *end;
	unsigned long m = strtoul(raw, &end, 8);
	if (!*raw || *end || m > 0777 || raw[0] == '-') {
		sb_addf(err, "invalid settings: FRACTAL_UNIX_SOCKET_MODE: Input should be an octal file mode such as "
			"0660 (got '%s')", raw);
		return -1;
	}
	*mode = (unsigned)m;
	return 0;
}

int http_start(const char *host, int port, const char *uds, sb_t *err)
{
	unsigned long long n = conns_per_ip;
	char *metrics_addr = NULL;
	unsigned sock_mode;
	static char alive_body[128];

	if (settings_uint("FRACTAL_HTTP_CONNECTIONS_PER_IP", &n, err))
		return -1;
	conns_per_ip = n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
	n = body_budget;
	if (settings_uint("FRACTAL_HTTP_BODY_BUDGET", &n, err))
		return -1;
	body_budget = (size_t)n;
	if (read_socket_mode(&sock_mode, err) || read_metrics_settings(&metrics_addr, err))
		return -1;
	alive_route = find_route("GET", "/api/alive/");

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	int listen_fd = -1;
	if (uds) {
		/* one proxy in front: the per-address limit would cap all clients */
		conns_per_ip = 0;
		if ((listen_fd = listen_unix(uds, sock_mode, err)) < 0) {
			free(metrics_addr);
			return -1;
		}
		uds_path = xstrdup(uds);
	} else {
		char portstr[16];
		snprintf(portstr, sizeof(portstr), "%d", port);
		int gai = getaddrinfo(host, portstr, &hints, &ai);
		if (gai) {
			sb_addf(err, "cannot resolve host '%s': %s", host, gai_strerror(gai));
			free(metrics_addr);
			return -1;
		}
	}
	snprintf(alive_body, sizeof(alive_body), "{\"alive\":true,\"version\":\"%s\"}", FRACTAL_VERSION);
	alive_response = MHD_create_response_from_buffer(strlen(alive_body), alive_body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(alive_response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned pool = (unsigned)(ncpu > 0 ? ncpu * 2 : 4);
	if (pool < 4)
		pool = 4;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ITC | MHD_USE_TURBO;
	if (ai && ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	/* signals go to the thread that waits for them, not to workers */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	daemon_handle = MHD_start_daemon(flags, (uint16_t)(uds ? 0 : port), NULL, NULL, access_cb, NULL,
					 uds ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
					 uds ? (void *)(intptr_t)listen_fd : (void *)ai->ai_addr,
					 MHD_OPTION_THREAD_POOL_SIZE, pool,
					 MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
					 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT,
					 MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
					 MHD_OPTION_PER_IP_CONNECTION_LIMIT, conns_per_ip,
					 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
					 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
					 MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL,
					 MHD_OPTION_END);
	if (ai)
		freeaddrinfo(ai);
	if (!daemon_handle) {
		if (uds)
			sb_addf(err, "cannot serve on the UNIX socket '%s'", uds);
		else
			sb_addf(err, "cannot listen on %s:%d (address in use, or not allowed)", host, port);
		if (listen_fd >= 0) {
			close(listen_fd);
			unlink(uds);
		}
		MHD_destroy_response(alive_response);
		free(metrics_addr);
		return -1;
	}
	if (metrics_addr && !(metrics_daemon = start_metrics_listener(metrics_addr, err))) {
		MHD_stop_daemon(daemon_handle);
		if (uds)
			unlink(uds);
		MHD_destroy_response(alive_response);
		free(metrics_addr);
		return -1;
	}
	free(metrics_addr);
	for (int i = 0; i < SLOW_THREADS; i++)
		pthread_create(&slow_threads[i], NULL, slow_worker, NULL);
	if (uds)
		log_info("fractal-server %s listening on unix:%s (mode %04o, %u request threads)", FRACTAL_VERSION, uds,
			 sock_mode, pool);
	else
		log_info("fractal-server %s listening on http://%s:%d (%u request threads)", FRACTAL_VERSION, host, port,
			 pool);
	return 0;
}

int http_inflight(void)
{
	return atomic_load(&inflight);
}

int http_wait_signal(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sig = 0;
	sigwait(&set, &sig);
	log_info("Received %s: stop accepting, finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
	return sig;
}

/* ours after quiesce (libmicrohttpd hands it over), closed only once the
 * request threads are gone: they may still poll it for a moment */
static MHD_socket quiesced_fd = MHD_INVALID_SOCKET;

void http_quiesce(void)
{
	quiesced_fd = MHD_quiesce_daemon(daemon_handle);
}

int http_drain(int64_t deadline_usec)
{
	while (atomic_load(&inflight) > 0 && mono_usec() < deadline_usec)
		usleep(10000);
	int n = atomic_load(&inflight);
	if (n > 0)
		log_warning("%d requests still in flight at the shutdown deadline: closing them", n);
	return n;
}

void http_stop(void)
{
	pthread_mutex_lock(&work_mu);
	work_stop = 1;
	pthread_cond_broadcast(&work_cv);
	pthread_mutex_unlock(&work_mu);
	for (int i = 0; i < SLOW_THREADS; i++)
		pthread_join(slow_threads[i], NULL);
	if (metrics_daemon)
		MHD_stop_daemon(metrics_daemon);
	MHD_stop_daemon(daemon_handle);
	if (quiesced_fd != MHD_INVALID_SOCKET)
		close(quiesced_fd);
	if (uds_path) {
		unlink(uds_path);
		free(uds_path);
		uds_path = NULL;
	}
	MHD_destroy_response(alive_response);
	log_info("Shutdown complete");
}
