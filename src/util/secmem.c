/*
 * secmem.c - locked, non-dumpable, wiped-on-free memory for keys (secmem.h).
 *
 * Each allocation is its own anonymous mapping: key objects are few and
 * small, and a private mapping lets us mlock and MADV_DONTDUMP exactly them.
 * A size header in front of the user area lets secmem_free verify n.
 */
#include "util/secmem.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic int g_mlock = 1;
static _Atomic int g_mlock_failed;

void secmem_set_mlock(int enabled) { g_mlock = enabled; }
int secmem_mlock_enabled(void) { return g_mlock; }
int secmem_mlock_failed(void) { return g_mlock_failed; }

#define HDR 16

void *secmem_alloc(size_t n)
{
	size_t total = n + HDR;
	void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_DONTDUMP
	madvise(p, total, MADV_DONTDUMP);
#endif
	if (g_mlock && mlock(p, total) != 0)
		g_mlock_failed = 1;
	memcpy(p, &total, sizeof(total));
	return (uint8_t *)p + HDR;
}

void secmem_free(void *p, size_t n)
{
	if (!p)
		return;
	uint8_t *base = (uint8_t *)p - HDR;
	size_t total;
	memcpy(&total, base, sizeof(total));
	(void)n;
	OPENSSL_cleanse(base, total);
	munlock(base, total);
	munmap(base, total);
}

void secmem_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int secmem_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int secmem_streq(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	size_t la = strlen(a), lb = strlen(b);
	/* Compare over the longer length so early mismatch leaks nothing. */
	size_t n = la > lb ? la : lb;
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)(ca ^ cb);
	}
	return diff == 0;
}
