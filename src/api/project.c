/* project.c — /api/v2/project/...: a user's projects, as upstream's
 * routes/api/v2/project.py. A project belongs to its owner through a
 * linkuserprojectv2 row (is_owner, "rwx"); guests reach it through their
 * own links (see sharing). Names are unique among the projects a user owns. */
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "util/timeutil.h"

#define SAFE_NAME_PATTERN "^([a-zA-Z0-9_. -]+)$"

static const vfield_t project_fields[] = {
	{ .name = "name", .type = V_NONEMPTY, .required = 1, .pattern = SAFE_NAME_PATTERN },
	{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
};

/* 1 (after answering 422) if the user owns a project with this name. */
static int name_in_use(http_req_t *req, db_t *db, const char *name)
{
	db_res_t *r;
	if (db_exec(db, "SELECT p.id FROM projectv2 p JOIN linkuserprojectv2 l ON l.project_id = p.id "
			"WHERE p.name = $1 AND l.user_id = $2 AND l.is_owner = $3",
		    (db_param_t[]){ P_TEXT(name), P_INT(req->user->id), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	db_res_free(r);
	if (n) {
		http_errorf(req, 422, "Project name (%s) already in use", name);
		return 1;
	}
	return 0;
}

void api_project_list(http_req_t *req)
{
	int is_owner = 1;
	if (v_query_bool(req, "is_owner", &is_owner))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, "SELECT p.id, p.name, p.description, p.is_starred, p.timestamp_created, p.resource_id "
			"FROM projectv2 p JOIN linkuserprojectv2 l ON l.project_id = p.id "
			"WHERE l.user_id = $1 AND l.is_owner = $2 AND l.is_verified = $3 "
			"ORDER BY p.is_starred DESC, p.timestamp_created DESC",
		    (db_param_t[]){ P_INT(req->user->id), P_BOOL(is_owner), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t out = SB_INIT;
	sb_grow(&out, (size_t)db_nrows(r) * 128);
	sb_addc(&out, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		project_row_t p = {
			.id = db_int(r, i, 0), .name = db_text(r, i, 1), .description = db_text(r, i, 2),
			.is_starred = db_bool(r, i, 3), .timestamp_created = db_text(r, i, 4),
		};
		if (i)
			sb_addc(&out, ',');
		access_project_json(&out, &p);
	}
	sb_addc(&out, ']');
	db_res_free(r);
	http_json_sb(req, 200, &out);
}

void api_project_create(http_req_t *req)
{
	json_t *b = v_body(req, project_fields, 2, 1);
	if (!b)
		return;
	db_t *db = req->db;
	const char *name = json_string_value(json_object_get(b, "name"));
	json_t *desc = json_object_get(b, "description");
	db_res_t *r = NULL;
	/* validate_user_profile: the project lives on the user's resource */
	if (db_exec(db, "SELECT p.resource_id FROM profile p WHERE p.id = $1", (db_param_t[]){ P_INT(req->user->profile_id) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_errorf(req, 422, "User %s is not associated to a computational profile. Please contact an admin.",
			    req->user->email);
		goto out;
	}
	int64_t resource_id = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	/* the name check and the insert in one section per owner: two
	 * requests with the same name cannot both pass the check */
	if (api_begin_locked(req, db, "project-name", req->user->id))
		goto out;
	if (name_in_use(req, db, name)) {
		db_rollback(db);
		goto out;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_exec(db, "INSERT INTO projectv2 (name, description, timestamp_created, resource_id, is_starred) "
			"VALUES ($1, $2, $3, $4, $5) RETURNING id",
		    (db_param_t[]){ P_TEXT(name), P_TEXT(json_string_value(desc)), P_TS(now), P_INT(resource_id), P_BOOL(0) },
		    5, &r) ||
	    db_exec(db, "INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
			"VALUES ($1, $2, $3, $4, 'rwx')",
		    (db_param_t[]){ P_INT(db_int(r, 0, 0)), P_INT(req->user->id), P_BOOL(1), P_BOOL(1) }, 4, NULL) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	project_row_t p;
	if (!access_project(req, db, db_int(r, 0, 0), 'r', &p)) {
		sb_t o = SB_INIT;
		access_project_json(&o, &p);
		http_json_sb(req, 201, &o);
	}
out:
	db_res_free(r);
	json_decref(b);
}

void api_project_get(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	project_row_t p;
	if (access_project(req, req->db, pid, 'r', &p))
		return;
	sb_t o = SB_INIT;
	access_project_json(&o, &p);
	http_json_sb(req, 200, &o);
}

void api_project_patch(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .pattern = SAFE_NAME_PATTERN },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
	};
	json_t *b = v_body(req, fields, 2, 1);
	if (!b)
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'w', &p))
		goto out;
	json_t *name = json_object_get(b, "name");
	json_t *desc = json_object_get(b, "description");
	int rename = json_is_string(name) && strcmp(json_string_value(name), p.name);
	if (rename) {
		if (api_begin_locked(req, db, "project-name", req->user->id))
			goto out;
		if (name_in_use(req, db, json_string_value(name))) {
			db_rollback(db);
			goto out;
		}
	} else if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	int rc = 0;
	if (json_is_string(name))
		rc = db_exec(db, "UPDATE projectv2 SET name = $1 WHERE id = $2",
			     (db_param_t[]){ P_TEXT(json_string_value(name)), P_INT(pid) }, 2, NULL);
	if (!rc && desc)
		rc = db_exec(db, "UPDATE projectv2 SET description = $1 WHERE id = $2",
			     (db_param_t[]){ P_TEXT(json_string_value(desc)), P_INT(pid) }, 2, NULL);
	if (rc || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	if (!access_project(req, db, pid, 'r', &p)) {
		sb_t o = SB_INIT;
		access_project_json(&o, &p);
		http_json_sb(req, 200, &o);
	}
out:
	json_decref(b);
}

void api_project_delete(http_req_t *req)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'x', &p))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT is_owner FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(pid), P_INT(req->user->id) }, 2, &r)) {
		api_db_error(req, db);
		return;
	}
	int owner = db_bool(r, 0, 0);
	db_res_free(r);
	if (!owner) {
		http_error(req, 403, "Only the owner can delete a Project.");
		return;
	}
	/* datasets, workflows and links go with it (ON DELETE CASCADE), and
	 * their history; jobs keep their dumps (ON DELETE SET NULL) */
	access_delete_unless_jobs(req, db, "project", "project_id", pid, "DELETE FROM projectv2 WHERE id = $1");
}

static void star(http_req_t *req, int on)
{
	int64_t pid;
	if (access_path_ids(req, &pid, NULL))
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'w', &p))
		return;
	access_set_starred(req, db, "projectv2", pid, on);
}

void api_project_star(http_req_t *req)
{
	star(req, 1);
}

void api_project_unstar(http_req_t *req)
{
	star(req, 0);
}
