/* test_state.c — src/model/state.c: the wire strings of the three machines
 * (upstream's enum values, and pydantic's list of them), sm_parse of every
 * name and of wrong ones, sm_final, and sm_change over every pair of states,
 * the illegal ones logged with their object. */
#include <stdlib.h>
#include <unistd.h>

#include "model/state.h"
#include "unit.h"

/* What sm_change(m, id, from, to) wrote to stderr (static; "" for nothing). */
static const char *change_log(const state_machine_t *m, int64_t id, int from, int to, int *rc)
{
	static char buf[512];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	fflush(stderr);
	dup2(fileno(f), STDERR_FILENO);
	*rc = sm_change(m, id, from, to);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* Every pair of m's states (and one out of range each side): legal exactly
 * when listed in legal[] as "from>to", silent when legal, one error line
 * naming the object and both states otherwise. */
static void check_changes(const state_machine_t *m, const char *const *legal, size_t nlegal)
{
	for (int from = -1; from <= m->n; from++)
		for (int to = -1; to <= m->n; to++) {
			char pair[64];
			snprintf(pair, sizeof(pair), "%s>%s", sm_name(m, from), sm_name(m, to));
			int want = 0;
			for (size_t k = 0; k < nlegal; k++)
				want |= !strcmp(legal[k], pair);
			int rc;
			const char *log = change_log(m, 42, from, to, &rc);
			if (!CHECK(rc == (want ? 0 : -1)))
				fprintf(stderr, "    %s %s: got %d\n", m->what, pair, rc);
			if (want) {
				CHECK_STR(log, "");
				continue;
			}
			char line[160];
			snprintf(line, sizeof(line), " - ERROR - %s 42: illegal state change %s -> %s\n", m->what,
				 sm_name(m, from), sm_name(m, to));
			if (!CHECK(strstr(log, line) != NULL && strchr(log, '\n') == log + strlen(log) - 1))
				fprintf(stderr, "    %s %s logged: %s", m->what, pair, log);
		}
}

/* sm_parse(sm_name(s)) == s for every state, the names are names[], the
 * expected list quotes each of them, and near misses are refused. */
static void check_names(const state_machine_t *m, const char *const *names, int n, const char *expected)
{
	CHECK_INT(m->n, n);
	CHECK_STR(m->expected, expected);
	for (int s = 0; s < n; s++) {
		CHECK_STR(sm_name(m, s), names[s]);
		CHECK_INT(sm_parse(m, names[s]), s);
		char quoted[32];
		snprintf(quoted, sizeof(quoted), "'%s'", names[s]);
		CHECK(strstr(m->expected, quoted) != NULL);
	}
	CHECK_STR(sm_name(m, -1), "?");
	CHECK_STR(sm_name(m, n), "?");
	static const char *const wrong[] = { "", "Submitted", "DONE", "ok", "Ok", "fail", "failed ", " done", "pendin",
					     "ongoingg", "unset", "?", "'done'" };
	for (size_t i = 0; i < sizeof(wrong) / sizeof(*wrong); i++)
		if (!CHECK(sm_parse(m, wrong[i]) == -1))
			fprintf(stderr, "    %s parsed '%s'\n", m->what, wrong[i]);
	CHECK_INT(sm_parse(m, NULL), -1);
}

int main(void)
{
	/* the macros are the wire strings; SQ() is their SQL literal */
	CHECK_STR(SQ(S_SUBMITTED), "'submitted'");
	CHECK_STR("status = " SQ(S_OK), "status = 'OK'");

	check_names(&job_sm, (const char *const[]){ "submitted", "done", "failed" }, 3, "'submitted', 'done' or 'failed'");
	check_names(&activity_sm, (const char *const[]){ "pending", "ongoing", "OK", "failed" }, 4,
		    "'pending', 'ongoing', 'failed' or 'OK'");
	check_names(&hist_sm, (const char *const[]){ "submitted", "done", "failed" }, 3, "'submitted', 'done' or 'failed'");
	/* the same spelling is the same state in each machine */
	CHECK_INT(sm_parse(&activity_sm, S_FAILED), ACT_FAILED);
	CHECK_INT(sm_parse(&job_sm, S_OK), -1);
	CHECK_INT(sm_parse(&activity_sm, S_DONE), -1);
	CHECK_INT(sm_parse(&hist_sm, S_PENDING), -1);

	CHECK_INT(sm_final(&job_sm, JOB_SUBMITTED), 0);
	CHECK_INT(sm_final(&job_sm, JOB_DONE), 1);
	CHECK_INT(sm_final(&job_sm, JOB_FAILED), 1);
	CHECK_INT(sm_final(&activity_sm, ACT_PENDING), 0);
	CHECK_INT(sm_final(&activity_sm, ACT_ONGOING), 0);
	CHECK_INT(sm_final(&activity_sm, ACT_OK), 1);
	CHECK_INT(sm_final(&activity_sm, ACT_FAILED), 1);
	CHECK_INT(sm_final(&hist_sm, HIST_SUBMITTED), 0);
	CHECK_INT(sm_final(&hist_sm, HIST_DONE), 0); /* invalid output, admin PATCH: done -> failed */
	CHECK_INT(sm_final(&hist_sm, HIST_FAILED), 1);
	CHECK_INT(sm_final(&job_sm, -1), 1);
	CHECK_INT(sm_final(&job_sm, JOB_NSTATES), 1);

	static const char *const job_legal[] = { "submitted>done", "submitted>failed" };
	check_changes(&job_sm, job_legal, 2);
	static const char *const act_legal[] = { "pending>ongoing", "pending>OK", "pending>failed", "ongoing>OK",
						 "ongoing>failed" };
	check_changes(&activity_sm, act_legal, 5);
	static const char *const hist_legal[] = { "submitted>done", "submitted>failed", "done>failed" };
	check_changes(&hist_sm, hist_legal, 3);

	return unit_done("state");
}
