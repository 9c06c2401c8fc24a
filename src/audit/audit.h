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
