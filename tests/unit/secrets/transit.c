/*
 * Unit tests for the transit engine (src/secrets/transit/) through its path
 * table and framework_handle, as the core dispatches: round trips of every
 * key type, the vault:vN: layout, batches in input order with per-item
 * errors, version limits, convergent encryption, derivation, deletion,
 * trim, backup/restore into another mount, and Vault's 400 messages.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "secrets/kv_helpers.h"
#include "secrets/transit/transit_int.h"

static const char *B64_HELLO = "aGVsbG8gd29ybGQ="; /* "hello world" */

static void tr_open(struct kvt *t)
{
	kvt_open(t, &transit_backend_ops, NULL);
}

/* POST (update) path with a body; returns the handler's code. */
static int post(struct kvt *t, const char *path, json_t *body)
{
	return kvt_do(t, LOP_UPDATE, path, body);
}

/* encrypt/:name is create-or-update: resolve like the core does */
static int encrypt(struct kvt *t, const char *name, json_t *body)
{
	char path[128];
	snprintf(path, sizeof(path), "encrypt/%s", name);
	return kvt_do(t, LOP_CREATE, path, body);
}

static char *encrypt_str(struct kvt *t, const char *name, const char *b64)
{
	assert_int_equal(encrypt(t, name, json_pack("{s:s}", "plaintext", b64)), 0);
	return strdup(kvt_str(t, "ciphertext"));
}

static void expect_decrypt(struct kvt *t, const char *name, const char *ct, const char *b64)
{
	char path[128];
	snprintf(path, sizeof(path), "decrypt/%s", name);
	int rc = post(t, path, json_pack("{s:s}", "ciphertext", ct));
	if (rc)
		print_error("decrypt: %s\n", t->err.msg);
	assert_int_equal(rc, 0);
	assert_string_equal(kvt_str(t, "plaintext"), b64);
}

static void test_secrets_transit__symmetric_round_trip(void **state)
{
	struct kvt t;
	tr_open(&t);
	const char *types[] = {"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "keys/k%zu", i);
		assert_int_equal(post(&t, path, json_pack("{s:s}", "type", types[i])), 0);
		assert_string_equal(kvt_str(&t, "type"), types[i]);
		snprintf(path, sizeof(path), "k%zu", i);
		char *ct = encrypt_str(&t, path, B64_HELLO);
		assert_int_equal(strncmp(ct, "vault:v1:", 9), 0);
		expect_decrypt(&t, path, ct, B64_HELLO);
		/* empty plaintext round-trips too */
		char *ct2 = encrypt_str(&t, path, "");
		expect_decrypt(&t, path, ct2, "");
		free(ct);
		free(ct2);
	}
	kvt_close(&t);
}

/* The AES-GCM layout is Vault's: base64(nonce 12 | ciphertext | tag 16),
 * decryptable with nothing but the exported key. */
static void test_secrets_transit__vault_layout(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/x", json_pack("{s:b}", "exportable", 1)), 0);
	char *ct = encrypt_str(&t, "x", B64_HELLO);
	assert_int_equal(kvt_do(&t, LOP_READ, "export/encryption-key/x/1", NULL), 0);
	uint8_t key[64], raw[256];
	int kl = EVP_DecodeBlock(key, (const unsigned char *)kvt_str(&t, "keys/1"), 44);
	assert_int_equal(kl, 33); /* 32 + the '=' padding byte */
	const char *b64 = ct + 9;
	int rl = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
	int pad = b64[strlen(b64) - 1] == '=' ? (b64[strlen(b64) - 2] == '=' ? 2 : 1) : 0;
	rl -= pad;
	assert_int_equal(rl, 12 + 11 + 16);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t pt[64];
	int n = 0, f = 0;
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw), 1);
	assert_int_equal(EVP_DecryptUpdate(c, pt, &n, raw + 12, 11), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, raw + 12 + 11), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, pt + n, &f), 1);
	EVP_CIPHER_CTX_free(c);
	assert_memory_equal(pt, "hello world", 11);
	free(ct);
	kvt_close(&t);
}

static void test_secrets_transit__upsert_and_read(void **state)
{
	struct kvt t;
	tr_open(&t);
	/* encrypt creates the key, as Vault's upsert */
	assert_int_equal(kvt_do(&t, LOP_READ, "keys/auto", NULL), 0);
	assert_null(t.resp.data); /* absent: the core answers 404 */
	char *ct = encrypt_str(&t, "auto", B64_HELLO);
	assert_int_equal(kvt_do(&t, LOP_READ, "keys/auto", NULL), 0);
	assert_string_equal(kvt_str(&t, "type"), "aes256-gcm96");
	assert_int_equal(kvt_int(&t, "latest_version"), 1);
	assert_true(json_is_integer(kvt_get(&t, "keys/1")));
	/* decrypt never creates a key */
	assert_int_equal(post(&t, "decrypt/nokey", json_pack("{s:s}", "ciphertext", ct)), VERR_INVALID);
	assert_string_equal(t.err.msg, "encryption key not found");
	/* creating an existing key warns */
	assert_int_equal(post(&t, "keys/auto", json_object()), 0);
	assert_non_null(t.resp.warnings);
	assert_int_equal(kvt_do(&t, LOP_LIST, "keys/", NULL), 0);
	assert_int_equal(json_array_size(kvt_get(&t, "keys")), 1);
	free(ct);
	kvt_close(&t);
}

static void test_secrets_transit__batch_order_and_errors(void **state)
{
	struct kvt t;
	tr_open(&t);
	json_t *items = json_array();
	for (int i = 0; i < 50; i++) {
		char ref[16];
		snprintf(ref, sizeof(ref), "r%d", i);
		/* every 7th item is not base64 */
		json_array_append_new(items, json_pack("{s:s,s:s}", "plaintext",
						      i % 7 == 3 ? "%%%" : B64_HELLO, "reference", ref));
	}
	assert_int_equal(encrypt(&t, "b", json_pack("{s:O}", "batch_input", items)), 0);
	assert_int_equal(t.resp.status, 400); /* some items failed */
	json_t *res = kvt_get(&t, "batch_results");
	assert_int_equal(json_array_size(res), 50);
	json_t *dec = json_array();
	for (int i = 0; i < 50; i++) {
		json_t *r = json_array_get(res, (size_t)i);
		char ref[16];
		snprintf(ref, sizeof(ref), "r%d", i);
		assert_string_equal(json_string_value(json_object_get(r, "reference")), ref);
		if (i % 7 == 3) {
			assert_string_equal(json_string_value(json_object_get(r, "error")),
					    "illegal base64 data at input byte 0");
			assert_null(json_object_get(r, "ciphertext"));
			json_array_append_new(dec, json_pack("{s:s}", "ciphertext", "vault:v1:"));
		} else {
			json_array_append_new(dec, json_pack("{s:O}", "ciphertext", json_object_get(r, "ciphertext")));
		}
	}
	json_decref(items);
	/* decrypt the batch back, in order */
	assert_int_equal(post(&t, "decrypt/b", json_pack("{s:o,s:i}", "batch_input", dec,
							 "partial_failure_response_code", 207)), 0);
	assert_int_equal(t.resp.status, 207);
	res = kvt_get(&t, "batch_results");
	for (int i = 0; i < 50; i++) {
		json_t *r = json_array_get(res, (size_t)i);
		if (i % 7 == 3)
			assert_non_null(json_object_get(r, "error"));
		else
			assert_string_equal(json_string_value(json_object_get(r, "plaintext")), B64_HELLO);
	}
	/* an all-good batch is a plain 200 */
	assert_int_equal(encrypt(&t, "b", json_pack("{s:[{s:s}]}", "batch_input", "plaintext", B64_HELLO)), 0);
	assert_int_equal(t.resp.status, 0);
	/* empty and oversize batches */
	assert_int_equal(encrypt(&t, "b", json_pack("{s:[]}", "batch_input")), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing batch input to process");
	json_t *big = json_array();
	for (int i = 0; i <= 100000; i++)
		json_array_append_new(big, json_pack("{s:s}", "plaintext", ""));
	assert_int_equal(encrypt(&t, "b", json_pack("{s:o}", "batch_input", big)), VERR_INVALID);
	assert_string_equal(t.err.msg, "batch_input has 100001 items; the maximum is 100000");
	kvt_close(&t);
}

static void test_secrets_transit__versions(void **state)
{
	struct kvt t;
	tr_open(&t);
	char *v1 = encrypt_str(&t, "v", B64_HELLO);
	assert_int_equal(post(&t, "keys/v/rotate", NULL), 0);
	assert_int_equal(kvt_int(&t, "latest_version"), 2);
	char *v2 = encrypt_str(&t, "v", B64_HELLO);
	assert_int_equal(strncmp(v2, "vault:v2:", 9), 0);
	expect_decrypt(&t, "v", v1, B64_HELLO);
	/* rewrap moves v1 data to v2 */
	assert_int_equal(post(&t, "rewrap/v", json_pack("{s:s}", "ciphertext", v1)), 0);
	assert_int_equal(strncmp(kvt_str(&t, "ciphertext"), "vault:v2:", 9), 0);
	/* encrypt with an explicit old version, a version too high, negative */
	assert_int_equal(encrypt(&t, "v", json_pack("{s:s,s:i}", "plaintext", B64_HELLO, "key_version", 1)), 0);
	assert_int_equal(kvt_int(&t, "key_version"), 1);
	assert_int_equal(encrypt(&t, "v", json_pack("{s:s,s:i}", "plaintext", B64_HELLO, "key_version", 3)), VERR_INVALID);
	assert_string_equal(t.err.msg, "requested version for encryption is higher than the latest key version");
	/* min_decryption_version blocks old ciphertexts */
	assert_int_equal(post(&t, "keys/v/config", json_pack("{s:i}", "min_decryption_version", 2)), 0);
	assert_int_equal(post(&t, "decrypt/v", json_pack("{s:s}", "ciphertext", v1)), VERR_INVALID);
	assert_string_equal(t.err.msg, "ciphertext or signature version is disallowed by policy (too old)");
	expect_decrypt(&t, "v", v2, B64_HELLO);
	/* min_encryption_version */
	assert_int_equal(post(&t, "keys/v/config", json_pack("{s:i}", "min_encryption_version", 2)), 0);
	assert_int_equal(encrypt(&t, "v", json_pack("{s:s,s:i}", "plaintext", B64_HELLO, "key_version", 1)), VERR_INVALID);
	assert_string_equal(t.err.msg, "requested version for encryption is less than the minimum encryption key version");
	assert_int_equal(post(&t, "keys/v/config", json_pack("{s:i}", "min_decryption_version", 5)), VERR_INVALID);
	assert_string_equal(t.err.msg, "cannot set min decryption version of 5, latest key version is 2");
	/* a ciphertext from the future */
	assert_int_equal(post(&t, "decrypt/v", json_pack("{s:s}", "ciphertext", "vault:v9:AAAA")), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid ciphertext: version is too new");
	/* trim removes v1 for good */
	assert_int_equal(post(&t, "keys/v/trim", json_pack("{s:i}", "min_available_version", 2)), 0);
	assert_int_equal(kvt_int(&t, "min_available_version"), 2);
	assert_null(kvt_get(&t, "keys/1"));
	assert_int_equal(post(&t, "keys/v/trim", json_pack("{s:i}", "min_available_version", 1)), VERR_INVALID);
	assert_string_equal(t.err.msg, "minimum available version cannot be decremented");
	/* the trimmed key still loads from storage after a restart */
	kvt_reinit(&t, NULL);
	expect_decrypt(&t, "v", v2, B64_HELLO);
	free(v1);
	free(v2);
	kvt_close(&t);
}

static void test_secrets_transit__bad_ciphertexts(void **state)
{
	struct kvt t;
	tr_open(&t);
	char *ct = encrypt_str(&t, "k", B64_HELLO);
	struct {
		const char *ct, *msg;
	} cases[] = {
		{"abc", "invalid ciphertext: no prefix"},
		{"vault:v1", "invalid ciphertext: wrong number of fields"},
		{"vault:vx:AAAA", "invalid ciphertext: version number could not be decoded"},
		{"vault:v1:@@@@", "invalid ciphertext: could not decode base64"},
		{"vault:v1:AAAA", "invalid ciphertext length"},
		{"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "cipher: message authentication failed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(post(&t, "decrypt/k", json_pack("{s:s}", "ciphertext", cases[i].ct)), VERR_INVALID);
		assert_string_equal(t.err.msg, cases[i].msg);
	}
	/* a flipped byte fails authentication */
	size_t l = strlen(ct);
	ct[l - 5] = ct[l - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(post(&t, "decrypt/k", json_pack("{s:s}", "ciphertext", ct)), VERR_INVALID);
	assert_string_equal(t.err.msg, "cipher: message authentication failed");
	assert_int_equal(encrypt(&t, "k", json_pack("{s:s}", "plaintext", "not base64!")), VERR_INVALID);
	assert_string_equal(t.err.msg, "illegal base64 data at input byte 3");
	assert_int_equal(encrypt(&t, "k", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing plaintext to encrypt");
	assert_int_equal(post(&t, "keys/bad", json_pack("{s:s}", "type", "aes512")), VERR_INVALID);
	assert_string_equal(t.err.msg, "unknown key type aes512");
	/* the wrong key type for the operation */
	assert_int_equal(post(&t, "keys/ed", json_pack("{s:s}", "type", "ed25519")), 0);
	assert_int_equal(post(&t, "encrypt/ed", json_pack("{s:s}", "plaintext", B64_HELLO)), VERR_INVALID);
	assert_string_equal(t.err.msg, "message encryption not supported for key type ed25519");
	assert_int_equal(post(&t, "sign/k", json_pack("{s:s}", "input", B64_HELLO)), VERR_INVALID);
	assert_string_equal(t.err.msg, "key type aes256-gcm96 does not support signing");
	free(ct);
	kvt_close(&t);
}

static void test_secrets_transit__aad(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(encrypt(&t, "a", json_pack("{s:s,s:s}", "plaintext", B64_HELLO, "associated_data", "aGRy")), 0);
	char *ct = strdup(kvt_str(&t, "ciphertext"));
	assert_int_equal(post(&t, "decrypt/a", json_pack("{s:s}", "ciphertext", ct)), VERR_INVALID);
	assert_int_equal(post(&t, "decrypt/a", json_pack("{s:s,s:s}", "ciphertext", ct, "associated_data", "aGRz")), VERR_INVALID);
	assert_int_equal(post(&t, "decrypt/a", json_pack("{s:s,s:s}", "ciphertext", ct, "associated_data", "aGRy")), 0);
	assert_string_equal(kvt_str(&t, "plaintext"), B64_HELLO);
	free(ct);
	kvt_close(&t);
}

static void test_secrets_transit__derived_convergent(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/c", json_pack("{s:b,s:b}", "derived", 1, "convergent_encryption", 1)), 0);
	assert_string_equal(kvt_str(&t, "kdf"), "hkdf_sha256");
	assert_int_equal(kvt_int(&t, "convergent_encryption_version"), 3);
	const char *ctx1 = "dGVuYW50LTE=", *ctx2 = "dGVuYW50LTI=";
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:s,s:s}", "plaintext", B64_HELLO, "context", ctx1)), 0);
	char *a = strdup(kvt_str(&t, "ciphertext"));
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:s,s:s}", "plaintext", B64_HELLO, "context", ctx1)), 0);
	assert_string_equal(kvt_str(&t, "ciphertext"), a); /* deterministic */
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:s,s:s}", "plaintext", B64_HELLO, "context", ctx2)), 0);
	assert_string_not_equal(kvt_str(&t, "ciphertext"), a);
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:s,s:s}", "plaintext", "aGVsbG8=", "context", ctx1)), 0);
	assert_string_not_equal(kvt_str(&t, "ciphertext"), a);
	/* the context is part of the key */
	assert_int_equal(post(&t, "decrypt/c", json_pack("{s:s,s:s}", "ciphertext", a, "context", ctx2)), VERR_INVALID);
	assert_int_equal(post(&t, "decrypt/c", json_pack("{s:s,s:s}", "ciphertext", a, "context", ctx1)), 0);
	assert_string_equal(kvt_str(&t, "plaintext"), B64_HELLO);
	assert_int_equal(post(&t, "decrypt/c", json_pack("{s:s}", "ciphertext", a)), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key");
	/* a user nonce is refused for version-3 convergent keys */
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:s,s:s,s:s}", "plaintext", B64_HELLO, "context", ctx1, "nonce", "AAAAAAAAAAAAAAAA")), VERR_INVALID);
	assert_string_equal(t.err.msg, "nonce provided when not allowed");
	/* batch: context in all items or none */
	assert_int_equal(post(&t, "encrypt/c", json_pack("{s:[{s:s,s:s},{s:s}]}", "batch_input", "plaintext", B64_HELLO, "context", ctx1, "plaintext", B64_HELLO)), VERR_INVALID);
	assert_string_equal(t.err.msg, "context should be set either in all the request blocks or in none");
	/* convergent without derivation */
	assert_int_equal(post(&t, "keys/c2", json_pack("{s:b}", "convergent_encryption", 1)), VERR_INVALID);
	assert_string_equal(t.err.msg, "convergent encryption requires derivation to be enabled");
	/* upsert with context makes a derived key */
	assert_int_equal(encrypt(&t, "up", json_pack("{s:s,s:s}", "plaintext", B64_HELLO, "context", ctx1)), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "keys/up", NULL), 0);
	assert_true(json_is_true(kvt_get(&t, "derived")));
	free(a);
	kvt_close(&t);
}

static void sign_verify(struct kvt *t, const char *type, const char *extra_path, json_t *opts)
{
	char path[128];
	assert_int_equal(post(t, "keys/s", json_pack("{s:s}", "type", type)), 0);
	assert_true(json_is_string(kvt_get(t, "keys/1/public_key")));
	json_t *b = json_deep_copy(opts);
	json_object_set_new(b, "input", json_string(B64_HELLO));
	snprintf(path, sizeof(path), "sign/s%s", extra_path);
	int rc = post(t, path, b);
	if (rc)
		print_error("sign %s: %s\n", type, t->err.msg);
	assert_int_equal(rc, 0);
	char *sig = strdup(kvt_str(t, "signature"));
	assert_int_equal(strncmp(sig, "vault:v1:", 9), 0);
	snprintf(path, sizeof(path), "verify/s%s", extra_path);
	b = json_deep_copy(opts);
	json_object_set_new(b, "input", json_string(B64_HELLO));
	json_object_set_new(b, "signature", json_string(sig));
	assert_int_equal(post(t, path, b), 0);
	assert_true(json_is_true(kvt_get(t, "valid")));
	/* another input does not verify */
	b = json_deep_copy(opts);
	json_object_set_new(b, "input", json_string("aGVsbG8="));
	json_object_set_new(b, "signature", json_string(sig));
	assert_int_equal(post(t, path, b), 0);
	assert_true(json_is_false(kvt_get(t, "valid")));
	free(sig);
	assert_int_equal(post(t, "keys/s/config", json_pack("{s:b}", "deletion_allowed", 1)), 0);
	assert_int_equal(kvt_do(t, LOP_DELETE, "keys/s", NULL), 0);
	json_decref(opts);
}

static void test_secrets_transit__signatures(void **state)
{
	struct kvt t;
	tr_open(&t);
	sign_verify(&t, "ed25519", "", json_object());
	sign_verify(&t, "ecdsa-p256", "", json_object());
	sign_verify(&t, "ecdsa-p256", "/sha2-384", json_pack("{s:s}", "marshaling_algorithm", "jws"));
	sign_verify(&t, "ecdsa-p384", "", json_pack("{s:s}", "hash_algorithm", "sha2-384"));
	sign_verify(&t, "ecdsa-p521", "/sha2-512", json_object());
	sign_verify(&t, "rsa-2048", "", json_object());
	sign_verify(&t, "rsa-2048", "", json_pack("{s:s,s:s}", "signature_algorithm", "pkcs1v15", "hash_algorithm", "sha2-512"));
	sign_verify(&t, "rsa-3072", "", json_pack("{s:s}", "salt_length", "hash"));
	sign_verify(&t, "rsa-4096", "/sha3-256", json_object());
	/* jws: r|s, base64url, 64 bytes for P-256 */
	assert_int_equal(post(&t, "keys/j", json_pack("{s:s}", "type", "ecdsa-p256")), 0);
	assert_int_equal(post(&t, "sign/j", json_pack("{s:s,s:s}", "input", B64_HELLO, "marshaling_algorithm", "jws")), 0);
	const char *sig = kvt_str(&t, "signature") + 9;
	assert_int_equal(strlen(sig), 86);
	assert_null(strchr(sig, '='));
	assert_int_equal(post(&t, "sign/j", json_pack("{s:s,s:s}", "input", B64_HELLO, "marshaling_algorithm", "der")), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid marshaling type \"der\"");
	assert_int_equal(post(&t, "sign/j", json_pack("{s:s,s:s}", "input", B64_HELLO, "hash_algorithm", "md5")), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid hash algorithm \"md5\"");
	/* batch signing keeps order */
	assert_int_equal(post(&t, "sign/j", json_pack("{s:[{s:s},{s:s},{s:s}]}", "batch_input", "input", B64_HELLO, "input", "***", "input", "aGVsbG8=")), 0);
	json_t *res = kvt_get(&t, "batch_results");
	assert_int_equal(json_array_size(res), 3);
	assert_non_null(json_object_get(json_array_get(res, 0), "signature"));
	assert_non_null(json_object_get(json_array_get(res, 1), "error"));
	assert_non_null(json_object_get(json_array_get(res, 2), "signature"));
	kvt_close(&t);
}

/* One cipher context serves a whole batch (transit_aead): items with other
 * versions, a failed tag in the middle, and derived keys with a context
 * per item must each get their own key. */
static void test_secrets_transit__batch_keys_per_item(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/mv", NULL), 0);
	assert_int_equal(post(&t, "keys/mv/rotate", NULL), 0);
	assert_int_equal(post(&t, "keys/mv/rotate", NULL), 0);
	const int vers[] = {1, 3, 3, 2, 1, 0};
	json_t *items = json_array();
	for (size_t i = 0; i < 6; i++)
		json_array_append_new(items, json_pack("{s:s,s:i}", "plaintext", B64_HELLO,
						      "key_version", vers[i]));
	assert_int_equal(encrypt(&t, "mv", json_pack("{s:o}", "batch_input", items)), 0);
	json_t *res = kvt_get(&t, "batch_results");
	json_t *dec = json_array();
	for (size_t i = 0; i < 6; i++) {
		json_t *r = json_array_get(res, i);
		int want = vers[i] ? vers[i] : 3;
		assert_int_equal(json_integer_value(json_object_get(r, "key_version")), want);
		char *ct = strdup(json_string_value(json_object_get(r, "ciphertext")));
		char pre[16];
		snprintf(pre, sizeof(pre), "vault:v%d:", want);
		assert_int_equal(strncmp(ct, pre, strlen(pre)), 0);
		if (i == 2) /* tamper with the nonce: the tag check fails */
			ct[10] = ct[10] == 'A' ? 'B' : 'A';
		json_array_append_new(dec, json_pack("{s:s}", "ciphertext", ct));
		free(ct);
	}
	assert_int_equal(post(&t, "decrypt/mv", json_pack("{s:o,s:i}", "batch_input", dec,
							  "partial_failure_response_code", 207)), 0);
	assert_int_equal(t.resp.status, 207);
	res = kvt_get(&t, "batch_results");
	for (size_t i = 0; i < 6; i++) {
		json_t *r = json_array_get(res, i);
		if (i == 2)
			assert_string_equal(json_string_value(json_object_get(r, "error")),
					    "cipher: message authentication failed");
		else
			assert_string_equal(json_string_value(json_object_get(r, "plaintext")), B64_HELLO);
	}
	/* derived: a key per context, also inside one batch */
	const char *c1 = "Y3R4LW9uZQ==", *c2 = "Y3R4LXR3bw=="; /* ctx-one, ctx-two */
	assert_int_equal(encrypt(&t, "dv", json_pack("{s:[{s:s,s:s},{s:s,s:s}]}", "batch_input",
						      "plaintext", B64_HELLO, "context", c1,
						      "plaintext", B64_HELLO, "context", c2)), 0);
	res = kvt_get(&t, "batch_results");
	char *d1 = strdup(json_string_value(json_object_get(json_array_get(res, 0), "ciphertext")));
	char *d2 = strdup(json_string_value(json_object_get(json_array_get(res, 1), "ciphertext")));
	assert_int_equal(post(&t, "decrypt/dv", json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}",
							  "batch_input", "ciphertext", d1, "context", c1,
							  "ciphertext", d2, "context", c1,
							  "ciphertext", d2, "context", c2)), 0);
	res = kvt_get(&t, "batch_results");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "plaintext")), B64_HELLO);
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "error")),
			    "cipher: message authentication failed");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 2), "plaintext")), B64_HELLO);
	free(d1);
	free(d2);
	kvt_close(&t);
}

/* Plaintexts larger than the per-thread scratch (16 KiB) take a one-off
 * buffer; sizes going up and down reuse or grow it. */
static void test_secrets_transit__plaintext_sizes(void **state)
{
	struct kvt t;
	tr_open(&t);
	const size_t sizes[] = {1024, 5000, 16000, 17000, 70000, 1, 1024, 0};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *raw = malloc(n + 1);
		for (size_t j = 0; j < n; j++)
			raw[j] = (uint8_t)(j * 131 + i);
		char *b = b64_encode(raw, n, false);
		char *ct = encrypt_str(&t, "sz", b);
		expect_decrypt(&t, "sz", ct, b);
		free(ct);
		free(b);
		free(raw);
	}
	kvt_close(&t);
}

/* The parsed signing key is kept with the cached version; a forced restore
 * of other key material must not sign or verify with the old one. */
static void test_secrets_transit__signing_key_cache(void **state)
{
	struct kvt a, b;
	tr_open(&a);
	tr_open(&b);
	json_t *opts = json_pack("{s:s,s:b,s:b}", "type", "ecdsa-p256", "exportable", 1,
				 "allow_plaintext_backup", 1);
	assert_int_equal(post(&a, "keys/sx", json_deep_copy(opts)), 0);
	assert_int_equal(post(&b, "keys/sx", opts), 0);
	assert_int_equal(post(&a, "sign/sx", json_pack("{s:s}", "input", B64_HELLO)), 0);
	char *sig_a = strdup(kvt_str(&a, "signature"));
	/* the cached key signs again and verifies what it signed */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(post(&a, "verify/sx", json_pack("{s:s,s:s}", "input", B64_HELLO,
								 "signature", sig_a)), 0);
		assert_true(json_is_true(kvt_get(&a, "valid")));
	}
	assert_int_equal(kvt_do(&b, LOP_READ, "backup/sx", NULL), 0);
	char *backup = strdup(kvt_str(&b, "backup"));
	assert_int_equal(post(&a, "restore", json_pack("{s:s,s:b}", "backup", backup, "force", 1)), 0);
	assert_int_equal(post(&a, "verify/sx", json_pack("{s:s,s:s}", "input", B64_HELLO,
							 "signature", sig_a)), 0);
	assert_true(json_is_false(kvt_get(&a, "valid")));
	assert_int_equal(post(&a, "sign/sx", json_pack("{s:s}", "input", B64_HELLO)), 0);
	char *sig_b = strdup(kvt_str(&a, "signature"));
	assert_int_equal(post(&b, "verify/sx", json_pack("{s:s,s:s}", "input", B64_HELLO,
							 "signature", sig_b)), 0);
	assert_true(json_is_true(kvt_get(&b, "valid")));
	/* rotate + trim: the old version's cached key goes with it */
	assert_int_equal(post(&a, "keys/sx/rotate", NULL), 0);
	assert_int_equal(post(&a, "keys/sx/config", json_pack("{s:i,s:i}", "min_decryption_version", 2,
							      "min_encryption_version", 2)), 0);
	assert_int_equal(post(&a, "keys/sx/trim", json_pack("{s:i}", "min_available_version", 2)), 0);
	assert_int_equal(post(&a, "sign/sx", json_pack("{s:s,s:i}", "input", B64_HELLO, "key_version", 1)),
			 VERR_INVALID);
	assert_int_equal(post(&a, "sign/sx", json_pack("{s:s}", "input", B64_HELLO)), 0);
	assert_int_equal(strncmp(kvt_str(&a, "signature"), "vault:v2:", 9), 0);
	free(sig_a);
	free(sig_b);
	free(backup);
	kvt_close(&a);
	kvt_close(&b);
}

static void test_secrets_transit__hmac(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/h", json_pack("{s:s,s:b}", "type", "hmac", "exportable", 1)), 0);
	assert_int_equal(post(&t, "hmac/h/sha2-512", json_pack("{s:s}", "input", B64_HELLO)), 0);
	char *mac = strdup(kvt_str(&t, "hmac"));
	assert_int_equal(post(&t, "verify/h/sha2-512", json_pack("{s:s,s:s}", "input", B64_HELLO, "hmac", mac)), 0);
	assert_true(json_is_true(kvt_get(&t, "valid")));
	assert_int_equal(post(&t, "verify/h", json_pack("{s:s,s:s}", "input", B64_HELLO, "hmac", mac)), 0);
	assert_true(json_is_false(kvt_get(&t, "valid"))); /* other algorithm */
	/* the value is HMAC-SHA512 under the exported key */
	assert_int_equal(kvt_do(&t, LOP_READ, "export/hmac-key/h/latest", NULL), 0);
	uint8_t key[64], md[64], want[128];
	int kl = EVP_DecodeBlock(key, (const unsigned char *)kvt_str(&t, "keys/1"), 44) - 1;
	unsigned ml = 0;
	HMAC(EVP_sha512(), key, kl, (const unsigned char *)"hello world", 11, md, &ml);
	EVP_EncodeBlock(want, md, (int)ml);
	assert_string_equal(mac + 9, (char *)want);
	assert_int_equal(post(&t, "verify/h", json_pack("{s:s,s:s,s:s}", "input", B64_HELLO, "hmac", mac, "signature", mac)), VERR_INVALID);
	assert_string_equal(t.err.msg, "provide one of 'signature' or 'hmac'");
	assert_int_equal(post(&t, "hmac/h", json_pack("{s:[{s:s},{s:s}]}", "batch_input", "input", "%%", "input", B64_HELLO)), 0);
	json_t *r = kvt_get(&t, "batch_results");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "error")),
			    "unable to decode input as base64: illegal base64 data at input byte 0");
	assert_non_null(json_object_get(json_array_get(r, 1), "hmac"));
	free(mac);
	kvt_close(&t);
}

static void test_secrets_transit__delete_and_export_gates(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/d", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_DELETE, "keys/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "error deleting policy d: deletion is not allowed for this key");
	assert_int_equal(kvt_do(&t, LOP_READ, "export/encryption-key/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "private key material is not exportable");
	assert_int_equal(kvt_do(&t, LOP_READ, "backup/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "exporting is disallowed on the policy");
	assert_int_equal(post(&t, "keys/d/config", json_pack("{s:b}", "exportable", 1)), 0);
	assert_int_equal(post(&t, "keys/d/config", json_pack("{s:b}", "exportable", 0)), VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_READ, "backup/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "plaintext backup is disallowed on the policy");
	assert_int_equal(kvt_do(&t, LOP_READ, "export/bogus-key/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid export type: bogus-key");
	assert_int_equal(kvt_do(&t, LOP_READ, "export/encryption-key/d/7", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "version does not exist or cannot be found");
	assert_int_equal(post(&t, "keys/d/config", json_pack("{s:b}", "deletion_allowed", 1)), 0);
	assert_int_equal(kvt_do(&t, LOP_DELETE, "keys/d", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_DELETE, "keys/d", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "error deleting policy d: could not delete key; not found");
	assert_int_equal(post(&t, "keys/p", json_pack("{s:s}", "auto_rotate_period", "10m")), VERR_INVALID);
	assert_string_equal(t.err.msg, "auto rotate period must be 0 to disable or at least an hour");
	kvt_close(&t);
}

static void test_secrets_transit__backup_restore(void **state)
{
	struct kvt a, b;
	tr_open(&a);
	tr_open(&b);
	assert_int_equal(post(&a, "keys/bk", json_pack("{s:b,s:b}", "exportable", 1, "allow_plaintext_backup", 1)), 0);
	char *c1 = encrypt_str(&a, "bk", B64_HELLO);
	assert_int_equal(post(&a, "keys/bk/rotate", NULL), 0);
	char *c2 = encrypt_str(&a, "bk", B64_HELLO);
	assert_int_equal(kvt_do(&a, LOP_READ, "backup/bk", NULL), 0);
	char *backup = strdup(kvt_str(&a, "backup"));
	/* into another mount, under its own name and a new one */
	assert_int_equal(post(&b, "restore", json_pack("{s:s}", "backup", backup)), 0);
	expect_decrypt(&b, "bk", c1, B64_HELLO);
	expect_decrypt(&b, "bk", c2, B64_HELLO);
	assert_int_equal(post(&b, "restore/other", json_pack("{s:s}", "backup", backup)), 0);
	expect_decrypt(&b, "other", c2, B64_HELLO);
	assert_int_equal(post(&b, "restore", json_pack("{s:s}", "backup", backup)), VERR_INVALID);
	assert_string_equal(b.err.msg, "key \"bk\" already exists");
	assert_int_equal(post(&b, "restore", json_pack("{s:s,s:b}", "backup", backup, "force", 1)), 0);
	assert_int_equal(post(&b, "restore", json_pack("{s:s}", "backup", "AAAA")), VERR_INVALID);
	assert_int_equal(post(&b, "restore", json_object()), VERR_INVALID);
	assert_string_equal(b.err.msg, "'backup' must be supplied");
	assert_int_equal(kvt_do(&b, LOP_READ, "keys/bk", NULL), 0);
	assert_int_equal(kvt_int(&b, "latest_version"), 2);
	assert_non_null(kvt_get(&b, "restore_info"));
	free(backup);
	free(c1);
	free(c2);
	kvt_close(&a);
	kvt_close(&b);
}

static void test_secrets_transit__cache_eviction(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "cache-config", json_pack("{s:i}", "size", 5)), VERR_INVALID);
	assert_string_equal(t.err.msg, "size must be 0 or a value greater or equal to 10");
	assert_int_equal(post(&t, "cache-config", json_pack("{s:i}", "size", 10)), 0);
	char *cts[25];
	for (int i = 0; i < 25; i++) {
		char n[16];
		snprintf(n, sizeof(n), "c%d", i);
		cts[i] = encrypt_str(&t, n, B64_HELLO);
	}
	struct transit *tr = t.inst;
	assert_true(tr->nkeys <= 10);
	for (int i = 0; i < 25; i++) {
		char n[16];
		snprintf(n, sizeof(n), "c%d", i);
		expect_decrypt(&t, n, cts[i], B64_HELLO); /* evicted keys reload */
		free(cts[i]);
	}
	assert_int_equal(kvt_do(&t, LOP_READ, "cache-config", NULL), 0);
	assert_int_equal(kvt_int(&t, "size"), 10);
	kvt_close(&t);
}

static void test_secrets_transit__datakey_random_hash(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/dk", NULL), 0);
	assert_int_equal(post(&t, "datakey/plaintext/dk", json_pack("{s:i}", "bits", 512)), 0);
	char *pt = strdup(kvt_str(&t, "plaintext"));
	char *ct = strdup(kvt_str(&t, "ciphertext"));
	assert_int_equal(strlen(pt), 88);
	expect_decrypt(&t, "dk", ct, pt);
	assert_int_equal(post(&t, "datakey/wrapped/dk", NULL), 0);
	assert_null(kvt_get(&t, "plaintext"));
	assert_int_equal(post(&t, "datakey/other/dk", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "Invalid path, must be 'plaintext' or 'wrapped'");
	assert_int_equal(post(&t, "datakey/plaintext/dk", json_pack("{s:i}", "bits", 100)), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid bit length");
	assert_int_equal(post(&t, "random/24", json_pack("{s:s}", "format", "hex")), 0);
	assert_int_equal(strlen(kvt_str(&t, "random_bytes")), 48);
	assert_int_equal(post(&t, "random", NULL), 0);
	assert_int_equal(strlen(kvt_str(&t, "random_bytes")), 44);
	assert_int_equal(post(&t, "random/all/8", NULL), 0);
	assert_int_equal(post(&t, "random", json_pack("{s:i}", "bytes", 200000)), VERR_INVALID);
	assert_string_equal(t.err.msg, "'bytes' should be less than 131072");
	assert_int_equal(post(&t, "hash", json_pack("{s:s}", "input", B64_HELLO)), 0);
	assert_string_equal(kvt_str(&t, "sum"), "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
	assert_int_equal(post(&t, "hash/sha2-224", json_pack("{s:s,s:s}", "input", B64_HELLO, "format", "base64")), 0);
	assert_int_equal(post(&t, "hash/md5", json_pack("{s:s}", "input", B64_HELLO)), VERR_INVALID);
	assert_string_equal(t.err.msg, "unsupported algorithm md5");
	free(pt);
	free(ct);
	kvt_close(&t);
}

static void test_secrets_transit__auto_rotate(void **state)
{
	struct kvt t;
	tr_open(&t);
	assert_int_equal(post(&t, "keys/ar", json_pack("{s:s}", "auto_rotate_period", "1h")), 0);
	assert_int_equal(kvt_int(&t, "auto_rotate_period"), 3600);
	struct verr e = {0};
	assert_int_equal(transit_backend_ops.periodic(t.inst, &e), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "keys/ar", NULL), 0);
	assert_int_equal(kvt_int(&t, "latest_version"), 1); /* not due yet */
	/* age the latest version by two hours */
	struct tkey *k = NULL;
	assert_int_equal(transit__key_get(t.inst, "ar", &k, &e), 0);
	k->versions[0].created -= 7200;
	transit__key_release(t.inst, k);
	assert_int_equal(transit_backend_ops.periodic(t.inst, &e), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "keys/ar", NULL), 0);
	assert_int_equal(kvt_int(&t, "latest_version"), 2);
	kvt_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_transit__symmetric_round_trip),
		cmocka_unit_test(test_secrets_transit__vault_layout),
		cmocka_unit_test(test_secrets_transit__upsert_and_read),
		cmocka_unit_test(test_secrets_transit__batch_order_and_errors),
		cmocka_unit_test(test_secrets_transit__versions),
		cmocka_unit_test(test_secrets_transit__bad_ciphertexts),
		cmocka_unit_test(test_secrets_transit__aad),
		cmocka_unit_test(test_secrets_transit__derived_convergent),
		cmocka_unit_test(test_secrets_transit__signatures),
		cmocka_unit_test(test_secrets_transit__batch_keys_per_item),
		cmocka_unit_test(test_secrets_transit__plaintext_sizes),
		cmocka_unit_test(test_secrets_transit__signing_key_cache),
		cmocka_unit_test(test_secrets_transit__hmac),
		cmocka_unit_test(test_secrets_transit__delete_and_export_gates),
		cmocka_unit_test(test_secrets_transit__backup_restore),
		cmocka_unit_test(test_secrets_transit__cache_eviction),
		cmocka_unit_test(test_secrets_transit__datakey_random_hash),
		cmocka_unit_test(test_secrets_transit__auto_rotate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
