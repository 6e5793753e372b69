/* pip.c — the actions on task groups installed with pip in a virtual
 * environment (upstream's tasks/v2/local/collect.py, deactivate.py,
 * reactivate.py, and the admin reset): the variables and arguments of the
 * pip templates, and the steps of each action (collect/steps.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/steps.h"
#include "util/log.h"

/* The strings the pip scripts' variables and arguments point to (freed by
 * pip_strings_free). */
typedef struct pip_strings {
	char *install, *cache_arg;
	char **pins;             /* the pre-pinned versions, then the post-pinned ones */
	int npins;
	char npre[24];           /* how many of pins are pre-pinned */
} pip_strings_t;

static void pip_strings_free(pip_strings_t *s)
{
	free(s->install);
	free(s->cache_arg);
	for (int i = 0; i < s->npins; i++)
		free(s->pins[i]);
	free(s->pins);
}

/* Appends "name==version" for each pin of a pinned-versions column to
 * s->pins; returns how many. */
static int add_pins(pip_strings_t *s, const char *json)
{
	json_t *v = json ? json_loads(json, 0, NULL) : NULL;
	const char *k;
	json_t *x;
	int n = 0;
	json_object_foreach(v, k, x) {
		sb_t pin = SB_INIT;
		sb_addf(&pin, "%s==%s", k, json_string_value(x) ? json_string_value(x) : "");
		s->pins = xrealloc(s->pins, sizeof(*s->pins) * (size_t)(s->npins + 1));
		s->pins[s->npins++] = sb_detach(&pin);
		n++;
	}
	json_decref(v);
	return n;
}

/* get_python_interpreter: the resource's interpreter for python_version. */
static const char *python_bin(job_t *j)
{
	json_t *versions = cj_res_get(j, "tasks_python_config", "versions");
	const char *py = json_string_value(json_object_get(versions, j->tg.python_version ? j->tg.python_version : ""));
	if (!py)
		cj_fail(j, "Requested python_version='%s' is not available.", j->tg.python_version ? j->tg.python_version : "None");
	return py;
}

/* get_collection_replacements, as the scripts' variables and arguments:
 * the pins are the positional arguments (pre-pinned first, their count in
 * FRACTAL_PINNED_PRE_COUNT), one argument each. */
static void pip_variables(job_t *j, script_ctx_t *c, const char *python, pip_strings_t *s)
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
	snprintf(s->npre, sizeof(s->npre), "%d", add_pins(s, t->pinned_pre));
	add_pins(s, t->pinned_post);
	const char *cache = json_string_value(cj_res_get(j, "tasks_python_config", "pip_cache_dir"));
	sb_t ca = SB_INIT;
	if (cache)
		sb_addf(&ca, "--cache-dir %s", cache);
	else
		sb_adds(&ca, "--no-cache-dir");
	s->cache_arg = sb_detach(&ca);
	cj_var_add(c, "FRACTAL_PACKAGE_NAME", t->pkg_name);
	cj_var_add(c, "FRACTAL_PACKAGE_ENV_DIR", t->venv_path);
	cj_var_add(c, "FRACTAL_PYTHON", python);
	cj_var_add(c, "FRACTAL_INSTALL_STRING", s->install);
	/* the scripts pass --no-cache-dir when it is empty */
	cj_var_add(c, "FRACTAL_PIP_CACHE_DIR", cache ? cache : "");
	cj_var_add(c, "FRACTAL_PINNED_PRE_COUNT", s->npre);
	c->args = s->pins;
	c->nargs = s->npins;
	cj_log(j, LOG_INFO, "Cache-dir argument for `pip install`: %s", s->cache_arg);
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

/* collect.py: venv, pip install, freeze, show, manifest, tasks. */
int pip_collect(job_t *j)
{
	tg_t *t = &j->tg;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	char *freeze = NULL, *show = NULL, *name = NULL, *py = NULL, *parent = NULL, *manifest = NULL;
	json_t *tasks = NULL;
	int rc = -1;
	if (cj_mkdir(j, t->path, HOST_MKDIR_PARENTS))
		return -1;
	cj_log(j, LOG_INFO, "Created %s", t->path);
	sb_t idfile = SB_INIT, idtext = SB_INIT;
	sb_addf(&idfile, "%s/%s", t->path, TASK_GROUP_ID_FILENAME);
	sb_addf(&idtext, "%lld", (long long)t->id);
	cj_log(j, LOG_INFO, "Write txt-file contents into %s", idfile.buf);
	int w = cj_write_file(j, idfile.buf, idtext.buf, idtext.len);
	sb_release(&idfile);
	sb_release(&idtext);
	if (w)
		return -1;
	if (j->file_name) {
		sb_t ap = SB_INIT;
		sb_addf(&ap, "%s/%s", t->path, j->file_name);
		cj_log(j, LOG_INFO, "Write wheel-file contents into %s", ap.buf);
		if (cj_write_file(j, ap.buf, j->file_data, j->r.file_len) || cj_set_tg_text(j, "archive_path", ap.buf)) {
			sb_release(&ap);
			return -1;
		}
		free(t->archive_path);
		t->archive_path = sb_detach(&ap);
	}
	const char *python = python_bin(j);
	if (!python)
		return -1;
	pip_variables(j, &c, python, &ps);
	cj_script_prefix(&c, "collect");
	if (cj_set_state(j, ACT_ONGOING, 0))
		goto out;
	if (cj_run_template(j, &c, &tpl_create_venv, NULL) || cj_save_log(j))
		goto out;
	if (cj_run_template(j, &c, &tpl_pip_install, NULL) || cj_save_log(j))
		goto out;
	if (cj_run_template(j, &c, &tpl_pip_freeze, &freeze) || cj_save_log(j))
		goto out;
	if (cj_run_template(j, &c, &tpl_pip_show, &show) || cj_save_log(j))
		goto out;
	if (!(py = cj_parse_label(j, show, "Python interpreter:")) || !(name = cj_parse_label(j, show, "Package name:")))
		goto out;
	char *version = cj_parse_label(j, show, "Package version:");
	if (!version)
		goto out;
	if (!(parent = cj_parse_label(j, show, "Package parent folder:"))) {
		free(version);
		goto out;
	}
	if (!(manifest = cj_parse_label(j, show, "Manifest absolute path:"))) {
		free(version);
		goto out;
	}
	cj_log(j, LOG_DEBUG, "Parsed from pip-show: python_bin=%s", py);
	cj_log(j, LOG_DEBUG, "Parsed from pip-show: package_name=%s", name);
	cj_log(j, LOG_DEBUG, "Parsed from pip-show: package_version=%s", version);
	cj_log(j, LOG_DEBUG, "Parsed from pip-show: package_root_parent=%s", parent);
	cj_log(j, LOG_DEBUG, "Parsed from pip-show: manifest_path=%s", manifest);
	free(version);
	/* compare_package_names */
	if (strcmp(name, t->pkg_name)) {
		cj_log(j, LOG_WARNING, "Package name mismatch: pkg_name_task_group='%s', pkg_name_pip_show='%s'.", t->pkg_name,
		     name);
		char *a = normalize_name(name), *b = normalize_name(t->pkg_name);
		int same = !strcmp(a, b);
		free(a);
		free(b);
		if (!same) {
			cj_fail(j, "Package name mismatch persists, after normalization: pkg_name_task_group='%s', "
				"pkg_name_pip_show='%s'.", t->pkg_name, name);
			cj_log(j, LOG_ERROR, "%s", j->err.buf);
			goto out;
		}
	}
	sb_t root = SB_INIT;
	sb_addf(&root, "%s/", parent);
	for (const char *p = t->pkg_name; *p; p++)
		sb_addc(&root, *p == '-' ? '_' : *p);
	int lm = cj_load_manifest(j, manifest, root.buf, py, 1, &tasks);
	sb_release(&root);
	if (lm || cj_insert_tasks(j, tasks))
		goto out;
	cj_log(j, LOG_INFO, "Add env_info to TaskGroupV2 - start");
	if (cj_set_tg_text(j, "env_info", freeze))
		goto out;
	cj_log(j, LOG_INFO, "Add env_info to TaskGroupV2 - end");
	cj_log(j, LOG_INFO, "finalising - START");
	if (cj_set_state(j, ACT_OK, 1))
		goto out;
	cj_log(j, LOG_INFO, "finalising - END");
	cj_log(j, LOG_INFO, "END");
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

/* deactivate.py: env_info made sure of, the wheel kept inside path, the venv removed. */
int pip_deactivate(job_t *j)
{
	tg_t *t = &j->tg;
	if (cj_set_state(j, ACT_ONGOING, 0))
		return -1;
	if (!t->env_info) {
		cj_log(j, LOG_WARNING, "Recreate pip-freeze information, since task_group.env_info=None. NOTE: this should "
				     "only happen for task groups created before 2.9.0.");
		script_ctx_t c = { 0 };
		pip_strings_t ps = { 0 };
		pip_variables(j, &c, "/not/applicable", &ps);
		cj_script_prefix(&c, "deactivate");
		char *freeze = NULL;
		int rc = cj_run_template(j, &c, &tpl_pip_freeze, &freeze);
		pip_strings_free(&ps);
		if (rc)
			return -1;
		cj_log(j, LOG_INFO, "Add pip freeze stdout to TaskGroupV2 - start");
		cj_save_log(j);
		rc = cj_set_tg_text(j, "env_info", freeze);
		t->env_info = freeze;
		if (rc)
			return -1;
		cj_log(j, LOG_INFO, "Add pip freeze stdout to TaskGroupV2 - end");
	}
	if (!strcmp(t->origin, "wheel-file")) {
		cj_log(j, LOG_INFO, "Handle specific cases for task_group.origin='wheel-file'.");
		if (!t->archive_path || !cj_exists(j, t->archive_path)) {
			cj_fail(j, "Invalid wheel path for task group with task_group_id=%lld. task_group.archive_path=%s%s%s is "
				"unset or does not exist.", (long long)t->id, t->archive_path ? "'" : "",
			     t->archive_path ? t->archive_path : "None", t->archive_path ? "'" : "");
			cj_log(j, LOG_ERROR, "%s", j->err.buf);
			return -1;
		}
		const char *slash = strrchr(t->archive_path, '/');
		size_t plen = strlen(t->path);
		while (plen > 1 && t->path[plen - 1] == '/')
			plen--;
		if (!slash || (size_t)(slash - t->archive_path) != plen || strncmp(t->archive_path, t->path, plen)) {
			cj_log(j, LOG_WARNING, "%.*s differs from %s. NOTE: this should only happen for task groups created "
					     "before 2.9.0.", slash ? (int)(slash - t->archive_path) : 0, t->archive_path, t->path);
			if (!strstr(t->env_info, t->archive_path)) {
				cj_fail(j, "Cannot find task_group.archive_path='%s' in pip-freeze data. Exit.", t->archive_path);
				return -1;
			}
			cj_log(j, LOG_INFO, "Now copy wheel file into %s.", t->path);
			sb_t np = SB_INIT;
			sb_addf(&np, "%.*s/%s", (int)plen, t->path, slash ? slash + 1 : t->archive_path);
			size_t len;
			char *data = cj_read_file(j, t->archive_path, &len);
			if (!data || cj_write_file(j, np.buf, data, len)) {
				free(data);
				sb_release(&np);
				return -1;
			}
			free(data);
			cj_log(j, LOG_INFO, "Copied wheel file to %s.", np.buf);
			/* upstream first updates archive_path, then replaces the
			 * new path by itself in env_info: env_info stays as is */
			int rc = cj_set_tg_text(j, "archive_path", np.buf);
			free(t->archive_path);
			t->archive_path = sb_detach(&np);
			if (rc)
				return -1;
			cj_log(j, LOG_INFO, "Updated `archive_path` and `env_info` task-group attributes.");
		}
	}
	if (strstr(t->env_info, "github.com")) {
		cj_fail(j, "Deactivation and reactivation of task packages with direct github.com dependencies are not "
			"currently supported. Exit.");
		return -1;
	}
	cj_log(j, LOG_INFO, "Now setting `active=False`.");
	if (cj_set_active(j, 0))
		return -1;
	cj_log(j, LOG_INFO, "Now removing %s.", t->venv_path);
	if (cj_rmtree(j, t->venv_path))
		return -1;
	cj_log(j, LOG_INFO, "All good, %s removed.", t->venv_path);
	return cj_set_state(j, ACT_OK, 1);
}

/* reactivate.py: the venv again, from the pip-freeze of env_info. */
int pip_reactivate(job_t *j)
{
	tg_t *t = &j->tg;
	if (cj_set_state(j, ACT_ONGOING, 0))
		return -1;
	const char *python = python_bin(j);
	if (!python)
		return -1;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	pip_variables(j, &c, python, &ps);
	sb_t freeze = SB_INIT;
	sb_addf(&freeze, "%s/pip_freeze.txt", j->host->scratch);
	cj_var_add(&c, "FRACTAL_PIP_FREEZE_FILE", freeze.buf);
	cj_script_prefix(&c, "reactivate");
	int rc = -1;
	if (cj_write_file(j, freeze.buf, t->env_info ? t->env_info : "", t->env_info ? strlen(t->env_info) : 0))
		goto out;
	cj_log(j, LOG_DEBUG, "start - create venv");
	if (cj_run_template(j, &c, &tpl_create_venv, NULL))
		goto out;
	cj_log(j, LOG_DEBUG, "end - create venv");
	cj_save_log(j);
	cj_log(j, LOG_DEBUG, "start - install from pip freeze");
	if (cj_run_template(j, &c, &tpl_pip_install_from_freeze, NULL))
		goto out;
	cj_log(j, LOG_DEBUG, "end - install from pip freeze");
	if (cj_set_state(j, ACT_OK, 1) || cj_set_active(j, 1))
		goto out;
	cj_log(j, LOG_DEBUG, "END");
	rc = 0;
out:
	sb_release(&freeze);
	pip_strings_free(&ps);
	return rc;
}

/* The admin reset: venv and pip install again (new extras and pins), env_info
 * updated; the tasks are not read again. */
int pip_reset(job_t *j)
{
	const char *python = python_bin(j);
	if (!python)
		return -1;
	script_ctx_t c = { 0 };
	pip_strings_t ps = { 0 };
	pip_variables(j, &c, python, &ps);
	cj_script_prefix(&c, "reset");
	char *freeze = NULL;
	int rc = -1;
	if (cj_set_state(j, ACT_ONGOING, 0))
		goto out;
	if (cj_run_template(j, &c, &tpl_create_venv, NULL) || cj_save_log(j))
		goto out;
	if (cj_run_template(j, &c, &tpl_pip_install, NULL) || cj_save_log(j))
		goto out;
	if (cj_run_template(j, &c, &tpl_pip_freeze, &freeze) || cj_save_log(j))
		goto out;
	cj_log(j, LOG_INFO, "Update TaskGroupV2 - start");
	if (cj_set_tg_text(j, "env_info", freeze) || cj_set_active(j, 1))
		goto out;
	cj_log(j, LOG_INFO, "Update TaskGroupV2 - end");
	cj_log(j, LOG_INFO, "finalising - START");
	if (cj_set_state(j, ACT_OK, 1))
		goto out;
	cj_log(j, LOG_INFO, "finalising - END");
	cj_log(j, LOG_INFO, "END");
	rc = 0;
out:
	free(freeze);
	pip_strings_free(&ps);
	return rc;
}
