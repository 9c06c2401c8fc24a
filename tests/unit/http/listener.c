/*
 * Unit tests for src/http/listener.c over real sockets on 127.0.0.1, with a
 * test double in place of the core (http_test.h): wire-level method mapping,
 * headers in and out, body cap, hostile requests (NUL, 10,000 headers, 1 MiB
 * path, slow clients), keep-alive and graceful stop. Every test runs twice:
 * with a thread per connection and in epoll mode with ONE event thread,
 * where a request the core cannot answer at once must run on an offload
 * worker (a slow core call would otherwise hold up every other client).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "http_test.h"
#include "util/log.h"

static struct http_listener *L;
static int PORT;
static unsigned POOL; /* the listener's thread_pool_size for this group */
static int INLINE_CALLS;

/* epoll mode: paths under secret/inline/ run on the event thread */
static bool test_inline(struct core *c, const struct logical_request *req)
{
	(void)c;
	__atomic_add_fetch(&INLINE_CALLS, 1, __ATOMIC_SEQ_CST);
	return !strncmp(req->path, "secret/inline/", 14);
}

static int start_opts(struct http_listener **l, struct http_listener_opts *o, struct verr *e)
{
	o->thread_pool_size = POOL;
	o->inline_ok = test_inline;
	return http_listener_start(l, o, NULL, e);
}

static int setup(void **state)
{
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true,
				       .max_request_size = 4096, .idle_timeout = 2,
				       .max_request_duration = 5};
	struct verr e;
	if (getenv("HTTP_TEST_DEBUG"))
		log_set_level(LOG_TRACE);
	if (start_opts(&L, &o, &e)) {
		fprintf(stderr, "start: %s\n", e.msg);
		return -1;
	}
	PORT = http_listener_port(L);
	return 0;
}

static int teardown(void **state)
{
	http_listener_stop(L);
	fake_reset(NULL);
	return 0;
}

static int per_test(void **state)
{
	fake_reset(NULL);
	return 0;
}

static void test_http_listener__address_and_port(void **state)
{
	char want[64];
	assert_true(PORT > 0);
	snprintf(want, sizeof(want), "127.0.0.1:%d", PORT);
	assert_string_equal(http_listener_address(L), want);
}

static void test_http_listener__get_envelope_and_headers(void **state)
{
	struct http_resp r;
	char buf[256];
	assert_int_equal(http_dos(PORT, "GET /v1/secret/foo?version=2 HTTP/1.1\r\nHost: x\r\n"
				  "X-Vault-Token: s.abc\r\nX-Vault-Request: true\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(http_resp_header(&r, "Content-Type", buf, sizeof(buf)),
			    "application/json");
	assert_string_equal(http_resp_header(&r, "Cache-Control", buf, sizeof(buf)), "no-store");
	assert_int_equal(fake.op, LOP_READ);
	assert_string_equal(fake.path, "secret/foo");
	assert_string_equal(fake.data, "{\"version\":\"2\"}");
	assert_string_equal(fake.token, "s.abc");
	assert_string_equal(fake.headers, "{\"x-vault-request\":\"true\"}");
	assert_string_equal(fake.remote_addr, "127.0.0.1");
	assert_true(fake.remote_port > 0);
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"request_id\":\"%s\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
		 "\"data\":{\"path\":\"secret/foo\"},\"wrap_info\":null,\"warnings\":null,"
		 "\"auth\":null,\"mount_type\":\"\"}\n",
		 fake.request_id);
	assert_string_equal(r.body, want);
	http_resp_free(&r);
}

static void test_http_listener__methods_on_the_wire(void **state)
{
	static const struct {
		const char *req;
		int op;
		const char *path, *data;
	} cases[] = {
		{"LIST /v1/secret/metadata HTTP/1.1\r\n", LOP_LIST, "secret/metadata/", "{}"},
		{"GET /v1/secret/metadata?list=true HTTP/1.1\r\n", LOP_LIST, "secret/metadata/", "{}"},
		{"DELETE /v1/secret/x HTTP/1.1\r\n", LOP_DELETE, "secret/x", "{}"},
		{"PUT /v1/secret/x HTTP/1.1\r\nContent-Length: 9\r\n", LOP_UPDATE, "secret/x",
		 "{\"a\":\"b\"}"},
		{"POST /v1/secret/x HTTP/1.1\r\nContent-Length: 0\r\n", LOP_UPDATE, "secret/x", "{}"},
		{"PATCH /v1/secret/x HTTP/1.1\r\nContent-Type: application/merge-patch+json\r\n"
		 "Content-Length: 9\r\n", LOP_PATCH, "secret/x", "{\"a\":\"b\"}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char req[512];
		struct http_resp r;
		fake_reset(NULL);
		snprintf(req, sizeof(req), "%sHost: x\r\nConnection: close\r\n\r\n%s", cases[i].req,
			 strstr(cases[i].req, "Content-Length: 9") ? "{\"a\":\"b\"}" : "");
		assert_int_equal(http_dos(PORT, req, &r), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(fake.op, cases[i].op);
		assert_string_equal(fake.path, cases[i].path);
		assert_string_equal(fake.data, cases[i].data);
		http_resp_free(&r);
	}
}

static void test_http_listener__head_has_no_body(void **state)
{
	struct http_resp r;
	char buf[64];
	assert_int_equal(http_dos(PORT, "HEAD /v1/sys/health HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(fake.op, LOP_READ);
	assert_non_null(http_resp_header(&r, "Content-Type", buf, sizeof(buf)));
	assert_int_equal(r.body_len, 0);
	http_resp_free(&r);
}

static void test_http_listener__bearer_token(void **state)
{
	struct http_resp r;
	assert_int_equal(http_dos(PORT, "GET /v1/auth/token/lookup-self HTTP/1.1\r\nHost: x\r\n"
				  "Authorization: Bearer s.bearer\r\nConnection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(fake.token, "s.bearer");
	http_resp_free(&r);
}

static int script_empty(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return 0;
}

static int script_denied(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return verr_set(err, VERR_DENIED, "permission denied");
}

static void test_http_listener__204_and_errors(void **state)
{
	struct http_resp r;
	char buf[64];
	fake_reset(script_empty);
	assert_int_equal(http_dos(PORT, "POST /v1/sys/seal HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 0\r\nConnection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	http_resp_free(&r);

	fake_reset(script_denied);
	assert_int_equal(http_dos(PORT, "GET /v1/secret/x HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}\n");
	assert_string_equal(http_resp_header(&r, "Content-Type", buf, sizeof(buf)),
			    "application/json");
	assert_string_equal(http_resp_header(&r, "Cache-Control", buf, sizeof(buf)), "no-store");
	http_resp_free(&r);

	/* not /v1/ and bad JSON never reach the core */
	fake_reset(NULL);
	assert_int_equal(http_dos(PORT, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				  &r), 0);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
	assert_int_equal(http_dos(PORT, "PUT /v1/secret/x HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 5\r\nConnection: close\r\n\r\n[1,2]", &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	assert_int_equal(http_dos(PORT, "TRACE /v1/secret/x HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.body, "{\"errors\":[]}\n");
	http_resp_free(&r);
	assert_int_equal(fake.calls, 0);
}

static void test_http_listener__body_cap_413(void **state)
{
	struct http_resp r;
	char *req = malloc(20000);
	int n;

	/* declared too large: refused before the body is read */
	assert_int_equal(http_dos(PORT, "PUT /v1/secret/x HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 100000000\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 413);
	assert_string_equal(r.body,
			    "{\"errors\":[\"failed to parse JSON input: http: request body too large\"]}\n");
	http_resp_free(&r);

	/* chunked, over the 4096-byte cap: discarded, then 413 */
	n = snprintf(req, 20000, "PUT /v1/secret/x HTTP/1.1\r\nHost: x\r\n"
				 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		n += snprintf(req + n, 20000 - (size_t)n, "1000\r\n");
		memset(req + n, 'a', 4096);
		n += 4096;
		n += snprintf(req + n, 20000 - (size_t)n, "\r\n");
	}
	n += snprintf(req + n, 20000 - (size_t)n, "0\r\n\r\n");
	assert_int_equal(http_do(PORT, req, (size_t)n, &r), 0);
	assert_int_equal(r.status, 413);
	http_resp_free(&r);
	free(req);
	assert_int_equal(fake.calls, 0);

	/* just under the cap is fine */
	req = malloc(8192);
	n = snprintf(req, 8192, "PUT /v1/secret/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n"
				"Connection: close\r\n\r\n{\"k\":\"");
	memset(req + n, 'v', 4096 - 8);
	n += 4096 - 8;
	n += snprintf(req + n, 8192 - (size_t)n, "\"}");
	assert_int_equal(http_do(PORT, req, (size_t)n, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	free(req);
}

static void test_http_listener__nul_in_path(void **state)
{
	struct http_resp r;
	static const char raw[] = "GET /v1/secret/a\0b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

	assert_int_equal(http_dos(PORT, "GET /v1/secret/a%00b HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	assert_int_equal(http_do(PORT, raw, sizeof(raw) - 1, &r), 0);
	assert_int_equal(r.status, 400);
	http_resp_free(&r);
	assert_int_equal(fake.calls, 0);
}

static void still_serves(void)
{
	struct http_resp r;
	assert_int_equal(http_dos(PORT, "GET /v1/secret/ok HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
}

static void test_http_listener__ten_thousand_headers(void **state)
{
	size_t cap = 10000 * 24 + 256, n;
	char *req = malloc(cap);
	struct http_resp r;
	n = (size_t)snprintf(req, cap, "GET /v1/secret/x HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(req + n, cap - n, "X-H%d: v\r\n", i);
	n += (size_t)snprintf(req + n, cap - n, "\r\n");
	assert_int_equal(http_do(PORT, req, n, &r), 0);
	assert_true(r.status >= 400 && r.status < 500);
	http_resp_free(&r);
	free(req);
	assert_int_equal(fake.calls, 0);
	still_serves();
}

static void test_http_listener__very_long_path(void **state)
{
	size_t len = 1024 * 1024;
	char *req = malloc(len + 128);
	struct http_resp r;
	int n = snprintf(req, len + 128, "GET /v1/");
	memset(req + n, 'a', len);
	n += (int)len;
	n += snprintf(req + n, 128, " HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(http_do(PORT, req, (size_t)n, &r), 0);
	assert_true(r.status == 414 || r.status == 400 || r.status == 431);
	http_resp_free(&r);
	free(req);
	still_serves();
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_http_listener__slow_client_does_not_block(void **state)
{
	/* one client sends half a request and stalls; another is served at once */
	int slow = connect_to(PORT);
	struct http_resp r;
	double t0;
	assert_true(slow >= 0);
	const char *half = "GET /v1/secret/slow HTTP/1.1\r\nHost: x\r\nX-Va";
	assert_int_equal(send_all(slow, half, strlen(half)), 0);
	t0 = now_s();
	still_serves();
	assert_true(now_s() - t0 < 1.0);
	/* the stalled client is dropped after the idle timeout (2 s here) */
	char b;
	assert_true(recv(slow, &b, 1, 0) <= 0);
	close(slow);
	(void)r;
}

static void test_http_listener__slow_core_does_not_block(void **state)
{
	/* a core call that takes 1.5 s stalls only its own connection */
	int fd = connect_to(PORT);
	double t0;
	struct http_resp r;
	fake.sleep_ms = 1500;
	assert_int_equal(send_all(fd, "GET /v1/secret/slow HTTP/1.1\r\nHost: x\r\n\r\n", 42), 0);
	usleep(100 * 1000);
	fake.sleep_ms = 0;
	t0 = now_s();
	still_serves();
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(read_resp(fd, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	close(fd);
}

static void test_http_listener__inline_and_offloaded(void **state)
{
	/* both kinds answer on one keep-alive connection, in order; in epoll
	 * mode the listener asked the core which kind each one is */
	int fd = connect_to(PORT);
	assert_true(fd >= 0);
	int before = __atomic_load_n(&INLINE_CALLS, __ATOMIC_SEQ_CST);
	const char *paths[] = {"secret/inline/a", "secret/other", "secret/inline/b", "sys/x"};
	for (int i = 0; i < 4; i++) {
		char reqb[128], want[64];
		struct http_resp r;
		int n = snprintf(reqb, sizeof(reqb), "GET /v1/%s HTTP/1.1\r\nHost: x\r\n\r\n",
				 paths[i]);
		assert_int_equal(send_all(fd, reqb, (size_t)n), 0);
		assert_int_equal(read_resp(fd, &r, false), 0);
		assert_int_equal(r.status, 200);
		snprintf(want, sizeof(want), "\"path\":\"%s\"", paths[i]);
		assert_non_null(strstr(r.body, want));
		http_resp_free(&r);
	}
	close(fd);
	int asked = __atomic_load_n(&INLINE_CALLS, __ATOMIC_SEQ_CST) - before;
	assert_int_equal(asked, POOL ? 4 : 0);
}

static int wb_calls, wb_inline;

/* a core that finds, on the event thread, that it would have to block */
static int would_block_script(struct logical_request *req, struct logical_response *resp,
			      struct verr *err)
{
	wb_calls++;
	if (req->inline_only) {
		wb_inline++;
		req->would_block = true;
		return verr_set(err, VERR_UNAVAILABLE, "request must run on a worker");
	}
	resp->data = json_pack("{s:s}", "ran", "worker");
	return 0;
}

static void test_http_listener__would_block_runs_again_on_a_worker(void **state)
{
	wb_calls = wb_inline = 0;
	fake_reset(would_block_script);
	struct http_resp r;
	assert_int_equal(http_dos(PORT, "GET /v1/secret/inline/wb HTTP/1.1\r\nHost: x\r\n"
				  "Connection: close\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ran\":\"worker\""));
	http_resp_free(&r);
	/* epoll: tried inline, refused, run once more off the event thread */
	assert_int_equal(wb_calls, POOL ? 2 : 1);
	assert_int_equal(wb_inline, POOL ? 1 : 0);
	fake_reset(NULL);
}

static void test_http_listener__keep_alive(void **state)
{
	int fd = connect_to(PORT);
	assert_true(fd >= 0);
	for (int i = 0; i < 5; i++) {
		struct http_resp r;
		char req[128];
		int n = snprintf(req, sizeof(req), "GET /v1/secret/k%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
		assert_int_equal(send_all(fd, req, (size_t)n), 0);
		assert_int_equal(read_resp(fd, &r, false), 0);
		assert_int_equal(r.status, 200);
		char want[32];
		snprintf(want, sizeof(want), "secret/k%d", i);
		assert_string_equal(fake.path, want);
		http_resp_free(&r);
	}
	close(fd);
}

static void test_http_listener__graceful_stop(void **state)
{
	/* a request in flight when stop begins still gets its answer */
	struct http_listener *l2;
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true};
	struct verr e;
	struct http_resp r;
	int fd;
	double t0;

	assert_int_equal(start_opts(&l2, &o, &e), 0);
	int port2 = http_listener_port(l2);
	fd = connect_to(port2);
	fake.sleep_ms = 700;
	assert_int_equal(send_all(fd, "GET /v1/secret/inflight HTTP/1.1\r\nHost: x\r\n\r\n", 46), 0);
	usleep(200 * 1000);
	t0 = now_s();
	http_listener_stop(l2);
	assert_true(now_s() - t0 < 5.0);
	assert_int_equal(read_resp(fd, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	close(fd);
	fake.sleep_ms = 0;
	/* and nothing listens any more */
	assert_true(connect_to(port2) < 0);
}

static const char G31[] = "GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n";

/* A connection from a chosen loopback source address (127.0.0.x). */
static int connect_from(int port, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in b = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 10};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	inet_pton(AF_INET, src, &b.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&b, sizeof(b)) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Whether the server closed fd (end-of-stream or reset, nothing sent). */
static bool closed_by_server(int fd)
{
	char b[256];
	ssize_t n = recv(fd, b, sizeof(b), 0);
	return n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void test_http_listener__over_connection_limit_503(void **state)
{
	/* both slots busy in the core: nothing to evict, so the third gets 503 */
	static const char get[] = "GET /v1/secret/x HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_listener *l2;
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true,
				       .connection_limit = 2};
	struct verr e;
	struct http_resp r;
	int a, b, port;

	assert_int_equal(start_opts(&l2, &o, &e), 0);
	port = http_listener_port(l2);
	fake.sleep_ms = 1000;
	a = connect_to(port);
	assert_int_equal(send_all(a, get, strlen(get)), 0);
	usleep(100 * 1000);
	b = connect_to(port);
	assert_int_equal(send_all(b, get, strlen(get)), 0);
	usleep(200 * 1000);
	assert_int_equal(http_dos(port, get, &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "{\"errors\":[\"too many open connections\"]}\n");
	http_resp_free(&r);
	fake.sleep_ms = 0;
	assert_int_equal(read_resp(a, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	assert_int_equal(read_resp(b, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	close(a);
	close(b);
	usleep(200 * 1000);
	assert_int_equal(http_dos(port, get, &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	http_listener_stop(l2);
}

static void test_http_listener__evicts_oldest_slow_header(void **state)
{
	/* the table is full of connections that never finish their header: a
	 * new client is served, and the oldest of them is closed to make room */
	struct http_listener *l2;
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true,
				       .connection_limit = 3};
	struct verr e;
	struct http_resp r;
	int slow[3], port;

	assert_int_equal(start_opts(&l2, &o, &e), 0);
	port = http_listener_port(l2);
	for (int i = 0; i < 3; i++) {
		slow[i] = connect_to(port);
		assert_true(slow[i] >= 0);
		assert_int_equal(send_all(slow[i], "GET /v1/x HTTP/1.1\r\nX-A: ", 25), 0);
		usleep(50 * 1000);
	}
	assert_int_equal(http_dos(port, "GET /v1/secret/x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	assert_true(closed_by_server(slow[0]));
	for (int i = 0; i < 3; i++)
		close(slow[i]);
	http_listener_stop(l2);
}

static void test_http_listener__per_address_limit(void **state)
{
	struct http_listener *l2;
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true,
				       .connection_limit_per_ip = 2};
	struct verr e;
	struct http_resp r;
	int a, b, c, d, port;

	assert_int_equal(start_opts(&l2, &o, &e), 0);
	port = http_listener_port(l2);
	a = connect_from(port, "127.0.0.2");
	b = connect_from(port, "127.0.0.2");
	c = connect_from(port, "127.0.0.2"); /* the third from the address */
	assert_true(a >= 0 && b >= 0 && c >= 0);
	assert_true(closed_by_server(c));
	/* another address is not affected */
	d = connect_from(port, "127.0.0.3");
	assert_true(d >= 0);
	assert_int_equal(send_all(d, G31, strlen(G31)), 0);
	assert_int_equal(read_resp(d, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	/* a slot freed by the address is usable again */
	close(a);
	usleep(200 * 1000);
	close(c);
	c = connect_from(port, "127.0.0.2");
	assert_int_equal(send_all(c, G31, strlen(G31)), 0);
	assert_int_equal(read_resp(c, &r, false), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	close(b);
	close(c);
	close(d);
	http_listener_stop(l2);
}

static void test_http_listener__header_deadline_ignores_trickle(void **state)
{
	/* one header byte every 300 ms keeps MHD's idle timer (30 s) happy; the
	 * header deadline (1 s) closes the connection anyway */
	struct http_listener *l2;
	struct http_listener_opts o = {.address = "127.0.0.1:0", .tls_disable = true,
				       .idle_timeout = 30, .read_header_timeout = 1};
	struct verr e;
	double t0;
	int fd, port;
	bool closed = false;

	assert_int_equal(start_opts(&l2, &o, &e), 0);
	port = http_listener_port(l2);
	fd = connect_to(port);
	t0 = now_s();
	assert_int_equal(send_all(fd, "GET /v1/x HTTP/1.1\r\nX-A: ", 25), 0);
	while (now_s() - t0 < 5) {
		if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
			closed = true;
			break;
		}
		struct timeval tv = {.tv_usec = 300 * 1000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char b[64];
		ssize_t n = recv(fd, b, sizeof(b), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			closed = true;
			break;
		}
		assert_true(n < 0); /* never an answer */
	}
	assert_true(closed);
	assert_true(now_s() - t0 > 0.8);
	assert_true(now_s() - t0 < 4.0); /* generous: shared, loaded CI cores */
	close(fd);
	http_listener_stop(l2);
}

static void test_http_listener__strict_framing_on_the_wire(void **state)
{
	static const struct {
		const char *req;
		int status;
		const char *msg;
	} cases[] = {
		{"PUT /v1/k HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
		 "invalid Content-Length header"},
		{"PUT /v1/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1e20\r\n\r\n", 400,
		 "invalid Content-Length header"},
		{"PUT /v1/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
		 "unsupported transfer encoding"},
		{"PUT /v1/k HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400,
		 "conflicting Content-Length headers"},
		{"PUT /v1/k HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "0\r\n\r\n",
		 400, "must not both be set"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp r;
		int fd = connect_to(PORT), extra;
		char rest[512];
		assert_int_equal(send_all(fd, cases[i].req, strlen(cases[i].req)), 0);
		assert_int_equal(read_resp(fd, &r, false), 0);
		assert_int_equal(r.status, cases[i].status);
		assert_non_null(strstr(r.body, cases[i].msg));
		/* exactly one answer, then the connection is closed */
		extra = (int)recv(fd, rest, sizeof(rest), 0);
		assert_true(extra <= 0);
		http_resp_free(&r);
		close(fd);
	}
	/* a NUL inside the token never authenticates as its prefix */
	{
		static const char req[] = "GET /v1/x HTTP/1.1\r\nX-Vault-Token: root\0junk\r\n\r\n";
		struct http_resp r;
		int before = fake.calls;
		int fd = connect_to(PORT);
		assert_int_equal(send_all(fd, req, sizeof(req) - 1), 0);
		assert_int_equal(read_resp(fd, &r, false), 0);
		assert_int_equal(r.status, 400);
		assert_int_equal(fake.calls, before); /* the core never saw it */
		http_resp_free(&r);
		close(fd);
	}
	still_serves();
}

static void test_http_listener__pipelined_good_then_bad(void **state)
{
	/* one read holding a good request and a bad one: a single 400, then the
	 * connection closes (the core sees neither) */
	static const char req[] = "GET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n"
				  "PUT /v1/b HTTP/1.1\r\nContent-Length: abc\r\n\r\n";
	struct http_resp r;
	int before = fake.calls;
	int fd = connect_to(PORT);
	assert_int_equal(send_all(fd, req, sizeof(req) - 1), 0);
	assert_int_equal(read_resp(fd, &r, false), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "invalid Content-Length header"));
	http_resp_free(&r);
	assert_true(closed_by_server(fd));
	assert_int_equal(fake.calls, before);
	close(fd);
}

static void test_http_listener__bad_address(void **state)
{
	struct http_listener *l2 = NULL;
	struct http_listener_opts o = {.address = "127.0.0.1", .tls_disable = true};
	struct verr e;
	assert_int_equal(start_opts(&l2, &o, &e), VERR_INVALID);
	assert_null(l2);
	o.address = http_listener_address(L); /* in use */
	assert_int_equal(start_opts(&l2, &o, &e), VERR_UNAVAILABLE);
	o.address = "[::1]:0";
	if (start_opts(&l2, &o, &e) == 0) { /* IPv6 may be off */
		assert_true(strncmp(http_listener_address(l2), "[::1]:", 6) == 0);
		http_listener_stop(l2);
	}
	o.address = "127.0.0.1:0";
	o.tls_disable = false; /* TLS without a certificate */
	assert_int_equal(start_opts(&l2, &o, &e), VERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_http_listener__address_and_port, per_test),
		cmocka_unit_test_setup(test_http_listener__get_envelope_and_headers, per_test),
		cmocka_unit_test_setup(test_http_listener__methods_on_the_wire, per_test),
		cmocka_unit_test_setup(test_http_listener__head_has_no_body, per_test),
		cmocka_unit_test_setup(test_http_listener__bearer_token, per_test),
		cmocka_unit_test_setup(test_http_listener__204_and_errors, per_test),
		cmocka_unit_test_setup(test_http_listener__body_cap_413, per_test),
		cmocka_unit_test_setup(test_http_listener__nul_in_path, per_test),
		cmocka_unit_test_setup(test_http_listener__ten_thousand_headers, per_test),
		cmocka_unit_test_setup(test_http_listener__very_long_path, per_test),
		cmocka_unit_test_setup(test_http_listener__slow_client_does_not_block, per_test),
		cmocka_unit_test_setup(test_http_listener__slow_core_does_not_block, per_test),
		cmocka_unit_test_setup(test_http_listener__inline_and_offloaded, per_test),
		cmocka_unit_test_setup(test_http_listener__would_block_runs_again_on_a_worker, per_test),
		cmocka_unit_test_setup(test_http_listener__keep_alive, per_test),
		cmocka_unit_test_setup(test_http_listener__graceful_stop, per_test),
		cmocka_unit_test_setup(test_http_listener__over_connection_limit_503, per_test),
		cmocka_unit_test_setup(test_http_listener__evicts_oldest_slow_header, per_test),
		cmocka_unit_test_setup(test_http_listener__per_address_limit, per_test),
		cmocka_unit_test_setup(test_http_listener__header_deadline_ignores_trickle, per_test),
		cmocka_unit_test_setup(test_http_listener__strict_framing_on_the_wire, per_test),
		cmocka_unit_test_setup(test_http_listener__pipelined_good_then_bad, per_test),
		cmocka_unit_test_setup(test_http_listener__bad_address, per_test),
	};
	if (getenv("HTTP_TEST_FILTER"))
		cmocka_set_test_filter(getenv("HTTP_TEST_FILTER"));
	POOL = 0;
	int failed = cmocka_run_group_tests_name("thread per connection", tests, setup, teardown);
	POOL = 1;
	failed += cmocka_run_group_tests_name("epoll, one event thread", tests, setup, teardown);
	return failed;
}
