/*
 * barrier.c - the encryption barrier and its keyring (see barrier.h).
 *
 * DESIGN
 *
 * The barrier is a physical shim: `struct barrier` embeds `struct physical`
 * first, and its ops encrypt on put and decrypt on get before handing the
 * bytes to the underlying backend. Everything above it (storage views, the
 * core's tables, every engine) sees plaintext; everything below sees
 *
 *   [term u32 BE][version 0x02][nonce 12][ciphertext][tag 16]
 *
 * AES-256-GCM. The additional authenticated data is the 5-byte header
 * followed by the storage key, so an entry copied to another key, or given
 * another term or version byte, fails authentication.
 *
 * Keyring image (plaintext, built and parsed only inside secmem buffers so
 * no key byte ever touches ordinary heap memory, e.g. a JSON library's):
 *
 *   "CFKR" | format 0x01 | root_len u8 (32) | root key
 *   | nterms u32 BE | nterms x { term u32 BE | install_time i64 BE | key 32 }
 *
 * Terms are stored strictly ascending; the last one is active. The image is
 * stored at core/keyring in the underlying backend, sealed with the root key
 * in the entry format with term 0 (no keyring term is ever 0).
 *
 * States and invariants:
 *   sealed   <=> kr.root == NULL && kr.terms == NULL && kr.n == 0
 *   unsealed <=> kr.root is a 32-byte secmem key, kr.n >= 1, each
 *                kr.terms[i].key a 32-byte secmem key.
 *   The stored keyring always contains every term in memory before the
 *   in-memory keyring changes (rotate/rekey persist first, then switch).
 *
 * Threads: `lock` (writer-preferring rwlock, so a seal is not starved by a
 * stream of requests) guards `kr` and `sealed`. The shim's get/put/delete/
 * list hold it shared for the whole call, including the storage I/O, so a
 * seal waits for in-flight requests and nothing is written after it returns.
 * Each encryption/decryption allocates its own EVP context; the cipher
 * object is fetched once (EVP_CIPHER_fetch), which keeps OpenSSL 3 from
 * taking its provider-store lock on every call. `encryptions` is atomic.
 */
#include "core/barrier.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/aead.h"
#include "util/secmem.h"

#define HDR_LEN 5 /* term + version */

#define KR_MAGIC "CFKR"
#define KR_FORMAT 0x01
#define KR_FIXED (4 + 1 + 1 + BARRIER_KEY_LEN + 4)
#define KR_TERM_LEN (4 + 8 + BARRIER_KEY_LEN)

struct term_key {
	uint32_t term;
	int64_t install_time;
	uint8_t *key; /* secmem, BARRIER_KEY_LEN */
};

struct keyring {
	uint8_t *root; /* secmem, BARRIER_KEY_LEN */
	struct term_key *terms; /* ascending by term; last is active */
	size_t n;
};

struct barrier {
	struct physical base; /* must be first */
	struct physical *under; /* borrowed */
	pthread_rwlock_t lock;
	bool sealed;           /* guarded by lock */
	_Atomic bool writable; /* false: puts/deletes fail VERR_STANDBY (fencing) */
	struct keyring kr;     /* guarded by lock */
	_Atomic uint64_t encryptions; /* with the active term, since unseal/rotate */
};

static const char sealed_msg[] = "Vault is sealed";
static const char standby_msg[] = "this node is not the active node: writes are fenced";

/* A write that was under way when the node was fenced is not acknowledged:
 * its outcome is unknown to the client, never reported as done. */
static int fenced_after(struct barrier *b, int rc, struct verr *err)
{
	if (rc == 0 && !atomic_load(&b->writable))
		return verr_set(err, VERR_STANDBY,
				"this node lost the active role during the write; its outcome is unknown");
	return rc;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	aead_put_u32(p, (uint32_t)(v >> 32));
	aead_put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)aead_get_u32(p) << 32 | aead_get_u32(p + 4);
}

int barrier_generate_key(uint8_t **out, struct verr *err)
{
	*out = NULL;
	uint8_t *k = secmem_alloc(BARRIER_KEY_LEN);
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (RAND_priv_bytes(k, BARRIER_KEY_LEN) != 1) {
		secmem_free(k, BARRIER_KEY_LEN);
		return verr_set(err, VERR_INTERNAL, "random number generator failed");
	}
	*out = k;
	return 0;
}

/* ---- keyring ---- */

/* Free the keys, the term array and the root; leaves *kr all-zero. */
static void keyring_clear(struct keyring *kr)
{
	for (size_t i = 0; i < kr->n; i++)
		secmem_free(kr->terms[i].key, BARRIER_KEY_LEN);
	free(kr->terms);
	secmem_free(kr->root, BARRIER_KEY_LEN);
	memset(kr, 0, sizeof(*kr));
}

static uint8_t *key_dup(const uint8_t *k)
{
	uint8_t *c = secmem_alloc(BARRIER_KEY_LEN);
	if (c)
		memcpy(c, k, BARRIER_KEY_LEN);
	return c;
}

/* Serialise into a fresh secmem buffer (secmem_free(*out, *len)). */
static int keyring_encode(const struct keyring *kr, uint8_t **out, size_t *len)
{
	size_t n = KR_FIXED + kr->n * KR_TERM_LEN;
	uint8_t *buf = secmem_alloc(n), *p = buf;
	if (!buf)
		return -1;
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): binary keyring encoding, not a string */
	memcpy(p, KR_MAGIC, 4);
	p[4] = KR_FORMAT;
	p[5] = BARRIER_KEY_LEN;
	memcpy(p + 6, kr->root, BARRIER_KEY_LEN);
	aead_put_u32(p + 6 + BARRIER_KEY_LEN, (uint32_t)kr->n);
	p += KR_FIXED;
	for (size_t i = 0; i < kr->n; i++, p += KR_TERM_LEN) {
		aead_put_u32(p, kr->terms[i].term);
		put_u64(p + 4, (uint64_t)kr->terms[i].install_time);
		memcpy(p + 12, kr->terms[i].key, BARRIER_KEY_LEN);
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Parse an image into *kr (all keys copied to secmem). */
static int keyring_decode(struct keyring *kr, const uint8_t *buf, size_t len, struct verr *err)
{
	struct keyring k = {0};
	int rc = 0;
	if (len < KR_FIXED || memcmp(buf, KR_MAGIC, 4) != 0)
		return verr_set(err, VERR_INTERNAL, "keyring is corrupt: bad header");
	if (buf[4] != KR_FORMAT)
		return verr_set(err, VERR_INTERNAL, "keyring format %u is not supported", buf[4]);
	if (buf[5] != BARRIER_KEY_LEN)
		return verr_set(err, VERR_INTERNAL, "keyring is corrupt: bad root key length");
	uint32_t n = aead_get_u32(buf + 6 + BARRIER_KEY_LEN);
	if (n == 0 || n > (len - KR_FIXED) / KR_TERM_LEN ||
	    len != KR_FIXED + (size_t)n * KR_TERM_LEN)
		return verr_set(err, VERR_INTERNAL, "keyring is corrupt: bad length");
	k.terms = calloc(n, sizeof(*k.terms));
	k.root = key_dup(buf + 6);
	if (!k.terms || !k.root) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const uint8_t *p = buf + KR_FIXED;
	for (uint32_t i = 0; i < n; i++, p += KR_TERM_LEN) {
		uint32_t term = aead_get_u32(p);
		if (term == 0 || (i > 0 && term <= k.terms[i - 1].term)) {
			rc = verr_set(err, VERR_INTERNAL, "keyring is corrupt: bad term order");
			goto out;
		}
		if (!(k.terms[i].key = key_dup(p + 12))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		k.terms[i].term = term;
		k.terms[i].install_time = (int64_t)get_u64(p + 4);
		k.n = i + 1;
	}
out:
	if (rc) {
		keyring_clear(&k);
		return rc;
	}
	*kr = k;
	return 0;
}

int barrier__keyring_check(const uint8_t *buf, size_t len, struct verr *err)
{
	struct keyring k = {0};
	int rc = keyring_decode(&k, buf, len, err);
	keyring_clear(&k);
	return rc;
}

/* Encrypt *kr with its own root key and store it. */
static int keyring_write(struct physical *under, const struct keyring *kr, struct verr *err)
{
	uint8_t *img = NULL, *ct = NULL;
	size_t img_len = 0, ct_len = 0;
	int rc;
	if (keyring_encode(kr, &img, &img_len) != 0)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = aead_blob_seal(&ct, &ct_len, kr->root, BARRIER_KEYRING_PATH, img, img_len, err);
	if (rc == 0)
		rc = physical_put(under, BARRIER_KEYRING_PATH, ct, ct_len, err);
	free(ct);
	secmem_free(img, img_len);
	return rc;
}

/* Load the stored keyring and decrypt it with root. */
static int keyring_read(struct physical *under, const uint8_t *root, struct keyring *out,
			struct verr *err)
{
	uint8_t *ct = NULL, *img = NULL;
	size_t ct_len = 0, img_len = 0;
	int rc = physical_get(under, BARRIER_KEYRING_PATH, &ct, &ct_len, err);
	if (rc)
		return rc;
	if (!ct)
		return verr_set(err, VERR_UNINIT, "Vault is not initialized");
	/* A failed tag is reported as a wrong key ("invalid key"), no detail. */
	rc = aead_blob_open(&img, &img_len, root, BARRIER_KEYRING_PATH, ct, ct_len, err);
	if (rc)
		goto out;
	rc = keyring_decode(out, img, img_len, err);
	if (rc == 0 && !secmem_eq(out->root, root, BARRIER_KEY_LEN)) {
		keyring_clear(out);
		rc = verr_set(err, VERR_INTERNAL, "keyring is corrupt: root key mismatch");
	}
out:
	free(ct);
	secmem_free(img, img_len);
	return rc;
}

static const struct term_key *keyring_find(const struct keyring *kr, uint32_t term)
{
	size_t lo = 0, hi = kr->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (kr->terms[mid].term == term)
			return &kr->terms[mid];
		if (kr->terms[mid].term < term)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the shim ---- */

static bool reserved_key(const char *key)
{
	return strcmp(key, BARRIER_KEYRING_PATH) == 0;
}

/* Decrypt one stored entry; lock held shared and unsealed. *newer is set
 * when the entry's term is past our newest (another node rotated). */
static int entry_decrypt(struct barrier *b, const char *key, const uint8_t *ct, size_t len,
			 uint8_t **out, size_t *out_len, bool *newer, struct verr *err)
{
	if (len < BARRIER_OVERHEAD)
		return verr_set(err, VERR_INTERNAL, "failed to decrypt entry at %s: entry too short",
				key);
	if (ct[4] != BARRIER_VERSION)
		return verr_set(err, VERR_INTERNAL,
				"failed to decrypt entry at %s: unsupported version %u", key, ct[4]);
	uint32_t term = aead_get_u32(ct);
	const struct term_key *tk = keyring_find(&b->kr, term);
	if (!tk) {
		*newer = term > b->kr.terms[b->kr.n - 1].term;
		return verr_set(err, VERR_INTERNAL, "failed to decrypt entry at %s: unknown term %u",
				key, term);
	}
	size_t ptlen = len - BARRIER_OVERHEAD;
	uint8_t *pt = malloc(ptlen ? ptlen : 1);
	if (!pt)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (aead_open_into(pt, tk->key, key, ct, len) != 0) {
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
		return verr_set(err, VERR_INTERNAL,
				"failed to decrypt entry at %s: message authentication failed", key);
	}
	*out = pt;
	*out_len = ptlen;
	return 0;
}

static int barrier_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		       struct verr *err)
{
	struct barrier *b = (struct barrier *)p;
	uint8_t *ct = NULL;
	size_t ct_len = 0;
	bool newer = false;
	int rc;
	*out = NULL;
	*len = 0;
	if (reserved_key(key))
		return verr_set(err, VERR_DENIED, "%s is reserved", key);
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
		goto out;
	}
	rc = physical_get(b->under, key, &ct, &ct_len, err);
	if (rc == 0 && ct)
		rc = entry_decrypt(b, key, ct, ct_len, out, len, &newer, err);
out:
	pthread_rwlock_unlock(&b->lock);
	if (newer) {
		/* Another node installed a term we have not seen: pick it up and
		 * try once more. */
		struct verr rerr = {0};
		if (barrier_reload(b, &rerr) == 0) {
			pthread_rwlock_rdlock(&b->lock);
			if (b->sealed)
				rc = verr_set(err, VERR_SEALED, sealed_msg);
			else
				rc = entry_decrypt(b, key, ct, ct_len, out, len, &newer, err);
			pthread_rwlock_unlock(&b->lock);
		}
	}
	free(ct);
	return rc;
}

static int barrier_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		       struct verr *err)
{
	struct barrier *b = (struct barrier *)p;
	uint8_t *ct = NULL;
	int rc;
	if (reserved_key(key))
		return verr_set(err, VERR_DENIED, "%s is reserved", key);
	if (len > p->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE, "value of %zu bytes exceeds max_entry_size %zu",
				len, p->max_entry_size);
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
		goto out;
	}
	if (!b->writable) {
		rc = verr_set(err, VERR_STANDBY, standby_msg);
		goto out;
	}
	ct = malloc(len + BARRIER_OVERHEAD);
	if (!ct) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const struct term_key *active = &b->kr.terms[b->kr.n - 1];
	if (aead_seal_into(ct, active->key, active->term, key, val, len) != 0) {
		rc = verr_set(err, VERR_INTERNAL, "encryption failed");
		goto out;
	}
	atomic_fetch_add(&b->encryptions, 1);
	rc = physical_put(b->under, key, ct, len + BARRIER_OVERHEAD, err);
	rc = fenced_after(b, rc, err);
out:
	pthread_rwlock_unlock(&b->lock);
	free(ct);
	return rc;
}

static int barrier_del(struct physical *p, const char *key, struct verr *err)
{
	struct barrier *b = (struct barrier *)p;
	int rc;
	if (reserved_key(key))
		return verr_set(err, VERR_DENIED, "%s is reserved", key);
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed)
		rc = verr_set(err, VERR_SEALED, sealed_msg);
	else if (!b->writable)
		rc = verr_set(err, VERR_STANDBY, standby_msg);
	else
		rc = fenced_after(b, physical_delete(b->under, key, err), err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static int barrier_list(struct physical *p, const char *prefix, char ***out, size_t *n,
			struct verr *err)
{
	struct barrier *b = (struct barrier *)p;
	int rc;
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed)
		rc = verr_set(err, VERR_SEALED, sealed_msg);
	else
		rc = physical_list(b->under, prefix, out, n, err);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

static void barrier_close(struct physical *p)
{
	barrier_free((struct barrier *)p);
}

/* Every value encrypted under its own key path, then one transaction
 * below. */
static int barrier_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		       struct verr *err)
{
	struct barrier *b = (struct barrier *)p;
	struct physical_txn_op *enc = calloc(n ? n : 1, sizeof(*enc));
	if (!enc)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = 0;
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed)
		rc = verr_set(err, VERR_SEALED, sealed_msg);
	else if (!b->writable)
		rc = verr_set(err, VERR_STANDBY, standby_msg);
	for (size_t i = 0; i < n && !rc; i++) {
		enc[i] = ops[i];
		if (!ops[i].key || reserved_key(ops[i].key)) {
			rc = verr_set(err, VERR_DENIED, "%s is reserved", ops[i].key ? ops[i].key : "");
			break;
		}
		if (ops[i].kind != PHYSICAL_TXN_PUT)
			continue;
		if (ops[i].len > p->max_entry_size) {
			rc = verr_set(err, VERR_TOO_LARGE, "value of %zu bytes exceeds max_entry_size %zu",
				      ops[i].len, p->max_entry_size);
			break;
		}
		uint8_t *ct = malloc(ops[i].len + BARRIER_OVERHEAD);
		if (!ct) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			break;
		}
		const struct term_key *active = &b->kr.terms[b->kr.n - 1];
		if (aead_seal_into(ct, active->key, active->term, ops[i].key, ops[i].val,
				   ops[i].len) != 0) {
			free(ct);
			rc = verr_set(err, VERR_INTERNAL, "encryption failed");
			break;
		}
		atomic_fetch_add(&b->encryptions, 1);
		enc[i].val = ct;
		enc[i].len = ops[i].len + BARRIER_OVERHEAD;
	}
	if (!rc)
		rc = fenced_after(b, physical_txn(b->under, enc, n, err), err);
	pthread_rwlock_unlock(&b->lock);
	for (size_t i = 0; i < n; i++)
		if (enc[i].kind == PHYSICAL_TXN_PUT && enc[i].val != ops[i].val)
			free((void *)enc[i].val);
	free(enc);
	return rc;
}

static const struct physical_ops barrier_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "barrier",
	.get = barrier_get,
	.put = barrier_put,
	.del = barrier_del,
	.list = barrier_list,
	.close = barrier_close,
	.txn = barrier_txn,
};

/* ---- lifecycle ---- */

int barrier_new(struct barrier **out, struct physical *under, struct verr *err)
{
	*out = NULL;
	struct barrier *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	b->base.ops = &barrier_ops;
	b->writable = true;
	b->base.max_entry_size = under->max_entry_size > BARRIER_OVERHEAD
					 ? under->max_entry_size - BARRIER_OVERHEAD
					 : 0;
	b->base.durable = under->durable;
	b->under = under;
	b->sealed = true;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int prc = pthread_rwlock_init(&b->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (prc != 0) {
		free(b);
		return verr_set(err, VERR_INTERNAL, "cannot create barrier lock");
	}
	*out = b;
	return 0;
}

void barrier_free(struct barrier *b)
{
	if (!b)
		return;
	barrier_seal(b);
	pthread_rwlock_destroy(&b->lock);
	free(b);
}

struct physical *barrier_physical(struct barrier *b)
{
	return &b->base;
}

void barrier_set_writable(struct barrier *b, bool writable)
{
	atomic_store(&b->writable, writable);
}

int barrier_initialized(struct barrier *b, bool *out, struct verr *err)
{
	uint8_t *v = NULL;
	size_t len = 0;
	*out = false;
	int rc = physical_get(b->under, BARRIER_KEYRING_PATH, &v, &len, err);
	if (rc)
		return rc;
	*out = v != NULL;
	free(v);
	return 0;
}

static int check_key_len(size_t len, struct verr *err)
{
	if (len != BARRIER_KEY_LEN)
		return verr_set(err, VERR_INVALID, "root key must be %d bytes", BARRIER_KEY_LEN);
	return 0;
}

int barrier_initialize(struct barrier *b, const uint8_t *root_key, size_t len,
		       struct verr *err)
{
	struct keyring kr = {0};
	bool inited = false;
	int rc = check_key_len(len, err);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&b->lock);
	rc = barrier_initialized(b, &inited, err);
	if (rc)
		goto out;
	if (inited) {
		rc = verr_set(err, VERR_INVALID, "Vault is already initialized");
		goto out;
	}
	kr.terms = calloc(1, sizeof(*kr.terms));
	kr.root = key_dup(root_key);
	if (!kr.terms || !kr.root) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = barrier_generate_key(&kr.terms[0].key, err);
	if (rc)
		goto out;
	kr.terms[0].term = 1;
	kr.terms[0].install_time = (int64_t)time(NULL);
	kr.n = 1;
	rc = keyring_write(b->under, &kr, err);
out:
	keyring_clear(&kr);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int barrier_unseal(struct barrier *b, const uint8_t *root_key, size_t len, struct verr *err)
{
	int rc = check_key_len(len, err);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&b->lock);
	if (!b->sealed) {
		if (!secmem_eq(b->kr.root, root_key, BARRIER_KEY_LEN))
			rc = verr_set(err, VERR_INVALID, "invalid key");
		goto out;
	}
	struct keyring kr = {0};
	rc = keyring_read(b->under, root_key, &kr, err);
	if (rc)
		goto out;
	b->kr = kr; /* transferred */
	atomic_store(&b->encryptions, 0);
	b->sealed = false;
out:
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

void barrier_seal(struct barrier *b)
{
	pthread_rwlock_wrlock(&b->lock);
	keyring_clear(&b->kr);
	b->sealed = true;
	pthread_rwlock_unlock(&b->lock);
}

bool barrier_sealed(struct barrier *b)
{
	pthread_rwlock_rdlock(&b->lock);
	bool s = b->sealed;
	pthread_rwlock_unlock(&b->lock);
	return s;
}

int barrier_rotate(struct barrier *b, uint32_t *out_term, struct verr *err)
{
	struct term_key *terms = NULL;
	uint8_t *key = NULL;
	int rc = 0;
	pthread_rwlock_wrlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
		goto out;
	}
	uint32_t newest = b->kr.terms[b->kr.n - 1].term;
	if (newest == UINT32_MAX) {
		rc = verr_set(err, VERR_INTERNAL, "keyring has no term numbers left");
		goto out;
	}
	rc = barrier_generate_key(&key, err);
	if (rc)
		goto out;
	/* The new array borrows the existing keys; only `key` is new. */
	terms = calloc(b->kr.n + 1, sizeof(*terms));
	if (!terms) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(terms, b->kr.terms, b->kr.n * sizeof(*terms));
	terms[b->kr.n] = (struct term_key){
		.term = newest + 1, .install_time = (int64_t)time(NULL), .key = key};
	struct keyring next = {.root = b->kr.root, .terms = terms, .n = b->kr.n + 1};
	rc = keyring_write(b->under, &next, err);
	if (rc)
		goto out;
	free(b->kr.terms);
	b->kr.terms = terms;
	b->kr.n++;
	terms = NULL; /* transferred */
	key = NULL;   /* transferred */
	atomic_store(&b->encryptions, 0);
	if (out_term)
		*out_term = newest + 1;
out:
	free(terms);
	secmem_free(key, BARRIER_KEY_LEN);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int barrier_key_status(struct barrier *b, uint32_t *term, int64_t *install_time,
		       uint64_t *encryptions, struct verr *err)
{
	int rc = 0;
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
	} else {
		const struct term_key *a = &b->kr.terms[b->kr.n - 1];
		if (term)
			*term = a->term;
		if (install_time)
			*install_time = a->install_time;
		if (encryptions)
			*encryptions = atomic_load(&b->encryptions);
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int barrier_rekey_root(struct barrier *b, const uint8_t *new_root, size_t len,
		       struct verr *err)
{
	uint8_t *root = NULL;
	int rc = check_key_len(len, err);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
		goto out;
	}
	if (!(root = key_dup(new_root))) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	struct keyring next = {.root = root, .terms = b->kr.terms, .n = b->kr.n};
	rc = keyring_write(b->under, &next, err);
	if (rc)
		goto out;
	secmem_free(b->kr.root, BARRIER_KEY_LEN);
	b->kr.root = root;
	root = NULL; /* transferred */
out:
	secmem_free(root, BARRIER_KEY_LEN);
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int barrier_reload(struct barrier *b, struct verr *err)
{
	int rc;
	struct keyring kr = {0};
	pthread_rwlock_wrlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
		goto out;
	}
	rc = keyring_read(b->under, b->kr.root, &kr, err);
	if (rc)
		goto out;
	/* Keep our counter if the active term did not change. */
	if (kr.terms[kr.n - 1].term != b->kr.terms[b->kr.n - 1].term)
		atomic_store(&b->encryptions, 0);
	keyring_clear(&b->kr);
	b->kr = kr; /* transferred */
out:
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

int barrier_root_key(struct barrier *b, uint8_t **out, size_t *len, struct verr *err)
{
	int rc = 0;
	*out = NULL;
	*len = 0;
	pthread_rwlock_rdlock(&b->lock);
	if (b->sealed) {
		rc = verr_set(err, VERR_SEALED, sealed_msg);
	} else if (!(*out = key_dup(b->kr.root))) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	} else {
		*len = BARRIER_KEY_LEN;
	}
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

bool barrier__keys_wiped(struct barrier *b)
{
	pthread_rwlock_rdlock(&b->lock);
	bool wiped = b->kr.root == NULL && b->kr.terms == NULL && b->kr.n == 0;
	pthread_rwlock_unlock(&b->lock);
	return wiped;
}
