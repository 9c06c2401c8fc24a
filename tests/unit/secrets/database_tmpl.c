/*
 * Unit tests for the database engine's templates (secrets/database/dbtmpl.c):
 * statement substitution and its quote-aware escaping, statement splitting,
 * Vault's {{expiration}} format, connection strings and URL redaction, and
 * the username-template interpreter (Vault's default shape, custom
 * templates, errors that name the problem).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "secrets/database/database_int.h"

static char *stmt(const char *tmpl, const struct dbtmpl_vars *v)
{
	struct buf b;
	buf_init_secret(&b, 64);
	dbtmpl_statement(&b, tmpl, v);
	return buf_take(&b, NULL);
}

static void test_database_tmpl__statement_substitution(void **state)
{
	(void)state;
	struct dbtmpl_vars v = {.name = "v-tok-ro-abc", .password = "A1a-xyz",
				.expiration = "2030-01-02 03:04:05+0000"};
	char *s = stmt("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL "
		       "'{{ expiration }}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
		       &v);
	assert_string_equal(s, "CREATE ROLE \"v-tok-ro-abc\" WITH LOGIN PASSWORD 'A1a-xyz' VALID UNTIL "
			       "'2030-01-02 03:04:05+0000'; GRANT SELECT ON ALL TABLES IN SCHEMA public "
			       "TO \"v-tok-ro-abc\";");
	free(s);
	/* {{username}} falls back to the name; unknown placeholders stay */
	s = stmt("ALTER ROLE \"{{username}}\" SET x = '{{other}}'", &v);
	assert_string_equal(s, "ALTER ROLE \"v-tok-ro-abc\" SET x = '{{other}}'");
	free(s);
}

static void test_database_tmpl__values_cannot_break_their_quotes(void **state)
{
	(void)state;
	struct dbtmpl_vars v = {.name = "bob\"; DROP TABLE x; --", .password = "it's"};
	char *s = stmt("CREATE ROLE \"{{name}}\" PASSWORD '{{password}}'", &v);
	assert_string_equal(s, "CREATE ROLE \"bob\"\"; DROP TABLE x; --\" PASSWORD 'it''s'");
	free(s);
	/* a doubled quote in the template does not confuse the tracking */
	s = stmt("COMMENT ON ROLE \"{{name}}\" IS 'it''s {{password}}'", &v);
	assert_string_equal(s, "COMMENT ON ROLE \"bob\"\"; DROP TABLE x; --\" IS 'it''s it''s'");
	free(s);
}

static void test_database_tmpl__split_respects_quoting(void **state)
{
	(void)state;
	char **v = NULL;
	size_t n = dbtmpl_split(&v, " CREATE ROLE \"a;b\";  COMMENT ON ROLE x IS 'semi; colon';;\n"
				   "DO $$BEGIN PERFORM 1; END$$; -- trailing; comment\n  ");
	assert_int_equal(n, 4);
	assert_string_equal(v[0], "CREATE ROLE \"a;b\"");
	assert_string_equal(v[1], "COMMENT ON ROLE x IS 'semi; colon'");
	assert_string_equal(v[2], "DO $$BEGIN PERFORM 1; END$$");
	assert_string_equal(v[3], "-- trailing; comment");
	assert_null(v[4]);
	dbtmpl_strv_free(v);
	n = dbtmpl_split(&v, "  ;  ");
	assert_int_equal(n, 0);
	assert_null(v[0]);
	dbtmpl_strv_free(v);
}

static void test_database_tmpl__expiration_format(void **state)
{
	(void)state;
	char b[DBTMPL_EXPIRATION_MAX];
	dbtmpl_expiration(b, 1136214245); /* Go's reference time, 2006-01-02 15:04:05 UTC */
	assert_string_equal(b, "2006-01-02 15:04:05+0000");
}

static void test_database_tmpl__conninfo_and_redaction(void **state)
{
	(void)state;
	struct buf b;
	buf_init_secret(&b, 64);
	dbtmpl_conninfo(&b, "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=disable", "vault",
			"p@ss:w/rd");
	assert_string_equal(b.p, "postgresql://vault:p%40ss%3Aw%2Frd@db:5432/app?sslmode=disable");
	buf_free(&b);
	buf_init_secret(&b, 64);
	dbtmpl_conninfo(&b, "host=db user={{username}} password={{password}}", "vault", "it's");
	assert_string_equal(b.p, "host=db user='vault' password='it\\'s'");
	buf_free(&b);

	char *r = dbtmpl_redact_url("postgresql://vault:secret@db:5432/app");
	assert_string_equal(r, "postgresql://vault:*****@db:5432/app");
	free(r);
	r = dbtmpl_redact_url("postgresql://{{username}}:{{password}}@db/app");
	assert_string_equal(r, "postgresql://{{username}}:{{password}}@db/app");
	free(r);
	r = dbtmpl_redact_url("host=db password='a b' user=x");
	assert_string_equal(r, "host=db password=***** user=x");
	free(r);
	r = dbtmpl_redact_url("postgres://db/app");
	assert_string_equal(r, "postgres://db/app");
	free(r);

	char msg[] = "password hunter22 rejected; hunter22 again";
	dbtmpl_scrub(msg, "hunter22");
	assert_string_equal(msg, "password ******** rejected; ******** again");
}

static void test_database_tmpl__default_username(void **state)
{
	(void)state;
	char *u = NULL;
	assert_int_equal(dbtmpl_username(&u, NULL, "userpass-alice", "readonly-role", 1700000000123LL, NULL), 0);
	/* v-<display 8>-<role 8>-<random 20>-<unix> */
	assert_int_equal(strncmp(u, "v-userpass-readonly-", 20), 0);
	assert_int_equal(strlen(u), 20 + 20 + 1 + 10);
	assert_string_equal(u + strlen(u) - 11, "-1700000000");
	for (size_t i = 20; i < 40; i++)
		assert_true((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= 'A' && u[i] <= 'Z') ||
			    (u[i] >= '0' && u[i] <= '9'));
	free(u);
	/* always <= 63 (PostgreSQL's identifier limit) */
	assert_int_equal(dbtmpl_username(&u, "", "tok", "r", 99999999999999LL, NULL), 0);
	assert_true(strlen(u) <= 63);
	free(u);
}

static void test_database_tmpl__custom_username_templates(void **state)
{
	(void)state;
	char *u = NULL;
	assert_int_equal(dbtmpl_username(&u, "{{ printf \"app-%s-%s\" (.RoleName) (random 8) | lowercase }}",
					 "tok", "ReadOnly", 0, NULL), 0);
	assert_int_equal(strncmp(u, "app-readonly-", 13), 0);
	assert_int_equal(strlen(u), 21);
	free(u);
	assert_int_equal(dbtmpl_username(&u, "pre_{{.DisplayName | replace \"-\" \"_\" | uppercase}}_x",
					 "userpass-bob", "r", 0, NULL), 0);
	assert_string_equal(u, "pre_USERPASS_BOB_x");
	free(u);
	assert_int_equal(dbtmpl_username(&u, "{{ unix_time_millis }}-{{unix_time}}", "d", "r", 1234567, NULL), 0);
	assert_string_equal(u, "1234567-1234");
	free(u);
	assert_int_equal(dbtmpl_username(&u, "{{ .RoleName | truncate_sha256 12 }}", "d",
					 "a-very-long-role-name", 0, NULL), 0);
	assert_int_equal(strlen(u), 12);
	assert_int_equal(strncmp(u, "a-ve", 4), 0);
	free(u);
	assert_int_equal(dbtmpl_username(&u, "{{ uuid }}", "d", "r", 0, NULL), 0);
	assert_int_equal(strlen(u), 36);
	free(u);
}

static void test_database_tmpl__bad_templates_name_the_problem(void **state)
{
	(void)state;
	struct verr e = {0};
	assert_int_equal(dbtmpl_username_check("{{ nosuch 3 }}", &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "\"nosuch\""));
	assert_int_equal(dbtmpl_username_check("{{ .Secret }}", &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, ".Secret"));
	assert_int_equal(dbtmpl_username_check("{{ .RoleName ", &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "unclosed"));
	assert_int_equal(dbtmpl_username_check("{{ (random 3 }}", &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, ")"));
	assert_int_equal(dbtmpl_username_check("{{ \"abc }}", &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "unterminated"));
	assert_int_equal(dbtmpl_username_check("{{ truncate x .RoleName }}", &e), VERR_INVALID);
	assert_int_equal(dbtmpl_username_check("{{ .RoleName .DisplayName }}", &e), VERR_INVALID);
	assert_int_equal(dbtmpl_username_check(DBTMPL_DEFAULT_USERNAME, &e), 0);
	char *u = NULL;
	assert_int_equal(dbtmpl_username(&u, "{{ .RoleName | truncate 0 }}", "d", "r", 0, &e), VERR_INVALID);
	assert_non_null(strstr(e.msg, "empty"));
	assert_null(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_database_tmpl__statement_substitution),
		cmocka_unit_test(test_database_tmpl__values_cannot_break_their_quotes),
		cmocka_unit_test(test_database_tmpl__split_respects_quoting),
		cmocka_unit_test(test_database_tmpl__expiration_format),
		cmocka_unit_test(test_database_tmpl__conninfo_and_redaction),
		cmocka_unit_test(test_database_tmpl__default_username),
		cmocka_unit_test(test_database_tmpl__custom_username_templates),
		cmocka_unit_test(test_database_tmpl__bad_templates_name_the_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
