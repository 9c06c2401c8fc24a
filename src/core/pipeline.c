/*
 * pipeline.c - the request pipeline (pipeline.h).
 *
 * For every API request on an ACTIVE core, on the HTTP worker thread:
 *   1 route by longest mount prefix and match the backend's path table
 *   2 convert the fields (errors reported after the ACL check, as Vault)
 *   3 token -> entry (403), CIDR binding
 *   4 create vs update (the path's existence check, before the ACL)
 *   5 ACL check (403), sudo paths
 *   6 audit the request: no device can record it -> the handler does not run.
 *     A read, list or help of a backend with pure_reads (kv, cubbyhole,
 *     token), with no wrapping asked and a token that is not use-limited,
 *     changes nothing: its request entry is stamped now and recorded with
 *     the response entry at step 9, in one write per device (halving the
 *     audit waits of the hottest requests). Should such a handler still
 *     issue a token, a lease or ask for wrapping, the request entry is
 *     recorded before any of that happens.
 *   7 the handler (framework_call, the same dispatch engine tests use); a
 *     token for a login, a lease for a secret
 *   8 response wrapping (X-Vault-Wrap-TTL, or a handler asking for it): the
 *     response goes into a single-use token's cubbyhole (wrapping.c)
 *   9 audit the response: no device can record it -> nothing of the response
 *     leaves, and the token or lease the request created is revoked
 * sys/wrapping/{lookup,unwrap,rewrap} check their wrapping token before
 * step 3 (Vault's wrappingVerificationFunc: a used or unknown one is a 400,
 * not a 403).
 */
#include "core/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/access.h"
#include "core/audit_hooks.h"
#include "core/expiration.h"
#include "core/leases.h"
#include "core/router.h"
#include "core/telemetry.h"
#include "core/token.h"
#include "core/wrapping.h"
#include "util/cidr.h"
#include "util/log.h"

/* Fill the request's view of its mount. */
static void bind_mount(struct logical_request *req, struct mount_entry *m,
		       struct logical_response *resp)
{
	const char *rel = m ? req->path + strlen(m->path) : req->path;
	if (m && strlen(req->path) + 1 == strlen(m->path)) /* "secret" for mount "secret/" */
		rel = "";
	req->mount_path = m ? m->path : "";
	req->rel_path = rel;
	req->mount_type = m ? m->type : "";
	req->mount_accessor = m ? m->accessor : "";
	req->mount_uuid = m ? m->uuid : "";
	req->mount_options = m ? m->options : NULL;
	req->storage = m ? &m->view : NULL;
	req->backend = m ? m->inst : NULL;
	req->sys = m ? &m->sys : NULL;
	if (m)
		resp->mount_type_out = strdup(m->type);
}

static void set_token(struct logical_request *req, const struct token_entry *te)
{
	req->token = te;
	req->client_token_hash = te->hash;
	req->client_token_accessor = te->accessor;
	req->display_name = te->display_name;
}

/*
 * The response could not be audited: nothing of it may reach the client.
 * What the request created is undone - a token issued by a login or a
 * token create (resp->auth_out), a lease (resp->lease_out) - so no live
 * credential exists that nobody can see in the audit log.
 */
static void withhold_response(struct core *c, struct logical_response *resp,
			      json_t *inner_auth, json_t *inner_lease)
{
	if (resp->wrap_info_out)
		wrapping_discard(c, resp);
	json_t *auth = resp->auth_out ? resp->auth_out : inner_auth;
	json_t *lease_out = resp->lease_out ? resp->lease_out : inner_lease;
	const char *tok = json_string_value(json_object_get(auth, "client_token"));
	if (tok && *tok && c->tokens) {
		struct token_entry *te = NULL;
		struct verr e = {0};
		if (token_store_lookup(c->tokens, tok, &te, &e) == 0) {
			if (token_store_revoke(c->tokens, te->hash, false, &e))
				log_error("core", "failed to revoke the token of an unaudited response: %s",
					  e.msg);
			token_entry_free(te);
		}
	}
	const char *lease = json_string_value(json_object_get(lease_out, "lease_id"));
	if (lease && *lease && c->expire) {
		struct verr e = {0};
		if (expiration_revoke(c->expire, lease, false, &e))
			log_error("core", "failed to revoke the lease of an unaudited response: %s", e.msg);
	}
	logical_response_reset(resp);
}

int pipeline_run(struct core *c, struct logical_request *req, struct logical_response *resp,
		 struct verr *err)
{
	int rc = 0;
	struct mount_entry *m = router_route(c, req->path);
	bool audited = false, audit_failed = false, deferred = false;
	struct timespec req_time = {0};
	json_t *inner_auth = NULL, *inner_lease = NULL; /* of a wrapped response */
	bind_mount(req, m, resp);

	const struct path_def *table = m && m->ops->paths ? m->ops->paths(m->inst) : NULL;
	json_t *caps = NULL;
	const struct path_def *def = table ? framework_match(table, req->rel_path, &caps) : NULL;

	/* field conversion errors are reported after the ACL check */
	json_t *fields = NULL;
	struct verr field_err = {0};
	int field_rc = 0;
	if (def)
		field_rc = framework_fields(def, req->data, caps, &fields, resp, &field_err);
	json_decref(caps);
	req->fields = fields;

	/* the wrapping token of lookup/unwrap/rewrap, before authentication */
	struct token_entry *te = NULL;
	bool unauth = def && def->unauthenticated;
	bool wrap_path = m && def && wrapping_checked_path(req->path);
	if (wrap_path && field_rc == 0) {
		rc = wrapping_validate(c, req, err);
		if (rc)
			goto out;
	}

	/* authenticate */
	if (!unauth) {
		if (!req->client_token || !*req->client_token) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		rc = access_token_lookup(c, req->client_token, &te, err);
		if (rc && wrap_path) /* used up since the check: still Vault's 400 */
			rc = verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
		if (rc)
			goto out;
		if (!cidr_list_allows(te->bound_cidrs, req->remote_addr)) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		set_token(req, te);
	} else if (req->client_token && *req->client_token &&
		   strcmp(req->path, "sys/wrapping/lookup") != 0) {
		/* optional token on unauthenticated paths (e.g. login with a
		 * token present): resolve it if valid, ignore otherwise */
		if (access_token_lookup(c, req->client_token, &te, NULL) == 0)
			set_token(req, te);
	}

	/* a use-limited token is a storage write (and may be a revoke): not on
	 * an event thread; nothing has been recorded or changed yet */
	if (req->inline_only && te && te->num_uses != 0) {
		req->would_block = true;
		rc = verr_set(err, VERR_UNAVAILABLE, "request must run on a worker");
		goto out;
	}

	/* create vs update: Vault runs the existence check before the ACL */
	if (def && field_rc == 0) {
		rc = framework_resolve_op(def, req, err);
		if (rc)
			goto out;
	}

	/* authorise */
	if (!unauth) {
		struct access_result ar = {0};
		rc = access_acl_check(c, te, req->op, req->path, req->data, req->wrap_ttl, &ar,
				      err);
		if (rc)
			goto out;
		if (!ar.allowed || (def && def->sudo && !ar.sudo && !ar.is_root)) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		req->token_is_root = ar.is_root;
		req->sudo = ar.sudo || ar.is_root;
	}

	if (!m) {
		rc = verr_set(err, VERR_NOT_FOUND, "no handler for route \"%s\". route entry not found.",
			      req->path);
		goto out;
	}
	if (!def) {
		/* Vault: ErrUnsupportedPath is a 404 (405 is for a known path
		 * without the operation); reads and lists say nothing */
		if (req->op == LOP_LIST || req->op == LOP_READ)
			rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		else
			rc = verr_set(err, VERR_NOT_FOUND, "unsupported path");
		goto out;
	}
	if (field_rc) {
		*err = field_err;
		rc = field_rc;
		goto out;
	}

	/* audit the request before it runs: no device can record it -> no run */
	deferred = m->ops->pure_reads && audit_hooks_enabled(c, req) && req->wrap_ttl <= 0 &&
		   (req->op == LOP_READ || req->op == LOP_LIST || req->op == LOP_HELP) &&
		   !(te && te->num_uses != 0);
	if (deferred) {
		clock_gettime(CLOCK_REALTIME, &req_time);
	} else {
		rc = audit_hooks_request(c, req, te, 0, NULL, err);
		if (rc) {
			audit_failed = true;
			goto out;
		}
	}
	audited = true;

	/* token use count */
	bool revoke_after = false;
	if (te) {
		rc = access_token_use(c, te, &revoke_after, err);
		if (rc && wrap_path)
			rc = verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
		if (rc)
			goto out;
	}

	uint64_t t_route = metrics_now();
	rc = framework_call(def, req, resp, err);
	telemetry_route(req->op, m->path, t_route);
	if (deferred && rc == 0 && (resp->auth || resp->secret || wrapping_ttl(req, resp) > 0)) {
		/* not a pure read after all: record the request before its
		 * token, lease or wrapping exists */
		deferred = false;
		rc = audit_hooks_request(c, req, te, 0, NULL, err);
		if (rc) {
			audit_failed = true;
			logical_response_reset(resp);
			goto out;
		}
	}
	if (rc == 0 && resp->auth)
		rc = access_issue_login_token(c, m, req, resp, err);
	if (rc == 0 && resp->secret)
		rc = leases_register(c, m, req, resp, err);
	int64_t wrap_ttl = rc == 0 ? wrapping_ttl(req, resp) : 0;
	if (wrap_ttl > 0 && (resp->data || resp->auth_out || resp->lease_out || resp->raw)) {
		inner_auth = json_incref(resp->auth_out);
		inner_lease = json_incref(resp->lease_out);
		rc = wrapping_wrap(c, req, resp, wrap_ttl, err);
		if (rc) /* what would have been wrapped never leaves unwrapped */
			withhold_response(c, resp, NULL, NULL);
	} else if (rc == 0 && resp->wrap_ttl > 0) {
		logical_response_reset(resp); /* a rewrap with nothing: nothing out */
	}

	if (revoke_after)
		access_token_revoke(c, te);
out:
	if (!audit_failed && !req->would_block && m) {
		struct verr aerr = {0};
		if (!audited)
			audit_hooks_request(c, req, te, rc, err, &aerr);
		int arc = deferred ? audit_hooks_pair(c, req, te, &req_time, resp, rc, err, &aerr)
				   : audit_hooks_response(c, req, te, resp, rc, err, &aerr);
		if (arc && rc == 0) {
			withhold_response(c, resp, inner_auth, inner_lease);
			rc = verr_set(err, VERR_INTERNAL,
				      "no audit device could record the response; it was withheld");
		} else if (arc) {
			/* an error response that could not be recorded: the
			 * error stands, nothing else goes out */
			logical_response_reset(resp);
		}
	}
	json_decref(inner_auth);
	json_decref(inner_lease);
	if (m && m->is_auth && unauth)
		telemetry_login(m->path, rc == 0);
	req->fields = NULL;
	json_decref(fields);
	if (te)
		token_entry_free(te);
	req->token = NULL;
	if (m)
		router_release(m);
	return rc;
}
