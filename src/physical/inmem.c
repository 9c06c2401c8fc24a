/*
 * inmem.c - in-memory storage backend (dev mode and tests).
 *
 * A red-black tree (glibc tsearch) of key -> bytes behind one rwlock: gets
 * and lists take it shared, puts, deletes and transactions exclusive. Not
 * durable.
 *
 * Entries are immutable once in the tree and reference-counted: a put
 * replaces the entry, so a view (inmem_int.h) holding references sees a
 * consistent state while writes go on (raft's asynchronous snapshots).
 *
 * HA (ha_enabled = "true"): a process-local lock with one holder among the
 * handles opened on this instance (physical_inmem_ha_new), so tests can run
 * several cores over one store and fail over between them;
 * physical_inmem_ha_break plays a lost session (the holder's lost callback
 * runs). Guarded by hamu.
 */
#include "physical/physical.h"

#include <assert.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "physical/inmem_int.h"

struct inmem_entry {
	char *key;
	uint8_t *val;
	size_t len;
	atomic_uint refs; /* the tree's and views' */
};

struct inmem_ha {
	struct physical_ha base; /* must be first */
	struct inmem *m;
};

struct inmem {
	struct physical base; /* must be first */
	pthread_rwlock_t lock;
	void *root;
	size_t count;
	bool ha_enabled;
	pthread_mutex_t hamu;
	struct inmem_ha *holder;     /* guarded by hamu */
	char *holder_value;
	physical_ha_lost_fn lost;
	void *lost_ctx;
	struct inmem_ha *dflt;       /* what ops->ha returns */
};

static const struct physical_ops inmem_ops;

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct inmem_entry *)a)->key, ((const struct inmem_entry *)b)->key);
}

static int inmem_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		     struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	struct inmem_entry probe = {.key = (char *)key};
	*out = NULL;
	*len = 0;
	pthread_rwlock_rdlock(&m->lock);
	void *node = tfind(&probe, &m->root, entry_cmp);
	int rc = 0;
	if (node) {
		struct inmem_entry *e = *(struct inmem_entry **)node;
		*out = malloc(e->len ? e->len : 1);
		if (!*out)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		else {
			memcpy(*out, e->val, e->len);
			*len = e->len;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

/* A new entry holding a copy of key and val, or NULL (out of memory). */
static struct inmem_entry *entry_new(const char *key, const uint8_t *val, size_t len)
{
	struct inmem_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	e->val = malloc(len ? len : 1);
	if (!e->key || !e->val) {
		free(e->key);
		free(e->val);
		free(e);
		return NULL;
	}
	if (len)
		memcpy(e->val, val, len);
	e->len = len;
	atomic_init(&e->refs, 1);
	return e;
}

/* drop a reference (the last one frees) */
static void entry_free(struct inmem_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(e->key);
	free(e->val);
	free(e);
}

/* Insert or replace, taking e. Called with the write lock. -1: out of
 * memory (e is freed). */
static int put_locked(struct inmem *m, struct inmem_entry *e)
{
	void *node = tsearch(e, &m->root, entry_cmp);
	if (!node) {
		entry_free(e);
		return -1;
	}
	struct inmem_entry *cur = *(struct inmem_entry **)node;
	if (cur != e) {
		/* same key: the node points at the new entry; a view may still
		 * hold the old one */
		*(struct inmem_entry **)node = e;
		entry_free(cur);
	} else {
		m->count++;
	}
	return 0;
}

static void del_locked(struct inmem *m, const char *key)
{
	struct inmem_entry probe = {.key = (char *)key};
	void *node = tfind(&probe, &m->root, entry_cmp);
	if (node) {
		struct inmem_entry *e = *(struct inmem_entry **)node;
		tdelete(&probe, &m->root, entry_cmp);
		entry_free(e);
		m->count--;
	}
}

static int inmem_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		     struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	if (len > p->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE, "value of %zu bytes exceeds max_entry_size %zu",
				len, p->max_entry_size);
	struct inmem_entry *e = entry_new(key, val, len);
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_rwlock_wrlock(&m->lock);
	int rc = put_locked(m, e);
	pthread_rwlock_unlock(&m->lock);
	return rc ? verr_set(err, VERR_INTERNAL, "out of memory") : 0;
}

static int inmem_del(struct physical *p, const char *key, struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	pthread_rwlock_wrlock(&m->lock);
	del_locked(m, key);
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

/* All or nothing as far as this process can tell: every new entry is
 * allocated before the write lock is taken, so the only failure left is
 * tsearch's own node allocation for a new key (reported; the ops before it
 * stay applied - an in-memory store has no crash to survive). */
static int inmem_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		     struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	struct inmem_entry **es = calloc(n ? n : 1, sizeof(*es));
	if (!es)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!ops[i].key || !*ops[i].key)
			rc = verr_set(err, VERR_INVALID, "transaction operation %zu has no key", i);
		else if (ops[i].kind == PHYSICAL_TXN_PUT) {
			if (ops[i].len > p->max_entry_size)
				rc = verr_set(err, VERR_TOO_LARGE,
					      "value of %zu bytes exceeds max_entry_size %zu",
					      ops[i].len, p->max_entry_size);
			else if (!(es[i] = entry_new(ops[i].key, ops[i].val, ops[i].len)))
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
		} else if (ops[i].kind != PHYSICAL_TXN_DELETE)
			rc = verr_set(err, VERR_INVALID, "transaction operation %zu is unknown", i);
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (es[i])
				entry_free(es[i]);
		free(es);
		return rc;
	}
	pthread_rwlock_wrlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == PHYSICAL_TXN_PUT) {
			if (put_locked(m, es[i]) && !rc)
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
		} else {
			del_locked(m, ops[i].key);
		}
	}
	pthread_rwlock_unlock(&m->lock);
	free(es);
	return rc;
}

struct walk_ctx {
	const char *prefix;
	size_t plen;
	char **keys;
	size_t n, cap;
	int oom;
};

static void walk_fn(const void *nodep, VISIT which, void *closure)
{
	struct walk_ctx *w = closure;
	if (which != postorder && which != leaf)
		return;
	const struct inmem_entry *e = *(struct inmem_entry *const *)nodep;
	if (strncmp(e->key, w->prefix, w->plen) != 0 || w->oom)
		return;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		char **nk = realloc(w->keys, nc * sizeof(*nk));
		if (!nk) {
			w->oom = 1;
			return;
		}
		w->keys = nk;
		w->cap = nc;
	}
	w->keys[w->n++] = e->key; /* borrowed while the read lock is held */
}

static int inmem_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		      struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	struct walk_ctx w = {.prefix = prefix, .plen = strlen(prefix)};
	pthread_rwlock_rdlock(&m->lock);
	twalk_r(m->root, walk_fn, &w);
	int rc = w.oom ? VERR_INTERNAL : physical__children(w.keys, w.n, prefix, out, n);
	pthread_rwlock_unlock(&m->lock);
	free(w.keys);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

static void free_entry(void *p)
{
	entry_free(p);
}

/* ---- HA ---- */

static int ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
		      void *ctx, struct verr *err)
{
	struct inmem_ha *ih = (struct inmem_ha *)h;
	struct inmem *m = ih->m;
	char *v = strdup(value ? value : "");
	if (!v)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_lock(&m->hamu);
	int got = 0;
	if (!m->holder || m->holder == ih) {
		free(m->holder_value);
		m->holder = ih;
		m->holder_value = v;
		m->lost = lost;
		m->lost_ctx = ctx;
		v = NULL;
		got = 1;
	}
	pthread_mutex_unlock(&m->hamu);
	free(v);
	return got;
}

static int ha_renew(struct physical_ha *h, struct verr *err)
{
	struct inmem_ha *ih = (struct inmem_ha *)h;
	pthread_mutex_lock(&ih->m->hamu);
	bool held = ih->m->holder == ih;
	pthread_mutex_unlock(&ih->m->hamu);
	return held ? 0 : verr_set(err, VERR_STANDBY, "the HA lock is held by another node");
}

static void ha_release(struct physical_ha *h)
{
	struct inmem_ha *ih = (struct inmem_ha *)h;
	struct inmem *m = ih->m;
	pthread_mutex_lock(&m->hamu);
	if (m->holder == ih) {
		m->holder = NULL;
		free(m->holder_value);
		m->holder_value = NULL;
		m->lost = NULL;
		m->lost_ctx = NULL;
	}
	pthread_mutex_unlock(&m->hamu);
}

static int ha_holder(struct physical_ha *h, char **value, struct verr *err)
{
	struct inmem *m = ((struct inmem_ha *)h)->m;
	int rc = 0;
	pthread_mutex_lock(&m->hamu);
	if (m->holder_value && !(*value = strdup(m->holder_value)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_unlock(&m->hamu);
	return rc;
}

static const struct physical_ha_ops inmem_ha_ops = {
	.version = PHYSICAL_HA_VERSION,
	.name = "inmem",
	.acquire = ha_acquire,
	.renew = ha_renew,
	.release = ha_release,
	.holder = ha_holder,
};

int physical_inmem_ha_new(struct physical_ha **out, struct physical *p, struct verr *err)
{
	*out = NULL;
	struct inmem *m = (struct inmem *)p;
	if (p->ops != &inmem_ops || !m->ha_enabled)
		return verr_set(err, VERR_INVALID, "this storage has no HA lock");
	struct inmem_ha *h = calloc(1, sizeof(*h));
	if (!h)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	h->base.ops = &inmem_ha_ops;
	h->base.renew_interval_ms = 50;
	h->base.retry_interval_ms = 50;
	h->m = m;
	*out = &h->base;
	return 0;
}

void physical_inmem_ha_free(struct physical_ha *h)
{
	if (!h)
		return;
	ha_release(h);
	free(h);
}

void physical_inmem_ha_break(struct physical *p)
{
	struct inmem *m = (struct inmem *)p;
	pthread_mutex_lock(&m->hamu);
	physical_ha_lost_fn lost = m->lost;
	void *ctx = m->lost_ctx;
	m->holder = NULL;
	free(m->holder_value);
	m->holder_value = NULL;
	m->lost = NULL;
	m->lost_ctx = NULL;
	pthread_mutex_unlock(&m->hamu);
	if (lost)
		lost(ctx);
}

static struct physical_ha *inmem_ha(struct physical *p)
{
	struct inmem *m = (struct inmem *)p;
	return m->dflt ? &m->dflt->base : NULL;
}

static void inmem_close(struct physical *p)
{
	struct inmem *m = (struct inmem *)p;
	physical_inmem_ha_free(m->dflt ? &m->dflt->base : NULL);
	tdestroy(m->root, free_entry);
	free(m->holder_value);
	pthread_mutex_destroy(&m->hamu);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

static const struct physical_ops inmem_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "inmem",
	.get = inmem_get,
	.put = inmem_put,
	.del = inmem_del,
	.list = inmem_list,
	.close = inmem_close,
	.txn = inmem_txn,
	.ha = inmem_ha,
};

int physical_inmem_new(struct physical **out, const json_t *conf, struct verr *err)
{
	struct inmem *m = calloc(1, sizeof(*m));
	if (!m)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	m->base.ops = &inmem_ops;
	m->base.max_entry_size = PHYSICAL_DEFAULT_MAX_ENTRY;
	json_t *mes = conf ? json_object_get(conf, "max_entry_size") : NULL;
	if (json_is_integer(mes) && json_integer_value(mes) > 0)
		m->base.max_entry_size = (size_t)json_integer_value(mes);
	else if (json_is_string(mes))
		m->base.max_entry_size = strtoull(json_string_value(mes), NULL, 10);
	pthread_rwlock_init(&m->lock, NULL);
	pthread_mutex_init(&m->hamu, NULL);
	json_t *ha = conf ? json_object_get(conf, "ha_enabled") : NULL;
	m->ha_enabled = json_is_true(ha) || (json_is_string(ha) && !strcmp(json_string_value(ha), "true"));
	if (m->ha_enabled) {
		struct physical_ha *h = NULL;
		if (physical_inmem_ha_new(&h, &m->base, err)) {
			inmem_close(&m->base);
			return VERR_INTERNAL;
		}
		m->dflt = (struct inmem_ha *)h;
	}
	*out = &m->base;
	return 0;
}

/* ---- inmem_int.h: ordered iteration (raft's state machine snapshots) ---- */

struct foreach_ctx {
	physical_inmem_foreach_fn fn;
	void *ctx;
	int rc;
};

static void foreach_fn(const void *nodep, VISIT which, void *closure)
{
	struct foreach_ctx *f = closure;
	if ((which != postorder && which != leaf) || f->rc)
		return;
	const struct inmem_entry *e = *(struct inmem_entry *const *)nodep;
	f->rc = f->fn(f->ctx, e->key, e->val, e->len);
}

int physical_inmem__foreach(struct physical *p, physical_inmem_foreach_fn fn, void *ctx)
{
	struct inmem *m = (struct inmem *)p;
	assert(p->ops == &inmem_ops);
	struct foreach_ctx f = {fn, ctx, 0};
	pthread_rwlock_rdlock(&m->lock);
	twalk_r(m->root, foreach_fn, &f);
	pthread_rwlock_unlock(&m->lock);
	return f.rc;
}

struct physical_inmem_view {
	struct inmem_entry **e;
	size_t n, bytes;
};

struct view_ctx {
	struct physical_inmem_view *v;
	size_t cap;
};

static void view_fn(const void *nodep, VISIT which, void *closure)
{
	struct view_ctx *c = closure;
	if ((which != postorder && which != leaf) || c->v->n == c->cap)
		return;
	struct inmem_entry *e = *(struct inmem_entry *const *)nodep;
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	c->v->e[c->v->n++] = e;
	c->v->bytes += 8 + strlen(e->key) + e->len;
}

struct physical_inmem_view *physical_inmem__view(struct physical *p)
{
	struct inmem *m = (struct inmem *)p;
	assert(p->ops == &inmem_ops);
	struct physical_inmem_view *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	pthread_rwlock_rdlock(&m->lock);
	struct view_ctx c = {v, m->count};
	v->e = malloc((m->count ? m->count : 1) * sizeof(*v->e));
	if (v->e)
		twalk_r(m->root, view_fn, &c);
	pthread_rwlock_unlock(&m->lock);
	if (!v->e) {
		free(v);
		return NULL;
	}
	return v;
}

size_t physical_inmem__view_bytes(const struct physical_inmem_view *v)
{
	return v->bytes;
}

int physical_inmem__view_foreach(const struct physical_inmem_view *v,
				 physical_inmem_foreach_fn fn, void *ctx)
{
	for (size_t i = 0; i < v->n; i++) {
		int rc = fn(ctx, v->e[i]->key, v->e[i]->val, v->e[i]->len);
		if (rc)
			return rc;
	}
	return 0;
}

void physical_inmem__view_free(struct physical_inmem_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		entry_free(v->e[i]);
	free(v->e);
	free(v);
}
