/*
 * verr.h - Coffer's one error type.
 *
 * Every fallible function returns int: 0 on success or a negative VERR_* code,
 * and fills the caller's `struct verr` (always the last argument, may be NULL)
 * with a one-line, secret-free message. Lower layers set the error; upper
 * layers propagate it and never overwrite it. Only src/http/ maps codes to
 * HTTP statuses (http_status_for_verr).
 */
#ifndef COFFER_UTIL_VERR_H
#define COFFER_UTIL_VERR_H

#include <stdarg.h>

enum verr_code {
	VERR_OK = 0,
	VERR_INVALID = -1,     /* 400: bad request, bad field, cas mismatch */
	VERR_DENIED = -2,      /* 403: permission denied / bad token */
	VERR_NOT_FOUND = -3,   /* 404 */
	VERR_UNSUPPORTED = -4, /* 405: operation not supported on this path */
	VERR_TOO_LARGE = -5,   /* 413 */
	VERR_RATE = -6,        /* 429 */
	VERR_INTERNAL = -7,    /* 500 */
	VERR_SEALED = -8,      /* 503: Vault is sealed */
	VERR_STANDBY = -9,     /* 503/307: not the active node */
	VERR_UNAVAILABLE = -10,/* 503: dependency down */
	VERR_PRECONDITION = -11,/* 412 */
	VERR_UNINIT = -12,     /* 400 on most paths: server not initialized */
};

#define VERR_MSG_MAX 512

struct verr {
	int code;
	char msg[VERR_MSG_MAX];
};

/* Set *e (if non-NULL) and return code. The formatted message is one line:
 * CR and LF are replaced by spaces. */
int verr_set(struct verr *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int verr_vset(struct verr *e, int code, const char *fmt, va_list ap);
#ifdef __clang_analyzer__
/* Tell clang's static analyzer (clang-tidy, scan-build) what it cannot see
 * across files: verr_set returns `code`. Without it every `return
 * verr_set(...)` may be "0" to the analyzer, which then reports the caller's
 * success path on error paths. Not compiled into the program. */
#define verr_set(e, code, ...) (verr_set((e), (code), __VA_ARGS__), (code))
#endif
void verr_clear(struct verr *e);
/* Human name of a code ("invalid", "denied"...), for logs. */
const char *verr_name(int code);

#endif
