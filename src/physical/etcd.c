/*
 * etcd.c - storage "etcd": etcd v3 through its JSON gateway (etcd 3.4 has no
 * C client; Debian ships no gRPC stack for C), with a lease-based HA lock.
 *
 * Stanza (Vault's): address (comma-separated URLs, default
 * http://127.0.0.1:2379), etcd_api ("v3"; "v2" is refused), path (default
 * "/vault/"), ha_enabled, request_timeout (default 5s), lock_timeout (the
 * lock lease's TTL, default 15s), tls_ca_file, tls_cert_file, tls_key_file,
 * tls_server_name, username / password, max_entry_size, max_parallel; and
 * from the top level, disable_cache / cache_size (the holder's read cache).
 *
 * Layout: a Coffer key K is the etcd key <path>K (Vault's layout, so a
 * migration from Vault's etcd backend finds its keys). Values are raw bytes
 * (the barrier's ciphertext). list() reads keys only, page by page, and
 * skips over each folder's subtree once it has seen the folder, so listing
 * a prefix costs its direct children, not all its descendants.
 *
 * HA lock (physical_ha): <path>core/lock, created in a txn only if it does
 * not exist (create_revision == 0), attached to a lease of lock_timeout
 * seconds that the holder keeps alive (renew every TTL/3). The value is the
 * holder's advertisement. While this node holds the lock, every write is a
 * txn guarded by "the lock key still has the create revision we created",
 * so a node that lost the lock (lease expired during a pause, key deleted
 * by an operator) can never acknowledge a write after the loss: the guarded
 * write fails, the lost callback runs, and the core steps down. A standby
 * reads the key and, while it is held, waits on a /v3/watch of it
 * (physical_ha_ops.wait), so it acquires as soon as etcd deletes the key.
 *
 * Threads: any thread may call any method. HTTP handles are pooled (one
 * connection each, kept alive); `mu` guards the pool and the lock state.
 */
#include "physical/physical.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/b64.h"
#include "util/buf.h"
#include "util/curl_dl.h"
#include "util/duration.h"
#include "util/log.h"

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_LIST_PAGE 1000
#define ETCD_TXN_MAX 128       /* etcd's default --max-txn-ops */
#define ETCD_MAX_REQUEST 1536  /* KiB: etcd's default --max-request-bytes */

#define ETCD_CACHE_BUCKETS 4096
#define ETCD_CACHE_MAX_ENTRIES 16384
#define ETCD_CACHE_MAX_BYTES (32u << 20)
#define ETCD_CACHE_MAX_VALUE (256u << 10)

struct etcd;

/* One key in the holder's read cache. */
struct cent {
	char *key;
	uint8_t *val; /* NULL with present = false: known to be absent */
	size_t len;
	bool valid;    /* val is what etcd has */
	bool present;
	bool overlap;  /* two writes of the key were in flight together */
	int busy;      /* writes in flight */
	uint64_t fill; /* != 0: a read that may fill this entry is in flight */
	struct cent *hnext, *prev, *next;
};

struct etcd_ha {
	struct physical_ha base; /* must be first */
	struct etcd *e;
};

struct etcd {
	struct physical base; /* must be first */
	char *endpoints[ETCD_MAX_ENDPOINTS];
	size_t nendpoints;
	_Atomic size_t cur; /* the endpoint that answered last */
	char *prefix;       /* "/vault/" */
	char *lock_key;     /* prefix + "core/lock" */
	long timeout_ms, lock_ttl_s;
	char *ca_file, *cert_file, *key_file, *server_name;
	char *username, *password;
	char *auth_token; /* from /v3/auth/authenticate; under mu */

	pthread_mutex_t mu;
	CURL **idle; /* pooled handles */
	size_t nidle, max_parallel;

	/* HA lock state, under mu */
	struct etcd_ha *ha;
	bool held;
	char lease[32];      /* our lease id (decimal string) */
	char create_rev[32]; /* the lock key's create_revision we made */
	physical_ha_lost_fn lost;
	void *lost_ctx;
	int64_t last_renew_ms;

	/* the holder's read cache (ha_enabled only), under mu */
	struct cent **cbuckets; /* ETCD_CACHE_BUCKETS chains */
	struct cent *lru_head, *lru_tail; /* most recently used first */
	size_t centries, cbytes, cmax; /* cmax: most entries kept */
	uint64_t cfill;                /* fill tokens */

	/* standby's watch on the lock key, under mu */
	char watch_rev[32]; /* watch from this revision ("" unknown) */
	int watch_fd;       /* the watch's socket, -1 when none */
	bool wake_pending;
};

static const struct physical_ops etcd_ops;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct buf *b = ud;
	buf_add(b, p, sz * n);
	return b->failed ? 0 : sz * n;
}

static CURL *handle_get(struct etcd *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->mu);
	if (e->nidle)
		h = e->idle[--e->nidle];
	pthread_mutex_unlock(&e->mu);
	return h ? h : curl_easy_init();
}

static void handle_put(struct etcd *e, CURL *h)
{
	pthread_mutex_lock(&e->mu);
	if (e->nidle < e->max_parallel) {
		e->idle[e->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->mu);
	if (h)
		curl_easy_cleanup(h);
}

/* The options every request to etcd shares (the caller sets the body's
 * sink). hdr gets the content type and, with auth, the token header (ah is
 * its storage, wiped by the caller). */
static void setup_handle(struct etcd *e, CURL *h, const char *url, const char *body,
			 struct curl_slist **hdr, const char *auth, char *ah, size_t ahsz,
			 long timeout_ms, char *cerr)
{
	*hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (auth) {
		snprintf(ah, ahsz, "Authorization: %s", auth);
		*hdr = curl_slist_append(*hdr, ah);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms < 2000 ? e->timeout_ms : 2000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (e->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, e->key_file);
	cerr[0] = '\0';
}

static int do_post(struct etcd *e, const char *endpoint, const char *api, const char *body,
		   const char *auth, struct buf *out, long *status, char *cerr)
{
	CURL *h = handle_get(e);
	if (!h) {
		snprintf(cerr, CURL_ERROR_SIZE, "libcurl is not available");
		return -1;
	}
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", endpoint, api);
	struct curl_slist *hdr = NULL;
	char ah[600];
	setup_handle(e, h, url, body, &hdr, auth, ah, sizeof(ah), e->timeout_ms, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	CURLcode cc = curl_easy_perform(h);
	curl_slist_free_all(hdr);
	if (auth)
		explicit_bzero(ah, sizeof(ah));
	if (cc != CURLE_OK) {
		if (!cerr[0])
			snprintf(cerr, CURL_ERROR_SIZE, "%s", curl_easy_strerror(cc));
		curl_easy_cleanup(h);
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	handle_put(e, h);
	return 0;
}

static int authenticate(struct etcd *e, const char *endpoint, struct verr *err);

/* The token for the Authorization header (malloc'd), authenticating first
 * if there is none yet; NULL without username or when that failed. */
static char *auth_header(struct etcd *e, const char *ep, struct verr *err)
{
	if (!e->username)
		return NULL;
	pthread_mutex_lock(&e->mu);
	char *auth = e->auth_token ? strdup(e->auth_token) : NULL;
	pthread_mutex_unlock(&e->mu);
	if (!auth && authenticate(e, ep, err) == 0) {
		pthread_mutex_lock(&e->mu);
		auth = e->auth_token ? strdup(e->auth_token) : NULL;
		pthread_mutex_unlock(&e->mu);
	}
	return auth;
}

/* POST body to api on the first endpoint that answers; *out = parsed JSON
 * of a 200 answer. etcd's gRPC errors come back as 4xx/5xx with
 * {"error": "...", "code": N}: VERR_UNAVAILABLE for transport and 5xx,
 * VERR_INTERNAL for the rest, the message naming etcd's error. */
static int call(struct etcd *e, const char *api, json_t *req, json_t **out, struct verr *err)
{
	*out = NULL;
	char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char cerr[CURL_ERROR_SIZE];
	int rc = VERR_UNAVAILABLE;
	size_t start = atomic_load(&e->cur) % e->nendpoints;
	verr_set(err, VERR_UNAVAILABLE, "etcd: no endpoint configured");
	for (size_t k = 0; k < e->nendpoints; k++) {
		size_t idx = (start + k) % e->nendpoints;
		const char *ep = e->endpoints[idx];
		for (int attempt = 0; attempt < 2; attempt++) {
			struct buf b = {0};
			long status = 0;
			char *auth = auth_header(e, ep, err);
			int t = do_post(e, ep, api, body, auth, &b, &status, cerr);
			free(auth);
			if (t) {
				buf_free(&b);
				verr_set(err, VERR_UNAVAILABLE, "etcd %s: %s", ep, cerr);
				break; /* next endpoint */
			}
			json_t *j = b.len ? json_loadb(b.p, b.len, 0, NULL) : NULL;
			buf_free(&b);
			if (status == 200 && j) {
				atomic_store(&e->cur, idx);
				*out = j;
				free(body);
				return 0;
			}
			const char *msg = json_string_value(json_object_get(j, "error"));
			if (!msg)
				msg = json_string_value(json_object_get(j, "message"));
			bool auth_err = msg && e->username && strstr(msg, "invalid auth token");
			verr_set(err, status >= 500 ? VERR_UNAVAILABLE : VERR_INTERNAL,
				 "etcd %s: HTTP %ld: %s", ep, status, msg ? msg : "unexpected answer");
			rc = err->code;
			json_decref(j);
			if (auth_err && attempt == 0) {
				pthread_mutex_lock(&e->mu);
				free(e->auth_token);
				e->auth_token = NULL;
				pthread_mutex_unlock(&e->mu);
				continue;
			}
			if (status < 500) {
				free(body);
				return rc;
			}
			break;
		}
	}
	free(body);
	return err->code ? err->code : rc;
}

static int authenticate(struct etcd *e, const char *endpoint, struct verr *err)
{
	json_t *req = json_pack("{s:s,s:s}", "name", e->username, "password", e->password);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!body)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	struct buf b = {0};
	long status = 0;
	char cerr[CURL_ERROR_SIZE];
	int t = do_post(e, endpoint, "/v3/auth/authenticate", body, NULL, &b, &status, cerr);
	free(body);
	json_t *j = !t && b.len ? json_loadb(b.p, b.len, 0, NULL) : NULL;
	buf_free(&b);
	const char *tok = json_string_value(json_object_get(j, "token"));
	int rc = 0;
	if (t)
		rc = verr_set(err, VERR_UNAVAILABLE, "etcd %s: %s", endpoint, cerr);
	else if (status != 200 || !tok)
		rc = verr_set(err, VERR_DENIED, "etcd %s: authentication failed for user %s", endpoint,
			      e->username);
	else {
		pthread_mutex_lock(&e->mu);
		free(e->auth_token);
		e->auth_token = strdup(tok);
		pthread_mutex_unlock(&e->mu);
	}
	json_decref(j);
	return rc;
}

/* ---- keys ---- */

static char *b64s(const void *p, size_t n)
{
	return b64_encode(p, n, false);
}

static char *full_key64(const struct etcd *e, const char *key)
{
	struct buf b = {0};
	buf_str(&b, e->prefix);
	buf_str(&b, key);
	if (b.failed) {
		buf_free(&b);
		return NULL;
	}
	char *o = b64s(b.p, b.len);
	buf_free(&b);
	return o;
}

/* The key just after every key starting with p (p's last byte + 1). */
static char *range_end64(const char *p, size_t n)
{
	char *t = malloc(n + 1);
	if (!t)
		return NULL;
	memcpy(t, p, n);
	while (n && (unsigned char)t[n - 1] == 0xff)
		n--;
	char *o = NULL;
	if (n) {
		t[n - 1]++;
		o = b64s(t, n);
	} else {
		o = b64s("\0", 1); /* everything */
	}
	free(t);
	return o;
}

static int check_key(const char *key, struct verr *err)
{
	if (!key || strlen(key) > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "key is empty or longer than %d bytes",
				PHYSICAL_MAX_KEY);
	return 0;
}

/* ---- the holder's read cache ----
 *
 * While this node holds the lock, it is the only writer (every other node's
 * writes are fenced), so what it wrote, or read since acquiring, is what
 * etcd has: a KV v2 write reads the secret's metadata twice (the existence
 * check, then under the path's lock) and the second read, like any read of
 * a key this node just wrote, needs no round trip. Used only while the
 * lease is provably alive (less than a TTL since the last keepalive we
 * sent was confirmed) and emptied on acquire, loss and release, so a
 * standby, or a node whose lease has run out, never reads from it. Writes
 * keep it exact: an entry is invalid while a write of its key is in flight
 * (and after two overlapping ones, whose order etcd alone knows) and after
 * any write whose outcome is unknown; a read fills it only if no write of
 * the key started meanwhile. Values are the barrier's ciphertext. */

static size_t chash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ULL;
	return (size_t)(h % ETCD_CACHE_BUCKETS);
}

static struct cent *cfind(struct etcd *e, const char *key)
{
	if (!e->cbuckets)
		return NULL;
	struct cent *c = e->cbuckets[chash(key)];
	while (c && strcmp(c->key, key))
		c = c->hnext;
	return c;
}

static void lru_unlink(struct etcd *e, struct cent *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		e->lru_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		e->lru_tail = c->prev;
	c->prev = c->next = NULL;
}

static void lru_front(struct etcd *e, struct cent *c)
{
	c->next = e->lru_head;
	if (e->lru_head)
		e->lru_head->prev = c;
	e->lru_head = c;
	if (!e->lru_tail)
		e->lru_tail = c;
}

static void cset(struct etcd *e, struct cent *c, uint8_t *val, size_t len, bool present)
{
	e->cbytes -= c->len;
	free(c->val);
	c->val = val;
	c->len = val ? len : 0;
	c->present = present;
	c->valid = true;
	e->cbytes += c->len;
}

static void cinvalidate(struct etcd *e, struct cent *c)
{
	cset(e, c, NULL, 0, false);
	c->valid = false;
}

static void cremove(struct etcd *e, struct cent *c)
{
	struct cent **pp = &e->cbuckets[chash(c->key)];
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	lru_unlink(e, c);
	e->cbytes -= c->len;
	e->centries--;
	free(c->val);
	free(c->key);
	free(c);
}

/* Drop least recently used entries without a write in flight. */
static void cevict(struct etcd *e)
{
	struct cent *c = e->lru_tail;
	while (c && (e->centries > e->cmax || e->cbytes > ETCD_CACHE_MAX_BYTES)) {
		struct cent *prev = c->prev;
		if (!c->busy)
			cremove(e, c);
		c = prev;
	}
}

static struct cent *cget(struct etcd *e, const char *key)
{
	struct cent *c = cfind(e, key);
	if (c || !e->cbuckets)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->key = strdup(key))) {
		free(c);
		return NULL;
	}
	size_t b = chash(key);
	c->hnext = e->cbuckets[b];
	e->cbuckets[b] = c;
	lru_front(e, c);
	e->centries++;
	return c;
}

/* Everything goes (acquire, loss, release); entries with a write in flight
 * stay, invalid, so the write's end still knows it overlapped. */
static void cclear(struct etcd *e)
{
	for (struct cent *c = e->lru_head, *n; c; c = n) {
		n = c->next;
		if (c->busy) {
			cinvalidate(e, c);
			c->fill = 0;
		} else {
			cremove(e, c);
		}
	}
}

/* The cache may answer: we hold the lock and our lease cannot have run out
 * (under mu). */
static bool cusable(struct etcd *e)
{
	return e->cbuckets && e->held && mono_ms() - e->last_renew_ms < e->lock_ttl_s * 1000;
}

/* A write of these keys starts / ended (ok: etcd applied it). */
static void cwrite_begin(struct etcd *e, const struct physical_txn_op *ops, size_t n)
{
	if (!e->cbuckets)
		return;
	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < n; i++) {
		struct cent *c = cget(e, ops[i].key);
		if (!c)
			continue; /* out of memory: the end finds no entry */
		if (c->busy++)
			c->overlap = true;
		cinvalidate(e, c);
		c->fill = 0; /* a read in flight must not fill it */
	}
	pthread_mutex_unlock(&e->mu);
}

static void cwrite_end(struct etcd *e, const struct physical_txn_op *ops, size_t n, bool ok)
{
	if (!e->cbuckets)
		return;
	pthread_mutex_lock(&e->mu);
	bool use = ok && cusable(e);
	for (size_t i = 0; i < n; i++) {
		struct cent *c = cfind(e, ops[i].key);
		if (!c || c->busy <= 0)
			continue;
		c->busy--;
		uint8_t *v = NULL;
		bool put = ops[i].kind == PHYSICAL_TXN_PUT;
		if (use && !c->busy && !c->overlap && ops[i].len <= ETCD_CACHE_MAX_VALUE &&
		    (!put || (v = malloc(ops[i].len ? ops[i].len : 1)))) {
			if (put && ops[i].len)
				memcpy(v, ops[i].val, ops[i].len);
			cset(e, c, v, ops[i].len, put);
		} else {
			cinvalidate(e, c);
		}
		if (!c->busy)
			c->overlap = false;
	}
	cevict(e);
	pthread_mutex_unlock(&e->mu);
}

/* 1 answered from the cache (*out / *len as get), 0 not: then *token is
 * the fill token to pass to cfill_end (0: do not fill). */
static int cread(struct etcd *e, const char *key, uint8_t **out, size_t *len, uint64_t *token)
{
	*token = 0;
	if (!e->cbuckets)
		return 0;
	int hit = 0;
	pthread_mutex_lock(&e->mu);
	if (cusable(e)) {
		struct cent *c = cget(e, key);
		if (c && c->valid) {
			if (c->present) {
				*out = malloc(c->len ? c->len : 1);
				if (*out) {
					if (c->len)
						memcpy(*out, c->val, c->len);
					*len = c->len;
					hit = 1;
				}
			} else {
				hit = 1;
			}
			lru_unlink(e, c);
			lru_front(e, c);
		} else if (c && !c->busy) {
			c->fill = *token = ++e->cfill;
		}
	}
	pthread_mutex_unlock(&e->mu);
	return hit;
}

static void cfill_end(struct etcd *e, const char *key, uint64_t token, bool present,
		      const uint8_t *v, size_t len)
{
	if (!token)
		return;
	pthread_mutex_lock(&e->mu);
	struct cent *c = cfind(e, key);
	uint8_t *copy = NULL;
	if (c && c->fill == token && !c->busy && cusable(e) && len <= ETCD_CACHE_MAX_VALUE &&
	    (!present || (copy = malloc(len ? len : 1)))) {
		if (present && len)
			memcpy(copy, v, len);
		cset(e, c, copy, len, present);
		c->fill = 0;
	}
	cevict(e);
	pthread_mutex_unlock(&e->mu);
}

static int etcd_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		    struct verr *err)
{
	struct etcd *e = (struct etcd *)p;
	*out = NULL;
	*len = 0;
	int rc = check_key(key, err);
	if (rc)
		return rc;
	uint64_t token = 0;
	if (cread(e, key, out, len, &token))
		return 0;
	char *k = full_key64(e, key);
	json_t *req = k ? json_pack("{s:s}", "key", k) : NULL;
	free(k);
	if (!req)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	json_t *res = NULL;
	rc = call(e, "/v3/kv/range", req, &res, err);
	json_decref(req);
	if (rc)
		return rc;
	json_t *kv = json_array_get(json_object_get(res, "kvs"), 0);
	if (kv) {
		const char *v = json_string_value(json_object_get(kv, "value"));
		/* an empty value is omitted by the gateway */
		if (!v)
			v = "";
		struct verr e2 = {0};
		if (b64_decode(out, len, v, false, &e2))
			rc = verr_set(err, VERR_INTERNAL, "etcd: value of %s is not base64", key);
	}
	json_decref(res);
	if (!rc)
		cfill_end(e, key, token, kv != NULL, *out, *len);
	return rc;
}

/* The guard every write carries while this node holds the lock. */
static json_t *lock_compare(struct etcd *e, bool *guarded)
{
	*guarded = false;
	json_t *cmp = json_array();
	pthread_mutex_lock(&e->mu);
	if (e->held && cmp) {
		char *lk = b64s(e->lock_key, strlen(e->lock_key));
		json_t *c = lk ? json_pack("{s:s,s:s,s:s,s:s}", "key", lk, "result", "EQUAL", "target",
					   "CREATE", "create_revision", e->create_rev)
			       : NULL;
		free(lk);
		if (c) {
			json_array_append_new(cmp, c);
			*guarded = true;
		}
	}
	pthread_mutex_unlock(&e->mu);
	return cmp;
}

static void fire_lost(struct etcd *e, const char *why)
{
	physical_ha_lost_fn fn = NULL;
	void *ctx = NULL;
	pthread_mutex_lock(&e->mu);
	if (e->held) {
		e->held = false;
		fn = e->lost;
		ctx = e->lost_ctx;
	}
	cclear(e);
	pthread_mutex_unlock(&e->mu);
	if (fn) {
		log_warn("storage", "etcd: HA lock lost (%s)", why);
		fn(ctx);
	}
}

/* Apply ops (array of request_put / request_delete_range) atomically;
 * lops are the same operations, for the cache. */
static int write_ops(struct etcd *e, json_t *ops, const struct physical_txn_op *lops, size_t n,
		     struct verr *err)
{
	bool guarded;
	json_t *cmp = lock_compare(e, &guarded);
	json_t *req = cmp ? json_pack("{s:o,s:O}", "compare", cmp, "success", ops) : NULL;
	if (!req)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	json_t *res = NULL;
	cwrite_begin(e, lops, n);
	int rc = call(e, "/v3/kv/txn", req, &res, err);
	json_decref(req);
	bool ok = rc == 0 && json_is_true(json_object_get(res, "succeeded"));
	cwrite_end(e, lops, n, ok); /* an error: the outcome is unknown */
	if (rc)
		return rc;
	json_decref(res);
	if (!ok && guarded) {
		fire_lost(e, "the lock key changed under this node");
		return verr_set(err, VERR_UNAVAILABLE,
				"etcd: this node no longer holds the HA lock; the write was not applied");
	}
	if (!ok)
		return verr_set(err, VERR_INTERNAL, "etcd: transaction was not applied");
	return 0;
}

static json_t *op_put(struct etcd *e, const char *key, const uint8_t *val, size_t len)
{
	char *k = full_key64(e, key), *v = b64s(val ? val : (const uint8_t *)"", len);
	json_t *o = k && v ? json_pack("{s:{s:s,s:s}}", "request_put", "key", k, "value", v) : NULL;
	free(k);
	free(v);
	return o;
}

static json_t *op_del(struct etcd *e, const char *key)
{
	char *k = full_key64(e, key);
	json_t *o = k ? json_pack("{s:{s:s}}", "request_delete_range", "key", k) : NULL;
	free(k);
	return o;
}

static int one_op(struct etcd *e, json_t *op, const struct physical_txn_op *lop,
		  struct verr *err)
{
	json_t *ops = op ? json_array() : NULL;
	if (!ops || json_array_append_new(ops, op)) {
		json_decref(ops);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	int rc = write_ops(e, ops, lop, 1, err);
	json_decref(ops);
	return rc;
}

static int etcd_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		    struct verr *err)
{
	struct etcd *e = (struct etcd *)p;
	int rc = check_key(key, err);
	if (rc)
		return rc;
	if (len > p->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE,
				"value of %zu bytes exceeds the etcd backend's max_entry_size (%zu)", len,
				p->max_entry_size);
	struct physical_txn_op lop = {.kind = PHYSICAL_TXN_PUT, .key = key, .val = val, .len = len};
	return one_op(e, op_put(e, key, val, len), &lop, err);
}

static int etcd_del(struct physical *p, const char *key, struct verr *err)
{
	struct etcd *e = (struct etcd *)p;
	int rc = check_key(key, err);
	if (rc)
		return rc;
	struct physical_txn_op lop = {.kind = PHYSICAL_TXN_DELETE, .key = key};
	return one_op(e, op_del(e, key), &lop, err);
}

static int etcd_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		    struct verr *err)
{
	struct etcd *e = (struct etcd *)p;
	if (n > ETCD_TXN_MAX)
		return verr_set(err, VERR_TOO_LARGE,
				"transaction of %zu operations exceeds etcd's limit of %d", n,
				ETCD_TXN_MAX);
	size_t total = 0;
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		int rc = check_key(ops[i].key, err);
		if (rc) {
			json_decref(arr);
			return rc;
		}
		if (ops[i].kind == PHYSICAL_TXN_PUT && ops[i].len > p->max_entry_size) {
			json_decref(arr);
			return verr_set(err, VERR_TOO_LARGE, "value of %zu bytes exceeds max_entry_size",
					ops[i].len);
		}
		/* etcd refuses a key twice in one txn: the last op on a key wins */
		bool later = false;
		for (size_t j = i + 1; j < n && !later; j++)
			later = !strcmp(ops[i].key, ops[j].key);
		if (later)
			continue;
		total += ops[i].len;
		json_t *o = ops[i].kind == PHYSICAL_TXN_PUT
				    ? op_put(e, ops[i].key, ops[i].val, ops[i].len)
				    : op_del(e, ops[i].key);
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (total / 3 * 4 > (size_t)ETCD_MAX_REQUEST * 1024) {
		json_decref(arr);
		return verr_set(err, VERR_TOO_LARGE, "transaction of %zu bytes exceeds etcd's request limit",
				total);
	}
	int rc = write_ops(e, arr, ops, n, err);
	json_decref(arr);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int etcd_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		     struct verr *err)
{
	struct etcd *e = (struct etcd *)p;
	*out = NULL;
	*n = 0;
	struct buf full = {0};
	buf_str(&full, e->prefix);
	buf_str(&full, prefix);
	if (full.failed) {
		buf_free(&full);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	size_t plen = full.len;
	char *end = range_end64(full.p, plen);
	char *start = b64s(full.p, plen);
	char **items = NULL;
	size_t ni = 0, cap = 0;
	int rc = end && start ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	while (rc == 0 && start) {
		json_t *req = json_pack("{s:s,s:s,s:b,s:i,s:s,s:s}", "key", start, "range_end", end,
					"keys_only", 1, "limit", ETCD_LIST_PAGE, "sort_order",
					"ASCEND", "sort_target", "KEY");
		json_t *res = NULL;
		rc = req ? call(e, "/v3/kv/range", req, &res, err)
			 : verr_set(err, VERR_INTERNAL, "out of memory");
		json_decref(req);
		if (rc)
			break;
		json_t *kvs = json_object_get(res, "kvs");
		bool more = json_is_true(json_object_get(res, "more"));
		free(start);
		start = NULL;
		size_t i;
		json_t *kv;
		uint8_t *last = NULL; /* the last key of this page (raw) */
		size_t last_len = 0;
		bool last_in_folder = false;
		json_array_foreach(kvs, i, kv) {
			const char *k64 = json_string_value(json_object_get(kv, "key"));
			uint8_t *k = NULL;
			size_t kl = 0;
			struct verr e2 = {0};
			if (!k64 || b64_decode(&k, &kl, k64, false, &e2) || kl <= plen ||
			    memcmp(k, full.p, plen)) {
				free(k);
				continue;
			}
			const char *rel = (const char *)k + plen;
			size_t rl = kl - plen;
			const char *slash = memchr(rel, '/', rl);
			size_t cl = slash ? (size_t)(slash - rel) + 1 : rl;
			/* a folder's keys are contiguous in key order */
			bool dup = ni && strlen(items[ni - 1]) == cl && !memcmp(items[ni - 1], rel, cl);
			if (!dup) {
				if (ni == cap) {
					cap = cap ? cap * 2 : 64;
					char **t = realloc(items, cap * sizeof(*items));
					if (!t) {
						free(k);
						rc = verr_set(err, VERR_INTERNAL, "out of memory");
						break;
					}
					items = t;
				}
				if (!(items[ni] = strndup(rel, cl))) {
					free(k);
					rc = verr_set(err, VERR_INTERNAL, "out of memory");
					break;
				}
				ni++;
			}
			free(last);
			last = k;
			last_len = slash ? plen + cl : kl;
			last_in_folder = slash != NULL;
		}
		json_decref(res);
		if (rc == 0 && more && last) {
			if (last_in_folder) {
				/* skip the folder's subtree: resume just after
				 * <prefix><child>/... , i.e. at <prefix><child>'0' */
				last[last_len - 1] = '/' + 1;
				start = b64s(last, last_len);
			} else {
				/* just after the last key: the key + NUL */
				uint8_t *t = realloc(last, last_len + 1);
				if (t) {
					last = t;
					last[last_len] = 0;
					start = b64s(last, last_len + 1);
				}
			}
			if (!start)
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
		}
		free(last);
	}
	free(start);
	free(end);
	buf_free(&full);
	if (rc) {
		physical_list_free(items, ni);
		return rc;
	}
	if (ni)
		qsort(items, ni, sizeof(*items), cmp_str);
	*out = items;
	*n = ni;
	return 0;
}

/* ---- HA lock ---- */

/* Read the lock key (*res: etcd's range answer). */
static int range_lock(struct etcd *e, bool keys_only, json_t **res, struct verr *err)
{
	*res = NULL;
	char *lk = b64s(e->lock_key, strlen(e->lock_key));
	json_t *req = lk ? json_pack("{s:s}", "key", lk) : NULL;
	free(lk);
	if (req && keys_only)
		json_object_set_new(req, "keys_only", json_true());
	int rc = req ? call(e, "/v3/kv/range", req, res, err)
		     : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(req);
	return rc;
}

/* Remember the revision a standby watches the lock key from: the one just
 * after the answer (header.revision) that showed the key held. */
static void set_watch_rev(struct etcd *e, const json_t *res)
{
	const char *rev = json_string_value(
		json_object_get(json_object_get(res, "header"), "revision"));
	long long r = rev ? strtoll(rev, NULL, 10) : 0;
	pthread_mutex_lock(&e->mu);
	if (r > 0)
		snprintf(e->watch_rev, sizeof(e->watch_rev), "%lld", r + 1);
	else
		e->watch_rev[0] = '\0';
	pthread_mutex_unlock(&e->mu);
}

/* Is the lock key there? 1 held by someone (watch_rev set), 0 free, <0. A
 * standby asks this first: a read, where granting and revoking a lease
 * each time would be two raft writes. */
static int lock_present(struct etcd *e, struct verr *err)
{
	json_t *res = NULL;
	int rc = range_lock(e, true, &res, err);
	if (rc)
		return rc;
	bool present = json_array_size(json_object_get(res, "kvs")) > 0;
	if (present)
		set_watch_rev(e, res);
	json_decref(res);
	return present ? 1 : 0;
}

static int ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
		      void *ctx, struct verr *err)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	int rc = lock_present(e, err);
	if (rc)
		return rc > 0 ? 0 : rc;
	json_t *res = NULL;
	json_t *req = json_pack("{s:I}", "TTL", (json_int_t)e->lock_ttl_s);
	/* the lease lives at least a TTL from here, whatever happens next */
	int64_t granted_ms = mono_ms();
	rc = req ? call(e, "/v3/lease/grant", req, &res, err)
		 : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(req);
	if (rc)
		return rc;
	const char *lid = json_string_value(json_object_get(res, "ID"));
	char lease[32];
	snprintf(lease, sizeof(lease), "%s", lid ? lid : "");
	json_decref(res);
	if (!lease[0])
		return verr_set(err, VERR_INTERNAL, "etcd: lease grant returned no ID");

	char *lk = b64s(e->lock_key, strlen(e->lock_key));
	char *v = b64s(value ? value : "", value ? strlen(value) : 0);
	req = lk && v ? json_pack("{s:[{s:s,s:s,s:s,s:s}],s:[{s:{s:s,s:s,s:s}}],s:[{s:{s:s}}]}",
				  "compare", "key", lk, "result", "EQUAL", "target", "CREATE",
				  "create_revision", "0", "success", "request_put", "key", lk,
				  "value", v, "lease", lease, "failure", "request_range", "key", lk)
		      : NULL;
	free(v);
	free(lk);
	rc = req ? call(e, "/v3/kv/txn", req, &res, err)
		 : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(req);
	bool won = rc == 0 && json_is_true(json_object_get(res, "succeeded"));
	const char *rev = json_string_value(
		json_object_get(json_object_get(res, "header"), "revision"));
	if (won && rev) {
		pthread_mutex_lock(&e->mu);
		e->held = true;
		snprintf(e->lease, sizeof(e->lease), "%s", lease);
		snprintf(e->create_rev, sizeof(e->create_rev), "%s", rev);
		e->lost = lost;
		e->lost_ctx = ctx;
		e->last_renew_ms = granted_ms;
		cclear(e); /* whatever a previous term read is not trusted */
		pthread_mutex_unlock(&e->mu);
		json_decref(res);
		log_info("storage", "etcd: HA lock acquired");
		return 1;
	}
	if (rc == 0)
		set_watch_rev(e, res); /* another node won the race: watch its key */
	json_decref(res);
	/* not ours: give the unused lease back */
	json_t *rq = json_pack("{s:s}", "ID", lease);
	json_t *rr = NULL;
	struct verr e2 = {0};
	if (rq && call(e, "/v3/lease/revoke", rq, &rr, &e2) == 0)
		json_decref(rr);
	json_decref(rq);
	return rc ? rc : 0;
}

/* ---- standby: watch the lock key ---- */

struct watch_state {
	struct buf line; /* the gateway streams one JSON object a line */
	bool created, deleted, canceled, failed;
};

static void watch_line(struct watch_state *w, const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL);
	json_t *r = json_object_get(j, "result");
	if (!r) {
		w->failed = true; /* {"error": ...}: etcd refused the watch */
	} else {
		if (json_is_true(json_object_get(r, "created")))
			w->created = true;
		if (json_is_true(json_object_get(r, "canceled")))
			w->canceled = true; /* e.g. the revision was compacted */
		size_t i;
		json_t *ev;
		json_array_foreach(json_object_get(r, "events"), i, ev) {
			/* the gateway omits the default type (PUT) */
			const char *t = json_string_value(json_object_get(ev, "type"));
			if (t && !strcmp(t, "DELETE"))
				w->deleted = true;
		}
	}
	json_decref(j);
}

static size_t on_watch(char *p, size_t sz, size_t n, void *ud)
{
	struct watch_state *w = ud;
	buf_add(&w->line, p, sz * n);
	if (w->line.failed)
		return 0;
	char *nl;
	while ((nl = memchr(w->line.p, '\n', w->line.len))) {
		size_t l = (size_t)(nl - w->line.p);
		watch_line(w, w->line.p, l);
		memmove(w->line.p, nl + 1, w->line.len - l - 1);
		w->line.len -= l + 1;
	}
	/* stop at the news the standby waits for, or at an answer that ends it */
	return w->deleted || w->canceled || w->failed ? 0 : sz * n;
}

/* The watch's own socket, so wake can shut it down from another thread. */
static curl_socket_t watch_open(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct etcd *e = ud;
	(void)purpose;
	pthread_mutex_lock(&e->mu);
	curl_socket_t fd = CURL_SOCKET_BAD;
	if (!e->wake_pending) {
		fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
		e->watch_fd = fd;
	}
	pthread_mutex_unlock(&e->mu);
	return fd;
}

static int watch_close(void *ud, curl_socket_t fd)
{
	struct etcd *e = ud;
	pthread_mutex_lock(&e->mu);
	if (e->watch_fd == fd)
		e->watch_fd = -1;
	pthread_mutex_unlock(&e->mu);
	return close(fd);
}

/* Wait for the lock key to be deleted (the holder's lease expired or was
 * revoked): a /v3/watch from just after the revision acquire saw it held,
 * so a deletion in between is not missed. */
static int ha_wait(struct physical_ha *h, int timeout_ms)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	char rev[32];
	pthread_mutex_lock(&e->mu);
	bool woken = e->wake_pending;
	e->wake_pending = false;
	snprintf(rev, sizeof(rev), "%s", e->watch_rev);
	pthread_mutex_unlock(&e->mu);
	if (woken)
		return 0;
	if (!rev[0])
		return -1;
	char *lk = b64s(e->lock_key, strlen(e->lock_key));
	json_t *req = lk ? json_pack("{s:{s:s,s:s}}", "create_request", "key", lk,
				     "start_revision", rev)
			 : NULL;
	free(lk);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	CURL *c = body ? curl_easy_init() : NULL;
	if (!c) {
		free(body);
		return -1;
	}
	const char *ep = e->endpoints[atomic_load(&e->cur) % e->nendpoints];
	struct verr err = {0};
	char *auth = auth_header(e, ep, &err);
	char url[1024], ah[600], cerr[CURL_ERROR_SIZE];
	snprintf(url, sizeof(url), "%s/v3/watch", ep);
	struct curl_slist *hdr = NULL;
	struct watch_state w = {0};
	setup_handle(e, c, url, body, &hdr, auth, ah, sizeof(ah), timeout_ms, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_watch);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, watch_open);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, e);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, watch_close);
	curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, e);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	if (auth) {
		explicit_bzero(ah, sizeof(ah));
		free(auth);
	}
	free(body);
	buf_free(&w.line);
	pthread_mutex_lock(&e->mu);
	woken = e->wake_pending;
	e->wake_pending = false;
	pthread_mutex_unlock(&e->mu);
	if (w.deleted)
		return 1;
	if (woken || w.canceled || (cc == CURLE_OPERATION_TIMEDOUT && w.created))
		return 0;
	return -1; /* unreachable, refused, or etcd ended the stream */
}

static void ha_wake(struct physical_ha *h)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	pthread_mutex_lock(&e->mu);
	e->wake_pending = true;
	if (e->watch_fd >= 0)
		shutdown(e->watch_fd, SHUT_RDWR); /* the watch's poll returns now */
	pthread_mutex_unlock(&e->mu);
}

static int ha_renew(struct physical_ha *h, struct verr *err)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	char lease[32];
	pthread_mutex_lock(&e->mu);
	bool held = e->held;
	snprintf(lease, sizeof(lease), "%s", e->lease);
	int64_t since = mono_ms() - e->last_renew_ms;
	pthread_mutex_unlock(&e->mu);
	if (!held)
		return verr_set(err, VERR_UNAVAILABLE, "etcd: the HA lock is not held");
	/* the lease may have run out while we could not reach etcd */
	if (since >= e->lock_ttl_s * 1000) {
		fire_lost(e, "lease not renewed within its TTL");
		return verr_set(err, VERR_UNAVAILABLE, "etcd: HA lock lease expired");
	}
	json_t *req = json_pack("{s:s}", "ID", lease), *res = NULL;
	int64_t t0 = mono_ms();
	int rc = req ? call(e, "/v3/lease/keepalive", req, &res, err)
		     : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(req);
	if (rc)
		return rc; /* the loop steps down; the guard protects writes meanwhile */
	json_t *r = json_object_get(res, "result");
	const char *ttl = json_string_value(json_object_get(r ? r : res, "TTL"));
	bool alive = ttl && strtol(ttl, NULL, 10) > 0;
	json_decref(res);
	if (!alive) {
		fire_lost(e, "lease expired");
		return verr_set(err, VERR_UNAVAILABLE, "etcd: HA lock lease expired");
	}
	/* and the key is still ours (an operator may have deleted it) */
	rc = range_lock(e, true, &res, err);
	if (rc)
		return rc;
	json_t *kv = json_array_get(json_object_get(res, "kvs"), 0);
	const char *cr = json_string_value(json_object_get(kv, "create_revision"));
	pthread_mutex_lock(&e->mu);
	bool mine = cr && !strcmp(cr, e->create_rev);
	if (mine)
		e->last_renew_ms = t0;
	pthread_mutex_unlock(&e->mu);
	json_decref(res);
	if (!mine) {
		fire_lost(e, "the lock key was removed or replaced");
		return verr_set(err, VERR_UNAVAILABLE, "etcd: HA lock key is no longer ours");
	}
	return 0;
}

static void ha_release(struct physical_ha *h)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	char lease[32];
	pthread_mutex_lock(&e->mu);
	snprintf(lease, sizeof(lease), "%s", e->lease);
	e->held = false;
	e->lease[0] = '\0';
	e->create_rev[0] = '\0';
	cclear(e);
	pthread_mutex_unlock(&e->mu);
	if (!lease[0])
		return;
	/* revoking the lease deletes the lock key at once: fast failover */
	json_t *req = json_pack("{s:s}", "ID", lease), *res = NULL;
	struct verr err = {0};
	if (req && call(e, "/v3/lease/revoke", req, &res, &err) == 0)
		json_decref(res);
	else
		log_warn("storage", "etcd: releasing the HA lock: %s", err.msg);
	json_decref(req);
}

static int ha_holder(struct physical_ha *h, char **value, struct verr *err)
{
	struct etcd *e = ((struct etcd_ha *)h)->e;
	*value = NULL;
	json_t *res = NULL;
	int rc = range_lock(e, false, &res, err);
	if (rc)
		return rc;
	json_t *kv = json_array_get(json_object_get(res, "kvs"), 0);
	const char *v = json_string_value(json_object_get(kv, "value"));
	size_t vl = 0;
	struct verr e2 = {0};
	if (kv && b64_decode((uint8_t **)value, &vl, v ? v : "", false, &e2))
		rc = verr_set(err, VERR_INTERNAL, "etcd: lock value is not base64");
	json_decref(res);
	return rc;
}

static const struct physical_ha_ops etcd_ha_ops = {
	.version = PHYSICAL_HA_VERSION,
	.name = "etcd",
	.acquire = ha_acquire,
	.renew = ha_renew,
	.release = ha_release,
	.holder = ha_holder,
	.wait = ha_wait,
	.wake = ha_wake,
};

static struct physical_ha *etcd_ha(struct physical *p)
{
	struct etcd *e = (struct etcd *)p;
	return e->ha ? &e->ha->base : NULL;
}

/* ---- open / close ---- */

static void etcd_close(struct physical *p)
{
	struct etcd *e = (struct etcd *)p;
	if (!e)
		return;
	for (size_t i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	for (size_t i = 0; i < e->nidle; i++)
		curl_easy_cleanup(e->idle[i]);
	free(e->idle);
	free(e->prefix);
	free(e->lock_key);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e->server_name);
	free(e->username);
	free(e->password);
	free(e->auth_token);
	if (e->cbuckets) {
		while (e->lru_head)
			cremove(e, e->lru_head);
		free(e->cbuckets);
	}
	free(e->ha);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

static const char *opt_str(const json_t *conf, const char *k)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int opt_bool(const json_t *conf, const char *k, bool *out, struct verr *err)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	if (!v)
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s && (!strcmp(s, "true") || !strcmp(s, "1"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "0") || !*s)) {
		*out = false;
		return 0;
	}
	return verr_set(err, VERR_INVALID, "storage \"etcd\": %s: expected a boolean", k);
}

static int opt_duration_ms(const json_t *conf, const char *k, long def_ms, long *out,
			   struct verr *err)
{
	int64_t secs;
	int rc = physical__opt_seconds(conf, "etcd", k, def_ms / 1000, 1, 3600, &secs, err);
	if (!rc)
		*out = (long)secs * 1000;
	return rc;
}

#define DUP_OPT(field, name)                                                                \
	do {                                                                                \
		const char *s_ = opt_str(conf, name);                                       \
		if (s_ && *s_ && !(e->field = strdup(s_))) {                                \
			rc = verr_set(err, VERR_INTERNAL, "out of memory");                  \
			goto out;                                                           \
		}                                                                           \
	} while (0)

int physical_etcd_new(struct physical **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	const char *api = opt_str(conf, "etcd_api");
	if (api && strcmp(api, "v3") && strcmp(api, "3"))
		return verr_set(err, VERR_INVALID,
				"storage \"etcd\": etcd_api \"%s\" is not supported (only v3)", api);
	if (!curl_dl_load())
		return verr_set(err, VERR_UNAVAILABLE,
				"storage \"etcd\": libcurl (libcurl.so.4) could not be loaded");
	struct etcd *e = calloc(1, sizeof(*e));
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	e->base.ops = &etcd_ops;
	e->base.durable = 1; /* acknowledged after the raft commit in etcd */
	e->base.max_entry_size = PHYSICAL_DEFAULT_MAX_ENTRY;
	pthread_mutex_init(&e->mu, NULL);
	e->watch_fd = -1;
	int rc = 0;
	const char *addr = opt_str(conf, "address");
	if (!addr)
		addr = getenv("ETCD_ADDR");
	char *list = strdup(addr && *addr ? addr : "http://127.0.0.1:2379");
	if (!list) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t l = strlen(t);
		while (l && (t[l - 1] == ' ' || t[l - 1] == '/'))
			t[--l] = '\0';
		if (!l)
			continue;
		if (strncmp(t, "http://", 7) && strncmp(t, "https://", 8)) {
			rc = verr_set(err, VERR_INVALID,
				      "storage \"etcd\": address \"%s\" must start with http:// or https://",
				      t);
			break;
		}
		if (e->nendpoints == ETCD_MAX_ENDPOINTS) {
			rc = verr_set(err, VERR_INVALID, "storage \"etcd\": more than %d addresses",
				      ETCD_MAX_ENDPOINTS);
			break;
		}
		if (!(e->endpoints[e->nendpoints++] = strdup(t))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			break;
		}
	}
	free(list);
	if (rc)
		goto out;
	if (!e->nendpoints) {
		rc = verr_set(err, VERR_INVALID, "storage \"etcd\": address is empty");
		goto out;
	}
	const char *path = opt_str(conf, "path");
	if (!path || !*path)
		path = "/vault/";
	size_t pl = strlen(path);
	e->prefix = malloc(pl + 2);
	if (!e->prefix) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(e->prefix, pl + 2, "%s%s", path, path[pl - 1] == '/' ? "" : "/");
	e->lock_key = malloc(strlen(e->prefix) + sizeof("core/lock"));
	if (!e->lock_key) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(e->lock_key, strlen(e->prefix) + sizeof("core/lock"), "%score/lock", e->prefix);
	long lock_ms = 0;
	if ((rc = opt_duration_ms(conf, "request_timeout", 5000, &e->timeout_ms, err)) ||
	    (rc = opt_duration_ms(conf, "lock_timeout", 15000, &lock_ms, err)))
		goto out;
	e->lock_ttl_s = lock_ms / 1000;
	DUP_OPT(ca_file, "tls_ca_file");
	DUP_OPT(cert_file, "tls_cert_file");
	DUP_OPT(key_file, "tls_key_file");
	DUP_OPT(server_name, "tls_server_name");
	DUP_OPT(username, "username");
	DUP_OPT(password, "password");
	if (!!e->username != !!e->password) {
		rc = verr_set(err, VERR_INVALID,
			      "storage \"etcd\": username and password must be set together");
		goto out;
	}
	const char *mp = opt_str(conf, "max_parallel");
	e->max_parallel = mp ? strtoul(mp, NULL, 10) : 128;
	if (e->max_parallel < 1 || e->max_parallel > 4096)
		e->max_parallel = 128;
	e->idle = calloc(e->max_parallel, sizeof(*e->idle));
	if (!e->idle) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const char *mes = opt_str(conf, "max_entry_size");
	if (mes) {
		char *endp = NULL;
		unsigned long long v = strtoull(mes, &endp, 10);
		if (!endp || *endp || v < 1024 || v > 1024 * 1024) {
			rc = verr_set(err, VERR_INVALID,
				      "storage \"etcd\": max_entry_size must be between 1024 and 1048576 "
				      "bytes (etcd's request limit is 1.5 MiB)");
			goto out;
		}
		e->base.max_entry_size = (size_t)v;
	}
	bool ha_enabled = false;
	if ((rc = opt_bool(conf, "ha_enabled", &ha_enabled, err)))
		goto out;
	if (ha_enabled) {
		e->ha = calloc(1, sizeof(*e->ha));
		if (!e->ha) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		e->ha->base.ops = &etcd_ha_ops;
		/* the holder's read cache, unless the top-level disable_cache
		 * (Vault's key; the server passes it and cache_size on) */
		bool no_cache = false;
		if ((rc = opt_bool(conf, "disable_cache", &no_cache, err)))
			goto out;
		const char *cs = opt_str(conf, "cache_size");
		long long cmax = cs ? strtoll(cs, NULL, 10) : 0;
		e->cmax = cmax > 0 ? (size_t)cmax : ETCD_CACHE_MAX_ENTRIES;
		if (!no_cache && !(e->cbuckets = calloc(ETCD_CACHE_BUCKETS, sizeof(*e->cbuckets)))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		e->ha->base.renew_interval_ms = (int)(e->lock_ttl_s * 1000 / 3);
		/* a standby retries often enough that failover is TTL + ~0.1 TTL */
		e->ha->base.retry_interval_ms = e->lock_ttl_s >= 10 ? 1000 : (int)(e->lock_ttl_s * 100);
		e->ha->e = e;
	}
	/* reach etcd once now: a wrong address fails start-up clearly */
	uint8_t *v = NULL;
	size_t vl = 0;
	rc = etcd_get(&e->base, "core/seal-config", &v, &vl, err);
	free(v);
	if (rc)
		log_warn("storage", "etcd not reachable yet: %s", err->msg);
	rc = 0;
out:
	if (rc) {
		etcd_close(&e->base);
		return rc;
	}
	*out = &e->base;
	return 0;
}

static const struct physical_ops etcd_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "etcd",
	.get = etcd_get,
	.put = etcd_put,
	.del = etcd_del,
	.list = etcd_list,
	.close = etcd_close,
	.txn = etcd_txn,
	.ha = etcd_ha,
};
