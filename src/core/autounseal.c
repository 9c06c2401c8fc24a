/*
 * autounseal.c - the auto seals' unseal with no key typed (core.h
 * core_autounseal_*): one thread per server that calls unseal_auto until
 * the core is unsealed, with backoff.
 *
 * DESIGN
 *  - First attempt at once (restart-to-serving is one unwrap: one KMS,
 *    transit or HSM call), then 100 ms doubling to 10 s.
 *  - Not initialised yet: poll (another node of an HA cluster may run
 *    sys/init; on this node unseal_init unseals by itself).
 *  - Key service down, wrong key, revoked token, wrong PIN, altered blob:
 *    stay sealed, log the seal's message (at the first failure, whenever
 *    the message changes, then every 60 s), and retry; never crash.
 *  - A pending seal migration waits for an operator: the thread ends.
 *  - Ends once unsealed: a later manual sys/seal stays sealed (until a
 *    restart or an unseal with recovery keys), as in Vault.
 * Thread: the loop holds no lock between attempts; stop is a condition
 * variable so core_autounseal_stop returns at once.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_int.h"
#include "core/state.h"
#include "core/unseal.h"
#include "seal/seal.h"
#include "util/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define RELOG_MS 60000

struct core_autounseal {
	struct core *c;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* false when asked to stop */
static bool sleep_ms(struct core_autounseal *a, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->mu);
	while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &ts) == 0)
		;
	bool go = !a->stop;
	pthread_mutex_unlock(&a->mu);
	return go;
}

static void *autounseal_main(void *arg)
{
	struct core_autounseal *a = arg;
	int backoff = BACKOFF_MIN_MS, attempts = 0;
	char last[VERR_MSG_MAX] = "";
	int64_t last_log = 0, t0 = now_ms();
	for (;;) {
		struct verr e = {0};
		int rc = unseal_auto(a->c, &e);
		attempts++;
		if (rc == 0) {
			if (state_get(a->c) != CORE_SEALED)
				log_info("core", "auto-unseal with the %s seal succeeded (%d attempt%s, %lld ms)",
					 seal_type(a->c->o.seal), attempts, attempts == 1 ? "" : "s",
					 (long long)(now_ms() - t0));
			break;
		}
		if (rc == VERR_PRECONDITION) {
			log_warn("core", "auto-unseal: %s", e.msg);
			break;
		}
		if (rc == VERR_UNINIT) {
			backoff = 500; /* wait for sys/init, here or on another node */
		} else {
			int64_t t = now_ms();
			if (strcmp(last, e.msg) || t - last_log >= RELOG_MS) {
				log_error("core", "auto-unseal failed, staying sealed and retrying in %d ms: %s",
					  backoff, e.msg);
				snprintf(last, sizeof(last), "%s", e.msg);
				last_log = t;
			}
		}
		if (!sleep_ms(a, backoff))
			break;
		if (rc != VERR_UNINIT)
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		else
			backoff = BACKOFF_MIN_MS;
	}
	return NULL;
}

int core_autounseal_start(struct core_autounseal **out, struct core *c, struct verr *err)
{
	*out = NULL;
	if (!seal_recovery_keys(c->o.seal))
		return 0; /* Shamir: an operator unseals */
	struct core_autounseal *a = calloc(1, sizeof(*a));
	if (!a)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	a->c = c;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->th, NULL, autounseal_main, a)) {
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		free(a);
		return verr_set(err, VERR_INTERNAL, "cannot start the auto-unseal thread");
	}
	*out = a;
	return 0;
}

void core_autounseal_stop(struct core_autounseal *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->th, NULL);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}
