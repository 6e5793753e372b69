/* timeutil.c — see timeutil.h. */
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#include "util/sb.h"
#include <sys/time.h>
#include <time.h>

int64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void utc_now_iso(char *buf, unsigned long size)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld+00:00",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

void sb_add_json_ts(sb_t *sb, const char *ts)
{
	if (!ts) {
		sb_adds(sb, "null");
		return;
	}
	const char *frac = strstr(ts, ".000000");
	if (frac && (frac[7] == '+' || frac[7] == '-' || frac[7] == 'Z')) {
		sb_addc(sb, '"');
		sb_add(sb, ts, (size_t)(frac - ts));
		sb_adds(sb, frac + 7);
		sb_addc(sb, '"');
	} else {
		sb_add_json_str(sb, ts);
	}
}
