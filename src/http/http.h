/*
 * http.h - the HTTP(S) listener: Vault's wire conventions on top of
 * libmicrohttpd.
 *
 * Sits between the network and the core (DESIGN.md "The path of a request"):
 * it parses HTTP, maps method + /v1/ path + query + body to a struct
 * logical_request, calls core_handle_request() once per request, and writes
 * Vault's JSON envelope or {"errors":[...]} with the status from
 * http_status_for_verr(). It knows nothing about tokens or storage.
 *
 * Threads: one listener runs its own libmicrohttpd threads (see docs/http.md
 * for the model); core_handle_request() is called on those threads,
 * concurrently. http_listener_start/stop/reload_tls may be called from any
 * one control thread (not from inside a request).
 */
#ifndef COFFER_HTTP_HTTP_H
#define COFFER_HTTP_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "util/verr.h"

struct logical_request;

struct core;
struct http_listener;

struct http_listener_opts {
	/* "127.0.0.1:8200", "[::1]:8200", "0.0.0.0:8200", ":8200", "localhost:8200".
	 * Port 0 picks a free port; read it back with http_listener_address(). */
	const char *address;
	bool tls_disable;
	/* PEM files. The cert file may hold the chain (leaf first). */
	const char *tls_cert_file, *tls_key_file;
	/* When set, a client certificate, if presented, must chain to this CA
	 * (handshake fails otherwise). Without it a presented certificate is
	 * passed to the core unverified (auth/cert verifies it). */
	const char *tls_client_ca_file;
	const char *tls_min_version; /* "tls12" (default) | "tls13" */
	bool tls_require_client_cert; /* handshake fails without a client cert */
	int64_t max_request_size;     /* body bytes; <= 0: 32 MiB */
	int64_t max_request_duration; /* seconds to receive a request; <= 0: 90 */
	unsigned connection_limit;    /* open connections; 0: 4096 */
	/* Open connections from one client address (IPv4 address, IPv6 /64);
	 * past it new connections from that address are closed at accept.
	 * 0: 256. */
	unsigned connection_limit_per_ip;
	unsigned idle_timeout;        /* seconds a connection may sit idle; 0: 30 */
	/* Seconds from accept (or from the end of the previous request plus
	 * idle_timeout) to the end of the request header, however slowly the
	 * bytes trickle in (Vault's http_read_header_timeout). 0: 10. */
	unsigned read_header_timeout;
	/* Seconds from the end of the header to the end of the body (Vault's
	 * http_read_timeout). 0: 30. */
	unsigned read_timeout;
	/* 0 (default): one thread per connection, so a slow core call blocks only
	 * its own connection. n > 0: epoll with n MHD threads; requests that may
	 * block are offloaded to workers (inline_ok), so a slow core call still
	 * blocks only its own connection. See docs/http.md for measurements. */
	unsigned thread_pool_size;
	/* epoll mode: true if the core will answer req without blocking (no
	 * storage or network round trip, no fsync): it then runs on the MHD
	 * thread; every other request runs on an offload worker while its
	 * connection is suspended. NULL: every request is offloaded. */
	bool (*inline_ok)(struct core *core, const struct logical_request *req);
	/* where snapshot uploads (POST sys/storage/raft/snapshot[-force]) are
	 * spooled: unlinked 0600 files, exempt from max_request_size (as in
	 * Vault). NULL: $TMPDIR, else /var/tmp. */
	const char *spool_dir;
	bool unauthenticated_metrics_access; /* GET sys/metrics without a token (http/metrics.c) */
	/* The cluster port (cluster_addr): always TLS 1.3 with the cluster's
	 * own certificate from the core (none while sealed: handshakes fail),
	 * client certificates required and checked against it; serves the
	 * requests standbys forward (tls_* options are ignored). */
	bool cluster;
};

/* Bind, listen and start serving. On success *out is owned by the caller and
 * must be released with http_listener_stop(). Errors: VERR_INVALID (bad
 * address, unreadable or mismatched cert/key, bad tls_min_version),
 * VERR_UNAVAILABLE (bind/listen failed, e.g. address in use),
 * VERR_INTERNAL. Ignores SIGPIPE process-wide (writes to closed sockets must
 * not kill the server). `core` is borrowed and must outlive the listener. */
int http_listener_start(struct http_listener **out, const struct http_listener_opts *o,
			struct core *core, struct verr *err);

/* Re-read tls_cert_file / tls_key_file (and tls_client_ca_file) and use them
 * for every new TLS connection; connections already open keep the old
 * credentials until they close. On error the old credentials stay in use.
 * A no-op returning 0 for a plain-HTTP listener. Thread-safe. */
int http_listener_reload_tls(struct http_listener *l, struct verr *err);

/* Stop accepting, wait (at most 10 s) for requests in flight to finish,
 * close every connection and free. NULL is a no-op. */
void http_listener_stop(struct http_listener *l);

/* "127.0.0.1:8200" / "[::1]:8200": the address actually bound (port 0
 * resolved). Borrowed; valid until http_listener_stop(). */
const char *http_listener_address(const struct http_listener *l);
/* The bound port. */
int http_listener_port(const struct http_listener *l);

/* A standby's heartbeat to the active node's cluster port (for
 * sys/ha-status), every 2 s while this node is a standby. `core` is
 * borrowed and must outlive it; stop before freeing the core. */
struct http_echo;
int http_cluster_echo_start(struct http_echo **out, struct core *core, struct verr *err);
void http_cluster_echo_stop(struct http_echo *e);

/* The one map from a VERR_* code to an HTTP status (400, 403, 404, 405, 413,
 * 429, 500, 503, 412...). VERR_STANDBY maps to 503 here; the listener turns
 * it into a 307 when the core supplies a redirect. Unknown codes: 500. */
int http_status_for_verr(int code);

#endif
