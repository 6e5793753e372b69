/* backup.c — fractalctl dump and restore (ours; upstream has none and
 * relies on pg_dump). dump writes a consistent snapshot of the whole
 * database while the server keeps running; restore loads one into a
 * database that set-db has just created, on either engine, so that moving
 * between SQLite and PostgreSQL is a dump on one and a restore on the
 * other. The work is in src/db/dump.c; see docs/database.md. */
#include <stdio.h>

#include "cli/cli.h"
#include "config/settings.h"
#include "db/dump.h"
#include "db/migrate.h"
#include "util/timeutil.h"

int cmd_dump(int argc, char **argv)
{
	static const char desc[] = "Write a consistent snapshot of the whole database (every table, every row, the "
				   "schema revision) to a file, gzip'd when its name ends in .gz. The server may keep "
				   "running.";
	struct cli_opt opts[] = {
		{ "--output", "-o", "FILE", "the dump file to write (replaced if it exists)", NULL },
	};
	int rc = cli_parse("dump", desc, argc, argv, opts, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!opts[0].value)
		return cli_required("dump", desc, opts, 1, "--output");
	if ((rc = cli_load_settings(SETTINGS_DATABASE)))
		return rc;
	sb_t err = SB_INIT, what = SB_INIT;
	db_describe(&what);
	db_t *db = db_open(0, &err);
	if (!db) {
		fprintf(stderr, "fractalctl dump: error: %s\n", err.buf);
		rc = 1;
		goto out;
	}
	int64_t t0 = mono_usec();
	struct dump_stats st;
	if (dump_write(db, opts[0].value, &st, &err)) {
		fprintf(stderr, "fractalctl dump: error: %s\n", err.buf);
		rc = 1;
	} else {
		printf("dumped %d tables, %lld rows of %s to %s in %.2f s\n", st.tables, (long long)st.rows, what.buf,
		       opts[0].value, (double)(mono_usec() - t0) / 1e6);
	}
	db_close(db);
out:
	sb_release(&err);
	sb_release(&what);
	return rc;
}

int cmd_restore(int argc, char **argv)
{
	static const char desc[] = "Load a dump (plain or .gz) into the database, which set-db must have just created "
				   "and which must hold no data yet; all in one transaction, ids preserved.";
	struct cli_opt opts[] = {
		{ "FILE", NULL, NULL, "the dump file, as written by fractalctl dump", NULL },
	};
	int rc = cli_parse("restore", desc, argc, argv, opts, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!opts[0].value)
		return cli_required("restore", desc, opts, 1, "FILE");
	if ((rc = cli_load_settings(SETTINGS_DATABASE)))
		return rc;
	sb_t err = SB_INIT, what = SB_INIT;
	db_describe(&what);
	db_t *db = db_open(0, &err);
	if (!db) {
		fprintf(stderr, "fractalctl restore: error: %s\n", err.buf);
		rc = 1;
		goto out;
	}
	int64_t t0 = mono_usec();
	struct dump_stats st;
	if (dump_restore(db, opts[0].value, &st, &err)) {
		fprintf(stderr, "fractalctl restore: error: %s\n", err.buf);
		rc = 1;
	} else {
		printf("restored %d tables, %lld rows from %s into %s in %.2f s\n", st.tables, (long long)st.rows,
		       opts[0].value, what.buf, (double)(mono_usec() - t0) / 1e6);
	}
	db_close(db);
out:
	sb_release(&err);
	sb_release(&what);
	return rc;
}
