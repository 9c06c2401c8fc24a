/*
 * cron.c - five-field cron schedules (cron.h): a parser into bit sets and a
 * next-match search that skips whole months, days and hours that cannot
 * match, so a yearly schedule costs a few dozen steps, not half a million
 * minutes. UTC only (timegm/gmtime_r); no state.
 */
#include "util/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] is value lo + i, or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static const struct field fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 6, dow_names},
};

static int value(const struct field *f, const char **p, int *out)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*out = (int)v;
		*p = s;
		return 0;
	}
	if (f->names && isalpha((unsigned char)s[0])) {
		int n = f->hi - f->lo + 1;
		for (int i = 0; i < n; i++) {
			if (!strncasecmp(s, f->names[i], 3) && !isalpha((unsigned char)s[3])) {
				*out = f->lo + i;
				*p = s + 3;
				return 0;
			}
		}
	}
	return -1;
}

/* One field's text [s, e) into a bit set. */
static int parse_field(const struct field *f, const char *s, const char *e, uint64_t *bits,
		       bool *star, char *msg, size_t msg_len)
{
	*bits = 0;
	*star = false;
	const char *txt = s;
	int len = (int)(e - s) > 40 ? 40 : (int)(e - s);
	while (s < e) {
		const char *comma = memchr(s, ',', (size_t)(e - s));
		const char *ie = comma ? comma : e;
		int lo, hi, step = 1;
		const char *p = s;
		bool any = false;
		if (*p == '*' || *p == '?') {
			lo = f->lo;
			hi = f->hi;
			any = true;
			p++;
		} else {
			if (value(f, &p, &lo))
				goto bad;
			hi = lo;
			if (p < ie && *p == '-') {
				p++;
				if (value(f, &p, &hi))
					goto bad;
			}
		}
		if (p < ie && *p == '/') {
			p++;
			if (!isdigit((unsigned char)*p) || value(f, &p, &step) || step <= 0)
				goto bad;
			if (!any && hi == lo)
				hi = f->hi; /* "a/n": from a to the end */
			if (step > 1)
				any = false; /* a stepped star restricts the field */
		}
		if (p != ie)
			goto bad;
		if (lo < f->lo || hi > f->hi || lo > hi) {
			snprintf(msg, msg_len, "%s: \"%.*s\" is out of range %d-%d", f->name, len,
				 txt, f->lo, f->hi);
			return -1;
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= (uint64_t)1 << v;
		if (any)
			*star = true;
		s = comma ? comma + 1 : e;
		if (comma && s == e)
			goto bad;
	}
	if (*bits)
		return 0;
bad:
	snprintf(msg, msg_len, "%s: cannot parse \"%.*s\"", f->name, len, txt);
	return -1;
}

int cron_parse(struct cron *out, const char *spec, char *msg, size_t msg_len)
{
	memset(out, 0, sizeof(*out));
	if (msg_len)
		msg[0] = '\0';
	const char *p = spec ? spec : "";
	uint64_t b[5];
	bool star[5];
	int n = 0;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (n == 5) {
			snprintf(msg, msg_len, "expected exactly 5 fields, found more: \"%.60s\"", spec);
			return -1;
		}
		if (parse_field(&fields[n], s, p, &b[n], &star[n], msg, msg_len))
			return -1;
		n++;
	}
	if (n != 5) {
		snprintf(msg, msg_len, "expected exactly 5 fields, found %d: \"%.60s\"", n,
			 spec ? spec : "");
		return -1;
	}
	out->minute = b[0];
	out->hour = (uint32_t)b[1];
	out->dom = (uint32_t)b[2];
	out->month = (uint16_t)b[3];
	out->dow = (uint8_t)b[4];
	out->dom_star = star[2];
	out->dow_star = star[4];
	return 0;
}

static bool day_matches(const struct cron *c, const struct tm *tm)
{
	bool d = c->dom & (1u << tm->tm_mday);
	bool w = c->dow & (1u << tm->tm_wday);
	if (c->dom_star || c->dow_star)
		return d && w;
	return d || w;
}

int64_t cron_next(const struct cron *c, int64_t t)
{
	time_t s = (time_t)((t / 60 + 1) * 60); /* next whole minute after t */
	if (t < 0)
		s = 0;
	struct tm tm;
	if (!gmtime_r(&s, &tm))
		return -1;
	int limit = tm.tm_year + 5;
	/* each step normalises through timegm; 5 years of skipping months,
	 * days and hours is a bounded number of iterations */
	for (int guard = 0; guard < 100000 && tm.tm_year <= limit; guard++) {
		if (!(c->month & (1u << (tm.tm_mon + 1)))) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!(c->hour & (1u << tm.tm_hour))) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!(c->minute & ((uint64_t)1 << tm.tm_min))) {
			tm.tm_min++;
		} else {
			tm.tm_sec = 0;
			return (int64_t)timegm(&tm);
		}
		tm.tm_sec = 0;
		time_t n = timegm(&tm); /* normalise the overflowed field */
		if (n == (time_t)-1 || !gmtime_r(&n, &tm))
			return -1;
	}
	return -1;
}
