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
 * lock held (formatting and HMAC run concurrently), then hands the line to
 * the device's writer thread, which appends the tamper-evidence chain and
 * calls `log`. `log`, `reopen` and `tail` are only ever called from that one
 * writer thread, so a device needs no lock of its own.
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
	 * Writer thread only. */
	int (*log)(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err);
	/* Close and reopen (SIGHUP, log rotation). Writer thread only. */
	int (*reopen)(void *dev, struct verr *err);
	/* Optional (NULL: the log cannot be read back): copy the last bytes of
	 * the existing log (at most cap) into buf and return how many. The
	 * broker resumes the chain from them. Writer thread only. */
	size_t (*tail)(void *dev, char *buf, size_t cap);
	/* The bound on one write, milliseconds (socket: write_timeout). */
	int64_t (*timeout_ms)(void *dev);
	void (*free)(void *dev);
};

extern const struct audit_device_ops audit_file_ops;
extern const struct audit_device_ops audit_socket_ops;
extern const struct audit_device_ops audit_syslog_ops;

#endif
