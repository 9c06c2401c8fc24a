/*
 * byok.c - Bring Your Own Key for the transit engine: the mount's RSA-4096
 * wrapping key (GET wrapping_key), and keys/:name/import and
 * keys/:name/import_version, as Vault documents them.
 *
 * DESIGN
 * The client wraps its key for us in two layers, base64 of
 *   RSA-OAEP(wrapping key, hash_function, label "") of an ephemeral
 *   AES-256 key                                   (512 bytes: RSA-4096)
 *   || AES-KWP (RFC 5649) of the target key under that AES key
 * The target key is the raw bytes for the symmetric and hmac types, PKCS#8
 * DER (PrivateKeyInfo) for RSA, ECDSA and Ed25519; its type, curve and
 * size must match the requested key type.
 *
 * The wrapping key is made on first use (GET wrapping_key or an import)
 * and stored below the barrier at "wrapping_key" as JSON (PKCS#8 base64 and
 * the PEM public key); it never changes. While cached, its private half is
 * PKCS#8 DER in a secmem buffer (t->wrap_der, under t->wrap_lock); each
 * import parses it into an EVP_PKEY and frees that right after, so no
 * parsed private key stays in OpenSSL's heap. The ephemeral AES key and
 * the unwrapped target key only ever live in secmem buffers and are wiped.
 * Imports are rare: the parse (a few million instructions) is not worth a
 * longer-lived copy.
 *
 * Errors are 400s with Vault's wording where Vault has one ("provided
 * ciphertext is too short", "invalid key size 31 bytes for key type
 * aes256-gcm96", "unknown hash function: MD5" ...). Failures to unwrap say
 * which layer failed, never anything about the bytes.
 */
#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"

#define WRAP_PATH "wrapping_key"
#define WRAP_BITS 4096
#define WRAPPED_EPH_BYTES (WRAP_BITS / 8) /* Vault's EncryptedKeyBytes */
#define EPH_KEY_BYTES 32

void transit__wrap_forget(struct transit *t)
{
	pthread_mutex_lock(&t->wrap_lock);
	secmem_free(t->wrap_der, t->wrap_der_len);
	free(t->wrap_pem);
	t->wrap_der = NULL;
	t->wrap_der_len = 0;
	t->wrap_pem = NULL;
	pthread_mutex_unlock(&t->wrap_lock);
}

/* Read the stored wrapping key into the cache. 0 with nothing cached when
 * none is stored. Caller holds t->wrap_lock. */
static int wrap_load(struct transit *t, struct verr *err)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc = view_get(t->view, WRAP_PATH, &raw, &len, err);
	if (rc == VERR_NOT_FOUND) {
		verr_clear(err);
		return 0;
	}
	if (rc || !raw)
		return rc;
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, len, 0, &je);
	secmem_wipe(raw, len);
	free(raw);
	json_t *key = json_object_get(j, "key");
	const char *pem = json_string_value(json_object_get(j, "public_key"));
	uint8_t *der = NULL;
	size_t dl = 0;
	if (!json_is_string(key) || !pem ||
	    b64_decode(&der, &dl, json_string_value(key), true, NULL)) {
		rc = verr_set(err, VERR_INTERNAL, "stored transit wrapping key is damaged");
	} else if (!(t->wrap_pem = strdup(pem))) {
		b64_free(der, dl, true);
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	} else {
		t->wrap_der = der; /* transferred */
		t->wrap_der_len = dl;
	}
	if (json_is_string(key))
		secmem_wipe((char *)json_string_value(key), json_string_length(key));
	json_decref(j);
	return rc;
}

/* Make and store a new wrapping key, and cache it. Caller holds
 * t->wrap_lock. */
static int wrap_generate(struct transit *t, struct verr *err)
{
	struct tkey_version v = {0};
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)WRAP_BITS);
	int rc = pk ? transit__version_set_pkey(&v, TK_RSA4096, pk, err)
		    : verr_set(err, VERR_INTERNAL, "failed to generate the wrapping key");
	EVP_PKEY_free(pk);
	char *kb = rc ? NULL : b64_encode(v.key, v.key_len, false);
	size_t kl = kb ? strlen(kb) : 0;
	json_t *j = kb ? json_pack("{s:s,s:s,s:I}", "key", kb, "public_key", v.public_key,
				   "created", (json_int_t)sysview_now(t->sys))
		       : NULL;
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!rc && !s)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = view_put(t->view, WRAP_PATH, (const uint8_t *)s, strlen(s), err);
	if (!rc) {
		t->wrap_der = v.key; /* transferred */
		t->wrap_der_len = v.key_len;
		t->wrap_pem = v.public_key;
		v.key = NULL;
		v.public_key = NULL;
	}
	if (s)
		secmem_wipe(s, strlen(s));
	if (j)
		secmem_wipe((char *)json_string_value(json_object_get(j, "key")), kl);
	if (kb)
		secmem_wipe(kb, kl);
	free(kb);
	free(s);
	json_decref(j);
	transit__version_clear(&v);
	return rc;
}

/* The wrapping key is cached after this (loaded or made). Caller holds
 * t->wrap_lock. */
static int wrap_ensure(struct transit *t, struct verr *err)
{
	if (t->wrap_der)
		return 0;
	int rc = wrap_load(t, err);
	if (!rc && !t->wrap_der)
		rc = wrap_generate(t, err);
	return rc;
}

int transit__wrapping_key_path(struct logical_request *req, struct logical_response *resp,
			       struct verr *err)
{
	struct transit *t = req->backend;
	pthread_mutex_lock(&t->wrap_lock);
	int rc = wrap_ensure(t, err);
	if (!rc && !(resp->data = json_pack("{s:s}", "public_key", t->wrap_pem)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_unlock(&t->wrap_lock);
	return rc;
}

/* hash_function: SHA1, SHA224, SHA256, SHA384, SHA512, any case, with or
 * without the dash Vault's API page writes ("SHA-256"). */
static const EVP_MD *hash_fn(const char *s)
{
	static const struct {
		const char *name;
		const EVP_MD *(*md)(void);
	} fns[] = {{"SHA1", EVP_sha1},     {"SHA224", EVP_sha224}, {"SHA256", EVP_sha256},
		   {"SHA384", EVP_sha384}, {"SHA512", EVP_sha512}};
	char n[8];
	size_t l = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '-' && p == s + 3)
			continue;
		if (l + 1 >= sizeof(n))
			return NULL;
		n[l++] = (char)toupper((unsigned char)*p);
	}
	n[l] = 0;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (!strcmp(n, fns[i].name))
			return fns[i].md();
	return NULL;
}

/* RSA-OAEP-decrypt the ephemeral key with the wrapping key into eph (32
 * bytes, secmem). */
static int unwrap_eph(struct transit *t, uint8_t *eph, const uint8_t *in, const EVP_MD *md,
		      struct verr *err)
{
	pthread_mutex_lock(&t->wrap_lock);
	int rc = wrap_ensure(t, err);
	EVP_PKEY *pk = NULL;
	if (!rc) {
		const unsigned char *p = t->wrap_der;
		pk = d2i_AutoPrivateKey(NULL, &p, (long)t->wrap_der_len);
		if (!pk)
			rc = verr_set(err, VERR_INTERNAL, "stored transit wrapping key is damaged");
	}
	pthread_mutex_unlock(&t->wrap_lock);
	if (rc)
		return rc;
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
	uint8_t *buf = secmem_alloc(WRAPPED_EPH_BYTES);
	size_t n = WRAPPED_EPH_BYTES;
	if (!pc || !buf)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	else if (EVP_PKEY_decrypt_init(pc) != 1 ||
		 EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
		 EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) != 1)
		rc = verr_set(err, VERR_INTERNAL, "failed to set up RSA-OAEP");
	else if (EVP_PKEY_decrypt(pc, buf, &n, in, WRAPPED_EPH_BYTES) != 1)
		rc = verr_set(err, VERR_INVALID, "failed to decrypt the ephemeral AES key with the wrapping key: crypto/rsa: decryption error");
	else if (n != EPH_KEY_BYTES)
		rc = verr_set(err, VERR_INVALID, "expected ephemeral AES key to be 256-bit");
	else
		memcpy(eph, buf, EPH_KEY_BYTES);
	secmem_free(buf, WRAPPED_EPH_BYTES);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(pk); /* OpenSSL clears the private numbers */
	ERR_clear_error();
	return rc;
}

/* AES-KWP (RFC 5649) unwrap of in with eph: *out secmem, *out_len bytes. */
static int unwrap_kwp(uint8_t **out, size_t *out_len, const uint8_t *eph, const uint8_t *in,
		      size_t len, struct verr *err)
{
	*out = NULL;
	if (len < 16 || len % 8 || len > INT32_MAX)
		return verr_set(err, VERR_INVALID, "failed to unwrap the key: the wrapped key is not a whole number of 8-byte blocks of at least 16 bytes");
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	uint8_t *buf = secmem_alloc(len);
	int n = 0, f = 0, rc = 0;
	if (!cx || !buf) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	EVP_CIPHER_CTX_set_flags(cx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_DecryptInit_ex2(cx, EVP_aes_256_wrap_pad(), eph, NULL, NULL) != 1 ||
	    EVP_DecryptUpdate(cx, buf, &n, in, (int)len) != 1 || n <= 0 ||
	    EVP_DecryptFinal_ex(cx, buf + n, &f) != 1) {
		rc = verr_set(err, VERR_INVALID, "failed to unwrap the key: AES-KWP integrity check failed (wrong ephemeral key or damaged ciphertext)");
		goto out;
	}
	*out = buf; /* transferred */
	*out_len = (size_t)(n + f);
	buf = NULL;
out:
	secmem_free(buf, len);
	EVP_CIPHER_CTX_free(cx);
	ERR_clear_error();
	return rc;
}

/* Both layers: *key (secmem, caller secmem_free) is the target key. */
static int byok_unwrap(struct transit *t, uint8_t **key, size_t *key_len, const char *ct_b64,
		       const char *hash, struct verr *err)
{
	*key = NULL;
	const EVP_MD *md = hash_fn(hash);
	if (!md)
		return verr_set(err, VERR_INVALID, "unknown hash function: %.32s", hash);
	uint8_t *ct = NULL, *eph = NULL;
	size_t cl = 0;
	struct verr e = {0};
	if (b64_decode(&ct, &cl, ct_b64, false, &e))
		return verr_set(err, VERR_INVALID, "failed to base64-decode ciphertext: %s", e.msg);
	int rc = 0;
	if (cl <= WRAPPED_EPH_BYTES)
		rc = verr_set(err, VERR_INVALID, "provided ciphertext is too short");
	else if (!(eph = secmem_alloc(EPH_KEY_BYTES)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = unwrap_eph(t, eph, ct, md, err);
	if (!rc)
		rc = unwrap_kwp(key, key_len, eph, ct + WRAPPED_EPH_BYTES, cl - WRAPPED_EPH_BYTES, err);
	secmem_free(eph, EPH_KEY_BYTES);
	b64_free(ct, cl, false); /* wrapped: nothing secret in it */
	return rc;
}

static const char *pkey_kind(const EVP_PKEY *pk)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA: return "an RSA key";
	case EVP_PKEY_RSA_PSS: return "an RSA-PSS key";
	case EVP_PKEY_EC: return "an EC key";
	case EVP_PKEY_ED25519: return "an Ed25519 key";
	case EVP_PKEY_ED448: return "an Ed448 key";
	case EVP_PKEY_X25519: return "an X25519 key";
	default: return "a key of another algorithm";
	}
}

/* Type, curve and size of the parsed key against the key type. */
static int pkey_matches(const EVP_PKEY *pk, enum tkey_type type, struct verr *err)
{
	int want = tkey_is_rsa(type) ? EVP_PKEY_RSA : tkey_is_ecdsa(type) ? EVP_PKEY_EC : EVP_PKEY_ED25519;
	if (EVP_PKEY_get_base_id(pk) != want)
		return verr_set(err, VERR_INVALID, "invalid key type: expected %s, got %s", tkey_type_name(type), pkey_kind(pk));
	if (tkey_is_ecdsa(type)) {
		const char *curve = type == TK_ECDSA_P256 ? "P-256" : type == TK_ECDSA_P384 ? "P-384" : "P-521";
		char g[64] = "";
		size_t gl = 0;
		const char *got = NULL;
		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof(g), &gl) == 1)
			got = EC_curve_nid2nist(OBJ_sn2nid(g));
		if (!got || strcmp(got, curve))
			return verr_set(err, VERR_INVALID, "invalid curve: expected %s, got %s", curve, got ? got : (*g ? g : "an unnamed curve"));
	}
	if (tkey_is_rsa(type)) {
		int want_bytes = type == TK_RSA2048 ? 256 : type == TK_RSA3072 ? 384 : 512;
		if (EVP_PKEY_get_size(pk) != want_bytes)
			return verr_set(err, VERR_INVALID, "invalid key size: expected %d bytes, got %d bytes", want_bytes, EVP_PKEY_get_size(pk));
	}
	return 0;
}

/* One version's material from the unwrapped target key. */
static int byok_version(struct tkey_version *v, enum tkey_type type, const uint8_t *key,
			size_t len, struct verr *err)
{
	memset(v, 0, sizeof(*v));
	int rc = transit__version_hmac_key(v, err);
	if (rc)
		goto out;
	if (tkey_is_symmetric(type) || type == TK_HMAC) {
		size_t want = type == TK_AES128_GCM96 ? 16 : 32;
		if (type == TK_HMAC ? len < TRANSIT_HMAC_MIN || len > TRANSIT_HMAC_MAX : len != want) {
			rc = verr_set(err, VERR_INVALID, "invalid key size %zu bytes for key type %s", len, tkey_type_name(type));
			goto out;
		}
		if (!(v->key = secmem_alloc(len))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		memcpy(v->key, key, len);
		v->key_len = len;
		goto out;
	}
	const unsigned char *p = key;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
	EVP_PKEY *pk = p8 && p == key + len ? EVP_PKCS82PKEY(p8) : NULL;
	PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets */
	if (!pk) {
		rc = verr_set(err, VERR_INVALID, "error parsing asymmetric key: not a PKCS#8 (PrivateKeyInfo) DER private key");
		goto out;
	}
	rc = pkey_matches(pk, type, err);
	if (!rc) {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
		int ok = pc ? EVP_PKEY_pairwise_check(pc) : 0;
		EVP_PKEY_CTX_free(pc);
		if (ok == 0 || ok == -1)
			rc = verr_set(err, VERR_INVALID, "cannot import key, key pair does not match");
	}
	if (!rc)
		rc = transit__version_set_pkey(v, type, pk, err);
	EVP_PKEY_free(pk);
out:
	ERR_clear_error();
	if (rc)
		transit__version_clear(v);
	return rc;
}

/* Unwrap the request's ciphertext into a version of a key of `type`. */
static int request_version(struct logical_request *req, struct tkey_version *v,
			   enum tkey_type type, struct verr *err)
{
	const char *ct = request_str(req, "ciphertext");
	if (!ct || !*ct) {
		if (request_has(req, "public_key"))
			return verr_set(err, VERR_INVALID, "importing only a public_key is not supported; send the private key in ciphertext");
		return verr_set(err, VERR_INVALID, "one of the following fields, ciphertext xor public_key, has to be set");
	}
	const char *hash = request_str(req, "hash_function");
	uint8_t *key = NULL;
	size_t kl = 0;
	int rc = byok_unwrap(req->backend, &key, &kl, ct, hash && *hash ? hash : "SHA256", err);
	if (!rc)
		rc = byok_version(v, type, key, kl, err);
	secmem_free(key, kl);
	return rc;
}

int transit__import_path(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct transit *t = req->backend;
	const char *name = request_str(req, "name");
	struct tkey_params p = {0};
	bool allow_rotation = request_bool(req, "allow_rotation");
	const char *type = request_str(req, "type");
	if (request_has(req, "convergent_encryption"))
		return verr_set(err, VERR_INVALID, "import cannot be used on keys with convergent encryption enabled");
	p.derived = request_bool(req, "derived");
	p.exportable = request_bool(req, "exportable");
	p.allow_plaintext_backup = request_bool(req, "allow_plaintext_backup");
	p.auto_rotate_period = request_duration(req, "auto_rotate_period");
	if (p.auto_rotate_period > 0 && !allow_rotation)
		return verr_set(err, VERR_INVALID, "allow_rotation must be set to true if auto-rotation is enabled");
	if (p.auto_rotate_period != 0 && p.auto_rotate_period < 3600)
		return verr_set(err, VERR_INVALID, "auto rotate period must be 0 to disable or at least an hour");
	if (!type || !*type)
		type = "aes256-gcm96";
	char lower[32];
	size_t i = 0;
	for (; type[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)type[i]);
	lower[i] = 0;
	if (type[i] || tkey_type_parse(lower, &p.type))
		return verr_set(err, VERR_INVALID, "unknown key type: %.64s", type);
	/* Vault's order: an existing key is refused before any unwrapping */
	struct tkey *k = NULL;
	int rc = transit__params_check(&p, err);
	if (rc)
		return rc;
	rc = transit__key_get(t, name, &k, err);
	transit__key_release(t, k);
	if (rc)
		return rc;
	if (k)
		return verr_set(err, VERR_INVALID, TRANSIT_IMPORT_EXISTS);
	struct tkey_version v;
	rc = request_version(req, &v, p.type, err);
	if (!rc)
		rc = transit__key_import(t, name, &p, allow_rotation, &v, err);
	return rc; /* no data: 204, as Vault */
}

int transit__import_version_path(struct logical_request *req, struct logical_response *resp,
				 struct verr *err)
{
	struct transit *t = req->backend;
	const char *name = request_str(req, "name");
	struct tkey *k = NULL;
	int rc = transit__key_get(t, name, &k, err);
	if (rc)
		return rc;
	if (!k)
		return verr_set(err, VERR_INVALID, "no key found with name %.128s; to import a new key, use the import/ endpoint", name);
	struct tkey_version v = {0};
	pthread_rwlock_rdlock(&k->lock);
	bool imported = k->imported, convergent = k->convergent;
	int latest = k->latest_version;
	pthread_rwlock_unlock(&k->lock);
	if (!imported)
		rc = verr_set(err, VERR_INVALID, "the import_version endpoint can only be used with an imported key");
	else if (convergent)
		rc = verr_set(err, VERR_INVALID, "import_version cannot be used on keys with convergent encryption enabled");
	else if (request_has(req, "version")) {
		/* Vault fills a version imported public-only; Coffer imports no
		 * public-only versions, so every existing one is complete */
		int64_t ver = request_int(req, "version");
		if (ver < 1 || ver > latest)
			rc = verr_set(err, VERR_INVALID, "invalid version %lld: the key has versions 1 to %d", (long long)ver, latest);
		else
			rc = verr_set(err, VERR_INVALID, "key version %lld already has its private key; omit version to import a new version", (long long)ver);
	}
	/* unwrap (an RSA-4096 private operation) before taking the write lock,
	 * so encryptions with the key are not held up; the type never changes */
	if (!rc)
		rc = request_version(req, &v, k->type, err);
	if (!rc) {
		pthread_rwlock_wrlock(&k->lock);
		if (!k->imported) { /* rotated meanwhile */
			transit__version_clear(&v);
			rc = verr_set(err, VERR_INVALID, "the import_version endpoint can only be used with an imported key");
		} else {
			int old_size = k->key_size;
			if (k->type == TK_HMAC)
				k->key_size = (int)v.key_len;
			rc = transit__key_add_version(t, k, &v, err);
			if (rc)
				k->key_size = old_size;
		}
		pthread_rwlock_unlock(&k->lock);
	}
	transit__key_release(t, k);
	return rc;
}
