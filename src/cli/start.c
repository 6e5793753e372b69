/* start.c — fractalctl start: validate every setting, check that the
 * database answers and is at the newest schema revision, then serve. */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "build_config.h"
#include "collect/collect.h"
#include "cli/cli.h"
#include "config/settings.h"
#include "db/migrate.h"
#include "http/http.h"
#include "runner/runner.h"
#include "util/log.h"

int cmd_start(int argc, char **argv)
{
	struct cli_opt opts[] = {
		{ "--host", NULL, "HOST", "bind socket to this host (default: 127.0.0.1)", NULL },
		{ "--port", "-p", "PORT", "bind socket to this port (default: 8000)", NULL },
		{ "--reload", NULL, NULL, "enable auto-reload (accepted for compatibility; no effect)", NULL },
	};
	int rc = cli_parse("start", "Start the server", argc, argv, opts, 3);
	if (rc)
		return rc < 0 ? 0 : rc;
	const char *host = opts[0].value ? opts[0].value : "127.0.0.1";
	int port = 8000;
	if (opts[1].value) {
		char *end;
		long v = strtol(opts[1].value, &end, 10);
		if (!*opts[1].value || *end || v < 0 || v > 65535) {
			fprintf(stderr, "fractalctl start: error: argument -p/--port: invalid int value: '%s'\n", opts[1].value);
			return 2;
		}
		port = (int)v;
	}
	if ((rc = cli_load_settings(SETTINGS_ALL)))
		return rc;
	sb_t err = SB_INIT;
	db_t *db = db_open(0, &err);
	if (!db || migrate_check(db, &err)) {
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
		db_close(db);
		sb_release(&err);
		return 1;
	}
	/* activities a stopped or crashed server left behind must not stay
	 * pending/ongoing forever */
	if (collect_fail_leftovers(db) < 0) {
		fprintf(stderr, "fractalctl start: error: %s\n", db_errmsg(db));
		db_close(db);
		sb_release(&err);
		return 1;
	}
	/* jobs a previous process left 'submitted' can never end now */
	runner_recover(db);
	db_close(db);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sb_t what = SB_INIT;
	db_describe(&what);
	log_info("Start fractal-server %s on %s", FRACTAL_VERSION, what.buf);
	sb_release(&what);
	rc = http_serve(host, port, &err) ? 1 : 0;
	/* task collections in flight: finish, or stop and fail */
	collect_shutdown(settings.graceful_shutdown_time);
	curl_global_cleanup();
	if (rc)
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
	sb_release(&err);
	return rc;
}
