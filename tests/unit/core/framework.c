/*
 * Unit tests for the path-table framework (src/core/framework.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "logical/logical.h"

static int h_read(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s,s:I,s:b,s:O}", "name", request_str(req, "name"), "ttl",
			       (json_int_t)request_duration(req, "ttl"), "flag", request_bool(req, "flag"),
			       "list", request_json(req, "list"));
	return 0;
}
static int h_create(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s}", "op", "create");
	return 0;
}
static int h_update(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->data = json_pack("{s:s}", "op", "update");
	return 0;
}
static int exists_if_named_x(struct logical_request *req, struct verr *err)
{
	return strcmp(request_str(req, "name"), "x") == 0;
}

static const struct field_def fields[] = {
	{"name", FT_STRING, NULL, "the name", false},
	{"ttl", FT_DURATION, "1h", "ttl", false},
	{"flag", FT_BOOL, "false", "flag", false},
	{"list", FT_STRSLICE, "", "list", false},
	{"count", FT_INT, "0", "count", false},
	{0},
};

static const struct path_def table[] = {
	{.pattern = "users/{name}", .fields = fields,
	 .ops = {{LOP_READ, h_read}, {LOP_CREATE, h_create}, {LOP_UPDATE, h_update}},
	 .exists = exists_if_named_x},
	{.pattern = "data/{path*}", .ops = {{LOP_READ, h_read}}},
	{.pattern = "metadata/{path**}", .ops = {{LOP_LIST, h_read}}},
	{.pattern = "config/?", .ops = {{LOP_READ, h_read}}},
	{0},
};

static void test_core_framework__match(void **state)
{
	json_t *caps = NULL;
	const struct path_def *d = framework_match(table, "users/bob", &caps);
	assert_non_null(d);
	assert_string_equal(d->pattern, "users/{name}");
	assert_string_equal(json_string_value(json_object_get(caps, "name")), "bob");
	json_decref(caps);
	assert_null(framework_match(table, "users/bob/x", NULL));
	assert_null(framework_match(table, "users/", NULL));
	d = framework_match(table, "data/a/b/c", &caps);
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(caps, "path")), "a/b/c");
	json_decref(caps);
	assert_null(framework_match(table, "data/", NULL));
	d = framework_match(table, "metadata/", &caps);
	assert_non_null(d);
	assert_string_equal(json_string_value(json_object_get(caps, "path")), "");
	json_decref(caps);
	assert_non_null(framework_match(table, "config", NULL));
	assert_non_null(framework_match(table, "config/", NULL));
	assert_null(framework_match(table, "configx", NULL));
}

static void run(struct logical_request *req, struct logical_response *resp, int want_rc)
{
	struct verr err = {0};
	int rc = framework_handle(table, req, resp, &err);
	assert_int_equal(rc, want_rc);
}

static void test_core_framework__fields_convert(void **state)
{
	struct logical_request req = {.op = LOP_READ, .rel_path = "users/bob"};
	req.data = json_pack("{s:s,s:s,s:s,s:s}", "ttl", "1h30m", "flag", "true", "list", "a, b,c",
			     "bogus", "x");
	struct logical_response resp = {0};
	run(&req, &resp, 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "name")), "bob");
	assert_int_equal(json_integer_value(json_object_get(resp.data, "ttl")), 5400);
	assert_true(json_is_true(json_object_get(resp.data, "flag")));
	assert_int_equal(json_array_size(json_object_get(resp.data, "list")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(resp.data, "list"), 1)), "b");
	/* unknown field warned about */
	assert_non_null(resp.warnings);
	assert_non_null(strstr(json_string_value(json_array_get(resp.warnings, 0)), "bogus"));
	logical_response_reset(&resp);
	json_decref(req.data);

	/* default applies */
	req.data = json_object();
	run(&req, &resp, 0);
	assert_int_equal(json_integer_value(json_object_get(resp.data, "ttl")), 3600);
	logical_response_reset(&resp);
	json_decref(req.data);
}

static void test_core_framework__fields_bad_type(void **state)
{
	struct logical_request req = {.op = LOP_READ, .rel_path = "users/bob"};
	struct logical_response resp = {0};
	struct verr err = {0};
	req.data = json_pack("{s:s}", "count", "abc");
	assert_int_equal(framework_handle(table, &req, &resp, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "\"count\""));
	json_decref(req.data);
	req.data = json_pack("{s:s}", "ttl", "forever");
	assert_int_equal(framework_handle(table, &req, &resp, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "ttl"));
	json_decref(req.data);
	req.data = json_pack("{s:[i]}", "flag", 1);
	assert_int_equal(framework_handle(table, &req, &resp, &err), VERR_INVALID);
	json_decref(req.data);
	logical_response_reset(&resp);
}

static void test_core_framework__existence(void **state)
{
	struct logical_request req = {.op = LOP_UPDATE, .rel_path = "users/x"};
	req.data = json_object();
	struct logical_response resp = {0};
	run(&req, &resp, 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "op")), "update");
	logical_response_reset(&resp);
	req.op = LOP_UPDATE;
	req.rel_path = "users/y";
	run(&req, &resp, 0);
	assert_string_equal(json_string_value(json_object_get(resp.data, "op")), "create");
	logical_response_reset(&resp);
	/* unsupported op -> 405, unknown path -> 404 for read */
	req.op = LOP_DELETE;
	run(&req, &resp, VERR_UNSUPPORTED);
	req.op = LOP_READ;
	req.rel_path = "nope";
	run(&req, &resp, VERR_NOT_FOUND);
	json_decref(req.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_framework__match),
		cmocka_unit_test(test_core_framework__fields_convert),
		cmocka_unit_test(test_core_framework__fields_bad_type),
		cmocka_unit_test(test_core_framework__existence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
