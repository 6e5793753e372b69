/* pixi.c — the actions on task groups installed with pixi from a source
 * archive (upstream's tasks/v2/local/collect_pixi.py, deactivate_pixi.py,
 * reactivate_pixi.py, and the admin reset; tasks/v2/ssh/ for slurm_ssh
 * resources, where install and post-install run in a SLURM job:
 * pixi_slurm.c): the variables of the pixi templates, the pyproject.toml
 * simplification (collect/pyproject.h), and the steps of each action
 * (collect/steps.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/pyproject.h"
#include "collect/steps.h"
#include "util/log.h"

/* The strings the pixi variables point to (freed by pixi_strings_free). */
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

static int pixi_variables(job_t *j, script_ctx_t *c, int frozen, pixi_strings_t *s)
{
	tg_t *t = &j->tg;
	json_t *cfg = cj_res_get(j, "tasks_pixi_config", NULL);
	const char *home = json_string_value(json_object_get(json_object_get(cfg, "versions"),
							     t->pixi_version ? t->pixi_version : ""));
	if (!home) {
		cj_fail(j, "'%s'", t->pixi_version ? t->pixi_version : "None");
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
	cj_log(j, LOG_INFO, "Setting PIXI_CACHE_DIR to %s", s->cache);
	s->import_name = xstrdup(t->pkg_name);
	for (char *p = s->import_name; *p; p++)
		if (*p == '-')
			*p = '_';
	s->tokio = json_num_text(json_object_get(cfg, "TOKIO_WORKER_THREADS"));
	s->solves = json_num_text(json_object_get(cfg, "PIXI_CONCURRENT_SOLVES"));
	s->downloads = json_num_text(json_object_get(cfg, "PIXI_CONCURRENT_DOWNLOADS"));
	cj_var_add(c, "FRACTAL_PIXI_HOME", s->home);
	cj_var_add(c, "FRACTAL_PIXI_CACHE_DIR", s->cache);
	cj_var_add(c, "FRACTAL_PACKAGE_DIR", t->path);
	cj_var_add(c, "FRACTAL_TAR_GZ_PATH", t->archive_path);
	cj_var_add(c, "FRACTAL_IMPORT_PACKAGE_NAME", s->import_name);
	cj_var_add(c, "FRACTAL_SOURCE_DIR_NAME", SOURCE_DIR_NAME);
	cj_var_add(c, "FRACTAL_FROZEN_OPTION", frozen ? "--frozen" : "");
	cj_var_add(c, "FRACTAL_TOKIO_WORKER_THREADS", s->tokio);
	cj_var_add(c, "FRACTAL_PIXI_CONCURRENT_SOLVES", s->solves);
	cj_var_add(c, "FRACTAL_PIXI_CONCURRENT_DOWNLOADS", s->downloads);
	return 0;
}

/* 1 on a slurm_ssh resource, where pixi runs through SLURM. */
static int over_ssh(const job_t *j)
{
	return !strcmp(j->host->ops->name, "ssh");
}

/* edit_pyproject_toml_in_place_local / _ssh */
static int simplify_pyproject(job_t *j, const char *source_dir)
{
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/pyproject.toml", source_dir);
	size_t len;
	char *text = cj_read_file(j, p.buf, &len);
	if (!text) {
		sb_release(&p);
		return -1;
	}
	json_t *cfg = cj_res_get(j, "tasks_pixi_config", NULL);
	sb_t out = SB_INIT, why = SB_INIT;
	int rc = pyproject_simplify(text, json_string_value(json_object_get(cfg, "DEFAULT_ENVIRONMENT")),
				    json_string_value(json_object_get(cfg, "DEFAULT_PLATFORM")), &out, &why);
	free(text);
	if (rc) {
		cj_fail(j, "%s", why.buf);
	} else {
		rc = cj_write_file(j, p.buf, out.buf, out.len);
		if (!rc)
			cj_log(j, LOG_DEBUG, "Replaced %s %s with simplified version.", over_ssh(j) ? "remote" : "local", p.buf);
	}
	sb_release(&out);
	sb_release(&why);
	sb_release(&p);
	return rc;
}

/* Steps 2..: install, post-install, chmod -R 755 of the source folder, here
 * or (slurm_ssh) in one SLURM job; *wrapper and *root parsed (root NULL:
 * not wanted). */
static int pixi_install_steps(job_t *j, script_ctx_t *c, const char *source_dir, char **root, char **wrapper)
{
	char *so = NULL;
	sb_t exe = SB_INIT;
	const char *home = cj_var_value(c, "FRACTAL_PIXI_HOME");
	sb_addf(&exe, "%s/bin/pixi", home ? home : "");
	int missing = !host_test(j->host, exe.buf, HOST_EXECUTABLE);
	if (missing)
		cj_fail(j, "Pixi executable %s not found or not executable (tasks_pixi_config.versions['%s'] is %s).", exe.buf,
		     j->tg.pixi_version ? j->tg.pixi_version : "None", home ? home : "None");
	sb_release(&exe);
	if (missing)
		return -1;
	int rc = -1;
	if (over_ssh(j)) {
		sb_t s2 = SB_INIT, s3 = SB_INIT;
		int w = cj_write_template(j, c, &tpl_pixi_install, &s2) || cj_write_template(j, c, &tpl_pixi_post_install, &s3);
		if (!w) {
			cj_log(j, LOG_DEBUG, "Post-installation script written to remote_script3_path='%s'.", s3.buf);
			cj_log(j, LOG_DEBUG, "Installation script written to remote_script2_path='%s'.", s2.buf);
			cj_save_log(j);
			const char *scripts[] = { s2.buf, s3.buf };
			w = cj_run_in_slurm(j, c, scripts, 2, source_dir, &so);
		}
		sb_release(&s2);
		sb_release(&s3);
		if (w)
			goto out;
	} else {
		if (cj_run_template(j, c, &tpl_pixi_install, NULL) || cj_save_log(j))
			goto out;
		if (cj_run_template(j, c, &tpl_pixi_post_install, &so) || cj_save_log(j))
			goto out;
	}
	if (root) {
		*root = cj_parse_label(j, so, "Package folder:");
		*wrapper = *root ? cj_parse_label(j, so, "Project Python wrapper:") : NULL;
		if (!*wrapper) {
			free(*root);
			*root = NULL;
			goto out;
		}
	}
	if (over_ssh(j)) {
		rc = 0;   /* the chmod was the SLURM job's last command */
	} else {
		char *argv[] = { "chmod", "-R", "755", (char *)source_dir, NULL };
		rc = cj_run_argv(j, argv, 0, NULL, NULL);
	}
out:
	free(so);
	return rc;
}

static int read_lockfile(job_t *j, const char *source_dir, char **out)
{
	sb_t p = SB_INIT;
	sb_addf(&p, "%s/pixi.lock", source_dir);
	*out = cj_read_file(j, p.buf, NULL);
	sb_release(&p);
	return *out ? 0 : -1;
}

/* collect_pixi.py: extract, simplify, install, post-install, manifest, tasks,
 * env_info = pixi.lock. */
int pixi_collect(job_t *j)
{
	tg_t *t = &j->tg;
	if (cj_mkdir(j, t->path, HOST_MKDIR_PARENTS))
		return -1;
	cj_log(j, LOG_INFO, "Created %s", t->path);
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
	cj_log(j, LOG_INFO, "Write txt-file contents into %s", idfile.buf);
	if (cj_write_file(j, idfile.buf, idtext.buf, idtext.len))
		goto out;
	cj_log(j, LOG_INFO, "Write tar.gz-file contents into %s.", ap.buf);
	if (cj_write_file(j, ap.buf, j->file_data, j->r.file_len) || cj_set_tg_text(j, "archive_path", ap.buf))
		goto out;
	free(t->archive_path);
	t->archive_path = xstrdup(ap.buf);
	cj_log(j, LOG_INFO, "use_pixi_lockfile=%s", j->r.use_pixi_lockfile ? "True" : "False");
	if (pixi_variables(j, &c, j->r.use_pixi_lockfile, &ps))
		goto out;
	cj_script_prefix(&c, "collect");
	if (cj_set_state(j, ACT_ONGOING, 0))
		goto out;
	if (cj_run_template(j, &c, &tpl_pixi_extract, NULL) || cj_save_log(j))
		goto out;
	if (simplify_pyproject(j, src.buf))
		goto out;
	if (pixi_install_steps(j, &c, src.buf, &root, &wrapper))
		goto out;
	sb_t manifest = SB_INIT;
	sb_addf(&manifest, "%s/__FRACTAL_MANIFEST__.json", root);
	/* over SSH, upstream does not look for the tasks' files */
	int lm = cj_load_manifest(j, manifest.buf, root, wrapper, !over_ssh(j), &tasks);
	sb_release(&manifest);
	if (lm || cj_insert_tasks(j, tasks))
		goto out;
	if (read_lockfile(j, src.buf, &lock) || cj_set_tg_text(j, "env_info", lock))
		goto out;
	if (cj_set_state(j, ACT_OK, 1))
		goto out;
	cj_log(j, LOG_INFO, "END");
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

/* deactivate_pixi.py: source_dir removed. */
int pixi_deactivate(job_t *j)
{
	sb_t src = SB_INIT;
	sb_addf(&src, "%s/%s", j->tg.path, SOURCE_DIR_NAME);
	int rc = -1;
	if (!cj_exists(j, src.buf)) {
		cj_fail(j, "%s does not exist.", src.buf);
		cj_log(j, LOG_ERROR, "%s", j->err.buf);
		goto out;
	}
	if (cj_set_state(j, ACT_ONGOING, 0))
		goto out;
	cj_log(j, LOG_INFO, "Now setting `active=False`.");
	if (cj_set_active(j, 0))
		goto out;
	cj_log(j, LOG_INFO, "Now removing %s.", src.buf);
	if (cj_rmtree(j, src.buf))
		goto out;
	cj_log(j, LOG_INFO, "All good, %s removed.", src.buf);
	rc = cj_set_state(j, ACT_OK, 1);
out:
	sb_release(&src);
	return rc;
}

/* reactivate_pixi.py (the lockfile of env_info) and the admin reset (a new
 * pixi.lock into env_info). */
int pixi_reinstall(job_t *j, int frozen)
{
	sb_t src = SB_INIT;
	sb_addf(&src, "%s/%s", j->tg.path, SOURCE_DIR_NAME);
	script_ctx_t c = { 0 };
	pixi_strings_t ps = { 0 };
	char *lock = NULL;
	int rc = -1;
	if (cj_set_state(j, ACT_ONGOING, 0))
		goto out;
	if (pixi_variables(j, &c, frozen, &ps))
		goto out;
	cj_script_prefix(&c, j->action);
	if (cj_run_template(j, &c, &tpl_pixi_extract, NULL) || cj_save_log(j))
		goto out;
	if (simplify_pyproject(j, src.buf))
		goto out;
	if (j->r.kind == CK_REACTIVATE) {
		sb_t lp = SB_INIT;
		sb_addf(&lp, "%s/pixi.lock", src.buf);
		int w = cj_write_file(j, lp.buf, j->tg.env_info ? j->tg.env_info : "",
				   j->tg.env_info ? strlen(j->tg.env_info) : 0);
		sb_release(&lp);
		if (w)
			goto out;
	}
	if (pixi_install_steps(j, &c, src.buf, NULL, NULL))
		goto out;
	if (j->r.kind == CK_RESET && (read_lockfile(j, src.buf, &lock) || cj_set_tg_text(j, "env_info", lock)))
		goto out;
	if (cj_set_active(j, 1) || cj_set_state(j, ACT_OK, 1))
		goto out;
	cj_log(j, LOG_INFO, "END");
	rc = 0;
out:
	free(lock);
	pixi_strings_free(&ps);
	sb_release(&src);
	return rc;
}
