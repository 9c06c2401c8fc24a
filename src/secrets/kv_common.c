/*
 * kv_common.c - helpers shared by the KV engine (kv.c, kv2.c) and cubbyhole
 * (cubbyhole.c): Vault-style time and duration rendering, the striped
 * per-path locks, list responses, and the plain unversioned key/value
 * operations that KV v1 and cubbyhole both are (they differ only in the
 * storage prefix: "k/" for v1, "<token-hash>/" for cubbyhole).
 */
#include "secrets/kv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/timefmt.h"

pthread_rwlock_t *kv__stripe(struct kv_backend *b, const char *path)
{
	/* FNV-1a: cheap and spreads short similar paths well */
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return &b->stripes[h % KV_STRIPES];
}

int64_t kv__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

json_t *kv__time_json(int64_t ns)
{
	char buf[TIMEFMT_MAX];
	if (ns <= 0 || !timefmt_rfc3339(buf, ns / 1000000000LL, (long)(ns % 1000000000LL),
					 TIMEFMT_NANO))
		return json_string("");
	return json_string(buf);
}

json_t *kv__duration_json(int64_t secs)
{
	char buf[64];
	const char *sign = "";
	if (secs < 0) {
		sign = "-";
		secs = -secs;
	}
	int64_t h = secs / 3600, m = (secs % 3600) / 60, s = secs % 60;
	if (secs == 0)
		snprintf(buf, sizeof(buf), "0s");
	else if (h)
		snprintf(buf, sizeof(buf), "%s%lldh%lldm%llds", sign, (long long)h, (long long)m,
			 (long long)s);
	else if (m)
		snprintf(buf, sizeof(buf), "%s%lldm%llds", sign, (long long)m, (long long)s);
	else
		snprintf(buf, sizeof(buf), "%s%llds", sign, (long long)s);
	return json_string(buf);
}

int kv__check_write_path(const char *path, struct verr *err)
{
	if (!path || !*path)
		return verr_set(err, VERR_INVALID, "missing path");
	if (path[strlen(path) - 1] == '/')
		return verr_set(err, VERR_INVALID, "cannot write to a path ending in '/'");
	return 0;
}

char *kv__join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (!s)
		return NULL;
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): the next memcpy copies b with its NUL */
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

int kv__check_path(const char *path, struct verr *err)
{
	/* the router already refuses these; a storage key must never contain
	 * them either, since a file-backed physical maps keys to directories */
	const char *s = path;
	if (*s == '/')
		return verr_set(err, VERR_INVALID, "invalid path: empty segment");
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 0 && e)
			return verr_set(err, VERR_INVALID, "invalid path: empty segment");
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return verr_set(err, VERR_INVALID, "invalid path: '.' and '..' segments are not allowed");
		s += l + (e ? 1 : 0);
	}
	return 0;
}

int kv__req_path(struct logical_request *req, const char **out, struct verr *err)
{
	const char *p = request_str(req, "path");
	*out = p ? p : "";
	return kv__check_path(*out, err);
}

int kv__req_write_path(struct logical_request *req, const char **out, struct verr *err)
{
	int rc = kv__req_path(req, out, err);
	return rc ? rc : kv__check_write_path(*out, err);
}

int kv__plain_exists(struct logical_request *req, const char *prefix, struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	char *key = kv__join(prefix, path);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = view_get(req->storage, key, &buf, &len, err);
	free(key);
	if (rc)
		return rc;
	rc = buf != NULL;
	free(buf);
	return rc;
}

int kv__plain_read(struct logical_request *req, const char *prefix, json_t **out,
		   struct verr *err)
{
	*out = NULL;
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	if (!*path)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	char *key = kv__join(prefix, path);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_get_json(req->storage, key, out, err);
	free(key);
	if (rc)
		return rc;
	if (!*out)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	return 0;
}

int kv__plain_write(struct logical_request *req, const char *prefix, struct verr *err)
{
	const char *path;
	int rc = kv__req_write_path(req, &path, err);
	if (rc)
		return rc;
	if (!json_is_object(req->data) || json_object_size(req->data) == 0)
		return verr_set(err, VERR_INVALID, "missing data fields");
	char *key = kv__join(prefix, path);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = view_put_json(req->storage, key, req->data, err);
	free(key);
	return rc;
}

int kv__plain_delete(struct logical_request *req, const char *prefix, struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	if (!*path)
		return 0;
	char *key = kv__join(prefix, path);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_delete(req->storage, key, err);
	free(key);
	return rc;
}

int kv__list_response(struct logical_response *resp, char **keys, size_t n, const char *after,
		      int64_t limit, struct verr *err)
{
	json_t *arr = json_array();
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (after && *after && strcmp(keys[i], after) <= 0)
			continue;
		if (limit > 0 && (int64_t)json_array_size(arr) >= limit)
			break;
		json_array_append_new(arr, json_string(keys[i]));
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	if (!resp->data)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

int kv__plain_list(struct logical_request *req, const char *prefix,
		   struct logical_response *resp, struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	size_t pl = strlen(path);
	char *dir = kv__join(path, (pl && path[pl - 1] != '/') ? "/" : "");
	char *key = dir ? kv__join(prefix, dir) : NULL;
	free(dir);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, key, &keys, &n, err);
	free(key);
	if (rc)
		return rc;
	rc = kv__list_response(resp, keys, n, request_str(req, "after"), request_int(req, "limit"),
			       err);
	physical_list_free(keys, n);
	return rc;
}

int kv__walk(const struct storage_view *v, const char *prefix, kv_walk_fn fn, void *ctx,
	     struct verr *err)
{
	return view_walk(v, prefix, fn, ctx, err);
}
