/*
 * Unit tests for util/rand.c: UUID shape (version 4, variant bits), base62
 * alphabet and rough uniformity, distinct draws.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/rand.h"

static void test_util_rand__uuid(void **state)
{
	char a[RAND_UUID_LEN + 1], b[RAND_UUID_LEN + 1];
	assert_int_equal(rand_uuid(a, NULL), 0);
	assert_int_equal(rand_uuid(b, NULL), 0);
	assert_int_equal(strlen(a), 36);
	assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	assert_string_not_equal(a, b);
}

static void test_util_rand__base62(void **state)
{
	static char s[62001];
	assert_int_equal(rand_base62(s, sizeof(s) - 1, NULL), 0);
	assert_int_equal(strlen(s), sizeof(s) - 1);
	int counts[128] = {0};
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
		counts[c]++;
	}
	/* 1000 expected per character; a biased generator (e.g. byte % 62)
	 * would give the first 8 characters ~1/3 more */
	for (int c = 0; c < 128; c++)
		if (counts[c])
			assert_true(counts[c] > 800 && counts[c] < 1200);
	char z[1];
	assert_int_equal(rand_base62(z, 0, NULL), 0);
	assert_int_equal(z[0], '\0');
}

static void test_util_rand__bytes(void **state)
{
	uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
	assert_int_equal(rand_bytes(a, sizeof(a), NULL), 0);
	assert_int_equal(rand_bytes(b, sizeof(b), NULL), 0);
	assert_memory_not_equal(a, zero, 32);
	assert_memory_not_equal(a, b, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_rand__uuid),
		cmocka_unit_test(test_util_rand__base62),
		cmocka_unit_test(test_util_rand__bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
