/* init_db_data.c — fractalctl init-db-data: the default group (when
 * FRACTAL_DEFAULT_GROUP_NAME=All), the first superuser, the first resource
 * and profile. Unlike upstream (which refuses when a resource exists) every
 * part is idempotent: what already exists is kept and reported, so the
 * command can run at every deployment. All writes are one transaction. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/settings.h"
#include "db/migrate.h"
#include "model/resource.h"
#include "util/password.h"
#include "util/timeutil.h"

static json_t *default_resource(void)
{
	char *cwd = getcwd(NULL, 0);
	/* the interpreter tasks run with: the system's python3 */
	const char *candidates[] = { "/usr/bin/python3", "/usr/local/bin/python3" };
	const char *python = candidates[0];
	for (size_t i = 0; i < 2; i++)
		if (access(candidates[i], X_OK) == 0) {
			python = candidates[i];
			break;
		}
	char version[16] = "3.11";
	sb_t cmd = SB_INIT;
	sb_addf(&cmd, "%s -c 'import sys; print(\"%%d.%%d\" %% sys.version_info[:2])' 2>/dev/null", python);
	FILE *p = popen(cmd.buf, "r");
	if (p) {
		if (fscanf(p, "%15s", version) != 1)
			snprintf(version, sizeof(version), "3.11");
		pclose(p);
	}
	sb_release(&cmd);
	sb_t jobs = SB_INIT, tasks = SB_INIT;
	sb_addf(&jobs, "%s/data-jobs", cwd ? cwd : "");
	sb_addf(&tasks, "%s/data-tasks", cwd ? cwd : "");
	free(cwd);
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}}, s:i, s:{}, s:{}}",
			      "name", "Local resource", "type", "local", "jobs_local_dir", jobs.buf,
			      "tasks_local_dir", tasks.buf, "tasks_python_config", "default_version", version,
			      "versions", version, python, "jobs_poll_interval", 0, "jobs_runner_config",
			      "tasks_pixi_config");
	sb_release(&jobs);
	sb_release(&tasks);
	return r;
}

static json_t *load_doc(const char *what, const char *arg)
{
	if (!strcmp(arg, "default")) {
		printf("Prepared default %s data.\n", what);
		return !strcmp(what, "resource") ? default_resource()
						 : json_pack("{s:s, s:s}", "resource_type", "local", "name", "Local profile");
	}
	json_error_t e;
	json_t *doc = json_load_file(arg, 0, &e);
	if (!doc) {
		fprintf(stderr, "fractalctl init-db-data: error: cannot read %s data from %s: %s (line %d)\n", what, arg,
			e.text, e.line);
		return NULL;
	}
	printf("Read %s data from %s.\n", what, arg);
	return doc;
}

static int check_password(const char *pwd)
{
	size_t bytes = strlen(pwd), chars = 0;
	for (const unsigned char *p = (const unsigned char *)pwd; *p; p++)
		chars += (*p & 0xc0) != 0x80;
	if (chars < 4) {
		fprintf(stderr, "fractalctl init-db-data: error: The password is too short (length = %zu, minimum length = 4).\n", chars);
		return -1;
	}
	if (bytes > 72) {
		fprintf(stderr, "fractalctl init-db-data: error: The password is too long (length = %zu bytes, maximum length = 72 bytes).\n", bytes);
		return -1;
	}
	return 0;
}

static int email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	return at && at != s && !strchr(at + 1, '@') && strchr(at + 1, '.') && !strpbrk(s, " \t\n");
}

static int fail_db(db_t *db, const char *what)
{
	fprintf(stderr, "fractalctl init-db-data: error: %s: %s\n", what, db_errmsg(db));
	db_rollback(db);
	return 1;
}

static int run(db_t *db, const char *email, const char *hash, const char *project_dir, json_t *res, json_t *prof)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r;
	if (db_begin(db))
		return fail_db(db, "cannot start transaction");
	int64_t group_id = 0;
	if (settings.default_group_name) {
		db_param_t p[] = { P_TEXT(settings.default_group_name) };
		if (db_exec(db, "SELECT id FROM usergroup WHERE name = $1", p, 1, &r))
			return fail_db(db, "cannot read groups");
		if (db_nrows(r)) {
			group_id = db_int(r, 0, 0);
			printf("Group '%s' already exists, skip.\n", settings.default_group_name);
		}
		db_res_free(r);
		if (!group_id) {
			db_param_t q[] = { P_TEXT(settings.default_group_name), P_TS(now) };
			if (db_exec(db, "INSERT INTO usergroup (name, timestamp_created) VALUES ($1, $2) RETURNING id", q, 2, &r))
				return fail_db(db, "cannot create the default group");
			group_id = db_int(r, 0, 0);
			db_res_free(r);
			printf("Created group '%s'.\n", settings.default_group_name);
		}
	}
	if (email) {
		if (db_exec(db, "SELECT email FROM user_oauth WHERE is_superuser = $1 ORDER BY id LIMIT 1",
			    (db_param_t[]){ P_BOOL(1) }, 1, &r))
			return fail_db(db, "cannot read users");
		if (db_nrows(r)) {
			printf("'%s' superuser already exists, skip creation of '%s'.\n", db_text(r, 0, 0), email);
			db_res_free(r);
		} else {
			db_res_free(r);
			sb_t dirs = SB_INIT;
			sb_addc(&dirs, '[');
			sb_add_json_str(&dirs, project_dir);
			sb_addc(&dirs, ']');
			db_param_t q[] = { P_TEXT(email), P_SECRET(hash), P_BOOL(1), P_BOOL(1), P_BOOL(1), P_ARRAY(dirs.buf),
					   P_ARRAY("[]"), P_BOOL(0) };
			int rc = db_exec(db, "INSERT INTO user_oauth (email, hashed_password, is_active, is_superuser, "
					 "is_verified, project_dirs, slurm_accounts, is_guest) "
					 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id", q, 8, &r);
			sb_release(&dirs);
			if (rc) {
				if (db_errclass(db) == DB_ERR_CONSTRAINT) {
					db_rollback(db);
					fprintf(stderr, "fractalctl init-db-data: error: a user with e-mail '%s' already exists and is not a superuser\n", email);
					return 1;
				}
				return fail_db(db, "cannot create the admin user");
			}
			int64_t uid = db_int(r, 0, 0);
			db_res_free(r);
			if (group_id) {
				db_param_t g[] = { P_INT(group_id), P_INT(uid), P_TS(now) };
				if (db_exec(db, "INSERT INTO linkusergroup (group_id, user_id, timestamp_created) VALUES ($1, $2, $3)", g, 3, NULL))
					return fail_db(db, "cannot add the admin to the default group");
			}
			printf("User '%s' created.\n", email);
		}
	}
	if (res) {
		const char *rname = json_string_value(json_object_get(res, "name"));
		const char *pname = json_string_value(json_object_get(prof, "name"));
		int64_t rid = 0, pid = 0;
		if (db_exec(db, "SELECT id, type FROM resource WHERE name = $1", (db_param_t[]){ P_TEXT(rname) }, 1, &r))
			return fail_db(db, "cannot read resources");
		if (db_nrows(r)) {
			rid = db_int(r, 0, 0);
			const char *t = json_string_value(json_object_get(res, "type"));
			if (strcmp(db_text(r, 0, 1), t)) {
				fprintf(stderr, "fractalctl init-db-data: error: resource '%s' exists with type '%s', not '%s'\n",
					rname, db_text(r, 0, 1), t);
				db_res_free(r);
				db_rollback(db);
				return 1;
			}
			printf("Resource '%s' already exists (id=%lld), skip.\n", rname, (long long)rid);
		}
		db_res_free(r);
		if (!rid) {
			if (resource_insert(db, res, &rid))
				return fail_db(db, "cannot create the resource");
			printf("Created resource '%s' (id=%lld).\n", rname, (long long)rid);
		}
		if (db_exec(db, "SELECT id, resource_id FROM profile WHERE name = $1", (db_param_t[]){ P_TEXT(pname) }, 1, &r))
			return fail_db(db, "cannot read profiles");
		if (db_nrows(r)) {
			pid = db_int(r, 0, 0);
			printf("Profile '%s' already exists (id=%lld), skip.\n", pname, (long long)pid);
		}
		db_res_free(r);
		if (!pid) {
			if (profile_insert(db, prof, rid, &pid))
				return fail_db(db, "cannot create the profile");
			printf("Created profile '%s' (id=%lld).\n", pname, (long long)pid);
		}
		if (db_exec(db, "SELECT email FROM user_oauth WHERE profile_id IS NULL ORDER BY id", NULL, 0, &r))
			return fail_db(db, "cannot read users");
		for (int i = 0; i < db_nrows(r); i++)
			printf("Now set profile_id=%lld for %s.\n", (long long)pid, db_text(r, i, 0));
		db_res_free(r);
		if (db_exec(db, "UPDATE user_oauth SET profile_id = $1 WHERE profile_id IS NULL", (db_param_t[]){ P_INT(pid) }, 1, NULL))
			return fail_db(db, "cannot associate the profile to users");
	}
	if (db_commit(db))
		return fail_db(db, "commit failed");
	return 0;
}

int cmd_init_db_data(int argc, char **argv)
{
	struct cli_opt opts[] = {
		{ "--resource", NULL, "RESOURCE", "Either `default` or path to the JSON file of the first resource.", NULL },
		{ "--profile", NULL, "PROFILE", "Either `default` or path to the JSON file of the first profile.", NULL },
		{ "--admin-email", NULL, "ADMIN_EMAIL", "Email of the first admin user.", NULL },
		{ "--admin-pwd", NULL, "ADMIN_PWD", "Password for the first admin user.", NULL },
		{ "--admin-project-dir", NULL, "ADMIN_PROJECT_DIR", "Project_dir for the first admin user.", NULL },
	};
	int rc = cli_parse("init-db-data", "Populate database with initial data.", argc, argv, opts, 5);
	if (rc)
		return rc < 0 ? 0 : rc;
	const char *resource = opts[0].value, *profile = opts[1].value;
	const char *email = opts[2].value, *pwd = opts[3].value, *pdir = opts[4].value;
	if (!((email == NULL) == (pwd == NULL) && (pwd == NULL) == (pdir == NULL))) {
		fprintf(stderr, "You must provide either both or none of `--admin-email`, `--admin-pwd` and `--admin-project-dir`. Exit.\n");
		return 1;
	}
	if ((resource == NULL) != (profile == NULL)) {
		fprintf(stderr, "You must provide both --resource and --profile. Exit.\n");
		return 1;
	}
	if ((rc = cli_load_settings(SETTINGS_DATABASE | SETTINGS_APP)))
		return rc;

	/* validate everything before touching the database */
	char hash[PASSWORD_HASH_LEN];
	char *project_dir = NULL;
	json_t *res = NULL, *prof = NULL;
	sb_t err = SB_INIT;
	rc = 1;
	if (email) {
		if (!email_ok(email)) {
			fprintf(stderr, "fractalctl init-db-data: error: --admin-email: '%s' is not a valid email address\n", email);
			goto out;
		}
		if (check_password(pwd))
			goto out;
		if (!(project_dir = abs_path_normalise(pdir, "--admin-project-dir", &err))) {
			fprintf(stderr, "fractalctl init-db-data: error: %s\n", err.buf);
			goto out;
		}
	}
	if (resource) {
		json_t *raw = load_doc("resource", resource);
		if (!raw)
			goto out;
		res = resource_validate(raw, &err);
		json_decref(raw);
		if (!res) {
			fprintf(stderr, "ERROR: Invalid resource data.\nOriginal error:\n%s\n", err.buf);
			goto out;
		}
		raw = load_doc("profile", profile);
		if (!raw)
			goto out;
		prof = profile_validate(raw, json_string_value(json_object_get(res, "type")), &err);
		json_decref(raw);
		if (!prof) {
			fprintf(stderr, "ERROR: Invalid profile data.\nOriginal error:\n%s\n", err.buf);
			goto out;
		}
	}
	db_t *db = db_open(0, &err);
	if (!db) {
		fprintf(stderr, "fractalctl init-db-data: error: %s\n", err.buf);
		goto out;
	}
	if (migrate_check(db, &err)) {
		fprintf(stderr, "fractalctl init-db-data: error: %s\n", err.buf);
		db_close(db);
		goto out;
	}
	if (email && password_hash(pwd, hash)) {
		fprintf(stderr, "fractalctl init-db-data: error: cannot hash the password\n");
		db_close(db);
		goto out;
	}
	rc = run(db, email, hash, project_dir, res, prof);
	db_close(db);
out:
	free(project_dir);
	json_decref(res);
	json_decref(prof);
	sb_release(&err);
	return rc;
}
