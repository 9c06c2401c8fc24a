/*
 * cluster_echo.c - a standby's heartbeat to the active node (http.h): every
 * ECHO_INTERVAL_MS, while this node is a standby that knows the active
 * node, POST its identity to the active's cluster port (the same mutual-TLS
 * path as forwarded requests, forward.c), so the active node can list it in
 * sys/ha-status. Nothing is sent while sealed, active or alone.
 *
 * One thread; `mu`/`cv` let http_cluster_echo_stop wake and join it.
 */
#include "http/http_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define ECHO_INTERVAL_MS 2000
#define ECHO_TARGET "/v1/sys/internal/cluster/echo"

struct http_echo {
	struct core *core;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void echo_once(struct http_echo *e)
{
	struct core_forward f;
	struct verr err = {0};
	if (core_forward_target(e->core, &f, &err))
		return;
	char *body = core_ha_echo_body(e->core);
	if (body) {
		struct http_header h = {"Content-Type", "application/json"};
		struct http_raw_request raw = {.method = "POST",
					       .target = ECHO_TARGET,
					       .target_len = strlen(ECHO_TARGET),
					       .headers = &h,
					       .nheaders = 1,
					       .body = body,
					       .body_len = strlen(body),
					       .remote_addr = ""};
		struct http_reply rep;
		if (http__forward(&raw, &f, &rep, &err) == 0)
			http__reply_free(&rep);
		free(body);
	}
	core_forward_free(&f);
}

static void *echo_main(void *arg)
{
	struct http_echo *e = arg;
	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		pthread_mutex_unlock(&e->mu);
		echo_once(e);
		pthread_mutex_lock(&e->mu);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ECHO_INTERVAL_MS / 1000;
		while (!e->stop && pthread_cond_timedwait(&e->cv, &e->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int http_cluster_echo_start(struct http_echo **out, struct core *core, struct verr *err)
{
	*out = NULL;
	struct http_echo *e = calloc(1, sizeof(*e));
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	e->core = core;
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&e->thread, NULL, echo_main, e)) {
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
		free(e);
		return verr_set(err, VERR_INTERNAL, "cannot start the cluster heartbeat thread");
	}
	*out = e;
	return 0;
}

void http_cluster_echo_stop(struct http_echo *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
