/*
 * Unit tests for the token store (src/core/token_store.c) over the inmem
 * physical backend, with a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/hmac.h>

#include "core/token.h"

static int64_t fake_now = 1700000000;
static int64_t clock_fn(void *ctx)
{
	return fake_now;
}

static int revoked_count;
static void on_revoke(void *ctx, const struct token_entry *te)
{
	revoked_count++;
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
	f->opts = (struct token_store_opts){.now = clock_fn, .on_revoke = on_revoke};
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	fake_now = 1700000000;
	revoked_count = 0;
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

/* Issue a token with the given policies (JSON text) and optional parent. */
static char *issue(struct fx *f, const char *pol, const struct token_entry *parent,
		   struct token_entry **out)
{
	json_t *p = json_loads(pol, 0, NULL);
	struct token_params tp = {.policies = p, .parent = parent, .renewable = true};
	char *raw = NULL;
	struct verr err = {0};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, out, &err), 0);
	json_decref(p);
	return raw;
}

static int lookup_rc(struct fx *f, const char *raw)
{
	struct token_entry *te = NULL;
	struct verr err = {0};
	int rc = token_store_lookup(f->ts, raw, &te, &err);
	if (rc == 0)
		assert_non_null(te);
	else
		assert_null(te);
	token_entry_free(te);
	return rc;
}

/* Does `needle` occur in any key or value of the physical store? */
static int storage_contains(struct physical *p, const char *prefix, const char *needle)
{
	char **keys = NULL;
	size_t n = 0;
	struct verr err = {0};
	int found = 0;
	assert_int_equal(physical_list(p, prefix, &keys, &n, &err), 0);
	for (size_t i = 0; i < n && !found; i++) {
		char full[8192];
		snprintf(full, sizeof(full), "%s%s", prefix, keys[i]);
		if (strstr(full, needle))
			found = 1;
		size_t l = strlen(keys[i]);
		if (l && keys[i][l - 1] == '/') {
			found |= storage_contains(p, full, needle);
		} else {
			uint8_t *v = NULL;
			size_t vl = 0;
			assert_int_equal(physical_get(p, full, &v, &vl, &err), 0);
			if (v && memmem(v, vl, needle, strlen(needle)))
				found = 1;
			free(v);
		}
	}
	physical_list_free(keys, n);
	return found;
}

static int count_keys(struct fx *f, const char *prefix)
{
	char **keys = NULL;
	size_t n = 0;
	struct verr err = {0};
	assert_int_equal(view_list(&f->view, prefix, &keys, &n, &err), 0);
	physical_list_free(keys, n);
	return (int)n;
}

static void test_core_token_store__format(void **state)
{
	struct fx *f = *state;
	regex_t re, acc;
	assert_int_equal(regcomp(&re, "^s\\.[A-Za-z0-9]{24}$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&acc, "^[A-Za-z0-9]{24}$", REG_EXTENDED | REG_NOSUB), 0);
	char *prev = NULL;
	for (int i = 0; i < 50; i++) {
		struct token_entry *te = NULL;
		char *raw = issue(f, "[\"a\"]", NULL, &te);
		assert_int_equal(regexec(&re, raw, 0, NULL, 0), 0);
		assert_int_equal(regexec(&acc, te->accessor, 0, NULL, 0), 0);
		assert_int_equal(strlen(te->hash), TOKEN_HASH_LEN);
		if (prev)
			assert_string_not_equal(prev, raw);
		token_free_raw(prev);
		prev = raw;
		token_entry_free(te);
	}
	token_free_raw(prev);
	char *root = NULL;
	struct verr err = {0};
	assert_int_equal(token_store_root(f->ts, &root, &err), 0);
	assert_int_equal(regexec(&re, root, 0, NULL, 0), 0);
	token_free_raw(root);
	regfree(&re);
	regfree(&acc);
}

static void test_core_token_store__never_stored_in_clear(void **state)
{
	struct fx *f = *state;
	char *raws[10];
	struct token_entry *parent = NULL;
	raws[0] = issue(f, "[\"p\"]", NULL, &parent);
	for (int i = 1; i < 10; i++)
		raws[i] = issue(f, "[\"p\"]", parent, NULL);
	struct verr err = {0};
	char *root = NULL;
	assert_int_equal(token_store_root(f->ts, &root, &err), 0);
	for (int i = 0; i < 10; i++) {
		assert_false(storage_contains(f->phys, "", raws[i]));
		/* nor the body without the prefix */
		assert_false(storage_contains(f->phys, "", raws[i] + 2));
		assert_int_equal(lookup_rc(f, raws[i]), 0);
		token_free_raw(raws[i]);
	}
	assert_false(storage_contains(f->phys, "", root));
	/* but the hash (the stable id) is there */
	assert_true(storage_contains(f->phys, "", parent->hash));
	token_free_raw(root);
	token_entry_free(parent);
}

static void test_core_token_store__lookup(void **state)
{
	struct fx *f = *state;
	struct token_entry *te = NULL, *got = NULL;
	struct verr err = {0};
	char *raw = issue(f, "[\"web\",\"Web\",\" stage \",\"\"]", NULL, &te);
	assert_int_equal(token_store_lookup(f->ts, raw, &got, &err), 0);
	assert_string_equal(got->hash, te->hash);
	char *pol = json_dumps(got->policies, JSON_COMPACT);
	assert_string_equal(pol, "[\"default\",\"stage\",\"web\"]");
	free(pol);
	assert_true(got->orphan);
	assert_string_equal(got->path, "auth/token/create");
	assert_string_equal(got->display_name, "token");
	token_entry_free(got);
	/* cached path: second lookup also fine */
	assert_int_equal(token_store_lookup(f->ts, raw, &got, &err), 0);
	token_entry_free(got);

	assert_int_equal(token_store_lookup_accessor(f->ts, te->accessor, &got, &err), 0);
	assert_string_equal(got->hash, te->hash);
	token_entry_free(got);
	assert_int_equal(token_store_lookup_accessor(f->ts, "nope", &got, &err), VERR_NOT_FOUND);
	assert_int_equal(token_store_lookup_hash(f->ts, te->hash, &got, &err), 0);
	token_entry_free(got);

	/* unknown, malformed and near-miss tokens */
	assert_int_equal(lookup_rc(f, "s.AAAAAAAAAAAAAAAAAAAAAAAA"), VERR_DENIED);
	assert_int_equal(lookup_rc(f, ""), VERR_DENIED);
	assert_int_equal(lookup_rc(f, "s.with space"), VERR_DENIED);
	assert_int_equal(lookup_rc(f, te->hash), VERR_DENIED);
	raw[5] = raw[5] == 'a' ? 'b' : 'a';
	assert_int_equal(token_store_lookup(f->ts, raw, &got, &err), VERR_DENIED);
	assert_string_equal(err.msg, "permission denied");
	token_free_raw(raw);
	token_entry_free(te);
}

static void test_core_token_store__reopen_keeps_salt(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = issue(f, "[\"a\"]", NULL, NULL);
	token_store_free(f->ts);
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	assert_int_equal(lookup_rc(f, raw), 0);
	token_free_raw(raw);
}

/* The stored id is hex HMAC-SHA256(salt, raw token) with the salt kept in
 * storage: tokens issued before an upgrade must keep resolving. */
static void test_core_token_store__hash_is_hmac_of_salt(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *te = NULL;
	char *raw = issue(f, "[\"a\"]", NULL, &te);
	uint8_t *salt = NULL, mac[32];
	size_t slen = 0;
	unsigned int mlen = 0;
	char hex[65];
	assert_int_equal(view_get(&f->view, "salt", &salt, &slen, &err), 0);
	assert_int_equal(slen, 32);
	assert_non_null(HMAC(EVP_sha256(), salt, (int)slen, (const uint8_t *)raw, strlen(raw), mac,
			     &mlen));
	for (unsigned int i = 0; i < mlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(te->hash, hex);
	free(salt);
	token_free_raw(raw);
	token_entry_free(te);
}

static int64_t issue_ttl(struct fx *f, struct token_params *tp, json_t *warnings)
{
	char *raw = NULL;
	struct token_entry *te = NULL;
	struct verr err = {0};
	tp->warnings = warnings;
	assert_int_equal(token_store_issue(f->ts, tp, &raw, &te, &err), 0);
	int64_t ttl = te->ttl;
	assert_int_equal(te->expire_time, ttl ? fake_now + ttl : 0);
	token_free_raw(raw);
	token_entry_free(te);
	return ttl;
}

static void test_core_token_store__ttl_rules(void **state)
{
	struct fx *f = *state;
	json_t *w = json_array();
	struct token_params tp = {.renewable = true};
	/* default */
	assert_int_equal(issue_ttl(f, &tp, w), 768 * 3600);
	assert_int_equal(json_array_size(w), 0);
	/* explicit ttl */
	tp.ttl = 3600;
	assert_int_equal(issue_ttl(f, &tp, w), 3600);
	/* explicit max caps the ttl, with Vault's warning */
	tp.explicit_max_ttl = 1800;
	assert_int_equal(issue_ttl(f, &tp, w), 1800);
	assert_int_equal(json_array_size(w), 1);
	assert_string_equal(json_string_value(json_array_get(w, 0)),
			    "TTL of \"1h0m0s\" exceeded the effective max_ttl of \"30m0s\"; TTL value is capped accordingly");
	json_array_clear(w);
	/* mount max caps */
	tp = (struct token_params){.ttl = 7200, .max_ttl = 600};
	assert_int_equal(issue_ttl(f, &tp, w), 600);
	assert_int_equal(json_array_size(w), 1);
	json_array_clear(w);
	/* period wins over ttl */
	tp = (struct token_params){.ttl = 60, .period = 3600};
	assert_int_equal(issue_ttl(f, &tp, w), 3600);
	assert_int_equal(json_array_size(w), 0);
	/* period above the max is capped */
	tp = (struct token_params){.period = 1000 * 3600};
	assert_int_equal(issue_ttl(f, &tp, w), 768 * 3600);
	assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "period of \"1000h0m0s\""));
	json_array_clear(w);
	/* root policy without ttl never expires; with explicit max it does */
	json_t *rootp = json_pack("[s]", "root");
	tp = (struct token_params){.policies = rootp};
	assert_int_equal(issue_ttl(f, &tp, w), 0);
	tp.explicit_max_ttl = 300;
	assert_int_equal(issue_ttl(f, &tp, w), 300);
	tp = (struct token_params){.policies = rootp, .deny_non_expiring = true};
	char *raw = NULL;
	struct verr err = {0};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "expiring root tokens cannot create non-expiring root tokens");
	tp = (struct token_params){.num_uses = -1};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, NULL, &err), VERR_INVALID);
	json_decref(rootp);
	json_decref(w);
}

static void test_core_token_store__renew(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *w = json_array();
	char *raw = NULL;
	struct token_entry *te = NULL, *got = NULL;
	int64_t ttl = 0;
	struct token_params tp = {.ttl = 600, .explicit_max_ttl = 3600, .renewable = true};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);

	fake_now += 300;
	assert_int_equal(token_store_renew(f->ts, te->hash, 0, 0, &ttl, w, &err), 0);
	assert_int_equal(ttl, 600); /* the token's own TTL again */
	assert_int_equal(json_array_size(w), 0);
	assert_int_equal(token_store_lookup(f->ts, raw, &got, &err), 0);
	assert_int_equal(got->expire_time, fake_now + 600);
	assert_int_equal(got->last_renewal_time, fake_now);
	token_entry_free(got);

	assert_int_equal(token_store_renew(f->ts, te->hash, 1200, 0, &ttl, w, &err), 0);
	assert_int_equal(ttl, 1200);
	/* explicit max counts from creation: 3600 - 300 left */
	assert_int_equal(token_store_renew(f->ts, te->hash, 7200, 0, &ttl, w, &err), 0);
	assert_int_equal(ttl, 3300);
	assert_int_equal(json_array_size(w), 1);
	fake_now += 3300;
	assert_int_equal(lookup_rc(f, raw), VERR_DENIED);
	token_free_raw(raw);
	token_entry_free(te);

	/* periodic: resets to the period whatever the increment */
	tp = (struct token_params){.period = 900, .renewable = true};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);
	fake_now += 800;
	assert_int_equal(token_store_renew(f->ts, te->hash, 60, 0, &ttl, NULL, &err), 0);
	assert_int_equal(ttl, 900);
	fake_now += 800;
	assert_int_equal(lookup_rc(f, raw), 0); /* alive well past the first 900 s */
	token_free_raw(raw);
	token_entry_free(te);

	/* not renewable */
	tp = (struct token_params){.ttl = 60, .renewable = false};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);
	assert_int_equal(token_store_renew(f->ts, te->hash, 0, 0, &ttl, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "lease is not renewable");
	token_free_raw(raw);
	token_entry_free(te);
	/* root tokens have nothing to renew */
	assert_int_equal(token_store_root(f->ts, &raw, &err), 0);
	assert_int_equal(token_store_lookup(f->ts, raw, &te, &err), 0);
	assert_false(te->renewable);
	assert_int_equal(token_store_renew(f->ts, te->hash, 0, 0, &ttl, NULL, &err), VERR_INVALID);
	token_free_raw(raw);
	token_entry_free(te);
	json_decref(w);
}

static void test_core_token_store__num_uses(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = NULL;
	struct token_params tp = {.num_uses = 3, .renewable = true};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, NULL, &err), 0);
	int allowed = 0;
	for (int i = 0; i < 5; i++) {
		struct token_entry *te = NULL;
		if (token_store_lookup(f->ts, raw, &te, &err))
			continue;
		bool revoke_after = false;
		if (token_store_use(f->ts, te, &revoke_after, &err) == 0) {
			allowed++;
			if (revoke_after)
				assert_int_equal(token_store_revoke(f->ts, te->hash, false, &err), 0);
		}
		token_entry_free(te);
	}
	assert_int_equal(allowed, 3);
	assert_int_equal(lookup_rc(f, raw), VERR_DENIED);
	assert_int_equal(revoked_count, 1);
	token_free_raw(raw);
}

static void test_core_token_store__use_marks_used_up_before_revoke(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = NULL;
	struct token_entry *te = NULL;
	struct token_params tp = {.num_uses = 1};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);
	bool after = false;
	assert_int_equal(token_store_use(f->ts, te, &after, &err), 0);
	assert_true(after);
	/* no other request gets in between the last use and the revoke */
	assert_int_equal(lookup_rc(f, raw), VERR_DENIED);
	assert_int_equal(token_store_use(f->ts, te, &after, &err), VERR_DENIED);
	token_free_raw(raw);
	token_entry_free(te);
}

static void test_core_token_store__revoke_tree(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *p = NULL, *c1 = NULL, *c2 = NULL;
	char *rp = issue(f, "[\"a\"]", NULL, &p);
	char *r1 = issue(f, "[\"a\"]", p, &c1);
	char *r2 = issue(f, "[\"a\"]", p, &c2);
	char *g1 = issue(f, "[\"a\"]", c1, NULL);
	char *other = issue(f, "[\"a\"]", NULL, NULL);
	assert_false(c1->orphan);
	assert_string_equal(c1->parent_hash, p->hash);
	/* warm the cache so revoke must invalidate it */
	assert_int_equal(lookup_rc(f, g1), 0);
	assert_int_equal(token_store_revoke(f->ts, p->hash, false, &err), 0);
	assert_int_equal(lookup_rc(f, rp), VERR_DENIED);
	assert_int_equal(lookup_rc(f, r1), VERR_DENIED);
	assert_int_equal(lookup_rc(f, r2), VERR_DENIED);
	assert_int_equal(lookup_rc(f, g1), VERR_DENIED);
	assert_int_equal(lookup_rc(f, other), 0);
	assert_int_equal(revoked_count, 4);
	/* everything but the survivor is gone from storage */
	assert_int_equal(count_keys(f, "id/"), 1);
	assert_int_equal(count_keys(f, "accessor/"), 1);
	assert_int_equal(count_keys(f, "parent/"), 0);
	assert_int_equal(count_keys(f, "revoke/"), 0);
	/* revoking an unknown hash is a no-op */
	assert_int_equal(token_store_revoke(f->ts, p->hash, false, &err), 0);
	token_free_raw(rp);
	token_free_raw(r1);
	token_free_raw(r2);
	token_free_raw(g1);
	token_free_raw(other);
	token_entry_free(p);
	token_entry_free(c1);
	token_entry_free(c2);
}

static void test_core_token_store__revoke_deep_chain(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *root = NULL, *cur = NULL;
	char *rroot = issue(f, "[\"a\"]", NULL, &root);
	cur = token_entry_ref(root);
	char *last = NULL;
	for (int i = 0; i < 1000; i++) {
		struct token_entry *next = NULL;
		token_free_raw(last);
		last = issue(f, "[\"a\"]", cur, &next);
		token_entry_free(cur);
		cur = next;
	}
	assert_int_equal(lookup_rc(f, last), 0);
	assert_int_equal(token_store_revoke(f->ts, root->hash, false, &err), 0);
	assert_int_equal(lookup_rc(f, last), VERR_DENIED);
	assert_int_equal(revoked_count, 1001);
	assert_int_equal(count_keys(f, "id/"), 0);
	token_free_raw(last);
	token_free_raw(rroot);
	token_entry_free(cur);
	token_entry_free(root);
}

static void test_core_token_store__revoke_orphan(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *p = NULL, *c = NULL, *got = NULL;
	char *rp = issue(f, "[\"a\"]", NULL, &p);
	char *rc_ = issue(f, "[\"a\"]", p, &c);
	char *g = issue(f, "[\"a\"]", c, NULL);
	assert_int_equal(token_store_revoke(f->ts, p->hash, true, &err), 0);
	assert_int_equal(lookup_rc(f, rp), VERR_DENIED);
	assert_int_equal(token_store_lookup(f->ts, rc_, &got, &err), 0);
	assert_true(got->orphan);
	assert_string_equal(got->parent_hash, "");
	token_entry_free(got);
	assert_int_equal(lookup_rc(f, g), 0);
	assert_int_equal(revoked_count, 1);
	/* the new orphan's own subtree still revokes with it */
	assert_int_equal(token_store_revoke(f->ts, c->hash, false, &err), 0);
	assert_int_equal(lookup_rc(f, g), VERR_DENIED);
	token_free_raw(rp);
	token_free_raw(rc_);
	token_free_raw(g);
	token_entry_free(p);
	token_entry_free(c);
}

static void test_core_token_store__expired_denied_and_deleted(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = NULL;
	struct token_entry *te = NULL;
	struct token_params tp = {.ttl = 60};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);
	assert_int_equal(lookup_rc(f, raw), 0);
	fake_now += 59;
	assert_int_equal(lookup_rc(f, raw), 0);
	fake_now += 1;
	assert_int_equal(lookup_rc(f, raw), VERR_DENIED);
	assert_int_equal(count_keys(f, "id/"), 0);
	assert_int_equal(count_keys(f, "accessor/"), 0);
	assert_int_equal(revoked_count, 1);
	token_free_raw(raw);
	token_entry_free(te);
}

static void test_core_token_store__parent_gone_child_denied(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *p = NULL;
	char *rp = issue(f, "[\"a\"]", NULL, &p);
	char *rc_ = issue(f, "[\"a\"]", p, NULL);
	/* simulate a crash that lost the parent entry but kept the child */
	char key[128];
	snprintf(key, sizeof(key), "id/%s", p->hash);
	assert_int_equal(view_delete(&f->view, key, &err), 0);
	token_store_cache_flush(f->ts);
	assert_int_equal(lookup_rc(f, rc_), VERR_DENIED);
	/* tidy removes the leftovers */
	json_t *stats = NULL;
	assert_int_equal(token_store_tidy(f->ts, &stats, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(stats, "dangling_accessors")), 1);
	assert_int_equal(count_keys(f, "id/"), 0);
	assert_int_equal(count_keys(f, "accessor/"), 0);
	json_decref(stats);
	token_free_raw(rp);
	token_free_raw(rc_);
	token_entry_free(p);
}

static void test_core_token_store__resume_interrupted_revoke(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *p = NULL;
	char *rp = issue(f, "[\"a\"]", NULL, &p);
	char *rc_ = issue(f, "[\"a\"]", p, NULL);
	/* a crash right after the intent record was written */
	char key[128];
	snprintf(key, sizeof(key), "revoke/%s", p->hash);
	json_t *intent = json_pack("{s:b}", "orphan", 0);
	assert_int_equal(view_put_json(&f->view, key, intent, &err), 0);
	json_decref(intent);
	token_store_free(f->ts);
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	assert_int_equal(lookup_rc(f, rp), VERR_DENIED);
	assert_int_equal(lookup_rc(f, rc_), VERR_DENIED);
	assert_int_equal(count_keys(f, "revoke/"), 0);
	assert_int_equal(count_keys(f, "id/"), 0);
	token_free_raw(rp);
	token_free_raw(rc_);
	token_entry_free(p);
}

static void test_core_token_store__accessors_list(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *a = NULL, *b = NULL;
	char *ra = issue(f, "[]", NULL, &a);
	char *rb = issue(f, "[]", NULL, &b);
	json_t *list = NULL;
	assert_int_equal(token_store_list_accessors(f->ts, &list, &err), 0);
	assert_int_equal(json_array_size(list), 2);
	int seen = 0;
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		seen += !strcmp(json_string_value(e), a->accessor);
		seen += !strcmp(json_string_value(e), b->accessor);
	}
	assert_int_equal(seen, 2);
	json_decref(list);
	token_free_raw(ra);
	token_free_raw(rb);
	token_entry_free(a);
	token_entry_free(b);
}

/* Does `needle` occur in any storage KEY under prefix (the barrier
 * encrypts values, not keys)? */
static int key_contains(struct physical *p, const char *prefix, const char *needle)
{
	char **keys = NULL;
	size_t n = 0;
	struct verr err = {0};
	int found = 0;
	assert_int_equal(physical_list(p, prefix, &keys, &n, &err), 0);
	for (size_t i = 0; i < n && !found; i++) {
		char full[8192];
		snprintf(full, sizeof(full), "%s%s", prefix, keys[i]);
		size_t l = strlen(keys[i]);
		found = strstr(full, needle) || (l && keys[i][l - 1] == '/' && key_contains(p, full, needle));
	}
	physical_list_free(keys, n);
	return found;
}

/* Accessors never appear in storage keys; a store written by an older
 * version (accessor/<accessor> in clear) is rewritten at open and its
 * tokens stay reachable by accessor. */
static void test_core_token_store__accessor_keys_hashed(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *a = NULL, *got = NULL;
	char *ra = issue(f, "[]", NULL, &a);
	assert_false(key_contains(f->phys, "", a->accessor));
	assert_int_equal(count_keys(f, "accessor/"), 1);

	/* forge the legacy layout: move the index entry to the clear key */
	char **keys = NULL, key[256];
	size_t n = 0;
	assert_int_equal(view_list(&f->view, "accessor/", &keys, &n, &err), 0);
	assert_int_equal(n, 1);
	snprintf(key, sizeof(key), "accessor/%s", keys[0]);
	assert_int_equal(view_delete(&f->view, key, &err), 0);
	physical_list_free(keys, n);
	json_t *legacy = json_pack("{s:s}", "hash", a->hash);
	snprintf(key, sizeof(key), "accessor/%s", a->accessor);
	assert_int_equal(view_put_json(&f->view, key, legacy, &err), 0);
	json_decref(legacy);
	assert_true(key_contains(f->phys, "", a->accessor));
	assert_int_equal(token_store_lookup_accessor(f->ts, a->accessor, &got, &err), VERR_NOT_FOUND);

	token_store_free(f->ts);
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	assert_false(key_contains(f->phys, "", a->accessor));
	assert_int_equal(count_keys(f, "accessor/"), 1);
	assert_int_equal(token_store_lookup_accessor(f->ts, a->accessor, &got, &err), 0);
	assert_string_equal(got->hash, a->hash);
	token_entry_free(got);
	json_t *list = NULL;
	assert_int_equal(token_store_list_accessors(f->ts, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_array_get(list, 0)), a->accessor);
	json_decref(list);
	/* revoke removes the hashed index entry */
	assert_int_equal(token_store_revoke(f->ts, a->hash, false, &err), 0);
	assert_int_equal(count_keys(f, "accessor/"), 0);
	token_free_raw(ra);
	token_entry_free(a);
}

static void test_core_token_store__shapes(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = NULL;
	struct token_entry *te = NULL;
	json_t *pol = json_pack("[s]", "web");
	json_t *meta = json_pack("{s:s}", "user", "armon");
	struct token_params tp = {.policies = pol, .meta = meta, .ttl = 3600, .renewable = true,
				  .display_name = "token-ci", .period = 0};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, &te, &err), 0);
	fake_now += 10;
	json_t *d = token_entry_lookup_data(te, raw, fake_now);
	static const char *const want[] = {
		"accessor", "creation_time", "creation_ttl", "display_name", "entity_id",
		"expire_time", "explicit_max_ttl", "id", "issue_time", "meta", "num_uses",
		"orphan", "path", "policies", "renewable", "ttl", "type", NULL};
	for (int i = 0; want[i]; i++)
		assert_non_null(json_object_get(d, want[i]));
	assert_int_equal(json_object_size(d), 17);
	assert_int_equal(json_integer_value(json_object_get(d, "ttl")), 3590);
	assert_int_equal(json_integer_value(json_object_get(d, "creation_ttl")), 3600);
	assert_string_equal(json_string_value(json_object_get(d, "id")), raw);
	assert_string_equal(json_string_value(json_object_get(d, "type")), "service");
	assert_string_equal(json_string_value(json_object_get(d, "expire_time")), "2023-11-14T23:13:20Z");
	json_decref(d);
	d = token_entry_lookup_data(te, NULL, fake_now);
	assert_string_equal(json_string_value(json_object_get(d, "id")), "");
	json_decref(d);

	json_t *a = token_auth_block(te, raw, NULL);
	static const char *const akeys[] = {
		"client_token", "accessor", "policies", "token_policies", "metadata",
		"lease_duration", "renewable", "entity_id", "token_type", "orphan",
		"mfa_requirement", "num_uses", NULL};
	for (int i = 0; akeys[i]; i++)
		assert_non_null(json_object_get(a, akeys[i]));
	assert_int_equal(json_object_size(a), 12);
	assert_string_equal(json_string_value(json_object_get(a, "client_token")), raw);
	assert_int_equal(json_integer_value(json_object_get(a, "lease_duration")), 3600);
	assert_true(json_is_null(json_object_get(a, "mfa_requirement")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(a, "metadata"), "user")), "armon");
	json_decref(a);
	json_t *ip = json_pack("[s]", "group-pol");
	a = token_auth_block(te, raw, ip);
	assert_int_equal(json_array_size(json_object_get(a, "policies")), 3);
	assert_int_equal(json_array_size(json_object_get(a, "token_policies")), 2);
	assert_non_null(json_object_get(a, "identity_policies"));
	json_decref(a);
	json_decref(ip);

	/* root: no expiry, so no issue_time/renewable, expire_time null */
	char *root = NULL;
	struct token_entry *rte = NULL;
	assert_int_equal(token_store_root(f->ts, &root, &err), 0);
	assert_int_equal(token_store_lookup(f->ts, root, &rte, &err), 0);
	d = token_entry_lookup_data(rte, root, fake_now);
	assert_true(json_is_null(json_object_get(d, "expire_time")));
	assert_null(json_object_get(d, "issue_time"));
	assert_string_equal(json_string_value(json_object_get(d, "path")), "auth/token/root");
	assert_string_equal(json_string_value(json_object_get(d, "display_name")), "root");
	json_decref(d);
	token_free_raw(root);
	token_entry_free(rte);
	json_decref(pol);
	json_decref(meta);
	token_free_raw(raw);
	token_entry_free(te);
}

static void test_core_token_store__roles(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	json_t *r = json_pack("{s:[s]}", "allowed_policies", "dev"), *got = NULL, *list = NULL;
	assert_int_equal(token_store_role_put(f->ts, "nomad", r, &err), 0);
	assert_int_equal(token_store_role_get(f->ts, "nomad", &got, &err), 0);
	assert_true(json_equal(r, got));
	json_decref(got);
	assert_int_equal(token_store_role_list(f->ts, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	assert_int_equal(token_store_role_put(f->ts, "../x", r, &err), VERR_INVALID);
	assert_int_equal(token_store_role_delete(f->ts, "nomad", &err), 0);
	assert_int_equal(token_store_role_get(f->ts, "nomad", &got, &err), 0);
	assert_null(got);
	json_decref(r);
}

static void test_core_token_store__custom_id(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	char *raw = NULL;
	struct token_params tp = {.id = "my-fixed-token"};
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, NULL, &err), 0);
	assert_string_equal(raw, "my-fixed-token");
	assert_int_equal(lookup_rc(f, "my-fixed-token"), 0);
	assert_false(storage_contains(f->phys, "", "my-fixed-token"));
	token_free_raw(raw);
	assert_int_equal(token_store_issue(f->ts, &tp, &raw, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "cannot create a token with a duplicate ID");
}

static bool pol_exists(void *ctx, const char *name)
{
	return !strcmp(name, "default");
}

static void test_core_token_store__missing_policy_warnings(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	token_store_free(f->ts);
	f->opts.policy_exists = pol_exists;
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	json_t *w = json_array();
	json_t *p = json_pack("[s,s,s]", "web", "default", "stage");
	token_store_warn_missing_policies(f->ts, p, w);
	assert_int_equal(json_array_size(w), 2);
	assert_string_equal(json_string_value(json_array_get(w, 0)), "Policy \"web\" does not exist");
	json_decref(p);
	json_decref(w);
}

static void test_core_token_store__cache_bounded(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	token_store_free(f->ts);
	f->opts.cache_size = 4;
	assert_int_equal(token_store_new(&f->ts, &f->view, &f->opts, &err), 0);
	char *raws[20];
	for (int i = 0; i < 20; i++)
		raws[i] = issue(f, "[]", NULL, NULL);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 20; i++)
			assert_int_equal(lookup_rc(f, raws[i]), 0);
	for (int i = 0; i < 20; i++)
		token_free_raw(raws[i]);
}

struct race {
	struct fx *f;
	char *raw;
	volatile int revoked; /* set once token_store_revoke returned */
	int late_hits;        /* lookups that succeeded after that */
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 20000; i++) {
		int done = __atomic_load_n(&r->revoked, __ATOMIC_ACQUIRE);
		struct token_entry *te = NULL;
		int rc = token_store_lookup(r->f->ts, r->raw, &te, NULL);
		token_entry_free(te);
		if (done && rc == 0)
			__atomic_add_fetch(&r->late_hits, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_core_token_store__concurrent_revoke(void **state)
{
	struct fx *f = *state;
	struct verr err = {0};
	struct token_entry *p = NULL;
	char *rp = issue(f, "[\"a\"]", NULL, &p);
	struct race r = {.f = f};
	r.raw = issue(f, "[\"a\"]", p, NULL);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_reader, &r), 0);
	for (int i = 0; i < 50; i++) {
		char *x = issue(f, "[\"a\"]", p, NULL); /* churn the cache generation */
		token_free_raw(x);
	}
	assert_int_equal(token_store_revoke(f->ts, p->hash, false, &err), 0);
	__atomic_store_n(&r.revoked, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* once revoke has returned, no lookup may succeed (no stale cache) */
	assert_int_equal(r.late_hits, 0);
	assert_int_equal(lookup_rc(f, r.raw), VERR_DENIED);
	token_free_raw(r.raw);
	token_free_raw(rp);
	token_entry_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_token_store__format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__never_stored_in_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__reopen_keeps_salt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__hash_is_hmac_of_salt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__ttl_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__renew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__num_uses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__use_marks_used_up_before_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__revoke_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__revoke_deep_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__revoke_orphan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__expired_denied_and_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__parent_gone_child_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__resume_interrupted_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__accessors_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__accessor_keys_hashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__custom_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__missing_policy_warnings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__cache_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_core_token_store__concurrent_revoke, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
