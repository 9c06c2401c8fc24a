/*
 * tests/unit/physical/raft_fsm.c - the raft backend's state machine
 * (src/physical/raft_fsm.c) without raft: batches apply in order, a
 * malformed entry applies nothing, random bytes never crash it, and a
 * snapshot restores the key space, member names, the HA holder record, the
 * issued and revoked certificate lists and an unfinished restore's staging
 * store; remove-peer's record revokes every certificate of the member.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "physical/raft_int.h"
#include "util/log.h"

static struct rstore *fsm_new(void)
{
	struct rstore *s = calloc(1, sizeof(*s));
	pthread_rwlock_init(&s->fsm_lock, NULL);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->tls.mu, NULL);
	json_t *conf = json_pack("{s:I}", "max_entry_size", (json_int_t)1 << 30);
	assert_int_equal(physical_inmem_new(&s->kv, conf, NULL), 0);
	json_decref(conf);
	s->node_id = strdup("me");
	s->id = 42;
	rstore__fsm_init(s);
	return s;
}

static void fsm_free(struct rstore *s)
{
	physical_close(s->kv);
	physical_close(s->stage);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i].name);
	free(s->names);
	free(s->holder_value);
	free(s->node_id);
	free(s->tls.revoked);
	free(s->tls.issued);
	pthread_rwlock_destroy(&s->fsm_lock);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->tls.mu);
	free(s);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* a batch entry (8-byte padded, as the loop writes them) of n records */
static uint8_t *batch(size_t *len, uint8_t **recs, size_t *lens, size_t n)
{
	size_t l = 5;
	for (size_t i = 0; i < n; i++)
		l += 4 + lens[i];
	size_t padded = (l + 7) & ~(size_t)7;
	uint8_t *b = calloc(1, padded);
	b[0] = RREC_BATCH;
	put_u32(b + 1, (uint32_t)n);
	size_t o = 5;
	for (size_t i = 0; i < n; i++) {
		put_u32(b + o, (uint32_t)lens[i]);
		memcpy(b + o + 4, recs[i], lens[i]);
		o += 4 + lens[i];
	}
	*len = padded;
	return b;
}

static uint8_t *txn_rec(size_t *len, const char *key, const char *val, uint64_t token)
{
	struct physical_txn_op op = {val ? PHYSICAL_TXN_PUT : PHYSICAL_TXN_DELETE, key,
				     (const uint8_t *)val, val ? strlen(val) : 0};
	uint8_t *r = NULL;
	assert_int_equal(rstore__encode_txn(&r, len, &op, 1, token), 0);
	return r;
}

static bool holds(struct physical *p, const char *key, const char *val)
{
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(physical_get(p, key, &out, &len, NULL), 0);
	bool ok = val ? out && len == strlen(val) && !memcmp(out, val, len) : !out;
	free(out);
	return ok;
}

static void test_physical_raft_fsm__batches_apply_in_order(void **state)
{
	struct rstore *s = fsm_new();
	uint8_t *r[3];
	size_t l[3];
	r[0] = txn_rec(&l[0], "a", "1", 0);
	r[1] = txn_rec(&l[1], "a", "2", 0);
	r[2] = txn_rec(&l[2], "b/c", "3", 0);
	size_t bl = 0;
	uint8_t *b = batch(&bl, r, l, 3);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), 0);
	assert_true(holds(s->kv, "a", "2"));
	assert_true(holds(s->kv, "b/c", "3"));
	free(b);
	/* a malformed member: nothing of the entry applies */
	free(r[1]);
	r[1] = txn_rec(&l[1], "z", "9", 0);
	r[1][1] = 200; /* operation count beyond the record */
	free(r[0]);
	r[0] = txn_rec(&l[0], "a", "changed", 0);
	b = batch(&bl, r, l, 3);
	/* the frame is valid, one record is not: nothing applies */
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), RAFT_MALFORMED);
	assert_true(holds(s->kv, "a", "2"));
	assert_true(holds(s->kv, "z", NULL));
	free(b);
	/* a bad frame (a member longer than the entry) applies nothing */
	b = batch(&bl, r, l, 1);
	put_u32(b + 5, 1000);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), RAFT_MALFORMED);
	assert_true(holds(s->kv, "z", NULL));
	free(b);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	fsm_free(s);
}

static void test_physical_raft_fsm__random_bytes_never_crash(void **state)
{
	struct rstore *s = fsm_new();
	uint32_t x = 12345;
	uint8_t buf[256];
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + (x % sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		if (round % 2)
			buf[0] = RREC_BATCH; /* reach the record decoders too */
		(void)rstore__fsm_apply_entry(s, buf, n);
	}
	fsm_free(s);
}

static void test_physical_raft_fsm__snapshot_restores_everything(void **state)
{
	struct rstore *s = fsm_new();
	uint8_t *r[5];
	size_t l[5];
	r[0] = txn_rec(&l[0], "core/x", "1", 0);
	assert_int_equal(rstore__encode_idstr(&r[1], &l[1], RREC_NAME, 7, "node7"), 0);
	assert_int_equal(rstore__encode_idstr(&r[2], &l[2], RREC_HOLDER, 7, "https://n7:8200"), 0);
	assert_int_equal(rstore__encode_u64s(&r[3], &l[3], RREC_STAGE_BEGIN, 99, 0), 0);
	r[4] = txn_rec(&l[4], "staged", "s", 99);
	size_t bl = 0;
	uint8_t *b = batch(&bl, r, l, 5);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), 0);
	free(b);
	/* a revocation (a removed member's certificate), and a malformed one */
	static const char fp[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	uint8_t *rv = NULL;
	size_t rvl = 0;
	assert_int_equal(rstore__encode_idstr(&rv, &rvl, RREC_REVOKE, 7, fp), 0);
	b = batch(&bl, &rv, &rvl, 1);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), 0);
	free(b);
	free(rv);
	assert_true(rstore__tls_revoked(&s->tls, fp));
	assert_int_equal(rstore__encode_idstr(&rv, &rvl, RREC_REVOKE, 7, "abcd"), 0);
	b = batch(&bl, &rv, &rvl, 1);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), RAFT_MALFORMED);
	free(b);
	free(rv);
	assert_int_equal(s->tls.nrevoked, 1);
	struct raft_buffer *bufs = NULL;
	unsigned nb = 0;
	assert_int_equal(s->fsm.version, 3);
	assert_int_equal(s->fsm.snapshot(&s->fsm, &bufs, &nb), 0);
	assert_int_equal(nb, 1);
	assert_int_equal(s->fsm.snapshot_async(&s->fsm, &bufs, &nb), 0);
	assert_int_equal(bufs[0].len % 8, 0);

	struct rstore *t = fsm_new();
	struct raft_buffer copy = {raft_malloc(bufs[0].len), bufs[0].len};
	memcpy(copy.base, bufs[0].base, copy.len);
	assert_int_equal(t->fsm.restore(&t->fsm, &copy), 0);
	assert_true(holds(t->kv, "core/x", "1"));
	assert_true(holds(t->kv, "staged", NULL));
	char *name = rstore__name_of(t, 7);
	assert_string_equal(name, "node7");
	free(name);
	assert_int_equal(t->holder_id, 7);
	assert_string_equal(t->holder_value, "https://n7:8200");
	assert_true(rstore__tls_revoked(&t->tls, fp));
	assert_int_equal(t->tls.nrevoked, 1);
	/* the staged restore continues on the restored copy and commits */
	uint8_t *c = NULL;
	size_t cl = 0;
	assert_int_equal(rstore__encode_u64s(&c, &cl, RREC_STAGE_COMMIT, 99, 1), 0);
	b = batch(&bl, &c, &cl, 1);
	assert_int_equal(rstore__fsm_apply_entry(t, b, bl), 0);
	assert_true(holds(t->kv, "staged", "s"));
	assert_true(holds(t->kv, "core/x", NULL));
	free(b);
	free(c);
	/* a damaged snapshot is refused and changes nothing */
	struct raft_buffer bad = {raft_malloc(bufs[0].len), bufs[0].len / 2};
	memcpy(bad.base, bufs[0].base, bad.len);
	assert_int_equal(t->fsm.restore(&t->fsm, &bad), RAFT_MALFORMED);
	raft_free(bad.base);
	assert_true(holds(t->kv, "staged", "s"));
	assert_int_equal(s->fsm.snapshot_finalize(&s->fsm, &bufs, &nb), 0);
	assert_null(bufs);
	for (int i = 0; i < 5; i++)
		free(r[i]);
	fsm_free(t);
	fsm_free(s);
}

static void apply_one(struct rstore *s, uint8_t *rec, size_t len)
{
	size_t bl = 0;
	uint8_t *b = batch(&bl, &rec, &len, 1);
	assert_int_equal(rstore__fsm_apply_entry(s, b, bl), 0);
	free(b);
	free(rec);
}

static void apply_kv(struct rstore *s, const char *key, const char *val, uint64_t token)
{
	size_t l = 0;
	uint8_t *rec = txn_rec(&l, key, val, token);
	apply_one(s, rec, l);
}

/* The asynchronous snapshot is the state when fsm.snapshot ran on the loop,
 * whatever is applied before its serialisation on the worker: overwrites,
 * deletes, and a staged restore committing (which closes the old store). */
static void test_physical_raft_fsm__async_snapshot_is_a_consistent_view(void **state)
{
	struct rstore *s = fsm_new();
	size_t l = 0;
	char k[32], v[32];
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "old%d", i);
		apply_kv(s, k, v, 0);
	}
	struct raft_buffer *bufs = NULL;
	unsigned nb = 0;
	assert_int_equal(s->fsm.snapshot(&s->fsm, &bufs, &nb), 0);
	/* one at a time */
	struct raft_buffer *b2 = NULL;
	unsigned n2 = 0;
	assert_int_equal(s->fsm.snapshot(&s->fsm, &b2, &n2), RAFT_BUSY);
	/* applied after the snapshot point, before it is serialised */
	for (int i = 0; i < 200; i += 2) {
		snprintf(k, sizeof(k), "k%03d", i);
		apply_kv(s, k, "new", 0);
	}
	apply_kv(s, "k001", NULL, 0);
	apply_kv(s, "later", "x", 0);
	uint8_t *rec = NULL;
	assert_int_equal(rstore__encode_u64s(&rec, &l, RREC_STAGE_BEGIN, 5, 0), 0);
	apply_one(s, rec, l);
	apply_kv(s, "only", "staged", 5);
	assert_int_equal(rstore__encode_u64s(&rec, &l, RREC_STAGE_COMMIT, 5, 1), 0);
	apply_one(s, rec, l); /* swaps the store: the old one is closed */
	assert_true(holds(s->kv, "only", "staged"));
	assert_true(holds(s->kv, "k000", NULL));

	assert_int_equal(s->fsm.snapshot_async(&s->fsm, &bufs, &nb), 0);
	struct rstore *t = fsm_new();
	struct raft_buffer copy = {raft_malloc(bufs[0].len), bufs[0].len};
	memcpy(copy.base, bufs[0].base, copy.len);
	assert_int_equal(t->fsm.restore(&t->fsm, &copy), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "old%d", i);
		assert_true(holds(t->kv, k, v));
	}
	assert_true(holds(t->kv, "later", NULL));
	assert_true(holds(t->kv, "only", NULL));
	assert_int_equal(s->fsm.snapshot_finalize(&s->fsm, &bufs, &nb), 0);
	assert_null(bufs);
	assert_int_equal(nb, 0);
	/* and the next one may start */
	assert_int_equal(s->fsm.snapshot(&s->fsm, &bufs, &nb), 0);
	assert_int_equal(s->fsm.snapshot_finalize(&s->fsm, &bufs, &nb), 0);
	fsm_free(t);
	fsm_free(s);
}

/* a snapshot taken and restored into a fresh state machine (caller frees) */
static struct rstore *snapshot_copy(struct rstore *s)
{
	struct raft_buffer *bufs = NULL;
	unsigned nb = 0;
	assert_int_equal(s->fsm.snapshot(&s->fsm, &bufs, &nb), 0);
	assert_int_equal(s->fsm.snapshot_async(&s->fsm, &bufs, &nb), 0);
	struct rstore *t = fsm_new();
	struct raft_buffer copy = {raft_malloc(bufs[0].len), bufs[0].len};
	memcpy(copy.base, bufs[0].base, copy.len);
	assert_int_equal(t->fsm.restore(&t->fsm, &copy), 0);
	assert_int_equal(s->fsm.snapshot_finalize(&s->fsm, &bufs, &nb), 0);
	return t;
}

static void apply_fp(struct rstore *s, uint8_t type, raft_id id, const char *fp)
{
	uint8_t *rec = NULL;
	size_t l = 0;
	assert_int_equal(rstore__encode_idstr(&rec, &l, type, id, fp), 0);
	apply_one(s, rec, l);
}

/* The certificates the cluster issued are recorded per member when issued
 * (join), and remove-peer's one record revokes all of a member's, on every
 * node and whatever certificate it last presented to the leader; both lists
 * survive a snapshot, and a snapshot of the previous format still loads. */
static void test_physical_raft_fsm__issued_certificates_revoked_at_remove(void **state)
{
	static const char a1[] = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
	static const char a2[] = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
	static const char b1[] = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
	static const char seen[] = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
	struct rstore *s = fsm_new();
	/* member 7 joined twice (a retried challenge: two certificates), 8 once */
	apply_fp(s, RREC_ISSUED, 7, a1);
	apply_fp(s, RREC_ISSUED, 7, a2);
	apply_fp(s, RREC_ISSUED, 8, b1);
	apply_fp(s, RREC_ISSUED, 7, a1); /* replayed: no duplicate */
	assert_int_equal(s->tls.nissued, 3);
	assert_false(rstore__tls_revoked(&s->tls, a1));
	/* malformed: not hex, the wrong length; an empty one only for a removal */
	uint8_t *rec = NULL;
	size_t l = 0, bl = 0;
	char upper[65];
	memcpy(upper, a1, sizeof(upper));
	upper[0] = 'A';
	const char *bad[] = {upper, "abcd", ""};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(rstore__encode_idstr(&rec, &l, RREC_ISSUED, 7, bad[i]), 0);
		uint8_t *b = batch(&bl, &rec, &l, 1);
		assert_int_equal(rstore__fsm_apply_entry(s, b, bl), RAFT_MALFORMED);
		free(b);
		free(rec);
	}
	assert_int_equal(s->tls.nissued, 3);

	/* recorded at join: a follower restored from a snapshot has them */
	struct rstore *t = snapshot_copy(s);
	assert_int_equal(t->tls.nissued, 3);
	assert_true(rstore__tls_issued(&t->tls, a2));
	assert_true(rstore__tls_issued(&t->tls, b1));

	/* removing 7 (it presented another certificate to this leader) revokes
	 * every one recorded for it, on the original and the restored copy */
	apply_fp(s, RREC_REVOKE_MEMBER, 7, seen);
	apply_fp(t, RREC_REVOKE_MEMBER, 7, "");
	assert_true(rstore__tls_revoked(&s->tls, a1));
	assert_true(rstore__tls_revoked(&s->tls, a2));
	assert_true(rstore__tls_revoked(&s->tls, seen));
	assert_false(rstore__tls_revoked(&s->tls, b1)); /* 8 is untouched */
	assert_true(rstore__tls_issued(&s->tls, b1));
	assert_false(rstore__tls_issued(&s->tls, a1));
	assert_true(rstore__tls_revoked(&t->tls, a1));
	assert_true(rstore__tls_revoked(&t->tls, a2));
	assert_false(rstore__tls_revoked(&t->tls, b1));
	/* a revoked certificate is not recorded as live again */
	apply_fp(s, RREC_ISSUED, 7, a1);
	assert_false(rstore__tls_issued(&s->tls, a1));

	/* the revocations survive a snapshot round trip */
	struct rstore *u = snapshot_copy(s);
	assert_int_equal(u->tls.nrevoked, 3);
	assert_true(rstore__tls_revoked(&u->tls, a1));
	assert_true(rstore__tls_revoked(&u->tls, a2));
	assert_true(rstore__tls_revoked(&u->tls, seen));
	assert_int_equal(u->tls.nissued, 1);
	assert_true(rstore__tls_issued(&u->tls, b1));
	/* and removing 8 there revokes its certificate recorded before the
	 * snapshot */
	apply_fp(u, RREC_REVOKE_MEMBER, 8, "");
	assert_true(rstore__tls_revoked(&u->tls, b1));
	assert_int_equal(u->tls.nissued, 0);

	/* a CRS2 snapshot (before the issued list): names 0, holder 0 "",
	 * one revocation, no staging, one key */
	uint8_t v2[4 + 4 + 8 + 4 + 4 + 8 + 64 + 8 + 8 + 4 + 1 + 4 + 1 + 7] = "CRS2";
	size_t o = 4 + 4 + 8 + 4;
	put_u32(v2 + o, 1);
	o += 4;
	v2[o] = 9; /* raft id 9 */
	o += 8;
	memcpy(v2 + o, seen, 64);
	o += 64 + 8; /* stage token 0 */
	v2[o] = 1; /* one key */
	o += 8;
	put_u32(v2 + o, 1);
	v2[o + 4] = 'k';
	put_u32(v2 + o + 5, 1);
	v2[o + 9] = 'v';
	struct raft_buffer old = {raft_malloc(sizeof(v2)), sizeof(v2)};
	memcpy(old.base, v2, sizeof(v2));
	assert_int_equal(u->fsm.restore(&u->fsm, &old), 0);
	assert_true(holds(u->kv, "k", "v"));
	assert_true(rstore__tls_revoked(&u->tls, seen));
	assert_false(rstore__tls_revoked(&u->tls, b1));
	assert_int_equal(u->tls.nissued, 0);
	fsm_free(u);
	fsm_free(t);
	fsm_free(s);
}

int main(void)
{
	log_set_level(LOG_OFF);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_physical_raft_fsm__batches_apply_in_order),
		cmocka_unit_test(test_physical_raft_fsm__random_bytes_never_crash),
		cmocka_unit_test(test_physical_raft_fsm__snapshot_restores_everything),
		cmocka_unit_test(test_physical_raft_fsm__async_snapshot_is_a_consistent_view),
		cmocka_unit_test(test_physical_raft_fsm__issued_certificates_revoked_at_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
