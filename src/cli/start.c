/* start.c — fractalctl start: validate every setting, check that the
 * database answers and is at the newest schema revision, then serve.
 *
 * Shutdown is owned here, against one deadline D = the signal's time +
 * FRACTAL_GRACEFUL_SHUTDOWN_TIME and one hard limit H = D +
 * SHUTDOWN_MARGIN_USEC, so that its waits run side by side instead of
 * adding up (a service manager's stop timeout must cover grace + margin):
 *   at the signal  stop accepting; running jobs are asked to stop (SIGTERM
 *                  to their tasks: a job ends failed, as upstream's)
 *   until D        requests in flight finish; jobs end; task collections
 *                  in flight may still finish
 *   at D           collections are stopped (SIGTERM), tasks still running
 *                  get SIGKILL
 *   at D + M/2     collection subprocesses still running get SIGKILL
 *   until H        the stopped jobs and collections write their failure
 *   at H           what is still running is marked failed from here, the
 *                  daemon stops (cutting requests still in flight) and the
 *                  process exits. */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "build_config.h"
#include "api/oauth.h"
#include "collect/collect.h"
#include "cli/cli.h"
#include "config/settings.h"
#include "db/migrate.h"
#include "http/http.h"
#include "model/imgcache.h"
#include "runner/runner.h"
#include "util/host.h"
#include "util/log.h"
#include "util/timeutil.h"

/* after the grace time: SIGKILL, and time for the failure writes */
#define SHUTDOWN_MARGIN_USEC (4 * 1000000LL)

static void shut_down(void)
{
	int64_t t0 = mono_usec();
	int64_t d = t0 + (int64_t)(settings.graceful_shutdown_time * 1e6), h = d + SHUTDOWN_MARGIN_USEC;
	http_quiesce();
	runner_stop();
	http_drain(d);
	runner_wait(d);
	collect_wait(d);
	collect_stop();
	runner_kill();
	if (collect_wait(d + SHUTDOWN_MARGIN_USEC / 2))
		collect_kill();
	runner_wait(h);
	collect_wait(h);
	runner_fail_leftovers();
	collect_fail_stragglers();
	/* the shared SSH master connections (util/host_ssh.c), by pid */
	host_ssh_shutdown();
	http_stop();
	log_info("Shutdown took %.1f s", (double)(mono_usec() - t0) / 1e6);
}

int cmd_start(int argc, char **argv)
{
	struct cli_opt opts[] = {
		{ "--host", NULL, "HOST", "bind socket to this host (default: 127.0.0.1)", NULL },
		{ "--port", "-p", "PORT", "bind socket to this port (default: 8000)", NULL },
		{ "--reload", NULL, NULL, "enable auto-reload (accepted for compatibility; no effect)", NULL },
		{ "--uds", NULL, "PATH", "listen on this UNIX socket instead of host and port (default: "
		  "FRACTAL_UNIX_SOCKET)", NULL },
	};
	int rc = cli_parse("start", "Start the server", argc, argv, opts, 4);
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
	/* as upstream's start_application: the file replaces the built-in
	 * logging; unlike upstream, one we cannot honour stops the start */
	if (settings.log_config_file && log_configure_file(settings.log_config_file, &err)) {
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
		sb_release(&err);
		return 1;
	}
	log_msg(LOG_INFO, "lifespan.startup", "START (fractal-server %s)", FRACTAL_VERSION);
	settings_log_debug("lifespan.startup");
	const char *uds = opts[3].value ? opts[3].value : settings_raw("FRACTAL_UNIX_SOCKET");
	if (uds && !*uds) {
		fprintf(stderr, "fractalctl start: error: the UNIX socket path is empty\n");
		return 2;
	}
	db_t *db = db_open(0, &err);
	if (!db || migrate_check(db, &err)) {
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
		db_close(db);
		sb_release(&err);
		return 1;
	}
	/*
	 * Activities and jobs a stopped or crashed server left pending must not
	 * stay so forever; but another server on this database may be running
	 * them, so only the holder of the server lock (kept on this connection
	 * until we exit) fails them.
	 */
	int locked = db_server_lock(db);
	if (locked < 0)
		log_warning("Cannot take the server lock (%s): unfinished jobs and task-group activities are left as "
			    "they are", db_errmsg(db));
	else if (!locked)
		log_warning("Another fractalctl server holds this database: its unfinished jobs and task-group "
			    "activities are left to it");
	if (locked > 0 && collect_fail_leftovers(db) < 0) {
		fprintf(stderr, "fractalctl start: error: %s\n", db_errmsg(db));
		db_close(db);
		sb_release(&err);
		return 1;
	}
	if (locked > 0)
		runner_recover(db);
	if (imgcache_configure(&err)) {
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
		db_close(db);
		sb_release(&err);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (oauth_init(&err)) {
		/* as upstream, a provider that cannot be reached stops the start */
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
		curl_global_cleanup();
		db_close(db);
		sb_release(&err);
		return 1;
	}
	sb_t what = SB_INIT;
	db_describe(&what);
	log_info("Start fractal-server %s on %s", FRACTAL_VERSION, what.buf);
	sb_release(&what);
	rc = http_start(host, port, uds, &err) ? 1 : 0;
	if (!rc) {
		http_wait_signal();
		shut_down();
	}
	db_close(db); /* releases the server lock */
	curl_global_cleanup();
	if (rc)
		fprintf(stderr, "fractalctl start: error: %s\n", err.buf);
	sb_release(&err);
	return rc;
}
