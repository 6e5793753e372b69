/* executor.h — where a job's units run: the executor interface.
 *
 * A unit is one invocation of a task command (upstream's "submit" runs one,
 * "multisubmit" a list). The task kinds (kinds.c) prepare units: args, file
 * paths, history row. An executor runs them and reports each one finished,
 * with its parsed output or its exception. Nothing above this interface
 * knows where units run; the resource type picks the executor in one table
 * (executor_for() in job.c), as db_ops keeps the engine out of api/ and git's
 * ref_storage_be keeps the ref backend out of refs.c. Today's backend:
 *   exec_local.c   subprocesses in their own process groups on this machine,
 *                  chunked parallelism as upstream's LocalRunner
 *   exec_slurm.c   SLURM over sudo (spec-tasks-runners.md §7.4, §7.7):
 *                  submit() groups a batch into SLURM jobs and sbatches
 *                  them as the profile's user, wait() polls squeue (one call
 *                  for every job of the server), reads the outputs back and
 *                  reports the units of every finished SLURM job
 *   exec_slurm.c   also SLURM over SSH (§7.6): the same, with every command
 *                  of the user run over SSH (util/host_ssh.c), the batch's
 *                  subfolder sent as a tar.gz and the outputs fetched back
 *
 * The contract:
 *   - One instance per job, opened by the job driver after the job folder and
 *     workflow.log exist, closed when the job ends. Every call on an instance
 *     comes from that job's thread (the executor needs no locking for its
 *     instance state). Only shutdown() is called from another thread.
 *   - submit() takes a batch (the units of one task phase: one non-parallel
 *     or init unit, or the units of a parallel/compute phase, all with the
 *     same command and subfolder) and returns at once or after sending the
 *     batch off; it may start them lazily. It never fails as a whole: a unit
 *     that cannot start is finished with its exception. At most one batch is
 *     outstanding per instance (upstream: "no jobs left from a previous call").
 *   - wait() blocks until at least one submitted unit has finished, writes up
 *     to cap of them to done[] and returns their number, or 0 when none is
 *     outstanding. Every submitted unit is reported exactly once. A finished
 *     unit has state UNIT_FINISHED and either exc set (the exception text as
 *     upstream prints it) or result (the output JSON, NULL when the task
 *     wrote none); the caller validates the output.
 *   - Units belong to the caller; the executor borrows them from submit()
 *     until wait() reports them, and stores result and exc in them (freed by
 *     unit_free()). The files named in a unit are local paths: an executor
 *     that runs elsewhere copies its args out and log and output back before
 *     reporting the unit.
 *   - cancel() asks the instance's outstanding units to end: pending ones
 *     finish without starting, running ones are signalled (SLURM: scancel).
 *     It returns at once; the units are still reported by wait(). The job
 *     driver's per-job stop; not called yet (the local runner, like
 *     upstream's, has no per-job stop, and server shutdown goes through
 *     shutdown()).
 *   - shutdown(force) is per executor type, for every instance at once, and
 *     may be called from any thread. The runner's stopping flag
 *     (runner_stopping()) is set before; from then on no instance starts a
 *     new unit (local: they finish with "Task not started: the server is
 *     shutting down."). force 0: ask every running unit to end (SIGTERM, scancel);
 *     force 1: the caller's deadline has passed, end them now (SIGKILL) so
 *     that every wait() returns promptly. The deadline is the caller's
 *     (cli/start.c, through runner_stop() and runner_kill()); an executor keeps
 *     no timer of its own. NULL: nothing to do beyond what the job's
 *     background job does (local: its process groups are signalled by
 *     util/bgjob). */
#ifndef RUNNER_EXECUTOR_H
#define RUNNER_EXECUTOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sb.h"

struct job;
struct wft;
struct jerr;

enum unit_state { UNIT_PENDING, UNIT_RUNNING, UNIT_FINISHED };

typedef struct unit {
	/* set by the task kind */
	json_t *args;
	sb_t args_path, log_path, out_path;   /* <subfolder>/<prefix>-args.json, -log.txt, -metadiff.json */
	int64_t hu_id;                        /* its historyunit row */
	/* set by the executor */
	enum unit_state state;
	int64_t handle;     /* the executor's own (local: the process group id) */
	json_t *result;     /* NULL: no output file; else the parsed JSON */
	char *exc;          /* the exception text, or NULL */
} unit_t;

/* Frees what a unit holds (not the unit itself). */
void unit_free(unit_t *u);
/* Finishes u with the exception msg (copied). */
void unit_fail(unit_t *u, const char *msg);

typedef struct exec_batch {
	unit_t *units;           /* n units, borrowed until each is reported */
	size_t n;
	const char *command;     /* the task's command; NULL is printed "None" */
	const struct wft *task;  /* the workflow task (meta, name) */
	int parallel;            /* 0: submit (one unit), 1: multisubmit */
	int64_t per_batch;       /* configure()'s answer for this batch */
} exec_batch_t;

typedef struct executor executor_t;

#define EXEC_CONFIG_FAILED (-2)

struct executor_ops {
	const char *resource_type;
	/* A new instance for job j, or NULL with err set (the job then fails
	 * with that error). */
	executor_t *(*open)(struct job *j, struct jerr *err);
	/* A phase's configuration, taken before its units and history rows
	 * exist (upstream's get_runner_config): parallel 0 for a non-parallel
	 * or init unit (n = 1), 1 for the n units of a parallel or compute
	 * phase. Returns how many of them go in one batch (local:
	 * parallel_tasks_per_job; SLURM: tasks_per_job), also the batch index
	 * in the units' file names: -1 for no limit (one batch), 0 only where
	 * the configuration says so (kinds.c then fails the phase's units with
	 * upstream's "range() arg 3 must not be zero" without submitting); or
	 * EXEC_CONFIG_FAILED with err set (SLURM: a SlurmConfigError), and the
	 * task fails with that exception before any unit. The next submit()
	 * runs under this configuration. */
	int64_t (*configure)(executor_t *ex, const struct wft *w, int parallel, size_t n, struct jerr *err);
	void (*submit)(executor_t *ex, const exec_batch_t *b);
	size_t (*wait)(executor_t *ex, unit_t **done, size_t cap);
	void (*cancel)(executor_t *ex);
	/* The executor's error log of the last batch, for the job's
	 * executor_error_log after every task (SLURM: the first finished SLURM
	 * job's stderr that is more than srun's step-creation noise), or NULL.
	 * Borrowed until the next submit(). */
	const char *(*error_log)(executor_t *ex);
	/* After every submitted unit was reported; frees the instance. */
	void (*close)(executor_t *ex);
	void (*shutdown)(int force);
};

/* What every instance starts with (backends embed it first); the job
 * driver fills it after open(). */
struct executor {
	const struct executor_ops *ops;
	struct job *job;
};

extern const struct executor_ops exec_local_ops;
extern const struct executor_ops exec_slurm_sudo_ops;
extern const struct executor_ops exec_slurm_ssh_ops;

/* At start-up, for a job a dead server left `submitted`: scancels the SLURM
 * jobs its accounting records name (as the profile's user) and appends a
 * line saying so to note. 0, or -1 (logged). */
struct db;
int exec_slurm_cancel_leftover(struct db *db, int64_t job_id, sb_t *note);

/* At start (runner_recover()), for a job a killed server left running:
 * stops the local units' process groups recorded in its working_dir that
 * are still the task's (SIGTERM, then SIGKILL after 3 s), removes the
 * records, and appends one line per group stopped to report. Returns how
 * many it stopped. */
struct sb;
int exec_local_stop_leftovers(const char *working_dir, struct sb *report);

/* The executor of a resource type, or NULL when this server has none for it
 * (job.c; the one place that decides). */
const struct executor_ops *executor_for(const char *resource_type);

#endif
