/*
 * snaparchive.c - the raft snapshot file (see snaparchive.h): a ustar
 * writer/reader for the four members and gzip via zlib.
 */
#include "util/snaparchive.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define TAR_BLOCK 512
/* gunzip refuses archives that inflate past this (a zip bomb guard) */
#define MAX_INFLATED ((size_t)16 << 30)

static void hex(char *out, const uint8_t *d, size_t n)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[2 * n] = 0;
}

static void sha_hex(char out[65], const uint8_t *d, size_t n)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(d, n, md);
	hex(out, md, sizeof(md));
}

char *snaparchive_sums(const uint8_t *meta, size_t meta_len, const uint8_t *state,
		       size_t state_len)
{
	char a[65], b[65];
	sha_hex(a, meta, meta_len);
	sha_hex(b, state, state_len);
	size_t n = 2 * 64 + 64;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s  meta.json\n%s  state.bin\n", a, b);
	return s;
}

/* ---- tar --------------------------------------------------------------------- */

static void tar_header(uint8_t h[TAR_BLOCK], const char *name, size_t size, time_t mtime)
{
	memset(h, 0, TAR_BLOCK);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0600);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)mtime);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

struct member {
	const char *name;
	const uint8_t *data;
	size_t len;
};

static uint8_t *tar_build(const struct member *m, size_t n, size_t *out_len)
{
	size_t total = 2 * TAR_BLOCK;
	for (size_t i = 0; i < n; i++)
		total += TAR_BLOCK + (m[i].len + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	uint8_t *t = calloc(1, total);
	if (!t)
		return NULL;
	size_t o = 0;
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		tar_header(t + o, m[i].name, m[i].len, now);
		o += TAR_BLOCK;
		if (m[i].len)
			memcpy(t + o, m[i].data, m[i].len);
		o += (m[i].len + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	}
	*out_len = total;
	return t;
}

/* ---- gzip -------------------------------------------------------------------- */

static int gz(uint8_t **out, size_t *out_len, const uint8_t *in, size_t len)
{
	z_stream z = {0};
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -1;
	size_t cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *b = malloc(cap);
	if (!b) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = b;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(b);
		return -1;
	}
	*out = b;
	return 0;
}

static int gunzip(uint8_t **out, size_t *out_len, const uint8_t *in, size_t len,
		  struct verr *err)
{
	if (len < 18 || in[0] != 0x1f || in[1] != 0x8b)
		return verr_set(err, VERR_INVALID, "the snapshot is not a gzip archive");
	z_stream z = {0};
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t cap = len * 4 + 4096, n = 0;
	uint8_t *b = malloc(cap);
	if (!b) {
		inflateEnd(&z);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	int rc = Z_OK;
	bool oom = false;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	while (rc == Z_OK) {
		if (n == cap) {
			uint8_t *nb = cap >= MAX_INFLATED ? NULL : realloc(b, cap * 2);
			if (!nb) {
				oom = true;
				break;
			}
			b = nb;
			cap *= 2;
		}
		z.next_out = b + n;
		z.avail_out = (uInt)(cap - n > (1u << 30) ? (1u << 30) : cap - n);
		uInt before = z.avail_out;
		rc = inflate(&z, Z_NO_FLUSH);
		n += before - z.avail_out;
		if (rc == Z_BUF_ERROR && z.avail_in == 0)
			break; /* input ended mid-stream */
		if (rc == Z_BUF_ERROR)
			rc = Z_OK;
	}
	bool trailing = z.avail_in != 0;
	inflateEnd(&z);
	if (oom) {
		free(b);
		return verr_set(err, VERR_INVALID, "the snapshot is too large to inflate");
	}
	if (rc != Z_STREAM_END) {
		free(b);
		return verr_set(err, VERR_INVALID,
				rc == Z_DATA_ERROR ? "the snapshot is corrupted (bad gzip data)"
						   : "the snapshot is truncated");
	}
	if (trailing) {
		free(b);
		return verr_set(err, VERR_INVALID, "the snapshot has trailing bytes after its end");
	}
	*out = b;
	*out_len = n;
	return 0;
}

int snaparchive_build(uint8_t **out, size_t *out_len, const char *meta, const uint8_t *state,
		      size_t state_len, const char *sums, const uint8_t *sealed, size_t sealed_len,
		      struct verr *err)
{
	struct member m[] = {
		{"meta.json", (const uint8_t *)meta, strlen(meta)},
		{"state.bin", state, state_len},
		{"SHA256SUMS", (const uint8_t *)sums, strlen(sums)},
		{"SHA256SUMS.sealed", sealed, sealed_len},
	};
	size_t tl = 0;
	uint8_t *t = tar_build(m, 4, &tl);
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = gz(out, out_len, t, tl);
	free(t);
	return rc ? verr_set(err, VERR_INTERNAL, "compressing the snapshot failed") : 0;
}

static unsigned long long octal(const uint8_t *p, size_t n)
{
	unsigned long long v = 0;
	for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
		v = v * 8 + (p[i] - '0');
	return v;
}

static bool zero_block(const uint8_t *b)
{
	for (int i = 0; i < TAR_BLOCK; i++)
		if (b[i])
			return false;
	return true;
}

/* the SHA256SUMS line for name, as 64 hex characters, or NULL */
static const char *sum_for(const char *sums, size_t len, const char *name)
{
	size_t nl = strlen(name);
	for (size_t o = 0; o + 66 + nl <= len;) {
		const char *line = sums + o;
		const char *eol = memchr(line, '\n', len - o);
		size_t ll = eol ? (size_t)(eol - line) : len - o;
		if (ll == 66 + nl && line[64] == ' ' && line[65] == ' ' && !memcmp(line + 66, name, nl))
			return line;
		o += ll + 1;
	}
	return NULL;
}

int snaparchive_parse(struct snaparchive *a, const uint8_t *buf, size_t len, struct verr *err)
{
	memset(a, 0, sizeof(*a));
	size_t tl = 0;
	int rc = gunzip(&a->raw, &tl, buf, len, err);
	if (rc)
		return rc;
	size_t o = 0;
	bool end = false;
	while (o + TAR_BLOCK <= tl) {
		const uint8_t *h = a->raw + o;
		if (zero_block(h)) {
			end = true;
			break;
		}
		unsigned sum = 0;
		for (int i = 0; i < TAR_BLOCK; i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		if (sum != octal(h + 148, 8)) {
			rc = verr_set(err, VERR_INVALID, "the snapshot's tar header is corrupted");
			goto fail;
		}
		char name[101];
		memcpy(name, h, 100);
		name[100] = 0;
		unsigned long long size = octal(h + 124, 12);
		o += TAR_BLOCK;
		if (size > tl - o) {
			rc = verr_set(err, VERR_INVALID, "the snapshot is truncated (in %s)", name);
			goto fail;
		}
		const uint8_t *d = a->raw + o;
		if (!strcmp(name, "meta.json")) {
			a->meta = (const char *)d;
			a->meta_len = size;
		} else if (!strcmp(name, "state.bin")) {
			a->state = d;
			a->state_len = size;
		} else if (!strcmp(name, "SHA256SUMS")) {
			a->sums = (const char *)d;
			a->sums_len = size;
		} else if (!strcmp(name, "SHA256SUMS.sealed")) {
			a->sealed = d;
			a->sealed_len = size;
		}
		o += (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	}
	if (!end) {
		rc = verr_set(err, VERR_INVALID, "the snapshot is truncated (no end of archive)");
		goto fail;
	}
	const char *missing = !a->meta ? "meta.json" : !a->state ? "state.bin"
			      : !a->sums ? "SHA256SUMS" : !a->sealed ? "SHA256SUMS.sealed" : NULL;
	if (missing) {
		rc = verr_set(err, VERR_INVALID, "the snapshot has no %s", missing);
		goto fail;
	}
	struct {
		const char *name;
		const uint8_t *d;
		size_t n;
	} chk[] = {{"meta.json", (const uint8_t *)a->meta, a->meta_len},
		   {"state.bin", a->state, a->state_len}};
	for (int i = 0; i < 2; i++) {
		const char *want = sum_for(a->sums, a->sums_len, chk[i].name);
		char got[65];
		sha_hex(got, chk[i].d, chk[i].n);
		if (!want || CRYPTO_memcmp(want, got, 64)) {
			rc = verr_set(err, VERR_INVALID,
				      "the snapshot's %s does not match SHA256SUMS (corrupted or "
				      "tampered with)",
				      chk[i].name);
			goto fail;
		}
	}
	return 0;
fail:
	snaparchive_free(a);
	return rc;
}

void snaparchive_free(struct snaparchive *a)
{
	if (!a)
		return;
	free(a->raw);
	memset(a, 0, sizeof(*a));
}
