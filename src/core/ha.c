/*
 * ha.c - the HA loop (ha.h).
 *
 * Thread: loop_main. State guarded by mu: stop, held, lost_flag,
 * stepdown_ms, hold_until_ms; cond wakes the loop for each of them. The
 * backend's lost callback only sets lost_flag, fences and signals.
 */
#include "core/ha.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

struct ha_loop {
	struct physical_ha *lock;
	char *value;
	struct ha_callbacks cb;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, held, lost_flag;
	int stepdown_ms;        /* > 0: give up the lock, hold off that long */
	unsigned unreachable;   /* failed acquires since the last warning (loop thread) */
	int64_t last_warn_ms;   /* loop thread only */
	int64_t hold_until_ms;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on h->cond for up to ms (h->mu held). */
static void wait_ms(struct ha_loop *h, int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&h->cond, &h->mu, &ts);
}

/* The backend learned the lock is gone (its own thread). */
static void on_lost(void *ctx)
{
	struct ha_loop *h = ctx;
	h->cb.fence(h->cb.ctx);
	pthread_mutex_lock(&h->mu);
	h->lost_flag = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
}

/* Active -> standby: fence, step down, release (h->mu not held). */
static void give_up(struct ha_loop *h, const char *why)
{
	log_warn("core", "HA lock %s: stepping down to standby", why);
	h->cb.fence(h->cb.ctx);
	h->cb.lost(h->cb.ctx);
	physical_ha_release(h->lock);
	pthread_mutex_lock(&h->mu);
	h->held = false;
	h->lost_flag = false;
	pthread_mutex_unlock(&h->mu);
}

static void *loop_main(void *arg)
{
	struct ha_loop *h = arg;
	int retry = h->lock->retry_interval_ms > 0 ? h->lock->retry_interval_ms : 1000;
	int renew = h->lock->renew_interval_ms > 0 ? h->lock->renew_interval_ms : 1000;
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		if (!h->held) {
			int64_t now = mono_ms();
			if (now < h->hold_until_ms) {
				wait_ms(h, h->hold_until_ms - now);
				continue;
			}
			pthread_mutex_unlock(&h->mu);
			struct verr e = {0};
			int got = physical_ha_acquire(h->lock, h->value, on_lost, h, &e);
			if (got < 0) {
				/* a standby retries every retry_interval: say it once
				 * every 30 s (with the count), not at every retry */
				int64_t now_w = mono_ms();
				h->unreachable++;
				if (now_w - h->last_warn_ms >= 30000) {
					log_warn("core", "HA lock: cannot reach the lock (%u attempts): %s",
						 h->unreachable, e.msg);
					h->last_warn_ms = now_w;
					h->unreachable = 0;
				}
			} else {
				h->unreachable = 0;
			}
			if (got == 1) {
				pthread_mutex_lock(&h->mu);
				h->held = true;
				h->lost_flag = false;
				bool stop = h->stop;
				pthread_mutex_unlock(&h->mu);
				struct verr ae = {0};
				if (stop || h->cb.became_active(h->cb.ctx, &ae)) {
					if (!stop)
						log_error("core", "becoming active failed: %s", ae.msg);
					h->cb.fence(h->cb.ctx);
					physical_ha_release(h->lock);
					pthread_mutex_lock(&h->mu);
					h->held = false;
					wait_ms(h, retry);
					continue;
				}
				pthread_mutex_lock(&h->mu);
				continue;
			}
			pthread_mutex_lock(&h->mu);
			/* held by another node: a lock that can say when it is
			 * freed is waited on (takeover starts the moment it is
			 * gone), otherwise polled */
			if (got == 0 && !h->stop && h->lock->ops->wait) {
				pthread_mutex_unlock(&h->mu);
				int w = physical_ha_wait(h->lock, retry);
				pthread_mutex_lock(&h->mu);
				if (w >= 0)
					continue;
			}
			wait_ms(h, retry);
			continue;
		}
		/* held: renew, or give up on loss / step-down */
		if (!h->lost_flag && !h->stepdown_ms)
			wait_ms(h, renew);
		if (h->stop)
			break;
		if (h->lost_flag || h->stepdown_ms) {
			int hold = h->stepdown_ms;
			bool lost = h->lost_flag;
			h->stepdown_ms = 0;
			pthread_mutex_unlock(&h->mu);
			give_up(h, lost ? "lost" : "released by step-down");
			pthread_mutex_lock(&h->mu);
			/* a node that just lost its lock lets the others try first */
			h->hold_until_ms = mono_ms() + (hold > 0 ? hold : 2 * retry);
			continue;
		}
		pthread_mutex_unlock(&h->mu);
		struct verr e = {0};
		int rc = physical_ha_renew(h->lock, &e);
		if (rc) {
			log_warn("core", "HA lock renewal failed: %s", e.msg);
			give_up(h, "lost");
		}
		pthread_mutex_lock(&h->mu);
		if (rc)
			h->hold_until_ms = mono_ms() + 2 * retry;
	}
	bool held = h->held;
	pthread_mutex_unlock(&h->mu);
	if (held)
		give_up(h, "released (sealing)");
	return NULL;
}

int ha_loop_start(struct ha_loop **out, struct physical_ha *lock, const char *value,
		  const struct ha_callbacks *cb, struct verr *err)
{
	*out = NULL;
	struct ha_loop *h = calloc(1, sizeof(*h));
	if (!h || !(h->value = strdup(value ? value : ""))) {
		free(h);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	h->lock = lock;
	h->cb = *cb;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&h->thread, NULL, loop_main, h) != 0) {
		pthread_cond_destroy(&h->cond);
		pthread_mutex_destroy(&h->mu);
		free(h->value);
		free(h);
		return verr_set(err, VERR_INTERNAL, "cannot start the HA thread");
	}
	*out = h;
	return 0;
}

void ha_loop_stop(struct ha_loop *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
	physical_ha_wake(h->lock); /* a standby blocked in the lock's wait */
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->mu);
	free(h->value);
	free(h);
}

void ha_loop_step_down(struct ha_loop *h, int hold_ms)
{
	pthread_mutex_lock(&h->mu);
	if (h->held)
		h->stepdown_ms = hold_ms > 0 ? hold_ms : 1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->mu);
}

int ha_loop_leader(struct ha_loop *h, char **value, bool *is_self, struct verr *err)
{
	*value = NULL;
	*is_self = false;
	int rc = physical_ha_holder(h->lock, value, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->mu);
	*is_self = h->held && *value && !strcmp(*value, h->value);
	pthread_mutex_unlock(&h->mu);
	return 0;
}
