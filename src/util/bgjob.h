/* bgjob.h — background jobs: work that runs in a detached thread of its
 * own, off the request path (task collection, job execution), and their
 * shutdown.
 *
 * A module keeps one registry of its running jobs:
 *
 *     static bgjob_reg_t reg = BGJOB_REG_INIT;
 *
 * bgjob_start() registers a job and starts its thread, which runs
 * fn(job, arg); when fn returns, the thread frees its OpenSSL per-thread
 * state (libpq's SCRAM login builds per-thread random generators, which a
 * thread-exit destructor would free only after the server may have exited),
 * then leaves the registry. From that moment bgjob_wait() may return and the
 * process may exit, so fn must have freed everything it owns (arg
 * included) before it returns.
 *
 * While it runs, a job registers the process groups of the subprocesses it
 * starts (bgjob_pid_add / bgjob_pid_del) so that a shutdown can signal
 * them. Nothing here has a fixed size: every job and every process is
 * recorded however many there are.
 *
 * Shutdown works on one registry, by absolute deadlines on the mono_usec()
 * clock (util/timeutil.h), which the caller owns:
 *   bgjob_stop()     from now on bgjob_stopping() is true for the
 *                    registry's jobs and bgjob_start() refuses new ones;
 *                    every registered process group gets SIGTERM, and so
 *                    does every one registered later;
 *   bgjob_wait()     until every job has left, or the deadline;
 *   bgjob_signal()   another signal (SIGKILL) to every process group, now
 *                    and to those registered later;
 *   bgjob_alive_ids() the jobs still there (to mark them failed);
 *   bgjob_shutdown() stop, wait until the deadline, SIGKILL, wait up to
 *                    BGJOB_KILL_GRACE_USEC more: all of the above in order.
 * A module that lets its jobs finish first calls bgjob_wait() before
 * bgjob_stop().
 *
 * Log lines: bgjob_log_line() and bgjob_logf() write upstream's Python
 * logging lines ("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
 * into a job's log buffer; where that buffer goes (a database column, a
 * file) is the caller's business.
 *
 * Thread safety: every function may be called from any thread. */
#ifndef UTIL_BGJOB_H
#define UTIL_BGJOB_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/sb.h"

typedef struct bgjob bgjob_t;   /* one running job; owned by the registry */

/* The fields are private to bgjob.c; the struct is here only so that a
 * registry can be a static object initialised with BGJOB_REG_INIT. */
typedef struct bgjob_reg {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bgjob_t *jobs;   /* registered, not yet left */
	int live;        /* threads started and not yet done */
	int stopping;
	int sig;         /* sent to process groups registered from now on (0: none) */
} bgjob_reg_t;

#define BGJOB_REG_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0 }

/* No deadline: bgjob_wait() until every job has left. */
#define BGJOB_FOREVER INT64_MAX

/* How long bgjob_shutdown() waits after SIGKILL. */
#define BGJOB_KILL_GRACE_USEC (5 * 1000000LL)

typedef void (*bgjob_fn)(bgjob_t *job, void *arg);

/* Registers a job (id: any number the caller uses to name it, returned by
 * bgjob_alive_ids) and runs fn(job, arg) in a new detached thread.
 * Returns 0, or -1 with *why set (static text) when the job was not
 * started: "fractal-server is shutting down" once bgjob_stop() was called,
 * "cannot start a thread" when pthread_create failed. On -1, fn never runs
 * and arg still belongs to the caller. */
int bgjob_start(bgjob_reg_t *reg, int64_t id, bgjob_fn fn, void *arg, const char **why);

/* The id given to bgjob_start. */
int64_t bgjob_id(const bgjob_t *job);

/* 1 once the job's registry is stopping (bgjob_stop), else 0. */
int bgjob_stopping(bgjob_t *job);
/* The same for a registry. */
int bgjob_reg_stopping(bgjob_reg_t *reg);

/* Records the process group of a subprocess the job started (pid is the
 * group leader, as util/proc starts them). When the registry is already
 * stopping, the group gets the current shutdown signal at once, so that a
 * process started while bgjob_stop() ran is never missed. Returns 1 when
 * it was signalled so, else 0. */
int bgjob_pid_add(bgjob_t *job, pid_t pid);

/* Forgets a process group once the subprocess has been waited for. */
void bgjob_pid_del(bgjob_t *job, pid_t pid);

/* See the head comment. Each returns the number of jobs still registered
 * (not yet left) at the moment it returns. */
int bgjob_stop(bgjob_reg_t *reg);
int bgjob_wait(bgjob_reg_t *reg, int64_t deadline_usec);
int bgjob_signal(bgjob_reg_t *reg, int sig);
int bgjob_shutdown(bgjob_reg_t *reg, int64_t deadline_usec);

/* The ids of the jobs still registered, oldest first: a malloc'd array the
 * caller frees (NULL when none), its length in *n. */
int64_t *bgjob_alive_ids(bgjob_reg_t *reg, size_t *n);

/* Python logging's level names (DEBUG, INFO, WARNING, ERROR, CRITICAL) for
 * util/log.h's levels. */
const char *bgjob_level_name(int level);

/* Appends "<asctime> - <logger> - <LEVEL> - <msg>\n" to *out, asctime in
 * local time as Python prints it ("2025-01-31 12:34:56,789"). */
void bgjob_log_line(sb_t *out, const char *logger, int level, const char *msg);

/* The same with a printf-style message. */
void bgjob_logf(sb_t *out, const char *logger, int level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void bgjob_vlogf(sb_t *out, const char *logger, int level, const char *fmt, va_list ap);

#endif
