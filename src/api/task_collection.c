/* task_collection.c — POST /api/v2/task/collect/{pip,custom,pixi}/, as
 * upstream's routes/api/v2/task_collection*.py. pip and pixi insert the
 * task group and a `pending` collect activity, hand the work to collect/
 * and answer 202 at once; custom collection registers the manifest's
 * tasks right away (201), with no activity and no folder. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/common.h"
#include "api/lifecycle.h"
#include "api/params.h"
#include "api/profile_check.h"
#include "api/task_common.h"
#include "collect/collect.h"
#include "collect/pypi.h"
#include "http/form.h"
#include "model/pyrepr.h"
#include "model/resource.h"
#include "model/task.h"
#include "util/proc.h"
#include "util/timeutil.h"

#define PY_VERSIONS "'3.9', '3.10', '3.11', '3.12', '3.13' or '3.14'"

static int python_version_valid(const char *v)
{
	static const char *const ok[] = { "3.9", "3.10", "3.11", "3.12", "3.13", "3.14" };
	for (int i = 0; i < 6; i++)
		if (!strcmp(v, ok[i]))
			return 1;
	return 0;
}

/* A form field's text (the value, or NULL when absent). */
static const char *form_text(const http_form_t *f, const char *name)
{
	const http_form_field_t *x = http_form_get(f, name);
	return x && !x->filename ? x->data : NULL;
}

/* NonEmptyStr + validate_cmd of a TaskCollectPip field. */
static json_t *pip_str(const char *name, const char *v, verr_t *e)
{
	if (!v)
		return NULL;
	const vfield_t f = { .type = V_NONEMPTY };
	json_t *loc = json_pack("[s]", name), *in = json_string(v);
	json_t *out = v_value(&f, in, loc, e);
	if (out) {
		sb_t msg = SB_INIT;
		if (task_validate_cmd(json_string_value(out), NULL, NULL, &msg)) {
			sb_t full = SB_INIT;
			sb_addf(&full, "Value error, %s", msg.buf);
			verr_add(e, "value_error", json_incref(loc), full.buf, out, json_pack("{s:{}}", "error"));
			sb_release(&full);
			json_decref(out);
			out = NULL;
		}
		sb_release(&msg);
	}
	json_decref(in);
	json_decref(loc);
	return out;
}

/* DictStrStr with validate_cmd on keys (allowing []) and values. */
static json_t *pip_pinned(const char *name, json_t *d, verr_t *e)
{
	json_t *loc = json_pack("[s]", name);
	json_t *out = NULL;
	if (!json_is_object(d)) {
		verr_add(e, "dict_type", json_incref(loc), "Input should be a valid dictionary", d, NULL);
		goto done;
	}
	out = json_object();
	const char *k;
	json_t *v;
	const vfield_t nonempty = { .type = V_NONEMPTY };
	json_object_foreach(d, k, v) {
		json_t *kl = json_copy(loc);
		json_array_append_new(kl, json_string(k));
		json_t *s = v_value(&nonempty, v, kl, e);
		json_decref(kl);
		if (!s) {
			json_decref(out);
			out = NULL;
			goto done;
		}
		size_t n = strlen(k);
		const char *ks = k;
		while (n && isspace((unsigned char)*ks)) {
			ks++;
			n--;
		}
		while (n && isspace((unsigned char)ks[n - 1]))
			n--;
		char *key = xstrndup(ks, n);
		sb_t msg = SB_INIT;
		const char *why = !n ? "Empty string in dictionary keys."
				     : task_validate_cmd(key, "[]", NULL, &msg);
		if (!why)
			why = task_validate_cmd(json_string_value(s), NULL, NULL, &msg);
		if (!why && json_object_get(out, key))
			why = "Dictionary contains multiple identical keys.";
		if (why) {
			sb_t full = SB_INIT;
			sb_addf(&full, "Value error, %s", why);
			verr_add(e, "value_error", json_incref(loc), full.buf, d, json_pack("{s:{}}", "error"));
			sb_release(&full);
			json_decref(out);
			out = NULL;
		} else {
			json_object_set(out, key, s);
		}
		sb_release(&msg);
		free(key);
		json_decref(s);
		if (!out)
			goto done;
	}
done:
	json_decref(loc);
	return out;
}

/* A JSON-object form field (json.loads), or NULL: absent/empty (*bad 0) or
 * invalid (*bad 1, message in msg). */
static json_t *form_json(const char *text, sb_t *msg, int *bad)
{
	*bad = 0;
	if (!text || !*text)
		return NULL;
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!v) {
		sb_addf(msg, "%s: line %d column %d (char %d)", jerr.text, jerr.line, jerr.column, jerr.position);
		*bad = 1;
	}
	return v;
}

/* The request's TaskCollectPip + file, validated as upstream's
 * parse_request_data: "Invalid request-body\n<error>" on failure. */
typedef struct pip_req {
	json_t *tc;                    /* validated TaskCollectPip fields */
	const http_form_field_t *file;
	const char *python_version;
} pip_req_t;

static int parse_pip_request(http_req_t *req, pip_req_t *out)
{
	memset(out, 0, sizeof(*out));
	http_form_t form;
	const char *why;
	if (http_form_parse(req, &form, &why)) {
		http_error(req, 400, why);
		return -1;
	}
	/* python_version is a FastAPI form parameter: its error is FastAPI's */
	const char *pv = form_text(&form, "python_version");
	if (pv && !python_version_valid(pv)) {
		verr_t e;
		verr_init(&e);
		json_t *in = json_string(pv);
		verr_add(&e, "literal_error", json_pack("[s,s]", "body", "python_version"), "Input should be " PY_VERSIONS, in,
			 json_pack("{s:s}", "expected", PY_VERSIONS));
		json_decref(in);
		verr_reply(&e, req);
		return -1;
	}
	out->python_version = pv;
	const http_form_field_t *file = http_form_get(&form, "file");
	if (file && !file->filename)
		file = NULL;
	out->file = file;
	sb_t msg = SB_INIT;
	int bad_pre, bad_post;
	json_t *pre = form_json(form_text(&form, "pinned_package_versions_pre"), &msg, &bad_pre);
	json_t *post = bad_pre ? NULL : form_json(form_text(&form, "pinned_package_versions_post"), &msg, &bad_post);
	if (bad_pre || (!bad_pre && bad_post)) {
		http_errorf(req, 422, "Invalid request-body\n%s", msg.buf);
		sb_release(&msg);
		json_decref(pre);
		return -1;
	}
	verr_t e;
	verr_init(&e);
	json_t *tc = json_object();
	static const char *const strs[] = { "package", "package_version", "package_extras" };
	for (int i = 0; i < 3; i++) {
		json_t *v = pip_str(strs[i], form_text(&form, strs[i]), &e);
		if (v)
			json_object_set_new(tc, strs[i], v);
	}
	if (pv)
		json_object_set_new(tc, "python_version", json_string(pv));
	if (pre) {
		json_t *v = pip_pinned("pinned_package_versions_pre", pre, &e);
		if (v)
			json_object_set_new(tc, "pinned_package_versions_pre", v);
	}
	if (post) {
		json_t *v = pip_pinned("pinned_package_versions_post", post, &e);
		if (v)
			json_object_set_new(tc, "pinned_package_versions_post", v);
	}
	json_decref(pre);
	json_decref(post);
	if (json_array_size(e.list)) {
		sb_adds(&msg, "Invalid request-body\n");
		verr_render(e.list, "TaskCollectPip", &msg);
		goto bad;
	}
	/* CollectionRequestData's model validator */
	const char *package = json_string_value(json_object_get(tc, "package"));
	const char *pversion = json_string_value(json_object_get(tc, "package_version"));
	sb_t reason = SB_INIT;
	if (!file) {
		if (!package)
			sb_adds(&reason, "When no `file` is provided, `package` is required.");
	} else if (package) {
		sb_addf(&reason, "Cannot set `package` when `file` is provided (given package='%s').", package);
	} else if (pversion) {
		sb_addf(&reason, "Cannot set `package_version` when `file` is provided (given package_version='%s').",
			pversion);
	} else if (strchr(file->filename, ';') || strchr(file->filename, '/')) {
		sb_adds(&reason, "Wheel filename has forbidden characters, [';', '/']");
	}
	if (reason.len) {
		sb_t full = SB_INIT;
		sb_addf(&full, "Value error, %s", reason.buf);
		json_t *in = json_pack("{s:s,s:s?}", "task_collect", "TaskCollectPip(...)", "file",
				       file ? file->filename : NULL);
		verr_add(&e, "value_error", json_array(), full.buf, in, json_pack("{s:{}}", "error"));
		json_decref(in);
		sb_release(&full);
		sb_adds(&msg, "Invalid request-body\n");
		verr_render(e.list, "CollectionRequestData", &msg);
		sb_release(&reason);
		goto bad;
	}
	sb_release(&reason);
	verr_free(&e);
	sb_release(&msg);
	out->tc = tc;
	return 0;
bad:
	http_error(req, 422, msg.buf);
	sb_release(&msg);
	verr_free(&e);
	json_decref(tc);
	return -1;
}

/* An error whose detail upstream gives as a one-element tuple. */
static void error_tuple(http_req_t *req, int status, const char *text)
{
	sb_t d = SB_INIT;
	sb_addc(&d, '[');
	sb_add_json_str(&d, text);
	sb_addc(&d, ']');
	http_error_json(req, status, d.buf);
	sb_release(&d);
}

/* <base>/<user_id>/<pkg_name>/<version>, which must stay inside base
 * (upstream's verify_url_is_relative_to raises, a 500). NULL after
 * answering. */
static char *group_path(http_req_t *req, const user_profile_t *up, const char *pkg_name, const char *version)
{
	const char *base = !strcmp(up->resource_type, "slurm_ssh")
				   ? json_string_value(json_object_get(up->profile, "tasks_remote_dir"))
				   : json_string_value(json_object_get(up->resource, "tasks_local_dir"));
	if (!base) {
		http_error_500(req, "the resource has no tasks directory");
		return NULL;
	}
	char *path = arena_printf(&req->arena, "%s/%lld/%s/%s", base, (long long)req->user->id, pkg_name, version);
	/* normpath: a ".." component (or an absolute-looking version) would
	 * leave base */
	int outside = strstr(version, "..") != NULL || strstr(pkg_name, "..") != NULL || strchr(version, '/') != NULL;
	if (outside) {
		http_error_500(req, "task-group path %s is not relative to %s", path, base);
		return NULL;
	}
	if (v_utf8_chars(path, strlen(path)) > V_INDEXED_MAX_LENGTH) {
		/* ours: the path is in a PostgreSQL index (see validate.h); said
		 * as upstream says TaskGroupCreateStrict's other errors */
		verr_t e;
		verr_init(&e);
		json_t *in = json_string(path);
		v_add_too_long(&e, json_pack("[s]", "path"), in, V_INDEXED_MAX_LENGTH);
		json_decref(in);
		sb_t m = SB_INIT;
		sb_adds(&m, "Invalid task-group object. Original error: ");
		verr_render(e.list, "TaskGroupCreateStrict", &m);
		http_error(req, 422, m.buf);
		sb_release(&m);
		verr_free(&e);
		return NULL;
	}
	return path;
}

/* Inserts the task group (pip or pixi) and its pending collect activity,
 * then starts the background job and answers 202. */
static void create_and_start(http_req_t *req, db_t *db, const user_profile_t *up, collect_req_t *cr, const char *origin,
			     const char *pkg_name, const char *version, const char *python_version,
			     const char *pixi_version, const char *path, const char *venv_path, const char *pip_extras,
			     const char *pinned_pre, const char *pinned_post, int64_t group_id)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r = NULL;
	/* the duplicate checks span users and groups: one section for all
	 * task-group creations */
	if (api_begin_locked(req, db, "task-group", 0))
		return;
	if (nondup_user(req, db, req->user->id, pkg_name, version, up->resource_id) ||
	    nondup_group(req, db, group_id, pkg_name, version)) {
		db_rollback(db);
		return;
	}
	struct stat st;
	if (strcmp(up->resource_type, "slurm_ssh") && stat(path, &st) == 0) {
		db_rollback(db);
		http_errorf(req, 422, "%s already exists.", path);
		return;
	}
	if (db_exec(db, "INSERT INTO taskgroupv2 (user_id, user_group_id, resource_id, origin, pkg_name, version, "
			"python_version, pixi_version, path, venv_path, pip_extras, pinned_package_versions_pre, "
			"pinned_package_versions_post, active, timestamp_created, timestamp_last_used) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING id",
		    (db_param_t[]){ P_INT(req->user->id), group_id ? P_INT(group_id) : P_NULL, P_INT(up->resource_id),
				    P_TEXT(origin), P_TEXT(pkg_name), P_TEXT(version), P_TEXT(python_version),
				    P_TEXT(pixi_version), P_TEXT(path), P_TEXT(venv_path), P_TEXT(pip_extras),
				    P_JSON(pinned_pre ? pinned_pre : "{}"), P_JSON(pinned_post ? pinned_post : "{}"), P_BOOL(1),
				    P_TS(now) },
		    15, &r))
		goto dberr;
	int64_t tgid = db_int(r, 0, 0);
	db_res_free(r);
	r = NULL;
	int64_t aid;
	if (activity_insert(db, req->user->id, tgid, pkg_name, version, ACT_PENDING, "collect", NULL, 0, &aid))
		goto dberr;
	if (db_commit(db))
		goto dberr;
	cr->task_group_id = tgid;
	cr->activity_id = aid;
	cr->resource = up->resource;
	cr->profile = up->profile;
	/* the answer shows the activity as created (pending): read it before
	 * the background job can move it on */
	activity_reply(req, db, aid, 202);
	collect_start(db, cr);
	return;
dberr:
	db_res_free(r);
	if (db_errclass(db) == DB_ERR_CONSTRAINT) {
		http_error(req, 422, db_errmsg(db));
		db_rollback(db);
	} else {
		api_db_abort(req, db);
	}
}

void api_task_collect_pip(http_req_t *req)
{
	/* upstream solves its form dependency before the user's, so that an
	 * anonymous bad form would get the 422; authentication comes first
	 * here, as for every other route */
	pip_req_t pr;
	if (parse_pip_request(req, &pr))
		return;
	user_profile_t up = { 0 };
	ownership_t own;
	if (query_ownership(req, &own))
		goto out;
	db_t *db = req->db;
	if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up))
		goto out;
	const char *pyv = pr.python_version;
	if (!pyv)
		pyv = json_string_value(json_object_get(json_object_get(up.resource, "tasks_python_config"),
							"default_version"));
	else if (!json_object_get(json_object_get(json_object_get(up.resource, "tasks_python_config"), "versions"), pyv)) {
		http_errorf(req, 422, "Python version %s is not available for this Fractal resource.", pyv);
		goto out;
	}
	const char *pkg_name, *version;
	collect_req_t cr = { .kind = CK_COLLECT_PIP };
	if (pr.file) {
		const char *fn = pr.file->filename;
		const char *dash = strchr(fn, '-');
		/* an empty distribution ("-.whl"): upstream goes on with pkg_name ""
		 * and a path without that component; ours refuses it in the shape
		 * of its other wheel-name errors */
		if (strchr(fn, '/') || !dash || dash == fn) {
			sb_t m = SB_INIT;
			if (strchr(fn, '/'))
				sb_addf(&m, "Invalid wheel-file name %s. Original error: [_parse_wheel_filename] Input must be "
					    "a filename, not a full path (given: %s).", fn, fn);
			else if (!dash)
				sb_addf(&m, "Invalid wheel-file name %s. Original error: Invalid wheel_filename='%s'. "
					    "Original error: list index out of range.", fn, fn);
			else
				sb_addf(&m, "Invalid wheel-file name %s. Original error: Invalid wheel_filename='%s'. "
					    "Original error: empty distribution name.", fn, fn);
			error_tuple(req, 422, m.buf);
			sb_release(&m);
			goto out;
		}
		char *dist = xstrndup(fn, (size_t)(dash - fn));
		char *norm = pkg_normalize(dist);
		free(dist);
		pkg_name = arena_strdup(&req->arena, norm);
		free(norm);
		const char *vend = strchr(dash + 1, '-');
		version = arena_strndup(&req->arena, dash + 1, vend ? (size_t)(vend - dash - 1) : strlen(dash + 1));
		cr.file_name = fn;
		cr.file_data = pr.file->data;
		cr.file_len = pr.file->len;
	} else {
		const char *package = json_string_value(json_object_get(pr.tc, "package"));
		char *norm = pkg_normalize(package);
		pkg_name = arena_strdup(&req->arena, norm);
		free(norm);
		char *resolved = NULL;
		sb_t msg = SB_INIT;
		if (pypi_resolve(package, json_string_value(json_object_get(pr.tc, "package_version")), &resolved, &msg)) {
			http_error(req, 422, msg.buf);
			sb_release(&msg);
			goto out;
		}
		sb_release(&msg);
		version = arena_strdup(&req->arena, resolved);
		free(resolved);
	}
	int64_t group_id;
	if (valid_user_group_id(req, db, &own, &group_id))
		goto out;
	const char *path = group_path(req, &up, pkg_name, version);
	if (!path)
		goto out;
	const char *venv = arena_printf(&req->arena, "%s/venv", path);
	if (!*version) {
		http_error(req, 422, "Invalid task-group object. Original error: 1 validation error for "
				     "TaskGroupCreateStrict\nversion\n  String should have at least 1 character "
				     "[type=string_too_short, input_value='', input_type=str]");
		goto out;
	}
	char *pre = NULL, *post = NULL;
	json_t *jpre = json_object_get(pr.tc, "pinned_package_versions_pre");
	json_t *jpost = json_object_get(pr.tc, "pinned_package_versions_post");
	if (jpre)
		pre = json_dump_py(jpre);
	if (jpost)
		post = json_dump_py(jpost);
	create_and_start(req, db, &up, &cr, pr.file ? "wheel-file" : "pypi", pkg_name, version, pyv, NULL, path, venv,
			 json_string_value(json_object_get(pr.tc, "package_extras")), pre, post, group_id);
	free(pre);
	free(post);
out:
	user_profile_release(&up);
	json_decref(pr.tc);
}

void api_task_collect_pixi(http_req_t *req)
{
	http_form_t form;
	const char *why;
	if (http_form_parse(req, &form, &why)) {
		http_error(req, 400, why);
		return;
	}
	const http_form_field_t *file = http_form_get(&form, "file");
	const char *pixi_version = form_text(&form, "pixi_version");
	const char *lock = form_text(&form, "use_pixi_lockfile");
	int use_lock = 1;
	verr_t e;
	verr_init(&e);
	if (!file || !file->filename) {
		verr_add(&e, "missing", json_pack("[s,s]", "body", "file"), "Field required", NULL, NULL);
	}
	if (pixi_version) {
		const vfield_t f = { .type = V_NONEMPTY };
		json_t *in = json_string(pixi_version), *loc = json_pack("[s,s]", "body", "pixi_version");
		json_t *v = v_value(&f, in, loc, &e);
		if (v)
			pixi_version = arena_strdup(&req->arena, json_string_value(v));
		json_decref(v);
		json_decref(in);
		json_decref(loc);
	}
	if (lock) {
		const vfield_t f = { .type = V_BOOL };
		json_t *in = json_string(lock), *loc = json_pack("[s,s]", "body", "use_pixi_lockfile");
		json_t *v = v_value(&f, in, loc, &e);
		if (v)
			use_lock = json_is_true(v);
		json_decref(v);
		json_decref(in);
		json_decref(loc);
	}
	if (verr_reply(&e, req))
		return;
	user_profile_t up = { 0 };
	ownership_t own;
	if (query_ownership(req, &own))
		goto out;
	db_t *db = req->db;
	if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up))
		goto out;
	json_t *cfg = json_object_get(up.resource, "tasks_pixi_config");
	if (!json_is_object(cfg) || !json_object_size(cfg)) {
		http_error(req, 422, "Pixi task collection is not available.");
		goto out;
	}
	if (!pixi_version) {
		pixi_version = json_string_value(json_object_get(cfg, "default_version"));
	} else if (!json_object_get(json_object_get(cfg, "versions"), pixi_version)) {
		sb_t m = SB_INIT;
		sb_addf(&m, "Pixi version '%s' is not available. Available versions: [", pixi_version);
		const char *k;
		json_t *v;
		int first = 1;
		json_object_foreach(json_object_get(cfg, "versions"), k, v) {
			sb_adds(&m, first ? "" : ", ");
			py_repr_str(&m, k, strlen(k));
			first = 0;
		}
		sb_adds(&m, "]");
		http_error(req, 422, m.buf);
		sb_release(&m);
		goto out;
	}
	/* validate_pkgname_and_version */
	const char *fn = file->filename;
	size_t fl = strlen(fn);
	if (fl < 7 || strcmp(fn + fl - 7, ".tar.gz")) {
		http_errorf(req, 422, "filename='%s' does not end with '.tar.gz'.", fn);
		goto out;
	}
	const char *dash = strchr(fn, '-');
	if (!dash || strchr(dash + 1, '-')) {
		http_errorf(req, 422, "Invalid filename: '%s' must contain a single `-` character, separating the package "
				      "name from the version (expected format: 'pkg_name-version').", fn);
		goto out;
	}
	char *dist = xstrndup(fn, (size_t)(dash - fn));
	char *norm = pkg_normalize(dist);
	free(dist);
	const char *pkg_name = arena_strdup(&req->arena, norm);
	free(norm);
	const char *version = arena_strndup(&req->arena, dash + 1, (size_t)(fn + fl - 7 - dash - 1));
	int64_t group_id;
	if (valid_user_group_id(req, db, &own, &group_id))
		goto out;
	const char *path = group_path(req, &up, pkg_name, version);
	if (!path)
		goto out;
	collect_req_t cr = { .kind = CK_COLLECT_PIXI, .file_name = fn, .file_data = file->data, .file_len = file->len,
			     .use_pixi_lockfile = use_lock };
	create_and_start(req, db, &up, &cr, "pixi", pkg_name, version, NULL, pixi_version, path, NULL, NULL, NULL, NULL,
			 group_id);
out:
	user_profile_release(&up);
}

/* ---- custom ---- */

static const vfield_t custom_fields[] = {
	{ .name = "manifest", .type = V_ANY, .required = 1 },
	{ .name = "python_interpreter", .type = V_NONEMPTY, .required = 1, .check = check_abspath },
	{ .name = "label", .type = V_NONEMPTY, .required = 1 },
	{ .name = "package_root", .type = V_NONEMPTY, .nullable = 1, .check = check_abspath },
	{ .name = "package_name", .type = V_NONEMPTY, .nullable = 1 },
	{ .name = "version", .type = V_NONEMPTY, .required = 1 },
};

/* TaskCollectCustom: a new object, or NULL after the 422. */
static json_t *parse_custom(http_req_t *req)
{
	verr_t e;
	verr_init(&e);
	json_t *body = v_parse_body(req, &e), *out = NULL;
	if (!body)
		goto done;
	json_t *base = json_pack("[s]", "body");
	if (!json_is_object(body)) {
		v_add_not_object(&e, json_incref(base), body);
	} else {
		/* the model validator runs before the fields (mode="before") */
		json_t *root = json_object_get(body, "package_root"), *name = json_object_get(body, "package_name");
		int has_root = root && !json_is_null(root), has_name = name && !json_is_null(name);
		if (has_root == has_name) {
			verr_add(&e, "value_error", json_incref(base),
				 "Value error, One and only one must be set between 'package_root' and 'package_name'", body,
				 json_pack("{s:{}}", "error"));
		} else {
			out = v_object(body, custom_fields, (int)(sizeof(custom_fields) / sizeof(*custom_fields)), 1, base, &e);
			json_t *m = json_object_get(body, "manifest");
			if (m) {
				json_t *loc = json_pack("[s,s]", "body", "manifest");
				json_t *man = manifest_check(m, loc, &e);
				json_decref(loc);
				if (man)
					json_object_set_new(out, "manifest", man);
			}
			const char *pn = json_string_value(json_object_get(out, "package_name"));
			sb_t msg = SB_INIT;
			if (pn && task_validate_cmd(pn, NULL, NULL, &msg)) {
				sb_t full = SB_INIT;
				sb_addf(&full, "Value error, %s", msg.buf);
				verr_add(&e, "value_error", json_pack("[s,s]", "body", "package_name"), full.buf,
					 json_object_get(out, "package_name"), json_pack("{s:{}}", "error"));
				sb_release(&full);
			}
			sb_release(&msg);
		}
	}
	json_decref(base);
done:
	json_decref(body);
	if (verr_reply(&e, req)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* The package's folder as the interpreter finds it (find_spec), or NULL
 * after the 422. */
static char *find_package_root(http_req_t *req, const char *python, const char *package_name)
{
	char *underscore = arena_strdup(&req->arena, package_name);
	for (char *p = underscore; *p; p++)
		if (*p == '-')
			*p = '_';
	sb_t msg = SB_INIT;
	if (task_validate_cmd(underscore, NULL, NULL, &msg)) {
		http_error(req, 422, msg.buf);
		sb_release(&msg);
		return NULL;
	}
	sb_release(&msg);
	char dir[] = "/tmp/fractal-custom.XXXXXX";
	char *result = NULL;
	if (!mkdtemp(dir)) {
		http_error_500(req, "mkdtemp(%s): %s", dir, strerror(errno));
		return NULL;
	}
	char *out_path = arena_printf(&req->arena, "%s/out", dir), *err_path = arena_printf(&req->arena, "%s/err", dir);
	/* upstream writes the name into the Python code; here it is an
	 * argument, so that a quote in it cannot end the string literal */
	char code[] = "import importlib.util, sys; from pathlib import Path; "
		      "init_path=importlib.util.find_spec(sys.argv[1]).origin; print(Path(init_path).parent.as_posix())";
	char *argv[] = { (char *)python, "-c", code, underscore, NULL };
	const char *why = NULL;
	pid_t pid = proc_start2(argv, NULL, out_path, err_path, &why);
	int rc = pid < 0 ? PROC_ERROR : proc_wait(pid);
	sb_t so = SB_INIT, se = SB_INIT;
	FILE *f;
	char buf[4096];
	size_t n;
	if ((f = fopen(out_path, "r"))) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			sb_add(&so, buf, n);
		fclose(f);
	}
	if ((f = fopen(err_path, "r"))) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			sb_add(&se, buf, n);
		fclose(f);
	}
	unlink(out_path);
	unlink(err_path);
	rmdir(dir);
	/* stdout stripped of newlines at both ends must be one line */
	size_t b = 0, e = so.len;
	while (b < e && so.buf[b] == '\n')
		b++;
	while (e > b && so.buf[e - 1] == '\n')
		e--;
	if (rc != 0 || memchr(so.buf + b, '\n', e - b)) {
		http_errorf(req, 422, "Cannot determine 'package_root'.\nOriginal output: %s\nOriginal error: %s", so.buf,
			    why && pid < 0 ? why : se.buf);
	} else {
		result = arena_strndup(&req->arena, so.buf + b, e - b);
	}
	sb_release(&so);
	sb_release(&se);
	return result;
}

void api_task_collect_custom(http_req_t *req)
{
	ownership_t own;
	if (query_ownership(req, &own))
		return;
	json_t *b = parse_custom(req);
	if (!b)
		return;
	user_profile_t up = { 0 };
	json_t *tasks = NULL;
	db_t *db = req->db;
	if (validate_user_profile(req, db, req->user->email, req->user->profile_id, &up))
		goto out;
	int64_t group_id;
	if (valid_user_group_id(req, db, &own, &group_id))
		goto out;
	const char *python = json_string_value(json_object_get(b, "python_interpreter"));
	const char *root = json_string_value(json_object_get(b, "package_root"));
	if (!strcmp(up.resource_type, "slurm_ssh")) {
		if (!root) {
			http_error(req, 422, "Cannot infer 'package_root' with 'slurm_ssh' backend.");
			goto out;
		}
	} else {
		struct stat st;
		if (access(python, X_OK) || access(python, R_OK)) {
			http_errorf(req, 422, "task_collect.python_interpreter='%s' is not accessible to the Fractal user or it "
					      "is not executable.", python);
			goto out;
		}
		if (stat(python, &st) || !S_ISREG(st.st_mode)) {
			http_errorf(req, 422, "task_collect.python_interpreter='%s' is not a file.", python);
			goto out;
		}
		if (root) {
			if (access(root, R_OK)) {
				http_errorf(req, 422, "task_collect.package_root='%s' is not accessible to the Fractal user.", root);
				goto out;
			}
			if (stat(root, &st) || !S_ISDIR(st.st_mode)) {
				http_errorf(req, 422, "task_collect.package_root='%s' is not a directory.", root);
				goto out;
			}
		}
	}
	if (!root) {
		root = find_package_root(req, python, json_string_value(json_object_get(b, "package_name")));
		if (!root)
			goto out;
	}
	const char *label = json_string_value(json_object_get(b, "label"));
	const char *version = json_string_value(json_object_get(b, "version"));
	verr_t e;
	verr_init(&e);
	tasks = manifest_tasks(json_object_get(b, "manifest"), root, python, version, &e);
	if (!tasks) {
		/* upstream lets this ValidationError through (500); the client
		 * gets the reason instead */
		sb_t m = SB_INIT;
		verr_render(e.list, "TaskCreate", &m);
		http_error(req, 422, m.buf);
		sb_release(&m);
		verr_free(&e);
		goto out;
	}
	verr_free(&e);
	/* the duplicate checks span users and groups: one section for all
	 * task-group creations */
	if (api_begin_locked(req, db, "task-group", 0))
		goto out;
	if (nondup_user(req, db, req->user->id, label, version, up.resource_id) ||
	    nondup_group(req, db, group_id, label, version)) {
		db_rollback(db);
		goto out;
	}
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r;
	if (db_exec(db, "INSERT INTO taskgroupv2 (user_id, user_group_id, resource_id, origin, pkg_name, version, "
			"pinned_package_versions_pre, pinned_package_versions_post, active, timestamp_created, "
			"timestamp_last_used) VALUES ($1, $2, $3, 'other', $4, $5, $6, $6, $7, $8, $8) RETURNING id",
		    (db_param_t[]){ P_INT(req->user->id), group_id ? P_INT(group_id) : P_NULL, P_INT(up.resource_id),
				    P_TEXT(label), P_TEXT(version), P_JSON("{}"), P_BOOL(1), P_TS(now) },
		    8, &r))
		goto dberr;
	int64_t tgid = db_int(r, 0, 0);
	db_res_free(r);
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
		if (task_insert(db, tgid, t, NULL))
			goto dberr;
	if (db_commit(db))
		goto dberr;
	if (db_exec(db, "SELECT " TASK_COLS " FROM taskv2 t WHERE t.taskgroupv2_id = $1 ORDER BY t.id",
		    (db_param_t[]){ P_INT(tgid) }, 1, &r)) {
		api_db_error(req, db);
		goto out;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	for (int k = 0; k < db_nrows(r); k++) {
		if (k)
			sb_addc(&o, ',');
		task_read_json(&o, r, k, 0);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 201, &o);
	goto out;
dberr:
	if (db_errclass(db) == DB_ERR_CONSTRAINT) {
		http_error(req, 422, db_errmsg(db));
		db_rollback(db);
	} else {
		api_db_abort(req, db);
	}
out:
	json_decref(tasks);
	user_profile_release(&up);
	json_decref(b);
}
