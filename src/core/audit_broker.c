/*
 * audit_broker.c - the audit broker (see audit_broker.h for the contract).
 *
 * DESIGN
 * Devices. `struct audit_dev` is one enabled device: its table row, the
 * type's ops, the device instance (`impl`, NULL while it cannot be opened),
 * its keys in secmem, and a writer thread with a queue. References: the
 * table holds one, the writer thread one, and every logging call one while
 * it uses the device; the last release frees it. So disabling a device
 * never waits for a write that hangs.
 *
 * Locks. `b->lock` (rwlock) guards the device array: logging takes it for
 * reading only to copy the array and take references. `b->admin`
 * serialises enable/disable (and their storage writes). Each device has
 * `d->mu`, held only to queue, dequeue and acknowledge: formatting and HMAC
 * run on the request threads with no lock, and the write itself runs in
 * the writer role with no lock. Lock order: admin -> lock -> d->mu.
 *
 * The writer role. One thread at a time holds a device's writer role
 * (d->writing, under d->mu); only the holder touches the chain state (prev,
 * seq, the failure record), the batch buffer and the MAC context, and calls
 * log/kept/reopen/tail. The holder takes the whole queue as one batch,
 * appends `"seq":N` and `"chain":"<hex>"` to each JSON line, writes the
 * batch with one ops->log, and acknowledges every item.
 *
 * Group commit. For a device whose writes_inline says so (a file), a
 * request thread that queues its line while nobody holds the role takes it
 * and writes the queue itself: an uncontended entry costs no hand-off and
 * no sleep. Lines queued while the holder writes form the next batch; when
 * the holder is done it passes the role to the first of them (state LEAD,
 * set under d->mu) and wakes that waiter only, which then writes its batch
 * and passes the role on. So each waiter is woken once (LEAD or DONE), one
 * write and one hand-off serve a whole batch, and the response of a request
 * is still released only after its entries are written. Other devices
 * (socket, syslog, stdout: a peer or a pipe may stall without bound) are
 * written by the device's writer thread, as are reopen requests (a holder
 * seeing one hands the role to the writer thread), and whatever is queued
 * when the role is released with nobody to pass it to. Before this, every
 * entry went to the writer thread and back: two sleeps and two wake-ups
 * per audited request, about 40 % of the server's CPU in context switches.
 *
 * Acknowledgements. Each item's `state` is also its waiter's futex word:
 * the holder stores ITEM_DONE (release, after `result`) and wakes exactly
 * that one waiter, with no lock held, and only if it is asleep (ITEM_SLEEPER).
 * An item has two references, the waiter's and the queue's (the holder's
 * once it takes the batch); the last release frees it. `d->done` is only for
 * the SIGHUP reopen handshake.
 *
 * Failed writes. If a batch fails, prev and seq roll back to the last line
 * that stays in the log. A file device truncates what a failed write
 * appended (disk full mid-line), so the log ends with a complete line; if
 * bytes stay behind (ops->kept), the next write first terminates the torn
 * line. Either way the next batch starts with an entry of type
 * AUDIT_FAILURE_TYPE, chained like any other, that records the failed
 * writes and, for bytes left behind, the torn lines' count, length and
 * SHA-256, so `coffer audit verify` can tell a torn write recorded by the
 * server from tampering.
 *
 * Bounded waits. A logging call waits for its acknowledgement until the
 * device's timeout (socket write_timeout, 2 s otherwise). On timeout, under
 * d->mu, a still queued item is withdrawn (never written); an item being
 * written is abandoned (the waiter drops its reference and fails, the
 * writer frees it); an item given the role (LEAD) writes. A request thread
 * that holds the role of a file device whose disk stops answering waits in
 * write() for the disk; every other request is bounded as above. The QUEUED -> WRITING change happens only under d->mu,
 * so the two cases cannot be confused. While a write has been in progress
 * for longer than the timeout the device is "stuck" and new entries fail
 * at once rather than queueing behind it.
 *
 * Chain. line_i = entry JSON with `,"seq":N,"chain":"<hex>"` as the last
 * members, chain = HMAC-SHA256(chain key, chain_{i-1} || line without the
 * chain member) (docs/cli.md). On start and after a reopen the writer reads
 * the tail of the log (ops->tail) and resumes from its last chain value and
 * seq; a fresh empty file restarts the chain from "" (seq continues). If a
 * batch fails, prev and seq roll back to their values before it.
 */
#include "core/audit_broker.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "audit/audit.h"
#include "logical/logical.h"
#include "util/hmac256.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/timefmt.h"

#define KEY_LEN 32
#define KEYS_LEN (2 * KEY_LEN)
#define TABLE_KEY "core/audit"
#define KEYS_PREFIX "core/audit-keys/"
#define TAIL_BYTES 512

/* ITEM_LEAD: the writer role passed to this item's waiter (group commit) */
enum item_state { ITEM_QUEUED, ITEM_WRITING, ITEM_DONE, ITEM_LEAD };
/* or'ed into state by a waiter about to sleep on it: only then does the
 * writer make the futex wake system call */
#define ITEM_SLEEPER 4u
#define ITEM_STATE(s) ((s) & 3u)

/* One queued line. `next` is guarded by d->mu; `state` (enum item_state)
 * changes QUEUED -> WRITING and QUEUED -> LEAD under d->mu, and WRITING ->
 * DONE on the role holder with no lock (release; `result` is written
 * before it). */
struct audit_item {
	struct audit_item *next;
	char *line;       /* one line, or two: a request entry and its response */
	size_t len, len1; /* len1: length of the first of two lines (0: one) */
	_Atomic uint32_t state; /* also the waiter's futex word */
	_Atomic int refs;       /* the waiter's and the queue's/writer's */
	int result;
};

struct obuf {
	char *p;
	size_t len, cap;
	bool oom;
};

struct audit_dev {
	/* immutable after creation */
	char *path, *type, *description;
	json_t *options;
	bool local;
	char uuid[37];
	const struct audit_device_ops *ops; /* NULL: type no longer registered */
	uint8_t *keys;                      /* secmem: hmac key || chain key */
	bool allow_prefixing;
	int64_t timeout_ms;

	void *_Atomic impl;
	_Atomic int refs;

	/* guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct audit_item *head, *tail;
	bool stop, reopen_req;
	bool writing;                     /* the writer role is held */
	bool inline_ok;                   /* request threads may hold it */
	unsigned reopen_gen, reopen_done; /* SIGHUP handshake */
	int64_t busy_since;               /* monotonic ms; 0 = idle */

	/* writer role only */
	struct hmac256 mac; /* the chain key's schedule (secmem) */
	struct obuf ob;   /* the batch being written */
	char prev[65];
	uint64_t seq;
	bool need_newline;
	/* failed writes not yet recorded in the chain (see "Failed writes") */
	unsigned fail_writes;
	char fail_err[128];
	EVP_MD_CTX *torn_md;         /* SHA-256 of the torn bytes so far */
	uint64_t torn_len, torn_lines;
};

struct audit_broker {
	struct storage_view view;
	const struct audit_device_ops *const *types;
	bool allow_prefixing;
	pthread_mutex_t admin;
	pthread_rwlock_t lock;
	struct audit_dev **devs;
	size_t ndevs;
};

/* Live writer threads of every broker: audit_broker_free waits (bounded)
 * for them so a seal flushes what is queued. */
static pthread_mutex_t g_live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_live_cv = PTHREAD_COND_INITIALIZER;
static int g_live;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono_deadline(int64_t ms_abs)
{
	struct timespec ts = {.tv_sec = ms_abs / 1000, .tv_nsec = (ms_abs % 1000) * 1000000};
	return ts;
}

/* Sleep while *word == val, until the absolute CLOCK_MONOTONIC deadline.
 * Returns false on timeout (spurious returns are fine: callers re-check). */
static bool futex_wait_until(_Atomic uint32_t *word, uint32_t val, const struct timespec *abs)
{
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val,
			 abs, NULL, FUTEX_BITSET_MATCH_ANY);
	return !(r == -1 && errno == ETIMEDOUT);
}

static void futex_wake_one(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

static void item_release(struct audit_item *it)
{
	if (it && atomic_fetch_sub(&it->refs, 1) == 1) {
		free(it->line);
		free(it);
	}
}

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* ---- devices ---- */

static void dev_free(struct audit_dev *d)
{
	void *impl = atomic_load(&d->impl);
	if (impl && d->ops)
		d->ops->free(impl);
	for (struct audit_item *it = d->head, *n; it; it = n) {
		n = it->next;
		free(it->line);
		free(it);
	}
	if (d->keys)
		secmem_free(d->keys, KEYS_LEN);
	hmac256_free(&d->mac);
	EVP_MD_CTX_free(d->torn_md);
	if (d->ob.p) {
		OPENSSL_cleanse(d->ob.p, d->ob.cap);
		free(d->ob.p);
	}
	free(d->path);
	free(d->type);
	free(d->description);
	json_decref(d->options);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->done);
	free(d);
}

static void dev_release(struct audit_dev *d)
{
	if (d && atomic_fetch_sub(&d->refs, 1) == 1)
		dev_free(d);
}

static int dev_open_impl(struct audit_dev *d, struct verr *err)
{
	if (!d->ops)
		return verr_set(err, VERR_INTERNAL, "audit device type \"%s\" is not available", d->type);
	struct audit_device_env env = {
		.hmac_key = d->keys,
		.hmac_key_len = KEY_LEN,
		.allow_prefixing = d->allow_prefixing,
	};
	void *impl = NULL;
	int rc = d->ops->new(&impl, d->options, &env, err);
	if (rc)
		return rc;
	d->timeout_ms = d->ops->timeout_ms ? d->ops->timeout_ms(impl) : 2000;
	if (d->timeout_ms <= 0)
		d->timeout_ms = 2000;
	bool inl = d->ops->writes_inline && d->ops->writes_inline(impl);
	pthread_mutex_lock(&d->mu);
	d->inline_ok = inl;
	pthread_mutex_unlock(&d->mu);
	atomic_store(&d->impl, impl);
	return 0;
}

bool audit_broker__parse_tail(const char *buf, size_t len, char prev[65], uint64_t *seq,
			      bool *need_newline)
{
	static const char tag[] = ",\"chain\":\"";
	const size_t tl = sizeof(tag) - 1;
	prev[0] = '\0';
	*need_newline = len > 0 && buf[len - 1] != '\n';
	if (*need_newline)
		return false; /* a torn last line: the chain starts again */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len < tl + 64 + 2)
		return false;
	const char *t = buf + len - 2 - 64 - tl;
	if (memcmp(t, tag, tl) != 0 || buf[len - 2] != '"' || buf[len - 1] != '}')
		return false;
	for (int i = 0; i < 64; i++) {
		char c = t[tl + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	memcpy(prev, t + tl, 64);
	prev[64] = '\0';
	/* ,"seq":N just before the chain member */
	const char *p = t;
	while (p > buf && p[-1] >= '0' && p[-1] <= '9')
		p--;
	static const char stag[] = ",\"seq\":";
	const size_t sl = sizeof(stag) - 1;
	if (p < t && (size_t)(p - buf) >= sl && !memcmp(p - sl, stag, sl)) {
		uint64_t v = 0;
		for (const char *q = p; q < t; q++)
			v = v * 10 + (uint64_t)(*q - '0');
		*seq = v;
	}
	return true;
}

/* Writer thread: read the end of the log to continue its chain. */
static void dev_resume(struct audit_dev *d)
{
	void *impl = atomic_load(&d->impl);
	if (!impl || !d->ops->tail)
		return;
	char buf[TAIL_BYTES];
	size_t n = d->ops->tail(impl, buf, sizeof(buf));
	uint64_t seq = d->seq;
	bool nl = false;
	audit_broker__parse_tail(buf, n, d->prev, &seq, &nl);
	d->seq = seq;
	d->need_newline = nl;
}

/* chain = HMAC-SHA256(chain key, prev || line). */
static void chain_mac(char hex[65], const struct hmac256 *key, const char *prev, const char *s,
		      size_t n)
{
	uint8_t out[HMAC256_LEN];
	hmac256_two(key, prev, strlen(prev), s, n, out);
	hmac256_hex(out, hex);
	secmem_wipe(out, sizeof(out));
}

static void ob_add(struct obuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Role holder: append one JSON line with its seq and chain members to ob,
 * advancing prev/seq; other formats (jsonx) as they are. */
static void ob_add_line(struct audit_dev *d, struct obuf *ob, const char *line, size_t len)
{
	if (len == 0 || line[len - 1] != '}') {
		ob_add(ob, line, len);
		ob_add(ob, "\n", 1);
		return;
	}
	/* ,"seq":N} without snprintf (one per line) */
	char num[40], *q = num + sizeof(num);
	uint64_t v = d->seq + 1;
	*--q = '}';
	do
		*--q = (char)('0' + v % 10);
	while (v /= 10);
	q -= 7;
	memcpy(q, ",\"seq\":", 7);
	size_t nl = (size_t)(num + sizeof(num) - q);
	size_t start = ob->len;
	ob_add(ob, line, len - 1);
	ob_add(ob, q, nl);
	if (ob->oom)
		return;
	char hex[65];
	chain_mac(hex, &d->mac, d->prev, ob->p + start, ob->len - start);
	ob->len--; /* drop the '}' and append the chain member */
	ob_add(ob, ",\"chain\":\"", 10);
	ob_add(ob, hex, 64);
	ob_add(ob, "\"}\n", 3);
	memcpy(d->prev, hex, sizeof(hex));
	d->seq++;
}

/* Role holder: the entry that records the failed writes since the last
 * line that reached the log (docs/audit.md, "Failed writes"), formatted by
 * the device (its prefix, its format). NULL if there is nothing to record
 * or it cannot be built. */
static char *failure_line(struct audit_dev *d, void *impl, size_t *len)
{
	if (!d->fail_writes)
		return NULL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char tbuf[TIMEFMT_MAX];
	const char *t = timefmt_rfc3339(tbuf, (int64_t)ts.tv_sec, ts.tv_nsec, TIMEFMT_NANO9);
	json_t *e = json_pack("{s:s,s:s,s:I,s:s}", "time", t ? t : "", "type", AUDIT_FAILURE_TYPE,
			      "failed_writes", (json_int_t)d->fail_writes, "error", d->fail_err);
	if (e && d->torn_len) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdl = 0;
		char hex[65];
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		if (!c || EVP_MD_CTX_copy_ex(c, d->torn_md) != 1 || EVP_DigestFinal_ex(c, md, &mdl) != 1)
			mdl = 0;
		EVP_MD_CTX_free(c);
		for (unsigned int i = 0; i < 32; i++) {
			unsigned char b = i < mdl ? md[i] : 0;
			hex[2 * i] = "0123456789abcdef"[b >> 4];
			hex[2 * i + 1] = "0123456789abcdef"[b & 15];
		}
		hex[64] = '\0';
		json_object_set_new(e, "torn",
				    json_pack("{s:I,s:I,s:s}", "lines", (json_int_t)d->torn_lines,
					      "bytes", (json_int_t)d->torn_len, "sha256", hex));
	}
	char *line = NULL;
	struct verr fe = {0};
	if (!e || d->ops->format(&line, len, impl, e, &fe) != 0)
		line = NULL;
	json_decref(e);
	return line;
}

/* Role holder: add bytes left in the log by a failed write to the torn
 * region (the lines the next failure entry accounts for). */
static void torn_add(struct audit_dev *d, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (!d->torn_md && (d->torn_md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(d->torn_md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(d->torn_md);
		d->torn_md = NULL;
	}
	if (d->torn_len == 0) {
		if (d->torn_md)
			EVP_DigestInit_ex(d->torn_md, EVP_sha256(), NULL);
		d->torn_lines = 1;
	}
	if (d->torn_md)
		EVP_DigestUpdate(d->torn_md, p, n);
	for (size_t i = 0; i < n; i++)
		d->torn_lines += p[i] == '\n';
	d->torn_len += n;
}

/* Role holder: a failed write of ob, of which the device kept `kept`
 * leading bytes. The chain state goes back to the last complete line that
 * stays in the log; a partial line left behind becomes (part of) the torn
 * region, terminated by the next write, and the failure is recorded by the
 * next failure entry. marker_end: end of the failure entry in ob (0: none
 * in this batch); nl0: 1 if ob starts with a terminating newline. */
static void dev_write_failed(struct audit_dev *d, const struct obuf *ob, size_t kept,
			     size_t marker_end, size_t nl0, const char prev0[65], uint64_t seq0,
			     const char *msg)
{
	memcpy(d->prev, prev0, 65);
	d->seq = seq0;
	if (kept > ob->len)
		kept = ob->len;
	if (kept > 0 && marker_end && kept < marker_end) {
		/* the failure entry itself is torn: the region grows */
		size_t from = d->torn_len ? 0 : nl0;
		torn_add(d, ob->p + from, kept - from);
		d->need_newline = true;
	} else if (kept > 0) {
		if (marker_end) {
			/* the failure entry landed: what it recorded is done */
			d->fail_writes = 0;
			d->torn_len = 0;
			d->torn_lines = 0;
		}
		size_t c = kept;
		while (c > 0 && ob->p[c - 1] != '\n')
			c--;
		if (c > nl0) {
			char prev[65];
			uint64_t seq = d->seq;
			bool nl = false;
			if (audit_broker__parse_tail(ob->p, c, prev, &seq, &nl)) {
				memcpy(d->prev, prev, 65);
				d->seq = seq;
			}
		}
		d->need_newline = c < kept;
		if (c < kept)
			torn_add(d, ob->p + c, kept - c);
	}
	d->fail_writes++;
	size_t ml = strnlen(msg, sizeof(d->fail_err) - 1);
	memcpy(d->fail_err, msg, ml);
	d->fail_err[ml] = '\0';
}

/* Role holder: one batch -> one write. Returns 0 or VERR_*. */
static int dev_write_batch(struct audit_dev *d, struct audit_item *batch)
{
	void *impl = atomic_load(&d->impl);
	struct obuf *ob = &d->ob;
	struct verr e = {0};
	if (!impl)
		return VERR_INTERNAL;
	char prev0[65];
	memcpy(prev0, d->prev, sizeof(prev0));
	uint64_t seq0 = d->seq;
	ob->len = 0;
	ob->oom = false;
	size_t nl0 = d->need_newline ? 1 : 0, marker_end = 0;
	if (nl0)
		ob_add(ob, "\n", 1);
	size_t flen = 0;
	char *fline = failure_line(d, impl, &flen);
	if (fline) {
		ob_add_line(d, ob, fline, flen);
		marker_end = ob->len;
		free(fline);
	}
	for (struct audit_item *it = batch; it && !ob->oom; it = it->next) {
		if (it->len1) {
			ob_add_line(d, ob, it->line, it->len1);
			ob_add_line(d, ob, it->line + it->len1, it->len - it->len1);
		} else {
			ob_add_line(d, ob, it->line, it->len);
		}
	}
	int rc = ob->oom ? VERR_INTERNAL : d->ops->log(impl, ob->p, ob->len, d->timeout_ms, &e);
	if (rc) {
		const char *msg = ob->oom ? "out of memory" : e.msg;
		size_t kept = !ob->oom && d->ops->kept ? d->ops->kept(impl) : 0;
		dev_write_failed(d, ob, kept, marker_end, nl0, prev0, seq0, msg);
		log_warn("audit", "device %s: %s", d->path, msg);
	} else {
		d->need_newline = false;
		if (marker_end) {
			d->fail_writes = 0;
			d->torn_len = 0;
			d->torn_lines = 0;
		}
	}
	return rc;
}

/* Role holder: reopen (or open, if the device never opened). */
static void dev_do_reopen(struct audit_dev *d)
{
	struct verr e = {0};
	void *impl = atomic_load(&d->impl);
	int rc;
	if (impl)
		rc = d->ops->reopen ? d->ops->reopen(impl, &e) : 0;
	else
		rc = dev_open_impl(d, &e);
	if (rc)
		log_error("audit", "device %s: reopen failed: %s", d->path, e.msg);
	dev_resume(d);
}

/* Role holder, d->mu held: take the queue as one batch, write it, hand the
 * role on, acknowledge. Returns with d->mu held. `keep`: the caller goes on
 * holding the role (the writer thread); else the role passes to the first
 * queued waiter, or to the writer thread when there is work only it does
 * (reopen, stop, a device that does not write inline), or is released. */
static void dev_write_queue_locked(struct audit_dev *d, bool keep)
{
	struct audit_item *batch = d->head;
	d->head = d->tail = NULL;
	for (struct audit_item *it = batch; it; it = it->next)
		atomic_fetch_or_explicit(&it->state, ITEM_WRITING, memory_order_relaxed);
	d->busy_since = mono_ms();
	pthread_mutex_unlock(&d->mu);

	int rc = dev_write_batch(d, batch);

	pthread_mutex_lock(&d->mu);
	d->busy_since = 0;
	struct audit_item *lead = NULL;
	bool lead_asleep = false;
	if (!keep) {
		if (d->head && d->inline_ok && !d->stop && !d->reopen_req) {
			/* it stays queued; its waiter takes the role. Set under
			 * d->mu, so a waiter timing out sees it and leads rather
			 * than withdrawing the item; our reference keeps it alive
			 * for the wake-up */
			lead = d->head;
			atomic_fetch_add(&lead->refs, 1);
			uint32_t old = atomic_fetch_or_explicit(&lead->state, ITEM_LEAD,
								memory_order_acq_rel);
			lead_asleep = old & ITEM_SLEEPER;
		} else {
			d->writing = false;
			if (d->head || d->stop || d->reopen_req)
				pthread_cond_signal(&d->work);
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (lead) {
		if (lead_asleep)
			futex_wake_one(&lead->state);
		item_release(lead);
	}
	/* wake each waiter of this batch, and only them; no lock needed:
	 * the batch left the queue, and a waiter that timed out has
	 * dropped its reference (it does not read state DONE as failure) */
	for (struct audit_item *it = batch, *n; it; it = n) {
		n = it->next;
		it->next = NULL;
		it->result = rc;
		uint32_t old = atomic_exchange_explicit(&it->state, ITEM_DONE, memory_order_acq_rel);
		if (old & ITEM_SLEEPER)
			futex_wake_one(&it->state);
		item_release(it);
	}
	pthread_mutex_lock(&d->mu);
}

/* The device's writer thread: resumes the chain, then holds the role for
 * reopen requests, for devices that do not write inline, and for work a
 * request thread handed back (see DESIGN). */
static void *dev_writer(void *arg)
{
	struct audit_dev *d = arg;
	dev_resume(d); /* the role was taken for us at creation */
	pthread_mutex_lock(&d->mu);
	for (;;) {
		if (d->reopen_req) {
			d->reopen_req = false;
			unsigned gen = d->reopen_gen;
			d->busy_since = mono_ms();
			pthread_mutex_unlock(&d->mu);
			dev_do_reopen(d);
			pthread_mutex_lock(&d->mu);
			d->busy_since = 0;
			d->reopen_done = gen;
			pthread_cond_broadcast(&d->done);
			continue;
		}
		if (d->head) {
			dev_write_queue_locked(d, true);
			continue;
		}
		if (d->stop)
			break;
		d->writing = false;
		while (d->writing || (!d->head && !d->stop && !d->reopen_req))
			pthread_cond_wait(&d->work, &d->mu);
		d->writing = true;
	}
	d->writing = false;
	pthread_mutex_unlock(&d->mu);
	dev_release(d);
	pthread_mutex_lock(&g_live_mu);
	g_live--;
	pthread_cond_broadcast(&g_live_cv);
	pthread_mutex_unlock(&g_live_mu);
	return NULL;
}

/* Create a device (impl opened when open_now) and start its writer. The
 * returned device holds the table's reference. keys: KEYS_LEN bytes. */
static int dev_create(struct audit_dev **out, struct audit_broker *b, const char *path,
		      const char *type, const char *description, const json_t *options, bool local,
		      const char *uuid, const uint8_t *keys, bool must_open, struct verr *err)
{
	struct audit_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->work, NULL);
	cond_init_mono(&d->done);
	d->refs = 1;
	d->timeout_ms = 2000;
	d->allow_prefixing = b->allow_prefixing;
	snprintf(d->uuid, sizeof(d->uuid), "%s", uuid);
	d->path = strdup(path);
	d->type = strdup(type);
	d->description = strdup(description ? description : "");
	d->options = json_deep_copy(options);
	d->keys = secmem_alloc(KEYS_LEN);
	if (!d->path || !d->type || !d->description || !d->options || !d->keys) {
		dev_free(d);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	memcpy(d->keys, keys, KEYS_LEN);
	if (hmac256_init(&d->mac, d->keys + KEY_LEN, KEY_LEN)) {
		dev_free(d);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	d->writing = true; /* the writer thread's, until it has resumed the chain */
	d->local = local;
	for (const struct audit_device_ops *const *t = b->types; t && *t; t++)
		if (!strcmp((*t)->type, type))
			d->ops = *t;
	struct verr e = {0};
	int rc = dev_open_impl(d, must_open ? err : &e);
	if (rc && must_open) {
		dev_free(d);
		return rc;
	}
	if (rc)
		log_error("audit", "device %s cannot be opened (requests fail closed until it can): %s",
			  path, e.msg);
	/* the writer's reference */
	d->refs++;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	pthread_mutex_lock(&g_live_mu);
	g_live++;
	pthread_mutex_unlock(&g_live_mu);
	if (pthread_create(&th, &attr, dev_writer, d) != 0) {
		pthread_attr_destroy(&attr);
		pthread_mutex_lock(&g_live_mu);
		g_live--;
		pthread_mutex_unlock(&g_live_mu);
		dev_free(d);
		return verr_set(err, VERR_INTERNAL, "cannot start the audit writer thread");
	}
	pthread_attr_destroy(&attr);
	*out = d;
	return 0;
}

static void dev_stop(struct audit_dev *d)
{
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->mu);
	dev_release(d); /* the table's reference */
}

/* ---- storage ---- */

static json_t *dev_json(const struct audit_dev *d, bool with_uuid)
{
	json_t *o = json_pack("{s:s,s:s,s:O,s:b,s:s}", "type", d->type, "description",
			      d->description, "options", d->options, "local", d->local, "path",
			      d->path);
	if (o && with_uuid)
		json_object_set_new(o, "uuid", json_string(d->uuid));
	return o;
}

/* Persist the table: the current devices, minus `skip`, plus `add`. */
static int table_save(struct audit_broker *b, const struct audit_dev *skip,
		      const struct audit_dev *add, struct verr *err)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i] != skip)
			json_array_append_new(arr, dev_json(b->devs[i], true));
	if (add)
		json_array_append_new(arr, dev_json(add, true));
	json_t *t = json_pack("{s:o}", "entries", arr);
	int rc = view_put_json(&b->view, TABLE_KEY, t, err);
	json_decref(t);
	return rc;
}

static int keys_key(char *buf, size_t cap, const char *uuid)
{
	return snprintf(buf, cap, KEYS_PREFIX "%s", uuid);
}

static int keys_load(struct audit_broker *b, const char *uuid, uint8_t *out, struct verr *err)
{
	char k[128];
	keys_key(k, sizeof(k), uuid);
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = view_get(&b->view, k, &v, &n, err);
	if (rc)
		return rc;
	if (!v || n != KEYS_LEN) {
		if (v) {
			secmem_wipe(v, n);
			free(v);
		}
		return verr_set(err, VERR_INTERNAL, "audit device keys are missing");
	}
	memcpy(out, v, KEYS_LEN);
	secmem_wipe(v, n);
	free(v);
	return 0;
}

/* ---- broker ---- */

static int broker_add(struct audit_broker *b, struct audit_dev *d)
{
	struct audit_dev **nd = realloc(b->devs, (b->ndevs + 1) * sizeof(*nd));
	if (!nd)
		return VERR_INTERNAL;
	nd[b->ndevs] = d;
	pthread_rwlock_wrlock(&b->lock);
	b->devs = nd;
	b->ndevs++;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

int audit_broker_new(struct audit_broker **out, const struct audit_broker_opts *o,
		     struct verr *err)
{
	struct audit_broker *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	storage_view_init(&b->view, o->phys, "");
	b->types = o->types;
	b->allow_prefixing = o->allow_prefixing;
	pthread_mutex_init(&b->admin, NULL);
	pthread_rwlock_init(&b->lock, NULL);
	json_t *t = NULL;
	uint8_t *keys = secmem_alloc(KEYS_LEN);
	int rc = keys ? view_get_json(&b->view, TABLE_KEY, &t, err)
		      : verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc)
		goto out;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(t, "entries"), i, e) {
		const char *path = json_string_value(json_object_get(e, "path"));
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *uuid = json_string_value(json_object_get(e, "uuid"));
		if (!path || !type || !uuid)
			continue;
		if ((rc = keys_load(b, uuid, keys, err)))
			goto out;
		struct audit_dev *d = NULL;
		json_t *opts = json_object_get(e, "options");
		json_t *empty = json_object();
		rc = dev_create(&d, b, path, type,
				json_string_value(json_object_get(e, "description")),
				json_is_object(opts) ? opts : empty,
				json_is_true(json_object_get(e, "local")), uuid, keys, false, err);
		json_decref(empty);
		if (rc)
			goto out;
		if (broker_add(b, d)) {
			dev_stop(d);
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
	}
out:
	if (keys)
		secmem_free(keys, KEYS_LEN);
	json_decref(t);
	if (rc) {
		audit_broker_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void audit_broker_free(struct audit_broker *b)
{
	if (!b)
		return;
	int64_t wait_ms = 0;
	for (size_t i = 0; i < b->ndevs; i++) {
		if (b->devs[i]->timeout_ms > wait_ms)
			wait_ms = b->devs[i]->timeout_ms;
		dev_stop(b->devs[i]);
	}
	/* let the writers flush (bounded: a stuck device is left behind) */
	if (b->ndevs) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* generous: under load a writer that was just released may need
		 * a few seconds to notice the stop */
		ts.tv_sec += wait_ms / 1000 + 5;
		pthread_mutex_lock(&g_live_mu);
		while (g_live > 0)
			if (pthread_cond_timedwait(&g_live_cv, &g_live_mu, &ts) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&g_live_mu);
	}
	free(b->devs);
	pthread_mutex_destroy(&b->admin);
	pthread_rwlock_destroy(&b->lock);
	free(b);
}

bool audit_broker_active(struct audit_broker *b)
{
	if (!b)
		return false;
	pthread_rwlock_rdlock(&b->lock);
	bool any = b->ndevs > 0;
	pthread_rwlock_unlock(&b->lock);
	return any;
}

bool audit_broker_inline(struct audit_broker *b)
{
	if (!b)
		return true;
	bool all = true;
	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < b->ndevs && all; i++) {
		struct audit_dev *d = b->devs[i];
		pthread_mutex_lock(&d->mu);
		all = d->inline_ok && !d->stop;
		pthread_mutex_unlock(&d->mu);
	}
	pthread_rwlock_unlock(&b->lock);
	return all;
}

/* "file" -> "file/"; NULL if invalid. */
static char *norm_path(const char *path, struct verr *err)
{
	while (path && *path == '/')
		path++;
	if (!path || !*path) {
		verr_set(err, VERR_INVALID, "audit device path must not be empty");
		return NULL;
	}
	size_t n = strlen(path);
	if (n > 512) {
		verr_set(err, VERR_INVALID, "audit device path is too long");
		return NULL;
	}
	char *p = malloc(n + 2);
	if (!p) {
		verr_set(err, VERR_INTERNAL, "out of memory");
		return NULL;
	}
	memcpy(p, path, n + 1);
	if (p[n - 1] != '/') {
		p[n] = '/';
		p[n + 1] = '\0';
	}
	return p;
}

/* Borrowed while b->lock or b->admin is held. */
static struct audit_dev *find_locked(struct audit_broker *b, const char *np)
{
	for (size_t i = 0; i < b->ndevs; i++)
		if (!strcmp(b->devs[i]->path, np))
			return b->devs[i];
	return NULL;
}

static struct audit_dev *find_ref(struct audit_broker *b, const char *path, struct verr *err)
{
	char *np = norm_path(path, err);
	if (!np)
		return NULL;
	pthread_rwlock_rdlock(&b->lock);
	struct audit_dev *d = find_locked(b, np);
	if (d)
		atomic_fetch_add(&d->refs, 1);
	pthread_rwlock_unlock(&b->lock);
	if (!d)
		verr_set(err, VERR_INVALID, "unknown audit backend \"%s\"", np); /* Vault's words */
	free(np);
	return d;
}

/* Options as Vault takes them: a map of strings. */
static json_t *norm_options(const json_t *in, struct verr *err)
{
	json_t *o = json_object();
	if (!o || !in || json_is_null(in))
		return o;
	if (!json_is_object(in)) {
		json_decref(o);
		verr_set(err, VERR_INVALID, "options must be a map of strings");
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)in, k, v) {
		char num[64];
		const char *s = NULL;
		if (json_is_string(v))
			s = json_string_value(v);
		else if (json_is_boolean(v))
			s = json_is_true(v) ? "true" : "false";
		else if (json_is_integer(v))
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v)), s = num;
		else if (json_is_real(v))
			snprintf(num, sizeof(num), "%g", json_real_value(v)), s = num;
		if (!s) {
			json_decref(o);
			verr_set(err, VERR_INVALID, "option \"%s\" must be a string", k);
			return NULL;
		}
		json_object_set_new(o, k, json_string(s));
	}
	return o;
}

int audit_broker_enable(struct audit_broker *b, const char *path, const char *type,
			const char *description, const json_t *options, bool local,
			struct verr *err)
{
	if (!type || !*type)
		return verr_set(err, VERR_INVALID, "type is required");
	char *np = norm_path(path, err);
	if (!np)
		return VERR_INVALID;
	int rc = 0;
	json_t *opts = NULL;
	uint8_t *keys = NULL;
	struct audit_dev *d = NULL;
	bool known = false;
	for (const struct audit_device_ops *const *t = b->types; t && *t; t++)
		known |= !strcmp((*t)->type, type);
	size_t nl = strlen(np);
	if (nl >= 11 && !strcmp(np + nl - 11, "/chain-key/")) {
		rc = verr_set(err, VERR_INVALID, "audit device path must not end in \"chain-key\"");
		goto out;
	}
	if (!strcmp(np, "chain-key/")) {
		rc = verr_set(err, VERR_INVALID, "audit device path must not be \"chain-key\"");
		goto out;
	}
	if (!known) {
		rc = verr_set(err, VERR_INVALID, "unknown audit device type \"%s\"", type);
		goto out;
	}
	if (!(opts = norm_options(options, err))) {
		rc = VERR_INVALID;
		goto out;
	}
	pthread_mutex_lock(&b->admin);
	if (find_locked(b, np)) {
		rc = verr_set(err, VERR_INVALID, "path already in use");
		goto unlock;
	}
	keys = secmem_alloc(KEYS_LEN);
	if (!keys || RAND_bytes(keys, KEYS_LEN) != 1) {
		rc = verr_set(err, VERR_INTERNAL, "cannot create audit device keys");
		goto unlock;
	}
	char uuid[RAND_UUID_LEN + 1];
	if ((rc = rand_uuid(uuid, err)))
		goto unlock;
	if ((rc = dev_create(&d, b, np, type, description, opts, local, uuid, keys, true, err)))
		goto unlock;
	char kk[128];
	keys_key(kk, sizeof(kk), uuid);
	if ((rc = view_put(&b->view, kk, keys, KEYS_LEN, err)) ||
	    (rc = table_save(b, NULL, d, err))) {
		view_delete(&b->view, kk, NULL);
		dev_stop(d);
		goto unlock;
	}
	if (broker_add(b, d)) {
		table_save(b, NULL, NULL, NULL);
		view_delete(&b->view, kk, NULL);
		dev_stop(d);
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto unlock;
	}
	log_info("audit", "enabled audit device %s (type %s)", np, type);
unlock:
	pthread_mutex_unlock(&b->admin);
out:
	if (keys)
		secmem_free(keys, KEYS_LEN);
	json_decref(opts);
	free(np);
	return rc;
}

int audit_broker_disable(struct audit_broker *b, const char *path, struct verr *err)
{
	char *np = norm_path(path, err);
	if (!np)
		return VERR_INVALID;
	int rc = 0;
	pthread_mutex_lock(&b->admin);
	struct audit_dev *d = find_locked(b, np);
	if (!d)
		goto unlock;
	if ((rc = table_save(b, d, NULL, err)))
		goto unlock;
	char kk[128];
	keys_key(kk, sizeof(kk), d->uuid);
	view_delete(&b->view, kk, NULL);
	pthread_rwlock_wrlock(&b->lock);
	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i] == d) {
			memmove(&b->devs[i], &b->devs[i + 1], (b->ndevs - i - 1) * sizeof(*b->devs));
			b->ndevs--;
			break;
		}
	pthread_rwlock_unlock(&b->lock);
	dev_stop(d);
	log_info("audit", "disabled audit device %s", np);
unlock:
	pthread_mutex_unlock(&b->admin);
	free(np);
	return rc;
}

json_t *audit_broker_list(struct audit_broker *b)
{
	json_t *o = json_object();
	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < b->ndevs; i++)
		json_object_set_new(o, b->devs[i]->path, dev_json(b->devs[i], false));
	pthread_rwlock_unlock(&b->lock);
	return o;
}

int audit_broker_hash(struct audit_broker *b, const char *path, const char *input, char **out,
		      struct verr *err)
{
	struct audit_dev *d = find_ref(b, path, err);
	if (!d)
		return VERR_INVALID;
	void *impl = atomic_load(&d->impl);
	int rc = 0;
	if (!impl) {
		rc = verr_set(err, VERR_INTERNAL, "audit device %s is not available", d->path);
	} else if (!(*out = d->ops->hash(impl, input ? input : ""))) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	dev_release(d);
	return rc;
}

int audit_broker_chain_key(struct audit_broker *b, const char *path, char **out,
			   struct verr *err)
{
	struct audit_dev *d = find_ref(b, path, err);
	if (!d)
		return VERR_INVALID;
	char *s = malloc(4 * ((KEY_LEN + 2) / 3) + 1);
	if (s)
		EVP_EncodeBlock((unsigned char *)s, d->keys + KEY_LEN, KEY_LEN);
	dev_release(d);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = s;
	return 0;
}

/* ---- logging ---- */

/* Queue a line (ownership passes to the item). NULL: device refused.
 * *lead: the caller took the writer role and must call dev_lead (its line
 * is the first of the queue). */
static struct audit_item *dev_enqueue(struct audit_dev *d, char *line, size_t len, size_t len1,
				      bool *lead)
{
	struct audit_item *it = calloc(1, sizeof(*it));
	if (!it) {
		free(line);
		return NULL;
	}
	it->line = line;
	it->len = len;
	it->len1 = len1;
	atomic_init(&it->state, ITEM_QUEUED);
	atomic_init(&it->refs, 2); /* the caller's and the queue's */
	pthread_mutex_lock(&d->mu);
	bool stuck = d->busy_since && mono_ms() - d->busy_since > d->timeout_ms;
	if (d->stop || stuck) {
		pthread_mutex_unlock(&d->mu);
		if (stuck)
			log_warn("audit", "device %s is not responding: entry refused", d->path);
		free(it->line);
		free(it);
		return NULL;
	}
	if (d->tail)
		d->tail->next = it;
	else
		d->head = it;
	d->tail = it;
	*lead = false;
	if (!d->writing && d->inline_ok && !d->reopen_req) {
		d->writing = true; /* group commit: we write, others queue behind */
		*lead = true;
	} else if (!d->writing) {
		pthread_cond_signal(&d->work);
	} /* else the role holder writes it or passes the role to us */
	pthread_mutex_unlock(&d->mu);
	return it;
}

/* Holding the writer role: write what is queued and pass the role on. */
static void dev_lead(struct audit_dev *d)
{
	pthread_mutex_lock(&d->mu);
	dev_write_queue_locked(d, false);
	pthread_mutex_unlock(&d->mu);
}

/* A waiter sleeps on its item at once: on this kind of shared 2-vCPU VM,
 * spinning (pause) or yielding before the sleep cost more CPU per request
 * than the sleep and wake-up it sometimes saved, with a thread per
 * connection and on the epoll listener's threads alike (measured with
 * bench/audit.py, bench/profile.py cpu and perf stat; docs/performance.md). */

/* Wait for the acknowledgement until deadline; 0 if written. Releases the
 * caller's reference to `it`. */
static int dev_wait(struct audit_dev *d, struct audit_item *it, int64_t deadline)
{
	struct timespec ts = mono_deadline(deadline);
	for (;;) {
		uint32_t s = atomic_load_explicit(&it->state, memory_order_acquire);
		if (ITEM_STATE(s) == ITEM_DONE) {
			int rc = it->result;
			item_release(it);
			return rc;
		}
		if (ITEM_STATE(s) == ITEM_LEAD) {
			dev_lead(d); /* our line is first in the queue: DONE after */
			continue;
		}
		if (!(s & ITEM_SLEEPER) &&
		    !atomic_compare_exchange_weak_explicit(&it->state, &s, s | ITEM_SLEEPER,
							   memory_order_acq_rel,
							   memory_order_acquire))
			continue;
		if (!futex_wait_until(&it->state, s | ITEM_SLEEPER, &ts))
			break;
	}
	/* timed out: decide under d->mu, where QUEUED -> WRITING happens */
	int rc;
	bool timed_out = true;
	pthread_mutex_lock(&d->mu);
	uint32_t s = ITEM_STATE(atomic_load_explicit(&it->state, memory_order_acquire));
	if (s == ITEM_LEAD) {
		/* the role came to us as we gave up: write (our line first) */
		pthread_mutex_unlock(&d->mu);
		dev_lead(d);
		return dev_wait(d, it, mono_ms() + d->timeout_ms);
	}
	if (s == ITEM_DONE) {
		timed_out = false; /* finished just now */
		rc = it->result;
		item_release(it);
	} else if (s == ITEM_QUEUED) {
		/* withdraw it: it will never be written */
		struct audit_item **pp = &d->head, *prev = NULL;
		while (*pp && *pp != it) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = it->next;
			if (d->tail == it)
				d->tail = prev;
			item_release(it); /* the queue's */
		}
		item_release(it); /* ours */
		rc = VERR_INTERNAL;
	} else {
		item_release(it); /* abandoned: the writer frees it */
		rc = VERR_INTERNAL;
	}
	pthread_mutex_unlock(&d->mu);
	if (timed_out)
		log_warn("audit", "device %s did not record an entry within %lld ms", d->path,
			 (long long)d->timeout_ms);
	return rc;
}

static void dev_request_reopen(struct audit_dev *d)
{
	pthread_mutex_lock(&d->mu);
	if (!d->stop) {
		d->reopen_req = true;
		d->reopen_gen++;
		pthread_cond_signal(&d->work);
	}
	pthread_mutex_unlock(&d->mu);
}

/* The device's line for entry (a JSON tree), or its lines for descs[0..n)
 * (n is 1 or 2), concatenated in one buffer: *len1 is the length of the
 * first of two (0 for one line). */
static int format_lines(struct audit_dev *d, void *impl, const json_t *entry,
			const struct audit_entry *const *descs, size_t n, char **out, size_t *len,
			size_t *len1, struct verr *err)
{
	*len1 = 0;
	if (!descs)
		return d->ops->format(out, len, impl, entry, err);
	if (!d->ops->format_entry)
		return verr_set(err, VERR_INTERNAL, "cannot format an entry");
	int rc = d->ops->format_entry(out, len, impl, descs[0], err);
	if (rc || n < 2)
		return rc;
	char *second = NULL;
	size_t l2 = 0;
	rc = d->ops->format_entry(&second, &l2, impl, descs[1], err);
	char *both = rc ? NULL : realloc(*out, *len + l2 + 1);
	if (!rc && !both)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		free(second);
		free(*out);
		*out = NULL;
		return rc;
	}
	memcpy(both + *len, second, l2);
	both[*len + l2] = '\0';
	free(second);
	*out = both;
	*len1 = *len;
	*len += l2;
	return 0;
}

/* Exactly one of entry (a JSON tree) and descs (the core's descriptions:
 * one entry, or a request entry and its response entry, written together
 * as one item, so in one batch and in order). */
static int broker_log(struct audit_broker *b, const json_t *entry,
		      const struct audit_entry *const *descs, size_t ndesc, struct verr *err)
{
	if (!b)
		return 0;
	struct audit_dev *local_devs[8];
	struct audit_dev **devs = local_devs;
	pthread_rwlock_rdlock(&b->lock);
	size_t n = b->ndevs;
	if (n > 8 && !(devs = malloc(n * sizeof(*devs)))) {
		pthread_rwlock_unlock(&b->lock);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		devs[i] = b->devs[i];
		atomic_fetch_add(&devs[i]->refs, 1);
	}
	pthread_rwlock_unlock(&b->lock);
	if (n == 0)
		return 0;

	struct audit_item *local_items[8];
	struct audit_item **items = n > 8 ? calloc(n, sizeof(*items)) : local_items;
	int64_t *deadlines = calloc(n, sizeof(*deadlines));
	size_t ok = 0;
	if (!items || !deadlines) {
		if (items != local_items)
			free(items);
		free(deadlines);
		for (size_t i = 0; i < n; i++)
			dev_release(devs[i]);
		if (devs != local_devs)
			free(devs);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	/* format (HMAC) on this thread with no lock held, then queue */
	for (size_t i = 0; i < n; i++) {
		struct audit_dev *d = devs[i];
		items[i] = NULL;
		void *impl = atomic_load(&d->impl);
		if (!impl) {
			dev_request_reopen(d); /* try to open it again */
			continue;
		}
		char *line = NULL;
		size_t len = 0, len1 = 0;
		struct verr fe = {0};
		int frc = format_lines(d, impl, entry, descs, ndesc, &line, &len, &len1, &fe);
		if (frc) {
			log_warn("audit", "device %s: %s", d->path, fe.msg);
			continue;
		}
		deadlines[i] = mono_ms() + d->timeout_ms;
		bool lead = false;
		items[i] = dev_enqueue(d, line, len, len1, &lead);
		if (lead)
			dev_lead(d);
	}
	for (size_t i = 0; i < n; i++)
		if (items[i] && dev_wait(devs[i], items[i], deadlines[i]) == 0)
			ok++;
	for (size_t i = 0; i < n; i++)
		dev_release(devs[i]);
	if (items != local_items)
		free(items);
	free(deadlines);
	if (devs != local_devs)
		free(devs);
	if (ok == 0)
		return verr_set(err, VERR_INTERNAL, "no audit device could record the request");
	return 0;
}

int audit_broker_log(struct audit_broker *b, const json_t *entry, struct verr *err)
{
	return broker_log(b, entry, NULL, 0, err);
}

int audit_broker_log_entry(struct audit_broker *b, const struct audit_entry *entry,
			   struct verr *err)
{
	return broker_log(b, NULL, &entry, 1, err);
}

int audit_broker_log_pair(struct audit_broker *b, const struct audit_entry *request,
			  const struct audit_entry *response, struct verr *err)
{
	const struct audit_entry *both[2] = {request, response};
	return broker_log(b, NULL, both, 2, err);
}

void audit_broker_reopen(struct audit_broker *b)
{
	if (!b)
		return;
	pthread_rwlock_rdlock(&b->lock);
	size_t n = b->ndevs;
	struct audit_dev **devs = calloc(n ? n : 1, sizeof(*devs));
	for (size_t i = 0; devs && i < n; i++) {
		devs[i] = b->devs[i];
		atomic_fetch_add(&devs[i]->refs, 1);
	}
	pthread_rwlock_unlock(&b->lock);
	if (!devs)
		return;
	for (size_t i = 0; i < n; i++) {
		struct audit_dev *d = devs[i];
		pthread_mutex_lock(&d->mu);
		d->reopen_req = true;
		unsigned gen = ++d->reopen_gen;
		pthread_cond_signal(&d->work);
		struct timespec ts = mono_deadline(mono_ms() + d->timeout_ms);
		while ((int)(d->reopen_done - gen) < 0 && !d->stop)
			if (pthread_cond_timedwait(&d->done, &d->mu, &ts) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&d->mu);
		dev_release(d);
	}
	free(devs);
}
