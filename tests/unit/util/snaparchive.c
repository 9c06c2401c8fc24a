/*
 * Unit tests for util/snaparchive.c, the raft snapshot file: a built
 * archive parses back to the same members, and each kind of damage is
 * refused with a message naming it: a flipped byte in any member (tar
 * recompressed so only the checksums can notice), truncation at every
 * 97th byte, garbage, trailing bytes, a missing member. The streaming
 * calls (snaparchive_write / _check / snapstate_*) over files and buffers:
 * the same archive, the same refusals, and a file changed between the check
 * and the restore pass is refused at the end of state.bin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "util/snaparchive.h"
#include "util/tmpfd.h"

#include <unistd.h>

static const char META[] = "{\"index\":7,\"keys\":3}";

static uint8_t *state_bytes(size_t *n)
{
	*n = 5000;
	uint8_t *s = malloc(*n);
	for (size_t i = 0; i < *n; i++)
		s[i] = (uint8_t)(i * 31 + 7);
	return s;
}

static uint8_t *build(size_t *len)
{
	size_t sl = 0;
	uint8_t *st = state_bytes(&sl);
	char *sums = snaparchive_sums((const uint8_t *)META, strlen(META), st, sl);
	assert_non_null(sums);
	uint8_t *out = NULL;
	struct verr err = {0};
	assert_int_equal(snaparchive_build(&out, len, META, st, sl, sums,
					   (const uint8_t *)"sealed-bytes", 12, &err),
			 0);
	free(sums);
	free(st);
	return out;
}

/* gunzip / gzip helpers, to damage the tar itself */
static uint8_t *inflate_all(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = 1 << 20;
	uint8_t *o = malloc(cap);
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = o;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	inflateEnd(&z);
	return o;
}

static uint8_t *deflate_all(const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream z = {0};
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *o = malloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = o;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return o;
}

static void test_util_snaparchive__round_trip(void **state)
{
	size_t len = 0;
	uint8_t *a = build(&len);
	struct snaparchive p;
	struct verr err = {0};
	assert_int_equal(snaparchive_parse(&p, a, len, &err), 0);
	assert_int_equal(p.meta_len, strlen(META));
	assert_memory_equal(p.meta, META, p.meta_len);
	size_t sl = 0;
	uint8_t *st = state_bytes(&sl);
	assert_int_equal(p.state_len, sl);
	assert_memory_equal(p.state, st, sl);
	assert_int_equal(p.sealed_len, 12);
	assert_memory_equal(p.sealed, "sealed-bytes", 12);
	assert_non_null(strstr(p.sums, "  state.bin\n"));
	snaparchive_free(&p);
	free(st);
	free(a);
}

static void test_util_snaparchive__flipped_byte_in_a_member(void **state)
{
	size_t len = 0, tl = 0;
	uint8_t *a = build(&len);
	uint8_t *tar = inflate_all(a, len, &tl);
	/* member data starts one block after each header */
	const char *names[] = {"meta.json", "state.bin", "SHA256SUMS"};
	const char *want[] = {"meta.json does not match", "state.bin does not match",
			      "does not match SHA256SUMS"};
	for (int m = 0; m < 3; m++) {
		uint8_t *t = malloc(tl);
		memcpy(t, tar, tl);
		size_t off = 0;
		while (strcmp((char *)t + off, names[m]))
			off += 512;
		t[off + 512 + 3] ^= 0x01;
		size_t gl = 0;
		uint8_t *g = deflate_all(t, tl, &gl);
		struct snaparchive p;
		struct verr err = {0};
		assert_int_equal(snaparchive_parse(&p, g, gl, &err), VERR_INVALID);
		if (!strstr(err.msg, want[m]))
			fail_msg("member %s: %s", names[m], err.msg);
		free(g);
		free(t);
	}
	free(tar);
	free(a);
}

static void test_util_snaparchive__truncated_garbage_trailing(void **state)
{
	size_t len = 0;
	uint8_t *a = build(&len);
	struct snaparchive p;
	struct verr err = {0};
	for (size_t cut = 0; cut < len; cut += 97) {
		int rc = snaparchive_parse(&p, a, cut, &err);
		if (rc != VERR_INVALID)
			fail_msg("a snapshot cut at %zu of %zu bytes was accepted", cut, len);
	}
	assert_int_equal(snaparchive_parse(&p, a, len - 1, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(snaparchive_parse(&p, (const uint8_t *)"garbage garbage garbage", 23,
					   &err),
			 VERR_INVALID);
	assert_non_null(strstr(err.msg, "not a gzip archive"));
	uint8_t *longer = malloc(len + 4);
	memcpy(longer, a, len);
	memcpy(longer + len, "XXXX", 4);
	assert_int_equal(snaparchive_parse(&p, longer, len + 4, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "trailing"));
	free(longer);
	free(a);
}

static void test_util_snaparchive__missing_member(void **state)
{
	size_t len = 0, tl = 0;
	uint8_t *a = build(&len);
	uint8_t *tar = inflate_all(a, len, &tl);
	/* rename SHA256SUMS.sealed (fix its header checksum) */
	size_t off = 0;
	while (strcmp((char *)tar + off, "SHA256SUMS.sealed"))
		off += 512;
	tar[off] = 'X';
	memset(tar + off + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += tar[off + i];
	snprintf((char *)tar + off + 148, 8, "%06o", sum);
	size_t gl = 0;
	uint8_t *g = deflate_all(tar, tl, &gl);
	struct snaparchive p;
	struct verr err = {0};
	assert_int_equal(snaparchive_parse(&p, g, gl, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "has no SHA256SUMS.sealed"));
	free(g);
	free(tar);
	free(a);
}

/* the archive written by the streaming writer, as bytes (and its file) */
static uint8_t *stream_build(size_t *len, int *fd_out, const uint8_t *st, size_t sl)
{
	struct verr err = {0};
	int sfd = tmpfd_open(NULL, &err);
	assert_true(sfd >= 0);
	assert_int_equal(write(sfd, st, sl), (ssize_t)sl);
	char mh[65], sh[65];
	snaparchive_sha_hex(mh, (const uint8_t *)META, strlen(META));
	snaparchive_sha_hex(sh, st, sl);
	char *sums = snaparchive_sums_hex(mh, sh);
	int fd = tmpfd_open(NULL, &err);
	assert_true(fd >= 0);
	assert_int_equal(snaparchive_write(fd, META, sfd, sl, sums, (const uint8_t *)"sealed-bytes",
					   12, &err),
			 0);
	close(sfd);
	free(sums);
	off_t n = lseek(fd, 0, SEEK_END);
	uint8_t *b = malloc((size_t)n);
	assert_int_equal(pread(fd, b, (size_t)n, 0), n);
	*len = (size_t)n;
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return b;
}

static void read_state(const struct snapcheck *c, int fd, const uint8_t *buf, size_t len,
		       const uint8_t *want, size_t wl)
{
	struct snapstate *ss = NULL;
	struct verr err = {0};
	assert_int_equal(snapstate_open(&ss, c, fd, buf, len, &err), 0);
	uint8_t *got = malloc(wl + 1);
	size_t n = 0;
	long r;
	while ((r = snapstate_read(ss, got + n, n % 3 ? 333 : 1000, &err)) > 0)
		n += (size_t)r;
	assert_int_equal(r, 0);
	assert_int_equal(n, wl);
	assert_memory_equal(got, want, wl);
	free(got);
	snapstate_close(ss);
}

static void test_util_snaparchive__stream_round_trip(void **state)
{
	size_t sl = 0, len = 0;
	uint8_t *st = state_bytes(&sl);
	int fd = -1;
	uint8_t *a = stream_build(&len, &fd, st, sl);
	/* from the file */
	struct snapcheck c;
	struct verr err = {0};
	assert_int_equal(snaparchive_check(&c, fd, NULL, 0, &err), 0);
	assert_int_equal(c.state_len, sl);
	assert_int_equal(c.meta_len, strlen(META));
	assert_string_equal(c.meta, META);
	assert_int_equal(c.sealed_len, 12);
	assert_memory_equal(c.sealed, "sealed-bytes", 12);
	read_state(&c, fd, NULL, 0, st, sl);
	snapcheck_free(&c);
	/* the in-memory parser reads what the streaming writer wrote */
	struct snaparchive p;
	assert_int_equal(snaparchive_parse(&p, a, len, &err), 0);
	assert_memory_equal(p.state, st, sl);
	snaparchive_free(&p);
	/* and the streaming reader what the in-memory builder wrote */
	size_t bl = 0;
	uint8_t *b = build(&bl);
	assert_int_equal(snaparchive_check(&c, -1, b, bl, &err), 0);
	read_state(&c, -1, b, bl, st, sl);
	snapcheck_free(&c);
	free(b);
	close(fd);
	free(a);
	free(st);
}

static void test_util_snaparchive__stream_refusals(void **state)
{
	size_t sl = 0, len = 0;
	uint8_t *st = state_bytes(&sl);
	uint8_t *a = stream_build(&len, NULL, st, sl);
	struct snapcheck c;
	struct verr err = {0};
	for (size_t cut = 0; cut < len; cut += 97) {
		if (snaparchive_check(&c, -1, a, cut, &err) != VERR_INVALID)
			fail_msg("a snapshot cut at %zu of %zu bytes was accepted", cut, len);
	}
	for (size_t cut = len - 12; cut < len; cut++) /* in the gzip trailer */
		assert_int_equal(snaparchive_check(&c, -1, a, cut, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "truncated"));
	/* a flipped byte in the stored (uncompressed) state: the gzip CRC or
	 * the checksum notices */
	uint8_t *f = malloc(len + 4);
	memcpy(f, a, len);
	f[len / 2] ^= 0x04;
	assert_int_equal(snaparchive_check(&c, -1, f, len, &err), VERR_INVALID);
	memcpy(f, a, len);
	memcpy(f + len, "XXXX", 4);
	assert_int_equal(snaparchive_check(&c, -1, f, len + 4, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "trailing"));
	assert_int_equal(snaparchive_check(&c, -1, (const uint8_t *)"garbage", 7, &err),
			 VERR_INVALID);
	assert_non_null(strstr(err.msg, "not a gzip archive"));
	/* members damaged with the tar re-gzipped: only the checksums can tell */
	size_t tl = 0;
	uint8_t *tar = inflate_all(a, len, &tl);
	const char *names[] = {"meta.json", "state.bin", "SHA256SUMS"};
	for (int m = 0; m < 3; m++) {
		uint8_t *t = malloc(tl);
		memcpy(t, tar, tl);
		size_t off = 0;
		while (strcmp((char *)t + off, names[m]))
			off += 512;
		t[off + 512 + 3] ^= 0x01;
		size_t gl = 0;
		uint8_t *g = deflate_all(t, tl, &gl);
		assert_int_equal(snaparchive_check(&c, -1, g, gl, &err), VERR_INVALID);
		assert_non_null(strstr(err.msg, "SHA256SUMS"));
		free(g);
		free(t);
	}
	/* checked, then changed before the restore pass: refused at its end */
	assert_int_equal(snaparchive_check(&c, -1, a, len, &err), 0);
	uint8_t *st2 = malloc(sl);
	memcpy(st2, st, sl);
	st2[10] ^= 1;
	size_t len2 = 0;
	uint8_t *a2 = stream_build(&len2, NULL, st2, sl);
	struct snapstate *ss = NULL;
	assert_int_equal(snapstate_open(&ss, &c, -1, a2, len2, &err), 0);
	uint8_t buf[4096];
	long r;
	while ((r = snapstate_read(ss, buf, sizeof(buf), &err)) > 0)
		;
	assert_int_equal(r, VERR_INVALID);
	assert_non_null(strstr(err.msg, "changed"));
	snapstate_close(ss);
	snapcheck_free(&c);
	free(a2);
	free(st2);
	free(tar);
	free(f);
	free(a);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_snaparchive__round_trip),
		cmocka_unit_test(test_util_snaparchive__flipped_byte_in_a_member),
		cmocka_unit_test(test_util_snaparchive__truncated_garbage_trailing),
		cmocka_unit_test(test_util_snaparchive__missing_member),
		cmocka_unit_test(test_util_snaparchive__stream_round_trip),
		cmocka_unit_test(test_util_snaparchive__stream_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
