/* users.c — accounts: registration by a superuser, the user list and
 * editing (/auth/register/, /auth/users/...), the current user
 * (/auth/current-user/...), logout, and the admin's impersonation and
 * users CSV (/admin/v2/impersonate/, /admin/v2/users-csv/).
 *
 * Behaviour follows upstream's routes/auth/ modules on top of fastapi-users:
 * registration ignores is_active/is_superuser/is_verified (fastapi-users'
 * "safe" create) and puts the new user in the default group; a PATCH that
 * changes the e-mail un-verifies the user; password rules and their 400
 * bodies are fastapi-users'. Password hashing runs on the slow-work threads
 * (http_offload), so these routes work in two phases. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "config/settings.h"
#include "model/images.h"
#include "model/resource.h"
#include "model/task.h"
#include "util/jwt.h"
#include "util/password.h"
#include "util/timeutil.h"

/* ---- shared field checks ---- */

static const char *check_unique_list(json_t **val, sb_t *msg)
{
	size_t n = json_array_size(*val);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (json_equal(json_array_get(*val, i), json_array_get(*val, j)))
				return "List has repetitions";
	(void)msg;
	return NULL;
}


/* ListUniqueProjectDir + _validate_cmd_list: absolute paths (normalised)
 * or s3://bucket/key URLs, unique, without shell metacharacters. */
static const char *check_project_dirs(json_t **val, sb_t *msg)
{
	json_t *out = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(*val, i, v) {
		const char *s = json_string_value(v);
		while (isspace((unsigned char)*s))
			s++;
		if (!strncmp(s, "s3://", 5)) {
			const char *slash = strchr(s + 5, '/');
			if (!slash || slash == s + 5 || !slash[1]) {
				sb_addf(msg, "S3 URL must match pattern 's3://bucket/key' (given '%s')", s);
				json_decref(out);
				return msg->buf;
			}
			json_array_append_new(out, json_string(s));
		} else {
			sb_t err = SB_INIT;
			char *p = abs_path_normalise(s, "project_dirs", &err);
			if (!p) {
				if (s[0] != '/')
					sb_addf(msg, "String must be an absolute path (given '%s').", s);
				else
					sb_adds(msg, "String must not contain '/../'.");
				sb_release(&err);
				json_decref(out);
				return msg->buf;
			}
			json_array_append_new(out, json_string(p));
			free(p);
			sb_release(&err);
		}
		/* _validate_cmd_list: each dir passes validate_cmd */
		if (task_validate_cmd(json_string_value(json_array_get(out, i)), NULL, NULL, msg)) {
			json_decref(out);
			return msg->buf;
		}
	}
	json_decref(*val);
	*val = out;
	return check_unique_list(val, msg);
}

#define SLURM_ACCOUNT_PATTERN "^[a-zA-Z0-9_.-]+$"

/* fastapi-users' password rules as upstream's UserManager.validate_password
 * has them; returns the reason, or NULL when fine. */
static const char *password_problem(const char *pwd, sb_t *why)
{
	size_t bytes = strlen(pwd), chars = 0;
	for (const unsigned char *p = (const unsigned char *)pwd; *p; p++)
		chars += (*p & 0xc0) != 0x80;
	if (chars < 4) {
		sb_addf(why, "The password is too short (length = %zu, minimum length = 4).", chars);
		return why->buf;
	}
	if (bytes > 72) {
		sb_addf(why, "The password is too long (length = %zu bytes, maximum length = 72 bytes).", bytes);
		return why->buf;
	}
	return NULL;
}

static void password_error(http_req_t *req, const char *code, const char *reason)
{
	sb_t sb = SB_INIT;
	sb_addf(&sb, "{\"code\":\"%s\",\"reason\":", code);
	sb_add_json_str(&sb, reason);
	sb_addc(&sb, '}');
	http_error_json(req, 400, sb.buf);
	sb_release(&sb);
}

/* ---- reading users ---- */

#define USER_COLS "id, email, is_active, is_superuser, is_verified, is_guest, profile_id, project_dirs, slurm_accounts"

static void add_oauth_accounts(sb_t *out, db_res_t *acc, int64_t uid)
{
	sb_adds(out, "\"oauth_accounts\":[");
	int first = 1;
	for (int i = 0; acc && i < db_nrows(acc); i++) {
		if (db_int(acc, i, 1) != uid)
			continue;
		sb_addf(out, "%s{\"id\":%lld,\"account_email\":", first ? "" : ",", (long long)db_int(acc, i, 0));
		sb_add_json_str(out, db_text(acc, i, 2));
		sb_adds(out, ",\"oauth_name\":");
		sb_add_json_str(out, db_text(acc, i, 3));
		sb_addc(out, '}');
		first = 0;
	}
	sb_adds(out, "],");
}

/* One UserRead object from row i of r (USER_COLS); groups is the
 * group_ids_names JSON or NULL for null. */
static void user_obj(sb_t *out, db_res_t *r, int i, const char *groups, db_res_t *acc)
{
	sb_addf(out, "{\"id\":%lld,\"email\":", (long long)db_int(r, i, 0));
	sb_add_json_str(out, db_text(r, i, 1));
	sb_addf(out, ",\"is_active\":%s,\"is_superuser\":%s,\"is_verified\":%s,\"is_guest\":%s,\"group_ids_names\":%s,",
		JBOOL(db_bool(r, i, 2)), JBOOL(db_bool(r, i, 3)), JBOOL(db_bool(r, i, 4)), JBOOL(db_bool(r, i, 5)),
		groups ? groups : "null");
	add_oauth_accounts(out, acc, db_int(r, i, 0));
	if (db_isnull(r, i, 6))
		sb_adds(out, "\"profile_id\":null,");
	else
		sb_addf(out, "\"profile_id\":%lld,", (long long)db_int(r, i, 6));
	sb_addf(out, "\"project_dirs\":%s,\"slurm_accounts\":%s}", db_text(r, i, 7) ? db_text(r, i, 7) : "[]",
		db_text(r, i, 8) ? db_text(r, i, 8) : "[]");
}

/* group_ids_names of a user: groups by membership time, the default group
 * first (upstream's _get_single_user_with_groups). Appends JSON to out. */
static int group_ids_names(db_t *db, int64_t uid, sb_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT g.id, g.name FROM usergroup g JOIN linkusergroup l ON l.group_id = g.id "
			"WHERE l.user_id = $1 ORDER BY l.timestamp_created", (db_param_t[]){ P_INT(uid) }, 1, &r))
		return -1;
	const char *def = settings.default_group_name;
	int defrow = -1;
	for (int i = 0; def && i < db_nrows(r); i++)
		if (!strcmp(db_text(r, i, 1), def)) {
			defrow = i;
			break;
		}
	sb_addc(out, '[');
	int first = 1;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < db_nrows(r); i++) {
			if ((pass == 0) != (i == defrow))
				continue;
			sb_addf(out, "%s[%lld,", first ? "" : ",", (long long)db_int(r, i, 0));
			sb_add_json_str(out, db_text(r, i, 1));
			sb_addc(out, ']');
			first = 0;
		}
	sb_addc(out, ']');
	db_res_free(r);
	return 0;
}

/* Appends one user's UserRead; 1 if not found, -1 on db error. */
static int user_json(db_t *db, int64_t uid, int with_groups, sb_t *out)
{
	db_res_t *r, *acc = NULL;
	if (db_exec(db, "SELECT " USER_COLS " FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &r))
		return -1;
	if (!db_nrows(r)) {
		db_res_free(r);
		return 1;
	}
	sb_t groups = SB_INIT;
	if ((with_groups && group_ids_names(db, uid, &groups)) ||
	    db_exec(db, "SELECT id, user_id, account_email, oauth_name FROM oauthaccount WHERE user_id = $1 ORDER BY id",
		    (db_param_t[]){ P_INT(uid) }, 1, &acc)) {
		db_res_free(r);
		sb_release(&groups);
		return -1;
	}
	user_obj(out, r, 0, with_groups ? groups.buf : NULL, acc);
	sb_release(&groups);
	db_res_free(r);
	db_res_free(acc);
	return 0;
}

static void reply_user(http_req_t *req, db_t *db, int64_t uid, int with_groups, int status)
{
	sb_t out = SB_INIT;
	int rc = user_json(db, uid, with_groups, &out);
	if (rc < 0)
		api_db_error(req, db);
	else if (rc > 0)
		http_errorf(req, 404, "User %lld not found.", (long long)uid);
	else
		http_json_sb(req, status, &out);
	sb_release(&out);
}

/* 0 if the user/profile exists, 1 (after answering 404) if not, -1 on db error. */
static int user_or_404(http_req_t *req, db_t *db, int64_t uid)
{
	return access_row_or_404(req, db, "SELECT id FROM user_oauth WHERE id = $1", uid, "User %lld not found.");
}

static int profile_or_404(http_req_t *req, db_t *db, int64_t pid)
{
	return access_row_or_404(req, db, "SELECT id FROM profile WHERE id = $1", pid, "Profile %lld not found.");
}

/* 1 if another user has this e-mail (case-insensitively); -1 on error. */
static int email_taken(db_t *db, const char *email)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM user_oauth WHERE lower(email) = lower($1)", (db_param_t[]){ P_TEXT(email) }, 1, &r))
		return -1;
	int n = db_nrows(r);
	db_res_free(r);
	return n > 0;
}

/* ---- GET/PATCH /auth/current-user/ ---- */

void api_current_user_get(http_req_t *req)
{
	int with_groups = 0;
	if (v_query_bool(req, "group_ids_names", &with_groups))
		return;
	reply_user(req, req->db, req->user->id, with_groups, 200);
}

static const vfield_t slurm_accounts_field = {
	.name = "slurm_accounts", .type = V_LIST, .item = V_STR, .check = check_unique_list,
	.pattern = NULL,
};

/* SlurmAccountsList items: at least one character, [a-zA-Z0-9_.-] */
static const char *check_slurm_accounts(json_t **val, sb_t *msg)
{
	size_t i;
	json_t *v;
	json_array_foreach(*val, i, v) {
		const char *s = json_string_value(v);
		if (!*s) {
			sb_adds(msg, "String should have at least 1 character");
			return msg->buf;
		}
		for (const char *p = s; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') {
				sb_addf(msg, "String should match pattern '%s' (given '%s')", SLURM_ACCOUNT_PATTERN, s);
				return msg->buf;
			}
	}
	return check_unique_list(val, msg);
}

void api_current_user_patch(http_req_t *req)
{
	vfield_t fields[] = { slurm_accounts_field };
	fields[0].check = check_slurm_accounts;
	json_t *body = v_body(req, fields, 1, 1);
	if (!body)
		return;
	if (req->user->is_guest) {
		json_decref(body);
		http_error(req, 403, "This feature is not available for guest users.");
		return;
	}
	db_t *db = req->db;
	json_t *acc = json_object_get(body, "slurm_accounts");
	if (acc) {
		char *s = json_dumps(acc, JSON_COMPACT);
		int rc = db_exec(db, "UPDATE user_oauth SET slurm_accounts = $1 WHERE id = $2",
				 (db_param_t[]){ P_ARRAY(s), P_INT(req->user->id) }, 2, NULL);
		free(s);
		if (rc) {
			json_decref(body);
			api_db_error(req, db);
			return;
		}
	}
	json_decref(body);
	reply_user(req, db, req->user->id, 1, 200);
}

/* GET /auth/current-user/profile-info/ */
void api_current_user_profile_info(http_req_t *req)
{
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT r.name, p.name, p.username FROM user_oauth u JOIN profile p ON p.id = u.profile_id "
			"JOIN resource r ON r.id = p.resource_id WHERE u.id = $1",
		    (db_param_t[]){ P_INT(req->user->id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t out = SB_INIT;
	if (!db_nrows(r)) {
		sb_adds(&out, "{\"has_profile\":false,\"resource_name\":null,\"profile_name\":null,\"username\":null}");
	} else {
		sb_adds(&out, "{\"has_profile\":true,\"resource_name\":");
		sb_add_json_str(&out, db_text(r, 0, 0));
		sb_adds(&out, ",\"profile_name\":");
		sb_add_json_str(&out, db_text(r, 0, 1));
		sb_adds(&out, ",\"username\":");
		if (db_text(r, 0, 2))
			sb_add_json_str(&out, db_text(r, 0, 2));
		else
			sb_adds(&out, "null");
		sb_addc(&out, '}');
	}
	db_res_free(r);
	http_json_sb(req, 200, &out);
}

/* GET /auth/current-user/allowed-viewer-paths/: the user's project dirs,
 * then (unless include_shared_projects=false) the zarr dirs of the datasets
 * of every project the user has verified access to. */
void api_current_user_viewer_paths(http_req_t *req)
{
	int shared = 1;
	if (v_query_bool(req, "include_shared_projects", &shared))
		return;
	db_t *db = req->db;
	db_res_t *u, *z = NULL;
	if (db_exec(db, "SELECT project_dirs FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(req->user->id) }, 1, &u) ||
	    (shared && db_exec(db, "SELECT DISTINCT d.zarr_dir FROM datasetv2 d JOIN projectv2 p ON p.id = d.project_id "
				   "JOIN linkuserprojectv2 l ON l.project_id = p.id WHERE l.user_id = $1 AND l.is_verified = $2",
			       (db_param_t[]){ P_INT(req->user->id), P_BOOL(1) }, 2, &z))) {
		api_db_error(req, db);
		return;
	}
	json_t *dirs = json_loads(db_text(u, 0, 0) ? db_text(u, 0, 0) : "[]", 0, NULL);
	if (!dirs)
		dirs = json_array();
	for (int i = 0; i < db_nrows(z); i++)
		json_array_append_new(dirs, json_string(db_text(z, i, 0)));
	char *s = json_dumps(dirs, JSON_COMPACT);
	http_json(req, 200, s);
	free(s);
	json_decref(dirs);
	db_res_free(u);
	db_res_free(z);
}

/* POST /auth/token/logout/: JWTs cannot be revoked; fastapi-users answers
 * 204 to an active user. */
void api_logout(http_req_t *req)
{
	http_empty(req, 204);
}

/* ---- POST /auth/register/ ---- */

struct hash_state {
	json_t *body;
	char hash[PASSWORD_HASH_LEN];
	int hash_failed;
	int64_t user_id;     /* PATCH: the target */
};

static void hash_password(http_req_t *req)
{
	struct hash_state *st = req->work_state;
	const char *pwd = json_string_value(json_object_get(st->body, "password"));
	st->hash_failed = password_hash(pwd, st->hash) != 0;
}

/* Adds uid to the default group if it exists; -1 on db error. */
static int join_default_group(db_t *db, int64_t uid, const char *now)
{
	if (!settings.default_group_name)
		return 0;
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM usergroup WHERE name = $1", (db_param_t[]){ P_TEXT(settings.default_group_name) }, 1, &r))
		return -1;
	int rc = 0;
	if (db_nrows(r))
		rc = db_exec(db, "INSERT INTO linkusergroup (group_id, user_id, timestamp_created) VALUES ($1, $2, $3)",
			     (db_param_t[]){ P_INT(db_int(r, 0, 0)), P_INT(uid), P_TS(now) }, 3, NULL);
	else
		log_error("No group found with name %s", settings.default_group_name);
	db_res_free(r);
	return rc;
}

static void register_finish(http_req_t *req)
{
	struct hash_state *st = req->work_state;
	json_t *b = st->body;
	db_t *db = req->db;
	if (st->hash_failed) {
		json_decref(b);
		http_error_500(req, "hashing the password failed");
		return;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	json_t *pid = json_object_get(b, "profile_id");
	json_t *acc = json_object_get(b, "slurm_accounts");
	char *dirs = json_dumps(json_object_get(b, "project_dirs"), JSON_COMPACT);
	char *accs = acc ? json_dumps(acc, JSON_COMPACT) : xstrdup("[]");
	db_res_t *r = NULL;
	int64_t uid = 0;
	/* the case-insensitive check is wider than the unique index: serialise
	 * it with the insert (and with e-mail changes) */
	if (db_begin(db))
		goto dberr;
	if (db_lock_key(db, "user-email", 0))
		goto dberr_tx;
	int taken = email_taken(db, json_string_value(json_object_get(b, "email")));
	if (taken < 0)
		goto dberr_tx;
	if (taken) {
		db_rollback(db);
		http_error(req, 400, "REGISTER_USER_ALREADY_EXISTS");
		goto out;
	}
	db_param_t p[] = {
		P_TEXT(json_string_value(json_object_get(b, "email"))), P_SECRET(st->hash), P_BOOL(1), P_BOOL(0),
		P_BOOL(0), P_BOOL(json_is_true(json_object_get(b, "is_guest"))),
		json_is_integer(pid) ? P_INT(json_integer_value(pid)) : P_NULL, P_ARRAY(dirs), P_ARRAY(accs),
	};
	if (db_exec(db, "INSERT INTO user_oauth (email, hashed_password, is_active, is_superuser, is_verified, is_guest, "
			"profile_id, project_dirs, slurm_accounts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
		    p, 9, &r)) {
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			http_error(req, 400, "REGISTER_USER_ALREADY_EXISTS");
			goto out;
		}
		goto dberr_tx;
	}
	uid = db_int(r, 0, 0);
	if (join_default_group(db, uid, now) || db_commit(db))
		goto dberr_tx;
	log_info("New-user registration completed (user.id=%lld, user.email='%s').", (long long)uid,
		 json_string_value(json_object_get(b, "email")));
	reply_user(req, db, uid, 0, 201);
	goto out;
dberr_tx:
	db_rollback(db);
dberr:
	api_db_error(req, db);
out:
	db_res_free(r);
	free(dirs);
	free(accs);
	json_decref(b);
}

void api_register(http_req_t *req)
{
	if (req->phase == 1) {
		register_finish(req);
		return;
	}
	const vfield_t fields[] = {
		{ .name = "email", .type = V_EMAIL, .required = 1 },
		{ .name = "password", .type = V_STR, .required = 1 },
		{ .name = "is_active", .type = V_BOOL, .nullable = 1 },
		{ .name = "is_superuser", .type = V_BOOL, .nullable = 1 },
		{ .name = "is_verified", .type = V_BOOL, .nullable = 1 },
		{ .name = "is_guest", .type = V_BOOL },
		{ .name = "profile_id", .type = V_INT, .nullable = 1 },
		{ .name = "project_dirs", .type = V_LIST, .item = V_STR, .required = 1, .min_length = 1,
		  .check = check_project_dirs },
		{ .name = "slurm_accounts", .type = V_LIST, .item = V_STR, .check = check_slurm_accounts },
	};
	json_t *b = v_body(req, fields, (int)(sizeof(fields) / sizeof(fields[0])), 0);
	if (!b)
		return;
	sb_t why = SB_INIT;
	if (password_problem(json_string_value(json_object_get(b, "password")), &why)) {
		password_error(req, "REGISTER_INVALID_PASSWORD", why.buf);
		sb_release(&why);
		json_decref(b);
		return;
	}
	sb_release(&why);
	db_t *db = req->db;
	int taken = email_taken(db, json_string_value(json_object_get(b, "email")));
	if (taken) {
		if (taken < 0)
			api_db_error(req, db);
		else
			http_error(req, 400, "REGISTER_USER_ALREADY_EXISTS");
		json_decref(b);
		return;
	}
	json_t *pid = json_object_get(b, "profile_id");
	if (json_is_integer(pid) && profile_or_404(req, db, json_integer_value(pid))) {
		json_decref(b);
		return;
	}
	struct hash_state *st = arena_alloc(&req->arena, sizeof(*st));
	st->body = b;
	req->work_state = st;
	http_offload(req, hash_password);
}

/* ---- GET /auth/users/, GET/PATCH /auth/users/{id}/ ---- */

void api_users_list(http_req_t *req)
{
	int64_t profile_id = 0;
	int by_profile = 0;
	if (v_query_int(req, "profile_id", &profile_id, &by_profile))
		return;
	db_t *db = req->db;
	db_res_t *r, *acc;
	int rc = by_profile
		? db_exec(db, "SELECT " USER_COLS " FROM user_oauth WHERE profile_id = $1 ORDER BY id",
			  (db_param_t[]){ P_INT(profile_id) }, 1, &r)
		: db_exec(db, "SELECT " USER_COLS " FROM user_oauth ORDER BY id", NULL, 0, &r);
	if (rc) {
		api_db_error(req, db);
		return;
	}
	if (db_exec(db, "SELECT id, user_id, account_email, oauth_name FROM oauthaccount ORDER BY id", NULL, 0, &acc)) {
		db_res_free(r);
		api_db_error(req, db);
		return;
	}
	sb_t out = SB_INIT;
	sb_addc(&out, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		if (i)
			sb_addc(&out, ',');
		user_obj(&out, r, i, NULL, acc);
	}
	sb_addc(&out, ']');
	db_res_free(r);
	db_res_free(acc);
	http_json_sb(req, 200, &out);
}

void api_user_get(http_req_t *req)
{
	int64_t uid;
	int with_groups = 1;
	if (v_path_int(req, 0, "user_id", &uid) || v_query_bool(req, "group_ids_names", &with_groups))
		return;
	reply_user(req, req->db, uid, with_groups, 200);
}

/* upstream's _check_project_dirs_update: refuse to remove a project dir
 * that holds the zarr_dir of a dataset the user can reach. 0 fine, 1 after
 * answering 422, -1 after answering 500. */
static int check_project_dirs_update(http_req_t *req, db_t *db, int64_t uid, json_t *old_dirs, json_t *new_dirs)
{
	json_t *removed = json_array();
	size_t i, j;
	json_t *o, *n;
	json_array_foreach(old_dirs, i, o) {
		int kept = 0;
		json_array_foreach(new_dirs, j, n)
			kept |= url_is_relative_to(json_string_value(o), json_string_value(n));
		if (!kept)
			json_array_append(removed, o);
	}
	int rc = 0;
	if (json_array_size(removed)) {
		db_res_t *r;
		if (db_exec(db, "SELECT d.zarr_dir FROM datasetv2 d JOIN projectv2 p ON p.id = d.project_id "
				"JOIN linkuserprojectv2 l ON l.project_id = p.id WHERE l.user_id = $1 AND l.is_verified = $2",
			    (db_param_t[]){ P_INT(uid), P_BOOL(1) }, 2, &r)) {
			api_db_error(req, db);
			json_decref(removed);
			return -1;
		}
		for (int k = 0; k < db_nrows(r) && !rc; k++) {
			const char *z = db_text(r, k, 0);
			int under_removed = 0, under_new = 0;
			json_array_foreach(removed, i, o)
				under_removed |= url_is_relative_to(z, json_string_value(o));
			json_array_foreach(new_dirs, j, n)
				under_new |= url_is_relative_to(z, json_string_value(n));
			if (under_removed && !under_new)
				rc = 1;
		}
		db_res_free(r);
		if (rc) {
			/* Python's repr of the list: ['a', 'b'] */
			sb_t msg = SB_INIT;
			sb_adds(&msg, "You tried updating the user project_dirs, removing [");
			json_array_foreach(removed, i, o)
				sb_addf(&msg, "%s'%s'", i ? ", " : "", json_string_value(o));
			sb_adds(&msg, "]. This operation is not possible, because it would make the user loose access to "
				      "some of their dataset zarr directories.");
			http_error(req, 422, msg.buf);
			sb_release(&msg);
		}
	}
	json_decref(removed);
	return rc;
}

static void patch_finish(http_req_t *req)
{
	struct hash_state *st = req->work_state;
	json_t *b = st->body;
	db_t *db = req->db;
	int64_t uid = st->user_id;
	if (st->hash_failed) {
		json_decref(b);
		http_error_500(req, "hashing the password failed");
		return;
	}
	if (db_begin(db)) {
		json_decref(b);
		api_db_error(req, db);
		return;
	}
	db_res_t *cur;
	if ((json_object_get(b, "email") && db_lock_key(db, "user-email", 0)) ||
	    db_exec(db, "SELECT email FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &cur))
		goto dberr;
	if (!db_nrows(cur)) {
		db_res_free(cur);
		db_rollback(db);
		json_decref(b);
		http_errorf(req, 404, "User %lld not found.", (long long)uid);
		return;
	}
	/* fields in UserUpdate's order, as fastapi-users applies them */
	json_t *email = json_object_get(b, "email");
	int unverify = 0;
	if (email && strcmp(json_string_value(email), db_text(cur, 0, 0))) {
		int taken = email_taken(db, json_string_value(email));
		if (taken < 0) {
			db_res_free(cur);
			goto dberr;
		}
		if (taken) {
			db_res_free(cur);
			db_rollback(db);
			json_decref(b);
			http_error(req, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS");
			return;
		}
		unverify = 1;
	}
	db_res_free(cur);
	int rc = 0;
	if (json_object_get(b, "password"))
		rc |= db_exec(db, "UPDATE user_oauth SET hashed_password = $1 WHERE id = $2",
			      (db_param_t[]){ P_SECRET(st->hash), P_INT(uid) }, 2, NULL);
	if (unverify)
		rc |= db_exec(db, "UPDATE user_oauth SET email = $1, is_verified = $2 WHERE id = $3",
			      (db_param_t[]){ P_TEXT(json_string_value(email)), P_BOOL(0), P_INT(uid) }, 3, NULL);
	static const char *const bools[] = { "is_active", "is_superuser", "is_verified", "is_guest" };
	for (int i = 0; i < 4 && !rc; i++) {
		json_t *v = json_object_get(b, bools[i]);
		if (!v)
			continue;
		char sql[96];
		snprintf(sql, sizeof(sql), "UPDATE user_oauth SET %s = $1 WHERE id = $2", bools[i]);
		rc |= db_exec(db, sql, (db_param_t[]){ P_BOOL(json_is_true(v)), P_INT(uid) }, 2, NULL);
	}
	json_t *pid = json_object_get(b, "profile_id");
	if (pid && !rc)
		rc |= db_exec(db, "UPDATE user_oauth SET profile_id = $1 WHERE id = $2",
			      (db_param_t[]){ json_is_integer(pid) ? P_INT(json_integer_value(pid)) : P_NULL, P_INT(uid) }, 2, NULL);
	static const char *const arrays[] = { "project_dirs", "slurm_accounts" };
	for (int i = 0; i < 2 && !rc; i++) {
		json_t *v = json_object_get(b, arrays[i]);
		if (!v)
			continue;
		char *s = json_dumps(v, JSON_COMPACT);
		char sql[96];
		snprintf(sql, sizeof(sql), "UPDATE user_oauth SET %s = $1 WHERE id = $2", arrays[i]);
		rc |= db_exec(db, sql, (db_param_t[]){ P_ARRAY(s), P_INT(uid) }, 2, NULL);
		free(s);
	}
	if (rc) {
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			json_decref(b);
			http_error(req, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS");
			return;
		}
		goto dberr;
	}
	if (db_commit(db))
		goto dberr;
	json_decref(b);
	reply_user(req, db, uid, 1, 200);
	return;
dberr:
	api_db_abort(req, db);
	json_decref(b);
}

static void hash_if_needed(http_req_t *req)
{
	struct hash_state *st = req->work_state;
	if (json_object_get(st->body, "password"))
		hash_password(req);
}

void api_user_patch(http_req_t *req)
{
	if (req->phase == 1) {
		patch_finish(req);
		return;
	}
	int64_t uid;
	if (v_path_int(req, 0, "user_id", &uid))
		return;
	const vfield_t fields[] = {
		{ .name = "password", .type = V_NONEMPTY },
		{ .name = "email", .type = V_EMAIL },
		{ .name = "is_active", .type = V_BOOL },
		{ .name = "is_superuser", .type = V_BOOL },
		{ .name = "is_verified", .type = V_BOOL },
		{ .name = "is_guest", .type = V_BOOL },
		{ .name = "profile_id", .type = V_INT, .nullable = 1 },
		{ .name = "project_dirs", .type = V_LIST, .item = V_STR, .min_length = 1, .check = check_project_dirs },
		{ .name = "slurm_accounts", .type = V_LIST, .item = V_STR, .check = check_slurm_accounts },
	};
	json_t *b = v_body(req, fields, (int)(sizeof(fields) / sizeof(fields[0])), 1);
	if (!b)
		return;
	db_t *db = req->db;
	db_res_t *r = NULL;
	if (db_exec(db, "SELECT is_superuser, project_dirs FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_errorf(req, 404, "User %lld not found.", (long long)uid);
		goto out;
	}
	json_t *pid = json_object_get(b, "profile_id");
	if (json_is_integer(pid) && profile_or_404(req, db, json_integer_value(pid)))
		goto out;
	json_t *dirs = json_object_get(b, "project_dirs");
	if (dirs) {
		json_t *old = json_loads(db_text(r, 0, 1), 0, NULL);
		int rc = check_project_dirs_update(req, db, uid, old ? old : json_array(), dirs);
		json_decref(old);
		if (rc)
			goto out;
	}
	json_t *su = json_object_get(b, "is_superuser");
	int will_be_superuser = su ? json_is_true(su) : db_bool(r, 0, 0);
	if (json_is_true(json_object_get(b, "is_guest")) && will_be_superuser) {
		http_error(req, 422, "Superuser cannot be guest.");
		goto out;
	}
	json_t *pwd = json_object_get(b, "password");
	if (pwd) {
		sb_t why = SB_INIT;
		if (password_problem(json_string_value(pwd), &why)) {
			password_error(req, "UPDATE_USER_INVALID_PASSWORD", why.buf);
			sb_release(&why);
			goto out;
		}
		sb_release(&why);
	}
	db_res_free(r);
	struct hash_state *st = arena_alloc(&req->arena, sizeof(*st));
	st->body = b;
	st->user_id = uid;
	req->work_state = st;
	if (pwd)
		http_offload(req, hash_if_needed);
	else
		patch_finish(req);
	return;
out:
	db_res_free(r);
	json_decref(b);
}

/* ---- POST /auth/users/{id}/set-groups/ ---- */

/* The default group's id: 0 if FRACTAL_DEFAULT_GROUP_NAME is unset; -1
 * after answering 404 (tuple detail, as upstream) or 500. */
int64_t default_group_id(http_req_t *req, db_t *db)
{
	if (!settings.default_group_name)
		return 0;
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM usergroup WHERE name = $1", (db_param_t[]){ P_TEXT(settings.default_group_name) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int64_t id = db_nrows(r) ? db_int(r, 0, 0) : -1;
	db_res_free(r);
	if (id < 0) {
		sb_t d = SB_INIT;
		sb_adds(&d, "[");
		sb_t msg = SB_INIT;
		sb_addf(&msg, "User group '%s' not found.", settings.default_group_name);
		sb_add_json_str(&d, msg.buf);
		sb_adds(&d, "]");
		http_error_json(req, 404, d.buf);
		sb_release(&d);
		sb_release(&msg);
	}
	return id;
}

void api_user_set_groups(http_req_t *req)
{
	int64_t uid;
	if (v_path_int(req, 0, "user_id", &uid))
		return;
	const vfield_t fields[] = {
		{ .name = "group_ids", .type = V_LIST, .item = V_NONNEG, .required = 1, .min_length = 1,
		  .check = check_unique_list },
	};
	json_t *b = v_body(req, fields, 1, 1);
	if (!b)
		return;
	db_t *db = req->db;
	json_t *ids = json_object_get(b, "group_ids");
	char *ids_text = json_dumps(ids, JSON_COMPACT);
	if (user_or_404(req, db, uid))
		goto out;
	/* count the groups that exist, portably: one lookup per id */
	size_t i;
	json_t *v;
	int missing = 0;
	json_array_foreach(ids, i, v) {
		db_res_t *r;
		if (db_exec(db, "SELECT id FROM usergroup WHERE id = $1", (db_param_t[]){ P_INT(json_integer_value(v)) }, 1, &r)) {
			api_db_error(req, db);
			goto out;
		}
		missing |= !db_nrows(r);
		db_res_free(r);
	}
	if (missing) {
		/* Python's str() of the list: [1, 2] */
		sb_t msg = SB_INIT;
		sb_adds(&msg, "Some UserGroups in [");
		json_array_foreach(ids, i, v)
			sb_addf(&msg, "%s%lld", i ? ", " : "", (long long)json_integer_value(v));
		sb_adds(&msg, "] do not exist.");
		http_error(req, 404, msg.buf);
		sb_release(&msg);
		goto out;
	}
	int64_t def = default_group_id(req, db);
	if (def < 0)
		goto out;
	if (def > 0) {
		int in = 0;
		json_array_foreach(ids, i, v)
			in |= json_integer_value(v) == def;
		if (!in) {
			sb_t msg = SB_INIT, d = SB_INIT;
			sb_addf(&msg, "Cannot remove user from '%s' group.", settings.default_group_name);
			sb_addc(&d, '[');
			sb_add_json_str(&d, msg.buf);
			sb_addc(&d, ']');
			http_error_json(req, 422, d.buf);
			sb_release(&msg);
			sb_release(&d);
			goto out;
		}
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	db_res_t *cur;
	if (db_exec(db, "SELECT group_id FROM linkusergroup WHERE user_id = $1", (db_param_t[]){ P_INT(uid) }, 1, &cur)) {
		api_db_abort(req, db);
		goto out;
	}
	int rc = 0;
	for (int k = 0; k < db_nrows(cur) && !rc; k++) {
		int keep = 0;
		json_array_foreach(ids, i, v)
			keep |= json_integer_value(v) == db_int(cur, k, 0);
		if (!keep) {
			log_info("Removing LinkUserGroup with user_id=%lld and group_id=%lld.", (long long)uid,
				 (long long)db_int(cur, k, 0));
			rc = db_exec(db, "DELETE FROM linkusergroup WHERE user_id = $1 AND group_id = $2",
				     (db_param_t[]){ P_INT(uid), P_INT(db_int(cur, k, 0)) }, 2, NULL);
		}
	}
	json_array_foreach(ids, i, v) {
		int have = 0;
		for (int k = 0; k < db_nrows(cur); k++)
			have |= db_int(cur, k, 0) == json_integer_value(v);
		if (!have && !rc) {
			log_info("Creating new LinkUserGroup with user_id=%lld and group_id=%lld.", (long long)uid,
				 (long long)json_integer_value(v));
			rc = db_exec(db, "INSERT INTO linkusergroup (group_id, user_id, timestamp_created) VALUES ($1, $2, $3)",
				     (db_param_t[]){ P_INT(json_integer_value(v)), P_INT(uid), P_TS(now) }, 3, NULL);
		}
	}
	db_res_free(cur);
	if (rc || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	reply_user(req, db, uid, 1, 200);
out:
	free(ids_text);
	json_decref(b);
}

/* ---- /admin/v2/impersonate/{user_id}/ ---- */

void api_impersonate(http_req_t *req)
{
	int64_t uid;
	if (v_path_int(req, 0, "user_id", &uid))
		return;
	db_t *db = req->db;
	if (user_or_404(req, db, uid))
		return;
	char *tok = jwt_encode(settings.jwt_secret_key, uid, (int64_t)time(NULL) + 7200);
	sb_t out = SB_INIT;
	sb_adds(&out, "{\"access_token\":");
	sb_add_json_str(&out, tok);
	sb_adds(&out, ",\"token_type\":\"bearer\"}");
	free(tok);
	http_json_sb(req, 200, &out);
}

/* ---- /admin/v2/users-csv/ ---- */

/* A CSV field as Python's csv.writer writes it (QUOTE_MINIMAL). */
static void csv_field(sb_t *out, const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		sb_adds(out, s);
		return;
	}
	sb_addc(out, '"');
	for (; *s; s++) {
		if (*s == '"')
			sb_addc(out, '"');
		sb_addc(out, *s);
	}
	sb_addc(out, '"');
}

static void csv_array(sb_t *tmp, const char *json)
{
	sb_reset(tmp);
	json_t *a = json ? json_loads(json, 0, NULL) : NULL;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (i)
			sb_addc(tmp, '|');
		sb_adds(tmp, json_string_value(v) ? json_string_value(v) : "");
	}
	json_decref(a);
}

void api_users_csv(http_req_t *req)
{
	int exclude_zero = 0;
	if (v_query_bool(req, "exclude_zero_jobs", &exclude_zero))
		return;
	char tmin_buf[40], tmax_buf[40];
	if (v_query_ts(req, "start_timestamp_min", tmin_buf) || v_query_ts(req, "start_timestamp_max", tmax_buf))
		return;
	const char *tmin = tmin_buf[0] ? tmin_buf : NULL, *tmax = tmax_buf[0] ? tmax_buf : NULL;
	db_t *db = req->db;
	db_res_t *u, *g;
	if (db_exec(db, "SELECT u.id, u.email, p.username, u.slurm_accounts, u.project_dirs FROM user_oauth u "
			"JOIN profile p ON p.id = u.profile_id ORDER BY u.email", NULL, 0, &u)) {
		api_db_error(req, db);
		return;
	}
	if (db_exec(db, "SELECT l.user_id, g.name FROM linkusergroup l JOIN usergroup g ON g.id = l.group_id", NULL, 0, &g)) {
		db_res_free(u);
		api_db_error(req, db);
		return;
	}
	sb_t out = SB_INIT, tmp = SB_INIT;
	sb_adds(&out, "id,email,slurm_username,slurm_accounts,project_dirs,user_groups,num_jobs\r\n");
	for (int i = 0; i < db_nrows(u); i++) {
		db_res_t *n;
		if (db_exec(db, "SELECT count(id) FROM jobv2 WHERE user_email = $1 AND (CAST($2 AS TEXT) IS NULL OR start_timestamp >= $3) "
				"AND (CAST($4 AS TEXT) IS NULL OR start_timestamp <= $5)",
			    (db_param_t[]){ P_TEXT(db_text(u, i, 1)), P_TEXT(tmin), P_TS(tmin), P_TEXT(tmax), P_TS(tmax) }, 5, &n)) {
			api_db_error(req, db);
			goto out;
		}
		int64_t jobs = db_int(n, 0, 0);
		db_res_free(n);
		if (exclude_zero && jobs == 0)
			continue;
		sb_addf(&out, "%lld,", (long long)db_int(u, i, 0));
		csv_field(&out, db_text(u, i, 1));
		sb_addc(&out, ',');
		csv_field(&out, db_text(u, i, 2));
		sb_addc(&out, ',');
		csv_array(&tmp, db_text(u, i, 3));
		csv_field(&out, tmp.buf);
		sb_addc(&out, ',');
		csv_array(&tmp, db_text(u, i, 4));
		csv_field(&out, tmp.buf);
		sb_addc(&out, ',');
		sb_reset(&tmp);
		for (int k = 0; k < db_nrows(g); k++) {
			if (db_int(g, k, 0) != db_int(u, i, 0))
				continue;
			if (tmp.len)
				sb_addc(&tmp, '|');
			sb_adds(&tmp, db_text(g, k, 1));
		}
		csv_field(&out, tmp.len ? tmp.buf : NULL);
		sb_addf(&out, ",%lld\r\n", (long long)jobs);
	}
	http_json_sb(req, 200, &out);
	req->content_type = "text/csv; charset=utf-8";
	req->extra_header_name = "Content-Disposition";
	req->extra_header_value = "attachment";
out:
	sb_release(&out);
	sb_release(&tmp);
	db_res_free(u);
	db_res_free(g);
}
