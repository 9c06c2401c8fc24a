/*
 * raft.c - the integrated raft storage backend: `storage "raft" { ... }`.
 * Its configuration, the physical.h storage ops (reads from the local
 * state machine, writes through the raft log), the HA lock that raft
 * leadership implements, and the membership / snapshot calls of raft.h.
 * The loop thread is raft_loop.c, the state machine raft_fsm.c; the DESIGN
 * block is in raft_int.h.
 *
 * HA: acquire succeeds only on the raft leader, and only after a holder
 * record naming this node (raft id + the advertised value) has committed in
 * the current leadership - so everything committed before is applied and
 * every node can name the active one (holder() answers the record while its
 * node is the known leader). Losing leadership fires `lost` from the loop
 * thread within one loop iteration; release hands leadership to another
 * voter (so sys/step-down moves the active node). A standby's wait returns
 * the moment this node becomes leader, so it acquires without polling.
 */
#include "physical/raft_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/rand.h"

static const struct physical_ops raft_ops;
static const struct physical_ha_ops raft_ha_ops;

bool physical_is_raft(const struct physical *p)
{
	return p && p->ops == &raft_ops;
}

static struct rstore *as_raft(struct physical *p, struct verr *err)
{
	if (!physical_is_raft(p)) {
		verr_set(err, VERR_INVALID, "the storage backend is not raft");
		return NULL;
	}
	return (struct rstore *)p;
}

/* ---- reads ------------------------------------------------------------------- */

static int raft_get(struct physical *p, const char *key, uint8_t **out, size_t *len,
		    struct verr *err)
{
	struct rstore *s = (struct rstore *)p;
	pthread_rwlock_rdlock(&s->fsm_lock);
	int rc = physical_get(s->kv, key, out, len, err);
	pthread_rwlock_unlock(&s->fsm_lock);
	return rc;
}

static int raft_list(struct physical *p, const char *prefix, char ***out, size_t *n,
		     struct verr *err)
{
	struct rstore *s = (struct rstore *)p;
	pthread_rwlock_rdlock(&s->fsm_lock);
	int rc = physical_list(s->kv, prefix, out, n, err);
	pthread_rwlock_unlock(&s->fsm_lock);
	return rc;
}

/* ---- writes ------------------------------------------------------------------ */

int rstore__submit_record(struct rstore *s, uint8_t *rec, size_t len, struct verr *err)
{
	struct rop *op = rstore__op_new(ROP_APPLY);
	if (!op) {
		free(rec);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	op->buf = rec;
	op->len = len;
	int rc = rstore__submit(s, op, err);
	rstore__op_free(op);
	return rc;
}

static int raft_txn(struct physical *p, const struct physical_txn_op *ops, size_t n,
		    struct verr *err)
{
	struct rstore *s = (struct rstore *)p;
	for (size_t i = 0; i < n; i++) {
		if (!ops[i].key || !*ops[i].key)
			return verr_set(err, VERR_INVALID, "transaction operation %zu has no key", i);
		if (strlen(ops[i].key) > PHYSICAL_MAX_KEY)
			return verr_set(err, VERR_INVALID, "key longer than %d bytes",
					PHYSICAL_MAX_KEY);
		if (ops[i].kind == PHYSICAL_TXN_PUT) {
			if (ops[i].len > p->max_entry_size)
				return verr_set(err, VERR_TOO_LARGE,
						"value of %zu bytes exceeds max_entry_size %zu",
						ops[i].len, p->max_entry_size);
		} else if (ops[i].kind != PHYSICAL_TXN_DELETE) {
			return verr_set(err, VERR_INVALID, "transaction operation %zu is unknown", i);
		}
	}
	uint8_t *rec = NULL;
	size_t len = 0;
	if (rstore__encode_txn(&rec, &len, ops, n, 0))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return rstore__submit_record(s, rec, len, err);
}

static int raft_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		    struct verr *err)
{
	struct physical_txn_op op = {PHYSICAL_TXN_PUT, key, val, len};
	return raft_txn(p, &op, 1, err);
}

static int raft_del(struct physical *p, const char *key, struct verr *err)
{
	struct physical_txn_op op = {PHYSICAL_TXN_DELETE, key, NULL, 0};
	return raft_txn(p, &op, 1, err);
}

/* ---- HA ---------------------------------------------------------------------- */

static void deadline_ts(struct timespec *ts, int ms);

/* A new leader records its own certificate on the issued list when it is
 * not there (the bootstrap node's, generated before any log; a member that
 * joined before certificates were recorded at issue), so remove-peer finds
 * it on any later leader. Detached: it shares the holder record's batch
 * and costs the failover nothing. */
static void record_own_cert(struct rstore *s)
{
	char fp[RSTORE_FP_HEX];
	if (rstore__tls_own_fp(&s->tls, fp) || rstore__tls_issued(&s->tls, fp) ||
	    rstore__tls_revoked(&s->tls, fp))
		return;
	struct rop *op = rstore__op_new(ROP_APPLY);
	if (!op || rstore__encode_idstr(&op->buf, &op->len, RREC_ISSUED, s->id, fp)) {
		rstore__op_free(op);
		return;
	}
	op->detached = true;
	rstore__submit(s, op, NULL);
}

static int ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
		      void *ctx, struct verr *err)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	pthread_mutex_lock(&s->mu);
	bool leader = s->state == RAFT_LEADER;
	unsigned long epoch = s->leader_epoch;
	bool held = s->ha_held;
	pthread_mutex_unlock(&s->mu);
	if (!leader)
		return 0;
	if (held) {
		pthread_mutex_lock(&s->mu);
		s->lost = lost;
		s->lost_ctx = ctx;
		pthread_mutex_unlock(&s->mu);
		return 1;
	}
	record_own_cert(s);
	uint8_t *rec = NULL;
	size_t len = 0;
	if (rstore__encode_idstr(&rec, &len, RREC_HOLDER, s->id, value ? value : ""))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	struct verr e2 = {0};
	int rc = rstore__submit_record(s, rec, len, &e2);
	if (rc == VERR_STANDBY)
		return 0; /* lost the election meanwhile */
	if (rc) {
		if (err)
			*err = e2;
		return rc;
	}
	int got = 0;
	pthread_mutex_lock(&s->mu);
	if (s->state == RAFT_LEADER && s->leader_epoch == epoch) {
		s->ha_held = true;
		s->lost = lost;
		s->lost_ctx = ctx;
		got = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return got;
}

static int ha_renew(struct physical_ha *h, struct verr *err)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	pthread_mutex_lock(&s->mu);
	bool ok = s->ha_held && s->state == RAFT_LEADER;
	pthread_mutex_unlock(&s->mu);
	return ok ? 0 : verr_set(err, VERR_STANDBY, "raft leadership is lost");
}

static void ha_release(struct physical_ha *h)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	pthread_mutex_lock(&s->mu);
	bool held = s->ha_held;
	s->ha_held = false;
	s->lost = NULL;
	s->lost_ctx = NULL;
	pthread_mutex_unlock(&s->mu);
	if (!held)
		return;
	/* hand leadership to another voter (a no-op on a one-node cluster) */
	struct rop *op = rstore__op_new(ROP_TRANSFER);
	if (op) {
		op->detached = true;
		rstore__submit(s, op, NULL);
	}
}

static int ha_holder(struct physical_ha *h, char **value, struct verr *err)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	*value = NULL;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (s->leader_id && s->holder_id == s->leader_id && s->holder_value &&
	    !(*value = strdup(s->holder_value)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* A standby waits for this node to become the raft leader (the mirror's
 * state_cv), so it takes the lock the moment raft elects it, not at its
 * next retry_interval poll (part of the failover time). */
static int ha_wait(struct physical_ha *h, int timeout_ms)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	double end = rstore__now() + timeout_ms / 1000.0;
	struct timespec ts;
	pthread_mutex_lock(&s->mu);
	int r = 0;
	while (!s->ha_woken && !s->closing) {
		if (s->state == RAFT_LEADER) {
			r = 1;
			break;
		}
		double left = end - rstore__now();
		if (left <= 0)
			break;
		deadline_ts(&ts, (int)(left * 1000) + 1);
		pthread_cond_timedwait(&s->state_cv, &s->mu, &ts);
	}
	s->ha_woken = false;
	pthread_mutex_unlock(&s->mu);
	return r;
}

static void ha_wake(struct physical_ha *h)
{
	struct rstore *s = ((struct rstore_ha *)h)->s;
	pthread_mutex_lock(&s->mu);
	s->ha_woken = true;
	pthread_cond_broadcast(&s->state_cv);
	pthread_mutex_unlock(&s->mu);
}

static const struct physical_ha_ops raft_ha_ops = {
	.version = PHYSICAL_HA_VERSION,
	.name = "raft",
	.acquire = ha_acquire,
	.renew = ha_renew,
	.release = ha_release,
	.holder = ha_holder,
	.wait = ha_wait,
	.wake = ha_wake,
};

static struct physical_ha *raft_ha(struct physical *p)
{
	return &((struct rstore *)p)->ha.base;
}

/* ---- open / close ------------------------------------------------------------ */

static void rstore_close(struct physical *p)
{
	struct rstore *s = (struct rstore *)p;
	rstore__loop_stop(s);
	physical_close(s->kv);
	physical_close(s->stage);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i].name);
	free(s->names);
	free(s->holder_value);
	rstore__tls_close(&s->tls);
	pthread_rwlock_destroy(&s->fsm_lock);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->change_mu);
	pthread_cond_destroy(&s->state_cv);
	free(s->dir);
	free(s->raft_dir);
	free(s->node_id);
	free(s->addr);
	free(s);
}

static const struct physical_ops raft_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "raft",
	.get = raft_get,
	.put = raft_put,
	.del = raft_del,
	.list = raft_list,
	.close = rstore_close,
	.txn = raft_txn,
	.ha = raft_ha,
};

/* An integer option given as a number or a string; dflt when absent. */
static int opt_uint(const json_t *conf, const char *name, unsigned long lo, unsigned long hi,
		    unsigned long dflt, unsigned long *out, struct verr *err)
{
	const json_t *v = conf ? json_object_get(conf, name) : NULL;
	*out = dflt;
	if (!v)
		return 0;
	long long x = -1;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_string(v)) {
		char *end = NULL;
		errno = 0;
		x = strtoll(json_string_value(v), &end, 10);
		if (errno || end == json_string_value(v) || *end)
			x = -1;
	}
	if (x < (long long)lo || (unsigned long long)x > hi)
		return verr_set(err, VERR_INVALID,
				"storage \"raft\": \"%s\" must be an integer from %lu to %lu", name,
				lo, hi);
	*out = (unsigned long)x;
	return 0;
}

static const char *opt_str(const json_t *conf, const char *name)
{
	const json_t *v = conf ? json_object_get(conf, name) : NULL;
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

/* host:port from cluster_addr ("https://10.0.0.1:8201", "10.0.0.1:8201") */
static char *cluster_hostport(const char *ca)
{
	const char *p = strstr(ca, "://");
	p = p ? p + 3 : ca;
	size_t n = strcspn(p, "/");
	return strndup(p, n);
}

/* host:(port+1) of a cluster_addr; the string as is when it has no port
 * (the caller reports that) */
static char *next_port(const char *ca)
{
	char *hp = cluster_hostport(ca);
	char *colon = hp ? strrchr(hp, ':') : NULL;
	if (!colon)
		return hp;
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end || port < 1 || port > 65534)
		return hp;
	size_t n = (size_t)(colon - hp) + 8;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%.*s:%ld", (int)(colon - hp), hp, port + 1);
	free(hp);
	return r;
}

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%s/%s", a, b);
	return r;
}

/* node_id from the config, else the one saved in <path>/node-id, else a new
 * random one saved there (so a restart keeps the node's identity). */
static int load_node_id(struct rstore *s, const json_t *conf, struct verr *err)
{
	const char *cfg = opt_str(conf, "node_id");
	if (cfg) {
		if (strlen(cfg) > 120)
			return verr_set(err, VERR_INVALID, "storage \"raft\": node_id is too long");
		s->node_id = strdup(cfg);
		return s->node_id ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	char *f = path_join(s->dir, "node-id");
	if (!f)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char buf[128] = {0};
	FILE *fp = fopen(f, "r");
	if (fp) {
		if (fgets(buf, sizeof(buf), fp))
			buf[strcspn(buf, "\r\n")] = 0;
		fclose(fp);
	}
	if (!buf[0]) {
		if (rand_uuid(buf, err)) {
			free(f);
			return VERR_INTERNAL;
		}
		fp = fopen(f, "w");
		if (!fp || fprintf(fp, "%s\n", buf) < 0 || fflush(fp) || fsync(fileno(fp))) {
			if (fp)
				fclose(fp);
			free(f);
			return verr_set(err, VERR_INVALID, "storage \"raft\": cannot write %s/node-id",
					s->dir);
		}
		fclose(fp);
	}
	free(f);
	s->node_id = strdup(buf);
	return s->node_id ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

raft_id rstore__id_for(const char *node_id)
{
	raft_id id = raft_digest(node_id, 0);
	return id ? id : 1;
}

static bool has_state(const char *raft_dir)
{
	char p[4096];
	for (int i = 1; i <= 2; i++) {
		snprintf(p, sizeof(p), "%s/metadata%d", raft_dir, i);
		if (access(p, F_OK) == 0)
			return true;
	}
	return false;
}

int physical_raft_new(struct physical **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	const char *path = opt_str(conf, "path");
	if (!path)
		return verr_set(err, VERR_INVALID, "storage \"raft\": missing required \"path\"");
	unsigned long mult, trailing, threshold, max_entry;
	int rc = opt_uint(conf, "performance_multiplier", 0, 10, 0, &mult, err);
	if (!rc)
		rc = opt_uint(conf, "trailing_logs", 1, 1000000000, 10000, &trailing, err);
	if (!rc)
		rc = opt_uint(conf, "snapshot_threshold", 1, 1000000000, 8192, &threshold, err);
	if (!rc)
		rc = opt_uint(conf, "max_entry_size", 1, 64ul << 20, PHYSICAL_DEFAULT_MAX_ENTRY,
			      &max_entry, err);
	int64_t snap_interval = 120;
	if (!rc)
		rc = physical__opt_seconds(conf, "raft", "snapshot_interval", 120, 0, 86400,
					   &snap_interval, err);
	if (rc)
		return rc;
	if (mkdir(path, 0700) && errno != EEXIST)
		return verr_set(err, VERR_INVALID, "storage \"raft\": cannot create %s: %s", path,
				strerror(errno));
	struct rstore *s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	s->base.ops = &raft_ops;
	s->base.max_entry_size = max_entry;
	s->base.durable = 1;
	s->ha.base.ops = &raft_ha_ops;
	s->ha.s = s;
	pthread_rwlock_init(&s->fsm_lock, NULL);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->change_mu, NULL);
	pthread_cond_init(&s->state_cv, NULL);
	s->threshold = (unsigned)threshold;
	s->trailing = (unsigned)trailing;
	s->snap_interval_ms = (unsigned)snap_interval * 1000;
	/* election timeout: 250 ms per multiplier step, default 2 (500 ms;
	 * Vault's default of 5 gives its 5-7.5 s failovers) */
	s->election_ms = 250 * (unsigned)(mult ? mult : 2);
	s->heartbeat_ms = s->election_ms / 10 < 20 ? 20 : s->election_ms / 10;
	s->ha.base.renew_interval_ms = (int)s->heartbeat_ms;
	s->ha.base.retry_interval_ms = (int)s->heartbeat_ms;
	s->dir = strdup(path);
	s->raft_dir = path_join(path, "raft");
	/* raft's own port: raft_addr, else cluster_addr's port + 1 (the
	 * cluster port itself carries request forwarding, docs/ha.md) */
	const char *ra = opt_str(conf, "raft_addr");
	const char *ca = opt_str(conf, "cluster_addr");
	s->addr = ra ? cluster_hostport(ra) : next_port(ca ? ca : "127.0.0.1:8201");
	struct verr e = {0};
	json_t *kvconf = json_pack("{s:I}", "max_entry_size", (json_int_t)1 << 40);
	rc = physical_inmem_new(&s->kv, kvconf, &e);
	json_decref(kvconf);
	if (!rc && (!s->dir || !s->raft_dir || !s->addr))
		rc = verr_set(&e, VERR_INTERNAL, "out of memory");
	if (!rc && !strchr(s->addr, ':'))
		rc = verr_set(&e, VERR_INVALID,
			      "storage \"raft\": cluster_addr/raft_addr \"%s\" has no port (host:port)",
			      s->addr);
	if (!rc && mkdir(s->raft_dir, 0700) && errno != EEXIST)
		rc = verr_set(&e, VERR_INVALID, "storage \"raft\": cannot create %s: %s",
			      s->raft_dir, strerror(errno));
	if (!rc)
		rc = load_node_id(s, conf, &e);
	if (!rc) {
		s->id = rstore__id_for(s->node_id);
		s->pristine = !has_state(s->raft_dir);
		s->state = RAFT_UNAVAILABLE;
		rc = rstore__tls_open(&s->tls, s->dir, s->node_id, !s->pristine, &e);
	}
	if (!rc)
		rc = rstore__loop_start(s, &e);
	if (rc) {
		rstore_close(&s->base);
		if (err)
			*err = e;
		return rc;
	}
	log_info("raft", "node %s on %s (%s)", s->node_id, s->addr,
		 s->pristine ? "new: bootstraps on first write or joins" : "existing raft state");
	if (!s->pristine) {
		/* catch up before serving reads: a lone voter replays its log at
		 * once; in a cluster, wait a little for the leader */
		pthread_mutex_lock(&s->mu);
		bool lone = s->sole_voter;
		pthread_mutex_unlock(&s->mu);
		struct verr ew = {0};
		if (physical_raft_wait_ready(&s->base, lone ? 10000 : 3000, &ew))
			log_warn("raft", "not caught up with the cluster yet: %s", ew.msg);
	}
	*out = &s->base;
	return 0;
}

/* ---- raft.h ------------------------------------------------------------------ */

static void deadline_ts(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int physical_raft_wait_ready(struct physical *p, int timeout_ms, struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	double end = rstore__now() + timeout_ms / 1000.0;
	struct timespec ts;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (s->state == RAFT_LEADER || (s->sole_voter && s->state != RAFT_UNAVAILABLE)) {
			pthread_mutex_unlock(&s->mu);
			struct rop *op = rstore__op_new(ROP_BARRIER);
			if (!op)
				return verr_set(err, VERR_INTERNAL, "out of memory");
			int rc = rstore__submit(s, op, err);
			rstore__op_free(op);
			return rc;
		}
		/* a restarted follower learns the commit index piecemeal (a
		 * leader's first append may carry an old one): it is caught up
		 * once it has also applied the log it had when it started, which
		 * holds every write it acknowledged before */
		if (s->leader_id && s->commit_index && s->applied_index >= s->commit_index &&
		    s->applied_index >= s->start_last_index) {
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
		double left = end - rstore__now();
		if (left <= 0)
			break;
		deadline_ts(&ts, left > 0.05 ? 50 : (int)(left * 1000) + 1);
		pthread_cond_timedwait(&s->state_cv, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return verr_set(err, VERR_UNAVAILABLE, "no raft leader reachable");
}

int physical_raft_status(struct physical *p, struct physical_raft_status *out, struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	memset(out, 0, sizeof(*out));
	snprintf(out->node_id, sizeof(out->node_id), "%s", s->node_id);
	snprintf(out->addr, sizeof(out->addr), "%s", s->addr);
	pthread_mutex_lock(&s->mu);
	raft_id lid = s->leader_id;
	out->is_leader = s->state == RAFT_LEADER;
	out->pristine = s->pristine;
	out->member = s->member;
	snprintf(out->leader_addr, sizeof(out->leader_addr), "%s", s->leader_addr);
	out->term = s->term;
	out->commit_index = s->commit_index;
	out->applied_index = s->applied_index;
	out->last_index = s->last_index;
	pthread_mutex_unlock(&s->mu);
	if (lid) {
		char *name = rstore__name_of(s, lid);
		if (name)
			snprintf(out->leader_id, sizeof(out->leader_id), "%s", name);
		else
			snprintf(out->leader_id, sizeof(out->leader_id), "%016llx", lid);
		free(name);
	}
	return 0;
}

static int simple_op(struct rstore *s, struct rop *op, struct verr *err)
{
	if (!op)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = rstore__submit(s, op, err);
	rstore__op_free(op);
	return rc;
}

int physical_raft_configuration(struct physical *p, json_t **out, struct verr *err)
{
	*out = NULL;
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	struct rop *op = rstore__op_new(ROP_CONFIG);
	if (!op)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = rstore__submit(s, op, err);
	if (!rc) {
		*out = op->out;
		op->out = NULL; /* transferred */
	}
	rstore__op_free(op);
	return rc;
}

int physical_raft_autopilot_state(struct physical *p, json_t **out, struct verr *err)
{
	*out = NULL;
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	struct rop *op = rstore__op_new(ROP_STATE);
	if (!op)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = rstore__submit(s, op, err);
	if (!rc) {
		*out = op->out;
		op->out = NULL; /* transferred */
	}
	rstore__op_free(op);
	return rc;
}

int physical_raft_add_peer(struct physical *p, const char *node_id, const char *addr, bool voter,
			   struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	if (!node_id || !*node_id || strlen(node_id) > 120)
		return verr_set(err, VERR_INVALID, "a peer needs a node_id of 1 to 120 bytes");
	if (!addr || !strchr(addr, ':'))
		return verr_set(err, VERR_INVALID, "a peer needs an address as host:port");
	raft_id id = rstore__id_for(node_id);
	if (id == s->id)
		return verr_set(err, VERR_INVALID, "node_id %s is this node's own", node_id);
	/* the name first, so the configuration can show it as soon as the
	 * member appears */
	uint8_t *rec = NULL;
	size_t len = 0;
	if (rstore__encode_idstr(&rec, &len, RREC_NAME, id, node_id))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = rstore__submit_record(s, rec, len, err);
	if (rc)
		return rc;
	/* as a non-voter first: it receives the log; then, for a voter, the
	 * promotion (raft catches it up first; retried while the new node has
	 * not answered the leader yet) */
	char *hp = cluster_hostport(addr);
	if (!hp)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	double end = rstore__now() + 15;
	pthread_mutex_lock(&s->change_mu);
	for (int role = RAFT_STANDBY;;) {
		struct rop *op = rstore__op_new(ROP_ADD);
		if (op) {
			op->id = id;
			op->role = role;
			op->addr = strdup(hp);
		}
		struct verr e2 = {0};
		rc = simple_op(s, op, &e2);
		if (rc == VERR_UNAVAILABLE && rstore__now() < end) {
			struct timespec ts = {0, 50 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		if (rc || !voter || role == RAFT_VOTER) {
			if (rc && err)
				*err = e2;
			break;
		}
		role = RAFT_VOTER;
	}
	pthread_mutex_unlock(&s->change_mu);
	free(hp);
	return rc;
}

int physical_raft_remove_peer(struct physical *p, const char *node_id, struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	if (!node_id || !*node_id)
		return verr_set(err, VERR_INVALID, "missing server_id");
	raft_id id = rstore__id_for(node_id);
	/* The loop commits one entry that revokes every certificate the
	 * cluster recorded for the member (and the one it last presented
	 * here, for a certificate older than that record), then starts the
	 * configuration change: a leader that dies in between leaves a member
	 * that can no longer talk raft, never a removed one that still can. */
	char seen[RSTORE_FP_HEX] = "";
	if (rstore__transport_seen(&s->transport, id, seen))
		seen[0] = '\0';
	pthread_mutex_lock(&s->change_mu);
	int rc;
	for (double end = rstore__now() + 10;;) {
		struct rop *op = rstore__op_new(ROP_REMOVE);
		if (op) {
			op->id = id;
			if (rstore__encode_idstr(&op->buf, &op->len, RREC_REVOKE_MEMBER, id, seen)) {
				rstore__op_free(op);
				op = NULL;
			}
		}
		struct verr e2 = {0};
		rc = simple_op(s, op, &e2);
		if (rc != VERR_UNAVAILABLE || rstore__now() >= end) {
			if (rc && err)
				*err = e2;
			break;
		}
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_unlock(&s->change_mu);
	return rc;
}

int physical_raft_join_start(struct physical *p, struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	return simple_op(s, rstore__op_new(ROP_JOIN_START), err);
}

int physical_raft_compact(struct physical *p, struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	return simple_op(s, rstore__op_new(ROP_SNAPSHOT), err);
}

const char *physical_raft_dir(struct physical *p)
{
	struct verr err = {0};
	struct rstore *s = as_raft(p, &err);
	return s ? s->dir : NULL;
}

int rstore__dump_store(struct physical *store, physical_raft_write_fn fn, void *ctx,
		       uint64_t *n, struct verr *err);

int physical_raft_dump(struct physical *p, physical_raft_write_fn fn, void *ctx, uint64_t *nkeys,
		       struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	pthread_rwlock_rdlock(&s->fsm_lock);
	int rc = rstore__dump_store(s->kv, fn, ctx, nkeys, err);
	pthread_rwlock_unlock(&s->fsm_lock);
	return rc;
}

/* exact reads over a physical_raft_read_fn; 1 at a clean end before any
 * byte, 0 ok, <0 error */
static int read_exact(physical_raft_read_fn fn, void *ctx, void *buf, size_t n, bool may_end,
		      struct verr *err)
{
	size_t got = 0;
	while (got < n) {
		long r = fn(ctx, (uint8_t *)buf + got, n - got, err);
		if (r < 0)
			return (int)r;
		if (r == 0) {
			if (may_end && got == 0)
				return 1;
			return verr_set(err, VERR_INVALID, "the snapshot state is truncated");
		}
		got += (size_t)r;
	}
	return 0;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

#define LOAD_CHUNK (1u << 20)

struct load_batch {
	struct physical_txn_op *ops;
	char **keys;
	uint8_t **vals;
	size_t n, cap, bytes;
};

static void load_batch_clear(struct load_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->keys[i]);
		free(b->vals[i]);
	}
	b->n = 0;
	b->bytes = 0;
}

static int load_flush(struct rstore *s, struct load_batch *b, uint64_t token, struct verr *err)
{
	if (!b->n)
		return 0;
	uint8_t *rec = NULL;
	size_t len = 0;
	int rc = rstore__encode_txn(&rec, &len, b->ops, b->n, token)
			 ? verr_set(err, VERR_INTERNAL, "out of memory")
			 : rstore__submit_record(s, rec, len, err);
	load_batch_clear(b);
	return rc;
}

int physical_raft_load(struct physical *p, physical_raft_read_fn fn, void *ctx, uint64_t *nkeys,
		       struct verr *err)
{
	struct rstore *s = as_raft(p, err);
	if (!s)
		return VERR_INVALID;
	uint64_t token = 0;
	while (!token)
		if (rand_bytes((uint8_t *)&token, sizeof(token), err))
			return VERR_INTERNAL;
	uint8_t *rec = NULL;
	size_t len = 0;
	if (rstore__encode_u64s(&rec, &len, RREC_STAGE_BEGIN, token, 0))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = rstore__submit_record(s, rec, len, err);
	if (rc)
		return rc;
	struct load_batch b = {0};
	uint64_t n = 0;
	for (;;) {
		uint8_t hdr[4];
		rc = read_exact(fn, ctx, hdr, 4, true, err);
		if (rc == 1) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		uint32_t kl = le32(hdr);
		if (!kl || kl > PHYSICAL_MAX_KEY) {
			rc = verr_set(err, VERR_INVALID, "the snapshot state has a bad key length");
			break;
		}
		char *key = malloc((size_t)kl + 1);
		if (!key) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			break;
		}
		rc = read_exact(fn, ctx, key, kl, false, err);
		key[kl] = 0;
		if (!rc)
			rc = read_exact(fn, ctx, hdr, 4, false, err);
		uint32_t vl = rc ? 0 : le32(hdr);
		if (!rc && vl > p->max_entry_size)
			rc = verr_set(err, VERR_TOO_LARGE,
				      "the snapshot holds a value over max_entry_size");
		uint8_t *val = rc ? NULL : malloc(vl ? vl : 1);
		if (!rc && !val)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		if (!rc)
			rc = read_exact(fn, ctx, val, vl, false, err);
		if (!rc && b.n == b.cap) {
			size_t nc = b.cap ? b.cap * 2 : 256;
			struct physical_txn_op *no = realloc(b.ops, nc * sizeof(*no));
			if (no)
				b.ops = no;
			char **nk = realloc(b.keys, nc * sizeof(*nk));
			if (nk)
				b.keys = nk;
			uint8_t **nv = realloc(b.vals, nc * sizeof(*nv));
			if (nv)
				b.vals = nv;
			if (!no || !nk || !nv)
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
			else
				b.cap = nc;
		}
		if (rc) {
			free(key);
			free(val);
			break;
		}
		b.ops[b.n] = (struct physical_txn_op){PHYSICAL_TXN_PUT, key, val, vl};
		b.keys[b.n] = key;
		b.vals[b.n] = val;
		b.n++;
		b.bytes += kl + vl + 9;
		n++;
		if (b.bytes >= LOAD_CHUNK && (rc = load_flush(s, &b, token, err)))
			break;
	}
	if (!rc)
		rc = load_flush(s, &b, token, err);
	load_batch_clear(&b);
	free(b.ops);
	free(b.keys);
	free(b.vals);
	/* commit (the new state appears at once everywhere) or abandon */
	if (rstore__encode_u64s(&rec, &len, rc ? RREC_STAGE_BEGIN : RREC_STAGE_COMMIT,
				rc ? 0 : token, n)) {
		return rc ? rc : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	struct verr e2 = {0};
	int rc2 = rstore__submit_record(s, rec, len, rc ? &e2 : err);
	if (!rc)
		rc = rc2;
	if (!rc && nkeys)
		*nkeys = n;
	return rc;
}
