/*
 * tests/unit/cli/suggest.c - "did you mean": Levenshtein distance and the
 * nearest-command suggestion for typos.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static void test_cli_suggest__distance(void **state)
{
	(void)state;
	assert_int_equal(cli_levenshtein("", ""), 0);
	assert_int_equal(cli_levenshtein("read", "read"), 0);
	assert_int_equal(cli_levenshtein("raed", "read"), 2);
	assert_int_equal(cli_levenshtein("kitten", "sitting"), 3);
	assert_int_equal(cli_levenshtein("", "abc"), 3);
	assert_int_equal(cli_levenshtein("abc", ""), 3);
	assert_int_equal(cli_levenshtein("secrets", "secret"), 1);
}

static void test_cli_suggest__nearest_command(void **state)
{
	(void)state;
	const char *cmds[] = {"read", "write", "list", "delete", "status", "secrets", "operator"};
	size_t n = sizeof(cmds) / sizeof(cmds[0]);
	assert_string_equal(cli_suggest("raed", cmds, n), "read");
	assert_string_equal(cli_suggest("wirte", cmds, n), "write");
	assert_string_equal(cli_suggest("secret", cmds, n), "secrets");
	assert_string_equal(cli_suggest("opertor", cmds, n), "operator");
	assert_null(cli_suggest("frobnicate", cmds, n));
}

static void test_cli_suggest__command_table_has_the_vault_grammar(void **state)
{
	(void)state;
	/* The runbook commands resolve to entries of the real table. */
	const char *need[] = {"auth enable", "write", "secrets enable", "audit enable",
			      "operator raft snapshot save", "kv put", "kv metadata get",
			      "token create", "lease revoke", "policy write", "operator init"};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int found = 0;
		for (size_t j = 0; j < cli_ncmds; j++)
			if (strcmp(cli_cmds[j].name, need[i]) == 0) {
				found = 1;
				assert_non_null(strstr(cli_cmds[j].help, "Usage: coffer "));
				assert_non_null(strstr(cli_cmds[j].help, "$ coffer "));
			}
		assert_true(found);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_suggest__distance),
		cmocka_unit_test(test_cli_suggest__nearest_command),
		cmocka_unit_test(test_cli_suggest__command_table_has_the_vault_grammar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
