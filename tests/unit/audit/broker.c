/*
 * tests/unit/audit/broker.c - the core's audit broker (src/core/
 * audit_broker.c) with fake device types: fail-closed logic (no device, one
 * failing, one of two failing, a hanging device bounded by its timeout),
 * the tamper-evidence chain and seq (checked with the CLI's verifier, also
 * under concurrent logging), persistence of the table and keys, chain
 * resumption from the log's tail, and disable; group commit on request
 * threads ("memi": N concurrent entries, fewer writes, each released only
 * once its line is in the log); failed writes ("tear": a write that leaves
 * part of a line behind, or none) recorded in the chain so the verifier
 * tells them from tampering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/format.h"
#include "cli/cli.h"
#include "core/audit_broker.h"

/* ---- fake devices: "mem" records, "fail" refuses, "hang" blocks ---- */

struct mem_log {
	pthread_mutex_t mu;
	char *buf;
	size_t len;
	int writes;
};
static struct mem_log g_mem = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
static pthread_mutex_t g_hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hang_cv = PTHREAD_COND_INITIALIZER;
/* A release bumps the generation: a writer released late (after the next
 * test's setup) still sees its own generation is over and returns, so no
 * thread outlives the test run. */
static int g_hang_gen;

/* "tear": the next write fails after copying g_tear_keep bytes of it to
 * g_mem (-1: it succeeds); "memi": writes take g_slow_us. */
static long g_tear_keep = -1;
static size_t g_kept;
static int g_slow_us;

struct fake_dev {
	struct audit_base base;
	int kind; /* 0 mem, 1 fail, 2 hang, 3 tear (0 otherwise), 4 memi (0, inline) */
	int gen;  /* hang: blocks until g_hang_gen moves past this */
};

static int fake_new(void **out, const json_t *options, const struct audit_device_env *env,
		    int kind, struct verr *err)
{
	if (json_object_get(options, "refuse"))
		return verr_set(err, VERR_INVALID, "refused by options");
	struct fake_dev *d = calloc(1, sizeof(*d));
	int rc = audit_format_new(&d->base.fmt, options, env, err);
	if (rc) {
		free(d);
		return rc;
	}
	d->kind = kind;
	pthread_mutex_lock(&g_hang_mu);
	d->gen = g_hang_gen;
	pthread_mutex_unlock(&g_hang_mu);
	*out = d;
	return 0;
}
static int mem_new(void **o, const json_t *op, const struct audit_device_env *e, struct verr *err)
{
	return fake_new(o, op, e, 0, err);
}
static int fail_new(void **o, const json_t *op, const struct audit_device_env *e, struct verr *err)
{
	return fake_new(o, op, e, 1, err);
}
static int hang_new(void **o, const json_t *op, const struct audit_device_env *e, struct verr *err)
{
	return fake_new(o, op, e, 2, err);
}

static void mem_append(const char *buf, size_t len)
{
	g_mem.buf = realloc(g_mem.buf, g_mem.len + len + 1);
	memcpy(g_mem.buf + g_mem.len, buf, len);
	g_mem.len += len;
	g_mem.buf[g_mem.len] = '\0';
}

static int tear_log(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err)
{
	pthread_mutex_lock(&g_mem.mu);
	long keep = g_tear_keep;
	g_tear_keep = -1;
	if (keep >= 0) {
		g_kept = (size_t)keep < len ? (size_t)keep : len;
		mem_append(buf, g_kept);
		pthread_mutex_unlock(&g_mem.mu);
		return verr_set(err, VERR_INTERNAL, "No space left on device");
	}
	mem_append(buf, len);
	g_mem.writes++;
	pthread_mutex_unlock(&g_mem.mu);
	return 0;
}

static size_t tear_kept(void *dev)
{
	return g_kept;
}

static bool memi_inline(void *dev)
{
	return true;
}

static int fake_log(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err)
{
	struct fake_dev *d = dev;
	if (g_slow_us)
		usleep((useconds_t)g_slow_us);
	if (d->kind == 1)
		return verr_set(err, VERR_INTERNAL, "disk on fire");
	if (d->kind == 2) {
		pthread_mutex_lock(&g_hang_mu);
		while (g_hang_gen == d->gen)
			pthread_cond_wait(&g_hang_cv, &g_hang_mu);
		pthread_mutex_unlock(&g_hang_mu);
		return verr_set(err, VERR_INTERNAL, "released");
	}
	pthread_mutex_lock(&g_mem.mu);
	g_mem.buf = realloc(g_mem.buf, g_mem.len + len + 1);
	memcpy(g_mem.buf + g_mem.len, buf, len);
	g_mem.len += len;
	g_mem.buf[g_mem.len] = '\0';
	g_mem.writes++;
	pthread_mutex_unlock(&g_mem.mu);
	return 0;
}

static int fake_reopen(void *dev, struct verr *err)
{
	return 0;
}

static size_t mem_tail(void *dev, char *buf, size_t cap)
{
	pthread_mutex_lock(&g_mem.mu);
	size_t n = g_mem.len < cap ? g_mem.len : cap;
	if (n)
		memcpy(buf, g_mem.buf + g_mem.len - n, n);
	pthread_mutex_unlock(&g_mem.mu);
	return n;
}

static int64_t fake_timeout(void *dev)
{
	return 200;
}

static void fake_free(void *dev)
{
	struct fake_dev *d = dev;
	audit_format_free(d->base.fmt);
	free(d);
}

#define FAKE(name, newfn, tailfn)                                                                  \
	{.type = name, .new = newfn, .format = audit_base_format,                                 \
	 .format_entry = audit_base_format_entry, .hash = audit_base_hash,                         \
	 .log = fake_log, .reopen = fake_reopen, .tail = tailfn, .timeout_ms = fake_timeout,       \
	 .free = fake_free}
static const struct audit_device_ops mem_ops = FAKE("mem", mem_new, mem_tail);
static const struct audit_device_ops fail_ops = FAKE("fail", fail_new, NULL);
static const struct audit_device_ops hang_ops = FAKE("hang", hang_new, NULL);
static const struct audit_device_ops tear_ops = {
	.type = "tear", .new = mem_new, .format = audit_base_format,
	.format_entry = audit_base_format_entry, .hash = audit_base_hash, .log = tear_log,
	.kept = tear_kept, .reopen = fake_reopen, .tail = mem_tail, .timeout_ms = fake_timeout,
	.free = fake_free};
static const struct audit_device_ops memi_ops = {
	.type = "memi", .new = mem_new, .format = audit_base_format,
	.format_entry = audit_base_format_entry, .hash = audit_base_hash, .log = fake_log,
	.reopen = fake_reopen, .tail = mem_tail, .timeout_ms = fake_timeout,
	.writes_inline = memi_inline, .free = fake_free};
static const struct audit_device_ops *const types[] = {&mem_ops,  &fail_ops, &hang_ops,
						       &tear_ops, &memi_ops, NULL};

/* ---- fixture ---- */

struct fx {
	struct physical *phys;
	struct audit_broker *b;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(physical_inmem_new(&f->phys, NULL, NULL), 0);
	struct audit_broker_opts o = {.phys = f->phys, .types = types};
	struct verr err = {0};
	assert_int_equal(audit_broker_new(&f->b, &o, &err), 0);
	pthread_mutex_lock(&g_mem.mu);
	free(g_mem.buf);
	g_mem.buf = NULL;
	g_mem.len = 0;
	g_mem.writes = 0;
	g_tear_keep = -1;
	g_kept = 0;
	g_slow_us = 0;
	pthread_mutex_unlock(&g_mem.mu);
	*state = f;
	return 0;
}

static void release_hang(void)
{
	pthread_mutex_lock(&g_hang_mu);
	g_hang_gen++;
	pthread_cond_broadcast(&g_hang_cv);
	pthread_mutex_unlock(&g_hang_mu);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	release_hang();
	audit_broker_free(f->b);
	physical_close(f->phys);
	free(f);
	return 0;
}

static void reopen_broker(struct fx *f)
{
	audit_broker_free(f->b);
	struct audit_broker_opts o = {.phys = f->phys, .types = types};
	struct verr err = {0};
	assert_int_equal(audit_broker_new(&f->b, &o, &err), 0);
}

static json_t *entry(int i)
{
	return json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:s,s:{s:s}}}", "time", "2026-01-01T00:00:00Z",
			 "type", "request", "auth", "client_token", "s.secret", "request", "n", i,
			 "path", "secret/x", "data", "pw", "hunter2");
}

static int log_n(struct audit_broker *b, int from, int n)
{
	struct verr err = {0};
	for (int i = from; i < from + n; i++) {
		json_t *e = entry(i);
		int rc = audit_broker_log(b, e, &err);
		json_decref(e);
		if (rc)
			return rc;
	}
	return 0;
}

static void enable(struct audit_broker *b, const char *path, const char *type, const char *opts)
{
	json_t *o = json_loads(opts, 0, NULL);
	struct verr err = {0};
	assert_int_equal(audit_broker_enable(b, path, type, "", o, false, &err), 0);
	json_decref(o);
}

static void chain_key(struct audit_broker *b, const char *path, unsigned char key[32])
{
	char *k = NULL;
	struct verr err = {0};
	assert_int_equal(audit_broker_chain_key(b, path, &k, &err), 0);
	unsigned char buf[48];
	assert_int_equal(EVP_DecodeBlock(buf, (const unsigned char *)k, (int)strlen(k)), 33);
	memcpy(key, buf, 32);
	free(k);
}

static void verify_mem_r(struct cli_chain_result *r, struct audit_broker *b, const char *path)
{
	unsigned char key[32];
	chain_key(b, path, key);
	pthread_mutex_lock(&g_mem.mu);
	cli_chain_verify(r, key, sizeof(key), g_mem.buf, g_mem.len ? g_mem.len - 1 : 0);
	pthread_mutex_unlock(&g_mem.mu);
}

static void verify_mem(struct audit_broker *b, const char *path, size_t want_entries)
{
	struct cli_chain_result r;
	verify_mem_r(&r, b, path);
	if (r.problem != CLI_CHAIN_OK)
		fail_msg("line %zu: %s", r.line, r.reason);
	assert_int_equal(r.entries, want_entries);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests ---- */

static void test_audit_broker__no_device_no_audit(void **state)
{
	struct fx *f = *state;
	assert_false(audit_broker_active(f->b));
	assert_int_equal(log_n(f->b, 0, 3), 0);
	assert_int_equal(g_mem.writes, 0);
}

static void test_audit_broker__failing_device_fails_closed(void **state)
{
	struct fx *f = *state;
	enable(f->b, "bad", "fail", "{}");
	assert_true(audit_broker_active(f->b));
	assert_int_equal(log_n(f->b, 0, 1), VERR_INTERNAL);
	/* one working device is enough */
	enable(f->b, "good", "mem", "{}");
	assert_int_equal(log_n(f->b, 0, 2), 0);
	assert_int_equal(g_mem.writes, 2);
	struct verr err = {0};
	assert_int_equal(audit_broker_disable(f->b, "good", &err), 0);
	assert_int_equal(log_n(f->b, 0, 1), VERR_INTERNAL);
}

static void test_audit_broker__hanging_device_is_bounded(void **state)
{
	struct fx *f = *state;
	enable(f->b, "stuck", "hang", "{}");
	int64_t t0 = now_ms();
	assert_int_equal(log_n(f->b, 0, 1), VERR_INTERNAL);
	int64_t took = now_ms() - t0;
	assert_true(took >= 150 && took < 1500);
	/* while it is stuck, later entries fail at once */
	t0 = now_ms();
	assert_int_equal(log_n(f->b, 1, 3), VERR_INTERNAL);
	assert_true(now_ms() - t0 < 300);
	/* with a working device beside it, requests go on */
	enable(f->b, "good", "mem", "{}");
	assert_int_equal(log_n(f->b, 4, 2), 0);
	assert_int_equal(g_mem.writes, 2);
	release_hang();
}

static void test_audit_broker__entries_hmacd_and_chained(void **state)
{
	struct fx *f = *state;
	enable(f->b, "m", "mem", "{}");
	assert_int_equal(log_n(f->b, 0, 5), 0);
	assert_null(strstr(g_mem.buf, "hunter2"));
	assert_null(strstr(g_mem.buf, "s.secret"));
	char *h = NULL;
	struct verr err = {0};
	assert_int_equal(audit_broker_hash(f->b, "m/", "hunter2", &h, &err), 0);
	assert_non_null(strstr(g_mem.buf, h));
	free(h);
	assert_int_equal(audit_broker_hash(f->b, "nope", "x", &h, &err), VERR_INVALID);
	assert_non_null(strstr(g_mem.buf, ",\"seq\":1,\"chain\":\""));
	assert_non_null(strstr(g_mem.buf, ",\"seq\":5,\"chain\":\""));
	verify_mem(f->b, "m", 5);
}

/* The core's path: entries described by struct audit_entry are HMAC'd,
 * chained in order with tree entries, and fail closed like them. */
static void test_audit_broker__described_entries(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *data = json_pack("{s:s}", "pw", "hunter2");
	struct audit_entry e = {
		.time = "2026-01-01T00:00:00Z",
		.type = "request",
		.client_token = "s.secret",
		.has_token = true,
		.accessor = "acc-secret",
		.request_id = "r-desc",
		.operation = "update",
		.client_token_accessor = "acc-secret",
		.path = "secret/x",
		.request_data = data,
	};
	enable(f->b, "bad", "fail", "{}");
	assert_int_equal(audit_broker_log_entry(f->b, &e, &err), VERR_INTERNAL);
	enable(f->b, "m", "mem", "{}");
	assert_int_equal(log_n(f->b, 0, 2), 0);
	assert_int_equal(audit_broker_log_entry(f->b, &e, &err), 0);
	assert_int_equal(log_n(f->b, 2, 2), 0);
	assert_non_null(strstr(g_mem.buf, "\"id\":\"r-desc\""));
	assert_null(strstr(g_mem.buf, "hunter2"));
	assert_null(strstr(g_mem.buf, "s.secret"));
	assert_null(strstr(g_mem.buf, "acc-secret"));
	assert_non_null(strstr(g_mem.buf, ",\"seq\":3,\"chain\":\""));
	verify_mem(f->b, "m", 5);
	json_decref(data);
}

/* A request entry and its response entry logged as a pair: on a device
 * that writes inline, both lines reach the log in one write, request
 * first, chained like any two entries; a device that fails refuses the
 * pair as a whole. */
static void test_audit_broker__pair_one_write(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *data = json_pack("{s:s}", "password", "hunter2");
	struct audit_entry q = {
		.time = "2026-01-01T00:00:00.000000001Z",
		.type = "request",
		.client_token = "s.secret",
		.request_id = "r-pair",
		.operation = "read",
		.path = "secret/data/app",
	};
	struct audit_entry r = q;
	r.time = "2026-01-01T00:00:00.000000002Z";
	r.type = "response";
	r.has_response = r.has_resp = true;
	r.resp_data = data;
	enable(f->b, "bad", "fail", "{}");
	assert_int_equal(audit_broker_log_pair(f->b, &q, &r, &err), VERR_INTERNAL);
	enable(f->b, "p", "memi", "{}");
	assert_int_equal(log_n(f->b, 0, 1), 0);
	int before = g_mem.writes;
	assert_int_equal(audit_broker_log_pair(f->b, &q, &r, &err), 0);
	assert_int_equal(g_mem.writes, before + 1);
	const char *req = strstr(g_mem.buf, "\"type\":\"request\"");
	const char *resp = strstr(g_mem.buf, "\"type\":\"response\"");
	assert_non_null(req);
	assert_non_null(resp);
	assert_true(req < resp);
	assert_non_null(strstr(g_mem.buf, ",\"seq\":2,\"chain\":\""));
	assert_non_null(strstr(g_mem.buf, ",\"seq\":3,\"chain\":\""));
	assert_null(strstr(g_mem.buf, "hunter2"));
	assert_int_equal(log_n(f->b, 1, 1), 0);
	verify_mem(f->b, "p", 4);
	json_decref(data);
}

struct thr_arg {
	struct audit_broker *b;
	int base;
};

static void *logger(void *p)
{
	struct thr_arg *a = p;
	log_n(a->b, a->base, 100);
	return NULL;
}

static void test_audit_broker__concurrent_chain(void **state)
{
	struct fx *f = *state;
	enable(f->b, "m", "mem", "{}");
	pthread_t th[8];
	struct thr_arg args[8];
	for (int i = 0; i < 8; i++) {
		args[i] = (struct thr_arg){f->b, i * 1000};
		pthread_create(&th[i], NULL, logger, &args[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	verify_mem(f->b, "m", 800);
	assert_non_null(strstr(g_mem.buf, ",\"seq\":800,"));
}

static void test_audit_broker__persists_and_resumes_chain(void **state)
{
	struct fx *f = *state;
	enable(f->b, "m", "mem", "{\"hmac_accessor\":\"false\"}");
	assert_int_equal(log_n(f->b, 0, 3), 0);
	unsigned char k1[32], k2[32];
	chain_key(f->b, "m", k1);
	char *h1 = NULL, *h2 = NULL;
	struct verr err = {0};
	assert_int_equal(audit_broker_hash(f->b, "m", "v", &h1, &err), 0);
	reopen_broker(f); /* seal + unseal */
	json_t *l = audit_broker_list(f->b);
	json_t *d = json_object_get(l, "m/");
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(d, "type")), "mem");
	assert_string_equal(json_string_value(json_object_get(d, "path")), "m/");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(d, "options"), "hmac_accessor")),
		"false");
	json_decref(l);
	chain_key(f->b, "m", k2);
	assert_memory_equal(k1, k2, 32);
	assert_int_equal(audit_broker_hash(f->b, "m", "v", &h2, &err), 0);
	assert_string_equal(h1, h2);
	free(h1);
	free(h2);
	assert_int_equal(log_n(f->b, 3, 2), 0);
	verify_mem(f->b, "m", 5);
	assert_non_null(strstr(g_mem.buf, ",\"seq\":5,"));
	/* SIGHUP */
	audit_broker_reopen(f->b);
	assert_int_equal(log_n(f->b, 5, 1), 0);
	verify_mem(f->b, "m", 6);
}

static void test_audit_broker__enable_errors_and_disable(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *o = json_object();
	assert_int_equal(audit_broker_enable(f->b, "x", "nosuch", "", o, false, &err), VERR_INVALID);
	json_t *bad = json_pack("{s:s}", "refuse", "1");
	assert_int_equal(audit_broker_enable(f->b, "x", "mem", "", bad, false, &err), VERR_INVALID);
	assert_string_equal(err.msg, "refused by options");
	json_decref(bad);
	json_t *nested = json_pack("{s:{}}", "a");
	assert_int_equal(audit_broker_enable(f->b, "x", "mem", "", nested, false, &err), VERR_INVALID);
	json_decref(nested);
	assert_int_equal(audit_broker_enable(f->b, "x/chain-key", "mem", "", o, false, &err),
			 VERR_INVALID);
	assert_false(audit_broker_active(f->b));
	json_t *typed = json_pack("{s:b,s:i}", "log_raw", 1, "n", 3);
	assert_int_equal(audit_broker_enable(f->b, "x", "mem", "d", typed, true, &err), 0);
	json_decref(typed);
	assert_int_equal(audit_broker_enable(f->b, "x/", "mem", "", o, false, &err), VERR_INVALID);
	json_t *l = audit_broker_list(f->b);
	json_t *opts = json_object_get(json_object_get(l, "x/"), "options");
	assert_string_equal(json_string_value(json_object_get(opts, "log_raw")), "true");
	assert_string_equal(json_string_value(json_object_get(opts, "n")), "3");
	assert_true(json_is_true(json_object_get(json_object_get(l, "x/"), "local")));
	json_decref(l);
	assert_int_equal(audit_broker_disable(f->b, "x", &err), 0);
	assert_int_equal(audit_broker_disable(f->b, "x", &err), 0);
	assert_false(audit_broker_active(f->b));
	char *k = NULL;
	assert_int_equal(audit_broker_chain_key(f->b, "x", &k, &err), VERR_INVALID);
	reopen_broker(f);
	assert_false(audit_broker_active(f->b));
	json_decref(o);
}

/* Group commit: 16 threads log at once on a device written inline by the
 * request threads, each write taking 2 ms. They share writes (fewer than
 * 16), and each call returns only once its own line is in the log. */
struct gc_arg {
	struct audit_broker *b;
	int id;
	pthread_barrier_t *start;
	int rc;
	bool seen; /* its line was in the log when the call returned */
};

static void *gc_logger(void *p)
{
	struct gc_arg *a = p;
	char id[32];
	snprintf(id, sizeof(id), "\"n\":%d,", 5000 + a->id);
	json_t *e = entry(5000 + a->id);
	struct verr err = {0};
	pthread_barrier_wait(a->start);
	a->rc = audit_broker_log(a->b, e, &err);
	pthread_mutex_lock(&g_mem.mu);
	a->seen = g_mem.buf && strstr(g_mem.buf, id) != NULL;
	pthread_mutex_unlock(&g_mem.mu);
	json_decref(e);
	return NULL;
}

static void test_audit_broker__group_commit(void **state)
{
	struct fx *f = *state;
	enum { N = 16 };
	enable(f->b, "gc", "memi", "{}");
	assert_int_equal(log_n(f->b, 0, 1), 0); /* uncontended: written inline */
	assert_int_equal(g_mem.writes, 1);
	g_slow_us = 2000;
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, N);
	pthread_t th[N];
	struct gc_arg args[N];
	for (int i = 0; i < N; i++) {
		args[i] = (struct gc_arg){.b = f->b, .id = i, .start = &start};
		pthread_create(&th[i], NULL, gc_logger, &args[i]);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	g_slow_us = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(args[i].rc, 0);
		assert_true(args[i].seen);
	}
	int writes = g_mem.writes - 1;
	print_message("group commit: %d entries in %d writes\n", N, writes);
	assert_true(writes >= 1 && writes < N);
	verify_mem(f->b, "gc", N + 1);
	/* the role is free again: a lone entry is still written at once */
	assert_int_equal(log_n(f->b, 100, 1), 0);
	assert_int_equal(g_mem.writes, writes + 2);
}

/* Disk full mid-line: the write fails after part of a line reached the
 * log. The entry fails (closed), later entries are written, and the chain
 * verifies, naming the torn line as a recorded failed write. */
static void test_audit_broker__torn_write_recorded(void **state)
{
	struct fx *f = *state;
	enable(f->b, "t", "tear", "{}");
	assert_int_equal(log_n(f->b, 0, 2), 0);
	g_tear_keep = 37; /* part of the third line reaches the log */
	assert_int_equal(log_n(f->b, 2, 1), VERR_INTERNAL);
	assert_int_equal(log_n(f->b, 3, 2), 0);
	struct cli_chain_result r;
	verify_mem_r(&r, f->b, "t");
	if (r.problem != CLI_CHAIN_OK)
		fail_msg("line %zu: %s", r.line, r.reason);
	/* 2 entries, the torn line, the failure entry, 2 entries */
	assert_int_equal(r.entries, 6);
	assert_int_equal(r.torn, 1);
	assert_int_equal(r.failures, 1);
	assert_non_null(strstr(r.reason, "torn by a failed write"));
	assert_non_null(strstr(g_mem.buf, "\"type\":\"audit_write_failed\",\"failed_writes\":1,"
					   "\"error\":\"No space left on device\",\"torn\":{\"lines\":1,"
					   "\"bytes\":37,"));
	/* seq goes on without a gap: 1, 2, failure entry 3, then 4 and 5 */
	assert_non_null(strstr(g_mem.buf, ",\"seq\":5,\"chain\""));
	assert_null(strstr(g_mem.buf, ",\"seq\":6,\"chain\""));

	/* an edit inside the torn bytes is tampering again */
	pthread_mutex_lock(&g_mem.mu);
	char *torn = strstr(g_mem.buf, "}\n") + 2;
	torn = strstr(torn, "}\n") + 2;
	torn[10] ^= 1;
	pthread_mutex_unlock(&g_mem.mu);
	verify_mem_r(&r, f->b, "t");
	assert_int_not_equal(r.problem, CLI_CHAIN_OK);
	assert_int_equal(r.line, 3);
}

/* Two failed writes in a row, the second tearing the terminated first one
 * further, then a write that tears the failure entry itself: one failure
 * entry accounts for every torn line. */
static void test_audit_broker__torn_twice(void **state)
{
	struct fx *f = *state;
	enable(f->b, "t", "tear", "{}");
	assert_int_equal(log_n(f->b, 0, 1), 0);
	g_tear_keep = 20;
	assert_int_equal(log_n(f->b, 1, 1), VERR_INTERNAL);
	g_tear_keep = 0; /* nothing reaches the log */
	assert_int_equal(log_n(f->b, 2, 1), VERR_INTERNAL);
	g_tear_keep = 30; /* "\n" + the start of the failure entry */
	assert_int_equal(log_n(f->b, 3, 1), VERR_INTERNAL);
	assert_int_equal(log_n(f->b, 4, 2), 0);
	struct cli_chain_result r;
	verify_mem_r(&r, f->b, "t");
	if (r.problem != CLI_CHAIN_OK)
		fail_msg("line %zu: %s", r.line, r.reason);
	assert_int_equal(r.torn, 2);
	assert_int_equal(r.failures, 1);
	assert_non_null(strstr(g_mem.buf, "\"failed_writes\":3,"));
}

/* A failed write that left nothing behind (a file truncated back): the
 * chain goes on and the next entry records the failure. */
static void test_audit_broker__rolled_back_write_recorded(void **state)
{
	struct fx *f = *state;
	enable(f->b, "t", "tear", "{}");
	assert_int_equal(log_n(f->b, 0, 2), 0);
	g_tear_keep = 0;
	assert_int_equal(log_n(f->b, 2, 1), VERR_INTERNAL);
	assert_int_equal(log_n(f->b, 3, 1), 0);
	struct cli_chain_result r;
	verify_mem_r(&r, f->b, "t");
	if (r.problem != CLI_CHAIN_OK)
		fail_msg("line %zu: %s", r.line, r.reason);
	assert_int_equal(r.entries, 4);
	assert_int_equal(r.torn, 0);
	assert_int_equal(r.failures, 1);
	assert_non_null(strstr(r.reason, "rolled back"));
	assert_null(strstr(g_mem.buf, "\"torn\""));
}

static void test_audit_broker__parse_tail(void **state)
{
	char prev[65];
	uint64_t seq = 9;
	bool nl;
	const char *good = "x\n{\"a\":1,\"seq\":41,\"chain\":\""
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n";
	assert_true(audit_broker__parse_tail(good, strlen(good), prev, &seq, &nl));
	assert_string_equal(prev, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(seq, 41);
	assert_false(nl);
	seq = 9;
	assert_false(audit_broker__parse_tail("{\"a\":1}\n", 8, prev, &seq, &nl));
	assert_string_equal(prev, "");
	assert_int_equal(seq, 9);
	assert_false(audit_broker__parse_tail("{\"torn", 6, prev, &seq, &nl));
	assert_true(nl);
	assert_false(audit_broker__parse_tail("", 0, prev, &seq, &nl));
	assert_false(nl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_audit_broker__no_device_no_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__failing_device_fails_closed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__hanging_device_is_bounded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__entries_hmacd_and_chained, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__concurrent_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__described_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__pair_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__persists_and_resumes_chain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__enable_errors_and_disable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__torn_write_recorded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__torn_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_broker__rolled_back_write_recorded, setup,
						teardown),
		cmocka_unit_test(test_audit_broker__parse_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
