/*
 * secrets.h - the built-in secrets engines exported to the server's registry
 * table (src/server/registry.c): one `struct backend_ops` per engine type.
 *
 *   kv        - KV version 1 (options.version absent or "1") or version 2
 *               (options.version "2" or 2; the type alias "kv-v2" is the
 *               core's business). Re-initialising a v1 mount with version 2
 *               upgrades its data in place (see docs/secrets-kv.md).
 *   cubbyhole - per-token private KV storage keyed by the caller's
 *               req->client_token_hash.
 *   transit   - encryption as a service: named keys, encrypt/decrypt,
 *               sign/verify, HMAC (src/secrets/transit/, docs/secrets-transit.md).
 *   pki       - X.509 certificate authority (src/secrets/pki/, see
 *               docs/secrets-pki.md).
 *   database  - dynamic and static PostgreSQL credentials (database/,
 *               docs/secrets-database.md).
 *
 * Thread-safety: handlers may run concurrently on any number of threads.
 */
#ifndef COFFER_SECRETS_SECRETS_H
#define COFFER_SECRETS_SECRETS_H

#include "logical/logical.h"

extern const struct backend_ops kv_backend_ops, cubbyhole_backend_ops;
extern const struct backend_ops transit_backend_ops, pki_backend_ops, database_backend_ops;

/* Remove every cubbyhole entry of one token. `view` is the cubbyhole mount's
 * storage view, `token_hash` the same value the core puts in
 * req->client_token_hash. The core calls this when it revokes the token.
 * Returns 0 or a negative VERR_* (VERR_INVALID for an empty or malformed
 * hash). Other tokens' entries are untouched. */
int cubbyhole_destroy(struct storage_view *view, const char *token_hash, struct verr *err);

#endif
