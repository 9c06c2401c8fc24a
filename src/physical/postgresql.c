/*
 * postgresql.c - storage "postgresql": Vault's PostgreSQL backend (stanza,
 * schema and key layout) over libpq, with an HA lock on a PostgreSQL
 * session advisory lock.
 *
 * Stanza (Vault's): connection_url (or the VAULT_PG_CONNECTION_URL
 * environment variable, which wins as in Vault), table (default
 * vault_kv_store), ha_enabled, ha_table (default vault_ha_locks),
 * max_parallel (default 128), max_idle_connections, skip_create_table.
 *
 * Layout (Vault's, so an operator's existing table works unchanged):
 *   parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C",
 *   key TEXT COLLATE "C", value BYTEA, PRIMARY KEY (path, key),
 *   index on parent_path.
 * A key "a/b/c" is the row path "/a/b/", key "c", parent_path "/a/"; "a/b"
 * is ("/a/", "b", "/"); "a" is ("/", "a", ""). list(prefix) is Vault's
 * query: the keys whose path is "/"+prefix, plus the first segment after
 * the prefix of every path below it (the folders), with the parent_path
 * condition written as a range so the index serves it.
 *
 * DESIGN
 * - A pool of at most max_parallel connections (struct pg.mu guards it),
 *   each with every statement prepared once. A connection that failed at
 *   the connection level is closed and every idle one with it (a restarted
 *   PostgreSQL kills them all); an idle connection with bytes waiting (the
 *   server's "terminating connection" notice or EOF) is discarded before
 *   use. Reads retry once on a fresh connection; writes never retry (a
 *   write whose outcome is unknown is reported as failed, not repeated).
 * - Transactions: BEGIN, the operations in order, COMMIT, on one pooled
 *   connection.
 * - HA lock: a session advisory lock (classid COFFER_LOCK_CLASS, objid a
 *   hash of ha_table) taken with pg_try_advisory_lock on a DEDICATED
 *   connection (never from the pool, so a saturated pool cannot starve the
 *   lock, Vault's failure mode). PostgreSQL releases it the moment that
 *   session ends, so a killed active node frees the lock in milliseconds;
 *   TCP keepalives and tcp_user_timeout on both ends bound how long a
 *   silently vanished node can keep it. The holder's advertisement is kept
 *   in ha_table (Vault's columns), ha_identity = "<backend pid>/<uuid>" so
 *   holder() only believes a row whose session really holds the lock.
 * - Fencing: with the lock the lock session also takes an exclusive
 *   advisory lock on a random token of this acquisition (classid
 *   COFFER_TOKEN_CLASS). While this node holds the lock every write is one
 *   statement that first takes a shared transaction-scoped advisory lock
 *   on the barrier key (COFFER_BARRIER_CLASS), then checks that the token
 *   is still locked (pg_try_advisory_xact_lock_shared on it fails: only
 *   our live lock session can hold it, and a session that holds the token
 *   holds the lock, since both go only together, at session end or
 *   release), and writes only then. (A pg_locks lookup by backend pid says
 *   the same but costs a third of the write throughput: pg_lock_status
 *   takes every lock-partition lock.) A new holder takes the barrier key exclusively once right after
 *   winning the lock, so it waits for every write that passed its check
 *   under the old holder: no write of the old holder lands after the new
 *   one became active. A failed guard is VERR_UNAVAILABLE, and the lost
 *   callback runs.
 * - renew (every second) checks on the lock connection that the session
 *   still holds the lock and that our row is still in ha_table; a row
 *   deleted or replaced behind our back means step down.
 *
 * Threads: every method from any thread. mu guards the pool and the lock
 * state (ha_state, holder_pid, lost/lost_ctx); ha_mu serialises the lock
 * connection; schema_mu the one-time table creation.
 */
#include "physical/physical.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/rand.h"

#define PG_DEFAULT_TABLE "vault_kv_store"
#define PG_DEFAULT_HA_TABLE "vault_ha_locks"
#define PG_DEFAULT_MAX_PARALLEL 128
#define PG_LOCK_KEY "core/lock"      /* ha_key of the lock row (Vault's) */
#define COFFER_LOCK_CLASS 1131373158 /* "Coff": the HA lock */
#define COFFER_BARRIER_CLASS 1131373159
#define COFFER_SCHEMA_CLASS 1131373160
#define COFFER_TOKEN_CLASS 1131373161
#define PG_POOL_WAIT_MS 30000
#define PG_BARRIER_WAIT "5s"
#define PG_ROW_TTL "15 seconds" /* valid_until, informative for operators */

/* Prepared statements on every pooled connection. */
enum pg_stmt { S_GET, S_PUT, S_DEL, S_LIST, S_PUT_G, S_DEL_G, S_GUARD, S_HOLDER, S_COUNT };
static const char *const stmt_names[S_COUNT] = {"get", "put", "del", "list",
						"put_g", "del_g", "guard", "holder"};

enum pg_ha_state { HA_FREE, HA_HELD, HA_LOST };

struct pg;

struct pg_ha {
	struct physical_ha base; /* must be first */
	struct pg *p;
};

struct pg_idle {
	PGconn *c;
	uint64_t gen;
};

struct pg {
	struct physical base; /* must be first */
	char *conninfo;       /* may hold a password: wiped on close */
	char *table, *ha_table; /* as configured (unquoted) */
	char *sql[S_COUNT];     /* NULL: not prepared (S_HOLDER without HA) */
	char *sql_schema, *sql_acquire, *sql_renew, *sql_release;
	uint32_t lock_obj; /* objid of the advisory lock (hash of ha_table) */
	bool skip_create;
	atomic_bool schema_ready;
	pthread_mutex_t schema_mu;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pg_idle *idle;
	size_t nidle, max_idle;
	int open, max_parallel; /* open: connections in use + idle */
	uint64_t gen;           /* bumped when the server went away */

	/* HA: the state under mu, the connection under ha_mu */
	struct pg_ha *ha;
	enum pg_ha_state ha_state;
	int holder_pid;   /* backend pid of our lock session while held */
	int holder_token; /* the token our lock session holds (the fence) */
	char identity[64];
	physical_ha_lost_fn lost;
	void *lost_ctx;
	pthread_mutex_t ha_mu;
	PGconn *ha_conn;
};

static const struct physical_ops pg_ops;

/* ---- errors ---- */

/* True when the failure means the connection (or the server) is gone. */
static bool conn_level(PGconn *c, const PGresult *r)
{
	if (!c || PQstatus(c) != CONNECTION_OK)
		return true;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (!st)
		return r == NULL || PQresultStatus(r) == PGRES_FATAL_ERROR;
	/* 08: connection exception; 57P: admin shutdown, crash, starting up */
	return !strncmp(st, "08", 2) || !strncmp(st, "57P", 3);
}

/* One line naming the problem: PostgreSQL's primary message, never its
 * DETAIL (which may quote a key) and never the connection string. */
static int pq_err(struct verr *err, PGconn *c, const PGresult *r, const char *what)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = c ? PQerrorMessage(c) : "out of memory";
	if (!msg || !*msg)
		msg = "unknown error";
	int code = VERR_INTERNAL;
	if (conn_level(c, r) || (st && (!strncmp(st, "53", 2) || !strncmp(st, "40", 2) ||
				       !strcmp(st, "55P03"))))
		code = VERR_UNAVAILABLE;
	else if (st && (!strcmp(st, "22021") || !strcmp(st, "22P05")))
		code = VERR_INVALID; /* a key that is not valid UTF-8 */
	else if (st && !strcmp(st, "54000"))
		code = VERR_TOO_LARGE; /* e.g. an index row over btree's limit */
	/* libpq's connection messages span lines with tabs: one line, single
	 * spaces */
	char one[300];
	size_t l = 0;
	for (const char *m = msg; *m && l + 1 < sizeof(one); m++) {
		char ch = (*m == '\n' || *m == '\t' || *m == '\r') ? ' ' : *m;
		if (ch == ' ' && (l == 0 || one[l - 1] == ' '))
			continue;
		one[l++] = ch;
	}
	while (l && one[l - 1] == ' ')
		l--;
	one[l] = '\0';
	return verr_set(err, code, "postgresql: %s: %s", what, one);
}

/* ---- connections ---- */

/* PostgreSQL's NOTICEs ("relation already exists, skipping") are not ours
 * to print on stderr. */
static void on_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("storage", "postgresql: %s", msg);
}

static PGconn *connect_to(struct pg *p, bool for_lock, struct verr *err)
{
	/* keywords before dbname are defaults the connection string may
	 * override; the ones after it are ours (the lock connection's
	 * keepalives) */
	const char *kw[16], *val[16];
	int n = 0;
	kw[n] = "connect_timeout", val[n++] = "5";
	kw[n] = "application_name", val[n++] = for_lock ? "coffer-ha" : "coffer";
	if (!for_lock) {
		/* a server that vanished without a reset fails the request in
		 * seconds, not after the kernel's ~15 minutes of retransmits;
		 * a slow but live server is never cut off (keepalives are
		 * answered, and tcp_user_timeout only counts unacked data) */
		kw[n] = "keepalives_idle", val[n++] = "5";
		kw[n] = "keepalives_interval", val[n++] = "2";
		kw[n] = "keepalives_count", val[n++] = "3";
		kw[n] = "tcp_user_timeout", val[n++] = "15000";
	}
	kw[n] = "dbname", val[n++] = p->conninfo;
	if (for_lock) {
		kw[n] = "keepalives", val[n++] = "1";
		kw[n] = "keepalives_idle", val[n++] = "2";
		kw[n] = "keepalives_interval", val[n++] = "1";
		kw[n] = "keepalives_count", val[n++] = "3";
		kw[n] = "tcp_user_timeout", val[n++] = "5000";
	}
	kw[n] = NULL, val[n] = NULL;
	PGconn *c = PQconnectdbParams(kw, val, 1);
	if (!c) {
		verr_set(err, VERR_INTERNAL, "postgresql: out of memory");
		return NULL;
	}
	PQsetNoticeProcessor(c, on_notice, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		pq_err(err, c, NULL, "cannot connect");
		err->code = VERR_UNAVAILABLE;
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int exec_ok(PGconn *c, const char *sql, const char *what, struct verr *err)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = pq_err(err, c, r, what);
	PQclear(r);
	return rc;
}

/* Create the tables and index if missing (once per process). Serialised
 * across nodes by a transaction-scoped advisory lock: two servers starting
 * together must not race on CREATE TABLE IF NOT EXISTS. */
static int ensure_schema(struct pg *p, PGconn *c, struct verr *err)
{
	if (atomic_load(&p->schema_ready) || p->skip_create)
		return 0;
	pthread_mutex_lock(&p->schema_mu);
	int rc = 0;
	if (!atomic_load(&p->schema_ready)) {
		rc = exec_ok(c, p->sql_schema, "creating the tables", err);
		if (rc) {
			PGresult *r = PQexec(c, "ROLLBACK");
			PQclear(r);
		} else {
			atomic_store(&p->schema_ready, true);
		}
	}
	pthread_mutex_unlock(&p->schema_mu);
	return rc;
}

/* type OIDs (pg_type.h is a server header) */
#define T_TEXT 25
#define T_BYTEA 17
#define T_INT4 23

static int prepare_all(struct pg *p, PGconn *c, struct verr *err)
{
	static const Oid types[S_COUNT][5] = {
		[S_GET] = {T_TEXT, T_TEXT},
		[S_PUT] = {T_TEXT, T_TEXT, T_TEXT, T_BYTEA},
		[S_DEL] = {T_TEXT, T_TEXT},
		[S_LIST] = {T_TEXT, T_TEXT},
		[S_PUT_G] = {T_TEXT, T_TEXT, T_TEXT, T_BYTEA, T_INT4},
		[S_DEL_G] = {T_TEXT, T_TEXT, T_INT4},
		[S_GUARD] = {T_INT4},
		[S_HOLDER] = {0},
	};
	static const int nparams[S_COUNT] = {2, 4, 2, 2, 5, 3, 1, 0};
	for (int i = 0; i < S_COUNT; i++) {
		if (!p->sql[i])
			continue;
		PGresult *r = PQprepare(c, stmt_names[i], p->sql[i], nparams[i], types[i]);
		int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0
								   : pq_err(err, c, r, "preparing statements");
		PQclear(r);
		if (rc)
			return rc;
	}
	return 0;
}

static PGconn *open_pooled(struct pg *p, struct verr *err)
{
	PGconn *c = connect_to(p, false, err);
	if (!c)
		return NULL;
	if (ensure_schema(p, c, err) || prepare_all(p, c, err)) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* An idle connection the server has written to (a FATAL notice before it
 * closed the session, or EOF) is dead or about to be. */
static bool idle_is_stale(PGconn *c)
{
	struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
	if (pfd.fd < 0 || PQstatus(c) != CONNECTION_OK)
		return true;
	return poll(&pfd, 1, 0) != 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connection for one operation: an idle one, a new one while fewer than
 * max_parallel are open, or wait for one to come back. *gen: the pool
 * generation it belongs to. */
static PGconn *pool_get(struct pg *p, uint64_t *gen, struct verr *err)
{
	int64_t deadline = mono_ms() + PG_POOL_WAIT_MS;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->nidle) {
			struct pg_idle it = p->idle[--p->nidle];
			if (it.gen == p->gen && !idle_is_stale(it.c)) {
				*gen = it.gen;
				pthread_mutex_unlock(&p->mu);
				return it.c;
			}
			p->open--;
			pthread_mutex_unlock(&p->mu);
			PQfinish(it.c);
			pthread_mutex_lock(&p->mu);
		}
		if (p->open < p->max_parallel) {
			p->open++;
			*gen = p->gen;
			pthread_mutex_unlock(&p->mu);
			PGconn *c = open_pooled(p, err);
			if (!c) {
				pthread_mutex_lock(&p->mu);
				p->open--;
				pthread_cond_signal(&p->cv);
				pthread_mutex_unlock(&p->mu);
			}
			return c;
		}
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	verr_set(err, VERR_UNAVAILABLE,
		 "postgresql: all %d connections (max_parallel) stayed busy for %d s", p->max_parallel,
		 PG_POOL_WAIT_MS / 1000);
	return NULL;
}

/* Give a connection back. broken: it failed at the connection level, so
 * the server probably went away: drop it and every idle one. */
static void pool_put(struct pg *p, PGconn *c, uint64_t gen, bool broken)
{
	struct pg_idle *drop = NULL;
	size_t ndrop = 0;
	pthread_mutex_lock(&p->mu);
	if (broken && gen == p->gen) {
		p->gen++;
		drop = p->idle;
		ndrop = p->nidle;
		p->idle = calloc(p->max_idle ? p->max_idle : 1, sizeof(*p->idle));
		if (!p->idle) { /* keep the old array; close nothing now */
			p->idle = drop;
			drop = NULL;
			ndrop = 0;
		} else {
			p->nidle = 0;
			p->open -= (int)ndrop;
		}
	}
	if (!broken && gen == p->gen && p->nidle < p->max_idle && PQstatus(c) == CONNECTION_OK &&
	    PQtransactionStatus(c) == PQTRANS_IDLE) {
		p->idle[p->nidle++] = (struct pg_idle){c, gen};
		c = NULL;
	} else {
		p->open--;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	PQfinish(c);
	for (size_t i = 0; i < ndrop; i++)
		PQfinish(drop[i].c);
	free(drop);
}

/* ---- keys ---- */

struct pg_key {
	char *buf;
	const char *parent, *path, *key;
};

static int check_key(const char *key, struct verr *err)
{
	if (!key || strlen(key) > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "key is empty or longer than %d bytes",
				PHYSICAL_MAX_KEY);
	return 0;
}

/* Vault's splitKey: "a/b/c" -> parent "/a/", path "/a/b/", key "c". */
static int split_key(struct pg_key *k, const char *key, struct verr *err)
{
	int rc = check_key(key, err);
	if (rc)
		return rc;
	size_t n = strlen(key);
	/* three strings, each at most n + 2 bytes plus NUL */
	k->buf = malloc(3 * (n + 3));
	if (!k->buf)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char *parent = k->buf, *path = parent + n + 3;
	const char *ls = strrchr(key, '/');
	if (!ls) {
		parent[0] = '\0';
		snprintf(path, n + 3, "/");
		k->key = key;
	} else {
		size_t dl = (size_t)(ls - key); /* the folder, without its slash */
		snprintf(path, n + 3, "/%.*s/", (int)dl, key);
		const char *ps = NULL;
		for (size_t i = 0; i < dl; i++)
			if (key[i] == '/')
				ps = key + i;
		if (!ps)
			snprintf(parent, n + 3, "/");
		else
			snprintf(parent, n + 3, "/%.*s/", (int)(ps - key), key);
		k->key = ls + 1;
	}
	k->parent = parent;
	k->path = path;
	return 0;
}

/* ---- data operations ---- */

/* Run one prepared statement on a pooled connection. Retries once on a
 * fresh connection when `retry` (reads) and the connection had died. On
 * success *out is the result (the caller clears it). */
static int run(struct pg *p, enum pg_stmt s, int n, const char *const *vals, const int *lens,
	       const int *fmts, int result_fmt, bool retry, PGresult **out, const char *what,
	       struct verr *err)
{
	*out = NULL;
	for (int attempt = 0;; attempt++) {
		uint64_t gen = 0;
		PGconn *c = pool_get(p, &gen, err);
		if (!c)
			return err->code;
		PGresult *r = PQexecPrepared(c, stmt_names[s], n, vals, lens, fmts, result_fmt);
		ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			pool_put(p, c, gen, false);
			*out = r;
			return 0;
		}
		bool broken = conn_level(c, r);
		int rc = pq_err(err, c, r, what);
		PQclear(r);
		pool_put(p, c, gen, broken);
		if (!(broken && retry && attempt == 0))
			return rc;
	}
}

static int pg_get(struct physical *ph, const char *key, uint8_t **out, size_t *len,
		  struct verr *err)
{
	struct pg *p = (struct pg *)ph;
	*out = NULL;
	*len = 0;
	struct pg_key k = {0};
	int rc = split_key(&k, key, err);
	if (rc)
		return rc;
	const char *vals[2] = {k.path, k.key};
	PGresult *r = NULL;
	rc = run(p, S_GET, 2, vals, NULL, NULL, 1, true, &r, "get", err);
	free(k.buf);
	if (rc)
		return rc;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
		size_t n = (size_t)PQgetlength(r, 0, 0);
		uint8_t *v = malloc(n ? n : 1);
		if (!v) {
			PQclear(r);
			return verr_set(err, VERR_INTERNAL, "out of memory");
		}
		memcpy(v, PQgetvalue(r, 0, 0), n);
		*out = v;
		*len = n;
	}
	PQclear(r);
	return 0;
}

/* The fencing state for a write: 0 unguarded, 1 guarded by the token *tok, or
 * VERR_UNAVAILABLE once the lock is known lost (until release). */
static int guard_state(struct pg *p, int *tok, struct verr *err)
{
	pthread_mutex_lock(&p->mu);
	enum pg_ha_state s = p->ha_state;
	*tok = p->holder_token;
	pthread_mutex_unlock(&p->mu);
	if (s == HA_LOST)
		return verr_set(err, VERR_UNAVAILABLE,
				"postgresql: this node lost the HA lock; the write was not applied");
	return s == HA_HELD;
}

static void fire_lost(struct pg *p, const char *why)
{
	physical_ha_lost_fn fn = NULL;
	void *ctx = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->ha_state == HA_HELD) {
		p->ha_state = HA_LOST;
		fn = p->lost;
		ctx = p->lost_ctx;
	}
	pthread_mutex_unlock(&p->mu);
	if (fn) {
		log_warn("storage", "postgresql: HA lock lost (%s)", why);
		fn(ctx);
	}
}

static int fence_failed(struct pg *p, struct verr *err)
{
	fire_lost(p, "the lock session no longer holds the advisory lock");
	return verr_set(err, VERR_UNAVAILABLE,
			"postgresql: this node no longer holds the HA lock; the write was not applied");
}

/* A guarded statement answered one row: ok = t/f. */
static bool guard_ok(const PGresult *r)
{
	return PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
}

static int pg_put(struct physical *ph, const char *key, const uint8_t *val, size_t len,
		  struct verr *err)
{
	struct pg *p = (struct pg *)ph;
	if (check_key(key, err))
		return err->code;
	if (len > ph->max_entry_size)
		return verr_set(err, VERR_TOO_LARGE,
				"value of %zu bytes exceeds the postgresql backend's max_entry_size (%zu)",
				len, ph->max_entry_size);
	int tok = 0;
	int g = guard_state(p, &tok, err);
	if (g < 0)
		return g;
	struct pg_key k = {0};
	int rc = split_key(&k, key, err);
	if (rc)
		return rc;
	char toks[16];
	snprintf(toks, sizeof(toks), "%d", tok);
	const char *vals[5] = {k.parent, k.path, k.key, val ? (const char *)val : "", toks};
	int lens[5] = {0, 0, 0, (int)len, 0};
	int fmts[5] = {0, 0, 0, 1, 0};
	PGresult *r = NULL;
	rc = run(p, g ? S_PUT_G : S_PUT, g ? 5 : 4, vals, lens, fmts, 0, false, &r, "put", err);
	free(k.buf);
	if (rc)
		return rc;
	bool ok = !g || guard_ok(r);
	PQclear(r);
	return ok ? 0 : fence_failed(p, err);
}

static int pg_del(struct physical *ph, const char *key, struct verr *err)
{
	struct pg *p = (struct pg *)ph;
	int tok = 0;
	int g = guard_state(p, &tok, err);
	if (g < 0)
		return g;
	struct pg_key k = {0};
	int rc = split_key(&k, key, err);
	if (rc)
		return rc;
	char toks[16];
	snprintf(toks, sizeof(toks), "%d", tok);
	const char *vals[3] = {k.path, k.key, toks};
	PGresult *r = NULL;
	rc = run(p, g ? S_DEL_G : S_DEL, g ? 3 : 2, vals, NULL, NULL, 0, false, &r, "delete", err);
	free(k.buf);
	if (rc)
		return rc;
	bool ok = !g || guard_ok(r);
	PQclear(r);
	return ok ? 0 : fence_failed(p, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int pg_list(struct physical *ph, const char *prefix, char ***out, size_t *n,
		   struct verr *err)
{
	struct pg *p = (struct pg *)ph;
	*out = NULL;
	*n = 0;
	if (!prefix)
		prefix = "";
	size_t pl = strlen(prefix);
	if (pl > PHYSICAL_MAX_KEY)
		return verr_set(err, VERR_INVALID, "prefix longer than %d bytes", PHYSICAL_MAX_KEY);
	char *lo = malloc(pl + 3), *hi = malloc(pl + 3);
	if (!lo || !hi) {
		free(lo);
		free(hi);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	/* Vault lists "/" + prefix; the folders are the rows whose
	 * parent_path starts with it: [lo, hi) with hi = lo's last byte + 1
	 * (lo ends in '/', so hi ends in '0'; COLLATE "C" compares bytes) */
	snprintf(lo, pl + 3, "/%s", prefix);
	snprintf(hi, pl + 3, "%s", lo);
	size_t hl = strlen(hi);
	hi[hl - 1] = (char)(hi[hl - 1] + 1);
	const char *vals[2] = {lo, hi};
	PGresult *r = NULL;
	int rc = run(p, S_LIST, 2, vals, NULL, NULL, 0, true, &r, "list", err);
	free(lo);
	free(hi);
	if (rc)
		return rc;
	int rows = PQntuples(r);
	char **items = rows ? calloc((size_t)rows, sizeof(*items)) : NULL;
	if (rows && !items) {
		PQclear(r);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	size_t ni = 0;
	for (int i = 0; i < rows; i++) {
		if (PQgetisnull(r, i, 0))
			continue;
		if (!(items[ni] = strdup(PQgetvalue(r, i, 0)))) {
			PQclear(r);
			physical_list_free(items, ni);
			return verr_set(err, VERR_INTERNAL, "out of memory");
		}
		ni++;
	}
	PQclear(r);
	if (ni)
		qsort(items, ni, sizeof(*items), cmp_str);
	/* de-duplicate (the folder half of the query is DISTINCT already) */
	size_t w = 0;
	for (size_t i = 0; i < ni; i++) {
		if (w && !strcmp(items[w - 1], items[i])) {
			free(items[i]);
			continue;
		}
		items[w++] = items[i];
	}
	if (!w) {
		free(items);
		items = NULL;
	}
	*out = items;
	*n = w;
	return 0;
}

static int txn_exec(PGconn *c, const char *name, int n, const char *const *vals, const int *lens,
		    const int *fmts, PGresult **out, struct verr *err)
{
	PGresult *r = PQexecPrepared(c, name, n, vals, lens, fmts, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		if (out)
			*out = r;
		else
			PQclear(r);
		return 0;
	}
	int rc = pq_err(err, c, r, "transaction");
	PQclear(r);
	return rc;
}

static int pg_txn(struct physical *ph, const struct physical_txn_op *ops, size_t n,
		  struct verr *err)
{
	struct pg *p = (struct pg *)ph;
	for (size_t i = 0; i < n; i++) {
		int rc = check_key(ops[i].key, err);
		if (rc)
			return rc;
		if (ops[i].kind == PHYSICAL_TXN_PUT && ops[i].len > ph->max_entry_size)
			return verr_set(err, VERR_TOO_LARGE,
					"value of %zu bytes exceeds the postgresql backend's "
					"max_entry_size (%zu)",
					ops[i].len, ph->max_entry_size);
	}
	int tok = 0;
	int g = guard_state(p, &tok, err);
	if (g < 0)
		return g;
	uint64_t gen = 0;
	PGconn *c = pool_get(p, &gen, err);
	if (!c)
		return err->code;
	int rc = exec_ok(c, "BEGIN", "transaction", err);
	bool fenced = false;
	if (!rc && g) {
		/* the guard holds the barrier key (shared) until COMMIT */
		char toks[16];
		snprintf(toks, sizeof(toks), "%d", tok);
		const char *vals[1] = {toks};
		PGresult *r = NULL;
		rc = txn_exec(c, stmt_names[S_GUARD], 1, vals, NULL, NULL, &r, err);
		if (!rc) {
			fenced = !guard_ok(r);
			PQclear(r);
		}
	}
	for (size_t i = 0; !rc && !fenced && i < n; i++) {
		struct pg_key k = {0};
		if ((rc = split_key(&k, ops[i].key, err)))
			break;
		if (ops[i].kind == PHYSICAL_TXN_PUT) {
			const char *vals[4] = {k.parent, k.path, k.key,
					       ops[i].val ? (const char *)ops[i].val : ""};
			int lens[4] = {0, 0, 0, (int)ops[i].len};
			int fmts[4] = {0, 0, 0, 1};
			rc = txn_exec(c, stmt_names[S_PUT], 4, vals, lens, fmts, NULL, err);
		} else {
			const char *vals[2] = {k.path, k.key};
			rc = txn_exec(c, stmt_names[S_DEL], 2, vals, NULL, NULL, NULL, err);
		}
		free(k.buf);
	}
	if (!rc && !fenced) {
		/* COMMIT of an aborted transaction answers ROLLBACK: check */
		PGresult *r = PQexec(c, "COMMIT");
		const char *cmd = r ? PQcmdStatus(r) : NULL;
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK || !cmd || strcmp(cmd, "COMMIT"))
			rc = r && PQresultStatus(r) == PGRES_COMMAND_OK
				     ? verr_set(err, VERR_INTERNAL,
						"postgresql: transaction was rolled back")
				     : pq_err(err, c, r, "commit");
		PQclear(r);
	} else if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, "ROLLBACK");
		PQclear(r);
	}
	pool_put(p, c, gen, PQstatus(c) != CONNECTION_OK);
	if (fenced)
		return fence_failed(p, err);
	return rc;
}

/* ---- HA lock ---- */

/* The lock connection: opened on demand, keepalives on both ends so a
 * vanished peer is noticed in seconds. ha_mu held. */
static int ha_conn_ready(struct pg *p, struct verr *err)
{
	if (p->ha_conn && PQstatus(p->ha_conn) == CONNECTION_OK)
		return 0;
	PQfinish(p->ha_conn);
	p->ha_conn = NULL;
	PGconn *c = connect_to(p, true, err);
	if (!c)
		return err->code;
	/* the server side of the same session: notice a dead holder within
	 * seconds instead of after the system's default two hours */
	int rc = exec_ok(c,
			 "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; "
			 "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 5000",
			 "configuring the lock session", err);
	if (!rc)
		rc = ensure_schema(p, c, err);
	if (rc) {
		PQfinish(c);
		return rc;
	}
	p->ha_conn = c;
	return 0;
}

static void ha_conn_drop(struct pg *p)
{
	PQfinish(p->ha_conn); /* ends the session: PostgreSQL frees the lock */
	p->ha_conn = NULL;
}

static int ha_acquire(struct physical_ha *h, const char *value, physical_ha_lost_fn lost,
		      void *ctx, struct verr *err)
{
	struct pg *p = ((struct pg_ha *)h)->p;
	char uuid[RAND_UUID_LEN + 1];
	uint32_t tok = 0;
	if (rand_uuid(uuid, err) || rand_bytes((uint8_t *)&tok, sizeof(tok), err))
		return err->code;
	tok = (tok & 0x7fffffffu) | 1u; /* a positive int4 */
	pthread_mutex_lock(&p->ha_mu);
	int rc = ha_conn_ready(p, err);
	if (rc) {
		pthread_mutex_unlock(&p->ha_mu);
		return rc;
	}
	int pid = PQbackendPID(p->ha_conn);
	char ident[64];
	snprintf(ident, sizeof(ident), "%d/%s", pid, uuid);
	char toks[16];
	snprintf(toks, sizeof(toks), "%u", tok);
	const char *vals[3] = {ident, value ? value : "", toks};
	PGresult *r = PQexecParams(p->ha_conn, p->sql_acquire, 3,
				   (const Oid[]){T_TEXT, T_TEXT, T_INT4}, vals, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    (!strcmp(PQgetvalue(r, 0, 0), "t") && strcmp(PQgetvalue(r, 0, 1), "t"))) {
		/* (won the lock but not the token: give both back the same way) */
		rc = pq_err(err, p->ha_conn, r, "acquiring the HA lock");
		PQclear(r);
		/* the advisory lock may be held even though the row failed:
		 * ending the session is the one sure way to let it go */
		ha_conn_drop(p);
		pthread_mutex_unlock(&p->ha_mu);
		return rc;
	}
	bool got = !strcmp(PQgetvalue(r, 0, 1), "t");
	PQclear(r);
	if (!got) {
		pthread_mutex_unlock(&p->ha_mu);
		return 0;
	}
	/* wait for the writes the previous holder had already let through */
	rc = exec_ok(p->ha_conn, "SET lock_timeout = '" PG_BARRIER_WAIT "'", "acquiring the HA lock",
		     err);
	if (!rc) {
		char sql[160];
		snprintf(sql, sizeof(sql),
			 "SELECT pg_catalog.pg_advisory_lock(%d, %u), "
			 "pg_catalog.pg_advisory_unlock(%d, %u)",
			 COFFER_BARRIER_CLASS, p->lock_obj, COFFER_BARRIER_CLASS, p->lock_obj);
		rc = exec_ok(p->ha_conn, sql, "waiting for the previous holder's writes", err);
	}
	if (!rc)
		rc = exec_ok(p->ha_conn, "SET lock_timeout = 0", "acquiring the HA lock", err);
	if (rc) {
		log_warn("storage", "postgresql: HA lock won but not taken: %s", err->msg);
		ha_conn_drop(p);
		pthread_mutex_unlock(&p->ha_mu);
		return rc;
	}
	pthread_mutex_lock(&p->mu);
	p->ha_state = HA_HELD;
	p->holder_pid = pid;
	p->holder_token = (int)tok;
	snprintf(p->identity, sizeof(p->identity), "%s", ident);
	p->lost = lost;
	p->lost_ctx = ctx;
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->ha_mu);
	log_info("storage", "postgresql: HA lock acquired (lock session pid %d)", pid);
	return 1;
}

static int ha_renew(struct physical_ha *h, struct verr *err)
{
	struct pg *p = ((struct pg_ha *)h)->p;
	char ident[64];
	pthread_mutex_lock(&p->mu);
	bool held = p->ha_state == HA_HELD;
	snprintf(ident, sizeof(ident), "%s", p->identity);
	pthread_mutex_unlock(&p->mu);
	if (!held)
		return verr_set(err, VERR_UNAVAILABLE, "postgresql: the HA lock is not held");
	pthread_mutex_lock(&p->ha_mu);
	if (!p->ha_conn || PQstatus(p->ha_conn) != CONNECTION_OK) {
		pthread_mutex_unlock(&p->ha_mu);
		fire_lost(p, "the lock session is gone");
		return verr_set(err, VERR_UNAVAILABLE, "postgresql: the HA lock session is gone");
	}
	const char *vals[1] = {ident};
	PGresult *r = PQexecParams(p->ha_conn, p->sql_renew, 1, (const Oid[]){T_TEXT}, vals, NULL,
				   NULL, 0);
	int rc = 0;
	const char *why = NULL;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		rc = pq_err(err, p->ha_conn, r, "renewing the HA lock");
		/* whatever went wrong, this session can no longer vouch for
		 * the lock: end it so the lock is free for the others */
		ha_conn_drop(p);
		why = "the lock session failed";
	} else if (strcmp(PQgetvalue(r, 0, 0), "t")) {
		rc = verr_set(err, VERR_UNAVAILABLE,
			      "postgresql: the lock session no longer holds the advisory lock");
		why = "advisory lock no longer held";
	} else if (!strcmp(PQgetvalue(r, 0, 1), "0")) {
		rc = verr_set(err, VERR_UNAVAILABLE,
			      "postgresql: the lock row in ha_table was deleted or replaced");
		why = "lock row deleted or replaced";
	}
	PQclear(r);
	pthread_mutex_unlock(&p->ha_mu);
	if (why)
		fire_lost(p, why);
	return rc;
}

static void ha_release(struct physical_ha *h)
{
	struct pg *p = ((struct pg_ha *)h)->p;
	char ident[64];
	pthread_mutex_lock(&p->mu);
	bool had = p->ha_state != HA_FREE;
	p->ha_state = HA_FREE;
	p->holder_pid = 0;
	p->holder_token = 0;
	snprintf(ident, sizeof(ident), "%s", p->identity);
	p->identity[0] = '\0';
	p->lost = NULL;
	p->lost_ctx = NULL;
	pthread_mutex_unlock(&p->mu);
	if (!had)
		return;
	pthread_mutex_lock(&p->ha_mu);
	if (p->ha_conn && PQstatus(p->ha_conn) == CONNECTION_OK) {
		const char *vals[1] = {ident};
		PGresult *r = PQexecParams(p->ha_conn, p->sql_release, 1, (const Oid[]){T_TEXT},
					   vals, NULL, NULL, 0);
		bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok) {
			struct verr e = {0};
			pq_err(&e, p->ha_conn, r, "releasing the HA lock");
			log_warn("storage", "%s", e.msg);
		}
		PQclear(r);
		if (!ok)
			ha_conn_drop(p);
	}
	pthread_mutex_unlock(&p->ha_mu);
}

static int ha_holder(struct physical_ha *h, char **value, struct verr *err)
{
	struct pg *p = ((struct pg_ha *)h)->p;
	*value = NULL;
	PGresult *r = NULL;
	int rc = run(p, S_HOLDER, 0, NULL, NULL, NULL, 0, true, &r, "reading the HA lock", err);
	if (rc)
		return rc;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && !(*value = strdup(PQgetvalue(r, 0, 0))))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	PQclear(r);
	return rc;
}

static const struct physical_ha_ops pg_ha_ops = {
	.version = PHYSICAL_HA_VERSION,
	.name = "postgresql",
	.acquire = ha_acquire,
	.renew = ha_renew,
	.release = ha_release,
	.holder = ha_holder,
};

static struct physical_ha *pg_ha(struct physical *ph)
{
	struct pg *p = (struct pg *)ph;
	return p->ha ? &p->ha->base : NULL;
}

/* ---- open / close ---- */

static void pg_close(struct physical *ph)
{
	struct pg *p = (struct pg *)ph;
	if (!p)
		return;
	if (p->ha) {
		ha_release(&p->ha->base);
		PQfinish(p->ha_conn);
	}
	for (size_t i = 0; p->idle && i < p->nidle; i++)
		PQfinish(p->idle[i].c);
	free(p->idle);
	if (p->conninfo) {
		explicit_bzero(p->conninfo, strlen(p->conninfo));
		free(p->conninfo);
	}
	free(p->table);
	free(p->ha_table);
	for (int i = 0; i < S_COUNT; i++)
		free(p->sql[i]);
	free(p->sql_schema);
	free(p->sql_acquire);
	free(p->sql_renew);
	free(p->sql_release);
	free(p->ha);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->ha_mu);
	pthread_mutex_destroy(&p->schema_mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static const char *opt_str(const json_t *conf, const char *k)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int opt_bool(const json_t *conf, const char *k, bool *out, struct verr *err)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	if (!v)
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s && (!strcmp(s, "true") || !strcmp(s, "1"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "0") || !*s)) {
		*out = false;
		return 0;
	}
	return verr_set(err, VERR_INVALID, "storage \"postgresql\": %s: expected a boolean", k);
}

/* An integer option given as a number or a string; *set says whether. */
static int opt_int(const json_t *conf, const char *k, long lo, long hi, long *out, bool *set,
		   struct verr *err)
{
	const json_t *v = conf ? json_object_get(conf, k) : NULL;
	*set = false;
	if (!v)
		return 0;
	long x = 0;
	bool ok = false;
	if (json_is_integer(v)) {
		x = (long)json_integer_value(v);
		ok = true;
	} else if (json_is_string(v) && *json_string_value(v)) {
		char *end = NULL;
		x = strtol(json_string_value(v), &end, 10);
		ok = end && !*end;
	}
	if (!ok || x < lo || x > hi)
		return verr_set(err, VERR_INVALID,
				"storage \"postgresql\": %s: expected an integer from %ld to %ld", k, lo,
				hi);
	*out = x;
	*set = true;
	return 0;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h & 0x7fffffffu;
}

/* printf into a new string */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	char *s = NULL;
	int n = vasprintf(&s, f, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static char *quote_ident(const char *s)
{
	/* the SQL rule: double quotes around, inner quotes doubled (what
	 * PQescapeIdentifier does, without needing a connection) */
	struct buf b = {0};
	buf_str(&b, "\"");
	for (const char *c = s; *c; c++) {
		if (*c == '"')
			buf_str(&b, "\"");
		buf_add(&b, c, 1);
	}
	buf_str(&b, "\"");
	return buf_take(&b, NULL);
}

/* Identifier for a constraint or index of `table`: Vault's fixed names for
 * the default tables, "<table>_<suffix>" for any other (index names are
 * per schema, so two tables cannot both use Vault's). */
static char *obj_name(const char *table, const char *deflt, const char *vault_name,
		      const char *suffix)
{
	char *raw = !strcmp(table, deflt) ? strdup(vault_name) : fmt("%s_%s", table, suffix);
	char *q = raw ? quote_ident(raw) : NULL;
	free(raw);
	return q;
}

/* The fence: the shared barrier key first (b is evaluated before f's
 * target list, which needs b's row), then "our lock session still holds
 * its token": a shared try on it fails exactly while an exclusive holder
 * exists. tok_param is the $n of the token. */
static char *fence_cte(const struct pg *p, int tok_param)
{
	return fmt("WITH f AS MATERIALIZED (SELECT NOT "
		   "pg_catalog.pg_try_advisory_xact_lock_shared(%d, $%d) AS ok FROM (SELECT "
		   "pg_catalog.pg_advisory_xact_lock_shared(%d, %u)::text AS t OFFSET 0) b WHERE "
		   "b.t IS NOT NULL)",
		   COFFER_TOKEN_CLASS, tok_param, COFFER_BARRIER_CLASS, p->lock_obj);
}

static int build_sql(struct pg *p, struct verr *err)
{
	char *t = quote_ident(p->table), *ht = quote_ident(p->ha_table);
	char *pk = NULL, *ix = NULL, *hpk = NULL, *f5 = NULL, *f3 = NULL, *f1 = NULL;
	int rc = 0;
	if (!t || !ht) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	pk = obj_name(p->table, PG_DEFAULT_TABLE, "pkey", "pkey");
	ix = obj_name(p->table, PG_DEFAULT_TABLE, "parent_path_idx", "parent_path_idx");
	hpk = obj_name(p->ha_table, PG_DEFAULT_HA_TABLE, "ha_key", "ha_key");
	f5 = fence_cte(p, 5);
	f3 = fence_cte(p, 3);
	f1 = fence_cte(p, 1);
	if (!pk || !ix || !hpk || !f5 || !f3 || !f1) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const char *upsert = "ON CONFLICT (path, key) DO UPDATE SET parent_path = "
			     "EXCLUDED.parent_path, value = EXCLUDED.value";
	p->sql[S_GET] = fmt("SELECT value FROM %s WHERE path = $1 AND key = $2", t);
	p->sql[S_PUT] = fmt("INSERT INTO %s (parent_path, path, key, value) VALUES ($1, $2, $3, "
			    "$4) %s",
			    t, upsert);
	p->sql[S_DEL] = fmt("DELETE FROM %s WHERE path = $1 AND key = $2", t);
	p->sql[S_LIST] = fmt("SELECT key FROM %s WHERE path = $1 UNION ALL SELECT DISTINCT "
			     "substring(substr(path, length($1) + 1) from '^.*?/') FROM %s WHERE "
			     "parent_path >= $1 AND parent_path < $2",
			     t, t);
	p->sql[S_PUT_G] = fmt("%s, w AS (INSERT INTO %s (parent_path, path, key, value) SELECT "
			      "$1, $2, $3, $4 FROM f WHERE f.ok %s RETURNING 1) SELECT ok FROM f",
			      f5, t, upsert);
	p->sql[S_DEL_G] = fmt("%s, w AS (DELETE FROM %s WHERE path = $1 AND key = $2 AND (SELECT "
			      "ok FROM f) RETURNING 1) SELECT ok FROM f",
			      f3, t);
	p->sql[S_GUARD] = fmt("%s SELECT ok FROM f", f1);
	p->sql_schema = fmt(
		"BEGIN; SELECT pg_catalog.pg_advisory_xact_lock(%d, %u); "
		"CREATE TABLE IF NOT EXISTS %s (parent_path TEXT COLLATE \"C\" NOT NULL, path TEXT "
		"COLLATE \"C\", key TEXT COLLATE \"C\", value BYTEA, CONSTRAINT %s PRIMARY KEY "
		"(path, key)); CREATE INDEX IF NOT EXISTS %s ON %s (parent_path);%s%s%s%s%s COMMIT",
		COFFER_SCHEMA_CLASS, fnv1a(p->table), t, pk, ix, t,
		p->ha ? " CREATE TABLE IF NOT EXISTS " : "", p->ha ? ht : "",
		p->ha ? " (ha_key TEXT COLLATE \"C\" NOT NULL, ha_identity TEXT COLLATE \"C\" NOT "
			"NULL, ha_value TEXT COLLATE \"C\", valid_until TIMESTAMP WITH TIME ZONE NOT "
			"NULL, CONSTRAINT "
		      : "",
		p->ha ? hpk : "", p->ha ? " PRIMARY KEY (ha_key));" : "");
	if (p->ha) {
		p->sql[S_HOLDER] = fmt(
			"SELECT h.ha_value FROM %s h WHERE h.ha_key = '" PG_LOCK_KEY "' AND EXISTS "
			"(SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND "
			"l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = "
			"pg_catalog.current_database()) AND l.classid = %d AND l.objid = %u AND "
			"l.objsubid = 2 AND l.granted AND l.pid::text = "
			"pg_catalog.split_part(h.ha_identity, '/', 1))",
			ht, COFFER_LOCK_CLASS, p->lock_obj);
		p->sql_acquire = fmt(
			"WITH l AS MATERIALIZED (SELECT pg_catalog.pg_try_advisory_lock(%d, %u) AS "
			"main), t AS MATERIALIZED (SELECT main, CASE WHEN main THEN "
			"pg_catalog.pg_try_advisory_lock(%d, $3) ELSE false END AS got FROM l), u AS "
			"(INSERT INTO %s (ha_key, ha_identity, ha_value, valid_until) SELECT '" PG_LOCK_KEY
			"', $1, $2, now() + interval '" PG_ROW_TTL "' FROM t WHERE t.got ON CONFLICT "
			"(ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, ha_value = "
			"EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until RETURNING 1) SELECT main, "
			"got FROM t",
			COFFER_LOCK_CLASS, p->lock_obj, COFFER_TOKEN_CLASS, ht);
		p->sql_renew = fmt(
			"WITH l AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks "
			"WHERE locktype = 'advisory' AND database = (SELECT d.oid FROM "
			"pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) "
			"AND classid = %d AND objid = %u AND objsubid = 2 AND granted AND pid = "
			"pg_catalog.pg_backend_pid()) AS held), u AS (UPDATE %s SET valid_until = "
			"now() + interval '" PG_ROW_TTL "' WHERE ha_key = '" PG_LOCK_KEY "' AND "
			"ha_identity = $1 AND (SELECT held FROM l) RETURNING 1) SELECT (SELECT held "
			"FROM l), (SELECT count(*) FROM u)",
			COFFER_LOCK_CLASS, p->lock_obj, ht);
		p->sql_release = fmt("WITH d AS (DELETE FROM %s WHERE ha_key = '" PG_LOCK_KEY "' AND "
				     "ha_identity = $1 RETURNING 1) SELECT "
				     "pg_catalog.pg_advisory_unlock_all()",
				     ht);
		if (!p->sql[S_HOLDER] || !p->sql_acquire || !p->sql_renew || !p->sql_release)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	for (int i = 0; i < S_HOLDER; i++)
		if (!p->sql[i])
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!p->sql_schema)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	free(t);
	free(ht);
	free(pk);
	free(ix);
	free(hpk);
	free(f5);
	free(f3);
	free(f1);
	return rc;
}

static int check_table_name(const char *opt, const char *name, struct verr *err)
{
	size_t n = strlen(name);
	if (!n || n > 63)
		return verr_set(err, VERR_INVALID,
				"storage \"postgresql\": %s: expected a name of 1 to 63 bytes", opt);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20)
			return verr_set(err, VERR_INVALID,
					"storage \"postgresql\": %s: control characters are not "
					"allowed",
					opt);
	return 0;
}

int physical_postgresql_new(struct physical **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	const char *url = getenv("VAULT_PG_CONNECTION_URL");
	if (!url || !*url)
		url = opt_str(conf, "connection_url");
	if (!url || !*url)
		return verr_set(err, VERR_INVALID,
				"storage \"postgresql\": connection_url is required (or set "
				"VAULT_PG_CONNECTION_URL)");
	/* parse it now: a malformed URL is a configuration error, not an
	 * outage (the message from libpq never contains the password) */
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		char m[200];
		snprintf(m, sizeof(m), "%s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return verr_set(err, VERR_INVALID, "storage \"postgresql\": connection_url: %s", m);
	}
	PQconninfoFree(opts);
	const char *table = opt_str(conf, "table");
	const char *ha_table = opt_str(conf, "ha_table");
	if (!table || !*table)
		table = PG_DEFAULT_TABLE;
	if (!ha_table || !*ha_table)
		ha_table = PG_DEFAULT_HA_TABLE;
	int rc = check_table_name("table", table, err);
	if (!rc)
		rc = check_table_name("ha_table", ha_table, err);
	if (rc)
		return rc;
	bool ha_enabled = false, skip = false, set = false, idle_set = false;
	long max_parallel = PG_DEFAULT_MAX_PARALLEL, max_idle = 0;
	if ((rc = opt_bool(conf, "ha_enabled", &ha_enabled, err)) ||
	    (rc = opt_bool(conf, "skip_create_table", &skip, err)) ||
	    (rc = opt_int(conf, "max_parallel", 1, 4096, &max_parallel, &set, err)) ||
	    (rc = opt_int(conf, "max_idle_connections", 0, 4096, &max_idle, &idle_set, err)))
		return rc;
	if (!idle_set || max_idle > max_parallel)
		max_idle = max_parallel;
	if (!PQisthreadsafe())
		return verr_set(err, VERR_INTERNAL, "storage \"postgresql\": libpq is not thread-safe");

	struct pg *p = calloc(1, sizeof(*p));
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	p->base.ops = &pg_ops;
	p->base.durable = 1; /* acknowledged after COMMIT */
	p->base.max_entry_size = PHYSICAL_DEFAULT_MAX_ENTRY;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->ha_mu, NULL);
	pthread_mutex_init(&p->schema_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->max_parallel = (int)max_parallel;
	p->max_idle = (size_t)max_idle;
	p->skip_create = skip;
	p->conninfo = strdup(url);
	p->table = strdup(table);
	p->ha_table = strdup(ha_table);
	p->idle = calloc(p->max_idle ? p->max_idle : 1, sizeof(*p->idle));
	if (!p->conninfo || !p->table || !p->ha_table || !p->idle) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	p->lock_obj = fnv1a(p->ha_table);
	if (ha_enabled) {
		if (!(p->ha = calloc(1, sizeof(*p->ha)))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		p->ha->base.ops = &pg_ha_ops;
		/* renewal only re-checks the session and the row (the lock
		 * cannot expire); a standby tries often, for sub-second failover */
		p->ha->base.renew_interval_ms = 1000;
		p->ha->base.retry_interval_ms = 200;
		p->ha->p = p;
	}
	if ((rc = build_sql(p, err)))
		goto out;
	/* reach PostgreSQL once now (creating the tables): a wrong address or
	 * password is logged at start-up; requests keep retrying */
	uint64_t gen = 0;
	struct verr e2 = {0};
	PGconn *c = pool_get(p, &gen, &e2);
	if (c)
		pool_put(p, c, gen, false);
	else
		log_warn("storage", "postgresql not reachable yet: %s", e2.msg);
out:
	if (rc) {
		pg_close(&p->base);
		return rc;
	}
	*out = &p->base;
	return 0;
}

static const struct physical_ops pg_ops = {
	.version = PHYSICAL_OPS_VERSION,
	.name = "postgresql",
	.get = pg_get,
	.put = pg_put,
	.del = pg_del,
	.list = pg_list,
	.close = pg_close,
	.txn = pg_txn,
	.ha = pg_ha,
};
