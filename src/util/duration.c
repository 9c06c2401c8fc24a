/*
 * duration.c - parse and format Vault durations (see duration.h).
 */
#include "util/duration.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int duration_parse(int64_t *out, const char *s, struct verr *err)
{
	*out = 0;
	if (!s || !*s)
		return verr_set(err, VERR_INVALID, "empty duration");
	const char *p = s;
	int all_digits = 1;
	for (const char *q = s; *q; q++)
		if (!isdigit((unsigned char)*q))
			all_digits = 0;
	if (all_digits) {
		errno = 0;
		char *end;
		long long v = strtoll(s, &end, 10);
		if (errno || *end || v < 0)
			return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\"", s);
		*out = v;
		return 0;
	}
	if (*p == '-')
		return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\": negative", s);
	if (*p == '+')
		p++;
	double total = 0;
	int parts = 0;
	while (*p) {
		if (!isdigit((unsigned char)*p) && *p != '.')
			return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\"", s);
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || !isfinite(v))
			return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\"", s);
		p = end;
		double mult;
		if (!strncmp(p, "ns", 2)) { mult = 1e-9; p += 2; }
		else if (!strncmp(p, "us", 2)) { mult = 1e-6; p += 2; }
		else if (!strncmp(p, "\xc2\xb5s", 3)) { mult = 1e-6; p += 3; }
		else if (!strncmp(p, "ms", 2)) { mult = 1e-3; p += 2; }
		else if (*p == 's') { mult = 1; p++; }
		else if (*p == 'm') { mult = 60; p++; }
		else if (*p == 'h') { mult = 3600; p++; }
		else if (*p == 'd') { mult = 86400; p++; }
		else
			return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\": missing or unknown unit", s);
		total += v * mult;
		if (total > 9.2e18 / 2)
			return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\": too large", s);
		parts++;
	}
	if (!parts)
		return verr_set(err, VERR_INVALID, "invalid duration \"%.64s\"", s);
	*out = (int64_t)total;
	return 0;
}

void duration_format(char *buf, unsigned long cap, int64_t secs)
{
	if (secs <= 0) {
		snprintf(buf, cap, "0s");
		return;
	}
	int64_t h = secs / 3600, m = (secs % 3600) / 60, s = secs % 60;
	if (h)
		snprintf(buf, cap, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)s);
	else if (m)
		snprintf(buf, cap, "%lldm%llds", (long long)m, (long long)s);
	else
		snprintf(buf, cap, "%llds", (long long)s);
}
