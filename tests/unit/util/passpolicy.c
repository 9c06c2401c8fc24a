/*
 * Unit tests for util/passpolicy.c: Vault's default database password shape,
 * a custom HCL policy's length and min-chars honoured on every draw, the
 * alphabet limited to the rules' charsets, and parse errors that name the
 * problem (unsatisfiable rules, unknown fields, missing length).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/passpolicy.h"

static size_t count_in(const char *s, const char *set)
{
	size_t n = 0;
	for (; *s; s++)
		n += strchr(set, *s) != NULL;
	return n;
}

static void test_util_passpolicy__default(void **state)
{
	(void)state;
	const struct passpolicy *p = passpolicy_default();
	assert_int_equal(passpolicy_length(p), 20);
	char pw[64], prev[64] = "";
	for (int i = 0; i < 200; i++) {
		assert_int_equal(passpolicy_generate(p, pw, sizeof(pw), NULL), 0);
		assert_int_equal(strlen(pw), 20);
		assert_true(count_in(pw, "abcdefghijklmnopqrstuvwxyz") >= 1);
		assert_true(count_in(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") >= 1);
		assert_true(count_in(pw, "0123456789") >= 1);
		assert_true(count_in(pw, "-") >= 1);
		assert_string_not_equal(pw, prev);
		memcpy(prev, pw, sizeof(pw));
	}
}

static void test_util_passpolicy__custom_policy(void **state)
{
	(void)state;
	const char *hcl = "length = 12\n"
			  "rule \"charset\" {\n  charset = \"abc\"\n  min-chars = 2\n}\n"
			  "rule \"charset\" { charset = \"!@\"\n min-chars = 3 }\n";
	struct passpolicy *p = NULL;
	struct verr e = {0};
	assert_int_equal(passpolicy_parse(&p, hcl, strlen(hcl), &e), 0);
	char pw[32];
	for (int i = 0; i < 200; i++) {
		assert_int_equal(passpolicy_generate(p, pw, sizeof(pw), NULL), 0);
		assert_int_equal(strlen(pw), 12);
		assert_int_equal(count_in(pw, "abc!@"), 12); /* nothing outside the charsets */
		assert_true(count_in(pw, "abc") >= 2);
		assert_true(count_in(pw, "!@") >= 3);
	}
	assert_int_equal(passpolicy_generate(p, pw, 12, &e), VERR_INTERNAL); /* no room for NUL */
	passpolicy_free(p);
}

static void test_util_passpolicy__errors_name_the_problem(void **state)
{
	(void)state;
	struct passpolicy *p = NULL;
	struct verr e = {0};
	const char *bad[][2] = {
		{"length = 4\nrule \"charset\" { charset = \"a\"\n min-chars = 5 }", "need 5"},
		{"rule \"charset\" { charset = \"a\" }", "missing length"},
		{"length = 10", "at least one rule"},
		{"length = 10\nrule \"charset\" { charset = \"a\"\n colour = 1 }", "colour"},
		{"length = 10\nrule \"regex\" { pattern = \"a\" }", "unknown rule type"},
		{"length = 10\nrule \"charset\" { charset = \"\" }", "non-empty"},
		{"length = 2\nrule \"charset\" { charset = \"a\" }", "length must be"},
		{"length = 10\nsize = 3\nrule \"charset\" { charset = \"a\" }", "size"},
		{"length = = 10", ""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(passpolicy_parse(&p, bad[i][0], strlen(bad[i][0]), &e), VERR_INVALID);
		assert_null(p);
		if (!strstr(e.msg, bad[i][1]))
			fail_msg("case %zu: \"%s\" does not mention \"%s\"", i, e.msg, bad[i][1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_passpolicy__default),
		cmocka_unit_test(test_util_passpolicy__custom_policy),
		cmocka_unit_test(test_util_passpolicy__errors_name_the_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
