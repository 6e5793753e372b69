/* collect.h — task collection and the task-group lifecycle, in the
 * background (upstream's fractal_server/tasks/v2/local/): the one door of
 * collect/ for api/ and cli/.
 *
 * A route inserts the task group and a `pending` activity, then hands the
 * work here and answers 202 at once. Each job runs in a thread of its own
 * (util/bgjob.h) with its own database connection; it re-reads the task
 * group and the activity by id (and gives up quietly if either is gone),
 * moves the activity pending -> ongoing -> OK or failed, and rewrites
 * activity.log after every step, in upstream's log-line format, so that
 * polling shows progress. All file and process work goes through the host
 * of the task group's resource (util/host.h: this machine for `local` and
 * `slurm_sudo`). Shell steps are our bash scripts (collect/templates.c),
 * written to <path>/scripts/<unix_ts>_<action>_<name> and run as
 * `bash <script>` without a shell in between.
 *
 * Inside: lifecycle.c (this door, the dispatch, delete, the failure
 * handler, shutdown), pip.c and pixi.c (the actions), steps.c (what they
 * share), templates.c, pyproject.c, pypi.c.
 *
 * Shutdown: collect_wait() lets running jobs finish until a deadline,
 * collect_stop() then stops their subprocesses; a stopped job fails through
 * its normal failure handler. Activities that a crashed process left pending or
 * ongoing are failed by collect_fail_leftovers() when the next server
 * starts. */
#ifndef COLLECT_H
#define COLLECT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

enum collect_kind {
	CK_COLLECT_PIP,
	CK_COLLECT_PIXI,
	CK_DEACTIVATE,       /* pip or pixi: decided by the group's origin */
	CK_REACTIVATE,
	CK_DELETE,
	CK_RESET,
};

typedef struct collect_req {
	enum collect_kind kind;
	int64_t task_group_id, activity_id;
	json_t *resource, *profile;   /* validated documents (api/profile_check.h), borrowed */
	const char *file_name;        /* the uploaded wheel / tar.gz, or NULL */
	const char *file_data;
	size_t file_len;
	int use_pixi_lockfile;
} collect_req_t;

/* Starts the job in a new thread; everything in r is copied. Returns 0, or
 * -1 when it could not start (the server is stopping, or no thread): the
 * activity is then failed with the reason in its log. */
int collect_start(db_t *db, const collect_req_t *r);

/* Shutdown, in phases, so that cli/start.c runs them beside the runner's
 * and the request drain against one deadline (times on the mono_usec()
 * clock of util/timeutil.h):
 *   collect_wait()  running jobs go on until the deadline (or until all
 *                   have left); returns the number still running;
 *   collect_stop()  no job starts from now on; the running ones' subprocesses
 *                   get SIGTERM, and each job fails with "fractal-server is
 *                   shutting down" through its normal failure handler;
 *   collect_kill()  SIGKILL to the subprocesses still running;
 *   collect_fail_stragglers()  from the calling thread, fails the
 *                   activities of the jobs still running, as
 *                   collect_fail_leftovers() does ("marked as failed at
 *                   shutdown"); returns their number. */
int collect_wait(int64_t deadline_usec);
int collect_stop(void);
void collect_kill(void);
int collect_fail_stragglers(void);

/* Fails the activities left `pending` or `ongoing` by an earlier server
 * process, with a log line saying so, and undoes their half-done work as
 * a failure would (a collection's task group row and folder go away).
 * Returns how many, or -1 on a database error. */
int collect_fail_leftovers(db_t *db);

#endif
