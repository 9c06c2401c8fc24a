/*
 * raft.h - the integrated raft storage backend (canonical raft + libuv):
 * the constructor the registry names, and the membership / status /
 * snapshot calls the core uses for the sys/storage/raft endpoints. Every other
 * caller uses the generic physical.h interface.
 *
 * All functions take the `struct physical *` physical_raft_new returned
 * (VERR_INVALID for any other backend), may be called from any thread and
 * block until the raft loop has answered. Membership changes must run on
 * the leader (VERR_STANDBY otherwise, naming the leader when known).
 */
#ifndef COFFER_PHYSICAL_RAFT_H
#define COFFER_PHYSICAL_RAFT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "physical/physical.h"

/* conf: path (required), node_id, performance_multiplier, trailing_logs,
 * snapshot_threshold, max_entry_size, raft_addr (host:port raft listens on
 * and advertises; default: cluster_addr's port + 1, since the cluster port
 * itself serves request forwarding), cluster_addr (host:port or a URL; the
 * server passes the top-level one here), retry_join (read by the core,
 * ignored here). */
int physical_raft_new(struct physical **out, const json_t *conf, struct verr *err);

bool physical_is_raft(const struct physical *p);

struct physical_raft_status {
	char node_id[128];
	char addr[256];      /* this node's raft address (host:port) */
	char leader_id[128]; /* "" when no leader is known */
	char leader_addr[256];
	bool is_leader;
	bool pristine; /* never bootstrapped nor joined */
	bool member;   /* part of the raft configuration */
	uint64_t term, commit_index, applied_index, last_index;
};
int physical_raft_status(struct physical *p, struct physical_raft_status *out, struct verr *err);

/* The configuration in Vault's shape: {"index": N, "servers": [{node_id,
 * address, leader, voter, protocol_version}]} (caller owns *out). */
int physical_raft_configuration(struct physical *p, json_t **out, struct verr *err);
/* Leader: every member's replication state, for autopilot: {commit_index,
 * last_index, servers: [{node_id, address, leader, voter, last_index,
 * last_contact_ms, last_term}]} (caller owns *out). VERR_STANDBY on a
 * follower. */
int physical_raft_autopilot_state(struct physical *p, json_t **out, struct verr *err);
/* Leader: add node_id at addr (host:port) as voter or non-voter; returns
 * once the change is committed. Joining twice with the same id and address
 * succeeds. */
int physical_raft_add_peer(struct physical *p, const char *node_id, const char *addr, bool voter,
			   struct verr *err);
/* Leader: remove node_id (VERR_NOT_FOUND when not a member). */
int physical_raft_remove_peer(struct physical *p, const char *node_id, struct verr *err);
/* A pristine node: start raft without bootstrapping, so a leader can add it.
 * VERR_INVALID when the node already has raft state. */
int physical_raft_join_start(struct physical *p, struct verr *err);
/* Wait (up to timeout_ms) until a leader is known and this node's FSM has
 * applied everything the leader had committed when it was asked; 0 or
 * VERR_UNAVAILABLE. */
int physical_raft_wait_ready(struct physical *p, int timeout_ms, struct verr *err);
/* The backend's data directory (`path`), for temporary snapshot files. */
const char *physical_raft_dir(struct physical *p);
/* Take a raft snapshot now (log compaction), regardless of the threshold. */
int physical_raft_compact(struct physical *p, struct verr *err);

/* The FSM's key/value state, for the snapshot archive: every key and value
 * below the barrier (opaque bytes), in key order, as a stream of
 * (u32 klen, key, u32 vlen, val) records written to fn. Consistent: no
 * write is applied while it runs. */
typedef int (*physical_raft_write_fn)(void *ctx, const void *buf, size_t len);
int physical_raft_dump(struct physical *p, physical_raft_write_fn fn, void *ctx, uint64_t *nkeys,
		       struct verr *err);
/* Restore: replace the whole key space with the records read by fn (the
 * same stream physical_raft_dump writes), through the raft log in chunks,
 * atomically on every node: the new state becomes visible only when the
 * final commit entry applies; a failure before it leaves the state as it
 * was. fn returns >0 bytes, 0 at the end, <0 on error (it sets err). */
typedef long (*physical_raft_read_fn)(void *ctx, void *buf, size_t len, struct verr *err);
int physical_raft_load(struct physical *p, physical_raft_read_fn fn, void *ctx, uint64_t *nkeys,
		       struct verr *err);

/* Raft over mutual TLS (docs/storage-raft.md). A joiner generates its key
 * (keygen: the PEM public key, malloc'd) and sends it with the bootstrap
 * challenge; the leader signs it for the joiner's node_id (sign: the node
 * certificate and the raft CA certificate, malloc'd; VERR_INVALID naming
 * raft_public_key when it is not a P-256 public key, VERR_UNAVAILABLE when
 * this node holds no CA key); the joiner checks and stores them (install)
 * before it starts raft. */
int physical_raft_tls_keygen(struct physical *p, char **pub_pem, struct verr *err);
int physical_raft_tls_sign(struct physical *p, const char *node_id, const char *pub_pem,
			   char **cert_pem, char **ca_pem, struct verr *err);
int physical_raft_tls_install(struct physical *p, const char *cert_pem, const char *ca_pem,
			      struct verr *err);
/* The raft CA this node holds (the key in secmem: secmem_free(key, len+1));
 * VERR_NOT_FOUND when it holds none. */
int physical_raft_tls_ca(struct physical *p, char **cert_pem, char **key_pem, size_t *key_len,
			 struct verr *err);
/* Hold the CA (from below the barrier) in memory and remove any local copy
 * of its key (tls/ca.key). VERR_INVALID when it is not the CA this node's
 * transport trusts. */
int physical_raft_tls_set_ca(struct physical *p, const char *cert_pem, const char *key_pem,
			     struct verr *err);
/* Forget the CA key in memory (seal, step-down), unless it has not been
 * moved below the barrier yet. */
void physical_raft_tls_drop_ca(struct physical *p);

#endif
