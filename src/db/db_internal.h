/* db_internal.h — what db.c shares with the engine backends; nothing
 * outside src/db/ includes it. A backend fills a db_res_t through
 * res_new()/res_add() and reports errors through db_set_error(). */
#ifndef DB_INTERNAL_H
#define DB_INTERNAL_H

#include "db/db.h"
#include "util/arena.h"
#include "util/sb.h"

struct db_ops {
	const char *name;
	const char *begin_sql;
	const char *snapshot_sql;     /* db_begin_snapshot() */
	int (*exec)(db_t *db, const char *sql, const db_param_t *p, int n, db_res_t **res);
	int (*exec_script)(db_t *db, const char *sql);
	int (*table_exists)(db_t *db, const char *table);
	int (*count_tables)(db_t *db);
	const char *(*file)(const db_t *db);   /* NULL: no file of ours */
	/* fill s->tables (already zeroed); db.c sorts and frees */
	int (*schema_read)(db_t *db, db_schema_t *s);
	int (*id_counter_get)(db_t *db, const char *table, int64_t *next);
	int (*id_counter_set)(db_t *db, const char *table, int64_t next);
	int (*server_lock)(db_t *db);
	/* db_lock_key(); NULL: the transaction already serialises writers */
	int (*lock_key)(db_t *db, int32_t scope, int32_t id);
	int (*row_version)(db_t *db, const char *table, const char *column, int64_t id, char version[64], char **text);
	int (*json_array_edit)(db_t *db, const char *table, const char *column, int64_t id, long at, const char *item,
			       const char *text, size_t text_len, size_t from, size_t n, char version[64]);
	/* db_text_version(); NULL: the row's token is not a function of its text */
	int (*text_version)(const char *text, size_t len, char version[64]);
	/* db_change_token(); NULL: the engine has none */
	int (*change_token)(db_t *db, uint64_t *token);
	int (*self_change_token)(db_t *db, uint64_t *token);
	void (*close)(db_t *db);
};

struct db {
	const struct db_ops *ops;
	void *conn;              /* the backend's own state */
	sb_t err;
	enum db_errclass cls;
	int echo;
	int in_tx;
};

struct db_res {
	int nrows, ncols, cap;
	char **cells;            /* nrows * ncols, NULL for SQL NULL */
	arena_t arena;
};

db_res_t *res_new(int ncols);
/* Appends one row; vals/lens are ncols long; vals[i] NULL means NULL. */
void res_add_row(db_res_t *r, const char *const *vals, const size_t *lens);
/* DB_ECHO's log line for one statement (for a backend that runs a statement
 * itself instead of through db_exec()). */
void db_echo(const char *sql, const db_param_t *p, int n, int64_t usec, int rc);
void db_set_error(db_t *db, enum db_errclass cls, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

extern const struct db_ops sqlite_ops;
extern const struct db_ops postgres_ops;
db_t *sqlite_open(int create, sb_t *err);
db_t *postgres_open(sb_t *err);

/* Appends a table to s (name copied) and returns it, to be filled with
 * table_add_column() / table_add_ref(). */
struct db_table *schema_add_table(db_schema_t *s, const char *name);
void table_add_column(struct db_table *t, const char *name, enum db_type type, int pk);
void table_add_ref(struct db_table *t, const char *referenced);

/* The canonical timestamp form from PostgreSQL's ISO output
 * ("2026-11-26 17:00:00.12+00" -> "2026-11-26T17:00:00.120000+00:00"). */
void ts_canonical(const char *in, sb_t *out);

#endif
