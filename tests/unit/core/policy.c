/*
 * Unit tests for the ACL policy engine (src/core/policy.c): parsing, glob
 * and segment matching, Vault's priority rules, merging, parameter
 * constraints, capabilities lists, root and the seed guide's policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/policy.h"

/* ---- helpers ---- */

static struct policy *parse_ok(const char *name, const char *json)
{
	json_error_t je;
	json_t *root = json_loads(json, 0, &je);
	if (!root)
		fail_msg("bad test JSON: %s: %s", je.text, json);
	struct policy *p = NULL;
	struct verr err = {0};
	int rc = policy_parse(&p, name, root, &err);
	json_decref(root);
	if (rc)
		fail_msg("policy_parse failed: %s", err.msg);
	return p;
}

/* Parse expecting failure; returns the message (static buffer). */
static const char *parse_err(const char *json)
{
	static struct verr err;
	json_t *root = json_loads(json, 0, NULL);
	assert_non_null(root);
	struct policy *p = NULL;
	memset(&err, 0, sizeof(err));
	int rc = policy_parse(&p, "t", root, &err);
	json_decref(root);
	assert_int_equal(rc, VERR_INVALID);
	assert_null(p);
	return err.msg;
}

/* An ACL from up to 4 JSON policies (NULL-terminated). */
static struct acl *acl_of(const char *j1, const char *j2, const char *j3, const char *j4)
{
	const char *js[] = {j1, j2, j3, j4};
	struct policy *ps[4] = {0};
	size_t n = 0;
	for (size_t i = 0; i < 4 && js[i]; i++)
		ps[n++] = parse_ok("p", js[i]);
	struct acl *a = NULL;
	struct verr err = {0};
	if (acl_new(&a, ps, n, &err))
		fail_msg("acl_new: %s", err.msg);
	for (size_t i = 0; i < n; i++)
		policy_free(ps[i]);
	return a;
}

static bool allowed_data(const struct acl *a, enum logical_op op, const char *path,
			 const char *data_json)
{
	json_t *data = data_json ? json_loads(data_json, 0, NULL) : NULL;
	if (data_json && !data)
		fail_msg("bad data JSON %s", data_json);
	struct acl_result r;
	assert_int_equal(acl_check(a, op, path, data, &r), 0);
	json_decref(data);
	return r.allowed;
}

static bool allowed(const struct acl *a, enum logical_op op, const char *path)
{
	return allowed_data(a, op, path, NULL);
}

/* The capabilities list as a compact JSON string (static buffer). */
static const char *caps(const struct acl *a, const char *path)
{
	static char buf[256];
	json_t *l = NULL;
	struct verr err = {0};
	assert_int_equal(acl_capabilities(a, path, &l, &err), 0);
	char *s = json_dumps(l, JSON_COMPACT);
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	json_decref(l);
	return buf;
}

/* ---- globs and segments (examples from Vault's policy docs) ---- */

static void test_core_policy__exact_and_prefix_globs(void **state)
{
	struct acl *a = acl_of("{\"path\":{"
			       "\"secret/foo\":{\"capabilities\":[\"read\"]},"
			       "\"secret/bar/*\":{\"capabilities\":[\"read\"]},"
			       "\"secret/zip-*\":{\"capabilities\":[\"read\"]}}}",
			       NULL, NULL, NULL);
	assert_true(allowed(a, LOP_READ, "secret/foo"));
	assert_false(allowed(a, LOP_READ, "secret/food"));
	assert_false(allowed(a, LOP_READ, "secret/foo/bar"));
	assert_false(allowed(a, LOP_READ, "secret/foo/"));
	assert_false(allowed(a, LOP_UPDATE, "secret/foo"));
	assert_false(allowed(a, LOP_DELETE, "secret/foo"));
	assert_true(allowed(a, LOP_READ, "secret/bar/zip"));
	assert_true(allowed(a, LOP_READ, "secret/bar/zip/zap"));
	assert_true(allowed(a, LOP_READ, "secret/bar/")); /* star matches the empty rest */
	assert_false(allowed(a, LOP_READ, "secret/bar"));
	assert_false(allowed(a, LOP_READ, "secret/bars/zip"));
	assert_true(allowed(a, LOP_READ, "secret/zip-zap"));
	assert_true(allowed(a, LOP_READ, "secret/zip-zap/zong"));
	assert_false(allowed(a, LOP_READ, "secret/zip/zap"));
	assert_false(allowed(a, LOP_READ, "other/foo"));
	assert_false(allowed(a, LOP_READ, ""));
	acl_free(a);
}

static void test_core_policy__segment_wildcards(void **state)
{
	struct acl *a = acl_of("{\"path\":{"
			       "\"secret/+/teamb\":{\"capabilities\":[\"read\"]},"
			       "\"secret/+/+/teamc\":{\"capabilities\":[\"read\"]},"
			       "\"kv/+/x/*\":{\"capabilities\":[\"list\"]}}}",
			       NULL, NULL, NULL);
	assert_true(allowed(a, LOP_READ, "secret/foo/teamb"));
	assert_true(allowed(a, LOP_READ, "secret/bar/teamb"));
	assert_false(allowed(a, LOP_READ, "secret/teamb"));
	assert_false(allowed(a, LOP_READ, "secret//teamb")); /* + needs a non-empty segment */
	assert_false(allowed(a, LOP_READ, "secret/foo/bar/teamb"));
	assert_false(allowed(a, LOP_READ, "secret/foo/teamb/x"));
	assert_false(allowed(a, LOP_READ, "secret/foo/teamb/"));
	assert_true(allowed(a, LOP_READ, "secret/foo/bar/teamc"));
	assert_false(allowed(a, LOP_READ, "secret/foo/teamc"));
	assert_true(allowed(a, LOP_LIST, "kv/a/x/"));
	assert_true(allowed(a, LOP_LIST, "kv/a/x/y/z"));
	assert_false(allowed(a, LOP_LIST, "kv/a/x"));
	assert_false(allowed(a, LOP_LIST, "kv/a/b/x/"));
	acl_free(a);
}

/* ---- priority (Vault's five rules) ---- */

/* Two rules, the first granting read, the second update; which one wins on
 * path? Returns 'r', 'u' or '-'. */
static char winner(const char *p_read, const char *p_update, const char *path)
{
	char j[512];
	snprintf(j, sizeof(j),
		 "{\"path\":[{\"%s\":{\"capabilities\":[\"read\"]}},"
		 "{\"%s\":{\"capabilities\":[\"update\"]}}]}",
		 p_read, p_update);
	struct acl *a = acl_of(j, NULL, NULL, NULL);
	bool r = allowed(a, LOP_READ, path), u = allowed(a, LOP_UPDATE, path);
	acl_free(a);
	assert_false(r && u); /* never combined across patterns */
	return r ? 'r' : u ? 'u' : '-';
}

static void test_core_policy__priority_docs_example(void **state)
{
	/* Docs: "secret/+/+/foo/" + star ranks below "secret/" + star (rule 3). */
	assert_int_equal(winner("secret/*", "secret/+/+/foo/*", "secret/a/b/foo/c"), 'r');
	assert_int_equal(winner("secret/+/+/foo/*", "secret/*", "secret/a/b/foo/c"), 'u');
}

static void test_core_policy__priority_rules(void **state)
{
	/* 1: the later first wildcard wins */
	assert_int_equal(winner("foo/a*", "foo/+", "foo/ab"), 'r');
	assert_int_equal(winner("foo/bar/+/baz", "foo/+/bar/baz", "foo/bar/bar/baz"), 'r');
	assert_int_equal(winner("foo/+/bar/baz", "foo/bar/+/baz", "foo/bar/bar/baz"), 'u');
	assert_int_equal(winner("secret/a/*", "secret/*", "secret/a/b"), 'r');
	/* 2: not ending in * wins */
	assert_int_equal(winner("foo/+/bar", "foo/+/ba*", "foo/x/bar"), 'r');
	assert_int_equal(winner("foo/+", "foo/*", "foo/x"), 'r');
	assert_int_equal(winner("foo/*", "foo/+", "foo/x"), 'u');
	/* 3: fewer + segments wins */
	assert_int_equal(winner("foo/+/x/+", "foo/+/+/+", "foo/a/x/b"), 'r');
	/* 4: longer wins */
	assert_int_equal(winner("foo/+/bar/ba*", "foo/+/bar/b*", "foo/x/bar/bax"), 'r');
	assert_int_equal(winner("foo/+/bar/b*", "foo/+/bar/ba*", "foo/x/bar/bax"), 'u');
	/* 5: lexicographically larger wins ('y' > '+') */
	assert_int_equal(winner("x/+/y/+", "x/+/+/z", "x/a/y/z"), 'r');
	assert_int_equal(winner("x/+/+/z", "x/+/y/+", "x/a/y/z"), 'u');
	/* an exact rule beats every glob */
	assert_int_equal(winner("secret/foo", "secret/*", "secret/foo"), 'r');
	assert_int_equal(winner("secret/*", "secret/foo", "secret/foo"), 'u');
}

static void test_core_policy__deny_and_merging(void **state)
{
	/* Docs example: all on secret/ + star, secret/super-secret denied. */
	struct acl *a = acl_of("{\"path\":{"
			       "\"secret/*\":{\"capabilities\":[\"create\",\"read\",\"update\","
			       "\"patch\",\"delete\",\"list\"]},"
			       "\"secret/super-secret\":{\"capabilities\":[\"deny\"]}}}",
			       NULL, NULL, NULL);
	assert_true(allowed(a, LOP_READ, "secret/anything"));
	assert_true(allowed(a, LOP_PATCH, "secret/anything"));
	assert_false(allowed(a, LOP_READ, "secret/super-secret"));
	assert_false(allowed(a, LOP_UPDATE, "secret/super-secret"));
	assert_string_equal(caps(a, "secret/super-secret"), "[\"deny\"]");
	acl_free(a);

	/* Same pattern in two policies: union of capabilities. */
	a = acl_of("{\"path\":{\"s/x\":{\"capabilities\":[\"read\"]}}}",
		   "{\"path\":{\"s/x\":{\"capabilities\":[\"update\"]}}}", NULL, NULL);
	assert_true(allowed(a, LOP_READ, "s/x"));
	assert_true(allowed(a, LOP_UPDATE, "s/x"));
	assert_string_equal(caps(a, "s/x"), "[\"read\",\"update\"]");
	acl_free(a);

	/* ... and deny in either wins, whichever order. */
	a = acl_of("{\"path\":{\"s/x\":{\"capabilities\":[\"read\",\"sudo\"]}}}",
		   "{\"path\":{\"s/x\":{\"capabilities\":[\"deny\"]}}}", NULL, NULL);
	assert_false(allowed(a, LOP_READ, "s/x"));
	acl_free(a);
	a = acl_of("{\"path\":{\"s/x\":{\"capabilities\":[\"deny\"]}}}",
		   "{\"path\":{\"s/x\":{\"capabilities\":[\"read\"]}}}", NULL, NULL);
	assert_false(allowed(a, LOP_READ, "s/x"));
	acl_free(a);

	/* Repeated blocks in one policy merge the same way. */
	a = acl_of("{\"path\":[{\"s/*\":{\"capabilities\":[\"read\"]}},"
		   "{\"s/*\":{\"capabilities\":[\"list\"]}}]}",
		   NULL, NULL, NULL);
	assert_true(allowed(a, LOP_READ, "s/a"));
	assert_true(allowed(a, LOP_LIST, "s/"));
	acl_free(a);

	/* Different patterns never combine: the more specific rule decides. */
	a = acl_of("{\"path\":{\"secret/*\":{\"capabilities\":[\"read\"]}}}",
		   "{\"path\":{\"secret/foo\":{\"capabilities\":[\"update\"]}}}", NULL, NULL);
	assert_false(allowed(a, LOP_READ, "secret/foo"));
	assert_true(allowed(a, LOP_UPDATE, "secret/foo"));
	assert_true(allowed(a, LOP_READ, "secret/bar"));
	acl_free(a);

	/* deny alongside other capabilities in one list is just deny */
	a = acl_of("{\"path\":{\"s/x\":{\"capabilities\":[\"read\",\"deny\"]}}}", NULL, NULL,
		   NULL);
	assert_false(allowed(a, LOP_READ, "s/x"));
	acl_free(a);
}

static void test_core_policy__operations_map_to_capabilities(void **state)
{
	struct acl *a = acl_of("{\"path\":{"
			       "\"r\":{\"capabilities\":[\"read\"]},"
			       "\"c\":{\"capabilities\":[\"create\"]},"
			       "\"u\":{\"capabilities\":[\"update\"]},"
			       "\"p\":{\"capabilities\":[\"patch\"]},"
			       "\"d\":{\"capabilities\":[\"delete\"]},"
			       "\"l/\":{\"capabilities\":[\"list\"]}}}",
			       NULL, NULL, NULL);
	const struct {
		const char *path;
		enum logical_op ok;
	} cases[] = {{"r", LOP_READ}, {"c", LOP_CREATE}, {"u", LOP_UPDATE},
		     {"p", LOP_PATCH}, {"d", LOP_DELETE}, {"l/", LOP_LIST}};
	enum logical_op ops[] = {LOP_READ, LOP_CREATE, LOP_UPDATE, LOP_PATCH, LOP_DELETE,
				 LOP_LIST};
	for (size_t i = 0; i < 6; i++)
		for (size_t j = 0; j < 6; j++)
			assert_int_equal(allowed(a, ops[j], cases[i].path), ops[j] == cases[i].ok);
	/* lease revoke/renew need update; help is always allowed */
	assert_true(allowed(a, LOP_REVOKE, "u"));
	assert_true(allowed(a, LOP_RENEW, "u"));
	assert_false(allowed(a, LOP_RENEW, "r"));
	assert_true(allowed(a, LOP_HELP, "nothing/here"));
	acl_free(a);
}

static void test_core_policy__list_uses_exact_rule_without_slash(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"secret/metadata/app\":{\"capabilities\":[\"list\","
			       "\"read\"]}}}",
			       NULL, NULL, NULL);
	assert_true(allowed(a, LOP_LIST, "secret/metadata/app/"));
	assert_false(allowed(a, LOP_READ, "secret/metadata/app/"));
	assert_true(allowed(a, LOP_READ, "secret/metadata/app"));
	assert_string_equal(caps(a, "secret/metadata/app/"), "[\"list\",\"read\"]");
	acl_free(a);
}

static void test_core_policy__sudo_flag(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"sys/audit/*\":{\"capabilities\":[\"update\","
			       "\"sudo\"]},\"sys/mounts/*\":{\"capabilities\":[\"update\"]}}}",
			       NULL, NULL, NULL);
	struct acl_result r;
	assert_int_equal(acl_check(a, LOP_UPDATE, "sys/audit/file", NULL, &r), 0);
	assert_true(r.allowed);
	assert_true(r.sudo);
	assert_false(r.is_root);
	assert_int_equal(r.capabilities, POLICY_CAP_UPDATE | POLICY_CAP_SUDO);
	assert_int_equal(acl_check(a, LOP_UPDATE, "sys/mounts/kv", NULL, &r), 0);
	assert_true(r.allowed);
	assert_false(r.sudo);
	assert_int_equal(acl_check(a, LOP_READ, "nope", NULL, &r), 0);
	assert_false(r.allowed);
	assert_false(r.matched);
	assert_int_equal(r.capabilities, 0);
	acl_free(a);
}

/* ---- parameters ---- */

static void test_core_policy__allowed_parameters(void **state)
{
	/* Docs: "foo" any value, "bar" one of zip/zap, nothing else. */
	struct acl *a = acl_of("{\"path\":{\"secret/restricted\":{\"capabilities\":[\"create\","
			       "\"update\"],\"allowed_parameters\":{\"foo\":[],\"bar\":[\"zip\","
			       "\"zap\"]}}}}",
			       NULL, NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"foo\":\"anything\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"foo\":1,\"bar\":\"zip\"}"));
	assert_true(allowed_data(a, LOP_UPDATE, "secret/restricted", "{\"bar\":\"zap\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"bar\":\"zop\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"baz\":\"x\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/restricted",
				  "{\"foo\":\"x\",\"other\":\"y\"}"));
	/* keys compare case-insensitively, as in Vault */
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"BAR\":\"zip\"}"));
	/* no data at all is allowed */
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", "{}"));
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", NULL));
	/* a list value passes only if every element is allowed */
	assert_true(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"bar\":[\"zip\",\"zap\"]}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/restricted", "{\"bar\":[\"zip\",\"x\"]}"));
	acl_free(a);

	/* "*" = [] lets other keys through; listed keys stay restricted. */
	a = acl_of("{\"path\":{\"secret/foo\":{\"capabilities\":[\"create\"],"
		   "\"allowed_parameters\":{\"bar\":[\"zip\",\"zap\"],\"*\":[]}}}}",
		   NULL, NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "secret/foo", "{\"anything\":\"x\",\"bar\":\"zip\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/foo", "{\"anything\":\"x\",\"bar\":\"no\"}"));
	acl_free(a);

	/* Globs: prefix, suffix, contains. */
	a = acl_of("{\"path\":{\"secret/foo\":{\"capabilities\":[\"create\"],"
		   "\"allowed_parameters\":{\"bar\":[\"foo-*\",\"*-end\",\"*mid*\"]}}}}",
		   NULL, NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"foo-1\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"foo-\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"the-end\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"amidst\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"foo\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":\"end-x\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "secret/foo", "{\"bar\":5}"));
	acl_free(a);
}

static void test_core_policy__denied_and_required_parameters(void **state)
{
	struct acl *a = acl_of("{\"path\":{"
			       "\"a\":{\"capabilities\":[\"create\"],\"denied_parameters\":{\"bar\":[]}},"
			       "\"b\":{\"capabilities\":[\"create\"],\"denied_parameters\":{\"bar\":[\"zip\","
			       "\"zap*\"]}},"
			       "\"c\":{\"capabilities\":[\"create\"],\"denied_parameters\":{\"*\":[]}},"
			       "\"d\":{\"capabilities\":[\"create\"],\"required_parameters\":[\"bar\","
			       "\"Baz\"]},"
			       "\"e\":{\"capabilities\":[\"create\"],\"allowed_parameters\":{\"bar\":[]},"
			       "\"denied_parameters\":{\"bar\":[\"bad\"]}}}}",
			       NULL, NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "a", "{\"foo\":1}"));
	assert_false(allowed_data(a, LOP_CREATE, "a", "{\"foo\":1,\"bar\":2}"));
	assert_true(allowed_data(a, LOP_CREATE, "b", "{\"bar\":\"other\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "b", "{\"bar\":\"zip\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "b", "{\"bar\":\"zapper\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "b", "{\"bar\":[\"ok\",\"zip\"]}"));
	assert_true(allowed_data(a, LOP_CREATE, "c", "{}"));
	assert_false(allowed_data(a, LOP_CREATE, "c", "{\"x\":1}"));
	assert_true(allowed_data(a, LOP_CREATE, "d", "{\"bar\":1,\"baz\":2,\"x\":3}"));
	assert_false(allowed_data(a, LOP_CREATE, "d", "{\"bar\":1}"));
	assert_false(allowed_data(a, LOP_CREATE, "d", NULL));
	/* denied beats allowed */
	assert_true(allowed_data(a, LOP_CREATE, "e", "{\"bar\":\"good\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "e", "{\"bar\":\"bad\"}"));
	acl_free(a);

	/* Parameters are checked on read too (query arguments), not on delete/list. */
	a = acl_of("{\"path\":{\"x\":{\"capabilities\":[\"read\",\"delete\",\"list\"],"
		   "\"denied_parameters\":{\"version\":[]}}}}",
		   NULL, NULL, NULL);
	assert_false(allowed_data(a, LOP_READ, "x", "{\"version\":\"1\"}"));
	assert_true(allowed_data(a, LOP_DELETE, "x", "{\"version\":\"1\"}"));
	acl_free(a);
}

static void test_core_policy__parameter_merging(void **state)
{
	/* Same pattern twice: allowed value lists are combined; [] absorbs. */
	struct acl *a = acl_of("{\"path\":{\"x\":{\"capabilities\":[\"create\"],"
			       "\"allowed_parameters\":{\"bar\":[\"one\"],\"baz\":[\"q\"]}}}}",
			       "{\"path\":{\"x\":{\"capabilities\":[\"create\"],"
			       "\"allowed_parameters\":{\"bar\":[\"two\"],\"baz\":[]}}}}",
			       NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "x", "{\"bar\":\"one\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "x", "{\"bar\":\"two\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "x", "{\"bar\":\"three\"}"));
	assert_true(allowed_data(a, LOP_CREATE, "x", "{\"baz\":\"anything\"}"));
	acl_free(a);
}

static void test_core_policy__wrapping_ttls(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"auth/approle/role/r/secret-id\":{\"capabilities\":"
			       "[\"update\"],\"min_wrapping_ttl\":\"1s\",\"max_wrapping_ttl\":90}}}",
			       NULL, NULL, NULL);
	struct acl_result r;
	const char *p = "auth/approle/role/r/secret-id";
	assert_int_equal(acl_check(a, LOP_UPDATE, p, NULL, &r), 0);
	assert_false(r.allowed); /* wrapping is mandatory */
	assert_int_equal(acl_check_wrapped(a, LOP_UPDATE, p, NULL, 60, &r), 0);
	assert_true(r.allowed);
	assert_int_equal(acl_check_wrapped(a, LOP_UPDATE, p, NULL, 91, &r), 0);
	assert_false(r.allowed);
	acl_free(a);
	assert_non_null(strstr(parse_err("{\"path\":{\"x\":{\"capabilities\":[\"read\"],"
					 "\"min_wrapping_ttl\":\"2m\",\"max_wrapping_ttl\":\"1m\"}}}"),
			       "max_wrapping_ttl cannot be less than min_wrapping_ttl"));
}

/* ---- root, capabilities, shapes, old syntax ---- */

static void test_core_policy__root_allows_everything(void **state)
{
	struct policy *root = parse_ok("root", "{}");
	struct policy *other = parse_ok("x", "{\"path\":{\"a\":{\"capabilities\":[\"deny\"]}}}");
	struct policy *ps[] = {other, root};
	struct acl *a = NULL;
	assert_int_equal(acl_new(&a, ps, 2, NULL), 0);
	assert_true(acl_is_root(a));
	struct acl_result r;
	assert_int_equal(acl_check(a, LOP_DELETE, "sys/audit/file", NULL, &r), 0);
	assert_true(r.allowed);
	assert_true(r.is_root);
	assert_true(r.sudo);
	assert_true(allowed(a, LOP_READ, "a"));
	assert_string_equal(caps(a, "anything/at/all"), "[\"root\"]");
	acl_free(a);
	policy_free(root);
	policy_free(other);
}

static void test_core_policy__empty_acl_denies(void **state)
{
	struct acl *a = NULL;
	assert_int_equal(acl_new(&a, NULL, 0, NULL), 0);
	assert_false(allowed(a, LOP_READ, "secret/foo"));
	assert_string_equal(caps(a, "secret/foo"), "[\"deny\"]");
	acl_free(a);
	a = acl_of("{}", "{\"path\":[]}", NULL, NULL);
	assert_false(allowed(a, LOP_READ, "secret/foo"));
	acl_free(a);
}

static void test_core_policy__capabilities_sorted(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"x/*\":{\"capabilities\":[\"update\",\"sudo\","
			       "\"read\",\"list\",\"delete\",\"create\",\"patch\"]},"
			       "\"x/none\":{\"capabilities\":[]}}}",
			       NULL, NULL, NULL);
	assert_string_equal(caps(a, "x/y"), "[\"create\",\"delete\",\"list\",\"patch\",\"read\","
					    "\"sudo\",\"update\"]");
	assert_string_equal(caps(a, "x/none"), "[\"deny\"]");
	assert_string_equal(caps(a, "/x/y"), caps(a, "x/y"));
	assert_string_equal(caps(a, "elsewhere"), "[\"deny\"]");
	acl_free(a);
}

static void test_core_policy__input_shapes_equivalent(void **state)
{
	const char *shapes[] = {
		"{\"path\":{\"a/*\":{\"capabilities\":[\"read\"]},\"a/b\":{\"capabilities\":"
		"[\"deny\"]}}}",
		"{\"path\":[{\"a/*\":{\"capabilities\":[\"read\"]}},{\"a/b\":{\"capabilities\":"
		"[\"deny\"]}}]}",
		"{\"path\":[{\"a/*\":[{\"capabilities\":[\"read\"]}]},{\"a/b\":[{\"capabilities\":"
		"[\"deny\"]}]}]}",
		"{\"path\":{\"a/*\":[{\"capabilities\":[\"read\"]}],\"a/b\":[{\"capabilities\":"
		"[\"deny\"]}]}}",
		/* a leading '/', a lone capability string, the old policy field */
		"{\"name\":\"x\",\"path\":{\"/a/*\":{\"capabilities\":\"read\"},\"a/b\":"
		"{\"policy\":\"deny\"}}}",
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct acl *a = acl_of(shapes[i], NULL, NULL, NULL);
		assert_true(allowed(a, LOP_READ, "a/c"));
		assert_false(allowed(a, LOP_READ, "a/b"));
		assert_false(allowed(a, LOP_LIST, "a/"));
		acl_free(a);
	}
	/* The converter's array-of-objects form for a parameter map. */
	struct acl *a = acl_of("{\"path\":[{\"kv/+/x\":[{\"capabilities\":[\"create\"],"
			       "\"allowed_parameters\":[{\"foo\":[],\"bar\":[\"a*\",\"b\"]}]}]}]}",
			       NULL, NULL, NULL);
	assert_true(allowed_data(a, LOP_CREATE, "kv/1/x", "{\"foo\":\"z\",\"bar\":\"abc\"}"));
	assert_false(allowed_data(a, LOP_CREATE, "kv/1/x", "{\"bar\":\"c\"}"));
	acl_free(a);
}

static void test_core_policy__old_policy_field(void **state)
{
	struct acl *a = acl_of("{\"path\":{"
			       "\"r/*\":{\"policy\":\"read\"},"
			       "\"w/*\":{\"policy\":\"write\"},"
			       "\"s/*\":{\"policy\":\"sudo\"},"
			       "\"d/*\":{\"policy\":\"deny\"}}}",
			       NULL, NULL, NULL);
	assert_string_equal(caps(a, "r/x"), "[\"list\",\"read\"]");
	assert_string_equal(caps(a, "w/x"), "[\"create\",\"delete\",\"list\",\"read\",\"update\"]");
	assert_string_equal(caps(a, "s/x"),
			    "[\"create\",\"delete\",\"list\",\"read\",\"sudo\",\"update\"]");
	assert_string_equal(caps(a, "d/x"), "[\"deny\"]");
	acl_free(a);
}

static void test_core_policy__parse_errors(void **state)
{
	assert_string_equal(parse_err("{\"path\":{\"secret/*\":{\"capabilities\":[\"reed\"]}}}"),
			    "failed to parse policy: path \"secret/*\": invalid capability \"reed\"");
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[\"read\"],"
					 "\"capabilites\":[]}}}"),
			       "path \"a\": invalid key \"capabilites\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a/*/b\":{\"capabilities\":[\"read\"]}}}"),
			       "path \"a/*/b\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a/+*\":{\"capabilities\":[\"read\"]}}}"),
			       "'+*' is forbidden"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{}}}"),
			       "path \"a\": no capabilities given"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":\"read\"}}"),
			       "path \"a\": rule body must be an object"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":[]}}"), "path \"a\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":[1]}}"), "path \"a\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"policy\":\"admin\"}}}"),
			       "invalid policy \"admin\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[1]}}}"),
			       "capabilities must be a list of strings"));
	assert_non_null(strstr(parse_err("{\"paths\":{}}"), "invalid key \"paths\""));
	assert_non_null(strstr(parse_err("{\"path\":\"a\"}"), "path must be"));
	assert_non_null(strstr(parse_err("{\"path\":[\"a\"]}"), "path entry"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[\"read\"],"
					 "\"allowed_parameters\":{\"a*\":[]}}}}"),
			       "parameter key \"a*\""));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[\"read\"],"
					 "\"allowed_parameters\":[1]}}}"),
			       "allowed_parameters"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[\"read\"],"
					 "\"control_group\":{}}}}"),
			       "control_group is not supported"));
	assert_non_null(strstr(parse_err("{\"path\":{\"a\":{\"capabilities\":[\"read\"],"
					 "\"min_wrapping_ttl\":\"soon\"}}}"),
			       "min_wrapping_ttl"));
	assert_non_null(strstr(parse_err("[]"), "root object"));
}

static void test_core_policy__templated_paths_never_match(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"secret/data/{{identity.entity.id}}/*\":"
			       "{\"capabilities\":[\"read\"]}}}",
			       NULL, NULL, NULL);
	assert_false(allowed(a, LOP_READ, "secret/data/{{identity.entity.id}}/x"));
	acl_free(a);
}

static void test_core_policy__name_normalize(void **state)
{
	char buf[POLICY_NAME_MAX];
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "  My-Policy ", NULL), 0);
	assert_string_equal(buf, "my-policy");
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "team/app.read", NULL), 0);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "   ", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "a//b", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "../x", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "/x", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "x/", NULL), VERR_INVALID);
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), "a\nb", NULL), VERR_INVALID);
	char big[POLICY_NAME_MAX + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(policy_name_normalize(buf, sizeof(buf), big, NULL), VERR_INVALID);
}

/* ---- the seed guide's policy ---- */

static const char *seed_policy =
	"{\"path\":["
	"{\"kv/data/myapp/*\":[{\"capabilities\":[\"read\"]}]},"
	"{\"database/creds/myapp-role\":[{\"capabilities\":[\"read\"]}]},"
	"{\"pki/issue/myapp-role\":[{\"capabilities\":[\"create\",\"update\"]}]},"
	"{\"sys/capabilities-self\":[{\"capabilities\":[\"create\",\"update\"]}]}]}";

static void test_core_policy__seed_guide_policy(void **state)
{
	struct acl *a = acl_of(seed_policy, NULL, NULL, NULL);
	assert_true(allowed(a, LOP_READ, "kv/data/myapp/config"));
	assert_true(allowed(a, LOP_READ, "kv/data/myapp/db/password"));
	assert_true(allowed(a, LOP_READ, "database/creds/myapp-role"));
	assert_true(allowed(a, LOP_CREATE, "pki/issue/myapp-role"));
	assert_true(allowed(a, LOP_UPDATE, "pki/issue/myapp-role"));
	assert_true(allowed(a, LOP_UPDATE, "sys/capabilities-self"));
	/* near misses */
	assert_false(allowed(a, LOP_READ, "kv/data/myapp"));
	assert_false(allowed(a, LOP_READ, "kv/data/myapp2/x"));
	assert_false(allowed(a, LOP_READ, "kv/metadata/myapp/x"));
	assert_false(allowed(a, LOP_LIST, "kv/metadata/myapp/"));
	assert_false(allowed(a, LOP_UPDATE, "kv/data/myapp/config"));
	assert_false(allowed(a, LOP_DELETE, "kv/data/myapp/config"));
	assert_false(allowed(a, LOP_READ, "database/creds/myapp-role/x"));
	assert_false(allowed(a, LOP_READ, "database/creds/myapp-role2"));
	assert_false(allowed(a, LOP_READ, "database/creds/other"));
	assert_false(allowed(a, LOP_READ, "pki/issue/myapp-role"));
	assert_false(allowed(a, LOP_READ, "sys/capabilities-self"));
	assert_false(allowed(a, LOP_READ, "secret/data/x"));
	assert_false(allowed(a, LOP_READ, "KV/data/myapp/config"));
	assert_string_equal(caps(a, "kv/data/myapp/x"), "[\"read\"]");
	assert_string_equal(caps(a, "pki/issue/myapp-role"), "[\"create\",\"update\"]");
	assert_string_equal(caps(a, "kv/data/other"), "[\"deny\"]");
	acl_free(a);
}

/* ---- speed: a check must stay cheap (it runs on every request) ---- */

static void test_core_policy__check_is_fast(void **state)
{
	struct acl *a = acl_of(seed_policy,
			       "{\"path\":{\"secret/*\":{\"capabilities\":[\"read\"]},"
			       "\"secret/+/teamb\":{\"capabilities\":[\"update\"]}}}",
			       NULL, NULL);
	const char *paths[] = {"kv/data/myapp/config", "secret/a/teamb", "pki/issue/myapp-role",
			       "nothing/matches/here", "secret/x"};
	struct timespec t0, t1;
	const int iters = 200000;
	size_t ok = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < iters; i++) {
		struct acl_result r;
		acl_check(a, LOP_READ, paths[i % 5], NULL, &r);
		ok += r.allowed;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters;
	print_message("acl_check: %.0f ns per check\n", ns);
	assert_int_equal(ok, (size_t)iters * 2 / 5);
	/* generous bound: sanitizer builds are several times slower */
	assert_true(ns < 10000.0);
	acl_free(a);
}

/* acl_any_under: Vault's hasMountAccess for sys/internal/ui/mounts */
static void test_core_policy__any_under_mount(void **state)
{
	struct acl *a = acl_of("{\"path\":{\"kv/data/myapp/*\":{\"capabilities\":[\"read\"]}}}",
			       "{\"path\":{\"team/+/config\":{\"capabilities\":[\"read\"]}}}",
			       "{\"path\":{\"exact/x\":{\"capabilities\":[\"list\"]},"
			       "\"denied/*\":{\"capabilities\":[\"deny\"]}}}",
			       "{\"path\":{\"se*\":{\"capabilities\":[\"read\"]}}}");
	assert_true(acl_any_under(a, "kv/"));
	assert_true(acl_any_under(a, "team/"));
	assert_true(acl_any_under(a, "exact/"));
	assert_true(acl_any_under(a, "secret/")); /* "se*" covers it */
	assert_false(acl_any_under(a, "kv2/"));
	assert_false(acl_any_under(a, "denied/"));
	assert_false(acl_any_under(a, "other/"));
	assert_false(acl_any_under(a, "team/a/b/c/")); /* deeper than the rule */
	acl_free(a);
	a = acl_of("{\"path\":{\"+/data/app\":{\"capabilities\":[\"read\"]}}}", NULL, NULL, NULL);
	assert_true(acl_any_under(a, "anything/"));
	assert_false(acl_any_under(a, "auth/x/")); /* "x" is not "data" */
	assert_true(acl_any_under(a, "auth/data/"));
	acl_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_policy__exact_and_prefix_globs),
		cmocka_unit_test(test_core_policy__segment_wildcards),
		cmocka_unit_test(test_core_policy__priority_docs_example),
		cmocka_unit_test(test_core_policy__priority_rules),
		cmocka_unit_test(test_core_policy__deny_and_merging),
		cmocka_unit_test(test_core_policy__operations_map_to_capabilities),
		cmocka_unit_test(test_core_policy__list_uses_exact_rule_without_slash),
		cmocka_unit_test(test_core_policy__sudo_flag),
		cmocka_unit_test(test_core_policy__allowed_parameters),
		cmocka_unit_test(test_core_policy__denied_and_required_parameters),
		cmocka_unit_test(test_core_policy__parameter_merging),
		cmocka_unit_test(test_core_policy__wrapping_ttls),
		cmocka_unit_test(test_core_policy__root_allows_everything),
		cmocka_unit_test(test_core_policy__empty_acl_denies),
		cmocka_unit_test(test_core_policy__capabilities_sorted),
		cmocka_unit_test(test_core_policy__input_shapes_equivalent),
		cmocka_unit_test(test_core_policy__old_policy_field),
		cmocka_unit_test(test_core_policy__parse_errors),
		cmocka_unit_test(test_core_policy__templated_paths_never_match),
		cmocka_unit_test(test_core_policy__name_normalize),
		cmocka_unit_test(test_core_policy__seed_guide_policy),
		cmocka_unit_test(test_core_policy__check_is_fast),
		cmocka_unit_test(test_core_policy__any_under_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
