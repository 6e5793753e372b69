/* metrics.c — GET /metrics, beyond upstream (docs/operations.md): the
 * server's state in Prometheus' text exposition format (0.0.4). Off unless
 * FRACTAL_ENABLE_METRICS=true; then served by the main listener to
 * superusers (the route's guard), or, with FRACTAL_METRICS_ADDRESS, by a
 * listener of its own to anyone who reaches that address, and not by the
 * main one (404, before any guard: api_metrics_here).
 *
 * Series: the request counters and latency histograms of http/metrics.c;
 * jobs and task-group activities in the database by status (every status
 * of model/state.h, zeros included); this process's open database
 * connections; the image-list cache's entries and bytes (model/imgcache.c);
 * the process's resident memory and start time. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/metrics.h"
#include "model/imgcache.h"
#include "model/state.h"

int api_metrics_here(http_req_t *req)
{
	if (http_metrics_on_main())
		return 0;
	http_error(req, 404, "Not Found");
	return -1;
}

/* "metric{status=...} n" for every state of m, from table's status column */
static int by_status(http_req_t *req, const char *table, const state_machine_t *m, const char *metric,
		     const char *help, sb_t *out)
{
	sb_t sql = SB_INIT;
	sb_addf(&sql, "SELECT status, count(*) FROM %s GROUP BY status", table);
	db_res_t *r;
	int rc = db_exec(req->db, sql.buf, NULL, 0, &r);
	sb_release(&sql);
	if (rc)
		return -1;
	sb_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", metric, help, metric);
	for (int s = 0; s < m->n; s++) {
		int64_t n = 0;
		for (int i = 0; i < db_nrows(r); i++)
			if (db_text(r, i, 0) && !strcmp(db_text(r, i, 0), m->names[s]))
				n = db_int(r, i, 1);
		sb_addf(out, "%s{status=\"%s\"} %lld\n", metric, m->names[s], (long long)n);
	}
	db_res_free(r);
	return 0;
}

static void process_series(sb_t *out)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	sb_addf(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		     "# TYPE process_resident_memory_bytes gauge\n"
		     "process_resident_memory_bytes %lld\n",
		(long long)resident * sysconf(_SC_PAGESIZE));
	/* the start: field 22 of /proc/self/stat, in clock ticks after boot */
	double start = 0;
	char buf[1024];
	f = fopen("/proc/self/stat", "r");
	size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[len] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long long ticks = 0;
	FILE *up = fopen("/proc/uptime", "r");
	double uptime = 0;
	if (up) {
		if (fscanf(up, "%lf", &uptime) != 1)
			uptime = 0;
		fclose(up);
	}
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			&ticks) == 1 && uptime > 0)
		start = (double)time(NULL) - uptime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
	sb_addf(out, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
		     "# TYPE process_start_time_seconds gauge\n"
		     "process_start_time_seconds %.2f\n", start);
}

void api_metrics(http_req_t *req)
{
	sb_t out = SB_INIT;
	http_metrics_write(&out);
	if (by_status(req, "jobv2", &job_sm, "fractal_jobs", "Jobs in the database, by status.", &out) ||
	    by_status(req, "taskgroupactivityv2", &activity_sm, "fractal_task_group_activities",
		      "Task-group activities in the database, by status.", &out)) {
		sb_release(&out);
		http_error_500(req, "metrics: %s", db_errmsg(req->db));
		return;
	}
	size_t entries, bytes;
	imgcache_stats(&entries, &bytes);
	sb_addf(&out, "# HELP fractal_db_connections Database connections this process holds open.\n"
		      "# TYPE fractal_db_connections gauge\n"
		      "fractal_db_connections{engine=\"%s\"} %d\n"
		      "# HELP fractal_image_cache_entries Dataset image lists in the parsed-list cache.\n"
		      "# TYPE fractal_image_cache_entries gauge\n"
		      "fractal_image_cache_entries %zu\n"
		      "# HELP fractal_image_cache_bytes Bytes held by the parsed image-list cache.\n"
		      "# TYPE fractal_image_cache_bytes gauge\n"
		      "fractal_image_cache_bytes %zu\n",
		db_engine_name(req->db), db_open_count(), entries, bytes);
	process_series(&out);
	http_json_sb(req, 200, &out);
	req->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
