/*
 * Unit tests for src/util/cidr.c: parsing, containment (IPv4, IPv6,
 * IPv4-mapped), block-within-block, and the list helpers used for
 * bound_cidrs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/cidr.h"

static void test_util_cidr__parse(void **state)
{
	struct cidr c;
	assert_int_equal(cidr_parse(&c, "10.0.0.0/8"), 0);
	assert_int_equal(c.bits, 8);
	assert_int_equal(cidr_parse(&c, "127.0.0.1"), 0);
	assert_int_equal(c.bits, 32);
	assert_int_equal(cidr_parse(&c, "2001:db8::/32"), 0);
	assert_int_equal(c.bits, 32);
	assert_int_equal(cidr_parse(&c, "::1"), 0);
	assert_int_equal(c.bits, 128);
	const char *bad[] = {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.0.0/8",
			     "nonsense", "::/129", "1.2.3.4/-1", "::ffff:1.2.3.4/64", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(cidr_parse(&c, bad[i]), -1);
	assert_false(cidr_valid(NULL));
}

static void test_util_cidr__contains(void **state)
{
	struct cidr c;
	assert_int_equal(cidr_parse(&c, "10.0.0.0/8"), 0);
	assert_true(cidr_contains(&c, "10.255.1.2"));
	assert_false(cidr_contains(&c, "11.0.0.1"));
	assert_true(cidr_contains(&c, "::ffff:10.1.1.1")); /* dual-stack client */
	assert_false(cidr_contains(&c, "::1"));
	assert_false(cidr_contains(&c, "garbage"));
	assert_false(cidr_contains(&c, NULL));
	assert_int_equal(cidr_parse(&c, "192.168.1.128/25"), 0);
	assert_true(cidr_contains(&c, "192.168.1.200"));
	assert_false(cidr_contains(&c, "192.168.1.127"));
	assert_int_equal(cidr_parse(&c, "2001:db8::/32"), 0);
	assert_true(cidr_contains(&c, "2001:db8:1::5"));
	assert_false(cidr_contains(&c, "2001:db9::5"));
	assert_int_equal(cidr_parse(&c, "0.0.0.0/0"), 0);
	assert_true(cidr_contains(&c, "8.8.8.8"));
}

static void test_util_cidr__lists(void **state)
{
	json_t *l = json_pack("[s,s]", "10.0.0.0/8", "127.0.0.1/32");
	assert_true(cidr_list_allows(l, "127.0.0.1"));
	assert_true(cidr_list_allows(l, "10.3.3.3"));
	assert_false(cidr_list_allows(l, "127.0.0.2"));
	assert_false(cidr_list_allows(l, NULL));
	json_t *empty = json_array();
	assert_true(cidr_list_allows(empty, "1.2.3.4"));
	assert_true(cidr_list_allows(NULL, NULL));
	/* a malformed entry never matches */
	json_t *bad = json_pack("[s]", "10.0.0.0/99");
	assert_false(cidr_list_allows(bad, "10.0.0.1"));

	json_t *inner = json_pack("[s,s]", "10.1.0.0/16", "127.0.0.1");
	assert_true(cidr_list_within(inner, l));
	json_t *wide = json_pack("[s]", "10.0.0.0/7");
	assert_false(cidr_list_within(wide, l));
	assert_true(cidr_list_within(wide, empty)); /* no outer restriction */
	assert_true(cidr_list_within(empty, l));
	json_decref(l);
	json_decref(empty);
	json_decref(bad);
	json_decref(inner);
	json_decref(wide);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_cidr__parse),
		cmocka_unit_test(test_util_cidr__contains),
		cmocka_unit_test(test_util_cidr__lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
