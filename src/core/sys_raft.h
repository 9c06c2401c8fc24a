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
extern const struct field_def sys_raft_autopilot_fields[];
int sys_raft_autopilot_state(struct logical_request *req, struct logical_response *resp,
			     struct verr *err);
int sys_raft_autopilot_config(struct logical_request *req, struct logical_response *resp,
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

/* Server start: with storage "raft" and retry_join stanzas, a new node keeps
 * trying to join the listed leaders (every 2 s) until it is a member.
 * VERR_INVALID for a stanza without leader_api_addr or an unreadable
 * leader_ca_cert_file. */
int sys_raft_retry_join_start(struct core *c, const json_t *storage_opts, struct verr *err);
/* Server stop, before core_free: ends the background join threads. */
void sys_raft_stop(void);
/* The active node: hold the raft CA stored below the barrier (core/raft/tls),
 * or on the bootstrap node's first activation store its local CA there and
 * remove the local key file. forget: drop the CA key again (step-down,
 * seal). */
int sys_raft_tls_settle(struct core *c, struct verr *err);
void sys_raft_tls_forget(struct core *c);

#endif
