/*
 * glue.c - connects the pipeline (core.c) and the seal lifecycle (seal.c) to
 * the token store, the policy store and, later, the expiration manager and
 * audit broker (see acl_glue.h for why this layer exists).
 */
#include "core/acl_glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit_broker.h"
#include "core/expiration.h"
#include "core/policy.h"
#include "core/token.h"
#include "util/hcl.h"
#include "util/log.h"
#include "util/secmem.h"

struct token_store *core_token_store(struct core *c)
{
	return c->tokens;
}

/* ---- token store callbacks ---- */

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

static void on_revoke_cb(void *ctx, const struct token_entry *te)
{
	struct core *c = ctx;
	coreglue_lease_token_revoked(c, te);
	/* destroy the token's cubbyhole: the cubbyhole engine keys every
	 * entry by "<token hash>/" under its mount's view */
	struct mount_entry *m = core__route(c, "cubbyhole/");
	if (m) {
		char prefix[300];
		snprintf(prefix, sizeof(prefix), "%s/", te->hash);
		struct verr e = {0};
		if (view_clear_prefix(&m->view, prefix, &e))
			log_warn("core", "failed to destroy a revoked token's cubbyhole: %s", e.msg);
		core__mount_release(m);
	}
}

static void on_expiry_cb(void *ctx, const struct token_entry *te)
{
	coreglue_lease_token_changed(ctx, te);
}

static int policy_text_parser(json_t **out, const char *text, size_t len, struct verr *err)
{
	return hcl_parse_json(out, text, len, "policy", err);
}

static int auth_renew_cb(void *ctx, const struct token_entry *te, int64_t *max_ttl_cap,
			 struct verr *err);

int coreglue_stores_open(struct core *c, struct verr *err)
{
	int rc = coreglue_leases_open(c, err);
	if (rc)
		return rc;
	rc = policy_store_new(&c->policies, &c->policy_view, err);
	if (rc) {
		coreglue_leases_stop(c);
		return rc;
	}
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
		coreglue_leases_stop(c);
		return rc;
	}
	/* audit broker: device table and keys below the barrier */
	rc = coreglue_audit_open(c, err);
	if (rc) {
		token_store_free(c->tokens);
		c->tokens = NULL;
		policy_store_free(c->policies);
		c->policies = NULL;
		coreglue_leases_stop(c);
	}
	return rc;
}

void coreglue_stores_close(struct core *c)
{
	coreglue_leases_stop(c); /* first: its workers use the token store */
	coreglue_audit_close(c);
	token_store_free(c->tokens);
	c->tokens = NULL;
	policy_store_free(c->policies);
	c->policies = NULL;
}

int coreglue_root_token(struct core *c, char **out, struct verr *err)
{
	return token_store_root(c->tokens, out, err);
}

int coreglue_root_token_with_id(struct core *c, const char *id, struct verr *err)
{
	json_t *pol = json_pack("[s]", "root");
	struct token_params p = {
		.policies = pol,
		.display_name = "root",
		.path = "auth/token/root",
		.policies_final = true,
		.no_default_policy = true,
		.id = id,
	};
	char *tok = NULL;
	struct token_entry *te = NULL;
	int rc = token_store_issue(c->tokens, &p, &tok, &te, err);
	json_decref(pol);
	if (tok)
		token_free_raw(tok);
	token_entry_free(te);
	return rc;
}

/* ---- pipeline ---- */

int coreglue_token_lookup(struct core *c, const char *raw, struct token_entry **out,
			  struct verr *err)
{
	if (!c->tokens)
		return verr_set(err, VERR_SEALED, "Vault is sealed");
	return token_store_lookup(c->tokens, raw, out, err);
}

int coreglue_token_lookup_accessor(struct core *c, const char *accessor,
				   struct token_entry **out, struct verr *err)
{
	return token_store_lookup_accessor(c->tokens, accessor, out, err);
}

void coreglue_token_free(struct token_entry *te)
{
	token_entry_free(te);
}

const json_t *coreglue_token_cidrs(const struct token_entry *te)
{
	return te->bound_cidrs;
}

const char *coreglue_token_hash(const struct token_entry *te)
{
	return te->hash;
}

const char *coreglue_token_accessor(const struct token_entry *te)
{
	return te->accessor;
}

static int token_acl(struct core *c, const struct token_entry *te, struct acl **out,
		     struct verr *err)
{
	size_t n = json_array_size(te->policies);
	const char *names[256];
	if (n > 256)
		n = 256;
	for (size_t i = 0; i < n; i++)
		names[i] = json_string_value(json_array_get(te->policies, i));
	return policy_store_acl(c->policies, names, n, out, err);
}

int coreglue_acl_check(struct core *c, const struct token_entry *te, enum logical_op op,
		       const char *path, const json_t *data, struct coreglue_acl_result *out,
		       struct verr *err)
{
	struct acl *acl = NULL;
	int rc = token_acl(c, te, &acl, err);
	if (rc)
		return rc;
	struct acl_result r = {0};
	rc = acl_check(acl, op, path, data, &r);
	acl_free(acl);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "policy check failed");
	out->allowed = r.allowed;
	out->sudo = r.sudo;
	out->is_root = r.is_root;
	return 0;
}

int coreglue_capabilities(struct core *c, const struct token_entry *te, const char *path,
			  json_t **out, struct verr *err)
{
	struct acl *acl = NULL;
	int rc = token_acl(c, te, &acl, err);
	if (rc)
		return rc;
	rc = acl_capabilities(acl, path, out, err);
	acl_free(acl);
	return rc;
}

int coreglue_token_use(struct core *c, struct token_entry *te, bool *revoke_after,
		       struct verr *err)
{
	return token_store_use(c->tokens, te, revoke_after, err);
}

void coreglue_token_revoke(struct core *c, const struct token_entry *te)
{
	struct verr e = {0};
	if (token_store_revoke(c->tokens, te->hash, false, &e))
		log_warn("core", "failed to revoke a used-up token: %s", e.msg);
}

int coreglue_issue_login_token(struct core *c, struct mount_entry *m,
			       struct logical_request *req, struct logical_response *resp,
			       struct verr *err)
{
	struct logical_auth *a = resp->auth;
	int64_t mount_def = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	int64_t mount_max = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	char display[256];
	const char *mtype = m->type;
	snprintf(display, sizeof(display), "%s%s%s", mtype,
		 a->display_name && *a->display_name ? "-" : "",
		 a->display_name ? a->display_name : "");
	json_t *warnings = json_array();
	struct token_params p = {
		.policies = a->policies,
		.meta = a->metadata,
		.display_name = display,
		.path = req->path,
		.ttl = a->ttl ? a->ttl : mount_def,
		.max_ttl = a->max_ttl ? a->max_ttl : mount_max,
		.explicit_max_ttl = a->explicit_max_ttl,
		.period = a->period,
		.num_uses = a->num_uses,
		.renewable = a->renewable,
		.no_default_policy = a->no_default_policy,
		.bound_cidrs = a->bound_cidrs,
		.internal = a->internal,
		.type = a->token_type,
		.warnings = warnings,
	};
	char *tok = NULL;
	struct token_entry *te = NULL;
	int rc = token_store_issue(c->tokens, &p, &tok, &te, err);
	if (rc) {
		json_decref(warnings);
		return rc;
	}
	json_t *ip = json_array();
	resp->auth_out = token_auth_block(te, tok, ip);
	json_decref(ip);
	size_t i;
	json_t *w;
	json_array_foreach(warnings, i, w)
		logical_response_warn(resp, "%s", json_string_value(w));
	json_decref(warnings);
	token_free_raw(tok);
	token_entry_free(te);
	return 0;
}

/* ---- token renewal through the issuing auth method ---- */

static int auth_renew_cb(void *ctx, const struct token_entry *te, int64_t *max_ttl_cap,
			 struct verr *err)
{
	struct core *c = ctx;
	*max_ttl_cap = 0;
	if (!c || !te->path || strncmp(te->path, "auth/", 5) != 0 ||
	    strncmp(te->path, "auth/token/", 11) == 0)
		return 0;
	struct mount_entry *m = core__route(c, te->path);
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
			.core = c,
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
	core__mount_release(m);
	return rc;
}

/* ---- policies ---- */

int coreglue_policy_list(struct core *c, json_t **out, struct verr *err)
{
	return policy_store_list(c->policies, out, err);
}

int coreglue_policy_get(struct core *c, const char *name, char **out_text, struct verr *err)
{
	int rc = policy_store_raw(c->policies, name, out_text, err);
	if (rc == 0 && !*out_text)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	return rc;
}

int coreglue_policy_put(struct core *c, const char *name, const char *text, struct verr *err)
{
	json_t *root = NULL;
	struct verr perr = {0};
	int rc = hcl_parse_json(&root, text, strlen(text), "policy", &perr);
	if (rc)
		return verr_set(err, VERR_INVALID, "failed to parse policy: %s", perr.msg);
	rc = policy_store_put(c->policies, name, text, root, err);
	json_decref(root);
	return rc;
}

int coreglue_policy_delete(struct core *c, const char *name, struct verr *err)
{
	return policy_store_delete(c->policies, name, err);
}
