/* steps.c — see steps.h. Log lines are Python logging's with upstream's
 * logger names (fractal_server.tasks.v2.local.<module>.ID<activity id>),
 * written by util/bgjob; file and process work goes through the job's host
 * (util/host.h), whose OSError texts become the failure reasons. */
#include "collect/steps.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/pyrepr.h"
#include "model/state.h"
#include "model/task.h"
#include "model/validate.h"
#include "util/jsonspan.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- log and failure ---- */

void cj_log(job_t *j, int level, const char *fmt, ...)
{
	sb_t msg = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	bgjob_log_line(&j->log, j->logger, level, msg.buf);
	log_msg(level, j->logger, "%s", msg.buf);
	sb_release(&msg);
}

void cj_fail(job_t *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_reset(&j->err);
	sb_vaddf(&j->err, fmt, ap);
	va_end(ap);
}

/* ---- database ---- */

static int db_fail(job_t *j)
{
	cj_fail(j, "Database error: %s", db_errmsg(j->db));
	return -1;
}

/* One statement in a transaction of its own. */
static int exec1(job_t *j, const char *sql, const db_param_t *p, int n)
{
	if (db_begin(j->db))
		return db_fail(j);
	if (db_exec(j->db, sql, p, n, NULL)) {
		db_fail(j);
		db_rollback(j->db);
		return -1;
	}
	if (db_commit(j->db))
		return db_fail(j);
	return 0;
}

int cj_save_log(job_t *j)
{
	return exec1(j, "UPDATE taskgroupactivityv2 SET log = $1 WHERE id = $2",
		     (db_param_t[]){ P_TEXT(j->log.buf), P_INT(j->r.activity_id) }, 2);
}

/* collect_start's xcalloc leaves j->state pending, as the routes create
 * the activity */
_Static_assert(ACT_PENDING == 0, "a new job's activity is pending");

int cj_set_state(job_t *j, enum activity_state to, int ended)
{
	const char *status = sm_name(&activity_sm, to);
	char now[40];
	utc_now_iso(now, sizeof(now));
	sm_change(&activity_sm, j->r.activity_id, j->state, to);
	int rc;
	if (ended)
		rc = exec1(j, "UPDATE taskgroupactivityv2 SET status = $1, log = $2, timestamp_ended = $3 WHERE id = $4",
			   (db_param_t[]){ P_TEXT(status), P_TEXT(j->log.buf), P_TS(now), P_INT(j->r.activity_id) }, 4);
	else
		rc = exec1(j, "UPDATE taskgroupactivityv2 SET status = $1, log = $2 WHERE id = $3",
			   (db_param_t[]){ P_TEXT(status), P_TEXT(j->log.buf), P_INT(j->r.activity_id) }, 3);
	if (!rc)
		j->state = to;
	return rc;
}

int cj_set_active(job_t *j, int active)
{
	j->tg.active = active;
	return exec1(j, "UPDATE taskgroupv2 SET active = $1 WHERE id = $2",
		     (db_param_t[]){ P_BOOL(active), P_INT(j->tg.id) }, 2);
}

int cj_set_tg_text(job_t *j, const char *column, const char *value)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "UPDATE taskgroupv2 SET %s = $1 WHERE id = $2", column);
	return exec1(j, sql, (db_param_t[]){ P_TEXT(value), P_INT(j->tg.id) }, 2);
}

/* Deletes the task group row and its tasks (upstream's ORM cascade). */
int cj_delete_tg(job_t *j)
{
	if (db_begin(j->db))
		return db_fail(j);
	if (db_exec(j->db, "DELETE FROM taskv2 WHERE taskgroupv2_id = $1", (db_param_t[]){ P_INT(j->tg.id) }, 1, NULL) ||
	    db_exec(j->db, "DELETE FROM taskgroupv2 WHERE id = $1", (db_param_t[]){ P_INT(j->tg.id) }, 1, NULL)) {
		db_fail(j);
		db_rollback(j->db);
		return -1;
	}
	if (db_commit(j->db))
		return db_fail(j);
	return 0;
}

static char *dup_cell(db_res_t *r, int c)
{
	const char *s = db_text(r, 0, c);
	return s ? xstrdup(s) : NULL;
}

void cj_tg_free(tg_t *t)
{
	char **s[] = { &t->origin, &t->pkg_name, &t->version, &t->python_version, &t->pixi_version, &t->path,
		       &t->venv_path, &t->archive_path, &t->pip_extras, &t->pinned_pre, &t->pinned_post,
		       &t->env_info, &t->ts_created, &t->ts_last_used };
	for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++) {
		free(*s[i]);
		*s[i] = NULL;
	}
}

/* 1 loaded, 0 missing, -1 db error. */
int cj_tg_load(job_t *j)
{
	db_res_t *r;
	if (db_exec(j->db, "SELECT id, user_id, user_group_id, resource_id, active, origin, pkg_name, version, "
			   "python_version, pixi_version, path, venv_path, archive_path, pip_extras, "
			   "pinned_package_versions_pre, pinned_package_versions_post, env_info, timestamp_created, "
			   "timestamp_last_used FROM taskgroupv2 WHERE id = $1",
		    (db_param_t[]){ P_INT(j->r.task_group_id) }, 1, &r))
		return db_fail(j);
	if (!db_nrows(r)) {
		db_res_free(r);
		return 0;
	}
	tg_t *t = &j->tg;
	cj_tg_free(t);
	t->id = db_int(r, 0, 0);
	t->user_id = db_int(r, 0, 1);
	t->has_group = !db_isnull(r, 0, 2);
	t->user_group_id = t->has_group ? db_int(r, 0, 2) : 0;
	t->resource_id = db_int(r, 0, 3);
	t->active = db_bool(r, 0, 4);
	char **s[] = { &t->origin, &t->pkg_name, &t->version, &t->python_version, &t->pixi_version, &t->path,
		       &t->venv_path, &t->archive_path, &t->pip_extras, &t->pinned_pre, &t->pinned_post,
		       &t->env_info, &t->ts_created, &t->ts_last_used };
	for (int i = 0; i < 14; i++)
		*s[i] = dup_cell(r, 5 + i);
	db_res_free(r);
	return 1;
}

/* Python's str() of a timestamp column: "2025-01-31 12:34:56.123456+00:00". */
static void py_ts(sb_t *o, const char *ts)
{
	if (!ts) {
		sb_adds(o, "None");
		return;
	}
	for (const char *p = ts; *p; p++)
		sb_addc(o, *p == 'T' ? ' ' : *p);
}

static void py_text(sb_t *o, const char *s)
{
	sb_adds(o, s ? s : "None");
}

static void py_dict(sb_t *o, const char *json)
{
	json_t *v = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
	if (v)
		py_repr_json(o, v);
	else
		sb_adds(o, "None");
	json_decref(v);
}

/* get_activity_and_task_group's debug lines: every attribute but env_info,
 * sorted by name, as Python prints them. */
void cj_log_tg(job_t *j)
{
	tg_t *t = &j->tg;
	sb_t v = SB_INIT;
#define LINE(key, expr)                                           \
	do {                                                      \
		sb_reset(&v);                                     \
		expr;                                             \
		cj_log(j, LOG_DEBUG, "task_group.%s: %s", key, v.buf); \
	} while (0)
	LINE("active", sb_adds(&v, t->active ? "True" : "False"));
	LINE("archive_path", py_text(&v, t->archive_path));
	LINE("id", sb_addf(&v, "%lld", (long long)t->id));
	LINE("origin", py_text(&v, t->origin));
	LINE("path", py_text(&v, t->path));
	LINE("pinned_package_versions_post", py_dict(&v, t->pinned_post));
	LINE("pinned_package_versions_pre", py_dict(&v, t->pinned_pre));
	LINE("pip_extras", py_text(&v, t->pip_extras));
	LINE("pixi_version", py_text(&v, t->pixi_version));
	LINE("pkg_name", py_text(&v, t->pkg_name));
	LINE("python_version", py_text(&v, t->python_version));
	LINE("resource_id", sb_addf(&v, "%lld", (long long)t->resource_id));
	LINE("timestamp_created", py_ts(&v, t->ts_created));
	LINE("timestamp_last_used", py_ts(&v, t->ts_last_used));
	LINE("user_group_id", t->has_group ? sb_addf(&v, "%lld", (long long)t->user_group_id) : sb_adds(&v, "None"));
	LINE("user_id", sb_addf(&v, "%lld", (long long)t->user_id));
	LINE("venv_path", py_text(&v, t->venv_path));
	LINE("version", py_text(&v, t->version));
#undef LINE
	sb_release(&v);
}

/* ---- files and commands on the host ---- */

int cj_exists(job_t *j, const char *path)
{
	return path && host_test(j->host, path, HOST_EXISTS);
}

int cj_mkdir(job_t *j, const char *path, int flags)
{
	sb_reset(&j->err);
	return host_mkdir(j->host, path, flags, &j->err);
}

int cj_write_file(job_t *j, const char *path, const void *data, size_t len)
{
	sb_reset(&j->err);
	return host_write_file(j->host, path, data, len, &j->err);
}

char *cj_read_file(job_t *j, const char *path, size_t *len)
{
	sb_t s = SB_INIT;
	sb_reset(&j->err);
	if (host_read_file(j->host, path, &s, &j->err)) {
		sb_release(&s);
		return NULL;
	}
	if (len)
		*len = s.len;
	return sb_detach(&s);
}

int cj_rmtree(job_t *j, const char *path)
{
	sb_reset(&j->err);
	return host_rmtree(j->host, path, &j->err);
}

void cj_rmtree_nofail(job_t *j, const char *path)
{
	if (!path)
		return;
	cj_log(j, LOG_INFO, "Now delete folder %s", path);
	sb_t err = SB_INIT;
	if (host_rmtree(j->host, path, &err))
		cj_log(j, LOG_ERROR, "Removing folder failed.\nOriginal error:\n%s", err.buf);
	else
		cj_log(j, LOG_INFO, "Deleted folder %s", path);
	sb_release(&err);
}

int cj_run_argv(job_t *j, char *const argv[], int shown, char *const env[], char **out)
{
	sb_t shown_cmd = SB_INIT;
	for (int i = 0; argv[i] && (!shown || i < shown); i++)
		sb_addf(&shown_cmd, "%s%s", i ? " " : "", argv[i]);
	const char *cmd = shown_cmd.buf;
	host_run_t res = HOST_RUN_INIT;
	int rc = -1;
	cj_log(j, LOG_DEBUG, "START subprocess call to '%s'", cmd);
	/* upstream's check of the command line, kept for its error texts; the
	 * command itself is never split again, so a path stays one argument */
	sb_t msg = SB_INIT;
	int bad = task_validate_cmd(cmd, NULL, NULL, &msg) != NULL;
	if (bad)
		cj_fail(j, "%s", msg.buf);
	sb_release(&msg);
	if (bad)
		goto out;
	if (bgjob_stopping(j->bg)) {
		cj_fail(j, "fractal-server is shutting down: '%s' was not run.", cmd);
		goto out;
	}
	host_run(j->host, argv, env, &res);
	if (!res.started) {
		cj_fail(j, "[Errno %d] %s: '%s'", res.errnum, res.why, cmd);
	} else if (res.code != 0) {
		cj_log(j, LOG_DEBUG, "ERROR in subprocess call to '%s'", cmd);
		cj_fail(j, "Command %s failed.\nreturncode=%d\nSTDOUT:\n%s\nSTDERR:\n%s\n", cmd, res.code, res.out.buf,
			res.err.buf);
		if (bgjob_stopping(j->bg))
			sb_adds(&j->err, "(stopped: fractal-server is shutting down)\n");
	} else {
		cj_log(j, LOG_DEBUG, "returncode=%d", res.code);
		cj_log(j, LOG_DEBUG, "STDOUT:");
		cj_log(j, LOG_DEBUG, "%s", res.out.buf);
		cj_log(j, LOG_DEBUG, "STDERR:");
		cj_log(j, LOG_DEBUG, "%s", res.err.buf);
		cj_log(j, LOG_DEBUG, "END   subprocess call to '%s'", cmd);
		if (out)
			*out = sb_detach(&res.out);
		rc = 0;
	}
out:
	host_run_release(&res);
	sb_release(&shown_cmd);
	return rc;
}

/* ---- templates ---- */

void cj_var_add(script_ctx_t *c, const char *name, const char *value)
{
	if (c->nvar < MAX_VARS)
		c->var[c->nvar++] = (script_var_t){ name, value ? value : "None" };
}

const char *cj_var_value(const script_ctx_t *c, const char *name)
{
	for (int i = 0; i < c->nvar; i++)
		if (!strcmp(c->var[i].name, name))
			return c->var[i].value;
	return NULL;
}

/* The frozen option must be one of the two upstream allows. */
static int check_frozen(job_t *j, const script_ctx_t *c)
{
	const char *frozen = cj_var_value(c, "FRACTAL_FROZEN_OPTION");
	if (frozen && strcmp(frozen, "") && strcmp(frozen, "--frozen")) {
		cj_fail(j, "Invalid replacement=('__FROZEN_OPTION__', '%s').", frozen);
		return -1;
	}
	return 0;
}

int cj_write_template(job_t *j, const script_ctx_t *c, const collect_template_t *t, sb_t *script)
{
	if (check_frozen(j, c))
		return -1;
	sb_t dir = SB_INIT;
	sb_addf(&dir, "%s/scripts", j->tg.path);
	sb_addf(script, "%s/%s_%s", dir.buf, c->prefix, t->name);
	int rc = cj_mkdir(j, dir.buf, HOST_MKDIR_EXIST_OK) || cj_write_file(j, script->buf, t->text, strlen(t->text));
	sb_release(&dir);
	return rc ? -1 : 0;
}

int cj_run_template(job_t *j, script_ctx_t *c, const collect_template_t *t, char **out)
{
	cj_log(j, LOG_DEBUG, "_customize_and_run_template %s - START", t->name);
	sb_t script = SB_INIT, envbuf[MAX_VARS];
	char *env[MAX_VARS + 1];
	for (int i = 0; i < c->nvar; i++) {
		envbuf[i] = (sb_t)SB_INIT;
		sb_addf(&envbuf[i], "%s=%s", c->var[i].name, c->var[i].value);
		env[i] = envbuf[i].buf;
	}
	env[c->nvar] = NULL;
	char **argv = xmalloc(sizeof(*argv) * (size_t)(c->nargs + 3));
	int rc = -1;
	if (cj_write_template(j, c, t, &script))
		goto out;
	argv[0] = "bash";
	argv[1] = script.buf;
	for (int i = 0; i < c->nargs; i++)
		argv[2 + i] = c->args[i];
	argv[2 + c->nargs] = NULL;
	cj_log(j, LOG_DEBUG, "Now run 'bash %s' ", script.buf);
	if (cj_run_argv(j, argv, 2, env, out))
		goto out;
	cj_log(j, LOG_DEBUG, "_customize_and_run_template %s - END", t->name);
	rc = 0;
out:
	for (int i = 0; i < c->nvar; i++)
		sb_release(&envbuf[i]);
	free(argv);
	sb_release(&script);
	return rc;
}

void cj_script_prefix(script_ctx_t *c, const char *action)
{
	snprintf(c->prefix, sizeof(c->prefix), "%lld_%s", (long long)time(NULL), action);
}

/* ---- parsing ---- */

json_t *cj_res_get(job_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j->r.resource, a);
	return b ? json_object_get(v, b) : v;
}

char *cj_parse_label(job_t *j, const char *stdout_text, const char *label)
{
	int count = 0;
	char *value = NULL;
	const char *line = stdout_text;
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		char *l = xstrndup(line, len);
		char *hit = strstr(l, label);
		if (hit) {
			count++;
			/* Python's split(label)[-1]: after the last occurrence */
			char *last = hit, *n;
			while ((n = strstr(last + 1, label)))
				last = n;
			char *v = last + strlen(label);
			while (*v == ' ')
				v++;
			size_t vl = strlen(v);
			while (vl && v[vl - 1] == ' ')
				vl--;
			free(value);
			value = xstrndup(v, vl);
		}
		free(l);
		line = eol ? eol + 1 : NULL;
	}
	if (count == 1)
		return value;
	free(value);
	if (!count)
		cj_fail(j, "String '%s' not found in stdout.", label);
	else
		cj_fail(j, "String '%s' found too many times (%d).", label, count);
	return NULL;
}

/* ---- manifest and tasks ---- */

int cj_load_manifest(job_t *j, const char *manifest_path, const char *package_root, const char *python,
		     int check_files, json_t **tasks_out)
{
	cj_log(j, LOG_INFO, "now loading manifest_path='%s'", manifest_path);
	size_t len;
	char *text = cj_read_file(j, manifest_path, &len);
	if (!text)
		return -1;
	size_t deep;
	if (json_text_too_deep(text, len, JSON_MAX_INPUT_DEPTH, &deep)) {
		/* stored, its args schemas could not be read back once wrapped */
		free(text);
		cj_fail(j, "the manifest nests arrays and objects deeper than %d levels (char %zu)", JSON_MAX_INPUT_DEPTH,
			deep);
		return -1;
	}
	json_error_t jerr;
	json_t *m = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	free(text);
	if (!m) {
		cj_fail(j, "%s: line %d column %d (char %d)", jerr.text, jerr.line, jerr.column, jerr.position);
		return -1;
	}
	cj_log(j, LOG_INFO, "loaded manifest_path='%s'", manifest_path);
	cj_log(j, LOG_INFO, "now validating manifest content");
	verr_t e;
	verr_init(&e);
	json_t *loc = json_array();
	json_t *man = manifest_check(m, loc, &e);
	json_decref(loc);
	json_decref(m);
	if (!man) {
		sb_t s = SB_INIT;
		verr_render(e.list, "ManifestV2", &s);
		cj_fail(j, "%s", s.buf);
		sb_release(&s);
		verr_free(&e);
		return -1;
	}
	cj_log(j, LOG_INFO, "validated manifest content");
	cj_save_log(j);
	cj_log(j, LOG_INFO, "_prepare_tasks_metadata - start");
	json_t *tasks = manifest_tasks(man, package_root, python, j->tg.version, &e);
	json_decref(man);
	if (!tasks) {
		sb_t s = SB_INIT;
		verr_render(e.list, "TaskCreate", &s);
		cj_fail(j, "%s", s.buf);
		sb_release(&s);
		verr_free(&e);
		return -1;
	}
	verr_free(&e);
	if (check_files) {
		size_t i;
		json_t *t;
		json_array_foreach(tasks, i, t) {
			static const char *const cmds[] = { "command_non_parallel", "command_parallel" };
			for (int k = 0; k < 2; k++) {
				const char *cmd = json_string_value(json_object_get(t, cmds[k]));
				if (!cmd)
					continue;
				/* the last whitespace-separated word */
				size_t n = strlen(cmd);
				while (n && (cmd[n - 1] == ' ' || cmd[n - 1] == '\t'))
					n--;
				size_t b = n;
				while (b && cmd[b - 1] != ' ' && cmd[b - 1] != '\t')
					b--;
				char *file = xstrndup(cmd + b, n - b);
				int ok = cj_exists(j, file);
				if (!ok)
					cj_fail(j, "Task `%s` has `%s` pointing to missing file `%s`.",
					     json_string_value(json_object_get(t, "name")), cmds[k], file);
				free(file);
				if (!ok) {
					json_decref(tasks);
					return -1;
				}
			}
		}
	}
	cj_log(j, LOG_INFO, "_prepare_tasks_metadata - end");
	cj_save_log(j);
	*tasks_out = tasks;
	return 0;
}

int cj_insert_tasks(job_t *j, json_t *tasks)
{
	cj_log(j, LOG_INFO, "create_db_tasks_and_update_task_group - start");
	if (db_begin(j->db))
		return db_fail(j);
	if (db_exec(j->db, "DELETE FROM taskv2 WHERE taskgroupv2_id = $1", (db_param_t[]){ P_INT(j->tg.id) }, 1, NULL))
		goto dberr;
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
		if (task_insert(j->db, j->tg.id, t, NULL))
			goto dberr;
	if (db_commit(j->db))
		return db_fail(j);
	cj_log(j, LOG_INFO, "create_db_tasks_and_update_task_group - end");
	return 0;
dberr:
	db_fail(j);
	db_rollback(j->db);
	return -1;
}
