/*
 * Unit tests for a multi-seal's set changing at SIGHUP (core_seals_change,
 * src/core/unseal.c): an added seal wraps the root key before it joins and
 * unseals after a restart without the old one; a seal that cannot wrap, or
 * wraps but may not unwrap, leaves the set as it was; a removed seal's copy
 * is deleted; removing every seal or the last available one is refused; a
 * storage failure at each step (the fault shim standing in for a crash)
 * leaves a store that still unseals, and the next unseal tidies it.
 *
 * The seals here are a test type over a local AES key (util/aead) whose
 * availability a test switches, so the core's logic is tested without a
 * key service; the real seals are driven end to end in
 * tests/e2e/test_seal_multi.py.
 */
#include "core_helpers.h"

#include "core/core.h"
#include "core/token.h"
#include "seal/seal.h"
#include "secrets/secrets.h"
#include "util/aead.h"
#include "util/secmem.h"

static const struct backend_ops *const registry[] = {&cubbyhole_backend_ops, &token_backend_ops,
						     NULL};

/* ---- the test seal: key `id`, switched by the flags below ---- */

#define NKEYS 4
static bool key_down[NKEYS];    /* wrap and unwrap: VERR_UNAVAILABLE */
static bool key_no_open[NKEYS]; /* unwrap: VERR_DENIED (a policy without Decrypt) */

struct tseal {
	struct seal base;
	int id;
};

static int t_wrap(struct seal *s, const uint8_t *kek, size_t kl, const uint8_t *root, size_t rl,
		  uint8_t **out, size_t *ol, struct verr *err)
{
	(void)kek, (void)kl;
	int id = ((struct tseal *)s)->id;
	if (key_down[id])
		return verr_set(err, VERR_UNAVAILABLE, "test key %d is unreachable", id);
	uint8_t key[32];
	memset(key, 0x40 + id, sizeof(key));
	return aead_blob_seal(out, ol, key, "tseal", root, rl, err);
}

static int t_unwrap(struct seal *s, const uint8_t *kek, size_t kl, const uint8_t *blob, size_t bl,
		    uint8_t **root, size_t *rl, struct verr *err)
{
	(void)kek, (void)kl;
	int id = ((struct tseal *)s)->id;
	if (key_down[id])
		return verr_set(err, VERR_UNAVAILABLE, "test key %d is unreachable", id);
	if (key_no_open[id])
		return verr_set(err, VERR_DENIED, "test key %d may not decrypt", id);
	uint8_t key[32];
	memset(key, 0x40 + id, sizeof(key));
	return aead_blob_open(root, rl, key, "tseal", blob, bl, err);
}

static void t_close(struct seal *s)
{
	free(s);
}

static const struct seal_ops t_ops = {
	.version = SEAL_OPS_VERSION,
	.type = "tseal",
	.recovery_keys = true,
	.root_path = "core/tseal-root",
	.wrap = t_wrap,
	.unwrap = t_unwrap,
	.close = t_close,
};

static struct seal *tseal(int id)
{
	struct tseal *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->base.ops = &t_ops;
	t->id = id;
	return &t->base;
}

/* ---- a core over a fault shim, with a multi-seal of test seals ---- */

struct fix {
	struct physical *store, *shim;
	struct core *c;
};

/* names[i] is seal key i's name */
static const char *const key_name[NKEYS] = {"a", "b", "c", "d"};

static void open_core(struct fix *f, const int *ids, const int *prio, size_t n)
{
	struct seal *m[SEAL_MULTI_MAX], *ms = NULL;
	const char *names[SEAL_MULTI_MAX];
	for (size_t i = 0; i < n; i++) {
		m[i] = tseal(ids[i]);
		names[i] = key_name[ids[i]];
	}
	struct verr err = {0};
	assert_int_equal(seal_multi_new(&ms, m, names, prio, n, &err), 0);
	assert_int_equal(physical_fault_new(&f->shim, f->store, false, NULL), 0);
	struct core_opts o = {.phys = f->shim, .default_lease_ttl = 3600, .max_lease_ttl = 7200,
			      .backends = registry, .api_addr = "http://a:8200", .seal = ms,
			      .storage_type = "inmem"};
	assert_int_equal(core_new(&f->c, &o, &err), 0);
}

static void fix_init(struct fix *f, const int *ids, const int *prio, size_t n)
{
	memset(f, 0, sizeof(*f));
	memset(key_down, 0, sizeof(key_down));
	memset(key_no_open, 0, sizeof(key_no_open));
	f->store = store_new(false);
	open_core(f, ids, prio, n);
	json_t *in = json_pack("{s:i,s:i}", "recovery_shares", 1, "recovery_threshold", 1);
	json_t *out = NULL;
	struct verr err = {0};
	assert_int_equal(unseal_init(f->c, in, &out, &err), 0);
	json_decref(in);
	json_decref(out);
	assert_int_equal(state_get(f->c), CORE_ACTIVE);
}

/* A restart with the seals `ids`: 0 when it auto-unseals. */
static int restart(struct fix *f, const int *ids, const int *prio, size_t n, struct verr *err)
{
	core_free(f->c);
	open_core(f, ids, prio, n);
	int rc = unseal_auto(f->c, err);
	if (!rc)
		assert_int_equal(state_get(f->c), CORE_ACTIVE);
	return rc;
}

static void fix_close(struct fix *f)
{
	core_free(f->c);
	physical_close(f->store);
}

static bool stored(struct fix *f, const char *key)
{
	uint8_t *v = NULL;
	size_t l = 0;
	assert_int_equal(physical_get(f->store, key, &v, &l, NULL), 0);
	free(v);
	return v != NULL;
}

/* seal-config's list of the members with a copy, joined by ',' */
static void listed(struct fix *f, char *buf, size_t cap)
{
	uint8_t *v = NULL;
	size_t l = 0;
	assert_int_equal(physical_get(f->store, "core/seal-config", &v, &l, NULL), 0);
	json_t *cfg = json_loadb((const char *)v, l, 0, NULL);
	free(v);
	assert_non_null(cfg);
	assert_string_equal(json_string_value(json_object_get(cfg, "type")), SEAL_MULTI_TYPE);
	buf[0] = '\0';
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(cfg, "seals"), i, x)
	{
		size_t k = strlen(buf);
		snprintf(buf + k, cap - k, "%s%s", k ? "," : "", json_string_value(x));
	}
	json_decref(cfg);
}

/* The running set becomes ids (kept members by pointer, new ones opened). */
static int change(struct fix *f, const int *ids, const int *prio, size_t n, struct verr *err)
{
	struct seal *ms = f->c->o.seal, *m[SEAL_MULTI_MAX];
	const char *names[SEAL_MULTI_MAX];
	for (size_t i = 0; i < n; i++) {
		names[i] = key_name[ids[i]];
		m[i] = NULL;
		for (size_t j = 0; j < seal_multi_count(ms); j++) {
			const char *nm = NULL;
			struct seal *s = seal_multi_member(ms, j, &nm);
			if (!strcmp(nm, names[i]))
				m[i] = s;
		}
		if (!m[i])
			m[i] = tseal(ids[i]);
	}
	verr_clear(err);
	return core_seals_change(f->c, m, names, prio, n, err);
}

static void test_core_seal_set__add_then_unseal_through_the_new_seal(void **state)
{
	(void)state;
	struct fix f;
	struct verr err = {0};
	char names[64];
	fix_init(&f, (int[]){0}, (int[]){1}, 1);
	assert_true(stored(&f, "core/seal-root/a"));
	assert_false(stored(&f, "core/seal-root/b"));

	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), 0);
	assert_int_equal(seal_multi_count(f.c->o.seal), 2);
	assert_true(seal_multi_has_copy(f.c->o.seal, 1));
	assert_true(stored(&f, "core/seal-root/b"));
	listed(&f, names, sizeof(names));
	assert_string_equal(names, "a,b");
	json_t *st = seal_multi_status(f.c->o.seal);
	assert_true(json_is_true(json_object_get(st, "fully_wrapped")));
	assert_int_equal(json_array_size(json_object_get(st, "backends")), 2);
	json_decref(st);
	/* the same set again is no change */
	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), 0);

	/* the first key gone: a restart unseals through the added seal */
	key_down[0] = true;
	assert_int_equal(restart(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), 0);
	/* and without the added seal it would not have */
	assert_int_not_equal(restart(&f, (int[]){0}, (int[]){1}, 1, &err), 0);
	fix_close(&f);
}

static void test_core_seal_set__a_seal_that_cannot_wrap_changes_nothing(void **state)
{
	(void)state;
	struct fix f;
	struct verr err = {0};
	char names[64];
	fix_init(&f, (int[]){0}, (int[]){1}, 1);
	key_down[1] = true;
	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "seal \"b\" (tseal) cannot wrap the root key"));
	assert_non_null(strstr(err.msg, "unchanged"));
	assert_int_equal(seal_multi_count(f.c->o.seal), 1);
	assert_false(stored(&f, "core/seal-root/b"));
	listed(&f, names, sizeof(names));
	assert_string_equal(names, "a");

	/* encrypts but may not decrypt: refused now, not at the next restart */
	key_down[1] = false;
	key_no_open[1] = true;
	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), VERR_DENIED);
	assert_non_null(strstr(err.msg, "may not decrypt"));
	assert_false(stored(&f, "core/seal-root/b"));
	assert_int_equal(seal_multi_count(f.c->o.seal), 1);
	assert_int_equal(state_get(f.c), CORE_ACTIVE);

	/* the same name as a running seal with other settings */
	struct seal *m[1] = {tseal(2)};
	const char *nm[1] = {"a"};
	assert_int_equal(core_seals_change(f.c, m, nm, (int[]){1}, 1, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "new name"));
	assert_int_equal(restart(&f, (int[]){0}, (int[]){1}, 1, &err), 0);
	fix_close(&f);
}

static void test_core_seal_set__remove_and_reorder(void **state)
{
	(void)state;
	struct fix f;
	struct verr err = {0};
	char names[64];
	fix_init(&f, (int[]){0, 1}, (int[]){1, 2}, 2);
	assert_true(stored(&f, "core/seal-root/b"));

	/* reorder only: b first */
	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){5, 2}, 2, &err), 0);
	const char *first = NULL;
	seal_multi_member(f.c->o.seal, 0, &first);
	assert_string_equal(first, "b");
	assert_int_equal(seal_multi_priority(f.c->o.seal, 1), 5);

	/* nothing left, or nothing available: refused */
	assert_int_equal(change(&f, NULL, NULL, 0, &err), VERR_PRECONDITION);
	assert_non_null(strstr(err.msg, "removing every seal"));
	seal_multi_report(f.c->o.seal, 1, false); /* a: unhealthy */
	assert_int_equal(change(&f, (int[]){0}, (int[]){1}, 1, &err), VERR_PRECONDITION);
	assert_non_null(strstr(err.msg, "no seal of the new set is available"));
	assert_int_equal(seal_multi_count(f.c->o.seal), 2);
	seal_multi_report(f.c->o.seal, 1, true);

	/* remove a: its copy goes, b alone unseals */
	assert_int_equal(change(&f, (int[]){1}, (int[]){2}, 1, &err), 0);
	assert_int_equal(seal_multi_count(f.c->o.seal), 1);
	assert_false(stored(&f, "core/seal-root/a"));
	listed(&f, names, sizeof(names));
	assert_string_equal(names, "b");
	assert_int_equal(restart(&f, (int[]){1}, (int[]){2}, 1, &err), 0);
	fix_close(&f);
}

static void test_core_seal_set__storage_failure_at_each_step_still_unseals(void **state)
{
	(void)state;
	struct fix f;
	struct verr err = {0};
	char names[64];
	fix_init(&f, (int[]){0}, (int[]){1}, 1);

	/* the new copy is written, seal-config is not (a crash before the
	 * commit point): the old set, and the stray copy is swept later */
	struct physical_fault_knobs k = PHYSICAL_FAULT_NONE;
	k.fail_put_after = 1;
	physical_fault_set(f.shim, &k);
	assert_int_not_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), 0);
	assert_int_equal(seal_multi_count(f.c->o.seal), 1);
	assert_true(stored(&f, "core/seal-root/b")); /* its delete failed too */
	listed(&f, names, sizeof(names));
	assert_string_equal(names, "a");
	assert_int_equal(restart(&f, (int[]){0}, (int[]){1}, 1, &err), 0);
	assert_false(stored(&f, "core/seal-root/b"));

	/* add b, then remove a with the delete failing (a crash after the
	 * commit point): b unseals alone, and a's copy is swept */
	assert_int_equal(change(&f, (int[]){0, 1}, (int[]){1, 2}, 2, &err), 0);
	k.fail_put_after = 1; /* seal-config written, the delete fails */
	physical_fault_set(f.shim, &k);
	assert_int_equal(change(&f, (int[]){1}, (int[]){2}, 1, &err), 0);
	assert_true(stored(&f, "core/seal-root/a"));
	listed(&f, names, sizeof(names));
	assert_string_equal(names, "b");
	key_down[0] = true;
	assert_int_equal(restart(&f, (int[]){1}, (int[]){2}, 1, &err), 0);
	assert_false(stored(&f, "core/seal-root/a"));
	fix_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_seal_set__add_then_unseal_through_the_new_seal),
		cmocka_unit_test(test_core_seal_set__a_seal_that_cannot_wrap_changes_nothing),
		cmocka_unit_test(test_core_seal_set__remove_and_reorder),
		cmocka_unit_test(test_core_seal_set__storage_failure_at_each_step_still_unseals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
