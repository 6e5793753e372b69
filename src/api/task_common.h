/* task_common.h — what the task, task-group and admin task routes share:
 * upstream's access rules for task groups and tasks
 * (_aux_functions_tasks.py), the ownership query parameters and the
 * non-duplication checks of creation routes, and the JSON of TaskRead,
 * TaskReadSlim, TaskGroupRead(Slim|Superuser) and TaskGroupActivityRead.
 *
 * Every function that can fail answers the error itself (404, 403, 422 or
 * 500) and returns nonzero; the handler then just returns. Strings in the
 * rows live in the request arena. */
#ifndef TASK_COMMON_H
#define TASK_COMMON_H

#include <stdint.h>

#include "http/http.h"

typedef struct tg_row {
	int64_t id;
	int64_t user_id;
	int64_t user_group_id;   /* 0: null */
	int64_t resource_id;
	const char *origin, *pkg_name, *version;
	int active;
} tg_row_t;

typedef struct task_row {
	int64_t id;
	const char *name, *type;
	tg_row_t tg;
} task_row_t;

/* The resource of the user's profile (0 if the user has none). */
int user_resource_id(http_req_t *req, db_t *db, int64_t user_id, int64_t *out);

/* A task group by id; 404 "TaskGroupV2 <id> not found". */
int tg_get(http_req_t *req, db_t *db, int64_t id, tg_row_t *out);
/* _get_task_group_read_access / _get_task_group_full_access for req->user. */
int tg_read_access(http_req_t *req, db_t *db, int64_t id, tg_row_t *out);
int tg_full_access(http_req_t *req, db_t *db, int64_t id, tg_row_t *out);
/* _get_task_read_access / _get_task_full_access: the group's access, and
 * the user's resource must be the group's. */
int task_access(http_req_t *req, db_t *db, int64_t task_id, int full, task_row_t *out);

/* _verify_user_belongs_to_group: 404 when the group is missing, 403 when
 * the user is not a member. */
int verify_user_in_group(http_req_t *req, db_t *db, int64_t user_id, int64_t group_id);
/* The user_group_id and private query parameters of creation routes, as
 * read by query_ownership (which only checks their types), then resolved
 * by valid_user_group_id (_get_valid_user_group_id): *out is the group to
 * use, 0 for none. */
typedef struct ownership {
	int has_group;
	int64_t group_id;
	int private_;
} ownership_t;
int query_ownership(http_req_t *req, ownership_t *o);
int valid_user_group_id(http_req_t *req, db_t *db, const ownership_t *o, int64_t *out);
/* The non-duplication checks (422). group_id 0 skips the group check. */
int nondup_user(http_req_t *req, db_t *db, int64_t user_id, const char *pkg_name, const char *version,
		int64_t resource_id);
int nondup_group(http_req_t *req, db_t *db, int64_t group_id, const char *pkg_name, const char *version);

/* SQL select lists in the order of the JSON models; task_read_json and
 * task_slim_json read a row from column c on. */
#define TASK_COLS                                                                                           \
	"t.id, t.name, t.type, t.version, t.is_core, t.command_non_parallel, t.command_parallel, "            \
	"t.meta_parallel, t.meta_non_parallel, t.args_schema_non_parallel, t.args_schema_parallel, "         \
	"t.args_schema_version, t.docs_info, t.docs_link, t.input_types, t.output_types, t.taskgroupv2_id, " \
	"t.category, t.modality, t.authors, t.tags"
#define TASK_NCOLS 21
void task_read_json(sb_t *o, db_res_t *r, int row, int c);
void task_slim_json(sb_t *o, db_res_t *r, int row, int c);

/* A task group's columns with its owner's e-mail and in_use, to select
 * FROM TG_FROM (taskgroupv2 g joined with its owner u). */
#define TG_IN_USE "EXISTS (SELECT 1 FROM taskv2 tu JOIN workflowtaskv2 wu ON wu.task_id = tu.id WHERE tu.taskgroupv2_id = g.id)"
#define TG_COLS                                                                                             \
	"g.id, g.user_group_id, g.origin, g.pkg_name, g.version, g.python_version, g.pixi_version, g.path, " \
	"g.venv_path, g.archive_path, g.pip_extras, g.pinned_package_versions_pre, "                         \
	"g.pinned_package_versions_post, g.active, g.timestamp_created, g.timestamp_last_used, g.user_id, "  \
	"g.resource_id, u.email, " TG_IN_USE
#define TG_FROM "taskgroupv2 g JOIN user_oauth u ON u.id = g.user_id"

enum tg_view { TG_READ, TG_SLIM, TG_SUPERUSER };
/* Appends the task groups of rows[0..n) of r (selected with TG_COLS) as
 * JSON objects separated by commas, each with its task list (one query for
 * all of them). rows NULL: every row of r. -1 after answering 500. */
int tg_json(http_req_t *req, db_t *db, sb_t *o, db_res_t *r, const int *rows, int n, enum tg_view view);

/* TaskGroupActivityRead. */
#define ACTIVITY_COLS \
	"a.id, a.user_id, a.taskgroupv2_id, a.timestamp_started, a.timestamp_ended, a.pkg_name, a.version, a.status, a.action, a.log"
void activity_json(sb_t *o, db_res_t *r, int row);

/* Query parameters with an enum type: NULL when absent; -1 after the 422
 * (expected is pydantic's "'a', 'b' or 'c'"; a status's is its state
 * machine's, model/state.h). */
#define ACTIVITY_ACTION_EXPECTED "'collect', 'deactivate', 'reactivate', 'delete' or 'reset'"
#define TG_ORIGIN_EXPECTED "'pypi', 'wheel-file', 'pixi' or 'other'"
int query_enum(http_req_t *req, const char *name, const char *expected, const char **out);

/* An optional bool query parameter: -1 absent, else 0/1; -1 return after 422. */
int query_bool_opt(http_req_t *req, const char *name, int *out);

/* Answers one task group by id (404 "TaskGroupV2 <id> not found"). */
void tg_reply(http_req_t *req, db_t *db, int64_t id, enum tg_view view);

/* A WHERE clause built from optional filters: each clause is ANDed, with
 * its one "?" (if any) turned into the next $n bound to p. */
#define QB_MAX 24
typedef struct qb {
	sb_t where;
	db_param_t p[QB_MAX + 2];
	int n;
} qb_t;
void qb_init(qb_t *q);
void qb_add(qb_t *q, const char *clause, db_param_t p);
void qb_add0(qb_t *q, const char *clause);
void qb_release(qb_t *q);
/* Runs "SELECT count(*) FROM <from> WHERE <filters>" then "SELECT <cols>
 * FROM <from> WHERE <filters> ORDER BY <order>" with the page's LIMIT and
 * OFFSET; writes the pagination header into o ({"current_page":..,
 * "items":[), leaving the items to the caller. -1 after answering 500. */
int qb_paginate(http_req_t *req, db_t *db, qb_t *q, const char *cols, const char *from, const char *order, int64_t page,
		int64_t page_size, sb_t *o, db_res_t **r);

/* admin_task.c: makes tasks core inside a transaction of its own. t holds
 * the tasks as rows of (id, name, pkg_name, version, resource_id); with
 * check_payload, two of them alike is a 422. Locks the tasks that could
 * clash, refuses (422) a task with a core twin, then runs update_sql and
 * answers 200. */
int make_core(http_req_t *req, db_t *db, db_res_t *t, int check_payload, const char *update_sql, const db_param_t *p,
	      int np);

/* 200 with no body (upstream's Response(status_code=200)). */
void http_empty_ok(http_req_t *req);

#endif
