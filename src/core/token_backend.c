/*
 * token_backend.c - the `auth/token/` backend: Vault's token API (create,
 * create-orphan, create/ROLE, lookup*, renew*, revoke*, accessors, roles,
 * tidy) as a path table over the token store (token.h).
 *
 * The backend instance is the core's token store (the router hands it over
 * as mount_info.core_private), so req->backend is a `struct token_store *`.
 * The caller is req->token (its entry), req->client_token (raw) and
 * req->token_is_root / req->sudo; "sudo" below means either, as in Vault.
 * Status codes and messages follow Vault's token store handlers: bad input
 * and refused privileges are 400, an unknown token on lookup is 403
 * "bad token", revoking an unknown token is a silent 204.
 */
#include "core/token.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

static struct token_store *store(const struct logical_request *req)
{
	return (struct token_store *)req->backend;
}

static bool is_sudo(const struct logical_request *req)
{
	return req->token_is_root || req->sudo;
}

static const char *str_or_empty(const struct logical_request *req, const char *name)
{
	const char *s = request_str(req, name);
	return s ? s : "";
}

static bool list_has(const json_t *arr, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *s = json_string_value(e);
		if (s && !strcmp(s, name))
			return true;
	}
	return false;
}

/* every element of sub is in super */
static bool list_subset(const json_t *super, const json_t *sub)
{
	size_t i;
	json_t *e;
	json_array_foreach(sub, i, e) {
		if (!list_has(super, json_string_value(e)))
			return false;
	}
	return true;
}

/* Go's %q of a []string: ["a" "b"] */
static void fmt_list(char *buf, size_t cap, const json_t *arr)
{
	size_t off = 0, i;
	json_t *e;
	int n = snprintf(buf, cap, "[");
	off = n > 0 ? (size_t)n : 0;
	json_array_foreach(arr, i, e) {
		n = snprintf(buf + off, cap - off, "%s\"%s\"", i ? " " : "", json_string_value(e));
		if (n < 0 || (size_t)n >= cap - off)
			return;
		off += (size_t)n;
	}
	snprintf(buf + off, cap - off, "]");
}

/* "token-" + name, runs of characters outside [A-Za-z0-9-] become '-',
 * one trailing '-' dropped (Vault's display name rule). */
static char *display_name_for(const char *name)
{
	size_t n = strlen(name);
	char *out = malloc(n + 8);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *src = "token-";
	for (int pass = 0; pass < 2; pass++) {
		for (const char *p = pass ? name : src; *p;) {
			char c = *p;
			bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				  (c >= '0' && c <= '9') || c == '-';
			if (ok) {
				out[o++] = c;
				p++;
			} else {
				out[o++] = '-';
				while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
					       (*p >= '0' && *p <= '9') || *p == '-'))
					p++;
			}
		}
	}
	if (o && out[o - 1] == '-')
		o--;
	out[o] = '\0';
	return out;
}

/* ---- create ---- */

static int create_common(struct logical_request *req, struct logical_response *resp,
			 bool orphan_path, const char *role_name, struct verr *err)
{
	struct token_store *ts = store(req);
	const struct token_entry *parent = req->token;
	json_t *role = NULL, *policies = NULL, *warnings = json_array(), *tmp = NULL;
	char *display = NULL, *path = NULL, *raw = NULL;
	struct token_entry *te = NULL;
	int rc = 0;
	bool sudo = is_sudo(req);

	if (!warnings)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!parent) {
		rc = verr_set(err, VERR_INVALID, "parent token lookup failed: no parent found");
		goto out;
	}
	if (token_entry_is_batch(parent)) {
		rc = verr_set(err, VERR_INVALID, "batch tokens cannot create more tokens");
		goto out;
	}
	if (parent->num_uses > 0) {
		rc = verr_set(err, VERR_INVALID, "restricted use token cannot generate child tokens");
		goto out;
	}
	if (role_name && *role_name) {
		rc = token_store_role_get(ts, role_name, &role, err);
		if (rc)
			goto out;
		if (!role) {
			rc = verr_set(err, VERR_INVALID, "unknown role %s", role_name);
			goto out;
		}
	}

	/* entity aliases need the identity store */
	const char *alias = str_or_empty(req, "entity_alias");
	if (*alias) {
		if (!role) {
			rc = verr_set(err, VERR_INVALID, "'entity_alias' is only allowed in combination with token role");
			goto out;
		}
		bool allowed = false;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(role, "allowed_entity_aliases"), i, e) {
			const char *pat = json_string_value(e);
			if (pat && fnmatch(pat, alias, 0) == 0)
				allowed = true;
		}
		if (!allowed) {
			rc = verr_set(err, VERR_INVALID, "invalid 'entity_alias' value");
			goto out;
		}
		rc = verr_set(err, VERR_INVALID, "entity aliases are not supported by this server yet");
		goto out;
	}

	bool renewable = request_has(req, "renewable") ? request_bool(req, "renewable") : true;
	const char *type = str_or_empty(req, "type");
	if (role) {
		const char *rt = json_string_value(json_object_get(role, "token_type"));
		if (rt && (!strcmp(rt, "service") || !strcmp(rt, "batch")))
			type = rt;
		else if (rt && !strcmp(rt, "default-batch") && !*type)
			type = "batch";
	}
	bool batch = !strcmp(type, "batch");
	if (batch) {
		/* Vault: no explicit max, uses or period; never renewable */
		const char *bad = request_duration(req, "explicit_max_ttl") ? "explicit_max_ttl"
				  : request_int(req, "num_uses")	     ? "num_uses"
				  : request_duration(req, "period")	     ? "period"
									     : NULL;
		if (bad) {
			rc = verr_set(err, VERR_INVALID, "batch tokens cannot have \"%s\" set", bad);
			goto out;
		}
		renewable = false;
	}
	if (*type && strcmp(type, "service") && !batch) {
		rc = verr_set(err, VERR_INVALID, "invalid 'token_type' value");
		goto out;
	}

	int64_t num_uses = request_int(req, "num_uses");
	if (num_uses < 0) {
		rc = verr_set(err, VERR_INVALID, "number of uses cannot be negative");
		goto out;
	}
	bool no_default = request_bool(req, "no_default_policy");
	if (role) {
		int64_t rn = json_integer_value(json_object_get(role, "token_num_uses"));
		if (rn > 0 && (num_uses == 0 || rn < num_uses))
			num_uses = rn;
		if (json_is_true(json_object_get(role, "token_no_default_policy")))
			no_default = true;
		if (renewable && json_is_false(json_object_get(role, "renewable")))
			renewable = false;
	}

	/* creation path: auth/token/create[-orphan][/role[/suffix]] */
	{
		const char *suffix = role ? json_string_value(json_object_get(role, "path_suffix")) : NULL;
		size_t need = 64 + strlen(role_name ? role_name : "") + (suffix ? strlen(suffix) : 0);
		path = malloc(need);
		if (!path) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		if (role)
			snprintf(path, need, "auth/token/create/%s%s%s", role_name,
				 suffix && *suffix ? "/" : "", suffix && *suffix ? suffix : "");
		else
			snprintf(path, need, "auth/token/%s", orphan_path ? "create-orphan" : "create");
	}

	const char *dn = str_or_empty(req, "display_name");
	display = *dn ? display_name_for(dn) : strdup("token");
	if (!display) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}

	const char *id = str_or_empty(req, "id");
	if (*id) {
		if (!sudo) {
			rc = verr_set(err, VERR_INVALID, "root or sudo privileges required to specify token id");
			goto out;
		}
		if (!strncmp(id, "s.", 2) || !strncmp(id, "b.", 2)) {
			rc = verr_set(err, VERR_INVALID, "custom token ID cannot have the '%.2s' prefix", id);
			goto out;
		}
	}

	/* ---- policies (Vault's handleCreateCommon rules) ---- */
	json_t *req_pol = request_json(req, "policies");
	bool have_req_pol = req_pol && json_array_size(req_pol) > 0;
	json_t *allowed = role ? json_object_get(role, "allowed_policies") : NULL;
	json_t *disallowed = role ? json_object_get(role, "disallowed_policies") : NULL;
	bool add_default = false;
	if (role && (json_array_size(allowed) > 0 || json_array_size(disallowed) > 0)) {
		bool local_add = !no_default && !list_has(disallowed, "default");
		json_t *final = have_req_pol ? token_policies_sanitize(req_pol, local_add) : json_array();
		if (json_array_size(allowed) > 0) {
			json_t *ra = token_policies_sanitize(allowed, local_add);
			if (json_array_size(final) == 0) {
				json_decref(final);
				final = ra;
			} else if (!list_subset(ra, final)) {
				char a[512], b[512];
				fmt_list(a, sizeof(a), final);
				fmt_list(b, sizeof(b), ra);
				json_decref(final);
				json_decref(ra);
				rc = verr_set(err, VERR_INVALID, "token policies (%s) must be subset of the role's allowed policies (%s)", a, b);
				goto out;
			} else {
				json_decref(ra);
			}
		} else if (json_array_size(final) == 0) {
			json_decref(final);
			final = token_policies_sanitize(parent->policies, local_add);
		}
		size_t i;
		json_t *e;
		json_array_foreach(final, i, e) {
			if (list_has(disallowed, json_string_value(e))) {
				rc = verr_set(err, VERR_INVALID, "token policy \"%s\" is disallowed by this role", json_string_value(e));
				json_decref(final);
				goto out;
			}
		}
		tmp = final;
	} else if (!have_req_pol) {
		tmp = token_policies_sanitize(parent->policies, false);
	} else if (!sudo) {
		json_t *in = token_policies_sanitize(req_pol, false);
		json_t *par = token_policies_sanitize(parent->policies, false);
		bool ok = in && par && list_subset(par, in);
		json_decref(in);
		json_decref(par);
		if (!ok) {
			rc = verr_set(err, VERR_INVALID, "child policies must be subset of parent");
			goto out;
		}
		add_default = !no_default && list_has(parent->policies, "default");
		tmp = json_incref(req_pol);
	} else {
		add_default = !no_default;
		tmp = json_incref(req_pol);
	}
	policies = token_policies_sanitize(tmp, add_default);
	json_decref(tmp);
	tmp = NULL;
	if (!policies) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (no_default) {
		json_t *np = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(policies, i, e) {
			if (np && strcmp(json_string_value(e), "default"))
				json_array_append(np, e);
		}
		json_decref(policies);
		policies = np;
	}
	if (list_has(policies, "response-wrapping") || list_has(policies, "control-group")) {
		rc = verr_set(err, VERR_INVALID, "cannot assign policy \"%s\"",
			      list_has(policies, "response-wrapping") ? "response-wrapping" : "control-group");
		goto out;
	}
	if (list_has(policies, "root") && !list_has(parent->policies, "root")) {
		rc = verr_set(err, VERR_INVALID, "root tokens may not be created without parent token being root");
		goto out;
	}

	/* ---- parent ---- */
	bool orphan;
	json_t *cidrs = NULL;
	if (role) {
		orphan = json_is_true(json_object_get(role, "orphan"));
		json_t *rc2 = json_object_get(role, "token_bound_cidrs");
		if (json_array_size(rc2))
			cidrs = rc2;
	} else if (request_bool(req, "no_parent")) {
		if (!sudo) {
			rc = verr_set(err, VERR_INVALID, "root or sudo privileges required to create orphan token");
			goto out;
		}
		orphan = true;
	} else {
		orphan = orphan_path;
	}
	if (!orphan && !role)
		cidrs = parent->bound_cidrs;

	/* ---- TTLs ---- */
	int64_t explicit_max = request_duration(req, "explicit_max_ttl");
	int64_t period = request_duration(req, "period");
	int64_t ttl = request_duration(req, "ttl");
	if (period > 0 && !sudo) {
		rc = verr_set(err, VERR_INVALID, "root or sudo privileges required to create periodic token");
		goto out;
	}
	if (!request_has(req, "ttl") && *str_or_empty(req, "lease")) {
		rc = duration_parse(&ttl, str_or_empty(req, "lease"), err);
		if (rc)
			goto out;
	}
	if (role) {
		int64_t rmax = json_integer_value(json_object_get(role, "token_explicit_max_ttl"));
		int64_t rper = json_integer_value(json_object_get(role, "token_period"));
		if (rmax) {
			if (!explicit_max)
				explicit_max = rmax;
			else {
				if (rmax < explicit_max)
					explicit_max = rmax;
				logical_response_warn(resp, "Explicit max TTL specified both during creation call and in role; using the lesser value of %lld seconds", (long long)explicit_max);
			}
		}
		if (rper) {
			if (!period)
				period = rper;
			else {
				if (rper < period)
					period = rper;
				logical_response_warn(resp, "Period specified both during creation call and in role; using the lesser value of %lld seconds", (long long)period);
			}
		}
	}

	struct token_params p = {
		.policies = policies,
		.policies_final = true,
		.meta = request_json(req, "meta"),
		.display_name = display,
		.path = path,
		.ttl = ttl,
		.explicit_max_ttl = explicit_max,
		.period = period,
		.num_uses = num_uses,
		.renewable = renewable,
		.parent = orphan ? NULL : parent,
		.bound_cidrs = cidrs,
		.role = role ? role_name : NULL,
		.entity_id = orphan ? NULL : parent->entity_id,
		.type = batch ? "batch" : "service",
		.id = *id ? id : NULL,
		.deny_non_expiring = parent->ttl != 0,
		.warnings = warnings,
	};
	rc = token_store_issue(ts, &p, &raw, &te, err);
	if (rc)
		goto out;
	resp->auth_out = token_auth_block(te, raw, NULL);
	if (!resp->auth_out) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (*id)
		logical_response_warn(resp, "Supplying a custom ID for the token uses the weaker SHA1 hashing instead of the more secure SHA2-256 HMAC for token obfuscation. SHA1 hashed tokens on the wire leads to less secure lookups.");
	token_store_warn_missing_policies(ts, te->policies, warnings);
	size_t i;
	json_t *e;
	json_array_foreach(warnings, i, e) {
		logical_response_warn(resp, "%s", json_string_value(e));
	}
out:
	json_decref(role);
	json_decref(policies);
	json_decref(warnings);
	json_decref(tmp);
	free(display);
	free(path);
	token_free_raw(raw);
	token_entry_free(te);
	return rc;
}

static int h_create(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const char *rn = request_str(req, "role_name");
	return create_common(req, resp, false, rn && *rn ? rn : NULL, err);
}

static int h_create_orphan(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return create_common(req, resp, true, NULL, err);
}

/* ---- lookup ---- */

static int lookup_raw(struct logical_request *req, struct logical_response *resp,
		      const char *raw, struct verr *err)
{
	struct token_entry *te = NULL;
	if (!raw || !*raw)
		return verr_set(err, VERR_INVALID, "missing token ID");
	struct verr e2 = {0};
	int rc = token_store_lookup(store(req), raw, &te, &e2);
	if (rc == VERR_DENIED)
		return verr_set(err, VERR_DENIED, "bad token");
	if (rc) {
		if (err)
			*err = e2;
		return rc;
	}
	resp->data = token_entry_lookup_data(te, raw, token_store_now(store(req)));
	token_entry_free(te);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_lookup(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const char *raw = request_str(req, "token");
	if (!raw || !*raw)
		raw = req->client_token;
	return lookup_raw(req, resp, raw, err);
}

static int h_lookup_self(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return lookup_raw(req, resp, req->client_token, err);
}

static int h_lookup_accessor(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	const char *acc = str_or_empty(req, "accessor");
	struct token_entry *te = NULL;
	if (!*acc)
		return verr_set(err, VERR_INVALID, "missing accessor");
	int rc = token_store_lookup_accessor(store(req), acc, &te, err);
	if (rc == VERR_NOT_FOUND)
		return verr_set(err, VERR_INVALID, "invalid accessor");
	if (rc)
		return rc;
	resp->data = token_entry_lookup_data(te, "", token_store_now(store(req)));
	token_entry_free(te);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* ---- renew ---- */

static int renew_entry(struct logical_request *req, struct logical_response *resp,
		       const char *hash, const char *raw, struct verr *err)
{
	struct token_store *ts = store(req);
	json_t *warnings = json_array();
	struct token_entry *te = NULL;
	int64_t cap = 0;
	/* a login token is renewed only if its auth method still agrees
	 * (user or role still exists, same policies) */
	if (token_store_lookup_hash(ts, hash, &te, NULL) == 0) {
		int arc = token_store_auth_renew(ts, te, &cap, err);
		token_entry_free(te);
		te = NULL;
		if (arc) {
			json_decref(warnings);
			return arc;
		}
	}
	int rc = token_store_renew(ts, hash, request_duration(req, "increment"), cap, NULL, warnings,
				   err);
	if (rc == VERR_NOT_FOUND)
		rc = verr_set(err, VERR_INVALID, "token not found");
	if (rc == 0)
		rc = token_store_lookup_hash(ts, hash, &te, err);
	if (rc == 0) {
		resp->auth_out = token_auth_block(te, raw, NULL);
		if (!resp->auth_out)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		size_t i;
		json_t *e;
		json_array_foreach(warnings, i, e) {
			logical_response_warn(resp, "%s", json_string_value(e));
		}
	}
	token_entry_free(te);
	json_decref(warnings);
	return rc;
}

static int renew_raw(struct logical_request *req, struct logical_response *resp, const char *raw,
		     struct verr *err)
{
	struct token_entry *te = NULL;
	if (!raw || !*raw)
		return verr_set(err, VERR_INVALID, "missing token ID");
	int rc = token_store_lookup(store(req), raw, &te, NULL);
	if (rc == VERR_DENIED)
		return verr_set(err, VERR_INVALID, "token not found");
	if (rc)
		return verr_set(err, rc, "error looking up token to renew");
	if (token_entry_is_batch(te)) {
		token_entry_free(te);
		return verr_set(err, VERR_INVALID, "batch tokens cannot be renewed");
	}
	rc = renew_entry(req, resp, te->hash, raw, err);
	token_entry_free(te);
	return rc;
}

static int h_renew(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	return renew_raw(req, resp, request_str(req, "token"), err);
}

static int h_renew_self(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return renew_raw(req, resp, req->client_token, err);
}

static int h_renew_accessor(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	const char *acc = str_or_empty(req, "accessor");
	struct token_entry *te = NULL;
	if (!*acc)
		return verr_set(err, VERR_INVALID, "missing accessor");
	int rc = token_store_lookup_accessor(store(req), acc, &te, err);
	if (rc == VERR_NOT_FOUND)
		return verr_set(err, VERR_INVALID, "invalid accessor");
	if (rc)
		return rc;
	rc = renew_entry(req, resp, te->hash, "", err);
	token_entry_free(te);
	return rc;
}

/* ---- revoke ---- */

static int h_revoke(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const char *raw = request_str(req, "token");
	struct token_entry *te = NULL;
	if (!raw || !*raw)
		return verr_set(err, VERR_INVALID, "missing token ID");
	int rc = token_store_lookup(store(req), raw, &te, NULL);
	if (rc == VERR_DENIED)
		return 0; /* unknown token: nothing to revoke (204, as Vault) */
	if (rc)
		return verr_set(err, rc, "error looking up token to revoke");
	if (token_entry_is_batch(te)) {
		token_entry_free(te);
		return verr_set(err, VERR_INVALID, "batch tokens cannot be revoked");
	}
	rc = token_store_revoke(store(req), te->hash, false, err);
	token_entry_free(te);
	return rc;
}

static int h_revoke_self(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	if (!req->token)
		return verr_set(err, VERR_INVALID, "missing token ID");
	if (token_entry_is_batch(req->token))
		return verr_set(err, VERR_INVALID, "batch tokens cannot be revoked");
	return token_store_revoke(store(req), req->token->hash, false, err);
}

static int h_revoke_accessor(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	const char *acc = str_or_empty(req, "accessor");
	struct token_entry *te = NULL;
	if (!*acc)
		return verr_set(err, VERR_INVALID, "missing accessor");
	int rc = token_store_lookup_accessor(store(req), acc, &te, err);
	if (rc == VERR_NOT_FOUND)
		return verr_set(err, VERR_INVALID, "invalid accessor");
	if (rc)
		return rc;
	rc = token_store_revoke(store(req), te->hash, false, err);
	token_entry_free(te);
	return rc;
}

static int h_revoke_orphan(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	const char *raw = request_str(req, "token");
	struct token_entry *te = NULL;
	if (!raw || !*raw)
		return verr_set(err, VERR_INVALID, "missing token ID");
	if (!is_sudo(req))
		return verr_set(err, VERR_INVALID, "root or sudo privileges required to revoke and orphan");
	int rc = token_store_lookup(store(req), raw, &te, NULL);
	if (rc == VERR_DENIED)
		return verr_set(err, VERR_INVALID, "token to revoke not found");
	if (rc)
		return verr_set(err, rc, "error when looking up token to revoke");
	if (token_entry_is_batch(te)) {
		token_entry_free(te);
		return verr_set(err, VERR_INVALID, "batch tokens cannot be revoked");
	}
	rc = token_store_revoke(store(req), te->hash, true, err);
	token_entry_free(te);
	return rc;
}

/* ---- accessors, tidy ---- */

static int h_accessors(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	json_t *keys = NULL;
	int rc = token_store_list_accessors(store(req), &keys, err);
	if (rc)
		return rc;
	resp->data = json_pack("{s:o}", "keys", keys);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_tidy(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	/* Runs synchronously (the store is small next to Vault's), but
	 * answers like Vault: 202 with the same warning. */
	int rc = token_store_tidy(store(req), NULL, err);
	if (rc)
		return rc;
	logical_response_warn(resp, "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.");
	resp->status = 202;
	return 0;
}

/* ---- roles ---- */

static int h_roles_list(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	json_t *keys = NULL;
	int rc = token_store_role_list(store(req), &keys, err);
	if (rc)
		return rc;
	resp->data = json_pack("{s:o}", "keys", keys);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int role_exists(struct logical_request *req, struct verr *err)
{
	json_t *r = NULL;
	int rc = token_store_role_get(store(req), str_or_empty(req, "role_name"), &r, err);
	if (rc)
		return rc;
	json_decref(r);
	return r != NULL;
}

static json_t *arr_or_empty(json_t *v)
{
	return json_is_array(v) ? json_deep_copy(v) : json_array();
}

static int h_role_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	const char *name = str_or_empty(req, "role_name");
	json_t *r = NULL;
	int rc = token_store_role_get(store(req), name, &r, err);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *tt = json_object_get(r, "token_type");
	resp->data = json_pack(
		"{s:o,s:o,s:o,s:I,s:s,s:b,s:s,s:I,s:b,s:o,s:I,s:b,s:I,s:I,s:s}",
		"allowed_entity_aliases", arr_or_empty(json_object_get(r, "allowed_entity_aliases")),
		"allowed_policies", arr_or_empty(json_object_get(r, "allowed_policies")),
		"disallowed_policies", arr_or_empty(json_object_get(r, "disallowed_policies")),
		"explicit_max_ttl", (json_int_t)json_integer_value(json_object_get(r, "token_explicit_max_ttl")),
		"name", name,
		"orphan", json_is_true(json_object_get(r, "orphan")),
		"path_suffix", json_string_value(json_object_get(r, "path_suffix")) ? json_string_value(json_object_get(r, "path_suffix")) : "",
		"period", (json_int_t)json_integer_value(json_object_get(r, "token_period")),
		"renewable", !json_is_false(json_object_get(r, "renewable")),
		"token_bound_cidrs", arr_or_empty(json_object_get(r, "token_bound_cidrs")),
		"token_explicit_max_ttl", (json_int_t)json_integer_value(json_object_get(r, "token_explicit_max_ttl")),
		"token_no_default_policy", json_is_true(json_object_get(r, "token_no_default_policy")),
		"token_num_uses", (json_int_t)json_integer_value(json_object_get(r, "token_num_uses")),
		"token_period", (json_int_t)json_integer_value(json_object_get(r, "token_period")),
		"token_type", json_string_value(tt) ? json_string_value(tt) : "default-service");
	json_decref(r);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* Create or update: only fields the client sent change an existing role. */
static int h_role_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct token_store *ts = store(req);
	const char *name = str_or_empty(req, "role_name");
	json_t *r = NULL;
	int rc = token_store_role_get(ts, name, &r, err);
	if (rc)
		return rc;
	bool creating = r == NULL;
	if (creating)
		r = json_pack("{s:[],s:[],s:b,s:b,s:s,s:[],s:s,s:[],s:I,s:I,s:b,s:I}",
			      "allowed_policies", "disallowed_policies", "orphan", 0, "renewable", 1,
			      "path_suffix", "", "allowed_entity_aliases", "token_type",
			      "default-service", "token_bound_cidrs", "token_explicit_max_ttl",
			      (json_int_t)0, "token_period", (json_int_t)0,
			      "token_no_default_policy", 0, "token_num_uses", (json_int_t)0);
	if (!r)
		return verr_set(err, VERR_INTERNAL, "out of memory");

	static const char *const lists[] = {"allowed_policies", "disallowed_policies",
					    "allowed_entity_aliases", NULL};
	for (int i = 0; lists[i]; i++)
		if (request_has(req, lists[i])) {
			json_t *s = token_policies_sanitize(request_json(req, lists[i]), false);
			/* entity aliases keep their case */
			if (!strcmp(lists[i], "allowed_entity_aliases")) {
				json_decref(s);
				s = json_deep_copy(request_json(req, lists[i]));
			}
			json_object_set_new(r, lists[i], s ? s : json_array());
		}
	if (request_has(req, "orphan"))
		json_object_set_new(r, "orphan", json_boolean(request_bool(req, "orphan")));
	if (request_has(req, "renewable"))
		json_object_set_new(r, "renewable", json_boolean(request_bool(req, "renewable")));
	if (request_has(req, "token_no_default_policy"))
		json_object_set_new(r, "token_no_default_policy",
				    json_boolean(request_bool(req, "token_no_default_policy")));
	if (request_has(req, "token_num_uses")) {
		if (request_int(req, "token_num_uses") < 0) {
			rc = verr_set(err, VERR_INVALID, "token_num_uses cannot be negative");
			goto out;
		}
		json_object_set_new(r, "token_num_uses", json_integer(request_int(req, "token_num_uses")));
	}
	if (request_has(req, "path_suffix")) {
		const char *sfx = str_or_empty(req, "path_suffix");
		if (strstr(sfx, "..")) {
			rc = verr_set(err, VERR_INVALID, "error registering path suffix: %s", "path suffix cannot contain '..'");
			goto out;
		}
		json_object_set_new(r, "path_suffix", json_string(sfx));
	}
	/* the deprecated names are aliases of the token_* ones */
	static const char *const alias[][2] = {{"token_period", "period"},
					       {"token_explicit_max_ttl", "explicit_max_ttl"},
					       {"token_bound_cidrs", "bound_cidrs"}};
	for (int i = 0; i < 3; i++) {
		const char *use = request_has(req, alias[i][0]) ? alias[i][0]
				  : request_has(req, alias[i][1]) ? alias[i][1] : NULL;
		if (!use)
			continue;
		if (i == 2)
			json_object_set_new(r, alias[i][0], json_deep_copy(request_json(req, use)));
		else
			json_object_set_new(r, alias[i][0], json_integer(request_duration(req, use)));
	}
	if (request_has(req, "token_type")) {
		const char *t = str_or_empty(req, "token_type");
		if (!*t || !strcmp(t, "default"))
			t = "default-service";
		if (strcmp(t, "service") && strcmp(t, "batch") && strcmp(t, "default-service") &&
		    strcmp(t, "default-batch")) {
			rc = verr_set(err, VERR_INVALID, "invalid 'token_type' value \"%s\"", t);
			goto out;
		}
		json_object_set_new(r, "token_type", json_string(t));
	}
	/* Vault's checks on a role that always issues batch tokens */
	if (!strcmp(json_string_value(json_object_get(r, "token_type")) ?: "", "batch")) {
		const char *why = !json_is_true(json_object_get(r, "orphan")) ? "non-orphan tokens"
				  : json_integer_value(json_object_get(r, "token_period")) ? "periodic tokens"
				  : !json_is_false(json_object_get(r, "renewable")) ? "renewable tokens"
				  : json_integer_value(json_object_get(r, "token_explicit_max_ttl"))
					  ? "tokens with an explicit max TTL"
					  : NULL;
		if (why) {
			rc = verr_set(err, VERR_INVALID,
				      "'token_type' cannot be 'batch' when role is set to generate %s", why);
			goto out;
		}
	}
	rc = token_store_role_put(ts, name, r, err);
out:
	json_decref(r);
	return rc;
}

static int h_role_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return token_store_role_delete(store(req), str_or_empty(req, "role_name"), err);
}

/* ---- table ---- */

static const struct field_def create_fields[] = {
	{"id", FT_STRING, NULL, "custom token id (root or sudo)", false},
	{"role_name", FT_STRING, NULL, "token role to create against", false},
	{"policies", FT_STRSLICE, NULL, "policies of the token", false},
	{"meta", FT_MAP, NULL, "metadata (string to string)", false},
	{"no_parent", FT_BOOL, "false", "create an orphan (root or sudo)", false},
	{"no_default_policy", FT_BOOL, "false", "do not add the default policy", false},
	{"renewable", FT_BOOL, "true", "allow renewal", false},
	{"lease", FT_STRING, NULL, "deprecated: use ttl", false},
	{"ttl", FT_DURATION, NULL, "time to live", false},
	{"type", FT_STRING, NULL, "token type: service", false},
	{"explicit_max_ttl", FT_DURATION, NULL, "hard lifetime cap", false},
	{"display_name", FT_STRING, NULL, "display name", false},
	{"num_uses", FT_INT, "0", "maximum uses (0 unlimited)", false},
	{"period", FT_DURATION, NULL, "renewal period (root or sudo)", false},
	{"entity_alias", FT_STRING, NULL, "entity alias (with a role)", false},
	{0},
};

static const struct field_def token_fields[] = {
	{"token", FT_STRING, NULL, "the token", false},
	{0},
};

static const struct field_def renew_fields[] = {
	{"token", FT_STRING, NULL, "the token", false},
	{"increment", FT_DURATION, "0", "requested TTL", false},
	{0},
};

static const struct field_def accessor_fields[] = {
	{"accessor", FT_STRING, NULL, "the token's accessor", false},
	{"increment", FT_DURATION, "0", "requested TTL (renew-accessor)", false},
	{0},
};

static const struct field_def role_fields[] = {
	{"role_name", FT_STRING, NULL, "role name", true},
	{"allowed_policies", FT_STRSLICE, NULL, "policies tokens may get", false},
	{"disallowed_policies", FT_STRSLICE, NULL, "policies tokens may not get", false},
	{"orphan", FT_BOOL, NULL, "tokens are orphans", false},
	{"renewable", FT_BOOL, NULL, "tokens are renewable", false},
	{"path_suffix", FT_STRING, NULL, "suffix of the creation path", false},
	{"allowed_entity_aliases", FT_STRSLICE, NULL, "entity aliases allowed", false},
	{"token_type", FT_STRING, NULL, "service, batch, default-service, default-batch", false},
	{"token_bound_cidrs", FT_STRSLICE, NULL, "CIDRs tokens are bound to", false},
	{"bound_cidrs", FT_STRSLICE, NULL, "deprecated: token_bound_cidrs", false},
	{"token_explicit_max_ttl", FT_DURATION, NULL, "explicit max TTL", false},
	{"explicit_max_ttl", FT_DURATION, NULL, "deprecated: token_explicit_max_ttl", false},
	{"token_period", FT_DURATION, NULL, "period", false},
	{"period", FT_DURATION, NULL, "deprecated: token_period", false},
	{"token_no_default_policy", FT_BOOL, NULL, "no default policy", false},
	{"token_num_uses", FT_INT, NULL, "uses per token", false},
	{0},
};

static const struct path_def token_paths[] = {
	{.pattern = "create", .fields = create_fields, .ops = {{LOP_UPDATE, h_create}},
	 .help = "Create a token (a child of the caller unless no_parent)."},
	{.pattern = "create-orphan", .fields = create_fields, .ops = {{LOP_UPDATE, h_create_orphan}},
	 .help = "Create an orphan token."},
	{.pattern = "create/{role_name}", .fields = create_fields, .ops = {{LOP_UPDATE, h_create}},
	 .help = "Create a token against a role."},
	{.pattern = "lookup", .fields = token_fields,
	 .ops = {{LOP_UPDATE, h_lookup}, {LOP_READ, h_lookup}}, .help = "Look up a token."},
	{.pattern = "lookup/{token*}", .fields = token_fields, .ops = {{LOP_READ, h_lookup}},
	 .help = "Look up a token (deprecated form)."},
	{.pattern = "lookup-self", .fields = token_fields,
	 .ops = {{LOP_READ, h_lookup_self}, {LOP_UPDATE, h_lookup_self}},
	 .help = "Look up the calling token."},
	{.pattern = "lookup-accessor/?", .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_lookup_accessor}}, .help = "Look up a token by accessor."},
	{.pattern = "lookup-accessor/{accessor}", .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_lookup_accessor}}, .help = "Look up a token by accessor."},
	{.pattern = "renew", .fields = renew_fields, .ops = {{LOP_UPDATE, h_renew}},
	 .help = "Renew a token."},
	{.pattern = "renew/{token*}", .fields = renew_fields, .ops = {{LOP_UPDATE, h_renew}},
	 .help = "Renew a token."},
	{.pattern = "renew-self", .fields = renew_fields, .ops = {{LOP_UPDATE, h_renew_self}},
	 .help = "Renew the calling token."},
	{.pattern = "renew-accessor", .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_renew_accessor}}, .help = "Renew a token by accessor."},
	{.pattern = "revoke", .fields = token_fields, .ops = {{LOP_UPDATE, h_revoke}},
	 .help = "Revoke a token and its children."},
	{.pattern = "revoke/{token*}", .fields = token_fields, .ops = {{LOP_UPDATE, h_revoke}},
	 .help = "Revoke a token and its children."},
	{.pattern = "revoke-self", .ops = {{LOP_UPDATE, h_revoke_self}},
	 .help = "Revoke the calling token and its children."},
	{.pattern = "revoke-accessor", .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_revoke_accessor}}, .help = "Revoke a token by accessor."},
	{.pattern = "revoke-accessor/{accessor}", .fields = accessor_fields,
	 .ops = {{LOP_UPDATE, h_revoke_accessor}}, .help = "Revoke a token by accessor."},
	{.pattern = "revoke-orphan", .fields = token_fields, .ops = {{LOP_UPDATE, h_revoke_orphan}},
	 .help = "Revoke a token, orphaning its children (root or sudo)."},
	{.pattern = "revoke-orphan/{token*}", .fields = token_fields,
	 .ops = {{LOP_UPDATE, h_revoke_orphan}}, .sudo = true,
	 .help = "Revoke a token, orphaning its children (root or sudo)."},
	{.pattern = "accessors/?", .ops = {{LOP_LIST, h_accessors}}, .sudo = true,
	 .help = "List token accessors (sudo)."},
	{.pattern = "roles/?", .ops = {{LOP_LIST, h_roles_list}}, .help = "List token roles."},
	{.pattern = "roles/{role_name}", .fields = role_fields,
	 .ops = {{LOP_READ, h_role_read}, {LOP_CREATE, h_role_write}, {LOP_UPDATE, h_role_write},
		 {LOP_DELETE, h_role_delete}},
	 .exists = role_exists, .help = "Manage a token role."},
	{.pattern = "tidy", .ops = {{LOP_UPDATE, h_tidy}},
	 .help = "Clean up dangling token index entries and expired tokens."},
	{0},
};

static int backend_init(void **out, const struct mount_info *mi, struct verr *err)
{
	struct token_store *ts = mi->core_private;
	if (!ts)
		return verr_set(err, VERR_INTERNAL, "token store is not available");
	*out = ts;
	return 0;
}

static void backend_cleanup(void *inst)
{
	(void)inst; /* the core owns the token store */
}

static const struct path_def *backend_paths(void *inst)
{
	return token_paths;
}

const struct backend_ops token_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "token",
	.is_auth = true,
	.init = backend_init,
	.cleanup = backend_cleanup,
	.paths = backend_paths,
	.pure_reads = true,
};
