/*
 * metrics.c - the metrics registry and its three renderings (metrics.h).
 *
 * DESIGN
 * - A series (struct metric) is a dotted Vault key plus label pairs. It is
 *   found through `table`, an open-addressing hash table of atomic
 *   pointers: readers probe without a lock (acquire loads); a writer
 *   inserts under reg_mu (release store), and nothing is ever removed, so
 *   a pointer read once stays valid for the life of the process.
 * - Counter and histogram values are SHARDS copies, each on its own cache
 *   line; a thread adds to the shard picked for it on first use (relaxed
 *   atomics: a render sums the shards and may see an observation's bucket
 *   before its sum, which Prometheus tolerates). A gauge is one atomic
 *   word holding a double.
 * - Families (one per name) sit in `fams`, kept sorted by Prometheus name,
 *   so a render walks them in order under reg_mu without sorting. A render
 *   runs the collectors first (they may create series), then formats.
 * - Retention (prometheus_retention_time): at each render a series whose
 *   total did not move for longer than the retention is left out, as
 *   Vault's sink expires series not updated within it. Tracking this at
 *   render time keeps the hot path to its one atomic add.
 * Lock order: render_mu -> reg_mu.
 */
#include "util/metrics.h"
#include "util/metrics_int.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util/verr.h"

#define SHARDS 4
#define TABLE_SIZE 8192 /* > 2 * METRICS_MAX_SERIES, a power of two */
#define MAX_COLLECTORS 16
#define NBUCKETS 17 /* finite bounds; slot NBUCKETS is +Inf */
#define HIST_SLOTS (NBUCKETS + 2) /* buckets, +Inf, sum in ns */

/* bucket bounds in ns (rendered in ms) */
static const uint64_t bounds_ns[NBUCKETS] = {
	50000,     100000,     250000,     500000,     1000000,    2500000,
	5000000,   10000000,   25000000,   50000000,   100000000,  250000000,
	500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
/* the same bounds in seconds: the histogram family <name>_seconds */
static const char *const bounds_txt[NBUCKETS + 1] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",  "0.025",
	"0.05",  "0.1",    "0.25",    "0.5",    "1.0",   "2.5",    "5.0",   "10.0",  "+Inf",
};

/*
 * The summary's sliding window (Vault's: the quantiles of the last 10 s, in
 * 5 age slots of 2 s as Prometheus' client does). A slot counts
 * observations in log-linear buckets, QSUB per power of two from 2^QMIN ns
 * (1 us) to 2^QMAX ns (34 s): a bucket is at most 9 % wide, the rank of a
 * quantile is exact and its value interpolated inside one bucket. A slot
 * belongs to the 2 s epoch in `epoch`; the first observation of a new epoch
 * claims it (CAS) and clears it, so the hot path stays one relaxed add and
 * nothing rotates in the background. Observations racing with the clear
 * may be lost from the window (never from the histogram).
 */
#define QSUB 8
#define QMIN 10
#define QMAX 35
#define QBUCKETS (2 + (QMAX - QMIN) * QSUB) /* [0]: < 1 us, last: >= 34 s */
#define QSLOTS 5
#define QSLOT_NS 2000000000ull
struct qslot {
	_Atomic int64_t epoch; /* -1: never used */
	_Atomic uint32_t n[QBUCKETS];
};
static const double quantiles[] = {0.5, 0.9, 0.99};
static const char *const quantiles_txt[] = {"0.5", "0.9", "0.99"};

struct family;

/* the totals of a counter or histogram, summed over the shards */
struct snap {
	uint64_t buckets[NBUCKETS + 1];
	uint64_t count, sum_ns;
};

struct metric {
	uint32_t hash;
	enum metric_kind kind;
	const char *name;      /* dotted key, owned by the family */
	char **labels;         /* key, value, ... (owned) */
	size_t nlabels;        /* pairs */
	char *prom_labels;     /* k="v",k2="v2" escaped; "" without labels */
	char *json_labels;     /* "k":"v",... escaped; "" without labels */
	struct family *fam;
	struct metric *next;   /* in the family, under reg_mu */
	size_t stride;         /* words per shard */
	_Atomic uint64_t *vals; /* SHARDS * stride, counters and histograms */
	struct qslot *win;      /* QSLOTS, histograms: the summary's window */
	_Atomic uint64_t gauge; /* double bits */
	_Atomic int64_t gauge_at; /* seconds (monotonic) of the last set */
	/* render_mu */
	uint64_t last_total;
	int64_t changed_at;
	bool shown;       /* render_text: retained in this render */
	struct snap snap; /* render_text: this render's totals */
};

struct family {
	char *name;       /* dotted key */
	char *head;       /* first dotted component ("vault"), replaced by the prefix */
	char *rest_dot;   /* after the first '.', dotted ("core.handle_request") */
	char *rest_prom;  /* the same, sanitised ("core_handle_request") */
	enum metric_kind kind;
	struct metric *first, *last;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t render_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *_Atomic table[TABLE_SIZE];
static size_t nseries;        /* reg_mu */
static struct family **fams;  /* reg_mu, sorted by rest_prom then name */
static size_t nfams, capfams; /* reg_mu */
static _Atomic unsigned next_shard;
static _Thread_local unsigned tl_shard = SHARDS; /* SHARDS: not picked yet */

struct collector {
	metrics_collect_fn fn;
	void *ctx;
	int id;
};
static struct collector collectors[MAX_COLLECTORS]; /* render_mu */
static int next_collector_id = 1;

/*
 * The push sinks' event ring (statsd, dogstatsd: metrics_sink.c): while
 * sink_on, every counter add and latency observation is also queued here
 * for the sink's flusher thread, which formats and sends them. A bounded
 * multi-producer queue (D. Vyukov's): a producer claims a cell with one
 * CAS on `head` and publishes it by its sequence number; the single
 * consumer takes cells in order. Full: the event is dropped (counted),
 * a request never waits for the sink.
 */
#define RING_SIZE 32768 /* a power of two */
struct ring_cell {
	_Atomic uint64_t seq;
	struct metric *m;
	uint64_t v;
};
static struct ring_cell *ring;        /* allocated once, never freed */
static _Atomic bool sink_on;          /* the hot path's one extra branch */
static _Atomic uint64_t ring_head, ring_dropped;
static uint64_t ring_tail;            /* the consumer's */

static void ring_push(struct metric *m, uint64_t v)
{
	uint64_t pos = atomic_load_explicit(&ring_head, memory_order_relaxed);
	for (;;) {
		struct ring_cell *c = &ring[pos & (RING_SIZE - 1)];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&ring_head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				c->m = m;
				c->v = v;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return;
			}
		} else if (dif < 0) {
			atomic_fetch_add_explicit(&ring_dropped, 1, memory_order_relaxed);
			return;
		} else {
			pos = atomic_load_explicit(&ring_head, memory_order_relaxed);
		}
	}
}

int metrics__ring_enable(bool on)
{
	pthread_mutex_lock(&reg_mu);
	if (on && !ring) {
		ring = calloc(RING_SIZE, sizeof(*ring));
		for (uint64_t i = 0; ring && i < RING_SIZE; i++)
			atomic_init(&ring[i].seq, i);
	}
	bool ok = !on || ring;
	if (ok)
		atomic_store(&sink_on, on);
	pthread_mutex_unlock(&reg_mu);
	return ok ? 0 : -1;
}

size_t metrics__ring_drain(struct metrics__ev *out, size_t max)
{
	size_t n = 0;
	while (ring && n < max) {
		struct ring_cell *c = &ring[ring_tail & (RING_SIZE - 1)];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		if ((int64_t)(seq - (ring_tail + 1)) < 0)
			break; /* empty, or the next producer has not published yet */
		out[n].m = c->m;
		out[n].v = c->v;
		n++;
		atomic_store_explicit(&c->seq, ring_tail + RING_SIZE, memory_order_release);
		ring_tail++;
	}
	return n;
}

uint64_t metrics__ring_dropped(void)
{
	return atomic_load(&ring_dropped);
}

/* render_mu */
static struct {
	int64_t retention_s;
	bool disable_hostname, hostname_label;
	_Atomic int64_t usage_period_s; /* also read by the usage walker */
	char prefix[64];
	char host[256];
} cfg = {.retention_s = 0, .disable_hostname = false, .prefix = "vault"};
static int64_t start_s;

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

uint64_t metrics_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t hash_str(uint32_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	h ^= 0xff; /* separator: ("ab","c") and ("a","bc") differ */
	h *= 16777619u;
	return h;
}

static uint32_t hash_of(const char *name, const char *const *labels)
{
	uint32_t h = hash_str(2166136261u, name);
	for (size_t i = 0; labels && labels[i]; i++)
		h = hash_str(h, labels[i]);
	return h;
}

static bool same(const struct metric *m, const char *name, const char *const *labels)
{
	if (strcmp(m->name, name))
		return false;
	size_t i = 0;
	for (; labels && labels[i]; i++)
		if (i >= 2 * m->nlabels || strcmp(m->labels[i], labels[i]))
			return false;
	return i == 2 * m->nlabels;
}

/* Prometheus: every character outside [a-zA-Z0-9_:] becomes '_' */
static char *sanitize(const char *s, bool label)
{
	char *o = strdup(s);
	if (!o)
		return NULL;
	for (char *p = o; *p; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || (ch == ':' && !label);
		if (!ok)
			*p = '_';
	}
	if (o[0] >= '0' && o[0] <= '9')
		o[0] = '_';
	return o;
}

static void esc_prom(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_str(b, "\\\\");
		else if (*s == '"')
			buf_str(b, "\\\"");
		else if (*s == '\n')
			buf_str(b, "\\n");
		else
			buf_char(b, *s);
	}
}

static void esc_json(struct buf *b, const char *s)
{
	buf_char(b, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\\' || ch == '"') {
			buf_char(b, '\\');
			buf_char(b, (char)ch);
		} else if (ch < 0x20) {
			buf_printf(b, "\\u%04x", ch);
		} else {
			buf_char(b, (char)ch);
		}
	}
	buf_char(b, '"');
}

static struct family *family_find(const char *name)
{
	for (size_t i = 0; i < nfams; i++)
		if (!strcmp(fams[i]->name, name))
			return fams[i];
	return NULL;
}

static void family_free(struct family *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->head);
	free(f->rest_dot);
	free(f->rest_prom);
	free(f);
}

static struct family *family_new(const char *name, enum metric_kind kind)
{
	if (nfams == capfams) {
		size_t nc = capfams ? capfams * 2 : 64;
		struct family **nf = realloc(fams, nc * sizeof(struct family *));
		if (!nf)
			return NULL;
		fams = nf;
		capfams = nc;
	}
	struct family *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	const char *dot = strchr(name, '.');
	f->name = strdup(name);
	f->head = dot ? strndup(name, (size_t)(dot - name)) : strdup("");
	f->rest_dot = strdup(dot ? dot + 1 : name);
	f->rest_prom = f->rest_dot ? sanitize(f->rest_dot, false) : NULL;
	f->kind = kind;
	if (!f->name || !f->head || !f->rest_dot || !f->rest_prom) {
		family_free(f);
		return NULL;
	}
	/* sorted insert: a render walks families in Prometheus-name order */
	size_t at = nfams;
	while (at > 0) {
		int c = strcmp(fams[at - 1]->rest_prom, f->rest_prom);
		if (c < 0 || (c == 0 && strcmp(fams[at - 1]->name, f->name) < 0))
			break;
		at--;
	}
	memmove(fams + at + 1, fams + at, (nfams - at) * sizeof(struct family *));
	fams[at] = f;
	nfams++;
	return f;
}

static void metric_free(struct metric *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->labels && i < 2 * m->nlabels; i++)
		free(m->labels[i]);
	free(m->labels);
	free(m->prom_labels);
	free(m->json_labels);
	free((void *)m->vals);
	free(m->win);
	free(m);
}

static struct metric *metric_new(enum metric_kind kind, struct family *f, uint32_t h,
				 const char *const *labels)
{
	struct metric *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->hash = h;
	m->kind = kind;
	m->name = f->name;
	m->fam = f;
	size_t n = 0;
	while (labels && labels[n] && labels[n + 1])
		n += 2;
	m->nlabels = n / 2;
	m->labels = calloc(n + 1, sizeof(char *));
	struct buf pl, jl;
	buf_init(&pl, 0);
	buf_init(&jl, 0);
	bool ok = m->labels != NULL;
	for (size_t i = 0; ok && i < n; i += 2) {
		m->labels[i] = strdup(labels[i]);
		m->labels[i + 1] = strdup(labels[i + 1]);
		char *k = sanitize(labels[i], true);
		ok = m->labels[i] && m->labels[i + 1] && k;
		if (ok) {
			if (i)
				buf_char(&pl, ',');
			buf_str(&pl, k);
			buf_str(&pl, "=\"");
			esc_prom(&pl, labels[i + 1]);
			buf_char(&pl, '"');
			if (i)
				buf_char(&jl, ',');
			esc_json(&jl, labels[i]);
			buf_char(&jl, ':');
			esc_json(&jl, labels[i + 1]);
		}
		free(k);
	}
	buf_char(&pl, '\0');
	buf_char(&jl, '\0');
	m->prom_labels = buf_take(&pl, NULL);
	m->json_labels = buf_take(&jl, NULL);
	if (kind != METRIC_GAUGE) {
		size_t words = kind == METRIC_HISTOGRAM ? HIST_SLOTS : 1;
		m->stride = (words * 8 + 63) / 64 * 8; /* whole cache lines */
		void *p = NULL;
		if (posix_memalign(&p, 64, SHARDS * m->stride * 8) == 0) {
			memset(p, 0, SHARDS * m->stride * 8);
			m->vals = p;
		}
		ok = ok && m->vals;
	}
	if (kind == METRIC_HISTOGRAM) {
		m->win = calloc(QSLOTS, sizeof(struct qslot));
		for (size_t k = 0; m->win && k < QSLOTS; k++)
			atomic_init(&m->win[k].epoch, -1);
		ok = ok && m->win;
	}
	m->changed_at = mono_s();
	m->gauge_at = m->changed_at;
	if (!ok || !m->prom_labels || !m->json_labels) {
		metric_free(m);
		return NULL;
	}
	return m;
}

struct metric *metrics_get(enum metric_kind kind, const char *name, const char *const *labels)
{
	if (!name)
		return NULL;
	uint32_t h = hash_of(name, labels);
	size_t i = h & (TABLE_SIZE - 1);
	for (;;) {
		struct metric *m = atomic_load_explicit(&table[i], memory_order_acquire);
		if (!m)
			break;
		if (m->hash == h && same(m, name, labels))
			return m->kind == kind ? m : NULL;
		i = (i + 1) & (TABLE_SIZE - 1);
	}
	/* not there: create it under the mutex (someone may have meanwhile) */
	struct metric *res = NULL;
	pthread_mutex_lock(&reg_mu);
	i = h & (TABLE_SIZE - 1);
	for (;;) {
		struct metric *m = atomic_load_explicit(&table[i], memory_order_relaxed);
		if (!m)
			break;
		if (m->hash == h && same(m, name, labels)) {
			res = m->kind == kind ? m : NULL;
			goto out;
		}
		i = (i + 1) & (TABLE_SIZE - 1);
	}
	if (nseries >= METRICS_MAX_SERIES)
		goto out;
	struct family *f = family_find(name);
	if (f && f->kind != kind)
		goto out;
	if (!f && !(f = family_new(name, kind)))
		goto out;
	res = metric_new(kind, f, h, labels);
	if (!res)
		goto out;
	if (f->last)
		f->last->next = res;
	else
		f->first = res;
	f->last = res;
	nseries++;
	atomic_store_explicit(&table[i], res, memory_order_release);
out:
	pthread_mutex_unlock(&reg_mu);
	return res;
}

static _Atomic uint64_t *shard_of(struct metric *m)
{
	unsigned s = tl_shard;
	if (s >= SHARDS)
		s = tl_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARDS;
	return m->vals + (size_t)s * m->stride;
}

void metrics_add(struct metric *m, uint64_t n)
{
	if (!m || m->kind != METRIC_COUNTER)
		return;
	atomic_fetch_add_explicit(shard_of(m), n, memory_order_relaxed);
	if (atomic_load_explicit(&sink_on, memory_order_relaxed))
		ring_push(m, n);
}

static double bits_double(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint64_t double_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

void metrics_set(struct metric *m, double v)
{
	if (!m || m->kind != METRIC_GAUGE)
		return;
	atomic_store_explicit(&m->gauge, double_bits(v), memory_order_relaxed);
	atomic_store_explicit(&m->gauge_at, mono_s(), memory_order_relaxed);
}

void metrics_gauge_add(struct metric *m, double d)
{
	if (!m || m->kind != METRIC_GAUGE)
		return;
	uint64_t old = atomic_load_explicit(&m->gauge, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&m->gauge, &old,
						      double_bits(bits_double(old) + d),
						      memory_order_relaxed, memory_order_relaxed))
		;
	atomic_store_explicit(&m->gauge_at, mono_s(), memory_order_relaxed);
}

/* the window bucket of ns: log-linear, QSUB per octave */
static size_t qbucket(uint64_t ns)
{
	if (ns < (1ull << QMIN))
		return 0;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns);
	if (e >= QMAX)
		return QBUCKETS - 1;
	unsigned sub = (unsigned)(ns >> (e - 3)) & (QSUB - 1); /* QSUB == 8: 3 bits */
	return 1 + (size_t)(e - QMIN) * QSUB + sub;
}

/* lower bound (ns) of window bucket i, 1 <= i < QBUCKETS */
static double qlower(size_t i)
{
	size_t e = (i - 1) / QSUB + QMIN, sub = (i - 1) % QSUB;
	return ldexp(1.0 + (double)sub / QSUB, (int)e);
}

/* the histogram's shard and the summary's window (m is a histogram) */
static void observe_window(struct metric *m, uint64_t ns, uint64_t now)
{
	_Atomic uint64_t *v = shard_of(m);
	size_t b = 0;
	while (b < NBUCKETS && ns > bounds_ns[b])
		b++;
	atomic_fetch_add_explicit(&v[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&v[NBUCKETS + 1], ns, memory_order_relaxed);
	int64_t ep = (int64_t)(now / QSLOT_NS);
	struct qslot *q = &m->win[ep % QSLOTS];
	int64_t qe = atomic_load_explicit(&q->epoch, memory_order_acquire);
	if (qe != ep) {
		if (qe > ep)
			return; /* this thread's clock read is older than the slot's */
		if (atomic_compare_exchange_strong_explicit(&q->epoch, &qe, ep, memory_order_acq_rel,
							    memory_order_acquire)) {
			for (size_t k = 0; k < QBUCKETS; k++)
				atomic_store_explicit(&q->n[k], 0, memory_order_relaxed);
		} else if (qe != ep) {
			return;
		}
	}
	atomic_fetch_add_explicit(&q->n[qbucket(ns)], 1, memory_order_relaxed);
}

static void observe_at(struct metric *m, uint64_t ns, uint64_t now)
{
	if (!m || m->kind != METRIC_HISTOGRAM)
		return;
	observe_window(m, ns, now);
	if (atomic_load_explicit(&sink_on, memory_order_relaxed))
		ring_push(m, ns);
}

void metrics_observe(struct metric *m, uint64_t ns)
{
	observe_at(m, ns, metrics_now());
}

void metrics_observe_since(struct metric *m, uint64_t t0)
{
	uint64_t now = metrics_now();
	observe_at(m, now - t0, now);
}

void metrics_since(const char *name, const char *const *labels, uint64_t t0)
{
	metrics_observe_since(metrics_get(METRIC_HISTOGRAM, name, labels), t0);
}

void metrics_incr(const char *name, const char *const *labels)
{
	metrics_add(metrics_get(METRIC_COUNTER, name, labels), 1);
}

void metrics_gauge(const char *name, const char *const *labels, double v)
{
	metrics_set(metrics_get(METRIC_GAUGE, name, labels), v);
}

int metrics_collector_add(metrics_collect_fn fn, void *ctx)
{
	int id = -1;
	pthread_mutex_lock(&render_mu);
	for (size_t i = 0; i < MAX_COLLECTORS; i++) {
		if (!collectors[i].fn) {
			collectors[i] = (struct collector){fn, ctx, next_collector_id++};
			id = collectors[i].id;
			break;
		}
	}
	pthread_mutex_unlock(&render_mu);
	return id;
}

void metrics_collector_remove(int id)
{
	pthread_mutex_lock(&render_mu);
	for (size_t i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn && collectors[i].id == id)
			memset(&collectors[i], 0, sizeof(collectors[i]));
	pthread_mutex_unlock(&render_mu);
}

static void copy_name_part(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

void metrics_configure(const struct metrics_config *c)
{
	pthread_mutex_lock(&render_mu);
	cfg.retention_s = c->prometheus_retention_s;
	cfg.disable_hostname = c->disable_hostname;
	cfg.hostname_label = c->enable_hostname_label;
	cfg.usage_period_s = c->usage_gauge_period_s;
	copy_name_part(cfg.prefix, sizeof(cfg.prefix), c->prefix && *c->prefix ? c->prefix : "vault");
	if (gethostname(cfg.host, sizeof(cfg.host)) != 0)
		copy_name_part(cfg.host, sizeof(cfg.host), "localhost");
	cfg.host[sizeof(cfg.host) - 1] = '\0';
	pthread_mutex_unlock(&render_mu);
}

int64_t metrics_usage_gauge_period(void)
{
	int64_t p = atomic_load(&cfg.usage_period_s);
	return p > 0 ? p : 600;
}

int metrics_format_parse(const char *format, const char *accept)
{
	if (!format || !*format) {
		/* Vault: no format => JSON; an OpenMetrics/Prometheus Accept
		 * header alone also asks for the text format */
		if (accept && strstr(accept, "application/openmetrics-text"))
			return METRICS_OPENMETRICS;
		return METRICS_JSON;
	}
	if (!strcasecmp(format, "json"))
		return METRICS_JSON;
	if (!strcasecmp(format, "prometheus"))
		return accept && strstr(accept, "application/openmetrics-text") ? METRICS_OPENMETRICS
										  : METRICS_PROMETHEUS;
	return -1;
}

const char *metrics_content_type(enum metrics_format f)
{
	switch (f) {
	case METRICS_PROMETHEUS:
		return "text/plain; version=0.0.4; charset=utf-8";
	case METRICS_OPENMETRICS:
		return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	case METRICS_JSON:
		break;
	}
	return "application/json";
}

/* ---- rendering ---- */

static void put_u64(struct buf *b, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, tmp + i, sizeof(tmp) - i);
}

/* ns as milliseconds with six decimals, without printf */
static void put_ms(struct buf *b, uint64_t ns)
{
	put_u64(b, ns / 1000000);
	char frac[8];
	uint64_t f = ns % 1000000;
	frac[0] = '.';
	for (int i = 6; i >= 1; i--) {
		frac[i] = (char)('0' + f % 10);
		f /= 10;
	}
	buf_add(b, frac, 7);
}

static void put_double(struct buf *b, double d)
{
	if (isnan(d)) {
		buf_str(b, "NaN");
	} else if (isinf(d)) {
		buf_str(b, d > 0 ? "+Inf" : "-Inf");
	} else if (d == (double)(int64_t)d && fabs(d) < 9e15) {
		if (d < 0) {
			buf_char(b, '-');
			put_u64(b, (uint64_t)(-(int64_t)d));
		} else {
			put_u64(b, (uint64_t)d);
		}
	} else {
		buf_printf(b, "%.17g", d);
	}
}

static void snapshot(const struct metric *m, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t sh = 0; sh < SHARDS; sh++) {
		const _Atomic uint64_t *v = m->vals + sh * m->stride;
		if (m->kind == METRIC_COUNTER) {
			s->count += atomic_load_explicit(&v[0], memory_order_relaxed);
			continue;
		}
		for (size_t b = 0; b <= NBUCKETS; b++)
			s->buckets[b] += atomic_load_explicit(&v[b], memory_order_relaxed);
		s->sum_ns += atomic_load_explicit(&v[NBUCKETS + 1], memory_order_relaxed);
	}
	if (m->kind == METRIC_HISTOGRAM)
		for (size_t b = 0; b <= NBUCKETS; b++)
			s->count += s->buckets[b];
}

/* The window's quantiles (ms) at time now (ns); NaN when the last 10 s saw
 * no observation, as Prometheus' summaries (and Vault's) say. */
static void window_quantiles(const struct metric *m, uint64_t now, double out[3])
{
	uint32_t n[QBUCKETS] = {0};
	uint64_t total = 0;
	int64_t ep = (int64_t)(now / QSLOT_NS);
	for (size_t k = 0; k < QSLOTS; k++) {
		int64_t qe = atomic_load_explicit(&m->win[k].epoch, memory_order_acquire);
		if (qe < 0 || qe > ep || ep - qe >= QSLOTS)
			continue;
		for (size_t i = 0; i < QBUCKETS; i++) {
			uint32_t c = atomic_load_explicit(&m->win[k].n[i], memory_order_relaxed);
			n[i] += c;
			total += c;
		}
	}
	for (size_t qi = 0; qi < 3; qi++) {
		if (!total) {
			out[qi] = NAN;
			continue;
		}
		/* the rank-th smallest observation, 1-based, as the nearest rank */
		double rank = ceil(quantiles[qi] * (double)total);
		if (rank < 1)
			rank = 1;
		uint64_t cum = 0;
		size_t i = 0;
		while (i < QBUCKETS - 1 && (double)(cum + n[i]) < rank)
			cum += n[i++];
		double lo = i == 0 ? 0 : qlower(i);
		double hi = i == QBUCKETS - 1 ? lo : qlower(i + 1);
		double frac = n[i] ? (rank - (double)cum) / (double)n[i] : 1;
		out[qi] = (lo + (hi - lo) * frac) / 1e6;
	}
}

/* The name of a family as rendered: prefix[_host]_rest. */
static void put_name(struct buf *b, const struct family *f, bool prom)
{
	buf_str(b, f->head[0] ? cfg.prefix : "");
	if (f->head[0])
		buf_char(b, prom ? '_' : '.');
	if (f->kind == METRIC_GAUGE && !cfg.disable_hostname && !cfg.hostname_label && f->head[0]) {
		if (prom) {
			char *h = sanitize(cfg.host, false);
			buf_str(b, h ? h : "host");
			free(h);
		} else {
			buf_str(b, cfg.host);
		}
		buf_char(b, prom ? '_' : '.');
	}
	buf_str(b, prom ? f->rest_prom : f->rest_dot);
}

/* {labels[,extra]} or nothing */
static void put_labels(struct buf *b, const struct metric *m, const char *extra_k,
		       const char *extra_v)
{
	bool host = cfg.hostname_label;
	if (!m->prom_labels[0] && !extra_k && !host)
		return;
	buf_char(b, '{');
	bool any = false;
	if (host) {
		buf_str(b, "host=\"");
		esc_prom(b, cfg.host);
		buf_char(b, '"');
		any = true;
	}
	if (m->prom_labels[0]) {
		if (any)
			buf_char(b, ',');
		buf_str(b, m->prom_labels);
		any = true;
	}
	if (extra_k) {
		if (any)
			buf_char(b, ',');
		buf_str(b, extra_k);
		buf_str(b, "=\"");
		buf_str(b, extra_v);
		buf_char(b, '"');
	}
	buf_char(b, '}');
}

/* Has the series moved within the retention? (render_mu) */
static bool retained(struct metric *m, const struct snap *s, int64_t now)
{
	if (m->kind == METRIC_GAUGE)
		return now - atomic_load_explicit(&m->gauge_at, memory_order_relaxed) <= cfg.retention_s;
	uint64_t total = s->count + s->sum_ns;
	if (total != m->last_total) {
		m->last_total = total;
		m->changed_at = now;
	}
	return now - m->changed_at <= cfg.retention_s;
}

static void put_header(struct buf *b, const char *name, const char *type)
{
	buf_str(b, "# HELP ");
	buf_str(b, name);
	buf_char(b, ' ');
	buf_str(b, name);
	buf_str(b, "\n# TYPE ");
	buf_str(b, name);
	buf_char(b, ' ');
	buf_str(b, type);
	buf_char(b, '\n');
}

/* name[suffix]{labels[,k="v"]} value-to-come */
static void put_sample(struct buf *b, const char *name, const char *suffix, const struct metric *m,
		       const char *k, const char *v)
{
	buf_str(b, name);
	if (suffix)
		buf_str(b, suffix);
	put_labels(b, m, k, v);
	buf_char(b, ' ');
}

/* ns as seconds with nine decimals */
static void put_s(struct buf *b, uint64_t ns)
{
	put_u64(b, ns / 1000000000u);
	char frac[10];
	uint64_t f = ns % 1000000000u;
	frac[0] = '.';
	for (int i = 9; i >= 1; i--) {
		frac[i] = (char)('0' + f % 10);
		f /= 10;
	}
	buf_add(b, frac, 10);
}

/*
 * A latency is two families: Vault's summary under Vault's name
 * (<name>{quantile="0.5"|"0.9"|"0.99"} over the last 10 s, <name>_sum in ms,
 * <name>_count), which the dashboards built for Vault query, and a
 * histogram <name>_seconds (le buckets in seconds, _sum in seconds,
 * _count) that aggregates across nodes with histogram_quantile. One TYPE
 * per family name; the histogram's names never collide with the summary's.
 */
static void render_latency(struct buf *b, struct family *f, struct buf *name)
{
	uint64_t now = metrics_now();
	bool header = false;
	for (struct metric *m = f->first; m; m = m->next) {
		if (!m->shown)
			continue;
		if (!header) {
			put_header(b, name->p, "summary");
			header = true;
		}
		double q[3];
		window_quantiles(m, now, q);
		for (size_t k = 0; k < 3; k++) {
			put_sample(b, name->p, NULL, m, "quantile", quantiles_txt[k]);
			put_double(b, q[k]);
			buf_char(b, '\n');
		}
		put_sample(b, name->p, "_sum", m, NULL, NULL);
		put_ms(b, m->snap.sum_ns);
		buf_char(b, '\n');
		put_sample(b, name->p, "_count", m, NULL, NULL);
		put_u64(b, m->snap.count);
		buf_char(b, '\n');
	}
	if (!header)
		return;
	name->len--; /* the NUL */
	buf_str(name, "_seconds");
	buf_char(name, '\0');
	put_header(b, name->p, "histogram");
	for (struct metric *m = f->first; m; m = m->next) {
		if (!m->shown)
			continue;
		uint64_t cum = 0;
		for (size_t k = 0; k <= NBUCKETS; k++) {
			cum += m->snap.buckets[k];
			put_sample(b, name->p, "_bucket", m, "le", bounds_txt[k]);
			put_u64(b, cum);
			buf_char(b, '\n');
		}
		put_sample(b, name->p, "_sum", m, NULL, NULL);
		put_s(b, m->snap.sum_ns);
		buf_char(b, '\n');
		put_sample(b, name->p, "_count", m, NULL, NULL);
		put_u64(b, cum);
		buf_char(b, '\n');
	}
}

static void render_text(struct buf *b, bool om)
{
	int64_t now = mono_s();
	struct buf name;
	buf_init(&name, 128);
	for (size_t i = 0; i < nfams; i++) {
		struct family *f = fams[i];
		bool any = false;
		for (struct metric *m = f->first; m; m = m->next) {
			memset(&m->snap, 0, sizeof(m->snap));
			if (m->kind != METRIC_GAUGE)
				snapshot(m, &m->snap);
			m->shown = retained(m, &m->snap, now);
			any = any || m->shown;
		}
		if (!any)
			continue;
		name.len = 0;
		put_name(&name, f, true);
		buf_char(&name, '\0');
		if (f->kind == METRIC_HISTOGRAM) {
			render_latency(b, f, &name);
			continue;
		}
		put_header(b, name.p, f->kind == METRIC_GAUGE ? "gauge" : om ? "unknown" : "counter");
		for (struct metric *m = f->first; m; m = m->next) {
			if (!m->shown)
				continue;
			put_sample(b, name.p, NULL, m, NULL, NULL);
			if (m->kind == METRIC_COUNTER)
				put_u64(b, m->snap.count);
			else
				put_double(b, bits_double(atomic_load_explicit(&m->gauge,
									       memory_order_relaxed)));
			buf_char(b, '\n');
		}
	}
	if (om)
		buf_str(b, "# EOF\n");
	buf_free(&name);
}

static void json_series_head(struct buf *b, const struct family *f, const struct metric *m,
			     bool *first)
{
	if (!*first)
		buf_char(b, ',');
	*first = false;
	buf_str(b, "{\"Name\":\"");
	put_name(b, f, false);
	buf_str(b, "\",");
}

static void json_labels(struct buf *b, const struct metric *m)
{
	buf_str(b, "\"Labels\":{");
	bool any = false;
	if (cfg.hostname_label) {
		buf_str(b, "\"host\":");
		esc_json(b, cfg.host);
		any = true;
	}
	if (m->json_labels[0]) {
		if (any)
			buf_char(b, ',');
		buf_str(b, m->json_labels);
	}
	buf_str(b, "}}");
}

/* Vault's in-memory sink shape. Values are cumulative since start (Vault's
 * are the last 10 s interval); Rate is per second since start. */
static void render_json(struct buf *b)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char ts[64];
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
	double up = (double)(mono_s() - start_s);
	if (up < 1)
		up = 1;
	buf_str(b, "{\"Timestamp\":\"");
	buf_str(b, ts);
	buf_str(b, "\",\"Gauges\":[");
	bool first = true;
	for (size_t i = 0; i < nfams; i++)
		for (struct metric *m = fams[i]->kind == METRIC_GAUGE ? fams[i]->first : NULL; m;
		     m = m->next) {
			json_series_head(b, fams[i], m, &first);
			buf_str(b, "\"Value\":");
			put_double(b, bits_double(atomic_load_explicit(&m->gauge, memory_order_relaxed)));
			buf_char(b, ',');
			json_labels(b, m);
		}
	buf_str(b, "],\"Points\":[],\"Counters\":[");
	for (int pass = 0; pass < 2; pass++) {
		enum metric_kind want = pass ? METRIC_HISTOGRAM : METRIC_COUNTER;
		if (pass)
			buf_str(b, "],\"Samples\":[");
		first = true;
		for (size_t i = 0; i < nfams; i++)
			for (struct metric *m = fams[i]->kind == want ? fams[i]->first : NULL; m;
			     m = m->next) {
				struct snap s;
				snapshot(m, &s);
				double sum = pass ? (double)s.sum_ns / 1e6 : (double)s.count;
				json_series_head(b, fams[i], m, &first);
				buf_str(b, "\"Count\":");
				put_u64(b, s.count);
				buf_str(b, ",\"Rate\":");
				put_double(b, sum / up);
				buf_str(b, ",\"Sum\":");
				put_double(b, sum);
				buf_str(b, ",\"Mean\":");
				put_double(b, s.count ? sum / (double)s.count : 0);
				buf_char(b, ',');
				json_labels(b, m);
			}
	}
	buf_str(b, "]}");
}

/* The process's own gauges (Vault's runtime.* were Go's; these are what a
 * C process has): memory, CPU, threads, descriptors. */
static void runtime_collect(void)
{
	long rss_kb = -1, locked_kb = -1, threads = -1;
	FILE *st = fopen("/proc/self/status", "re");
	if (st) {
		char line[256];
		while (fgets(line, sizeof(line), st)) {
			if (!strncmp(line, "VmRSS:", 6))
				rss_kb = strtol(line + 6, NULL, 10);
			else if (!strncmp(line, "VmLck:", 6))
				locked_kb = strtol(line + 6, NULL, 10);
			else if (!strncmp(line, "Threads:", 8))
				threads = strtol(line + 8, NULL, 10);
		}
		fclose(st);
	}
	if (rss_kb >= 0)
		metrics_gauge("vault.runtime.rss_bytes", NULL, (double)rss_kb * 1024);
	if (locked_kb >= 0)
		metrics_gauge("vault.runtime.locked_bytes", NULL, (double)locked_kb * 1024);
	if (threads >= 0) {
		metrics_gauge("vault.runtime.threads", NULL, (double)threads);
		/* dashboards built for Vault chart goroutines: threads here */
		metrics_gauge("vault.runtime.num_goroutines", NULL, (double)threads);
	}
	struct mallinfo2 mi = mallinfo2();
	metrics_gauge("vault.runtime.alloc_bytes", NULL, (double)(mi.uordblks + mi.hblkhd));
	metrics_gauge("vault.runtime.sys_bytes", NULL, (double)(mi.arena + mi.hblkhd));
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metrics_gauge("vault.runtime.cpu_seconds", NULL,
			      (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
				      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long n = 0;
		struct dirent *e;
		/* readdir_r is deprecated; this DIR is local to the call */
		// cppcheck-suppress readdirCalled
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				n++;
		closedir(d);
		metrics_gauge("vault.runtime.open_fds", NULL, (double)(n - 1)); /* minus d's own */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		metrics_gauge("vault.runtime.max_fds", NULL, (double)rl.rlim_cur);
	metrics_gauge("vault.runtime.uptime_seconds", NULL, (double)(mono_s() - start_s));
}

/* render_mu */
static void run_collectors(void)
{
	runtime_collect();
	for (size_t i = 0; i < MAX_COLLECTORS; i++)
		if (collectors[i].fn)
			collectors[i].fn(collectors[i].ctx);
}

void metrics__lock(void)
{
	pthread_mutex_lock(&render_mu);
}

void metrics__unlock(void)
{
	pthread_mutex_unlock(&render_mu);
}

void metrics__with_gauges(metrics__gauge_fn fn, void *ctx)
{
	pthread_mutex_lock(&render_mu);
	run_collectors();
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nfams; i++)
		for (struct metric *m = fams[i]->kind == METRIC_GAUGE ? fams[i]->first : NULL; m;
		     m = m->next)
			fn(ctx, m, bits_double(atomic_load_explicit(&m->gauge, memory_order_relaxed)));
	pthread_mutex_unlock(&reg_mu);
	fn(ctx, NULL, 0);
	pthread_mutex_unlock(&render_mu);
}

void metrics__key(struct buf *b, const struct metric *m)
{
	put_name(b, m->fam, false);
}

enum metric_kind metrics__kind(const struct metric *m)
{
	return m->kind;
}

char *const *metrics__labels(const struct metric *m, size_t *n)
{
	*n = m->nlabels;
	return m->labels;
}

const char *metrics__host_label(void)
{
	return cfg.hostname_label ? cfg.host : NULL;
}

int metrics_render(struct buf *out, enum metrics_format f, struct verr *err)
{
	pthread_mutex_lock(&render_mu);
	if (f != METRICS_JSON && cfg.retention_s <= 0) {
		pthread_mutex_unlock(&render_mu);
		return verr_set(err, VERR_INVALID, "prometheus is not enabled");
	}
	run_collectors();
	pthread_mutex_lock(&reg_mu);
	if (f == METRICS_JSON)
		render_json(out);
	else
		render_text(out, f == METRICS_OPENMETRICS);
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_unlock(&render_mu);
	if (out->failed)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

void metrics_reset_for_tests(void)
{
	pthread_mutex_lock(&render_mu);
	memset(collectors, 0, sizeof(collectors));
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nfams; i++)
		for (struct metric *m = fams[i]->first; m; m = m->next) {
			if (m->vals)
				for (size_t k = 0; k < SHARDS * m->stride; k++)
					atomic_store(&m->vals[k], 0);
			atomic_store(&m->gauge, 0);
			m->last_total = 0;
			m->changed_at = mono_s();
		}
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_unlock(&render_mu);
}

double metrics_value_for_tests(const char *name, const char *const *labels)
{
	uint32_t h = hash_of(name, labels);
	for (size_t i = h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
		struct metric *m = atomic_load(&table[i]);
		if (!m)
			return -1;
		if (m->hash != h || !same(m, name, labels))
			continue;
		if (m->kind == METRIC_GAUGE)
			return bits_double(atomic_load(&m->gauge));
		struct snap s;
		snapshot(m, &s);
		return (double)s.count;
	}
}

__attribute__((constructor)) static void metrics_init(void)
{
	start_s = mono_s();
	if (gethostname(cfg.host, sizeof(cfg.host)) != 0)
		copy_name_part(cfg.host, sizeof(cfg.host), "localhost");
	cfg.host[sizeof(cfg.host) - 1] = '\0';
}
