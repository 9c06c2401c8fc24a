/*
 * Unit tests for src/http/request.c: raw HTTP request -> logical request
 * (method mapping, path decoding and cleaning, query data, bodies, token and
 * X-Vault-* headers). Pure: no sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_int.h"

struct built_case {
	struct http_built b;
	struct http_reply r;
	int rc;
};

static void build(struct built_case *c, const char *method, const char *target,
		  const struct http_header *h, size_t nh, const char *body)
{
	struct http_raw_request in = {
		.method = method, .target = target, .target_len = strlen(target),
		.headers = h, .nheaders = nh, .body = body, .body_len = body ? strlen(body) : 0,
		.remote_addr = "10.0.0.1", .remote_port = 4242,
	};
	c->rc = http__build_request(&c->b, &c->r, &in);
}

static void done(struct built_case *c)
{
	http__built_free(&c->b);
	http__reply_free(&c->r);
}

/* The reply body as a C string (error replies are always JSON). */
static const char *body_of(const struct built_case *c)
{
	return c->r.body ? c->r.body : "";
}

static void test_http_request__method_mapping(void **state)
{
	static const struct {
		const char *method, *target;
		enum logical_op op;
		const char *path;
	} cases[] = {
		{"GET", "/v1/secret/foo", LOP_READ, "secret/foo"},
		{"HEAD", "/v1/sys/health", LOP_READ, "sys/health"},
		{"GET", "/v1/secret/?list=true", LOP_LIST, "secret/"},
		{"GET", "/v1/secret?list=1", LOP_LIST, "secret/"},
		{"GET", "/v1/secret?list=false", LOP_READ, "secret"},
		{"LIST", "/v1/secret/dir", LOP_LIST, "secret/dir/"},
		{"POST", "/v1/secret/foo", LOP_UPDATE, "secret/foo"},
		{"PUT", "/v1/secret/foo", LOP_UPDATE, "secret/foo"},
		{"DELETE", "/v1/secret/foo", LOP_DELETE, "secret/foo"},
		{"GET", "/v1/secret/foo?help=1", LOP_HELP, "secret/foo"},
		{"HELP", "/v1/secret/foo", LOP_HELP, "secret/foo"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built_case c;
		build(&c, cases[i].method, cases[i].target, NULL, 0, NULL);
		assert_int_equal(c.rc, 0);
		assert_int_equal(c.b.req.op, cases[i].op);
		assert_string_equal(c.b.req.path, cases[i].path);
		assert_non_null(c.b.req.data);
		assert_string_equal(c.b.req.remote_addr, "10.0.0.1");
		assert_int_equal(c.b.req.remote_port, 4242);
		assert_int_equal(strlen(c.b.req.request_id), 36);
		assert_int_equal(c.b.req.request_id[14], '4'); /* UUID v4 */
		done(&c);
	}
}

static void test_http_request__patch_needs_merge_patch(void **state)
{
	struct built_case c;
	struct http_header ok[] = {{"Content-Type", "application/merge-patch+json; charset=utf-8"}};
	struct http_header bad[] = {{"content-type", "application/json"}};

	build(&c, "PATCH", "/v1/secret/data/x", ok, 1, "{\"data\":{\"a\":null}}");
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.op, LOP_PATCH);
	assert_true(json_is_null(json_object_get(json_object_get(c.b.req.data, "data"), "a")));
	done(&c);

	build(&c, "PATCH", "/v1/secret/data/x", bad, 1, "{}");
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 415);
	assert_string_equal(body_of(&c), "{\"errors\":[\"PATCH requires Content-Type of "
					 "application/merge-patch+json, provided application/json\"]}\n");
	done(&c);

	build(&c, "PATCH", "/v1/secret/data/x", NULL, 0, "{}");
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);
}

static void test_http_request__wrap_ttl_parsed(void **state)
{
	struct built_case c;
	struct http_header wrap[] = {{"X-Vault-Wrap-TTL", "5m"}};
	struct http_header secs[] = {{"x-vault-wrap-ttl", "90"}};
	struct http_header empty[] = {{"x-vault-wrap-ttl", ""}};
	struct http_header neg[] = {{"X-Vault-Wrap-TTL", "-5m"}};
	struct http_header bad[] = {{"X-Vault-Wrap-TTL", "later"}};

	/* the core wraps: the request carries the TTL in seconds */
	build(&c, "GET", "/v1/secret/data/x", wrap, 1, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.wrap_ttl, 300);
	done(&c);
	build(&c, "GET", "/v1/secret/data/x", secs, 1, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.wrap_ttl, 90);
	done(&c);
	build(&c, "GET", "/v1/secret/data/x", empty, 1, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.wrap_ttl, 0);
	done(&c);

	/* a bad value is a 400, never an unwrapped answer */
	build(&c, "GET", "/v1/secret/data/x", neg, 1, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	assert_string_equal(body_of(&c), "{\"errors\":[\"requested wrap ttl cannot be negative\"]}\n");
	done(&c);
	build(&c, "GET", "/v1/secret/data/x", bad, 1, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	assert_non_null(strstr(body_of(&c), "later"));
	done(&c);
}

static void test_http_request__unsupported_method_405(void **state)
{
	const char *methods[] = {"TRACE", "OPTIONS", "CONNECT", "get", "FOO"};
	for (size_t i = 0; i < 5; i++) {
		struct built_case c;
		build(&c, methods[i], "/v1/secret/foo", NULL, 0, NULL);
		assert_int_equal(c.rc, 1);
		assert_int_equal(c.r.status, 405);
		assert_string_equal(body_of(&c), "{\"errors\":[]}\n");
		assert_string_equal(c.r.content_type, "application/json");
		done(&c);
	}
}

static void test_http_request__outside_v1_404(void **state)
{
	const char *targets[] = {"/", "/ui/", "/v2/secret", "/v1", "/v1/", "/V1/secret", "*"};
	for (size_t i = 0; i < 7; i++) {
		struct built_case c;
		build(&c, "GET", targets[i], NULL, 0, NULL);
		assert_int_equal(c.rc, 1);
		assert_int_equal(c.r.status, 404);
		assert_string_equal(body_of(&c), "{\"errors\":[]}\n");
		done(&c);
	}
}

static void test_http_request__path_decoding(void **state)
{
	struct built_case c;
	build(&c, "GET", "/v1/secret/a%20b%2Fc+d", NULL, 0, NULL);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.b.req.path, "secret/a b/c+d"); /* '+' stays in paths */
	done(&c);

	build(&c, "GET", "/%761/secret/x", NULL, 0, NULL); /* decoded "/v1/" */
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.b.req.path, "secret/x");
	done(&c);

	build(&c, "GET", "http://vault:8200/v1/secret/x?a=b", NULL, 0, NULL); /* absolute-form */
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.b.req.path, "secret/x");
	done(&c);

	build(&c, "GET", "/v1/secret/%zz", NULL, 0, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);

	build(&c, "GET", "/v1/secret/%4", NULL, 0, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);
}

static void test_http_request__nul_in_path_400(void **state)
{
	struct built_case c;
	struct http_raw_request in = {.method = "GET", .target = "/v1/secret/a\0b",
				      .target_len = 14};

	build(&c, "GET", "/v1/secret/foo%00.json", NULL, 0, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	assert_string_equal(body_of(&c), "{\"errors\":[\"request path contains a NUL byte\"]}\n");
	done(&c);

	c.rc = http__build_request(&c.b, &c.r, &in); /* a raw NUL byte */
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);

	build(&c, "GET", "/v1/secret/x?k=a%00b", NULL, 0, NULL); /* in a query value */
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);
}

static void test_http_request__dot_segments_redirect(void **state)
{
	static const struct {
		const char *target, *location;
	} cases[] = {
		{"/v1/secret/../sys/seal", "/v1/sys/seal"},
		{"/v1/secret%2F..%2Fsys/seal?x=1", "/v1/sys/seal?x=1"},
		{"/v1//secret/./foo/", "/v1/secret/foo/"},
		{"/v1/../../etc", "/etc"},
		{"/v1/a b/..", NULL}, /* raw space: 400, not a redirect */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built_case c;
		build(&c, "GET", cases[i].target, NULL, 0, NULL);
		assert_int_equal(c.rc, 1);
		if (cases[i].location) {
			assert_int_equal(c.r.status, 301);
			assert_string_equal(c.r.location, cases[i].location);
		} else {
			assert_int_equal(c.r.status, 400);
		}
		done(&c);
	}
}

static void test_http_request__query_args_as_data(void **state)
{
	struct built_case c;
	char *s;

	build(&c, "GET", "/v1/secret/data/x?version=3&a=1&a=2&sp=a+b%21&empty=&flag&list=false",
	      NULL, 0, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.op, LOP_READ);
	s = json_dumps(c.b.req.data, JSON_COMPACT);
	assert_string_equal(s, "{\"version\":\"3\",\"a\":[\"1\",\"2\"],\"sp\":\"a b!\",\"empty\":\"\","
			       "\"flag\":\"\",\"list\":\"false\"}");
	free(s);
	done(&c);

	/* list=true and help are consumed; LIST keeps its query as data */
	build(&c, "GET", "/v1/secret/metadata?list=true&after=b", NULL, 0, NULL);
	assert_int_equal(c.b.req.op, LOP_LIST);
	s = json_dumps(c.b.req.data, JSON_COMPACT);
	assert_string_equal(s, "{\"after\":\"b\"}");
	free(s);
	done(&c);

	build(&c, "DELETE", "/v1/secret/data/x?versions=1", NULL, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(c.b.req.data, "versions")), "1");
	done(&c);

	build(&c, "GET", "/v1/secret?list=maybe", NULL, 0, NULL);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);

	/* bodies of reads are ignored; POST ignores the query */
	build(&c, "POST", "/v1/secret/x?q=1", NULL, 0, "{\"a\":\"b\"}");
	s = json_dumps(c.b.req.data, JSON_COMPACT);
	assert_string_equal(s, "{\"a\":\"b\"}");
	free(s);
	done(&c);
}

static void test_http_request__json_bodies(void **state)
{
	static const struct {
		const char *body;
		int status;
		const char *data_or_msg;
	} cases[] = {
		{"", 0, "{}"},
		{"  \r\n ", 0, "{}"},
		{"null", 0, "{}"},
		{"{\"n\":1,\"f\":1.5,\"o\":{\"x\":[true]}}", 0, "{\"n\":1,\"f\":1.5,\"o\":{\"x\":[true]}}"},
		{"[1,2]", 400, "failed to parse JSON input: the body must be a JSON object, got an array"},
		{"\"str\"", 400, "failed to parse JSON input: the body must be a JSON object, got a string"},
		{"42", 400, "failed to parse JSON input: the body must be a JSON object, got a number"},
		{"{\"a\":", 400, NULL},
		{"{\"a\":1}x", 400, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct built_case c;
		build(&c, "PUT", "/v1/secret/x", NULL, 0, cases[i].body);
		if (cases[i].status == 0) {
			char *s;
			assert_int_equal(c.rc, 0);
			s = json_dumps(c.b.req.data, JSON_COMPACT);
			assert_string_equal(s, cases[i].data_or_msg);
			free(s);
		} else {
			json_t *j;
			assert_int_equal(c.rc, 1);
			assert_int_equal(c.r.status, cases[i].status);
			j = json_loads(body_of(&c), 0, NULL);
			assert_non_null(j);
			const char *msg = json_string_value(json_array_get(json_object_get(j, "errors"), 0));
			assert_non_null(msg);
			if (cases[i].data_or_msg)
				assert_string_equal(msg, cases[i].data_or_msg);
			else
				assert_true(strncmp(msg, "failed to parse JSON input: ", 28) == 0);
			json_decref(j);
		}
		done(&c);
	}
}

static void test_http_request__form_body(void **state)
{
	struct built_case c;
	struct http_header form[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
	char *s;

	build(&c, "POST", "/v1/auth/userpass/login/bob", form, 1, "password=a%26b&p=1&p=2");
	assert_int_equal(c.rc, 0);
	s = json_dumps(c.b.req.data, JSON_COMPACT);
	assert_string_equal(s, "{\"password\":\"a&b\",\"p\":\"1,2\"}");
	free(s);
	done(&c);

	/* curl -d '{...}' sends JSON with the form content type */
	build(&c, "POST", "/v1/secret/x", form, 1, " {\"a\":\"b\"}");
	assert_int_equal(c.rc, 0);
	assert_string_equal(json_string_value(json_object_get(c.b.req.data, "a")), "b");
	done(&c);
}

/* An OCSP request (Content-Type application/ocsp-request) is DER, not JSON:
 * the mount gets the bytes as sent and empty data (Vault's isOcspRequest). */
static void test_http_request__ocsp_request_raw_body(void **state)
{
	struct built_case c;
	struct http_header ocsp[] = {{"Content-Type", "application/ocsp-request"}};
	const char der[] = "\x30\x03\x02\x01\x05{not json";
	struct http_raw_request in = {
		.method = "POST", .target = "/v1/pki/ocsp", .target_len = 12, .headers = ocsp,
		.nheaders = 1, .body = der, .body_len = sizeof(der) - 1,
		.remote_addr = "10.0.0.1", .remote_port = 4242,
	};
	c.rc = http__build_request(&c.b, &c.r, &in);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.b.req.op, LOP_UPDATE);
	assert_int_equal(c.b.req.raw_body_len, sizeof(der) - 1);
	assert_memory_equal(c.b.req.raw_body, der, sizeof(der) - 1);
	assert_int_equal(json_object_size(c.b.req.data), 0);
	done(&c);
	/* the same bytes as JSON are a 400 */
	struct http_header js[] = {{"Content-Type", "application/json"}};
	in.headers = js;
	c.rc = http__build_request(&c.b, &c.r, &in);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 400);
	done(&c);
}

static void test_http_request__too_large_413(void **state)
{
	struct built_case c;
	struct http_raw_request in = {.method = "POST", .target = "/v1/secret/x",
				      .target_len = 12, .body_too_large = true};
	c.rc = http__build_request(&c.b, &c.r, &in);
	assert_int_equal(c.rc, 1);
	assert_int_equal(c.r.status, 413);
	assert_true(c.r.close);
	assert_string_equal(body_of(&c),
			    "{\"errors\":[\"failed to parse JSON input: http: request body too large\"]}\n");
	done(&c);
}

static void test_http_request__token_and_headers(void **state)
{
	struct built_case c;
	struct http_header both[] = {
		{"Authorization", "Bearer other"},
		{"X-Vault-Token", "s.primary"},
		{"X-Vault-Policy-Override", "true"},
		{"X-VAULT-REQUEST", "true"},
		{"x-vault-namespace", "ns1/"},
		{"X-Vault-Request", "second value ignored"},
		{"X-Other", "not collected"},
	};
	struct http_header bearer[] = {{"authorization", "Bearer  s.fromauth "}};
	struct http_header basic[] = {{"Authorization", "Basic dXNlcjpwYXNz"}};
	char *s;

	build(&c, "GET", "/v1/auth/token/lookup-self", both, 7, NULL);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.b.req.client_token, "s.primary");
	s = json_dumps(c.b.req.headers, JSON_COMPACT);
	/* lower-cased, first value wins, the token header is never copied */
	assert_string_equal(s, "{\"x-vault-policy-override\":\"true\",\"x-vault-request\":\"true\","
			       "\"x-vault-namespace\":\"ns1/\"}");
	free(s);
	done(&c);

	build(&c, "GET", "/v1/auth/token/lookup-self", bearer, 1, NULL);
	assert_string_equal(c.b.req.client_token, "s.fromauth");
	assert_int_equal(json_object_size(c.b.req.headers), 0);
	done(&c);

	build(&c, "GET", "/v1/auth/token/lookup-self", basic, 1, NULL);
	assert_null(c.b.req.client_token);
	done(&c);
}

/* Request IDs come from a per-thread batch: they must stay well-formed
 * version-4 UUIDs and distinct across batch refills. */
static void test_http_request__request_ids_unique(void **state)
{
	(void)state;
	enum { N = 200 };
	static char ids[N][37];
	for (int i = 0; i < N; i++) {
		assert_int_equal(http__uuid4(ids[i]), 0);
		assert_int_equal(strlen(ids[i]), 36);
		assert_true(ids[i][8] == '-' && ids[i][13] == '-' && ids[i][18] == '-' &&
			    ids[i][23] == '-');
		assert_int_equal(ids[i][14], '4');
		assert_non_null(strchr("89ab", ids[i][19]));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_request__method_mapping),
		cmocka_unit_test(test_http_request__patch_needs_merge_patch),
		cmocka_unit_test(test_http_request__wrap_ttl_parsed),
		cmocka_unit_test(test_http_request__unsupported_method_405),
		cmocka_unit_test(test_http_request__outside_v1_404),
		cmocka_unit_test(test_http_request__path_decoding),
		cmocka_unit_test(test_http_request__nul_in_path_400),
		cmocka_unit_test(test_http_request__dot_segments_redirect),
		cmocka_unit_test(test_http_request__query_args_as_data),
		cmocka_unit_test(test_http_request__json_bodies),
		cmocka_unit_test(test_http_request__form_body),
		cmocka_unit_test(test_http_request__too_large_413),
		cmocka_unit_test(test_http_request__ocsp_request_raw_body),
		cmocka_unit_test(test_http_request__token_and_headers),
		cmocka_unit_test(test_http_request__request_ids_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
