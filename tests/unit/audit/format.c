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

/* ---- the JSON line, byte for byte: an independent reference ----
 * Copy the entry, edit it by the documented rules (format.c's header) and
 * json_dumps it; the device's one-pass writer must produce the same bytes. */

static void ref_hash_str(json_t *parent, const char *key, size_t idx, json_t *s)
{
	char h[80];
	char *tmp = strndup(json_string_value(s), json_string_length(s));
	/* strings with NUL: hash all bytes */
	unsigned char mac[32];
	unsigned int n = 0;
	HMAC(EVP_sha256(), KEY, sizeof(KEY), (const unsigned char *)json_string_value(s),
	     json_string_length(s), mac, &n);
	snprintf(h, sizeof(h), "hmac-sha256:");
	for (unsigned int i = 0; i < n; i++)
		snprintf(h + 12 + 2 * i, 3, "%02x", mac[i]);
	free(tmp);
	if (key)
		json_object_set_new(parent, key, json_string(h));
	else
		json_array_set_new(parent, idx, json_string(h));
}

static void ref_tree(json_t *v)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) {
			if (json_is_string(e))
				ref_hash_str(v, k, 0, e);
			else
				ref_tree(e);
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			if (json_is_string(e))
				ref_hash_str(v, NULL, i, e);
			else
				ref_tree(e);
		}
	}
}

static void ref_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_string(v) && json_string_length(v) > 0)
		ref_hash_str(obj, key, 0, v);
}

static char *ref_line(const json_t *entry, bool raw, bool accessor, bool elide)
{
	json_t *e = json_deep_copy(entry);
	json_t *req = json_object_get(e, "request"), *resp = json_object_get(e, "response");
	const char *op = json_string_value(json_object_get(req, "operation"));
	json_t *data = json_object_get(resp, "data");
	if (elide && op && !strcmp(op, "list") && json_is_object(data)) {
		json_t *k = json_object_get(data, "keys"), *ki = json_object_get(data, "key_info");
		if (json_is_array(k))
			json_object_set_new(data, "keys", json_integer((json_int_t)json_array_size(k)));
		if (json_is_object(ki))
			json_object_set_new(data, "key_info",
					    json_integer((json_int_t)json_object_size(ki)));
	}
	if (!raw) {
		json_t *auth = json_object_get(e, "auth"), *rauth = json_object_get(resp, "auth");
		ref_member(auth, "client_token");
		ref_member(req, "client_token");
		ref_member(rauth, "client_token");
		if (accessor) {
			ref_member(auth, "accessor");
			ref_member(req, "client_token_accessor");
			ref_member(rauth, "accessor");
		}
		ref_tree(json_object_get(req, "data"));
		ref_tree(json_object_get(resp, "data"));
	}
	char *s = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	return s;
}

static void test_audit_format__json_line_matches_reference(void **state)
{
	const char *entries[] = {
		/* the sample, plus shapes the rules must not trip on */
		NULL,
		"{\"time\":\"t\",\"type\":\"request\",\"auth\":{\"client_token\":\"\",\"accessor\":7},"
		"\"request\":{\"operation\":\"read\",\"client_token\":\"s.a\",\"data\":\"top-level\"},"
		"\"response\":{\"auth\":\"not an object\",\"data\":[\"x\",[\"y\",{\"z\":\"\"}],null]},"
		"\"error\":\"quote\\\" and \\n newline\"}",
		"{\"auth\":null,\"request\":{\"operation\":\"list\",\"data\":null},"
		"\"response\":{\"data\":{\"keys\":\"not an array\",\"key_info\":[1],\"x\":{\"y\":\"\\u00e9\"}},"
		"\"auth\":{\"accessor\":\"acc\",\"client_token\":\"s.b\",\"metadata\":{\"m\":\"kept\"}}}}",
		"{\"request\":{\"operation\":\"list\",\"client_token_accessor\":\"a\"},"
		"\"response\":{\"data\":{\"keys\":[\"a\",\"b\"],\"key_info\":{\"a\":1}}},\"n\":1.5}",
		"[\"not an object\"]",
	};
	const char *opts[] = {"{}", "{\"hmac_accessor\":false}", "{\"log_raw\":true}",
			      "{\"elide_list_responses\":true}",
			      "{\"log_raw\":true,\"elide_list_responses\":true}"};
	for (size_t i = 0; i < sizeof(entries) / sizeof(*entries); i++) {
		json_t *e = entries[i] ? json_loads(entries[i], JSON_DECODE_ANY, NULL) : sample_entry();
		assert_non_null(e);
		/* strings with a NUL byte (hashed whole) */
		json_t *rq = json_object_get(e, "request");
		if (json_is_object(rq)) {
			json_object_set_new(rq, "nul", json_stringn("v\0w", 3));
			if (json_is_object(json_object_get(rq, "data")))
				json_object_set_new(json_object_get(rq, "data"), "nul",
						    json_stringn("v\0w", 3));
		}
		for (size_t o = 0; o < sizeof(opts) / sizeof(*opts); o++) {
			struct audit_format *f = fmt(opts[o]);
			bool raw = strstr(opts[o], "log_raw") != NULL;
			bool acc = strstr(opts[o], "hmac_accessor") == NULL;
			bool elide = strstr(opts[o], "elide") != NULL;
			char *want = ref_line(e, raw, acc, elide);
			char *line = NULL;
			size_t len = 0;
			struct verr err = {0};
			assert_int_equal(audit_format_entry(f, e, &line, &len, &err), 0);
			assert_string_equal(line, want);
			assert_int_equal(len, strlen(want));
			free(line);
			free(want);
			audit_format_free(f);
		}
		json_decref(e);
	}
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

/* The core describes entries with struct audit_entry and devices write
 * them without a JSON tree: for every combination of present members and
 * every option set, the line must be byte for byte what the tree path
 * writes for audit_entry_json() of the same description. */
static void test_audit_format__direct_matches_tree(void **state)
{
	(void)state;
	const char *opts[] = {
		"{}",
		"{\"log_raw\":\"true\"}",
		"{\"hmac_accessor\":\"false\"}",
		"{\"elide_list_responses\":\"true\"}",
		"{\"format\":\"jsonx\"}",
		"{\"prefix\":\"@cee: \"}",
	};
	json_t *pol = json_loads("[\"default\",\"kv-read\"]", 0, NULL);
	json_t *meta = json_loads("{\"user\":\"ann\",\"n\":\"1\"}", 0, NULL);
	json_t *rdata = json_loads("{\"pw\":\"hunter2\",\"n\":{\"x\":[\"a\",1,null,true]},\"e\":\"\"}",
				   0, NULL);
	json_t *sdata = json_loads("{\"keys\":[\"a\",\"b\"],\"key_info\":{\"a\":{\"v\":\"1\"}},"
				   "\"value\":\"s\\u00e9cret\\n\",\"num\":2.5}",
				   0, NULL);
	json_t *rauth = json_loads("{\"client_token\":\"s.new\",\"accessor\":\"acc2\","
				   "\"policies\":[\"p\"],\"lease_duration\":60}",
				   0, NULL);
	json_t *warn = json_loads("[\"careful \\\"here\\\"\"]", 0, NULL);
	assert_true(pol && meta && rdata && sdata && rauth && warn);
	size_t checked = 0;
	for (size_t o = 0; o < sizeof(opts) / sizeof(*opts); o++) {
		int rc;
		struct verr err = {0};
		struct audit_format *f = fmt_with(opts[o], true, &rc, &err);
		assert_int_equal(rc, 0);
		for (unsigned m = 0; m < (1u << 12); m++) {
			bool b[12];
			for (int i = 0; i < 12; i++)
				b[i] = (m >> i) & 1;
			struct audit_entry e = {
				.time = "2026-11-27T21:32:48.432553701Z",
				.type = b[0] ? "response" : "request",
				.client_token = b[1] ? "s.tok" : NULL,
				.has_token = b[2],
				.accessor = b[2] ? "acc1" : NULL,
				.display_name = "token-ann",
				.policies = b[3] ? pol : NULL,
				.metadata = b[3] ? meta : NULL,
				.entity_id = b[4] ? "ent-\xff" : NULL, /* not UTF-8: left out */
				.token_type = "service",
				.token_ttl = b[4] ? 3600 : 0,
				.token_issue_time = "2026-11-27T21:32:47Z",
				.remaining_uses = b[5] ? 3 : 0,
				.request_id = "r1",
				.operation = b[6] ? "list" : "read",
				.mount_point = "secret/",
				.mount_type = "kv",
				.mount_accessor = b[7] ? "kv_1234" : NULL,
				.client_token_accessor = b[2] ? "acc1" : NULL,
				.path = "secret/data/x",
				.request_data = b[8] ? rdata : NULL,
				.remote_address = "127.0.0.1",
				.remote_port = b[7] ? 40922 : 0,
				.has_response = b[0],
				.has_resp = b[0] && b[9],
				.resp_auth = b[10] ? rauth : NULL,
				.resp_data = b[11] ? sdata : NULL,
				.resp_warnings = b[5] ? warn : NULL,
				.has_secret = b[4],
				.lease_id = b[3] ? "secret/data/x/abc" : NULL,
				.redirect = b[6] && b[11] ? "" : NULL,
				.error = b[9] && b[10] ? "permission denied" : NULL,
			};
			json_t *j = audit_entry_json(&e);
			assert_non_null(j);
			char *a = NULL, *t = NULL;
			size_t al = 0, tl = 0;
			assert_int_equal(audit_format_entry_direct(f, &e, &a, &al, &err), 0);
			assert_int_equal(audit_format_entry(f, j, &t, &tl, &err), 0);
			assert_int_equal(al, tl);
			assert_string_equal(a, t);
			free(a);
			free(t);
			json_decref(j);
			checked++;
		}
		audit_format_free(f);
	}
	assert_int_equal(checked, 6 * 4096);
	json_decref(pol), json_decref(meta), json_decref(rdata), json_decref(sdata);
	json_decref(rauth), json_decref(warn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_format__hmac_nested_strings_and_tokens),
		cmocka_unit_test(test_audit_format__json_line_matches_reference),
		cmocka_unit_test(test_audit_format__hmac_accessor_false),
		cmocka_unit_test(test_audit_format__log_raw),
		cmocka_unit_test(test_audit_format__elide_list_responses),
		cmocka_unit_test(test_audit_format__prefix_needs_config),
		cmocka_unit_test(test_audit_format__bad_options),
		cmocka_unit_test(test_audit_format__jsonx),
		cmocka_unit_test(test_audit_format__direct_matches_tree),
		cmocka_unit_test(test_audit_format__file_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
