/* task_common.c — see task_common.h. */
#include "api/task_common.h"

#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/params.h"
#include "config/settings.h"
#include "model/pyrepr.h"
#include "util/timeutil.h"

int64_t default_group_id(http_req_t *req, db_t *db); /* users.c */

int user_resource_id(http_req_t *req, db_t *db, int64_t user_id, int64_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT p.resource_id FROM user_oauth u JOIN profile p ON p.id = u.profile_id WHERE u.id = $1",
		    (db_param_t[]){ P_INT(user_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	*out = db_nrows(r) ? db_int(r, 0, 0) : 0;
	db_res_free(r);
	return 0;
}

#define TG_ROW_COLS "id, user_id, user_group_id, resource_id, origin, pkg_name, version, active"

static void fill_tg(http_req_t *req, db_res_t *r, int i, int c, tg_row_t *out)
{
	out->id = db_int(r, i, c);
	out->user_id = db_int(r, i, c + 1);
	out->user_group_id = db_isnull(r, i, c + 2) ? 0 : db_int(r, i, c + 2);
	out->resource_id = db_int(r, i, c + 3);
	out->origin = arena_strdup(&req->arena, db_text(r, i, c + 4));
	out->pkg_name = arena_strdup(&req->arena, db_text(r, i, c + 5));
	out->version = arena_strdup(&req->arena, db_text(r, i, c + 6));
	out->active = db_bool(r, i, c + 7);
}

int tg_get(http_req_t *req, db_t *db, int64_t id, tg_row_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " TG_ROW_COLS " FROM taskgroupv2 WHERE id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "TaskGroupV2 %lld not found", (long long)id);
		return 1;
	}
	fill_tg(req, r, 0, 0, out);
	db_res_free(r);
	return 0;
}

int tg_read_access(http_req_t *req, db_t *db, int64_t id, tg_row_t *out)
{
	int rc = tg_get(req, db, id, out);
	if (rc)
		return rc;
	if (out->user_id == req->user->id)
		return 0;
	int ok = 0;
	if (out->user_group_id) {
		/* a member of the group, whose profile is on the group's resource */
		db_res_t *r;
		if (db_exec(db, "SELECT l.user_id FROM linkusergroup l JOIN user_oauth u ON u.id = l.user_id "
				"JOIN profile p ON p.id = u.profile_id "
				"WHERE l.group_id = $1 AND u.id = $2 AND p.resource_id = $3",
			    (db_param_t[]){ P_INT(out->user_group_id), P_INT(req->user->id), P_INT(out->resource_id) }, 3, &r)) {
			api_db_error(req, db);
			return -1;
		}
		ok = db_nrows(r) > 0;
		db_res_free(r);
	}
	if (!ok) {
		http_errorf(req, 403, "Current user has no read access to TaskGroupV2 %lld.", (long long)id);
		return 1;
	}
	return 0;
}

int tg_full_access(http_req_t *req, db_t *db, int64_t id, tg_row_t *out)
{
	int rc = tg_get(req, db, id, out);
	if (rc)
		return rc;
	if (out->user_id != req->user->id) {
		/* upstream's detail is a one-element tuple, hence the list */
		sb_t msg = SB_INIT, d = SB_INIT;
		sb_addf(&msg, "Current user has no full access to TaskGroupV2 %lld.", (long long)id);
		sb_addc(&d, '[');
		sb_add_json_str(&d, msg.buf);
		sb_addc(&d, ']');
		http_error_json(req, 403, d.buf);
		sb_release(&msg);
		sb_release(&d);
		return 1;
	}
	return 0;
}

int task_access(http_req_t *req, db_t *db, int64_t task_id, int full, task_row_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT name, type, taskgroupv2_id FROM taskv2 WHERE id = $1", (db_param_t[]){ P_INT(task_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "TaskV2 %lld not found", (long long)task_id);
		return 1;
	}
	out->id = task_id;
	out->name = arena_strdup(&req->arena, db_text(r, 0, 0));
	out->type = arena_strdup(&req->arena, db_text(r, 0, 1));
	int64_t tgid = db_int(r, 0, 2);
	db_res_free(r);
	int rc = full ? tg_full_access(req, db, tgid, &out->tg) : tg_read_access(req, db, tgid, &out->tg);
	if (rc)
		return rc;
	int64_t res;
	if (user_resource_id(req, db, req->user->id, &res))
		return -1;
	if (!res || res != out->tg.resource_id) {
		http_errorf(req, 403, "User %lld has no access to TaskGroup's Resource.", (long long)req->user->id);
		return 1;
	}
	return 0;
}

int verify_user_in_group(http_req_t *req, db_t *db, int64_t user_id, int64_t group_id)
{
	db_res_t *r;
	if (db_exec(db, "SELECT (SELECT count(*) FROM linkusergroup WHERE user_id = $1 AND group_id = $2), "
			"(SELECT count(*) FROM usergroup WHERE id = $2)",
		    (db_param_t[]){ P_INT(user_id), P_INT(group_id) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int member = db_int(r, 0, 0) > 0, exists = db_int(r, 0, 1) > 0;
	db_res_free(r);
	if (member)
		return 0;
	if (!exists)
		http_errorf(req, 404, "UserGroup %lld not found", (long long)group_id);
	else
		http_errorf(req, 403, "User %lld does not belong to UserGroup %lld", (long long)user_id, (long long)group_id);
	return 1;
}

int query_ownership(http_req_t *req, ownership_t *o)
{
	memset(o, 0, sizeof(*o));
	return v_query_int(req, "user_group_id", &o->group_id, &o->has_group) || v_query_bool(req, "private", &o->private_)
		       ? -1
		       : 0;
}

int valid_user_group_id(http_req_t *req, db_t *db, const ownership_t *o, int64_t *out)
{
	int64_t gid = o->group_id;
	int has_gid = o->has_group, private = o->private_;
	*out = 0;
	if (has_gid && private) {
		http_errorf(req, 422, "Cannot set both user_group_id=%lld and private=True", (long long)gid);
		return 1;
	}
	if (private)
		return 0;
	if (!has_gid) {
		int64_t def = default_group_id(req, db);
		if (def < 0)
			return 1;
		*out = def;
		return 0;
	}
	if (verify_user_in_group(req, db, req->user->id, gid))
		return 1;
	*out = gid;
	return 0;
}

/* The note upstream appends when the duplicate has a collection activity. */
static int collect_note(http_req_t *req, db_t *db, int64_t tgid, sb_t *note)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id, status FROM taskgroupactivityv2 WHERE taskgroupv2_id = $1 AND action = 'collect'",
		    (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (db_nrows(r))
		sb_addf(note, "\nNote: There exists another task-group collection (activity ID=%lld) for this task group "
			      "(ID=%lld), with status '%s'.",
			(long long)db_int(r, 0, 0), (long long)tgid, db_text(r, 0, 1));
	db_res_free(r);
	return 0;
}

int nondup_user(http_req_t *req, db_t *db, int64_t user_id, const char *pkg_name, const char *version,
		int64_t resource_id)
{
	db_res_t *r;
	if (db_exec(db, "SELECT g.id, u.email FROM taskgroupv2 g JOIN user_oauth u ON u.id = g.user_id "
			"WHERE g.user_id = $1 AND g.pkg_name = $2 AND g.version = $3 AND g.resource_id = $4 ORDER BY g.id",
		    (db_param_t[]){ P_INT(user_id), P_TEXT(pkg_name), P_TEXT(version), P_INT(resource_id) }, 4, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		return 0;
	}
	sb_t msg = SB_INIT;
	sb_addf(&msg, "User '%s' already owns a task group with name='%s' and version=", db_text(r, 0, 1), pkg_name);
	py_repr_str(&msg, version, strlen(version));
	sb_addc(&msg, '.');
	int rc = collect_note(req, db, db_int(r, 0, 0), &msg);
	db_res_free(r);
	if (!rc)
		http_error(req, 422, msg.buf);
	sb_release(&msg);
	return rc ? rc : 1;
}

int nondup_group(http_req_t *req, db_t *db, int64_t group_id, const char *pkg_name, const char *version)
{
	if (!group_id)
		return 0;
	db_res_t *r;
	if (db_exec(db, "SELECT g.id, ug.name FROM taskgroupv2 g JOIN usergroup ug ON ug.id = g.user_group_id "
			"WHERE g.user_group_id = $1 AND g.pkg_name = $2 AND g.version = $3 ORDER BY g.id",
		    (db_param_t[]){ P_INT(group_id), P_TEXT(pkg_name), P_TEXT(version) }, 3, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		return 0;
	}
	sb_t msg = SB_INIT;
	sb_addf(&msg, "UserGroup %s already owns a task group with pkg_name=", db_text(r, 0, 1));
	py_repr_str(&msg, pkg_name, strlen(pkg_name));
	sb_adds(&msg, " and version=");
	py_repr_str(&msg, version, strlen(version));
	sb_addc(&msg, '.');
	int rc = collect_note(req, db, db_int(r, 0, 0), &msg);
	db_res_free(r);
	if (!rc)
		http_error(req, 422, msg.buf);
	sb_release(&msg);
	return rc ? rc : 1;
}

/* ---- JSON ---- */

static void str_or_null(sb_t *o, db_res_t *r, int row, int c)
{
	const char *s = db_text(r, row, c);
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

/* A JSON column as stored (json keeps the text and so the key order given
 * at creation; jsonb keeps its own order, which SQLite copies because we
 * write jsonb values already in that order); dflt when NULL. */
static void json_col(sb_t *o, db_res_t *r, int row, int c, const char *dflt)
{
	const char *s = db_text(r, row, c);
	sb_adds(o, s ? s : dflt);
}

void task_read_json(sb_t *o, db_res_t *r, int row, int c)
{
	sb_addf(o, "{\"id\":%lld,\"name\":", (long long)db_int(r, row, c));
	sb_add_json_str(o, db_text(r, row, c + 1));
	sb_adds(o, ",\"type\":");
	sb_add_json_str(o, db_text(r, row, c + 2));
	sb_adds(o, ",\"version\":");
	sb_add_json_str(o, db_text(r, row, c + 3));
	sb_addf(o, ",\"is_core\":%s,\"command_non_parallel\":", JBOOL(db_bool(r, row, c + 4)));
	str_or_null(o, r, row, c + 5);
	sb_adds(o, ",\"command_parallel\":");
	str_or_null(o, r, row, c + 6);
	sb_adds(o, ",\"meta_parallel\":");
	json_col(o, r, row, c + 7, "{}");
	sb_adds(o, ",\"meta_non_parallel\":");
	json_col(o, r, row, c + 8, "{}");
	sb_adds(o, ",\"args_schema_non_parallel\":");
	json_col(o, r, row, c + 9, "null");
	sb_adds(o, ",\"args_schema_parallel\":");
	json_col(o, r, row, c + 10, "null");
	sb_adds(o, ",\"args_schema_version\":");
	str_or_null(o, r, row, c + 11);
	sb_adds(o, ",\"docs_info\":");
	str_or_null(o, r, row, c + 12);
	sb_adds(o, ",\"docs_link\":");
	str_or_null(o, r, row, c + 13);
	sb_adds(o, ",\"input_types\":");
	json_col(o, r, row, c + 14, "{}");
	sb_adds(o, ",\"output_types\":");
	json_col(o, r, row, c + 15, "{}");
	sb_addf(o, ",\"taskgroupv2_id\":%lld,\"category\":", (long long)db_int(r, row, c + 16));
	str_or_null(o, r, row, c + 17);
	sb_adds(o, ",\"modality\":");
	str_or_null(o, r, row, c + 18);
	sb_adds(o, ",\"authors\":");
	str_or_null(o, r, row, c + 19);
	sb_adds(o, ",\"tags\":");
	json_col(o, r, row, c + 20, "[]");
	sb_addc(o, '}');
}

void task_slim_json(sb_t *o, db_res_t *r, int row, int c)
{
	sb_addf(o, "{\"id\":%lld,\"name\":", (long long)db_int(r, row, c));
	sb_add_json_str(o, db_text(r, row, c + 1));
	sb_adds(o, ",\"version\":");
	sb_add_json_str(o, db_text(r, row, c + 3));
	sb_addf(o, ",\"is_core\":%s,\"category\":", JBOOL(db_bool(r, row, c + 4)));
	str_or_null(o, r, row, c + 17);
	sb_adds(o, ",\"modality\":");
	str_or_null(o, r, row, c + 18);
	sb_adds(o, ",\"authors\":");
	str_or_null(o, r, row, c + 19);
	sb_adds(o, ",\"tags\":");
	json_col(o, r, row, c + 20, "[]");
	sb_adds(o, ",\"input_types\":");
	json_col(o, r, row, c + 14, "{}");
	sb_adds(o, ",\"docs_info\":");
	str_or_null(o, r, row, c + 12);
	sb_adds(o, ",\"docs_link\":");
	str_or_null(o, r, row, c + 13);
	sb_addc(o, '}');
}

/* First row of the task result (ordered by group id) of group tgid. */
static int first_task_of(db_res_t *t, int64_t tgid)
{
	int lo = 0, hi = db_nrows(t);
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (db_int(t, mid, 16) < tgid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int tg_json(http_req_t *req, db_t *db, sb_t *o, db_res_t *r, const int *rows, int n, enum tg_view view)
{
	if (!rows)
		n = db_nrows(r);
	if (!n)
		return 0;
	/* the ids are ours (integers), so they can go into the SQL text */
	sb_t sql = SB_INIT;
	sb_adds(&sql, "SELECT " TASK_COLS " FROM taskv2 t WHERE t.taskgroupv2_id IN (");
	for (int i = 0; i < n; i++)
		sb_addf(&sql, "%s%lld", i ? "," : "", (long long)db_int(r, rows ? rows[i] : i, 0));
	sb_adds(&sql, ") ORDER BY t.taskgroupv2_id, t.id");
	db_res_t *t;
	int rc = db_exec(db, sql.buf, NULL, 0, &t);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return -1;
	}
	for (int k = 0; k < n; k++) {
		int i = rows ? rows[k] : k;
		int64_t id = db_int(r, i, 0);
		if (k)
			sb_addc(o, ',');
		sb_addf(o, "{\"id\":%lld,\"task_list\":[", (long long)id);
		int first = 1;
		for (int j = first_task_of(t, id); j < db_nrows(t) && db_int(t, j, 16) == id; j++) {
			if (!first)
				sb_addc(o, ',');
			first = 0;
			if (view == TG_SLIM)
				task_slim_json(o, t, j, 0);
			else
				task_read_json(o, t, j, 0);
		}
		sb_adds(o, "],\"user_email\":");
		sb_add_json_str(o, db_text(r, i, 18));
		sb_adds(o, ",\"user_group_id\":");
		if (db_isnull(r, i, 1))
			sb_adds(o, "null");
		else
			sb_addf(o, "%lld", (long long)db_int(r, i, 1));
		static const char *const names[] = { "origin", "pkg_name", "version", "python_version", "pixi_version",
						     "path", "venv_path", "archive_path", "pip_extras" };
		for (int c = 0; c < 9; c++) {
			sb_addf(o, ",\"%s\":", names[c]);
			str_or_null(o, r, i, 2 + c);
		}
		sb_adds(o, ",\"pinned_package_versions_pre\":");
		json_col(o, r, i, 11, "{}");
		sb_adds(o, ",\"pinned_package_versions_post\":");
		json_col(o, r, i, 12, "{}");
		sb_addf(o, ",\"in_use\":%s,\"active\":%s,\"timestamp_created\":", JBOOL(db_bool(r, i, 19)),
			JBOOL(db_bool(r, i, 13)));
		sb_add_json_ts(o, db_text(r, i, 14));
		sb_adds(o, ",\"timestamp_last_used\":");
		sb_add_json_ts(o, db_text(r, i, 15));
		if (view == TG_SUPERUSER)
			sb_addf(o, ",\"user_id\":%lld,\"resource_id\":%lld", (long long)db_int(r, i, 16),
				(long long)db_int(r, i, 17));
		sb_addc(o, '}');
	}
	db_res_free(t);
	return 0;
}

void activity_json(sb_t *o, db_res_t *r, int row)
{
	sb_addf(o, "{\"id\":%lld,\"user_id\":%lld,\"taskgroupv2_id\":", (long long)db_int(r, row, 0),
		(long long)db_int(r, row, 1));
	if (db_isnull(r, row, 2))
		sb_adds(o, "null");
	else
		sb_addf(o, "%lld", (long long)db_int(r, row, 2));
	sb_adds(o, ",\"timestamp_started\":");
	sb_add_json_ts(o, db_text(r, row, 3));
	sb_adds(o, ",\"timestamp_ended\":");
	if (db_isnull(r, row, 4))
		sb_adds(o, "null");
	else
		sb_add_json_ts(o, db_text(r, row, 4));
	static const char *const names[] = { "pkg_name", "version", "status", "action", "log" };
	for (int c = 0; c < 5; c++) {
		sb_addf(o, ",\"%s\":", names[c]);
		str_or_null(o, r, row, 5 + c);
	}
	sb_addc(o, '}');
}

int query_enum(http_req_t *req, const char *name, const char *expected, const char **out)
{
	const char *v = http_query(req, name);
	*out = NULL;
	if (!v)
		return 0;
	/* expected lists the choices as 'a', 'b' or 'c' */
	size_t n = strlen(v);
	int ok = 0;
	if (n && !strchr(v, '\'')) {
		for (const char *p = strchr(expected, '\''); p && !ok; p = strchr(p + 1, '\'')) {
			ok = !strncmp(p + 1, v, n) && p[1 + n] == '\'';
			p = strchr(p + 1, '\''); /* skip the closing quote */
			if (!p)
				break;
		}
	}
	if (ok) {
		*out = v;
		return 0;
	}
	verr_t e;
	verr_init(&e);
	sb_t msg = SB_INIT;
	sb_addf(&msg, "Input should be %s", expected);
	json_t *input = json_string(v);
	verr_add(&e, "enum", json_pack("[s,s]", "query", name), msg.buf, input, json_pack("{s:s}", "expected", expected));
	json_decref(input);
	sb_release(&msg);
	verr_reply(&e, req);
	return -1;
}

int query_bool_opt(http_req_t *req, const char *name, int *out)
{
	int v = 0;
	*out = -1;
	if (!http_query(req, name))
		return 0;
	if (v_query_bool(req, name, &v))
		return -1;
	*out = v;
	return 0;
}

void http_empty_ok(http_req_t *req)
{
	req->status = 200;
	req->content_type = NULL;
	sb_reset(&req->resp);
}

void qb_init(qb_t *q)
{
	sb_init(&q->where, 128);
	sb_adds(&q->where, " WHERE 1 = 1");
	q->n = 0;
}

void qb_add(qb_t *q, const char *clause, db_param_t p)
{
	const char *mark = strchr(clause, '?');
	sb_adds(&q->where, " AND ");
	if (!mark) {
		sb_adds(&q->where, clause);
		return;
	}
	if (q->n >= QB_MAX)
		abort(); /* a route with more filters than QB_MAX: a bug */
	q->p[q->n++] = p;
	sb_add(&q->where, clause, (size_t)(mark - clause));
	sb_addf(&q->where, "$%d%s", q->n, mark + 1);
}

void qb_add0(qb_t *q, const char *clause)
{
	qb_add(q, clause, P_NULL);
}

void qb_release(qb_t *q)
{
	sb_release(&q->where);
}

int qb_paginate(http_req_t *req, db_t *db, qb_t *q, const char *cols, const char *from, const char *order, int64_t page,
		int64_t page_size, sb_t *o, db_res_t **r)
{
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT count(*) FROM %s%s", from, q->where.buf);
	db_res_t *c;
	if (db_exec(db, sql.buf, q->p, q->n, &c)) {
		sb_release(&sql);
		api_db_error(req, db);
		return -1;
	}
	int64_t total = db_int(c, 0, 0);
	db_res_free(c);
	sb_reset(&sql);
	q->p[q->n] = P_INT(page_size ? page_size : INT64_MAX);
	q->p[q->n + 1] = P_INT(v_page_offset(page, page_size));
	sb_addf(&sql, "SELECT %s FROM %s%s ORDER BY %s LIMIT $%d OFFSET $%d", cols, from, q->where.buf, order, q->n + 1,
		q->n + 2);
	int rc = db_exec(db, sql.buf, q->p, q->n + 2, r);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return -1;
	}
	sb_addf(o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%lld,\"items\":[", (long long)page,
		(long long)(page_size ? page_size : total), (long long)total);
	return 0;
}
