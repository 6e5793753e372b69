/* host_local.c — the host_ops of this machine (see host.h): files through
 * stdio and nftw, commands through util/proc (posix_spawn, no shell), their
 * stdout and stderr captured in two files of the scratch folder. */
#include "util/host.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/proc.h"

typedef struct local_host {
	host_t h;
	bgjob_t *job;
	char *scratch;
} local_host_t;

void host_oserror(sb_t *err, int errnum, const char *path)
{
	int saved = errno;
	sb_addf(err, "[Errno %d] %s: '%s'", errnum, strerror(errnum), path);
	errno = saved;
}

void host_run_release(host_run_t *res)
{
	sb_release(&res->out);
	sb_release(&res->err);
}

static int local_run(host_t *h, char *const argv[], char *const env[], host_run_t *res)
{
	local_host_t *l = (local_host_t *)h;
	res->started = 0;
	res->errnum = 0;
	if (!l->scratch) {
		res->why = "no scratch folder to capture the output in";
		return -1;
	}
	if (l->job && bgjob_stopping(l->job)) {
		res->why = "fractal-server is shutting down";
		return -1;
	}
	sb_t out_path = SB_INIT, err_path = SB_INIT;
	sb_addf(&out_path, "%s/stdout", l->scratch);
	sb_addf(&err_path, "%s/stderr", l->scratch);
	unlink(out_path.buf);
	unlink(err_path.buf);
	const char *why = NULL;
	pid_t pid = proc_start2(argv, env, out_path.buf, err_path.buf, &why);
	int rc = -1;
	if (pid < 0) {
		res->errnum = errno;
		res->why = why;
	} else {
		/* a shutdown that began since bgjob_stopping() gets it here */
		if (l->job)
			bgjob_pid_add(l->job, pid);
		res->code = proc_wait(pid);
		if (l->job)
			bgjob_pid_del(l->job, pid);
		res->started = 1;
		sb_read_file(out_path.buf, &res->out);
		sb_read_file(err_path.buf, &res->err);
		rc = 0;
	}
	sb_release(&out_path);
	sb_release(&err_path);
	return rc;
}

static int local_write_file(host_t *h, const char *path, const void *data, size_t len, sb_t *err)
{
	(void)h;
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		host_oserror(err, errno, path);
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f)) {
		host_oserror(err, errno, path);
		return -1;
	}
	return 0;
}

static int local_read_file(host_t *h, const char *path, sb_t *out, sb_t *err)
{
	(void)h;
	if (sb_read_file(path, out)) {
		host_oserror(err, errno, path);
		return -1;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

static int local_rmtree(host_t *h, const char *path, sb_t *err)
{
	(void)h;
	struct stat st;
	if (lstat(path, &st) || nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS)) {
		host_oserror(err, errno, path);
		return -1;
	}
	return 0;
}

static int local_mkdir(host_t *h, const char *path, int flags, sb_t *err)
{
	(void)h;
	char *p = xstrdup(path);
	int rc = 0;
	if (flags & HOST_MKDIR_PARENTS)
		for (char *s = p + 1; *s && !rc; s++)
			if (*s == '/') {
				*s = '\0';
				if (mkdir(p, 0755) && errno != EEXIST)
					rc = -1;
				*s = '/';
			}
	if (!rc && mkdir(p, 0755) && !(errno == EEXIST && (flags & HOST_MKDIR_EXIST_OK)))
		rc = -1;
	if (rc)
		host_oserror(err, errno, path);
	free(p);
	return rc;
}

static int local_test(host_t *h, const char *path, enum host_test what)
{
	(void)h;
	if (what == HOST_EXECUTABLE)
		return access(path, X_OK) == 0;
	struct stat st;
	return stat(path, &st) == 0;
}

static void local_close(host_t *h)
{
	local_host_t *l = (local_host_t *)h;
	if (l->scratch) {
		sb_t ignored = SB_INIT;
		local_rmtree(h, l->scratch, &ignored);
		sb_release(&ignored);
		free(l->scratch);
	}
	free(l);
}

static const struct host_ops local_ops = {
	.name = "local",
	.run = local_run,
	.write_file = local_write_file,
	.read_file = local_read_file,
	.rmtree = local_rmtree,
	.mkdir = local_mkdir,
	.test = local_test,
	.close = local_close,
};

host_t *host_local_open(bgjob_t *job, const char *scratch_template, sb_t *err)
{
	local_host_t *l = xcalloc(1, sizeof(*l));
	l->h.ops = &local_ops;
	l->job = job;
	if (scratch_template) {
		l->scratch = xstrdup(scratch_template);
		if (!mkdtemp(l->scratch)) {
			sb_addf(err, "%s", strerror(errno));
			free(l->scratch);
			free(l);
			return NULL;
		}
	}
	l->h.scratch = l->scratch;
	return &l->h;
}
