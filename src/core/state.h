/*
 * state.h - the one owner of the seal state (state.c): every transition
 * between SEALED, STANDBY and ACTIVE happens here, under the write side of
 * c->state_lock, and setup_active/teardown_active open and close an active
 * node's parts in one order (core_int.h has the state machine).
 *
 * None of these may be called while holding state_lock: they take it
 * themselves. Requests ask for a seal or step-down through state_request_*;
 * core.c performs it with state_apply_pending once the request has dropped
 * its read lock.
 */
#ifndef COFFER_CORE_STATE_H
#define COFFER_CORE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core_int.h"

/* SEALED -> STANDBY (HA) or ACTIVE (no HA), with the root key (len 32).
 * Already unsealed: 0, nothing done (*did = false). Logs "vault is
 * unsealed" exactly when it unsealed. */
int state_unseal(struct core *c, const uint8_t *root, size_t len, bool *did, struct verr *err);
/* Anything -> SEALED; waits for requests in flight. Idempotent. */
void state_seal(struct core *c);
/* sys/init: unseal the new barrier, set up once as active (default mounts,
 * cluster id), create the root token, and seal again, all under the write
 * lock. *root_token is malloc'd (wipe it). */
int state_init_barrier(struct core *c, const uint8_t *root, size_t len, char **root_token,
		       struct verr *err);
/* Run fn with the core ACTIVE and the write lock held (dev mode set-up). */
int state_with_active(struct core *c, int (*fn)(struct core *c, void *ctx, struct verr *err),
		      void *ctx, struct verr *err);

void state_request_seal(struct core *c);
void state_request_step_down(struct core *c);
/* The same without the 10 s hold: the active node tears down and sets up
 * again at once (after a snapshot restore, to re-read the restored state). */
void state_request_reload(struct core *c);
void state_apply_pending(struct core *c);

enum core_state state_get(struct core *c);
/* The cluster id read at unseal ("" before), copied under its mutex. */
void state_cluster_id(struct core *c, char out[40]);
/* The active node's identity (api_addr) per the HA lock, and whether that
 * is this node; without HA: this node's api_addr while unsealed. */
int state_leader(struct core *c, char **addr, bool *is_self, struct verr *err);
/* The HA lock's raw value (the active's advertisement, cluster.c). */
int state_leader_value(struct core *c, char **value, bool *is_self, struct verr *err);
/* The active node's cluster address ("" when it advertises none). */
int state_leader_cluster(struct core *c, char **cluster_addr, struct verr *err);

#endif
