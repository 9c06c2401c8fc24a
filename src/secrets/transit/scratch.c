/*
 * scratch.c - per-thread working memory of the transit engine's hot paths
 * (transit_int.h): a locked scratch buffer for decoded plaintexts and
 * decryption results, a pool of random bytes for AEAD nonces, and the
 * per-request cipher state of a batch.
 *
 * Why: every encrypt and decrypt used to map a fresh secmem buffer for its
 * plaintext (mmap, madvise, mlock, munlock, munmap: five system calls per
 * request or batch item, and a TLB shoot-down per munmap once the process
 * runs threads on several CPUs), and called RAND_bytes once per nonce
 * (about 6.7k instructions: the DRBG lock and its parameter handling).
 *
 * DESIGN
 * State is per thread (pthread key, destructor at thread exit), so nothing
 * here takes a lock. The scratch buffer is secmem (locked unless
 * disable_mlock, not dumpable, wiped on free); it grows to the largest
 * request up to TRANSIT_SCRATCH_KEEP bytes and is kept; bigger requests get
 * a one-off secmem buffer. A borrower wipes what it was lent when it puts
 * the buffer back, so between requests the kept buffer holds only zeros.
 * One borrower at a time: a second, nested borrower gets a one-off buffer.
 * Nonces: RAND_bytes fills a pool of TRANSIT_NONCE_POOL nonces; each 12
 * bytes are copied out once and wiped from the pool. Nonces are public,
 * only their uniqueness matters, and every byte still comes from the
 * CSPRNG exactly once.
 */
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"

#define TRANSIT_NONCE_POOL 32

struct tls_state {
	uint8_t *buf; /* secmem, cap bytes; NULL until first use */
	size_t cap;
	bool busy;
	size_t nonce_off; /* next unused byte of pool; sizeof(pool): empty */
	uint8_t pool[TRANSIT_NONCE_POOL * TRANSIT_NONCE_LEN];
};

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static int g_key_ok;

static void tls_free(void *p)
{
	struct tls_state *t = p;
	if (!t)
		return;
	secmem_free(t->buf, t->cap);
	secmem_wipe(t, sizeof(*t));
	free(t);
}

static void key_init(void)
{
	g_key_ok = pthread_key_create(&g_key, tls_free) == 0;
}

static struct tls_state *tls(void)
{
	pthread_once(&g_key_once, key_init);
	if (!g_key_ok)
		return NULL;
	struct tls_state *t = pthread_getspecific(g_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->nonce_off = sizeof(t->pool);
	if (pthread_setspecific(g_key, t)) {
		free(t);
		return NULL;
	}
	return t;
}

uint8_t *transit__scratch_get(struct tscratch *s, size_t n)
{
	struct tls_state *t = n <= TRANSIT_SCRATCH_KEEP ? tls() : NULL;
	s->n = n;
	s->oneoff = true;
	if (t && !t->busy) {
		if (t->cap < n) {
			/* grow in steps so a few sizes do not remap every time */
			size_t cap = t->cap ? t->cap : 2048 - 64;
			while (cap < n)
				cap = cap * 2 + 64;
			if (cap > TRANSIT_SCRATCH_KEEP)
				cap = TRANSIT_SCRATCH_KEEP;
			uint8_t *nb = secmem_alloc(cap);
			if (nb) {
				secmem_free(t->buf, t->cap); /* holds only zeros: see put */
				t->buf = nb;
				t->cap = cap;
			}
		}
		if (t->cap >= n) {
			t->busy = true;
			s->oneoff = false;
			s->p = t->buf;
			return s->p;
		}
	}
	s->p = secmem_alloc(n ? n : 1);
	return s->p;
}

void transit__scratch_put(struct tscratch *s)
{
	if (!s->p)
		return;
	if (s->oneoff) {
		secmem_free(s->p, s->n ? s->n : 1);
	} else {
		secmem_wipe(s->p, s->n);
		struct tls_state *t = tls();
		if (t)
			t->busy = false;
	}
	s->p = NULL;
	s->n = 0;
}

int transit__b64_scratch(struct tscratch *s, uint8_t **out, size_t *len, const char *in,
			 struct verr *err)
{
	size_t inlen = strlen(in);
	*out = NULL;
	*len = 0;
	uint8_t *buf = transit__scratch_get(s, b64_decoded_max(inlen) + 1);
	if (!buf)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = b64_decode_to(buf, len, in, inlen, err);
	if (rc) {
		transit__scratch_put(s);
		return rc;
	}
	*out = buf;
	return 0;
}

int transit__nonce(uint8_t out[TRANSIT_NONCE_LEN])
{
	struct tls_state *t = tls();
	if (!t)
		return RAND_bytes(out, TRANSIT_NONCE_LEN) == 1 ? 0 : -1;
	if (t->nonce_off + TRANSIT_NONCE_LEN > sizeof(t->pool)) {
		if (RAND_bytes(t->pool, (int)sizeof(t->pool)) != 1)
			return -1;
		t->nonce_off = 0;
	}
	memcpy(out, t->pool + t->nonce_off, TRANSIT_NONCE_LEN);
	secmem_wipe(t->pool + t->nonce_off, TRANSIT_NONCE_LEN);
	t->nonce_off += TRANSIT_NONCE_LEN;
	return 0;
}

void transit__aead_done(struct transit_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->cx); /* OpenSSL cleanses the key schedule */
	a->cx = NULL;
	a->v = NULL;
}
