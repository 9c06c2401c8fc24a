/*
 * Unit tests for storage "etcd" (src/physical/etcd.c) against a real etcd
 * (Debian's etcd-server, started by this test on free loopback ports in a
 * temporary directory, stopped by PID at the end): the shared storage
 * semantics, list paging over a folder with thousands of descendants, the
 * HA lock (one holder, holder value, release hands over, the lease expires
 * when the holder stops renewing) and fencing (a holder whose lock key is
 * deleted behind its back acknowledges no further write and is told it lost
 * the lock), a standby's wait on the lock key (returns when etcd deletes
 * it, ends on wake), the holder's read cache (used only by a holder with a
 * live lease, emptied on loss, exact under concurrent writes), and
 * configuration errors.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "physical/semantics.h"
#include "util/log.h"

static pid_t g_etcd = -1;
static char g_dir[256];
static char g_url[64];
static int g_seq;

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static json_t *conf_for(const char *path, bool ha, const char *lock_timeout)
{
	json_t *c = json_pack("{s:s,s:s,s:s}", "address", g_url, "path", path, "ha_enabled",
			      ha ? "true" : "false");
	if (lock_timeout)
		json_object_set_new(c, "lock_timeout", json_string(lock_timeout));
	return c;
}

static struct physical *open_path(const char *path, bool ha, const char *lock_timeout)
{
	struct physical *p = NULL;
	struct verr err = {0};
	json_t *c = conf_for(path, ha, lock_timeout);
	int rc = physical_etcd_new(&p, c, &err);
	json_decref(c);
	if (rc)
		fail_msg("etcd open: %s", err.msg);
	return p;
}

static int start_etcd(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/coffer-etcd-XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	int cport = free_port(), pport = free_port();
	snprintf(g_url, sizeof(g_url), "http://127.0.0.1:%d", cport);
	char data[300], peer[64], init[128], logp[300];
	snprintf(data, sizeof(data), "%s/data", g_dir);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(init, sizeof(init), "t=%s", peer);
	snprintf(logp, sizeof(logp), "%s/etcd.log", g_dir);
	g_etcd = fork();
	assert_true(g_etcd >= 0);
	if (g_etcd == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("etcd", "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls",
		       g_url, "--advertise-client-urls", g_url, "--listen-peer-urls", peer,
		       "--initial-advertise-peer-urls", peer, "--initial-cluster", init,
		       "--log-level", "error", "--logger", "zap", (char *)NULL);
		_exit(127);
	}
	/* ready when a read answers */
	for (int i = 0; i < 200; i++) {
		struct physical *p = NULL;
		struct verr err = {0};
		json_t *c = conf_for("/probe/", false, NULL);
		int rc = physical_etcd_new(&p, c, &err);
		json_decref(c);
		if (rc == 0) {
			uint8_t *v = NULL;
			size_t l = 0;
			rc = physical_get(p, "x", &v, &l, &err);
			physical_close(p);
			if (rc == 0)
				return 0;
		}
		sleep_ms(50);
	}
	fail_msg("etcd did not start (see %s)", logp);
	return -1;
}

static int stop_etcd(void **state)
{
	(void)state;
	if (g_etcd > 0) {
		kill(g_etcd, SIGTERM);
		waitpid(g_etcd, NULL, 0);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	return 0;
}

/* every semantics test on a fresh, empty prefix */
static int sem_setup(void **state)
{
	char path[64];
	snprintf(path, sizeof(path), "/sem%d/", ++g_seq);
	*state = open_path(path, false, NULL);
	return 0;
}

static int sem_teardown(void **state)
{
	physical_close(*state);
	return 0;
}

static void test_physical_etcd__list_pages_skip_folders(void **state)
{
	(void)state;
	struct physical *p = open_path("/paging/", false, NULL);
	char key[64];
	/* 2,500 keys under one folder, then leaves around it: the listing
	 * crosses pages and must name the folder once */
	for (int i = 0; i < 2500; i++) {
		snprintf(key, sizeof(key), "d/deep/%05d", i);
		sem_put(p, key, "v");
	}
	for (int i = 0; i < 1200; i++) {
		snprintf(key, sizeof(key), "d/leaf%05d", i);
		sem_put(p, key, "v");
	}
	sem_put(p, "d/a", "v");
	sem_put(p, "d/deep0", "v"); /* sorts right after the folder's subtree */
	char **keys = NULL;
	size_t n = 0;
	struct verr err = {0};
	assert_int_equal(physical_list(p, "d/", &keys, &n, &err), 0);
	assert_int_equal(n, 1200 + 3);
	assert_string_equal(keys[0], "a");
	assert_string_equal(keys[1], "deep/");
	assert_string_equal(keys[2], "deep0");
	assert_string_equal(keys[3], "leaf00000");
	assert_string_equal(keys[n - 1], "leaf01199");
	physical_list_free(keys, n);
	assert_int_equal(physical_list(p, "d/deep/", &keys, &n, &err), 0);
	assert_int_equal(n, 2500);
	physical_list_free(keys, n);
	physical_close(p);
}

static atomic_int g_lost;
static void on_lost(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_lost, 1);
}

static void test_physical_etcd__ha_lock_one_holder_and_handover(void **state)
{
	(void)state;
	struct physical *a = open_path("/ha1/", true, "2s"), *b = open_path("/ha1/", true, "2s");
	struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
	assert_non_null(ha);
	assert_non_null(hb);
	struct verr err = {0};
	atomic_store(&g_lost, 0);
	assert_int_equal(physical_ha_acquire(ha, "{\"node\":\"a\"}", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 0);
	char *v = NULL;
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_string_equal(v, "{\"node\":\"a\"}");
	free(v);
	assert_int_equal(physical_ha_renew(ha, &err), 0);
	/* the holder's writes are guarded and succeed */
	sem_put(a, "data/x", "1");
	/* release hands over at once (the lease is revoked) */
	physical_ha_release(ha);
	assert_int_equal(physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_holder(ha, &v, &err), 0);
	assert_string_equal(v, "{\"node\":\"b\"}");
	free(v);
	/* b stops renewing (a paused process): its lease runs out and a takes
	 * over within the TTL */
	int got = 0;
	for (int i = 0; i < 40 && got != 1; i++) {
		sleep_ms(100);
		got = physical_ha_acquire(ha, "{\"node\":\"a\"}", on_lost, NULL, &err);
	}
	assert_int_equal(got, 1);
	/* b, back from its pause, finds out at its next renewal and its write
	 * is refused by the guard */
	assert_int_not_equal(physical_ha_renew(hb, &err), 0);
	assert_true(atomic_load(&g_lost) >= 1);
	assert_int_equal(atomic_load(&g_lost), 1);
	physical_ha_release(ha);
	physical_close(a);
	physical_close(b);
}

static void test_physical_etcd__fencing_after_lock_key_deleted(void **state)
{
	(void)state;
	struct physical *a = open_path("/ha2/", true, "5s");
	struct physical *other = open_path("/ha2/", false, NULL);
	struct physical_ha *ha = physical_ha(a);
	struct verr err = {0};
	atomic_store(&g_lost, 0);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	sem_put(a, "k", "before");
	/* an operator (or a split brain) removes the lock key */
	assert_int_equal(physical_delete(other, "core/lock", &err), 0);
	int rc = physical_put(a, "k", (const uint8_t *)"after", 5, &err);
	assert_int_equal(rc, VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "no longer holds the HA lock"));
	assert_int_equal(atomic_load(&g_lost), 1);
	sem_expect(other, "k", "before");
	/* delete and txn are guarded the same way once re-acquired */
	physical_ha_release(ha);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	assert_int_equal(physical_delete(other, "core/lock", &err), 0);
	assert_int_equal(physical_delete(a, "k", &err), VERR_UNAVAILABLE);
	sem_expect(other, "k", "before");
	physical_ha_release(ha);
	physical_close(a);
	physical_close(other);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct waiter {
	struct physical_ha *h;
	int timeout_ms, rc;
	int64_t returned_ms;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = physical_ha_wait(w->h, w->timeout_ms);
	w->returned_ms = now_ms();
	return NULL;
}

/* Start a wait of up to 10 s on h in a thread, and let it begin. */
static pthread_t spawn_wait(struct waiter *w, struct physical_ha *h)
{
	*w = (struct waiter){.h = h, .timeout_ms = 10000};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, w), 0);
	sleep_ms(200);
	return th;
}

/* A standby learns the lock is free when etcd deletes the key (release, or
 * the lease's expiry), not at its next poll; wake ends a wait at once. */
static void test_physical_etcd__standby_waits_for_the_lock_key(void **state)
{
	(void)state;
	struct physical *a = open_path("/ha3/", true, "2s"), *b = open_path("/ha3/", true, "2s");
	struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
	struct verr err = {0};
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 0);
	/* nothing happens: the wait runs to its timeout and says so */
	int64_t t0 = now_ms();
	assert_int_equal(physical_ha_wait(hb, 300), 0);
	assert_true(now_ms() - t0 >= 250);
	/* the holder releases: the wait returns as soon as etcd deletes the key */
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 0);
	struct waiter w;
	pthread_t th = spawn_wait(&w, hb);
	int64_t released = now_ms();
	physical_ha_release(ha);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 1);
	assert_true(w.returned_ms - released < 1000);
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 1);
	/* a released key deleted before the wait began is not missed: the
	 * watch starts at the revision acquire saw it held */
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 0);
	physical_ha_release(hb);
	t0 = now_ms();
	assert_int_equal(physical_ha_wait(ha, 5000), 1);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	/* wake ends a wait in progress (a standby being sealed) ... */
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 0);
	th = spawn_wait(&w, hb);
	int64_t woken = now_ms();
	physical_ha_wake(hb);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.returned_ms - woken < 500);
	/* ... and a wake before the wait makes the next one return at once */
	physical_ha_wake(hb);
	t0 = now_ms();
	assert_int_equal(physical_ha_wait(hb, 10000), 0);
	assert_true(now_ms() - t0 < 500);
	physical_ha_release(ha);
	physical_close(a);
	physical_close(b);
}

/* The holder's read cache: reads of what the holder wrote or read are
 * served without etcd (shown by a change made behind its back, which no
 * cached read sees), and nothing but a holder with a live lease uses it. */
static void test_physical_etcd__holder_cache(void **state)
{
	(void)state;
	struct physical *a = open_path("/ha4/", true, "2s"), *b = open_path("/ha4/", true, "2s");
	struct physical *other = open_path("/ha4/", false, NULL);
	struct physical_ha *ha = physical_ha(a);
	struct verr err = {0};
	atomic_store(&g_lost, 0);
	sem_put(other, "k", "old");
	/* not holding: every read goes to etcd */
	sem_expect(a, "k", "old");
	sem_put(other, "k", "v0");
	sem_expect(a, "k", "v0");
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	/* holding: the holder's own write, then a change behind its back (an
	 * unfenced writer: not something Coffer does) that the cache hides */
	sem_put(a, "k", "v1");
	sem_put(other, "k", "behind");
	sem_expect(a, "k", "v1");
	/* a key read once is remembered, absent keys too */
	sem_expect(a, "absent", NULL);
	sem_put(other, "absent", "x");
	sem_expect(a, "absent", NULL);
	assert_int_equal(physical_delete(a, "absent", &err), 0);
	sem_expect(other, "absent", NULL);
	/* a txn updates it in order (the last op on a key wins) */
	struct physical_txn_op ops[] = {
		{.kind = PHYSICAL_TXN_PUT, .key = "t", .val = (const uint8_t *)"1", .len = 1},
		{.kind = PHYSICAL_TXN_DELETE, .key = "k"},
		{.kind = PHYSICAL_TXN_PUT, .key = "t", .val = (const uint8_t *)"2", .len = 1},
	};
	assert_int_equal(physical_txn(a, ops, 3, &err), 0);
	sem_expect(a, "t", "2");
	sem_expect(a, "k", NULL);
	sem_expect(other, "t", "2");
	/* the standby never caches */
	sem_put(other, "k", "s1");
	sem_expect(b, "k", "s1");
	sem_put(other, "k", "s2");
	sem_expect(b, "k", "s2");
	/* a holder that has not renewed for a TTL (paused) reads etcd again */
	sleep_ms(2100);
	sem_expect(a, "k", "s2");
	/* the lock is lost (its key deleted) and noticed: the cache is gone */
	physical_ha_release(ha);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	sem_put(a, "k", "mine");
	sem_put(other, "k", "theirs");
	sem_expect(a, "k", "mine");
	assert_int_equal(physical_delete(other, "core/lock", &err), 0);
	assert_int_equal(physical_put(a, "z", (const uint8_t *)"1", 1, &err), VERR_UNAVAILABLE);
	assert_int_equal(atomic_load(&g_lost), 1);
	sem_expect(a, "k", "theirs");
	/* released and re-acquired: nothing from the earlier term is trusted */
	physical_ha_release(ha);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	sem_expect(a, "k", "theirs");
	sem_put(other, "k", "new term");
	physical_ha_release(ha);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	sem_expect(a, "k", "new term");
	physical_ha_release(ha);
	physical_close(a);
	physical_close(b);
	physical_close(other);
}

/* disable_cache (Vault's top-level key, passed on by the server): the
 * holder reads etcd every time. */
static void test_physical_etcd__holder_cache_disabled(void **state)
{
	(void)state;
	json_t *c = conf_for("/ha6/", true, "5s");
	json_object_set_new(c, "disable_cache", json_string("true"));
	struct physical *a = NULL, *other = open_path("/ha6/", false, NULL);
	struct verr err = {0};
	assert_int_equal(physical_etcd_new(&a, c, &err), 0);
	json_decref(c);
	assert_int_equal(physical_ha_acquire(physical_ha(a), "a", on_lost, NULL, &err), 1);
	sem_put(a, "k", "mine");
	sem_put(other, "k", "theirs");
	sem_expect(a, "k", "theirs");
	physical_ha_release(physical_ha(a));
	physical_close(a);
	physical_close(other);
}

struct racer {
	struct physical *p;
	int id;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	struct verr err = {0};
	char key[16], val[32];
	for (int i = 0; i < 150; i++) {
		snprintf(key, sizeof(key), "r%d", (i + r->id) % 4);
		if (i % 3 == 2) {
			uint8_t *v = NULL;
			size_t l = 0;
			assert_int_equal(physical_get(r->p, key, &v, &l, &err), 0);
			free(v);
			continue;
		}
		int n = snprintf(val, sizeof(val), "t%d-%d", r->id, i);
		if (i % 7 == 0)
			assert_int_equal(physical_delete(r->p, key, &err), 0);
		else
			assert_int_equal(physical_put(r->p, key, (const uint8_t *)val, (size_t)n, &err),
					 0);
	}
	return NULL;
}

/* Concurrent writes and reads of the same keys by the holder: afterwards
 * the cache agrees with etcd on every key (writes overlapping on a key, or
 * a read racing a write, must not leave an older value cached). */
static void test_physical_etcd__holder_cache_races(void **state)
{
	(void)state;
	struct physical *a = open_path("/ha5/", true, "10s"), *other = open_path("/ha5/", false, NULL);
	struct verr err = {0};
	assert_int_equal(physical_ha_acquire(physical_ha(a), "a", on_lost, NULL, &err), 1);
	pthread_t th[6];
	struct racer r[6];
	for (int i = 0; i < 6; i++) {
		r[i] = (struct racer){.p = a, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		char key[16];
		snprintf(key, sizeof(key), "r%d", i);
		uint8_t *v1 = NULL, *v2 = NULL;
		size_t l1 = 0, l2 = 0;
		assert_int_equal(physical_get(a, key, &v1, &l1, &err), 0);
		assert_int_equal(physical_get(other, key, &v2, &l2, &err), 0);
		assert_int_equal(!v1, !v2);
		if (v1) {
			assert_int_equal(l1, l2);
			assert_memory_equal(v1, v2, l1);
		}
		free(v1);
		free(v2);
	}
	physical_ha_release(physical_ha(a));
	physical_close(a);
	physical_close(other);
}

static void test_physical_etcd__config_errors(void **state)
{
	(void)state;
	struct physical *p = NULL;
	struct verr err = {0};
	json_t *c = json_pack("{s:s}", "etcd_api", "v2");
	assert_int_equal(physical_etcd_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "only v3"));
	json_decref(c);
	c = json_pack("{s:s}", "address", "127.0.0.1:2379");
	assert_int_equal(physical_etcd_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "http://"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "address", g_url, "ha_enabled", "maybe");
	assert_int_equal(physical_etcd_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "ha_enabled"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "address", g_url, "lock_timeout", "soon");
	assert_int_equal(physical_etcd_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "lock_timeout"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "address", g_url, "username", "u");
	assert_int_equal(physical_etcd_new(&p, c, &err), VERR_INVALID);
	json_decref(c);
	assert_null(p);
	/* an unreachable etcd: opening works (it may come up later), requests
	 * fail with 5xx-class errors naming the endpoint */
	c = json_pack("{s:s,s:s}", "address", "http://127.0.0.1:1", "request_timeout", "1s");
	assert_int_equal(physical_etcd_new(&p, c, &err), 0);
	json_decref(c);
	uint8_t *v = NULL;
	size_t l = 0;
	assert_int_equal(physical_get(p, "x", &v, &l, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "127.0.0.1:1"));
	physical_close(p);
}

int main(void)
{
	log_set_level(LOG_OFF);
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(sem_setup, sem_teardown),
		cmocka_unit_test(test_physical_etcd__list_pages_skip_folders),
		cmocka_unit_test(test_physical_etcd__ha_lock_one_holder_and_handover),
		cmocka_unit_test(test_physical_etcd__fencing_after_lock_key_deleted),
		cmocka_unit_test(test_physical_etcd__standby_waits_for_the_lock_key),
		cmocka_unit_test(test_physical_etcd__holder_cache),
		cmocka_unit_test(test_physical_etcd__holder_cache_races),
		cmocka_unit_test(test_physical_etcd__holder_cache_disabled),
		cmocka_unit_test(test_physical_etcd__config_errors),
	};
	return cmocka_run_group_tests(tests, start_etcd, stop_etcd);
}
