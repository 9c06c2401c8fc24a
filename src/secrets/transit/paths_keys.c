/*
 * paths_keys.c - transit key management handlers: keys/:name (create, read,
 * delete, list), config, rotate, trim, export, backup/restore and
 * cache-config. Response shapes and error texts follow Vault's transit
 * (docs/secrets-transit.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"
#include "util/timefmt.h"

static const char *curve_name(enum tkey_type t)
{
	switch (t) {
	case TK_ECDSA_P256: return "P-256";
	case TK_ECDSA_P384: return "P-384";
	case TK_ECDSA_P521: return "P-521";
	default: return tkey_type_name(t);
	}
}

/* The key as keys/:name shows it. Caller holds k->lock. ctx: derived
 * ed25519 keys show the public key for that context. */
static json_t *key_format(const struct tkey *k, const uint8_t *ctx, size_t ctx_len)
{
	json_t *d = json_pack(
		"{s:s,s:s,s:b,s:b,s:i,s:i,s:i,s:i,s:b,s:b,s:b,s:b,s:b,s:b,s:I,s:b,s:b}", "name", k->name,
		"type", tkey_type_name(k->type), "derived", k->derived, "deletion_allowed",
		k->deletion_allowed, "min_available_version", k->min_available_version,
		"min_decryption_version", k->min_decryption_version, "min_encryption_version",
		k->min_encryption_version, "latest_version", k->latest_version, "exportable",
		k->exportable, "allow_plaintext_backup", k->allow_plaintext_backup,
		"supports_encryption", tkey_supports_encryption(k->type), "supports_decryption",
		tkey_supports_encryption(k->type), "supports_signing", tkey_supports_signing(k->type),
		"supports_derivation", tkey_supports_derivation(k->type), "auto_rotate_period",
		(json_int_t)k->auto_rotate_period, "imported_key", k->imported, "soft_deleted", false);
	if (!d)
		return NULL;
	if (k->key_size)
		json_object_set_new(d, "key_size", json_integer(k->key_size));
	if (k->imported)
		json_object_set_new(d, "imported_key_allow_rotation", json_boolean(k->allow_rotation));
	if (k->derived) {
		json_object_set_new(d, "kdf", json_string("hkdf_sha256"));
		json_object_set_new(d, "convergent_encryption", json_boolean(k->convergent));
		if (k->convergent)
			json_object_set_new(d, "convergent_encryption_version",
					    json_integer(k->convergent_version));
	}
	if (k->backup_time)
		json_object_set_new(d, "backup_info",
				    json_pack("{s:I,s:i}", "time", (json_int_t)k->backup_time,
					      "version", k->backup_version));
	if (k->restore_time)
		json_object_set_new(d, "restore_info",
				    json_pack("{s:I,s:i}", "time", (json_int_t)k->restore_time,
					      "version", k->restore_version));
	json_t *keys = json_object();
	for (int v = 1; v <= k->latest_version; v++) {
		const struct tkey_version *kv = transit__version(k, v);
		if (!kv)
			continue;
		char num[16];
		snprintf(num, sizeof(num), "%d", v);
		if (!tkey_supports_signing(k->type)) {
			json_object_set_new(keys, num, json_integer(kv->created));
			continue;
		}
		char ts[TIMEFMT_MAX];
		const char *pub = kv->public_key;
		char *dpub = NULL;
		if (k->type == TK_ED25519 && k->derived) {
			pub = "";
			if (ctx_len) {
				uint8_t seed[32], raw[32];
				size_t rl = sizeof(raw);
				EVP_PKEY *pk = NULL;
				if (!transit__hkdf(seed, 32, kv->key, kv->key_len, ctx, ctx_len, NULL))
					pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
				secmem_wipe(seed, sizeof(seed));
				if (pk && EVP_PKEY_get_raw_public_key(pk, raw, &rl) == 1)
					dpub = b64_encode(raw, rl, false);
				EVP_PKEY_free(pk);
				if (dpub)
					pub = dpub;
			}
		}
		json_object_set_new(keys, num,
				    json_pack("{s:s,s:s,s:s,s:s}", "name", curve_name(k->type),
					      "public_key", pub ? pub : "", "certificate_chain", "",
					      "creation_time",
					      timefmt_rfc3339(ts, kv->created, 0, TIMEFMT_SECONDS)));
		free(dpub);
	}
	json_object_set_new(d, "keys", keys);
	return d;
}

/* Decode an optional base64 field (context): NULL/0 when absent. */
static int opt_b64(uint8_t **out, size_t *len, const char *s, const char *what, struct verr *err)
{
	*out = NULL;
	*len = 0;
	if (!s || !*s)
		return 0;
	if (b64_decode(out, len, s, false, NULL))
		return verr_set(err, VERR_INVALID, "failed to base64-decode %s", what);
	return 0;
}

static struct transit *T(struct logical_request *req)
{
	return req->backend;
}

int transit__keys_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	const char *name = request_str(req, "name");
	struct tkey_params p = {0};
	const char *type = request_str(req, "type");
	if (!type || !*type)
		type = "aes256-gcm96";
	if (tkey_type_parse(type, &p.type))
		return verr_set(err, VERR_INVALID, "unknown key type %.64s", type);
	p.derived = request_bool(req, "derived");
	p.convergent = request_bool(req, "convergent_encryption");
	p.exportable = request_bool(req, "exportable");
	p.allow_plaintext_backup = request_bool(req, "allow_plaintext_backup");
	p.auto_rotate_period = request_duration(req, "auto_rotate_period");
	int64_t ks = request_int(req, "key_size");
	if (p.auto_rotate_period != 0 && p.auto_rotate_period < 3600)
		return verr_set(err, VERR_INVALID, "auto rotate period must be 0 to disable or at least an hour");
	if (ks) {
		if (p.type != TK_HMAC)
			return verr_set(err, VERR_INVALID, "key_size is not valid for algorithm %s", type);
		if (ks < TRANSIT_HMAC_MIN || ks > TRANSIT_HMAC_MAX)
			return verr_set(err, VERR_INVALID, "invalid key_size %lld", (long long)ks);
		p.key_size = (int)ks;
	}
	struct tkey *k = NULL;
	bool created = false;
	int rc = transit__key_upsert(T(req), name, &p, &k, &created, err);
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&k->lock);
	resp->data = key_format(k, NULL, 0);
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
	if (!created)
		logical_response_warn(resp, "key %s already existed", name);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int transit__keys_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	uint8_t *ctx = NULL;
	size_t cl = 0;
	int rc = opt_b64(&ctx, &cl, request_str(req, "context"), "context", err);
	if (rc)
		return rc;
	struct tkey *k = NULL;
	rc = transit__key_get(T(req), request_str(req, "name"), &k, err);
	if (!rc && k) {
		pthread_rwlock_rdlock(&k->lock);
		resp->data = key_format(k, ctx, cl);
		pthread_rwlock_unlock(&k->lock);
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	transit__key_release(T(req), k);
	free(ctx);
	return rc; /* no key: no data, the core answers 404 */
}

int transit__keys_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return transit__key_delete(T(req), request_str(req, "name"), err);
}

int transit__keys_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, "policy/", &names, &n, err);
	if (rc == VERR_NOT_FOUND) {
		verr_clear(err);
		rc = 0;
	}
	if (rc)
		return rc;
	json_t *keys = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(keys, json_string(names[i]));
		free(names[i]);
	}
	free(names);
	resp->data = json_pack("{s:o}", "keys", keys);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* Load a key for a change: *out held and write-locked, or a 400. */
static int key_for_update(struct logical_request *req, struct tkey **out, const char *missing,
			  struct verr *err)
{
	int rc = transit__key_get(T(req), request_str(req, "name"), out, err);
	if (rc)
		return rc;
	if (!*out)
		return verr_set(err, VERR_INVALID, "%s", missing);
	pthread_rwlock_wrlock(&(*out)->lock);
	return 0;
}

static void key_done(struct logical_request *req, struct tkey *k)
{
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
}

int transit__keys_config(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct tkey *k = NULL;
	char missing[256];
	snprintf(missing, sizeof(missing), "no existing key named %.128s could be found",
		 request_str(req, "name"));
	int rc = key_for_update(req, &k, missing, err);
	if (rc)
		return rc;
	struct tkey old = *k; /* scalar fields, to roll back a failed persist */
	if (request_has(req, "min_decryption_version")) {
		int64_t v = request_int(req, "min_decryption_version");
		if (v < 0) {
			rc = verr_set(err, VERR_INVALID, "min decryption version cannot be negative");
			goto out;
		}
		if (v == 0) {
			v = 1;
			logical_response_warn(resp, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1");
		}
		if (v > k->latest_version) {
			rc = verr_set(err, VERR_INVALID, "cannot set min decryption version of %lld, latest key version is %d", (long long)v, k->latest_version);
			goto out;
		}
		k->min_decryption_version = (int)v;
	}
	if (request_has(req, "min_encryption_version")) {
		int64_t v = request_int(req, "min_encryption_version");
		if (v < 0) {
			rc = verr_set(err, VERR_INVALID, "min encryption version cannot be negative");
			goto out;
		}
		if (v > k->latest_version) {
			rc = verr_set(err, VERR_INVALID, "cannot set min encryption version of %lld, latest key version is %d", (long long)v, k->latest_version);
			goto out;
		}
		k->min_encryption_version = (int)v;
	}
	if (k->min_encryption_version > 0 && k->min_encryption_version < k->min_decryption_version) {
		rc = verr_set(err, VERR_INVALID, "cannot set min encryption/decryption values; min encryption version of %d must be greater than or equal to min decryption version of %d", k->min_encryption_version, k->min_decryption_version);
		goto out;
	}
	if (k->min_encryption_version > 0 && k->min_encryption_version < k->min_available_version) {
		rc = verr_set(err, VERR_INVALID, "min encryption version should not be less than min available version");
		goto out;
	}
	if (k->min_decryption_version < k->min_available_version) {
		rc = verr_set(err, VERR_INVALID, "min decryption version should not be less then min available version");
		goto out;
	}
	if (request_has(req, "deletion_allowed"))
		k->deletion_allowed = request_bool(req, "deletion_allowed");
	if (request_has(req, "exportable")) {
		bool e = request_bool(req, "exportable");
		if (k->exportable && !e) {
			rc = verr_set(err, VERR_INVALID, "exportable cannot be disabled once enabled");
			goto out;
		}
		k->exportable = e;
	}
	if (request_has(req, "allow_plaintext_backup")) {
		bool e = request_bool(req, "allow_plaintext_backup");
		if (k->allow_plaintext_backup && !e) {
			rc = verr_set(err, VERR_INVALID, "allow_plaintext_backup cannot be disabled once enabled");
			goto out;
		}
		k->allow_plaintext_backup = e;
	}
	if (request_has(req, "auto_rotate_period")) {
		int64_t p = request_duration(req, "auto_rotate_period");
		if (p != 0 && p < 3600) {
			rc = verr_set(err, VERR_INVALID, "auto rotate period must be 0 to disable or at least an hour");
			goto out;
		}
		k->auto_rotate_period = p;
	}
	rc = transit__key_persist(T(req), k, err);
	if (!rc)
		resp->data = key_format(k, NULL, 0);
out:
	if (rc) {
		k->min_decryption_version = old.min_decryption_version;
		k->min_encryption_version = old.min_encryption_version;
		k->deletion_allowed = old.deletion_allowed;
		k->exportable = old.exportable;
		k->allow_plaintext_backup = old.allow_plaintext_backup;
		k->auto_rotate_period = old.auto_rotate_period;
	}
	key_done(req, k);
	return rc;
}

int transit__keys_rotate(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct tkey *k = NULL;
	int rc = key_for_update(req, &k, "key not found", err);
	if (rc)
		return rc;
	rc = transit__key_rotate(T(req), k, err);
	if (!rc)
		resp->data = key_format(k, NULL, 0);
	key_done(req, k);
	return rc;
}

int transit__keys_trim(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct tkey *k = NULL;
	int rc = key_for_update(req, &k, "invalid key name", err);
	if (rc)
		return rc;
	int64_t v = request_int(req, "min_available_version");
	int old = k->min_available_version;
	if (!request_has(req, "min_available_version"))
		rc = verr_set(err, VERR_INVALID, "missing min_available_version");
	else if (v < old)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be decremented");
	else if (k->min_encryption_version == 0)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be set when minimum encryption version is not set");
	else if (k->min_decryption_version == 0)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be set when minimum decryption version is not set");
	else if (v > k->min_encryption_version)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be greater than minmum encryption version");
	else if (v > k->min_decryption_version)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be greater than minimum decryption version");
	else if (v < 0)
		rc = verr_set(err, VERR_INVALID, "minimum available version cannot be negative");
	else if (v == 0)
		rc = verr_set(err, VERR_INVALID, "minimum available version should be positive");
	if (!rc) {
		k->min_available_version = (int)v;
		rc = transit__key_persist(T(req), k, err);
		if (rc)
			k->min_available_version = old;
		else {
			transit__key_trim_memory(k);
			resp->data = key_format(k, NULL, 0);
		}
	}
	key_done(req, k);
	return rc;
}

int transit__export(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	const char *etype = request_str(req, "type");
	const char *ver = request_str(req, "version");
	if (strcmp(etype, "encryption-key") && strcmp(etype, "signing-key") &&
	    strcmp(etype, "hmac-key") && strcmp(etype, "public-key"))
		return verr_set(err, VERR_INVALID, "invalid export type: %.64s", etype);
	struct tkey *k = NULL;
	int rc = transit__key_get(T(req), request_str(req, "name"), &k, err);
	if (rc || !k)
		return rc;
	pthread_rwlock_rdlock(&k->lock);
	json_t *keys = json_object();
	if (!k->exportable && strcmp(etype, "public-key")) {
		rc = verr_set(err, VERR_INVALID, "private key material is not exportable");
		goto out;
	}
	int from = k->min_decryption_version > 0 ? k->min_decryption_version : 1, to = k->latest_version;
	if (ver && *ver) {
		int n;
		if (!strcmp(ver, "latest"))
			n = k->latest_version;
		else {
			char *end;
			long x = strtol(ver, &end, 10);
			if (*end || x < 1 || x > 1000000) {
				rc = verr_set(err, VERR_INVALID, "invalid key version");
				goto out;
			}
			n = (int)x;
		}
		if (n > k->latest_version || !transit__version(k, n)) {
			rc = verr_set(err, VERR_INVALID, "version does not exist or cannot be found");
			goto out;
		}
		if (n < k->min_decryption_version) {
			rc = verr_set(err, VERR_INVALID, "version for export is below minimum decryption version");
			goto out;
		}
		from = to = n;
	}
	for (int v = from; v <= to; v++) {
		const struct tkey_version *kv = transit__version(k, v);
		char *s = NULL;
		if (!kv)
			continue;
		rc = transit__export_version(&s, k, kv, etype, err);
		if (rc)
			goto out;
		char num[16];
		snprintf(num, sizeof(num), "%d", v);
		json_object_set_new(keys, num, json_string(s));
		secmem_wipe(s, strlen(s));
		free(s);
	}
	resp->data = json_pack("{s:s,s:s,s:O}", "name", k->name, "type", tkey_type_name(k->type),
			       "keys", keys);
	if (!resp->data)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
	json_decref(keys);
	return rc;
}

int transit__backup(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct tkey *k = NULL;
	int rc = transit__key_get(T(req), request_str(req, "name"), &k, err);
	if (rc)
		return rc;
	if (!k)
		return verr_set(err, VERR_INVALID, "key \"%.128s\" not found", request_str(req, "name"));
	pthread_rwlock_wrlock(&k->lock);
	char *s = NULL;
	if (!k->exportable)
		rc = verr_set(err, VERR_INVALID, "exporting is disallowed on the policy");
	else if (!k->allow_plaintext_backup)
		rc = verr_set(err, VERR_INVALID, "plaintext backup is disallowed on the policy");
	if (rc)
		goto out;
	int64_t ot = k->backup_time;
	int ov = k->backup_version;
	k->backup_time = sysview_now(req->sys);
	k->backup_version = k->latest_version;
	json_t *pol = transit__key_to_json(k);
	json_t *j = pol ? json_pack("{s:o,s:i}", "policy", pol, "backup_format", 1) : NULL;
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	transit__json_wipe(j);
	json_decref(j);
	if (!s) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = transit__key_persist(T(req), k, err);
	if (rc) {
		k->backup_time = ot;
		k->backup_version = ov;
		goto out;
	}
	char *b = b64_encode((const uint8_t *)s, strlen(s), false);
	resp->data = b ? json_pack("{s:s}", "backup", b) : NULL;
	if (b)
		secmem_wipe(b, strlen(b));
	free(b);
	if (!resp->data)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	if (s)
		secmem_wipe(s, strlen(s));
	free(s);
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
	return rc;
}

int transit__restore(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	const char *b = request_str(req, "backup");
	if (!b || !*b)
		return verr_set(err, VERR_INVALID, "'backup' must be supplied");
	uint8_t *raw = NULL;
	size_t len = 0;
	if (b64_decode(&raw, &len, b, true, NULL))
		return verr_set(err, VERR_INVALID, "failed to restore the policy: backup is not valid base64");
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, len, 0, &je);
	b64_free(raw, len, true);
	json_t *pol = json_object_get(j, "policy");
	struct tkey *k = NULL;
	int rc = 0;
	if (!json_is_object(pol))
		rc = verr_set(err, VERR_INVALID, "failed to restore the policy: not a transit backup");
	else
		rc = transit__key_from_json(pol, &k, err);
	transit__json_wipe(j);
	json_decref(j);
	if (rc)
		return rc;
	const char *name = request_str(req, "name");
	if (!name || !*name)
		name = k->name;
	char *nm = strdup(name);
	if (!nm) {
		transit__key_free(k);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	for (const char *p = nm; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
			free(nm);
			transit__key_free(k);
			return verr_set(err, VERR_INVALID, "invalid key name in the backup");
		}
	k->restore_time = sysview_now(req->sys);
	k->restore_version = k->latest_version;
	rc = transit__key_restore(T(req), nm, k, request_bool(req, "force"), err);
	free(nm);
	return rc;
}

int transit__cache_config_read(struct logical_request *req, struct logical_response *resp,
			       struct verr *err)
{
	struct transit *t = T(req);
	pthread_mutex_lock(&t->lock);
	size_t s = t->cache_size;
	pthread_mutex_unlock(&t->lock);
	resp->data = json_pack("{s:I}", "size", (json_int_t)s);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int transit__cache_config_write(struct logical_request *req, struct logical_response *resp,
				struct verr *err)
{
	int64_t s = request_int(req, "size");
	if (s < 0)
		return verr_set(err, VERR_INVALID, "size must be greater or equal to 0");
	if (s != 0 && s < TRANSIT_MIN_CACHE)
		return verr_set(err, VERR_INVALID, "size must be 0 or a value greater or equal to %d", TRANSIT_MIN_CACHE);
	json_t *j = json_pack("{s:I}", "size", (json_int_t)s);
	int rc = j ? view_put_json(req->storage, "config/cache", j, err)
		   : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(j);
	if (rc)
		return rc;
	transit__cache_set_size(T(req), (size_t)s);
	resp->data = json_pack("{s:I}", "size", (json_int_t)s);
	return 0;
}
