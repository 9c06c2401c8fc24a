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
/* sys/leader's body (Vault's shape), as this node sees it. */
struct core;
int sys_leader_status(struct core *c, json_t **out, struct verr *err);

#endif
