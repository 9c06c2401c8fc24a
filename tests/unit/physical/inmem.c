/*
 * tests/unit/physical/inmem.c - the in-memory backend against the shared
 * storage contract (semantics.h), so inmem and file behave alike.
 */
#include "physical/semantics.h"

#include <stdatomic.h>

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

static _Atomic int g_lost;

static void on_lost(void *ctx)
{
	g_lost++;
}

/* The process-local HA lock: one holder among the handles, renew fails for
 * a non-holder, break plays a lost session and calls the holder back. */
static void test_physical_inmem__ha_lock(void **state)
{
	(void)state;
	struct verr err = {0};
	json_t *conf = json_pack("{s:s}", "ha_enabled", "true");
	struct physical *p = NULL;
	assert_int_equal(physical_inmem_new(&p, conf, &err), 0);
	assert_non_null(physical_ha(p));
	struct physical_ha *a = NULL, *b = NULL;
	assert_int_equal(physical_inmem_ha_new(&a, p, &err), 0);
	assert_int_equal(physical_inmem_ha_new(&b, p, &err), 0);
	char *holder = NULL;
	assert_int_equal(physical_ha_holder(a, &holder, &err), 0);
	assert_null(holder);
	assert_int_equal(physical_ha_acquire(a, "node-a", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_acquire(b, "node-b", on_lost, NULL, &err), 0);
	assert_int_equal(physical_ha_holder(b, &holder, &err), 0);
	assert_string_equal(holder, "node-a");
	free(holder);
	assert_int_equal(physical_ha_renew(a, &err), 0);
	assert_int_equal(physical_ha_renew(b, &err), VERR_STANDBY);
	g_lost = 0;
	physical_inmem_ha_break(p);
	assert_int_equal(g_lost, 1);
	assert_int_equal(physical_ha_renew(a, &err), VERR_STANDBY);
	assert_int_equal(physical_ha_acquire(b, "node-b", on_lost, NULL, &err), 1);
	physical_ha_release(b);
	physical_inmem_ha_break(p); /* released: nobody is called */
	assert_int_equal(g_lost, 1);
	assert_int_equal(physical_ha_acquire(a, "node-a", on_lost, NULL, &err), 1);
	physical_inmem_ha_free(a);
	physical_inmem_ha_free(b);
	physical_close(p);
	json_decref(conf);

	/* without ha_enabled there is no lock */
	assert_int_equal(physical_inmem_new(&p, NULL, &err), 0);
	assert_null(physical_ha(p));
	assert_int_equal(physical_inmem_ha_new(&a, p, &err), VERR_INVALID);
	physical_close(p);
}

/* The fault shim: counts calls, fails the Nth write or read, tears a put. */
static void test_physical_inmem__fault_shim(void **state)
{
	(void)state;
	struct verr err = {0};
	struct physical *p = NULL, *f = NULL;
	assert_int_equal(physical_inmem_new(&p, NULL, &err), 0);
	assert_int_equal(physical_fault_new(&f, p, true, &err), 0);
	assert_int_equal(physical_check(f, &err), 0);
	struct physical_fault_knobs k = PHYSICAL_FAULT_NONE;
	k.fail_put_after = 2;
	physical_fault_set(f, &k);
	assert_int_equal(physical_put(f, "a", (const uint8_t *)"1", 1, &err), 0);
	assert_int_equal(physical_put(f, "b", (const uint8_t *)"2", 1, &err), 0);
	assert_int_equal(physical_put(f, "c", (const uint8_t *)"3", 1, &err), VERR_UNAVAILABLE);
	assert_int_equal(physical_delete(f, "a", &err), VERR_UNAVAILABLE);
	uint8_t *v = NULL;
	size_t n = 0;
	assert_int_equal(physical_get(p, "c", &v, &n, &err), 0);
	assert_null(v); /* the failed put did not land */
	k = PHYSICAL_FAULT_NONE;
	k.short_put_nth = 1;
	physical_fault_set(f, &k);
	assert_int_equal(physical_put(f, "t", (const uint8_t *)"abcd", 4, &err), 0);
	assert_int_equal(physical_get(f, "t", &v, &n, &err), 0);
	assert_int_equal(n, 2);
	free(v);
	k = PHYSICAL_FAULT_NONE;
	k.fail_get_after = 0;
	k.fail_code = VERR_INTERNAL;
	physical_fault_set(f, &k);
	assert_int_equal(physical_get(f, "a", &v, &n, &err), VERR_INTERNAL);
	struct physical_fault_counts c;
	physical_fault_counts(f, &c);
	assert_int_equal(c.puts, 4);
	assert_int_equal(c.deletes, 1);
	assert_int_equal(c.gets, 2);
	assert_int_equal(c.failures, 3);
	physical_close(f); /* owns p */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(setup, teardown),
		cmocka_unit_test(test_physical_inmem__max_entry_size_config),
		cmocka_unit_test(test_physical_inmem__ha_lock),
		cmocka_unit_test(test_physical_inmem__fault_shim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
