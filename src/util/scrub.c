/*
 * scrub.c - the scrubbing free and realloc (see scrub.h).
 */
#include "util/scrub.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(COFFER_NO_SCRUB)
#define SCRUB_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(memory_sanitizer)
#define SCRUB_OFF 1
#endif
#endif

#ifdef SCRUB_OFF
bool scrub_active(void)
{
	return false;
}
#else
/* glibc's own entry points (exported for exactly this use). */
extern void __libc_free(void *p);
extern void *__libc_malloc(size_t n);
extern void *__libc_realloc(void *p, size_t n);

/* explicit_bzero is not removed as a dead store before the free */
static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

bool scrub_active(void)
{
	return true;
}

void free(void *p)
{
	if (!p)
		return;
	wipe(p, malloc_usable_size(p));
	__libc_free(p);
}

void *realloc(void *p, size_t n)
{
	if (!p)
		return __libc_malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	size_t have = malloc_usable_size(p);
	if (n <= have) {
		/* shrinking in place: the tail glibc may split off is wiped */
		wipe((char *)p + n, have - n);
		return __libc_realloc(p, n);
	}
	/* growing: always move, so the old block is wiped, never handed back
	 * with its contents */
	void *q = __libc_malloc(n);
	if (!q)
		return NULL; /* p is untouched, as realloc promises */
	memcpy(q, p, have);
	free(p);
	return q;
}
#endif
