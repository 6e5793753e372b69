/* log.h — the one logger: levels as Python's (10 debug, 20 info, 30 warning,
 * 40 error, 50 critical), threshold from FRACTAL_LOGGING_LEVEL, lines to
 * stderr as "YYYY-mm-dd HH:MM:SS,mmm - name - LEVEL - message". One write(2)
 * per line so that lines from worker threads never interleave. */
#ifndef LOG_H
#define LOG_H

enum { LOG_DEBUG = 10, LOG_INFO = 20, LOG_WARNING = 30, LOG_ERROR = 40, LOG_CRITICAL = 50 };

void log_set_level(int level);
int log_enabled(int level);
void log_msg(int level, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs whatever the threshold (DB_ECHO asked for its lines explicitly). */
void log_always(int level, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, "fractalctl", __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, "fractalctl", __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, "fractalctl", __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, "fractalctl", __VA_ARGS__)

#endif
