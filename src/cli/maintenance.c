/* maintenance.c — the operator commands around a running installation:
 *   recent           jobs and task-group activities of the last minutes
 *                    (what is running before a restart or an upgrade);
 *   sync-core-tasks  marks the tasks listed in JSON files as core, per
 *                    resource and user group, in one transaction (a
 *                    failure is also mailed to the admins, as upstream);
 *   update-db-data   upstream's per-version data migration; 2.24 has none.
 * Outputs follow upstream's texts so that runbooks keep working. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "build_config.h"
#include "cli/cli.h"
#include "config/settings.h"
#include "db/db.h"
#include "model/state.h"
#include "util/log.h"
#include "util/mail.h"
#include "util/sb.h"

static db_t *open_db(const char *cmd)
{
	if (cli_load_settings(SETTINGS_DATABASE))
		return NULL;
	sb_t err = SB_INIT;
	db_t *db = db_open(0, &err);
	if (!db)
		fprintf(stderr, "fractalctl %s: error: %s\n", cmd, err.buf);
	sb_release(&err);
	return db;
}

/* "2026-11-26T17:00:00.123456+00:00" -> "2026-11-26 17:00:00"; NULL -> "-" */
static const char *short_ts(const char *ts, char out[20])
{
	if (!ts || strlen(ts) < 19)
		return "-";
	memcpy(out, ts, 19);
	out[10] = ' ';
	out[19] = '\0';
	return out;
}

int cmd_recent(int argc, char **argv)
{
	static const char desc[] = "Review recent jobs and task-group activities.";
	struct cli_opt opts[] = {
		{ "--minutes", NULL, "MINUTES", "Look-back period in minutes (default: 20).", NULL },
	};
	int rc = cli_parse("recent", desc, argc, argv, opts, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	long minutes = 20;
	if (opts[0].value) {
		char *end;
		errno = 0;
		minutes = strtol(opts[0].value, &end, 10);
		if (errno || *end || end == opts[0].value) {
			fprintf(stderr, "fractalctl recent: error: argument --minutes: invalid int value: '%s'\n",
				opts[0].value);
			return 2;
		}
	}
	db_t *db = open_db("recent");
	if (!db)
		return 1;
	time_t t = time(NULL) - minutes * 60;
	struct tm tm;
	gmtime_r(&t, &tm);
	char since[40];
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%S.000000+00:00", &tm);
	db_res_t *jobs = NULL, *acts = NULL;
	if (db_exec(db,
		    "SELECT id, user_email, status, start_timestamp, end_timestamp FROM jobv2 "
		    "WHERE status = " SQ(S_SUBMITTED) " OR (end_timestamp IS NOT NULL AND end_timestamp >= $1) "
		    "ORDER BY CASE status WHEN " SQ(S_SUBMITTED) " THEN 0 WHEN " SQ(S_DONE) " THEN 1 WHEN " SQ(S_FAILED)
		    " THEN 2 ELSE 3 END, start_timestamp DESC",
		    (db_param_t[]){ P_TS(since) }, 1, &jobs) ||
	    db_exec(db,
		    "SELECT a.id, u.email, a.action, a.pkg_name, a.version, a.status, a.timestamp_started, "
		    "a.timestamp_ended FROM taskgroupactivityv2 a JOIN user_oauth u ON u.id = a.user_id "
		    "WHERE a.status IN (" SQ(S_ONGOING) ", " SQ(S_PENDING) ") "
		    "OR (a.timestamp_ended IS NOT NULL AND a.timestamp_ended >= $1) "
		    "ORDER BY CASE a.status WHEN " SQ(S_ONGOING) " THEN 0 WHEN " SQ(S_PENDING) " THEN 1 WHEN " SQ(S_OK)
		    " THEN 2 WHEN " SQ(S_FAILED) " THEN 3 ELSE 4 END, a.timestamp_started DESC",
		    (db_param_t[]){ P_TS(since) }, 1, &acts)) {
		fprintf(stderr, "fractalctl recent: error: %s\n", db_errmsg(db));
		db_res_free(jobs);
		db_close(db);
		return 1;
	}
	int nj = db_nrows(jobs), na = db_nrows(acts), ongoing = 0;
	for (int i = 0; i < nj; i++)
		ongoing |= sm_parse(&job_sm, db_text(jobs, i, 2)) == JOB_SUBMITTED;
	for (int i = 0; i < na; i++) {
		int st = sm_parse(&activity_sm, db_text(acts, i, 5));
		ongoing |= st == ACT_ONGOING || st == ACT_PENDING;
	}
	printf("## Summary\n");
	if (ongoing)
		printf("There are ongoing fractal-server jobs and/or task-group activities.\n");
	else if (nj || na)
		printf("There were fractal-server jobs and/or task-group activities during the last %ld minutes.\n", minutes);
	else
		printf("No fractal-server job or task-group activity during the last %ld minutes.\n", minutes);
	printf("\n");
	char a[20], b[20];
	if (nj) {
		printf("## Recent jobs\n");
		for (int i = 0; i < nj; i++)
			printf("ID=%s by %s, current status: %s, start/end time: %s/%s.\n", db_text(jobs, i, 0),
			       db_text(jobs, i, 1), db_text(jobs, i, 2), short_ts(db_text(jobs, i, 3), a),
			       short_ts(db_text(jobs, i, 4), b));
		printf("\n");
	}
	if (na) {
		printf("## Recent task-group activities\n");
		for (int i = 0; i < na; i++)
			printf("ID=%s by %s, %s, %s %s, current status: %s, start/end time: %s/%s.\n", db_text(acts, i, 0),
			       db_text(acts, i, 1), db_text(acts, i, 2), db_text(acts, i, 3), db_text(acts, i, 4),
			       db_text(acts, i, 5), short_ts(db_text(acts, i, 6), a), short_ts(db_text(acts, i, 7), b));
		printf("\n");
	}
	db_res_free(jobs);
	db_res_free(acts);
	db_close(db);
	return 0;
}

/* Reads a JSON file that must hold an array; NULL path gives an empty one.
 * Returns a new reference, or NULL with a message printed. */
static json_t *read_json_array(const char *path, const char *what)
{
	if (!path)
		return json_array();
	json_error_t je;
	json_t *v = json_load_file(path, 0, &je);
	if (!v) {
		fprintf(stderr, "fractalctl sync-core-tasks: error: %s %s: %s\n", what, path, je.text);
		return NULL;
	}
	if (!json_is_array(v)) {
		fprintf(stderr, "fractalctl sync-core-tasks: error: %s %s: expected a JSON array\n", what, path);
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Validates a list of [pkg_name, version, task_name] items (non-empty strings
 * after stripping, as upstream's NonEmptyStr). Returns 0 or -1 (printed). */
static int check_core_items(json_t *list, const char *path)
{
	size_t i;
	json_t *it;
	json_array_foreach(list, i, it) {
		int ok = json_is_array(it) && json_array_size(it) == 3;
		for (size_t k = 0; ok && k < 3; k++) {
			const char *s = json_string_value(json_array_get(it, k));
			ok = s && strspn(s, " \t\r\n") < strlen(s);
		}
		if (!ok) {
			fprintf(stderr,
				"fractalctl sync-core-tasks: error: %s: item %zu is not a [pkg_name, version, task_name] "
				"array of three non-empty strings\n",
				path, i);
			return -1;
		}
	}
	return 0;
}

static int in_list(json_t *list, json_t *item)
{
	size_t i;
	json_t *it;
	json_array_foreach(list, i, it)
		if (json_equal(it, item))
			return 1;
	return 0;
}

static int count_core(db_t *db, int64_t *n)
{
	db_res_t *r;
	if (db_exec(db, "SELECT count(id) FROM taskv2 WHERE is_core", NULL, 0, &r))
		return -1;
	*n = db_int(r, 0, 0);
	db_res_free(r);
	return 0;
}

/* upstream's message on stderr, and the same text mailed to the admins */
static void sync_failed(const char *why)
{
	sb_t msg = SB_INIT, err = SB_INIT;
	sb_addf(&msg, "An exception took place, exit without updating the database. Original error: %s", why);
	if (settings_load(SETTINGS_EMAIL, &err))
		log_error("Cannot send email with subject='Failed core-tasks synchronization': %s", err.buf);
	else
		mail_notify("Failed core-tasks synchronization", msg.buf);
	fprintf(stderr, "%s\n", msg.buf);
	sb_release(&msg);
	sb_release(&err);
}

int cmd_sync_core_tasks(int argc, char **argv)
{
	static const char desc[] = "Synchronize core tasks.";
	struct cli_opt opts[] = {
		{ "--resources-and-groups", NULL, "RESOURCES_AND_GROUPS",
		  "JSON array of {\"resource_id\": .., \"user_group_id\": ..} objects; per resource, only tasks of "
		  "that group can be core.", NULL },
		{ "--base", NULL, "BASE", "JSON array of [pkg_name, version, task_name] items to make core.", NULL },
		{ "--add", NULL, "ADD", "JSON array of items to make core on top of --base.", NULL },
		{ "--remove", NULL, "REMOVE", "JSON array of items to make not core.", NULL },
	};
	int rc = cli_parse("sync-core-tasks", desc, argc, argv, opts, 4);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!opts[0].value)
		return cli_required("sync-core-tasks", desc, opts, 4, "--resources-and-groups");
	json_t *rg = read_json_array(opts[0].value, "--resources-and-groups");
	json_t *base = rg ? read_json_array(opts[1].value, "--base") : NULL;
	json_t *add = base ? read_json_array(opts[2].value, "--add") : NULL;
	json_t *rem = add ? read_json_array(opts[3].value, "--remove") : NULL;
	json_t *final = json_array();
	db_t *db = NULL;
	rc = 1;
	if (!rem || check_core_items(base, opts[1].value) || check_core_items(add, opts[2].value) ||
	    check_core_items(rem, opts[3].value))
		goto out;
	size_t i;
	json_t *it;
	json_array_foreach(rg, i, it) {
		json_t *r = json_object_get(it, "resource_id"), *g = json_object_get(it, "user_group_id");
		if (!json_is_object(it) || !json_is_integer(r) || !json_is_integer(g)) {
			fprintf(stderr, "fractalctl sync-core-tasks: error: %s: item %zu needs integer resource_id and "
					"user_group_id\n", opts[0].value, i);
			goto out;
		}
	}
	/* (base ∪ add) \ remove, each item once */
	json_t *parts[2] = { base, add };
	for (int p = 0; p < 2; p++)
		json_array_foreach(parts[p], i, it)
			if (!in_list(rem, it) && !in_list(final, it))
				json_array_append(final, it);

	if (!(db = open_db("sync-core-tasks")))
		goto out;
	int64_t pre, post;
	if (count_core(db, &pre))
		goto dberr;
	printf("Initial count of core tasks: %lld\n", (long long)pre);
	if (db_begin(db) || db_exec(db, "UPDATE taskv2 SET is_core = $1 WHERE is_core", (db_param_t[]){ P_BOOL(0) }, 1, NULL))
		goto fail;
	json_array_foreach(rg, i, it) {
		int64_t rid = json_integer_value(json_object_get(it, "resource_id"));
		int64_t gid = json_integer_value(json_object_get(it, "user_group_id"));
		db_res_t *r;
		if (db_exec(db, "SELECT (SELECT count(*) FROM resource WHERE id = $1), "
				"(SELECT count(*) FROM usergroup WHERE id = $2)",
			    (db_param_t[]){ P_INT(rid), P_INT(gid) }, 2, &r))
			goto fail;
		int ok_r = db_int(r, 0, 0) > 0, ok_g = db_int(r, 0, 1) > 0;
		db_res_free(r);
		if (!ok_r || !ok_g) {
			db_rollback(db);
			sb_t why = SB_INIT;
			sb_addf(&why, "No row was found for %s %lld", ok_r ? "UserGroup" : "Resource",
				(long long)(ok_r ? gid : rid));
			sync_failed(why.buf);
			sb_release(&why);
			goto counted;
		}
		size_t k;
		json_t *c;
		json_array_foreach(final, k, c) {
			if (db_exec(db, "UPDATE taskv2 SET is_core = $1 WHERE name = $6 AND taskgroupv2_id IN "
					"(SELECT id FROM taskgroupv2 WHERE user_group_id = $2 AND resource_id = $3 "
					"AND pkg_name = $4 AND version = $5)",
				    (db_param_t[]){ P_BOOL(1), P_INT(gid), P_INT(rid),
						    P_TEXT(json_string_value(json_array_get(c, 0))),
						    P_TEXT(json_string_value(json_array_get(c, 1))),
						    P_TEXT(json_string_value(json_array_get(c, 2))) },
				    6, NULL))
				goto fail;
		}
	}
	if (db_commit(db))
		goto fail;
	rc = 0;
	goto counted;
fail:
	sync_failed(db_errmsg(db));
	db_rollback(db);
counted:
	if (count_core(db, &post))
		goto dberr;
	printf("Final count of core tasks: %lld\n", (long long)post);
	goto out;
dberr:
	fprintf(stderr, "fractalctl sync-core-tasks: error: %s\n", db_errmsg(db));
	rc = 1;
out:
	if (db)
		db_close(db);
	json_decref(rg);
	json_decref(base);
	json_decref(add);
	json_decref(rem);
	json_decref(final);
	return rc;
}

int cmd_update_db_data(int argc, char **argv)
{
	static const char desc[] = "Apply data-migration script to an existing database.";
	struct cli_opt none[1];
	int rc = cli_parse("update-db-data", desc, argc, argv, none, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	/* upstream names its data-migration modules after major_minor_micro */
	char slug[32];
	int ma = 0, mi = 0, pa = 0;
	sscanf(FRACTAL_VERSION, "%d.%d.%d", &ma, &mi, &pa);
	snprintf(slug, sizeof(slug), "%d_%d_%d", ma, mi, pa);
	printf("**WARNING**\nThis command acts directly on database data. If you have any doubt about this, do not "
	       "run it!\n\n");
	printf("Expected use case:\nYou have updated fractal-server from some old version to a target version, and now "
	       "need to fix some database data.\nThe detected target version is '%s' (corresponding to the "
	       "update-db-data module '%s.py').\nNote that the old and target versions MUST be consecutive, that is, "
	       "you cannot skip an intermediate version.\nThe list of released versions is available at "
	       "https://github.com/fractal-analytics-platform/fractal-server/blob/main/CHANGELOG.md.\n\n",
	       FRACTAL_VERSION, slug);
	if (access(".fractal_server.env", F_OK)) {
		fprintf(stderr, "This command will look for a '.fractal_server.env' file, but there isn't one in the "
				"current directory.\n");
		return 1;
	}
	const char *questions[] = {
		"Do you confirm that the old and target versions are consecutive?",
		"Do you confirm that the target version is " FRACTAL_VERSION "?",
		"Have you run 'fractalctl set-db' with the target version?",
		"Have you made a backup of your database (e.g. via `pg_dump`)?",
		"Are you sure you want to proceed?",
	};
	char line[256];
	for (size_t i = 0; i < sizeof(questions) / sizeof(*questions); i++) {
		printf("%s (yes/no)\n", questions[i]);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			line[0] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "yes")) {
			fprintf(stderr, "Answer was '%s'; exit.\n", line);
			return 1;
		}
	}
	/* fractal-server 2.24 ships no data migration (its last one is 2.23.0,
	 * whose changes our set-db schema already carries) */
	printf("Update-db module for version %s not found; exit.\nOriginal error message: No module named "
	       "'fractal_server.data_migrations.%s'\n", FRACTAL_VERSION, slug);
	return 0;
}
