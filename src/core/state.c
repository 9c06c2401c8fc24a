/*
 * state.c - the seal state machine and the active node's set-up (state.h).
 *
 * DESIGN
 * The only writer of c->state. Transitions hold state_lock for writing, so
 * no request (they hold it for reading) sees a half-built core:
 *
 *   unseal     SEALED  -> barrier open -> STANDBY, HA loop started (HA)
 *                                      -> setup_active -> ACTIVE (no HA)
 *   acquired   STANDBY -> setup_active -> ACTIVE            (HA loop thread)
 *   lost       fence (barrier read-only, at once) -> ACTIVE -> teardown ->
 *              STANDBY                                      (HA loop thread)
 *   seal       HA loop stopped (it steps down first) -> teardown -> barrier
 *              sealed -> SEALED
 *
 * setup_active, in order: barrier writable and its keyring re-read (terms a
 * previous active node installed), cluster identity (created on first use),
 * lease manager (not running), token + policy stores, audit broker, mount
 * tables and every backend's init, then the active-only writes (tables
 * persisted if new, backends' initialize), lease workers, periodic thread.
 * teardown_active closes the same things in reverse. A standby has only
 * opened the barrier: it writes nothing. Once a node is active (and the
 * write lock released) unseal_sync_seals brings a multi-seal's wrapped
 * copies in line with this node's configuration; on a standby it is not
 * called (it would delete the copy of a seal the active node just added).
 *
 * Deadlock rule: the HA loop's callbacks take the write lock, so the HA loop
 * is joined (ha_loop_stop) only without holding it; a seal stops the loop
 * first and loops if an unseal started a new one meanwhile.
 */
#include "core/state.h"

#include "core/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit_hooks.h"
#include "core/barrier.h"
#include "core/ha.h"
#include "core/leases.h"
#include "core/periodic.h"
#include "core/router.h"
#include "core/stores.h"
#include "core/sys_raft.h"
#include "core/token.h"
#include "core/unseal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/rand.h"
#include "util/secmem.h"

#define STEP_DOWN_HOLD_MS 10000 /* Vault: a stepped-down node waits 10 s */

enum core_state state_get(struct core *c)
{
	return (enum core_state)atomic_load(&c->state);
}

void state_cluster_id(struct core *c, char out[40])
{
	pthread_mutex_lock(&c->ident_mu);
	snprintf(out, 40, "%s", c->cluster_id);
	pthread_mutex_unlock(&c->ident_mu);
}

/* The cluster identity: read on every unseal; created (written) only by an
 * active node that finds none. */
static int cluster_info(struct core *c, bool create, struct verr *err)
{
	struct storage_view v;
	storage_view_init(&v, c->bphys, "core/");
	json_t *ci = NULL;
	int rc = view_get_json(&v, "cluster", &ci, err);
	if (rc)
		return rc;
	if (!ci && create) {
		char id[RAND_UUID_LEN + 1];
		rc = rand_uuid(id, err);
		if (rc)
			return rc;
		ci = json_pack("{s:s,s:s}", "id", id, "name", c->cluster_name);
		rc = ci ? view_put_json(&v, "cluster", ci, err)
			: verr_set(err, VERR_INTERNAL, "out of memory");
		if (rc) {
			json_decref(ci);
			return rc;
		}
	}
	pthread_mutex_lock(&c->ident_mu);
	snprintf(c->cluster_id, sizeof(c->cluster_id), "%s",
		 ci ? json_string_value(json_object_get(ci, "id")) ?: "" : "");
	pthread_mutex_unlock(&c->ident_mu);
	json_decref(ci);
	return 0;
}

static void teardown_active(struct core *c)
{
	cluster_echoes_clear(c);
	periodic_stop(c);
	leases_stop(c); /* first: its workers use the mounts and the token store */
	router_unload(c);
	audit_hooks_close(c);
	stores_close(c);
	sys_raft_tls_forget(c);
	if (c->o.ha)
		barrier_set_writable(c->barrier, false);
}

static int setup_active(struct core *c, struct verr *err)
{
	barrier_set_writable(c->barrier, true);
	int rc = barrier_reload(c->barrier, err);
	if (!rc)
		rc = cluster_info(c, true, err);
	if (!rc && c->o.ha)
		rc = cluster_tls_load(c, true, err);
	if (!rc)
		rc = sys_raft_tls_settle(c, err);
	storage_view_init(&c->sys_view, c->bphys, "sys/");
	storage_view_init(&c->token_view, c->bphys, "sys/token/");
	storage_view_init(&c->policy_view, c->bphys, "sys/policy/");
	if (!rc)
		rc = leases_open(c, err);
	if (!rc)
		rc = stores_open(c, err);
	if (!rc)
		rc = audit_hooks_open(c, err);
	if (!rc)
		rc = router_load(c, err);
	if (!rc)
		rc = router_initialize(c, err);
	if (!rc) /* leases revoke through the mounts: start once they are loaded */
		rc = leases_start(c, err);
	if (!rc)
		rc = periodic_start(c, c->o.periodic_interval_ms, err);
	if (rc)
		teardown_active(c);
	return rc;
}

/* ---- HA loop callbacks ---- */

static int ha_became_active(void *ctx, struct verr *err)
{
	struct core *c = ctx;
	int rc = 0;
	bool became = false;
	pthread_rwlock_wrlock(&c->state_lock);
	if (state_get(c) == CORE_STANDBY) {
		uint64_t t0 = metrics_now();
		rc = setup_active(c, err);
		if (!rc) {
			atomic_store(&c->state, CORE_ACTIVE);
			c->active_since = (int64_t)time(NULL);
			became = true;
			log_info("core", "this node is now the active node (set-up took %llu ms)",
				 (unsigned long long)((metrics_now() - t0) / 1000000));
		}
	}
	pthread_rwlock_unlock(&c->state_lock);
	if (became) /* serving already; the sync checks it is still active */
		unseal_sync_seals(c);
	return rc;
}

static void ha_fence(void *ctx)
{
	struct core *c = ctx;
	barrier_set_writable(c->barrier, false);
}

static void ha_lost(void *ctx)
{
	struct core *c = ctx;
	uint64_t t0 = metrics_now();
	pthread_rwlock_wrlock(&c->state_lock);
	if (state_get(c) == CORE_ACTIVE) {
		teardown_active(c);
		atomic_store(&c->state, CORE_STANDBY);
		log_info("core", "this node is now a standby");
		METRICS_SINCE("vault.core.leadership_lost", t0);
	}
	pthread_rwlock_unlock(&c->state_lock);
}

/* ---- transitions ---- */

int state_unseal(struct core *c, const uint8_t *root, size_t len, bool *did, struct verr *err)
{
	*did = false;
	uint64_t t0 = metrics_now();
	pthread_rwlock_wrlock(&c->state_lock);
	if (state_get(c) != CORE_SEALED) {
		pthread_rwlock_unlock(&c->state_lock);
		return 0;
	}
	int rc = barrier_unseal(c->barrier, root, len, err);
	if (!rc)
		rc = cluster_info(c, false, err);
	if (!rc && c->o.ha) {
		barrier_set_writable(c->barrier, false);
		struct verr te = {0};
		if (cluster_tls_load(c, false, &te)) /* read-only; may not exist yet */
			log_warn("core", "cluster certificate not loaded yet: %s", te.msg);
		struct ha_callbacks cb = {.became_active = ha_became_active, .fence = ha_fence,
					  .lost = ha_lost, .ctx = c};
		char *adv = cluster_advertisement(c);
		pthread_mutex_lock(&c->ha_mu);
		rc = adv ? ha_loop_start(&c->ha, c->o.ha, adv, &cb, err)
			 : verr_set(err, VERR_INTERNAL, "out of memory");
		pthread_mutex_unlock(&c->ha_mu);
		free(adv);
		if (!rc)
			atomic_store(&c->state, CORE_STANDBY);
	} else if (!rc) {
		rc = setup_active(c, err);
		if (!rc) {
			atomic_store(&c->state, CORE_ACTIVE);
			c->active_since = (int64_t)time(NULL);
		}
	}
	if (rc)
		barrier_seal(c->barrier);
	else {
		*did = true;
		METRICS_SINCE("vault.core.unseal", t0);
		log_info("core", "vault is unsealed");
	}
	pthread_rwlock_unlock(&c->state_lock);
	/* without HA the node is active now: the seal copies follow the
	 * configuration; with HA a standby writes nothing, ha_became_active
	 * syncs once it holds the lock */
	if (*did && !c->o.ha)
		unseal_sync_seals(c);
	return rc;
}

void state_seal(struct core *c)
{
	for (;;) {
		pthread_mutex_lock(&c->ha_mu);
		struct ha_loop *h = c->ha;
		c->ha = NULL;
		pthread_mutex_unlock(&c->ha_mu);
		ha_loop_stop(h); /* steps down first when active; joins */
		pthread_rwlock_wrlock(&c->state_lock);
		pthread_mutex_lock(&c->ha_mu);
		bool restarted = c->ha != NULL; /* an unseal ran in between */
		pthread_mutex_unlock(&c->ha_mu);
		if (restarted) {
			pthread_rwlock_unlock(&c->state_lock);
			continue;
		}
		break;
	}
	enum core_state st = state_get(c);
	uint64_t t0 = metrics_now();
	if (st != CORE_SEALED) {
		if (st == CORE_ACTIVE)
			teardown_active(c);
		barrier_seal(c->barrier);
		cluster_tls_clear(c);
		atomic_store(&c->state, CORE_SEALED);
		pthread_mutex_lock(&c->unseal_lock);
		/* ceremonies in progress need the unsealed core: start over */
		for (int i = 0; i < c->rekey.prog.n; i++)
			secmem_free(c->rekey.prog.parts[i], c->rekey.prog.lens[i]);
		c->rekey.prog.n = 0;
		for (int i = 0; i < c->rekey.vprog.n; i++)
			secmem_free(c->rekey.vprog.parts[i], c->rekey.vprog.lens[i]);
		c->rekey.vprog.n = 0;
		secmem_free(c->rekey.pending_kek, 32);
		secmem_free(c->rekey.pending_root, 32);
		c->rekey.pending_kek = c->rekey.pending_root = NULL;
		json_decref(c->rekey.pgp_keys);
		json_decref(c->rekey.pgp_fprs);
		c->rekey.pgp_keys = c->rekey.pgp_fprs = NULL;
		c->rekey.verify_required = c->rekey.backup = false;
		c->rekey.started = false;
		for (int i = 0; i < c->genroot.prog.n; i++)
			secmem_free(c->genroot.prog.parts[i], c->genroot.prog.lens[i]);
		c->genroot.prog.n = 0;
		c->genroot.started = false;
		secmem_wipe(c->genroot.otp, sizeof(c->genroot.otp));
		pthread_mutex_unlock(&c->unseal_lock);
		METRICS_SINCE("vault.core.seal-internal", t0);
		log_info("core", "vault is sealed");
	}
	pthread_rwlock_unlock(&c->state_lock);
}

int state_with_active(struct core *c, int (*fn)(struct core *c, void *ctx, struct verr *err),
		      void *ctx, struct verr *err)
{
	pthread_rwlock_wrlock(&c->state_lock);
	int rc = state_get(c) == CORE_ACTIVE ? fn(c, ctx, err)
					     : verr_set(err, VERR_SEALED, "Vault is sealed");
	pthread_rwlock_unlock(&c->state_lock);
	return rc;
}

int state_init_barrier(struct core *c, const uint8_t *root, size_t len, char **root_token,
		       struct verr *err)
{
	*root_token = NULL;
	pthread_rwlock_wrlock(&c->state_lock);
	if (state_get(c) != CORE_SEALED) {
		pthread_rwlock_unlock(&c->state_lock);
		return verr_set(err, VERR_INVALID, "Vault is already initialized");
	}
	int rc = barrier_unseal(c->barrier, root, len, err);
	if (!rc) {
		/* active for the set-up only: nobody can see it (write lock) */
		atomic_store(&c->state, CORE_ACTIVE);
		rc = setup_active(c, err);
		if (!rc) {
			rc = token_store_root(c->tokens, root_token, err);
			teardown_active(c);
		}
		atomic_store(&c->state, CORE_SEALED);
		barrier_seal(c->barrier);
	}
	pthread_rwlock_unlock(&c->state_lock);
	return rc;
}

/* ---- requests' deferred transitions ---- */

void state_request_seal(struct core *c)
{
	atomic_store(&c->seal_requested, true);
}

void state_request_step_down(struct core *c)
{
	atomic_store(&c->stepdown_requested, true);
}

void state_request_reload(struct core *c)
{
	atomic_store(&c->stepdown_no_hold, true);
	atomic_store(&c->stepdown_requested, true);
}

void state_apply_pending(struct core *c)
{
	if (atomic_exchange(&c->seal_requested, false))
		state_seal(c);
	if (atomic_exchange(&c->stepdown_requested, false)) {
		pthread_mutex_lock(&c->ha_mu);
		if (c->ha)
			ha_loop_step_down(c->ha, atomic_exchange(&c->stepdown_no_hold, false)
							 ? 1
							 : STEP_DOWN_HOLD_MS);
		pthread_mutex_unlock(&c->ha_mu);
	}
}

int state_leader_value(struct core *c, char **value, bool *is_self, struct verr *err)
{
	*value = NULL;
	*is_self = false;
	pthread_mutex_lock(&c->ha_mu);
	int rc = 0;
	if (c->ha) {
		rc = ha_loop_leader(c->ha, value, is_self, err);
	} else if (state_get(c) == CORE_ACTIVE) {
		*is_self = true;
		*value = cluster_advertisement(c);
		if (!*value)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	pthread_mutex_unlock(&c->ha_mu);
	return rc;
}

int state_leader(struct core *c, char **addr, bool *is_self, struct verr *err)
{
	char *value = NULL, *cluster = NULL;
	*addr = NULL;
	int rc = state_leader_value(c, &value, is_self, err);
	if (rc || !value)
		return rc;
	if (cluster_parse_advertisement(value, addr, &cluster))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	free(value);
	free(cluster);
	return rc;
}

int state_leader_cluster(struct core *c, char **cluster_addr, struct verr *err)
{
	char *value = NULL, *api = NULL;
	bool self = false;
	*cluster_addr = NULL;
	int rc = state_leader_value(c, &value, &self, err);
	if (rc || !value)
		return rc;
	if (cluster_parse_advertisement(value, &api, cluster_addr))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	free(value);
	free(api);
	return rc;
}
