/*
 * sys.c - the `sys/` backend: mounts, auth mounts, policies, capabilities,
 * rotation and key status, rekey, generate-root, seal, leader and the
 * internal UI mount lookup the Vault CLI uses before every `kv` command.
 * (sys/init, sys/unseal, sys/seal-status and sys/health are served before
 * routing because they work while sealed: see core.c.)
 * The backend instance is the core itself.
 */
#include "core/sys.h"

#include "core/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/access.h"
#include "core/audit_broker.h"
#include "core/barrier.h"
#include "core/expiration.h"
#include "core/leases.h"
#include "core/policy.h"
#include "core/router.h"
#include "core/state.h"
#include "core/sys_raft.h"
#include "core/telemetry.h"
#include "core/token.h"
#include "core/unseal.h"
#include "core/wrapping.h"
#include "logical/tools.h"
#include "physical/raft.h"
#include "util/hcl.h"
#include "util/rand.h"
#include "util/timefmt.h"

/* The backend instance is the core (router.c: core_private). */
static struct core *C(struct logical_request *req)
{
	return req->backend;
}

void sys_raw_json(struct logical_response *resp, json_t *obj)
{
	resp->raw_body = json_dumps(obj, JSON_COMPACT);
	resp->raw_len = resp->raw_body ? strlen(resp->raw_body) : 0;
	resp->raw_content_type = strdup("application/json");
	resp->raw = true;
	json_decref(obj);
}

static int top(struct logical_response *resp, json_t *data)
{
	resp->data = data;
	resp->data_at_top = true;
	return data ? 0 : VERR_INTERNAL;
}

/* Endpoints Vault serves outside its logical layer answer a bare object. */
static int bare(struct logical_response *resp, json_t *data)
{
	if (!data)
		return VERR_INTERNAL;
	sys_raw_json(resp, data);
	return 0;
}

/* ---- seal, rotate, key status ---- */

/* Both happen once the request has released the state lock (state.c). */
static int h_seal(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	state_request_seal(C(req));
	return 0;
}

static int h_step_down(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	state_request_step_down(C(req)); /* without HA: nothing to hand over */
	return 0;
}

static int h_rotate(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	uint32_t term;
	return barrier_rotate(C(req)->barrier, &term, err);
}

static int h_key_status(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	uint32_t term;
	int64_t installed;
	uint64_t enc;
	int rc = barrier_key_status(C(req)->barrier, &term, &installed, &enc, err);
	if (rc)
		return rc;
	char t[TIMEFMT_MAX];
	timefmt_rfc3339(t, installed, 0, TIMEFMT_SECONDS);
	json_t *d = json_pack("{s:I,s:s,s:I}", "term", (json_int_t)term, "install_time", t,
			      "encryptions", (json_int_t)enc);
	return top(resp, d);
}

/* ---- rekey / generate-root (unauthenticated, like Vault) ---- */

static int h_rekey_init(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_rekey(C(req), req->op, "init", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_rekey_update(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_rekey(C(req), req->op, "update", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_rekey_verify(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	json_t *out = NULL;
	bool rec = strstr(req->path, "recovery") != NULL;
	int rc = unseal_rekey(C(req), req->op, rec ? "recovery-verify" : "verify", req->data, &out,
			      err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_rekey_backup(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	json_t *out = NULL;
	bool rec = strstr(req->path, "recovery") != NULL;
	int rc = unseal_rekey(C(req), req->op, rec ? "recovery-backup" : "backup", req->data, &out,
			      err);
	if (!rc && out)
		return top(resp, out); /* a logical response in Vault: data too */
	return rc;
}

/* sys/rekey-recovery-key/init and /update: the same ceremony over the recovery keys */
static int h_rekey_recovery_init(struct logical_request *req, struct logical_response *resp,
				 struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_rekey(C(req), req->op, "recovery-init", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_rekey_recovery_update(struct logical_request *req, struct logical_response *resp,
				   struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_rekey(C(req), req->op, "recovery-update", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_genroot_attempt(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_generate_root(C(req), req->op, "attempt", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

static int h_genroot_update(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	json_t *out = NULL;
	int rc = unseal_generate_root(C(req), req->op, "update", req->data, &out, err);
	if (!rc && out)
		return bare(resp, out);
	return rc;
}

/* ---- mounts ---- */

static int h_mounts_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return top(resp, router_list(C(req), false));
}

static int h_auth_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return top(resp, router_list(C(req), true));
}

static bool is_auth_req(struct logical_request *req)
{
	return !strncmp(req->rel_path, "auth", 4);
}

static int h_mount_read(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct mount_entry *m = router_get(C(req), is_auth_req(req), request_str(req, "path"));
	if (!m)
		return verr_set(err, VERR_INVALID, "no mount at \"%s\"", request_str(req, "path"));
	json_t *d = router_mount_json(m);
	router_release(m);
	return top(resp, d);
}

static int h_mount_enable(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return router_mount(C(req), is_auth_req(req), request_str(req, "path"), req->data, err);
}

/* Revoke the mount's leases while its backend is still reachable (dynamic
 * credentials are really removed), then remove it; a failed revocation
 * keeps the mount, as Vault does. */
static int h_mount_disable(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	struct core *c = C(req);
	bool is_auth = is_auth_req(req);
	const char *path = request_str(req, "path");
	char *full = NULL;
	int rc = router_unmount_target(c, is_auth, path, &full, err);
	if (rc || !full)
		return rc;
	if (leases_revoke_mount(c, full))
		rc = verr_set(err, VERR_INVALID, "failed to revoke the leases of \"%s\"; the mount is kept",
			      full);
	else
		rc = router_unmount(c, is_auth, path, err);
	free(full);
	return rc;
}

static int h_tune_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct core *c = C(req);
	struct mount_entry *m = router_get(c, is_auth_req(req), request_str(req, "path"));
	if (!m)
		return verr_set(err, VERR_INVALID, "cannot fetch sysview for path \"%s\"", request_str(req, "path"));
	json_int_t dl = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	json_int_t ml = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	json_t *d = json_pack("{s:I,s:I,s:b,s:s}", "default_lease_ttl",
			      dl ? dl : (json_int_t)c->o.default_lease_ttl, "max_lease_ttl",
			      ml ? ml : (json_int_t)c->o.max_lease_ttl, "force_no_cache", 0,
			      "description", m->description ? m->description : "");
	if (json_object_size(m->options))
		json_object_set(d, "options", m->options);
	const char *keys[] = {"audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
			      "listing_visibility", "passthrough_request_headers",
			      "allowed_response_headers", "token_type", NULL};
	for (int i = 0; keys[i]; i++)
		if (json_object_get(m->config, keys[i]))
			json_object_set(d, keys[i], json_object_get(m->config, keys[i]));
	if (m->is_auth && !json_object_get(d, "token_type"))
		json_object_set_new(d, "token_type", json_string("default-service"));
	router_release(m);
	return top(resp, d);
}

static int h_tune_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return router_tune(C(req), is_auth_req(req), request_str(req, "path"), req->data, err);
}

static int h_remount(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	const char *from = request_str(req, "from"), *to = request_str(req, "to");
	if (!from || !*from || !to || !*to)
		return verr_set(err, VERR_INVALID, "both \"from\" and \"to\" must be specified");
	int rc = router_remount(C(req), from, to, err);
	if (rc)
		return rc;
	char id[RAND_UUID_LEN + 1];
	rc = rand_uuid(id, err);
	if (rc)
		return rc;
	/* moves are synchronous here: remember the result for remount/status */
	struct storage_view *v = &C(req)->sys_view;
	json_t *st = json_pack("{s:s,s:{s:s,s:s,s:s}}", "migration_id", id, "migration_info",
			       "source_mount", from, "target_mount", to, "status", "success");
	char key[80];
	snprintf(key, sizeof(key), "remount/%s", id);
	view_put_json(v, key, st, NULL);
	json_decref(st);
	return top(resp, json_pack("{s:s}", "migration_id", id));
}

static int h_remount_status(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	char key[128];
	snprintf(key, sizeof(key), "remount/%s", request_str(req, "id"));
	json_t *st = NULL;
	int rc = view_get_json(&C(req)->sys_view, key, &st, err);
	if (rc)
		return rc;
	if (!st)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	return top(resp, st);
}

/* ---- internal UI mounts (Vault CLI kv preflight) ---- */

/* The mounts a caller may learn about: with a token, those it holds some
 * capability under (Vault's hasMountAccess); without one, those tuned
 * listing_visibility = "unauth". */
static bool mount_visible(struct core *c, const struct logical_request *req,
			  const struct mount_entry *m, struct verr *err)
{
	if (!req->token) {
		const char *lv = json_string_value(json_object_get(m->config, "listing_visibility"));
		return lv && !strcmp(lv, "unauth");
	}
	bool any = false;
	return access_any_below(c, req->token, m->path, &any, err) == 0 && any;
}

struct ui_list {
	struct core *c;
	const struct logical_request *req;
	json_t *secret, *auth;
};

static void ui_list_one(struct mount_entry *m, void *ctx)
{
	struct ui_list *u = ctx;
	if (!mount_visible(u->c, u->req, m, NULL))
		return;
	json_object_set_new(m->is_auth ? u->auth : u->secret, m->is_auth ? m->path + 5 : m->path,
			    router_mount_json(m));
}

static int h_ui_mounts(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct ui_list u = {.c = C(req), .req = req, .secret = json_object(), .auth = json_object()};
	router_foreach(C(req), ui_list_one, &u);
	return top(resp, json_pack("{s:o,s:o}", "secret", u.secret, "auth", u.auth));
}

static int h_ui_mount(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	if (!req->token)
		return verr_set(err, VERR_DENIED, "permission denied");
	const char *p = request_str(req, "path");
	int rc = router_valid_path(p, err);
	if (rc)
		return rc;
	struct mount_entry *m = router_route(C(req), p);
	if (!m)
		return verr_set(err, VERR_DENIED, "permission denied");
	if (!mount_visible(C(req), req, m, err)) {
		router_release(m);
		return verr_set(err, VERR_DENIED, "permission denied");
	}
	json_t *d = router_mount_json(m);
	json_object_set_new(d, "path", json_string(m->is_auth ? m->path + 5 : m->path));
	router_release(m);
	return top(resp, d);
}

/* ---- policies ---- */

static int h_policy_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	json_t *names = NULL;
	int rc = policy_store_list(C(req)->policies, &names, err);
	if (rc)
		return rc;
	if (req->op == LOP_LIST)
		return top(resp, json_pack("{s:o}", "keys", names));
	return top(resp, json_pack("{s:O,s:o}", "policies", names, "keys", names));
}

static int h_policy_read(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	char *text = NULL;
	const char *name = request_str(req, "name");
	int rc = policy_store_raw(C(req)->policies, name, &text, err);
	if (rc == 0 && !text)
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
	if (rc)
		return rc;
	bool legacy = !strncmp(req->rel_path, "policy/", 7);
	json_t *d = json_pack("{s:s,s:s}", "name", name, legacy ? "rules" : "policy", text);
	free(text);
	return top(resp, d);
}

static int h_policy_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	const char *text = request_str(req, "policy");
	if (!text || !*text)
		text = request_str(req, "rules");
	if (!text || !*text)
		return verr_set(err, VERR_INVALID, "'policy' parameter not supplied or empty");
	json_t *root = NULL;
	struct verr perr = {0};
	if (hcl_parse_json(&root, text, strlen(text), "policy", &perr))
		return verr_set(err, VERR_INVALID, "failed to parse policy: %s", perr.msg);
	int rc = policy_store_put(C(req)->policies, request_str(req, "name"), text, root, err);
	json_decref(root);
	return rc;
}

static int h_policy_delete(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return policy_store_delete(C(req)->policies, request_str(req, "name"), err);
}

/* ---- capabilities ---- */

static int caps_reply(struct core *c, const struct token_entry *te, struct logical_request *req,
		      struct logical_response *resp, struct verr *err)
{
	json_t *paths = request_json(req, "paths");
	const char *one = request_str(req, "path");
	json_t *list = json_array();
	if (json_is_array(paths))
		json_array_extend(list, paths);
	if (one && *one)
		json_array_append_new(list, json_string(one));
	if (json_array_size(list) == 0) {
		json_decref(list);
		return verr_set(err, VERR_INVALID, "missing paths");
	}
	json_t *d = json_object();
	size_t i;
	json_t *p;
	json_t *first = NULL;
	json_array_foreach(list, i, p) {
		json_t *caps = NULL;
		int rc = access_capabilities(c, te, json_string_value(p), &caps, err);
		if (rc) {
			json_decref(list);
			json_decref(d);
			return rc;
		}
		if (!first)
			first = caps;
		json_object_set_new(d, json_string_value(p), caps);
	}
	if (first)
		json_object_set(d, "capabilities", first);
	json_decref(list);
	return top(resp, d);
}

static int h_caps_self(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return caps_reply(C(req), req->token, req, resp, err);
}

static int h_caps_token(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	const char *tok = request_str(req, "token");
	struct token_entry *te = NULL;
	if (!tok || !*tok)
		return verr_set(err, VERR_INVALID, "missing token");
	int rc = access_token_lookup(C(req), tok, &te, NULL);
	if (rc) {
		/* Vault: an invalid token has no capabilities */
		json_t *paths = request_json(req, "paths");
		json_t *d = json_object();
		size_t i;
		json_t *p;
		json_array_foreach(paths, i, p)
			json_object_set_new(d, json_string_value(p), json_pack("[s]", "deny"));
		if (request_str(req, "path") && *request_str(req, "path"))
			json_object_set_new(d, request_str(req, "path"), json_pack("[s]", "deny"));
		json_object_set_new(d, "capabilities", json_pack("[s]", "deny"));
		return top(resp, d);
	}
	rc = caps_reply(C(req), te, req, resp, err);
	token_entry_free(te);
	return rc;
}

static int h_caps_accessor(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	const char *acc = request_str(req, "accessor");
	struct token_entry *te = NULL;
	if (!acc || !*acc)
		return verr_set(err, VERR_INVALID, "missing accessor");
	int rc = access_token_lookup_accessor(C(req), acc, &te, err);
	if (rc)
		return verr_set(err, VERR_INVALID, "invalid accessor");
	rc = caps_reply(C(req), te, req, resp, err);
	token_entry_free(te);
	return rc;
}

/* ---- misc ---- */

int sys_leader_status(struct core *c, json_t **out, struct verr *err)
{
	char *value = NULL, *addr = NULL, *cluster = NULL;
	bool self = false;
	*out = NULL;
	int rc = state_leader_value(c, &value, &self, err);
	if (rc)
		return rc;
	if (value && cluster_parse_advertisement(value, &addr, &cluster)) {
		free(value);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	free(value);
	bool ha = c->o.ha != NULL;
	json_t *o = json_pack("{s:b,s:b,s:s,s:s,s:b,s:i,s:i,s:i}", "ha_enabled", ha, "is_self",
			      ha && self, "leader_address", ha && addr ? addr : "",
			      "leader_cluster_address", ha && cluster ? cluster : "",
			      "performance_standby", 0, "performance_standby_last_remote_wal", 0,
			      "raft_committed_index", 0, "raft_applied_index", 0);
	if (o && ha && self) {
		char t[TIMEFMT_MAX];
		timefmt_rfc3339(t, c->active_since, 0, TIMEFMT_SECONDS);
		json_object_set_new(o, "active_time", json_string(t));
	}
	struct physical_raft_status rs;
	struct verr re = {0};
	if (o && physical_is_raft(c->phys) && physical_raft_status(c->phys, &rs, &re) == 0) {
		json_object_set_new(o, "raft_committed_index", json_integer((json_int_t)rs.commit_index));
		json_object_set_new(o, "raft_applied_index", json_integer((json_int_t)rs.applied_index));
	}
	free(addr);
	free(cluster);
	if (!o)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = o;
	return 0;
}

static int h_leader(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	json_t *o = NULL;
	int rc = sys_leader_status(C(req), &o, err);
	if (rc)
		return rc;
	return bare(resp, o);
}

static int h_ha_status(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	json_t *o = NULL;
	int rc = cluster_ha_status(C(req), &o, err);
	return rc ? rc : top(resp, o);
}

static int h_version_history(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	const char *v = "1.15.0+coffer." COFFER_VERSION;
	return top(resp, json_pack("{s:[s],s:{s:{s:s,s:s}}}", "keys", v, "key_info", v,
				   "build_date", "2026-11-27T00:00:00Z", "previous_version", ""));
}

static const struct field_def f_path[] = {
	{"path", FT_STRING, NULL, "mount path", false},
	{"type", FT_STRING, NULL, "backend type", false},
	{"description", FT_STRING, NULL, "description", false},
	{"config", FT_ANY, NULL, "mount config", false},
	{"options", FT_ANY, NULL, "mount options", false},
	{"local", FT_BOOL, "false", "local mount", false},
	{"seal_wrap", FT_BOOL, "false", "seal wrap", false},
	{"external_entropy_access", FT_BOOL, "false", "", false},
	{"plugin_name", FT_STRING, NULL, "", false},
	{"plugin_version", FT_STRING, NULL, "", false},
	{0},
};

static const struct field_def f_tune[] = {
	{"path", FT_STRING, NULL, "mount path", false},
	{"default_lease_ttl", FT_ANY, NULL, "", false},
	{"max_lease_ttl", FT_ANY, NULL, "", false},
	{"description", FT_ANY, NULL, "", false},
	{"options", FT_ANY, NULL, "", false},
	{"audit_non_hmac_request_keys", FT_ANY, NULL, "", false},
	{"audit_non_hmac_response_keys", FT_ANY, NULL, "", false},
	{"listing_visibility", FT_ANY, NULL, "", false},
	{"passthrough_request_headers", FT_ANY, NULL, "", false},
	{"allowed_response_headers", FT_ANY, NULL, "", false},
	{"token_type", FT_ANY, NULL, "", false},
	{"force_no_cache", FT_ANY, NULL, "", false},
	{"plugin_version", FT_ANY, NULL, "", false},
	{0},
};

static const struct field_def f_policy[] = {
	{"name", FT_STRING, NULL, "policy name", false},
	{"policy", FT_STRING, NULL, "policy text (HCL or JSON)", false},
	{"rules", FT_STRING, NULL, "legacy name of policy", false},
	{0},
};

static const struct field_def f_caps[] = {
	{"path", FT_STRING, NULL, "", false},
	{"paths", FT_STRSLICE, NULL, "", false},
	{"token", FT_STRING, NULL, "", false},
	{"accessor", FT_STRING, NULL, "", false},
	{0},
};

static const struct field_def f_remount[] = {
	{"from", FT_STRING, NULL, "", true},
	{"to", FT_STRING, NULL, "", true},
	{0},
};

static const struct field_def f_any[] = {
	{"key", FT_ANY, NULL, "", false},
	{"nonce", FT_ANY, NULL, "", false},
	{"secret_shares", FT_ANY, NULL, "", false},
	{"secret_threshold", FT_ANY, NULL, "", false},
	{"pgp_keys", FT_ANY, NULL, "", false},
	{"backup", FT_ANY, NULL, "", false},
	{"require_verification", FT_ANY, NULL, "", false},
	{"otp", FT_ANY, NULL, "", false},
	{"pgp_key", FT_ANY, NULL, "", false},
	{0},
};


static const struct path_def sys_paths[] = {
	{.pattern = "seal", .ops = {{LOP_UPDATE, h_seal}}, .sudo = true,
	 .help = "Seal the server: keys are wiped until the next unseal."},
	{.pattern = "step-down", .ops = {{LOP_UPDATE, h_step_down}}, .sudo = true},
	{.pattern = "rotate", .ops = {{LOP_UPDATE, h_rotate}}, .sudo = true,
	 .help = "Add a new term to the keyring; new writes use it."},
	{.pattern = "key-status", .ops = {{LOP_READ, h_key_status}}},
	{.pattern = "rekey/init", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_READ, h_rekey_init}, {LOP_UPDATE, h_rekey_init}, {LOP_DELETE, h_rekey_init}}},
	{.pattern = "rekey/update", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_UPDATE, h_rekey_update}}},
	{.pattern = "rekey/verify", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_READ, h_rekey_verify}, {LOP_UPDATE, h_rekey_verify}, {LOP_DELETE, h_rekey_verify}}},
	{.pattern = "rekey-recovery-key/verify", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_READ, h_rekey_verify}, {LOP_UPDATE, h_rekey_verify}, {LOP_DELETE, h_rekey_verify}}},
	{.pattern = "rekey/backup", .fields = f_any, .sudo = true,
	 .ops = {{LOP_READ, h_rekey_backup}, {LOP_DELETE, h_rekey_backup}}},
	{.pattern = "rekey/recovery-key-backup", .fields = f_any, .sudo = true,
	 .ops = {{LOP_READ, h_rekey_backup}, {LOP_DELETE, h_rekey_backup}}},
	{.pattern = "rekey-recovery-key/init", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_READ, h_rekey_recovery_init}, {LOP_UPDATE, h_rekey_recovery_init},
		 {LOP_DELETE, h_rekey_recovery_init}}},
	{.pattern = "rekey-recovery-key/update", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_UPDATE, h_rekey_recovery_update}}},
	{.pattern = "generate-root/attempt", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_READ, h_genroot_attempt}, {LOP_UPDATE, h_genroot_attempt},
		 {LOP_DELETE, h_genroot_attempt}}},
	{.pattern = "generate-root/update", .fields = f_any, .unauthenticated = true,
	 .ops = {{LOP_UPDATE, h_genroot_update}}},
	{.pattern = "mounts/?", .ops = {{LOP_READ, h_mounts_list}}},
	{.pattern = "mounts/{path*}/tune", .fields = f_tune,
	 .ops = {{LOP_READ, h_tune_read}, {LOP_UPDATE, h_tune_write}}},
	{.pattern = "mounts/{path*}", .fields = f_path,
	 .ops = {{LOP_READ, h_mount_read}, {LOP_UPDATE, h_mount_enable}, {LOP_DELETE, h_mount_disable}}},
	{.pattern = "auth/?", .ops = {{LOP_READ, h_auth_list}}},
	{.pattern = "auth/{path*}/tune", .fields = f_tune, .sudo = true,
	 .ops = {{LOP_READ, h_tune_read}, {LOP_UPDATE, h_tune_write}}},
	{.pattern = "auth/{path*}", .fields = f_path, .sudo = true,
	 .ops = {{LOP_READ, h_mount_read}, {LOP_UPDATE, h_mount_enable}, {LOP_DELETE, h_mount_disable}}},
	/* audit devices (sys_audit.c) */
	{.pattern = "audit/?", .ops = {{LOP_READ, sys_audit_list}}, .sudo = true},
	{.pattern = "audit/{path*}/chain-key", .fields = sys_audit_fields, .sudo = true,
	 .ops = {{LOP_READ, sys_audit_chain_key}}},
	{.pattern = "audit/{path*}", .fields = sys_audit_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_audit_enable}, {LOP_DELETE, sys_audit_disable}}},
	{.pattern = "audit-hash/{path*}", .fields = sys_audit_hash_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_audit_hash}}},
	{.pattern = "remount", .fields = f_remount, .ops = {{LOP_UPDATE, h_remount}}, .sudo = true},
	{.pattern = "remount/status/{id}", .ops = {{LOP_READ, h_remount_status}}},
	{.pattern = "internal/ui/mounts/?", .ops = {{LOP_READ, h_ui_mounts}}, .unauthenticated = true},
	{.pattern = "internal/ui/mounts/{path*}", .ops = {{LOP_READ, h_ui_mount}},
	 .unauthenticated = true},
	{.pattern = "policy/?", .ops = {{LOP_READ, h_policy_list}, {LOP_LIST, h_policy_list}}},
	{.pattern = "policy/{name}", .fields = f_policy,
	 .ops = {{LOP_READ, h_policy_read}, {LOP_UPDATE, h_policy_write}, {LOP_DELETE, h_policy_delete}}},
	{.pattern = "policies/acl/?", .ops = {{LOP_LIST, h_policy_list}}},
	{.pattern = "policies/acl/{name}", .fields = f_policy,
	 .ops = {{LOP_READ, h_policy_read}, {LOP_UPDATE, h_policy_write}, {LOP_DELETE, h_policy_delete}}},
	{.pattern = "capabilities-self", .fields = f_caps, .ops = {{LOP_UPDATE, h_caps_self}}},
	{.pattern = "capabilities", .fields = f_caps, .ops = {{LOP_UPDATE, h_caps_token}}},
	{.pattern = "capabilities-accessor", .fields = f_caps, .ops = {{LOP_UPDATE, h_caps_accessor}}},
	{.pattern = "wrapping/wrap", .allow_unknown_fields = true,
	 .ops = {{LOP_UPDATE, sys_wrapping_wrap}}},
	{.pattern = "wrapping/unwrap", .fields = sys_wrapping_fields,
	 .ops = {{LOP_UPDATE, sys_wrapping_unwrap}}},
	{.pattern = "wrapping/lookup", .fields = sys_wrapping_fields, .unauthenticated = true,
	 .ops = {{LOP_UPDATE, sys_wrapping_lookup}, {LOP_READ, sys_wrapping_lookup}}},
	{.pattern = "wrapping/rewrap", .fields = sys_wrapping_fields,
	 .ops = {{LOP_UPDATE, sys_wrapping_rewrap}}},
	{.pattern = "tools/hash", .fields = logical_tools_hash_fields,
	 .ops = {{LOP_UPDATE, logical_tools_hash}}},
	{.pattern = "tools/hash/{urlalgorithm}", .fields = logical_tools_hash_fields,
	 .ops = {{LOP_UPDATE, logical_tools_hash}}},
	{.pattern = "tools/random", .fields = logical_tools_random_fields,
	 .ops = {{LOP_UPDATE, logical_tools_random}}},
	{.pattern = "tools/random/{source}", .fields = logical_tools_random_fields,
	 .ops = {{LOP_UPDATE, logical_tools_random}}},
	{.pattern = "tools/random/{source}/{urlbytes}", .fields = logical_tools_random_fields,
	 .ops = {{LOP_UPDATE, logical_tools_random}}},
	{.pattern = "leader", .ops = {{LOP_READ, h_leader}}, .unauthenticated = true},
	{.pattern = "ha-status", .ops = {{LOP_READ, h_ha_status}}},
	{.pattern = "metrics", .fields = telemetry_metrics_fields, .ops = {{LOP_READ, telemetry_sys_metrics}}},
	{.pattern = "version-history/?", .ops = {{LOP_LIST, h_version_history}}},
	/* integrated raft storage (sys_raft.c) */
	{.pattern = "storage/raft/snapshot", .sudo = true,
	 .ops = {{LOP_READ, sys_raft_snapshot}, {LOP_UPDATE, sys_raft_snapshot}}},
	{.pattern = "storage/raft/snapshot-force", .sudo = true,
	 .ops = {{LOP_UPDATE, sys_raft_snapshot_force}}},
	{.pattern = "storage/raft/configuration", .ops = {{LOP_READ, sys_raft_configuration}}},
	{.pattern = "storage/raft/remove-peer", .fields = sys_raft_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_raft_remove_peer}}},
	{.pattern = "storage/raft/autopilot/state", .ops = {{LOP_READ, sys_raft_autopilot_state}}},
	{.pattern = "storage/raft/autopilot/configuration", .fields = sys_raft_autopilot_fields,
	 .ops = {{LOP_READ, sys_raft_autopilot_config}, {LOP_UPDATE, sys_raft_autopilot_config}}},
	{.pattern = "storage/raft/join", .unauthenticated = true,
	 .ops = {{LOP_UPDATE, sys_raft_join_unsealed}}},
	{.pattern = "storage/raft/bootstrap/challenge", .fields = sys_raft_fields,
	 .unauthenticated = true, .ops = {{LOP_UPDATE, sys_raft_challenge}}},
	{.pattern = "storage/raft/bootstrap/answer", .fields = sys_raft_fields,
	 .unauthenticated = true, .ops = {{LOP_UPDATE, sys_raft_answer}}},
	/* password policies (sys_pwpolicy.c) */
	{.pattern = "policies/password/?", .ops = {{LOP_LIST, sys_pwpolicy_list}}},
	{.pattern = "policies/password/{name}/generate", .fields = sys_pwpolicy_fields,
	 .ops = {{LOP_READ, sys_pwpolicy_generate}}},
	{.pattern = "policies/password/{name}", .fields = sys_pwpolicy_fields,
	 .ops = {{LOP_READ, sys_pwpolicy_read}, {LOP_UPDATE, sys_pwpolicy_write},
		 {LOP_CREATE, sys_pwpolicy_write}, {LOP_DELETE, sys_pwpolicy_delete}}},
	/* leases (sys_leases.c); the un-prefixed forms are Vault's legacy paths */
	{.pattern = "leases/lookup", .fields = sys_leases_fields, .ops = {{LOP_UPDATE, sys_leases_lookup}}},
	{.pattern = "leases/lookup/{prefix**}", .fields = sys_leases_fields, .sudo = true,
	 .ops = {{LOP_LIST, sys_leases_list}}},
	{.pattern = "leases/revoke-prefix/{prefix*}", .fields = sys_leases_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_leases_revoke_prefix}}},
	{.pattern = "revoke-prefix/{prefix*}", .fields = sys_leases_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_leases_revoke_prefix}}},
	{.pattern = "leases/revoke-force/{prefix*}", .fields = sys_leases_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_leases_revoke_force}}},
	{.pattern = "revoke-force/{prefix*}", .fields = sys_leases_fields, .sudo = true,
	 .ops = {{LOP_UPDATE, sys_leases_revoke_force}}},
	{.pattern = "leases/renew", .fields = sys_leases_fields, .ops = {{LOP_UPDATE, sys_leases_renew}}},
	{.pattern = "leases/renew/{url_lease_id*}", .fields = sys_leases_fields,
	 .ops = {{LOP_UPDATE, sys_leases_renew}}},
	{.pattern = "renew", .fields = sys_leases_fields, .ops = {{LOP_UPDATE, sys_leases_renew}}},
	{.pattern = "renew/{url_lease_id*}", .fields = sys_leases_fields,
	 .ops = {{LOP_UPDATE, sys_leases_renew}}},
	{.pattern = "leases/revoke", .fields = sys_leases_fields, .ops = {{LOP_UPDATE, sys_leases_revoke}}},
	{.pattern = "leases/revoke/{url_lease_id*}", .fields = sys_leases_fields,
	 .ops = {{LOP_UPDATE, sys_leases_revoke}}},
	{.pattern = "revoke", .fields = sys_leases_fields, .ops = {{LOP_UPDATE, sys_leases_revoke}}},
	{.pattern = "revoke/{url_lease_id*}", .fields = sys_leases_fields,
	 .ops = {{LOP_UPDATE, sys_leases_revoke}}},
	{.pattern = "leases/tidy", .ops = {{LOP_UPDATE, sys_leases_tidy}}},
	{.pattern = "leases/count", .fields = sys_leases_fields, .ops = {{LOP_READ, sys_leases_count}}},
	{0},
};

static const struct path_def *sys_table(void *inst)
{
	return sys_paths;
}

const struct backend_ops sys_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "system",
	.paths = sys_table,
};
