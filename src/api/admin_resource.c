/* admin_resource.c — the superuser routes for computational resources and
 * their profiles, as upstream's routes/admin/v2/resource.py and profile.py:
 *
 *   GET|POST         /admin/v2/resource/
 *   GET|PUT|DELETE   /admin/v2/resource/{resource_id}/
 *   GET|POST         /admin/v2/resource/{resource_id}/profile/
 *   GET              /admin/v2/profile/
 *   GET|PUT|DELETE   /admin/v2/profile/{profile_id}/
 *
 * Bodies are validated by model/resource.c (shared with init-db-data).
 * The order of the checks is upstream's, because it decides which error a
 * client sees when several apply: a body that is not JSON first (FastAPI
 * reads it before anything else), then authentication, then path and body
 * validation together, then the handler's own checks. Lists are ordered
 * by id. Every write is one transaction; a unique-name race that slips
 * past the check ends as the check's own 422. */
#include "api/api.h"
#include "api/common.h"

#include <stdlib.h>
#include <string.h>

#include "api/params.h"
#include "config/settings.h"
#include "model/resource.h"
#include "util/timeutil.h"

#define RESOURCE_COLS                                                                                 \
	"id, name, type, prevent_new_submissions, timestamp_created, host, jobs_local_dir, "           \
	"jobs_runner_config, jobs_slurm_python_worker, jobs_poll_interval, tasks_local_dir, "          \
	"tasks_python_config, tasks_pixi_config"
#define PROFILE_COLS                                                                                  \
	"id, name, resource_id, resource_type, username, ssh_key_path, jobs_remote_dir, "               \
	"tasks_remote_dir, pixi_cache_dir"

/* ---- responses ---- */

static void add_text(sb_t *sb, const char *s)
{
	if (s)
		sb_add_json_str(sb, s);
	else
		sb_adds(sb, "null");
}

/* A JSON column, re-serialised compactly (PostgreSQL's jsonb text has
 * spaces); kept as stored if it does not parse. */
static void add_json(sb_t *sb, const char *s)
{
	json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	if (!v) {
		sb_adds(sb, s ? s : "null");
		return;
	}
	char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	sb_adds(sb, d);
	free(d);
	json_decref(v);
}

/* ResourceRead, fields in its order (row of RESOURCE_COLS). */
static void resource_json(sb_t *sb, db_res_t *r, int i)
{
	sb_addf(sb, "{\"id\":%lld,\"name\":", (long long)db_int(r, i, 0));
	add_text(sb, db_text(r, i, 1));
	sb_adds(sb, ",\"type\":");
	add_text(sb, db_text(r, i, 2));
	sb_addf(sb, ",\"prevent_new_submissions\":%s,\"timestamp_created\":", db_bool(r, i, 3) ? "true" : "false");
	sb_add_json_ts(sb, db_text(r, i, 4));
	sb_adds(sb, ",\"host\":");
	add_text(sb, db_text(r, i, 5));
	sb_adds(sb, ",\"jobs_local_dir\":");
	add_text(sb, db_text(r, i, 6));
	sb_adds(sb, ",\"jobs_runner_config\":");
	add_json(sb, db_text(r, i, 7));
	sb_adds(sb, ",\"jobs_slurm_python_worker\":");
	add_text(sb, db_text(r, i, 8));
	sb_addf(sb, ",\"jobs_poll_interval\":%lld,\"tasks_local_dir\":", (long long)db_int(r, i, 9));
	add_text(sb, db_text(r, i, 10));
	sb_adds(sb, ",\"tasks_python_config\":");
	add_json(sb, db_text(r, i, 11));
	sb_adds(sb, ",\"tasks_pixi_config\":");
	add_json(sb, db_text(r, i, 12));
	sb_addc(sb, '}');
}

/* ProfileRead (row of PROFILE_COLS). */
static void profile_json(sb_t *sb, db_res_t *r, int i)
{
	sb_addf(sb, "{\"id\":%lld,\"name\":", (long long)db_int(r, i, 0));
	add_text(sb, db_text(r, i, 1));
	sb_addf(sb, ",\"resource_id\":%lld,\"resource_type\":", (long long)db_int(r, i, 2));
	add_text(sb, db_text(r, i, 3));
	static const char *const rest[] = { "username", "ssh_key_path", "jobs_remote_dir", "tasks_remote_dir",
					    "pixi_cache_dir" };
	for (int k = 0; k < 5; k++) {
		sb_addf(sb, ",\"%s\":", rest[k]);
		add_text(sb, db_text(r, i, 4 + k));
	}
	sb_addc(sb, '}');
}

typedef void (*row_fn)(sb_t *sb, db_res_t *r, int i);

/* Answers status with the rows of a query: all of them as a list, or
 * (list == 0) its first row, which the caller knows exists. */
static void answer_rows(http_req_t *req, db_res_t *r, row_fn row, int list, int status)
{
	sb_t sb = SB_INIT;
	if (list)
		sb_addc(&sb, '[');
	for (int i = 0; i < db_nrows(r) && (list || i == 0); i++) {
		if (i)
			sb_addc(&sb, ',');
		row(&sb, r, i);
	}
	if (list)
		sb_addc(&sb, ']');
	http_json_sb(req, status, &sb);
}

/* ---- request checks ---- */

/* FastAPI parses a JSON body before resolving any dependency, so a body
 * that is not JSON is a 422 even without credentials. Returns -1 after
 * answering; else 0 and the body, or NULL when there is none. */
static int read_body(http_req_t *req, json_t **body)
{
	*body = NULL;
	if (!req->body.len)
		return 0;
	verr_t e;
	verr_init(&e);
	*body = v_parse_body(req, &e);
	if (!*body) {
		verr_reply(&e, req);
		return -1;
	}
	verr_free(&e);
	return 0;
}

/* The check the route table runs before the guard of the PUT and POST
 * routes (routes.c): the 422 of a body that is not JSON. */
int api_pre_json_body(http_req_t *req)
{
	json_t *body;
	if (read_body(req, &body))
		return -1;
	json_decref(body);
	return 0;
}

/* The path parameter (when param is not NULL) and the body, checked
 * together as FastAPI does, errors of the path first. Returns the
 * validated document (caller decrefs) or NULL after answering 422. */
static json_t *check_request(http_req_t *req, json_t *body, const char *param, int64_t *id, int profile)
{
	verr_t e;
	verr_init(&e);
	if (param)
		v_path_int_e(req, 0, param, id, &e);
	json_t *doc = NULL;
	if (!body) {
		verr_add(&e, "missing", json_pack("[s]", "body"), "Field required", NULL, NULL);
	} else {
		json_t *loc = json_pack("[s]", "body");
		doc = profile ? profile_check(body, loc, 1, &e) : resource_check(body, loc, 1, &e);
		json_decref(loc);
	}
	if (verr_reply(&e, req)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* repr() of a ResourceType member, as upstream's f"{x=}" messages print it. */
static void add_enum_repr(sb_t *sb, const char *type)
{
	sb_adds(sb, "<ResourceType.");
	for (const char *p = type; *p; p++)
		sb_addc(sb, (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p));
	sb_addf(sb, ": '%s'>", type);
}

/* A resource must be of the type the server runs. */
static int backend_mismatch(http_req_t *req, json_t *res)
{
	const char *type = json_string_value(json_object_get(res, "type"));
	if (!strcmp(settings.runner_backend, type))
		return 0;
	sb_t msg = SB_INIT;
	sb_addf(&msg, "settings.FRACTAL_RUNNER_BACKEND='%s' != new_resource.type=", settings.runner_backend);
	add_enum_repr(&msg, type);
	http_error(req, 422, msg.buf);
	sb_release(&msg);
	return 1;
}

/* 0 and *taken, or -1 (db error). */
static int name_taken(db_t *db, int profile, const char *name, int *taken)
{
	db_res_t *r;
	db_param_t p[] = { P_TEXT(name) };
	if (db_exec(db, profile ? "SELECT id FROM profile WHERE name = $1" : "SELECT id FROM resource WHERE name = $1",
		    p, 1, &r))
		return -1;
	*taken = db_nrows(r) > 0;
	db_res_free(r);
	return 0;
}

static void name_exists_error(http_req_t *req, int profile, const char *name)
{
	http_errorf(req, 422, "%s with name '%s' already exists.", profile ? "Profile" : "Resource", name);
}

/* The row of resource (profile) id, with the columns its read model
 * shows: 0 and the result (caller frees; no row if there is no such id),
 * or -1 (db error). */
static int fetch_row(db_t *db, int profile, int64_t id, db_res_t **r)
{
	db_param_t p[] = { P_INT(id) };
	return db_exec(db, profile ? "SELECT " PROFILE_COLS " FROM profile WHERE id = $1"
				   : "SELECT " RESOURCE_COLS " FROM resource WHERE id = $1",
		       p, 1, r);
}

static void not_found(http_req_t *req, int profile, int64_t id)
{
	http_errorf(req, 404, "%s %lld not found", profile ? "Profile" : "Resource", (long long)id);
}

/* ---- lists and single rows ---- */

static void list_all(http_req_t *req, int profile)
{
	db_t *db = req->db;
	db_res_t *r;
	if (db_exec(db, profile ? "SELECT " PROFILE_COLS " FROM profile ORDER BY id"
				: "SELECT " RESOURCE_COLS " FROM resource ORDER BY id",
		    NULL, 0, &r)) {
		api_db_error(req, db);
		return;
	}
	answer_rows(req, r, profile ? profile_json : resource_json, 1, 200);
	db_res_free(r);
}

static void get_one(http_req_t *req, int profile)
{
	int64_t id;
	if (v_path_int(req, 0, profile ? "profile_id" : "resource_id", &id))
		return;
	db_t *db = req->db;
	db_res_t *r;
	if (fetch_row(db, profile, id, &r)) {
		api_db_error(req, db);
		return;
	}
	if (db_nrows(r) == 0)
		not_found(req, profile, id);
	else
		answer_rows(req, r, profile ? profile_json : resource_json, 0, 200);
	db_res_free(r);
}

void api_admin_resource_list(http_req_t *req) { list_all(req, 0); }
void api_admin_resource_get(http_req_t *req) { get_one(req, 0); }
void api_admin_profile_list(http_req_t *req) { list_all(req, 1); }
void api_admin_profile_get(http_req_t *req) { get_one(req, 1); }

/* ---- writes ---- */

/* Inserts (id == 0) or overwrites row id with the document, after the
 * unique-name check (skipped when the name does not change), then answers
 * status with the row; all in the transaction the caller opened, which
 * this commits or rolls back. resource_id: for a new profile. */
static void save(http_req_t *req, db_t *db, int profile, json_t *doc, int64_t id, const char *old_name,
		 int64_t resource_id, int status)
{
	const char *name = json_string_value(json_object_get(doc, "name"));
	int taken = 0;
	if ((!old_name || strcmp(old_name, name)) && name_taken(db, profile, name, &taken)) {
		api_db_abort(req, db);
		return;
	}
	if (taken) {
		db_rollback(db);
		name_exists_error(req, profile, name);
		return;
	}
	int rc;
	if (id)
		rc = profile ? profile_update(db, doc, id) : resource_update(db, doc, id);
	else
		rc = profile ? profile_insert(db, doc, resource_id, &id) : resource_insert(db, doc, &id);
	if (rc) {
		/* the only constraint left to break is the unique name (a
		 * concurrent request took it after our check) */
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			name_exists_error(req, profile, name);
		} else {
			api_db_abort(req, db);
		}
		return;
	}
	db_res_t *r;
	if (fetch_row(db, profile, id, &r)) {
		api_db_abort(req, db);
		return;
	}
	if (db_commit(db)) {
		db_res_free(r);
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			name_exists_error(req, profile, name);
		} else {
			api_db_abort(req, db);
		}
		return;
	}
	answer_rows(req, r, profile ? profile_json : resource_json, 0, status);
	db_res_free(r);
}

void api_admin_resource_create(http_req_t *req)
{
	json_t *body;
	if (read_body(req, &body))
		return;
	json_t *doc = NULL;
	if (!(doc = check_request(req, body, NULL, NULL, 0)) ||
	    backend_mismatch(req, doc))
		goto out;
	db_t *db = req->db;
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	save(req, db, 0, doc, 0, NULL, 0, 201);
out:
	json_decref(doc);
	json_decref(body);
}


/* PUT of an existing resource (kind 0) or profile (kind 1): in one
 * transaction, 404 when it is gone, else save() the validated document. */
static void put_existing(http_req_t *req, int kind, json_t *doc, int64_t id)
{
	db_t *db = req->db;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	db_res_t *r;
	if (fetch_row(db, kind, id, &r)) {
		api_db_abort(req, db);
		return;
	}
	if (db_nrows(r) == 0) {
		db_res_free(r);
		db_rollback(db);
		not_found(req, kind, id);
		return;
	}
	char *old_name = arena_strdup(&req->arena, db_text(r, 0, 1));
	db_res_free(r);
	save(req, db, kind, doc, id, old_name, 0, 200);
}

void api_admin_resource_update(http_req_t *req)
{
	json_t *body;
	if (read_body(req, &body))
		return;
	json_t *doc = NULL;
	int64_t id = 0;
	if (!(doc = check_request(req, body, "resource_id", &id, 0)) ||
	    backend_mismatch(req, doc))
		goto out;
	put_existing(req, 0, doc, id);
out:
	json_decref(doc);
	json_decref(body);
}

/* The table that still points at a resource, among those whose foreign
 * keys forbid its deletion; NULL if none does (any more). */
static const char *referencing_table(db_t *db, int64_t id)
{
	static const char *const tables[][2] = {
		{ "profile", "SELECT 1 FROM profile WHERE resource_id = $1 LIMIT 1" },
		{ "projectv2", "SELECT 1 FROM projectv2 WHERE resource_id = $1 LIMIT 1" },
		{ "taskgroupv2", "SELECT 1 FROM taskgroupv2 WHERE resource_id = $1 LIMIT 1" },
	};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		db_res_t *r;
		db_param_t p[] = { P_INT(id) };
		if (db_exec(db, tables[i][1], p, 1, &r))
			return NULL;
		int found = db_nrows(r) > 0;
		db_res_free(r);
		if (found)
			return tables[i][0];
	}
	return NULL;
}

void api_admin_resource_delete(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "resource_id", &id))
		return;
	db_t *db = req->db;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	db_res_t *r;
	db_param_t p[] = { P_INT(id) };
	if (db_exec(db, "SELECT id FROM resource WHERE id = $1", p, 1, &r)) {
		api_db_abort(req, db);
		return;
	}
	int exists = db_nrows(r) > 0;
	db_res_free(r);
	if (!exists) {
		db_rollback(db);
		not_found(req, 0, id);
		return;
	}
	if (db_exec(db, "DELETE FROM resource WHERE id = $1", p, 1, NULL) || db_commit(db)) {
		if (db_errclass(db) != DB_ERR_CONSTRAINT) {
			api_db_abort(req, db);
			return;
		}
		char *dberr = arena_strdup(&req->arena, db_errmsg(db));
		db_rollback(db);
		/* Upstream answers with the text of SQLAlchemy's IntegrityError
		 * (PostgreSQL through psycopg); we write the same text whatever
		 * the engine, naming the table that still uses the resource. */
		const char *table = referencing_table(db, id);
		sb_t msg = SB_INIT;
		sb_adds(&msg, "IntegrityError for resource deletion. Original error:\n");
		if (table)
			sb_addf(&msg,
				"(psycopg.errors.ForeignKeyViolation) update or delete on table \"resource\" violates "
				"foreign key constraint \"fk_%s_resource_id_resource\" on table \"%s\"\n"
				"DETAIL:  Key (id)=(%lld) is still referenced from table \"%s\".\n"
				"[SQL: DELETE FROM resource WHERE resource.id = %%(id)s::INTEGER]\n"
				"[parameters: {'id': %lld}]\n"
				"(Background on this error at: https://sqlalche.me/e/20/gkpj)",
				table, table, (long long)id, table, (long long)id);
		else
			sb_adds(&msg, dberr);
		http_error(req, 422, msg.buf);
		sb_release(&msg);
		return;
	}
	req->status = 204;
	sb_reset(&req->resp);
	req->content_type = NULL;
}

/* ---- profiles of a resource ---- */

void api_admin_resource_profile_list(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "resource_id", &id))
		return;
	db_t *db = req->db;
	db_res_t *r;
	db_param_t p[] = { P_INT(id) };
	if (db_exec(db, "SELECT id FROM resource WHERE id = $1", p, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	int exists = db_nrows(r) > 0;
	db_res_free(r);
	if (!exists) {
		not_found(req, 0, id);
		return;
	}
	if (db_exec(db, "SELECT " PROFILE_COLS " FROM profile WHERE resource_id = $1 ORDER BY id", p, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	answer_rows(req, r, profile_json, 1, 200);
	db_res_free(r);
}

void api_admin_resource_profile_create(http_req_t *req)
{
	json_t *body;
	if (read_body(req, &body))
		return;
	json_t *doc = NULL;
	int64_t rid = 0;
	if (!(doc = check_request(req, body, "resource_id", &rid, 1)))
		goto out;
	db_t *db = req->db;
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	db_res_t *r;
	db_param_t p[] = { P_INT(rid) };
	if (db_exec(db, "SELECT type FROM resource WHERE id = $1", p, 1, &r)) {
		api_db_abort(req, db);
		goto out;
	}
	if (db_nrows(r) == 0) {
		db_res_free(r);
		db_rollback(db);
		not_found(req, 0, rid);
		goto out;
	}
	const char *rtype = arena_strdup(&req->arena, db_text(r, 0, 0));
	db_res_free(r);
	const char *ptype = json_string_value(json_object_get(doc, "resource_type"));
	if (strcmp(rtype, ptype)) {
		db_rollback(db);
		sb_t msg = SB_INIT;
		sb_addf(&msg, "resource.type='%s' differs from new_profile.resource_type=", rtype);
		add_enum_repr(&msg, ptype);
		sb_addc(&msg, '.');
		http_error(req, 422, msg.buf);
		sb_release(&msg);
		goto out;
	}
	save(req, db, 1, doc, 0, NULL, rid, 201);
out:
	json_decref(doc);
	json_decref(body);
}

/* ---- single profiles ---- */

/* Upstream overwrites every field, resource_type included, without
 * comparing it with the resource's type (only creation does). */
void api_admin_profile_update(http_req_t *req)
{
	json_t *body;
	if (read_body(req, &body))
		return;
	json_t *doc = NULL;
	int64_t id = 0;
	if (!(doc = check_request(req, body, "profile_id", &id, 1)))
		goto out;
	put_existing(req, 1, doc, id);
out:
	json_decref(doc);
	json_decref(body);
}

/* 0 and the number of users of profile id, or -1. */
static int count_users(db_t *db, int64_t id, int64_t *n)
{
	db_res_t *r;
	db_param_t p[] = { P_INT(id) };
	if (db_exec(db, "SELECT count(id) FROM user_oauth WHERE profile_id = $1", p, 1, &r))
		return -1;
	*n = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

static void profile_in_use(http_req_t *req, int64_t id, int64_t n)
{
	http_errorf(req, 422, "Cannot delete Profile %lld because it's associated with %lld UserOAuths.", (long long)id,
		    (long long)n);
}

void api_admin_profile_delete(http_req_t *req)
{
	int64_t id;
	if (v_path_int(req, 0, "profile_id", &id))
		return;
	db_t *db = req->db;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	db_res_t *r;
	db_param_t p[] = { P_INT(id) };
	if (db_exec(db, "SELECT id FROM profile WHERE id = $1", p, 1, &r)) {
		api_db_abort(req, db);
		return;
	}
	int exists = db_nrows(r) > 0;
	db_res_free(r);
	if (!exists) {
		db_rollback(db);
		not_found(req, 1, id);
		return;
	}
	int64_t users;
	if (count_users(db, id, &users)) {
		api_db_abort(req, db);
		return;
	}
	if (users > 0) {
		db_rollback(db);
		profile_in_use(req, id, users);
		return;
	}
	if (db_exec(db, "DELETE FROM profile WHERE id = $1", p, 1, NULL) || db_commit(db)) {
		/* a user got the profile after our count */
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			if (count_users(db, id, &users) == 0 && users > 0) {
				profile_in_use(req, id, users);
				return;
			}
			http_error_500(req, "deleting profile %lld: a constraint refused it, and no user has it", (long long)id);
			return;
		}
		api_db_abort(req, db);
		return;
	}
	req->status = 204;
	sb_reset(&req->resp);
	req->content_type = NULL;
}
