/*
 * raft_int.h - internals shared by the raft storage backend's files
 * (raft.c: constructor, storage ops, HA lock; raft_loop.c: the libuv loop
 * thread and the request hand-off; raft_fsm.c: the replicated state machine
 * and its encoding). Not an API: everything outside src/physical uses
 * physical/raft.h.
 *
 * DESIGN
 * Threads: canonical raft runs on ONE libuv loop thread, which owns `raft`,
 * `io`, `transport` and every raft request struct. Request threads never
 * touch them: they build a `struct rop`, append it to `queue` under `mu`,
 * uv_async_send(&wake) and sleep on the op's own `cv` until the loop
 * completes it (one wake-up per write, not one per waiting thread).
 * The loop drains the whole queue per wake-up and encodes every pending
 * write into ONE log entry (one raft_apply), so concurrent writers share a
 * disk sync and a replication round trip.
 * The FSM: an inmem store (`kv`) plus small side tables (node names, the HA
 * holder record). It is written only by the loop (raft's apply/restore
 * callbacks); readers take `fsm_lock` shared to pin the `kv` pointer (a raft
 * snapshot restore swaps it under the exclusive lock). Reads are local: a
 * follower may lag the leader by the replication delay.
 * Mirrors: the loop copies raft's state (role, leader, indexes) into
 * fields guarded by `mu` after every loop iteration (a uv_check handle), so
 * any thread can ask "am I leader" without crossing to the loop; the same
 * check detects a lost leadership and fires the HA lost callback at once.
 * Start-up: a pristine data directory is not started until either the first
 * write (the node bootstraps a one-voter cluster, as Vault's `operator init`
 * does) or a join (the node starts empty and waits for the leader to add it).
 */
#ifndef COFFER_PHYSICAL_RAFT_INT_H
#define COFFER_PHYSICAL_RAFT_INT_H

#include <pthread.h>
#include <openssl/x509.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "physical/physical.h"
#include "physical/raft.h"

/* log record types (first byte of an entry or of a batch member) */
enum {
	RREC_BATCH = 1,  /* u32 n, then n x (u32 len, record) */
	RREC_TXN = 2,    /* u32 n, then n x (u8 kind, u32 klen, key, u32 vlen, val) */
	RREC_HOLDER = 3, /* u64 raft id, u32 len, value: the HA holder record */
	RREC_NAME = 4,   /* u64 raft id, u32 len, node_id: a member's name */
	RREC_STAGE_BEGIN = 5, /* u64 token: start an empty staging store */
	RREC_STAGE_TXN = 6,   /* u64 token, then a TXN body: writes to staging */
	RREC_STAGE_COMMIT = 7,/* u64 token, u64 nkeys: staging replaces kv */
	RREC_REVOKE = 8, /* u64 raft id, u32 len, hex SHA-256 of a node certificate:
			  * the transport refuses that certificate from now on */
	RREC_ISSUED = 9, /* u64 raft id, u32 len, hex SHA-256: a certificate the
			  * cluster issued to (or holds for) member id */
	RREC_REVOKE_MEMBER = 10, /* u64 raft id, u32 len, "" or a hex SHA-256: every
				  * certificate recorded for id, and that one, is
				  * refused from now on (remove-peer, before the
				  * configuration change) */
};

enum rop_kind {
	ROP_APPLY = 1, /* buf: one record (becomes one member of a batch) */
	ROP_BARRIER,   /* wait until everything committed so far is applied */
	ROP_JOIN_START,/* start a pristine node without bootstrapping */
	ROP_ADD,       /* id, addr, role: add a member (leader) */
	ROP_REMOVE,    /* id, buf: the RREC_REVOKE_MEMBER record committed first */
	ROP_TRANSFER,  /* give leadership away (detached) */
	ROP_CONFIG,    /* out: the configuration as Vault's JSON */
	ROP_SNAPSHOT,  /* force a raft snapshot (log compaction) now */
	ROP_STATE,     /* out: per-server health (leader only), autopilot */
};

struct rstore;

struct rop {
	enum rop_kind kind;
	struct rop *next;
	struct rstore *s;
	uint8_t *buf; /* APPLY: malloc'd record, owned by the op */
	size_t len;
	raft_id id;
	char *addr;
	int role;
	json_t *out;
	bool detached; /* nobody waits: the loop frees it when done */
	bool done;     /* guarded by s->mu */
	pthread_cond_t cv; /* done became true (with s->mu): only its waiter wakes */
	int rc;
	struct verr err;
	double deadline; /* parked ops fail after this (monotonic seconds) */
	struct raft_change change, change2;
	struct raft_barrier barrier;
	struct raft_transfer transfer;
	struct raft_apply apply; /* REMOVE: the revocation entry before the change */
	uint64_t t_submit, t_done; /* APPLY: metrics_now() at enqueue, completion */
};

struct rstore_ha {
	struct physical_ha base; /* must be first */
	struct rstore *s;
};

/* a member's name (node_id) by raft id: FSM side table */
struct rname {
	raft_id id;
	char *name;
};

/* a node certificate by the SHA-256 of its DER (hex) and the member it
 * belongs to: the issued list (RREC_ISSUED) and the revocation list
 * (RREC_REVOKE, RREC_REVOKE_MEMBER), both replicated through the FSM */
#define RSTORE_FP_HEX 65
struct rcertfp {
	raft_id id;
	char fp[RSTORE_FP_HEX];
};

/* the raft transport's credentials (raft_tls.c); mu guards every field */
struct rtls {
	pthread_mutex_t mu;
	char *dir;     /* <path>/tls */
	char *node_id; /* the CN this node's certificate must carry */
	char *ca_cert, *node_cert; /* PEM */
	char *node_key;            /* PEM in secmem */
	size_t node_key_len;
	char *ca_key; /* PEM in secmem: the bootstrap node until it is moved below
		       * the barrier, and the active node (to sign joiners) */
	size_t ca_key_len;
	char *pending_key; /* a joiner's fresh key until its certificate comes */
	size_t pending_len;
	bool ready; /* ca_cert, node_cert and node_key are set */
	/* written by the FSM (loop thread): certificates refused by the
	 * transport, and those issued to members and not revoked yet */
	struct rcertfp *revoked, *issued;
	size_t nrevoked, nissued;
};

struct rstore {
	struct physical base; /* must be first */
	struct rstore_ha ha;

	/* immutable after open */
	char *dir, *raft_dir, *node_id, *addr;
	raft_id id;
	unsigned election_ms, heartbeat_ms, threshold, trailing;
	/* log-compaction pacing: a snapshot is considered every snap_interval_ms
	 * (randomised in [1x, 2x) per node), and taken then if `threshold`
	 * entries have been applied since the last one; between two checks only
	 * a log of SNAP_HARD_FACTOR x threshold entries forces one. 0: libraft's
	 * own check after every applied entry (docs/storage-raft.md). The hard
 * bound is drawn in [SNAP_HARD_FACTOR, 1.5 x SNAP_HARD_FACTOR) x threshold
 * after each snapshot. */
	unsigned snap_interval_ms;

	/* the FSM: written by the loop only */
	pthread_rwlock_t fsm_lock; /* pins kv (exclusive: swap) */
	struct physical *kv;
	struct physical *stage; /* a restore being streamed in, or NULL */
	uint64_t stage_token;
	struct snap_job *snap_job; /* a log-compaction snapshot being taken */
	struct rname *names; /* guarded by mu */
	size_t nnames;
	raft_id holder_id; /* guarded by mu */
	char *holder_value;

	/* the loop (owned by the loop thread after start) */
	uv_loop_t loop;
	uv_async_t wake;
	uv_check_t watch;
	uv_timer_t snap_timer; /* log-compaction pacing (snap_interval_ms) */
	uint64_t snap_rng;     /* the timer's jitter (xorshift64, loop only) */
	unsigned snap_hard;    /* the current hard bound (loop only) */
	pthread_t thread;
	bool thread_started;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct rtls tls;
	struct raft_fsm fsm;
	/* raft_uv's append, wrapped to time the log writes (disk + fsync) */
	int (*io_append)(struct raft_io *io, struct raft_io_append *req,
			 const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
	bool started; /* raft_start done (loop thread) */
	struct rop *parked, *parked_tail; /* writes waiting for a leader */
	struct rop **pending; /* leader: writes waiting for a batch slot */
	size_t npending, pending_cap;
	unsigned inflight; /* batches applied and not yet committed */
	struct {
		raft_id id;
		double seen; /* monotonic seconds of the last message from it */
	} contacts[64]; /* leader: follower liveness for autopilot (loop only) */

	/* raft allows one membership change at a time: add/remove hold this */
	pthread_mutex_t change_mu;

	/* shared, guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t state_cv; /* the mirrored state changed */
	struct rop *queue, *queue_tail;
	bool closing, closed;
	bool pristine; /* no raft state on disk and not yet started */
	bool joining;  /* ROP_JOIN_START seen: never bootstrap */
	int state;     /* RAFT_FOLLOWER ... mirrored */
	raft_id leader_id;
	char leader_addr[256];
	raft_index commit_index, applied_index, last_index;
	raft_index start_last_index; /* the log's last index when raft started */
	raft_term term;
	unsigned long leader_epoch; /* bumped on every transition to leader */
	bool ha_held;
	bool ha_woken; /* ha_wake: the wait in progress (or the next) returns */
	physical_ha_lost_fn lost;
	void *lost_ctx;
	bool sole_voter; /* the configuration has exactly one voter: us */
	bool member;     /* we appear in the configuration */
};

/* raft_loop.c */
int rstore__loop_start(struct rstore *s, struct verr *err);
void rstore__loop_stop(struct rstore *s);
/* Queue op and wait for it (op->rc, op->err). Detached ops return at once
 * and are freed by the loop. */
int rstore__submit(struct rstore *s, struct rop *op, struct verr *err);
struct rop *rstore__op_new(enum rop_kind kind);
void rstore__op_free(struct rop *op);
double rstore__now(void);

/* raft_transport.c: raft over mutual TLS with the credentials in creds */
int rstore__transport_init(struct raft_uv_transport *t, uv_loop_t *loop, struct rtls *creds);
void rstore__transport_fini(struct raft_uv_transport *t);
/* The fingerprint (hex SHA-256) of the certificate member id last presented
 * on a verified connection to or from this node: 0, or -1 when none was seen
 * since the transport started. Any thread. */
int rstore__transport_seen(struct raft_uv_transport *t, raft_id id, char fp[RSTORE_FP_HEX]);
/* Shut down every live connection whose peer certificate is now revoked
 * (after the FSM applied a revocation; any thread). */
void rstore__transport_drop_revoked(struct raft_uv_transport *t);

/* raft_tls.c */
/* Load <dir>/tls/; has_state: the node has raft data, so it must have its
 * credentials (fail closed: no plaintext fallback). */
int rstore__tls_open(struct rtls *t, const char *dir, const char *node_id, bool has_state,
		     struct verr *err);
void rstore__tls_close(struct rtls *t);
/* The revocation list (replicated through the FSM): add one (idempotent;
 * VERR_INTERNAL when out of memory), ask whether fp is on it. */
int rstore__tls_revoke(struct rtls *t, raft_id id, const char *fp);
bool rstore__tls_revoked(struct rtls *t, const char *fp);
/* The issued list: record a certificate of member id (idempotent; ignored
 * when fp is revoked already); whether fp is on it. */
int rstore__tls_record_issued(struct rtls *t, raft_id id, const char *fp);
bool rstore__tls_issued(struct rtls *t, const char *fp);
/* remove-peer: move every certificate recorded for id, and fp when not
 * NULL, to the revocation list; *n (may be NULL) = how many were added. */
int rstore__tls_revoke_member(struct rtls *t, raft_id id, const char *fp, size_t *n);
/* how many revoked certificates belong to member id */
size_t rstore__tls_revoked_of(struct rtls *t, raft_id id);
/* Replace both lists whole (a snapshot restore; takes ownership). */
void rstore__tls_set_lists(struct rtls *t, struct rcertfp *revoked, size_t nrevoked,
			   struct rcertfp *issued, size_t nissued);
/* fp is 64 lower-case hex digits */
bool rstore__fp_valid(const char *fp);
/* The hex SHA-256 of a certificate's DER (a PEM for _pem): 0 or -1. */
int rstore__tls_fp_x509(X509 *x, char fp[RSTORE_FP_HEX]);
int rstore__tls_fp_pem(const char *pem, char fp[RSTORE_FP_HEX]);
/* This node's own certificate's fingerprint: 0, or -1 when it has none. */
int rstore__tls_own_fp(struct rtls *t, char fp[RSTORE_FP_HEX]);
/* a new cluster: generate the raft CA and this node's certificate */
int rstore__tls_bootstrap(struct rtls *t, struct verr *err);
int rstore__tls_keygen(struct rtls *t, char **pub_pem, struct verr *err);
int rstore__tls_install(struct rtls *t, const char *cert_pem, const char *ca_pem,
			struct verr *err);

/* raft.c: the raft id of a node_id */
raft_id rstore__id_for(const char *node_id);
/* raft.c: append one record (rec: malloc'd, always consumed) through the
 * log and wait for it to apply; VERR_STANDBY on a follower. */
int rstore__submit_record(struct rstore *s, uint8_t *rec, size_t len, struct verr *err);

/* raft_fsm.c */
/* the apply result of an entry the state machine skipped as malformed */
#define RSTORE_REFUSED ((void *)&rstore__refused)
extern const int rstore__refused;
void rstore__fsm_init(struct rstore *s);
/* Encode a transaction record (malloc'd into *out). */
int rstore__encode_txn(uint8_t **out, size_t *len, const struct physical_txn_op *ops, size_t n,
		       uint64_t stage_token);
int rstore__encode_idstr(uint8_t **out, size_t *len, uint8_t type, raft_id id, const char *str);
int rstore__encode_u64s(uint8_t **out, size_t *len, uint8_t type, uint64_t a, uint64_t b);
/* apply one log entry to the FSM (loop thread) */
int rstore__fsm_apply_entry(struct rstore *s, const uint8_t *buf, size_t len);
/* the name of member id (malloc'd) or NULL; takes mu */
char *rstore__name_of(struct rstore *s, raft_id id);
/* whether the replicated table names id (takes mu) */
bool rstore__has_name(struct rstore *s, raft_id id);

/* Log-compaction pacing (raft_loop.c): the threshold libraft checks after
 * every applied entry while no paced snapshot is due (threshold when pacing
 * is off, the current hard bound when it is on). Loop thread. */
#define SNAP_HARD_FACTOR 8u
unsigned rstore__snap_idle_threshold(const struct rstore *s);
void rstore__snap_redraw(struct rstore *s);

#endif
