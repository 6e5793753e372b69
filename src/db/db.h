/* db.h — the one door to the database. Nothing outside src/db/ knows which
 * engine runs.
 *
 * SQL is written once, in PostgreSQL's dialect restricted to what SQLite
 * also runs: numbered placeholders $1..$N (the SQLite backend rewrites them
 * to ?N), RETURNING, ON CONFLICT, CURRENT_TIMESTAMP. Parameters are typed;
 * the few types that differ between engines are mapped here:
 *   - DB_BOOL: boolean on PostgreSQL, 0/1 on SQLite;
 *   - DB_JSON: json/jsonb on PostgreSQL, text on SQLite;
 *   - DB_ARRAY: a JSON array given as text; a PostgreSQL array (varchar[],
 *     integer[]) on PostgreSQL, the JSON text itself on SQLite;
 *   - DB_TS: an ISO 8601 timestamp; timestamptz on PostgreSQL, text on SQLite;
 *   - DB_SECRET: text that DB_ECHO never prints (passwords, hashes).
 * Results come back as text cells in one canonical form whatever the engine:
 * PostgreSQL arrays as JSON array text, timestamps as
 * "YYYY-mm-ddTHH:MM:SS.ffffff+00:00", JSON as its text. Booleans are the
 * one exception: "t"/"f" on PostgreSQL, "1"/"0" on SQLite; db_bool() reads
 * both.
 *
 * Ownership: a db_res_t belongs to the caller, freed with db_res_free();
 * strings returned by db_text() live as long as the result. A db_t belongs
 * to one thread at a time. Every function returning int gives 0 on success
 * and -1 on error, with the message in db_errmsg() and the class in
 * db_errclass(). DB_ECHO logging happens here, with secrets masked. */
#ifndef DB_H
#define DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct db db_t;
typedef struct db_res db_res_t;

enum db_type { DB_NULL, DB_INT, DB_DOUBLE, DB_TEXT, DB_BOOL, DB_JSON, DB_ARRAY, DB_TS, DB_SECRET };

typedef struct db_param {
	enum db_type type;
	int64_t i;       /* DB_INT, DB_BOOL */
	double d;        /* DB_DOUBLE */
	const char *s;   /* DB_TEXT, DB_JSON, DB_ARRAY, DB_TS, DB_SECRET */
} db_param_t;

static inline db_param_t db_p_str(enum db_type t, const char *s)
{
	db_param_t p = { .type = s ? t : DB_NULL, .s = s };
	return p;
}
#define P_NULL ((db_param_t){ .type = DB_NULL })
#define P_INT(v) ((db_param_t){ .type = DB_INT, .i = (v) })
#define P_BOOL(v) ((db_param_t){ .type = DB_BOOL, .i = !!(v) })
#define P_DOUBLE(v) ((db_param_t){ .type = DB_DOUBLE, .d = (v) })
/* text-like parameters: a NULL pointer binds SQL NULL */
#define P_TEXT(v) db_p_str(DB_TEXT, (v))
#define P_JSON(v) db_p_str(DB_JSON, (v))
#define P_ARRAY(v) db_p_str(DB_ARRAY, (v))
#define P_TS(v) db_p_str(DB_TS, (v))
#define P_SECRET(v) db_p_str(DB_SECRET, (v))

enum db_errclass {
	DB_OK,
	DB_ERR_CONSTRAINT,   /* unique, foreign key, check, not null */
	DB_ERR_CONNECT,      /* cannot reach or open the database */
	DB_ERR_OTHER,
};

/* Opens a connection as the settings say. With create=1 a missing SQLite
 * file is created (set-db); otherwise it must exist. Returns NULL and
 * writes a one-line message (naming the path, or host/port/db/user, never
 * the password) into err. */
struct sb;
db_t *db_open(int create, struct sb *err);
void db_close(db_t *db);
/* Connections of this process open now (for /metrics). */
int db_open_count(void);
const char *db_engine_name(const db_t *db);

/* Runs one statement. res may be NULL when no rows are wanted. */
int db_exec(db_t *db, const char *sql, const db_param_t *params, int nparams, db_res_t **res);
/* Runs a script of several statements (migrations); no parameters. */
int db_exec_script(db_t *db, const char *sql);

int db_begin(db_t *db);      /* BEGIN (IMMEDIATE on SQLite: we are about to write) */
int db_commit(db_t *db);
int db_rollback(db_t *db);

/* 1 if the table exists in the current database/schema, 0 if not, -1 on error. */
int db_table_exists(db_t *db, const char *table);
/* Number of user tables, or -1. */
int db_count_tables(db_t *db);

/* The file that holds the database (SQLite), or NULL when a server holds
 * it (PostgreSQL). Lives as long as db. */
const char *db_file(const db_t *db);

/* A read-only transaction that sees one consistent snapshot of the whole
 * database while other connections keep writing (SQLite: a deferred read
 * transaction, which WAL mode lets writers run beside; PostgreSQL:
 * REPEATABLE READ READ ONLY). End it with db_commit() or db_rollback(). */
int db_begin_snapshot(db_t *db);

/* ---- schema introspection, for dump and restore ----
 *
 * A column's type in db_type terms: DB_INT, DB_BOOL, DB_DOUBLE, DB_JSON,
 * DB_ARRAY, DB_TS or DB_TEXT. SQLite declares JSON, arrays and timestamps
 * as TEXT, so there they read as DB_TEXT; PostgreSQL tells them apart. */
struct db_column {
	char *name;
	enum db_type type;
	int pk;              /* 1-based position in the primary key; 0: not in it */
};

struct db_table {
	char *name;
	int ncols;
	struct db_column *cols;   /* in the table's column order */
	int nrefs;
	char **refs;         /* tables this one references by a foreign key,
	                        itself excluded, each once */
	int id_counter;      /* 1: its "id" comes from a sequence (PostgreSQL)
	                        or AUTOINCREMENT (SQLite) */
};

typedef struct db_schema {
	int ntables;
	struct db_table *tables;  /* every table of the current schema (SQLite's
	                             own sqlite_* excluded), sorted by name */
} db_schema_t;

/* Reads the tables, columns, primary keys and foreign keys. *out belongs to
 * the caller, freed with db_schema_free(). */
int db_schema_read(db_t *db, db_schema_t **out);
void db_schema_free(db_schema_t *s);
const struct db_table *db_schema_table(const db_schema_t *s, const char *name);

/* The id the table's counter hands out next (1 for a fresh one), and
 * setting it. Only for tables with id_counter set. PostgreSQL sequences are
 * not transactional: a setval stays even if the transaction rolls back. */
int db_id_counter_get(db_t *db, const char *table, int64_t *next);
int db_id_counter_set(db_t *db, const char *table, int64_t next);

/* A token that changes whenever the row's `column` changes, so that a
 * parsed copy of a large JSON column can be cached (model/imgcache.c).
 * PostgreSQL: the row's xmin and ctid. SQLite: length and hash of the
 * column's text. When text is not NULL, the column's text (of that
 * version) is also handed back in *text (malloc'd, caller frees).
 * Returns 1, 0 when there is no such row, -1 on error. */
int db_row_version(db_t *db, const char *table, const char *column, int64_t id, char version[64], char **text);

/* A number that changes whenever any connection, of this process or
 * another, commits a change to the database: a cache checked against it
 * can skip db_row_version while it stays the same. SQLite: PRAGMA
 * data_version on a watcher connection of the process's own that never
 * writes. Returns 0 with *token set, 1 when the engine has no such number
 * (PostgreSQL, where db_row_version is cheap), -1 on error. */
int db_change_token(db_t *db, uint64_t *token);
/* The same number as seen by this connection: it changes with the commits
 * of every other connection but not with this one's own, so that a writer
 * can tell that nobody else committed between two points (SQLite: PRAGMA
 * data_version on db). Returns 0, 1 (no such number) or -1. */
int db_self_change_token(db_t *db, uint64_t *token);

/* Edits one element of the JSON array in table.column of row id, inside
 * the caller's transaction: at >= 0 with item (one element's JSON text)
 * replaces element at; at >= 0 without item (NULL) removes it; at < 0
 * appends item; at < 0 without item, with n (size_t)-1, stores text
 * (NUL-terminated) as the whole new array. The caller has the text after
 * the edit at hand: when n
 * is (size_t)-1, text is all of it (text_len bytes); else the edit keeps
 * the stored text's length, text_len, and text holds the n bytes that
 * replace those at from. SQLite stores the whole text, or overwrites only
 * those n bytes (incremental blob I/O: a few pages written instead of the
 * whole value); PostgreSQL ignores text and edits its jsonb (jsonb_set,
 * -, ||), sparing the parse of the whole list. version gets the row's new
 * db_row_version token, or "" where that token is a function of the text
 * that the engine would have to read whole to compute (SQLite): the
 * caller computes it with db_text_version when it needs it. Returns 0, or
 * -1 (also when there is no such row). */
int db_json_array_edit(db_t *db, const char *table, const char *column, int64_t id, long at, const char *item,
		       const char *text, size_t text_len, size_t from, size_t n, char version[64]);
/* The db_row_version token of a row whose column holds this text (len
 * bytes), where the token is a function of the text alone (SQLite): 0, or
 * 1 when it is not (PostgreSQL). */
int db_text_version(db_t *db, const char *text, size_t len, char version[64]);

/*
 * The server lock: one `fractalctl start` per database owns the jobs and
 * task-group activities left unfinished, and only the owner may fail them
 * at start-up (another server on the same database may be running them).
 * PostgreSQL: a session advisory lock on this connection; SQLite: flock()
 * on the database file through a descriptor of this connection. Either is
 * released when the connection closes or the process dies. Returns 1 when
 * taken, 0 when another process holds it, -1 on error (message in
 * db_errmsg).
 */
int db_server_lock(db_t *db);

/*
 * Serialises a check-then-write section (is the name free? then insert)
 * among all connections: blocks until no other transaction holds the same
 * (scope, id) key, and holds it until this transaction ends. Call it inside
 * db_begin(), before the check; scope names what is checked ("project-name")
 * and id its owner (a user, a project; 0 for a global name). PostgreSQL:
 * pg_advisory_xact_lock on a hash of scope and id. SQLite: nothing, since
 * db_begin()'s BEGIN IMMEDIATE already holds the database's write lock.
 * Outside a transaction it fails.
 */
int db_lock_key(db_t *db, const char *scope, int64_t id);

const char *db_errmsg(const db_t *db);
enum db_errclass db_errclass(const db_t *db);

/* Results. */
int db_nrows(const db_res_t *r);
int db_isnull(const db_res_t *r, int row, int col);
const char *db_text(const db_res_t *r, int row, int col);   /* NULL if null */
int64_t db_int(const db_res_t *r, int row, int col);
double db_double(const db_res_t *r, int row, int col);
int db_bool(const db_res_t *r, int row, int col);
void db_res_free(db_res_t *r);

#endif
