/* host.h — the machine on which a background job does its file and process
 * work: this one (host_local.c) or, later, a cluster's login node reached
 * by SSH (host_ssh.c). Task collection does everything on disk and every
 * subprocess through a host_t, so that where the work happens is decided
 * once, from the resource type, the way db_ops keeps the engine out of api/.
 *
 * A host is opened for one job and used by that job's thread only; it may
 * hold a connection. Paths are paths on the host. Errors are -1 with the
 * reason appended to *err as Python's OSError prints it
 * ("[Errno 2] No such file or directory: '/x'"), since these texts end up
 * in activity logs as upstream writes them.
 *
 * Commands take an argv, never a shell string, and an environment to add,
 * so that a caller can pass user values as arguments. Their process group
 * is registered with the job (util/bgjob.h), so a shutdown stops them; a
 * host never starts a command once the job is stopping. */
#ifndef UTIL_HOST_H
#define UTIL_HOST_H

#include <stddef.h>

#include "util/bgjob.h"
#include "util/sb.h"

typedef struct host host_t;

/* What host_run() reports. The caller initialises it with HOST_RUN_INIT and
 * frees it with host_run_release(). */
typedef struct host_run {
	int started;        /* 1 when the command ran (then `code` is its result) */
	int code;           /* exit code >= 0, minus the signal that ended it, or
			     * HOST_WAIT_ERROR when waiting for it failed */
	int errnum;         /* not started: the errno (0 when refused because the job is stopping) */
	const char *why;    /* not started: the reason (static text) */
	sb_t out, err;      /* its stdout and stderr */
} host_run_t;

#define HOST_RUN_INIT { 0, 0, 0, NULL, SB_INIT, SB_INIT }
#define HOST_WAIT_ERROR (-1000)

/* host_mkdir flags */
#define HOST_MKDIR_PARENTS 1   /* create missing parents (as mkdir -p) */
#define HOST_MKDIR_EXIST_OK 2  /* an existing folder is not an error */

/* host_test questions */
enum host_test { HOST_EXISTS, HOST_EXECUTABLE };

struct host_ops {
	const char *name;  /* "local", "ssh" */
	/* Runs argv[0] (searched on PATH when it has no '/') with argv, the
	 * host's environment plus env ("NAME=value", NULL-terminated, may be
	 * NULL; these win over inherited ones), no stdin; fills *res. Returns
	 * 0 when the command ran (whatever its exit code), -1 when it did not. */
	int (*run)(host_t *h, char *const argv[], char *const env[], host_run_t *res);
	/* Creates or truncates path with the len bytes of data. */
	int (*write_file)(host_t *h, const char *path, const void *data, size_t len, sb_t *err);
	/* Appends the whole file to *out. */
	int (*read_file)(host_t *h, const char *path, sb_t *out, sb_t *err);
	/* Removes path and everything under it (shutil.rmtree); a missing path
	 * is an error. */
	int (*rmtree)(host_t *h, const char *path, sb_t *err);
	/* Creates the folder path (mode 0755); flags HOST_MKDIR_*. */
	int (*mkdir)(host_t *h, const char *path, int flags, sb_t *err);
	/* 1 when path exists (following links) or is an executable file the
	 * job may run, else 0. */
	int (*test)(host_t *h, const char *path, enum host_test what);
	/* Removes the scratch folder, closes any connection, frees h. */
	void (*close)(host_t *h);
};

struct host {
	const struct host_ops *ops;
	/* A folder on the host for this job's temporary files (captured
	 * output, files handed to scripts), removed by close; NULL when the
	 * host was opened without one. */
	const char *scratch;
};

static inline int host_run(host_t *h, char *const argv[], char *const env[], host_run_t *res)
{
	return h->ops->run(h, argv, env, res);
}
static inline int host_write_file(host_t *h, const char *path, const void *data, size_t len, sb_t *err)
{
	return h->ops->write_file(h, path, data, len, err);
}
static inline int host_read_file(host_t *h, const char *path, sb_t *out, sb_t *err)
{
	return h->ops->read_file(h, path, out, err);
}
static inline int host_rmtree(host_t *h, const char *path, sb_t *err)
{
	return h->ops->rmtree(h, path, err);
}
static inline int host_mkdir(host_t *h, const char *path, int flags, sb_t *err)
{
	return h->ops->mkdir(h, path, flags, err);
}
static inline int host_test(host_t *h, const char *path, enum host_test what)
{
	return h->ops->test(h, path, what);
}
/* NULL is a no-op. */
static inline void host_close(host_t *h)
{
	if (h)
		h->ops->close(h);
}

void host_run_release(host_run_t *res);

/* Appends Python's OSError text for errnum and path to *err; errno is left
 * as it was, so that a failed host operation leaves errno as it failed. */
void host_oserror(sb_t *err, int errnum, const char *path);

/* This machine. job (may be NULL: then commands are not registered for
 * shutdown) receives the process group of every command. scratch_template
 * is a mkdtemp(3) template ("/tmp/fractal-collect.XXXXXX") for the scratch
 * folder, or NULL for none (then run() cannot capture output and refuses).
 * Returns the host (host_close frees it), or NULL with the reason in *err
 * when the scratch folder could not be created. */
host_t *host_local_open(bgjob_t *job, const char *scratch_template, sb_t *err);

/* A cluster's login node over SSH (host_ssh.c: OpenSSH client processes on
 * one shared master connection per host, user and key; see there for why,
 * and for the FRACTAL_SSH_* settings). host is "HOST" or "HOST:PORT" (the
 * resource's `host`), user the profile's username, key_path its
 * ssh_key_path. The connection is checked (opened when needed) before
 * returning; scratch_template is a `mktemp -d` template on the remote host,
 * or NULL. Returns the host, or NULL with upstream's "Cannot open SSH
 * connection. Original error: ..." (ssh's own words) in *err. */
host_t *host_ssh_open(bgjob_t *job, const char *host, const char *user, const char *key_path,
		      const char *scratch_template, sb_t *err);
/* Copies one file over SFTP (scp): this machine's local to the host's
 * remote, or back. h must come from host_ssh_open. 0, or -1 with *err. */
int host_ssh_put(host_t *h, const char *local, const char *remote, sb_t *err);
int host_ssh_get(host_t *h, const char *remote, const char *local, sb_t *err);
/* Appends s as one word for a POSIX shell: as it is when it holds only
 * characters no shell treats specially, else single-quoted (a ' inside as
 * '\''), so that no expansion, split or command ever comes of it. The remote
 * command lines of host_ssh.c are made of these. */
void host_sh_quote(sb_t *out, const char *s);
/* Ends every master connection (server shutdown). */
void host_ssh_shutdown(void);

#endif
