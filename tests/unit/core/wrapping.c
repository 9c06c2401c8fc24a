/*
 * Unit tests for response wrapping (src/core/wrapping.c) on a real core:
 * what the wrapping token's cubbyhole holds and that it goes with the
 * token (revoked or expired), the TTL rule between the request and a
 * handler, and fail-closed audit: a wrapped response no device can record
 * leaves neither the wrapping token nor the token it wrapped.
 */
#include "core_helpers.h"

#include <stdatomic.h>

#include "audit/audit.h"
#include "core/router.h"
#include "core/token.h"
#include "core/wrapping.h"
#include "secrets/secrets.h"

/* ---- a test engine: a secret read and a login ---- */

static int wt_read(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s}", "secret", "wrapped-value");
	return 0;
}

static int wt_login(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->auth = calloc(1, sizeof(*resp->auth));
	resp->auth->policies = json_pack("[s]", "default");
	resp->auth->ttl = 600;
	return 0;
}

static const struct path_def wt_paths[] = {
	{.pattern = "secret", .ops = {{LOP_READ, wt_read}}},
	{.pattern = "login", .unauthenticated = true, .ops = {{LOP_UPDATE, wt_login}}},
	{0},
};

static const struct path_def *wt_table(void *inst)
{
	return wt_paths;
}

static int wt_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	return 0;
}

static const struct backend_ops wt_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "wraptest",
	.init = wt_init,
	.paths = wt_table,
};

/* ---- an audit device that refuses responses on cue ---- */

static _Atomic bool g_fail_responses;

static int ad_new(void **out, const json_t *options, const struct audit_device_env *env,
		  struct verr *err)
{
	*out = calloc(1, 1);
	return 0;
}

static int ad_format_entry(char **out, size_t *len, void *dev, const struct audit_entry *e,
			   struct verr *err)
{
	*out = strdup(e->type);
	*len = strlen(*out);
	return 0;
}

static int ad_format(char **out, size_t *len, void *dev, const json_t *entry, struct verr *err)
{
	*out = strdup("entry");
	*len = strlen(*out);
	return 0;
}

static char *ad_hash(void *dev, const char *input)
{
	return strdup("hmac-sha256:00");
}

static int ad_log(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err)
{
	if (atomic_load(&g_fail_responses) && memmem(buf, len, "response", 8))
		return verr_set(err, VERR_INTERNAL, "disk full");
	return 0;
}

static void ad_free(void *dev)
{
	free(dev);
}

static const struct audit_device_ops ad_ops = {
	.type = "wrapdev",
	.new = ad_new,
	.format = ad_format,
	.format_entry = ad_format_entry,
	.hash = ad_hash,
	.log = ad_log,
	.free = ad_free,
};

static const struct backend_ops *const registry[] = {
	&cubbyhole_backend_ops, &token_backend_ops, &wt_ops, NULL,
};
static const struct audit_device_ops *const audit_registry[] = {&ad_ops, NULL};

static int setup(void **state)
{
	struct solo *f = solo_open(registry, audit_registry, 0);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "sys/mounts/wt", "{\"type\":\"wraptest\"}"), 0);
	atomic_store(&g_fail_responses, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	solo_close(*state);
	return 0;
}

/* A request with X-Vault-Wrap-TTL = wrap_ttl. */
static int wrapped_req(struct solo *f, const char *token, enum logical_op op, const char *path,
		       const char *body, int64_t wrap_ttl, struct logical_response *resp,
		       struct verr *err)
{
	memset(resp, 0, sizeof(*resp));
	verr_clear(err);
	json_t *data = body ? json_loads(body, 0, NULL) : json_object();
	struct logical_request r = {.op = op, .path = path, .data = data, .client_token = token,
				    .remote_addr = "127.0.0.1", .request_id = "req-1",
				    .wrap_ttl = wrap_ttl};
	int rc = core_handle_request(f->n.c, &r, resp, err);
	json_decref(data);
	return rc;
}

static int count_key(void *ctx, const char *key, struct verr *err)
{
	(*(int *)ctx)++;
	return 0;
}

/* Keys stored under the cubbyhole mount (every token's). */
static int cubby_keys(struct solo *f)
{
	struct mount_entry *m = router_route(f->n.c, "cubbyhole/");
	assert_non_null(m);
	char base[128];
	snprintf(base, sizeof(base), "logical/%s/", m->uuid);
	router_release(m);
	int n = 0;
	struct verr err = {0};
	assert_int_equal(physical_walk(f->store, base, "", count_key, &n, &err), 0);
	return n;
}

static int64_t count_accessors(struct solo *f)
{
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, f->root, LOP_LIST, "auth/token/accessors", NULL, &resp, &err), 0);
	int64_t n = (int64_t)json_array_size(json_object_get(resp.data, "keys"));
	logical_response_reset(&resp);
	return n;
}

static void test_core_wrapping__cubbyhole_goes_with_the_token(void **state)
{
	struct solo *f = *state;
	struct logical_response resp;
	struct verr err;
	assert_int_equal(cubby_keys(f), 0);
	assert_int_equal(wrapped_req(f, f->root, LOP_READ, "wt/secret", NULL, 1, &resp, &err), 0);
	assert_null(resp.data);
	assert_non_null(resp.wrap_info_out);
	assert_int_equal(json_integer_value(json_object_get(resp.wrap_info_out, "ttl")), 1);
	assert_string_equal(json_string_value(json_object_get(resp.wrap_info_out, "creation_path")),
			    "wt/secret");
	char *tok = strdup(json_string_value(json_object_get(resp.wrap_info_out, "token")));
	logical_response_reset(&resp);
	/* response + wrapinfo, and the secret is not stored in clear */
	assert_int_equal(cubby_keys(f), 2);

	/* the expiration manager revokes it, and its cubbyhole with it */
	for (int i = 0; i < 100 && cubby_keys(f) > 0; i++)
		usleep(50 * 1000);
	assert_int_equal(cubby_keys(f), 0);
	char body[128];
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", tok);
	assert_int_equal(node_req(&f->n, f->root, LOP_UPDATE, "sys/wrapping/unwrap", body, &resp, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, WRAPPING_INVALID_MSG);
	logical_response_reset(&resp);
	free(tok);

	/* an unwrap empties the cubbyhole at once */
	assert_int_equal(wrapped_req(f, f->root, LOP_READ, "wt/secret", NULL, 60, &resp, &err), 0);
	tok = strdup(json_string_value(json_object_get(resp.wrap_info_out, "token")));
	logical_response_reset(&resp);
	assert_int_equal(cubby_keys(f), 2);
	assert_int_equal(node_req(&f->n, tok, LOP_UPDATE, "sys/wrapping/unwrap", NULL, &resp, &err), 0);
	assert_true(resp.raw);
	json_t *inner = json_loadb(resp.raw_body, resp.raw_len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(inner, "data"), "secret")),
			    "wrapped-value");
	assert_string_equal(json_string_value(json_object_get(inner, "request_id")), "req-1");
	json_decref(inner);
	logical_response_reset(&resp);
	assert_int_equal(cubby_keys(f), 0);
	free(tok);
}

static void test_core_wrapping__ttl_rule(void **state)
{
	struct logical_request req = {0};
	struct logical_response resp = {0};
	assert_int_equal(wrapping_ttl(&req, &resp), 0);
	req.wrap_ttl = 60;
	assert_int_equal(wrapping_ttl(&req, &resp), 60);
	resp.wrap_ttl = 30; /* the handler's is shorter */
	assert_int_equal(wrapping_ttl(&req, &resp), 30);
	req.wrap_ttl = 10; /* the request's is shorter */
	assert_int_equal(wrapping_ttl(&req, &resp), 10);
	req.wrap_ttl = 0; /* only the handler asks */
	assert_int_equal(wrapping_ttl(&req, &resp), 30);
}

static void test_core_wrapping__nothing_to_wrap_is_not_wrapped(void **state)
{
	struct solo *f = *state;
	struct logical_response resp;
	struct verr err;
	/* a write with no response body: 204, no wrapping token made */
	int64_t before = count_accessors(f);
	assert_int_equal(wrapped_req(f, f->root, LOP_UPDATE, "sys/policy/p",
				     "{\"policy\":\"path \\\"a\\\" {capabilities=[\\\"read\\\"]}\"}", 60,
				     &resp, &err),
			 0);
	assert_null(resp.wrap_info_out);
	logical_response_reset(&resp);
	assert_int_equal(count_accessors(f), before);
}

static void test_core_wrapping__unaudited_wrap_leaves_no_token(void **state)
{
	struct solo *f = *state;
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "sys/audit/t", "{\"type\":\"wrapdev\"}"), 0);
	int64_t before = count_accessors(f);
	int cubby = cubby_keys(f);
	atomic_store(&g_fail_responses, true);
	struct logical_response resp;
	struct verr err;
	/* a wrapped login: neither the login token nor the wrapping token lives on */
	assert_int_equal(wrapped_req(f, NULL, LOP_UPDATE, "wt/login", NULL, 60, &resp, &err),
			 VERR_INTERNAL);
	assert_null(resp.wrap_info_out);
	assert_null(resp.auth_out);
	logical_response_reset(&resp);
	assert_int_equal(wrapped_req(f, f->root, LOP_READ, "wt/secret", NULL, 60, &resp, &err),
			 VERR_INTERNAL);
	assert_null(resp.wrap_info_out);
	logical_response_reset(&resp);
	atomic_store(&g_fail_responses, false);
	assert_int_equal(count_accessors(f), before);
	assert_int_equal(cubby_keys(f), cubby);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_wrapping__cubbyhole_goes_with_the_token, setup, teardown),
		cmocka_unit_test(test_core_wrapping__ttl_rule),
		cmocka_unit_test_setup_teardown(test_core_wrapping__nothing_to_wrap_is_not_wrapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_wrapping__unaudited_wrap_leaves_no_token, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
