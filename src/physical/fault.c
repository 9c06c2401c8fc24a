/*
 * fault.c - a fault-injecting, call-counting shim over any storage backend
 * (physical.h), in the manner of SQLite's test_vfs.c: tests wrap a real
 * backend to fail the Nth write, tear a write in half, or slow every call,
 * and assert what the layers above do about it. Not registered as a storage
 * type: a configuration cannot select it.
 */
#include "physical/physical.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fault {
	struct physical base; /* must be first */
	struct physical *under;
	bool own;
	_Atomic long fail_put_after, fail_get_after, short_put_nth;
	_Atomic int latency_us, fail_code;
	_Atomic long gets, puts, deletes, lists, txns, failures;
	_Atomic long writes; /* puts + deletes + txns, for fail_put_after */
	_Atomic long reads;  /* gets + lists, for fail_get_after */
	_Atomic long puts_since_set; /* for short_put_nth */
};

static void stall(struct fault *f)
{
	int us = atomic_load(&f->latency_us);
	if (us > 0) {
		struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
		nanosleep(&ts, NULL);
	}
}

static int fail(struct fault *f, struct verr *err)
{
	atomic_fetch_add(&f->failures, 1);
	int code = atomic_load(&f->fail_code);
	return verr_set(err, code ? code : VERR_UNAVAILABLE, "storage fault injected");
}

static bool write_fails(struct fault *f)
{
	long n = atomic_fetch_add(&f->writes, 1);
	long lim = atomic_load(&f->fail_put_after);
	return lim >= 0 && n >= lim;
}

static bool read_fails(struct fault *f)
{
	long n = atomic_fetch_add(&f->reads, 1);
	long lim = atomic_load(&f->fail_get_after);
	return lim >= 0 && n >= lim;
}

static int f_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		 struct verr *err)
{
	struct fault *f = (struct fault *)p;
	*out = NULL;
	*len = 0;
	stall(f);
	atomic_fetch_add(&f->gets, 1);
	if (read_fails(f))
		return fail(f, err);
	return physical_get(f->under, key, out, len, err);
}

static int f_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		 struct verr *err)
{
	struct fault *f = (struct fault *)p;
	stall(f);
	atomic_fetch_add(&f->puts, 1);
	long n = atomic_fetch_add(&f->puts_since_set, 1) + 1;
	if (write_fails(f))
		return fail(f, err);
	long nth = atomic_load(&f->short_put_nth);
	if (nth > 0 && n == nth)
		return physical_put(f->under, key, val, len / 2, err);
	return physical_put(f->under, key, val, len, err);
}

static int f_del(struct physical *p, const char *key, struct verr *err)
{
	struct fault *f = (struct fault *)p;
	stall(f);
	atomic_fetch_add(&f->deletes, 1);
	if (write_fails(f))
		return fail(f, err);
	return physical_delete(f->under, key, err);
}

static int f_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		  struct verr *err)
{
	struct fault *f = (struct fault *)p;
	*out = NULL;
	*n = 0;
	stall(f);
	atomic_fetch_add(&f->lists, 1);
	if (read_fails(f))
		return fail(f, err);
	return physical_list(f->under, prefix, out, n, err);
}

static int f_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		 struct verr *err)
{
	struct fault *f = (struct fault *)p;
	stall(f);
	atomic_fetch_add(&f->txns, 1);
	if (write_fails(f))
		return fail(f, err);
	return physical_txn(f->under, ops, n, err);
}

static struct physical_ha *f_ha(struct physical *p)
{
	return physical_ha(((struct fault *)p)->under);
}

static void f_close(struct physical *p)
{
	struct fault *f = (struct fault *)p;
	if (f->own)
		physical_close(f->under);
	free(f);
}

static const struct physical_ops fault_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "fault",
	.get = f_get,
	.put = f_put,
	.del = f_del,
	.list = f_list,
	.close = f_close,
	.txn = f_txn,
	.ha = f_ha,
};

int physical_fault_new(struct physical **out, struct physical *under, bool own_under,
		       struct verr *err)
{
	*out = NULL;
	struct fault *f = calloc(1, sizeof(*f));
	if (!f)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	f->base.ops = &fault_ops;
	f->base.max_entry_size = under->max_entry_size;
	f->base.durable = under->durable;
	f->under = under;
	f->own = own_under;
	f->fail_put_after = -1;
	f->fail_get_after = -1;
	*out = &f->base;
	return 0;
}

void physical_fault_set(struct physical *p, const struct physical_fault_knobs *k)
{
	struct fault *f = (struct fault *)p;
	atomic_store(&f->writes, 0);
	atomic_store(&f->reads, 0);
	atomic_store(&f->puts_since_set, 0);
	atomic_store(&f->fail_put_after, k->fail_put_after);
	atomic_store(&f->fail_get_after, k->fail_get_after);
	atomic_store(&f->short_put_nth, k->short_put_nth);
	atomic_store(&f->latency_us, k->latency_us);
	atomic_store(&f->fail_code, k->fail_code);
}

void physical_fault_counts(struct physical *p, struct physical_fault_counts *out)
{
	struct fault *f = (struct fault *)p;
	out->gets = atomic_load(&f->gets);
	out->puts = atomic_load(&f->puts);
	out->deletes = atomic_load(&f->deletes);
	out->lists = atomic_load(&f->lists);
	out->txns = atomic_load(&f->txns);
	out->failures = atomic_load(&f->failures);
}
