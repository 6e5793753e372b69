/* set_db.c — fractalctl set-db: create the SQLite file if missing, then
 * bring the schema of either engine to the newest revision (upstream:
 * alembic upgrade head). Idempotent; an unknown revision is refused. */
#include <stdio.h>

#include "cli/cli.h"
#include "config/settings.h"
#include "db/migrate.h"

int cmd_set_db(int argc, char **argv)
{
	struct cli_opt none[1];
	int rc = cli_parse("set-db", "Initialise/upgrade database schemas.", argc, argv, none, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = cli_load_settings(SETTINGS_DATABASE)))
		return rc;
	sb_t err = SB_INIT, log = SB_INIT, what = SB_INIT;
	db_describe(&what);
	db_t *db = db_open(1, &err);
	if (!db) {
		fprintf(stderr, "fractalctl set-db: error: %s\n", err.buf);
		rc = 1;
		goto out;
	}
	printf("START: set-db on %s\n", what.buf);
	int n = migrate_up(db, &log, &err);
	fputs(log.buf, stdout);
	if (n < 0) {
		fprintf(stderr, "fractalctl set-db: error: %s\n", err.buf);
		rc = 1;
	} else if (n == 0) {
		printf("END: schema already at the newest revision (%s), nothing to do\n", migrate_head());
	} else {
		printf("END: schema at the newest revision (%s)\n", migrate_head());
	}
	db_close(db);
out:
	sb_release(&err);
	sb_release(&log);
	sb_release(&what);
	return rc;
}
