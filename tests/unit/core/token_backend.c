/*
 * Unit tests for the auth/token/ backend (src/core/token_backend.c): the
 * requests go through the path-table framework exactly as the core would
 * dispatch them, with the caller resolved from its raw token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/token.h"

static struct token_store *g_ts;

static bool pol_exists(void *ctx, const char *name)
{
	return !strcmp(name, "default") || !strcmp(name, "web");
}

struct fx {
	struct physical *phys;
	struct storage_view view;
	char *root;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct verr err = {0};
	assert_int_equal(physical_inmem_new(&f->phys, NULL, &err), 0);
	storage_view_init(&f->view, f->phys, "sys/token/");
	struct token_store_opts o = {.policy_exists = pol_exists};
	assert_int_equal(token_store_new(&g_ts, &f->view, &o, &err), 0);
	assert_int_equal(token_store_root(g_ts, &f->root, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	token_free_raw(f->root);
	token_store_free(g_ts);
	g_ts = NULL;
	physical_close(f->phys);
	free(f);
	return 0;
}

/* Dispatch op on rel_path with body `data` (JSON text or NULL) as the
 * caller `raw`; sudo = the ACL granted sudo. Returns the handler's rc. */
static int call(enum logical_op op, const char *rel, const char *data, const char *raw,
		bool sudo, struct logical_response *resp, struct verr *err)
{
	struct token_entry *caller = NULL;
	struct logical_request req = {0};
	memset(resp, 0, sizeof(*resp));
	verr_clear(err);
	if (raw)
		assert_int_equal(token_store_lookup(g_ts, raw, &caller, err), 0);
	json_t *body = data ? json_loads(data, 0, NULL) : json_object();
	assert_non_null(body);
	void *inst = NULL;
	/* the router hands the token store over as core_private */
	struct mount_info mi = {.path = "auth/token/", .core_private = g_ts};
	assert_int_equal(token_backend_ops.init(&inst, &mi, err), 0);
	req.op = op;
	req.rel_path = rel;
	req.mount_path = "auth/token/";
	req.data = body;
	req.client_token = raw;
	req.token = caller;
	req.token_is_root = caller && json_array_size(caller->policies) == 1 &&
			    !strcmp(json_string_value(json_array_get(caller->policies, 0)), "root");
	req.sudo = sudo;
	req.backend = inst;
	int rc = framework_handle(token_backend_ops.paths(inst), &req, resp, err);
	json_decref(body);
	token_entry_free(caller);
	return rc;
}

/* Create a token as `parent` with body; returns the raw token (malloc'd). */
static char *create(const char *parent, const char *body, struct logical_response *resp)
{
	struct verr err = {0};
	int rc = call(LOP_UPDATE, "create", body, parent, false, resp, &err);
	if (rc)
		fail_msg("create failed: %s", err.msg);
	return strdup(json_string_value(json_object_get(resp->auth_out, "client_token")));
}

static const char *pol_str(json_t *arr, char *buf, size_t cap)
{
	char *s = json_dumps(arr, JSON_COMPACT);
	snprintf(buf, cap, "%s", s ? s : "");
	free(s);
	return buf;
}

static void test_core_token_backend__create_shape(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	char buf[256];
	char *t = create(f->root, "{\"policies\":[\"web\",\"stage\"],\"meta\":{\"user\":\"armon\"},"
				  "\"ttl\":\"1h\",\"renewable\":true,\"display_name\":\"ci job\"}", &resp);
	assert_null(resp.data);
	json_t *a = resp.auth_out;
	static const char *const keys[] = {
		"client_token", "accessor", "policies", "token_policies", "metadata",
		"lease_duration", "renewable", "entity_id", "token_type", "orphan",
		"mfa_requirement", "num_uses", NULL};
	for (int i = 0; keys[i]; i++)
		assert_non_null(json_object_get(a, keys[i]));
	assert_int_equal(json_object_size(a), 12);
	assert_string_equal(pol_str(json_object_get(a, "policies"), buf, sizeof(buf)),
			    "[\"default\",\"stage\",\"web\"]");
	assert_int_equal(json_integer_value(json_object_get(a, "lease_duration")), 3600);
	assert_true(json_is_true(json_object_get(a, "renewable")));
	assert_false(json_is_true(json_object_get(a, "orphan")));
	assert_string_equal(json_string_value(json_object_get(a, "token_type")), "service");
	/* Vault's missing-policy warning, only for the missing one */
	assert_int_equal(json_array_size(resp.warnings), 1);
	assert_string_equal(json_string_value(json_array_get(resp.warnings, 0)),
			    "Policy \"stage\" does not exist");
	logical_response_reset(&resp);

	struct verr err;
	assert_int_equal(call(LOP_READ, "lookup-self", NULL, t, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "display_name")), "token-ci-job");
	assert_string_equal(json_string_value(json_object_get(resp.data, "path")), "auth/token/create");
	assert_string_equal(json_string_value(json_object_get(resp.data, "id")), t);
	logical_response_reset(&resp);
	free(t);
}

static void test_core_token_backend__root_child_inherits(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	char buf[256];
	/* no policies from root: the child is a root token that never expires */
	char *t = create(f->root, "{}", &resp);
	assert_string_equal(pol_str(json_object_get(resp.auth_out, "policies"), buf, sizeof(buf)),
			    "[\"root\"]");
	assert_int_equal(json_integer_value(json_object_get(resp.auth_out, "lease_duration")), 0);
	assert_false(json_is_true(json_object_get(resp.auth_out, "renewable")));
	logical_response_reset(&resp);
	free(t);
}

static void test_core_token_backend__subset_rule(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char buf[256];
	char *parent = create(f->root, "{\"policies\":[\"web\"]}", &resp);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"policies\":[\"admin\"]}", parent, false,
			      &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "child policies must be subset of parent");
	logical_response_reset(&resp);
	/* the same request with sudo is fine */
	assert_int_equal(call(LOP_UPDATE, "create", "{\"policies\":[\"admin\"]}", parent, true,
			      &resp, &err), 0);
	logical_response_reset(&resp);
	/* a subset is fine; default follows the parent */
	char *child = create(parent, "{\"policies\":[\"web\"]}", &resp);
	assert_string_equal(pol_str(json_object_get(resp.auth_out, "policies"), buf, sizeof(buf)),
			    "[\"default\",\"web\"]");
	logical_response_reset(&resp);
	/* no policies: inherit the parent's */
	char *inh = create(parent, "{\"no_default_policy\":true}", &resp);
	assert_string_equal(pol_str(json_object_get(resp.auth_out, "policies"), buf, sizeof(buf)),
			    "[\"web\"]");
	logical_response_reset(&resp);
	/* a non-root parent cannot mint root */
	assert_int_equal(call(LOP_UPDATE, "create", "{\"policies\":[\"root\"]}", parent, true,
			      &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "root tokens may not be created without parent token being root");
	logical_response_reset(&resp);
	free(parent);
	free(child);
	free(inh);
}

static void test_core_token_backend__privileged_fields(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char *parent = create(f->root, "{\"policies\":[\"web\"]}", &resp);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"no_parent\":true}", parent, false, &resp,
			      &err), VERR_INVALID);
	assert_string_equal(err.msg, "root or sudo privileges required to create orphan token");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"period\":\"1h\"}", parent, false, &resp,
			      &err), VERR_INVALID);
	assert_string_equal(err.msg, "root or sudo privileges required to create periodic token");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"id\":\"custom\"}", parent, false, &resp,
			      &err), VERR_INVALID);
	assert_string_equal(err.msg, "root or sudo privileges required to specify token id");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"num_uses\":-1}", parent, false, &resp,
			      &err), VERR_INVALID);
	assert_string_equal(err.msg, "number of uses cannot be negative");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{\"ttl\":\"abc\"}", parent, false, &resp,
			      &err), VERR_INVALID);
	logical_response_reset(&resp);
	/* create-orphan needs no privilege */
	assert_int_equal(call(LOP_UPDATE, "create-orphan", "{}", parent, false, &resp, &err), 0);
	assert_true(json_is_true(json_object_get(resp.auth_out, "orphan")));
	logical_response_reset(&resp);
	/* root may pick the id */
	assert_int_equal(call(LOP_UPDATE, "create", "{\"id\":\"my-token\"}", f->root, false, &resp,
			      &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.auth_out, "client_token")),
			    "my-token");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_READ, "lookup-self", NULL, "my-token", false, &resp, &err), 0);
	logical_response_reset(&resp);
	/* a limited-use token cannot create children */
	char *lim = create(f->root, "{\"num_uses\":5}", &resp);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create", "{}", lim, false, &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "restricted use token cannot generate child tokens");
	logical_response_reset(&resp);
	free(lim);
	free(parent);
}

static void test_core_token_backend__lookup_flows(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char body[256];
	char *t = create(f->root, "{\"policies\":[\"web\"],\"ttl\":600}", &resp);
	char acc[64];
	snprintf(acc, sizeof(acc), "%s", json_string_value(json_object_get(resp.auth_out, "accessor")));
	logical_response_reset(&resp);

	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", t);
	assert_int_equal(call(LOP_UPDATE, "lookup", body, f->root, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "id")), t);
	assert_string_equal(json_string_value(json_object_get(resp.data, "accessor")), acc);
	assert_int_equal(json_integer_value(json_object_get(resp.data, "creation_ttl")), 600);
	logical_response_reset(&resp);

	assert_int_equal(call(LOP_UPDATE, "lookup", "{\"token\":\"s.nope\"}", f->root, false, &resp,
			      &err), VERR_DENIED);
	assert_string_equal(err.msg, "bad token");
	logical_response_reset(&resp);

	snprintf(body, sizeof(body), "{\"accessor\":\"%s\"}", acc);
	assert_int_equal(call(LOP_UPDATE, "lookup-accessor", body, f->root, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "id")), "");
	assert_string_equal(json_string_value(json_object_get(resp.data, "accessor")), acc);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "lookup-accessor", "{\"accessor\":\"zzz\"}", f->root,
			      false, &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid accessor");
	logical_response_reset(&resp);

	/* deprecated GET lookup/<token> */
	char rel[128];
	snprintf(rel, sizeof(rel), "lookup/%s", t);
	assert_int_equal(call(LOP_READ, rel, NULL, f->root, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "id")), t);
	logical_response_reset(&resp);
	free(t);
}

static void test_core_token_backend__renew_flows(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char body[256];
	char *t = create(f->root, "{\"policies\":[\"web\"],\"ttl\":\"10m\",\"explicit_max_ttl\":\"1h\"}", &resp);
	char acc[64];
	snprintf(acc, sizeof(acc), "%s", json_string_value(json_object_get(resp.auth_out, "accessor")));
	logical_response_reset(&resp);

	assert_int_equal(call(LOP_UPDATE, "renew-self", "{\"increment\":\"30m\"}", t, false, &resp,
			      &err), 0);
	assert_int_equal(json_integer_value(json_object_get(resp.auth_out, "lease_duration")), 1800);
	assert_string_equal(json_string_value(json_object_get(resp.auth_out, "client_token")), t);
	logical_response_reset(&resp);

	snprintf(body, sizeof(body), "{\"token\":\"%s\",\"increment\":\"2h\"}", t);
	assert_int_equal(call(LOP_UPDATE, "renew", body, f->root, false, &resp, &err), 0);
	int64_t ld = json_integer_value(json_object_get(resp.auth_out, "lease_duration"));
	assert_true(ld <= 3600 && ld >= 3590);
	assert_int_equal(json_array_size(resp.warnings), 1);
	logical_response_reset(&resp);

	snprintf(body, sizeof(body), "{\"accessor\":\"%s\"}", acc);
	assert_int_equal(call(LOP_UPDATE, "renew-accessor", body, f->root, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.auth_out, "client_token")), "");
	logical_response_reset(&resp);

	assert_int_equal(call(LOP_UPDATE, "renew", "{\"token\":\"s.nope\"}", f->root, false, &resp,
			      &err), VERR_INVALID);
	assert_string_equal(err.msg, "token not found");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "renew-self", "{}", f->root, false, &resp, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, "lease is not renewable");
	logical_response_reset(&resp);
	char *nr = create(f->root, "{\"policies\":[\"web\"],\"renewable\":false}", &resp);
	assert_false(json_is_true(json_object_get(resp.auth_out, "renewable")));
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "renew-self", "{}", nr, false, &resp, &err), VERR_INVALID);
	logical_response_reset(&resp);
	free(nr);
	free(t);
}

static int lookup_status(const char *raw)
{
	struct token_entry *te = NULL;
	int rc = token_store_lookup(g_ts, raw, &te, NULL);
	token_entry_free(te);
	return rc;
}

static void test_core_token_backend__revoke_flows(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char body[256];
	char *p = create(f->root, "{\"policies\":[\"web\"]}", &resp);
	logical_response_reset(&resp);
	char *c = create(p, "{}", &resp);
	logical_response_reset(&resp);
	char *g = create(c, "{}", &resp);
	logical_response_reset(&resp);

	/* revoke-orphan: needs root/sudo; children survive as orphans */
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", c);
	assert_int_equal(call(LOP_UPDATE, "revoke-orphan", body, p, false, &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "root or sudo privileges required to revoke and orphan");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "revoke-orphan", body, f->root, false, &resp, &err), 0);
	assert_null(resp.data);
	logical_response_reset(&resp);
	assert_int_equal(lookup_status(c), VERR_DENIED);
	assert_int_equal(lookup_status(g), 0);
	assert_int_equal(call(LOP_READ, "lookup-self", NULL, g, false, &resp, &err), 0);
	assert_true(json_is_true(json_object_get(resp.data, "orphan")));
	logical_response_reset(&resp);

	/* revoke: the whole subtree */
	char *c2 = create(p, "{}", &resp);
	logical_response_reset(&resp);
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", p);
	assert_int_equal(call(LOP_UPDATE, "revoke", body, f->root, false, &resp, &err), 0);
	assert_null(resp.data);
	logical_response_reset(&resp);
	assert_int_equal(lookup_status(p), VERR_DENIED);
	assert_int_equal(lookup_status(c2), VERR_DENIED);
	assert_int_equal(lookup_status(g), 0);
	/* unknown token: 204 as Vault */
	assert_int_equal(call(LOP_UPDATE, "revoke", body, f->root, false, &resp, &err), 0);
	logical_response_reset(&resp);

	/* revoke-accessor and revoke-self */
	char *x = create(f->root, "{}", &resp);
	char acc[64];
	snprintf(acc, sizeof(acc), "%s", json_string_value(json_object_get(resp.auth_out, "accessor")));
	logical_response_reset(&resp);
	snprintf(body, sizeof(body), "{\"accessor\":\"%s\"}", acc);
	assert_int_equal(call(LOP_UPDATE, "revoke-accessor", body, f->root, false, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(lookup_status(x), VERR_DENIED);
	assert_int_equal(call(LOP_UPDATE, "revoke-self", NULL, g, false, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(lookup_status(g), VERR_DENIED);
	free(p);
	free(c);
	free(c2);
	free(g);
	free(x);
}

static void test_core_token_backend__accessors(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char *t = create(f->root, "{}", &resp);
	char acc[64];
	snprintf(acc, sizeof(acc), "%s", json_string_value(json_object_get(resp.auth_out, "accessor")));
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_LIST, "accessors/", NULL, f->root, true, &resp, &err), 0);
	json_t *keys = json_object_get(resp.data, "keys");
	assert_int_equal(json_array_size(keys), 2); /* root + t */
	bool seen = false;
	size_t i;
	json_t *e;
	json_array_foreach(keys, i, e) seen |= !strcmp(json_string_value(e), acc);
	assert_true(seen);
	logical_response_reset(&resp);
	/* the path is sudo-protected for the core's ACL check */
	json_t *caps = NULL;
	const struct path_def *d = framework_match(token_backend_ops.paths(NULL), "accessors/", &caps);
	json_decref(caps);
	assert_non_null(d);
	assert_true(d->sudo);
	free(t);
}

static void test_core_token_backend__roles(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	char buf[256];
	assert_int_equal(call(LOP_UPDATE, "roles/nomad",
			      "{\"allowed_policies\":\"dev,web\",\"orphan\":true,\"period\":\"1h\","
			      "\"path_suffix\":\"v1\"}", f->root, false, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_READ, "roles/nomad", NULL, f->root, false, &resp, &err), 0);
	json_t *d = resp.data;
	assert_string_equal(json_string_value(json_object_get(d, "name")), "nomad");
	assert_string_equal(pol_str(json_object_get(d, "allowed_policies"), buf, sizeof(buf)),
			    "[\"dev\",\"web\"]");
	assert_true(json_is_true(json_object_get(d, "orphan")));
	assert_true(json_is_true(json_object_get(d, "renewable")));
	assert_int_equal(json_integer_value(json_object_get(d, "period")), 3600);
	assert_int_equal(json_integer_value(json_object_get(d, "token_period")), 3600);
	assert_string_equal(json_string_value(json_object_get(d, "token_type")), "default-service");
	assert_string_equal(json_string_value(json_object_get(d, "path_suffix")), "v1");
	logical_response_reset(&resp);
	/* update keeps unspecified fields */
	assert_int_equal(call(LOP_UPDATE, "roles/nomad", "{\"renewable\":false}", f->root, false,
			      &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_READ, "roles/nomad", NULL, f->root, false, &resp, &err), 0);
	assert_false(json_is_true(json_object_get(resp.data, "renewable")));
	assert_true(json_is_true(json_object_get(resp.data, "orphan")));
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_LIST, "roles/", NULL, f->root, false, &resp, &err), 0);
	assert_int_equal(json_array_size(json_object_get(resp.data, "keys")), 1);
	logical_response_reset(&resp);

	/* a non-root caller without dev can get dev through the role */
	char *p = create(f->root, "{\"policies\":[\"web\"]}", &resp);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create/nomad", "{\"policies\":[\"dev\"]}", p, false,
			      &resp, &err), 0);
	json_t *a = resp.auth_out;
	assert_string_equal(pol_str(json_object_get(a, "policies"), buf, sizeof(buf)),
			    "[\"default\",\"dev\"]");
	assert_true(json_is_true(json_object_get(a, "orphan")));
	assert_false(json_is_true(json_object_get(a, "renewable")));
	assert_int_equal(json_integer_value(json_object_get(a, "lease_duration")), 3600);
	char *rt = strdup(json_string_value(json_object_get(a, "client_token")));
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_READ, "lookup-self", NULL, rt, false, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "path")),
			    "auth/token/create/nomad/v1");
	assert_string_equal(json_string_value(json_object_get(resp.data, "role")), "nomad");
	assert_int_equal(json_integer_value(json_object_get(resp.data, "period")), 3600);
	logical_response_reset(&resp);
	/* outside the role's allowed list */
	assert_int_equal(call(LOP_UPDATE, "create/nomad", "{\"policies\":[\"ops\"]}", p, false,
			      &resp, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "must be subset of the role's allowed policies"));
	logical_response_reset(&resp);
	/* disallowed */
	assert_int_equal(call(LOP_UPDATE, "roles/locked", "{\"disallowed_policies\":[\"web\"]}",
			      f->root, false, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create/locked", "{\"policies\":[\"web\"]}", p, false,
			      &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "token policy \"web\" is disallowed by this role");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_UPDATE, "create/missing", "{}", p, false, &resp, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, "unknown role missing");
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_DELETE, "roles/nomad", NULL, f->root, false, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(call(LOP_READ, "roles/nomad", NULL, f->root, false, &resp, &err),
			 VERR_NOT_FOUND);
	logical_response_reset(&resp);
	free(rt);
	free(p);
}

static void test_core_token_backend__tidy(void **state)
{
	struct fx *f = *state;
	struct logical_response resp;
	struct verr err;
	assert_int_equal(call(LOP_UPDATE, "tidy", NULL, f->root, false, &resp, &err), 0);
	assert_int_equal(resp.status, 202);
	assert_int_equal(json_array_size(resp.warnings), 1);
	logical_response_reset(&resp);
	assert_int_equal(lookup_status(f->root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_token_backend__create_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__root_child_inherits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__subset_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__privileged_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__lookup_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__renew_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__revoke_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__accessors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_backend__tidy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
