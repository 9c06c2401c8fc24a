/*
 * hmac256.c - HMAC-SHA256 with precomputed pad states (see hmac256.h).
 *
 * The states are OpenSSL's plain SHA256_CTX, which can live in secmem and
 * be copied by assignment; EVP_MD_CTX keeps its state in OpenSSL's own heap
 * where it could be swapped out. SHA256_Init/Update/Final are deprecated in
 * OpenSSL 3 in favour of EVP but still part of it (and run the same
 * assembler block function), hence the pragma, here only.
 */
#include "util/hmac256.h"

#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/sha.h>

#include "util/secmem.h"

#define BLOCK 64
#define STATES_LEN (2 * sizeof(SHA256_CTX))

int hmac256_init(struct hmac256 *h, const uint8_t *key, size_t keylen)
{
	h->st = NULL;
	if (keylen > HMAC256_KEY_MAX || (!key && keylen))
		return -1;
	SHA256_CTX *st = secmem_alloc(STATES_LEN);
	if (!st)
		return -1;
	uint8_t block[BLOCK];
	for (int pass = 0; pass < 2; pass++) {
		memset(block, 0, sizeof(block));
		if (keylen)
			memcpy(block, key, keylen);
		for (size_t i = 0; i < sizeof(block); i++)
			block[i] ^= pass == 0 ? 0x36 : 0x5c;
		if (!SHA256_Init(&st[pass]) || !SHA256_Update(&st[pass], block, sizeof(block))) {
			secmem_wipe(block, sizeof(block));
			secmem_free(st, STATES_LEN);
			return -1;
		}
	}
	secmem_wipe(block, sizeof(block));
	h->st = st;
	return 0;
}

void hmac256_free(struct hmac256 *h)
{
	if (h->st)
		secmem_free(h->st, STATES_LEN);
	h->st = NULL;
}

bool hmac256_ready(const struct hmac256 *h)
{
	return h->st != NULL;
}

bool hmac256_two(const struct hmac256 *h, const void *a, size_t an, const void *b, size_t bn,
		 uint8_t out[HMAC256_LEN])
{
	if (!h->st) {
		memset(out, 0, HMAC256_LEN);
		return false;
	}
	const SHA256_CTX *st = h->st;
	SHA256_CTX c = st[0];
	uint8_t inner[HMAC256_LEN];
	if (an)
		SHA256_Update(&c, a, an);
	if (bn)
		SHA256_Update(&c, b, bn);
	SHA256_Final(inner, &c);
	c = st[1];
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(out, &c);
	secmem_wipe(&c, sizeof(c));
	secmem_wipe(inner, sizeof(inner));
	return true;
}

bool hmac256(const struct hmac256 *h, const void *data, size_t n, uint8_t out[HMAC256_LEN])
{
	return hmac256_two(h, data, n, NULL, 0, out);
}
#pragma GCC diagnostic pop

void hmac256_hex(const uint8_t mac[HMAC256_LEN], char out[2 * HMAC256_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < HMAC256_LEN; i++) {
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 15];
	}
	out[2 * HMAC256_LEN] = '\0';
}
