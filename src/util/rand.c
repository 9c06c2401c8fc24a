/*
 * rand.c - checked random helpers over OpenSSL's RAND_bytes (rand.h).
 */
#include "util/rand.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

int rand_bytes(uint8_t *buf, size_t n, struct verr *err)
{
	while (n > 0) {
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		if (RAND_bytes(buf, chunk) != 1) {
			return verr_set(err, VERR_INTERNAL, "random generator failed");
		}
		buf += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

int rand_uuid(char out[RAND_UUID_LEN + 1], struct verr *err)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	out[0] = '\0';
	int rc = rand_bytes(b, sizeof(b), err);
	if (rc)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

int rand_base62(char *out, size_t n, struct verr *err)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t buf[64];
	size_t got = 0;
	out[0] = '\0';
	while (got < n) {
		int rc = rand_bytes(buf, sizeof(buf), err);
		if (rc) {
			OPENSSL_cleanse(out, got);
			out[0] = '\0';
			return rc;
		}
		for (size_t i = 0; i < sizeof(buf) && got < n; i++)
			if (buf[i] < 248) /* 248 = 4 * 62: no modulo bias */
				out[got++] = al[buf[i] % 62];
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	out[n] = '\0';
	return 0;
}
