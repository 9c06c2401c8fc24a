/*
 * Unit tests for util/hmac256.c: agreement with OpenSSL's one-shot HMAC()
 * for every key length up to one block and inputs across block boundaries,
 * the two-part form against the concatenation, RFC 4231 test case 2,
 * refusal of keys longer than a block, and sharing between threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "util/hmac256.h"

static void test_util_hmac256__matches_openssl(void **state)
{
	(void)state;
	uint8_t key[HMAC256_KEY_MAX], data[300], want[32], got[32];
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	assert_int_equal(RAND_bytes(data, sizeof(data)), 1);
	for (size_t kl = 0; kl <= sizeof(key); kl++) {
		struct hmac256 h;
		assert_int_equal(hmac256_init(&h, key, kl), 0);
		assert_true(hmac256_ready(&h));
		for (size_t n = 0; n <= sizeof(data); n += kl % 7 + 1) {
			unsigned int wl = 0;
			assert_non_null(HMAC(EVP_sha256(), key, (int)kl, data, n, want, &wl));
			assert_true(hmac256(&h, data, n, got));
			assert_memory_equal(got, want, 32);
			/* every split of the input gives the same MAC */
			size_t cut = n / 3;
			assert_true(hmac256_two(&h, data, cut, data + cut, n - cut, got));
			assert_memory_equal(got, want, 32);
		}
		hmac256_free(&h);
		assert_false(hmac256_ready(&h));
	}
}

static void test_util_hmac256__rfc4231_case2_and_hex(void **state)
{
	(void)state;
	struct hmac256 h;
	assert_int_equal(hmac256_init(&h, (const uint8_t *)"Jefe", 4), 0);
	uint8_t mac[32];
	assert_true(hmac256_two(&h, "what do ya want ", 16, "for nothing?", 12, mac));
	char hex[65];
	hmac256_hex(mac, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	hmac256_free(&h);
}

static void test_util_hmac256__long_key_and_empty_refused(void **state)
{
	(void)state;
	uint8_t key[HMAC256_KEY_MAX + 1] = {0}, mac[32];
	struct hmac256 h;
	assert_int_equal(hmac256_init(&h, key, sizeof(key)), -1);
	assert_false(hmac256_ready(&h));
	memset(mac, 0xaa, sizeof(mac));
	assert_false(hmac256(&h, "x", 1, mac));
	for (size_t i = 0; i < sizeof(mac); i++)
		assert_int_equal(mac[i], 0);
	hmac256_free(&h); /* freeing an empty one is harmless */
}

struct shared {
	struct hmac256 h;
	uint8_t want[32];
	int bad;
};

static void *hammer(void *arg)
{
	struct shared *s = arg;
	uint8_t got[32];
	for (int i = 0; i < 20000; i++)
		if (!hmac256(&s->h, "token-value", 11, got) || memcmp(got, s->want, 32))
			__atomic_add_fetch(&s->bad, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void test_util_hmac256__shared_by_threads(void **state)
{
	(void)state;
	struct shared s = {0};
	uint8_t key[32];
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	assert_int_equal(hmac256_init(&s.h, key, sizeof(key)), 0);
	unsigned int wl = 0;
	assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)"token-value", 11,
			     s.want, &wl));
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(s.bad, 0);
	hmac256_free(&s.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_hmac256__matches_openssl),
		cmocka_unit_test(test_util_hmac256__rfc4231_case2_and_hex),
		cmocka_unit_test(test_util_hmac256__long_key_and_empty_refused),
		cmocka_unit_test(test_util_hmac256__shared_by_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
