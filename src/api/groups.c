/* groups.c — user groups (/auth/group/...), superusers only.
 *
 * The default group (FRACTAL_DEFAULT_GROUP_NAME=All) cannot be deleted and
 * nobody can be removed from it; upstream answers those two refusals with a
 * one-element list as detail (a Python tuple), and so do we. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "config/settings.h"
#include "util/timeutil.h"

int64_t default_group_id(http_req_t *req, db_t *db);

static void group_obj(sb_t *out, int64_t id, const char *name, const char *ts, const char *user_ids)
{
	sb_addf(out, "{\"id\":%lld,\"name\":", (long long)id);
	sb_add_json_str(out, name);
	sb_adds(out, ",\"timestamp_created\":");
	sb_add_json_ts(out, ts);
	sb_addf(out, ",\"user_ids\":%s}", user_ids ? user_ids : "null");
}

/* UserGroupRead with user_ids; 1 (after 404) if missing, -1 after 500. */
static int reply_group(http_req_t *req, db_t *db, int64_t gid, int status)
{
	db_res_t *g, *l;
	if (db_exec(db, "SELECT id, name, timestamp_created FROM usergroup WHERE id = $1", (db_param_t[]){ P_INT(gid) }, 1, &g)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(g)) {
		db_res_free(g);
		http_errorf(req, 404, "UserGroup %lld not found.", (long long)gid);
		return 1;
	}
	if (db_exec(db, "SELECT user_id FROM linkusergroup WHERE group_id = $1", (db_param_t[]){ P_INT(gid) }, 1, &l)) {
		db_res_free(g);
		api_db_error(req, db);
		return -1;
	}
	sb_t ids = SB_INIT, out = SB_INIT;
	sb_addc(&ids, '[');
	for (int i = 0; i < db_nrows(l); i++)
		sb_addf(&ids, "%s%lld", i ? "," : "", (long long)db_int(l, i, 0));
	sb_addc(&ids, ']');
	group_obj(&out, db_int(g, 0, 0), db_text(g, 0, 1), db_text(g, 0, 2), ids.buf);
	http_json_sb(req, status, &out);
	sb_release(&ids);
	db_res_free(g);
	db_res_free(l);
	return 0;
}

static int group_exists(http_req_t *req, db_t *db, int64_t gid)
{
	return access_row_or_404(req, db, "SELECT id FROM usergroup WHERE id = $1", gid, "UserGroup %lld not found.");
}

void api_groups_list(http_req_t *req)
{
	int with_users = 0;
	if (v_query_bool(req, "user_ids", &with_users))
		return;
	db_t *db = req->db;
	db_res_t *g, *l = NULL;
	if (db_exec(db, "SELECT id, name, timestamp_created FROM usergroup ORDER BY id", NULL, 0, &g)) {
		api_db_error(req, db);
		return;
	}
	if (with_users && db_exec(db, "SELECT group_id, user_id FROM linkusergroup", NULL, 0, &l)) {
		db_res_free(g);
		api_db_error(req, db);
		return;
	}
	sb_t out = SB_INIT, ids = SB_INIT;
	sb_addc(&out, '[');
	for (int i = 0; i < db_nrows(g); i++) {
		if (i)
			sb_addc(&out, ',');
		sb_reset(&ids);
		if (with_users) {
			sb_addc(&ids, '[');
			int first = 1;
			for (int k = 0; k < db_nrows(l); k++)
				if (db_int(l, k, 0) == db_int(g, i, 0)) {
					sb_addf(&ids, "%s%lld", first ? "" : ",", (long long)db_int(l, k, 1));
					first = 0;
				}
			sb_addc(&ids, ']');
		}
		group_obj(&out, db_int(g, i, 0), db_text(g, i, 1), db_text(g, i, 2), with_users ? ids.buf : NULL);
	}
	sb_addc(&out, ']');
	sb_release(&ids);
	db_res_free(g);
	db_res_free(l);
	http_json_sb(req, 200, &out);
}

void api_group_get(http_req_t *req)
{
	int64_t gid;
	if (v_path_int(req, 0, "group_id", &gid))
		return;
	reply_group(req, req->db, gid, 200);
}

void api_group_create(http_req_t *req)
{
	const vfield_t fields[] = { { .name = "name", .type = V_NONEMPTY, .required = 1, .max_length = V_INDEXED_MAX_LENGTH } };
	json_t *b = v_body(req, fields, 1, 1);
	if (!b)
		return;
	const char *name = json_string_value(json_object_get(b, "name"));
	db_t *db = req->db;
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM usergroup WHERE name = $1", (db_param_t[]){ P_TEXT(name) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	int exists = db_nrows(r);
	db_res_free(r);
	if (exists) {
		http_error(req, 422, "A group with the same name already exists");
		goto out;
	}
	if (db_exec(db, "INSERT INTO usergroup (name, timestamp_created) VALUES ($1, $2) RETURNING id, name, timestamp_created",
		    (db_param_t[]){ P_TEXT(name), P_TS(now) }, 2, &r)) {
		if (db_errclass(db) == DB_ERR_CONSTRAINT)
			http_error(req, 422, "A group with the same name already exists");
		else
			api_db_error(req, db);
		goto out;
	}
	sb_t o = SB_INIT;
	/* timestamp as stored, read back through the same canonical path */
	db_res_t *t;
	if (db_exec(db, "SELECT timestamp_created FROM usergroup WHERE id = $1", (db_param_t[]){ P_INT(db_int(r, 0, 0)) }, 1, &t)) {
		db_res_free(r);
		api_db_error(req, db);
		goto out;
	}
	group_obj(&o, db_int(r, 0, 0), db_text(r, 0, 1), db_text(t, 0, 0), "[]");
	db_res_free(t);
	db_res_free(r);
	http_json_sb(req, 201, &o);
out:
	json_decref(b);
}

void api_group_delete(http_req_t *req)
{
	int64_t gid;
	if (v_path_int(req, 0, "group_id", &gid))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT name FROM usergroup WHERE id = $1", (db_param_t[]){ P_INT(gid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "UserGroup %lld not found.", (long long)gid);
		return;
	}
	int is_default = settings.default_group_name && !strcmp(db_text(r, 0, 0), settings.default_group_name);
	db_res_free(r);
	if (is_default) {
		http_errorf(req, 422, "Cannot delete default UserGroup '%s'.", settings.default_group_name);
		return;
	}
	/* links go with the group (ON DELETE CASCADE); task groups and
	 * templates lose it (ON DELETE SET NULL) */
	if (db_begin(db) || db_exec(db, "DELETE FROM usergroup WHERE id = $1", (db_param_t[]){ P_INT(gid) }, 1, NULL) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	http_empty(req, 204);
}

static void add_or_remove(http_req_t *req, int add)
{
	int64_t gid, uid;
	if (v_path_int(req, 0, "group_id", &gid) || v_path_int(req, 1, "user_id", &uid))
		return;
	db_t *db = req->db;
	if (group_exists(req, db, gid))
		return;
	db_res_t *u;
	if (db_exec(db, "SELECT email FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &u)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(u)) {
		db_res_free(u);
		http_errorf(req, 404, "User %lld not found.", (long long)uid);
		return;
	}
	char *email = arena_strdup(&req->arena, db_text(u, 0, 0));
	db_res_free(u);
	if (!add) {
		int64_t def = default_group_id(req, db);
		if (def < 0)
			return;
		if (def == gid) {
			sb_t msg = SB_INIT, d = SB_INIT;
			sb_addf(&msg, "Cannot remove user from '%s' group.", settings.default_group_name);
			sb_addc(&d, '[');
			sb_add_json_str(&d, msg.buf);
			sb_addc(&d, ']');
			http_error_json(req, 422, d.buf);
			sb_release(&msg);
			sb_release(&d);
			return;
		}
	}
	db_res_t *l;
	if (db_exec(db, "SELECT 1 FROM linkusergroup WHERE group_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(gid), P_INT(uid) }, 2, &l)) {
		api_db_error(req, db);
		return;
	}
	int linked = db_nrows(l);
	db_res_free(l);
	if (add && linked) {
		http_errorf(req, 422, "User '%s' is already a member of group %lld.", email, (long long)gid);
		return;
	}
	if (!add && !linked) {
		http_errorf(req, 422, "User '%s' is not a member of group %lld.", email, (long long)gid);
		return;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	int rc = add ? db_exec(db, "INSERT INTO linkusergroup (group_id, user_id, timestamp_created) VALUES ($1, $2, $3)",
			       (db_param_t[]){ P_INT(gid), P_INT(uid), P_TS(now) }, 3, NULL)
		     : db_exec(db, "DELETE FROM linkusergroup WHERE group_id = $1 AND user_id = $2",
			       (db_param_t[]){ P_INT(gid), P_INT(uid) }, 2, NULL);
	if (rc) {
		if (add && db_errclass(db) == DB_ERR_CONSTRAINT)
			http_errorf(req, 422, "User '%s' is already a member of group %lld.", email, (long long)gid);
		else
			api_db_error(req, db);
		return;
	}
	reply_group(req, db, gid, 200);
}

void api_group_add_user(http_req_t *req)
{
	add_or_remove(req, 1);
}

void api_group_remove_user(http_req_t *req)
{
	add_or_remove(req, 0);
}
