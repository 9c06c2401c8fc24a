/*
 * semantics.h - the storage contract of physical.h as cmocka tests, shared
 * by every backend's test file (tests/unit/physical/inmem.c, file.c ...).
 *
 * Each test takes a freshly opened, empty backend as `*state` (the including
 * file's setup/teardown create and close it) and checks only what a caller of
 * physical_*() can observe. SEMANTICS_TESTS(setup, teardown) expands to the
 * cmocka_unit_test_setup_teardown entries.
 */
#ifndef COFFER_TESTS_PHYSICAL_SEMANTICS_H
#define COFFER_TESTS_PHYSICAL_SEMANTICS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "physical/physical.h"

static void sem_put(struct physical *p, const char *key, const char *val)
{
	struct verr err = {0};
	int rc = physical_put(p, key, (const uint8_t *)val, strlen(val), &err);
	if (rc)
		fail_msg("put %s: %s", key, err.msg);
}

/* Assert key holds exactly val (NULL: absent). */
static void sem_expect(struct physical *p, const char *key, const char *val)
{
	struct verr err = {0};
	uint8_t *out = NULL;
	size_t len = 0;
	int rc = physical_get(p, key, &out, &len, &err);
	if (rc)
		fail_msg("get %s: %s", key, err.msg);
	if (!val) {
		if (out)
			fail_msg("get %s: expected absent, got %zu bytes", key, len);
		return;
	}
	if (!out)
		fail_msg("get %s: expected a value, got none", key);
	assert_int_equal(len, strlen(val));
	assert_memory_equal(out, val, len);
	free(out);
}

/* Assert list(prefix) is exactly the NULL-terminated `want`. */
static void sem_expect_list(struct physical *p, const char *prefix, const char *const *want)
{
	struct verr err = {0};
	char **keys = NULL;
	size_t n = 0, nw = 0;
	int rc = physical_list(p, prefix, &keys, &n, &err);
	if (rc)
		fail_msg("list %s: %s", prefix, err.msg);
	while (want[nw])
		nw++;
	if (n != nw) {
		for (size_t i = 0; i < n; i++)
			print_message("  got[%zu] = %s\n", i, keys[i]);
		fail_msg("list '%s': %zu entries, want %zu", prefix, n, nw);
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(keys[i], want[i]);
	physical_list_free(keys, n);
}

static void test_physical_semantics__put_get_overwrite(void **state)
{
	struct physical *p = *state;
	sem_expect(p, "a", NULL);
	sem_put(p, "a", "one");
	sem_expect(p, "a", "one");
	sem_put(p, "a", "a longer second value");
	sem_expect(p, "a", "a longer second value");
	sem_put(p, "a", "3");
	sem_expect(p, "a", "3");
	sem_expect(p, "b", NULL);
	sem_expect(p, "a/", NULL);
}

static void test_physical_semantics__empty_and_binary_values(void **state)
{
	struct physical *p = *state;
	struct verr err = {0};
	uint8_t *out = NULL;
	size_t len = 99;
	assert_int_equal(physical_put(p, "empty", (const uint8_t *)"", 0, &err), 0);
	assert_int_equal(physical_get(p, "empty", &out, &len, &err), 0);
	assert_non_null(out); /* present, zero length: distinct from absent */
	assert_int_equal(len, 0);
	free(out);
	uint8_t bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (uint8_t)(255 - i);
	assert_int_equal(physical_put(p, "bin", bin, sizeof(bin), &err), 0);
	assert_int_equal(physical_get(p, "bin", &out, &len, &err), 0);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(out, bin, sizeof(bin));
	free(out);
}

static void test_physical_semantics__delete(void **state)
{
	struct physical *p = *state;
	struct verr err = {0};
	assert_int_equal(physical_delete(p, "missing", &err), 0);
	sem_put(p, "x/y", "1");
	sem_put(p, "x/z", "2");
	assert_int_equal(physical_delete(p, "x/y", &err), 0);
	sem_expect(p, "x/y", NULL);
	sem_expect(p, "x/z", "2");
	assert_int_equal(physical_delete(p, "x/y", &err), 0); /* twice is fine */
	assert_int_equal(physical_delete(p, "x", &err), 0);   /* a folder, not a key */
	sem_expect(p, "x/z", "2");
	sem_put(p, "x/y", "back");
	sem_expect(p, "x/y", "back");
}

static void test_physical_semantics__list_nested(void **state)
{
	struct physical *p = *state;
	const char *keys[] = {"foo", "foo/bar", "foo/baz/qux", "foo/baz/quux", "foo-x",
			      "zz/top/deep/er", "a", NULL};
	for (int i = 0; keys[i]; i++)
		sem_put(p, keys[i], keys[i]);
	sem_expect_list(p, "", (const char *const[]){"a", "foo", "foo-x", "foo/", "zz/", NULL});
	sem_expect_list(p, "foo/", (const char *const[]){"bar", "baz/", NULL});
	sem_expect_list(p, "foo/baz/", (const char *const[]){"quux", "qux", NULL});
	sem_expect_list(p, "zz/", (const char *const[]){"top/", NULL});
	sem_expect_list(p, "nope/", (const char *const[]){NULL});
	struct verr err = {0};
	assert_int_equal(physical_delete(p, "foo/baz/qux", &err), 0);
	assert_int_equal(physical_delete(p, "foo/baz/quux", &err), 0);
	sem_expect_list(p, "foo/", (const char *const[]){"bar", NULL});
	assert_int_equal(physical_delete(p, "foo/bar", &err), 0);
	/* the folder disappears with its last key; the leaf "foo" stays */
	sem_expect_list(p, "", (const char *const[]){"a", "foo", "foo-x", "zz/", NULL});
}

static void test_physical_semantics__odd_keys(void **state)
{
	struct physical *p = *state;
	const char *keys[] = {"with space/key one", "unicode/ключ/秘密", "pct/%2F%41%", "a//b",
			      "dots/../x", "tab\there", "trailing.", NULL};
	for (int i = 0; keys[i]; i++)
		sem_put(p, keys[i], keys[i]);
	for (int i = 0; keys[i]; i++)
		sem_expect(p, keys[i], keys[i]);
	sem_expect_list(p, "unicode/", (const char *const[]){"ключ/", NULL});
	sem_expect_list(p, "unicode/ключ/", (const char *const[]){"秘密", NULL});
	sem_expect_list(p, "with space/", (const char *const[]){"key one", NULL});
	sem_expect_list(p, "pct/", (const char *const[]){"%2F%41%", NULL});
	sem_expect_list(p, "a/", (const char *const[]){"/", NULL});
	char *longkey = malloc(PHYSICAL_MAX_KEY + 1);
	assert_non_null(longkey);
	memset(longkey, 'k', PHYSICAL_MAX_KEY);
	longkey[PHYSICAL_MAX_KEY] = '\0';
	longkey[10] = '/';
	sem_put(p, longkey, "long");
	sem_expect(p, longkey, "long");
	free(longkey);
}

static void test_physical_semantics__max_entry_size(void **state)
{
	struct physical *p = *state;
	struct verr err = {0};
	size_t max = p->max_entry_size;
	uint8_t *big = malloc(max + 1);
	assert_non_null(big);
	for (size_t i = 0; i <= max; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(physical_put(p, "big/exact", big, max, &err), 0);
	int rc = physical_put(p, "big/over", big, max + 1, &err);
	assert_int_equal(rc, VERR_TOO_LARGE);
	assert_int_equal(err.code, VERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "max_entry_size"));
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(physical_get(p, "big/exact", &out, &len, &err), 0);
	assert_int_equal(len, max);
	assert_memory_equal(out, big, max);
	free(out);
	sem_expect(p, "big/over", NULL);
	free(big);
}

static int sem_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_physical_semantics__many_keys_sorted(void **state)
{
	struct physical *p = *state;
	enum { N = 600 };
	char *want[N + 1];
	char key[64];
	for (int i = 0; i < N; i++) {
		/* scrambled insertion order, mixed leaf/folder names */
		int j = (i * 397) % N;
		snprintf(key, sizeof(key), "m/%x%s", j * 2654435761u, j % 3 ? "" : "/leaf");
		sem_put(p, key, key);
		snprintf(key, sizeof(key), "%x%s", j * 2654435761u, j % 3 ? "" : "/");
		want[i] = strdup(key);
	}
	qsort(want, N, sizeof(want[0]), sem_strcmp);
	want[N] = NULL;
	sem_expect_list(p, "m/", (const char *const *)want);
	for (int i = 0; i < N; i++)
		free(want[i]);
}

/* Transactions (when the backend has them): all applied in order, later ops
 * on a key win; a transaction that fails applies nothing. */
static void test_physical_semantics__txn(void **state)
{
	struct physical *p = *state;
	struct verr err = {0};
	sem_put(p, "t/gone", "x");
	sem_put(p, "t/keep", "k");
	struct physical_txn_op ops[] = {
		{PHYSICAL_TXN_PUT, "t/a", (const uint8_t *)"1", 1},
		{PHYSICAL_TXN_DELETE, "t/gone", NULL, 0},
		{PHYSICAL_TXN_PUT, "t/b/c", (const uint8_t *)"2", 1},
		{PHYSICAL_TXN_PUT, "t/a", (const uint8_t *)"3", 1},
	};
	int rc = physical_txn(p, ops, 4, &err);
	if (rc == VERR_UNSUPPORTED)
		skip();
	assert_int_equal(rc, 0);
	sem_expect(p, "t/a", "3");
	sem_expect(p, "t/gone", NULL);
	sem_expect(p, "t/b/c", "2");
	sem_expect(p, "t/keep", "k");
	/* one op too large: nothing of the transaction lands */
	size_t big = p->max_entry_size + 1;
	uint8_t *v = calloc(1, big);
	struct physical_txn_op bad[] = {
		{PHYSICAL_TXN_PUT, "t/new", (const uint8_t *)"n", 1},
		{PHYSICAL_TXN_DELETE, "t/keep", NULL, 0},
		{PHYSICAL_TXN_PUT, "t/huge", v, big},
	};
	assert_int_equal(physical_txn(p, bad, 3, &err), VERR_TOO_LARGE);
	free(v);
	sem_expect(p, "t/new", NULL);
	sem_expect(p, "t/keep", "k");
	sem_expect(p, "t/huge", NULL);
}

#define SEMANTICS_TESTS(setup, teardown)                                                   \
	cmocka_unit_test_setup_teardown(test_physical_semantics__put_get_overwrite, setup,  \
					teardown),                                         \
		cmocka_unit_test_setup_teardown(test_physical_semantics__empty_and_binary_values, \
						setup, teardown),                          \
		cmocka_unit_test_setup_teardown(test_physical_semantics__delete, setup,    \
						teardown),                                 \
		cmocka_unit_test_setup_teardown(test_physical_semantics__list_nested, setup, \
						teardown),                                 \
		cmocka_unit_test_setup_teardown(test_physical_semantics__odd_keys, setup,  \
						teardown),                                 \
		cmocka_unit_test_setup_teardown(test_physical_semantics__max_entry_size, setup, \
						teardown),                                 \
		cmocka_unit_test_setup_teardown(test_physical_semantics__txn, setup, teardown), \
		cmocka_unit_test_setup_teardown(test_physical_semantics__many_keys_sorted, \
						setup, teardown)

#endif
