/*
 * timefmt.c - RFC 3339 formatting (timefmt.h).
 */
#include "util/timefmt.h"

#include <time.h>

const char *timefmt_rfc3339(char buf[TIMEFMT_MAX], int64_t secs, long nanos,
			    enum timefmt_style style)
{
	time_t t = (time_t)secs;
	struct tm tm;
	buf[0] = '\0';
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return NULL;
	if (nanos < 0 || nanos > 999999999L)
		nanos = 0;
	int v[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
	static const char sep[6] = {'-', '-', 'T', ':', ':', '\0'};
	char *p = buf;
	for (int i = 0; i < 6; i++) {
		int width = i == 0 ? 4 : 2;
		for (int d = width - 1; d >= 0; d--, v[i] /= 10)
			p[d] = (char)('0' + v[i] % 10);
		p += width;
		if (sep[i])
			*p++ = sep[i];
	}
	if (style != TIMEFMT_SECONDS && nanos > 0) {
		int digits = 9;
		if (style == TIMEFMT_NANO)
			while (digits > 1 && nanos % 10 == 0) {
				nanos /= 10;
				digits--;
			}
		*p++ = '.';
		for (int d = digits - 1; d >= 0; d--, nanos /= 10)
			p[d] = (char)('0' + nanos % 10);
		p += digits;
	}
	*p++ = 'Z';
	*p = '\0';
	return buf;
}
