/*
 * hmac256.h - HMAC-SHA256 under a fixed key, with the key schedule done once.
 *
 * hmac256_init absorbs (key ^ ipad) and (key ^ opad) into two SHA-256
 * states (RFC 2104) kept in secmem: they are key material (whoever holds
 * them can compute the MAC), so they are mlock'd, left out of core dumps
 * and wiped by hmac256_free. They are never updated afterwards: each MAC
 * copies them to the stack (wiped after use), so threads share one
 * `struct hmac256` read-only, and a MAC costs the SHA-256 blocks of its
 * input plus one, with no allocation and no EVP context set-up, where
 * HMAC() or a fresh EVP digest pays both and two more blocks every time.
 *
 *   struct hmac256 h;
 *   if (hmac256_init(&h, key, keylen)) ...fail...
 *   uint8_t mac[HMAC256_LEN];
 *   hmac256(&h, data, len, mac);
 *   hmac256_free(&h);
 */
#ifndef COFFER_UTIL_HMAC256_H
#define COFFER_UTIL_HMAC256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HMAC256_LEN 32
#define HMAC256_KEY_MAX 64 /* one SHA-256 block: longer keys are refused */

struct hmac256 {
	void *st; /* secmem: the inner then the outer SHA-256 state */
};

/* 0, or -1 (keylen > HMAC256_KEY_MAX, or out of memory: h is left empty). */
int hmac256_init(struct hmac256 *h, const uint8_t *key, size_t keylen);
void hmac256_free(struct hmac256 *h);
bool hmac256_ready(const struct hmac256 *h);

/* out = HMAC-SHA256(key, data); false (out zeroed) if h is empty. */
bool hmac256(const struct hmac256 *h, const void *data, size_t n, uint8_t out[HMAC256_LEN]);

/* The same over the concatenation a || b (either may be empty). */
bool hmac256_two(const struct hmac256 *h, const void *a, size_t an, const void *b, size_t bn,
		 uint8_t out[HMAC256_LEN]);

/* out = lower-case hex of mac, NUL-terminated. */
void hmac256_hex(const uint8_t mac[HMAC256_LEN], char out[2 * HMAC256_LEN + 1]);

#endif
