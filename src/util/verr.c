/*
 * verr.c - the error type (see verr.h).
 */
#include "util/verr.h"

#include <stdio.h>
#include <string.h>

int verr_vset(struct verr *e, int code, const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	for (char *p = e->msg; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return code;
}

int (verr_set)(struct verr *e, int code, const char *fmt, ...) /* (): not the analyzer macro */
{
	va_list ap;
	va_start(ap, fmt);
	verr_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

void verr_clear(struct verr *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *verr_name(int code)
{
	switch (code) {
	case VERR_OK: return "ok";
	case VERR_INVALID: return "invalid";
	case VERR_DENIED: return "denied";
	case VERR_NOT_FOUND: return "not found";
	case VERR_UNSUPPORTED: return "unsupported";
	case VERR_TOO_LARGE: return "too large";
	case VERR_RATE: return "rate limited";
	case VERR_INTERNAL: return "internal";
	case VERR_SEALED: return "sealed";
	case VERR_STANDBY: return "standby";
	case VERR_UNAVAILABLE: return "unavailable";
	case VERR_PRECONDITION: return "precondition failed";
	case VERR_UNINIT: return "uninitialized";
	default: return "unknown";
	}
}
