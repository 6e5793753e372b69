/* sharing.c — project sharing: an owner invites guests by e-mail with
 * "r", "rw" or "rwx" permissions, guests accept or leave (upstream's
 * routes/api/v2/sharing.py). An invitation is a linkuserprojectv2 row with
 * is_verified false; accepting verifies it. */
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"

/* ProjectGuestCreate/Update: {"permissions": "r"|"rw"|"rwx"}; the enum
 * error is pydantic's own shape, not a value error. */
static json_t *permissions_body(http_req_t *req)
{
	const vfield_t f[] = { { .name = "permissions", .type = V_STR, .required = 1 } };
	json_t *b = v_body(req, f, 1, 0);
	if (!b)
		return NULL;
	json_t *p = json_object_get(b, "permissions");
	const char *s = json_string_value(p);
	if (strcmp(s, "r") && strcmp(s, "rw") && strcmp(s, "rwx")) {
		verr_t e;
		verr_init(&e);
		verr_add(&e, "enum", json_pack("[s,s]", "body", "permissions"), "Input should be 'r', 'rw' or 'rwx'", p,
			 json_pack("{s:s}", "expected", "'r', 'rw' or 'rwx'"));
		verr_reply(&e, req);
		json_decref(b);
		b = NULL;
	}
	return b;
}

/* The required "email" query parameter as EmailStr; NULL after a 422. */
static char *query_email(http_req_t *req)
{
	const char *raw = http_query(req, "email");
	verr_t e;
	verr_init(&e);
	json_t *loc = json_pack("[s,s]", "query", "email");
	char *out = NULL;
	if (!raw) {
		verr_add(&e, "missing", loc, "Field required", NULL, NULL);
	} else {
		vfield_t f = { .name = "email", .type = V_EMAIL };
		json_t *in = json_string(raw);
		json_t *v = v_value(&f, in, loc, &e);
		json_decref(in);
		json_decref(loc);
		if (v)
			out = arena_strdup(&req->arena, json_string_value(v));
		json_decref(v);
	}
	if (verr_reply(&e, req))
		return NULL;
	return out;
}

static int owner_or_403(http_req_t *req, db_t *db, int64_t pid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT 1 FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2 AND is_owner = $3",
		    (db_param_t[]){ P_INT(pid), P_INT(req->user->id), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	db_res_free(r);
	if (!n) {
		http_error(req, 403, "Current user is not the project owner.");
		return -1;
	}
	return 0;
}

/* user id by exact e-mail, or 0 after answering 404 / -1 after 500 */
static int64_t user_by_email(http_req_t *req, db_t *db, const char *email)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM user_oauth WHERE email = $1", (db_param_t[]){ P_TEXT(email) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int64_t id = db_nrows(r) ? db_int(r, 0, 0) : 0;
	db_res_free(r);
	if (!id)
		http_error(req, 404, "User not found.");
	return id;
}

/* the link's is_owner/is_verified, or -1 after answering 404/500 */
static int get_link(http_req_t *req, db_t *db, int64_t pid, int64_t uid, int *is_owner, int *is_verified)
{
	db_res_t *r;
	if (db_exec(db, "SELECT is_owner, is_verified FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(uid) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "User is not linked to project.");
		return -1;
	}
	*is_owner = db_bool(r, 0, 0);
	*is_verified = db_bool(r, 0, 1);
	db_res_free(r);
	return 0;
}

void api_guests_list(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	if (owner_or_403(req, db, pid))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT u.email, l.is_verified, l.permissions FROM user_oauth u JOIN linkuserprojectv2 l "
			"ON l.user_id = u.id WHERE l.project_id = $1 AND l.is_owner = $2 ORDER BY u.email",
		    (db_param_t[]){ P_INT(pid), P_BOOL(0) }, 2, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		sb_adds(&o, i ? ",{\"email\":" : "{\"email\":");
		sb_add_json_str(&o, db_text(r, i, 0));
		sb_addf(&o, ",\"is_verified\":%s,\"permissions\":", JBOOL(db_bool(r, i, 1)));
		sb_add_json_str(&o, db_text(r, i, 2));
		sb_addc(&o, '}');
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_guest_invite(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	char *email = query_email(req);
	if (!email)
		return;
	json_t *b = permissions_body(req);
	if (!b)
		return;
	db_t *db = req->db;
	int64_t gid;
	if (owner_or_403(req, db, pid) || (gid = user_by_email(req, db, email)) <= 0)
		goto out;
	db_res_t *r;
	if (db_exec(db, "SELECT 1 FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(gid) }, 2, &r)) {
		api_db_error(req, db);
		goto out;
	}
	int exists = db_nrows(r);
	db_res_free(r);
	if (exists) {
		http_error(req, 422, "User is already associated to project.");
		goto out;
	}
	if (db_exec(db, "INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
			"VALUES ($1, $2, $3, $4, $5)",
		    (db_param_t[]){ P_INT(pid), P_INT(gid), P_BOOL(0), P_BOOL(0),
				    P_TEXT(json_string_value(json_object_get(b, "permissions"))) }, 5, NULL)) {
		if (db_errclass(db) == DB_ERR_CONSTRAINT)
			http_error(req, 422, "User is already associated to project.");
		else
			api_db_error(req, db);
		goto out;
	}
	http_empty(req, 201);
out:
	json_decref(b);
}

static int64_t guest_of_owner(http_req_t *req, db_t *db, int64_t pid, const char *email)
{
	int64_t gid;
	if (owner_or_403(req, db, pid) || (gid = user_by_email(req, db, email)) <= 0)
		return -1;
	if (gid == req->user->id) {
		http_error(req, 422, "Cannot perform this operation on project owner.");
		return -1;
	}
	int is_owner, is_verified;
	if (get_link(req, db, pid, gid, &is_owner, &is_verified))
		return -1;
	return gid;
}

void api_guest_patch(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	char *email = query_email(req);
	if (!email)
		return;
	json_t *b = permissions_body(req);
	if (!b)
		return;
	db_t *db = req->db;
	int64_t gid = guest_of_owner(req, db, pid, email);
	if (gid > 0) {
		if (db_exec(db, "UPDATE linkuserprojectv2 SET permissions = $1 WHERE project_id = $2 AND user_id = $3",
			    (db_param_t[]){ P_TEXT(json_string_value(json_object_get(b, "permissions"))), P_INT(pid), P_INT(gid) },
			    3, NULL))
			api_db_error(req, db);
		else
			http_empty(req, 200);
	}
	json_decref(b);
}

void api_guest_delete(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	char *email = query_email(req);
	if (!email)
		return;
	db_t *db = req->db;
	int64_t gid = guest_of_owner(req, db, pid, email);
	if (gid <= 0)
		return;
	if (db_exec(db, "DELETE FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(gid) }, 2, NULL))
		api_db_error(req, db);
	else
		http_empty(req, 204);
}

void api_invitations_list(http_req_t *req)
{
	if (req->user->is_guest) {
		http_json(req, 200, "[]");
		return;
	}
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT p.id, p.name, l.permissions, (SELECT u.email FROM user_oauth u JOIN linkuserprojectv2 o "
			"ON o.user_id = u.id WHERE o.is_owner = $3 AND o.project_id = p.id) "
			"FROM projectv2 p JOIN linkuserprojectv2 l ON l.project_id = p.id "
			"WHERE l.user_id = $1 AND l.is_verified = $2 ORDER BY p.name",
		    (db_param_t[]){ P_INT(req->user->id), P_BOOL(0), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		sb_addf(&o, "%s{\"project_id\":%lld,\"project_name\":", i ? "," : "", (long long)db_int(r, i, 0));
		sb_add_json_str(&o, db_text(r, i, 1));
		sb_adds(&o, ",\"owner_email\":");
		if (db_text(r, i, 3))
			sb_add_json_str(&o, db_text(r, i, 3));
		else
			sb_adds(&o, "null");
		sb_adds(&o, ",\"guest_permissions\":");
		sb_add_json_str(&o, db_text(r, i, 2));
		sb_addc(&o, '}');
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_access_get(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT l.is_owner, l.permissions, (SELECT u.email FROM user_oauth u JOIN linkuserprojectv2 o "
			"ON o.user_id = u.id WHERE o.is_owner = $3 AND o.project_id = $1) "
			"FROM linkuserprojectv2 l WHERE l.project_id = $1 AND l.user_id = $2 AND l.is_verified = $3",
		    (db_param_t[]){ P_INT(pid), P_INT(req->user->id), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "User has no access to project %lld.", (long long)pid);
		return;
	}
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"is_owner\":%s,\"permissions\":", JBOOL(db_bool(r, 0, 0)));
	sb_add_json_str(&o, db_text(r, 0, 1));
	sb_adds(&o, ",\"owner_email\":");
	if (db_text(r, 0, 2))
		sb_add_json_str(&o, db_text(r, 0, 2));
	else
		sb_adds(&o, "null");
	sb_addc(&o, '}');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_access_accept(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	int is_owner, is_verified;
	if (get_link(req, db, pid, req->user->id, &is_owner, &is_verified))
		return;
	if (is_verified) {
		http_error(req, 404, "No pending invitation for user on this project.");
		return;
	}
	if (db_exec(db, "UPDATE linkuserprojectv2 SET is_verified = $1 WHERE project_id = $2 AND user_id = $3",
		    (db_param_t[]){ P_BOOL(1), P_INT(pid), P_INT(req->user->id) }, 3, NULL))
		api_db_error(req, db);
	else
		http_empty(req, 200);
}

void api_access_leave(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	int is_owner, is_verified;
	if (get_link(req, db, pid, req->user->id, &is_owner, &is_verified))
		return;
	if (is_owner) {
		http_errorf(req, 422, "You are the owner of project %lld.", (long long)pid);
		return;
	}
	if (db_exec(db, "DELETE FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(req->user->id) }, 2, NULL))
		api_db_error(req, db);
	else
		http_empty(req, 204);
}
