/*
 * Unit tests for the multi-seal (src/seal/multi.c): members sorted by
 * priority, refusals (duplicate names or priorities, a Shamir member, too
 * many members) that close what they were given, the health records and
 * the sys/seal-backend-status document built from them, and the
 * composite's own wrap refusing (the core wraps through the members).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "seal/seal.h"

static struct seal *kms(void)
{
	struct seal *s = NULL;
	struct verr err = {0};
	json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kms_key_id", "alias/x", "region", "us-east-1",
			      "endpoint", "https://127.0.0.1:9", "access_key", "AKID", "secret_key", "sk");
	assert_int_equal(seal_awskms_new(&s, c, &err), 0);
	json_decref(c);
	return s;
}

static void test_seal_multi__order_health_status(void **state)
{
	(void)state;
	struct seal *m[3] = {kms(), kms(), kms()}, *s = NULL;
	const char *names[3] = {"third", "first", "second"};
	int prio[3] = {30, 1, 20};
	struct verr err = {0};
	assert_int_equal(seal_multi_new(&s, m, names, prio, 3, &err), 0);
	assert_string_equal(seal_type(s), SEAL_MULTI_TYPE);
	assert_true(seal_recovery_keys(s));
	assert_false(seal_needs_kek(s));
	assert_int_equal(seal_multi_count(s), 3);
	const char *n = NULL;
	assert_ptr_equal(seal_multi_member(s, 0, &n), m[1]);
	assert_string_equal(n, "first");
	seal_multi_member(s, 2, &n);
	assert_string_equal(n, "third");
	assert_null(seal_multi_member(s, 3, &n));

	json_t *st = seal_multi_status(s);
	assert_true(json_is_true(json_object_get(st, "healthy")));
	assert_false(json_is_true(json_object_get(st, "fully_wrapped")));
	assert_null(json_object_get(st, "unhealthy_since"));
	json_decref(st);

	for (size_t i = 0; i < 3; i++)
		seal_multi_set_copy(s, i, true);
	seal_multi_report(s, 1, false);
	assert_true(seal_multi_has_copy(s, 1));
	st = seal_multi_status(s);
	assert_false(json_is_true(json_object_get(st, "healthy")));
	assert_true(json_is_true(json_object_get(st, "fully_wrapped")));
	assert_non_null(json_string_value(json_object_get(st, "unhealthy_since")));
	json_t *b = json_array_get(json_object_get(st, "backends"), 1);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "second");
	assert_false(json_is_true(json_object_get(b, "healthy")));
	assert_non_null(json_object_get(b, "unhealthy_since"));
	assert_null(json_object_get(json_array_get(json_object_get(st, "backends"), 0), "unhealthy_since"));
	json_decref(st);
	seal_multi_report(s, 1, true);
	st = seal_multi_status(s);
	assert_true(json_is_true(json_object_get(st, "healthy")));
	json_decref(st);

	/* the composite never wraps by itself */
	uint8_t root[32] = {0}, *out = NULL;
	size_t ol = 0;
	assert_int_equal(seal_wrap(s, NULL, 0, root, sizeof(root), &out, &ol, &err), VERR_INTERNAL);
	seal_close(s);
}

static void test_seal_multi__refusals(void **state)
{
	(void)state;
	struct seal *s = NULL, *sh = NULL;
	struct verr err = {0};
	struct seal *m[2] = {kms(), kms()};
	const char *dup[2] = {"a", "a"};
	int prio[2] = {1, 2};
	assert_int_equal(seal_multi_new(&s, m, dup, prio, 2, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "two seals are named \"a\""));
	assert_null(s);

	struct seal *m2[2] = {kms(), kms()};
	const char *names[2] = {"a", "b"};
	int same[2] = {5, 5};
	assert_int_equal(seal_multi_new(&s, m2, names, same, 2, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "same priority 5"));

	assert_int_equal(seal_shamir_new(&sh, NULL, &err), 0);
	struct seal *m3[2] = {kms(), sh};
	assert_int_equal(seal_multi_new(&s, m3, names, prio, 2, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "shamir"));

	struct seal *m4[4] = {kms(), kms(), kms(), kms()};
	const char *four[4] = {"a", "b", "c", "d"};
	int p4[4] = {1, 2, 3, 4};
	assert_int_equal(seal_multi_new(&s, m4, four, p4, 4, &err), VERR_INVALID);

	/* not a multi-seal: the accessors answer nothing */
	assert_int_equal(seal_shamir_new(&sh, NULL, &err), 0);
	assert_int_equal(seal_multi_count(sh), 0);
	assert_null(seal_multi_member(sh, 0, NULL));
	assert_false(seal_multi_has_copy(sh, 0));
	json_t *st = seal_multi_status(sh);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(st, "backends"), 0),
							      "name")), "shamir");
	json_decref(st);
	seal_close(sh);
}

/* a member that could not be opened: of its stanza's type, refusing every
 * wrap and unwrap with the reason it could not be opened */
static void test_seal_multi__unavailable_member(void **state)
{
	(void)state;
	struct seal *u = NULL, *s = NULL;
	struct verr why = {VERR_DENIED, "seal \"kms1\" (awskms): key disabled"}, err = {0};
	assert_int_equal(seal_unavailable_new(&u, "awskms", &why, &err), 0);
	assert_string_equal(seal_type(u), "awskms");
	assert_true(seal_recovery_keys(u));
	uint8_t root[32] = {0}, *out = NULL;
	size_t ol = 0;
	assert_int_equal(seal_wrap(u, NULL, 0, root, sizeof(root), &out, &ol, &err), VERR_DENIED);
	assert_non_null(strstr(err.msg, "key disabled"));
	assert_int_equal(seal_unwrap(u, NULL, 0, root, sizeof(root), &out, &ol, &err), VERR_DENIED);
	assert_null(out);
	struct seal *m[2] = {u, kms()};
	const char *names[2] = {"kms1", "kms2"};
	int prio[2] = {1, 2};
	assert_int_equal(seal_multi_new(&s, m, names, prio, 2, &err), 0);
	seal_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_multi__order_health_status),
		cmocka_unit_test(test_seal_multi__refusals),
		cmocka_unit_test(test_seal_multi__unavailable_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
