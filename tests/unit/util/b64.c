/*
 * Unit tests for util/b64.c: round trips against OpenSSL's encoder for every
 * length up to 300, the fast four-symbol path and the careful loop agreeing
 * (CR/LF inside the input), Go's error offsets, and the _to variants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/b64.h"

static void test_util_b64__matches_openssl(void **state)
{
	(void)state;
	uint8_t in[300];
	char ref[420];
	assert_int_equal(RAND_bytes(in, sizeof(in)), 1);
	for (size_t n = 0; n <= sizeof(in); n++) {
		int rl = EVP_EncodeBlock((unsigned char *)ref, in, (int)n);
		char *s = b64_encode(in, n, false);
		assert_non_null(s);
		assert_string_equal(s, ref);
		assert_int_equal(strlen(s), b64_encoded_len(n, false));
		assert_int_equal((size_t)rl, b64_encoded_len(n, false));
		uint8_t *d = NULL;
		size_t dl = 0;
		assert_int_equal(b64_decode(&d, &dl, s, n % 2, NULL), 0);
		assert_int_equal(dl, n);
		assert_memory_equal(d, in, n);
		assert_int_equal(d[dl], 0);
		b64_free(d, dl, n % 2);
		free(s);
		/* URL-safe without padding */
		char *u = b64_encode(in, n, true);
		assert_non_null(u);
		assert_int_equal(strlen(u), b64_encoded_len(n, true));
		assert_null(strchr(u, '='));
		assert_null(strchr(u, '+'));
		assert_null(strchr(u, '/'));
		free(u);
	}
}

static void test_util_b64__crlf_and_errors(void **state)
{
	(void)state;
	/* CR/LF anywhere are skipped, also inside a quantum (the careful loop) */
	uint8_t *d = NULL;
	size_t dl = 0;
	assert_int_equal(b64_decode(&d, &dl, "aGVs\r\nbG8gd29y\nbGQ=", false, NULL), 0);
	assert_int_equal(dl, 11);
	assert_memory_equal(d, "hello world", 11);
	free(d);
	assert_int_equal(b64_decode(&d, &dl, "aGVsbG8g\nd29ybGQh", false, NULL), 0);
	assert_int_equal(dl, 12);
	assert_memory_equal(d, "hello world!", 12);
	free(d);
	assert_int_equal(b64_decode(&d, &dl, "aG\nVsbG8=", false, NULL), 0);
	assert_int_equal(dl, 5);
	free(d);
	/* Go's offsets: the bad byte, after fast-path quanta too */
	struct {
		const char *in;
		const char *msg;
	} bad[] = {
		{"@@@@", "illegal base64 data at input byte 0"},
		{"aGVsbG8gd29y@GQ=", "illegal base64 data at input byte 12"},
		{"aGVsbG8gd2@y", "illegal base64 data at input byte 10"},
		{"aGVsbG8", "illegal base64 data at input byte 4"},
		{"aGVsbG8gd29ybGQ", "illegal base64 data at input byte 12"},
		{"aGVs=G8=", "illegal base64 data at input byte 4"},
		{"aGVsbG8==", "illegal base64 data at input byte 8"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct verr e = {0};
		d = NULL;
		assert_int_equal(b64_decode(&d, &dl, bad[i].in, i % 2, &e), VERR_INVALID);
		assert_null(d);
		assert_string_equal(e.msg, bad[i].msg);
	}
}

static void test_util_b64__to_variants(void **state)
{
	(void)state;
	const uint8_t in[] = "any carnal pleasure.";
	char enc[64];
	size_t n = b64_encode_to(enc, in, 20, false);
	assert_int_equal(n, 28);
	assert_string_equal(enc, "YW55IGNhcm5hbCBwbGVhc3VyZS4=");
	/* not NUL-terminated input: only inlen bytes are read */
	char src[40];
	memcpy(src, "YW55IGNhcm5hbCBwbGVhc3VyZS4=XXXX", 32);
	uint8_t out[64];
	size_t ol = 0;
	assert_true(b64_decoded_max(28) + 1 <= sizeof(out));
	assert_int_equal(b64_decode_to(out, &ol, src, 28, NULL), 0);
	assert_int_equal(ol, 20);
	assert_memory_equal(out, in, 20);
	assert_int_equal(out[20], 0);
}

/* A bad byte, CR/LF or padding at any offset of a 40-symbol input (both
 * sides of the 8- and 4-symbol fast steps): the same answer as the careful
 * loop alone, Go's "illegal base64 data at input byte N" with N the
 * offending byte */
static void test_util_b64__fast_steps_hand_over_anywhere(void **state)
{
	(void)state;
	const char *good = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"; /* 40 symbols, 30 bytes */
	uint8_t buf[64];
	size_t n;
	assert_int_equal(b64_decode_to(buf, &n, good, 40, NULL), 0);
	assert_int_equal(n, 30);
	assert_memory_equal(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcd", 30);
	for (size_t at = 0; at < 40; at++) {
		char in[48];
		struct verr e = {0};
		char want[64];
		memcpy(in, good, 40);
		in[at] = '*';
		assert_int_equal(b64_decode_to(buf, &n, in, 40, &e), VERR_INVALID);
		snprintf(want, sizeof(want), "illegal base64 data at input byte %zu", at);
		assert_string_equal(e.msg, want);
		/* a newline inserted anywhere is skipped */
		memcpy(in, good, at);
		in[at] = '\n';
		memcpy(in + at + 1, good + at, 40 - at);
		assert_int_equal(b64_decode_to(buf, &n, in, 41, NULL), 0);
		assert_int_equal(n, 30);
		assert_memory_equal(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcd", 30);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_b64__matches_openssl),
		cmocka_unit_test(test_util_b64__crlf_and_errors),
		cmocka_unit_test(test_util_b64__to_variants),
		cmocka_unit_test(test_util_b64__fast_steps_hand_over_anywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
