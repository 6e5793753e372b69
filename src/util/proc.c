/* proc.c — subprocesses without a shell (see proc.h). posix_spawn keeps the
 * cost of starting a task independent of the server's size (no page-table
 * copy as with fork) and is safe to call from any thread. */
#include "util/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/sb.h"

extern char **environ;

char **proc_split(const char *cmd, int *argc, const char **err)
{
	/* words are written into one buffer after the pointer array: at most
	 * strlen/2+1 words, each at most strlen+1 bytes in total */
	size_t n = strlen(cmd);
	size_t maxw = n / 2 + 2;
	char **argv = xmalloc(maxw * sizeof(char *) + n + maxw + 1);
	char *out = (char *)(argv + maxw);
	int w = 0;
	const char *p = cmd;
	*err = NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		argv[w++] = out;
		while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');
				if (!e) {
					*err = "No closing quotation";
					goto fail;
				}
				memcpy(out, p + 1, e - p - 1);
				out += e - p - 1;
				p = e + 1;
			} else if (*p == '"') {
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					*out++ = *p++;
				}
				if (*p != '"') {
					*err = "No closing quotation";
					goto fail;
				}
				p++;
			} else if (*p == '\\') {
				if (!p[1]) {
					*err = "No escaped character";
					goto fail;
				}
				*out++ = p[1];
				p += 2;
			} else {
				*out++ = *p++;
			}
		}
		*out++ = '\0';
	}
	if (!w) {
		*err = "empty command";
		goto fail;
	}
	argv[w] = NULL;
	*argc = w;
	return argv;
fail:
	free(argv);
	return NULL;
}

static int is_exec_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int proc_which(const char *argv0)
{
	if (strchr(argv0, '/'))
		return is_exec_file(argv0) ? 0 : -1;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	sb_t sb = SB_INIT;
	int found = -1;
	for (const char *s = path; found && *s;) {
		const char *e = strchr(s, ':');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		sb_reset(&sb);
		sb_add(&sb, s, len ? len : 1);
		if (!len)
			sb.buf[0] = '.';
		sb_addc(&sb, '/');
		sb_adds(&sb, argv0);
		if (is_exec_file(sb.buf))
			found = 0;
		s = e ? e + 1 : s + len;
	}
	sb_release(&sb);
	return found;
}

pid_t proc_start(char *const argv[], char *const extra_env[], const char *out_path, const char **err)
{
	return proc_start2(argv, extra_env, out_path, NULL, err);
}

pid_t proc_start2(char *const argv[], char *const extra_env[], const char *out_path, const char *err_path,
		  const char **err)
{
	return proc_start_in(argv, extra_env, -1, out_path, err_path, err);
}

pid_t proc_start_in(char *const argv[], char *const extra_env[], int in_fd, const char *out_path,
		    const char *err_path, const char **err)
{
	size_t ne = 0, nx = 0;
	while (environ[ne])
		ne++;
	while (extra_env && extra_env[nx])
		nx++;
	/* the extra variables first: getenv-style lookups take the first match,
	 * and the ones we add must win over inherited ones */
	char **envp = xmalloc((ne + nx + 1) * sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < nx; i++)
		envp[k++] = extra_env[i];
	for (size_t i = 0; i < ne; i++) {
		int shadowed = 0;
		for (size_t j = 0; j < nx && !shadowed; j++) {
			const char *eq = strchr(extra_env[j], '=');
			size_t len = eq ? (size_t)(eq - extra_env[j] + 1) : strlen(extra_env[j]);
			shadowed = !strncmp(environ[i], extra_env[j], len);
		}
		if (!shadowed)
			envp[k++] = environ[i];
	}
	envp[k] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	const char *out = out_path ? out_path : "/dev/null";
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (err_path)
		posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	else
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	/* the server blocks or handles SIGINT/SIGTERM; the task gets defaults */
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(envp);
	if (rc) {
		errno = rc;
		*err = strerror(rc);
		return -1;
	}
	return pid;
}

int proc_wait(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return PROC_ERROR;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return PROC_ERROR;
}

int proc_poll(pid_t pid, int *code)
{
	int status;
	pid_t r;
	while ((r = waitpid(pid, &status, WNOHANG)) < 0)
		if (errno != EINTR) {
			*code = PROC_ERROR;
			return 1;
		}
	if (r == 0)
		return 0;
	if (WIFEXITED(status))
		*code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		*code = -WTERMSIG(status);
	else
		*code = PROC_ERROR;
	return 1;
}

int proc_run(char *const argv[], char *const extra_env[], const char *out_path, const char **err)
{
	pid_t pid = proc_start(argv, extra_env, out_path, err);
	if (pid < 0)
		return PROC_ERROR;
	return proc_wait(pid);
}

void proc_kill_group(pid_t pid, int sig)
{
	if (pid > 0)
		kill(-pid, sig);
}

int proc_stat(pid_t pid, char *state, pid_t *pgrp, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* the command name (field 2) may hold spaces and parentheses: the
	 * fields after it start past its last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	long long pg = 0;
	unsigned long long st = 0;
	char sc = '?';
	/* fields 3 (state) to 22 (starttime) */
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (field == 3)
			sc = *p;
		else if (field == 5)
			pg = strtoll(p, NULL, 10);
		else if (field == 22)
			st = strtoull(p, NULL, 10);
		while (*p && *p != ' ')
			p++;
	}
	*state = sc;
	*pgrp = (pid_t)pg;
	*start = st;
	return 0;
}

int proc_group_alive(pid_t pgid)
{
	/* kill(-pgid, 0) also succeeds for zombies nobody reaps (a PID 1 that
	 * does not wait): look at each member instead */
	if (pgid <= 0 || (kill(-pgid, 0) && errno == ESRCH))
		return 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 1;
	struct dirent *e;
	int alive = 0;
	while (!alive && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char state;
		pid_t pg;
		unsigned long long st;
		if (!proc_stat((pid_t)atoi(e->d_name), &state, &pg, &st) && pg == pgid && state != 'Z')
			alive = 1;
	}
	closedir(d);
	return alive;
}
