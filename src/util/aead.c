/*
 * aead.c - AES-256-GCM in the barrier's entry format (aead.h).
 *
 * Each call allocates its own EVP context; the cipher object is fetched once
 * (EVP_CIPHER_fetch), which keeps OpenSSL 3 from taking its provider-store
 * lock on every call.
 */
#include "util/aead.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/secmem.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN 5 /* term + version */

static pthread_once_t cipher_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *cipher_fetched;

static void cipher_init(void)
{
	cipher_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *gcm_cipher(void)
{
	pthread_once(&cipher_once, cipher_init);
	return cipher_fetched ? cipher_fetched : EVP_aes_256_gcm();
}

void aead_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t aead_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Feed AAD = header || path. */
static int gcm_aad(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *hdr, const char *path)
{
	int outl;
	size_t plen = strlen(path);
	if (plen > INT_MAX)
		return -1;
	int (*upd)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
		enc ? EVP_EncryptUpdate : EVP_DecryptUpdate;
	if (upd(ctx, NULL, &outl, hdr, HDR_LEN) != 1)
		return -1;
	if (plen && upd(ctx, NULL, &outl, (const uint8_t *)path, (int)plen) != 1)
		return -1;
	return 0;
}

int aead_seal_into(uint8_t *out, const uint8_t *key, uint32_t term, const char *path,
		    const uint8_t *pt, size_t len)
{
	int rc = -1, outl;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t *nonce = out + HDR_LEN, *ct = out + HDR_LEN + NONCE_LEN;
	if (!ctx)
		return -1;
	aead_put_u32(out, term);
	out[4] = AEAD_VERSION;
	if (RAND_bytes(nonce, NONCE_LEN) != 1)
		goto out;
	if (EVP_EncryptInit_ex(ctx, gcm_cipher(), NULL, key, nonce) != 1)
		goto out;
	if (gcm_aad(ctx, 1, out, path) != 0)
		goto out;
	for (size_t off = 0; off < len;) {
		int chunk = len - off > (1u << 30) ? (1 << 30) : (int)(len - off);
		if (EVP_EncryptUpdate(ctx, ct + off, &outl, pt + off, chunk) != 1)
			goto out;
		off += (size_t)chunk;
	}
	if (EVP_EncryptFinal_ex(ctx, ct + len, &outl) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + len) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int aead_open_into(uint8_t *out, const uint8_t *key, const char *path, const uint8_t *ct,
		    size_t len)
{
	int rc = -1, outl;
	size_t ptlen = len - AEAD_OVERHEAD;
	const uint8_t *nonce = ct + HDR_LEN, *body = ct + HDR_LEN + NONCE_LEN;
	uint8_t tag[TAG_LEN];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	memcpy(tag, body + ptlen, TAG_LEN);
	if (EVP_DecryptInit_ex(ctx, gcm_cipher(), NULL, key, nonce) != 1)
		goto out;
	if (gcm_aad(ctx, 0, ct, path) != 0)
		goto out;
	for (size_t off = 0; off < ptlen;) {
		int chunk = ptlen - off > (1u << 30) ? (1 << 30) : (int)(ptlen - off);
		if (EVP_DecryptUpdate(ctx, out + off, &outl, body + off, chunk) != 1)
			goto out;
		off += (size_t)chunk;
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, out + ptlen, &outl) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int aead_blob_seal(uint8_t **out, size_t *out_len, const uint8_t *key32, const char *aad,
		      const uint8_t *pt, size_t len, struct verr *err)
{
	*out = NULL;
	*out_len = 0;
	if (len > SIZE_MAX - AEAD_OVERHEAD)
		return verr_set(err, VERR_TOO_LARGE, "value too large to encrypt");
	uint8_t *ct = malloc(len + AEAD_OVERHEAD);
	if (!ct)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (aead_seal_into(ct, key32, 0, aad, pt, len) != 0) {
		free(ct);
		return verr_set(err, VERR_INTERNAL, "encryption failed");
	}
	*out = ct;
	*out_len = len + AEAD_OVERHEAD;
	return 0;
}

int aead_blob_open(uint8_t **out, size_t *out_len, const uint8_t *key32, const char *aad,
		      const uint8_t *ct, size_t len, struct verr *err)
{
	*out = NULL;
	*out_len = 0;
	if (len < AEAD_OVERHEAD || aead_get_u32(ct) != 0 || ct[4] != AEAD_VERSION)
		return verr_set(err, VERR_INTERNAL, "sealed value at %s is malformed", aad);
	size_t ptlen = len - AEAD_OVERHEAD;
	uint8_t *pt = secmem_alloc(ptlen);
	if (!pt)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (aead_open_into(pt, key32, aad, ct, len) != 0) {
		secmem_free(pt, ptlen);
		return verr_set(err, VERR_INVALID, "invalid key");
	}
	*out = pt;
	*out_len = ptlen;
	return 0;
}

