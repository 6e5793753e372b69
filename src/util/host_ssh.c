/* host_ssh.c — the host_ops of a cluster's login node reached over SSH as
 * the profile's user (see host.h; upstream's fractal_server/ssh/_fabric.py,
 * FractalSSH).
 *
 * The library: OpenSSH's own client processes (ssh, scp), one master
 * connection per (host, port, user, key) with connection sharing
 * (ControlMaster/ControlPath), every command a multiplexed session on it.
 * Chosen over libssh because OpenSSH gives, from the client every site
 * already uses and configures, what we would otherwise write and keep
 * right ourselves: host-key checking against known_hosts files
 * (StrictHostKeyChecking=yes, never an automatic accept), keepalive
 * (ServerAliveInterval/CountMax, so a dead peer is noticed in ~30 s),
 * connect timeouts, key-only login (BatchMode, IdentitiesOnly, no agent, no
 * password or keyboard-interactive), and SFTP for files (scp speaks SFTP
 * since OpenSSH 9.0, as upstream's paramiko does). A login costs 0.3-0.6 s
 * here; a session on an open master costs a process start and one round
 * trip (bench/RESULTS.md). Commands take an argv: each word is single-quoted
 * for the remote shell, so a user value stays one argument.
 *
 * Sharing and serialisation: the masters live in a process-wide table for
 * the server's lifetime (host_ssh_shutdown() ends them by pid; a server
 * killed outright takes them along, see spawn_master()). Each entry
 * has upstream's FractalSSH lock: every command and transfer on that
 * connection holds it, waiting at most FRACTAL_SSH_LOCK_TIMEOUT seconds
 * (default 500, upstream's) and failing with upstream's "Failed to acquire
 * lock" text otherwise. Reconnecting: when a session fails with ssh's own
 * exit code 255 and the master has died (sshd restarted, the network
 * dropped), the master is started again and the operation is retried once,
 * as upstream's retry_if_socket_error does.
 *
 * Settings (read with settings_raw, like FRACTAL_PYPI_SIMPLE_URL; our own,
 * upstream takes these from paramiko's defaults): FRACTAL_SSH_KNOWN_HOSTS,
 * the known_hosts file to check host keys against (default: ssh's own,
 * ~/.ssh/known_hosts of the server's user); FRACTAL_SSH_CONNECT_TIMEOUT
 * (seconds, default 10); FRACTAL_SSH_LOCK_TIMEOUT (seconds, default 500).
 *
 * Paths are the remote host's. The scratch folder is made there with
 * mktemp -d; a local one (mkdtemp under /tmp) holds the captured output of
 * commands and the files being transferred. */
#include "util/host.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/settings.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

#define SSH_EXIT_ERROR 255


typedef struct conn {
	char *host, *port, *user, *key;
	char *ctl;              /* the control socket */
	char *log;              /* the master's stderr */
	pid_t master;           /* 0: none running */
	int keep;               /* the write end of the master's stdin (see spawn_master) */
	pthread_mutex_t lock;   /* FractalSSH._lock */
	struct conn *next;
} conn_t;

static struct {
	pthread_mutex_t mu;
	conn_t *list;
	char *dir;              /* control sockets and master logs, mkdtemp'd */
	unsigned n;
} table = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0 };

typedef struct ssh_host {
	host_t h;
	bgjob_t *job;
	conn_t *c;
	char *local;            /* local scratch (captured output, transfers) */
	char *scratch;          /* remote scratch, or NULL */
	unsigned seq;
} ssh_host_t;

/* ---- settings ---- */

static double setting_seconds(const char *name, double def)
{
	const char *v = settings_raw(name);
	char *end;
	double d = v ? strtod(v, &end) : def;
	return v && (end == v || d <= 0) ? def : d;
}

/* ---- quoting for the remote shell ---- */

void host_sh_quote(sb_t *out, const char *s)
{
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,@%+-") == strlen(s)) {
		sb_adds(out, s);
		return;
	}
	sb_addc(out, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sb_adds(out, "'\\''");
		else
			sb_addc(out, *s);
	}
	sb_addc(out, '\'');
}

/* ---- the ssh command lines ---- */

/* argv of ssh/scp with every option of a connection; returns the count.
 * scp takes the port as -P and the user in the destination. */
static size_t common_opts(const conn_t *c, const char **v, size_t k, int scp, sb_t *hold)
{
	const char *kh = settings_raw("FRACTAL_SSH_KNOWN_HOSTS");
	sb_addf(&hold[0], "IdentityFile=%s", c->key);
	sb_addf(&hold[1], "ConnectTimeout=%d", (int)setting_seconds("FRACTAL_SSH_CONNECT_TIMEOUT", 10));
	sb_addf(&hold[2], "ControlPath=%s", c->ctl);
	if (kh && *kh)
		sb_addf(&hold[3], "UserKnownHostsFile=%s", kh);
	static const char *const fixed[] = { "BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none",
					     "PasswordAuthentication=no", "KbdInteractiveAuthentication=no",
					     "StrictHostKeyChecking=yes", "ServerAliveInterval=10",
					     "ServerAliveCountMax=3", "LogLevel=ERROR", "ForwardAgent=no" };
	v[k++] = "-F";
	v[k++] = "none";
	for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++) {
		v[k++] = "-o";
		v[k++] = fixed[i];
	}
	for (int i = 0; i < 4; i++)
		if (hold[i].len) {
			v[k++] = "-o";
			v[k++] = hold[i].buf;
		}
	v[k++] = scp ? "-P" : "-p";
	v[k++] = c->port;
	if (!scp) {
		v[k++] = "-l";
		v[k++] = c->user;
	}
	return k;
}

#define MAX_ARGV 48

/* ---- the master ---- */

static int master_alive(conn_t *c)
{
	int code;
	if (c->master <= 0)
		return 0;
	if (proc_poll(c->master, &code)) {
		c->master = 0;
		return 0;
	}
	return 1;
}

static void master_stop(conn_t *c)
{
	if (c->keep >= 0) {
		close(c->keep);
		c->keep = -1;
	}
	if (c->master > 0) {
		kill(c->master, SIGTERM);
		for (int i = 0; i < 50; i++) {
			int code;
			if (proc_poll(c->master, &code)) {
				c->master = 0;
				break;
			}
			usleep(20000);
		}
		if (c->master > 0) {
			kill(c->master, SIGKILL);
			proc_wait(c->master);
			c->master = 0;
		}
	}
	unlink(c->ctl);
}

/* Starts the master v with its stdin the read end of a pipe whose write end
 * only this process holds (*keep, close-on-exec): its own session runs
 * `cat >/dev/null`, so that when the server dies, even by SIGKILL, the pipe
 * closes, that session ends, and the master exits once its last shared
 * session has, instead of living on as an orphan. Its own process group;
 * stderr to log. -1 with errno. */
static pid_t spawn_master(const char *const *v, const char *log, int *keep)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	unlink(log);
	const char *why = NULL;
	pid_t pid = proc_start_in((char *const *)v, NULL, fds[0], "/dev/null", log, &why);
	int saved = errno;
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		errno = saved;
		return -1;
	}
	*keep = fds[1];
	return pid;
}

/* Starts c's master unless it runs; under c->lock. 0, or -1 with upstream's
 * "Cannot open SSH connection" text and ssh's own words in *err. */
static int master_start(conn_t *c, sb_t *err)
{
	if (master_alive(c) && access(c->ctl, F_OK) == 0)
		return 0;
	master_stop(c);
	const char *v[MAX_ARGV];
	sb_t hold[4] = { SB_INIT, SB_INIT, SB_INIT, SB_INIT };
	size_t k = 0;
	v[k++] = "ssh";
	v[k++] = "-M";
	k = common_opts(c, v, k, 0, hold);
	v[k++] = "-o";
	v[k++] = "ControlPersist=no";
	v[k++] = c->host;
	v[k++] = "--";
	v[k++] = "cat >/dev/null";
	v[k] = NULL;
	int64_t t0 = mono_usec();
	pid_t pid = spawn_master(v, c->log, &c->keep);
	for (int i = 0; i < 4; i++)
		sb_release(&hold[i]);
	if (pid < 0) {
		sb_addf(err, "Cannot open SSH connection. Original error:\nssh: %s", strerror(errno));
		return -1;
	}
	c->master = pid;
	double limit = setting_seconds("FRACTAL_SSH_CONNECT_TIMEOUT", 10) + 5;
	for (;;) {
		if (!master_alive(c)) {
			sb_t said = SB_INIT;
			sb_read_file(c->log, &said);
			while (said.len && (said.buf[said.len - 1] == '\n' || said.buf[said.len - 1] == '\r'))
				said.buf[--said.len] = '\0';
			sb_addf(err, "Cannot open SSH connection. Original error:\n%s",
				said.len ? said.buf : "ssh exited without a message");
			sb_release(&said);
			unlink(c->ctl);
			return -1;
		}
		if (access(c->ctl, F_OK) == 0) {
			log_info("SSH connection to %s@%s:%s opened in %.3f s", c->user, c->host, c->port,
				 (double)(mono_usec() - t0) / 1e6);
			return 0;
		}
		if ((double)(mono_usec() - t0) / 1e6 > limit) {
			master_stop(c);
			sb_addf(err, "Cannot open SSH connection. Original error:\ntimed out after %.0f s connecting to "
				     "%s port %s", limit, c->host, c->port);
			return -1;
		}
		usleep(10000);
	}
}

/* ---- the table ---- */

static conn_t *conn_get(const char *host, const char *user, const char *key, sb_t *err)
{
	char *h = xstrdup(host), *port = NULL;
	char *colon = strrchr(h, ':');
	if (colon && colon == strchr(h, ':')) { /* HOST:PORT (one colon: not IPv6) */
		*colon = '\0';
		port = xstrdup(colon + 1);
		if (!*port || strspn(port, "0123456789") != strlen(port)) {
			sb_addf(err, "Invalid SSH host '%s': the port must be a number.", host);
			free(h);
			free(port);
			return NULL;
		}
	} else {
		port = xstrdup("22");
	}
	pthread_mutex_lock(&table.mu);
	conn_t *c = table.list;
	for (; c; c = c->next)
		if (!strcmp(c->host, h) && !strcmp(c->port, port) && !strcmp(c->user, user) && !strcmp(c->key, key))
			break;
	if (!c && !table.dir) {
		char tmpl[] = "/tmp/fractal-ssh.XXXXXX";
		if (mkdtemp(tmpl))
			table.dir = xstrdup(tmpl);
		else
			sb_addf(err, "Cannot create the SSH control folder: %s", strerror(errno));
	}
	if (!c && table.dir) {
		c = xcalloc(1, sizeof(*c));
		c->host = h;
		c->port = port;
		c->user = xstrdup(user);
		c->key = xstrdup(key);
		sb_t p = SB_INIT;
		sb_addf(&p, "%s/%u.sock", table.dir, table.n);
		c->ctl = sb_detach(&p);
		sb_addf(&p, "%s/%u.log", table.dir, table.n++);
		c->log = sb_detach(&p);
		pthread_mutex_init(&c->lock, NULL);
		c->keep = -1;
		c->next = table.list;
		table.list = c;
		h = port = NULL;
	}
	pthread_mutex_unlock(&table.mu);
	free(h);
	free(port);
	return c;
}

/* FractalSSH's lock with its timeout; 0, or -1 with upstream's text. */
static int conn_lock(conn_t *c, const char *label, sb_t *err)
{
	double t = setting_seconds("FRACTAL_SSH_LOCK_TIMEOUT", 500);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)t;
	ts.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_mutex_timedlock(&c->lock, &ts)) {
		sb_addf(err, "Failed to acquire lock for '%s' within %g seconds", label, t);
		return -1;
	}
	return 0;
}

void host_ssh_shutdown(void)
{
	pthread_mutex_lock(&table.mu);
	for (conn_t *c = table.list; c; c = c->next) {
		pthread_mutex_lock(&c->lock);
		master_stop(c);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&table.mu);
}

/* ---- one process over the connection ---- */

typedef struct outcome {
	int started, code, errnum;
	const char *why;
} outcome_t;

/* Runs v (ssh or scp over the master) with stdout/stderr to the local
 * scratch; under c->lock. */
static void run_client(ssh_host_t *s, const char *const *v, outcome_t *o, sb_t *out, sb_t *errout)
{
	sb_t op = SB_INIT, ep = SB_INIT;
	sb_addf(&op, "%s/stdout", s->local);
	sb_addf(&ep, "%s/stderr", s->local);
	unlink(op.buf);
	unlink(ep.buf);
	const char *why = NULL;
	pid_t pid = proc_start2((char *const *)v, NULL, op.buf, ep.buf, &why);
	if (pid < 0) {
		o->started = 0;
		o->errnum = errno;
		o->why = why;
	} else {
		if (s->job)
			bgjob_pid_add(s->job, pid);
		o->code = proc_wait(pid);
		if (s->job)
			bgjob_pid_del(s->job, pid);
		o->started = 1;
		sb_read_file(op.buf, out);
		sb_read_file(ep.buf, errout);
	}
	sb_release(&op);
	sb_release(&ep);
}

/* Runs the remote shell command cmd (ssh) or, with scp_from/scp_to set,
 * copies between the two sides (scp); connects first, reconnects and retries
 * once when the connection turns out broken. Fills *res as host_run does;
 * -1 when it could not run (reason in res->why or *err). */
static int ssh_exec(ssh_host_t *s, const char *cmd, const char *scp_from, const char *scp_to, host_run_t *res,
		    sb_t *err)
{
	conn_t *c = s->c;
	res->started = 0;
	res->errnum = 0;
	if (s->job && bgjob_stopping(s->job)) {
		res->why = "fractal-server is shutting down";
		return -1;
	}
	if (conn_lock(c, cmd ? cmd : "scp", err))
		return -1;
	int rc = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = -1;
		if (master_start(c, err)) {
			res->started = 0;
			res->why = "the SSH connection failed";
			break;
		}
		const char *v[MAX_ARGV];
		sb_t hold[4] = { SB_INIT, SB_INIT, SB_INIT, SB_INIT }, dest = SB_INIT;
		size_t k = 0;
		v[k++] = cmd ? "ssh" : "scp";
		if (!cmd) {
			v[k++] = "-q";
			v[k++] = "-B";
		}
		k = common_opts(c, v, k, !cmd, hold);
		v[k++] = "-o";
		v[k++] = "ControlMaster=no";
		if (cmd) {
			v[k++] = c->host;
			v[k++] = "--";
			v[k++] = cmd;
		} else {
			v[k++] = scp_from;
			v[k++] = scp_to;
		}
		v[k] = NULL;
		outcome_t o = { 0, 0, 0, NULL };
		sb_reset(&res->out);
		sb_reset(&res->err);
		run_client(s, v, &o, &res->out, &res->err);
		for (int i = 0; i < 4; i++)
			sb_release(&hold[i]);
		sb_release(&dest);
		if (!o.started) {
			res->errnum = o.errnum;
			res->why = o.why;
			break;
		}
		res->started = 1;
		res->code = o.code;
		rc = 0;
		/* ssh's own failure with the master gone: the connection broke */
		if (o.code == SSH_EXIT_ERROR && !master_alive(c) && attempt == 0 && !(s->job && bgjob_stopping(s->job))) {
			log_warning("SSH connection to %s@%s:%s lost (%s): reconnecting and retrying once", c->user, c->host,
				    c->port, res->err.buf);
			continue;
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- errors of file operations ---- */

/* The errno that a remote tool's message names, or 0. */
static int errno_of(const char *msg)
{
	static const int known[] = { ENOENT, EEXIST, EACCES, ENOSPC, ENOTDIR, EISDIR, EDQUOT, ENOTEMPTY, EROFS };
	for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
		if (strstr(msg, strerror(known[i])))
			return known[i];
	return 0;
}

/* After a failed file operation: OSError's text when the remote tool named
 * an errno, else what ssh or the tool said. */
static void file_error(sb_t *err, const host_run_t *r, const char *path)
{
	if (!r->started) {
		if (!err->len)
			sb_addf(err, "%s", r->why ? r->why : strerror(r->errnum));
		return;
	}
	int e = r->code == SSH_EXIT_ERROR ? 0 : errno_of(r->err.buf);
	if (e) {
		host_oserror(err, e, path);
		errno = e;
		return;
	}
	sb_t said = SB_INIT;
	sb_add(&said, r->err.buf, r->err.len);
	while (said.len && said.buf[said.len - 1] == '\n')
		said.buf[--said.len] = '\0';
	if (r->code == SSH_EXIT_ERROR)
		sb_addf(err, "Cannot open SSH connection. Original error:\n%s", said.buf);
	else
		sb_addf(err, "%s (exit code %d)", said.len ? said.buf : "remote command failed", r->code);
	sb_release(&said);
	errno = EIO;
}

/* Runs the shell snippet cmd; 0 when it exited 0, else -1 with file_error()
 * for path in *err. */
static int shell_ok(ssh_host_t *s, const char *cmd, const char *path, sb_t *out, sb_t *err)
{
	host_run_t r = HOST_RUN_INIT;
	int rc = -1;
	if (!ssh_exec(s, cmd, NULL, NULL, &r, err) && r.code == 0) {
		if (out)
			sb_add(out, r.out.buf, r.out.len);
		rc = 0;
	} else {
		file_error(err, &r, path);
	}
	host_run_release(&r);
	return rc;
}

/* ---- host_ops ---- */

static int ssh_run(host_t *h, char *const argv[], char *const env[], host_run_t *res)
{
	ssh_host_t *s = (ssh_host_t *)h;
	sb_t cmd = SB_INIT, err = SB_INIT;
	if (env && env[0]) {
		sb_adds(&cmd, "env");
		for (size_t i = 0; env[i]; i++) {
			sb_addc(&cmd, ' ');
			host_sh_quote(&cmd, env[i]);
		}
	}
	for (size_t i = 0; argv[i]; i++) {
		if (cmd.len)
			sb_addc(&cmd, ' ');
		host_sh_quote(&cmd, argv[i]);
	}
	int rc = ssh_exec(s, cmd.buf, NULL, NULL, res, &err);
	if (rc == 0 && res->code == SSH_EXIT_ERROR && !master_alive(s->c)) {
		/* not the command's answer: the connection could not be made */
		res->started = 0;
		res->errnum = ECONNRESET;
		res->why = "the SSH connection failed";
		rc = -1;
	} else if (rc && err.len) {
		/* a failed login or lock: its text goes out as the command's stderr */
		sb_reset(&res->err);
		sb_add(&res->err, err.buf, err.len);
		res->errnum = ECONNREFUSED;
		res->why = "the SSH connection failed";
	}
	if (!res->started && !res->why)
		res->why = "the SSH connection failed";
	sb_release(&cmd);
	sb_release(&err);
	return rc;
}

static void remote_spec(ssh_host_t *s, const char *path, sb_t *out)
{
	sb_addf(out, "%s@%s:%s", s->c->user, s->c->host, path);
}

/* scp of one file, up (put 1: local to remote) or down */
static int ssh_copy(host_t *h, int put, const char *local, const char *remote, sb_t *err)
{
	ssh_host_t *s = (ssh_host_t *)h;
	sb_t spec = SB_INIT;
	remote_spec(s, remote, &spec);
	host_run_t r = HOST_RUN_INIT;
	int rc = -1;
	if (!ssh_exec(s, NULL, put ? local : spec.buf, put ? spec.buf : local, &r, err) && r.code == 0)
		rc = 0;
	else
		file_error(err, &r, remote);
	host_run_release(&r);
	sb_release(&spec);
	return rc;
}

int host_ssh_put(host_t *h, const char *local, const char *remote, sb_t *err)
{
	return ssh_copy(h, 1, local, remote, err);
}

int host_ssh_get(host_t *h, const char *remote, const char *local, sb_t *err)
{
	return ssh_copy(h, 0, local, remote, err);
}

static int ssh_write_file(host_t *h, const char *path, const void *data, size_t len, sb_t *err)
{
	ssh_host_t *s = (ssh_host_t *)h;
	sb_t tmp = SB_INIT;
	sb_addf(&tmp, "%s/put.%u", s->local, __atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED));
	FILE *f = fopen(tmp.buf, "wb");
	int rc = -1;
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		host_oserror(err, errno, tmp.buf);
		if (f)
			fclose(f);
	} else {
		rc = host_ssh_put(h, tmp.buf, path, err);
	}
	unlink(tmp.buf);
	sb_release(&tmp);
	return rc;
}

static int ssh_read_file(host_t *h, const char *path, sb_t *out, sb_t *err)
{
	ssh_host_t *s = (ssh_host_t *)h;
	sb_t tmp = SB_INIT;
	sb_addf(&tmp, "%s/get.%u", s->local, __atomic_fetch_add(&s->seq, 1, __ATOMIC_RELAXED));
	int rc = host_ssh_get(h, path, tmp.buf, err);
	if (!rc && sb_read_file(tmp.buf, out)) {
		host_oserror(err, errno, tmp.buf);
		rc = -1;
	}
	unlink(tmp.buf);
	sb_release(&tmp);
	return rc;
}

/* Also once the job is stopping: the clean-up of a failed job (a half-made
 * folder) is one quick command on the open master, not new work, and only
 * this machine's rmtree would otherwise do it (host_local's is no command). */
static int ssh_rmtree(host_t *h, const char *path, sb_t *err)
{
	ssh_host_t *s = (ssh_host_t *)h;
	bgjob_t *job = s->job;
	if (job && bgjob_stopping(job))
		s->job = NULL;
	sb_t cmd = SB_INIT;
	sb_adds(&cmd, "rm -r -- ");
	host_sh_quote(&cmd, path);
	int rc = shell_ok(s, cmd.buf, path, NULL, err);
	sb_release(&cmd);
	s->job = job;
	return rc;
}

static int ssh_mkdir(host_t *h, const char *path, int flags, sb_t *err)
{
	sb_t cmd = SB_INIT, q = SB_INIT;
	host_sh_quote(&q, path);
	if ((flags & HOST_MKDIR_PARENTS) && (flags & HOST_MKDIR_EXIST_OK))
		sb_addf(&cmd, "mkdir -p -- %s", q.buf);
	else if (flags & HOST_MKDIR_PARENTS) /* parents, but the folder itself must be new */
		sb_addf(&cmd, "if [ -e %s ]; then echo 'mkdir: File exists' >&2; exit 1; fi; mkdir -p -- %s", q.buf,
			q.buf);
	else if (flags & HOST_MKDIR_EXIST_OK)
		sb_addf(&cmd, "[ -d %s ] || mkdir -- %s", q.buf, q.buf);
	else
		sb_addf(&cmd, "mkdir -- %s", q.buf);
	int rc = shell_ok((ssh_host_t *)h, cmd.buf, path, NULL, err);
	sb_release(&cmd);
	sb_release(&q);
	return rc;
}

static int ssh_test(host_t *h, const char *path, enum host_test what)
{
	sb_t cmd = SB_INIT, q = SB_INIT, err = SB_INIT;
	host_sh_quote(&q, path);
	if (what == HOST_EXECUTABLE)
		sb_addf(&cmd, "test -f %s -a -x %s", q.buf, q.buf);
	else
		sb_addf(&cmd, "test -e %s", q.buf);
	host_run_t r = HOST_RUN_INIT;
	int yes = !ssh_exec((ssh_host_t *)h, cmd.buf, NULL, NULL, &r, &err) && r.code == 0;
	host_run_release(&r);
	sb_release(&cmd);
	sb_release(&q);
	sb_release(&err);
	return yes;
}

static void local_rm(const char *dir)
{
	char *argv[] = { "rm", "-rf", (char *)dir, NULL };
	const char *why;
	proc_run(argv, NULL, NULL, &why);
}

static void ssh_close(host_t *h)
{
	ssh_host_t *s = (ssh_host_t *)h;
	if (s->scratch) {
		sb_t err = SB_INIT;
		s->job = NULL; /* best effort, even when the job is stopping */
		ssh_rmtree(h, s->scratch, &err);
		sb_release(&err);
		free(s->scratch);
	}
	if (s->local) {
		local_rm(s->local);
		free(s->local);
	}
	free(s);
}

static const struct host_ops ssh_ops = {
	.name = "ssh",
	.run = ssh_run,
	.write_file = ssh_write_file,
	.read_file = ssh_read_file,
	.rmtree = ssh_rmtree,
	.mkdir = ssh_mkdir,
	.test = ssh_test,
	.close = ssh_close,
};

host_t *host_ssh_open(bgjob_t *job, const char *host, const char *user, const char *key_path,
		      const char *scratch_template, sb_t *err)
{
	if (!host || !*host || !user || !*user || !key_path || !*key_path) {
		sb_addf(err, "Cannot open SSH connection: the resource's host, the profile's username and its "
			     "ssh_key_path are all needed.");
		return NULL;
	}
	conn_t *c = conn_get(host, user, key_path, err);
	if (!c)
		return NULL;
	ssh_host_t *s = xcalloc(1, sizeof(*s));
	s->h.ops = &ssh_ops;
	s->job = job;
	s->c = c;
	char tmpl[] = "/tmp/fractal-ssh-local.XXXXXX";
	if (!mkdtemp(tmpl)) {
		sb_addf(err, "%s", strerror(errno));
		free(s);
		return NULL;
	}
	s->local = xstrdup(tmpl);
	/* the connection check of upstream's check_connection(): a command */
	sb_t cmd = SB_INIT, out = SB_INIT;
	if (scratch_template) {
		sb_adds(&cmd, "mktemp -d ");
		host_sh_quote(&cmd, scratch_template);
	} else {
		sb_adds(&cmd, "true");
	}
	int rc = shell_ok(s, cmd.buf, scratch_template ? scratch_template : "true", &out, err);
	sb_release(&cmd);
	if (rc) {
		sb_release(&out);
		ssh_close(&s->h);
		return NULL;
	}
	if (scratch_template) {
		while (out.len && (out.buf[out.len - 1] == '\n' || out.buf[out.len - 1] == '\r'))
			out.buf[--out.len] = '\0';
		s->scratch = sb_detach(&out);
	}
	sb_release(&out);
	s->h.scratch = s->scratch;
	return &s->h;
}
