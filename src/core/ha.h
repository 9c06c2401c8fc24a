/*
 * ha.h - the HA loop (ha.c): one thread per unsealed node with an HA lock.
 * It tries to acquire the lock; once held it calls became_active and
 * renews the lock; when the lock is lost (renew fails, or the backend's lost
 * callback fires) it calls fence at once - from the backend's thread, so
 * writes stop before anything else happens - then lost, releases the lock
 * and starts over. The loop knows nothing of the core: state.c gives it the
 * three callbacks, so the arrows stay one-way.
 *
 * Callbacks run on the loop thread (fence may also run on the backend's
 * thread) and may take the core's state lock for writing; nobody joins the
 * loop while holding that lock.
 */
#ifndef COFFER_CORE_HA_H
#define COFFER_CORE_HA_H

#include <stdbool.h>

#include "physical/physical.h"

struct ha_loop;

struct ha_callbacks {
	/* Lock acquired: become active. Non-zero: the loop releases the lock
	 * and retries after retry_interval_ms. */
	int (*became_active)(void *ctx, struct verr *err);
	/* The lock is (about to be) gone: stop writing now. Fast, non-blocking. */
	void (*fence)(void *ctx);
	/* Step down to standby (after fence). */
	void (*lost)(void *ctx);
	void *ctx;
};

/* Start the loop with `value` as this node's identity in the lock (its
 * api_addr). `lock` is borrowed. */
int ha_loop_start(struct ha_loop **out, struct physical_ha *lock, const char *value,
		  const struct ha_callbacks *cb, struct verr *err);
/* Stop: if active, fence + lost first, then release the lock; join. NULL-safe. */
void ha_loop_stop(struct ha_loop *h);
/* Give the lock up now (sys/step-down) and do not try again for hold_ms. */
void ha_loop_step_down(struct ha_loop *h, int hold_ms);
/* The holder's identity (malloc'd, or NULL when nobody holds it) and whether
 * it is this node. */
int ha_loop_leader(struct ha_loop *h, char **value, bool *is_self, struct verr *err);

#endif
