/*
 * seal.h - the seal interface: what protects the root key.
 *
 * The core keeps the root key (which opens the barrier's keyring) wrapped by
 * the seal outside the barrier, at the path the seal names. At unseal the
 * core asks the seal to unwrap it; at init and rekey to wrap it.
 *
 *  - A seal that needs key shares (shamir) is given the key the ceremony
 *    combined from them (the KEK) with every wrap/unwrap; the key-share
 *    ceremonies (init, unseal, rekey, generate-root) stay in the core.
 *  - An auto seal (awskms, transit, pkcs11) holds or reaches its own key and
 *    ignores `kek` (NULL); its key shares are recovery keys, which never
 *    open the root key (recovery_keys = true).
 *
 * Implementations embed `struct seal` first and fill a static
 * `struct seal_ops`; the server's registry has one row per type
 * (src/server/registry.c). Callers use the seal_*() wrappers.
 * Ownership: wrap returns malloc'd ciphertext (free()); unwrap returns a
 * secmem buffer (secmem_free). Errors: VERR_INVALID for a wrong key or an
 * altered blob ("invalid key"), VERR_UNAVAILABLE when the key service cannot
 * be reached (the core stays sealed and retries).
 * Thread-safety: every method may be called from any thread.
 */
#ifndef COFFER_SEAL_SEAL_H
#define COFFER_SEAL_SEAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define SEAL_OPS_VERSION 1

struct seal;

struct seal_ops {
	int version;           /* SEAL_OPS_VERSION */
	const char *type;      /* "shamir", "awskms", ... (sys/seal-status "type") */
	bool recovery_keys;    /* key shares are recovery keys, not unseal keys */
	bool needs_kek;        /* wrap/unwrap need the ceremony's combined key */
	/* Storage path (outside the barrier) of the wrapped root key. */
	const char *root_path;
	int (*wrap)(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
		    size_t root_len, uint8_t **out, size_t *out_len, struct verr *err);
	int (*unwrap)(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
		      size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err);
	void (*close)(struct seal *s);
	/* Optional (NULL: nothing to reload): SIGHUP with the stanza as it
	 * now reads (transit re-reads its token, awskms its credentials). */
	int (*reload)(struct seal *s, const json_t *conf, struct verr *err);
};

struct seal {
	const struct seal_ops *ops;
};

/* Constructor every seal type exports; conf is its stanza as JSON (NULL for
 * the default Shamir seal). */
typedef int (*seal_new_fn)(struct seal **out, const json_t *conf, struct verr *err);

int seal_shamir_new(struct seal **out, const json_t *conf, struct verr *err);
int seal_awskms_new(struct seal **out, const json_t *conf, struct verr *err);
int seal_transit_new(struct seal **out, const json_t *conf, struct verr *err);
int seal_pkcs11_new(struct seal **out, const json_t *conf, struct verr *err);

int seal_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
	      size_t root_len, uint8_t **out, size_t *out_len, struct verr *err);
int seal_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
		size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err);
const char *seal_type(const struct seal *s);
bool seal_recovery_keys(const struct seal *s);
bool seal_needs_kek(const struct seal *s);
const char *seal_root_path(const struct seal *s);
void seal_close(struct seal *s);
/* SIGHUP: 0 when the seal has nothing to reload. */
int seal_reload(struct seal *s, const json_t *conf, struct verr *err);

#endif
