/*
 * kv2.c - KV version 2: versioned secrets (Vault's kv-v2 API). Paths:
 * config, data/P, delete/P, undelete/P, destroy/P, metadata/P, subkeys/P.
 *
 * DESIGN
 * Storage (inside the mount's view; docs/secrets-kv.md has the details):
 *   m/<P>      one record per secret: the key metadata, every live version's
 *              times and flags, AND the data of the current version. A secret
 *              with one version therefore costs one record, and reading the
 *              latest version costs one get.
 *   v/<P>@<n>  the data of an older version n. When version n+1 is written,
 *              version n's data moves here (put v/ first, then m/).
 *   config     mount settings {mv, cr, dva}.
 * The key "v/<P>@<n>" is unambiguous: n is all digits and follows the last
 * '@'. Times are int64 nanoseconds since the epoch (0 = unset).
 *
 * Invariants: versions in m/<P> are sorted ascending, all > oldest_version
 * - 1; the current version's data lives only in m/<P> ("d"), absent when it
 * is destroyed. Every read-modify-write of m/<P> holds the path's stripe
 * lock for writing (kv__stripe), so concurrent writers get distinct,
 * consecutive version numbers; readers hold it for reading so an older
 * version cannot be pruned between the metadata and data gets.
 *
 * Crash safety: each operation ends with a single put of m/<P> that makes it
 * visible; anything written before it (an older version's data) is harmless
 * if the put never happens, and records made unreachable by it (pruned or
 * destroyed versions) are deleted after it. A crash between the two leaves an
 * unreachable record that the next "delete metadata" of that path removes.
 */
#include "secrets/kv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

#define CM_MAX_KEYS 64
#define CM_MAX_KEY_LEN 128
#define CM_MAX_VALUE_LEN 512

struct kv2_ver {
	uint64_t n;
	int64_t ct, dt; /* created, deletion (0 = not deleted) */
	bool destroyed;
};

struct kv2_meta {
	int64_t ct, ut;
	uint64_t cv, ov; /* current and oldest version */
	int64_t mv;      /* key max_versions, 0 = mount/default */
	bool cr;         /* key cas_required */
	int64_t dva;     /* key delete_version_after, seconds */
	json_t *cm;      /* owned custom_metadata object, NULL = none */
	struct kv2_ver *v;
	size_t nv;
	json_t *data;    /* owned data of version cv; NULL if none/destroyed */
};

static void meta_free(struct kv2_meta *m)
{
	if (!m)
		return;
	json_decref(m->cm);
	json_decref(m->data);
	free(m->v);
	free(m);
}

static struct kv2_ver *meta_find(struct kv2_meta *m, uint64_t n)
{
	for (size_t i = 0; i < m->nv; i++)
		if (m->v[i].n == n)
			return &m->v[i];
	return NULL;
}

static bool ver_deleted(const struct kv2_ver *vr, int64_t now)
{
	return vr->dt != 0 && vr->dt <= now;
}

static char *meta_key(const char *path)
{
	return kv__join(KV2_META_PREFIX, path);
}

static char *ver_key(const char *path, uint64_t n)
{
	size_t need = strlen(KV2_VER_PREFIX) + strlen(path) + 24;
	char *s = malloc(need);
	if (s)
		snprintf(s, need, "%s%s@%llu", KV2_VER_PREFIX, path, (unsigned long long)n);
	return s;
}

static int64_t jint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static int meta_parse(const json_t *j, struct kv2_meta **out, struct verr *err)
{
	struct kv2_meta *m = calloc(1, sizeof(*m));
	if (!m)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	m->ct = jint(j, "ct");
	m->ut = jint(j, "ut");
	m->cv = (uint64_t)jint(j, "cv");
	m->ov = (uint64_t)jint(j, "ov");
	m->mv = jint(j, "mv");
	m->cr = json_is_true(json_object_get(j, "cr"));
	m->dva = jint(j, "dva");
	json_t *cm = json_object_get(j, "cm");
	if (json_is_object(cm))
		m->cm = json_incref(cm);
	json_t *d = json_object_get(j, "d");
	if (json_is_object(d))
		m->data = json_incref(d);
	json_t *vs = json_object_get(j, "vs");
	size_t n = json_is_array(vs) ? json_array_size(vs) : 0;
	if (n) {
		m->v = calloc(n, sizeof(*m->v));
		if (!m->v) {
			meta_free(m);
			return verr_set(err, VERR_INTERNAL, "out of memory");
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(vs, i);
		if (!json_is_array(e) || json_array_size(e) < 4) {
			meta_free(m);
			return verr_set(err, VERR_INTERNAL, "corrupt kv metadata record");
		}
		m->v[i].n = (uint64_t)json_integer_value(json_array_get(e, 0));
		m->v[i].ct = json_integer_value(json_array_get(e, 1));
		m->v[i].dt = json_integer_value(json_array_get(e, 2));
		m->v[i].destroyed = json_integer_value(json_array_get(e, 3)) != 0;
	}
	m->nv = n;
	if (n && !json_object_get(j, "ct"))
		m->ct = m->v[0].ct;
	if (n && !json_object_get(j, "ut"))
		m->ut = m->v[n - 1].ct;
	*out = m;
	return 0;
}

/* *out = NULL when the secret has no metadata. */
static int meta_load(const struct storage_view *view, const char *path, struct kv2_meta **out,
		     struct verr *err)
{
	*out = NULL;
	char *key = meta_key(path);
	if (!key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	json_t *j = NULL;
	int rc = view_get_json(view, key, &j, err);
	free(key);
	if (rc || !j)
		return rc;
	rc = meta_parse(j, out, err);
	json_decref(j);
	return rc;
}

static int meta_store(const struct storage_view *view, const char *path,
		      const struct kv2_meta *m, struct verr *err)
{
	json_t *j = json_object();
	json_t *vs = json_array();
	int rc = 0;
	char *key = meta_key(path);
	if (!j || !vs || !key) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	/* Fields equal to what a reader can derive are omitted (the common
	 * secret has one version: created = updated = that version's time,
	 * oldest 0); this roughly halves the record of a small secret. */
	if (!(m->nv && m->ct == m->v[0].ct))
		json_object_set_new(j, "ct", json_integer(m->ct));
	if (!(m->nv && m->ut == m->v[m->nv - 1].ct))
		json_object_set_new(j, "ut", json_integer(m->ut));
	json_object_set_new(j, "cv", json_integer((json_int_t)m->cv));
	if (m->ov)
		json_object_set_new(j, "ov", json_integer((json_int_t)m->ov));
	if (m->mv)
		json_object_set_new(j, "mv", json_integer(m->mv));
	if (m->cr)
		json_object_set_new(j, "cr", json_true());
	if (m->dva)
		json_object_set_new(j, "dva", json_integer(m->dva));
	if (m->cm)
		json_object_set(j, "cm", m->cm);
	for (size_t i = 0; i < m->nv; i++)
		json_array_append_new(vs, json_pack("[I,I,I,i]", (json_int_t)m->v[i].n,
						    (json_int_t)m->v[i].ct, (json_int_t)m->v[i].dt,
						    m->v[i].destroyed ? 1 : 0));
	json_object_set(j, "vs", vs);
	if (m->data)
		json_object_set(j, "d", m->data);
	rc = view_put_json(view, key, j, err);
out:
	free(key);
	json_decref(vs);
	json_decref(j);
	return rc;
}

/* Take the path's stripe lock (for writing when `write`) and load its
 * metadata (*out NULL when the secret has none). The lock is held on return
 * whatever the result; release it with meta_unlock. */
static int meta_lock_load(struct logical_request *req, const char *path, bool write,
			  pthread_rwlock_t **lk, struct kv2_meta **out, struct verr *err)
{
	*lk = kv__stripe(req->backend, path);
	if (write)
		pthread_rwlock_wrlock(*lk);
	else
		pthread_rwlock_rdlock(*lk);
	return meta_load(req->storage, path, out, err);
}

static void meta_unlock(pthread_rwlock_t *lk, struct kv2_meta *m)
{
	pthread_rwlock_unlock(lk);
	meta_free(m);
}

/* Delete the record of older version n (v/<path>@<n>). */
static int ver_delete(const struct storage_view *view, const char *path, uint64_t n,
		      struct verr *err)
{
	char *vk = ver_key(path, n);
	if (!vk)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_delete(view, vk, err);
	free(vk);
	return rc;
}

static int meta_exists(struct logical_request *req, struct verr *err)
{
	const char *path;
	int rc = kv__req_path(req, &path, err);
	if (rc || !*path)
		return rc;
	return kv__plain_exists(req, KV2_META_PREFIX, err);
}

/* ---- config ---- */

static struct kv_config config_get(struct kv_backend *b)
{
	pthread_mutex_lock(&b->cfg_lock);
	struct kv_config c = b->cfg;
	pthread_mutex_unlock(&b->cfg_lock);
	return c;
}

int kv2__load_config(struct kv_backend *b, const struct storage_view *v, struct verr *err)
{
	json_t *j = NULL;
	int rc = view_get_json(v, KV2_CONFIG_KEY, &j, err);
	if (rc)
		return rc;
	struct kv_config c = {0};
	if (j) {
		c.max_versions = jint(j, "mv");
		c.cas_required = json_is_true(json_object_get(j, "cr"));
		c.delete_version_after = jint(j, "dva");
		json_decref(j);
	}
	pthread_mutex_lock(&b->cfg_lock);
	b->cfg = c;
	pthread_mutex_unlock(&b->cfg_lock);
	return 0;
}

/* A JSON real that is a whole number within int64 (checked before the cast:
 * converting an out-of-range double is undefined). */
static int real_is_int64(double d)
{
	return d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d;
}

/* A signed Go-style duration: integer seconds, or "1h", "-1s", "0s". */
static int parse_signed_duration(const json_t *v, int64_t *out, struct verr *err)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= -9.2e18 && json_real_value(v) <= 9.2e18) {
		*out = (int64_t)json_real_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		int neg = *s == '-';
		if (neg)
			s++;
		int64_t x = 0;
		if (*s) {
			struct verr e2 = {0};
			if (duration_parse(&x, s, &e2))
				return verr_set(err, VERR_INVALID,
						"error converting input for field \"delete_version_after\": %s",
						e2.msg);
		}
		*out = neg ? -x : x;
		return 0;
	}
	return verr_set(err, VERR_INVALID,
			"error converting input for field \"delete_version_after\": expected a duration");
}

static int config_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct kv_config c = config_get(req->backend);
	resp->data = json_pack("{s:b,s:o,s:I}", "cas_required", c.cas_required,
			       "delete_version_after", kv__duration_json(c.delete_version_after < 0 ? -1 : c.delete_version_after),
			       "max_versions", (json_int_t)c.max_versions);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int config_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct kv_backend *b = req->backend;
	bool has_mv = request_has(req, "max_versions"), has_cr = request_has(req, "cas_required"),
	     has_dva = request_has(req, "delete_version_after");
	if (!has_mv && !has_cr && !has_dva)
		return 0;
	int64_t dva = 0;
	if (has_dva) {
		int rc = parse_signed_duration(request_json(req, "delete_version_after"), &dva, err);
		if (rc)
			return rc;
	}
	if (has_mv && request_int(req, "max_versions") < 0)
		return verr_set(err, VERR_INVALID, "max_versions must not be negative");
	pthread_mutex_lock(&b->cfg_lock);
	struct kv_config c = b->cfg;
	if (has_mv)
		c.max_versions = request_int(req, "max_versions");
	if (has_cr)
		c.cas_required = request_bool(req, "cas_required");
	if (has_dva)
		c.delete_version_after = dva < 0 ? -1 : dva;
	json_t *j = json_pack("{s:I,s:b,s:I}", "mv", (json_int_t)c.max_versions, "cr",
			      c.cas_required, "dva", (json_int_t)c.delete_version_after);
	int rc = j ? view_put_json(req->storage, KV2_CONFIG_KEY, j, err)
		   : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(j);
	if (!rc)
		b->cfg = c;
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

/* ---- shared pieces of the data paths ---- */

static json_t *cm_json(const struct kv2_meta *m)
{
	return m->cm ? json_deep_copy(m->cm) : json_null();
}

/* {created_time, custom_metadata, deletion_time, destroyed, version} */
static json_t *version_json(const struct kv2_meta *m, const struct kv2_ver *vr)
{
	return json_pack("{s:o,s:o,s:o,s:b,s:I}", "created_time", kv__time_json(vr->ct),
			 "custom_metadata", cm_json(m), "deletion_time", kv__time_json(vr->dt),
			 "destroyed", vr->destroyed, "version", (json_int_t)vr->n);
}

/* Seconds after creation at which a new version is deleted: the smaller
 * non-zero of the mount's and the key's settings; 0 for never. */
static int64_t effective_dva(const struct kv_config *c, const struct kv2_meta *m)
{
	if (c->delete_version_after < 0)
		return 0; /* disabled on the mount */
	int64_t a = c->delete_version_after, k = m->dva;
	if (a > 0 && k > 0)
		return a < k ? a : k;
	return a > 0 ? a : (k > 0 ? k : 0);
}

static int cas_check(struct logical_request *req, const struct kv_config *c,
		     const struct kv2_meta *m, struct verr *err)
{
	json_t *opts = request_json(req, "options");
	json_t *cas = json_is_object(opts) ? json_object_get(opts, "cas") : NULL;
	if (cas) {
		int64_t x;
		if (json_is_integer(cas))
			x = json_integer_value(cas);
		else if (json_is_real(cas) && real_is_int64(json_real_value(cas)))
			x = (int64_t)json_real_value(cas);
		else if (json_is_string(cas)) {
			const char *s = json_string_value(cas);
			char *end;
			x = strtoll(s, &end, 10);
			if (*end)
				return verr_set(err, VERR_INVALID, "error parsing check-and-set parameter");
		} else
			return verr_set(err, VERR_INVALID, "error parsing check-and-set parameter");
		if (x < 0 || (uint64_t)x != m->cv)
			return verr_set(err, VERR_INVALID,
					"check-and-set parameter did not match the current version");
		return 0;
	}
	if (c->cas_required || m->cr)
		return verr_set(err, VERR_INVALID, "check-and-set parameter required for this call");
	return 0;
}

/* Append a new current version holding `data` (owned), prune beyond
 * max_versions, persist, and describe the new version in resp->data. Caller
 * holds the path's stripe for writing. */
static int add_version(struct logical_request *req, const char *path,
		       const struct kv_config *c, struct kv2_meta *m, json_t *data,
		       struct logical_response *resp, struct verr *err)
{
	const struct storage_view *view = req->storage;
	int rc = 0;
	uint64_t *pruned = NULL;
	size_t npruned = 0;
	struct kv2_ver *nv = realloc(m->v, (m->nv + 1) * sizeof(*m->v));
	if (!nv) {
		json_decref(data);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	m->v = nv;
	int64_t now = kv__now_ns();
	int64_t dva = effective_dva(c, m);
	uint64_t old_cv = m->cv;
	json_t *old_data = m->data; /* owned by m until replaced below */
	m->cv++;
	m->v[m->nv++] = (struct kv2_ver){.n = m->cv, .ct = now,
					 .dt = dva ? now + dva * 1000000000LL : 0};
	m->ut = now;
	if (!m->ct)
		m->ct = now;

	int64_t maxv = m->mv > c->max_versions ? m->mv : c->max_versions;
	if (maxv <= 0)
		maxv = KV_DEFAULT_MAX_VERSIONS;
	if (m->cv - m->ov >= (uint64_t)maxv) {
		uint64_t del_to = m->cv - (uint64_t)maxv;
		pruned = calloc(m->nv, sizeof(*pruned));
		if (!pruned) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		size_t w = 0;
		for (size_t i = 0; i < m->nv; i++) {
			if (m->v[i].n <= del_to)
				pruned[npruned++] = m->v[i].n;
			else
				m->v[w++] = m->v[i];
		}
		m->nv = w;
		m->ov = del_to + 1;
	}

	/* the previous current version's data moves to its own record, unless
	 * it was just pruned */
	struct kv2_ver *ov = old_cv ? meta_find(m, old_cv) : NULL;
	if (ov && old_data && !ov->destroyed) {
		char *vk = ver_key(path, old_cv);
		if (!vk) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		rc = view_put_json(view, vk, old_data, err);
		free(vk);
		if (rc)
			goto out;
	}
	m->data = data; /* transferred */
	data = NULL;
	json_decref(old_data);
	old_data = NULL;
	rc = meta_store(view, path, m, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < npruned; i++) {
		if (pruned[i] == old_cv)
			continue; /* was inline in the old m/ record, never stored apart */
		struct verr e2 = {0};
		if (ver_delete(view, path, pruned[i], &e2))
			logical_response_warn(resp, "error occurred when cleaning up old versions, "
					      "these will be cleaned up when the metadata is deleted");
	}
	resp->data = version_json(m, &m->v[m->nv - 1]);
out:
	if (rc && old_data)
		m->data = old_data; /* keep m consistent for the caller's free */
	json_decref(data);
	free(pruned);
	return rc;
}

/* The data of version vr of m: a new reference, or VERR_INTERNAL. */
static int version_data(const struct storage_view *view, const char *path,
			const struct kv2_meta *m, const struct kv2_ver *vr, json_t **out,
			struct verr *err)
{
	*out = NULL;
	if (vr->n == m->cv) {
		if (!m->data)
			return verr_set(err, VERR_INTERNAL, "could not find version data");
		*out = json_deep_copy(m->data);
		return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	char *vk = ver_key(path, vr->n);
	if (!vk)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_get_json(view, vk, out, err);
	free(vk);
	if (!rc && !*out)
		rc = verr_set(err, VERR_INTERNAL, "could not find version data");
	return rc;
}

/* Replace every leaf with null; maps at `max_depth` (if > 0) become null. */
static void strip_values(json_t *obj, int depth, int max_depth)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, k, v) {
		int cur = depth + 1;
		if (json_is_object(v) && json_object_size(v) > 0 &&
		    (max_depth == 0 || cur <= max_depth))
			strip_values(v, cur, max_depth);
		else
			json_object_set_new(obj, k, json_null());
	}
}

/* GET data/P and subkeys/P: the version asked for (or the current one). */
static int read_version(struct logical_request *req, struct logical_response *resp,
			bool subkeys, struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	const char *body_key = subkeys ? "subkeys" : "data";
	struct kv2_meta *m = NULL;
	json_t *data = NULL;
	pthread_rwlock_t *lk;
	int rc = meta_lock_load(req, path, false, &lk, &m, err);
	if (rc)
		goto out;
	if (!m) {
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	int64_t want = request_int(req, "version");
	struct kv2_ver *vr = meta_find(m, want > 0 ? (uint64_t)want : m->cv);
	if (!vr) {
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	if (ver_deleted(vr, kv__now_ns()) || vr->destroyed) {
		/* Vault: 404 with the version's metadata in the body */
		resp->data = json_pack("{s:n,s:o}", body_key, "metadata", version_json(m, vr));
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	rc = version_data(req->storage, path, m, vr, &data, err);
	if (rc)
		goto out;
	if (subkeys) {
		int64_t depth = request_int(req, "depth");
		strip_values(data, 1, depth > 0 ? (int)(depth > 1000000 ? 1000000 : depth) : 0);
	}
	resp->data = json_pack("{s:o,s:o}", body_key, data, "metadata", version_json(m, vr));
	data = NULL; /* transferred */
out:
	json_decref(data);
	meta_unlock(lk, m);
	return rc;
}

static int data_read(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	return read_version(req, resp, false, err);
}

static int subkeys_read(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return read_version(req, resp, true, err);
}

static int data_write(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	const char *path;
	int rc = kv__req_write_path(req, &path, err);
	if (rc)
		return rc;
	json_t *data = request_json(req, "data");
	if (!request_has(req, "data") || !json_is_object(data))
		return verr_set(err, VERR_INVALID, "no data provided");
	struct kv_config c = config_get(req->backend);
	struct kv2_meta *m = NULL;
	pthread_rwlock_t *lk;
	rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc)
		goto out;
	if (!m && !(m = calloc(1, sizeof(*m)))) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = cas_check(req, &c, m, err);
	if (rc)
		goto out;
	json_t *copy = json_deep_copy(data);
	if (!copy) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = add_version(req, path, &c, m, copy, resp, err);
out:
	meta_unlock(lk, m);
	return rc;
}

/* RFC 7386 JSON merge patch of target (object) by patch (object). */
static void merge_patch(json_t *target, const json_t *patch)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(target, k);
		} else if (json_is_object(v)) {
			json_t *t = json_object_get(target, k);
			if (!json_is_object(t)) {
				t = json_object();
				json_object_set_new(target, k, t);
			}
			merge_patch(t, v);
		} else {
			json_object_set_new(target, k, json_deep_copy(v));
		}
	}
}

static int data_patch(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	json_t *patch = request_json(req, "data");
	if (!request_has(req, "data") || !json_is_object(patch))
		return verr_set(err, VERR_INVALID, "no data provided");
	struct kv_config c = config_get(req->backend);
	struct kv2_meta *m = NULL;
	json_t *base = NULL;
	pthread_rwlock_t *lk;
	int rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc)
		goto out;
	if (!m) {
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	rc = cas_check(req, &c, m, err);
	if (rc)
		goto out;
	struct kv2_ver *vr = meta_find(m, m->cv);
	if (!vr) {
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	if (ver_deleted(vr, kv__now_ns()) || vr->destroyed) {
		resp->data = version_json(m, vr);
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	rc = version_data(req->storage, path, m, vr, &base, err);
	if (rc)
		goto out;
	merge_patch(base, patch);
	rc = add_version(req, path, &c, m, base, resp, err);
	base = NULL; /* transferred */
out:
	json_decref(base);
	meta_unlock(lk, m);
	return rc;
}

/* DELETE data/P: soft-delete the current version. */
static int data_delete(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	struct kv2_meta *m = NULL;
	pthread_rwlock_t *lk;
	int rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc || !m)
		goto out;
	int64_t now = kv__now_ns();
	struct kv2_ver *vr = meta_find(m, m->cv);
	if (!vr || vr->destroyed || ver_deleted(vr, now))
		goto out;
	vr->dt = now;
	rc = meta_store(req->storage, path, m, err);
out:
	meta_unlock(lk, m);
	return rc;
}

/* "versions": [1,2], "1,2", 3 or ["1","2"] -> malloc'd array. */
static int parse_versions(struct logical_request *req, uint64_t **out, size_t *n,
			  struct verr *err)
{
	*out = NULL;
	*n = 0;
	json_t *v = request_json(req, "versions");
	json_t *arr = NULL;
	int rc = 0;
	if (json_is_array(v))
		arr = json_incref(v);
	else if (json_is_integer(v) || json_is_real(v))
		arr = json_pack("[O]", v);
	else if (json_is_string(v)) {
		arr = json_array();
		const char *s = json_string_value(v);
		while (arr && *s) {
			const char *c = strchr(s, ',');
			size_t l = c ? (size_t)(c - s) : strlen(s);
			char part[32];
			if (l >= sizeof(part)) {
				json_decref(arr);
				arr = NULL;
				goto bad;
			}
			memcpy(part, s, l);
			part[l] = '\0';
			json_array_append_new(arr, json_string(part));
			s = c ? c + 1 : s + l;
		}
	} else if (v && !json_is_null(v))
		goto bad;
	size_t cnt = arr ? json_array_size(arr) : 0;
	if (cnt == 0) {
		json_decref(arr);
		return verr_set(err, VERR_INVALID, "No version number provided");
	}
	uint64_t *vs = calloc(cnt, sizeof(*vs));
	if (!vs) {
		json_decref(arr);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < cnt; i++) {
		json_t *e = json_array_get(arr, i);
		long long x;
		if (json_is_integer(e))
			x = json_integer_value(e);
		else if (json_is_real(e) && real_is_int64(json_real_value(e)))
			x = (long long)json_real_value(e);
		else if (json_is_string(e)) {
			const char *s = json_string_value(e);
			while (*s == ' ')
				s++;
			char *end;
			x = strtoll(s, &end, 10);
			while (*end == ' ')
				end++;
			if (end == s || *end) {
				free(vs);
				json_decref(arr);
				goto bad;
			}
		} else {
			free(vs);
			json_decref(arr);
			goto bad;
		}
		vs[i] = x > 0 ? (uint64_t)x : 0; /* 0 never names a version */
	}
	json_decref(arr);
	*out = vs;
	*n = cnt;
	return rc;
bad:
	return verr_set(err, VERR_INVALID,
			"error converting input for field \"versions\": expected a list of integers");
}

enum versions_op { VOP_DELETE, VOP_UNDELETE, VOP_DESTROY };

static int versions_apply(struct logical_request *req, enum versions_op op, struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	uint64_t *vs = NULL;
	size_t nvs = 0;
	int rc = parse_versions(req, &vs, &nvs, err);
	if (rc)
		return rc;
	struct kv_config c = config_get(req->backend);
	struct kv2_meta *m = NULL;
	uint64_t *drop = NULL;
	size_t ndrop = 0;
	pthread_rwlock_t *lk;
	rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc || !m)
		goto out;
	drop = calloc(nvs, sizeof(*drop));
	if (!drop) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	int64_t now = kv__now_ns();
	bool changed = false;
	for (size_t i = 0; i < nvs; i++) {
		struct kv2_ver *vr = meta_find(m, vs[i]);
		if (!vr)
			continue;
		switch (op) {
		case VOP_DELETE:
			if (vr->destroyed || ver_deleted(vr, now))
				continue;
			vr->dt = now;
			break;
		case VOP_UNDELETE: {
			if (vr->destroyed)
				continue;
			int64_t dva = effective_dva(&c, m);
			vr->dt = dva ? now + dva * 1000000000LL : 0;
			break;
		}
		case VOP_DESTROY:
			if (vr->destroyed)
				continue;
			vr->destroyed = true;
			if (vr->n == m->cv) {
				json_decref(m->data);
				m->data = NULL;
			} else {
				drop[ndrop++] = vr->n;
			}
			break;
		}
		changed = true;
	}
	if (changed)
		rc = meta_store(req->storage, path, m, err);
	/* the destroyed data goes only once the metadata no longer points at it */
	for (size_t i = 0; rc == 0 && i < ndrop; i++)
		rc = ver_delete(req->storage, path, drop[i], err);
out:
	meta_unlock(lk, m);
	free(drop);
	free(vs);
	return rc;
}

static int delete_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return versions_apply(req, VOP_DELETE, err);
}

static int undelete_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return versions_apply(req, VOP_UNDELETE, err);
}

static int destroy_write(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return versions_apply(req, VOP_DESTROY, err);
}

/* ---- metadata ---- */

static bool printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Convert a custom_metadata object to string values, dropping null values
 * when `drop_nulls` (a PATCH deletes those keys). */
static int cm_convert(const json_t *in, bool drop_nulls, json_t **out, struct verr *err)
{
	*out = json_object();
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)in, k, v) {
		json_t *s = NULL;
		if (json_is_string(v))
			s = json_incref(v);
		else if (json_is_null(v)) {
			s = drop_nulls ? json_null() : json_string("");
		} else if (json_is_boolean(v))
			s = json_string(json_is_true(v) ? "1" : "0");
		else if (json_is_integer(v) || json_is_real(v)) {
			char *t = json_dumps(v, JSON_ENCODE_ANY);
			s = json_string(t ? t : "");
			free(t);
		} else {
			json_decref(*out);
			*out = NULL;
			return verr_set(err, VERR_INVALID,
					"custom_metadata validation failed: value for key \"%.128s\" must be a string",
					k);
		}
		json_object_set_new(*out, k, s);
	}
	return 0;
}

static int cm_validate(const json_t *cm, struct verr *err)
{
	size_t n = json_object_size(cm);
	if (n > CM_MAX_KEYS)
		return verr_set(err, VERR_INVALID,
				"custom_metadata validation failed: payload must contain at most %d keys, provided %zu",
				CM_MAX_KEYS, n);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)cm, k, v) {
		size_t kl = strlen(k), vl = strlen(json_string_value(v));
		if (kl == 0 || kl > CM_MAX_KEY_LEN)
			return verr_set(err, VERR_INVALID,
					"custom_metadata validation failed: length of key \"%.128s\" is %zu but must be 0 < len(key) <= %d",
					k, kl, CM_MAX_KEY_LEN);
		if (vl == 0 || vl > CM_MAX_VALUE_LEN)
			return verr_set(err, VERR_INVALID,
					"custom_metadata validation failed: length of value for key \"%.128s\" is %zu but must be 0 < len(value) <= %d",
					k, vl, CM_MAX_VALUE_LEN);
		if (!printable(k))
			return verr_set(err, VERR_INVALID,
					"custom_metadata validation failed: key contains unprintable characters");
		if (!printable(json_string_value(v)))
			return verr_set(err, VERR_INVALID,
					"custom_metadata validation failed: value for key \"%.128s\" contains unprintable characters",
					k);
	}
	return 0;
}

static int metadata_read(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	if (!*path)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	struct kv2_meta *m = NULL;
	pthread_rwlock_t *lk;
	int rc = meta_lock_load(req, path, false, &lk, &m, err);
	pthread_rwlock_unlock(lk);
	if (rc)
		return rc;
	if (!m)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *versions = json_object();
	for (size_t i = 0; versions && i < m->nv; i++) {
		char num[24];
		snprintf(num, sizeof(num), "%llu", (unsigned long long)m->v[i].n);
		json_object_set_new(versions, num,
				    json_pack("{s:o,s:o,s:b}", "created_time", kv__time_json(m->v[i].ct),
					      "deletion_time", kv__time_json(m->v[i].dt), "destroyed",
					      m->v[i].destroyed));
	}
	resp->data = json_pack("{s:b,s:o,s:I,s:o,s:o,s:I,s:I,s:o,s:o}", "cas_required", m->cr,
			       "created_time", kv__time_json(m->ct), "current_version",
			       (json_int_t)m->cv, "custom_metadata", cm_json(m),
			       "delete_version_after", kv__duration_json(m->dva), "max_versions",
			       (json_int_t)m->mv, "oldest_version", (json_int_t)m->ov, "updated_time",
			       kv__time_json(m->ut), "versions", versions);
	meta_free(m);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int metadata_update(struct logical_request *req, struct logical_response *resp,
			   bool patch, struct verr *err)
{
	const char *path;
	int rc = kv__req_write_path(req, &path, err);
	if (rc)
		return rc;
	bool has_mv = request_has(req, "max_versions"), has_cr = request_has(req, "cas_required"),
	     has_dva = request_has(req, "delete_version_after"),
	     has_cm = request_has(req, "custom_metadata");
	if (!patch && !has_mv && !has_cr && !has_dva && !has_cm)
		return 0;
	if (has_mv && request_int(req, "max_versions") < 0)
		return verr_set(err, VERR_INVALID, "max_versions must not be negative");
	json_t *cm = NULL;
	if (has_cm) {
		rc = cm_convert(request_json(req, "custom_metadata"), patch, &cm, err);
		if (rc)
			return rc;
		if (!patch && (rc = cm_validate(cm, err))) {
			json_decref(cm);
			return rc;
		}
	}
	struct kv_config c = config_get(req->backend);
	if (has_cr && c.cas_required && !request_bool(req, "cas_required"))
		logical_response_warn(resp, "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.");
	struct kv2_meta *m = NULL;
	pthread_rwlock_t *lk;
	rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc)
		goto out;
	if (!m) {
		if (patch) {
			rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
			goto out;
		}
		if (!(m = calloc(1, sizeof(*m)))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		m->ct = m->ut = kv__now_ns();
	}
	if (has_mv)
		m->mv = request_int(req, "max_versions");
	if (has_cr)
		m->cr = request_bool(req, "cas_required");
	if (has_dva)
		m->dva = request_duration(req, "delete_version_after");
	if (has_cm && !patch) {
		json_decref(m->cm);
		m->cm = cm;
		cm = NULL;
	} else if (has_cm) {
		json_t *merged = m->cm ? json_deep_copy(m->cm) : json_object();
		if (!merged) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		merge_patch(merged, cm);
		if ((rc = cm_validate(merged, err))) {
			json_decref(merged);
			goto out;
		}
		json_decref(m->cm);
		m->cm = merged;
	}
	rc = meta_store(req->storage, path, m, err);
out:
	json_decref(cm);
	meta_unlock(lk, m);
	return rc;
}

static int metadata_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return metadata_update(req, resp, false, err);
}

static int metadata_patch(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return metadata_update(req, resp, true, err);
}

static int metadata_delete(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	const char *path;
	int prc = kv__req_path(req, &path, err);
	if (prc)
		return prc;
	if (!*path)
		return 0;
	struct kv2_meta *m = NULL;
	pthread_rwlock_t *lk;
	int rc = meta_lock_load(req, path, true, &lk, &m, err);
	if (rc || !m)
		goto out;
	/* older versions first: until m/ is gone the secret stays consistent
	 * enough to retry the delete */
	for (size_t i = 0; rc == 0 && i < m->nv; i++) {
		if (m->v[i].n != m->cv)
			rc = ver_delete(req->storage, path, m->v[i].n, err);
	}
	if (rc == 0)
		rc = kv__plain_delete(req, KV2_META_PREFIX, err);
out:
	meta_unlock(lk, m);
	return rc;
}

static int metadata_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return kv__plain_list(req, KV2_META_PREFIX, resp, err);
}

/* ---- upgrade from v1 ---- */

struct upgrade_ctx {
	const struct storage_view *view;
	int64_t now;
};

static int upgrade_convert(void *vctx, const char *key, struct verr *err)
{
	struct upgrade_ctx *u = vctx;
	json_t *data = NULL;
	int rc = view_get_json(u->view, key, &data, err);
	if (rc || !data)
		return rc;
	if (!json_is_object(data)) {
		json_t *wrapped = json_pack("{s:o}", "value", data);
		data = wrapped;
		if (!data)
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	struct kv2_ver v1 = {.n = 1, .ct = u->now};
	struct kv2_meta m = {.ct = u->now, .ut = u->now, .cv = 1, .v = &v1, .nv = 1, .data = data};
	rc = meta_store(u->view, key + strlen(KV1_PREFIX), &m, err);
	json_decref(data);
	return rc;
}

static int upgrade_remove(void *vctx, const char *key, struct verr *err)
{
	struct upgrade_ctx *u = vctx;
	return view_delete(u->view, key, err);
}

/* Steps: (1) unless the marker exists, write m/<P> for every k/<P>;
 * (2) write the marker: conversion is complete; (3) delete every k/<P>;
 * (4) delete the marker. A crash before (2) redoes (1) from scratch (the
 * v1 keys are all still there; rewriting m/<P> is idempotent); a crash
 * after (2) only finishes (3) and (4). */
int kv2__upgrade(const struct storage_view *v, struct verr *err)
{
	struct upgrade_ctx u = {.view = v, .now = kv__now_ns()};
	uint8_t *marker = NULL;
	size_t mlen = 0;
	int rc = view_get(v, KV2_UPGRADE_KEY, &marker, &mlen, err);
	if (rc)
		return rc;
	if (!marker) {
		char **keys = NULL;
		size_t n = 0;
		rc = view_list(v, KV1_PREFIX, &keys, &n, err);
		physical_list_free(keys, n);
		if (rc || n == 0)
			return rc; /* nothing to upgrade */
		rc = kv__walk(v, KV1_PREFIX, upgrade_convert, &u, err);
		if (rc)
			return rc;
		char buf[64];
		int l = snprintf(buf, sizeof(buf), "{\"done\":%lld}", (long long)u.now);
		rc = view_put(v, KV2_UPGRADE_KEY, (const uint8_t *)buf, (size_t)l, err);
		if (rc)
			return rc;
	}
	free(marker);
	rc = kv__walk(v, KV1_PREFIX, upgrade_remove, &u, err);
	if (rc)
		return rc;
	return view_delete(v, KV2_UPGRADE_KEY, err);
}

/* ---- path table ---- */

static const struct field_def data_fields[] = {
	{"path", FT_STRING, NULL, "Location of the secret.", false},
	{"version", FT_INT, "0", "The version to read; 0 or unset means the latest.", false},
	{"options", FT_MAP, NULL, "Write options; \"cas\" for check-and-set.", false},
	{"data", FT_MAP, NULL, "The secret's key/value data.", false},
	{NULL},
};

static const struct field_def versions_fields[] = {
	{"path", FT_STRING, NULL, "Location of the secret.", false},
	{"versions", FT_ANY, NULL, "The versions to act on.", false},
	{NULL},
};

static const struct field_def metadata_fields[] = {
	{"path", FT_STRING, NULL, "Location of the secret.", false},
	{"max_versions", FT_INT, NULL, "Versions to keep for this key; 0 uses the mount's.", false},
	{"cas_required", FT_BOOL, NULL, "Require check-and-set on writes of this key.", false},
	{"delete_version_after", FT_DURATION, NULL, "Delete versions this long after creation.",
	 false},
	{"custom_metadata", FT_MAP, NULL, "User-provided string key/value pairs.", false},
	{"after", FT_STRING, NULL, "List only entries after this one.", false},
	{"limit", FT_INT, NULL, "List at most this many entries.", false},
	{NULL},
};

static const struct field_def subkeys_fields[] = {
	{"path", FT_STRING, NULL, "Location of the secret.", false},
	{"version", FT_INT, "0", "The version to read; 0 or unset means the latest.", false},
	{"depth", FT_INT, "0", "Deepest nesting level to show; 0 for no limit.", false},
	{NULL},
};

static const struct field_def config_fields[] = {
	{"max_versions", FT_INT, NULL, "Versions to keep per key; 0 means 10.", false},
	{"cas_required", FT_BOOL, NULL, "Require check-and-set on every write.", false},
	{"delete_version_after", FT_ANY, NULL,
	 "Delete versions this long after creation; negative disables, 0 clears.", false},
	{NULL},
};

static const struct path_def kv2_paths[] = {
	{.pattern = "config",
	 .fields = config_fields,
	 .ops = {{LOP_READ, config_read}, {LOP_UPDATE, config_write}},
	 .help = "Configures settings for the KV store."},
	{.pattern = "data/{path*}",
	 .fields = data_fields,
	 .ops = {{LOP_READ, data_read},
		 {LOP_CREATE, data_write},
		 {LOP_UPDATE, data_write},
		 {LOP_PATCH, data_patch},
		 {LOP_DELETE, data_delete}},
	 .exists = meta_exists,
	 .help = "Write, patch, read and delete versioned data in the key-value store."},
	{.pattern = "delete/{path*}",
	 .fields = versions_fields,
	 .ops = {{LOP_UPDATE, delete_write}},
	 .help = "Marks one or more versions as deleted."},
	{.pattern = "undelete/{path*}",
	 .fields = versions_fields,
	 .ops = {{LOP_UPDATE, undelete_write}},
	 .help = "Undeletes one or more versions."},
	{.pattern = "destroy/{path*}",
	 .fields = versions_fields,
	 .ops = {{LOP_UPDATE, destroy_write}},
	 .help = "Permanently removes one or more versions' data."},
	{.pattern = "metadata/{path**}",
	 .fields = metadata_fields,
	 .ops = {{LOP_READ, metadata_read},
		 {LOP_CREATE, metadata_write},
		 {LOP_UPDATE, metadata_write},
		 {LOP_PATCH, metadata_patch},
		 {LOP_DELETE, metadata_delete},
		 {LOP_LIST, metadata_list}},
	 .exists = meta_exists,
	 .help = "Read, list, configure and permanently delete keys and all their versions."},
	{.pattern = "subkeys/{path*}",
	 .fields = subkeys_fields,
	 .ops = {{LOP_READ, subkeys_read}},
	 .help = "Read the structure of a secret with its values removed."},
	{NULL},
};

const struct path_def *kv2__paths(void)
{
	return kv2_paths;
}
