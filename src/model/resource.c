/* resource.c — see resource.h. Field rules follow upstream's
 * app/schemas/v2/resource.py and profile.py (spec §7.5); unknown keys of a
 * resource are ignored, as upstream's discriminated union does. */
#include "model/resource.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

char *abs_path_normalise(const char *in, const char *field, sb_t *err)
{
	while (isspace((unsigned char)*in))
		in++;
	size_t n = strlen(in);
	while (n && isspace((unsigned char)in[n - 1]))
		n--;
	if (n == 0) {
		sb_addf(err, "%s: String should have at least 1 character", field);
		return NULL;
	}
	if (in[0] != '/') {
		sb_addf(err, "%s: String must be an absolute path (given '%.*s')", field, (int)n, in);
		return NULL;
	}
	/* normpath: collapse "//", drop "." components, refuse ".." */
	sb_t out = SB_INIT;
	const char *p = in, *end = in + n;
	while (p < end) {
		while (p < end && *p == '/')
			p++;
		const char *s = p;
		while (p < end && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			sb_addf(err, "%s: String must not contain '/../' (given '%.*s')", field, (int)n, in);
			sb_release(&out);
			return NULL;
		}
		sb_addc(&out, '/');
		sb_add(&out, s, len);
	}
	if (!out.len)
		sb_addc(&out, '/');
	return sb_detach(&out);
}

static const char *nonempty(json_t *obj, const char *key, int required, sb_t *err, int *bad)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required) {
			sb_addf(err, "%s: Field required", key);
			*bad = 1;
		}
		return NULL;
	}
	if (!json_is_string(v)) {
		sb_addf(err, "%s: Input should be a valid string", key);
		*bad = 1;
		return NULL;
	}
	const char *s = json_string_value(v);
	while (isspace((unsigned char)*s))
		s++;
	if (!*s) {
		sb_addf(err, "%s: String should have at least 1 character", key);
		*bad = 1;
		return NULL;
	}
	return s;
}

static int set_abs(json_t *out, json_t *in, const char *key, int required, sb_t *err)
{
	int bad = 0;
	const char *s = nonempty(in, key, required, err, &bad);
	if (bad)
		return -1;
	if (!s) {
		json_object_set_new(out, key, json_null());
		return 0;
	}
	char *p = abs_path_normalise(s, key, err);
	if (!p)
		return -1;
	json_object_set_new(out, key, json_string(p));
	free(p);
	return 0;
}

static int set_trimmed(json_t *out, json_t *in, const char *key, int required, sb_t *err)
{
	int bad = 0;
	const char *s = nonempty(in, key, required, err, &bad);
	if (bad)
		return -1;
	if (!s) {
		json_object_set_new(out, key, json_null());
		return 0;
	}
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	json_object_set_new(out, key, json_stringn(s, n));
	return 0;
}

static int check_python_config(json_t *cfg, sb_t *err)
{
	static const char *const known[] = { "3.9", "3.10", "3.11", "3.12", "3.13", "3.14" };
	if (!json_is_object(cfg)) {
		sb_adds(err, "tasks_python_config: Input should be a valid dictionary");
		return -1;
	}
	json_t *versions = json_object_get(cfg, "versions");
	json_t *def = json_object_get(cfg, "default_version");
	if (!json_is_object(versions) || json_object_size(versions) == 0) {
		sb_adds(err, "tasks_python_config.versions: Field required (a non-empty object of Python version to interpreter path)");
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(versions, k, v) {
		int ok = 0;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= !strcmp(k, known[i]);
		if (!ok) {
			sb_addf(err, "tasks_python_config.versions: '%s' is not a supported Python version (3.9 to 3.14)", k);
			return -1;
		}
		if (!json_is_string(v) || json_string_value(v)[0] != '/') {
			sb_addf(err, "tasks_python_config.versions.%s: String must be an absolute path", k);
			return -1;
		}
	}
	if (!json_is_string(def) || !json_object_get(versions, json_string_value(def))) {
		sb_adds(err, "tasks_python_config.default_version: must be one of the keys of 'versions'");
		return -1;
	}
	json_t *cache = json_object_get(cfg, "pip_cache_dir");
	if (cache && !json_is_null(cache) && (!json_is_string(cache) || json_string_value(cache)[0] != '/')) {
		sb_adds(err, "tasks_python_config.pip_cache_dir: String must be an absolute path");
		return -1;
	}
	return 0;
}

json_t *resource_validate(json_t *in, sb_t *err)
{
	if (!json_is_object(in)) {
		sb_adds(err, "a resource must be a JSON object");
		return NULL;
	}
	json_t *type = json_object_get(in, "type");
	const char *t = json_is_string(type) ? json_string_value(type) : NULL;
	if (!t || (strcmp(t, "local") && strcmp(t, "slurm_sudo") && strcmp(t, "slurm_ssh"))) {
		sb_adds(err, "type: Input tag should be 'local', 'slurm_sudo' or 'slurm_ssh'");
		return NULL;
	}
	int is_local = !strcmp(t, "local"), is_ssh = !strcmp(t, "slurm_ssh");
	json_t *out = json_object();
	json_object_set_new(out, "type", json_string(t));
	if (set_trimmed(out, in, "name", 1, err) ||
	    (is_ssh ? set_trimmed(out, in, "host", 1, err) : 0) ||
	    set_abs(out, in, "jobs_local_dir", 1, err) ||
	    set_abs(out, in, "jobs_slurm_python_worker", !is_local, err) ||
	    set_abs(out, in, "tasks_local_dir", 1, err))
		goto bad;
	if (!is_ssh) {
		json_t *h = json_object_get(in, "host");
		if (h && !json_is_null(h)) {
			sb_addf(err, "host: must be null for a resource of type '%s'", t);
			goto bad;
		}
		json_object_set_new(out, "host", json_null());
	}
	if (is_local && !json_is_null(json_object_get(out, "jobs_slurm_python_worker")) &&
	    json_object_get(out, "jobs_slurm_python_worker")) {
		/* upstream's local schema has no such field: ignored */
		json_object_set_new(out, "jobs_slurm_python_worker", json_null());
	}
	json_t *poll = json_object_get(in, "jobs_poll_interval");
	if (poll && !json_is_integer(poll)) {
		sb_adds(err, "jobs_poll_interval: Input should be a valid integer");
		goto bad;
	}
	json_object_set_new(out, "jobs_poll_interval", json_integer(poll ? json_integer_value(poll) : 5));
	json_t *rc = json_object_get(in, "jobs_runner_config");
	if (rc && !json_is_object(rc)) {
		sb_adds(err, "jobs_runner_config: Input should be a valid dictionary");
		goto bad;
	}
	if (is_local && rc) {
		const char *k;
		json_t *v;
		json_object_foreach(rc, k, v) {
			if (strcmp(k, "parallel_tasks_per_job")) {
				sb_addf(err, "jobs_runner_config.%s: Extra inputs are not permitted", k);
				goto bad;
			}
			if (!json_is_null(v) && !json_is_integer(v)) {
				sb_adds(err, "jobs_runner_config.parallel_tasks_per_job: Input should be a valid integer");
				goto bad;
			}
		}
	} else if (!is_local && (!rc || !json_object_get(rc, "default_slurm_config") ||
				 !json_object_get(rc, "batching_config"))) {
		sb_adds(err, "jobs_runner_config: default_slurm_config and batching_config are required for SLURM resources");
		goto bad;
	}
	json_object_set_new(out, "jobs_runner_config", rc ? json_deep_copy(rc) : json_object());
	json_t *py = json_object_get(in, "tasks_python_config");
	if (!py) {
		sb_adds(err, "tasks_python_config: Field required");
		goto bad;
	}
	if (check_python_config(py, err))
		goto bad;
	json_object_set_new(out, "tasks_python_config", json_deep_copy(py));
	json_t *pixi = json_object_get(in, "tasks_pixi_config");
	if (pixi && !json_is_object(pixi)) {
		sb_adds(err, "tasks_pixi_config: Input should be a valid dictionary");
		goto bad;
	}
	json_object_set_new(out, "tasks_pixi_config", pixi ? json_deep_copy(pixi) : json_object());
	json_t *prev = json_object_get(in, "prevent_new_submissions");
	if (prev && !json_is_boolean(prev)) {
		sb_adds(err, "prevent_new_submissions: Input should be a valid boolean");
		goto bad;
	}
	json_object_set_new(out, "prevent_new_submissions", json_boolean(prev && json_is_true(prev)));
	return out;
bad:
	json_decref(out);
	return NULL;
}

json_t *profile_validate(json_t *in, const char *resource_type, sb_t *err)
{
	if (!json_is_object(in)) {
		sb_adds(err, "a profile must be a JSON object");
		return NULL;
	}
	json_t *rt = json_object_get(in, "resource_type");
	const char *t = json_is_string(rt) ? json_string_value(rt) : NULL;
	if (!t || (strcmp(t, "local") && strcmp(t, "slurm_sudo") && strcmp(t, "slurm_ssh"))) {
		sb_adds(err, "resource_type: Input tag should be 'local', 'slurm_sudo' or 'slurm_ssh'");
		return NULL;
	}
	if (resource_type && strcmp(t, resource_type)) {
		sb_addf(err, "resource_type: profile is for '%s' but the resource is of type '%s'", t, resource_type);
		return NULL;
	}
	int is_ssh = !strcmp(t, "slurm_ssh"), is_sudo = !strcmp(t, "slurm_sudo");
	json_t *out = json_object();
	json_object_set_new(out, "resource_type", json_string(t));
	const char *ssh_fields[] = { "ssh_key_path", "jobs_remote_dir", "tasks_remote_dir", "pixi_cache_dir" };
	if (set_trimmed(out, in, "name", 1, err) ||
	    set_trimmed(out, in, "username", is_ssh || is_sudo, err))
		goto bad;
	for (int i = 0; i < 4; i++) {
		if (is_ssh) {
			if (set_abs(out, in, ssh_fields[i], i < 3, err))
				goto bad;
		} else {
			json_t *v = json_object_get(in, ssh_fields[i]);
			if (v && !json_is_null(v)) {
				sb_addf(err, "%s: must be null for a profile of type '%s'", ssh_fields[i], t);
				goto bad;
			}
			json_object_set_new(out, ssh_fields[i], json_null());
		}
	}
	if (!is_ssh && !is_sudo && !json_is_null(json_object_get(out, "username"))) {
		sb_adds(err, "username: must be null for a profile of type 'local'");
		goto bad;
	}
	return out;
bad:
	json_decref(out);
	return NULL;
}

static char *dump(json_t *obj, const char *key)
{
	return json_dumps(json_object_get(obj, key), JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
}

static const char *str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key)); /* NULL for null */
}

int resource_insert(db_t *db, json_t *res, int64_t *id)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	char *runner = dump(res, "jobs_runner_config");
	char *py = dump(res, "tasks_python_config");
	char *pixi = dump(res, "tasks_pixi_config");
	db_param_t p[] = {
		P_TEXT(str(res, "type")), P_TEXT(str(res, "name")), P_TS(now), P_TEXT(str(res, "host")),
		P_TEXT(str(res, "jobs_local_dir")), P_JSON(runner), P_TEXT(str(res, "jobs_slurm_python_worker")),
		P_INT(json_integer_value(json_object_get(res, "jobs_poll_interval"))),
		P_TEXT(str(res, "tasks_local_dir")), P_JSON(py), P_JSON(pixi),
		P_BOOL(json_is_true(json_object_get(res, "prevent_new_submissions"))),
	};
	db_res_t *r;
	int rc = db_exec(db, "INSERT INTO resource (type, name, timestamp_created, host, jobs_local_dir, "
			 "jobs_runner_config, jobs_slurm_python_worker, jobs_poll_interval, tasks_local_dir, "
			 "tasks_python_config, tasks_pixi_config, prevent_new_submissions) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id", p, 12, &r);
	free(runner);
	free(py);
	free(pixi);
	if (rc)
		return -1;
	*id = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

int profile_insert(db_t *db, json_t *prof, int64_t resource_id, int64_t *id)
{
	db_param_t p[] = {
		P_INT(resource_id), P_TEXT(str(prof, "resource_type")), P_TEXT(str(prof, "name")),
		P_TEXT(str(prof, "username")), P_TEXT(str(prof, "ssh_key_path")),
		P_TEXT(str(prof, "jobs_remote_dir")), P_TEXT(str(prof, "tasks_remote_dir")),
		P_TEXT(str(prof, "pixi_cache_dir")),
	};
	db_res_t *r;
	if (db_exec(db, "INSERT INTO profile (resource_id, resource_type, name, username, ssh_key_path, "
		    "jobs_remote_dir, tasks_remote_dir, pixi_cache_dir) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		    "RETURNING id", p, 8, &r))
		return -1;
	*id = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}
