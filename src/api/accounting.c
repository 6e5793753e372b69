/* accounting.c — /admin/v2/accounting/ (the runner's per-task records of
 * work done: tasks run and images created, paginated) and
 * /admin/v2/accounting/slurm/ (the SLURM job ids of matching records, as
 * one flat list), as upstream's routes/admin/v2/accounting.py. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/common.h"
#include "api/params.h"
#include "api/task_common.h"
#include "util/timeutil.h"

/* An AwareDatetime | None member of the body into out (40 bytes, canonical
 * UTC; "" when absent or null), errors at ["body", name]. */
static void body_ts(json_t *body, const char *name, char *out, verr_t *e)
{
	out[0] = '\0';
	json_t *v = json_object_get(body, name);
	if (!v || json_is_null(v))
		return;
	json_t *loc = json_pack("[s,s]", "body", name);
	if (json_is_number(v)) {
		/* pydantic reads numbers as Unix timestamps, in UTC */
		double t = json_number_value(v);
		time_t s = (time_t)floor(t);
		struct tm tm;
		gmtime_r(&s, &tm);
		char buf[96];
		int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", tm.tm_year + 1900,
				 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				 (int)lround((t - floor(t)) * 1e6) % 1000000);
		if (n > 0 && n < 40)
			memcpy(out, buf, (size_t)n + 1);
	} else if (!json_is_string(v)) {
		verr_add(e, "datetime_type", json_incref(loc), "Input should be a valid datetime", v, NULL);
	} else {
		int rc = ts_parse_aware(json_string_value(v), out, 40);
		if (rc == -2)
			verr_add(e, "timezone_aware", json_incref(loc), "Input should have timezone info", v, NULL);
		else if (rc)
			verr_add(e, "datetime_from_date_parsing", json_incref(loc),
				 "Input should be a valid datetime or date, invalid character in year", v,
				 json_pack("{s:s}", "error", "invalid character in year"));
		if (rc)
			out[0] = '\0';
	}
	json_decref(loc);
}

typedef struct acc_query {
	json_t *b;                 /* the int fields that were sent */
	char ts_min[40], ts_max[40];
} acc_query_t;

/* AccountingQuery (with_slurm: AccountingQuerySLURM); 0, or -1 after the 422. */
static int parse_query(http_req_t *req, int with_slurm, acc_query_t *q)
{
	verr_t e;
	verr_init(&e);
	q->b = NULL;
	json_t *body = v_parse_body(req, &e);
	if (body && !json_is_object(body)) {
		v_add_not_object(&e, json_pack("[s]", "body"), body);
	} else if (body) {
		const vfield_t fields[] = {
			{ .name = "user_id", .type = V_INT, .nullable = 1 },
			{ .name = "timestamp_min", .type = V_ANY, .nullable = 1 },
			{ .name = "timestamp_max", .type = V_ANY, .nullable = 1 },
			{ .name = "fractal_job_id", .type = V_INT, .nullable = 1 },
			{ .name = "resource_id", .type = V_INT, .nullable = 1 },
		};
		json_t *base = json_pack("[s]", "body");
		/* field order matters for the order of errors: the int fields
		 * through v_object, the datetimes in between by hand */
		json_t *tmp = json_object();
		json_t *one = v_object(body, fields, 1, 0, base, &e);
		json_object_update(tmp, one);
		json_decref(one);
		body_ts(body, "timestamp_min", q->ts_min, &e);
		body_ts(body, "timestamp_max", q->ts_max, &e);
		one = v_object(body, fields + 3, with_slurm ? 2 : 1, 0, base, &e);
		json_object_update(tmp, one);
		json_decref(one);
		json_decref(base);
		q->b = tmp;
	}
	json_decref(body);
	if (verr_reply(&e, req)) {
		json_decref(q->b);
		q->b = NULL;
		return -1;
	}
	return 0;
}

/* adds "column = ?" when the int field was sent and is not null */
static void filter_int(qb_t *qb, json_t *b, const char *field, const char *clause)
{
	json_t *v = json_object_get(b, field);
	if (v && json_is_integer(v))
		qb_add(qb, clause, P_INT(json_integer_value(v)));
}

/* upstream resolves the pagination dependency of POST /admin/v2/accounting/
 * before the superuser one: the route table runs this before the guard. */
int api_pre_pagination(http_req_t *req)
{
	int64_t page, page_size;
	return v_pagination(req, &page, &page_size);
}

void api_admin_accounting(http_req_t *req)
{
	int64_t page, page_size;
	if (v_pagination(req, &page, &page_size))
		return;
	acc_query_t q;
	if (parse_query(req, 0, &q))
		return;
	qb_t qb;
	qb_init(&qb);
	/* fractal_job_id is accepted and, as upstream, not used here */
	filter_int(&qb, q.b, "user_id", "user_id = ?");
	if (q.ts_min[0])
		qb_add(&qb, "\"timestamp\" >= ?", P_TS(q.ts_min));
	if (q.ts_max[0])
		qb_add(&qb, "\"timestamp\" <= ?", P_TS(q.ts_max));
	db_t *db = req->db;
	sb_t o = SB_INIT;
	db_res_t *r = NULL;
	if (!qb_paginate(req, db, &qb, "id, user_id, \"timestamp\", num_tasks, num_new_images", "accountingrecord", "id", page,
			 page_size, &o, &r)) {
		for (int i = 0; i < db_nrows(r); i++) {
			sb_addf(&o, "%s{\"id\":%lld,\"user_id\":%lld,\"timestamp\":", i ? "," : "", (long long)db_int(r, i, 0),
				(long long)db_int(r, i, 1));
			sb_add_json_ts(&o, db_text(r, i, 2));
			sb_addf(&o, ",\"num_tasks\":%lld,\"num_new_images\":%lld}", (long long)db_int(r, i, 3),
				(long long)db_int(r, i, 4));
		}
		sb_adds(&o, "]}");
		http_json_sb(req, 200, &o);
	}
	sb_release(&o);
	db_res_free(r);
	qb_release(&qb);
	json_decref(q.b);
}

void api_admin_accounting_slurm(http_req_t *req)
{
	acc_query_t q;
	if (parse_query(req, 1, &q))
		return;
	qb_t qb;
	qb_init(&qb);
	filter_int(&qb, q.b, "user_id", "user_id = ?");
	if (q.ts_min[0])
		qb_add(&qb, "\"timestamp\" >= ?", P_TS(q.ts_min));
	if (q.ts_max[0])
		qb_add(&qb, "\"timestamp\" <= ?", P_TS(q.ts_max));
	filter_int(&qb, q.b, "fractal_job_id", "fractal_job_id = ?");
	filter_int(&qb, q.b, "resource_id", "resource_id = ?");
	db_t *db = req->db;
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT slurm_job_ids FROM accountingrecordslurm%s ORDER BY id", qb.where.buf);
	db_res_t *r;
	int rc = db_exec(db, sql.buf, qb.p, qb.n, &r);
	sb_release(&sql);
	qb_release(&qb);
	json_decref(q.b);
	if (rc) {
		api_db_error(req, db);
		return;
	}
	sb_t o = SB_INIT;
	sb_addc(&o, '[');
	int first = 1;
	for (int i = 0; i < db_nrows(r); i++) {
		json_t *ids = db_text(r, i, 0) ? json_loads(db_text(r, i, 0), 0, NULL) : NULL;
		size_t k;
		json_t *v;
		json_array_foreach(ids, k, v) {
			sb_addf(&o, "%s%lld", first ? "" : ",", (long long)json_integer_value(v));
			first = 0;
		}
		json_decref(ids);
	}
	sb_addc(&o, ']');
	db_res_free(r);
	http_json_sb(req, 200, &o);
}
