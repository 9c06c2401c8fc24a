/*
 * storage_view.c - prefix views over a physical (see logical.h). A mount's
 * view is "logical/<uuid>/" over the barrier, so disabling a mount deletes
 * exactly its prefix.
 */
#include "logical/logical.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonr.h"

void storage_view_init(struct storage_view *v, struct physical *phys, const char *prefix)
{
	v->phys = phys;
	snprintf(v->prefix, sizeof(v->prefix), "%s", prefix ? prefix : "");
}

static int full_key(const struct storage_view *v, const char *key, char *buf, size_t cap,
		    struct verr *err)
{
	int n = snprintf(buf, cap, "%s%s", v->prefix, key);
	if (n < 0 || (size_t)n >= cap)
		return verr_set(err, VERR_INVALID, "storage key too long");
	return 0;
}

int view_get(const struct storage_view *v, const char *key, uint8_t **out, size_t *len,
	     struct verr *err)
{
	char k[PHYSICAL_MAX_KEY + 256];
	int rc = full_key(v, key, k, sizeof(k), err);
	if (rc)
		return rc;
	return physical_get(v->phys, k, out, len, err);
}

int view_put(const struct storage_view *v, const char *key, const uint8_t *val, size_t len,
	     struct verr *err)
{
	char k[PHYSICAL_MAX_KEY + 256];
	int rc = full_key(v, key, k, sizeof(k), err);
	if (rc)
		return rc;
	return physical_put(v->phys, k, val, len, err);
}

int view_delete(const struct storage_view *v, const char *key, struct verr *err)
{
	char k[PHYSICAL_MAX_KEY + 256];
	int rc = full_key(v, key, k, sizeof(k), err);
	if (rc)
		return rc;
	return physical_delete(v->phys, k, err);
}

int view_list(const struct storage_view *v, const char *prefix, char ***out, size_t *n,
	      struct verr *err)
{
	char k[PHYSICAL_MAX_KEY + 256];
	int rc = full_key(v, prefix, k, sizeof(k), err);
	if (rc)
		return rc;
	return physical_list(v->phys, k, out, n, err);
}

int view_get_json(const struct storage_view *v, const char *key, json_t **out,
		  struct verr *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = view_get(v, key, &buf, &len, err);
	if (rc || !buf)
		return rc;
	/* the fast reader takes what storage holds; jansson anything else */
	json_t *j = jsonr_parse((const char *)buf, len);
	if (j && !json_is_object(j) && !json_is_array(j)) {
		json_decref(j); /* json_loadb(flags 0) wants a container */
		j = NULL;
	}
	if (!j) {
		json_error_t je;
		j = json_loadb((const char *)buf, len, 0, &je);
	}
	*out = j;
	free(buf);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "corrupt stored entry at %s", key);
	return 0;
}

int view_put_json(const struct storage_view *v, const char *key, const json_t *val,
		  struct verr *err)
{
	char *s = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_put(v, key, (const uint8_t *)s, strlen(s), err);
	free(s);
	return rc;
}

int view_walk(const struct storage_view *v, const char *prefix, physical_walk_fn fn, void *ctx,
	      struct verr *err)
{
	return physical_walk(v->phys, v->prefix, prefix, fn, ctx, err);
}

static int delete_one(void *ctx, const char *key, struct verr *err)
{
	return view_delete(ctx, key, err);
}

int view_clear_prefix(const struct storage_view *v, const char *prefix, struct verr *err)
{
	return view_walk(v, prefix, delete_one, (void *)v, err);
}
