/*
 * acl_glue.h - the pipeline's narrow view of the token store, policy store
 * and expiration manager (implemented in glue.c). Keeping the pipeline on
 * these few calls lets each store evolve behind them.
 */
#ifndef COFFER_CORE_ACL_GLUE_H
#define COFFER_CORE_ACL_GLUE_H

#include "core/core_int.h"

struct coreglue_acl_result {
	bool allowed;
	bool sudo;
	bool is_root;
};

int coreglue_token_lookup(struct core *c, const char *raw, struct token_entry **out,
			  struct verr *err);
void coreglue_token_free(struct token_entry *te);
const json_t *coreglue_token_cidrs(const struct token_entry *te);
const char *coreglue_token_hash(const struct token_entry *te);
const char *coreglue_token_accessor(const struct token_entry *te);
int coreglue_acl_check(struct core *c, const struct token_entry *te, enum logical_op op,
		       const char *path, const json_t *data, struct coreglue_acl_result *out,
		       struct verr *err);
int coreglue_token_use(struct core *c, struct token_entry *te, bool *revoke_after,
		       struct verr *err);
void coreglue_token_revoke(struct core *c, const struct token_entry *te);
int coreglue_issue_login_token(struct core *c, struct mount_entry *m,
			       struct logical_request *req, struct logical_response *resp,
			       struct verr *err);
int coreglue_register_lease(struct core *c, struct mount_entry *m, struct logical_request *req,
			    struct logical_response *resp, struct verr *err);
/* seal.c uses these at unseal/seal */
int coreglue_stores_open(struct core *c, struct verr *err);
void coreglue_stores_close(struct core *c);
int coreglue_root_token(struct core *c, char **out, struct verr *err);
/* the token's policies, for capabilities queries */
int coreglue_capabilities(struct core *c, const struct token_entry *te, const char *path,
			  json_t **out, struct verr *err);

int coreglue_token_lookup_accessor(struct core *c, const char *accessor,
				   struct token_entry **out, struct verr *err);
/* policies (sys/policy, sys/policies/acl) */
int coreglue_policy_list(struct core *c, json_t **out, struct verr *err);
int coreglue_policy_get(struct core *c, const char *name, char **out_text, struct verr *err);
int coreglue_policy_put(struct core *c, const char *name, const char *text, struct verr *err);
int coreglue_policy_delete(struct core *c, const char *name, struct verr *err);
int coreglue_revoke_mount_leases(struct core *c, const char *prefix);

/* audit hooks (audit_hooks.c). request: called before the handler runs
 * (rc == 0, fail closed: non-zero means "do not run") or, for a request
 * refused earlier, with that error. response: called after; non-zero means
 * the response could not be recorded. */
int coreglue_audit_request(struct core *c, const struct logical_request *req,
			   const struct token_entry *te, int rc, const struct verr *rerr,
			   struct verr *err);
int coreglue_audit_response(struct core *c, const struct logical_request *req,
			    const struct token_entry *te, const struct logical_response *resp,
			    int rc, const struct verr *rerr, struct verr *err);
void coreglue_reopen_audit(struct core *c);

#endif
