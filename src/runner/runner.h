/* runner.h — job execution, the public door of src/runner/ (upstream's
 * runner/v2/submit_workflow.py, runner.py, runner_functions.py and
 * executors/); used by api/job.c (submit), cli/start.c (recover) and
 * http/server.c (shutdown). internal.h lists the files behind it.
 *
 * The submit route creates the job row and hands the job to
 * runner_submit(); from then on the job lives in a thread of its own, with
 * its own database connection, off the request path: it creates the
 * working folder, runs the workflow tasks in order (their units through the
 * executor the resource type picks, executor.h; with the local one each
 * unit is a real subprocess without a shell, stdout and stderr to its log
 * file), writes history rows, the dataset's images and the accounting
 * records as upstream does, ends the job `done` or `failed` with upstream's
 * log texts, and zips the folder. The registries of running jobs and task
 * processes grow with their number: a busy server never loses track of one.
 *
 * Crash safety (upstream's local backend leaves running jobs `submitted`
 * forever; we do not):
 *   - runner_stop() and the phases after it, when the server stops, ask
 *     every executor to stop its units (local: SIGTERM to the process group
 *     of every running task), let each job end (its unit fails with
 *     "returncode=-15", the job fails), and append
 *     "\nJob stopped due to app shutdown\n" to the log of every job that
 *     failed meanwhile; units still running at the deadline
 *     (FRACTAL_GRACEFUL_SHUTDOWN_TIME after the signal) get SIGKILL, and
 *     jobs still running a few seconds later are marked failed by the main
 *     thread (cli/start.c owns the deadline).
 *   - runner_recover(), called by `start` before serving, marks every job
 *     still `submitted` (the previous process was killed without a chance
 *     to clean up) as failed with a log line saying so, together with its
 *     latest history run and that run's unfinished units. `start` calls it
 *     only while it holds the database's server lock (db_server_lock), so
 *     that a second server does not fail the jobs the first one runs. */
#ifndef RUNNER_H
#define RUNNER_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"

typedef struct runner_job {
	int64_t job_id, workflow_id, dataset_id, user_id;
	const char *user_cache_dir;    /* FRACTAL_CACHE_DIR of the tasks */
	int64_t resource_id;
	const char *resource_name, *resource_type;
	const char *profile_name, *profile_username;  /* username may be NULL */
	json_t *runner_config;         /* resource.jobs_runner_config (borrowed) */
} runner_job_t;

/* Starts the job's thread. Everything in job is copied. 0, or -1 when no
 * thread could be started (the job is then marked failed). */
int runner_submit(const runner_job_t *job);

/* See above. Returns the number of jobs marked failed, or -1. */
int runner_recover(db_t *db);

/* Shutdown, in phases, so that cli/start.c runs them beside collection's
 * and the request drain against one deadline:
 *   runner_stop()   no job starts from now on (runner_submit fails them),
 *                   no unit starts, every running unit is asked to end
 *                   (SIGTERM to its process group; executors' shutdown(0));
 *                   returns the number of running jobs;
 *   runner_wait()   until every job thread has ended or the deadline (on
 *                   mono_usec()); returns the number still running;
 *   runner_kill()   SIGKILL to every unit still running (shutdown(1));
 *   runner_fail_leftovers()  marks the jobs still running failed (with
 *                   the shutdown line) from the calling thread; returns
 *                   their number. */
int runner_stop(void);
int runner_wait(int64_t deadline_usec);
void runner_kill(void);
int runner_fail_leftovers(void);

#endif
