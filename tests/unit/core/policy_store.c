/*
 * Unit tests for the policy store (src/core/policy_store.c): built-ins,
 * round trips through storage, name handling, ACL cache invalidation and
 * concurrent use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy.h"

struct fixture {
	struct physical *phys;
	struct storage_view view;
	struct policy_store *store;
};

static int hook_calls;

/* The parser hook used in these tests: policy text is JSON. */
static int json_hook(json_t **out, const char *text, size_t len, struct verr *err)
{
	json_error_t je;
	hook_calls++;
	*out = json_loadb(text, len, 0, &je);
	if (!*out)
		return verr_set(err, VERR_INVALID, "failed to parse policy: %s", je.text);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(physical_inmem_new(&f->phys, NULL, NULL), 0);
	storage_view_init(&f->view, f->phys, "sys/policy/");
	struct verr err = {0};
	if (policy_store_new(&f->store, &f->view, &err))
		fail_msg("policy_store_new: %s", err.msg);
	policy_store_set_parser(f->store, json_hook);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	policy_store_free(f->store);
	physical_close(f->phys);
	free(f);
	return 0;
}

static void put_ok(struct policy_store *s, const char *name, const char *json)
{
	struct verr err = {0};
	if (policy_store_put(s, name, json, NULL, &err))
		fail_msg("put %s: %s", name, err.msg);
}

static struct acl *acl_for(struct policy_store *s, const char *n1, const char *n2)
{
	const char *names[] = {n1, n2};
	struct acl *a = NULL;
	struct verr err = {0};
	if (policy_store_acl(s, names, n2 ? 2 : 1, &a, &err))
		fail_msg("policy_store_acl: %s", err.msg);
	return a;
}

static bool can(const struct acl *a, enum logical_op op, const char *path)
{
	struct acl_result r;
	assert_int_equal(acl_check(a, op, path, NULL, &r), 0);
	return r.allowed;
}

static char *list_str(struct policy_store *s)
{
	json_t *l = NULL;
	assert_int_equal(policy_store_list(s, &l, NULL), 0);
	char *str = json_dumps(l, JSON_COMPACT);
	json_decref(l);
	return str;
}

/* ---- built-ins ---- */

static void test_core_policy_store__default_created_and_listed(void **state)
{
	struct fixture *f = *state;
	char *l = list_str(f->store);
	assert_string_equal(l, "[\"default\",\"root\"]");
	free(l);

	char *raw = NULL;
	assert_int_equal(policy_store_raw(f->store, "default", &raw, NULL), 0);
	assert_non_null(strstr(raw, "path \"auth/token/lookup-self\" {"));
	assert_non_null(strstr(raw, "capabilities = [\"read\"]"));
	free(raw);
	assert_true(policy_store_modified(f->store, "default") > 0);

	struct acl *a = acl_for(f->store, "default", NULL);
	assert_true(can(a, LOP_READ, "auth/token/lookup-self"));
	assert_true(can(a, LOP_UPDATE, "auth/token/renew-self"));
	assert_true(can(a, LOP_UPDATE, "auth/token/revoke-self"));
	assert_true(can(a, LOP_UPDATE, "sys/capabilities-self"));
	assert_true(can(a, LOP_CREATE, "cubbyhole/mine"));
	assert_true(can(a, LOP_LIST, "cubbyhole/"));
	assert_true(can(a, LOP_UPDATE, "sys/leases/renew"));
	assert_true(can(a, LOP_UPDATE, "sys/tools/hash/sha2-256"));
	assert_false(can(a, LOP_READ, "secret/foo"));
	assert_false(can(a, LOP_READ, "sys/policy/default"));
	assert_false(can(a, LOP_UPDATE, "auth/token/create"));
	acl_free(a);

	/* the shipped default (HCL text) reloads even without an HCL parser hook */
	policy_store_set_parser(f->store, NULL);
	policy_store_invalidate(f->store, NULL);
	a = acl_for(f->store, "default", NULL);
	assert_true(can(a, LOP_READ, "auth/token/lookup-self"));
	acl_free(a);
}

static void test_core_policy_store__root_and_builtins_immutable(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	assert_int_equal(policy_store_put(f->store, "root", "{}", NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "cannot update \"root\" policy");
	assert_int_equal(policy_store_put(f->store, "ROOT", "{}", NULL, &err), VERR_INVALID);
	assert_int_equal(policy_store_delete(f->store, "root", &err), VERR_INVALID);
	assert_string_equal(err.msg, "cannot delete \"root\" policy");
	assert_int_equal(policy_store_delete(f->store, "default", &err), VERR_INVALID);
	assert_string_equal(err.msg, "cannot delete default policy");
	assert_int_equal(policy_store_delete(f->store, " Default ", &err), VERR_INVALID);
	assert_int_equal(policy_store_put(f->store, "response-wrapping", "{}", NULL, &err),
			 VERR_INVALID);
	assert_int_equal(policy_store_delete(f->store, "response-wrapping", &err), VERR_INVALID);

	/* root reads as an existing policy with empty rules */
	char *raw = NULL;
	assert_int_equal(policy_store_raw(f->store, "root", &raw, NULL), 0);
	assert_string_equal(raw, "");
	free(raw);
	struct policy *p = NULL;
	assert_int_equal(policy_store_get(f->store, "root", &p, NULL), 0);
	assert_non_null(p);
	assert_string_equal(policy_name(p), "root");
	policy_free(p);

	/* a root token's ACL allows everything */
	struct acl *a = acl_for(f->store, "root", NULL);
	assert_true(acl_is_root(a));
	assert_true(can(a, LOP_DELETE, "sys/audit/file"));
	acl_free(a);

	/* the response-wrapping policy exists but is not listed */
	assert_int_equal(policy_store_get(f->store, "response-wrapping", &p, NULL), 0);
	assert_non_null(p);
	policy_free(p);
	a = acl_for(f->store, "response-wrapping", NULL);
	assert_true(can(a, LOP_READ, "cubbyhole/response"));
	assert_true(can(a, LOP_UPDATE, "sys/wrapping/unwrap"));
	assert_false(can(a, LOP_READ, "cubbyhole/other"));
	acl_free(a);
	char *l = list_str(f->store);
	assert_null(strstr(l, "response-wrapping"));
	free(l);
}

static void test_core_policy_store__default_is_editable(void **state)
{
	struct fixture *f = *state;
	put_ok(f->store, "default", "{\"path\":{\"secret/*\":{\"capabilities\":[\"read\"]}}}");
	struct acl *a = acl_for(f->store, "default", NULL);
	assert_true(can(a, LOP_READ, "secret/x"));
	assert_false(can(a, LOP_READ, "auth/token/lookup-self"));
	acl_free(a);

	/* re-opening the store does not overwrite the operator's default */
	struct policy_store *s2 = NULL;
	assert_int_equal(policy_store_new(&s2, &f->view, NULL), 0);
	policy_store_set_parser(s2, json_hook);
	char *raw = NULL;
	assert_int_equal(policy_store_raw(s2, "default", &raw, NULL), 0);
	assert_non_null(strstr(raw, "secret/*"));
	free(raw);
	policy_store_free(s2);
}

/* ---- round trips ---- */

static void test_core_policy_store__round_trip(void **state)
{
	struct fixture *f = *state;
	const char *text = "{\"path\":{\"kv/data/myapp/*\":{\"capabilities\":[\"read\"]}}}";
	put_ok(f->store, "MyApp", text);

	char *raw = NULL;
	assert_int_equal(policy_store_raw(f->store, "myapp", &raw, NULL), 0);
	assert_string_equal(raw, text); /* stored verbatim */
	free(raw);
	char *l = list_str(f->store);
	assert_string_equal(l, "[\"default\",\"myapp\",\"root\"]");
	free(l);

	/* a second store over the same storage re-parses the text via the hook */
	struct policy_store *s2 = NULL;
	assert_int_equal(policy_store_new(&s2, &f->view, NULL), 0);
	policy_store_set_parser(s2, json_hook);
	int before = hook_calls;
	struct policy *p = NULL;
	assert_int_equal(policy_store_get(s2, "MYAPP", &p, NULL), 0);
	assert_non_null(p);
	assert_int_equal(policy_rule_count(p), 1);
	assert_true(hook_calls > before);
	policy_free(p);
	/* cached: no second parse */
	before = hook_calls;
	assert_int_equal(policy_store_get(s2, "myapp", &p, NULL), 0);
	assert_int_equal(hook_calls, before);
	policy_free(p);
	policy_store_free(s2);

	/* missing policies read as absent, not as errors */
	assert_int_equal(policy_store_get(f->store, "nope", &p, NULL), 0);
	assert_null(p);
	assert_int_equal(policy_store_raw(f->store, "nope", &raw, NULL), 0);
	assert_null(raw);

	/* delete is idempotent */
	assert_int_equal(policy_store_delete(f->store, "myapp", NULL), 0);
	assert_int_equal(policy_store_delete(f->store, "myapp", NULL), 0);
	assert_int_equal(policy_store_get(f->store, "myapp", &p, NULL), 0);
	assert_null(p);
	l = list_str(f->store);
	assert_string_equal(l, "[\"default\",\"root\"]");
	free(l);
}

static void test_core_policy_store__parsed_root_given(void **state)
{
	struct fixture *f = *state;
	/* The caller passes the converted JSON; the raw text (HCL) is stored as is. */
	const char *hcl = "path \"secret/*\" {\n  capabilities = [\"list\"]\n}\n";
	json_t *j = json_loads("{\"path\":[{\"secret/*\":[{\"capabilities\":[\"list\"]}]}]}", 0,
			       NULL);
	assert_int_equal(policy_store_put(f->store, "hcl", hcl, j, NULL), 0);
	json_decref(j);
	char *raw = NULL;
	assert_int_equal(policy_store_raw(f->store, "hcl", &raw, NULL), 0);
	assert_string_equal(raw, hcl);
	free(raw);
	struct acl *a = acl_for(f->store, "hcl", NULL);
	assert_true(can(a, LOP_LIST, "secret/"));
	acl_free(a);
}

static void test_core_policy_store__bad_input_rejected(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	assert_int_equal(policy_store_put(f->store, "p",
					  "{\"path\":{\"a\":{\"capabilities\":[\"reed\"]}}}", NULL,
					  &err),
			 VERR_INVALID);
	assert_non_null(strstr(err.msg, "invalid capability \"reed\""));
	assert_int_equal(policy_store_put(f->store, "p", "not json", NULL, &err), VERR_INVALID);
	assert_int_equal(policy_store_put(f->store, "a//b", "{}", NULL, &err), VERR_INVALID);
	assert_int_equal(policy_store_put(f->store, "", "{}", NULL, &err), VERR_INVALID);
	assert_int_equal(policy_store_put(f->store, "p", NULL, NULL, &err), VERR_INVALID);
	char *l = list_str(f->store);
	assert_string_equal(l, "[\"default\",\"root\"]");
	free(l);

	/* names with '/' are kept and listed whole */
	put_ok(f->store, "team/app", "{}");
	l = list_str(f->store);
	assert_string_equal(l, "[\"default\",\"root\",\"team/app\"]");
	free(l);
}

/* ---- ACL cache ---- */

static void test_core_policy_store__acl_cache_and_invalidation(void **state)
{
	struct fixture *f = *state;
	put_ok(f->store, "app", "{\"path\":{\"secret/app/*\":{\"capabilities\":[\"read\"]}}}");
	put_ok(f->store, "ops", "{\"path\":{\"sys/mounts\":{\"capabilities\":[\"read\"]}}}");

	struct acl *a1 = acl_for(f->store, "app", "default");
	struct acl *a2 = acl_for(f->store, "DEFAULT", "app"); /* same set, other order */
	assert_ptr_equal(a1, a2); /* served from the cache */
	assert_true(can(a1, LOP_READ, "secret/app/x"));
	assert_true(can(a1, LOP_READ, "auth/token/lookup-self"));
	assert_false(can(a1, LOP_READ, "sys/mounts"));
	acl_free(a2);

	/* update the policy: the next ACL for the same set reflects it */
	put_ok(f->store, "app", "{\"path\":{\"secret/app/*\":{\"capabilities\":[\"deny\"]}}}");
	struct acl *a3 = acl_for(f->store, "app", "default");
	assert_false(can(a3, LOP_READ, "secret/app/x"));
	assert_true(can(a3, LOP_READ, "auth/token/lookup-self"));
	/* the reference taken before the change stays valid (and unchanged) */
	assert_true(can(a1, LOP_READ, "secret/app/x"));
	acl_free(a1);
	acl_free(a3);

	/* delete: the grant disappears */
	put_ok(f->store, "app", "{\"path\":{\"secret/app/*\":{\"capabilities\":[\"read\"]}}}");
	a1 = acl_for(f->store, "app", NULL);
	assert_true(can(a1, LOP_READ, "secret/app/x"));
	acl_free(a1);
	assert_int_equal(policy_store_delete(f->store, "app", NULL), 0);
	a1 = acl_for(f->store, "app", NULL);
	assert_false(can(a1, LOP_READ, "secret/app/x"));
	acl_free(a1);

	/* a policy created after a token referenced it takes effect */
	a1 = acl_for(f->store, "later", NULL);
	assert_false(can(a1, LOP_READ, "x"));
	acl_free(a1);
	put_ok(f->store, "later", "{\"path\":{\"x\":{\"capabilities\":[\"read\"]}}}");
	a1 = acl_for(f->store, "later", NULL);
	assert_true(can(a1, LOP_READ, "x"));
	acl_free(a1);

	/* external invalidation (storage changed underneath) */
	struct policy_store *other = NULL;
	assert_int_equal(policy_store_new(&other, &f->view, NULL), 0);
	put_ok(other, "later", "{\"path\":{\"x\":{\"capabilities\":[\"deny\"]}}}");
	policy_store_free(other);
	a1 = acl_for(f->store, "later", NULL);
	assert_true(can(a1, LOP_READ, "x")); /* still cached */
	acl_free(a1);
	policy_store_invalidate(f->store, "later");
	a1 = acl_for(f->store, "later", NULL);
	assert_false(can(a1, LOP_READ, "x"));
	acl_free(a1);
}

static void test_core_policy_store__missing_and_empty_names(void **state)
{
	struct fixture *f = *state;
	put_ok(f->store, "app", "{\"path\":{\"secret/*\":{\"capabilities\":[\"read\"]}}}");
	const char *names[] = {"nope", "app", "bad//name", NULL, "app"};
	struct acl *a = NULL;
	assert_int_equal(policy_store_acl(f->store, names, 5, &a, NULL), 0);
	assert_true(can(a, LOP_READ, "secret/x"));
	acl_free(a);
	assert_int_equal(policy_store_acl(f->store, NULL, 0, &a, NULL), 0);
	assert_false(can(a, LOP_READ, "secret/x"));
	assert_false(can(a, LOP_READ, "auth/token/lookup-self"));
	acl_free(a);
}

static void test_core_policy_store__seed_guide_policy(void **state)
{
	struct fixture *f = *state;
	put_ok(f->store, "myapp",
	       "{\"path\":{\"kv/data/myapp/*\":{\"capabilities\":[\"read\"]},"
	       "\"database/creds/myapp-role\":{\"capabilities\":[\"read\"]},"
	       "\"pki/issue/myapp-role\":{\"capabilities\":[\"create\",\"update\"]},"
	       "\"sys/capabilities-self\":{\"capabilities\":[\"create\",\"update\"]}}}");
	struct acl *a = acl_for(f->store, "myapp", "default");
	assert_true(can(a, LOP_READ, "kv/data/myapp/config"));
	assert_true(can(a, LOP_READ, "database/creds/myapp-role"));
	assert_true(can(a, LOP_UPDATE, "pki/issue/myapp-role"));
	assert_true(can(a, LOP_CREATE, "sys/capabilities-self"));
	assert_false(can(a, LOP_READ, "kv/data/myapp"));
	assert_false(can(a, LOP_READ, "kv/data/myapp2/x"));
	assert_false(can(a, LOP_READ, "kv/metadata/myapp/x"));
	assert_false(can(a, LOP_READ, "database/creds/myapp-role/x"));
	assert_false(can(a, LOP_READ, "pki/issue/myapp-role"));
	/* default still applies alongside */
	assert_true(can(a, LOP_READ, "auth/token/lookup-self"));
	json_t *l = NULL;
	assert_int_equal(acl_capabilities(a, "sys/capabilities-self", &l, NULL), 0);
	char *s = json_dumps(l, JSON_COMPACT);
	/* same pattern in myapp and default: capabilities are merged */
	assert_string_equal(s, "[\"create\",\"update\"]");
	free(s);
	json_decref(l);
	acl_free(a);
}

/* ---- concurrency ---- */

struct race {
	struct policy_store *store;
	int stop;
	int errors;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 3000; i++) {
		const char *names[] = {"a", "b", "default"};
		struct acl *a = NULL;
		if (policy_store_acl(r->store, names, 1 + (size_t)(i % 3), &a, NULL) != 0) {
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		struct acl_result res;
		acl_check(a, LOP_READ, "secret/x", NULL, &res);
		/* "a" grants or denies read, never anything else */
		if (res.allowed && res.capabilities != POLICY_CAP_READ)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_SEQ_CST);
		acl_free(a);
	}
	return NULL;
}

static void *writer(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 300; i++) {
		const char *t = i % 2 ? "{\"path\":{\"secret/*\":{\"capabilities\":[\"read\"]}}}"
				      : "{\"path\":{\"secret/*\":{\"capabilities\":[\"deny\"]}}}";
		if (policy_store_put(r->store, "a", t, NULL, NULL) != 0)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_SEQ_CST);
		if (i % 10 == 0)
			policy_store_invalidate(r->store, NULL);
	}
	return NULL;
}

static void test_core_policy_store__concurrent_use(void **state)
{
	struct fixture *f = *state;
	struct race r = {.store = f->store};
	pthread_t th[5];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader, &r);
	pthread_create(&th[4], NULL, writer, &r);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.errors, 0);
	/* the last write (i = 299, read) is what a fresh ACL sees */
	struct acl *a = acl_for(f->store, "a", NULL);
	assert_true(can(a, LOP_READ, "secret/x"));
	acl_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_policy_store__default_created_and_listed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__root_and_builtins_immutable,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__default_is_editable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__parsed_root_given, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__bad_input_rejected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__acl_cache_and_invalidation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__missing_and_empty_names,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__seed_guide_policy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_policy_store__concurrent_use, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
