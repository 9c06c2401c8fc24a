/*
 * Unit tests for the database engine's paths (secrets/database/database.c)
 * through framework_handle, as the core dispatches them, over an in-memory
 * storage view and no PostgreSQL: config validation and its errors, what a
 * config read shows (never the password), merging updates, role validation
 * and shapes, the allowed_roles check before any SQL, a refused connection
 * reported without the password and without a lease, and static-role
 * validation. The SQL side is covered by tests/e2e/test_database.py against
 * a real PostgreSQL.
 */
#include "secrets/kv_helpers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define PG "postgresql-database-plugin"
/* nothing listens on port 1: connecting fails at once */
#define DEAD_URL "postgresql://{{username}}:{{password}}@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"

static struct kvt T;

static int setup(void **state)
{
	(void)state;
	kvt_open(&T, &database_backend_ops, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kvt_close(&T);
	return 0;
}

static int write_dead_config(const char *allowed)
{
	return kvt_do(&T, LOP_UPDATE, "config/pg",
		      json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
				"username", "vault", "password", "hunter2-root", "allowed_roles", allowed,
				"verify_connection", 0));
}

static void test_database_paths__config_errors_name_the_problem(void **state)
{
	(void)state;
	struct {
		json_t *body;
		const char *needle;
	} cases[] = {
		{json_pack("{s:s,s:s}", "plugin_name", "mysql-database-plugin", "connection_url", DEAD_URL),
		 "\"mysql-database-plugin\""},
		{json_pack("{s:s}", "connection_url", DEAD_URL), "plugin_name"},
		{json_pack("{s:s}", "plugin_name", PG), "connection_url cannot be empty"},
		{json_pack("{s:s,s:s,s:s,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
			   "password_authentication", "md5", "verify_connection", 0),
		 "password_authentication"},
		{json_pack("{s:s,s:s,s:i,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
			   "max_open_connections", -1, "verify_connection", 0),
		 "max_open_connections"},
		{json_pack("{s:s,s:s,s:s,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
			   "username_template", "{{ .Nope }}", "verify_connection", 0),
		 ".Nope"},
		{json_pack("{s:s,s:s,s:s,s:s,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
			   "username", "vault", "password_policy", "my-policy", "verify_connection", 0),
		 "password_policy \"my-policy\""},
		{json_pack("{s:s,s:s,s:b}", "plugin_name", PG, "connection_url", DEAD_URL,
			   "verify_connection", 0),
		 "no username"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kvt_do(&T, LOP_UPDATE, "config/x", cases[i].body), VERR_INVALID);
		if (!strstr(T.err.msg, cases[i].needle))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, T.err.msg, cases[i].needle);
	}
	/* nothing was stored */
	assert_int_equal(kvt_do(&T, LOP_READ, "config/x", json_object()), VERR_NOT_FOUND);
	/* verify_connection (default true) against a dead port: 400, no password */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "config/x",
				json_pack("{s:s,s:s,s:s,s:s}", "plugin_name", PG, "connection_url",
					  DEAD_URL, "username", "vault", "password", "hunter2-root")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "error verifying connection"));
	assert_null(strstr(T.err.msg, "hunter2"));
	assert_int_equal(kvt_do(&T, LOP_READ, "config/x", json_object()), VERR_NOT_FOUND);
}

static void test_database_paths__config_read_hides_the_password(void **state)
{
	(void)state;
	assert_int_equal(write_dead_config("readonly,app-*"), 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "config/pg", json_object()), 0);
	assert_string_equal(kvt_str(&T, "plugin_name"), PG);
	assert_string_equal(kvt_str(&T, "connection_details/username"), "vault");
	assert_string_equal(kvt_str(&T, "connection_details/connection_url"), DEAD_URL);
	assert_int_equal(kvt_int(&T, "connection_details/max_open_connections"), 4);
	assert_string_equal(kvt_str(&T, "connection_details/max_connection_lifetime"), "0s");
	assert_null(kvt_get(&T, "connection_details/password"));
	assert_int_equal(json_array_size(kvt_get(&T, "allowed_roles")), 2);
	char *dump = json_dumps(T.resp.data, 0);
	assert_null(strstr(dump, "hunter2"));
	free(dump);

	/* an update merges: the password stays, allowed_roles change */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "config/pg",
				json_pack("{s:s,s:b}", "allowed_roles", "*", "verify_connection", 0)),
			 0);
	json_t *stored = NULL;
	assert_int_equal(view_get_json(&T.view, "config/pg", &stored, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(stored, "connection_details"), "password")),
			    "hunter2-root");
	assert_string_equal(json_string_value(json_array_get(json_object_get(stored, "allowed_roles"), 0)),
			    "*");
	/* an interrupted rotate-root's pending password is not shown either */
	json_object_set_new(json_object_get(stored, "connection_details"), "password_pending",
			    json_string("pending-secret"));
	assert_int_equal(view_put_json(&T.view, "config/pg", stored, NULL), 0);
	json_decref(stored);
	assert_int_equal(kvt_do(&T, LOP_READ, "config/pg", json_object()), 0);
	dump = json_dumps(T.resp.data, 0);
	assert_null(strstr(dump, "pending"));
	assert_null(strstr(dump, "hunter2"));
	free(dump);

	/* a literal password in the URL: a warning, and a masked read */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "config/lit",
				json_pack("{s:s,s:s,s:b}", "plugin_name", PG, "connection_url",
					  "postgresql://vault:s3cret@127.0.0.1:1/db", "verify_connection", 0)),
			 0);
	assert_non_null(T.resp.warnings);
	assert_non_null(strstr(json_string_value(json_array_get(T.resp.warnings, 0)),
			       "Password found in connection_url"));
	assert_int_equal(kvt_do(&T, LOP_READ, "config/lit", json_object()), 0);
	assert_string_equal(kvt_str(&T, "connection_details/connection_url"),
			    "postgresql://vault:*****@127.0.0.1:1/db");

	assert_int_equal(kvt_do(&T, LOP_LIST, "config/", json_object()), 0);
	assert_int_equal(json_array_size(kvt_get(&T, "keys")), 2);
	assert_int_equal(kvt_do(&T, LOP_DELETE, "config/lit", json_object()), 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "config/lit", json_object()), VERR_NOT_FOUND);
}

static void test_database_paths__roles(void **state)
{
	(void)state;
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r", json_pack("{s:s}", "db_name", "pg")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "creation_statements"));
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r", json_pack("{s:s}", "creation_statements", "x")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "db_name"));
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r",
				json_pack("{s:s,s:s,s:s}", "db_name", "pg", "creation_statements", "x",
					  "credential_type", "client_certificate")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "client_certificate"));
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r",
				json_pack("{s:s,s:s,s:s,s:s}", "db_name", "pg", "creation_statements", "x",
					  "default_ttl", "2h", "max_ttl", "1h")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "max_ttl"));
	/* a statements string with commas stays one element */
	const char *create = "CREATE ROLE \"{{name}}\"; GRANT SELECT, INSERT ON t TO \"{{name}}\";";
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r",
				json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "db_name", "pg",
					  "creation_statements", create, "default_ttl", "1h", "max_ttl",
					  "24h", "revocation_statements", "DROP ROLE \"{{name}}\"", "x")),
			 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "roles/r", json_object()), 0);
	assert_int_equal(json_array_size(kvt_get(&T, "creation_statements")), 1);
	assert_string_equal(json_string_value(json_array_get(kvt_get(&T, "creation_statements"), 0)), create);
	assert_int_equal(json_array_size(kvt_get(&T, "revocation_statements")), 2);
	assert_int_equal(kvt_int(&T, "default_ttl"), 3600);
	assert_int_equal(kvt_int(&T, "max_ttl"), 86400);
	assert_string_equal(kvt_str(&T, "credential_type"), "password");
	assert_string_equal(kvt_str(&T, "db_name"), "pg");
	/* an update keeps what it does not name */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/r", json_pack("{s:s}", "default_ttl", "30m")), 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "roles/r", json_object()), 0);
	assert_int_equal(kvt_int(&T, "default_ttl"), 1800);
	assert_int_equal(json_array_size(kvt_get(&T, "creation_statements")), 1);
	assert_int_equal(kvt_do(&T, LOP_LIST, "roles/", json_object()), 0);
	assert_string_equal(json_string_value(json_array_get(kvt_get(&T, "keys"), 0)), "r");
	assert_int_equal(kvt_do(&T, LOP_DELETE, "roles/r", json_object()), 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "roles/r", json_object()), VERR_NOT_FOUND);
}

static void test_database_paths__creds_checks_before_sql(void **state)
{
	(void)state;
	assert_int_equal(kvt_do(&T, LOP_READ, "creds/nope", json_object()), VERR_INVALID);
	assert_string_equal(T.err.msg, "unknown role: nope");
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/orphan",
				json_pack("{s:s,s:s}", "db_name", "missing", "creation_statements", "x")),
			 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "creds/orphan", json_object()), VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "\"missing\""));

	assert_int_equal(write_dead_config("readonly,app-*"), 0);
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/other",
				json_pack("{s:s,s:s}", "db_name", "pg", "creation_statements", "x")),
			 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "creds/other", json_object()), VERR_INVALID);
	assert_string_equal(T.err.msg, "\"other\" is not an allowed role");
	/* allowed by the glob: the SQL side runs, the database is down */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/app-x",
				json_pack("{s:s,s:s}", "db_name", "pg", "creation_statements",
					  "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}'")),
			 0);
	assert_int_equal(kvt_do(&T, LOP_READ, "creds/app-x", json_object()), VERR_INTERNAL);
	assert_non_null(strstr(T.err.msg, "error connecting to the database"));
	assert_null(strstr(T.err.msg, "hunter2"));
	assert_null(T.resp.secret); /* no lease for a failed creation */
	assert_null(T.resp.data);
}

/* Concurrent creds requests are grouped into one transaction (pg.c): when
 * the database is down every request of a batch gets the driver's message
 * (none hangs, none is left without an answer) and no lease. */
struct creds_thread {
	pthread_t t;
	int rc;
	struct verr err;
	bool secret;
};

static void *creds_worker(void *arg)
{
	struct creds_thread *ct = arg;
	struct logical_response resp = {0};
	json_t *data = json_object();
	struct logical_request req = {.op = LOP_READ, .rel_path = "creds/app-x", .data = data,
				      .storage = &T.view, .backend = T.inst,
				      .client_token_hash = "hash-a", .mount_type = T.ops->type};
	ct->rc = framework_handle(T.ops->paths(T.inst), &req, &resp, &ct->err);
	ct->secret = resp.secret != NULL;
	logical_response_reset(&resp);
	json_decref(data);
	return NULL;
}

static void test_database_paths__concurrent_creds_all_answered(void **state)
{
	(void)state;
	assert_int_equal(write_dead_config("app-*"), 0);
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "roles/app-x",
				json_pack("{s:s,s:s}", "db_name", "pg", "creation_statements",
					  "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}'; "
					  "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\"")),
			 0);
	struct creds_thread ct[12];
	memset(ct, 0, sizeof(ct));
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(pthread_create(&ct[i].t, NULL, creds_worker, &ct[i]), 0);
	for (size_t i = 0; i < 12; i++) {
		assert_int_equal(pthread_join(ct[i].t, NULL), 0);
		assert_int_equal(ct[i].rc, VERR_INTERNAL);
		assert_non_null(strstr(ct[i].err.msg, "error connecting to the database"));
		assert_null(strstr(ct[i].err.msg, "hunter2"));
		assert_false(ct[i].secret);
	}
}

static void test_database_paths__static_roles(void **state)
{
	(void)state;
	assert_int_equal(write_dead_config("*"), 0);
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "static-roles/s",
				json_pack("{s:s,s:s,s:s}", "db_name", "pg", "username", "app",
					  "rotation_period", "2s")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "rotation_period"));
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "static-roles/s",
				json_pack("{s:s,s:s,s:s}", "db_name", "pg", "username", "app",
					  "rotation_schedule", "0 * * *")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "could not parse rotation_schedule"));
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "static-roles/s",
				json_pack("{s:s,s:s}", "db_name", "pg", "rotation_period", "1h")),
			 VERR_INVALID);
	assert_non_null(strstr(T.err.msg, "username"));
	/* valid, but the database is down: refused, nothing stored */
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "static-roles/s",
				json_pack("{s:s,s:s,s:s}", "db_name", "pg", "username", "app",
					  "rotation_period", "1h")),
			 VERR_INTERNAL);
	assert_int_equal(kvt_do(&T, LOP_READ, "static-roles/s", json_object()), VERR_NOT_FOUND);
	assert_int_equal(kvt_do(&T, LOP_READ, "static-creds/s", json_object()), VERR_INVALID);
	assert_int_equal(kvt_do(&T, LOP_UPDATE, "rotate-role/s", json_object()), VERR_INVALID);
	/* the periodic hook with nothing to rotate succeeds */
	struct verr e = {0};
	assert_int_equal(database_backend_ops.periodic(T.inst, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_database_paths__config_errors_name_the_problem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_paths__config_read_hides_the_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_paths__roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_paths__creds_checks_before_sql, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_paths__concurrent_creds_all_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_database_paths__static_roles, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
