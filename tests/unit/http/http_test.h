/*
 * http_test.h - shared by the listener tests in tests/unit/http: a test
 * double for core_handle_request (records what the HTTP layer handed it and
 * answers with a per-test script) and a tiny raw-socket HTTP/1.1 client, so
 * the tests see exact bytes. Include once per test executable.
 */
#ifndef COFFER_TESTS_HTTP_TEST_H
#define COFFER_TESTS_HTTP_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/core.h"
#include "http/http.h"

typedef int (*script_fn)(struct logical_request *req, struct logical_response *resp,
			 struct verr *err);

/* What the fake core saw last (deep copies). */
static struct {
	pthread_mutex_t mu;
	script_fn script;
	int calls;
	int op;
	char path[4096];
	char *data;    /* compact JSON */
	char *headers; /* compact JSON */
	char token[256];
	bool has_token;
	char remote_addr[64];
	int remote_port;
	char request_id[40];
	char *cert_pem;
	unsigned sleep_ms; /* make the core slow */
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static inline void fake_reset(script_fn script)
{
	pthread_mutex_lock(&fake.mu);
	free(fake.data);
	free(fake.headers);
	free(fake.cert_pem);
	fake.data = fake.headers = fake.cert_pem = NULL;
	fake.calls = 0;
	fake.op = 0;
	fake.path[0] = fake.token[0] = fake.remote_addr[0] = fake.request_id[0] = '\0';
	fake.has_token = false;
	fake.script = script;
	fake.sleep_ms = 0;
	pthread_mutex_unlock(&fake.mu);
}

int core_handle_request(struct core *c, struct logical_request *req,
			struct logical_response *resp, struct verr *err)
{
	script_fn script;
	unsigned sleep_ms;
	pthread_mutex_lock(&fake.mu);
	fake.calls++;
	fake.op = req->op;
	snprintf(fake.path, sizeof(fake.path), "%s", req->path);
	free(fake.data);
	free(fake.headers);
	free(fake.cert_pem);
	fake.data = json_dumps(req->data, JSON_COMPACT);
	fake.headers = json_dumps(req->headers, JSON_COMPACT);
	fake.has_token = req->client_token != NULL;
	snprintf(fake.token, sizeof(fake.token), "%s", req->client_token ? req->client_token : "");
	snprintf(fake.remote_addr, sizeof(fake.remote_addr), "%s",
		 req->remote_addr ? req->remote_addr : "");
	fake.remote_port = req->remote_port;
	snprintf(fake.request_id, sizeof(fake.request_id), "%s", req->request_id);
	fake.cert_pem = req->client_cert_pem ? strdup(req->client_cert_pem) : NULL;
	script = fake.script;
	sleep_ms = fake.sleep_ms;
	pthread_mutex_unlock(&fake.mu);
	if (sleep_ms)
		usleep(sleep_ms * 1000);
	if (script)
		return script(req, resp, err);
	resp->data = json_pack("{s:s}", "path", req->path);
	return 0;
}

struct http_resp {
	int status;
	char *raw;      /* whole response */
	size_t raw_len;
	char *body;     /* points into raw */
	size_t body_len;
};

static inline void http_resp_free(struct http_resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

/* Value of a response header (copied into buf), or NULL. */
static inline const char *http_resp_header(const struct http_resp *r, const char *name, char *buf,
				    size_t cap)
{
	const char *p = r->raw ? strstr(r->raw, "\r\n") : NULL;
	size_t nl = strlen(name);
	while (p && p + 2 < r->body) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			snprintf(buf, cap, "%.*s", (int)(e - v), v);
			return buf;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

static inline int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 20};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static inline int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Parse one response from buf (returns bytes used, 0 if incomplete). */
static inline size_t parse_resp(struct http_resp *out, const char *buf, size_t n, bool head)
{
	const char *end = NULL;
	for (size_t i = 0; i + 3 < n; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			end = buf + i + 4;
			break;
		}
	if (!end)
		return 0;
	size_t hlen = (size_t)(end - buf), blen = 0;
	char tmp[64];
	struct http_resp probe = {.raw = (char *)buf, .body = (char *)end};
	if (!head && http_resp_header(&probe, "Content-Length", tmp, sizeof(tmp)))
		blen = strtoul(tmp, NULL, 10);
	if (hlen + blen > n)
		return 0;
	out->raw = malloc(hlen + blen + 1);
	memcpy(out->raw, buf, hlen + blen);
	out->raw[hlen + blen] = '\0';
	out->raw_len = hlen + blen;
	out->body = out->raw + hlen;
	out->body_len = blen;
	out->status = atoi(out->raw + 9);
	return hlen + blen;
}

/* Read exactly one response on an open connection. */
static inline int read_resp(int fd, struct http_resp *out, bool head)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	memset(out, 0, sizeof(*out));
	for (;;) {
		if (n && parse_resp(out, buf, n, head))
			break;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = recv(fd, buf + n, cap - n, 0);
		if (r <= 0) {
			if (getenv("HTTP_TEST_DEBUG"))
				fprintf(stderr, "recv=%zd errno=%d after %zu bytes: %.*s\n", r, errno, n, (int)n, buf);
			free(buf);
			return -1;
		}
		n += (size_t)r;
	}
	free(buf);
	return 0;
}

/* One exchange on a fresh connection: send `req` bytes, read a response. */
static inline int http_do(int port, const char *req, size_t len, struct http_resp *out)
{
	int fd = connect_to(port), rc;
	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return -1;
	/* the server may answer (431, 413) and close before we finish sending:
	 * read whatever it said anyway */
	send_all(fd, req, len);
	rc = read_resp(fd, out, strncmp(req, "HEAD ", 5) == 0);
	close(fd);
	return rc;
}

static inline int http_dos(int port, const char *req, struct http_resp *out)
{
	return http_do(port, req, strlen(req), out);
}

#endif
