/* lifecycle.c — the door of collect/ (collect.h): starts one background
 * job per activity (util/bgjob), opens the task group's host from the
 * resource type, dispatches to the action (pip.c, pixi.c, and delete here,
 * upstream's tasks/v2/local/delete.py), runs the failure handler
 * (fail_and_cleanup), shuts the jobs down, and fails what a stopped server
 * left unfinished. */
#include "collect/collect.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/steps.h"
#include "model/state.h"
#include "util/bgjob.h"
#include "util/host.h"
#include "util/log.h"
#include "util/timeutil.h"

/* The running jobs (server context). */
static bgjob_reg_t reg = BGJOB_REG_INIT;

/* The host where a resource's task groups live: this machine for `local`
 * and `slurm_sudo`; for `slurm_ssh`, the resource's host reached over SSH
 * as the profile's user with its key (util/host_ssh.c; ssh_host, user and
 * key are NULL for the others), with its scratch folder made there from
 * scratch_template. NULL with the reason in *why (SSH: upstream's "Cannot
 * open SSH connection. Original error: ..."). */
static host_t *host_for(const char *resource_type, const char *ssh_host, const char *user, const char *key,
			bgjob_t *job, const char *scratch_template, sb_t *why)
{
	if (resource_type && !strcmp(resource_type, "slurm_ssh"))
		return host_ssh_open(job, ssh_host, user, key, scratch_template, why);
	if (resource_type && (!strcmp(resource_type, "local") || !strcmp(resource_type, "slurm_sudo"))) {
		sb_t err = SB_INIT;
		host_t *h = host_local_open(job, scratch_template, &err);
		if (!h)
			sb_addf(why, "Cannot create a temporary folder: %s", err.buf);
		sb_release(&err);
		return h;
	}
	sb_addf(why, "Task collection on resources of type '%s' is not available in this server.",
		resource_type ? resource_type : "None");
	return NULL;
}

/* ---- delete (delete.py) ---- */

static int delete_group(job_t *j)
{
	if (cj_set_state(j, ACT_ONGOING, 0))
		return -1;
	if (cj_delete_tg(j))
		return -1;
	cj_log(j, LOG_DEBUG, "Task group removed from database.");
	if (strcmp(j->tg.origin, "other")) {
		cj_log(j, LOG_DEBUG, "Removing task_group.path='%s'.", j->tg.path ? j->tg.path : "None");
		if (!j->tg.path) {
			cj_fail(j, "[Errno %d] %s: 'None'", EINVAL, strerror(EINVAL));
			return -1;
		}
		if (cj_rmtree(j, j->tg.path))
			return -1;
		cj_log(j, LOG_DEBUG, "task_group.path='%s' removed.", j->tg.path);
	}
	if (cj_set_state(j, ACT_OK, 1))
		return -1;
	cj_log(j, LOG_DEBUG, "END");
	return 0;
}

/* ---- the job ---- */

/* fail_and_cleanup: what the action needs undone, and the activity failed.
 * Upstream marks the activity failed first and undoes in a second commit;
 * here the undoing comes first, so that a client that sees "failed" also
 * sees its effect (no task group left after a failed collection). */
static void fail_and_cleanup(job_t *j)
{
	cj_log(j, LOG_WARNING, "Task %s failed. Original error: %s", j->action, j->err.buf);
	int rc = 0;
	if (j->r.kind == CK_COLLECT_PIP || j->r.kind == CK_COLLECT_PIXI)
		rc = cj_delete_tg(j);
	else if (j->r.kind == CK_DEACTIVATE)
		rc = cj_set_active(j, 1);
	else if (j->r.kind == CK_RESET)
		rc = cj_set_active(j, 0);
	if (rc)
		log_error("%s: cleanup after the failure failed: %s", j->logger, j->err.buf);
	if (cj_set_state(j, ACT_FAILED, 1))
		log_error("%s: cannot mark the activity failed: %s", j->logger, j->err.buf);
}

static const char *module_name(const job_t *j)
{
	int pixi = j->tg.origin && !strcmp(j->tg.origin, "pixi");
	switch (j->r.kind) {
	case CK_COLLECT_PIP:
		return "collect";
	case CK_COLLECT_PIXI:
		return "collect_pixi";
	case CK_DEACTIVATE:
		return pixi ? "deactivate_pixi" : "deactivate";
	case CK_REACTIVATE:
		return pixi ? "reactivate_pixi" : "reactivate";
	case CK_DELETE:
		return "delete";
	case CK_RESET:
		return pixi ? "reset_pixi" : "reset";
	}
	return "collect";
}

static const char *action_name(enum collect_kind k)
{
	switch (k) {
	case CK_COLLECT_PIP:
	case CK_COLLECT_PIXI:
		return "collect";
	case CK_DEACTIVATE:
		return "deactivate";
	case CK_REACTIVATE:
		return "reactivate";
	case CK_DELETE:
		return "delete";
	case CK_RESET:
		return "reset";
	}
	return "collect";
}

static void run_job(job_t *j)
{
	int pixi = j->tg.origin && !strcmp(j->tg.origin, "pixi");
	tg_t *t = &j->tg;
	int rc = -1;
	switch (j->r.kind) {
	case CK_COLLECT_PIP:
	case CK_COLLECT_PIXI:
		/* checked before anything is created, so that a failure does
		 * not remove a folder that is not ours */
		if (cj_exists(j, t->path)) {
			cj_fail(j, "%s already exists.", t->path);
			cj_log(j, LOG_ERROR, "%s", j->err.buf);
			fail_and_cleanup(j);
			return;
		}
		rc = j->r.kind == CK_COLLECT_PIP ? pip_collect(j) : pixi_collect(j);
		if (rc)
			cj_rmtree_nofail(j, t->path);
		break;
	case CK_DEACTIVATE:
		if (!pixi && !cj_exists(j, t->venv_path)) {
			cj_fail(j, "%s does not exist.", t->venv_path ? t->venv_path : "None");
			cj_log(j, LOG_ERROR, "%s", j->err.buf);
			break;
		}
		rc = pixi ? pixi_deactivate(j) : pip_deactivate(j);
		break;
	case CK_REACTIVATE:
	case CK_RESET:
		if (j->r.kind == CK_REACTIVATE) {
			sb_t dir = SB_INIT;
			if (pixi)
				sb_addf(&dir, "%s/%s", t->path, SOURCE_DIR_NAME);
			else
				sb_adds(&dir, t->venv_path ? t->venv_path : "");
			int exists = cj_exists(j, dir.buf);
			if (exists) {
				cj_fail(j, "%s already exists.", dir.buf);
				cj_log(j, LOG_ERROR, "%s", j->err.buf);
			}
			sb_release(&dir);
			if (exists)
				break;
		}
		rc = pixi ? pixi_reinstall(j, j->r.kind == CK_REACTIVATE ? 1 : j->r.use_pixi_lockfile)
			  : j->r.kind == CK_REACTIVATE ? pip_reactivate(j) : pip_reset(j);
		if (rc) {
			if (pixi) {
				sb_t dir = SB_INIT;
				sb_addf(&dir, "%s/%s", t->path, SOURCE_DIR_NAME);
				cj_rmtree_nofail(j, dir.buf);
				sb_release(&dir);
			} else {
				cj_rmtree_nofail(j, t->venv_path);
			}
		}
		break;
	case CK_DELETE:
		rc = delete_group(j);
		break;
	}
	if (rc)
		fail_and_cleanup(j);
}

static void job_free(job_t *j)
{
	host_close(j->host);
	cj_tg_free(&j->tg);
	sb_release(&j->log);
	sb_release(&j->err);
	json_decref(j->r.resource);
	json_decref(j->r.profile);
	free(j->file_name);
	free(j->file_data);
	free(j);
}

/* The job's thread (util/bgjob): everything of the job is freed here. */
static void job_main(bgjob_t *bg, void *arg)
{
	job_t *j = arg;
	j->bg = bg;
	sb_t err = SB_INIT;
	j->db = db_open(0, &err);
	if (!j->db) {
		log_error("%s: database connection failed: %s", j->logger, err.buf);
	} else {
		sb_t no_host = SB_INIT;
		j->host = host_for(json_string_value(json_object_get(j->r.resource, "type")),
				   json_string_value(json_object_get(j->r.resource, "host")),
				   json_string_value(json_object_get(j->r.profile, "username")),
				   json_string_value(json_object_get(j->r.profile, "ssh_key_path")), bg,
				   "/tmp/fractal-collect.XXXXXX", &no_host);
		if (!j->host)
			log_error("%s: %s", j->logger, no_host.buf);
		int found = cj_tg_load(j);
		db_res_t *r = NULL;
		int act = found == 1 && !db_exec(j->db, "SELECT id FROM taskgroupactivityv2 WHERE id = $1",
						 (db_param_t[]){ P_INT(j->r.activity_id) }, 1, &r) && db_nrows(r);
		db_res_free(r);
		if (found == 1 && act) {
			const char *rt = json_string_value(json_object_get(j->r.resource, "type"));
			snprintf(j->logger, sizeof(j->logger), "fractal_server.tasks.v2.%s.%s.ID%lld",
				 rt && !strcmp(rt, "slurm_ssh") ? "ssh" : "local", module_name(j),
				 (long long)j->r.activity_id);
			cj_log(j, j->r.kind == CK_COLLECT_PIP || j->r.kind == CK_RESET ? LOG_INFO : LOG_DEBUG, "START");
			cj_log_tg(j);
			if (!j->host) {
				cj_fail(j, "%s", no_host.buf);
				fail_and_cleanup(j);
			} else {
				run_job(j);
			}
		} else {
			log_error("Cannot find database rows with task_group_id=%lld and/or task_group_activity_id=%lld. "
				  "Exit", (long long)j->r.task_group_id, (long long)j->r.activity_id);
		}
		sb_release(&no_host);
		db_close(j->db);
	}
	sb_release(&err);
	job_free(j);
}

int collect_start(db_t *db, const collect_req_t *r)
{
	job_t *j = xcalloc(1, sizeof(*j));
	j->r = *r;
	json_incref(r->resource);
	json_incref(r->profile);
	if (r->file_name) {
		j->file_name = xstrdup(r->file_name);
		j->file_data = xmalloc(r->file_len ? r->file_len : 1);
		memcpy(j->file_data, r->file_data, r->file_len);
	}
	j->r.file_name = NULL;
	j->r.file_data = NULL;
	j->action = action_name(r->kind);
	snprintf(j->logger, sizeof(j->logger), "fractal_server.tasks.v2.local.ID%lld", (long long)r->activity_id);
	sb_init(&j->log, 0);
	sb_init(&j->err, 0);
	const char *why;
	if (!bgjob_start(&reg, r->activity_id, job_main, j, &why))
		return 0;
	/* the activity must not stay pending */
	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_t log = SB_INIT;
	sb_addf(&log, "Task %s failed. Original error: %s\n", j->action, why);
	db_exec(db, "UPDATE taskgroupactivityv2 SET status = " SQ(S_FAILED) ", log = $1, timestamp_ended = $2 WHERE id = $3",
		(db_param_t[]){ P_TEXT(log.buf), P_TS(now), P_INT(r->activity_id) }, 3, NULL);
	sb_release(&log);
	job_free(j);
	return -1;
}

/* ---- shutdown, in the phases cli/start.c runs against its one deadline ---- */

int collect_wait(int64_t deadline_usec)
{
	return bgjob_wait(&reg, deadline_usec);
}

int collect_stop(void)
{
	int n = bgjob_stop(&reg);
	if (n)
		log_warning("%d task-group activities still running: stopping them (they will be marked failed)", n);
	return n;
}

void collect_kill(void)
{
	bgjob_signal(&reg, SIGKILL);
}

/* The activities a server left pending or ongoing, with what fail_rows()
 * needs of each */
#define UNFINISHED_SELECT                                                                              \
	"SELECT a.id, a.action, a.status, a.log, g.id, g.origin, g.path, g.venv_path, res.type, "      \
	"res.host, p.username, p.ssh_key_path "                                                        \
	"FROM taskgroupactivityv2 a LEFT JOIN taskgroupv2 g ON g.id = a.taskgroupv2_id "               \
	"LEFT JOIN resource res ON res.id = g.resource_id "                                            \
	"LEFT JOIN user_oauth u ON u.id = a.user_id LEFT JOIN profile p ON p.id = u.profile_id "       \
	"WHERE a.status IN (" SQ(S_PENDING) ", " SQ(S_ONGOING) ")"

/* Fails the activities of r (UNFINISHED_SELECT's rows) as their failure
 * handler would have: the log line says they were marked failed `when`, a
 * collection's half-made folder and task group go. -1 on a database error. */
static int fail_rows(db_t *db, db_res_t *r, const char *when)
{
	int n = db_nrows(r);
	for (int i = 0; i < n; i++) {
		int64_t aid = db_int(r, i, 0);
		const char *action = db_text(r, i, 1), *origin = db_text(r, i, 5), *path = db_text(r, i, 6);
		const char *venv = db_text(r, i, 7);
		int has_tg = !db_isnull(r, i, 4);
		int64_t tgid = has_tg ? db_int(r, i, 4) : 0;
		int pixi = origin && !strcmp(origin, "pixi");
		sb_t log = SB_INIT, dir = SB_INIT;
		if (db_text(r, i, 3))
			sb_adds(&log, db_text(r, i, 3));
		char now[40];
		utc_now_iso(now, sizeof(now));
		sb_addf(&log, "Task %s failed: fractal-server stopped while this activity was %s; marked as failed %s "
			      "(%s).\n", action, db_text(r, i, 2), when, now);
		/* what the failure handler and the action's cleanup would have done */
		if (has_tg && !strcmp(action, "collect")) {
			if (path && origin && strcmp(origin, "other"))
				sb_adds(&dir, path);
		} else if (has_tg && (!strcmp(action, "reactivate") || !strcmp(action, "reset"))) {
			if (pixi && path)
				sb_addf(&dir, "%s/%s", path, SOURCE_DIR_NAME);
			else if (!pixi && venv)
				sb_adds(&dir, venv);
		}
		if (dir.len) {
			sb_t why = SB_INIT;
			host_t *h = host_for(db_text(r, i, 8), db_text(r, i, 9), db_text(r, i, 10), db_text(r, i, 11), NULL,
					     NULL, &why);
			if (!h)
				log_warning("Cannot remove %s: %s", dir.buf, why.buf);
			else if (host_test(h, dir.buf, HOST_EXISTS) && host_rmtree(h, dir.buf, &why))
				log_warning("Cannot remove %s: %s", dir.buf, strerror(errno));
			host_close(h);
			sb_release(&why);
		}
		int rc = db_begin(db);
		if (!rc)
			rc = db_exec(db, "UPDATE taskgroupactivityv2 SET status = " SQ(S_FAILED) ", log = $1, "
					 "timestamp_ended = $2 WHERE id = $3",
				     (db_param_t[]){ P_TEXT(log.buf), P_TS(now), P_INT(aid) }, 3, NULL);
		if (!rc && has_tg) {
			if (!strcmp(action, "collect"))
				rc = db_exec(db, "DELETE FROM taskv2 WHERE taskgroupv2_id = $1", (db_param_t[]){ P_INT(tgid) },
					     1, NULL) ||
				     db_exec(db, "DELETE FROM taskgroupv2 WHERE id = $1", (db_param_t[]){ P_INT(tgid) }, 1,
					     NULL);
			else if (!strcmp(action, "deactivate") || !strcmp(action, "reset"))
				rc = db_exec(db, "UPDATE taskgroupv2 SET active = $1 WHERE id = $2",
					     (db_param_t[]){ P_BOOL(!strcmp(action, "deactivate")), P_INT(tgid) }, 2, NULL);
		}
		if (!rc)
			rc = db_commit(db);
		else
			db_rollback(db);
		sb_release(&log);
		sb_release(&dir);
		if (rc)
			return -1;
		log_warning("Task-group activity %lld (%s) was left %s: marked failed %s", (long long)aid, action,
			    db_text(r, i, 2), when);
	}
	return n;
}

int collect_fail_leftovers(db_t *db)
{
	db_res_t *r;
	if (db_exec(db, UNFINISHED_SELECT " ORDER BY a.id", NULL, 0, &r))
		return -1;
	int n = fail_rows(db, r, "at the next start");
	db_res_free(r);
	return n;
}

int collect_fail_stragglers(void)
{
	size_t n;
	int64_t *ids = bgjob_alive_ids(&reg, &n);
	if (!n)
		return 0;
	sb_t err = SB_INIT;
	db_t *db = db_open(0, &err);
	int failed = 0;
	for (size_t i = 0; db && i < n; i++) {
		db_res_t *r;
		if (db_exec(db, UNFINISHED_SELECT " AND a.id = $1", (db_param_t[]){ P_INT(ids[i]) }, 1, &r)) {
			log_error("Shutdown: cannot read task-group activity %lld: %s", (long long)ids[i], db_errmsg(db));
			continue;
		}
		int k = fail_rows(db, r, "at shutdown");
		db_res_free(r);
		if (k < 0)
			log_error("Shutdown: cannot mark task-group activity %lld failed: %s", (long long)ids[i],
				  db_errmsg(db));
		else
			failed += k;
	}
	if (!db)
		log_error("Shutdown: cannot open the database to mark %zu task-group activities failed: %s", n, err.buf);
	db_close(db);
	sb_release(&err);
	free(ids);
	return failed;
}
