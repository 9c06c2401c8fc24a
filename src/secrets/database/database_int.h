/*
 * database_int.h - internals of the database secrets engine
 * (src/secrets/database/): statement and username templating (dbtmpl.c),
 * the PostgreSQL plugin and its connection pool (pg.c), and the engine's
 * paths (database.c). Nothing outside this folder includes it.
 */
#ifndef COFFER_SECRETS_DATABASE_INT_H
#define COFFER_SECRETS_DATABASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/verr.h"

/* ---- dbtmpl.c: templates ---- */

/* Values substituted into SQL statements; NULL members are left as written
 * ("{{password}}" stays when password is NULL). */
struct dbtmpl_vars {
	const char *name;       /* {{name}} and, unless username is set, {{username}} */
	const char *username;   /* {{username}} */
	const char *password;   /* {{password}} */
	const char *expiration; /* {{expiration}} */
};

/* Substitute {{name}}, {{username}}, {{password}}, {{expiration}} (spaces
 * inside the braces allowed) into one statement. Inside a '...' literal a
 * value's single quotes are doubled, inside a "..." identifier its double
 * quotes, so a value cannot end the quoting the template put around it.
 * Unknown {{...}} are kept verbatim. out is a secret buffer (it may hold a
 * password); the caller frees it. */
void dbtmpl_statement(struct buf *out, const char *tmpl, const struct dbtmpl_vars *v);

/* Split SQL text into statements at ';' outside '...', "..." and $tag$...$tag$
 * quoting; trims blanks and drops empty statements. *out is a NULL-terminated
 * array of strings; free with dbtmpl_strv_free. Returns the count. */
size_t dbtmpl_split(char ***out, const char *sql);
void dbtmpl_strv_free(char **v);

/* Vault's {{expiration}} format: "2006-01-02 15:04:05+0000" in UTC. */
#define DBTMPL_EXPIRATION_MAX 32
void dbtmpl_expiration(char buf[DBTMPL_EXPIRATION_MAX], int64_t unix_secs);

/* Vault's default PostgreSQL username template. */
#define DBTMPL_DEFAULT_USERNAME                                                                \
	"{{ printf \"v-%s-%s-%s-%s\" (.DisplayName | truncate 8) (.RoleName | truncate 8) "    \
	"(random 20) (unix_time) | truncate 63 }}"

/* Check a username template's syntax (VERR_INVALID naming the problem). */
int dbtmpl_username_check(const char *tmpl, struct verr *err);
/* Render a username template (Go text/template subset: literal text and
 * {{ pipelines }} of .DisplayName, .RoleName, "strings", numbers, (groups)
 * and the functions printf, truncate, truncate_sha256, lowercase, uppercase,
 * replace, random, unix_time, unix_time_millis, uuid; "a | f x" passes a as
 * f's last argument). tmpl NULL or "" uses the default. *out is malloc'd. */
int dbtmpl_username(char **out, const char *tmpl, const char *display_name, const char *role,
		    int64_t now_ms, struct verr *err);

/* The connection string with {{username}} and {{password}} filled in:
 * percent-encoded in a postgres:// or postgresql:// URL, quoted for
 * libpq's keyword=value form otherwise. Secret buffer, caller frees. */
void dbtmpl_conninfo(struct buf *out, const char *url, const char *username, const char *password);
/* The URL with any password (templated or literal) replaced by "*****",
 * for reads and messages. malloc'd. */
char *dbtmpl_redact_url(const char *url);

/* Replace every occurrence of secret in msg (in place) with '*'. */
void dbtmpl_scrub(char *msg, const char *secret);

/* ---- pg.c: the PostgreSQL plugin ---- */

struct pg_pool;

struct pg_pool_opts {
	int max_open;          /* >0 */
	int max_idle;          /* 0: max_open; <0: none kept */
	int64_t max_lifetime;  /* seconds; 0: forever */
};

/* A pool over conninfo (copied into locked memory). Connections are opened
 * lazily. Thread-safe. */
int pg_pool_new(struct pg_pool **out, const char *conninfo, const struct pg_pool_opts *o,
		struct verr *err);
void pg_pool_free(struct pg_pool *p);
/* Open one connection now (verify_connection), return it to the pool. */
int pg_pool_verify(struct pg_pool *p, struct verr *err);
/* Number of connections open (idle + in use), for tests and reads. */
int pg_pool_open_count(struct pg_pool *p);

/* How passwords reach the server: plain text, or a SCRAM-SHA-256 verifier
 * computed here (the clear password never reaches PostgreSQL). */
enum pg_pwauth { PG_PW_PASSWORD = 0, PG_PW_SCRAM = 1 };

/* SCRAM-SHA-256 verifier ("SCRAM-SHA-256$4096:salt$stored:server") of pw. */
int pg_scram_verifier(struct buf *out, const char *pw, struct verr *err);

/* Run each statement template of stmts (each may hold several statements)
 * with vars substituted, in one transaction. On error the transaction is
 * rolled back and err holds the server's message with the password scrubbed.
 * missing_ok: SQLSTATE 42704 (undefined object, e.g. "role does not exist")
 * counts as success. */
int pg_exec(struct pg_pool *p, const char *const *stmts, size_t n, const struct dbtmpl_vars *v,
	    bool missing_ok, struct verr *err);
/* Credential creation: pg_exec's contract (missing_ok false), but grouped
 * with the concurrent calls on the same pool into one transaction (group
 * commit, pg.c): each call's statements run under their own savepoint, so
 * one call's failing statement fails that call alone; a failed COMMIT
 * fails them all. Returns only after the COMMIT. Thread-safe. */
int pg_create(struct pg_pool *p, const char *const *stmts, size_t n, const struct dbtmpl_vars *v,
	      struct verr *err);
/* Vault's default revocation: NOLOGIN, REVOKE the role's privileges on its
 * schemas, tables, sequences, functions and the database, end its sessions
 * (pg_terminate_backend), DROP ROLE IF EXISTS. An absent role is revoked. */
int pg_revoke_default(struct pg_pool *p, const char *username, struct verr *err);
/* 1 if the role exists, 0 if not, <0 on error. */
int pg_role_exists(struct pg_pool *p, const char *username, struct verr *err);

#endif
