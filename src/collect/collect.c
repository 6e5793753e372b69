/* collect.c — see collect.h. One job = one thread = one database
 * connection. A job's steps return 0, or -1 with the reason in job->err
 * (the `str(exception)` upstream's failure handler logs); the failure
 * handler then fails the activity and undoes what the action needs undone.
 *
 * Log lines are Python logging's "%(asctime)s - %(name)s - %(levelname)s -
 * %(message)s" with upstream's logger names (fractal_server.tasks.v2.local.
 * <module>.ID<activity id>); they go to the activity's log (every level)
 * and to the server's stderr (at FRACTAL_LOGGING_LEVEL). */
#include "collect/collect.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "build_config.h"
#include "collect/pyproject.h"
#include "collect/templates.h"
#include "model/pyrepr.h"
#include "model/task.h"
#include "model/validate.h"
#include "util/log.h"
#include "util/pep440.h"
#include "util/proc.h"
#include "util/sb.h"
#include "util/timeutil.h"

#define TASK_GROUP_ID_FILENAME "fractal_task_group_id.txt"
#define SOURCE_DIR_NAME "source_dir"

/* The task group row, as the job read it (malloc'd strings, NULL for null). */
typedef struct tg {
	int64_t id, user_id, user_group_id, resource_id;
	int has_group, active;
	char *origin, *pkg_name, *version, *python_version, *pixi_version, *path, *venv_path, *archive_path,
		*pip_extras, *pinned_pre, *pinned_post, *env_info, *ts_created, *ts_last_used;
} tg_t;

typedef struct job {
	collect_req_t r;             /* copies: resource/profile referenced, file bytes owned */
	char *file_name, *file_data;
	db_t *db;
	char logger[160];
	const char *action;          /* collect, deactivate, ... */
	sb_t log;                    /* the activity's whole log */
	sb_t err;                    /* the reason of a failure */
	tg_t tg;
	char tmpdir[64];
	pid_t child;                 /* the running subprocess, 0 if none (under reg_mu) */
	pthread_t thread;
	struct job *next;
} job_t;

/* ---- the registry of running jobs (server context) ---- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static job_t *running;
static int live; /* job threads not yet past their last step (under reg_mu) */
static int stopping;

static int is_stopping(void)
{
	pthread_mutex_lock(&reg_mu);
	int s = stopping;
	pthread_mutex_unlock(&reg_mu);
	return s;
}

/* ---- logging ---- */

static const char *level_name(int level)
{
	return level >= LOG_CRITICAL ? "CRITICAL" : level >= LOG_ERROR ? "ERROR" : level >= LOG_WARNING ? "WARNING"
	       : level >= LOG_INFO   ? "INFO"
				     : "DEBUG";
}

static void jlog(job_t *j, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void jlog(job_t *j, int level, const char *fmt, ...)
{
	sb_t msg = SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	localtime_r(&tv.tv_sec, &tm);
	char when[40];
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	sb_addf(&j->log, "%s,%03d - %s - %s - %s\n", when, (int)(tv.tv_usec / 1000), j->logger, level_name(level),
		msg.buf);
	log_msg(level, j->logger, "%s", msg.buf);
	sb_release(&msg);
}

static void fail(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(job_t *j, const char *fmt, ...)
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
	fail(j, "Database error: %s", db_errmsg(j->db));
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

static int save_log(job_t *j)
{
	return exec1(j, "UPDATE taskgroupactivityv2 SET log = $1 WHERE id = $2",
		     (db_param_t[]){ P_TEXT(j->log.buf), P_INT(j->r.activity_id) }, 2);
}

static int set_status(job_t *j, const char *status, int ended)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (ended)
		return exec1(j, "UPDATE taskgroupactivityv2 SET status = $1, log = $2, timestamp_ended = $3 WHERE id = $4",
			     (db_param_t[]){ P_TEXT(status), P_TEXT(j->log.buf), P_TS(now), P_INT(j->r.activity_id) }, 4);
	return exec1(j, "UPDATE taskgroupactivityv2 SET status = $1, log = $2 WHERE id = $3",
		     (db_param_t[]){ P_TEXT(status), P_TEXT(j->log.buf), P_INT(j->r.activity_id) }, 3);
}

static int set_active(job_t *j, int active)
{
	j->tg.active = active;
	return exec1(j, "UPDATE taskgroupv2 SET active = $1 WHERE id = $2",
		     (db_param_t[]){ P_BOOL(active), P_INT(j->tg.id) }, 2);
}

static int set_tg_text(job_t *j, const char *column, const char *value)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "UPDATE taskgroupv2 SET %s = $1 WHERE id = $2", column);
	return exec1(j, sql, (db_param_t[]){ P_TEXT(value), P_INT(j->tg.id) }, 2);
}

/* Deletes the task group row and its tasks (upstream's ORM cascade). */
static int delete_tg(job_t *j)
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

static void tg_free(tg_t *t)
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
static int tg_load(job_t *j)
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
	tg_free(t);
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
static void log_tg(job_t *j)
{
	tg_t *t = &j->tg;
	sb_t v = SB_INIT;
#define LINE(key, expr)                                           \
	do {                                                      \
		sb_reset(&v);                                     \
		expr;                                             \
		jlog(j, LOG_DEBUG, "task_group.%s: %s", key, v.buf); \
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

/* ---- files ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

/* shutil.rmtree: 0, or -1 with errno. */
static int rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return -1;
	return nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static void rmtree_nofail(job_t *j, const char *path)
{
	if (!path)
		return;
	jlog(j, LOG_INFO, "Now delete folder %s", path);
	if (rmtree(path))
		jlog(j, LOG_ERROR, "Removing folder failed.\nOriginal error:\n[Errno %d] %s: '%s'", errno,
		     strerror(errno), path);
	else
		jlog(j, LOG_INFO, "Deleted folder %s", path);
}

static int path_exists(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0;
}

static int mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) && errno != EEXIST) {
				free(p);
				return -1;
			}
			*s = '/';
		}
	int rc = mkdir(p, 0755);
	free(p);
	return rc;
}

static int write_file(job_t *j, const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), path);
		if (f)
			fclose(f);
		return -1;
	}
	if (fclose(f)) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), path);
		return -1;
	}
	return 0;
}

/* The whole file (malloc'd), or NULL with errno. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	sb_t s = SB_INIT;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&s, buf, n);
	fclose(f);
	if (len)
		*len = s.len;
	return sb_detach(&s);
}

/* ---- running commands (execute_command_sync) ---- */

/* Runs cmd (validated by validate_cmd, split as shlex does), stdout and
 * stderr captured apart; on success *out gets stdout (malloc'd, may be
 * NULL when not wanted). */
static int run_command(job_t *j, const char *cmd, char **out)
{
	jlog(j, LOG_DEBUG, "START subprocess call to '%s'", cmd);
	sb_t msg = SB_INIT;
	if (task_validate_cmd(cmd, NULL, NULL, &msg)) {
		fail(j, "%s", msg.buf);
		sb_release(&msg);
		return -1;
	}
	sb_release(&msg);
	if (is_stopping()) {
		fail(j, "fractal-server is shutting down: '%s' was not run.", cmd);
		return -1;
	}
	int argc;
	const char *why;
	char **argv = proc_split(cmd, &argc, &why);
	if (!argv) {
		fail(j, "%s", why);
		return -1;
	}
	char out_path[96], err_path[96];
	snprintf(out_path, sizeof(out_path), "%s/stdout", j->tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", j->tmpdir);
	unlink(out_path);
	unlink(err_path);
	int rc;
	pthread_mutex_lock(&reg_mu);
	pid_t pid = stopping ? -1 : proc_start2(argv, NULL, out_path, err_path, &why);
	if (stopping)
		why = "fractal-server is shutting down";
	j->child = pid > 0 ? pid : 0;
	pthread_mutex_unlock(&reg_mu);
	if (pid < 0) {
		rc = PROC_ERROR;
	} else {
		rc = proc_wait(pid);
		pthread_mutex_lock(&reg_mu);
		j->child = 0;
		pthread_mutex_unlock(&reg_mu);
	}
	free(argv);
	if (rc == PROC_ERROR && pid < 0) {
		fail(j, "[Errno %d] %s: '%s'", errno, why, cmd);
		return -1;
	}
	char *so = read_file(out_path, NULL), *se = read_file(err_path, NULL);
	if (!so)
		so = xstrdup("");
	if (!se)
		se = xstrdup("");
	if (rc != 0) {
		jlog(j, LOG_DEBUG, "ERROR in subprocess call to '%s'", cmd);
		fail(j, "Command %s failed.\nreturncode=%d\nSTDOUT:\n%s\nSTDERR:\n%s\n", cmd, rc, so, se);
		if (is_stopping())
			sb_adds(&j->err, "(stopped: fractal-server is shutting down)\n");
		free(so);
		free(se);
		return -1;
	}
	jlog(j, LOG_DEBUG, "returncode=%d", rc);
	jlog(j, LOG_DEBUG, "STDOUT:");
	jlog(j, LOG_DEBUG, "%s", so);
	jlog(j, LOG_DEBUG, "STDERR:");
	jlog(j, LOG_DEBUG, "%s", se);
	jlog(j, LOG_DEBUG, "END   subprocess call to '%s'", cmd);
	free(se);
	if (out)
		*out = so;
	else
		free(so);
	return 0;
}

/* ---- templates ---- */

typedef struct repl {
	const char *key, *value;
} repl_t;

#define MAX_REPL 16

typedef struct script_ctx {
	repl_t rep[MAX_REPL];
	int nrep;
	char prefix[64];
} script_ctx_t;

static void rep_add(script_ctx_t *c, const char *key, const char *value)
{
	if (c->nrep < MAX_REPL)
		c->rep[c->nrep++] = (repl_t){ key, value ? value : "None" };
}

/* _customize_and_run_template: the script written under <path>/scripts/
 * and run as `bash <script>`; *out gets its stdout (may be NULL). */
static int run_template(job_t *j, script_ctx_t *c, const collect_template_t *t, char **out)
{
	jlog(j, LOG_DEBUG, "_customize_and_run_template %s - START", t->name);
	sb_t text = SB_INIT;
	sb_adds(&text, t->text);
	for (int i = 0; i < c->nrep; i++) {
		if (!strcmp(c->rep[i].key, "__FROZEN_OPTION__") && strcmp(c->rep[i].value, "") &&
		    strcmp(c->rep[i].value, "--frozen")) {
			fail(j, "Invalid replacement=('__FROZEN_OPTION__', '%s').", c->rep[i].value);
			sb_release(&text);
			return -1;
		}
		sb_t next = SB_INIT;
		size_t klen = strlen(c->rep[i].key);
		const char *p = text.buf, *hit;
		while ((hit = strstr(p, c->rep[i].key))) {
			sb_add(&next, p, (size_t)(hit - p));
			sb_adds(&next, c->rep[i].value);
			p = hit + klen;
		}
		sb_adds(&next, p);
		sb_release(&text);
		text = next;
	}
	sb_t dir = SB_INIT, script = SB_INIT, cmd = SB_INIT;
	sb_addf(&dir, "%s/scripts", j->tg.path);
	sb_addf(&script, "%s/%s_%s", dir.buf, c->prefix, t->name);
	int rc = -1;
	if (mkdir(dir.buf, 0755) && errno != EEXIST) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), dir.buf);
		goto out;
	}
	if (write_file(j, script.buf, text.buf, text.len))
		goto out;
	sb_addf(&cmd, "bash %s", script.buf);
	jlog(j, LOG_DEBUG, "Now run '%s' ", cmd.buf);
	if (run_command(j, cmd.buf, out))
		goto out;
	jlog(j, LOG_DEBUG, "_customize_and_run_template %s - END", t->name);
	rc = 0;
out:
	sb_release(&text);
	sb_release(&dir);
	sb_release(&script);
	sb_release(&cmd);
	return rc;
}

static void script_prefix(script_ctx_t *c, const char *action)
{
	snprintf(c->prefix, sizeof(c->prefix), "%lld_%s", (long long)time(NULL), action);
}

/* ---- pip ---- */

static json_t *res_get(job_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j->r.resource, a);
	return b ? json_object_get(v, b) : v;
}

/* `"a==1" "b==2"` from a pinned-versions column (malloc'd). */
static char *pinned_string(const char *json)
{
	sb_t o = SB_INIT;
	json_t *v = json ? json_loads(json, 0, NULL) : NULL;
	const char *k;
	json_t *x;
	json_object_foreach(v, k, x) {
		if (o.len)
			sb_addc(&o, ' ');
		sb_addf(&o, "\"%s==%s\"", k, json_string_value(x) ? json_string_value(x) : "");
	}
	json_decref(v);
	return sb_detach(&o);
}

/* Everything the pip scripts need; strings kept in *keep (freed by caller). */
typedef struct pip_strings {
	char *install, *pre, *post, *cache;
} pip_strings_t;

static void pip_strings_free(pip_strings_t *s)
{
	free(s->install);
	free(s->pre);
	free(s->post);
	free(s->cache);
}

/* get_python_interpreter: the resource's interpreter for python_version. */
static const char *python_bin(job_t *j)
{
	json_t *versions = res_get(j, "tasks_python_config", "versions");
	const char *py = json_string_value(json_object_get(versions, j->tg.python_version ? j->tg.python_version : ""));
	if (!py)
		fail(j, "Requested python_version='%s' is not available.", j->tg.python_version ? j->tg.python_version : "None");
	return py;
}

static void pip_replacements(job_t *j, script_ctx_t *c, const char *python, pip_strings_t *s)
{
	tg_t *t = &j->tg;
	sb_t inst = SB_INIT, extras = SB_INIT;
	if (t->pip_extras && *t->pip_extras)
		sb_addf(&extras, "[%s]", t->pip_extras);
	if (t->archive_path)
		sb_addf(&inst, "%s%s", t->archive_path, extras.buf);
	else
		sb_addf(&inst, "%s%s==%s", t->pkg_name, extras.buf, t->version);
	sb_release(&extras);
	s->install = sb_detach(&inst);
	s->pre = pinned_string(t->pinned_pre);
	s->post = pinned_string(t->pinned_post);
	const char *cache = json_string_value(res_get(j, "tasks_python_config", "pip_cache_dir"));
	sb_t ca = SB_INIT;
	if (cache)
		sb_addf(&ca, "--cache-dir %s", cache);
	else
		sb_adds(&ca, "--no-cache-dir");
	s->cache = sb_detach(&ca);
	rep_add(c, "__PACKAGE_NAME__", t->pkg_name);
	rep_add(c, "__PACKAGE_ENV_DIR__", t->venv_path);
	rep_add(c, "__PYTHON__", python);
	rep_add(c, "__INSTALL_STRING__", s->install);
	rep_add(c, "__FRACTAL_PIP_CACHE_DIR_ARG__", s->cache);
	rep_add(c, "__PINNED_PACKAGE_LIST_PRE__", s->pre);
	rep_add(c, "__PINNED_PACKAGE_LIST_POST__", s->post);
	jlog(j, LOG_INFO, "Cache-dir argument for `pip install`: %s", s->cache);
}

/* parse_script_pip_show_stdout / parse_collect_stdout: the text after
 * `label` on the one line that has it, spaces stripped (malloc'd). */
static char *parse_label(job_t *j, const char *stdout_text, const char *label)
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
		fail(j, "String '%s' not found in stdout.", label);
	else
		fail(j, "String '%s' found too many times (%d).", label, count);
	return NULL;
}

/* normalize_package_name (malloc'd). */
static char *normalize_name(const char *name)
{
	sb_t o = SB_INIT;
	for (const char *p = name; *p; p++) {
		if (*p == '-' || *p == '_' || *p == '.') {
			if (!o.len || o.buf[o.len - 1] != '-')
				sb_addc(&o, '-');
			while (p[1] == '-' || p[1] == '_' || p[1] == '.')
				p++;
			continue;
		}
		sb_addc(&o, (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p));
	}
	return sb_detach(&o);
}

/* Reads, validates and turns the manifest into tasks, then inserts them
 * (check_files: their files must exist). */
static int load_manifest_tasks(job_t *j, const char *manifest_path, const char *package_root, const char *python,
			       int check_files, json_t **tasks_out)
{
	jlog(j, LOG_INFO, "now loading manifest_path='%s'", manifest_path);
	size_t len;
	char *text = read_file(manifest_path, &len);
	if (!text) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), manifest_path);
		return -1;
	}
	json_error_t jerr;
	json_t *m = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	free(text);
	if (!m) {
		fail(j, "%s: line %d column %d (char %d)", jerr.text, jerr.line, jerr.column, jerr.position);
		return -1;
	}
	jlog(j, LOG_INFO, "loaded manifest_path='%s'", manifest_path);
	jlog(j, LOG_INFO, "now validating manifest content");
	verr_t e;
	verr_init(&e);
	json_t *loc = json_array();
	json_t *man = manifest_check(m, loc, &e);
	json_decref(loc);
	json_decref(m);
	if (!man) {
		sb_t s = SB_INIT;
		verr_render(e.list, "ManifestV2", &s);
		fail(j, "%s", s.buf);
		sb_release(&s);
		verr_free(&e);
		return -1;
	}
	jlog(j, LOG_INFO, "validated manifest content");
	save_log(j);
	jlog(j, LOG_INFO, "_prepare_tasks_metadata - start");
	json_t *tasks = manifest_tasks(man, package_root, python, j->tg.version, &e);
	json_decref(man);
	if (!tasks) {
		sb_t s = SB_INIT;
		verr_render(e.list, "TaskCreate", &s);
		fail(j, "%s", s.buf);
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
				int ok = path_exists(file);
				if (!ok)
					fail(j, "Task `%s` has `%s` pointing to missing file `%s`.",
					     json_string_value(json_object_get(t, "name")), cmds[k], file);
				free(file);
				if (!ok) {
					json_decref(tasks);
					return -1;
				}
			}
		}
	}
	jlog(j, LOG_INFO, "_prepare_tasks_metadata - end");
	save_log(j);
	*tasks_out = tasks;
	return 0;
}

/* create_db_tasks_and_update_task_group: the group's tasks replaced. */
static int insert_tasks(job_t *j, json_t *tasks)
{
	jlog(j, LOG_INFO, "create_db_tasks_and_update_task_group - start");
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
	jlog(j, LOG_INFO, "create_db_tasks_and_update_task_group - end");
	return 0;
dberr:
	db_fail(j);
	db_rollback(j->db);
	return -1;
}

static int collect_pip(job_t *j)
{
	tg_t *t = &j->tg;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	char *freeze = NULL, *show = NULL, *name = NULL, *py = NULL, *parent = NULL, *manifest = NULL;
	json_t *tasks = NULL;
	int rc = -1;
	if (mkdir_p(t->path)) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), t->path);
		return -1;
	}
	jlog(j, LOG_INFO, "Created %s", t->path);
	sb_t idfile = SB_INIT, idtext = SB_INIT;
	sb_addf(&idfile, "%s/%s", t->path, TASK_GROUP_ID_FILENAME);
	sb_addf(&idtext, "%lld", (long long)t->id);
	jlog(j, LOG_INFO, "Write txt-file contents into %s", idfile.buf);
	int w = write_file(j, idfile.buf, idtext.buf, idtext.len);
	sb_release(&idfile);
	sb_release(&idtext);
	if (w)
		return -1;
	if (j->file_name) {
		sb_t ap = SB_INIT;
		sb_addf(&ap, "%s/%s", t->path, j->file_name);
		jlog(j, LOG_INFO, "Write wheel-file contents into %s", ap.buf);
		if (write_file(j, ap.buf, j->file_data, j->r.file_len) || set_tg_text(j, "archive_path", ap.buf)) {
			sb_release(&ap);
			return -1;
		}
		free(t->archive_path);
		t->archive_path = sb_detach(&ap);
	}
	const char *python = python_bin(j);
	if (!python)
		return -1;
	pip_replacements(j, &c, python, &ps);
	script_prefix(&c, "collect");
	if (set_status(j, "ongoing", 0))
		goto out;
	if (run_template(j, &c, &tpl_create_venv, NULL) || save_log(j))
		goto out;
	if (run_template(j, &c, &tpl_pip_install, NULL) || save_log(j))
		goto out;
	if (run_template(j, &c, &tpl_pip_freeze, &freeze) || save_log(j))
		goto out;
	if (run_template(j, &c, &tpl_pip_show, &show) || save_log(j))
		goto out;
	if (!(py = parse_label(j, show, "Python interpreter:")) || !(name = parse_label(j, show, "Package name:")))
		goto out;
	char *version = parse_label(j, show, "Package version:");
	if (!version)
		goto out;
	if (!(parent = parse_label(j, show, "Package parent folder:"))) {
		free(version);
		goto out;
	}
	if (!(manifest = parse_label(j, show, "Manifest absolute path:"))) {
		free(version);
		goto out;
	}
	jlog(j, LOG_DEBUG, "Parsed from pip-show: python_bin=%s", py);
	jlog(j, LOG_DEBUG, "Parsed from pip-show: package_name=%s", name);
	jlog(j, LOG_DEBUG, "Parsed from pip-show: package_version=%s", version);
	jlog(j, LOG_DEBUG, "Parsed from pip-show: package_root_parent=%s", parent);
	jlog(j, LOG_DEBUG, "Parsed from pip-show: manifest_path=%s", manifest);
	free(version);
	/* compare_package_names */
	if (strcmp(name, t->pkg_name)) {
		jlog(j, LOG_WARNING, "Package name mismatch: pkg_name_task_group='%s', pkg_name_pip_show='%s'.", t->pkg_name,
		     name);
		char *a = normalize_name(name), *b = normalize_name(t->pkg_name);
		int same = !strcmp(a, b);
		free(a);
		free(b);
		if (!same) {
			fail(j, "Package name mismatch persists, after normalization: pkg_name_task_group='%s', "
				"pkg_name_pip_show='%s'.", t->pkg_name, name);
			jlog(j, LOG_ERROR, "%s", j->err.buf);
			goto out;
		}
	}
	sb_t root = SB_INIT;
	sb_addf(&root, "%s/", parent);
	for (const char *p = t->pkg_name; *p; p++)
		sb_addc(&root, *p == '-' ? '_' : *p);
	int lm = load_manifest_tasks(j, manifest, root.buf, py, 1, &tasks);
	sb_release(&root);
	if (lm || insert_tasks(j, tasks))
		goto out;
	jlog(j, LOG_INFO, "Add env_info to TaskGroupV2 - start");
	if (set_tg_text(j, "env_info", freeze))
		goto out;
	jlog(j, LOG_INFO, "Add env_info to TaskGroupV2 - end");
	jlog(j, LOG_INFO, "finalising - START");
	if (set_status(j, "OK", 1))
		goto out;
	jlog(j, LOG_INFO, "finalising - END");
	jlog(j, LOG_INFO, "END");
	rc = 0;
out:
	json_decref(tasks);
	free(freeze);
	free(show);
	free(name);
	free(py);
	free(parent);
	free(manifest);
	pip_strings_free(&ps);
	return rc;
}

static int deactivate_pip(job_t *j)
{
	tg_t *t = &j->tg;
	if (set_status(j, "ongoing", 0))
		return -1;
	if (!t->env_info) {
		jlog(j, LOG_WARNING, "Recreate pip-freeze information, since task_group.env_info=None. NOTE: this should "
				     "only happen for task groups created before 2.9.0.");
		script_ctx_t c = { 0 };
		pip_strings_t ps = { 0 };
		pip_replacements(j, &c, "/not/applicable", &ps);
		script_prefix(&c, "deactivate");
		char *freeze = NULL;
		int rc = run_template(j, &c, &tpl_pip_freeze, &freeze);
		pip_strings_free(&ps);
		if (rc)
			return -1;
		jlog(j, LOG_INFO, "Add pip freeze stdout to TaskGroupV2 - start");
		save_log(j);
		rc = set_tg_text(j, "env_info", freeze);
		t->env_info = freeze;
		if (rc)
			return -1;
		jlog(j, LOG_INFO, "Add pip freeze stdout to TaskGroupV2 - end");
	}
	if (!strcmp(t->origin, "wheel-file")) {
		jlog(j, LOG_INFO, "Handle specific cases for task_group.origin='wheel-file'.");
		if (!t->archive_path || !path_exists(t->archive_path)) {
			fail(j, "Invalid wheel path for task group with task_group_id=%lld. task_group.archive_path=%s%s%s is "
				"unset or does not exist.", (long long)t->id, t->archive_path ? "'" : "",
			     t->archive_path ? t->archive_path : "None", t->archive_path ? "'" : "");
			jlog(j, LOG_ERROR, "%s", j->err.buf);
			return -1;
		}
		const char *slash = strrchr(t->archive_path, '/');
		size_t plen = strlen(t->path);
		while (plen > 1 && t->path[plen - 1] == '/')
			plen--;
		if (!slash || (size_t)(slash - t->archive_path) != plen || strncmp(t->archive_path, t->path, plen)) {
			jlog(j, LOG_WARNING, "%.*s differs from %s. NOTE: this should only happen for task groups created "
					     "before 2.9.0.", slash ? (int)(slash - t->archive_path) : 0, t->archive_path, t->path);
			if (!strstr(t->env_info, t->archive_path)) {
				fail(j, "Cannot find task_group.archive_path='%s' in pip-freeze data. Exit.", t->archive_path);
				return -1;
			}
			jlog(j, LOG_INFO, "Now copy wheel file into %s.", t->path);
			sb_t np = SB_INIT;
			sb_addf(&np, "%.*s/%s", (int)plen, t->path, slash ? slash + 1 : t->archive_path);
			size_t len;
			char *data = read_file(t->archive_path, &len);
			if (!data || write_file(j, np.buf, data, len)) {
				if (!data)
					fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), t->archive_path);
				free(data);
				sb_release(&np);
				return -1;
			}
			free(data);
			jlog(j, LOG_INFO, "Copied wheel file to %s.", np.buf);
			/* upstream first updates archive_path, then replaces the
			 * new path by itself in env_info: env_info stays as is */
			int rc = set_tg_text(j, "archive_path", np.buf);
			free(t->archive_path);
			t->archive_path = sb_detach(&np);
			if (rc)
				return -1;
			jlog(j, LOG_INFO, "Updated `archive_path` and `env_info` task-group attributes.");
		}
	}
	if (strstr(t->env_info, "github.com")) {
		fail(j, "Deactivation and reactivation of task packages with direct github.com dependencies are not "
			"currently supported. Exit.");
		return -1;
	}
	jlog(j, LOG_INFO, "Now setting `active=False`.");
	if (set_active(j, 0))
		return -1;
	jlog(j, LOG_INFO, "Now removing %s.", t->venv_path);
	if (rmtree(t->venv_path)) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), t->venv_path);
		return -1;
	}
	jlog(j, LOG_INFO, "All good, %s removed.", t->venv_path);
	return set_status(j, "OK", 1);
}

static int reactivate_pip(job_t *j)
{
	tg_t *t = &j->tg;
	if (set_status(j, "ongoing", 0))
		return -1;
	const char *python = python_bin(j);
	if (!python)
		return -1;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	pip_replacements(j, &c, python, &ps);
	sb_t freeze = SB_INIT;
	sb_addf(&freeze, "%s/pip_freeze.txt", j->tmpdir);
	rep_add(&c, "__PIP_FREEZE_FILE__", freeze.buf);
	script_prefix(&c, "reactivate");
	int rc = -1;
	if (write_file(j, freeze.buf, t->env_info ? t->env_info : "", t->env_info ? strlen(t->env_info) : 0))
		goto out;
	jlog(j, LOG_DEBUG, "start - create venv");
	if (run_template(j, &c, &tpl_create_venv, NULL))
		goto out;
	jlog(j, LOG_DEBUG, "end - create venv");
	save_log(j);
	jlog(j, LOG_DEBUG, "start - install from pip freeze");
	if (run_template(j, &c, &tpl_pip_install_from_freeze, NULL))
		goto out;
	jlog(j, LOG_DEBUG, "end - install from pip freeze");
	if (set_status(j, "OK", 1) || set_active(j, 1))
		goto out;
	jlog(j, LOG_DEBUG, "END");
	rc = 0;
out:
	sb_release(&freeze);
	pip_strings_free(&ps);
	return rc;
}

static int reset_pip(job_t *j)
{
	const char *python = python_bin(j);
	if (!python)
		return -1;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	pip_replacements(j, &c, python, &ps);
	script_prefix(&c, "reset");
	char *freeze = NULL;
	int rc = -1;
	if (set_status(j, "ongoing", 0))
		goto out;
	if (run_template(j, &c, &tpl_create_venv, NULL) || save_log(j))
		goto out;
	if (run_template(j, &c, &tpl_pip_install, NULL) || save_log(j))
		goto out;
	if (run_template(j, &c, &tpl_pip_freeze, &freeze) || save_log(j))
		goto out;
	jlog(j, LOG_INFO, "Update TaskGroupV2 - start");
	if (set_tg_text(j, "env_info", freeze) || set_active(j, 1))
		goto out;
	jlog(j, LOG_INFO, "Update TaskGroupV2 - end");
	jlog(j, LOG_INFO, "finalising - START");
	if (set_status(j, "OK", 1))
		goto out;
	jlog(j, LOG_INFO, "finalising - END");
	jlog(j, LOG_INFO, "END");
	rc = 0;
out:
	free(freeze);
	pip_strings_free(&ps);
	return rc;
}

/* ---- pixi ---- */

typedef struct pixi_strings {
	char *home, *cache, *import_name, *tokio, *solves, *downloads, *archive;
} pixi_strings_t;

static void pixi_strings_free(pixi_strings_t *s)
{
	free(s->home);
	free(s->cache);
	free(s->import_name);
	free(s->tokio);
	free(s->solves);
	free(s->downloads);
	free(s->archive);
}

static char *json_num_text(json_t *v)
{
	if (json_is_integer(v)) {
		char b[32];
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
		return xstrdup(b);
	}
	return xstrdup(json_string_value(v) ? json_string_value(v) : "None");
}

static int pixi_replacements(job_t *j, script_ctx_t *c, int frozen, pixi_strings_t *s)
{
	tg_t *t = &j->tg;
	json_t *cfg = res_get(j, "tasks_pixi_config", NULL);
	const char *home = json_string_value(json_object_get(json_object_get(cfg, "versions"),
							     t->pixi_version ? t->pixi_version : ""));
	if (!home) {
		fail(j, "'%s'", t->pixi_version ? t->pixi_version : "None");
		return -1;
	}
	s->home = xstrdup(home);
	const char *pcache = json_string_value(json_object_get(j->r.profile, "pixi_cache_dir"));
	sb_t cache = SB_INIT;
	if (pcache && *pcache)
		sb_adds(&cache, pcache);
	else
		sb_addf(&cache, "%s%scache", home, home[0] && home[strlen(home) - 1] == '/' ? "" : "/");
	s->cache = sb_detach(&cache);
	jlog(j, LOG_INFO, "Setting PIXI_CACHE_DIR to %s", s->cache);
	s->import_name = xstrdup(t->pkg_name);
	for (char *p = s->import_name; *p; p++)
		if (*p == '-')
			*p = '_';
	s->tokio = json_num_text(json_object_get(cfg, "TOKIO_WORKER_THREADS"));
	s->solves = json_num_text(json_object_get(cfg, "PIXI_CONCURRENT_SOLVES"));
	s->downloads = json_num_text(json_object_get(cfg, "PIXI_CONCURRENT_DOWNLOADS"));
	rep_add(c, "__PIXI_HOME__", s->home);
	rep_add(c, "__PIXI_CACHE_DIR__", s->cache);
	rep_add(c, "__PACKAGE_DIR__", t->path);
	rep_add(c, "__TAR_GZ_PATH__", t->archive_path);
	rep_add(c, "__IMPORT_PACKAGE_NAME__", s->import_name);
	rep_add(c, "__SOURCE_DIR_NAME__", SOURCE_DIR_NAME);
	rep_add(c, "__FROZEN_OPTION__", frozen ? "--frozen" : "");
	rep_add(c, "__TOKIO_WORKER_THREADS__", s->tokio);
	rep_add(c, "__PIXI_CONCURRENT_SOLVES__", s->solves);
	rep_add(c, "__PIXI_CONCURRENT_DOWNLOADS__", s->downloads);
	return 0;
}

/* edit_pyproject_toml_in_place_local */
static int simplify_pyproject(job_t *j, const char *source_dir)
{
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/pyproject.toml", source_dir);
	size_t len;
	char *text = read_file(p.buf, &len);
	if (!text) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), p.buf);
		sb_release(&p);
		return -1;
	}
	json_t *cfg = res_get(j, "tasks_pixi_config", NULL);
	sb_t out = SB_INIT, why = SB_INIT;
	int rc = pyproject_simplify(text, json_string_value(json_object_get(cfg, "DEFAULT_ENVIRONMENT")),
				    json_string_value(json_object_get(cfg, "DEFAULT_PLATFORM")), &out, &why);
	free(text);
	if (rc) {
		fail(j, "%s", why.buf);
	} else {
		rc = write_file(j, p.buf, out.buf, out.len);
		if (!rc)
			jlog(j, LOG_DEBUG, "Replaced local %s with simplified version.", p.buf);
	}
	sb_release(&out);
	sb_release(&why);
	sb_release(&p);
	return rc;
}

/* Steps 2..: install, post-install, chmod; *wrapper and *root parsed. */
static int pixi_install_steps(job_t *j, script_ctx_t *c, const char *source_dir, char **root, char **wrapper)
{
	char *so = NULL;
	sb_t exe = SB_INIT;
	const char *home = NULL;
	for (int i = 0; i < c->nrep; i++)
		if (!strcmp(c->rep[i].key, "__PIXI_HOME__"))
			home = c->rep[i].value;
	sb_addf(&exe, "%s/bin/pixi", home ? home : "");
	int missing = access(exe.buf, X_OK) != 0;
	if (missing)
		fail(j, "Pixi executable %s not found or not executable (tasks_pixi_config.versions['%s'] is %s).", exe.buf,
		     j->tg.pixi_version ? j->tg.pixi_version : "None", home ? home : "None");
	sb_release(&exe);
	if (missing)
		return -1;
	if (run_template(j, c, &tpl_pixi_install, NULL) || save_log(j))
		return -1;
	if (run_template(j, c, &tpl_pixi_post_install, &so) || save_log(j))
		return -1;
	if (root) {
		*root = parse_label(j, so, "Package folder:");
		*wrapper = *root ? parse_label(j, so, "Project Python wrapper:") : NULL;
		if (!*wrapper) {
			free(*root);
			*root = NULL;
			free(so);
			return -1;
		}
	}
	free(so);
	sb_t cmd = SB_INIT;
	sb_addf(&cmd, "chmod -R 755 %s", source_dir);
	int rc = run_command(j, cmd.buf, NULL);
	sb_release(&cmd);
	return rc;
}

static int read_lockfile(job_t *j, const char *source_dir, char **out)
{
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/pixi.lock", source_dir);
	*out = read_file(p.buf, NULL);
	if (!*out)
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), p.buf);
	sb_release(&p);
	return *out ? 0 : -1;
}

static int collect_pixi(job_t *j)
{
	tg_t *t = &j->tg;
	if (mkdir_p(t->path)) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), t->path);
		return -1;
	}
	jlog(j, LOG_INFO, "Created %s", t->path);
	sb_t idfile = SB_INIT, idtext = SB_INIT, ap = SB_INIT, src = SB_INIT;
	sb_addf(&idfile, "%s/%s", t->path, TASK_GROUP_ID_FILENAME);
	sb_addf(&idtext, "%lld", (long long)t->id);
	sb_addf(&ap, "%s/%s", t->path, j->file_name ? j->file_name : "");
	sb_addf(&src, "%s/%s", t->path, SOURCE_DIR_NAME);
	script_ctx_t c = { 0 };
	pixi_strings_t ps = { 0 };
	char *root = NULL, *wrapper = NULL, *lock = NULL;
	json_t *tasks = NULL;
	int rc = -1;
	jlog(j, LOG_INFO, "Write txt-file contents into %s", idfile.buf);
	if (write_file(j, idfile.buf, idtext.buf, idtext.len))
		goto out;
	jlog(j, LOG_INFO, "Write tar.gz-file contents into %s.", ap.buf);
	if (write_file(j, ap.buf, j->file_data, j->r.file_len) || set_tg_text(j, "archive_path", ap.buf))
		goto out;
	free(t->archive_path);
	t->archive_path = xstrdup(ap.buf);
	jlog(j, LOG_INFO, "use_pixi_lockfile=%s", j->r.use_pixi_lockfile ? "True" : "False");
	if (pixi_replacements(j, &c, j->r.use_pixi_lockfile, &ps))
		goto out;
	script_prefix(&c, "collect");
	if (set_status(j, "ongoing", 0))
		goto out;
	if (run_template(j, &c, &tpl_pixi_extract, NULL) || save_log(j))
		goto out;
	if (simplify_pyproject(j, src.buf))
		goto out;
	if (pixi_install_steps(j, &c, src.buf, &root, &wrapper))
		goto out;
	sb_t manifest = SB_INIT;
	sb_addf(&manifest, "%s/__FRACTAL_MANIFEST__.json", root);
	int lm = load_manifest_tasks(j, manifest.buf, root, wrapper, 1, &tasks);
	sb_release(&manifest);
	if (lm || insert_tasks(j, tasks))
		goto out;
	if (read_lockfile(j, src.buf, &lock) || set_tg_text(j, "env_info", lock))
		goto out;
	if (set_status(j, "OK", 1))
		goto out;
	jlog(j, LOG_INFO, "END");
	rc = 0;
out:
	json_decref(tasks);
	free(root);
	free(wrapper);
	free(lock);
	pixi_strings_free(&ps);
	sb_release(&idfile);
	sb_release(&idtext);
	sb_release(&ap);
	sb_release(&src);
	return rc;
}

static int deactivate_pixi(job_t *j)
{
	sb_t src = SB_INIT;
	sb_addf(&src, "%s/%s", j->tg.path, SOURCE_DIR_NAME);
	int rc = -1;
	if (!path_exists(src.buf)) {
		fail(j, "%s does not exist.", src.buf);
		jlog(j, LOG_ERROR, "%s", j->err.buf);
		goto out;
	}
	if (set_status(j, "ongoing", 0))
		goto out;
	jlog(j, LOG_INFO, "Now setting `active=False`.");
	if (set_active(j, 0))
		goto out;
	jlog(j, LOG_INFO, "Now removing %s.", src.buf);
	if (rmtree(src.buf)) {
		fail(j, "[Errno %d] %s: '%s'", errno, strerror(errno), src.buf);
		goto out;
	}
	jlog(j, LOG_INFO, "All good, %s removed.", src.buf);
	rc = set_status(j, "OK", 1);
out:
	sb_release(&src);
	return rc;
}

/* reactivate (frozen forced) and reset (frozen iff asked) of a pixi group. */
static int reinstall_pixi(job_t *j, int frozen)
{
	sb_t src = SB_INIT;
	sb_addf(&src, "%s/%s", j->tg.path, SOURCE_DIR_NAME);
	script_ctx_t c = { 0 };
	pixi_strings_t ps = { 0 };
	char *lock = NULL;
	int rc = -1;
	if (set_status(j, "ongoing", 0))
		goto out;
	if (pixi_replacements(j, &c, frozen, &ps))
		goto out;
	script_prefix(&c, j->action);
	if (run_template(j, &c, &tpl_pixi_extract, NULL) || save_log(j))
		goto out;
	if (simplify_pyproject(j, src.buf))
		goto out;
	if (j->r.kind == CK_REACTIVATE) {
		sb_t lp = SB_INIT;
		sb_addf(&lp, "%s/pixi.lock", src.buf);
		int w = write_file(j, lp.buf, j->tg.env_info ? j->tg.env_info : "",
				   j->tg.env_info ? strlen(j->tg.env_info) : 0);
		sb_release(&lp);
		if (w)
			goto out;
	}
	if (pixi_install_steps(j, &c, src.buf, NULL, NULL))
		goto out;
	if (j->r.kind == CK_RESET && (read_lockfile(j, src.buf, &lock) || set_tg_text(j, "env_info", lock)))
		goto out;
	if (set_active(j, 1) || set_status(j, "OK", 1))
		goto out;
	jlog(j, LOG_INFO, "END");
	rc = 0;
out:
	free(lock);
	pixi_strings_free(&ps);
	sb_release(&src);
	return rc;
}

/* ---- delete ---- */

static int delete_group(job_t *j)
{
	if (set_status(j, "ongoing", 0))
		return -1;
	if (delete_tg(j))
		return -1;
	jlog(j, LOG_DEBUG, "Task group removed from database.");
	if (strcmp(j->tg.origin, "other")) {
		jlog(j, LOG_DEBUG, "Removing task_group.path='%s'.", j->tg.path ? j->tg.path : "None");
		if (!j->tg.path || rmtree(j->tg.path)) {
			fail(j, "[Errno %d] %s: '%s'", j->tg.path ? errno : EINVAL, strerror(j->tg.path ? errno : EINVAL),
			     j->tg.path ? j->tg.path : "None");
			return -1;
		}
		jlog(j, LOG_DEBUG, "task_group.path='%s' removed.", j->tg.path);
	}
	if (set_status(j, "OK", 1))
		return -1;
	jlog(j, LOG_DEBUG, "END");
	return 0;
}

/* ---- the job ---- */

/* fail_and_cleanup */
static void fail_and_cleanup(job_t *j)
{
	jlog(j, LOG_WARNING, "Task %s failed. Original error: %s", j->action, j->err.buf);
	if (set_status(j, "failed", 1))
		log_error("%s: cannot mark the activity failed: %s", j->logger, j->err.buf);
	int rc = 0;
	if (j->r.kind == CK_COLLECT_PIP || j->r.kind == CK_COLLECT_PIXI)
		rc = delete_tg(j);
	else if (j->r.kind == CK_DEACTIVATE)
		rc = set_active(j, 1);
	else if (j->r.kind == CK_RESET)
		rc = set_active(j, 0);
	if (rc)
		log_error("%s: cleanup after the failure failed: %s", j->logger, j->err.buf);
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
		if (path_exists(t->path)) {
			fail(j, "%s already exists.", t->path);
			jlog(j, LOG_ERROR, "%s", j->err.buf);
			fail_and_cleanup(j);
			return;
		}
		rc = j->r.kind == CK_COLLECT_PIP ? collect_pip(j) : collect_pixi(j);
		if (rc)
			rmtree_nofail(j, t->path);
		break;
	case CK_DEACTIVATE:
		if (!pixi && !path_exists(t->venv_path)) {
			fail(j, "%s does not exist.", t->venv_path ? t->venv_path : "None");
			jlog(j, LOG_ERROR, "%s", j->err.buf);
			break;
		}
		rc = pixi ? deactivate_pixi(j) : deactivate_pip(j);
		break;
	case CK_REACTIVATE:
	case CK_RESET:
		if (j->r.kind == CK_REACTIVATE) {
			sb_t dir = SB_INIT;
			if (pixi)
				sb_addf(&dir, "%s/%s", t->path, SOURCE_DIR_NAME);
			else
				sb_adds(&dir, t->venv_path ? t->venv_path : "");
			int exists = path_exists(dir.buf);
			if (exists) {
				fail(j, "%s already exists.", dir.buf);
				jlog(j, LOG_ERROR, "%s", j->err.buf);
			}
			sb_release(&dir);
			if (exists)
				break;
		}
		rc = pixi ? reinstall_pixi(j, j->r.kind == CK_REACTIVATE ? 1 : j->r.use_pixi_lockfile)
			  : j->r.kind == CK_REACTIVATE ? reactivate_pip(j) : reset_pip(j);
		if (rc) {
			if (pixi) {
				sb_t dir = SB_INIT;
				sb_addf(&dir, "%s/%s", t->path, SOURCE_DIR_NAME);
				rmtree_nofail(j, dir.buf);
				sb_release(&dir);
			} else {
				rmtree_nofail(j, t->venv_path);
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
	if (j->tmpdir[0])
		rmtree(j->tmpdir);
	tg_free(&j->tg);
	sb_release(&j->log);
	sb_release(&j->err);
	json_decref(j->r.resource);
	json_decref(j->r.profile);
	free(j->file_name);
	free(j->file_data);
	free(j);
}

static void *job_thread(void *arg)
{
	job_t *j = arg;
	sb_t err = SB_INIT;
	j->db = db_open(0, &err);
	if (!j->db) {
		log_error("%s: database connection failed: %s", j->logger, err.buf);
	} else {
		snprintf(j->tmpdir, sizeof(j->tmpdir), "/tmp/fractal-collect.XXXXXX");
		if (!mkdtemp(j->tmpdir)) {
			log_error("%s: cannot create a temporary folder: %s", j->logger, strerror(errno));
			j->tmpdir[0] = '\0';
		}
		int found = tg_load(j);
		db_res_t *r = NULL;
		int act = found == 1 && !db_exec(j->db, "SELECT id FROM taskgroupactivityv2 WHERE id = $1",
						 (db_param_t[]){ P_INT(j->r.activity_id) }, 1, &r) && db_nrows(r);
		db_res_free(r);
		if (found == 1 && act) {
			snprintf(j->logger, sizeof(j->logger), "fractal_server.tasks.v2.local.%s.ID%lld", module_name(j),
				 (long long)j->r.activity_id);
			jlog(j, j->r.kind == CK_COLLECT_PIP || j->r.kind == CK_RESET ? LOG_INFO : LOG_DEBUG, "START");
			log_tg(j);
			if (!j->tmpdir[0]) {
				fail(j, "Cannot create a temporary folder: %s", strerror(errno));
				fail_and_cleanup(j);
			} else {
				run_job(j);
			}
		} else {
			log_error("Cannot find database rows with task_group_id=%lld and/or task_group_activity_id=%lld. "
				  "Exit", (long long)j->r.task_group_id, (long long)j->r.activity_id);
		}
		db_close(j->db);
	}
	sb_release(&err);
	pthread_mutex_lock(&reg_mu);
	for (job_t **p = &running; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	job_free(j);
	/*
	 * A detached thread's OpenSSL state (libpq's SCRAM login draws random
	 * bytes, which builds per-thread generators) is only freed by a
	 * thread-exit destructor, which could run after the server has
	 * exited. Free it now, before telling collect_shutdown() we are done.
	 */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&reg_mu);
	live--;
	pthread_cond_broadcast(&reg_cv);
	pthread_mutex_unlock(&reg_mu);
	return NULL;
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
	const char *why = NULL;
	pthread_mutex_lock(&reg_mu);
	if (stopping) {
		why = "fractal-server is shutting down";
	} else {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&j->thread, &attr, job_thread, j))
			why = "cannot start a thread";
		else {
			j->next = running;
			running = j;
			live++;
		}
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&reg_mu);
	if (!why)
		return 0;
	/* the activity must not stay pending */
	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_t log = SB_INIT;
	sb_addf(&log, "Task %s failed. Original error: %s\n", j->action, why);
	db_exec(db, "UPDATE taskgroupactivityv2 SET status = 'failed', log = $1, timestamp_ended = $2 WHERE id = $3",
		(db_param_t[]){ P_TEXT(log.buf), P_TS(now), P_INT(r->activity_id) }, 3, NULL);
	sb_release(&log);
	job_free(j);
	return -1;
}

void collect_shutdown(double seconds)
{
	int64_t deadline = mono_usec() + (int64_t)(seconds * 1e6);
	pthread_mutex_lock(&reg_mu);
	while (live && mono_usec() < deadline) {
		pthread_mutex_unlock(&reg_mu);
		usleep(20000);
		pthread_mutex_lock(&reg_mu);
	}
	stopping = 1;
	int n = 0;
	for (job_t *j = running; j; j = j->next) {
		n++;
		if (j->child > 0)
			proc_kill_group(j->child, SIGTERM);
	}
	if (n)
		log_warning("%d task-group activities still running: stopping them (they will be marked failed)", n);
	/* each stopped job goes through its failure handler, then leaves */
	while (live)
		pthread_cond_wait(&reg_cv, &reg_mu);
	pthread_mutex_unlock(&reg_mu);
}

int collect_fail_leftovers(db_t *db)
{
	db_res_t *r;
	if (db_exec(db, "SELECT a.id, a.action, a.status, a.log, g.id, g.origin, g.path, g.venv_path "
			"FROM taskgroupactivityv2 a LEFT JOIN taskgroupv2 g ON g.id = a.taskgroupv2_id "
			"WHERE a.status IN ('pending', 'ongoing') ORDER BY a.id",
		    NULL, 0, &r))
		return -1;
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
		sb_addf(&log, "Task %s failed: fractal-server stopped while this activity was %s; marked as failed at "
			      "the next start (%s).\n", action, db_text(r, i, 2), now);
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
		if (dir.len && path_exists(dir.buf) && rmtree(dir.buf))
			log_warning("Cannot remove %s: %s", dir.buf, strerror(errno));
		int rc = db_begin(db);
		if (!rc)
			rc = db_exec(db, "UPDATE taskgroupactivityv2 SET status = 'failed', log = $1, timestamp_ended = $2 "
					 "WHERE id = $3",
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
		if (rc) {
			db_res_free(r);
			return -1;
		}
		log_warning("Task-group activity %lld (%s) was left %s by an earlier server: marked failed", (long long)aid,
			    action, db_text(r, i, 2));
	}
	db_res_free(r);
	return n;
}
