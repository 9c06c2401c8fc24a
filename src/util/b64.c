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

/* Tables built by the preprocessor. Encoding: the two symbols of every
 * 12-bit value (std alphabet), so a 3-byte group is two lookups. Decoding:
 * each symbol's value pre-shifted to its place in a 4-symbol quantum, and
 * 0xff000000 (no valid value sets those bits) for padding, CR/LF and every
 * invalid byte, which the careful loop then handles. */
#define B64_SYM(x) ((x) + ((x) < 26 ? 'A' : (x) < 52 ? 'a' - 26 : (x) < 62 ? '0' - 52 : (x) == 62 ? '+' - 62 : '/' - 63))
#define B64_PAIR(v) {(char)B64_SYM((v) >> 6), (char)B64_SYM((v) & 63)}
#define B64_P4(v) B64_PAIR(v), B64_PAIR((v) + 1), B64_PAIR((v) + 2), B64_PAIR((v) + 3)
#define B64_P16(v) B64_P4(v), B64_P4((v) + 4), B64_P4((v) + 8), B64_P4((v) + 12)
#define B64_P64(v) B64_P16(v), B64_P16((v) + 16), B64_P16((v) + 32), B64_P16((v) + 48)
#define B64_P256(v) B64_P64(v), B64_P64((v) + 64), B64_P64((v) + 128), B64_P64((v) + 192)
#define B64_P1024(v) B64_P256(v), B64_P256((v) + 256), B64_P256((v) + 512), B64_P256((v) + 768)
static const char enc_pair[4096][2] = {B64_P1024(0), B64_P1024(1024), B64_P1024(2048), B64_P1024(3072)};

#define B64_VAL(c)                                                                                  \
	((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                     \
	 : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                \
	 : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                \
	 : (c) == '+'               ? 62                                                            \
	 : (c) == '/'               ? 63                                                            \
				    : -1)
#define B64_D(c, sh) (B64_VAL(c) < 0 ? 0xff000000u : (uint32_t)B64_VAL(c) << (sh))
#define B64_D4(c, sh) B64_D(c, sh), B64_D((c) + 1, sh), B64_D((c) + 2, sh), B64_D((c) + 3, sh)
#define B64_D16(c, sh) B64_D4(c, sh), B64_D4((c) + 4, sh), B64_D4((c) + 8, sh), B64_D4((c) + 12, sh)
#define B64_D64(c, sh) B64_D16(c, sh), B64_D16((c) + 16, sh), B64_D16((c) + 32, sh), B64_D16((c) + 48, sh)
#define B64_D256(sh) B64_D64(0, sh), B64_D64(64, sh), B64_D64(128, sh), B64_D64(192, sh)
static const uint32_t dec0[256] = {B64_D256(18)}, dec1[256] = {B64_D256(12)},
		      dec2[256] = {B64_D256(6)}, dec3[256] = {B64_D256(0)};

size_t b64_encoded_len(size_t len, bool url)
{
	size_t n = len / 3 * 4;
	if (len % 3)
		n += url ? len % 3 + 1 : 4;
	return n;
}

size_t b64_encode_to(char *out, const uint8_t *in, size_t len, bool url)
{
	const char *a = url ? url_alpha : std_alpha;
	char *o = out;
	size_t i = 0;
	if (!url) {
		for (; i + 3 <= len; i += 3) {
			uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
			memcpy(o, enc_pair[v >> 12], 2);
			memcpy(o + 2, enc_pair[v & 0xfff], 2);
			o += 4;
		}
	}
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
	return (size_t)(o - out);
}

char *b64_encode(const uint8_t *in, size_t len, bool url)
{
	char *out = malloc(b64_encoded_len(len, url) + 1);
	if (out)
		b64_encode_to(out, in, len, url);
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

size_t b64_decoded_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

int b64_decode_to(uint8_t *buf, size_t *out_len, const char *in, size_t inlen, struct verr *err)
{
	size_t o = 0;
	uint32_t acc = 0;
	int nq = 0;   /* symbols in the current quantum */
	int pad = 0;  /* '=' seen */
	size_t i = 0;
	*out_len = 0;
	/* fast path: whole quanta of four alphabet symbols; anything else
	 * (padding, CR/LF, an invalid byte) goes to the careful loop below,
	 * which starts at a quantum boundary with nothing pending */
	for (; i + 4 <= inlen; i += 4) {
		const unsigned char *q = (const unsigned char *)in + i;
		uint32_t v = dec0[q[0]] | dec1[q[1]] | dec2[q[2]] | dec3[q[3]];
		if (v & 0xff000000u)
			break;
		buf[o] = (uint8_t)(v >> 16);
		buf[o + 1] = (uint8_t)(v >> 8);
		buf[o + 2] = (uint8_t)v;
		o += 3;
	}
	for (; i < inlen; i++) {
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
	secmem_wipe(buf, o);
	return verr_set(err, VERR_INVALID, "illegal base64 data at input byte %zu",
			i >= inlen && inlen >= 4 ? inlen - (inlen % 4 ? inlen % 4 : 4) : i);
done:
	buf[o] = '\0';
	*out_len = o;
	return 0;
}

int b64_decode(uint8_t **out, size_t *out_len, const char *in, bool secure,
			struct verr *err)
{
	size_t inlen = strlen(in);
	size_t cap = b64_decoded_max(inlen);
	uint8_t *buf = secure ? secmem_alloc(cap + 1) : malloc(cap + 1);
	*out = NULL;
	*out_len = 0;
	if (!buf)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = b64_decode_to(buf, out_len, in, inlen, err);
	if (rc) {
		b64_free(buf, cap, secure);
		return rc;
	}
	*out = buf;
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
