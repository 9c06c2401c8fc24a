/*
 * wrapping.h - response wrapping (wrapping.c): a response is stored in the
 * cubbyhole of a new single-use token and the client gets only the
 * token's wrap_info; and the sys/wrapping/{wrap,unwrap,lookup,rewrap}
 * endpoints (rows in sys.c's path table).
 *
 * A wrapping token is an orphan service token with the one policy
 * `response-wrapping` (cubbyhole/response create+read, sys/wrapping/unwrap
 * update), num_uses 1, ttl = explicit_max_ttl = the wrap TTL. Its
 * cubbyhole holds two entries, written through the cubbyhole engine:
 *   response  {"response": "<the original HTTP body, JSON text>"}
 *   wrapinfo  {"creation_ttl": seconds, "creation_time": RFC 3339,
 *              "creation_path": "<path>"}
 * Expiry and revocation go through the token store, whose revoke hook
 * clears the cubbyhole, so an expired wrapping token leaves nothing.
 *
 * Called from the pipeline on the request's thread, state lock held for
 * reading. Errors: 0 or a negative VERR_*.
 */
#ifndef COFFER_CORE_WRAPPING_H
#define COFFER_CORE_WRAPPING_H

#include "core/core_int.h"

/* Vault's message for a used, expired, unknown or non-wrapping token. */
#define WRAPPING_INVALID_MSG "wrapping token is not valid or does not exist"

/* sys/wrapping/lookup, unwrap or rewrap: paths whose token is checked
 * before authentication (Vault's wrappingVerificationFunc). */
bool wrapping_checked_path(const char *path);
/* The token those paths act on: data.token when given, else the client
 * token. VERR_INVALID "could not parse token" for a non-string token,
 * WRAPPING_INVALID_MSG for anything but a live wrapping token. */
int wrapping_validate(struct core *c, const struct logical_request *req, struct verr *err);

/* The TTL the response is to be wrapped with (Vault: the shorter of the
 * handler's and the request's, each when set); 0: not wrapped. */
int64_t wrapping_ttl(const struct logical_request *req, const struct logical_response *resp);

/*
 * Wrap resp (a successful response with content) for ttl seconds: the
 * wrapping token is issued, the response's JSON body stored in its
 * cubbyhole, and resp replaced by wrap_info alone. On failure nothing of
 * the wrapping token remains and resp is untouched.
 */
int wrapping_wrap(struct core *c, const struct logical_request *req,
		  struct logical_response *resp, int64_t ttl, struct verr *err);

/* Undo a wrapped response that could not be delivered (audit failure):
 * the wrapping token goes, with its cubbyhole. */
void wrapping_discard(struct core *c, const struct logical_response *resp);

/* sys/wrapping/... (sys backend; instance = the core) */
extern const struct field_def sys_wrapping_fields[];
int sys_wrapping_wrap(struct logical_request *req, struct logical_response *resp,
		      struct verr *err);
int sys_wrapping_unwrap(struct logical_request *req, struct logical_response *resp,
			struct verr *err);
int sys_wrapping_lookup(struct logical_request *req, struct logical_response *resp,
			struct verr *err);
int sys_wrapping_rewrap(struct logical_request *req, struct logical_response *resp,
			struct verr *err);

#endif
