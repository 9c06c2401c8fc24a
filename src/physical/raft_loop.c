/*
 * raft_loop.c - the raft storage backend's libuv loop thread: the hand-off
 * from request threads (a queue + uv_async), batching of writes into one
 * log entry, membership changes, and the state mirror / leadership watch.
 * See the DESIGN block in raft_int.h.
 *
 * Only the loop thread touches s->raft, s->io, s->transport, s->parked and
 * the raft request structs inside ops. Ops are completed (done = true,
 * op->cv signalled) exactly once, under s->mu.
 */
#include "physical/raft_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/metrics.h"

/* an entry carries at most this many bytes of records (then a new entry) */
#define BATCH_MAX_BYTES (4u << 20)
/* Group commit: at most this many batch entries in flight (applied, not yet
 * committed); writes arriving meanwhile wait on the loop and go out as one
 * entry when a slot frees. Without a cap every wake-up became its own entry
 * (1.9 writes each at 32 clients): one fsync per entry on every node, whose
 * CPU and disk contention made the tail (docs/storage-raft.md). */
#ifndef RSTORE_MAX_INFLIGHT
#define RSTORE_MAX_INFLIGHT 2
#endif
/* a write parked while a lone voter elects itself fails after this */
#define PARK_SECONDS 10.0

double rstore__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct rop *rstore__op_new(enum rop_kind kind)
{
	struct rop *op = calloc(1, sizeof(*op));
	if (op && pthread_cond_init(&op->cv, NULL)) {
		free(op);
		op = NULL;
	}
	if (op)
		op->kind = kind;
	return op;
}

void rstore__op_free(struct rop *op)
{
	if (!op)
		return;
	free(op->buf);
	free(op->addr);
	json_decref(op->out);
	pthread_cond_destroy(&op->cv);
	free(op);
}

static void complete(struct rstore *s, struct rop *op, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void complete(struct rstore *s, struct rop *op, int rc, const char *fmt, ...)
{
	pthread_mutex_lock(&s->mu);
	op->rc = rc;
	if (rc && fmt) {
		va_list ap;
		va_start(ap, fmt);
		verr_vset(&op->err, rc, fmt, ap);
		va_end(ap);
	}
	bool detached = op->detached;
	op->done = true;
	if (!detached)
		pthread_cond_signal(&op->cv);
	pthread_mutex_unlock(&s->mu);
	if (detached) {
		if (rc)
			log_debug("raft", "background raft request failed: %s", op->err.msg);
		rstore__op_free(op);
	}
}

/* The error for "this node cannot take writes", naming the leader. */
static void fail_not_leader(struct rstore *s, struct rop *op)
{
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(&s->raft, &lid, &laddr);
	if (lid && laddr)
		complete(s, op, VERR_STANDBY, "this node is a raft follower; the leader is at %s",
			 laddr);
	else
		complete(s, op, VERR_STANDBY, "no raft leader is elected yet");
}

static int map_status(int status)
{
	switch (status) {
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		return VERR_STANDBY;
	case RAFT_SHUTDOWN:
	case RAFT_NOCONNECTION:
	case RAFT_BUSY:
	case RAFT_CANCELED:
	case RAFT_CANTCHANGE: /* another change is in flight: retry */
		return VERR_UNAVAILABLE;
	case RAFT_NOTFOUND:
	case RAFT_BADID:
		return VERR_NOT_FOUND;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
	case RAFT_BADROLE:
		return VERR_INVALID;
	default:
		return VERR_INTERNAL;
	}
}

static void complete_status(struct rstore *s, struct rop *op, int status, const char *what)
{
	if (!status)
		complete(s, op, 0, NULL);
	else
		complete(s, op, map_status(status), "%s: %s", what, raft_strerror(status));
}

/* ---- metrics: where a write's time goes (docs/storage-raft.md) ---------------- */

/* Series handles, looked up once (they live until the process exits). */
struct rmetrics {
	struct metric *queue_wait; /* request thread enqueued -> its batch proposed */
	struct metric *commit;     /* raft_apply -> committed and applied (leader) */
	struct metric *wakeup;     /* completed on the loop -> the request thread runs */
	struct metric *dispatch;   /* leader: one log append (write + fsync) */
	struct metric *store;      /* follower: one log append (write + fsync) */
	struct metric *batches, *records;
};

static struct rmetrics rm;
static pthread_once_t rm_once = PTHREAD_ONCE_INIT;

static void rmetrics_init(void)
{
	struct rmetrics *m = &rm;
	m->queue_wait = metrics_get(METRIC_HISTOGRAM, "vault.raft-storage.queue_wait", NULL);
	m->commit = metrics_get(METRIC_HISTOGRAM, "vault.raft.commitTime", NULL);
	m->wakeup = metrics_get(METRIC_HISTOGRAM, "vault.raft-storage.wakeup", NULL);
	m->dispatch = metrics_get(METRIC_HISTOGRAM, "vault.raft.leader.dispatchLog", NULL);
	m->store = metrics_get(METRIC_HISTOGRAM, "vault.raft.rpc.appendEntries.storeLogs", NULL);
	m->batches = metrics_get(METRIC_COUNTER, "vault.raft-storage.batches", NULL);
	m->records = metrics_get(METRIC_COUNTER, "vault.raft-storage.batched_records", NULL);
}

static struct rmetrics *rmetrics(void)
{
	pthread_once(&rm_once, rmetrics_init);
	return &rm;
}

/* the log append, timed: the original request's data rides in a wrapper */
struct timed_append {
	void *data;
	raft_io_append_cb cb;
	struct metric *m;
	uint64_t t0;
};

static void timed_append_cb(struct raft_io_append *req, int status)
{
	struct timed_append *t = req->data;
	metrics_observe(t->m, metrics_now() - t->t0);
	req->data = t->data;
	raft_io_append_cb cb = t->cb;
	free(t);
	cb(req, status);
}

static int timed_append(struct raft_io *io, struct raft_io_append *req,
			const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
	struct rstore *s = ((struct raft *)io->data)->data;
	struct timed_append *t = malloc(sizeof(*t));
	if (!t)
		return s->io_append(io, req, entries, n, cb);
	bool leader = raft_state(&s->raft) == RAFT_LEADER;
	*t = (struct timed_append){req->data, cb, leader ? rmetrics()->dispatch : rmetrics()->store,
				   metrics_now()};
	req->data = t;
	int rv = s->io_append(io, req, entries, n, timed_append_cb);
	if (rv) { /* no callback will come */
		req->data = t->data;
		free(t);
	}
	return rv;
}

/* ---- writes: batched raft_apply ---------------------------------------------- */

struct batch {
	struct raft_apply req;
	struct rstore *s;
	struct rop **ops;
	size_t n;
	uint64_t t0;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct batch *b = req->data;
	b->s->inflight--; /* the pending writes go out from watch_cb */
	uint64_t now = metrics_now();
	metrics_observe(rmetrics()->commit, now - b->t0);
	for (size_t i = 0; i < b->n; i++) {
		b->ops[i]->t_done = now;
		if (!status && result == RSTORE_REFUSED)
			complete(b->s, b->ops[i], VERR_INTERNAL,
				 "the state machine refused the write (malformed log entry)");
		else if (status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER)
			complete(b->s, b->ops[i], VERR_STANDBY,
				 "raft leadership was lost before the write committed");
		else
			complete_status(b->s, b->ops[i], status, "raft apply");
	}
	free(b->ops);
	free(b);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The batch entry of ops[0..n)'s records into rb (raft_malloc'd); -1 when
 * out of memory. */
static int encode_batch(struct raft_buffer *rb, struct rop **ops, size_t n)
{
	size_t len = 5;
	for (size_t i = 0; i < n; i++)
		len += 4 + ops[i]->len;
	/* raft's on-disk format needs entry payloads padded to 8 bytes (its
	 * encoder writes the buffer as is); the decoder skips the padding */
	size_t padded = (len + 7) & ~(size_t)7;
	uint8_t *buf = raft_malloc(padded);
	if (!buf)
		return -1;
	buf[0] = RREC_BATCH;
	put_u32le(buf + 1, (uint32_t)n);
	size_t o = 5;
	for (size_t i = 0; i < n; i++) {
		put_u32le(buf + o, (uint32_t)ops[i]->len);
		memcpy(buf + o + 4, ops[i]->buf, ops[i]->len);
		o += 4 + ops[i]->len;
	}
	memset(buf + len, 0, padded - len);
	rb->base = buf;
	rb->len = padded;
	return 0;
}

/* One raft_apply for ops[0..n): a batch entry of their records. */
static void apply_batch(struct rstore *s, struct rop **ops, size_t n)
{
	struct raft_buffer rb = {0};
	struct batch *b = calloc(1, sizeof(*b));
	struct rop **v = malloc(n * sizeof(struct rop *));
	if (!b || !v || encode_batch(&rb, ops, n)) {
		free(b);
		free(v);
		for (size_t i = 0; i < n; i++)
			complete(s, ops[i], VERR_INTERNAL, "out of memory");
		return;
	}
	uint8_t *buf = rb.base;
	memcpy(v, ops, n * sizeof(*v));
	b->t0 = metrics_now();
	for (size_t i = 0; i < n; i++) {
		if (ops[i]->t_submit)
			metrics_observe(rmetrics()->queue_wait, b->t0 - ops[i]->t_submit);
		ops[i]->t_submit = 0; /* a parked op is counted once */
	}
	metrics_add(rmetrics()->batches, 1);
	metrics_add(rmetrics()->records, n);
	b->s = s;
	b->ops = v;
	b->n = n;
	b->req.data = b;
	int rv = raft_apply(&s->raft, &b->req, &rb, 1, apply_cb);
	if (!rv)
		s->inflight++;
	if (rv) {
		raft_free(buf);
		for (size_t i = 0; i < n; i++) {
			if (rv == RAFT_NOTLEADER)
				fail_not_leader(s, ops[i]);
			else
				complete_status(s, ops[i], rv, "raft apply");
		}
		free(v);
		free(b);
	}
}

/* Bootstrap (a pristine node's first write) and start raft. */
static int ensure_started(struct rstore *s, struct verr *err)
{
	if (s->started)
		return 0;
	pthread_mutex_lock(&s->mu);
	bool boot = s->pristine && !s->joining;
	pthread_mutex_unlock(&s->mu);
	if (boot) {
		/* a new cluster: its raft CA and this node's certificate first */
		int rv = rstore__tls_bootstrap(&s->tls, err);
		if (rv)
			return rv;
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		rv = raft_configuration_add(&conf, s->id, s->addr, RAFT_VOTER);
		if (!rv)
			rv = raft_bootstrap(&s->raft, &conf);
		raft_configuration_close(&conf);
		if (rv)
			return verr_set(err, VERR_INTERNAL, "raft bootstrap: %s",
					raft_errmsg(&s->raft));
		log_info("raft", "bootstrapped a new cluster with this node (%s) as its only voter",
			 s->node_id);
	}
	pthread_mutex_lock(&s->tls.mu);
	bool creds = s->tls.ready;
	pthread_mutex_unlock(&s->tls.mu);
	if (!creds)
		return verr_set(err, VERR_INVALID,
				"this node has no raft TLS credentials: join it through "
				"sys/storage/raft/join");
	int rv = raft_start(&s->raft);
	if (rv)
		return verr_set(err, VERR_INTERNAL, "raft start on %s: %s", s->addr,
				*raft_errmsg(&s->raft) ? raft_errmsg(&s->raft) : raft_strerror(rv));
	s->started = true;
	pthread_mutex_lock(&s->mu);
	s->pristine = false;
	s->start_last_index = raft_last_index(&s->raft);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static bool sole_voter(struct rstore *s)
{
	unsigned voters = 0;
	bool self = false;
	for (unsigned i = 0; i < s->raft.configuration.n; i++)
		if (s->raft.configuration.servers[i].role == RAFT_VOTER) {
			voters++;
			self |= s->raft.configuration.servers[i].id == s->id;
		}
	return voters == 1 && self;
}

static void park(struct rstore *s, struct rop *op)
{
	if (!op->deadline)
		op->deadline = rstore__now() + PARK_SECONDS;
	op->next = NULL;
	if (s->parked_tail)
		s->parked_tail->next = op;
	else
		s->parked = op;
	s->parked_tail = op;
}

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct rop *op = req->data;
	if (op->kind == ROP_SNAPSHOT)
		raft_set_snapshot_threshold(&op->s->raft, rstore__snap_idle_threshold(op->s));
	complete_status(op->s, op, status, "raft barrier");
}

static void change_done_cb(struct raft_change *req, int status)
{
	struct rop *op = req->data;
	complete_status(op->s, op, status, "raft membership change");
}

static void add_cb(struct raft_change *req, int status)
{
	struct rop *op = req->data;
	if (status) {
		complete_status(op->s, op, status, "raft add");
		return;
	}
	op->change2.data = op;
	int rv = raft_assign(&op->s->raft, &op->change2, op->id, op->role, change_done_cb);
	if (rv)
		complete_status(op->s, op, rv, "raft assign");
}

/* remove-peer, step 2: the member's certificates are revoked everywhere
 * (the entry applied); now the configuration change */
static void revoke_cb(struct raft_apply *req, int status, void *result)
{
	struct rop *op = req->data;
	struct rstore *s = op->s;
	if (!status && result == RSTORE_REFUSED) {
		complete(s, op, VERR_INTERNAL, "the state machine refused the revocation entry");
		return;
	}
	if (status) {
		complete_status(s, op, status, "raft apply (revocation)");
		return;
	}
	char *name = rstore__name_of(s, op->id);
	size_t n = rstore__tls_revoked_of(&s->tls, op->id);
	if (n)
		log_info("raft", "revoked %zu raft certificate(s) of %s; removing it from the "
			 "configuration", n, name ? name : "a member");
	else
		log_warn("raft", "removed peer %s: no raft certificate of it is on record; none "
			 "was revoked", name ? name : "(unnamed)");
	free(name);
	op->change.data = op;
	int rv = raft_remove(&s->raft, &op->change, op->id, change_done_cb);
	if (rv)
		complete_status(s, op, rv, "raft remove");
}

/* remove-peer, step 1 (checked: leader, a member, not us): commit op->buf,
 * the RREC_REVOKE_MEMBER record */
static void apply_revoke_then_remove(struct rstore *s, struct rop *op)
{
	struct raft_buffer rb = {0};
	if (!op->buf || encode_batch(&rb, &op, 1)) {
		complete(s, op, VERR_INTERNAL, "out of memory");
		return;
	}
	op->apply.data = op;
	int rv = raft_apply(&s->raft, &op->apply, &rb, 1, revoke_cb);
	if (rv) {
		raft_free(rb.base);
		complete_status(s, op, rv, "raft apply (revocation)");
	}
}

static void transfer_cb(struct raft_transfer *req)
{
	struct rop *op = req->data;
	complete(op->s, op, 0, NULL);
}

static const struct raft_server *find_server(struct rstore *s, raft_id id)
{
	for (unsigned i = 0; i < s->raft.configuration.n; i++)
		if (s->raft.configuration.servers[i].id == id)
			return &s->raft.configuration.servers[i];
	return NULL;
}

static json_t *config_json(struct rstore *s)
{
	json_t *servers = json_array();
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(&s->raft, &lid, &laddr);
	for (unsigned i = 0; i < s->raft.configuration.n; i++) {
		const struct raft_server *sv = &s->raft.configuration.servers[i];
		char *name = rstore__name_of(s, sv->id);
		char hex[32];
		snprintf(hex, sizeof(hex), "%016llx", sv->id);
		json_array_append_new(servers,
				      json_pack("{s:s, s:s, s:b, s:b, s:s}", "node_id",
						name ? name : hex, "address", sv->address, "leader",
						sv->id == lid, "voter", sv->role == RAFT_VOTER,
						"protocol_version", "3"));
		free(name);
	}
	raft_index idx = s->raft.configuration_uncommitted_index
				 ? s->raft.configuration_uncommitted_index
				 : s->raft.configuration_index;
	return json_pack("{s:o, s:I}", "servers", servers, "index", (json_int_t)idx);
}

static double *contact_slot(struct rstore *s, raft_id id)
{
	int free_i = -1;
	for (int i = 0; i < 64; i++) {
		if (s->contacts[i].id == id)
			return &s->contacts[i].seen;
		if (!s->contacts[i].id && free_i < 0)
			free_i = i;
	}
	if (free_i < 0)
		free_i = (int)(id % 64);
	s->contacts[free_i].id = id;
	s->contacts[free_i].seen = 0;
	return &s->contacts[free_i].seen;
}

/* leader: remember when each follower was last heard from */
static void note_contacts(struct rstore *s)
{
	if (raft_state(&s->raft) != RAFT_LEADER || !s->raft.leader_state.progress)
		return;
	double now = rstore__now();
	for (unsigned i = 0; i < s->raft.configuration.n; i++) {
		const struct raft_server *sv = &s->raft.configuration.servers[i];
		double *seen = contact_slot(s, sv->id);
		if (sv->id == s->id || s->raft.leader_state.progress[i].recent_recv || *seen == 0)
			*seen = now;
	}
}

static json_t *state_json(struct rstore *s)
{
	note_contacts(s);
	json_t *servers = json_array();
	double now = rstore__now();
	raft_index last = raft_last_index(&s->raft);
	for (unsigned i = 0; i < s->raft.configuration.n; i++) {
		const struct raft_server *sv = &s->raft.configuration.servers[i];
		char *name = rstore__name_of(s, sv->id);
		char hex[32];
		snprintf(hex, sizeof(hex), "%016llx", sv->id);
		bool self = sv->id == s->id;
		raft_index idx = self ? last : s->raft.leader_state.progress[i].match_index;
		double ago = now - *contact_slot(s, sv->id);
		json_array_append_new(
			servers,
			json_pack("{s:s, s:s, s:b, s:b, s:I, s:I, s:I}", "node_id", name ? name : hex,
				  "address", sv->address, "leader", self, "voter",
				  sv->role == RAFT_VOTER, "last_index", (json_int_t)idx,
				  "last_contact_ms", (json_int_t)(self ? 0 : ago * 1000),
				  "last_term", (json_int_t)s->raft.current_term));
		free(name);
	}
	return json_pack("{s:o, s:I, s:I}", "servers", servers, "commit_index",
			 (json_int_t)s->raft.commit_index, "last_index", (json_int_t)last);
}

/* Run one non-write op on the loop. */
static void run_op(struct rstore *s, struct rop *op)
{
	struct verr err = {0};
	int rv = 0;
	bool leader = s->started && raft_state(&s->raft) == RAFT_LEADER;
	switch (op->kind) {
	case ROP_APPLY:
		break; /* batched by the caller */
	case ROP_JOIN_START:
		if (s->started) {
			complete(s, op, VERR_INVALID,
				 "this node already holds raft state (it is part of a cluster)");
			return;
		}
		pthread_mutex_lock(&s->mu);
		s->joining = true;
		pthread_mutex_unlock(&s->mu);
		if (ensure_started(s, &err)) {
			complete(s, op, err.code, "%s", err.msg);
			return;
		}
		complete(s, op, 0, NULL);
		return;
	case ROP_BARRIER:
	case ROP_SNAPSHOT:
		if (!s->started && ensure_started(s, &err)) {
			complete(s, op, err.code, "%s", err.msg);
			return;
		}
		if (!leader) {
			if (sole_voter(s))
				park(s, op);
			else
				fail_not_leader(s, op);
			return;
		}
		if (op->kind == ROP_SNAPSHOT)
			raft_set_snapshot_threshold(&s->raft, 1);
		op->barrier.data = op;
		rv = raft_barrier(&s->raft, &op->barrier, barrier_cb);
		if (rv) {
			if (op->kind == ROP_SNAPSHOT)
				raft_set_snapshot_threshold(&s->raft,
							    rstore__snap_idle_threshold(s));
			complete_status(s, op, rv, "raft barrier");
		}
		return;
	case ROP_ADD: {
		if (!leader) {
			fail_not_leader(s, op);
			return;
		}
		const struct raft_server *sv = find_server(s, op->id);
		if (sv && strcmp(sv->address, op->addr)) {
			complete(s, op, VERR_INVALID,
				 "node is already a member at a different address (%s); remove it first",
				 sv->address);
			return;
		}
		if (sv && sv->role == op->role) {
			complete(s, op, 0, NULL); /* joined before: nothing to do */
			return;
		}
		op->change.data = op;
		op->change2.data = op;
		if (sv)
			rv = raft_assign(&s->raft, &op->change2, op->id, op->role, change_done_cb);
		else
			rv = raft_add(&s->raft, &op->change, op->id, op->addr, add_cb);
		if (rv)
			complete_status(s, op, rv, "raft add");
		return;
	}
	case ROP_REMOVE:
		if (!leader) {
			fail_not_leader(s, op);
			return;
		}
		if (!find_server(s, op->id)) {
			complete(s, op, VERR_NOT_FOUND, "no such raft peer");
			return;
		}
		if (op->id == s->id) {
			complete(s, op, VERR_INVALID,
				 "cannot remove the leader itself; step it down first");
			return;
		}
		/* the revocation entry first; the change in its callback */
		apply_revoke_then_remove(s, op);
		return;
	case ROP_TRANSFER:
		if (!leader || sole_voter(s)) {
			complete(s, op, 0, NULL);
			return;
		}
		op->transfer.data = op;
		rv = raft_transfer(&s->raft, &op->transfer, 0, transfer_cb);
		if (rv)
			complete_status(s, op, rv, "raft transfer");
		return;
	case ROP_CONFIG:
		op->out = config_json(s);
		complete(s, op, op->out ? 0 : VERR_INTERNAL, "out of memory");
		return;
	case ROP_STATE:
		if (!leader) {
			fail_not_leader(s, op);
			return;
		}
		op->out = state_json(s);
		complete(s, op, op->out ? 0 : VERR_INTERNAL, "out of memory");
		return;
	}
}

/* The pending writes into batch entries while a slot is free (one entry per
 * BATCH_MAX_BYTES). Loop thread. */
static void flush_pending(struct rstore *s)
{
	size_t start = 0;
	while (start < s->npending && s->inflight < RSTORE_MAX_INFLIGHT) {
		size_t end = start, bytes = 0;
		while (end < s->npending &&
		       (end == start || bytes + s->pending[end]->len <= BATCH_MAX_BYTES)) {
			bytes += s->pending[end]->len + 4;
			end++;
		}
		apply_batch(s, s->pending + start, end - start);
		start = end;
	}
	memmove(s->pending, s->pending + start, (s->npending - start) * sizeof(*s->pending));
	s->npending -= start;
}

/* Writes: start raft if needed, then into the pending batch; park
 * them while a lone voter elects itself; refuse them on a follower. */
static void run_writes(struct rstore *s, struct rop **w, size_t n)
{
	if (!n)
		return;
	struct verr err = {0};
	if (!s->started && ensure_started(s, &err)) {
		for (size_t i = 0; i < n; i++)
			complete(s, w[i], err.code, "%s", err.msg);
		return;
	}
	if (raft_state(&s->raft) != RAFT_LEADER) {
		bool lone = sole_voter(s);
		for (size_t i = 0; i < n; i++) {
			if (lone)
				park(s, w[i]);
			else
				fail_not_leader(s, w[i]);
		}
		return;
	}
	if (s->npending + n > s->pending_cap) {
		size_t nc = s->pending_cap ? s->pending_cap : 64;
		while (nc < s->npending + n)
			nc *= 2;
		struct rop **np = realloc(s->pending, nc * sizeof(*np));
		if (!np) {
			for (size_t i = 0; i < n; i++)
				complete(s, w[i], VERR_INTERNAL, "out of memory");
			return;
		}
		s->pending = np;
		s->pending_cap = nc;
	}
	memcpy(s->pending + s->npending, w, n * sizeof(*w));
	s->npending += n;
	flush_pending(s);
}

/* Dispatch a list of ops (in order; consecutive writes form batches). */
static void dispatch(struct rstore *s, struct rop *list)
{
	size_t cap = 64, n = 0;
	struct rop **w = malloc(cap * sizeof(struct rop *));
	while (list) {
		struct rop *op = list;
		list = op->next;
		op->next = NULL;
		if (op->kind == ROP_APPLY) {
			if (n == cap || !w) {
				struct rop **nw = w ? realloc(w, cap * 2 * sizeof(struct rop *)) : NULL;
				if (!nw) {
					complete(s, op, VERR_INTERNAL, "out of memory");
					continue;
				}
				w = nw;
				cap *= 2;
			}
			w[n++] = op;
			continue;
		}
		run_writes(s, w, n);
		n = 0;
		run_op(s, op);
	}
	run_writes(s, w, n);
	free(w);
}

/* ---- the state mirror and leadership watch --------------------------------- */

static void fail_all(struct rstore *s, struct rop *list, const char *why)
{
	while (list) {
		struct rop *op = list;
		list = op->next;
		complete(s, op, VERR_UNAVAILABLE, "%s", why);
	}
}

static void record_name(struct rstore *s)
{
	struct rop *op = rstore__op_new(ROP_APPLY);
	if (!op || rstore__encode_idstr(&op->buf, &op->len, RREC_NAME, s->id, s->node_id)) {
		rstore__op_free(op);
		return;
	}
	op->detached = true;
	op->s = s;
	struct rop *w[1] = {op};
	run_writes(s, w, 1);
}

static void watch_cb(uv_check_t *h)
{
	struct rstore *s = h->data;
	if (!s->started)
		return;
	int st = raft_state(&s->raft);
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_leader(&s->raft, &lid, &laddr);
	bool lone = sole_voter(s), member = find_server(s, s->id) != NULL;
	note_contacts(s);
	physical_ha_lost_fn lost = NULL;
	void *lost_ctx = NULL;
	bool became_leader = false;
	pthread_mutex_lock(&s->mu);
	bool changed = st != s->state || lid != s->leader_id ||
		       s->commit_index != s->raft.commit_index ||
		       s->applied_index != s->raft.last_applied;
	if (st == RAFT_LEADER && s->state != RAFT_LEADER) {
		s->leader_epoch++;
		became_leader = true;
	}
	if (st != RAFT_LEADER && s->state == RAFT_LEADER && s->ha_held) {
		s->ha_held = false;
		lost = s->lost;
		lost_ctx = s->lost_ctx;
		s->lost = NULL;
		s->lost_ctx = NULL;
	}
	s->state = st;
	s->leader_id = lid;
	snprintf(s->leader_addr, sizeof(s->leader_addr), "%s", laddr && lid ? laddr : "");
	s->commit_index = s->raft.commit_index;
	s->applied_index = s->raft.last_applied;
	s->last_index = raft_last_index(&s->raft);
	s->term = s->raft.current_term;
	s->sole_voter = lone;
	s->member = member;
	if (changed)
		pthread_cond_broadcast(&s->state_cv);
	pthread_mutex_unlock(&s->mu);
	if (lost) {
		log_warn("raft", "raft leadership lost; stepping down");
		lost(lost_ctx);
	}
	if (became_leader) {
		log_info("raft", "this node (%s) is now the raft leader (term %llu)", s->node_id,
			 s->raft.current_term);
		if (!rstore__has_name(s, s->id))
			record_name(s);
	}
	/* writes waiting for a batch slot (a leader that lost its role fails
	 * them through raft_apply) */
	if (s->npending)
		flush_pending(s);
	/* parked writes: retry once leader, fail when expired */
	if (s->parked) {
		struct rop *list = s->parked;
		s->parked = s->parked_tail = NULL;
		if (st == RAFT_LEADER) {
			dispatch(s, list);
		} else {
			double now = rstore__now();
			while (list) {
				struct rop *op = list;
				list = op->next;
				if (now > op->deadline)
					complete(s, op, VERR_UNAVAILABLE,
						 "no raft leader was elected in time");
				else
					park(s, op);
			}
		}
	}
}

/* ---- log-compaction pacing ---------------------------------------------------- */

/* libraft checks `applied - last snapshot >= threshold` after every applied
 * entry. With the same threshold on every node and batches replicated in
 * lockstep, every node took its snapshot at the same instant, every few
 * seconds under write load, and each snapshot (the view walk, 17 MB written
 * and fsynced at 100k secrets) stalled the log appends of the whole cluster
 * for about 250 ms: that was the write p99 tail. As hashicorp/raft does for
 * Vault (SnapshotInterval), a snapshot is now only considered when a timer
 * fires, at a random point in [interval, 2 x interval) on each node; a log
 * that grows to SNAP_HARD_FACTOR x threshold entries before that still
 * forces one, so the log stays bounded under any write rate. */
static uint64_t snap_rand(struct rstore *s)
{
	uint64_t x = s->snap_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	s->snap_rng = x;
	return x;
}

unsigned rstore__snap_idle_threshold(const struct rstore *s)
{
	return s->snap_interval_ms ? s->snap_hard : s->threshold;
}

/* The hard bound, drawn again after every snapshot in [8, 12) x threshold,
 * so that nodes that reach it under the same write stream do not all
 * snapshot at the same entry. */
void rstore__snap_redraw(struct rstore *s)
{
	uint64_t t = s->threshold;
	uint64_t h = t * SNAP_HARD_FACTOR + snap_rand(s) % (t * SNAP_HARD_FACTOR / 2 + 1);
	s->snap_hard = h > UINT32_MAX ? UINT32_MAX : (unsigned)h;
}

static uint64_t snap_next_ms(struct rstore *s)
{
	return s->snap_interval_ms + snap_rand(s) % s->snap_interval_ms;
}

static void snap_timer_cb(uv_timer_t *t)
{
	struct rstore *s = t->data;
	if (s->started && raft_last_applied(&s->raft) - s->raft.log.snapshot.last_index >=
				  s->threshold)
		/* taken at the next applied entry; fsm_snapshot raises it again */
		raft_set_snapshot_threshold(&s->raft, s->threshold);
	uv_timer_start(t, snap_timer_cb, snap_next_ms(s), 0);
}

/* ---- wake-ups and close ------------------------------------------------------ */

static void on_raft_closed(struct raft *r)
{
	struct rstore *s = r->data;
	raft_uv_close(&s->io);
	rstore__transport_fini(&s->transport);
	uv_close((uv_handle_t *)&s->wake, NULL);
	uv_close((uv_handle_t *)&s->watch, NULL);
	uv_close((uv_handle_t *)&s->snap_timer, NULL);
}

static void wake_cb(uv_async_t *h)
{
	struct rstore *s = h->data;
	pthread_mutex_lock(&s->mu);
	struct rop *list = s->queue;
	s->queue = s->queue_tail = NULL;
	bool closing = s->closing && !s->closed;
	if (closing)
		s->closed = true;
	pthread_mutex_unlock(&s->mu);
	if (closing) {
		fail_all(s, list, "the storage is shutting down");
		fail_all(s, s->parked, "the storage is shutting down");
		s->parked = s->parked_tail = NULL;
		for (size_t i = 0; i < s->npending; i++)
			complete(s, s->pending[i], VERR_UNAVAILABLE, "the storage is shutting down");
		s->npending = 0;
		uv_check_stop(&s->watch);
		uv_timer_stop(&s->snap_timer);
		raft_close(&s->raft, on_raft_closed);
		return;
	}
	dispatch(s, list);
}

static void *loop_main(void *arg)
{
	struct rstore *s = arg;
	uv_run(&s->loop, UV_RUN_DEFAULT);
	return NULL;
}

int rstore__submit(struct rstore *s, struct rop *op, struct verr *err)
{
	op->s = s;
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		bool det = op->detached;
		if (det)
			rstore__op_free(op);
		return verr_set(err, VERR_UNAVAILABLE, "the storage is shutting down");
	}
	op->next = NULL;
	if (op->kind == ROP_APPLY && !op->detached)
		op->t_submit = metrics_now();
	if (s->queue_tail)
		s->queue_tail->next = op;
	else
		s->queue = op;
	s->queue_tail = op;
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->wake);
	if (op->detached)
		return 0;
	pthread_mutex_lock(&s->mu);
	while (!op->done)
		pthread_cond_wait(&op->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (op->t_done)
		metrics_observe(rmetrics()->wakeup, metrics_now() - op->t_done);
	if (op->rc && err) {
		err->code = op->rc;
		memcpy(err->msg, op->err.msg, sizeof(err->msg));
	}
	return op->rc;
}

int rstore__loop_start(struct rstore *s, struct verr *err)
{
	int rv = uv_loop_init(&s->loop);
	if (rv)
		return verr_set(err, VERR_INTERNAL, "uv loop: %s", uv_strerror(rv));
	uv_async_init(&s->loop, &s->wake, wake_cb);
	s->wake.data = s;
	uv_check_init(&s->loop, &s->watch);
	s->watch.data = s;
	uv_check_start(&s->watch, watch_cb);
	uv_timer_init(&s->loop, &s->snap_timer);
	s->snap_timer.data = s;
	s->snap_rng = (uint64_t)s->id * 0x9E3779B97F4A7C15ull ^ (uint64_t)time(NULL) ^
		      ((uint64_t)(uintptr_t)s << 16);
	if (!s->snap_rng)
		s->snap_rng = 1;
	rstore__snap_redraw(s);
	if (s->snap_interval_ms)
		uv_timer_start(&s->snap_timer, snap_timer_cb, snap_next_ms(s), 0);
	rv = rstore__transport_init(&s->transport, &s->loop, &s->tls);
	if (rv) {
		verr_set(err, VERR_INTERNAL, "raft transport: %s", raft_strerror(rv));
		goto fail_loop;
	}
	rv = raft_uv_init(&s->io, &s->loop, s->raft_dir, &s->transport);
	if (rv) {
		verr_set(err, VERR_INTERNAL, "raft storage in %s: %s", s->raft_dir,
			 s->io.errmsg[0] ? s->io.errmsg : raft_strerror(rv));
		rstore__transport_fini(&s->transport);
		goto fail_loop;
	}
	raft_uv_set_connect_retry_delay(&s->io, 50);
	s->io_append = s->io.append;
	s->io.append = timed_append;
	/* libraft 0.15's uv io implements async_work (libuv's thread pool) but
	 * says version 1, which makes raft_init refuse asynchronous snapshots */
	if (s->io.async_work && s->io.version < 2)
		s->io.version = 2;
	rstore__fsm_init(s);
	if (!s->io.async_work)
		s->fsm.snapshot_async = NULL; /* fsm_snapshot then does it all */
	rv = raft_init(&s->raft, &s->io, &s->fsm, s->id, s->addr);
	if (rv) {
		verr_set(err, VERR_INTERNAL, "raft init: %s", raft_errmsg(&s->raft));
		raft_uv_close(&s->io);
		rstore__transport_fini(&s->transport);
		goto fail_loop;
	}
	s->raft.data = s;
	raft_set_election_timeout(&s->raft, s->election_ms);
	raft_set_heartbeat_timeout(&s->raft, s->heartbeat_ms);
	raft_set_snapshot_threshold(&s->raft, rstore__snap_idle_threshold(s));
	raft_set_snapshot_trailing(&s->raft, s->trailing);
	raft_set_pre_vote(&s->raft, true);
	if (!s->pristine && ensure_started(s, err)) {
		/* closes io and transport; the loop must run for that */
		uv_check_stop(&s->watch);
		uv_timer_stop(&s->snap_timer);
		raft_close(&s->raft, on_raft_closed);
		uv_run(&s->loop, UV_RUN_DEFAULT);
		uv_loop_close(&s->loop);
		return err->code;
	}
	if (pthread_create(&s->thread, NULL, loop_main, s)) {
		/* unreachable in practice; leak the loop rather than race it */
		return verr_set(err, VERR_INTERNAL, "cannot start the raft thread");
	}
	s->thread_started = true;
	return 0;
fail_loop:
	uv_close((uv_handle_t *)&s->wake, NULL);
	uv_close((uv_handle_t *)&s->watch, NULL);
	uv_close((uv_handle_t *)&s->snap_timer, NULL);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	uv_loop_close(&s->loop);
	return err->code;
}

void rstore__loop_stop(struct rstore *s)
{
	if (!s->thread_started)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = true;
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->wake);
	pthread_join(s->thread, NULL);
	s->thread_started = false;
	uv_loop_close(&s->loop);
	free(s->pending);
	s->pending = NULL;
	s->npending = s->pending_cap = 0;
}
