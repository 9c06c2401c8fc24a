/*
 * core.h - the core's public entry points, used by the HTTP layer and the
 * server start-up code.
 *
 * The core owns seal state, the request pipeline (token -> ACL -> audit ->
 * route -> lease -> audit), the mount tables, the token and policy stores,
 * the expiration manager and the audit broker. Thread-safety: every function
 * here may be called from any thread; seal state is behind a rwlock.
 */
#ifndef COFFER_CORE_CORE_H
#define COFFER_CORE_CORE_H

#include "core/logical.h"

struct core;

/*
 * Handle one API request. The caller (http/) fills, in *req: op (POST and
 * PUT both as LOP_UPDATE; the core decides create vs update), path (decoded
 * URL path after "/v1/"), data (body object, or query arguments for
 * GET/LIST/DELETE; never NULL), client_token (or NULL), remote_addr,
 * remote_port, request_id, headers (object of lower-cased X-Vault-* request
 * headers), client_cert_pem. Every other field is the core's.
 * On success returns 0 and fills *resp (status 0 => 200 with body or 204).
 * On failure returns a negative VERR_* with *err set; resp may still carry
 * data (e.g. KV v2 metadata on 404) and warnings.
 */
int core_handle_request(struct core *c, struct logical_request *req,
			struct logical_response *resp, struct verr *err);

#endif
