/* workflow_template.c — /api/v2/workflow-template/... (upstream's
 * routes/api/v2/workflow_template.py): a template is a named, versioned
 * WorkflowExport owned by a user and optionally shared with one of the
 * user's groups. `data` is a json (not jsonb) column: it keeps the key order
 * it was written with, and answers go through the WorkflowExport model. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/task_common.h"
#include "api/workflow_import.h"
#include "build_config.h"
#include "model/pyrepr.h"
#include "model/task.h"
#include "util/timeutil.h"

#define TEMPLATE_COLS                                                                                    \
	"t.id, t.user_id, t.user_group_id, t.name, t.version, t.fractal_server_version, t.timestamp_created, " \
	"t.timestamp_last_used, t.description, t.data"

static int template_get(http_req_t *req, db_t *db, int64_t id, template_row_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " TEMPLATE_COLS " FROM workflowtemplate t WHERE t.id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "WorkflowTemplate[%lld] not found.", (long long)id);
		return -1;
	}
	arena_t *a = &req->arena;
	*out = (template_row_t){ .id = db_int(r, 0, 0), .user_id = db_int(r, 0, 1),
				 .user_group_id = db_isnull(r, 0, 2) ? 0 : db_int(r, 0, 2), .name = arena_strdup(a, db_text(r, 0, 3)),
				 .version = db_int(r, 0, 4), .fractal_server_version = arena_strdup(a, db_text(r, 0, 5)),
				 .timestamp_created = arena_strdup(a, db_text(r, 0, 6)),
				 .timestamp_last_used = arena_strdup(a, db_text(r, 0, 7)),
				 .description = db_text(r, 0, 8) ? arena_strdup(a, db_text(r, 0, 8)) : NULL,
				 .data = arena_strdup(a, db_text(r, 0, 9)) };
	db_res_free(r);
	return 0;
}

int template_full_access(http_req_t *req, db_t *db, int64_t id, template_row_t *out)
{
	if (template_get(req, db, id, out))
		return -1;
	if (out->user_id != req->user->id) {
		http_errorf(req, 403, "You are not the owner of WorkflowTemplate[%lld].", (long long)id);
		return -1;
	}
	return 0;
}

int template_read_access(http_req_t *req, db_t *db, int64_t id, template_row_t *out)
{
	if (template_get(req, db, id, out))
		return -1;
	if (out->user_id == req->user->id)
		return 0;
	db_res_t *r;
	if (db_exec(db, "SELECT 1 FROM linkusergroup WHERE group_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(out->user_group_id), P_INT(req->user->id) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int member = out->user_group_id && db_nrows(r);
	db_res_free(r);
	if (!member) {
		http_errorf(req, 403, "You are not authorized to view WorkflowTemplate[%lld].", (long long)id);
		return -1;
	}
	return 0;
}

static void raw_value(sb_t *o, json_t *v)
{
	if (!v || json_is_null(v)) {
		sb_adds(o, "null");
		return;
	}
	char *s = json_dump_py(v);
	sb_adds(o, s);
	free(s);
}

/* The stored data through WorkflowExport. A template imported without
 * type_filters or task version (upstream stores those, then answers 500 to
 * every read of them) is shown with {} and null instead. -1 only for data
 * that is not a workflow at all. */
static int export_json(sb_t *o, const char *text)
{
	json_t *d = json_loads(text, 0, NULL);
	int rc = -1;
	if (!json_is_object(d) || !json_is_string(json_object_get(d, "name")))
		goto out;
	sb_adds(o, "{\"name\":");
	sb_add_json_str(o, json_string_value(json_object_get(d, "name")));
	sb_adds(o, ",\"description\":");
	raw_value(o, json_object_get(d, "description"));
	sb_adds(o, ",\"task_list\":[");
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(d, "task_list"), i, t) {
		static const char *const keys[] = { "meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel",
						    "type_filters", "description", "alias" };
		json_t *task = json_object_get(t, "task"), *tf = json_object_get(t, "type_filters");
		for (int k = 0; k < 7; k++) {
			sb_addf(o, "%s\"%s\":", k ? "," : (i ? ",{" : "{"), keys[k]);
			if (k == 4 && !json_is_object(tf))
				sb_adds(o, "{}");
			else
				raw_value(o, json_object_get(t, keys[k]));
		}
		sb_adds(o, ",\"task\":{\"pkg_name\":");
		raw_value(o, json_object_get(task, "pkg_name"));
		sb_adds(o, ",\"version\":");
		raw_value(o, json_object_get(task, "version"));
		sb_adds(o, ",\"name\":");
		raw_value(o, json_object_get(task, "name"));
		sb_adds(o, "}}");
	}
	sb_adds(o, "]}");
	rc = 0;
out:
	json_decref(d);
	return rc;
}

/* Answers WorkflowTemplateRead of template id with status. */
static void reply_template(http_req_t *req, db_t *db, int64_t id, int status)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " TEMPLATE_COLS ", u.email FROM workflowtemplate t JOIN user_oauth u ON u.id = t.user_id "
			"WHERE t.id = $1", (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"id\":%lld,\"user_email\":", (long long)db_int(r, 0, 0));
	sb_add_json_str(&o, db_text(r, 0, 10));
	sb_adds(&o, ",\"name\":");
	sb_add_json_str(&o, db_text(r, 0, 3));
	sb_addf(&o, ",\"version\":%lld,\"timestamp_created\":", (long long)db_int(r, 0, 4));
	sb_add_json_ts(&o, db_text(r, 0, 6));
	sb_adds(&o, ",\"timestamp_last_used\":");
	sb_add_json_ts(&o, db_text(r, 0, 7));
	if (db_isnull(r, 0, 2))
		sb_adds(&o, ",\"user_group_id\":null");
	else
		sb_addf(&o, ",\"user_group_id\":%lld", (long long)db_int(r, 0, 2));
	sb_adds(&o, ",\"description\":");
	if (db_text(r, 0, 8))
		sb_add_json_str(&o, db_text(r, 0, 8));
	else
		sb_adds(&o, "null");
	sb_adds(&o, ",\"data\":");
	int bad = export_json(&o, db_text(r, 0, 9));
	sb_adds(&o, ",\"fractal_server_version\":");
	sb_add_json_str(&o, db_text(r, 0, 5));
	sb_addc(&o, '}');
	db_res_free(r);
	if (bad) {
		sb_release(&o);
		http_error_500(req, "template %lld holds data that is not JSON", (long long)db_int(r, 0, 0));
	} else {
		http_json_sb(req, status, &o);
	}
}

static int path_template(http_req_t *req, int64_t *id)
{
	return v_path_int(req, 0, "template_id", id);
}

/* ---- GET /workflow-template/ ---- */

#define TEMPLATE_FROM " FROM workflowtemplate t JOIN user_oauth u ON u.id = t.user_id WHERE "

void api_template_list(http_req_t *req)
{
	int64_t template_id = 0, version = 0, page, page_size, uid = req->user->id;
	int has_id = 0, has_version = 0, is_owner = 0;
	if (v_query_int(req, "template_id", &template_id, &has_id) || v_query_bool(req, "is_owner", &is_owner) ||
	    v_query_int(req, "version", &version, &has_version) || v_pagination(req, &page, &page_size))
		return;
	const char *email = http_query(req, "user_email"), *name = http_query(req, "name");
	/* readable templates (own, or of one of the user's groups), then the
	 * filters upstream applies when truthy ($1 is the user) */
	db_param_t p[8] = { P_INT(uid) };
	int n = 1;
	sb_t f = SB_INIT;
	sb_adds(&f, "(t.user_id = $1 OR t.user_group_id IN (SELECT group_id FROM linkusergroup WHERE user_id = $1))");
	if (template_id) {
		p[n++] = P_INT(template_id);
		sb_addf(&f, " AND t.id = $%d", n);
	}
	if (is_owner)
		sb_adds(&f, " AND t.user_id = $1");
	if (email && *email) {
		p[n++] = P_TEXT(email);
		sb_addf(&f, " AND u.email = $%d", n);
	}
	if (name && *name) {
		p[n++] = P_TEXT(name);
		sb_addf(&f, " AND lower(t.name) LIKE '%%' || lower(CAST($%d AS TEXT)) || '%%'", n);
	}
	if (version) {
		p[n++] = P_INT(version);
		sb_addf(&f, " AND t.version = $%d", n);
	}
	db_t *db = req->db;
	db_res_t *c = NULL, *r = NULL, *m = NULL, *em = NULL;
	sb_t o = SB_INIT, sql = SB_INIT;
	/* one item per (owner, name): the groups are what is paginated */
	sb_addf(&sql, "SELECT count(*) FROM (SELECT t.user_id, t.name" TEMPLATE_FROM "%s GROUP BY t.user_id, t.name) s", f.buf);
	if (db_exec(db, sql.buf, p, n, &c))
		goto dberr;
	int64_t total = db_int(c, 0, 0);
	p[n] = P_INT(page_size ? page_size : INT64_MAX);
	p[n + 1] = P_INT(v_page_offset(page, page_size));
	sb_reset(&sql);
	sb_addf(&sql, "SELECT t.user_id, t.name, u.email" TEMPLATE_FROM "%s GROUP BY t.user_id, t.name, u.email ORDER BY "
		      "CASE WHEN t.user_id = $1 THEN 0 ELSE 1 END, u.email, t.name LIMIT $%d OFFSET $%d", f.buf, n + 1, n + 2);
	if (db_exec(db, sql.buf, p, n + 2, &r))
		goto dberr;
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%lld,\"items\":[", (long long)page,
		(long long)(page_size ? page_size : total), (long long)total);
	/* each group's members, newest version first, with the same filters */
	sb_reset(&sql);
	sb_addf(&sql, "SELECT t.id, t.version" TEMPLATE_FROM "%s AND t.user_id = $%d AND t.name = $%d ORDER BY t.version DESC",
		f.buf, n + 1, n + 2);
	for (int i = 0; i < db_nrows(r); i++) {
		p[n] = P_INT(db_int(r, i, 0));
		p[n + 1] = P_TEXT(db_text(r, i, 1));
		if (db_exec(db, sql.buf, p, n + 2, &m))
			goto dberr;
		sb_adds(&o, i ? ",{\"user_email\":" : "{\"user_email\":");
		sb_add_json_str(&o, db_text(r, i, 2));
		sb_adds(&o, ",\"template_name\":");
		sb_add_json_str(&o, db_text(r, i, 1));
		sb_adds(&o, ",\"templates\":[");
		for (int k = 0; k < db_nrows(m); k++)
			sb_addf(&o, "%s{\"template_id\":%lld,\"template_version\":%lld}", k ? "," : "", (long long)db_int(m, k, 0),
				(long long)db_int(m, k, 1));
		sb_adds(&o, "]}");
		db_res_free(m);
		m = NULL;
	}
	/* every owner of a readable template, whatever the filters */
	if (db_exec(db, "SELECT DISTINCT u.email" TEMPLATE_FROM "t.user_id = $1 OR t.user_group_id IN (SELECT group_id FROM "
			"linkusergroup WHERE user_id = $1) ORDER BY u.email", p, 1, &em))
		goto dberr;
	sb_adds(&o, "],\"email_list\":[");
	for (int k = 0; k < db_nrows(em); k++) {
		if (k)
			sb_addc(&o, ',');
		sb_add_json_str(&o, db_text(em, k, 0));
	}
	sb_adds(&o, "]}");
	http_json_sb(req, 200, &o);
	goto out;
dberr:
	api_db_error(req, db);
	sb_release(&o);
out:
	db_res_free(c);
	db_res_free(r);
	db_res_free(em);
	sb_release(&sql);
	sb_release(&f);
}

/* ---- single templates ---- */

void api_template_get(http_req_t *req)
{
	int64_t id;
	if (path_template(req, &id))
		return;
	db_t *db = req->db;
	template_row_t t;
	if (!template_read_access(req, db, id, &t))
		reply_template(req, db, id, 200);
}

/* name, version (PositiveInt) and description of WorkflowTemplateCreate
 * and WorkflowTemplateImport (extra fields ignored), plus data for the
 * latter. NULL after answering 422 (or 500, see workflow_import.h). */
static json_t *template_body(http_req_t *req, int with_data)
{
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .required = 1, .max_length = V_INDEXED_MAX_LENGTH },
		{ .name = "version", .type = V_INT, .required = 1 },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "data", .type = V_ANY, .required = 1 },
	};
	verr_t e;
	verr_init(&e);
	json_t *body = v_parse_body(req, &e), *out = NULL;
	if (body && !json_is_object(body)) {
		v_add_not_object(&e, json_pack("[s]", "body"), body);
	} else if (body) {
		json_t *base = json_pack("[s]", "body");
		out = v_object(body, fields, with_data ? 4 : 3, 0, base, &e);
		json_t *v = json_object_get(out, "version");
		if (v && json_integer_value(v) <= 0) {
			verr_add(&e, "greater_than", json_pack("[s,s]", "body", "version"), "Input should be greater than 0",
				 json_object_get(body, "version"), json_pack("{s:i}", "gt", 0));
		}
		json_t *d = json_object_get(out, "data");
		if (d) {
			json_t *loc = json_pack("[s,s]", "body", "data");
			json_object_set_new(out, "data", workflow_import_validate(d, loc, &e));
			json_decref(loc);
		}
		json_decref(base);
	}
	json_decref(body);
	if (!verr_reply(&e, req))
		return out;
	json_decref(out);
	return NULL;
}

static void template_duplicate_error(http_req_t *req, const char *name, int64_t version)
{
	sb_t m = SB_INIT;
	sb_adds(&m, "The current user already own a workflow template with name=");
	py_repr_str(&m, name, strlen(name));
	sb_addf(&m, " and version=%lld.", (long long)version);
	http_error(req, 422, m.buf);
	sb_release(&m);
}

/* upstream's _check_template_duplication (422). */
static int template_duplicate(http_req_t *req, db_t *db, const char *name, int64_t version)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM workflowtemplate WHERE user_id = $1 AND name = $2 AND version = $3",
		    (db_param_t[]){ P_INT(req->user->id), P_TEXT(name), P_INT(version) }, 3, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int dup = db_nrows(r);
	db_res_free(r);
	if (dup)
		template_duplicate_error(req, name, version);
	return dup ? 1 : 0;
}

/* Inserts a template owned by the user and answers 201 with it. */
static void template_insert(http_req_t *req, db_t *db, json_t *b, int64_t group_id, const char *data)
{
	/* both timestamps default to "now" separately, as upstream's
	 * default_factory: last_used comes strictly after created */
	char created[40], last_used[40];
	utc_now_iso(created, sizeof(created));
	do
		utc_now_iso(last_used, sizeof(last_used));
	while (!strcmp(created, last_used));
	const char *name = json_string_value(json_object_get(b, "name"));
	int64_t version = json_integer_value(json_object_get(b, "version"));
	/* the caller checked for a duplicate already (upstream's order of
	 * answers); checked again with the insert, serialised per user */
	if (api_begin_locked(req, db, "template-name", req->user->id))
		return;
	if (template_duplicate(req, db, name, version)) {
		db_rollback(db);
		return;
	}
	db_res_t *r;
	if (db_exec(db, "INSERT INTO workflowtemplate (user_id, name, version, fractal_server_version, timestamp_created, "
			"timestamp_last_used, user_group_id, description, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
			"RETURNING id",
		    (db_param_t[]){ P_INT(req->user->id), P_TEXT(name), P_INT(version), P_TEXT(FRACTAL_VERSION), P_TS(created),
				    P_TS(last_used), group_id ? P_INT(group_id) : P_NULL,
				    P_TEXT(json_string_value(json_object_get(b, "description"))), P_JSON(data) }, 9, &r)) {
		/* the unique index, should anything insert without the lock */
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			template_duplicate_error(req, name, version);
			return;
		}
		api_db_abort(req, db);
		return;
	}
	if (db_commit(db)) {
		db_res_free(r);
		api_db_abort(req, db);
		return;
	}
	int64_t id = db_int(r, 0, 0);
	db_res_free(r);
	reply_template(req, db, id, 201);
}

void api_template_create(http_req_t *req)
{
	int64_t wid, gid = 0;
	int has_gid = 0;
	if (v_query_int_required(req, "workflow_id", &wid) || v_query_int(req, "user_group_id", &gid, &has_gid))
		return;
	json_t *b = template_body(req, 0);
	if (!b)
		return;
	db_t *db = req->db;
	db_res_t *r = NULL;
	sb_t data = SB_INIT;
	if (db_exec(db, "SELECT project_id, (SELECT count(*) FROM workflowtaskv2 WHERE workflow_id = $1) FROM workflowv2 "
			"WHERE id = $1", (db_param_t[]){ P_INT(wid) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_errorf(req, 404, "Workflow %lld not found.", (long long)wid);
		goto out;
	}
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, db_int(r, 0, 0), wid, 'r', &p, &w))
		goto out;
	if (!db_int(r, 0, 1)) {
		http_errorf(req, 422, "Workflow %lld has empty `task_list`.", (long long)wid);
		goto out;
	}
	if ((gid && verify_user_in_group(req, db, req->user->id, gid)) ||
	    template_duplicate(req, db, json_string_value(json_object_get(b, "name")),
			       json_integer_value(json_object_get(b, "version"))) ||
	    workflow_export_json(req, db, &w, &data))
		goto out;
	template_insert(req, db, b, gid, data.buf);
out:
	db_res_free(r);
	sb_release(&data);
	json_decref(b);
}

void api_template_import(http_req_t *req)
{
	int64_t gid = 0;
	int has_gid = 0;
	if (v_query_int(req, "user_group_id", &gid, &has_gid))
		return;
	json_t *b = template_body(req, 1);
	if (!b)
		return;
	db_t *db = req->db;
	json_t *d = json_object_get(b, "data");
	if ((gid && verify_user_in_group(req, db, req->user->id, gid)) ||
	    template_duplicate(req, db, json_string_value(json_object_get(b, "name")),
			       json_integer_value(json_object_get(b, "version"))))
		goto out;
	if (!json_array_size(json_object_get(d, "task_list"))) {
		http_error(req, 422, "Imported template has empty `data.task_list`.");
		goto out;
	}
	/* WorkflowImport.model_dump(): every field, in the model's order */
	json_t *dump = json_object();
	json_object_set(dump, "name", json_object_get(d, "name"));
	json_t *desc = json_object_get(d, "description");
	json_object_set_new(dump, "description", desc ? json_incref(desc) : json_null());
	json_t *list = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(d, "task_list"), i, t) {
		static const char *const keys[] = { "meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel",
						    "type_filters", "input_filters", "description", "alias" };
		json_t *item = json_object(), *task = json_object_get(t, "task"), *td = json_object();
		for (int k = 0; k < 8; k++) {
			json_t *v = json_object_get(t, keys[k]);
			json_object_set_new(item, keys[k], v ? json_incref(v) : json_null());
		}
		json_object_set(td, "pkg_name", json_object_get(task, "pkg_name"));
		json_t *ver = json_object_get(task, "version");
		json_object_set_new(td, "version", ver ? json_incref(ver) : json_null());
		json_object_set(td, "name", json_object_get(task, "name"));
		json_object_set_new(item, "task", td);
		json_array_append_new(list, item);
	}
	json_object_set_new(dump, "task_list", list);
	char *text = json_dump_py(dump);
	json_decref(dump);
	template_insert(req, db, b, gid, text);
	free(text);
out:
	json_decref(b);
}

void api_template_patch(http_req_t *req)
{
	int64_t id;
	if (path_template(req, &id))
		return;
	const vfield_t fields[] = {
		{ .name = "user_group_id", .type = V_INT, .nullable = 1 },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
	};
	json_t *b = v_body(req, fields, 2, 0);
	if (!b)
		return;
	db_t *db = req->db;
	template_row_t t;
	json_t *g = json_object_get(b, "user_group_id"), *d = json_object_get(b, "description");
	if (template_full_access(req, db, id, &t) ||
	    (json_integer_value(g) && verify_user_in_group(req, db, req->user->id, json_integer_value(g))))
		goto out;
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	int rc = 0;
	if (g)
		rc = db_exec(db, "UPDATE workflowtemplate SET user_group_id = $1 WHERE id = $2",
			     (db_param_t[]){ json_is_null(g) ? P_NULL : P_INT(json_integer_value(g)), P_INT(id) }, 2, NULL);
	if (!rc && d)
		rc = db_exec(db, "UPDATE workflowtemplate SET description = $1 WHERE id = $2",
			     (db_param_t[]){ P_TEXT(json_string_value(d)), P_INT(id) }, 2, NULL);
	if (rc || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	reply_template(req, db, id, 200);
out:
	json_decref(b);
}

void api_template_delete(http_req_t *req)
{
	int64_t id;
	if (path_template(req, &id))
		return;
	db_t *db = req->db;
	template_row_t t;
	if (template_full_access(req, db, id, &t))
		return;
	/* workflows made from it keep existing, without a template */
	if (db_begin(db) ||
	    db_exec(db, "UPDATE workflowv2 SET template_id = NULL WHERE template_id = $1", (db_param_t[]){ P_INT(id) }, 1, NULL) ||
	    db_exec(db, "DELETE FROM workflowtemplate WHERE id = $1", (db_param_t[]){ P_INT(id) }, 1, NULL) || db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	http_empty(req, 204);
}

void api_template_export(http_req_t *req)
{
	int64_t id;
	if (path_template(req, &id))
		return;
	db_t *db = req->db;
	template_row_t t;
	if (template_read_access(req, db, id, &t))
		return;
	sb_t o = SB_INIT;
	sb_adds(&o, "{\"name\":");
	sb_add_json_str(&o, t.name);
	sb_addf(&o, ",\"version\":%lld,\"description\":", (long long)t.version);
	if (t.description)
		sb_add_json_str(&o, t.description);
	else
		sb_adds(&o, "null");
	sb_adds(&o, ",\"data\":");
	if (export_json(&o, t.data)) {
		sb_release(&o);
		http_error_500(req, "template %lld holds data that is not JSON", (long long)id);
		return;
	}
	sb_addc(&o, '}');
	http_json_sb(req, 200, &o);
}
