/* test_log.c — src/util/log.c and logconf.c: Python's %-style fields with
 * widths, uvicorn's levelprefix and access fields, the logger hierarchy
 * (levels inherited, propagate, the root's handlers), buffered lines
 * flushed in order, and LOG_CONFIG_FILE's refusals naming what is wrong. */
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "unit.h"

static char dir[] = "/tmp/fractal-test-log.XXXXXX";

static const char *path_of(const char *name)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static const char *read_file(const char *name)
{
	static char buf[4096];
	log_flush();
	FILE *f = fopen(path_of(name), "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	return buf;
}

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(path_of(name), "w");
	fputs(text, f);
	fclose(f);
}

/* The message of a refused configuration ("" when it was accepted). */
static const char *refusal(const char *yaml)
{
	static char buf[1024];
	sb_t err = SB_INIT;
	write_file("bad.yaml", yaml);
	int rc = log_configure_file(path_of("bad.yaml"), &err);
	snprintf(buf, sizeof(buf), "%s", rc ? err.buf : "");
	sb_release(&err);
	return buf;
}

static void check_refusals(void)
{
	CHECK(strstr(refusal("version: 1\nformatters: {f: {format: '%(lineno)5d %(color)s'}}\n"),
		     "the field %(color) is not supported"));
	CHECK(strstr(refusal("version: 1\nformatters: {f: {format: '%(name)d'}}\n"),
		     "%(name)d needs a number, and that field is text"));
	CHECK(strstr(refusal("version: 1\nformatters: {f: {format: '%(client_addr)s'}}\n"),
		     "(only by uvicorn.logging.AccessFormatter)"));
	CHECK(strstr(refusal("version: 1\nformatters: {f: {format: '{message}', style: '{'}}\n"),
		     "style '{' is not supported"));
	CHECK(strstr(refusal("version: 1\nformatters: {f: {'()': my.Formatter}}\n"),
		     "the formatter factory '()': my.Formatter is not supported"));
	CHECK(strstr(refusal("version: 1\nhandlers: {h: {class: logging.FileHandler}}\n"), "filename is required"));
	CHECK(strstr(refusal("version: 1\nhandlers: {h: {class: logging.StreamHandler, formatter: nope}}\n"),
		     "the formatter 'nope' is not defined"));
	CHECK(strstr(refusal("version: 1\nhandlers: {h: {class: logging.FileHandler, filename: /nonexistent/x}}\n"),
		     "cannot open the log file '/nonexistent/x'"));
	CHECK(strstr(refusal("version: 1\nloggers: {a: {level: INFO, colour: red}}\n"),
		     "loggers.a: the key 'colour' is not supported"));
	CHECK(strstr(refusal("version: 1\nincremental: true\n"), "incremental: true is not supported"));
	CHECK(strstr(refusal("- version\n"), "not a dictConfig mapping"));
	CHECK(strstr(refusal(""), "the file is empty"));
	CHECK(strstr(refusal("[loggers]\nkeys=root\n"), "looks like an INI logging.config.fileConfig"));
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	check_refusals();

	/* a file handler at INFO on the root, a DEBUG one on "a" that does not
	 * propagate; "a.b" inherits a's level; an access formatter */
	char yaml[2048], root_log[256], a_log[256], access_log[256];
	snprintf(root_log, sizeof(root_log), "%s", path_of("root.log"));
	snprintf(a_log, sizeof(a_log), "%s", path_of("a.log"));
	snprintf(access_log, sizeof(access_log), "%s", path_of("access.log"));
	snprintf(yaml, sizeof(yaml),
		 "version: 1\n"
		 "formatters:\n"
		 "  f: {format: '[%%(levelname)-7s|%%(name)s|%%(levelno)03d|%%(module)s] %%(message)r'}\n"
		 "  u: {'()': uvicorn.logging.AccessFormatter, fmt: '%%(levelprefix)s%%(client_addr)s %%(request_line)s "
		 "%%(status_code)s'}\n"
		 "handlers:\n"
		 "  root_file: {class: logging.FileHandler, filename: %s, formatter: f, level: INFO}\n"
		 "  a_file: {class: logging.FileHandler, filename: %s, formatter: f, mode: w}\n"
		 "  acc: {class: logging.handlers.WatchedFileHandler, filename: %s, formatter: u}\n"
		 "loggers:\n"
		 "  a: {level: DEBUG, handlers: [a_file], propagate: false}\n"
		 "  access: {level: INFO, handlers: [acc], propagate: false}\n"
		 "root: {level: WARNING, handlers: [root_file]}\n",
		 root_log, a_log, access_log);
	write_file("good.yaml", yaml);
	sb_t err = SB_INIT;
	CHECK_INT(log_configure_file(path_of("good.yaml"), &err), 0);
	CHECK_STR(err.buf, "");
	sb_release(&err);

	CHECK_INT(log_enabled_for("a.b", LOG_DEBUG), 1);
	CHECK_INT(log_enabled_for("other", LOG_INFO), 0);
	log_msg(LOG_INFO, "other", "below the root's WARNING");
	log_msg(LOG_WARNING, "other", "to the root");
	log_msg(LOG_DEBUG, "a.b", "to a, %d", 42);
	CHECK_STR(read_file("root.log"), "[WARNING|other|030|test_log] 'to the root'\n");
	CHECK_STR(read_file("a.log"), "[DEBUG  |a.b|010|test_log] 'to a, 42'\n");

	/* buffered lines keep their order with an unbuffered one after them */
	struct log_access acc = { "127.0.0.1:5000", "GET /x?y=1 HTTP/1.1", "200 OK" };
	log_access(LOG_INFO, "access", &acc, "first");
	log_access(LOG_INFO, "access", &acc, "second");
	log_msg(LOG_WARNING, "access", "third");
	CHECK_STR(read_file("access.log"), "INFO:    127.0.0.1:5000 GET /x?y=1 HTTP/1.1 200 OK\n"
					   "INFO:    127.0.0.1:5000 GET /x?y=1 HTTP/1.1 200 OK\n"
					   "WARNING:   \n"); /* no access fields on a plain record */
	/* logrotate moved the file: the next lines go to a new one */
	char moved[300];
	snprintf(moved, sizeof(moved), "%s.1", access_log);
	CHECK_INT(rename(access_log, moved), 0);
	log_msg(LOG_ERROR, "access", "after the move");
	CHECK_STR(read_file("access.log"), "ERROR:     \n");

	/* RotatingFileHandler: a line that would reach maxBytes opens a new
	 * file; backupCount old ones are kept */
	char rot[256], rot_yaml[1024];
	snprintf(rot, sizeof(rot), "%s", path_of("rot.log"));
	snprintf(rot_yaml, sizeof(rot_yaml),
		 "version: 1\n"
		 "handlers: {r: {class: logging.handlers.RotatingFileHandler, filename: %s, maxBytes: 50, backupCount: 2}}\n"
		 "root: {level: INFO, handlers: [r]}\n", rot);
	write_file("rot.yaml", rot_yaml);
	err = (sb_t)SB_INIT;
	CHECK_INT(log_configure_file(path_of("rot.yaml"), &err), 0);
	CHECK_STR(err.buf, "");
	sb_release(&err);
	for (int i = 1; i <= 7; i++)
		log_msg(LOG_INFO, "x", "line %d .............", i); /* 20 bytes with its newline */
	CHECK_STR(read_file("rot.log"), "line 7 .............\n");
	CHECK_STR(read_file("rot.log.1"), "line 5 .............\nline 6 .............\n");
	CHECK_STR(read_file("rot.log.2"), "line 3 .............\nline 4 .............\n");
	CHECK_INT(access(path_of("rot.log.3"), F_OK), -1);
	CHECK(strstr(refusal("version: 1\nhandlers: {r: {class: logging.handlers.RotatingFileHandler, filename: /tmp/r, "
			     "maxBytes: lots}}\n"), "maxBytes must be a non-negative integer"));

	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	return unit_done("log");
}
