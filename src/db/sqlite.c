/* sqlite.c — the SQLite backend of db.h.
 *
 * One sqlite3 handle per db_t, opened with foreign keys on, WAL journal and
 * a busy timeout. Statements are prepared once per connection and cached by
 * their SQL text. Shared SQL uses PostgreSQL's $N placeholders; they are
 * rewritten to SQLite's ?N when a statement is first prepared (SQLite would
 * otherwise take "$1" as a *named* parameter and number names by first
 * appearance). */
#include "db/db_internal.h"
#include "db/sqlite_vfs.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/settings.h"
#include "util/jsonspan.h"
#include "util/timeutil.h"

#define BUSY_TIMEOUT_MS 10000

struct cached {
	char *sql;
	sqlite3_stmt *stmt;
	struct cached *next;
};

#define NBUCKETS 256

struct sqlite_conn {
	sqlite3 *h;
	struct cached *buckets[NBUCKETS];
	int lock_fd;        /* db_server_lock()'s descriptor, -1 if none */
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* $N -> ?N outside string literals and quoted identifiers; a trailing
 * " FOR UPDATE" (row locks, PostgreSQL) is dropped: SQLite has none, and
 * our write transactions (BEGIN IMMEDIATE) already hold the write lock. */
static char *rewrite_placeholders(const char *sql)
{
	char *out = xstrdup(sql);
	size_t n = strlen(out);
	if (n > 11 && !strcmp(out + n - 11, " FOR UPDATE"))
		out[n - 11] = '\0';
	/* PostgreSQL's jsonb_array_length as our own json_list_count (see
	 * list_count below) */
	static const char pg_fn[] = "jsonb_array_length(", our_fn[] = "json_list_count(";
	for (char *f = out; (f = strstr(f, pg_fn));) {
		memcpy(f, our_fn, sizeof(our_fn) - 1);
		memmove(f + sizeof(our_fn) - 1, f + sizeof(pg_fn) - 1, strlen(f + sizeof(pg_fn) - 1) + 1);
		f += sizeof(our_fn) - 1;
	}
	char quote = 0;
	for (char *p = out; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
			*p = '?';
		}
	}
	return out;
}

static void set_err(db_t *db, struct sqlite_conn *c, int rc)
{
	int ext = sqlite3_extended_errcode(c->h);
	enum db_errclass cls = (rc & 0xff) == SQLITE_CONSTRAINT ? DB_ERR_CONSTRAINT :
			       (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CANTOPEN ? DB_ERR_CONNECT :
			       DB_ERR_OTHER;
	(void)ext;
	db_set_error(db, cls, "%s", sqlite3_errmsg(c->h));
}

static sqlite3_stmt *prepare(db_t *db, struct sqlite_conn *c, const char *sql)
{
	unsigned b = hash(sql) % NBUCKETS;
	for (struct cached *e = c->buckets[b]; e; e = e->next)
		if (!strcmp(e->sql, sql))
			return e->stmt;
	char *text = rewrite_placeholders(sql);
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v3(c->h, text, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	free(text);
	if (rc != SQLITE_OK) {
		set_err(db, c, rc);
		sqlite3_finalize(stmt);
		return NULL;
	}
	struct cached *e = xmalloc(sizeof(*e));
	e->sql = xstrdup(sql);
	e->stmt = stmt;
	e->next = c->buckets[b];
	c->buckets[b] = e;
	return stmt;
}

static int bind(db_t *db, struct sqlite_conn *c, sqlite3_stmt *st, const db_param_t *p, int n)
{
	for (int i = 0; i < n; i++) {
		int rc;
		switch (p[i].type) {
		case DB_NULL: rc = sqlite3_bind_null(st, i + 1); break;
		case DB_INT:
		case DB_BOOL: rc = sqlite3_bind_int64(st, i + 1, p[i].i); break;
		case DB_DOUBLE: rc = sqlite3_bind_double(st, i + 1, p[i].d); break;
		default: rc = sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_STATIC);
		}
		if (rc != SQLITE_OK) {
			set_err(db, c, rc);
			return -1;
		}
	}
	return 0;
}

static int sq_exec(db_t *db, const char *sql, const db_param_t *p, int n, db_res_t **res)
{
	struct sqlite_conn *c = db->conn;
	sqlite3_stmt *st = prepare(db, c, sql);
	if (!st)
		return -1;
	if (sqlite3_bind_parameter_count(st) != n) {
		db_set_error(db, DB_ERR_OTHER, "statement expects %d parameters, got %d",
			     sqlite3_bind_parameter_count(st), n);
		return -1;
	}
	if (bind(db, c, st, p, n)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -1;
	}
	int ncols = sqlite3_column_count(st);
	db_res_t *r = res ? res_new(ncols) : NULL;
	const char **vals = ncols ? xcalloc((size_t)ncols, sizeof(char *)) : NULL;
	size_t *lens = ncols ? xcalloc((size_t)ncols, sizeof(size_t)) : NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!r)
			continue;
		for (int i = 0; i < ncols; i++) {
			if (sqlite3_column_type(st, i) == SQLITE_NULL) {
				vals[i] = NULL;
				lens[i] = 0;
			} else {
				vals[i] = (const char *)sqlite3_column_text(st, i);
				lens[i] = (size_t)sqlite3_column_bytes(st, i);
			}
		}
		res_add_row(r, vals, lens);
	}
	free(vals);
	free(lens);
	if (rc != SQLITE_DONE)
		set_err(db, c, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		db_res_free(r);
		return -1;
	}
	if (res)
		*res = r;
	return 0;
}

static int sq_exec_script(db_t *db, const char *sql)
{
	struct sqlite_conn *c = db->conn;
	char *msg = NULL;
	int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		db_set_error(db, (rc & 0xff) == SQLITE_CONSTRAINT ? DB_ERR_CONSTRAINT : DB_ERR_OTHER,
			     "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int sq_table_exists(db_t *db, const char *table)
{
	db_res_t *r;
	db_param_t p[] = { P_TEXT(table) };
	if (db_exec(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", p, 1, &r))
		return -1;
	int n = db_nrows(r);
	db_res_free(r);
	return n > 0;
}

static int sq_count_tables(db_t *db)
{
	db_res_t *r;
	if (db_exec(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'", NULL, 0, &r))
		return -1;
	int n = (int)db_int(r, 0, 0);
	db_res_free(r);
	return n;
}

/* SQLite's affinity rules (datatype3.html, 3.1), plus BOOLEAN, which
 * SQLite stores as NUMERIC and we as 0/1. */
static enum db_type decl_type(const char *decl)
{
	if (!decl)
		return DB_TEXT;
	if (strcasestr(decl, "INT"))
		return DB_INT;
	if (strcasestr(decl, "BOOL"))
		return DB_BOOL;
	if (strcasestr(decl, "REAL") || strcasestr(decl, "FLOA") || strcasestr(decl, "DOUB"))
		return DB_DOUBLE;
	return DB_TEXT;
}

static int sq_schema_read(db_t *db, db_schema_t *s)
{
	db_res_t *tr = NULL, *cr = NULL, *fr = NULL;
	if (db_exec(db, "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
		    NULL, 0, &tr))
		return -1;
	int rc = 0;
	for (int i = 0; i < db_nrows(tr) && !rc; i++) {
		const char *name = db_text(tr, i, 0), *sql = db_text(tr, i, 1);
		struct db_table *t = schema_add_table(s, name);
		db_param_t p[] = { P_TEXT(name) };
		if (db_exec(db, "SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid", p, 1, &cr) ||
		    db_exec(db, "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)", p, 1, &fr)) {
			rc = -1;
			break;
		}
		int has_id = 0;
		for (int c = 0; c < db_nrows(cr); c++) {
			table_add_column(t, db_text(cr, c, 0), decl_type(db_text(cr, c, 1)), (int)db_int(cr, c, 2));
			has_id |= !strcmp(db_text(cr, c, 0), "id");
		}
		for (int f = 0; f < db_nrows(fr); f++)
			table_add_ref(t, db_text(fr, f, 0));
		/* only AUTOINCREMENT keeps a counter (sqlite_sequence); a plain
		 * INTEGER PRIMARY KEY reuses the largest id + 1 */
		t->id_counter = has_id && sql && strcasestr(sql, "AUTOINCREMENT") != NULL;
		db_res_free(cr);
		db_res_free(fr);
		cr = fr = NULL;
	}
	db_res_free(cr);
	db_res_free(fr);
	db_res_free(tr);
	return rc;
}

static int sq_id_counter_get(db_t *db, const char *table, int64_t *next)
{
	db_res_t *r;
	db_param_t p[] = { P_TEXT(table) };
	if (db_exec(db, "SELECT seq FROM sqlite_sequence WHERE name = $1", p, 1, &r))
		return -1;
	/* no row: nothing was ever inserted */
	*next = db_nrows(r) ? db_int(r, 0, 0) + 1 : 1;
	db_res_free(r);
	return 0;
}

static int sq_id_counter_set(db_t *db, const char *table, int64_t next)
{
	/* sqlite_sequence has no unique key on name: replace by hand */
	db_param_t p[] = { P_TEXT(table), P_INT(next - 1) };
	if (db_exec(db, "DELETE FROM sqlite_sequence WHERE name = $1", p, 1, NULL))
		return -1;
	if (next <= 1)
		return 0;
	return db_exec(db, "INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)", p, 2, NULL);
}

static const char *sq_file(const db_t *db)
{
	const struct sqlite_conn *c = db->conn;
	return sqlite3_db_filename(c->h, "main");
}

/*
 * SQLite has no row version (PostgreSQL's xmin), so the token is the
 * column's length and a 128-bit hash of its text. The hash reads 8 bytes a
 * step on two independent lanes: a 100,000-image list (~10 MB) hashes in
 * about a millisecond, where byte-wise FNV took 15. Not cryptographic: a
 * crafted collision could at worst make its author's own dataset read stale.
 */
struct hash128 {
	uint64_t a, b;
};

static void hash128_init(struct hash128 *h, size_t n)
{
	h->a = 0x9e3779b97f4a7c15ull ^ n;
	h->b = 0xc2b2ae3d27d4eb4full + n;
}

/* The whole 16-byte blocks of s (n bytes); returns the bytes left over. */
static size_t hash128_blocks(struct hash128 *h, const char *s, size_t n)
{
	uint64_t a = h->a, b = h->b;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		uint64_t w1, w2;
		memcpy(&w1, s + i, 8);
		memcpy(&w2, s + i + 8, 8);
		a = (a ^ w1) * 0xff51afd7ed558ccdull;
		a ^= a >> 29;
		b = (b ^ w2) * 0xc4ceb9fe1a85ec53ull;
		b ^= b >> 31;
	}
	h->a = a;
	h->b = b;
	return n - i;
}

/* The last bytes (fewer than 16) and the result. */
static void hash128_final(struct hash128 *h, const char *s, size_t left, uint64_t out[2])
{
	uint64_t w1 = 0, w2 = 0;
	memcpy(&w1, s, left < 8 ? left : 8);
	if (left > 8)
		memcpy(&w2, s + 8, left - 8);
	uint64_t a = (h->a ^ w1 ^ (h->b << 1)) * 0xff51afd7ed558ccdull;
	uint64_t b = (h->b ^ w2 ^ (a >> 1)) * 0xc4ceb9fe1a85ec53ull;
	out[0] = a ^ (a >> 33);
	out[1] = b ^ (b >> 33);
}

static void hash128(const char *s, size_t n, uint64_t out[2])
{
	struct hash128 h;
	hash128_init(&h, n);
	size_t left = hash128_blocks(&h, s, n);
	hash128_final(&h, s + (n - left), left, out);
}

static void version_format(size_t len, const uint64_t h[2], char version[64])
{
	snprintf(version, 64, "%zu:%016llx%016llx", len, (unsigned long long)h[0], (unsigned long long)h[1]);
}

/* The row version of table.column of row id read through blob I/O, and
 * with text the value itself (malloc'd, NUL-terminated; the caller frees):
 * read straight into that one block, where sqlite3_column_text copies it
 * into a block of its own first (at 10^6 images 187 MB, whose page faults
 * were most of a version check's cost, and twice the value in memory while
 * it was copied out). Without text, read in chunks of a small buffer.
 * 1 when done, 0 when the value cannot be read so (no such row, a NULL):
 * the caller reads it as a column. */
static int blob_version(struct sqlite_conn *c, const char *table, const char *column, int64_t id, char version[64],
			char **text)
{
	enum { CHUNK = 256 * 1024 }; /* a multiple of the hash's 16-byte block */
	sqlite3_blob *b = NULL;
	if (sqlite3_blob_open(c->h, "main", table, column, id, 0, &b) != SQLITE_OK) {
		sqlite3_blob_close(b);
		return 0;
	}
	size_t n = (size_t)sqlite3_blob_bytes(b), off = 0;
	size_t size = text ? n + 1 : CHUNK;
	char *buf = mem_hint_huge(xmalloc(size), size);
	struct hash128 h;
	uint64_t out[2];
	int ok = 1;
	hash128_init(&h, n);
	for (;;) {
		size_t len = text ? n : n - off < CHUNK ? n - off : CHUNK;
		if (len && sqlite3_blob_read(b, buf, (int)len, (int)off) != SQLITE_OK) {
			ok = 0;
			break;
		}
		off += len;
		if (off < n) {
			hash128_blocks(&h, buf, len);
			continue;
		}
		size_t left = hash128_blocks(&h, buf, len);
		hash128_final(&h, buf + (len - left), left, out);
		break;
	}
	sqlite3_blob_close(b);
	if (ok)
		version_format(n, out, version);
	if (ok && text) {
		buf[n] = '\0';
		*text = buf;
	} else {
		free(buf);
	}
	return ok;
}

/* the row version of a text: its length and hash (db_text_version) */
static int sq_text_version(const char *text, size_t len, char version[64])
{
	uint64_t h[2];
	hash128(text, len, h);
	version_format(len, h, version);
	return 0;
}

static int sq_row_version(db_t *db, const char *table, const char *column, int64_t id, char version[64], char **text)
{
	/* run here rather than through db_exec(), which would copy the text */
	struct sqlite_conn *c = db->conn;
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE id = $1", column, table);
	int64_t t0 = db->echo ? mono_usec() : 0;
	if (blob_version(c, table, column, id, version, text)) {
		if (db->echo)
			db_echo(sql, (db_param_t[]){ P_INT(id) }, 1, mono_usec() - t0, 0);
		return 1;
	}
	sqlite3_stmt *st = prepare(db, c, sql);
	if (!st)
		return -1;
	int rc = sqlite3_bind_int64(st, 1, id);
	int found = 0;
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			size_t n = t ? (size_t)sqlite3_column_bytes(st, 0) : 0;
			sq_text_version(t ? t : "", n, version);
			/* the text is copied only for a caller that asks for it */
			if (text)
				*text = xstrdup(t ? t : "");
			found = 1;
			rc = SQLITE_DONE;
		}
	}
	if (rc != SQLITE_DONE)
		set_err(db, c, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (db->echo)
		db_echo(sql, (db_param_t[]){ P_INT(id) }, 1, mono_usec() - t0, rc == SQLITE_DONE ? 0 : -1);
	return rc == SQLITE_DONE ? found : -1;
}

/* json_list_count(text): what JSON1's json_array_length(text) answers (the
 * array's length, 0 for another JSON value, NULL for NULL, an error for
 * text that is not JSON), counted in one scan of the text: JSON1 (SQLite
 * 3.40) parses the whole text into a tree first, which for a dataset list's
 * image counts was 1.4 s per request with a 10^6-image dataset listed. */
static void list_count(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	const char *t = (const char *)sqlite3_value_text(argv[0]);
	long n = t ? json_array_count(t) : -1;
	if (n < 0)
		sqlite3_result_error(ctx, "malformed JSON", -1);
	else
		sqlite3_result_int64(ctx, n);
}

/* SQLite's allocator: malloc's, with large blocks hinted to huge pages
 * as ours are (util/sb.c's mem_hint_huge): a list's text read from its
 * overflow pages is one block of the column's size. Set once, before the
 * first connection initialises the library. */
static void *sqm_malloc(int n)
{
	void *p = malloc((size_t)n);
	return p ? mem_hint_huge(p, (size_t)n) : NULL;
}

static void *sqm_realloc(void *p, int n)
{
	void *q = realloc(p, (size_t)n);
	return q ? mem_hint_huge(q, (size_t)n) : NULL;
}

static int sqm_size(void *p)
{
	return (int)malloc_usable_size(p);
}

static int sqm_roundup(int n)
{
	return (n + 7) & ~7;
}

static int sqm_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void sqm_shutdown(void *arg)
{
	(void)arg;
}

static pthread_once_t sqm_once = PTHREAD_ONCE_INIT;

static void sqm_install(void)
{
	static const sqlite3_mem_methods m = { sqm_malloc, free,     sqm_realloc,  sqm_size,
					       sqm_roundup, sqm_init, sqm_shutdown, NULL };
	/* SQLITE_MISUSE when the library was initialised already: then it
	 * keeps its default allocator, which is malloc's too */
	(void)sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

/* The watcher: one read-only connection per process on the database file,
 * which never writes, so that its data_version changes with every commit
 * of every other connection. */
static pthread_mutex_t watcher_lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3 *watcher;
static sqlite3_stmt *watcher_st;
static char *watcher_path;

static int sq_change_token(db_t *db, uint64_t *token)
{
	const char *path = sq_file(db);
	if (!path)
		return 1;
	int rc = -1;
	pthread_mutex_lock(&watcher_lock);
	if (watcher && strcmp(watcher_path, path)) {
		sqlite3_finalize(watcher_st);
		sqlite3_close(watcher);
		free(watcher_path);
		watcher = NULL;
	}
	if (!watcher) {
		pthread_once(&sqm_once, sqm_install);
		if (sqlite3_open_v2(path, &watcher, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(watcher, "PRAGMA data_version", -1, &watcher_st, NULL) != SQLITE_OK) {
			sb_reset(&db->err);
			sb_addf(&db->err, "cannot open a watcher on %s: %s", path, sqlite3_errmsg(watcher));
			db->cls = DB_ERR_OTHER;
			sqlite3_close(watcher);
			watcher = NULL;
			goto out;
		}
		watcher_path = xstrdup(path);
	}
	if (sqlite3_step(watcher_st) == SQLITE_ROW) {
		*token = (uint64_t)sqlite3_column_int64(watcher_st, 0);
		rc = 0;
	} else {
		sb_reset(&db->err);
		sb_addf(&db->err, "PRAGMA data_version: %s", sqlite3_errmsg(watcher));
		db->cls = DB_ERR_OTHER;
	}
	sqlite3_reset(watcher_st);
out:
	pthread_mutex_unlock(&watcher_lock);
	return rc;
}

static int sq_self_change_token(db_t *db, uint64_t *token)
{
	struct sqlite_conn *c = db->conn;
	sqlite3_stmt *st = prepare(db, c, "PRAGMA data_version");
	if (!st)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*token = (uint64_t)sqlite3_column_int64(st, 0);
	else
		set_err(db, c, rc);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Overwrites the n bytes at from of the column's value with bytes, in
 * place (its length, len, unchanged). 1 when done, 0 when the value's
 * length is not len, -1 on error. */
static int blob_overwrite(db_t *db, struct sqlite_conn *c, const char *table, const char *column, int64_t id,
			  const char *bytes, size_t len, size_t from, size_t n)
{
	sqlite3_blob *b = NULL;
	int rc = sqlite3_blob_open(c->h, "main", table, column, id, 1, &b);
	if (rc == SQLITE_OK && (size_t)sqlite3_blob_bytes(b) != len) {
		sqlite3_blob_close(b);
		return 0;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_write(b, bytes, (int)n, (int)from);
	if (b)
		sqlite3_blob_close(b);
	if (rc != SQLITE_OK) {
		set_err(db, c, rc);
		return -1;
	}
	return 1;
}

static int sq_json_array_edit(db_t *db, const char *table, const char *column, int64_t id, long at, const char *item,
			      const char *text, size_t text_len, size_t from, size_t n, char version[64])
{
	(void)at;
	(void)item;
	(void)version; /* "": a hash of the whole text, which the caller has */
	struct sqlite_conn *c = db->conn;
	char sql[160];
	int64_t t0 = db->echo ? mono_usec() : 0;
	int done = n == (size_t)-1 ? 0 : blob_overwrite(db, c, table, column, id, text, text_len, from, n);
	if (done < 0)
		return -1;
	if (!done && n != (size_t)-1) {
		/* the stored text is not the one the edit was made for */
		sb_reset(&db->err);
		sb_addf(&db->err, "%s.%s of row %lld changed length under the edit", table, column, (long long)id);
		db->cls = DB_ERR_OTHER;
		return -1;
	}
	if (done) {
		if (db->echo) {
			snprintf(sql, sizeof(sql), "(blob write of %zu bytes at %zu into %s.%s)", n, from, table, column);
			db_echo(sql, (db_param_t[]){ P_INT(id) }, 1, mono_usec() - t0, 0);
		}
	} else {
		/* bound without a copy: the text may be large */
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = $1 WHERE id = $2", table, column);
		sqlite3_stmt *st = prepare(db, c, sql);
		if (!st)
			return -1;
		int rc = sqlite3_bind_text(st, 1, text, (int)text_len, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 2, id);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		int changed = rc == SQLITE_DONE ? sqlite3_changes(c->h) : 0;
		if (rc != SQLITE_DONE)
			set_err(db, c, rc);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (db->echo)
			db_echo(sql, (db_param_t[]){ P_TEXT("(the new list)"), P_INT(id) }, 2, mono_usec() - t0,
				rc == SQLITE_DONE ? 0 : -1);
		if (rc != SQLITE_DONE)
			return -1;
		if (!changed) {
			sb_reset(&db->err);
			sb_addf(&db->err, "no row %lld in %s", (long long)id, table);
			db->cls = DB_ERR_OTHER;
			return -1;
		}
	}
	return 0;
}

/*
 * flock() on a descriptor of our own: SQLite locks with fcntl(), which
 * flock() does not touch on Linux. The descriptor stays open until the
 * connection closes, after SQLite's own (closing a descriptor of the file
 * drops the process's fcntl locks on it).
 */
static int sq_server_lock(db_t *db)
{
	struct sqlite_conn *c = db->conn;
	if (c->lock_fd >= 0)
		return 1;
	const char *path = sqlite3_db_filename(c->h, "main");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		db_set_error(db, DB_ERR_OTHER, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 0;
		db_set_error(db, DB_ERR_OTHER, "cannot lock %s: %s", path, strerror(e));
		return -1;
	}
	c->lock_fd = fd;
	return 1;
}

static void sq_close(db_t *db)
{
	struct sqlite_conn *c = db->conn;
	if (!c)
		return;
	for (int b = 0; b < NBUCKETS; b++) {
		struct cached *e = c->buckets[b];
		while (e) {
			struct cached *next = e->next;
			sqlite3_finalize(e->stmt);
			free(e->sql);
			free(e);
			e = next;
		}
	}
	sqlite3_close(c->h);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c);
}

const struct db_ops sqlite_ops = {
	.name = "sqlite",
	.begin_sql = "BEGIN IMMEDIATE",
	/* deferred: the snapshot starts at the first read and holds no lock
	 * that writers wait on (WAL) */
	.snapshot_sql = "BEGIN DEFERRED",
	.exec = sq_exec,
	.exec_script = sq_exec_script,
	.table_exists = sq_table_exists,
	.count_tables = sq_count_tables,
	.file = sq_file,
	.schema_read = sq_schema_read,
	.id_counter_get = sq_id_counter_get,
	.id_counter_set = sq_id_counter_set,
	.server_lock = sq_server_lock,
	.row_version = sq_row_version,
	.json_array_edit = sq_json_array_edit,
	.text_version = sq_text_version,
	.change_token = sq_change_token,
	.self_change_token = sq_self_change_token,
	.close = sq_close,
};

db_t *sqlite_open(int create, sb_t *err)
{
	const char *path = settings.sqlite_path;
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			sb_addf(err, "cannot open SQLite database %s: %s", path, strerror(errno));
			return NULL;
		}
		if (!create) {
			sb_addf(err, "SQLite database %s does not exist: run 'fractalctl set-db' first", path);
			return NULL;
		}
		char *dir = xstrdup(path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		struct stat ds;
		int st_rc = stat(dir, &ds);
		int st_errno = errno;
		int dir_ok = st_rc == 0 && S_ISDIR(ds.st_mode);
		int dir_w = dir_ok && access(dir, W_OK | X_OK) == 0;
		if (st_rc != 0 && st_errno != ENOENT && st_errno != ENOTDIR)
			sb_addf(err, "cannot create SQLite database %s: folder %s is not accessible: %s", path, dir, strerror(st_errno));
		else if (!dir_ok)
			sb_addf(err, "cannot create SQLite database %s: folder %s does not exist", path, dir);
		else if (!dir_w)
			sb_addf(err, "cannot create SQLite database %s: folder %s is not writable", path, dir);
		free(dir);
		if (!dir_w)
			return NULL;
	} else if (S_ISDIR(st.st_mode)) {
		sb_addf(err, "cannot open SQLite database %s: it is a folder", path);
		return NULL;
	} else if (access(path, R_OK | W_OK) != 0) {
		sb_addf(err, "cannot open SQLite database %s: the file is not readable and writable", path);
		return NULL;
	}
	sqlite3 *h = NULL;
	pthread_once(&sqm_once, sqm_install);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &h, flags, sqlite_vfs_name());
	if (rc != SQLITE_OK) {
		sb_addf(err, "cannot open SQLite database %s: %s", path, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
		sqlite3_close(h);
		return NULL;
	}
	if (sqlite3_db_readonly(h, "main") == 1) {
		sb_addf(err, "cannot open SQLite database %s: it is read-only", path);
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
	sqlite3_create_function(h, "json_list_count", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, list_count, NULL,
				NULL);
	/* journal_mode reads the header first: a file that is not a database
	 * fails here, before anything is written to it */
	char *msg = NULL;
	/* FULL: a commit is on disk when it returns, also after a power loss;
	 * NORMAL (WAL) only survives a crash of the process, and is faster
	 * (SQLITE_SYNCHRONOUS, docs/database.md) */
	rc = sqlite3_exec(h,
			  settings.sqlite_synchronous_normal
				  ? "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
				  : "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		sb_addf(err, "cannot open SQLite database %s: %s", path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close(h);
		return NULL;
	}
	/* reads through mmap: an edit of one image in place walks the
	 * list's overflow chain up to it (a 4-byte link per page), which
	 * through read() copies every page of the list (docs/database.md) */
	if (settings.sqlite_mmap_size > 0) {
		char q[64];
		snprintf(q, sizeof(q), "PRAGMA mmap_size = %lld", settings.sqlite_mmap_size);
		sqlite3_exec(h, q, NULL, NULL, NULL);
	}
	db_t *db = xcalloc(1, sizeof(*db));
	struct sqlite_conn *c = xcalloc(1, sizeof(*c));
	c->h = h;
	c->lock_fd = -1;
	db->conn = c;
	db->ops = &sqlite_ops;
	sb_init(&db->err, 0);
	return db;
}
