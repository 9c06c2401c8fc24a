/*
 * buf.h - a growable byte buffer, the one helper for "append until done"
 * loops (bodies, lines, joined lists).
 *
 * A struct buf is owned by the caller (stack or embedded) and not
 * thread-safe. Once an append fails (out of memory, size overflow) the
 * buffer is marked failed, later appends do nothing and buf_take returns
 * NULL, so a caller checks once at the end. The contents are always
 * NUL-terminated when cap > 0.
 *
 * A buffer made with buf_init_secret holds secrets: it never uses realloc
 * (which would leave an unwiped copy in freed memory), and growth and
 * buf_free wipe what they release.
 */
#ifndef COFFER_UTIL_BUF_H
#define COFFER_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
	bool secret;
};

/* An empty buffer with room for `hint` bytes (0: allocate on first use). */
void buf_init(struct buf *b, size_t hint);
void buf_init_secret(struct buf *b, size_t hint);
/* Room for `extra` more bytes (plus the NUL); false once failed. */
bool buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *s, size_t n);
void buf_str(struct buf *b, const char *s);
void buf_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append everything f has left, up to max bytes (0: no limit): 0 at EOF,
 * 1 when the stream holds more than max, -1 on a read error or when an
 * append failed (errno tells which for a read error). The caller closes f. */
int buf_read_stream(struct buf *b, FILE *f, size_t max);
/* The NUL-terminated contents (malloc'd, caller frees; wipe it too if the
 * buffer was secret) and their length without the NUL; NULL if an append
 * failed. The buffer is empty again afterwards. */
char *buf_take(struct buf *b, size_t *len);
/* Release the memory (wiped first when secret); the buffer is empty. */
void buf_free(struct buf *b);

#endif
