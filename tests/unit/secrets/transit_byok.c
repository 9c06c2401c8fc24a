/*
 * Unit tests for transit BYOK (src/secrets/transit/byok.c) through the path
 * table, as the core dispatches: the wrapping key (made once, stored,
 * reloaded after a re-init or an invalidate), keys/:name/import and
 * import_version with the client side done here with OpenSSL the way
 * Vault's BYOK documentation describes (RSA-OAEP of an ephemeral AES-256
 * key || AES-KWP of the target key), the imported key proven the same by
 * opening the engine's ciphertext and verifying its signatures locally,
 * rotation gated by allow_rotation, and Vault's 400 messages.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "secrets/kv_helpers.h"
#include "secrets/transit/transit_int.h"

static const char *B64_HELLO = "aGVsbG8gd29ybGQ="; /* "hello world" */

static int post(struct kvt *t, const char *path, json_t *body)
{
	return kvt_do(t, LOP_UPDATE, path, body);
}

static char *wrapping_pem(struct kvt *t)
{
	assert_int_equal(kvt_do(t, LOP_READ, "wrapping_key", NULL), 0);
	return strdup(kvt_str(t, "public_key"));
}

/* The client side: base64(OAEP(md, eph) || KWP(eph, target)). */
static char *wrap_with(const char *pem, const uint8_t *target, size_t len, const EVP_MD *md)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(pub);
	uint8_t eph[32], out[512 + 4096 + 16];
	assert_int_equal(RAND_bytes(eph, sizeof(eph)), 1);
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pub, NULL);
	size_t n = 512;
	assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(pc, md), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md), 1);
	assert_int_equal(EVP_PKEY_encrypt(pc, out, &n, eph, sizeof(eph)), 1);
	assert_int_equal(n, 512);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(pub);
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	int l = 0, f = 0;
	assert_true(len <= 4096);
	assert_int_equal(EVP_EncryptInit_ex2(cx, EVP_aes_256_wrap_pad(), eph, NULL, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(cx, out + 512, &l, target, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(cx, out + 512 + l, &f), 1);
	EVP_CIPHER_CTX_free(cx);
	return b64_encode(out, 512 + (size_t)(l + f), false);
}

static char *wrap(const char *pem, const uint8_t *target, size_t len)
{
	return wrap_with(pem, target, len, EVP_sha256());
}

static int import(struct kvt *t, const char *name, const char *type, char *ct, json_t *extra)
{
	char path[128];
	snprintf(path, sizeof(path), "keys/%s/import", name);
	json_t *body = extra ? extra : json_object();
	json_object_set_new(body, "type", json_string(type));
	json_object_set_new(body, "ciphertext", json_string(ct));
	free(ct);
	return post(t, path, body);
}

/* Open an engine AES-GCM ciphertext with the key we hold. */
static void open_locally(const char *ct, int ver, const uint8_t *key, const char *want)
{
	char pre[16];
	snprintf(pre, sizeof(pre), "vault:v%d:", ver);
	assert_int_equal(strncmp(ct, pre, strlen(pre)), 0);
	uint8_t *raw = NULL;
	size_t rl = 0;
	assert_int_equal(b64_decode(&raw, &rl, ct + strlen(pre), false, NULL), 0);
	assert_true(rl >= 28);
	uint8_t pt[256];
	int n = 0, f = 0;
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_DecryptInit_ex2(cx, EVP_aes_256_gcm(), key, raw, NULL), 1);
	assert_int_equal(EVP_DecryptUpdate(cx, pt, &n, raw + 12, (int)(rl - 28)), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_SET_TAG, 16, raw + rl - 16), 1);
	assert_int_equal(EVP_DecryptFinal_ex(cx, pt + n, &f), 1);
	EVP_CIPHER_CTX_free(cx);
	assert_int_equal((size_t)(n + f), strlen(want));
	assert_memory_equal(pt, want, strlen(want));
	free(raw);
}

static char *encrypt_hello(struct kvt *t, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "encrypt/%s", name);
	assert_int_equal(kvt_do(t, LOP_UPDATE, path, json_pack("{s:s}", "plaintext", B64_HELLO)), 0);
	return strdup(kvt_str(t, "ciphertext"));
}

static int setup(void **state)
{
	struct kvt *t = calloc(1, sizeof(*t));
	kvt_open(t, &transit_backend_ops, NULL);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	kvt_close(*state);
	free(*state);
	return 0;
}

static void test_secrets_transit_byok__wrapping_key_made_once_and_stored(void **state)
{
	struct kvt *t = *state;
	char *a = wrapping_pem(t), *b = wrapping_pem(t);
	assert_string_equal(a, b);
	BIO *bio = BIO_new_mem_buf(a, -1);
	EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
	assert_int_equal(EVP_PKEY_get_bits(pk), 4096);
	EVP_PKEY_free(pk);
	/* stored below the mount's view: a new instance (remount, unseal)
	 * and an invalidate both read the same key back */
	kvt_reinit(t, NULL);
	char *c = wrapping_pem(t);
	assert_string_equal(a, c);
	transit_backend_ops.invalidate(t->inst, "wrapping_key");
	assert_null(((struct transit *)t->inst)->wrap_der);
	char *d = wrapping_pem(t);
	assert_string_equal(a, d);
	assert_non_null(((struct transit *)t->inst)->wrap_der);
	free(a);
	free(b);
	free(c);
	free(d);
}

static void test_secrets_transit_byok__aes_import_is_the_same_key(void **state)
{
	struct kvt *t = *state;
	char *pem = wrapping_pem(t);
	uint8_t k1[32], k2[32];
	RAND_bytes(k1, sizeof(k1));
	RAND_bytes(k2, sizeof(k2));
	assert_int_equal(import(t, "a", "aes256-gcm96", wrap(pem, k1, 32), NULL), 0);
	assert_null(t->resp.data); /* 204, as Vault */
	assert_int_equal(kvt_do(t, LOP_READ, "keys/a", NULL), 0);
	assert_true(json_is_true(kvt_get(t, "imported_key")));
	assert_true(json_is_false(kvt_get(t, "imported_key_allow_rotation")));
	char *ct = encrypt_hello(t, "a");
	open_locally(ct, 1, k1, "hello world");
	free(ct);
	/* import_version: SHA-384 in the OAEP layer this time */
	assert_int_equal(post(t, "keys/a/import_version",
			      json_pack("{s:s,s:s}", "ciphertext", "", "hash_function", "SHA-384")),
			 VERR_INVALID);
	assert_string_equal(t->err.msg, "one of the following fields, ciphertext xor public_key, has to be set");
	char *w = wrap_with(pem, k2, 32, EVP_sha384());
	assert_int_equal(post(t, "keys/a/import_version",
			      json_pack("{s:s,s:s}", "ciphertext", w, "hash_function", "sha384")), 0);
	free(w);
	ct = encrypt_hello(t, "a");
	open_locally(ct, 2, k2, "hello world");
	free(ct);
	/* a version that exists already has its key */
	w = wrap(pem, k2, 32);
	assert_int_equal(post(t, "keys/a/import_version", json_pack("{s:s,s:i}", "ciphertext", w, "version", 1)), VERR_INVALID);
	assert_string_equal(t->err.msg, "key version 1 already has its private key; omit version to import a new version");
	free(w);
	/* no allow_rotation: rotate refused with Vault's text */
	assert_int_equal(post(t, "keys/a/rotate", NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "imported key a does not allow rotation within Vault");
	/* the name is taken now */
	assert_int_equal(import(t, "a", "aes256-gcm96", wrap(pem, k1, 32), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, TRANSIT_IMPORT_EXISTS);
	free(pem);
}

static void test_secrets_transit_byok__allow_rotation(void **state)
{
	struct kvt *t = *state;
	char *pem = wrapping_pem(t);
	uint8_t k[32];
	RAND_bytes(k, sizeof(k));
	assert_int_equal(import(t, "r", "chacha20-poly1305", wrap(pem, k, 32),
				json_pack("{s:b,s:s}", "allow_rotation", 1, "auto_rotate_period", "24h")), 0);
	assert_int_equal(kvt_do(t, LOP_READ, "keys/r", NULL), 0);
	assert_true(json_is_true(kvt_get(t, "imported_key_allow_rotation")));
	assert_int_equal(kvt_int(t, "auto_rotate_period"), 86400);
	assert_int_equal(post(t, "keys/r/rotate", NULL), 0);
	assert_int_equal(kvt_int(t, "latest_version"), 2);
	assert_true(json_is_false(kvt_get(t, "imported_key")));
	/* rotated here: no more imports (Vault's rule) */
	assert_int_equal(post(t, "keys/r/import_version", json_pack("{s:s}", "ciphertext", "x")), VERR_INVALID);
	assert_string_equal(t->err.msg, "the import_version endpoint can only be used with an imported key");
	free(pem);
}

static void test_secrets_transit_byok__bad_input(void **state)
{
	struct kvt *t = *state;
	char *pem = wrapping_pem(t);
	uint8_t k[64];
	RAND_bytes(k, sizeof(k));
	assert_int_equal(import(t, "b", "aes256-gcm96", wrap(pem, k, 16), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid key size 16 bytes for key type aes256-gcm96");
	assert_int_equal(import(t, "b", "hmac", wrap(pem, k, 16), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid key size 16 bytes for key type hmac");
	assert_int_equal(import(t, "b", "aes256-gcm96", wrap(pem, k, 32),
				json_pack("{s:s}", "hash_function", "MD5")), VERR_INVALID);
	assert_string_equal(t->err.msg, "unknown hash function: MD5");
	/* OAEP with SHA-1 declared as SHA-256 */
	assert_int_equal(import(t, "b", "aes256-gcm96", wrap_with(pem, k, 32, EVP_sha1()), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "failed to decrypt the ephemeral AES key with the wrapping key: crypto/rsa: decryption error");
	assert_int_equal(import(t, "b", "aes256-gcm96", strdup("AAAA"), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "provided ciphertext is too short");
	assert_int_equal(import(t, "b", "aes256-gcm96", strdup("A*AA"), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "failed to base64-decode ciphertext: illegal base64 data at input byte 1");
	/* the KWP layer tampered with */
	char *w = wrap(pem, k, 32);
	size_t wl = strlen(w);
	w[wl - 3] = w[wl - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(import(t, "b", "aes256-gcm96", w, NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "failed to unwrap the key: AES-KWP integrity check failed (wrong ephemeral key or damaged ciphertext)");
	assert_int_equal(import(t, "b", "rsa-2048", wrap(pem, k, 32), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "error parsing asymmetric key: not a PKCS#8 (PrivateKeyInfo) DER private key");
	assert_int_equal(import(t, "b", "des", wrap(pem, k, 32), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "unknown key type: des");
	assert_int_equal(import(t, "b", "aes256-gcm96", wrap(pem, k, 32),
				json_pack("{s:b,s:b}", "derived", 1, "convergent_encryption", 1)), VERR_INVALID);
	assert_string_equal(t->err.msg, "import cannot be used on keys with convergent encryption enabled");
	assert_int_equal(import(t, "b", "rsa-2048", wrap(pem, k, 32), json_pack("{s:b}", "derived", 1)), VERR_INVALID);
	assert_string_equal(t->err.msg, "key derivation and convergent encryption not supported for keys of type rsa-2048");
	assert_int_equal(import(t, "b", "aes256-gcm96", wrap(pem, k, 32),
				json_pack("{s:s}", "auto_rotate_period", "2h")), VERR_INVALID);
	assert_string_equal(t->err.msg, "allow_rotation must be set to true if auto-rotation is enabled");
	assert_int_equal(post(t, "keys/nope/import_version", json_pack("{s:s}", "ciphertext", "x")), VERR_INVALID);
	assert_string_equal(t->err.msg, "no key found with name nope; to import a new key, use the import/ endpoint");
	assert_int_equal(post(t, "keys/gen", NULL), 0);
	assert_int_equal(post(t, "keys/gen/import_version", json_pack("{s:s}", "ciphertext", "x")), VERR_INVALID);
	assert_string_equal(t->err.msg, "the import_version endpoint can only be used with an imported key");
	/* nothing was created */
	assert_int_equal(kvt_do(t, LOP_READ, "keys/b", NULL), 0);
	assert_null(t->resp.data);
	free(pem);
}

static uint8_t *pkcs8_der(EVP_PKEY *pk, size_t *len)
{
	unsigned char *der = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	assert_non_null(p8);
	int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

/* Import pk as `type`, sign with the engine, verify with pk locally. */
static void import_and_verify(struct kvt *t, const char *pem, const char *name, const char *type,
			      EVP_PKEY *pk)
{
	size_t dl = 0;
	uint8_t *der = pkcs8_der(pk, &dl);
	assert_int_equal(import(t, name, type, wrap(pem, der, dl), NULL), 0);
	OPENSSL_clear_free(der, dl);
	char path[128];
	snprintf(path, sizeof(path), "sign/%s", name);
	assert_int_equal(post(t, path, json_pack("{s:s}", "input", B64_HELLO)), 0);
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(b64_decode(&sig, &sl, kvt_str(t, "signature") + 9, false, NULL), 0);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	bool ed = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519;
	assert_int_equal(EVP_DigestVerifyInit(mc, &pc, ed ? NULL : EVP_sha256(), NULL, pk), 1);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_AUTO);
	}
	assert_int_equal(EVP_DigestVerify(mc, sig, sl, (const uint8_t *)"hello world", 11), 1);
	EVP_MD_CTX_free(mc);
	free(sig);
}

static void test_secrets_transit_byok__asymmetric(void **state)
{
	struct kvt *t = *state;
	char *pem = wrapping_pem(t);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *r2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	import_and_verify(t, pem, "ed", "ed25519", ed);
	import_and_verify(t, pem, "p256", "ecdsa-p256", p256);
	import_and_verify(t, pem, "p384", "ecdsa-p384", p384);
	import_and_verify(t, pem, "r2048", "rsa-2048", r2048);
	/* the served ed25519 public key is ours */
	uint8_t raw[32];
	size_t rl = sizeof(raw);
	EVP_PKEY_get_raw_public_key(ed, raw, &rl);
	char *rb = b64_encode(raw, rl, false);
	assert_int_equal(kvt_do(t, LOP_READ, "keys/ed", NULL), 0);
	assert_string_equal(kvt_str(t, "keys/1/public_key"), rb);
	free(rb);
	/* mismatches */
	size_t dl = 0;
	uint8_t *der = pkcs8_der(p384, &dl);
	assert_int_equal(import(t, "x", "ecdsa-p256", wrap(pem, der, dl), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid curve: expected P-256, got P-384");
	assert_int_equal(import(t, "x", "ed25519", wrap(pem, der, dl), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid key type: expected ed25519, got an EC key");
	OPENSSL_clear_free(der, dl);
	der = pkcs8_der(r2048, &dl);
	assert_int_equal(import(t, "x", "rsa-3072", wrap(pem, der, dl), NULL), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid key size: expected 384 bytes, got 256 bytes");
	/* import_version of a P-256 key into the RSA key: refused, unchanged */
	OPENSSL_clear_free(der, dl);
	der = pkcs8_der(p256, &dl);
	char *w = wrap(pem, der, dl);
	assert_int_equal(post(t, "keys/r2048/import_version", json_pack("{s:s}", "ciphertext", w)), VERR_INVALID);
	assert_string_equal(t->err.msg, "invalid key type: expected rsa-2048, got an EC key");
	free(w);
	OPENSSL_clear_free(der, dl);
	assert_int_equal(kvt_do(t, LOP_READ, "keys/r2048", NULL), 0);
	assert_int_equal(kvt_int(t, "latest_version"), 1);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(r2048);
	free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_transit_byok__wrapping_key_made_once_and_stored),
		cmocka_unit_test(test_secrets_transit_byok__aes_import_is_the_same_key),
		cmocka_unit_test(test_secrets_transit_byok__allow_rotation),
		cmocka_unit_test(test_secrets_transit_byok__bad_input),
		cmocka_unit_test(test_secrets_transit_byok__asymmetric),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
