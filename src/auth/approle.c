/*
 * approle.c - the AppRole auth method (type "approle"): machines log in with
 * a role ID (which role) and a secret ID (proof), both issued by Coffer.
 *
 * DESIGN
 * Storage (the mount's view, below the barrier); H(x) = hex
 * HMAC-SHA256(mount key, x), the key being 32 random bytes made at the
 * first init and kept at "hmac_key":
 *   role/<name>                 role config (includes its role_id)
 *   role_id/<H(role_id)>        {"name": <role name>}       login index
 *   secret_id/<H(name)>/<H(secret_id)>   secret ID entry (never the secret)
 *   accessor/<H(accessor)>      {"role": H(name), "secret": H(secret_id)}
 * Role names are lower-cased (case-insensitive, as in Vault).
 * A secret ID entry: hmac, accessor, creation/last-updated times, expiration
 *   (0 = never), num_uses remaining (0 = unlimited), ttl, metadata,
 *   cidr_list, token_bound_cidrs. Login recomputes H(secret_id), loads the
 *   entry and compares the stored HMAC with CRYPTO_memcmp.
 * Concurrency: every read-check-update of a secret ID entry (login, destroy,
 *   tidy) runs under one of 64 per-mount stripe mutexes chosen by H(secret);
 *   the same secret always maps to the same stripe, so two logins with one
 *   use left cannot both succeed: the first decrements to 0 and deletes the
 *   entry, the second finds nothing. Role writes take role_lock.
 * Errors: an unknown role ID, unknown/expired/used-up secret ID all answer
 *   400 "invalid role or secret ID" (no oracle for which part was wrong).
 */
#include "auth/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cidr.h"
#include "util/rand.h"
#include "util/secmem.h"

#define AR_KEY_LEN 32
#define AR_H_LEN 64 /* hex chars */
#define AR_STRIPES 64
#define AR_BAD_LOGIN "invalid role or secret ID"

struct approle {
	uint8_t *key;                 /* secmem, AR_KEY_LEN: immutable once serving */
	bool key_missing;             /* a new mount: initialize makes the key */
	const struct storage_view *view; /* the mount's (borrowed) */
	pthread_mutex_t role_lock;    /* role writes and role_id index */
	pthread_mutex_t stripes[AR_STRIPES]; /* secret ID entries, by H(secret) */
};

/* ---- helpers ---- */

static void hmac_hex(const struct approle *ar, const char *in, char out[AR_H_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	HMAC(EVP_sha256(), ar->key, AR_KEY_LEN, (const unsigned char *)in, strlen(in), md, &mdlen);
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[AR_H_LEN] = '\0';
}

static pthread_mutex_t *stripe_of(struct approle *ar, const char *h)
{
	unsigned v = 0;
	for (int i = 0; i < 2; i++)
		v = v * 16 + (unsigned)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
	return &ar->stripes[v % AR_STRIPES];
}

static int64_t now_secs(long *nsec)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (nsec)
		*nsec = ts.tv_nsec;
	return (int64_t)ts.tv_sec;
}

static bool role_name_valid(const char *s)
{
	size_t l = strlen(s);
	if (!l || l >= 4096)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == '@' || c == ' '))
			return false;
	}
	return true;
}

/* The request's role name, lower-cased; *out is malloc'd. */
static int req_role(char **out, const struct logical_request *req, struct verr *err)
{
	const char *n = request_str(req, "role_name");
	*out = NULL;
	if (!n || !*n)
		return verr_set(err, VERR_INVALID, "missing role_name");
	if (!role_name_valid(n))
		return verr_set(err, VERR_INVALID, "invalid role_name: use letters, digits, space, '_', '-', '.' or '@' (under 4096 bytes)");
	*out = strdup(n);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	auth_lower(*out);
	return 0;
}

static int role_get(const struct logical_request *req, const char *name, json_t **out,
		    struct verr *err)
{
	char *key = NULL;
	if (asprintf(&key, "role/%s", name) < 0)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_get_json(req->storage, key, out, err);
	free(key);
	return rc;
}

static int role_put(const struct logical_request *req, const char *name, const json_t *r,
		    struct verr *err)
{
	char *key = NULL;
	if (asprintf(&key, "role/%s", name) < 0)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_put_json(req->storage, key, r, err);
	free(key);
	return rc;
}

/* Load a role that must exist (sub-paths): 400 'role "x" does not exist'. */
static int role_must(const struct logical_request *req, char **name, json_t **role,
		     struct verr *err)
{
	*role = NULL;
	int rc = req_role(name, req, err);
	if (rc)
		return rc;
	rc = role_get(req, *name, role, err);
	if (rc == 0 && !*role)
		rc = verr_set(err, VERR_INVALID, "role \"%.128s\" does not exist", *name);
	if (rc) {
		free(*name);
		*name = NULL;
	}
	return rc;
}

static void secret_key(char *buf, size_t cap, const char *role_h, const char *secret_h)
{
	snprintf(buf, cap, "secret_id/%s/%s", role_h, secret_h);
}

static void accessor_key(const struct approle *ar, char *buf, size_t cap, const char *accessor)
{
	char h[AR_H_LEN + 1];
	hmac_hex(ar, accessor, h);
	snprintf(buf, cap, "accessor/%s", h);
}

static json_t *arr_copy(const json_t *v)
{
	return json_is_array(v) ? json_deep_copy(v) : json_array();
}

/* ---- roles ---- */

static int role_exists(struct logical_request *req, struct verr *err)
{
	char *name = NULL;
	json_t *r = NULL;
	if (req_role(&name, req, NULL))
		return 0;
	int rc = role_get(req, name, &r, err);
	free(name);
	json_decref(r);
	return rc ? rc : r != NULL;
}

/* Point role_id's index at name, refusing an id another role uses. Caller
 * holds role_lock. */
static int role_id_bind(struct logical_request *req, const char *name, const char *role_id,
			struct verr *err)
{
	struct approle *ar = req->backend;
	char h[AR_H_LEN + 1], key[AR_H_LEN + 16];
	json_t *cur = NULL;
	hmac_hex(ar, role_id, h);
	snprintf(key, sizeof(key), "role_id/%s", h);
	int rc = view_get_json(req->storage, key, &cur, err);
	if (rc)
		return rc;
	const char *owner = json_string_value(json_object_get(cur, "name"));
	if (owner && strcmp(owner, name)) {
		json_decref(cur);
		return verr_set(err, VERR_INVALID, "role_id already in use");
	}
	json_decref(cur);
	json_t *idx = json_pack("{s:s}", "name", name);
	rc = idx ? view_put_json(req->storage, key, idx, err)
		 : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(idx);
	return rc;
}

static int role_id_unbind(struct logical_request *req, const char *role_id, struct verr *err)
{
	char h[AR_H_LEN + 1], key[AR_H_LEN + 16];
	if (!role_id)
		return 0;
	hmac_hex(req->backend, role_id, h);
	snprintf(key, sizeof(key), "role_id/%s", h);
	return view_delete(req->storage, key, err);
}

static int h_role_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct approle *ar = req->backend;
	char *name = NULL;
	json_t *r = NULL;
	int rc = req_role(&name, req, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ar->role_lock);
	rc = role_get(req, name, &r, err);
	if (rc)
		goto out;
	bool creating = r == NULL;
	if (creating) {
		r = json_pack("{s:b,s:[],s:I,s:I,s:b,s:o}", "bind_secret_id", 1,
			      "secret_id_bound_cidrs", "secret_id_num_uses", (json_int_t)0,
			      "secret_id_ttl", (json_int_t)0, "local_secret_ids", 0, "token",
			      auth_token_cfg_new());
		if (!r) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	if (request_has(req, "bind_secret_id"))
		json_object_set_new(r, "bind_secret_id", json_boolean(request_bool(req, "bind_secret_id")));
	const char *cf = request_has(req, "secret_id_bound_cidrs") ? "secret_id_bound_cidrs"
			 : request_has(req, "bound_cidr_list")     ? "bound_cidr_list" : NULL;
	if (cf) {
		rc = auth_cidrs_check(request_json(req, cf), cf, err);
		if (rc)
			goto out;
		json_object_set_new(r, "secret_id_bound_cidrs", arr_copy(request_json(req, cf)));
		if (!strcmp(cf, "bound_cidr_list"))
			logical_response_warn(resp, "The \"bound_cidr_list\" parameter is deprecated and will be removed in favor of \"secret_id_bound_cidrs\".");
	}
	if (request_has(req, "secret_id_num_uses")) {
		int64_t n = request_int(req, "secret_id_num_uses");
		if (n < 0) {
			rc = verr_set(err, VERR_INVALID, "secret_id_num_uses cannot be negative");
			goto out;
		}
		json_object_set_new(r, "secret_id_num_uses", json_integer(n));
	}
	if (request_has(req, "secret_id_ttl"))
		json_object_set_new(r, "secret_id_ttl", json_integer(request_duration(req, "secret_id_ttl")));
	const char *lf = request_has(req, "local_secret_ids") ? "local_secret_ids"
			 : request_has(req, "enable_local_secret_ids") ? "enable_local_secret_ids" : NULL;
	if (lf) {
		bool want = request_bool(req, lf);
		if (!creating && want != json_is_true(json_object_get(r, "local_secret_ids"))) {
			rc = verr_set(err, VERR_INVALID, "local_secret_ids can only be modified during role creation");
			goto out;
		}
		json_object_set_new(r, "local_secret_ids", json_boolean(want));
	}
	json_t *cfg = json_object_get(r, "token");
	if (!json_is_object(cfg)) {
		cfg = auth_token_cfg_new();
		json_object_set_new(r, "token", cfg);
	}
	rc = auth_token_cfg_update(cfg, req, AUTH_LEGACY_PERIOD, err);
	if (rc)
		goto out;
	if (!json_is_true(json_object_get(r, "bind_secret_id")) &&
	    !json_array_size(json_object_get(r, "secret_id_bound_cidrs")) &&
	    !json_array_size(json_object_get(cfg, "token_bound_cidrs"))) {
		rc = verr_set(err, VERR_INVALID, "at least one constraint should be enabled on the role");
		goto out;
	}
	/* role_id: given, kept, or a fresh UUID */
	const char *old_id = json_string_value(json_object_get(r, "role_id"));
	const char *want_id = request_has(req, "role_id") ? request_str(req, "role_id") : NULL;
	char fresh[37];
	if (want_id && !*want_id) {
		rc = verr_set(err, VERR_INVALID, "role_id cannot be empty");
		goto out;
	}
	if (!want_id && !old_id) {
		rc = rand_uuid(fresh, err);
		if (rc)
			goto out;
		want_id = fresh;
	}
	if (want_id && (!old_id || strcmp(old_id, want_id))) {
		rc = role_id_bind(req, name, want_id, err);
		if (rc)
			goto out;
		rc = role_id_unbind(req, old_id, err);
		if (rc)
			goto out;
		json_object_set_new(r, "role_id", json_string(want_id));
	}
	rc = role_put(req, name, r, err);
out:
	pthread_mutex_unlock(&ar->role_lock);
	json_decref(r);
	free(name);
	return rc;
}

static int h_role_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char *name = NULL;
	json_t *r = NULL;
	int rc = req_role(&name, req, err);
	if (!rc)
		rc = role_get(req, name, &r, err);
	free(name);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *d = json_pack("{s:b,s:b,s:o,s:I,s:I}", "bind_secret_id",
			      json_is_true(json_object_get(r, "bind_secret_id")), "local_secret_ids",
			      json_is_true(json_object_get(r, "local_secret_ids")),
			      "secret_id_bound_cidrs", arr_copy(json_object_get(r, "secret_id_bound_cidrs")),
			      "secret_id_num_uses",
			      (json_int_t)json_integer_value(json_object_get(r, "secret_id_num_uses")),
			      "secret_id_ttl",
			      (json_int_t)json_integer_value(json_object_get(r, "secret_id_ttl")));
	if (d)
		auth_token_cfg_to_data(d, json_object_get(r, "token"));
	json_decref(r);
	resp->data = d;
	return d ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_role_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, "role/", &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (arr && !strchr(keys[i], '/'))
			json_array_append_new(arr, json_string(keys[i]));
		free(keys[i]);
	}
	free(keys);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!json_array_size(arr)) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* Delete one secret ID entry and its accessor index. Caller holds the
 * entry's stripe. */
static int secret_delete(struct logical_request *req, const char *role_h, const char *secret_h,
			 const json_t *entry, struct verr *err)
{
	char key[2 * AR_H_LEN + 32];
	const char *acc = json_string_value(json_object_get(entry, "secret_id_accessor"));
	if (acc) {
		accessor_key(req->backend, key, sizeof(key), acc);
		int rc = view_delete(req->storage, key, err);
		if (rc)
			return rc;
	}
	secret_key(key, sizeof(key), role_h, secret_h);
	return view_delete(req->storage, key, err);
}

typedef int (*secret_visit_fn)(struct logical_request *req, const char *role_h,
			       const char *secret_h, json_t *entry, void *ctx, struct verr *err);

/* Visit every secret ID entry of one role (by H(name)), each under its
 * stripe lock; entries that vanish meanwhile are skipped. */
static int secrets_foreach(struct logical_request *req, const char *role_h, secret_visit_fn fn,
			   void *ctx, struct verr *err)
{
	struct approle *ar = req->backend;
	char prefix[AR_H_LEN + 16], key[2 * AR_H_LEN + 32];
	char **keys = NULL;
	size_t n = 0;
	snprintf(prefix, sizeof(prefix), "secret_id/%s/", role_h);
	int rc = view_list(req->storage, prefix, &keys, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (rc || strlen(keys[i]) != AR_H_LEN)
			continue;
		pthread_mutex_t *mu = stripe_of(ar, keys[i]);
		json_t *e = NULL;
		pthread_mutex_lock(mu);
		secret_key(key, sizeof(key), role_h, keys[i]);
		rc = view_get_json(req->storage, key, &e, err);
		if (rc == 0 && e)
			rc = fn(req, role_h, keys[i], e, ctx, err);
		pthread_mutex_unlock(mu);
		json_decref(e);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return rc;
}

static int visit_delete(struct logical_request *req, const char *role_h, const char *secret_h,
			json_t *entry, void *ctx, struct verr *err)
{
	return secret_delete(req, role_h, secret_h, entry, err);
}

static int h_role_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct approle *ar = req->backend;
	char *name = NULL, *key = NULL;
	json_t *r = NULL;
	char role_h[AR_H_LEN + 1];
	int rc = req_role(&name, req, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ar->role_lock);
	rc = role_get(req, name, &r, err);
	if (rc || !r)
		goto out;
	hmac_hex(ar, name, role_h);
	rc = secrets_foreach(req, role_h, visit_delete, NULL, err);
	if (!rc)
		rc = role_id_unbind(req, json_string_value(json_object_get(r, "role_id")), err);
	if (!rc && asprintf(&key, "role/%s", name) < 0)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = view_delete(req->storage, key, err);
out:
	pthread_mutex_unlock(&ar->role_lock);
	json_decref(r);
	free(key);
	free(name);
	return rc;
}

static int h_role_id_read(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	char *name = NULL;
	json_t *r = NULL;
	int rc = req_role(&name, req, err);
	if (!rc)
		rc = role_get(req, name, &r, err);
	free(name);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	resp->data = json_pack("{s:O}", "role_id", json_object_get(r, "role_id"));
	json_decref(r);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_role_id_write(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	struct approle *ar = req->backend;
	char *name = NULL;
	json_t *r = NULL;
	const char *want = request_str(req, "role_id");
	if (!want || !*want)
		return verr_set(err, VERR_INVALID, "missing role_id");
	int rc = req_role(&name, req, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ar->role_lock);
	rc = role_get(req, name, &r, err);
	if (rc)
		goto out;
	if (!r) {
		rc = verr_set(err, VERR_NOT_FOUND, "role \"%.128s\" does not exist", name);
		goto out;
	}
	const char *old = json_string_value(json_object_get(r, "role_id"));
	if (old && !strcmp(old, want))
		goto out;
	rc = role_id_bind(req, name, want, err);
	if (!rc)
		rc = role_id_unbind(req, old, err);
	if (rc)
		goto out;
	json_object_set_new(r, "role_id", json_string(want));
	rc = role_put(req, name, r, err);
out:
	pthread_mutex_unlock(&ar->role_lock);
	json_decref(r);
	free(name);
	return rc;
}

/* ---- secret IDs ---- */

/* metadata: a JSON object of strings, sent as a JSON-encoded string (the
 * documented form) or as an object. *out is a new object. */
static int parse_metadata(json_t **out, const struct logical_request *req, struct verr *err)
{
	const json_t *v = request_json(req, "metadata");
	json_t *obj = NULL;
	*out = NULL;
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v))) {
		obj = json_object();
	} else if (json_is_string(v)) {
		obj = json_loads(json_string_value(v), 0, NULL);
	} else if (json_is_object(v)) {
		obj = json_deep_copy(v);
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		return verr_set(err, VERR_INVALID, "failed to parse metadata: must be a JSON object of strings");
	}
	const char *k;
	json_t *x;
	json_object_foreach(obj, k, x) {
		if (!json_is_string(x)) {
			json_decref(obj);
			return verr_set(err, VERR_INVALID, "failed to parse metadata: value of \"%.64s\" is not a string", k);
		}
	}
	*out = obj;
	return 0;
}

/* Shared by secret-id and custom-secret-id. */
static int issue_secret(struct logical_request *req, struct logical_response *resp,
			const char *custom, struct verr *err)
{
	struct approle *ar = req->backend;
	char *name = NULL;
	json_t *r = NULL, *meta = NULL, *entry = NULL, *idx = NULL;
	char secret[37], accessor[37], role_h[AR_H_LEN + 1], secret_h[AR_H_LEN + 1];
	char key[2 * AR_H_LEN + 32];
	int rc = role_must(req, &name, &r, err);
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(r, "bind_secret_id"))) {
		rc = verr_set(err, VERR_INVALID, "bind_secret_id is not set on the role");
		goto out;
	}
	rc = parse_metadata(&meta, req, err);
	if (rc)
		goto out;
	int64_t role_uses = json_integer_value(json_object_get(r, "secret_id_num_uses"));
	int64_t role_ttl = json_integer_value(json_object_get(r, "secret_id_ttl"));
	int64_t uses = request_has(req, "num_uses") ? request_int(req, "num_uses") : role_uses;
	int64_t ttl = request_has(req, "ttl") ? request_duration(req, "ttl") : role_ttl;
	if (uses < 0) {
		rc = verr_set(err, VERR_INVALID, "num_uses cannot be negative");
		goto out;
	}
	if (role_uses > 0 && (uses == 0 || uses > role_uses)) {
		rc = verr_set(err, VERR_INVALID, "num_uses cannot be higher than the role's secret_id_num_uses");
		goto out;
	}
	if (role_ttl > 0 && (ttl == 0 || ttl > role_ttl)) {
		rc = verr_set(err, VERR_INVALID, "ttl cannot be longer than the role's secret_id_ttl");
		goto out;
	}
	const json_t *cidrs = request_json(req, "cidr_list");
	const json_t *tcidrs = request_json(req, "token_bound_cidrs");
	if ((rc = auth_cidrs_check(cidrs, "cidr_list", err)) ||
	    (rc = auth_cidrs_check(tcidrs, "token_bound_cidrs", err)))
		goto out;
	if (!cidr_list_within(cidrs, json_object_get(r, "secret_id_bound_cidrs"))) {
		rc = verr_set(err, VERR_INVALID, "cidr_list must be a subset of the role's secret_id_bound_cidrs");
		goto out;
	}
	if (!cidr_list_within(tcidrs, json_object_get(json_object_get(r, "token"), "token_bound_cidrs"))) {
		rc = verr_set(err, VERR_INVALID, "token_bound_cidrs must be a subset of the role's token_bound_cidrs");
		goto out;
	}
	if (custom) {
		if (strlen(custom) > 4096) {
			rc = verr_set(err, VERR_INVALID, "secret_id is too long");
			goto out;
		}
	} else if ((rc = rand_uuid(secret, err))) {
		goto out;
	}
	if ((rc = rand_uuid(accessor, err)))
		goto out;
	const char *sid = custom ? custom : secret;
	hmac_hex(ar, name, role_h);
	hmac_hex(ar, sid, secret_h);
	long nsec;
	int64_t now = now_secs(&nsec);
	entry = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:o,s:o}", "hmac", secret_h,
			  "secret_id_accessor", accessor, "creation_time", (json_int_t)now,
			  "creation_nsec", (json_int_t)nsec, "last_updated_time", (json_int_t)now,
			  "last_updated_nsec", (json_int_t)nsec, "expiration_time",
			  (json_int_t)(ttl > 0 ? now + ttl : 0), "secret_id_ttl", (json_int_t)ttl,
			  "secret_id_num_uses", (json_int_t)uses, "metadata", meta, "cidr_list",
			  arr_copy(cidrs), "token_bound_cidrs", arr_copy(tcidrs));
	idx = json_pack("{s:s,s:s}", "role", role_h, "secret", secret_h);
	if (!entry || !idx) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	pthread_mutex_t *mu = stripe_of(ar, secret_h);
	pthread_mutex_lock(mu);
	json_t *dup = NULL;
	secret_key(key, sizeof(key), role_h, secret_h);
	rc = view_get_json(req->storage, key, &dup, err);
	if (!rc && dup)
		rc = verr_set(err, VERR_INVALID, "secret_id is already registered");
	json_decref(dup);
	if (!rc)
		rc = view_put_json(req->storage, key, entry, err);
	if (!rc) {
		accessor_key(ar, key, sizeof(key), accessor);
		rc = view_put_json(req->storage, key, idx, err);
	}
	pthread_mutex_unlock(mu);
	if (rc)
		goto out;
	resp->data = json_pack("{s:s,s:s,s:I,s:I}", "secret_id", sid, "secret_id_accessor",
			       accessor, "secret_id_ttl", (json_int_t)ttl, "secret_id_num_uses",
			       (json_int_t)uses);
	if (!resp->data)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	secmem_wipe(secret, sizeof(secret));
	json_decref(meta);
	json_decref(entry);
	json_decref(idx);
	json_decref(r);
	free(name);
	return rc;
}

static int h_secret_generate(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	return issue_secret(req, resp, NULL, err);
}

static int h_secret_custom(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	const char *s = request_str(req, "secret_id");
	if (!s || !*s)
		return verr_set(err, VERR_INVALID, "missing secret_id");
	return issue_secret(req, resp, s, err);
}

static int visit_accessor(struct logical_request *req, const char *role_h, const char *secret_h,
			  json_t *entry, void *ctx, struct verr *err)
{
	int64_t exp = json_integer_value(json_object_get(entry, "expiration_time"));
	if (exp > 0 && exp <= now_secs(NULL))
		return 0; /* expired: tidy's business */
	const char *acc = json_string_value(json_object_get(entry, "secret_id_accessor"));
	if (acc)
		json_array_append_new(ctx, json_string(acc));
	return 0;
}

static int h_secret_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	char *name = NULL;
	json_t *r = NULL;
	char role_h[AR_H_LEN + 1];
	int rc = role_must(req, &name, &r, err);
	if (rc)
		return rc;
	json_decref(r);
	hmac_hex(req->backend, name, role_h);
	free(name);
	json_t *keys = json_array();
	if (!keys)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = secrets_foreach(req, role_h, visit_accessor, keys, err);
	if (rc || !json_array_size(keys)) {
		json_decref(keys);
		return rc ? rc : verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", keys);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static json_t *entry_view(const json_t *e)
{
	char created[64], updated[64], expires[64];
	auth_time_format(created, sizeof(created),
			 json_integer_value(json_object_get(e, "creation_time")),
			 (long)json_integer_value(json_object_get(e, "creation_nsec")));
	auth_time_format(updated, sizeof(updated),
			 json_integer_value(json_object_get(e, "last_updated_time")),
			 (long)json_integer_value(json_object_get(e, "last_updated_nsec")));
	auth_time_format(expires, sizeof(expires),
			 json_integer_value(json_object_get(e, "expiration_time")), 0);
	json_t *meta = json_object_get(e, "metadata");
	return json_pack("{s:o,s:s,s:s,s:s,s:o,s:O,s:I,s:I,s:o}", "cidr_list",
			 arr_copy(json_object_get(e, "cidr_list")), "creation_time", created,
			 "expiration_time", expires, "last_updated_time", updated, "metadata",
			 json_is_object(meta) ? json_deep_copy(meta) : json_object(),
			 "secret_id_accessor", json_object_get(e, "secret_id_accessor"),
			 "secret_id_num_uses",
			 (json_int_t)json_integer_value(json_object_get(e, "secret_id_num_uses")),
			 "secret_id_ttl",
			 (json_int_t)json_integer_value(json_object_get(e, "secret_id_ttl")),
			 "token_bound_cidrs", arr_copy(json_object_get(e, "token_bound_cidrs")));
}

/* Resolve (role, secret_id or accessor) to the entry's hashes. 1 found,
 * 0 not found, <0 error. */
static int locate(struct logical_request *req, const char *role_name, bool by_accessor,
		  char role_h[AR_H_LEN + 1], char secret_h[AR_H_LEN + 1], struct verr *err)
{
	struct approle *ar = req->backend;
	hmac_hex(ar, role_name, role_h);
	if (!by_accessor) {
		const char *s = request_str(req, "secret_id");
		if (!s || !*s)
			return verr_set(err, VERR_INVALID, "missing secret_id");
		hmac_hex(ar, s, secret_h);
		return 1;
	}
	const char *a = request_str(req, "secret_id_accessor");
	char key[AR_H_LEN + 16];
	json_t *idx = NULL;
	if (!a || !*a)
		return verr_set(err, VERR_INVALID, "missing secret_id_accessor");
	accessor_key(ar, key, sizeof(key), a);
	int rc = view_get_json(req->storage, key, &idx, err);
	if (rc)
		return rc;
	const char *rh = json_string_value(json_object_get(idx, "role"));
	const char *sh = json_string_value(json_object_get(idx, "secret"));
	/* an accessor of another role on this mount is not found here */
	int found = rh && sh && strlen(sh) == AR_H_LEN && !strcmp(rh, role_h);
	if (found)
		memcpy(secret_h, sh, AR_H_LEN + 1);
	json_decref(idx);
	return found;
}

static int secret_lookup_or_destroy(struct logical_request *req, struct logical_response *resp,
				    bool by_accessor, bool destroy, struct verr *err)
{
	struct approle *ar = req->backend;
	char *name = NULL;
	json_t *r = NULL, *e = NULL;
	char role_h[AR_H_LEN + 1], secret_h[AR_H_LEN + 1], key[2 * AR_H_LEN + 32];
	int rc = role_must(req, &name, &r, err);
	if (rc)
		return rc;
	json_decref(r);
	rc = locate(req, name, by_accessor, role_h, secret_h, err);
	free(name);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		const char *a = request_str(req, "secret_id_accessor");
		return verr_set(err, VERR_NOT_FOUND,
				"failed to find accessor entry for secret_id_accessor: \"%.64s\"",
				a ? a : "");
	}
	pthread_mutex_t *mu = stripe_of(ar, secret_h);
	pthread_mutex_lock(mu);
	secret_key(key, sizeof(key), role_h, secret_h);
	rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		goto out;
	int64_t exp = json_integer_value(json_object_get(e, "expiration_time"));
	if (e && exp > 0 && exp <= now_secs(NULL)) {
		rc = secret_delete(req, role_h, secret_h, e, err);
		json_decref(e);
		e = NULL;
		if (rc)
			goto out;
	}
	if (!e) {
		/* destroy of a missing secret is a no-op, as in Vault */
		if (!destroy)
			rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		goto out;
	}
	if (destroy) {
		rc = secret_delete(req, role_h, secret_h, e, err);
	} else {
		resp->data = entry_view(e);
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
out:
	pthread_mutex_unlock(mu);
	json_decref(e);
	return rc;
}

static int h_secret_lookup(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return secret_lookup_or_destroy(req, resp, false, false, err);
}

static int h_secret_destroy(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	return secret_lookup_or_destroy(req, resp, false, true, err);
}

static int h_accessor_lookup(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	return secret_lookup_or_destroy(req, resp, true, false, err);
}

static int h_accessor_destroy(struct logical_request *req, struct logical_response *resp,
			      struct verr *err)
{
	return secret_lookup_or_destroy(req, resp, true, true, err);
}

/* ---- login ---- */

/* Find the role for a role_id: *name (malloc'd) and *role, or both NULL. */
static int role_by_id(struct logical_request *req, const char *role_id, char **name,
		      json_t **role, struct verr *err)
{
	char h[AR_H_LEN + 1], key[AR_H_LEN + 16];
	json_t *idx = NULL;
	*name = NULL;
	*role = NULL;
	hmac_hex(req->backend, role_id, h);
	snprintf(key, sizeof(key), "role_id/%s", h);
	int rc = view_get_json(req->storage, key, &idx, err);
	if (rc || !idx)
		return rc;
	const char *n = json_string_value(json_object_get(idx, "name"));
	if (n) {
		rc = role_get(req, n, role, err);
		if (rc == 0 && *role) {
			const char *stored = json_string_value(json_object_get(*role, "role_id"));
			/* the index may be stale after a role_id change */
			if (!stored || !secmem_streq(stored, role_id)) {
				json_decref(*role);
				*role = NULL;
			} else if (!(*name = strdup(n))) {
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
			}
		}
	}
	json_decref(idx);
	if (rc || !*name) {
		json_decref(*role);
		*role = NULL;
	}
	return rc;
}

/* Check and consume one use of the secret ID. *entry_out: the entry as it
 * was before this use (for metadata and token CIDRs). */
static int secret_consume(struct logical_request *req, const char *name, const char *secret_id,
			  const json_t *role_token_cidrs, json_t **entry_out, struct verr *err)
{
	struct approle *ar = req->backend;
	char role_h[AR_H_LEN + 1], secret_h[AR_H_LEN + 1], key[2 * AR_H_LEN + 32];
	json_t *e = NULL;
	*entry_out = NULL;
	hmac_hex(ar, name, role_h);
	hmac_hex(ar, secret_id, secret_h);
	pthread_mutex_t *mu = stripe_of(ar, secret_h);
	pthread_mutex_lock(mu);
	secret_key(key, sizeof(key), role_h, secret_h);
	int rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		goto out;
	const char *stored = json_string_value(json_object_get(e, "hmac"));
	if (!e || !stored || strlen(stored) != AR_H_LEN ||
	    CRYPTO_memcmp(stored, secret_h, AR_H_LEN) != 0) {
		rc = verr_set(err, VERR_INVALID, AR_BAD_LOGIN);
		goto out;
	}
	long nsec;
	int64_t now = now_secs(&nsec);
	int64_t exp = json_integer_value(json_object_get(e, "expiration_time"));
	if (exp > 0 && exp <= now) {
		rc = secret_delete(req, role_h, secret_h, e, err);
		if (!rc)
			rc = verr_set(err, VERR_INVALID, AR_BAD_LOGIN);
		goto out;
	}
	if (!cidr_list_allows(json_object_get(e, "cidr_list"), req->remote_addr)) {
		rc = verr_set(err, VERR_INVALID,
			      "source address \"%.64s\" unauthorized through CIDR restrictions on the secret ID",
			      req->remote_addr ? req->remote_addr : "");
		goto out;
	}
	const json_t *tc = json_array_size(json_object_get(e, "token_bound_cidrs"))
				   ? json_object_get(e, "token_bound_cidrs") : role_token_cidrs;
	if (!cidr_list_allows(tc, req->remote_addr)) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	int64_t uses = json_integer_value(json_object_get(e, "secret_id_num_uses"));
	if (uses == 1) {
		rc = secret_delete(req, role_h, secret_h, e, err);
	} else if (uses > 1) {
		json_t *upd = json_deep_copy(e);
		if (!upd) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		json_object_set_new(upd, "secret_id_num_uses", json_integer(uses - 1));
		json_object_set_new(upd, "last_updated_time", json_integer(now));
		json_object_set_new(upd, "last_updated_nsec", json_integer(nsec));
		rc = view_put_json(req->storage, key, upd, err);
		json_decref(upd);
	}
	if (rc)
		goto out;
	*entry_out = e;
	e = NULL; /* transferred */
out:
	pthread_mutex_unlock(mu);
	json_decref(e);
	return rc;
}

static int h_login(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	char *name = NULL;
	json_t *r = NULL, *e = NULL;
	struct logical_auth *a = NULL;
	const char *role_id = request_str(req, "role_id");
	const char *secret_id = request_str(req, "secret_id");
	if (!role_id || !*role_id)
		return verr_set(err, VERR_INVALID, "missing role_id");
	int rc = role_by_id(req, role_id, &name, &r, err);
	if (rc)
		return rc;
	if (!r) {
		rc = verr_set(err, VERR_INVALID, AR_BAD_LOGIN);
		goto out;
	}
	if (!cidr_list_allows(json_object_get(r, "secret_id_bound_cidrs"), req->remote_addr)) {
		rc = verr_set(err, VERR_INVALID,
			      "source address \"%.64s\" unauthorized by CIDR restrictions on the role",
			      req->remote_addr ? req->remote_addr : "");
		goto out;
	}
	const json_t *cfg = json_object_get(r, "token");
	const json_t *role_tc = json_object_get(cfg, "token_bound_cidrs");
	if (json_is_true(json_object_get(r, "bind_secret_id"))) {
		if (!secret_id || !*secret_id) {
			rc = verr_set(err, VERR_INVALID, "missing secret_id");
			goto out;
		}
		rc = secret_consume(req, name, secret_id, role_tc, &e, err);
		if (rc)
			goto out;
	} else if (!cidr_list_allows(role_tc, req->remote_addr)) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = auth_token_cfg_fill(a, cfg, err);
	if (rc)
		goto out;
	const json_t *etc = json_object_get(e, "token_bound_cidrs");
	if (json_array_size(etc)) {
		json_decref(a->bound_cidrs);
		a->bound_cidrs = json_deep_copy(etc);
	}
	const json_t *em = json_object_get(e, "metadata");
	a->metadata = json_is_object(em) ? json_deep_copy(em) : json_object();
	if (a->metadata)
		json_object_set_new(a->metadata, "role_name", json_string(name));
	a->internal = json_pack("{s:s}", "role_name", name);
	const char *acc = json_string_value(json_object_get(e, "secret_id_accessor"));
	if (a->internal && acc)
		json_object_set_new(a->internal, "secret_id_accessor", json_string(acc));
	a->alias_name = strdup(role_id);
	if (!a->metadata || !a->internal || !a->alias_name ||
	    (json_array_size(etc) && !a->bound_cidrs)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	resp->auth = a;
	a = NULL; /* transferred */
out:
	logical_auth_free(a);
	json_decref(e);
	json_decref(r);
	free(name);
	return rc;
}

/* Token renewal (auth_renew): the role must still exist; the token takes
 * the role's current TTLs. */
static int h_renew(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	const char *n = json_string_value(json_object_get(req->secret_internal, "role_name"));
	json_t *r = NULL;
	if (!n)
		return verr_set(err, VERR_DENIED, "token was not issued by this approle mount");
	int rc = role_get(req, n, &r, err);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_DENIED, "role \"%.128s\" does not exist during renewal", n);
	const json_t *cfg = json_object_get(r, "token");
	struct logical_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		json_decref(r);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	a->ttl = json_integer_value(json_object_get(cfg, "token_ttl"));
	a->max_ttl = json_integer_value(json_object_get(cfg, "token_max_ttl"));
	a->period = json_integer_value(json_object_get(cfg, "token_period"));
	a->renewable = true;
	resp->auth = a;
	json_decref(r);
	return 0;
}

/* ---- tidy ---- */

struct tidy_ctx {
	int64_t now;
	json_int_t removed;
};

static int visit_tidy(struct logical_request *req, const char *role_h, const char *secret_h,
		      json_t *entry, void *ctx, struct verr *err)
{
	struct tidy_ctx *t = ctx;
	int64_t exp = json_integer_value(json_object_get(entry, "expiration_time"));
	if (exp > 0 && exp <= t->now) {
		t->removed++;
		return secret_delete(req, role_h, secret_h, entry, err);
	}
	return 0;
}

static int h_tidy(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	struct approle *ar = req->backend;
	struct tidy_ctx t = {.now = now_secs(NULL)};
	char **keys = NULL;
	size_t n = 0;
	char key[2 * AR_H_LEN + 32];
	/* 1. expired secret IDs, per role directory (including directories of
	 *    roles deleted before their secrets were) */
	int rc = view_list(req->storage, "secret_id/", &keys, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		size_t l = strlen(keys[i]);
		if (l == AR_H_LEN + 1 && keys[i][AR_H_LEN] == '/') {
			keys[i][AR_H_LEN] = '\0';
			rc = secrets_foreach(req, keys[i], visit_tidy, &t, err);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	keys = NULL;
	if (rc)
		return rc;
	/* 2. accessor index entries whose secret is gone */
	json_int_t dangling = 0;
	rc = view_list(req->storage, "accessor/", &keys, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *idx = NULL, *e = NULL;
		snprintf(key, sizeof(key), "accessor/%s", keys[i]);
		rc = view_get_json(req->storage, key, &idx, err);
		const char *rh = json_string_value(json_object_get(idx, "role"));
		const char *sh = json_string_value(json_object_get(idx, "secret"));
		if (!rc && idx && rh && sh && strlen(sh) == AR_H_LEN) {
			char skey[2 * AR_H_LEN + 32];
			pthread_mutex_t *mu = stripe_of(ar, sh);
			pthread_mutex_lock(mu);
			secret_key(skey, sizeof(skey), rh, sh);
			rc = view_get_json(req->storage, skey, &e, err);
			if (!rc && !e) {
				dangling++;
				rc = view_delete(req->storage, key, err);
			}
			pthread_mutex_unlock(mu);
		}
		json_decref(idx);
		json_decref(e);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	if (rc)
		return rc;
	logical_response_warn(resp, "Tidy operation completed: removed %lld expired secret IDs and %lld dangling accessors.",
			      (long long)t.removed, (long long)dangling);
	return 0;
}

/* ---- table ---- */

static const struct field_def role_fields[] = {
	{"role_name", FT_STRING, NULL, "name of the role", true},
	{"bind_secret_id", FT_BOOL, NULL, "require a secret ID at login (default true)", false},
	{"secret_id_bound_cidrs", FT_STRSLICE, NULL, "CIDRs allowed to log in", false},
	{"bound_cidr_list", FT_STRSLICE, NULL, "deprecated: use secret_id_bound_cidrs", false},
	{"secret_id_num_uses", FT_INT, NULL, "uses per secret ID (0 unlimited)", false},
	{"secret_id_ttl", FT_DURATION, NULL, "lifetime of secret IDs (0 never expire)", false},
	{"local_secret_ids", FT_BOOL, NULL, "secret IDs are cluster-local (create only)", false},
	{"enable_local_secret_ids", FT_BOOL, NULL, "alias of local_secret_ids (hvac)", false},
	{"role_id", FT_STRING, NULL, "custom role ID (create)", false},
	AUTH_TOKEN_FIELD_DEFS,
	{"period", FT_DURATION, NULL, "deprecated: use token_period", false},
	{0},
};

static const struct field_def role_id_fields[] = {
	{"role_name", FT_STRING, NULL, "name of the role", true},
	{"role_id", FT_STRING, NULL, "the new role ID", false},
	{0},
};

static const struct field_def secret_new_fields[] = {
	{"role_name", FT_STRING, NULL, "name of the role", true},
	{"secret_id", FT_STRING, NULL, "custom secret ID (custom-secret-id)", false},
	{"metadata", FT_ANY, NULL, "JSON object of strings put on tokens", false},
	{"cidr_list", FT_STRSLICE, NULL, "CIDRs this secret ID may log in from", false},
	{"token_bound_cidrs", FT_STRSLICE, NULL, "CIDRs the issued tokens are bound to", false},
	{"num_uses", FT_INT, NULL, "uses of this secret ID (0 unlimited)", false},
	{"ttl", FT_DURATION, NULL, "lifetime of this secret ID", false},
	{0},
};

static const struct field_def secret_fields[] = {
	{"role_name", FT_STRING, NULL, "name of the role", true},
	{"secret_id", FT_STRING, NULL, "the secret ID", false},
	{0},
};

static const struct field_def accessor_fields[] = {
	{"role_name", FT_STRING, NULL, "name of the role", true},
	{"secret_id_accessor", FT_STRING, NULL, "the secret ID's accessor", false},
	{0},
};

static const struct field_def login_fields[] = {
	{"role_id", FT_STRING, NULL, "the role ID", false},
	{"secret_id", FT_STRING, NULL, "the secret ID", false},
	{0},
};

static const struct path_def approle_paths[] = {
	{.pattern = "role/?", .ops = {{LOP_LIST, h_role_list}}, .help = "List roles."},
	{.pattern = "role/{role_name}",
	 .fields = role_fields,
	 .ops = {{LOP_CREATE, h_role_write},
		 {LOP_UPDATE, h_role_write},
		 {LOP_READ, h_role_read},
		 {LOP_DELETE, h_role_delete}},
	 .exists = role_exists,
	 .help = "Create, update, read or delete a role."},
	{.pattern = "role/{role_name}/role-id",
	 .fields = role_id_fields,
	 .ops = {{LOP_READ, h_role_id_read}, {LOP_UPDATE, h_role_id_write}},
	 .help = "Read the role's role ID or set a custom one."},
	{.pattern = "role/{role_name}/secret-id/?",
	 .fields = secret_new_fields,
	 .ops = {{LOP_UPDATE, h_secret_generate}, {LOP_LIST, h_secret_list}},
	 .help = "Generate a secret ID, or list secret ID accessors."},
	{.pattern = "role/{role_name}/secret-id/lookup",
	 .fields = secret_fields,
	 .ops = {{LOP_UPDATE, h_secret_lookup}},
	 .help = "Read a secret ID's properties."},
	{.pattern = "role/{role_name}/secret-id/destroy",
	 .fields = secret_fields,
	 .ops = {{LOP_UPDATE, h_secret_destroy}, {LOP_DELETE, h_secret_destroy}},
	 .help = "Destroy a secret ID."},
	{.pattern = "role/{role_name}/secret-id-accessor/lookup",
	 .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_accessor_lookup}},
	 .help = "Read a secret ID's properties by accessor."},
	{.pattern = "role/{role_name}/secret-id-accessor/destroy",
	 .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_accessor_destroy}, {LOP_DELETE, h_accessor_destroy}},
	 .help = "Destroy a secret ID by accessor."},
	{.pattern = "role/{role_name}/custom-secret-id",
	 .fields = secret_new_fields,
	 .ops = {{LOP_UPDATE, h_secret_custom}},
	 .help = "Register a secret ID chosen by the caller."},
	{.pattern = "login",
	 .fields = login_fields,
	 .ops = {{LOP_UPDATE, h_login}},
	 .unauthenticated = true,
	 .help = "Log in with a role ID and secret ID."},
	{.pattern = "tidy/secret-id",
	 .ops = {{LOP_UPDATE, h_tidy}},
	 .help = "Remove expired secret IDs and dangling accessors."},
	{0},
};

/* ---- instance ---- */

static void approle_cleanup(void *inst)
{
	struct approle *ar = inst;
	if (!ar)
		return;
	secmem_free(ar->key, AR_KEY_LEN);
	pthread_mutex_destroy(&ar->role_lock);
	for (int i = 0; i < AR_STRIPES; i++)
		pthread_mutex_destroy(&ar->stripes[i]);
	free(ar);
}

/* Load the mount's HMAC key, creating it on first use. */
static int key_load(struct approle *ar, struct storage_view *view, struct verr *err)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = view_get(view, "hmac_key", &raw, &len, err);
	if (rc)
		return rc;
	if (raw) {
		if (len != AR_KEY_LEN)
			rc = verr_set(err, VERR_INTERNAL, "approle hmac key is malformed");
		else
			memcpy(ar->key, raw, AR_KEY_LEN);
		secmem_wipe(raw, len);
		free(raw);
		return rc;
	}
	ar->key_missing = true; /* made by approle_initialize on the active node */
	return 0;
}

/* Active node only: the first HMAC key of a new mount. */
static int approle_initialize(void *inst, struct verr *err)
{
	struct approle *ar = inst;
	if (!ar->key_missing)
		return 0;
	int rc = rand_bytes(ar->key, AR_KEY_LEN, err);
	if (!rc)
		rc = view_put(ar->view, "hmac_key", ar->key, AR_KEY_LEN, err);
	if (!rc)
		ar->key_missing = false;
	return rc;
}

static int approle_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	struct approle *ar = calloc(1, sizeof(*ar));
	if (!ar)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&ar->role_lock, NULL);
	for (int i = 0; i < AR_STRIPES; i++)
		pthread_mutex_init(&ar->stripes[i], NULL);
	ar->key = secmem_alloc(AR_KEY_LEN);
	int rc = ar->key ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	ar->view = mi->storage;
	if (!rc && mi->storage)
		rc = key_load(ar, mi->storage, err);
	else if (!rc)
		rc = verr_set(err, VERR_INTERNAL, "approle needs storage");
	if (rc) {
		approle_cleanup(ar);
		return rc;
	}
	*out = ar;
	return 0;
}

static const struct path_def *approle_table(void *inst)
{
	return approle_paths;
}

const struct backend_ops approle_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "approle",
	.is_auth = true,
	.init = approle_init,
	.initialize = approle_initialize,
	.cleanup = approle_cleanup,
	.paths = approle_table,
	.auth_renew = h_renew,
};
