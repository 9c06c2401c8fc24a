/*
 * Unit tests for the AppRole auth method (src/auth/approle.c): roles, role
 * IDs, secret IDs (hashed storage, use counts, TTLs, CIDRs), login, the
 * one-use race, persistence of the HMAC key, renewal and tidy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth_helpers.h"

static void role(struct at *t, const char *name, json_t *body)
{
	char path[128];
	snprintf(path, sizeof(path), "role/%s", name);
	int rc = at_do(t, LOP_UPDATE, path, body);
	if (rc)
		print_error("role %s: %s\n", name, t->err.msg);
	assert_int_equal(rc, 0);
}

static char *role_id(struct at *t, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "role/%s/role-id", name);
	assert_int_equal(at_do(t, LOP_READ, path, NULL), 0);
	return strdup(at_str(t, "role_id"));
}

/* returns the secret_id (malloc'd); accessor copied to acc if non-NULL */
static char *secret(struct at *t, const char *name, json_t *body, char acc[64])
{
	char path[128];
	snprintf(path, sizeof(path), "role/%s/secret-id", name);
	int rc = at_do(t, LOP_UPDATE, path, body);
	if (rc)
		print_error("secret %s: %s\n", name, t->err.msg);
	assert_int_equal(rc, 0);
	if (acc)
		snprintf(acc, 64, "%s", at_str(t, "secret_id_accessor"));
	return strdup(at_str(t, "secret_id"));
}

/* Is `needle` in any key or value under prefix (recursively)? */
static bool stored_anywhere(struct storage_view *v, const char *prefix, const char *needle)
{
	char **keys = NULL;
	size_t n = 0;
	bool found = false;
	assert_int_equal(view_list(v, prefix, &keys, &n, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		char full[512];
		snprintf(full, sizeof(full), "%s%s", prefix, keys[i]);
		if (strstr(full, needle))
			found = true;
		if (full[strlen(full) - 1] == '/') {
			found = found || stored_anywhere(v, full, needle);
		} else {
			uint8_t *val = NULL;
			size_t len = 0;
			assert_int_equal(view_get(v, full, &val, &len, NULL), 0);
			if (val && memmem(val, len, needle, strlen(needle)))
				found = true;
			free(val);
		}
		free(keys[i]);
	}
	free(keys);
	return found;
}

static int login(struct at *t, const char *rid, const char *sid)
{
	json_t *b = json_pack("{s:s}", "role_id", rid);
	if (sid)
		json_object_set_new(b, "secret_id", json_string(sid));
	return at_do(t, LOP_UPDATE, "login", b);
}

static void test_auth_approle__role_and_login(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "CI", json_pack("{s:s,s:s,s:i}", "token_policies", "a,b", "token_ttl", "5m",
				 "secret_id_num_uses", 3));
	assert_int_equal(at_do(&t, LOP_READ, "role/ci", NULL), 0);
	assert_true(json_is_true(at_data(&t, "bind_secret_id")));
	assert_int_equal(json_integer_value(at_data(&t, "secret_id_num_uses")), 3);
	assert_int_equal(json_integer_value(at_data(&t, "token_ttl")), 300);
	assert_null(at_data(&t, "role_id"));
	char *rid = role_id(&t, "ci");
	assert_int_equal(strlen(rid), 36);

	char acc[64];
	char *sid = secret(&t, "ci", json_pack("{s:s}", "metadata", "{\"env\":\"prod\"}"), acc);
	assert_int_equal(json_integer_value(at_data(&t, "secret_id_num_uses")), 3);
	/* the secret ID is stored nowhere in the clear (keys or values) */
	assert_false(stored_anywhere(&t.view, "", sid));
	assert_true(stored_anywhere(&t.view, "", "prod")); /* the walk does see values */

	assert_int_equal(login(&t, rid, sid), 0);
	struct logical_auth *a = t.resp.auth;
	assert_non_null(a);
	assert_int_equal(a->ttl, 300);
	assert_int_equal(json_array_size(a->policies), 2);
	assert_string_equal(json_string_value(json_object_get(a->metadata, "env")), "prod");
	assert_string_equal(json_string_value(json_object_get(a->metadata, "role_name")), "ci");
	assert_string_equal(a->alias_name, rid);

	assert_int_equal(at_do(&t, LOP_UPDATE, "role/ci/secret-id/lookup",
			       json_pack("{s:s}", "secret_id", sid)), 0);
	assert_int_equal(json_integer_value(at_data(&t, "secret_id_num_uses")), 2);
	assert_string_equal(at_str(&t, "secret_id_accessor"), acc);
	assert_string_equal(at_str(&t, "expiration_time"), "0001-01-01T00:00:00Z");

	/* failures: no oracle */
	assert_int_equal(login(&t, rid, "wrong"), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid role or secret ID");
	assert_int_equal(login(&t, "wrong", sid), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid role or secret ID");
	assert_int_equal(login(&t, rid, NULL), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing secret_id");

	/* uses run out: the last login deletes it */
	assert_int_equal(login(&t, rid, sid), 0);
	assert_int_equal(login(&t, rid, sid), 0);
	assert_int_equal(login(&t, rid, sid), VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_LIST, "role/ci/secret-id", NULL), VERR_NOT_FOUND);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/ci/secret-id-accessor/lookup",
			       json_pack("{s:s}", "secret_id_accessor", acc)), VERR_NOT_FOUND);

	/* limits come from the role */
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/ci/secret-id", json_pack("{s:i}", "num_uses", 0)),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/nope/secret-id", NULL), VERR_INVALID);
	free(sid);
	free(rid);
	at_close(&t);
}

static void test_auth_approle__role_id_and_delete(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "a", json_pack("{s:s}", "role_id", "custom-a"));
	role(&t, "b", NULL);
	char *sid = secret(&t, "a", NULL, NULL);
	assert_int_equal(login(&t, "custom-a", sid), 0);
	/* role IDs are unique */
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/b/role-id", json_pack("{s:s}", "role_id", "custom-a")),
			 VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/a/role-id", json_pack("{s:s}", "role_id", "new-a")), 0);
	assert_int_equal(login(&t, "custom-a", sid), VERR_INVALID);
	assert_int_equal(login(&t, "new-a", sid), 0);
	/* a secret of role a does not log in as role b */
	char *rb = role_id(&t, "b");
	assert_int_equal(login(&t, rb, sid), VERR_INVALID);
	/* the HMAC key survives re-initialisation (unseal) */
	at_reinit(&t);
	assert_int_equal(login(&t, "new-a", sid), 0);
	/* deleting the role removes its secrets and role ID */
	assert_int_equal(at_do(&t, LOP_DELETE, "role/a", NULL), 0);
	role(&t, "a", json_pack("{s:s}", "role_id", "new-a"));
	assert_int_equal(login(&t, "new-a", sid), VERR_INVALID);
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(view_list(&t.view, "accessor/", &keys, &n, NULL), 0);
	assert_int_equal(n, 0);
	free(keys);
	/* bind_secret_id=false needs another constraint */
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/c", json_pack("{s:b}", "bind_secret_id", 0)),
			 VERR_INVALID);
	role(&t, "c", json_pack("{s:b,s:s}", "bind_secret_id", 0, "secret_id_bound_cidrs", "127.0.0.0/8"));
	char *rc_ = role_id(&t, "c");
	assert_int_equal(login(&t, rc_, NULL), 0);
	free(rc_);
	free(rb);
	free(sid);
	at_close(&t);
}

static void test_auth_approle__ttl_and_tidy(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "r", json_pack("{s:s}", "secret_id_ttl", "1h"));
	char *rid = role_id(&t, "r");
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/secret-id", json_pack("{s:s}", "ttl", "2h")),
			 VERR_INVALID);
	char acc[64];
	char *s1 = secret(&t, "r", json_pack("{s:i}", "ttl", 1), acc);
	char *s2 = secret(&t, "r", json_pack("{s:i}", "ttl", 1), NULL);
	char *s3 = secret(&t, "r", NULL, NULL);
	assert_int_equal(json_integer_value(at_data(&t, "secret_id_ttl")), 3600);
	sleep(2);
	assert_int_equal(login(&t, rid, s1), VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "tidy/secret-id", NULL), 0);
	assert_non_null(t.resp.warnings);
	assert_int_equal(login(&t, rid, s2), VERR_INVALID);
	assert_int_equal(login(&t, rid, s3), 0);
	assert_int_equal(at_do(&t, LOP_LIST, "role/r/secret-id", NULL), 0);
	assert_int_equal(json_array_size(at_data(&t, "keys")), 1);
	free(s1);
	free(s2);
	free(s3);
	free(rid);
	at_close(&t);
}

static void test_auth_approle__cidrs(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "far", json_pack("{s:s}", "secret_id_bound_cidrs", "10.0.0.0/8"));
	char *rid = role_id(&t, "far");
	char *sid = secret(&t, "far", NULL, NULL);
	assert_int_equal(login(&t, rid, sid), VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "unauthorized"));
	t.remote_addr = "10.1.2.3";
	assert_int_equal(login(&t, rid, sid), 0);
	t.remote_addr = "::ffff:10.1.2.3";
	assert_int_equal(login(&t, rid, sid), 0);
	/* a secret's cidr_list must lie inside the role's */
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/far/secret-id",
			       json_pack("{s:s}", "cidr_list", "192.168.0.0/16")), VERR_INVALID);
	char *narrow = secret(&t, "far", json_pack("{s:s}", "cidr_list", "10.1.0.0/16"), NULL);
	t.remote_addr = "10.2.0.1";
	assert_int_equal(login(&t, rid, narrow), VERR_INVALID);
	t.remote_addr = "10.1.9.9";
	assert_int_equal(login(&t, rid, narrow), 0);
	/* token_bound_cidrs of the secret override the role's and bind the token */
	role(&t, "tok", json_pack("{s:s}", "token_bound_cidrs", "10.0.0.0/8"));
	char *rt = role_id(&t, "tok");
	char *st = secret(&t, "tok", json_pack("{s:s}", "token_bound_cidrs", "10.1.0.0/16"), NULL);
	t.remote_addr = "10.1.0.5";
	assert_int_equal(login(&t, rt, st), 0);
	assert_string_equal(json_string_value(json_array_get(t.resp.auth->bound_cidrs, 0)),
			    "10.1.0.0/16");
	t.remote_addr = "10.2.0.5";
	assert_int_equal(login(&t, rt, st), VERR_DENIED);
	free(rt);
	free(st);
	free(narrow);
	free(sid);
	free(rid);
	at_close(&t);
}

struct race {
	struct at *t;
	const char *rid, *sid;
	int ok;
};

static void *race_login(void *p)
{
	struct race *r = p;
	json_t *b = json_pack("{s:s,s:s}", "role_id", r->rid, "secret_id", r->sid);
	struct logical_response resp = {0};
	struct verr err = {0};
	struct logical_request req = {.op = LOP_UPDATE, .rel_path = "login", .data = b,
				      .storage = &r->t->view, .backend = r->t->inst,
				      .remote_addr = "127.0.0.1"};
	int rc = framework_handle(r->t->ops->paths(r->t->inst), &req, &resp, &err);
	if (rc == 0 && resp.auth)
		__atomic_add_fetch(&r->ok, 1, __ATOMIC_SEQ_CST);
	logical_response_reset(&resp);
	json_decref(b);
	return NULL;
}

static void test_auth_approle__last_use_race(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "race", json_pack("{s:i}", "secret_id_num_uses", 2));
	char *rid = role_id(&t, "race");
	for (int round = 0; round < 20; round++) {
		char *sid = secret(&t, "race", json_pack("{s:i}", "num_uses", 1), NULL);
		struct race r = {.t = &t, .rid = rid, .sid = sid};
		pthread_t th[8];
		for (int i = 0; i < 8; i++)
			assert_int_equal(pthread_create(&th[i], NULL, race_login, &r), 0);
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(r.ok, 1);
		free(sid);
	}
	free(rid);
	at_close(&t);
}

static void test_auth_approle__renew(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "r", json_pack("{s:s}", "token_ttl", "1m"));
	char *rid = role_id(&t, "r");
	char *sid = secret(&t, "r", NULL, NULL);
	assert_int_equal(login(&t, rid, sid), 0);
	json_t *internal = json_deep_copy(t.resp.auth->internal);
	role(&t, "r", json_pack("{s:s,s:s}", "token_ttl", "2m", "token_period", "1h"));
	assert_int_equal(at_renew(&t, json_incref(internal)), 0);
	assert_int_equal(t.resp.auth->ttl, 120);
	assert_int_equal(t.resp.auth->period, 3600);
	assert_int_equal(at_do(&t, LOP_DELETE, "role/r", NULL), 0);
	assert_int_equal(at_renew(&t, json_incref(internal)), VERR_DENIED);
	json_decref(internal);
	free(sid);
	free(rid);
	at_close(&t);
}

static void test_auth_approle__custom_and_destroy(void **state)
{
	struct at t;
	at_open(&t, &approle_backend_ops);
	role(&t, "r", NULL);
	char *rid = role_id(&t, "r");
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/custom-secret-id",
			       json_pack("{s:s,s:o}", "secret_id", "push-secret", "metadata",
					 json_pack("{s:s}", "k", "v"))), 0);
	char acc[64];
	snprintf(acc, sizeof(acc), "%s", at_str(&t, "secret_id_accessor"));
	/* the same custom secret twice is refused */
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/custom-secret-id",
			       json_pack("{s:s}", "secret_id", "push-secret")), VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/custom-secret-id",
			       json_pack("{s:s,s:s}", "secret_id", "x", "metadata", "not json")),
			 VERR_INVALID);
	assert_int_equal(login(&t, rid, "push-secret"), 0);
	assert_string_equal(json_string_value(json_object_get(t.resp.auth->metadata, "k")), "v");
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/secret-id-accessor/destroy",
			       json_pack("{s:s}", "secret_id_accessor", acc)), 0);
	assert_int_equal(login(&t, rid, "push-secret"), VERR_INVALID);
	char *sid = secret(&t, "r", NULL, NULL);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/secret-id/destroy",
			       json_pack("{s:s}", "secret_id", sid)), 0);
	assert_int_equal(login(&t, rid, sid), VERR_INVALID);
	assert_int_equal(at_do(&t, LOP_UPDATE, "role/r/secret-id/lookup",
			       json_pack("{s:s}", "secret_id", sid)), VERR_NOT_FOUND);
	free(sid);
	free(rid);
	at_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_approle__role_and_login),
		cmocka_unit_test(test_auth_approle__role_id_and_delete),
		cmocka_unit_test(test_auth_approle__ttl_and_tidy),
		cmocka_unit_test(test_auth_approle__cidrs),
		cmocka_unit_test(test_auth_approle__last_use_race),
		cmocka_unit_test(test_auth_approle__renew),
		cmocka_unit_test(test_auth_approle__custom_and_destroy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
