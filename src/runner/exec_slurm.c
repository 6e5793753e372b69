/* exec_slurm.c — the SLURM executor over sudo (executor.h; upstream's
 * SlurmSudoRunner and BaseSlurmRunner): each batch of units becomes SLURM
 * jobs of tasks_per_job units, submitted with sbatch as the profile's user,
 * polled, and their outputs read back as that user.
 *
 * Folders: the job folder (job.working_dir, the server's, 0755) holds the
 * args and worker input files, the submission scripts and the worker script
 * (slurm_worker.py, from src/runner/slurm_worker.py), all readable by the
 * SLURM user on the shared filesystem; job.working_dir_user (the user's,
 * made with `sudo -u <user> mkdir -p`) receives what the units write (logs,
 * metadiffs, worker outputs, SLURM's stdout/stderr), which is copied back
 * into the job folder with `sudo -u <user> cat` when a SLURM job ends.
 * Every command that touches the user's files or SLURM runs as
 * `sudo --set-home --non-interactive -u <user> ...`, as an argv (no shell);
 * squeue and sacct run as the server's user, as upstream's squeue does.
 *
 * The worker: our own Python script using only the standard library (the
 * resource's jobs_slurm_python_worker runs it), with upstream's input and
 * output files; see slurm_worker.py and docs/jobs.md.
 *
 * Polling: one squeue call per poll interval for the SLURM jobs of every
 * running job of this server, whichever job's thread is due to make it
 * (the others wait for its answer): `poller` below. Sturdier than upstream:
 *   - a failed squeue decides nothing: the jobs stay running, the call is
 *     retried with a growing pause (up to 60 s), and every job's log says so;
 *   - a SLURM job missing from squeue's answer is looked up with sacct;
 *     when sacct has no final state for it either (no accounting, or a
 *     slurmctld restart lost its end and accounting still says RUNNING) it
 *     counts as ended after three such polls, and then its units are
 *     decided from the files they left (a unit without its output fails);
 *   - after a failed squeue (slurmctld away), a job that SLURM still calls
 *     running is also taken as ended once its script's last line is in its
 *     stdout (read as the user every few intervals): a restarted slurmctld
 *     can keep a job that ended while it was away RUNNING for long;
 *   - sbatch failures that SLURM calls transient (a timeout, no controller)
 *     are retried with a growing pause, each written to the job log; any
 *     other refusal (an unknown partition, a submit limit, an impossible
 *     request) fails the units at once with SLURM's own message.
 *
 * Stop and shutdown: the job's `shutdown` file (the stop route) is looked
 * for before every submission and ten times per poll interval; then every
 * SLURM job of the instance is scancelled, and its units without an output
 * fail with upstream's "Failed due to job-execution shutdown.". On server
 * shutdown, exec_slurm_ops.shutdown() scancels every registered SLURM job
 * from the main thread, and the instances end the same way. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "model/pyrepr.h"
#include "runner/internal.h"
#include "runner/slurm_config.h"
#include "util/host.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

extern const char slurm_worker_py[];

#define WORKER_NAME "slurm_worker.py"
#define MAX_FETCH_PROCS 12
#define MISSING_POLLS 3
#define MAX_POLL_PAUSE_USEC (60 * 1000000LL)
#define SBATCH_TRIES 5
#define SSH_POLL_FAILURES 3

/* ---- one SLURM job ---- */

typedef struct sjob {
	int64_t id;             /* SLURM's job id; 0 before sbatch answered */
	size_t first, n;        /* its units: batch units first..first+n-1 */
	char *prefix;           /* the file prefix of its first unit */
	const char *user;       /* borrowed from the instance */
	const char *ssh_host, *ssh_key; /* slurm_ssh: borrowed from the instance; NULL for slurm_sudo */
	int64_t interval_usec;  /* the instance's poll interval */
	/* under poller.mu */
	int done;               /* SLURM says it ended (or it vanished) */
	int missing;            /* consecutive polls without squeue/sacct news */
	int conn_failures;      /* consecutive polls whose SSH connection failed */
	int registered;
	int scancelled;         /* set by the instance */
	int processed;          /* its artifacts fetched, its units finished */
	int suspect;            /* an squeue failed while it ran (under poller.mu) */
	int64_t next_check;     /* then: when to look at its stdout next */
} sjob_t;

/* ---- the instance ---- */

typedef struct slurm {
	struct executor base;
	char *user, *python, *account, *worker_init, *worker_path;
	int ssh;                /* slurm_ssh: every command and file of the user over SSH */
	char *ssh_host, *ssh_key, *worker_remote; /* worker_remote: the worker on the user's side */
	const char *root_local, *root_remote;
	int64_t interval_usec;
	int py_version[3];      /* the worker interpreter's, from --versions */
	json_t *runner_config;
	host_t *host;
	slurm_config_t cfg;
	int have_cfg;
	/* the batch in flight */
	unit_t *units;
	size_t n, next_report;
	unsigned char *reported;
	sjob_t *jobs;
	size_t njobs;
	char *sub_local, *sub_remote;
	sb_t error_log;
	int has_error_log;
	int shutdown_seen;
	uint64_t poll_seq_seen;
} slurm_t;

/* ---- the poller: one squeue call per interval for every instance ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sjob_t **v;             /* registered, not yet done */
	size_t n, cap;
	int polling;            /* a thread runs squeue now */
	int64_t next_poll;      /* mono_usec() of the next call */
	int failures;           /* consecutive failed squeue calls */
	uint64_t seq;           /* bumped after every failed call */
	char *last_error;       /* the failed call's text (malloc'd) */
	host_t *host;           /* the poller's own (no job: never refused) */
	struct poll_ssh {       /* and its SSH ones, one per connection */
		char *host, *user, *key;
		host_t *h;
	} *ssh;
	size_t nssh;
} poller = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 };

static void poller_add(sjob_t *sj)
{
	pthread_mutex_lock(&poller.mu);
	if (poller.n == poller.cap) {
		poller.cap = poller.cap ? 2 * poller.cap : 16;
		poller.v = xrealloc(poller.v, poller.cap * sizeof(*poller.v));
	}
	poller.v[poller.n++] = sj;
	sj->registered = 1;
	pthread_mutex_unlock(&poller.mu);
}

/* under poller.mu */
static void poller_del_locked(sjob_t *sj)
{
	if (!sj->registered)
		return;
	for (size_t i = 0; i < poller.n; i++)
		if (poller.v[i] == sj) {
			poller.v[i] = poller.v[--poller.n];
			break;
		}
	sj->registered = 0;
	if (!poller.n) {
		free(poller.v);
		poller.v = NULL;
		poller.cap = 0;
	}
}

/* Runs argv with h (this machine: as the server's user; SSH: as the
 * profile's); 0 and its stdout in *out when it exited 0; else -1 with what
 * happened in *err. *r (HOST_RUN_INIT, the caller releases it) keeps the
 * outcome. */
static int run_plain_res(host_t *h, char *const argv[], sb_t *out, sb_t *err, host_run_t *r)
{
	int rc = -1;
	if (host_run(h, argv, NULL, r) || !r->started) {
		sb_addf(err, "%s: %s", argv[0], r->why ? r->why : strerror(r->errnum ? r->errnum : ENOENT));
		if (r->err.len)
			sb_addf(err, "\n%s", r->err.buf);
	} else if (r->code != 0) {
		sb_addf(err, "%s exited with %d: %s%s", argv[0], r->code, r->err.buf, r->out.buf);
	} else {
		sb_add(out, r->out.buf, r->out.len);
		rc = 0;
	}
	return rc;
}

static int run_plain(host_t *h, char *const argv[], sb_t *out, sb_t *err)
{
	host_run_t r = HOST_RUN_INIT;
	int rc = run_plain_res(h, argv, out, err, &r);
	host_run_release(&r);
	return rc;
}

/* "id STATE" (squeue) or "id|STATE[ by N]" (sacct) lines: the state of id,
 * NULL when the id is not there. */
static const char *find_state(const char *text, int64_t id, char sep, size_t *len)
{
	char key[32];
	int kl = snprintf(key, sizeof(key), "%lld%c", (long long)id, sep);
	for (const char *l = text; l && *l;) {
		while (*l == ' ')
			l++;
		if (!strncmp(l, key, (size_t)kl)) {
			const char *st = l + kl;
			size_t n = strcspn(st, " \n|");
			*len = n;
			return st;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return NULL;
}

/* The SLURM jobs of one place squeue must be asked: this machine (ssh_host
 * NULL: slurm_sudo), or one SSH connection (host, user, key). */
typedef struct pgroup {
	char *ssh_host, *user, *key;  /* copies */
	int64_t *ids;
	size_t n;
	int ok, conn_failed;
	sb_t out, acct, err;
} pgroup_t;

static int same_place(const sjob_t *sj, const pgroup_t *g)
{
	if (!sj->ssh_host || !g->ssh_host)
		return !sj->ssh_host && !g->ssh_host;
	return !strcmp(sj->ssh_host, g->ssh_host) && !strcmp(sj->user, g->user) && !strcmp(sj->ssh_key, g->key);
}

/* The poller's own host for a group (never closed before exit: masters are
 * shared anyway); only the polling thread calls it. NULL with *err. */
static host_t *poller_host(const pgroup_t *g, sb_t *err)
{
	if (!g->ssh_host) {
		if (!poller.host) {
			poller.host = host_local_open(NULL, "/tmp/fractal-squeue.XXXXXX", err);
			if (!poller.host)
				log_error("SLURM poller: %s", err->buf);
		}
		return poller.host;
	}
	for (size_t i = 0; i < poller.nssh; i++)
		if (!strcmp(poller.ssh[i].host, g->ssh_host) && !strcmp(poller.ssh[i].user, g->user) &&
		    !strcmp(poller.ssh[i].key, g->key))
			return poller.ssh[i].h;
	host_t *h = host_ssh_open(NULL, g->ssh_host, g->user, g->key, NULL, err);
	if (!h)
		return NULL;
	poller.ssh = xrealloc(poller.ssh, (poller.nssh + 1) * sizeof(*poller.ssh));
	poller.ssh[poller.nssh++] = (struct poll_ssh){ xstrdup(g->ssh_host), xstrdup(g->user), xstrdup(g->key), h };
	return h;
}

/* squeue, then sacct for the ids squeue did not list, for one group */
static void poll_group(pgroup_t *g)
{
	sb_t list = SB_INIT;
	for (size_t i = 0; i < g->n; i++)
		sb_addf(&list, "%s%lld", i ? "," : "", (long long)g->ids[i]);
	host_t *h = poller_host(g, &g->err);
	if (!h) {
		g->conn_failed = 1;
	} else {
		char *argv[] = { "squeue", "--noheader", "--format=%i %T", "--states=all", "--jobs", list.buf, NULL };
		host_run_t r = HOST_RUN_INIT;
		g->ok = !run_plain_res(h, argv, &g->out, &g->err, &r);
		g->conn_failed = !g->ok && g->ssh_host && (!r.started || r.code == 255);
		host_run_release(&r);
		/* squeue refuses the whole list when SLURM has forgotten its ids
		 * (they ended more than MinJobAge ago): then only sacct can tell */
		if (!g->ok && strstr(g->err.buf, "Invalid job id")) {
			g->ok = 1;
			sb_reset(&g->out);
		}
	}
	int need_acct = 0;
	for (size_t i = 0; g->ok && i < g->n; i++) {
		size_t len;
		if (!find_state(g->out.buf, g->ids[i], ' ', &len))
			need_acct = 1;
	}
	if (need_acct) {
		sb_t e2 = SB_INIT;
		char *argv[] = { "sacct", "--noheader", "-X", "-P", "--format=JobID,State", "-j", list.buf, NULL };
		if (run_plain(h, argv, &g->acct, &e2))
			sb_reset(&g->acct);
		sb_release(&e2);
	}
	sb_release(&list);
}

/* One poll of every registered job; called with poller.mu not held, by the
 * thread that set poller.polling. */
static void poll_once(void)
{
	pthread_mutex_lock(&poller.mu);
	size_t n = poller.n, ng = 0;
	pgroup_t *gs = xcalloc(n ? n : 1, sizeof(*gs));
	int64_t interval = MAX_POLL_PAUSE_USEC;
	for (size_t i = 0; i < n; i++) {
		sjob_t *sj = poller.v[i];
		if (sj->interval_usec < interval)
			interval = sj->interval_usec;
		size_t g = 0;
		while (g < ng && !same_place(sj, &gs[g]))
			g++;
		if (g == ng) {
			gs[g].ssh_host = sj->ssh_host ? xstrdup(sj->ssh_host) : NULL;
			gs[g].user = sj->ssh_host ? xstrdup(sj->user) : NULL;
			gs[g].key = sj->ssh_host ? xstrdup(sj->ssh_key) : NULL;
			gs[g].ids = xcalloc(n, sizeof(int64_t));
			sb_init(&gs[g].out, 0);
			sb_init(&gs[g].acct, 0);
			sb_init(&gs[g].err, 0);
			ng++;
		}
		gs[g].ids[gs[g].n++] = sj->id;
	}
	pthread_mutex_unlock(&poller.mu);

	for (size_t g = 0; g < ng; g++)
		poll_group(&gs[g]);

	pthread_mutex_lock(&poller.mu);
	int any_failed = 0;
	for (size_t g = 0; g < ng; g++)
		if (!gs[g].ok) {
			any_failed = 1;
			free(poller.last_error);
			poller.last_error = xstrdup(gs[g].err.buf);
		}
	for (size_t i = 0; i < poller.n; i++) {
		sjob_t *sj = poller.v[i];
		pgroup_t *g = NULL;
		for (size_t k = 0; k < ng && !g; k++)
			if (same_place(sj, &gs[k]))
				for (size_t m = 0; m < gs[k].n && !g; m++)
					if (gs[k].ids[m] == sj->id)
						g = &gs[k];
		if (!g) /* registered while we ran: looked at next time */
			continue;
		size_t len;
		const char *st;
		if (!g->ok) {
			/* slurmctld may be restarting: a job that ends meanwhile can stay
			 * RUNNING in its eyes for long; its instance will look at the
			 * files the job left (slurm_wait). An SSH connection that stays
			 * down ends the job: its instance then fails its units with the
			 * connection's error when it cannot fetch their outputs. */
			if (!sj->suspect)
				sj->next_check = 0; /* looked at soon, not at the slow pace */
			sj->suspect = 1;
			if (g->conn_failed && ++sj->conn_failures >= SSH_POLL_FAILURES)
				sj->done = 1;
		} else if ((st = find_state(g->out.buf, sj->id, ' ', &len))) {
			sj->missing = 0;
			sj->conn_failures = 0;
			if (slurm_state_finished(st, len))
				sj->done = 1;
		} else if ((st = find_state(g->acct.buf, sj->id, '|', &len)) && slurm_state_finished(st, len)) {
			sj->done = 1;
		} else if (++sj->missing >= MISSING_POLLS) {
			/* neither knows it has ended: slurmctld forgot it (a restart
			 * that lost its end), and accounting is off or still says
			 * RUNNING; the files its units left decide */
			sj->done = 1;
		}
	}
	if (any_failed) {
		poller.failures++;
		poller.seq++;
		double pause = (double)interval * pow(2, poller.failures);
		if (pause > (double)MAX_POLL_PAUSE_USEC)
			pause = (double)MAX_POLL_PAUSE_USEC;
		poller.next_poll = mono_usec() + (int64_t)pause;
		log_warning("squeue failed (%d in a row), next try in %.1f s: %s", poller.failures, pause / 1e6,
			    poller.last_error);
	} else {
		poller.failures = 0;
		poller.next_poll = mono_usec() + interval;
	}
	for (size_t i = 0; i < poller.n;) {
		if (poller.v[i]->done)
			poller_del_locked(poller.v[i]);
		else
			i++;
	}
	poller.polling = 0;
	pthread_cond_broadcast(&poller.cv);
	pthread_mutex_unlock(&poller.mu);
	for (size_t g = 0; g < ng; g++) {
		free(gs[g].ssh_host);
		free(gs[g].user);
		free(gs[g].key);
		free(gs[g].ids);
		sb_release(&gs[g].out);
		sb_release(&gs[g].acct);
		sb_release(&gs[g].err);
	}
	free(gs);
}

/* ---- commands ---- */

/* The upstream text of a failed command run as the user (RuntimeError in
 * _run_command_as_user): cmd='...', returncode, stdout, stderr. */
static void cmd_error(sb_t *err, char *const argv[], const host_run_t *r)
{
	sb_t cmd = SB_INIT;
	for (size_t i = 0; argv[i]; i++)
		sb_addf(&cmd, "%s%s", i ? " " : "", argv[i]);
	sb_adds(err, "cmd=");
	py_repr_str(err, cmd.buf, cmd.len);
	if (!r->started) {
		sb_addf(err, "\n\ncould not run: %s\n", r->why ? r->why : strerror(r->errnum));
	} else {
		sb_addf(err, "\n\nres.returncode=%d\n\nres.stdout=", r->code);
		py_repr_str(err, r->out.buf, r->out.len);
		sb_adds(err, "\n\nres.stderr=");
		py_repr_str(err, r->err.buf, r->err.len);
		sb_adds(err, "\n");
	}
	sb_release(&cmd);
}

/* Runs argv as the profile's user (sudo); 0 with its stdout appended to out
 * (may be NULL) when it exited 0, else -1 with cmd_error()'s text in err and
 * SLURM's own words in *slurm_msg (its stderr; may be NULL). */
static int run_as_user(slurm_t *s, char *const argv[], sb_t *out, sb_t *err, sb_t *slurm_msg)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **full = xcalloc(n + 6, sizeof(char *));
	size_t k = 0;
	if (!s->ssh) { /* over SSH we are the user already */
		full[k++] = "sudo";
		full[k++] = "--set-home";
		full[k++] = "--non-interactive";
		full[k++] = "-u";
		full[k++] = s->user;
	}
	for (size_t i = 0; i < n; i++)
		full[k + i] = argv[i];
	host_run_t r = HOST_RUN_INIT;
	int rc = -1;
	if (!host_run(s->host, full, NULL, &r) && r.started && r.code == 0) {
		if (out)
			sb_add(out, r.out.buf, r.out.len);
		rc = 0;
	} else {
		cmd_error(err, argv, &r);
		if (slurm_msg)
			sb_add(slurm_msg, r.err.buf, r.err.len);
	}
	host_run_release(&r);
	free(full);
	return rc;
}

static void scancel(slurm_t *s, int only_unfinished)
{
	char **argv = xcalloc(s->njobs + 2, sizeof(char *));
	char (*buf)[24] = xcalloc(s->njobs + 1, sizeof(*buf));
	size_t k = 0;
	argv[k++] = "scancel";
	pthread_mutex_lock(&poller.mu);
	for (size_t i = 0; i < s->njobs; i++) {
		sjob_t *sj = &s->jobs[i];
		if (!sj->id || (only_unfinished && sj->done))
			continue;
		sj->scancelled = 1;
		snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)sj->id);
		argv[k++] = buf[i];
	}
	pthread_mutex_unlock(&poller.mu);
	if (k > 1) {
		sb_t err = SB_INIT;
		if (run_as_user(s, argv, NULL, &err, NULL)) {
			log_error("[scancel_jobs] `scancel` command failed. Original error:\n%s", err.buf);
			wlog(s->base.job, "ERROR", "[scancel_jobs] `scancel` command failed. Original error:\n%s", err.buf);
		} else {
			wlog(s->base.job, "WARNING", "[scancel_jobs] scancelled %zu SLURM job(s)", k - 1);
		}
		sb_release(&err);
	}
	free(argv);
	free(buf);
}

/* ---- open, configure ---- */

static int write_text(const char *path, const char *text, size_t len, mode_t mode, sb_t *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		os_error(err, errno, path);
		return -1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			os_error(err, errno, path);
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	fchmod(fd, mode);
	return close(fd) ? -1 : 0;
}

static void slurm_close(executor_t *ex);

static char *dup_col(db_res_t *r, int col)
{
	return db_isnull(r, 0, col) ? NULL : xstrdup(db_text(r, 0, col));
}

static executor_t *slurm_open_mode(job_t *j, jerr_t *err, int ssh)
{
	slurm_t *s = xcalloc(1, sizeof(*s));
	s->base.job = j;
	s->ssh = ssh;
	sb_init(&s->error_log, 0);
	s->root_local = j->working_dir;
	s->root_remote = j->working_dir_user;
	s->runner_config = json_incref(j->a.runner_config);
	sb_t m = SB_INIT;
	db_res_t *r = NULL;
	if (db_exec(j->db, "SELECT jobs_slurm_python_worker, jobs_poll_interval FROM resource WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.resource_id) }, 1, &r) ||
	    !db_nrows(r)) {
		jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "resource %lld: %s", (long long)j->a.resource_id,
			 db_errmsg(j->db));
		goto fail;
	}
	s->python = dup_col(r, 0);
	double iv = db_isnull(r, 0, 1) ? 5 : (double)db_int(r, 0, 1);
	s->interval_usec = (int64_t)((iv < 0.2 ? 0.2 : iv) * 1e6);
	db_res_free(r);
	r = NULL;
	if (db_exec(j->db, "SELECT slurm_account, worker_init FROM jobv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->a.job_id) }, 1, &r) ||
	    !db_nrows(r)) {
		jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "job %lld: %s", (long long)j->a.job_id, db_errmsg(j->db));
		goto fail;
	}
	s->account = dup_col(r, 0);
	s->worker_init = dup_col(r, 1);
	db_res_free(r);
	r = NULL;
	if (!j->a.profile_username || !*j->a.profile_username) {
		jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "user=None not allowed in _mkdir_as_user");
		goto fail;
	}
	s->user = xstrdup(j->a.profile_username);
	if (!s->python || !s->root_remote) {
		jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "%s",
			 !s->python ? "The resource has no jobs_slurm_python_worker." : "The job has no working_dir_user.");
		goto fail;
	}
	/* the worker_init check of upstream's runner construction */
	{
		slurm_err_t e = SLURM_ERR_INIT;
		if (slurm_worker_init_check(s->worker_init, &e)) {
			jerr_set(err, JE_UNKNOWN, 0, e.type ? e.type : "RuntimeError", "%s", e.msg.buf);
			slurm_err_release(&e);
			goto fail;
		}
		slurm_err_release(&e);
	}
	if (s->ssh) {
		if (db_exec(j->db,
			    "SELECT r.host, p.ssh_key_path FROM resource r, profile p JOIN user_oauth u ON u.profile_id = p.id "
			    "WHERE r.id = $1 AND u.id = $2",
			    (db_param_t[]){ P_INT(j->a.resource_id), P_INT(j->a.user_id) }, 2, &r) ||
		    !db_nrows(r)) {
			jerr_set(err, JE_UNKNOWN, 0, "DatabaseError", "resource %lld: %s", (long long)j->a.resource_id,
				 db_errmsg(j->db));
			goto fail;
		}
		s->ssh_host = dup_col(r, 0);
		s->ssh_key = dup_col(r, 1);
		db_res_free(r);
		r = NULL;
		s->host = host_ssh_open(j->bg, s->ssh_host, s->user, s->ssh_key, NULL, &m);
	} else {
		s->host = host_local_open(j->bg, "/tmp/fractal-slurm.XXXXXX", &m);
	}
	if (!s->host) {
		jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "%s", m.buf);
		goto fail;
	}
	/* the worker script, with our version in it */
	{
		sb_t path = SB_INIT, text = SB_INIT;
		sb_addf(&path, "%s/%s", s->root_local, WORKER_NAME);
		const char *mark = strstr(slurm_worker_py, "@FRACTAL_SERVER_VERSION@");
		sb_add(&text, slurm_worker_py, mark ? (size_t)(mark - slurm_worker_py) : strlen(slurm_worker_py));
		if (mark) {
			sb_adds(&text, FRACTAL_VERSION);
			sb_adds(&text, mark + strlen("@FRACTAL_SERVER_VERSION@"));
		}
		int wrc = write_text(path.buf, text.buf, text.len, 0644, &m);
		s->worker_path = sb_detach(&path);
		sb_release(&text);
		if (wrc) {
			jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "%s", m.buf);
			goto fail;
		}
	}
	/* over SSH: the user's root folder first, and the worker in it */
	if (s->ssh) {
		sb_t rp = SB_INIT;
		sb_addf(&rp, "%s/%s", s->root_remote, WORKER_NAME);
		s->worker_remote = sb_detach(&rp);
		if (host_mkdir(s->host, s->root_remote, HOST_MKDIR_PARENTS | HOST_MKDIR_EXIST_OK, &m) ||
		    host_ssh_put(s->host, s->worker_path, s->worker_remote, &m)) {
			jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "Could not mkdir %s or %s. Original error: %s.",
				 s->root_local, s->root_remote, m.buf);
			goto fail;
		}
	} else {
		s->worker_remote = xstrdup(s->worker_path);
	}
	/* check_fractal_server_versions: the interpreter runs our worker */
	{
		sb_t out = SB_INIT, e = SB_INIT;
		char *argv[] = { s->python, s->worker_remote, "--versions", NULL };
		json_t *v = NULL;
		int bad = 1;
		if (run_plain(s->host, argv, &out, &e)) {
			jerr_set(err, JE_UNKNOWN, 0, "RuntimeError", "Cannot run the SLURM worker with %s: %s", s->python,
				 e.buf);
		} else if (!(v = json_loads(out.buf, 0, NULL)) ||
			   !json_is_string(json_object_get(v, "fractal_server")) ||
			   strcmp(json_string_value(json_object_get(v, "fractal_server")), FRACTAL_VERSION)) {
			const char *wv = json_string_value(json_object_get(v, "fractal_server"));
			jerr_set(err, JE_UNKNOWN, 0, "RuntimeError",
				 "Fractal-server version mismatch.\nLocal interpreter: (fractalctl): %s.\nRemote interpreter: "
				 "(%s): %s.",
				 FRACTAL_VERSION, s->python, wv ? wv : "None");
		} else {
			bad = 0;
		}
		json_t *pv = json_object_get(v, "python");
		for (int i = 0; i < 3; i++)
			s->py_version[i] = (int)json_integer_value(json_array_get(pv, (size_t)i));
		json_decref(v);
		sb_release(&out);
		sb_release(&e);
		if (bad)
			goto fail;
	}
	/* the user's root folder */
	{
		char *argv[] = { "mkdir", "-p", (char *)s->root_remote, NULL };
		sb_t e = SB_INIT;
		if (run_as_user(s, argv, NULL, &e, NULL)) {
			jerr_set(err, JE_UNKNOWN, 0, "RuntimeError",
				 "Could not mkdir %s or %s. Original error: %s.", s->root_local, s->root_remote, e.buf);
			log_error("%s", err->msg.buf);
			sb_release(&e);
			goto fail;
		}
		sb_release(&e);
	}
	sb_release(&m);
	return &s->base;
fail:
	db_res_free(r);
	sb_release(&m);
	slurm_close(&s->base);
	return NULL;
}

static int64_t slurm_configure(executor_t *ex, const wft_t *w, int parallel, size_t n, jerr_t *err)
{
	slurm_t *s = (slurm_t *)ex;
	slurm_config_free(&s->cfg);
	s->have_cfg = 0;
	slurm_err_t e = SLURM_ERR_INIT;
	json_t *meta = parallel ? w->meta_p : w->meta_np;
	if (slurm_config_get(s->runner_config, meta, w->name, &s->cfg, &e) ||
	    slurm_batching(&s->cfg, parallel ? (int64_t)n : 1, &e)) {
		jerr_set(err, JE_UNKNOWN, 0, e.type ? e.type : "SlurmConfigError", "%s", e.msg.buf);
		slurm_err_release(&e);
		slurm_config_free(&s->cfg);
		return EXEC_CONFIG_FAILED;
	}
	slurm_err_release(&e);
	s->have_cfg = 1;
	return parallel ? s->cfg.tasks_per_job : -1;
}

/* ---- submit ---- */

/* dirname of path (malloc'd) */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	char *d = xmalloc(n + 1);
	memcpy(d, path, n);
	d[n] = '\0';
	return d;
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* "<prefix>-<component>" of a unit, from its log file name (…-log.txt) */
static void prefix_component(const unit_t *u, sb_t *out)
{
	const char *b = base_of(u->log_path.buf);
	size_t n = strlen(b);
	sb_add(out, b, n > 8 ? n - 8 : 0);
}

/* its prefix (up to the last '-') and component (after it), malloc'd */
static char *split_prefix(const unit_t *u, char **component)
{
	sb_t pc = SB_INIT;
	prefix_component(u, &pc);
	char *dash = strrchr(pc.buf, '-');
	if (component)
		*component = xstrdup(dash ? dash + 1 : "");
	if (dash)
		*dash = '\0';
	return sb_detach(&pc);
}

/* a unit's file on one side: "-log.txt", "-metadiff.json" (its own names),
 * or the worker's "input" / "output" (SlurmTask's names) */
static void unit_path(slurm_t *s, const unit_t *u, int remote, const char *what, sb_t *out)
{
	const char *dir = remote ? s->sub_remote : s->sub_local;
	if (!strcmp(what, "input") || !strcmp(what, "output")) {
		char *component;
		char *prefix = split_prefix(u, &component);
		slurm_task_file(out, dir, prefix, component, what);
		free(prefix);
		free(component);
		return;
	}
	sb_adds(out, dir);
	sb_addc(out, '/');
	prefix_component(u, out);
	sb_adds(out, what);
}

/* a SLURM job's file: "submit.sh", "out", "err" (with its id once known) */
static void sjob_path(slurm_t *s, const sjob_t *sj, int remote, const char *what, sb_t *out)
{
	const char *dir = remote ? s->sub_remote : s->sub_local;
	if (!strcmp(what, "submit.sh")) {
		slurm_job_file(out, dir, sj->prefix, what);
		return;
	}
	char w[48];
	if (sj->id)
		snprintf(w, sizeof(w), "%lld.%s", (long long)sj->id, what);
	else
		snprintf(w, sizeof(w), "%%j.%s", what);
	slurm_job_file(out, dir, sj->prefix, w);
}

static void fail_units(slurm_t *s, size_t first, size_t n, const char *msg)
{
	for (size_t i = first; i < first + n; i++)
		if (s->units[i].state != UNIT_FINISHED)
			unit_fail(&s->units[i], msg);
}

/* args and worker input of every unit of sj, its script; -1 with err set */
static int prepare_sjob(slurm_t *s, const exec_batch_t *b, sjob_t *sj, sb_t *err)
{
	size_t n = sj->n;
	char **inputs = xcalloc(n, sizeof(char *)), **outputs = xcalloc(n, sizeof(char *));
	const char *cache = s->base.job->a.user_cache_dir ? s->base.job->a.user_cache_dir : "";
	json_t *pyv = json_pack("[iii]", s->py_version[0], s->py_version[1], s->py_version[2]);
	int rc = -1;
	for (size_t k = 0; k < n; k++) {
		unit_t *u = &s->units[sj->first + k];
		char *a = json_dumps(u->args, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(17));
		int wrc = write_text(u->args_path.buf, a ? a : "{}", a ? strlen(a) : 2, 0644, err);
		free(a);
		if (wrc)
			goto out;
		sb_t in = SB_INIT, outp = SB_INIT, logr = SB_INIT, mdr = SB_INIT, argsr = SB_INIT, inr = SB_INIT;
		unit_path(s, u, 0, "input", &in);
		unit_path(s, u, 1, "output", &outp);
		unit_path(s, u, 1, "-log.txt", &logr);
		unit_path(s, u, 1, "-metadiff.json", &mdr);
		/* over SSH the worker reads its files on the user's side, where
		 * the job folder is sent; with sudo the server's are shared */
		if (s->ssh) {
			unit_path(s, u, 1, "-args.json", &argsr);
			unit_path(s, u, 1, "input", &inr);
		} else {
			sb_adds(&argsr, u->args_path.buf);
			sb_adds(&inr, in.buf);
		}
		json_t *input = slurm_worker_input(pyv, FRACTAL_VERSION, b->command, argsr.buf, mdr.buf, logr.buf,
						   cache);
		char *t = json_dumps(input, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		wrc = write_text(in.buf, t, strlen(t), 0644, err);
		free(t);
		json_decref(input);
		inputs[k] = sb_detach(&inr);
		outputs[k] = sb_detach(&outp);
		sb_release(&in);
		sb_release(&argsr);
		sb_release(&logr);
		sb_release(&mdr);
		if (wrc)
			goto out;
	}
	sb_t script = SB_INIT, worker = SB_INIT, path = SB_INIT;
	sb_addf(&worker, "%s %s", s->python, s->worker_remote);
	slurm_job_script_t js = { .workdir = s->sub_remote, .prefix = sj->prefix, .worker = worker.buf,
				  .user_cache_dir = cache, .n = n, .inputs = (const char *const *)inputs,
				  .outputs = (const char *const *)outputs };
	slurm_err_t e = SLURM_ERR_INIT;
	int src = slurm_script(&s->cfg, &js, &script, &e);
	if (src) {
		sb_add(err, e.msg.buf, e.msg.len);
	} else {
		sjob_path(s, sj, 0, "submit.sh", &path);
		src = write_text(path.buf, script.buf, script.len, 0644, err);
	}
	slurm_err_release(&e);
	sb_release(&script);
	sb_release(&worker);
	sb_release(&path);
	rc = src;
out:
	for (size_t k = 0; k < n; k++) {
		free(inputs[k]);
		free(outputs[k]);
	}
	free(inputs);
	free(outputs);
	json_decref(pyv);
	return rc;
}

/* sbatch --parsable of sj's script, retried while SLURM says the failure is
 * transient; 0 with sj->id set, else -1 with err set. */
static int sbatch(slurm_t *s, sjob_t *sj, sb_t *err)
{
	sb_t path = SB_INIT, chdir_opt = SB_INIT;
	sjob_path(s, sj, s->ssh, "submit.sh", &path);
	sb_addf(&chdir_opt, "--chdir=%s", s->sub_remote);
	char *argv[] = { "sbatch", "--parsable", chdir_opt.buf, path.buf, NULL };
	int rc = -1;
	for (int attempt = 1;; attempt++) {
		sb_t out = SB_INIT, e = SB_INIT, said = SB_INIT;
		int r = run_as_user(s, argv, &out, &e, &said);
		if (!r) {
			char *end;
			long long id = strtoll(out.buf, &end, 10);
			if (end != out.buf && id > 0) {
				sj->id = id;
				rc = 0;
			} else {
				sb_adds(err, "invalid literal for int() with base 10: ");
				py_repr_str(err, out.buf, out.len);
			}
		}
		int again = r && attempt < SBATCH_TRIES && slurm_sbatch_transient(said.buf) && !runner_stopping();
		if (r && again) {
			int pause = 1 << (attempt - 1);
			wlog(s->base.job, "WARNING", "sbatch failed (attempt %d of %d), retrying in %d s: %s", attempt,
			     SBATCH_TRIES, pause, said.buf);
			sleep((unsigned)pause);
		} else if (r) {
			if (s->ssh)
				sb_addf(err, "Submit command `sbatch --parsable %s %s` failed. Original error:\n%s",
					chdir_opt.buf, path.buf, e.buf);
			else
				sb_addf(err, "Submit command `sudo --set-home --non-interactive -u %s sbatch --parsable %s %s` "
					     "failed. Original error:\n%s",
					s->user, chdir_opt.buf, path.buf, e.buf);
		}
		sb_release(&out);
		sb_release(&e);
		sb_release(&said);
		if (!r || !again)
			break;
	}
	sb_release(&path);
	sb_release(&chdir_opt);
	return rc;
}

static void accounting_row(slurm_t *s)
{
	job_t *j = s->base.job;
	sb_t ids = SB_INIT;
	sb_addc(&ids, '[');
	int first = 1;
	for (size_t i = 0; i < s->njobs; i++)
		if (s->jobs[i].id) {
			sb_addf(&ids, "%s%lld", first ? "" : ",", (long long)s->jobs[i].id);
			first = 0;
		}
	sb_addc(&ids, ']');
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_exec(j->db,
		    "INSERT INTO accountingrecordslurm (user_id, \"timestamp\", slurm_job_ids, fractal_job_id, resource_id) "
		    "VALUES ($1, $2, $3, $4, $5)",
		    (db_param_t[]){ P_INT(j->a.user_id), P_TS(now), P_ARRAY(ids.buf), P_INT(j->a.job_id),
				    P_INT(j->a.resource_id) },
		    5, NULL))
		log_error("job %lld: cannot write its SLURM accounting record: %s", (long long)j->a.job_id,
			  db_errmsg(j->db));
	sb_release(&ids);
}

static int shutdown_requested(slurm_t *s)
{
	if (s->shutdown_seen)
		return 1;
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/shutdown", s->root_local);
	s->shutdown_seen = access(p.buf, F_OK) == 0;
	sb_release(&p);
	return s->shutdown_seen;
}

static void clear_batch(slurm_t *s)
{
	pthread_mutex_lock(&poller.mu);
	for (size_t i = 0; i < s->njobs; i++)
		poller_del_locked(&s->jobs[i]);
	pthread_mutex_unlock(&poller.mu);
	for (size_t i = 0; i < s->njobs; i++)
		free(s->jobs[i].prefix);
	free(s->jobs);
	s->jobs = NULL;
	s->njobs = 0;
	free(s->reported);
	s->reported = NULL;
	free(s->sub_local);
	free(s->sub_remote);
	s->sub_local = s->sub_remote = NULL;
	s->units = NULL;
	s->n = 0;
}

static executor_t *slurm_open(job_t *j, jerr_t *err)
{
	return slurm_open_mode(j, err, 0);
}

static executor_t *slurm_ssh_open(job_t *j, jerr_t *err)
{
	return slurm_open_mode(j, err, 1);
}

/* Runs a local command (tar); 0, or -1 with its output in err. */
static int run_local(slurm_t *s, char *const argv[], sb_t *err)
{
	sb_t out = SB_INIT;
	sb_addf(&out, "%s.tar-log", s->sub_local);
	const char *why = NULL;
	unlink(out.buf);
	int code = proc_run(argv, NULL, out.buf, &why);
	if (code) {
		sb_t said = SB_INIT;
		sb_read_file(out.buf, &said);
		sb_addf(err, "Command `");
		for (size_t i = 0; argv[i]; i++)
			sb_addf(err, "%s%s", i ? " " : "", argv[i]);
		sb_addf(err, "` failed (%d): %s", code, why ? why : said.buf);
		sb_release(&said);
	}
	unlink(out.buf);
	sb_release(&out);
	return code ? -1 : 0;
}

/* _send_many_job_inputs: the subfolder as a tar.gz, sent over SFTP beside
 * its twin on the user's side, extracted there, removed on both sides. */
static int send_inputs(slurm_t *s, sb_t *err)
{
	sb_t tl = SB_INIT, tr = SB_INIT, dir = SB_INIT, e = SB_INIT;
	sb_addf(&tl, "%s.tar.gz", s->sub_local);
	sb_addf(&tr, "%s.tar.gz", s->sub_remote);
	sb_addf(&dir, "--directory=%s", s->sub_local);
	char *tar_c[] = { "tar", "-c", "-z", "-f", tl.buf, dir.buf, ".", NULL };
	int rc = run_local(s, tar_c, &e);
	if (!rc)
		rc = host_ssh_put(s->host, tl.buf, tr.buf, &e);
	if (!rc) {
		sb_reset(&dir);
		sb_addf(&dir, "--directory=%s", s->sub_remote);
		char *tar_x[] = { "tar", "-xzf", tr.buf, dir.buf, NULL };
		rc = run_as_user(s, tar_x, NULL, &e, NULL);
		char *rm[] = { "rm", tr.buf, NULL };
		sb_t ignored = SB_INIT;
		run_as_user(s, rm, NULL, &ignored, NULL);
		sb_release(&ignored);
	}
	unlink(tl.buf);
	if (rc)
		sb_addf(err, "Could not send the job's input files to %s over SSH. Original error:\n%s", s->sub_remote,
			e.buf);
	sb_release(&tl);
	sb_release(&tr);
	sb_release(&dir);
	sb_release(&e);
	return rc;
}

/* _fetch_artifacts over SSH: the files of remote[] (all in sub_remote) as a
 * tar.gz made there, fetched over SFTP and extracted into sub_local. */
static int fetch_over_ssh(slurm_t *s, sjob_t *sj, char **remote, size_t n, sb_t *err)
{
	sb_t list = SB_INIT, lp = SB_INIT, tl = SB_INIT, tr = SB_INIT, dir = SB_INIT, from = SB_INIT, e = SB_INIT;
	for (size_t i = 0; i < n; i++)
		sb_addf(&list, "%s\n", base_of(remote[i]));
	sb_addf(&lp, "%s/filelist_%lld.txt", s->sub_remote, (long long)sj->id);
	sb_addf(&tr, "%s.tar.gz", s->sub_remote);
	sb_addf(&tl, "%s.tar.gz", s->sub_local);
	sb_addf(&dir, "--directory=%s", s->sub_remote);
	sb_addf(&from, "--files-from=%s", lp.buf);
	int rc = host_write_file(s->host, lp.buf, list.buf, list.len, &e);
	if (!rc) {
		char *tar_c[] = { "tar", "-c", "-z", "-f", tr.buf, dir.buf, from.buf, "--ignore-failed-read", NULL };
		rc = run_as_user(s, tar_c, NULL, &e, NULL);
	}
	if (!rc)
		rc = host_ssh_get(s->host, tr.buf, tl.buf, &e);
	if (!rc) {
		sb_reset(&dir);
		sb_addf(&dir, "--directory=%s", s->sub_local);
		char *tar_x[] = { "tar", "-xzf", tl.buf, dir.buf, NULL };
		rc = run_local(s, tar_x, &e);
	}
	unlink(tl.buf);
	if (rc)
		sb_addf(err, "Could not fetch the outputs of SLURM job %lld over SSH. Original error:\n%s",
			(long long)sj->id, e.buf);
	sb_release(&list);
	sb_release(&lp);
	sb_release(&tl);
	sb_release(&tr);
	sb_release(&dir);
	sb_release(&from);
	sb_release(&e);
	return rc;
}

static void slurm_submit(executor_t *ex, const exec_batch_t *b)
{
	slurm_t *s = (slurm_t *)ex;
	clear_batch(s);
	sb_reset(&s->error_log);
	s->has_error_log = 0;
	s->units = b->units;
	s->n = b->n;
	s->reported = xcalloc(b->n ? b->n : 1, 1);
	if (!b->n)
		return;
	if (shutdown_requested(s) || runner_stopping()) {
		fail_units(s, 0, s->n, SLURM_SHUTDOWN_ERROR);
		return;
	}
	if (!s->have_cfg) {
		fail_units(s, 0, s->n, "Unexpected branch: no SLURM configuration for this batch.");
		return;
	}
	/* the local subfolder (kinds.c made it) and its twin on the user's side */
	s->sub_local = dir_of(b->units[0].args_path.buf);
	{
		size_t rl = strlen(s->root_local);
		sb_t r = SB_INIT;
		sb_adds(&r, s->root_remote);
		sb_adds(&r, !strncmp(s->sub_local, s->root_local, rl) ? s->sub_local + rl : "");
		s->sub_remote = sb_detach(&r);
	}
	sb_t err = SB_INIT;
	/* _enrich_slurm_config: the job's account and worker_init lines */
	slurm_config_finish(&s->cfg, s->account, s->worker_init);
	if (!b->parallel)
		s->cfg.parallel_tasks_per_job = 1;
	s->have_cfg = 0; /* spent: the next batch needs configure() again */
	char *argv[] = { "mkdir", "-p", s->sub_remote, NULL };
	if (run_as_user(s, argv, NULL, &err, NULL)) {
		fail_units(s, 0, s->n, err.buf);
		goto out;
	}
	/* batches of tasks_per_job units, one SLURM job each */
	size_t per = b->parallel && b->per_batch > 0 ? (size_t)b->per_batch : s->n;
	s->njobs = (s->n + per - 1) / per;
	s->jobs = xcalloc(s->njobs, sizeof(sjob_t));
	for (size_t i = 0; i < s->njobs; i++) {
		sjob_t *sj = &s->jobs[i];
		sj->first = i * per;
		sj->n = sj->first + per <= s->n ? per : s->n - sj->first;
		sj->prefix = split_prefix(&s->units[sj->first], NULL);
		sj->user = s->user;
		sj->ssh_host = s->ssh ? s->ssh_host : NULL;
		sj->ssh_key = s->ssh ? s->ssh_key : NULL;
		sj->interval_usec = s->interval_usec;
	}
	for (size_t i = 0; i < s->njobs; i++)
		if (prepare_sjob(s, b, &s->jobs[i], &err)) {
			fail_units(s, 0, s->n, err.buf);
			goto out;
		}
	if (s->ssh && send_inputs(s, &err)) {
		wlog(s->base.job, "ERROR", "%s", err.buf);
		fail_units(s, 0, s->n, err.buf);
		goto out;
	}
	for (size_t i = 0; i < s->njobs; i++) {
		if (sbatch(s, &s->jobs[i], &err)) {
			wlog(s->base.job, "ERROR", "%s", err.buf);
			scancel(s, 0);
			fail_units(s, 0, s->n, err.buf);
			/* every unit has its exception: nothing left to wait for */
			for (size_t k = 0; k < s->njobs; k++)
				s->jobs[k].processed = 1;
			break;
		}
		wlog(s->base.job, "INFO", "[_submit_single_sbatch] SLURM job %lld: %zu unit(s)",
		     (long long)s->jobs[i].id, s->jobs[i].n);
	}
	/* multisubmit writes the record even after a failure; submit only on success */
	if (b->parallel || !err.len)
		accounting_row(s);
	if (!err.len)
		for (size_t i = 0; i < s->njobs; i++)
			poller_add(&s->jobs[i]);
out:
	sb_release(&err);
}

/* ---- wait: poll, fetch, postprocess ---- */

/* `sudo -u <user> cat <remote>` > local for every pair, at most
 * MAX_FETCH_PROCS at a time; a file that cannot be read is skipped. */
static void fetch_files(slurm_t *s, char **remote, char **local, size_t n)
{
	pid_t *pids = xcalloc(n ? n : 1, sizeof(pid_t));
	size_t next = 0, running = 0, done = 0;
	while (done < n) {
		while (next < n && running < MAX_FETCH_PROCS) {
			sb_t tmp = SB_INIT;
			sb_addf(&tmp, "%s.part", local[next]);
			unlink(tmp.buf);
			char *argv[] = { "sudo", "--set-home", "--non-interactive", "-u", s->user, "cat", remote[next], NULL };
			const char *why = NULL;
			pid_t pid = proc_start2(argv, NULL, tmp.buf, "/dev/null", &why);
			sb_release(&tmp);
			if (pid > 0) {
				bgjob_pid_add(s->base.job->bg, pid);
				pids[next] = pid;
				running++;
			} else {
				pids[next] = -1;
				done++;
			}
			next++;
		}
		int progressed = 0;
		for (size_t i = 0; i < next; i++) {
			int code;
			if (pids[i] > 0 && proc_poll(pids[i], &code)) {
				bgjob_pid_del(s->base.job->bg, pids[i]);
				sb_t tmp = SB_INIT;
				sb_addf(&tmp, "%s.part", local[i]);
				if (code == 0)
					rename(tmp.buf, local[i]);
				else
					unlink(tmp.buf);
				sb_release(&tmp);
				pids[i] = 0;
				running--;
				done++;
				progressed = 1;
			}
		}
		if (!progressed && done < n)
			usleep(2000);
	}
	free(pids);
}

/* The SLURM job's stdout/stderr and its units' files, copied back into the
 * local subfolder; 0, or -1 with err set (SSH: the transfer failed). */
static int fetch_artifacts(slurm_t *s, sjob_t *sj, sb_t *ferr)
{
	int frc = 0;
	size_t cap = 2 + 3 * sj->n, k = 0;
	char **remote = xcalloc(cap, sizeof(char *)), **local = xcalloc(cap, sizeof(char *));
	static const char *const std[] = { "out", "err" };
	for (int i = 0; i < 2; i++) {
		sb_t r = SB_INIT, l = SB_INIT;
		sjob_path(s, sj, 1, std[i], &r);
		sjob_path(s, sj, 0, std[i], &l);
		remote[k] = sb_detach(&r);
		local[k++] = sb_detach(&l);
	}
	static const char *const per_unit[] = { "-output.json", "-log.txt", "-metadiff.json" };
	for (size_t u = sj->first; u < sj->first + sj->n; u++)
		for (int i = 0; i < 3; i++) {
			sb_t r = SB_INIT, l = SB_INIT;
			unit_path(s, &s->units[u], 1, per_unit[i], &r);
			unit_path(s, &s->units[u], 0, per_unit[i], &l);
			remote[k] = sb_detach(&r);
			local[k++] = sb_detach(&l);
		}
	if (s->ssh)
		frc = fetch_over_ssh(s, sj, remote, k, ferr);
	else
		fetch_files(s, remote, local, k);
	/* executor_error_log: the first finished job with real stderr */
	if (!s->has_error_log) {
		sb_t text = SB_INIT;
		if (!sb_read_file(local[1], &text)) {
			sb_t kept = SB_INIT;
			if (slurm_stderr_filter(text.buf, text.len, &kept)) {
				sb_add(&s->error_log, kept.buf, kept.len);
				s->has_error_log = 1;
				log_warning("SLURM error detected: %s", kept.buf);
			}
			sb_release(&kept);
		}
		sb_release(&text);
	}
	for (size_t i = 0; i < k; i++) {
		free(remote[i]);
		free(local[i]);
	}
	free(remote);
	free(local);
	return frc;
}

/* _postprocess_single_task */
static void postprocess(slurm_t *s, sjob_t *sj, unit_t *u)
{
	sb_t out = SB_INIT, in = SB_INIT, text = SB_INIT, rerr = SB_INIT, exc = SB_INIT;
	unit_path(s, u, 0, "output", &out);
	unit_path(s, u, 0, "input", &in);
	int readable = !sb_read_file(out.buf, &text);
	if (!readable)
		os_error(&rerr, errno ? errno : ENOENT, out.buf);
	json_t *result = NULL;
	enum slurm_outcome oc = slurm_output_parse(readable ? text.buf : NULL, text.len, rerr.buf, &result, &exc);
	if (oc == SLURM_OUT_RESULT) {
		u->result = result;
		u->state = UNIT_FINISHED;
	} else if (oc == SLURM_OUT_JOB_ERROR && sj->scancelled) {
		unit_fail(u, SLURM_SHUTDOWN_ERROR);
	} else {
		unit_fail(u, exc.buf);
	}
	unlink(out.buf);
	unlink(in.buf);
	sb_release(&out);
	sb_release(&in);
	sb_release(&text);
	sb_release(&rerr);
	sb_release(&exc);
}

/* the units already finished (failed at submission) not yet reported */
static size_t report_finished(slurm_t *s, unit_t **done, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n && k < cap; i++)
		if (!s->reported[i] && s->units[i].state == UNIT_FINISHED) {
			s->reported[i] = 1;
			done[k++] = &s->units[i];
		}
	return k;
}

/* After an squeue failure (a slurmctld restart, say), SLURM may keep a job
 * RUNNING that has ended while it was away. Every few intervals, such a job's
 * stdout is read as the user: once its script has written its last line
 * ("End time:"), the job is over whatever squeue says. A restart quick
 * enough that no squeue failed does the same (seen here: slurmctld back
 * within one interval, the job's completion lost), so every job that is
 * not done is looked at too, at a slow pace: every 30 s or 10 intervals. */
static void check_suspects(slurm_t *s)
{
	int64_t now = mono_usec(), pause = 5 * s->interval_usec > 2000000 ? 5 * s->interval_usec : 2000000;
	int64_t slow = 10 * s->interval_usec > 30000000 ? 10 * s->interval_usec : 30000000;
	for (size_t i = 0; i < s->njobs; i++) {
		sjob_t *sj = &s->jobs[i];
		pthread_mutex_lock(&poller.mu);
		int look = 0;
		if (sj->id && !sj->done) {
			if (!sj->next_check && !sj->suspect)
				sj->next_check = now + slow; /* just submitted */
			else if (now >= sj->next_check) {
				look = 1;
				sj->next_check = now + (sj->suspect ? pause : slow);
			}
		}
		pthread_mutex_unlock(&poller.mu);
		if (!look)
			continue;
		sb_t path = SB_INIT, out = SB_INIT, err = SB_INIT;
		sjob_path(s, sj, 1, "out", &path);
		char *argv[] = { "cat", path.buf, NULL };
		if (!run_as_user(s, argv, &out, &err, NULL) && strstr(out.buf, "End time:")) {
			wlog(s->base.job, "WARNING", "SLURM job %lld has ended (its script wrote its last line) while squeue "
			     "still lists it: taken as ended", (long long)sj->id);
			pthread_mutex_lock(&poller.mu);
			sj->done = 1;
			poller_del_locked(sj);
			pthread_mutex_unlock(&poller.mu);
		}
		sb_release(&path);
		sb_release(&out);
		sb_release(&err);
	}
}

static size_t slurm_wait(executor_t *ex, unit_t **done, size_t cap)
{
	slurm_t *s = (slurm_t *)ex;
	for (;;) {
		size_t k = report_finished(s, done, cap);
		if (k)
			return k;
		/* the SLURM jobs SLURM says have ended */
		int outstanding = 0;
		pthread_mutex_lock(&poller.mu);
		for (size_t i = 0; i < s->njobs; i++) {
			sjob_t *sj = &s->jobs[i];
			if (!sj->id || sj->processed)
				continue;
			int ended = sj->done;
			if (!ended) {
				outstanding = 1;
				continue;
			}
			pthread_mutex_unlock(&poller.mu);
			sb_t ferr = SB_INIT;
			if (fetch_artifacts(s, sj, &ferr)) {
				wlog(s->base.job, "ERROR", "%s", ferr.buf);
				fail_units(s, sj->first, sj->n, ferr.buf);
			} else {
				for (size_t u = sj->first; u < sj->first + sj->n; u++)
					postprocess(s, sj, &s->units[u]);
			}
			sb_release(&ferr);
			pthread_mutex_lock(&poller.mu);
			sj->processed = 1;
		}
		pthread_mutex_unlock(&poller.mu);
		k = report_finished(s, done, cap);
		if (k)
			return k;
		if (!outstanding)
			return 0;
		/* a failed squeue: say so in this job's log, once per failure */
		pthread_mutex_lock(&poller.mu);
		if (poller.seq != s->poll_seq_seen && poller.last_error) {
			s->poll_seq_seen = poller.seq;
			wlog(s->base.job, "WARNING", "squeue failed (%d in a row), retrying: %s", poller.failures,
			     poller.last_error);
		}
		int64_t now = mono_usec();
		if (!poller.polling && now >= poller.next_poll) {
			poller.polling = 1;
			pthread_mutex_unlock(&poller.mu);
			poll_once();
		} else {
			/* wake at the next poll, or a tenth of our interval to look
			 * for the shutdown file */
			int64_t until = now + s->interval_usec / 10;
			if (!poller.polling && poller.next_poll < until)
				until = poller.next_poll;
			int64_t left = until - now;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = (int64_t)ts.tv_nsec + (left % 1000000) * 1000;
			ts.tv_sec += (time_t)(left / 1000000 + ns / 1000000000);
			ts.tv_nsec = (long)(ns % 1000000000);
			pthread_cond_timedwait(&poller.cv, &poller.mu, &ts);
			pthread_mutex_unlock(&poller.mu);
		}
		if (!s->shutdown_seen && shutdown_requested(s)) {
			wlog(s->base.job, "INFO", "[wait_and_check_shutdown] Shutdown file detected");
			scancel(s, 1);
		}
		check_suspects(s);
	}
}

static void slurm_cancel(executor_t *ex)
{
	scancel((slurm_t *)ex, 1);
}

static const char *slurm_error_log(executor_t *ex)
{
	slurm_t *s = (slurm_t *)ex;
	return s->has_error_log ? s->error_log.buf : NULL;
}

static void slurm_close(executor_t *ex)
{
	slurm_t *s = (slurm_t *)ex;
	clear_batch(s);
	slurm_config_free(&s->cfg);
	host_close(s->host);
	json_decref(s->runner_config);
	free(s->user);
	free(s->python);
	free(s->account);
	free(s->worker_init);
	free(s->worker_path);
	free(s->worker_remote);
	free(s->ssh_host);
	free(s->ssh_key);
	sb_release(&s->error_log);
	free(s);
}

/* Server shutdown: scancel every registered SLURM job, as its user, from the
 * calling thread; the instances then see them end. */
static void slurm_shutdown(int force)
{
	pthread_mutex_lock(&poller.mu);
	size_t n = poller.n;
	int64_t *ids = xcalloc(n ? n : 1, sizeof(*ids));
	char **users = xcalloc(n ? n : 1, sizeof(char *));
	char **hosts = xcalloc(n ? n : 1, sizeof(char *)), **keys = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		ids[i] = poller.v[i]->id;
		users[i] = xstrdup(poller.v[i]->user);
		if (poller.v[i]->ssh_host) {
			hosts[i] = xstrdup(poller.v[i]->ssh_host);
			keys[i] = xstrdup(poller.v[i]->ssh_key);
		}
		poller.v[i]->scancelled = 1;
	}
	pthread_mutex_unlock(&poller.mu);
	/* slurm_ssh jobs: one scancel per job, over SSH as its user */
	for (size_t i = 0; i < n; i++) {
		if (!hosts[i])
			continue;
		sb_t e = SB_INIT;
		host_t *h = host_ssh_open(NULL, hosts[i], users[i], keys[i], NULL, &e);
		char idbuf[24];
		snprintf(idbuf, sizeof(idbuf), "%lld", (long long)ids[i]);
		char *argv[] = { "scancel", idbuf, NULL };
		host_run_t r = HOST_RUN_INIT;
		if (!h || host_run(h, argv, NULL, &r) || !r.started || r.code)
			log_error("Shutdown: scancel %s over SSH as %s failed: %s%s", idbuf, users[i], e.buf, r.err.buf);
		else
			log_warning("Shutdown: scancelled SLURM job %s of %s over SSH%s", idbuf, users[i],
				    force ? " (again)" : "");
		host_run_release(&r);
		host_close(h);
		sb_release(&e);
		free(users[i]);
		users[i] = NULL;
		free(hosts[i]);
		free(keys[i]);
	}
	free(hosts);
	free(keys);
	if (n) {
		sb_t e = SB_INIT;
		host_t *h = host_local_open(NULL, "/tmp/fractal-scancel.XXXXXX", &e);
		for (size_t i = 0; h && i < n; i++) {
			if (!users[i])
				continue;
			/* one scancel per user, with all of that user's jobs */
			char **argv = xcalloc(n + 7, sizeof(char *));
			char (*buf)[24] = xcalloc(n, sizeof(*buf));
			size_t k = 0;
			argv[k++] = "sudo";
			argv[k++] = "--set-home";
			argv[k++] = "--non-interactive";
			argv[k++] = "-u";
			argv[k++] = users[i];
			argv[k++] = "scancel";
			for (size_t j = i; j < n; j++)
				if (users[j] && !strcmp(users[j], users[i])) {
					snprintf(buf[j], sizeof(buf[j]), "%lld", (long long)ids[j]);
					argv[k++] = buf[j];
					if (j != i) {
						free(users[j]);
						users[j] = NULL;
					}
				}
			host_run_t r = HOST_RUN_INIT;
			if (host_run(h, argv, NULL, &r) || !r.started || r.code)
				log_error("Shutdown: scancel as %s failed: %s", argv[4], r.err.buf);
			else
				log_warning("Shutdown: scancelled %zu SLURM job(s) of %s%s", k - 6, argv[4],
					    force ? " (again)" : "");
			host_run_release(&r);
			free(argv);
			free(buf);
		}
		if (!h)
			log_error("Shutdown: cannot scancel the SLURM jobs: %s", e.buf);
		host_close(h);
		sb_release(&e);
	}
	for (size_t i = 0; i < n; i++)
		free(users[i]);
	free(users);
	free(ids);
	/* waiting instances look again now */
	pthread_mutex_lock(&poller.mu);
	poller.next_poll = 0;
	pthread_cond_broadcast(&poller.cv);
	pthread_mutex_unlock(&poller.mu);
}

const struct executor_ops exec_slurm_sudo_ops = {
	.resource_type = "slurm_sudo",
	.open = slurm_open,
	.configure = slurm_configure,
	.submit = slurm_submit,
	.wait = slurm_wait,
	.cancel = slurm_cancel,
	.error_log = slurm_error_log,
	.close = slurm_close,
	.shutdown = slurm_shutdown,
};

/* slurm_ssh: the same, with every command and file of the user over SSH
 * (util/host_ssh.c) */
const struct executor_ops exec_slurm_ssh_ops = {
	.resource_type = "slurm_ssh",
	.open = slurm_ssh_open,
	.configure = slurm_configure,
	.submit = slurm_submit,
	.wait = slurm_wait,
	.cancel = slurm_cancel,
	.error_log = slurm_error_log,
	.close = slurm_close,
	.shutdown = slurm_shutdown,
};

/* ---- restart ---- */

int exec_slurm_cancel_leftover(db_t *db, int64_t job_id, sb_t *note)
{
	db_res_t *r = NULL;
	if (db_exec(db,
		    "SELECT a.slurm_job_ids, p.username, res.type, res.host, p.ssh_key_path FROM accountingrecordslurm a "
		    "JOIN user_oauth u ON u.id = a.user_id JOIN profile p ON p.id = u.profile_id "
		    "JOIN resource res ON res.id = p.resource_id "
		    "WHERE a.fractal_job_id = $1 AND res.type IN ('slurm_sudo', 'slurm_ssh') ORDER BY a.id",
		    (db_param_t[]){ P_INT(job_id) }, 1, &r))
		return -1;
	size_t cap = 8, n = 6;
	char **argv = xcalloc(cap, sizeof(char *));
	sb_t ids = SB_INIT;
	const char *user = NULL, *ssh_host = NULL, *ssh_key = NULL;
	for (int i = 0; i < db_nrows(r); i++) {
		if (!strcmp(db_text(r, i, 2), "slurm_ssh")) {
			ssh_host = db_text(r, i, 3);
			ssh_key = db_text(r, i, 4);
		}
		json_t *a = json_loads(db_text(r, i, 0) ? db_text(r, i, 0) : "[]", 0, NULL);
		size_t k;
		json_t *v;
		json_array_foreach(a, k, v) {
			if (n + 2 > cap) {
				cap *= 2;
				argv = xrealloc(argv, cap * sizeof(char *));
			}
			char buf[24];
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
			argv[n++] = xstrdup(buf);
			sb_addf(&ids, "%s%s", ids.len ? ", " : "", buf);
		}
		json_decref(a);
		user = db_text(r, i, 1);
	}
	int rc = 0;
	if (n > 6 && user) {
		argv[0] = "sudo";
		argv[1] = "--set-home";
		argv[2] = "--non-interactive";
		argv[3] = "-u";
		argv[4] = (char *)user;
		argv[5] = "scancel";
		argv[n] = NULL;
		sb_t e = SB_INIT;
		/* over SSH: scancel as the user there, without sudo */
		host_t *h = ssh_host ? host_ssh_open(NULL, ssh_host, user, ssh_key, NULL, &e)
				     : host_local_open(NULL, "/tmp/fractal-scancel.XXXXXX", &e);
		host_run_t res = HOST_RUN_INIT;
		if (h && !host_run(h, ssh_host ? argv + 5 : argv, NULL, &res) && res.started) {
			sb_addf(note, "Its SLURM jobs (%s) were scancelled at server start-up.\n", ids.buf);
			log_warning("Job %lld: scancelled its SLURM jobs %s as %s", (long long)job_id, ids.buf, user);
		} else {
			log_error("Job %lld: cannot scancel its SLURM jobs %s: %s", (long long)job_id, ids.buf,
				  h ? res.err.buf : e.buf);
			rc = -1;
		}
		host_run_release(&res);
		host_close(h);
		sb_release(&e);
	}
	for (size_t i = 6; i < n; i++)
		free(argv[i]);
	free(argv);
	sb_release(&ids);
	db_res_free(r);
	return rc;
}
