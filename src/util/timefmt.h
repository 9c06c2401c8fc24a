/*
 * timefmt.h - RFC 3339 timestamps as Vault writes them, without malloc or
 * snprintf (audit entries format two per request).
 *
 *   TIMEFMT_SECONDS  2006-01-02T15:04:05Z
 *   TIMEFMT_NANO9    2006-01-02T15:04:05.000000123Z   (nanos > 0; else as SECONDS)
 *   TIMEFMT_NANO     2006-01-02T15:04:05.000000123Z with trailing zeros cut,
 *                    as Go's time.RFC3339Nano (".5Z"; no fraction when 0)
 * Years outside 0..9999 do not format (NULL). Thread-safe, no state.
 */
#ifndef COFFER_UTIL_TIMEFMT_H
#define COFFER_UTIL_TIMEFMT_H

#include <stdint.h>

#define TIMEFMT_MAX 40

enum timefmt_style { TIMEFMT_SECONDS, TIMEFMT_NANO9, TIMEFMT_NANO };

/* Write unix time secs + nanos (0..999999999) into buf; returns buf, or NULL
 * (buf = "") when the time cannot be represented. */
const char *timefmt_rfc3339(char buf[TIMEFMT_MAX], int64_t secs, long nanos,
			    enum timefmt_style style);

#endif
