/*
 * Unit tests for storage "postgresql" (src/physical/postgresql.c) against a
 * real PostgreSQL 15 (Debian's postgresql-15: initdb + pg_ctl as the
 * postgres user in a temporary directory on a free loopback port, stopped
 * at the end): the shared storage semantics on a fresh table each, Vault's
 * schema and key layout as psql would show them, list prefixes with LIKE
 * wildcards, the connection pool's max_parallel bound, the HA lock (one
 * holder, holder value, handover on release, the advisory lock freed when
 * the holder's process is killed -9), fencing (a holder whose lock session
 * died acknowledges no write and is told it lost the lock), a lock row
 * deleted behind the holder's back, and configuration and connection
 * errors (no password in any message).
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "physical/semantics.h"
#include "util/log.h"

#define PGBIN "/usr/lib/postgresql/15/bin"

static char g_dir[256];
static int g_port;
static char g_dsn[256];
static int g_seq;
static PGconn *g_admin; /* superuser over the unix socket */

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Run a shell command line (built from our own paths only); its status. */
static int run_sh(const char *cmd)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void sh(const char *cmd)
{
	if (run_sh(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* Run sql as the superuser; returns the first value (static buffer) or "". */
static const char *admin(const char *sql)
{
	static char out[4096];
	PGresult *r = PQexec(g_admin, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		fail_msg("admin SQL failed: %s: %s", sql, PQerrorMessage(g_admin));
	out[0] = '\0';
	if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static int start_pg(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/coffer-pg-XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	g_port = free_port();
	char cmd[4096];
	const char *as = geteuid() == 0 ? "runuser -u postgres --" : "";
	if (geteuid() == 0) {
		snprintf(cmd, sizeof(cmd), "chown postgres:postgres %s", g_dir);
		sh(cmd);
	}
	snprintf(cmd, sizeof(cmd),
		 "%s " PGBIN "/initdb -D %s/data -U postgres -A trust --no-sync -E UTF8 "
		 "--locale=C.UTF-8 >%s/initdb.log 2>&1 && "
		 "printf 'local all all trust\\nhost all all 127.0.0.1/32 scram-sha-256\\n' "
		 ">%s/data/pg_hba.conf && "
		 "%s " PGBIN "/pg_ctl -D %s/data -l %s/pg.log -w -t 30 start -o \"-p %d -k %s "
		 "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
		 "-c full_page_writes=off\" >/dev/null",
		 as, g_dir, g_dir, g_dir, as, g_dir, g_dir, g_port, g_dir);
	sh(cmd);
	char conninfo[400];
	snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=postgres dbname=postgres", g_dir,
		 g_port);
	g_admin = PQconnectdb(conninfo);
	if (PQstatus(g_admin) != CONNECTION_OK)
		fail_msg("admin connection: %s", PQerrorMessage(g_admin));
	admin("CREATE ROLE vault LOGIN PASSWORD 'vault-pass-42'");
	admin("CREATE DATABASE app OWNER vault");
	PQfinish(g_admin);
	snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=postgres dbname=app", g_dir,
		 g_port);
	g_admin = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(g_admin), CONNECTION_OK);
	snprintf(g_dsn, sizeof(g_dsn),
		 "postgres://vault:vault-pass-42@127.0.0.1:%d/app?sslmode=disable", g_port);
	return 0;
}

static int stop_pg(void **state)
{
	(void)state;
	PQfinish(g_admin);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "%s " PGBIN "/pg_ctl -D %s/data -m fast -w stop >/dev/null",
		 geteuid() == 0 ? "runuser -u postgres --" : "", g_dir);
	if (run_sh(cmd) != 0)
		fprintf(stderr, "could not stop PostgreSQL in %s\n", g_dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	if (run_sh(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	return 0;
}

static struct physical *open_conf(json_t *c)
{
	struct physical *p = NULL;
	struct verr err = {0};
	int rc = physical_postgresql_new(&p, c, &err);
	json_decref(c);
	if (rc)
		fail_msg("postgresql open: %s", err.msg);
	return p;
}

static struct physical *open_table(const char *table, bool ha)
{
	return open_conf(json_pack("{s:s,s:s,s:s}", "connection_url", g_dsn, "table", table,
				   "ha_enabled", ha ? "true" : "false"));
}

static int sem_setup(void **state)
{
	char t[64];
	snprintf(t, sizeof(t), "sem%d", ++g_seq);
	*state = open_table(t, false);
	return 0;
}

static int sem_teardown(void **state)
{
	physical_close(*state);
	return 0;
}

static void test_physical_postgresql__vault_schema_and_layout(void **state)
{
	(void)state;
	struct physical *p = open_conf(json_pack("{s:s,s:s}", "connection_url", g_dsn,
						 "ha_enabled", "true"));
	sem_put(p, "a/b/c", "abc");
	sem_put(p, "a/b", "ab");
	sem_put(p, "top", "t");
	/* the rows as an operator sees them */
	assert_string_equal(admin("SELECT string_agg(parent_path || '|' || path || '|' || key, ' ' "
				  "ORDER BY path, key) FROM vault_kv_store"),
			    "|/|top /|/a/|b /a/|/a/b/|c");
	assert_string_equal(admin("SELECT encode(value, 'escape') FROM vault_kv_store WHERE path = "
				  "'/a/b/' AND key = 'c'"),
			    "abc");
	/* Vault's columns, types and collations */
	assert_string_equal(
		admin("SELECT string_agg(column_name || ':' || data_type || ':' || "
		      "coalesce(collation_name, '-') || ':' || is_nullable, ' ' ORDER BY "
		      "ordinal_position) FROM information_schema.columns WHERE table_name = "
		      "'vault_kv_store'"),
		"parent_path:text:C:NO path:text:C:NO key:text:C:NO value:bytea:-:YES");
	assert_string_equal(admin("SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM "
				  "pg_indexes WHERE tablename = 'vault_kv_store'"),
			    "parent_path_idx pkey");
	assert_string_equal(admin("SELECT pg_get_indexdef('pkey'::regclass)"),
			    "CREATE UNIQUE INDEX pkey ON public.vault_kv_store USING btree (path, key)");
	assert_string_equal(
		admin("SELECT string_agg(column_name || ':' || data_type, ' ' ORDER BY "
		      "ordinal_position) FROM information_schema.columns WHERE table_name = "
		      "'vault_ha_locks'"),
		"ha_key:text ha_identity:text ha_value:text valid_until:timestamp with time zone");
	/* a table created by an operator beforehand (skip_create_table) works */
	admin("CREATE TABLE ops_kv (parent_path TEXT COLLATE \"C\" NOT NULL, path TEXT COLLATE "
	      "\"C\", key TEXT COLLATE \"C\", value BYTEA, CONSTRAINT ops_pkey PRIMARY KEY (path, "
	      "key))");
	admin("ALTER TABLE ops_kv OWNER TO vault");
	struct physical *q = open_conf(json_pack("{s:s,s:s,s:s}", "connection_url", g_dsn, "table",
						 "ops_kv", "skip_create_table", "true"));
	sem_put(q, "x/y", "1");
	sem_expect(q, "x/y", "1");
	physical_close(q);
	/* skip_create_table on a missing table: a clear error, nothing created */
	q = open_conf(json_pack("{s:s,s:s,s:s}", "connection_url", g_dsn, "table", "nope_kv",
				"skip_create_table", "true"));
	struct verr err = {0};
	uint8_t *v = NULL;
	size_t l = 0;
	assert_true(physical_get(q, "x", &v, &l, &err) < 0);
	assert_non_null(strstr(err.msg, "nope_kv"));
	assert_string_equal(admin("SELECT count(*) FROM pg_tables WHERE tablename = 'nope_kv'"),
			    "0");
	physical_close(q);
	physical_close(p);
}

static void test_physical_postgresql__list_prefix_is_literal(void **state)
{
	(void)state;
	struct physical *p = open_table("wild", false);
	sem_put(p, "x_y/1", "1");
	sem_put(p, "xay/2", "2");
	sem_put(p, "x%/3", "3");
	sem_put(p, "x%z/deep/4", "4");
	sem_expect_list(p, "x_y/", (const char *const[]){"1", NULL});
	sem_expect_list(p, "x%/", (const char *const[]){"3", NULL});
	sem_expect_list(p, "", (const char *const[]){"x%/", "x%z/", "x_y/", "xay/", NULL});
	physical_close(p);
}

struct pool_arg {
	struct physical *p;
	int id;
	atomic_int *fails;
};

static void *pool_writer(void *a)
{
	struct pool_arg *pa = a;
	char key[32], val[32];
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "t%d/k%d", pa->id, i);
		snprintf(val, sizeof(val), "v%d", i);
		struct verr err = {0};
		if (physical_put(pa->p, key, (const uint8_t *)val, strlen(val), &err))
			atomic_fetch_add(pa->fails, 1);
	}
	return NULL;
}

static void test_physical_postgresql__pool_bounded_by_max_parallel(void **state)
{
	(void)state;
	char url[300];
	snprintf(url, sizeof(url), "%s&application_name=pooltest", g_dsn);
	struct physical *p = open_conf(json_pack("{s:s,s:s,s:i}", "connection_url", url, "table",
						 "pool", "max_parallel", 2));
	pthread_t th[8];
	struct pool_arg args[8];
	atomic_int fails = 0;
	for (int i = 0; i < 8; i++) {
		args[i] = (struct pool_arg){p, i, &fails};
		pthread_create(&th[i], NULL, pool_writer, &args[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&fails), 0);
	sem_expect(p, "t7/k49", "v49");
	assert_string_equal(admin("SELECT count(*) FROM pool"), "400");
	/* never more than max_parallel sessions */
	assert_string_equal(admin("SELECT count(*) FROM pg_stat_activity WHERE "
				  "application_name = 'pooltest'"),
			    "2");
	physical_close(p);
}

static atomic_int g_lost;
static void on_lost(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_lost, 1);
}

static struct physical *open_ha(const char *ha_table)
{
	return open_conf(json_pack("{s:s,s:s,s:s,s:s}", "connection_url", g_dsn, "table", "hadata",
				   "ha_table", ha_table, "ha_enabled", "true"));
}

static void test_physical_postgresql__ha_one_holder_and_handover(void **state)
{
	(void)state;
	struct physical *a = open_ha("locks1"), *b = open_ha("locks1");
	struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
	assert_non_null(ha);
	assert_non_null(hb);
	assert_true(ha->retry_interval_ms <= 250);
	struct verr err = {0};
	char *v = NULL;
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_null(v); /* nobody holds it */
	atomic_store(&g_lost, 0);
	assert_int_equal(physical_ha_acquire(ha, "{\"node\":\"a\"}", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 0);
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_string_equal(v, "{\"node\":\"a\"}");
	free(v);
	/* the row an operator sees in Vault's lock table */
	assert_string_equal(admin("SELECT ha_key || ' ' || ha_value || ' ' || (valid_until > now()) "
				  "FROM locks1"),
			    "core/lock {\"node\":\"a\"} true");
	assert_int_equal(physical_ha_renew(ha, &err), 0);
	sem_put(a, "data/x", "1"); /* guarded, and it holds: applied */
	sem_expect(b, "data/x", "1");
	physical_ha_release(ha);
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_null(v);
	assert_int_equal(physical_ha_acquire(hb, "{\"node\":\"b\"}", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_holder(ha, &v, &err), 0);
	assert_string_equal(v, "{\"node\":\"b\"}");
	free(v);
	/* another ha_table is another lock */
	struct physical *c = open_ha("locks1b");
	assert_int_equal(physical_ha_acquire(physical_ha(c), "c", on_lost, NULL, &err), 1);
	physical_ha_release(physical_ha(c));
	physical_close(c);
	physical_ha_release(hb);
	assert_int_equal(atomic_load(&g_lost), 0);
	physical_close(a);
	physical_close(b);
}

static void test_physical_postgresql__advisory_lock_freed_on_kill9(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(fds[0]);
		struct physical *p = NULL;
		struct verr err = {0};
		json_t *c = json_pack("{s:s,s:s,s:s,s:s}", "connection_url", g_dsn, "table",
				      "hadata", "ha_table", "locks2", "ha_enabled", "true");
		char ok = 'n';
		if (physical_postgresql_new(&p, c, &err) == 0 &&
		    physical_ha_acquire(physical_ha(p), "child", on_lost, NULL, &err) == 1)
			ok = 'y';
		if (write(fds[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	char ok = 0;
	assert_int_equal(read(fds[0], &ok, 1), 1);
	close(fds[0]);
	assert_int_equal(ok, 'y');
	struct physical *b = open_ha("locks2");
	struct physical_ha *hb = physical_ha(b);
	struct verr err = {0};
	char *v = NULL;
	assert_int_equal(physical_ha_acquire(hb, "parent", on_lost, NULL, &err), 0);
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_string_equal(v, "child");
	free(v);
	kill(child, SIGKILL);
	int64_t t0 = now_ms();
	waitpid(child, NULL, 0);
	int got = 0;
	while (got != 1 && now_ms() - t0 < 5000) {
		got = physical_ha_acquire(hb, "parent", on_lost, NULL, &err);
		if (got != 1)
			sleep_ms(10);
	}
	int64_t took = now_ms() - t0;
	print_message("advisory lock free %lld ms after kill -9 of the holder\n", (long long)took);
	assert_int_equal(got, 1);
	assert_true(took < 1000);
	assert_int_equal(physical_ha_holder(hb, &v, &err), 0);
	assert_string_equal(v, "parent");
	free(v);
	physical_ha_release(hb);
	physical_close(b);
}

static void terminate_lock_sessions(void)
{
	admin("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
	      "application_name = 'coffer-ha'");
	/* wait until they are gone (termination is asynchronous) */
	for (int i = 0; i < 100; i++) {
		if (!strcmp(admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
				  "'coffer-ha'"),
			    "0"))
			return;
		sleep_ms(10);
	}
	fail_msg("lock sessions did not end");
}

static void test_physical_postgresql__fencing_after_lock_session_died(void **state)
{
	(void)state;
	struct physical *a = open_ha("locks3"), *b = open_ha("locks3");
	struct physical *other = open_table("hadata", false);
	struct physical_ha *ha = physical_ha(a), *hb = physical_ha(b);
	struct verr err = {0};
	atomic_store(&g_lost, 0);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	sem_put(a, "f/k", "before");
	/* the lock session dies (network cut, admin, server restart) while a
	 * still believes it is active; b takes the lock */
	terminate_lock_sessions();
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 1);
	int rc = physical_put(a, "f/k", (const uint8_t *)"after", 5, &err);
	assert_int_equal(rc, VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "no longer holds the HA lock"));
	assert_int_equal(atomic_load(&g_lost), 1);
	sem_expect(other, "f/k", "before");
	/* once lost, every write is refused until release */
	assert_int_equal(physical_delete(a, "f/k", &err), VERR_UNAVAILABLE);
	struct physical_txn_op op = {PHYSICAL_TXN_PUT, "f/t", (const uint8_t *)"t", 1};
	assert_int_equal(physical_txn(a, &op, 1, &err), VERR_UNAVAILABLE);
	assert_int_not_equal(physical_ha_renew(ha, &err), 0);
	assert_int_equal(atomic_load(&g_lost), 1); /* once */
	physical_ha_release(ha);
	/* b's guarded writes land */
	sem_put(b, "f/k", "from-b");
	sem_expect(other, "f/k", "from-b");

	/* delete and txn are guarded the same way */
	terminate_lock_sessions();
	assert_int_equal(physical_delete(b, "f/k", &err), VERR_UNAVAILABLE);
	assert_int_equal(atomic_load(&g_lost), 2);
	physical_ha_release(hb);
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 1);
	terminate_lock_sessions();
	struct physical_txn_op ops[] = {{PHYSICAL_TXN_PUT, "f/t1", (const uint8_t *)"1", 1},
					{PHYSICAL_TXN_DELETE, "f/k", NULL, 0}};
	assert_int_equal(physical_txn(b, ops, 2, &err), VERR_UNAVAILABLE);
	assert_int_equal(atomic_load(&g_lost), 3);
	sem_expect(other, "f/t1", NULL);
	sem_expect(other, "f/k", "from-b");
	physical_ha_release(hb);
	/* and a holder with a live session writes through txn */
	assert_int_equal(physical_ha_acquire(hb, "b", on_lost, NULL, &err), 1);
	assert_int_equal(physical_txn(b, ops, 2, &err), 0);
	sem_expect(other, "f/t1", "1");
	sem_expect(other, "f/k", NULL);
	physical_ha_release(hb);
	physical_close(a);
	physical_close(b);
	physical_close(other);
}

static void test_physical_postgresql__lock_row_deleted_steps_down(void **state)
{
	(void)state;
	struct physical *a = open_ha("locks4");
	struct physical_ha *ha = physical_ha(a);
	struct verr err = {0};
	atomic_store(&g_lost, 0);
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_renew(ha, &err), 0);
	admin("DELETE FROM locks4");
	int rc = physical_ha_renew(ha, &err);
	assert_int_equal(rc, VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "deleted or replaced"));
	assert_int_equal(atomic_load(&g_lost), 1);
	/* it is not re-created behind the operator's back */
	assert_string_equal(admin("SELECT count(*) FROM locks4"), "0");
	physical_ha_release(ha);
	/* after stepping down it can take the lock again */
	assert_int_equal(physical_ha_acquire(ha, "a", on_lost, NULL, &err), 1);
	assert_int_equal(physical_ha_renew(ha, &err), 0);
	physical_ha_release(ha);
	physical_close(a);
}

static void test_physical_postgresql__config_and_connection_errors(void **state)
{
	(void)state;
	struct physical *p = NULL;
	struct verr err = {0};
	json_t *c = json_object();
	unsetenv("VAULT_PG_CONNECTION_URL");
	assert_int_equal(physical_postgresql_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "connection_url"));
	json_decref(c);
	c = json_pack("{s:s}", "connection_url", "postgres://vault:pw@127.0.0.1:5432/app?bogus=1");
	assert_int_equal(physical_postgresql_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "bogus"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "connection_url", g_dsn, "max_parallel", "lots");
	assert_int_equal(physical_postgresql_new(&p, c, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "max_parallel"));
	json_decref(c);
	c = json_pack("{s:s,s:s}", "connection_url", g_dsn, "ha_enabled", "maybe");
	assert_int_equal(physical_postgresql_new(&p, c, &err), VERR_INVALID);
	json_decref(c);
	assert_null(p);

	/* the environment variable wins, as in Vault */
	setenv("VAULT_PG_CONNECTION_URL", g_dsn, 1);
	p = open_conf(json_pack("{s:s,s:s}", "connection_url", "postgres://x@127.0.0.1:1/none",
				"table", "envtab"));
	sem_put(p, "e", "1");
	physical_close(p);
	unsetenv("VAULT_PG_CONNECTION_URL");
	assert_string_equal(admin("SELECT count(*) FROM envtab"), "1");

	/* wrong password: opening works (logged), requests fail 5xx-class
	 * naming the cause, never the password */
	char bad[256];
	snprintf(bad, sizeof(bad), "postgres://vault:Wrong-Secret-77@127.0.0.1:%d/app", g_port);
	p = open_conf(json_pack("{s:s}", "connection_url", bad));
	uint8_t *v = NULL;
	size_t l = 0;
	assert_int_equal(physical_get(p, "x", &v, &l, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "password authentication failed"));
	assert_null(strstr(err.msg, "Wrong-Secret-77"));
	physical_close(p);
	/* TLS required, server without TLS: refused, naming SSL */
	snprintf(bad, sizeof(bad), "%s", g_dsn);
	char *mode = strstr(bad, "sslmode=disable");
	assert_non_null(mode);
	snprintf(mode, sizeof(bad) - (size_t)(mode - bad), "sslmode=require");
	p = open_conf(json_pack("{s:s}", "connection_url", bad));
	assert_int_equal(physical_get(p, "x", &v, &l, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "SSL"));
	assert_null(strstr(err.msg, "vault-pass-42"));
	physical_close(p);
	/* nothing listening */
	p = open_conf(json_pack("{s:s}", "connection_url",
				"postgres://vault:Wrong-Secret-77@127.0.0.1:1/app?connect_timeout=2"));
	assert_int_equal(physical_put(p, "x", (const uint8_t *)"1", 1, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "127.0.0.1"));
	assert_null(strstr(err.msg, "Wrong-Secret-77"));
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(physical_list(p, "", &keys, &n, &err), VERR_UNAVAILABLE);
	struct physical_ha *h = physical_ha(p);
	assert_null(h); /* ha_enabled defaults to false */
	physical_close(p);
}

int main(void)
{
	log_set_level(LOG_OFF);
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(sem_setup, sem_teardown),
		cmocka_unit_test(test_physical_postgresql__vault_schema_and_layout),
		cmocka_unit_test(test_physical_postgresql__list_prefix_is_literal),
		cmocka_unit_test(test_physical_postgresql__pool_bounded_by_max_parallel),
		cmocka_unit_test(test_physical_postgresql__ha_one_holder_and_handover),
		cmocka_unit_test(test_physical_postgresql__advisory_lock_freed_on_kill9),
		cmocka_unit_test(test_physical_postgresql__fencing_after_lock_session_died),
		cmocka_unit_test(test_physical_postgresql__lock_row_deleted_steps_down),
		cmocka_unit_test(test_physical_postgresql__config_and_connection_errors),
	};
	return cmocka_run_group_tests(tests, start_pg, stop_pg);
}
