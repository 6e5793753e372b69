/* task_group.c — /api/v2/task-group/...: a user's view of task groups and
 * of their activities, as upstream's routes/api/v2/task_group.py. The
 * lifecycle actions (deactivate, reactivate, delete) are elsewhere.
 *
 * The list groups task groups by package name and shows one group per
 * version: the user's own, else the default group's, else the one of the
 * group the user joined first (upstream's remove_duplicate_task_groups),
 * versions newest first in PEP 440 order. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/state.h"
#include "config/settings.h"
#include "util/pep440.h"

int64_t default_group_id(http_req_t *req, db_t *db); /* users.c */

void api_tg_activity_list(http_req_t *req)
{
	int64_t aid = 0, tgid = 0;
	int has_aid = 0, has_tgid = 0;
	const char *status, *action;
	char ts[40];
	if (v_query_int(req, "task_group_activity_id", &aid, &has_aid) || v_query_int(req, "taskgroupv2_id", &tgid, &has_tgid) ||
	    query_enum(req, "status", activity_sm.expected, &status) ||
	    query_enum(req, "action", ACTIVITY_ACTION_EXPECTED, &action) || v_query_ts(req, "timestamp_started_min", ts))
		return;
	const char *pkg = http_query(req, "pkg_name");
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT " ACTIVITY_COLS " FROM taskgroupactivityv2 a WHERE a.user_id = $1 "
			"AND ($2 = 0 OR a.id = $3) AND ($4 = 0 OR a.taskgroupv2_id = $5) "
			"AND (CAST($6 AS TEXT) IS NULL OR lower(a.pkg_name) LIKE '%' || lower($6) || '%') "
			"AND (CAST($7 AS TEXT) IS NULL OR a.status = $7) AND (CAST($8 AS TEXT) IS NULL OR a.action = $8) "
			"AND ($9 = 0 OR a.timestamp_started >= $10) ORDER BY a.id",
		    (db_param_t[]){ P_INT(req->user->id), P_INT(has_aid), P_INT(aid), P_INT(has_tgid), P_INT(tgid), P_TEXT(pkg),
				    P_TEXT(status), P_TEXT(action), P_INT(ts[0] != 0), ts[0] ? P_TS(ts) : P_NULL },
		    10, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		if (i)
			sb_addc(&o, ',');
		activity_json(&o, r, i);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_tg_activity_get(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_activity_id", &id))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT " ACTIVITY_COLS " FROM taskgroupactivityv2 a WHERE a.id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "TaskGroupActivityV2 %lld not found", (long long)id);
		return;
	}
	if (db_int(r, 0, 1) != req->user->id) {
		db_res_free(r);
		/* a one-element tuple upstream */
		sb_t msg = SB_INIT, d = SB_INIT;
		sb_addf(&msg, "You are not the owner of TaskGroupActivityV2 %lld", (long long)id);
		sb_addc(&d, '[');
		sb_add_json_str(&d, msg.buf);
		sb_addc(&d, ']');
		http_error_json(req, 403, d.buf);
		sb_release(&msg);
		sb_release(&d);
		return;
	}
	sb_t o = SB_INIT;
	activity_json(&o, r, 0);
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* ---- the grouped list ---- */

/* A stable sort of rows[lo..hi) by version, newest first (sorted() with
 * reverse=True keeps equal versions in their query order). Insertion sort
 * would do for the few versions of a package; merge sort keeps a package
 * with thousands of versions cheap. */
static void sort_versions(db_res_t *r, int *rows, int *tmp, int n)
{
	if (n < 2)
		return;
	int h = n / 2;
	sort_versions(r, rows, tmp, h);
	sort_versions(r, rows + h, tmp, n - h);
	int i = 0, j = h, k = 0;
	while (i < h && j < n) {
		/* take from the right half only when strictly newer */
		if (pep440_sort_cmp(db_text(r, rows[j], 4), db_text(r, rows[i], 4)) > 0)
			tmp[k++] = rows[j++];
		else
			tmp[k++] = rows[i++];
	}
	while (i < h)
		tmp[k++] = rows[i++];
	while (j < n)
		tmp[k++] = rows[j++];
	memcpy(rows, tmp, (size_t)n * sizeof(int));
}

/* _disambiguate_task_groups over rows[0..n) (same package and version):
 * the row to show. links: the user's group ids, oldest membership first. */
static int pick(db_res_t *r, const int *rows, int n, int64_t uid, int64_t def_gid, db_res_t *links)
{
	for (int i = 0; i < n; i++)
		if (db_int(r, rows[i], 16) == uid)
			return rows[i];
	if (settings.default_group_name)
		for (int i = 0; i < n; i++)
			if (!db_isnull(r, rows[i], 1) && db_int(r, rows[i], 1) == def_gid)
				return rows[i];
	for (int l = 0; l < db_nrows(links); l++)
		for (int i = 0; i < n; i++)
			if (!db_isnull(r, rows[i], 1) && db_int(r, rows[i], 1) == db_int(links, l, 0))
				return rows[i];
	return -1;
}

void api_tg_list(http_req_t *req)
{
	int only_active = 0, only_owner = 0;
	if (v_query_bool(req, "only_active", &only_active) || v_query_bool(req, "only_owner", &only_owner))
		return;
	db_t *db = req->db;
	int64_t res;
	if (user_resource_id(req, db, req->user->id, &res))
		return;
	db_res_t *r = NULL, *links = NULL;
	int *rows = NULL, *tmp = NULL, *shown = NULL;
	sb_t o = SB_INIT;
	/* ORDER BY pkg_name as upstream (the database's collation decides the
	 * order of packages); id keeps equal versions in a stable order */
	if (db_exec(db, "SELECT " TG_COLS " FROM " TG_FROM " WHERE g.resource_id = $1 AND (g.user_id = $2 OR ($3 = 0 AND "
			"g.user_group_id IN (SELECT group_id FROM linkusergroup WHERE user_id = $2))) AND ($4 = 0 OR g.active = $5) "
			"ORDER BY g.pkg_name, g.id",
		    (db_param_t[]){ P_INT(res), P_INT(req->user->id), P_INT(only_owner), P_INT(only_active), P_BOOL(1) }, 5, &r))
		goto dberr;
	int64_t def = default_group_id(req, db);
	if (def < 0)
		goto out;
	if (db_exec(db, "SELECT group_id FROM linkusergroup WHERE user_id = $1 ORDER BY timestamp_created, group_id",
		    (db_param_t[]){ P_INT(req->user->id) }, 1, &links))
		goto dberr;
	int n = db_nrows(r), nshown = 0;
	rows = xmalloc(((size_t)n + 1) * sizeof(int));
	tmp = xmalloc(((size_t)n + 1) * sizeof(int));
	shown = xmalloc(((size_t)n + 1) * sizeof(int));
	for (int i = 0; i < n; i++)
		rows[i] = i;
	/* per package: sort by version, then one group per version string
	 * (consecutive equal strings, as itertools.groupby sees them) */
	int *pkg_start = xmalloc(((size_t)n + 1) * sizeof(int));
	int npkg = 0;
	for (int i = 0; i < n;) {
		int j = i;
		while (j < n && !strcmp(db_text(r, j, 3), db_text(r, i, 3)))
			j++;
		sort_versions(r, rows + i, tmp, j - i);
		pkg_start[npkg++] = nshown;
		for (int k = i; k < j;) {
			int m = k;
			while (m < j && !strcmp(db_text(r, rows[m], 4), db_text(r, rows[k], 4)))
				m++;
			int p = pick(r, rows + k, m - k, req->user->id, def, links);
			if (p >= 0)
				shown[nshown++] = p;
			k = m;
		}
		i = j;
	}
	pkg_start[npkg] = nshown;
	sb_addc(&o, '[');
	for (int p = 0; p < npkg; p++) {
		int a = pkg_start[p], z = pkg_start[p + 1];
		if (p)
			sb_addc(&o, ',');
		sb_addc(&o, '[');
		sb_add_json_str(&o, db_text(r, shown[a], 3));
		sb_adds(&o, ",[");
		if (tg_json(req, db, &o, r, shown + a, z - a, TG_SLIM)) {
			free(pkg_start);
			goto out;
		}
		sb_adds(&o, "]]");
	}
	sb_addc(&o, ']');
	free(pkg_start);
	http_json_sb(req, 200, &o);
	goto out;
dberr:
	api_db_error(req, db);
out:
	sb_release(&o);
	free(rows);
	free(tmp);
	free(shown);
	db_res_free(links);
	db_res_free(r);
}

/* Answers one task group (TaskGroupRead or TaskGroupReadSuperuser). */
void tg_reply(http_req_t *req, db_t *db, int64_t id, enum tg_view view)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " TG_COLS " FROM " TG_FROM " WHERE g.id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "TaskGroupV2 %lld not found", (long long)id);
		return;
	}
	sb_t o = SB_INIT;
	if (!tg_json(req, db, &o, r, NULL, 1, view))
		http_json_sb(req, 200, &o);
	sb_release(&o);
	db_res_free(r);
}

void api_tg_get(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	db_t *db = req->db;
	tg_row_t tg;
	if (tg_read_access(req, db, id, &tg))
		return;
	tg_reply(req, db, id, TG_READ);
}

static const vfield_t tg_update_fields[] = {
	{ .name = "user_group_id", .type = V_INT, .nullable = 1 },
};

void api_tg_patch(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "task_group_id", &id))
		return;
	json_t *b = v_body(req, tg_update_fields, 1, 1);
	if (!b)
		return;
	db_t *db = req->db;
	tg_row_t tg;
	if (tg_full_access(req, db, id, &tg))
		goto out;
	json_t *g = json_object_get(b, "user_group_id");
	if (g) {
		int64_t new_gid = json_is_integer(g) ? json_integer_value(g) : 0;
		/* null and a group are different; two nulls are not */
		int changed = json_is_null(g) ? tg.user_group_id != 0 : (!tg.user_group_id || tg.user_group_id != new_gid);
		/* the duplicate check and the move in the task-group section */
		if (api_begin_locked(req, db, "task-group", 0))
			goto out;
		if ((changed && json_is_integer(g) && nondup_group(req, db, new_gid, tg.pkg_name, tg.version)) ||
		    (json_is_integer(g) && verify_user_in_group(req, db, req->user->id, new_gid))) {
			db_rollback(db);
			goto out;
		}
		if (db_exec(db, "UPDATE taskgroupv2 SET user_group_id = $1 WHERE id = $2",
			    (db_param_t[]){ json_is_integer(g) ? P_INT(new_gid) : P_NULL, P_INT(id) }, 2, NULL) ||
		    db_commit(db)) {
			api_db_abort(req, db);
			goto out;
		}
	}
	tg_reply(req, db, id, TG_READ);
out:
	json_decref(b);
}
