/*
 * Unit tests for util/jsonr (the fast request-body reader): for every input
 * it accepts, the tree must be json_equal to jansson's (JSON_DECODE_ANY);
 * for everything outside its subset (and everything jansson rejects) it
 * must give NULL so jansson decides. A seeded random differential run over
 * mutated documents checks the first rule on many shapes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/jsonr.h"

/* jsonr accepts s and the tree equals jansson's */
static void same(const char *s)
{
	json_error_t e;
	json_t *a = jsonr_parse(s, strlen(s)), *b = json_loadb(s, strlen(s), JSON_DECODE_ANY, &e);
	if (!a || !b)
		print_error("input: %s\n", s);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(json_equal(a, b));
	assert_int_equal(json_typeof(a), json_typeof(b));
	json_decref(a);
	json_decref(b);
}

static void declines(const char *s)
{
	json_t *a = jsonr_parse(s, strlen(s));
	if (a)
		print_error("accepted: %s\n", s);
	assert_null(a);
}

static void test_util_jsonr__accepts_the_subset(void **state)
{
	same("{}");
	same("  { } \n");
	same("{\"plaintext\":\"aGVsbG8=\",\"key_version\":2,\"context\":null}");
	same("{\"a\":[1,-2,0,true,false,null,\"x\",{\"b\":[]}],\"c\":{}}");
	same("{\"esc\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t end\"}");
	same("{\"dup\":1,\"dup\":2}"); /* the last wins, as in jansson */
	same("[]");
	/* every value is owned by the tree alone: one decref frees it */
	json_t *t = jsonr_parse("{\"s\":\"v\",\"i\":1,\"o\":{},\"a\":[\"x\"]}", 32);
	assert_non_null(t);
	const char *k;
	json_t *v;
	json_object_foreach(t, k, v) {
		assert_int_equal(v->refcount, 1);
	}
	assert_int_equal(json_array_get(json_object_get(t, "a"), 0)->refcount, 1);
	json_decref(t);
	same("\"just a string\"");
	same("-0");
	same("123456789012345678");
	same("-123456789012345678");
	same("1765130000123456789"); /* a stored nanosecond time */
	same("9223372036854775807");
	same("-9223372036854775808");
	same("-1000000000000000000");
	same("{\"batch_input\":[{\"plaintext\":\"AA==\"},{\"plaintext\":\"AQ==\",\"reference\":\"r\"}]}");
	/* a 1 KiB-plaintext encrypt body, as bench/run sends */
	char big[2048] = "{\"plaintext\":\"";
	size_t n = strlen(big);
	for (int i = 0; i < 1368; i++)
		big[n++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
	memcpy(big + n, "\"}", 3);
	same(big);
}

/* UTF-8, \u escapes and reals: jansson's answers, byte for byte */
static void test_util_jsonr__accepts_unicode_and_reals(void **state)
{
	same("\"caf\xc3\xa9\"");
	same("{\"k\xe2\x82\xac\":\"\xf0\x9f\x94\x91 \xe6\x97\xa5\xe6\x9c\xac\"}");
	same("\"\\u0041\\u00e9\\u00E9\\u20ac\\uffff\"");
	same("\"\\ud83d\\udd11 pair\"");
	same("{\"\\u00e9t\\u00e9\":\"x\\u0001y\\u001f\"}");
	same("\"\\u007f\x7f\"");
	same("[1.5,-0.0,0.25e2,1E+2,1e-2,3e300,-1.7976931348623157e308]");
	same("1e-400"); /* underflow: jansson keeps strtod's 0 */
	same("{\"ttl\":0.5,\"n\":1e3}");
	/* an escape right after a multi-byte character and the reverse */
	same("\"\xc3\xa9\\n\xc3\xa9\\t\"");
	/* the decoded copy of a string with escapes owns its value */
	const char *esc = "{\"a\\n\":\"\\u00e9\"}";
	json_t *t = jsonr_parse(esc, strlen(esc));
	assert_non_null(t);
	assert_string_equal(json_string_value(json_object_get(t, "a\n")), "\xc3\xa9");
	json_decref(t);
}

/* Everything jansson refuses in strings and numbers is declined, so that
 * jansson words the error */
static void test_util_jsonr__declines_bad_unicode_and_numbers(void **state)
{
	const char *no[] = {
		"\"\\u0000\"", "{\"a\\u0000b\":1}", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
		"\"\\ud800x\"", "\"\\ud800\\\"", "\"\\ud800\\ud800\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\u",
		"\"\xc0\xaf\"", "\"\xc3\"", "\"\xc3(\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"\"\xe0\x80\xaf\"", "\"\xf0\x80\x80\xaf\"", "\"\xf8\x88\x80\x80\x80\"", "\"\x80\"",
		"1e400", "-1e400", "1.", "1e", "1e+", ".5", "-.5", "+1", "1.e3", "0x10", "NaN", "Infinity",
		"-Infinity", "1.000000000000000000000000000000000000000000000000000000000000000001",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999999",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		declines(no[i]);
}

static void test_util_jsonr__declines_the_rest(void **state)
{
	const char *no[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}",
		"{\"a\":1}x", "{\"a\":1} {}", "tru", "truex", "[nul]", "01", "-", "--1",
		"12345678901234567890", "\"\\x\"", "\"bad \xff\"",
		"\"tab\there\"", "\"unterminated", "{\"k\\", "'single'", "{\"a\":1,\"b\"::2}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		declines(no[i]);
	/* a NUL inside the buffer is not the end of it */
	assert_null(jsonr_parse("{}\0{}", 5));
	assert_null(jsonr_parse("\"a\0b\"", 5));
}

/* Mutate valid documents byte by byte: whatever jsonr accepts, jansson
 * must accept with an equal tree. */
static void test_util_jsonr__differential(void **state)
{
	const char *seeds[] = {
		"{\"a\":[1,-2,true,false,null,\"x\\n\"],\"b\":{\"c\":\"d\"}}",
		"{\"plaintext\":\"aGVsbG8=\",\"key_version\":12}",
		"[{\"k\":\"v\"},[],{},0,\"\\\\\"]",
		"{\"s\":\"caf\xc3\xa9 \\u00e9\\ud83d\\udd11\",\"r\":[1.5e3,-0.25]}",
	};
	const char alphabet[] = "{}[]:,\"\\ntfrue0123456789-.eE+ aAu\x01\x80\xc3\xa9\xed\xf0";
	srand(19);
	unsigned accepted = 0;
	for (int round = 0; round < 20000; round++) {
		char buf[128];
		const char *seed = seeds[round % 4];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		for (int m = rand() % 3 + 1; m > 0; m--) {
			size_t at = (size_t)rand() % n;
			buf[at] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
		}
		json_t *a = jsonr_parse(buf, n);
		if (!a)
			continue;
		json_error_t e;
		json_t *b = json_loadb(buf, n, JSON_DECODE_ANY, &e);
		if (!b || !json_equal(a, b))
			print_error("differs: %.*s\n", (int)n, buf);
		assert_non_null(b);
		assert_true(json_equal(a, b));
		json_decref(a);
		json_decref(b);
		accepted++;
	}
	assert_true(accepted > 100); /* the run did test acceptance */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_jsonr__accepts_the_subset),
		cmocka_unit_test(test_util_jsonr__declines_the_rest),
		cmocka_unit_test(test_util_jsonr__accepts_unicode_and_reals),
		cmocka_unit_test(test_util_jsonr__declines_bad_unicode_and_numbers),
		cmocka_unit_test(test_util_jsonr__differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
