/* exec_local.c — the local executor (executor.h), upstream's LocalRunner
 * with call_command_wrapper: every unit a subprocess of this server,
 * without a shell, in its own process group (so that a signal reaches the
 * task's children too), stdout and stderr to the unit's log file. A
 * multisubmit runs in chunks of parallel_tasks_per_job, at most `pool`
 * units at once (upstream's ThreadPoolExecutor of min(32, ncpu + 4)
 * workers), each chunk finishing before the next starts.
 *
 * Every running process group is recorded with the job's background job
 * (util/bgjob.h: bgjob_pid_add), so that the runner's shutdown signals them
 * all from the main thread; the record grows with the number of running
 * units and never drops one. Each one is also recorded in the job folder,
 * for the next start should this server be killed (see pgid_record()). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/task.h"
#include "runner/internal.h"
#include "util/proc.h"

#define MAX_LEN_STDERR 100000

/* ---- the instance ---- */

typedef struct local {
	struct executor base;
	int pool;                  /* min(32, ncpu + 4) */
	int64_t ptpj_default;      /* jobs_runner_config.parallel_tasks_per_job, -1: null */
	char *cache_env;           /* FRACTAL_CACHE_DIR=... */
	int cancelled;
	/* the outstanding batch: chunk [c0, c1) runs, next is its first unit
	 * not yet started */
	unit_t *units;
	size_t n, chunk, c0, c1, next, running, left;
	const char *cmd;
	useconds_t nap;
} local_t;

static executor_t *local_open(job_t *j, jerr_t *err)
{
	(void)err;
	local_t *l = xcalloc(1, sizeof(*l));
	json_t *p = json_object_get(j->a.runner_config, "parallel_tasks_per_job");
	l->ptpj_default = json_is_integer(p) ? (int64_t)json_integer_value(p) : -1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	l->pool = (int)(ncpu > 0 ? ncpu + 4 : 5);
	if (l->pool > 32)
		l->pool = 32;
	sb_t e = SB_INIT;
	sb_addf(&e, "FRACTAL_CACHE_DIR=%s", j->a.user_cache_dir ? j->a.user_cache_dir : "");
	l->cache_env = sb_detach(&e);
	return &l->base;
}

static void local_close(executor_t *ex)
{
	local_t *l = (local_t *)ex;
	free(l->cache_env);
	free(l);
}

/* the wftask's meta parallel_tasks_per_job, else the resource's */
static int64_t local_configure(executor_t *ex, const wft_t *w, int parallel, size_t n, jerr_t *err)
{
	(void)n;
	(void)err;
	if (!parallel)
		return -1;
	json_t *v = json_object_get(w->meta_p, "parallel_tasks_per_job");
	if (v)
		return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
	return ((local_t *)ex)->ptpj_default;
}

/* ---- one unit ---- */

static size_t utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			k++;
	return k;
}

/* The log content for "STDERR: ...", or upstream's placeholder when it is
 * longer than MAX_LEN_STDERR characters; never loads more than 4 bytes per
 * allowed character. */
static void stderr_text(const char *path, sb_t *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	sb_t buf = SB_INIT;
	size_t chars = 0;
	char chunk[65536];
	size_t n;
	int big = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		chars += utf8_chars(chunk, n);
		if (!big)
			sb_add(&buf, chunk, n);
		if (buf.len > 4 * MAX_LEN_STDERR) {
			big = 1;
			sb_release(&buf);
		}
	}
	fclose(f);
	if (chars > MAX_LEN_STDERR)
		sb_addf(out, "Cannot display stderr of length %zu. You can find the detailed logs by downloading the job-log folder.",
			chars);
	else
		sb_add(out, buf.buf, buf.len);
	sb_release(&buf);
}

/* Python's json.dump(obj, f): ", " and ": " separators, ASCII only. */
static int write_json_file(const char *path, json_t *v)
{
	return json_dump_file(v, path, JSON_ENSURE_ASCII | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

/* ---- the record a killed server leaves behind ----
 *
 * The schema has no column for a unit's process group, so each running unit
 * has a file in the job folder, <working_dir>/.fractal-pgid-<pgid>, holding
 * "<pgid> <leader's start time>\n" (proc_stat()): written when the unit
 * starts, removed when it ends. A server killed without its shutdown leaves
 * them behind, and the next start stops those groups
 * (exec_local_stop_leftovers(), from runner_recover()). */
#define PGID_FILE ".fractal-pgid-"

static void pgid_path(sb_t *out, const char *working_dir, pid_t pgid)
{
	sb_addf(out, "%s/" PGID_FILE "%d", working_dir, (int)pgid);
}

static void pgid_record(local_t *l, pid_t pid)
{
	job_t *j = l->base.job;
	char state;
	pid_t pg;
	unsigned long long start;
	/* gone already: nothing to record */
	if (!j->working_dir || proc_stat(pid, &state, &pg, &start))
		return;
	sb_t path = SB_INIT;
	pgid_path(&path, j->working_dir, pid);
	int fd = open(path.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%d %llu\n", (int)pid, start) < 0)
		wlog(j, "WARNING", "cannot record the process group of a task in %s: %s", path.buf, strerror(errno));
	if (fd >= 0)
		close(fd);
	sb_release(&path);
}

static void pgid_forget(local_t *l, pid_t pid)
{
	job_t *j = l->base.job;
	if (!j->working_dir)
		return;
	sb_t path = SB_INIT;
	pgid_path(&path, j->working_dir, pid);
	unlink(path.buf);
	sb_release(&path);
}

/* Whether the recorded group is still the task's: its leader is the process
 * recorded (same start time, still leading the group), or the leader is
 * gone but members remain (a pid is not handed out again while a process
 * group of that id exists, so the group is the original one). */
static int pgid_still_ours(pid_t pgid, unsigned long long start)
{
	char state;
	pid_t pg;
	unsigned long long st;
	/* never this server's own group, whatever a record says */
	if (pgid <= 1 || pgid == getpgrp() || pgid == getpid())
		return 0;
	if (!proc_stat(pgid, &state, &pg, &st))
		return st == start && pg == pgid && proc_group_alive(pgid);
	return proc_group_alive(pgid);
}

static int wait_groups_gone(const pid_t *g, size_t n, int64_t ms)
{
	for (int64_t waited = 0;; waited += 50) {
		size_t alive = 0;
		for (size_t i = 0; i < n; i++)
			alive += g[i] > 0 && proc_group_alive(g[i]);
		if (!alive)
			return 1;
		if (waited >= ms)
			return 0;
		usleep(50000);
	}
}

int exec_local_stop_leftovers(const char *working_dir, sb_t *report)
{
	DIR *d = working_dir ? opendir(working_dir) : NULL;
	if (!d)
		return 0;
	pid_t *groups = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, PGID_FILE, strlen(PGID_FILE)))
			continue;
		sb_t path = SB_INIT, text = SB_INIT;
		sb_addf(&path, "%s/%s", working_dir, e->d_name);
		int pgid = 0;
		unsigned long long start = 0;
		if (!sb_read_file(path.buf, &text) && sscanf(text.buf, "%d %llu", &pgid, &start) == 2 && pgid > 1 &&
		    pgid_still_ours((pid_t)pgid, start)) {
			groups = xrealloc(groups, (n + 1) * sizeof(*groups));
			groups[n++] = (pid_t)pgid;
		}
		unlink(path.buf);
		sb_release(&path);
		sb_release(&text);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		proc_kill_group(groups[i], SIGTERM);
	if (n && !wait_groups_gone(groups, n, 3000)) {
		for (size_t i = 0; i < n; i++)
			if (proc_group_alive(groups[i]))
				proc_kill_group(groups[i], SIGKILL);
		wait_groups_gone(groups, n, 1000);
	}
	for (size_t i = 0; i < n; i++)
		sb_addf(report, "\nStopped task process group %d, left running by the previous server process%s.",
			(int)groups[i], proc_group_alive(groups[i]) ? " (it is still running after SIGKILL)" : "");
	free(groups);
	return (int)n;
}

/* run_single_task up to the start of the process (call_command_wrapper's
 * checks included). */
static void unit_start(local_t *l, unit_t *u)
{
	if (runner_stopping()) {
		unit_fail(u, "Task not started: the server is shutting down.");
		return;
	}
	if (l->cancelled) {
		unit_fail(u, "Task not started: the job was stopped.");
		return;
	}
	sb_t err = SB_INIT;
	if (write_json_file(u->args_path.buf, u->args)) {
		os_error(&err, errno, u->args_path.buf);
		unit_fail(u, err.buf);
		sb_release(&err);
		return;
	}
	sb_t cmd = SB_INIT;
	sb_addf(&cmd, "%s --args-json %s --out-json %s", l->cmd ? l->cmd : "None", u->args_path.buf, u->out_path.buf);
	sb_t m = SB_INIT;
	const char *bad = task_validate_cmd(cmd.buf, NULL, NULL, &m);
	if (bad) {
		sb_addf(&err, "Invalid command. Original error: %s", bad);
		unit_fail(u, err.buf);
		goto out;
	}
	int argc;
	const char *why = NULL;
	char **argv = proc_split(cmd.buf, &argc, &why);
	if (!argv) {
		unit_fail(u, why);
		goto out;
	}
	if (proc_which(argv[0])) {
		sb_addf(&err, "Command \"%s\" is not valid. Hint: make sure that it is executable.", argv[0]);
		unit_fail(u, err.buf);
		free(argv);
		goto out;
	}
	int fd = open(u->log_path.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		os_error(&err, errno, u->log_path.buf);
		unit_fail(u, err.buf);
		free(argv);
		goto out;
	}
	close(fd);
	char *env[] = { l->cache_env, NULL };
	pid_t pid = proc_start(argv, env, u->log_path.buf, &why);
	free(argv);
	if (pid < 0) {
		sb_addf(&err, "%s", why ? why : strerror(errno));
		unit_fail(u, err.buf);
		goto out;
	}
	/* a shutdown that began meanwhile signals it here (bgjob_pid_add) */
	u->handle = pid;
	bgjob_pid_add(l->base.job->bg, pid);
	pgid_record(l, pid);
	u->state = UNIT_RUNNING;
out:
	sb_release(&cmd);
	sb_release(&m);
	sb_release(&err);
}

static void unit_finish(local_t *l, unit_t *u, int rc)
{
	bgjob_pid_del(l->base.job->bg, (pid_t)u->handle);
	pgid_forget(l, (pid_t)u->handle);
	u->state = UNIT_FINISHED;
	if (rc != 0) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Task failed with returncode=%d.\nSTDERR: ", rc);
		stderr_text(u->log_path.buf, &m);
		unit_fail(u, m.buf);
		sb_release(&m);
		return;
	}
	sb_t text = SB_INIT;
	if (sb_read_file(u->out_path.buf, &text)) {
		sb_release(&text);
		return; /* no metadiff file: result None */
	}
	json_error_t je;
	u->result = json_loadb(text.buf, text.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!u->result) {
		sb_t m = SB_INIT;
		size_t k = 0;
		while (k < text.len && isspace((unsigned char)text.buf[k]))
			k++;
		if (k == text.len)
			sb_addf(&m, "Expecting value: line %d column %d (char %zu)", 1 + 0, (int)k + 1, k);
		else
			sb_addf(&m, "%s: line %d column %d (char %d)", je.text, je.line, je.column, je.position);
		unit_fail(u, m.buf);
		sb_release(&m);
	}
	sb_release(&text);
}

/* ---- the batch ---- */

static void chunk_begin(local_t *l)
{
	l->c1 = l->c0 + l->chunk < l->n ? l->c0 + l->chunk : l->n;
	l->next = l->c0;
	l->left = l->c1 - l->c0;
	l->nap = 2000;
}

static void local_submit(executor_t *ex, const exec_batch_t *b)
{
	local_t *l = (local_t *)ex;
	l->units = b->units;
	l->n = b->n;
	l->cmd = b->command;
	l->running = 0;
	l->c0 = 0;
	l->chunk = b->parallel && b->per_batch > 0 ? (size_t)b->per_batch : b->n;
	chunk_begin(l);
}

/* LocalRunner.multisubmit's loop: starts units as slots free up within the
 * chunk, reaps the ended ones, naps 2 ms doubling to 100 ms while nothing
 * ends. Units failed before they started are reported first. */
static size_t local_wait(executor_t *ex, unit_t **done, size_t cap)
{
	local_t *l = (local_t *)ex;
	size_t k = 0;
	while (l->c0 < l->n) {
		while (l->next < l->c1 && l->running < (size_t)l->pool && k < cap) {
			unit_t *u = &l->units[l->next++];
			if (u->state == UNIT_PENDING)
				unit_start(l, u);
			if (u->state == UNIT_RUNNING) {
				l->running++;
			} else {
				l->left--;
				done[k++] = u;
			}
		}
		int progressed = 0;
		for (size_t i = l->c0; i < l->next && k < cap; i++) {
			unit_t *u = &l->units[i];
			int rc;
			if (u->state == UNIT_RUNNING && proc_poll((pid_t)u->handle, &rc)) {
				unit_finish(l, u, rc);
				l->running--;
				l->left--;
				progressed = 1;
				done[k++] = u;
			}
		}
		if (!l->left) {
			l->c0 = l->c1;
			chunk_begin(l);
		} else if (progressed) {
			l->nap = 2000;
		}
		if (k)
			return k;
		if (l->left) {
			usleep(l->nap);
			if (l->nap < 100000)
				l->nap *= 2;
		}
	}
	return k;
}

/* units not started finish without starting; running ones get SIGTERM */
static void local_cancel(executor_t *ex)
{
	local_t *l = (local_t *)ex;
	l->cancelled = 1;
	for (size_t i = l->c0; i < l->next; i++)
		if (l->units[i].state == UNIT_RUNNING)
			proc_kill_group((pid_t)l->units[i].handle, SIGTERM);
}

/* the local runner has none */
static const char *local_error_log(executor_t *ex)
{
	(void)ex;
	return NULL;
}

const struct executor_ops exec_local_ops = {
	.resource_type = "local",
	.open = local_open,
	.configure = local_configure,
	.submit = local_submit,
	.wait = local_wait,
	.cancel = local_cancel,
	.error_log = local_error_log,
	.close = local_close,
	.shutdown = NULL,  /* its process groups are the job's (bgjob) */
};
