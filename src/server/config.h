/*
 * config.h - the server configuration (`coffer server -config=FILE`): the
 * typed result of reading one or more HCL/JSON files in Vault's format.
 *
 * Files are parsed by util/hcl.h (HCL or JSON, same shapes) and applied in
 * order onto one struct server_config; a directory contributes its *.hcl and
 * *.json files in name order (dot-files skipped). Merge rules, as in Vault:
 * top-level scalars from a later file win; listeners and seals accumulate;
 * a later file's storage/ha_storage replaces an earlier file's. Within one
 * file a second storage (or ha_storage) stanza is an error.
 *
 * What is checked here: every key is known (unknown keys are errors at the
 * top level and inside listener/telemetry blocks; storage and seal options
 * are free-form and belong to the backend), every value has the right type,
 * durations parse, TLS listeners name their certificate and key, storage
 * "file" names a path, and some storage is configured. What is NOT checked
 * here: whether a storage or seal TYPE exists -- server start-up checks
 * types against its registry.
 *
 * Errors are one line: "FILE:LINE: STANZA: KEY: problem", e.g.
 *   coffer.hcl:7: listener "tcp": address: expected a string, found a number
 *   coffer.hcl:3: unknown key "storge"
 * (LINE is omitted for JSON files, which carry no line information.)
 *
 * The struct is immutable after loading; read it from any thread.
 */
#ifndef COFFER_SERVER_CONFIG_H
#define COFFER_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/verr.h"

#define CONFIG_DEFAULT_ADDRESS "127.0.0.1:8200"
#define CONFIG_DEFAULT_MAX_REQUEST_SIZE 33554432   /* 32 MiB */
#define CONFIG_DEFAULT_MAX_REQUEST_DURATION 90     /* seconds */
#define CONFIG_DEFAULT_PERIODIC_INTERVAL 60        /* seconds: backends' periodic hook */
#define CONFIG_DEFAULT_LEASE_TTL (768 * 3600)      /* 768h */

/* storage, ha_storage and seal stanzas: `storage "TYPE" { options }`. */
#define CONFIG_MAX_SEALS 3

struct config_stanza {
	char *type;
	/* The stanza's keys as a JSON object (owned). Values are what was
	 * written: strings, integers, reals, booleans; nested blocks (raft's
	 * retry_join) appear as arrays of objects, nested objects as objects. */
	json_t *options;
	char *file; /* where it was written, for start-up errors */
	int line;   /* 0 for JSON files */
	bool disabled; /* seal only: `disabled = true` (seal migration) */
};

enum config_tls_version { CONFIG_TLS12 = 12, CONFIG_TLS13 = 13 };

struct config_listener {
	char *type;    /* "tcp" (the only type accepted) */
	char *address; /* default CONFIG_DEFAULT_ADDRESS */
	char *cluster_address; /* NULL if unset */
	bool tls_disable;
	char *tls_cert_file, *tls_key_file, *tls_client_ca_file; /* NULL if unset */
	enum config_tls_version tls_min_version; /* default CONFIG_TLS12 */
	enum config_tls_version tls_max_version; /* default CONFIG_TLS13 */
	char *tls_cipher_suites; /* NULL if unset */
	bool tls_require_and_verify_client_cert;
	bool tls_disable_client_certs;
	/* Bytes. As written 0 means the default (32 MiB); a negative value
	 * disables the limit and is stored here as -1. */
	int64_t max_request_size;
	/* Seconds; 0 means "use the server's default_max_request_duration". */
	int64_t max_request_duration;
	/* 0: a thread per connection; n: epoll with n worker threads
	 * (docs/http.md "Threading model") */
	int64_t thread_pool_size;
	/* Slow-client limits (docs/http.md "Limits"); 0 = the listener's
	 * default. Durations in seconds. */
	int64_t http_read_header_timeout, http_read_timeout, http_idle_timeout;
	int64_t max_connections, max_connections_per_ip;
	bool unauthenticated_metrics_access; /* telemetry { } inside the listener */
	json_t *options; /* every key as written (owned), incl. ones kept only for compatibility */
	char *file;
	int line;
};

struct config_telemetry {
	int64_t prometheus_retention_time; /* seconds; default 24h; 0 disables /sys/metrics */
	bool disable_hostname;
	bool enable_hostname_label;
	int64_t usage_gauge_period; /* seconds; default 10m */
	int64_t maximum_gauge_cardinality; /* default 500 */
	char *metrics_prefix;  /* NULL: "vault" */
	char *statsd_address, *statsite_address, *dogstatsd_addr; /* NULL if unset */
	json_t *options; /* every telemetry key as written (owned; {} if none) */
};

struct server_config {
	struct config_stanza *storage;    /* never NULL after a successful load */
	struct config_stanza *ha_storage; /* NULL if unset */
	struct config_stanza *seals;      /* 0 to CONFIG_MAX_SEALS (multi-seal), or 2 (migration: one disabled) */
	size_t nseals;
	struct config_listener *listeners;
	size_t nlisteners;
	struct config_telemetry telemetry;

	char *api_addr, *cluster_addr, *cluster_name; /* NULL if unset */
	char *log_level;  /* NULL if unset ("info") */
	char *log_format; /* NULL if unset; "standard" or "json" */
	char *log_file, *pid_file, *plugin_directory, *license_path; /* NULL if unset */
	/* log_file rotation (util/log.h): bytes (0: no size limit), archives
	 * kept (0: all, -1: none), seconds (0 when unset: Vault's 24h) */
	int64_t log_rotate_bytes, log_rotate_max_files, log_rotate_duration;

	bool disable_mlock;
	bool ui;
	bool disable_cache;
	bool disable_clustering;
	bool disable_sealwrap;
	bool disable_performance_standby;
	bool disable_printable_check;
	bool raw_storage_endpoint;
	bool introspection_endpoint;
	bool allow_audit_log_prefixing;
	bool enable_response_header_hostname;
	bool enable_response_header_raft_node_id;

	int64_t default_lease_ttl; /* seconds; default 768h */
	int64_t max_lease_ttl;     /* seconds; default 768h */
	int64_t default_max_request_duration; /* seconds; default 90s */
	int64_t periodic_interval; /* seconds; default 60s: the backends' periodic hook */
	int64_t cache_size;        /* entries; 0 = default */
	int64_t plugin_file_uid;
	int64_t plugin_file_permissions; /* 0 if unset */
	char *cluster_cipher_suites;
	char *log_requests_level;
	json_t *experiments; /* array of strings (owned), empty if unset */
};

/* Load and merge the given files/directories (in order). npaths >= 1.
 * Caller owns *out (config_free). Errors: VERR_INVALID (syntax, keys,
 * values, missing storage), VERR_NOT_FOUND (unreadable path),
 * VERR_TOO_LARGE (a file over HCL_MAX_INPUT). */
int config_load(struct server_config **out, char *const *paths, size_t npaths, struct verr *err);
/* Load one document from memory; name is used in messages. */
int config_load_buffer(struct server_config **out, const char *buf, size_t len, const char *name,
	struct verr *err);
/* The dev-mode configuration: inmem storage, one TCP listener with TLS
 * disabled on listen_addr (NULL: 127.0.0.1:8200), disable_mlock, ui,
 * raw_storage_endpoint, Prometheus retention 24h. */
int config_dev(struct server_config **out, const char *listen_addr, struct verr *err);
void config_free(struct server_config *c);

/* A listener's effective body-size cap in bytes, or -1 for "no limit". */
int64_t config_listener_max_request_size(const struct config_listener *l);

#endif
