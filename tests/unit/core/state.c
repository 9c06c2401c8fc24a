/*
 * Unit tests for the seal state machine (src/core/state.c) and the HA loop
 * (src/core/ha.c): transitions without HA, a standby that unseals without
 * writing, failover between two cores sharing one store when the active
 * node's lock is lost, step-down, fencing of writes after a loss, a failed
 * set-up that leaves the core sealed, parallel unseals and seals racing
 * requests, and the periodic hook.
 */
#include "core_helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "core/token.h"
#include "secrets/secrets.h"

/* ---- a test engine: counts periodic ticks, writes on request ---- */

static _Atomic int g_ticks, g_initialized;

static int te_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = mi->storage;
	return 0;
}

static int te_initialize(void *inst, struct verr *err)
{
	atomic_fetch_add(&g_initialized, 1);
	return 0;
}

static int te_periodic(void *inst, struct verr *err)
{
	atomic_fetch_add(&g_ticks, 1);
	return 0;
}

static int te_write(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	return view_put(req->storage, "k", (const uint8_t *)"v", 1, err);
}

static int te_read(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = view_get(req->storage, "k", &v, &n, err);
	if (!rc && !v)
		rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
	if (!rc)
		resp->data = json_pack("{s:s#}", "k", (const char *)v, (int)n);
	free(v);
	return rc;
}

static const struct path_def te_paths[] = {
	{.pattern = "k", .ops = {{LOP_READ, te_read}, {LOP_UPDATE, te_write}}},
	{0},
};

static const struct path_def *te_table(void *inst)
{
	return te_paths;
}

static const struct backend_ops te_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "statetest",
	.init = te_init,
	.initialize = te_initialize,
	.periodic = te_periodic,
	.paths = te_table,
};

static const struct backend_ops *const registry[] = {
	&cubbyhole_backend_ops, &token_backend_ops, &te_ops, NULL,
};

static void mount_te(struct node *n, const char *root)
{
	assert_int_equal(node_do(n, root, LOP_UPDATE, "sys/mounts/te", "{\"type\":\"statetest\"}"), 0);
}

/* ---- no HA: SEALED -> ACTIVE -> SEALED ---- */

static void test_core_state__transitions_without_ha(void **state)
{
	struct physical *store = store_new(false);
	struct node n;
	node_open(&n, store, false, "http://a:8200", registry, NULL, 0);
	char *key, *root;
	node_init(&n, &key, &root);
	assert_int_equal(state_get(n.c), CORE_SEALED);
	assert_int_equal(node_do(&n, root, LOP_READ, "sys/mounts", NULL), VERR_SEALED);

	struct verr err = {0};
	assert_int_equal(node_unseal(&n, key, &err), 0);
	assert_int_equal(state_get(n.c), CORE_ACTIVE);
	assert_int_equal(node_unseal(&n, key, &err), 0); /* already: a no-op */
	assert_int_equal(state_get(n.c), CORE_ACTIVE);
	mount_te(&n, root);
	assert_int_equal(node_do(&n, root, LOP_UPDATE, "te/k", NULL), 0);

	/* sys/seal is performed once the request has released its lock */
	assert_int_equal(node_do(&n, root, LOP_UPDATE, "sys/seal", NULL), 0);
	assert_int_equal(state_get(n.c), CORE_SEALED);
	assert_int_equal(node_do(&n, root, LOP_READ, "te/k", NULL), VERR_SEALED);
	assert_int_equal(node_unseal(&n, key, &err), 0);
	assert_int_equal(node_do(&n, root, LOP_READ, "te/k", NULL), 0);

	/* a wrong key does not unseal */
	state_seal(n.c);
	char bad[64];
	snprintf(bad, sizeof(bad), "%s", key);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	assert_int_equal(node_unseal(&n, bad, &err), VERR_INVALID);
	assert_int_equal(state_get(n.c), CORE_SEALED);
	node_close(&n);
	physical_close(store);
	free(key);
	free(root);
}

/* A storage failure while the active node sets up: the unseal fails with
 * the storage's error, the core stays sealed, a later unseal works. */
static void test_core_state__failed_setup_stays_sealed(void **state)
{
	struct physical *store = store_new(false);
	struct node n;
	node_open(&n, store, false, "http://a:8200", registry, NULL, 0);
	char *key, *root;
	node_init(&n, &key, &root);
	struct physical_fault_knobs k = PHYSICAL_FAULT_NONE;
	k.fail_get_after = 2; /* the keyring read works, the set-up's reads fail */
	physical_fault_set(n.shim, &k);
	struct verr err = {0};
	assert_int_equal(node_unseal(&n, key, &err), VERR_UNAVAILABLE);
	assert_string_equal(err.msg, "storage fault injected");
	assert_int_equal(state_get(n.c), CORE_SEALED);
	k = PHYSICAL_FAULT_NONE;
	physical_fault_set(n.shim, &k);
	assert_int_equal(node_unseal(&n, key, &err), 0);
	assert_int_equal(state_get(n.c), CORE_ACTIVE);
	assert_int_equal(node_do(&n, root, LOP_READ, "sys/mounts", NULL), 0);
	node_close(&n);
	physical_close(store);
	free(key);
	free(root);
}

/* ---- HA: two cores over one store ---- */

struct pair {
	struct physical *store;
	struct node a, b;
	char *key, *root;
};

static void pair_open(struct pair *p)
{
	p->store = store_new(true);
	node_open(&p->a, p->store, true, "http://a:8200", registry, NULL, 0);
	node_open(&p->b, p->store, true, "http://b:8200", registry, NULL, 0);
	node_init(&p->a, &p->key, &p->root);
	struct verr err = {0};
	assert_int_equal(node_unseal(&p->a, p->key, &err), 0);
	assert_true(node_wait(&p->a, CORE_ACTIVE, 2000));
}

static void pair_close(struct pair *p)
{
	node_close(&p->a);
	node_close(&p->b);
	physical_close(p->store);
	free(p->key);
	free(p->root);
}

static void test_core_state__standby_unseals_without_writing(void **state)
{
	struct pair p;
	pair_open(&p);
	mount_te(&p.a, p.root);
	struct physical_fault_counts before = node_counts(&p.b);
	struct verr err = {0};
	assert_int_equal(node_unseal(&p.b, p.key, &err), 0);
	assert_int_equal(state_get(p.b.c), CORE_STANDBY);
	usleep(200 * 1000); /* several acquire attempts */
	assert_int_equal(state_get(p.b.c), CORE_STANDBY);
	struct physical_fault_counts after = node_counts(&p.b);
	assert_int_equal(after.puts, before.puts);
	assert_int_equal(after.deletes, before.deletes);
	assert_int_equal(after.txns, before.txns);
	assert_true(after.gets > before.gets); /* it did read the keyring */

	/* a standby answers requests with the active node's address */
	struct logical_response resp;
	assert_int_equal(node_req(&p.b, p.root, LOP_READ, "te/k", NULL, &resp, &err), VERR_STANDBY);
	assert_string_equal(resp.redirect, "http://a:8200");
	logical_response_reset(&resp);
	pair_close(&p);
}

static void test_core_state__failover_when_the_lock_is_lost(void **state)
{
	struct pair p;
	pair_open(&p);
	mount_te(&p.a, p.root);
	assert_int_equal(node_do(&p.a, p.root, LOP_UPDATE, "te/k", NULL), 0);
	struct verr err = {0};
	assert_int_equal(node_unseal(&p.b, p.key, &err), 0);
	assert_int_equal(state_get(p.b.c), CORE_STANDBY);
	int before = atomic_load(&g_initialized);

	/* the active node's session is gone: it is fenced and steps down,
	 * the standby takes over, initialises its mounts and serves */
	physical_inmem_ha_break(p.store);
	assert_true(node_wait(&p.b, CORE_ACTIVE, 2000));
	assert_true(node_wait(&p.a, CORE_STANDBY, 2000));
	assert_true(atomic_load(&g_initialized) > before);
	assert_int_equal(node_do(&p.b, p.root, LOP_READ, "te/k", NULL), 0);
	assert_int_equal(node_do(&p.b, p.root, LOP_UPDATE, "te/k", NULL), 0);
	struct logical_response resp;
	assert_int_equal(node_req(&p.a, p.root, LOP_UPDATE, "te/k", NULL, &resp, &err), VERR_STANDBY);
	assert_string_equal(resp.redirect, "http://b:8200");
	logical_response_reset(&resp);

	/* sealing the active node frees the lock for the other */
	state_seal(p.b.c);
	assert_true(node_wait(&p.a, CORE_ACTIVE, 3000));
	assert_int_equal(node_do(&p.a, p.root, LOP_READ, "te/k", NULL), 0);

	/* step-down hands the lock to the other node (which must be a
	 * standby again first) */
	assert_int_equal(node_unseal(&p.b, p.key, &err), 0);
	assert_int_equal(state_get(p.b.c), CORE_STANDBY);
	assert_int_equal(node_do(&p.a, p.root, LOP_UPDATE, "sys/step-down", NULL), 0);
	assert_true(node_wait(&p.b, CORE_ACTIVE, 3000));
	assert_true(node_wait(&p.a, CORE_STANDBY, 3000));
	assert_int_equal(node_do(&p.b, p.root, LOP_READ, "te/k", NULL), 0);
	pair_close(&p);
}

/* After the loss is signalled, no write is acknowledged by the old active
 * node, even by a request that was already running. */
struct slow_writer {
	struct node *n;
	const char *root;
	int rc;
};

static void *slow_write(void *arg)
{
	struct slow_writer *w = arg;
	w->rc = node_do(w->n, w->root, LOP_UPDATE, "te/k", NULL);
	return NULL;
}

static void test_core_state__writes_are_fenced_after_loss(void **state)
{
	struct pair p;
	pair_open(&p);
	mount_te(&p.a, p.root);
	struct physical_fault_knobs k = PHYSICAL_FAULT_NONE;
	k.latency_us = 300 * 1000; /* the write reaches storage late */
	physical_fault_set(p.a.shim, &k);
	struct slow_writer w = {.n = &p.a, .root = p.root};
	pthread_t t;
	pthread_create(&t, NULL, slow_write, &w);
	usleep(100 * 1000); /* the request is in flight, inside the barrier */
	physical_inmem_ha_break(p.store);
	pthread_join(t, NULL);
	k = PHYSICAL_FAULT_NONE;
	physical_fault_set(p.a.shim, &k);
	assert_int_equal(w.rc, VERR_STANDBY);
	assert_true(node_wait(&p.a, CORE_STANDBY, 2000));
	pair_close(&p);
}

/* ---- races ---- */

struct racer {
	struct node *n;
	const char *key, *root;
	pthread_barrier_t *gate;
	int kind;
	int bad; /* answers no client could act on */
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->gate);
	struct verr err = {0};
	int rc;
	switch (r->kind % 4) {
	case 0:
		rc = node_do(r->n, r->root, LOP_UPDATE, "sys/seal", NULL);
		break;
	case 1:
		rc = node_unseal(r->n, r->key, &err);
		break;
	case 2:
		rc = node_do(r->n, r->root, LOP_READ, "te/k", NULL);
		break;
	default:
		rc = node_do(r->n, r->root, LOP_UPDATE, "te/k", NULL);
		break;
	}
	if (rc != 0 && rc != VERR_SEALED && rc != VERR_DENIED)
		r->bad++;
	return NULL;
}

static void test_core_state__parallel_unseal_and_seal(void **state)
{
	struct physical *store = store_new(false);
	struct node n;
	node_open(&n, store, false, "http://a:8200", registry, NULL, 0);
	char *key, *root;
	node_init(&n, &key, &root);
	struct verr err = {0};
	assert_int_equal(node_unseal(&n, key, &err), 0);
	mount_te(&n, root);
	assert_int_equal(node_do(&n, root, LOP_UPDATE, "te/k", NULL), 0);
	enum { THREADS = 16, ROUNDS = 20 };
	for (int round = 0; round < ROUNDS; round++) {
		/* even rounds: only unseals (exactly one transition); odd: mixed */
		if (round % 2 == 0)
			state_seal(n.c);
		pthread_barrier_t gate;
		pthread_barrier_init(&gate, NULL, THREADS);
		struct racer rs[THREADS];
		pthread_t ts[THREADS];
		for (int i = 0; i < THREADS; i++) {
			rs[i] = (struct racer){.n = &n, .key = key, .root = root, .gate = &gate,
					       .kind = round % 2 == 0 ? 1 : i};
			pthread_create(&ts[i], NULL, race, &rs[i]);
		}
		for (int i = 0; i < THREADS; i++) {
			pthread_join(ts[i], NULL);
			assert_int_equal(rs[i].bad, 0);
		}
		pthread_barrier_destroy(&gate);
		if (round % 2 == 0)
			assert_int_equal(state_get(n.c), CORE_ACTIVE);
		assert_int_equal(node_unseal(&n, key, &err), 0);
		assert_int_equal(node_do(&n, root, LOP_READ, "te/k", NULL), 0);
	}
	node_close(&n);
	physical_close(store);
	free(key);
	free(root);
}

/* ---- the periodic hook runs on the active node only ---- */

static void test_core_state__periodic_only_while_active(void **state)
{
	struct physical *store = store_new(false);
	struct node n;
	node_open(&n, store, false, "http://a:8200", registry, NULL, 10);
	char *key, *root;
	node_init(&n, &key, &root);
	struct verr err = {0};
	assert_int_equal(node_unseal(&n, key, &err), 0);
	mount_te(&n, root);
	atomic_store(&g_ticks, 0);
	usleep(150 * 1000);
	int active_ticks = atomic_load(&g_ticks);
	assert_true(active_ticks >= 3);
	state_seal(n.c);
	atomic_store(&g_ticks, 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&g_ticks), 0);
	node_close(&n);
	physical_close(store);
	free(key);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_state__transitions_without_ha),
		cmocka_unit_test(test_core_state__failed_setup_stays_sealed),
		cmocka_unit_test(test_core_state__standby_unseals_without_writing),
		cmocka_unit_test(test_core_state__failover_when_the_lock_is_lost),
		cmocka_unit_test(test_core_state__writes_are_fenced_after_loss),
		cmocka_unit_test(test_core_state__parallel_unseal_and_seal),
		cmocka_unit_test(test_core_state__periodic_only_while_active),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
