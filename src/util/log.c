/* log.c — see log.h. */
#include "util/log.h"
#include "util/sb.h"

#include <stdarg.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int threshold = LOG_INFO;

void log_set_level(int level)
{
	threshold = level;
}

int log_enabled(int level)
{
	return level >= threshold;
}

static const char *level_name(int level)
{
	if (level >= LOG_CRITICAL) return "CRITICAL";
	if (level >= LOG_ERROR) return "ERROR";
	if (level >= LOG_WARNING) return "WARNING";
	if (level >= LOG_INFO) return "INFO";
	return "DEBUG";
}

static void vlog(int level, const char *name, const char *fmt, va_list ap)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	sb_t sb;
	sb_init(&sb, 256);
	sb_addf(&sb, "%s,%03ld - %s - %s - ", ts, (long)(tv.tv_usec / 1000), name, level_name(level));
	sb_vaddf(&sb, fmt, ap);
	sb_addc(&sb, '\n');
	ssize_t r = write(STDERR_FILENO, sb.buf, sb.len);
	(void)r;
	sb_release(&sb);
}

void log_msg(int level, const char *name, const char *fmt, ...)
{
	if (level < threshold)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, name, fmt, ap);
	va_end(ap);
}

void log_always(int level, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, name, fmt, ap);
	va_end(ap);
}
