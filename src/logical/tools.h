/*
 * tools.h - the keyless "tools" endpoints Vault serves in two places with
 * one contract: sys/tools/random[/:source][/:bytes] and sys/tools/hash[/:alg]
 * in the core, and transit's random and hash paths. Field tables and
 * handlers for the engine SDK's path tables; stateless, thread-safe.
 */
#ifndef COFFER_LOGICAL_TOOLS_H
#define COFFER_LOGICAL_TOOLS_H

#include "logical/logical.h"

/* Fields: source, urlbytes (path captures), bytes (32), format (base64). */
extern const struct field_def logical_tools_random_fields[];
/* Fields: urlalgorithm (path capture), algorithm (sha2-256), input, format (hex). */
extern const struct field_def logical_tools_hash_fields[];

/* {random_bytes}: bytes from the CSPRNG (sysview_random), hex or base64. */
int logical_tools_random(struct logical_request *req, struct logical_response *resp,
			 struct verr *err);
/* {sum}: SHA-2 / SHA-3 digest of the base64 input, hex or base64. */
int logical_tools_hash(struct logical_request *req, struct logical_response *resp,
		       struct verr *err);

#endif
