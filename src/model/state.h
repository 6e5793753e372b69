/* state.h — the three state machines of the server, as upstream's enums
 * (fractal_server/app/schemas/v2: JobStatusType, TaskGroupActivityStatus,
 * HistoryUnitStatus), each an enum with its wire strings in one table and
 * one function that decides whether a change is legal.
 *
 *   job (jobv2.status)
 *     JOB_SUBMITTED  created by submission; the runner owns it
 *     JOB_DONE       every task ran                        (final)
 *     JOB_FAILED     a task failed, the job was stopped, the server stopped
 *                    or died under it, or an admin marked it  (final)
 *   task-group activity (taskgroupactivityv2.status)
 *     ACT_PENDING    created by the route, before the background job starts
 *     ACT_ONGOING    the background job runs it
 *     ACT_OK         done (also created as OK for lifecycle actions that
 *                    need no background work)                (final)
 *     ACT_FAILED     the background job failed, or the server stopped or
 *                    died under it                           (final)
 *   history run and history unit (historyrun.status, historyunit.status)
 *     HIST_SUBMITTED created when the run or unit starts
 *     HIST_DONE      ended well; still becomes failed, as upstream's
 *                    does, when a unit's task succeeded but its output
 *                    fails validation, or an admin marks the run's job
 *                    failed
 *     HIST_FAILED    ended badly, or its job failed around it (final)
 *
 * A writer that knows the from-state calls sm_change() before its UPDATE.
 * An illegal change is logged, not refused: the write happens as upstream's
 * would. Writers racing another (a stop, a recovery) also carry the
 * from-state in the UPDATE's WHERE (`... AND status = 'submitted'`), so that
 * a row that moved meanwhile is not moved twice. The wire strings are
 * also macros so that SQL text can name them (SQ(S_SUBMITTED) is the
 * quoted SQL literal 'submitted') without a second copy of the spelling. */
#ifndef STATE_H
#define STATE_H

#include <stdint.h>

#define S_SUBMITTED "submitted"
#define S_DONE "done"
#define S_FAILED "failed"
#define S_PENDING "pending"
#define S_ONGOING "ongoing"
#define S_OK "OK"
#define SQ(s) "'" s "'"

enum job_state { JOB_SUBMITTED, JOB_DONE, JOB_FAILED, JOB_NSTATES };
enum activity_state { ACT_PENDING, ACT_ONGOING, ACT_OK, ACT_FAILED, ACT_NSTATES };
enum hist_state { HIST_SUBMITTED, HIST_DONE, HIST_FAILED, HIST_NSTATES };

typedef struct state_machine {
	const char *what;          /* "job", "task-group activity", "history unit" */
	int n;                     /* number of states */
	const char *const *names;  /* wire strings, by state */
	const unsigned char *legal; /* n x n: legal[from * n + to] */
	const char *expected;      /* pydantic's enum list: "'submitted', 'done' or 'failed'" */
} state_machine_t;

extern const state_machine_t job_sm, activity_sm, hist_sm;

/* The wire string of state s (a static string; "?" when out of range). */
const char *sm_name(const state_machine_t *m, int s);
/* The state spelled s, or -1 when s is not one of m's wire strings. */
int sm_parse(const state_machine_t *m, const char *s);
/* 1 for a final state (no legal change out of it). */
int sm_final(const state_machine_t *m, int s);
/* 0 when from -> to is legal; otherwise logs "<what> <id>: illegal state
 * change <from> -> <to>" at error level and returns -1. Never touches the
 * database: the caller writes (or not). */
int sm_change(const state_machine_t *m, int64_t id, int from, int to);

#endif
