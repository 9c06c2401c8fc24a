/*
 * Unit tests for the userpass auth method (src/auth/userpass.c, included to
 * reach the KDF counter and gate): user lifecycle, the stored hash record,
 * uniform login failures, CIDR binding, bcrypt password_hash, renewal, and
 * that logins do not serialise on a global lock.
 */
#include "auth/userpass.c"

#include <crypt.h>
#include <time.h>

#include "auth/auth_helpers.h"

static void create_user(struct at *t, const char *name, json_t *body)
{
	char path[128];
	snprintf(path, sizeof(path), "users/%s", name);
	int rc = at_do(t, LOP_UPDATE, path, body);
	if (rc)
		print_error("create %s: %s\n", name, t->err.msg);
	assert_int_equal(rc, 0);
}

static int login(struct at *t, const char *name, const char *pw)
{
	char path[128];
	snprintf(path, sizeof(path), "login/%s", name);
	return at_do(t, LOP_UPDATE, path, json_pack("{s:s}", "password", pw));
}

static void test_auth_userpass__create_read_login(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	create_user(&t, "Bob", json_pack("{s:s,s:s,s:s,s:i}", "password", "hunter2",
					 "token_policies", "Ops, dev", "token_ttl", "1h",
					 "token_num_uses", 5));
	/* names are lower-cased; reads never show the password */
	assert_int_equal(at_do(&t, LOP_READ, "users/BOB", NULL), 0);
	assert_null(at_data(&t, "password"));
	assert_int_equal(json_integer_value(at_data(&t, "token_ttl")), 3600);
	assert_int_equal(json_integer_value(at_data(&t, "token_num_uses")), 5);
	assert_string_equal(json_string_value(json_array_get(at_data(&t, "token_policies"), 0)), "dev");
	assert_string_equal(json_string_value(json_array_get(at_data(&t, "token_policies"), 1)), "ops");
	assert_string_equal(at_str(&t, "token_type"), "default");
	/* the stored record: scrypt parameters, a 16-byte salt, no plaintext */
	json_t *u = NULL;
	assert_int_equal(view_get_json(&t.view, "user/bob", &u, NULL), 0);
	json_t *rec = json_object_get(u, "password");
	assert_string_equal(json_string_value(json_object_get(rec, "alg")), "scrypt");
	assert_int_equal(json_integer_value(json_object_get(rec, "n")), 32768);
	assert_int_equal(json_integer_value(json_object_get(rec, "r")), 8);
	assert_int_equal(strlen(json_string_value(json_object_get(rec, "salt"))), 32);
	char *dump = json_dumps(u, 0);
	assert_null(strstr(dump, "hunter2"));
	free(dump);
	json_decref(u);

	assert_int_equal(at_do(&t, LOP_LIST, "users/", NULL), 0);
	assert_int_equal(json_array_size(at_data(&t, "keys")), 1);

	assert_int_equal(login(&t, "BOB", "hunter2"), 0);
	struct logical_auth *a = t.resp.auth;
	assert_non_null(a);
	assert_int_equal(a->ttl, 3600);
	assert_int_equal(a->num_uses, 5);
	assert_true(a->renewable);
	assert_string_equal(a->display_name, "bob");
	assert_string_equal(json_string_value(json_object_get(a->metadata, "username")), "bob");
	assert_int_equal(json_array_size(a->policies), 2);
	assert_string_equal(json_string_value(json_object_get(a->internal, "username")), "bob");

	/* password change; delete */
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/bob/password",
			       json_pack("{s:s}", "password", "new")), 0);
	assert_int_equal(login(&t, "bob", "hunter2"), VERR_INVALID);
	assert_int_equal(login(&t, "bob", "new"), 0);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/bob/policies",
			       json_pack("{s:[s]}", "token_policies", "x")), 0);
	assert_int_equal(login(&t, "bob", "new"), 0);
	assert_int_equal(json_array_size(t.resp.auth->policies), 1);
	assert_int_equal(at_do(&t, LOP_DELETE, "users/bob", NULL), 0);
	assert_int_equal(at_do(&t, LOP_READ, "users/bob", NULL), VERR_NOT_FOUND);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/bob/policies",
			       json_pack("{s:[s]}", "token_policies", "x")), VERR_INVALID);
	at_close(&t);
}

static void test_auth_userpass__validation(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a", json_pack("{s:s}", "token_ttl", "1h")),
			 VERR_INVALID); /* create needs a password */
	assert_string_equal(t.err.msg, "missing password");
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/.a", json_pack("{s:s}", "password", "p")),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a",
			       json_pack("{s:s,s:s,s:s}", "password", "p", "token_ttl", "2h",
					 "token_max_ttl", "1h")), VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a",
			       json_pack("{s:s,s:s}", "password", "p", "token_type", "bulk")),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a",
			       json_pack("{s:s,s:i}", "password", "p", "token_num_uses", -1)),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a",
			       json_pack("{s:s,s:s}", "password", "p", "token_bound_cidrs", "1.2.3.4/40")),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "users/a",
			       json_pack("{s:s,s:s}", "password", "p", "password_hash", "x")),
			 VERR_INVALID);
	/* legacy names are accepted and echoed back */
	create_user(&t, "a", json_pack("{s:s,s:s,s:s}", "password", "p", "policies", "p1",
				       "ttl", "5m"));
	assert_int_equal(at_do(&t, LOP_READ, "users/a", NULL), 0);
	assert_int_equal(json_integer_value(at_data(&t, "ttl")), 300);
	assert_int_equal(json_integer_value(at_data(&t, "token_ttl")), 300);
	assert_true(json_equal(at_data(&t, "policies"), at_data(&t, "token_policies")));
	/* writing the new name retires the legacy echo */
	create_user(&t, "a", json_pack("{s:s}", "token_policies", "p2"));
	assert_int_equal(at_do(&t, LOP_READ, "users/a", NULL), 0);
	assert_null(at_data(&t, "policies"));
	assert_non_null(at_data(&t, "ttl"));
	at_close(&t);
}

static void test_auth_userpass__failures_uniform(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	create_user(&t, "carol", json_pack("{s:s}", "password", "right"));
	unsigned long before = kdf_runs;
	assert_int_equal(login(&t, "carol", "wrong"), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid username or password");
	assert_null(t.resp.auth);
	assert_int_equal(kdf_runs - before, 1);
	before = kdf_runs;
	assert_int_equal(login(&t, "nobody", "wrong"), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid username or password");
	/* the unknown user costs one KDF run too: same time as a wrong password */
	assert_int_equal(kdf_runs - before, 1);
	assert_int_equal(at_do(&t, LOP_UPDATE, "login/carol", json_object()), VERR_INVALID);
	at_close(&t);
}

struct login_arg {
	struct at *t;
	int rc;
	int done;
};

static void *login_thread(void *p)
{
	struct login_arg *a = p;
	char path[] = "login/par";
	json_t *data = json_pack("{s:s}", "password", "pw");
	struct logical_response resp = {0};
	struct verr err = {0};
	struct logical_request req = {.op = LOP_UPDATE, .rel_path = path, .data = data,
				      .storage = &a->t->view, .backend = a->t->inst,
				      .remote_addr = "127.0.0.1"};
	a->rc = framework_handle(a->t->ops->paths(a->t->inst), &req, &resp, &err);
	logical_response_reset(&resp);
	json_decref(data);
	__atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_auth_userpass__kdf_not_serialised(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	create_user(&t, "par", json_pack("{s:s}", "password", "pw"));
	/* occupy one KDF slot, as a login in progress would; another login
	 * must still complete (a global lock around the KDF would block it) */
	gate_enter();
	struct login_arg a = {.t = &t};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, login_thread, &a), 0);
	for (int i = 0; i < 3000 && !__atomic_load_n(&a.done, __ATOMIC_SEQ_CST); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	int done = __atomic_load_n(&a.done, __ATOMIC_SEQ_CST);
	gate_leave();
	pthread_join(th, NULL);
	assert_true(done);
	assert_int_equal(a.rc, 0);
	at_close(&t);
}

static void test_auth_userpass__bound_cidrs(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	create_user(&t, "far", json_pack("{s:s,s:s}", "password", "pw", "token_bound_cidrs",
					 "10.0.0.0/8"));
	assert_int_equal(login(&t, "far", "pw"), VERR_DENIED);
	t.remote_addr = "10.9.8.7";
	assert_int_equal(login(&t, "far", "pw"), 0);
	assert_int_equal(json_array_size(t.resp.auth->bound_cidrs), 1);
	t.remote_addr = "::ffff:10.9.8.7"; /* dual-stack listener */
	assert_int_equal(login(&t, "far", "pw"), 0);
	at_close(&t);
}

static void test_auth_userpass__bcrypt_password_hash(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof(setting)));
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h = crypt_rn("s3cret", setting, cd, (int)sizeof(*cd));
	assert_non_null(h);
	create_user(&t, "legacy", json_pack("{s:s}", "password_hash", h));
	free(cd);
	assert_int_equal(login(&t, "legacy", "s3cret"), 0);
	assert_int_equal(login(&t, "legacy", "s3creT"), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid username or password");
	at_close(&t);
}

static void test_auth_userpass__renew(void **state)
{
	struct at t;
	at_open(&t, &userpass_backend_ops);
	create_user(&t, "dan", json_pack("{s:s,s:s,s:s}", "password", "pw", "token_policies", "a",
					 "token_ttl", "10m"));
	assert_int_equal(login(&t, "dan", "pw"), 0);
	json_t *internal = json_deep_copy(t.resp.auth->internal);
	assert_int_equal(at_renew(&t, json_incref(internal)), 0);
	assert_int_equal(t.resp.auth->ttl, 600);
	/* a new TTL applies at the next renewal */
	create_user(&t, "dan", json_pack("{s:s}", "token_ttl", "20m"));
	assert_int_equal(at_renew(&t, json_incref(internal)), 0);
	assert_int_equal(t.resp.auth->ttl, 1200);
	/* changed policies or a deleted user stop renewal */
	create_user(&t, "dan", json_pack("{s:s}", "token_policies", "a,b"));
	assert_int_equal(at_renew(&t, json_incref(internal)), VERR_DENIED);
	create_user(&t, "dan", json_pack("{s:s}", "token_policies", "a,default"));
	assert_int_equal(at_renew(&t, json_incref(internal)), 0);
	assert_int_equal(at_do(&t, LOP_DELETE, "users/dan", NULL), 0);
	assert_int_equal(at_renew(&t, json_incref(internal)), VERR_DENIED);
	json_decref(internal);
	at_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_userpass__create_read_login),
		cmocka_unit_test(test_auth_userpass__validation),
		cmocka_unit_test(test_auth_userpass__failures_uniform),
		cmocka_unit_test(test_auth_userpass__kdf_not_serialised),
		cmocka_unit_test(test_auth_userpass__bound_cidrs),
		cmocka_unit_test(test_auth_userpass__bcrypt_password_hash),
		cmocka_unit_test(test_auth_userpass__renew),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
