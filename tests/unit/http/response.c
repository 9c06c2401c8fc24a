/*
 * Unit tests for src/http/response.c: the VERR -> status map, Vault's
 * envelope byte for byte, 204/404 rules, data_at_top, errors (with data),
 * raw bodies and redirects. Pure: no sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_int.h"

static struct logical_request req_of(enum logical_op op)
{
	struct logical_request r = {.op = op, .path = "secret/x",
				    .request_id = "8f4c1c2e-1111-4222-8333-444455556666"};
	return r;
}

static void test_http_response__status_map(void **state)
{
	static const struct {
		int code, status;
	} map[] = {
		{VERR_INVALID, 400},     {VERR_DENIED, 403},    {VERR_NOT_FOUND, 404},
		{VERR_UNSUPPORTED, 405}, {VERR_TOO_LARGE, 413}, {VERR_RATE, 429},
		{VERR_INTERNAL, 500},    {VERR_SEALED, 503},    {VERR_STANDBY, 503},
		{VERR_UNAVAILABLE, 503}, {VERR_PRECONDITION, 412}, {VERR_UNINIT, 400},
		{-999, 500},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct http_reply r;
		struct logical_request rq = req_of(LOP_READ);
		struct logical_response resp = {0};
		struct verr e;
		assert_int_equal(http_status_for_verr(map[i].code), map[i].status);
		/* and the listener's answer uses it, with the message */
		verr_set(&e, map[i].code, "boom %d", (int)i);
		http__reply_from_core(&r, map[i].code, &rq, &resp, &e);
		assert_int_equal(r.status, map[i].status);
		char want[64];
		snprintf(want, sizeof(want), "{\"errors\":[\"boom %d\"]}\n", (int)i);
		assert_string_equal(r.body, want);
		assert_string_equal(r.content_type, "application/json");
		http__reply_free(&r);
	}
}

static void test_http_response__envelope_bytes(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;

	resp.data = json_pack("{s:s,s:i,s:f}", "foo", "bar", "n", 7, "ratio", 0.1);
	resp.warnings = json_pack("[s]", "be careful");
	resp.lease_out = json_pack("{s:s,s:i,s:b}", "lease_id", "database/creds/ro/abc",
				   "lease_duration", 3600, "renewable", 1);
	resp.mount_type_out = strdup("kv");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body,
			    "{\"request_id\":\"8f4c1c2e-1111-4222-8333-444455556666\","
			    "\"lease_id\":\"database/creds/ro/abc\",\"renewable\":true,"
			    "\"lease_duration\":3600,\"data\":{\"foo\":\"bar\",\"n\":7,\"ratio\":0.1},"
			    "\"wrap_info\":null,\"warnings\":[\"be careful\"],\"auth\":null,"
			    "\"mount_type\":\"kv\"}\n");
	http__reply_free(&r);
	logical_response_reset(&resp);

	/* auth only (token create): data null */
	resp.auth_out = json_pack("{s:s}", "client_token", "s.x");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_string_equal(r.body,
			    "{\"request_id\":\"8f4c1c2e-1111-4222-8333-444455556666\","
			    "\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,\"data\":null,"
			    "\"wrap_info\":null,\"warnings\":null,\"auth\":{\"client_token\":\"s.x\"},"
			    "\"mount_type\":\"\"}\n");
	http__reply_free(&r);
	logical_response_reset(&resp);
}

/* A wrapped response is wrap_info alone (Vault's respondLogical), even on
 * a read (not a 404) and without the request id. */
static void test_http_response__wrapped(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;
	resp.wrap_info_out = json_pack("{s:s,s:s,s:i,s:s,s:s}", "token", "s.w", "accessor", "acc",
				       "ttl", 300, "creation_time", "2026-01-02T03:04:05.5Z",
				       "creation_path", "secret/x");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body,
			    "{\"request_id\":\"\",\"lease_id\":\"\",\"renewable\":false,"
			    "\"lease_duration\":0,\"data\":null,\"wrap_info\":{\"token\":\"s.w\","
			    "\"accessor\":\"acc\",\"ttl\":300,\"creation_time\":\"2026-01-02T03:04:05.5Z\","
			    "\"creation_path\":\"secret/x\"},\"warnings\":null,\"auth\":null,"
			    "\"mount_type\":\"\"}\n");
	http__reply_free(&r);
	logical_response_reset(&resp);
}

static void test_http_response__reals_round_trip(void **state)
{
	json_t *j = json_pack("{s:f,s:f}", "a", 0.1, "b", 0.1 + 0.2);
	size_t n;
	char *s = http__json_dump(j, &n);
	json_t *back = json_loads(s, 0, NULL);
	assert_true(json_real_value(json_object_get(back, "b")) == 0.1 + 0.2);
	assert_true(json_real_value(json_object_get(back, "a")) == 0.1);
	free(s);
	json_decref(back);
	json_decref(j);
	j = json_pack("[f]", 2.5);
	s = http__json_dump(j, &n);
	assert_string_equal(s, "[2.5]\n");
	assert_int_equal(n, 6);
	free(s);
	json_decref(j);
}

static void test_http_response__204_when_empty(void **state)
{
	struct logical_request rq = req_of(LOP_UPDATE);
	struct logical_response resp = {0};
	struct http_reply r;

	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 204);
	assert_null(r.body);
	http__reply_free(&r);

	/* an empty-looking answer with warnings is 200 (Vault) */
	resp.warnings = json_pack("[s]", "ignored field x");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"warnings\":[\"ignored field x\"]"));
	http__reply_free(&r);
	logical_response_reset(&resp);

	/* data {} is content (an empty KV entry) */
	resp.data = json_object();
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"data\":{}"));
	http__reply_free(&r);
	logical_response_reset(&resp);
}

static void test_http_response__read_and_list_404(void **state)
{
	struct logical_request rd = req_of(LOP_READ), ls = req_of(LOP_LIST);
	struct logical_response resp = {0};
	struct http_reply r;

	http__reply_from_core(&r, 0, &rd, &resp, NULL);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"errors\":[]}\n");
	http__reply_free(&r);

	resp.data = json_pack("{s:[]}", "keys");
	http__reply_from_core(&r, 0, &ls, &resp, NULL);
	assert_int_equal(r.status, 404);
	http__reply_free(&r);
	logical_response_reset(&resp);

	resp.data = json_pack("{s:[s,s]}", "keys", "a", "b/");
	http__reply_from_core(&r, 0, &ls, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"data\":{\"keys\":[\"a\",\"b/\"]}"));
	http__reply_free(&r);
	logical_response_reset(&resp);

	/* a NOT_FOUND with no message is {"errors":[]} */
	struct verr e;
	verr_set(&e, VERR_NOT_FOUND, "%s", "");
	http__reply_from_core(&r, VERR_NOT_FOUND, &rd, &resp, &e);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"errors\":[]}\n");
	http__reply_free(&r);
}

static void test_http_response__data_at_top(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;

	resp.data = json_pack("{s:[s],s:s,s:s}", "policies", "default", "request_id", "evil",
			      "mount_type", "evil");
	resp.data_at_top = true;
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body,
			    "{\"policies\":[\"default\"],"
			    "\"request_id\":\"8f4c1c2e-1111-4222-8333-444455556666\","
			    "\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
			    "\"data\":{\"policies\":[\"default\"],\"request_id\":\"evil\",\"mount_type\":\"evil\"},"
			    "\"wrap_info\":null,\"warnings\":null,\"auth\":null,\"mount_type\":\"\"}\n");
	http__reply_free(&r);
	logical_response_reset(&resp);

	/* keys that need escaping, a real, a lease: the same bytes as jansson */
	resp.data = json_pack("{s:f,s:s}", "k\"q", 0.1, "line", "a\nb");
	resp.data_at_top = true;
	resp.lease_out = json_pack("{s:s,s:i,s:b}", "lease_id", "x/1", "lease_duration", 60,
				   "renewable", 1);
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_string_equal(r.body,
			    "{\"k\\\"q\":0.1,\"line\":\"a\\nb\","
			    "\"request_id\":\"8f4c1c2e-1111-4222-8333-444455556666\","
			    "\"lease_id\":\"x/1\",\"renewable\":true,\"lease_duration\":60,"
			    "\"data\":{\"k\\\"q\":0.1,\"line\":\"a\\nb\"},"
			    "\"wrap_info\":null,\"warnings\":null,\"auth\":null,\"mount_type\":\"\"}\n");
	http__reply_free(&r);
	logical_response_reset(&resp);
}

static void test_http_response__error_with_data(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;
	struct verr e;

	/* KV v2 read of a deleted version: 404 with the metadata */
	resp.data = json_pack("{s:n,s:{s:i,s:s}}", "data", "metadata", "version", 2,
			      "deletion_time", "2024-01-01T00:00:00Z");
	verr_set(&e, VERR_NOT_FOUND, "%s", "");
	http__reply_from_core(&r, VERR_NOT_FOUND, &rq, &resp, &e);
	assert_int_equal(r.status, 404);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(j, "data"), "metadata"), "version")),
			 2);
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), rq.request_id);
	assert_null(json_object_get(j, "errors"));
	json_decref(j);
	http__reply_free(&r);
	logical_response_reset(&resp);
}

static void test_http_response__messages(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;
	struct verr e;

	verr_clear(&e);
	e.code = VERR_SEALED;
	http__reply_from_core(&r, VERR_SEALED, &rq, &resp, &e);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "{\"errors\":[\"Vault is sealed\"]}\n");
	http__reply_free(&r);

	/* CR/LF never reach the body; non-ASCII bytes are replaced */
	http__reply_error(&r, 400, "bad\r\nthing \xff");
	assert_string_equal(r.body, "{\"errors\":[\"bad  thing ?\"]}\n");
	http__reply_free(&r);

	/* a standby with a leader address redirects */
	resp.redirect = strdup("https://active:8200/v1/secret/x");
	verr_set(&e, VERR_STANDBY, "node is not active");
	http__reply_from_core(&r, VERR_STANDBY, &rq, &resp, &e);
	assert_int_equal(r.status, 307);
	assert_string_equal(r.location, "https://active:8200/v1/secret/x");
	http__reply_free(&r);
	logical_response_reset(&resp);

	verr_set(&e, VERR_STANDBY, "node is not active");
	http__reply_from_core(&r, VERR_STANDBY, &rq, &resp, &e);
	assert_int_equal(r.status, 503);
	http__reply_free(&r);
}

static void test_http_response__status_raw_redirect(void **state)
{
	struct logical_request rq = req_of(LOP_READ);
	struct logical_response resp = {0};
	struct http_reply r;

	/* sys/health style: explicit status with a body */
	resp.status = 429;
	resp.data = json_pack("{s:b}", "standby", 1);
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.body, "\"standby\":true"));
	http__reply_free(&r);
	logical_response_reset(&resp);

	resp.raw = true;
	resp.raw_body = strdup("# TYPE x counter\nx 1\n");
	resp.raw_len = strlen(resp.raw_body);
	resp.raw_content_type = strdup("text/plain; version=0.0.4");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, resp.raw_len);
	assert_memory_equal(r.body, resp.raw_body, resp.raw_len);
	assert_string_equal(r.content_type, "text/plain; version=0.0.4");
	http__reply_free(&r);
	logical_response_reset(&resp);

	resp.status = 307;
	resp.redirect = strdup("/ui/");
	http__reply_from_core(&r, 0, &rq, &resp, NULL);
	assert_int_equal(r.status, 307);
	assert_string_equal(r.location, "/ui/");
	http__reply_free(&r);
	logical_response_reset(&resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_response__status_map),
		cmocka_unit_test(test_http_response__envelope_bytes),
		cmocka_unit_test(test_http_response__wrapped),
		cmocka_unit_test(test_http_response__reals_round_trip),
		cmocka_unit_test(test_http_response__204_when_empty),
		cmocka_unit_test(test_http_response__read_and_list_404),
		cmocka_unit_test(test_http_response__data_at_top),
		cmocka_unit_test(test_http_response__error_with_data),
		cmocka_unit_test(test_http_response__messages),
		cmocka_unit_test(test_http_response__status_raw_redirect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
