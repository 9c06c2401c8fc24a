/*
 * common.c - helpers shared by physical backends (see physical.h).
 */
#include "physical/physical.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"
#include "util/metrics.h"

void physical_list_free(char **keys, size_t n)
{
	if (!keys)
		return;
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

int physical__children(char **sorted_keys, size_t nkeys, const char *prefix, char ***out,
		       size_t *n)
{
	size_t plen = strlen(prefix), cap = 16, cnt = 0;
	char **res = malloc(cap * sizeof(*res));
	if (!res)
		return VERR_INTERNAL;
	for (size_t i = 0; i < nkeys; i++) {
		const char *k = sorted_keys[i];
		if (strncmp(k, prefix, plen) != 0)
			continue;
		const char *rest = k + plen;
		if (!*rest)
			continue;
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) + 1 : strlen(rest);
		if (cnt && strlen(res[cnt - 1]) == len && !memcmp(res[cnt - 1], rest, len))
			continue;
		if (cnt == cap) {
			cap *= 2;
			char **nr = realloc(res, cap * sizeof(*res));
			if (!nr)
				goto fail;
			res = nr;
		}
		res[cnt] = strndup(rest, len);
		if (!res[cnt])
			goto fail;
		cnt++;
	}
	*out = res;
	*n = cnt;
	return 0;
fail:
	physical_list_free(res, cnt);
	return VERR_INTERNAL;
}

/* ---- the wrappers every caller uses (physical.h) ---- */

/*
 * Storage latency under Vault's names: vault.barrier.get for the barrier's
 * shim, vault.<backend>.get (vault.postgres.*, vault.raft-storage.*, ...)
 * for the backend below it. The series of each ops table are looked up
 * once and kept here: readers scan without a lock (entries are published
 * by the release store of pm_n), additions take pm_mu.
 */
struct phys_metrics {
	const struct physical_ops *ops;
	struct metric *get, *put, *del, *list;
};
#define PM_MAX 16
static struct phys_metrics pm_tab[PM_MAX];
static _Atomic size_t pm_n;
static pthread_mutex_t pm_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *metric_prefix(const char *name)
{
	if (!name)
		return "physical";
	if (!strcmp(name, "postgresql"))
		return "postgres";
	if (!strcmp(name, "raft"))
		return "raft-storage";
	return name;
}

static const struct phys_metrics *pm_of(const struct physical *p)
{
	size_t n = atomic_load_explicit(&pm_n, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (pm_tab[i].ops == p->ops)
			return &pm_tab[i];
	static const struct phys_metrics none;
	const struct phys_metrics *res = &none;
	pthread_mutex_lock(&pm_mu);
	n = atomic_load_explicit(&pm_n, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (pm_tab[i].ops == p->ops)
			res = &pm_tab[i];
	if (res == &none && n < PM_MAX) {
		char k[96];
		const char *b = metric_prefix(p->ops->name);
		struct phys_metrics *e = &pm_tab[n];
		e->ops = p->ops;
		snprintf(k, sizeof(k), "vault.%s.get", b);
		e->get = metrics_get(METRIC_HISTOGRAM, k, NULL);
		snprintf(k, sizeof(k), "vault.%s.put", b);
		e->put = metrics_get(METRIC_HISTOGRAM, k, NULL);
		snprintf(k, sizeof(k), "vault.%s.delete", b);
		e->del = metrics_get(METRIC_HISTOGRAM, k, NULL);
		snprintf(k, sizeof(k), "vault.%s.list", b);
		e->list = metrics_get(METRIC_HISTOGRAM, k, NULL);
		atomic_store_explicit(&pm_n, n + 1, memory_order_release);
		res = e;
	}
	pthread_mutex_unlock(&pm_mu);
	return res;
}

int physical_check(const struct physical *p, struct verr *err)
{
	if (!p || !p->ops)
		return verr_set(err, VERR_INTERNAL, "no storage backend");
	if (p->ops->version != PHYSICAL_OPS_VERSION)
		return verr_set(err, VERR_INTERNAL,
				"storage backend %s implements interface version %d, not %d",
				p->ops->name ? p->ops->name : "?", p->ops->version,
				PHYSICAL_OPS_VERSION);
	struct physical_ha *h = p->ops->ha ? p->ops->ha((struct physical *)p) : NULL;
	if (h && (!h->ops || h->ops->version != PHYSICAL_HA_VERSION))
		return verr_set(err, VERR_INTERNAL, "HA lock of %s implements the wrong version",
				p->ops->name ? p->ops->name : "?");
	return 0;
}

int physical_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		 struct verr *err)
{
	uint64_t t0 = metrics_now();
	int rc = p->ops->get(p, key, out, len, err);
	metrics_observe(pm_of(p)->get, metrics_now() - t0);
	return rc;
}

int physical_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		 struct verr *err)
{
	uint64_t t0 = metrics_now();
	int rc = p->ops->put(p, key, val, len, err);
	metrics_observe(pm_of(p)->put, metrics_now() - t0);
	return rc;
}

int physical_delete(struct physical *p, const char *key, struct verr *err)
{
	uint64_t t0 = metrics_now();
	int rc = p->ops->del(p, key, err);
	metrics_observe(pm_of(p)->del, metrics_now() - t0);
	return rc;
}

int physical_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		  struct verr *err)
{
	uint64_t t0 = metrics_now();
	int rc = p->ops->list(p, prefix, out, n, err);
	metrics_observe(pm_of(p)->list, metrics_now() - t0);
	return rc;
}

int physical_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		 struct verr *err)
{
	if (!p->ops->txn)
		return verr_set(err, VERR_UNSUPPORTED, "storage backend %s has no transactions",
				p->ops->name);
	return p->ops->txn(p, ops, n, err);
}

struct physical_ha *physical_ha(struct physical *p)
{
	return p && p->ops->ha ? p->ops->ha(p) : NULL;
}

void physical_close(struct physical *p)
{
	if (p)
		p->ops->close(p);
}

int physical_ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
			void *ctx, struct verr *err)
{
	return h->ops->acquire(h, value, lost, ctx, err);
}

int physical_ha_renew(struct physical_ha *h, struct verr *err)
{
	return h->ops->renew(h, err);
}

void physical_ha_release(struct physical_ha *h)
{
	h->ops->release(h);
}

int physical_ha_holder(struct physical_ha *h, char **value, struct verr *err)
{
	*value = NULL;
	return h->ops->holder(h, value, err);
}

int physical_ha_wait(struct physical_ha *h, int timeout_ms)
{
	return h->ops->wait ? h->ops->wait(h, timeout_ms) : -1;
}

void physical_ha_wake(struct physical_ha *h)
{
	if (h->ops->wait && h->ops->wake)
		h->ops->wake(h);
}

int physical_walk(struct physical *p, const char *base, const char *prefix,
		  physical_walk_fn fn, void *ctx, struct verr *err)
{
	size_t bl = strlen(base), pl = strlen(prefix);
	char *full = malloc(bl + pl + 1);
	if (!full)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	memcpy(full, base, bl);
	memcpy(full + bl, prefix, pl + 1);
	char **keys = NULL;
	size_t n = 0;
	int rc = physical_list(p, full, &keys, &n, err);
	free(full);
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t kl = strlen(keys[i]);
		char *sub = malloc(pl + kl + 1);
		if (!sub) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			break;
		}
		memcpy(sub, prefix, pl);
		memcpy(sub + pl, keys[i], kl + 1);
		if (kl && keys[i][kl - 1] == '/')
			rc = physical_walk(p, base, sub, fn, ctx, err);
		else
			rc = fn(ctx, sub, err);
		free(sub);
	}
	physical_list_free(keys, n);
	return rc;
}

int physical__opt_seconds(const json_t *conf, const char *backend, const char *k, int64_t def,
			  int64_t min, int64_t max, int64_t *out, struct verr *err)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	*out = def;
	if (!v)
		return 0;
	int64_t secs = -1;
	struct verr e2 = {0};
	if (json_is_integer(v))
		secs = json_integer_value(v);
	else if (!json_is_string(v) || duration_parse(&secs, json_string_value(v), &e2))
		secs = -1;
	if (secs < min || secs > max)
		return verr_set(err, VERR_INVALID,
				"storage \"%s\": %s: expected a duration between %llds and %llds",
				backend, k, (long long)min, (long long)max);
	*out = secs;
	return 0;
}
