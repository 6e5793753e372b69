/* wftask.c — workflow tasks: /api/v2/project/{p}/workflow/{w}/wftask/...
 * (upstream's routes/api/v2/workflowtask.py). Creation takes a list and
 * inserts it at `order` (default: the end); a task's meta is the default of
 * the workflow task's, merged with what the request gives. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/filters.h"
#include "model/pyrepr.h"
#include "model/task.h"

/* DictStrAny: keys stripped, not empty, not repeated after stripping */
const char *check_dict_keys(json_t **val, sb_t *msg)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(*val, k, v) {
		const char *s = k;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		size_t n = strlen(s);
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
			n--;
		char *key = xstrndup(s, n);
		int bad = !*key || json_object_get(out, key);
		if (bad) {
			free(key);
			json_decref(out);
			if (!n) {
				sb_adds(msg, "Empty string in ");
				py_repr_keys(msg, *val);
				sb_addc(msg, '.');
			} else {
				sb_adds(msg, "Dictionary contains multiple identical keys: '");
				py_repr_json(msg, *val);
				sb_adds(msg, "'.");
			}
			return msg->buf;
		}
		json_object_set(out, key, v);
		free(key);
	}
	json_decref(*val);
	*val = out;
	return NULL;
}

/* WorkflowTaskArgument: DictStrAny without the keys the runner sets */
const char *check_args(json_t **val, sb_t *msg)
{
	const char *why = check_dict_keys(val, msg);
	if (why)
		return why;
	static const char *const reserved[] = { "zarr_dir", "zarr_url", "zarr_urls", "init_args" };
	int found = 0;
	for (int i = 0; i < 4; i++)
		found |= json_object_get(*val, reserved[i]) != NULL;
	if (!found)
		return NULL;
	/* a Python set's repr: {'zarr_url', ...} */
	sb_adds(msg, "`args` contains the following forbidden keys: {");
	int first = 1;
	for (int i = 0; i < 4; i++)
		if (json_object_get(*val, reserved[i])) {
			sb_addf(msg, "%s'%s'", first ? "" : ", ", reserved[i]);
			first = 0;
		}
	sb_addc(msg, '}');
	return msg->buf;
}

static const char *check_type_filters(json_t **val, sb_t *msg)
{
	const char *why = check_dict_keys(val, msg);
	if (why)
		return why;
	json_t *o = jsonb_ordered(*val);
	json_decref(*val);
	*val = o;
	return NULL;
}

#define WFT_FIELDS(type_filters_required)                                                             \
	{ .name = "meta_non_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },      \
	{ .name = "meta_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },          \
	{ .name = "args_non_parallel", .type = V_DICT, .nullable = 1, .check = check_args },           \
	{ .name = "args_parallel", .type = V_DICT, .nullable = 1, .check = check_args },               \
	{ .name = "type_filters", .type = V_DICT, .item = V_BOOL, .check = check_type_filters },       \
	{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },                                  \
	{ .name = "alias", .type = V_NONEMPTY, .nullable = 1 }

/* type_filters values must be booleans (lax): coerce them */
int coerce_type_filters(json_t *obj, json_t *base, verr_t *e)
{
	json_t *tf = json_object_get(obj, "type_filters");
	if (!json_is_object(tf))
		return 0;
	vfield_t f = { .name = "", .type = V_BOOL };
	const char *k;
	json_t *v;
	int bad = 0;
	json_object_foreach(tf, k, v) {
		json_t *loc = json_copy(base);
		json_array_append_new(loc, json_string("type_filters"));
		json_array_append_new(loc, json_string(k));
		json_t *b = v_value(&f, v, loc, e);
		json_decref(loc);
		if (!b) {
			bad = 1;
			continue;
		}
		json_object_set_new(tf, k, b);
	}
	return bad;
}

static char *dump_or_null(json_t *v, int jsonb)
{
	if (!v || json_is_null(v))
		return NULL;
	if (!jsonb)
		return json_dump_py(v);
	json_t *o = jsonb_ordered_deep(v);
	char *s = json_dump_py(o);
	json_decref(o);
	return s;
}

static int workflow_has_job(http_req_t *req, db_t *db, int64_t wid)
{
	char *jobs;
	if (access_submitted_jobs(req, db, "workflow_id", wid, &jobs))
		return -1;
	return jobs != NULL;
}

static int path3(http_req_t *req, int64_t *pid, int64_t *wid, int64_t *tid)
{
	if (v_path_int(req, 0, "project_id", pid) || v_path_int(req, 1, "workflow_id", wid))
		return -1;
	return tid && v_path_int(req, 2, "workflow_task_id", tid) ? -1 : 0;
}

/* Renumbers a workflow's tasks 0..n-1 in their current order. */
static int reorder(db_t *db, int64_t wid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT id FROM workflowtaskv2 WHERE workflow_id = $1 ORDER BY \"order\", id", (db_param_t[]){ P_INT(wid) }, 1, &r))
		return -1;
	int rc = 0;
	for (int i = 0; i < db_nrows(r) && !rc; i++)
		rc = db_exec(db, "UPDATE workflowtaskv2 SET \"order\" = $1 WHERE id = $2",
			     (db_param_t[]){ P_INT(i), P_INT(db_int(r, i, 0)) }, 2, NULL);
	db_res_free(r);
	return rc;
}

#define WFT_SELECT "SELECT " WFT_COLS ", " TASK_COLS " FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "

void reply_wftask(http_req_t *req, db_t *db, int64_t tid, int status)
{
	db_res_t *r;
	if (db_exec(db, WFT_SELECT "WHERE w.id = $1", (db_param_t[]){ P_INT(tid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	wftask_json(&o, r, 0, 0);
	db_res_free(r);
	http_json_sb(req, status, &o);
}

/* upstream's _get_workflow_task_check_access */
int wftask_access(http_req_t *req, db_t *db, int64_t pid, int64_t wid, int64_t tid, char perm, char **task_type,
			 int64_t *task_id)
{
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, perm, &p, &w))
		return -1;
	db_res_t *r;
	if (db_exec(db, "SELECT task_type, task_id FROM workflowtaskv2 WHERE id = $1 AND workflow_id = $2",
		    (db_param_t[]){ P_INT(tid), P_INT(wid) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "WorkflowTask not found");
		return -1;
	}
	if (task_type)
		*task_type = arena_strdup(&req->arena, db_text(r, 0, 0));
	if (task_id)
		*task_id = db_int(r, 0, 1);
	db_res_free(r);
	return 0;
}

/* The incompatible-type-filters 422, or 0 when the filters can merge. */
int check_type_filters_compat(http_req_t *req, const char *task_input_types, json_t *wft_filters)
{
	json_t *in = json_loads(task_input_types ? task_input_types : "{}", 0, NULL);
	sb_t m = SB_INIT;
	json_t *merged = filters_merge_types(in, wft_filters, &m);
	if (!merged)
		http_errorf(req, 422, "Incompatible type filters.\nOriginal error: %s", m.buf);
	sb_release(&m);
	json_decref(merged);
	json_decref(in);
	return !merged;
}

/* meta: the task's default updated with the request's; {} -> null */
static char *merged_meta(const char *task_meta, json_t *given)
{
	json_t *m = json_loads(task_meta ? task_meta : "{}", 0, NULL);
	if (!json_is_object(m)) {
		json_decref(m);
		m = json_object();
	}
	if (json_is_object(given))
		json_object_update(m, given);
	char *s = json_object_size(m) ? json_dump_py(m) : NULL;
	json_decref(m);
	return s;
}

/* upstream's _check_type_filters_compatibility then _workflow_insert_task:
 * the task's meta under the given one, args and type filters in jsonb
 * order, the later workflow tasks shifted by one. */
int64_t wftask_insert(http_req_t *req, db_t *db, int64_t wid, int64_t task_id, const char *task_type, int64_t pos,
		      json_t *item)
{
	db_res_t *r;
	if (db_exec(db, "SELECT input_types, meta_parallel, meta_non_parallel FROM taskv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(task_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	json_t *tf = json_object_get(item, "type_filters");
	json_t *empty = json_object();
	if (!json_is_object(tf))
		tf = empty;
	if (check_type_filters_compat(req, db_text(r, 0, 0), tf)) {
		json_decref(empty);
		db_res_free(r);
		return -1;
	}
	char *mp = merged_meta(db_text(r, 0, 1), json_object_get(item, "meta_parallel"));
	char *mnp = merged_meta(db_text(r, 0, 2), json_object_get(item, "meta_non_parallel"));
	db_res_free(r);
	r = NULL;
	char *anp = dump_or_null(json_object_get(item, "args_non_parallel"), 1);
	char *ap = dump_or_null(json_object_get(item, "args_parallel"), 1);
	char *tfs = dump_or_null(tf, 1);
	json_decref(empty);
	int rc = db_exec(db, "UPDATE workflowtaskv2 SET \"order\" = \"order\" + 1 WHERE workflow_id = $1 AND \"order\" >= $2",
			 (db_param_t[]){ P_INT(wid), P_INT(pos) }, 2, NULL);
	if (!rc)
		rc = db_exec(db, "INSERT INTO workflowtaskv2 (workflow_id, \"order\", meta_parallel, meta_non_parallel, "
				 "args_parallel, args_non_parallel, task_type, task_id, type_filters, alias, description) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
			     (db_param_t[]){ P_INT(wid), P_INT(pos), P_JSON(mp), P_JSON(mnp), P_JSON(ap), P_JSON(anp),
					     P_TEXT(task_type), P_INT(task_id), P_JSON(tfs),
					     P_TEXT(json_string_value(json_object_get(item, "alias"))),
					     P_TEXT(json_string_value(json_object_get(item, "description"))) }, 11, &r);
	free(mp);
	free(mnp);
	free(anp);
	free(ap);
	free(tfs);
	if (rc) {
		api_db_error(req, db);
		return -1;
	}
	int64_t id = db_int(r, 0, 0);
	db_res_free(r);
	return id;
}

void api_wftask_create(http_req_t *req)
{
	int64_t pid, wid, order = 0;
	int has_order = 0;
	if (path3(req, &pid, &wid, NULL) || v_query_int(req, "order", &order, &has_order))
		return;
	if (has_order && order < 0) {
		verr_t e;
		verr_init(&e);
		json_t *in = json_integer(order);
		verr_add(&e, "greater_than_equal", json_pack("[s,s]", "query", "order"), "Input should be greater than or equal to 0",
			 in, json_pack("{s:i}", "ge", 0));
		json_decref(in);
		verr_reply(&e, req);
		return;
	}
	verr_t e;
	verr_init(&e);
	json_t *body = v_parse_body(req, &e), *items = json_array();
	if (body && !json_is_array(body)) {
		verr_add(&e, "list_type", json_pack("[s]", "body"), "Input should be a valid list", body, NULL);
	} else if (body) {
		const vfield_t fields[] = { { .name = "task_id", .type = V_INT, .required = 1 }, WFT_FIELDS(0) };
		size_t i;
		json_t *it;
		json_array_foreach(body, i, it) {
			json_t *base = json_pack("[s,i]", "body", (int)i);
			if (!json_is_object(it)) {
				v_add_not_object(&e, json_incref(base), it);
			} else {
				json_t *o = v_object(it, fields, (int)(sizeof(fields) / sizeof(fields[0])), 1, base, &e);
				coerce_type_filters(o, base, &e);
				json_array_append_new(items, o);
			}
			json_decref(base);
		}
	}
	json_decref(body);
	if (verr_reply(&e, req)) {
		json_decref(items);
		return;
	}
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	db_res_t *r = NULL;
	sb_t created = SB_INIT;
	if (access_workflow(req, db, pid, wid, 'w', &p, &w))
		goto out;
	if (db_begin(db))
		goto dberr;
	if (db_exec(db, "SELECT count(*) FROM workflowtaskv2 WHERE workflow_id = $1", (db_param_t[]){ P_INT(wid) }, 1, &r))
		goto dberr_tx;
	int64_t n = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	if (has_order && order < n) {
		int running = workflow_has_job(req, db, wid);
		if (running) {
			db_rollback(db);
			if (running > 0)
				http_error(req, 422, "Cannot perform WorkflowTask insertion while a Job is running for this Workflow.");
			goto out;
		}
	}
	if (!has_order || order > n)
		order = n;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		int64_t task_id = json_integer_value(json_object_get(it, "task_id"));
		task_row_t t;
		if (task_access(req, db, task_id, 0, &t)) {
			db_rollback(db);
			goto out;
		}
		if (!t.tg.active) {
			db_rollback(db);
			http_errorf(req, 422, "Error: task %lld (%s) is not active.", (long long)task_id, t.name);
			goto out;
		}
		int given_np = (json_object_get(it, "meta_non_parallel") && !json_is_null(json_object_get(it, "meta_non_parallel"))) ||
			       (json_object_get(it, "args_non_parallel") && !json_is_null(json_object_get(it, "args_non_parallel")));
		int given_p = (json_object_get(it, "meta_parallel") && !json_is_null(json_object_get(it, "meta_parallel"))) ||
			      (json_object_get(it, "args_parallel") && !json_is_null(json_object_get(it, "args_parallel")));
		if (!strcmp(t.type, "parallel") && given_np) {
			db_rollback(db);
			http_error(req, 422, "Cannot set `WorkflowTaskV2.meta_non_parallel` or `WorkflowTask.args_non_parallel` if the "
					     "associated Task is `parallel`.");
			goto out;
		}
		if (!strcmp(t.type, "non_parallel") && given_p) {
			db_rollback(db);
			http_error(req, 422, "Cannot set `WorkflowTaskV2.meta_parallel` or `WorkflowTask.args_parallel` if the "
					     "associated Task is `non_parallel`.");
			goto out;
		}
		int64_t id = wftask_insert(req, db, wid, task_id, t.type, order + (int64_t)i, it);
		if (id < 0) {
			db_rollback(db);
			goto out;
		}
		sb_addf(&created, "%s%lld", created.len ? "," : "", (long long)id);
	}
	if (reorder(db, wid) || db_commit(db))
		goto dberr_tx;
	/* the created workflow tasks, in insertion order */
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	char *save = NULL;
	int first = 1;
	for (char *tok = strtok_r(created.buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (db_exec(db, WFT_SELECT "WHERE w.id = $1", (db_param_t[]){ P_INT(strtoll(tok, NULL, 10)) }, 1, &r)) {
			sb_release(&o);
			goto dberr;
		}
		if (!first)
			sb_addc(&o, ',');
		first = 0;
		wftask_json(&o, r, 0, 0);
		db_res_free(r);
		r = NULL;
	}
	sb_addc(&o, ']');
	http_json_sb(req, 201, &o);
	goto out;
dberr_tx:
	db_rollback(db);
dberr:
	api_db_error(req, db);
out:
	db_res_free(r);
	sb_release(&created);
	json_decref(items);
}

void api_wftask_get(http_req_t *req)
{
	int64_t pid, wid, tid;
	if (path3(req, &pid, &wid, &tid))
		return;
	db_t *db = req->db;
	if (!wftask_access(req, db, pid, wid, tid, 'r', NULL, NULL))
		reply_wftask(req, db, tid, 200);
}

void api_wftask_patch(http_req_t *req)
{
	int64_t pid, wid, tid;
	if (path3(req, &pid, &wid, &tid))
		return;
	const vfield_t fields[] = { WFT_FIELDS(0) };
	json_t *b = v_body(req, fields, (int)(sizeof(fields) / sizeof(fields[0])), 1);
	if (!b)
		return;
	verr_t e;
	verr_init(&e);
	json_t *base = json_pack("[s]", "body");
	coerce_type_filters(b, base, &e);
	json_decref(base);
	if (verr_reply(&e, req)) {
		json_decref(b);
		return;
	}
	db_t *db = req->db;
	char *task_type;
	int64_t task_id;
	if (wftask_access(req, db, pid, wid, tid, 'w', &task_type, &task_id))
		goto out;
	json_t *tf = json_object_get(b, "type_filters");
	if (json_is_object(tf)) {
		db_res_t *r;
		if (db_exec(db, "SELECT input_types FROM taskv2 WHERE id = $1", (db_param_t[]){ P_INT(task_id) }, 1, &r)) {
			api_db_error(req, db);
			goto out;
		}
		int bad = check_type_filters_compat(req, db_text(r, 0, 0), tf);
		db_res_free(r);
		if (bad)
			goto out;
	}
	int np = (json_object_get(b, "args_non_parallel") && !json_is_null(json_object_get(b, "args_non_parallel"))) ||
		 (json_object_get(b, "meta_non_parallel") && !json_is_null(json_object_get(b, "meta_non_parallel")));
	int par = (json_object_get(b, "args_parallel") && !json_is_null(json_object_get(b, "args_parallel"))) ||
		  (json_object_get(b, "meta_parallel") && !json_is_null(json_object_get(b, "meta_parallel")));
	if (!strcmp(task_type, "parallel") && np) {
		http_error(req, 422, "Cannot patch `WorkflowTaskV2.args_non_parallel` or `WorkflowTask.meta_non_parallel` if the "
				     "associated Task is parallel.");
		goto out;
	}
	if ((!strcmp(task_type, "non_parallel") || !strcmp(task_type, "converter_non_parallel")) && par) {
		http_error(req, 422, "Cannot patch `WorkflowTaskV2.args_parallel` or `WorkflowTask.meta_parallel` if the "
				     "associated Task is non parallel.");
		goto out;
	}
	if (db_begin(db)) {
		api_db_error(req, db);
		goto out;
	}
	/* jsonb columns (args, type_filters) in jsonb's order; json (meta) as sent */
	static const struct { const char *field; int jsonb; int empty_is_null; } cols[] = {
		{ "meta_non_parallel", 0, 0 }, { "meta_parallel", 0, 0 }, { "args_non_parallel", 1, 1 },
		{ "args_parallel", 1, 1 }, { "type_filters", 1, 0 },
	};
	int rc = 0;
	for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]) && !rc; k++) {
		json_t *v = json_object_get(b, cols[k].field);
		if (!v)
			continue;
		char *s = cols[k].empty_is_null && json_is_object(v) && !json_object_size(v) ? NULL : dump_or_null(v, cols[k].jsonb);
		char sql[96];
		snprintf(sql, sizeof(sql), "UPDATE workflowtaskv2 SET %s = $1 WHERE id = $2", cols[k].field);
		rc = db_exec(db, sql, (db_param_t[]){ P_JSON(s), P_INT(tid) }, 2, NULL);
		free(s);
	}
	static const char *const texts[] = { "description", "alias" };
	for (int k = 0; k < 2 && !rc; k++) {
		json_t *v = json_object_get(b, texts[k]);
		if (!v)
			continue;
		char sql[96];
		snprintf(sql, sizeof(sql), "UPDATE workflowtaskv2 SET %s = $1 WHERE id = $2", texts[k]);
		rc = db_exec(db, sql, (db_param_t[]){ P_TEXT(json_string_value(v)), P_INT(tid) }, 2, NULL);
	}
	if (rc || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	reply_wftask(req, db, tid, 200);
out:
	json_decref(b);
}

void api_wftask_delete(http_req_t *req)
{
	int64_t pid, wid, tid;
	if (path3(req, &pid, &wid, &tid))
		return;
	db_t *db = req->db;
	if (wftask_access(req, db, pid, wid, tid, 'w', NULL, NULL))
		return;
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	int running = workflow_has_job(req, db, wid);
	if (running) {
		db_rollback(db);
		if (running > 0)
			http_error(req, 422, "Cannot delete a WorkflowTask while a Job is running for this Workflow.");
		return;
	}
	if (db_exec(db, "DELETE FROM workflowtaskv2 WHERE id = $1", (db_param_t[]){ P_INT(tid) }, 1, NULL) || reorder(db, wid) ||
	    db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	http_empty(req, 204);
}
