/*
 * audit.h - the audit device interface: what a device type (file, socket,
 * syslog) implements so the core's audit broker (src/core/audit_broker.c)
 * can use it. One `struct audit_device_ops` per type; the server's registry
 * (src/server/registry.c) hands the NULL-terminated table of them to the core
 * in `core_opts.audit_types`. The core includes this header for the type
 * only and never calls into src/audit/ except through these pointers.
 *
 * Life of a device: the broker calls `new` with the device's options (every
 * value a string, as Vault's API sends them) and its HMAC key (kept below the
 * barrier by the broker); the device keeps its own copy of the key in secmem.
 * For every entry the broker calls `format` on the request thread, with no
 * lock held (formatting and HMAC run concurrently), then queues the line;
 * the holder of the device's writer role appends the tamper-evidence chain
 * to every queued line and calls `log` once for the batch. The role is held
 * by one thread at a time: the device's writer thread, or, for a device
 * whose `writes_inline` says so, a request thread (group commit: it writes
 * the lines queued so far, its own among them, and passes the role on).
 * `log`, `kept`, `reopen` and `tail` are only ever called by the role
 * holder, so a device needs no lock of its own.
 *
 * Errors: 0 or a negative VERR_*; option errors are VERR_INVALID (400).
 */
#ifndef COFFER_AUDIT_AUDIT_H
#define COFFER_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

/* What the broker gives a device at creation (all borrowed for the call). */
struct audit_device_env {
	const uint8_t *hmac_key;   /* the device's HMAC key ("salt") */
	size_t hmac_key_len;
	bool allow_prefixing;      /* server config allow_audit_log_prefixing */
};

/* One entry as the core describes it (docs/audit.md gives the JSON shape),
 * so a device can write it without a JSON tree being built and freed per
 * entry. Everything is borrowed for the call. A member is written when its
 * pointer is non-NULL (strings must be valid UTF-8, else the member is left
 * out, as jansson would refuse it) or its number non-zero; the core decides
 * presence (empty strings are passed as NULL where Vault leaves them out).
 * Written in this order: time, type, auth{client_token, [token entry:
 * accessor, display_name, policies, token_policies (= policies), metadata,
 * entity_id, token_type, token_ttl, token_issue_time, remaining_uses]},
 * request{id, operation, mount_point, mount_type, mount_accessor,
 * client_token, client_token_accessor, namespace{id:"root"}, path, data,
 * remote_address, remote_port}, [response{mount_point, mount_type,
 * mount_accessor, [with the backend's response: auth, secret{lease_id},
 * data, warnings, redirect, wrap_info]}], error. */
struct audit_entry {
	const char *time, *type;
	const char *client_token; /* auth.client_token and request.client_token */
	bool has_token;           /* the token entry's members follow */
	const char *accessor, *display_name, *entity_id, *token_type, *token_issue_time;
	const json_t *policies, *metadata;
	int64_t token_ttl, remaining_uses;
	const char *request_id, *operation, *mount_point, *mount_type, *mount_accessor;
	const char *client_token_accessor, *path, *remote_address;
	const json_t *request_data;
	int64_t remote_port;
	bool has_response; /* a "response" member */
	bool has_resp;     /* ... with the backend's response in it */
	const json_t *resp_auth, *resp_data, *resp_warnings;
	const json_t *resp_wrap_info; /* response.wrap_info: token hashed, and
				       * accessor, wrapped_accessor when
				       * hmac_accessor */
	bool has_secret;   /* response.secret, with lease_id when non-NULL */
	const char *lease_id, *redirect;
	const char *error;
};

/* The "type" of the entry a device's chain carries after failed writes
 * (docs/audit.md, "Failed writes"): {time, type, failed_writes, error,
 * [torn{lines, bytes, sha256}]}. `coffer audit verify` knows it by name. */
#define AUDIT_FAILURE_TYPE "audit_write_failed"

struct audit_device_ops {
	const char *type; /* "file", "socket", "syslog" */
	/* Validate the options and open the device (a file is opened, a socket
	 * connected: a device that cannot work now is refused at enable). */
	int (*new)(void **out, const json_t *options, const struct audit_device_env *env,
		   struct verr *err);
	/* Turn a raw entry (see docs/audit.md) into one line without its
	 * newline: prefix + JSON (or XML for jsonx), sensitive strings replaced
	 * by "hmac-sha256:<hex>". Thread-safe. *out is malloc'd. */
	int (*format)(char **out, size_t *len, void *dev, const json_t *entry, struct verr *err);
	/* The same line for an entry the core describes (struct audit_entry):
	 * byte for byte what `format` writes for audit_entry_json(entry). */
	int (*format_entry)(char **out, size_t *len, void *dev, const struct audit_entry *entry,
			    struct verr *err);
	/* "hmac-sha256:<hex>" of input under the device's key (malloc'd), the
	 * value sys/audit-hash returns. Thread-safe. NULL on allocation failure. */
	char *(*hash)(void *dev, const char *input);
	/* Write buf (whole lines, each ending in '\n') within timeout_ms.
	 * Writer role only. A failed write should leave nothing behind (a file
	 * truncates back to where the write started); what it cannot take back
	 * it reports through `kept`. */
	int (*log)(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err);
	/* Optional (NULL: 0): after a failed `log`, how many leading bytes of
	 * that buf remain in the log (0: none reached it, or they were rolled
	 * back). The broker then terminates the torn line and records the
	 * failure in the chain (docs/audit.md, "Failed writes"). Writer role. */
	size_t (*kept)(void *dev);
	/* Optional (NULL: false): true if `log` may run on a request thread
	 * (group commit without a hand-off to the writer thread). Asked each
	 * time the device is opened. A device whose writes may block without
	 * bound on something outside the host (a pipe, a peer) says false. */
	bool (*writes_inline)(void *dev);
	/* Close and reopen (SIGHUP, log rotation). Writer role only. */
	int (*reopen)(void *dev, struct verr *err);
	/* Optional (NULL: the log cannot be read back): copy the last bytes of
	 * the existing log (at most cap) into buf and return how many. The
	 * broker resumes the chain from them. Writer role only. */
	size_t (*tail)(void *dev, char *buf, size_t cap);
	/* The bound on one write, milliseconds (socket: write_timeout). */
	int64_t (*timeout_ms)(void *dev);
	void (*free)(void *dev);
};

extern const struct audit_device_ops audit_file_ops;
extern const struct audit_device_ops audit_socket_ops;
extern const struct audit_device_ops audit_syslog_ops;

#endif
