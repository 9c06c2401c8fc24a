/*
 * bench/leases.c - the expiration manager at scale, in-process over the
 * real core, barrier and `file` storage backend (built and run by
 * bench/leases.sh).
 *
 * 1. init + unseal a core on a fresh file store; mount a tiny engine
 *    ("benchlease") whose revoke handler records how late it was called;
 * 2. register N secret leases (a sample through the full request pipeline,
 *    the rest straight into the manager from several threads), with
 *    deadlines spread over WINDOW seconds starting after the restart;
 * 3. seal, free the core (the file is closed), open a new core on the same
 *    directory (a restart), and measure: time from the last unseal key to
 *    the first answered request, restore time, RSS growth per lease;
 * 4. wait for every lease to be revoked and report the expiry lag
 *    (revoke time - deadline) p50/p99/max as a Markdown table.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/acl_glue.h"
#include "core/core_int.h"
#include "core/expiration.h"
#include "core/token.h"
#include "secrets/secrets.h"
#include "util/log.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- the engine ---- */

static int64_t *g_lag;
static _Atomic long g_nlag;
static long g_cap;
static _Atomic long g_early;

static int bl_revoke(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	int64_t due = json_integer_value(json_object_get(req->secret_internal, "due"));
	int64_t lag = now_ms() - due;
	if (lag < 0)
		atomic_fetch_add(&g_early, 1);
	long i = atomic_fetch_add(&g_nlag, 1);
	if (i < g_cap)
		g_lag[i] = lag;
	return 0;
}

static int bl_creds(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	resp->secret = calloc(1, sizeof(*resp->secret));
	resp->secret->ttl = 3600;
	resp->secret->internal = json_pack("{s:I}", "due", (json_int_t)(now_ms() + 3600 * 1000));
	return 0;
}

static const struct path_def bl_paths[] = {
	{.pattern = "creds", .ops = {{LOP_UPDATE, bl_creds}}},
	{0},
};

static const struct path_def *bl_table(void *inst)
{
	return bl_paths;
}

static int bl_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	return 0;
}

static const struct backend_ops bl_ops = {
	.type = "benchlease", .init = bl_init, .paths = bl_table, .revoke = bl_revoke,
};

static const struct backend_ops *const registry[] = {
	&cubbyhole_backend_ops, &token_backend_ops, &bl_ops, NULL,
};

/* ---- helpers ---- */

static void die(const char *what, const struct verr *e)
{
	fprintf(stderr, "bench: %s: %s\n", what, e ? e->msg : "");
	exit(1);
}

static struct core *open_core(const char *dir)
{
	json_t *conf = json_pack("{s:s}", "path", dir);
	struct core_opts o = {.default_lease_ttl = 3600, .max_lease_ttl = 30 * 24 * 3600,
			      .backends = registry, .storage_type = "file"};
	struct verr e = {0};
	if (physical_file_new(&o.phys, conf, &e))
		die("open file storage", &e);
	json_decref(conf);
	struct core *c = NULL;
	if (core_new(&c, &o, &e))
		die("core_new", &e);
	return c;
}

static int request(struct core *c, const char *root, enum logical_op op, const char *path,
		   json_t *data, struct logical_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	struct logical_request r = {.op = op, .path = path, .data = data, .client_token = root,
				    .remote_addr = "127.0.0.1"};
	struct verr e = {0};
	return core_handle_request(c, &r, resp, &e);
}

struct regjob {
	struct core *c;
	long from, to, n;
	int64_t start_ms, window_ms;
};

static void *reg_thread(void *arg)
{
	struct regjob *j = arg;
	char id[64], rnd[25];
	for (long i = j->from; i < j->to; i++) {
		int64_t due = j->start_ms + (i * j->window_ms) / j->n;
		core__rand_base62(rnd, 24);
		snprintf(id, sizeof(id), "bl/creds/%s", rnd);
		json_t *rec = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:{s:I}}", "kind", "secret",
					"path", "bl/creds", "issue_ms", (json_int_t)now_ms(), "expire_ms",
					(json_int_t)due, "last_renewal_ms", (json_int_t)0, "max_ms",
					(json_int_t)0, "ttl", (json_int_t)60, "renewable", 0, "token_hash",
					"", "internal", "due", (json_int_t)due);
		struct verr e = {0};
		if (expiration_put(j->c->expire, id, rec, false, &e))
			die("register", &e);
		json_decref(rec);
	}
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s N DIR [WINDOW_S] [THREADS]\n", argv[0]);
		return 2;
	}
	long n = atol(argv[1]);
	const char *dir = argv[2];
	int64_t window_ms = (argc > 3 ? atol(argv[3]) : 60) * 1000;
	int threads = argc > 4 ? atoi(argv[4]) : 8;
	log_set_level(LOG_WARN);
	g_cap = n + 100000;
	g_lag = calloc((size_t)g_cap, sizeof(*g_lag));

	/* 1. init, unseal, mount */
	struct core *c = open_core(dir);
	struct verr e = {0};
	json_t *init = json_pack("{s:i,s:i}", "secret_shares", 1, "secret_threshold", 1), *out = NULL;
	if (core__init(c, init, &out, &e))
		die("init", &e);
	char *key = strdup(json_string_value(json_array_get(json_object_get(out, "keys_base64"), 0)));
	char *root = strdup(json_string_value(json_object_get(out, "root_token")));
	json_decref(init);
	json_decref(out);
	json_t *u = json_pack("{s:s}", "key", key);
	if (core__unseal_key(c, u, &out, &e))
		die("unseal", &e);
	json_decref(out);
	json_t *mnt = json_pack("{s:s}", "type", "benchlease");
	if (core__mount_enable(c, false, "bl", mnt, &e))
		die("mount", &e);
	json_decref(mnt);

	/* 2a. a sample through the whole pipeline (TTL 1h: not expired here) */
	long sample = n < 20000 ? n / 10 : 2000;
	int64_t t = now_ms();
	for (long i = 0; i < sample; i++) {
		struct logical_response resp;
		json_t *d = json_object();
		if (request(c, root, LOP_UPDATE, "bl/creds", d, &resp) || !resp.lease_out)
			die("pipeline register", NULL);
		logical_response_reset(&resp);
		json_decref(d);
	}
	double pipe_rate = sample * 1000.0 / (double)(now_ms() - t + 1);

	/* 2b. the rest straight into the manager. A pilot (1h deadlines, not
	 * expired here) measures the rate, so the measured leases' deadlines
	 * can start after the registration and the restart. */
	struct regjob *jobs = calloc((size_t)threads, sizeof(*jobs));
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	long pilot = (n - sample) / 20;
	long rest = n - sample - pilot;
	t = now_ms();
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct regjob){c, pilot * i / threads, pilot * (i + 1) / threads, pilot,
					  now_ms() + 3600 * 1000, 1000};
		pthread_create(&th[i], NULL, reg_thread, &jobs[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double pilot_rate = pilot * 1000.0 / (double)(now_ms() - t + 1);
	int64_t start_ms = now_ms() + (int64_t)(rest / pilot_rate * 1000.0 * 1.3) + 30000;
	t = now_ms();
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct regjob){c, rest * i / threads, rest * (i + 1) / threads, rest,
					  start_ms, window_ms};
		pthread_create(&th[i], NULL, reg_thread, &jobs[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	int64_t reg_ms = now_ms() - t;
	double put_rate = rest * 1000.0 / (double)(reg_ms + 1);
	fprintf(stderr, "registered %ld leases (%ld via the pipeline at %.0f/s, %ld direct at %.0f/s)\n",
		n, sample, pipe_rate, pilot + rest, put_rate);

	/* 3. restart */
	pthread_rwlock_wrlock(&c->state_lock);
	core__seal_now(c, &e);
	pthread_rwlock_unlock(&c->state_lock);
	core_free(c);
	long rss0 = rss_kb();
	int64_t t_open = now_ms();
	c = open_core(dir);
	int64_t open_ms = now_ms() - t_open;
	long rss1 = rss_kb();
	int64_t t0 = now_ms();
	pthread_rwlock_rdlock(&c->state_lock);
	int rc = core__unseal_key(c, u, &out, &e);
	pthread_rwlock_unlock(&c->state_lock);
	if (rc)
		die("unseal after restart", &e);
	json_decref(out);
	int64_t t1 = now_ms();
	struct logical_response resp;
	json_t *q = json_pack("{s:s}", "token", root);
	rc = request(c, root, LOP_UPDATE, "auth/token/lookup", q, &resp);
	int64_t t2 = now_ms();
	if (rc)
		die("first request", NULL);
	logical_response_reset(&resp);
	json_decref(q);
	expiration_wait_restored(c->expire);
	struct expiration_stats st;
	expiration_stats(c->expire, &st);
	long rss2 = rss_kb();
	int64_t due_before = now_ms() > start_ms ? now_ms() - start_ms : 0;
	fprintf(stderr, "restored %llu leases in %lld ms; first request %lld ms after the unseal key\n",
		(unsigned long long)st.leases, (long long)st.restore_ms, (long long)(t2 - t0));

	/* 4. expiry */
	int64_t end = start_ms + window_ms + 120000;
	while (atomic_load(&g_nlag) < rest && now_ms() < end)
		usleep(100000);
	long got = atomic_load(&g_nlag);
	long m = got < g_cap ? got : g_cap;
	qsort(g_lag, (size_t)m, sizeof(*g_lag), cmp64);
	int64_t p50 = m ? g_lag[m / 2] : -1, p99 = m ? g_lag[(long)(m * 0.99)] : -1,
		mx = m ? g_lag[m - 1] : -1;
	double per_lease = (double)(rss2 - rss1) * 1024.0 / (double)st.leases;

	printf("| metric | value |\n|---|---|\n");
	printf("| leases stored | %ld |\n", n);
	printf("| register via the request pipeline | %.0f leases/s |\n", pipe_rate);
	printf("| register direct (%d threads) | %.0f leases/s |\n", threads, put_rate);
	printf("| storage open after restart (file replay, before unseal) | %lld ms |\n", (long long)open_ms);
	printf("| unseal call (last key) | %lld ms |\n", (long long)(t1 - t0));
	printf("| **last unseal key -> first answered request** | **%lld ms** |\n", (long long)(t2 - t0));
	printf("| background restore of all leases | %lld ms |\n", (long long)st.restore_ms);
	printf("| RSS growth by the restore | %ld KiB |\n", rss2 - rss1);
	printf("| **memory per lease (RSS delta / leases)** | **%.0f bytes** |\n", per_lease);
	printf("| process RSS before / after storage open (file index) | %ld / %ld KiB |\n", rss0, rss1);
	printf("| leases expired in the window | %ld of %ld (window %lld s; %ld more due in 1 h) |\n", got,
	       rest, (long long)(window_ms / 1000), sample + pilot);
	printf("| revoked before their deadline | %ld |\n", atomic_load(&g_early));
	printf("| **expiry lag p50 / p99 / max** | **%lld / %lld / %lld ms** |\n", (long long)p50,
	       (long long)p99, (long long)mx);
	if (due_before)
		printf("| note | window began %lld ms before the restore finished |\n", (long long)due_before);

	core_free(c);
	json_decref(u);
	free(key);
	free(root);
	free(jobs);
	free(th);
	free(g_lag);
	return 0;
}
