/* version_update.c — moving a workflow's tasks to newer versions of their
 * packages: upstream's routes/api/v2/task_version_update.py. The candidates
 * of a workflow task are the tasks of the same name in active groups of the
 * same package, readable by the user, with a valid type transition and a
 * strictly greater PEP 440 version; replace-task swaps the task of one
 * workflow task, carrying over the meta the user had changed. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/task.h"
#include "util/pep440.h"

/* upstream's VALID_TYPE_UPDATES */
static int type_update_valid(const char *old_type, const char *new_type)
{
	static const char *const valid[][2] = {
		{ "non_parallel", "converter_non_parallel" },
		{ "compound", "converter_compound" },
		{ "converter_non_parallel", "converter_non_parallel" },
		{ "converter_compound", "converter_compound" },
		{ "non_parallel", "non_parallel" },
		{ "compound", "compound" },
		{ "parallel", "parallel" },
	};
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if (!strcmp(old_type, valid[i][0]) && !strcmp(new_type, valid[i][1]))
			return 1;
	return 0;
}

/* Python's truthiness of a JSON column holding a dict: not NULL, not null,
 * not {} */
static int schema_truthy(const char *text)
{
	if (!text)
		return 0;
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	int yes = v && !json_is_null(v) && !(json_is_object(v) && !json_object_size(v));
	json_decref(v);
	return yes;
}

typedef struct candidate {
	int64_t task_id;
	const char *version;
	pep440_t parsed;
	int seq;             /* query order, for a stable sort */
} candidate_t;

static int by_version(const void *a, const void *b)
{
	const candidate_t *x = a, *y = b;
	int c = pep440_cmp(&x->parsed, &y->parsed);
	return c ? c : x->seq - y->seq;
}

/* Appends one workflow task's candidates as a JSON list; -1 after a 500. */
static int candidates_json(http_req_t *req, db_t *db, sb_t *o, const char *name, const char *type,
			   const char *pkg_name, const char *version)
{
	pep440_t current;
	if (pep440_parse(version, &current)) {
		sb_adds(o, "[]");
		return 0;
	}
	db_res_t *r;
	if (db_exec(db, "SELECT t.id, t.type, g.version FROM taskv2 t JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id "
			"WHERE ((t.args_schema_parallel IS NOT NULL AND CAST(t.args_schema_parallel AS TEXT) != 'null') OR "
			"(t.args_schema_non_parallel IS NOT NULL AND CAST(t.args_schema_non_parallel AS TEXT) != 'null')) "
			"AND t.name = $1 AND g.pkg_name = $2 AND g.active = $3 AND (g.user_id = $4 OR g.user_group_id IN "
			"(SELECT group_id FROM linkusergroup WHERE user_id = $4)) ORDER BY t.id",
		    (db_param_t[]){ P_TEXT(name), P_TEXT(pkg_name), P_BOOL(1), P_INT(req->user->id) }, 4, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r), k = 0;
	candidate_t *c = xcalloc((size_t)(n ? n : 1), sizeof(*c));
	for (int i = 0; i < n; i++) {
		if (!type_update_valid(type, db_text(r, i, 1)) || pep440_parse(db_text(r, i, 2), &c[k].parsed) ||
		    pep440_cmp(&c[k].parsed, &current) <= 0)
			continue;
		c[k].task_id = db_int(r, i, 0);
		c[k].version = db_text(r, i, 2);
		c[k].seq = k;
		k++;
	}
	qsort(c, (size_t)k, sizeof(*c), by_version);
	sb_addc(o, '[');
	for (int i = 0; i < k; i++) {
		sb_addf(o, "%s{\"task_id\":%lld,\"version\":", i ? "," : "", (long long)c[i].task_id);
		sb_add_json_str(o, c[i].version);
		sb_addc(o, '}');
	}
	sb_addc(o, ']');
	free(c);
	db_res_free(r);
	return 0;
}

void api_version_update_candidates(http_req_t *req)
{
	int64_t pid, wid;
	if (v_path_int(req, 0, "project_id", &pid) || v_path_int(req, 1, "workflow_id", &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT t.name, t.type, t.args_schema_parallel, t.args_schema_non_parallel, g.pkg_name, g.version "
			"FROM workflowtaskv2 wt JOIN taskv2 t ON t.id = wt.task_id JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id "
			"WHERE wt.workflow_id = $1 ORDER BY wt.\"order\", wt.id", (db_param_t[]){ P_INT(wid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		if (i)
			sb_addc(&o, ',');
		if (!schema_truthy(db_text(r, i, 2)) && !schema_truthy(db_text(r, i, 3))) {
			sb_adds(&o, "[]");
			continue;
		}
		if (candidates_json(req, db, &o, db_text(r, i, 0), db_text(r, i, 1), db_text(r, i, 4), db_text(r, i, 5))) {
			sb_release(&o);
			db_res_free(r);
			return;
		}
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* Python's == on JSON values: numbers and booleans compare by value
 * (True == 1 == 1.0), containers member by member. */
static int py_equal(json_t *a, json_t *b)
{
	if ((json_is_number(a) || json_is_boolean(a)) && (json_is_number(b) || json_is_boolean(b))) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		double x = json_is_boolean(a) ? json_is_true(a) : json_number_value(a);
		double y = json_is_boolean(b) ? json_is_true(b) : json_number_value(b);
		return x == y;
	}
	if (json_typeof(a) != json_typeof(b))
		return 0;
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!py_equal(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	}
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		const char *k;
		json_t *v;
		json_object_foreach(a, k, v) {
			json_t *w = json_object_get(b, k);
			if (!w || !py_equal(v, w))
				return 0;
		}
		return 1;
	}
	return json_equal(a, b);
}

/* A JSON object column as a new object, or NULL for SQL NULL / JSON null. */
static json_t *meta_load(const char *text)
{
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* upstream's get_new_workflow_task_meta, as JSON text (malloc'd) or NULL
 * for null. */
static char *new_wftask_meta(const char *old_task_text, const char *old_wft_text, const char *new_task_text)
{
	json_t *old_task = meta_load(old_task_text), *old_wft = meta_load(old_wft_text), *new_task = meta_load(new_task_text);
	json_t *res = NULL;
	if (!old_task) {
		res = json_incref(old_wft);          /* the whole meta is the user's */
	} else if (!old_wft) {
		res = json_incref(new_task);         /* unset: the new task's default */
	} else {
		/* the new default, plus what the user changed from the old
		 * default, minus what the user removed from it */
		res = new_task ? json_copy(new_task) : json_object();
		const char *k;
		json_t *v;
		json_object_foreach(old_wft, k, v) {
			json_t *d = json_object_get(old_task, k);
			if (!d || !py_equal(v, d))
				json_object_set(res, k, v);
		}
		json_object_foreach(old_task, k, v) if (!json_object_get(old_wft, k)) json_object_del(res, k);
	}
	char *s = res ? json_dump_py(res) : NULL;
	json_decref(res);
	json_decref(old_task);
	json_decref(old_wft);
	json_decref(new_task);
	return s;
}

void api_wftask_replace_task(http_req_t *req)
{
	int64_t pid, wid, wftid = 0, task_id = 0;
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", &pid, &e);
	v_path_int_e(req, 1, "workflow_id", &wid, &e);
	v_query_int_e(req, "workflow_task_id", 1, &wftid, NULL, &e);
	v_query_int_e(req, "task_id", 1, &task_id, NULL, &e);
	const vfield_t fields[] = {
		{ .name = "args_non_parallel", .type = V_DICT, .nullable = 1 },
		{ .name = "args_parallel", .type = V_DICT, .nullable = 1 },
	};
	json_t *b = v_body_e(req, fields, 2, 0, &e);
	if (verr_reply(&e, req)) {
		json_decref(b);
		return;
	}
	db_t *db = req->db;
	db_res_t *r = NULL;
	char *old_type;
	int64_t old_task_id;
	task_row_t t;
	if (wftask_access(req, db, pid, wid, wftid, 'w', &old_type, &old_task_id) || task_access(req, db, task_id, 0, &t))
		goto out;
	if (!t.tg.active) {
		http_errorf(req, 422, "Error: task %lld (%s) is not active.", (long long)task_id, t.name);
		goto out;
	}
	if (!type_update_valid(old_type, t.type)) {
		http_errorf(req, 422, "Cannot change task type from %s to %s.", old_type, t.type);
		goto out;
	}
	json_t *anp = json_object_get(b, "args_non_parallel"), *ap = json_object_get(b, "args_parallel");
	if (anp && !json_is_null(anp) && !strcmp(t.type, "parallel")) {
		http_error(req, 422, "Cannot set 'args_non_parallel' for parallel task.");
		goto out;
	}
	if (ap && !json_is_null(ap) && !strcmp(t.type, "non_parallel")) {
		http_error(req, 422, "Cannot set 'args_parallel' for non-parallel task.");
		goto out;
	}
	if (db_exec(db, "SELECT nt.input_types, w.type_filters, ot.meta_non_parallel, w.meta_non_parallel, "
			"nt.meta_non_parallel, ot.meta_parallel, w.meta_parallel, nt.meta_parallel "
			"FROM workflowtaskv2 w JOIN taskv2 ot ON ot.id = w.task_id JOIN taskv2 nt ON nt.id = $2 WHERE w.id = $1",
		    (db_param_t[]){ P_INT(wftid), P_INT(task_id) }, 2, &r)) {
		r = NULL;
		api_db_error(req, db);
		goto out;
	}
	json_t *tf = json_loads(db_text(r, 0, 1) ? db_text(r, 0, 1) : "{}", 0, NULL);
	int bad = check_type_filters_compat(req, db_text(r, 0, 0), tf);
	json_decref(tf);
	if (bad)
		goto out;
	char *mnp = new_wftask_meta(db_text(r, 0, 2), db_text(r, 0, 3), db_text(r, 0, 4));
	char *mp = new_wftask_meta(db_text(r, 0, 5), db_text(r, 0, 6), db_text(r, 0, 7));
	/* args are jsonb columns: stored in jsonb's key order */
	char *args[2] = { NULL, NULL };
	json_t *given[2] = { anp, ap };
	for (int k = 0; k < 2; k++)
		if (given[k] && !json_is_null(given[k])) {
			json_t *ordered = jsonb_ordered_deep(given[k]);
			args[k] = json_dump_py(ordered);
			json_decref(ordered);
		}
	int rc = db_begin(db);
	if (!rc)
		rc = db_exec(db, "UPDATE workflowtaskv2 SET task_id = $1, task_type = $2, meta_non_parallel = $3, "
				 "meta_parallel = $4 WHERE id = $5",
			     (db_param_t[]){ P_INT(task_id), P_TEXT(t.type), P_JSON(mnp), P_JSON(mp), P_INT(wftid) }, 5, NULL);
	static const char *const sql[2] = { "UPDATE workflowtaskv2 SET args_non_parallel = $1 WHERE id = $2",
					    "UPDATE workflowtaskv2 SET args_parallel = $1 WHERE id = $2" };
	for (int k = 0; k < 2 && !rc; k++)
		if (args[k])
			rc = db_exec(db, sql[k], (db_param_t[]){ P_JSON(args[k]), P_INT(wftid) }, 2, NULL);
	if (!rc)
		rc = db_commit(db);
	free(mnp);
	free(mp);
	free(args[0]);
	free(args[1]);
	if (rc) {
		api_db_abort(req, db);
		goto out;
	}
	reply_wftask(req, db, wftid, 201);
out:
	db_res_free(r);
	json_decref(b);
}
