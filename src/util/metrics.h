/*
 * metrics.h - the process-wide metrics registry: counters, gauges and
 * latency histograms under Vault's metric names, rendered for
 * `GET sys/metrics` as Prometheus text 0.0.4, OpenMetrics 1.0 or Vault's
 * in-memory JSON.
 *
 * Names are Vault's dotted keys ("vault.core.handle_request",
 * "vault.route.read.secret-"); the Prometheus name is the dotted key with
 * every character outside [a-zA-Z0-9_:] turned into '_' (as Vault's sink
 * does), so existing dashboards and alert rules match. A latency renders
 * as Vault's summary under Vault's name (quantiles of the last 10 s, _sum
 * in ms, _count) and as a histogram <name>_seconds with `le` buckets.
 *
 * Threads: every function may be called from any thread. A series, once
 * created, lives until the process exits (handles stay valid; tests reset
 * values with metrics_reset_for_tests). The hot path (metrics_add,
 * metrics_observe) is lock-free: relaxed atomic adds on the calling
 * thread's shard of the series (4 shards, each on its own cache line), so
 * threads on different cores do not bounce one line. Looking a series up
 * by name is lock-free too (an open-addressing table of atomic pointers);
 * only creating one takes the registry mutex. Rendering takes a render
 * mutex and sums the shards.
 */
#ifndef COFFER_UTIL_METRICS_H
#define COFFER_UTIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct verr;

enum metric_kind { METRIC_COUNTER = 1, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric; /* one series: a name and a set of label values */

/* Series cap: past it metrics_get returns NULL (and every operation on NULL
 * is a no-op), so a label with unbounded values cannot exhaust memory. */
#define METRICS_MAX_SERIES 4096

/*
 * The series `name` with `labels` (NULL or a NULL-terminated list of
 * key, value, key, value ...), created if new. A name keeps the kind it was
 * first created with: asking for another kind returns NULL. Returns NULL
 * past METRICS_MAX_SERIES or out of memory.
 */
struct metric *metrics_get(enum metric_kind kind, const char *name, const char *const *labels);

/* Counter += n. */
void metrics_add(struct metric *m, uint64_t n);
/* Gauge = v; gauge += d. */
void metrics_set(struct metric *m, double v);
void metrics_gauge_add(struct metric *m, double d);
/* Histogram: one observation of ns nanoseconds (rendered in ms). */
void metrics_observe(struct metric *m, uint64_t ns);
/* The same for the time since t0 (metrics_now()), reading the clock once. */
void metrics_observe_since(struct metric *m, uint64_t t0);

/* Monotonic clock in nanoseconds: the start of a timed section. */
uint64_t metrics_now(void);

/*
 * One-line instrumentation for fixed names: the series handle is looked up
 * once per call site and cached in a static.
 *   uint64_t t0 = metrics_now(); ...; METRICS_SINCE("vault.barrier.get", t0);
 *   METRICS_INC("vault.audit.log_request_failure");
 */
#define METRICS__CACHED(kind, name)                                                     \
	({                                                                              \
		static struct metric *_Atomic metrics__m;                               \
		struct metric *metrics__h = metrics__m;                                 \
		if (!metrics__h)                                                        \
			metrics__m = metrics__h = metrics_get(kind, name, NULL);        \
		metrics__h;                                                             \
	})
#define METRICS_SINCE(name, t0) metrics_observe_since(METRICS__CACHED(METRIC_HISTOGRAM, name), t0)
#define METRICS_INC(name) metrics_add(METRICS__CACHED(METRIC_COUNTER, name), 1)
#define METRICS_GAUGE_ADD(name, d) metrics_gauge_add(METRICS__CACHED(METRIC_GAUGE, name), d)

/* The same for names built at run time (looked up on every call). */
void metrics_since(const char *name, const char *const *labels, uint64_t t0);
void metrics_incr(const char *name, const char *const *labels);
void metrics_gauge(const char *name, const char *const *labels, double v);

/*
 * A collector runs at the start of every render (under the render mutex)
 * and sets the gauges that are cheaper to read than to track: seal state,
 * lease counts, the process's RSS. Returns an id for metrics_collector_remove.
 */
typedef void (*metrics_collect_fn)(void *ctx);
int metrics_collector_add(metrics_collect_fn fn, void *ctx);
void metrics_collector_remove(int id);

/* telemetry { } settings (server start-up and SIGHUP). */
struct metrics_config {
	int64_t prometheus_retention_s; /* 0: the Prometheus formats are disabled */
	bool disable_hostname;          /* false: gauges get the host name in their key (Vault) */
	bool enable_hostname_label;     /* a host="..." label on every series */
	const char *prefix;             /* NULL or "": "vault" */
	int64_t usage_gauge_period_s;   /* how often costly gauges are recomputed; 0: 10 min */
};
void metrics_configure(const struct metrics_config *cfg);
/* usage_gauge_period in seconds (collectors of costly gauges) */
int64_t metrics_usage_gauge_period(void);

/*
 * The push sinks (metrics_sink.c): statsd_address and dogstatsd_addr
 * ("host:port"), dogstatsd_tags ("k:v" strings, NULL-terminated, or NULL).
 * Resolves and connects the UDP sockets (VERR_INVALID naming the key on a
 * bad or unresolvable address) and starts the flusher thread; a no-op
 * without an address or when already started. Strings are copied.
 */
struct metrics_sink_config {
	const char *statsd_address;
	const char *dogstatsd_addr;
	const char *const *dogstatsd_tags;
};
int metrics_sinks_start(const struct metrics_sink_config *c, struct verr *err);
/* Flush what is queued, stop the flusher, close the sockets. */
void metrics_sinks_stop(void);

enum metrics_format {
	METRICS_JSON = 1,     /* Vault's in-memory sink: {Timestamp,Gauges,Counters,Samples} */
	METRICS_PROMETHEUS,   /* text/plain; version=0.0.4 */
	METRICS_OPENMETRICS,  /* application/openmetrics-text; version=1.0.0 */
};
/* The format for ?format= and an Accept header (either may be NULL):
 * "prometheus" picks OpenMetrics only when Accept asks for it. -1 for an
 * unknown format. */
int metrics_format_parse(const char *format, const char *accept);
/* The Content-Type of a format. */
const char *metrics_content_type(enum metrics_format f);
/* Render every series into out (appended). VERR_INVALID "prometheus is not
 * enabled" for the Prometheus formats when the retention is 0. */
int metrics_render(struct buf *out, enum metrics_format f, struct verr *err);

/* Tests: zero every value (handles stay valid) and forget collectors. */
void metrics_reset_for_tests(void);
/* Tests: the total of a counter / histogram count, or a gauge's value;
 * -1 if the series does not exist. */
double metrics_value_for_tests(const char *name, const char *const *labels);

#endif
