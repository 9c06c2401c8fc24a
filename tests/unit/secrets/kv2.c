/*
 * Unit tests for KV version 2 (src/secrets/kv2.c): versions, check-and-set,
 * merge patch, delete/undelete/destroy, max_versions pruning, metadata,
 * custom_metadata limits, subkeys, delete_version_after, the v1->v2 upgrade
 * and concurrent writers to one key.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "secrets/kv_helpers.h"

/* POST data/<path> {"data": data, "options": {"cas": cas}} (cas < 0: none) */
static int put(struct kvt *t, const char *path, json_t *data, int cas)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "data/%s", path);
	json_t *body = json_pack("{s:o}", "data", data);
	if (cas >= 0)
		json_object_set_new(body, "options", json_pack("{s:i}", "cas", cas));
	return kvt_do(t, LOP_UPDATE, rel, body);
}

static int get(struct kvt *t, const char *path, int version)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "data/%s", path);
	json_t *q = json_object();
	if (version)
		json_object_set_new(q, "version", json_sprintf("%d", version)); /* query args are strings */
	return kvt_do(t, LOP_READ, rel, q);
}

static int versions_op(struct kvt *t, const char *op, const char *path, json_t *versions)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "%s/%s", op, path);
	return kvt_do(t, LOP_UPDATE, rel, json_pack("{s:o}", "versions", versions));
}

static void test_secrets_kv2__versions_increment(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(put(&t, "app", json_pack("{s:s}", "foo", "a"), -1), 0);
	assert_int_equal(kvt_int(&t, "version"), 1);
	assert_string_equal(kvt_str(&t, "deletion_time"), "");
	assert_true(json_is_false(kvt_get(&t, "destroyed")));
	assert_true(json_is_null(kvt_get(&t, "custom_metadata")));
	const char *ct = kvt_str(&t, "created_time");
	assert_int_equal(ct[4], '-');
	assert_int_equal(ct[strlen(ct) - 1], 'Z');
	assert_int_equal(put(&t, "app", json_pack("{s:s}", "foo", "b"), -1), 0);
	assert_int_equal(kvt_int(&t, "version"), 2);

	assert_int_equal(get(&t, "app", 0), 0);
	assert_string_equal(kvt_str(&t, "data/foo"), "b");
	assert_int_equal(kvt_int(&t, "metadata/version"), 2);
	assert_int_equal(get(&t, "app", 1), 0);
	assert_string_equal(kvt_str(&t, "data/foo"), "a");
	assert_int_equal(kvt_int(&t, "metadata/version"), 1);
	assert_int_equal(get(&t, "app", 3), VERR_NOT_FOUND);
	assert_int_equal(get(&t, "nope", 0), VERR_NOT_FOUND);
	assert_null(t.resp.data);
	assert_string_equal(t.err.msg, "");

	/* bad input */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "data/app", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "no data provided");
	assert_int_equal(kvt_do(&t, LOP_READ, "data/app", json_pack("{s:s}", "version", "x")),
			 VERR_INVALID);
	assert_int_equal(put(&t, "a/../b", json_pack("{s:s}", "foo", "a"), -1), VERR_INVALID);
	assert_int_equal(put(&t, "a//b", json_pack("{s:s}", "foo", "a"), -1), VERR_INVALID);
	assert_int_equal(put(&t, "dir/", json_pack("{s:s}", "foo", "a"), -1), VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_LIST, "metadata/./", NULL), VERR_INVALID);
	kvt_close(&t);
}

static void test_secrets_kv2__cas(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "1"), 0), 0); /* cas 0 on new: ok */
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "2"), 0), VERR_INVALID);
	assert_string_equal(t.err.msg, "check-and-set parameter did not match the current version");
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "2"), 5), VERR_INVALID);
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "2"), 1), 0);
	assert_int_equal(kvt_int(&t, "version"), 2);
	/* cas given as a string works too */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "data/k",
				json_pack("{s:{s:s},s:{s:s}}", "options", "cas", "2", "data", "a", "3")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "data/k",
				json_pack("{s:{s:s},s:{s:s}}", "options", "cas", "x", "data", "a", "3")),
			 VERR_INVALID);

	/* required by the key's metadata */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/k", json_pack("{s:b}", "cas_required", 1)), 0);
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "4"), -1), VERR_INVALID);
	assert_string_equal(t.err.msg, "check-and-set parameter required for this call");
	assert_int_equal(put(&t, "k", json_pack("{s:s}", "a", "4"), 3), 0);

	/* required by the mount's config */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:b}", "cas_required", 1)), 0);
	assert_int_equal(put(&t, "other", json_pack("{s:s}", "a", "1"), -1), VERR_INVALID);
	assert_string_equal(t.err.msg, "check-and-set parameter required for this call");
	assert_int_equal(put(&t, "other", json_pack("{s:s}", "a", "1"), 0), 0);
	kvt_close(&t);
}

static void test_secrets_kv2__patch(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	/* patch of a missing secret: 404 */
	assert_int_equal(kvt_do(&t, LOP_PATCH, "data/p", json_pack("{s:{s:s}}", "data", "a", "1")),
			 VERR_NOT_FOUND);
	assert_int_equal(put(&t, "p", json_pack("{s:s,s:{s:s,s:s},s:s}", "keep", "k", "nested", "x",
						 "1", "y", "2", "gone", "g"), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_PATCH, "data/p",
				json_pack("{s:{s:n,s:{s:n,s:s},s:s}}", "data", "gone", "nested", "x",
					  "z", "3", "new", "n")),
			 0);
	assert_int_equal(kvt_int(&t, "version"), 2);
	assert_int_equal(get(&t, "p", 0), 0);
	assert_string_equal(kvt_str(&t, "data/keep"), "k");
	assert_null(kvt_get(&t, "data/gone"));
	assert_null(kvt_get(&t, "data/nested/x"));
	assert_string_equal(kvt_str(&t, "data/nested/y"), "2");
	assert_string_equal(kvt_str(&t, "data/nested/z"), "3");
	assert_string_equal(kvt_str(&t, "data/new"), "n");
	/* version 1 untouched */
	assert_int_equal(get(&t, "p", 1), 0);
	assert_string_equal(kvt_str(&t, "data/gone"), "g");
	/* cas on patch */
	assert_int_equal(kvt_do(&t, LOP_PATCH, "data/p",
				json_pack("{s:{s:i},s:{s:s}}", "options", "cas", 1, "data", "a", "1")),
			 VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_PATCH, "data/p", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "no data provided");
	/* patch of a deleted latest version: 404 with its metadata */
	assert_int_equal(kvt_do(&t, LOP_DELETE, "data/p", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_PATCH, "data/p", json_pack("{s:{s:s}}", "data", "a", "1")),
			 VERR_NOT_FOUND);
	assert_int_equal(kvt_int(&t, "version"), 2);
	assert_true(strlen(kvt_str(&t, "deletion_time")) > 0);
	kvt_close(&t);
}

static void test_secrets_kv2__delete_undelete_destroy(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	for (int i = 1; i <= 3; i++)
		assert_int_equal(put(&t, "s", json_pack("{s:i}", "i", i), -1), 0);
	/* DELETE data/ soft-deletes the latest */
	assert_int_equal(kvt_do(&t, LOP_DELETE, "data/s", NULL), 0);
	assert_int_equal(get(&t, "s", 0), VERR_NOT_FOUND);
	assert_true(json_is_null(kvt_get(&t, "data")));
	assert_int_equal(kvt_int(&t, "metadata/version"), 3);
	assert_true(strlen(kvt_str(&t, "metadata/deletion_time")) > 0);
	assert_true(json_is_false(kvt_get(&t, "metadata/destroyed")));
	assert_int_equal(get(&t, "s", 2), 0);
	/* delete versions 1 and 2 */
	assert_int_equal(versions_op(&t, "delete", "s", json_pack("[i,i]", 1, 2)), 0);
	assert_int_equal(get(&t, "s", 1), VERR_NOT_FOUND);
	assert_int_equal(get(&t, "s", 2), VERR_NOT_FOUND);
	/* undelete 2 and 3 ("2,3" as Vault's comma form) */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "undelete/s", json_pack("{s:s}", "versions", "2,3")), 0);
	assert_int_equal(get(&t, "s", 2), 0);
	assert_int_equal(kvt_int(&t, "data/i"), 2);
	assert_string_equal(kvt_str(&t, "metadata/deletion_time"), "");
	assert_int_equal(get(&t, "s", 0), 0);
	assert_int_equal(kvt_int(&t, "data/i"), 3);
	/* destroy 2 (an older record) and 3 (the current one) */
	assert_int_equal(versions_op(&t, "destroy", "s", json_pack("[i,i]", 2, 3)), 0);
	assert_int_equal(get(&t, "s", 2), VERR_NOT_FOUND);
	assert_true(json_is_true(kvt_get(&t, "metadata/destroyed")));
	assert_int_equal(get(&t, "s", 3), VERR_NOT_FOUND);
	assert_true(json_is_true(kvt_get(&t, "metadata/destroyed")));
	/* undelete cannot bring destroyed data back */
	assert_int_equal(versions_op(&t, "undelete", "s", json_pack("[i]", 3)), 0);
	assert_int_equal(get(&t, "s", 3), VERR_NOT_FOUND);
	/* the destroyed data is gone from storage, not just hidden */
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(view_get(&t.view, "v/s@2", &buf, &len, NULL), 0);
	assert_null(buf);
	/* version 1 is still only soft-deleted */
	assert_int_equal(versions_op(&t, "undelete", "s", json_pack("[i]", 1)), 0);
	assert_int_equal(get(&t, "s", 1), 0);
	assert_int_equal(kvt_int(&t, "data/i"), 1);
	/* writing again after a destroyed current version works */
	assert_int_equal(put(&t, "s", json_pack("{s:i}", "i", 4), -1), 0);
	assert_int_equal(kvt_int(&t, "version"), 4);
	/* validation */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "delete/s", json_object()), VERR_INVALID);
	assert_string_equal(t.err.msg, "No version number provided");
	assert_int_equal(versions_op(&t, "destroy", "s", json_pack("[s]", "x")), VERR_INVALID);
	/* unknown secret: 204 */
	assert_int_equal(versions_op(&t, "delete", "none", json_pack("[i]", 1)), 0);
	kvt_close(&t);
}

static void test_secrets_kv2__max_versions_pruning(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	for (int i = 1; i <= 12; i++)
		assert_int_equal(put(&t, "m", json_pack("{s:i}", "i", i), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/m", NULL), 0);
	assert_int_equal(kvt_int(&t, "current_version"), 12);
	assert_int_equal(kvt_int(&t, "oldest_version"), 3);
	assert_int_equal(json_object_size(kvt_get(&t, "versions")), 10);
	assert_null(kvt_get(&t, "versions/2"));
	assert_non_null(kvt_get(&t, "versions/3"));
	assert_int_equal(get(&t, "m", 1), VERR_NOT_FOUND);
	assert_null(t.resp.data); /* pruned: plain 404, no metadata */
	assert_int_equal(get(&t, "m", 3), 0);
	assert_int_equal(kvt_int(&t, "data/i"), 3);
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(view_get(&t.view, "v/m@1", &buf, &len, NULL), 0);
	assert_null(buf);

	/* a key limit of 2 (greater of key and mount wins; mount unset) */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/few", json_pack("{s:i}", "max_versions", 2)), 0);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(put(&t, "few", json_pack("{s:i}", "i", i), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/few", NULL), 0);
	assert_int_equal(kvt_int(&t, "oldest_version"), 3);
	assert_int_equal(json_object_size(kvt_get(&t, "versions")), 2);
	assert_int_equal(kvt_int(&t, "max_versions"), 2);

	/* mount config */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:i}", "max_versions", 3)), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "config", NULL), 0);
	assert_int_equal(kvt_int(&t, "max_versions"), 3);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(put(&t, "cfg", json_pack("{s:i}", "i", i), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/cfg", NULL), 0);
	assert_int_equal(json_object_size(kvt_get(&t, "versions")), 3);
	assert_int_equal(kvt_int(&t, "oldest_version"), 3);
	kvt_close(&t);
}

static void test_secrets_kv2__metadata(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(kvt_do(&t, LOP_LIST, "metadata/", NULL), VERR_NOT_FOUND);
	assert_int_equal(put(&t, "foo", json_pack("{s:s}", "a", "1"), -1), 0);
	assert_int_equal(put(&t, "foo/bar", json_pack("{s:s}", "a", "1"), -1), 0);
	assert_int_equal(put(&t, "foo/deep/x", json_pack("{s:s}", "a", "1"), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_LIST, "metadata/", NULL), 0);
	json_t *keys = kvt_get(&t, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "foo");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "foo/");
	assert_int_equal(kvt_do(&t, LOP_LIST, "metadata/foo", NULL), 0);
	keys = kvt_get(&t, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "bar");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "deep/");

	/* write metadata */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/foo",
				json_pack("{s:i,s:s,s:{s:s,s:i}}", "max_versions", 5,
					  "delete_version_after", "3h25m19s", "custom_metadata",
					  "owner", "jdoe", "n", 123)),
			 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/foo", NULL), 0);
	assert_int_equal(kvt_int(&t, "max_versions"), 5);
	assert_string_equal(kvt_str(&t, "delete_version_after"), "3h25m19s");
	assert_string_equal(kvt_str(&t, "custom_metadata/owner"), "jdoe");
	assert_string_equal(kvt_str(&t, "custom_metadata/n"), "123");
	assert_int_equal(kvt_int(&t, "current_version"), 1);
	assert_int_equal(kvt_int(&t, "oldest_version"), 0);
	assert_true(json_is_false(kvt_get(&t, "cas_required")));
	assert_string_equal(kvt_str(&t, "versions/1/deletion_time"), "");
	assert_true(strlen(kvt_str(&t, "created_time")) > 20);
	assert_true(strlen(kvt_str(&t, "updated_time")) > 20);
	/* created_time stays the first version's, updated_time follows writes */
	char created[64];
	snprintf(created, sizeof(created), "%s", kvt_str(&t, "created_time"));
	assert_string_equal(created, kvt_str(&t, "versions/1/created_time"));
	assert_string_equal(kvt_str(&t, "updated_time"), kvt_str(&t, "versions/1/created_time"));
	assert_int_equal(put(&t, "foo", json_pack("{s:s}", "a", "1b"), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/foo", NULL), 0);
	assert_string_equal(kvt_str(&t, "created_time"), created);
	assert_string_equal(kvt_str(&t, "updated_time"), kvt_str(&t, "versions/2/created_time"));
	assert_int_equal(versions_op(&t, "destroy", "foo", json_pack("[i]", 1)), 0);
	/* custom_metadata shows up in data reads too */
	assert_int_equal(get(&t, "foo", 0), 0);
	assert_string_equal(kvt_str(&t, "metadata/custom_metadata/owner"), "jdoe");

	/* patch: merges custom_metadata (null removes), keeps the rest */
	assert_int_equal(kvt_do(&t, LOP_PATCH, "metadata/foo",
				json_pack("{s:{s:n,s:s}}", "custom_metadata", "n", "team", "x")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/foo", NULL), 0);
	assert_null(kvt_get(&t, "custom_metadata/n"));
	assert_string_equal(kvt_str(&t, "custom_metadata/owner"), "jdoe");
	assert_string_equal(kvt_str(&t, "custom_metadata/team"), "x");
	assert_int_equal(kvt_int(&t, "max_versions"), 5);
	assert_int_equal(kvt_do(&t, LOP_PATCH, "metadata/none", json_pack("{s:i}", "max_versions", 1)),
			 VERR_NOT_FOUND);

	/* metadata for a key with no data yet */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/empty", json_pack("{s:b}", "cas_required", 1)), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/empty", NULL), 0);
	assert_int_equal(kvt_int(&t, "current_version"), 0);
	assert_int_equal(json_object_size(kvt_get(&t, "versions")), 0);
	assert_int_equal(get(&t, "empty", 0), VERR_NOT_FOUND);

	/* delete metadata: every version gone */
	assert_int_equal(put(&t, "foo", json_pack("{s:s}", "a", "2"), -1), 0);
	assert_int_equal(kvt_int(&t, "version"), 3);
	assert_int_equal(kvt_do(&t, LOP_DELETE, "metadata/foo", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/foo", NULL), VERR_NOT_FOUND);
	assert_int_equal(get(&t, "foo", 1), VERR_NOT_FOUND);
	/* version 1's record (moved out when version 2 was written) is gone */
	char **lk = NULL;
	size_t n = 0;
	assert_int_equal(view_list(&t.view, "v/", &lk, &n, NULL), 0);
	assert_int_equal(n, 0);
	physical_list_free(lk, n);
	/* the secret can be recreated from version 1 */
	assert_int_equal(put(&t, "foo", json_pack("{s:s}", "a", "3"), 0), 0);
	assert_int_equal(kvt_int(&t, "version"), 1);
	kvt_close(&t);
}

static void test_secrets_kv2__custom_metadata_limits(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	json_t *cm = json_object();
	for (int i = 0; i < 65; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(cm, k, json_string("v"));
	}
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/x", json_pack("{s:O}", "custom_metadata", cm)),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "at most 64 keys"));
	json_object_del(cm, "k64");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/x", json_pack("{s:O}", "custom_metadata", cm)), 0);
	/* a patch that would make 65 keys is refused too */
	assert_int_equal(kvt_do(&t, LOP_PATCH, "metadata/x",
				json_pack("{s:{s:s}}", "custom_metadata", "extra", "v")),
			 VERR_INVALID);
	json_decref(cm);

	char longk[130], longv[514];
	memset(longk, 'k', 129);
	longk[129] = '\0';
	memset(longv, 'v', 513);
	longv[513] = '\0';
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", longk, "v")),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "len(key) <= 128"));
	longk[128] = '\0';
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", longk, "v")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", "k", longv)),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "len(value) <= 512"));
	longv[512] = '\0';
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", "k", longv)),
			 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", "k", "")),
			 VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:s}}", "custom_metadata", "k", "a\nb")),
			 VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/y",
				json_pack("{s:{s:[]}}", "custom_metadata", "k")),
			 VERR_INVALID);
	kvt_close(&t);
}

static void test_secrets_kv2__subkeys(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(put(&t, "sk", json_pack("{s:s,s:{s:s,s:{s:i}},s:{}}", "foo", "abc", "bar",
						 "baz", "def", "deep", "x", 1, "quux"), -1), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "subkeys/sk", NULL), 0);
	assert_true(json_is_null(kvt_get(&t, "subkeys/foo")));
	assert_true(json_is_null(kvt_get(&t, "subkeys/bar/baz")));
	assert_true(json_is_null(kvt_get(&t, "subkeys/bar/deep/x")));
	assert_true(json_is_null(kvt_get(&t, "subkeys/quux")));
	assert_int_equal(kvt_int(&t, "metadata/version"), 1);
	/* no value leaks anywhere in the response */
	char *dump = json_dumps(t.resp.data, 0);
	assert_null(strstr(dump, "abc"));
	assert_null(strstr(dump, "def"));
	free(dump);
	assert_int_equal(kvt_do(&t, LOP_READ, "subkeys/sk", json_pack("{s:s}", "depth", "1")), 0);
	assert_true(json_is_null(kvt_get(&t, "subkeys/bar")));
	assert_int_equal(kvt_do(&t, LOP_READ, "subkeys/sk", json_pack("{s:s}", "depth", "2")), 0);
	assert_true(json_is_null(kvt_get(&t, "subkeys/bar/deep")));
	assert_int_equal(kvt_do(&t, LOP_READ, "subkeys/none", NULL), VERR_NOT_FOUND);
	assert_int_equal(kvt_do(&t, LOP_DELETE, "data/sk", NULL), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "subkeys/sk", NULL), VERR_NOT_FOUND);
	assert_true(json_is_null(kvt_get(&t, "subkeys")));
	assert_int_equal(kvt_int(&t, "metadata/version"), 1);
	kvt_close(&t);
}

static void test_secrets_kv2__delete_version_after(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:s}", "delete_version_after", "1s")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "config", NULL), 0);
	assert_string_equal(kvt_str(&t, "delete_version_after"), "1s");
	assert_int_equal(put(&t, "d", json_pack("{s:s}", "a", "1"), -1), 0);
	assert_true(strlen(kvt_str(&t, "deletion_time")) > 0); /* scheduled */
	assert_int_equal(get(&t, "d", 0), 0);                  /* not yet */
	usleep(1100 * 1000);
	assert_int_equal(get(&t, "d", 0), VERR_NOT_FOUND);
	assert_true(strlen(kvt_str(&t, "metadata/deletion_time")) > 0);
	/* undelete re-arms the timer from now */
	assert_int_equal(versions_op(&t, "undelete", "d", json_pack("[i]", 1)), 0);
	assert_int_equal(get(&t, "d", 0), 0);
	/* a negative mount value disables it */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:s}", "delete_version_after", "-1s")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "config", NULL), 0);
	assert_string_equal(kvt_str(&t, "delete_version_after"), "-1s");
	assert_int_equal(put(&t, "d", json_pack("{s:s}", "a", "2"), -1), 0);
	assert_string_equal(kvt_str(&t, "deletion_time"), "");
	/* the key's own setting, with the mount's cleared */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:i}", "delete_version_after", 0)), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "metadata/e", json_pack("{s:s}", "delete_version_after", "1h")), 0);
	assert_int_equal(put(&t, "e", json_pack("{s:s}", "a", "1"), -1), 0);
	assert_true(strlen(kvt_str(&t, "deletion_time")) > 0);
	assert_int_equal(get(&t, "e", 0), 0);
	kvt_close(&t);
}

static void test_secrets_kv2__upgrade_from_v1(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "a", json_pack("{s:s}", "x", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "dir/b", json_pack("{s:s,s:s}", "y", "2", "ttl", "1h")), 0);
	json_t *opts = json_pack("{s:s}", "version", "2");
	kvt_reinit(&t, opts);
	assert_int_equal(get(&t, "a", 1), 0);
	assert_string_equal(kvt_str(&t, "data/x"), "1");
	assert_int_equal(get(&t, "dir/b", 0), 0);
	assert_string_equal(kvt_str(&t, "data/y"), "2");
	assert_int_equal(kvt_int(&t, "metadata/version"), 1);
	assert_int_equal(kvt_do(&t, LOP_LIST, "metadata/", NULL), 0);
	assert_int_equal(json_array_size(kvt_get(&t, "keys")), 2);
	/* the v1 keys are gone, and re-initialising again is a no-op */
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(view_list(&t.view, "k/", &keys, &n, NULL), 0);
	assert_int_equal(n, 0);
	physical_list_free(keys, n);
	assert_int_equal(put(&t, "a", json_pack("{s:s}", "x", "2"), 1), 0);
	kvt_reinit(&t, opts);
	assert_int_equal(get(&t, "a", 0), 0);
	assert_string_equal(kvt_str(&t, "data/x"), "2");
	assert_int_equal(kvt_int(&t, "metadata/version"), 2);
	json_decref(opts);
	kvt_close(&t);
}

/* A crash after the conversion was marked complete but before every v1 key
 * was removed: the next init finishes the job without touching v2 data. */
static void test_secrets_kv2__upgrade_resumes(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "a", json_pack("{s:s}", "x", "1")), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "b", json_pack("{s:s}", "x", "2")), 0);
	json_t *opts = json_pack("{s:s}", "version", "2");
	kvt_reinit(&t, opts);
	/* simulate: v1 key "b" still present with a stale value, marker set */
	assert_int_equal(put(&t, "b", json_pack("{s:s}", "x", "new"), -1), 0);
	const char *stale = "{\"x\":\"stale\"}";
	assert_int_equal(view_put(&t.view, "k/b", (const uint8_t *)stale, strlen(stale), NULL), 0);
	assert_int_equal(view_put(&t.view, "upgrade", (const uint8_t *)"{}", 2, NULL), 0);
	kvt_reinit(&t, opts);
	assert_int_equal(get(&t, "b", 0), 0);
	assert_string_equal(kvt_str(&t, "data/x"), "new");
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(view_get(&t.view, "k/b", &buf, &len, NULL), 0);
	assert_null(buf);
	assert_int_equal(view_get(&t.view, "upgrade", &buf, &len, NULL), 0);
	assert_null(buf);
	json_decref(opts);
	kvt_close(&t);
}

struct writer_arg {
	struct kvt *t;
	int count;
	int64_t *seen; /* version -> times returned */
	pthread_mutex_t *mu;
	int failures;
};

static void *writer(void *p)
{
	struct writer_arg *a = p;
	for (int i = 0; i < a->count; i++) {
		struct logical_response resp = {0};
		struct verr err = {0};
		json_t *body = json_pack("{s:{s:i}}", "data", "i", i);
		struct logical_request req = {.op = LOP_UPDATE, .rel_path = "data/hot", .data = body,
					      .storage = &a->t->view, .backend = a->t->inst};
		int rc = framework_handle(a->t->ops->paths(a->t->inst), &req, &resp, &err);
		json_decref(body);
		if (rc) {
			a->failures++;
		} else {
			int64_t v = json_integer_value(json_object_get(resp.data, "version"));
			pthread_mutex_lock(a->mu);
			if (v >= 1 && v <= 800)
				a->seen[v]++;
			else
				a->failures++;
			pthread_mutex_unlock(a->mu);
		}
		logical_response_reset(&resp);
	}
	return NULL;
}

static void test_secrets_kv2__concurrent_writers(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	int64_t seen[801] = {0};
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_t th[8];
	struct writer_arg args[8];
	for (int i = 0; i < 8; i++) {
		args[i] = (struct writer_arg){.t = &t, .count = 100, .seen = seen, .mu = &mu};
		assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	for (int v = 1; v <= 800; v++)
		assert_int_equal(seen[v], 1);
	assert_int_equal(kvt_do(&t, LOP_READ, "metadata/hot", NULL), 0);
	assert_int_equal(kvt_int(&t, "current_version"), 800);
	assert_int_equal(json_object_size(kvt_get(&t, "versions")), 10);
	/* pruning kept storage to the last 10 versions */
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(view_list(&t.view, "v/", &keys, &n, NULL), 0);
	assert_int_equal(n, 9); /* the 10th (current) lives in the metadata record */
	physical_list_free(keys, n);
	kvt_close(&t);
}

static void test_secrets_kv2__config_defaults(void **state)
{
	struct kvt t;
	kvt_open(&t, &kv_backend_ops, "2");
	assert_int_equal(kvt_do(&t, LOP_READ, "config", NULL), 0);
	assert_int_equal(kvt_int(&t, "max_versions"), 0);
	assert_true(json_is_false(kvt_get(&t, "cas_required")));
	assert_string_equal(kvt_str(&t, "delete_version_after"), "0s");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config",
				json_pack("{s:i,s:s}", "max_versions", 4, "delete_version_after", "1h")),
			 0);
	/* survives re-initialisation (read back from storage) */
	json_t *opts = json_pack("{s:i}", "version", 2);
	kvt_reinit(&t, opts);
	json_decref(opts);
	assert_int_equal(kvt_do(&t, LOP_READ, "config", NULL), 0);
	assert_int_equal(kvt_int(&t, "max_versions"), 4);
	assert_string_equal(kvt_str(&t, "delete_version_after"), "1h0m0s");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config", json_pack("{s:i}", "max_versions", -1)),
			 VERR_INVALID);
	kvt_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_kv2__versions_increment),
		cmocka_unit_test(test_secrets_kv2__cas),
		cmocka_unit_test(test_secrets_kv2__patch),
		cmocka_unit_test(test_secrets_kv2__delete_undelete_destroy),
		cmocka_unit_test(test_secrets_kv2__max_versions_pruning),
		cmocka_unit_test(test_secrets_kv2__metadata),
		cmocka_unit_test(test_secrets_kv2__custom_metadata_limits),
		cmocka_unit_test(test_secrets_kv2__subkeys),
		cmocka_unit_test(test_secrets_kv2__delete_version_after),
		cmocka_unit_test(test_secrets_kv2__upgrade_from_v1),
		cmocka_unit_test(test_secrets_kv2__upgrade_resumes),
		cmocka_unit_test(test_secrets_kv2__concurrent_writers),
		cmocka_unit_test(test_secrets_kv2__config_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
