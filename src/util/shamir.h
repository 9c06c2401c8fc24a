/*
 * shamir.h - Shamir secret sharing over GF(2^8), the math behind unseal keys.
 *
 * Sits in util/ so that the core (which combines unseal-key shares into the
 * key-encryption key) can use it without depending on seal/. It knows nothing
 * about storage or seal configuration beyond the share-count rules.
 *
 * Share format (byte-compatible in shape with Vault's): a share of an
 * n-byte secret is n+1 bytes, the n y-values followed by one x-coordinate.
 * x-coordinates are distinct, non-zero and randomly chosen per split.
 *
 * Rules (the same as Vault's seal-configuration checks, with Vault's
 * messages, so the core can prefix them with "invalid seal configuration: "):
 *   parts 1..255, threshold 1..parts, and threshold 1 only when parts is 1.
 * With parts == threshold == 1 there is nothing to share: Vault hands out the
 * key itself as the single unseal key, and so do we - the one "share" is the
 * secret, len bytes (no x-coordinate). Callers must use that key directly;
 * shamir_combine needs at least two parts.
 *
 * Field arithmetic is constant-time and table-free (no secret-dependent
 * branches or memory indices). All shares and the combined secret live in
 * secmem buffers. Thread-safe: no shared state.
 */
#ifndef COFFER_UTIL_SHAMIR_H
#define COFFER_UTIL_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define SHAMIR_MAX_PARTS 255

/* Check parts/threshold against the rules above; VERR_INVALID with Vault's
 * message ("threshold cannot be larger than shares", ...) otherwise. */
int shamir_validate(int parts, int threshold, struct verr *err);

/*
 * Split `secret` (1 to 65536 bytes) into `parts` shares, any `threshold` of
 * which recover it. On success *out_shares is a malloc'd array of `parts`
 * secmem buffers of *out_share_len bytes each (len + 1, or len when
 * parts == threshold == 1); free with shamir_shares_free. The random
 * polynomial coefficients are wiped before returning.
 * Errors: VERR_INVALID (rules above, "cannot split an empty secret"),
 * VERR_INTERNAL (RNG or allocation failure).
 */
int shamir_split(uint8_t ***out_shares, size_t *out_share_len, const uint8_t *secret,
		 size_t len, int parts, int threshold, struct verr *err);

/*
 * Combine `nshares` shares (shares[i] of share_lens[i] bytes) into the secret.
 * On success *out_secret is a secmem buffer of *out_len bytes (share length
 * - 1); free with secmem_free(*out_secret, *out_len).
 * Errors (VERR_INVALID): fewer than two parts, parts shorter than two bytes,
 * parts of different lengths, a repeated x-coordinate ("duplicate part
 * detected"), an x-coordinate of zero (never produced by shamir_split).
 * Passing fewer than `threshold` valid shares is not detectable: the result
 * is simply not the secret (the caller's authenticated decryption notices).
 */
int shamir_combine(uint8_t **out_secret, size_t *out_len, uint8_t *const *shares,
		   const size_t *share_lens, int nshares, struct verr *err);

/* Wipe and free what shamir_split returned. NULL is a no-op. */
void shamir_shares_free(uint8_t **shares, int n, size_t share_len);

/* Internal, exposed for the known-answer tests: GF(2^8) with the AES
 * polynomial x^8 + x^4 + x^3 + x + 1. inv(0) is defined as 0. */
uint8_t shamir__gf_mul(uint8_t a, uint8_t b);
uint8_t shamir__gf_inv(uint8_t a);

#endif
