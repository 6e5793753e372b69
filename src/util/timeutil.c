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

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int ts_parse_aware(const char *in, char *out, unsigned long size)
{
	const char *p = in;
	int Y, M, D, h = 0, m = 0, sec = 0, us = 0;
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return *p ? -1 : -2;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m))
		return -1;
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec))
			return -1;
		if (*p == '.' || *p == ',') {
			p++;
			int n = 0;
			while (*p >= '0' && *p <= '9') {
				if (n < 6)
					us = us * 10 + (*p - '0');
				n++;
				p++;
			}
			if (!n)
				return -1;
			for (; n < 6; n++)
				us *= 10;
		}
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om))
			return -1;
		off = sign * (oh * 60 + om);
	} else if (!*p) {
		return -2;
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59)
		return -1;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec };
	time_t t = timegm(&tm) - (time_t)off * 60;
	gmtime_r(&t, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, us);
	return 0;
}
