/*
 * crypto.c - the transit engine's cryptography per key type (transit_int.h):
 * AEAD encryption (AES-GCM with 96-bit nonces, ChaCha20-Poly1305), RSA-OAEP,
 * key derivation, convergent nonces, signatures and their verification,
 * digests, HMACs and key export formats. OpenSSL 3 throughout.
 *
 * Wire formats follow Vault's transit so ciphertexts and signatures move
 * between the two:
 *   ciphertext  "vault:v<N>:" base64(nonce(12) | ciphertext | tag(16))
 *               (RSA: base64 of the OAEP-SHA256 ciphertext)
 *   derived key HKDF-SHA256(ikm = the version's key, salt empty,
 *               info = context), 16 or 32 bytes; convergent keys take 32
 *               more bytes from the same stream as the nonce HMAC key
 *   convergent  nonce = HMAC-SHA256(nonce key, plaintext)[:12] (version 3)
 *   signature   "vault:v<N>:" base64(sig); ECDSA asn1 = DER, jws = r|s with
 *               base64url (no padding)
 * Stack copies of derived keys are wiped before returning.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"

#define TOO_OLD "ciphertext or signature version is disallowed by policy (too old)"
#define NO_CONTEXT                                                                        \
	"missing 'context' for key derivation; the key was created using a derived key, "  \
	"which means additional, per-request information must be included in order to "     \
	"perform operations with the key"

static EVP_CIPHER *g_aes128, *g_aes256, *g_chacha;
static EVP_KDF *g_hkdf;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_algs(void)
{
	/* fetched once: an implicit fetch per EVP_EncryptInit costs a lock and
	 * a lookup on every request */
	g_aes128 = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	g_aes256 = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	g_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	g_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

static const EVP_CIPHER *cipher_of(enum tkey_type t)
{
	pthread_once(&g_once, fetch_algs);
	switch (t) {
	case TK_AES128_GCM96: return g_aes128;
	case TK_AES256_GCM96: return g_aes256;
	case TK_CHACHA20_POLY1305: return g_chacha;
	default: return NULL;
	}
}

int transit__hkdf(uint8_t *out, size_t n, const uint8_t *ikm, size_t ikm_len, const uint8_t *ctx,
		  size_t ctx_len, struct verr *err)
{
	pthread_once(&g_once, fetch_algs);
	EVP_KDF_CTX *kc = g_hkdf ? EVP_KDF_CTX_new(g_hkdf) : NULL;
	OSSL_PARAM ps[4];
	ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	ps[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	ps[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ctx, ctx_len);
	ps[3] = OSSL_PARAM_construct_end();
	int ok = kc && EVP_KDF_derive(kc, out, n, ps) == 1;
	EVP_KDF_CTX_free(kc);
	return ok ? 0 : verr_set(err, VERR_INTERNAL, "key derivation failed");
}

/* ---- version prefix ---- */

int transit__parse_prefixed(const char *s, const char *what, int *ver, const char **rest,
			    struct verr *err)
{
	if (strncmp(s, "vault:v", 7))
		return verr_set(err, VERR_INVALID, "invalid %s: no prefix", what);
	const char *p = s + 7, *colon = strchr(p, ':');
	if (!colon)
		return verr_set(err, VERR_INVALID, "invalid %s: wrong number of fields", what);
	long v = 0;
	if (colon == p || colon - p > 9)
		return verr_set(err, VERR_INVALID, "invalid %s: version number could not be decoded", what);
	for (const char *q = p; q < colon; q++) {
		if (*q < '0' || *q > '9')
			return verr_set(err, VERR_INVALID, "invalid %s: version number could not be decoded", what);
		v = v * 10 + (*q - '0');
	}
	*ver = v == 0 ? 1 : (int)v; /* v0: Vault's first keys started at zero */
	*rest = colon + 1;
	return 0;
}

char *transit__prefixed_b64(int ver, const uint8_t *in, size_t in_len, bool url, size_t *len)
{
	char pre[24] = "vault:v", digits[12];
	size_t nd = 0, pl = 7;
	unsigned u = ver > 0 ? (unsigned)ver : 0;
	do {
		digits[nd++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (nd)
		pre[pl++] = digits[--nd];
	pre[pl++] = ':';
	char *out = malloc(pl + b64_encoded_len(in_len, url) + 1);
	if (!out)
		return NULL;
	memcpy(out, pre, pl);
	size_t n = pl + b64_encode_to(out + pl, in, in_len, url);
	if (len)
		*len = n;
	return out;
}

/* ---- symmetric ---- */

/* The key for (ver, ctx): the version's own bytes, or derived into buf
 * (n bytes). *key points at the bytes to use. */
static int sym_key(const uint8_t **key, uint8_t *buf, size_t n, const struct tkey *k,
		   const struct tkey_version *v, const uint8_t *ctx, size_t ctx_len,
		   struct verr *err)
{
	if (!k->derived) {
		*key = v->key;
		return 0;
	}
	if (!ctx_len)
		return verr_set(err, VERR_INVALID, NO_CONTEXT);
	int rc = transit__hkdf(buf, n, v->key, v->key_len, ctx, ctx_len, err);
	*key = rc ? NULL : buf;
	return rc;
}

/* A context keyed for (key, direction) with the nonce set. With a
 * transit_aead whose context is already keyed for this version (v, only
 * when the key is not derived) only the nonce is set. NULL on failure; the
 * context is a's, or a one-shot one (*own) the caller frees. */
static EVP_CIPHER_CTX *aead_ctx(struct transit_aead *a, bool enc, const EVP_CIPHER *c,
				const uint8_t *key, const struct tkey_version *v,
				const uint8_t *nonce, bool *own)
{
	*own = !a;
	EVP_CIPHER_CTX *cx = a ? a->cx : NULL;
	if (!cx) {
		cx = EVP_CIPHER_CTX_new();
		if (!cx)
			return NULL;
		if (a)
			a->cx = cx;
	} else if (a->v && a->v == v && a->enc == enc) {
		return EVP_CipherInit_ex2(cx, NULL, NULL, nonce, enc, NULL) == 1 ? cx : NULL;
	}
	if (a)
		a->v = NULL;
	if (EVP_CipherInit_ex2(cx, c, key, nonce, enc, NULL) != 1) {
		if (*own)
			EVP_CIPHER_CTX_free(cx);
		return NULL;
	}
	if (a) {
		a->v = v;
		a->enc = enc;
	}
	return cx;
}

static int aead_seal(uint8_t *out, struct transit_aead *a, const EVP_CIPHER *c,
		     const uint8_t *key, const struct tkey_version *v,
		     const uint8_t nonce[TRANSIT_NONCE_LEN], const uint8_t *aad, size_t aad_len,
		     const uint8_t *pt, size_t len)
{
	bool own;
	EVP_CIPHER_CTX *cx = aead_ctx(a, true, c, key, v, nonce, &own);
	int ok = 0, n = 0, f = 0;
	if (cx && (!aad_len || EVP_EncryptUpdate(cx, NULL, &n, aad, (int)aad_len) == 1) &&
	    EVP_EncryptUpdate(cx, out, &n, pt, (int)len) == 1 &&
	    EVP_EncryptFinal_ex(cx, out + n, &f) == 1 &&
	    EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_GET_TAG, TRANSIT_TAG_LEN, out + len) == 1)
		ok = 1;
	if (own)
		EVP_CIPHER_CTX_free(cx);
	else if (!ok && a)
		a->v = NULL; /* re-key next time */
	return ok ? 0 : -1;
}

static int aead_open(uint8_t *out, struct transit_aead *a, const EVP_CIPHER *c,
		     const uint8_t *key, const struct tkey_version *v, const uint8_t *nonce,
		     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
		     const uint8_t *tag)
{
	bool own;
	EVP_CIPHER_CTX *cx = aead_ctx(a, false, c, key, v, nonce, &own);
	int ok = 0, n = 0, f = 0;
	if (cx && (!aad_len || EVP_DecryptUpdate(cx, NULL, &n, aad, (int)aad_len) == 1) &&
	    EVP_DecryptUpdate(cx, out, &n, ct, (int)len) == 1 &&
	    EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_SET_TAG, TRANSIT_TAG_LEN, (void *)tag) == 1 &&
	    EVP_DecryptFinal_ex(cx, out + n, &f) == 1)
		ok = 1;
	if (own)
		EVP_CIPHER_CTX_free(cx);
	else if (!ok && a)
		a->v = NULL; /* a failed tag check: start from a clean context */
	return ok ? 0 : -1;
}

EVP_PKEY *transit__pkey(const struct tkey *k, const struct tkey_version *v)
{
	if (k->type == TK_ED25519)
		return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, v->key, 32);
	const unsigned char *p = v->key;
	return d2i_AutoPrivateKey(NULL, &p, (long)v->key_len);
}

EVP_PKEY *transit__pkey_get(const struct tkey *k, const struct tkey_version *v)
{
	/* the cache slot is the one member a reader may set, once */
	struct tkey_version *mv = (struct tkey_version *)v;
	EVP_PKEY *pk = __atomic_load_n(&mv->pkey, __ATOMIC_ACQUIRE);
	if (pk)
		return pk;
	pk = transit__pkey(k, v);
	if (!pk)
		return NULL;
	EVP_PKEY *cur = NULL;
	if (!__atomic_compare_exchange_n(&mv->pkey, &cur, pk, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		EVP_PKEY_free(pk); /* another thread published first */
		pk = cur;
	}
	return pk;
}

/* RSA-OAEP (SHA-256) of in into the scratch s (the caller puts it back). */
static int rsa_oaep(bool enc, struct tscratch *s, uint8_t **out, size_t *out_len, EVP_PKEY *pk,
		    const uint8_t *in, size_t len)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
	int rc = -1;
	size_t n = 0;
	*out = NULL;
	if (!pc || (enc ? EVP_PKEY_encrypt_init(pc) : EVP_PKEY_decrypt_init(pc)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1 ||
	    (enc ? EVP_PKEY_encrypt(pc, NULL, &n, in, len) : EVP_PKEY_decrypt(pc, NULL, &n, in, len)) != 1)
		goto out;
	*out = transit__scratch_get(s, n + 1);
	if (!*out)
		goto out;
	if ((enc ? EVP_PKEY_encrypt(pc, *out, &n, in, len) : EVP_PKEY_decrypt(pc, *out, &n, in, len)) != 1) {
		transit__scratch_put(s);
		*out = NULL;
		goto out;
	}
	(*out)[n] = 0;
	*out_len = n;
	rc = 0;
out:
	EVP_PKEY_CTX_free(pc);
	ERR_clear_error();
	return rc;
}

int transit__encrypt(char **out, size_t *out_len, const struct tkey *k, int ver,
		     const uint8_t *ctx, size_t ctx_len, const uint8_t *pt, size_t pt_len,
		     const uint8_t *aad, size_t aad_len, bool nonce_given, struct transit_aead *a,
		     struct verr *err)
{
	*out = NULL;
	const struct tkey_version *v = transit__version(k, ver);
	if (!v)
		return verr_set(err, VERR_INVALID, "no such key version");
	if (tkey_is_rsa(k->type)) {
		EVP_PKEY *pk = transit__pkey_get(k, v);
		struct tscratch s = {0};
		uint8_t *ct = NULL;
		size_t n = 0;
		int r = pk ? rsa_oaep(true, &s, &ct, &n, pk, pt, pt_len) : -1;
		if (r)
			return verr_set(err, VERR_INVALID, "failed to RSA encrypt the plaintext: message too long for the key");
		*out = transit__prefixed_b64(ver, ct, n, false, out_len);
		transit__scratch_put(&s);
		return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	const EVP_CIPHER *c = cipher_of(k->type);
	if (!c)
		return verr_set(err, VERR_INVALID, "message encryption not supported for key type %s", tkey_type_name(k->type));
	if (nonce_given)
		return verr_set(err, VERR_INVALID, "nonce provided when not allowed");
	if (pt_len > (size_t)INT32_MAX - 64)
		return verr_set(err, VERR_TOO_LARGE, "plaintext too large");
	size_t enc_bytes = k->type == TK_AES128_GCM96 ? 16 : 32;
	uint8_t dk[64];
	const uint8_t *key = NULL;
	int rc = sym_key(&key, dk, enc_bytes + (k->convergent ? 32 : 0), k, v, ctx, ctx_len, err);
	if (rc)
		return rc;
	size_t raw_len = TRANSIT_NONCE_LEN + pt_len + TRANSIT_TAG_LEN;
	uint8_t *raw = malloc(raw_len);
	if (!raw) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (k->convergent) {
		/* deterministic nonce: same (context, plaintext), same ciphertext */
		uint8_t mac[32];
		unsigned ml = 0;
		if (!HMAC(EVP_sha256(), dk + enc_bytes, 32, pt, pt_len, mac, &ml)) {
			rc = verr_set(err, VERR_INTERNAL, "nonce derivation failed");
			goto out;
		}
		memcpy(raw, mac, TRANSIT_NONCE_LEN);
	} else if (transit__nonce(raw)) {
		rc = verr_set(err, VERR_INTERNAL, "random generator failed");
		goto out;
	}
	/* the batch context keeps the schedule only of a version's own key */
	if (aead_seal(raw + TRANSIT_NONCE_LEN, a, c, key, k->derived ? NULL : v, raw, aad, aad_len,
		      pt, pt_len)) {
		rc = verr_set(err, VERR_INTERNAL, "encryption failed");
		goto out;
	}
	*out = transit__prefixed_b64(ver, raw, raw_len, false, out_len);
	if (!*out)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	free(raw);
	secmem_wipe(dk, sizeof(dk));
	return rc;
}

int transit__versioned_input(const struct tkey *k, const char *s, const char *what, int *ver,
			     const char **b64, const struct tkey_version **v, struct verr *err)
{
	int rc = transit__parse_prefixed(s, what, ver, b64, err);
	if (rc)
		return rc;
	if (*ver > k->latest_version)
		return verr_set(err, VERR_INVALID, "invalid %s: version is too new", what);
	if (k->min_decryption_version > 0 && *ver < k->min_decryption_version)
		return verr_set(err, VERR_INVALID, TOO_OLD);
	*v = transit__version(k, *ver);
	return *v ? 0 : verr_set(err, VERR_INVALID, "no such key version");
}

int transit__decrypt(struct tscratch *s, uint8_t **out, size_t *out_len, int *ver_out,
		     const struct tkey *k, const char *ct, const uint8_t *ctx, size_t ctx_len,
		     const uint8_t *aad, size_t aad_len, struct transit_aead *a, struct verr *err)
{
	*out = NULL;
	*out_len = 0;
	if (!tkey_supports_encryption(k->type))
		return verr_set(err, VERR_INVALID, "message decryption not supported for key type %s", tkey_type_name(k->type));
	int ver;
	const char *b64;
	const struct tkey_version *v;
	int rc = transit__versioned_input(k, ct, "ciphertext", &ver, &b64, &v, err);
	if (rc)
		return rc;
	*ver_out = ver;
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	if (b64_decode(&raw, &raw_len, b64, false, NULL))
		return verr_set(err, VERR_INVALID, "invalid ciphertext: could not decode base64");
	if (tkey_is_rsa(k->type)) {
		EVP_PKEY *pk = transit__pkey_get(k, v);
		int r = pk ? rsa_oaep(false, s, out, out_len, pk, raw, raw_len) : -1;
		free(raw);
		return r ? verr_set(err, VERR_INVALID, "crypto/rsa: decryption error") : 0;
	}
	const EVP_CIPHER *c = cipher_of(k->type);
	size_t enc_bytes = k->type == TK_AES128_GCM96 ? 16 : 32;
	uint8_t dk[32];
	const uint8_t *key = NULL;
	rc = sym_key(&key, dk, enc_bytes, k, v, ctx, ctx_len, err);
	if (rc)
		goto out;
	if (raw_len < TRANSIT_NONCE_LEN) {
		rc = verr_set(err, VERR_INVALID, "invalid ciphertext length");
		goto out;
	}
	if (raw_len < TRANSIT_NONCE_LEN + TRANSIT_TAG_LEN) {
		rc = verr_set(err, VERR_INVALID, "cipher: message authentication failed");
		goto out;
	}
	size_t n = raw_len - TRANSIT_NONCE_LEN - TRANSIT_TAG_LEN;
	*out = transit__scratch_get(s, n + 1);
	if (!*out) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (aead_open(*out, a, c, key, k->derived ? NULL : v, raw, aad, aad_len,
		      raw + TRANSIT_NONCE_LEN, n, raw + TRANSIT_NONCE_LEN + n)) {
		transit__scratch_put(s);
		*out = NULL;
		rc = verr_set(err, VERR_INVALID, "cipher: message authentication failed");
		goto out;
	}
	(*out)[n] = 0;
	*out_len = n;
out:
	free(raw);
	secmem_wipe(dk, sizeof(dk));
	return rc;
}

/* ---- hashes ---- */

static const struct {
	const char *name;
	enum transit_hash h;
} hash_names[] = {
	{"sha1", TH_SHA1},         {"sha2-224", TH_SHA224},   {"sha2-256", TH_SHA256},
	{"sha2-384", TH_SHA384},   {"sha2-512", TH_SHA512},   {"sha3-224", TH_SHA3_224},
	{"sha3-256", TH_SHA3_256}, {"sha3-384", TH_SHA3_384}, {"sha3-512", TH_SHA3_512},
	{"none", TH_NONE},
};

int transit__hash_parse(const char *s, enum transit_hash *out)
{
	for (size_t i = 0; i < sizeof(hash_names) / sizeof(hash_names[0]); i++)
		if (s && !strcmp(s, hash_names[i].name)) {
			*out = hash_names[i].h;
			return 0;
		}
	return -1;
}

const EVP_MD *transit__hash_md(enum transit_hash h)
{
	switch (h) {
	case TH_SHA1: return EVP_sha1();
	case TH_SHA224: return EVP_sha224();
	case TH_SHA256: return EVP_sha256();
	case TH_SHA384: return EVP_sha384();
	case TH_SHA512: return EVP_sha512();
	case TH_SHA3_224: return EVP_sha3_224();
	case TH_SHA3_256: return EVP_sha3_256();
	case TH_SHA3_384: return EVP_sha3_384();
	case TH_SHA3_512: return EVP_sha3_512();
	case TH_NONE: break;
	}
	return NULL;
}

int transit__digest(enum transit_hash h, const uint8_t *in, size_t len, uint8_t *out,
		    unsigned *out_len)
{
	const EVP_MD *md = transit__hash_md(h);
	return md && EVP_Digest(in, len, out, out_len, md, NULL) == 1 ? 0 : -1;
}

int transit__hmac(enum transit_hash h, const uint8_t *key, size_t key_len, const uint8_t *in,
		  size_t len, uint8_t *out, unsigned *out_len)
{
	const EVP_MD *md = transit__hash_md(h);
	return md && HMAC(md, key, (int)key_len, in, len, out, out_len) ? 0 : -1;
}

/* ---- signatures ---- */

static size_t ec_field_bytes(enum tkey_type t)
{
	return t == TK_ECDSA_P256 ? 32 : t == TK_ECDSA_P384 ? 48 : 66;
}

/* The key to sign or verify with: the version's cached one (borrowed), or
 * for derived ed25519 keys one made from the first 32 HKDF bytes of
 * (stored private key, context), as Vault does (*own: the caller frees). */
static EVP_PKEY *sign_key(const struct tkey *k, const struct tkey_version *v,
			  const uint8_t *ctx, size_t ctx_len, bool *own, struct verr *err)
{
	*own = false;
	if (k->type != TK_ED25519 || !k->derived)
		return transit__pkey_get(k, v);
	if (!ctx_len) {
		verr_set(err, VERR_INVALID, NO_CONTEXT);
		return NULL;
	}
	uint8_t seed[32];
	if (transit__hkdf(seed, sizeof(seed), v->key, v->key_len, ctx, ctx_len, err))
		return NULL;
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	secmem_wipe(seed, sizeof(seed));
	*own = pk != NULL;
	return pk;
}

/* Configure an RSA signing/verifying context. */
static int rsa_setup(EVP_PKEY_CTX *pc, const struct sign_opts *o, bool signing)
{
	const EVP_MD *md = transit__hash_md(o->hash);
	if (EVP_PKEY_CTX_set_rsa_padding(pc, o->pkcs1v15 ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING) != 1)
		return -1;
	if (md && EVP_PKEY_CTX_set_signature_md(pc, md) != 1)
		return -1;
	if (!o->pkcs1v15) {
		int salt = o->salt_len;
		if (salt == -2)
			salt = signing ? RSA_PSS_SALTLEN_MAX : RSA_PSS_SALTLEN_AUTO;
		else if (salt == -1)
			salt = RSA_PSS_SALTLEN_DIGEST;
		if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) != 1)
			return -1;
	}
	return 0;
}

/* What is signed: the input itself (ed25519, prehashed) or its digest. */
static int sign_message(uint8_t *buf, unsigned *len, const uint8_t **msg, size_t *msg_len,
			const struct tkey *k, const uint8_t *input, size_t in_len,
			const struct sign_opts *o)
{
	if (k->type == TK_ED25519 || o->prehashed || o->hash == TH_NONE) {
		*msg = input;
		*msg_len = in_len;
		return 0;
	}
	if (transit__digest(o->hash, input, in_len, buf, len))
		return -1;
	*msg = buf;
	*msg_len = *len;
	return 0;
}

int transit__sign(char **out, char **pub_out, const struct tkey *k, int ver, const uint8_t *ctx,
		  size_t ctx_len, const uint8_t *input, size_t in_len, const struct sign_opts *o,
		  struct verr *err)
{
	*out = NULL;
	*pub_out = NULL;
	if (!tkey_supports_signing(k->type))
		return verr_set(err, VERR_INVALID, "key type %s does not support signing", tkey_type_name(k->type));
	if (ver == 0)
		ver = k->latest_version;
	else if (ver < 0)
		return verr_set(err, VERR_INVALID, "requested version for signing is negative");
	else if (ver > k->latest_version)
		return verr_set(err, VERR_INVALID, "requested version for signing is higher than the latest key version");
	else if (k->min_encryption_version > 0 && ver < k->min_encryption_version)
		return verr_set(err, VERR_INVALID, "requested version for signing is less than the minimum encryption key version");
	const struct tkey_version *v = transit__version(k, ver);
	if (!v)
		return verr_set(err, VERR_INVALID, "no such key version");
	uint8_t dg[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	const uint8_t *msg;
	size_t msg_len;
	if (sign_message(dg, &dl, &msg, &msg_len, k, input, in_len, o))
		return verr_set(err, VERR_INTERNAL, "unsupported hash algorithm");
	bool own;
	EVP_PKEY *pk = sign_key(k, v, ctx, ctx_len, &own, err);
	if (!pk)
		return err && err->code ? err->code : verr_set(err, VERR_INTERNAL, "failed to load the key");
	uint8_t *sig = NULL;
	size_t sl = 0;
	int rc = 0;
	if (k->type == TK_ED25519) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		if (!mc || EVP_DigestSignInit(mc, NULL, NULL, NULL, pk) != 1 ||
		    EVP_DigestSign(mc, NULL, &sl, msg, msg_len) != 1 || !(sig = malloc(sl)) ||
		    EVP_DigestSign(mc, sig, &sl, msg, msg_len) != 1)
			rc = verr_set(err, VERR_INTERNAL, "signing failed");
		EVP_MD_CTX_free(mc);
		if (!rc && k->derived) {
			uint8_t pub[32];
			size_t pl = sizeof(pub);
			if (EVP_PKEY_get_raw_public_key(pk, pub, &pl) == 1)
				*pub_out = b64_encode(pub, pl, false);
		}
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
		if (!pc || EVP_PKEY_sign_init(pc) != 1 ||
		    (tkey_is_rsa(k->type) && rsa_setup(pc, o, true)) ||
		    EVP_PKEY_sign(pc, NULL, &sl, msg, msg_len) != 1 || !(sig = malloc(sl)) ||
		    EVP_PKEY_sign(pc, sig, &sl, msg, msg_len) != 1)
			rc = verr_set(err, VERR_INVALID, "signing failed: %s",
				      tkey_is_rsa(k->type) ? "the input does not fit the key and hash (check salt_length, prehashed and hash_algorithm)" : "invalid input");
		EVP_PKEY_CTX_free(pc);
	}
	if (own)
		EVP_PKEY_free(pk);
	if (!rc && tkey_is_ecdsa(k->type) && o->jws) {
		/* DER -> fixed-width r|s */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
		size_t fb = ec_field_bytes(k->type);
		uint8_t *rs = calloc(1, 2 * fb);
		if (!es || !rs || BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, (int)fb) < 0 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + fb, (int)fb) < 0) {
			free(rs);
			rs = NULL;
			rc = verr_set(err, VERR_INTERNAL, "signature encoding failed");
		}
		ECDSA_SIG_free(es);
		free(sig);
		sig = rs;
		sl = 2 * fb;
	}
	if (!rc) {
		*out = transit__prefixed_b64(ver, sig, sl, o->jws, NULL);
		if (!*out)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	free(sig);
	if (rc) {
		free(*pub_out);
		*pub_out = NULL;
	}
	return rc;
}

/* base64url without padding -> standard with padding */
static char *url_to_std(const char *s)
{
	size_t l = strlen(s);
	char *o = malloc(l + 4);
	if (!o)
		return NULL;
	size_t i;
	for (i = 0; i < l; i++)
		o[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i] == '+' || s[i] == '/' ? '!' : s[i];
	while (i % 4)
		o[i++] = '=';
	o[i] = '\0';
	return o;
}

int transit__verify(bool *valid, const struct tkey *k, const char *sig, const uint8_t *ctx,
		    size_t ctx_len, const uint8_t *input, size_t in_len, const struct sign_opts *o,
		    struct verr *err)
{
	*valid = false;
	if (!tkey_supports_signing(k->type))
		return verr_set(err, VERR_INVALID, "key type %s does not support verification", tkey_type_name(k->type));
	int ver;
	const char *b64;
	const struct tkey_version *v;
	int rc = transit__versioned_input(k, sig, "signature", &ver, &b64, &v, err);
	if (rc)
		return rc;
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	char *std = o->jws ? url_to_std(b64) : NULL;
	if (b64_decode(&raw, &raw_len, std ? std : b64, false, NULL)) {
		free(std);
		return verr_set(err, VERR_INVALID, "invalid base64 signature value");
	}
	free(std);
	uint8_t dg[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	const uint8_t *msg;
	size_t msg_len;
	EVP_PKEY *pk = NULL;
	bool own = false;
	if (sign_message(dg, &dl, &msg, &msg_len, k, input, in_len, o)) {
		rc = verr_set(err, VERR_INTERNAL, "unsupported hash algorithm");
		goto out;
	}
	if (tkey_is_ecdsa(k->type) && o->jws) {
		size_t fb = ec_field_bytes(k->type);
		if (raw_len != 2 * fb)
			goto out; /* not a signature of this curve: invalid */
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(raw, (int)fb, NULL), *s = BN_bin2bn(raw + fb, (int)fb, NULL);
		unsigned char *der = NULL;
		int dlen = -1;
		if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
			r = s = NULL; /* transferred */
			dlen = i2d_ECDSA_SIG(es, &der);
		}
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		free(raw);
		raw = NULL;
		if (dlen <= 0) {
			rc = verr_set(err, VERR_INTERNAL, "signature decoding failed");
			goto out;
		}
		raw = malloc((size_t)dlen);
		if (raw)
			memcpy(raw, der, (size_t)dlen);
		raw_len = (size_t)dlen;
		OPENSSL_free(der);
		if (!raw) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	pk = sign_key(k, v, ctx, ctx_len, &own, err);
	if (!pk) {
		rc = err && err->code ? err->code : verr_set(err, VERR_INTERNAL, "failed to load the key");
		goto out;
	}
	if (k->type == TK_ED25519) {
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		*valid = mc && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, pk) == 1 &&
			 EVP_DigestVerify(mc, raw, raw_len, msg, msg_len) == 1;
		EVP_MD_CTX_free(mc);
	} else {
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pk, NULL);
		*valid = pc && EVP_PKEY_verify_init(pc) == 1 &&
			 !(tkey_is_rsa(k->type) && rsa_setup(pc, o, false)) &&
			 EVP_PKEY_verify(pc, raw, raw_len, msg, msg_len) == 1;
		EVP_PKEY_CTX_free(pc);
	}
	ERR_clear_error();
out:
	if (own)
		EVP_PKEY_free(pk);
	free(raw);
	return rc;
}

/* ---- export ---- */

static char *pem_private(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *out = NULL;
	if (b && PEM_write_bio_PrivateKey_traditional(b, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		if (n > 0)
			out = strndup(p, (size_t)n);
	}
	BIO_free(b);
	return out;
}

int transit__export_version(char **out, const struct tkey *k, const struct tkey_version *v,
			    const char *export_type, struct verr *err)
{
	*out = NULL;
	if (!strcmp(export_type, "hmac-key")) {
		*out = k->type == TK_HMAC ? b64_encode(v->key, v->key_len, false)
					  : b64_encode(v->hmac_key, TRANSIT_HMAC_KEY_LEN, false);
	} else if (!strcmp(export_type, "encryption-key")) {
		if (!tkey_supports_encryption(k->type))
			return verr_set(err, VERR_INVALID, "encryption not supported for the key");
		if (tkey_is_rsa(k->type)) {
			EVP_PKEY *pk = transit__pkey(k, v);
			*out = pk ? pem_private(pk) : NULL;
			EVP_PKEY_free(pk);
		} else
			*out = b64_encode(v->key, v->key_len, false);
	} else if (!strcmp(export_type, "signing-key")) {
		if (!tkey_supports_signing(k->type))
			return verr_set(err, VERR_INVALID, "signing not supported for the key");
		if (k->type == TK_ED25519) {
			*out = b64_encode(v->key, v->key_len, false);
		} else {
			EVP_PKEY *pk = transit__pkey(k, v);
			*out = pk ? pem_private(pk) : NULL;
			EVP_PKEY_free(pk);
		}
	} else if (!strcmp(export_type, "public-key")) {
		if (!v->public_key)
			return verr_set(err, VERR_INVALID, "public key not available for key type %s", tkey_type_name(k->type));
		*out = strdup(v->public_key);
	} else {
		return verr_set(err, VERR_INVALID, "invalid export type: %.64s", export_type);
	}
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "failed to encode the key");
}
