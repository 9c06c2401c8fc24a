/*
 * Unit tests for util/policylist.c (Vault's SanitizePolicies).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/policylist.h"

static void check(const char *in, bool add_default, const char *want)
{
	json_t *i = json_loads(in, 0, NULL), *w = json_loads(want, 0, NULL);
	json_t *out = policylist_sanitize(i, add_default);
	char *got = json_dumps(out, JSON_COMPACT);
	if (!json_equal(out, w))
		fail_msg("%s -> %s, want %s", in, got, want);
	free(got);
	json_decref(i);
	json_decref(w);
	json_decref(out);
}

static void test_util_policylist__sanitize(void **state)
{
	check("[\" Ops \",\"dev\",\"\",\"ops\",\"Admin\",\"\\tx\\n\"]", false, "[\"admin\",\"dev\",\"ops\",\"x\"]");
	check("[\"b\",\"a\"]", true, "[\"a\",\"b\",\"default\"]");
	check("[\"default\",\"a\"]", true, "[\"a\",\"default\"]");
	check("[\"a\",\"Root\",\"b\"]", true, "[\"root\"]");
	check("[]", true, "[\"default\"]");
	check("[1,\"a\",null]", false, "[\"a\"]");
	assert_null(policylist_sanitize(NULL, true));
	json_t *o = json_object();
	assert_null(policylist_sanitize(o, false));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_policylist__sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
