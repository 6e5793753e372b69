/* postgres.c — the PostgreSQL backend of db.h, through libpq.
 *
 * Connects with the POSTGRES_* settings (host may be a UNIX-socket folder),
 * sets the session to UTC with ISO dates, and prepares each statement once
 * per connection (named s1, s2, ... and cached by SQL text). A connection
 * found broken outside a transaction is reset once and the statement
 * retried; inside a transaction the error goes up, since the transaction is
 * lost anyway. Array columns come back as JSON array text and timestamps in
 * the canonical form, so callers never see PostgreSQL's own spellings. */
#include "build_config.h"
#ifdef HAVE_POSTGRES

#include "db/db_internal.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"

/* type OIDs from pg_type.h */
#define BOOLOID 16
#define TIMESTAMPOID 1114
#define TIMESTAMPTZOID 1184
#define INT4ARRAYOID 1007
#define INT8ARRAYOID 1016
#define TEXTARRAYOID 1009
#define VARCHARARRAYOID 1015

struct cached {
	char *sql;
	char name[16];
	struct cached *next;
};

#define NBUCKETS 256

struct pg_conn {
	PGconn *h;
	int nprepared;
	struct cached *buckets[NBUCKETS];
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void forget_prepared(struct pg_conn *c)
{
	for (int b = 0; b < NBUCKETS; b++) {
		struct cached *e = c->buckets[b];
		while (e) {
			struct cached *next = e->next;
			free(e->sql);
			free(e);
			e = next;
		}
		c->buckets[b] = NULL;
	}
	c->nprepared = 0;
}

static void set_err_res(db_t *db, struct pg_conn *c, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(c->h);
	enum db_errclass cls = state && !strncmp(state, "23", 2) ? DB_ERR_CONSTRAINT :
			       PQstatus(c->h) == CONNECTION_BAD ? DB_ERR_CONNECT : DB_ERR_OTHER;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	if (detail)
		db_set_error(db, cls, "%s (%s)", msg, detail);
	else
		db_set_error(db, cls, "%s", msg);
	/* libpq prefixes "ERROR:  " */
	if (!strncmp(db->err.buf, "ERROR:  ", 8)) {
		memmove(db->err.buf, db->err.buf + 8, db->err.len - 7);
		db->err.len -= 8;
	}
}

/* JSON array text -> PostgreSQL array literal, for DB_ARRAY parameters. */
static int json_to_pgarray(const char *json, sb_t *out)
{
	json_t *a = json_loads(json, JSON_DECODE_ANY, NULL);
	if (!json_is_array(a)) {
		json_decref(a);
		return -1;
	}
	sb_addc(out, '{');
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (i)
			sb_addc(out, ',');
		if (json_is_null(v)) {
			sb_adds(out, "NULL");
		} else if (json_is_integer(v)) {
			sb_addf(out, "%lld", (long long)json_integer_value(v));
		} else if (json_is_string(v)) {
			sb_addc(out, '"');
			for (const char *s = json_string_value(v); *s; s++) {
				if (*s == '"' || *s == '\\')
					sb_addc(out, '\\');
				sb_addc(out, *s);
			}
			sb_addc(out, '"');
		} else {
			json_decref(a);
			return -1;
		}
	}
	sb_addc(out, '}');
	json_decref(a);
	return 0;
}

/* PostgreSQL array output ({a,"b c",NULL}) -> JSON array text. */
static void pgarray_to_json(const char *in, int numeric, sb_t *out)
{
	sb_addc(out, '[');
	const char *p = in;
	if (*p == '{')
		p++;
	int first = 1;
	sb_t item = SB_INIT;
	while (*p && *p != '}') {
		sb_reset(&item);
		int quoted = 0;
		if (*p == '"') {
			quoted = 1;
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				sb_addc(&item, *p++);
			}
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',' && *p != '}')
				sb_addc(&item, *p++);
		}
		if (!first)
			sb_addc(out, ',');
		first = 0;
		if (!quoted && !strcmp(item.buf, "NULL"))
			sb_adds(out, "null");
		else if (numeric)
			sb_adds(out, item.buf);
		else
			sb_add_json_str(out, item.buf);
		if (*p == ',')
			p++;
	}
	sb_release(&item);
	sb_addc(out, ']');
}

static const char *prepare(db_t *db, struct pg_conn *c, const char *sql, int n)
{
	unsigned b = hash(sql) % NBUCKETS;
	for (struct cached *e = c->buckets[b]; e; e = e->next)
		if (!strcmp(e->sql, sql))
			return e->name;
	struct cached *e = xcalloc(1, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "s%d", ++c->nprepared);
	PGresult *res = PQprepare(c->h, e->name, sql, n, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_err_res(db, c, res);
		PQclear(res);
		free(e);
		return NULL;
	}
	PQclear(res);
	e->sql = xstrdup(sql);
	e->next = c->buckets[b];
	c->buckets[b] = e;
	return e->name;
}

static int pg_exec_once(db_t *db, const char *sql, const db_param_t *p, int n, db_res_t **res)
{
	struct pg_conn *c = db->conn;
	const char *name = prepare(db, c, sql, n);
	if (!name)
		return -1;
	const char **vals = n ? xcalloc((size_t)n, sizeof(char *)) : NULL;
	sb_t *bufs = n ? xcalloc((size_t)n, sizeof(sb_t)) : NULL;
	int rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		sb_init(&bufs[i], 0);
		switch (p[i].type) {
		case DB_NULL: vals[i] = NULL; break;
		case DB_INT: sb_addf(&bufs[i], "%lld", (long long)p[i].i); vals[i] = bufs[i].buf; break;
		case DB_BOOL: vals[i] = p[i].i ? "true" : "false"; break;
		case DB_DOUBLE: sb_addf(&bufs[i], "%.17g", p[i].d); vals[i] = bufs[i].buf; break;
		case DB_ARRAY:
			if (json_to_pgarray(p[i].s, &bufs[i])) {
				db_set_error(db, DB_ERR_OTHER, "parameter $%d is not a JSON array of strings or integers", i + 1);
				rc = -1;
			}
			vals[i] = bufs[i].buf;
			break;
		default: vals[i] = p[i].s;
		}
	}
	PGresult *r = NULL;
	if (!rc) {
		r = PQexecPrepared(c->h, name, n, vals, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(r);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			set_err_res(db, c, r);
			rc = -1;
		}
	}
	for (int i = 0; i < n; i++)
		sb_release(&bufs[i]);
	free(bufs);
	free(vals);
	if (rc) {
		PQclear(r);
		return -1;
	}
	if (res) {
		int ncols = PQnfields(r), nrows = PQntuples(r);
		db_res_t *out = res_new(ncols);
		const char **cv = ncols ? xcalloc((size_t)ncols, sizeof(char *)) : NULL;
		size_t *cl = ncols ? xcalloc((size_t)ncols, sizeof(size_t)) : NULL;
		sb_t *conv = ncols ? xcalloc((size_t)ncols, sizeof(sb_t)) : NULL;
		for (int row = 0; row < nrows; row++) {
			for (int col = 0; col < ncols; col++) {
				if (PQgetisnull(r, row, col)) {
					cv[col] = NULL;
					cl[col] = 0;
					continue;
				}
				const char *v = PQgetvalue(r, row, col);
				Oid t = PQftype(r, col);
				sb_reset(&conv[col]);
				if (t == TIMESTAMPTZOID || t == TIMESTAMPOID) {
					ts_canonical(v, &conv[col]);
					cv[col] = conv[col].buf;
					cl[col] = conv[col].len;
				} else if (t == INT4ARRAYOID || t == INT8ARRAYOID || t == TEXTARRAYOID || t == VARCHARARRAYOID) {
					pgarray_to_json(v, t == INT4ARRAYOID || t == INT8ARRAYOID, &conv[col]);
					cv[col] = conv[col].buf;
					cl[col] = conv[col].len;
				} else {
					cv[col] = v;
					cl[col] = (size_t)PQgetlength(r, row, col);
				}
			}
			res_add_row(out, cv, cl);
		}
		for (int col = 0; col < ncols; col++)
			sb_release(&conv[col]);
		free(conv);
		free(cv);
		free(cl);
		*res = out;
	}
	PQclear(r);
	return 0;
}

static int session_setup(PGconn *h)
{
	PGresult *r = PQexec(h, "SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD'; SET client_encoding = 'UTF8'");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	/* lz4 for the large values we write (an image list is one jsonb value:
	 * each edit of it recompresses it whole; lz4 takes a quarter off a
	 * one-image write at 100,000 images, docs/images.md). A session
	 * setting: the schema keeps its default, other clients read the
	 * values as any; a server built without lz4 keeps pglz. */
	if (ok) {
		r = PQexec(h, "SET default_toast_compression = 'lz4'");
		PQclear(r);
	}
	return ok ? 0 : -1;
}

static int pg_exec(db_t *db, const char *sql, const db_param_t *p, int n, db_res_t **res)
{
	struct pg_conn *c = db->conn;
	int rc = pg_exec_once(db, sql, p, n, res);
	if (rc && PQstatus(c->h) == CONNECTION_BAD && !db->in_tx) {
		/* the server went away (restart, idle kill): reconnect once */
		PQreset(c->h);
		if (PQstatus(c->h) == CONNECTION_OK && !session_setup(c->h)) {
			forget_prepared(c);
			rc = pg_exec_once(db, sql, p, n, res);
		}
	}
	return rc;
}

static int pg_exec_script(db_t *db, const char *sql)
{
	struct pg_conn *c = db->conn;
	PGresult *r = PQexec(c->h, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_err_res(db, c, r);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int pg_table_exists(db_t *db, const char *table)
{
	db_res_t *r;
	db_param_t p[] = { P_TEXT(table) };
	if (db_exec(db, "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = $1", p, 1, &r))
		return -1;
	int n = db_nrows(r);
	db_res_free(r);
	return n > 0;
}

static int pg_count_tables(db_t *db)
{
	db_res_t *r;
	if (db_exec(db, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()", NULL, 0, &r))
		return -1;
	int n = (int)db_int(r, 0, 0);
	db_res_free(r);
	return n;
}

static enum db_type pg_type(const char *typname)
{
	static const struct { const char *name; enum db_type type; } map[] = {
		{ "int2", DB_INT }, { "int4", DB_INT }, { "int8", DB_INT },
		{ "bool", DB_BOOL },
		{ "float4", DB_DOUBLE }, { "float8", DB_DOUBLE }, { "numeric", DB_DOUBLE },
		{ "json", DB_JSON }, { "jsonb", DB_JSON },
		{ "timestamptz", DB_TS }, { "timestamp", DB_TS },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(typname, map[i].name))
			return map[i].type;
	/* array types are named after their element with a leading '_' */
	return typname[0] == '_' ? DB_ARRAY : DB_TEXT;
}

/* The table's name, schema-qualified and quoted, as pg_get_serial_sequence
 * wants it (it does not quote its first argument itself). */
#define QUALIFIED "quote_ident(current_schema()) || '.' || quote_ident($1)"

static int pg_schema_read(db_t *db, db_schema_t *s)
{
	db_res_t *tr = NULL, *cr = NULL, *fr = NULL, *sr = NULL;
	if (db_exec(db, "SELECT c.relname, c.oid FROM pg_catalog.pg_class c "
			"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
			"WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname",
		    NULL, 0, &tr))
		return -1;
	int rc = 0;
	for (int i = 0; i < db_nrows(tr) && !rc; i++) {
		struct db_table *t = schema_add_table(s, db_text(tr, i, 0));
		db_param_t p[] = { P_TEXT(db_text(tr, i, 1)) };
		if (db_exec(db, "SELECT a.attname, t.typname, COALESCE((SELECT k.ord FROM pg_catalog.pg_index i, "
				"unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
				"WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0) "
				"FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
				"WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
			    p, 1, &cr) ||
		    db_exec(db, "SELECT DISTINCT f.relname FROM pg_catalog.pg_constraint k "
				"JOIN pg_catalog.pg_class f ON f.oid = k.confrelid "
				"WHERE k.contype = 'f' AND k.conrelid = $1::oid",
			    p, 1, &fr)) {
			rc = -1;
			break;
		}
		int has_id = 0;
		for (int c = 0; c < db_nrows(cr); c++) {
			table_add_column(t, db_text(cr, c, 0), pg_type(db_text(cr, c, 1)), (int)db_int(cr, c, 2));
			has_id |= !strcmp(db_text(cr, c, 0), "id");
		}
		for (int f = 0; f < db_nrows(fr); f++)
			table_add_ref(t, db_text(fr, f, 0));
		if (has_id) {
			/* pg_get_serial_sequence errors on a missing column: ask only
			 * when there is an "id" */
			db_param_t q[] = { P_TEXT(t->name) };
			if (db_exec(db, "SELECT pg_get_serial_sequence(" QUALIFIED ", 'id') IS NOT NULL", q, 1, &sr)) {
				rc = -1;
				break;
			}
			t->id_counter = db_bool(sr, 0, 0);
			db_res_free(sr);
			sr = NULL;
		}
		db_res_free(cr);
		db_res_free(fr);
		cr = fr = NULL;
	}
	db_res_free(cr);
	db_res_free(fr);
	db_res_free(tr);
	return rc;
}

static int pg_id_counter_get(db_t *db, const char *table, int64_t *next)
{
	db_res_t *r;
	db_param_t p[] = { P_TEXT(table) };
	if (db_exec(db, "SELECT pg_get_serial_sequence(" QUALIFIED ", 'id')", p, 1, &r))
		return -1;
	if (db_isnull(r, 0, 0)) {
		db_set_error(db, DB_ERR_OTHER, "table %s has no id sequence", table);
		db_res_free(r);
		return -1;
	}
	/* the name comes back quoted and qualified, ready for SQL; a sequence
	 * is read like a one-row table (not transactional: it may be ahead
	 * of a snapshot, never behind) */
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT last_value, is_called FROM %s", db_text(r, 0, 0));
	db_res_free(r);
	int rc = db_exec(db, sql.buf, NULL, 0, &r);
	sb_release(&sql);
	if (rc)
		return -1;
	*next = db_int(r, 0, 0) + (db_bool(r, 0, 1) ? 1 : 0);
	db_res_free(r);
	return 0;
}

static int pg_id_counter_set(db_t *db, const char *table, int64_t next)
{
	/* is_called = false: nextval() hands out `next` itself */
	db_param_t p[] = { P_TEXT(table), P_INT(next < 1 ? 1 : next) };
	return db_exec(db, "SELECT setval(pg_get_serial_sequence(" QUALIFIED ", 'id'), $2, false)", p, 2, NULL);
}

static int pg_row_version(db_t *db, const char *table, const char *column, int64_t id, char version[64], char **text)
{
	/* one statement, so that the text is the version's */
	char sql[200];
	if (text)
		snprintf(sql, sizeof(sql), "SELECT xmin::text || '/' || ctid::text, %s FROM %s WHERE id = $1", column, table);
	else
		snprintf(sql, sizeof(sql), "SELECT xmin::text || '/' || ctid::text FROM %s WHERE id = $1", table);
	db_res_t *r;
	if (db_exec(db, sql, (db_param_t[]){ P_INT(id) }, 1, &r))
		return -1;
	int found = db_nrows(r) > 0;
	if (found) {
		snprintf(version, 64, "xmin:%s", db_text(r, 0, 0));
		if (text)
			*text = xstrdup(db_text(r, 0, 1) ? db_text(r, 0, 1) : "");
	}
	db_res_free(r);
	return found;
}

static int pg_json_array_edit(db_t *db, const char *table, const char *column, int64_t id, long at, const char *item,
			      const char *text, size_t text_len, size_t from, size_t n_changed, char version[64])
{
	(void)text_len;
	(void)from;
	/* the text of one element, not of the list: jsonb edits its own copy */
	char sql[256], idx[32];
	db_param_t p[3];
	int n;
	const char *ret = "RETURNING xmin::text || '/' || ctid::text";
	if (at < 0 && !item && n_changed == (size_t)-1) {
		/* the whole list anew (NUL-terminated) */
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = $1::jsonb WHERE id = $2 %s", table, column, ret);
		p[0] = P_TEXT(text), p[1] = P_INT(id), n = 2;
	} else if (at < 0) {
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = %s || jsonb_build_array($1::jsonb) WHERE id = $2 %s", table,
			 column, column, ret);
		p[0] = P_TEXT(item), p[1] = P_INT(id), n = 2;
	} else if (item) {
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = jsonb_set(%s, ARRAY[$1::text], $2::jsonb) WHERE id = $3 %s",
			 table, column, column, ret);
		snprintf(idx, sizeof(idx), "%ld", at);
		p[0] = P_TEXT(idx), p[1] = P_TEXT(item), p[2] = P_INT(id), n = 3;
	} else {
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = %s - $1::int WHERE id = $2 %s", table, column, column, ret);
		p[0] = P_INT(at), p[1] = P_INT(id), n = 2;
	}
	db_res_t *r;
	if (db_exec(db, sql, p, n, &r))
		return -1;
	int found = db_nrows(r) > 0;
	if (found)
		snprintf(version, 64, "xmin:%s", db_text(r, 0, 0));
	db_res_free(r);
	if (!found) {
		sb_reset(&db->err);
		sb_addf(&db->err, "no row %lld in %s", (long long)id, table);
		db->cls = DB_ERR_OTHER;
		return -1;
	}
	return 0;
}

/* A session advisory lock in this database; the key spells "fractal". */
static int pg_server_lock(db_t *db)
{
	db_res_t *r;
	if (db_exec(db, "SELECT pg_try_advisory_lock(7382069818995862528)", NULL, 0, &r))
		return -1;
	int got = db_nrows(r) && db_bool(r, 0, 0);
	db_res_free(r);
	return got;
}

/* The two-key form: its keys never meet pg_server_lock's one-key form. */
static int pg_lock_key(db_t *db, int32_t scope, int32_t id)
{
	return db_exec(db, "SELECT pg_advisory_xact_lock($1::int4, $2::int4)", (db_param_t[]){ P_INT(scope), P_INT(id) }, 2,
		       NULL);
}

static void pg_close(db_t *db)
{
	struct pg_conn *c = db->conn;
	if (!c)
		return;
	forget_prepared(c);
	PQfinish(c->h);
	free(c);
}

const struct db_ops postgres_ops = {
	.name = "postgres",
	.begin_sql = "BEGIN",
	.snapshot_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	.exec = pg_exec,
	.exec_script = pg_exec_script,
	.table_exists = pg_table_exists,
	.count_tables = pg_count_tables,
	.schema_read = pg_schema_read,
	.id_counter_get = pg_id_counter_get,
	.id_counter_set = pg_id_counter_set,
	.server_lock = pg_server_lock,
	.lock_key = pg_lock_key,
	.row_version = pg_row_version,
	.json_array_edit = pg_json_array_edit,
	.close = pg_close,
};

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

db_t *postgres_open(sb_t *err)
{
	char port[32];
	snprintf(port, sizeof(port), "%lld", (long long)settings.pg_port);
	const char *keys[8], *vals[8];
	int k = 0;
	keys[k] = "host"; vals[k++] = settings.pg_host;
	keys[k] = "port"; vals[k++] = port;
	keys[k] = "dbname"; vals[k++] = settings.pg_db;
	if (settings.pg_user) { keys[k] = "user"; vals[k++] = settings.pg_user; }
	if (settings.pg_password) { keys[k] = "password"; vals[k++] = settings.pg_password; }
	keys[k] = "connect_timeout"; vals[k++] = "10";
	keys[k] = "application_name"; vals[k++] = "fractalctl";
	keys[k] = NULL; vals[k] = NULL;
	PGconn *h = PQconnectdbParams(keys, vals, 0);
	if (!h || PQstatus(h) != CONNECTION_OK) {
		/* libpq's message can span lines ("connection to server ... failed:
		 * FATAL: ..."): keep it on one line */
		sb_t msg = SB_INIT;
		sb_adds(&msg, h ? PQerrorMessage(h) : "out of memory");
		for (size_t i = 0; i < msg.len; i++)
			if (msg.buf[i] == '\n')
				msg.buf[i] = ' ';
		while (msg.len && msg.buf[msg.len - 1] == ' ')
			msg.buf[--msg.len] = '\0';
		const char *user = settings.pg_user ? settings.pg_user : (h ? PQuser(h) : NULL);
		sb_addf(err, "cannot connect to PostgreSQL database '%s' at %s:%s as user '%s': %s",
			settings.pg_db, settings.pg_host, port, user ? user : "(default)", msg.buf);
		sb_release(&msg);
		PQfinish(h);
		return NULL;
	}
	if (session_setup(h)) {
		sb_addf(err, "cannot set up PostgreSQL session on database '%s': %s", settings.pg_db, PQerrorMessage(h));
		PQfinish(h);
		return NULL;
	}
	/* quiet NOTICEs (e.g. from IF NOT EXISTS) */
	PQsetNoticeProcessor(h, quiet_notice, NULL);
	db_t *db = xcalloc(1, sizeof(*db));
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	c->h = h;
	db->conn = c;
	db->ops = &postgres_ops;
	sb_init(&db->err, 0);
	return db;
}

#endif /* HAVE_POSTGRES */
