/*
 * keys.c - the transit key policy: key types, generation of a version's
 * material, the stored JSON form, and the per-mount key cache with its
 * reference counts and eviction (DESIGN block in transit_int.h).
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"

static const char *const type_names[TK__COUNT] = {
	"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256",
	"ecdsa-p384",   "ecdsa-p521",   "rsa-2048",          "rsa-3072", "rsa-4096", "hmac",
};

const char *tkey_type_name(enum tkey_type t)
{
	return (unsigned)t < TK__COUNT ? type_names[t] : "unknown";
}

int tkey_type_parse(const char *s, enum tkey_type *out)
{
	for (int i = 0; i < TK__COUNT; i++)
		if (s && !strcmp(s, type_names[i])) {
			*out = (enum tkey_type)i;
			return 0;
		}
	return -1;
}

bool tkey_is_symmetric(enum tkey_type t)
{
	return t == TK_AES128_GCM96 || t == TK_AES256_GCM96 || t == TK_CHACHA20_POLY1305;
}
bool tkey_is_rsa(enum tkey_type t)
{
	return t == TK_RSA2048 || t == TK_RSA3072 || t == TK_RSA4096;
}
bool tkey_is_ecdsa(enum tkey_type t)
{
	return t == TK_ECDSA_P256 || t == TK_ECDSA_P384 || t == TK_ECDSA_P521;
}
bool tkey_supports_encryption(enum tkey_type t)
{
	return tkey_is_symmetric(t) || tkey_is_rsa(t);
}
bool tkey_supports_signing(enum tkey_type t)
{
	return t == TK_ED25519 || tkey_is_ecdsa(t) || tkey_is_rsa(t);
}
bool tkey_supports_derivation(enum tkey_type t)
{
	return tkey_is_symmetric(t) || t == TK_ED25519;
}

/* ---- one version's material ---- */

void transit__version_clear(struct tkey_version *v)
{
	if (!v)
		return;
	secmem_free(v->key, v->key_len);
	secmem_free(v->hmac_key, TRANSIT_HMAC_KEY_LEN);
	free(v->public_key);
	EVP_PKEY_free(v->pkey); /* OpenSSL clears the private BIGNUMs */
	memset(v, 0, sizeof(*v));
}

static int secure_copy(uint8_t **out, const uint8_t *p, size_t n, struct verr *err)
{
	*out = secmem_alloc(n ? n : 1);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	memcpy(*out, p, n);
	return 0;
}

static char *pubkey_pem(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_PUBKEY(b, pk) == 1) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		if (n > 0)
			out = strndup(p, (size_t)n);
	}
	BIO_free(b);
	return out;
}

/* The private key as PKCS#8 DER into secmem. */
static int pkey_to_secmem(struct tkey_version *v, EVP_PKEY *pk, struct verr *err)
{
	OSSL_ENCODER_CTX *ec = OSSL_ENCODER_CTX_new_for_pkey(pk, EVP_PKEY_KEYPAIR, "DER",
							     "PrivateKeyInfo", NULL);
	unsigned char *der = NULL;
	size_t len = 0;
	int rc = 0;
	if (!ec || OSSL_ENCODER_to_data(ec, &der, &len) != 1 || !der)
		rc = verr_set(err, VERR_INTERNAL, "failed to encode the private key");
	OSSL_ENCODER_CTX_free(ec);
	if (!rc) {
		rc = secure_copy(&v->key, der, len, err);
		v->key_len = rc ? 0 : len;
	}
	if (der)
		OPENSSL_clear_free(der, len);
	return rc;
}

int transit__version_set_pkey(struct tkey_version *v, enum tkey_type type, EVP_PKEY *pk,
			      struct verr *err)
{
	int rc = 0;
	if (type == TK_ED25519) {
		size_t l1 = 32, l2 = 32;
		v->key = secmem_alloc(64);
		if (!v->key)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		v->key_len = 64; /* seed | public, as Vault keeps it */
		if (EVP_PKEY_get_raw_private_key(pk, v->key, &l1) != 1 ||
		    EVP_PKEY_get_raw_public_key(pk, v->key + 32, &l2) != 1 || l1 != 32 || l2 != 32)
			return verr_set(err, VERR_INTERNAL, "failed to encode the ed25519 key");
		v->public_key = b64_encode(v->key + 32, 32, false);
	} else {
		rc = pkey_to_secmem(v, pk, err);
		if (!rc)
			v->public_key = pubkey_pem(pk);
	}
	if (!rc && !v->public_key)
		rc = verr_set(err, VERR_INTERNAL, "failed to encode the public key");
	return rc;
}

int transit__version_hmac_key(struct tkey_version *v, struct verr *err)
{
	v->hmac_key = secmem_alloc(TRANSIT_HMAC_KEY_LEN);
	if (!v->hmac_key)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (RAND_bytes(v->hmac_key, TRANSIT_HMAC_KEY_LEN) != 1)
		return verr_set(err, VERR_INTERNAL, "random generator failed");
	return 0;
}

int transit__gen_version(struct tkey_version *v, enum tkey_type type, int key_size,
			 struct verr *err)
{
	memset(v, 0, sizeof(*v));
	EVP_PKEY *pk = NULL;
	int rc = transit__version_hmac_key(v, err);
	if (rc)
		goto out;
	switch (type) {
	case TK_AES128_GCM96:
	case TK_AES256_GCM96:
	case TK_CHACHA20_POLY1305:
	case TK_HMAC: {
		size_t n = type == TK_AES128_GCM96 ? 16 : type == TK_HMAC && key_size ? (size_t)key_size : 32;
		v->key = secmem_alloc(n);
		if (!v->key) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		v->key_len = n;
		if (RAND_bytes(v->key, (int)n) != 1)
			rc = verr_set(err, VERR_INTERNAL, "random generator failed");
		goto out;
	}
	case TK_ED25519:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case TK_ECDSA_P256:
	case TK_ECDSA_P384:
	case TK_ECDSA_P521:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type == TK_ECDSA_P256 ? "P-256"
						      : type == TK_ECDSA_P384 ? "P-384" : "P-521");
		break;
	case TK_RSA2048:
	case TK_RSA3072:
	case TK_RSA4096:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
				       (size_t)(type == TK_RSA2048 ? 2048 : type == TK_RSA3072 ? 3072 : 4096));
		break;
	default:
		rc = verr_set(err, VERR_INTERNAL, "unsupported key type");
		goto out;
	}
	if (!pk)
		rc = verr_set(err, VERR_INTERNAL, "failed to generate a %s key", tkey_type_name(type));
	else
		rc = transit__version_set_pkey(v, type, pk, err);
out:
	EVP_PKEY_free(pk);
	if (rc)
		transit__version_clear(v);
	return rc;
}

const struct tkey_version *transit__version(const struct tkey *k, int ver)
{
	if (ver < 1 || ver > k->latest_version || ver < k->min_available_version)
		return NULL;
	const struct tkey_version *v = &k->versions[ver - 1];
	return v->key ? v : NULL;
}

void transit__key_trim_memory(struct tkey *k)
{
	for (int v = 1; v < k->min_available_version && v <= k->latest_version; v++)
		transit__version_clear(&k->versions[v - 1]);
}

void transit__key_free(struct tkey *k)
{
	if (!k)
		return;
	for (int i = 0; i < k->latest_version; i++)
		transit__version_clear(&k->versions[i]);
	free(k->versions);
	free(k->name);
	pthread_rwlock_destroy(&k->lock);
	free(k);
}

static struct tkey *key_alloc(const char *name)
{
	struct tkey *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->name = strdup(name);
	if (!k->name || pthread_rwlock_init(&k->lock, NULL)) {
		free(k->name);
		free(k);
		return NULL;
	}
	return k;
}

/* ---- JSON form ---- */

static void wipe_str(json_t *s)
{
	if (json_is_string(s)) {
		/* jansson owns the buffer; wiping it in place before the string is
		 * freed keeps key material out of freed heap memory */
		char *p = (char *)json_string_value(s);
		secmem_wipe(p, json_string_length(s));
	}
}

void transit__json_wipe(json_t *j)
{
	json_t *keys = json_object_get(j, "keys");
	const char *ver;
	json_t *e;
	json_object_foreach(keys, ver, e) {
		wipe_str(json_object_get(e, "key"));
		wipe_str(json_object_get(e, "hmac_key"));
	}
	json_t *pol = json_object_get(j, "policy"); /* backups nest the key */
	if (pol)
		transit__json_wipe(pol);
}

json_t *transit__key_to_json(const struct tkey *k)
{
	json_t *keys = json_object();
	json_t *j = json_pack("{s:s,s:s,s:b,s:b,s:i,s:b,s:b,s:b,s:b,s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:i,s:I,s:i}",
			      "name", k->name, "type", tkey_type_name(k->type), "derived", k->derived,
			      "convergent_encryption", k->convergent, "convergent_version",
			      k->convergent_version, "exportable", k->exportable,
			      "allow_plaintext_backup", k->allow_plaintext_backup, "deletion_allowed",
			      k->deletion_allowed, "imported_key", k->imported, "latest_version",
			      k->latest_version, "min_decryption_version", k->min_decryption_version,
			      "min_encryption_version", k->min_encryption_version,
			      "min_available_version", k->min_available_version, "key_size",
			      k->key_size, "auto_rotate_period", (json_int_t)k->auto_rotate_period,
			      "backup_time", (json_int_t)k->backup_time, "backup_version",
			      k->backup_version, "restore_time", (json_int_t)k->restore_time,
			      "restore_version", k->restore_version);
	if (!j || !keys) {
		json_decref(j);
		json_decref(keys);
		return NULL;
	}
	json_object_set_new(j, "kdf", json_string("hkdf_sha256"));
	json_object_set_new(j, "allow_imported_key_rotation", json_boolean(k->allow_rotation));
	for (int v = 1; v <= k->latest_version; v++) {
		const struct tkey_version *kv = transit__version(k, v);
		if (!kv)
			continue;
		char *kb = b64_encode(kv->key, kv->key_len, false);
		char *hb = b64_encode(kv->hmac_key, TRANSIT_HMAC_KEY_LEN, false);
		json_t *e = json_pack("{s:s?,s:s?,s:I}", "key", kb, "hmac_key", hb, "time",
				      (json_int_t)kv->created);
		if (kb)
			secmem_wipe(kb, strlen(kb));
		if (hb)
			secmem_wipe(hb, strlen(hb));
		free(kb);
		free(hb);
		if (!e) {
			transit__json_wipe(j);
			json_decref(j);
			json_decref(keys);
			return NULL;
		}
		if (kv->public_key)
			json_object_set_new(e, "public_key", json_string(kv->public_key));
		char num[16];
		snprintf(num, sizeof(num), "%d", v);
		json_object_set_new(keys, num, e);
	}
	json_object_set_new(j, "keys", keys);
	return j;
}

static int jint(const json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);
	return json_is_integer(v) ? (int)json_integer_value(v) : 0;
}

static int decode_into(uint8_t **out, size_t *len, const json_t *s, struct verr *err)
{
	if (!json_is_string(s))
		return verr_set(err, VERR_INVALID, "invalid key entry: missing key material");
	return b64_decode(out, len, json_string_value(s), true, err);
}

int transit__key_from_json(const json_t *j, struct tkey **out, struct verr *err)
{
	*out = NULL;
	const char *name = json_string_value(json_object_get(j, "name"));
	enum tkey_type type;
	if (!name || !*name)
		return verr_set(err, VERR_INVALID, "invalid key entry: missing name");
	if (tkey_type_parse(json_string_value(json_object_get(j, "type")), &type))
		return verr_set(err, VERR_INVALID, "invalid key entry: unknown key type");
	int latest = jint(j, "latest_version");
	if (latest < 1 || latest > 1000000)
		return verr_set(err, VERR_INVALID, "invalid key entry: latest version of %d is less than 1", latest);
	struct tkey *k = key_alloc(name);
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	k->type = type;
	k->derived = json_is_true(json_object_get(j, "derived"));
	k->convergent = json_is_true(json_object_get(j, "convergent_encryption"));
	k->convergent_version = jint(j, "convergent_version");
	k->exportable = json_is_true(json_object_get(j, "exportable"));
	k->allow_plaintext_backup = json_is_true(json_object_get(j, "allow_plaintext_backup"));
	k->deletion_allowed = json_is_true(json_object_get(j, "deletion_allowed"));
	k->imported = json_is_true(json_object_get(j, "imported_key"));
	k->allow_rotation = json_is_true(json_object_get(j, "allow_imported_key_rotation"));
	k->min_decryption_version = jint(j, "min_decryption_version");
	k->min_encryption_version = jint(j, "min_encryption_version");
	k->min_available_version = jint(j, "min_available_version");
	k->key_size = jint(j, "key_size");
	json_t *arp = json_object_get(j, "auto_rotate_period");
	k->auto_rotate_period = json_is_integer(arp) ? json_integer_value(arp) : 0;
	json_t *bt = json_object_get(j, "backup_time"), *rt = json_object_get(j, "restore_time");
	k->backup_time = json_is_integer(bt) ? json_integer_value(bt) : 0;
	k->restore_time = json_is_integer(rt) ? json_integer_value(rt) : 0;
	k->backup_version = jint(j, "backup_version");
	k->restore_version = jint(j, "restore_version");
	if (k->min_decryption_version < 1)
		k->min_decryption_version = 1;
	if (k->min_available_version < 0)
		k->min_available_version = 0;
	int rc = 0;
	k->latest_version = latest;
	k->versions = calloc((size_t)latest, sizeof(*k->versions));
	if (!k->versions) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (k->min_decryption_version > latest || k->min_encryption_version > latest ||
	    k->min_encryption_version < 0 || k->min_available_version > k->min_decryption_version) {
		rc = verr_set(err, VERR_INVALID, "invalid key entry: inconsistent versions");
		goto out;
	}
	json_t *keys = json_object_get(j, "keys");
	int first = k->min_available_version > 0 ? k->min_available_version : 1;
	for (int v = first; v <= latest; v++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", v);
		json_t *e = json_object_get(keys, num);
		struct tkey_version *kv = &k->versions[v - 1];
		if (!e) {
			rc = verr_set(err, VERR_INVALID, "invalid key entry: version %d is missing", v);
			goto out;
		}
		size_t hl = 0;
		rc = decode_into(&kv->key, &kv->key_len, json_object_get(e, "key"), err);
		if (!rc)
			rc = decode_into(&kv->hmac_key, &hl, json_object_get(e, "hmac_key"), err);
		if (!rc && hl != TRANSIT_HMAC_KEY_LEN)
			rc = verr_set(err, VERR_INVALID, "invalid key entry: bad hmac key");
		if (rc)
			goto out;
		json_t *t = json_object_get(e, "time");
		kv->created = json_is_integer(t) ? json_integer_value(t) : 0;
		const char *pub = json_string_value(json_object_get(e, "public_key"));
		if (pub && !(kv->public_key = strdup(pub))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		size_t want = type == TK_AES128_GCM96 ? 16 : tkey_is_symmetric(type) ? 32 : type == TK_ED25519 ? 64 : 0;
		if ((want && kv->key_len != want) || (!tkey_is_symmetric(type) && type != TK_HMAC && !pub)) {
			rc = verr_set(err, VERR_INVALID, "invalid key entry: bad key material for version %d", v);
			goto out;
		}
	}
out:
	if (rc) {
		transit__key_free(k);
		return rc;
	}
	*out = k;
	return 0;
}

/* ---- storage ---- */

static int policy_path(char *buf, size_t cap, const char *name)
{
	int n = snprintf(buf, cap, "policy/%s", name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int transit__key_persist(struct transit *t, const struct tkey *k, struct verr *err)
{
	char path[512];
	if (policy_path(path, sizeof(path), k->name))
		return verr_set(err, VERR_INVALID, "key name too long");
	json_t *j = transit__key_to_json(k);
	if (!j)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char *s = json_dumps(j, JSON_COMPACT);
	transit__json_wipe(j);
	json_decref(j);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t len = strlen(s);
	int rc = view_put(t->view, path, (const uint8_t *)s, len, err);
	secmem_wipe(s, len);
	free(s);
	return rc;
}

static int key_load(struct transit *t, const char *name, struct tkey **out, struct verr *err)
{
	char path[512];
	*out = NULL;
	if (policy_path(path, sizeof(path), name))
		return verr_set(err, VERR_INVALID, "key name too long");
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = view_get(t->view, path, &raw, &len, err);
	if (rc == VERR_NOT_FOUND) {
		verr_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	if (!raw)
		return 0;
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, len, 0, &je);
	secmem_wipe(raw, len);
	free(raw);
	if (!j)
		return verr_set(err, VERR_INTERNAL, "stored transit key \"%.64s\" is not valid JSON", name);
	rc = transit__key_from_json(j, out, err);
	transit__json_wipe(j);
	json_decref(j);
	if (rc == VERR_INVALID)
		rc = VERR_INTERNAL; /* a broken stored entry is the server's fault */
	return rc;
}

/* ---- cache ---- */

/* Caller holds t->lock. */
static struct tkey *cache_find(struct transit *t, const char *name, size_t *idx)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (!strcmp(t->keys[i]->name, name)) {
			if (idx)
				*idx = i;
			return t->keys[i];
		}
	return NULL;
}

/* Remove entry i from the cache; frees it if nobody holds it. Caller holds
 * t->lock. */
static void cache_remove_at(struct transit *t, size_t i)
{
	struct tkey *k = t->keys[i];
	t->keys[i] = t->keys[--t->nkeys];
	k->cached = false;
	if (k->refs == 0)
		transit__key_free(k);
}

/* Evict least recently used unreferenced entries over the size limit. */
static void cache_shrink(struct transit *t)
{
	while (t->cache_size && t->nkeys > t->cache_size) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < t->nkeys; i++)
			if (t->keys[i]->refs == 0 &&
			    (best == SIZE_MAX || t->keys[i]->last_use < t->keys[best]->last_use))
				best = i;
		if (best == SIZE_MAX)
			return; /* everything is in use: over the limit until released */
		cache_remove_at(t, best);
	}
}

/* Insert k (refs already 1) or, if another thread got there first, drop k
 * and return the cached one (with a reference). Caller holds t->lock. */
static struct tkey *cache_insert(struct transit *t, struct tkey *k)
{
	struct tkey *cur = cache_find(t, k->name, NULL);
	if (cur) {
		transit__key_free(k);
		cur->refs++;
		cur->last_use = ++t->tick;
		return cur;
	}
	if (t->nkeys == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct tkey **nk = realloc(t->keys, ncap * sizeof(*nk));
		if (!nk)
			return k; /* not cached: freed on release */
		t->keys = nk;
		t->cap = ncap;
	}
	t->keys[t->nkeys++] = k;
	k->cached = true;
	k->last_use = ++t->tick;
	cache_shrink(t);
	return k;
}

int transit__key_get(struct transit *t, const char *name, struct tkey **out, struct verr *err)
{
	*out = NULL;
	pthread_mutex_lock(&t->lock);
	struct tkey *k = cache_find(t, name, NULL);
	if (k) {
		k->refs++;
		k->last_use = ++t->tick;
		pthread_mutex_unlock(&t->lock);
		*out = k;
		return 0;
	}
	pthread_mutex_unlock(&t->lock);
	int rc = key_load(t, name, &k, err);
	if (rc || !k)
		return rc;
	k->refs = 1;
	pthread_mutex_lock(&t->lock);
	*out = cache_insert(t, k);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void transit__key_release(struct transit *t, struct tkey *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&t->lock);
	bool gone = --k->refs == 0 && !k->cached;
	if (!gone)
		cache_shrink(t);
	pthread_mutex_unlock(&t->lock);
	if (gone)
		transit__key_free(k);
}

void transit__cache_evict(struct transit *t, const char *name)
{
	size_t i;
	pthread_mutex_lock(&t->lock);
	if (cache_find(t, name, &i))
		cache_remove_at(t, i);
	pthread_mutex_unlock(&t->lock);
}

void transit__cache_set_size(struct transit *t, size_t size)
{
	pthread_mutex_lock(&t->lock);
	t->cache_size = size;
	cache_shrink(t);
	pthread_mutex_unlock(&t->lock);
}

int transit__params_check(const struct tkey_params *p, struct verr *err)
{
	if (p->convergent && !p->derived)
		return verr_set(err, VERR_INVALID, "convergent encryption requires derivation to be enabled");
	if ((p->derived || p->convergent) && !tkey_supports_derivation(p->type))
		return verr_set(err, VERR_INVALID, "key derivation and convergent encryption not supported for keys of type %s", tkey_type_name(p->type));
	if (p->convergent && p->type == TK_ED25519)
		return verr_set(err, VERR_INVALID, "convergent encryption not supported for keys of type %s", tkey_type_name(p->type));
	return 0;
}

/* A new key with p's settings and room for one version (not yet filled). */
static struct tkey *key_new(const char *name, const struct tkey_params *p)
{
	struct tkey *k = key_alloc(name);
	if (!k)
		return NULL;
	k->type = p->type;
	k->derived = p->derived;
	k->convergent = p->convergent;
	k->convergent_version = p->convergent ? TRANSIT_CONVERGENT_VERSION : 0;
	k->exportable = p->exportable;
	k->allow_plaintext_backup = p->allow_plaintext_backup;
	k->auto_rotate_period = p->auto_rotate_period;
	k->key_size = p->type == TK_HMAC ? (p->key_size ? p->key_size : 32) : 0;
	k->min_decryption_version = 1;
	k->latest_version = 1;
	k->versions = calloc(1, sizeof(*k->versions));
	if (!k->versions) {
		transit__key_free(k);
		return NULL;
	}
	return k;
}

/* Persist a new key k (its version 1 filled) and cache it; *out holds a
 * reference. Frees k on failure. Caller holds t->create_lock. */
static int key_publish(struct transit *t, struct tkey *k, struct tkey **out, struct verr *err)
{
	k->versions[0].created = sysview_now(t->sys);
	int rc = transit__key_persist(t, k, err);
	if (rc) {
		transit__key_free(k);
		return rc;
	}
	k->refs = 1;
	pthread_mutex_lock(&t->lock);
	*out = cache_insert(t, k);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int transit__key_upsert(struct transit *t, const char *name, const struct tkey_params *p,
			struct tkey **out, bool *created, struct verr *err)
{
	*created = false;
	int rc = transit__params_check(p, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->create_lock);
	rc = transit__key_get(t, name, out, err);
	if (rc || *out)
		goto out;
	struct tkey *k = key_new(name, p);
	if (!k) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = transit__gen_version(&k->versions[0], k->type, k->key_size, err);
	if (rc) {
		transit__key_free(k);
		goto out;
	}
	rc = key_publish(t, k, out, err);
	*created = rc == 0;
out:
	pthread_mutex_unlock(&t->create_lock);
	return rc;
}

int transit__key_import(struct transit *t, const char *name, const struct tkey_params *p,
			bool allow_rotation, struct tkey_version *v, struct verr *err)
{
	int rc = transit__params_check(p, err);
	struct tkey *k = NULL;
	if (rc)
		goto fail;
	pthread_mutex_lock(&t->create_lock);
	rc = transit__key_get(t, name, &k, err);
	if (!rc && k)
		rc = verr_set(err, VERR_INVALID, TRANSIT_IMPORT_EXISTS);
	transit__key_release(t, k);
	k = NULL;
	if (!rc && !(k = key_new(name, p)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc) {
		k->imported = true;
		k->allow_rotation = allow_rotation;
		if (k->type == TK_HMAC)
			k->key_size = (int)v->key_len;
		k->versions[0] = *v; /* transferred */
		memset(v, 0, sizeof(*v));
		rc = key_publish(t, k, &k, err);
		if (!rc)
			transit__key_release(t, k);
	}
	pthread_mutex_unlock(&t->create_lock);
fail:
	transit__version_clear(v);
	return rc;
}

int transit__key_delete(struct transit *t, const char *name, struct verr *err)
{
	struct tkey *k = NULL;
	char path[512];
	pthread_mutex_lock(&t->create_lock);
	int rc = transit__key_get(t, name, &k, err);
	if (rc)
		goto out;
	if (!k) {
		rc = verr_set(err, VERR_INVALID, "error deleting policy %.128s: could not delete key; not found", name);
		goto out;
	}
	pthread_rwlock_wrlock(&k->lock);
	bool allowed = k->deletion_allowed;
	pthread_rwlock_unlock(&k->lock);
	if (!allowed) {
		rc = verr_set(err, VERR_INVALID, "error deleting policy %.128s: deletion is not allowed for this key", name);
		goto out;
	}
	if (policy_path(path, sizeof(path), name)) {
		rc = verr_set(err, VERR_INVALID, "key name too long");
		goto out;
	}
	rc = view_delete(t->view, path, err);
	if (rc == VERR_NOT_FOUND) {
		verr_clear(err);
		rc = 0;
	}
	if (!rc)
		transit__cache_evict(t, name);
out:
	transit__key_release(t, k);
	pthread_mutex_unlock(&t->create_lock);
	return rc;
}

int transit__key_add_version(struct transit *t, struct tkey *k, struct tkey_version *v,
			     struct verr *err)
{
	int rc = 0;
	struct tkey_version *nv = NULL;
	if (k->latest_version >= 1000000)
		rc = verr_set(err, VERR_INVALID, "key has too many versions");
	else if (!(nv = realloc(k->versions, (size_t)(k->latest_version + 1) * sizeof(*nv))))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		transit__version_clear(v);
		return rc;
	}
	k->versions = nv;
	struct tkey_version *slot = &k->versions[k->latest_version];
	*slot = *v; /* transferred */
	memset(v, 0, sizeof(*v));
	slot->created = sysview_now(t->sys);
	k->latest_version++;
	rc = transit__key_persist(t, k, err);
	if (rc) { /* not stored: forget the new version */
		k->latest_version--;
		transit__version_clear(slot);
	}
	return rc;
}

int transit__key_rotate(struct transit *t, struct tkey *k, struct verr *err)
{
	if (k->imported && !k->allow_rotation)
		return verr_set(err, VERR_INVALID, "imported key %.128s does not allow rotation within Vault", k->name);
	struct tkey_version v;
	int rc = transit__gen_version(&v, k->type, k->key_size, err);
	if (rc)
		return rc;
	bool imported = k->imported;
	k->imported = false; /* rotated here: no further import_version (Vault's rule) */
	rc = transit__key_add_version(t, k, &v, err);
	if (rc)
		k->imported = imported;
	return rc;
}

int transit__key_restore(struct transit *t, const char *name, struct tkey *k, bool force,
			 struct verr *err)
{
	struct tkey *cur = NULL;
	pthread_mutex_lock(&t->create_lock);
	int rc = transit__key_get(t, name, &cur, err);
	if (!rc && cur && !force)
		rc = verr_set(err, VERR_INVALID, "key \"%.128s\" already exists", name);
	transit__key_release(t, cur);
	if (!rc && strcmp(k->name, name)) {
		char *n = strdup(name);
		if (!n)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		else {
			free(k->name);
			k->name = n;
		}
	}
	if (!rc)
		rc = transit__key_persist(t, k, err);
	if (!rc)
		transit__cache_evict(t, name);
	pthread_mutex_unlock(&t->create_lock);
	transit__key_free(k);
	return rc;
}

/* ---- auto-rotation (the backend's periodic hook) ---- */

int transit__periodic(struct transit *t, struct verr *err)
{
	char **names = NULL;
	size_t n = 0;
	int rc = view_list(t->view, "policy/", &names, &n, err);
	if (rc == VERR_NOT_FOUND) {
		verr_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	int64_t now = sysview_now(t->sys);
	for (size_t i = 0; i < n; i++) {
		struct tkey *k = NULL;
		struct verr e = {0};
		if (!strchr(names[i], '/') && transit__key_get(t, names[i], &k, &e) == 0 && k) {
			pthread_rwlock_wrlock(&k->lock);
			const struct tkey_version *lv = transit__version(k, k->latest_version);
			if (k->auto_rotate_period > 0 && lv && now - lv->created >= k->auto_rotate_period) {
				if (transit__key_rotate(t, k, &e))
					sysview_log(t->sys, LOG_WARN, "auto-rotation of key %s failed: %s",
						    k->name, e.msg);
				else
					sysview_log(t->sys, LOG_INFO, "auto-rotated key %s to version %d",
						    k->name, k->latest_version);
			}
			pthread_rwlock_unlock(&k->lock);
		}
		transit__key_release(t, k);
		free(names[i]);
	}
	free(names);
	return 0;
}
