/*
 * stores.c - the token store and the policy store of an ACTIVE core, and
 * the callbacks that tie them to leases and backends (stores.h).
 */
#include "core/stores.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/leases.h"
#include "core/policy.h"
#include "core/router.h"
#include "core/token.h"
#include "util/hcl.h"
#include "util/log.h"

static bool policy_exists_cb(void *ctx, const char *name)
{
	struct core *c = ctx;
	struct policy *p = NULL;
	if (!c->policies)
		return true;
	if (policy_store_get(c->policies, name, &p, NULL) != 0 || !p)
		return false;
	policy_free(p);
	return true;
}

static void token_revoked_one(struct mount_entry *m, void *ctx)
{
	const struct token_entry *te = ctx;
	if (m->ops && m->ops->token_revoked && m->inst)
		m->ops->token_revoked(m->inst, te->hash);
}

/* A token is being revoked: its leases go, and every backend that keeps
 * something per token (cubbyhole) drops it. */
static void on_revoke_cb(void *ctx, const struct token_entry *te)
{
	struct core *c = ctx;
	leases_token_revoked(c, te);
	router_foreach(c, token_revoked_one, (void *)te);
}

static void on_expiry_cb(void *ctx, const struct token_entry *te)
{
	leases_token_changed(ctx, te);
}

static int policy_text_parser(json_t **out, const char *text, size_t len, struct verr *err)
{
	return hcl_parse_json(out, text, len, "policy", err);
}

/* May a login token be renewed? Ask the auth method that issued it. */
static int auth_renew_cb(void *ctx, const struct token_entry *te, int64_t *max_ttl_cap,
			 struct verr *err)
{
	struct core *c = ctx;
	*max_ttl_cap = 0;
	if (!c || !te->path || strncmp(te->path, "auth/", 5) != 0 ||
	    strncmp(te->path, "auth/token/", 11) == 0)
		return 0;
	struct mount_entry *m = router_route(c, te->path);
	if (!m)
		return verr_set(err, VERR_DENIED, "the auth method that issued this token is no longer mounted");
	int rc = 0;
	if (m->is_auth && m->ops && m->ops->auth_renew) {
		struct logical_request r = {
			.op = LOP_RENEW,
			.path = te->path,
			.mount_path = m->path,
			.rel_path = te->path + strlen(m->path),
			.mount_type = m->type,
			.mount_accessor = m->accessor,
			.mount_uuid = m->uuid,
			.mount_options = m->options,
			.storage = &m->view,
			.backend = m->inst,
			.sys = &m->sys,
			.secret_internal = te->internal,
			.token = te,
		};
		json_t *empty = json_object();
		r.data = empty;
		struct logical_response resp = {0};
		rc = m->ops->auth_renew(&r, &resp, err);
		if (rc == 0 && resp.auth) {
			int64_t mmax = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
			*max_ttl_cap = resp.auth->max_ttl ? resp.auth->max_ttl : mmax;
		}
		logical_response_reset(&resp);
		json_decref(empty);
	}
	router_release(m);
	return rc;
}

int stores_open(struct core *c, struct verr *err)
{
	int rc = policy_store_new(&c->policies, &c->policy_view, err);
	if (rc)
		return rc;
	policy_store_set_parser(c->policies, policy_text_parser);
	struct token_store_opts o = {
		.default_ttl = c->o.default_lease_ttl,
		.max_ttl = c->o.max_lease_ttl,
		.policy_exists = policy_exists_cb,
		.policy_ctx = c,
		.on_revoke = on_revoke_cb,
		.revoke_ctx = c,
		.on_expiry = on_expiry_cb,
		.expiry_ctx = c,
		.auth_renew = auth_renew_cb,
		.auth_renew_ctx = c,
	};
	rc = token_store_new(&c->tokens, &c->token_view, &o, err);
	if (rc) {
		policy_store_free(c->policies);
		c->policies = NULL;
	}
	return rc;
}

void stores_close(struct core *c)
{
	token_store_free(c->tokens);
	c->tokens = NULL;
	policy_store_free(c->policies);
	c->policies = NULL;
}
