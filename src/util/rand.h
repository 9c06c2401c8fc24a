/*
 * rand.h - random bytes, UUIDs and base62 strings from OpenSSL's CSPRNG,
 * with the generator's result checked every time (a failed RAND_bytes must
 * never leave a predictable accessor, lease id or OTP behind).
 *
 * Every function returns 0 or VERR_INTERNAL ("random generator failed") and
 * leaves the output zeroed/empty on failure. Thread-safe.
 */
#ifndef COFFER_UTIL_RAND_H
#define COFFER_UTIL_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

#define RAND_UUID_LEN 36 /* without the NUL */

/* n random bytes */
int rand_bytes(uint8_t *buf, size_t n, struct verr *err);
/* a version 4 UUID, lower-case hex, in out[37] */
int rand_uuid(char out[RAND_UUID_LEN + 1], struct verr *err);
/* n characters of [A-Za-z0-9], uniformly (rejection sampling), NUL at out[n] */
int rand_base62(char *out, size_t n, struct verr *err);

#endif
