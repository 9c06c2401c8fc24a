/*
 * expiration.h - the expiration manager: every lease (a secret with a TTL or
 * a token with a TTL) is stored below the barrier, kept in an in-memory
 * min-heap of deadlines, and revoked when its deadline passes. The pipeline
 * reaches it through lease_hooks.c; the sys/leases/ endpoints are in
 * sys_leases.c. Design, storage layout and numbers: docs/leases.md.
 *
 * The manager is mechanism only: it knows lease ids, deadlines and stored
 * records, not backends or tokens. Revoking and renewing the thing a lease
 * stands for is delegated to the `struct expiration_ops` callbacks
 * (lease_hooks.c routes them to the owning backend or the token store).
 *
 * Lease record (JSON, stored at <prefix>id/<lease_id>); times are unix ms:
 *   kind        "secret" | "token"
 *   path        the request path that created the lease
 *   issue_ms, expire_ms, last_renewal_ms (0 = never), max_ms (0 = no cap)
 *   ttl         the TTL granted at issue, seconds (renew's default increment)
 *   renewable   bool
 *   internal    the backend's secret data (secrets), or absent
 *   token_hash  the token's salted hash (tokens), or the creating token's
 * The manager requires kind and expire_ms; the rest is for the callbacks.
 *
 * Ownership: records passed in are borrowed (copied as needed); records
 * handed out (*out) belong to the caller (json_decref).
 * Errors: 0 or a negative VERR_*; messages name the problem.
 * Thread-safety: every function may be called from any thread while the
 * manager exists. expiration_free must not race other calls (the core calls
 * it at seal, when no request is in flight). Callbacks run on the manager's
 * worker threads and on request threads (sync revoke/renew); a "secret"
 * lease's callbacks run with that lease's lock held, a "token" lease's with
 * no manager lock held (the token store calls back into the manager from
 * under its own mutex: see expiration_forget).
 */
#ifndef COFFER_CORE_EXPIRATION_H
#define COFFER_CORE_EXPIRATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"
#include "physical/physical.h"
#include "util/verr.h"

struct expiration;

struct expiration_ops {
	/* Revoke what the lease stands for. 0 = done (the lease is then
	 * deleted); an error keeps the lease and retries it with backoff. */
	int (*revoke)(void *ctx, const char *lease_id, const json_t *record, struct verr *err);
	/* Renew a "secret" lease: ask the backend, then set record's
	 * expire_ms/last_renewal_ms (capped by max_ms) and append warnings.
	 * Called only for existing, renewable, unexpired secret leases. */
	int (*renew)(void *ctx, const char *lease_id, json_t *record, int64_t increment_s,
		     int64_t now_ms, json_t *warnings, struct verr *err);
	void *ctx;
	/* Clock in unix milliseconds; NULL => the real clock. */
	int64_t (*now_ms)(void *ctx);
	int64_t backoff_min_ms; /* first retry delay after a failed revoke; 0 => 1 s */
	int64_t backoff_max_ms; /* retry delay cap; 0 => 1 h */
	int workers;            /* revocation threads; 0 => 4 */
};

/*
 * Create a manager over `phys` (borrowed; normally the barrier shim) with
 * every key under `prefix` (e.g. "sys/expire/"). Nothing runs until
 * expiration_start.
 */
int expiration_new(struct expiration **out, struct physical *phys, const char *prefix,
		   const struct expiration_ops *ops, struct verr *err);
/*
 * Start the worker threads. They first restore the stored leases in the
 * background, soonest deadlines first, while expiring what is due; the
 * caller does not wait for the restore.
 */
int expiration_start(struct expiration *e, struct verr *err);
/* Stop the workers promptly (a revoke in progress finishes first) and free
 * everything. Stored leases stay stored. NULL is a no-op. */
void expiration_free(struct expiration *e);

/*
 * Store a new lease (or replace one: pass may_exist so the old deadline's
 * index entry is removed) and schedule it. Durable when this returns.
 */
int expiration_put(struct expiration *e, const char *lease_id, const json_t *record,
		   bool may_exist, struct verr *err);
/* *out = the stored record, or NULL (return 0) when there is no such lease.
 * Reads storage: works for leases the restore has not reached yet. */
int expiration_lookup(struct expiration *e, const char *lease_id, json_t **out,
		      struct verr *err);
/* Direct children of `prefix` among lease ids ("a/b/" -> ["c", "d/"]). */
int expiration_list(struct expiration *e, const char *prefix, json_t **out, struct verr *err);

/*
 * Renew a secret lease. VERR_INVALID "lease not found", "lease is not
 * renewable", "lease expired", "tokens cannot be renewed through this
 * endpoint". *out (may be NULL) = the updated record.
 */
int expiration_renew(struct expiration *e, const char *lease_id, int64_t increment_s,
		     json_t **out, json_t *warnings, struct verr *err);
/*
 * Revoke now: call ops.revoke and delete the lease. An unknown lease is not
 * an error. With force, a failing ops.revoke is logged and the lease is
 * deleted anyway.
 */
int expiration_revoke(struct expiration *e, const char *lease_id, bool force,
		      struct verr *err);
/* Make a lease due now; a worker revokes it (sync=false). Unknown: 0. */
int expiration_revoke_lazy(struct expiration *e, const char *lease_id, struct verr *err);
/*
 * Revoke every lease under prefix. Without a trailing '/', an exact lease
 * id of that name is revoked, else "prefix/" is used: "secret/a" never
 * touches "secret/ab/...". sync=false queues them for the workers. With
 * force, backend failures are ignored (sys/leases/revoke-force).
 */
int expiration_revoke_prefix(struct expiration *e, const char *prefix, bool force, bool sync,
			     struct verr *err);
/*
 * Delete a lease without calling ops.revoke (what it stood for is already
 * gone: a token revoked through the token store). Safe to call from inside
 * ops.revoke of a "token" lease. Unknown: 0.
 */
int expiration_forget(struct expiration *e, const char *lease_id, struct verr *err);

/* Remove index entries without a lease, re-index leases without one.
 * *out (may be NULL): new object of counters. */
int expiration_tidy(struct expiration *e, json_t **out, struct verr *err);

struct expiration_stats {
	uint64_t leases;       /* leases scheduled in memory */
	uint64_t revoked;      /* revoked by expiry since start */
	uint64_t retries;      /* failed revokes scheduled for a retry */
	bool restoring;        /* background restore still running */
	int64_t restore_ms;    /* restore duration once finished */
};
void expiration_stats(struct expiration *e, struct expiration_stats *out);
/* Block until the background restore is done (tests, benchmarks). */
void expiration_wait_restored(struct expiration *e);

/* ---- sys/leases/... handlers (sys_leases.c), rows in sys.c ---- */
int sys_leases_lookup(struct logical_request *req, struct logical_response *resp,
		      struct verr *err);
int sys_leases_list(struct logical_request *req, struct logical_response *resp,
		    struct verr *err);
int sys_leases_renew(struct logical_request *req, struct logical_response *resp,
		     struct verr *err);
int sys_leases_revoke(struct logical_request *req, struct logical_response *resp,
		      struct verr *err);
int sys_leases_revoke_prefix(struct logical_request *req, struct logical_response *resp,
			     struct verr *err);
int sys_leases_revoke_force(struct logical_request *req, struct logical_response *resp,
			    struct verr *err);
int sys_leases_tidy(struct logical_request *req, struct logical_response *resp,
		    struct verr *err);
int sys_leases_count(struct logical_request *req, struct logical_response *resp,
		     struct verr *err);
extern const struct field_def sys_leases_fields[];

#endif
