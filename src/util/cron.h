/*
 * cron.h - five-field cron schedules ("minute hour day-of-month month
 * day-of-week"), as Vault's rotation_schedule takes them, evaluated in UTC.
 *
 * Each field is a comma-separated list of `*` or `?`, a value, a range
 * `a-b`, each optionally with a step `/n` (`a/n` runs from a to the field's
 * maximum). Months take JAN..DEC, days of the week SUN..SAT (0..6), case
 * insensitive. When both day fields are restricted a day matches either
 * (classic cron); when one is `*` both must match.
 *
 * A parsed schedule is a plain value: no allocation, thread-safe to share.
 */
#ifndef COFFER_UTIL_CRON_H
#define COFFER_UTIL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cron {
	uint64_t minute;  /* bits 0..59 */
	uint32_t hour;    /* bits 0..23 */
	uint32_t dom;     /* bits 1..31 */
	uint16_t month;   /* bits 1..12 */
	uint8_t dow;      /* bits 0..6 */
	bool dom_star, dow_star;
};

/* Parse spec into *out. Returns 0, or -1 with a message naming the field
 * and the problem in msg (msg_len bytes, always terminated). */
int cron_parse(struct cron *out, const char *spec, char *msg, size_t msg_len);

/* The first time strictly after unix second t that the schedule matches
 * (whole minutes, UTC), or -1 when none falls in the next five years (an
 * impossible date such as 30 February). */
int64_t cron_next(const struct cron *c, int64_t t);

#endif
