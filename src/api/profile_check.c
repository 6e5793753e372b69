/* profile_check.c — see profile_check.h. The rows are turned back into the
 * documents upstream validates (model_dump without id and timestamp, resp.
 * without id and resource_id) and go through model/resource.c, whose error
 * text is pydantic's str(ValidationError), as upstream's message embeds. */
#include "api/profile_check.h"

#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "model/resource.h"

static json_t *text_or_null(db_res_t *r, int c)
{
	const char *s = db_text(r, 0, c);
	return s ? json_string(s) : json_null();
}

static json_t *json_or_null(db_res_t *r, int c)
{
	const char *s = db_text(r, 0, c);
	json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
	return v ? v : json_null();
}

void user_profile_release(user_profile_t *p)
{
	json_decref(p->resource);
	json_decref(p->profile);
	memset(p, 0, sizeof(*p));
}

int validate_user_profile(http_req_t *req, db_t *db, const char *email, int64_t profile_id, user_profile_t *out)
{
	memset(out, 0, sizeof(*out));
	if (!profile_id) {
		http_errorf(req, 422, "User %s is not associated to a computational profile. Please contact an admin.",
			    email);
		return -1;
	}
	db_res_t *r;
	if (db_exec(db, "SELECT p.name, p.resource_type, p.username, p.ssh_key_path, p.jobs_remote_dir, "
			"p.tasks_remote_dir, p.pixi_cache_dir, r.id, r.name, r.type, r.prevent_new_submissions, r.host, "
			"r.jobs_local_dir, r.jobs_runner_config, r.jobs_slurm_python_worker, r.jobs_poll_interval, "
			"r.tasks_local_dir, r.tasks_python_config, r.tasks_pixi_config "
			"FROM profile p JOIN resource r ON r.id = p.resource_id WHERE p.id = $1",
		    (db_param_t[]){ P_INT(profile_id) }, 1, &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		/* a foreign key keeps this from happening; upstream's get_one
		 * would raise (500) */
		db_res_free(r);
		http_error_500(req, "profile %lld has no resource", (long long)profile_id);
		return -1;
	}
	json_t *prof = json_object();
	static const char *const pkeys[] = { "name", "resource_type", "username", "ssh_key_path", "jobs_remote_dir",
					     "tasks_remote_dir", "pixi_cache_dir" };
	for (int i = 0; i < 7; i++)
		json_object_set_new(prof, pkeys[i], text_or_null(r, i));
	json_t *res = json_object();
	int64_t resource_id = db_int(r, 0, 7);
	json_object_set_new(res, "name", text_or_null(r, 8));
	json_object_set_new(res, "type", text_or_null(r, 9));
	json_object_set_new(res, "prevent_new_submissions", json_boolean(db_bool(r, 0, 10)));
	json_object_set_new(res, "host", text_or_null(r, 11));
	json_object_set_new(res, "jobs_local_dir", text_or_null(r, 12));
	json_object_set_new(res, "jobs_runner_config", json_or_null(r, 13));
	json_object_set_new(res, "jobs_slurm_python_worker", text_or_null(r, 14));
	json_object_set_new(res, "jobs_poll_interval", json_integer(db_int(r, 0, 15)));
	json_object_set_new(res, "tasks_local_dir", text_or_null(r, 16));
	json_object_set_new(res, "tasks_python_config", json_or_null(r, 17));
	json_object_set_new(res, "tasks_pixi_config", json_or_null(r, 18));
	char *type = xstrdup(db_text(r, 0, 9) ? db_text(r, 0, 9) : "");
	db_res_free(r);

	sb_t err = SB_INIT;
	json_t *vres = resource_validate(res, &err);
	json_t *vprof = vres ? profile_validate(prof, NULL, &err) : NULL;
	json_decref(res);
	json_decref(prof);
	if (!vres || !vprof) {
		sb_t msg = SB_INIT;
		sb_addf(&msg, "User resource/profile are not valid for resource type '%s'. Original error: %s", type,
			err.buf);
		log_warning("%s", msg.buf);
		http_error(req, 422, msg.buf);
		sb_release(&msg);
		sb_release(&err);
		json_decref(vres);
		free(type);
		return -1;
	}
	sb_release(&err);
	free(type);
	json_object_set_new(vres, "id", json_integer(resource_id));
	json_object_set_new(vprof, "id", json_integer(profile_id));
	json_object_set_new(vprof, "resource_id", json_integer(resource_id));
	out->resource = vres;
	out->profile = vprof;
	out->resource_id = resource_id;
	out->profile_id = profile_id;
	out->resource_type = json_string_value(json_object_get(vres, "type"));
	return 0;
}

int validate_user_profile_by_id(http_req_t *req, db_t *db, int64_t user_id, user_profile_t *out)
{
	memset(out, 0, sizeof(*out));
	db_res_t *r;
	if (db_exec(db, "SELECT email, profile_id FROM user_oauth WHERE id = $1", (db_param_t[]){ P_INT(user_id) }, 1,
		    &r)) {
		api_db_error(req, db);
		return -1;
	}
	if (!db_nrows(r)) {
		db_res_free(r);
		http_error_500(req, "no user %lld", (long long)user_id);
		return -1;
	}
	const char *email = arena_strdup(&req->arena, db_text(r, 0, 0));
	int64_t pid = db_isnull(r, 0, 1) ? 0 : db_int(r, 0, 1);
	db_res_free(r);
	return validate_user_profile(req, db, email, pid, out);
}
