/*
 * secmem.h - memory for key material.
 *
 * secmem_alloc returns zeroed memory from a private mmap that is mlock'd
 * (unless secmem_set_mlock(0) was called, e.g. for `disable_mlock = true`)
 * and excluded from core dumps (MADV_DONTDUMP). secmem_free wipes it with
 * OPENSSL_cleanse before unmapping. Thread-safe. mlock failure is reported by
 * secmem_mlock_failed() (the start-up banner shows it) but is not fatal when
 * mlock was requested only best-effort.
 */
#ifndef COFFER_UTIL_SECMEM_H
#define COFFER_UTIL_SECMEM_H

#include <stddef.h>
#include <stdint.h>

void secmem_set_mlock(int enabled);
int secmem_mlock_enabled(void);
int secmem_mlock_failed(void);
void *secmem_alloc(size_t n);
void secmem_free(void *p, size_t n);
/* Wipe n bytes (never optimised out). */
void secmem_wipe(void *p, size_t n);
/* Constant-time equality of two buffers of the same length: 1 if equal. */
int secmem_eq(const void *a, const void *b, size_t n);
/* Constant-time equality of two NUL-terminated strings (time depends only on
 * the lengths). */
int secmem_streq(const char *a, const char *b);

#endif
