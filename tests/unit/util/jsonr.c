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
	same("{\"batch_input\":[{\"plaintext\":\"AA==\"},{\"plaintext\":\"AQ==\",\"reference\":\"r\"}]}");
	/* a 1 KiB-plaintext encrypt body, as bench/run sends */
	char big[2048] = "{\"plaintext\":\"";
	size_t n = strlen(big);
	for (int i = 0; i < 1368; i++)
		big[n++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
	memcpy(big + n, "\"}", 3);
	same(big);
}

static void test_util_jsonr__declines_the_rest(void **state)
{
	const char *no[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}",
		"{\"a\":1}x", "{\"a\":1} {}", "tru", "truex", "[nul]", "01", "-", "--1", "1.5", "1e3",
		"12345678901234567890", "\"\\u0041\"", "\"\\x\"", "\"caf\xc3\xa9\"", "\"bad \xff\"",
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
	};
	const char alphabet[] = "{}[]:,\"\\ntfrue0123456789-.eE aA\x01\x80";
	srand(19);
	unsigned accepted = 0;
	for (int round = 0; round < 20000; round++) {
		char buf[128];
		const char *seed = seeds[round % 3];
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
		cmocka_unit_test(test_util_jsonr__differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
