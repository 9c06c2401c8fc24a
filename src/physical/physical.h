/*
 * physical.h - the storage interface: durable get/put/delete/list of opaque
 * bytes under '/'-separated keys, plus an optional HA lock.
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
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define PHYSICAL_DEFAULT_MAX_ENTRY (1024 * 1024)
#define PHYSICAL_MAX_KEY 4096

struct physical;

struct physical_ops {
	int version; /* 1 */
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
	/* Optional (NULL when unsupported). HA lock: try to become the holder of
	 * `key` with `value` (the api_addr); 1 acquired, 0 held by another
	 * (leader value in *holder if non-NULL, malloc'd), <0 error. */
	int (*lock_try)(struct physical *p, const char *key, const char *value, char **holder,
			struct verr *err);
	int (*lock_renew)(struct physical *p, const char *key, struct verr *err);
	void (*lock_release)(struct physical *p, const char *key);
};

struct physical {
	const struct physical_ops *ops;
	size_t max_entry_size;
	int durable; /* 1 if acknowledged writes survive a crash */
};

/* Constructor signature every backend exports, e.g. physical_file_new.
 * conf is the storage stanza's body as a JSON object of strings/numbers. */
typedef int (*physical_new_fn)(struct physical **out, const json_t *conf, struct verr *err);

int physical_inmem_new(struct physical **out, const json_t *conf, struct verr *err);
int physical_file_new(struct physical **out, const json_t *conf, struct verr *err);

static inline int physical_get(struct physical *p, const char *key, uint8_t **out,
			       size_t *len, struct verr *err)
{
	return p->ops->get(p, key, out, len, err);
}
static inline int physical_put(struct physical *p, const char *key, const uint8_t *val,
			       size_t len, struct verr *err)
{
	return p->ops->put(p, key, val, len, err);
}
static inline int physical_delete(struct physical *p, const char *key, struct verr *err)
{
	return p->ops->del(p, key, err);
}
static inline int physical_list(struct physical *p, const char *prefix, char ***out,
				size_t *n, struct verr *err)
{
	return p->ops->list(p, prefix, out, n, err);
}
static inline void physical_close(struct physical *p)
{
	if (p)
		p->ops->close(p);
}
void physical_list_free(char **keys, size_t n);
/* Shared helper for list: given a sorted array of full keys and a prefix,
 * produce the direct-children list (see physical_ops.list). */
int physical__children(char **sorted_keys, size_t nkeys, const char *prefix, char ***out,
		       size_t *n);

#endif
