/*
 * pgp.h - the minimal OpenPGP (RFC 4880) subset that key-share encryption
 * needs (pgp.c): read a binary transferable public key (given base64, as
 * Vault's pgp_keys are), and encrypt a short message to its RSA encryption
 * key as a public-key encrypted session key packet (tag 1) followed by a
 * symmetrically encrypted integrity-protected data packet (tag 18,
 * AES-256, with the MDC) holding a literal data packet. Any OpenPGP
 * implementation (gpg) decrypts the result. Pure functions, thread-safe.
 */
#ifndef COFFER_UTIL_PGP_H
#define COFFER_UTIL_PGP_H

#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

/* The primary key's v4 fingerprint, 40 lower-case hex characters + NUL.
 * VERR_INVALID naming the problem when key_b64 is not such a key. */
int pgp_fingerprint(char out[41], const char *key_b64, struct verr *err);

/* *out (malloc'd, caller frees) = the binary OpenPGP message encrypting
 * msg to the key's RSA encryption subkey (or the primary key when it has
 * none). VERR_INVALID when the key is unusable. */
int pgp_encrypt(uint8_t **out, size_t *out_len, const char *key_b64, const uint8_t *msg,
		size_t msg_len, struct verr *err);

#endif
