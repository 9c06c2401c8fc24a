/*
 * Unit tests for batch tokens in the token store (src/core/token_store.c)
 * over the inmem backend with a fake clock: nothing is written per token,
 * the entry round-trips through the sealed blob, expiry, the parent rule,
 * tampering and another store's key, and the key surviving a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/token.h"

static int64_t fake_now = 1700000000;
static int64_t clock_fn(void *ctx)
{
	return fake_now;
}

struct fx {
	struct physical *phys;
	struct storage_view view;
	struct token_store *ts;
	struct token_store_opts opts;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct verr err = {0};
	assert_int_equal(physical_inmem_new(&f->phys, NULL, &err), 0);
	storage_view_init(&f->view, f->phys, "sys/token/");
	f->opts = (struct token_store_opts){.now = clock_fn};
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	fake_now = 1700000000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	token_store_free(f->ts);
	physical_close(f->phys);
	free(f);
	return 0;
}

static int count_key(void *ctx, const char *key, struct verr *err)
{
	(*(int *)ctx)++;
	return 0;
}

static int stored_keys(struct fx *f)
{
	int n = 0;
	struct verr err = {0};
	assert_int_equal(view_walk(&f->view, "", count_key, &n, &err), 0);
	return n;
}

static char *issue_batch(struct fx *f, const struct token_entry *parent, int64_t ttl,
			 struct token_entry **out)
{
	json_t *pol = json_pack("[s,s]", "reader", "default");
	json_t *meta = json_pack("{s:s}", "team", "ops");
	struct token_params p = {.policies = pol, .meta = meta, .ttl = ttl, .parent = parent,
				 .type = "batch", .display_name = "token-ci", .role = "r1"};
	char *raw = NULL;
	struct verr err = {0};
	int rc = token_store_issue(f->ts, &p, &raw, out, &err);
	if (rc)
		print_error("issue: %s\n", err.msg);
	assert_int_equal(rc, 0);
	json_decref(pol);
	json_decref(meta);
	return raw;
}

static int lookup_rc(struct token_store *ts, const char *raw)
{
	struct token_entry *te = NULL;
	struct verr err = {0};
	int rc = token_store_lookup(ts, raw, &te, &err);
	token_entry_free(te);
	return rc;
}

static void test_core_token_batch__round_trip_nothing_stored(void **state)
{
	struct fx *f = *state;
	int before = stored_keys(f);
	struct token_entry *te = NULL;
	char *raw = issue_batch(f, NULL, 600, &te);
	assert_int_equal(stored_keys(f), before); /* no entry, no accessor, no index */
	assert_true(token_is_batch(raw));
	assert_string_equal(te->type, "batch");
	assert_string_equal(te->accessor, "");
	assert_string_equal(te->hash, "");
	assert_false(te->renewable);
	token_entry_free(te);

	struct verr err = {0};
	assert_int_equal(token_store_lookup(f->ts, raw, &te, &err), 0);
	assert_string_equal(te->type, "batch");
	assert_string_equal(te->display_name, "token-ci");
	assert_string_equal(te->role, "r1");
	assert_string_equal(json_string_value(json_object_get(te->meta, "team")), "ops");
	assert_int_equal(json_array_size(te->policies), 2);
	assert_int_equal(te->ttl, 600);
	assert_int_equal(te->expire_time, fake_now + 600);
	assert_true(te->orphan);
	token_entry_free(te);

	/* expired at creation + ttl */
	fake_now += 599;
	assert_int_equal(lookup_rc(f->ts, raw), 0);
	fake_now += 1;
	assert_int_equal(lookup_rc(f->ts, raw), VERR_DENIED);
	token_free_raw(raw);
}

static void test_core_token_batch__refusals(void **state)
{
	struct fx *f = *state;
	json_t *root = json_pack("[s]", "root");
	struct token_params p = {.policies = root, .type = "batch"};
	char *raw = NULL;
	struct verr err = {0};
	assert_int_equal(token_store_issue(f->ts, &p, &raw, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "batch tokens cannot be root tokens");
	json_decref(root);
	struct token_params q = {.type = "batch", .num_uses = 3};
	assert_int_equal(token_store_issue(f->ts, &q, &raw, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "batch tokens cannot have \"num_uses\" set");
	struct token_params r = {.type = "batch", .period = 60};
	assert_int_equal(token_store_issue(f->ts, &r, &raw, NULL, &err), VERR_INVALID);
	assert_null(raw);
}

static void test_core_token_batch__parent_rule(void **state)
{
	struct fx *f = *state;
	json_t *pol = json_pack("[s]", "default");
	struct token_params pp = {.policies = pol, .ttl = 3600, .renewable = true};
	char *praw = NULL;
	struct token_entry *parent = NULL;
	struct verr err = {0};
	assert_int_equal(token_store_issue(f->ts, &pp, &praw, &parent, &err), 0);
	json_decref(pol);
	char *child = issue_batch(f, parent, 600, NULL);
	struct token_entry *te = NULL;
	assert_int_equal(token_store_lookup(f->ts, child, &te, &err), 0);
	assert_false(te->orphan);
	assert_string_equal(te->parent_hash, parent->hash);
	token_entry_free(te);
	/* the parent goes: the batch child stops working */
	assert_int_equal(token_store_revoke(f->ts, parent->hash, false, &err), 0);
	assert_int_equal(lookup_rc(f->ts, child), VERR_DENIED);
	token_entry_free(parent);
	token_free_raw(praw);
	token_free_raw(child);
}

static void test_core_token_batch__tampered_and_foreign(void **state)
{
	struct fx *f = *state;
	char *raw = issue_batch(f, NULL, 600, NULL);
	size_t n = strlen(raw);
	/* every position altered: authentication fails */
	for (size_t i = 2; i < n; i++) {
		char *bad = strdup(raw);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		assert_int_equal(lookup_rc(f->ts, bad), VERR_DENIED);
		free(bad);
	}
	char *cut = strndup(raw, n - 1);
	assert_int_equal(lookup_rc(f->ts, cut), VERR_DENIED);
	free(cut);
	assert_int_equal(lookup_rc(f->ts, "b."), VERR_DENIED);
	assert_int_equal(lookup_rc(f->ts, "b.=+/"), VERR_DENIED);

	/* another store has another key */
	struct physical *other = NULL;
	struct storage_view ov;
	struct token_store *ots = NULL;
	struct verr err = {0};
	assert_int_equal(physical_inmem_new(&other, NULL, &err), 0);
	storage_view_init(&ov, other, "sys/token/");
	assert_int_equal(token_store_new(&ots, &ov, &f->opts, &err), 0);
	assert_int_equal(lookup_rc(ots, raw), VERR_DENIED);
	token_store_free(ots);
	physical_close(other);

	/* the same store reopened keeps its key */
	token_store_free(f->ts);
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	assert_int_equal(lookup_rc(f->ts, raw), 0);
	token_free_raw(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_token_batch__round_trip_nothing_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_batch__refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_batch__parent_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_batch__tampered_and_foreign, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
