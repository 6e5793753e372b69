/* job.c — jobs: submission (upstream's routes/api/v2/submit.py), the user
 * routes of routes/api/v2/job.py and the admin routes of
 * routes/admin/v2/job.py. Execution itself is src/runner/ (job.c drives it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "api/access.h"
#include "api/job.h"
#include "api/params.h"
#include "api/profile_check.h"
#include "api/api.h"
#include "api/common.h"
#include "api/task_common.h"
#include "config/settings.h"
#include "model/images.h"
#include "model/pyrepr.h"
#include "model/state.h"
#include "model/task.h"
#include "runner/runner.h"
#include "util/host.h"
#include "util/jsonspan.h"
#include "util/timeutil.h"
#include "util/zipwrite.h"

static void int_or_null(sb_t *o, db_res_t *r, int i, int c)
{
	if (db_isnull(r, i, c))
		sb_adds(o, "null");
	else
		sb_addf(o, "%lld", (long long)db_int(r, i, c));
}

static void str_or_null(sb_t *o, const char *s)
{
	if (s)
		sb_add_json_str(o, s);
	else
		sb_adds(o, "null");
}

/*
 * A dump column, with the keys of its Dump model in the model's order
 * (jsonb keeps its own key order). The wanted members are scalars, copied as
 * stored; a nested value, or a text the scan cannot read, goes through
 * jansson, which re-serialises it compactly.
 */
static void dump_json(sb_t *o, const char *raw, const char *const *keys)
{
	const char *vals[8];
	size_t lens[8];
	int fast = raw && !json_object_spans(raw, keys, vals, lens);
	json_t *d = NULL;
	sb_addc(o, '{');
	int n = 0;
	for (int k = 0; keys[k]; k++) {
		if (fast && !vals[k])
			continue;
		if (fast && vals[k][0] != '{' && vals[k][0] != '[') {
			sb_addf(o, "%s\"%s\":", n++ ? "," : "", keys[k]);
			sb_add(o, vals[k], lens[k]);
			continue;
		}
		if (!d && raw)
			d = json_loads(raw, 0, NULL);
		json_t *v = json_object_get(d, keys[k]);
		if (!v)
			continue;
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
		sb_addf(o, "%s\"%s\":%s", n++ ? "," : "", keys[k], s);
		free(s);
	}
	sb_addc(o, '}');
	json_decref(d);
}

static const char *const project_keys[] = { "id", "name", "timestamp_created", NULL };
static const char *const workflow_keys[] = { "id", "name", "project_id", "timestamp_created", NULL };
static const char *const dataset_keys[] = { "id", "name", "project_id", "timestamp_created", "zarr_dir", NULL };

/* JobRead of row i (log replaced by log_override when not NULL, dropped
 * when with_log is 0). */
void job_json(sb_t *o, db_res_t *r, int i, int with_log, const char *log_override)
{
	sb_addf(o, "{\"id\":%lld,\"project_id\":", (long long)db_int(r, i, 0));
	int_or_null(o, r, i, 1);
	sb_adds(o, ",\"project_dump\":");
	dump_json(o, db_text(r, i, 2), project_keys);
	sb_adds(o, ",\"user_email\":");
	str_or_null(o, db_text(r, i, 3));
	sb_adds(o, ",\"slurm_account\":");
	str_or_null(o, db_text(r, i, 4));
	sb_adds(o, ",\"workflow_id\":");
	int_or_null(o, r, i, 5);
	sb_adds(o, ",\"workflow_dump\":");
	dump_json(o, db_text(r, i, 6), workflow_keys);
	sb_adds(o, ",\"dataset_id\":");
	int_or_null(o, r, i, 7);
	sb_adds(o, ",\"dataset_dump\":");
	dump_json(o, db_text(r, i, 8), dataset_keys);
	sb_adds(o, ",\"start_timestamp\":");
	sb_add_json_ts(o, db_text(r, i, 9));
	sb_adds(o, ",\"end_timestamp\":");
	sb_add_json_ts(o, db_text(r, i, 10));
	sb_adds(o, ",\"status\":");
	str_or_null(o, db_text(r, i, 11));
	sb_adds(o, ",\"log\":");
	str_or_null(o, !with_log ? NULL : log_override ? log_override : db_text(r, i, 12));
	sb_adds(o, ",\"executor_error_log\":");
	str_or_null(o, db_text(r, i, 13));
	sb_adds(o, ",\"working_dir\":");
	str_or_null(o, db_text(r, i, 14));
	sb_adds(o, ",\"working_dir_user\":");
	str_or_null(o, db_text(r, i, 15));
	sb_adds(o, ",\"first_task_index\":");
	int_or_null(o, r, i, 16);
	sb_adds(o, ",\"last_task_index\":");
	int_or_null(o, r, i, 17);
	sb_adds(o, ",\"worker_init\":");
	str_or_null(o, db_text(r, i, 18));
	sb_adds(o, ",\"attribute_filters\":");
	sb_adds(o, db_text(r, i, 19) ? db_text(r, i, 19) : "{}");
	sb_adds(o, ",\"type_filters\":");
	sb_adds(o, db_text(r, i, 20) ? db_text(r, i, 20) : "{}");
	sb_addc(o, '}');
}

/* Answers a list of jobs from sql (params p). */
static void reply_job_list(http_req_t *req, db_t *db, const char *sql, const db_param_t *p, int np, int with_log)
{
	db_res_t *r;
	if (db_exec(db, sql, p, np, &r)) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int i = 0; i < db_nrows(r); i++) {
		if (i)
			sb_addc(&o, ',');
		job_json(&o, r, i, with_log, NULL);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}

/* The contents of <working_dir>/workflow.log, or NULL (malloc'd). */
static char *tmp_log(const char *working_dir)
{
	if (!working_dir)
		return NULL;
	sb_t p = SB_INIT, c = SB_INIT;
	sb_addf(&p, "%s/workflow.log", working_dir);
	FILE *f = fopen(p.buf, "rb");
	sb_release(&p);
	if (!f)
		return NULL;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&c, buf, n);
	fclose(f);
	return sb_detach(&c);
}

/* Answers one job row (r, row 0) as JobRead, with show_tmp_logs. */
static void reply_job(http_req_t *req, db_res_t *r, int show_tmp_logs)
{
	char *log = NULL;
	if (show_tmp_logs && sm_parse(&job_sm, db_text(r, 0, 11)) == JOB_SUBMITTED)
		log = tmp_log(db_text(r, 0, 14));
	sb_t o = SB_INIT;
	job_json(&o, r, 0, 1, log);
	free(log);
	http_json_sb(req, 200, &o);
}

/* _get_job_check_access: the job row (caller frees) or NULL after answering. */
static db_res_t *job_access(http_req_t *req, db_t *db, int64_t pid, int64_t jid, char perm)
{
	project_row_t p;
	if (access_project(req, db, pid, perm, &p))
		return NULL;
	db_res_t *r;
	if (db_exec(db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.id = $1 AND j.project_id = $2",
		    (db_param_t[]){ P_INT(jid), P_INT(pid) }, 2, &r)) {
		api_db_error(req, db);
		return NULL;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "Job not found");
		return NULL;
	}
	return r;
}

static db_res_t *job_by_id(http_req_t *req, db_t *db, int64_t jid)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.id = $1", (db_param_t[]){ P_INT(jid) }, 1, &r)) {
		api_db_error(req, db);
		return NULL;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_errorf(req, 404, "Job %lld not found", (long long)jid);
		return NULL;
	}
	return r;
}

/* ---- user routes ---- */

void api_job_list_user(http_req_t *req)
{
	int log = 1;
	if (v_query_bool(req, "log", &log))
		return;
	reply_job_list(req, req->db,
		       "SELECT " JOB_COLS " FROM jobv2 j JOIN linkuserprojectv2 l ON l.project_id = j.project_id "
		       "WHERE l.user_id = $1 AND l.is_verified ORDER BY j.start_timestamp DESC, j.id DESC",
		       (db_param_t[]){ P_INT(req->user->id) }, 1, log);
}

void api_job_list_project(http_req_t *req)
{
	int64_t pid;
	int log = 1;
	if (v_path_int(req, 0, "project_id", &pid) || v_query_bool(req, "log", &log))
		return;
	db_t *db = req->db;
	project_row_t p;
	if (access_project(req, db, pid, 'r', &p))
		return;
	reply_job_list(req, db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.project_id = $1 ORDER BY j.start_timestamp DESC, j.id DESC",
		       (db_param_t[]){ P_INT(pid) }, 1, log);
}

void api_job_list_workflow(http_req_t *req)
{
	int64_t pid, wid;
	if (v_path_int(req, 0, "project_id", &pid) || v_path_int(req, 1, "workflow_id", &wid))
		return;
	db_t *db = req->db;
	project_row_t p;
	workflow_row_t w;
	if (access_workflow(req, db, pid, wid, 'r', &p, &w))
		return;
	reply_job_list(req, db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.workflow_id = $1 ORDER BY j.start_timestamp DESC, j.id DESC",
		       (db_param_t[]){ P_INT(wid) }, 1, 1);
}

void api_job_get(http_req_t *req)
{
	int64_t pid, jid;
	int show = 0;
	if (v_path_int(req, 0, "project_id", &pid) || v_path_int(req, 1, "job_id", &jid) ||
	    v_query_bool(req, "show_tmp_logs", &show))
		return;
	db_res_t *r = job_access(req, req->db, pid, jid, 'r');
	if (!r)
		return;
	reply_job(req, r, show);
	db_res_free(r);
}

static void reply_zip(http_req_t *req, const char *working_dir)
{
	if (!working_dir) {
		http_error_500(req, "the job has no working_dir");
		return;
	}
	sb_t bytes = SB_INIT, err = SB_INIT, name = SB_INIT;
	if (zip_folder_bytes(working_dir, &bytes, &err)) {
		http_error_500(req, "%s", err.buf);
	} else {
		const char *base = strrchr(working_dir, '/');
		base = base ? base + 1 : working_dir;
		sb_addf(&name, "attachment;filename=%s_archive.zip", base);
		req->status = 200;
		sb_release(&req->resp);
		req->resp = bytes;
		bytes = (sb_t)SB_INIT;
		req->content_type = "application/x-zip-compressed";
		req->extra_header_name = "Content-Disposition";
		req->extra_header_value = arena_strdup(&req->arena, name.buf);
	}
	sb_release(&bytes);
	sb_release(&err);
	sb_release(&name);
}

void api_job_download(http_req_t *req)
{
	int64_t pid, jid;
	if (v_path_int(req, 0, "project_id", &pid) || v_path_int(req, 1, "job_id", &jid))
		return;
	db_res_t *r = job_access(req, req->db, pid, jid, 'r');
	if (!r)
		return;
	reply_zip(req, db_text(r, 0, 14));
	db_res_free(r);
}

/* _check_shutdown_is_supported */
static int shutdown_unsupported(http_req_t *req)
{
	const char *b = settings.runner_backend;
	if (!strcmp(b, "slurm_sudo") || !strcmp(b, "slurm_ssh"))
		return 0;
	http_errorf(req, 422, "Stopping a job execution is not implemented for FRACTAL_RUNNER_BACKEND=%s.", b);
	return 1;
}

static void stop_job(http_req_t *req, db_res_t *r)
{
	const char *status = db_text(r, 0, 11);
	if (sm_parse(&job_sm, status) != JOB_SUBMITTED) {
		http_errorf(req, 422, "Cannot stop job: expected status " SQ(S_SUBMITTED) ", but current status is '%s'.",
			    status);
		return;
	}
	int64_t jid = db_int(r, 0, 0);
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/shutdown", db_text(r, 0, 14) ? db_text(r, 0, 14) : "None");
	FILE *f = fopen(p.buf, "w");
	if (!f || fprintf(f, "Trigger executor shutdown for job.id=%lld.", (long long)jid) < 0) {
		log_error("An error was raised by `_write_shutdown_file` during  Job %lld shutdown. Original error: '%s'.",
			  (long long)jid, strerror(errno));
		http_errorf(req, 422, "Could not shutdown Job %lld, please try again.", (long long)jid);
	} else {
		http_empty(req, 202);
	}
	if (f)
		fclose(f);
	sb_release(&p);
}

void api_job_stop(http_req_t *req)
{
	int64_t pid, jid;
	if (v_path_int(req, 0, "project_id", &pid) || v_path_int(req, 1, "job_id", &jid))
		return;
	if (shutdown_unsupported(req))
		return;
	db_res_t *r = job_access(req, req->db, pid, jid, 'x');
	if (!r)
		return;
	stop_job(req, r);
	db_res_free(r);
}

/* ---- submission ---- */

/* submit_profile: upstream's validate_user_profile (api/profile_check.c:
 * a profile, and resource and profile documents that still validate),
 * then what submission needs of them; or -1 after the 422. */
typedef struct profile_info {
	int64_t resource_id;
	const char *resource_name, *resource_type, *jobs_local_dir, *runner_config;
	int prevent_new_submissions;
	const char *profile_name, *username, *jobs_remote_dir;
	const char *host, *ssh_key_path;  /* slurm_ssh */
} profile_info_t;

static int submit_profile(http_req_t *req, db_t *db, profile_info_t *out)
{
	user_profile_t up;
	if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up))
		return -1;
	user_profile_release(&up);
	db_res_t *r;
	if (db_exec(db,
		    "SELECT r.id, r.name, r.type, r.jobs_local_dir, r.jobs_runner_config, r.prevent_new_submissions, "
		    "p.name, p.username, p.jobs_remote_dir, r.host, p.ssh_key_path "
		    "FROM profile p JOIN resource r ON r.id = p.resource_id WHERE p.id = $1",
		    (db_param_t[]){ P_INT(req->user->profile_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error_500(req, "profile %lld has no resource", (long long)req->user->profile_id);
		return -1;
	}
	arena_t *a = &req->arena;
#define ADUP(c) (db_text(r, 0, c) ? arena_strdup(a, db_text(r, 0, c)) : NULL)
	out->resource_id = db_int(r, 0, 0);
	out->resource_name = ADUP(1);
	out->resource_type = ADUP(2);
	out->jobs_local_dir = ADUP(3);
	out->runner_config = ADUP(4);
	out->prevent_new_submissions = db_bool(r, 0, 5);
	out->profile_name = ADUP(6);
	out->username = ADUP(7);
	out->jobs_remote_dir = ADUP(8);
	out->host = ADUP(9);
	out->ssh_key_path = ADUP(10);
#undef ADUP
	db_res_free(r);
	return 0;
}

/* GET /api/v2/job/squeue/: squeue as the server's user, for all jobs, the
 * user's (its profile's username) or its SLURM accounts', as text. */
void api_job_squeue(http_req_t *req)
{
	const char *scope;
	if (query_enum(req, "scope", "'all', 'user' or 'accounts'", &scope))
		return;
	const char *b = settings.runner_backend;
	if (strcmp(b, "slurm_sudo") && strcmp(b, "slurm_ssh")) {
		http_errorf(req, 422, "This endpoint is not available for FRACTAL_RUNNER_BACKEND=%s.", b);
		return;
	}
	profile_info_t pi;
	if (submit_profile(req, req->db, &pi))
		return;
	sb_t opt = SB_INIT, out = SB_INIT;
	char *argv[4];
	int k = 0;
	argv[k++] = "squeue";
	if (!strcmp(scope, "user") && pi.username) {
		argv[k++] = "--user";
		argv[k++] = (char *)pi.username;
	} else if (!strcmp(scope, "accounts")) {
		db_res_t *r;
		if (db_exec(req->db, "SELECT slurm_accounts FROM user_oauth WHERE id = $1",
			    (db_param_t[]){ P_INT(req->user->id) }, 1, &r)) {
			api_db_error(req, req->db);
			return;
		}
		json_t *acc = db_nrows(r) ? json_loads(db_text(r, 0, 0) ? db_text(r, 0, 0) : "[]", 0, NULL) : NULL;
		db_res_free(r);
		size_t i;
		json_t *a;
		json_array_foreach(acc, i, a)
			sb_addf(&opt, "%s%s", opt.len ? "," : "--accounts=", json_string_value(a));
		json_decref(acc);
		if (opt.len)
			argv[k++] = opt.buf;
	}
	char fmt[] = "--format=%.12i %.9P %.24j %.14u %.14a %.11T %.12M %.6D %.4C %.10m %R";
	char *full[6];
	int n = 0;
	for (int i = 0; i < k; i++)
		full[n++] = argv[i];
	full[n++] = fmt;
	full[n] = NULL;
	int rc = -1;
	const char *rt = pi.resource_type ? pi.resource_type : "";
	if (!strcmp(rt, "slurm_sudo") || !strcmp(rt, "slurm_ssh")) {
		sb_t err = SB_INIT;
		/* over SSH: as the profile's user on the cluster (util/host_ssh.c) */
		host_t *h = !strcmp(rt, "slurm_ssh") ? host_ssh_open(NULL, pi.host, pi.username, pi.ssh_key_path, NULL, &err)
						     : host_local_open(NULL, "/tmp/fractal-squeue.XXXXXX", &err);
		host_run_t res = HOST_RUN_INIT;
		if (h && !host_run(h, full, NULL, &res) && res.started && res.code == 0) {
			sb_add(&out, res.out.buf, res.out.len);
			rc = 0;
		} else {
			log_error("Cannot execute squeue command. Original error: %s%s", h ? res.err.buf : err.buf,
				  h && !res.started ? (res.why ? res.why : "not started") : "");
		}
		host_run_release(&res);
		host_close(h);
		sb_release(&err);
	}
	if (rc)
		http_error(req, 422, "Error executing squeue command - please retry later.");
	else {
		http_json_sb(req, 200, &out);
		req->content_type = "text/plain; charset=utf-8";
	}
	sb_release(&opt);
	sb_release(&out);
}

/* pydantic's view of a datetime in a Dump: "...Z", no zero fraction. */
static void dump_ts(sb_t *o, const char *ts)
{
	sb_t t = SB_INIT;
	sb_add_json_ts(&t, ts);
	char *plus = strstr(t.buf, "+00:00\"");
	if (plus) {
		sb_add(o, t.buf, (size_t)(plus - t.buf));
		sb_adds(o, "Z\"");
	} else {
		sb_adds(o, t.buf);
	}
	sb_release(&t);
}

static int set_indices(http_req_t *req, int64_t n, json_t *b, int64_t *first, int64_t *last)
{
	json_t *f = json_object_get(b, "first_task_index"), *l = json_object_get(b, "last_task_index");
	*first = json_is_integer(f) ? (int64_t)json_integer_value(f) : 0;
	*last = json_is_integer(l) ? (int64_t)json_integer_value(l) : n - 1;
	sb_t m = SB_INIT;
	if (*first < 0)
		sb_addf(&m, "first_task_index=%lld cannot be negative", (long long)*first);
	else if (*last < 0)
		sb_addf(&m, "last_task_index=%lld cannot be negative", (long long)*last);
	else if (*last > n - 1)
		sb_addf(&m, "last_task_index=%lld cannot be larger than (num_tasks-1)=%lld", (long long)*last, (long long)(n - 1));
	else if (*first > *last)
		sb_addf(&m, "first_task_index=%lld cannot be larger than last_task_index=%lld", (long long)*first,
			(long long)*last);
	int rc = 0;
	if (m.len) {
		http_errorf(req, 422,
			    "Invalid values for first_task_index or last_task_index (with num_tasks=%lld).\nOriginal error: %s",
			    (long long)n, m.buf);
		rc = -1;
	}
	sb_release(&m);
	return rc;
}

/* JobCreate; NULL after the 422. */
static json_t *job_create_parse(http_req_t *req)
{
	verr_t e;
	verr_init(&e);
	json_t *in = v_parse_body(req, &e);
	if (!in) {
		verr_reply(&e, req);
		return NULL;
	}
	/* validate_first_last_indices runs before the fields (mode="before") */
	json_t *f = json_object_get(in, "first_task_index"), *l = json_object_get(in, "last_task_index");
	if (json_is_object(in) && json_is_number(f) && json_is_number(l) && json_number_value(f) > json_number_value(l)) {
		sb_t m = SB_INIT, fs = SB_INIT, ls = SB_INIT;
		py_repr_json(&fs, f);
		py_repr_json(&ls, l);
		sb_addf(&m, "Value error, first_task_index=%s cannot be larger than last_task_index=%s", fs.buf, ls.buf);
		verr_add(&e, "value_error", json_pack("[s]", "body"), m.buf, in, json_pack("{s:{}}", "error"));
		sb_release(&m);
		sb_release(&fs);
		sb_release(&ls);
		json_decref(in);
		verr_reply(&e, req);
		return NULL;
	}
	const vfield_t fields[] = {
		{ .name = "first_task_index", .type = V_NONNEG, .nullable = 1 },
		{ .name = "last_task_index", .type = V_NONNEG, .nullable = 1 },
		{ .name = "slurm_account", .type = V_STR, .nullable = 1 },
		{ .name = "worker_init", .type = V_NONEMPTY },
		{ .name = "attribute_filters", .type = V_ANY },
		{ .name = "type_filters", .type = V_ANY },
	};
	json_t *base = json_pack("[s]", "body");
	json_t *out = NULL;
	if (!json_is_object(in)) {
		v_add_not_object(&e, json_incref(base), in);
	} else {
		out = v_object(in, fields, 6, 1, base, &e);
		json_t *loc = json_pack("[s,s]", "body", "attribute_filters");
		json_t *af = json_object_get(in, "attribute_filters");
		json_t *v = af ? attribute_filters_validate(af, loc, &e) : json_object();
		json_decref(loc);
		if (v)
			json_object_set_new(out, "attribute_filters", v);
		loc = json_pack("[s,s]", "body", "type_filters");
		json_t *tf = json_object_get(in, "type_filters");
		v = tf ? type_filters_validate(tf, loc, &e) : json_object();
		json_decref(loc);
		if (v)
			json_object_set_new(out, "type_filters", v);
	}
	json_decref(base);
	json_decref(in);
	if (verr_reply(&e, req)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void api_job_submit(http_req_t *req)
{
	int64_t pid, wid, did;
	if (v_path_int(req, 0, "project_id", &pid) || v_query_int_required(req, "workflow_id", &wid) ||
	    v_query_int_required(req, "dataset_id", &did))
		return;
	json_t *b = job_create_parse(req);
	if (!b)
		return;
	db_t *db = req->db;
	project_row_t p;
	dataset_row_t d;
	workflow_row_t w;
	db_res_t *t = NULL, *r = NULL;
	json_t *tg_ids = json_object();
	sb_t dd = SB_INIT, wd = SB_INIT, pd = SB_INIT, af = SB_INIT, tf = SB_INIT;
	if (access_dataset(req, db, pid, did, 'x', &p, &d))
		goto out;
	if (db_exec(db, "SELECT resource_id FROM profile WHERE id = $1", (db_param_t[]){ P_INT(req->user->profile_id) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	int same = db_nrows(r) && db_int(r, 0, 0) == p.resource_id;
	db_res_free(r);
	r = NULL;
	if (!same) {
		http_error(req, 422, "Project resource does not match with user's resource");
		goto out;
	}
	if (access_workflow(req, db, pid, wid, 'x', &p, &w))
		goto out;
	if (db_exec(db,
		    "SELECT w.task_id, w.type_filters, t.input_types FROM workflowtaskv2 w JOIN taskv2 t ON t.id = w.task_id "
		    "WHERE w.workflow_id = $1 ORDER BY w.\"order\"",
		    (db_param_t[]){ P_INT(wid) }, 1, &t)) {
		api_db_error(req, db);
		goto out;
	}
	int64_t n = db_nrows(t);
	if (n == 0) {
		http_errorf(req, 422, "Workflow %lld has empty task list", (long long)wid);
		goto out;
	}
	int64_t first, last;
	if (set_indices(req, n, b, &first, &last))
		goto out;
	for (int64_t i = first; i <= last; i++) {
		task_row_t task;
		if (task_access(req, db, db_int(t, (int)i, 0), 0, &task))
			goto out;
		if (!task.tg.active) {
			http_errorf(req, 422, "Error: task %lld (%s) is not active.", (long long)task.id, task.name);
			goto out;
		}
		json_t *wf = json_loads(db_text(t, (int)i, 1) ? db_text(t, (int)i, 1) : "{}", 0, NULL);
		int clash = check_type_filters_compat(req, db_text(t, (int)i, 2), wf);
		json_decref(wf);
		if (clash)
			goto out;
		char key[32];
		snprintf(key, sizeof(key), "%lld", (long long)task.tg.id);
		json_object_set_new(tg_ids, key, json_integer(task.tg.id));
	}
	profile_info_t prof;
	if (submit_profile(req, db, &prof))
		goto out;
	if (prof.prevent_new_submissions) {
		http_errorf(req, 422, "The '%s' resource does not currently accept new job submissions.", prof.resource_name);
		goto out;
	}
	/* slurm_account */
	if (db_exec(db, "SELECT slurm_accounts, project_dirs FROM user_oauth WHERE id = $1",
		    (db_param_t[]){ P_INT(req->user->id) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	json_t *accounts = json_loads(db_text(r, 0, 0) ? db_text(r, 0, 0) : "[]", 0, NULL);
	json_t *dirs = json_loads(db_text(r, 0, 1) ? db_text(r, 0, 1) : "[]", 0, NULL);
	db_res_free(r);
	r = NULL;
	json_t *acc = json_object_get(b, "slurm_account");
	const char *slurm_account = NULL;
	if (json_is_string(acc)) {
		int found = 0;
		size_t i;
		json_t *x;
		json_array_foreach(accounts, i, x)
			found |= json_is_string(x) && !strcmp(json_string_value(x), json_string_value(acc));
		if (!found) {
			http_errorf(req, 422, "SLURM account '%s' is not among those available to the current user",
				    json_string_value(acc));
			json_decref(accounts);
			json_decref(dirs);
			goto out;
		}
		slurm_account = arena_strdup(&req->arena, json_string_value(acc));
	} else if (json_array_size(accounts) > 0) {
		slurm_account = arena_strdup(&req->arena, json_string_value(json_array_get(accounts, 0)));
	}
	const char *project_dir = json_string_value(json_array_get(dirs, 0));
	project_dir = project_dir ? arena_strdup(&req->arena, project_dir) : NULL;
	json_decref(accounts);
	json_decref(dirs);
	char *ids;
	if (access_submitted_jobs(req, db, "dataset_id", did, &ids))
		goto out;
	if (ids) {
		http_errorf(req, 422, "Dataset %lld is already in use in submitted job(s).", (long long)did);
		goto out;
	}
	/* the dumps */
	sb_addf(&dd, "{\"id\":%lld,\"name\":", (long long)d.id);
	sb_add_json_str(&dd, d.name);
	sb_addf(&dd, ",\"project_id\":%lld,\"timestamp_created\":", (long long)d.project_id);
	dump_ts(&dd, d.timestamp_created);
	sb_adds(&dd, ",\"zarr_dir\":");
	sb_add_json_str(&dd, d.zarr_dir);
	sb_addc(&dd, '}');
	sb_addf(&wd, "{\"id\":%lld,\"name\":", (long long)w.id);
	sb_add_json_str(&wd, w.name);
	sb_addf(&wd, ",\"project_id\":%lld,\"timestamp_created\":", (long long)w.project_id);
	dump_ts(&wd, w.timestamp_created);
	sb_addc(&wd, '}');
	sb_addf(&pd, "{\"id\":%lld,\"name\":", (long long)p.id);
	sb_add_json_str(&pd, p.name);
	sb_adds(&pd, ",\"timestamp_created\":");
	dump_ts(&pd, p.timestamp_created);
	sb_addc(&pd, '}');
	json_t *afo = jsonb_ordered(json_object_get(b, "attribute_filters"));
	json_t *tfo = jsonb_ordered(json_object_get(b, "type_filters"));
	char *afs = json_dumps(afo, JSON_COMPACT | JSON_REAL_PRECISION(17)), *tfs = json_dumps(tfo, JSON_COMPACT);
	sb_adds(&af, afs);
	sb_adds(&tf, tfs);
	free(afs);
	free(tfs);
	json_decref(afo);
	json_decref(tfo);
	json_t *wi = json_object_get(b, "worker_init");
	char now[40];
	utc_now_iso(now, sizeof(now));
	if (db_begin(db))
		goto dberr;
	if (db_exec(db,
		    "INSERT INTO jobv2 (project_id, workflow_id, dataset_id, user_email, slurm_account, dataset_dump, "
		    "workflow_dump, project_dump, worker_init, first_task_index, last_task_index, start_timestamp, status, "
		    "attribute_filters, type_filters, fractal_server_version) "
		    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, " SQ(S_SUBMITTED) ", $13, $14, $15) "
		    "RETURNING id",
		    (db_param_t[]){ P_INT(pid), P_INT(wid), P_INT(did), P_TEXT(req->user->email), P_TEXT(slurm_account),
				    P_JSON(dd.buf), P_JSON(wd.buf), P_JSON(pd.buf), P_TEXT(json_string_value(wi)), P_INT(first),
				    P_INT(last), P_TS(now), P_JSON(af.buf), P_JSON(tf.buf), P_TEXT(FRACTAL_VERSION) },
		    15, &r)) {
		if (db_errclass(db) == DB_ERR_CONSTRAINT) {
			db_rollback(db);
			http_errorf(req, 422, "Dataset %lld is already in use in submitted job(s).", (long long)did);
			goto out;
		}
		goto dberr;
	}
	int64_t jid = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	const char *k;
	json_t *v;
	json_object_foreach(tg_ids, k, v)
		if (db_exec(db, "UPDATE taskgroupv2 SET timestamp_last_used = $1 WHERE id = $2",
			    (db_param_t[]){ P_TS(now), P_INT(json_integer_value(v)) }, 2, NULL))
			goto dberr;
	/* folders: <jobs_local_dir>/<YYYY-MM>/proj_v2_..._<YYYYmmdd_HHMMSS> */
	char yyyy_mm[8], stamp[16];
	snprintf(yyyy_mm, sizeof(yyyy_mm), "%.4s-%.2s", now, now + 5);
	snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2s_%.2s%.2s%.2s", now, now + 5, now + 8, now + 11, now + 14, now + 17);
	sb_t dir_name = SB_INIT, wdir = SB_INIT, wdir_user = SB_INIT, cache = SB_INIT;
	sb_addf(&dir_name, "proj_v2_%07lld_wf_%07lld_job_%07lld_%s", (long long)pid, (long long)wid, (long long)jid, stamp);
	sb_addf(&cache, "%s/fractal/.fractal_cache", project_dir ? project_dir : "");
	sb_addf(&wdir, "%s/%s/%s", prof.jobs_local_dir, yyyy_mm, dir_name.buf);
	if (!strcmp(prof.resource_type, "slurm_sudo"))
		sb_addf(&wdir_user, "%s/%s/%s", cache.buf, yyyy_mm, dir_name.buf);
	else if (!strcmp(prof.resource_type, "slurm_ssh"))
		sb_addf(&wdir_user, "%s/%s/%s", prof.jobs_remote_dir ? prof.jobs_remote_dir : "", yyyy_mm, dir_name.buf);
	else
		sb_adds(&wdir_user, wdir.buf);
	int urc = db_exec(db, "UPDATE jobv2 SET working_dir = $1, working_dir_user = $2 WHERE id = $3",
			  (db_param_t[]){ P_TEXT(wdir.buf), P_TEXT(wdir_user.buf), P_INT(jid) }, 3, NULL) ||
		  db_commit(db);
	sb_release(&dir_name);
	sb_release(&wdir);
	sb_release(&wdir_user);
	if (urc) {
		sb_release(&cache);
		goto dberr;
	}
	json_t *rc = json_loads(prof.runner_config ? prof.runner_config : "{}", 0, NULL);
	runner_job_t job = {
		.job_id = jid, .workflow_id = wid, .dataset_id = did, .user_id = req->user->id,
		.user_cache_dir = cache.buf, .resource_id = prof.resource_id, .resource_name = prof.resource_name,
		.resource_type = prof.resource_type, .profile_name = prof.profile_name, .profile_username = prof.username,
		.runner_config = rc,
	};
	runner_submit(&job);
	json_decref(rc);
	sb_release(&cache);
	log_info("Job %lld submitted.", (long long)jid);
	if (db_exec(db, "SELECT " JOB_COLS " FROM jobv2 j WHERE j.id = $1", (db_param_t[]){ P_INT(jid) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	sb_t o = SB_INIT;
	job_json(&o, r, 0, 1, NULL);
	http_json_sb(req, 202, &o);
	goto out;
dberr:
	api_db_abort(req, db);
out:
	db_res_free(t);
	db_res_free(r);
	json_decref(tg_ids);
	json_decref(b);
	sb_release(&dd);
	sb_release(&wd);
	sb_release(&pd);
	sb_release(&af);
	sb_release(&tf);
}

/* ---- admin routes ---- */

void api_admin_job_list(http_req_t *req)
{
	int64_t id = 0, resource_id = 0, owner = 0, project_id = 0, dataset_id = 0, workflow_id = 0, page, page_size;
	int has_id = 0, has_res = 0, has_owner = 0, has_p = 0, has_d = 0, has_w = 0, log = 1;
	const char *status;
	char s_min[40], s_max[40], e_min[40], e_max[40];
	if (v_query_int(req, "id", &id, &has_id) || v_query_int(req, "resource_id", &resource_id, &has_res) ||
	    v_query_int(req, "project_owner_id", &owner, &has_owner) || v_query_int(req, "project_id", &project_id, &has_p) ||
	    v_query_int(req, "dataset_id", &dataset_id, &has_d) || v_query_int(req, "workflow_id", &workflow_id, &has_w) ||
	    query_enum(req, "status", job_sm.expected, &status) || v_query_ts(req, "start_timestamp_min", s_min) ||
	    v_query_ts(req, "start_timestamp_max", s_max) || v_query_ts(req, "end_timestamp_min", e_min) ||
	    v_query_ts(req, "end_timestamp_max", e_max) || v_query_bool(req, "log", &log) ||
	    v_pagination(req, &page, &page_size))
		return;
	const char *email = http_query(req, "job_user_email");
	if (email) {
		json_t *v = json_string(email);
		sb_t m = SB_INIT;
		const char *bad = check_email(&v, &m);
		if (bad) {
			verr_t e;
			verr_init(&e);
			sb_t msg = SB_INIT;
			sb_addf(&msg, "value is not a valid email address: %s", bad);
			verr_add(&e, "value_error", json_pack("[s,s]", "query", "job_user_email"), msg.buf, v,
				 json_pack("{s:s}", "reason", bad));
			verr_reply(&e, req);
			sb_release(&msg);
			sb_release(&m);
			json_decref(v);
			return;
		}
		email = arena_strdup(&req->arena, json_string_value(v));
		sb_release(&m);
		json_decref(v);
	}
	qb_t q;
	qb_init(&q);
	if (has_id)
		qb_add(&q, "j.id = ?", P_INT(id));
	if (has_res)
		qb_add(&q, "EXISTS (SELECT 1 FROM projectv2 p WHERE p.id = j.project_id AND p.resource_id = ?)", P_INT(resource_id));
	if (has_owner)
		qb_add(&q, "EXISTS (SELECT 1 FROM linkuserprojectv2 l WHERE l.project_id = j.project_id AND l.is_owner AND l.user_id = ?)",
		       P_INT(owner));
	if (email)
		qb_add(&q, "j.user_email = ?", P_TEXT(email));
	if (has_p)
		qb_add(&q, "j.project_id = ?", P_INT(project_id));
	if (has_d)
		qb_add(&q, "j.dataset_id = ?", P_INT(dataset_id));
	if (has_w)
		qb_add(&q, "j.workflow_id = ?", P_INT(workflow_id));
	if (status)
		qb_add(&q, "j.status = ?", P_TEXT(status));
	if (s_min[0])
		qb_add(&q, "j.start_timestamp >= ?", P_TS(s_min));
	if (s_max[0])
		qb_add(&q, "j.start_timestamp <= ?", P_TS(s_max));
	if (e_min[0])
		qb_add(&q, "j.end_timestamp >= ?", P_TS(e_min));
	if (e_max[0])
		qb_add(&q, "j.end_timestamp <= ?", P_TS(e_max));
	db_t *db = req->db;
	db_res_t *r = NULL;
	sb_t o = SB_INIT;
	if (!qb_paginate(req, db, &q, JOB_COLS, "jobv2 j", "j.start_timestamp DESC, j.id DESC", page, page_size, &o, &r)) {
		for (int i = 0; i < db_nrows(r); i++) {
			if (i)
				sb_addc(&o, ',');
			job_json(&o, r, i, log, NULL);
		}
		sb_adds(&o, "]}");
		http_json_sb(req, 200, &o);
	}
	sb_release(&o);
	db_res_free(r);
	qb_release(&q);
}

void api_admin_job_get(http_req_t *req)
{
	int64_t jid;
	int show = 0;
	if (v_path_int(req, 0, "job_id", &jid) || v_query_bool(req, "show_tmp_logs", &show))
		return;
	db_res_t *r = job_by_id(req, req->db, jid);
	if (!r)
		return;
	reply_job(req, r, show);
	db_res_free(r);
}

void api_admin_job_patch(http_req_t *req)
{
	int64_t jid;
	if (v_path_int(req, 0, "job_id", &jid))
		return;
	const vfield_t fields[] = { { .name = "status", .type = V_STR, .required = 1 } };
	json_t *b = v_body(req, fields, 1, 1);
	if (!b)
		return;
	const char *st = json_string_value(json_object_get(b, "status"));
	int to = sm_parse(&job_sm, st);
	if (to < 0) {
		verr_t e;
		verr_init(&e);
		sb_t msg = SB_INIT;
		sb_addf(&msg, "Input should be %s", job_sm.expected);
		verr_add(&e, "enum", json_pack("[s,s]", "body", "status"), msg.buf, json_object_get(b, "status"),
			 json_pack("{s:s}", "expected", job_sm.expected));
		sb_release(&msg);
		verr_reply(&e, req);
		json_decref(b);
		return;
	}
	db_t *db = req->db;
	db_res_t *r = job_by_id(req, db, jid);
	if (!r) {
		json_decref(b);
		return;
	}
	const char *cur = db_text(r, 0, 11);
	int from = sm_parse(&job_sm, cur);
	if (from != JOB_SUBMITTED) {
		http_errorf(req, 422, "Job %lld has status job.status='%s' != " SQ(S_SUBMITTED) ".", (long long)jid, cur);
		goto out;
	}
	if (to != JOB_FAILED) {
		http_errorf(req, 422, "Cannot set job status to %s", st);
		goto out;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_t log = SB_INIT;
	sb_addf(&log, "%s\nThis job was manually marked as " SQ(S_FAILED) " by an admin (%s).",
		db_text(r, 0, 12) ? db_text(r, 0, 12) : "", now);
	db_res_t *run = NULL;
	sm_change(&job_sm, jid, from, to);
	int rc = db_begin(db) ||
		 db_exec(db, "UPDATE jobv2 SET status = " SQ(S_FAILED) ", end_timestamp = $1, log = $2 WHERE id = $3",
			 (db_param_t[]){ P_TS(now), P_TEXT(log.buf), P_INT(jid) }, 3, NULL) ||
		 db_exec(db, "SELECT id FROM historyrun WHERE job_id = $1 ORDER BY timestamp_started DESC, id DESC LIMIT 1",
			 (db_param_t[]){ P_INT(jid) }, 1, &run);
	if (!rc && db_nrows(run)) {
		int64_t run_id = db_int(run, 0, 0);
		rc = db_exec(db, "UPDATE historyrun SET status = " SQ(S_FAILED) " WHERE id = $1", (db_param_t[]){ P_INT(run_id) },
			     1, NULL) ||
		     db_exec(db, "UPDATE historyunit SET status = " SQ(S_FAILED) " WHERE history_run_id = $1",
			     (db_param_t[]){ P_INT(run_id) }, 1, NULL);
	}
	db_res_free(run);
	sb_release(&log);
	if (rc || db_commit(db)) {
		api_db_abort(req, db);
		goto out;
	}
	db_res_free(r);
	r = job_by_id(req, db, jid);
	if (r)
		reply_job(req, r, 0);
out:
	db_res_free(r);
	json_decref(b);
}

void api_admin_job_stop(http_req_t *req)
{
	int64_t jid;
	if (v_path_int(req, 0, "job_id", &jid))
		return;
	if (shutdown_unsupported(req))
		return;
	db_res_t *r = job_by_id(req, req->db, jid);
	if (!r)
		return;
	stop_job(req, r);
	db_res_free(r);
}

void api_admin_job_download(http_req_t *req)
{
	int64_t jid;
	if (v_path_int(req, 0, "job_id", &jid))
		return;
	db_res_t *r = job_by_id(req, req->db, jid);
	if (!r)
		return;
	reply_zip(req, db_text(r, 0, 14));
	db_res_free(r);
}
