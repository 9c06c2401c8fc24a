/*
 * b64.c - base64 and hex (b64.h).
 *
 * Vault decodes (transit, etcd's gateway and others) with Go's base64.StdEncoding: padding required,
 * CR/LF ignored, anything else outside the alphabet an error reported as
 * "illegal base64 data at input byte N". Clients see that text in 400s and
 * batch items, so the decoder reproduces it. Decoded plaintexts and keys go
 * to secmem when the caller asks (secure).
 */
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"
#include "util/secmem.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *b64_encode(const uint8_t *in, size_t len, bool url)
{
	const char *a = url ? url_alpha : std_alpha;
	size_t n = (len + 2) / 3 * 4;
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	char *o = out;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = a[v >> 18];
		*o++ = a[(v >> 12) & 63];
		*o++ = a[(v >> 6) & 63];
		*o++ = a[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = a[v >> 18];
		*o++ = a[(v >> 12) & 63];
		if (i + 1 < len)
			*o++ = a[(v >> 6) & 63];
		else if (!url)
			*o++ = '=';
		if (!url)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int dval(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void b64_free(uint8_t *p, size_t len, bool secure)
{
	if (!p)
		return;
	if (secure)
		secmem_free(p, len + 1);
	else
		free(p);
}

int b64_decode(uint8_t **out, size_t *out_len, const char *in, bool secure,
			struct verr *err)
{
	size_t inlen = strlen(in);
	size_t cap = inlen / 4 * 3 + 3;
	uint8_t *buf = secure ? secmem_alloc(cap + 1) : malloc(cap + 1);
	*out = NULL;
	*out_len = 0;
	if (!buf)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t o = 0;
	uint32_t acc = 0;
	int nq = 0;   /* symbols in the current quantum */
	int pad = 0;  /* '=' seen */
	size_t i;
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (pad) {
			if (c == '=' && pad == 1 && nq == 2) {
				pad = 2;
				continue;
			}
			goto bad;
		}
		if (c == '=') {
			if (nq < 2)
				goto bad;
			pad = 1;
			continue;
		}
		int d = dval(c);
		if (d < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)d;
		if (++nq == 4) {
			buf[o++] = (uint8_t)(acc >> 16);
			buf[o++] = (uint8_t)(acc >> 8);
			buf[o++] = (uint8_t)acc;
			acc = 0;
			nq = 0;
		}
	}
	if (nq == 0 && !pad)
		goto done;
	/* a partial quantum needs its padding: xx== or xxx= */
	if ((nq == 2 && pad == 2) || (nq == 3 && pad == 1)) {
		if (nq == 2) {
			buf[o++] = (uint8_t)(acc >> 4);
		} else {
			buf[o++] = (uint8_t)(acc >> 10);
			buf[o++] = (uint8_t)(acc >> 2);
		}
		goto done;
	}
	i = inlen;
bad:
	secmem_wipe(buf, cap + 1);
	b64_free(buf, cap, secure);
	return verr_set(err, VERR_INVALID, "illegal base64 data at input byte %zu",
			i >= inlen && inlen >= 4 ? inlen - (inlen % 4 ? inlen % 4 : 4) : i);
done:
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	/* secmem_free takes the size it was given: the caller passes *out_len,
	 * the header in front of the block records the real size */
	return 0;
}

char *hex_encode(const uint8_t *in, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char *out = malloc(len * 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[len * 2] = '\0';
	return out;
}
