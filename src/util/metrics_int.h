/*
 * metrics_int.h - what the push sinks (metrics_sink.c) need from the
 * registry (metrics.c): the event ring the hot path feeds while a sink is
 * on, the dotted key of a series, and a walk of the gauges. Not an API.
 */
#ifndef COFFER_UTIL_METRICS_INT_H
#define COFFER_UTIL_METRICS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/metrics.h"

/* one counter increment (v = n) or one latency observation (v = ns) */
struct metrics__ev {
	struct metric *m;
	uint64_t v;
};

/* Allocate the ring and start feeding it (on) / stop feeding it (off;
 * the ring stays allocated: the hot path may still be writing). */
int metrics__ring_enable(bool on);
/* Take up to max events (one consumer: the sink's flusher). */
size_t metrics__ring_drain(struct metrics__ev *out, size_t max);
/* Events lost because the ring was full, since start. */
uint64_t metrics__ring_dropped(void);

/* Under the render lock: run the collectors, then fn for every gauge, then
 * fn(NULL) once the walk is over; the names are valid during fn. */
typedef void (*metrics__gauge_fn)(void *ctx, const struct metric *m, double v);
void metrics__with_gauges(metrics__gauge_fn fn, void *ctx);
/* Lock / unlock the render lock around metrics__key calls. */
void metrics__lock(void);
void metrics__unlock(void);

/* The series' dotted key as Vault's push sinks see it: prefix[.host].rest
 * (the host for gauges unless disable_hostname), appended to b. */
void metrics__key(struct buf *b, const struct metric *m);
enum metric_kind metrics__kind(const struct metric *m);
/* label pairs: key, value, ... (2 * *n strings) */
char *const *metrics__labels(const struct metric *m, size_t *n);
/* the host="..." label of enable_hostname_label, or NULL */
const char *metrics__host_label(void);

#endif
