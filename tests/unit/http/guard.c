/*
 * Unit tests for src/http/guard.c's framing scanner (http__scan): what it
 * rejects, that it follows request boundaries through Content-Length and
 * chunked bodies on a kept-alive connection, and that the verdict does not
 * depend on how the bytes are split into reads. Pure: no sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_int.h"

/* Feed `len` bytes in pieces of `step` (0: all at once); returns the status
 * (0 if accepted) and the message. */
static int scan_split(const char *p, size_t len, size_t step, const char **why)
{
	struct http_scan s;
	size_t off;
	http__scan_init(&s);
	*why = NULL;
	if (!step)
		step = len ? len : 1;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		int rc = http__scan(&s, p + i, n, &off, why);
		if (rc)
			return rc;
	}
	return 0;
}

static int scan_all(const char *p, size_t len, const char **why)
{
	/* the same verdict whether it comes in one read or byte by byte */
	const char *w1, *w2;
	int a = scan_split(p, len, 0, &w1), b = scan_split(p, len, 1, &w2);
	assert_int_equal(a, b);
	if (a)
		assert_string_equal(w1, w2);
	*why = w1;
	return a;
}

#define SCAN(lit, why) scan_all(lit, sizeof(lit) - 1, why)

static void test_http_guard__accepts_ordinary_requests(void **state)
{
	static const char reqs[] =
		"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Vault-Token: hvs.abc\r\n\r\n"
		"PUT /v1/secret/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n"
		"Content-Type: application/json\r\n\r\n{\"data\":{\"a\":\"b\"}}"
		"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
		"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n"
		/* a Content-Length repeated with the same value is fine (Go too) */
		"PUT /v1/y HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2 \r\n\r\n{}"
		/* bare LF line ends, a tab in a value, obs-text bytes */
		"GET /v1/z?a=1&b=2 HTTP/1.1\nX-A:\tv\xc3\xa9\n\n";
	const char *why;
	assert_int_equal(SCAN(reqs, &why), 0);
}

static void test_http_guard__content_length_syntax(void **state)
{
	static const char *const bad[] = {"-1", "abc", "1e20", "+5", "0x10", "5 5", "5,5",
					  "99999999999999999999", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char req[256];
		const char *why;
		int n = snprintf(req, sizeof(req),
				 "PUT /v1/k HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n", bad[i]);
		assert_int_equal(scan_all(req, (size_t)n, &why), 400);
		assert_string_equal(why, "invalid Content-Length header");
	}
}

static void test_http_guard__smuggling_shapes(void **state)
{
	const char *why;
	assert_int_equal(SCAN("PUT /v1/k HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
			      &why), 400);
	assert_string_equal(why, "conflicting Content-Length headers");
	assert_int_equal(SCAN("PUT /v1/k HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
			      &why), 400);
	assert_string_equal(why, "Content-Length and Transfer-Encoding must not both be set");
	assert_int_equal(SCAN("PUT /v1/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
			      &why), 400);
	assert_int_equal(SCAN("PUT /v1/k HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", &why), 400);
	assert_non_null(strstr(why, "folding"));
}

static void test_http_guard__transfer_encodings(void **state)
{
	static const char *const te[] = {"identity", "gzip", "gzip, chunked", "chunked, gzip",
					 "chunkedx", "x"};
	for (size_t i = 0; i < sizeof(te) / sizeof(te[0]); i++) {
		char req[256];
		const char *why;
		int n = snprintf(req, sizeof(req),
				 "PUT /v1/k HTTP/1.1\r\nTransfer-Encoding: %s\r\n\r\n", te[i]);
		assert_int_equal(scan_all(req, (size_t)n, &why), 501);
	}
}

static void test_http_guard__control_bytes(void **state)
{
	const char *why;
	static const char nul[] = "GET /v1/x HTTP/1.1\r\nX-Vault-Token: root\0junk\r\n\r\n";
	assert_int_equal(scan_all(nul, sizeof(nul) - 1, &why), 400);
	assert_string_equal(why, "NUL byte in a header value");
	assert_int_equal(SCAN("GET /v1/x HTTP/1.1\r\nX-Vault-Token: a\x01b\r\n\r\n", &why), 400);
	assert_int_equal(SCAN("GET /v1/x HTTP/1.1\r\nX-A: a\rb\r\n\r\n", &why), 400); /* bare CR */
	assert_int_equal(SCAN("GET /v1/x HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", &why), 400);
	static const char name[] = "GET /v1/x HTTP/1.1\r\nX-\0A: b\r\n\r\n";
	assert_int_equal(scan_all(name, sizeof(name) - 1, &why), 400);
	assert_string_equal(why, "control character in a header name");
	/* a NUL in a body is data, not framing */
	static const char body[] = "PUT /v1/x HTTP/1.1\r\nContent-Length: 3\r\n\r\na\0b"
				   "GET /v1/y HTTP/1.1\r\n\r\n";
	assert_int_equal(scan_all(body, sizeof(body) - 1, &why), 0);
}

static void test_http_guard__query_argument_count(void **state)
{
	char *req = malloc(16 * 1024);
	const char *why;
	size_t n;
	for (int args = HTTP_MAX_QUERY_ARGS; args <= HTTP_MAX_QUERY_ARGS + 1; args++) {
		n = (size_t)sprintf(req, "GET /v1/sys/health?");
		for (int i = 0; i < args; i++)
			n += (size_t)sprintf(req + n, "%sa=%d", i ? "&" : "", i);
		n += (size_t)sprintf(req + n, " HTTP/1.1\r\n\r\n");
		assert_int_equal(scan_all(req, n, &why), args > HTTP_MAX_QUERY_ARGS ? 400 : 0);
	}
	assert_string_equal(why, "too many query parameters");
	free(req);
}

static void test_http_guard__finds_the_bad_request_after_bodies(void **state)
{
	/* the bad header comes after a chunked body that contains what looks
	 * like headers: it is found, and nothing inside the bodies is flagged */
	static const char reqs[] =
		"POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"1a\r\nContent-Length: -1\r\n\r\nxxxx\r\n0\r\n\r\n"
		"PUT /v1/b HTTP/1.1\r\nContent-Length: 17\r\n\r\nContent-Length: x"
		"GET /v1/c HTTP/1.1\r\nContent-Length: nope\r\n\r\n";
	const char *why;
	struct http_scan s;
	size_t off;
	assert_int_equal(SCAN(reqs, &why), 400);
	assert_string_equal(why, "invalid Content-Length header");
	/* and the offending request's offset is reported */
	http__scan_init(&s);
	assert_int_equal(http__scan(&s, reqs, sizeof(reqs) - 1, &off, &why), 400);
	assert_memory_equal(reqs + off, "GET /v1/c", 9);
}

static void test_http_guard__unparsable_chunk_turns_off(void **state)
{
	/* a chunk size it cannot follow: the scanner stops checking (MHD
	 * rejects the body itself) rather than misread what follows */
	static const char reqs[] = "POST /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "zz\r\nGET /v1/c HTTP/1.1\r\nContent-Length: nope\r\n\r\n";
	const char *why;
	assert_int_equal(SCAN(reqs, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_guard__accepts_ordinary_requests),
		cmocka_unit_test(test_http_guard__content_length_syntax),
		cmocka_unit_test(test_http_guard__smuggling_shapes),
		cmocka_unit_test(test_http_guard__transfer_encodings),
		cmocka_unit_test(test_http_guard__control_bytes),
		cmocka_unit_test(test_http_guard__query_argument_count),
		cmocka_unit_test(test_http_guard__finds_the_bad_request_after_bodies),
		cmocka_unit_test(test_http_guard__unparsable_chunk_turns_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
