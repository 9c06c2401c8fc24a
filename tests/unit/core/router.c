/*
 * Unit tests for the mount tables and routing (src/core/router.c): longest
 * prefix routing, Vault's checks on enable/disable/tune/remount, tables that
 * survive a reseal with the same identities, a remount that keeps the data
 * (storage is keyed by UUID), and backends' initialize on the active node.
 */
#include "core_helpers.h"

#include "core/router.h"
#include "core/token.h"
#include "secrets/secrets.h"

static char g_invalidated[256];

static int iv_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = g_invalidated;
	return 0;
}

static void iv_invalidate(void *inst, const char *key)
{
	snprintf(inst, sizeof(g_invalidated), "%s", key);
}

static const struct path_def iv_paths[] = {{0}};

static const struct path_def *iv_table(void *inst)
{
	return iv_paths;
}

static const struct backend_ops iv_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "invtest",
	.init = iv_init,
	.paths = iv_table,
	.invalidate = iv_invalidate,
};

static const struct backend_ops *const registry[] = {
	&kv_backend_ops, &cubbyhole_backend_ops, &token_backend_ops, &iv_ops, NULL,
};

#define fx solo

static int setup(void **state)
{
	*state = solo_open(registry, NULL, 0);
	return 0;
}

static int teardown(void **state)
{
	solo_close(*state);
	return 0;
}

static int mount(struct fx *f, const char *path, const json_t *body, struct verr *err)
{
	return router_mount(f->n.c, false, path, body, err);
}

static void expect_route(struct fx *f, const char *path, const char *mount_path)
{
	struct mount_entry *m = router_route(f->n.c, path);
	if (!mount_path) {
		assert_null(m);
		return;
	}
	assert_non_null(m);
	assert_string_equal(m->path, mount_path);
	router_release(m);
}

static void test_core_router__routing_and_enable_rules(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *kv = json_pack("{s:s}", "type", "kv");
	assert_int_equal(mount(f, "secret", kv, &err), 0);
	expect_route(f, "secret/a/b", "secret/");
	expect_route(f, "secret", "secret/");
	expect_route(f, "secretx/a", NULL);
	expect_route(f, "sys/mounts", "sys/");
	expect_route(f, "auth/token/lookup-self", "auth/token/");

	assert_int_equal(mount(f, "secret", kv, &err), VERR_INVALID);
	assert_string_equal(err.msg, "path is already in use at secret/");
	assert_int_equal(mount(f, "secret/inner", kv, &err), VERR_INVALID);
	assert_string_equal(err.msg, "existing mount at secret/");
	assert_int_equal(mount(f, "sys/x", kv, &err), VERR_INVALID);
	assert_int_equal(mount(f, "cubbyhole/x", kv, &err), VERR_INVALID);
	assert_int_equal(mount(f, "a*b", kv, &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid character in mount path");
	json_t *bad = json_pack("{s:s}", "type", "nope");
	assert_int_equal(mount(f, "other", bad, &err), VERR_INVALID);
	assert_string_equal(err.msg, "plugin not found in the catalog: nope");
	json_decref(bad);
	json_t *untyped = json_object();
	assert_int_equal(mount(f, "other", untyped, &err), VERR_INVALID);
	json_decref(untyped);
	json_decref(kv);

	/* the defaults cannot go */
	char *full = NULL;
	assert_int_equal(router_unmount_target(f->n.c, false, "cubbyhole", &full, &err), VERR_INVALID);
	assert_int_equal(router_unmount_target(f->n.c, true, "token", &full, &err), VERR_INVALID);
	/* a missing mount: nothing to do, no error (Vault) */
	assert_int_equal(router_unmount_target(f->n.c, false, "missing", &full, &err), 0);
	assert_null(full);
}

static void test_core_router__tables_survive_reseal(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *kv = json_pack("{s:s,s:{s:s}}", "type", "kv", "options", "version", "2");
	assert_int_equal(mount(f, "app", kv, &err), 0);
	json_decref(kv);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "app/data/x", "{\"data\":{\"v\":\"1\"}}"), 0);
	struct mount_entry *m = router_get(f->n.c, false, "app");
	char *uuid = strdup(m->uuid), *acc = strdup(m->accessor);
	router_release(m);

	state_seal(f->n.c);
	assert_int_equal(node_unseal(&f->n, f->key, &err), 0);
	m = router_get(f->n.c, false, "app/");
	assert_non_null(m);
	assert_string_equal(m->uuid, uuid);
	assert_string_equal(m->accessor, acc);
	router_release(m);
	assert_int_equal(node_do(&f->n, f->root, LOP_READ, "app/data/x", NULL), 0);

	/* remount moves the entry, the data comes along */
	assert_int_equal(router_remount(f->n.c, "app", "moved", &err), 0);
	expect_route(f, "app/data/x", NULL);
	assert_int_equal(node_do(&f->n, f->root, LOP_READ, "moved/data/x", NULL), 0);
	assert_int_equal(router_remount(f->n.c, "moved", "sys/x", &err), VERR_INVALID);
	free(uuid);
	free(acc);
}

/* Tuning a v1 mount to v2 re-runs init + initialize: the data is upgraded
 * in place; a v2 mount cannot go back. */
static void test_core_router__tune_upgrades_through_initialize(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *kv = json_pack("{s:s}", "type", "kv");
	assert_int_equal(mount(f, "old", kv, &err), 0);
	json_decref(kv);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "old/k", "{\"a\":\"b\"}"), 0);
	json_t *up = json_pack("{s:{s:s}}", "options", "version", "2");
	assert_int_equal(router_tune(f->n.c, false, "old", up, &err), 0);
	json_decref(up);
	struct logical_response resp;
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "old/data/k", NULL, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(resp.data, "data"), "a")), "b");
	logical_response_reset(&resp);
	json_t *down = json_pack("{s:{s:s}}", "options", "version", "1");
	assert_int_equal(router_tune(f->n.c, false, "old", down, &err), VERR_INVALID);
	assert_string_equal(err.msg, "cannot downgrade mount from version 2");
	json_decref(down);
	json_t *ttl = json_pack("{s:s,s:s}", "default_lease_ttl", "2h", "max_lease_ttl", "1h");
	assert_int_equal(router_tune(f->n.c, false, "old", ttl, &err), VERR_INVALID);
	assert_string_equal(err.msg, "default_lease_ttl cannot be greater than max_lease_ttl");
	json_decref(ttl);
}

static void test_core_router__valid_path(void **state)
{
	struct verr err = {0};
	assert_int_equal(router_valid_path("secret/a/b", &err), 0);
	assert_int_equal(router_valid_path("secret/a/", &err), 0);
	assert_int_equal(router_valid_path("", &err), VERR_NOT_FOUND);
	assert_int_equal(router_valid_path("a//b", &err), VERR_INVALID);
	assert_int_equal(router_valid_path("a/../b", &err), VERR_INVALID);
	assert_int_equal(router_valid_path("a/\x01", &err), VERR_INVALID);
	assert_int_equal(router_valid_path("a/\xc3\x28", &err), VERR_INVALID);
	assert_string_equal(err.msg, "path is not valid UTF-8");
}

/* core_invalidate reaches exactly the mount that owns the key */
static void test_core_router__invalidate_reaches_the_owner(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *t = json_pack("{s:s}", "type", "invtest");
	assert_int_equal(mount(f, "iv", t, &err), 0);
	json_decref(t);
	struct mount_entry *m = router_get(f->n.c, false, "iv");
	char key[300];
	snprintf(key, sizeof(key), "%sconfig/x", m->view.prefix);
	router_release(m);
	g_invalidated[0] = '\0';
	core_invalidate(f->n.c, key);
	assert_string_equal(g_invalidated, "config/x");
	g_invalidated[0] = '\0';
	assert_int_equal(router_invalidate(f->n.c, "logical/other-uuid/config/x"), 0);
	assert_string_equal(g_invalidated, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_router__routing_and_enable_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_router__tables_survive_reseal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_router__tune_upgrades_through_initialize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_router__invalidate_reaches_the_owner, setup, teardown),
		cmocka_unit_test(test_core_router__valid_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
