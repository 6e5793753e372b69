/* metrics.h — the request counters behind /metrics (docs/operations.md):
 * per route template, method and status, a count and a latency histogram,
 * kept by server.c for every request once http_metrics_enable() ran, and
 * written in Prometheus' text exposition format by api/metrics.c.
 *
 * The route label is the route table's pattern (bounded: ~150 values);
 * requests that reach no route share route="unmatched", and methods
 * outside the usual seven are "other", so that no client can grow the
 * series without bound. */
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H

#include "util/sb.h"

struct http_route;

/* Turns the counters on (FRACTAL_ENABLE_METRICS); elsewhere: /metrics has
 * its own listener (FRACTAL_METRICS_ADDRESS), not the main one. */
void http_metrics_enable(int elsewhere);
int http_metrics_enabled(void);
/* 1 when the main listener serves /metrics (enabled, no own listener). */
int http_metrics_on_main(void);
/* Counts one request; route NULL: none matched. */
void http_metrics_observe(const struct http_route *route, const char *method, int status, double seconds);
/* Appends the request series (HELP, TYPE, samples). */
void http_metrics_write(sb_t *out);
/* Requests being served now (server.c's count). */
int http_inflight(void);

#endif
