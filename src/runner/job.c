/* job.c — the job driver (upstream's submit_workflow): runner_submit()
 * starts a job's thread; the thread opens its own database connection,
 * creates the job folder and workflow.log, opens the executor the resource
 * type picks (the one table below), runs the workflow (workflow.c), ends
 * the job `done` or `failed` with upstream's log texts, and zips the
 * folder. Also the crash safety of runner.h: runner_recover() at start and
 * the shutdown phases (runner_stop() to runner_fail_leftovers()) at stop,
 * over a util/bgjob registry of the running jobs that grows with their
 * number and never drops one. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config/settings.h"
#include "model/state.h"
#include "runner/internal.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/zipwrite.h"

#define SHUTDOWN_LOG "\nJob stopped due to app shutdown\n"

/* ---- the executors, by resource type ---- */

/* NULL: a resource type this server cannot run jobs on yet; the job fails
 * as upstream's would without that runner installed. */
static const struct {
	const char *resource_type;
	const struct executor_ops *ops;
} executors[] = {
	{ "local", &exec_local_ops },
	{ "slurm_sudo", &exec_slurm_sudo_ops },
	{ "slurm_ssh", &exec_slurm_ssh_ops },
};

const struct executor_ops *executor_for(const char *resource_type)
{
	for (size_t i = 0; i < sizeof(executors) / sizeof(executors[0]); i++)
		if (resource_type && !strcmp(executors[i].resource_type, resource_type))
			return executors[i].ops;
	return NULL;
}

/* every executor type's shutdown(force) (executor.h) */
static void shutdown_executors(int force)
{
	for (size_t i = 0; i < sizeof(executors) / sizeof(executors[0]); i++)
		if (executors[i].ops && executors[i].ops->shutdown)
			executors[i].ops->shutdown(force);
}

/* ---- the running jobs (for shutdown) ---- */

/* Every job thread is a background job of this registry (util/bgjob.h),
 * together with the process groups its local units run in. */
static bgjob_reg_t reg = BGJOB_REG_INIT;

int runner_stopping(void)
{
	return bgjob_reg_stopping(&reg);
}

/* ---- errors and logs ---- */

void jerr_set(jerr_t *e, int kind, int has_info, const char *type, const char *fmt, ...)
{
	e->kind = kind;
	e->has_info = has_info;
	e->type = type;
	sb_reset(&e->msg);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&e->msg, fmt, ap);
	va_end(ap);
}

void wlog(job_t *j, const char *level, const char *fmt, ...)
{
	if (!j->log)
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	char ts[40];
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	sb_t line = SB_INIT;
	sb_addf(&line, "%s,%03ld - %s - %s - ", ts, (long)(tv.tv_usec / 1000), j->logger, level);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&line, fmt, ap);
	va_end(ap);
	sb_addc(&line, '\n');
	fwrite(line.buf, 1, line.len, j->log);
	fflush(j->log);
	sb_release(&line);
}

int job_db_fail(job_t *j, const char *what)
{
	log_error("job %lld: database error (%s): %s", (long long)j->a.job_id, what, db_errmsg(j->db));
	db_rollback(j->db);
	return -1;
}

void jerr_db(job_t *j, const char *what, jerr_t *err)
{
	job_db_fail(j, what);
	jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
}

static void fail_job(job_t *j, const char *text)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_t msg = SB_INIT;
	sb_adds(&msg, text);
	if (runner_stopping())
		sb_adds(&msg, SHUTDOWN_LOG);
	if (db_exec(j->db, "UPDATE jobv2 SET status = " SQ(S_FAILED) ", end_timestamp = $1, log = $2 WHERE id = $3",
		    (db_param_t[]){ P_TS(now), P_TEXT(msg.buf), P_INT(j->a.job_id) }, 3, NULL))
		log_error("job %lld: cannot mark it failed: %s", (long long)j->a.job_id, db_errmsg(j->db));
	sb_release(&msg);
}

static void job_run(job_t *j)
{
	sb_t err = SB_INIT;
	db_res_t *jr = NULL, *dr = NULL, *wr = NULL, *tr = NULL;
	json_t *attr_f = NULL, *type_f = NULL;
	joblist_t *images = NULL;
	char *working_dir = NULL;
	for (int attempt = 0; attempt < 50 && !j->db; attempt++) {
		sb_reset(&err);
		if (!(j->db = db_open(0, &err)))
			usleep(100000);
	}
	if (!j->db) {
		log_error("job %lld: cannot open the database: %s", (long long)j->a.job_id, err.buf);
		goto out;
	}
	if (db_exec(j->db,
		    "SELECT working_dir, working_dir_user, first_task_index, last_task_index, attribute_filters, type_filters "
		    "FROM jobv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.job_id) }, 1, &jr) ||
	    !db_nrows(jr)) {
		log_error("JobV2 %lld not found.", (long long)j->a.job_id);
		goto out;
	}
	if (db_exec(j->db, "SELECT name, zarr_dir FROM datasetv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.dataset_id) }, 1, &dr) ||
	    db_exec(j->db, "SELECT name FROM workflowv2 WHERE id = $1", (db_param_t[]){ P_INT(j->a.workflow_id) }, 1, &wr) ||
	    !db_nrows(dr) || !db_nrows(wr)) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Cannot fetch dataset %lld and/or workflow %lld (as part of job %lld).", (long long)j->a.dataset_id,
			(long long)j->a.workflow_id, (long long)j->a.job_id);
		log_error("%s", m.buf);
		fail_job(j, m.buf);
		sb_release(&m);
		goto out;
	}
	const struct executor_ops *ops = executor_for(j->a.resource_type);
	if (!ops) {
		sb_t m = SB_INIT;
		sb_addf(&m, "UNKNOWN ERROR in Fractal job %lld\nTRACEBACK:\nNotImplementedError: the '%s' runner is not "
			    "available in this server (only 'local' and 'slurm_sudo' are).\n", (long long)j->a.job_id, j->a.resource_type);
		fail_job(j, m.buf);
		sb_release(&m);
		goto out;
	}
	working_dir = xstrdup(db_text(jr, 0, 0));
	if (mkdir_parents(working_dir) || mkdir(working_dir, 0755)) {
		int e = errno;
		sb_t m = SB_INIT;
		sb_addf(&m, "%s error while creating local job folder. Original error: ", os_error_type(e));
		os_error(&m, e, working_dir);
		log_error("%s", m.buf);
		fail_job(j, m.buf);
		sb_release(&m);
		free(working_dir);
		working_dir = NULL; /* upstream zips anyway; there is nothing of ours to zip */
		goto out;
	}
	const char *wf_name = db_text(wr, 0, 0);
	sb_t log_path = SB_INIT;
	sb_addf(&log_path, "%s/workflow.log", working_dir);
	j->log = fopen(log_path.buf, "a");
	if (j->log)
		fcntl(fileno(j->log), F_SETFD, FD_CLOEXEC);
	wlog(j, "INFO", "Start execution of workflow \"%s\"; more logs at %s", wf_name, log_path.buf);
	wlog(j, "DEBUG", "Resource name: %s", j->a.resource_name);
	wlog(j, "DEBUG", "Profile name: %s", j->a.profile_name);
	wlog(j, "DEBUG", "Username: %s", j->a.profile_username ? j->a.profile_username : "None");
	wlog(j, "DEBUG", "job.id: %lld", (long long)j->a.job_id);
	wlog(j, "DEBUG", "job.working_dir: %s", working_dir);
	wlog(j, "DEBUG", "job.working_dir_user: %s", db_text(jr, 0, 1) ? db_text(jr, 0, 1) : "None");
	wlog(j, "DEBUG", "job.first_task_index: %lld", (long long)db_int(jr, 0, 2));
	wlog(j, "DEBUG", "job.last_task_index: %lld", (long long)db_int(jr, 0, 3));
	wlog(j, "DEBUG", "START workflow \"%s\"", wf_name);

	jerr_t je = { 0 };
	sb_init(&je.msg, 0);
	int rc = -1;
	if (wf_tasks_query(j, &tr)) {
		jerr_set(&je, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
	} else {
		int n = db_nrows(tr);
		int first = (int)db_int(jr, 0, 2), last = (int)db_int(jr, 0, 3);
		if (first < 0 || last > n - 1 || first > last) {
			jerr_set(&je, JE_UNKNOWN, 0, "ValueError", "Invalid first_task_index=%d or last_task_index=%d (num_tasks=%d)",
				 first, last, n);
		} else {
			/* the text only while it is scanned (it can be large) */
			sb_t le = SB_INIT;
			char version[64], *text = NULL;
			/* the token before the text: a commit in between shows */
			uint64_t self = 0;
			int have_self = db_self_change_token(j->db, &self) == 0;
			/* the cache's index when it has one (shared, not a
			 * scan of its own: at 10^6 images a second index of
			 * ~350 MB and a second of scan), else the text */
			images = joblist_from_cache(j, have_self, self);
			if (!images) {
				int vrc = db_row_version(j->db, "datasetv2", "images", j->a.dataset_id, version, &text);
				if (vrc < 0)
					jerr_set(&je, JE_UNKNOWN, 0, "DatabaseError", "%s", db_errmsg(j->db));
				else if (!(images = joblist_load(vrc ? text : NULL, &le)))
					/* never overwrite a list we cannot read */
					jerr_set(&je, JE_UNKNOWN, 0, "ValueError",
						 "the images of dataset %lld cannot be read: %s", (long long)j->a.dataset_id,
						 le.buf);
				else if (vrc)
					joblist_loaded(images, version, have_self, self);
			}
			free(text);
			sb_release(&le);
			attr_f = jparse(db_text(jr, 0, 4));
			type_f = jparse(db_text(jr, 0, 5));
			if (!attr_f)
				attr_f = json_object();
			if (!type_f)
				type_f = json_object();
			j->working_dir = working_dir;
			j->working_dir_user = db_text(jr, 0, 1);
			j->ex = images ? ops->open(j, &je) : NULL;
			if (j->ex) {
				j->ex->ops = ops;
				j->ex->job = j;
				rc = wf_execute(j, tr, first, last, working_dir, db_text(dr, 0, 1), images, type_f, attr_f,
						&je);
				ops->close(j->ex);
				j->ex = NULL;
			}
		}
	}
	if (!rc) {
		wlog(j, "INFO", "End execution of workflow \"%s\"; more logs at %s", wf_name, log_path.buf);
		wlog(j, "DEBUG", "END workflow \"%s\"", wf_name);
		sb_t content = SB_INIT;
		sb_read_file(log_path.buf, &content);
		char now[40];
		utc_now_iso(now, sizeof(now));
		if (db_exec(j->db, "UPDATE jobv2 SET status = " SQ(S_DONE) ", end_timestamp = $1, log = $2 WHERE id = $3",
			    (db_param_t[]){ P_TS(now), P_TEXT(content.buf), P_INT(j->a.job_id) }, 3, NULL))
			log_error("job %lld: cannot mark it done: %s", (long long)j->a.job_id, db_errmsg(j->db));
		sb_release(&content);
	} else if (je.kind == JE_JOB) {
		wlog(j, "DEBUG", "FAILED workflow \"%s\", JobExecutionError.", wf_name);
		wlog(j, "INFO", "Workflow \"%s\" failed (JobExecutionError).", wf_name);
		sb_t m = SB_INIT;
		sb_addf(&m, "JOB ERROR in Fractal job %lld:\nTRACEBACK:\nJobExecutionError\n", (long long)j->a.job_id);
		if (je.has_info)
			sb_addf(&m, "\n%s\n\n", je.msg.buf);
		else
			sb_adds(&m, je.msg.buf);
		fail_job(j, m.buf);
		sb_release(&m);
	} else {
		wlog(j, "DEBUG", "FAILED workflow \"%s\", unknown error.", wf_name);
		wlog(j, "INFO", "Workflow \"%s\" failed (unkwnon error).", wf_name);
		sb_t m = SB_INIT;
		/* there is no Python traceback here: the exception's type and text */
		sb_addf(&m, "UNKNOWN ERROR in Fractal job %lld\nTRACEBACK:\n%s: %s\n", (long long)j->a.job_id,
			je.type ? je.type : "Exception", je.msg.buf);
		fail_job(j, m.buf);
		sb_release(&m);
	}
	sb_release(&je.msg);
	sb_release(&log_path);
	if (j->log) {
		fclose(j->log);
		j->log = NULL;
	}
out:
	if (working_dir)
		zip_folder_and_remove(working_dir);
	free(working_dir);
	joblist_free(images);
	json_decref(attr_f);
	json_decref(type_f);
	db_res_free(jr);
	db_res_free(dr);
	db_res_free(wr);
	db_res_free(tr);
	sb_release(&err);
}

static void job_free(job_t *j)
{
	db_close(j->db);
	for (int i = 0; i < 6; i++)
		free(j->strings[i]);
	json_decref(j->a.runner_config);
	free(j);
}

static void job_thread(bgjob_t *bg, void *arg)
{
	job_t *j = arg;
	j->bg = bg;
	job_run(j);
	job_free(j);
	/* a large job's image lists and units are freed now, but glibc keeps the
	 * pages of this thread's arena: give them back to the system */
	malloc_trim(0);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int runner_submit(const runner_job_t *a)
{
	job_t *j = xcalloc(1, sizeof(*j));
	j->a = *a;
	j->a.user_cache_dir = j->strings[0] = dup_or_null(a->user_cache_dir);
	j->a.resource_name = j->strings[1] = dup_or_null(a->resource_name);
	j->a.resource_type = j->strings[2] = dup_or_null(a->resource_type);
	j->a.profile_name = j->strings[3] = dup_or_null(a->profile_name);
	j->a.profile_username = j->strings[4] = dup_or_null(a->profile_username);
	j->a.runner_config = json_deep_copy(a->runner_config);
	snprintf(j->logger, sizeof(j->logger), "WF%lld_job%lld", (long long)a->workflow_id, (long long)a->job_id);
	const char *why;
	if (bgjob_start(&reg, a->job_id, job_thread, j, &why)) {
		log_error("job %lld: not started: %s", (long long)a->job_id, why);
		sb_t err = SB_INIT, text = SB_INIT;
		sb_addf(&text, "Could not start the job: %s.", why);
		j->db = db_open(0, &err);
		if (j->db)
			fail_job(j, text.buf);
		else
			log_error("job %lld: cannot open the database to mark it failed: %s", (long long)a->job_id, err.buf);
		sb_release(&err);
		sb_release(&text);
		job_free(j);
		return -1;
	}
	return 0;
}

/* Marks jobs failed (with their latest run and its unfinished units). */
static int mark_failed(db_t *db, int64_t job_id, const char *suffix)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r = NULL;
	int rc = db_begin(db) ||
		 db_exec(db,
			 "UPDATE jobv2 SET status = " SQ(S_FAILED) ", end_timestamp = $1, log = COALESCE(log, '') || $2 "
			 "WHERE id = $3 AND status = " SQ(S_SUBMITTED) " RETURNING id",
			 (db_param_t[]){ P_TS(now), P_TEXT(suffix), P_INT(job_id) }, 3, &r);
	int changed = !rc && db_nrows(r) > 0;
	db_res_free(r);
	if (!rc && changed)
		rc = db_exec(db,
			     "UPDATE historyunit SET status = " SQ(S_FAILED) " WHERE status = " SQ(S_SUBMITTED)
			     " AND history_run_id IN (SELECT id FROM historyrun WHERE job_id = $1 AND status = "
			     SQ(S_SUBMITTED) ")",
			     (db_param_t[]){ P_INT(job_id) }, 1, NULL) ||
		     db_exec(db, "UPDATE historyrun SET status = " SQ(S_FAILED) " WHERE job_id = $1 AND status = "
			     SQ(S_SUBMITTED),
			     (db_param_t[]){ P_INT(job_id) }, 1, NULL);
	if (rc || db_commit(db)) {
		log_error("cannot mark job %lld failed: %s", (long long)job_id, db_errmsg(db));
		db_rollback(db);
		return -1;
	}
	return changed;
}

int runner_recover(db_t *db)
{
	db_res_t *r = NULL;
	if (db_exec(db, "SELECT id, working_dir FROM jobv2 WHERE status = " SQ(S_SUBMITTED) " ORDER BY id", NULL, 0, &r))
		return -1;
	int n = 0;
	for (int i = 0; i < db_nrows(r); i++) {
		int64_t id = db_int(r, i, 0);
		/* a server killed with SIGKILL leaves its tasks running (under
		 * PID 1): stop them first, so that a resubmitted job does not run
		 * beside them on the same dataset; its SLURM jobs too */
		sb_t text = SB_INIT;
		int stopped = exec_local_stop_leftovers(db_text(r, i, 1), &text);
		if (stopped)
			log_warning("Job %lld: stopped %d task process group(s) left running by the previous server process.",
				    (long long)id, stopped);
		sb_adds(&text, "\nJob marked as failed at server start-up: it was still 'submitted' when the previous "
			       "server process stopped, so its execution was interrupted.\n");
		exec_slurm_cancel_leftover(db, id, &text);
		int c = mark_failed(db, id, text.buf);
		sb_release(&text);
		if (c > 0) {
			log_warning("Job %lld was still 'submitted' at start-up: marked as failed.", (long long)id);
			n++;
		}
	}
	db_res_free(r);
	return n;
}

/* ---- shutdown, in the phases cli/start.c runs against its one deadline ---- */

int runner_stop(void)
{
	int n = bgjob_stop(&reg);
	if (n)
		log_warning("Shutdown: stopping %d running job(s)", n);
	shutdown_executors(0);
	return n;
}

int runner_wait(int64_t deadline_usec)
{
	return bgjob_wait(&reg, deadline_usec);
}

void runner_kill(void)
{
	if (!bgjob_signal(&reg, SIGKILL))
		return;
	shutdown_executors(1);
}

int runner_fail_leftovers(void)
{
	size_t n;
	int64_t *left = bgjob_alive_ids(&reg, &n);
	if (!n)
		return 0;
	log_error("Shutdown: %zu job(s) did not end in time: marking them failed", n);
	sb_t err = SB_INIT;
	db_t *db = db_open(0, &err);
	for (size_t i = 0; db && i < n; i++)
		mark_failed(db, left[i], SHUTDOWN_LOG);
	if (!db)
		log_error("Shutdown: cannot open the database to mark %zu job(s) failed: %s", n, err.buf);
	db_close(db);
	sb_release(&err);
	free(left);
	return (int)n;
}
