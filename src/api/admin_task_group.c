/* admin_task_group.c — /admin/v2/task-group/...: superusers list and
 * inspect every task group and activity, move a group to another user
 * group, and make all tasks of a group (not) core (upstream's
 * routes/admin/v2/task_group.py). Lifecycle and reset routes are
 * elsewhere. */
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/state.h"

void api_admin_tg_activity_list(http_req_t *req)
{
	int64_t aid = 0, uid = 0, tgid = 0, page, page_size;
	int has_aid = 0;
	const char *status, *action;
	char ts[40];
	if (v_query_int(req, "task_group_activity_id", &aid, &has_aid) || v_query_int(req, "user_id", &uid, NULL) ||
	    v_query_int(req, "taskgroupv2_id", &tgid, NULL) || query_enum(req, "status", activity_sm.expected, &status) ||
	    query_enum(req, "action", ACTIVITY_ACTION_EXPECTED, &action) || v_query_ts(req, "timestamp_started_min", ts) ||
	    v_pagination(req, &page, &page_size))
		return;
	const char *pkg = http_query(req, "pkg_name");
	qb_t q;
	qb_init(&q);
	/* upstream tests user_id, taskgroupv2_id and pkg_name for truth, so
	 * 0 and "" filter nothing */
	if (has_aid)
		qb_add(&q, "a.id = ?", P_INT(aid));
	if (uid)
		qb_add(&q, "a.user_id = ?", P_INT(uid));
	if (tgid)
		qb_add(&q, "a.taskgroupv2_id = ?", P_INT(tgid));
	if (pkg && *pkg)
		qb_add(&q, "lower(a.pkg_name) LIKE '%' || lower(CAST(? AS TEXT)) || '%'", P_TEXT(pkg));
	if (status)
		qb_add(&q, "a.status = ?", P_TEXT(status));
	if (action)
		qb_add(&q, "a.action = ?", P_TEXT(action));
	if (ts[0])
		qb_add(&q, "a.timestamp_started >= ?", P_TS(ts));
	db_t *db = req->db;
	db_res_t *r = NULL;
	sb_t o = SB_INIT;
	/* newest first; the id orders activities started at the same time */
	if (!qb_paginate(req, db, &q, ACTIVITY_COLS, "taskgroupactivityv2 a", "a.timestamp_started DESC, a.id DESC", page,
			 page_size, &o, &r)) {
		for (int i = 0; i < db_nrows(r); i++) {
			if (i)
				sb_addc(&o, ',');
			activity_json(&o, r, i);
		}
		sb_adds(&o, "]}");
		http_json_sb(req, 200, &o);
	}
	sb_release(&o);
	db_res_free(r);
	qb_release(&q);
}

void api_admin_tg_list(http_req_t *req)
{
	int64_t tgid = 0, uid = 0, gid = 0, resource_id = 0, page, page_size;
	int has_tgid = 0, has_uid = 0, has_gid = 0, has_res = 0, private_, active, in_use;
	const char *origin;
	char ts_min[40], ts_max[40];
	if (v_query_int(req, "task_group_id", &tgid, &has_tgid) || v_query_int(req, "user_id", &uid, &has_uid) ||
	    v_query_int(req, "user_group_id", &gid, &has_gid) || query_bool_opt(req, "private", &private_) ||
	    query_bool_opt(req, "active", &active) || query_enum(req, "origin", TG_ORIGIN_EXPECTED, &origin) ||
	    v_query_ts(req, "timestamp_last_used_min", ts_min) || v_query_ts(req, "timestamp_last_used_max", ts_max) ||
	    v_query_int(req, "resource_id", &resource_id, &has_res) || query_bool_opt(req, "in_use", &in_use) ||
	    v_pagination(req, &page, &page_size))
		return;
	if (has_gid && private_ == 1) {
		http_errorf(req, 422, "Cannot get task groups with both user_group_id=%lld and private=True.", (long long)gid);
		return;
	}
	const char *pkg = http_query(req, "pkg_name");
	qb_t q;
	qb_init(&q);
	if (has_tgid)
		qb_add(&q, "g.id = ?", P_INT(tgid));
	if (has_uid)
		qb_add(&q, "g.user_id = ?", P_INT(uid));
	if (has_gid)
		qb_add(&q, "g.user_group_id = ?", P_INT(gid));
	if (private_ >= 0)
		qb_add0(&q, private_ ? "g.user_group_id IS NULL" : "g.user_group_id IS NOT NULL");
	if (active >= 0)
		qb_add(&q, "g.active = ?", P_BOOL(active));
	if (origin)
		qb_add(&q, "g.origin = ?", P_TEXT(origin));
	if (pkg)
		qb_add(&q, "lower(g.pkg_name) LIKE '%' || lower(CAST(? AS TEXT)) || '%'", P_TEXT(pkg));
	if (ts_min[0])
		qb_add(&q, "g.timestamp_last_used >= ?", P_TS(ts_min));
	if (ts_max[0])
		qb_add(&q, "g.timestamp_last_used <= ?", P_TS(ts_max));
	if (has_res)
		qb_add(&q, "g.resource_id = ?", P_INT(resource_id));
	if (in_use >= 0)
		qb_add0(&q, in_use ? TG_IN_USE : "NOT " TG_IN_USE);
	db_t *db = req->db;
	db_res_t *r = NULL;
	sb_t o = SB_INIT;
	if (!qb_paginate(req, db, &q, TG_COLS, TG_FROM, "g.id", page, page_size, &o, &r) &&
	    !tg_json(req, db, &o, r, NULL, 0, TG_SUPERUSER)) {
		sb_adds(&o, "]}");
		http_json_sb(req, 200, &o);
	}
	sb_release(&o);
	db_res_free(r);
	qb_release(&q);
}

/* 1 after answering 404 with detail "<what> <id> not found". */
static int tg_exists(http_req_t *req, db_t *db, int64_t id, const char *what)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM taskgroupv2 WHERE id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	db_res_free(r);
	if (!n) {
		http_errorf(req, 404, "%s %lld not found", what, (long long)id);
		return 1;
	}
	return 0;
}

void api_admin_tg_get(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	db_t *db = req->db;
	if (tg_exists(req, db, id, "TaskGroup"))
		return;
	tg_reply(req, db, id, TG_SUPERUSER);
}

static const vfield_t tg_update_fields[] = {
	{ .name = "user_group_id", .type = V_INT, .nullable = 1 },
};

void api_admin_tg_patch(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	json_t *b = v_body(req, tg_update_fields, 1, 1);
	if (!b)
		return;
	db_t *db = req->db;
	if (tg_exists(req, db, id, "TaskGroupV2"))
		goto out;
	json_t *g = json_object_get(b, "user_group_id");
	if (g) {
		/* upstream checks that the superuser (not the owner) is a member
		 * of the new group, and runs no non-duplication check */
		if (json_is_integer(g) && verify_user_in_group(req, db, req->user->id, json_integer_value(g)))
			goto out;
		if (db_exec(db, "UPDATE taskgroupv2 SET user_group_id = $1 WHERE id = $2",
			    (db_param_t[]){ json_is_integer(g) ? P_INT(json_integer_value(g)) : P_NULL, P_INT(id) }, 2, NULL)) {
			api_db_error(req, db);
			goto out;
		}
	}
	tg_reply(req, db, id, TG_SUPERUSER);
out:
	json_decref(b);
}

static void set_core(http_req_t *req, int on)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	db_t *db = req->db;
	tg_row_t tg;
	if (tg_get(req, db, id, &tg))
		return;
	if (!on) {
		if (db_exec(db, "UPDATE taskv2 SET is_core = $1 WHERE taskgroupv2_id = $2", (db_param_t[]){ P_BOOL(0), P_INT(id) },
			    2, NULL))
			api_db_error(req, db);
		else
			http_empty_ok(req);
		return;
	}
	db_res_t *t;
	if (db_exec(db, "SELECT t.id, t.name, g.pkg_name, g.version, g.resource_id FROM taskv2 t "
			"JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id WHERE t.taskgroupv2_id = $1 ORDER BY t.id",
		    (db_param_t[]){ P_INT(id) }, 1, &t)) {
		api_db_error(req, db);
		return;
	}
	make_core(req, db, t, 0, "UPDATE taskv2 SET is_core = $1 WHERE taskgroupv2_id = $2",
		  (db_param_t[]){ P_BOOL(1), P_INT(id) }, 2);
	db_res_free(t);
}

void api_admin_tg_make_core(http_req_t *req)
{
	set_core(req, 1);
}

void api_admin_tg_make_not_core(http_req_t *req)
{
	set_core(req, 0);
}
