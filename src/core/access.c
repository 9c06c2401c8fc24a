/*
 * access.c - token lookup, ACLs, capabilities, use counts and login tokens
 * over the token store and the policy store (access.h).
 */
#include "core/access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/router.h"
#include "core/token.h"
#include "util/log.h"

int access_root_token(struct core *c, char **out, struct verr *err)
{
	return token_store_root(c->tokens, out, err);
}

int access_root_token_with_id(struct core *c, const char *id, struct verr *err)
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

/* ---- the pipeline's questions ---- */

int access_token_lookup(struct core *c, const char *raw, struct token_entry **out,
			struct verr *err)
{
	if (!c->tokens)
		return verr_set(err, VERR_SEALED, "Vault is sealed");
	return token_store_lookup(c->tokens, raw, out, err);
}

int access_token_lookup_accessor(struct core *c, const char *accessor,
				 struct token_entry **out, struct verr *err)
{
	if (!c->tokens)
		return verr_set(err, VERR_SEALED, "Vault is sealed");
	return token_store_lookup_accessor(c->tokens, accessor, out, err);
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

int access_acl_check(struct core *c, const struct token_entry *te, enum logical_op op,
		     const char *path, const json_t *data, int64_t wrap_ttl,
		     struct access_result *out, struct verr *err)
{
	struct acl *acl = NULL;
	int rc = token_acl(c, te, &acl, err);
	if (rc)
		return rc;
	struct acl_result r = {0};
	rc = acl_check_wrapped(acl, op, path, data, wrap_ttl, &r);
	acl_free(acl);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "policy check failed");
	out->allowed = r.allowed;
	out->sudo = r.sudo;
	out->is_root = r.is_root;
	return 0;
}

int access_capabilities(struct core *c, const struct token_entry *te, const char *path,
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

int access_token_use(struct core *c, const struct token_entry *te, bool *revoke_after,
		     struct verr *err)
{
	return token_store_use(c->tokens, te, revoke_after, err);
}

void access_token_revoke(struct core *c, const struct token_entry *te)
{
	struct verr e = {0};
	if (token_store_revoke(c->tokens, te->hash, false, &e))
		log_warn("core", "failed to revoke a used-up token: %s", e.msg);
}

int access_issue_login_token(struct core *c, struct mount_entry *m,
			     struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	struct logical_auth *a = resp->auth;
	int64_t mount_def = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	int64_t mount_max = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	/* As Vault: the mount path without "auth/", each "/" as "-", then the
	 * method's name, a trailing "-" dropped ("auth/corp/ldap/" + "alice" =
	 * "corp-ldap-alice"; "auth/userpass/" alone = "userpass"). */
	char display[256];
	const char *src = m->path;
	if (!strncmp(src, "auth/", 5))
		src += 5;
	snprintf(display, sizeof(display), "%s%s", src, a->display_name ? a->display_name : "");
	for (char *q = display; *q; q++)
		if (*q == '/')
			*q = '-';
	size_t dl = strlen(display);
	if (dl && display[dl - 1] == '-')
		display[dl - 1] = '\0';
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

int access_any_below(struct core *c, const struct token_entry *te, const char *path,
		     bool *out, struct verr *err)
{
	*out = false;
	struct acl *acl = NULL;
	int rc = token_acl(c, te, &acl, err);
	if (rc)
		return rc;
	*out = acl_any_under(acl, path);
	acl_free(acl);
	return 0;
}
