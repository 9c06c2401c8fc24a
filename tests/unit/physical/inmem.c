/*
 * tests/unit/physical/inmem.c - the in-memory backend against the shared
 * storage contract (semantics.h), so inmem and file behave alike.
 */
#include "physical/semantics.h"

static int setup(void **state)
{
	struct physical *p = NULL;
	struct verr err = {0};
	if (physical_inmem_new(&p, NULL, &err))
		return -1;
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	physical_close(*state);
	return 0;
}

static void test_physical_inmem__max_entry_size_config(void **state)
{
	(void)state;
	struct physical *p = NULL;
	struct verr err = {0};
	json_t *conf = json_pack("{s:s}", "max_entry_size", "100");
	assert_int_equal(physical_inmem_new(&p, conf, &err), 0);
	uint8_t buf[101] = {0};
	assert_int_equal(physical_put(p, "k", buf, 100, &err), 0);
	assert_int_equal(physical_put(p, "k", buf, 101, &err), VERR_TOO_LARGE);
	physical_close(p);
	json_decref(conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(setup, teardown),
		cmocka_unit_test(test_physical_inmem__max_entry_size_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
