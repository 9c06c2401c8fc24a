/*
 * leases.c - the core's side of the expiration manager (leases.h over
 * expiration.c).
 *
 * Lease ids: a secret's is "<request path>/<24 base62>"; a token's is
 * "<token creation path>/<token hash>" (e.g. "auth/token/create/3fa9..."),
 * so the token store's callbacks can name a token's lease without an index.
 * TTL rules (Vault's): the secret's ttl, else the mount's default_lease_ttl,
 * else the server's; capped by the secret's max_ttl, the mount's
 * max_lease_ttl, else the server's, with a warning when capped. A renew never
 * extends a lease past issue time + that max.
 */
#include "core/leases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/expiration.h"
#include "core/router.h"
#include "core/token.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/rand.h"

static int64_t server_default(const struct core *c)
{
	return router_server_default_ttl(c);
}

static int64_t server_max(const struct core *c)
{
	return router_server_max_ttl(c);
}

static void cap_warning(struct logical_response *resp, json_t *warnings, int64_t ttl, int64_t max)
{
	char a[64], b[64];
	duration_format(a, sizeof(a), ttl);
	duration_format(b, sizeof(b), max);
	const char *fmt = "TTL of \"%s\" exceeded the effective max_ttl of \"%s\"; TTL value is capped accordingly";
	if (resp)
		logical_response_warn(resp, fmt, a, b);
	if (warnings) {
		char buf[256];
		snprintf(buf, sizeof(buf), fmt, a, b);
		json_array_append_new(warnings, json_string(buf));
	}
}

/* ---- manager callbacks ---- */

/* A request for a backend's lease callback, routed by the lease id. */
static int lease_request(struct core *c, const char *lease_id, const json_t *rec,
			 struct mount_entry **out_m, struct logical_request *req)
{
	struct mount_entry *m = router_route(c, lease_id);
	if (!m)
		return -1;
	const char *path = json_string_value(json_object_get(rec, "path"));
	memset(req, 0, sizeof(*req));
	req->path = path ? path : lease_id;
	req->mount_path = m->path;
	req->rel_path = strncmp(req->path, m->path, strlen(m->path)) == 0
				? req->path + strlen(m->path) : "";
	req->mount_type = m->type;
	req->mount_accessor = m->accessor;
	req->mount_uuid = m->uuid;
	req->mount_options = m->options;
	req->storage = &m->view;
	req->backend = m->inst;
	req->sys = &m->sys;
	req->secret_internal = json_object_get(rec, "internal");
	req->lease_issue_time = json_integer_value(json_object_get(rec, "issue_ms")) / 1000;
	*out_m = m;
	return 0;
}

static int hook_revoke(void *ctx, const char *lease_id, const json_t *rec, struct verr *err)
{
	struct core *c = ctx;
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	if (kind && strcmp(kind, "token") == 0) {
		const char *hash = json_string_value(json_object_get(rec, "token_hash"));
		if (!hash || !*hash)
			return 0; /* nothing to revoke */
		if (!c->tokens)
			return verr_set(err, VERR_SEALED, "Vault is sealed");
		return token_store_revoke(c->tokens, hash, false, err);
	}
	struct mount_entry *m = NULL;
	struct logical_request req;
	if (lease_request(c, lease_id, rec, &m, &req))
		return verr_set(err, VERR_INTERNAL, "no secrets engine is mounted for this lease");
	int rc = 0;
	if (m->ops->revoke) {
		json_t *data = json_object();
		struct logical_response resp = {0};
		req.op = LOP_REVOKE;
		req.data = data;
		req.fields = data;
		rc = m->ops->revoke(&req, &resp, err);
		logical_response_reset(&resp);
		json_decref(data);
	}
	router_release(m);
	return rc;
}

static int hook_renew(void *ctx, const char *lease_id, json_t *rec, int64_t increment,
		      int64_t now, json_t *warnings, struct verr *err)
{
	struct core *c = ctx;
	struct mount_entry *m = NULL;
	struct logical_request req;
	if (lease_request(c, lease_id, rec, &m, &req))
		return verr_set(err, VERR_INVALID, "lease is not renewable");
	int rc = 0;
	json_t *data = json_pack("{s:I}", "increment", (json_int_t)increment);
	struct logical_response resp = {0};
	if (!m->ops->renew) {
		rc = verr_set(err, VERR_INVALID, "lease is not renewable");
		goto out;
	}
	req.op = LOP_RENEW;
	req.data = data;
	req.fields = data;
	req.lease_increment = increment;
	rc = m->ops->renew(&req, &resp, err);
	if (rc)
		goto out;
	int64_t ttl = increment > 0 ? increment : json_integer_value(json_object_get(rec, "ttl"));
	if (resp.secret && resp.secret->ttl > 0)
		ttl = resp.secret->ttl;
	if (resp.secret && resp.secret->internal)
		json_object_set(rec, "internal", resp.secret->internal);
	if (ttl <= 0)
		ttl = server_default(c);
	int64_t max_ms = json_integer_value(json_object_get(rec, "max_ms"));
	int64_t expire = now + ttl * 1000;
	if (max_ms && expire > max_ms) {
		int64_t left = (max_ms - now) / 1000;
		if (left <= 0) {
			rc = verr_set(err, VERR_INVALID, "past the max TTL, cannot renew");
			goto out;
		}
		cap_warning(NULL, warnings, ttl, left);
		expire = now + left * 1000;
	}
	size_t i;
	json_t *w;
	json_array_foreach(resp.warnings, i, w)
		json_array_append(warnings, w);
	json_object_set_new(rec, "expire_ms", json_integer(expire));
	json_object_set_new(rec, "last_renewal_ms", json_integer(now));
out:
	logical_response_reset(&resp);
	json_decref(data);
	router_release(m);
	return rc;
}

/* ---- lifecycle (state.c) ---- */

int leases_open(struct core *c, struct verr *err)
{
	struct expiration_ops ops = {
		.revoke = hook_revoke,
		.renew = hook_renew,
		.ctx = c,
		/* revokes are storage-bound (two durable deletes each); the
		 * file backend's group commit turns concurrency into batching */
		.workers = 32,
	};
	return expiration_new(&c->expire, c->bphys, "sys/expire/", &ops, err);
}

int leases_start(struct core *c, struct verr *err)
{
	return c->expire ? expiration_start(c->expire, err) : 0;
}

void leases_stop(struct core *c)
{
	expiration_free(c->expire);
	c->expire = NULL;
}

/* ---- secrets ---- */

/*
 * Leases by token: "sys/expire-token/<token hash>/<hex lease id>" (empty
 * values, below the barrier) lists the secret leases a token created, so
 * revoking the token revokes them (Vault's revoke-by-token). Entries of
 * leases that ended on their own are harmless and go with the token.
 */
static void token_index_view(struct core *c, struct storage_view *v)
{
	storage_view_init(v, c->bphys, "sys/expire-token/");
}

static void token_index_add(struct core *c, const char *token_hash, const char *lease_id)
{
	struct storage_view v;
	token_index_view(c, &v);
	size_t ll = strlen(lease_id), hl = strlen(token_hash);
	char *key = malloc(hl + 2 + 2 * ll + 1);
	if (!key)
		return;
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): the hex loop below writes the NUL (snprintf) */
	memcpy(key, token_hash, hl);
	key[hl] = '/';
	for (size_t i = 0; i < ll; i++)
		snprintf(key + hl + 1 + 2 * i, 3, "%02x", (unsigned char)lease_id[i]);
	struct verr e = {0};
	if (view_put(&v, key, (const uint8_t *)"", 0, &e))
		log_warn("expire", "failed to index a lease by its token: %s", e.msg);
	free(key);
}

static void token_index_revoke(struct core *c, const char *token_hash)
{
	struct storage_view v;
	token_index_view(c, &v);
	char prefix[300];
	snprintf(prefix, sizeof(prefix), "%s/", token_hash);
	char **keys = NULL;
	size_t n = 0;
	struct verr e = {0};
	if (view_list(&v, prefix, &keys, &n, &e))
		return;
	for (size_t i = 0; i < n; i++) {
		size_t hl = strlen(keys[i]) / 2;
		char *id = malloc(hl + 1);
		if (!id)
			break;
		for (size_t j = 0; j < hl; j++) {
			unsigned int b = 0;
			/* NOLINTNEXTLINE(cert-err34-c): keys are hex this file wrote; b stays 0 on a bad digit */
			sscanf(keys[i] + 2 * j, "%2x", &b);
			id[j] = (char)b;
		}
		id[hl] = '\0';
		struct verr e2 = {0};
		int rc = expiration_revoke_lazy(c->expire, id, &e2);
		if (rc && rc != VERR_INVALID && rc != VERR_NOT_FOUND)
			log_warn("expire", "failed to revoke a lease of a revoked token: %s", e2.msg);
		char key[600];
		snprintf(key, sizeof(key), "%s%s", prefix, keys[i]);
		view_delete(&v, key, NULL);
		free(id);
	}
	physical_list_free(keys, n);
}

int leases_register(struct core *c, struct mount_entry *m, struct logical_request *req,
		    struct logical_response *resp, struct verr *err)
{
	if (!c->expire)
		return verr_set(err, VERR_SEALED, "Vault is sealed");
	const struct logical_secret *s = resp->secret;
	int64_t ttl = s->ttl;
	if (ttl <= 0)
		ttl = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	if (ttl <= 0)
		ttl = server_default(c);
	int64_t max = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	if (max <= 0)
		max = server_max(c);
	if (s->max_ttl > 0 && s->max_ttl < max)
		max = s->max_ttl;
	if (ttl > max) {
		cap_warning(resp, NULL, ttl, max);
		ttl = max;
	}

	char rnd[25];
	int rc = rand_base62(rnd, 24, err);
	if (rc)
		return rc;
	size_t pl = strlen(req->path);
	while (pl && req->path[pl - 1] == '/')
		pl--;
	size_t n = pl + 32;
	char *id = malloc(n);
	if (!id)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	snprintf(id, n, "%.*s/%s", (int)pl, req->path, rnd);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	json_t *rec = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "kind", "secret", "path",
				req->path, "issue_ms", (json_int_t)now, "expire_ms",
				(json_int_t)now + (json_int_t)ttl * 1000, "last_renewal_ms", (json_int_t)0,
				"max_ms", (json_int_t)now + (json_int_t)max * 1000, "ttl", (json_int_t)ttl,
				"renewable", s->renewable, "token_hash",
				req->client_token_hash ? req->client_token_hash : "");
	if (!rec) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	json_object_set(rec, "internal", s->internal ? s->internal : json_null());
	rc = expiration_put(c->expire, id, rec, false, err);
	if (rc) {
		log_error("expire", "failed to register lease for %s: %s", req->path,
			  err ? err->msg : "");
		goto out;
	}
	if (req->client_token_hash && *req->client_token_hash)
		token_index_add(c, req->client_token_hash, id);
	resp->lease_out = json_pack("{s:s,s:I,s:b}", "lease_id", id, "lease_duration",
				    (json_int_t)ttl, "renewable", s->renewable);
out:
	json_decref(rec);
	free(id);
	return rc;
}

int leases_revoke_mount(struct core *c, const char *prefix)
{
	if (!c->expire)
		return 0;
	/* sys.c calls this while the mount is still routable, so each
	 * lease goes through its backend's revoke (dynamic credentials are
	 * really removed); a failure keeps the mount, as Vault does. */
	struct verr e = {0};
	int rc = expiration_revoke_prefix(c->expire, prefix, false, true, &e);
	if (rc)
		log_warn("expire", "revoking the leases of %s failed: %s", prefix, e.msg);
	return rc;
}

/* ---- tokens (token store callbacks, via stores.c) ---- */

static char *token_lease_id(const struct token_entry *te)
{
	const char *p = te->path && *te->path ? te->path : "auth/token/create";
	size_t pl = strlen(p);
	while (pl && p[pl - 1] == '/')
		pl--;
	size_t n = pl + strlen(te->hash) + 2;
	char *id = malloc(n);
	if (id)
		snprintf(id, n, "%.*s/%s", (int)pl, p, te->hash);
	return id;
}

/* A token was issued or renewed: (re)schedule its lease. */
void leases_token_changed(struct core *c, const struct token_entry *te)
{
	if (!c->expire || !te->expire_time)
		return;
	char *id = token_lease_id(te);
	json_t *rec = id ? json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:s}", "kind", "token",
				     "path", te->path ? te->path : "", "issue_ms",
				     (json_int_t)te->creation_time * 1000, "expire_ms",
				     (json_int_t)te->expire_time * 1000, "last_renewal_ms",
				     (json_int_t)te->last_renewal_time * 1000, "max_ms", (json_int_t)0,
				     "ttl", (json_int_t)te->creation_ttl, "renewable", te->renewable,
				     "token_hash", te->hash)
			 : NULL;
	struct verr e = {0};
	if (!rec || expiration_put(c->expire, id, rec, te->last_renewal_time != 0, &e))
		log_warn("expire", "failed to schedule a token's lease (it still expires at lookup): %s",
			 rec ? e.msg : "out of memory");
	json_decref(rec);
	free(id);
}

/* A token was revoked (by any path): its lease goes with it. */
void leases_token_revoked(struct core *c, const struct token_entry *te)
{
	if (!c->expire)
		return;
	token_index_revoke(c, te->hash);
	if (!te->expire_time)
		return;
	char *id = token_lease_id(te);
	struct verr e = {0};
	if (!id || expiration_forget(c->expire, id, &e))
		log_warn("expire", "failed to delete a revoked token's lease: %s",
			 id ? e.msg : "out of memory");
	free(id);
}
