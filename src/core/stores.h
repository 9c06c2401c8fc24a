/*
 * stores.h - the token store and policy store of an ACTIVE core (stores.c),
 * opened by state.c's setup_active with the callbacks that tie them to the
 * rest of the core: a policy's existence (policy store), a revoked token
 * (its leases, and every backend's token_revoked hook - cubbyhole drops
 * the token's prefix), a token's moved expiry (its lease), and renewal of a
 * login token (the issuing auth method's auth_renew).
 */
#ifndef COFFER_CORE_STORES_H
#define COFFER_CORE_STORES_H

#include "core/core_int.h"

int stores_open(struct core *c, struct verr *err);
void stores_close(struct core *c); /* NULL-safe on what was not opened */

#endif
