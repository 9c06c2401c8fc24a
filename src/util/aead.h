/*
 * aead.h - AES-256-GCM in the barrier's entry format, shared by the barrier
 * (every stored entry, the keyring) and the seals (the root key they wrap):
 *
 *   [term u32 BE][version 0x02][nonce 12][ciphertext][tag 16]
 *
 * The additional authenticated data is the 5-byte header followed by a
 * path (the entry's storage key), so an entry copied to another key, or
 * given another term or version byte, fails authentication. Nonces are
 * random (RAND_bytes, checked). Keys are 32 bytes. Thread-safe.
 */
#ifndef COFFER_UTIL_AEAD_H
#define COFFER_UTIL_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define AEAD_KEY_LEN 32
#define AEAD_VERSION 0x02
#define AEAD_OVERHEAD 33 /* term(4) + version(1) + nonce(12) + tag(16) */

/* Encrypt pt (len bytes) into out (len + AEAD_OVERHEAD bytes). 0 or -1. */
int aead_seal_into(uint8_t *out, const uint8_t *key, uint32_t term, const char *path,
		   const uint8_t *pt, size_t len);
/* Decrypt ct (len >= AEAD_OVERHEAD; the caller checked the header) into out
 * (len - AEAD_OVERHEAD bytes). -1 if authentication fails; out then holds
 * unauthenticated bytes the caller must wipe. */
int aead_open_into(uint8_t *out, const uint8_t *key, const char *path, const uint8_t *ct,
		   size_t len);

/*
 * Blobs: the same format with term 0, for what is kept outside the barrier
 * (the root key under a seal's key). seal: *out is malloc'd ciphertext
 * (free()). open: *out is a secmem buffer of *out_len bytes (secmem_free); a
 * wrong key or altered blob gives VERR_INVALID "invalid key", a blob that is
 * not in this format VERR_INTERNAL.
 */
int aead_blob_seal(uint8_t **out, size_t *out_len, const uint8_t *key32, const char *aad,
		   const uint8_t *pt, size_t len, struct verr *err);
int aead_blob_open(uint8_t **out, size_t *out_len, const uint8_t *key32, const char *aad,
		   const uint8_t *ct, size_t len, struct verr *err);

void aead_put_u32(uint8_t *p, uint32_t v);
uint32_t aead_get_u32(const uint8_t *p);

#endif
