/* common.h — small helpers every API file uses. */
#ifndef API_COMMON_H
#define API_COMMON_H

#include "http/http.h"
#include "util/log.h"

/* Answers 500 after a database error, logging it (never to the client)
 * through the one door for 500s, http_error_500(). */
static inline void api_db_error(http_req_t *req, db_t *db)
{
	http_error_500(req, "database error: %s", db_errmsg(db));
}

/* Rolls back and answers 500. */
static inline void api_db_abort(http_req_t *req, db_t *db)
{
	api_db_error(req, db);
	db_rollback(db);
}

#define JBOOL(b) ((b) ? "true" : "false")

#endif
