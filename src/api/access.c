/* access.c — see access.h. */
#include "api/access.h"

#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/params.h"
#include "model/state.h"
#include "util/timeutil.h"

#define PROJECT_COLS "id, name, description, is_starred, timestamp_created, resource_id"

static void fill_project(http_req_t *req, db_res_t *r, int i, project_row_t *p)
{
	p->id = db_int(r, i, 0);
	p->name = arena_strdup(&req->arena, db_text(r, i, 1));
	p->description = db_text(r, i, 2) ? arena_strdup(&req->arena, db_text(r, i, 2)) : NULL;
	p->is_starred = db_bool(r, i, 3);
	p->timestamp_created = arena_strdup(&req->arena, db_text(r, i, 4));
	p->resource_id = db_int(r, i, 5);
}

int access_project(http_req_t *req, db_t *db, int64_t project_id, char perm, project_row_t *out)
{
	db_res_t *r;
	if (db_exec(db, "SELECT " PROJECT_COLS " FROM projectv2 WHERE id = $1", (db_param_t[]){ P_INT(project_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "Project not found");
		return -1;
	}
	fill_project(req, r, 0, out);
	db_res_free(r);
	if (db_exec(db, "SELECT is_verified, permissions FROM linkuserprojectv2 WHERE project_id = $1 AND user_id = $2",
		    (db_param_t[]){ P_INT(project_id), P_INT(req->user->id) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int ok = db_nrows(r) && db_bool(r, 0, 0) && strchr(db_text(r, 0, 1), perm);
	db_res_free(r);
	if (!ok) {
		http_error(req, 403, "You are not authorized to perform this action. If you think this is by mistake, "
				     "please contact the project owner.");
		return -1;
	}
	return 0;
}

int access_dataset(http_req_t *req, db_t *db, int64_t project_id, int64_t dataset_id, char perm,
		   project_row_t *project, dataset_row_t *out)
{
	if (access_project(req, db, project_id, perm, project))
		return -1;
	db_res_t *r;
	if (db_exec(db, "SELECT id, name, project_id, timestamp_created, zarr_dir, is_starred FROM datasetv2 "
			"WHERE id = $1 AND project_id = $2", (db_param_t[]){ P_INT(dataset_id), P_INT(project_id) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "Dataset not found");
		return -1;
	}
	out->id = db_int(r, 0, 0);
	out->name = arena_strdup(&req->arena, db_text(r, 0, 1));
	out->project_id = db_int(r, 0, 2);
	out->timestamp_created = arena_strdup(&req->arena, db_text(r, 0, 3));
	out->zarr_dir = arena_strdup(&req->arena, db_text(r, 0, 4));
	out->is_starred = db_bool(r, 0, 5);
	db_res_free(r);
	return 0;
}

void access_project_json(sb_t *out, const project_row_t *p)
{
	sb_addf(out, "{\"id\":%lld,\"name\":", (long long)p->id);
	sb_add_json_str(out, p->name);
	sb_adds(out, ",\"description\":");
	if (p->description)
		sb_add_json_str(out, p->description);
	else
		sb_adds(out, "null");
	sb_addf(out, ",\"is_starred\":%s,\"timestamp_created\":", JBOOL(p->is_starred));
	sb_add_json_ts(out, p->timestamp_created);
	sb_addc(out, '}');
}

void access_dataset_json(sb_t *out, const dataset_row_t *d, const project_row_t *p)
{
	sb_addf(out, "{\"id\":%lld,\"name\":", (long long)d->id);
	sb_add_json_str(out, d->name);
	sb_addf(out, ",\"project_id\":%lld,\"project\":", (long long)d->project_id);
	access_project_json(out, p);
	sb_adds(out, ",\"timestamp_created\":");
	sb_add_json_ts(out, d->timestamp_created);
	sb_adds(out, ",\"zarr_dir\":");
	sb_add_json_str(out, d->zarr_dir);
	sb_addf(out, ",\"is_starred\":%s}", JBOOL(d->is_starred));
}

int access_path_ids(http_req_t *req, int64_t *project_id, int64_t *dataset_id)
{
	if (v_path_int(req, 0, "project_id", project_id))
		return -1;
	if (dataset_id && v_path_int(req, 1, "dataset_id", dataset_id))
		return -1;
	return 0;
}

int access_submitted_jobs(http_req_t *req, db_t *db, const char *column, int64_t id, char **ids)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT id FROM jobv2 WHERE status = " SQ(S_SUBMITTED) " AND %s = $1 ORDER BY id", column);
	db_res_t *r;
	*ids = NULL;
	if (db_exec(db, sql, (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (db_nrows(r)) {
		sb_t sb = SB_INIT;
		for (int i = 0; i < db_nrows(r); i++)
			sb_addf(&sb, "%s%lld", i ? ", " : "", (long long)db_int(r, i, 0));
		*ids = arena_strdup(&req->arena, sb.buf);
		sb_release(&sb);
	}
	db_res_free(r);
	return 0;
}


int access_row_or_404(http_req_t *req, db_t *db, const char *sql, int64_t id, const char *fmt)
{
	db_res_t *r;
	if (db_exec(db, sql, (db_param_t[]){ P_INT(id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	int n = db_nrows(r);
	db_res_free(r);
	if (!n) {
		http_errorf(req, 404, fmt, (long long)id);
		return 1;
	}
	return 0;
}

void access_delete_unless_jobs(http_req_t *req, db_t *db, const char *what, const char *job_column, int64_t id,
			       const char *sql)
{
	if (db_begin(db)) {
		api_db_error(req, db);
		return;
	}
	char *jobs;
	if (access_submitted_jobs(req, db, job_column, id, &jobs)) {
		db_rollback(db);
		return;
	}
	if (jobs) {
		db_rollback(db);
		http_errorf(req, 422, "Cannot delete %s %lld because it is linked to active job(s) %s.", what, (long long)id, jobs);
		return;
	}
	if (db_exec(db, sql, (db_param_t[]){ P_INT(id) }, 1, NULL) || db_commit(db)) {
		api_db_abort(req, db);
		return;
	}
	http_empty(req, 204);
}

int access_workflow(http_req_t *req, db_t *db, int64_t project_id, int64_t workflow_id, char perm,
		    project_row_t *project, workflow_row_t *out)
{
	if (access_project(req, db, project_id, perm, project))
		return -1;
	db_res_t *r;
	if (db_exec(db, "SELECT id, name, project_id, timestamp_created, description, template_id, is_starred "
			"FROM workflowv2 WHERE id = $1 AND project_id = $2",
		    (db_param_t[]){ P_INT(workflow_id), P_INT(project_id) }, 2, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error(req, 404, "Workflow not found");
		return -1;
	}
	out->id = db_int(r, 0, 0);
	out->name = arena_strdup(&req->arena, db_text(r, 0, 1));
	out->project_id = db_int(r, 0, 2);
	out->timestamp_created = arena_strdup(&req->arena, db_text(r, 0, 3));
	out->description = db_text(r, 0, 4) ? arena_strdup(&req->arena, db_text(r, 0, 4)) : NULL;
	out->template_id = db_isnull(r, 0, 5) ? 0 : db_int(r, 0, 5);
	out->is_starred = db_bool(r, 0, 6);
	db_res_free(r);
	return 0;
}

void access_set_starred(http_req_t *req, db_t *db, const char *table, int64_t id, int on)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "UPDATE %s SET is_starred = $1 WHERE id = $2", table);
	if (db_exec(db, sql, (db_param_t[]){ P_BOOL(on), P_INT(id) }, 2, NULL))
		api_db_error(req, db);
	else
		http_empty(req, 200);
}
