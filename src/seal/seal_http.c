/*
 * seal_http.c - the seals' HTTPS client (seal_http.h).
 */
#include "seal/seal_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/curl_dl.h"

#define SEAL_HTTP_MAX_ANSWER (1 << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t body_write(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	if (b->len + size * n > SEAL_HTTP_MAX_ANSWER)
		return 0;
	buf_add(b, p, size * n);
	return b->failed ? 0 : size * n;
}

int seal_http(const char *method, const char *url, const char *const *headers,
	      const char *req_body, size_t req_len, const struct seal_http_opts *o, long *status,
	      char **body, struct verr *err)
{
	*status = 0;
	*body = NULL;
	pthread_once(&curl_once, curl_init_once);
	CURL *h = curl_easy_init();
	if (!h)
		return verr_set(err, VERR_UNAVAILABLE, "libcurl is not available");
	struct curl_slist *hdrs = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hdrs = curl_slist_append(hdrs, headers[i]);
	/* no "Expect: 100-continue" round trip */
	hdrs = curl_slist_append(hdrs, "Expect:");
	struct buf b;
	if (o && o->secret_answer)
		buf_init_secret(&b, 1024);
	else
		buf_init(&b, 1024);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	long tmo = o && o->timeout_ms ? o->timeout_ms : 10000L;
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo < 3000L ? tmo : 3000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o && o->insecure ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o && o->insecure ? 0L : 2L);
	if (o && o->ca_file && *o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	if (o && o->client_cert && *o->client_cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, o->client_cert);
	if (o && o->client_key && *o->client_key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, o->client_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req_body ? req_body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(req_body ? req_len : 0));
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(h);
	int rc = 0;
	if (cc != CURLE_OK) {
		const char *why = *errbuf ? errbuf : curl_easy_strerror(cc);
		if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
			rc = verr_set(err, VERR_UNAVAILABLE, "TLS verification of %s failed: %.200s", url, why);
		else if (cc == CURLE_WRITE_ERROR)
			rc = verr_set(err, VERR_UNAVAILABLE, "the answer of %s is larger than %d bytes", url,
				      SEAL_HTTP_MAX_ANSWER);
		else
			rc = verr_set(err, VERR_UNAVAILABLE, "could not reach %s: %.200s", url, why);
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		*body = buf_take(&b, NULL);
		if (!*body)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	buf_free(&b);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}
