/* log.h — the one logger, modelled on Python's logging as upstream uses it.
 *
 * Levels are Python's (10 debug, 20 info, 30 warning, 40 error, 50
 * critical). Every line goes to a named logger ("fractalctl", "uvicorn.access",
 * "slow-response", "db.echo", ...); loggers form Python's dotted hierarchy,
 * each with an optional level and handlers, records propagating to the
 * parent unless told not to. The built-in configuration is upstream's
 * default with `fractalctl start`: every logger to stderr at
 * FRACTAL_LOGGING_LEVEL as "YYYY-mm-dd HH:MM:SS,mmm - name - LEVEL - message",
 * and uvicorn's access logger to stdout at INFO. LOG_CONFIG_FILE replaces it
 * with a logging.config.dictConfig in YAML or JSON (log_configure_file, in
 * logconf.c), as upstream's does; what we cannot honour is refused there.
 *
 * Lines are written whole, one write(2) each or several lines at once, so
 * that lines from worker threads never interleave. Lines logged through
 * log_msg_buffered() (the access log: one a request) may wait in their
 * handler's buffer up to LOG_FLUSH_MSEC or until it holds LOG_BUFFER_BYTES;
 * any other line written to the same handler flushes what waits before it,
 * so a handler's lines keep their order. No line is ever fsync'ed. */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

#include "util/sb.h"

enum { LOG_NOTSET = 0, LOG_DEBUG = 10, LOG_INFO = 20, LOG_WARNING = 30, LOG_ERROR = 40, LOG_CRITICAL = 50 };

#define LOG_FLUSH_MSEC 100
#define LOG_BUFFER_BYTES (32 << 10)

/* The built-in configuration's threshold (FRACTAL_LOGGING_LEVEL); no effect
 * once a LOG_CONFIG_FILE is in force (as upstream's). */
void log_set_level(int level);
/* Whether a record of `level` on logger `name` would reach any handler:
 * callers skip building costly messages otherwise. */
int log_enabled_for(const char *name, int level);

/* The fields uvicorn's AccessFormatter adds to an access record (all three
 * NUL-terminated): "127.0.0.1:5000", "GET /path?q HTTP/1.1", "200 OK". */
struct log_access {
	const char *client_addr;
	const char *request_line;
	const char *status_code;
};

void log_msg_at(const char *file, int line, const char *func, int level, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Logs whatever the logger's level (DB_ECHO asked for its lines explicitly);
 * the handlers' own levels still apply. */
void log_always_at(const char *file, int line, const char *func, int level, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* An access line: `access` (may be NULL) gives uvicorn's fields; the line
 * may wait in its handlers' buffers (see above). */
void log_access_at(const char *file, int line, const char *func, int level, const char *name,
		   const struct log_access *access, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#define log_msg(level, name, ...) log_msg_at(__FILE__, __LINE__, __func__, level, name, __VA_ARGS__)
#define log_always(level, name, ...) log_always_at(__FILE__, __LINE__, __func__, level, name, __VA_ARGS__)
#define log_access(level, name, access, ...) \
	log_access_at(__FILE__, __LINE__, __func__, level, name, access, __VA_ARGS__)

#define log_debug(...) log_msg(LOG_DEBUG, "fractalctl", __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, "fractalctl", __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, "fractalctl", __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, "fractalctl", __VA_ARGS__)

/* Replaces the built-in configuration with the dictConfig in the YAML or
 * JSON file at path (logconf.c). Call once, before other threads log.
 * 0, or -1 with a message in err that names what is wrong or unsupported
 * (the configuration is then left as it was). */
int log_configure_file(const char *path, sb_t *err);

/* Writes whatever waits in the handlers' buffers (also run at exit). */
void log_flush(void);

/* ---- for logconf.c: building a configuration ---- */

typedef struct log_formatter log_formatter_t;
typedef struct log_handler log_handler_t;
typedef struct log_config log_config_t;

enum log_formatter_kind { LOG_FMT_PLAIN, LOG_FMT_UVICORN_DEFAULT, LOG_FMT_UVICORN_ACCESS };
enum log_handler_kind { LOG_H_STREAM, LOG_H_FILE, LOG_H_WATCHED_FILE, LOG_H_NULL };

log_config_t *log_config_new(void);
/* A formatter of Python's %-style `fmt` (NULL: "%(message)s") and strftime
 * `datefmt` (NULL: "%Y-%m-%d %H:%M:%S,mmm"); NULL with a message when fmt
 * names a field we cannot fill or is malformed. Owned by cfg. */
log_formatter_t *log_config_formatter(log_config_t *cfg, enum log_formatter_kind kind, const char *fmt,
				      const char *datefmt, sb_t *err);
/* A handler: LOG_H_STREAM writes to fd (1 or 2); the file kinds open path
 * now (mode "a" or "w"), unless delay; fmt NULL: "%(message)s". NULL with
 * a message when the file cannot be opened. Owned by cfg. */
log_handler_t *log_config_handler(log_config_t *cfg, enum log_handler_kind kind, int fd, const char *path,
				  int truncate, int delay, int level, log_formatter_t *fmt, sb_t *err);
/* Makes a file handler RotatingFileHandler's: past max_bytes the file
 * becomes path.1 (path.1 path.2 ..., up to backup_count); either 0: never. */
void log_handler_rotate(log_handler_t *h, long long max_bytes, int backup_count);
/* A logger (name "" is the root): its level (LOG_NOTSET: inherit; root's
 * default is WARNING), propagate, and handlers (copied). */
void log_config_logger(log_config_t *cfg, const char *name, int level, int propagate, log_handler_t **handlers,
		       size_t nhandlers);
/* Puts cfg in force (it lives as long as the process). */
void log_config_install(log_config_t *cfg);
/* Frees a configuration never installed (closing its files). */
void log_config_free(log_config_t *cfg);

#endif
