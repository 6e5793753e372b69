/* dump.h — fractalctl dump and restore: the whole database as one
 * engine-neutral file, so that a backup taken on one engine loads into the
 * other. The format (JSON Lines, optionally gzip'd) is described in
 * docs/database.md, "The dump format"; in short:
 *
 *   {"format":"fractal-server-dump","format_version":1,"schema_revision":...}   header
 *   {"table":"resource","columns":["id",...],"next_id":3}                      each table,
 *   [1,"local",...]                                                            then its rows
 *   {"end":true,"tables":22,"rows":1234,"row_counts":{...},"sha256":"..."}       end marker
 *
 * Tables come in foreign-key order (a table after every table it
 * references), rows in primary-key order, so that restore inserts them as it
 * reads them and two dumps of the same data are equal line for line.
 *
 * Only the db.h interface is used: nothing here knows which engine runs. */
#ifndef DUMP_H
#define DUMP_H

#include <stdint.h>

#include "db/db.h"
#include "util/sb.h"

#define DUMP_FORMAT "fractal-server-dump"
#define DUMP_FORMAT_VERSION 1

struct dump_stats {
	int tables;
	int64_t rows;
};

/* Writes a consistent snapshot of the database into path (gzip'd when the
 * name ends in ".gz"), through a temporary file in the same folder that is
 * renamed into place only once complete; the file is created mode 0600, as
 * it holds password hashes and OAuth tokens. Other connections may keep
 * writing meanwhile. Returns 0, or -1 with a one-line message in err (and
 * no file left behind). */
int dump_write(db_t *db, const char *path, struct dump_stats *st, sb_t *err);

/* Loads a dump into db, which must be at the dump's schema revision and
 * hold no rows (but alembic_version's). The whole file is first read and
 * checked (header, format version, revision, structure, checksum, end
 * marker); then every row is inserted in one transaction, ids preserved,
 * and the id counters moved past the dump's. Returns 0, or -1 with a
 * one-line message in err, the database unchanged. */
int dump_restore(db_t *db, const char *path, struct dump_stats *st, sb_t *err);

#endif
