/*
 * database.c - the database secrets engine (type "database"): Vault's
 * database/ API over the PostgreSQL plugin (pg.c).
 *
 *   config/:name        connection configs (plugin, URL template, root
 *                       credentials, allowed roles, pool limits)
 *   reset/:name         drop the config's pool; the next use reconnects
 *   rotate-root/:name   new root password, set in PostgreSQL, never readable
 *   roles/:name         dynamic roles; creds/:name issues a user with a lease
 *   static-roles/:name  existing users whose password Coffer rotates;
 *   static-creds/:name  their current password; rotate-role/:name now
 *
 * DESIGN
 *   Storage (the mount's view): config/<name> (JSON, root password inside,
 *   encrypted by the barrier), role/<name>, static-role/<name> (current
 *   password inside). Nothing else: a lease carries everything its revoke
 *   and renew need (username, db_name, the role's revocation and renew
 *   statements, TTLs) in its internal data, so deleting or changing a role
 *   never orphans its leases. A revoke whose config is gone (or whose
 *   database is down) fails and the core retries it with backoff.
 *   Connections: `conns` caches one struct db_conn per config in use: its
 *   pool (pg.c) and the parsed settings requests need. Entries are
 *   reference counted; a config write, delete, reset, rotate-root or a
 *   storage invalidation unlinks the entry ("stale") and the last user frees
 *   it, so a request in flight keeps a consistent pool. `mu` guards the list
 *   and the counts only; SQL runs outside it.
 *   Rotation: `rot_mu` serialises root and static-role rotations (each is
 *   a read-modify-write of one storage entry around an ALTER ROLE). Static
 *   roles rotate from the periodic hook (active node only): whichever role's
 *   last_vault_rotation + rotation_period has passed, or whose
 *   rotation_schedule (util/cron) had a time since the last rotation that is
 *   less than rotation_window ago. Both are computed from the persisted last
 *   rotation, so they survive restarts and failover.
 *   Secrets: root passwords live in the pool's locked conninfo; generated
 *   passwords on the stack, wiped after use. Nothing here logs a password or
 *   a URL with a password; reads redact them.
 */
#include "secrets/secrets.h"

#include <fnmatch.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/database/database_int.h"
#include "util/cron.h"
#include "util/duration.h"
#include "util/passpolicy.h"
#include "util/timefmt.h"

#define PLUGIN_PG "postgresql-database-plugin"
#define PW_MAX (PASSPOLICY_MAX_LENGTH + 1)
#define MIN_ROTATION_PERIOD 5
#define MIN_ROTATION_WINDOW 3600

static const char DEFAULT_RENEW[] = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";
static const char DEFAULT_ROTATE[] = "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';";
static const char DEFAULT_ROOT_ROTATE[] = "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';";

struct db_conn {
	char *name;
	struct pg_pool *pool;
	int refs;
	bool stale;
	struct db_conn *next;
	json_t *allowed_roles;       /* array of strings (globs, "*") */
	char *username_template;     /* NULL: default */
	struct passpolicy *policy;   /* NULL: default */
	enum pg_pwauth pwauth;
};

struct db_backend {
	pthread_mutex_t mu; /* conns and their refs */
	struct db_conn *conns;
	pthread_mutex_t rot_mu;
	struct storage_view *view;
	const struct system_view *sys;
};

/* ---- small helpers ---- */

static json_t *strv_json(const json_t *v)
{
	/* statements: a string is one element (it may hold several
	 * statements; they are split at run time), an array stays */
	json_t *out = json_array();
	if (!v || json_is_null(v))
		return out;
	if (json_is_string(v)) {
		if (*json_string_value(v))
			json_array_append(out, (json_t *)v);
		return out;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!json_is_string(e)) {
				json_decref(out);
				return NULL;
			}
			json_array_append(out, e);
		}
		return out;
	}
	json_decref(out);
	return NULL;
}

/* borrowed C strings of a JSON string array */
static const char **strv_c(const json_t *arr, size_t *n)
{
	*n = json_array_size(arr);
	const char **v = calloc(*n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < *n; i++)
		v[i] = json_string_value(json_array_get(arr, i));
	return v;
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static char *key_of(const char *prefix, const char *name)
{
	size_t n = strlen(prefix) + strlen(name) + 1;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s%s", prefix, name);
	return k;
}

static int load(struct logical_request *req, const char *prefix, const char *name, json_t **out,
		struct verr *err)
{
	char *k = key_of(prefix, name);
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_get_json(req->storage, k, out, err);
	free(k);
	return rc;
}

static int store(struct logical_request *req, const char *prefix, const char *name,
		 const json_t *v, struct verr *err)
{
	char *k = key_of(prefix, name);
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_put_json(req->storage, k, v, err);
	free(k);
	return rc;
}

static int drop(struct logical_request *req, const char *prefix, const char *name,
		struct verr *err)
{
	char *k = key_of(prefix, name);
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_delete(req->storage, k, err);
	free(k);
	return rc == VERR_NOT_FOUND ? 0 : rc;
}

static int list_keys(struct logical_request *req, const char *prefix,
		     struct logical_response *resp, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, prefix, &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		if (arr && !strchr(keys[i], '/'))
			json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!json_array_size(arr)) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static bool role_allowed(const json_t *allowed, const char *role)
{
	size_t i;
	json_t *e;
	json_array_foreach(allowed, i, e) {
		const char *pat = json_string_value(e);
		if (pat && (!strcmp(pat, "*") || !strcmp(pat, role) || fnmatch(pat, role, 0) == 0))
			return true;
	}
	return false;
}

/* password_policy: the name of a policy of sys/policies/password (Vault),
 * read through the system view; policy HCL given inline is accepted too
 * (a value with '=' in it). */
static int parse_policy(struct passpolicy **out, const struct system_view *sv, const char *text,
			struct verr *err)
{
	*out = NULL;
	if (!text || !*text)
		return 0;
	if (strchr(text, '='))
		return passpolicy_parse(out, text, strlen(text), err);
	char *hcl = NULL;
	struct verr pe = {0};
	int rc = sysview_password_policy(sv, text, &hcl, &pe);
	if (rc)
		return verr_set(err, rc == VERR_NOT_FOUND || rc == VERR_UNSUPPORTED ? VERR_INVALID : rc,
				"password_policy \"%.64s\": %s", text, pe.msg);
	rc = passpolicy_parse(out, hcl, strlen(hcl), err);
	free(hcl);
	return rc;
}

/* ---- connection cache ---- */

static void conn_free(struct db_conn *c)
{
	if (!c)
		return;
	pg_pool_free(c->pool);
	json_decref(c->allowed_roles);
	free(c->username_template);
	passpolicy_free(c->policy);
	free(c->name);
	free(c);
}

/* Build a db_conn (pool not yet connected) from a stored config. */
static int conn_build(struct db_conn **out, const struct system_view *sv, const char *name,
		      const json_t *cfg, struct verr *err)
{
	*out = NULL;
	const json_t *cd = json_object_get(cfg, "connection_details");
	struct db_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	c->name = strdup(name);
	c->allowed_roles = json_incref(json_object_get(cfg, "allowed_roles"));
	if (!c->allowed_roles)
		c->allowed_roles = json_array();
	const char *ut = jstr(cd, "username_template");
	c->username_template = *ut ? strdup(ut) : NULL;
	c->pwauth = !strcmp(jstr(cd, "password_authentication"), "scram-sha-256") ? PG_PW_SCRAM
										   : PG_PW_PASSWORD;
	int rc = parse_policy(&c->policy, sv, jstr(cfg, "password_policy"), err);
	if (rc)
		goto out;
	struct buf ci;
	buf_init_secret(&ci, 256);
	dbtmpl_conninfo(&ci, jstr(cd, "connection_url"), jstr(cd, "username"), jstr(cd, "password"));
	char *conninfo = buf_take(&ci, NULL);
	if (!conninfo || !c->name) {
		free(conninfo);
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	struct pg_pool_opts po = {
		.max_open = (int)json_integer_value(json_object_get(cd, "max_open_connections")),
		.max_idle = (int)json_integer_value(json_object_get(cd, "max_idle_connections")),
		.max_lifetime = json_integer_value(json_object_get(cd, "max_connection_lifetime")),
	};
	rc = pg_pool_new(&c->pool, conninfo, &po, err);
	OPENSSL_cleanse(conninfo, strlen(conninfo));
	free(conninfo);
out:
	if (rc) {
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void conn_put(struct db_backend *b, struct db_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&b->mu);
	bool last = --c->refs == 0 && c->stale;
	pthread_mutex_unlock(&b->mu);
	if (last)
		conn_free(c);
}

/* Unlink the named entry; freed now or by its last user. */
static void conn_invalidate(struct db_backend *b, const char *name)
{
	struct db_conn *victim = NULL;
	pthread_mutex_lock(&b->mu);
	for (struct db_conn **pp = &b->conns; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->name, name)) {
			struct db_conn *c = *pp;
			*pp = c->next;
			c->stale = true;
			if (c->refs == 0)
				victim = c;
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
	conn_free(victim);
}

static struct db_conn *conn_find_locked(struct db_backend *b, const char *name)
{
	for (struct db_conn *c = b->conns; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* 1 when cfg's connection works with `password` (0 no, <0 undecided:
 * the database is unreachable for another reason). */
static int try_password(const struct system_view *sv, const char *name, json_t *cfg,
			const char *password)
{
	json_t *c2 = json_deep_copy(cfg);
	json_t *cd = json_object_get(c2, "connection_details");
	json_object_set_new(cd, "password", json_string(password));
	struct db_conn *c = NULL;
	struct verr e = {0};
	int rc = conn_build(&c, sv, name, c2, &e);
	if (!rc)
		rc = pg_pool_verify(c->pool, &e) ? (strstr(e.msg, "password authentication failed") ? 0 : -1) : 1;
	else
		rc = -1;
	conn_free(c);
	json_decref(c2);
	return rc;
}

/* A rotate-root was interrupted between storing the pending password and
 * storing it as the password: keep whichever PostgreSQL accepts. */
static void recover_root(struct db_backend *b, struct storage_view *view, const char *name,
			 json_t *cfg)
{
	json_t *cd = json_object_get(cfg, "connection_details");
	char *pending = strdup(jstr(cd, "password_pending"));
	if (!pending)
		return;
	int cur = try_password(b->sys, name, cfg, jstr(cd, "password"));
	int pend = cur == 0 ? try_password(b->sys, name, cfg, pending) : -1;
	if (cur == 1 || pend == 1) {
		if (pend == 1)
			json_object_set_new(cd, "password", json_string(pending));
		json_object_del(cd, "password_pending");
		char *k = key_of("config/", name);
		struct verr e = {0};
		if (!k || view_put_json(view, k, cfg, &e))
			sysview_log(b->sys, LOG_WARN, "config %s: resolving an interrupted root rotation failed: %s",
				    name, k ? e.msg : "out of memory");
		else
			sysview_log(b->sys, LOG_INFO, "config %s: an interrupted root rotation was %s", name,
				    pend == 1 ? "completed" : "dropped");
		free(k);
	}
	OPENSSL_cleanse(pending, strlen(pending));
	free(pending);
}

/* The cached connection for config `name` (loaded on first use), with a
 * reference; *cfg_out (optional) gets the stored config. VERR_NOT_FOUND
 * when there is no such config. */
static int conn_get(struct db_backend *b, struct storage_view *view, const char *name,
		    struct db_conn **out, struct verr *err)
{
	*out = NULL;
	pthread_mutex_lock(&b->mu);
	struct db_conn *c = conn_find_locked(b, name);
	if (c) {
		c->refs++;
		pthread_mutex_unlock(&b->mu);
		*out = c;
		return 0;
	}
	pthread_mutex_unlock(&b->mu);
	json_t *cfg = NULL;
	char *k = key_of("config/", name);
	int rc = k ? view_get_json(view, k, &cfg, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	free(k);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_NOT_FOUND, "database config \"%.64s\" not found", name);
	if (json_object_get(json_object_get(cfg, "connection_details"), "password_pending"))
		recover_root(b, view, name, cfg);
	struct db_conn *fresh = NULL;
	rc = conn_build(&fresh, b->sys, name, cfg, err);
	json_decref(cfg);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->mu);
	c = conn_find_locked(b, name);
	if (!c) {
		c = fresh;
		fresh = NULL;
		c->next = b->conns;
		b->conns = c;
	}
	c->refs++;
	pthread_mutex_unlock(&b->mu);
	conn_free(fresh);
	*out = c;
	return 0;
}

/* A password per the connection's policy into pw (PW_MAX), and the value
 * SQL receives for {{password}}: the password itself or its SCRAM
 * verifier (*sqlpw, secret buffer). */
/* The token's display name, as Vault's {{.DisplayName}}: "root",
 * "token", "userpass-alice"... */
static const char *display_name_of(const struct logical_request *req)
{
	if (req->display_name && *req->display_name)
		return req->display_name;
	return req->token_is_root ? "root" : "token";
}

static int new_password(const struct db_conn *c, char *pw, struct buf *sqlpw, struct verr *err)
{
	const struct passpolicy *pol = c && c->policy ? c->policy : passpolicy_default();
	int rc = passpolicy_generate(pol, pw, PW_MAX, err);
	if (rc)
		return rc;
	buf_init_secret(sqlpw, 256);
	if (c && c->pwauth == PG_PW_SCRAM)
		return pg_scram_verifier(sqlpw, pw, err);
	buf_str(sqlpw, pw);
	return 0;
}

/* ---- config/:name ---- */

static const struct field_def config_fields[] = {
	{"name", FT_STRING, NULL, "Name of this database connection.", true},
	{"plugin_name", FT_STRING, NULL, "The database plugin: postgresql-database-plugin.", false},
	{"plugin_version", FT_STRING, NULL, "Plugin version (only the built-in one exists).", false},
	{"verify_connection", FT_BOOL, "true", "Connect once before saving the config.", false},
	{"allowed_roles", FT_STRSLICE, NULL, "Roles allowed to use this connection; globs and \"*\".", false},
	{"root_rotation_statements", FT_ANY, NULL, "Statements that change the root password.", false},
	{"password_policy", FT_STRING, NULL, "Password policy (a sys/policies/password name, or HCL) for generated passwords.", false},
	{"connection_url", FT_STRING, NULL, "libpq URL or keyword string; {{username}}/{{password}} templated.", false},
	{"username", FT_STRING, NULL, "Root username for the connection URL.", false},
	{"password", FT_STRING, NULL, "Root password for the connection URL (never returned).", false},
	{"max_open_connections", FT_INT, NULL, "Maximum open connections (default 4).", false},
	{"max_idle_connections", FT_INT, NULL, "Maximum idle connections (0: max_open_connections).", false},
	{"max_connection_lifetime", FT_DURATION, NULL, "Maximum age of a reused connection (0: forever).", false},
	{"username_template", FT_STRING, NULL, "Template for generated usernames.", false},
	{"password_authentication", FT_STRING, NULL, "password (default) or scram-sha-256.", false},
	{"disable_escaping", FT_BOOL, NULL, "Accepted for compatibility; values are always escaped per quoting.", false},
	{NULL},
};

static int config_exists(struct logical_request *req, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = load(req, "config/", request_str(req, "name"), &cfg, err);
	if (rc)
		return rc;
	int ex = cfg != NULL;
	json_decref(cfg);
	return ex;
}

static bool url_has_literal_password(const char *url)
{
	char *red = dbtmpl_redact_url(url);
	bool lit = red && strcmp(red, url) != 0;
	free(red);
	return lit;
}

static int h_config_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	struct db_backend *b = req->backend;
	const char *name = request_str(req, "name");
	json_t *cfg = NULL;
	struct db_conn *probe = NULL;
	int rc = load(req, "config/", name, &cfg, err);
	if (rc)
		return rc;
	if (!cfg) {
		cfg = json_pack("{s:s,s:s,s:b,s:[],s:[],s:s,s:{}}", "plugin_name", "", "plugin_version",
				"", "verify_connection", 1, "allowed_roles",
				"root_credentials_rotate_statements", "password_policy", "",
				"connection_details");
		if (!cfg)
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	json_t *cd = json_object_get(cfg, "connection_details");

	if (request_has(req, "plugin_name"))
		json_object_set_new(cfg, "plugin_name", json_string(request_str(req, "plugin_name")));
	const char *plugin = jstr(cfg, "plugin_name");
	if (!*plugin) {
		rc = verr_set(err, VERR_INVALID, "empty plugin name: plugin_name is required");
		goto out;
	}
	if (strcmp(plugin, PLUGIN_PG) != 0) {
		rc = verr_set(err, VERR_INVALID,
			      "unknown plugin \"%.64s\": this server has only " PLUGIN_PG, plugin);
		goto out;
	}
	if (request_has(req, "plugin_version"))
		json_object_set_new(cfg, "plugin_version", json_string(request_str(req, "plugin_version")));
	if (request_has(req, "allowed_roles"))
		json_object_set(cfg, "allowed_roles", request_json(req, "allowed_roles"));
	if (request_has(req, "root_rotation_statements")) {
		json_t *st = strv_json(request_json(req, "root_rotation_statements"));
		if (!st) {
			rc = verr_set(err, VERR_INVALID,
				      "root_rotation_statements must be a string or a list of strings");
			goto out;
		}
		json_object_set_new(cfg, "root_credentials_rotate_statements", st);
	}
	if (request_has(req, "password_policy"))
		json_object_set_new(cfg, "password_policy", json_string(request_str(req, "password_policy")));
	bool verify = request_bool(req, "verify_connection");
	json_object_set_new(cfg, "verify_connection", json_boolean(verify));

	static const char *const strs[] = {"connection_url", "username", "password",
					   "username_template", "password_authentication"};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (request_has(req, strs[i]))
			json_object_set_new(cd, strs[i], json_string(request_str(req, strs[i])));
	if (request_has(req, "max_open_connections"))
		json_object_set_new(cd, "max_open_connections",
				    json_integer(request_int(req, "max_open_connections")));
	if (request_has(req, "max_idle_connections"))
		json_object_set_new(cd, "max_idle_connections",
				    json_integer(request_int(req, "max_idle_connections")));
	if (request_has(req, "max_connection_lifetime"))
		json_object_set_new(cd, "max_connection_lifetime",
				    json_integer(request_duration(req, "max_connection_lifetime")));
	if (!json_object_get(cd, "max_open_connections"))
		json_object_set_new(cd, "max_open_connections", json_integer(4));
	if (!json_object_get(cd, "max_idle_connections"))
		json_object_set_new(cd, "max_idle_connections", json_integer(0));
	if (!json_object_get(cd, "max_connection_lifetime"))
		json_object_set_new(cd, "max_connection_lifetime", json_integer(0));

	/* validate */
	const char *url = jstr(cd, "connection_url");
	if (!*url) {
		rc = verr_set(err, VERR_INVALID, "connection_url cannot be empty");
		goto out;
	}
	if (json_integer_value(json_object_get(cd, "max_open_connections")) <= 0) {
		rc = verr_set(err, VERR_INVALID, "max_open_connections must be at least 1");
		goto out;
	}
	if (json_integer_value(json_object_get(cd, "max_connection_lifetime")) < 0) {
		rc = verr_set(err, VERR_INVALID, "max_connection_lifetime must not be negative");
		goto out;
	}
	const char *pa = jstr(cd, "password_authentication");
	if (*pa && strcmp(pa, "password") != 0 && strcmp(pa, "scram-sha-256") != 0) {
		rc = verr_set(err, VERR_INVALID,
			      "password_authentication must be \"password\" or \"scram-sha-256\", not \"%.40s\"",
			      pa);
		goto out;
	}
	const char *ut = jstr(cd, "username_template");
	if (*ut && (rc = dbtmpl_username_check(ut, err)))
		goto out;
	if (strstr(url, "{{username}}") && !*jstr(cd, "username")) {
		rc = verr_set(err, VERR_INVALID,
			      "connection_url uses {{username}} but no username is configured");
		goto out;
	}
	if (url_has_literal_password(url))
		logical_response_warn(resp, "Password found in connection_url, use a templated url to "
					    "enable root rotation and prevent read access to password information.");

	rc = conn_build(&probe, req->sys, name, cfg, err); /* also validates password_policy */
	if (rc)
		goto out;
	if (verify) {
		struct verr ve = {0};
		if (pg_pool_verify(probe->pool, &ve)) {
			dbtmpl_scrub(ve.msg, jstr(cd, "password"));
			rc = verr_set(err, VERR_INVALID,
				      "error creating database object: error verifying connection: %s",
				      ve.msg);
			goto out;
		}
	}
	rc = store(req, "config/", name, cfg, err);
	if (rc)
		goto out;
	conn_invalidate(b, name);
	/* keep the verified pool (its connection is open already) */
	pthread_mutex_lock(&b->mu);
	if (!conn_find_locked(b, name)) {
		probe->next = b->conns;
		b->conns = probe;
		probe = NULL;
	}
	pthread_mutex_unlock(&b->mu);
out:
	conn_free(probe);
	json_decref(cfg);
	return rc;
}

static int h_config_read(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	json_t *cfg = NULL;
	int rc = load(req, "config/", request_str(req, "name"), &cfg, err);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *cd = json_deep_copy(json_object_get(cfg, "connection_details"));
	if (!cd)
		cd = json_object();
	json_object_del(cd, "password");
	json_object_del(cd, "password_pending");
	char *red = dbtmpl_redact_url(jstr(cd, "connection_url"));
	json_object_set_new(cd, "connection_url", json_string(red ? red : ""));
	free(red);
	char life[64];
	duration_format(life, sizeof(life),
			json_integer_value(json_object_get(cd, "max_connection_lifetime")));
	json_object_set_new(cd, "max_connection_lifetime", json_string(life));
	json_object_del(cfg, "connection_details");
	json_object_set_new(cfg, "connection_details", cd);
	resp->data = cfg;
	return 0;
}

static int h_config_delete(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	const char *name = request_str(req, "name");
	int rc = drop(req, "config/", name, err);
	if (!rc)
		conn_invalidate(req->backend, name);
	return rc;
}

static int h_config_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return list_keys(req, "config/", resp, err);
}

static int h_reset(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const char *name = request_str(req, "name");
	json_t *cfg = NULL;
	int rc = load(req, "config/", name, &cfg, err);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_INVALID, "database config \"%.64s\" not found", name);
	json_decref(cfg);
	conn_invalidate(req->backend, name);
	return 0;
}

static int h_rotate_root(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct db_backend *b = req->backend;
	const char *name = request_str(req, "name");
	char pw[PW_MAX];
	pw[0] = '\0';
	struct buf sqlpw = {0};
	struct db_conn *c = NULL;
	json_t *cfg = NULL;
	pthread_mutex_lock(&b->rot_mu);
	int rc = load(req, "config/", name, &cfg, err);
	if (rc)
		goto out;
	if (!cfg) {
		rc = verr_set(err, VERR_INVALID, "database config \"%.64s\" not found", name);
		goto out;
	}
	json_t *cd = json_object_get(cfg, "connection_details");
	const char *user = jstr(cd, "username");
	if (!*user) {
		rc = verr_set(err, VERR_INVALID, "unable to rotate root credentials: no username in configuration");
		goto out;
	}
	if (!*jstr(cd, "password")) {
		rc = verr_set(err, VERR_INVALID, "unable to rotate root credentials: no password in configuration");
		goto out;
	}
	if ((rc = conn_get(b, req->storage, name, &c, err)))
		goto out;
	if ((rc = new_password(c, pw, &sqlpw, err)))
		goto out;
	json_t *st = json_object_get(cfg, "root_credentials_rotate_statements");
	size_t n = 0;
	const char **v = NULL;
	const char *def[] = {DEFAULT_ROOT_ROTATE, NULL};
	if (json_array_size(st)) {
		v = strv_c(st, &n);
	} else {
		n = 1;
	}
	/* the new password is stored before PostgreSQL gets it: a crash
	 * between the two leaves both, and conn_get finds which one works */
	json_object_set_new(cd, "password_pending", json_string(pw));
	if ((rc = store(req, "config/", name, cfg, err))) {
		free(v);
		goto out;
	}
	struct dbtmpl_vars vars = {.name = user, .username = user, .password = sqlpw.p};
	rc = pg_exec(c->pool, v ? v : def, n, &vars, false, err);
	free(v);
	if (rc) {
		json_object_del(cd, "password_pending");
		struct verr se = {0};
		if (store(req, "config/", name, cfg, &se))
			sysview_log(req->sys, LOG_WARN, "rotate-root of %s failed and its pending password stays stored: %s",
				    name, se.msg);
		goto out;
	}
	json_object_set_new(cd, "password", json_string(pw));
	json_object_del(cd, "password_pending");
	rc = store(req, "config/", name, cfg, err);
	if (rc) {
		sysview_log(req->sys, LOG_ERROR,
			    "rotate-root of %s: the database accepted the new password but storing it failed: %s",
			    name, err ? err->msg : "");
		goto out;
	}
	conn_put(b, c);
	c = NULL;
	conn_invalidate(b, name);
out:
	pthread_mutex_unlock(&b->rot_mu);
	conn_put(b, c);
	OPENSSL_cleanse(pw, sizeof(pw));
	buf_free(&sqlpw);
	json_decref(cfg);
	return rc;
}

/* ---- roles/:name ---- */

static const struct field_def role_fields[] = {
	{"name", FT_STRING, NULL, "Name of the role.", true},
	{"db_name", FT_STRING, NULL, "Name of the database connection config.", false},
	{"default_ttl", FT_DURATION, NULL, "Default lease TTL (0: the mount's).", false},
	{"max_ttl", FT_DURATION, NULL, "Maximum lease TTL (0: the mount's).", false},
	{"creation_statements", FT_ANY, NULL, "Statements that create the user.", false},
	{"revocation_statements", FT_ANY, NULL, "Statements that remove the user.", false},
	{"rollback_statements", FT_ANY, NULL, "Statements run when creation fails.", false},
	{"renew_statements", FT_ANY, NULL, "Statements that extend the user's validity.", false},
	{"credential_type", FT_STRING, NULL, "Only \"password\".", false},
	{"credential_config", FT_MAP, NULL, "Credential options (unused for passwords).", false},
	{NULL},
};

static const char *const STMT_FIELDS[] = {"creation_statements", "revocation_statements",
					  "rollback_statements", "renew_statements"};

static int role_exists(struct logical_request *req, struct verr *err)
{
	json_t *r = NULL;
	int rc = load(req, "role/", request_str(req, "name"), &r, err);
	if (rc)
		return rc;
	int ex = r != NULL;
	json_decref(r);
	return ex;
}

static int check_credential_type(json_t *r, struct logical_request *req, struct verr *err)
{
	if (request_has(req, "credential_type"))
		json_object_set_new(r, "credential_type", json_string(request_str(req, "credential_type")));
	const char *ct = jstr(r, "credential_type");
	if (!*ct) {
		json_object_set_new(r, "credential_type", json_string("password"));
		return 0;
	}
	if (strcmp(ct, "password") != 0)
		return verr_set(err, VERR_INVALID,
				"credential_type \"%.40s\" is not supported by " PLUGIN_PG " (only \"password\")",
				ct);
	return 0;
}

static int h_role_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	const char *name = request_str(req, "name");
	json_t *r = NULL;
	int rc = load(req, "role/", name, &r, err);
	if (rc)
		return rc;
	if (!r)
		r = json_pack("{s:s,s:I,s:I,s:[],s:[],s:[],s:[],s:s}", "db_name", "", "default_ttl",
			      (json_int_t)0, "max_ttl", (json_int_t)0, "creation_statements",
			      "revocation_statements", "rollback_statements", "renew_statements",
			      "credential_type", "password");
	if (!r)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (request_has(req, "db_name"))
		json_object_set_new(r, "db_name", json_string(request_str(req, "db_name")));
	if (request_has(req, "default_ttl"))
		json_object_set_new(r, "default_ttl", json_integer(request_duration(req, "default_ttl")));
	if (request_has(req, "max_ttl"))
		json_object_set_new(r, "max_ttl", json_integer(request_duration(req, "max_ttl")));
	for (size_t i = 0; i < sizeof(STMT_FIELDS) / sizeof(STMT_FIELDS[0]); i++) {
		if (!request_has(req, STMT_FIELDS[i]))
			continue;
		json_t *st = strv_json(request_json(req, STMT_FIELDS[i]));
		if (!st) {
			rc = verr_set(err, VERR_INVALID, "%s must be a string or a list of strings",
				      STMT_FIELDS[i]);
			goto out;
		}
		json_object_set_new(r, STMT_FIELDS[i], st);
	}
	if ((rc = check_credential_type(r, req, err)))
		goto out;
	if (!*jstr(r, "db_name")) {
		rc = verr_set(err, VERR_INVALID, "empty database name attribute: db_name is required");
		goto out;
	}
	if (!json_array_size(json_object_get(r, "creation_statements"))) {
		rc = verr_set(err, VERR_INVALID, "empty creation statements: creation_statements is required");
		goto out;
	}
	int64_t def = json_integer_value(json_object_get(r, "default_ttl"));
	int64_t max = json_integer_value(json_object_get(r, "max_ttl"));
	if (def < 0 || max < 0) {
		rc = verr_set(err, VERR_INVALID, "default_ttl and max_ttl must not be negative");
		goto out;
	}
	if (max > 0 && def > max) {
		rc = verr_set(err, VERR_INVALID, "default_ttl cannot be greater than max_ttl");
		goto out;
	}
	rc = store(req, "role/", name, r, err);
out:
	json_decref(r);
	return rc;
}

static int h_role_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	json_t *r = NULL;
	int rc = load(req, "role/", request_str(req, "name"), &r, err);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	if (!json_object_get(r, "credential_config"))
		json_object_set_new(r, "credential_config", json_object());
	resp->data = r;
	return 0;
}

static int h_role_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return drop(req, "role/", request_str(req, "name"), err);
}

static int h_role_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return list_keys(req, "role/", resp, err);
}

/* ---- creds/:name ---- */

static int64_t min_pos(int64_t a, int64_t b)
{
	if (a <= 0)
		return b;
	if (b <= 0)
		return a;
	return a < b ? a : b;
}

/* arr's statements (or fallback) in one transaction; create: grouped with
 * the concurrent creations on the same config (pg_create). */
static int run_stmts(struct db_conn *c, const json_t *arr, const char *fallback,
		     const struct dbtmpl_vars *vars, bool missing_ok, bool create, struct verr *err)
{
	size_t n = 0;
	const char **v = NULL;
	const char *def[] = {fallback, NULL};
	if (json_array_size(arr)) {
		v = strv_c(arr, &n);
		if (!v)
			return verr_set(err, VERR_INTERNAL, "out of memory");
	} else {
		n = 1;
	}
	int rc = create ? pg_create(c->pool, v ? v : def, n, vars, err)
			: pg_exec(c->pool, v ? v : def, n, vars, missing_ok, err);
	free(v);
	return rc;
}

static int h_creds(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	struct db_backend *b = req->backend;
	const char *role = request_str(req, "name");
	json_t *r = NULL;
	struct db_conn *c = NULL;
	char *username = NULL;
	char pw[PW_MAX];
	pw[0] = '\0';
	struct buf sqlpw = {0};
	int rc = load(req, "role/", role, &r, err);
	if (rc)
		goto out;
	if (!r) {
		rc = verr_set(err, VERR_INVALID, "unknown role: %.64s", role);
		goto out;
	}
	const char *db = jstr(r, "db_name");
	rc = conn_get(b, req->storage, db, &c, err);
	if (rc == VERR_NOT_FOUND)
		rc = verr_set(err, VERR_INVALID, "database config \"%.64s\" of role \"%.64s\" not found",
			      db, role);
	if (rc)
		goto out;
	if (!role_allowed(c->allowed_roles, role)) {
		rc = verr_set(err, VERR_INVALID, "\"%.64s\" is not an allowed role", role);
		goto out;
	}
	int64_t now = sysview_now(req->sys);
	int64_t max = min_pos(json_integer_value(json_object_get(r, "max_ttl")),
			      sysview_max_lease_ttl(req->sys));
	int64_t ttl = json_integer_value(json_object_get(r, "default_ttl"));
	if (ttl <= 0)
		ttl = sysview_default_lease_ttl(req->sys);
	ttl = min_pos(ttl, max);
	char exp[DBTMPL_EXPIRATION_MAX];
	dbtmpl_expiration(exp, now + ttl);
	rc = dbtmpl_username(&username, c->username_template, display_name_of(req),
			     role, sysview_now_ms(req->sys), err);
	if (rc)
		goto out;
	if ((rc = new_password(c, pw, &sqlpw, err)))
		goto out;
	struct dbtmpl_vars vars = {.name = username, .username = username, .password = sqlpw.p,
				   .expiration = exp};
	rc = run_stmts(c, json_object_get(r, "creation_statements"), NULL, &vars, false, true, err);
	if (rc) {
		json_t *rb = json_object_get(r, "rollback_statements");
		if (json_array_size(rb)) {
			struct verr re = {0};
			if (run_stmts(c, rb, NULL, &vars, true, false, &re))
				sysview_log(req->sys, LOG_WARN, "rollback statements of role %s failed: %s",
					    role, re.msg);
		}
		goto out;
	}
	resp->data = json_pack("{s:s,s:s}", "username", username, "password", pw);
	resp->secret = calloc(1, sizeof(*resp->secret));
	if (!resp->data || !resp->secret) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	resp->secret->ttl = ttl;
	resp->secret->max_ttl = json_integer_value(json_object_get(r, "max_ttl"));
	resp->secret->renewable = true;
	resp->secret->internal = json_pack(
		"{s:s,s:s,s:s,s:O,s:O,s:I,s:I}", "username", username, "role", role, "db_name", db,
		"revocation_statements", json_object_get(r, "revocation_statements"),
		"renew_statements", json_object_get(r, "renew_statements"), "default_ttl",
		json_object_get(r, "default_ttl") ? json_integer_value(json_object_get(r, "default_ttl")) : 0,
		"max_ttl", (json_int_t)json_integer_value(json_object_get(r, "max_ttl")));
	if (!resp->secret->internal)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	buf_free(&sqlpw);
	free(username);
	conn_put(b, c);
	json_decref(r);
	return rc;
}

/* ---- lease callbacks ---- */

static int lease_conn(struct logical_request *req, struct db_conn **out, struct verr *err)
{
	const char *db = jstr(req->secret_internal, "db_name");
	int rc = conn_get(req->backend, req->storage, db, out, err);
	if (rc == VERR_NOT_FOUND)
		rc = verr_set(err, VERR_INTERNAL,
			      "database config \"%.64s\" of this lease no longer exists; recreate it to finish",
			      db);
	return rc;
}

static int db_revoke(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	const char *user = jstr(req->secret_internal, "username");
	if (!*user)
		return verr_set(err, VERR_INTERNAL, "lease has no username");
	struct db_conn *c = NULL;
	int rc = lease_conn(req, &c, err);
	if (rc)
		return rc;
	json_t *st = json_object_get(req->secret_internal, "revocation_statements");
	if (json_array_size(st)) {
		struct dbtmpl_vars vars = {.name = user, .username = user};
		rc = run_stmts(c, st, NULL, &vars, true, false, err);
	} else {
		rc = pg_revoke_default(c->pool, user, err);
	}
	conn_put(req->backend, c);
	return rc;
}

static int db_renew(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const json_t *in = req->secret_internal;
	const char *user = jstr(in, "username");
	int64_t now = sysview_now(req->sys);
	int64_t ttl = req->lease_increment > 0 ? req->lease_increment
					       : json_integer_value(json_object_get(in, "default_ttl"));
	if (ttl <= 0)
		ttl = sysview_default_lease_ttl(req->sys);
	int64_t max = min_pos(json_integer_value(json_object_get(in, "max_ttl")),
			      sysview_max_lease_ttl(req->sys));
	if (max > 0 && req->lease_issue_time > 0 && now + ttl > req->lease_issue_time + max)
		ttl = req->lease_issue_time + max - now;
	if (ttl <= 0)
		return verr_set(err, VERR_INVALID, "past the max TTL, cannot renew");
	struct db_conn *c = NULL;
	int rc = lease_conn(req, &c, err);
	if (rc)
		return rc;
	char exp[DBTMPL_EXPIRATION_MAX];
	dbtmpl_expiration(exp, now + ttl);
	struct dbtmpl_vars vars = {.name = user, .username = user, .expiration = exp};
	rc = run_stmts(c, json_object_get(in, "renew_statements"), DEFAULT_RENEW, &vars, false, false, err);
	conn_put(req->backend, c);
	if (rc)
		return rc;
	resp->secret = calloc(1, sizeof(*resp->secret));
	if (!resp->secret)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	resp->secret->ttl = ttl;
	resp->secret->renewable = true;
	return 0;
}

/* ---- static roles ---- */

static const struct field_def static_role_fields[] = {
	{"name", FT_STRING, NULL, "Name of the static role.", true},
	{"db_name", FT_STRING, NULL, "Name of the database connection config.", false},
	{"username", FT_STRING, NULL, "The existing database user this role manages.", false},
	{"rotation_period", FT_DURATION, NULL, "How often the password is rotated (>= 5s).", false},
	{"rotation_schedule", FT_STRING, NULL,
	 "Cron schedule (minute hour day-of-month month day-of-week, UTC).", false},
	{"rotation_window", FT_DURATION, NULL,
	 "How long after a scheduled time a rotation may still run (>= 1h; schedule only).", false},
	{"rotation_statements", FT_ANY, NULL, "Statements that set the password.", false},
	{"credential_type", FT_STRING, NULL, "Only \"password\".", false},
	{"credential_config", FT_MAP, NULL, "Credential options (unused for passwords).", false},
	{NULL},
};

static int static_exists(struct logical_request *req, struct verr *err)
{
	json_t *r = NULL;
	int rc = load(req, "static-role/", request_str(req, "name"), &r, err);
	if (rc)
		return rc;
	int ex = r != NULL;
	json_decref(r);
	return ex;
}

/* Rotate one static role's password now: ALTER in the database, then the
 * entry (password, last_vault_rotation) in storage. Caller holds rot_mu. */
static int static_rotate_locked(struct db_backend *b, struct storage_view *view,
				const struct system_view *sys, const char *name, json_t *r,
				struct verr *err)
{
	struct db_conn *c = NULL;
	char pw[PW_MAX];
	pw[0] = '\0';
	struct buf sqlpw = {0};
	const char *db = jstr(r, "db_name");
	int rc = conn_get(b, view, db, &c, err);
	if (rc == VERR_NOT_FOUND)
		rc = verr_set(err, VERR_INVALID, "database config \"%.64s\" not found", db);
	if (rc)
		goto out;
	if ((rc = new_password(c, pw, &sqlpw, err)))
		goto out;
	const char *user = jstr(r, "username");
	struct dbtmpl_vars vars = {.name = user, .username = user, .password = sqlpw.p};
	rc = run_stmts(c, json_object_get(r, "rotation_statements"), DEFAULT_ROTATE, &vars, false, false, err);
	if (rc)
		goto out;
	json_object_set_new(r, "password", json_string(pw));
	json_object_set_new(r, "last_vault_rotation_ms", json_integer(sysview_now_ms(sys)));
	char *k = key_of("static-role/", name);
	rc = k ? view_put_json(view, k, r, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	free(k);
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	buf_free(&sqlpw);
	conn_put(b, c);
	return rc;
}

/* The rotation settings of a static-role write, checked as Vault checks
 * them: rotation_period and rotation_schedule exclude each other, a window
 * needs a schedule. */
static int apply_rotation_fields(struct logical_request *req, json_t *r, bool create,
				 struct verr *err)
{
	bool has_sched = request_has(req, "rotation_schedule") &&
			 *request_str(req, "rotation_schedule");
	bool has_period = request_has(req, "rotation_period");
	bool has_window = request_has(req, "rotation_window");
	if (has_sched && has_period)
		return verr_set(err, VERR_INVALID,
				"mutually exclusive fields rotation_period and rotation_schedule were "
				"both specified; only one of them can be provided");
	if (create && !has_sched && !has_period)
		return verr_set(err, VERR_INVALID,
				"one of rotation_schedule or rotation_period must be provided to create "
				"a static account");
	if (has_period) {
		if (has_window)
			return verr_set(err, VERR_INVALID,
					"rotation_window is invalid with use of rotation_period");
		json_object_set_new(r, "rotation_period",
				    json_integer(request_duration(req, "rotation_period")));
		json_object_set_new(r, "rotation_schedule", json_string(""));
		json_object_set_new(r, "rotation_window", json_integer(0));
	}
	if (has_sched) {
		struct cron c;
		char msg[160];
		const char *spec = request_str(req, "rotation_schedule");
		if (cron_parse(&c, spec, msg, sizeof(msg)))
			return verr_set(err, VERR_INVALID, "could not parse rotation_schedule: %s", msg);
		json_object_set_new(r, "rotation_schedule", json_string(spec));
		json_object_set_new(r, "rotation_period", json_integer(0));
		if (!has_window)
			json_object_set_new(r, "rotation_window", json_integer(0));
	}
	if (has_window) {
		if (!*jstr(r, "rotation_schedule"))
			return verr_set(err, VERR_INVALID,
					"rotation_window is invalid with use of rotation_period");
		int64_t w = request_duration(req, "rotation_window");
		if (w < MIN_ROTATION_WINDOW)
			return verr_set(err, VERR_INVALID,
					"rotation_window is invalid: rotation_window must be %d seconds "
					"or more",
					MIN_ROTATION_WINDOW);
		json_object_set_new(r, "rotation_window", json_integer(w));
	}
	return 0;
}

/* The next rotation of a static role after unix second now (period: the
 * last rotation + the period; schedule: the next scheduled time), or -1. */
static int64_t next_rotation(const json_t *r, int64_t now)
{
	const char *spec = jstr(r, "rotation_schedule");
	if (*spec) {
		struct cron c;
		char msg[8];
		return cron_parse(&c, spec, msg, sizeof(msg)) ? -1 : cron_next(&c, now);
	}
	int64_t ms = json_integer_value(json_object_get(r, "last_vault_rotation_ms"));
	int64_t period = json_integer_value(json_object_get(r, "rotation_period"));
	return period > 0 ? ms / 1000 + period : -1;
}

/* Is a static role due for rotation at now_ms? A schedule is due when a
 * scheduled time has passed since the last rotation and the latest such time
 * is less than rotation_window ago (no window: any time before the next). */
static bool rotation_due(const json_t *r, int64_t now_ms)
{
	int64_t last_ms = json_integer_value(json_object_get(r, "last_vault_rotation_ms"));
	const char *spec = jstr(r, "rotation_schedule");
	if (!*spec) {
		int64_t period = json_integer_value(json_object_get(r, "rotation_period"));
		return period > 0 && now_ms >= last_ms + period * 1000;
	}
	struct cron c;
	char msg[8];
	if (cron_parse(&c, spec, msg, sizeof(msg)))
		return false;
	int64_t now = now_ms / 1000;
	int64_t slot = cron_next(&c, last_ms / 1000);
	if (slot < 0 || slot > now)
		return false;
	for (int guard = 0; guard < 100000; guard++) { /* the latest slot <= now */
		int64_t n = cron_next(&c, slot);
		if (n < 0 || n > now)
			break;
		slot = n;
	}
	int64_t window = json_integer_value(json_object_get(r, "rotation_window"));
	return window <= 0 || now < slot + window;
}

static int h_static_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	struct db_backend *b = req->backend;
	const char *name = request_str(req, "name");
	json_t *r = NULL;
	struct db_conn *c = NULL;
	pthread_mutex_lock(&b->rot_mu);
	int rc = load(req, "static-role/", name, &r, err);
	if (rc)
		goto out;
	bool create = r == NULL;
	if (create)
		r = json_pack("{s:s,s:s,s:I,s:s,s:I,s:[],s:s}", "db_name", "", "username", "",
			      "rotation_period", (json_int_t)0, "rotation_schedule", "",
			      "rotation_window", (json_int_t)0, "rotation_statements",
			      "credential_type", "password");
	if (!r) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = apply_rotation_fields(req, r, create, err)))
		goto out;
	if (request_has(req, "username")) {
		const char *u = request_str(req, "username");
		if (!create && strcmp(u, jstr(r, "username")) != 0) {
			rc = verr_set(err, VERR_INVALID, "cannot update static account username");
			goto out;
		}
		json_object_set_new(r, "username", json_string(u));
	}
	if (request_has(req, "db_name"))
		json_object_set_new(r, "db_name", json_string(request_str(req, "db_name")));
	if (request_has(req, "rotation_statements")) {
		json_t *st = strv_json(request_json(req, "rotation_statements"));
		if (!st) {
			rc = verr_set(err, VERR_INVALID,
				      "rotation_statements must be a string or a list of strings");
			goto out;
		}
		json_object_set_new(r, "rotation_statements", st);
	}
	if ((rc = check_credential_type(r, req, err)))
		goto out;
	if (!*jstr(r, "username")) {
		rc = verr_set(err, VERR_INVALID, "username is a required field to create a static account");
		goto out;
	}
	const char *db = jstr(r, "db_name");
	if (!*db) {
		rc = verr_set(err, VERR_INVALID, "empty database name attribute: db_name is required");
		goto out;
	}
	if (!*jstr(r, "rotation_schedule") &&
	    json_integer_value(json_object_get(r, "rotation_period")) < MIN_ROTATION_PERIOD) {
		rc = verr_set(err, VERR_INVALID, "rotation_period must be %d seconds or more",
			      MIN_ROTATION_PERIOD);
		goto out;
	}
	rc = conn_get(b, req->storage, db, &c, err);
	if (rc == VERR_NOT_FOUND)
		rc = verr_set(err, VERR_INVALID, "database config \"%.64s\" not found", db);
	if (rc)
		goto out;
	if (!role_allowed(c->allowed_roles, name)) {
		rc = verr_set(err, VERR_INVALID, "\"%.64s\" is not an allowed role", name);
		goto out;
	}
	rc = pg_role_exists(c->pool, jstr(r, "username"), err);
	if (rc == 0)
		rc = verr_set(err, VERR_INVALID, "database user \"%.64s\" does not exist",
			      jstr(r, "username"));
	if (rc < 0)
		goto out;
	if (create) /* the password Coffer hands out is one only it knows */
		rc = static_rotate_locked(b, req->storage, req->sys, name, r, err);
	else
		rc = store(req, "static-role/", name, r, err);
out:
	pthread_mutex_unlock(&b->rot_mu);
	conn_put(b, c);
	json_decref(r);
	return rc;
}

static void rotation_times(const json_t *r, int64_t now_ms, char last[TIMEFMT_MAX],
			   int64_t *ttl)
{
	int64_t ms = json_integer_value(json_object_get(r, "last_vault_rotation_ms"));
	timefmt_rfc3339(last, ms / 1000, (long)(ms % 1000) * 1000000L, TIMEFMT_NANO);
	int64_t next = next_rotation(r, now_ms / 1000);
	int64_t left = next < 0 ? 0 : next - now_ms / 1000;
	*ttl = left > 0 ? left : 0;
}

/* rotation_period, or rotation_schedule (+ rotation_window when set), as
 * Vault's static role and static-creds reads show them. */
static void rotation_fields(json_t *out, const json_t *r)
{
	const char *spec = jstr(r, "rotation_schedule");
	if (!*spec) {
		json_object_set(out, "rotation_period", json_object_get(r, "rotation_period"));
		return;
	}
	json_object_set_new(out, "rotation_schedule", json_string(spec));
	json_int_t w = json_integer_value(json_object_get(r, "rotation_window"));
	if (w > 0)
		json_object_set_new(out, "rotation_window", json_integer(w));
}

static int h_static_read(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	json_t *r = NULL;
	int rc = load(req, "static-role/", request_str(req, "name"), &r, err);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	char last[TIMEFMT_MAX];
	int64_t ttl;
	rotation_times(r, sysview_now_ms(req->sys), last, &ttl);
	resp->data = json_pack("{s:s,s:s,s:O,s:s,s:s,s:I,s:o}", "db_name", jstr(r, "db_name"),
			       "username", jstr(r, "username"), "rotation_statements",
			       json_object_get(r, "rotation_statements"), "credential_type",
			       jstr(r, "credential_type"), "last_vault_rotation", last, "ttl",
			       (json_int_t)ttl, "credential_config", json_object());
	if (resp->data)
		rotation_fields(resp->data, r);
	json_decref(r);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_static_delete(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return drop(req, "static-role/", request_str(req, "name"), err);
}

static int h_static_list(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return list_keys(req, "static-role/", resp, err);
}

static int h_static_creds(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	const char *name = request_str(req, "name");
	json_t *r = NULL;
	int rc = load(req, "static-role/", name, &r, err);
	if (rc)
		return rc;
	if (!r)
		return verr_set(err, VERR_INVALID, "unknown role: %.64s", name);
	char last[TIMEFMT_MAX];
	int64_t ttl;
	rotation_times(r, sysview_now_ms(req->sys), last, &ttl);
	resp->data = json_pack("{s:s,s:s,s:s,s:I}", "username", jstr(r, "username"), "password",
			       jstr(r, "password"), "last_vault_rotation", last, "ttl",
			       (json_int_t)ttl);
	if (resp->data)
		rotation_fields(resp->data, r);
	json_decref(r);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_rotate_role(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct db_backend *b = req->backend;
	const char *name = request_str(req, "name");
	json_t *r = NULL;
	pthread_mutex_lock(&b->rot_mu);
	int rc = load(req, "static-role/", name, &r, err);
	if (!rc && !r)
		rc = verr_set(err, VERR_INVALID, "no static role found for role name \"%.64s\"", name);
	if (!rc)
		rc = static_rotate_locked(b, req->storage, req->sys, name, r, err);
	pthread_mutex_unlock(&b->rot_mu);
	json_decref(r);
	return rc;
}

/* Periodic hook: rotate every static role whose period has passed. */
static int db_periodic(void *inst, struct verr *err)
{
	struct db_backend *b = inst;
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(b->view, "static-role/", &keys, &n, err);
	if (rc)
		return rc == VERR_NOT_FOUND ? 0 : rc;
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (strchr(keys[i], '/'))
			continue;
		pthread_mutex_lock(&b->rot_mu);
		json_t *r = NULL;
		char *k = key_of("static-role/", keys[i]);
		struct verr e = {0};
		if (k && view_get_json(b->view, k, &r, &e) == 0 && r) {
			if (rotation_due(r, sysview_now_ms(b->sys)) &&
			    static_rotate_locked(b, b->view, b->sys, keys[i], r, &e)) {
				sysview_log(b->sys, LOG_WARN, "rotation of static role %s failed: %s",
					    keys[i], e.msg);
				failed++;
			}
		}
		json_decref(r);
		free(k);
		pthread_mutex_unlock(&b->rot_mu);
	}
	physical_list_free(keys, n);
	if (failed)
		return verr_set(err, VERR_INTERNAL, "%d static role rotation(s) failed", failed);
	return 0;
}

/* ---- paths and instance ---- */

static const struct field_def name_field[] = {
	{"name", FT_STRING, NULL, "Name.", true},
	{NULL},
};

static const struct path_def db_paths[] = {
	{.pattern = "config/?", .ops = {{LOP_LIST, h_config_list}}, .help = "List connections."},
	{.pattern = "config/{name}",
	 .fields = config_fields,
	 .ops = {{LOP_CREATE, h_config_write},
		 {LOP_UPDATE, h_config_write},
		 {LOP_READ, h_config_read},
		 {LOP_DELETE, h_config_delete}},
	 .exists = config_exists,
	 .help = "Configure a database connection (the password is never returned)."},
	{.pattern = "reset/{name}",
	 .fields = name_field,
	 .ops = {{LOP_UPDATE, h_reset}},
	 .help = "Close the connection's pool; the next use reconnects with the stored config."},
	{.pattern = "rotate-root/{name}",
	 .fields = name_field,
	 .ops = {{LOP_UPDATE, h_rotate_root}},
	 .help = "Rotate the root password; the new one is never readable."},
	{.pattern = "roles/?", .ops = {{LOP_LIST, h_role_list}}, .help = "List roles."},
	{.pattern = "roles/{name}",
	 .fields = role_fields,
	 .ops = {{LOP_CREATE, h_role_write},
		 {LOP_UPDATE, h_role_write},
		 {LOP_READ, h_role_read},
		 {LOP_DELETE, h_role_delete}},
	 .exists = role_exists,
	 .help = "Manage dynamic roles."},
	{.pattern = "creds/{name}",
	 .fields = name_field,
	 .ops = {{LOP_READ, h_creds}},
	 .help = "Create a database user for the role, with a lease."},
	{.pattern = "static-roles/?", .ops = {{LOP_LIST, h_static_list}}, .help = "List static roles."},
	{.pattern = "static-roles/{name}",
	 .fields = static_role_fields,
	 .ops = {{LOP_CREATE, h_static_write},
		 {LOP_UPDATE, h_static_write},
		 {LOP_READ, h_static_read},
		 {LOP_DELETE, h_static_delete}},
	 .exists = static_exists,
	 .help = "Manage static roles (existing users whose password is rotated)."},
	{.pattern = "static-creds/{name}",
	 .fields = name_field,
	 .ops = {{LOP_READ, h_static_creds}},
	 .help = "Read a static role's current credentials."},
	{.pattern = "rotate-role/{name}",
	 .fields = name_field,
	 .ops = {{LOP_UPDATE, h_rotate_role}},
	 .help = "Rotate a static role's password now."},
	{NULL},
};

static const struct path_def *db_paths_fn(void *inst)
{
	(void)inst;
	return db_paths;
}

static int db_init(void **out, const struct mount_info *mi, struct verr *err)
{
	struct db_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&b->mu, NULL);
	pthread_mutex_init(&b->rot_mu, NULL);
	b->view = mi->storage;
	b->sys = mi->sys;
	*out = b;
	return 0;
}

static void db_cleanup(void *inst)
{
	struct db_backend *b = inst;
	if (!b)
		return;
	for (struct db_conn *c = b->conns, *n; c; c = n) {
		n = c->next;
		conn_free(c);
	}
	pthread_mutex_destroy(&b->mu);
	pthread_mutex_destroy(&b->rot_mu);
	free(b);
}

static void db_invalidate(void *inst, const char *key)
{
	if (!strncmp(key, "config/", 7))
		conn_invalidate(inst, key + 7);
}

const struct backend_ops database_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "database",
	.init = db_init,
	.cleanup = db_cleanup,
	.paths = db_paths_fn,
	.revoke = db_revoke,
	.renew = db_renew,
	.periodic = db_periodic,
	.invalidate = db_invalidate,
};
