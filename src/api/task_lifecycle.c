/* task_lifecycle.c — the task-group lifecycle routes, as upstream's
 * routes/api/v2/task_group_lifecycle.py and routes/admin/v2/
 * {task_group_lifecycle,task_group_reset}.py:
 *
 *   POST /api/v2/task-group/{id}/{deactivate,reactivate,delete}/
 *   POST /admin/v2/task-group/{id}/{deactivate,reactivate,delete}/
 *   POST /admin/v2/task-group/{id}/reset/{pip,pixi}/
 *
 * Each answers 202 with the new activity; the work runs in collect/.
 * Groups of origin "other" have nothing on disk: (de)activating them is
 * immediate, with an activity born `OK`. The user routes act with the
 * caller's profile; the admin routes with the group owner's. The order of
 * the checks is upstream's (it decides which error a client sees). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "api/lifecycle.h"
#include "api/params.h"
#include "api/profile_check.h"
#include "api/task_common.h"
#include "collect/collect.h"
#include "config/settings.h"
#include "model/pyrepr.h"
#include "model/task.h"
#include "util/timeutil.h"
#include "build_config.h"

int activity_insert(db_t *db, int64_t user_id, int64_t tgid, const char *pkg_name, const char *version,
		    enum activity_state status, const char *action, const char *log, int ended, int64_t *id)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r;
	if (db_exec(db, "INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, pkg_name, version, "
			"status, action, log, timestamp_ended, fractal_server_version) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
		    (db_param_t[]){ P_INT(user_id), P_INT(tgid), P_TS(now), P_TEXT(pkg_name), P_TEXT(version),
				    P_TEXT(sm_name(&activity_sm, status)), P_TEXT(action), P_TEXT(log), ended ? P_TS(now) : P_NULL,
				    P_TEXT(FRACTAL_VERSION) },
		    10, &r))
		return -1;
	*id = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

void activity_reply(http_req_t *req, db_t *db, int64_t id, int status)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " ACTIVITY_COLS " FROM taskgroupactivityv2 a WHERE a.id = $1",
		    (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	if (db_nrows(r))
		activity_json(&o, r, 0);
	db_res_free(r);
	if (!o.len) {
		http_error_500(req, "no task-group activity %lld", (long long)id);
		return;
	}
	http_json_sb(req, status, &o);
}

/* upstream's check; with_pending also counts activities not yet picked up
 * by their background job */
static int no_activity(http_req_t *req, db_t *db, int64_t tgid, int with_pending)
{
	db_res_t *r;
	if (db_exec(db, with_pending ? "SELECT action, status, timestamp_started FROM taskgroupactivityv2 "
				       "WHERE taskgroupv2_id = $1 AND status IN (" SQ(S_ONGOING) ", " SQ(S_PENDING) ") "
				       "ORDER BY id"
				     : "SELECT action, status, timestamp_started FROM taskgroupactivityv2 "
				       "WHERE taskgroupv2_id = $1 AND status = " SQ(S_ONGOING) " ORDER BY id",
		    (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	if (n) {
		sb_t m = SB_INIT;
		sb_adds(&m, "Found ongoing activities for the same task-group:");
		for (int i = 0; i < n; i++) {
			sb_addf(&m, "\n%d) Action=%s, status=%s, timestamp_started=", i + 1, db_text(r, i, 0),
				db_text(r, i, 1));
			/* str(datetime): a space between date and time */
			for (const char *p = db_text(r, i, 2); *p; p++)
				sb_addc(&m, *p == 'T' ? ' ' : *p);
			sb_addc(&m, '.');
		}
		http_error(req, 422, m.buf);
		sb_release(&m);
	}
	db_res_free(r);
	return n ? 1 : 0;
}

int check_no_ongoing_activity(http_req_t *req, db_t *db, int64_t tgid)
{
	return no_activity(req, db, tgid, 0);
}

/* Inside the transaction that inserts a new activity: serialises it with
 * every other action on the group, then checks again what the caller
 * checked before, as it is now. Two identical requests at once both pass
 * the caller's checks; the second one stops here (1, after a 422; -1 after
 * a 500). activate: 0 deactivate, 1 reactivate, -1 neither. */
static int recheck_locked(http_req_t *req, db_t *db, int64_t tgid, int activate)
{
	db_res_t *r;
	if (db_lock_key(db, "task-group-activity", tgid) ||
	    db_exec(db, "SELECT active FROM taskgroupv2 WHERE id = $1", (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int active = db_nrows(r) && db_bool(r, 0, 0);
	db_res_free(r);
	if (activate == 0 && !active) {
		http_error(req, 422, "Cannot deactivate a task group with task_group.active=False.");
		return 1;
	}
	if (activate == 1 && active) {
		http_error(req, 422, "Cannot reactivate a task group with task_group.active=True.");
		return 1;
	}
	return no_activity(req, db, tgid, 1);
}

int check_no_submitted_job(http_req_t *req, db_t *db, int64_t tgid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT count(j.id) FROM jobv2 j JOIN workflowv2 w ON j.workflow_id = w.id "
			"JOIN workflowtaskv2 wt ON wt.workflow_id = w.id JOIN taskv2 t ON wt.task_id = t.id "
			"WHERE wt.\"order\" >= j.first_task_index AND wt.\"order\" <= j.last_task_index "
			"AND j.status = " SQ(S_SUBMITTED) " AND t.taskgroupv2_id = $1",
		    (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int64_t n = db_int(r, 0, 0);
	db_res_free(r);
	if (n) {
		http_errorf(req, 422, "Cannot act on task group because %lld submitted jobs use its tasks.", (long long)n);
		return 1;
	}
	return 0;
}

int check_no_related_wftask(http_req_t *req, db_t *db, int64_t tgid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT wt.task_id FROM workflowtaskv2 wt JOIN taskv2 t ON t.id = wt.task_id "
			"WHERE t.taskgroupv2_id = $1 ORDER BY wt.id LIMIT 1",
		    (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int bad = db_nrows(r) > 0;
	if (bad)
		http_errorf(req, 422, "TaskV2 %lld is still in use", (long long)db_int(r, 0, 0));
	db_res_free(r);
	return bad;
}

/* The task group's fields the routes need beyond tg_row_t. */
typedef struct tg_extra {
	int has_env_info;
	const char *pixi_version;
} tg_extra_t;

static int tg_extra(http_req_t *req, db_t *db, int64_t id, tg_extra_t *x)
{
	db_res_t *r;
	if (db_exec(db, "SELECT env_info IS NOT NULL, pixi_version FROM taskgroupv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	x->has_env_info = db_nrows(r) && db_bool(r, 0, 0);
	x->pixi_version = db_nrows(r) && db_text(r, 0, 1) ? arena_strdup(&req->arena, db_text(r, 0, 1)) : NULL;
	db_res_free(r);
	return 0;
}

/* origin "other": the flag flips at once, with an activity born OK. */
static void other_shortcut(http_req_t *req, db_t *db, const tg_row_t *g, int activate)
{
	const char *log = activate ? "Task group has task_group.origin='other', set task_group.active to True and exit."
				   : "Task group has task_group.origin='other', set task_group.active to False and exit.";
	int64_t aid;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	if (recheck_locked(req, db, g->id, activate)) {
		db_rollback(db);
		return;
	}
	if (db_exec(db, "UPDATE taskgroupv2 SET active = $1 WHERE id = $2", (db_param_t[]){ P_BOOL(activate), P_INT(g->id) },
		    2, NULL) ||
	    activity_insert(db, g->user_id, g->id, g->pkg_name, g->version, ACT_OK, activate ? "reactivate" : "deactivate",
			    log, 1, &aid) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	activity_reply(req, db, aid, 202);
}

/* The pending activity (plus, for deactivation, active=false at once),
 * then the background job. */
static void start_action(http_req_t *req, db_t *db, const tg_row_t *g, enum collect_kind kind, const char *action,
			 const user_profile_t *up, int use_pixi_lockfile)
{
	int64_t aid;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	if (recheck_locked(req, db, g->id, kind == CK_DEACTIVATE ? 0 : kind == CK_REACTIVATE ? 1 : -1)) {
		db_rollback(db);
		return;
	}
	if (activity_insert(db, g->user_id, g->id, g->pkg_name, g->version, ACT_PENDING, action, NULL, 0, &aid) ||
	    (kind == CK_DEACTIVATE && db_exec(db, "UPDATE taskgroupv2 SET active = $1 WHERE id = $2",
					      (db_param_t[]){ P_BOOL(0), P_INT(g->id) }, 2, NULL)) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	collect_req_t cr = { .kind = kind, .task_group_id = g->id, .activity_id = aid, .resource = up->resource,
			     .profile = up->profile, .use_pixi_lockfile = use_pixi_lockfile };
	/* the answer shows the activity as created (pending): read it before
	 * the background job can move it on */
	activity_reply(req, db, aid, 202);
	collect_start(db, &cr);
}

/* Admin routes: upstream creates the activity before validating the
 * owner's profile, so a 422 there leaves a pending activity behind; we
 * validate first, so that nothing is left pending forever. */
enum lc_action { LC_DEACTIVATE, LC_REACTIVATE, LC_DELETE };

static void lifecycle(http_req_t *req, enum lc_action action, int admin)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	db_t *db = req->db;
	user_profile_t up = { 0 };
	tg_row_t g;
	tg_extra_t x;
	if (!admin) {
		if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up) ||
		    tg_full_access(req, db, id, &g))
			goto out;
	} else if (tg_get(req, db, id, &g)) {
		goto out;
	}
	if (tg_extra(req, db, id, &x))
		goto out;
	int other = !strcmp(g.origin, "other");
	switch (action) {
	case LC_DEACTIVATE:
		if (admin && !g.active) {
			http_error(req, 422, "Cannot deactivate a task group with task_group.active=False.");
			goto out;
		}
		if (check_no_ongoing_activity(req, db, id) || check_no_submitted_job(req, db, id))
			goto out;
		if (!g.active) {
			http_error(req, 422, "Cannot deactivate a task group with task_group.active=False.");
			goto out;
		}
		if (other) {
			other_shortcut(req, db, &g, 0);
			goto out;
		}
		break;
	case LC_REACTIVATE:
		if (g.active) {
			http_error(req, 422, "Cannot reactivate a task group with task_group.active=True.");
			goto out;
		}
		if (check_no_ongoing_activity(req, db, id) || check_no_submitted_job(req, db, id))
			goto out;
		if (other) {
			other_shortcut(req, db, &g, 1);
			goto out;
		}
		if (!x.has_env_info) {
			http_error(req, 422, "Cannot reactivate a task group with task_group.env_info=None.");
			goto out;
		}
		break;
	case LC_DELETE:
		if (check_no_ongoing_activity(req, db, id) || (admin && check_no_submitted_job(req, db, id)) ||
		    check_no_related_wftask(req, db, id))
			goto out;
		break;
	}
	if (admin && validate_user_profile_by_id(req, db, g.user_id, &up))
		goto out;
	static const enum collect_kind kinds[] = { CK_DEACTIVATE, CK_REACTIVATE, CK_DELETE };
	static const char *const names[] = { "deactivate", "reactivate", "delete" };
	start_action(req, db, &g, kinds[action], names[action], &up, 0);
out:
	user_profile_release(&up);
}

void api_tg_deactivate(http_req_t *req) { lifecycle(req, LC_DEACTIVATE, 0); }
void api_tg_reactivate(http_req_t *req) { lifecycle(req, LC_REACTIVATE, 0); }
void api_tg_delete(http_req_t *req) { lifecycle(req, LC_DELETE, 0); }
void api_admin_tg_deactivate(http_req_t *req) { lifecycle(req, LC_DEACTIVATE, 1); }
void api_admin_tg_reactivate(http_req_t *req) { lifecycle(req, LC_REACTIVATE, 1); }
void api_admin_tg_delete(http_req_t *req) { lifecycle(req, LC_DELETE, 1); }

/* ---- reset (admin) ---- */

/* Json[dict[NonEmptyStr, NonEmptyStr]]: a string holding a JSON object.
 * New reference or NULL after adding the error. */
static json_t *json_string_dict(json_t *v, json_t *loc, verr_t *e)
{
	if (!json_is_string(v)) {
		verr_add(e, "json_type", json_incref(loc), "JSON input should be string, bytes or bytearray", v, NULL);
		return NULL;
	}
	json_error_t jerr;
	json_t *d = json_loads(json_string_value(v), JSON_DECODE_ANY, &jerr);
	if (!d) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Invalid JSON: %s", jerr.text);
		verr_add(e, "json_invalid", json_incref(loc), m.buf, v, json_pack("{s:s}", "error", jerr.text));
		sb_release(&m);
		return NULL;
	}
	if (!json_is_object(d)) {
		verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", d, NULL);
		json_decref(d);
		return NULL;
	}
	const vfield_t nonempty = { .type = V_NONEMPTY };
	json_t *out = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(d, k, x) {
		json_t *kl = json_copy(loc);
		json_array_append_new(kl, json_string(k));
		json_t *ks = json_string(k);
		json_t *kv = v_value(&nonempty, ks, kl, e);
		json_t *vv = v_value(&nonempty, x, kl, e);
		if (kv && vv)
			json_object_set(out, json_string_value(kv), vv);
		json_decref(kv);
		json_decref(vv);
		json_decref(ks);
		json_decref(kl);
	}
	json_decref(d);
	return out;
}

/* Gate, 404, inactive, no ongoing activity, owner's profile, support. */
static int reset_common(http_req_t *req, db_t *db, int64_t id, const char *kind, tg_row_t *g, user_profile_t *up)
{
	if (!settings.enable_task_group_reset) {
		http_error(req, 422, "FRACTAL_ENABLE_TASK_GROUP_RESET=false");
		return -1;
	}
	if (tg_get(req, db, id, g))
		return -1;
	if (g->active) {
		http_error(req, 422, "Cannot re-collect an active task group. Please deactivate it first.");
		return -1;
	}
	if (check_no_ongoing_activity(req, db, id) || validate_user_profile_by_id(req, db, g->user_id, up))
		return -1;
	const char *family = !strcmp(g->origin, "pypi") || !strcmp(g->origin, "wheel-file") ? "pip" : g->origin;
	if (strcmp(family, kind)) {
		http_errorf(req, 422, "Invalid task_group.origin='%s' (expected %s).", g->origin, kind);
		return -1;
	}
	if (!strcmp(up->resource_type, "slurm_ssh")) {
		http_error(req, 422, "Resource type slurm_ssh not supported.");
		return -1;
	}
	return 0;
}

static const vfield_t reset_pip_fields[] = {
	{ .name = "pip_extras", .type = V_STR, .nullable = 1 },
	{ .name = "python_version", .type = V_ANY, .nullable = 1 },
	{ .name = "pinned_package_versions_pre", .type = V_ANY },
	{ .name = "pinned_package_versions_post", .type = V_ANY },
};

void api_admin_tg_reset_pip(http_req_t *req)
{
	verr_t e;
	verr_init(&e);
	int64_t id = 0;
	v_path_int_e(req, 0, "task_group_id", &id, &e);
	json_t *body = v_parse_body(req, &e), *b = NULL, *pre = NULL, *post = NULL;
	if (body) {
		json_t *base = json_pack("[s]", "body");
		if (!json_is_object(body)) {
			v_add_not_object(&e, json_incref(base), body);
		} else {
			b = v_object(body, reset_pip_fields, 4, 1, base, &e);
			json_t *pv = json_object_get(b, "python_version");
			if (pv && !json_is_null(pv)) {
				static const char *const ok[] = { "3.9", "3.10", "3.11", "3.12", "3.13", "3.14" };
				int good = 0;
				for (int i = 0; i < 6 && json_is_string(pv); i++)
					good |= !strcmp(json_string_value(pv), ok[i]);
				if (!good)
					verr_add(&e, "literal_error", json_pack("[s,s]", "body", "python_version"),
						 "Input should be '3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'", pv,
						 json_pack("{s:s}", "expected", "'3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'"));
			}
			json_t *x;
			if ((x = json_object_get(b, "pinned_package_versions_pre"))) {
				json_t *loc = json_pack("[s,s]", "body", "pinned_package_versions_pre");
				pre = json_string_dict(x, loc, &e);
				json_decref(loc);
			}
			if ((x = json_object_get(b, "pinned_package_versions_post"))) {
				json_t *loc = json_pack("[s,s]", "body", "pinned_package_versions_post");
				post = json_string_dict(x, loc, &e);
				json_decref(loc);
			}
		}
		json_decref(base);
	}
	json_decref(body);
	user_profile_t up = { 0 };
	if (verr_reply(&e, req))
		goto out;
	db_t *db = req->db;
	tg_row_t g;
	if (reset_common(req, db, id, "pip", &g, &up))
		goto out;
	const char *pv = json_string_value(json_object_get(b, "python_version"));
	if (pv && !json_object_get(json_object_get(json_object_get(up.resource, "tasks_python_config"), "versions"), pv)) {
		http_errorf(req, 422, "Python version %s is not available for this Fractal resource.", pv);
		goto out;
	}
	const char *extras = json_string_value(json_object_get(b, "pip_extras"));
	char *dpre = pre ? json_dump_py(pre) : xstrdup("{}");
	char *dpost = post ? json_dump_py(post) : xstrdup("{}");
	int rc = db_begin(db) ||
		 db_exec(db, "UPDATE taskgroupv2 SET python_version = COALESCE($1, python_version), "
			     "pip_extras = COALESCE($2, pip_extras), pinned_package_versions_pre = $3, "
			     "pinned_package_versions_post = $4 WHERE id = $5",
			 (db_param_t[]){ P_TEXT(pv), P_TEXT(extras), P_JSON(dpre), P_JSON(dpost), P_INT(id) }, 5, NULL) ||
		 db_commit(db);
	free(dpre);
	free(dpost);
	if (rc) {
		api_db_abort(req, db);
		goto out;
	}
	start_action(req, db, &g, CK_RESET, "reset", &up, 0);
out:
	user_profile_release(&up);
	json_decref(b);
	json_decref(pre);
	json_decref(post);
}

void api_admin_tg_reset_pixi(http_req_t *req)
{
	verr_t e;
	verr_init(&e);
	int64_t id = 0;
	v_path_int_e(req, 0, "task_group_id", &id, &e);
	int use_lock = 0;
	if (req->body.len) {
		static const vfield_t f[] = { { .name = "use_pixi_lockfile", .type = V_BOOL } };
		json_t *b = v_body_e(req, f, 1, 1, &e);
		use_lock = json_is_true(json_object_get(b, "use_pixi_lockfile"));
		json_decref(b);
	} else {
		verr_add(&e, "missing", json_pack("[s]", "body"), "Field required", NULL, NULL);
	}
	if (verr_reply(&e, req))
		return;
	db_t *db = req->db;
	user_profile_t up = { 0 };
	tg_row_t g;
	tg_extra_t x;
	if (reset_common(req, db, id, "pixi", &g, &up) || tg_extra(req, db, id, &x))
		goto out;
	json_t *cfg = json_object_get(up.resource, "tasks_pixi_config");
	if (!json_is_object(cfg) || !json_object_size(cfg)) {
		http_error(req, 422, "Pixi task collection is not available.");
		goto out;
	}
	if (!x.pixi_version) {
		/* upstream would fall back to the default version here */
	} else if (!json_object_get(json_object_get(cfg, "versions"), x.pixi_version)) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Pixi version '%s' is not available. Available versions: [", x.pixi_version);
		const char *k;
		json_t *v;
		int first = 1;
		json_object_foreach(json_object_get(cfg, "versions"), k, v) {
			sb_adds(&m, first ? "" : ", ");
			py_repr_str(&m, k, strlen(k));
			first = 0;
		}
		sb_adds(&m, "]");
		http_error(req, 422, m.buf);
		sb_release(&m);
		goto out;
	}
	start_action(req, db, &g, CK_RESET, "reset", &up, use_lock);
out:
	user_profile_release(&up);
}
