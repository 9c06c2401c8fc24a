/*
 * tests/unit/core/barrier.c - the encryption barrier (src/core/barrier.c)
 * over the in-memory backend: what lands in storage, what tampering does,
 * sealing, rotation, persistence of the keyring, root-key rekeying.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "core/barrier.h"
#include "util/aead.h"
#include "physical/physical.h"
#include "util/secmem.h"

struct fixture {
	struct physical *under;
	struct barrier *b;
	struct physical *p; /* the shim */
	uint8_t *root;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct verr err = {0};
	assert_int_equal(physical_inmem_new(&f->under, NULL, &err), 0);
	assert_int_equal(barrier_new(&f->b, f->under, &err), 0);
	f->p = barrier_physical(f->b);
	assert_int_equal(barrier_generate_key(&f->root, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	barrier_free(f->b);
	physical_close(f->under);
	secmem_free(f->root, BARRIER_KEY_LEN);
	free(f);
	return 0;
}

static void init_unseal(struct fixture *f)
{
	struct verr err = {0};
	assert_int_equal(barrier_initialize(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_true(barrier_sealed(f->b));
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_false(barrier_sealed(f->b));
}

static void put_str(struct physical *p, const char *key, const char *val)
{
	struct verr err = {0};
	assert_int_equal(physical_put(p, key, (const uint8_t *)val, strlen(val), &err), 0);
}

static void expect_str(struct physical *p, const char *key, const char *val)
{
	uint8_t *out = NULL;
	size_t len = 0;
	struct verr err = {0};
	assert_int_equal(physical_get(p, key, &out, &len, &err), 0);
	assert_non_null(out);
	assert_int_equal(len, strlen(val));
	assert_memory_equal(out, val, len);
	free(out);
}

/* Read through the barrier; expect a decryption failure naming the key. */
static void expect_decrypt_error(struct physical *p, const char *key, const char *detail)
{
	uint8_t *out = NULL;
	size_t len = 0;
	struct verr err = {0};
	assert_int_equal(physical_get(p, key, &out, &len, &err), VERR_INTERNAL);
	assert_null(out);
	char want[256];
	snprintf(want, sizeof(want), "failed to decrypt entry at %s: ", key);
	assert_non_null(strstr(err.msg, want));
	if (detail)
		assert_non_null(strstr(err.msg, detail));
}

static uint8_t *raw_get(struct physical *under, const char *key, size_t *len)
{
	uint8_t *out = NULL;
	assert_int_equal(physical_get(under, key, &out, len, NULL), 0);
	assert_non_null(out);
	return out;
}

static uint32_t term_of(const uint8_t *ct)
{
	return (uint32_t)ct[0] << 24 | (uint32_t)ct[1] << 16 | (uint32_t)ct[2] << 8 | ct[3];
}

static void test_core_barrier__round_trip(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	put_str(f->p, "secret/foo", "{\"password\":\"hunter2\"}");
	expect_str(f->p, "secret/foo", "{\"password\":\"hunter2\"}");
	/* empty values survive too */
	assert_int_equal(physical_put(f->p, "secret/empty", (const uint8_t *)"", 0, &err), 0);
	uint8_t *out = NULL;
	size_t len = 99;
	assert_int_equal(physical_get(f->p, "secret/empty", &out, &len, &err), 0);
	assert_non_null(out);
	assert_int_equal(len, 0);
	free(out);
	/* missing key: no error, no value */
	assert_int_equal(physical_get(f->p, "secret/missing", &out, &len, &err), 0);
	assert_null(out);
	assert_int_equal(physical_delete(f->p, "secret/foo", &err), 0);
	assert_int_equal(physical_get(f->p, "secret/foo", &out, &len, &err), 0);
	assert_null(out);
}

static void test_core_barrier__ciphertext_in_storage(void **state)
{
	struct fixture *f = *state;
	init_unseal(f);
	const char *val = "the-plaintext-value-0123456789";
	put_str(f->p, "a", val);
	size_t len1 = 0, len2 = 0;
	uint8_t *ct1 = raw_get(f->under, "a", &len1);
	assert_int_equal(len1, strlen(val) + BARRIER_OVERHEAD);
	assert_int_equal(term_of(ct1), 1);
	assert_int_equal(ct1[4], BARRIER_VERSION);
	assert_null(memmem(ct1, len1, "plaintext", 9));
	/* same value again: a fresh nonce, so different bytes */
	put_str(f->p, "a", val);
	uint8_t *ct2 = raw_get(f->under, "a", &len2);
	assert_int_equal(len1, len2);
	assert_memory_not_equal(ct1 + 5, ct2 + 5, 12);
	assert_memory_not_equal(ct1 + 17, ct2 + 17, len1 - 17);
	free(ct1);
	free(ct2);
	/* the keyring itself is encrypted too: no key bytes in the clear */
	uint8_t *root = NULL;
	size_t rlen = 0;
	assert_int_equal(barrier_root_key(f->b, &root, &rlen, NULL), 0);
	assert_memory_equal(root, f->root, BARRIER_KEY_LEN);
	size_t klen = 0;
	uint8_t *kr = raw_get(f->under, BARRIER_KEYRING_PATH, &klen);
	assert_int_equal(term_of(kr), 0);
	assert_null(memmem(kr, klen, root, rlen));
	assert_null(memmem(kr, klen, "CFKR", 4));
	secmem_free(root, rlen);
	free(kr);
}

static void test_core_barrier__tamper_every_byte(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	put_str(f->p, "secret/x", "value");
	size_t len = 0;
	uint8_t *ct = raw_get(f->under, "secret/x", &len);
	uint8_t *bad = malloc(len);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(bad, ct, len);
			bad[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(physical_put(f->under, "secret/x", bad, len, &err), 0);
			expect_decrypt_error(f->p, "secret/x", NULL);
		}
	}
	/* the original still decrypts */
	assert_int_equal(physical_put(f->under, "secret/x", ct, len, &err), 0);
	expect_str(f->p, "secret/x", "value");
	free(bad);
	free(ct);
}

static void test_core_barrier__moved_entry_rejected(void **state)
{
	struct fixture *f = *state;
	init_unseal(f);
	put_str(f->p, "secret/alice", "alice's secret");
	size_t len = 0;
	uint8_t *ct = raw_get(f->under, "secret/alice", &len);
	assert_int_equal(physical_put(f->under, "secret/mallory", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "secret/mallory", "message authentication failed");
	/* a one-character difference in the path is enough */
	assert_int_equal(physical_put(f->under, "secret/alicf", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "secret/alicf", NULL);
	free(ct);
}

static void test_core_barrier__wrong_term_and_version(void **state)
{
	struct fixture *f = *state;
	init_unseal(f);
	put_str(f->p, "k", "v");
	size_t len = 0;
	uint8_t *ct = raw_get(f->under, "k", &len);
	ct[3] = 7; /* term 7: unknown */
	assert_int_equal(physical_put(f->under, "k", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "k", "unknown term 7");
	ct[3] = 0; /* term 0: the root key's, never valid for entries */
	assert_int_equal(physical_put(f->under, "k", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "k", "unknown term 0");
	ct[3] = 1;
	ct[4] = 0x01; /* Vault's old no-AAD version: not accepted */
	assert_int_equal(physical_put(f->under, "k", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "k", "unsupported version 1");
	ct[4] = BARRIER_VERSION;
	/* after a rotation term 2 exists, but this entry is not term 2's */
	assert_int_equal(barrier_rotate(f->b, NULL, NULL), 0);
	ct[3] = 2;
	assert_int_equal(physical_put(f->under, "k", ct, len, NULL), 0);
	expect_decrypt_error(f->p, "k", "message authentication failed");
	free(ct);
}

static void test_core_barrier__truncated_entry(void **state)
{
	struct fixture *f = *state;
	init_unseal(f);
	put_str(f->p, "k", "some value");
	size_t len = 0;
	uint8_t *ct = raw_get(f->under, "k", &len);
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(physical_put(f->under, "k", ct, n, NULL), 0);
		expect_decrypt_error(f->p, "k", n < BARRIER_OVERHEAD ? "entry too short" : NULL);
	}
	free(ct);
}

static void test_core_barrier__wrong_root_key(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	assert_int_equal(barrier_initialize(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	uint8_t wrong[BARRIER_KEY_LEN];
	memcpy(wrong, f->root, sizeof(wrong));
	wrong[31] ^= 0x80;
	assert_int_equal(barrier_unseal(f->b, wrong, sizeof(wrong), &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid key");
	assert_true(barrier_sealed(f->b));
	assert_true(barrier__keys_wiped(f->b));
	assert_int_equal(barrier_unseal(f->b, f->root, 16, &err), VERR_INVALID);
	/* once unsealed, unseal with the right key is a no-op, a wrong one fails */
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_int_equal(barrier_unseal(f->b, wrong, sizeof(wrong), &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid key");
	assert_false(barrier_sealed(f->b));
}

static void expect_sealed(struct fixture *f)
{
	struct verr err = {0};
	uint8_t *out = NULL;
	size_t len = 0;
	char **keys = NULL;
	size_t n = 0;
	assert_true(barrier_sealed(f->b));
	assert_int_equal(physical_get(f->p, "a", &out, &len, &err), VERR_SEALED);
	assert_string_equal(err.msg, "Vault is sealed");
	assert_null(out);
	assert_int_equal(physical_put(f->p, "a", (const uint8_t *)"x", 1, &err), VERR_SEALED);
	assert_int_equal(physical_delete(f->p, "a", &err), VERR_SEALED);
	assert_int_equal(physical_list(f->p, "", &keys, &n, &err), VERR_SEALED);
	assert_null(keys);
	assert_int_equal(barrier_rotate(f->b, NULL, &err), VERR_SEALED);
	assert_int_equal(barrier_key_status(f->b, NULL, NULL, NULL, &err), VERR_SEALED);
	assert_int_equal(barrier_root_key(f->b, &out, &len, &err), VERR_SEALED);
	assert_null(out);
	assert_int_equal(barrier_rekey_root(f->b, f->root, BARRIER_KEY_LEN, &err), VERR_SEALED);
	assert_true(barrier__keys_wiped(f->b));
}

static void test_core_barrier__sealed_refuses(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	bool inited = true;
	assert_int_equal(barrier_initialized(f->b, &inited, &err), 0);
	assert_false(inited);
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), VERR_UNINIT);
	expect_sealed(f);
	init_unseal(f);
	assert_int_equal(barrier_initialized(f->b, &inited, &err), 0);
	assert_true(inited);
	assert_int_equal(barrier_initialize(f->b, f->root, BARRIER_KEY_LEN, &err), VERR_INVALID);
	assert_string_equal(err.msg, "Vault is already initialized");
	put_str(f->p, "a", "b");
	assert_int_equal(barrier_rotate(f->b, NULL, &err), 0);
	assert_false(barrier__keys_wiped(f->b));
	barrier_seal(f->b);
	expect_sealed(f);
	barrier_seal(f->b); /* idempotent */
	/* and the data is still there after unsealing again */
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	expect_str(f->p, "a", "b");
}

static void test_core_barrier__rotate(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	uint32_t term = 0;
	int64_t installed = 0;
	uint64_t enc = 99;
	init_unseal(f);
	assert_int_equal(barrier_key_status(f->b, &term, &installed, &enc, &err), 0);
	assert_int_equal(term, 1);
	assert_true(installed > 1600000000);
	assert_int_equal(enc, 0);
	put_str(f->p, "old", "written under term 1");
	put_str(f->p, "old2", "also term 1");
	assert_int_equal(barrier_key_status(f->b, &term, NULL, &enc, &err), 0);
	assert_int_equal(enc, 2);

	assert_int_equal(barrier_rotate(f->b, &term, &err), 0);
	assert_int_equal(term, 2);
	assert_int_equal(barrier_key_status(f->b, &term, NULL, &enc, &err), 0);
	assert_int_equal(term, 2);
	assert_int_equal(enc, 0);
	put_str(f->p, "new", "written under term 2");
	assert_int_equal(barrier_rotate(f->b, &term, &err), 0);
	assert_int_equal(term, 3);
	put_str(f->p, "newer", "written under term 3");

	expect_str(f->p, "old", "written under term 1");
	expect_str(f->p, "new", "written under term 2");
	expect_str(f->p, "newer", "written under term 3");
	size_t len;
	uint8_t *ct = raw_get(f->under, "old", &len);
	assert_int_equal(term_of(ct), 1);
	free(ct);
	ct = raw_get(f->under, "new", &len);
	assert_int_equal(term_of(ct), 2);
	free(ct);
	ct = raw_get(f->under, "newer", &len);
	assert_int_equal(term_of(ct), 3);
	free(ct);
	/* rewriting an old entry moves it to the active term */
	put_str(f->p, "old", "rewritten");
	ct = raw_get(f->under, "old", &len);
	assert_int_equal(term_of(ct), 3);
	free(ct);
	expect_str(f->p, "old", "rewritten");
	/* the rotation was persisted: a fresh barrier sees all terms */
	struct barrier *b2 = NULL;
	assert_int_equal(barrier_new(&b2, f->under, &err), 0);
	assert_int_equal(barrier_unseal(b2, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_int_equal(barrier_key_status(b2, &term, NULL, NULL, &err), 0);
	assert_int_equal(term, 3);
	expect_str(barrier_physical(b2), "old2", "also term 1");
	barrier_free(b2);
}

static void test_core_barrier__keyring_persists(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	put_str(f->p, "sys/token/abc", "token-entry");
	assert_int_equal(barrier_rotate(f->b, NULL, &err), 0);
	put_str(f->p, "logical/uuid/data", "kv-entry");
	barrier_free(f->b);
	assert_int_equal(barrier_new(&f->b, f->under, &err), 0);
	f->p = barrier_physical(f->b);
	bool inited = false;
	assert_int_equal(barrier_initialized(f->b, &inited, &err), 0);
	assert_true(inited);
	expect_sealed(f);
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), 0);
	expect_str(f->p, "sys/token/abc", "token-entry");
	expect_str(f->p, "logical/uuid/data", "kv-entry");
}

static void test_core_barrier__list_passes_through(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	put_str(f->p, "secret/a", "1");
	put_str(f->p, "secret/b/c", "2");
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(physical_list(f->p, "secret/", &keys, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "a");
	assert_string_equal(keys[1], "b/");
	physical_list_free(keys, n);
	/* key names are stored in the clear, as in Vault */
	uint8_t *raw = NULL;
	size_t len = 0;
	assert_int_equal(physical_get(f->under, "secret/b/c", &raw, &len, &err), 0);
	assert_non_null(raw);
	free(raw);
	assert_int_equal(physical_list(f->p, "core/", &keys, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "keyring");
	physical_list_free(keys, n);
}

static void test_core_barrier__keyring_path_reserved(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	uint8_t *out = NULL;
	size_t len = 0;
	init_unseal(f);
	assert_int_equal(physical_put(f->p, BARRIER_KEYRING_PATH, (const uint8_t *)"x", 1, &err),
			 VERR_DENIED);
	assert_int_equal(physical_get(f->p, BARRIER_KEYRING_PATH, &out, &len, &err), VERR_DENIED);
	assert_int_equal(physical_delete(f->p, BARRIER_KEYRING_PATH, &err), VERR_DENIED);
	bool inited = false;
	assert_int_equal(barrier_initialized(f->b, &inited, &err), 0);
	assert_true(inited);
}

static void test_core_barrier__rekey_root(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	put_str(f->p, "k", "v");
	uint8_t *new_root = NULL;
	assert_int_equal(barrier_generate_key(&new_root, &err), 0);
	assert_int_equal(barrier_rekey_root(f->b, new_root, BARRIER_KEY_LEN, &err), 0);
	uint8_t *got = NULL;
	size_t len = 0;
	assert_int_equal(barrier_root_key(f->b, &got, &len, &err), 0);
	assert_memory_equal(got, new_root, BARRIER_KEY_LEN);
	secmem_free(got, len);
	barrier_seal(f->b);
	assert_int_equal(barrier_unseal(f->b, f->root, BARRIER_KEY_LEN, &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid key");
	assert_int_equal(barrier_unseal(f->b, new_root, BARRIER_KEY_LEN, &err), 0);
	expect_str(f->p, "k", "v");
	secmem_free(new_root, BARRIER_KEY_LEN);
}

static void test_core_barrier__blobs(void **state)
{
	(void)state;
	struct verr err = {0};
	uint8_t *kek = NULL, *other = NULL, *ct = NULL, *pt = NULL;
	size_t ct_len = 0, pt_len = 0;
	assert_int_equal(barrier_generate_key(&kek, &err), 0);
	assert_int_equal(barrier_generate_key(&other, &err), 0);
	const char *msg = "root key bytes";
	assert_int_equal(aead_blob_seal(&ct, &ct_len, kek, "core/root", (const uint8_t *)msg,
					   strlen(msg), &err), 0);
	assert_int_equal(ct_len, strlen(msg) + BARRIER_OVERHEAD);
	assert_int_equal(term_of(ct), 0);
	assert_int_equal(aead_blob_open(&pt, &pt_len, kek, "core/root", ct, ct_len, &err), 0);
	assert_int_equal(pt_len, strlen(msg));
	assert_memory_equal(pt, msg, pt_len);
	secmem_free(pt, pt_len);
	assert_int_equal(aead_blob_open(&pt, &pt_len, other, "core/root", ct, ct_len, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, "invalid key");
	assert_null(pt);
	assert_int_equal(aead_blob_open(&pt, &pt_len, kek, "core/other", ct, ct_len, &err),
			 VERR_INVALID);
	assert_int_equal(aead_blob_open(&pt, &pt_len, kek, "core/root", ct, 10, &err),
			 VERR_INTERNAL);
	free(ct);
	secmem_free(kek, BARRIER_KEY_LEN);
	secmem_free(other, BARRIER_KEY_LEN);
}

/* Two barriers over one storage stand in for an active node and a standby:
 * the standby picks up a term the active node installed on first use. */
static void test_core_barrier__standby_picks_up_new_term(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	struct barrier *standby = NULL;
	assert_int_equal(barrier_new(&standby, f->under, &err), 0);
	assert_int_equal(barrier_unseal(standby, f->root, BARRIER_KEY_LEN, &err), 0);
	assert_int_equal(barrier_rotate(f->b, NULL, &err), 0);
	put_str(f->p, "fresh", "term 2 entry");
	expect_str(barrier_physical(standby), "fresh", "term 2 entry");
	uint32_t term = 0;
	assert_int_equal(barrier_key_status(standby, &term, NULL, NULL, &err), 0);
	assert_int_equal(term, 2);
	barrier_free(standby);
}

static void test_core_barrier__entry_size_limit(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	init_unseal(f);
	size_t max = f->p->max_entry_size;
	assert_int_equal(max, PHYSICAL_DEFAULT_MAX_ENTRY - BARRIER_OVERHEAD);
	uint8_t *big = calloc(1, max + 1);
	assert_int_equal(physical_put(f->p, "big", big, max + 1, &err), VERR_TOO_LARGE);
	assert_int_equal(physical_put(f->p, "big", big, max, &err), 0);
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(physical_get(f->p, "big", &out, &len, &err), 0);
	assert_int_equal(len, max);
	assert_memory_equal(out, big, max);
	free(out);
	free(big);
}

static void test_core_barrier__keyring_image_checks(void **state)
{
	(void)state;
	uint8_t img[4 + 1 + 1 + 32 + 4 + 44] = {0};
	memcpy(img, "CFKR", 4);
	img[4] = 1;
	img[5] = 32;
	img[41] = 1;   /* one term */
	img[42 + 3] = 1; /* term 1 */
	assert_int_equal(barrier__keyring_check(img, sizeof(img), NULL), 0);
	struct verr err = {0};
	assert_int_equal(barrier__keyring_check(img, sizeof(img) - 1, &err), VERR_INTERNAL);
	img[42 + 3] = 0; /* term 0 is reserved */
	assert_int_equal(barrier__keyring_check(img, sizeof(img), &err), VERR_INTERNAL);
	img[42 + 3] = 1;
	img[41] = 2; /* claims two terms */
	assert_int_equal(barrier__keyring_check(img, sizeof(img), &err), VERR_INTERNAL);
	img[41] = 0xff;
	img[38] = 0xff; /* huge count must not overflow */
	assert_int_equal(barrier__keyring_check(img, sizeof(img), &err), VERR_INTERNAL);
}

struct worker {
	struct physical *p;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char key[64], val[64];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "w%d/%d", w->id, i % 17);
		snprintf(val, sizeof(val), "value-%d-%d", w->id, i);
		struct verr err = {0};
		if (physical_put(w->p, key, (const uint8_t *)val, strlen(val), &err) != 0) {
			w->failures++;
			continue;
		}
		uint8_t *out = NULL;
		size_t len = 0;
		if (physical_get(w->p, key, &out, &len, &err) != 0 || !out ||
		    len != strlen(val) || memcmp(out, val, len) != 0)
			w->failures++;
		free(out);
	}
	return NULL;
}

static void test_core_barrier__concurrent_requests_and_rotation(void **state)
{
	struct fixture *f = *state;
	init_unseal(f);
	enum { NT = 6 };
	pthread_t th[NT];
	struct worker w[NT];
	for (int i = 0; i < NT; i++) {
		w[i] = (struct worker){.p = f->p, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int r = 0; r < 20; r++)
		assert_int_equal(barrier_rotate(f->b, NULL, NULL), 0);
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	uint32_t term = 0;
	assert_int_equal(barrier_key_status(f->b, &term, NULL, NULL, NULL), 0);
	assert_int_equal(term, 21);
}

int main(void)
{
	secmem_set_mlock(0);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_core_barrier__round_trip),
		T(test_core_barrier__ciphertext_in_storage),
		T(test_core_barrier__tamper_every_byte),
		T(test_core_barrier__moved_entry_rejected),
		T(test_core_barrier__wrong_term_and_version),
		T(test_core_barrier__truncated_entry),
		T(test_core_barrier__wrong_root_key),
		T(test_core_barrier__sealed_refuses),
		T(test_core_barrier__rotate),
		T(test_core_barrier__keyring_persists),
		T(test_core_barrier__list_passes_through),
		T(test_core_barrier__keyring_path_reserved),
		T(test_core_barrier__rekey_root),
		T(test_core_barrier__blobs),
		T(test_core_barrier__standby_picks_up_new_term),
		T(test_core_barrier__entry_size_limit),
		T(test_core_barrier__keyring_image_checks),
		T(test_core_barrier__concurrent_requests_and_rotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
