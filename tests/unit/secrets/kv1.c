/*
 * Unit tests for KV version 1 (src/secrets/kv.c): read/write/delete/list
 * through the path table, Vault's 404s, and the ttl-as-lease-duration rule.
 */
#include "secrets/kv_helpers.h"

static void test_secrets_kv1__write_read_delete(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	/* a new key is a create, an existing one an update: both store the body */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "app/db", json_pack("{s:s,s:i}", "user", "u1", "n", 3)), 0);
	assert_null(t.resp.data); /* 204 */
	assert_int_equal(kvt_do(&t, LOP_READ, "app/db", NULL), 0);
	assert_string_equal(kvt_str(&t, "user"), "u1");
	assert_int_equal(kvt_int(&t, "n"), 3);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "app/db", json_pack("{s:s}", "user", "u2")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "app/db", NULL), 0);
	assert_string_equal(kvt_str(&t, "user"), "u2");
	assert_null(kvt_get(&t, "n")); /* whole secret replaced */
	assert_int_equal(kvt_do(&t, LOP_DELETE, "app/db", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "app/db", NULL), VERR_NOT_FOUND);
	assert_string_equal(t.err.msg, ""); /* 404 {"errors":[]} */
	assert_null(t.resp.data);
	/* deleting a missing key is still a 204 */
	assert_int_equal(kvt_do(&t, LOP_DELETE, "app/db", NULL), 0);
	kvt_close(&t);
}

static void test_secrets_kv1__write_validation(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "x", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing data fields");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "dir/", json_pack("{s:s}", "a", "b")), VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_READ, "missing", NULL), VERR_NOT_FOUND);
	/* body keys named like framework fields are stored verbatim */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "odd", json_pack("{s:s,s:s}", "limit", "abc", "path", "p")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "odd", NULL), 0);
	assert_string_equal(kvt_str(&t, "limit"), "abc");
	assert_string_equal(kvt_str(&t, "path"), "p");
	assert_null(t.resp.warnings);
	kvt_close(&t);
}

static void test_secrets_kv1__list(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_LIST, "", NULL), VERR_NOT_FOUND); /* empty -> 404 */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "foo", json_pack("{s:s}", "a", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "foo/bar", json_pack("{s:s}", "a", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "foo/baz/q", json_pack("{s:s}", "a", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_LIST, "", NULL), 0);
	json_t *keys = kvt_get(&t, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "foo");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "foo/");
	/* with and without the trailing slash */
	assert_int_equal(kvt_do(&t, LOP_LIST, "foo", NULL), 0);
	keys = kvt_get(&t, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "bar");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "baz/");
	assert_int_equal(kvt_do(&t, LOP_LIST, "foo/", NULL), 0);
	assert_int_equal(json_array_size(kvt_get(&t, "keys")), 2);
	assert_int_equal(kvt_do(&t, LOP_LIST, "nothing/", NULL), VERR_NOT_FOUND);
	kvt_close(&t);
}

static void test_secrets_kv1__ttl_lease_duration(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "a", json_pack("{s:s,s:s}", "v", "1", "ttl", "1h")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "a", NULL), 0);
	assert_non_null(t.resp.lease_out);
	assert_int_equal(json_integer_value(json_object_get(t.resp.lease_out, "lease_duration")), 3600);
	assert_string_equal(json_string_value(json_object_get(t.resp.lease_out, "lease_id")), "");
	assert_true(json_is_false(json_object_get(t.resp.lease_out, "renewable")));
	assert_string_equal(kvt_str(&t, "ttl"), "1h"); /* still part of the data */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "b", json_pack("{s:s,s:i}", "v", "1", "ttl", 90)), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "b", NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(t.resp.lease_out, "lease_duration")), 90);
	/* no ttl: the mount default (the system's 768h here) */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "c", json_pack("{s:s}", "v", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "c", NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(t.resp.lease_out, "lease_duration")), 2764800);
	kvt_close(&t);
}

static void test_secrets_kv1__bad_version_option(void **state)
{
	struct physical *phys;
	assert_int_equal(physical_inmem_new(&phys, NULL, NULL), 0);
	struct storage_view view;
	storage_view_init(&view, phys, "x/");
	json_t *opts = json_pack("{s:s}", "version", "3");
	struct mount_info mi = {.type = "kv", .options = opts, .storage = &view};
	void *inst = NULL;
	struct verr err = {0};
	assert_int_equal(kv_backend_ops.init(&inst, &mi, &err), VERR_INVALID);
	assert_null(inst);
	json_decref(opts);
	/* numeric 2 is accepted like "2" */
	opts = json_pack("{s:i}", "version", 2);
	mi.options = opts;
	assert_int_equal(kv_backend_ops.init(&inst, &mi, &err), 0);
	assert_non_null(framework_match(kv_backend_ops.paths(inst), "metadata/x", NULL));
	kv_backend_ops.cleanup(inst);
	json_decref(opts);
	physical_close(phys);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_kv1__write_read_delete),
		cmocka_unit_test(test_secrets_kv1__write_validation),
		cmocka_unit_test(test_secrets_kv1__list),
		cmocka_unit_test(test_secrets_kv1__ttl_lease_duration),
		cmocka_unit_test(test_secrets_kv1__bad_version_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
