/*
 * audit_broker.h - the core's audit broker: the table of enabled audit
 * devices, their keys, and the fail-closed fan-out of entries to them.
 *
 * The broker is opened at unseal (it reads its table and keys below the
 * barrier) and freed at seal. Device types come from the registry through
 * core_opts.audit_types (src/audit/audit.h); the broker calls devices only
 * through those ops.
 *
 * Storage (below the barrier):
 *   core/audit                {"entries":[{path,type,description,options,local,uuid}]}
 *   core/audit-keys/<uuid>    64 raw bytes: HMAC key (32) || chain key (32)
 *
 * Logging (audit_broker_log): the entry is formatted and HMAC'd once per
 * device on the calling thread, with no lock held, then queued to the
 * device's writer thread, which appends "seq" and the tamper-evidence
 * "chain" member (docs/audit.md) and writes. The caller waits at most the
 * device's timeout for the acknowledgement. 0 if no device is enabled or at
 * least one device recorded the entry; VERR_INTERNAL if every device failed
 * (fail closed: the core then refuses the request).
 *
 * Thread-safety: every function may be called concurrently, except
 * audit_broker_free (the core calls it with the state lock held for
 * writing, when no request runs).
 */
#ifndef COFFER_CORE_AUDIT_BROKER_H
#define COFFER_CORE_AUDIT_BROKER_H

#include <jansson.h>
#include <stdbool.h>

#include "logical/logical.h"
#include "physical/physical.h"
#include "util/verr.h"

struct audit_device_ops;
struct audit_broker;

struct audit_broker_opts {
	struct physical *phys;                       /* barrier (borrowed) */
	const struct audit_device_ops *const *types; /* NULL-terminated, may be NULL */
	bool allow_prefixing;                        /* allow_audit_log_prefixing */
};

/* Load the table and open every device. A device that cannot be opened is
 * kept (it fails every write, so requests fail closed) and retried. */
int audit_broker_new(struct audit_broker **out, const struct audit_broker_opts *o,
		     struct verr *err);
/* Stop the writers (waiting a bounded time for queued entries) and free. */
void audit_broker_free(struct audit_broker *b);

/* true when at least one device is enabled. */
bool audit_broker_active(struct audit_broker *b);
/* True if every enabled device is written by request threads (group
 * commit: a local file), none by a writer thread a peer or pipe may stall;
 * true with no device (or no broker). */
bool audit_broker_inline(struct audit_broker *b);

/* path: "file" or "file/" (stored with a trailing slash). options: object
 * of strings (booleans and numbers are converted). VERR_INVALID for bad
 * type, options, a path in use, or a device that cannot be opened. */
int audit_broker_enable(struct audit_broker *b, const char *path, const char *type,
			const char *description, const json_t *options, bool local,
			struct verr *err);
/* Disabling a path that has no device succeeds (Vault). */
int audit_broker_disable(struct audit_broker *b, const char *path, struct verr *err);
/* {"file/": {type, description, options, local, path}} (new reference). */
json_t *audit_broker_list(struct audit_broker *b);
/* sys/audit-hash: *out = "hmac-sha256:<hex>" (malloc'd). */
int audit_broker_hash(struct audit_broker *b, const char *path, const char *input, char **out,
		      struct verr *err);
/* The device's chain key, base64 (malloc'd; wipe before free). */
int audit_broker_chain_key(struct audit_broker *b, const char *path, char **out,
			   struct verr *err);

/* Record one entry on every device (see above). */
int audit_broker_log(struct audit_broker *b, const json_t *entry, struct verr *err);
/* The same for an entry the core describes (struct audit_entry in
 * src/audit/audit.h): devices write it without a JSON tree being built.
 * The line is byte for byte the one audit_broker_log writes for the tree
 * that description stands for. */
struct audit_entry;
int audit_broker_log_entry(struct audit_broker *b, const struct audit_entry *entry,
			   struct verr *err);
/* A request entry and its response entry, recorded together: on each
 * device both lines go out in one write, in this order, so a request whose
 * handler changes nothing (backend_ops.pure_reads) costs one wait for the
 * log instead of two. 0 if at least one device recorded both. */
int audit_broker_log_pair(struct audit_broker *b, const struct audit_entry *request,
			  const struct audit_entry *response, struct verr *err);
/* SIGHUP: every device reopens (its writer thread does it, in order with
 * the writes); returns after the reopen or the device's timeout. */
void audit_broker_reopen(struct audit_broker *b);

/* Exposed for tests: the chain state a device resumes from, parsed from the
 * tail of its log. Returns true if the tail ends with a chain member. */
bool audit_broker__parse_tail(const char *buf, size_t len, char prev[65], uint64_t *seq,
			      bool *need_newline);

/* sys/audit endpoints (sys_audit.c), rows of sys.c's path table. */
extern const struct field_def sys_audit_fields[];
extern const struct field_def sys_audit_hash_fields[];
int sys_audit_list(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_audit_enable(struct logical_request *req, struct logical_response *resp,
		     struct verr *err);
int sys_audit_disable(struct logical_request *req, struct logical_response *resp,
		      struct verr *err);
int sys_audit_hash(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_audit_chain_key(struct logical_request *req, struct logical_response *resp,
			struct verr *err);

#endif
