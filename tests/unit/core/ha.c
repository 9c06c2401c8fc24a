/*
 * Unit tests for the HA loop (src/core/ha.c) with a lock whose wait can say
 * when the lock is freed (physical_ha_ops.wait, as etcd's watch does): the
 * standby takes over as soon as the lock is freed, not at its next retry;
 * stopping a standby blocked in wait returns at once (wake); a lock without
 * wait is polled every retry_interval_ms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/ha.h"
#include "util/log.h"

/* A lock held by "another node" until a test frees it. */
struct fake_lock {
	struct physical_ha base; /* must be first */
	pthread_mutex_t mu;
	bool freed, woken, held;
	int acquires, waits;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fake_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
			void *ctx, struct verr *err)
{
	(void)value, (void)lost, (void)ctx, (void)err;
	struct fake_lock *f = (struct fake_lock *)h;
	pthread_mutex_lock(&f->mu);
	f->acquires++;
	int got = f->freed ? 1 : 0;
	f->held = f->freed;
	pthread_mutex_unlock(&f->mu);
	return got;
}

static int fake_renew(struct physical_ha *h, struct verr *err)
{
	(void)h, (void)err;
	return 0;
}

static void fake_release(struct physical_ha *h)
{
	struct fake_lock *f = (struct fake_lock *)h;
	pthread_mutex_lock(&f->mu);
	f->held = false;
	pthread_mutex_unlock(&f->mu);
}

static int fake_holder(struct physical_ha *h, char **value, struct verr *err)
{
	(void)h, (void)err;
	*value = NULL;
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int fake_wait(struct physical_ha *h, int timeout_ms)
{
	struct fake_lock *f = (struct fake_lock *)h;
	int64_t until = now_ms() + timeout_ms;
	pthread_mutex_lock(&f->mu);
	f->waits++;
	while (!f->freed && !f->woken && now_ms() < until) {
		pthread_mutex_unlock(&f->mu);
		sleep_ms(2);
		pthread_mutex_lock(&f->mu);
	}
	int rc = f->freed ? 1 : 0;
	f->woken = false;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static void fake_wake(struct physical_ha *h)
{
	struct fake_lock *f = (struct fake_lock *)h;
	pthread_mutex_lock(&f->mu);
	f->woken = true;
	pthread_mutex_unlock(&f->mu);
}

static const struct physical_ha_ops waiting_ops = {
	.version = PHYSICAL_HA_VERSION, .name = "fake", .acquire = fake_acquire,
	.renew = fake_renew, .release = fake_release, .holder = fake_holder,
	.wait = fake_wait, .wake = fake_wake,
};

static const struct physical_ha_ops polled_ops = {
	.version = PHYSICAL_HA_VERSION, .name = "fake", .acquire = fake_acquire,
	.renew = fake_renew, .release = fake_release, .holder = fake_holder,
};

static atomic_llong g_active_ms;

static int became_active(void *ctx, struct verr *err)
{
	(void)ctx, (void)err;
	atomic_store(&g_active_ms, now_ms());
	return 0;
}

static void fence(void *ctx)
{
	(void)ctx;
}

static void lost(void *ctx)
{
	(void)ctx;
}

static void fake_init(struct fake_lock *f, const struct physical_ha_ops *ops, int retry_ms)
{
	*f = (struct fake_lock){.base = {.ops = ops, .renew_interval_ms = 60000,
					 .retry_interval_ms = retry_ms}};
	pthread_mutex_init(&f->mu, NULL);
	atomic_store(&g_active_ms, 0);
}

static void fake_free(struct fake_lock *f)
{
	pthread_mutex_lock(&f->mu);
	f->freed = true;
	pthread_mutex_unlock(&f->mu);
}

static const struct ha_callbacks cbs = {
	.became_active = became_active, .fence = fence, .lost = lost, .ctx = NULL};

static void test_core_ha__standby_takes_over_when_wait_says_free(void **state)
{
	(void)state;
	struct fake_lock f;
	fake_init(&f, &waiting_ops, 60000); /* a poll would take a minute */
	struct ha_loop *h = NULL;
	struct verr err = {0};
	assert_int_equal(ha_loop_start(&h, &f.base, "n", &cbs, &err), 0);
	sleep_ms(200);
	assert_int_equal(atomic_load(&g_active_ms), 0);
	pthread_mutex_lock(&f.mu);
	assert_int_equal(f.acquires, 1);
	assert_int_equal(f.waits, 1);
	pthread_mutex_unlock(&f.mu);
	int64_t freed = now_ms();
	fake_free(&f);
	for (int i = 0; i < 100 && !atomic_load(&g_active_ms); i++)
		sleep_ms(10);
	assert_true(atomic_load(&g_active_ms) != 0);
	assert_true(atomic_load(&g_active_ms) - freed < 500);
	ha_loop_stop(h);
}

static void test_core_ha__stop_wakes_a_waiting_standby(void **state)
{
	(void)state;
	struct fake_lock f;
	fake_init(&f, &waiting_ops, 60000);
	struct ha_loop *h = NULL;
	struct verr err = {0};
	assert_int_equal(ha_loop_start(&h, &f.base, "n", &cbs, &err), 0);
	sleep_ms(200);
	int64_t t0 = now_ms();
	ha_loop_stop(h);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(atomic_load(&g_active_ms), 0);
}

static void test_core_ha__without_wait_the_standby_polls(void **state)
{
	(void)state;
	struct fake_lock f;
	fake_init(&f, &polled_ops, 100);
	struct ha_loop *h = NULL;
	struct verr err = {0};
	assert_int_equal(ha_loop_start(&h, &f.base, "n", &cbs, &err), 0);
	sleep_ms(550);
	pthread_mutex_lock(&f.mu);
	int n = f.acquires;
	pthread_mutex_unlock(&f.mu);
	assert_true(n >= 4 && n <= 7);
	fake_free(&f);
	for (int i = 0; i < 100 && !atomic_load(&g_active_ms); i++)
		sleep_ms(10);
	assert_true(atomic_load(&g_active_ms) != 0);
	ha_loop_stop(h);
}

int main(void)
{
	log_set_level(LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_ha__standby_takes_over_when_wait_says_free),
		cmocka_unit_test(test_core_ha__stop_wakes_a_waiting_standby),
		cmocka_unit_test(test_core_ha__without_wait_the_standby_polls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
