/*
 * tests/unit/cli/args.c - the client's argument grammar: Go-style flags as
 * Vault parses them, and k=v data arguments (@file, -, JSON from stdin).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"

struct fx {
	struct cli c;
	char *errbuf;
	size_t errlen;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unsetenv("VAULT_TOKEN");
	setenv("HOME", "/nonexistent-coffer-test", 1);
	cli_init(&f->c, "coffer");
	f->c.err = open_memstream(&f->errbuf, &f->errlen);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fclose(f->c.err);
	free(f->errbuf);
	cli_cleanup(&f->c);
	free(f);
	return 0;
}

static void test_cli_args__flag_forms(void **state)
{
	struct fx *f = *state;
	const char *mount = NULL;
	long cas = -1;
	int force = 0;
	struct cli_strlist pol = {0};
	struct cli_flag fl[] = {
		{"mount", CLI_FLAG_STRING, &mount, "", NULL},
		{"cas", CLI_FLAG_INT, &cas, "", NULL},
		{"force", CLI_FLAG_BOOL, &force, "", NULL},
		{"policy", CLI_FLAG_LIST, &pol, "", NULL},
		{0},
	};
	char *argv[] = {"-mount=secret", "--cas", "3", "-force", "-policy", "a", "--policy=b",
			"-format=json", "foo", "a=b"};
	int oi = -1;
	struct verr e = {0};
	assert_int_equal(cli_flags_parse(&f->c, fl, 10, argv, &oi, &e), 0);
	assert_int_equal(oi, 8);
	assert_string_equal(mount, "secret");
	assert_int_equal(cas, 3);
	assert_int_equal(force, 1);
	assert_int_equal(pol.n, 2);
	assert_string_equal(pol.v[0], "a");
	assert_string_equal(pol.v[1], "b");
	assert_string_equal(f->c.format, "json");
	cli_strlist_clear(&pol);
}

static void test_cli_args__bool_with_value_and_double_dash(void **state)
{
	struct fx *f = *state;
	int b = 1;
	struct cli_flag fl[] = {{"renewable", CLI_FLAG_BOOL, &b, "", NULL}, {0}};
	char *argv[] = {"-renewable=false", "--", "-notaflag"};
	int oi;
	struct verr e = {0};
	assert_int_equal(cli_flags_parse(&f->c, fl, 3, argv, &oi, &e), 0);
	assert_int_equal(b, 0);
	assert_int_equal(oi, 2);
	char *bad[] = {"-renewable=maybe"};
	assert_int_equal(cli_flags_parse(&f->c, fl, 1, bad, &oi, &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "invalid boolean value \"maybe\""));
}

static void test_cli_args__stops_at_first_positional_and_warns(void **state)
{
	struct fx *f = *state;
	int force = 0;
	struct cli_flag fl[] = {{"force", CLI_FLAG_BOOL, &force, "", NULL}, {0}};
	char *argv[] = {"secret/foo", "-force", "a=b"};
	int oi;
	struct verr e = {0};
	assert_int_equal(cli_flags_parse(&f->c, fl, 3, argv, &oi, &e), 0);
	assert_int_equal(oi, 0);
	assert_int_equal(force, 0);
	fflush(f->c.err);
	assert_non_null(strstr(f->errbuf, "will not be parsed as flags: [-force]"));
}

static void test_cli_args__unknown_and_missing_value(void **state)
{
	struct fx *f = *state;
	const char *s = NULL;
	struct cli_flag fl[] = {{"path", CLI_FLAG_STRING, &s, "", NULL}, {0}};
	int oi;
	struct verr e = {0};
	char *a1[] = {"-nope=1"};
	assert_int_equal(cli_flags_parse(&f->c, fl, 1, a1, &oi, &e), VERR_INVALID);
	assert_string_equal(e.msg, "flag provided but not defined: -nope");
	char *a2[] = {"-path"};
	assert_int_equal(cli_flags_parse(&f->c, fl, 1, a2, &oi, &e), VERR_INVALID);
	assert_string_equal(e.msg, "flag needs an argument: -path");
	char *a3[] = {"---x"};
	assert_int_equal(cli_flags_parse(&f->c, fl, 1, a3, &oi, &e), VERR_INVALID);
	/* a lone "-" is a positional (stdin) */
	char *a4[] = {"-"};
	assert_int_equal(cli_flags_parse(&f->c, fl, 1, a4, &oi, &e), 0);
	assert_int_equal(oi, 0);
}

static void test_cli_args__kv_values_files_stdin(void **state)
{
	(void)state;
	char path[] = "/tmp/coffer-cli-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "-----BEGIN CERT-----\n", 21), 21);
	close(fd);
	char arg_file[128];
	snprintf(arg_file, sizeof(arg_file), "ca=@%s", path);
	FILE *in = fmemopen("from stdin", 10, "r");
	char *argv[] = {"a=b", arg_file, "c=-", "url=postgresql://{{username}}@h/db?x=y", "r=1", "r=2",
			"e="};
	json_t *o = NULL;
	struct verr e = {0};
	assert_int_equal(cli_kv_parse(&o, 7, argv, in, &e), 0);
	assert_string_equal(json_string_value(json_object_get(o, "a")), "b");
	assert_string_equal(json_string_value(json_object_get(o, "ca")), "-----BEGIN CERT-----\n");
	assert_string_equal(json_string_value(json_object_get(o, "c")), "from stdin");
	assert_string_equal(json_string_value(json_object_get(o, "url")),
			    "postgresql://{{username}}@h/db?x=y");
	assert_true(json_is_array(json_object_get(o, "r")));
	assert_int_equal(json_array_size(json_object_get(o, "r")), 2);
	assert_string_equal(json_string_value(json_object_get(o, "e")), "");
	json_decref(o);
	fclose(in);
	unlink(path);
}

static void test_cli_args__kv_whole_json_from_stdin(void **state)
{
	(void)state;
	const char *js = "{\"policies\":[\"a\",\"b\"],\"ttl\":3600}";
	FILE *in = fmemopen((void *)js, strlen(js), "r");
	char *argv[] = {"-", "extra=x"};
	json_t *o = NULL;
	struct verr e = {0};
	assert_int_equal(cli_kv_parse(&o, 2, argv, in, &e), 0);
	assert_int_equal(json_array_size(json_object_get(o, "policies")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "ttl")), 3600);
	assert_string_equal(json_string_value(json_object_get(o, "extra")), "x");
	json_decref(o);
	fclose(in);
}

static void test_cli_args__kv_errors(void **state)
{
	(void)state;
	json_t *o = NULL;
	struct verr e = {0};
	char *a1[] = {"novalue"};
	assert_int_equal(cli_kv_parse(&o, 1, a1, stdin, &e), VERR_INVALID);
	assert_null(o);
	char *a2[] = {"k=@/nonexistent/file"};
	assert_int_equal(cli_kv_parse(&o, 1, a2, stdin, &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "/nonexistent/file"));
	FILE *in = fmemopen("[1,2]", 5, "r");
	char *a3[] = {"-"};
	assert_int_equal(cli_kv_parse(&o, 1, a3, in, &e), VERR_INVALID);
	fclose(in);
}

static void test_cli_args__env_and_token_helper(void **state)
{
	(void)state;
	char dir[] = "/tmp/coffer-home-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("HOME", dir, 1);
	unsetenv("VAULT_TOKEN");
	setenv("VAULT_ADDR", "http://127.0.0.1:9999", 1);
	setenv("VAULT_SKIP_VERIFY", "true", 1);
	setenv("VAULT_FORMAT", "yaml", 1);
	struct verr e = {0};
	assert_int_equal(cli_token_helper_store("s.helper", &e), 0);
	struct cli c;
	cli_init(&c, "coffer");
	assert_string_equal(c.addr, "http://127.0.0.1:9999");
	assert_string_equal(c.token, "s.helper");
	assert_int_equal(c.skip_verify, 1);
	assert_string_equal(c.format, "yaml");
	cli_cleanup(&c);
	setenv("VAULT_TOKEN", "s.env", 1);
	cli_init(&c, "coffer");
	assert_string_equal(c.token, "s.env");
	cli_cleanup(&c);
	char p[256];
	snprintf(p, sizeof(p), "%s/.vault-token", dir);
	unlink(p);
	rmdir(dir);
	unsetenv("VAULT_TOKEN");
	unsetenv("VAULT_ADDR");
	unsetenv("VAULT_SKIP_VERIFY");
	unsetenv("VAULT_FORMAT");
}

static void test_cli_args__sanitize_path(void **state)
{
	(void)state;
	char *s = cli_sanitize_path("/secret/foo/", 0);
	assert_string_equal(s, "secret/foo");
	free(s);
	s = cli_sanitize_path("file_json", 1);
	assert_string_equal(s, "file_json/");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cli_args__flag_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_args__bool_with_value_and_double_dash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_args__stops_at_first_positional_and_warns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_args__unknown_and_missing_value, setup, teardown),
		cmocka_unit_test(test_cli_args__kv_values_files_stdin),
		cmocka_unit_test(test_cli_args__kv_whole_json_from_stdin),
		cmocka_unit_test(test_cli_args__kv_errors),
		cmocka_unit_test(test_cli_args__env_and_token_helper),
		cmocka_unit_test(test_cli_args__sanitize_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
