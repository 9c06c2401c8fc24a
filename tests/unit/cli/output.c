/*
 * tests/unit/cli/output.c - what a user sees: Vault's table layout, JSON,
 * YAML, -field, durations and the kv section headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

struct fx {
	struct cli c;
	char *out, *err;
	size_t outlen, errlen;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unsetenv("VAULT_TOKEN");
	unsetenv("VAULT_FORMAT");
	setenv("HOME", "/nonexistent-coffer-test", 1);
	cli_init(&f->c, "coffer");
	f->c.out = open_memstream(&f->out, &f->outlen);
	f->c.err = open_memstream(&f->err, &f->errlen);
	f->c.out_tty = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fclose(f->c.out);
	fclose(f->c.err);
	free(f->out);
	free(f->err);
	cli_cleanup(&f->c);
	free(f);
	return 0;
}

static const char *out(struct fx *f)
{
	fflush(f->c.out);
	return f->out;
}

static json_t *J(const char *s)
{
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	return j;
}

static void test_cli_output__duration(void **state)
{
	(void)state;
	char b[32];
	cli_fmt_duration(b, sizeof(b), 2764800);
	assert_string_equal(b, "768h");
	cli_fmt_duration(b, sizeof(b), 5400);
	assert_string_equal(b, "1h30m");
	cli_fmt_duration(b, sizeof(b), 3661);
	assert_string_equal(b, "1h1m1s");
	cli_fmt_duration(b, sizeof(b), 90);
	assert_string_equal(b, "1m30s");
	cli_fmt_duration(b, sizeof(b), 1800);
	assert_string_equal(b, "30m");
	cli_fmt_duration(b, sizeof(b), 0);
	assert_string_equal(b, "0s");
	cli_fmt_duration(b, sizeof(b), 45);
	assert_string_equal(b, "45s");
	assert_true(cli_looks_like_duration("default_lease_ttl"));
	assert_true(cli_looks_like_duration("period"));
	assert_false(cli_looks_like_duration("ttlx"));
}

static void test_cli_output__go_value_format(void **state)
{
	(void)state;
	json_t *j = J("{\"b\":[\"x\",\"y\"],\"a\":{\"z\":1,\"k\":true},\"n\":null}");
	char *s = cli_fmt_value(j);
	assert_string_equal(s, "map[a:map[k:true z:1] b:[x y] n:<nil>]");
	free(s);
	json_decref(j);
}

static void test_cli_output__secret_table_aligned(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"request_id\":\"x\",\"lease_id\":\"\",\"renewable\":false,"
		      "\"lease_duration\":2764800,\"data\":{\"foo\":\"bar\",\"password\":\"\","
		      "\"longer_key\":\"v\",\"max_ttl\":3600},\"warnings\":null}");
	assert_int_equal(cli_output_secret(&f->c, r), 0);
	assert_string_equal(out(f), "Key                 Value\n"
				    "---                 -----\n"
				    "refresh_interval    768h\n"
				    "foo                 bar\n"
				    "longer_key          v\n"
				    "max_ttl             1h\n"
				    "password            n/a\n");
	json_decref(r);
}

static void test_cli_output__lease_and_auth_rows(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"lease_id\":\"database/creds/ro/abc\",\"renewable\":true,\"lease_duration\":3600,"
		      "\"data\":{\"username\":\"u\"},"
		      "\"auth\":{\"client_token\":\"s.tok\",\"accessor\":\"acc\",\"policies\":[\"default\",\"p\"],"
		      "\"token_policies\":[\"default\",\"p\"],\"metadata\":{\"user\":\"alice\"},"
		      "\"lease_duration\":0,\"renewable\":false}}");
	assert_int_equal(cli_output_secret(&f->c, r), 0);
	const char *o = out(f);
	assert_non_null(strstr(o, "lease_id             database/creds/ro/abc\n"));
	assert_non_null(strstr(o, "lease_duration       1h\n"));
	assert_non_null(strstr(o, "lease_renewable      true\n"));
	assert_non_null(strstr(o, "token                s.tok\n"));
	assert_non_null(strstr(o, "token_duration       ∞\n"));
	assert_non_null(strstr(o, "token_policies       [\"default\" \"p\"]\n"));
	assert_non_null(strstr(o, "identity_policies    []\n"));
	assert_non_null(strstr(o, "token_meta_user      alice\n"));
	json_decref(r);
}

/* Numbers a server sends that do not fit an int64 (or an integer string that
 * overflows) print as they are instead of as garbage durations; before, a
 * 1e300 lease_duration was cast to int64, which is undefined behaviour. */
static void test_cli_output__huge_numbers_not_durations(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"lease_id\":\"\",\"lease_duration\":1e300,"
		      "\"data\":{\"ttl\":-1e300,\"max_ttl\":\"99999999999999999999\","
		      "\"period\":90.0},"
		      "\"wrap_info\":{\"token\":\"w\",\"ttl\":1e19}}");
	assert_int_equal(cli_output_secret(&f->c, r), 0);
	const char *o = out(f);
	assert_null(strstr(o, "refresh_interval"));
	assert_non_null(strstr(o, "wrapping_token_ttl:              0s\n"));
	assert_non_null(strstr(o, "\nttl                              -1e+300\n"));
	assert_non_null(strstr(o, "\nmax_ttl                          99999999999999999999\n"));
	assert_non_null(strstr(o, "\nperiod                           1m30s\n"));
	json_decref(r);
}

static void test_cli_output__warnings_on_stderr(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"data\":{\"a\":\"b\"},\"warnings\":[\"policy \\\"x\\\" does not exist\"]}");
	cli_output_secret(&f->c, r);
	fflush(f->c.err);
	assert_non_null(strstr(f->err, "WARNING! The following warnings were returned from Vault:\n\n"
				       "  * policy \"x\" does not exist\n"));
	assert_null(strstr(out(f), "WARNING"));
	json_decref(r);
}

static void test_cli_output__json_is_the_body(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"request_id\":\"r\",\"data\":{\"z\":\"1\",\"a\":\"2\"},\"warnings\":null}");
	f->c.format = "json";
	cli_output_secret(&f->c, r);
	json_t *back = json_loads(out(f), 0, NULL);
	assert_true(json_equal(back, r));
	assert_non_null(strstr(out(f), "{\n  \"request_id\": \"r\",\n"));
	json_decref(back);
	json_decref(r);
}

static void test_cli_output__yaml(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"data\":{\"b\":\"true\",\"a\":\"plain\",\"l\":[\"x\",{\"k\":1}],\"e\":{},"
		      "\"s\":\"a: b\",\"n\":null}}");
	/* "n" is a YAML 1.1 boolean, so go-yaml quotes it as a key too */
	f->c.format = "yaml";
	cli_output_secret(&f->c, r);
	assert_string_equal(out(f), "data:\n"
				    "  a: plain\n"
				    "  b: \"true\"\n"
				    "  e: {}\n"
				    "  l:\n"
				    "  - x\n"
				    "  - k: 1\n"
				    "  \"n\": null\n"
				    "  s: \"a: b\"\n");
	json_decref(r);
}

static void test_cli_output__field_raw_without_newline(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"data\":{\"password\":\"s3cr3t\"},\"auth\":null}");
	f->c.field = "password";
	assert_int_equal(cli_output_secret(&f->c, r), 0);
	assert_string_equal(out(f), "s3cr3t");
	f->c.out_tty = 1;
	cli_output_secret(&f->c, r);
	assert_string_equal(out(f), "s3cr3ts3cr3t\n");
	f->c.field = "missing";
	assert_int_equal(cli_output_secret(&f->c, r), 1);
	fflush(f->c.err);
	assert_non_null(strstr(f->err, "Field \"missing\" not present in secret"));
	json_decref(r);
}

static void test_cli_output__field_token_from_auth(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"data\":null,\"auth\":{\"client_token\":\"s.new\",\"accessor\":\"a\"}}");
	f->c.field = "token";
	assert_int_equal(cli_output_secret(&f->c, r), 0);
	assert_string_equal(out(f), "s.new");
	json_decref(r);
}

static void test_cli_output__list_sorted(void **state)
{
	struct fx *f = *state;
	json_t *r = J("{\"data\":{\"keys\":[\"zeta\",\"alpha/\",\"beta\"]}}");
	cli_output_list(&f->c, r);
	assert_string_equal(out(f), "Keys\n----\nalpha/\nbeta\nzeta\n");
	json_decref(r);
	r = J("{\"data\":{\"keys\":[\"b\",\"a\"]}}");
	f->c.format = "json";
	cli_output_list(&f->c, r);
	assert_non_null(strstr(out(f), "[\n  \"b\",\n  \"a\"\n]\n"));
	json_decref(r);
}

static void test_cli_output__kv_headers(void **state)
{
	(void)state;
	char b[128];
	cli_pad_header(b, sizeof(b), "Secret Path", strlen("secret/data/creds"));
	assert_string_equal(b, "== Secret Path ==");
	cli_pad_header(b, sizeof(b), "Secret Path", strlen("secret/data/foo"));
	assert_string_equal(b, "= Secret Path =");
	/* metadata keys: longest "custom_metadata" (15) + 4 + 5 */
	cli_pad_header(b, sizeof(b), "Metadata", 15 + 4 + 5);
	assert_string_equal(b, "======= Metadata =======");
	cli_pad_header(b, sizeof(b), "Data", 3 + 4 + 5);
	assert_string_equal(b, "=== Data ===");
}

static void test_cli_output__bad_format_rejected(void **state)
{
	struct fx *f = *state;
	f->c.format = "xml";
	assert_false(cli_format_ok(&f->c));
	fflush(f->c.err);
	assert_non_null(strstr(f->err, "Invalid output format: xml"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_output__duration),
		cmocka_unit_test(test_cli_output__go_value_format),
		cmocka_unit_test_setup_teardown(test_cli_output__secret_table_aligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__lease_and_auth_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__huge_numbers_not_durations, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__warnings_on_stderr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__json_is_the_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__yaml, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__field_raw_without_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__field_token_from_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_output__list_sorted, setup, teardown),
		cmocka_unit_test(test_cli_output__kv_headers),
		cmocka_unit_test_setup_teardown(test_cli_output__bad_format_rejected, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
