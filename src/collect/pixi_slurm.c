/* pixi_slurm.c — `pixi install` and the post-install through a SLURM job on
 * a slurm_ssh resource (upstream's tasks/v2/ssh/_pixi_slurm_ssh.py,
 * run_script_on_remote_slurm): the submission script written next to the
 * task group's scripts, sbatch and squeue run over the job's SSH host as
 * the profile's user, the success file looked for, the job's stdout
 * returned for parsing. See steps.h (cj_run_in_slurm).
 *
 * The submission script has upstream's lines, and after the preamble one
 * `export FRACTAL_NAME='value'` line per variable of the templates: the
 * scripts read their values from the environment (templates.c), and a
 * single-quoted word (host_sh_quote) is never expanded or split, the same
 * guarantee every command sent over SSH has. The paths in the #SBATCH lines
 * cannot be quoted, so a task-group folder with white space in its path is
 * refused before anything is submitted.
 *
 * Sturdier than upstream in two places (the runner's SLURM executor does
 * the same): an sbatch failure that SLURM calls transient is retried twice,
 * and an squeue that fails ends the polling only on its third failure in a
 * row (upstream: at once), since a busy slurmctld does not mean the job has
 * ended. The end is decided, as upstream decides it, by the success file.
 * And when the server stops during the job, the SLURM job is scancelled
 * (upstream's thread just ends, and the install goes on). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect/steps.h"
#include "runner/slurm_config.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SBATCH_TRIES 3
#define SQUEUE_FAILURES 3

/* The folder of path (malloc'd). */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
}

/* _get_workdir_remote: the one folder of all the scripts. */
static char *workdir_of(job_t *j, const char *const *scripts, int n)
{
	char *w = dir_of(scripts[0]);
	for (int i = 1; i < n; i++) {
		char *o = dir_of(scripts[i]);
		int same = !strcmp(o, w);
		free(o);
		if (!same) {
			cj_fail(j, "Invalid script_paths: not all in %s.", w);
			free(w);
			return NULL;
		}
	}
	return w;
}

static const char *cfg_text(json_t *cfg, const char *key, char *buf, size_t n)
{
	json_t *v = json_object_get(cfg, key);
	if (json_is_integer(v)) {
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return json_string_value(v);
}

/* The submission script of upstream's run_script_on_remote_slurm, with the
 * variables exported; -1 with j->err when the configuration lacks a value. */
static int submission_script(job_t *j, json_t *cfg, const script_ctx_t *c, const char *workdir,
			     const char *const *scripts, int n, const char *chmod_dir, const char *success, sb_t *out)
{
	char cpus_b[32];
	const char *partition = cfg_text(cfg, "partition", NULL, 0), *cpus = cfg_text(cfg, "cpus", cpus_b, sizeof(cpus_b));
	const char *mem = cfg_text(cfg, "mem", NULL, 0), *mem_per_cpu = cfg_text(cfg, "mem_per_cpu", NULL, 0);
	const char *time_limit = cfg_text(cfg, "time", NULL, 0);
	if (!partition || !cpus || !time_limit || (!mem && !mem_per_cpu)) {
		cj_fail(j, "Invalid tasks_pixi_config.SLURM_CONFIG: partition, cpus, time and one of mem or mem_per_cpu "
			   "are required.");
		return -1;
	}
	sb_addf(out, "#!/bin/bash\n#SBATCH --job-name=%s\n#SBATCH --partition=%s\n#SBATCH --cpus-per-task=%s\n", j->logger,
		partition, cpus);
	if (mem)
		sb_addf(out, "#SBATCH --mem=%s\n", mem);
	else
		sb_addf(out, "#SBATCH --mem-per-cpu=%s\n", mem_per_cpu);
	sb_addf(out, "#SBATCH --time=%s\n#SBATCH --err=%s/%s-err.txt\n#SBATCH --out=%s/%s-out.txt\n#SBATCH -D %s\n\nset -e\n",
		time_limit, workdir, c->prefix, workdir, c->prefix, workdir);
	size_t i;
	json_t *line;
	json_array_foreach(json_object_get(cfg, "preamble"), i, line)
		if (json_is_string(line))
			sb_addf(out, "%s\n", json_string_value(line));
	for (int k = 0; k < c->nvar; k++) {
		sb_addf(out, "export %s=", c->var[k].name);
		host_sh_quote(out, c->var[k].value);
		sb_addc(out, '\n');
	}
	for (int k = 0; k < n; k++) {
		sb_adds(out, "bash ");
		host_sh_quote(out, scripts[k]);
		sb_addc(out, '\n');
	}
	sb_adds(out, "chmod -R 755 ");
	host_sh_quote(out, chmod_dir);
	sb_adds(out, "\ntouch ");
	host_sh_quote(out, success);
	sb_addc(out, '\n');
	return 0;
}

/* sbatch --parsable <script>, retried while SLURM says the failure is
 * transient; the SLURM job id, or 0 with j->err set. */
static long long submit(job_t *j, const char *script)
{
	char *argv[] = { "sbatch", "--parsable", (char *)script, NULL };
	for (int attempt = 1;; attempt++) {
		char *out = NULL;
		if (!cj_run_argv(j, argv, 0, NULL, &out)) {
			char *end;
			long long id = strtoll(out, &end, 10);
			while (*end == '\n' || *end == ' ')
				end++;
			if (end != out && !*end && id > 0) {
				free(out);
				return id;
			}
			cj_fail(j, "invalid literal for int() with base 10: '%s'", out);
			free(out);
			return 0;
		}
		free(out);
		if (attempt >= SBATCH_TRIES || !slurm_sbatch_transient(j->err.buf) || bgjob_stopping(j->bg))
			return 0;
		cj_log(j, LOG_WARNING, "sbatch failed (attempt %d of %d), retrying in %d s.", attempt, SBATCH_TRIES,
		       attempt);
		sleep((unsigned)attempt);
	}
}

/* One squeue of the job: its state (malloc'd), or NULL when squeue failed
 * (logged as upstream logs it). */
static char *squeue_state(job_t *j, long long id)
{
	char jobs[48];
	snprintf(jobs, sizeof(jobs), "--jobs=%lld", id);
	char *argv[] = { "squeue", "--noheader", "--format=%i %T", "--states=all", jobs, NULL };
	host_run_t r = HOST_RUN_INIT;
	char *state = NULL;
	host_run(j->host, argv, NULL, &r);
	if (r.started && r.code == 0) {
		char idb[32];
		const char *p = r.out.buf;
		int il = snprintf(idb, sizeof(idb), "%lld ", id);
		while (*p == ' ')
			p++;
		if (!strncmp(p, idb, (size_t)il)) {
			p += il;
			while (*p == ' ')
				p++;
			state = xstrndup(p, strcspn(p, " \n"));
		}
	}
	if (!state) {
		sb_t why = SB_INIT;
		if (!r.started)
			sb_addf(&why, "%s", r.why ? r.why : strerror(r.errnum));
		else if (r.code)
			sb_addf(&why, "returncode=%d, stderr: %s", r.code, r.err.buf);
		else
			sb_addf(&why, "list index out of range (stdout: '%s')", r.out.buf);
		cj_log(j, LOG_INFO, "`squeue` command failed (original error: %s)", why.buf);
		sb_release(&why);
	}
	host_run_release(&r);
	return state;
}

/* Sleeps the poll interval, in slices; 1 when the server began stopping. */
static int pause_or_stop(job_t *j, int64_t usec)
{
	int64_t end = mono_usec() + usec;
	while (mono_usec() < end) {
		if (bgjob_stopping(j->bg))
			return 1;
		usleep(100000);
	}
	return bgjob_stopping(j->bg);
}

/* The server is stopping, so the job's host runs nothing more: scancel over
 * a host of its own (the same shared connection, not registered with the
 * job), so that the install does not go on in a folder the failure handler
 * removes next. Best effort: a failure is logged. */
static void scancel_at_stop(job_t *j, long long id)
{
	sb_t why = SB_INIT;
	host_t *h = host_ssh_open(NULL, json_string_value(json_object_get(j->r.resource, "host")),
				  json_string_value(json_object_get(j->r.profile, "username")),
				  json_string_value(json_object_get(j->r.profile, "ssh_key_path")), NULL, &why);
	char idb[32];
	snprintf(idb, sizeof(idb), "%lld", id);
	char *argv[] = { "scancel", idb, NULL };
	host_run_t r = HOST_RUN_INIT;
	if (h && !host_run(h, argv, NULL, &r) && r.started && r.code == 0)
		cj_log(j, LOG_WARNING, "fractal-server is shutting down: scancelled SLURM job %lld.", id);
	else
		cj_log(j, LOG_ERROR, "scancel of SLURM job %lld failed: %s%s", id, why.buf, r.err.buf);
	host_run_release(&r);
	host_close(h);
	sb_release(&why);
}

/* _read_file_if_exists */
static char *read_if_exists(job_t *j, const char *path)
{
	if (!cj_exists(j, path))
		return xstrdup("");
	char *t = cj_read_file(j, path, NULL);
	return t ? t : xstrdup("");
}

int cj_run_in_slurm(job_t *j, const script_ctx_t *c, const char *const *scripts, int nscripts,
		    const char *chmod_dir, char **out)
{
	json_t *cfg = cj_res_get(j, "tasks_pixi_config", "SLURM_CONFIG");
	if (!json_is_object(cfg)) {
		cj_fail(j, "tasks_pixi_config has no SLURM_CONFIG, which pixi collection on a slurm_ssh resource needs.");
		return -1;
	}
	char *workdir = workdir_of(j, scripts, nscripts);
	if (!workdir)
		return -1;
	if (strpbrk(workdir, " \t\r\n\v\f")) {
		cj_fail(j, "Cannot submit a SLURM job from %s: an #SBATCH line cannot hold a path with white space.",
			workdir);
		free(workdir);
		return -1;
	}
	sb_t submit_path = SB_INIT, err_path = SB_INIT, out_path = SB_INIT, success = SB_INIT, script = SB_INIT;
	sb_addf(&submit_path, "%s/%s-submit.sh", workdir, c->prefix);
	sb_addf(&err_path, "%s/%s-err.txt", workdir, c->prefix);
	sb_addf(&out_path, "%s/%s-out.txt", workdir, c->prefix);
	sb_addf(&success, "%s/%s-success.txt", workdir, c->prefix);
	int rc = -1;
	char *state = NULL, *old = NULL, *text = NULL;
	if (submission_script(j, cfg, c, workdir, scripts, nscripts, chmod_dir, success.buf, &script) ||
	    cj_write_file(j, submit_path.buf, script.buf, script.len))
		goto out;
	cj_log(j, LOG_DEBUG, "Written submission_script_remote='%s'.", submit_path.buf);
	cj_save_log(j);

	cj_log(j, LOG_DEBUG, "Now submit SLURM job.");
	long long id = submit(j, submit_path.buf);
	if (!id) {
		cj_log(j, LOG_ERROR, "Submission of %s failed. Original error: %s", submit_path.buf, j->err.buf);
		cj_save_log(j);
		goto out;
	}
	cj_log(j, LOG_DEBUG, "SLURM-job submission successful (job_id=%lld).", id);
	cj_save_log(j);

	cj_log(j, LOG_DEBUG, "Start monitoring job with squeue_cmd=\"squeue --noheader --format='%%i %%T' --states=all "
			     "--jobs=%lld\".", id);
	json_t *iv = json_object_get(j->r.resource, "jobs_poll_interval");
	int64_t interval = json_is_integer(iv) && json_integer_value(iv) > 0 ? json_integer_value(iv) : 5;
	int failures = 0;
	for (;;) {
		free(state);
		state = squeue_state(j, id);
		failures = state ? 0 : failures + 1;
		const char *shown = state ? state : "__FRACTAL_SQUEUE_ERROR__";
		if (!old || strcmp(old, shown))
			cj_log(j, LOG_DEBUG, "SLURM-job state changed from old_state=%s%s%s to new_state='%s'.",
			       old ? "'" : "", old ? old : "None", old ? "'" : "", shown);
		free(old);
		old = xstrdup(shown);
		cj_save_log(j);
		if ((state && slurm_state_finished(state, strlen(state))) || failures >= SQUEUE_FAILURES) {
			cj_log(j, LOG_DEBUG, "Exit retrieval loop (state=%s).", shown);
			break;
		}
		if (pause_or_stop(j, interval * 1000000)) {
			scancel_at_stop(j, id);
			cj_fail(j, "fractal-server is shutting down: SLURM job %lld was scancelled.", id);
			goto out;
		}
	}

	if (!cj_exists(j, success.buf)) {
		cj_fail(j, "success_file_remote='%s' missing.", success.buf);
		cj_log(j, LOG_INFO, "%s", j->err.buf);
		text = read_if_exists(j, err_path.buf);
		if (*text)
			cj_log(j, LOG_INFO, "SLURM-job stderr:\n%s", text);
		free(text);
		text = read_if_exists(j, out_path.buf);
		if (*text)
			cj_log(j, LOG_DEBUG, "SLURM-job stdout:\n%s", text);
		cj_save_log(j);
		/* the reason again: a read above may have replaced it */
		cj_fail(j, "success_file_remote='%s' missing.", success.buf);
		goto out;
	}
	/* both outputs into the log, as the local scripts' are (upstream logs
	 * the stderr of a failed job only) */
	text = read_if_exists(j, err_path.buf);
	if (*text)
		cj_log(j, LOG_DEBUG, "SLURM-job stderr:\n%s", text);
	free(text);
	text = read_if_exists(j, out_path.buf);
	cj_log(j, LOG_DEBUG, "SLURM-job stdout:\n%s", text);
	cj_log(j, LOG_INFO, "SLURM-job execution completed successfully, continue.");
	cj_save_log(j);
	*out = text;
	text = NULL;
	rc = 0;
out:
	free(text);
	free(state);
	free(old);
	free(workdir);
	sb_release(&submit_path);
	sb_release(&err_path);
	sb_release(&out_path);
	sb_release(&success);
	sb_release(&script);
	return rc;
}
