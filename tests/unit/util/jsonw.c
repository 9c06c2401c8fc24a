/*
 * Unit tests for src/util/jsonw.c: the writer's output is byte-for-byte
 * jansson's json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) on fixed documents
 * (escapes, UTF-8, NUL in keys and strings, integers at the limits, reals,
 * member order) and on random trees, and it fails where jansson fails
 * (invalid UTF-8, nesting deeper than 2048).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/jsonw.h"

static void same_as_jansson(const json_t *v, int prec)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
	size_t len = 0;
	char *got = jsonw_dumps(v, prec, &len);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(want);
	free(got);
}

static void test_util_jsonw__fixed_documents(void **state)
{
	(void)state;
	const char *docs[] = {
		"{}", "[]", "null", "true", "false", "0", "-1", "\"\"",
		"{\"request_id\":\"5f0c\",\"lease_id\":\"\",\"renewable\":false,"
		"\"lease_duration\":0,\"data\":{\"data\":{\"value\":\"xx\"},\"metadata\":"
		"{\"version\":3,\"destroyed\":false}},\"wrap_info\":null,\"warnings\":null}",
		"{\"z\":1,\"a\":2,\"m\":[1,[2,[3,{}]],{\"k\":[]}]}",
		"[\"quote\\\" backslash\\\\ slash/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f\"]",
		"[\"h\\u00e9llo \\u20ac \\ud83d\\ude00 \\u2028\"]",
		"[9223372036854775807,-9223372036854775808,1e300,0.1,-2.5,1.0,123456789.125]",
		"{\"\\u00e9\\n\":\"k\",\"a\\\"b\":{\"c\\\\\":null}}",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		json_error_t e;
		json_t *v = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
		assert_non_null(v);
		same_as_jansson(v, 0);
		same_as_jansson(v, 15);
		json_decref(v);
	}
	/* NUL inside a string and inside a key */
	json_t *o = json_object();
	json_object_setn_new(o, "a\0b", 3, json_stringn("x\0y", 3));
	same_as_jansson(o, 0);
	json_decref(o);
}

static json_t *random_value(unsigned *seed, int depth)
{
	int kind = depth > 4 ? rand_r(seed) % 5 : rand_r(seed) % 7;
	switch (kind) {
	case 0: return json_null();
	case 1: return json_boolean(rand_r(seed) & 1);
	case 2: return json_integer((json_int_t)rand_r(seed) * (rand_r(seed) & 1 ? -1 : 1) *
				    (json_int_t)rand_r(seed));
	case 3: return json_real((double)rand_r(seed) / ((rand_r(seed) % 1000) + 1));
	case 4: {
		char buf[32];
		size_t n = (size_t)(rand_r(seed) % sizeof(buf));
		for (size_t i = 0; i < n; i++) /* ASCII incl. controls, quotes, DEL */
			buf[i] = (char)(rand_r(seed) % 128);
		return json_stringn(buf, n);
	}
	case 5: {
		json_t *a = json_array();
		for (int i = rand_r(seed) % 5; i > 0; i--)
			json_array_append_new(a, random_value(seed, depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (int i = rand_r(seed) % 5; i > 0; i--) {
			char k[8];
			snprintf(k, sizeof(k), "%c%d", 'a' + rand_r(seed) % 26, rand_r(seed) % 100);
			json_object_set_new(o, k, random_value(seed, depth + 1));
		}
		return o;
	}
	}
}

static void test_util_jsonw__random_trees(void **state)
{
	(void)state;
	unsigned seed = 7;
	for (int i = 0; i < 2000; i++) {
		json_t *v = random_value(&seed, 0);
		same_as_jansson(v, i % 2 ? 0 : 15);
		json_decref(v);
	}
}

static void test_util_jsonw__fails_like_jansson(void **state)
{
	(void)state;
	/* invalid UTF-8 (built without jansson's check): overlong, surrogate,
	 * lone continuation, truncated sequence, above U+10FFFF */
	const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\x80", "\xe2\x82", "\xf4\x90\x80\x80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		json_t *s = json_stringn_nocheck(bad[i], strlen(bad[i]));
		char *j = json_dumps(s, JSON_ENCODE_ANY);
		assert_null(j);
		assert_null(jsonw_dumps(s, 0, NULL));
		json_decref(s);
	}
	/* 3000 nested arrays */
	json_t *top = json_array(), *cur = top;
	for (int i = 0; i < 3000; i++) {
		json_t *n = json_array();
		json_array_append_new(cur, n);
		cur = n;
	}
	assert_null(jsonw_dumps(top, 0, NULL));
	json_decref(top);

	/* a writer keeps appending after raw text */
	struct jsonw w;
	jsonw_init(&w, 0);
	jsonw_raw(&w, "{\"k\":", 5);
	jsonw_string(&w, "v\n", 2);
	jsonw_raw(&w, "}", 1);
	size_t n;
	char *s = jsonw_take(&w, &n);
	assert_string_equal(s, "{\"k\":\"v\\n\"}");
	assert_int_equal(n, 11);
	free(s);
	jsonw_free(&w);
}

/* The word-at-a-time scan stops exactly where a byte loop does: every
 * byte value at every offset of a 24-byte run (both sides of the 8-byte
 * steps), and a second special byte after the first. */
static void test_util_jsonw__plain_len_matches_byte_loop(void **state)
{
	char buf[24];
	for (int c = 0; c < 256; c++) {
		for (size_t at = 0; at < sizeof(buf); at++) {
			memset(buf, 'A', sizeof(buf));
			buf[at] = (char)c;
			if (at + 3 < sizeof(buf))
				buf[at + 3] = '"';
			size_t want = 0;
			while (want < sizeof(buf) && (unsigned char)buf[want] >= 0x20 &&
			       (unsigned char)buf[want] < 0x80 && buf[want] != '"' && buf[want] != '\\')
				want++;
			for (size_t n = 0; n <= sizeof(buf); n++)
				assert_int_equal(jsonw_plain_len(buf, n), want < n ? want : n);
		}
	}
}

/* A long string that needs no escapes keeps the buffer near its size (it
 * used to reserve six bytes per input byte), and escapes late in a long
 * string still fit */
static void test_util_jsonw__string_reserves_what_it_needs(void **state)
{
	char in[1400];
	memset(in, 'x', sizeof(in));
	struct jsonw w;
	jsonw_init(&w, 0);
	jsonw_string(&w, in, sizeof(in));
	assert_false(w.failed);
	assert_true(w.cap <= 2048);
	assert_int_equal(w.len, sizeof(in) + 2);
	jsonw_free(&w);
	for (size_t i = sizeof(in) - 40; i < sizeof(in); i++)
		in[i] = (char)(i % 2 ? 0x01 : '"');
	json_t *v = json_stringn(in, sizeof(in));
	same_as_jansson(v, 0);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_jsonw__fixed_documents),
		cmocka_unit_test(test_util_jsonw__random_trees),
		cmocka_unit_test(test_util_jsonw__fails_like_jansson),
		cmocka_unit_test(test_util_jsonw__plain_len_matches_byte_loop),
		cmocka_unit_test(test_util_jsonw__string_reserves_what_it_needs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
