/*
 * tests/unit/util/shamir.c - Shamir secret sharing (src/util/shamir.c):
 * field arithmetic against a slow reference, every qualifying subset of
 * shares recovers the secret, smaller subsets do not, and the input checks
 * Vault users know.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "util/secmem.h"
#include "util/shamir.h"

/* Schoolbook carry-less multiply then reduce mod 0x11b, with branches. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
	unsigned p = 0;
	for (int i = 0; i < 8; i++)
		if (b & (1u << i))
			p ^= (unsigned)a << i;
	for (int i = 14; i >= 8; i--)
		if (p & (1u << i))
			p ^= 0x11bu << (i - 8);
	return (uint8_t)p;
}

static void test_util_shamir__gf_mul_matches_reference(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++)
			assert_int_equal(shamir__gf_mul((uint8_t)a, (uint8_t)b),
					 ref_mul((uint8_t)a, (uint8_t)b));
	/* Known answer from FIPS-197 section 4.2: {57} x {83} = {c1}. */
	assert_int_equal(shamir__gf_mul(0x57, 0x83), 0xc1);
}

static void test_util_shamir__gf_inv_matches_reference(void **state)
{
	(void)state;
	assert_int_equal(shamir__gf_inv(0), 0);
	for (unsigned a = 1; a < 256; a++) {
		uint8_t inv = shamir__gf_inv((uint8_t)a);
		/* the unique b with a*b == 1, found by exhaustive search */
		unsigned want = 0;
		for (unsigned b = 1; b < 256; b++)
			if (ref_mul((uint8_t)a, (uint8_t)b) == 1)
				want = b;
		assert_int_equal(inv, want);
	}
}

#define SECRET_LEN 32

static int combine_subset(uint8_t **shares, size_t share_len, const int *idx, int k,
			  const uint8_t *secret)
{
	uint8_t *pick[SHAMIR_MAX_PARTS];
	size_t lens[SHAMIR_MAX_PARTS];
	for (int i = 0; i < k; i++) {
		pick[i] = shares[idx[i]];
		lens[i] = share_len;
	}
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct verr err = {0};
	assert_int_equal(shamir_combine(&out, &out_len, pick, lens, k, &err), 0);
	assert_int_equal(out_len, SECRET_LEN);
	int same = memcmp(out, secret, SECRET_LEN) == 0;
	secmem_free(out, out_len);
	return same;
}

static void shuffle(int *v, int n)
{
	for (int i = n - 1; i > 0; i--) {
		uint8_t r;
		assert_int_equal(RAND_bytes(&r, 1), 1);
		int j = r % (i + 1);
		int t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

static void test_util_shamir__every_subset_recovers(void **state)
{
	(void)state;
	uint8_t secret[SECRET_LEN];
	for (int n = 1; n <= 6; n++) {
		for (int t = 1; t <= n; t++) {
			if (n > 1 && t == 1)
				continue; /* rejected, see the rules test */
			assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
			uint8_t **shares = NULL;
			size_t share_len = 0;
			struct verr err = {0};
			assert_int_equal(shamir_split(&shares, &share_len, secret, sizeof(secret),
						      n, t, &err), 0);
			if (n == 1) {
				/* One share: it is the key itself, as in Vault. */
				assert_int_equal(share_len, SECRET_LEN);
				assert_memory_equal(shares[0], secret, SECRET_LEN);
				shamir_shares_free(shares, n, share_len);
				continue;
			}
			assert_int_equal(share_len, SECRET_LEN + 1);
			/* x-coordinates: non-zero and distinct */
			for (int i = 0; i < n; i++) {
				assert_int_not_equal(shares[i][SECRET_LEN], 0);
				for (int j = 0; j < i; j++)
					assert_int_not_equal(shares[i][SECRET_LEN],
							     shares[j][SECRET_LEN]);
			}
			for (unsigned mask = 1; mask < (1u << n); mask++) {
				int idx[8], k = 0;
				for (int i = 0; i < n; i++)
					if (mask & (1u << i))
						idx[k++] = i;
				if (k < 2)
					continue;
				if (k >= t) {
					/* as given, reversed, and shuffled */
					assert_true(combine_subset(shares, share_len, idx, k, secret));
					int rev[8];
					for (int i = 0; i < k; i++)
						rev[i] = idx[k - 1 - i];
					assert_true(combine_subset(shares, share_len, rev, k, secret));
					shuffle(idx, k);
					assert_true(combine_subset(shares, share_len, idx, k, secret));
				} else {
					/* below the threshold: never the secret (a chance
					 * match is 2^-256) */
					assert_false(combine_subset(shares, share_len, idx, k, secret));
				}
			}
			shamir_shares_free(shares, n, share_len);
		}
	}
}

static void test_util_shamir__below_threshold_random_subsets(void **state)
{
	(void)state;
	uint8_t secret[SECRET_LEN];
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	uint8_t **shares = NULL;
	size_t share_len = 0;
	assert_int_equal(shamir_split(&shares, &share_len, secret, sizeof(secret), 20, 10, NULL),
			 0);
	for (int round = 0; round < 200; round++) {
		int idx[20];
		for (int i = 0; i < 20; i++)
			idx[i] = i;
		shuffle(idx, 20);
		uint8_t r;
		assert_int_equal(RAND_bytes(&r, 1), 1);
		int k = 2 + r % 8; /* 2..9 < threshold 10 */
		assert_false(combine_subset(shares, share_len, idx, k, secret));
		/* exactly the threshold works */
		assert_true(combine_subset(shares, share_len, idx, 10, secret));
	}
	shamir_shares_free(shares, 20, share_len);
}

static void test_util_shamir__max_parts(void **state)
{
	(void)state;
	uint8_t secret[4] = {1, 2, 3, 4};
	uint8_t **shares = NULL;
	size_t share_len = 0;
	assert_int_equal(shamir_split(&shares, &share_len, secret, 4, 255, 255, NULL), 0);
	int idx[255];
	for (int i = 0; i < 255; i++)
		idx[i] = i;
	shuffle(idx, 255);
	uint8_t *pick[255];
	size_t lens[255];
	for (int i = 0; i < 255; i++) {
		pick[i] = shares[idx[i]];
		lens[i] = share_len;
	}
	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_int_equal(shamir_combine(&out, &out_len, pick, lens, 255, NULL), 0);
	assert_int_equal(out_len, 4);
	assert_memory_equal(out, secret, 4);
	secmem_free(out, out_len);
	shamir_shares_free(shares, 255, share_len);
}

static void expect_split_error(int parts, int threshold, size_t len, const char *msg)
{
	uint8_t secret[8] = {0};
	uint8_t **shares = NULL;
	size_t share_len = 0;
	struct verr err = {0};
	assert_int_equal(shamir_split(&shares, &share_len, secret, len, parts, threshold, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, msg);
	assert_null(shares);
}

static void test_util_shamir__split_rules(void **state)
{
	(void)state;
	expect_split_error(0, 1, 8, "shares must be at least one");
	expect_split_error(3, 0, 8, "threshold must be at least one");
	expect_split_error(3, 1, 8, "threshold must be greater than one for multiple shares");
	expect_split_error(256, 3, 8, "shares must be less than 256");
	expect_split_error(5, 6, 8, "threshold cannot be larger than shares");
	expect_split_error(3, 2, 0, "cannot split an empty secret");
	assert_int_equal(shamir_validate(5, 3, NULL), 0);
	assert_int_equal(shamir_validate(1, 1, NULL), 0);
	assert_int_equal(shamir_validate(255, 255, NULL), 0);
}

static void expect_combine_error(uint8_t *const *shares, const size_t *lens, int n,
				 const char *msg)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct verr err = {0};
	assert_int_equal(shamir_combine(&out, &out_len, shares, lens, n, &err), VERR_INVALID);
	assert_string_equal(err.msg, msg);
	assert_null(out);
}

static void test_util_shamir__combine_rejects_bad_parts(void **state)
{
	(void)state;
	uint8_t secret[SECRET_LEN];
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	uint8_t **shares = NULL;
	size_t share_len = 0;
	assert_int_equal(shamir_split(&shares, &share_len, secret, sizeof(secret), 5, 3, NULL),
			 0);
	size_t lens[4] = {share_len, share_len, share_len, share_len};

	expect_combine_error(shares, lens, 1,
			     "less than two parts cannot be used to reconstruct the secret");
	uint8_t *dup[3] = {shares[0], shares[1], shares[0]};
	expect_combine_error(dup, lens, 3, "duplicate part detected");
	size_t short_lens[3] = {share_len, share_len - 1, share_len};
	expect_combine_error(shares, short_lens, 3, "all parts must be the same length");
	size_t tiny[2] = {1, 1};
	expect_combine_error(shares, tiny, 2, "parts must be at least two bytes");

	/* An x-coordinate of zero would be the secret itself, not a share. */
	uint8_t zero_x[SECRET_LEN + 1];
	memcpy(zero_x, shares[2], share_len);
	zero_x[SECRET_LEN] = 0;
	uint8_t *with_zero[3] = {shares[0], shares[1], zero_x};
	expect_combine_error(with_zero, lens, 3, "part has an invalid x-coordinate");

	/* A corrupted share still combines (nothing authenticates shares) but
	 * yields a different secret; the barrier's GCM tag catches it. */
	uint8_t bad[SECRET_LEN + 1];
	memcpy(bad, shares[2], share_len);
	bad[0] ^= 0x01;
	uint8_t *corrupt[3] = {shares[0], shares[1], bad};
	uint8_t *out = NULL;
	size_t out_len = 0;
	assert_int_equal(shamir_combine(&out, &out_len, corrupt, lens, 3, NULL), 0);
	assert_memory_not_equal(out, secret, SECRET_LEN);
	secmem_free(out, out_len);

	shamir_shares_free(shares, 5, share_len);
	shamir_shares_free(NULL, 0, 0);
}

static void test_util_shamir__x_coordinates_random(void **state)
{
	(void)state;
	/* With 3 of 255 coordinates drawn per split, 20 splits all choosing
	 * the same set is (1/2763795)^19: a fixed 1,2,3 layout fails this. */
	uint8_t secret[4] = {9, 9, 9, 9};
	uint8_t first[3] = {0};
	int differs = 0;
	for (int round = 0; round < 20; round++) {
		uint8_t **shares = NULL;
		size_t share_len = 0;
		assert_int_equal(shamir_split(&shares, &share_len, secret, 4, 3, 2, NULL), 0);
		for (int i = 0; i < 3; i++) {
			if (round == 0)
				first[i] = shares[i][4];
			else if (first[i] != shares[i][4])
				differs = 1;
		}
		shamir_shares_free(shares, 3, share_len);
	}
	assert_true(differs);
}

int main(void)
{
	secmem_set_mlock(0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_shamir__gf_mul_matches_reference),
		cmocka_unit_test(test_util_shamir__gf_inv_matches_reference),
		cmocka_unit_test(test_util_shamir__every_subset_recovers),
		cmocka_unit_test(test_util_shamir__below_threshold_random_subsets),
		cmocka_unit_test(test_util_shamir__max_parts),
		cmocka_unit_test(test_util_shamir__split_rules),
		cmocka_unit_test(test_util_shamir__combine_rejects_bad_parts),
		cmocka_unit_test(test_util_shamir__x_coordinates_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
