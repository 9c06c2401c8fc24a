/*
 * Unit tests for util/timefmt.c: the three RFC 3339 styles Vault's
 * responses use, checked against strftime for a sweep of times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "util/timefmt.h"

static void test_util_timefmt__styles(void **state)
{
	char b[TIMEFMT_MAX];
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 0, TIMEFMT_SECONDS), "2023-11-14T22:13:20Z");
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 5, TIMEFMT_SECONDS), "2023-11-14T22:13:20Z");
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 5, TIMEFMT_NANO9),
			    "2023-11-14T22:13:20.000000005Z");
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 0, TIMEFMT_NANO9), "2023-11-14T22:13:20Z");
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 500000000, TIMEFMT_NANO),
			    "2023-11-14T22:13:20.5Z");
	assert_string_equal(timefmt_rfc3339(b, 1700000000, 945319214, TIMEFMT_NANO),
			    "2023-11-14T22:13:20.945319214Z");
	assert_string_equal(timefmt_rfc3339(b, 0, 0, TIMEFMT_SECONDS), "1970-01-01T00:00:00Z");
	assert_null(timefmt_rfc3339(b, 400000000000LL, 0, TIMEFMT_SECONDS)); /* year > 9999 */
	assert_string_equal(b, "");
}

static void test_util_timefmt__matches_strftime(void **state)
{
	for (int64_t t = -86400LL * 365 * 60; t < 86400LL * 365 * 200; t += 86400LL * 37 + 3607) {
		char want[64], got[TIMEFMT_MAX];
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		assert_string_equal(timefmt_rfc3339(got, t, 0, TIMEFMT_SECONDS), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_timefmt__styles),
		cmocka_unit_test(test_util_timefmt__matches_strftime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
