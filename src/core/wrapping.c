/*
 * wrapping.c - response wrapping and the sys/wrapping/ endpoints
 * (wrapping.h has the design: the token, what its cubbyhole holds).
 *
 * Vault's contract (api-docs/system/wrapping-*.mdx, concepts/response-
 * wrapping.mdx): X-Vault-Wrap-TTL (or a handler asking for it) turns a
 * response into {wrap_info: {token, accessor, ttl, creation_time,
 * creation_path, wrapped_accessor}}; unwrap hands back the original body
 * once; lookup (unauthenticated) tells creation_ttl/time/path without
 * using the token; rewrap moves the body into a new token with the same
 * TTL and creation path. A used, expired or unknown wrapping token is a
 * 400 "wrapping token is not valid or does not exist".
 *
 * The cubbyhole is reached through the cubbyhole engine's own path table
 * (as Vault's router.Route does), with the wrapping token's hash as the
 * caller's identity, so the storage layout stays the engine's.
 */
#include "core/wrapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/router.h"
#include "core/token.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/timefmt.h"

#define WRAPPING_POLICY "response-wrapping"

bool wrapping_checked_path(const char *path)
{
	return !strcmp(path, "sys/wrapping/lookup") || !strcmp(path, "sys/wrapping/unwrap") ||
	       !strcmp(path, "sys/wrapping/rewrap");
}

/* data.token when the body has one, else the client token; *out NULL for a
 * token member that is not a string. */
static int target_token(const struct logical_request *req, const char **out, bool *third_party,
			struct verr *err)
{
	json_t *t = json_is_object(req->data) ? json_object_get(req->data, "token") : NULL;
	*third_party = false;
	if (t && !json_is_null(t)) {
		if (!json_is_string(t))
			return verr_set(err, VERR_INVALID, "could not parse token");
		*out = json_string_value(t);
		*third_party = true;
		return 0;
	}
	*out = req->client_token ? req->client_token : "";
	return 0;
}

static bool is_wrapping_entry(const struct token_entry *te)
{
	return json_array_size(te->policies) == 1 &&
	       !strcmp(json_string_value(json_array_get(te->policies, 0)), WRAPPING_POLICY);
}

/* The live wrapping token `raw` (a reference), or WRAPPING_INVALID_MSG. */
static int wrapping_entry(struct core *c, const char *raw, struct token_entry **out,
			  struct verr *err)
{
	*out = NULL;
	if (!raw || !*raw || !c->tokens)
		return verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
	struct token_entry *te = NULL;
	if (token_store_lookup(c->tokens, raw, &te, NULL) != 0 || !te)
		return verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
	if (!is_wrapping_entry(te)) {
		token_entry_free(te);
		return verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
	}
	*out = te;
	return 0;
}

int wrapping_validate(struct core *c, const struct logical_request *req, struct verr *err)
{
	const char *raw = NULL;
	bool third = false;
	int rc = target_token(req, &raw, &third, err);
	if (rc)
		return rc;
	struct token_entry *te = NULL;
	rc = wrapping_entry(c, raw, &te, err);
	token_entry_free(te);
	return rc;
}

int64_t wrapping_ttl(const struct logical_request *req, const struct logical_response *resp)
{
	int64_t ttl = resp->wrap_ttl > 0 ? resp->wrap_ttl : 0;
	if (req->wrap_ttl > 0 && (ttl == 0 || req->wrap_ttl < ttl))
		ttl = req->wrap_ttl;
	return ttl;
}

/* ---- the cubbyhole of a wrapping token ---- */

/* One operation on cubbyhole/<key> as the token with this hash. *out
 * (read) is the entry's data (owned), NULL when absent. */
static int cubby_op(struct core *c, enum logical_op op, const char *hash, const char *key,
		    json_t *data, json_t **out, struct verr *err)
{
	char path[64];
	snprintf(path, sizeof(path), "cubbyhole/%s", key);
	if (out)
		*out = NULL;
	struct mount_entry *m = router_route(c, path);
	if (!m || strcmp(m->type, "cubbyhole") || !m->ops->paths) {
		if (m)
			router_release(m);
		return verr_set(err, VERR_INTERNAL, "the cubbyhole mount is missing");
	}
	json_t *empty = data ? NULL : json_object();
	struct logical_request r = {
		.op = op,
		.path = path,
		.mount_path = m->path,
		.rel_path = path + strlen(m->path),
		.mount_type = m->type,
		.mount_accessor = m->accessor,
		.mount_uuid = m->uuid,
		.mount_options = m->options,
		.data = data ? data : empty,
		.client_token_hash = hash,
		.storage = &m->view,
		.backend = m->inst,
		.sys = &m->sys,
	};
	struct logical_response resp = {0};
	struct verr e = {0};
	int rc = framework_handle(m->ops->paths(m->inst), &r, &resp, &e);
	if (rc == VERR_NOT_FOUND && op == LOP_READ) {
		rc = 0; /* absent: *out stays NULL */
	} else if (rc) {
		*err = e;
	} else if (out) {
		*out = resp.data;
		resp.data = NULL; /* transferred */
	}
	logical_response_reset(&resp);
	json_decref(empty);
	router_release(m);
	return rc;
}

/* ---- wrapping a response ---- */

/* The HTTP body the response would have had (Vault's
 * LogicalResponseToHTTPResponse plus the request id), JSON text. */
static char *response_body(const struct logical_request *req, const struct logical_response *resp)
{
	if (resp->raw)
		return resp->raw_len ? strndup(resp->raw_body, resp->raw_len) : strdup("");
	json_t *lease = resp->lease_out;
	const char *lease_id = lease ? json_string_value(json_object_get(lease, "lease_id")) : NULL;
	json_t *dur = lease ? json_object_get(lease, "lease_duration") : NULL;
	json_t *e = json_object();
	if (!e)
		return NULL;
	json_object_set_new(e, "request_id", json_string(req->request_id ? req->request_id : ""));
	json_object_set_new(e, "lease_id", json_string(lease_id ? lease_id : ""));
	json_object_set_new(e, "renewable",
			    json_boolean(lease && json_is_true(json_object_get(lease, "renewable"))));
	json_object_set_new(e, "lease_duration",
			    json_integer(json_is_integer(dur) ? json_integer_value(dur) : 0));
	json_object_set(e, "data", resp->data ? resp->data : json_null());
	json_object_set_new(e, "wrap_info", json_null());
	json_object_set(e, "warnings", resp->warnings ? resp->warnings : json_null());
	json_object_set(e, "auth", resp->auth_out ? resp->auth_out : json_null());
	json_object_set_new(e, "mount_type",
			    json_string(resp->mount_type_out ? resp->mount_type_out : ""));
	size_t len = 0;
	char *s = jsonw_dumps(e, 17, &len);
	json_decref(e);
	return s;
}

/* The token's raw id goes through here and is wiped with the body. */
static void wipe_free(char *s)
{
	if (s)
		token_free_raw(s);
}

int wrapping_wrap(struct core *c, const struct logical_request *req,
		  struct logical_response *resp, int64_t ttl, struct verr *err)
{
	const char *creation_path =
		resp->wrap_creation_path && *resp->wrap_creation_path ? resp->wrap_creation_path
								       : req->path;
	char *body = NULL;
	/* a rewrap moves the stored body as it is, never nesting it */
	if (!strcmp(req->path, "sys/wrapping/rewrap")) {
		const char *r = json_string_value(json_object_get(resp->data, "response"));
		body = strdup(r ? r : "");
	} else {
		body = response_body(req, resp);
	}
	if (!body)
		return verr_set(err, VERR_INTERNAL, "failed to encode the response to wrap");

	json_t *pol = json_pack("[s]", WRAPPING_POLICY);
	struct token_params p = {
		.policies = pol,
		.policies_final = true,
		.no_default_policy = true,
		.display_name = "",
		.path = req->path,
		.ttl = ttl,
		.explicit_max_ttl = ttl,
		.num_uses = 1,
		.renewable = false,
	};
	char *tok = NULL;
	struct token_entry *te = NULL;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int rc = pol ? token_store_issue(c->tokens, &p, &tok, &te, err)
		     : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(pol);
	if (rc) {
		wipe_free(body);
		return rc;
	}
	char tbuf[TIMEFMT_MAX];
	const char *ctime = timefmt_rfc3339(tbuf, (int64_t)now.tv_sec, now.tv_nsec, TIMEFMT_NANO);
	json_t *rdata = json_pack("{s:s}", "response", body);
	json_t *idata = json_pack("{s:I, s:s, s:s}", "creation_ttl", (json_int_t)te->ttl,
				  "creation_time", ctime ? ctime : "", "creation_path", creation_path);
	if (!rdata || !idata)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = cubby_op(c, LOP_UPDATE, te->hash, "response", rdata, NULL, err);
	if (!rc)
		rc = cubby_op(c, LOP_UPDATE, te->hash, "wrapinfo", idata, NULL, err);
	json_decref(rdata);
	json_decref(idata);
	wipe_free(body);
	if (rc) {
		struct verr e = {0};
		if (token_store_revoke(c->tokens, te->hash, true, &e))
			log_error("core", "failed to revoke a wrapping token after a failed wrap: %s",
				  e.msg);
		token_free_raw(tok);
		token_entry_free(te);
		return rc;
	}

	json_t *wi = json_pack("{s:s, s:s, s:I, s:s, s:s}", "token", tok, "accessor", te->accessor,
			       "ttl", (json_int_t)te->ttl, "creation_time", ctime ? ctime : "",
			       "creation_path", creation_path);
	const char *wacc = json_string_value(json_object_get(resp->auth_out, "accessor"));
	if (wi && wacc && *wacc)
		json_object_set_new(wi, "wrapped_accessor", json_string(wacc));
	token_free_raw(tok);
	if (!wi) {
		struct verr e = {0};
		token_store_revoke(c->tokens, te->hash, true, &e);
		token_entry_free(te);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	token_entry_free(te);
	/* the client gets wrap_info and nothing else (Vault's respondLogical) */
	logical_response_reset(resp);
	resp->wrap_info_out = wi;
	return 0;
}

void wrapping_discard(struct core *c, const struct logical_response *resp)
{
	const char *tok = json_string_value(json_object_get(resp->wrap_info_out, "token"));
	struct token_entry *te = NULL;
	struct verr e = {0};
	if (!tok || !c->tokens || token_store_lookup(c->tokens, tok, &te, NULL) != 0)
		return;
	if (token_store_revoke(c->tokens, te->hash, true, &e))
		log_error("core", "failed to revoke the wrapping token of an unaudited response: %s",
			  e.msg);
	token_entry_free(te);
}

/* ---- sys/wrapping/... ---- */

const struct field_def sys_wrapping_fields[] = {
	{"token", FT_STRING, NULL, "the wrapping token (default: the client token)", false},
	{NULL, 0, NULL, NULL, false},
};

static struct core *C(struct logical_request *req)
{
	return req->backend; /* the sys backend's instance */
}

/* sys/wrapping/wrap: the request's body becomes the wrapped response. */
int sys_wrapping_wrap(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	if (req->wrap_ttl <= 0)
		return verr_set(err, VERR_INVALID, "must specify a wrapping TTL");
	resp->data = json_deep_copy(req->data);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/*
 * The wrapping token a handler acts on: the client token (the pipeline
 * already counted its one use and revokes it once the request ends), or a
 * token in the body (a third party: its use is counted here, and the
 * caller revokes it when done). *out is a reference.
 */
static int acted_token(struct logical_request *req, struct token_entry **out, bool *third,
		       struct verr *err)
{
	struct core *c = C(req);
	const char *raw = NULL;
	int rc = target_token(req, &raw, third, err);
	if (rc)
		return rc;
	if (!*third) {
		if (!req->token || !is_wrapping_entry(req->token))
			return verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
		*out = token_entry_ref((struct token_entry *)req->token);
		return 0;
	}
	rc = wrapping_entry(c, raw, out, err);
	if (rc)
		return rc;
	bool revoke_after = false;
	struct verr e = {0};
	/* two unwraps racing: only one counts the single use */
	if (token_store_use(c->tokens, *out, &revoke_after, &e)) {
		token_entry_free(*out);
		*out = NULL;
		return verr_set(err, VERR_INVALID, WRAPPING_INVALID_MSG);
	}
	return 0;
}

static void revoke_third(struct core *c, struct token_entry *te, bool third)
{
	struct verr e = {0};
	if (third && te && token_store_revoke(c->tokens, te->hash, true, &e))
		log_error("core", "failed to revoke a used wrapping token: %s", e.msg);
}

int sys_wrapping_unwrap(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct core *c = C(req);
	struct token_entry *te = NULL;
	bool third = false;
	int rc = acted_token(req, &te, &third, err);
	if (rc)
		return rc;
	json_t *stored = NULL;
	rc = cubby_op(c, LOP_READ, te->hash, "response", NULL, &stored, err);
	const char *body = json_string_value(json_object_get(stored, "response"));
	if (!rc && !stored)
		rc = verr_set(err, VERR_INVALID,
			      "no information found; wrapping token may be from a previous Vault version");
	else if (!rc && !body)
		rc = verr_set(err, VERR_INTERNAL, "no response found inside the cubbyhole");
	if (!rc && !*body) {
		resp->status = 204;
	} else if (!rc) {
		/* the original body, byte for byte (the client parses it) */
		resp->raw = true;
		resp->raw_body = strdup(body);
		resp->raw_len = resp->raw_body ? strlen(resp->raw_body) : 0;
		resp->raw_content_type = strdup("application/json");
		resp->status = 200;
		if (!resp->raw_body || !resp->raw_content_type)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	json_decref(stored);
	revoke_third(c, te, third);
	token_entry_free(te);
	return rc;
}

int sys_wrapping_lookup(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct core *c = C(req);
	const char *raw = NULL;
	bool third = false;
	int rc = target_token(req, &raw, &third, err);
	if (rc)
		return rc;
	if (!raw || !*raw)
		return verr_set(err, VERR_INVALID, "missing \"token\" value in input");
	struct token_entry *te = NULL;
	rc = wrapping_entry(c, raw, &te, err);
	if (rc)
		return rc;
	json_t *info = NULL;
	rc = cubby_op(c, LOP_READ, te->hash, "wrapinfo", NULL, &info, err);
	token_entry_free(te);
	if (rc)
		return rc;
	if (!info)
		return verr_set(err, VERR_INVALID,
				"no information found; wrapping token may be from a previous Vault version");
	json_t *d = json_object();
	const char *names[] = {"creation_ttl", "creation_time", "creation_path"};
	for (size_t i = 0; d && i < 3; i++) {
		json_t *v = json_object_get(info, names[i]);
		if (v)
			json_object_set(d, names[i], v);
	}
	json_decref(info);
	resp->data = d;
	return d ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int sys_wrapping_rewrap(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct core *c = C(req);
	struct token_entry *te = NULL;
	bool third = false;
	int rc = acted_token(req, &te, &third, err);
	if (rc)
		return rc;
	json_t *info = NULL, *stored = NULL;
	rc = cubby_op(c, LOP_READ, te->hash, "wrapinfo", NULL, &info, err);
	if (!rc)
		rc = cubby_op(c, LOP_READ, te->hash, "response", NULL, &stored, err);
	const char *body = json_string_value(json_object_get(stored, "response"));
	json_t *ttl = json_object_get(info, "creation_ttl");
	const char *path = json_string_value(json_object_get(info, "creation_path"));
	if (!rc && (!info || !body || !json_is_integer(ttl)))
		rc = verr_set(err, VERR_INVALID,
			      "no information found; wrapping token may be from a previous Vault version");
	if (!rc) {
		resp->data = json_pack("{s:s}", "response", body);
		resp->wrap_ttl = json_integer_value(ttl);
		resp->wrap_creation_path = path ? strdup(path) : NULL;
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	json_decref(info);
	json_decref(stored);
	revoke_third(c, te, third);
	token_entry_free(te);
	return rc;
}
