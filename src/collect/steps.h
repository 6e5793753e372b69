/* steps.h — inside collect/ only: the job of one task-group activity and
 * the steps that collection and the lifecycle actions share (upstream's
 * tasks/v2/utils_background.py, utils_templates.py, local/_utils.py and
 * tasks/utils.py): the job's log, the activity and task-group writes, the
 * host's files and commands with upstream's error texts, the templates,
 * the manifest and the task insertion.
 *
 * Every step returns 0, or -1 with the reason in j->err (the
 * `str(exception)` that upstream's failure handler logs), except the
 * void ones. The actions themselves are in pip.c and pixi.c; lifecycle.c
 * starts the jobs, dispatches them, handles failures and shuts down. */
#ifndef COLLECT_STEPS_H
#define COLLECT_STEPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "collect/collect.h"
#include "collect/templates.h"
#include "db/db.h"
#include "model/state.h"
#include "util/bgjob.h"
#include "util/host.h"
#include "util/sb.h"

#define TASK_GROUP_ID_FILENAME "fractal_task_group_id.txt"
#define SOURCE_DIR_NAME "source_dir"

/* The task group row, as the job read it (malloc'd strings, NULL for null). */
typedef struct tg {
	int64_t id, user_id, user_group_id, resource_id;
	int has_group, active;
	char *origin, *pkg_name, *version, *python_version, *pixi_version, *path, *venv_path, *archive_path,
		*pip_extras, *pinned_pre, *pinned_post, *env_info, *ts_created, *ts_last_used;
} tg_t;

/* One activity's job, owned by its thread (lifecycle.c frees it). */
typedef struct job {
	collect_req_t r;             /* copies: resource/profile referenced, file bytes owned */
	char *file_name, *file_data;
	bgjob_t *bg;
	db_t *db;
	host_t *host;                /* where the task group lives (local for local and slurm_sudo) */
	char logger[160];
	const char *action;          /* collect, deactivate, ... */
	sb_t log;                    /* the activity's whole log */
	sb_t err;                    /* the reason of a failure */
	enum activity_state state;   /* the activity's, as this job last wrote it (pending at first) */
	tg_t tg;
} job_t;

/* ---- log and failure ---- */

/* A line in the activity's log (every level) and in the server's log (at
 * FRACTAL_LOGGING_LEVEL), with the job's logger name. */
void cj_log(job_t *j, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets j->err (replacing what it held). */
void cj_fail(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- database (each write in a transaction of its own) ---- */

int cj_save_log(job_t *j);                                /* activity.log = the log so far */
/* The activity to state `to` (sm_change from j->state first) and the log;
 * ended: timestamp_ended too. */
int cj_set_state(job_t *j, enum activity_state to, int ended);
int cj_set_active(job_t *j, int active);
int cj_set_tg_text(job_t *j, const char *column, const char *value);
int cj_delete_tg(job_t *j);                               /* the row and its tasks */
/* Reads j->tg from the database: 1 loaded, 0 missing, -1 database error. */
int cj_tg_load(job_t *j);
void cj_tg_free(tg_t *t);
/* get_activity_and_task_group's debug lines about the task group. */
void cj_log_tg(job_t *j);

/* ---- files and commands on the job's host ---- */

int cj_exists(job_t *j, const char *path);   /* NULL: 0 */
int cj_mkdir(job_t *j, const char *path, int flags);
int cj_write_file(job_t *j, const char *path, const void *data, size_t len);
/* The whole file (malloc'd, *len its length when len is not NULL), or NULL. */
char *cj_read_file(job_t *j, const char *path, size_t *len);
int cj_rmtree(job_t *j, const char *path);
/* Removes the folder, logging the outcome; never fails (NULL: nothing). */
void cj_rmtree_nofail(job_t *j, const char *path);
/* execute_command_sync on an argv that is run as given, never re-split:
 * the command as upstream writes it (argv[0..shown-1] joined by spaces,
 * shown 0: all of argv) goes to the log and the error texts and is checked
 * by validate_cmd; env ("NAME=value", may be NULL) is added to the host's.
 * On success *out gets its stdout (malloc'd; out may be NULL). */
int cj_run_argv(job_t *j, char *const argv[], int shown, char *const env[], char **out);

/* ---- templates ----
 *
 * A template holds no value: it reads each one from its environment, always
 * inside double quotes ("$FRACTAL_INSTALL_STRING"), and lists from its
 * positional arguments, so that no user string is ever parsed as shell
 * (docs/security.md). The scripts written next to the task group therefore
 * show the variables' names where upstream's show their values. */

typedef struct script_var {
	const char *name, *value;
} script_var_t;

#define MAX_VARS 16

/* The variables of one action's scripts and their positional arguments
 * (borrowed), and the "<unix_ts>_<action>" prefix of their file names. */
typedef struct script_ctx {
	script_var_t var[MAX_VARS];
	int nvar;
	char *const *args;
	int nargs;
	char prefix[64];
} script_ctx_t;

void cj_var_add(script_ctx_t *c, const char *name, const char *value);  /* NULL value: "None" */
void cj_script_prefix(script_ctx_t *c, const char *action);
/* _customize_and_run_template: the script written to <path>/scripts/ and
 * run as `bash <script> <args...>` with the variables in its environment;
 * *out gets its stdout (out may be NULL). */
int cj_run_template(job_t *j, script_ctx_t *c, const collect_template_t *t, char **out);
/* _customize_and_send_template: the script written to
 * <path>/scripts/<prefix>_<name> on the host, not run; its path appended
 * to *script. */
int cj_write_template(job_t *j, const script_ctx_t *c, const collect_template_t *t, sb_t *script);
/* The value of one variable, or NULL. */
const char *cj_var_value(const script_ctx_t *c, const char *name);

/* ---- parsing, manifest, tasks ---- */

/* resource[a][b] (b NULL: resource[a]); borrowed. */
json_t *cj_res_get(job_t *j, const char *a, const char *b);
/* The text after `label` on the one stdout line that has it, spaces
 * stripped (malloc'd), or NULL when none or several lines have it. */
char *cj_parse_label(job_t *j, const char *stdout_text, const char *label);
/* Reads and validates the manifest and turns it into TaskCreate objects
 * (*tasks_out, the caller's reference); check_files: their files must
 * exist on the host. */
int cj_load_manifest(job_t *j, const char *manifest_path, const char *package_root, const char *python,
		     int check_files, json_t **tasks_out);
/* create_db_tasks_and_update_task_group: the group's tasks replaced. */
int cj_insert_tasks(job_t *j, json_t *tasks);

/* ---- the actions (pip.c, pixi.c) ---- */

int pip_collect(job_t *j);
int pip_deactivate(job_t *j);
int pip_reactivate(job_t *j);
int pip_reset(job_t *j);
int pixi_collect(job_t *j);
int pixi_deactivate(job_t *j);
/* reactivate (frozen forced) and reset (frozen iff asked) of a pixi group */
int pixi_reinstall(job_t *j, int frozen);

/* ---- pixi through SLURM (pixi_slurm.c) ---- */

/* run_script_on_remote_slurm: on a slurm_ssh resource, the scripts (paths
 * on the host, all in one folder) and then `chmod -R 755 <chmod_dir>` run
 * in one SLURM job of tasks_pixi_config.SLURM_CONFIG, with c's variables
 * exported; sbatch and squeue over the job's host, polled every
 * jobs_poll_interval seconds, each state change in the log. *out gets the
 * job's stdout (malloc'd). 0, or -1 with the reason in j->err. */
int cj_run_in_slurm(job_t *j, const script_ctx_t *c, const char *const *scripts, int nscripts,
		    const char *chmod_dir, char **out);

#endif
