/* kinds.c — the task kinds (upstream's runner_functions.py): a
 * non_parallel, parallel or compound task (and the converter forms) over
 * the filtered images becomes units, with their args, file names and
 * history rows, runs through the job's executor (executor.h), and its units'
 * outputs become a dispatch_t of outcomes for workflow.c to merge. Which
 * history unit statuses the runner sets, and when, follows upstream per
 * kind (spec-tasks-runners.md §6.4, §7.2). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/pyrepr.h"
#include "runner/internal.h"
#include "util/log.h"

#define MAX_PARALLELIZATION_LIST_SIZE 20000

/* upstream's sanitize_string: lower case, punctuation and spaces to "_". */
static void sanitize(sb_t *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (ispunct(c) || isspace(c))
			sb_addc(out, '_');
		else
			sb_addc(out, (char)tolower(c));
	}
}

/* ---- units ---- */

void unit_free(unit_t *u)
{
	json_decref(u->args);
	json_decref(u->result);
	sb_release(&u->args_path);
	sb_release(&u->log_path);
	sb_release(&u->out_path);
	free(u->exc);
}

static void unit_files(unit_t *u, const char *subfolder, const char *prefix_component)
{
	sb_addf(&u->args_path, "%s/%s-args.json", subfolder, prefix_component);
	sb_addf(&u->log_path, "%s/%s-log.txt", subfolder, prefix_component);
	sb_addf(&u->out_path, "%s/%s-metadiff.json", subfolder, prefix_component);
}

void unit_fail(unit_t *u, const char *msg)
{
	free(u->exc);
	u->exc = xstrdup(msg);
	u->state = UNIT_FINISHED;
}

void dispatch_free(dispatch_t *d)
{
	for (size_t i = 0; i < d->n; i++) {
		json_decref(d->out[i].output);
		free(d->out[i].exc);
	}
	free(d->out);
	d->out = NULL;
	d->n = 0;
}

/* done(j, u, ctx) is called as each unit ends (history updates). */
typedef void (*unit_done_fn)(job_t *j, unit_t *u, void *ctx);

/* Submits the units as one batch to the job's executor and waits for all. */
static void run_units(job_t *j, const wft_t *w, unit_t *units, size_t n, int parallel, int64_t per_batch,
		      const char *cmd, unit_done_fn done, void *ctx)
{
	executor_t *ex = j->ex;
	exec_batch_t b = { .units = units, .n = n, .command = cmd, .task = w, .parallel = parallel,
			   .per_batch = per_batch };
	ex->ops->submit(ex, &b);
	unit_t **fin = xcalloc(n ? n : 1, sizeof(*fin));
	size_t k;
	while ((k = ex->ops->wait(ex, fin, n)) > 0)
		for (size_t i = 0; i < k && done; i++)
			done(j, fin[i], ctx);
	free(fin);
}

/* parallel status updates, as each unit ends */
struct par_ctx {
	int update;   /* parallel: the runner sets unit statuses */
};

static void par_done(job_t *j, unit_t *u, void *ctx)
{
	struct par_ctx *c = ctx;
	if (!c->update)
		return;
	if (hist_unit_status(j, u->hu_id, HIST_SUBMITTED, u->exc ? HIST_FAILED : HIST_DONE, u->log_path.buf))
		log_error("job %lld: cannot update history unit %lld: %s", (long long)j->a.job_id, (long long)u->hu_id,
			  db_errmsg(j->db));
}

/* The task subfolder: <root>/<order>_<sanitized name>. */
static void subfolder(job_t *j, const char *root, const wft_t *w, sb_t *out)
{
	(void)j;
	sb_addf(out, "%s/%lld_", root, (long long)w->order);
	sanitize(out, w->name);
}

/* The runner's submit for one unit (non-parallel, init): the subfolder
 * (must not exist), then the unit. set_done: whether the runner sets the
 * unit's status on success too (not for a compound init). */
static void submit_one(job_t *j, const char *root, const wft_t *w, unit_t *u, const char *cmd, int set_done)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	if (mkdir(dir.buf, 0755)) {
		sb_t m = SB_INIT;
		os_error(&m, errno, dir.buf);
		unit_fail(u, m.buf);
		sb_release(&m);
	} else {
		run_units(j, w, u, 1, 0, -1, cmd, NULL, NULL);
	}
	sb_release(&dir);
	if (u->exc || set_done) {
		if (hist_unit_status(j, u->hu_id, HIST_SUBMITTED, u->exc ? HIST_FAILED : HIST_DONE, u->log_path.buf))
			log_error("job %lld: cannot update history unit: %s", (long long)j->a.job_id, db_errmsg(j->db));
	}
}

static json_t *urls_of(json_t *images)
{
	json_t *urls = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img)
		json_array_append(urls, json_object_get(img, "zarr_url"));
	return urls;
}

/* args of a non-parallel unit: zarr_dir, args_non_parallel, [zarr_urls] */
static json_t *args_np(const char *zarr_dir, const wft_t *w, json_t *urls)
{
	json_t *a = json_pack("{s:s}", "zarr_dir", zarr_dir);
	if (json_is_object(w->args_np))
		json_object_update(a, w->args_np);
	if (urls)
		json_object_set(a, "zarr_urls", urls);
	return a;
}

/*
 * The one non-parallel unit of a non_parallel or compound task (its init):
 * args with zarr_urls (none for a converter), files non_par-*, its history
 * row and the image cache entry of every url it covers, committed. Sets
 * *urls_p to the zarr_urls the unit covers (new reference; empty for a
 * converter), also on a database error (-1).
 */
static int np_unit(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir, int64_t run_id,
		   unit_t *u, json_t **urls_p)
{
	int converter = !strncmp(w->type, "converter_", 10);
	json_t *urls = *urls_p = converter ? json_array() : urls_of(images);
	u->args = args_np(zarr_dir, w, converter ? NULL : urls);
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	unit_files(u, dir.buf, "non_par-");
	sb_release(&dir);
	if (db_begin(j->db) || (u->hu_id = hist_unit_insert(j, run_id, u->log_path.buf, urls)) < 0)
		return -1;
	int64_t *ids = xcalloc(json_array_size(urls) + 1, sizeof(*ids));
	for (size_t i = 0; i < json_array_size(urls); i++)
		ids[i] = u->hu_id;
	int crc = hist_cache_upsert(j, w->id, urls, ids);
	free(ids);
	return crc || db_commit(j->db) ? -1 : 0;
}

static int run_non_parallel(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir,
			    int64_t run_id, dispatch_t *d, jerr_t *err)
{
	unit_t u = { 0 };
	json_t *urls = NULL;
	int rc = -1;
	if (j->ex->ops->configure(j->ex, w, 0, 1, err) == EXEC_CONFIG_FAILED)
		return -1;
	if (np_unit(j, root, w, images, zarr_dir, run_id, &u, &urls))
		goto dberr;
	submit_one(j, root, w, &u, w->cmd_np, 1);
	d->n = 1;
	d->out = xcalloc(1, sizeof(outcome_t));
	d->num_tasks = 1;
	sb_t te = SB_INIT;
	if (output_process(&u, &d->out[0], &te)) {
		jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
		sb_release(&te);
		goto out;
	}
	sb_release(&te);
	/* invalid output: submit_one set the unit done */
	if (d->out[0].invalid_output && hist_unit_status(j, u.hu_id, HIST_DONE, HIST_FAILED, u.log_path.buf))
		goto dberr;
	rc = 0;
	goto out;
dberr:
	jerr_db(j, "history unit", err);
out:
	unit_free(&u);
	json_decref(urls);
	return rc;
}

/* Units for a multisubmit: files par-<batch>-<index>, history rows. */
static int prepare_multi(job_t *j, const char *root, const wft_t *w, unit_t *units, size_t n, int64_t batch,
			 int64_t run_id)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	if (batch <= 0)
		batch = (int64_t)n;
	for (size_t i = 0; i < n; i++) {
		char pc[64];
		snprintf(pc, sizeof(pc), "par-%06lld-%07zu", (long long)((int64_t)i / batch), i);
		unit_files(&units[i], dir.buf, pc);
	}
	sb_release(&dir);
	if (db_begin(j->db))
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *urls = json_pack("[O]", json_object_get(units[i].args, "zarr_url"));
		units[i].hu_id = hist_unit_insert(j, run_id, units[i].log_path.buf, urls);
		json_decref(urls);
		if (units[i].hu_id < 0)
			return -1;
	}
	return 0;
}

/* multisubmit's preliminary phase: the subfolder (may exist). */
static const char *multi_mkdir(job_t *j, const char *root, const wft_t *w, sb_t *msg)
{
	sb_t dir = SB_INIT;
	subfolder(j, root, w, &dir);
	const char *r = NULL;
	if (mkdir(dir.buf, 0755) && errno != EEXIST) {
		os_error(msg, errno, dir.buf);
		r = msg->buf;
	}
	sb_release(&dir);
	return r;
}

static int run_parallel(job_t *j, const char *root, const wft_t *w, json_t *images, int64_t run_id, dispatch_t *d,
			jerr_t *err)
{
	size_t n = json_array_size(images);
	if (n == 0)
		return 0;
	if (n > MAX_PARALLELIZATION_LIST_SIZE) {
		jerr_set(err, JE_JOB, 0, NULL, "Too many parallelization items.\n   %zu\n   MAX_PARALLELIZATION_LIST_SIZE=%d\n", n,
			 MAX_PARALLELIZATION_LIST_SIZE);
		return -1;
	}
	int64_t ptpj = j->ex->ops->configure(j->ex, w, 1, n, err);
	if (ptpj == EXEC_CONFIG_FAILED)
		return -1;
	unit_t *units = xcalloc(n, sizeof(unit_t));
	json_t *urls = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *zu = json_object_get(json_array_get(images, i), "zarr_url");
		units[i].args = json_pack("{s:O}", "zarr_url", zu);
		if (json_is_object(w->args_p))
			json_object_update(units[i].args, w->args_p);
		json_array_append(urls, zu);
	}
	int rc = -1;
	if (prepare_multi(j, root, w, units, n, ptpj > 0 ? ptpj : 0, run_id))
		goto dberr;
	int64_t *ids = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = units[i].hu_id;
	int crc = hist_cache_upsert(j, w->id, urls, ids);
	free(ids);
	if (crc || db_commit(j->db))
		goto dberr;
	sb_t m = SB_INIT;
	const char *pre = multi_mkdir(j, root, w, &m);
	json_t *seen = images_index(images);
	if (!pre && json_object_size(seen) != n)
		pre = "Non-unique zarr_urls";
	json_decref(seen);
	if (!pre && ptpj == 0)
		pre = "range() arg 3 must not be zero";
	struct par_ctx pc = { 1 };
	if (pre) {
		for (size_t i = 0; i < n; i++) {
			unit_fail(&units[i], pre);
			par_done(j, &units[i], &pc);
		}
	} else {
		run_units(j, w, units, n, 1, ptpj, w->cmd_p, par_done, &pc);
	}
	sb_release(&m);
	d->n = n;
	d->out = xcalloc(n, sizeof(outcome_t));
	d->num_tasks = (int64_t)n;
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		sb_t te = SB_INIT;
		if (output_process(&units[i], &d->out[i], &te)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
			rc = -1;
		} else if (d->out[i].invalid_output && /* par_done set it done */
			   hist_unit_status(j, units[i].hu_id, HIST_DONE, HIST_FAILED, units[i].log_path.buf)) {
			job_db_fail(j, "history unit");
		}
		sb_release(&te);
	}
	if (rc)
		dispatch_free(d);
	goto out;
dberr:
	jerr_db(j, "history units", err);
out:
	for (size_t i = 0; i < n; i++)
		unit_free(&units[i]);
	free(units);
	json_decref(urls);
	return rc;
}

static int run_compound(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir,
			int64_t run_id, dispatch_t *d, jerr_t *err)
{
	unit_t init = { 0 };
	json_t *urls = NULL;
	int rc = -1;
	unit_t *units = NULL;
	size_t n = 0;
	json_t *plist = NULL;
	if (j->ex->ops->configure(j->ex, w, 0, 1, err) == EXEC_CONFIG_FAILED)
		return -1;
	if (np_unit(j, root, w, images, zarr_dir, run_id, &init, &urls))
		goto dberr;
	/* the runner leaves a compound init's status alone on success */
	submit_one(j, root, w, &init, w->cmd_np, 0);
	d->num_tasks = 1;
	char *init_exc = init.exc ? xstrdup(init.exc) : NULL;
	if (!init_exc) {
		if (!init.result || json_is_null(init.result)) {
			plist = json_array();
		} else if (!json_is_object(init.result)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError",
				 "fractal_server.runner.v2.task_interface.InitTaskOutput() argument after ** must be a mapping, not %s",
				 py_type_name(init.result));
			goto out;
		} else {
			sb_t m = SB_INIT;
			plist = output_init_validate(init.result, &m);
			if (!plist)
				init_exc = sb_detach(&m);
			sb_release(&m);
		}
	}
	if (init_exc) {
		d->n = 1;
		d->out = xcalloc(1, sizeof(outcome_t));
		d->out[0].exc = init_exc;
		rc = 0;
		goto out;
	}
	plist = output_dedupe(plist);
	n = json_array_size(plist);
	d->num_tasks = 1 + (int64_t)n;
	if (n > MAX_PARALLELIZATION_LIST_SIZE) {
		jerr_set(err, JE_JOB, 0, NULL, "Too many parallelization items.\n   %zu\n   MAX_PARALLELIZATION_LIST_SIZE=%d\n", n,
			 MAX_PARALLELIZATION_LIST_SIZE);
		goto out;
	}
	if (n == 0) {
		if (hist_unit_status(j, init.hu_id, HIST_SUBMITTED, HIST_DONE, init.log_path.buf))
			goto dberr;
		d->n = 1;
		d->out = xcalloc(1, sizeof(outcome_t));
		d->out[0].output = json_pack("{s:[],s:[]}", "image_list_updates", "image_list_removals");
		rc = 0;
		goto out;
	}
	int64_t ptpj = j->ex->ops->configure(j->ex, w, 1, n, err);
	if (ptpj == EXEC_CONFIG_FAILED)
		goto out;
	units = xcalloc(n, sizeof(unit_t));
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_array_get(plist, i);
		units[i].args = json_pack("{s:O,s:O}", "zarr_url", json_object_get(item, "zarr_url"), "init_args",
					  json_object_get(item, "init_args"));
		if (json_is_object(w->args_p))
			json_object_update(units[i].args, w->args_p);
	}
	if (prepare_multi(j, root, w, units, n, ptpj > 0 ? ptpj : 0, run_id) || db_commit(j->db))
		goto dberr;
	sb_t m = SB_INIT;
	const char *pre = multi_mkdir(j, root, w, &m);
	if (!pre && ptpj == 0)
		pre = "range() arg 3 must not be zero";
	if (pre)
		for (size_t i = 0; i < n; i++)
			unit_fail(&units[i], pre);
	else
		run_units(j, w, units, n, 1, ptpj, w->cmd_p, NULL, NULL);
	sb_release(&m);
	d->n = n;
	d->out = xcalloc(n, sizeof(outcome_t));
	int failure = 0;
	for (size_t i = 0; i < n; i++) {
		sb_t te = SB_INIT;
		if (output_process(&units[i], &d->out[i], &te)) {
			jerr_set(err, JE_UNKNOWN, 0, "TypeError", "%s", te.buf);
			sb_release(&te);
			dispatch_free(d);
			goto out;
		}
		sb_release(&te);
		if (d->out[i].exc)
			failure = 1;
	}
	int64_t *all = xcalloc(n + 1, sizeof(*all));
	for (size_t i = 0; i < n; i++)
		all[i] = units[i].hu_id;
	all[n] = init.hu_id;
	int brc = db_begin(j->db) ||
		  hist_units_status_bulk(j, all, n + 1, failure ? HIST_FAILED : HIST_DONE, units, n, &init) ||
		  db_commit(j->db);
	free(all);
	if (brc)
		goto dberr;
	rc = 0;
	goto out;
dberr:
	jerr_db(j, "history units", err);
out:
	unit_free(&init);
	for (size_t i = 0; i < n && units; i++)
		unit_free(&units[i]);
	free(units);
	json_decref(urls);
	json_decref(plist);
	return rc;
}

int kinds_run(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir, int64_t run_id,
	      dispatch_t *d, jerr_t *err)
{
	if (!strcmp(w->type, "non_parallel") || !strcmp(w->type, "converter_non_parallel"))
		return run_non_parallel(j, root, w, images, zarr_dir, run_id, d, err);
	if (!strcmp(w->type, "parallel"))
		return run_parallel(j, root, w, images, run_id, d, err);
	if (!strcmp(w->type, "compound") || !strcmp(w->type, "converter_compound"))
		return run_compound(j, root, w, images, zarr_dir, run_id, d, err);
	jerr_set(err, JE_UNKNOWN, 0, "ValueError", "Unexpected error: Invalid task.type='%s'.", w->type);
	return -1;
}
