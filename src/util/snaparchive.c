/*
 * snaparchive.c - the raft snapshot file (see snaparchive.h): a ustar
 * writer/reader for the four members and gzip via zlib.
 */
#include "util/snaparchive.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

/* ---- streaming ------------------------------------------------------------------ */

#define IOBUF 65536
#define SMALL_MEMBER ((size_t)1 << 20)

void snaparchive_sha_hex(char out[65], const uint8_t *d, size_t n)
{
	sha_hex(out, d, n);
}

char *snaparchive_sums_hex(const char *meta_hex, const char *state_hex)
{
	size_t n = 2 * 64 + 64;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%.64s  meta.json\n%.64s  state.bin\n", meta_hex, state_hex);
	return s;
}

static int write_all(int fd, const uint8_t *p, size_t n, struct verr *err)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return verr_set(err, VERR_INTERNAL, "writing the snapshot failed: %s",
					strerror(w < 0 ? errno : EIO));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct gzw {
	int fd;
	z_stream z;
	uint8_t out[IOBUF];
};

static int gzw_put(struct gzw *g, const void *data, size_t n, int flush, struct verr *err)
{
	g->z.next_in = (Bytef *)data;
	g->z.avail_in = (uInt)n;
	do {
		g->z.next_out = g->out;
		g->z.avail_out = IOBUF;
		if (deflate(&g->z, flush) == Z_STREAM_ERROR)
			return verr_set(err, VERR_INTERNAL, "compressing the snapshot failed");
		int rc = write_all(g->fd, g->out, IOBUF - g->z.avail_out, err);
		if (rc)
			return rc;
	} while (g->z.avail_out == 0);
	return 0;
}

static int gzw_member(struct gzw *g, const char *name, const uint8_t *data, int src_fd,
		      uint64_t size, uint8_t *chunk, struct verr *err)
{
	uint8_t h[TAR_BLOCK];
	if (!data && src_fd < 0 && size)
		return verr_set(err, VERR_INTERNAL, "snapshot member %s has no source", name);
	tar_header(h, name, (size_t)size, time(NULL));
	int rc = gzw_put(g, h, TAR_BLOCK, Z_NO_FLUSH, err);
	if (data && !rc)
		rc = gzw_put(g, data, (size_t)size, Z_NO_FLUSH, err);
	for (uint64_t off = 0; !data && src_fd >= 0 && !rc && off < size;) {
		size_t want = size - off > IOBUF * 4 ? IOBUF * 4 : (size_t)(size - off);
		ssize_t r = pread(src_fd, chunk, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return verr_set(err, VERR_INTERNAL, "reading the snapshot state failed: %s",
					r < 0 ? strerror(errno) : "short file");
		rc = gzw_put(g, chunk, (size_t)r, Z_NO_FLUSH, err);
		off += (uint64_t)r;
	}
	memset(h, 0, TAR_BLOCK);
	size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
	if (!rc && pad)
		rc = gzw_put(g, h, pad, Z_NO_FLUSH, err);
	return rc;
}

int snaparchive_write(int out_fd, const char *meta, int state_fd, uint64_t state_len,
		      const char *sums, const uint8_t *sealed, size_t sealed_len,
		      struct verr *err)
{
	struct gzw *g = calloc(1, sizeof(*g));
	uint8_t *chunk = malloc(IOBUF * 4);
	if (!g || !chunk) {
		free(g);
		free(chunk);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	g->fd = out_fd;
	/* the state is barrier ciphertext, which does not compress: stored
	 * deflate blocks (level 0) make the same size at ~9x the speed of
	 * level 1 (a valid gzip for any tool) */
	int rc = deflateInit2(&g->z, Z_NO_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
				 Z_OK
			 ? 0
			 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		free(g);
		free(chunk);
		return rc;
	}
	uint8_t zero[2 * TAR_BLOCK] = {0};
	rc = gzw_member(g, "meta.json", (const uint8_t *)meta, -1, strlen(meta), chunk, err);
	if (!rc)
		rc = gzw_member(g, "state.bin", NULL, state_fd, state_len, chunk, err);
	if (!rc)
		rc = gzw_member(g, "SHA256SUMS", (const uint8_t *)sums, -1, strlen(sums), chunk,
				err);
	if (!rc)
		rc = gzw_member(g, "SHA256SUMS.sealed", sealed, -1, sealed_len, chunk, err);
	if (!rc)
		rc = gzw_put(g, zero, sizeof(zero), Z_FINISH, err);
	deflateEnd(&g->z);
	free(g);
	free(chunk);
	return rc;
}

/* a gunzip stream over an fd or a buffer */
struct gzr {
	int fd;
	const uint8_t *mem;
	size_t mem_len, mem_off;
	z_stream z;
	bool in_eof, done;
	uint64_t out_total;
	uint8_t in[IOBUF];
};

static int gzr_fill(struct gzr *g, struct verr *err)
{
	if (g->z.avail_in || g->in_eof)
		return 0;
	if (g->fd < 0) {
		size_t n = g->mem_len - g->mem_off;
		if (n > (1u << 30))
			n = 1u << 30;
		g->z.next_in = (Bytef *)(g->mem + g->mem_off);
		g->z.avail_in = (uInt)n;
		g->mem_off += n;
		g->in_eof = n == 0;
		return 0;
	}
	for (;;) {
		ssize_t r = read(g->fd, g->in, IOBUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return verr_set(err, VERR_INTERNAL, "reading the snapshot failed: %s",
					strerror(errno));
		g->z.next_in = g->in;
		g->z.avail_in = (uInt)r;
		g->in_eof = r == 0;
		return 0;
	}
}

static int gzr_init(struct gzr *g, int fd, const uint8_t *buf, size_t len, struct verr *err)
{
	memset(g, 0, offsetof(struct gzr, in));
	g->fd = fd;
	g->mem = buf;
	g->mem_len = buf ? len : 0;
	if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0)
		return verr_set(err, VERR_INTERNAL, "reading the snapshot failed: %s",
				strerror(errno));
	int rc = gzr_fill(g, err);
	if (rc)
		return rc;
	if (g->z.avail_in < 2 || g->z.next_in[0] != 0x1f || g->z.next_in[1] != 0x8b)
		return verr_set(err, VERR_INVALID, "the snapshot is not a gzip archive");
	if (inflateInit2(&g->z, 15 + 16) != Z_OK)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

static void gzr_end(struct gzr *g)
{
	inflateEnd(&g->z);
}

/* n bytes, or fewer only at the end of the gzip stream; <0 on an error */
static long gzr_read(struct gzr *g, void *buf, size_t n, struct verr *err)
{
	size_t got = 0;
	while (got < n && !g->done) {
		int rc = gzr_fill(g, err);
		if (rc)
			return rc;
		if (!g->z.avail_in && g->in_eof)
			return verr_set(err, VERR_INVALID, "the snapshot is truncated");
		size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
		g->z.next_out = (Bytef *)buf + got;
		g->z.avail_out = (uInt)want;
		int zr = inflate(&g->z, Z_NO_FLUSH);
		got += want - g->z.avail_out;
		if (zr == Z_STREAM_END)
			g->done = true;
		else if (zr == Z_MEM_ERROR)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return verr_set(err, VERR_INVALID, "the snapshot is corrupted (bad gzip data)");
	}
	g->out_total += got;
	if (g->out_total > MAX_INFLATED)
		return verr_set(err, VERR_INVALID, "the snapshot is too large to inflate");
	return (long)got;
}

static int gzr_exact(struct gzr *g, void *buf, size_t n, const char *where, struct verr *err)
{
	long r = gzr_read(g, buf, n, err);
	if (r < 0)
		return (int)r;
	if ((size_t)r < n)
		return where ? verr_set(err, VERR_INVALID, "the snapshot is truncated (in %s)", where)
			     : verr_set(err, VERR_INVALID,
					"the snapshot is truncated (no end of archive)");
	return 0;
}

/* skip n bytes of the tar, feeding them to md when set */
static int gzr_skip(struct gzr *g, uint64_t n, EVP_MD_CTX *md, const char *where,
		    struct verr *err)
{
	uint8_t *b = malloc(IOBUF);
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = 0;
	while (n && !rc) {
		size_t k = n > IOBUF ? IOBUF : (size_t)n;
		rc = gzr_exact(g, b, k, where, err);
		if (!rc && md)
			EVP_DigestUpdate(md, b, k);
		n -= k;
	}
	free(b);
	return rc;
}

/* the next tar header: 0 with its name and size, 1 at the end-of-archive block */
static int tar_next(struct gzr *g, char name[101], uint64_t *size, struct verr *err)
{
	uint8_t h[TAR_BLOCK];
	int rc = gzr_exact(g, h, TAR_BLOCK, NULL, err);
	if (rc)
		return rc;
	if (zero_block(h))
		return 1;
	unsigned sum = 0;
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	if (sum != octal(h + 148, 8))
		return verr_set(err, VERR_INVALID, "the snapshot's tar header is corrupted");
	memcpy(name, h, 100);
	name[100] = 0;
	*size = octal(h + 124, 12);
	return 0;
}

static uint64_t tar_pad(uint64_t size)
{
	return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

static void md_hex(EVP_MD_CTX *md, char out[65])
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_DigestFinal_ex(md, d, &dl);
	hex(out, d, dl > 32 ? 32 : dl);
}

void snapcheck_free(struct snapcheck *c)
{
	if (!c)
		return;
	free(c->meta);
	free(c->sums);
	free(c->sealed);
	memset(c, 0, sizeof(*c));
}

static int check_pass(struct snapcheck *c, struct gzr *g, EVP_MD_CTX *md, struct verr *err)
{
	bool have_state = false;
	for (;;) {
		char name[101];
		uint64_t size = 0;
		int rc = tar_next(g, name, &size, err);
		if (rc == 1)
			break;
		if (rc)
			return rc;
		char **small = !strcmp(name, "meta.json")    ? &c->meta
			       : !strcmp(name, "SHA256SUMS") ? &c->sums
			       : !strcmp(name, "SHA256SUMS.sealed") ? (char **)&c->sealed
								     : NULL;
		size_t *small_len = !strcmp(name, "meta.json")    ? &c->meta_len
				    : !strcmp(name, "SHA256SUMS") ? &c->sums_len
								  : &c->sealed_len;
		if (small) {
			if (*small)
				return verr_set(err, VERR_INVALID, "the snapshot has two %s", name);
			if (size > SMALL_MEMBER)
				return verr_set(err, VERR_INVALID, "the snapshot's %s is too large",
						name);
			*small = malloc(size + 1);
			if (!*small)
				return verr_set(err, VERR_INTERNAL, "out of memory");
			(*small)[size] = 0;
			*small_len = size;
			rc = gzr_exact(g, *small, size, name, err);
		} else if (!strcmp(name, "state.bin")) {
			if (have_state)
				return verr_set(err, VERR_INVALID, "the snapshot has two state.bin");
			have_state = true;
			c->state_len = size;
			rc = gzr_skip(g, size, md, name, err);
		} else {
			rc = gzr_skip(g, size, NULL, name, err);
		}
		if (!rc)
			rc = gzr_skip(g, tar_pad(size), NULL, name, err);
		if (rc)
			return rc;
	}
	/* the rest of the stream: zero padding, then the gzip trailer (CRC) */
	uint8_t sink[TAR_BLOCK];
	while (!g->done) {
		long r = gzr_read(g, sink, sizeof(sink), err);
		if (r < 0)
			return (int)r;
	}
	int rc = gzr_fill(g, err);
	if (rc)
		return rc;
	if (g->z.avail_in)
		return verr_set(err, VERR_INVALID, "the snapshot has trailing bytes after its end");
	const char *missing = !c->meta ? "meta.json" : !have_state ? "state.bin"
			      : !c->sums ? "SHA256SUMS" : !c->sealed ? "SHA256SUMS.sealed" : NULL;
	if (missing)
		return verr_set(err, VERR_INVALID, "the snapshot has no %s", missing);
	md_hex(md, c->state_sha);
	char meta_sha[65];
	sha_hex(meta_sha, (const uint8_t *)c->meta, c->meta_len);
	const char *want = sum_for(c->sums, c->sums_len, "meta.json");
	if (!want || CRYPTO_memcmp(want, meta_sha, 64))
		return verr_set(err, VERR_INVALID,
				"the snapshot's meta.json does not match SHA256SUMS (corrupted or "
				"tampered with)");
	want = sum_for(c->sums, c->sums_len, "state.bin");
	if (!want || CRYPTO_memcmp(want, c->state_sha, 64))
		return verr_set(err, VERR_INVALID,
				"the snapshot's state.bin does not match SHA256SUMS (corrupted or "
				"tampered with)");
	return 0;
}

int snaparchive_check(struct snapcheck *c, int fd, const uint8_t *buf, size_t len,
		      struct verr *err)
{
	memset(c, 0, sizeof(*c));
	struct gzr *g = malloc(sizeof(*g));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = g && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
			 ? 0
			 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && !(rc = gzr_init(g, fd, buf, len, err))) {
		rc = check_pass(c, g, md, err);
		gzr_end(g);
	}
	free(g);
	EVP_MD_CTX_free(md);
	if (rc)
		snapcheck_free(c);
	return rc;
}

struct snapstate {
	struct gzr g;
	EVP_MD_CTX *md;
	uint64_t left;
	char want[65];
	bool checked;
};

void snapstate_close(struct snapstate *s)
{
	if (!s)
		return;
	gzr_end(&s->g);
	EVP_MD_CTX_free(s->md);
	free(s);
}

int snapstate_open(struct snapstate **out, const struct snapcheck *c, int fd, const uint8_t *buf,
		   size_t len, struct verr *err)
{
	*out = NULL;
	struct snapstate *s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = gzr_init(&s->g, fd, buf, len, err);
	if (rc) {
		free(s);
		return rc;
	}
	s->md = EVP_MD_CTX_new();
	if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	memcpy(s->want, c->state_sha, sizeof(s->want));
	for (;;) {
		char name[101];
		uint64_t size = 0;
		if (rc)
			break;
		rc = tar_next(&s->g, name, &size, err);
		if (rc == 1) {
			rc = verr_set(err, VERR_INVALID, "the snapshot has no state.bin");
			break;
		}
		if (!rc && !strcmp(name, "state.bin")) {
			s->left = size;
			break;
		}
		if (!rc)
			rc = gzr_skip(&s->g, size + tar_pad(size), NULL, name, err);
	}
	if (rc) {
		snapstate_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

long snapstate_read(void *ctx, void *buf, size_t len, struct verr *err)
{
	struct snapstate *s = ctx;
	if (!s->left) {
		if (!s->checked) {
			char got[65];
			md_hex(s->md, got);
			if (CRYPTO_memcmp(got, s->want, 64))
				return verr_set(err, VERR_INVALID,
						"the snapshot changed while it was restored");
			s->checked = true;
		}
		return 0;
	}
	if (len > s->left)
		len = (size_t)s->left;
	if (len > (1u << 30))
		len = 1u << 30;
	int rc = gzr_exact(&s->g, buf, len, "state.bin", err);
	if (rc)
		return rc;
	EVP_DigestUpdate(s->md, buf, len);
	s->left -= len;
	return (long)len;
}
