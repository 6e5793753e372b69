/* slurm_config.h — the pure logic of the SLURM executor (spec-tasks-runners.md
 * §7.3, §7.4), as upstream's runner/executors/slurm_common/ does it:
 *   slurm_config.c  get_slurm_config (the per-task SlurmConfig from the
 *                   resource's jobs_runner_config and the task's meta), the
 *                   batching heuristics (_batching.py), slurm_mem_to_MB, and
 *                   what the runner adds per job (account, worker_init)
 *   slurm_script.c  the sbatch script, the file names of a SLURM job, the
 *                   worker's input JSON, the parser of its output file,
 *                   the executor_error_log filter of a job's stderr, and
 *                   what squeue's states and sbatch's refusals mean (also
 *                   used by collect/pixi_slurm.c)
 * Nothing here touches the database, HTTP, files or processes: the executor
 * (exec_slurm.c) reads and writes, these functions only compute.
 *
 * Errors are upstream's exceptions: -1 (or the enum below) with the Python
 * type name and str(exception) in a slurm_err_t, so that the caller prints
 * them as upstream does ("<type>: <text>" for what escapes the dispatch, the
 * bare text for a unit's exception). Every string a slurm_config_t holds is
 * its own (malloc'd), freed by slurm_config_free().
 *
 * Deliberate deviations from upstream (comments at the code say why):
 *   - JSON null in the stored jobs_runner_config means "unset". Upstream
 *     stores a full model_dump of JobRunnerConfigSLURM, so every key of
 *     default_slurm_config / gpu_slurm_config counts as explicitly set and a
 *     gpu_slurm_config with "partition": null overrides the default
 *     partition with None (the SlurmConfig then fails to validate when a task
 *     has needs_gpu). Here a null is skipped like an absent key. Non-null
 *     values of the GPU set (its extra_lines [], shebang_line,
 *     use_mem_per_cpu, always present in a stored dump) still override the
 *     default ones, as upstream does with stored dumps.
 *   - Repeated extra_lines are removed keeping the first occurrence, in
 *     order; upstream goes through a set(), whose order is arbitrary.
 *   - Integers are int64: where Python's unbounded ints would carry on, the
 *     conversions fail (a ValueError, or the memory SlurmConfigError).
 *   - The runner configuration is taken as stored (validated when the
 *     resource was created): a missing default_slurm_config or
 *     batching_config shows as SlurmConfig's missing fields, not as
 *     JobRunnerConfigSLURM's error at the runner's construction. */
#ifndef RUNNER_SLURM_CONFIG_H
#define RUNNER_SLURM_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sb.h"

/* An optional integer that is None. */
#define SLURM_NONE INT64_MIN

/* The exception text of a unit whose SLURM job was scancelled at shutdown
 * (upstream's SHUTDOWN_ERROR_MESSAGE, a JobExecutionError). */
#define SLURM_SHUTDOWN_ERROR "Failed due to job-execution shutdown."

/* An exception as upstream raises it. type is static (NULL: no error),
 * named as the last line of Python's traceback names it: builtins bare
 * ("ValueError"), the others with their module (the three below); msg is
 * str(exception). */
#define SLURM_CONFIG_ERROR "fractal_server.runner.exceptions.SlurmConfigError"
#define SLURM_HEURISTICS_ERROR "fractal_server.runner.executors.slurm_common._batching.SlurmHeuristicsError"
#define SLURM_VALIDATION_ERROR "pydantic_core._pydantic_core.ValidationError"

typedef struct slurm_err {
	const char *type;
	sb_t msg;
} slurm_err_t;

#define SLURM_ERR_INIT { NULL, SB_INIT }
void slurm_err_release(slurm_err_t *e);

/* Upstream's SlurmConfig. Strings are NULL when None (partition and
 * shebang_line never are after slurm_config_get); integers SLURM_NONE. */
typedef struct slurm_config {
	char *partition;
	int64_t cpus_per_task;
	int64_t mem_per_task_MB;
	char *shebang_line;               /* "#!/bin/sh" unless configured */
	int use_mem_per_cpu;
	char *job_name, *constraint, *gres, *gpus, *time, *account, *nodelist, *exclude;
	int64_t nodes;
	char **extra_lines;               /* n_extra_lines lines, in order */
	size_t n_extra_lines;
	json_t *user_local_exports;       /* object str -> str (a reference of ours) */
	/* batching: SLURM_NONE (None) until slurm_batching() sets them */
	int64_t tasks_per_job, parallel_tasks_per_job;
	int64_t target_cpus_per_job, max_cpus_per_job, target_mem_per_job, max_mem_per_job;
	int64_t target_num_jobs, max_num_jobs;
} slurm_config_t;

/* _get_slurm_config_internal: the SlurmConfig of one task phase, from
 * runner_config (the resource's jobs_runner_config: default_slurm_config,
 * gpu_slurm_config, batching_config, user_local_exports), meta (the workflow
 * task's meta_non_parallel or meta_parallel; NULL or null: none) and the
 * task's name (job_name, spaces to "_"). All borrowed. 0 and *out filled, or
 * -1 with *out empty and e set: TypeError/ValueError (needs_gpu, cpus_per_task,
 * mem, extra_lines as Python reports them), SlurmConfigError (meta account,
 * memory strings), ValidationError ("N validation error(s) for SlurmConfig",
 * e.g. no partition anywhere). */
int slurm_config_get(json_t *runner_config, json_t *meta, const char *task_name, slurm_config_t *out,
		     slurm_err_t *e);

/* The heuristics of _batching.py for tot_tasks units (1 for a non-parallel
 * phase): sets c->tasks_per_job and c->parallel_tasks_per_job from the
 * meta's values (both or neither) or from the targets and maxima. 0, or -1
 * with e set (SlurmHeuristicsError, or ZeroDivisionError for a zero
 * cpus_per_task or mem from meta, as Python's // would). get_slurm_config
 * is slurm_config_get() then this. A phase's units then go to SLURM jobs
 * in consecutive batches of tasks_per_job (upstream's batch_size_or_one). */
int slurm_batching(slurm_config_t *c, int64_t tot_tasks, slurm_err_t *e);

/* The runner's _check_slurm_account, at its construction: a worker_init
 * line that starts with "#SBATCH --account=" is a RuntimeError (the job
 * fails). worker_init NULL: nothing to check. 0 or -1. */
int slurm_worker_init_check(const char *worker_init, slurm_err_t *e);

/* The runner's _enrich_slurm_config, before each submission: account (the
 * job's slurm_account) replaces c->account; NULL keeps the one of
 * default_slurm_config / gpu_slurm_config, as upstream does (only the meta
 * may not set one),
 * and worker_init's lines (split on "\n", so "" is one empty line) are
 * appended to the extra lines. A worker_init line equal to a configured
 * extra line makes slurm_script() fail, as upstream's does. */
void slurm_config_finish(slurm_config_t *c, const char *account, const char *worker_init);

/* Frees what c holds and leaves it empty (safe on an empty one). */
void slurm_config_free(slurm_config_t *c);

/* slurm_mem_to_MB of a JSON value: an integer (or a bool: Python's bool is
 * an int) comes back as it is, a string "<digits>[M|G|T]" in MB. Returns a
 * new reference, or NULL with e set (SlurmConfigError, or the TypeError /
 * IndexError / AttributeError / KeyError that Python raises for the other
 * types). */
json_t *slurm_mem_to_mb(json_t *raw, slurm_err_t *e);

/* Appends v in decimal: products of a configuration's integers are taken
 * in 128 bits, as Python's ints do not wrap (for the two files' messages
 * and script lines). */
void slurm_add_int128(sb_t *sb, __int128 v);

/* ---- one SLURM job (slurm_script.c) ---- */

/* What a submission script needs besides the config. Paths are the ones
 * the job sees (the user's side); all borrowed, none NULL. */
typedef struct slurm_job_script {
	const char *workdir;          /* the task subfolder: -D, and --err/--out in it */
	const char *prefix;           /* of the job's files: <prefix>-slurm-%j.err */
	const char *worker;           /* the worker command, before " --input-file <in>" */
	const char *user_cache_dir;   /* where user_local_exports point */
	size_t n;                     /* units in this job */
	const char *const *inputs;    /* their worker input and output files */
	const char *const *outputs;
} slurm_job_script_t;

/* The sbatch script of one SLURM job, exactly as upstream writes it (no
 * final newline), appended to out: shebang, #SBATCH lines (--ntasks is
 * min(n, parallel_tasks_per_job)), the other preamble lines, the echo lines,
 * one srun line per unit, wait. c must have been through slurm_batching().
 * 0, or -1 with e set: ValueError "self.extra_lines=[...] contains
 * repetitions", ZeroDivisionError (use_mem_per_cpu with cpus_per_task 0),
 * TypeError (parallel_tasks_per_job None). */
int slurm_script(const slurm_config_t *c, const slurm_job_script_t *j, sb_t *out, slurm_err_t *e);

/* File names of a SLURM job and its units (SlurmJob, SlurmTask), appended
 * to out, normalised as pathlib does:
 *   slurm_job_file:  <dir>/<prefix>-slurm-<what>, what "submit.sh",
 *                    "%j.out", "%j.err" (or the job id instead of %j)
 *   slurm_task_file: <dir>/<prefix>-<component>-<what>.json, what "input"
 *                    or "output" */
void slurm_job_file(sb_t *out, const char *dir, const char *prefix, const char *what);
void slurm_task_file(sb_t *out, const char *dir, const char *prefix, const char *component, const char *what);

/* The worker's input (RemoteInputData): a new object with python_version
 * (borrowed array [major, minor, micro]), fractal_server_version,
 * full_command ("<command> --args-json <args_file> --out-json
 * <metadiff_file>"; command NULL is printed None), metadiff_file_remote,
 * log_file_remote and user_cache_dir, in that order (the caller decrefs).
 * Upstream writes it with json.dump(indent=2): json_dumps() with
 * JSON_INDENT(2) | JSON_ENSURE_ASCII gives the same bytes. */
json_t *slurm_worker_input(json_t *python_version, const char *server_version, const char *command,
			   const char *args_file, const char *metadiff_file, const char *log_file,
			   const char *user_cache_dir);

/* _postprocess_single_task on the text of a unit's output file (text NULL:
 * it could not be read, and read_error is str() of the OSError):
 *   SLURM_OUT_RESULT      [true, x]: *result is x (a new reference; NULL
 *                         for null, which the task kinds read as None)
 *   SLURM_OUT_TASK_ERROR  [false, {"exc_type_name", "traceback_string"}]:
 *                         a TaskExecutionError, exc gets str(traceback_string)
 *   SLURM_OUT_JOB_ERROR   anything else: a JobExecutionError, exc gets
 *                         "ERROR, <str(the Python exception)>" (the caller
 *                         replaces it with SLURM_SHUTDOWN_ERROR when the
 *                         job was scancelled); a file that is not JSON says
 *                         Python's "Expecting value: ..." when empty or
 *                         blank, jansson's description otherwise
 * exc belongs to the caller; *result too (json_decref). */
enum slurm_outcome { SLURM_OUT_RESULT, SLURM_OUT_TASK_ERROR, SLURM_OUT_JOB_ERROR };
enum slurm_outcome slurm_output_parse(const char *text, size_t len, const char *read_error, json_t **result,
				      sb_t *exc);

/* _extract_slurm_error on the text of a job's stderr file: the lines that
 * do not contain (in any case) one of srun's step-creation messages, joined
 * as upstream joins them (each keeps its newline, and "\n" goes between),
 * stripped. 1 and the text appended to out, or 0 when nothing is left (or
 * the text is not UTF-8, which upstream's read fails on). */
int slurm_stderr_filter(const char *text, size_t len, sb_t *out);

/* 1 when the squeue/sacct state (len bytes at s) is one of upstream's
 * STATES_FINISHED (the job will not run again), else 0. */
int slurm_state_finished(const char *s, size_t len);
/* 1 when sbatch's stderr says the failure goes away by itself (a timeout,
 * no controller), so that the submission is worth retrying. */
int slurm_sbatch_transient(const char *msg);

#endif
