/*
 * sys_raft.h - the sys/storage/raft endpoints (sys_raft.c): rows of
 * sys.c's path table, plus the join endpoint unseal.c answers while the
 * node is sealed (a joining node is not initialized yet).
 */
#ifndef COFFER_CORE_SYS_RAFT_H
#define COFFER_CORE_SYS_RAFT_H

#include "logical/logical.h"

struct core;

extern const struct field_def sys_raft_fields[];
int sys_raft_configuration(struct logical_request *req, struct logical_response *resp,
			   struct verr *err);
int sys_raft_remove_peer(struct logical_request *req, struct logical_response *resp,
			 struct verr *err);
int sys_raft_challenge(struct logical_request *req, struct logical_response *resp,
		       struct verr *err);
int sys_raft_answer(struct logical_request *req, struct logical_response *resp,
		    struct verr *err);
int sys_raft_snapshot(struct logical_request *req, struct logical_response *resp,
		      struct verr *err);
int sys_raft_snapshot_force(struct logical_request *req, struct logical_response *resp,
			    struct verr *err);
/* join on an unsealed node: refused */
int sys_raft_join_unsealed(struct logical_request *req, struct logical_response *resp,
			   struct verr *err);
/* POST sys/storage/raft/join on a sealed, uninitialized node: *out is the
 * bare JSON answer. */
int sys_raft_join(struct core *c, const json_t *data, json_t **out, struct verr *err);

#endif
