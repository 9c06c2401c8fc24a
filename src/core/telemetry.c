/*
 * telemetry.c - the core's metrics (telemetry.h).
 *
 * The hooks are called where every request passes (core_handle_request,
 * the pipeline's handler call, token issue, the audit hooks, the HA
 * transitions); each costs a lookup in the lock-free registry plus one
 * atomic add. The collector runs when sys/metrics is rendered: it takes
 * the state lock only with tryrdlock (a scrape that arrived through the
 * pipeline already holds it for reading, and a blocking read lock behind a
 * waiting writer would deadlock), so during a transition the gauges keep
 * their previous values for one scrape.
 */
#include "core/telemetry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/core_int.h"
#include "core/expiration.h"
#include "core/router.h"
#include "core/state.h"
#include "core/token.h"
#include "physical/raft.h"

static bool is_login_path(const char *path)
{
	return !strncmp(path, "auth/", 5) && strncmp(path, "auth/token/", 11) != 0;
}

void telemetry_request(const struct logical_request *req, uint64_t t0)
{
	if (req->path && is_login_path(req->path))
		METRICS_SINCE("vault.core.handle_login_request", t0);
	else
		METRICS_SINCE("vault.core.handle_request", t0);
}

void telemetry_route(enum logical_op op, const char *mount_path, uint64_t t0)
{
	char name[160];
	const char *opn = logical_op_name(op);
	size_t ol = strlen(opn), ml = strlen(mount_path);
	if (12 + ol + 1 + ml + 1 > sizeof(name))
		return;
	char *p = stpcpy(stpcpy(name, "vault.route."), opn);
	*p++ = '.';
	for (size_t i = 0; i < ml; i++)
		p[i] = mount_path[i] == '/' ? '-' : mount_path[i];
	p[ml] = '\0';
	metrics_since(name, NULL, t0);
}

void telemetry_login(const char *mount_path, bool ok)
{
	const char *labels[] = {"mount_point", mount_path, "result", ok ? "success" : "failure",
				NULL};
	metrics_incr("vault.auth.login", labels);
}

/* Vault's creation_ttl buckets */
static const char *ttl_bucket(int64_t s)
{
	static const struct {
		int64_t max;
		const char *name;
	} b[] = {{60, "1m"},       {600, "10m"},        {1200, "20m"},        {3600, "1h"},
		 {7200, "2h"},     {86400, "1d"},       {172800, "2d"},       {604800, "7d"},
		 {2592000, "30d"}};
	if (s <= 0)
		return "+Inf";
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (s <= b[i].max)
			return b[i].name;
	return "+Inf";
}

void telemetry_token_created(const char *path, const char *type, int64_t ttl_s)
{
	/* the mount of the creation path: "auth/userpass/login/x" -> "auth/userpass/" */
	char mount[128] = "auth/token/";
	if (path && !strncmp(path, "auth/", 5)) {
		const char *s = strchr(path + 5, '/');
		size_t n = s ? (size_t)(s - path) + 1 : strlen(path);
		if (n < sizeof(mount)) {
			memcpy(mount, path, n);
			mount[n] = '\0';
		}
	}
	const char *labels[] = {"mount_point", mount,         "token_type", type ? type : "service",
				"creation_ttl", ttl_bucket(ttl_s), NULL};
	metrics_incr("vault.token.creation", labels);
}

int telemetry_audit(bool request, uint64_t t0, int rc)
{
	if (request) {
		METRICS_SINCE("vault.audit.log_request", t0);
		if (rc)
			METRICS_INC("vault.audit.log_request_failure");
	} else {
		METRICS_SINCE("vault.audit.log_response", t0);
		if (rc)
			METRICS_INC("vault.audit.log_response_failure");
	}
	return rc;
}

int telemetry_timed(int rc, const char *name, uint64_t t0)
{
	metrics_since(name, NULL, t0);
	return rc;
}

/* vault.token.count: one storage list of the accessor index, at most once
 * per usage_gauge_period (10 min), the first time at the first scrape.
 * Active node, state lock held for reading. */
static void token_count(struct core *c)
{
	static int64_t last; /* collectors run one at a time (render mutex) */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (last && ts.tv_sec - last < metrics_usage_gauge_period())
		return;
	char **keys = NULL;
	size_t n = 0;
	struct verr e = {0};
	if (view_list(&c->token_view, "accessor/", &keys, &n, &e) == 0) {
		metrics_gauge("vault.token.count", NULL, (double)n);
		last = ts.tv_sec ? ts.tv_sec : 1;
	}
	physical_list_free(keys, n);
}

static void collect(void *ctx)
{
	struct core *c = ctx;
	enum core_state st = state_get(c);
	metrics_gauge("vault.core.unsealed", NULL, st != CORE_SEALED);
	metrics_gauge("vault.core.active", NULL, st == CORE_ACTIVE);
	metrics_gauge("vault.core.standby", NULL, st == CORE_STANDBY);
	metrics_gauge("vault.ha.enabled", NULL, c->o.ha != NULL);
	struct physical_raft_status rs;
	struct verr re = {0};
	if (physical_is_raft(c->phys) && physical_raft_status(c->phys, &rs, &re) == 0) {
		/* Vault's raft_storage stats names; leader/term from the raft library */
		metrics_gauge("vault.raft_storage.stats.commit_index", NULL, (double)rs.commit_index);
		metrics_gauge("vault.raft_storage.stats.applied_index", NULL, (double)rs.applied_index);
		metrics_gauge("vault.raft_storage.stats.last_log_index", NULL, (double)rs.last_index);
		metrics_gauge("vault.raft.term", NULL, (double)rs.term);
		metrics_gauge("vault.raft.state.leader", NULL, rs.is_leader);
	}
	if (pthread_rwlock_tryrdlock(&c->state_lock) != 0)
		return;
	if (state_get(c) == CORE_ACTIVE) {
		if (c->expire) {
			struct expiration_stats es;
			expiration_stats(c->expire, &es);
			metrics_gauge("vault.expire.num_leases", NULL, (double)es.leases);
			metrics_gauge("vault.expire.num_irrevocable_leases", NULL, 0);
		}
		size_t nlog = 0, nauth = 0;
		pthread_rwlock_rdlock(&c->mounts_lock);
		for (size_t i = 0; i < c->nmounts; i++)
			c->mounts[i]->is_auth ? nauth++ : nlog++;
		pthread_rwlock_unlock(&c->mounts_lock);
		token_count(c);
		const char *lt[] = {"type", "logical", "local", "false", NULL};
		const char *at[] = {"type", "auth", "local", "false", NULL};
		metrics_gauge("vault.core.mount_table.num_entries", lt, (double)nlog);
		metrics_gauge("vault.core.mount_table.num_entries", at, (double)nauth);
	}
	pthread_rwlock_unlock(&c->state_lock);
}

/*
 * The usage gauges (Vault's usage_gauge_period metrics): every period a
 * background thread reads every stored token and sets
 *   vault.token.count.by_policy{policy}        a token counts once per policy
 *   vault.token.count.by_auth{auth_method}     the type of the issuing auth mount
 *   vault.token.count.by_ttl{creation_ttl}     Vault's TTL buckets (1m ... 30d, +Inf)
 * Reading every entry costs one storage read each, so it never runs on a
 * scrape or a request; it holds the state lock for reading (taken with
 * tryrdlock: a seal in progress skips the period) and only on the active
 * node. A label value seen in a previous walk but not in this one is set
 * to 0, so a revoked policy's gauge falls instead of freezing. At most
 * USAGE_MAX label values per gauge (Vault's maximum_gauge_cardinality).
 */
#define USAGE_MAX 500

struct usage_count {
	char *label;
	double n;
};

struct usage_gauge {
	const char *name, *label_key;
	struct usage_count *v; /* counts of this walk; previous labels at 0 */
	size_t n, cap;
};

struct telemetry_usage {
	struct core *c;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* mu */
	struct usage_gauge g[3];
};

static int usage_add(struct usage_gauge *g, const char *label)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->v[i].label, label)) {
			g->v[i].n++;
			return 0;
		}
	if (g->n >= USAGE_MAX)
		return 0;
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 16;
		struct usage_count *nv = realloc(g->v, nc * sizeof(*nv));
		if (!nv)
			return 0;
		g->v = nv;
		g->cap = nc;
	}
	if (!(g->v[g->n].label = strdup(label)))
		return 0;
	g->v[g->n++].n = 1;
	return 0;
}

/* the type of the auth mount that issued te ("token" for auth/token/) */
static void auth_method_of(struct core *c, const struct token_entry *te, char *out, size_t cap)
{
	snprintf(out, cap, "token");
	const char *p = te->path;
	if (!p || strncmp(p, "auth/", 5) || !strncmp(p, "auth/token/", 11))
		return;
	const char *s = strchr(p + 5, '/');
	size_t ml = s ? (size_t)(s - p) + 1 : strlen(p);
	pthread_rwlock_rdlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct mount_entry *m = c->mounts[i];
		if (m->is_auth && strlen(m->path) == ml && !strncmp(m->path, p, ml)) {
			snprintf(out, cap, "%s", m->type);
			break;
		}
	}
	pthread_rwlock_unlock(&c->mounts_lock);
}

static bool usage_stopping(struct telemetry_usage *u)
{
	pthread_mutex_lock(&u->mu);
	bool s = u->stop;
	pthread_mutex_unlock(&u->mu);
	return s;
}

static int usage_token(void *ctx, const struct token_entry *te)
{
	struct telemetry_usage *u = ctx;
	if (usage_stopping(u))
		return -1;
	size_t i;
	json_t *p;
	json_array_foreach(te->policies, i, p) {
		const char *s = json_string_value(p);
		if (s)
			usage_add(&u->g[0], s);
	}
	char method[64];
	auth_method_of(u->c, te, method, sizeof(method));
	usage_add(&u->g[1], method);
	usage_add(&u->g[2], ttl_bucket(te->creation_ttl));
	return 0;
}

static void usage_walk(struct telemetry_usage *u)
{
	struct core *c = u->c;
	if (pthread_rwlock_tryrdlock(&c->state_lock) != 0)
		return;
	if (state_get(c) != CORE_ACTIVE || !c->tokens) {
		pthread_rwlock_unlock(&c->state_lock);
		return;
	}
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < u->g[k].n; i++)
			u->g[k].v[i].n = 0;
	struct verr e = {0};
	int rc = token_store_walk(c->tokens, usage_token, u, &e);
	pthread_rwlock_unlock(&c->state_lock);
	if (rc)
		return; /* stopping, or storage failed: keep the last values */
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < u->g[k].n; i++) {
			const char *labels[] = {u->g[k].label_key, u->g[k].v[i].label, NULL};
			metrics_gauge(u->g[k].name, labels, u->g[k].v[i].n);
		}
}

static void *usage_loop(void *arg)
{
	struct telemetry_usage *u = arg;
	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += metrics_usage_gauge_period();
		while (!u->stop && pthread_cond_timedwait(&u->cv, &u->mu, &ts) == 0)
			;
		if (u->stop)
			break;
		pthread_mutex_unlock(&u->mu);
		usage_walk(u);
		pthread_mutex_lock(&u->mu);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

static void usage_free(struct telemetry_usage *u)
{
	if (!u)
		return;
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < u->g[k].n; i++)
			free(u->g[k].v[i].label);
		free(u->g[k].v);
	}
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->mu);
	free(u);
}

static struct telemetry_usage *usage_start(struct core *c)
{
	struct telemetry_usage *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->c = c;
	u->g[0] = (struct usage_gauge){.name = "vault.token.count.by_policy", .label_key = "policy"};
	u->g[1] = (struct usage_gauge){.name = "vault.token.count.by_auth", .label_key = "auth_method"};
	u->g[2] = (struct usage_gauge){.name = "vault.token.count.by_ttl", .label_key = "creation_ttl"};
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&u->th, NULL, usage_loop, u) != 0) {
		usage_free(u);
		return NULL;
	}
	return u;
}

int telemetry_start(struct core *c)
{
	c->usage = usage_start(c); /* NULL: no usage gauges, the rest works */
	return metrics_collector_add(collect, c);
}

void telemetry_stop(struct core *c)
{
	if (c->telemetry_id > 0)
		metrics_collector_remove(c->telemetry_id);
	struct telemetry_usage *u = c->usage;
	if (!u)
		return;
	pthread_mutex_lock(&u->mu);
	u->stop = true;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->th, NULL);
	usage_free(u);
	c->usage = NULL;
}

const struct field_def telemetry_metrics_fields[] = {
	{"format", FT_STRING, "", "\"prometheus\" or \"json\" (default)", false},
	{NULL},
};

int core_metrics(struct core *c, const char *format, const char *accept, char **body,
		 size_t *len, char **content_type, struct verr *err)
{
	*body = *content_type = NULL;
	*len = 0;
	int f = metrics_format_parse(format, accept);
	if (f < 0)
		return verr_set(err, VERR_INVALID, "unknown format \"%.32s\": expected prometheus or json",
				format);
	struct buf b;
	buf_init(&b, 16384);
	int rc = metrics_render(&b, (enum metrics_format)f, err);
	if (rc) {
		buf_free(&b);
		return rc;
	}
	*body = buf_take(&b, len);
	*content_type = strdup(metrics_content_type((enum metrics_format)f));
	if (!*body || !*content_type) {
		free(*body);
		free(*content_type);
		*body = *content_type = NULL;
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

int telemetry_sys_metrics(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	const char *accept = json_string_value(json_object_get(req->headers, "accept"));
	int rc = core_metrics(req->backend, request_str(req, "format"), accept, &resp->raw_body,
			      &resp->raw_len, &resp->raw_content_type, err);
	if (rc == 0)
		resp->raw = true;
	return rc;
}
