/*
 * Unit tests for src/auth/auth_common.c: policy sanitising and equivalence,
 * the token_* config (update, validation, read-back with legacy names,
 * logical_auth filling), and the id/time helpers.
 */
#include <stdio.h>
#include <stdlib.h>

#include "auth/auth_helpers.h"
#include "util/rand.h"

static const struct field_def fields[] = {
	AUTH_TOKEN_FIELD_DEFS,
	{"ttl", FT_DURATION, NULL, "", false},
	{"max_ttl", FT_DURATION, NULL, "", false},
	{"period", FT_DURATION, NULL, "", false},
	{"bound_cidrs", FT_STRSLICE, NULL, "", false},
	{0},
};

static json_t *cfg_apply(json_t *cfg, json_t *body, unsigned legacy, int *rc, struct verr *err)
{
	struct path_def def = {.pattern = "x", .fields = fields};
	struct logical_response resp = {0};
	json_t *f = NULL;
	assert_int_equal(framework_fields(&def, body, NULL, &f, &resp, NULL), 0);
	struct logical_request req = {.fields = f};
	*rc = auth_token_cfg_update(cfg, &req, legacy, err);
	json_decref(f);
	json_decref(body);
	logical_response_reset(&resp);
	return cfg;
}

static void test_auth_common__policies(void **state)
{
	json_t *in = json_pack("[s,s,s,s,s]", " Ops ", "dev", "", "ops", "Admin");
	json_t *out = auth_policies_sanitize(in);
	json_t *want = json_pack("[s,s,s]", "admin", "dev", "ops");
	assert_true(json_equal(out, want));
	json_t *with_default = json_pack("[s,s,s,s]", "default", "ops", "admin", "dev");
	assert_true(auth_policies_equivalent(out, with_default));
	json_t *less = json_pack("[s,s]", "admin", "dev");
	assert_false(auth_policies_equivalent(out, less));
	assert_null(auth_policies_sanitize(NULL));
	json_decref(in);
	json_decref(out);
	json_decref(want);
	json_decref(with_default);
	json_decref(less);
}

static void test_auth_common__token_cfg(void **state)
{
	int rc;
	struct verr err = {0};
	json_t *cfg = auth_token_cfg_new();
	cfg_apply(cfg, json_pack("{s:s,s:s,s:s,s:i,s:b,s:s,s:s,s:s}", "token_policies", "B,a",
				 "token_ttl", "10m", "token_max_ttl", "1h", "token_num_uses", 3,
				 "token_no_default_policy", 1, "token_bound_cidrs", "10.0.0.0/8",
				 "token_type", "service", "token_explicit_max_ttl", "2h"),
		  0, &rc, &err);
	assert_int_equal(rc, 0);
	json_t *d = json_object();
	auth_token_cfg_to_data(d, cfg);
	assert_int_equal(json_integer_value(json_object_get(d, "token_ttl")), 600);
	assert_int_equal(json_integer_value(json_object_get(d, "token_max_ttl")), 3600);
	assert_int_equal(json_integer_value(json_object_get(d, "token_explicit_max_ttl")), 7200);
	assert_string_equal(json_string_value(json_object_get(d, "token_type")), "service");
	assert_null(json_object_get(d, "policies"));
	assert_null(json_object_get(d, "_legacy"));
	json_decref(d);

	struct logical_auth a = {0};
	assert_int_equal(auth_token_cfg_fill(&a, cfg, NULL), 0);
	assert_int_equal(a.ttl, 600);
	assert_int_equal(a.max_ttl, 3600);
	assert_int_equal(a.explicit_max_ttl, 7200);
	assert_int_equal(a.num_uses, 3);
	assert_true(a.no_default_policy);
	assert_true(a.renewable);
	assert_string_equal(a.token_type, "service");
	assert_string_equal(json_string_value(json_array_get(a.policies, 0)), "a");
	assert_int_equal(json_array_size(a.bound_cidrs), 1);
	json_decref(a.policies);
	json_decref(a.bound_cidrs);
	free(a.token_type);

	/* validation */
	cfg_apply(cfg, json_pack("{s:s}", "token_ttl", "2h"), 0, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	assert_string_equal(err.msg, "'token_ttl' cannot be greater than 'token_max_ttl'");
	cfg_apply(cfg, json_pack("{s:i}", "token_num_uses", -2), 0, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	cfg_apply(cfg, json_pack("{s:s}", "token_type", "weird"), 0, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	cfg_apply(cfg, json_pack("{s:[s]}", "token_bound_cidrs", "300.0.0.0/8"), 0, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	json_decref(cfg);
}

static void test_auth_common__legacy_names(void **state)
{
	int rc;
	json_t *cfg = auth_token_cfg_new();
	/* a method that does not accept "period" ignores it; "policies" always */
	cfg_apply(cfg, json_pack("{s:s,s:s}", "policies", "p", "period", "1h"), 0, &rc, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(json_integer_value(json_object_get(cfg, "token_period")), 0);
	cfg_apply(cfg, json_pack("{s:s,s:s,s:s}", "period", "1h", "ttl", "5m", "bound_cidrs",
				 "127.0.0.1"),
		  AUTH_LEGACY_PERIOD | AUTH_LEGACY_TTL | AUTH_LEGACY_BOUND_CIDRS, &rc, NULL);
	assert_int_equal(rc, 0);
	json_t *d = json_object();
	auth_token_cfg_to_data(d, cfg);
	assert_int_equal(json_integer_value(json_object_get(d, "period")), 3600);
	assert_int_equal(json_integer_value(json_object_get(d, "token_period")), 3600);
	assert_int_equal(json_integer_value(json_object_get(d, "ttl")), 300);
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "policies"), 0)), "p");
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "bound_cidrs"), 0)),
			    "127.0.0.1");
	json_decref(d);
	json_decref(cfg);
}

static void test_auth_common__ids_and_times(void **state)
{
	char a[37], b[37], buf[64];
	assert_int_equal(rand_uuid(a, NULL), 0);
	assert_int_equal(rand_uuid(b, NULL), 0);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	assert_string_not_equal(a, b);
	auth_time_format(buf, sizeof(buf), 0, 0);
	assert_string_equal(buf, "0001-01-01T00:00:00Z");
	auth_time_format(buf, sizeof(buf), 1700000000, 5);
	assert_string_equal(buf, "2023-11-14T22:13:20.000000005Z");
	char name[] = "MiXeD";
	auth_lower(name);
	assert_string_equal(name, "mixed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_common__policies),
		cmocka_unit_test(test_auth_common__token_cfg),
		cmocka_unit_test(test_auth_common__legacy_names),
		cmocka_unit_test(test_auth_common__ids_and_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
