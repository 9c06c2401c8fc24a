/*
 * tests/unit/physical/raft.c - the `raft` storage backend (src/physical/raft*.c):
 * the shared storage contract on one node, persistence and log compaction
 * across reopen, three in-process nodes on loopback (join, replication,
 * follower writes refused, leader loss and re-election with every
 * committed write kept, remove-peer), the HA lock (lost fires when the
 * leader loses its quorum), backup dump/load and concurrent batched
 * writers, and the mutual-TLS transport's refusals (no certificate,
 * another CA, a node certificate claiming another id) and the revocation of a
 * removed member's certificate. Data directories go under RAFT_TEST_DIR (default /var/tmp): raft
 * probes O_DIRECT/AIO and behaves differently on tmpfs. Kill -9 is in
 * raft_crash.c.
 */
#include "physical/semantics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "physical/raft.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/secmem.h"
#include "util/x509gen.h"

/* ---- helpers ---------------------------------------------------------------- */

static char *tmpdir_new(void)
{
	const char *base = getenv("RAFT_TEST_DIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/coffer-raft-XXXXXX", base && *base ? base : "/var/tmp");
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmpdir_free(char *dir)
{
	if (dir)
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

struct node {
	char *dir;
	char name[32];
	char addr[64];
	struct physical *p;
};

static struct physical *open_node(struct node *n, const char *extra_k, long extra_v)
{
	struct verr err = {0};
	json_t *conf = json_pack("{s:s, s:s, s:s, s:i}", "path", n->dir, "node_id", n->name,
				 "raft_addr", n->addr, "performance_multiplier", 1);
	if (extra_k)
		json_object_set_new(conf, extra_k, json_integer(extra_v));
	struct physical *p = NULL;
	int rc = physical_raft_new(&p, conf, &err);
	json_decref(conf);
	if (rc)
		fail_msg("open %s: %s", n->name, err.msg);
	return p;
}

static void node_init(struct node *n, const char *name)
{
	n->dir = tmpdir_new();
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", free_port());
	n->p = open_node(n, NULL, 0);
}

/* what sys/storage/raft/bootstrap/challenge does for a joiner's TLS
 * credentials: the joiner's key, signed by the leader's raft CA */
static void tls_enroll(struct node *leader, struct node *n)
{
	struct verr err = {0};
	char *pub = NULL, *cert = NULL, *ca = NULL;
	assert_int_equal(physical_raft_tls_keygen(n->p, &pub, &err), 0);
	if (physical_raft_tls_sign(leader->p, n->name, pub, &cert, &ca, &err))
		fail_msg("sign %s: %s", n->name, err.msg);
	if (physical_raft_tls_install(n->p, cert, ca, &err))
		fail_msg("install %s: %s", n->name, err.msg);
	free(pub);
	free(cert);
	free(ca);
}

static void node_fini(struct node *n)
{
	physical_close(n->p);
	n->p = NULL;
	tmpdir_free(n->dir);
	n->dir = NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* does p hold key = val (val NULL: absent)? */
static bool holds(struct physical *p, const char *key, const char *val)
{
	uint8_t *out = NULL;
	size_t len = 0;
	if (physical_get(p, key, &out, &len, NULL))
		return false;
	bool ok = val ? out && len == strlen(val) && !memcmp(out, val, len) : !out;
	free(out);
	return ok;
}

static bool wait_holds(struct physical *p, const char *key, const char *val, double secs)
{
	double end = now_s() + secs;
	while (now_s() < end) {
		if (holds(p, key, val))
			return true;
		sleep_ms(10);
	}
	return holds(p, key, val);
}

static bool is_leader(struct physical *p)
{
	struct physical_raft_status st;
	return p && !physical_raft_status(p, &st, NULL) && st.is_leader;
}

/* index of the leader among n nodes (waiting up to secs), or -1 */
static int wait_leader(struct node *ns, int n, double secs)
{
	double end = now_s() + secs;
	do {
		for (int i = 0; i < n; i++)
			if (ns[i].p && is_leader(ns[i].p))
				return i;
		sleep_ms(10);
	} while (now_s() < end);
	return -1;
}

/* ---- the shared contract on a one-node cluster ------------------------------- */

static struct node *sem_nodes[8];

static int sem_setup(void **state)
{
	for (int i = 0; i < 8; i++)
		if (!sem_nodes[i]) {
			sem_nodes[i] = calloc(1, sizeof(struct node));
			node_init(sem_nodes[i], "sem");
			*state = sem_nodes[i]->p;
			return 0;
		}
	return -1;
}

static int sem_teardown(void **state)
{
	for (int i = 0; i < 8; i++)
		if (sem_nodes[i] && sem_nodes[i]->p == *state) {
			node_fini(sem_nodes[i]);
			free(sem_nodes[i]);
			sem_nodes[i] = NULL;
		}
	return 0;
}

/* ---- one node: bootstrap, persistence, compaction ---------------------------- */

static void test_physical_raft__first_write_bootstraps_and_survives_reopen(void **state)
{
	(void)state;
	struct node n = {0};
	node_init(&n, "solo");
	struct physical_raft_status st;
	assert_int_equal(physical_raft_status(n.p, &st, NULL), 0);
	assert_true(st.pristine);
	sem_put(n.p, "core/a", "1");
	assert_int_equal(physical_raft_status(n.p, &st, NULL), 0);
	assert_false(st.pristine);
	assert_true(st.is_leader);
	assert_string_equal(st.leader_id, "solo");
	physical_close(n.p);
	n.p = open_node(&n, NULL, 0);
	sem_expect(n.p, "core/a", "1");
	assert_true(is_leader(n.p));
	/* the configuration names the node, Vault's shape */
	json_t *cfg = NULL;
	assert_int_equal(physical_raft_configuration(n.p, &cfg, NULL), 0);
	json_t *servers = json_object_get(cfg, "servers");
	assert_int_equal(json_array_size(servers), 1);
	json_t *s0 = json_array_get(servers, 0);
	assert_string_equal(json_string_value(json_object_get(s0, "node_id")), "solo");
	assert_string_equal(json_string_value(json_object_get(s0, "address")), n.addr);
	assert_true(json_is_true(json_object_get(s0, "leader")));
	assert_true(json_is_true(json_object_get(s0, "voter")));
	assert_true(json_integer_value(json_object_get(cfg, "index")) > 0);
	json_decref(cfg);
	node_fini(&n);
}

static int count_snapshots(const char *dir)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/raft", dir);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int snaps = 0;
	for (struct dirent *e; (e = readdir(d));)
		snaps += !strncmp(e->d_name, "snapshot-", 9) && !strstr(e->d_name, ".meta");
	closedir(d);
	return snaps;
}

static void test_physical_raft__compaction_keeps_everything(void **state)
{
	(void)state;
	struct node n = {0};
	n.dir = tmpdir_new();
	snprintf(n.name, sizeof(n.name), "compact");
	snprintf(n.addr, sizeof(n.addr), "127.0.0.1:%d", free_port());
	struct verr err = {0};
	json_t *conf = json_pack("{s:s, s:s, s:s, s:i, s:i}", "path", n.dir, "node_id", n.name,
				 "raft_addr", n.addr, "snapshot_threshold", 32, "trailing_logs",
				 8);
	assert_int_equal(physical_raft_new(&n.p, conf, &err), 0);
	char key[64], val[64];
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "k/%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		sem_put(n.p, key, val);
		if (i % 3 == 0) {
			snprintf(key, sizeof(key), "k/%03d", i / 2);
			assert_int_equal(physical_delete(n.p, key, &err), 0);
		}
	}
	physical_close(n.p);
	/* snapshots were written and the log was truncated behind them */
	assert_true(count_snapshots(n.dir) > 0);
	assert_int_equal(physical_raft_new(&n.p, conf, &err), 0);
	json_decref(conf);
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "k/%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		bool deleted = false;
		for (int j = 0; j < 400; j += 3)
			deleted |= j / 2 == i;
		sem_expect(n.p, key, deleted ? NULL : val);
	}
	node_fini(&n);
}

/* Log compaction is paced (raft_loop.c): past the threshold but below the
 * hard bound (8 x threshold) nothing is taken until the node's timer fires,
 * within [interval, 2 x interval); then the next write takes it. Fails on
 * the old check after every applied entry (a snapshot at entry 32). */
static void test_physical_raft__compaction_waits_for_the_interval(void **state)
{
	(void)state;
	struct node n = {0};
	n.dir = tmpdir_new();
	snprintf(n.name, sizeof(n.name), "paced");
	snprintf(n.addr, sizeof(n.addr), "127.0.0.1:%d", free_port());
	struct verr err = {0};
	json_t *conf = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "path", n.dir, "node_id",
				 n.name, "raft_addr", n.addr, "snapshot_threshold", 32,
				 "trailing_logs", 8, "snapshot_interval", "1s");
	assert_int_equal(physical_raft_new(&n.p, conf, &err), 0);
	json_decref(conf);
	char key[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 150; i++) { /* > threshold, < 8 x threshold */
		snprintf(key, sizeof(key), "k/%03d", i);
		sem_put(n.p, key, "v");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (took < 0.9) /* the timer cannot have fired yet (its first run is >= 1 s) */
		assert_int_equal(count_snapshots(n.dir), 0);
	/* within 2 s the timer finds one due; the next write takes it */
	int snaps = 0;
	for (int i = 0; i < 60 && snaps <= 0; i++) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		snprintf(key, sizeof(key), "tick/%02d", i);
		sem_put(n.p, key, "v");
		snaps = count_snapshots(n.dir);
	}
	assert_true(snaps > 0);
	sem_expect(n.p, "k/000", "v");
	sem_expect(n.p, "k/149", "v");
	node_fini(&n);
}

static void test_physical_raft__bad_config(void **state)
{
	(void)state;
	struct verr err = {0};
	struct physical *p = NULL;
	json_t *conf = json_pack("{}");
	assert_int_equal(physical_raft_new(&p, conf, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "path"));
	json_decref(conf);
	char *dir = tmpdir_new();
	conf = json_pack("{s:s, s:s}", "path", dir, "performance_multiplier", "eleven");
	assert_int_equal(physical_raft_new(&p, conf, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "performance_multiplier"));
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "path", dir, "snapshot_interval", "soon");
	assert_int_equal(physical_raft_new(&p, conf, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "snapshot_interval"));
	json_decref(conf);
	conf = json_pack("{s:s, s:s}", "path", dir, "cluster_addr", "https://127.0.0.1");
	assert_int_equal(physical_raft_new(&p, conf, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "port"));
	json_decref(conf);
	/* raft's port defaults to the cluster port + 1 */
	conf = json_pack("{s:s, s:s, s:s}", "path", dir, "node_id", "p1", "cluster_addr",
			 "https://127.0.0.1:18431");
	assert_int_equal(physical_raft_new(&p, conf, &err), 0);
	struct physical_raft_status st;
	assert_int_equal(physical_raft_status(p, &st, &err), 0);
	assert_string_equal(st.addr, "127.0.0.1:18432");
	physical_close(p);
	json_decref(conf);
	tmpdir_free(dir);
}

/* ---- three nodes ------------------------------------------------------------- */

static void cluster_up(struct node *ns)
{
	node_init(&ns[0], "n1");
	node_init(&ns[1], "n2");
	node_init(&ns[2], "n3");
	sem_put(ns[0].p, "core/seed", "x"); /* bootstraps n1 */
	struct verr err = {0};
	for (int i = 1; i < 3; i++) {
		tls_enroll(&ns[0], &ns[i]);
		if (physical_raft_join_start(ns[i].p, &err))
			fail_msg("join start %s: %s", ns[i].name, err.msg);
		if (physical_raft_add_peer(ns[0].p, ns[i].name, ns[i].addr, true, &err))
			fail_msg("add %s: %s", ns[i].name, err.msg);
	}
	assert_true(wait_holds(ns[1].p, "core/seed", "x", 5));
	assert_true(wait_holds(ns[2].p, "core/seed", "x", 5));
}

static void test_physical_raft__three_nodes_replicate_and_fail_over(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	struct verr err = {0};
	/* joining twice is harmless; joining a started node is refused */
	assert_int_equal(physical_raft_add_peer(ns[0].p, "n2", ns[1].addr, true, &err), 0);
	assert_int_equal(physical_raft_join_start(ns[1].p, &err), VERR_INVALID);
	json_t *cfg = NULL;
	assert_int_equal(physical_raft_configuration(ns[0].p, &cfg, &err), 0);
	json_t *servers = json_object_get(cfg, "servers");
	assert_int_equal(json_array_size(servers), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *sv = json_array_get(servers, i);
		assert_true(json_is_true(json_object_get(sv, "voter")));
		assert_string_equal(json_string_value(json_object_get(sv, "node_id")), ns[i].name);
	}
	json_decref(cfg);

	char key[64], val[64];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "data/%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		sem_put(ns[0].p, key, val);
	}
	assert_true(wait_holds(ns[1].p, "data/199", "v199", 5));
	assert_true(wait_holds(ns[2].p, "data/199", "v199", 5));
	/* a follower refuses writes, naming the leader */
	assert_int_equal(physical_put(ns[1].p, "x", (const uint8_t *)"y", 1, &err), VERR_STANDBY);
	assert_non_null(strstr(err.msg, ns[0].addr));
	assert_true(holds(ns[1].p, "x", NULL));

	/* the leader dies: another takes over within a few election timeouts,
	 * with every acknowledged write */
	double t0 = now_s();
	physical_close(ns[0].p);
	ns[0].p = NULL;
	int l = wait_leader(ns, 3, 10);
	assert_true(l == 1 || l == 2);
	double took = now_s() - t0;
	print_message("[ raft     ] new leader %s after %.0f ms\n", ns[l].name, took * 1000);
	assert_true(took < 5);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "data/%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		sem_expect(ns[l].p, key, val);
	}
	sem_put(ns[l].p, "after", "failover");
	int other = l == 1 ? 2 : 1;
	assert_true(wait_holds(ns[other].p, "after", "failover", 5));
	/* the old leader comes back as a follower and catches up */
	ns[0].p = open_node(&ns[0], NULL, 0);
	assert_true(wait_holds(ns[0].p, "after", "failover", 10));
	assert_false(is_leader(ns[0].p));

	/* remove-peer: n1 leaves the configuration */
	l = wait_leader(ns, 3, 5);
	assert_true(l >= 0);
	assert_int_equal(physical_raft_remove_peer(ns[l].p, "nope", &err), VERR_NOT_FOUND);
	int victim = l == 0 ? 1 : 0;
	if (physical_raft_remove_peer(ns[l].p, ns[victim].name, &err))
		fail_msg("remove: %s", err.msg);
	assert_int_equal(physical_raft_configuration(ns[l].p, &cfg, &err), 0);
	assert_int_equal(json_array_size(json_object_get(cfg, "servers")), 2);
	json_decref(cfg);
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

static atomic_int lost_calls;
static void on_lost(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&lost_calls, 1);
}

static void test_physical_raft__ha_lock_follows_leadership(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	struct verr err = {0};
	struct physical_ha *h0 = physical_ha(ns[0].p), *h1 = physical_ha(ns[1].p);
	assert_non_null(h0);
	/* only the leader acquires */
	assert_int_equal(physical_ha_acquire(h1, "https://n2:8200", on_lost, NULL, &err), 0);
	/* a standby's wait: the leader's returns 1 at once (acquire now); a
	 * follower's times out with 0, or returns 0 as soon as it is woken */
	assert_int_equal(physical_ha_wait(h0, 5000), 1);
	double w0 = now_s();
	assert_int_equal(physical_ha_wait(h1, 100), 0);
	assert_true(now_s() - w0 >= 0.09);
	physical_ha_wake(h1);
	w0 = now_s();
	assert_int_equal(physical_ha_wait(h1, 60000), 0);
	assert_true(now_s() - w0 < 30); /* woken, not the minute */
	assert_int_equal(physical_ha_acquire(h0, "https://n1:8200", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_renew(h0, &err), 0);
	/* every node names the holder */
	char *v = NULL;
	double end = now_s() + 5;
	do {
		free(v);
		v = NULL;
		assert_int_equal(physical_ha_holder(h1, &v, &err), 0);
		if (v)
			break;
		sleep_ms(10);
	} while (now_s() < end);
	assert_non_null(v);
	assert_string_equal(v, "https://n1:8200");
	free(v);
	/* the leader loses its quorum: lost fires, renew fails, writes fail */
	atomic_store(&lost_calls, 0);
	physical_close(ns[1].p);
	ns[1].p = NULL;
	physical_close(ns[2].p);
	ns[2].p = NULL;
	double t0 = now_s();
	while (atomic_load(&lost_calls) == 0 && now_s() - t0 < 10)
		sleep_ms(5);
	assert_int_equal(atomic_load(&lost_calls), 1);
	print_message("[ raft     ] lost fired %.0f ms after the quorum went\n",
		      (now_s() - t0) * 1000);
	assert_int_equal(physical_ha_renew(h0, &err), VERR_STANDBY);
	assert_int_not_equal(physical_put(ns[0].p, "fenced", (const uint8_t *)"1", 1, &err), 0);
	physical_ha_release(h0);
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

/* ---- dump / load (the snapshot archive's state) ------------------------------ */

struct mem {
	uint8_t *b;
	size_t n, cap, off;
	size_t cut; /* load: report an error after this many bytes (0: never) */
};

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;
	if (m->n + len > m->cap) {
		m->cap = (m->n + len) * 2;
		m->b = realloc(m->b, m->cap);
	}
	memcpy(m->b + m->n, buf, len);
	m->n += len;
	return 0;
}

static long mem_read(void *ctx, void *buf, size_t len, struct verr *err)
{
	struct mem *m = ctx;
	if (m->cut && m->off >= m->cut)
		return verr_set(err, VERR_INVALID, "simulated read failure");
	size_t left = m->n - m->off;
	if (len > left)
		len = left;
	if (len > 777)
		len = 777; /* short reads on purpose */
	memcpy(buf, m->b + m->off, len);
	m->off += len;
	return (long)len;
}

static void test_physical_raft__dump_load_replaces_state_everywhere(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	struct verr err = {0};
	char key[64], val[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "b/%d/%d", i % 7, i);
		snprintf(val, sizeof(val), "val-%d", i);
		sem_put(ns[0].p, key, val);
	}
	struct mem m = {0};
	uint64_t dumped = 0;
	assert_int_equal(physical_raft_dump(ns[0].p, mem_write, &m, &dumped, &err), 0);
	assert_int_equal(dumped, 3001); /* + core/seed */
	/* changes after the backup */
	sem_put(ns[0].p, "later", "1");
	sem_put(ns[0].p, "b/0/0", "changed");
	/* a failing stream changes nothing */
	m.cut = m.n / 2;
	m.off = 0;
	assert_int_equal(physical_raft_load(ns[0].p, mem_read, &m, NULL, &err), VERR_INVALID);
	sem_expect(ns[0].p, "later", "1");
	sem_expect(ns[0].p, "b/0/0", "changed");
	/* a full one restores exactly the backup on every node */
	m.cut = 0;
	m.off = 0;
	uint64_t loaded = 0;
	if (physical_raft_load(ns[0].p, mem_read, &m, &loaded, &err))
		fail_msg("load: %s", err.msg);
	assert_int_equal(loaded, 3001);
	sem_expect(ns[0].p, "later", NULL);
	sem_expect(ns[0].p, "b/0/0", "val-0");
	assert_true(wait_holds(ns[2].p, "later", NULL, 5));
	assert_true(wait_holds(ns[2].p, "b/0/0", "val-0", 5));
	sem_expect(ns[2].p, "b/3/2999", "val-2999");
	free(m.b);
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

/* ---- concurrent writers share log entries ------------------------------------ */

struct wctx {
	struct physical *p;
	int tid, n;
};

static void *writer(void *arg)
{
	struct wctx *w = arg;
	char key[64];
	struct verr err = {0};
	for (int i = 0; i < w->n; i++) {
		snprintf(key, sizeof(key), "w/%d/%d", w->tid, i);
		if (physical_put(w->p, key, (const uint8_t *)"0123456789abcdef", 16, &err))
			return (void *)1;
	}
	return NULL;
}

static void test_physical_raft__concurrent_writers_are_batched(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	enum { T = 16, N = 300 };
	pthread_t th[T];
	struct wctx w[T];
	struct physical_raft_status before, after;
	physical_raft_status(ns[0].p, &before, NULL);
	double b0 = metrics_value_for_tests("vault.raft-storage.batches", NULL);
	double r0 = metrics_value_for_tests("vault.raft-storage.batched_records", NULL);
	double t0 = now_s();
	for (int i = 0; i < T; i++) {
		w[i] = (struct wctx){ns[0].p, i, N};
		pthread_create(&th[i], NULL, writer, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		void *r = NULL;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	double dt = now_s() - t0;
	physical_raft_status(ns[0].p, &after, NULL);
	uint64_t entries = after.last_index - before.last_index;
	print_message("[ raft     ] %d replicated writes by %d threads in %.2f s (%.0f/s), %llu "
		      "log entries\n",
		      T * N, T, dt, T * N / dt, (unsigned long long)entries);
	assert_true(entries < (uint64_t)T * N); /* writes shared entries */
	/* the write path's metrics saw them: every write in a batch, each
	 * stage timed (one registry for the three nodes of this process) */
	double batches = metrics_value_for_tests("vault.raft-storage.batches", NULL) - b0;
	double recs = metrics_value_for_tests("vault.raft-storage.batched_records", NULL) - r0;
	print_message("[ raft     ] %.0f batch entries, %.1f writes each\n", batches,
		      batches > 0 ? recs / batches : 0);
	assert_true(recs >= T * N);
	assert_true(batches > 0 && batches < recs);
	static const char *const stages[] = {
		"vault.raft-storage.queue_wait", "vault.raft.commitTime", "vault.raft-storage.wakeup",
		"vault.raft.leader.dispatchLog", "vault.raft.rpc.appendEntries.storeLogs"};
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if (metrics_value_for_tests(stages[i], NULL) < 1)
			fail_msg("no observation of %s", stages[i]);
	sem_expect(ns[0].p, "w/15/299", "0123456789abcdef");
	assert_true(wait_holds(ns[1].p, "w/15/299", "0123456789abcdef", 5));
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

/* A restarted member serves reads as soon as open returns: its state then
 * holds every write committed before it stopped (the unseal of a restarted
 * node read a state without the seal configuration: "Vault is not
 * initialized"). Closed and reopened several times: the first append from
 * the leader may carry an older commit index than the log the node has. */
static void test_physical_raft__restarted_follower_is_caught_up_when_open_returns(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	assert_int_equal(wait_leader(ns, 3, 5), 0);
	char key[32];
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 50; i++) {
			snprintf(key, sizeof(key), "r%d/%d", round, i);
			sem_put(ns[0].p, key, "v");
		}
		struct node *f = &ns[1 + round % 2];
		assert_true(wait_holds(f->p, key, "v", 5));
		physical_close(f->p);
		sem_put(ns[0].p, "while-down", key); /* the leader moves on meanwhile */
		f->p = open_node(f, NULL, 0);
		for (int r = 0; r <= round; r++)
			for (int i = 0; i < 50; i++) {
				snprintf(key, sizeof(key), "r%d/%d", r, i);
				if (!holds(f->p, key, "v"))
					fail_msg("%s reopened without %s (round %d)", f->name, key, round);
			}
	}
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

/* ---- the TLS transport ---------------------------------------------------------- */

static void ctx_pem(SSL_CTX *ctx, const char *cert, const char *key, const char *ca)
{
	BIO *b = BIO_new_mem_buf(ca, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x), 1);
	X509_free(x);
	BIO_free(b);
	if (!cert)
		return;
	b = BIO_new_mem_buf(cert, -1);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* A TLS client on the raft port of addr (trusting ca) that presents cert
 * (or none) and claims node `name` in the transport's header: the byte the
 * node answers, or -1 when it refused the connection. */
static int tls_claim(const char *addr, const char *ca, const char *cert, const char *key,
		     const char *name)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1)),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ctx_pem(ctx, cert, key, ca);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	int got = -1;
	if (SSL_connect(ssl) == 1) {
		uint8_t hdr[300];
		const char *ad = "127.0.0.1:1";
		size_t nl = strlen(name), al = strlen(ad), o = 0;
		memcpy(hdr, "CRT1", 4);
		o = 4;
		hdr[o++] = (uint8_t)nl;
		memcpy(hdr + o, name, nl);
		o += nl;
		hdr[o++] = (uint8_t)al;
		memcpy(hdr + o, ad, al);
		o += al;
		unsigned char b = 0;
		if (SSL_write(ssl, hdr, (int)o) == (int)o && SSL_read(ssl, &b, 1) == 1)
			got = b;
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return got;
}

static void test_physical_raft__tls_refuses_strangers(void **state)
{
	(void)state;
	struct node n = {0};
	node_init(&n, "n1");
	sem_put(n.p, "core/seed", "x"); /* bootstraps: the raft CA is generated */
	struct verr err = {0};
	char *ca = NULL, *cakey = NULL;
	size_t cakl = 0;
	assert_int_equal(physical_raft_tls_ca(n.p, &ca, &cakey, &cakl, &err), 0);
	/* a certificate for n5 from the cluster's CA */
	char *k5 = NULL, *pub5 = NULL, *c5 = NULL, *ca2 = NULL;
	size_t k5l = 0;
	assert_int_equal(x509gen_keypair(&k5, &k5l, &pub5), 0);
	assert_int_equal(physical_raft_tls_sign(n.p, "n5", pub5, &c5, &ca2, &err), 0);
	assert_string_equal(ca, ca2);
	/* garbage is refused naming the field */
	char *bad = NULL, *bad2 = NULL;
	assert_int_equal(physical_raft_tls_sign(n.p, "n6", "not a key", &bad, &bad2, &err),
			 VERR_INVALID);
	assert_non_null(strstr(err.msg, "raft_public_key"));
	/* and one for n5 from another CA */
	char *oca = NULL, *ocak = NULL, *oc5 = NULL;
	size_t ocakl = 0;
	assert_int_equal(x509gen_ca("other", NULL, 1, &oca, &ocak, &ocakl), 0);
	assert_int_equal(x509gen_issue(oca, ocak, pub5, "n5", 1, &oc5), 0);

	assert_int_equal(tls_claim(n.addr, ca, c5, k5, "n5"), 0x5a); /* the control */
	assert_int_equal(tls_claim(n.addr, ca, c5, k5, "n1"), -1);   /* speaks for n1 */
	assert_int_equal(tls_claim(n.addr, ca, NULL, NULL, "n5"), -1); /* no certificate */
	assert_int_equal(tls_claim(n.addr, ca, oc5, k5, "n5"), -1);   /* another CA */
	/* the node still serves */
	sem_put(n.p, "core/after", "y");
	sem_expect(n.p, "core/after", "y");

	free(ca);
	free(ca2);
	free(c5);
	free(pub5);
	free(oca);
	free(oc5);
	secmem_free(cakey, cakl + 1);
	secmem_free(k5, k5l + 1);
	secmem_free(ocak, ocakl + 1);
	node_fini(&n);
}

static char *slurp(const char *dir, const char *name)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/tls/%s", dir, name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *b = calloc(1, 16384);
	size_t n = fread(b, 1, 16383, f);
	fclose(f);
	assert_true(n > 0);
	return b;
}

static uint64_t term_of(struct physical *p)
{
	struct physical_raft_status st;
	assert_int_equal(physical_raft_status(p, &st, NULL), 0);
	return st.term;
}

/* remove-peer revokes the member's certificate on every node: its old
 * credentials are refused (restarted with them it cannot make the others
 * bump their term), and a rejoin with a fresh certificate is accepted */
static void test_physical_raft__removed_peer_is_refused(void **state)
{
	(void)state;
	struct node ns[3] = {0};
	cluster_up(ns);
	struct verr err = {0};
	int l = wait_leader(ns, 3, 5);
	assert_int_equal(l, 0);
	sem_put(ns[0].p, "before", "remove");
	assert_true(wait_holds(ns[2].p, "before", "remove", 5));
	char *ca = slurp(ns[0].dir, "ca.crt");
	char *cert = slurp(ns[2].dir, "node.crt"), *key = slurp(ns[2].dir, "node.key");
	/* the control: n3's credentials are good before the remove */
	assert_int_equal(tls_claim(ns[1].addr, ca, cert, key, "n3"), 0x5a);
	if (physical_raft_remove_peer(ns[0].p, "n3", &err))
		fail_msg("remove: %s", err.msg);
	/* the leader applied the revocation before remove-peer returned; the
	 * other member once it replicates */
	assert_int_equal(tls_claim(ns[0].addr, ca, cert, key, "n3"), -1);
	double end = now_s() + 5;
	while (tls_claim(ns[1].addr, ca, cert, key, "n3") != -1 && now_s() < end)
		sleep_ms(50);
	assert_int_equal(tls_claim(ns[1].addr, ca, cert, key, "n3"), -1);

	/* n3 restarts with its old tls/ and raft data: it campaigns, nobody
	 * listens; the others keep their leader and their term */
	physical_close(ns[2].p);
	uint64_t t0 = term_of(ns[0].p), t1 = term_of(ns[1].p);
	ns[2].p = open_node(&ns[2], NULL, 0);
	sleep_ms(4000); /* several election timeouts of n3 */
	assert_true(is_leader(ns[0].p));
	assert_int_equal(term_of(ns[0].p), t0);
	assert_int_equal(term_of(ns[1].p), t1);
	sem_put(ns[0].p, "after", "remove");
	assert_true(wait_holds(ns[1].p, "after", "remove", 5));
	assert_true(holds(ns[2].p, "after", NULL));

	/* a rejoin with an empty path: a fresh certificate, accepted */
	node_fini(&ns[2]);
	node_init(&ns[2], "n3");
	tls_enroll(&ns[0], &ns[2]);
	assert_int_equal(physical_raft_join_start(ns[2].p, &err), 0);
	if (physical_raft_add_peer(ns[0].p, "n3", ns[2].addr, true, &err))
		fail_msg("re-add n3: %s", err.msg);
	assert_true(wait_holds(ns[2].p, "after", "remove", 10));
	/* the old certificate stays refused */
	assert_int_equal(tls_claim(ns[0].addr, ca, cert, key, "n3"), -1);
	/* and the revocation survives log compaction (it is in the snapshot):
	 * a restarted member that loads the snapshot still refuses it */
	assert_int_equal(physical_raft_compact(ns[0].p, &err), 0);
	physical_close(ns[0].p);
	ns[0].p = open_node(&ns[0], NULL, 0);
	assert_true(wait_holds(ns[0].p, "after", "remove", 10));
	assert_int_equal(tls_claim(ns[0].addr, ca, cert, key, "n3"), -1);
	assert_true(wait_leader(ns, 3, 10) >= 0);
	free(ca);
	free(cert);
	free(key);
	for (int i = 0; i < 3; i++)
		node_fini(&ns[i]);
}

int main(void)
{
	log_set_level(LOG_OFF);
	signal(SIGPIPE, SIG_IGN); /* as the server does: peers close connections */
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(sem_setup, sem_teardown),
		cmocka_unit_test(test_physical_raft__first_write_bootstraps_and_survives_reopen),
		cmocka_unit_test(test_physical_raft__compaction_keeps_everything),
		cmocka_unit_test(test_physical_raft__compaction_waits_for_the_interval),
		cmocka_unit_test(test_physical_raft__bad_config),
		cmocka_unit_test(test_physical_raft__three_nodes_replicate_and_fail_over),
		cmocka_unit_test(test_physical_raft__tls_refuses_strangers),
		cmocka_unit_test(test_physical_raft__removed_peer_is_refused),
		cmocka_unit_test(test_physical_raft__ha_lock_follows_leadership),
		cmocka_unit_test(test_physical_raft__dump_load_replaces_state_everywhere),
		cmocka_unit_test(test_physical_raft__concurrent_writers_are_batched),
		cmocka_unit_test(test_physical_raft__restarted_follower_is_caught_up_when_open_returns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
