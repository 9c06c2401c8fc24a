/*
 * unseal.h - the key-share ceremonies and the sealed-state endpoints
 * (unseal.c): sys/init, sys/unseal, sys/seal-status, sys/health (answered
 * before routing, without the state lock: the transitions they cause take
 * it in state.c), and sys/rekey, sys/generate-root (rows of sys.c). They
 * talk to the seal through seal.h and to the barrier only to make keys.
 */
#ifndef COFFER_CORE_UNSEAL_H
#define COFFER_CORE_UNSEAL_H

#include "core/core_int.h"

/* 1 if req->path is one of the sealed-state endpoints (the result in *rc,
 * *resp), 0 otherwise. */
struct seal;

int unseal_sealed_path(struct core *c, struct logical_request *req,
		       struct logical_response *resp, int *rc, struct verr *err);
int unseal_init(struct core *c, const json_t *data, json_t **out, struct verr *err);
int unseal_submit(struct core *c, const json_t *data, json_t **out, struct verr *err);
/* An auto seal's unseal with no key typed (autounseal.c): 0 when unsealed
 * (or already), VERR_UNINIT before sys/init, VERR_PRECONDITION while a seal
 * migration waits for its keys, else the seal's error (VERR_UNAVAILABLE:
 * key service down; VERR_INVALID/DENIED: wrong key, altered blob, access). */
int unseal_auto(struct core *c, struct verr *err);
/* which: "init", "update", "verify" or "backup" (rekey; "recovery-init", "recovery-update" for
 * sys/rekey-recovery-key), "attempt" or "update" (generate-root) */
int unseal_rekey(struct core *c, enum logical_op op, const char *which, const json_t *data,
		 json_t **out, struct verr *err);
int unseal_generate_root(struct core *c, enum logical_op op, const char *which,
			 const json_t *data, json_t **out, struct verr *err);
/* sys/rekey/backup, sys/rekey-recovery-key/backup: GET the PGP-encrypted
 * shares kept by a rekey with backup=true (VERR_NOT_FOUND when none),
 * DELETE them. */
int unseal_rekey_backup(struct core *c, bool recovery, enum logical_op op, json_t **out,
			struct verr *err);
/* SIGHUP with a changed multi-seal (core_seals_change in core.h). */
int unseal_seals_change(struct core *c, struct seal **members, const char *const *names,
			const int *prio, size_t n, struct verr *err);
/* A multi-seal's wrapped copies brought in line with the configured seals
 * (added ones wrap the root key, removed ones' copies are deleted), on the
 * active node only: state.c calls it once a node becomes active (right
 * after the unseal without HA, when it takes the HA lock with HA). Takes
 * the state lock shared and unseal_lock; the root key is the barrier's,
 * copied into secmem for the sync and wiped. Errors are logged. */
void unseal_sync_seals(struct core *c);
/* Wipe every key share a ceremony still holds (core_free). */
void unseal_wipe(struct core *c);

#endif
