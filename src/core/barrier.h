/*
 * barrier.h - the encryption barrier: a physical shim that encrypts every
 * value the core and the engines store, with a keyring of AES-256-GCM keys.
 *
 * Key hierarchy (docs/cryptography.md): unseal-key shares -> KEK (the seal)
 * -> root key -> keyring terms -> entries. The barrier owns the last three:
 * the keyring (every term's 32-byte key, plus the root key) is stored at
 * BARRIER_KEYRING_PATH in the underlying physical, encrypted with the root
 * key; every other entry is encrypted with a keyring term.
 *
 * Entry format: [term u32 BE][version 0x02][nonce 12][ciphertext][tag 16],
 * AES-256-GCM with the full storage key as additional authenticated data.
 * Key names are NOT encrypted: list() passes through and anyone with access
 * to the storage sees the key paths (as in Vault).
 *
 * States: sealed (no key in memory; get/put/delete/list fail VERR_SEALED
 * "Vault is sealed") and unsealed. barrier_new starts sealed.
 *
 * Ownership: the barrier borrows `under` (the caller closes it after freeing
 * the barrier). The shim returned by barrier_physical() belongs to the
 * barrier; physical_close() on it is the same as barrier_free(). Values from
 * get are malloc'd plaintext (free()). All key material lives in secmem
 * buffers and is wiped on seal and free; functions that hand out keys return
 * secmem copies the caller frees with secmem_free.
 *
 * Thread-safety: all functions may be called from any thread. A rwlock
 * guards the keyring: get/put/delete/list hold it shared (each call uses its
 * own cipher context, so requests never serialise on encryption);
 * unseal/seal/rotate/rekey/reload hold it exclusively.
 */
#ifndef COFFER_CORE_BARRIER_H
#define COFFER_CORE_BARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "physical/physical.h"
#include "util/verr.h"

#define BARRIER_KEYRING_PATH "core/keyring"
#define BARRIER_KEY_LEN 32
#define BARRIER_VERSION 0x02 /* = AEAD_VERSION (util/aead.h) */
/* term(4) + version(1) + nonce(12) + tag(16) = AEAD_OVERHEAD */
#define BARRIER_OVERHEAD 33
/* Random 96-bit nonces stay safe for about 2^32 encryptions under one key.
 * The core should rotate (barrier_rotate) once barrier_key_status reports
 * this many encryptions for the active term (Vault uses the same bound). */
#define BARRIER_ROTATE_AFTER 3865470566ULL

struct barrier;

/* A sealed barrier over `under` (borrowed). Its shim's max_entry_size is
 * the underlying one minus BARRIER_OVERHEAD; durability is the same. */
int barrier_new(struct barrier **out, struct physical *under, struct verr *err);
/* Seal (wipe every key) and free. NULL is a no-op. Does not close `under`. */
void barrier_free(struct barrier *b);

/* The encrypting storage shim (borrowed; lives as long as b). It has no HA
 * lock (the core reaches that directly). Transactions pass through when the
 * underlying backend has them. BARRIER_KEYRING_PATH cannot be read, written
 * or deleted through the shim (VERR_DENIED). */
struct physical *barrier_physical(struct barrier *b);

/* Fencing: while not writable (a node that lost or never held the HA lock),
 * put, delete and txn fail VERR_STANDBY and reads still work. Takes effect
 * for every call that starts after it returns. Default: writable. */
void barrier_set_writable(struct barrier *b, bool writable);

/* *out = whether the keyring exists in the underlying storage. */
int barrier_initialized(struct barrier *b, bool *out, struct verr *err);

/* 32 random bytes in a secmem buffer (secmem_free(*out, BARRIER_KEY_LEN)). */
int barrier_generate_key(uint8_t **out, struct verr *err);

/* Create term 1 and write the keyring encrypted with root_key (32 bytes).
 * Leaves the barrier sealed; call barrier_unseal next. VERR_INVALID if
 * already initialized ("Vault is already initialized") or the key length is
 * wrong. */
int barrier_initialize(struct barrier *b, const uint8_t *root_key, size_t len,
		       struct verr *err);

/* Load and decrypt the keyring with root_key. Wrong key: VERR_INVALID
 * "invalid key". Not initialized: VERR_UNINIT. Already unsealed: 0 if the
 * key matches the one in use, else "invalid key". */
int barrier_unseal(struct barrier *b, const uint8_t *root_key, size_t len, struct verr *err);

/* Wipe the root key and every term from memory; afterwards sealed. Waits for
 * in-flight get/put to finish. Idempotent. */
void barrier_seal(struct barrier *b);
bool barrier_sealed(struct barrier *b);

/* Install term N+1 and persist the keyring before switching: new writes use
 * it, entries under older terms still decrypt. *out_term (may be NULL) gets
 * the new term. VERR_SEALED while sealed. */
int barrier_rotate(struct barrier *b, uint32_t *out_term, struct verr *err);

/* Active term, its install time (Unix seconds) and how many values this
 * process has encrypted with it (not persisted; resets on rotate/unseal). */
int barrier_key_status(struct barrier *b, uint32_t *term, int64_t *install_time,
		       uint64_t *encryptions, struct verr *err);

/* Re-encrypt the keyring under new_root (32 bytes) and use it from now on.
 * The caller must protect the new root key with the seal; until it does,
 * a crash leaves storage readable only with new_root. */
int barrier_rekey_root(struct barrier *b, const uint8_t *new_root, size_t len,
		       struct verr *err);

/* Re-read the keyring from storage with the root key in memory, picking up
 * terms another node installed (HA standbys). Reads of an entry whose term
 * is newer than any known term do this once automatically. */
int barrier_reload(struct barrier *b, struct verr *err);

/* A secmem copy of the root key (secmem_free(*out, *len)); unsealed only. */
int barrier_root_key(struct barrier *b, uint8_t **out, size_t *len, struct verr *err);

/* Blobs outside the barrier (the root key under a seal) use util/aead.h. */

/* Internal, for tests and fuzzing. */
/* True when the barrier holds no key pointer at all (after seal). */
bool barrier__keys_wiped(struct barrier *b);
/* Parse a decrypted keyring image and free the result: 0 if well-formed. */
int barrier__keyring_check(const uint8_t *buf, size_t len, struct verr *err);

#endif
