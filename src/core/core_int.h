/*
 * core_int.h - struct core: the core's state, shared by the files of
 * src/core/ only. Each file's functions are declared in that file's own
 * header (state.h, router.h, pipeline.h, ...); this header declares no
 * function. The server creates the core through core.h and never includes
 * this.
 *
 * DESIGN (docs/architecture.md has the picture)
 * States (c->state, written only by state.c under the write side of
 * state_lock):
 *
 *   SEALED --unseal--> STANDBY --HA lock acquired--> ACTIVE
 *      ^                  |  ^                          |
 *      +------seal--------+  +-----lock lost/step-down--+
 *      +--------------------------seal------------------+
 *
 *   Without HA (file, inmem storage) unseal goes straight through STANDBY
 *   to ACTIVE in one transition. STANDBY holds only the unsealed barrier:
 *   it has written nothing. ACTIVE holds everything setup_active() opened
 *   (state.c: stores, mounts, leases, audit, engines' initialize, the
 *   periodic thread) and is the only state in which anything writes.
 *
 * Locks, in the order they are taken:
 *   init_lock    mutex: one sys/init at a time (taken before state_lock).
 *   state_lock   rwlock, writer-preferring (a seal is not starved by a
 *                stream of requests). Every request holds it for reading for
 *                its whole run; transitions take it for writing. Nothing that
 *                runs under the read lock takes it again.
 *   unseal_lock  mutex: key-share progress of unseal, rekey, generate-root;
 *                never held while taking state_lock.
 *   mounts_lock  rwlock: the mount table (router.c).
 *   ha_mu        mutex: the c->ha handle (state.c starts/stops the HA loop).
 * The HA loop thread and the backend's lost-lock callback take state_lock
 * for writing, so nobody joins them while holding it.
 *
 * Storage layout, below the barrier (encrypted):
 *   core/mounts, core/auth     mount tables (JSON)     core/cluster  id, name
 *   sys/token/...              token store             sys/policy/... policies
 *   sys/expire/...             leases                  sys/audit...   devices
 *   logical/<uuid>/...         secrets engine views    auth/<uuid>/... auth views
 * Outside the barrier (plain physical): core/seal-config (JSON) and the
 * wrapped root key at the seal's root path (core/shamir-root).
 */
#ifndef COFFER_CORE_CORE_INT_H
#define COFFER_CORE_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "logical/logical.h"

struct barrier;
struct token_store;
struct policy_store;
struct expiration;
struct audit_broker;
struct ha_loop;
struct periodic;

enum core_state { CORE_SEALED = 0, CORE_STANDBY, CORE_ACTIVE };

/* Key shares collected so far for one ceremony (unseal, rekey or
 * generate-root); each part in secmem, wiped on reset. */
struct unseal_progress {
	uint8_t *parts[256];
	size_t lens[256];
	int n;
	char nonce[40];
};

struct rekey_state {
	bool started;
	char nonce[40];
	int new_shares, new_threshold;
	struct unseal_progress prog;
	bool verify_required, backup;
	json_t *pgp_keys;             /* owned: base64 OpenPGP keys, or NULL */
	json_t *pgp_fprs;             /* owned: their fingerprints, or NULL */
	/* require_verification: the new shares are out but not yet in effect;
	 * the new KEK and the root key (secmem) wait for sys/rekey/verify */
	uint8_t *pending_kek, *pending_root;
	char verify_nonce[40];
	struct unseal_progress vprog;
};

struct genroot_state {
	bool started;
	char nonce[40];
	char otp[64];
	struct unseal_progress prog;
};

struct core {
	struct core_opts o;
	struct physical *phys;        /* owned */
	struct barrier *barrier;
	struct physical *bphys;       /* the barrier's shim (borrowed from it) */

	/* ---- state (state.c) ---- */
	pthread_rwlock_t state_lock;
	_Atomic int state;            /* enum core_state; written under the write lock */
	_Atomic bool seal_requested;  /* sys/seal: performed once the request ends */
	_Atomic bool stepdown_requested;
	_Atomic bool stepdown_no_hold; /* a reload: re-acquire at once */
	int64_t active_since;
	pthread_mutex_t ident_mu;     /* guards cluster_id (read without state_lock) */
	char cluster_id[40];          /* read at unseal, created by the first active */
	char cluster_name[64];
	pthread_mutex_t ha_mu;
	struct ha_loop *ha;           /* guarded by ha_mu; set under the write lock */
	char node_id[40];             /* this process, in the HA advertisement */
	pthread_mutex_t cluster_mu;   /* guards the cluster TLS material (cluster.c) */
	char *cluster_cert, *cluster_key; /* PEM; the key in secmem */
	size_t cluster_key_len;
	uint64_t cluster_gen;
	pthread_mutex_t echo_mu;      /* guards echoes */
	json_t *echoes;               /* node_id -> standby heartbeat (ACTIVE) */
	struct periodic *periodic;    /* ACTIVE only */
	int telemetry_id;             /* the metrics collector (telemetry.c) */
	struct telemetry_usage *usage; /* the usage gauges' walker (telemetry.c) */

	/* ---- ceremonies (unseal.c), guarded by unseal_lock ---- */
	pthread_mutex_t init_lock;
	pthread_mutex_t unseal_lock;
	struct unseal_progress unseal;
	struct rekey_state rekey;
	struct genroot_state genroot;

	/* ---- ACTIVE only: opened by setup_active, closed by teardown ---- */
	pthread_rwlock_t mounts_lock;
	struct mount_entry **mounts;  /* secret + auth mounts, any order (router.c) */
	size_t nmounts, capmounts;
	bool mounts_fresh;            /* tables were absent: persist at initialize */
	struct storage_view sys_view;
	struct storage_view token_view;
	struct storage_view policy_view;
	struct token_store *tokens;
	struct policy_store *policies;
	struct expiration *expire;
	struct audit_broker *audit;
};

#endif
