/*
 * Unit tests for the scrubbing free/realloc (src/util/scrub.c): realloc
 * keeps realloc's contract (contents kept, NULL and 0 cases, shrink and
 * grow) while it never hands a block back with its old contents; whether
 * the scrubbing free is in this build is asserted against the build kind.
 * (That freed memory holds no secret is asserted end to end on the real
 * server: tests/e2e/test_secret_hygiene.py reads /proc/PID/mem.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/scrub.h"

static void test_util_scrub__active_outside_sanitizers(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	assert_false(scrub_active());
#else
	assert_true(scrub_active());
#endif
}

static void test_util_scrub__realloc_contract(void **state)
{
	char *p = realloc(NULL, 16);
	assert_non_null(p);
	memcpy(p, "0123456789abcde", 16);
	/* grow: moves, keeps the contents */
	char *q = realloc(p, 100000);
	assert_non_null(q);
	assert_memory_equal(q, "0123456789abcde", 16);
	memset(q + 16, 'x', 100000 - 16);
	/* shrink: keeps the prefix */
	char *r = realloc(q, 8);
	assert_non_null(r);
	assert_memory_equal(r, "01234567", 8);
	/* many small growths, as a body accumulates */
	for (size_t n = 9; n < 5000; n += 37) {
		char *t = realloc(r, n);
		assert_non_null(t);
		r = t;
		assert_memory_equal(r, "01234567", 8);
	}
	/* realloc to 0 frees (glibc's behaviour) */
	assert_null(realloc(r, 0));
	free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_scrub__active_outside_sanitizers),
		cmocka_unit_test(test_util_scrub__realloc_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
