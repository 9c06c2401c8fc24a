/*
 * scrub.h - the process's scrubbing free: every heap block is wiped before
 * glibc gets it back, so a value that passed through any buffer (a request
 * body, a response body, a parsed JSON string, a decrypted storage value, a
 * library's internal copy) does not linger in freed memory after the
 * request (issue 12: secrets read back from /proc/PID/mem after seal).
 *
 * How: scrub.c defines free() and realloc() for the whole process (the
 * executable's definitions interpose glibc's for every shared library too).
 * free wipes malloc_usable_size() bytes, then calls __libc_free; realloc
 * never leaves the old contents behind when it moves or shrinks a block.
 * malloc/calloc stay glibc's. Off in sanitizer builds (ASan/TSan own the
 * allocator); scrub_active() says whether it is compiled in.
 *
 * Cost: one memset of each freed block: 3.3k instructions of a KV v2 read
 * (210.5k -> 213.8k under callgrind, 1.6 %; docs/performance.md).
 * COFFER_NO_SCRUB at compile time turns it off (for that comparison).
 * Thread-safety: as glibc's allocator.
 */
#ifndef COFFER_UTIL_SCRUB_H
#define COFFER_UTIL_SCRUB_H

#include <stdbool.h>

bool scrub_active(void);

#endif
