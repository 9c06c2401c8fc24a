/*
 * periodic.c - the periodic-hook thread (periodic.h). One tick calls
 * backend_ops.periodic on every mount that has one, through router_foreach
 * (each mount held by a reference, no table lock); an error is logged and
 * the next tick runs anyway. The first tick comes one interval after start.
 */
#include "core/periodic.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/router.h"
#include "util/log.h"

struct periodic {
	struct core *c;
	int interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
};

static void tick_one(struct mount_entry *m, void *ctx)
{
	(void)ctx;
	if (!m->ops || !m->ops->periodic || !m->inst)
		return;
	struct verr e = {0};
	if (m->ops->periodic(m->inst, &e))
		log_warn("core", "periodic function of %s failed: %s", m->path, e.msg);
}

static void *periodic_main(void *arg)
{
	struct periodic *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += p->interval_ms / 1000;
		ts.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!p->stop && pthread_cond_timedwait(&p->cond, &p->mu, &ts) == 0)
			;
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->mu);
		router_foreach(p->c, tick_one, NULL);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int periodic_start(struct core *c, int interval_ms, struct verr *err)
{
	struct periodic *p = calloc(1, sizeof(*p));
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	p->c = c;
	p->interval_ms = interval_ms > 0 ? interval_ms : 60000;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return verr_set(err, VERR_INTERNAL, "cannot start the periodic thread");
	}
	c->periodic = p;
	return 0;
}

void periodic_stop(struct core *c)
{
	struct periodic *p = c->periodic;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p);
	c->periodic = NULL;
}
