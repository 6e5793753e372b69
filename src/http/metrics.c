/* metrics.c — see metrics.h. One open-addressing table under one mutex:
 * an update is a hash, a probe and a few additions (well under a
 * microsecond), and a scrape copies the table out before writing it. */
#include "http/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

/* upper bounds in seconds; our answers are mostly under a millisecond */
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NB (sizeof(bounds) / sizeof(bounds[0]))

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other" };
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

struct series {
	const char *route;   /* a static pattern, or "unmatched"; NULL: a free slot */
	unsigned method;     /* index in methods */
	int status;
	uint64_t count;
	double sum;
	uint64_t buckets[NB]; /* not cumulative: the scrape adds them up */
};

/* routes x methods x statuses in use stays far below this; past it, new
 * series are dropped (and counted) rather than the table grown */
#define NSLOTS 4096

static atomic_int enabled, elsewhere_;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct series table[NSLOTS];
static uint64_t dropped;

void http_metrics_enable(int elsewhere)
{
	atomic_store(&elsewhere_, elsewhere);
	atomic_store(&enabled, 1);
}

int http_metrics_on_main(void)
{
	return atomic_load(&enabled) && !atomic_load(&elsewhere_);
}

int http_metrics_enabled(void)
{
	return atomic_load(&enabled);
}

static unsigned method_index(const char *m)
{
	for (unsigned i = 0; i + 1 < NMETHODS; i++)
		if (!strcmp(methods[i], m))
			return i;
	return NMETHODS - 1;
}

void http_metrics_observe(const http_route_t *route, const char *method, int status, double seconds)
{
	if (!atomic_load(&enabled))
		return;
	const char *r = route ? route->pattern : "unmatched";
	unsigned m = method_index(method);
	uint64_t h = ((uintptr_t)r * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)m << 32) ^ (uint64_t)status * 0x100000001B3ull;
	size_t b = 0;
	while (b < NB && seconds > bounds[b])
		b++;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < NSLOTS; i++) {
		struct series *s = &table[(h + i) % NSLOTS];
		if (!s->route) {
			s->route = r;
			s->method = m;
			s->status = status;
		} else if (s->route != r || s->method != m || s->status != status) {
			continue;
		}
		s->count++;
		s->sum += seconds;
		if (b < NB)
			s->buckets[b]++;
		pthread_mutex_unlock(&mu);
		return;
	}
	dropped++;
	pthread_mutex_unlock(&mu);
}

static int by_labels(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	int c = strcmp(x->route, y->route);
	if (c)
		return c;
	if (x->method != y->method)
		return x->method < y->method ? -1 : 1;
	return x->status - y->status;
}

static void labels(sb_t *out, const struct series *s)
{
	sb_addf(out, "method=\"%s\",route=\"%s\",status=\"%d\"", methods[s->method], s->route, s->status);
}

void http_metrics_write(sb_t *out)
{
	struct series *copy = xmalloc(sizeof(table));
	size_t n = 0;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < NSLOTS; i++)
		if (table[i].route)
			copy[n++] = table[i];
	uint64_t lost = dropped;
	pthread_mutex_unlock(&mu);
	qsort(copy, n, sizeof(*copy), by_labels);
	sb_adds(out, "# HELP fractal_http_requests_total HTTP requests answered, by route template, method and status.\n"
		     "# TYPE fractal_http_requests_total counter\n");
	for (size_t i = 0; i < n; i++) {
		sb_adds(out, "fractal_http_requests_total{");
		labels(out, &copy[i]);
		sb_addf(out, "} %llu\n", (unsigned long long)copy[i].count);
	}
	sb_adds(out, "# HELP fractal_http_request_duration_seconds Time from a request's headers to its answer, "
		     "by route template, method and status.\n"
		     "# TYPE fractal_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;
		for (size_t b = 0; b <= NB; b++) {
			if (b < NB)
				cum += copy[i].buckets[b];
			sb_adds(out, "fractal_http_request_duration_seconds_bucket{");
			labels(out, &copy[i]);
			if (b < NB)
				sb_addf(out, ",le=\"%g\"} %llu\n", bounds[b], (unsigned long long)cum);
			else
				sb_addf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)copy[i].count);
		}
		sb_adds(out, "fractal_http_request_duration_seconds_sum{");
		labels(out, &copy[i]);
		sb_addf(out, "} %.9f\n", copy[i].sum);
		sb_adds(out, "fractal_http_request_duration_seconds_count{");
		labels(out, &copy[i]);
		sb_addf(out, "} %llu\n", (unsigned long long)copy[i].count);
	}
	sb_addf(out, "# HELP fractal_http_series_dropped_total Requests not counted: the table of series was full.\n"
		     "# TYPE fractal_http_series_dropped_total counter\n"
		     "fractal_http_series_dropped_total %llu\n"
		     "# HELP fractal_http_requests_in_flight Requests being served now.\n"
		     "# TYPE fractal_http_requests_in_flight gauge\n"
		     "fractal_http_requests_in_flight %d\n",
		(unsigned long long)lost, http_inflight());
	free(copy);
}
