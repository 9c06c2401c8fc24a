/*
 * core.c - the core object and its public entry points (core.h): creation
 * and the checks of every interface version handed in, the one place a
 * request enters (sealed-state endpoints without the state lock, everything
 * else under its read side), and dev mode's set-up.
 */
#include "core/core_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/access.h"
#include "core/audit_broker.h"
#include "core/barrier.h"
#include "core/cluster.h"
#include "core/pipeline.h"
#include "core/router.h"
#include "core/state.h"
#include "core/telemetry.h"
#include "core/unseal.h"
#include "seal/seal.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"

static int check_tables(const struct core_opts *o, struct verr *err)
{
	int rc = physical_check(o->phys, err);
	if (rc)
		return rc;
	if (o->ha && (!o->ha->ops || o->ha->ops->version != PHYSICAL_HA_VERSION))
		return verr_set(err, VERR_INTERNAL, "the HA lock implements the wrong interface version");
	for (const struct backend_ops *const *b = o->backends; b && *b; b++)
		if ((*b)->version != BACKEND_OPS_VERSION)
			return verr_set(err, VERR_INTERNAL,
					"backend %s implements interface version %d, not %d",
					(*b)->type, (*b)->version, BACKEND_OPS_VERSION);
	if (o->seal && o->seal->ops->version != SEAL_OPS_VERSION)
		return verr_set(err, VERR_INTERNAL, "seal %s implements interface version %d, not %d",
				o->seal->ops->type, o->seal->ops->version, SEAL_OPS_VERSION);
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int core_new(struct core **out, const struct core_opts *o, struct verr *err)
{
	*out = NULL;
	int rc = check_tables(o, err);
	if (rc)
		return rc;
	struct core *c = calloc(1, sizeof(*c));
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	c->o = *o;
	c->o.api_addr = dup_or_null(o->api_addr);
	c->o.cluster_addr = dup_or_null(o->cluster_addr);
	c->o.cluster_name = NULL;
	c->o.storage_type = dup_or_null(o->storage_type);
	bool own_seal = !o->seal;
	if (own_seal && (rc = seal_shamir_new(&c->o.seal, NULL, err)) != 0)
		goto fail;
	c->phys = o->phys;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* writer-preferring: a seal is not starved by a stream of requests */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->state_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_rwlock_init(&c->mounts_lock, NULL);
	pthread_mutex_init(&c->init_lock, NULL);
	pthread_mutex_init(&c->ident_mu, NULL);
	pthread_mutex_init(&c->unseal_lock, NULL);
	pthread_mutex_init(&c->ha_mu, NULL);
	pthread_mutex_init(&c->cluster_mu, NULL);
	pthread_mutex_init(&c->echo_mu, NULL);
	c->state = CORE_SEALED;
	if (rand_uuid(c->node_id, err)) {
		rc = err->code;
		goto fail_locks;
	}
	snprintf(c->cluster_name, sizeof(c->cluster_name), "%s",
		 o->cluster_name && *o->cluster_name ? o->cluster_name : "coffer-cluster");
	rc = barrier_new(&c->barrier, c->phys, err);
	if (rc)
		goto fail_locks;
	c->bphys = barrier_physical(c->barrier);
	c->telemetry_id = telemetry_start(c);
	*out = c;
	return 0;
fail_locks:
	pthread_rwlock_destroy(&c->state_lock);
	pthread_rwlock_destroy(&c->mounts_lock);
	pthread_mutex_destroy(&c->init_lock);
	pthread_mutex_destroy(&c->ident_mu);
	pthread_mutex_destroy(&c->unseal_lock);
	pthread_mutex_destroy(&c->ha_mu);
	pthread_mutex_destroy(&c->cluster_mu);
	pthread_mutex_destroy(&c->echo_mu);
	if (own_seal)
		seal_close(c->o.seal);
fail:
	free((char *)c->o.api_addr);
	free((char *)c->o.cluster_addr);
	free((char *)c->o.storage_type);
	free(c);
	return rc;
}

void core_free(struct core *c)
{
	if (!c)
		return;
	telemetry_stop(c);
	state_seal(c);
	barrier_free(c->barrier);
	physical_close(c->phys);
	unseal_wipe(c); /* key shares still held by an unfinished ceremony */
	seal_close(c->o.seal);
	pthread_rwlock_destroy(&c->state_lock);
	pthread_rwlock_destroy(&c->mounts_lock);
	pthread_mutex_destroy(&c->init_lock);
	pthread_mutex_destroy(&c->ident_mu);
	pthread_mutex_destroy(&c->unseal_lock);
	pthread_mutex_destroy(&c->ha_mu);
	cluster_tls_clear(c);
	cluster_echoes_clear(c);
	pthread_mutex_destroy(&c->cluster_mu);
	pthread_mutex_destroy(&c->echo_mu);
	free((char *)c->o.api_addr);
	free((char *)c->o.cluster_addr);
	free((char *)c->o.storage_type);
	free(c);
}

bool core_sealed(struct core *c)
{
	return state_get(c) == CORE_SEALED;
}

bool core_active(struct core *c)
{
	return state_get(c) == CORE_ACTIVE;
}

void core_seal(struct core *c)
{
	state_seal(c);
}

void core_invalidate(struct core *c, const char *key)
{
	pthread_rwlock_rdlock(&c->state_lock);
	if (state_get(c) == CORE_ACTIVE)
		router_invalidate(c, key);
	pthread_rwlock_unlock(&c->state_lock);
}

void core_reload(struct core *c)
{
	/* the broker lives while active: the read lock keeps a seal from
	 * freeing it under us */
	pthread_rwlock_rdlock(&c->state_lock);
	if (state_get(c) == CORE_ACTIVE && c->audit)
		audit_broker_reopen(c->audit);
	pthread_rwlock_unlock(&c->state_lock);
}

int core_seals_change(struct core *c, struct seal **members, const char *const *names,
		      const int *priorities, size_t n, struct verr *err)
{
	return unseal_seals_change(c, members, names, priorities, n, err);
}

/* A standby serves no request below the barrier: 307 to the active node's
 * address when it is known (Vault's behaviour without request forwarding),
 * else 503. */
static int standby_answer(struct core *c, struct logical_response *resp, struct verr *err)
{
	char *leader = NULL;
	bool self = false;
	struct verr e = {0};
	if (state_leader(c, &leader, &self, &e) == 0 && leader && *leader && !self) {
		resp->redirect = leader;
		return verr_set(err, VERR_STANDBY, "this node is a standby; the active node is at %s",
				leader);
	}
	free(leader);
	return verr_set(err, VERR_STANDBY, "Vault is in standby mode and no active node is known");
}

static int handle_request(struct core *c, struct logical_request *req,
			  struct logical_response *resp, struct verr *err)
{
	int rc = router_valid_path(req->path, err);
	if (rc)
		return rc;
	if (!req->data)
		return verr_set(err, VERR_INTERNAL, "request without data");
	/* sys/init, sys/unseal, sys/seal-status, sys/health: no state lock;
	 * the transitions they cause take it (state.c) */
	if (unseal_sealed_path(c, req, resp, &rc, err))
		return rc;
	if (!req->inline_only) {
		pthread_rwlock_rdlock(&c->state_lock);
	} else if (pthread_rwlock_tryrdlock(&c->state_lock)) {
		/* a state change is waiting for the lock: not on an event thread */
		req->would_block = true;
		return verr_set(err, VERR_UNAVAILABLE, "request must run on a worker");
	}
	switch (state_get(c)) {
	case CORE_SEALED:
		rc = verr_set(err, VERR_SEALED, "Vault is sealed");
		break;
	case CORE_STANDBY:
		rc = standby_answer(c, resp, err);
		break;
	case CORE_ACTIVE:
		rc = pipeline_run(c, req, resp, err);
		break;
	}
	pthread_rwlock_unlock(&c->state_lock);
	/* a seal or step-down asked for by a sys request is applied by that
	 * request's own thread (or any other that may block), never by an
	 * event thread, which would wait for every request in flight */
	if (!req->inline_only)
		state_apply_pending(c);
	if (rc)
		log_debug("core", "request %s %s failed: %s", logical_op_name(req->op), req->path,
			  verr_name(rc));
	return rc;
}

int core_handle_request(struct core *c, struct logical_request *req,
			struct logical_response *resp, struct verr *err)
{
	uint64_t t0 = metrics_now();
	int rc = handle_request(c, req, resp, err);
	if (!req->would_block) /* counted when it runs again */
		telemetry_request(req, t0);
	return rc;
}

/* Storage read on this machine: no network round trip. */
static bool storage_local(const struct physical *p)
{
	const char *n = p && p->ops ? p->ops->name : NULL;
	return n && (!strcmp(n, "file") || !strcmp(n, "inmem") || !strcmp(n, "raft"));
}

bool core_request_inline(struct core *c, const struct logical_request *req)
{
	if (!c || (req->op != LOP_READ && req->op != LOP_LIST) || req->wrap_ttl > 0 ||
	    !storage_local(c->phys))
		return false; /* a wrapped answer writes a token and its cubbyhole */
	/* never wait here: a seal or step-down in progress means offload */
	if (pthread_rwlock_tryrdlock(&c->state_lock))
		return false;
	bool ok = state_get(c) == CORE_ACTIVE && audit_broker_inline(c->audit);
	if (ok) {
		struct mount_entry *m = router_route(c, req->path);
		ok = m && m->ops->pure_reads;
		if (m)
			router_release(m);
	}
	pthread_rwlock_unlock(&c->state_lock);
	return ok;
}

/* ---- dev mode ---- */

struct dev_ctx {
	const char *root_token_id;
};

static int dev_active(struct core *c, void *ctx, struct verr *err)
{
	struct dev_ctx *d = ctx;
	int rc = 0;
	if (d->root_token_id && *d->root_token_id)
		rc = access_root_token_with_id(c, d->root_token_id, err);
	if (rc)
		return rc;
	json_t *mount = json_pack("{s:s,s:s,s:{s:s}}", "type", "kv", "description",
				  "key/value secret storage", "options", "version", "2");
	rc = mount ? router_mount(c, false, "secret", mount, err)
		   : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(mount);
	return rc;
}

int core_dev_setup(struct core *c, const char *root_token_id, char **out_root,
		   char **out_key, struct verr *err)
{
	*out_root = *out_key = NULL;
	json_t *req = json_pack("{s:i,s:i}", "secret_shares", 1, "secret_threshold", 1);
	json_t *out = NULL;
	int rc = unseal_init(c, req, &out, err);
	json_decref(req);
	if (rc)
		return rc;
	const char *key = json_string_value(json_array_get(json_object_get(out, "keys_base64"), 0));
	*out_key = strdup(key);
	*out_root = strdup(root_token_id && *root_token_id
				   ? root_token_id
				   : json_string_value(json_object_get(out, "root_token")));
	json_t *ureq = json_pack("{s:s}", "key", key);
	json_t *st = NULL;
	rc = unseal_submit(c, ureq, &st, err);
	json_decref(ureq);
	json_decref(st);
	json_decref(out);
	if (!rc && (!*out_key || !*out_root))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	struct dev_ctx d = {.root_token_id = root_token_id};
	if (!rc)
		rc = state_with_active(c, dev_active, &d, err);
	return rc;
}
