/* state.c — the state tables of state.h. A change not listed as legal is
 * refused and logged with its object, as pgbouncer's change_client_state()
 * refuses a move between the wrong lists. */
#include "model/state.h"

#include "util/log.h"

static const char *const job_names[] = { S_SUBMITTED, S_DONE, S_FAILED };
static const unsigned char job_legal[JOB_NSTATES * JOB_NSTATES] = {
	/* to:   submitted done failed */
	/* submitted */ 0, 1, 1,
	/* done      */ 0, 0, 0,
	/* failed    */ 0, 0, 0,
};
const state_machine_t job_sm = { "job", JOB_NSTATES, job_names, job_legal,
				 SQ(S_SUBMITTED) ", " SQ(S_DONE) " or " SQ(S_FAILED) };

static const char *const act_names[] = { S_PENDING, S_ONGOING, S_OK, S_FAILED };
static const unsigned char act_legal[ACT_NSTATES * ACT_NSTATES] = {
	/* to:   pending ongoing OK failed */
	/* pending */ 0, 1, 1, 1,
	/* ongoing */ 0, 0, 1, 1,
	/* OK      */ 0, 0, 0, 0,
	/* failed  */ 0, 0, 0, 0,
};
const state_machine_t activity_sm = { "task-group activity", ACT_NSTATES, act_names, act_legal,
				      SQ(S_PENDING) ", " SQ(S_ONGOING) ", " SQ(S_FAILED) " or " SQ(S_OK) };

static const char *const hist_names[] = { S_SUBMITTED, S_DONE, S_FAILED };
static const unsigned char hist_legal[HIST_NSTATES * HIST_NSTATES] = {
	/* to:   submitted done failed */
	/* submitted */ 0, 1, 1,
	/* done      */ 0, 0, 1,
	/* failed    */ 0, 0, 0,
};
const state_machine_t hist_sm = { "history unit", HIST_NSTATES, hist_names, hist_legal,
				  SQ(S_SUBMITTED) ", " SQ(S_DONE) " or " SQ(S_FAILED) };

const char *sm_name(const state_machine_t *m, int s)
{
	return s >= 0 && s < m->n ? m->names[s] : "?";
}

int sm_parse(const state_machine_t *m, const char *s)
{
	if (s)
		for (int i = 0; i < m->n; i++) {
			const char *a = m->names[i], *b = s;
			while (*a && *a == *b)
				a++, b++;
			if (!*a && !*b)
				return i;
		}
	return -1;
}

int sm_final(const state_machine_t *m, int s)
{
	if (s < 0 || s >= m->n)
		return 1;
	for (int t = 0; t < m->n; t++)
		if (m->legal[s * m->n + t])
			return 0;
	return 1;
}

int sm_change(const state_machine_t *m, int64_t id, int from, int to)
{
	if (from >= 0 && from < m->n && to >= 0 && to < m->n && m->legal[from * m->n + to])
		return 0;
	log_error("%s %lld: illegal state change %s -> %s", m->what, (long long)id, sm_name(m, from), sm_name(m, to));
	return -1;
}
