/* history.c — what the runner recorded, read back: upstream's
 * routes/api/v2/history.py (/api/v2/project/{p}/status/...: runs, units,
 * images with their status, unit logs), latest_job.py (the latest job of a
 * workflow on a dataset, with each task's status) and
 * pre_submission_checks.py (images a task would skip, types that are not
 * unique).
 *
 * The runner writes three tables: historyrun (one row per workflow task
 * run in a job), historyunit (one per invocation, with its log file) and
 * historyimagecache (per image, dataset and workflow task: the latest unit
 * that touched it). An image's status for a workflow task is the status of
 * that latest unit, or "unset". Logs are read from the unit's log file or,
 * once the job folder has been zipped away, from `<working_dir>.zip`. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/job.h"
#include "api/access.h"
#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "model/images.h"
#include "model/imgcache.h"
#include "model/state.h"
#include "model/task.h"
#include "util/timeutil.h"
#include "util/ziputil.h"

/* upstream's IMAGE_STATUS_KEY: the pseudo-attribute carrying an image's status */
#define STATUS_KEY "__wftask_dataset_image_status__"

/* ---- access ---- */

typedef struct hist_wft {
	int64_t workflow_id;
	const char *task_name;   /* request arena */
	const char *task_type;   /* the task's own type (taskv2.type) */
} hist_wft_t;

/* upstream's _verify_workflow_and_dataset_access */
static int verify_workflow_dataset(http_req_t *req, db_t *db, int64_t pid, int64_t wid, int64_t did, char perm)
{
	project_row_t p;
	if (access_project(req, db, pid, perm, &p))
		return -1;
	static const struct { const char *sql, *missing, *foreign; } checks[] = {
		{ "SELECT project_id FROM workflowv2 WHERE id = $1", "Workflow %lld not found.",
		  "Workflow does not belong to expected project." },
		{ "SELECT project_id FROM datasetv2 WHERE id = $1", "Dataset %lld not found.",
		  "Dataset does not belong to expected project." },
	};
	int64_t ids[2] = { wid, did };
	for (int k = 0; k < 2; k++) {
		db_res_t *r;
		if (db_exec(db, checks[k].sql, (db_param_t[]){ P_INT(ids[k]) }, 1, &r)) {
			api_db_error(req, db);
			return -1;
		}
		int found = db_nrows(r) > 0;
		int64_t owner = found ? db_int(r, 0, 0) : 0;
		db_res_free(r);
		if (!found) {
			http_errorf(req, 404, checks[k].missing, (long long)ids[k]);
			return -1;
		}
		if (owner != pid) {
			http_error(req, 422, checks[k].foreign);
			return -1;
		}
	}
	return 0;
}

/* upstream's get_wftask_check_access: the workflow task, then the project,
 * its workflow and the dataset (read permission) */
static int wftask_check_access(http_req_t *req, db_t *db, int64_t pid, int64_t did, int64_t wftid, hist_wft_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT w.workflow_id, t.name, t.type FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "
			"WHERE w.id = $1", (db_param_t[]){ P_INT(wftid) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "WorkflowTask %lld not found.", (long long)wftid);
		return -1;
	}
	out->workflow_id = db_int(r, 0, 0);
	out->task_name = arena_strdup(&req->arena, db_text(r, 0, 1));
	out->task_type = arena_strdup(&req->arena, db_text(r, 0, 2));
	db_res_free(r);
	return verify_workflow_dataset(req, db, pid, out->workflow_id, did, 'r');
}

/* Path parameter 0 and the named int query parameters, every error in one 422. */
static int path_and_query(http_req_t *req, int64_t *pid, const char *const *names, int64_t *const *outs, int n)
{
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", pid, &e);
	for (int i = 0; i < n; i++)
		v_query_int_e(req, names[i], 1, outs[i], NULL, &e);
	return verr_reply(&e, req) ? -1 : 0;
}

/* ---- image statuses ---- */

/* zarr_url -> [status, has_warnings] of the latest unit of each image of the
 * dataset for the workflow task (upstream's _prepare_query). New reference,
 * or NULL after a 500. */
static json_t *status_map(http_req_t *req, db_t *db, int64_t did, int64_t wftid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT c.zarr_url, u.status, u.has_warnings FROM historyimagecache c "
			"JOIN historyunit u ON u.id = c.latest_history_unit_id "
			"WHERE c.dataset_id = $1 AND c.workflowtask_id = $2",
		    (db_param_t[]){ P_INT(did), P_INT(wftid) }, 2, &r)) {
		api_db_error(req, db);
		return NULL;
	}
	json_t *m = json_object();
	for (int i = 0; i < db_nrows(r); i++)
		json_object_set_new(m, db_text(r, i, 0), json_pack("[s,b]", db_text(r, i, 1), db_bool(r, i, 2)));
	db_res_free(r);
	return m;
}

static const char *image_status(json_t *smap, const char *zarr_url)
{
	json_t *s = json_object_get(smap, zarr_url);
	return s ? json_string_value(json_array_get(s, 0)) : "unset";
}

/* The indices of the images of l that match type_filters and
 * attribute_filters, where the attribute STATUS_KEY (if filtered on) is
 * the image's status in smap. *n gets their number; free() the array. */
static size_t *select_images(const imglist_t *l, json_t *type_filters, json_t *attribute_filters, json_t *smap, size_t *n)
{
	json_t *af = json_copy(attribute_filters);
	json_t *want_status = json_incref(json_object_get(af, STATUS_KEY));
	json_object_del(af, STATUS_KEY);
	imgfilter_t *f = json_object_size(type_filters) || json_object_size(af) ? imgfilter_new(l, type_filters, af) : NULL;
	size_t total = imglist_count(l);
	size_t *sel = xmalloc((total ? total : 1) * sizeof(size_t));
	*n = 0;
	for (size_t i = 0; i < total; i++) {
		if (f && !imgfilter_match(f, l, i))
			continue;
		if (want_status) {
			const char *st = image_status(smap, imglist_zarr_url(l, i));
			int ok = 0;
			size_t k;
			json_t *v;
			json_array_foreach(want_status, k, v) ok |= json_is_string(v) && !strcmp(json_string_value(v), st);
			if (!ok)
				continue;
		}
		sel[(*n)++] = i;
	}
	imgfilter_free(f);
	json_decref(want_status);
	json_decref(af);
	return sel;
}

/* ImageQuery (type_filters, attribute_filters; other keys ignored) at
 * ["body"]; a new object or NULL after adding errors. */
static json_t *image_query_validate(json_t *in, verr_t *e)
{
	if (!json_is_object(in)) {
		v_add_not_object(e, json_pack("[s]", "body"), in);
		return NULL;
	}
	size_t before = json_array_size(e->list);
	json_t *out = json_object();
	static const char *const keys[] = { "type_filters", "attribute_filters" };
	for (int k = 0; k < 2; k++) {
		json_t *v = json_object_get(in, keys[k]);
		json_t *loc = json_pack("[s,s]", "body", keys[k]);
		json_t *ok = !v ? json_object() : k ? attribute_filters_validate(v, loc, e) : type_filters_validate(v, loc, e);
		json_decref(loc);
		if (ok)
			json_object_set_new(out, keys[k], ok);
	}
	if (json_array_size(e->list) != before) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- log files ---- */

/* Python's strict UTF-8 decoding (no surrogates, no overlong forms) */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		unsigned lo = 0x80, hi = 0xBF;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k < len; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return 0;
		i += len;
	}
	return 1;
}

/* Python's text mode reading: UTF-8, universal newlines ("\r\n" and "\r"
 * become "\n"). -1 when the bytes are not UTF-8. */
static int as_text(sb_t *b)
{
	if (!utf8_valid((const unsigned char *)b->buf, b->len))
		return -1;
	size_t w = 0;
	for (size_t r = 0; r < b->len; r++) {
		if (b->buf[r] == '\r') {
			b->buf[w++] = '\n';
			if (r + 1 < b->len && b->buf[r + 1] == '\n')
				r++;
		} else {
			b->buf[w++] = b->buf[r];
		}
	}
	b->len = w;
	b->buf[w] = '\0';
	return 0;
}

/* os.path.normpath for POSIX paths, appended to out */
static void normpath(sb_t *out, const char *p)
{
	int root = p[0] == '/' ? (p[1] == '/' && p[2] != '/' ? 2 : 1) : 0;
	size_t base = out->len;
	for (int i = 0; i < root; i++)
		sb_addc(out, '/');
	size_t start = out->len;
	int depth = 0; /* components we could pop */
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - s);
		if (!n || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.' && (depth > 0 || root)) {
			if (depth > 0) {
				char *slash = out->len > start ? memrchr(out->buf + start, '/', out->len - start) : NULL;
				out->len = slash ? (size_t)(slash - out->buf) : start;
				out->buf[out->len] = '\0';
				depth--;
			}
		} else {
			if (out->len > start)
				sb_addc(out, '/');
			sb_add(out, s, n);
			if (!(n == 2 && s[0] == '.' && s[1] == '.'))
				depth++;
		}
		s = e;
	}
	if (out->len == base)
		sb_addc(out, '.');
}

/* PurePosixPath(path).relative_to(base) into out; -1 when path is not under
 * base (ValueError upstream). */
static int relative_to(const char *path, const char *base, sb_t *out)
{
	int rp = path[0] == '/' ? (path[1] == '/' && path[2] != '/' ? 2 : 1) : 0;
	int rb = base[0] == '/' ? (base[1] == '/' && base[2] != '/' ? 2 : 1) : 0;
	if (rp != rb)
		return -1;
	const char *p = path, *b = base;
	for (;;) {
		/* next component of base, skipping empty and "." ones */
		while (*b == '/' || (b[0] == '.' && (b[1] == '/' || !b[1])))
			b++;
		while (*p == '/' || (p[0] == '.' && (p[1] == '/' || !p[1])))
			p++;
		if (!*b)
			break;
		size_t nb = strcspn(b, "/"), np = strcspn(p, "/");
		if (nb != np || memcmp(b, p, nb))
			return -1;
		b += nb;
		p += np;
	}
	size_t start = out->len;
	while (*p) {
		while (*p == '/' || (p[0] == '.' && (p[1] == '/' || !p[1])))
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (out->len > start)
			sb_addc(out, '/');
		sb_add(out, p, n);
		p += n;
	}
	if (out->len == start)
		sb_addc(out, '.');
	return 0;
}

/* upstream's read_log_file: the log file if it exists, else its member of
 * `<working_dir>.zip` if that exists, else a placeholder; any error gives
 * the error text. Appends the log as a JSON string to o. */
static void log_json(sb_t *o, const char *logfile, const char *working_dir, const char *job_status, const char *task_name,
		     int64_t dataset_id)
{
	sb_t archive = SB_INIT, text = SB_INIT, rel = SB_INIT, err = SB_INIT;
	normpath(&archive, working_dir);
	sb_adds(&archive, ".zip");
	struct stat st;
	int ok = 0;
	if (!stat(logfile[0] ? logfile : ".", &st)) {
		ok = !sb_read_file(logfile, &text) && !as_text(&text);
		if (!ok)
			log_warning("Error while retrieving logs for logfile='%s' and archive_path='%s'.", logfile, archive.buf);
	} else if (!stat(archive.buf, &st)) {
		ok = !relative_to(logfile, working_dir, &rel) && !zip_read_member(archive.buf, rel.buf, &text, &err) &&
		     !as_text(&text);
		if (!ok)
			log_warning("Error while retrieving logs for logfile='%s' and archive_path='%s'. %s", logfile, archive.buf,
				 err.buf);
	} else {
		if (sm_parse(&job_sm, job_status) != JOB_SUBMITTED)
			log_warning("Error while retrieving logs for logfile='%s' and archive_path='%s'.", logfile, archive.buf);
		sb_reset(&text);
		sb_addf(&text, "Logs for task '%s' in dataset %lld are not available.", task_name, (long long)dataset_id);
		ok = 1;
	}
	if (!ok) {
		sb_reset(&text);
		sb_addf(&text, "Error while retrieving logs for task '%s' in dataset %lld.", task_name, (long long)dataset_id);
	}
	sb_add_json_strn(o, text.buf, text.len);
	sb_release(&archive);
	sb_release(&text);
	sb_release(&rel);
	sb_release(&err);
}

/* Answers a unit's log (a JSON string) given the unit's logfile and its
 * run id; the job comes from the run. */
static void reply_log(http_req_t *req, db_t *db, const char *logfile, int64_t run_id, const char *task_name, int64_t did)
{
	db_res_t *r;
	if (db_exec(db, "SELECT j.working_dir, j.status FROM jobv2 j JOIN historyrun h ON h.job_id = j.id WHERE h.id = $1",
		    (db_param_t[]){ P_INT(run_id) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (db_nrows(r) != 1 || db_isnull(r, 0, 0)) {
		/* upstream fails (NoResultFound, or normpath(None)) with a 500 */
		db_res_free(r);
		http_error_500(req, "no job working_dir for history run %lld", (long long)run_id);
		return;
	}
	sb_t o = SB_INIT;
	log_json(&o, logfile, db_text(r, 0, 0), db_text(r, 0, 1), task_name, did);
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* ---- /status/ routes ---- */

void api_history_run_list(http_req_t *req)
{
	int64_t pid, did, wftid;
	if (path_and_query(req, &pid, (const char *const[]){ "dataset_id", "workflowtask_id" }, (int64_t *const[]){ &did, &wftid }, 2))
		return;
	db_t *db = req->db;
	hist_wft_t w;
	if (wftask_check_access(req, db, pid, did, wftid, &w))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT h.id, h.timestamp_started, h.workflowtask_dump, "
			"(SELECT count(*) FROM historyunit u WHERE u.history_run_id = h.id AND u.status = " SQ(S_SUBMITTED) "), "
			"(SELECT count(*) FROM historyunit u WHERE u.history_run_id = h.id AND u.status = " SQ(S_DONE) "), "
			"(SELECT count(*) FROM historyunit u WHERE u.history_run_id = h.id AND u.status = " SQ(S_FAILED) "), "
			"(SELECT count(*) FROM historyunit u WHERE u.history_run_id = h.id AND u.has_warnings = $3), "
			"t.args_schema_parallel, t.args_schema_non_parallel, t.version "
			"FROM historyrun h LEFT JOIN taskv2 t ON t.id = h.task_id "
			"WHERE h.dataset_id = $1 AND h.workflowtask_id = $2 ORDER BY h.timestamp_started, h.id",
		    (db_param_t[]){ P_INT(did), P_INT(wftid), P_BOOL(1) }, 3, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		sb_addf(&o, "%s{\"id\":%lld,\"timestamp_started\":", i ? "," : "", (long long)db_int(r, i, 0));
		sb_add_json_ts(&o, db_text(r, i, 1));
		sb_adds(&o, ",\"workflowtask_dump\":");
		sb_adds(&o, db_text(r, i, 2));
		sb_addf(&o, ",\"num_submitted_units\":%lld,\"num_done_units\":%lld,\"num_failed_units\":%lld,"
			    "\"num_units_with_warnings\":%lld",
			(long long)db_int(r, i, 3), (long long)db_int(r, i, 4), (long long)db_int(r, i, 5),
			(long long)db_int(r, i, 6));
		sb_adds(&o, ",\"args_schema_parallel\":");
		sb_adds(&o, db_text(r, i, 7) ? db_text(r, i, 7) : "null");
		sb_adds(&o, ",\"args_schema_non_parallel\":");
		sb_adds(&o, db_text(r, i, 8) ? db_text(r, i, 8) : "null");
		sb_adds(&o, ",\"version\":");
		if (db_text(r, i, 9))
			sb_add_json_str(&o, db_text(r, i, 9));
		else
			sb_adds(&o, "null");
		sb_addc(&o, '}');
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* The run (404 "HistoryRun <id> not found"), which must belong to the
 * dataset and workflow task (422). */
static int run_check(http_req_t *req, db_t *db, int64_t run_id, int64_t did, int64_t wftid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT dataset_id, workflowtask_id FROM historyrun WHERE id = $1", (db_param_t[]){ P_INT(run_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "HistoryRun %lld not found", (long long)run_id);
		return -1;
	}
	int related = db_int(r, 0, 0) == did && !db_isnull(r, 0, 1) && db_int(r, 0, 1) == wftid;
	db_res_free(r);
	if (!related) {
		http_errorf(req, 422, "Invalid query parameters: HistoryRun[%lld] is not related to dataset_id=%lld and "
				      "workflowtask_id=%lld.", (long long)run_id, (long long)did, (long long)wftid);
		return -1;
	}
	return 0;
}

void api_history_run_units(http_req_t *req)
{
	int64_t page, page_size;
	if (v_pagination(req, &page, &page_size))
		return;
	int64_t pid, run_id, did = 0, wftid = 0;
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", &pid, &e);
	v_path_int_e(req, 1, "history_run_id", &run_id, &e);
	v_query_int_e(req, "dataset_id", 1, &did, NULL, &e);
	v_query_int_e(req, "workflowtask_id", 1, &wftid, NULL, &e);
	const char *unit_status = http_query(req, "unit_status");
	if (unit_status && sm_parse(&hist_sm, unit_status) < 0) {
		json_t *in = json_string(unit_status);
		sb_t msg = SB_INIT;
		sb_addf(&msg, "Input should be %s", hist_sm.expected);
		verr_add(&e, "enum", json_pack("[s,s]", "query", "unit_status"), msg.buf, in,
			 json_pack("{s:s}", "expected", hist_sm.expected));
		sb_release(&msg);
		json_decref(in);
	}
	if (verr_reply(&e, req))
		return;
	/* upstream's `if unit_status:`: an empty value would not filter, but it
	 * is not a valid status either, so it never gets here */
	db_t *db = req->db;
	hist_wft_t w;
	if (wftask_check_access(req, db, pid, did, wftid, &w) || run_check(req, db, run_id, did, wftid))
		return;
	qb_t q;
	qb_init(&q);
	qb_add(&q, "history_run_id = ?", P_INT(run_id));
	if (unit_status)
		qb_add(&q, "status = ?", P_TEXT(unit_status));
	sb_t o = SB_INIT;
	db_res_t *r = NULL;
	if (qb_paginate(req, db, &q, "id, logfile, has_warnings, status, zarr_urls", "historyunit", "id", page, page_size, &o, &r)) {
		qb_release(&q);
		sb_release(&o);
		return;
	}
	for (int i = 0; i < db_nrows(r); i++) {
		sb_addf(&o, "%s{\"id\":%lld,\"logfile\":", i ? "," : "", (long long)db_int(r, i, 0));
		if (db_text(r, i, 1))
			sb_add_json_str(&o, db_text(r, i, 1));
		else
			sb_adds(&o, "null");
		sb_addf(&o, ",\"has_warnings\":%s,\"status\":", JBOOL(db_bool(r, i, 2)));
		sb_add_json_str(&o, db_text(r, i, 3));
		sb_adds(&o, ",\"zarr_urls\":");
		sb_adds(&o, db_text(r, i, 4) ? db_text(r, i, 4) : "[]");
		sb_addc(&o, '}');
	}
	sb_adds(&o, "]}");
	db_res_free(r);
	qb_release(&q);
	http_json_sb(req, 200, &o);
}

/* Appends the dataset-wide attributes with the status pseudo-attribute's
 * values added at the end (replacing an image attribute of that name). */
static void attributes_with_status(sb_t *o, const char *attrs)
{
	static const char *const values[] = { S_DONE, S_SUBMITTED, S_FAILED, "unset" };
	if (strstr(attrs, "\"" STATUS_KEY "\"")) {
		json_t *a = json_loads(attrs, 0, NULL);
		json_object_set_new(a, STATUS_KEY, json_pack("[s,s,s,s]", values[0], values[1], values[2], values[3]));
		char *s = json_dump_py(a);
		sb_adds(o, s);
		free(s);
		json_decref(a);
		return;
	}
	size_t n = strlen(attrs);
	sb_add(o, attrs, n - 1); /* without the closing brace */
	if (n > 2)
		sb_addc(o, ',');
	sb_adds(o, "\"" STATUS_KEY "\":[\"" S_DONE "\",\"" S_SUBMITTED "\",\"" S_FAILED "\",\"unset\"]}");
}

static int by_zarr_url(const void *a, const void *b, void *list)
{
	const imglist_t *l = list;
	return strcmp(imglist_zarr_url(l, *(const size_t *)a), imglist_zarr_url(l, *(const size_t *)b));
}

void api_history_images(http_req_t *req)
{
	int64_t page, page_size;
	if (v_pagination(req, &page, &page_size))
		return;
	int64_t pid, did = 0, wftid = 0;
	int include_warnings = 0;
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", &pid, &e);
	v_query_int_e(req, "dataset_id", 1, &did, NULL, &e);
	v_query_int_e(req, "workflowtask_id", 1, &wftid, NULL, &e);
	v_query_bool_e(req, "include_warnings", &include_warnings, &e);
	json_t *body = v_parse_body(req, &e);
	json_t *q = body ? image_query_validate(body, &e) : NULL;
	json_decref(body);
	if (verr_reply(&e, req)) {
		json_decref(q);
		return;
	}
	db_t *db = req->db;
	hist_wft_t w;
	imglist_t *l = NULL;
	json_t *smap = NULL;
	size_t *sel = NULL;
	if (wftask_check_access(req, db, pid, did, wftid, &w) ||
	    verify_workflow_dataset(req, db, pid, w.workflow_id, did, 'r'))
		goto out;
	if (!(l = imglist_get(db, did))) {
		api_db_error(req, db);
		goto out;
	}
	if (!(smap = status_map(req, db, did, wftid)))
		goto out;
	size_t total;
	sel = select_images(l, json_object_get(q, "type_filters"), json_object_get(q, "attribute_filters"), smap, &total);
	/* sorted by zarr_url (a stable sort is not needed: zarr_urls are unique) */
	qsort_r(sel, total, sizeof(size_t), by_zarr_url, l);
	int64_t size = page_size ? page_size : (int64_t)total;
	size_t from = (size_t)v_page_offset(page, size), to = from + (size_t)size;
	if (from > total)
		from = total;
	if (to > total)
		to = total;
	sb_t o = SB_INIT;
	sb_addf(&o, "{\"current_page\":%lld,\"page_size\":%lld,\"total_count\":%zu,\"items\":[", (long long)page,
		(long long)size, total);
	for (size_t k = from; k < to; k++) {
		size_t len;
		const char *js = imglist_json(l, sel[k], &len);
		json_t *img = json_loadb(js, len, 0, NULL);
		const char *zu = imglist_zarr_url(l, sel[k]);
		json_object_set_new(json_object_get(img, "attributes"), STATUS_KEY, json_string(image_status(smap, zu)));
		if (k > from)
			sb_addc(&o, ',');
		size_t at = o.len;
		image_dump(&o, img);
		json_decref(img);
		if (o.len > at && o.buf[o.len - 1] == '}')
			o.len--;
		json_t *s = json_object_get(smap, zu);
		sb_addf(&o, ",\"has_warnings\":%s}", !include_warnings ? "null" : JBOOL(s && json_is_true(json_array_get(s, 1))));
	}
	sb_adds(&o, "],\"attributes\":");
	attributes_with_status(&o, imglist_attributes(l));
	sb_adds(&o, ",\"types\":");
	sb_adds(&o, imglist_types(l));
	sb_addc(&o, '}');
	http_json_sb(req, 200, &o);
out:
	free(sel);
	json_decref(smap);
	imglist_release(l);
	json_decref(q);
}

void api_history_image_log(http_req_t *req)
{
	verr_t e;
	verr_init(&e);
	int64_t pid;
	v_path_int_e(req, 0, "project_id", &pid, &e);
	const vfield_t fields[] = {
		{ .name = "workflowtask_id", .type = V_INT, .required = 1 },
		{ .name = "dataset_id", .type = V_INT, .required = 1 },
		{ .name = "zarr_url", .type = V_STR, .required = 1 },
	};
	json_t *b = v_body_e(req, fields, 3, 0, &e);
	if (verr_reply(&e, req)) {
		json_decref(b);
		return;
	}
	int64_t wftid = json_integer_value(json_object_get(b, "workflowtask_id"));
	int64_t did = json_integer_value(json_object_get(b, "dataset_id"));
	const char *zu = json_string_value(json_object_get(b, "zarr_url"));
	db_t *db = req->db;
	hist_wft_t w;
	db_res_t *r = NULL;
	if (wftask_check_access(req, db, pid, did, wftid, &w))
		goto out;
	if (db_exec(db, "SELECT latest_history_unit_id FROM historyimagecache WHERE zarr_url = $1 AND dataset_id = $2 "
			"AND workflowtask_id = $3", (db_param_t[]){ P_TEXT(zu), P_INT(did), P_INT(wftid) }, 3, &r)) {
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_error(req, 404, "HistoryImageCache not found");
		goto out;
	}
	int64_t uid = db_int(r, 0, 0);
	db_res_free(r);
	if (db_exec(db, "SELECT logfile, history_run_id FROM historyunit WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &r)) {
		r = NULL;
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_errorf(req, 404, "HistoryUnit %lld not found", (long long)uid);
		goto out;
	}
	reply_log(req, db, db_text(r, 0, 0), db_int(r, 0, 1), w.task_name, did);
out:
	db_res_free(r);
	json_decref(b);
}

void api_history_unit_log(http_req_t *req)
{
	int64_t pid, run_id, uid, wftid, did;
	if (path_and_query(req, &pid, (const char *const[]){ "history_run_id", "history_unit_id", "workflowtask_id", "dataset_id" },
			   (int64_t *const[]){ &run_id, &uid, &wftid, &did }, 4))
		return;
	db_t *db = req->db;
	hist_wft_t w;
	if (wftask_check_access(req, db, pid, did, wftid, &w))
		return;
	db_res_t *r;
	if (db_exec(db, "SELECT logfile, history_run_id FROM historyunit WHERE id = $1", (db_param_t[]){ P_INT(uid) }, 1, &r)) {
		api_db_error(req, db);
		return;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "HistoryUnit %lld not found", (long long)uid);
		return;
	}
	if (db_int(r, 0, 1) != run_id) {
		db_res_free(r);
		http_errorf(req, 422, "Invalid query parameters: HistoryUnit[%lld] is not related to HistoryRun[%lld]",
			    (long long)uid, (long long)run_id);
		return;
	}
	if (!run_check(req, db, run_id, did, wftid))
		reply_log(req, db, db_text(r, 0, 0), run_id, w.task_name, did);
	db_res_free(r);
}

/* ---- pre-submission checks ---- */

/* dict[str, bool] (no key checks, unlike TypeFilters) at loc; NULL after
 * adding errors */
static json_t *plain_bool_dict(json_t *in, json_t *loc, verr_t *e)
{
	if (!json_is_object(in)) {
		verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", in, NULL);
		return NULL;
	}
	vfield_t f = { .name = "", .type = V_BOOL };
	json_t *out = json_object();
	const char *k;
	json_t *v;
	int ok = 1;
	json_object_foreach(in, k, v) {
		json_t *kl = json_copy(loc);
		json_array_append_new(kl, json_string(k));
		json_t *b = v_value(&f, v, kl, e);
		json_decref(kl);
		if (b)
			json_object_set_new(out, k, b);
		else
			ok = 0;
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void api_images_non_processed(http_req_t *req)
{
	int64_t pid, did, wid = 0, wftid = 0;
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", &pid, &e);
	v_path_int_e(req, 1, "dataset_id", &did, &e);
	v_query_int_e(req, "workflow_id", 1, &wid, NULL, &e);
	v_query_int_e(req, "workflowtask_id", 1, &wftid, NULL, &e);
	json_t *body = v_parse_body(req, &e), *tf = NULL, *af = NULL;
	if (body && !json_is_object(body)) {
		v_add_not_object(&e, json_pack("[s]", "body"), body);
	} else if (body) {
		json_t *v = json_object_get(body, "attribute_filters");
		json_t *loc = json_pack("[s,s]", "body", "attribute_filters");
		af = v ? attribute_filters_validate(v, loc, &e) : json_object();
		json_decref(loc);
		v = json_object_get(body, "type_filters");
		loc = json_pack("[s,s]", "body", "type_filters");
		tf = v ? plain_bool_dict(v, loc, &e) : json_object();
		json_decref(loc);
	}
	json_decref(body);
	db_t *db = NULL;
	db_res_t *r = NULL;
	imglist_t *l = NULL;
	json_t *smap = NULL;
	size_t *sel = NULL;
	if (verr_reply(&e, req))
		goto out;
	db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		goto out;
	if (db_exec(db, "SELECT \"order\" FROM workflowtaskv2 WHERE id = $1 AND workflow_id = $2",
		    (db_param_t[]){ P_INT(wftid), P_INT(wid) }, 2, &r)) {
		r = NULL;
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_error(req, 404, "WorkflowTask not found");
		goto out;
	}
	int64_t order = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	if (order == 0) {
		http_json(req, 200, "[]");
		goto out;
	}
	/* the previous workflow task in the list (task_list[order - 1]) */
	if (db_exec(db, "SELECT w.id, t.output_types, t.type FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "
			"WHERE w.workflow_id = $1 ORDER BY w.\"order\" LIMIT 1 OFFSET $2",
		    (db_param_t[]){ P_INT(wid), P_INT(order - 1) }, 2, &r)) {
		r = NULL;
		api_db_error(req, db);
		goto out;
	}
	if (!db_nrows(r)) {
		http_error_500(req, "workflow %lld has no task at position %lld", (long long)wid, (long long)(order - 1));
		goto out;
	}
	int64_t prev = db_int(r, 0, 0);
	json_t *ot = json_loads(db_text(r, 0, 1) ? db_text(r, 0, 1) : "{}", 0, NULL);
	int skip = json_object_size(ot) > 0 || !strcmp(db_text(r, 0, 2), "converter_compound") ||
		   !strcmp(db_text(r, 0, 2), "converter_non_parallel");
	json_decref(ot);
	if (skip) {
		http_json(req, 200, "[]");
		goto out;
	}
	dataset_row_t d;
	if (access_dataset(req, db, pid, did, 'r', &p, &d))
		goto out;
	if (!(l = imglist_get(db, did))) {
		api_db_error(req, db);
		goto out;
	}
	if (!(smap = status_map(req, db, did, prev)))
		goto out;
	size_t n;
	sel = select_images(l, tf, af, smap, &n);
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	int first = 1;
	for (size_t k = 0; k < n; k++) {
		const char *zu = imglist_zarr_url(l, sel[k]);
		if (sm_parse(&hist_sm, image_status(smap, zu)) == HIST_DONE)
			continue;
		if (!first)
			sb_addc(&o, ',');
		first = 0;
		sb_add_json_str(&o, zu);
	}
	sb_addc(&o, ']');
	http_json_sb(req, 200, &o);
out:
	free(sel);
	json_decref(smap);
	imglist_release(l);
	db_res_free(r);
	json_decref(tf);
	json_decref(af);
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void api_images_verify_unique_types(http_req_t *req)
{
	int64_t pid, did, wftid = 0;
	verr_t e;
	verr_init(&e);
	v_path_int_e(req, 0, "project_id", &pid, &e);
	v_path_int_e(req, 1, "dataset_id", &did, &e);
	v_query_int_e(req, "workflowtask_id", 1, &wftid, NULL, &e);
	/* ImageQuery | None: no body, or null, means every image */
	json_t *body = req->body.len ? v_parse_body(req, &e) : NULL;
	json_t *q = body && !json_is_null(body) ? image_query_validate(body, &e) : NULL;
	json_decref(body);
	if (verr_reply(&e, req)) {
		json_decref(q);
		return;
	}
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	imglist_t *l = NULL;
	json_t *smap = NULL;
	size_t *sel = NULL;
	const char **keys = NULL;
	if (access_dataset(req, db, pid, did, 'r', &p, &d))
		goto out;
	if (!(l = imglist_get(db, did))) {
		api_db_error(req, db);
		goto out;
	}
	json_t *af = json_object_get(q, "attribute_filters");
	if (json_object_get(af, STATUS_KEY) && !(smap = status_map(req, db, did, wftid)))
		goto out;
	size_t n;
	sel = select_images(l, json_object_get(q, "type_filters"), af, smap, &n);
	size_t nk = imglist_type_count(l), nbad = 0;
	keys = xcalloc(nk + 1, sizeof(char *));
	for (size_t k = 0; k < nk; k++) {
		/* a type is not unique when some images have it true and others
		 * false or unset (unset counts as false) */
		int seen_true = 0, seen_false = 0;
		for (size_t i = 0; i < n && !(seen_true && seen_false); i++) {
			int v = imglist_image_type(l, sel[i], k);
			if (v == 1)
				seen_true = 1;
			else
				seen_false = 1;
		}
		if (seen_true && seen_false)
			keys[nbad++] = imglist_type_key(l, k);
	}
	qsort(keys, nbad, sizeof(char *), by_string);
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (size_t k = 0; k < nbad; k++) {
		if (k)
			sb_addc(&o, ',');
		sb_add_json_str(&o, keys[k]);
	}
	sb_addc(&o, ']');
	http_json_sb(req, 200, &o);
out:
	free(keys);
	free(sel);
	json_decref(smap);
	imglist_release(l);
	json_decref(q);
}

/* ---- latest job ---- */

/* One workflow task's entry of task_statuses (upstream's get_latest_job
 * loop); -1 after a 500. */
static int task_status_json(http_req_t *req, db_t *db, sb_t *o, int64_t did, int64_t wftid, const char *task_type,
			    int running, int64_t running_job_id)
{
	db_res_t *r;
	if (db_exec(db, "SELECT job_id, status, num_available_images FROM historyrun WHERE dataset_id = $1 AND "
			"workflowtask_id = $2 ORDER BY timestamp_started DESC, id DESC LIMIT 1",
		    (db_param_t[]){ P_INT(did), P_INT(wftid) }, 2, &r))
		goto dberr;
	if (!db_nrows(r)) {
		db_res_free(r);
		sb_adds(o, running ? "{\"status\":\"" S_SUBMITTED "\"}" : "null");
		return 0;
	}
	const char *status = running && db_int(r, 0, 0) != running_job_id ? S_SUBMITTED : db_text(r, 0, 1);
	sb_t st = SB_INIT;
	sb_add_json_str(&st, status);
	int64_t available = db_int(r, 0, 2);
	db_res_free(r);
	if (db_exec(db, "SELECT u.status, count(c.zarr_url) FROM historyimagecache c "
			"JOIN historyunit u ON c.latest_history_unit_id = u.id "
			"WHERE c.dataset_id = $1 AND c.workflowtask_id = $2 GROUP BY u.status",
		    (db_param_t[]){ P_INT(did), P_INT(wftid) }, 2, &r)) {
		sb_release(&st);
		goto dberr;
	}
	int64_t counts[HIST_NSTATES] = { 0 };
	for (int i = 0; i < db_nrows(r); i++) {
		int k = sm_parse(&hist_sm, db_text(r, i, 0));
		if (k >= 0)
			counts[k] = db_int(r, i, 1);
	}
	db_res_free(r);
	/* compound tasks: a warning in any unit of any run; others: in the
	 * latest unit of an image */
	int compound = !strcmp(task_type, "compound") || !strcmp(task_type, "converter_compound");
	const char *sql = compound ? "SELECT 1 FROM historyunit u JOIN historyrun h ON h.id = u.history_run_id "
				     "WHERE u.has_warnings = $3 AND h.dataset_id = $1 AND h.workflowtask_id = $2 LIMIT 1"
				   : "SELECT 1 FROM historyimagecache c JOIN historyunit u ON c.latest_history_unit_id = u.id "
				     "WHERE c.dataset_id = $1 AND c.workflowtask_id = $2 AND u.has_warnings = $3 LIMIT 1";
	if (db_exec(db, sql, (db_param_t[]){ P_INT(did), P_INT(wftid), P_BOOL(1) }, 3, &r)) {
		sb_release(&st);
		goto dberr;
	}
	int warnings = db_nrows(r) > 0;
	db_res_free(r);
	sb_addf(o, "{\"status\":%s,\"num_submitted_images\":%lld,\"num_done_images\":%lld,\"num_failed_images\":%lld,"
		   "\"num_available_images\":", st.buf, (long long)counts[HIST_SUBMITTED], (long long)counts[HIST_DONE],
		(long long)counts[HIST_FAILED]);
	if (counts[HIST_SUBMITTED] + counts[HIST_DONE] + counts[HIST_FAILED] > available)
		sb_adds(o, "null");
	else
		sb_addf(o, "%lld", (long long)available);
	sb_addf(o, ",\"has_warnings\":%s}", JBOOL(warnings));
	sb_release(&st);
	return 0;
dberr:
	api_db_error(req, db);
	return -1;
}

void api_latest_job(http_req_t *req)
{
	int64_t pid, wid, did;
	if (path_and_query(req, &pid, (const char *const[]){ "workflow_id", "dataset_id" }, (int64_t *const[]){ &wid, &did }, 2))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	dataset_row_t d;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w) || access_dataset(req, db, pid, did, 'r', &p, &d))
		return;
	db_res_t *job = NULL, *run = NULL, *wft = NULL;
	sb_t o = SB_INIT;
	if (db_exec(db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.project_id = $1 AND j.workflow_id = $2 AND j.dataset_id = $3 "
			"ORDER BY j.start_timestamp DESC, j.id DESC LIMIT 1",
		    (db_param_t[]){ P_INT(pid), P_INT(wid), P_INT(did) }, 3, &job))
		goto dberr;
	if (!db_nrows(job)) {
		http_errorf(req, 404, "Job with workflow_id=%lld and dataset_id=%lld not found.", (long long)wid, (long long)did);
		goto out;
	}
	if (db_exec(db, "SELECT id, first_task_index, last_task_index FROM jobv2 WHERE status = " SQ(S_SUBMITTED) " AND "
			"dataset_id = $1 AND workflow_id = $2", (db_param_t[]){ P_INT(did), P_INT(wid) }, 2, &run))
		goto dberr;
	if (db_nrows(run) > 1) {
		/* one_or_none() raises upstream; the unique index prevents it */
		http_error_500(req, "more than one submitted job for workflow %lld and dataset %lld", (long long)wid, (long long)did);
		goto out;
	}
	int has_running = db_nrows(run) == 1;
	int64_t running_id = has_running ? db_int(run, 0, 0) : 0;
	int64_t first = has_running ? db_int(run, 0, 1) : 0, last = has_running ? db_int(run, 0, 2) : -1;
	if (db_exec(db, "SELECT w.id, t.type FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "
			"WHERE w.workflow_id = $1 ORDER BY w.\"order\", w.id", (db_param_t[]){ P_INT(wid) }, 1, &wft))
		goto dberr;
	job_json(&o, job, 0, 1, NULL);
	o.len--;   /* reopen the object: JobWithTaskStatuses extends JobRead */
	sb_adds(&o, ",\"task_statuses\":{");
	for (int i = 0; i < db_nrows(wft); i++) {
		int64_t id = db_int(wft, i, 0);
		sb_addf(&o, "%s\"%lld\":", i ? "," : "", (long long)id);
		if (task_status_json(req, db, &o, did, id, db_text(wft, i, 1), has_running && i >= first && i <= last,
				     running_id))
			goto out;
	}
	sb_adds(&o, "}}");
	http_json_sb(req, 200, &o);
	goto out;
dberr:
	api_db_error(req, db);
out:
	sb_release(&o);
	db_res_free(job);
	db_res_free(run);
	db_res_free(wft);
}
