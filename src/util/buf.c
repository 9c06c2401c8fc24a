/*
 * buf.c - growable byte buffer (buf.h).
 */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void init(struct buf *b, size_t hint, bool secret)
{
	memset(b, 0, sizeof(*b));
	b->secret = secret;
	if (hint)
		buf_reserve(b, hint);
}

void buf_init(struct buf *b, size_t hint)
{
	init(b, hint, false);
}

void buf_init_secret(struct buf *b, size_t hint)
{
	init(b, hint, true);
}

bool buf_reserve(struct buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (extra > SIZE_MAX - b->len - 1) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	char *np;
	if (b->secret) {
		np = malloc(cap);
		if (np && b->p) {
			memcpy(np, b->p, b->len + 1);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
	} else {
		np = realloc(b->p, cap);
	}
	if (!np) {
		b->failed = true;
		return false;
	}
	if (!b->p)
		np[0] = '\0';
	b->p = np;
	b->cap = cap;
	return true;
}

void buf_add(struct buf *b, const void *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_char(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *buf_take(struct buf *b, size_t *len)
{
	bool secret = b->secret;
	if (b->failed || !buf_reserve(b, 0)) {
		buf_free(b);
		b->secret = secret;
		if (len)
			*len = 0;
		return NULL;
	}
	char *p = b->p;
	if (len)
		*len = b->len;
	memset(b, 0, sizeof(*b));
	b->secret = secret;
	return p;
}

void buf_free(struct buf *b)
{
	if (b->p && b->secret)
		OPENSSL_cleanse(b->p, b->cap);
	free(b->p);
	bool secret = b->secret;
	memset(b, 0, sizeof(*b));
	b->secret = secret;
}

int buf_read_stream(struct buf *b, FILE *f, size_t max)
{
	size_t start = b->len;
	for (;;) {
		if (!buf_reserve(b, 8192))
			return -1;
		size_t room = b->cap - b->len - 1;
		size_t r = fread(b->p + b->len, 1, room, f);
		b->len += r;
		b->p[b->len] = '\0';
		if (max && b->len - start > max)
			return 1;
		if (r < room)
			return ferror(f) ? -1 : 0;
	}
}
