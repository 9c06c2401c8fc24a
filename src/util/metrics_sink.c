/*
 * metrics_sink.c - the push sinks of telemetry { }: statsd_address and
 * dogstatsd_addr (+ dogstatsd_tags), as Vault's go-metrics sinks send them.
 *
 * DESIGN
 * - The hot path never touches a socket: while a sink is on, each counter
 *   add and latency observation is queued in the registry's bounded ring
 *   (metrics.c, one CAS; dropped when full). One flusher thread wakes
 *   every FLUSH_MS, drains the ring and formats each event once per sink;
 *   every GAUGE_EVERY wake-ups it runs the collectors (seal state, runtime,
 *   token counts) and sends every gauge, as Vault emits its gauges each
 *   second.
 * - Lines are Vault's: the dotted key (prefix, host for gauges unless
 *   disable_hostname, the rest), `:value|ms` for latencies in ms, `|c`
 *   for counters, `|g` for gauges. statsd has no labels: their values are
 *   appended to the key with dots (go-metrics' flattenKeyLabels); dogstatsd
 *   sends them as tags `|#k:v,...` after dogstatsd_tags. ':' ' ' '|' ','
 *   and control characters in a key or tag become '_' so a label cannot
 *   break the line format.
 * - Lines are batched into datagrams of at most MAX_DGRAM bytes (1432: an
 *   Ethernet MTU less IP/UDP headers, dogstatsd's default), one line never
 *   split; a send error (no listener: ECONNREFUSED) loses that datagram and
 *   nothing else.
 * Threads: metrics_sinks_start/stop from the server's main thread; the
 * flusher is the ring's only consumer.
 */
#include "util/metrics.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/metrics_int.h"
#include "util/verr.h"

#define FLUSH_MS 100
#define GAUGE_EVERY 10 /* wake-ups: gauges every second */
#define MAX_DGRAM 1432
#define DRAIN_BATCH 1024

struct sink {
	int fd;
	bool dog;
	char *tags;       /* dogstatsd_tags joined with ',' (sanitised); "" if none */
	struct buf dgram; /* the datagram being filled */
	struct buf line, key; /* scratch */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool running, stop; /* mu */
	struct sink sinks[2];
	size_t n;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* append s with every character that would break a statsd line as '_'
 * (copied whole, then fixed in place: this runs for every event) */
static void put_clean(struct buf *b, const char *s, bool tag)
{
	size_t at = b->len, n = strlen(s);
	buf_add(b, s, n);
	if (b->failed)
		return;
	for (char *p = b->p + at, *e = p + n; p < e; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f || ch == '|' || ch == ',' || ch == '#' ||
		    (!tag && (ch == ':' || ch == ' ')))
			*p = '_';
	}
}

/* a value without exponent or trailing zeros: "1.25", "3", "0.000512" */
static void put_num(struct buf *b, double v)
{
	if (!isfinite(v))
		v = 0;
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), "%.6f", v);
	if (n <= 0 || (size_t)n >= sizeof(tmp))
		return;
	while (n > 1 && tmp[n - 1] == '0')
		n--;
	if (tmp[n - 1] == '.')
		n--;
	buf_add(b, tmp, (size_t)n);
}

/* v / 10^scale the same way, in integers (the per-event path: no printf);
 * scale 0 prints an integer, 6 turns ns into ms */
static void put_fixed(struct buf *b, uint64_t v, int scale)
{
	char tmp[32];
	size_t i = sizeof(tmp);
	uint64_t frac = 0, div = 1;
	for (int k = 0; k < scale; k++)
		div *= 10;
	frac = v % div;
	v /= div;
	int digits = scale;
	while (digits > 0 && frac % 10 == 0) { /* trailing zeros */
		frac /= 10;
		digits--;
	}
	for (int k = 0; k < digits; k++) {
		tmp[--i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	if (digits)
		tmp[--i] = '.';
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, tmp + i, sizeof(tmp) - i);
}

static void sink_send(struct sink *s)
{
	if (!s->dgram.len || s->dgram.failed) {
		s->dgram.len = 0;
		s->dgram.failed = false;
		return;
	}
	/* a lost datagram is the statsd contract; never wait for the peer */
	ssize_t w = send(s->fd, s->dgram.p, s->dgram.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)w;
	s->dgram.len = 0;
}

/* one line for metric m (key, labels) with value v (a gauge's) or iv
 * (events: ns for "ms", a count for "c") of type `type` */
static void sink_line(struct sink *s, const struct metric *m, double v, uint64_t iv,
		      const char *type)
{
	struct buf *l = &s->line;
	l->len = 0;
	l->failed = false;
	s->key.len = 0;
	s->key.failed = false;
	metrics__key(&s->key, m);
	buf_char(&s->key, '\0');
	put_clean(l, s->key.failed ? "" : s->key.p, false);
	size_t nl = 0;
	char *const *labels = metrics__labels(m, &nl);
	const char *host = metrics__host_label();
	if (!s->dog) {
		if (host) {
			buf_char(l, '.');
			put_clean(l, host, false);
		}
		for (size_t i = 0; i < nl; i++) {
			buf_char(l, '.');
			put_clean(l, labels[2 * i + 1], false);
		}
	}
	buf_char(l, ':');
	if (type[0] == 'g')
		put_num(l, v);
	else
		put_fixed(l, iv, type[0] == 'm' ? 6 : 0);
	buf_char(l, '|');
	buf_str(l, type);
	if (s->dog && (s->tags[0] || host || nl)) {
		buf_str(l, "|#");
		bool any = false;
		if (s->tags[0]) {
			buf_str(l, s->tags);
			any = true;
		}
		if (host) {
			buf_str(l, any ? ",host:" : "host:");
			put_clean(l, host, true);
			any = true;
		}
		for (size_t i = 0; i < nl; i++) {
			if (any)
				buf_char(l, ',');
			put_clean(l, labels[2 * i], true);
			buf_char(l, ':');
			put_clean(l, labels[2 * i + 1], true);
			any = true;
		}
	}
	if (l->failed || l->len > MAX_DGRAM)
		return; /* one line per datagram at most: never split */
	if (s->dgram.len + 1 + l->len > MAX_DGRAM)
		sink_send(s);
	if (s->dgram.len)
		buf_char(&s->dgram, '\n');
	buf_add(&s->dgram, l->p, l->len);
}

static void event_lines(const struct metrics__ev *e)
{
	bool timer = metrics__kind(e->m) == METRIC_HISTOGRAM;
	for (size_t i = 0; i < S.n; i++)
		sink_line(&S.sinks[i], e->m, 0, e->v, timer ? "ms" : "c");
}

static void gauge_line(void *ctx, const struct metric *m, double v)
{
	(void)ctx;
	for (size_t i = 0; m && i < S.n; i++)
		sink_line(&S.sinks[i], m, v, 0, "g");
}

static void *flusher(void *arg)
{
	(void)arg;
	static struct metrics__ev evs[DRAIN_BATCH];
	unsigned tick = 0;
	pthread_mutex_lock(&S.mu);
	while (!S.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += FLUSH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&S.cv, &S.mu, &ts);
		bool last = S.stop;
		pthread_mutex_unlock(&S.mu);
		metrics__lock(); /* the keys read the telemetry settings */
		size_t n;
		while ((n = metrics__ring_drain(evs, DRAIN_BATCH)) > 0)
			for (size_t i = 0; i < n; i++)
				event_lines(&evs[i]);
		metrics__unlock();
		if (++tick % GAUGE_EVERY == 0 || last)
			metrics__with_gauges(gauge_line, NULL);
		for (size_t i = 0; i < S.n; i++)
			sink_send(&S.sinks[i]);
		pthread_mutex_lock(&S.mu);
	}
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

/* a UDP socket connected to "host:port" ("[v6]:port") */
static int sink_open(const char *key, const char *addr, int *out, struct verr *err)
{
	char host[256];
	const char *colon;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof(host))
			return verr_set(err, VERR_INVALID, "telemetry: %s \"%.128s\": expected host:port",
					key, addr);
		snprintf(host, sizeof(host), "%.*s", (int)(rb - addr - 1), addr + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
			return verr_set(err, VERR_INVALID, "telemetry: %s \"%.128s\": expected host:port",
					key, addr);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	}
	const char *port = colon + 1;
	if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
		return verr_set(err, VERR_INVALID, "telemetry: %s \"%.128s\": bad port", key, addr);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, port, &hints, &res);
	if (g)
		return verr_set(err, VERR_INVALID, "telemetry: %s \"%.128s\": %s", key, addr,
				gai_strerror(g));
	int fd = -1;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return verr_set(err, VERR_INVALID, "telemetry: %s \"%.128s\": %s", key, addr,
				strerror(errno));
	*out = fd;
	return 0;
}

static void sink_close(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->tags);
	s->tags = NULL;
	buf_free(&s->dgram);
	buf_free(&s->line);
	buf_free(&s->key);
}

static int sink_add(const char *key, const char *addr, bool dog, const char *const *tags,
		    struct verr *err)
{
	struct sink *s = &S.sinks[S.n];
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->dog = dog;
	buf_init(&s->dgram, MAX_DGRAM + 1);
	buf_init(&s->line, 256);
	buf_init(&s->key, 128);
	struct buf t;
	buf_init(&t, 64);
	for (size_t i = 0; dog && tags && tags[i]; i++) {
		if (i)
			buf_char(&t, ',');
		put_clean(&t, tags[i], true);
	}
	buf_char(&t, '\0');
	s->tags = buf_take(&t, NULL);
	int rc = s->tags ? sink_open(key, addr, &s->fd, err)
			 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		sink_close(s);
		return rc;
	}
	S.n++;
	return 0;
}

int metrics_sinks_start(const struct metrics_sink_config *c, struct verr *err)
{
	if (S.running || (!c->statsd_address && !c->dogstatsd_addr))
		return 0;
	int rc = 0;
	S.n = 0;
	if (c->statsd_address)
		rc = sink_add("statsd_address", c->statsd_address, false, NULL, err);
	if (!rc && c->dogstatsd_addr)
		rc = sink_add("dogstatsd_addr", c->dogstatsd_addr, true, c->dogstatsd_tags, err);
	if (!rc && metrics__ring_enable(true))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc) {
		S.stop = false;
		if (pthread_create(&S.th, NULL, flusher, NULL) != 0) {
			metrics__ring_enable(false);
			rc = verr_set(err, VERR_INTERNAL, "cannot start the telemetry flusher");
		}
	}
	if (rc) {
		for (size_t i = 0; i < S.n; i++)
			sink_close(&S.sinks[i]);
		S.n = 0;
		return rc;
	}
	S.running = true;
	return 0;
}

void metrics_sinks_stop(void)
{
	if (!S.running)
		return;
	metrics__ring_enable(false);
	pthread_mutex_lock(&S.mu);
	S.stop = true;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
	pthread_join(S.th, NULL); /* its last pass flushes what was queued */
	for (size_t i = 0; i < S.n; i++)
		sink_close(&S.sinks[i]);
	S.n = 0;
	S.running = false;
}
