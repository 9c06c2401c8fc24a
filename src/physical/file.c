/*
 * file.c - the `file` storage backend: Coffer's embedded, durable default.
 *
 * Sits below the barrier (core/barrier.c) and stores opaque bytes under
 * '/'-separated keys in one directory (see physical.h for the contract and
 * docs/storage-file.md for the operator's view).
 *
 * DESIGN
 *
 * Files in the storage directory:
 *   LOCK                 flock(LOCK_EX) held for the life of the backend, so
 *                        two servers cannot open the same directory.
 *   coffer.db            the log: a 16-byte file header, then records.
 *   coffer.db.new        a fresh log being created (header only); renamed.
 *   coffer.db.compact    a compacted log being written; renamed over the log.
 *   Leftover .new/.compact files are garbage from a crash and are unlinked at
 *   open. All files are created 0600, the directory 0700.
 *
 * File header (32 bytes): "CFFRLOG\0", u32 version (1), u32 zero, u64 sealed
 * batch, u32 zero, u32 crc32c of the first 28 bytes. Records with a batch
 * number <= sealed were fsync'ed before this file appeared (compaction), so
 * damage among them is never mistaken for a torn tail.
 * Record (all integers little-endian):
 *   0  u32 hcrc   crc32c of bytes 4..23 of this header and of the key
 *   4  u32 vcrc   crc32c of the value
 *   8  u64 batch  number of the group commit that wrote the record
 *   16 u32 vlen   value length (0 for a delete)
 *   20 u16 klen   key length, 1..PHYSICAL_MAX_KEY
 *   22 u8  op     1 put, 2 delete (tombstone)
 *   23 u8  zero
 *   24 key[klen] value[vlen]
 * Two checksums on purpose: hcrc protects the framing and the key, so a
 * damaged value is still attributed to its key and the log can be walked past
 * it; vcrc is checked on every read.
 *
 * Index: an AVL tree of key -> (record offset, value length), the key stored
 * inline in the node (32 bytes + key + NUL per key; values stay on disk and
 * are read with pread). Ordered, so list seeks to the prefix and jumps over
 * whole sub-folders: O(children * log n), not a scan.
 *
 * Invariants:
 *   I1 Every record in [FILE_HDR, end) was written by one pwritev of a batch
 *      that was then fdatasync'ed, or is the torn tail of the last batch.
 *   I2 The index maps a key to the offset of its newest acknowledged put
 *      record; a key is in the index iff its last acknowledged record is a
 *      put. The index only changes after the batch's fdatasync returned, so
 *      readers never see an unacknowledged write.
 *   I3 Batch numbers never decrease along the log (compaction writes all live
 *      records with one new batch number above every earlier one).
 *   I4 coffer.db always has a complete header: it only ever appears by
 *      rename of an fsync'ed file.
 *
 * Threads and locks:
 *   ilock (rwlock, writer-preferring) guards the index, `fd`, end/live/dead.
 *     get and list hold it shared, including across the pread, so compaction
 *     cannot close the fd under a reader. Only the commit leader takes it
 *     exclusively, briefly, to apply an acknowledged batch or swap in a
 *     compacted file. It is never held across an fsync.
 *   wmu (mutex) + wcond guard the pending queue and `committing`.
 *   Group commit: a writer encodes its record without locks, queues it and,
 *   if no commit is in flight, becomes the leader: it takes the whole queue,
 *   writes it with pwritev at `end`, calls fdatasync once, applies the batch
 *   to the index and wakes every writer in it. Writers that arrive meanwhile
 *   queue up and form the next batch. Only the leader (committing == 1)
 *   touches end/batch/live/dead for writing and the log's tail, so those need
 *   no lock for the leader to read; it takes ilock to publish changes.
 *   Compaction runs as the leader, after acknowledging its batch.
 *
 * Crash argument (kill -9, or power loss modelled as truncation):
 *   - A write is acknowledged only after fdatasync of the batch, so every
 *     acknowledged record is wholly on disk (I1).
 *   - At open the log is replayed: a record whose header checksum, key or
 *     length does not fit is "bad". If nothing valid follows it, or all that
 *     follows belongs to the newest batch (a batch written without fdatasync
 *     may reach the disk out of order), it is the torn tail of an
 *     unacknowledged batch: the file is truncated there and fsync'ed.
 *     Otherwise acknowledged records follow the damage: that is bit rot, and
 *     we refuse to start rather than drop or reorder history.
 *   - Value-checksum failures never truncate: the key stays indexed and every
 *     get of it fails with VERR_INTERNAL "... is corrupt" (fail per key; the
 *     rest of the store keeps working; never served silently).
 *   - Compaction writes coffer.db.compact, fsyncs it, renames it over
 *     coffer.db and fsyncs the directory. Killed before the rename: the old
 *     log is intact and the leftover is unlinked at open. After: the new log
 *     is complete (I4). The old fd stays valid for readers until the swap.
 *   - An fdatasync error leaves the on-disk state unknown (Linux may drop the
 *     dirty pages), so the backend refuses further writes until restart.
 */
#include "physical/file_int.h"
#include "physical/physical.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"

#define FILE_HDR PHYSICAL_FILE_HDR
#define REC_HDR PHYSICAL_FILE_RECORD_HDR
#define FILE_MAGIC "CFFRLOG"
#define FILE_VERSION 1
#define OP_PUT 1
#define OP_DEL 2
#define COMPACT_MIN_DEFAULT (4u * 1024 * 1024)
#define MAX_VALUE_LIMIT (UINT32_MAX - REC_HDR - PHYSICAL_MAX_KEY)
#define MOD "storage.file"

/* ---- CRC-32C (Castagnoli) ---------------------------------------------- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_update_hw(uint32_t c, const uint8_t *p,
								 size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#endif

static uint32_t crc_update(uint32_t c, const void *data, size_t n)
{
	const uint8_t *p = data;
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return crc_update_hw(c, p, n);
#endif
	while (n >= 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				   (uint32_t)p[3] << 24);
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
		    crc_table[0][p[7]];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
	return c;
}

static uint32_t crc32c(const void *data, size_t n)
{
	return ~crc_update(~0u, data, n);
}

/* ---- little-endian codec --------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Header checksum: bytes 4..23 of the record header, then the key. */
static uint32_t rec_hcrc(const uint8_t *hdr, const void *key, size_t klen)
{
	return ~crc_update(crc_update(~0u, hdr + 4, REC_HDR - 4), key, klen);
}

/* Fill a record header (key must follow it in memory for the crc). */
static void rec_encode(uint8_t *hdr, uint8_t op, const char *key, size_t klen, uint32_t vcrc,
		       uint32_t vlen, uint64_t batch)
{
	put32(hdr + 4, vcrc);
	put64(hdr + 8, batch);
	put32(hdr + 16, vlen);
	put16(hdr + 20, (uint16_t)klen);
	hdr[22] = op;
	hdr[23] = 0;
	put32(hdr, rec_hcrc(hdr, key, klen));
}

/* A parsed record header. */
struct rec {
	uint32_t vcrc, vlen;
	uint64_t batch;
	uint16_t klen;
	uint8_t op;
};

/* Check the record at p (avail bytes readable) for framing: plausible fields,
 * header+key+value within avail, header checksum. 0 if good. */
static int rec_check(const uint8_t *p, uint64_t avail, struct rec *r)
{
	if (avail < REC_HDR)
		return -1;
	r->vcrc = get32(p + 4);
	r->batch = get64(p + 8);
	r->vlen = get32(p + 16);
	r->klen = get16(p + 20);
	r->op = p[22];
	if ((r->op != OP_PUT && r->op != OP_DEL) || p[23] != 0 || r->klen == 0 ||
	    r->klen > PHYSICAL_MAX_KEY || (r->op == OP_DEL && r->vlen != 0))
		return -1;
	if ((uint64_t)REC_HDR + r->klen + r->vlen > avail)
		return -1;
	if (memchr(p + REC_HDR, '\0', r->klen))
		return -1;
	if (rec_hcrc(p, p + REC_HDR, r->klen) != get32(p))
		return -1;
	return 0;
}

static uint64_t rec_size(uint32_t klen, uint32_t vlen)
{
	return (uint64_t)REC_HDR + klen + vlen;
}

/* ---- the index: an AVL tree with inline keys -------------------------------- */

struct inode {
	struct inode *l, *r;
	uint64_t off;  /* offset of the put record */
	uint32_t vlen; /* value length */
	uint16_t klen;
	uint8_t h; /* AVL height */
	char key[]; /* klen bytes + NUL */
};

static int key_cmp(const char *k, size_t klen, const struct inode *n)
{
	size_t m = klen < n->klen ? klen : n->klen;
	int c = memcmp(k, n->key, m);
	if (c)
		return c;
	return (klen > n->klen) - (klen < n->klen);
}

static int ih(const struct inode *n)
{
	return n ? n->h : 0;
}

static void ifix(struct inode *n)
{
	int a = ih(n->l), b = ih(n->r);
	n->h = (uint8_t)(1 + (a > b ? a : b));
}

static struct inode *rot_right(struct inode *y)
{
	struct inode *x = y->l;
	y->l = x->r;
	x->r = y;
	ifix(y);
	ifix(x);
	return x;
}

static struct inode *rot_left(struct inode *x)
{
	struct inode *y = x->r;
	x->r = y->l;
	y->l = x;
	ifix(x);
	ifix(y);
	return y;
}

static struct inode *ibalance(struct inode *n)
{
	ifix(n);
	int b = ih(n->l) - ih(n->r);
	if (b > 1) {
		if (ih(n->l->l) < ih(n->l->r))
			n->l = rot_left(n->l);
		return rot_right(n);
	}
	if (b < -1) {
		if (ih(n->r->r) < ih(n->r->l))
			n->r = rot_right(n->r);
		return rot_left(n);
	}
	return n;
}

static struct inode *iinsert(struct inode *t, struct inode *n)
{
	if (!t)
		return n;
	if (key_cmp(n->key, n->klen, t) < 0)
		t->l = iinsert(t->l, n);
	else
		t->r = iinsert(t->r, n);
	return ibalance(t);
}

static struct inode *iremove_min(struct inode *t, struct inode **min)
{
	if (!t->l) {
		*min = t;
		return t->r;
	}
	t->l = iremove_min(t->l, min);
	return ibalance(t);
}

static struct inode *iremove(struct inode *t, const char *k, size_t klen, struct inode **gone)
{
	if (!t)
		return NULL;
	int c = key_cmp(k, klen, t);
	if (c < 0) {
		t->l = iremove(t->l, k, klen, gone);
	} else if (c > 0) {
		t->r = iremove(t->r, k, klen, gone);
	} else {
		*gone = t;
		if (!t->l)
			return t->r;
		if (!t->r)
			return t->l;
		struct inode *m = NULL;
		struct inode *r = iremove_min(t->r, &m);
		m->l = t->l;
		m->r = r;
		return ibalance(m);
	}
	return ibalance(t);
}

static struct inode *ifind(struct inode *t, const char *k, size_t klen)
{
	while (t) {
		int c = key_cmp(k, klen, t);
		if (!c)
			return t;
		t = c < 0 ? t->l : t->r;
	}
	return NULL;
}

/* Smallest node with key >= k (strict: > k). */
static struct inode *iseek(struct inode *t, const char *k, size_t klen, int strict)
{
	struct inode *best = NULL;
	while (t) {
		int c = key_cmp(k, klen, t);
		if (c < 0 || (c == 0 && !strict)) {
			best = t;
			t = t->l;
		} else {
			t = t->r;
		}
	}
	return best;
}

static void ifree_all(struct inode *t)
{
	while (t) {
		ifree_all(t->l);
		struct inode *r = t->r;
		free(t);
		t = r;
	}
}

/* ---- the backend ------------------------------------------------------------ */

/* A queued write, on its writer's stack; owned by the leader while committed. */
struct wreq {
	struct wreq *next;
	uint8_t *hk; /* record header + key */
	size_t klen;
	const uint8_t *val;
	uint32_t vlen;
	uint8_t op;
	int done, rc;
	struct verr *err;
};

struct filestore {
	struct physical base; /* must be first */
	char *dir, *log_path, *compact_path, *new_path;
	int lockfd;

	/* guarded by ilock; written only by the commit leader (or at open) */
	pthread_rwlock_t ilock;
	int fd;
	struct inode *root;
	uint64_t nkeys;
	uint64_t end;  /* end of the last acknowledged batch == file size */
	uint64_t live; /* bytes of records the index points at */
	uint64_t dead; /* everything else after the file header */

	/* guarded by wmu */
	pthread_mutex_t wmu;
	pthread_cond_t wcond;
	struct wreq *qhead, *qtail;
	int committing;

	/* leader-only (committing == 1), or open/close */
	uint64_t batch; /* last batch number on disk */
	int broken;	/* an fdatasync failed: refuse writes */
	struct iovec *iov;
	size_t iovcap;
	uint64_t compact_min;
	uint64_t compact_retry_at; /* after a failed compaction, wait for growth */

	_Atomic uint64_t st_writes, st_fsyncs, st_batches, st_compactions;
	uint64_t st_corrupt, st_torn;
};

static const struct physical_ops file_ops;

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int rc = fsync(dfd);
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pread(fd, buf, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO; /* short file: the index points past the end */
			return -1;
		}
		buf += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Write every iovec at off, resuming after short writes. iov is modified. */
static int pwritev_all(int fd, struct iovec *iov, size_t cnt, uint64_t off)
{
	while (cnt) {
		int n = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)w;
		while (cnt && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt && w) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Apply one acknowledged (or replayed) record to the index and the byte
 * accounting. Caller holds ilock exclusively (or is single-threaded at open).
 * Returns VERR_INTERNAL only on out-of-memory. */
static int index_apply(struct filestore *s, uint8_t op, const char *key, size_t klen,
		       uint64_t off, uint32_t vlen)
{
	uint64_t size = rec_size((uint32_t)klen, vlen);
	struct inode *n = ifind(s->root, key, klen);
	if (n) {
		uint64_t old = rec_size(n->klen, n->vlen);
		s->live -= old;
		s->dead += old;
	}
	if (op == OP_DEL) {
		s->dead += size;
		if (n) {
			struct inode *gone = NULL;
			s->root = iremove(s->root, key, klen, &gone);
			free(gone);
			s->nkeys--;
		}
		return 0;
	}
	s->live += size;
	if (n) {
		n->off = off;
		n->vlen = vlen;
		return 0;
	}
	n = malloc(sizeof(*n) + klen + 1);
	if (!n)
		return VERR_INTERNAL;
	n->l = n->r = NULL;
	n->off = off;
	n->vlen = vlen;
	n->klen = (uint16_t)klen;
	n->h = 1;
	memcpy(n->key, key, klen);
	n->key[klen] = '\0';
	s->root = iinsert(s->root, n);
	s->nkeys++;
	return 0;
}

/* ---- bulk load at open -------------------------------------------------------
 *
 * Replaying a log record by record costs two tree descents per record (find,
 * then insert and rebalance), each a memcmp per level on keys that share a
 * long prefix ("logical/<uuid>/..."): with 100,000 secrets that was most of
 * the time from exec to listen. Instead replay collects the records (pointers
 * into the mapped log), sorts them by (key, log offset), applies each key's
 * records in log order with index_apply's accounting, and builds a perfectly
 * balanced tree (which satisfies the AVL invariant) from the survivors in one
 * pass. The result is the index record-by-record replay would build, up to
 * the tree's shape. */

struct rent {
	const char *key; /* in the mapped log */
	uint64_t off;
	uint32_t vlen;
	uint16_t klen;
	uint8_t op;
};

/* key_cmp's order, then log order (offsets are unique) */
static int rent_cmp(const struct rent *a, const struct rent *b)
{
	size_t m = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, m);
	if (c)
		return c;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->off < b->off ? -1 : 1;
}

/* Bottom-up merge sort (no indirect calls; tmp holds n entries). Returns the
 * array that holds the sorted result (v or tmp). */
static struct rent *rent_sort(struct rent *v, struct rent *tmp, size_t n)
{
	/* runs of 8 by insertion sort, then merges */
	const size_t run = 8;
	for (size_t lo = 0; lo < n; lo += run) {
		size_t hi = lo + run < n ? lo + run : n;
		for (size_t i = lo + 1; i < hi; i++) {
			struct rent x = v[i];
			size_t j = i;
			while (j > lo && rent_cmp(&x, &v[j - 1]) < 0) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
	}
	struct rent *src = v, *dst = tmp;
	for (size_t w = run; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n;
			size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			if (mid >= hi || rent_cmp(&src[mid - 1], &src[mid]) < 0) {
				/* already in order (common: a compacted log is sorted) */
				memcpy(dst + lo, src + lo, (hi - lo) * sizeof(*src));
				continue;
			}
			while (i < mid && j < hi)
				dst[k++] = rent_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		struct rent *t = src;
		src = dst;
		dst = t;
	}
	return src;
}

static struct inode *ibuild(struct inode **v, size_t n)
{
	if (!n)
		return NULL;
	size_t mid = n / 2;
	struct inode *t = v[mid];
	t->l = ibuild(v, mid);
	t->r = ibuild(v + mid + 1, n - mid - 1);
	ifix(t);
	return t;
}

/* Build the index of an empty store from the replayed records (in log
 * order). The accounting matches index_apply record by record. */
static int index_bulk_load(struct filestore *s, struct rent *ents, size_t n)
{
	int rc = VERR_INTERNAL;
	struct rent *tmp = malloc((n ? n : 1) * sizeof(*tmp));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	struct inode **nodes = malloc((n ? n : 1) * sizeof(*nodes));
	size_t nn = 0;
	if (!tmp || !nodes)
		goto out;
	assert(!s->root);
	struct rent *v = rent_sort(ents, tmp, n);
	for (size_t i = 0; i < n;) {
		/* one key's records, in log order */
		size_t j = i;
		const struct rent *cur = NULL; /* the put in effect */
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): rec_check refuses empty keys, so the key buffer exists */
		for (; j < n && v[j].klen == v[i].klen && !memcmp(v[j].key, v[i].key, v[i].klen); j++) {
			uint64_t size = rec_size(v[j].klen, v[j].vlen);
			if (cur) {
				uint64_t old = rec_size(cur->klen, cur->vlen);
				s->live -= old;
				s->dead += old;
			}
			if (v[j].op == OP_DEL) {
				s->dead += size;
				cur = NULL;
			} else {
				s->live += size;
				cur = &v[j];
			}
		}
		i = j;
		if (!cur)
			continue;
		struct inode *node = malloc(sizeof(*node) + cur->klen + 1);
		if (!node)
			goto out;
		node->l = node->r = NULL;
		node->off = cur->off;
		node->vlen = cur->vlen;
		node->klen = cur->klen;
		node->h = 1;
		memcpy(node->key, cur->key, cur->klen);
		node->key[cur->klen] = '\0';
		nodes[nn++] = node;
	}
	s->root = ibuild(nodes, nn);
	s->nkeys = nn;
	nn = 0; /* transferred */
	rc = 0;
out:
	for (size_t i = 0; i < nn; i++)
		free(nodes[i]);
	free(nodes);
	free(tmp);
	return rc;
}

/* ---- compaction ------------------------------------------------------------- */

struct cbuf {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	uint64_t off; /* file offset of buf[0] */
	int failed;
};

static void cbuf_flush(struct cbuf *b)
{
	if (b->failed || !b->len)
		return;
	if (pwrite_all(b->fd, b->buf, b->len, b->off) < 0)
		b->failed = errno ? errno : EIO;
	b->off += b->len;
	b->len = 0;
}

static uint64_t cbuf_pos(const struct cbuf *b)
{
	return b->off + b->len;
}

static void cbuf_add(struct cbuf *b, const uint8_t *p, size_t n)
{
	while (n && !b->failed) {
		if (b->len == b->cap)
			cbuf_flush(b);
		size_t c = b->cap - b->len < n ? b->cap - b->len : n;
		memcpy(b->buf + b->len, p, c);
		b->len += c;
		p += c;
		n -= c;
	}
}

struct cwalk {
	struct filestore *s;
	struct cbuf out;
	uint64_t *offs;
	size_t i;
	uint64_t batch;
	uint8_t *rbuf;
	size_t rcap;
	int rc;
	const char *bad_key;
};

/* Copy one live record into the compacted file (in key order). */
static void cwalk_copy(struct cwalk *w, struct inode *n)
{
	if (w->rc || w->out.failed)
		return;
	size_t size = (size_t)rec_size(n->klen, n->vlen);
	if (size > w->rcap) {
		uint8_t *nb = realloc(w->rbuf, size);
		if (!nb) {
			w->rc = ENOMEM;
			return;
		}
		w->rbuf = nb;
		w->rcap = size;
	}
	struct rec r;
	if (pread_all(w->s->fd, w->rbuf, size, n->off) < 0) {
		w->rc = errno ? errno : EIO;
		return;
	}
	if (rec_check(w->rbuf, size, &r) || r.op != OP_PUT || r.klen != n->klen ||
	    /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): rbuf is grown above: rec_size() is never 0 */
	    r.vlen != n->vlen || memcmp(w->rbuf + REC_HDR, n->key, n->klen)) {
		w->rc = EBADMSG;
		w->bad_key = n->key;
		return;
	}
	/* New batch number, same value checksum: a damaged value stays
	 * detectable after compaction instead of being blessed. */
	put64(w->rbuf + 8, w->batch);
	put32(w->rbuf, rec_hcrc(w->rbuf, w->rbuf + REC_HDR, n->klen));
	w->offs[w->i++] = cbuf_pos(&w->out);
	cbuf_add(&w->out, w->rbuf, size);
}

static void cwalk_tree(struct cwalk *w, struct inode *t)
{
	while (t && !w->rc) {
		cwalk_tree(w, t->l);
		cwalk_copy(w, t);
		t = t->r;
	}
}

static void cwalk_assign(struct cwalk *w, struct inode *t)
{
	while (t) {
		cwalk_assign(w, t->l);
		/* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): cwalk_copy wrote one offset per node, or compaction stopped before this walk */
		t->off = w->offs[w->i++];
		t = t->r;
	}
}

/* File header: magic, version, zero, sealed batch, zero, crc32c of the rest. */
static void file_header(uint8_t *h, uint64_t sealed)
{
	memset(h, 0, FILE_HDR);
	memcpy(h, FILE_MAGIC, 8);
	put32(h + 8, FILE_VERSION);
	put64(h + 16, sealed);
	put32(h + 28, crc32c(h, 28));
}

/* Rewrite the live records into a new log and swap it in. Caller is the
 * commit leader (committing == 1). */
static int compact_locked(struct filestore *s, struct verr *err)
{
	struct cwalk w = {.s = s, .batch = s->batch + 1};
	int rc = 0, fd = -1;
	w.out.fd = -1;
	w.offs = malloc((s->nkeys ? s->nkeys : 1) * sizeof(*w.offs));
	w.out.cap = 1024 * 1024;
	w.out.buf = malloc(w.out.cap);
	if (!w.offs || !w.out.buf) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	fd = open(s->compact_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = verr_set(err, VERR_INTERNAL, "storage \"file\": cannot create %s: %s",
			      s->compact_path, strerror(errno));
		goto out;
	}
	w.out.fd = fd;
	uint8_t hdr[FILE_HDR];
	file_header(hdr, w.batch); /* every record below is fsync'ed before rename */
	cbuf_add(&w.out, hdr, sizeof(hdr));
	/* Only the leader mutates the index, and we are it: walk without ilock. */
	cwalk_tree(&w, s->root);
	cbuf_flush(&w.out);
	if (w.rc == EBADMSG) {
		rc = verr_set(err, VERR_INTERNAL,
			      "storage \"file\": compaction stopped: storage entry for %s is corrupt",
			      w.bad_key);
		goto out;
	}
	if (w.rc || w.out.failed) {
		rc = verr_set(err, VERR_INTERNAL, "storage \"file\": compaction of %s failed: %s",
			      s->log_path, strerror(w.rc ? w.rc : w.out.failed));
		goto out;
	}
	if (fsync(fd) < 0) {
		rc = verr_set(err, VERR_INTERNAL, "storage \"file\": fsync %s: %s", s->compact_path,
			      strerror(errno));
		goto out;
	}
	if (rename(s->compact_path, s->log_path) < 0) {
		rc = verr_set(err, VERR_INTERNAL, "storage \"file\": rename %s: %s",
			      s->compact_path, strerror(errno));
		goto out;
	}
	if (fsync_dir(s->dir) < 0)
		log_warn(MOD, "fsync of directory %s after compaction failed: %s", s->dir,
			 strerror(errno));
	uint64_t newend = cbuf_pos(&w.out);
	pthread_rwlock_wrlock(&s->ilock);
	w.i = 0;
	cwalk_assign(&w, s->root);
	int oldfd = s->fd;
	s->fd = fd;
	fd = -1; /* transferred */
	log_info(MOD, "compacted %s: %" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64 " keys",
		 s->log_path, s->end, newend, s->nkeys);
	s->end = newend;
	s->live = newend - FILE_HDR;
	s->dead = 0;
	pthread_rwlock_unlock(&s->ilock);
	close(oldfd);
	s->batch = w.batch;
	atomic_fetch_add(&s->st_compactions, 1);
out:
	if (fd >= 0) {
		close(fd);
		unlink(s->compact_path);
	}
	free(w.offs);
	free(w.out.buf);
	free(w.rbuf);
	return rc;
}

static int compact_due(const struct filestore *s)
{
	return !s->broken && s->end > s->compact_min && s->end >= s->compact_retry_at &&
	       s->dead > s->live;
}

/* ---- group commit ----------------------------------------------------------- */

/* Write and fdatasync one batch, then publish it to the index. Caller is the
 * leader; wmu is not held. Sets rc/err on every request (not `done`). */
static void commit_batch(struct filestore *s, struct wreq *batch)
{
	size_t cnt = 0;
	for (struct wreq *r = batch; r; r = r->next)
		cnt++;
	int rc = 0;
	struct verr e = {0};
	if (s->broken) {
		rc = verr_set(&e, VERR_INTERNAL,
			      "storage \"file\": %s had a write error earlier; restart required",
			      s->log_path);
		goto out;
	}
	if (cnt * 2 > s->iovcap) {
		size_t nc = cnt * 2 < 64 ? 64 : cnt * 2;
		struct iovec *ni = realloc(s->iov, nc * sizeof(*ni));
		if (!ni) {
			rc = verr_set(&e, VERR_INTERNAL, "out of memory");
			goto out;
		}
		s->iov = ni;
		s->iovcap = nc;
	}
	uint64_t bno = s->batch + 1, total = 0;
	size_t ni = 0;
	for (struct wreq *r = batch; r; r = r->next) {
		put64(r->hk + 8, bno);
		put32(r->hk, rec_hcrc(r->hk, r->hk + REC_HDR, r->klen));
		s->iov[ni++] = (struct iovec){r->hk, REC_HDR + r->klen};
		if (r->vlen)
			s->iov[ni++] = (struct iovec){(void *)r->val, r->vlen};
		total += rec_size((uint32_t)r->klen, r->vlen);
	}
	uint64_t start = s->end;
	if (pwritev_all(s->fd, s->iov, ni, start) < 0) {
		rc = verr_set(&e, VERR_INTERNAL, "storage \"file\": write to %s failed: %s",
			      s->log_path, strerror(errno));
		/* Nothing was acknowledged; cut the partial batch off so the
		 * next one starts on a clean boundary. */
		if (ftruncate(s->fd, (off_t)start) < 0)
			s->broken = 1;
		goto out;
	}
	int sr = fdatasync(s->fd);
	atomic_fetch_add(&s->st_fsyncs, 1);
	if (sr < 0) {
		s->broken = 1;
		rc = verr_set(&e, VERR_INTERNAL, "storage \"file\": fdatasync %s failed: %s",
			      s->log_path, strerror(errno));
		log_error(MOD, "%s", e.msg);
		goto out;
	}
	s->batch = bno;
	atomic_fetch_add(&s->st_batches, 1);
	atomic_fetch_add(&s->st_writes, cnt);
	pthread_rwlock_wrlock(&s->ilock);
	uint64_t off = start;
	for (struct wreq *r = batch; r; r = r->next) {
		if (index_apply(s, r->op, (const char *)r->hk + REC_HDR, r->klen, off, r->vlen)) {
			/* Durable but not indexed: the index is now wrong until
			 * restart, which replays the log. */
			s->broken = 1;
			r->rc = verr_set(r->err, VERR_INTERNAL, "out of memory");
		}
		off += rec_size((uint32_t)r->klen, r->vlen);
	}
	s->end = start + total;
	pthread_rwlock_unlock(&s->ilock);
out:
	for (struct wreq *r = batch; r; r = r->next) {
		if (rc) {
			r->rc = rc;
			if (r->err)
				*r->err = e;
		}
	}
}

/* Queue a record and wait until it is durable (or failed). */
static int submit(struct filestore *s, struct wreq *req)
{
	pthread_mutex_lock(&s->wmu);
	if (s->qtail)
		s->qtail->next = req;
	else
		s->qhead = req;
	s->qtail = req;
	while (!req->done) {
		if (s->committing) {
			pthread_cond_wait(&s->wcond, &s->wmu);
			continue;
		}
		s->committing = 1;
		struct wreq *batch = s->qhead;
		s->qhead = s->qtail = NULL;
		pthread_mutex_unlock(&s->wmu);

		commit_batch(s, batch);

		pthread_mutex_lock(&s->wmu);
		for (struct wreq *r = batch, *next; r; r = next) {
			next = r->next; /* r may vanish once done is seen */
			r->done = 1;
		}
		pthread_cond_broadcast(&s->wcond);
		if (compact_due(s)) {
			/* Our own write is acknowledged; keep the leader role
			 * so no batch interleaves with the rewrite. */
			pthread_mutex_unlock(&s->wmu);
			struct verr ce = {0};
			if (compact_locked(s, &ce)) {
				log_warn(MOD, "%s", ce.msg);
				s->compact_retry_at = s->end + (s->end / 2 > s->compact_min
									 ? s->end / 2
									 : s->compact_min);
			}
			pthread_mutex_lock(&s->wmu);
		}
		s->committing = 0;
		pthread_cond_broadcast(&s->wcond);
	}
	int rc = req->rc;
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

static int check_key(const char *key, struct verr *err)
{
	size_t klen = strlen(key);
	if (klen == 0)
		return verr_set(err, VERR_INVALID, "storage key is empty");
	if (klen > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "storage key of %zu bytes exceeds %d bytes",
				klen, PHYSICAL_MAX_KEY);
	return 0;
}

static int file_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		    struct verr *err)
{
	struct filestore *s = (struct filestore *)p;
	int rc = check_key(key, err);
	if (rc)
		return rc;
	if (len > p->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE,
				"value for %s is %zu bytes, over the storage max_entry_size of %zu bytes",
				key, len, p->max_entry_size);
	size_t klen = strlen(key);
	uint8_t hk[REC_HDR + PHYSICAL_MAX_KEY];
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a length-counted record key, not a C string */
	memcpy(hk + REC_HDR, key, klen);
	rec_encode(hk, OP_PUT, key, klen, crc32c(val, len), (uint32_t)len, 0);
	struct wreq req = {.hk = hk, .klen = klen, .val = val, .vlen = (uint32_t)len,
			   .op = OP_PUT, .err = err};
	return submit(s, &req);
}

static int file_del(struct physical *p, const char *key, struct verr *err)
{
	struct filestore *s = (struct filestore *)p;
	int rc = check_key(key, err);
	if (rc)
		return rc;
	size_t klen = strlen(key);
	/* Deleting a missing key is a no-op: no tombstone, no fsync. A
	 * concurrent put of the same key is then ordered after this delete. */
	pthread_rwlock_rdlock(&s->ilock);
	int present = ifind(s->root, key, klen) != NULL;
	pthread_rwlock_unlock(&s->ilock);
	if (!present)
		return 0;
	uint8_t hk[REC_HDR + PHYSICAL_MAX_KEY];
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a length-counted record key, not a C string */
	memcpy(hk + REC_HDR, key, klen);
	rec_encode(hk, OP_DEL, key, klen, crc32c("", 0), 0, 0);
	struct wreq req = {.hk = hk, .klen = klen, .op = OP_DEL, .err = err};
	return submit(s, &req);
}

static int file_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		    struct verr *err)
{
	struct filestore *s = (struct filestore *)p;
	*out = NULL;
	*len = 0;
	size_t klen = strlen(key);
	if (klen == 0 || klen > PHYSICAL_MAX_KEY)
		return 0;
	pthread_rwlock_rdlock(&s->ilock);
	struct inode *n = ifind(s->root, key, klen);
	if (!n) {
		pthread_rwlock_unlock(&s->ilock);
		return 0;
	}
	uint32_t vlen = n->vlen;
	size_t size = (size_t)rec_size(n->klen, vlen);
	uint8_t *buf = malloc(size);
	int rc = 0;
	if (!buf) {
		pthread_rwlock_unlock(&s->ilock);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	if (pread_all(s->fd, buf, size, n->off) < 0) {
		int e = errno;
		pthread_rwlock_unlock(&s->ilock);
		free(buf);
		return verr_set(err, VERR_INTERNAL, "storage \"file\": read of %s failed: %s",
				s->log_path, strerror(e));
	}
	pthread_rwlock_unlock(&s->ilock);
	struct rec r;
	if (rec_check(buf, size, &r) || r.op != OP_PUT || r.klen != klen || r.vlen != vlen ||
	    memcmp(buf + REC_HDR, key, klen) || crc32c(buf + REC_HDR + klen, vlen) != r.vcrc) {
		free(buf);
		log_error(MOD, "checksum mismatch reading %s from %s", key, s->log_path);
		return verr_set(err, VERR_INTERNAL, "storage entry for %s is corrupt", key);
	}
	memmove(buf, buf + REC_HDR + klen, vlen);
	if (vlen) {
		uint8_t *shrunk = realloc(buf, vlen);
		if (shrunk)
			buf = shrunk;
	}
	*out = buf;
	*len = vlen;
	return rc;
}

struct lst {
	char **v;
	size_t n, cap;
};

static int lst_add(struct lst *l, const char *s, size_t n)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	if (!(l->v[l->n] = strndup(s, n)))
		return -1;
	l->n++;
	return 0;
}

static int file_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		     struct verr *err)
{
	struct filestore *s = (struct filestore *)p;
	struct lst l = {0};
	size_t plen = strlen(prefix);
	char seek[PHYSICAL_MAX_KEY + 2];
	int rc = 0;
	*out = NULL;
	*n = 0;
	if (plen > PHYSICAL_MAX_KEY) {
		*out = calloc(1, sizeof(char *));
		return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	pthread_rwlock_rdlock(&s->ilock);
	struct inode *it = iseek(s->root, prefix, plen, 0);
	while (it && it->klen >= plen && !memcmp(it->key, prefix, plen)) {
		const char *rest = it->key + plen;
		size_t rlen = it->klen - plen;
		const char *slash = rlen ? memchr(rest, '/', rlen) : NULL;
		if (!rlen) {
			it = iseek(s->root, it->key, it->klen, 1);
		} else if (slash) {
			/* A folder: emit "name/" once and jump past every key
			 * under it: "prefix name/" ... < "prefix name0". */
			size_t seg = (size_t)(slash - rest) + 1;
			if (lst_add(&l, rest, seg)) {
				rc = -1;
				break;
			}
			memcpy(seek, it->key, plen + seg);
			seek[plen + seg - 1] = '/' + 1;
			it = iseek(s->root, seek, plen + seg, 0);
		} else {
			if (lst_add(&l, rest, rlen)) {
				rc = -1;
				break;
			}
			it = iseek(s->root, it->key, it->klen, 1);
		}
	}
	pthread_rwlock_unlock(&s->ilock);
	if (rc) {
		physical_list_free(l.v, l.n);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	if (!l.v && !(l.v = calloc(1, sizeof(char *))))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = l.v;
	*n = l.n;
	return 0;
}

static void file_close(struct physical *p)
{
	struct filestore *s = (struct filestore *)p;
	if (!s)
		return;
	ifree_all(s->root);
	if (s->fd >= 0)
		close(s->fd);
	if (s->lockfd >= 0)
		close(s->lockfd); /* releases the flock */
	pthread_rwlock_destroy(&s->ilock);
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wcond);
	free(s->iov);
	free(s->dir);
	free(s->log_path);
	free(s->compact_path);
	free(s->new_path);
	free(s);
}

static const struct physical_ops file_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "file",
	.get = file_get,
	.put = file_put,
	.del = file_del,
	.list = file_list,
	.close = file_close,
};

/* ---- open: directory, lock, replay ------------------------------------------ */

/* mkdir -p with mode 0700 for every component we create. */
static int make_dirs(const char *path, struct verr *err)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return verr_set(err, VERR_INVALID, "storage \"file\": %s is not a directory",
					path);
		return 0;
	}
	char *tmp = strdup(path);
	if (!tmp)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = 0;
	for (char *q = tmp + 1;; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		char c = *q;
		*q = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			rc = verr_set(err, VERR_INVALID,
				      "storage \"file\": cannot create directory %s: %s", tmp,
				      strerror(errno));
			break;
		}
		*q = c;
		if (!c)
			break;
	}
	if (!rc && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)))
		rc = verr_set(err, VERR_INVALID, "storage \"file\": %s is not a directory", path);
	/* Make the new directory's own entry durable too. */
	char *slash = rc ? NULL : strrchr(tmp, '/');
	if (slash && slash != tmp) {
		*slash = '\0';
		fsync_dir(tmp);
	} else if (slash) {
		fsync_dir("/");
	} else if (!rc) {
		fsync_dir(".");
	}
	free(tmp);
	return rc;
}

/* Create an empty log atomically: header into .new, fsync, rename. */
static int create_log(struct filestore *s, struct verr *err)
{
	uint8_t hdr[FILE_HDR];
	file_header(hdr, 0);
	int fd = open(s->new_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return verr_set(err, VERR_INVALID, "storage \"file\": cannot create %s: %s",
				s->new_path, strerror(errno));
	if (pwrite_all(fd, hdr, sizeof(hdr), 0) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(s->new_path);
		return verr_set(err, VERR_INTERNAL, "storage \"file\": cannot write %s: %s",
				s->new_path, strerror(e));
	}
	close(fd);
	if (rename(s->new_path, s->log_path) < 0 || fsync_dir(s->dir) < 0)
		return verr_set(err, VERR_INTERNAL, "storage \"file\": cannot create %s: %s",
				s->log_path, strerror(errno));
	return 0;
}

/* Is the damage at `bad` the torn tail of the newest batch? Walks the rest of
 * the file resynchronising byte by byte; see the crash argument above. */
static int tail_is_torn(const uint8_t *map, uint64_t size, uint64_t bad, uint64_t max_before,
			uint64_t sealed)
{
	int seen = 0;
	uint64_t b0 = 0;
	struct rec r;
	for (uint64_t y = bad + 1; y + REC_HDR <= size;) {
		if (rec_check(map + y, size - y, &r)) {
			y++;
			continue;
		}
		if (!seen) {
			b0 = r.batch;
			seen = 1;
		}
		if (r.batch != b0 || r.batch < max_before || r.batch <= sealed)
			return 0;
		y += rec_size(r.klen, r.vlen);
	}
	return 1;
}

static int replay(struct filestore *s, struct verr *err)
{
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		return verr_set(err, VERR_INTERNAL, "storage \"file\": stat %s: %s", s->log_path,
				strerror(errno));
	uint64_t size = (uint64_t)st.st_size;
	uint8_t want[FILE_HDR], got[FILE_HDR];
	int ok = size >= FILE_HDR && pread_all(s->fd, got, FILE_HDR, 0) == 0;
	if (ok) {
		file_header(want, get64(got + 16));
		ok = !memcmp(want, got, FILE_HDR);
	}
	if (!ok)
		return verr_set(err, VERR_INTERNAL,
				"storage \"file\": %s is not a Coffer storage log (bad header)",
				s->log_path);
	s->end = FILE_HDR;
	s->batch = get64(got + 16);
	if (size == FILE_HDR)
		return 0;
	uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, s->fd, 0);
	if (map == MAP_FAILED)
		return verr_set(err, VERR_INTERNAL, "storage \"file\": mmap %s: %s", s->log_path,
				strerror(errno));
	madvise(map, size, MADV_SEQUENTIAL);
	int rc = 0;
	uint64_t off = FILE_HDR, sealed = get64(got + 16), maxb = sealed;
	const char *first_corrupt = NULL;
	char corrupt_key[64];
	uint64_t *corrupt = NULL; /* offsets of puts with a bad value checksum */
	size_t ncorrupt = 0, corrupt_cap = 0;
	struct rent *ents = NULL; /* the records, for index_bulk_load */
	size_t nents = 0, ents_cap = 0;
	/* their keys, copied side by side: the sort then reads a few MB instead
	 * of keys scattered over the whole log between values */
	char *keys = NULL;
	size_t keys_len = 0, keys_cap = 0;
	while (off < size) {
		struct rec r;
		if (rec_check(map + off, size - off, &r)) {
			if (!tail_is_torn(map, size, off, maxb, sealed)) {
				rc = verr_set(err, VERR_INTERNAL,
					      "storage \"file\": %s is corrupt at offset %" PRIu64
					      " (damaged record followed by intact ones); refusing to"
					      " start, see docs/storage-file.md",
					      s->log_path, off);
				goto out;
			}
			s->st_torn = size - off;
			log_warn(MOD, "%s: truncating torn tail of %" PRIu64 " bytes at offset %" PRIu64,
				 s->log_path, size - off, off);
			if (ftruncate(s->fd, (off_t)off) < 0 || fsync(s->fd) < 0) {
				rc = verr_set(err, VERR_INTERNAL, "storage \"file\": truncate %s: %s",
					      s->log_path, strerror(errno));
				goto out;
			}
			break;
		}
		const char *key = (const char *)map + off + REC_HDR;
		if (r.batch < maxb)
			log_warn(MOD, "%s: batch numbers go backwards at offset %" PRIu64,
				 s->log_path, off);
		else
			maxb = r.batch;
		if (r.op == OP_PUT && crc32c(key + r.klen, r.vlen) != r.vcrc) {
			/* Keep it indexed: get reports it (fail per key). Only
			 * damage that is still the current value matters. */
			if (ncorrupt == corrupt_cap) {
				size_t nc = corrupt_cap ? corrupt_cap * 2 : 16;
				uint64_t *nb = realloc(corrupt, nc * sizeof(*nb));
				if (!nb) {
					rc = verr_set(err, VERR_INTERNAL, "out of memory");
					goto out;
				}
				corrupt = nb;
				corrupt_cap = nc;
			}
			corrupt[ncorrupt++] = off;
		}
		if (nents == ents_cap) {
			size_t nc = ents_cap ? ents_cap * 2 : 4096;
			struct rent *nb = realloc(ents, nc * sizeof(*nb));
			if (!nb) {
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
				goto out;
			}
			ents = nb;
			ents_cap = nc;
		}
		if (keys_len + r.klen > keys_cap) {
			size_t nc = keys_cap ? keys_cap * 2 : 256 * 1024;
			while (nc < keys_len + r.klen)
				nc *= 2;
			char *nk = realloc(keys, nc);
			if (!nk) {
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
				goto out;
			}
			keys = nk;
			keys_cap = nc;
		}
		if (r.klen) /* keys is still NULL before the first non-empty key */
			memcpy(keys + keys_len, key, r.klen);
		/* the offset now, a pointer once the copy stops moving */
		ents[nents++] = (struct rent){(const char *)(uintptr_t)keys_len, off, r.vlen, r.klen,
					      r.op};
		keys_len += r.klen;
		off += rec_size(r.klen, r.vlen);
		s->end = off;
	}
	for (size_t i = 0; i < nents; i++)
		ents[i].key = keys + (uintptr_t)ents[i].key;
	if (index_bulk_load(s, ents, nents)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	s->batch = maxb;
	for (size_t i = 0; i < ncorrupt; i++) {
		struct rec r;
		const char *key = (const char *)map + corrupt[i] + REC_HDR;
		rec_check(map + corrupt[i], size - corrupt[i], &r);
		struct inode *n = ifind(s->root, key, r.klen);
		if (!n || n->off != corrupt[i])
			continue;
		if (!s->st_corrupt++) {
			snprintf(corrupt_key, sizeof(corrupt_key), "%.*s",
				 r.klen > 60 ? 60 : (int)r.klen, key);
			first_corrupt = corrupt_key;
		}
	}
	if (s->st_corrupt)
		log_error(MOD, "%s: %" PRIu64 " record(s) with a bad value checksum (first: %s);"
			  " reads of those keys will fail",
			  s->log_path, s->st_corrupt, first_corrupt);
out:
	free(ents);
	free(keys);
	free(corrupt);
	munmap(map, size);
	return rc;
}

static int parse_size(const json_t *v, size_t *out, struct verr *err)
{
	if (!v)
		return 0;
	unsigned long long n = 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		n = (unsigned long long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *str = json_string_value(v);
		char *end = NULL;
		errno = 0;
		n = strtoull(str, &end, 10);
		if (errno || end == str || *end || *str == '-')
			n = 0;
	}
	if (n == 0 || n > MAX_VALUE_LIMIT)
		return verr_set(err, VERR_INVALID,
				"storage \"file\": \"max_entry_size\" must be a positive integer up"
				" to %u",
				(unsigned)MAX_VALUE_LIMIT);
	*out = (size_t)n;
	return 0;
}

int physical_file_new(struct physical **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	json_t *jp = conf ? json_object_get(conf, "path") : NULL;
	const char *path = json_is_string(jp) ? json_string_value(jp) : NULL;
	if (!path || !*path)
		return verr_set(err, VERR_INVALID, "storage \"file\": missing required \"path\"");
	size_t max_entry = PHYSICAL_DEFAULT_MAX_ENTRY;
	int rc = parse_size(conf ? json_object_get(conf, "max_entry_size") : NULL, &max_entry, err);
	if (rc)
		return rc;

	struct filestore *s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	s->base.ops = &file_ops;
	s->base.max_entry_size = max_entry;
	s->base.durable = 1;
	s->fd = s->lockfd = -1;
	s->compact_min = COMPACT_MIN_DEFAULT;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* Writers hold it for microseconds; do not let a stream of readers
	 * starve the commit leader. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->ilock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcond, NULL);

	char *lock_path = NULL;
	s->dir = strdup(path);
	s->log_path = path_join(path, PHYSICAL_FILE_LOG);
	s->compact_path = path_join(path, PHYSICAL_FILE_LOG ".compact");
	s->new_path = path_join(path, PHYSICAL_FILE_LOG ".new");
	lock_path = path_join(path, PHYSICAL_FILE_LOCK);
	if (!s->dir || !s->log_path || !s->compact_path || !s->new_path || !lock_path) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = make_dirs(path, err)))
		goto out;
	s->lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		rc = verr_set(err, VERR_INVALID, "storage \"file\": cannot write in %s: %s", path,
			      strerror(errno));
		goto out;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			rc = verr_set(err, VERR_UNAVAILABLE,
				      "storage \"file\": %s is in use by another Coffer server"
				      " (lock %s is held)",
				      path, lock_path);
		else
			rc = verr_set(err, VERR_INTERNAL, "storage \"file\": flock %s: %s",
				      lock_path, strerror(errno));
		goto out;
	}
	/* Garbage from a crash mid-compaction or mid-creation. */
	unlink(s->compact_path);
	unlink(s->new_path);
	s->fd = open(s->log_path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0 && errno == ENOENT) {
		if ((rc = create_log(s, err)))
			goto out;
		s->fd = open(s->log_path, O_RDWR | O_CLOEXEC);
	}
	if (s->fd < 0) {
		rc = verr_set(err, VERR_INVALID, "storage \"file\": cannot open %s: %s",
			      s->log_path, strerror(errno));
		goto out;
	}
	if ((rc = replay(s, err)))
		goto out;
	s->compact_retry_at = 0;
	log_debug(MOD, "opened %s: %" PRIu64 " keys, %" PRIu64 " bytes", s->log_path, s->nkeys,
		  s->end);
	*out = &s->base;
	s = NULL; /* transferred */
out:
	free(lock_path);
	file_close(s ? &s->base : NULL);
	return rc;
}

/* ---- test and diagnostic hooks (file_int.h) ---------------------------------- */

static struct filestore *as_file(struct physical *p)
{
	if (!p || p->ops != &file_ops)
		abort(); /* programming error: not a file backend */
	return (struct filestore *)p;
}

void physical_file__stats(struct physical *p, struct physical_file_stats *out)
{
	struct filestore *s = as_file(p);
	memset(out, 0, sizeof(*out));
	out->writes = atomic_load(&s->st_writes);
	out->fsyncs = atomic_load(&s->st_fsyncs);
	out->batches = atomic_load(&s->st_batches);
	out->compactions = atomic_load(&s->st_compactions);
	pthread_rwlock_rdlock(&s->ilock);
	out->keys = s->nkeys;
	out->file_bytes = s->end;
	out->live_bytes = s->live;
	out->dead_bytes = s->dead;
	pthread_rwlock_unlock(&s->ilock);
	out->corrupt_records = s->st_corrupt;
	out->torn_bytes = s->st_torn;
}

int physical_file__compact(struct physical *p, struct verr *err)
{
	struct filestore *s = as_file(p);
	pthread_mutex_lock(&s->wmu);
	while (s->committing)
		pthread_cond_wait(&s->wcond, &s->wmu);
	s->committing = 1;
	pthread_mutex_unlock(&s->wmu);
	int rc = s->broken ? verr_set(err, VERR_INTERNAL, "storage \"file\": write error earlier")
			   : compact_locked(s, err);
	pthread_mutex_lock(&s->wmu);
	s->committing = 0;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

void physical_file__set_compact_min(struct physical *p, uint64_t bytes)
{
	struct filestore *s = as_file(p);
	pthread_mutex_lock(&s->wmu);
	while (s->committing)
		pthread_cond_wait(&s->wcond, &s->wmu);
	s->compact_min = bytes;
	pthread_mutex_unlock(&s->wmu);
}
