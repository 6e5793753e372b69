/* workflow.c — workflows and their workflow tasks:
 * /api/v2/project/{p}/workflow/... and .../wftask/..., as upstream's
 * routes/api/v2/workflow.py and workflowtask.py.
 *
 * A workflow's task list is its workflowtaskv2 rows ordered by "order",
 * kept contiguous (0..n-1) after every insertion, deletion and reordering,
 * as upstream's ordering_list does. Reading a workflow adds a warning to
 * each workflow task whose task the user cannot read or is not active. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/filters.h"
#include "model/images.h"
#include "model/pyrepr.h"
#include "model/task.h"
#include "util/timeutil.h"

/* upstream's _add_warnings_to_workflow_tasks, in SQL: the task group's
 * read access ($2 the user, $3 the user's resource) and its activity */
#define WFT_WARNING                                                                                               \
	"CASE WHEN g.user_id = $2 OR (g.user_group_id IS NOT NULL AND g.resource_id = $3 AND EXISTS (SELECT 1 "   \
	"FROM linkusergroup lg WHERE lg.group_id = g.user_group_id AND lg.user_id = $2)) THEN CASE WHEN g.active " \
	"THEN NULL ELSE 'Task is not active.' END ELSE 'Current user has no access to this task.' END"

static void raw_or_null(sb_t *o, const char *json)
{
	sb_adds(o, json ? json : "null");
}

static void str_or_null(sb_t *o, const char *s)
{
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

/* WorkflowTaskRead from a row of WFT_COLS, TASK_COLS[, warning] */
void wftask_json(sb_t *o, db_res_t *r, int i, int with_warning)
{
	sb_addf(o, "{\"id\":%lld,\"workflow_id\":%lld,\"order\":", (long long)db_int(r, i, 0), (long long)db_int(r, i, 1));
	raw_or_null(o, db_text(r, i, 2));
	static const char *const js[] = { "meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel",
					  "type_filters" };
	for (int k = 0; k < 5; k++) {
		sb_addf(o, ",\"%s\":", js[k]);
		raw_or_null(o, db_text(r, i, 3 + k));
	}
	sb_adds(o, ",\"task_type\":");
	str_or_null(o, db_text(r, i, 8));
	sb_addf(o, ",\"task_id\":%lld,\"task\":", (long long)db_int(r, i, 9));
	task_read_json(o, r, i, WFT_NCOLS);
	sb_adds(o, ",\"alias\":");
	str_or_null(o, db_text(r, i, 10));
	sb_adds(o, ",\"description\":");
	str_or_null(o, db_text(r, i, 11));
	if (with_warning) {
		sb_adds(o, ",\"warning\":");
		str_or_null(o, db_text(r, i, WFT_NCOLS + TASK_NCOLS));
	}
	sb_addc(o, '}');
}

/* The workflow tasks of one workflow (workflow_id > 0) or of every workflow
 * of a project, in order, with warnings computed for the current user. */
static int wftasks_query(http_req_t *req, db_t *db, int64_t workflow_id, int64_t project_id, db_res_t **r)
{
	int64_t resource_id = 0;
	if (user_resource_id(req, db, req->user->id, &resource_id))
		return -1;
	int rc = db_exec(db, "SELECT " WFT_COLS ", " TASK_COLS ", " WFT_WARNING " FROM workflowtaskv2 w "
			     "JOIN taskv2 t ON t.id = w.task_id JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id "
			     "WHERE w.workflow_id = $1 OR w.workflow_id IN (SELECT id FROM workflowv2 WHERE project_id = $4) "
			     "ORDER BY w.workflow_id, w.\"order\", w.id",
			 (db_param_t[]){ P_INT(workflow_id), P_INT(req->user->id), P_INT(resource_id), P_INT(project_id) }, 4, r);
	if (rc)
		api_db_error(req, db);
	return rc;
}

/* WorkflowRead (with_warnings: WorkflowReadWithWarnings), its task list
 * taken from the rows of wfts (from wftasks_query) of this workflow */
static void workflow_json(sb_t *o, const workflow_row_t *w, const project_row_t *p, db_res_t *wfts, int with_warnings)
{
	sb_addf(o, "{\"id\":%lld,\"name\":", (long long)w->id);
	sb_add_json_str(o, w->name);
	sb_addf(o, ",\"project_id\":%lld,\"is_starred\":%s,\"task_list\":[", (long long)w->project_id, JBOOL(w->is_starred));
	int first = 1;
	for (int i = 0; i < db_nrows(wfts); i++) {
		if (db_int(wfts, i, 1) != w->id)
			continue;
		if (!first)
			sb_addc(o, ',');
		first = 0;
		wftask_json(o, wfts, i, with_warnings);
	}
	sb_adds(o, "],\"project\":");
	access_project_json(o, p);
	sb_adds(o, ",\"timestamp_created\":");
	sb_add_json_ts(o, w->timestamp_created);
	sb_adds(o, ",\"description\":");
	str_or_null(o, w->description);
	if (w->template_id)
		sb_addf(o, ",\"template_id\":%lld}", (long long)w->template_id);
	else
		sb_adds(o, ",\"template_id\":null}");
}

void reply_workflow(http_req_t *req, db_t *db, int64_t pid, int64_t wid, int status, int with_warnings)
{
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		return;
	db_res_t *wfts;
	if (wftasks_query(req, db, wid, 0, &wfts))
		return;
	sb_t o = SB_INIT;
	workflow_json(&o, &w, &p, wfts, with_warnings);
	db_res_free(wfts);
	http_json_sb(req, status, &o);
}

static int path_workflow(http_req_t *req, int64_t *pid, int64_t *wid)
{
	return v_path_int(req, 0, "project_id", pid) || v_path_int(req, 1, "workflow_id", wid) ? -1 : 0;
}

int workflow_name_taken(http_req_t *req, db_t *db, int64_t pid, const char *name)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM workflowv2 WHERE name = $1 AND project_id = $2", (db_param_t[]){ P_TEXT(name), P_INT(pid) },
		    2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	db_res_free(r);
	if (n) {
		sb_t m = SB_INIT;
		sb_adds(&m, "Workflow with name=");
		py_repr_str(&m, name, strlen(name));
		sb_addf(&m, " and project_id=%lld already exists.", (long long)pid);
		http_error(req, 422, m.buf);
		sb_release(&m);
		return 1;
	}
	return 0;
}

static int has_submitted_job(http_req_t *req, db_t *db, int64_t wid)
{
	char *jobs;
	if (access_submitted_jobs(req, db, "workflow_id", wid, &jobs))
		return -1;
	return jobs != NULL;
}

/* ---- workflows ---- */

void api_workflow_list(http_req_t *req)
{
	int64_t pid;
	if (v_path_int(req, 0, "project_id", &pid))
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'r', &p))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT id, name, project_id, timestamp_created, description, template_id, is_starred FROM workflowv2 "
			"WHERE project_id = $1 ORDER BY is_starred DESC, name", (db_param_t[]){ P_INT(pid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	db_res_t *wfts;
	if (wftasks_query(req, db, 0, pid, &wfts)) {
		db_res_free(r);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		workflow_row_t w = { .id = db_int(r, i, 0), .name = db_text(r, i, 1), .project_id = db_int(r, i, 2),
				     .timestamp_created = db_text(r, i, 3), .description = db_text(r, i, 4),
				     .template_id = db_isnull(r, i, 5) ? 0 : db_int(r, i, 5), .is_starred = db_bool(r, i, 6) };
		if (i)
			sb_addc(&o, ',');
		workflow_json(&o, &w, &p, wfts, 0);
	}
	sb_addc(&o, ']');
	db_res_free(wfts);
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

void api_workflow_create(http_req_t *req)
{
	int64_t pid;
	if (v_path_int(req, 0, "project_id", &pid))
		return;
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .required = 1 },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
	};
	json_t *b = v_body(req, fields, 2, 1);
	if (!b)
		return;
	db_t *db = req->db;
	project_row_t p;
	const char *name = json_string_value(json_object_get(b, "name"));
	db_res_t *r = NULL;
	if (access_project(req, db, pid, 'w', &p))
		goto out;
	/* the name check and the insert in one section per project */
	if (api_begin_locked(req, db, "workflow-name", pid))
		goto out;
	if (workflow_name_taken(req, db, pid, name)) {
		db_rollback(db);
		goto out;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_exec(db, "INSERT INTO workflowv2 (name, project_id, timestamp_created, description, is_starred) "
			"VALUES ($1, $2, $3, $4, $5) RETURNING id",
		    (db_param_t[]){ P_TEXT(name), P_INT(pid), P_TS(now),
				    P_TEXT(json_string_value(json_object_get(b, "description"))), P_BOOL(0) }, 5, &r) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	reply_workflow(req, db, pid, db_int(r, 0, 0), 201, 0);
out:
	db_res_free(r);
	json_decref(b);
}

void api_workflow_get(http_req_t *req)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	reply_workflow(req, req->db, pid, wid, 200, 1);
}

static const char *check_unique_ints(json_t **val, sb_t *msg)
{
	size_t n = json_array_size(*val);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (json_equal(json_array_get(*val, i), json_array_get(*val, j)))
				return "List has repetitions";
	(void)msg;
	return NULL;
}

void api_workflow_patch(http_req_t *req)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY },
		{ .name = "reordered_workflowtask_ids", .type = V_LIST, .item = V_NONNEG, .nullable = 1, .check = check_unique_ints },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
	};
	json_t *b = v_body(req, fields, 3, 1);
	if (!b)
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	db_res_t *cur = NULL;
	if (access_workflow(req, db, pid, wid, 'w', &p, &w))
		goto out;
	json_t *name = json_object_get(b, "name"), *ids = json_object_get(b, "reordered_workflowtask_ids");
	json_t *desc = json_object_get(b, "description");
	if (json_is_string(name) && strcmp(json_string_value(name), w.name)) {
		if (api_begin_locked(req, db, "workflow-name", pid))
			goto out;
		if (workflow_name_taken(req, db, pid, json_string_value(name))) {
			db_rollback(db);
			goto out;
		}
	} else if (db_begin(db)) {
		goto dberr;
	}
	int rc = 0;
	if (json_is_string(name))
		rc = db_exec(db, "UPDATE workflowv2 SET name = $1 WHERE id = $2", (db_param_t[]){ P_TEXT(json_string_value(name)), P_INT(wid) },
			     2, NULL);
	if (!rc && json_is_array(ids)) {
		int running = has_submitted_job(req, db, wid);
		if (running) {
			db_rollback(db);
			if (running > 0)
				http_error(req, 422, "Cannot re-order WorkflowTasks while a Job is running for this Workflow.");
			goto out;
		}
		if (db_exec(db, "SELECT id FROM workflowtaskv2 WHERE workflow_id = $1 ORDER BY \"order\", id",
			    (db_param_t[]){ P_INT(wid) }, 1, &cur))
			goto dberr_tx;
		int ok = (size_t)db_nrows(cur) == json_array_size(ids);
		for (int i = 0; ok && i < db_nrows(cur); i++) {
			int found = 0;
			size_t k;
			json_t *v;
			json_array_foreach(ids, k, v)
				found |= json_integer_value(v) == db_int(cur, i, 0);
			ok = found;
		}
		if (!ok) {
			sb_t m = SB_INIT;
			sb_adds(&m, "`reordered_workflowtask_ids` must be a permutation of [");
			for (int i = 0; i < db_nrows(cur); i++)
				sb_addf(&m, "%s%lld", i ? ", " : "", (long long)db_int(cur, i, 0));
			sb_adds(&m, "] (given ");
			py_repr_json(&m, ids);
			sb_addc(&m, ')');
			db_rollback(db);
			http_error(req, 422, m.buf);
			sb_release(&m);
			goto out;
		}
		size_t k;
		json_t *v;
		json_array_foreach(ids, k, v) if (!rc)
			rc = db_exec(db, "UPDATE workflowtaskv2 SET \"order\" = $1 WHERE id = $2",
				     (db_param_t[]){ P_INT((int64_t)k), P_INT(json_integer_value(v)) }, 2, NULL);
	}
	if (!rc && desc)
		rc = db_exec(db, "UPDATE workflowv2 SET description = $1 WHERE id = $2",
			     (db_param_t[]){ P_TEXT(json_string_value(desc)), P_INT(wid) }, 2, NULL);
	if (rc || db_commit(db))
		goto dberr_tx;
	reply_workflow(req, db, pid, wid, 200, 1);
	goto out;
dberr_tx:
	db_rollback(db);
dberr:
	api_db_error(req, db);
out:
	db_res_free(cur);
	json_decref(b);
}

void api_workflow_delete(http_req_t *req)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'w', &p, &w))
		return;
	/* workflow tasks go with it; history and jobs keep their dumps */
	access_delete_unless_jobs(req, db, "workflow", "workflow_id", wid, "DELETE FROM workflowv2 WHERE id = $1");
}

static void star(http_req_t *req, int on)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'w', &p, &w))
		return;
	access_set_starred(req, db, "workflowv2", wid, on);
}

void api_workflow_star(http_req_t *req)
{
	star(req, 1);
}

void api_workflow_unstar(http_req_t *req)
{
	star(req, 0);
}

/* WorkflowExport of w (also a template's data); -1 after answering 500. */
int workflow_export_json(http_req_t *req, db_t *db, const workflow_row_t *w, sb_t *o)
{
	db_res_t *r;
	if (db_exec(db, "SELECT w.meta_non_parallel, w.meta_parallel, w.args_non_parallel, w.args_parallel, w.type_filters, "
			"w.description, w.alias, g.pkg_name, g.version, t.name FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "
			"JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id WHERE w.workflow_id = $1 ORDER BY w.\"order\", w.id",
		    (db_param_t[]){ P_INT(w->id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	sb_adds(o, "{\"name\":");
	sb_add_json_str(o, w->name);
	sb_adds(o, ",\"description\":");
	str_or_null(o, w->description);
	sb_adds(o, ",\"task_list\":[");
	static const char *const js[] = { "meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel",
					  "type_filters" };
	for (int i = 0; i < db_nrows(r); i++) {
		sb_adds(o, i ? ",{" : "{");
		for (int k = 0; k < 5; k++) {
			sb_addf(o, "%s\"%s\":", k ? "," : "", js[k]);
			raw_or_null(o, db_text(r, i, k));
		}
		sb_adds(o, ",\"description\":");
		str_or_null(o, db_text(r, i, 5));
		sb_adds(o, ",\"alias\":");
		str_or_null(o, db_text(r, i, 6));
		sb_adds(o, ",\"task\":{\"pkg_name\":");
		sb_add_json_str(o, db_text(r, i, 7));
		sb_adds(o, ",\"version\":");
		sb_add_json_str(o, db_text(r, i, 8));
		sb_adds(o, ",\"name\":");
		sb_add_json_str(o, db_text(r, i, 9));
		sb_adds(o, "}}");
	}
	sb_adds(o, "]}");
	db_res_free(r);
	return 0;
}

void api_workflow_export(http_req_t *req)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		return;
	sb_t o = SB_INIT;
	if (workflow_export_json(req, db, &w, &o))
		sb_release(&o);
	else
		http_json_sb(req, 200, &o);
}

void api_workflow_type_filters_flow(http_req_t *req)
{
	int64_t pid, wid;
	if (path_workflow(req, &pid, &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT w.id, w.type_filters, t.input_types, t.output_types FROM workflowtaskv2 w "
			"JOIN taskv2 t ON t.id = w.task_id WHERE w.workflow_id = $1 ORDER BY w.\"order\", w.id",
		    (db_param_t[]){ P_INT(wid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 422, "Workflow has no tasks.");
		return;
	}
	json_t *current = json_object();
	sb_t o = SB_INIT, err = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		json_t *wf = json_loads(db_text(r, i, 1) ? db_text(r, i, 1) : "{}", 0, NULL);
		json_t *in = json_loads(db_text(r, i, 2) ? db_text(r, i, 2) : "{}", 0, NULL);
		json_t *out = json_loads(db_text(r, i, 3) ? db_text(r, i, 3) : "{}", 0, NULL);
		json_t *merged = filters_merge_types(in, wf, &err);
		if (merged) {
			char *c = json_dump_py(current), *m = json_dump_py(merged), *ot = json_dump_py(out ? out : json_object());
			sb_addf(&o, "%s{\"workflowtask_id\":%lld,\"current_type_filters\":%s,\"input_type_filters\":%s,"
				    "\"output_type_filters\":%s}", i ? "," : "", (long long)db_int(r, i, 0), c, m, ot);
			free(c);
			free(m);
			free(ot);
			json_object_update(current, out);
		}
		json_decref(wf);
		json_decref(in);
		json_decref(out);
		json_decref(merged);
		if (!merged)
			break;
	}
	sb_addc(&o, ']');
	db_res_free(r);
	json_decref(current);
	if (err.len) {
		http_errorf(req, 422, "Incompatible type filters.\nOriginal error: %s", err.buf);
		sb_release(&o);
	} else {
		http_json_sb(req, 200, &o);
	}
	sb_release(&err);
}
