/* settings.c — see settings.h.
 *
 * One table describes every setting (name, group, type, default); loading
 * walks it, converting and checking each value the way upstream's pydantic
 * models do in lax mode, then runs upstream's cross-field checks
 * (validate_email_settings, check_configuration). The JSON dump walks the
 * same table, so a setting added here shows up in /api/settings/ too. */
#include "config/settings.h"

#include "build_config.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

settings_t settings;

enum kind {
	K_INT,        /* int */
	K_NONNEG,     /* NonNegativeInt */
	K_FLOAT,      /* float */
	K_STR,        /* str */
	K_NONEMPTY,   /* NonEmptyStr: stripped, not empty */
	K_SECRET,     /* SecretStr */
	K_LITERAL,    /* Literal[...] (allowed values in `choices`) */
	K_HTTPURL,    /* HttpUrl */
	K_EMAIL,      /* EmailStr */
	K_ECHO,       /* our DB_ECHO: true/True/1 on, anything else off */
	K_ENGINE,     /* our DB_ENGINE */
};

struct def {
	const char *name;
	int group;
	enum kind kind;
	const char *def;        /* default as text; NULL: None */
	int required;
	const char *choices;    /* K_LITERAL: "a|b|c" */
	int nullable;           /* "X | None" */
};

static const struct def defs[] = {
	{ "JWT_EXPIRE_SECONDS", SETTINGS_APP, K_INT, "180", 0, NULL, 0 },
	{ "JWT_SECRET_KEY", SETTINGS_APP, K_SECRET, NULL, 1, NULL, 0 },
	{ "COOKIE_EXPIRE_SECONDS", SETTINGS_APP, K_INT, "86400", 0, NULL, 0 },
	{ "FRACTAL_RUNNER_BACKEND", SETTINGS_APP, K_LITERAL, "local", 0, "local|slurm_ssh|slurm_sudo", 0 },
	{ "FRACTAL_LOGGING_LEVEL", SETTINGS_APP, K_INT, "20", 0, NULL, 0 },
	{ "LOG_CONFIG_FILE", SETTINGS_APP, K_STR, NULL, 0, NULL, 1 },
	{ "FRACTAL_API_MAX_JOB_LIST_LENGTH", SETTINGS_APP, K_INT, "25", 0, NULL, 0 },
	{ "FRACTAL_GRACEFUL_SHUTDOWN_TIME", SETTINGS_APP, K_FLOAT, "30.0", 0, NULL, 0 },
	{ "FRACTAL_HELP_URL", SETTINGS_APP, K_HTTPURL, NULL, 0, NULL, 1 },
	{ "FRACTAL_DEFAULT_GROUP_NAME", SETTINGS_APP, K_LITERAL, NULL, 0, "All", 1 },
	{ "FRACTAL_LONG_REQUEST_TIME", SETTINGS_APP, K_FLOAT, "30.0", 0, NULL, 0 },
	{ "FRACTAL_DISABLE_BASIC_AUTH", SETTINGS_APP, K_LITERAL, "false", 0, "true|false", 0 },
	{ "FRACTAL_ENABLE_TASK_GROUP_RESET", SETTINGS_APP, K_LITERAL, "false", 0, "true|false", 0 },

	{ "DB_ENGINE", SETTINGS_DATABASE, K_ENGINE, "sqlite", 0, NULL, 0 },
	{ "SQLITE_PATH", SETTINGS_DATABASE, K_NONEMPTY, NULL, 0, NULL, 1 },
	{ "SQLITE_SYNCHRONOUS", SETTINGS_DATABASE, K_LITERAL, "FULL", 0, "FULL|NORMAL", 0 },
	{ "SQLITE_MMAP_SIZE", SETTINGS_DATABASE, K_NONNEG, "1073741824", 0, NULL, 0 },
	{ "DB_ECHO", SETTINGS_DATABASE, K_ECHO, "false", 0, NULL, 0 },
	{ "POSTGRES_USER", SETTINGS_DATABASE, K_NONEMPTY, NULL, 0, NULL, 1 },
	{ "POSTGRES_PASSWORD", SETTINGS_DATABASE, K_SECRET, NULL, 0, NULL, 1 },
	{ "POSTGRES_HOST", SETTINGS_DATABASE, K_NONEMPTY, "localhost", 0, NULL, 0 },
	{ "POSTGRES_PORT", SETTINGS_DATABASE, K_NONNEG, "5432", 0, NULL, 0 },
	{ "POSTGRES_DB", SETTINGS_DATABASE, K_NONEMPTY, NULL, 0, NULL, 1 },

	{ "FRACTAL_EMAIL_SENDER", SETTINGS_EMAIL, K_EMAIL, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_PASSWORD", SETTINGS_EMAIL, K_SECRET, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_SMTP_SERVER", SETTINGS_EMAIL, K_STR, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_SMTP_PORT", SETTINGS_EMAIL, K_INT, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_INSTANCE_NAME", SETTINGS_EMAIL, K_STR, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_RECIPIENTS", SETTINGS_EMAIL, K_STR, NULL, 0, NULL, 1 },
	{ "FRACTAL_EMAIL_USE_STARTTLS", SETTINGS_EMAIL, K_LITERAL, "true", 0, "true|false", 0 },
	{ "FRACTAL_EMAIL_USE_LOGIN", SETTINGS_EMAIL, K_LITERAL, "true", 0, "true|false", 0 },

	{ "OAUTH_CLIENT_NAME", SETTINGS_OAUTH, K_NONEMPTY, NULL, 0, NULL, 1 },
	{ "OAUTH_CLIENT_ID", SETTINGS_OAUTH, K_SECRET, NULL, 0, NULL, 1 },
	{ "OAUTH_CLIENT_SECRET", SETTINGS_OAUTH, K_SECRET, NULL, 0, NULL, 1 },
	{ "OAUTH_OIDC_CONFIG_ENDPOINT", SETTINGS_OAUTH, K_SECRET, NULL, 0, NULL, 1 },
	{ "OAUTH_REDIRECT_URL", SETTINGS_OAUTH, K_STR, NULL, 0, NULL, 1 },
	{ "OAUTH_EMAIL_CLAIM", SETTINGS_OAUTH, K_STR, "email", 0, NULL, 0 },
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

/* Validated values, one per def, as normalised text (NULL: None). */
static char *values[NDEFS];

/* ---- .fractal_server.env ---- */

struct kv { char *key, *val; };
static struct kv *file_kv;
static size_t file_nkv;
static int file_loaded;

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The dotenv dialect pydantic-settings reads: NAME=value lines, optional
 * "export ", '#' comments, single or double quotes, inline " #" comments
 * after unquoted values. */
static void parse_env_line(char *line)
{
	char *s = trim(line);
	if (!*s || *s == '#')
		return;
	if (!strncmp(s, "export ", 7))
		s = trim(s + 7);
	char *eq = strchr(s, '=');
	if (!eq)
		return;
	*eq = '\0';
	char *key = trim(s);
	char *val = trim(eq + 1);
	size_t n = strlen(val);
	if (n >= 2 && (val[0] == '"' || val[0] == '\'') && strchr(val + 1, val[0])) {
		char q = val[0];
		char *end = strrchr(val, q);
		*end = '\0';
		val++;
		if (q == '"') { /* minimal escapes */
			char *r = val, *w = val;
			for (; *r; r++) {
				if (*r == '\\' && r[1]) {
					r++;
					*w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
				} else {
					*w++ = *r;
				}
			}
			*w = '\0';
		}
	} else {
		char *hash = strstr(val, " #");
		if (hash) {
			*hash = '\0';
			val = trim(val);
		}
	}
	file_kv = xrealloc(file_kv, (file_nkv + 1) * sizeof(*file_kv));
	file_kv[file_nkv].key = xstrdup(key);
	file_kv[file_nkv].val = xstrdup(val);
	file_nkv++;
}

static void load_env_file(void)
{
	if (file_loaded)
		return;
	file_loaded = 1;
	FILE *f = fopen(".fractal_server.env", "r");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0)
		parse_env_line(line);
	free(line);
	fclose(f);
}

const char *settings_raw(const char *name)
{
	const char *v = getenv(name);
	if (v)
		return v;
	load_env_file();
	/* the last assignment in the file wins, as in dotenv */
	for (size_t i = file_nkv; i-- > 0;)
		if (!strcmp(file_kv[i].key, name))
			return file_kv[i].val;
	return NULL;
}

int settings_uint(const char *name, unsigned long long *out, sb_t *err)
{
	const char *raw = settings_raw(name);
	if (!raw)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(raw, &end, 10);
	if (!*raw || *end || errno || raw[0] == '-') {
		sb_addf(err, "invalid settings: %s: Input should be a valid non-negative integer (got '%s')", name, raw);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- conversions ---- */

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (*end == '.') { /* pydantic accepts "10.0" for an int */
		char *p = end + 1;
		while (*p == '0')
			p++;
		if (p == end + 1 && !isdigit((unsigned char)*p) && *p)
			return -1;
		end = p;
	}
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_float(const char *s, double *out)
{
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int literal_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && !strncmp(p, v, n))
			return 1;
		p += len + (bar ? 1 : 0);
	}
	return 0;
}

static void quote_choices(sb_t *err, const char *choices)
{
	const char *p = choices;
	int first = 1;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		sb_addf(err, "%s'%.*s'", first ? "" : ", ", (int)len, p);
		first = 0;
		p += len + (bar ? 1 : 0);
	}
}

static int email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@'))
		return 0;
	const char *dot = strrchr(at, '.');
	if (!dot || dot == at + 1 || !dot[1])
		return 0;
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char)*p))
			return 0;
	return 1;
}

/* HttpUrl: http(s) scheme and a host; a bare host gets the "/" path pydantic
 * adds. Returns a malloc'd normalised URL or NULL. */
static char *httpurl_normalise(const char *s)
{
	const char *rest;
	if (!strncasecmp(s, "http://", 7))
		rest = s + 7;
	else if (!strncasecmp(s, "https://", 8))
		rest = s + 8;
	else
		return NULL;
	size_t hostlen = strcspn(rest, "/?#");
	if (hostlen == 0)
		return NULL;
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char)*p))
			return NULL;
	sb_t sb = SB_INIT;
	sb_adds(&sb, s);
	if (!rest[hostlen])
		sb_addc(&sb, '/');
	return sb_detach(&sb);
}

/* Converts one raw value; on error appends the reason to err. */
static int convert(const struct def *d, const char *raw, char **out, sb_t *err)
{
	int64_t i;
	double f;
	char *tmp;
	switch (d->kind) {
	case K_INT:
	case K_NONNEG:
		if (parse_int(raw, &i)) {
			sb_adds(err, "Input should be a valid integer");
			return -1;
		}
		if (d->kind == K_NONNEG && i < 0) {
			sb_adds(err, "Input should be greater than or equal to 0");
			return -1;
		}
		tmp = xmalloc(32);
		snprintf(tmp, 32, "%lld", (long long)i);
		*out = tmp;
		return 0;
	case K_FLOAT:
		if (parse_float(raw, &f)) {
			sb_adds(err, "Input should be a valid number");
			return -1;
		}
		*out = xstrdup(raw);
		return 0;
	case K_NONEMPTY: {
		char *c = xstrdup(raw);
		char *t = trim(c);
		if (!*t) {
			free(c);
			sb_adds(err, "String should have at least 1 character");
			return -1;
		}
		*out = xstrdup(t);
		free(c);
		return 0;
	}
	case K_STR:
	case K_SECRET:
		*out = xstrdup(raw);
		return 0;
	case K_LITERAL:
		if (!literal_ok(d->choices, raw)) {
			sb_adds(err, "Input should be ");
			quote_choices(err, d->choices);
			return -1;
		}
		*out = xstrdup(raw);
		return 0;
	case K_HTTPURL:
		if (!(*out = httpurl_normalise(raw))) {
			sb_adds(err, "Input should be a valid URL with scheme http or https and a host");
			return -1;
		}
		return 0;
	case K_EMAIL:
		if (!email_ok(raw)) {
			sb_adds(err, "value is not a valid email address");
			return -1;
		}
		*out = xstrdup(raw);
		return 0;
	case K_ECHO:
		*out = xstrdup(!strcmp(raw, "true") || !strcmp(raw, "True") || !strcmp(raw, "1") ? "true" : "false");
		return 0;
	case K_ENGINE:
		if (!strcmp(raw, "sqlite"))
			*out = xstrdup("sqlite");
		else if (!strcmp(raw, "postgres") || !strcmp(raw, "postgres-psycopg"))
			*out = xstrdup("postgres");
		else {
			sb_adds(err, "Input should be 'sqlite', 'postgres' or 'postgres-psycopg'");
			return -1;
		}
		return 0;
	}
	return -1;
}

static int find(const char *name)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (!strcmp(defs[i].name, name))
			return (int)i;
	abort(); /* a typo in this file */
}

static const char *val(const char *name)
{
	return values[find(name)];
}

static int64_t ival(const char *name)
{
	const char *v = val(name);
	return v ? strtoll(v, NULL, 10) : 0;
}

static char *absolute_path(const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	char *cwd = getcwd(NULL, 0);
	sb_t sb = SB_INIT;
	sb_addf(&sb, "%s/%s", cwd ? cwd : ".", p);
	free(cwd);
	return sb_detach(&sb);
}

static int load_group(int group, sb_t *err)
{
	for (size_t i = 0; i < NDEFS; i++) {
		const struct def *d = &defs[i];
		if (d->group != group)
			continue;
		free(values[i]);
		values[i] = NULL;
		const char *raw = settings_raw(d->name);
		if (!raw) {
			if (d->required) {
				sb_addf(err, "invalid settings: %s: Field required (set it in the environment or in .fractal_server.env)", d->name);
				return -1;
			}
			values[i] = d->def ? xstrdup(d->def) : NULL;
			continue;
		}
		sb_t why = SB_INIT;
		if (convert(d, raw, &values[i], &why)) {
			if (d->kind == K_SECRET || strstr(d->name, "PASSWORD") || strstr(d->name, "SECRET") || strstr(d->name, "KEY"))
				sb_addf(err, "invalid settings: %s: %s", d->name, why.buf);
			else
				sb_addf(err, "invalid settings: %s: %s (got '%s')", d->name, why.buf, raw);
			sb_release(&why);
			return -1;
		}
		sb_release(&why);
	}
	return 0;
}

static int check_database(sb_t *err)
{
	settings.db_engine = !strcmp(val("DB_ENGINE"), "postgres") ? DB_ENGINE_POSTGRES : DB_ENGINE_SQLITE;
	settings.db_echo = !strcmp(val("DB_ECHO"), "true");
	settings.sqlite_synchronous_normal = !strcmp(val("SQLITE_SYNCHRONOUS"), "NORMAL");
	settings.sqlite_mmap_size = ival("SQLITE_MMAP_SIZE");
	settings.pg_user = val("POSTGRES_USER");
	settings.pg_password = val("POSTGRES_PASSWORD");
	settings.pg_host = val("POSTGRES_HOST");
	settings.pg_port = ival("POSTGRES_PORT");
	settings.pg_db = val("POSTGRES_DB");
	if (settings.db_engine == DB_ENGINE_SQLITE) {
		if (!val("SQLITE_PATH")) {
			sb_adds(err, "invalid settings: SQLITE_PATH: Field required when DB_ENGINE=sqlite (the path of the SQLite database file)");
			return -1;
		}
		int idx = find("SQLITE_PATH");
		char *abs = absolute_path(values[idx]);
		free(values[idx]);
		values[idx] = abs;
		settings.sqlite_path = abs;
	} else {
#ifndef HAVE_POSTGRES
		sb_adds(err, "DB_ENGINE=postgres, but this fractalctl was built without PostgreSQL support (rebuild with libpq: meson setup -Dpostgres=enabled)");
		return -1;
#endif
		if (!settings.pg_db) {
			sb_adds(err, "invalid settings: POSTGRES_DB: Field required when DB_ENGINE=postgres");
			return -1;
		}
	}
	return 0;
}

static int check_app(void)
{
	settings.jwt_expire_seconds = ival("JWT_EXPIRE_SECONDS");
	settings.jwt_secret_key = val("JWT_SECRET_KEY");
	settings.cookie_expire_seconds = ival("COOKIE_EXPIRE_SECONDS");
	settings.runner_backend = val("FRACTAL_RUNNER_BACKEND");
	settings.logging_level = (int)ival("FRACTAL_LOGGING_LEVEL");
	settings.log_config_file = val("LOG_CONFIG_FILE");
	settings.max_job_list_length = ival("FRACTAL_API_MAX_JOB_LIST_LENGTH");
	settings.graceful_shutdown_time = strtod(val("FRACTAL_GRACEFUL_SHUTDOWN_TIME"), NULL);
	settings.help_url = val("FRACTAL_HELP_URL");
	settings.default_group_name = val("FRACTAL_DEFAULT_GROUP_NAME");
	settings.long_request_time = strtod(val("FRACTAL_LONG_REQUEST_TIME"), NULL);
	settings.disable_basic_auth = !strcmp(val("FRACTAL_DISABLE_BASIC_AUTH"), "true");
	settings.enable_task_group_reset = !strcmp(val("FRACTAL_ENABLE_TASK_GROUP_RESET"), "true");
	return 0;
}

static const char *const email_required[] = {
	"FRACTAL_EMAIL_SENDER", "FRACTAL_EMAIL_SMTP_SERVER", "FRACTAL_EMAIL_SMTP_PORT",
	"FRACTAL_EMAIL_INSTANCE_NAME", "FRACTAL_EMAIL_RECIPIENTS",
};

/* upstream's validate_email_settings: all five or none; login needs a password */
static int email_is_set(void)
{
	return val("FRACTAL_EMAIL_SENDER") != NULL;
}

static int check_email(sb_t *err)
{
	int n = 0;
	for (size_t i = 0; i < 5; i++)
		n += val(email_required[i]) != NULL;
	if (n != 0 && n != 5) {
		sb_adds(err, "invalid settings: Invalid FRACTAL_EMAIL configuration: FRACTAL_EMAIL_SENDER, FRACTAL_EMAIL_SMTP_SERVER, FRACTAL_EMAIL_SMTP_PORT, FRACTAL_EMAIL_INSTANCE_NAME and FRACTAL_EMAIL_RECIPIENTS must be all set or all unset; missing:");
		for (size_t i = 0; i < 5; i++)
			if (!val(email_required[i]))
				sb_addf(err, " %s", email_required[i]);
		return -1;
	}
	if (n == 5 && !strcmp(val("FRACTAL_EMAIL_USE_LOGIN"), "true") && !val("FRACTAL_EMAIL_PASSWORD")) {
		sb_adds(err, "invalid settings: 'FRACTAL_EMAIL_USE_LOGIN' is 'true' but 'FRACTAL_EMAIL_PASSWORD' is not provided.");
		return -1;
	}
	if (n == 5) {
		/* each recipient must be an e-mail address, as PublicEmailSettings checks */
		char *r = xstrdup(val("FRACTAL_EMAIL_RECIPIENTS"));
		int ok = 1;
		for (char *save, *t = strtok_r(r, ",", &save); t; t = strtok_r(NULL, ",", &save))
			ok &= email_ok(t);
		free(r);
		if (!ok) {
			sb_adds(err, "invalid settings: FRACTAL_EMAIL_RECIPIENTS: every comma-separated recipient must be a valid email address");
			return -1;
		}
	}
	settings.email_set = n == 5;
	settings.email_sender = val("FRACTAL_EMAIL_SENDER");
	settings.email_password = val("FRACTAL_EMAIL_PASSWORD");
	settings.email_smtp_server = val("FRACTAL_EMAIL_SMTP_SERVER");
	settings.email_smtp_port = ival("FRACTAL_EMAIL_SMTP_PORT");
	settings.email_instance_name = val("FRACTAL_EMAIL_INSTANCE_NAME");
	settings.email_recipients = val("FRACTAL_EMAIL_RECIPIENTS");
	settings.email_use_starttls = !strcmp(val("FRACTAL_EMAIL_USE_STARTTLS"), "true");
	settings.email_use_login = !strcmp(val("FRACTAL_EMAIL_USE_LOGIN"), "true");
	return 0;
}

static int check_oauth(sb_t *err)
{
	int idx = find("OAUTH_CLIENT_NAME");
	if (values[idx])
		for (char *p = values[idx]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	const char *name = values[idx];
	settings.oauth_client_name = name;
	if (name && strcmp(name, "google") && strcmp(name, "github") && !val("OAUTH_OIDC_CONFIG_ENDPOINT")) {
		sb_addf(err, "invalid settings: OAUTH_OIDC_CONFIG_ENDPOINT is required when OAUTH_CLIENT_NAME='%s' (only google and github need none)", name);
		return -1;
	}
	settings.oauth_client_id = val("OAUTH_CLIENT_ID");
	settings.oauth_client_secret = val("OAUTH_CLIENT_SECRET");
	settings.oauth_oidc_config_endpoint = val("OAUTH_OIDC_CONFIG_ENDPOINT");
	settings.oauth_redirect_url = val("OAUTH_REDIRECT_URL");
	settings.oauth_email_claim = val("OAUTH_EMAIL_CLAIM");
	settings.oauth_set = name && settings.oauth_client_id && settings.oauth_client_secret;
	return 0;
}

int settings_load(int groups, sb_t *err)
{
	static const int order[] = { SETTINGS_DATABASE, SETTINGS_APP, SETTINGS_EMAIL, SETTINGS_OAUTH };
	for (size_t i = 0; i < 4; i++) {
		int g = order[i];
		if (!(groups & g))
			continue;
		if (load_group(g, err))
			return -1;
		int rc = g == SETTINGS_DATABASE ? check_database(err) :
			 g == SETTINGS_APP ? check_app() :
			 g == SETTINGS_EMAIL ? check_email(err) : check_oauth(err);
		if (rc)
			return -1;
	}
	return 0;
}

/* ---- JSON dump for /api/settings/ ---- */

static void dump_value(const struct def *d, const char *v, sb_t *out)
{
	if (!v) {
		sb_adds(out, "null");
		return;
	}
	switch (d->kind) {
	case K_SECRET:
		sb_adds(out, "\"**********\"");
		return;
	case K_INT:
	case K_NONNEG:
		sb_adds(out, v);
		return;
	case K_FLOAT: {
		double f = strtod(v, NULL);
		char buf[64];
		if (f == floor(f) && fabs(f) < 1e15)
			snprintf(buf, sizeof(buf), "%.1f", f);
		else
			snprintf(buf, sizeof(buf), "%.17g", f);
		sb_adds(out, buf);
		return;
	}
	default:
		sb_add_json_str(out, v);
	}
}

static void dump_email_public(sb_t *out)
{
	if (!email_is_set()) {
		sb_adds(out, "null");
		return;
	}
	sb_adds(out, "{\"sender\":");
	sb_add_json_str(out, val("FRACTAL_EMAIL_SENDER"));
	sb_adds(out, ",\"recipients\":[");
	char *r = xstrdup(val("FRACTAL_EMAIL_RECIPIENTS"));
	int first = 1;
	for (char *save, *t = strtok_r(r, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!first)
			sb_addc(out, ',');
		sb_add_json_str(out, t);
		first = 0;
	}
	free(r);
	sb_adds(out, "],\"smtp_server\":");
	sb_add_json_str(out, val("FRACTAL_EMAIL_SMTP_SERVER"));
	sb_addf(out, ",\"port\":%s,\"password\":%s,\"instance_name\":", val("FRACTAL_EMAIL_SMTP_PORT"),
		val("FRACTAL_EMAIL_PASSWORD") ? "\"**********\"" : "null");
	sb_add_json_str(out, val("FRACTAL_EMAIL_INSTANCE_NAME"));
	sb_addf(out, ",\"use_starttls\":%s,\"use_login\":%s}", val("FRACTAL_EMAIL_USE_STARTTLS"),
		val("FRACTAL_EMAIL_USE_LOGIN"));
}

void settings_dump_json(int group, sb_t *out)
{
	sb_addc(out, '{');
	int first = 1;
	for (size_t i = 0; i < NDEFS; i++) {
		if (defs[i].group != group)
			continue;
		if (!first)
			sb_addc(out, ',');
		first = 0;
		sb_add_json_str(out, defs[i].name);
		sb_addc(out, ':');
		dump_value(&defs[i], values[i], out);
	}
	if (group == SETTINGS_EMAIL) {
		sb_adds(out, ",\"public\":");
		dump_email_public(out);
	}
	sb_addc(out, '}');
}

/* ---- the debug lines of start ---- */

void settings_log_debug(const char *logger)
{
	static const int order[] = { SETTINGS_DATABASE, SETTINGS_APP, SETTINGS_EMAIL };
	if (!log_enabled_for(logger, LOG_DEBUG))
		return;
	log_msg(LOG_DEBUG, logger, "Fractal Settings:");
	for (size_t g = 0; g < 3; g++)
		for (size_t i = 0; i < NDEFS; i++) {
			const struct def *d = &defs[i];
			if (d->group != order[g])
				continue;
			int secret = d->kind == K_SECRET || strstr(d->name, "PASSWORD") || strstr(d->name, "SECRET") ||
				     strstr(d->name, "KEY");
			log_msg(LOG_DEBUG, logger, "  %s: %s", d->name, secret ? "*****" : values[i] ? values[i] : "None");
		}
	/* ours, beyond upstream's (read where they are used) */
	static const char *const ours[] = {
		"FRACTAL_HTTP_CONNECTIONS_PER_IP", "FRACTAL_HTTP_BODY_BUDGET", "FRACTAL_ENABLE_METRICS",
		"FRACTAL_METRICS_ADDRESS", "FRACTAL_UNIX_SOCKET", "FRACTAL_UNIX_SOCKET_MODE", "FRACTAL_PYPI_SIMPLE_URL",
	};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		const char *v = settings_raw(ours[i]);
		log_msg(LOG_DEBUG, logger, "  %s: %s", ours[i], v ? v : "None");
	}
}
