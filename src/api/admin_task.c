/* admin_task.c — /admin/v2/task/...: superusers query every task with the
 * workflows that use it, and mark tasks as "core" (upstream's
 * routes/admin/v2/task.py). A core task must be unique by (task name,
 * package, version, resource); make_core() checks that for a set of tasks
 * and is shared with the task-group variant. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/task.h"

#define TASKINFO_COLS                                                                                       \
	"t.id, t.name, t.type, t.is_core, t.taskgroupv2_id, t.command_non_parallel, t.command_parallel, "  \
	"t.version, g.pkg_name, g.active, u.email, ug.name"
#define TASKINFO_FROM                                                                                   \
	"taskv2 t JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id JOIN user_oauth u ON u.id = g.user_id " \
	"LEFT JOIN usergroup ug ON ug.id = g.user_group_id"

static void str_or_null(sb_t *o, const char *s)
{
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

/* relationships: one entry per workflow task using the task (a workflow
 * using it twice is listed twice, as upstream's join gives it), with the
 * owners of the workflow's project. */
static int relationships(http_req_t *req, db_t *db, int64_t task_id, sb_t *o)
{
	db_res_t *w, *u;
	if (db_exec(db, "SELECT w.id, w.name, p.id, p.name FROM workflowtaskv2 wt JOIN workflowv2 w ON w.id = wt.workflow_id "
			"JOIN projectv2 p ON p.id = w.project_id WHERE wt.task_id = $1 ORDER BY w.id, wt.id",
		    (db_param_t[]){ P_INT(task_id) }, 1, &w)) {
		api_db_error(req, db);
		return -1;
	}
	sb_addc(o, '[');
	for (int i = 0; i < db_nrows(w); i++) {
		if (db_exec(db, "SELECT u.id, u.email FROM user_oauth u JOIN linkuserprojectv2 l ON l.user_id = u.id "
				"WHERE l.project_id = $1 AND l.is_owner = $2 ORDER BY u.id",
			    (db_param_t[]){ P_INT(db_int(w, i, 2)), P_BOOL(1) }, 2, &u)) {
			db_res_free(w);
			api_db_error(req, db);
			return -1;
		}
		sb_addf(o, "%s{\"workflow_id\":%lld,\"workflow_name\":", i ? "," : "", (long long)db_int(w, i, 0));
		sb_add_json_str(o, db_text(w, i, 1));
		sb_addf(o, ",\"project_id\":%lld,\"project_name\":", (long long)db_int(w, i, 2));
		sb_add_json_str(o, db_text(w, i, 3));
		sb_adds(o, ",\"project_users\":[");
		for (int j = 0; j < db_nrows(u); j++) {
			sb_addf(o, "%s{\"id\":%lld,\"email\":", j ? "," : "", (long long)db_int(u, j, 0));
			sb_add_json_str(o, db_text(u, j, 1));
			sb_addc(o, '}');
		}
		sb_adds(o, "]}");
		db_res_free(u);
	}
	sb_addc(o, ']');
	db_res_free(w);
	return 0;
}

void api_admin_task_list(http_req_t *req)
{
	int64_t id = 0, resource_id = 0, owner_id = 0, page, page_size;
	int has_id = 0, has_res = 0, has_owner = 0, core, private_, active;
	const char *task_type;
	if (v_query_int(req, "id", &id, &has_id) || query_enum(req, "task_type", TASK_TYPE_EXPECTED, &task_type) ||
	    v_query_int(req, "resource_id", &resource_id, &has_res) || v_query_int(req, "owner_id", &owner_id, &has_owner) ||
	    query_bool_opt(req, "core", &core) || query_bool_opt(req, "private", &private_) ||
	    query_bool_opt(req, "active", &active) || v_pagination(req, &page, &page_size))
		return;
	const char *version = http_query(req, "version"), *name = http_query(req, "name");
	const char *category = http_query(req, "category"), *modality = http_query(req, "modality");
	const char *author = http_query(req, "author"), *task_group = http_query(req, "task_group");
	qb_t q;
	qb_init(&q);
	if (has_id)
		qb_add(&q, "t.id = ?", P_INT(id));
	if (version)
		qb_add(&q, "t.version = ?", P_TEXT(version));
	if (name)
		qb_add(&q, "lower(t.name) LIKE '%' || lower(CAST(? AS TEXT)) || '%'", P_TEXT(name));
	if (task_type)
		qb_add(&q, "t.type = ?", P_TEXT(task_type));
	if (category)
		qb_add(&q, "lower(t.category) = lower(CAST(? AS TEXT))", P_TEXT(category));
	if (modality)
		qb_add(&q, "lower(t.modality) = lower(CAST(? AS TEXT))", P_TEXT(modality));
	if (author)
		qb_add(&q, "lower(t.authors) LIKE '%' || lower(CAST(? AS TEXT)) || '%'", P_TEXT(author));
	if (core >= 0)
		qb_add(&q, "t.is_core = ?", P_BOOL(core));
	if (has_res)
		qb_add(&q, "g.resource_id = ?", P_INT(resource_id));
	if (has_owner)
		qb_add(&q, "g.user_id = ?", P_INT(owner_id));
	if (task_group)
		qb_add(&q, "lower(g.pkg_name) LIKE '%' || lower(CAST(? AS TEXT)) || '%'", P_TEXT(task_group));
	if (private_ >= 0)
		qb_add0(&q, private_ ? "g.user_group_id IS NULL" : "g.user_group_id IS NOT NULL");
	if (active >= 0)
		qb_add(&q, "g.active = ?", P_BOOL(active));
	db_t *db = req->db;
	db_res_t *r = NULL;
	sb_t o = SB_INIT;
	if (qb_paginate(req, db, &q, TASKINFO_COLS, TASKINFO_FROM, "t.id", page, page_size, &o, &r))
		goto out;
	for (int i = 0; i < db_nrows(r); i++) {
		sb_addf(&o, "%s{\"task\":{\"id\":%lld,\"name\":", i ? "," : "", (long long)db_int(r, i, 0));
		sb_add_json_str(&o, db_text(r, i, 1));
		sb_adds(&o, ",\"type\":");
		sb_add_json_str(&o, db_text(r, i, 2));
		sb_addf(&o, ",\"is_core\":%s,\"taskgroupv2_id\":%lld,\"command_non_parallel\":", JBOOL(db_bool(r, i, 3)),
			(long long)db_int(r, i, 4));
		str_or_null(&o, db_text(r, i, 5));
		sb_adds(&o, ",\"command_parallel\":");
		str_or_null(&o, db_text(r, i, 6));
		sb_adds(&o, ",\"version\":");
		sb_add_json_str(&o, db_text(r, i, 7));
		sb_adds(&o, ",\"pkg_name\":");
		sb_add_json_str(&o, db_text(r, i, 8));
		sb_addf(&o, ",\"active\":%s,\"owner\":", JBOOL(db_bool(r, i, 9)));
		sb_add_json_str(&o, db_text(r, i, 10));
		sb_adds(&o, ",\"user_group\":");
		str_or_null(&o, db_text(r, i, 11));
		sb_adds(&o, "},\"relationships\":");
		if (relationships(req, db, db_int(r, i, 0), &o))
			goto out;
		sb_addc(&o, '}');
	}
	sb_adds(&o, "]}");
	http_json_sb(req, 200, &o);
out:
	sb_release(&o);
	db_res_free(r);
	qb_release(&q);
}

/* "1,2,3" for the ids of a JSON array of integers (ours, validated). */
static void id_list(sb_t *s, json_t *ids)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		sb_addf(s, "%s%lld", i ? "," : "", (long long)json_integer_value(v));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The tasks of ids (404 when some are missing), as rows of
 * t.id, t.name, g.pkg_name, g.version, g.resource_id. */
static int tasks_or_404(http_req_t *req, db_t *db, json_t *ids, db_res_t **r)
{
	sb_t sql = SB_INIT;
	sb_adds(&sql, "SELECT t.id, t.name, g.pkg_name, g.version, g.resource_id FROM taskv2 t "
		      "JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id WHERE t.id IN (");
	id_list(&sql, ids);
	sb_adds(&sql, ") ORDER BY t.id");
	int rc = db_exec(db, sql.buf, NULL, 0, r);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return -1;
	}
	size_t n = json_array_size(ids);
	if ((size_t)db_nrows(*r) == n)
		return 0;
	int64_t *missing = xmalloc(n * sizeof(int64_t));
	size_t nm = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t id = json_integer_value(json_array_get(ids, i));
		int found = 0;
		for (int j = 0; j < db_nrows(*r) && !found; j++)
			found = db_int(*r, j, 0) == id;
		if (!found)
			missing[nm++] = id;
	}
	qsort(missing, nm, sizeof(int64_t), cmp_i64);
	sb_t msg = SB_INIT;
	sb_adds(&msg, "Not all tasks were found (Missing IDs: [");
	for (size_t i = 0; i < nm; i++)
		sb_addf(&msg, "%s%lld", i ? ", " : "", (long long)missing[i]);
	sb_adds(&msg, "]).");
	http_error(req, 404, msg.buf);
	sb_release(&msg);
	free(missing);
	db_res_free(*r);
	*r = NULL;
	return 1;
}

int make_core(http_req_t *req, db_t *db, db_res_t *t, int check_payload, const char *update_sql, const db_param_t *p,
	      int np)
{
	int n = db_nrows(t);
	if (db_begin(db)) {
		api_db_error(req, db);
		return -1;
	}
	if (n) {
		/* lock every non-core task that could clash, so that two
		 * concurrent requests cannot both make twins core */
		sb_t sql = SB_INIT;
		db_param_t *lp = xcalloc((size_t)n * 2 + 1, sizeof(db_param_t));
		sb_adds(&sql, "SELECT id FROM taskv2 WHERE name IN (");
		for (int i = 0; i < n; i++) {
			sb_addf(&sql, "%s$%d", i ? ", " : "", i + 1);
			lp[i] = P_TEXT(db_text(t, i, 1));
		}
		sb_adds(&sql, ") AND version IN (");
		for (int i = 0; i < n; i++) {
			sb_addf(&sql, "%s$%d", i ? ", " : "", n + i + 1);
			lp[n + i] = P_TEXT(db_text(t, i, 3));
		}
		sb_addf(&sql, ") AND is_core = $%d FOR UPDATE", 2 * n + 1);
		lp[2 * n] = P_BOOL(0);
		int rc = db_exec(db, sql.buf, lp, 2 * n + 1, NULL);
		sb_release(&sql);
		free(lp);
		if (rc)
			goto dberr;
	}
	if (check_payload)
		for (int i = 0; i < n; i++)
			for (int j = i + 1; j < n; j++)
				if (!strcmp(db_text(t, i, 1), db_text(t, j, 1)) && !strcmp(db_text(t, i, 2), db_text(t, j, 2)) &&
				    !strcmp(db_text(t, i, 3), db_text(t, j, 3)) && db_int(t, i, 4) == db_int(t, j, 4)) {
					db_rollback(db);
					http_error(req, 422, "This request would generate conflicting core tasks (with the same "
							     "task name and task-group properties). Hint: include fewer tasks in the "
							     "request body and retry.");
					return 1;
				}
	for (int i = 0; i < n; i++) {
		db_res_t *d;
		if (db_exec(db, "SELECT t.id FROM taskv2 t JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id WHERE t.name = $1 "
				"AND t.id != $2 AND t.is_core = $3 AND g.pkg_name = $4 AND g.version = $5 AND g.resource_id = $6 "
				"LIMIT 1",
			    (db_param_t[]){ P_TEXT(db_text(t, i, 1)), P_INT(db_int(t, i, 0)), P_BOOL(1), P_TEXT(db_text(t, i, 2)),
					    P_TEXT(db_text(t, i, 3)), P_INT(db_int(t, i, 4)) },
			    6, &d))
			goto dberr;
		if (db_nrows(d)) {
			http_errorf(req, 422, "There already exists a core task with pkg_name='%s', version='%s' and "
					      "name='%s' (task ID: %lld).",
				    db_text(t, i, 2), db_text(t, i, 3), db_text(t, i, 1), (long long)db_int(d, 0, 0));
			db_res_free(d);
			db_rollback(db);
			return 1;
		}
		db_res_free(d);
	}
	if (db_exec(db, update_sql, p, np, NULL) || db_commit(db))
		goto dberr;
	http_empty_ok(req);
	return 0;
dberr:
	api_db_abort(req, db);
	return -1;
}

static void set_core(http_req_t *req, int on)
{
	json_t *ids = v_body_model(req, task_ids_check, 0);
	if (!ids)
		return;
	db_t *db = req->db;
	db_res_t *t = NULL;
	if (tasks_or_404(req, db, ids, &t))
		goto out;
	sb_t sql = SB_INIT;
	sb_adds(&sql, "UPDATE taskv2 SET is_core = $1 WHERE id IN (");
	id_list(&sql, ids);
	sb_addc(&sql, ')');
	if (on) {
		make_core(req, db, t, 1, sql.buf, (db_param_t[]){ P_BOOL(1) }, 1);
	} else {
		if (db_exec(db, sql.buf, (db_param_t[]){ P_BOOL(0) }, 1, NULL))
			api_db_error(req, db);
		else
			http_empty_ok(req);
	}
	sb_release(&sql);
out:
	db_res_free(t);
	json_decref(ids);
}

void api_admin_task_make_core(http_req_t *req)
{
	set_core(req, 1);
}

void api_admin_task_make_not_core(http_req_t *req)
{
	set_core(req, 0);
}
