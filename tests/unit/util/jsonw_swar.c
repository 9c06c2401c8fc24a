/*
 * Unit tests for the portable (SWAR) string scan of src/util/jsonw.c: the
 * file is included with JSONW_NO_SIMD so that the eight-byte loop that
 * targets without SSE2 run is the one tested here (tests/unit/util/jsonw.c
 * tests the build's own path). The scan must stop where a byte loop does,
 * and strings written through it must be jansson's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define JSONW_NO_SIMD 1
#include "../../../src/util/jsonw.c"

static size_t byte_loop(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80 && s[i] != '"' &&
	       s[i] != '\\')
		i++;
	return i;
}

static void test_util_jsonw_swar__plain_len_matches_byte_loop(void **state)
{
	(void)state;
	char buf[40];
	for (int c = 0; c < 256; c++) {
		for (size_t at = 0; at < sizeof(buf); at++) {
			memset(buf, 'a', sizeof(buf));
			buf[at] = (char)c;
			/* a second special byte after the first: the borrow of a
			 * subtraction may flag it too, the first hit still wins */
			if (at + 2 < sizeof(buf))
				buf[at + 2] = (char)0x01;
			for (size_t n = 0; n <= sizeof(buf); n++)
				assert_int_equal(jsonw_plain_len(buf, n), byte_loop(buf, n));
		}
	}
}

static void test_util_jsonw_swar__strings_match_jansson(void **state)
{
	(void)state;
	const char alphabet[] = "aZ09 \"\\/\x01\x1f\x7f\n\t\xc3\xa9\xe2\x82\xac";
	uint32_t seed = 19;
	for (int round = 0; round < 2000; round++) {
		char s[64];
		size_t n = 0, len = (size_t)(round % 60);
		while (n < len) {
			seed = seed * 1103515245u + 12345u;
			char c = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
			/* keep multi-byte characters whole */
			if ((unsigned char)c == 0xc3 && n + 2 <= len) {
				s[n++] = (char)0xc3;
				s[n++] = (char)0xa9;
			} else if ((unsigned char)c == 0xe2 && n + 3 <= len) {
				memcpy(s + n, "\xe2\x82\xac", 3);
				n += 3;
			} else if ((unsigned char)c < 0x80) {
				s[n++] = c;
			} else {
				s[n++] = 'x';
			}
		}
		json_t *v = json_stringn(s, n);
		assert_non_null(v);
		char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		size_t got_len = 0;
		char *got = jsonw_dumps(v, 0, &got_len);
		assert_non_null(want);
		assert_non_null(got);
		assert_string_equal(got, want);
		free(want);
		free(got);
		json_decref(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_jsonw_swar__plain_len_matches_byte_loop),
		cmocka_unit_test(test_util_jsonw_swar__strings_match_jansson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
