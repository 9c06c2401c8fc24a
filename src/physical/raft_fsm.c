/*
 * raft_fsm.c - the raft storage backend's replicated state machine: the
 * log record encoding, apply (one entry = a batch of records), and raft's
 * snapshot/restore callbacks (log compaction and catching up a follower).
 *
 * Everything here runs on the raft loop thread except the encoders and
 * rstore__name_of. The state is an inmem store (kv) plus side tables kept
 * beside it (member names, the HA holder record) and, while a backup is
 * being restored, a staging store filled through the log and swapped in by
 * one commit record (see physical_raft_load). The snapshot carries all of
 * it, so a follower restored from a snapshot is identical to one that
 * replayed the log.
 *
 * Encoding: little-endian fixed-width integers; every length is checked
 * against the remaining bytes, and a malformed entry is refused whole
 * (RAFT_MALFORMED) before any of it is applied.
 */
#include "physical/raft_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "physical/inmem_int.h"
#include "util/log.h"

const int rstore__refused = 1;

/* ---- encoding ---------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int rstore__encode_txn(uint8_t **out, size_t *len, const struct physical_txn_op *ops, size_t n,
		       uint64_t stage_token)
{
	size_t need = 1 + (stage_token ? 8 : 0) + 4;
	for (size_t i = 0; i < n; i++)
		need += 1 + 4 + strlen(ops[i].key) + 4 +
			(ops[i].kind == PHYSICAL_TXN_PUT ? ops[i].len : 0);
	uint8_t *b = malloc(need);
	if (!b)
		return VERR_INTERNAL;
	size_t o = 0;
	b[o++] = stage_token ? RREC_STAGE_TXN : RREC_TXN;
	if (stage_token) {
		put_u64(b + o, stage_token);
		o += 8;
	}
	put_u32(b + o, (uint32_t)n);
	o += 4;
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(ops[i].key);
		size_t vl = ops[i].kind == PHYSICAL_TXN_PUT ? ops[i].len : 0;
		b[o++] = (uint8_t)ops[i].kind;
		put_u32(b + o, (uint32_t)kl);
		memcpy(b + o + 4, ops[i].key, kl);
		o += 4 + kl;
		put_u32(b + o, (uint32_t)vl);
		if (vl)
			memcpy(b + o + 4, ops[i].val, vl);
		o += 4 + vl;
	}
	*out = b;
	*len = o;
	return 0;
}

int rstore__encode_idstr(uint8_t **out, size_t *len, uint8_t type, raft_id id, const char *str)
{
	size_t sl = strlen(str);
	uint8_t *b = malloc(1 + 8 + 4 + sl);
	if (!b)
		return VERR_INTERNAL;
	b[0] = type;
	put_u64(b + 1, id);
	put_u32(b + 9, (uint32_t)sl);
	memcpy(b + 13, str, sl);
	*out = b;
	*len = 13 + sl;
	return 0;
}

int rstore__encode_u64s(uint8_t **out, size_t *len, uint8_t type, uint64_t a, uint64_t b2)
{
	uint8_t *b = malloc(17);
	if (!b)
		return VERR_INTERNAL;
	b[0] = type;
	put_u64(b + 1, a);
	put_u64(b + 9, b2);
	*out = b;
	*len = 17;
	return 0;
}

/* ---- apply ------------------------------------------------------------------- */

/* Decode a TXN body at buf (after type/token) into ops pointing into buf.
 * -1 when malformed. */
static int decode_txn(const uint8_t *buf, size_t len, struct physical_txn_op **ops, size_t *n,
		      char ***keys)
{
	if (len < 4)
		return -1;
	uint32_t cnt = get_u32(buf);
	size_t o = 4;
	if (cnt > len / 9)
		return -1;
	struct physical_txn_op *v = calloc(cnt ? cnt : 1, sizeof(*v));
	char **k = calloc(cnt ? cnt : 1, sizeof(*k));
	if (!v || !k)
		goto bad;
	for (uint32_t i = 0; i < cnt; i++) {
		if (len - o < 5)
			goto bad;
		uint8_t kind = buf[o++];
		uint32_t kl = get_u32(buf + o);
		o += 4;
		if (len - o < (size_t)kl + 4)
			goto bad;
		k[i] = strndup((const char *)buf + o, kl); /* keys are C strings */
		if (!k[i])
			goto bad;
		o += kl;
		uint32_t vl = get_u32(buf + o);
		o += 4;
		if (len - o < vl || (kind != PHYSICAL_TXN_PUT && kind != PHYSICAL_TXN_DELETE))
			goto bad;
		v[i].kind = (enum physical_txn_kind)kind;
		v[i].key = k[i];
		v[i].val = buf + o;
		v[i].len = vl;
		o += vl;
	}
	if (o != len)
		goto bad;
	*ops = v;
	*n = cnt;
	*keys = k;
	return 0;
bad:
	if (k)
		for (uint32_t i = 0; i < cnt; i++)
			free(k[i]);
	free(k);
	free(v);
	return -1;
}

static int apply_txn(struct physical *store, const uint8_t *buf, size_t len)
{
	struct physical_txn_op *ops = NULL;
	size_t n = 0;
	char **keys = NULL;
	if (decode_txn(buf, len, &ops, &n, &keys))
		return RAFT_MALFORMED;
	struct verr err = {0};
	int rc = store ? physical_txn(store, ops, n, &err) : 0;
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(ops);
	if (rc) {
		log_error("raft", "applying a transaction to the state machine: %s", err.msg);
		return RAFT_NOMEM;
	}
	return 0;
}

static struct physical *store_new(void)
{
	struct physical *p = NULL;
	json_t *conf = json_pack("{s:I}", "max_entry_size", (json_int_t)1 << 40);
	int rc = physical_inmem_new(&p, conf, NULL);
	json_decref(conf);
	return rc ? NULL : p;
}

static void set_name(struct rstore *s, raft_id id, char *name)
{
	for (size_t i = 0; i < s->nnames; i++)
		if (s->names[i].id == id) {
			free(s->names[i].name);
			s->names[i].name = name;
			return;
		}
	struct rname *nn = realloc(s->names, (s->nnames + 1) * sizeof(*nn));
	if (!nn) {
		free(name);
		return;
	}
	s->names = nn;
	s->names[s->nnames++] = (struct rname){id, name};
}

bool rstore__has_name(struct rstore *s, raft_id id)
{
	bool r = false;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nnames; i++)
		r |= s->names[i].id == id;
	pthread_mutex_unlock(&s->mu);
	return r;
}

char *rstore__name_of(struct rstore *s, raft_id id)
{
	if (id == s->id) /* ours is known before its record commits */
		return strdup(s->node_id);
	char *r = NULL;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nnames; i++)
		if (s->names[i].id == id) {
			r = strdup(s->names[i].name);
			break;
		}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* RREC_ISSUED (a fingerprint) and RREC_REVOKE_MEMBER (one, or none) */
static bool fp_record_ok(const uint8_t *b, size_t len)
{
	if (len < 13 || len - 13 != get_u32(b + 9))
		return false;
	size_t fl = len - 13;
	if (fl == 0)
		return b[0] == RREC_REVOKE_MEMBER;
	char fp[RSTORE_FP_HEX];
	if (fl != RSTORE_FP_HEX - 1)
		return false;
	memcpy(fp, b + 13, fl);
	fp[fl] = '\0';
	return rstore__fp_valid(fp);
}

static int apply_record(struct rstore *s, const uint8_t *b, size_t len)
{
	if (len < 1)
		return RAFT_MALFORMED;
	switch (b[0]) {
	case RREC_TXN:
		return apply_txn(s->kv, b + 1, len - 1);
	case RREC_STAGE_TXN:
		if (len < 9)
			return RAFT_MALFORMED;
		/* a chunk of an abandoned restore is skipped */
		return apply_txn(s->stage && s->stage_token == get_u64(b + 1) ? s->stage : NULL,
				 b + 9, len - 9);
	case RREC_REVOKE: {
		if (len != 13 + RSTORE_FP_HEX - 1 || get_u32(b + 9) != RSTORE_FP_HEX - 1)
			return RAFT_MALFORMED;
		char fp[RSTORE_FP_HEX];
		memcpy(fp, b + 13, RSTORE_FP_HEX - 1);
		fp[RSTORE_FP_HEX - 1] = '\0';
		if (rstore__tls_revoke(&s->tls, get_u64(b + 1), fp))
			return RAFT_NOMEM;
		rstore__transport_drop_revoked(&s->transport);
		return 0;
	}
	case RREC_ISSUED:
	case RREC_REVOKE_MEMBER: {
		if (!fp_record_ok(b, len))
			return RAFT_MALFORMED;
		char fp[RSTORE_FP_HEX] = "";
		memcpy(fp, b + 13, len - 13);
		fp[len - 13] = '\0';
		raft_id id = get_u64(b + 1);
		if (b[0] == RREC_ISSUED)
			return rstore__tls_record_issued(&s->tls, id, fp) ? RAFT_NOMEM : 0;
		if (rstore__tls_revoke_member(&s->tls, id, *fp ? fp : NULL, NULL))
			return RAFT_NOMEM;
		rstore__transport_drop_revoked(&s->transport); /* its open connections */
		return 0;
	}
	case RREC_HOLDER:
	case RREC_NAME: {
		if (len < 13 || len - 13 != get_u32(b + 9))
			return RAFT_MALFORMED;
		char *str = strndup((const char *)b + 13, len - 13);
		if (!str)
			return RAFT_NOMEM;
		raft_id id = get_u64(b + 1);
		pthread_mutex_lock(&s->mu);
		if (b[0] == RREC_HOLDER) {
			free(s->holder_value);
			s->holder_value = str;
			s->holder_id = id;
		} else {
			set_name(s, id, str);
		}
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	case RREC_STAGE_BEGIN:
		if (len != 17)
			return RAFT_MALFORMED;
		physical_close(s->stage);
		s->stage = NULL;
		s->stage_token = get_u64(b + 1);
		if (s->stage_token && !(s->stage = store_new()))
			return RAFT_NOMEM;
		return 0;
	case RREC_STAGE_COMMIT: {
		if (len != 17)
			return RAFT_MALFORMED;
		if (!s->stage || s->stage_token != get_u64(b + 1))
			return 0; /* not ours (abandoned): the state stays */
		struct physical *old = s->kv;
		pthread_rwlock_wrlock(&s->fsm_lock);
		s->kv = s->stage;
		pthread_rwlock_unlock(&s->fsm_lock);
		s->stage = NULL;
		s->stage_token = 0;
		physical_close(old);
		log_info("raft", "a restored snapshot replaced the storage state");
		return 0;
	}
	default:
		return RAFT_MALFORMED;
	}
}

/* Whether a record is well-formed (decodes), without applying it. */
static bool record_ok(const uint8_t *b, size_t len)
{
	if (len < 1)
		return false;
	struct physical_txn_op *ops = NULL;
	size_t n = 0;
	char **keys = NULL;
	size_t body = 0;
	switch (b[0]) {
	case RREC_TXN:
		body = 1;
		break;
	case RREC_STAGE_TXN:
		if (len < 9)
			return false;
		body = 9;
		break;
	case RREC_HOLDER:
	case RREC_NAME:
		return len >= 13 && len - 13 == get_u32(b + 9);
	case RREC_REVOKE:
		return len == 13 + RSTORE_FP_HEX - 1 && get_u32(b + 9) == RSTORE_FP_HEX - 1;
	case RREC_ISSUED:
	case RREC_REVOKE_MEMBER:
		return fp_record_ok(b, len);
	case RREC_STAGE_BEGIN:
	case RREC_STAGE_COMMIT:
		return len == 17;
	default:
		return false;
	}
	if (decode_txn(b + body, len - body, &ops, &n, &keys))
		return false;
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(ops);
	return true;
}

int rstore__fsm_apply_entry(struct rstore *s, const uint8_t *buf, size_t len)
{
	if (len < 5 || buf[0] != RREC_BATCH)
		return RAFT_MALFORMED; /* the loop writes batches only */
	uint32_t n = get_u32(buf + 1);
	size_t o = 5;
	/* validate the frame first, so a malformed entry applies nothing */
	for (uint32_t i = 0; i < n; i++) {
		if (len - o < 4 || len - o - 4 < get_u32(buf + o))
			return RAFT_MALFORMED;
		o += 4 + get_u32(buf + o);
	}
	if (len - o >= 8) /* at most 7 bytes of padding (raft_loop.c) */
		return RAFT_MALFORMED;
	/* and every record, so a malformed entry applies nothing at all */
	o = 5;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t l = get_u32(buf + o);
		if (!record_ok(buf + o + 4, l))
			return RAFT_MALFORMED;
		o += 4 + l;
	}
	o = 5;
	int rc = 0;
	pthread_rwlock_wrlock(&s->fsm_lock);
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint32_t l = get_u32(buf + o);
		/* a stage commit swaps kv under the lock itself */
		if (l && buf[o + 4] == RREC_STAGE_COMMIT) {
			pthread_rwlock_unlock(&s->fsm_lock);
			rc = apply_record(s, buf + o + 4, l);
			pthread_rwlock_wrlock(&s->fsm_lock);
		} else {
			rc = apply_record(s, buf + o + 4, l);
		}
		o += 4 + l;
	}
	pthread_rwlock_unlock(&s->fsm_lock);
	return rc;
}

/* A malformed entry (only a bug could write one) is skipped the same way on
 * every node, so the log never wedges on it, and its writers are told it
 * failed (RSTORE_REFUSED as the apply result). */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct rstore *s = fsm->data;
	*result = NULL;
	int rc = rstore__fsm_apply_entry(s, buf->base, buf->len);
	if (rc == RAFT_MALFORMED) {
		log_error("raft", "skipping a malformed log entry of %zu bytes", buf->len);
		*result = RSTORE_REFUSED;
		return 0;
	}
	if (rc)
		log_error("raft", "state machine failed to apply a log entry: %s",
			  raft_strerror(rc));
	return rc;
}

/* ---- snapshots --------------------------------------------------------------- */

struct sbuf {
	uint8_t *b;
	size_t n, cap;
	int oom;
};

static void sb_add(struct sbuf *sb, const void *p, size_t n)
{
	if (sb->oom)
		return;
	if (sb->n + n > sb->cap) {
		size_t nc = sb->cap ? sb->cap : 4096;
		while (nc < sb->n + n)
			nc *= 2;
		uint8_t *nb = raft_realloc(sb->b, nc);
		if (!nb) {
			sb->oom = 1;
			return;
		}
		sb->b = nb;
		sb->cap = nc;
	}
	memcpy(sb->b + sb->n, p, n);
	sb->n += n;
}

static void sb_u32(struct sbuf *sb, uint32_t v)
{
	uint8_t t[4];
	put_u32(t, v);
	sb_add(sb, t, 4);
}

static void sb_u64(struct sbuf *sb, uint64_t v)
{
	uint8_t t[8];
	put_u64(t, v);
	sb_add(sb, t, 8);
}

struct dump_ctx {
	physical_raft_write_fn fn;
	void *fctx;
	uint64_t n;
};

static int dump_one(void *ctx, const char *key, const uint8_t *val, size_t vl)
{
	struct dump_ctx *d = ctx;
	uint8_t hdr[4];
	size_t kl = strlen(key);
	put_u32(hdr, (uint32_t)kl);
	int rc = d->fn(d->fctx, hdr, 4);
	if (!rc)
		rc = d->fn(d->fctx, key, kl);
	put_u32(hdr, (uint32_t)vl);
	if (!rc)
		rc = d->fn(d->fctx, hdr, 4);
	if (!rc && vl)
		rc = d->fn(d->fctx, val, vl);
	if (!rc)
		d->n++;
	return rc;
}

/* Stream every record of store, in key order, to fn (the physical_raft_dump
 * format): one pass over the tree, no per-key lookups. */
int rstore__dump_store(struct physical *store, physical_raft_write_fn fn, void *ctx,
		       uint64_t *n, struct verr *err);
int rstore__dump_store(struct physical *store, physical_raft_write_fn fn, void *ctx,
		       uint64_t *n, struct verr *err)
{
	struct dump_ctx d = {fn, ctx, 0};
	int rc = physical_inmem__foreach(store, dump_one, &d);
	if (n)
		*n = d.n;
	return rc ? verr_set(err, rc < 0 ? rc : VERR_INTERNAL, "writing the state failed") : 0;
}

/* CRS1: names, holder, stage token, kv[, stage]; CRS2 (since revocations):
 * CRS1's holder is followed by the revocation list (u32 n, n x (u64 id,
 * 64 hex bytes)); CRS3 (since certificates are recorded at issue): the
 * revocation list is followed by the issued list, in the same form. All
 * three are read. */
#define SNAP_MAGIC "CRS3"
#define SNAP_MAGIC_V2 "CRS2"
#define SNAP_MAGIC_V1 "CRS1"

/* One log-compaction snapshot in three steps (libraft's fsm version 3):
 * fsm_snapshot on the loop thread copies the small tables and takes views
 * of the stores (a reference per entry, no value copied: writes go on
 * meanwhile); fsm_snapshot_async serialises the views on libuv's thread
 * pool; fsm_snapshot_finalize on the loop frees everything. The loop
 * therefore waits for one pointer walk over the tree, not for the copy of
 * every value (the write p99 tail of docs/storage-raft.md). */
struct snap_job {
	struct sbuf head; /* magic, names, holder, stage token */
	struct physical_inmem_view *kv, *stage;
	double t0, walk_ms;
};

static void snap_job_free(struct snap_job *j)
{
	if (!j)
		return;
	raft_free(j->head.b);
	physical_inmem__view_free(j->kv);
	physical_inmem__view_free(j->stage);
	free(j);
}

static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs);
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				 unsigned *n_bufs);

/* a certificate list: u32 n, n x (u64 id, 64 hex bytes) */
static void sb_fps(struct sbuf *sb, const struct rcertfp *l, size_t n)
{
	sb_u32(sb, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		sb_u64(sb, l[i].id);
		sb_add(sb, l[i].fp, RSTORE_FP_HEX - 1);
	}
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct rstore *s = fsm->data;
	if (s->snap_job)
		return RAFT_BUSY; /* libraft takes one at a time; retried later */
	struct snap_job *j = calloc(1, sizeof(*j));
	struct raft_buffer *v = raft_calloc(1, sizeof(*v));
	if (!j || !v) {
		free(j);
		raft_free(v);
		return RAFT_NOMEM;
	}
	j->t0 = rstore__now();
	struct sbuf *sb = &j->head;
	sb_add(sb, SNAP_MAGIC, 4);
	pthread_mutex_lock(&s->mu);
	sb_u32(sb, (uint32_t)s->nnames);
	for (size_t i = 0; i < s->nnames; i++) {
		sb_u64(sb, s->names[i].id);
		sb_u32(sb, (uint32_t)strlen(s->names[i].name));
		sb_add(sb, s->names[i].name, strlen(s->names[i].name));
	}
	sb_u64(sb, s->holder_id);
	const char *hv = s->holder_value ? s->holder_value : "";
	sb_u32(sb, (uint32_t)strlen(hv));
	sb_add(sb, hv, strlen(hv));
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&s->tls.mu);
	sb_fps(sb, s->tls.revoked, s->tls.nrevoked);
	sb_fps(sb, s->tls.issued, s->tls.nissued);
	pthread_mutex_unlock(&s->tls.mu);
	sb_u64(sb, s->stage ? s->stage_token : 0);
	j->kv = physical_inmem__view(s->kv);
	j->stage = s->stage ? physical_inmem__view(s->stage) : NULL;
	if (sb->oom || !j->kv || (s->stage && !j->stage)) {
		snap_job_free(j);
		raft_free(v);
		return RAFT_NOMEM;
	}
	j->walk_ms = (rstore__now() - j->t0) * 1000;
	s->snap_job = j;
	/* a paced snapshot is being taken: back to a (new) hard bound until
	 * the pacing timer finds the next one due (raft_loop.c) */
	rstore__snap_redraw(s);
	raft_set_snapshot_threshold(&s->raft, rstore__snap_idle_threshold(s));
	*bufs = v; /* filled by fsm_snapshot_async */
	*n_bufs = 1;
	if (!fsm->snapshot_async) { /* an io without async_work: all here */
		int rc = fsm_snapshot_async(fsm, bufs, n_bufs);
		if (rc) {
			fsm_snapshot_finalize(fsm, bufs, n_bufs);
			return rc;
		}
	}
	return 0;
}

struct view_sink {
	struct sbuf *sb;
	uint64_t n;
};

static int view_one(void *ctx, const char *key, const uint8_t *val, size_t vl)
{
	struct view_sink *k = ctx;
	size_t kl = strlen(key);
	sb_u32(k->sb, (uint32_t)kl);
	sb_add(k->sb, key, kl);
	sb_u32(k->sb, (uint32_t)vl);
	sb_add(k->sb, val, vl);
	k->n++;
	return k->sb->oom ? -1 : 0;
}

/* a section: u64 count, then the records */
static int sb_view(struct sbuf *sb, const struct physical_inmem_view *v)
{
	size_t at = sb->n;
	sb_u64(sb, 0);
	struct view_sink k = {sb, 0};
	int rc = physical_inmem__view_foreach(v, view_one, &k);
	if (!rc && !sb->oom)
		put_u64(sb->b + at, k.n);
	return rc || sb->oom ? -1 : 0;
}

/* The serialisation runs on a thread of its own at the lowest CPU priority
 * (nice 19), started and joined by the libuv pool thread: a snapshot of a
 * large state is seconds of CPU, and at normal priority it took them from
 * the request and raft threads, which is where the write p99 went
 * (docs/storage-raft.md). Its own thread, so the pool thread's priority,
 * which an unprivileged process could not raise again, is never changed. */
struct snap_ser {
	struct raft_fsm *fsm;
	struct raft_buffer **bufs;
	unsigned *n_bufs;
	int rc;
};

static int fsm_snapshot_serialise(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				  unsigned *n_bufs);

static void *snap_ser_main(void *arg)
{
	struct snap_ser *x = arg;
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	x->rc = fsm_snapshot_serialise(x->fsm, x->bufs, x->n_bufs);
	return NULL;
}

static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct snap_ser x = {fsm, bufs, n_bufs, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, snap_ser_main, &x))
		return fsm_snapshot_serialise(fsm, bufs, n_bufs);
	pthread_join(t, NULL);
	return x.rc;
}

static int fsm_snapshot_serialise(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				  unsigned *n_bufs)
{
	struct rstore *s = fsm->data;
	struct snap_job *j = s->snap_job;
	if (!j || !*bufs || *n_bufs != 1)
		return RAFT_INVALID;
	/* sized once (doubling a buffer of the whole state would copy it
	 * again and again) */
	size_t want = j->head.n + 8 + 16 + physical_inmem__view_bytes(j->kv) +
		      (j->stage ? 8 + physical_inmem__view_bytes(j->stage) : 0);
	struct sbuf sb = {0};
	if ((sb.b = raft_malloc(want)))
		sb.cap = want;
	sb_add(&sb, j->head.b, j->head.n);
	int rc = sb_view(&sb, j->kv);
	if (!rc && j->stage)
		rc = sb_view(&sb, j->stage);
	static const uint8_t zeros[8];
	if (sb.n % 8)
		sb_add(&sb, zeros, 8 - sb.n % 8); /* payloads are 8-byte padded */
	/* the references go now: the values overwritten meanwhile are freed */
	physical_inmem__view_free(j->kv);
	physical_inmem__view_free(j->stage);
	j->kv = j->stage = NULL;
	if (rc || sb.oom) {
		raft_free(sb.b);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = sb.b;
	(*bufs)[0].len = sb.n; /* the restore parser ignores what follows the sections */
	double ms = (rstore__now() - j->t0) * 1000;
	if (ms > 100)
		log_info("raft", "state-machine snapshot of %zu bytes: %.1f ms on the raft loop, "
			 "%.0f ms in all", sb.n, j->walk_ms, ms);
	return 0;
}

/* on the loop, after the snapshot was written (or failed) */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				 unsigned *n_bufs)
{
	struct rstore *s = fsm->data;
	if (*bufs) {
		for (unsigned i = 0; i < *n_bufs; i++)
			raft_free((*bufs)[i].base);
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n_bufs = 0;
	snap_job_free(s->snap_job);
	s->snap_job = NULL;
	return 0;
}

struct rd {
	const uint8_t *b;
	size_t n, o;
	int bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	if (r->bad || r->n - r->o < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->b + r->o;
	r->o += n;
	return p;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);
	return p ? get_u32(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = rd_take(r, 8);
	return p ? get_u64(p) : 0;
}

static struct physical *rd_store(struct rd *r)
{
	struct physical *st = store_new();
	if (!st)
		return NULL;
	uint64_t n = rd_u64(r);
	for (uint64_t i = 0; i < n && !r->bad; i++) {
		uint32_t kl = rd_u32(r);
		const uint8_t *k = rd_take(r, kl);
		uint32_t vl = rd_u32(r);
		const uint8_t *v = rd_take(r, vl);
		if (r->bad)
			break;
		char *key = strndup((const char *)k, kl);
		if (!key || physical_put(st, key, v, vl, NULL))
			r->bad = 1;
		free(key);
	}
	if (r->bad) {
		physical_close(st);
		return NULL;
	}
	return st;
}

/* a certificate list (sb_fps) when present, else an empty one; r->bad on
 * a malformed list (the result is still freed by the caller) */
static struct rcertfp *rd_fps(struct rd *r, bool present, size_t *n)
{
	uint32_t cnt = present ? rd_u32(r) : 0;
	if (r->bad || cnt > (r->n - r->o) / (8 + RSTORE_FP_HEX - 1)) {
		r->bad = 1;
		return NULL;
	}
	struct rcertfp *l = calloc(cnt ? cnt : 1, sizeof(*l));
	if (!l) {
		r->bad = 1;
		return NULL;
	}
	for (uint32_t i = 0; i < cnt && !r->bad; i++) {
		l[i].id = rd_u64(r);
		const uint8_t *p = rd_take(r, RSTORE_FP_HEX - 1);
		if (p)
			memcpy(l[i].fp, p, RSTORE_FP_HEX - 1);
	}
	*n = cnt;
	return l;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rstore *s = fsm->data;
	struct rd r = {buf->base, buf->len, 0, 0};
	const uint8_t *magic = rd_take(&r, 4);
	bool v1 = magic && !memcmp(magic, SNAP_MAGIC_V1, 4);
	bool v3 = magic && !memcmp(magic, SNAP_MAGIC, 4);
	if (!magic || (!v1 && !v3 && memcmp(magic, SNAP_MAGIC_V2, 4)))
		return RAFT_MALFORMED;
	uint32_t nn = rd_u32(&r);
	struct rname *names = calloc(nn ? nn : 1, sizeof(*names));
	if (!names)
		return RAFT_NOMEM;
	for (uint32_t i = 0; i < nn && !r.bad; i++) {
		names[i].id = rd_u64(&r);
		uint32_t l = rd_u32(&r);
		const uint8_t *p = rd_take(&r, l);
		if (p)
			names[i].name = strndup((const char *)p, l);
	}
	raft_id hid = rd_u64(&r);
	uint32_t hl = rd_u32(&r);
	const uint8_t *hp = rd_take(&r, hl);
	char *hv = hp ? strndup((const char *)hp, hl) : NULL;
	size_t nrv = 0, nis = 0;
	struct rcertfp *rv = rd_fps(&r, !v1, &nrv);
	struct rcertfp *is = rd_fps(&r, v3, &nis);
	uint64_t token = rd_u64(&r);
	struct physical *kv = r.bad ? NULL : rd_store(&r);
	struct physical *stage = kv && token ? rd_store(&r) : NULL;
	if (r.bad || !kv || (token && !stage)) {
		for (uint32_t i = 0; i < nn; i++)
			free(names[i].name);
		free(names);
		free(hv);
		free(rv);
		free(is);
		physical_close(kv);
		physical_close(stage);
		return RAFT_MALFORMED;
	}
	pthread_rwlock_wrlock(&s->fsm_lock);
	struct physical *old = s->kv;
	s->kv = kv;
	pthread_rwlock_unlock(&s->fsm_lock);
	physical_close(old);
	physical_close(s->stage);
	s->stage = stage;
	s->stage_token = token;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i].name);
	free(s->names);
	s->names = names;
	s->nnames = nn;
	free(s->holder_value);
	s->holder_value = hv;
	s->holder_id = hid;
	pthread_mutex_unlock(&s->mu);
	rstore__tls_set_lists(&s->tls, rv, nrv, is, nis);
	raft_free(buf->base);
	return 0;
}

void rstore__fsm_init(struct rstore *s)
{
	s->fsm.version = 3;
	s->fsm.data = s;
	s->fsm.apply = fsm_apply;
	s->fsm.snapshot = fsm_snapshot;
	s->fsm.restore = fsm_restore;
	s->fsm.snapshot_finalize = fsm_snapshot_finalize;
	s->fsm.snapshot_async = fsm_snapshot_async;
}
