/*
 * b64.h - base64 (standard with padding, or URL-safe without) and hex.
 *
 * Decoding follows Go's base64.StdEncoding, as Vault's API does: padding
 * required, CR/LF ignored, anything else outside the alphabet is an error
 * reported as "illegal base64 data at input byte N" (clients see that text
 * in 400s). Thread-safe, no state.
 */
#ifndef COFFER_UTIL_B64_H
#define COFFER_UTIL_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

/* Standard base64 (with padding) or URL-safe without padding (url);
 * malloc'd, NUL-terminated; NULL when out of memory. */
char *b64_encode(const uint8_t *in, size_t len, bool url);
/* Strict standard base64 with padding of the NUL-terminated `in`. *out:
 * malloc'd (or secmem when secure) with len+1 capacity, NUL-terminated;
 * free with b64_free. On error: VERR_INVALID "illegal base64 data at input
 * byte N". */
int b64_decode(uint8_t **out, size_t *out_len, const char *in, bool secure, struct verr *err);
void b64_free(uint8_t *p, size_t len, bool secure);
/* The same decoding into a caller's buffer of at least
 * b64_decoded_max(inlen) + 1 bytes (in need not be NUL-terminated; the
 * output is). On error the bytes written are wiped. For hot paths that
 * keep a buffer (the transit engine's per-thread locked scratch). */
size_t b64_decoded_max(size_t inlen);
int b64_decode_to(uint8_t *buf, size_t *out_len, const char *in, size_t inlen, struct verr *err);
/* Encoding into a caller's buffer of b64_encoded_len(len, url) + 1 bytes;
 * returns the characters written (NUL not counted). */
size_t b64_encoded_len(size_t len, bool url);
size_t b64_encode_to(char *out, const uint8_t *in, size_t len, bool url);
/* Lower-case hex, malloc'd. */
char *hex_encode(const uint8_t *in, size_t len);

#endif
