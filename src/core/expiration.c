/*
 * expiration.c - the expiration manager (API and contract in expiration.h,
 * operator's view in docs/leases.md).
 *
 * DESIGN
 *
 * Storage (below the barrier, under the manager's prefix, "sys/expire/"):
 *   id/<lease_id>                               the lease record (JSON)
 *   due/<bucket>/<expire_ms>.<escaped lease_id>  empty: the deadline index
 * bucket = expire_ms >> 16 as 10 hex digits (65.5 s wide), so listing
 * "due/" gives the buckets in deadline order and each bucket's listing gives
 * ids with their exact deadlines without reading (or decrypting) a record.
 * The escaped id has '%' -> "%25" and '/' -> "%2F" so it is one key segment.
 *
 * Invariants:
 *   I1 Every stored record has an index entry at its expire_ms. Writes put
 *      the index entry before the record and delete it after the record, so
 *      a crash can leave an index entry without a record (harmless: it fires,
 *      finds no record and is dropped; tidy deletes it) but never a record
 *      without one.
 *   I2 A worker never trusts the heap alone: before revoking it re-reads the
 *      record. A record whose expire_ms moved (renewed) is rescheduled; a
 *      missing record is dropped. So the heap may hold stale or duplicate
 *      deadlines (restore racing a renew) without harm, only early wake-ups.
 *   I3 A lease leaves storage only after its revoke callback succeeded (or
 *      force). A failed revoke is retried with exponential backoff
 *      (backoff_min .. backoff_max), forever.
 *
 * Memory: one `struct lnode` per lease: the deadline, heap position and the
 * id split into an interned prefix (the request path, shared by every lease
 * of that path) and its last segment (hex-packed when it is hex, as token
 * hashes are). Records stay in storage; nothing else is cached.
 *
 * Threads and locks:
 *   - `workers` threads share one loop: pop the heap minimum when due and
 *     revoke it, else sleep on `cv` until the minimum's deadline. One of them
 *     first runs the restore (bucket by bucket, soonest first), inserting
 *     nodes in batches so the others expire what is due meanwhile.
 *   - `mu` guards the heap, the id map, the prefix table and node flags. It
 *     is the innermost lock: nothing else is taken while holding it.
 *   - `stripes[hash(id) % NSTRIPES]` serialise storage changes per lease
 *     (put/renew/revoke/forget/expiry). A "secret" lease's revoke callback
 *     runs with its stripe held. A "token" lease's callback runs without it,
 *     because the token store calls expiration_forget (which takes the
 *     stripe) from under its own mutex: order is token mutex -> stripe -> mu.
 *   - A node a worker is processing is BUSY (out of the heap). Others only
 *     flag it (RESCHED with a new fire time, DEAD, REVOKE); the worker
 *     applies the flags when it finishes.
 */
#include "core/expiration.h"
#include "core/telemetry.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define NSTRIPES 64
#define BUCKET_SHIFT 16
#define RESTORE_BATCH 512
#define NOT_IN_HEAP UINT32_MAX
#define KEY_MAX (PHYSICAL_MAX_KEY + 1)

struct prefix {
	struct prefix *next;
	uint32_t refs;
	uint32_t len;
	char s[]; /* includes the trailing '/' ("" for ids without one) */
};

enum {
	NF_BUSY = 1,    /* a worker is processing it (not in the heap) */
	NF_DEAD = 2,    /* forgotten/revoked while busy: free when done */
	NF_RESCHED = 4, /* fire_ms changed while busy: re-push when done */
	NF_HEX = 8,     /* tail is hex-packed */
	NF_REVOKE = 16, /* revoke when it fires, even if not expired */
};

struct lnode {
	struct lnode *next;  /* id map chain */
	struct prefix *pfx;
	int64_t fire_ms;     /* heap key */
	uint32_t heap_idx;
	uint16_t retries;
	uint16_t tlen;       /* bytes in tail */
	uint8_t flags;
	unsigned char tail[];
};

struct expiration {
	struct physical *phys;
	char prefix[128];
	struct expiration_ops ops;

	pthread_mutex_t mu;
	pthread_cond_t cv;          /* workers: heap changed / stop */
	pthread_cond_t restored_cv; /* restore finished */
	bool stop, started, restoring, restore_claimed;
	int64_t restore_start, restore_ms;

	struct lnode **heap;
	uint32_t nheap, capheap;
	struct lnode **tab;
	size_t ntab, count;
	struct prefix **ptab;
	size_t nptab, npfx;
	uint64_t revoked, retries;

	pthread_t *threads;
	int nthreads;
	pthread_mutex_t stripes[NSTRIPES];
};

/* ---- clock ---- */

static int64_t real_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct expiration *e)
{
	return e->ops.now_ms ? e->ops.now_ms(e->ops.ctx) : real_now_ms();
}

/* ---- ids ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		/* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): restore() schedules only the ids parse_due wrote */
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#define FNV_INIT 14695981039346656037ULL

static uint64_t id_hash(const char *id)
{
	return fnv(FNV_INIT, id, strlen(id));
}

static const char HEX[] = "0123456789abcdef";

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Split at the last '/': prefix length (including the '/'). */
static size_t id_split(const char *id)
{
	const char *s = strrchr(id, '/');
	return s ? (size_t)(s - id + 1) : 0;
}

static bool tail_is_hex(const char *t, size_t n)
{
	if (n == 0 || n % 2)
		return false;
	for (size_t i = 0; i < n; i++)
		if (hexval(t[i]) < 0)
			return false;
	return true;
}

/* Write the node's id into buf (cap >= KEY_MAX). */
static void node_id(const struct lnode *n, char *buf, size_t cap)
{
	size_t o = 0;
	size_t pl = n->pfx->len;
	if (pl >= cap)
		pl = cap - 1;
	memcpy(buf, n->pfx->s, pl);
	o = pl;
	if (n->flags & NF_HEX) {
		for (size_t i = 0; i < n->tlen && o + 2 < cap; i++) {
			buf[o++] = HEX[n->tail[i] >> 4];
			buf[o++] = HEX[n->tail[i] & 15];
		}
	} else {
		size_t tl = n->tlen;
		if (o + tl >= cap)
			tl = cap - 1 - o;
		memcpy(buf + o, n->tail, tl);
		o += tl;
	}
	buf[o] = '\0';
}

static bool node_is(const struct lnode *n, const char *id, size_t pl, const char *tail,
		    size_t tl)
{
	if (n->pfx->len != pl || memcmp(n->pfx->s, id, pl) != 0)
		return false;
	if (n->flags & NF_HEX) {
		if (tl != (size_t)n->tlen * 2)
			return false;
		for (size_t i = 0; i < n->tlen; i++)
			if (tail[2 * i] != HEX[n->tail[i] >> 4] || tail[2 * i + 1] != HEX[n->tail[i] & 15])
				return false;
		return true;
	}
	return tl == n->tlen && memcmp(n->tail, tail, tl) == 0;
}

static uint64_t node_hash(const struct lnode *n)
{
	char buf[KEY_MAX];
	node_id(n, buf, sizeof(buf));
	return id_hash(buf);
}

static pthread_mutex_t *stripe(struct expiration *e, const char *id)
{
	return &e->stripes[id_hash(id) % NSTRIPES];
}

/* ---- prefixes (mu held) ---- */

static struct prefix *pfx_get(struct expiration *e, const char *s, size_t len)
{
	if (e->npfx >= e->nptab) {
		size_t nn = e->nptab ? e->nptab * 2 : 64;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
		struct prefix **nt = calloc(nn, sizeof(*nt));
		if (!nt)
			return NULL;
		for (size_t i = 0; i < e->nptab; i++) {
			struct prefix *p = e->ptab[i];
			while (p) {
				struct prefix *nx = p->next;
				size_t b = fnv(FNV_INIT, p->s, p->len) & (nn - 1);
				p->next = nt[b];
				nt[b] = p;
				p = nx;
			}
		}
		free(e->ptab);
		e->ptab = nt;
		e->nptab = nn;
	}
	size_t b = fnv(FNV_INIT, s, len) & (e->nptab - 1);
	for (struct prefix *p = e->ptab[b]; p; p = p->next)
		if (p->len == len && memcmp(p->s, s, len) == 0) {
			p->refs++;
			return p;
		}
	struct prefix *p = malloc(sizeof(*p) + len + 1);
	if (!p)
		return NULL;
	p->refs = 1;
	p->len = (uint32_t)len;
	memcpy(p->s, s, len);
	p->s[len] = '\0';
	p->next = e->ptab[b];
	e->ptab[b] = p;
	e->npfx++;
	return p;
}

static void pfx_put(struct expiration *e, struct prefix *p)
{
	if (--p->refs)
		return;
	size_t b = fnv(FNV_INIT, p->s, p->len) & (e->nptab - 1);
	for (struct prefix **pp = &e->ptab[b]; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	e->npfx--;
	free(p);
}

/* ---- heap (mu held) ---- */

static bool before(const struct lnode *a, const struct lnode *b)
{
	return a->fire_ms < b->fire_ms;
}

static void heap_set(struct expiration *e, uint32_t i, struct lnode *n)
{
	e->heap[i] = n;
	n->heap_idx = i;
}

static void sift_up(struct expiration *e, uint32_t i)
{
	struct lnode *n = e->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!before(n, e->heap[p]))
			break;
		heap_set(e, i, e->heap[p]);
		i = p;
	}
	heap_set(e, i, n);
}

static void sift_down(struct expiration *e, uint32_t i)
{
	struct lnode *n = e->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const struct lnode *best = n;
		if (l < e->nheap && before(e->heap[l], best)) {
			m = l;
			best = e->heap[l];
		}
		if (r < e->nheap && before(e->heap[r], best))
			m = r;
		if (m == i)
			break;
		heap_set(e, i, e->heap[m]);
		i = m;
	}
	heap_set(e, i, n);
}

static int heap_push(struct expiration *e, struct lnode *n)
{
	if (e->nheap == e->capheap) {
		uint32_t nc = e->capheap ? e->capheap * 2 : 1024;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
		struct lnode **nh = realloc(e->heap, (size_t)nc * sizeof(*nh));
		if (!nh)
			return VERR_INTERNAL;
		e->heap = nh;
		e->capheap = nc;
	}
	heap_set(e, e->nheap++, n);
	sift_up(e, n->heap_idx);
	return 0;
}

static void heap_remove(struct expiration *e, struct lnode *n)
{
	uint32_t i = n->heap_idx;
	if (i == NOT_IN_HEAP)
		return;
	n->heap_idx = NOT_IN_HEAP;
	struct lnode *last = e->heap[--e->nheap];
	if (i == e->nheap)
		return;
	heap_set(e, i, last);
	sift_up(e, i);
	sift_down(e, last->heap_idx);
}

static void heap_fix(struct expiration *e, struct lnode *n)
{
	sift_up(e, n->heap_idx);
	sift_down(e, n->heap_idx);
}

/* ---- id map (mu held) ---- */

static struct lnode *map_find(struct expiration *e, const char *id, uint64_t h)
{
	if (!e->ntab)
		return NULL;
	size_t pl = id_split(id);
	const char *tail = id + pl;
	size_t tl = strlen(tail);
	for (struct lnode *n = e->tab[h & (e->ntab - 1)]; n; n = n->next)
		if (node_is(n, id, pl, tail, tl))
			return n;
	return NULL;
}

static int map_grow(struct expiration *e)
{
	size_t nn = e->ntab ? e->ntab * 2 : 1024;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	struct lnode **nt = calloc(nn, sizeof(*nt));
	if (!nt)
		return VERR_INTERNAL;
	for (size_t i = 0; i < e->ntab; i++) {
		struct lnode *n = e->tab[i];
		while (n) {
			struct lnode *nx = n->next;
			size_t b = node_hash(n) & (nn - 1);
			n->next = nt[b];
			nt[b] = n;
			n = nx;
		}
	}
	free(e->tab);
	e->tab = nt;
	e->ntab = nn;
	return 0;
}

static void map_remove(struct expiration *e, struct lnode *n, uint64_t h)
{
	for (struct lnode **pp = &e->tab[h & (e->ntab - 1)]; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			e->count--;
			return;
		}
}

static void node_free(struct expiration *e, struct lnode *n)
{
	pfx_put(e, n->pfx);
	free(n);
}

/* Remove a node that is not busy from the heap and the map and free it. */
static void node_drop(struct expiration *e, struct lnode *n, uint64_t h)
{
	heap_remove(e, n);
	map_remove(e, n, h);
	node_free(e, n);
}

/* Find or create the node for id. NULL on OOM. *created set when new. */
static struct lnode *node_get(struct expiration *e, const char *id, uint64_t h, bool *created)
{
	*created = false;
	struct lnode *n = map_find(e, id, h);
	if (n)
		return n;
	if (e->count >= e->ntab && map_grow(e))
		return NULL;
	size_t pl = id_split(id);
	const char *tail = id + pl;
	size_t tl = strlen(tail);
	bool hex = tail_is_hex(tail, tl) && tl / 2 <= UINT16_MAX;
	size_t bytes = hex ? tl / 2 : tl;
	if (bytes > UINT16_MAX)
		return NULL;
	n = malloc(offsetof(struct lnode, tail) + bytes);
	if (!n)
		return NULL;
	n->pfx = pfx_get(e, id, pl);
	if (!n->pfx) {
		free(n);
		return NULL;
	}
	n->heap_idx = NOT_IN_HEAP;
	n->retries = 0;
	n->flags = hex ? NF_HEX : 0;
	n->tlen = (uint16_t)bytes;
	n->fire_ms = 0;
	if (hex) {
		for (size_t i = 0; i < bytes; i++)
			/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage,clang-analyzer-core.UndefinedBinaryOperatorResult): tail_is_hex checked every digit above */
			n->tail[i] = (unsigned char)(hexval(tail[2 * i]) << 4 | hexval(tail[2 * i + 1]));
	} else {
		memcpy(n->tail, tail, tl);
	}
	size_t b = h & (e->ntab - 1);
	n->next = e->tab[b];
	e->tab[b] = n;
	e->count++;
	*created = true;
	return n;
}

/*
 * Schedule id at fire_ms (mu held). keep_min: only move it earlier (the
 * restore, which may see stale deadlines). revoke: revoke when it fires.
 */
static int schedule_locked(struct expiration *e, const char *id, int64_t fire_ms, bool keep_min,
			   bool revoke)
{
	uint64_t h = id_hash(id);
	bool created;
	struct lnode *n = node_get(e, id, h, &created);
	if (!n)
		return VERR_INTERNAL;
	if (revoke)
		n->flags |= NF_REVOKE;
	bool was_top = e->nheap && e->heap[0] == n;
	if (n->flags & NF_BUSY) {
		if (!(n->flags & NF_RESCHED) || !keep_min || fire_ms < n->fire_ms)
			n->fire_ms = fire_ms;
		n->flags |= NF_RESCHED;
		n->flags &= (uint8_t)~NF_DEAD;
		return 0;
	}
	if (created) {
		n->fire_ms = fire_ms;
		if (heap_push(e, n)) {
			map_remove(e, n, h);
			node_free(e, n);
			return VERR_INTERNAL;
		}
	} else if (!keep_min || fire_ms < n->fire_ms) {
		n->fire_ms = fire_ms;
		n->retries = 0;
		heap_fix(e, n);
	}
	if (e->heap[0] == n || was_top)
		pthread_cond_broadcast(&e->cv);
	return 0;
}

static int schedule(struct expiration *e, const char *id, int64_t fire_ms, bool revoke)
{
	pthread_mutex_lock(&e->mu);
	int rc = schedule_locked(e, id, fire_ms, false, revoke);
	pthread_mutex_unlock(&e->mu);
	return rc;
}

/* Drop id from memory (mu not held). */
static void unschedule(struct expiration *e, const char *id)
{
	uint64_t h = id_hash(id);
	pthread_mutex_lock(&e->mu);
	struct lnode *n = map_find(e, id, h);
	if (n) {
		if (n->flags & NF_BUSY) {
			n->flags |= NF_DEAD;
			n->flags &= (uint8_t)~NF_RESCHED;
		} else {
			node_drop(e, n, h);
		}
	}
	pthread_mutex_unlock(&e->mu);
}

/* ---- storage ---- */

static int key_id(const struct expiration *e, char *buf, size_t cap, const char *id,
		  struct verr *err)
{
	int n = snprintf(buf, cap, "%sid/%s", e->prefix, id);
	if (n < 0 || (size_t)n >= cap || n > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "lease id is too long");
	return 0;
}

static int key_due(const struct expiration *e, char *buf, size_t cap, const char *id,
		   int64_t ms, struct verr *err)
{
	int n = snprintf(buf, cap, "%sdue/%010llx/%lld.", e->prefix,
			 (unsigned long long)((uint64_t)ms >> BUCKET_SHIFT), (long long)ms);
	if (n < 0 || (size_t)n >= cap)
		return verr_set(err, VERR_INVALID, "lease id is too long");
	size_t o = (size_t)n;
	for (const char *s = id; *s; s++) {
		if (o + 4 >= cap)
			return verr_set(err, VERR_INVALID, "lease id is too long");
		if (*s == '/' || *s == '%') {
			buf[o++] = '%';
			buf[o++] = '2';
			buf[o++] = *s == '/' ? 'F' : '5';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = '\0';
	if (o > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "lease id is too long");
	return 0;
}

/* Parse "<ms>.<escaped id>" into ms and id (cap >= KEY_MAX). */
static bool parse_due(const char *k, int64_t *ms, char *id, size_t cap)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(k, &end, 10);
	if (errno || end == k || *end != '.')
		return false;
	*ms = v;
	size_t o = 0;
	for (const char *s = end + 1; *s; s++) {
		if (o + 1 >= cap)
			return false;
		if (s[0] == '%' && s[1] == '2' && (s[2] == 'F' || s[2] == '5')) {
			id[o++] = s[2] == 'F' ? '/' : '%';
			s += 2;
		} else {
			id[o++] = *s;
		}
	}
	id[o] = '\0';
	return o > 0;
}

static int rec_get(struct expiration *e, const char *id, json_t **out, struct verr *err)
{
	*out = NULL;
	char key[KEY_MAX + 64];
	int rc = key_id(e, key, sizeof(key), id, err);
	if (rc)
		return rc;
	uint8_t *val = NULL;
	size_t len = 0;
	rc = physical_get(e->phys, key, &val, &len, err);
	if (rc || !val)
		return rc;
	json_error_t je;
	*out = json_loadb((const char *)val, len, 0, &je);
	free(val);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return verr_set(err, VERR_INTERNAL, "lease record is corrupt");
	}
	return 0;
}

static int rec_put(struct expiration *e, const char *id, const json_t *rec, struct verr *err)
{
	char key[KEY_MAX + 64];
	int rc = key_id(e, key, sizeof(key), id, err);
	if (rc)
		return rc;
	char *s = json_dumps(rec, JSON_COMPACT);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = physical_put(e->phys, key, (const uint8_t *)s, strlen(s), err);
	free(s);
	return rc;
}

static int rec_del(struct expiration *e, const char *id, struct verr *err)
{
	char key[KEY_MAX + 64];
	int rc = key_id(e, key, sizeof(key), id, err);
	return rc ? rc : physical_delete(e->phys, key, err);
}

static int idx_put(struct expiration *e, const char *id, int64_t ms, struct verr *err)
{
	char key[3 * KEY_MAX + 64];
	int rc = key_due(e, key, sizeof(key), id, ms, err);
	return rc ? rc : physical_put(e->phys, key, (const uint8_t *)"", 0, err);
}

static int idx_del(struct expiration *e, const char *id, int64_t ms, struct verr *err)
{
	char key[3 * KEY_MAX + 64];
	int rc = key_due(e, key, sizeof(key), id, ms, err);
	return rc ? rc : physical_delete(e->phys, key, err);
}

static bool idx_exists(struct expiration *e, const char *id, int64_t ms)
{
	char key[3 * KEY_MAX + 64];
	if (key_due(e, key, sizeof(key), id, ms, NULL))
		return false;
	uint8_t *val = NULL;
	size_t len = 0;
	if (physical_get(e->phys, key, &val, &len, NULL) || !val)
		return false;
	free(val);
	return true;
}

static int64_t rec_int(const json_t *rec, const char *k)
{
	return json_integer_value(json_object_get(rec, k));
}

static bool rec_is_token(const json_t *rec)
{
	const char *k = json_string_value(json_object_get(rec, "kind"));
	return k && strcmp(k, "token") == 0;
}

/* Delete a lease's record and its index entry (stripe held). */
static int rec_remove(struct expiration *e, const char *id, const json_t *rec, struct verr *err)
{
	int rc = rec_del(e, id, err);
	if (!rc)
		rc = idx_del(e, id, rec_int(rec, "expire_ms"), err);
	return rc;
}

/* ---- public: store, look up, renew ---- */

static int put_impl(struct expiration *e, const char *lease_id, const json_t *record,
		    bool may_exist, struct verr *err)
{
	if (!lease_id || !*lease_id || !json_is_object(record) ||
	    !json_is_integer(json_object_get(record, "expire_ms")))
		return verr_set(err, VERR_INTERNAL, "invalid lease record");
	int64_t expire = rec_int(record, "expire_ms");
	pthread_mutex_t *s = stripe(e, lease_id);
	pthread_mutex_lock(s);
	int64_t old = 0;
	int rc = 0;
	if (may_exist) {
		json_t *cur = NULL;
		rc = rec_get(e, lease_id, &cur, err);
		if (cur)
			old = rec_int(cur, "expire_ms");
		json_decref(cur);
	}
	if (!rc)
		rc = idx_put(e, lease_id, expire, err);
	if (!rc) {
		rc = rec_put(e, lease_id, record, err);
		if (rc)
			idx_del(e, lease_id, expire, NULL);
	}
	if (!rc && old && old != expire)
		idx_del(e, lease_id, old, NULL); /* a leftover only costs an early wake-up */
	pthread_mutex_unlock(s);
	if (!rc && schedule(e, lease_id, expire, false))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	return rc;
}

int expiration_lookup(struct expiration *e, const char *lease_id, json_t **out,
		      struct verr *err)
{
	return rec_get(e, lease_id, out, err);
}

int expiration_list(struct expiration *e, const char *prefix, json_t **out, struct verr *err)
{
	*out = NULL;
	char key[KEY_MAX + 64];
	int n = snprintf(key, sizeof(key), "%sid/%s", e->prefix, prefix);
	if (n < 0 || (size_t)n >= sizeof(key))
		return verr_set(err, VERR_INVALID, "prefix is too long");
	char **keys = NULL;
	size_t nk = 0;
	int rc = physical_list(e->phys, key, &keys, &nk, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < nk; i++)
		json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, nk);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = arr;
	return 0;
}

static int renew_impl(struct expiration *e, const char *lease_id, int64_t increment_s,
		      json_t **out, json_t *warnings, struct verr *err)
{
	if (out)
		*out = NULL;
	pthread_mutex_t *s = stripe(e, lease_id);
	pthread_mutex_lock(s);
	json_t *rec = NULL;
	int rc = rec_get(e, lease_id, &rec, err);
	if (rc)
		goto out;
	int64_t now = now_ms(e);
	int64_t old = rec ? rec_int(rec, "expire_ms") : 0;
	if (!rec)
		rc = verr_set(err, VERR_INVALID, "lease not found");
	else if (rec_is_token(rec))
		rc = verr_set(err, VERR_INVALID, "tokens cannot be renewed through this endpoint");
	else if (!json_is_true(json_object_get(rec, "renewable")) || !e->ops.renew)
		rc = verr_set(err, VERR_INVALID, "lease is not renewable");
	else if (old <= now)
		rc = verr_set(err, VERR_INVALID, "lease expired");
	if (rc)
		goto out;
	rc = e->ops.renew(e->ops.ctx, lease_id, rec, increment_s, now, warnings, err);
	if (rc)
		goto out;
	int64_t expire = rec_int(rec, "expire_ms");
	rc = idx_put(e, lease_id, expire, err);
	if (!rc)
		rc = rec_put(e, lease_id, rec, err);
	if (!rc && expire != old)
		idx_del(e, lease_id, old, NULL);
out:
	pthread_mutex_unlock(s);
	if (!rc && schedule(e, lease_id, rec_int(rec, "expire_ms"), false))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && out) {
		*out = rec;
		rec = NULL; /* transferred */
	}
	json_decref(rec);
	return rc;
}

/* ---- revoke ---- */

/*
 * Revoke one lease now. Returns 0 when the lease is gone (revoked, or never
 * existed), else the callback's error (the lease stays). *expired_only: only
 * revoke when expire_ms <= now (a worker firing); then *later is set to the
 * lease's new deadline when it was renewed meanwhile.
 */
static int revoke_one(struct expiration *e, const char *id, bool force, bool expired_only,
		      int64_t *later, bool *did, struct verr *err)
{
	pthread_mutex_t *s = stripe(e, id);
	pthread_mutex_lock(s);
	json_t *rec = NULL;
	int rc = rec_get(e, id, &rec, err);
	if (rc || !rec) {
		pthread_mutex_unlock(s);
		return rc;
	}
	if (expired_only && rec_int(rec, "expire_ms") > now_ms(e)) {
		*later = rec_int(rec, "expire_ms");
		pthread_mutex_unlock(s);
		json_decref(rec);
		return 0;
	}
	bool token = rec_is_token(rec);
	if (token)
		pthread_mutex_unlock(s); /* the token store calls expiration_forget */
	struct verr rerr = {0};
	rc = e->ops.revoke ? e->ops.revoke(e->ops.ctx, id, rec, &rerr) : 0;
	*did = rc == 0;
	if (rc && force) {
		log_warn("expire", "revoke-force: dropping lease %s after a failed revoke: %s", id,
			 rerr.msg);
		rc = 0;
	}
	if (rc && err)
		*err = rerr;
	if (token)
		pthread_mutex_lock(s);
	if (!rc) {
		/* re-read: for tokens the record may be gone or replaced */
		json_t *cur = NULL;
		if (token) {
			rec_get(e, id, &cur, NULL);
		} else {
			cur = rec;
			rec = NULL;
		}
		if (cur)
			rc = rec_remove(e, id, cur, err);
		json_decref(cur);
	}
	pthread_mutex_unlock(s);
	json_decref(rec);
	return rc;
}

static int revoke_impl(struct expiration *e, const char *lease_id, bool force,
		       struct verr *err)
{
	int64_t later = 0;
	bool did = false;
	int rc = revoke_one(e, lease_id, force, false, &later, &did, err);
	if (!rc)
		unschedule(e, lease_id);
	return rc;
}

int expiration_revoke_lazy(struct expiration *e, const char *lease_id, struct verr *err)
{
	json_t *rec = NULL;
	int rc = rec_get(e, lease_id, &rec, err);
	if (rc || !rec)
		return rc;
	json_decref(rec);
	if (schedule(e, lease_id, now_ms(e), true))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

int expiration_forget(struct expiration *e, const char *lease_id, struct verr *err)
{
	pthread_mutex_t *s = stripe(e, lease_id);
	pthread_mutex_lock(s);
	json_t *rec = NULL;
	int rc = rec_get(e, lease_id, &rec, err);
	if (!rc && rec)
		rc = rec_remove(e, lease_id, rec, err);
	pthread_mutex_unlock(s);
	json_decref(rec);
	if (!rc)
		unschedule(e, lease_id);
	return rc;
}

struct idlist {
	char **v;
	size_t n, cap;
};

static int idlist_add(struct idlist *l, char *s)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		char **nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return VERR_INTERNAL;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = s;
	return 0;
}

static void idlist_free(struct idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int collect_one(void *ctx, const char *key, struct verr *err)
{
	char *s = strdup(key);
	if (!s || idlist_add(ctx, s)) {
		free(s);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

/* Every lease id under prefix (which is "" or ends in '/'). */
static int collect(struct expiration *e, const char *prefix, struct idlist *out,
		   struct verr *err)
{
	char base[KEY_MAX + 64];
	int n = snprintf(base, sizeof(base), "%sid/", e->prefix);
	if (n < 0 || (size_t)n >= sizeof(base) || strlen(prefix) > KEY_MAX)
		return verr_set(err, VERR_INVALID, "prefix is too long");
	return physical_walk(e->phys, base, prefix, collect_one, out, err);
}

/*
 * A synchronous revoke-prefix revokes its leases from up to
 * REVOKE_WORKERS threads: each revocation is a round trip to the backend
 * that issued the lease (a DROP ROLE in PostgreSQL...), so one after
 * another leaves the caller waiting on the sum of their latencies.
 * expiration_revoke is safe to call from any thread.
 */
#define REVOKE_WORKERS 8
#define REVOKE_PER_WORKER 4 /* fewer leases than this per thread: fewer threads */

struct revoke_batch {
	struct expiration *e;
	const struct idlist *ids;
	bool force;
	pthread_mutex_t mu; /* next, failed, first */
	size_t next, failed;
	struct verr first;
};

static void *revoke_worker(void *arg)
{
	struct revoke_batch *rb = arg;
	for (;;) {
		pthread_mutex_lock(&rb->mu);
		size_t i = rb->next++;
		pthread_mutex_unlock(&rb->mu);
		if (i >= rb->ids->n)
			return NULL;
		struct verr one = {0};
		if (expiration_revoke(rb->e, rb->ids->v[i], rb->force, &one)) {
			pthread_mutex_lock(&rb->mu);
			if (rb->failed++ == 0)
				rb->first = one;
			pthread_mutex_unlock(&rb->mu);
		}
	}
}

static void revoke_in_parallel(struct revoke_batch *rb)
{
	size_t want = rb->ids->n / REVOKE_PER_WORKER;
	want = want < 1 ? 1 : want > REVOKE_WORKERS ? REVOKE_WORKERS : want;
	pthread_t th[REVOKE_WORKERS];
	size_t started = 0;
	for (size_t i = 1; i < want; i++) /* this thread is worker 0 */
		if (pthread_create(&th[started], NULL, revoke_worker, rb) == 0)
			started++;
	revoke_worker(rb);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

static int revoke_prefix_impl(struct expiration *e, const char *prefix, bool force, bool sync,
			      struct verr *err)
{
	size_t pl = strlen(prefix);
	char *p = NULL;
	int rc = 0;
	if (pl && prefix[pl - 1] != '/') {
		json_t *rec = NULL;
		rc = rec_get(e, prefix, &rec, err);
		if (rc)
			return rc;
		if (rec) {
			json_decref(rec);
			return sync ? expiration_revoke(e, prefix, force, err)
				    : expiration_revoke_lazy(e, prefix, err);
		}
		p = malloc(pl + 2);
		if (!p)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		memcpy(p, prefix, pl);
		p[pl] = '/';
		p[pl + 1] = '\0';
	} else {
		p = strdup(prefix);
		if (!p)
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	struct idlist ids = {0};
	rc = collect(e, p, &ids, err);
	size_t failed = 0;
	struct verr first = {0};
	if (rc == 0 && sync) {
		struct revoke_batch rb = {.e = e, .ids = &ids, .force = force};
		pthread_mutex_init(&rb.mu, NULL);
		revoke_in_parallel(&rb);
		pthread_mutex_destroy(&rb.mu);
		failed = rb.failed;
		first = rb.first;
	}
	for (size_t i = 0; rc == 0 && !sync && i < ids.n; i++) {
		struct verr one = {0};
		if (expiration_revoke_lazy(e, ids.v[i], &one) && failed++ == 0)
			first = one;
	}
	if (!rc && failed) {
		/* the failed ones stay and are retried with backoff */
		for (size_t i = 0; i < ids.n; i++)
			expiration_revoke_lazy(e, ids.v[i], NULL);
		rc = verr_set(err, VERR_INTERNAL, "failed to revoke %zu of %zu leases under \"%s\": %s",
			      failed, ids.n, p, first.msg);
	}
	idlist_free(&ids);
	free(p);
	return rc;
}

/* ---- tidy ---- */

int expiration_tidy(struct expiration *e, json_t **out, struct verr *err)
{
	if (out)
		*out = NULL;
	int64_t dangling = 0, reindexed = 0, checked = 0;
	char key[KEY_MAX + 64];
	snprintf(key, sizeof(key), "%sdue/", e->prefix);
	char **buckets = NULL;
	size_t nb = 0;
	int rc = physical_list(e->phys, key, &buckets, &nb, err);
	for (size_t b = 0; rc == 0 && b < nb; b++) {
		char bkey[KEY_MAX + 64];
		snprintf(bkey, sizeof(bkey), "%sdue/%s", e->prefix, buckets[b]);
		char **keys = NULL;
		size_t nk = 0;
		rc = physical_list(e->phys, bkey, &keys, &nk, err);
		for (size_t i = 0; rc == 0 && i < nk; i++) {
			char id[KEY_MAX];
			int64_t ms;
			if (!parse_due(keys[i], &ms, id, sizeof(id)))
				continue;
			pthread_mutex_t *s = stripe(e, id);
			pthread_mutex_lock(s);
			json_t *rec = NULL;
			rc = rec_get(e, id, &rec, err);
			if (!rc && (!rec || rec_int(rec, "expire_ms") != ms)) {
				char dkey[2 * KEY_MAX + 64];
				snprintf(dkey, sizeof(dkey), "%s%s", bkey, keys[i]);
				rc = physical_delete(e->phys, dkey, err);
				dangling++;
			}
			pthread_mutex_unlock(s);
			json_decref(rec);
		}
		physical_list_free(keys, nk);
	}
	physical_list_free(buckets, nb);
	struct idlist ids = {0};
	if (!rc)
		rc = collect(e, "", &ids, err);
	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		pthread_mutex_t *s = stripe(e, ids.v[i]);
		pthread_mutex_lock(s);
		json_t *rec = NULL;
		rc = rec_get(e, ids.v[i], &rec, err);
		if (!rc && rec) {
			checked++;
			int64_t ms = rec_int(rec, "expire_ms");
			if (!idx_exists(e, ids.v[i], ms)) {
				rc = idx_put(e, ids.v[i], ms, err);
				reindexed++;
			}
			if (!rc)
				schedule(e, ids.v[i], ms, false);
		}
		pthread_mutex_unlock(s);
		json_decref(rec);
	}
	idlist_free(&ids);
	if (!rc && out)
		*out = json_pack("{s:I,s:I,s:I}", "leases_checked", (json_int_t)checked,
				 "dangling_index_entries_removed", (json_int_t)dangling,
				 "leases_reindexed", (json_int_t)reindexed);
	return rc;
}

/* ---- restore ---- */

struct pending {
	char id[KEY_MAX];
	int64_t ms;
};

static void restore(struct expiration *e)
{
	int64_t t0 = real_now_ms();
	char key[KEY_MAX + 64];
	snprintf(key, sizeof(key), "%sdue/", e->prefix);
	char **buckets = NULL;
	size_t nb = 0, loaded = 0;
	struct verr err = {0};
	int rc = physical_list(e->phys, key, &buckets, &nb, &err);
	if (rc)
		log_error("expire", "lease restore: listing the index failed: %s", err.msg);
	struct pending *batch = rc ? NULL : malloc(RESTORE_BATCH * sizeof(*batch));
	for (size_t b = 0; batch && b < nb; b++) {
		pthread_mutex_lock(&e->mu);
		bool stop = e->stop;
		pthread_mutex_unlock(&e->mu);
		if (stop)
			break;
		char bkey[KEY_MAX + 64];
		snprintf(bkey, sizeof(bkey), "%sdue/%s", e->prefix, buckets[b]);
		char **keys = NULL;
		size_t nk = 0;
		if (physical_list(e->phys, bkey, &keys, &nk, &err)) {
			log_error("expire", "lease restore: listing %s failed: %s", buckets[b], err.msg);
			continue;
		}
		size_t i = 0;
		while (i < nk) {
			size_t nbatch = 0;
			for (; i < nk && nbatch < RESTORE_BATCH; i++)
				if (parse_due(keys[i], &batch[nbatch].ms, batch[nbatch].id,
					      sizeof(batch[nbatch].id)))
					nbatch++;
			pthread_mutex_lock(&e->mu);
			for (size_t j = 0; j < nbatch; j++)
				if (schedule_locked(e, batch[j].id, batch[j].ms, true, false) == 0)
					loaded++;
			stop = e->stop;
			pthread_mutex_unlock(&e->mu);
			if (stop)
				break;
		}
		physical_list_free(keys, nk);
	}
	free(batch);
	physical_list_free(buckets, nb);
	pthread_mutex_lock(&e->mu);
	e->restoring = false;
	e->restore_ms = real_now_ms() - t0;
	pthread_cond_broadcast(&e->restored_cv);
	pthread_mutex_unlock(&e->mu);
	log_info("expire", "restored %zu leases in %lld ms", loaded, (long long)(real_now_ms() - t0));
}

/* ---- workers ---- */

static int64_t backoff(const struct expiration *e, unsigned retries)
{
	int64_t d = e->ops.backoff_min_ms;
	for (unsigned i = 1; i < retries && d < e->ops.backoff_max_ms; i++)
		d *= 2;
	return d < e->ops.backoff_max_ms ? d : e->ops.backoff_max_ms;
}

/* Process one due node (BUSY, out of the heap, mu not held). */
static void process(struct expiration *e, struct lnode *n)
{
	char id[KEY_MAX];
	pthread_mutex_lock(&e->mu);
	node_id(n, id, sizeof(id));
	bool force_revoke = n->flags & NF_REVOKE;
	n->flags &= (uint8_t)~NF_REVOKE;
	pthread_mutex_unlock(&e->mu);

	int64_t later = 0;
	bool did = false;
	struct verr err = {0};
	int rc = revoke_one(e, id, false, !force_revoke, &later, &did, &err);

	pthread_mutex_lock(&e->mu);
	uint64_t h = id_hash(id);
	n->flags &= (uint8_t)~NF_BUSY;
	if (did)
		e->revoked++;
	if (n->flags & NF_RESCHED) {
		n->flags &= (uint8_t)~NF_RESCHED;
		if (heap_push(e, n))
			node_drop(e, n, h);
	} else if (n->flags & NF_DEAD) {
		node_drop(e, n, h);
	} else if (rc) {
		/* a requested revoke stays requested: retried with backoff, not
		 * postponed to the lease's own expiry (I3) */
		if (force_revoke)
			n->flags |= NF_REVOKE;
		n->retries = n->retries < UINT16_MAX ? n->retries + 1 : n->retries;
		n->fire_ms = now_ms(e) + backoff(e, n->retries);
		e->retries++;
		log_warn("expire", "failed to revoke lease %s (attempt %u, next in %lld ms): %s", id,
			 n->retries, (long long)(n->fire_ms - now_ms(e)), err.msg);
		if (heap_push(e, n))
			node_drop(e, n, h);
	} else if (later) {
		n->fire_ms = later;
		n->retries = 0;
		if (heap_push(e, n))
			node_drop(e, n, h);
	} else {
		node_drop(e, n, h);
	}
	pthread_mutex_unlock(&e->mu);
}

static void *worker(void *arg)
{
	struct expiration *e = arg;
	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		if (e->restoring && !e->restore_claimed) {
			e->restore_claimed = true;
			pthread_mutex_unlock(&e->mu);
			restore(e);
			pthread_mutex_lock(&e->mu);
			continue;
		}
		int64_t now = now_ms(e);
		if (e->nheap && e->heap[0]->fire_ms <= now) {
			struct lnode *n = e->heap[0];
			heap_remove(e, n);
			n->flags |= NF_BUSY;
			pthread_mutex_unlock(&e->mu);
			process(e, n);
			pthread_mutex_lock(&e->mu);
			continue;
		}
		if (!e->nheap) {
			pthread_cond_wait(&e->cv, &e->mu);
			continue;
		}
		int64_t wait = e->heap[0]->fire_ms - now;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* ---- lifecycle ---- */

int expiration_new(struct expiration **out, struct physical *phys, const char *prefix,
		   const struct expiration_ops *ops, struct verr *err)
{
	*out = NULL;
	struct expiration *e = calloc(1, sizeof(*e));
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	e->phys = phys;
	snprintf(e->prefix, sizeof(e->prefix), "%s", prefix);
	if (ops)
		e->ops = *ops;
	if (e->ops.backoff_min_ms <= 0)
		e->ops.backoff_min_ms = 1000;
	if (e->ops.backoff_max_ms <= 0)
		e->ops.backoff_max_ms = 3600 * 1000;
	if (e->ops.backoff_max_ms < e->ops.backoff_min_ms)
		e->ops.backoff_max_ms = e->ops.backoff_min_ms;
	if (e->ops.workers <= 0)
		e->ops.workers = 4;
	if (e->ops.workers < 2)
		e->ops.workers = 2; /* one may be busy restoring */
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&e->restored_cv, NULL);
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&e->stripes[i], NULL);
	e->restoring = true;
	*out = e;
	return 0;
}

int expiration_start(struct expiration *e, struct verr *err)
{
	if (e->started)
		return 0;
	e->threads = calloc((size_t)e->ops.workers, sizeof(*e->threads));
	if (!e->threads)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	e->started = true;
	for (int i = 0; i < e->ops.workers; i++) {
		if (pthread_create(&e->threads[i], NULL, worker, e) != 0) {
			if (i == 0)
				return verr_set(err, VERR_INTERNAL, "cannot start the expiration manager");
			break;
		}
		e->nthreads++;
	}
	return 0;
}

void expiration_free(struct expiration *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	for (int i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	free(e->threads);
	for (size_t i = 0; i < e->ntab; i++) {
		struct lnode *n = e->tab[i];
		while (n) {
			struct lnode *nx = n->next;
			free(n);
			n = nx;
		}
	}
	for (size_t i = 0; i < e->nptab; i++) {
		struct prefix *p = e->ptab[i];
		while (p) {
			struct prefix *nx = p->next;
			free(p);
			p = nx;
		}
	}
	free(e->tab);
	free(e->ptab);
	free(e->heap);
	pthread_mutex_lock(&e->mu);
	e->restoring = false;
	pthread_cond_broadcast(&e->restored_cv);
	pthread_mutex_unlock(&e->mu);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	pthread_cond_destroy(&e->restored_cv);
	for (int i = 0; i < NSTRIPES; i++)
		pthread_mutex_destroy(&e->stripes[i]);
	free(e);
}

void expiration_stats(struct expiration *e, struct expiration_stats *out)
{
	pthread_mutex_lock(&e->mu);
	out->leases = e->count;
	out->revoked = e->revoked;
	out->retries = e->retries;
	out->restoring = e->restoring;
	out->restore_ms = e->restore_ms;
	pthread_mutex_unlock(&e->mu);
}

void expiration_wait_restored(struct expiration *e)
{
	pthread_mutex_lock(&e->mu);
	while (e->restoring && e->started && !e->stop)
		pthread_cond_wait(&e->restored_cv, &e->mu);
	pthread_mutex_unlock(&e->mu);
}

/* ---- the timed entry points (vault.expire.*, core/telemetry.h) ---- */

int expiration_put(struct expiration *e, const char *lease_id, const json_t *record,
		   bool may_exist, struct verr *err)
{
	uint64_t t0 = metrics_now();
	return telemetry_timed(put_impl(e, lease_id, record, may_exist, err), "vault.expire.register", t0);
}

int expiration_renew(struct expiration *e, const char *lease_id, int64_t increment_s,
		     json_t **out, json_t *warnings, struct verr *err)
{
	uint64_t t0 = metrics_now();
	return telemetry_timed(renew_impl(e, lease_id, increment_s, out, warnings, err),
			       "vault.expire.renew", t0);
}

int expiration_revoke(struct expiration *e, const char *lease_id, bool force,
		      struct verr *err)
{
	uint64_t t0 = metrics_now();
	return telemetry_timed(revoke_impl(e, lease_id, force, err), "vault.expire.revoke", t0);
}

int expiration_revoke_prefix(struct expiration *e, const char *prefix, bool force, bool sync,
			     struct verr *err)
{
	uint64_t t0 = metrics_now();
	return telemetry_timed(revoke_prefix_impl(e, prefix, force, sync, err),
			       "vault.expire.revoke-prefix", t0);
}
