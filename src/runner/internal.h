/* internal.h — what the runner's own files share; nothing outside
 * src/runner/ includes it (runner.h is the public door). The files, top to
 * bottom, in upstream's words:
 *   job.c        submit_workflow: the job thread, workflow.log, final status,
 *                zip, recovery, shutdown; picks the executor
 *   workflow.c   execute_tasks: per-task filtering of the image list, the
 *                HistoryRun, dispatch, merging outputs into the dataset
 *   kinds.c      runner_functions.py: non-parallel / parallel / compound
 *                tasks turned into units, run through the executor
 *   output.c     task_interface.py: validation of task and init-task outputs
 *   hist.c       the history writes: historyrun / historyunit rows and the
 *                image cache
 *   executor.h   the executor interface: where units run
 *   exec_local.c executors/local/runner.py (executor.h's local backend)
 *   slurm_config.c, slurm_script.c  executors/slurm_common's pure logic
 *                (slurm_config.h: SlurmConfig, batching, sbatch script)
 *   common.c     small helpers (OSError texts, whole-file reads, id sets)
 * Errors travel as a jerr_t: upstream's JobExecutionError (with or without
 * `info`) or any other exception ("UNKNOWN ERROR"). */
#ifndef RUNNER_INTERNAL_H
#define RUNNER_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "db/db.h"
#include "model/state.h"
#include "runner/executor.h"
#include "runner/runner.h"
#include "util/bgjob.h"
#include "util/sb.h"

#define IMAGE_STATUS_KEY "__wftask_dataset_image_status__"

/* ---- errors ---- */

enum { JE_NONE, JE_JOB, JE_UNKNOWN };
typedef struct jerr {
	int kind;
	int has_info;      /* JobExecutionError(info=...) */
	const char *type;  /* exception type for UNKNOWN ERROR */
	sb_t msg;
} jerr_t;

void jerr_set(jerr_t *e, int kind, int has_info, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* ---- the job (job.c) ---- */

typedef struct job {
	runner_job_t a;
	char *strings[6];
	db_t *db;                  /* the job thread's own connection */
	FILE *log;                 /* workflow.log */
	char logger[64];           /* WF<wf>_job<id> */
	executor_t *ex;            /* while the workflow runs */
	bgjob_t *bg;               /* its background job (util/bgjob.h) */
	/* the job folder and the user's side of it (SLURM: where the units
	 * run); set before the executor is opened, borrowed */
	const char *working_dir, *working_dir_user;
} job_t;

/* A workflow.log line at level (DEBUG, INFO, WARNING, ERROR). */
void wlog(job_t *j, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs the database error of what, rolls back; -1. */
int job_db_fail(job_t *j, const char *what);
/* job_db_fail(), then err is the DatabaseError with the engine's text. */
void jerr_db(job_t *j, const char *what, jerr_t *err);
/* True once the server shuts down (runner_stop()). */
int runner_stopping(void);

static inline json_t *jparse(const char *s)
{
	return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

/* ---- one workflow task (workflow.c) ---- */

typedef struct wft {
	int64_t id, workflow_id, order, task_id, tg_id;
	const char *name, *type, *task_type, *cmd_np, *cmd_p, *version, *alias;
	json_t *meta_np, *meta_p, *args_np, *args_p, *type_filters, *input_types, *output_types;
	const char *pkg_name, *tg_version;
} wft_t;

/* The workflow's tasks in order (the columns wf_execute() reads). */
int wf_tasks_query(job_t *j, db_res_t **out);
/* ---- the job's image list (joblist.c) ---- */

typedef struct joblist joblist_t;
/* The list scanned from the dataset's stored text (NULL or "" reads as
 * empty), or NULL with the reason in err. Free with joblist_free. */
joblist_t *joblist_load(const char *text, sb_t *err);
/* The job's list from the images cache's index of the dataset when it can
 * have it (imglist_share: no read or scan of the text), current at least
 * since the connection's db_self_change_token was self (have_self); NULL
 * when the cache cannot (a database error, no row, a list that does not
 * scan), and the caller loads the text itself. */
joblist_t *joblist_from_cache(job_t *j, int have_self, uint64_t self);
void joblist_free(joblist_t *l);
/* Marks l as the text the row held at that version, with the connection's
 * db_self_change_token read before the text (have_self 0: none). */
void joblist_loaded(joblist_t *l, const char *version, int have_self, uint64_t self);
/* 1 when the row still holds l's list as the job last read or wrote it
 * (no change to l since, and no other connection's commit since on
 * SQLite, or the same row version on PostgreSQL): a write of it would
 * store the same text, and is skipped. 0: write it. */
int joblist_stored_current(job_t *j, joblist_t *l);
/* Appends {"zarr_url": ...} of every image matching both filters to
 * filtered; returns the number matching the type filters alone. */
size_t joblist_filter(joblist_t *l, json_t *type_filters, json_t *attribute_filters, json_t *filtered);
/* Gives every image the status attribute of its latest history unit for
 * that workflow task (those first), "unset" for the others: 0, or -1
 * with the database's message in err. */
int joblist_enrich(job_t *j, joblist_t *l, int64_t wftask_id, sb_t *err);
/* A merged TaskOutput applied as upstream's post-task block: the number
 * of new images, or -1 with err set (the list unchanged). */
long joblist_apply(joblist_t *l, json_t *output, json_t *output_types, const char *zarr_dir, jerr_t *err);
/* Writing the list: joblist_store inside the job's transaction (0, or -1
 * on a database error), then joblist_store_finish after it, which shares
 * the committed list's index with the images cache. */
typedef struct joblist_write {
	sb_t text;
	char version[64];
	uint64_t self;
	int have_self;
} joblist_write_t;
int joblist_store(job_t *j, joblist_t *l, joblist_write_t *w);
void joblist_store_finish(job_t *j, joblist_t *l, joblist_write_t *w, int committed);

/* execute_tasks over rows first..last of wr: 0, or -1 with err set. images
 * is the dataset's list. */
int wf_execute(job_t *j, db_res_t *wr, int first, int last, const char *root, const char *zarr_dir,
	       joblist_t *images, json_t *job_type_filters, json_t *attribute_filters, jerr_t *err);
/* zarr_url -> index of its first occurrence (new object). */
json_t *images_index(json_t *images);

/* ---- task kinds (kinds.c) ---- */

/* An outcome of one unit: the validated TaskOutput, or an exception. */
typedef struct outcome {
	json_t *output;
	char *exc;
	int invalid_output;
} outcome_t;

typedef struct dispatch {
	outcome_t *out;
	size_t n;
	int64_t num_tasks;
} dispatch_t;

void dispatch_free(dispatch_t *d);
/* Runs w by its task type over the filtered images (run_task_*): fills d,
 * or -1 with err set for what escapes the dispatch. */
int kinds_run(job_t *j, const char *root, const wft_t *w, json_t *images, const char *zarr_dir, int64_t run_id,
	      dispatch_t *d, jerr_t *err);

/* ---- output validation (output.c) ---- */

/* _process_task_output of one finished unit into o. A non-object result
 * makes TaskOutput(**result) raise a TypeError, which escapes the dispatch:
 * -1 with its text in typeerr. */
int output_process(unit_t *u, outcome_t *o, sb_t *typeerr);
/* InitTaskOutput(**result): the parallelization list, or NULL with
 * upstream's message in msg. result must be an object. */
json_t *output_init_validate(json_t *result, sb_t *msg);
/* deduplicate_list: exact duplicates removed, first kept. Steals list. */
json_t *output_dedupe(json_t *list);

/* ---- history writes (hist.c); statements only, transactions are the caller's ---- */

/* status from -> to and has_warnings of a unit (from its log file) */
int hist_unit_status(job_t *j, int64_t hu_id, enum hist_state from, enum hist_state to, const char *logfile);
/* has_warnings of every unit (only ever set to true), then the submitted
 * units ids to status `to` */
int hist_units_status_bulk(job_t *j, const int64_t *ids, size_t n, enum hist_state to, unit_t *units, size_t nunits,
			   unit_t *init);
/* a new 'submitted' unit over urls: its id, or -1 */
int64_t hist_unit_insert(job_t *j, int64_t run_id, const char *logfile, json_t *urls);
/* every unit of a run to 'failed' */
int hist_run_units_failed(job_t *j, int64_t run_id);
/* a new 'submitted' run: its id, or -1 */
int64_t hist_run_insert(job_t *j, int64_t wftask_id, int64_t task_id, const char *wftask_dump,
			const char *task_group_dump, int64_t num_available);
/* a submitted run to status `to`, in its own statement; on error logs and
 * rolls back (-1) */
int hist_run_status(job_t *j, int64_t run_id, enum hist_state to);
/* bulk_upsert_image_cache_fast: every url -> unit id (parallel arrays) */
int hist_cache_upsert(job_t *j, int64_t wftask_id, json_t *urls, const int64_t *unit_ids);
/* the cache row of (dataset, wftask, url) */
int hist_cache_delete(job_t *j, int64_t wftask_id, const char *url);

/* ---- small helpers (common.c) ---- */

/* A growable set of ids (jobs, process groups), in no order; it never
 * refuses one (allocation failure aborts). The caller locks. */
typedef struct idset {
	int64_t *v;
	size_t n, cap;
} idset_t;

void idset_add(idset_t *s, int64_t id);
/* Removes one occurrence; frees the storage when the set becomes empty. */
void idset_remove(idset_t *s, int64_t id);


/* grep -i -q warning, streaming */
int file_has_warning(const char *path);
/* mkdir -p of path's parents (not path itself) */
int mkdir_parents(const char *path);
/* str(OSError) as Python prints it: "[Errno 17] File exists: '/x'" */
void os_error(sb_t *out, int err, const char *path);
/* the OSError subclass Python raises for errno err */
const char *os_error_type(int err);

#endif
