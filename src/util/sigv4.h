/*
 * sigv4.h - AWS Signature Version 4 (the header form), our own signer.
 *
 * Used by the awskms seal for KMS's JSON 1.1 protocol. libcurl's built-in
 * CURLOPT_AWS_SIGV4 is not used: it signs the Host header without a
 * non-default port, which a real endpoint (or the local KMS peer) rejects.
 * tests/unit/util/sigv4.c checks the output byte for byte against the
 * signer of botocore (python3-botocore).
 *
 * What is signed: the method, the canonical URI (each segment
 * percent-encoded, '/' kept), the canonical query string (sorted), the
 * headers given plus host and x-amz-date (and x-amz-security-token when a
 * session token is given), all lower-cased and sorted, values trimmed with
 * inner runs of spaces collapsed, and the SHA-256 of the body.
 * Thread-safe, no state. The secret key is only fed to HMAC; the derived
 * signing key is wiped.
 */
#ifndef COFFER_UTIL_SIGV4_H
#define COFFER_UTIL_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/verr.h"

struct sigv4_header {
	const char *name, *value;
};

struct sigv4_request {
	const char *method;  /* "POST" */
	const char *host;    /* the Host header as sent: "kms.us-east-1.amazonaws.com" or "127.0.0.1:8443" */
	const char *path;    /* "/" (NULL: "/") */
	const char *query;   /* raw query without '?', or NULL */
	const struct sigv4_header *headers; /* extra headers to sign (content-type, x-amz-target) */
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
	const char *region, *service;
	const char *access_key, *secret_key, *session_token; /* token may be NULL */
	time_t now;
};

#define SIGV4_DATE_LEN 17 /* "20240101T000000Z" + NUL */

/* *authorization: the Authorization header value (malloc'd); amz_date: the
 * X-Amz-Date header value to send with it. VERR_INVALID for a missing field. */
int sigv4_sign(char **authorization, char amz_date[SIGV4_DATE_LEN], const struct sigv4_request *r,
	       struct verr *err);

#endif
