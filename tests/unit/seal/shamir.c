/*
 * Unit tests for the seal interface (src/seal/seal.h) and its Shamir
 * implementation: the root key round-trips under the combined key, a wrong
 * key or an altered blob is refused with "invalid key", the wrappers refuse
 * to call a seal that needs the ceremony's key without one, and the seal
 * describes itself as the core expects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seal/seal.h"
#include "util/rand.h"
#include "util/secmem.h"

static void test_seal_shamir__round_trip_and_refusals(void **state)
{
	struct seal *s = NULL;
	struct verr err = {0};
	assert_int_equal(seal_shamir_new(&s, NULL, &err), 0);
	assert_string_equal(seal_type(s), "shamir");
	assert_false(seal_recovery_keys(s));
	assert_true(seal_needs_kek(s));
	assert_string_equal(seal_root_path(s), "core/shamir-root");

	uint8_t kek[32], other[32], root[32];
	assert_int_equal(rand_bytes(kek, sizeof(kek), NULL), 0);
	assert_int_equal(rand_bytes(other, sizeof(other), NULL), 0);
	assert_int_equal(rand_bytes(root, sizeof(root), NULL), 0);
	uint8_t *blob = NULL, *out = NULL;
	size_t blen = 0, olen = 0;
	assert_int_equal(seal_wrap(s, kek, 32, root, 32, &blob, &blen, &err), 0);
	assert_int_equal(blen, 32 + 33);
	assert_null(memmem(blob, blen, root, 32)); /* not in the clear */
	assert_int_equal(seal_unwrap(s, kek, 32, blob, blen, &out, &olen, &err), 0);
	assert_int_equal(olen, 32);
	assert_memory_equal(out, root, 32);
	secmem_free(out, olen);

	assert_int_equal(seal_unwrap(s, other, 32, blob, blen, &out, &olen, &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid key");
	assert_null(out);
	blob[blen - 1] ^= 1;
	assert_int_equal(seal_unwrap(s, kek, 32, blob, blen, &out, &olen, &err), VERR_INVALID);
	blob[blen - 1] ^= 1;
	assert_int_equal(seal_unwrap(s, kek, 32, blob, 10, &out, &olen, &err), VERR_INTERNAL);
	assert_int_equal(seal_unwrap(s, NULL, 0, blob, blen, &out, &olen, &err), VERR_INTERNAL);
	assert_int_equal(seal_unwrap(s, kek, 16, blob, blen, &out, &olen, &err), VERR_INVALID);
	free(blob);
	seal_close(s);
	seal_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_shamir__round_trip_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
