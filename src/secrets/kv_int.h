/*
 * kv_int.h - internals shared by the KV engine files (kv.c: instance, v1 and
 * the upgrade; kv2.c: version 2 paths; kv_common.c: helpers) and cubbyhole.c.
 * Not part of any public API: only src/secrets/ includes it.
 */
#ifndef COFFER_SECRETS_KV_INT_H
#define COFFER_SECRETS_KV_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"

/* Storage prefixes inside the mount's view (docs/secrets-kv.md). */
#define KV1_PREFIX "k/"     /* v1: k/<path> -> the secret's JSON object */
#define KV2_META_PREFIX "m/" /* v2: m/<path> -> metadata + latest data */
#define KV2_VER_PREFIX "v/"  /* v2: v/<path>@<n> -> data of older version n */
#define KV2_CONFIG_KEY "config"
#define KV2_UPGRADE_KEY "upgrade" /* present while a v1->v2 upgrade finishes */

#define KV_STRIPES 64
#define KV_DEFAULT_MAX_VERSIONS 10
#define KV_SYSTEM_DEFAULT_TTL 2764800 /* 768h, Vault's system default */

/* Mount-level v2 settings (the `config` path). */
struct kv_config {
	int64_t max_versions;       /* 0 = default (10) */
	bool cas_required;
	int64_t delete_version_after; /* seconds; 0 unset; <0 disabled */
};

/* One mounted kv engine. `version` and `default_ttl` are immutable after
 * init; `cfg` is guarded by cfg_lock; each secret path hashes to one of the
 * striped rwlocks, which serialise read-modify-write cycles on that path (two
 * writers to one key can never both get the same version number). */
struct kv_backend {
	int version; /* 1 or 2 */
	const struct storage_view *view; /* the mount's (borrowed) */
	int64_t default_ttl;
	pthread_mutex_t cfg_lock;
	struct kv_config cfg;
	pthread_rwlock_t stripes[KV_STRIPES];
};

pthread_rwlock_t *kv__stripe(struct kv_backend *b, const char *path);

/* Wall clock in nanoseconds since the epoch. */
int64_t kv__now_ns(void);
/* RFC 3339 UTC with trailing-zero-trimmed nanoseconds, as Go prints
 * ("2018-03-22T02:24:06.945319214Z"); "" for 0. */
json_t *kv__time_json(int64_t ns);
/* Go's time.Duration.String() for whole seconds ("0s", "1h0m0s", "-1s"). */
json_t *kv__duration_json(int64_t secs);

/* A key the user may write: non-empty, no trailing '/'. 400 otherwise. */
int kv__check_write_path(const char *path, struct verr *err);
/* No leading '/', no empty, "." or ".." segments (a trailing '/' is fine).
 * 400 otherwise. */
int kv__check_path(const char *path, struct verr *err);
/* The request's "path" capture ("" when absent), checked as above. */
int kv__req_path(struct logical_request *req, const char **out, struct verr *err);
/* kv__req_path, then kv__check_write_path: a path a write may name. */
int kv__req_write_path(struct logical_request *req, const char **out, struct verr *err);
/* Join a and b into a malloc'd string; NULL on OOM. */
char *kv__join(const char *a, const char *b);

/* Plain (unversioned) storage shared by KV v1 and cubbyhole; `prefix` is
 * "k/" or "<token-hash>/". */
int kv__plain_exists(struct logical_request *req, const char *prefix, struct verr *err);
int kv__plain_read(struct logical_request *req, const char *prefix, json_t **out,
		   struct verr *err);
int kv__plain_write(struct logical_request *req, const char *prefix, struct verr *err);
int kv__plain_delete(struct logical_request *req, const char *prefix, struct verr *err);
int kv__plain_list(struct logical_request *req, const char *prefix,
		   struct logical_response *resp, struct verr *err);

/* Fill resp->data = {"keys":[...]} from a physical list, honouring the
 * optional `after`/`limit`; an empty result is VERR_NOT_FOUND (404, as Vault). */
int kv__list_response(struct logical_response *resp, char **keys, size_t n, const char *after,
		      int64_t limit, struct verr *err);

/* Depth-first walk of every leaf key under prefix (which ends in '/'). */
typedef int (*kv_walk_fn)(void *ctx, const char *key, struct verr *err);
int kv__walk(const struct storage_view *v, const char *prefix, kv_walk_fn fn, void *ctx,
	     struct verr *err);

/* kv2.c */
const struct path_def *kv2__paths(void);
int kv2__load_config(struct kv_backend *b, const struct storage_view *v, struct verr *err);
/* Convert the v1 keys of this view to v2 secrets (crash-safe, idempotent). */
int kv2__upgrade(const struct storage_view *v, struct verr *err);

#endif
