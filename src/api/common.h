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

/* Begins a check-then-write section serialised on (scope, id): db_begin()
 * then db_lock_key(). Returns -1 after answering 500 (nothing to roll back). */
static inline int api_begin_locked(http_req_t *req, db_t *db, const char *scope, int64_t id)
{
	if (db_begin(db)) {
		api_db_error(req, db);
		return -1;
	}
	if (db_lock_key(db, scope, id)) {
		api_db_abort(req, db);
		return -1;
	}
	return 0;
}

#define JBOOL(b) ((b) ? "true" : "false")

#endif
