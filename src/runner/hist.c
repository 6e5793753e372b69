/* hist.c — the runner's history writes: historyrun and historyunit rows and
 * the historyimagecache (upstream's runner/v2/db_tools.py). One statement
 * or one batch of statements per function; the transactions around them
 * are the callers' (workflow.c, kinds.c), so that a run's rows and its
 * cache entries commit together. */
#include <stdlib.h>

#include "runner/internal.h"
#include "util/timeutil.h"

int hist_unit_status(job_t *j, int64_t hu_id, enum hist_state from, enum hist_state to, const char *logfile)
{
	sm_change(&hist_sm, hu_id, from, to);
	return db_exec(j->db, "UPDATE historyunit SET status = $1, has_warnings = $2 WHERE id = $3",
		       (db_param_t[]){ P_TEXT(sm_name(&hist_sm, to)), P_BOOL(file_has_warning(logfile)), P_INT(hu_id) }, 3, NULL);
}

int hist_run_status(job_t *j, int64_t run_id, enum hist_state to)
{
	sm_change(&hist_sm, run_id, HIST_SUBMITTED, to);
	if (db_exec(j->db, "UPDATE historyrun SET status = $1 WHERE id = $2",
		    (db_param_t[]){ P_TEXT(sm_name(&hist_sm, to)), P_INT(run_id) }, 2, NULL))
		return job_db_fail(j, "history run");
	return 0;
}

int64_t hist_unit_insert(job_t *j, int64_t run_id, const char *logfile, json_t *urls)
{
	char *arr = json_dumps(urls, JSON_COMPACT);
	db_res_t *r = NULL;
	int64_t id = -1;
	if (!db_exec(j->db,
		     "INSERT INTO historyunit (history_run_id, logfile, status, zarr_urls, has_warnings) "
		     "VALUES ($1, $2, " SQ(S_SUBMITTED) ", $3, $4) RETURNING id",
		     (db_param_t[]){ P_INT(run_id), P_TEXT(logfile), P_ARRAY(arr), P_BOOL(0) }, 4, &r))
		id = db_int(r, 0, 0);
	db_res_free(r);
	free(arr);
	return id;
}

/* bulk_upsert_image_cache_fast, 500 rows a statement. */
int hist_cache_upsert(job_t *j, int64_t wftask_id, json_t *urls, const int64_t *unit_ids)
{
	size_t n = json_array_size(urls);
	for (size_t b = 0; b < n; b += 500) {
		size_t e = b + 500 < n ? b + 500 : n;
		sb_t sql = SB_INIT;
		sb_adds(&sql, "INSERT INTO historyimagecache (zarr_url, dataset_id, workflowtask_id, latest_history_unit_id) VALUES ");
		db_param_t *p = xcalloc(4 * (e - b), sizeof(*p));
		for (size_t i = b; i < e; i++) {
			size_t k = 4 * (i - b);
			sb_addf(&sql, "%s($%zu, $%zu, $%zu, $%zu)", i > b ? ", " : "", k + 1, k + 2, k + 3, k + 4);
			p[k] = P_TEXT(json_string_value(json_array_get(urls, i)));
			p[k + 1] = P_INT(j->a.dataset_id);
			p[k + 2] = P_INT(wftask_id);
			p[k + 3] = P_INT(unit_ids[i]);
		}
		sb_adds(&sql, " ON CONFLICT (zarr_url, dataset_id, workflowtask_id) DO UPDATE SET "
			      "latest_history_unit_id = excluded.latest_history_unit_id");
		int rc = db_exec(j->db, sql.buf, p, (int)(4 * (e - b)), NULL);
		free(p);
		sb_release(&sql);
		if (rc)
			return -1;
	}
	return 0;
}

int hist_units_status_bulk(job_t *j, const int64_t *ids, size_t n, enum hist_state to, unit_t *units, size_t nunits,
			   unit_t *init)
{
	/* has_warnings first (only ever set to true), then the status */
	for (size_t i = 0; i <= nunits; i++) {
		unit_t *u = i < nunits ? &units[i] : init;
		if (file_has_warning(u->log_path.buf) &&
		    db_exec(j->db, "UPDATE historyunit SET has_warnings = $1 WHERE id = $2",
			    (db_param_t[]){ P_BOOL(1), P_INT(u->hu_id) }, 2, NULL))
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		sm_change(&hist_sm, ids[i], HIST_SUBMITTED, to);
		if (db_exec(j->db, "UPDATE historyunit SET status = $1 WHERE id = $2",
			    (db_param_t[]){ P_TEXT(sm_name(&hist_sm, to)), P_INT(ids[i]) }, 2, NULL))
			return -1;
	}
	return 0;
}

int hist_run_units_failed(job_t *j, int64_t run_id)
{
	return db_exec(j->db, "UPDATE historyunit SET status = " SQ(S_FAILED) " WHERE history_run_id = $1",
		       (db_param_t[]){ P_INT(run_id) }, 1, NULL);
}

int64_t hist_run_insert(job_t *j, int64_t wftask_id, int64_t task_id, const char *wftask_dump,
			const char *task_group_dump, int64_t num_available)
{
	char now[40];
	utc_now_iso(now, sizeof(now));
	db_res_t *r = NULL;
	int64_t id = -1;
	if (!db_exec(j->db,
		     "INSERT INTO historyrun (dataset_id, workflowtask_id, job_id, task_id, workflowtask_dump, "
		     "task_group_dump, timestamp_started, status, num_available_images) "
		     "VALUES ($1, $2, $3, $4, $5, $6, $7, " SQ(S_SUBMITTED) ", $8) RETURNING id",
		     (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(wftask_id), P_INT(j->a.job_id), P_INT(task_id),
				     P_JSON(wftask_dump), P_JSON(task_group_dump), P_TS(now), P_INT(num_available) },
		     8, &r))
		id = db_int(r, 0, 0);
	db_res_free(r);
	return id;
}

int hist_cache_delete(job_t *j, int64_t wftask_id, const char *url)
{
	return db_exec(j->db, "DELETE FROM historyimagecache WHERE dataset_id = $1 AND workflowtask_id = $2 AND zarr_url = $3",
		       (db_param_t[]){ P_INT(j->a.dataset_id), P_INT(wftask_id), P_TEXT(url) }, 3, NULL);
}
