/*
 * tests/unit/audit/format.c - what an audit device writes: Vault's entry
 * with every sensitive string HMAC'd (nested data, tokens, accessors per
 * hmac_accessor), log_raw, elide_list_responses, prefix safety, JSONx, and
 * the file device's option checks, writes and tail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit/format.h"

static const uint8_t KEY[32] = "k0k1k2k3k4k5k6k7k8k9kakbkckdkekf";

static struct audit_format *fmt_with(const char *options_json, bool allow_prefix, int *rc,
				     struct verr *err)
{
	json_t *o = json_loads(options_json, 0, NULL);
	assert_non_null(o);
	struct audit_device_env env = {KEY, sizeof(KEY), allow_prefix};
	struct audit_format *f = NULL;
	*rc = audit_format_new(&f, o, &env, err);
	json_decref(o);
	return f;
}

static struct audit_format *fmt(const char *options_json)
{
	int rc;
	struct verr e = {0};
	struct audit_format *f = fmt_with(options_json, false, &rc, &e);
	assert_int_equal(rc, 0);
	return f;
}

/* The expected value, computed independently with OpenSSL. */
static void expect_hash(char out[80], const char *s)
{
	unsigned char mac[32];
	unsigned int n = 0;
	HMAC(EVP_sha256(), KEY, sizeof(KEY), (const unsigned char *)s, strlen(s), mac, &n);
	snprintf(out, 80, "hmac-sha256:");
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 12 + 2 * i, 3, "%02x", mac[i]);
}

static json_t *sample_entry(void)
{
	return json_loads(
		"{\"time\":\"t\",\"type\":\"response\","
		"\"auth\":{\"client_token\":\"s.tok\",\"accessor\":\"acc1\",\"display_name\":\"root\","
		"\"policies\":[\"root\"]},"
		"\"request\":{\"id\":\"r1\",\"operation\":\"list\",\"client_token\":\"s.tok\","
		"\"client_token_accessor\":\"acc1\",\"path\":\"secret/x\","
		"\"data\":{\"pw\":\"hunter2\",\"n\":{\"deep\":\"d\",\"arr\":[\"a\",7,true]},\"num\":5}},"
		"\"response\":{\"auth\":{\"client_token\":\"s.new\",\"accessor\":\"acc2\"},"
		"\"data\":{\"keys\":[\"a\",\"b\",\"c\"],\"key_info\":{\"a\":{},\"b\":{}},\"v\":\"resp\"}}}",
		0, NULL);
}

static json_t *formatted(struct audit_format *f, json_t *e, char **line_out)
{
	char *line = NULL;
	size_t len = 0;
	struct verr err = {0};
	assert_int_equal(audit_format_entry(f, e, &line, &len, &err), 0);
	assert_int_equal(strlen(line), len);
	json_t *j = json_loads(line, 0, NULL);
	assert_non_null(j);
	if (line_out)
		*line_out = line;
	else
		free(line);
	return j;
}

#define S(j, path) json_string_value(json_object_get(j, path))

static void test_audit_format__hmac_nested_strings_and_tokens(void **state)
{
	struct audit_format *f = fmt("{}");
	json_t *e = sample_entry();
	json_t *j = formatted(f, e, NULL);
	char h[80];
	json_t *req = json_object_get(j, "request"), *data = json_object_get(req, "data");
	expect_hash(h, "hunter2");
	assert_string_equal(S(data, "pw"), h);
	expect_hash(h, "d");
	assert_string_equal(S(json_object_get(data, "n"), "deep"), h);
	json_t *arr = json_object_get(json_object_get(data, "n"), "arr");
	expect_hash(h, "a");
	assert_string_equal(json_string_value(json_array_get(arr, 0)), h);
	assert_int_equal(json_integer_value(json_array_get(arr, 1)), 7);
	assert_true(json_is_true(json_array_get(arr, 2)));
	assert_int_equal(json_integer_value(json_object_get(data, "num")), 5);
	expect_hash(h, "s.tok");
	assert_string_equal(S(json_object_get(j, "auth"), "client_token"), h);
	assert_string_equal(S(req, "client_token"), h);
	expect_hash(h, "acc1");
	assert_string_equal(S(json_object_get(j, "auth"), "accessor"), h);
	assert_string_equal(S(req, "client_token_accessor"), h);
	json_t *rauth = json_object_get(json_object_get(j, "response"), "auth");
	expect_hash(h, "s.new");
	assert_string_equal(S(rauth, "client_token"), h);
	/* not sensitive: left alone */
	assert_string_equal(S(req, "path"), "secret/x");
	assert_string_equal(S(json_object_get(j, "auth"), "display_name"), "root");
	/* the caller's entry is not modified */
	assert_string_equal(S(json_object_get(json_object_get(e, "request"), "data"), "pw"), "hunter2");
	/* audit-hash gives the same value */
	char *ah = audit_format_hash(f, "hunter2");
	expect_hash(h, "hunter2");
	assert_string_equal(ah, h);
	free(ah);
	json_decref(j);
	json_decref(e);
	audit_format_free(f);
}

static void test_audit_format__hmac_accessor_false(void **state)
{
	struct audit_format *f = fmt("{\"hmac_accessor\":\"false\"}");
	json_t *e = sample_entry();
	json_t *j = formatted(f, e, NULL);
	assert_string_equal(S(json_object_get(j, "auth"), "accessor"), "acc1");
	assert_string_equal(S(json_object_get(j, "request"), "client_token_accessor"), "acc1");
	assert_string_equal(
		S(json_object_get(json_object_get(j, "response"), "auth"), "accessor"), "acc2");
	assert_non_null(strstr(S(json_object_get(j, "auth"), "client_token"), "hmac-sha256:"));
	json_decref(j);
	json_decref(e);
	audit_format_free(f);
}

static void test_audit_format__log_raw(void **state)
{
	struct audit_format *f = fmt("{\"log_raw\":\"true\"}");
	json_t *e = sample_entry();
	char *line = NULL;
	json_t *j = formatted(f, e, &line);
	assert_true(json_equal(j, e));
	assert_null(strstr(line, "hmac-sha256"));
	free(line);
	json_decref(j);
	json_decref(e);
	audit_format_free(f);
}

static void test_audit_format__elide_list_responses(void **state)
{
	struct audit_format *f = fmt("{\"elide_list_responses\":\"true\"}");
	json_t *e = sample_entry();
	json_t *j = formatted(f, e, NULL);
	json_t *d = json_object_get(json_object_get(j, "response"), "data");
	assert_int_equal(json_integer_value(json_object_get(d, "keys")), 3);
	assert_int_equal(json_integer_value(json_object_get(d, "key_info")), 2);
	assert_true(json_is_string(json_object_get(d, "v")));
	json_decref(j);
	/* only for list operations */
	json_object_set_new(json_object_get(e, "request"), "operation", json_string("read"));
	j = formatted(f, e, NULL);
	d = json_object_get(json_object_get(j, "response"), "data");
	assert_true(json_is_array(json_object_get(d, "keys")));
	json_decref(j);
	json_decref(e);
	audit_format_free(f);
}

static void test_audit_format__prefix_needs_config(void **state)
{
	int rc;
	struct verr err = {0};
	struct audit_format *f = fmt_with("{\"prefix\":\"P \"}", false, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	assert_null(f);
	assert_non_null(strstr(err.msg, "allow_audit_log_prefixing"));
	f = fmt_with("{\"prefix\":\"a\\nb\"}", true, &rc, &err);
	assert_int_equal(rc, VERR_INVALID);
	f = fmt_with("{\"prefix\":\"P \"}", true, &rc, &err);
	assert_int_equal(rc, 0);
	json_t *e = sample_entry();
	char *line = NULL;
	size_t len = 0;
	assert_int_equal(audit_format_entry(f, e, &line, &len, &err), 0);
	assert_memory_equal(line, "P {\"time\":", 10);
	free(line);
	json_decref(e);
	audit_format_free(f);
}

static void test_audit_format__bad_options(void **state)
{
	int rc;
	struct verr err = {0};
	assert_null(fmt_with("{\"format\":\"xml\"}", false, &rc, &err));
	assert_int_equal(rc, VERR_INVALID);
	assert_null(fmt_with("{\"log_raw\":\"maybe\"}", false, &rc, &err));
	assert_int_equal(rc, VERR_INVALID);
}

static void test_audit_format__jsonx(void **state)
{
	struct audit_format *f = fmt("{\"format\":\"jsonx\",\"log_raw\":\"true\"}");
	json_t *e = json_loads("{\"time\":\"t\",\"type\":\"request\",\"request\":{\"path\":\"a<b\","
			       "\"n\":1,\"ok\":true,\"z\":null}}", 0, NULL);
	char *line = NULL;
	size_t len = 0;
	struct verr err = {0};
	assert_int_equal(audit_format_entry(f, e, &line, &len, &err), 0);
	assert_string_equal(
		line,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><json:object "
		"xmlns:json=\"http://www.ibm.com/xmlns/prod/2009/jsonx\"><json:string "
		"name=\"time\">t</json:string><json:string name=\"type\">request</json:string>"
		"<json:object name=\"request\"><json:string name=\"path\">a&lt;b</json:string>"
		"<json:number name=\"n\">1</json:number><json:boolean name=\"ok\">true</json:boolean>"
		"<json:null name=\"z\"/></json:object></json:object>");
	free(line);
	json_decref(e);
	audit_format_free(f);
}

/* ---- the file device ---- */

static void *file_new(const char *options_json, int *rc, struct verr *err)
{
	json_t *o = json_loads(options_json, 0, NULL);
	struct audit_device_env env = {KEY, sizeof(KEY), false};
	void *d = NULL;
	*rc = audit_file_ops.new(&d, o, &env, err);
	json_decref(o);
	return d;
}

static void test_audit_format__file_device(void **state)
{
	char dir[] = "/tmp/coffer-audit-ut-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], opts[512];
	snprintf(path, sizeof(path), "%s/sub/a.log", dir);
	int rc;
	struct verr err = {0};
	snprintf(opts, sizeof(opts), "{\"file_path\":\"%s\",\"mode\":\"0755\"}", path);
	assert_null(file_new(opts, &rc, &err));
	assert_int_equal(rc, VERR_INVALID);
	assert_non_null(strstr(err.msg, "executable"));
	assert_int_not_equal(access(path, F_OK), 0);
	assert_null(file_new("{}", &rc, &err));
	assert_null(file_new("{\"file_path\":\"relative.log\"}", &rc, &err));
	snprintf(opts, sizeof(opts), "{\"file_path\":\"%s\",\"mode\":\"0640\"}", path);
	void *d = file_new(opts, &rc, &err);
	assert_int_equal(rc, 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(audit_file_ops.log(d, "one\ntwo\n", 8, 1000, &err), 0);
	char tail[16];
	size_t n = audit_file_ops.tail(d, tail, 5);
	assert_int_equal(n, 5);
	assert_memory_equal(tail, "\ntwo\n", 5);
	/* rotation: rename, reopen, the new file starts empty */
	char rotated[300];
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(audit_file_ops.reopen(d, &err), 0);
	assert_int_equal(audit_file_ops.tail(d, tail, sizeof(tail)), 0);
	assert_int_equal(audit_file_ops.log(d, "three\n", 6, 1000, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 6);
	audit_file_ops.free(d);
	unlink(path);
	unlink(rotated);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	/* discard swallows everything */
	d = file_new("{\"file_path\":\"discard\"}", &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(audit_file_ops.log(d, "x\n", 2, 1000, &err), 0);
	audit_file_ops.free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_format__hmac_nested_strings_and_tokens),
		cmocka_unit_test(test_audit_format__hmac_accessor_false),
		cmocka_unit_test(test_audit_format__log_raw),
		cmocka_unit_test(test_audit_format__elide_list_responses),
		cmocka_unit_test(test_audit_format__prefix_needs_config),
		cmocka_unit_test(test_audit_format__bad_options),
		cmocka_unit_test(test_audit_format__jsonx),
		cmocka_unit_test(test_audit_format__file_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
