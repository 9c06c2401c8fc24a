/*
 * inmem.c - in-memory storage backend (dev mode and tests).
 *
 * A red-black tree (glibc tsearch) of key -> bytes behind one rwlock: gets
 * and lists take it shared, puts and deletes exclusive. Not durable.
 */
#include "physical/physical.h"

#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

struct inmem_entry {
	char *key;
	uint8_t *val;
	size_t len;
};

struct inmem {
	struct physical base; /* must be first */
	pthread_rwlock_t lock;
	void *root;
	size_t count;
};

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

static int inmem_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		     struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	if (len > p->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE, "value of %zu bytes exceeds max_entry_size %zu",
				len, p->max_entry_size);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	memcpy(copy, val, len);
	struct inmem_entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		free(copy);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	e->val = copy;
	e->len = len;
	pthread_rwlock_wrlock(&m->lock);
	void *node = tsearch(e, &m->root, entry_cmp);
	if (!node) {
		pthread_rwlock_unlock(&m->lock);
		free(e->key);
		free(e);
		free(copy);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	struct inmem_entry *cur = *(struct inmem_entry **)node;
	if (cur != e) {
		free(cur->val);
		cur->val = copy;
		cur->len = len;
		free(e->key);
		free(e);
	} else {
		m->count++;
	}
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int inmem_del(struct physical *p, const char *key, struct verr *err)
{
	struct inmem *m = (struct inmem *)p;
	struct inmem_entry probe = {.key = (char *)key};
	pthread_rwlock_wrlock(&m->lock);
	void *node = tfind(&probe, &m->root, entry_cmp);
	if (node) {
		struct inmem_entry *e = *(struct inmem_entry **)node;
		tdelete(&probe, &m->root, entry_cmp);
		free(e->key);
		free(e->val);
		free(e);
		m->count--;
	}
	pthread_rwlock_unlock(&m->lock);
	return 0;
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
	struct inmem_entry *e = p;
	free(e->key);
	free(e->val);
	free(e);
}

static void inmem_close(struct physical *p)
{
	struct inmem *m = (struct inmem *)p;
	tdestroy(m->root, free_entry);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

static const struct physical_ops inmem_ops = {
	.version = 1,
	.name = "inmem",
	.get = inmem_get,
	.put = inmem_put,
	.del = inmem_del,
	.list = inmem_list,
	.close = inmem_close,
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
	*out = &m->base;
	return 0;
}
