/*
 * forward.c - request forwarding from a standby to the active node (Vault's
 * default HA mode): the request as received (method, target, headers, body)
 * goes to https://<active cluster_addr><target> over mutual TLS with the
 * cluster certificate, and the active node's answer (status, body,
 * Content-Type, Location) is relayed unchanged. The client's address
 * travels in X-Coffer-Forwarded-For, which only the cluster listener
 * believes (listener.c), so the active node audits the real client.
 *
 * The server is trusted only if it presents the cluster certificate
 * (pinned as the sole CA; host names are not checked: nodes are reached by
 * address and the certificate is the cluster's, not a host's).
 *
 * Handles are pooled (each keeps its connection to the active node alive);
 * a pooled handle that pointed at another active is simply reconnected by
 * libcurl. pool_mu guards the pool.
 */
#include "http/http_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"
#include "util/buf.h"
#include "util/curl_dl.h"

#define FORWARD_TIMEOUT_MS 90000L
#define FORWARD_MAX_BODY (64L * 1024 * 1024)

#define POOL_MAX 32
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static size_t npool;

static CURL *handle_get(void)
{
	CURL *h = NULL;
	pthread_mutex_lock(&pool_mu);
	if (npool)
		h = pool[--npool];
	pthread_mutex_unlock(&pool_mu);
	return h ? h : curl_easy_init();
}

static void handle_put(CURL *h)
{
	pthread_mutex_lock(&pool_mu);
	if (npool < POOL_MAX) {
		pool[npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	if (h)
		curl_easy_cleanup(h);
}

struct fwd_out {
	struct buf body;
	char *content_type, *location;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct fwd_out *o = ud;
	if (o->body.len + sz * n > (size_t)FORWARD_MAX_BODY)
		return 0;
	buf_add(&o->body, p, sz * n);
	return o->body.failed ? 0 : sz * n;
}

struct fwd_in {
	int fd;
	off_t off;
};

static size_t on_spool_read(char *p, size_t sz, size_t n, void *ud)
{
	struct fwd_in *i = ud;
	ssize_t r = pread(i->fd, p, sz * n, i->off);
	if (r < 0)
		return CURL_READFUNC_ABORT;
	i->off += r;
	return (size_t)r;
}

static char *header_value(const char *line, size_t n, const char *name)
{
	size_t nl = strlen(name);
	if (n <= nl + 1 || strncasecmp(line, name, nl) || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct fwd_out *o = ud;
	size_t len = sz * n;
	char *v;
	if (!o->content_type && (v = header_value(p, len, "Content-Type")))
		o->content_type = v;
	else if (!o->location && (v = header_value(p, len, "Location")))
		o->location = v;
	return len;
}

/* Headers a proxy must not pass on, and ours, which the client must not
 * be able to set. */
static bool hop_by_hop(const char *name)
{
	static const char *const skip[] = {"host",           "content-length", "connection",
					   "keep-alive",     "transfer-encoding", "te",
					   "trailer",        "upgrade",        "expect",
					   "proxy-connection", "x-coffer-forwarded-for", NULL};
	for (int i = 0; skip[i]; i++)
		if (!strcasecmp(name, skip[i]))
			return true;
	return false;
}

int http__forward(const struct http_raw_request *in, const struct core_forward *f,
		  struct http_reply *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	if (!curl_dl_load())
		return verr_set(err, VERR_UNAVAILABLE, "libcurl is not available for forwarding");
	if (in->target_len != strlen(in->target))
		return verr_set(err, VERR_INVALID, "bad request target");
	const char *addr = f->cluster_addr;
	if (!strncmp(addr, "https://", 8))
		addr += 8;
	else if (!strncmp(addr, "http://", 7))
		addr += 7; /* the cluster port is always TLS */
	size_t al = strlen(addr);
	while (al && addr[al - 1] == '/')
		al--;
	struct buf url = {0};
	buf_str(&url, "https://");
	buf_add(&url, addr, al);
	buf_str(&url, in->target);
	CURL *h = url.failed ? NULL : handle_get();
	if (!h) {
		buf_free(&url);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	struct curl_slist *hdr = NULL;
	struct buf line = {0};
	for (size_t i = 0; i < in->nheaders; i++) {
		const char *name = in->headers[i].name, *value = in->headers[i].value;
		if (hop_by_hop(name) || strpbrk(value, "\r\n"))
			continue;
		line.len = 0;
		buf_printf(&line, "%s: %s", name, value);
		if (!line.failed)
			hdr = curl_slist_append(hdr, line.p);
	}
	line.len = 0;
	buf_printf(&line, "X-Coffer-Forwarded-For: %s", in->remote_addr ? in->remote_addr : "");
	if (!line.failed)
		hdr = curl_slist_append(hdr, line.p);
	hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	buf_free(&line);

	struct fwd_out o = {0};
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_blob cert = {f->cert_pem, strlen(f->cert_pem), CURL_BLOB_COPY};
	struct curl_blob key = {f->key_pem, f->key_len, CURL_BLOB_COPY};
	curl_easy_setopt(h, CURLOPT_URL, url.p);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, in->method);
	struct fwd_in spool = {in->body_is_fd ? in->body_fd : -1, 0};
	if (in->body_is_fd) { /* a spooled snapshot upload: stream it */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_spool_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &spool);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)in->body_len);
	} else if (in->body && in->body_len) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, in->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in->body_len);
	} else if (!strcmp(in->method, "GET") || !strcmp(in->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, in->method);
	} else {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	curl_easy_setopt(h, CURLOPT_NOBODY, !strcmp(in->method, "HEAD") ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &o);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &o);
	curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	struct curl_blob ca = {f->cert_pem, strlen(f->cert_pem), CURL_BLOB_COPY};
	curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, FORWARD_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	/* the easy handle keeps the option pointers: clear what points here */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	buf_free(&url);
	if (cc != CURLE_OK || status < 100) {
		verr_set(err, VERR_UNAVAILABLE, "forwarding to the active node failed: %s",
			 cerr[0] ? cerr : curl_easy_strerror(cc));
		curl_easy_cleanup(h);
		buf_free(&o.body);
		free(o.content_type);
		free(o.location);
		return -1;
	}
	handle_put(h);
	out->status = (int)status;
	out->body = buf_take(&o.body, &out->body_len);
	if (!out->body_len) {
		free(out->body);
		out->body = NULL;
	}
	out->content_type = o.content_type;
	out->location = o.location;
	return 0;
}
