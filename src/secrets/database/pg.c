/*
 * pg.c - the PostgreSQL plugin of the database engine (database_int.h):
 * a connection pool per connection config, statement execution in a
 * transaction, group commit of credential creation (pg_create, see the
 * block above it), Vault's default revocation, and SCRAM-SHA-256 verifiers.
 *
 * DESIGN (pool)
 *   State: `open` counts every live connection (idle + checked out) and
 *   never exceeds max_open; `idle` is a LIFO stack of at most max_idle
 *   connections with their birth time. All of it is guarded by `mu`;
 *   connecting and running SQL happen outside the lock. A caller that finds
 *   the pool full waits on `cv` (at most POOL_WAIT_S seconds, then an error).
 *   A connection older than max_lifetime, or one whose socket broke
 *   (PQstatus not OK after a failure), is closed instead of returned.
 *   The conninfo string (it holds the root password) lives in secmem and is
 *   wiped at pg_pool_free. Error messages never carry it: libpq's connection
 *   errors name host and port only, and statement errors are reduced to the
 *   server's primary message with every substituted password scrubbed.
 */
#include "secrets/database/database_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/secmem.h"

#define POOL_WAIT_S 30

struct pg_idle {
	PGconn *c;
	int64_t born;
};

struct pg_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *conninfo; /* secmem, conninfo_cap bytes */
	size_t conninfo_cap;
	struct pg_pool_opts o;
	int open;
	struct pg_idle *idle;
	int nidle;
	/* group commit of pg_create: the queue and the batches running,
	 * guarded by bmu; bcv wakes waiters when a batch ends */
	pthread_mutex_t bmu;
	pthread_cond_t bcv;
	struct pg_item *qhead, **qtail;
	int batches;
};

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message; /* "role ... does not exist, skipping" and friends */
}

int pg_pool_new(struct pg_pool **out, const char *conninfo, const struct pg_pool_opts *o,
		struct verr *err)
{
	*out = NULL;
	struct pg_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	p->o = *o;
	if (p->o.max_open <= 0)
		p->o.max_open = 4;
	if (p->o.max_idle == 0 || p->o.max_idle > p->o.max_open)
		p->o.max_idle = p->o.max_open;
	if (p->o.max_idle < 0)
		p->o.max_idle = 0;
	p->conninfo_cap = strlen(conninfo) + 1;
	p->conninfo = secmem_alloc(p->conninfo_cap);
	p->idle = calloc((size_t)p->o.max_open, sizeof(*p->idle));
	if (!p->conninfo || !p->idle) {
		if (p->conninfo)
			secmem_free(p->conninfo, p->conninfo_cap);
		free(p->idle);
		free(p);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	memcpy(p->conninfo, conninfo, p->conninfo_cap);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->bmu, NULL);
	pthread_cond_init(&p->bcv, NULL);
	p->qtail = &p->qhead;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return 0;
}

void pg_pool_free(struct pg_pool *p)
{
	if (!p)
		return;
	/* the owner guarantees no connection is checked out (refcounts) */
	for (int i = 0; i < p->nidle; i++)
		PQfinish(p->idle[i].c);
	free(p->idle);
	secmem_free(p->conninfo, p->conninfo_cap);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->bcv);
	pthread_mutex_destroy(&p->bmu);
	free(p);
}

int pg_pool_open_count(struct pg_pool *p)
{
	pthread_mutex_lock(&p->mu);
	int n = p->open;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* libpq's message without the trailing newline, and never the conninfo */
static int conn_error(PGconn *c, struct verr *err)
{
	char msg[VERR_MSG_MAX - 64];
	snprintf(msg, sizeof(msg), "%s", c ? PQerrorMessage(c) : "out of memory");
	size_t l = strlen(msg);
	while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
		msg[--l] = '\0';
	return verr_set(err, VERR_INTERNAL, "error connecting to the database: %s", msg);
}

static int pool_get(struct pg_pool *p, PGconn **out, int64_t *born, bool *reused,
		    struct verr *err)
{
	*out = NULL;
	*born = mono_s();
	*reused = false;
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += POOL_WAIT_S;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->nidle > 0) {
			struct pg_idle it = p->idle[--p->nidle];
			bool old = p->o.max_lifetime > 0 && mono_s() - it.born >= p->o.max_lifetime;
			if (old || PQstatus(it.c) != CONNECTION_OK) {
				p->open--;
				pthread_mutex_unlock(&p->mu);
				PQfinish(it.c);
				pthread_mutex_lock(&p->mu);
				continue;
			}
			pthread_mutex_unlock(&p->mu);
			*out = it.c;
			*born = it.born;
			*reused = true;
			return 0;
		}
		if (p->open < p->o.max_open) {
			p->open++;
			pthread_mutex_unlock(&p->mu);
			PGconn *c = PQconnectdb(p->conninfo);
			if (!c || PQstatus(c) != CONNECTION_OK) {
				int rc = conn_error(c, err);
				PQfinish(c);
				pthread_mutex_lock(&p->mu);
				p->open--;
				pthread_cond_signal(&p->cv);
				pthread_mutex_unlock(&p->mu);
				return rc;
			}
			PQsetNoticeProcessor(c, quiet_notice, NULL);
			*out = c;
			return 0;
		}
		int w = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
		if (w == ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			return verr_set(err, VERR_INTERNAL,
					"timed out waiting for a free database connection (max_open_connections=%d)",
					p->o.max_open);
		}
	}
}

/* Return a connection: kept idle unless broken, mid-transaction, too old,
 * or the idle stack is full. */
static void pool_put(struct pg_pool *p, PGconn *c, int64_t born)
{
	bool broken = PQstatus(c) != CONNECTION_OK ||
		      PQtransactionStatus(c) != PQTRANS_IDLE;
	bool old = p->o.max_lifetime > 0 && mono_s() - born >= p->o.max_lifetime;
	pthread_mutex_lock(&p->mu);
	if (broken || old || p->nidle >= p->o.max_idle) {
		p->open--;
		/* a dead socket usually means the server restarted: the idle
		 * connections are dead too, drop them rather than fail on each */
		int nflush = PQstatus(c) == CONNECTION_BAD ? p->nidle : 0;
		PGconn *flush[nflush > 0 ? nflush : 1];
		for (int i = 0; i < nflush; i++)
			flush[i] = p->idle[i].c;
		p->nidle -= nflush;
		p->open -= nflush;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		PQfinish(c);
		for (int i = 0; i < nflush; i++)
			PQfinish(flush[i]);
		return;
	}
	p->idle[p->nidle].c = c;
	p->idle[p->nidle].born = born;
	p->nidle++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

typedef int (*conn_fn)(PGconn *c, void *ctx, struct verr *err);

/* Run fn on a pooled connection. When a connection taken from the idle
 * stack turns out dead (the server restarted since it was opened), fn runs
 * once more on a fresh one, as database/sql does on ErrBadConn. */
static int with_conn(struct pg_pool *p, conn_fn fn, void *ctx, struct verr *err)
{
	for (int attempt = 0;; attempt++) {
		PGconn *c = NULL;
		int64_t born = 0;
		bool reused = false;
		int rc = pool_get(p, &c, &born, &reused, err);
		if (rc)
			return rc;
		rc = fn(c, ctx, err);
		bool dead = rc < 0 && reused && PQstatus(c) == CONNECTION_BAD;
		pool_put(p, c, born);
		if (!dead || attempt > 0)
			return rc;
		verr_clear(err);
	}
}

static int verify_fn(PGconn *c, void *ctx, struct verr *err)
{
	(void)ctx;
	PGresult *r = PQexec(c, "SELECT 1");
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : conn_error(c, err);
	PQclear(r);
	return rc;
}

int pg_pool_verify(struct pg_pool *p, struct verr *err)
{
	return with_conn(p, verify_fn, NULL, err);
}

/* ---- statements ---- */

/* The server's message for a failed result: primary text (+ detail), the
 * substituted password scrubbed. Connection-level failures use libpq's. */
static int result_error(PGconn *c, PGresult *r, const char *password, struct verr *err)
{
	const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!prim)
		return conn_error(c, err);
	char msg[VERR_MSG_MAX - 32];
	snprintf(msg, sizeof(msg), "%s", prim);
	dbtmpl_scrub(msg, password);
	return verr_set(err, VERR_INTERNAL, "database error: %s", msg);
}

static bool is_missing(PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return st && !strcmp(st, "42704");
}

static int exec_simple(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	PQclear(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
}

/* COMMIT; a failure (a deferred constraint, the connection) with the
 * server's message */
static int commit(PGconn *c, struct verr *err)
{
	PGresult *r = PQexec(c, "COMMIT");
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : result_error(c, r, NULL, err);
	PQclear(r);
	return rc;
}

/* A query with the role name as its one parameter: *out holds the rows
 * (caller clears), or the error is returned and nothing is held. */
static int query_role(PGconn *c, const char *sql, const char *role, PGresult **out,
		      struct verr *err)
{
	const char *params[1] = {role};
	PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		int rc = result_error(c, r, NULL, err);
		PQclear(r);
		*out = NULL;
		return rc;
	}
	*out = r;
	return 0;
}

/*
 * GRANT and REVOKE rewrite catalog rows (a table's ACL) that concurrent
 * sessions granting on the same tables also rewrite; PostgreSQL fails the
 * loser with "tuple concurrently updated" instead of waiting. So the
 * engine's transactions take one transaction-scoped advisory lock right
 * before their first GRANT/REVOKE: those statements queue in PostgreSQL
 * (across every Coffer node sharing the database), everything before them
 * (CREATE ROLE and its password hashing) still runs in parallel, and the
 * lock goes with COMMIT/ROLLBACK.
 */
#define ACL_LOCK_SQL "SELECT pg_advisory_xact_lock(7165064477935461940)" /* "coffer-acl" */

static bool is_acl_statement(const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	return !strncasecmp(sql, "GRANT", 5) || !strncasecmp(sql, "REVOKE", 6);
}

static void sql_free(char **v)
{
	for (char **q = v; q && *q; q++) {
		OPENSSL_cleanse(*q, strlen(*q));
		free(*q);
	}
	free(v);
}

/* The statements of stmts with v substituted, one SQL statement per
 * string: *out is NULL-terminated (free with sql_free), secret (each may
 * hold a password). */
static int sql_render(char ***out, size_t *count, const char *const *stmts, size_t n,
		      const struct dbtmpl_vars *v, struct verr *err)
{
	size_t cap = 8, k = 0;
	char **all = calloc(cap, sizeof(*all));
	if (!all)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char **parts = NULL;
		dbtmpl_split(&parts, stmts[i]);
		for (char **q = parts; q && *q; q++) {
			struct buf b;
			buf_init_secret(&b, strlen(*q) + 64);
			dbtmpl_statement(&b, *q, v);
			char *sql = buf_take(&b, NULL);
			char **grown = k + 2 > cap ? realloc(all, (cap *= 2) * sizeof(*all)) : all;
			if (!sql || !grown) {
				if (sql)
					OPENSSL_cleanse(sql, strlen(sql));
				free(sql);
				dbtmpl_strv_free(parts);
				sql_free(grown ? grown : all);
				return verr_set(err, VERR_INTERNAL, "out of memory");
			}
			all = grown;
			all[k++] = sql;
			all[k] = NULL;
		}
		dbtmpl_strv_free(parts);
	}
	*out = all;
	*count = k;
	return 0;
}

/* Run one rendered statement: 0, 1 when missing_ok and the object is
 * missing (SQLSTATE 42704), or the server's error. */
static int run_one(PGconn *c, const char *sql, bool missing_ok, const char *password,
		   struct verr *err)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
		rc = missing_ok && is_missing(r) ? 1 : result_error(c, r, password, err);
	PQclear(r);
	return rc;
}

struct exec_ctx {
	char **sql;
	bool missing_ok;
	const char *password;
};

static int exec_fn(PGconn *c, void *ctx, struct verr *err)
{
	const struct exec_ctx *x = ctx;
	int rc = 0;
	if (exec_simple(c, "BEGIN"))
		return conn_error(c, err);
	bool locked = false;
	for (char **q = x->sql; *q && !rc; q++) {
		if (!locked && is_acl_statement(*q)) {
			if (exec_simple(c, ACL_LOCK_SQL)) {
				rc = conn_error(c, err);
				break;
			}
			locked = true;
		}
		rc = run_one(c, *q, x->missing_ok, x->password, err);
	}
	if (rc) /* an error, or 1: the object is gone, nothing to do */
		exec_simple(c, "ROLLBACK");
	else
		rc = commit(c, err);
	return rc < 0 ? rc : 0;
}

/* PostgreSQL updates a catalog row (a table's ACL, a role) without a row
 * lock; two sessions GRANTing on the same table at once make one fail with
 * "tuple concurrently updated" (XX000), deadlocks and serialization
 * failures are 40P01/40001. The transaction was rolled back: run it again
 * after a short random pause. */
static bool is_conflict(const struct verr *e)
{
	return strstr(e->msg, "tuple concurrently updated") || strstr(e->msg, "deadlock detected") ||
	       strstr(e->msg, "could not serialize access");
}

#define EXEC_ATTEMPTS 12

/* with_conn, run again while the failure is a catalog conflict */
static int with_retry(struct pg_pool *p, conn_fn fn, void *ctx, struct verr *err)
{
	struct verr e = {0};
	int rc = 0;
	for (int attempt = 0; attempt < EXEC_ATTEMPTS; attempt++) {
		verr_clear(&e);
		rc = with_conn(p, fn, ctx, &e);
		if (!rc || !is_conflict(&e))
			break;
		unsigned char r = 0;
		RAND_bytes(&r, 1);
		struct timespec ts = {0, (long)(200 + (r % 64) * 50) * 1000L * (attempt + 1)};
		nanosleep(&ts, NULL);
	}
	if (rc && err)
		*err = e;
	return rc;
}

int pg_exec(struct pg_pool *p, const char *const *stmts, size_t n, const struct dbtmpl_vars *v,
	    bool missing_ok, struct verr *err)
{
	char **sql = NULL;
	size_t count = 0;
	int rc = sql_render(&sql, &count, stmts, n, v, err);
	if (rc)
		return rc;
	struct exec_ctx x = {sql, missing_ok, v ? v->password : NULL};
	rc = with_retry(p, exec_fn, &x, err);
	sql_free(sql);
	return rc;
}

/*
 * Group commit of credential creation (pg_create). Every creds request of
 * a config used to run its own transaction, and their GRANTs queue on the
 * ACL lock from the GRANT to the COMMIT: the throughput was one commit at
 * a time. Now concurrent requests are gathered: a request that finds
 * fewer than batch_lanes() batches running becomes a leader, takes every
 * queued item (up to BATCH_MAX, its own among them unless the queue is
 * longer) and runs them in ONE transaction; the others wait for their
 * result. A lone request leads at once: no added delay. The lanes: half
 * of max_open_connections, at least 2 (batch_lanes()).
 *
 * The transaction, for the items of a batch:
 *   BEGIN
 *   phase 1, per item: SAVEPOINT; its statements before its first
 *     GRANT/REVOKE (CREATE ROLE: PostgreSQL's password hashing); RELEASE.
 *   the ACL lock (when any item has a GRANT/REVOKE)
 *   phase 2, per item: SAVEPOINT; the rest of its statements; RELEASE.
 *   COMMIT
 * Splitting at the first GRANT keeps the hashing of every lane outside the
 * lock, so the lanes' transactions hash on as many CPUs while their
 * GRANTs take turns. An item's statements still run in their order, in a
 * transaction with nothing but other new users. A statement that fails
 * in phase 1 (or in phase 2 when the item had no phase 1) is undone with
 * ROLLBACK TO SAVEPOINT and fails that item alone; one that fails in
 * phase 2 after a phase 1 would leave that item's first statements behind,
 * so the transaction is rolled back and run again without the failed
 * items. Results are handed out only after COMMIT: when it fails, every
 * item still standing fails with the driver's message and nothing is
 * created. An item that lost a catalog race ("tuple concurrently
 * updated", a deadlock) is run again on its own through pg_exec.
 */
#define BATCH_MAX 64

/* How many creation transactions of a pool run at once: half the pool
 * (leaving connections for revocations and renewals), at least 2 so two
 * CPUs hash, at most max_open. */
static int batch_lanes(const struct pg_pool *p)
{
	int lanes = p->o.max_open / 2;
	if (lanes < 2)
		lanes = 2;
	return lanes < p->o.max_open ? lanes : p->o.max_open;
}

struct pg_item {
	char **sql;        /* rendered statements, secret */
	size_t nsql;
	size_t first_acl;  /* index of the first GRANT/REVOKE; nsql when none */
	const char *password;
	int rc;
	struct verr err;
	bool done;         /* bmu */
	struct pg_item *next;
};

/* SAVEPOINT, sql[from, to) of it, RELEASE. 0; 1 when a statement failed
 * (it->err, rolled back to the savepoint); <0 when the connection failed. */
static int item_run(PGconn *c, struct pg_item *it, size_t from, size_t to, struct verr *err)
{
	if (exec_simple(c, "SAVEPOINT coffer_item"))
		return conn_error(c, err);
	for (size_t i = from; i < to; i++) {
		if (run_one(c, it->sql[i], false, it->password, &it->err)) {
			it->rc = it->err.code ? it->err.code : VERR_INTERNAL;
			if (exec_simple(c, "ROLLBACK TO SAVEPOINT coffer_item"))
				return conn_error(c, err);
			return 1;
		}
	}
	return exec_simple(c, "RELEASE SAVEPOINT coffer_item") ? conn_error(c, err) : 0;
}

struct batch {
	struct pg_item **items;
	size_t n;
};

static int batch_fn(PGconn *c, void *ctx, struct verr *err)
{
	struct batch *bt = ctx;
	for (size_t i = 0; i < bt->n; i++) { /* a fresh attempt: nothing has failed */
		bt->items[i]->rc = 0;
		verr_clear(&bt->items[i]->err);
	}
	int rc = 0;
	bool again = true;
	while (again) {
		again = false;
		if (exec_simple(c, "BEGIN"))
			return conn_error(c, err);
		bool need_lock = false;
		for (size_t i = 0; i < bt->n && rc >= 0; i++) {
			struct pg_item *it = bt->items[i];
			if (it->rc)
				continue;
			if (it->first_acl > 0)
				rc = item_run(c, it, 0, it->first_acl, err);
			need_lock |= !it->rc && it->first_acl < it->nsql;
		}
		if (rc >= 0 && need_lock && exec_simple(c, ACL_LOCK_SQL))
			rc = conn_error(c, err);
		for (size_t i = 0; i < bt->n && rc >= 0 && !again; i++) {
			struct pg_item *it = bt->items[i];
			if (it->rc || it->first_acl == it->nsql)
				continue;
			rc = item_run(c, it, it->first_acl, it->nsql, err);
			/* its phase-1 statements are in the transaction: redo without it */
			again = rc == 1 && it->first_acl > 0;
		}
		if (rc < 0 || again) {
			exec_simple(c, "ROLLBACK");
			if (rc < 0)
				return rc;
			rc = 0;
		}
	}
	return commit(c, err);
}

/* Run the batch and hand out the results (bmu not held). */
static void batch_run(struct pg_pool *p, struct pg_item **items, size_t n)
{
	struct batch bt = {items, n};
	struct verr e = {0};
	if (with_retry(p, batch_fn, &bt, &e) < 0) {
		for (size_t i = 0; i < n; i++) {
			if (items[i]->rc && !is_conflict(&items[i]->err))
				continue; /* failed on its own statement, rolled back anyway */
			items[i]->rc = e.code ? e.code : VERR_INTERNAL;
			items[i]->err = e;
		}
	}
}

/* Queue it, then lead batches or wait until a batch has run it. */
static void batch_join(struct pg_pool *p, struct pg_item *it)
{
	pthread_mutex_lock(&p->bmu);
	*p->qtail = it;
	p->qtail = &it->next;
	while (!it->done) {
		if (p->batches >= batch_lanes(p) || !p->qhead) {
			pthread_cond_wait(&p->bcv, &p->bmu);
			continue;
		}
		struct pg_item *items[BATCH_MAX];
		size_t k = 0;
		while (p->qhead && k < BATCH_MAX) {
			items[k++] = p->qhead;
			p->qhead = p->qhead->next;
		}
		if (!p->qhead)
			p->qtail = &p->qhead;
		p->batches++;
		pthread_mutex_unlock(&p->bmu);
		batch_run(p, items, k);
		pthread_mutex_lock(&p->bmu);
		for (size_t i = 0; i < k; i++)
			items[i]->done = true;
		p->batches--;
		pthread_cond_broadcast(&p->bcv);
	}
	pthread_mutex_unlock(&p->bmu);
}

int pg_create(struct pg_pool *p, const char *const *stmts, size_t n, const struct dbtmpl_vars *v,
	      struct verr *err)
{
	/* on the heap: other threads reach it through the queue */
	struct pg_item *it = calloc(1, sizeof(*it));
	if (!it)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = sql_render(&it->sql, &it->nsql, stmts, n, v, err);
	if (rc) {
		free(it);
		return rc;
	}
	it->password = v ? v->password : NULL;
	it->first_acl = it->nsql;
	for (size_t i = 0; i < it->nsql; i++)
		if (is_acl_statement(it->sql[i])) {
			it->first_acl = i;
			break;
		}
	batch_join(p, it);
	if (it->rc && is_conflict(&it->err)) {
		/* lost a race with something outside the ACL lock: on its own,
		 * with pg_exec's retries */
		struct exec_ctx x = {it->sql, false, it->password};
		it->rc = with_retry(p, exec_fn, &x, &it->err);
	}
	rc = it->rc;
	if (rc && err)
		*err = it->err;
	sql_free(it->sql);
	free(it);
	return rc;
}

static int exists_fn(PGconn *c, void *ctx, struct verr *err)
{
	PGresult *r = NULL;
	int rc = query_role(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", ctx, &r, err);
	if (rc)
		return rc;
	rc = PQntuples(r) > 0;
	PQclear(r);
	return rc;
}

int pg_role_exists(struct pg_pool *p, const char *username, struct verr *err)
{
	return with_conn(p, exists_fn, (void *)username, err);
}

/* Run sql (built with identifiers escaped by libpq) inside the open
 * transaction; 0 or the error. */
static int run_ident(PGconn *c, const char *fmt, const char *ident1, const char *ident2,
		     struct verr *err)
{
	char *a = PQescapeIdentifier(c, ident1, strlen(ident1));
	char *b = ident2 ? PQescapeIdentifier(c, ident2, strlen(ident2)) : NULL;
	if (!a || (ident2 && !b)) {
		PQfreemem(a);
		PQfreemem(b);
		return conn_error(c, err);
	}
	char sql[1024];
	if (ident2)
		snprintf(sql, sizeof(sql), fmt, a, b);
	else
		snprintf(sql, sizeof(sql), fmt, a);
	PQfreemem(a);
	PQfreemem(b);
	PGresult *r = PQexec(c, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = is_missing(r) ? 1 : result_error(c, r, NULL, err);
	PQclear(r);
	return rc;
}

static int revoke_fn(PGconn *c, void *ctx, struct verr *err)
{
	const char *username = ctx;
	int rc = 0;
	PGresult *r = NULL;
	if ((rc = query_role(c, "SELECT 1 FROM pg_roles WHERE rolname = $1", username, &r, err)))
		goto out;
	bool exists = PQntuples(r) > 0;
	PQclear(r);
	if (!exists)
		goto out; /* already gone: revoked */

	/* no new sessions from here on */
	if ((rc = run_ident(c, "ALTER ROLE %s NOLOGIN", username, NULL, err)) < 0)
		goto out;
	if (exec_simple(c, "BEGIN")) {
		rc = conn_error(c, err);
		goto out;
	}
	/*
	 * Vault's default revokes everything in `public` and on the database
	 * unconditionally; each such REVOKE rewrites the ACL row of every
	 * table (sequence, function) of the schema, under the ACL lock. Ask
	 * instead where the role holds privileges and revoke exactly there:
	 * the same end state (DROP ROLE below fails if anything is left), a
	 * fraction of the writes. PostgreSQL records every grant to a role in
	 * pg_shdepend (deptype 'a', indexed by the role): which kinds of
	 * object in which schemas (tables and their columns, sequences,
	 * functions, the schema itself) and this database. An index lookup,
	 * not a scan of every ACL, one REVOKE per kind found, and
	 * done before the lock: a role granted nothing directly (privileges
	 * through a group role) takes no lock at all.
	 */
	rc = query_role(c,
			"WITH d AS (SELECT classid, objid FROM pg_shdepend WHERE refclassid = "
			"'pg_authid'::regclass AND deptype = 'a' AND refobjid = "
			"(SELECT oid FROM pg_roles WHERE rolname = $1) AND dbid IN "
			"(0, (SELECT oid FROM pg_database WHERE datname = current_database()))) "
			"SELECT CASE c.relkind WHEN 'S' THEN 'q' ELSE 't' END, n.nspname FROM d "
			"JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid "
			"JOIN pg_namespace n ON n.oid = c.relnamespace "
			"UNION SELECT 'f', n.nspname FROM d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass "
			"AND p.oid = d.objid JOIN pg_namespace n ON n.oid = p.pronamespace "
			"UNION SELECT 'n', n.nspname FROM d JOIN pg_namespace n ON "
			"d.classid = 'pg_namespace'::regclass AND n.oid = d.objid "
			"UNION SELECT 'd', b.datname FROM d JOIN pg_database b ON "
			"d.classid = 'pg_database'::regclass AND b.oid = d.objid "
			"AND b.datname = current_database()",
			username, &r, err);
	if (rc) {
		exec_simple(c, "ROLLBACK");
		goto out;
	}
	/* per kind found: tables (and their columns), sequences, functions,
	 * the schema, the database */
	static const char *const revoke_of[][2] = {
		{"t", "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA %s FROM %s"},
		{"q", "REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA %s FROM %s"},
		{"f", "REVOKE ALL PRIVILEGES ON ALL FUNCTIONS IN SCHEMA %s FROM %s"},
		{"n", "REVOKE ALL PRIVILEGES ON SCHEMA %s FROM %s"},
		{"d", "REVOKE ALL PRIVILEGES ON DATABASE %s FROM %s"},
	};
	rc = 0;
	if (PQntuples(r) > 0 && exec_simple(c, ACL_LOCK_SQL))
		rc = conn_error(c, err);
	for (int i = 0; i < PQntuples(r) && rc >= 0; i++)
		for (size_t k = 0; k < sizeof(revoke_of) / sizeof(revoke_of[0]); k++)
			if (!strcmp(PQgetvalue(r, i, 0), revoke_of[k][0]))
				rc = run_ident(c, revoke_of[k][1], PQgetvalue(r, i, 1), username, err);
	PQclear(r);
	if (rc < 0) {
		exec_simple(c, "ROLLBACK");
		goto out;
	}
	if (exec_simple(c, "COMMIT")) {
		rc = conn_error(c, err);
		goto out;
	}
	/* end its sessions, then drop it */
	if ((rc = query_role(c,
			     "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
			     "WHERE usename = $1 AND pid <> pg_backend_pid()",
			     username, &r, err)))
		goto out;
	PQclear(r);
	rc = run_ident(c, "DROP ROLE IF EXISTS %s", username, NULL, err);
	if (rc > 0)
		rc = 0;
out:
	return rc < 0 ? rc : 0;
}

int pg_revoke_default(struct pg_pool *p, const char *username, struct verr *err)
{
	return with_retry(p, revoke_fn, (void *)username, err);
}

/* ---- SCRAM-SHA-256 ---- */

static void b64(struct buf *out, const unsigned char *in, int n)
{
	char tmp[128];
	int l = EVP_EncodeBlock((unsigned char *)tmp, in, n);
	buf_add(out, tmp, (size_t)l);
}

int pg_scram_verifier(struct buf *out, const char *pw, struct verr *err)
{
	enum { ITER = 4096, SALT = 16, KEY = 32 };
	unsigned char salt[SALT], salted[KEY], ckey[KEY], skey[KEY], stored[KEY];
	unsigned int l = KEY;
	int rc = 0;
	if (RAND_bytes(salt, SALT) != 1 ||
	    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, SALT, ITER, EVP_sha256(), KEY, salted) != 1 ||
	    !HMAC(EVP_sha256(), salted, KEY, (const unsigned char *)"Client Key", 10, ckey, &l) ||
	    !HMAC(EVP_sha256(), salted, KEY, (const unsigned char *)"Server Key", 10, skey, &l) ||
	    EVP_Digest(ckey, KEY, stored, NULL, EVP_sha256(), NULL) != 1) {
		rc = verr_set(err, VERR_INTERNAL, "cannot compute the SCRAM-SHA-256 verifier");
		goto out;
	}
	buf_printf(out, "SCRAM-SHA-256$%d:", ITER);
	b64(out, salt, SALT);
	buf_char(out, '$');
	b64(out, stored, KEY);
	buf_char(out, ':');
	b64(out, skey, KEY);
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	return rc;
}
