/*
 * Unit tests for the expiration manager (src/core/expiration.c) and the
 * core's lease glue (src/core/lease_hooks.c, src/core/sys_leases.c).
 *
 * The manager is tested over the inmem backend with callbacks that record
 * revokes; the heap test reaches the file's statics by including it. The
 * core-level tests run real requests through core_handle_request against a
 * small secrets engine defined here ("leasetest"), since no engine in the
 * tree issues leases yet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/expiration.c"

#include "core/core_int.h"
#include "core/router.h"
#include "core/state.h"
#include "core/unseal.h"
#include "core/token.h"
#include "secrets/secrets.h"

/* ---- recording callbacks ---- */

struct rv {
	pthread_mutex_t mu;
	int calls;
	int fail_first; /* fail this many calls (-1: always) */
	int early;      /* revokes of a lease before its deadline */
	int64_t max_lag_ms;
	json_t *ids;    /* revoked ids, in order */
	int delay_us;   /* each revoke takes this long (a backend round trip) */
	int inflight, max_inflight;
};

static struct rv g_rv;

static void rv_reset(int fail_first)
{
	pthread_mutex_lock(&g_rv.mu);
	g_rv.calls = 0;
	g_rv.fail_first = fail_first;
	g_rv.early = 0;
	g_rv.max_lag_ms = 0;
	g_rv.delay_us = 0;
	g_rv.inflight = g_rv.max_inflight = 0;
	json_decref(g_rv.ids);
	g_rv.ids = json_array();
	pthread_mutex_unlock(&g_rv.mu);
}

static int rv_calls(void)
{
	pthread_mutex_lock(&g_rv.mu);
	int n = g_rv.calls;
	pthread_mutex_unlock(&g_rv.mu);
	return n;
}

/* The wall clock with no steps: the real time when first asked, advanced
 * by CLOCK_MONOTONIC. The managers under test and rv_revoke share it, so a
 * step of the machine's clock (NTP on a fresh VM) cannot look like an early
 * revoke. */
static int64_t steady_now_ms(void *ctx)
{
	(void)ctx;
	static _Atomic int64_t base = INT64_MIN;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int64_t b = base;
	if (b == INT64_MIN) {
		int64_t want = real_now_ms() - mono;
		/* on failure b holds the value another thread set */
		if (atomic_compare_exchange_strong(&base, &b, want))
			b = want;
	}
	return b + mono;
}

static int rv_revoke(void *ctx, const char *id, const json_t *rec, struct verr *err)
{
	int64_t now = steady_now_ms(NULL);
	int64_t due = json_integer_value(json_object_get(rec, "expire_ms"));
	pthread_mutex_lock(&g_rv.mu);
	int delay = g_rv.delay_us;
	if (++g_rv.inflight > g_rv.max_inflight)
		g_rv.max_inflight = g_rv.inflight;
	pthread_mutex_unlock(&g_rv.mu);
	if (delay)
		usleep((useconds_t)delay);
	pthread_mutex_lock(&g_rv.mu);
	g_rv.inflight--;
	g_rv.calls++;
	bool fail = g_rv.fail_first < 0 || g_rv.calls <= g_rv.fail_first;
	bool lazy = json_is_true(json_object_get(rec, "lazy"));
	if (!lazy && now < due)
		g_rv.early++;
	if (!lazy && now - due > g_rv.max_lag_ms)
		g_rv.max_lag_ms = now - due;
	if (!fail)
		json_array_append_new(g_rv.ids, json_string(id));
	pthread_mutex_unlock(&g_rv.mu);
	return fail ? verr_set(err, VERR_UNAVAILABLE, "backend down") : 0;
}

static int rv_renew(void *ctx, const char *id, json_t *rec, int64_t inc, int64_t now,
		    json_t *warnings, struct verr *err)
{
	json_object_set_new(rec, "expire_ms", json_integer(now + inc * 1000));
	json_object_set_new(rec, "last_renewal_ms", json_integer(now));
	return 0;
}

static json_t *mk_rec(const char *kind, int64_t expire_ms, bool renewable)
{
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "kind", kind, "path", "test",
			 "issue_ms", (json_int_t)steady_now_ms(NULL), "expire_ms", (json_int_t)expire_ms,
			 "last_renewal_ms", (json_int_t)0, "max_ms", (json_int_t)0, "ttl",
			 (json_int_t)1, "renewable", renewable);
}

static void put(struct expiration *e, const char *id, const char *kind, int64_t expire_ms,
		bool renewable)
{
	json_t *r = mk_rec(kind, expire_ms, renewable);
	struct verr err = {0};
	assert_int_equal(expiration_put(e, id, r, false, &err), 0);
	json_decref(r);
}

static bool exists(struct expiration *e, const char *id)
{
	json_t *r = NULL;
	assert_int_equal(expiration_lookup(e, id, &r, NULL), 0);
	bool ok = r != NULL;
	json_decref(r);
	return ok;
}

static bool wait_calls(int n, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 5; i++) {
		if (rv_calls() >= n)
			return true;
		usleep(5000);
	}
	return rv_calls() >= n;
}

static bool revoked(const char *id)
{
	pthread_mutex_lock(&g_rv.mu);
	bool found = false;
	size_t i;
	json_t *v;
	json_array_foreach(g_rv.ids, i, v)
		if (!strcmp(json_string_value(v), id))
			found = true;
	pthread_mutex_unlock(&g_rv.mu);
	return found;
}

struct fx {
	struct physical *phys;
	struct expiration *e;
};

static struct expiration *mgr(struct fx *f, int64_t bmin, int64_t bmax, bool start)
{
	struct expiration_ops ops = {.revoke = rv_revoke, .renew = rv_renew,
				     .now_ms = steady_now_ms,
				     .backoff_min_ms = bmin, .backoff_max_ms = bmax};
	struct expiration *e = NULL;
	struct verr err = {0};
	assert_int_equal(expiration_new(&e, f->phys, "sys/expire/", &ops, &err), 0);
	if (start)
		assert_int_equal(expiration_start(e, &err), 0);
	return e;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(physical_inmem_new(&f->phys, NULL, NULL), 0);
	pthread_mutex_init(&g_rv.mu, NULL);
	rv_reset(0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	expiration_free(f->e);
	physical_close(f->phys);
	json_decref(g_rv.ids);
	g_rv.ids = NULL;
	free(f);
	return 0;
}

/* ---- manager ---- */

static void test_core_expiration__expires_on_time(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, true);
	int64_t due = steady_now_ms(NULL) + 150;
	put(f->e, "secret/creds/a", "secret", due, true);
	put(f->e, "secret/creds/later", "secret", steady_now_ms(NULL) + 3600 * 1000, true);
	assert_true(exists(f->e, "secret/creds/a"));
	assert_true(wait_calls(1, 3000));
	assert_true(revoked("secret/creds/a"));
	assert_false(exists(f->e, "secret/creds/a"));
	assert_true(exists(f->e, "secret/creds/later"));
	assert_int_equal(g_rv.early, 0);
	assert_true(g_rv.max_lag_ms < 500);
	usleep(100000);
	assert_int_equal(rv_calls(), 1);
	struct expiration_stats st;
	expiration_stats(f->e, &st);
	assert_int_equal(st.leases, 1);
	assert_int_equal(st.revoked, 1);
}

static void test_core_expiration__renew_moves_deadline(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, true);
	put(f->e, "secret/creds/r", "secret", steady_now_ms(NULL) + 300, true);
	json_t *rec = NULL;
	struct verr err = {0};
	assert_int_equal(expiration_renew(f->e, "secret/creds/r", 2, &rec, NULL, &err), 0);
	int64_t exp = json_integer_value(json_object_get(rec, "expire_ms"));
	assert_true(exp >= steady_now_ms(NULL) + 1500);
	json_decref(rec);
	usleep(700000);
	assert_int_equal(rv_calls(), 0);
	assert_true(exists(f->e, "secret/creds/r"));
	assert_true(wait_calls(1, 3000));
	assert_false(exists(f->e, "secret/creds/r"));
}

static void test_core_expiration__renew_errors(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, false); /* not started: nothing fires */
	struct verr err = {0};
	assert_int_equal(expiration_renew(f->e, "nope/1", 10, NULL, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "lease not found");
	put(f->e, "auth/token/create/abcd", "token", steady_now_ms(NULL) + 60000, true);
	assert_int_equal(expiration_renew(f->e, "auth/token/create/abcd", 10, NULL, NULL, &err),
			 VERR_INVALID);
	assert_string_equal(err.msg, "tokens cannot be renewed through this endpoint");
	put(f->e, "secret/x/fixed", "secret", steady_now_ms(NULL) + 60000, false);
	assert_int_equal(expiration_renew(f->e, "secret/x/fixed", 10, NULL, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "lease is not renewable");
	put(f->e, "secret/x/old", "secret", steady_now_ms(NULL) - 1000, true);
	assert_int_equal(expiration_renew(f->e, "secret/x/old", 10, NULL, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "lease expired");
}

static void test_core_expiration__revoke_forget_lazy(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, true);
	int64_t far = steady_now_ms(NULL) + 3600 * 1000;
	put(f->e, "secret/c/a", "secret", far, true);
	put(f->e, "secret/c/b", "secret", far, true);
	json_t *r = mk_rec("secret", far, true);
	json_object_set_new(r, "lazy", json_true());
	assert_int_equal(expiration_put(f->e, "secret/c/c", r, false, NULL), 0);
	json_decref(r);
	struct verr err = {0};
	assert_int_equal(expiration_revoke(f->e, "secret/c/a", false, &err), 0);
	assert_int_equal(rv_calls(), 1);
	assert_false(exists(f->e, "secret/c/a"));
	assert_int_equal(expiration_revoke(f->e, "secret/c/unknown", false, &err), 0);
	assert_int_equal(expiration_forget(f->e, "secret/c/b", &err), 0);
	assert_false(exists(f->e, "secret/c/b"));
	assert_int_equal(rv_calls(), 1);
	assert_int_equal(expiration_revoke_lazy(f->e, "secret/c/c", &err), 0);
	assert_true(wait_calls(2, 3000));
	assert_true(revoked("secret/c/c"));
	/* the record goes right after the revoke returns: poll, the machine
	 * may be busy */
	for (int i = 0; i < 300 && exists(f->e, "secret/c/c"); i++)
		usleep(10000);
	assert_false(exists(f->e, "secret/c/c"));
	struct expiration_stats st;
	expiration_stats(f->e, &st);
	assert_int_equal(st.leases, 0);
}

static void test_core_expiration__failed_revoke_backs_off_and_keeps_lease(void **state)
{
	struct fx *f = *state;
	rv_reset(3);
	f->e = mgr(f, 40, 160, true);
	int64_t t0 = steady_now_ms(NULL);
	put(f->e, "db/creds/x", "secret", t0 + 20, true);
	assert_true(wait_calls(1, 2000));
	assert_true(exists(f->e, "db/creds/x")); /* never lost */
	assert_true(wait_calls(4, 5000));
	usleep(20000);
	assert_false(exists(f->e, "db/creds/x"));
	/* 40 + 80 + 160 ms of backoff before the 4th attempt */
	assert_true(steady_now_ms(NULL) - t0 >= 20 + 40 + 80 + 160);
	struct expiration_stats st;
	expiration_stats(f->e, &st);
	assert_int_equal(st.retries, 3);
	assert_int_equal(st.revoked, 1);
}

static void test_core_expiration__force_drops_failing_lease(void **state)
{
	struct fx *f = *state;
	rv_reset(-1);
	f->e = mgr(f, 0, 0, true);
	put(f->e, "db/creds/y", "secret", steady_now_ms(NULL) + 3600 * 1000, true);
	struct verr err = {0};
	assert_int_equal(expiration_revoke(f->e, "db/creds/y", false, &err), VERR_UNAVAILABLE);
	assert_true(exists(f->e, "db/creds/y"));
	assert_int_equal(expiration_revoke_prefix(f->e, "db/creds/", false, true, &err),
			 VERR_INTERNAL);
	assert_true(exists(f->e, "db/creds/y"));
	assert_int_equal(expiration_revoke_prefix(f->e, "db/creds", true, true, &err), 0);
	assert_false(exists(f->e, "db/creds/y"));
}

/* A synchronous revoke-prefix does not wait on one backend round trip
 * after another: several revocations are in flight at once, every lease is
 * revoked once, and a failure among them is still reported. */
static void test_core_expiration__revoke_prefix_runs_in_parallel(void **state)
{
	struct fx *f = *state;
	rv_reset(0);
	f->e = mgr(f, 0, 0, true);
	int64_t far = steady_now_ms(NULL) + 3600 * 1000;
	char id[64];
	for (int i = 0; i < 64; i++) {
		snprintf(id, sizeof(id), "db/creds/ro/%02d", i);
		put(f->e, id, "secret", far, true);
	}
	pthread_mutex_lock(&g_rv.mu);
	g_rv.delay_us = 3000;
	pthread_mutex_unlock(&g_rv.mu);
	struct verr err = {0};
	assert_int_equal(expiration_revoke_prefix(f->e, "db/creds/ro", false, true, &err), 0);
	assert_int_equal(rv_calls(), 64);
	assert_int_equal(json_array_size(g_rv.ids), 64);
	assert_true(g_rv.max_inflight >= 2);
	assert_true(g_rv.max_inflight <= REVOKE_WORKERS);
	json_t *keys = NULL;
	assert_int_equal(expiration_list(f->e, "db/creds/ro/", &keys, &err), 0);
	assert_int_equal(json_array_size(keys), 0);
	json_decref(keys);
	/* two failures among 32: reported, and those two stay */
	rv_reset(2);
	for (int i = 0; i < 32; i++) {
		snprintf(id, sizeof(id), "db/creds/rw/%02d", i);
		put(f->e, id, "secret", far, true);
	}
	assert_int_equal(expiration_revoke_prefix(f->e, "db/creds/rw/", false, true, &err),
			 VERR_INTERNAL);
	assert_non_null(strstr(err.msg, "failed to revoke 2 of 32"));
	rv_reset(0); /* the next tests count calls from zero, with no failures */
}

static void test_core_expiration__revoke_prefix_is_exact(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, true);
	int64_t far = steady_now_ms(NULL) + 3600 * 1000;
	const char *ids[] = {"secret/a/1", "secret/a/2", "secret/a/deep/3", "secret/ab/1",
			     "secretx/1", "other/a/1"};
	for (size_t i = 0; i < 6; i++)
		put(f->e, ids[i], "secret", far, true);
	struct verr err = {0};
	assert_int_equal(expiration_revoke_prefix(f->e, "secret/a", false, true, &err), 0);
	assert_int_equal(rv_calls(), 3);
	assert_false(exists(f->e, "secret/a/1"));
	assert_false(exists(f->e, "secret/a/2"));
	assert_false(exists(f->e, "secret/a/deep/3"));
	assert_true(exists(f->e, "secret/ab/1"));
	assert_true(exists(f->e, "secretx/1"));
	assert_true(exists(f->e, "other/a/1"));
	/* an exact id without a slash names that lease only */
	assert_int_equal(expiration_revoke_prefix(f->e, "secret/ab/1", false, true, &err), 0);
	assert_false(exists(f->e, "secret/ab/1"));
	assert_true(exists(f->e, "secretx/1"));
	json_t *keys = NULL;
	assert_int_equal(expiration_list(f->e, "", &keys, &err), 0);
	assert_int_equal(json_array_size(keys), 2); /* "other/", "secretx/" */
	json_decref(keys);
	assert_int_equal(rv_calls(), 4);
}

static void test_core_expiration__restore_after_reopen(void **state)
{
	struct fx *f = *state;
	struct expiration *a = mgr(f, 0, 0, false);
	int64_t now = steady_now_ms(NULL);
	char id[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "secret/far/%04d", i);
		put(a, id, "secret", now + 3600 * 1000 + i, true);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "secret/missed/%d", i);
		put(a, id, "secret", now - 5000 + i, true); /* passed while sealed */
		snprintf(id, sizeof(id), "secret/soon/%d", i);
		put(a, id, "secret", now + 400 + i, true);
	}
	put(a, "auth/token/create/00ff00ff", "token", now + 3600 * 1000, true);
	expiration_free(a); /* seal */
	f->e = mgr(f, 0, 0, false);
	/* served from storage before the restore ran */
	assert_true(exists(f->e, "secret/far/1999"));
	struct verr err = {0};
	assert_int_equal(expiration_start(f->e, &err), 0);
	assert_true(wait_calls(5, 2000));
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "secret/missed/%d", i);
		assert_true(revoked(id));
	}
	assert_true(wait_calls(10, 3000));
	assert_int_equal(g_rv.early, 0);
	expiration_wait_restored(f->e);
	struct expiration_stats st;
	expiration_stats(f->e, &st);
	assert_false(st.restoring);
	assert_int_equal(st.leases, 2001);
	assert_true(exists(f->e, "auth/token/create/00ff00ff"));
	assert_int_equal(expiration_revoke(f->e, "auth/token/create/00ff00ff", false, &err), 0);
	assert_true(revoked("auth/token/create/00ff00ff"));
}

static void test_core_expiration__heap_orders_100k(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, false);
	struct expiration *e = f->e;
	srand(7);
	char id[64];
	pthread_mutex_lock(&e->mu);
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "p%d/x/%08x%08x", i % 7, (unsigned)i, (unsigned)rand());
		assert_int_equal(schedule_locked(e, id, (int64_t)rand() % 1000000, false, false), 0);
	}
	pthread_mutex_unlock(&e->mu);
	assert_int_equal(e->count, 100000);
	assert_int_equal(e->npfx, 7);
	/* move some, drop some */
	for (int i = 0; i < 100000; i += 10) {
		pthread_mutex_lock(&e->mu);
		struct lnode *n = e->heap[(uint32_t)rand() % e->nheap];
		node_id(n, id, sizeof(id));
		pthread_mutex_unlock(&e->mu);
		if (i % 20)
			unschedule(e, id);
		else
			schedule(e, id, (int64_t)rand() % 1000000, false);
	}
	pthread_mutex_lock(&e->mu);
	size_t total = e->count;
	assert_int_equal(e->nheap, total);
	int64_t last = -1;
	size_t popped = 0;
	while (e->nheap) {
		struct lnode *n = e->heap[0];
		assert_true(n->fire_ms >= last);
		last = n->fire_ms;
		uint64_t h = node_hash(n);
		node_id(n, id, sizeof(id));
		assert_ptr_equal(map_find(e, id, h), n);
		node_drop(e, n, h);
		popped++;
	}
	assert_int_equal(popped, total);
	assert_int_equal(e->count, 0);
	assert_int_equal(e->npfx, 0);
	pthread_mutex_unlock(&e->mu);
}

static void test_core_expiration__100k_expire_never_early(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, false);
	int64_t now = steady_now_ms(NULL);
	char id[64];
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "secret/bulk/%06d", i);
		put(f->e, id, "secret", now + 500 + (i * 7919) % 1500, true);
	}
	struct verr err = {0};
	assert_int_equal(expiration_start(f->e, &err), 0);
	assert_true(wait_calls(100000, 60000));
	assert_int_equal(g_rv.early, 0);
	struct expiration_stats st;
	expiration_stats(f->e, &st);
	assert_int_equal(st.leases, 0);
	print_message("100k leases: max expiry lag %lld ms\n", (long long)g_rv.max_lag_ms);
}

static void test_core_expiration__tidy_removes_dangling_index(void **state)
{
	struct fx *f = *state;
	f->e = mgr(f, 0, 0, false);
	int64_t far = steady_now_ms(NULL) + 3600 * 1000;
	put(f->e, "secret/t/1", "secret", far, true);
	/* a crash between index and record write leaves this */
	assert_int_equal(physical_put(f->phys, "sys/expire/due/0000000009/77.secret%2Ft%2F2",
				      (const uint8_t *)"", 0, NULL), 0);
	/* and a record whose index entry was lost */
	assert_int_equal(physical_put(f->phys, "sys/expire/id/secret/t/3",
				      (const uint8_t *)"{\"kind\":\"secret\",\"expire_ms\":5000}", 34, NULL), 0);
	json_t *st = NULL;
	assert_int_equal(expiration_tidy(f->e, &st, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "dangling_index_entries_removed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "leases_reindexed")), 1);
	json_decref(st);
	uint8_t *v = NULL;
	size_t len = 0;
	assert_int_equal(physical_get(f->phys, "sys/expire/due/0000000009/77.secret%2Ft%2F2", &v, &len, NULL), 0);
	assert_null(v);
}

/* ---- through the core: a secrets engine that issues leases ---- */

static int lt_revokes, lt_fail;

static int lt_creds(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s}", "username", "u1");
	resp->secret = calloc(1, sizeof(*resp->secret));
	resp->secret->ttl = request_int(req, "ttl");
	resp->secret->max_ttl = request_int(req, "max_ttl");
	resp->secret->renewable = true;
	resp->secret->internal = json_pack("{s:s}", "username", "u1");
	return 0;
}

static int lt_revoke(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	assert_int_equal(req->op, LOP_REVOKE);
	assert_string_equal(json_string_value(json_object_get(req->secret_internal, "username")), "u1");
	if (lt_fail)
		return verr_set(err, VERR_UNAVAILABLE, "database down");
	__atomic_add_fetch(&lt_revokes, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int lt_renew(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	assert_int_equal(req->op, LOP_RENEW);
	return 0;
}

static const struct field_def lt_fields[] = {
	{"ttl", FT_DURATION, "0", "", false},
	{"max_ttl", FT_DURATION, "0", "", false},
	{NULL, 0, NULL, NULL, false},
};

static const struct path_def lt_paths[] = {
	{.pattern = "creds", .fields = lt_fields, .ops = {{LOP_READ, lt_creds}, {LOP_UPDATE, lt_creds}}},
	{0},
};

static const struct path_def *lt_table(void *inst)
{
	return lt_paths;
}

static int lt_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	return 0;
}

static const struct backend_ops lt_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "leasetest",
	.init = lt_init,
	.paths = lt_table,
	.revoke = lt_revoke,
	.renew = lt_renew,
};

struct cfx {
	struct core *c;
	char *root, *key;
};

static const struct backend_ops *const lt_registry[] = {
	&cubbyhole_backend_ops, &token_backend_ops, &lt_ops, NULL,
};

static int csetup(void **state)
{
	struct cfx *f = calloc(1, sizeof(*f));
	struct core_opts o = {.default_lease_ttl = 3600, .max_lease_ttl = 7200,
			      .backends = lt_registry};
	assert_int_equal(physical_inmem_new(&o.phys, NULL, NULL), 0);
	struct verr err = {0};
	assert_int_equal(core_new(&f->c, &o, &err), 0);
	json_t *init = json_pack("{s:i,s:i}", "secret_shares", 1, "secret_threshold", 1);
	json_t *out = NULL;
	assert_int_equal(unseal_init(f->c, init, &out, &err), 0);
	f->key = strdup(json_string_value(json_array_get(json_object_get(out, "keys_base64"), 0)));
	f->root = strdup(json_string_value(json_object_get(out, "root_token")));
	json_decref(init);
	json_decref(out);
	json_t *u = json_pack("{s:s}", "key", f->key);
	assert_int_equal(unseal_submit(f->c, u, &out, &err), 0);
	json_decref(u);
	json_decref(out);
	json_t *m = json_pack("{s:s,s:{s:s}}", "type", "leasetest", "config", "max_lease_ttl", "100s");
	assert_int_equal(router_mount(f->c, false, "lt", m, &err), 0);
	json_decref(m);
	lt_revokes = 0;
	lt_fail = 0;
	*state = f;
	return 0;
}

static int cteardown(void **state)
{
	struct cfx *f = *state;
	core_free(f->c);
	free(f->root);
	free(f->key);
	free(f);
	return 0;
}

static int req(struct cfx *f, enum logical_op op, const char *path, const char *body,
	       struct logical_response *resp, struct verr *err)
{
	memset(resp, 0, sizeof(*resp));
	verr_clear(err);
	json_t *data = body ? json_loads(body, 0, NULL) : json_object();
	assert_non_null(data);
	struct logical_request r = {.op = op, .path = path, .data = data, .client_token = f->root,
				    .remote_addr = "127.0.0.1"};
	int rc = core_handle_request(f->c, &r, resp, err);
	json_decref(data);
	return rc;
}

static char *issue(struct cfx *f, const char *body, int64_t *dur, json_t **warnings)
{
	struct logical_response resp;
	struct verr err = {0};
	assert_int_equal(req(f, LOP_UPDATE, "lt/creds", body, &resp, &err), 0);
	assert_non_null(resp.lease_out);
	char *id = strdup(json_string_value(json_object_get(resp.lease_out, "lease_id")));
	if (dur)
		*dur = json_integer_value(json_object_get(resp.lease_out, "lease_duration"));
	if (warnings)
		*warnings = json_incref(resp.warnings);
	logical_response_reset(&resp);
	return id;
}

static void test_core_expiration__secret_lease_ttls_and_cap(void **state)
{
	struct cfx *f = *state;
	int64_t dur = 0;
	json_t *w = NULL;
	char *id = issue(f, "{\"ttl\":\"30s\"}", &dur, &w);
	assert_int_equal(dur, 30);
	assert_null(w);
	assert_int_equal(strncmp(id, "lt/creds/", 9), 0);
	assert_int_equal(strlen(id), 9 + 24);
	free(id);
	/* no ttl: the server default (3600) capped by the mount max (100s) */
	id = issue(f, NULL, &dur, &w);
	assert_int_equal(dur, 100);
	assert_non_null(w);
	assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "exceeded the effective max_ttl"));
	json_decref(w);

	/* lookup */
	struct logical_response resp;
	struct verr err = {0};
	char body[256];
	snprintf(body, sizeof(body), "{\"lease_id\":\"%s\"}", id);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err), 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "id")), id);
	assert_true(json_is_true(json_object_get(resp.data, "renewable")));
	assert_true(json_integer_value(json_object_get(resp.data, "ttl")) >= 99);
	assert_true(json_is_null(json_object_get(resp.data, "last_renewal")));
	logical_response_reset(&resp);

	/* renew beyond the max: capped with a warning */
	snprintf(body, sizeof(body), "{\"lease_id\":\"%s\",\"increment\":\"1h\"}", id);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/renew", body, &resp, &err), 0);
	int64_t d = json_integer_value(json_object_get(resp.lease_out, "lease_duration"));
	assert_true(d <= 100 && d >= 98);
	assert_non_null(resp.warnings);
	assert_non_null(strstr(json_string_value(json_array_get(resp.warnings, 0)), "capped"));
	logical_response_reset(&resp);

	/* errors */
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", "{\"lease_id\":\"lt/creds/nope\"}",
			     &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "invalid lease");
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/renew", "{\"lease_id\":\"lt/creds/nope\"}",
			     &resp, &err), VERR_INVALID);
	assert_string_equal(err.msg, "lease not found");
	logical_response_reset(&resp);

	/* revoke via the legacy path with the id in the URL */
	char path[256];
	snprintf(path, sizeof(path), "sys/revoke/%s", id);
	assert_int_equal(req(f, LOP_UPDATE, path, NULL, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(lt_revokes, 1);
	free(id);
}

static void test_core_expiration__secret_expires_and_prefix_revokes(void **state)
{
	struct cfx *f = *state;
	char *a = issue(f, "{\"ttl\":1}", NULL, NULL);
	char *b = issue(f, "{\"ttl\":600}", NULL, NULL);
	char *c = issue(f, "{\"ttl\":600}", NULL, NULL);
	struct logical_response resp;
	struct verr err = {0};
	assert_int_equal(req(f, LOP_LIST, "sys/leases/lookup/lt/creds/", NULL, &resp, &err), 0);
	assert_int_equal(json_array_size(json_object_get(resp.data, "keys")), 3);
	logical_response_reset(&resp);
	for (int i = 0; i < 300 && __atomic_load_n(&lt_revokes, __ATOMIC_SEQ_CST) < 1; i++)
		usleep(10000);
	assert_int_equal(lt_revokes, 1);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/revoke-prefix/lt/cred", NULL, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(lt_revokes, 1); /* "lt/cred" is not "lt/creds/" */
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/revoke-prefix/lt/creds", NULL, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(lt_revokes, 3);
	assert_int_equal(req(f, LOP_LIST, "sys/leases/lookup/lt/creds/", NULL, &resp, &err),
			 VERR_NOT_FOUND);
	logical_response_reset(&resp);
	free(a);
	free(b);
	free(c);
}

static void test_core_expiration__failing_backend_and_unmount(void **state)
{
	struct cfx *f = *state;
	char *a = issue(f, "{\"ttl\":600}", NULL, NULL);
	lt_fail = 1;
	struct logical_response resp;
	struct verr err = {0};
	char body[256];
	snprintf(body, sizeof(body), "{\"lease_id\":\"%s\"}", a);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/revoke", body, &resp, &err), VERR_UNAVAILABLE);
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err), 0);
	logical_response_reset(&resp);
	/* disabling the mount revokes its leases through the backend: while
	 * the backend fails, the mount is kept (as Vault does) */
	assert_int_equal(req(f, LOP_DELETE, "sys/mounts/lt", NULL, &resp, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "the mount is kept"));
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err), 0);
	logical_response_reset(&resp);
	/* once the backend works again, the disable revokes and succeeds */
	lt_fail = 0;
	assert_int_equal(req(f, LOP_DELETE, "sys/mounts/lt", NULL, &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err), VERR_INVALID);
	logical_response_reset(&resp);
	free(a);
}

static void test_core_expiration__token_revoke_revokes_its_leases(void **state)
{
	struct cfx *f = *state;
	struct logical_response resp;
	struct verr err = {0};
	assert_int_equal(req(f, LOP_UPDATE, "sys/policies/acl/lt",
			     "{\"policy\":\"path \\\"lt/*\\\" { capabilities = [\\\"update\\\"] }\"}",
			     &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "auth/token/create", "{\"policies\":[\"lt\"]}", &resp,
			     &err), 0);
	char *tok = strdup(json_string_value(json_object_get(resp.auth_out, "client_token")));
	logical_response_reset(&resp);
	/* the child token creates a lease */
	json_t *data = json_pack("{s:s}", "ttl", "600s");
	struct logical_request r = {.op = LOP_UPDATE, .path = "lt/creds", .data = data,
				    .client_token = tok, .remote_addr = "127.0.0.1"};
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(core_handle_request(f->c, &r, &resp, &err), 0);
	json_decref(data);
	char *lease = strdup(json_string_value(json_object_get(resp.lease_out, "lease_id")));
	logical_response_reset(&resp);
	int before = lt_revokes;
	/* an unrelated lease of the root token stays */
	char *other = issue(f, "{\"ttl\":\"600s\"}", NULL, NULL);
	char body[256];
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", tok);
	assert_int_equal(req(f, LOP_UPDATE, "auth/token/revoke", body, &resp, &err), 0);
	logical_response_reset(&resp);
	for (int i = 0; i < 200 && lt_revokes == before; i++)
		usleep(10000);
	assert_int_equal(lt_revokes, before + 1);
	/* the backend's revoke runs before the lease entry is deleted: wait for both */
	snprintf(body, sizeof(body), "{\"lease_id\":\"%s\"}", lease);
	int rc = 0;
	for (int i = 0; i < 200; i++) {
		rc = req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err);
		logical_response_reset(&resp);
		if (rc == VERR_INVALID)
			break;
		usleep(10000);
	}
	assert_int_equal(rc, VERR_INVALID);
	snprintf(body, sizeof(body), "{\"lease_id\":\"%s\"}", other);
	assert_int_equal(req(f, LOP_UPDATE, "sys/leases/lookup", body, &resp, &err), 0);
	logical_response_reset(&resp);
	free(tok);
	free(lease);
	free(other);
}

static void test_core_expiration__token_lease_expires_and_survives_reseal(void **state)
{
	struct cfx *f = *state;
	struct logical_response resp;
	struct verr err = {0};
	assert_int_equal(req(f, LOP_UPDATE, "auth/token/create",
			     "{\"ttl\":\"2s\",\"policies\":[\"default\"]}", &resp, &err), 0);
	char *tok = strdup(json_string_value(json_object_get(resp.auth_out, "client_token")));
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_UPDATE, "auth/token/create",
			     "{\"ttl\":\"1h\",\"policies\":[\"default\"]}", &resp, &err), 0);
	logical_response_reset(&resp);
	assert_int_equal(req(f, LOP_LIST, "sys/leases/lookup/auth/token/create/", NULL, &resp, &err), 0);
	assert_int_equal(json_array_size(json_object_get(resp.data, "keys")), 2);
	logical_response_reset(&resp);
	/* seal and unseal: the leases come back from storage */
	state_seal(f->c);
	json_t *u = json_pack("{s:s}", "key", f->key), *out = NULL;
	assert_int_equal(unseal_submit(f->c, u, &out, &err), 0);
	json_decref(u);
	json_decref(out);
	expiration_wait_restored(f->c->expire);
	struct expiration_stats st;
	expiration_stats(f->c->expire, &st);
	assert_int_equal(st.leases, 2);
	sleep(3);
	struct token_entry *te = NULL;
	assert_int_equal(token_store_lookup(f->c->tokens, tok, &te, &err), VERR_DENIED);
	assert_int_equal(req(f, LOP_LIST, "sys/leases/lookup/auth/token/create/", NULL, &resp, &err), 0);
	assert_int_equal(json_array_size(json_object_get(resp.data, "keys")), 1);
	logical_response_reset(&resp);
	expiration_stats(f->c->expire, &st);
	assert_int_equal(st.revoked, 1);
	free(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_expiration__expires_on_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__renew_moves_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__renew_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__revoke_forget_lazy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__failed_revoke_backs_off_and_keeps_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__force_drops_failing_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__revoke_prefix_runs_in_parallel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__revoke_prefix_is_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__restore_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__heap_orders_100k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__100k_expire_never_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__tidy_removes_dangling_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__secret_lease_ttls_and_cap, csetup, cteardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__secret_expires_and_prefix_revokes, csetup, cteardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__failing_backend_and_unmount, csetup, cteardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__token_revoke_revokes_its_leases, csetup, cteardown),
		cmocka_unit_test_setup_teardown(test_core_expiration__token_lease_expires_and_survives_reseal, csetup, cteardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
