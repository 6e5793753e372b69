/* admin_project.c — superuser views of projects and their links
 * (/admin/v2/project/, /admin/v2/linkuserproject/), and the two admin
 * actions on them: transferring a project's ownership and verifying a
 * guest-only user's invitation (upstream's routes/admin/v2/project.py and
 * sharing.py). */
#include <stdint.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "model/images.h"

void api_admin_project_list(http_req_t *req)
{
	int64_t page, page_size, pid = 0;
	int by_id = 0;
	if (v_query_int(req, "project_id", &pid, &by_id) || v_pagination(req, &page, &page_size))
		return;
	const char *name = http_query(req, "name"), *email = http_query(req, "user_email");
	db_t *db = req->db;
	db_param_t p[] = { P_INT(by_id), P_INT(pid), P_TEXT(name), P_TEXT(email), P_BOOL(1),
			   P_INT(page_size ? page_size : INT64_MAX), P_INT(v_page_offset(page, page_size)) };
	/* upstream counts projects without the owner join unless filtering by e-mail */
	const char *filters = "($1 = 0 OR p.id = $2) AND (CAST($3 AS TEXT) IS NULL OR lower(p.name) LIKE '%' || lower($3) || '%') ";
	sb_t sql = SB_INIT;
	if (email)
		sb_addf(&sql, "SELECT count(p.id) FROM projectv2 p JOIN linkuserprojectv2 l ON l.project_id = p.id "
			      "AND l.is_owner = $5 JOIN user_oauth u ON u.id = l.user_id WHERE %s AND u.email = $4", filters);
	else
		sb_addf(&sql, "SELECT count(p.id) FROM projectv2 p WHERE %s AND (CAST($4 AS TEXT) IS NULL OR $5 = $5)", filters);
	db_res_t *c, *r;
	if (db_exec(db, sql.buf, p, 5, &c)) {
		sb_release(&sql);
		api_db_error(req, db);
		return;
	}
	int64_t total = db_int(c, 0, 0);
	db_res_free(c);
	sb_reset(&sql);
	sb_addf(&sql, "SELECT p.id, p.name, p.description, p.is_starred, p.timestamp_created, u.email FROM projectv2 p "
		      "JOIN linkuserprojectv2 l ON l.project_id = p.id AND l.is_owner = $5 JOIN user_oauth u ON u.id = l.user_id "
		      "WHERE %s AND (CAST($4 AS TEXT) IS NULL OR u.email = $4) ORDER BY u.email, p.name LIMIT $6 OFFSET $7", filters);
	int rc = db_exec(db, sql.buf, p, 7, &r);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%lld,\"items\":[", (long long)page,
		(long long)(page_size ? page_size : total), (long long)total);
	for (int i = 0; i < db_nrows(r); i++) {
		project_row_t pr = { .id = db_int(r, i, 0), .name = db_text(r, i, 1), .description = db_text(r, i, 2),
				     .is_starred = db_bool(r, i, 3), .timestamp_created = db_text(r, i, 4) };
		if (i)
			sb_addc(&o, ',');
		access_project_json(&o, &pr);
		o.buf[--o.len] = '\0';
		sb_adds(&o, ",\"user_email\":");
		sb_add_json_str(&o, db_text(r, i, 5));
		sb_addc(&o, '}');
	}
	sb_adds(&o, "]}");
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* a user's resource id and project dirs; 1 after answering 422 when the
 * user has no profile, -1 after 500 */
static int user_resource(http_req_t *req, db_t *db, int64_t uid, int64_t *resource_id, char **resource_name,
			 json_t **dirs, int *is_guest, char **email)
{
	db_res_t *r;
	if (db_exec(db, "SELECT u.email, u.is_guest, u.project_dirs, r.id, r.name FROM user_oauth u "
			"LEFT JOIN profile p ON p.id = u.profile_id LEFT JOIN resource r ON r.id = p.resource_id WHERE u.id = $1",
		    (db_param_t[]){ P_INT(uid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	*email = arena_strdup(&req->arena, db_text(r, 0, 0));
	*is_guest = db_bool(r, 0, 1);
	*dirs = json_loads(db_text(r, 0, 2), 0, NULL);
	int has = !db_isnull(r, 0, 3);
	*resource_id = has ? db_int(r, 0, 3) : 0;
	*resource_name = has ? arena_strdup(&req->arena, db_text(r, 0, 4)) : NULL;
	db_res_free(r);
	if (!has) {
		http_errorf(req, 422, "User %s is not associated to a computational profile. Please contact an admin.", *email);
		return 1;
	}
	return 0;
}

void api_admin_project_transfer(http_req_t *req)
{
	int64_t pid, uid;
	if (v_path_int(req, 0, "project_id", &pid) || v_query_int_required(req, "user_id", &uid))
		return;
	db_t *db = req->db;
	if (access_row_or_404(req, db, "SELECT id FROM projectv2 WHERE id = $1", pid, "Project %lld not found.") ||
	    access_row_or_404(req, db, "SELECT id FROM user_oauth WHERE id = $1", uid, "User %lld not found."))
		return;
	int64_t new_res, old_res;
	char *new_rname, *old_rname, *new_email, *old_email;
	json_t *new_dirs = NULL, *old_dirs = NULL;
	int new_guest, old_guest;
	db_res_t *r = NULL;
	if (user_resource(req, db, uid, &new_res, &new_rname, &new_dirs, &new_guest, &new_email))
		goto out;
	if (new_guest) {
		http_error(req, 422, "Cannot transfer ownership to a guest user.");
		goto out;
	}
	/* the new owner's project names are checked below: serialised with
	 * that user's project creations and renames */
	if (api_begin_locked(req, db, "project-name", uid))
		goto out;
	if (db_exec(db, "SELECT l.user_id, p.name FROM linkuserprojectv2 l JOIN projectv2 p ON p.id = l.project_id "
			"WHERE l.project_id = $1 AND l.is_owner = $2 FOR UPDATE", (db_param_t[]){ P_INT(pid), P_BOOL(1) }, 2, &r))
		goto dberr_tx;
	int64_t old_uid = db_int(r, 0, 0);
	char *pname = arena_strdup(&req->arena, db_text(r, 0, 1));
	db_res_free(r);
	r = NULL;
	if (old_uid == uid) {
		db_rollback(db);
		http_errorf(req, 422, "User %lld is already the owner of project %lld.", (long long)uid, (long long)pid);
		goto out;
	}
	if (user_resource(req, db, old_uid, &old_res, &old_rname, &old_dirs, &old_guest, &old_email)) {
		db_rollback(db);
		goto out;
	}
	if (db_exec(db, "SELECT p.id FROM projectv2 p JOIN linkuserprojectv2 l ON l.project_id = p.id "
			"WHERE p.name = $1 AND l.user_id = $2 AND l.is_owner = $3",
		    (db_param_t[]){ P_TEXT(pname), P_INT(uid), P_BOOL(1) }, 3, &r))
		goto dberr_tx;
	int clash = db_nrows(r);
	db_res_free(r);
	r = NULL;
	if (clash) {
		db_rollback(db);
		http_errorf(req, 422, "Project name (%s) already in use", pname);
		goto out;
	}
	if (old_res != new_res) {
		db_rollback(db);
		http_errorf(req, 422, "Users are associated to different computational resources ('%s' and '%s').",
			    old_rname, new_rname);
		goto out;
	}
	if (db_exec(db, "SELECT zarr_dir FROM datasetv2 WHERE project_id = $1", (db_param_t[]){ P_INT(pid) }, 1, &r))
		goto dberr_tx;
	for (int i = 0; i < db_nrows(r); i++) {
		int ok = 0;
		size_t k;
		json_t *d;
		json_array_foreach(new_dirs, k, d)
			ok |= url_is_relative_to(db_text(r, i, 0), json_string_value(d));
		if (!ok) {
			db_rollback(db);
			http_errorf(req, 422, "Cannot transfer project ownership because zarr_dir='%s' is not relative to one of "
					      "%s project dirs. You can fix it by editing %s project dirs.",
				    db_text(r, i, 0), new_email, new_email);
			goto out;
		}
	}
	db_res_free(r);
	r = NULL;
	if (db_exec(db, "DELETE FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(uid) }, 2, NULL) ||
	    db_exec(db, "UPDATE linkuserprojectv2 SET user_id = $1 WHERE project_id = $2 AND user_id = $3",
		    (db_param_t[]){ P_INT(uid), P_INT(pid), P_INT(old_uid) }, 3, NULL) ||
	    db_commit(db))
		goto dberr_tx;
	log_info("Successfully transferred project %lld (%s) to %s.", (long long)pid, pname, new_email);
	http_empty(req, 200);
	goto out;
dberr_tx:
	api_db_abort(req, db);
out:
	db_res_free(r);
	json_decref(new_dirs);
	json_decref(old_dirs);
}

static int query_bool_opt(http_req_t *req, const char *name, int64_t *out)
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

void api_admin_links_list(http_req_t *req)
{
	int64_t page, page_size, uid = 0, pid = 0, is_owner, is_verified;
	int by_user = 0, by_project = 0;
	if (v_query_int(req, "user_id", &uid, &by_user) || v_query_int(req, "project_id", &pid, &by_project) ||
	    query_bool_opt(req, "is_owner", &is_owner) || query_bool_opt(req, "is_verified", &is_verified) ||
	    v_pagination(req, &page, &page_size))
		return;
	const char *pname = http_query(req, "project_name");
	db_t *db = req->db;
	const char *from = "FROM linkuserprojectv2 l JOIN user_oauth u ON u.id = l.user_id JOIN projectv2 p ON p.id = l.project_id "
			   "WHERE ($1 = 0 OR l.project_id = $2) AND (CAST($3 AS TEXT) IS NULL OR lower(p.name) LIKE '%' || lower($3) || '%') "
			   "AND ($4 = 0 OR l.user_id = $5) AND ($6 < 0 OR l.is_owner = $7) AND ($8 < 0 OR l.is_verified = $9)";
	db_param_t p[] = { P_INT(by_project), P_INT(pid), P_TEXT(pname), P_INT(by_user), P_INT(uid), P_INT(is_owner),
			   P_BOOL(is_owner == 1), P_INT(is_verified), P_BOOL(is_verified == 1),
			   P_INT(page_size ? page_size : INT64_MAX), P_INT(v_page_offset(page, page_size)) };
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT count(*) %s", from);
	db_res_t *c, *r;
	if (db_exec(db, sql.buf, p, 9, &c)) {
		sb_release(&sql);
		api_db_error(req, db);
		return;
	}
	int64_t total = db_int(c, 0, 0);
	db_res_free(c);
	sb_reset(&sql);
	sb_addf(&sql, "SELECT l.user_id, u.email, l.project_id, p.name, l.is_verified, l.is_owner, l.permissions %s "
		      "ORDER BY u.email, p.name LIMIT $10 OFFSET $11", from);
	int rc = db_exec(db, sql.buf, p, 11, &r);
	sb_release(&sql);
	if (rc) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%lld,\"items\":[", (long long)page,
		(long long)(page_size ? page_size : total), (long long)total);
	for (int i = 0; i < db_nrows(r); i++) {
		sb_addf(&o, "%s{\"user_id\":%lld,\"user_email\":", i ? "," : "", (long long)db_int(r, i, 0));
		sb_add_json_str(&o, db_text(r, i, 1));
		sb_addf(&o, ",\"project_id\":%lld,\"project_name\":", (long long)db_int(r, i, 2));
		sb_add_json_str(&o, db_text(r, i, 3));
		sb_addf(&o, ",\"is_verified\":%s,\"is_owner\":%s,\"permissions\":", JBOOL(db_bool(r, i, 4)),
			JBOOL(db_bool(r, i, 5)));
		sb_add_json_str(&o, db_text(r, i, 6));
		sb_addc(&o, '}');
	}
	sb_adds(&o, "]}");
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_admin_link_verify(http_req_t *req)
{
	int64_t gid, pid;
	if (v_query_int_required(req, "guest_user_id", &gid) || v_query_int_required(req, "project_id", &pid))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT is_guest FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(gid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "User %lld not found.", (long long)gid);
		return;
	}
	int guest = db_bool(r, 0, 0);
	db_res_free(r);
	if (!guest) {
		http_error(req, 422, "Cannot accept invitations for non-guest users.");
		return;
	}
	if (db_exec(db, "SELECT is_verified, permissions FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(gid) }, 2, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r) || db_bool(r, 0, 0)) {
		http_error(req, 404, db_nrows(r) ? "No pending invitation for user on this project." : "User is not linked to project.");
		db_res_free(r);
		return;
	}
	if (strcmp(db_text(r, 0, 1), "r")) {
		http_errorf(req, 422, "Guest users can only have 'r' permission (given: '%s')", db_text(r, 0, 1));
		db_res_free(r);
		return;
	}
	db_res_free(r);
	if (db_exec(db, "UPDATE linkuserprojectv2 SET is_verified = $1 WHERE project_id = $2 AND user_id = $3",
		    (db_param_t[]){ P_BOOL(1), P_INT(pid), P_INT(gid) }, 3, NULL)) {
		api_db_error(req, db);
		return;
	}
	http_empty(req, 200);
}
