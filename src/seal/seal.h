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
	/* Optional (NULL: none): the key the seal resolved its configured key
	 * to (awskms: the ARN DescribeKey answered), "" while unknown. */
	void (*key_id)(struct seal *s, char *buf, size_t cap);
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

/*
 * Multi-seal (src/seal/multi.c): up to SEAL_MULTI_MAX named auto seals with
 * priorities; the root key is wrapped by each (one copy per member at
 * SEAL_MULTI_ROOT_PREFIX<name>, stored by the core) and any one unwraps it.
 * seal_multi_new takes ownership of members (closed on failure too) and
 * sorts them by priority, lowest first. The seal_multi_*() accessors answer
 * 0/NULL/false for a seal that is not a multi-seal.
 */
#define SEAL_MULTI_MAX 3
#define SEAL_MULTI_NAME_MAX 64
#define SEAL_MULTI_TYPE "multiseal"
#define SEAL_MULTI_ROOT_PREFIX "core/seal-root/"
int seal_multi_new(struct seal **out, struct seal **members, const char *const *names,
		   const int *priorities, size_t n, struct verr *err);
/* The checks of seal_multi_new without building anything: 1 to
 * SEAL_MULTI_MAX auto seals, distinct names and priorities. */
int seal_multi_check(struct seal *const *members, const char *const *names,
		     const int *priorities, size_t n, struct verr *err);
/*
 * SIGHUP: the member set becomes members[0..n) (checked as seal_multi_new
 * checks; copies[i]: member i has a good wrapped copy). A pointer already
 * in the set stays a member (its health record kept); the members no
 * longer in the set are returned in removed[] (room for SEAL_MULTI_MAX),
 * for the caller to close once no one uses them. On error nothing changes
 * and the caller keeps every new member.
 */
int seal_multi_replace(struct seal *s, struct seal **members, const char *const *names,
		       const int *priorities, const bool *copies, size_t n, struct seal **removed,
		       size_t *nremoved, struct verr *err);
size_t seal_multi_count(const struct seal *s);
/* member i in priority order; *name (optional) is its stanza's name */
struct seal *seal_multi_member(const struct seal *s, size_t i, const char **name);
/* the outcome of a wrap/unwrap through member i (sys/seal-backend-status) */
void seal_multi_report(struct seal *s, size_t i, bool healthy);
void seal_multi_set_copy(struct seal *s, size_t i, bool copy);
bool seal_multi_has_copy(struct seal *s, size_t i);
/* false once a wrap or unwrap through member i failed (until one works) */
bool seal_multi_healthy(struct seal *s, size_t i);
int seal_multi_priority(const struct seal *s, size_t i);
/* sys/seal-backend-status: {healthy, unhealthy_since?, fully_wrapped,
 * backends: [{name, type, priority, healthy, unhealthy_since?, ...}]};
 * a single seal reports itself as one healthy backend named by its type */
json_t *seal_multi_status(struct seal *s);

/*
 * A multi-seal member whose stanza could not be opened at start (its KMS
 * key disabled or missing, its HSM token absent): of type `type`, every
 * wrap and unwrap fails with `why`, so the other members still unseal and
 * sys/seal-backend-status shows this one unhealthy.
 */
int seal_unavailable_new(struct seal **out, const char *type, const struct verr *why,
			 struct verr *err);

int seal_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
	      size_t root_len, uint8_t **out, size_t *out_len, struct verr *err);
int seal_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
		size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err);
const char *seal_type(const struct seal *s);
bool seal_recovery_keys(const struct seal *s);
bool seal_needs_kek(const struct seal *s);
const char *seal_root_path(const struct seal *s);
void seal_close(struct seal *s);
/* The resolved key (seal_ops.key_id) into buf; "" when none is known. */
void seal_key_id(struct seal *s, char *buf, size_t cap);
/* SIGHUP: 0 when the seal has nothing to reload. */
int seal_reload(struct seal *s, const json_t *conf, struct verr *err);

#endif
