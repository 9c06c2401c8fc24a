/*
 * tests/unit/util/hcl.c - the HCL parser (src/util/hcl.c): every construct
 * of shared/HCL.md, the JSON view and its normalisation, error messages, and
 * real Vault policies and configurations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/hcl.h"

/* Parse src (HCL or JSON) and compare the normalised JSON with want. */
static void check_json(const char *src, const char *want)
{
	struct verr err = {0};
	json_t *got = NULL;
	int rc = hcl_parse_json(&got, src, strlen(src), "t.hcl", &err);
	if (rc)
		fail_msg("parse failed: %s\n--- input:\n%s", err.msg, src);
	json_error_t je;
	json_t *w = json_loads(want, 0, &je);
	if (!w)
		fail_msg("bad expected JSON in test: %s", je.text);
	if (!json_equal(got, w)) {
		char *s = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
		free(s);
		fail_msg("JSON mismatch");
	}
	json_decref(got);
	json_decref(w);
}

/* Parse src expecting failure; the message must contain each of the
 * NULL-terminated fragments. */
static void check_err(const char *src, ...)
{
	struct verr err = {0};
	struct hcl_doc *d = NULL;
	int rc = hcl_parse(&d, src, strlen(src), "bad.hcl", &err);
	if (rc == 0)
		fail_msg("expected an error for:\n%s", src);
	assert_null(d);
	assert_int_equal(rc, VERR_INVALID);
	va_list ap;
	va_start(ap, src);
	const char *frag;
	while ((frag = va_arg(ap, const char *)))
		if (!strstr(err.msg, frag))
			fail_msg("error \"%s\" lacks \"%s\"", err.msg, frag);
	va_end(ap);
}

/* ---- lexer ---- */

static void test_util_hcl__comments(void **state)
{
	(void)state;
	check_json("# hash\n// slashes\n/* block\n spanning */ a = 1 # trailing\n"
		"b = /* inline */ 2 // end\n",
		"{\"a\":1,\"b\":2}");
	check_json("", "{}");
	check_json("   \n# only a comment", "{}");
}

static void test_util_hcl__identifiers_and_bools(void **state)
{
	(void)state;
	check_json("a_b.c-d = true\n_x = false\nX9 = \"s\"",
		"{\"a_b.c-d\":true,\"_x\":false,\"X9\":\"s\"}");
}

static void test_util_hcl__string_escapes(void **state)
{
	(void)state;
	check_json("s = \"q\\\" b\\\\ n\\n r\\r t\\t\"", "{\"s\":\"q\\\" b\\\\ n\\n r\\r t\\t\"}");
	check_json("u = \"\\u00e9\\u20AC\\U0001F600\"", "{\"u\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}");
	check_json("raw = \"caf\xc3\xa9\"", "{\"raw\":\"caf\\u00e9\"}");
	check_json("e = \"\"", "{\"e\":\"\"}");
}

static void test_util_hcl__interpolation_stays_literal(void **state)
{
	(void)state;
	check_json("a = \"${var.x}\"\nb = \"{{identity.entity.id}}/*\"\nc = \"${lookup(m, \"k\")}x\"",
		"{\"a\":\"${var.x}\",\"b\":\"{{identity.entity.id}}/*\",\"c\":\"${lookup(m, \\\"k\\\")}x\"}");
}

static void test_util_hcl__heredoc(void **state)
{
	(void)state;
	check_json("p = <<EOT\nline one\n  line two\nEOT\n", "{\"p\":\"line one\\n  line two\\n\"}");
	check_json("p = <<EOT\nEOT\n", "{\"p\":\"\"}");
	/* the terminator may be indented and may end the input */
	check_json("x {\n  p = <<EOF\nhello\n  EOF\n}", "{\"x\":[{\"p\":\"hello\\n\"}]}");
	/* CRLF input */
	check_json("p = <<EOT\r\nab\r\nEOT\r\n", "{\"p\":\"ab\\r\\n\"}");
}

static void test_util_hcl__heredoc_indented(void **state)
{
	(void)state;
	check_json("p = <<-EOT\n    path \"a\" {\n      x = 1\n    }\n\n    EOT\n",
		"{\"p\":\"path \\\"a\\\" {\\n  x = 1\\n}\\n\\n\"}");
	check_json("p = <<-EOT\n\tone\n\ttwo\n\tEOT", "{\"p\":\"one\\ntwo\\n\"}");
}

static void test_util_hcl__heredoc_tree(void **state)
{
	(void)state;
	const char *src = "a = <<X\nv\nX\nb = \"v\\n\"";
	struct hcl_doc *d = NULL;
	struct verr err = {0};
	assert_int_equal(hcl_parse(&d, src, strlen(src), "f", &err), 0);
	assert_int_equal(d->body.nitems, 2);
	assert_int_equal(d->body.items[0].value.type, HCL_STRING);
	assert_true(d->body.items[0].value.heredoc);
	assert_false(d->body.items[1].value.heredoc);
	assert_string_equal(d->body.items[0].value.str, d->body.items[1].value.str);
	assert_int_equal(d->body.items[1].line, 4);
	hcl_doc_free(d);
}

static void test_util_hcl__numbers(void **state)
{
	(void)state;
	check_json("a = 0\nb = -42\nc = 9223372036854775807\nd = -9223372036854775808\n"
		"e = 0x1F\nf = 0755\ng = 1.5\nh = -0.25\ni = 1e3\nj = 2.5E-2\n",
		"{\"a\":0,\"b\":-42,\"c\":9223372036854775807,\"d\":-9223372036854775808,"
		"\"e\":31,\"f\":493,\"g\":1.5,\"h\":-0.25,\"i\":1000.0,\"j\":0.025}");
	/* integers stay JSON integers, floats JSON reals */
	json_t *j = NULL;
	assert_int_equal(hcl_parse_json(&j, "a = 3\nb = 3.0", 13, "f", NULL), 0);
	assert_true(json_is_integer(json_object_get(j, "a")));
	assert_true(json_is_real(json_object_get(j, "b")));
	json_decref(j);
}

static void test_util_hcl__bad_numbers(void **state)
{
	(void)state;
	check_err("ttl = 1h", "bad.hcl:1:7", "invalid number \"1h\"", NULL);
	check_err("size = 10kb", "invalid number \"10kb\"", NULL);
	check_err("v = 1.2.3", "invalid number", NULL);
	check_err("v = 0x", "invalid number", NULL);
	check_err("v = 09", "invalid number", NULL);
	check_err("v = 9223372036854775808", "out of range", NULL);
	check_err("v = 1e999", "out of range", NULL);
	check_err("enabled = yes", "bad.hcl:1:11", "identifier \"yes\"", NULL);
}

static void test_util_hcl__tokens_carry_positions(void **state)
{
	(void)state;
	const char *src = "a = 1\n  block \"l\" {\n    k = [1, 2]\n  }\n";
	struct hcl_doc *d = NULL;
	assert_int_equal(hcl_parse(&d, src, strlen(src), "f", NULL), 0);
	assert_int_equal(d->body.items[0].line, 1);
	assert_int_equal(d->body.items[0].col, 1);
	assert_int_equal(d->body.items[0].value.col, 5);
	const struct hcl_item *b = &d->body.items[1];
	assert_int_equal(b->line, 2);
	assert_int_equal(b->col, 3);
	assert_true(b->is_block);
	assert_int_equal(b->nkeys, 2);
	assert_string_equal(b->keys[1], "l");
	const struct hcl_item *k = &b->value.body.items[0];
	assert_int_equal(k->line, 3);
	assert_int_equal(k->value.type, HCL_LIST);
	assert_int_equal(k->value.elems[1].col, 13);
	hcl_doc_free(d);
}

/* ---- grammar ---- */

static void test_util_hcl__blocks_and_labels(void **state)
{
	(void)state;
	check_json("a \"b\" \"c\" { x = 1 }", "{\"a\":[{\"b\":{\"c\":{\"x\":1}}}]}");
	check_json("telemetry { disable_hostname = true }",
		"{\"telemetry\":[{\"disable_hostname\":true}]}");
	check_json("a b { }", "{\"a\":[{\"b\":{}}]}");
	/* repeated blocks are all kept, in order */
	check_json("listener \"tcp\" { address = \"a\" }\nlistener \"tcp\" { address = \"b\" }",
		"{\"listener\":[{\"tcp\":{\"address\":\"a\"}},{\"tcp\":{\"address\":\"b\"}}]}");
}

static void test_util_hcl__single_line_items(void **state)
{
	(void)state;
	check_json("storage \"consul\" { address = \"127.0.0.1:8500\" path = \"vault/\" }",
		"{\"storage\":[{\"consul\":{\"address\":\"127.0.0.1:8500\",\"path\":\"vault/\"}}]}");
	check_json("a = 1 b = 2, c = 3,", "{\"a\":1,\"b\":2,\"c\":3}");
	check_json("b { o = { x = 1, y = \"z\" } }", "{\"b\":[{\"o\":{\"x\":1,\"y\":\"z\"}}]}");
}

static void test_util_hcl__assignment_later_wins(void **state)
{
	(void)state;
	check_json("k = 1\nk = 2", "{\"k\":2}");
	check_json("o = { a = 1 }\no = { b = 2 }", "{\"o\":[{\"b\":2}]}");
}

static void test_util_hcl__lists(void **state)
{
	(void)state;
	check_json("l = []", "{\"l\":[]}");
	check_json("l = [\n  \"a\", # first\n  // second\n  \"b\",\n  /* third */ 3,\n]",
		"{\"l\":[\"a\",\"b\",3]}");
	check_json("l = [[1, 2], {a = true}, <<E\nx\nE\n, 1.5]",
		"{\"l\":[[1,2],{\"a\":true},\"x\\n\",1.5]}");
}

static void test_util_hcl__object_values(void **state)
{
	(void)state;
	check_json("x = { inner { a = 1 } }", "{\"x\":[{\"inner\":[{\"a\":1}]}]}");
	/* nested object values are not normalised */
	check_json("b { o = { p = 1 } }", "{\"b\":[{\"o\":{\"p\":1}}]}");
}

static void test_util_hcl__quoted_keys(void **state)
{
	(void)state;
	check_json("\"quoted key\" = 1\n\"blk\" \"lbl\" {}", "{\"quoted key\":1,\"blk\":[{\"lbl\":{}}]}");
}

/* ---- errors ---- */

static void test_util_hcl__unterminated(void **state)
{
	(void)state;
	check_err("a = \"abc", "bad.hcl:1:5", "unterminated string", NULL);
	check_err("a = \"abc\nb = 1\"", "bad.hcl:1:5", "unterminated string", NULL);
	check_err("a = <<EOT\nno end\n", "bad.hcl:1:5", "unterminated heredoc", "EOT", NULL);
	check_err("a = 1 /* open", "bad.hcl:1:7", "unterminated comment", NULL);
	check_err("a {\n b = 1\n", "bad.hcl:3:1", "expected '}'", NULL);
	check_err("a = [1, 2", "expected ',' or ']'", NULL);
	check_err("a = <<\nx\n", "anchor", NULL);
	check_err("a = <<EOT x\nEOT\n", "newline after the anchor", NULL);
}

static void test_util_hcl__two_keys_assigned(void **state)
{
	(void)state;
	check_err("k1 k2 = \"v\"", "bad.hcl:1:7", "expected '{'", "found '='", NULL);
	check_err("path \"a\" = { }", "expected '{'", NULL);
}

static void test_util_hcl__syntax_errors(void **state)
{
	(void)state;
	check_err("a = ", "bad.hcl:1:5", "expected a value", "end of file", NULL);
	check_err("a", "expected '=' or '{' after key \"a\"", NULL);
	check_err("= 1", "bad.hcl:1:1", "expected a key", NULL);
	check_err("}", "expected a key", NULL);
	check_err("a = 1 ]", "expected a key", NULL);
	check_err("a = @", "unexpected character '@'", NULL);
	check_err("a = \"\\q\"", "invalid escape \"\\q\"", NULL);
	check_err("a = \"\\u12\"", "4 hex digits", NULL);
	check_err("a = \"\\uD800\"", "not an allowed character", NULL);
	check_err("a = \"\\u0000\"", "not an allowed character", NULL);
	check_err("a = / 1", "unexpected '/'", NULL);
	check_err("a = [1 2]", "expected ',' or ']'", NULL);
	check_err("a = \"\xff\"", "invalid UTF-8", NULL);
	const char nul[] = "a = \"x\0\"";
	struct verr err = {0};
	struct hcl_doc *d = NULL;
	assert_int_equal(hcl_parse(&d, nul, sizeof(nul) - 1, "n.hcl", &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void test_util_hcl__depth_limit(void **state)
{
	(void)state;
	char buf[4096];
	size_t n = 0;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a = ");
	for (int i = 0; i < HCL_MAX_DEPTH; i++)
		buf[n++] = '[';
	for (int i = 0; i < HCL_MAX_DEPTH; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	struct hcl_doc *d = NULL;
	struct verr err = {0};
	assert_int_equal(hcl_parse(&d, buf, n, "deep.hcl", &err), 0);
	hcl_doc_free(d);

	n = 0;
	for (int i = 0; i < HCL_MAX_DEPTH + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "b{");
	buf[n] = '\0';
	assert_int_equal(hcl_parse(&d, buf, n, "deep.hcl", &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "nesting deeper than 64"));
	assert_non_null(strstr(err.msg, "deep.hcl:1:"));
}

static void test_util_hcl__size_limit(void **state)
{
	(void)state;
	size_t n = HCL_MAX_INPUT + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	struct hcl_doc *d = NULL;
	json_t *j = NULL;
	struct verr err = {0};
	assert_int_equal(hcl_parse(&d, big, n, "big.hcl", &err), VERR_TOO_LARGE);
	assert_int_equal(hcl_parse_json(&j, big, n, "big.hcl", &err), VERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "big.hcl"));
	free(big);
}

/* ---- JSON input and normalisation ---- */

static void test_util_hcl__json_forms_normalise(void **state)
{
	(void)state;
	const char *want = "{\"path\":[{\"a/*\":{\"capabilities\":[\"read\"]}}]}";
	check_json("{\"path\": {\"a/*\": {\"capabilities\": [\"read\"]}}}", want);
	check_json("{\"path\": [{\"a/*\": {\"capabilities\": [\"read\"]}}]}", want);
	check_json("path \"a/*\" { capabilities = [\"read\"] }", want);
	check_json("  \n{\"listener\": {\"tcp\": {\"address\": \"x\"}}, \"ui\": true}",
		"{\"listener\":[{\"tcp\":{\"address\":\"x\"}}],\"ui\":true}");
	check_json("{\"telemetry\": {\"disable_hostname\": true}}",
		"{\"telemetry\":[{\"disable_hostname\":true}]}");
	/* HCL1's `path = {...}` means the same as the block */
	check_json("path = { \"a/*\" = { capabilities = [\"read\"] } }", want);

	json_t *j = NULL;
	struct verr err = {0};
	assert_int_equal(hcl_parse_json(&j, "{\"a\": ", 6, "p.json", &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "p.json:1:"));
	assert_non_null(strstr(err.msg, "invalid JSON"));
	json_t *arr = json_array();
	assert_int_equal(hcl_json_normalize(arr, &err), VERR_INVALID);
	json_decref(arr);
}

static void test_util_hcl__line_lookups(void **state)
{
	(void)state;
	const char *src = "ui = true\nlistener \"tcp\" {\n  address = \"a\"\n}\n"
		"listener \"tcp\" {\n  tls_disable = 1\n  address = \"b\"\n}\nui = false\n";
	struct hcl_doc *d = NULL;
	json_t *j = NULL;
	assert_int_equal(hcl_parse_any(&j, &d, src, strlen(src), "c.hcl", NULL), 0);
	assert_non_null(d);
	assert_int_equal(hcl_doc_line(d, "ui"), 9);
	assert_int_equal(hcl_doc_line(d, "nope"), 0);
	assert_int_equal(hcl_doc_block_line(d, "listener", 0, NULL), 2);
	assert_int_equal(hcl_doc_block_line(d, "listener", 1, "address"), 7);
	assert_int_equal(hcl_doc_block_line(d, "listener", 1, "missing"), 5);
	assert_int_equal(hcl_doc_block_line(d, "listener", 2, NULL), 0);
	assert_int_equal(hcl_doc_line(NULL, "ui"), 0);
	hcl_doc_free(d);
	json_decref(j);

	/* JSON text gives no tree */
	assert_int_equal(hcl_parse_any(&j, &d, "{}", 2, "c.json", NULL), 0);
	assert_null(d);
	json_decref(j);
}

/* ---- real-world documents ---- */

static void test_util_hcl__vault_policy(void **state)
{
	(void)state;
	check_json(
		"# Dev servers have version 2 of KV secrets engine mounted by default\n"
		"path \"secret/data/*\" {\n"
		"  capabilities = [\"create\", \"update\"]\n"
		"}\n"
		"path \"secret/data/foo\" {\n"
		"  capabilities = [\"read\"]\n"
		"  allowed_parameters = {\n"
		"    \"foo\" = []\n"
		"    \"bar\" = [\"zip\", \"zap\"]\n"
		"  }\n"
		"  denied_parameters = { \"*\" = [] }\n"
		"  min_wrapping_ttl = \"1s\"\n"
		"  required_parameters = [\"bar\"]\n"
		"}\n"
		"path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\n",
		"{\"path\":["
		"{\"secret/data/*\":{\"capabilities\":[\"create\",\"update\"]}},"
		"{\"secret/data/foo\":{\"capabilities\":[\"read\"],"
		"\"allowed_parameters\":{\"foo\":[],\"bar\":[\"zip\",\"zap\"]},"
		"\"denied_parameters\":{\"*\":[]},\"min_wrapping_ttl\":\"1s\","
		"\"required_parameters\":[\"bar\"]}},"
		"{\"auth/token/lookup-self\":{\"capabilities\":[\"read\"]}}]}");
}

static void test_util_hcl__heredoc_policy(void **state)
{
	(void)state;
	/* a policy embedded in a heredoc parses to the same thing as the policy */
	const char *src = "policy = <<-EOT\n"
		"  path \"kv/data/myapp/*\" {\n"
		"    capabilities = [\"read\"]\n"
		"  }\n"
		"  EOT\n";
	json_t *outer = NULL;
	assert_int_equal(hcl_parse_json(&outer, src, strlen(src), "o", NULL), 0);
	const char *inner = json_string_value(json_object_get(outer, "policy"));
	assert_non_null(inner);
	assert_string_equal(inner, "path \"kv/data/myapp/*\" {\n  capabilities = [\"read\"]\n}\n");
	check_json(inner, "{\"path\":[{\"kv/data/myapp/*\":{\"capabilities\":[\"read\"]}}]}");
	json_decref(outer);
}

static void test_util_hcl__production_config(void **state)
{
	(void)state;
	/* the production example from the seed guide, verbatim (no indentation) */
	check_json("storage \"consul\" {\n"
		"address = \"127.0.0.1:8500\"\n"
		"path = \"vault/\"\n"
		"}\n"
		"listener \"tcp\" {\n"
		"address = \"0.0.0.0:8200\"\n"
		"tls_cert_file = \"/path/to/cert.pem\"\n"
		"tls_key_file = \"/path/to/key.pem\"\n"
		"}\n"
		"ha_storage \"consul\" {\n"
		"address = \"127.0.0.1:8500\"\n"
		"path = \"vault-ha/\"\n"
		"}\n"
		"cluster_addr = \"https://vault-1:8201\"\n"
		"api_addr = \"https://vault-1:8200\"\n",
		"{\"storage\":[{\"consul\":{\"address\":\"127.0.0.1:8500\",\"path\":\"vault/\"}}],"
		"\"listener\":[{\"tcp\":{\"address\":\"0.0.0.0:8200\",\"tls_cert_file\":\"/path/to/cert.pem\","
		"\"tls_key_file\":\"/path/to/key.pem\"}}],"
		"\"ha_storage\":[{\"consul\":{\"address\":\"127.0.0.1:8500\",\"path\":\"vault-ha/\"}}],"
		"\"cluster_addr\":\"https://vault-1:8201\",\"api_addr\":\"https://vault-1:8200\"}");
}

static void test_util_hcl__raft_retry_join(void **state)
{
	(void)state;
	check_json("storage \"raft\" {\n  path = \"/opt/raft\"\n  node_id = \"n1\"\n"
		"  retry_join { leader_api_addr = \"https://a:8200\" }\n"
		"  retry_join { leader_api_addr = \"https://b:8200\" }\n}\n"
		"seal \"awskms\" { region = \"us-east-1\" kms_key_id = \"k\" }",
		"{\"storage\":[{\"raft\":{\"path\":\"/opt/raft\",\"node_id\":\"n1\",\"retry_join\":["
		"{\"leader_api_addr\":\"https://a:8200\"},{\"leader_api_addr\":\"https://b:8200\"}]}}],"
		"\"seal\":[{\"awskms\":{\"region\":\"us-east-1\",\"kms_key_id\":\"k\"}}]}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_hcl__comments),
		cmocka_unit_test(test_util_hcl__identifiers_and_bools),
		cmocka_unit_test(test_util_hcl__string_escapes),
		cmocka_unit_test(test_util_hcl__interpolation_stays_literal),
		cmocka_unit_test(test_util_hcl__heredoc),
		cmocka_unit_test(test_util_hcl__heredoc_indented),
		cmocka_unit_test(test_util_hcl__heredoc_tree),
		cmocka_unit_test(test_util_hcl__numbers),
		cmocka_unit_test(test_util_hcl__bad_numbers),
		cmocka_unit_test(test_util_hcl__tokens_carry_positions),
		cmocka_unit_test(test_util_hcl__blocks_and_labels),
		cmocka_unit_test(test_util_hcl__single_line_items),
		cmocka_unit_test(test_util_hcl__assignment_later_wins),
		cmocka_unit_test(test_util_hcl__lists),
		cmocka_unit_test(test_util_hcl__object_values),
		cmocka_unit_test(test_util_hcl__quoted_keys),
		cmocka_unit_test(test_util_hcl__unterminated),
		cmocka_unit_test(test_util_hcl__two_keys_assigned),
		cmocka_unit_test(test_util_hcl__syntax_errors),
		cmocka_unit_test(test_util_hcl__depth_limit),
		cmocka_unit_test(test_util_hcl__size_limit),
		cmocka_unit_test(test_util_hcl__json_forms_normalise),
		cmocka_unit_test(test_util_hcl__line_lookups),
		cmocka_unit_test(test_util_hcl__vault_policy),
		cmocka_unit_test(test_util_hcl__heredoc_policy),
		cmocka_unit_test(test_util_hcl__production_config),
		cmocka_unit_test(test_util_hcl__raft_retry_join),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
