/*
 * http_int.h - internals of src/http shared between its files, the unit
 * tests and the fuzz target. Not an API for other modules (use http.h).
 *
 * request.c   raw HTTP request -> struct logical_request (pure, fuzzed)
 * response.c  core result -> status + headers + body (pure)
 * tls.c       GnuTLS credentials: load, swap on reload, peer cert as PEM
 * guard.c     strict framing: a streaming pre-parser on every byte MHD reads
 * listener.c  libmicrohttpd glue: threads, limits, body cap, graceful stop,
 *             per-address limits, header deadlines, eviction
 */
#ifndef COFFER_HTTP_HTTP_INT_H
#define COFFER_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "logical/logical.h"
#include "http/http.h"

struct http_header {
	const char *name;  /* as received; compared case-insensitively */
	const char *value;
};

/* One request as it came off the wire (nothing decoded yet). */
struct http_raw_request {
	const char *method;               /* case-sensitive, like Go */
	const char *target;               /* raw request-target, not decoded */
	size_t target_len;                /* may include NUL bytes: rejected */
	const struct http_header *headers;
	size_t nheaders;
	const char *body;                 /* NULL if none */
	size_t body_len;
	bool body_too_large;              /* body exceeded the cap (not kept) */
	bool body_is_fd;                  /* the body was spooled to body_fd */
	int body_fd;                      /* (body_len bytes; borrowed) */
	const char *remote_addr;
	int remote_port;
	const char *client_cert_pem;      /* NULL unless a TLS client cert */
};

/* An answer the HTTP layer writes: status, optional body and headers. */
struct http_reply {
	int status;
	char *body;                       /* owned (malloc); NULL: empty */
	size_t body_len;
	bool body_is_fd;                  /* or body_len bytes of body_fd (owned) */
	int body_fd;
	char *content_type;               /* owned; NULL: none */
	char *location;                   /* owned; NULL: none */
	bool close;                       /* send Connection: close */
};
void http__reply_free(struct http_reply *r);
/* {"errors":[msg]} (or {"errors":[]} when msg is NULL or empty) + "\n". */
void http__reply_error(struct http_reply *r, int status, const char *msg);

/* A logical request and the storage its pointers borrow from. */
struct http_built {
	struct logical_request req;
	char *path;
	char *token;
	json_t *data;
	json_t *headers;
	char request_id[37];
};
void http__built_free(struct http_built *b);

/* Map a raw request to a logical request. Returns 0 when out->req is ready
 * for the core (free with http__built_free), or 1 when *reply already holds
 * the complete answer (404 outside /v1/, 405, 400 bad path/JSON/query, 413,
 * 415, 301 to a cleaned path); out is then empty. Never fails otherwise. */
int http__build_request(struct http_built *out, struct http_reply *reply,
			const struct http_raw_request *in);

/* Turn the core's result into the answer (envelope, errors, raw, redirect). */
void http__reply_from_core(struct http_reply *out, int rc, const struct logical_request *req,
			   const struct logical_response *resp, const struct verr *err);

/* Serialise compactly, reals printed with the fewest digits that round-trip;
 * appends "\n" like Go's json.Encoder. NULL on allocation failure. */
char *http__json_dump(const json_t *j, size_t *len);

/* Random (v4) UUID, lower-case, 36 chars + NUL. 0 or VERR_INTERNAL. */
int http__uuid4(char out[37]);

/* Percent-decoding; plus_as_space for query components. Returns a malloc'd
 * NUL-terminated string and its length in *n, or NULL on a bad escape.
 * The result may contain NUL bytes (callers check *n against strlen). */
char *http__unescape(const char *s, size_t len, bool plus_as_space, size_t *n);

/* guard.c: the framing scanner. Fed every byte of a connection in order, it
 * follows request boundaries (request line, headers, Content-Length or
 * chunked body) and rejects: a Content-Length that is not 1-19 digits, two
 * different Content-Lengths, Content-Length with Transfer-Encoding, a
 * Transfer-Encoding other than "chunked" (501), a NUL or other control
 * character in a header name or value, obsolete line folding, more than
 * HTTP_MAX_QUERY_ARGS query arguments. Pure (no I/O), fuzzable. */
#define HTTP_MAX_QUERY_ARGS 256
struct http_scan {
	uint64_t cl, left;          /* Content-Length; body/chunk bytes left */
	uint32_t nargs;             /* query arguments so far */
	uint8_t st, hdr, nlen, vlen;
	char name[18];              /* lower-cased header name prefix */
	char val[24];               /* Content-Length / Transfer-Encoding value */
	bool vlong, vstarted, in_query, have_cl, have_te, chunked, failed;
	bool nchunkdigits;
};
void http__scan_init(struct http_scan *s);
/* Feed n bytes. 0: nothing wrong so far. Otherwise the HTTP status to answer
 * (400, 501), *why the message, *req_off where the offending request starts
 * in buf (0 if it started in an earlier buffer); the scanner then stops. */
int http__scan(struct http_scan *s, const char *buf, size_t n, size_t *req_off, const char **why);

/* One guarded connection (embedded in the listener's connection context).
 * Only the thread serving the connection touches it after attach. */
struct http_guard {
	struct http_scan scan;
	int fd;
	void *tls_session;          /* gnutls_session_t, NULL for plain HTTP */
	bool dead, attached;
};
/* Route reads of fd through the scanner (call before MHD reads from it).
 * detach must run before the descriptor is closed. */
void http__guard_attach(struct http_guard *g, int fd, void *tls_session);
void http__guard_detach(struct http_guard *g);
/* Whether this process's recv() is the guard's (it is unless the binary was
 * linked so that libmicrohttpd binds libc's directly). */
bool http__guard_active(void);

/* tls.c: reference-counted server credentials. */
struct http_tls;
int http__tls_new(struct http_tls **out, const struct http_listener_opts *o, struct verr *err);
void http__tls_free(struct http_tls *t);
int http__tls_reload(struct http_tls *t, struct verr *err);
/* The cluster listener's credentials: the core's cluster certificate
 * (core_cluster_tls), picked up at each new connection once unsealed;
 * client certificates required and verified against it. */
struct core;
int http__tls_new_cluster(struct http_tls **out, struct core *core, struct verr *err);
/* GnuTLS priority string for the configured minimum version. */
const char *http__tls_priorities(const struct http_tls *t);
/* Attach the current credentials to a new session (gnutls_session_t);
 * returns a handle to release when the connection closes. */
void *http__tls_attach(struct http_tls *t, void *session);
void http__tls_detach(struct http_tls *t, void *handle);
/* The peer's leaf certificate as PEM (malloc'd), or NULL if none. */
char *http__tls_peer_pem(void *session);

/* forward.c: send a request a standby received to the active node's
 * cluster listener (mutual TLS with the cluster certificate) and relay its
 * answer. 0 with *out filled, or -1 with *err set (the caller then answers
 * 307/503 itself). */
struct core_forward;
int http__forward(const struct http_raw_request *in, const struct core_forward *f,
		  struct http_reply *out, struct verr *err);

/* metrics.c: GET sys/metrics answered by this node outside the pipeline
 * (unauthenticated_metrics_access, or a standby with a token the active
 * node confirms). 1 when *rep holds the answer, 0 to carry on. */
int http__metrics(struct core *core, bool unauthenticated, const struct http_built *b,
		  const struct http_raw_request *raw, struct http_reply *rep);

#endif
