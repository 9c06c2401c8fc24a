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
/* Lower-case hex, malloc'd. */
char *hex_encode(const uint8_t *in, size_t len);

#endif
