/*
 * policy.h - ACL policies: parsing, the compiled ACL a request is checked
 * against, and the storage-backed policy store (sys/policy, sys/policies/acl).
 *
 * Where it sits: the request pipeline (core) resolves a token to its policy
 * names, asks the policy store for the compiled ACL of that name set
 * (policy_store_acl, cached), and calls acl_check before routing. The sys
 * backend uses the store for sys/policy* and acl_capabilities for
 * sys/capabilities*. The HCL parser is not known here: policies arrive as the
 * JSON form Vault accepts (see policy_parse), and the store is given a parser
 * hook to turn stored raw text back into that JSON.
 *
 * Semantics follow Vault's documented policy rules (docs/policies.md):
 *  - exact paths; a trailing star is a prefix glob ("secret/" + star matches
 *    "secret/" and "secret/a/b"); `+` is one non-empty path segment;
 *  - when several patterns match, Vault's priority order picks one rule;
 *    capabilities are NOT combined across different patterns;
 *  - the same pattern in several policies (or repeated in one) is merged:
 *    capabilities union, `deny` on either side wins;
 *  - allowed_parameters / denied_parameters / required_parameters are
 *    checked against the request data's top-level keys.
 *
 * Ownership: struct policy and struct acl are reference counted and
 * immutable once built. Every function that hands one out gives the caller
 * its own reference, released with policy_free / acl_free (both accept NULL).
 * Thread-safety: a built policy or ACL may be used from any number of threads
 * at once; the policy store is internally locked (rwlock) and every
 * policy_store_* function may be called from any thread.
 */
#ifndef COFFER_CORE_POLICY_H
#define COFFER_CORE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logical/logical.h"
#include "util/verr.h"

/* Capability bits (the bitmask in struct acl_result). */
enum policy_cap {
	POLICY_CAP_DENY = 1u << 0,
	POLICY_CAP_CREATE = 1u << 1,
	POLICY_CAP_READ = 1u << 2,
	POLICY_CAP_UPDATE = 1u << 3,
	POLICY_CAP_DELETE = 1u << 4,
	POLICY_CAP_LIST = 1u << 5,
	POLICY_CAP_SUDO = 1u << 6,
	POLICY_CAP_PATCH = 1u << 7,
	POLICY_CAP_SUBSCRIBE = 1u << 8,
};
#define POLICY_CAP_ALL                                                                      \
	(POLICY_CAP_CREATE | POLICY_CAP_READ | POLICY_CAP_UPDATE | POLICY_CAP_DELETE |       \
	 POLICY_CAP_LIST | POLICY_CAP_SUDO | POLICY_CAP_PATCH | POLICY_CAP_SUBSCRIBE)

#define POLICY_NAME_MAX 256

struct policy;
struct acl;
struct policy_store;

/* ---- policies ---- */

/*
 * Parse a policy from its JSON form. Accepted shapes for the `path` key (all
 * mean the same; the last two are what the HCL converter emits):
 *   {"path": {"P": {body}}}          {"path": {"P": [{body}, ...]}}
 *   {"path": [{"P": {body}}, ...]}   {"path": [{"P": [{body}]}, ...]}
 * Top-level keys: `path`, `name` (ignored). Body keys: capabilities, policy
 * (old form: read|write|deny|sudo), allowed_parameters, denied_parameters,
 * required_parameters, min_wrapping_ttl, max_wrapping_ttl, comment.
 * `name` is copied (not validated here; see policy_name_normalize). Errors
 * are VERR_INVALID with a one-line message naming the path.
 * On success the caller owns *out (policy_free).
 */
int policy_parse(struct policy **out, const char *name, const json_t *root, struct verr *err);
/* Take another reference. Returns p. */
struct policy *policy_ref(struct policy *p);
/* Drop a reference; frees on the last one. NULL is a no-op. */
void policy_free(struct policy *p);
/* The policy's name (borrowed, lives as long as the reference). */
const char *policy_name(const struct policy *p);
/* Number of path rules as written (before merging). */
size_t policy_rule_count(const struct policy *p);

/*
 * Normalise a policy name the way Vault does (trim surrounding whitespace,
 * lower-case) into buf (cap >= POLICY_NAME_MAX is enough) and validate it:
 * non-empty, at most POLICY_NAME_MAX-1 bytes, no control characters, and,
 * since names are storage keys, no leading/trailing '/', no empty, "." or
 * ".." segments. VERR_INVALID on a bad name.
 */
int policy_name_normalize(char *buf, size_t cap, const char *name, struct verr *err);

/* ---- compiled ACLs ---- */

/*
 * Compile the ACL for a token holding `policies` (NULL entries are skipped).
 * If any policy is the root policy (name "root"), the ACL allows everything.
 * The ACL keeps no pointer to the policies: the caller keeps ownership.
 * On success the caller owns *out (acl_free).
 */
int acl_new(struct acl **out, struct policy *const *policies, size_t n, struct verr *err);
struct acl *acl_ref(struct acl *a);
void acl_free(struct acl *a);
bool acl_is_root(const struct acl *a);

struct acl_result {
	bool allowed;         /* the operation is permitted */
	bool is_root;         /* a root token: everything allowed, sudo included */
	bool sudo;            /* the matched rule grants sudo (root-protected paths) */
	bool matched;         /* some rule matched the path */
	uint32_t capabilities; /* POLICY_CAP_* of the matched rule (0: none) */
};

/*
 * Check `op` on `path` (full request path after /v1/, no leading '/'), with
 * the request's top-level `data` (object or NULL) for parameter constraints.
 * Operations map to capabilities: read, create, update, patch, delete, list
 * one to one; LOP_REVOKE/LOP_RENEW need update; LOP_HELP is always allowed
 * (as in Vault). Parameter constraints apply to read/create/update/patch.
 * A rule with min_wrapping_ttl/max_wrapping_ttl denies unwrapped requests:
 * use acl_check_wrapped to pass the requested wrap TTL.
 * The caller must still require out->sudo for root-protected paths.
 * Returns 0 (decision in *out) or a negative VERR_* on bad arguments.
 * No allocation; safe from any number of threads.
 */
int acl_check(const struct acl *a, enum logical_op op, const char *path, const json_t *data,
	      struct acl_result *out);
/* As acl_check, with the request's response-wrapping TTL in seconds (0 = the
 * response is not wrapped). */
int acl_check_wrapped(const struct acl *a, enum logical_op op, const char *path,
		      const json_t *data, int64_t wrap_ttl, struct acl_result *out);

/*
 * The capability names granted on `path` for sys/capabilities*: a sorted
 * array of strings, e.g. ["create","read"]; ["deny"] when nothing (or deny)
 * matches; ["root"] for a root ACL. Like Vault, the lookup uses LIST
 * semantics (an exact rule "a/b" also answers for "a/b/").
 * Caller owns *out_list.
 */
int acl_capabilities(const struct acl *a, const char *path, json_t **out_list, struct verr *err);

/* Does any rule grant a capability (other than deny) on mount (a mount
 * path ending in '/') or on any path below it? Vault's hasMountAccess, for
 * sys/internal/ui/mounts: a token limited to kv/data/app/ (a prefix rule) learns
 * that kv/ is a KV v2 mount. */
bool acl_any_under(const struct acl *a, const char *mount);

/* Names of the bits in caps, sorted, as a new JSON array ("deny" for 0). */
json_t *policy_caps_to_json(uint32_t caps);

/* ---- the policy store ---- */

/* Turns stored raw policy text (HCL or JSON) into the JSON form policy_parse
 * takes. *out is owned by the caller. */
typedef int (*policy_text_parse_fn)(json_t **out, const char *text, size_t len,
				    struct verr *err);

/*
 * Open the store over `view` (borrowed; must outlive the store; normally the
 * barrier view "sys/policy/"). Creates the `default` policy if it is missing.
 * Built-ins: `root` (no rules, allows everything, cannot be written or
 * deleted), `default` (stored, editable, cannot be deleted) and
 * `response-wrapping` (in memory, immutable, not listed).
 * Until policy_store_set_parser is called, stored text is parsed as JSON.
 */
int policy_store_new(struct policy_store **out, struct storage_view *view, struct verr *err);
void policy_store_free(struct policy_store *s);
/* Set the raw-text parser (the HCL converter). Call before serving requests. */
void policy_store_set_parser(struct policy_store *s, policy_text_parse_fn parse);

/* The policy called `name` (normalised first). *out is a new reference, or
 * NULL with return 0 when there is no such policy. */
int policy_store_get(struct policy_store *s, const char *name, struct policy **out,
		     struct verr *err);
/* The raw text as written (malloc'd, caller frees), NULL if missing; "" for
 * root. */
int policy_store_raw(struct policy_store *s, const char *name, char **out_text,
		     struct verr *err);
/*
 * Create or replace a policy. `raw_text` is stored verbatim (what reads
 * return); `parsed_root` is its JSON form, or NULL to run the parser hook on
 * raw_text. The name is lower-cased. Errors: VERR_INVALID for a bad name,
 * a bad policy ("failed to parse policy: ...") or an immutable one
 * ("cannot update \"root\" policy").
 */
int policy_store_put(struct policy_store *s, const char *name, const char *raw_text,
		     const json_t *parsed_root, struct verr *err);
/* Delete (idempotent). VERR_INVALID for root ("cannot delete \"root\"
 * policy") and default ("cannot delete default policy"). */
int policy_store_delete(struct policy_store *s, const char *name, struct verr *err);
/* Sorted names of all ACL policies, including "root" (as sys/policy lists
 * them). Caller owns *out_names. */
int policy_store_list(struct policy_store *s, json_t **out_names, struct verr *err);
/* Modification time (unix seconds) of a stored policy, 0 if unknown. */
int64_t policy_store_modified(struct policy_store *s, const char *name);

/*
 * The compiled ACL for a token's policy names (any order, duplicates and
 * case ignored; names that do not exist are skipped, as Vault does). Cached
 * by the sorted name set; any policy write or delete invalidates the cache,
 * so an ACL handed out afterwards reflects the change. *out is a new
 * reference (acl_free). n == 0 yields an ACL that denies everything.
 */
int policy_store_acl(struct policy_store *s, const char *const *names, size_t n,
		     struct acl **out, struct verr *err);
/* Forget cached state for `name` (NULL: everything). For storage that was
 * changed underneath the store (HA standby invalidation, restore). */
void policy_store_invalidate(struct policy_store *s, const char *name);

#endif
