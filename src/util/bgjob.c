/* bgjob.c — see bgjob.h. One mutex per registry guards its job list, its
 * counters and every job's process list; no lock is held while a job's fn
 * runs or while a subprocess is started or waited for. */
#include "util/bgjob.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <openssl/crypto.h>

#include "util/log.h"
#include "util/proc.h"
#include "util/timeutil.h"

struct bgjob {
	bgjob_reg_t *reg;
	int64_t id;
	bgjob_fn fn;
	void *arg;
	pid_t *pids;        /* process groups alive */
	size_t npids, cap;
	bgjob_t *prev, *next;
};

static void unlink_job(bgjob_reg_t *reg, bgjob_t *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		reg->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
}

static void *job_thread(void *p)
{
	bgjob_t *j = p;
	bgjob_reg_t *reg = j->reg;
	j->fn(j, j->arg);
	pthread_mutex_lock(&reg->mu);
	unlink_job(reg, j);
	pthread_mutex_unlock(&reg->mu);
	free(j->pids);
	free(j);
	/* see bgjob.h: before telling a waiting shutdown that we are done */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&reg->mu);
	reg->live--;
	pthread_cond_broadcast(&reg->cv);
	pthread_mutex_unlock(&reg->mu);
	return NULL;
}

int bgjob_start(bgjob_reg_t *reg, int64_t id, bgjob_fn fn, void *arg, const char **why)
{
	bgjob_t *j = xcalloc(1, sizeof(*j));
	j->reg = reg;
	j->id = id;
	j->fn = fn;
	j->arg = arg;
	*why = NULL;
	pthread_mutex_lock(&reg->mu);
	if (reg->stopping) {
		*why = "fractal-server is shutting down";
	} else {
		/* registered before the thread runs, so that it can unlink itself */
		j->next = reg->jobs;
		if (reg->jobs)
			reg->jobs->prev = j;
		reg->jobs = j;
		reg->live++;
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, job_thread, j)) {
			*why = "cannot start a thread";
			unlink_job(reg, j);
			reg->live--;
		}
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&reg->mu);
	if (!*why)
		return 0;
	free(j);
	return -1;
}

int64_t bgjob_id(const bgjob_t *job)
{
	return job->id;
}

int bgjob_stopping(bgjob_t *job)
{
	return bgjob_reg_stopping(job->reg);
}

int bgjob_reg_stopping(bgjob_reg_t *reg)
{
	pthread_mutex_lock(&reg->mu);
	int s = reg->stopping;
	pthread_mutex_unlock(&reg->mu);
	return s;
}

int bgjob_pid_add(bgjob_t *job, pid_t pid)
{
	bgjob_reg_t *reg = job->reg;
	pthread_mutex_lock(&reg->mu);
	if (job->npids == job->cap) {
		job->cap = job->cap ? 2 * job->cap : 4;
		job->pids = xrealloc(job->pids, job->cap * sizeof(*job->pids));
	}
	job->pids[job->npids++] = pid;
	int sig = reg->sig;
	if (sig)
		proc_kill_group(pid, sig);
	pthread_mutex_unlock(&reg->mu);
	return sig != 0;
}

void bgjob_pid_del(bgjob_t *job, pid_t pid)
{
	pthread_mutex_lock(&job->reg->mu);
	for (size_t i = 0; i < job->npids; i++)
		if (job->pids[i] == pid) {
			job->pids[i] = job->pids[--job->npids];
			break;
		}
	pthread_mutex_unlock(&job->reg->mu);
}

/* Under reg->mu. */
static void signal_all(bgjob_reg_t *reg, int sig)
{
	reg->sig = sig;
	for (bgjob_t *j = reg->jobs; j; j = j->next)
		for (size_t i = 0; i < j->npids; i++)
			proc_kill_group(j->pids[i], sig);
}

int bgjob_signal(bgjob_reg_t *reg, int sig)
{
	pthread_mutex_lock(&reg->mu);
	signal_all(reg, sig);
	int n = reg->live;
	pthread_mutex_unlock(&reg->mu);
	return n;
}

int bgjob_stop(bgjob_reg_t *reg)
{
	pthread_mutex_lock(&reg->mu);
	reg->stopping = 1;
	if (!reg->sig)
		signal_all(reg, SIGTERM);
	int n = reg->live;
	pthread_mutex_unlock(&reg->mu);
	return n;
}

int bgjob_wait(bgjob_reg_t *reg, int64_t deadline_usec)
{
	pthread_mutex_lock(&reg->mu);
	while (reg->live > 0) {
		if (deadline_usec == BGJOB_FOREVER) {
			pthread_cond_wait(&reg->cv, &reg->mu);
			continue;
		}
		int64_t left = deadline_usec - mono_usec();
		if (left <= 0)
			break;
		/* the condition variable runs on the wall clock: wait at most
		 * what is left on the monotonic one, then look again */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (left % 1000000) * 1000;
		ts.tv_sec += (time_t)(left / 1000000 + ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&reg->cv, &reg->mu, &ts);
	}
	int n = reg->live;
	pthread_mutex_unlock(&reg->mu);
	return n;
}

int bgjob_shutdown(bgjob_reg_t *reg, int64_t deadline_usec)
{
	if (!bgjob_stop(reg))
		return 0;
	if (!bgjob_wait(reg, deadline_usec))
		return 0;
	bgjob_signal(reg, SIGKILL);
	int64_t after = mono_usec() + BGJOB_KILL_GRACE_USEC;
	return bgjob_wait(reg, after);
}

int64_t *bgjob_alive_ids(bgjob_reg_t *reg, size_t *n)
{
	pthread_mutex_lock(&reg->mu);
	size_t k = 0;
	bgjob_t *last = NULL;
	for (bgjob_t *j = reg->jobs; j; j = j->next) {
		k++;
		last = j;
	}
	int64_t *ids = k ? xmalloc(k * sizeof(*ids)) : NULL;
	size_t i = 0;
	/* the list is newest first: walk it backwards */
	for (bgjob_t *j = last; j; j = j->prev)
		ids[i++] = j->id;
	pthread_mutex_unlock(&reg->mu);
	*n = k;
	return ids;
}

/* ---- log lines ---- */

const char *bgjob_level_name(int level)
{
	return level >= LOG_CRITICAL ? "CRITICAL"
	       : level >= LOG_ERROR  ? "ERROR"
	       : level >= LOG_WARNING ? "WARNING"
	       : level >= LOG_INFO   ? "INFO"
				     : "DEBUG";
}

void bgjob_log_line(sb_t *out, const char *logger, int level, const char *msg)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	char when[40];
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	sb_addf(out, "%s,%03d - %s - %s - %s\n", when, (int)(tv.tv_usec / 1000), logger, bgjob_level_name(level), msg);
}

void bgjob_vlogf(sb_t *out, const char *logger, int level, const char *fmt, va_list ap)
{
	sb_t msg = SB_INIT;
	sb_vaddf(&msg, fmt, ap);
	bgjob_log_line(out, logger, level, msg.buf);
	sb_release(&msg);
}

void bgjob_logf(sb_t *out, const char *logger, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bgjob_vlogf(out, logger, level, fmt, ap);
	va_end(ap);
}
