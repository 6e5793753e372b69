/* migrate.h — schema revisions: ordered per-engine SQL files compiled into
 * the binary (src/db/migrations/<engine>/NNNN_name.sql, each carrying a
 * "-- revision: <alembic id>" line), applied one transaction each.
 * The revision is recorded in alembic_version with upstream's ids, so a
 * database created by upstream at a revision we know is served as is. */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "db/db.h"
#include "util/sb.h"

struct migration_file {
	const char *engine;
	const char *name;
	const char *sql;
};
extern const struct migration_file migration_files[];

/* The newest revision this binary knows. */
const char *migrate_head(void);
/* Brings the schema to the newest revision. Writes one line per applied
 * migration into log. Returns the number applied (0: already current), or
 * -1 with a one-line message in err; a database at an unknown revision, or
 * with tables but no alembic_version, is refused and never altered. */
int migrate_up(db_t *db, sb_t *log, sb_t *err);
/* 0 if the schema is at the head revision; else -1 with a message saying
 * what to do. */
int migrate_check(db_t *db, sb_t *err);
/* "SQLite database /path" or "PostgreSQL database 'x' at host:port". */
void db_describe(sb_t *out);

#endif
