/* workflow.c — upstream's execute_tasks (runner/v2/runner.py): the
 * workflow tasks of a job in order, each one filtered against the image
 * list (type filters merged from the task and the workflow task, then the
 * job's attribute filters), recorded as a HistoryRun, dispatched to its
 * task kind (kinds.c), and its merged output applied to the job's image
 * list (joblist.c), which is written back to the dataset after every task
 * together with the accounting record. The workflow stops at the first failing task. */
#include <stdlib.h>
#include <string.h>

#include "model/filters.h"
#include "model/images.h"
#include "model/pyrepr.h"
#include "runner/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- images ---- */

/* zarr_url -> index of its first occurrence. */
json_t *images_index(json_t *images)
{
	json_t *idx = json_object();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		const char *u = json_string_value(json_object_get(img, "zarr_url"));
		if (u && !json_object_get(idx, u))
			json_object_set_new(idx, u, json_integer((json_int_t)i));
	}
	return idx;
}

static void wft_free(wft_t *w)
{
	json_decref(w->meta_np);
	json_decref(w->meta_p);
	json_decref(w->args_np);
	json_decref(w->args_p);
	json_decref(w->type_filters);
	json_decref(w->input_types);
	json_decref(w->output_types);
}

static void add_json_or_null(sb_t *o, const char *raw)
{
	sb_adds(o, raw ? raw : "null");
}

static void add_str_or_null(sb_t *o, const char *s)
{
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

#define WFT_SQL                                                                                                   \
	"SELECT w.id, w.workflow_id, w.\"order\", w.meta_parallel, w.meta_non_parallel, w.args_parallel, "        \
	"w.args_non_parallel, w.type_filters, w.task_type, w.task_id, w.alias, w.description, "                   \
	"t.name, t.type, t.command_non_parallel, t.command_parallel, t.version, t.input_types, t.output_types, "  \
	"g.id, g.origin, g.pkg_name, g.version, g.python_version, g.pip_extras, g.pinned_package_versions_pre, "  \
	"g.pinned_package_versions_post, g.path, g.venv_path, g.archive_path "                                     \
	"FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id JOIN taskgroupv2 g ON g.id = t.taskgroupv2_id " \
	"WHERE w.workflow_id = $1 ORDER BY w.\"order\""

int wf_tasks_query(job_t *j, db_res_t **out)
{
	return db_exec(j->db, WFT_SQL, (db_param_t[]){ P_INT(j->a.workflow_id) }, 1, out);
}

/* WorkflowTaskDump-like dump of row i (model_dump of the wftask plus a
 * TaskDump), and TaskGroupDump. */
static void wft_dumps(db_res_t *r, int i, sb_t *wd, sb_t *gd)
{
	sb_addf(wd, "{\"id\":%lld,\"workflow_id\":%lld,\"order\":%lld,\"meta_parallel\":", (long long)db_int(r, i, 0),
		(long long)db_int(r, i, 1), (long long)db_int(r, i, 2));
	add_json_or_null(wd, db_text(r, i, 3));
	sb_adds(wd, ",\"meta_non_parallel\":");
	add_json_or_null(wd, db_text(r, i, 4));
	sb_adds(wd, ",\"args_parallel\":");
	add_json_or_null(wd, db_text(r, i, 5));
	sb_adds(wd, ",\"args_non_parallel\":");
	add_json_or_null(wd, db_text(r, i, 6));
	sb_adds(wd, ",\"type_filters\":");
	add_json_or_null(wd, db_text(r, i, 7));
	sb_adds(wd, ",\"task_type\":");
	add_str_or_null(wd, db_text(r, i, 8));
	sb_addf(wd, ",\"task_id\":%lld,\"alias\":", (long long)db_int(r, i, 9));
	add_str_or_null(wd, db_text(r, i, 10));
	sb_adds(wd, ",\"description\":");
	add_str_or_null(wd, db_text(r, i, 11));
	sb_addf(wd, ",\"task\":{\"id\":%lld,\"name\":", (long long)db_int(r, i, 9));
	add_str_or_null(wd, db_text(r, i, 12));
	sb_adds(wd, ",\"type\":");
	add_str_or_null(wd, db_text(r, i, 13));
	sb_adds(wd, ",\"command_non_parallel\":");
	add_str_or_null(wd, db_text(r, i, 14));
	sb_adds(wd, ",\"command_parallel\":");
	add_str_or_null(wd, db_text(r, i, 15));
	sb_adds(wd, ",\"version\":");
	add_str_or_null(wd, db_text(r, i, 16));
	sb_adds(wd, ",\"input_types\":");
	add_json_or_null(wd, db_text(r, i, 17));
	sb_adds(wd, ",\"output_types\":");
	add_json_or_null(wd, db_text(r, i, 18));
	sb_adds(wd, "}}");
	sb_addf(gd, "{\"id\":%lld,\"origin\":", (long long)db_int(r, i, 19));
	add_str_or_null(gd, db_text(r, i, 20));
	static const char *names[] = { "pkg_name", "version", "python_version", "pip_extras" };
	for (int k = 0; k < 4; k++) {
		sb_addf(gd, ",\"%s\":", names[k]);
		add_str_or_null(gd, db_text(r, i, 21 + k));
	}
	sb_adds(gd, ",\"pinned_package_versions_pre\":");
	sb_adds(gd, db_text(r, i, 25) ? db_text(r, i, 25) : "{}");
	sb_adds(gd, ",\"pinned_package_versions_post\":");
	sb_adds(gd, db_text(r, i, 26) ? db_text(r, i, 26) : "{}");
	static const char *paths[] = { "path", "venv_path", "archive_path" };
	for (int k = 0; k < 3; k++) {
		sb_addf(gd, ",\"%s\":", paths[k]);
		add_str_or_null(gd, db_text(r, i, 27 + k));
	}
	sb_addc(gd, '}');
}

/* merge_outputs over the successful outcomes, with the "flag every input
 * image" rule. New reference. */
static json_t *merged_output(dispatch_t *d, json_t *filtered)
{
	json_t *ups = json_array(), *rms = json_array(), *seen = json_object();
	int any = 0;
	for (size_t i = 0; i < d->n; i++) {
		json_t *o = d->out[i].output;
		if (!o)
			continue;
		any = 1;
		json_array_extend(ups, json_object_get(o, "image_list_updates"));
		size_t k;
		json_t *x;
		json_array_foreach(json_object_get(o, "image_list_removals"), k, x)
			if (!json_object_get(seen, json_string_value(x))) {
				json_object_set_new(seen, json_string_value(x), json_true());
				json_array_append(rms, x);
			}
	}
	json_decref(seen);
	ups = output_dedupe(ups);
	if (any && !json_array_size(ups) && !json_array_size(rms)) {
		size_t k;
		json_t *img;
		json_array_foreach(filtered, k, img)
			json_array_append_new(ups, json_pack("{s:O,s:n,s:{},s:{}}", "zarr_url", json_object_get(img, "zarr_url"),
							     "origin", "attributes", "types"));
	}
	return json_pack("{s:o,s:o}", "image_list_updates", ups, "image_list_removals", rms);
}

int wf_execute(job_t *j, db_res_t *wr, int first, int last, const char *root, const char *zarr_dir,
	       joblist_t *images, json_t *job_type_filters, json_t *attribute_filters, jerr_t *err)
{
	json_t *current_tf = json_copy(job_type_filters);
	int enrich = json_object_get(attribute_filters, IMAGE_STATUS_KEY) != NULL;
	int rc = -1;
	for (int row = first; row <= last; row++) {
		if (runner_stopping()) {
			jerr_set(err, JE_JOB, 0, NULL, "Job stopped due to app shutdown");
			goto out;
		}
		wft_t w = {
			.id = db_int(wr, row, 0), .workflow_id = db_int(wr, row, 1), .order = db_int(wr, row, 2),
			.meta_p = jparse(db_text(wr, row, 3)), .meta_np = jparse(db_text(wr, row, 4)),
			.args_p = jparse(db_text(wr, row, 5)), .args_np = jparse(db_text(wr, row, 6)),
			.type_filters = jparse(db_text(wr, row, 7)), .task_type = db_text(wr, row, 8),
			.task_id = db_int(wr, row, 9), .alias = db_text(wr, row, 10), .name = db_text(wr, row, 12),
			.type = db_text(wr, row, 13), .cmd_np = db_text(wr, row, 14), .cmd_p = db_text(wr, row, 15),
			.version = db_text(wr, row, 16), .input_types = jparse(db_text(wr, row, 17)),
			.output_types = jparse(db_text(wr, row, 18)), .tg_id = db_int(wr, row, 19),
			.pkg_name = db_text(wr, row, 21), .tg_version = db_text(wr, row, 22),
		};
		if (!w.type_filters)
			w.type_filters = json_object();
		if (!w.input_types)
			w.input_types = json_object();
		if (!w.output_types)
			w.output_types = json_object();
		sb_t desc = SB_INIT;
		sb_addf(&desc, "%lld-th task (", (long long)w.order);
		if (w.alias && *w.alias)
			sb_addf(&desc, "'%s', ", w.alias);
		sb_addf(&desc, "'%s', %s %s)", w.name, w.pkg_name, w.tg_version ? w.tg_version : "None");
		wlog(j, "DEBUG", "SUBMIT %s", desc.buf);
		int converter = !strncmp(w.task_type ? w.task_type : "", "converter_", 10);
		json_t *filtered = json_array(), *type_filters = NULL;
		long num_available = 0;
		int step_rc = -1;
		dispatch_t d = { 0 };
		int64_t run_id = -1;
		if (!converter) {
			sb_t m = SB_INIT;
			json_t *patch = filters_merge_types(w.input_types, w.type_filters, &m);
			if (!patch) {
				jerr_set(err, JE_UNKNOWN, 0, "ValueError", "%s", m.buf);
				sb_release(&m);
				goto next;
			}
			sb_release(&m);
			type_filters = json_copy(current_tf);
			json_object_update(type_filters, patch);
			json_decref(patch);
			if (row == first && enrich) {
				sb_t e = SB_INIT;
				if (joblist_enrich(j, images, w.id, &e))
					log_error("job %lld: %s", (long long)j->a.job_id, e.buf);
				sb_release(&e);
			}
			num_available = (long)joblist_filter(images, type_filters, attribute_filters, filtered);
		}
		/* HistoryRun */
		{
			sb_t wd = SB_INIT, gd = SB_INIT;
			wft_dumps(wr, row, &wd, &gd);
			int qrc = db_begin(j->db) ||
				  (run_id = hist_run_insert(j, w.id, w.task_id, wd.buf, gd.buf, num_available)) < 0;
			sb_release(&wd);
			sb_release(&gd);
			if (qrc || db_exec(j->db, "UPDATE jobv2 SET executor_error_log = NULL WHERE id = $1",
					   (db_param_t[]){ P_INT(j->a.job_id) }, 1, NULL) ||
			    db_commit(j->db)) {
				jerr_db(j, "history run", err);
				goto next;
			}
		}
		if (!converter && json_array_size(filtered) == 0) {
			jerr_set(err, JE_JOB, 0, NULL, "Cannot run task '%s' for an empty image list (obtained after applying type_filters=",
				 w.name);
			py_repr_json(&err->msg, type_filters);
			sb_adds(&err->msg, " and attribute_filters=");
			py_repr_json(&err->msg, attribute_filters);
			sb_adds(&err->msg, ").");
			wlog(j, "INFO", "%s", err->msg.buf);
			hist_run_status(j, run_id, HIST_FAILED);
			goto next;
		}
		{
			db_res_t *r = NULL;
			if (db_exec(j->db, "SELECT name, prevent_new_submissions FROM resource WHERE id = $1",
				    (db_param_t[]){ P_INT(j->a.resource_id) }, 1, &r)) {
				jerr_db(j, "resource", err);
				goto next;
			}
			if (db_nrows(r) && db_bool(r, 0, 1)) {
				jerr_set(err, JE_JOB, 0, NULL, "Cannot run '%s', since the '%s' resource is not currently active.",
					 w.name, db_text(r, 0, 0));
				db_res_free(r);
				wlog(j, "INFO", "%s", err->msg.buf);
				hist_run_status(j, run_id, HIST_FAILED);
				goto next;
			}
			db_res_free(r);
		}
		/* dispatch: any error escaping it becomes the one failed outcome */
		{
			jerr_t de = { 0 };
			sb_init(&de.msg, 0);
			if (kinds_run(j, root, &w, filtered, zarr_dir, run_id, &d, &de)) {
				dispatch_free(&d);
				d.n = 1;
				d.out = xcalloc(1, sizeof(outcome_t));
				d.out[0].exc = xstrdup(de.msg.buf);
				d.num_tasks = 0;
			}
			sb_release(&de.msg);
		}
		/* post-processing */
		json_t *output = merged_output(&d, filtered);
		long num_new = joblist_apply(images, output, w.output_types, zarr_dir, err);
		if (num_new < 0) {
			wlog(j, "ERROR", "Unexpected error in post-task-execution block. Original error: %s", err->msg.buf);
			if (hist_run_units_failed(j, run_id))
				job_db_fail(j, "history units");
			json_decref(output);
			goto next;
		}
		json_object_update(current_tf, w.output_types);
		{
			char now[40];
			utc_now_iso(now, sizeof(now));
			joblist_write_t lw = { .have_self = 0 };
			sb_init(&lw.text, 0);
			/* a list the task left as the row holds it is not written
			 * again (as upstream's write of it would store the same) */
			int same = joblist_stored_current(j, images);
			int wrc = db_begin(j->db) || (!same && joblist_store(j, images, &lw));
			json_t *rms = json_object_get(output, "image_list_removals");
			size_t i;
			json_t *x;
			json_array_foreach(rms, i, x) {
				if (wrc)
					break;
				wrc = hist_cache_delete(j, w.id, json_string_value(x));
			}
			wrc = wrc ||
			      db_exec(j->db, "UPDATE jobv2 SET executor_error_log = $1 WHERE id = $2",
				      (db_param_t[]){ P_TEXT(j->ex->ops->error_log(j->ex)), P_INT(j->a.job_id) }, 2, NULL) ||
			      db_exec(j->db,
				      "INSERT INTO accountingrecord (user_id, \"timestamp\", num_tasks, num_new_images) VALUES ($1, $2, $3, $4)",
				      (db_param_t[]){ P_INT(j->a.user_id), P_TS(now), P_INT(d.num_tasks), P_INT(num_new) }, 4, NULL) ||
			      db_commit(j->db);
			if (same)
				sb_release(&lw.text);
			else
				joblist_store_finish(j, images, &lw, !wrc);
			json_decref(output);
			if (wrc) {
				jerr_db(j, "dataset images", err);
				goto next;
			}
		}
		{
			const char *first_exc = NULL;
			for (size_t i = 0; i < d.n && !first_exc; i++)
				first_exc = d.out[i].exc;
			if (first_exc) {
				hist_run_status(j, run_id, HIST_FAILED);
				wlog(j, "WARNING", "END    %s - ERROR.", desc.buf);
				jerr_set(err, JE_JOB, 1, NULL, "An error occurred.\nOriginal error:\n%s", first_exc);
				goto next;
			}
			hist_run_status(j, run_id, HIST_DONE);
			wlog(j, "DEBUG", "END    %s", desc.buf);
		}
		step_rc = 0;
next:
		dispatch_free(&d);
		json_decref(filtered);
		json_decref(type_filters);
		sb_release(&desc);
		wft_free(&w);
		if (step_rc)
			goto out;
	}
	rc = 0;
out:
	json_decref(current_tf);
	return rc;
}

