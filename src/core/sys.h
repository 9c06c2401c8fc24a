/*
 * sys.h - the `sys/` backend (sys.c, with the rows of sys_audit.c and
 * sys_leases.c): mounted by the router at sys/; its instance is the core
 * (mount_info.core_private). The paths that work while sealed (sys/init,
 * sys/unseal, sys/seal-status, sys/health) are answered before routing by
 * unseal.c.
 */
#ifndef COFFER_CORE_SYS_H
#define COFFER_CORE_SYS_H

#include "logical/logical.h"

extern const struct backend_ops sys_backend_ops;

/* Vault answers some sys endpoints with a bare JSON object, no envelope:
 * resp becomes that object (taken). */
void sys_raw_json(struct logical_response *resp, json_t *obj);
/* sys_pwpolicy.c: password policies (sys/policies/password/...) */
extern const struct field_def sys_pwpolicy_fields[];
int sys_pwpolicy_write(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_pwpolicy_read(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_pwpolicy_delete(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_pwpolicy_list(struct logical_request *req, struct logical_response *resp, struct verr *err);
int sys_pwpolicy_generate(struct logical_request *req, struct logical_response *resp,
			  struct verr *err);
/* The stored HCL of a named password policy (malloc'd); VERR_NOT_FOUND. */
struct core;
int sys_password_policy_text(struct core *c, const char *name, char **hcl, struct verr *err);

/* sys/leader's body (Vault's shape), as this node sees it. */
struct core;
int sys_leader_status(struct core *c, json_t **out, struct verr *err);

#endif
