/* proc.h — running external commands without a shell.
 *
 * Task collection (bash templates, python, pip) and job execution (task
 * commands) both start real subprocesses. They never go through /bin/sh: the
 * caller gives an argv (proc_split() turns a command string into one with
 * POSIX-shell quoting rules, as upstream's shlex.split), and the child's stdout
 * and stderr go to one file, so that a task that writes gigabytes of log costs
 * the server nothing in memory.
 *
 * The child gets the server's environment plus `extra_env` ("NAME=value"
 * strings, NULL-terminated, may be NULL), its own process group (so that
 * proc_kill_group() reaches its children too), and no stdin (/dev/null). */
#ifndef PROC_H
#define PROC_H

#include <sys/types.h>

/* Splits `cmd` into words with shlex rules (quotes, backslashes outside
 * single quotes, no expansion). Returns a NULL-terminated argv (one malloc'd
 * block: free() it once) and sets *argc, or NULL with *err set to a static
 * message ("No closing quotation", "No escaped character", "empty command"). */
char **proc_split(const char *cmd, int *argc, const char **err);

/* Finds argv0 as upstream's shutil.which would: a name with a '/' must be an
 * executable file; a bare name is searched on PATH. Returns 0 when found. */
int proc_which(const char *argv0);

/* Starts argv with stdout+stderr appended to `out_path` (created 0644 when
 * missing; NULL discards the output). Returns the child's pid, or -1 with
 * errno set (and a message in *err, static) when it could not start. */
pid_t proc_start(char *const argv[], char *const extra_env[], const char *out_path, const char **err);

/* The same with stderr to its own file (err_path; NULL: with stdout). */
pid_t proc_start2(char *const argv[], char *const extra_env[], const char *out_path, const char *err_path,
		  const char **err);

/* Waits for pid; returns its exit code, or minus the signal that killed it
 * (as Python's returncode), or PROC_ERROR when waitpid failed. */
#define PROC_ERROR (-1000)
int proc_wait(pid_t pid);

/* The same with in_fd (>= 0; -1: /dev/null) as its stdin. */
pid_t proc_start_in(char *const argv[], char *const extra_env[], int in_fd, const char *out_path,
		    const char *err_path, const char **err);

/* Non-blocking proc_wait: 1 with *code set (as proc_wait) when pid has
 * ended, 0 while it runs. */
int proc_poll(pid_t pid, int *code);

/* proc_start + proc_wait. Returns what proc_wait does, or PROC_ERROR when
 * the command could not start (message in *err). */
int proc_run(char *const argv[], char *const extra_env[], const char *out_path, const char **err);

/* Sends sig to the child's whole process group. */
void proc_kill_group(pid_t pid, int sig);

/* What /proc/<pid>/stat says of pid: its state letter (field 3; 'Z' for a
 * zombie), its process group (field 5) and its start time (field 22, clock
 * ticks since boot; with the pid, the identity of a process, as a pid alone
 * can be reused). 0, or -1 when there is no such process. */
int proc_stat(pid_t pid, char *state, pid_t *pgrp, unsigned long long *start);

/* 1 if a process other than a zombie is in process group pgid, else 0. */
int proc_group_alive(pid_t pgid);

#endif
