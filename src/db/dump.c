/* dump.c — see dump.h; the format is documented in docs/database.md.
 *
 * Values: NULL is null, an integer column a JSON number, a boolean column
 * true/false (whatever the engine's spelling), and everything else — text,
 * JSON, arrays, timestamps, reals — a JSON string holding the text the
 * database interface reads back (db.h's canonical forms). JSON columns are
 * kept as their text rather than embedded as JSON so that the text survives
 * as is: PostgreSQL's json and SQLite keep it byte for byte, and reparsing
 * it here would not. On restore the target's own column types say how each
 * string is bound (DB_JSON, DB_ARRAY, DB_TS, DB_TEXT).
 *
 * The checksum (SHA-256 of every byte before the end line) and the end
 * marker catch corrupted and truncated files; restore verifies the whole
 * file before it writes anything. */
#include "db/dump.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "build_config.h"
#include "db/migrate.h"
#include "util/timeutil.h"

/* rows per SELECT for tables keyed by one integer: bounds the memory a big
 * table (datasets with many images) needs while dumping */
#define BATCH 500
#define READ_CHUNK 65536

/* ---- shared ---- */

static void add_ident(sb_t *sb, const char *name)
{
	sb_addc(sb, '"');
	for (const char *c = name; *c; c++) {
		if (*c == '"')
			sb_addc(sb, '"');
		sb_addc(sb, *c);
	}
	sb_addc(sb, '"');
}

/* Fills order[] (ntables long) with table indexes such that each table
 * comes after every table it references; ties go by name, so the order is
 * stable. A cycle (none in the schema today) is refused, naming the tables
 * caught in it: restoring those would need insert-then-update. */
static int table_order(const db_schema_t *s, int *order, sb_t *err)
{
	int n = s->ntables;
	char *done = xcalloc((size_t)n + 1, 1);
	int rc = 0;
	for (int k = 0; k < n; k++) {
		int pick = -1;
		for (int i = 0; i < n && pick < 0; i++) {
			if (done[i])
				continue;
			int ready = 1;
			for (int r = 0; r < s->tables[i].nrefs && ready; r++)
				for (int j = 0; j < n && ready; j++)
					if (!done[j] && j != i && !strcmp(s->tables[j].name, s->tables[i].refs[r]))
						ready = 0;
			if (ready)
				pick = i;
		}
		if (pick < 0) {
			sb_adds(err, "the foreign keys of tables");
			for (int i = 0; i < n; i++)
				if (!done[i])
					sb_addf(err, " %s", s->tables[i].name);
			sb_adds(err, " form a cycle: no insertion order exists");
			rc = -1;
			break;
		}
		done[pick] = 1;
		order[k] = pick;
	}
	free(done);
	return rc;
}

static void hex_digest(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_DigestFinal_ex(md, d, &len);
	for (unsigned int i = 0; i < len && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	out[64] = '\0';
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* ---- dump ---- */

struct out {
	gzFile gz;
	EVP_MD_CTX *md;
	int failed;          /* errno of the first failed write, or -1 */
};

/* Ends line with a newline, adds it to the checksum (unless it is the end
 * line), writes it. Write errors are remembered and reported at close. */
static void out_line(struct out *o, sb_t *line, int hashed)
{
	sb_addc(line, '\n');
	if (hashed)
		EVP_DigestUpdate(o->md, line->buf, line->len);
	if (!o->failed && gzwrite(o->gz, line->buf, (unsigned)line->len) != (int)line->len)
		o->failed = errno ? errno : -1;
	sb_reset(line);
}

/* 1 if s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). */
static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		int n;
		unsigned min;
		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, c &= 0x07;
		} else {
			return 0;
		}
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (s[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
		s += n + 1;
	}
	return 1;
}

/* Appends one value; -1 when it cannot be written as JSON text (not
 * UTF-8: SQLite stores whatever bytes it is given), so that we fail now
 * rather than write a dump that restore would refuse. */
static int add_value(sb_t *sb, const db_res_t *r, int row, int col, enum db_type type)
{
	const char *v = db_text(r, row, col);
	if (!v) {
		sb_adds(sb, "null");
		return 0;
	}
	if (type == DB_BOOL) {
		sb_adds(sb, db_bool(r, row, col) ? "true" : "false");
		return 0;
	}
	if (type == DB_INT) {
		char *end;
		errno = 0;
		long long i = strtoll(v, &end, 10);
		if (*v && !*end && !errno) {
			sb_addf(sb, "%lld", i);
			return 0;
		}
		/* not an integer after all (SQLite stores what it is given): keep the text */
	}
	if (!utf8_valid((const unsigned char *)v))
		return -1;
	sb_add_json_str(sb, v);
	return 0;
}

struct sort_ctx {
	const db_res_t *r;
	const struct db_table *t;
	const int *key;      /* column indexes to order by */
	int nkey;
};

static int row_cmp(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *c = arg;
	int ra = *(const int *)a, rb = *(const int *)b;
	for (int k = 0; k < c->nkey; k++) {
		int col = c->key[k];
		const char *x = db_text(c->r, ra, col), *y = db_text(c->r, rb, col);
		int d;
		if (!x || !y) {
			d = (x != NULL) - (y != NULL);
		} else if (c->t->cols[col].type == DB_INT) {
			long long i = strtoll(x, NULL, 10), j = strtoll(y, NULL, 10);
			d = (i > j) - (i < j);
		} else {
			/* bytewise: the same order on both engines, whatever the
			 * PostgreSQL collation */
			d = strcmp(x, y);
		}
		if (d)
			return d;
	}
	return 0;
}

static int add_row(sb_t *line, const db_res_t *r, int row, const struct db_table *t, sb_t *err)
{
	sb_addc(line, '[');
	for (int c = 0; c < t->ncols; c++) {
		if (c)
			sb_addc(line, ',');
		if (add_value(line, r, row, c, t->cols[c].type)) {
			sb_addf(err, "table %s, column %s holds text that is not valid UTF-8 (row", t->name, t->cols[c].name);
			for (int k = 0; k < t->ncols; k++)
				if (t->cols[k].pk)
					sb_addf(err, " %s=%s", t->cols[k].name, db_text(r, row, k) ? db_text(r, row, k) : "NULL");
			sb_adds(err, "): a dump cannot hold it; correct the value first");
			return -1;
		}
	}
	sb_addc(line, ']');
	return 0;
}

static int dump_table(db_t *db, const struct db_table *t, struct out *o, int64_t *count, sb_t *err)
{
	sb_t line = SB_INIT, sql = SB_INIT;
	int rc = -1;
	*count = 0;
	sb_adds(&line, "{\"table\":");
	sb_add_json_str(&line, t->name);
	sb_adds(&line, ",\"columns\":[");
	int npk = 0, pk_col = -1;
	for (int c = 0; c < t->ncols; c++) {
		sb_adds(&line, c ? "," : "");
		sb_add_json_str(&line, t->cols[c].name);
		if (t->cols[c].pk) {
			npk++;
			pk_col = c;
		}
	}
	sb_addc(&line, ']');
	if (t->id_counter) {
		int64_t next;
		if (db_id_counter_get(db, t->name, &next)) {
			sb_addf(err, "cannot read the id counter of table %s: %s", t->name, db_errmsg(db));
			goto out;
		}
		sb_addf(&line, ",\"next_id\":%lld", (long long)next);
	}
	sb_addc(&line, '}');
	out_line(o, &line, 1);

	sb_adds(&sql, "SELECT ");
	for (int c = 0; c < t->ncols; c++) {
		sb_adds(&sql, c ? ", " : "");
		add_ident(&sql, t->cols[c].name);
	}
	sb_adds(&sql, " FROM ");
	add_ident(&sql, t->name);
	db_res_t *r = NULL;
	if (npk == 1 && t->cols[pk_col].type == DB_INT) {
		/* keyset batches: the same snapshot, a bounded result each; the
		 * first without a bound, which would need a type for "below
		 * every id" */
		sb_t next = SB_INIT, tail = SB_INIT;
		sb_adds(&tail, " ORDER BY ");
		add_ident(&tail, t->cols[pk_col].name);
		sb_addf(&tail, " LIMIT %d", BATCH);
		sb_add(&next, sql.buf, sql.len);
		sb_adds(&next, " WHERE ");
		add_ident(&next, t->cols[pk_col].name);
		sb_adds(&next, " > $1");
		sb_adds(&next, tail.buf);
		sb_adds(&sql, tail.buf);
		sb_release(&tail);
		int64_t last = 0;
		for (int first = 1;; first = 0) {
			db_param_t p[] = { P_INT(last) };
			if (db_exec(db, first ? sql.buf : next.buf, p, first ? 0 : 1, &r)) {
				sb_addf(err, "cannot read table %s: %s", t->name, db_errmsg(db));
				sb_release(&next);
				goto out;
			}
			int n = db_nrows(r);
			for (int i = 0; i < n; i++) {
				if (add_row(&line, r, i, t, err)) {
					db_res_free(r);
					sb_release(&next);
					goto out;
				}
				out_line(o, &line, 1);
			}
			*count += n;
			if (n)
				last = db_int(r, n - 1, pk_col);
			db_res_free(r);
			if (n < BATCH)
				break;
		}
		sb_release(&next);
	} else {
		/* composite or no primary key (link tables, small rows): read
		 * whole, sort here so that both engines give the same order */
		if (db_exec(db, sql.buf, NULL, 0, &r)) {
			sb_addf(err, "cannot read table %s: %s", t->name, db_errmsg(db));
			goto out;
		}
		int n = db_nrows(r);
		int *key = xcalloc((size_t)t->ncols + 1, sizeof(int));
		int nkey = 0;
		for (int k = 1; k <= npk; k++)
			for (int c = 0; c < t->ncols; c++)
				if (t->cols[c].pk == k)
					key[nkey++] = c;
		if (!nkey)
			for (int c = 0; c < t->ncols; c++)
				key[nkey++] = c;
		int *idx = xcalloc((size_t)n + 1, sizeof(int));
		for (int i = 0; i < n; i++)
			idx[i] = i;
		struct sort_ctx ctx = { r, t, key, nkey };
		qsort_r(idx, (size_t)n, sizeof(int), row_cmp, &ctx);
		int bad = 0;
		for (int i = 0; i < n && !bad; i++) {
			bad = add_row(&line, r, idx[i], t, err);
			if (!bad)
				out_line(o, &line, 1);
		}
		*count = n;
		free(idx);
		free(key);
		db_res_free(r);
		if (bad)
			goto out;
	}
	rc = 0;
out:
	sb_release(&line);
	sb_release(&sql);
	return rc;
}

/* Reads the snapshot and writes every line; the caller owns the files. */
static int dump_all(db_t *db, struct out *o, struct dump_stats *st, sb_t *err)
{
	db_schema_t *s = NULL;
	db_res_t *r = NULL;
	int *order = NULL;
	int64_t *counts = NULL;
	sb_t line = SB_INIT;
	int rc = -1;
	if (db_begin_snapshot(db)) {
		sb_addf(err, "cannot start the snapshot transaction: %s", db_errmsg(db));
		goto out;
	}
	int has = db_table_exists(db, "alembic_version");
	if (has <= 0) {
		if (has < 0)
			sb_addf(err, "cannot read the schema revision: %s", db_errmsg(db));
		else {
			db_describe(err);
			sb_adds(err, " has no alembic_version table: it is not a fractal-server database (run 'fractalctl set-db' to create one)");
		}
		goto out;
	}
	if (db_exec(db, "SELECT version_num FROM alembic_version", NULL, 0, &r)) {
		sb_addf(err, "cannot read the schema revision: %s", db_errmsg(db));
		goto out;
	}
	if (db_nrows(r) != 1) {
		db_describe(err);
		sb_addf(err, " has %d rows in alembic_version (expected one)", db_nrows(r));
		goto out;
	}
	if (db_schema_read(db, &s)) {
		sb_addf(err, "cannot read the schema: %s", db_errmsg(db));
		goto out;
	}
	order = xcalloc((size_t)s->ntables + 1, sizeof(int));
	counts = xcalloc((size_t)s->ntables + 1, sizeof(int64_t));
	if (table_order(s, order, err))
		goto out;

	char now[40];
	utc_now_iso(now, sizeof(now));
	sb_addf(&line, "{\"format\":\"%s\",\"format_version\":%d,\"schema_revision\":", DUMP_FORMAT, DUMP_FORMAT_VERSION);
	sb_add_json_str(&line, db_text(r, 0, 0));
	sb_addf(&line, ",\"fractal_server_version\":\"%s\",\"source_engine\":\"%s\",\"created_at\":\"%s\"}",
		FRACTAL_VERSION, db_engine_name(db), now);
	out_line(o, &line, 1);

	st->tables = s->ntables;
	st->rows = 0;
	for (int k = 0; k < s->ntables; k++) {
		const struct db_table *t = &s->tables[order[k]];
		if (dump_table(db, t, o, &counts[order[k]], err))
			goto out;
		st->rows += counts[order[k]];
	}
	/* a read-only transaction: nothing to commit, but end it cleanly */
	if (db_commit(db)) {
		sb_addf(err, "cannot end the snapshot transaction: %s", db_errmsg(db));
		goto out;
	}

	char hex[65];
	hex_digest(o->md, hex);
	sb_addf(&line, "{\"end\":true,\"tables\":%d,\"rows\":%lld,\"row_counts\":{", s->ntables, (long long)st->rows);
	for (int k = 0; k < s->ntables; k++) {
		sb_adds(&line, k ? "," : "");
		sb_add_json_str(&line, s->tables[order[k]].name);
		sb_addf(&line, ":%lld", (long long)counts[order[k]]);
	}
	sb_addf(&line, "},\"sha256\":\"%s\"}", hex);
	out_line(o, &line, 0);
	rc = 0;
out:
	if (rc)
		db_rollback(db);
	db_res_free(r);
	db_schema_free(s);
	free(order);
	free(counts);
	sb_release(&line);
	return rc;
}

/* 1 if path names the database's own file (or its WAL and shared-memory
 * companions): renaming a dump onto it would destroy the database. */
static int is_database_file(db_t *db, const char *path)
{
	const char *file = db_file(db);
	struct stat a, b;
	if (!file || !*file || stat(path, &a))
		return 0;
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	int same = 0;
	sb_t f = SB_INIT;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && !same; i++) {
		sb_reset(&f);
		sb_addf(&f, "%s%s", file, suffixes[i]);
		same = !stat(f.buf, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	}
	sb_release(&f);
	return same;
}

/* After a rename, the folder entry itself must reach the disk. */
static void sync_folder(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, 2, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);   /* best effort: the file itself is already synced */
		close(fd);
	}
	free(dir);
}

int dump_write(db_t *db, const char *path, struct dump_stats *st, sb_t *err)
{
	memset(st, 0, sizeof(*st));
	if (is_database_file(db, path)) {
		sb_addf(err, "%s is the database itself: choose another output file", path);
		return -1;
	}
	sb_t tmp = SB_INIT;
	sb_addf(&tmp, "%s.tmp-XXXXXX", path);
	/* mkstemp: mode 0600, in the target's folder so that rename is atomic */
	int fd = mkstemp(tmp.buf);
	if (fd < 0) {
		sb_addf(err, "cannot write %s: %s", path, strerror(errno));
		sb_release(&tmp);
		return -1;
	}
	int keep = dup(fd);   /* gzclose closes fd; keep one to fsync */
	struct out o = { 0 };
	o.gz = gzdopen(fd, ends_with(path, ".gz") ? "wb6" : "wbT");
	o.md = EVP_MD_CTX_new();
	int rc = -1;
	if (!o.gz || keep < 0 || !o.md || !EVP_DigestInit_ex(o.md, EVP_sha256(), NULL)) {
		sb_addf(err, "cannot write %s: out of memory or file descriptors", path);
		if (!o.gz)
			close(fd);
		goto out;
	}
	if (dump_all(db, &o, st, err))
		goto out;
	errno = 0;
	int zrc = gzclose(o.gz);
	o.gz = NULL;
	if (!o.failed && zrc != Z_OK)
		o.failed = errno ? errno : -1;
	if (o.failed) {
		sb_addf(err, "cannot write %s: %s", path, o.failed > 0 ? strerror(o.failed) : "write error");
		goto out;
	}
	if (fsync(keep)) {
		sb_addf(err, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (rename(tmp.buf, path)) {
		sb_addf(err, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	sync_folder(path);
	rc = 0;
out:
	if (o.gz)
		gzclose(o.gz);
	if (keep >= 0)
		close(keep);
	if (rc)
		unlink(tmp.buf);
	EVP_MD_CTX_free(o.md);
	sb_release(&tmp);
	return rc;
}

/* ---- restore ---- */

struct reader {
	const char *path;
	gzFile gz;
	char *buf;
	size_t pos, len;
	int eof;
	sb_t line;
	int64_t lineno;
};

static int reader_open(struct reader *rd, const char *path, sb_t *err)
{
	memset(rd, 0, sizeof(*rd));
	rd->path = path;
	sb_init(&rd->line, 256);
	struct stat st;
	if (stat(path, &st)) {
		sb_addf(err, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		sb_addf(err, "cannot read %s: it is a folder", path);
		return -1;
	}
	/* gzopen reads plain files as they are, gzip'd ones decompressed */
	rd->gz = gzopen(path, "rb");
	if (!rd->gz) {
		sb_addf(err, "cannot read %s: %s", path, errno ? strerror(errno) : "out of memory");
		return -1;
	}
	gzbuffer(rd->gz, 1 << 17);
	rd->buf = xmalloc(READ_CHUNK);
	return 0;
}

static void reader_close(struct reader *rd)
{
	if (rd->gz)
		gzclose(rd->gz);
	free(rd->buf);
	sb_release(&rd->line);
}

static void reader_rewind(struct reader *rd)
{
	gzrewind(rd->gz);
	rd->pos = rd->len = 0;
	rd->eof = 0;
	rd->lineno = 0;
}

/* Reads the next line into rd->line (newline dropped). Returns 1 for a
 * line (*nl: whether it ended with a newline), 0 at the end of the file,
 * -1 when the file cannot be read (message in err). */
static int read_line(struct reader *rd, int *nl, sb_t *err)
{
	sb_reset(&rd->line);
	*nl = 0;
	for (;;) {
		if (rd->pos == rd->len) {
			if (rd->eof)
				break;
			int n = gzread(rd->gz, rd->buf, READ_CHUNK);
			int zerr = Z_OK;
			const char *msg = gzerror(rd->gz, &zerr);
			if (n < 0 || zerr != Z_OK) {
				if (zerr == Z_BUF_ERROR)
					sb_addf(err, "%s is truncated: its compressed data ends early (after line %lld)",
						rd->path, (long long)rd->lineno);
				else if (zerr == Z_ERRNO)
					sb_addf(err, "cannot read %s: %s", rd->path, strerror(errno));
				else
					sb_addf(err, "%s is corrupted: %s (after line %lld)", rd->path, msg, (long long)rd->lineno);
				return -1;
			}
			if (n == 0) {
				rd->eof = 1;
				break;
			}
			rd->pos = 0;
			rd->len = (size_t)n;
		}
		char *start = rd->buf + rd->pos;
		char *end = memchr(start, '\n', rd->len - rd->pos);
		if (end) {
			sb_add(&rd->line, start, (size_t)(end - start));
			rd->pos += (size_t)(end - start) + 1;
			*nl = 1;
			rd->lineno++;
			return 1;
		}
		sb_add(&rd->line, start, rd->len - rd->pos);
		rd->pos = rd->len;
	}
	if (rd->line.len) {
		rd->lineno++;
		return 1;
	}
	return 0;
}

/* The header: checks what it says; fills rev (the dump's revision). */
static int read_header(struct reader *rd, EVP_MD_CTX *md, char rev[64], sb_t *err)
{
	int nl;
	int got = read_line(rd, &nl, err);
	if (got < 0)
		return -1;
	json_t *h = got && nl ? json_loadb(rd->line.buf, rd->line.len, 0, NULL) : NULL;
	const char *fmt = json_string_value(json_object_get(h, "format"));
	int rc = -1;
	if (!got) {
		sb_addf(err, "%s is empty: it is not a fractal-server dump", rd->path);
	} else if (!fmt || strcmp(fmt, DUMP_FORMAT)) {
		sb_addf(err, "%s is not a fractal-server dump (its first line is not a dump header)", rd->path);
	} else if (!json_is_integer(json_object_get(h, "format_version"))) {
		sb_addf(err, "%s is corrupted: its header has no format_version", rd->path);
	} else if (json_integer_value(json_object_get(h, "format_version")) != DUMP_FORMAT_VERSION) {
		sb_addf(err, "%s is a dump of format version %lld; this fractalctl (%s) reads version %d", rd->path,
			(long long)json_integer_value(json_object_get(h, "format_version")), FRACTAL_VERSION,
			DUMP_FORMAT_VERSION);
	} else if (!json_is_string(json_object_get(h, "schema_revision")) ||
		   json_string_length(json_object_get(h, "schema_revision")) >= 64) {
		sb_addf(err, "%s is corrupted: its header has no schema_revision", rd->path);
	} else {
		snprintf(rev, 64, "%s", json_string_value(json_object_get(h, "schema_revision")));
		if (md) {
			EVP_DigestUpdate(md, rd->line.buf, rd->line.len);
			EVP_DigestUpdate(md, "\n", 1);
		}
		rc = 0;
	}
	json_decref(h);
	return rc;
}

/* 0 when no table but alembic_version has a row, 1 when one has (its name
 * in err), -1 on error. */
static int target_has_rows(db_t *db, const db_schema_t *s, sb_t *what, sb_t *err)
{
	sb_t sql = SB_INIT;
	int rc = 0;
	for (int i = 0; i < s->ntables && !rc; i++) {
		if (!strcmp(s->tables[i].name, "alembic_version"))
			continue;
		sb_reset(&sql);
		sb_adds(&sql, "SELECT 1 FROM ");
		add_ident(&sql, s->tables[i].name);
		sb_adds(&sql, " LIMIT 1");
		db_res_t *r;
		if (db_exec(db, sql.buf, NULL, 0, &r)) {
			sb_addf(err, "cannot read table %s: %s", s->tables[i].name, db_errmsg(db));
			rc = -1;
		} else if (db_nrows(r)) {
			sb_adds(what, s->tables[i].name);
			rc = 1;
		}
		db_res_free(r);
	}
	sb_release(&sql);
	return rc;
}

/* Per target table, what pass 1 learnt from the dump. */
struct seen {
	int present;
	int64_t rows;
	int64_t next_id;     /* 0: none recorded */
};

static int corrupted(struct reader *rd, sb_t *err, const char *what)
{
	sb_addf(err, "%s is corrupted: line %lld %s", rd->path, (long long)rd->lineno, what);
	return -1;
}

/* Pass 1, after the header: every line well-formed, the tables and their
 * columns those of the target, the counts and the checksum right, the end
 * marker last. Writes nothing. */
static int verify(struct reader *rd, EVP_MD_CTX *md, const db_schema_t *s, const char *rev, struct seen *seen, sb_t *err)
{
	const struct db_table *cur = NULL;
	int64_t total = 0;
	int nl, got;
	int rc = -1;
	json_t *j = NULL;
	while ((got = read_line(rd, &nl, err)) > 0) {
		if (!nl) {
			sb_addf(err, "%s is truncated: its last line (%lld) is cut short and there is no end marker", rd->path,
				(long long)rd->lineno);
			goto out;
		}
		json_error_t je;
		j = json_loadb(rd->line.buf, rd->line.len, 0, &je);
		if (!j) {
			sb_addf(err, "%s is corrupted: line %lld is not valid JSON (%s)", rd->path, (long long)rd->lineno, je.text);
			goto out;
		}
		if (json_is_array(j)) {
			if (!cur) {
				corrupted(rd, err, "holds a row before any table");
				goto out;
			}
			if ((int)json_array_size(j) != cur->ncols) {
				corrupted(rd, err, "has not as many values as its table has columns");
				goto out;
			}
			if (!strcmp(cur->name, "alembic_version") &&
			    (!json_is_string(json_array_get(j, 0)) || strcmp(json_string_value(json_array_get(j, 0)), rev))) {
				corrupted(rd, err, "(alembic_version) disagrees with the header's schema revision");
				goto out;
			}
			seen[cur - s->tables].rows++;
			total++;
		} else if (json_is_object(j) && json_object_get(j, "table")) {
			const char *name = json_string_value(json_object_get(j, "table"));
			json_t *cols = json_object_get(j, "columns");
			json_t *next = json_object_get(j, "next_id");
			if (!name || !json_is_array(cols) || (next && !json_is_integer(next))) {
				corrupted(rd, err, "is not a valid table line");
				goto out;
			}
			cur = db_schema_table(s, name);
			if (!cur) {
				sb_addf(err, "%s has table %s, which the target database does not have: it is not of the same schema",
					rd->path, name);
				goto out;
			}
			struct seen *sn = &seen[cur - s->tables];
			if (sn->present) {
				corrupted(rd, err, "repeats a table");
				goto out;
			}
			sn->present = 1;
			sn->next_id = next ? json_integer_value(next) : 0;
			/* the same columns, in any order (engines may order them
			 * differently), each once */
			int ok = (int)json_array_size(cols) == cur->ncols;
			for (size_t a = 0; a < json_array_size(cols) && ok; a++) {
				const char *c = json_string_value(json_array_get(cols, a));
				int found = 0;
				for (int k = 0; c && k < cur->ncols; k++)
					found |= !strcmp(cur->cols[k].name, c);
				for (size_t b = 0; b < a && found; b++)
					found = strcmp(json_string_value(json_array_get(cols, b)), c) != 0;
				ok = found;
			}
			if (!ok) {
				sb_addf(err, "%s has other columns in table %s than the target database: it is not of the same schema",
					rd->path, name);
				goto out;
			}
		} else if (json_is_object(j) && json_object_get(j, "end")) {
			char hex[65];
			hex_digest(md, hex);
			const char *want = json_string_value(json_object_get(j, "sha256"));
			json_t *counts = json_object_get(j, "row_counts");
			if (!want || strcmp(want, hex)) {
				sb_addf(err, "%s is corrupted: its checksum does not match its content", rd->path);
				goto out;
			}
			if (json_integer_value(json_object_get(j, "rows")) != total || !json_is_object(counts)) {
				corrupted(rd, err, "(the end marker) counts other rows than the file holds");
				goto out;
			}
			for (int i = 0; i < s->ntables; i++) {
				if (!seen[i].present) {
					sb_addf(err, "%s has no table %s, which the target database has: it is not of the same schema",
						rd->path, s->tables[i].name);
					goto out;
				}
				json_t *c = json_object_get(counts, s->tables[i].name);
				if (!json_is_integer(c) || json_integer_value(c) != seen[i].rows) {
					corrupted(rd, err, "(the end marker) counts other rows than the file holds");
					goto out;
				}
			}
			json_decref(j);
			j = NULL;
			got = read_line(rd, &nl, err);
			if (got < 0)
				goto out;
			if (got) {
				sb_addf(err, "%s is corrupted: it goes on after its end marker (line %lld)", rd->path,
					(long long)rd->lineno);
				goto out;
			}
			rc = 0;
			goto out;
		} else {
			corrupted(rd, err, "is neither a row, a table nor the end marker");
			goto out;
		}
		EVP_DigestUpdate(md, rd->line.buf, rd->line.len);
		EVP_DigestUpdate(md, "\n", 1);
		json_decref(j);
		j = NULL;
	}
	if (got == 0)
		sb_addf(err, "%s is truncated: it ends after line %lld without the end marker", rd->path, (long long)rd->lineno);
out:
	json_decref(j);
	return rc;
}

/* How one dump column is inserted: into which target column. */
struct colmap {
	enum db_type type;     /* the target column's */
	const char *name;
};

static int bind_value(json_t *v, const struct colmap *m, db_param_t *p, sb_t *why)
{
	if (json_is_null(v)) {
		*p = P_NULL;
		return 0;
	}
	switch (m->type) {
	case DB_BOOL:
		if (json_is_boolean(v)) {
			*p = P_BOOL(json_is_true(v));
			return 0;
		}
		break;
	case DB_INT:
		if (json_is_integer(v)) {
			*p = P_INT(json_integer_value(v));
			return 0;
		}
		break;
	case DB_JSON:
	case DB_ARRAY:
	case DB_TS:
	case DB_TEXT:
	case DB_DOUBLE:
		if (json_is_string(v)) {
			/* reals travel as text and are bound as text: the engine
			 * converts, nothing is lost to a double in between */
			*p = db_p_str(m->type == DB_DOUBLE ? DB_TEXT : m->type, json_string_value(v));
			return 0;
		}
		break;
	default:
		break;
	}
	sb_addf(why, "column %s: a %s where the target column takes %s", m->name,
		json_is_boolean(v) ? "boolean" : json_is_number(v) ? "number" : json_is_string(v) ? "string" : "JSON value",
		m->type == DB_BOOL ? "a boolean" : m->type == DB_INT ? "an integer" : "text");
	return -1;
}

/* Pass 2: the inserts, inside the caller's transaction.
 *
 * Rows go in batches: one INSERT with many VALUES tuples costs one round
 * trip to PostgreSQL where a row at a time cost one per row (20k rows took
 * 1.3 s that way, mostly latency). A batch runs under a savepoint; when it
 * fails, the batch is rolled back and replayed row by row, so that the
 * error still names the one row (and line) at fault. */
#define BATCH_MAX_ROWS 500
#define BATCH_MAX_PARAMS 30000   /* under SQLite's 32766 and PostgreSQL's 65535 */

struct batch {
	const struct db_table *table;
	struct colmap *map;
	int ncols;
	char *cols_sql;        /* "INSERT INTO t (a, b) VALUES " */
	json_t *rows[BATCH_MAX_ROWS];
	int64_t rowno[BATCH_MAX_ROWS], lineno[BATCH_MAX_ROWS];
	int n, cap;
	db_param_t *params;    /* cap * ncols */
};

/* Inserts rows [from, from+count) of the batch with one statement. */
static int insert_rows(db_t *db, struct batch *b, int from, int count, sb_t *err)
{
	sb_t sql = SB_INIT, why = SB_INIT;
	int rc = -1;
	sb_adds(&sql, b->cols_sql);
	for (int i = 0; i < count; i++) {
		sb_adds(&sql, i ? ", (" : "(");
		for (int c = 0; c < b->ncols; c++) {
			int k = i * b->ncols + c;
			sb_addf(&sql, "%s$%d", c ? ", " : "", k + 1);
			if (bind_value(json_array_get(b->rows[from + i], (size_t)c), &b->map[c], &b->params[k], &why)) {
				sb_addf(err, "cannot restore row %lld of table %s (line %lld): %s", (long long)b->rowno[from + i],
					b->table->name, (long long)b->lineno[from + i], why.buf);
				goto out;
			}
		}
		sb_addc(&sql, ')');
	}
	if (db_exec(db, sql.buf, b->params, count * b->ncols, NULL)) {
		if (count == 1)
			sb_addf(err, "cannot restore row %lld of table %s (line %lld): %s", (long long)b->rowno[from],
				b->table->name, (long long)b->lineno[from], db_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sb_release(&sql);
	sb_release(&why);
	return rc;
}

static int flush_batch(db_t *db, struct batch *b, sb_t *err)
{
	int rc = 0;
	if (!b->n)
		return 0;
	if (b->n == 1) {
		rc = insert_rows(db, b, 0, 1, err);
	} else {
		if (db_exec(db, "SAVEPOINT fractal_restore_batch", NULL, 0, NULL)) {
			sb_addf(err, "%s", db_errmsg(db));
			rc = -1;
		} else if (insert_rows(db, b, 0, b->n, err)) {
			if (err->len) {   /* a value of the wrong kind: already named */
				rc = -1;
			} else if (db_exec(db, "ROLLBACK TO SAVEPOINT fractal_restore_batch", NULL, 0, NULL)) {
				sb_addf(err, "%s", db_errmsg(db));
				rc = -1;
			} else {
				for (int i = 0; i < b->n && !rc; i++)
					rc = insert_rows(db, b, i, 1, err);
				if (!rc)   /* cannot happen: the batch failed, one row must */
					sb_addf(err, "cannot restore table %s: %s", b->table->name, db_errmsg(db));
				rc = -1;
			}
		} else if (db_exec(db, "RELEASE SAVEPOINT fractal_restore_batch", NULL, 0, NULL)) {
			sb_addf(err, "%s", db_errmsg(db));
			rc = -1;
		}
	}
	for (int i = 0; i < b->n; i++)
		json_decref(b->rows[i]);
	b->n = 0;
	return rc;
}

static int load(db_t *db, struct reader *rd, const db_schema_t *s, struct dump_stats *st, sb_t *err)
{
	char *loaded = xcalloc((size_t)s->ntables + 1, 1);
	struct batch b = { 0 };
	sb_t sql = SB_INIT;
	json_t *j = NULL;
	int64_t rowno = 0;
	int skip = 0, rc = -1, nl, got;
	while ((got = read_line(rd, &nl, err)) > 0) {
		j = json_loadb(rd->line.buf, rd->line.len, 0, NULL);
		if (!j) {
			corrupted(rd, err, "is not valid JSON");   /* changed since pass 1 */
			goto out;
		}
		if (json_is_array(j)) {
			rowno++;
			if (skip) {
				st->rows++;   /* verified equal to the target's own */
				json_decref(j);
				j = NULL;
				continue;
			}
			b.rows[b.n] = j;
			b.rowno[b.n] = rowno;
			b.lineno[b.n] = rd->lineno;
			b.n++;
			j = NULL;
			st->rows++;
			if (b.n == b.cap && flush_batch(db, &b, err))
				goto out;
			continue;
		}
		if (flush_batch(db, &b, err))
			goto out;
		if (json_object_get(j, "table")) {
			const struct db_table *cur = db_schema_table(s, json_string_value(json_object_get(j, "table")));
			if (!cur) {
				corrupted(rd, err, "names an unknown table");
				goto out;
			}
			for (int r = 0; r < cur->nrefs; r++) {
				const struct db_table *ref = db_schema_table(s, cur->refs[r]);
				if (ref && !loaded[ref - s->tables]) {
					sb_addf(err, "%s lists table %s before table %s, which it references: it cannot be loaded in order",
						rd->path, cur->name, ref->name);
					goto out;
				}
			}
			loaded[cur - s->tables] = 1;
			st->tables++;
			rowno = 0;
			/* the target already has its own alembic_version row, the
			 * same revision (checked) */
			skip = !strcmp(cur->name, "alembic_version");
			json_t *cols = json_object_get(j, "columns");
			int ncols = (int)json_array_size(cols);
			free(b.map);
			free(b.params);
			free(b.cols_sql);
			b.table = cur;
			b.ncols = ncols;
			b.cap = ncols ? BATCH_MAX_PARAMS / ncols : 1;
			if (b.cap > BATCH_MAX_ROWS)
				b.cap = BATCH_MAX_ROWS;
			if (b.cap < 1)
				b.cap = 1;
			b.map = xcalloc((size_t)ncols + 1, sizeof(*b.map));
			b.params = xcalloc((size_t)b.cap * (size_t)(ncols + 1), sizeof(*b.params));
			sb_reset(&sql);
			sb_adds(&sql, "INSERT INTO ");
			add_ident(&sql, cur->name);
			sb_adds(&sql, " (");
			for (int c = 0; c < ncols; c++) {
				const char *name = json_string_value(json_array_get(cols, (size_t)c));
				for (int k = 0; k < cur->ncols; k++)
					if (!strcmp(cur->cols[k].name, name))
						b.map[c] = (struct colmap){ cur->cols[k].type, cur->cols[k].name };
				sb_adds(&sql, c ? ", " : "");
				add_ident(&sql, name);
			}
			sb_adds(&sql, ") VALUES ");
			b.cols_sql = xstrdup(sql.buf);
		} else {
			break;   /* the end marker, verified in pass 1 */
		}
		json_decref(j);
		j = NULL;
	}
	if (got < 0 || flush_batch(db, &b, err))
		goto out;
	rc = 0;
out:
	json_decref(j);
	for (int i = 0; i < b.n; i++)
		json_decref(b.rows[i]);
	free(loaded);
	free(b.map);
	free(b.params);
	free(b.cols_sql);
	sb_release(&sql);
	return rc;
}

/* After the rows: each id counter past both the dump's counter and the
 * largest id, so that no id is handed out twice. */
static int move_counters(db_t *db, const db_schema_t *s, const struct seen *seen, sb_t *err)
{
	sb_t sql = SB_INIT;
	int rc = 0;
	for (int i = 0; i < s->ntables && !rc; i++) {
		const struct db_table *t = &s->tables[i];
		if (!t->id_counter)
			continue;
		sb_reset(&sql);
		sb_adds(&sql, "SELECT max(\"id\") FROM ");
		add_ident(&sql, t->name);
		db_res_t *r;
		if (db_exec(db, sql.buf, NULL, 0, &r)) {
			sb_addf(err, "cannot read the largest id of table %s: %s", t->name, db_errmsg(db));
			rc = -1;
			break;
		}
		int64_t next = db_int(r, 0, 0) + 1;
		db_res_free(r);
		if (seen[i].next_id > next)
			next = seen[i].next_id;
		if (db_id_counter_set(db, t->name, next)) {
			sb_addf(err, "cannot set the id counter of table %s: %s", t->name, db_errmsg(db));
			rc = -1;
		}
	}
	sb_release(&sql);
	return rc;
}

int dump_restore(db_t *db, const char *path, struct dump_stats *st, sb_t *err)
{
	memset(st, 0, sizeof(*st));
	struct reader rd;
	db_schema_t *s = NULL;
	struct seen *seen = NULL;
	int *order = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	sb_t what = SB_INIT;
	int rc = -1, in_tx = 0;
	char rev[64];
	if (reader_open(&rd, path, err))
		goto out;
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		sb_adds(err, "cannot compute checksums: out of memory");
		goto out;
	}
	if (migrate_check(db, err))
		goto out;
	if (read_header(&rd, md, rev, err))
		goto out;
	if (strcmp(rev, migrate_head())) {
		sb_addf(err, "%s is a dump of schema revision '%s', the target database is at '%s': restore it with the "
			     "fractalctl that wrote it (then upgrade with set-db)", path, rev, migrate_head());
		goto out;
	}
	if (db_schema_read(db, &s)) {
		sb_addf(err, "cannot read the schema: %s", db_errmsg(db));
		goto out;
	}
	order = xcalloc((size_t)s->ntables + 1, sizeof(int));
	seen = xcalloc((size_t)s->ntables + 1, sizeof(*seen));
	if (table_order(s, order, err))
		goto out;
	int has = target_has_rows(db, s, &what, err);
	if (has) {
		if (has > 0) {
			sb_adds(err, "the target ");
			db_describe(err);
			sb_addf(err, " is not empty (table %s has rows): restore only into a database that set-db has just created",
				what.buf);
		}
		goto out;
	}
	if (verify(&rd, md, s, rev, seen, err))
		goto out;

	reader_rewind(&rd);
	if (read_header(&rd, NULL, rev, err))
		goto out;
	if (db_begin(db)) {
		sb_addf(err, "cannot start the restore transaction: %s", db_errmsg(db));
		goto out;
	}
	in_tx = 1;
	/* again, now that we hold the transaction: nothing slipped in */
	sb_reset(&what);
	has = target_has_rows(db, s, &what, err);
	if (has) {
		if (has > 0) {
			sb_adds(err, "the target ");
			db_describe(err);
			sb_addf(err, " is not empty (table %s has rows)", what.buf);
		}
		goto out;
	}
	if (load(db, &rd, s, st, err) || move_counters(db, s, seen, err))
		goto out;
	int64_t expected = 0;
	for (int i = 0; i < s->ntables; i++)
		expected += seen[i].rows;
	if (st->rows != expected) {
		sb_addf(err, "%s changed while it was being restored (%lld rows loaded, %lld verified)", path,
			(long long)st->rows, (long long)expected);
		goto out;
	}
	if (db_commit(db)) {
		sb_addf(err, "cannot commit the restore: %s", db_errmsg(db));
		goto out;
	}
	in_tx = 0;
	rc = 0;
out:
	if (in_tx)
		db_rollback(db);
	reader_close(&rd);
	EVP_MD_CTX_free(md);
	db_schema_free(s);
	free(seen);
	free(order);
	sb_release(&what);
	return rc;
}
