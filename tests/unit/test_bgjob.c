/* test_bgjob.c — util/bgjob: the registry (start, order, refusal once
 * stopping), deadline waits, the process groups a job records (SIGTERM at
 * stop, at once for one recorded after, SIGKILL by bgjob_signal), and the
 * Python-format log line. Real threads and real subprocesses (sh, sleep). */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "util/bgjob.h"
#include "util/proc.h"
#include "util/timeutil.h"

static atomic_int ran;

/* runs until its registry stops */
static void until_stopped(bgjob_t *job, void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	while (!bgjob_stopping(job))
		usleep(1000);
}

/* sleeps *arg milliseconds whatever happens */
static void sleeper(bgjob_t *job, void *arg)
{
	(void)job;
	usleep((useconds_t)(*(int *)arg * 1000));
}

/* starts argv, records it, waits for it; *arg receives its exit code */
typedef struct {
	char **argv;
	int code;
	int signalled_at_add;
} child_t;

static void run_child(bgjob_t *job, void *arg)
{
	child_t *c = arg;
	const char *why = NULL;
	pid_t pid = proc_start(c->argv, NULL, NULL, &why);
	if (pid < 0) {
		c->code = PROC_ERROR;
		return;
	}
	c->signalled_at_add = bgjob_pid_add(job, pid);
	c->code = proc_wait(pid);
	bgjob_pid_del(job, pid);
}

static void test_registry(void)
{
	static bgjob_reg_t reg = BGJOB_REG_INIT;
	const char *why = "x";
	for (int64_t id = 1; id <= 3; id++)
		CHECK_INT(bgjob_start(&reg, id * 10, until_stopped, NULL, &why), 0);
	CHECK(why == NULL);
	size_t n;
	int64_t *ids = bgjob_alive_ids(&reg, &n);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(ids[0], 10);  /* oldest first */
		CHECK_INT(ids[2], 30);
	}
	free(ids);
	CHECK_INT(bgjob_reg_stopping(&reg), 0);
	/* a deadline already past returns at once, with the jobs still there */
	CHECK_INT(bgjob_wait(&reg, mono_usec()), 3);
	CHECK_INT(bgjob_stop(&reg), 3);
	CHECK_INT(bgjob_reg_stopping(&reg), 1);
	CHECK_INT(bgjob_wait(&reg, BGJOB_FOREVER), 0);
	CHECK_INT(atomic_load(&ran), 3);
	ids = bgjob_alive_ids(&reg, &n);
	CHECK_INT(n, 0);
	CHECK(ids == NULL);
	/* once stopping, nothing starts and fn never runs */
	CHECK_INT(bgjob_start(&reg, 99, until_stopped, NULL, &why), -1);
	CHECK_STR(why, "fractal-server is shutting down");
	CHECK_INT(atomic_load(&ran), 3);
}

static void test_deadline(void)
{
	static bgjob_reg_t reg = BGJOB_REG_INIT;
	const char *why;
	int ms = 400;
	CHECK_INT(bgjob_start(&reg, 1, sleeper, &ms, &why), 0);
	int64_t t0 = mono_usec();
	CHECK_INT(bgjob_wait(&reg, t0 + 50000), 1);
	int64_t waited = mono_usec() - t0;
	CHECK(waited >= 50000);
	CHECK(waited < 350000);
	/* stop does not end a job that does not look: only its end does */
	CHECK_INT(bgjob_stop(&reg), 1);
	CHECK_INT(bgjob_wait(&reg, BGJOB_FOREVER), 0);
	CHECK(mono_usec() - t0 >= 400000);
}

static void test_process_groups(void)
{
	static bgjob_reg_t reg = BGJOB_REG_INIT;
	const char *why;
	/* a child that SIGTERM ends: stop signals its group */
	char *sleep_argv[] = { "sleep", "30", NULL };
	child_t a = { sleep_argv, 0, 0 };
	CHECK_INT(bgjob_start(&reg, 1, run_child, &a, &why), 0);
	/* one that ignores SIGTERM (its sleep too): only SIGKILL ends it */
	char *stubborn_argv[] = { "sh", "-c", "trap '' TERM; sleep 30 & wait", NULL };
	child_t b = { stubborn_argv, 0, 0 };
	CHECK_INT(bgjob_start(&reg, 2, run_child, &b, &why), 0);
	usleep(200000);  /* both started and recorded */
	int64_t t0 = mono_usec();
	CHECK_INT(bgjob_stop(&reg), 2);
	CHECK_INT(bgjob_wait(&reg, t0 + 1000000), 1);  /* b ignores it */
	CHECK_INT(a.code, -SIGTERM);
	CHECK_INT(a.signalled_at_add, 0);
	CHECK_INT(bgjob_signal(&reg, SIGKILL), 1);
	CHECK_INT(bgjob_wait(&reg, mono_usec() + 3000000), 0);
	CHECK_INT(b.code, -SIGKILL);
}

/* a job that is already running when the stop comes starts its child after */
static void late_child(bgjob_t *job, void *arg)
{
	while (!bgjob_stopping(job))
		usleep(1000);
	run_child(job, arg);
}

static void test_late_process(void)
{
	static bgjob_reg_t reg = BGJOB_REG_INIT;
	const char *why;
	char *sleep_argv[] = { "sleep", "30", NULL };
	child_t c = { sleep_argv, 0, 0 };
	CHECK_INT(bgjob_start(&reg, 1, late_child, &c, &why), 0);
	int64_t t0 = mono_usec();
	bgjob_stop(&reg);
	CHECK_INT(bgjob_wait(&reg, t0 + 3000000), 0);
	CHECK_INT(c.signalled_at_add, 1);
	CHECK_INT(c.code, -SIGTERM);
}

static void test_log_line(void)
{
	sb_t out = SB_INIT;
	bgjob_log_line(&out, "fractal_server.tasks.v2.local.ID7", 30, "pip install failed");
	/* "2025-01-31 12:34:56,789 - <logger> - WARNING - <msg>\n" */
	CHECK(out.len > 26);
	if (out.len > 26) {
		CHECK(out.buf[4] == '-' && out.buf[10] == ' ' && out.buf[13] == ':' && out.buf[19] == ',');
		CHECK_STR(out.buf + 23, " - fractal_server.tasks.v2.local.ID7 - WARNING - pip install failed\n");
	}
	sb_reset(&out);
	bgjob_logf(&out, "x", 40, "%d of %s", 3, "4");
	CHECK(out.len > 23 && !strcmp(out.buf + 23, " - x - ERROR - 3 of 4\n"));
	CHECK_STR(bgjob_level_name(10), "DEBUG");
	CHECK_STR(bgjob_level_name(20), "INFO");
	CHECK_STR(bgjob_level_name(50), "CRITICAL");
	sb_release(&out);
}

int main(void)
{
	test_registry();
	test_deadline();
	test_process_groups();
	test_late_process();
	test_log_line();
	return unit_done("bgjob");
}
