/* task.c — /api/v2/task/...: single tasks, as upstream's
 * routes/api/v2/task.py. A task always lives in a task group; creating
 * one here makes a group of origin "other" holding just that task.
 * Collection routes (/api/v2/task/collect/...) are elsewhere.
 *
 * Column types decide the key order clients see: meta_* and args_schema_*
 * are PostgreSQL json (the text is kept as written, so the order of the
 * request is kept on both engines); input_types, output_types and tags are
 * jsonb, whose objects PostgreSQL re-orders (shorter keys first), so we
 * write them already in that order and SQLite answers the same. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/profile_check.h"
#include "api/task_common.h"
#include "model/task.h"
#include "util/timeutil.h"

/* Answers TaskRead for a task id. */
static void reply_task(http_req_t *req, db_t *db, int64_t id, int status)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " TASK_COLS " FROM taskv2 t WHERE t.id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	if (db_nrows(r))
		task_read_json(&o, r, 0, 0);
	db_res_free(r);
	if (!o.len) {
		http_errorf(req, 404, "TaskV2 %lld not found", (long long)id);
		return;
	}
	http_json_sb(req, status, &o);
}

void api_task_list(http_req_t *req)
{
	db_t *db = req->db;
	int64_t res;
	if (user_resource_id(req, db, req->user->id, &res))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT " TASK_COLS " FROM taskv2 t JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id "
			"WHERE g.resource_id = $1 AND (g.user_id = $2 OR g.user_group_id IN "
			"(SELECT group_id FROM linkusergroup WHERE user_id = $2)) ORDER BY t.id",
		    (db_param_t[]){ P_INT(res), P_INT(req->user->id) }, 2, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_grow(&o, (size_t)db_nrows(r) * 256);
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		if (i)
			sb_addc(&o, ',');
		task_slim_json(&o, r, i, 0);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_task_get(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_id", &id))
		return;
	db_t *db = req->db;
	task_row_t t;
	if (task_access(req, db, id, 0, &t))
		return;
	reply_task(req, db, id, 200);
}

/* A JSON value as stored: compact, in the key order it has (malloc'd). */
static char *dump(json_t *v)
{
	return json_dump_py(v);
}

void api_task_patch(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_id", &id))
		return;
	json_t *b = v_body_model(req, task_update_check, 1);
	if (!b)
		return;
	db_t *db = req->db;
	task_row_t t;
	if (task_access(req, db, id, 1, &t))
		goto out;
	if (strcmp(t.tg.origin, "other")) {
		static const char *const fixed[] = { "command_parallel", "command_non_parallel", "input_types", "output_types" };
		for (int i = 0; i < 4; i++)
			if (json_object_get(b, fixed[i])) {
				http_errorf(req, 422, "Cannot update '%s' when task_group.origin='%s'.", fixed[i], t.tg.origin);
				goto out;
			}
	}
	if (!strcmp(t.type, "non_parallel") && json_object_get(b, "command_parallel")) {
		http_error(req, 422, "Cannot set an unset `command_parallel`.");
		goto out;
	}
	if (!strcmp(t.type, "parallel") && json_object_get(b, "command_non_parallel")) {
		http_error(req, 422, "Cannot set an unset `command_non_parallel`.");
		goto out;
	}
	if (json_object_size(b)) {
		/* one UPDATE with the fields that were sent */
		sb_t sql = SB_INIT;
		db_param_t p[10];
		char *dumps[10] = { 0 };
		int n = 0;
		const char *k;
		json_t *v;
		sb_adds(&sql, "UPDATE taskv2 SET ");
		json_object_foreach(b, k, v) {
			sb_addf(&sql, "%s%s = $%d", n ? ", " : "", k, n + 1);
			if (!strcmp(k, "input_types") || !strcmp(k, "output_types")) {
				dumps[n] = dump(v);
				p[n] = P_JSON(dumps[n]);
			} else if (!strcmp(k, "tags")) {
				/* upstream would store a JSON null here and then fail
				 * to serialise the task (500) on every later read; an
				 * empty list keeps the task readable */
				dumps[n] = json_is_null(v) ? xstrdup("[]") : dump(v);
				p[n] = P_JSON(dumps[n]);
			} else {
				p[n] = P_TEXT(json_string_value(v));
			}
			n++;
		}
		sb_addf(&sql, " WHERE id = $%d", n + 1);
		p[n] = P_INT(id);
		int rc = db_exec(db, sql.buf, p, n + 1, NULL);
		sb_release(&sql);
		for (int i = 0; i < n; i++)
			free(dumps[i]);
		if (rc) {
			api_db_error(req, db);
			goto out;
		}
	}
	reply_task(req, db, id, 200);
out:
	json_decref(b);
}

/* Task types that must not carry the other kind's schema or meta. */
static int cross_check(http_req_t *req, json_t *b)
{
	const char *type = json_string_value(json_object_get(b, "type"));
	json_t *asnp = json_object_get(b, "args_schema_non_parallel"), *mnp = json_object_get(b, "meta_non_parallel");
	json_t *asp = json_object_get(b, "args_schema_parallel"), *mp = json_object_get(b, "meta_parallel");
	if (!strcmp(type, "parallel") && ((asnp && !json_is_null(asnp)) || (mnp && !json_is_null(mnp)))) {
		http_error(req, 422, "Cannot set `TaskV2.args_schema_non_parallel` or `TaskV2.args_schema_non_parallel` if "
				     "TaskV2 is parallel");
		return 1;
	}
	if (!strcmp(type, "non_parallel") && ((asp && !json_is_null(asp)) || (mp && !json_is_null(mp)))) {
		http_error(req, 422, "Cannot set `TaskV2.args_schema_parallel` or `TaskV2.args_schema_parallel` if "
				     "TaskV2 is non_parallel");
		return 1;
	}
	return 0;
}

/* A JSON member for a column: its dump, or dflt (may be NULL: SQL NULL)
 * when absent or null. Malloc'd. */
static char *member_dump(json_t *b, const char *key, const char *dflt)
{
	json_t *v = json_object_get(b, key);
	if (!v || json_is_null(v))
		return dflt ? xstrdup(dflt) : NULL;
	return dump(v);
}

static const char *member_str(json_t *b, const char *key)
{
	return json_string_value(json_object_get(b, key));
}

void api_task_create(http_req_t *req)
{
	ownership_t own;
	if (query_ownership(req, &own))
		return;
	json_t *b = v_body_model(req, task_create_check, 1);
	if (!b)
		return;
	db_t *db = req->db;
	enum { MNP, MP, ASNP, ASP, IT, OT, TAGS, NDUMPS };
	char *d[NDUMPS] = { 0 };
	db_res_t *r = NULL;
	user_profile_t up = { 0 };
	if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up))
		goto out;
	int64_t resource_id = up.resource_id;
	user_profile_release(&up);
	int64_t group_id;
	if (valid_user_group_id(req, db, &own, &group_id) || cross_check(req, b))
		goto out;
	const char *name = member_str(b, "name"), *version = member_str(b, "version");
	/* an explicit null meta is stored as the default {}: upstream would
	 * store a JSON null and then fail to serialise the task (500) */
	d[MNP] = member_dump(b, "meta_non_parallel", "{}");
	d[MP] = member_dump(b, "meta_parallel", "{}");
	d[ASNP] = member_dump(b, "args_schema_non_parallel", NULL);
	d[ASP] = member_dump(b, "args_schema_parallel", NULL);
	d[IT] = member_dump(b, "input_types", "{}");
	d[OT] = member_dump(b, "output_types", "{}");
	d[TAGS] = member_dump(b, "tags", "[]");
	/* the duplicate checks span users and groups: one section for all
	 * task-group creations */
	if (api_begin_locked(req, db, "task-group", 0))
		goto out;
	if (nondup_user(req, db, req->user->id, name, version, resource_id) || nondup_group(req, db, group_id, name, version)) {
		db_rollback(db);
		goto out;
	}
	char created[40], last_used[40];
	utc_now_iso(created, sizeof(created));
	utc_now_iso(last_used, sizeof(last_used));
	if (db_exec(db, "INSERT INTO taskgroupv2 (user_id, user_group_id, resource_id, origin, pkg_name, version, "
			"pinned_package_versions_pre, pinned_package_versions_post, active, timestamp_created, "
			"timestamp_last_used) VALUES ($1, $2, $3, 'other', $4, $5, $6, $6, $7, $8, $9) RETURNING id",
		    (db_param_t[]){ P_INT(req->user->id), group_id ? P_INT(group_id) : P_NULL, P_INT(resource_id), P_TEXT(name),
				    P_TEXT(version), P_JSON("{}"), P_BOOL(1), P_TS(created), P_TS(last_used) },
		    9, &r))
		goto dberr;
	int64_t tgid = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	if (db_exec(db, "INSERT INTO taskv2 (name, type, command_non_parallel, command_parallel, meta_non_parallel, "
			"meta_parallel, version, args_schema_non_parallel, args_schema_parallel, args_schema_version, "
			"docs_info, docs_link, input_types, output_types, taskgroupv2_id, category, modality, authors, tags, "
			"is_core) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
			"$20) RETURNING id",
		    (db_param_t[]){ P_TEXT(name), P_TEXT(member_str(b, "type")), P_TEXT(member_str(b, "command_non_parallel")),
				    P_TEXT(member_str(b, "command_parallel")), P_JSON(d[MNP]), P_JSON(d[MP]), P_TEXT(version),
				    P_JSON(d[ASNP]), P_JSON(d[ASP]), P_TEXT(member_str(b, "args_schema_version")),
				    P_TEXT(member_str(b, "docs_info")), P_TEXT(member_str(b, "docs_link")), P_JSON(d[IT]),
				    P_JSON(d[OT]), P_INT(tgid), P_TEXT(member_str(b, "category")),
				    P_TEXT(member_str(b, "modality")), P_TEXT(member_str(b, "authors")), P_JSON(d[TAGS]),
				    P_BOOL(0) },
		    20, &r))
		goto dberr;
	int64_t tid = db_int(r, 0, 0);
	if (db_commit(db))
		goto dberr;
	reply_task(req, db, tid, 201);
	goto out;
dberr:
	/* integrity_error_to_422: a constraint violation is the client's 422 */
	if (db_errclass(db) == DB_ERR_CONSTRAINT) {
		http_error(req, 422, db_errmsg(db));
		db_rollback(db);
	} else {
		api_db_abort(req, db);
	}
out:
	db_res_free(r);
	for (int i = 0; i < NDUMPS; i++)
		free(d[i]);
	json_decref(b);
}

void api_task_delete(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_id", &id))
		return;
	http_error(req, 405, "Cannot delete single tasks, please operate directly on task groups.");
}
