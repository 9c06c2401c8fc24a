/*
 * audit_hooks.c - the pipeline's calls into the audit broker. With no audit
 * device enabled every request proceeds.
 */
#include "core/acl_glue.h"

int coreglue_audit_request(struct core *c, const struct logical_request *req,
			   const struct token_entry *te, int rc, const struct verr *rerr,
			   struct verr *err)
{
	return 0;
}

int coreglue_audit_response(struct core *c, const struct logical_request *req,
			    const struct token_entry *te, const struct logical_response *resp,
			    int rc, const struct verr *rerr, struct verr *err)
{
	return 0;
}

void coreglue_reopen_audit(struct core *c)
{
}
