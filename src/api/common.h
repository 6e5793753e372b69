/* common.h — small helpers every API file uses. */
#ifndef API_COMMON_H
#define API_COMMON_H

#include "http/http.h"
#include "util/log.h"

/* Answers 500 after a database error, logging it (never to the client). */
static inline void api_db_error(http_req_t *req, db_t *db)
{
	log_error("%s %s: database error: %s", req->method, req->path, db_errmsg(db));
	http_error(req, 500, "Internal Server Error");
}

/* Rolls back and answers 500. */
static inline void api_db_abort(http_req_t *req, db_t *db)
{
	api_db_error(req, db);
	db_rollback(db);
}

#define JBOOL(b) ((b) ? "true" : "false")

#endif
