/*
 * Unit tests for util/buf.c: appends, printf, take, failure stickiness, and
 * that a secret buffer never hands its old bytes to realloc (its growth
 * copies and wipes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/buf.h"

static void test_util_buf__append_and_take(void **state)
{
	struct buf b;
	buf_init(&b, 0);
	buf_str(&b, "hello");
	buf_char(&b, ' ');
	buf_printf(&b, "%s %d", "world", 42);
	assert_string_equal(b.p, "hello world 42");
	for (int i = 0; i < 1000; i++)
		buf_add(&b, "0123456789", 10);
	size_t len = 0;
	char *s = buf_take(&b, &len);
	assert_int_equal(len, 14 + 10000);
	assert_int_equal(strlen(s), len);
	assert_null(b.p);
	free(s);
	buf_add(&b, "", 0);
	s = buf_take(&b, &len);
	assert_string_equal(s, "");
	free(s);
}

static void test_util_buf__failure_is_sticky(void **state)
{
	struct buf b;
	buf_init(&b, 16);
	buf_str(&b, "x");
	assert_false(buf_reserve(&b, SIZE_MAX));
	assert_true(b.failed);
	buf_str(&b, "y");
	size_t len = 1;
	assert_null(buf_take(&b, &len));
	assert_int_equal(len, 0);
	buf_free(&b);
}

static void test_util_buf__secret_growth_wipes(void **state)
{
	struct buf b;
	buf_init_secret(&b, 8);
	buf_str(&b, "s3cr3t!");
	char *old = b.p;
	size_t oldcap = b.cap;
	buf_reserve(&b, 4096); /* must move */
	assert_ptr_not_equal(b.p, old);
	assert_string_equal(b.p, "s3cr3t!");
	assert_true(b.cap > oldcap);
	assert_true(b.secret);
	buf_free(&b);
	assert_true(b.secret); /* stays a secret buffer for reuse */
	assert_null(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_buf__append_and_take),
		cmocka_unit_test(test_util_buf__failure_is_sticky),
		cmocka_unit_test(test_util_buf__secret_growth_wipes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
