/* db.c — the engine-neutral half of the database interface: opening by
 * settings, DB_ECHO, transactions, results and their getters. See db.h. */
#include "db/db_internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "config/settings.h"
#include "util/log.h"
#include "util/timeutil.h"

static atomic_int open_connections;

int db_open_count(void)
{
	return atomic_load(&open_connections);
}

db_t *db_open(int create, sb_t *err)
{
	db_t *db;
	if (settings.db_engine == DB_ENGINE_POSTGRES) {
#ifdef HAVE_POSTGRES
		db = postgres_open(err);
#else
		sb_adds(err, "DB_ENGINE=postgres, but this fractalctl was built without PostgreSQL support");
		db = NULL;
#endif
	} else {
		db = sqlite_open(create, err);
	}
	if (db) {
		db->echo = settings.db_echo;
		atomic_fetch_add(&open_connections, 1);
	}
	return db;
}

void db_close(db_t *db)
{
	if (!db)
		return;
	db->ops->close(db);
	atomic_fetch_sub(&open_connections, 1);
	sb_release(&db->err);
	free(db);
}

const char *db_engine_name(const db_t *db)
{
	return db->ops->name;
}

void db_set_error(db_t *db, enum db_errclass cls, const char *fmt, ...)
{
	sb_reset(&db->err);
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&db->err, fmt, ap);
	va_end(ap);
	/* one line: engines end messages with newlines */
	while (db->err.len && (db->err.buf[db->err.len - 1] == '\n' || db->err.buf[db->err.len - 1] == ' '))
		db->err.buf[--db->err.len] = '\0';
	for (size_t i = 0; i < db->err.len; i++)
		if (db->err.buf[i] == '\n')
			db->err.buf[i] = ' ';
	db->cls = cls;
}

const char *db_errmsg(const db_t *db)
{
	return db->err.buf;
}

enum db_errclass db_errclass(const db_t *db)
{
	return db->cls;
}

/* DB_ECHO: the statement, its parameters (secrets masked, long values cut)
 * and its duration, printed whatever FRACTAL_LOGGING_LEVEL says. */
void db_echo(const char *sql, const db_param_t *p, int n, int64_t usec, int rc)
{
	sb_t sb;
	sb_init(&sb, 256);
	/* one line per statement: fold whitespace; cut scripts (migrations) */
	size_t kept = 0;
	int space = 0;
	for (const char *c = sql; *c && kept < 2000; c++) {
		if (*c == ' ' || *c == '\n' || *c == '\t' || *c == '\r') {
			space = sb.len > 0;
			continue;
		}
		if (space)
			sb_addc(&sb, ' ');
		space = 0;
		sb_addc(&sb, *c);
		kept++;
	}
	if (kept >= 2000)
		sb_addf(&sb, " ...(%zu bytes)", strlen(sql));
	sb_adds(&sb, " | params: [");
	for (int i = 0; i < n; i++) {
		if (i)
			sb_adds(&sb, ", ");
		switch (p[i].type) {
		case DB_NULL: sb_adds(&sb, "NULL"); break;
		case DB_INT: sb_addf(&sb, "%lld", (long long)p[i].i); break;
		case DB_BOOL: sb_adds(&sb, p[i].i ? "true" : "false"); break;
		case DB_DOUBLE: sb_addf(&sb, "%g", p[i].d); break;
		case DB_SECRET: sb_adds(&sb, "'***'"); break;
		default: {
			size_t len = strlen(p[i].s);
			if (len > 200) {
				sb_add_json_strn(&sb, p[i].s, 200);
				sb_addf(&sb, "...(%zu bytes)", len);
			} else {
				sb_add_json_str(&sb, p[i].s);
			}
		}
		}
	}
	sb_addf(&sb, "] | %.3f ms%s", (double)usec / 1000.0, rc ? " | ERROR" : "");
	/* DB_ECHO is explicit: print regardless of the log threshold */
	log_always(LOG_INFO, "db.echo", "%s", sb.buf);
	sb_release(&sb);
}

int db_exec(db_t *db, const char *sql, const db_param_t *params, int nparams, db_res_t **res)
{
	if (res)
		*res = NULL;
	db->cls = DB_OK;
	sb_reset(&db->err);
	int64_t t0 = db->echo ? mono_usec() : 0;
	int rc = db->ops->exec(db, sql, params, nparams, res);
	if (db->echo)
		db_echo(sql, params, nparams, mono_usec() - t0, rc);
	return rc;
}

int db_exec_script(db_t *db, const char *sql)
{
	db->cls = DB_OK;
	int64_t t0 = db->echo ? mono_usec() : 0;
	int rc = db->ops->exec_script(db, sql);
	if (db->echo)
		db_echo(sql, NULL, 0, mono_usec() - t0, rc);
	return rc;
}

int db_begin(db_t *db)
{
	int rc = db_exec(db, db->ops->begin_sql, NULL, 0, NULL);
	if (!rc)
		db->in_tx = 1;
	return rc;
}

int db_commit(db_t *db)
{
	int rc = db_exec(db, "COMMIT", NULL, 0, NULL);
	db->in_tx = 0;
	return rc;
}

int db_rollback(db_t *db)
{
	/* keep the error that made us roll back */
	sb_t saved = db->err;
	enum db_errclass cls = db->cls;
	sb_init(&db->err, 0);
	int rc = db_exec(db, "ROLLBACK", NULL, 0, NULL);
	sb_release(&db->err);
	db->err = saved;
	db->cls = cls;
	db->in_tx = 0;
	return rc;
}

int db_lock_key(db_t *db, const char *scope, int64_t id)
{
	if (!db->in_tx) {
		db_set_error(db, DB_ERR_OTHER, "db_lock_key(%s) outside a transaction", scope);
		return -1;
	}
	if (!db->ops->lock_key)
		return 0;
	/* FNV-1a: a stable 32-bit key per scope; ids of the schema are int4 */
	uint32_t h = 2166136261u;
	for (const char *c = scope; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	return db->ops->lock_key(db, (int32_t)h, (int32_t)id);
}

const char *db_file(const db_t *db)
{
	return db->ops->file ? db->ops->file(db) : NULL;
}

int db_begin_snapshot(db_t *db)
{
	int rc = db_exec(db, db->ops->snapshot_sql, NULL, 0, NULL);
	if (!rc)
		db->in_tx = 1;
	return rc;
}

int db_table_exists(db_t *db, const char *table)
{
	return db->ops->table_exists(db, table);
}

int db_count_tables(db_t *db)
{
	return db->ops->count_tables(db);
}

/* ---- schema ---- */

struct db_table *schema_add_table(db_schema_t *s, const char *name)
{
	s->tables = xrealloc(s->tables, (size_t)(s->ntables + 1) * sizeof(*s->tables));
	struct db_table *t = &s->tables[s->ntables++];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(name);
	return t;
}

void table_add_column(struct db_table *t, const char *name, enum db_type type, int pk)
{
	t->cols = xrealloc(t->cols, (size_t)(t->ncols + 1) * sizeof(*t->cols));
	t->cols[t->ncols++] = (struct db_column){ .name = xstrdup(name), .type = type, .pk = pk };
}

void table_add_ref(struct db_table *t, const char *referenced)
{
	if (!strcmp(referenced, t->name))
		return;
	for (int i = 0; i < t->nrefs; i++)
		if (!strcmp(t->refs[i], referenced))
			return;
	t->refs = xrealloc(t->refs, (size_t)(t->nrefs + 1) * sizeof(char *));
	t->refs[t->nrefs++] = xstrdup(referenced);
}

static int table_cmp(const void *a, const void *b)
{
	return strcmp(((const struct db_table *)a)->name, ((const struct db_table *)b)->name);
}

int db_schema_read(db_t *db, db_schema_t **out)
{
	db_schema_t *s = xcalloc(1, sizeof(*s));
	*out = NULL;
	if (db->ops->schema_read(db, s)) {
		db_schema_free(s);
		return -1;
	}
	if (s->ntables)
		qsort(s->tables, (size_t)s->ntables, sizeof(*s->tables), table_cmp);
	*out = s;
	return 0;
}

void db_schema_free(db_schema_t *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->ntables; i++) {
		struct db_table *t = &s->tables[i];
		for (int c = 0; c < t->ncols; c++)
			free(t->cols[c].name);
		for (int r = 0; r < t->nrefs; r++)
			free(t->refs[r]);
		free(t->cols);
		free(t->refs);
		free(t->name);
	}
	free(s->tables);
	free(s);
}

const struct db_table *db_schema_table(const db_schema_t *s, const char *name)
{
	for (int i = 0; i < s->ntables; i++)
		if (!strcmp(s->tables[i].name, name))
			return &s->tables[i];
	return NULL;
}

int db_id_counter_get(db_t *db, const char *table, int64_t *next)
{
	return db->ops->id_counter_get(db, table, next);
}

int db_id_counter_set(db_t *db, const char *table, int64_t next)
{
	return db->ops->id_counter_set(db, table, next);
}

/* ---- results ---- */

db_res_t *res_new(int ncols)
{
	db_res_t *r = xcalloc(1, sizeof(*r));
	r->ncols = ncols;
	return r;
}

void res_add_row(db_res_t *r, const char *const *vals, const size_t *lens)
{
	if (r->nrows == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->cells = xrealloc(r->cells, (size_t)r->cap * (size_t)(r->ncols ? r->ncols : 1) * sizeof(char *));
	}
	char **row = r->cells + (size_t)r->nrows * (size_t)r->ncols;
	for (int i = 0; i < r->ncols; i++)
		row[i] = vals[i] ? arena_strndup(&r->arena, vals[i], lens[i]) : NULL;
	r->nrows++;
}

int db_nrows(const db_res_t *r)
{
	return r ? r->nrows : 0;
}

static const char *cell(const db_res_t *r, int row, int col)
{
	if (!r || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
		return NULL;
	return r->cells[(size_t)row * (size_t)r->ncols + (size_t)col];
}

int db_isnull(const db_res_t *r, int row, int col)
{
	return cell(r, row, col) == NULL;
}

const char *db_text(const db_res_t *r, int row, int col)
{
	return cell(r, row, col);
}

int64_t db_int(const db_res_t *r, int row, int col)
{
	const char *c = cell(r, row, col);
	return c ? strtoll(c, NULL, 10) : 0;
}

double db_double(const db_res_t *r, int row, int col)
{
	const char *c = cell(r, row, col);
	return c ? strtod(c, NULL) : 0.0;
}

int db_bool(const db_res_t *r, int row, int col)
{
	const char *c = cell(r, row, col);
	return c && (c[0] == 't' || c[0] == '1' || c[0] == 'T');
}

void db_res_free(db_res_t *r)
{
	if (!r)
		return;
	arena_free(&r->arena);
	free(r->cells);
	free(r);
}

void ts_canonical(const char *in, sb_t *out)
{
	/* in: "YYYY-mm-dd HH:MM:SS[.f{1,6}]+HH[:MM]" */
	size_t n = strlen(in);
	if (n < 19) {
		sb_adds(out, in);
		return;
	}
	sb_add(out, in, 10);
	sb_addc(out, 'T');
	sb_add(out, in + 11, 8);
	const char *p = in + 19;
	char frac[7] = "000000";
	if (*p == '.') {
		p++;
		for (int i = 0; i < 6 && *p >= '0' && *p <= '9'; i++, p++)
			frac[i] = *p;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	sb_addc(out, '.');
	sb_adds(out, frac);
	if (*p == '+' || *p == '-') {
		sb_add(out, p, 3);
		sb_adds(out, strlen(p) >= 6 ? p + 3 : ":00");
	} else {
		sb_adds(out, "+00:00");
	}
}

int db_server_lock(db_t *db)
{
	db->cls = DB_OK;
	sb_reset(&db->err);
	return db->ops->server_lock(db);
}

int db_row_version(db_t *db, const char *table, const char *column, int64_t id, char version[64], char **text)
{
	if (text)
		*text = NULL;
	version[0] = '\0';
	return db->ops->row_version(db, table, column, id, version, text);
}

int db_json_array_edit(db_t *db, const char *table, const char *column, int64_t id, long at, const char *item,
		       const char *text, size_t text_len, size_t from, size_t n, char version[64])
{
	version[0] = '\0';
	return db->ops->json_array_edit(db, table, column, id, at, item, text, text_len, from, n, version);
}

int db_text_version(db_t *db, const char *text, size_t len, char version[64])
{
	return db->ops->text_version ? db->ops->text_version(text, len, version) : 1;
}

int db_change_token(db_t *db, uint64_t *token)
{
	return db->ops->change_token ? db->ops->change_token(db, token) : 1;
}

int db_self_change_token(db_t *db, uint64_t *token)
{
	return db->ops->self_change_token ? db->ops->self_change_token(db, token) : 1;
}
