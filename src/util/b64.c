/*
 * b64.c - standard base64 with padding (b64.h).
 */
#include "util/b64.h"

#include <stdbool.h>
#include <stdlib.h>

static const char ENC[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_encode(const uint8_t *in, size_t len, char **out, size_t *olen)
{
	size_t n = (len + 2) / 3 * 4;
	char *o = malloc(n + 1);
	*out = NULL;
	if (!o)
		return -1;
	size_t j = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		o[j++] = ENC[(v >> 18) & 63];
		o[j++] = ENC[(v >> 12) & 63];
		o[j++] = i + 1 < len ? ENC[(v >> 6) & 63] : '=';
		o[j++] = i + 2 < len ? ENC[v & 63] : '=';
	}
	o[j] = '\0';
	*out = o;
	if (olen)
		*olen = j;
	return 0;
}

static int dec(int c)
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

int b64_decode(const char *in, size_t len, uint8_t **out, size_t *olen)
{
	*out = NULL;
	if (len % 4)
		return -1;
	uint8_t *o = malloc(len / 4 * 3 + 1);
	if (!o)
		return -1;
	size_t j = 0;
	for (size_t i = 0; i < len; i += 4) {
		int a = dec(in[i]), b = dec(in[i + 1]);
		int pad2 = in[i + 2] == '=', pad3 = in[i + 3] == '=';
		int c = pad2 ? 0 : dec(in[i + 2]), d = pad3 ? 0 : dec(in[i + 3]);
		bool last = i + 4 == len;
		if (a < 0 || b < 0 || c < 0 || d < 0 || ((pad2 || pad3) && !last) || (pad2 && !pad3)) {
			free(o);
			return -1;
		}
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		o[j++] = (uint8_t)(v >> 16);
		if (!pad2)
			o[j++] = (uint8_t)(v >> 8);
		if (!pad3)
			o[j++] = (uint8_t)v;
	}
	o[j] = 0;
	*out = o;
	if (olen)
		*olen = j;
	return 0;
}
