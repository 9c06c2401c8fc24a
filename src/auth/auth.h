/*
 * auth.h - the built-in auth methods exported to the server's registry table
 * (src/server/registry.c), and the helpers they share (auth_common.c).
 *
 *   userpass - users with scrypt-hashed passwords; login/NAME.
 *   approle  - roles with role IDs and HMAC-stored secret IDs; login.
 *   cert     - TLS client certificates chained to trusted CAs; login.
 *
 * Both are `struct backend_ops` with .is_auth = true, mounted at
 * auth/<path>/ by `POST sys/auth/<path> {"type":"userpass"|"approle"}`. A
 * login handler fills resp->auth (struct logical_auth) and the core issues
 * the token. Their auth_renew handlers expect req->secret_internal to be the
 * `internal` object they put in logical_auth at login; on success they set
 * resp->auth with the current ttl, max_ttl and period (everything else
 * zero/NULL) for the core to apply; on failure they return VERR_DENIED
 * (the user/role is gone or its policies changed).
 *
 * Thread-safety: every handler may run concurrently on any thread; each
 * backend instance guards its own state (see the .c files).
 */
#ifndef COFFER_AUTH_AUTH_H
#define COFFER_AUTH_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "logical/logical.h"

extern const struct backend_ops userpass_backend_ops, approle_backend_ops;
/* cert.c: TLS client certificates (certs/NAME, crls/NAME, config, login). */
extern const struct backend_ops cert_backend_ops;

/* ---- the token_* fields every auth method's config carries ---- */

/* Rows for a path's field table (Vault's "tokenfields" partial). */
#define AUTH_TOKEN_FIELD_DEFS                                                                   \
	{"token_policies", FT_STRSLICE, NULL, "policies of issued tokens", false},              \
	{"policies", FT_STRSLICE, NULL, "deprecated: use token_policies", false},                \
	{"token_ttl", FT_DURATION, NULL, "initial TTL of issued tokens", false},                \
	{"token_max_ttl", FT_DURATION, NULL, "maximum lifetime of issued tokens", false},       \
	{"token_explicit_max_ttl", FT_DURATION, NULL, "hard lifetime cap", false},              \
	{"token_period", FT_DURATION, NULL, "period of issued (periodic) tokens", false},       \
	{"token_num_uses", FT_INT, NULL, "uses per issued token (0 unlimited)", false},         \
	{"token_no_default_policy", FT_BOOL, NULL, "do not add the default policy", false},     \
	{"token_bound_cidrs", FT_STRSLICE, NULL, "CIDRs issued tokens are bound to", false},    \
	{"token_type", FT_STRING, NULL, "service or default", false}

/* Deprecated spellings a method also accepts (their field rows are the
 * method's own). */
enum auth_legacy {
	AUTH_LEGACY_TTL = 1,         /* ttl, max_ttl */
	AUTH_LEGACY_BOUND_CIDRS = 2, /* bound_cidrs */
	AUTH_LEGACY_PERIOD = 4,      /* period */
};

/* A new token config object with Vault's defaults (empty policies, zero
 * TTLs, token_type "default"). NULL on OOM. */
json_t *auth_token_cfg_new(void);

/* Apply the token_* fields the client sent (request_has) to cfg, plus the
 * deprecated spellings selected by `legacy` (bits of enum auth_legacy; the
 * legacy "policies" is always accepted). A new name wins over its old one.
 * Validates: token_num_uses >= 0, token_ttl <= token_max_ttl, CIDRs
 * well-formed, token_type one of "", "default", "service". VERR_INVALID with
 * a message naming the field; cfg may be partly updated on error. */
int auth_token_cfg_update(json_t *cfg, const struct logical_request *req, unsigned legacy,
			  struct verr *err);

/* Add the token_* keys of cfg to `data` (a read response), plus each
 * deprecated key the config was last written with (Vault shows those too). */
void auth_token_cfg_to_data(json_t *data, const json_t *cfg);

/* Fill a login's logical_auth from cfg: policies (copied), ttl, max_ttl,
 * explicit_max_ttl, period, num_uses, no_default_policy, bound_cidrs
 * (copied, NULL when empty), token_type, renewable = true. 0 or
 * VERR_INTERNAL (OOM). */
int auth_token_cfg_fill(struct logical_auth *a, const json_t *cfg, struct verr *err);

/* Vault's policy sanitizer for stored policy lists: trimmed, lower-cased,
 * empty names dropped, sorted, unique. New array, NULL on OOM or when `in`
 * is not an array. */
json_t *auth_policies_sanitize(const json_t *in);

/* Same set of policies, ignoring "default" (the renew check). */
bool auth_policies_equivalent(const json_t *a, const json_t *b);

/* Every entry of a string list is a well-formed CIDR block or address;
 * otherwise VERR_INVALID naming `field` and the bad entry. */
int auth_cidrs_check(const json_t *list, const char *field, struct verr *err);

/* Lower-case a name in place (usernames and role names are
 * case-insensitive, as in Vault). */
void auth_lower(char *s);

/* RFC 3339 UTC with nanoseconds ("2024-05-01T10:00:00.123456789Z"); Go's
 * zero time ("0001-01-01T00:00:00Z") when unix_secs == 0. */
void auth_time_format(char *buf, size_t cap, int64_t unix_secs, long nsec);

#endif
