/*
 * Unit tests for util/snaparchive.c, the raft snapshot file: a built
 * archive parses back to the same members, and each kind of damage is
 * refused with a message naming it: a flipped byte in any member (tar
 * recompressed so only the checksums can notice), truncation at every
 * 97th byte, garbage, trailing bytes, a missing member.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_snaparchive__round_trip),
		cmocka_unit_test(test_util_snaparchive__flipped_byte_in_a_member),
		cmocka_unit_test(test_util_snaparchive__truncated_garbage_trailing),
		cmocka_unit_test(test_util_snaparchive__missing_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
