/* migrate.c — see migrate.h.
 *
 * Each step runs in its own transaction that first takes the migration lock
 * (BEGIN IMMEDIATE on SQLite, an advisory transaction lock on PostgreSQL),
 * then reads the current revision, so two set-db runs at once apply each
 * migration exactly once. */
#include "db/migrate.h"

#include <stdio.h>
#include <string.h>

#include "build_config.h"
#include "config/settings.h"

/* arbitrary, constant key for pg_advisory_xact_lock */
#define PG_MIGRATION_LOCK 7244524

struct step {
	const char *name;
	const char *revision;   /* points into a static buffer table below */
	const char *sql;
};

#define MAX_STEPS 64
static char revbuf[MAX_STEPS][64];

/* The steps for the running engine, in order. */
static int steps_for(const char *engine, struct step *out)
{
	int n = 0;
	for (const struct migration_file *f = migration_files; f->engine; f++) {
		if (strcmp(f->engine, engine) || n == MAX_STEPS)
			continue;
		const char *r = strstr(f->sql, "-- revision: ");
		revbuf[n][0] = '\0';
		if (r)
			sscanf(r + 13, "%63[0-9a-zA-Z_]", revbuf[n]);
		out[n].name = f->name;
		out[n].revision = revbuf[n];
		out[n].sql = f->sql;
		n++;
	}
	return n;
}

static const char *engine_of_settings(void)
{
	return settings.db_engine == DB_ENGINE_POSTGRES ? "postgres" : "sqlite";
}

const char *migrate_head(void)
{
	static struct step steps[MAX_STEPS];
	int n = steps_for("sqlite", steps);
	return n ? steps[n - 1].revision : "";
}

void db_describe(sb_t *out)
{
	if (settings.db_engine == DB_ENGINE_POSTGRES)
		sb_addf(out, "PostgreSQL database '%s' at %s:%lld", settings.pg_db, settings.pg_host,
			(long long)settings.pg_port);
	else
		sb_addf(out, "SQLite database %s", settings.sqlite_path);
}

/* Reads the current revision: 1 and rev set, 0 for an empty database, -1
 * on error or refusal (message in err). */
static int current_revision(db_t *db, char rev[64], sb_t *err)
{
	int exists = db_table_exists(db, "alembic_version");
	if (exists < 0) {
		sb_addf(err, "cannot read the schema revision: %s", db_errmsg(db));
		return -1;
	}
	if (!exists) {
		int n = db_count_tables(db);
		if (n < 0) {
			sb_addf(err, "cannot list tables: %s", db_errmsg(db));
			return -1;
		}
		if (n > 0) {
			db_describe(err);
			sb_addf(err, " has %d tables but no alembic_version table: it is not a fractal-server database; refusing to alter it", n);
			return -1;
		}
		return 0;
	}
	db_res_t *r;
	if (db_exec(db, "SELECT version_num FROM alembic_version", NULL, 0, &r)) {
		sb_addf(err, "cannot read the schema revision: %s", db_errmsg(db));
		return -1;
	}
	if (db_nrows(r) != 1) {
		db_describe(err);
		sb_addf(err, " has %d rows in alembic_version (expected one); refusing to alter it", db_nrows(r));
		db_res_free(r);
		return -1;
	}
	snprintf(rev, 64, "%s", db_text(r, 0, 0));
	db_res_free(r);
	return 1;
}

static int index_of(const struct step *steps, int n, const char *rev)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(steps[i].revision, rev))
			return i;
	return -1;
}

static void unknown_revision(const char *rev, const struct step *steps, int n, sb_t *err)
{
	db_describe(err);
	sb_addf(err, " is at schema revision '%s', which this fractalctl (%s) does not know (known:", rev, FRACTAL_VERSION);
	for (int i = 0; i < n; i++)
		sb_addf(err, " %s", steps[i].revision);
	sb_adds(err, "); refusing to alter it");
}

static int lock(db_t *db)
{
	if (settings.db_engine != DB_ENGINE_POSTGRES)
		return 0; /* BEGIN IMMEDIATE already holds the write lock */
	db_param_t p[] = { P_INT(PG_MIGRATION_LOCK) };
	return db_exec(db, "SELECT pg_advisory_xact_lock($1)", p, 1, NULL);
}

int migrate_up(db_t *db, sb_t *log, sb_t *err)
{
	struct step steps[MAX_STEPS];
	int n = steps_for(engine_of_settings(), steps);
	int applied = 0;
	for (;;) {
		if (db_begin(db) || lock(db)) {
			sb_addf(err, "cannot start the migration transaction: %s", db_errmsg(db));
			db_rollback(db);
			return -1;
		}
		char rev[64];
		int has = current_revision(db, rev, err);
		if (has < 0) {
			db_rollback(db);
			return -1;
		}
		int next = 0;
		if (has) {
			int at = index_of(steps, n, rev);
			if (at < 0) {
				unknown_revision(rev, steps, n, err);
				db_rollback(db);
				return -1;
			}
			next = at + 1;
		}
		if (next >= n) {
			db_rollback(db); /* nothing written */
			return applied;
		}
		if (db_exec_script(db, steps[next].sql)) {
			sb_addf(err, "migration %s failed: %s (nothing was changed by it)", steps[next].name, db_errmsg(db));
			db_rollback(db);
			return -1;
		}
		if (has) {
			db_param_t p[] = { P_TEXT(steps[next].revision), P_TEXT(rev) };
			if (db_exec(db, "UPDATE alembic_version SET version_num = $1 WHERE version_num = $2", p, 2, NULL)) {
				sb_addf(err, "migration %s: cannot record the revision: %s", steps[next].name, db_errmsg(db));
				db_rollback(db);
				return -1;
			}
		}
		if (db_commit(db)) {
			sb_addf(err, "migration %s: commit failed: %s", steps[next].name, db_errmsg(db));
			db_rollback(db);
			return -1;
		}
		sb_addf(log, "applied migration %s (revision %s)\n", steps[next].name, steps[next].revision);
		applied++;
	}
}

int migrate_check(db_t *db, sb_t *err)
{
	struct step steps[MAX_STEPS];
	int n = steps_for(engine_of_settings(), steps);
	char rev[64];
	int has = current_revision(db, rev, err);
	if (has < 0)
		return -1;
	if (!has) {
		db_describe(err);
		sb_adds(err, " has no schema: run 'fractalctl set-db' first");
		return -1;
	}
	int at = index_of(steps, n, rev);
	if (at < 0) {
		unknown_revision(rev, steps, n, err);
		return -1;
	}
	if (at != n - 1) {
		db_describe(err);
		sb_addf(err, " is at schema revision '%s', not the newest '%s': run 'fractalctl set-db'", rev, steps[n - 1].revision);
		return -1;
	}
	return 0;
}
