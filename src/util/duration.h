/*
 * duration.h - Vault-style durations: an integer number of seconds ("300",
 * or a JSON integer) or a sequence of <number><unit> with units ns, us, ms,
 * s, m, h, d ("1h30m", "768h", "1.5h", "7d"). Sub-second parts are truncated.
 */
#ifndef COFFER_UTIL_DURATION_H
#define COFFER_UTIL_DURATION_H

#include <stdint.h>

#include "util/verr.h"

/* Parse into whole seconds (>= 0). VERR_INVALID with a message naming the
 * bad text on error. */
int duration_parse(int64_t *out, const char *s, struct verr *err);
/* Format seconds the way Vault prints them ("768h0m0s", "30m0s", "0s"). */
void duration_format(char *buf, unsigned long cap, int64_t secs);

#endif
