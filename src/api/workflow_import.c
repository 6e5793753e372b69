/* workflow_import.c — POST /api/v2/project/{p}/workflow/import/ and
 * .../import-from-template/ (upstream's routes/api/v2/workflow_import.py).
 *
 * Each imported workflow task names its task by (pkg_name, version, name).
 * It is looked for among the task groups with a version that the user can
 * read (own or of one of the user's groups) on the user's resource. A task
 * without a version, or with one that no such group has, is not imported:
 * the whole import then fails with 422 and, for every task, either the task
 * found or the versions available (newest first, PEP 440 order), so that
 * the client can choose. When several groups have the version, the user's
 * own wins, then the default group's ("All"), then the group the user
 * joined first. */
#include <stdlib.h>
#include <string.h>

#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/task_common.h"
#include "api/workflow_import.h"
#include "config/settings.h"
#include "model/pyrepr.h"
#include "util/pep440.h"
#include "util/timeutil.h"

int64_t default_group_id(http_req_t *req, db_t *db); /* users.c */

static json_t *loc_add(json_t *loc, const char *key, int idx)
{
	json_t *l = json_copy(loc);
	json_array_append_new(l, key ? json_string(key) : json_integer(idx));
	return l;
}

/* upstream's WorkflowTaskImport.update_legacy_filters (a "before"
 * validator): legacy input_filters {"attributes": {}, "types": {...}}
 * become type_filters. 0, 1 after a value error, -1 where upstream's
 * validator would raise a non-ValueError (AttributeError, KeyError...). */
static int legacy_filters(json_t *item, json_t *loc, verr_t *e)
{
	json_t *inf = json_object_get(item, "input_filters");
	if (!inf || json_is_null(inf))
		return 0;
	const char *why = NULL;
	if (json_object_get(item, "type_filters")) {
		why = "Value error, Cannot set filters both through the legacy field ('filters') and the new one "
		      "('type_filters').";
	} else {
		if (!json_is_object(inf) || !json_object_get(inf, "attributes"))
			return -1;
		json_t *attrs = json_object_get(inf, "attributes");
		if (!json_is_object(attrs) || json_object_size(attrs))
			why = "Value error, Cannot set attribute filters for WorkflowTasks.";
	}
	if (why) {
		verr_add(e, "value_error", json_incref(loc), why, item, json_pack("{s:{}}", "error"));
		return 1;
	}
	json_t *types = json_object_get(inf, "types");
	json_object_set_new(item, "type_filters", types ? json_incref(types) : json_object());
	json_object_set_new(item, "input_filters", json_null());
	return 0;
}

/* pydantic reports extra fields after the fields' own (nested) errors */
static void extras(json_t *obj, const vfield_t *fields, int n, json_t *loc, verr_t *e)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int known = 0;
		for (int i = 0; i < n && !known; i++)
			known = !strcmp(fields[i].name, k);
		if (!known)
			verr_add(e, "extra_forbidden", loc_add(loc, k, 0), "Extra inputs are not permitted", v, NULL);
	}
}

json_t *workflow_import_validate(json_t *v, json_t *loc, verr_t *e)
{
	static const vfield_t wf_fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .required = 1 },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "task_list", .type = V_LIST, .item = V_ANY, .required = 1 },
	};
	static const vfield_t wft_fields[] = {
		{ .name = "meta_non_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },
		{ .name = "meta_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },
		{ .name = "args_non_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },
		{ .name = "args_parallel", .type = V_DICT, .nullable = 1, .check = check_dict_keys },
		{ .name = "type_filters", .type = V_DICT, .item = V_BOOL, .nullable = 1, .check = check_dict_keys },
		{ .name = "input_filters", .type = V_DICT, .nullable = 1 },
		{ .name = "description", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "alias", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "task", .type = V_ANY, .required = 1 },
	};
	static const vfield_t task_fields[] = {
		{ .name = "pkg_name", .type = V_NONEMPTY, .required = 1 },
		{ .name = "version", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "name", .type = V_NONEMPTY, .required = 1 },
	};
	if (!json_is_object(v)) {
		verr_add(e, "model_type", json_incref(loc), "Input should be a valid dictionary or instance of WorkflowImport",
			 v, json_pack("{s:s}", "class_name", "WorkflowImport"));
		return json_object();
	}
	json_t *wf = v_object(v, wf_fields, 3, 0, loc, e);
	json_t *list = json_object_get(wf, "task_list");
	json_t *tasks = json_array();
	size_t i;
	json_t *it;
	json_array_foreach(list, i, it) {
		json_t *base = loc_add(loc, "task_list", 0);
		json_array_append_new(base, json_integer((json_int_t)i));
		if (!json_is_object(it)) {
			/* upstream's legacy-filters validator crashes here (500);
			 * we answer what pydantic would have said */
			v_add_not_object(e, json_incref(base), it);
			json_decref(base);
			continue;
		}
		json_t *item = json_copy(it);
		int lf = legacy_filters(item, base, e);
		if (lf < 0) {
			/* upstream crashes (500) on legacy input_filters without
			 * "attributes" or not a dict: a clear 422 instead */
			json_t *l = loc_add(base, "input_filters", 0);
			verr_add(e, "value_error", l,
				 "Value error, legacy `input_filters` must be an object with `attributes` and `types`",
				 json_object_get(it, "input_filters"), json_pack("{s:{}}", "error"));
		}
		if (!lf) {
			json_t *o = v_object(item, wft_fields, 9, 0, base, e);
			coerce_type_filters(o, base, e);
			json_t *t = json_object_get(o, "task");
			json_t *tloc = loc_add(base, "task", 0);
			if (t && !json_is_object(t)) {
				verr_add(e, "model_type", json_incref(tloc),
					 "Input should be a valid dictionary or instance of TaskImport", t,
					 json_pack("{s:s}", "class_name", "TaskImport"));
			} else if (t) {
				json_object_set_new(o, "task", v_object(t, task_fields, 3, 1, tloc, e));
			}
			json_decref(tloc);
			extras(item, wft_fields, 9, base, e);
			json_array_append_new(tasks, o);
		}
		json_decref(item);
		json_decref(base);
	}
	extras(v, wf_fields, 3, loc, e);
	if (list)
		json_object_set_new(wf, "task_list", tasks);
	else
		json_decref(tasks);
	return wf;
}

/* ---- task resolution ---- */

/* The readable task groups with a version on the user's resource, one row
 * per task: g.id, g.user_id, g.user_group_id, g.pkg_name, g.version,
 * g.active, t.id, t.name, t.is_core, t.type. */
enum { C_GID, C_UID, C_UGID, C_PKG, C_VER, C_ACTIVE, C_TID, C_TNAME, C_CORE, C_TYPE };

typedef struct cand {
	int row; /* of the group's first task with the wanted name */
} cand_t;

/* Matching groups (by pkg_name and a task called name), in id order. */
static int candidates(db_res_t *g, const char *pkg, const char *name, cand_t *out)
{
	int n = 0;
	for (int i = 0; i < db_nrows(g); i++) {
		if (strcmp(db_text(g, i, C_PKG), pkg) || strcmp(db_text(g, i, C_TNAME), name))
			continue;
		int seen = 0;
		for (int k = 0; k < n && !seen; k++)
			seen = db_int(g, out[k].row, C_GID) == db_int(g, i, C_GID);
		if (!seen)
			out[n++].row = i;
	}
	return n;
}

/* upstream's _disambiguate_task_groups: the row chosen among c[0..n), or
 * -1 (none: cannot happen with the rows we have). links: the user's group
 * ids, oldest membership first. */
static int disambiguate(db_res_t *g, const cand_t *c, int n, int64_t user_id, int64_t def_group, db_res_t *links)
{
	for (int k = 0; k < n; k++)
		if (db_int(g, c[k].row, C_UID) == user_id)
			return c[k].row;
	if (settings.default_group_name)
		for (int k = 0; k < n; k++)
			if (!db_isnull(g, c[k].row, C_UGID) && db_int(g, c[k].row, C_UGID) == def_group)
				return c[k].row;
	for (int l = 0; l < db_nrows(links); l++)
		for (int k = 0; k < n; k++)
			if (!db_isnull(g, c[k].row, C_UGID) && db_int(g, c[k].row, C_UGID) == db_int(links, l, 0))
				return c[k].row;
	return -1;
}

/* AvailableTask list for a failed task: every matching group, newest
 * version first (a stable sort, as Python's sorted(reverse=True)). */
static void available_json(sb_t *o, db_res_t *g, cand_t *c, int n, const char *target)
{
	for (int a = 1; a < n; a++) {
		cand_t x = c[a];
		int b = a;
		while (b > 0 && pep440_sort_cmp(db_text(g, c[b - 1].row, C_VER), db_text(g, x.row, C_VER)) < 0) {
			c[b] = c[b - 1];
			b--;
		}
		c[b] = x;
	}
	sb_addc(o, '[');
	for (int k = 0; k < n; k++) {
		int r = c[k].row;
		sb_adds(o, k ? ",{\"version\":" : "{\"version\":");
		sb_add_json_str(o, db_text(g, r, C_VER));
		sb_addf(o, ",\"older_than_target\":%s,\"active\":%s,\"is_core\":%s}",
			JBOOL(pep440_sort_cmp(db_text(g, r, C_VER), target) < 0), JBOOL(db_bool(g, r, C_ACTIVE)),
			JBOOL(db_bool(g, r, C_CORE)));
	}
	sb_addc(o, ']');
}

static void import_str(sb_t *o, const char *key, const char *v)
{
	sb_addf(o, ",\"%s\":", key);
	if (v)
		sb_add_json_str(o, v);
	else
		sb_adds(o, "null");
}

void workflow_import_run(http_req_t *req, db_t *db, int64_t pid, json_t *wf, int64_t template_id)
{
	int64_t uid = req->user->id, resource_id = 0, def = 0;
	project_row_t p;
	const char *name = json_string_value(json_object_get(wf, "name"));
	if (user_resource_id(req, db, uid, &resource_id) || access_project(req, db, pid, 'w', &p))
		return;
	db_res_t *r;
	/* checked here first, so that a taken name is the answer before any
	 * task error (upstream's order), and again below under the lock */
	if (workflow_name_taken(req, db, pid, name))
		return;
	db_res_t *g = NULL, *links = NULL;
	if (db_exec(db, "SELECT g.id, g.user_id, g.user_group_id, g.pkg_name, g.version, g.active, t.id, t.name, t.is_core, "
			"t.type FROM taskgroupv2 g JOIN taskv2 t ON t.taskgroupv2_id = g.id WHERE (g.user_id = $1 OR "
			"g.user_group_id IN (SELECT group_id FROM linkusergroup WHERE user_id = $1)) AND g.resource_id = $2 "
			"AND g.version IS NOT NULL ORDER BY g.id, t.id",
		    (db_param_t[]){ P_INT(uid), P_INT(resource_id) }, 2, &g) ||
	    db_exec(db, "SELECT group_id FROM linkusergroup WHERE user_id = $1 ORDER BY timestamp_created, group_id",
		    (db_param_t[]){ P_INT(uid) }, 1, &links)) {
		api_db_error(req, db);
		goto out;
	}
	def = default_group_id(req, db);
	if (def < 0)
		goto out;
	json_t *list = json_object_get(wf, "task_list");
	size_t nt = json_array_size(list);
	int *chosen = calloc(nt + 1, sizeof(int));
	cand_t *c = calloc((size_t)db_nrows(g) + 1, sizeof(cand_t));
	sb_t data = SB_INIT;
	int failed = 0;
	size_t i;
	json_t *it;
	json_array_foreach(list, i, it) {
		json_t *t = json_object_get(it, "task");
		const char *pkg = json_string_value(json_object_get(t, "pkg_name"));
		const char *ver = json_string_value(json_object_get(t, "version"));
		const char *tname = json_string_value(json_object_get(t, "name"));
		int n = candidates(g, pkg, tname, c), row = -1, nv = 0;
		if (ver) {
			cand_t *same = calloc((size_t)n + 1, sizeof(cand_t));
			for (int k = 0; k < n; k++)
				if (!strcmp(db_text(g, c[k].row, C_VER), ver))
					same[nv++] = c[k];
			row = nv == 1 ? same[0].row : nv > 1 ? disambiguate(g, same, nv, uid, def, links) : -1;
			free(same);
		}
		chosen[i] = row;
		sb_adds(&data, i ? ",{\"outcome\":" : "{\"outcome\":");
		sb_adds(&data, row >= 0 ? "\"success\"" : "\"fail\"");
		import_str(&data, "pkg_name", pkg);
		import_str(&data, "version", ver);
		import_str(&data, "task_name", tname);
		if (row >= 0) {
			sb_addf(&data, ",\"task_id\":%lld}", (long long)db_int(g, row, C_TID));
		} else {
			failed = 1;
			sb_adds(&data, ",\"available_tasks\":");
			/* a version that matched several groups none of which wins
			 * (cannot happen) leaves the list empty, as upstream */
			if (nv > 1)
				sb_adds(&data, "[]");
			else
				available_json(&data, g, c, n, ver);
			sb_addc(&data, '}');
		}
	}
	free(c);
	if (failed) {
		sb_t o = SB_INIT;
		sb_addf(&o, "{\"detail\":\"[HAS_ERROR_DATA]\",\"data\":[%s]}", data.buf ? data.buf : "");
		http_json_sb(req, 422, &o);
		goto out_free;
	}
	/* WorkflowTaskCreate re-validates the args as WorkflowTaskArgument:
	 * upstream raises that ValidationError unhandled (500); we say why */
	json_array_foreach(list, i, it) {
		static const char *const args[] = { "args_non_parallel", "args_parallel" };
		for (int k = 0; k < 2; k++) {
			json_t *a = json_object_get(it, args[k]);
			if (!json_is_object(a))
				continue;
			json_t *copy = json_incref(a);
			sb_t m = SB_INIT;
			const char *why = check_args(&copy, &m);
			json_decref(copy);
			if (why) {
				http_errorf(req, 422, "Task %zu of the workflow: %s", i, why);
				sb_release(&m);
				goto out_free;
			}
			sb_release(&m);
		}
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (api_begin_locked(req, db, "workflow-name", pid))
		goto out_free;
	if (workflow_name_taken(req, db, pid, name)) {
		db_rollback(db);
		goto out_free;
	}
	if (db_exec(db, "INSERT INTO workflowv2 (name, project_id, timestamp_created, description, is_starred, template_id) "
			"VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
		    (db_param_t[]){ P_TEXT(name), P_INT(pid), P_TS(now),
				    P_TEXT(json_string_value(json_object_get(wf, "description"))), P_BOOL(0),
				    template_id ? P_INT(template_id) : P_NULL }, 6, &r)) {
		api_db_abort(req, db);
		goto out_free;
	}
	int64_t wid = db_int(r, 0, 0);
	db_res_free(r);
	json_array_foreach(list, i, it) {
		int row = chosen[i];
		if (wftask_insert(req, db, wid, db_int(g, row, C_TID), db_text(g, row, C_TYPE), (int64_t)i, it) < 0) {
			db_rollback(db);
			goto out_free;
		}
	}
	if (template_id && db_exec(db, "UPDATE workflowtemplate SET timestamp_last_used = $1 WHERE id = $2",
				   (db_param_t[]){ P_TS(now), P_INT(template_id) }, 2, NULL)) {
		api_db_abort(req, db);
		goto out_free;
	}
	if (db_commit(db)) {
		api_db_abort(req, db);
		goto out_free;
	}
	reply_workflow(req, db, pid, wid, 201, 1);
out_free:
	free(chosen);
	sb_release(&data);
out:
	db_res_free(g);
	db_res_free(links);
}

/* ---- routes ---- */

void api_workflow_import(http_req_t *req)
{
	int64_t pid;
	if (v_path_int(req, 0, "project_id", &pid))
		return;
	verr_t e;
	verr_init(&e);
	json_t *body = v_parse_body(req, &e), *wf = NULL;
	if (body) {
		json_t *loc = json_pack("[s]", "body");
		wf = workflow_import_validate(body, loc, &e);
		json_decref(loc);
	}
	json_decref(body);
	if (!verr_reply(&e, req))
		workflow_import_run(req, req->db, pid, wf, 0);
	json_decref(wf);
}

/* dict[int, ...] keys: what pydantic's lax int parsing of a string accepts
 * (surrounding whitespace, a sign, digits). 0 and *out, or -1. */
static int parse_int_key(const char *s, int64_t *out)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	char *end;
	if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	long long v = strtoll(s, &end, 10);
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	if (*end || end == s)
		return -1;
	*out = v;
	return 0;
}

void api_workflow_import_from_template(http_req_t *req)
{
	int64_t pid, tid;
	if (v_path_int(req, 0, "project_id", &pid) || v_query_int_required(req, "template_id", &tid))
		return;
	const vfield_t fields[] = {
		{ .name = "name", .type = V_NONEMPTY, .nullable = 1 },
		{ .name = "override_versions", .type = V_DICT },
	};
	json_t *b = v_body(req, fields, 2, 1);
	if (!b)
		return;
	/* override_versions: dict[int, NonEmptyStr] */
	verr_t e;
	verr_init(&e);
	json_t *ov = json_object();
	const char *k;
	json_t *v;
	vfield_t vf = { .name = "", .type = V_NONEMPTY };
	json_object_foreach(json_object_get(b, "override_versions"), k, v) {
		int64_t idx;
		if (parse_int_key(k, &idx)) {
			json_t *in = json_string(k);
			verr_add(&e, "int_parsing", json_pack("[s,s,s,s]", "body", "override_versions", k, "[key]"),
				 "Input should be a valid integer, unable to parse string as an integer", in, NULL);
			json_decref(in);
		}
		json_t *loc = json_pack("[s,s,s]", "body", "override_versions", k);
		json_t *s = v_value(&vf, v, loc, &e);
		json_decref(loc);
		if (s)
			json_object_set_new(ov, k, s);
	}
	json_t *wf = NULL;
	if (verr_reply(&e, req))
		goto out;
	db_t *db = req->db;
	template_row_t t;
	if (template_read_access(req, db, tid, &t))
		goto out;
	/* WorkflowImport(**template.data): a template that is not one is
	 * upstream's unhandled ValidationError */
	json_t *data = json_loads(t.data, 0, NULL), *loc = json_pack("[s]", "data");
	verr_init(&e);
	wf = workflow_import_validate(data, loc, &e);
	json_decref(data);
	json_decref(loc);
	if (json_array_size(e.list)) {
		verr_free(&e);
		http_error_500(req, "template %lld holds no valid WorkflowImport", (long long)tid);
		goto out;
	}
	verr_free(&e);
	json_t *name = json_object_get(b, "name");
	if (json_is_string(name))
		json_object_set(wf, "name", name);
	json_t *list = json_object_get(wf, "task_list");
	int64_t n = (int64_t)json_array_size(list);
	json_object_foreach(ov, k, v) {
		int64_t idx = 0;
		parse_int_key(k, &idx);
		if (idx < -n || idx >= n) {
			http_error(req, 422, "Task index out of bound in `override_versions`.");
			goto out;
		}
		json_t *task = json_object_get(json_array_get(list, (size_t)(idx < 0 ? idx + n : idx)), "task");
		json_object_set(task, "version", v);
	}
	workflow_import_run(req, db, pid, wf, tid);
out:
	json_decref(wf);
	json_decref(ov);
	json_decref(b);
}
