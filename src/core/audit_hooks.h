/*
 * audit_hooks.h - the pipeline's calls into the audit broker (audit_hooks.c)
 * and the broker's life (opened by setup_active, closed by teardown).
 *
 * request: called before the handler runs (rc == 0; fail closed: non-zero
 * means "do not run") or, for a request refused earlier, with that error.
 * response: called after; non-zero means the response could not be
 * recorded and the pipeline must return nothing of it.
 * pair: both at once, after the handler, for a request whose handler
 * changes nothing (backend_ops.pure_reads): the request entry (stamped
 * req_time, when the request would have been logged) and the response
 * entry go out in one write per device; non-zero as for response.
 */
#ifndef COFFER_CORE_AUDIT_HOOKS_H
#define COFFER_CORE_AUDIT_HOOKS_H

#include <time.h>

#include "core/core_int.h"

struct token_entry;

int audit_hooks_open(struct core *c, struct verr *err);
void audit_hooks_close(struct core *c);
int audit_hooks_request(struct core *c, const struct logical_request *req,
			const struct token_entry *te, int rc, const struct verr *rerr,
			struct verr *err);
int audit_hooks_response(struct core *c, const struct logical_request *req,
			 const struct token_entry *te, const struct logical_response *resp,
			 int rc, const struct verr *rerr, struct verr *err);
int audit_hooks_pair(struct core *c, const struct logical_request *req,
		     const struct token_entry *te, const struct timespec *req_time,
		     const struct logical_response *resp, int rc, const struct verr *rerr,
		     struct verr *err);
/* Whether req is audited at all (a device is enabled, the path is not one
 * Vault leaves out). */
bool audit_hooks_enabled(struct core *c, const struct logical_request *req);

#endif
