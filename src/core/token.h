/*
 * token.h - the token store: issue, look up, use, renew and revoke service
 * tokens, plus token roles; and the `auth/token/` backend built on it.
 *
 * Service tokens are `s.` followed by 24 base62 characters; batch tokens
 * `b.` + a sealed entry (docs/tokens.md), never stored, with no hash or
 * accessor (both "" in their entry). They are never stored:
 * only HMAC-SHA256(salt, token) in hex (64 chars), the token's "hash", which
 * is the stable, non-secret id the core, audit and cubbyhole use. The salt is
 * 32 random bytes created once and kept in the store's view (which lies below
 * the barrier). The storage layout and TTL rules are in docs/tokens.md.
 *
 * Ownership: every `struct token_entry *` handed out by the store is a
 * reference the caller releases with token_entry_free(). Entries are
 * immutable once handed out (the store replaces, never edits, them), so a
 * reference may be read from any thread without locking. Raw tokens returned
 * by issue/root are malloc'd strings the caller must wipe and free
 * (token_free_raw).
 *
 * Errors: 0 or a negative VERR_*; unknown, expired, revoked, used-up or
 * malformed tokens are VERR_DENIED "permission denied" from lookup.
 *
 * Thread-safety: every token_store_* function may be called concurrently.
 * Lookups hit an in-memory cache (bounded) under a rwlock; mutations
 * (issue/use/renew/revoke/roles) are serialised by one store mutex. The
 * on_revoke callback runs with that mutex held: it must not call back into
 * the token store.
 */
#ifndef COFFER_CORE_TOKEN_H
#define COFFER_CORE_TOKEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"
#include "util/verr.h"

#define TOKEN_HASH_LEN 64   /* hex chars of the salted hash */
#define TOKEN_BODY_LEN 24   /* base62 chars after "s." */
#define TOKEN_DEFAULT_TTL (768 * 3600)
#define TOKEN_DEFAULT_MAX_TTL (768 * 3600)

struct token_store;

struct token_entry {
	char *hash;             /* salted hash of the token: the stable id */
	char *accessor;         /* 24 base62 chars */
	char *parent_hash;      /* "" for orphans */
	json_t *policies;       /* array of strings, sorted, unique */
	json_t *meta;           /* object of strings (possibly empty) */
	char *display_name;     /* "token", "token-ci", "root", "userpass-bob" */
	char *path;             /* creation path, "auth/token/create" */
	int64_t creation_time;  /* unix seconds */
	int64_t creation_ttl;   /* TTL at issue, seconds (0 = none) */
	int64_t ttl;            /* current TTL (set at issue and on renew) */
	int64_t expire_time;    /* unix seconds; 0 = never */
	int64_t explicit_max_ttl;
	int64_t period;
	int64_t num_uses;       /* remaining uses; 0 unlimited; -1 used up */
	bool renewable;
	bool orphan;
	bool revoked;           /* revocation in progress: never valid */
	char *type;             /* "service" */
	char *entity_id;        /* "" when none */
	json_t *bound_cidrs;    /* array of strings or NULL */
	char *role;             /* "" when none */
	json_t *internal;       /* issuing auth method's data (renew), or NULL */
	int64_t last_renewal_time; /* 0 = never renewed */
	int refs;               /* private: reference count */
};

/* A raw token of the batch form ("b." + sealed entry): never stored. */
bool token_is_batch(const char *raw);
/* The entry is of a batch token (te->type "batch"). */
bool token_entry_is_batch(const struct token_entry *te);

/* Release a reference (NULL is a no-op). */
void token_entry_free(struct token_entry *te);
/* Take another reference. */
struct token_entry *token_entry_ref(struct token_entry *te);
/* Wipe and free a raw token string (NULL is a no-op). */
void token_free_raw(char *raw);

struct token_store_opts {
	int64_t default_ttl;    /* system default, seconds; 0 => 768h */
	int64_t max_ttl;        /* system max, seconds; 0 => 768h */
	size_t cache_size;      /* max cached entries; 0 => 16384 */
	/* Does a policy of this name exist? (warnings on create). May be NULL. */
	bool (*policy_exists)(void *ctx, const char *name);
	void *policy_ctx;
	/* Called once per revoked token, before it is deleted (cubbyhole and
	 * leases). Runs with the store mutex held. May be NULL. */
	void (*on_revoke)(void *ctx, const struct token_entry *te);
	void *revoke_ctx;
	/* Called after a token's expiry was set or moved (issue with a TTL,
	 * renew), with the entry as stored; runs with the store mutex held
	 * (the expiration manager schedules the token's lease). May be NULL. */
	void (*on_expiry)(void *ctx, const struct token_entry *te);
	void *expiry_ctx;
	/* Ask the auth method that issued a login token whether it may be
	 * renewed (the core routes to its auth_renew handler); *max_ttl_cap
	 * gets the method's current max TTL (0: none). May be NULL. */
	int (*auth_renew)(void *ctx, const struct token_entry *te, int64_t *max_ttl_cap,
			  struct verr *err);
	void *auth_renew_ctx;
	/* Clock (unix seconds); NULL => time(NULL). Tests use a fake clock. */
	int64_t (*now)(void *ctx);
	void *now_ctx;
};

/*
 * Open the store over `view` (borrowed; must outlive the store): loads or
 * creates the salt and finishes any revocation a crash interrupted.
 */
int token_store_new(struct token_store **out, struct storage_view *view,
		    const struct token_store_opts *o, struct verr *err);
void token_store_free(struct token_store *ts);
/* Drop every cached entry (e.g. after seal or a storage restore). */
void token_store_cache_flush(struct token_store *ts);

struct token_params {
	const json_t *policies;     /* array of strings (may be NULL/empty) */
	const json_t *meta;         /* object of strings or NULL */
	const char *display_name;   /* final name; NULL => "token" */
	const char *path;           /* creation path; NULL => "auth/token/create" */
	int64_t ttl;                /* requested TTL; 0 => default */
	int64_t max_ttl;            /* mount/backend max; 0 => system max */
	int64_t explicit_max_ttl;
	int64_t period;
	int64_t num_uses;           /* >= 0 */
	bool renewable;
	bool no_default_policy;     /* else "default" is added (not to root) */
	bool policies_final;        /* use `policies` as computed by the caller
				     * (sanitized; "default" neither added nor
				     * removed): the auth/token/create rules */
	const struct token_entry *parent; /* NULL => orphan */
	const json_t *bound_cidrs;  /* array or NULL */
	const json_t *internal;     /* copied; NULL ok */
	const char *role;           /* NULL ok */
	const char *entity_id;      /* NULL ok */
	const char *type;           /* NULL, "service" or "batch" */
	const char *id;             /* custom token id; NULL => random s.<24> */
	bool deny_non_expiring;     /* the creator expires: refuse a TTL-less token */
	json_t *warnings;           /* optional: TTL-capping warnings appended */
};

/*
 * Create a token. *out_token (caller owns; wipe with token_free_raw) is the
 * only copy of the raw token; *out_entry (may be NULL if not wanted) is a
 * reference. TTL: period wins, else ttl, else the default; capped by
 * explicit_max_ttl and the max TTL (warning appended to p->warnings).
 */
int token_store_issue(struct token_store *ts, const struct token_params *p, char **out_token,
		      struct token_entry **out_entry, struct verr *err);

/* A root token: policies ["root"], no expiry, orphan, path auth/token/root. */
int token_store_root(struct token_store *ts, char **out_token, struct verr *err);

/*
 * Resolve a presented token. VERR_DENIED "permission denied" for unknown,
 * revoked, used-up, expired (deleted on the spot) or malformed tokens.
 * *out is a reference (token_entry_free). Hot path: HMAC + cache probe.
 */
int token_store_lookup(struct token_store *ts, const char *raw, struct token_entry **out,
		       struct verr *err);
/* Same by salted hash / by accessor. VERR_NOT_FOUND when absent or dead. */
int token_store_lookup_hash(struct token_store *ts, const char *hash, struct token_entry **out,
			    struct verr *err);
int token_store_lookup_accessor(struct token_store *ts, const char *accessor,
				struct token_entry **out, struct verr *err);

/*
 * Count one use of a limited-use token (no-op when te->num_uses == 0). The
 * use that exhausts it is allowed: the token is then marked used up (every
 * later lookup is denied) and *revoke_after is set; the caller must call
 * token_store_revoke(ts, te->hash, false, err) once the request is done (so
 * the request can still reach the token's cubbyhole). VERR_DENIED if the
 * token was used up or revoked meanwhile.
 */
int token_store_use(struct token_store *ts, const struct token_entry *te, bool *revoke_after,
		    struct verr *err);

/*
 * Renew the token with this hash. increment 0 => the token's current TTL;
 * max_ttl_cap 0 => system max. Not renewable / no TTL => VERR_INVALID
 * "lease is not renewable"; unknown => VERR_NOT_FOUND. Capping adds a
 * warning to `warnings` (may be NULL). *out_ttl (may be NULL) = new TTL.
 */
int token_store_renew(struct token_store *ts, const char *hash, int64_t increment,
		      int64_t max_ttl_cap, int64_t *out_ttl, json_t *warnings, struct verr *err);

/*
 * Revoke the token and (unless orphan_children) its whole subtree,
 * iteratively. With orphan_children the direct children become orphans.
 * Unknown hash: 0 (nothing to do). Crash safe: an intent record makes the
 * next token_store_new finish the job, the target is marked revoked first,
 * the subtree is marked top-down and deleted bottom-up, and a token whose
 * parent is gone is never valid.
 */
int token_store_revoke(struct token_store *ts, const char *hash, bool orphan_children,
		       struct verr *err);

/* *out = new array of every live accessor (sorted). */
int token_store_list_accessors(struct token_store *ts, json_t **out, struct verr *err);

/*
 * Call fn for every live stored token (not revoked, not expired, not used
 * up; batch tokens are never stored), reading every entry from storage: a
 * background walk (the usage gauges), not for the request path. Takes no
 * store lock; an entry changing meanwhile is seen before or after. fn
 * returning nonzero stops the walk (returned). Storage errors propagate.
 */
typedef int (*token_walk_fn)(void *ctx, const struct token_entry *te);
int token_store_walk(struct token_store *ts, token_walk_fn fn, void *ctx, struct verr *err);

/* Remove dangling accessor/parent index entries and expired tokens.
 * *out_stats (may be NULL): new object of counters. */
int token_store_tidy(struct token_store *ts, json_t **out_stats, struct verr *err);

/* Append Vault's `Policy "x" does not exist` for each missing policy. */
void token_store_warn_missing_policies(struct token_store *ts, const json_t *policies,
				       json_t *warnings);

/* Vault's policy sanitizer: trimmed, lower-cased, empty names dropped,
 * "root" collapses the set to ["root"], "default" appended when add_default
 * and absent; sorted, unique. New array (NULL on OOM). */
json_t *token_policies_sanitize(const json_t *in, bool add_default);

/* The store's clock and limits. */
int64_t token_store_now(const struct token_store *ts);
/* Run opts.auth_renew for te (0 and no cap when unset). */
int token_store_auth_renew(struct token_store *ts, const struct token_entry *te,
			   int64_t *max_ttl_cap, struct verr *err);
int64_t token_store_max_ttl(const struct token_store *ts);
int64_t token_store_default_ttl(const struct token_store *ts);

/* ---- roles (auth/token/roles/NAME) ---- */

/* *out = stored role object, or NULL (return 0) when absent. */
int token_store_role_get(struct token_store *ts, const char *name, json_t **out,
			 struct verr *err);
int token_store_role_put(struct token_store *ts, const char *name, const json_t *role,
			 struct verr *err);
int token_store_role_delete(struct token_store *ts, const char *name, struct verr *err);
int token_store_role_list(struct token_store *ts, json_t **out, struct verr *err);

/* ---- response shapes ---- */

/*
 * `data` of auth/token/lookup*: accessor, creation_time, creation_ttl,
 * display_name, entity_id, expire_time (RFC 3339 or null), explicit_max_ttl,
 * id (raw_id, "" when NULL: lookup-accessor), issue_time, meta, num_uses,
 * orphan, path, policies, renewable, ttl (remaining), type; plus period,
 * role, bound_cidrs, last_renewal(_time) when set. New object.
 */
json_t *token_entry_lookup_data(const struct token_entry *te, const char *raw_id, int64_t now);

/*
 * Vault's `auth` object: client_token (raw_token or ""), accessor, policies
 * (token + identity policies), token_policies, identity_policies (only when
 * non-empty), metadata, lease_duration, renewable, entity_id, token_type,
 * orphan, mfa_requirement (null), num_uses. identity_policies may be NULL.
 */
json_t *token_auth_block(const struct token_entry *te, const char *raw_token,
			 const json_t *identity_policies);

/* ---- the auth/token/ backend (token_backend.c) ---- */

/* type "token", is_auth. Its instance is the token store, handed over by
 * the router as mount_info.core_private. */
extern const struct backend_ops token_backend_ops;

#endif
