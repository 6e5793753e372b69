/* lifecycle.h — what the collection routes (task_collection.c) and the
 * task-group lifecycle routes (task_lifecycle.c) share: activity rows and
 * the checks upstream runs before starting background work. Every
 * function that can fail has answered the error when it returns nonzero. */
#ifndef API_LIFECYCLE_H
#define API_LIFECYCLE_H

#include <stdint.h>

#include "http/http.h"
#include "model/state.h"

/* Inserts an activity (inside the caller's transaction) for task group
 * tgid owned by user_id; log NULL for none; ended: timestamp_ended = now.
 * 0 and *id, or -1 (db error, not answered). */
int activity_insert(db_t *db, int64_t user_id, int64_t tgid, const char *pkg_name, const char *version,
		    enum activity_state status, const char *action, const char *log, int ended, int64_t *id);

/* Answers TaskGroupActivityRead of activity id with the given status. */
void activity_reply(http_req_t *req, db_t *db, int64_t id, int status);

/* check_no_ongoing_activity, check_no_submitted_job,
 * check_no_related_workflowtask (422 each). */
int check_no_ongoing_activity(http_req_t *req, db_t *db, int64_t tgid);
int check_no_submitted_job(http_req_t *req, db_t *db, int64_t tgid);
int check_no_related_wftask(http_req_t *req, db_t *db, int64_t tgid);

#endif
