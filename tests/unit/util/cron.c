/*
 * Unit tests for util/cron.c: the parser's accepted and refused forms, and
 * cron_next checked against a minute-by-minute scan for a set of schedules
 * over several years of start times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "util/cron.h"

static int64_t at(int y, int mon, int d, int h, int mi)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi};
	return (int64_t)timegm(&tm);
}

static void test_util_cron__parse(void **state)
{
	(void)state;
	struct cron c;
	char m[128];
	assert_int_equal(cron_parse(&c, "* * * * *", m, sizeof(m)), 0);
	assert_true(c.dom_star && c.dow_star);
	assert_int_equal(cron_parse(&c, "*/15 0-6/2 1,15 JAN-mar sun,Sat", m, sizeof(m)), 0);
	assert_true(c.minute == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
	assert_int_equal(c.hour, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 6));
	assert_int_equal(c.dom, (1u << 1) | (1u << 15));
	assert_int_equal(c.month, (1u << 1) | (1u << 2) | (1u << 3));
	assert_int_equal(c.dow, (1u << 0) | (1u << 6));
	assert_false(c.dom_star || c.dow_star);
	assert_int_equal(cron_parse(&c, "  5/20 ? * * ?  ", m, sizeof(m)), 0);
	assert_true(c.minute == ((1ull << 5) | (1ull << 25) | (1ull << 45)));

	const char *bad[] = {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
			     "* * 0 * *", "* * * 13 *", "* * * * 7", "5-1 * * * *", "*/0 * * * *",
			     "a * * * *", "1,,2 * * * *", "1, * * * *", "* * * foo *", "@daily", NULL};
	for (int i = 0; bad[i]; i++) {
		m[0] = '\0';
		assert_int_equal(cron_parse(&c, bad[i], m, sizeof(m)), -1);
		assert_true(m[0] != '\0');
	}
	cron_parse(&c, "61 * * * *", m, sizeof(m));
	assert_non_null(strstr(m, "minute"));
	cron_parse(&c, "* * * * mon-sun", m, sizeof(m));
	assert_non_null(strstr(m, "day of week"));
}

static int64_t scan(const struct cron *c, int64_t t)
{
	for (int64_t s = (t / 60 + 1) * 60; s < t + 6LL * 366 * 86400; s += 60) {
		time_t tt = (time_t)s;
		struct tm tm;
		gmtime_r(&tt, &tm);
		bool d = c->dom & (1u << tm.tm_mday), w = c->dow & (1u << tm.tm_wday);
		bool day = (c->dom_star || c->dow_star) ? (d && w) : (d || w);
		if ((c->month & (1u << (tm.tm_mon + 1))) && day && (c->hour & (1u << tm.tm_hour)) &&
		    (c->minute & (1ull << tm.tm_min)))
			return s;
	}
	return -1;
}

static void test_util_cron__next_matches_a_scan(void **state)
{
	(void)state;
	const char *specs[] = {"* * * * *",  "0 * * * *",       "1 0 * * *",    "30 2 * * SAT",
			       "0 0 29 2 *", "15 10 1,15 * 1",  "*/7 3-5 * * *", "0 12 31 * *",
			       "0 0 * * 0",  "45 23 28-31 12 *", "0 0 13 * 5",  NULL};
	int64_t starts[] = {at(2024, 1, 1, 0, 0),   at(2024, 2, 28, 23, 59), at(2025, 12, 31, 23, 59),
			    at(2026, 6, 15, 12, 34) + 17, at(2027, 3, 1, 0, 0) - 1, at(2028, 2, 29, 0, 0)};
	for (int i = 0; specs[i]; i++) {
		struct cron c;
		char m[128];
		assert_int_equal(cron_parse(&c, specs[i], m, sizeof(m)), 0);
		for (size_t j = 0; j < sizeof(starts) / sizeof(starts[0]); j++) {
			int64_t t = starts[j];
			for (int k = 0; k < 4; k++) { /* follow the schedule a few steps */
				int64_t want = scan(&c, t), got = cron_next(&c, t);
				if (want != got)
					fail_msg("%s after %lld: want %lld got %lld", specs[i], (long long)t,
						 (long long)want, (long long)got);
				if (got < 0)
					break;
				t = got;
			}
		}
	}
	struct cron c;
	char m[128];
	assert_int_equal(cron_parse(&c, "0 0 30 2 *", m, sizeof(m)), 0);
	assert_int_equal(cron_next(&c, at(2025, 1, 1, 0, 0)), -1); /* 30 February never comes */
	assert_int_equal(cron_parse(&c, "1 0 * * *", m, sizeof(m)), 0);
	assert_int_equal(cron_next(&c, at(2025, 5, 5, 0, 1)), at(2025, 5, 6, 0, 1)); /* strictly after */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_cron__parse),
		cmocka_unit_test(test_util_cron__next_matches_a_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
