/*
 * seal_http.h - one HTTPS POST for the seals that talk to a key service
 * over HTTP (awskms, transit): libcurl through util/curl_dl, TLS 1.2+,
 * peer verified unless explicitly skipped, bounded time and answer size.
 * Internal to src/seal/ (not part of the seal interface).
 *
 * Errors: VERR_UNAVAILABLE when the service cannot be reached or times out
 * (the message names the URL and libcurl's reason, never the body); a TLS
 * verification failure is VERR_UNAVAILABLE too, with its own message.
 * Any HTTP status is success here: the caller interprets *status and *body.
 * Thread-safe (one curl handle per call).
 */
#ifndef COFFER_SEAL_SEAL_HTTP_H
#define COFFER_SEAL_SEAL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/verr.h"

struct seal_http_opts {
	const char *ca_file;     /* PEM bundle, NULL: the system's */
	const char *client_cert; /* PEM files for mutual TLS, NULL: none */
	const char *client_key;
	bool insecure;           /* skip peer verification (tls_skip_verify) */
	long timeout_ms;         /* 0: 10 s (the connect timeout is at most 3 s) */
	bool secret_answer;      /* the answer holds a secret: *body is built in
				  * a wiping buffer; the caller wipes it too */
};

/* method "POST", "GET" or "PUT" (no body); headers: NULL-terminated "Name: value" lines
 * (may hold a token: they are wiped by the caller). *body: malloc'd
 * NUL-terminated answer (free()). */
int seal_http(const char *method, const char *url, const char *const *headers,
	      const char *req_body, size_t req_len, const struct seal_http_opts *o, long *status,
	      char **body, struct verr *err);

#endif
