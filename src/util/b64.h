/*
 * b64.h - standard base64 (RFC 4648 section 4, with padding), as etcd's JSON
 * gateway, Vault's API and most wire formats use it.
 *
 * b64_encode: *out = NUL-terminated text (malloc), *olen its length.
 * b64_decode: strict: padding required, no whitespace, no foreign
 * characters; *out = bytes (malloc, NUL-terminated for convenience), *olen.
 * Both return 0, or -1 on bad input / allocation failure (*out NULL).
 * Thread-safe, no state.
 */
#ifndef COFFER_UTIL_B64_H
#define COFFER_UTIL_B64_H

#include <stddef.h>
#include <stdint.h>

int b64_encode(const uint8_t *in, size_t len, char **out, size_t *olen);
int b64_decode(const char *in, size_t len, uint8_t **out, size_t *olen);

#endif
