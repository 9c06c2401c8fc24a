/*
 * Unit tests for the request pipeline (src/core/pipeline.c) through
 * core_handle_request on a real core: authentication, Vault's create/update
 * resolution before the ACL (the same framework dispatch engines are tested
 * with), field errors reported only after the ACL, sudo paths,
 * unauthenticated paths, leases for secrets, and fail-closed audit: a
 * response that no device can record is withheld and the token or lease it
 * created is revoked.
 */
#include "core_helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "audit/audit.h"
#include "core/token.h"
#include "secrets/secrets.h"

/* ---- a test engine ---- */

static _Atomic int g_last_op;

static int pt_exists(struct logical_request *req, struct verr *err)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = view_get(req->storage, request_str(req, "name"), &v, &n, err);
	free(v);
	return rc ? rc : v != NULL;
}

static int pt_write(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	atomic_store(&g_last_op, req->op);
	return view_put(req->storage, request_str(req, "name"), (const uint8_t *)"x", 1, err);
}

static int pt_read(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s,s:I}", "secret", "s3cr3t-value", "n", (json_int_t)request_int(req, "n"));
	return 0;
}

static int pt_login(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->auth = calloc(1, sizeof(*resp->auth));
	resp->auth->policies = json_pack("[s]", "default");
	resp->auth->display_name = strdup("tester");
	resp->auth->ttl = 600;
	resp->auth->renewable = true;
	return 0;
}

static int pt_creds(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s}", "password", "dynamic-pw");
	resp->secret = calloc(1, sizeof(*resp->secret));
	resp->secret->ttl = 60;
	resp->secret->renewable = true;
	return 0;
}

static int pt_revoke(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	return 0;
}

static const struct field_def name_fields[] = {
	{"name", FT_STRING, NULL, "", false},
	{"n", FT_INT, NULL, "", false},
	{0},
};

static const struct path_def pt_paths[] = {
	{.pattern = "obj/{name}", .fields = name_fields, .exists = pt_exists,
	 .ops = {{LOP_CREATE, pt_write}, {LOP_UPDATE, pt_write}, {LOP_READ, pt_read}}},
	{.pattern = "login", .unauthenticated = true, .ops = {{LOP_UPDATE, pt_login}}},
	{.pattern = "creds", .ops = {{LOP_READ, pt_creds}}},
	{0},
};

static const struct path_def *pt_table(void *inst)
{
	return pt_paths;
}

static int pt_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	return 0;
}

static const struct backend_ops pt_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "pipetest",
	.init = pt_init,
	.paths = pt_table,
	.revoke = pt_revoke,
};

/* ---- an audit device that records requests and refuses responses on cue ---- */

static _Atomic bool g_fail_responses;
static _Atomic int g_lines;

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
	const char *t = json_string_value(json_object_get(entry, "type"));
	*out = strdup(t ? t : "?");
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
	atomic_fetch_add(&g_lines, 1);
	return 0;
}

static void ad_free(void *dev)
{
	free(dev);
}

static const struct audit_device_ops ad_ops = {
	.type = "testdev",
	.new = ad_new,
	.format = ad_format,
	.format_entry = ad_format_entry,
	.hash = ad_hash,
	.log = ad_log,
	.free = ad_free,
};

static const struct backend_ops *const registry[] = {
	&cubbyhole_backend_ops, &token_backend_ops, &pt_ops, NULL,
};
static const struct audit_device_ops *const audit_registry[] = {&ad_ops, NULL};

#define fx solo

static int setup(void **state)
{
	struct fx *f = solo_open(registry, audit_registry, 0);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "sys/mounts/pt", "{\"type\":\"pipetest\"}"), 0);
	atomic_store(&g_fail_responses, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	solo_close(*state);
	return 0;
}

/* A token holding only the policy text given. Caller frees. */
static char *token_with(struct fx *f, const char *name, const char *policy_hcl)
{
	json_t *body = json_pack("{s:s}", "policy", policy_hcl);
	char *b = json_dumps(body, 0);
	char path[128];
	snprintf(path, sizeof(path), "sys/policies/acl/%s", name);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, path, b), 0);
	free(b);
	json_decref(body);
	char req[128];
	snprintf(req, sizeof(req), "{\"policies\":[\"%s\"]}", name);
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, f->root, LOP_UPDATE, "auth/token/create", req, &resp, &err), 0);
	char *tok = strdup(json_string_value(json_object_get(resp.auth_out, "client_token")));
	logical_response_reset(&resp);
	return tok;
}

static void test_core_pipeline__authentication(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, NULL, LOP_READ, "pt/obj/a", NULL, &resp, &err), VERR_DENIED);
	assert_string_equal(err.msg, "permission denied");
	logical_response_reset(&resp);
	assert_int_equal(node_do(&f->n, "s.notatoken00000000000000", LOP_READ, "pt/obj/a", NULL),
			 VERR_DENIED);
	assert_int_equal(node_do(&f->n, f->root, LOP_READ, "pt/obj/a", NULL), 0);
	/* unauthenticated paths need no token */
	assert_int_equal(node_req(&f->n, NULL, LOP_UPDATE, "pt/login", NULL, &resp, &err), 0);
	assert_non_null(json_object_get(resp.auth_out, "client_token"));
	logical_response_reset(&resp);
	/* outside any mount */
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "nomount/x", NULL, &resp, &err),
			 VERR_NOT_FOUND);
	assert_string_equal(err.msg, "no handler for route \"nomount/x\". route entry not found.");
	logical_response_reset(&resp);
}

/* POST/PUT becomes create or update by the path's existence check, before
 * the ACL: a create-only policy may create but not overwrite. */
static void test_core_pipeline__create_vs_update_before_acl(void **state)
{
	struct fx *f = *state;
	char *tok = token_with(f, "creator", "path \"pt/obj/*\" { capabilities = [\"create\"] }");
	assert_int_equal(node_do(&f->n, tok, LOP_UPDATE, "pt/obj/new", NULL), 0);
	assert_int_equal(atomic_load(&g_last_op), LOP_CREATE);
	assert_int_equal(node_do(&f->n, tok, LOP_UPDATE, "pt/obj/new", NULL), VERR_DENIED);
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "pt/obj/new", NULL), 0);
	assert_int_equal(atomic_load(&g_last_op), LOP_UPDATE);
	free(tok);
}

/* A bad field is a 400 only for a caller who may use the path. */
static void test_core_pipeline__field_errors_after_acl(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, NULL, LOP_READ, "pt/obj/a", "{\"n\":\"abc\"}", &resp, &err),
			 VERR_DENIED);
	logical_response_reset(&resp);
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "pt/obj/a", "{\"n\":\"abc\"}", &resp, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, "error converting input for field \"n\": expected an integer");
	logical_response_reset(&resp);
}

static void test_core_pipeline__sudo_paths(void **state)
{
	struct fx *f = *state;
	char *plain = token_with(f, "plain", "path \"sys/audit\" { capabilities = [\"read\"] }");
	char *sudo = token_with(f, "sudoer", "path \"sys/audit\" { capabilities = [\"read\", \"sudo\"] }");
	assert_int_equal(node_do(&f->n, plain, LOP_READ, "sys/audit", NULL), VERR_DENIED);
	assert_int_equal(node_do(&f->n, sudo, LOP_READ, "sys/audit", NULL), 0);
	free(plain);
	free(sudo);
}

static void test_core_pipeline__secrets_get_leases(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "pt/creds", NULL, &resp, &err), 0);
	const char *id = json_string_value(json_object_get(resp.lease_out, "lease_id"));
	assert_non_null(id);
	assert_int_equal(strncmp(id, "pt/creds/", 9), 0);
	assert_int_equal(json_integer_value(json_object_get(resp.lease_out, "lease_duration")), 60);
	logical_response_reset(&resp);
}

static int64_t count_accessors(struct fx *f)
{
	struct logical_response resp;
	struct verr err;
	assert_int_equal(node_req(&f->n, f->root, LOP_LIST, "auth/token/accessors", NULL, &resp, &err), 0);
	int64_t n = (int64_t)json_array_size(json_object_get(resp.data, "keys"));
	logical_response_reset(&resp);
	return n;
}

static int64_t count_leases(struct fx *f)
{
	struct logical_response resp;
	struct verr err;
	int rc = node_req(&f->n, f->root, LOP_LIST, "sys/leases/lookup/pt/creds", NULL, &resp, &err);
	int64_t n = rc ? 0 : (int64_t)json_array_size(json_object_get(resp.data, "keys"));
	logical_response_reset(&resp);
	return n;
}

static void test_core_pipeline__unaudited_response_is_withheld(void **state)
{
	struct fx *f = *state;
	assert_int_equal(node_do(&f->n, f->root, LOP_UPDATE, "sys/audit/t", "{\"type\":\"testdev\"}"), 0);
	int64_t tokens = count_accessors(f), leases = count_leases(f);
	atomic_store(&g_fail_responses, true);

	struct logical_response resp;
	struct verr err;
	/* a secret read: nothing of the data leaves */
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "pt/obj/a", NULL, &resp, &err), VERR_INTERNAL);
	assert_string_equal(err.msg, "no audit device could record the response; it was withheld");
	assert_null(resp.data);
	logical_response_reset(&resp);
	/* a login: no token out, and none left behind */
	assert_int_equal(node_req(&f->n, NULL, LOP_UPDATE, "pt/login", NULL, &resp, &err), VERR_INTERNAL);
	assert_null(resp.auth_out);
	logical_response_reset(&resp);
	/* a token create, and a lease */
	assert_int_equal(node_req(&f->n, f->root, LOP_UPDATE, "auth/token/create", NULL, &resp, &err),
			 VERR_INTERNAL);
	assert_null(resp.auth_out);
	logical_response_reset(&resp);
	assert_int_equal(node_req(&f->n, f->root, LOP_READ, "pt/creds", NULL, &resp, &err), VERR_INTERNAL);
	assert_null(resp.data);
	assert_null(resp.lease_out);
	logical_response_reset(&resp);

	atomic_store(&g_fail_responses, false);
	assert_int_equal(count_accessors(f), tokens);
	assert_int_equal(count_leases(f), leases);
	/* and the device records again once it can */
	int before = atomic_load(&g_lines);
	assert_int_equal(node_do(&f->n, f->root, LOP_READ, "pt/obj/a", NULL), 0);
	assert_true(atomic_load(&g_lines) >= before + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_pipeline__authentication, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_pipeline__create_vs_update_before_acl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_pipeline__field_errors_after_acl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_pipeline__sudo_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_pipeline__secrets_get_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_pipeline__unaudited_response_is_withheld, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
