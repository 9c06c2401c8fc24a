/*
 * physical.h - the storage interface (version 2): durable get/put/delete/list
 * of opaque bytes under '/'-separated keys, an optional transaction, and an
 * optional HA lock as its own small interface (struct physical_ha).
 *
 * An implementation embeds `struct physical` as its first member and fills a
 * static `struct physical_ops`. Callers use the physical_*() wrappers, never
 * the pointers. The barrier (core/barrier.c) is itself a physical shim over
 * another physical, so anything that takes a `struct physical *` works
 * unchanged above or below the barrier.
 *
 * Ownership: get returns a malloc'd buffer the caller frees (free()); list
 * returns a malloc'd array of malloc'd strings (physical_list_free).
 * Errors: a missing key is NOT an error for get (returns 0, *out = NULL);
 * delete of a missing key succeeds. Keys are at most 4096 bytes; values over
 * the backend's max_entry_size fail with VERR_TOO_LARGE.
 * Thread-safety: every method may be called from any thread concurrently.
 * Durability: put and delete return only once the change is durable (for
 * backends that claim durability) - acknowledged writes survive kill -9.
 */
#ifndef COFFER_PHYSICAL_PHYSICAL_H
#define COFFER_PHYSICAL_PHYSICAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define PHYSICAL_DEFAULT_MAX_ENTRY (1024 * 1024)
#define PHYSICAL_MAX_KEY 4096

struct physical;
struct physical_ha;

#define PHYSICAL_OPS_VERSION 2

enum physical_txn_kind { PHYSICAL_TXN_PUT = 1, PHYSICAL_TXN_DELETE };

/* One operation of a transaction (borrowed pointers). */
struct physical_txn_op {
	enum physical_txn_kind kind;
	const char *key;
	const uint8_t *val; /* PUT only */
	size_t len;
};

struct physical_ops {
	int version; /* PHYSICAL_OPS_VERSION; the core refuses any other */
	const char *name;
	int (*get)(struct physical *p, const char *key, uint8_t **out, size_t *len,
		   struct verr *err);
	int (*put)(struct physical *p, const char *key, const uint8_t *val, size_t len,
		   struct verr *err);
	int (*del)(struct physical *p, const char *key, struct verr *err);
	/* Direct children of prefix (prefix is "" or ends in '/'): leaf keys as
	 * their last segment, folders as "name/". Sorted, de-duplicated. */
	int (*list)(struct physical *p, const char *prefix, char ***out, size_t *n,
		    struct verr *err);
	void (*close)(struct physical *p);
	/* Optional (NULL: unsupported). Apply every operation or none, in
	 * order, durably; a later op on the same key wins. */
	int (*txn)(struct physical *p, const struct physical_txn_op *ops, size_t n,
		   struct verr *err);
	/* Optional (NULL: no HA). The backend's HA lock, or NULL when this
	 * instance has none (e.g. ha_enabled = false). Borrowed: it lives as
	 * long as p. Never reached through the barrier. */
	struct physical_ha *(*ha)(struct physical *p);
};

struct physical {
	const struct physical_ops *ops;
	size_t max_entry_size;
	int durable; /* 1 if acknowledged writes survive a crash */
};

/*
 * The HA lock: one holder at a time among the nodes sharing a backend; the
 * holder is the active node. Its value is the holder's identity (the node's
 * api_addr, or its cluster address) so standbys can name the active node.
 *
 * acquire: try once. 1 acquired (the caller is now the holder), 0 another
 *   holds it, <0 error. While held, the backend may call lost(ctx) - once,
 *   from any thread, never after release returns - when it learns the lock
 *   is gone (session expired, row deleted, leadership lost). The callback
 *   must not block on the caller's locks for long; it only starts a step-down.
 * renew: keep the lock alive; called by the core every renew_interval_ms
 *   while it holds the lock. 0, or an error meaning the lock is lost.
 * release: give the lock up (no-op when not held). Afterwards lost is not
 *   called.
 * holder: the current holder's value (malloc'd) or NULL when free.
 * wait (optional, NULL: the standby polls every retry_interval_ms): after an
 *   acquire that returned 0, block until the lock may be free (the holder's
 *   key was deleted), at most timeout_ms, or until wake is called. 1 the
 *   lock looks free (acquire again now), 0 timed out or woken, <0 error (the
 *   caller then sleeps retry_interval_ms before it acquires again).
 * wake (with wait): make the wait in progress, or the next one if none is,
 *   return at once. Any thread; never blocks.
 * Thread-safety: every method may be called from any thread; acquire, renew,
 * release and wait are serialised by the core (one HA loop per node).
 */
#define PHYSICAL_HA_VERSION 1

typedef void (*physical_ha_lost_fn)(void *ctx);

struct physical_ha_ops {
	int version; /* PHYSICAL_HA_VERSION */
	const char *name;
	int (*acquire)(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
		       void *ctx, struct verr *err);
	int (*renew)(struct physical_ha *h, struct verr *err);
	void (*release)(struct physical_ha *h);
	int (*holder)(struct physical_ha *h, char **value, struct verr *err);
	int (*wait)(struct physical_ha *h, int timeout_ms); /* optional */
	void (*wake)(struct physical_ha *h);                /* optional, with wait */
};

struct physical_ha {
	const struct physical_ha_ops *ops;
	int renew_interval_ms; /* how often the holder renews (e.g. TTL / 3) */
	int retry_interval_ms; /* how often a standby tries to acquire (with wait:
				* the longest it waits before it tries again) */
};

/* Constructor signature every backend exports, e.g. physical_file_new.
 * conf is the storage stanza's body as a JSON object of strings/numbers. */
typedef int (*physical_new_fn)(struct physical **out, const json_t *conf, struct verr *err);

/* inmem: conf may set max_entry_size and ha_enabled ("true": a process-local
 * HA lock shared by every core opened on this instance, for tests). */
int physical_inmem_new(struct physical **out, const json_t *conf, struct verr *err);
int physical_file_new(struct physical **out, const json_t *conf, struct verr *err);
/* etcd v3 over its JSON gateway, with a lease-based HA lock (etcd.c). */
int physical_etcd_new(struct physical **out, const json_t *conf, struct verr *err);
/* Consul's KV, txn and session API, with a session-based HA lock and service
 * registration (consul.c). */
int physical_consul_new(struct physical **out, const json_t *conf, struct verr *err);
/* PostgreSQL over libpq (Vault's schema), HA on a session advisory lock
 * with fenced writes (postgresql.c). */
int physical_postgresql_new(struct physical **out, const json_t *conf, struct verr *err);
/* inmem HA for tests: a handle per node over one inmem instance (free it
 * before closing the store); break = the holder's session is gone (its lost
 * callback runs). */
int physical_inmem_ha_new(struct physical_ha **out, struct physical *inmem, struct verr *err);
void physical_inmem_ha_free(struct physical_ha *h);
void physical_inmem_ha_break(struct physical *inmem);

/* Callers use these, never the pointers (out of line so a shim or a probe
 * can stand between the core and any backend). */
int physical_check(const struct physical *p, struct verr *err); /* version */
int physical_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		 struct verr *err);
int physical_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		 struct verr *err);
int physical_delete(struct physical *p, const char *key, struct verr *err);
int physical_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		  struct verr *err);
/* VERR_UNSUPPORTED when the backend has no transactions. */
int physical_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		 struct verr *err);
struct physical_ha *physical_ha(struct physical *p); /* NULL: no HA */
void physical_close(struct physical *p);             /* NULL-safe */

int physical_ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
			void *ctx, struct verr *err);
int physical_ha_renew(struct physical_ha *h, struct verr *err);
void physical_ha_release(struct physical_ha *h);
int physical_ha_holder(struct physical_ha *h, char **value, struct verr *err);
/* -1 (as an error) when the lock has no wait op; see physical_ha_ops. */
int physical_ha_wait(struct physical_ha *h, int timeout_ms);
void physical_ha_wake(struct physical_ha *h); /* no-op without wait */

/*
 * A fault-injecting shim over any backend, for tests of everything above
 * storage (the pipeline, the barrier, the crash harness). It passes every
 * call through and counts it; the knobs make calls fail or stall. Owns
 * `under` only when own_under is true (so several shims can share one
 * backend). Knobs may change at any time from any thread.
 */
struct physical_fault_knobs {
	/* counted from the physical_fault_set call that sets them */
	long fail_put_after;   /* >= 0: puts/deletes/txns after this many fail */
	long fail_get_after;   /* >= 0: gets/lists after this many fail */
	long short_put_nth;    /* > 0: the Nth put stores only half its value and
				* reports success (a torn write the layers
				* above must detect) */
	int latency_us;        /* sleep before every call */
	int fail_code;         /* VERR_* for failures (default VERR_UNAVAILABLE) */
};
/* knobs that inject nothing; start from this and set what a test needs */
#define PHYSICAL_FAULT_NONE ((struct physical_fault_knobs){.fail_put_after = -1, .fail_get_after = -1})
struct physical_fault_counts {
	long gets, puts, deletes, lists, txns, failures;
};
int physical_fault_new(struct physical **out, struct physical *under, bool own_under,
		       struct verr *err);
void physical_fault_set(struct physical *p, const struct physical_fault_knobs *k);
void physical_fault_counts(struct physical *p, struct physical_fault_counts *out);

void physical_list_free(char **keys, size_t n);
/* Every leaf key below base + prefix (prefix is "" or ends in '/'), depth
 * first in list order: fn gets the key relative to base (prefix included).
 * Stops at fn's first non-zero return and returns it. fn may delete the key
 * it is given. The one recursive walker (storage views, leases, kv). */
typedef int (*physical_walk_fn)(void *ctx, const char *key, struct verr *err);
int physical_walk(struct physical *p, const char *base, const char *prefix,
		  physical_walk_fn fn, void *ctx, struct verr *err);
/* Shared helper for list: given a sorted array of full keys and a prefix,
 * produce the direct-children list (see physical_ops.list). */
/* A duration option of a backend's config in whole seconds: a JSON integer
 * or a string ("30", "15s", "2m"); def when absent. VERR_INVALID, naming
 * storage "<backend>" and the option, outside [min, max]. */
int physical__opt_seconds(const json_t *conf, const char *backend, const char *k, int64_t def,
			  int64_t min, int64_t max, int64_t *out, struct verr *err);
int physical__children(char **sorted_keys, size_t nkeys, const char *prefix, char ***out,
		       size_t *n);

#endif
