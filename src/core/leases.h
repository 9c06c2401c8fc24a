/*
 * leases.h - the core's side of the expiration manager (leases.c): the
 * manager's life (opened and started by state.c's setup_active, stopped by
 * teardown), registering a lease for every secret a backend returns and for
 * every token with a TTL, and the manager's callbacks, which route a revoke
 * or renew to the owning backend (router_route on the lease id) or to the
 * token store.
 * Thread-safety: callable from any thread while the core is ACTIVE.
 */
#ifndef COFFER_CORE_LEASES_H
#define COFFER_CORE_LEASES_H

#include "core/core_int.h"

struct mount_entry;
struct token_entry;

int leases_open(struct core *c, struct verr *err);  /* c->expire, not running */
int leases_start(struct core *c, struct verr *err); /* once the mounts are loaded */
void leases_stop(struct core *c);                   /* stop and free; NULL-safe */

/* A handler returned resp->secret: register the lease (Vault's TTL rules)
 * and set resp->lease_out. */
int leases_register(struct core *c, struct mount_entry *m, struct logical_request *req,
		    struct logical_response *resp, struct verr *err);
/* Revoke every lease under a mount path through its backend (before the
 * mount is removed); non-zero when one could not be revoked. */
int leases_revoke_mount(struct core *c, const char *prefix);
/* Token store callbacks: a token's expiry was set or moved; a token was
 * revoked (its lease and the secret leases it created go with it). */
void leases_token_changed(struct core *c, const struct token_entry *te);
void leases_token_revoked(struct core *c, const struct token_entry *te);

#endif
