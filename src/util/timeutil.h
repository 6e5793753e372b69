/* timeutil.h — time helpers. Timestamps are stored and served as ISO 8601
 * UTC with microseconds and an explicit offset: "2026-11-26T17:00:00.123456+00:00"
 * (what upstream's serializers emit with datetime.isoformat()). */
#ifndef TIMEUTIL_H
#define TIMEUTIL_H

#include <stdint.h>

/* Monotonic clock in microseconds, for durations. */
int64_t mono_usec(void);
/* Writes the current UTC time in the form above; buf needs 40 bytes. */
void utc_now_iso(char *buf, unsigned long size);

struct sb;
/* Appends a canonical timestamp as a JSON string the way upstream's
 * serializers print it (datetime.isoformat(): no fraction when it is zero). */
void sb_add_json_ts(struct sb *sb, const char *ts);

/* Parses an ISO 8601 datetime with a time zone ("...Z", "...+02:00") into
 * the canonical UTC form (40 bytes). Returns 0, -1 when it is not a
 * datetime, -2 when it has no time zone (pydantic's AwareDatetime). */
int ts_parse_aware(const char *in, char *out, unsigned long size);

#endif
