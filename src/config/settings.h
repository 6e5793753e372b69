/* settings.h — fractal-server's settings: read once from the environment and
 * from .fractal_server.env in the working directory (the environment wins),
 * validated, then read-only for the life of the process.
 *
 * Every setting of upstream 2.24 (config/_main.py, _database.py, _email.py,
 * _oauth.py) plus the SQLite-era DB_ENGINE and SQLITE_PATH is parsed and
 * checked, grouped as upstream groups them. A command validates the groups
 * it needs (set-db: database; start: all), so that e.g. set-db does not ask
 * for JWT_SECRET_KEY, as upstream's does not. */
#ifndef SETTINGS_H
#define SETTINGS_H

#include <stdint.h>

#include "util/sb.h"

enum settings_group {
	SETTINGS_APP = 1 << 0,
	SETTINGS_DATABASE = 1 << 1,
	SETTINGS_EMAIL = 1 << 2,
	SETTINGS_OAUTH = 1 << 3,
	SETTINGS_ALL = 15,
};

enum db_engine { DB_ENGINE_SQLITE, DB_ENGINE_POSTGRES };

typedef struct settings {
	/* app */
	int64_t jwt_expire_seconds;
	const char *jwt_secret_key;
	int64_t cookie_expire_seconds;
	const char *runner_backend;
	int logging_level;
	const char *log_config_file;
	int64_t max_job_list_length;
	double graceful_shutdown_time;
	const char *help_url;            /* normalised, or NULL */
	const char *default_group_name;  /* "All" or NULL */
	double long_request_time;
	int disable_basic_auth;
	int enable_task_group_reset;
	/* database */
	enum db_engine db_engine;
	const char *sqlite_path;         /* absolute */
	int sqlite_synchronous_normal;   /* SQLITE_SYNCHRONOUS=NORMAL (default FULL; docs/database.md) */
	long long sqlite_mmap_size;      /* SQLITE_MMAP_SIZE: bytes of the file read through mmap (docs/database.md) */
	int db_echo;
	const char *pg_user;             /* NULL: libpq's default, the system user */
	const char *pg_password;
	const char *pg_host;
	int64_t pg_port;
	const char *pg_db;
	/* email: all NULL/0 unless the five required settings are set */
	int email_set;
	const char *email_sender;
	const char *email_password;      /* NULL: none */
	const char *email_smtp_server;
	int64_t email_smtp_port;
	const char *email_instance_name;
	const char *email_recipients;    /* comma-separated, as given */
	int email_use_starttls;
	int email_use_login;
	/* oauth */
	const char *oauth_client_name;   /* lower-cased */
	const char *oauth_client_id;
	const char *oauth_client_secret;
	const char *oauth_oidc_config_endpoint;
	const char *oauth_redirect_url;  /* NULL: the callback route's own URL */
	const char *oauth_email_claim;
	int oauth_set;                   /* name, id and secret all set (upstream's is_set) */
} settings_t;

/* The process-wide settings, valid after settings_load() succeeded. */
extern settings_t settings;

/* Reads the environment and .fractal_server.env and validates `groups`.
 * On failure returns -1 with a one-line message in err (names the setting,
 * never a secret's value). */
int settings_load(int groups, sb_t *err);

/* Appends the JSON object upstream's /api/settings/<group>/ answers, secrets
 * masked. group is one SETTINGS_* value. */
void settings_dump_json(int group, sb_t *out);

/* Logs every setting at debug level on `logger`, as upstream's start does
 * ("Fractal Settings:" then "  NAME: value"; secrets as *****). */
void settings_log_debug(const char *logger);

/* Raw lookup (environment first, then the file); NULL when unset. */
const char *settings_raw(const char *name);

/* A non-negative integer setting into *out (left as it is when unset);
 * -1 with "invalid settings: NAME: ..." in err when it is not one. */
struct sb;
int settings_uint(const char *name, unsigned long long *out, struct sb *err);

#endif
