/*
 * Unit tests for the cubbyhole engine (src/secrets/cubbyhole.c): per-token
 * isolation, listing, token-less requests, and cubbyhole_destroy.
 */
#include "secrets/kv_helpers.h"

static void test_secrets_cubbyhole__isolation(void **state)
{
	struct kvt t;
	kvt_open(&t, &cubbyhole_backend_ops, NULL);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_UPDATE, "secret", json_pack("{s:s}", "v", "a")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-b", LOP_UPDATE, "secret", json_pack("{s:s}", "v", "b")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_READ, "secret", NULL), 0);
	assert_string_equal(kvt_str(&t, "v"), "a");
	assert_null(t.resp.lease_out); /* cubbyhole reads carry no lease */
	assert_int_equal(kvt_do_as(&t, "tok-b", LOP_READ, "secret", NULL), 0);
	assert_string_equal(kvt_str(&t, "v"), "b");
	/* a third token (root, say) sees nothing, and cannot list or delete */
	assert_int_equal(kvt_do_as(&t, "tok-root", LOP_READ, "secret", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-root", LOP_LIST, "", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-root", LOP_DELETE, "secret", NULL), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_READ, "secret", NULL), 0);
	/* a path naming another token's prefix stays inside the caller's own */
	assert_int_equal(kvt_do_as(&t, "tok-root", LOP_READ, "../tok-a/secret", NULL), VERR_INVALID);
	assert_int_equal(kvt_do_as(&t, "tok-root", LOP_LIST, "x/../../", NULL), VERR_INVALID);
	/* delete affects only the caller */
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_DELETE, "secret", NULL), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_READ, "secret", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-b", LOP_READ, "secret", NULL), 0);
	kvt_close(&t);
}

static void test_secrets_cubbyhole__list(void **state)
{
	struct kvt t;
	kvt_open(&t, &cubbyhole_backend_ops, NULL);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_LIST, "", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_UPDATE, "x", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_UPDATE, "d/y", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-b", LOP_UPDATE, "z", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_LIST, "", NULL), 0);
	json_t *keys = kvt_get(&t, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "d/");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "x");
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_LIST, "d", NULL), 0);
	assert_string_equal(json_string_value(json_array_get(kvt_get(&t, "keys"), 0)), "y");
	assert_int_equal(kvt_do_as(&t, "tok-b", LOP_LIST, "", NULL), 0);
	assert_int_equal(json_array_size(kvt_get(&t, "keys")), 1);
	kvt_close(&t);
}

static void test_secrets_cubbyhole__no_token(void **state)
{
	struct kvt t;
	kvt_open(&t, &cubbyhole_backend_ops, NULL);
	assert_int_equal(kvt_do_as(&t, NULL, LOP_READ, "x", NULL), VERR_INVALID);
	assert_string_equal(t.err.msg,
			    "cubbyhole operations are only supported by \"service\" type tokens");
	assert_int_equal(kvt_do_as(&t, "", LOP_UPDATE, "x", json_pack("{s:s}", "v", "1")), VERR_INVALID);
	assert_int_equal(kvt_do_as(&t, "a/b", LOP_LIST, "", NULL), VERR_INVALID);
	assert_int_equal(kvt_do_as(&t, "tok", LOP_UPDATE, "x", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing data fields");
	kvt_close(&t);
}

static void test_secrets_cubbyhole__destroy(void **state)
{
	struct kvt t;
	kvt_open(&t, &cubbyhole_backend_ops, NULL);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_UPDATE, "x", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_UPDATE, "d/e/y", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do_as(&t, "tok-ab", LOP_UPDATE, "x", json_pack("{s:s}", "v", "2")), 0);
	struct verr err = {0};
	assert_int_equal(cubbyhole_destroy(&t.view, "tok-a", &err), 0);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_READ, "x", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_READ, "d/e/y", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do_as(&t, "tok-a", LOP_LIST, "", NULL), VERR_NOT_FOUND);
	/* a token whose hash merely starts with the same characters is untouched */
	assert_int_equal(kvt_do_as(&t, "tok-ab", LOP_READ, "x", NULL), 0);
	assert_string_equal(kvt_str(&t, "v"), "2");
	/* nothing left in storage for tok-a */
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(view_list(&t.view, "", &keys, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(keys[0], "tok-ab/");
	physical_list_free(keys, n);
	assert_int_equal(cubbyhole_destroy(&t.view, "", &err), VERR_INVALID);
	assert_int_equal(cubbyhole_destroy(&t.view, "nobody", &err), 0);
	kvt_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_cubbyhole__isolation),
		cmocka_unit_test(test_secrets_cubbyhole__list),
		cmocka_unit_test(test_secrets_cubbyhole__no_token),
		cmocka_unit_test(test_secrets_cubbyhole__destroy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
