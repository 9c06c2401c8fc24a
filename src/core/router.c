/*
 * router.c - the mount tables and the router (router.h).
 *
 * Routing is a longest-prefix scan (tens of mounts) under the table's read
 * lock that takes a reference on the entry, so a request keeps its mount
 * alive even if it is disabled meanwhile. Default mounts: sys/ (system),
 * cubbyhole/ (cubbyhole), auth/token/ (token). Each entry carries the
 * system view its backend sees (clock, TTLs, standby, random, logger).
 */
#include "core/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sys.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/rand.h"

#define DEFAULT_TTL (768 * 3600)

int64_t router_server_default_ttl(const struct core *c)
{
	int64_t d = c->o.default_lease_ttl > 0 ? c->o.default_lease_ttl : DEFAULT_TTL;
	int64_t m = router_server_max_ttl(c);
	return d < m ? d : m;
}

int64_t router_server_max_ttl(const struct core *c)
{
	return c->o.max_lease_ttl > 0 ? c->o.max_lease_ttl : DEFAULT_TTL;
}

/* ---- the system view of a mount (logical/system_view.h) ---- */

static int64_t sv_now_ms(void *ctx)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t sv_default_ttl(void *ctx)
{
	const struct mount_entry *m = ctx;
	int64_t d = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	return d > 0 ? d : router_server_default_ttl(m->core);
}

static int64_t sv_max_ttl(void *ctx)
{
	const struct mount_entry *m = ctx;
	int64_t x = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	return x > 0 ? x : router_server_max_ttl(m->core);
}

static bool sv_standby(void *ctx)
{
	const struct mount_entry *m = ctx;
	return atomic_load(&m->core->state) != CORE_ACTIVE;
}

static int sv_random(void *ctx, uint8_t *buf, size_t n, struct verr *err)
{
	return rand_bytes(buf, n, err);
}

static void sv_log(void *ctx, enum log_level lvl, const char *msg)
{
	const struct mount_entry *m = ctx;
	log_msg(lvl, m->type, "%s: %s", m->path, msg);
}

static int sv_password_policy(void *ctx, const char *name, char **hcl, struct verr *err)
{
	const struct mount_entry *m = ctx;
	return sys_password_policy_text(m->core, name, hcl, err);
}

static const struct system_view_ops mount_sysview_ops = {
	.password_policy = sv_password_policy,
	.now_ms = sv_now_ms,
	.default_lease_ttl = sv_default_ttl,
	.max_lease_ttl = sv_max_ttl,
	.standby = sv_standby,
	.random_bytes = sv_random,
	.log = sv_log,
};

static const char *const protected_types[] = {"system", "token", "cubbyhole", "identity", NULL};

static void mount_free(struct mount_entry *m)
{
	if (!m)
		return;
	if (m->ops && m->ops->cleanup && m->inst)
		m->ops->cleanup(m->inst);
	free(m->path);
	free(m->type);
	free(m->description);
	free(m->uuid);
	free(m->accessor);
	json_decref(m->config);
	json_decref(m->options);
	free(m);
}

void router_release(struct mount_entry *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		mount_free(m);
}

static const struct backend_ops *backend_type(struct core *c, const char *type)
{
	if (!strcmp(type, "system"))
		return &sys_backend_ops;
	for (const struct backend_ops *const *b = c->o.backends; b && *b; b++)
		if (!strcmp((*b)->type, type))
			return *b;
	return NULL;
}

static json_t *mount_config_json(const struct mount_entry *m)
{
	json_t *cfg = json_object();
	json_int_t dl = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	json_int_t ml = json_integer_value(json_object_get(m->config, "max_lease_ttl"));
	json_object_set_new(cfg, "default_lease_ttl", json_integer(dl));
	json_object_set_new(cfg, "max_lease_ttl", json_integer(ml));
	json_object_set_new(cfg, "force_no_cache", json_false());
	const char *keys[] = {"audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
			      "listing_visibility", "passthrough_request_headers",
			      "allowed_response_headers", "token_type", NULL};
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(m->config, keys[i]);
		if (v)
			json_object_set(cfg, keys[i], v);
	}
	if (m->is_auth && !json_object_get(cfg, "token_type"))
		json_object_set_new(cfg, "token_type", json_string("default-service"));
	return cfg;
}

json_t *router_mount_json(const struct mount_entry *m)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:O?,s:b,s:b,s:b,s:s,s:s,s:s}", "type", m->type,
			      "description", m->description ? m->description : "", "accessor",
			      m->accessor, "uuid", m->uuid, "config", mount_config_json(m), "options",
			      json_object_size(m->options) ? m->options : NULL, "local", m->local,
			      "seal_wrap", m->seal_wrap, "external_entropy_access", 0,
			      "plugin_version", "", "running_plugin_version", "",
			      "running_sha256", "");
	if (o && !json_object_size(m->options))
		json_object_set_new(o, "options", json_null());
	return o;
}

static json_t *mount_storage_json(const struct mount_entry *m)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:O,s:b,s:b,s:I}", "path", m->path, "type",
			 m->type, "description", m->description ? m->description : "", "uuid",
			 m->uuid, "accessor", m->accessor, "config", m->config, "options", m->options,
			 "local", m->local, "seal_wrap", m->seal_wrap, "created",
			 (json_int_t)m->created);
}

static int persist(struct core *c, bool is_auth, struct verr *err)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < c->nmounts; i++) {
		struct mount_entry *m = c->mounts[i];
		if (m->is_auth == is_auth)
			json_array_append_new(arr, mount_storage_json(m));
	}
	struct storage_view v;
	storage_view_init(&v, c->bphys, "core/");
	json_t *doc = json_pack("{s:o}", "entries", arr);
	int rc = view_put_json(&v, is_auth ? "auth" : "mounts", doc, err);
	json_decref(doc);
	return rc;
}

static char *accessor_for(const char *type)
{
	char rnd[9];
	if (rand_base62(rnd, 8, NULL))
		return NULL;
	for (char *p = rnd; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	size_t n = strlen(type) + 10;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s_%s", type, rnd);
	return s;
}

/* The core's own backends reach the core (sys) or the token store (token)
 * through mount_info.core_private; engines get NULL there. */
static void *core_private(struct core *c, const struct mount_entry *m)
{
	if (!strcmp(m->type, "system"))
		return c;
	if (!strcmp(m->type, "token"))
		return c->tokens;
	return NULL;
}

static int backend_init(struct core *c, struct mount_entry *m, void **inst, struct verr *err)
{
	struct mount_info mi = {.path = m->path, .uuid = m->uuid, .accessor = m->accessor,
				.type = m->type, .options = m->options, .config = m->config,
				.storage = &m->view, .sys = &m->sys,
				.core_private = core_private(c, m)};
	*inst = NULL;
	if (m->ops->init)
		return m->ops->init(inst, &mi, err);
	*inst = mi.core_private;
	return 0;
}

static int backend_initialize(struct mount_entry *m, struct verr *err)
{
	if (!m->ops->initialize)
		return 0;
	int rc = m->ops->initialize(m->inst, err);
	if (rc)
		log_error("core", "failed to initialize mount %s: %s", m->path, err ? err->msg : "");
	return rc;
}

static int instantiate(struct core *c, struct mount_entry *m, struct verr *err)
{
	char prefix[128];
	if (!strcmp(m->type, "system"))
		snprintf(prefix, sizeof(prefix), "sys/");
	else
		snprintf(prefix, sizeof(prefix), "%s%s/", m->is_auth ? "auth/" : "logical/", m->uuid);
	storage_view_init(&m->view, c->bphys, prefix);
	m->core = c;
	m->sys.ops = &mount_sysview_ops;
	m->sys.ctx = m;
	m->ops = backend_type(c, m->type);
	if (!m->ops)
		return verr_set(err, VERR_INVALID, "unknown backend type: \"%s\"", m->type);
	return backend_init(c, m, &m->inst, err);
}

static struct mount_entry *mount_from_json(const json_t *j, bool is_auth)
{
	struct mount_entry *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->path = strdup(json_string_value(json_object_get(j, "path")) ?: "");
	m->type = strdup(json_string_value(json_object_get(j, "type")) ?: "");
	m->description = strdup(json_string_value(json_object_get(j, "description")) ?: "");
	m->uuid = strdup(json_string_value(json_object_get(j, "uuid")) ?: "");
	m->accessor = strdup(json_string_value(json_object_get(j, "accessor")) ?: "");
	m->config = json_deep_copy(json_object_get(j, "config"));
	if (!m->config)
		m->config = json_object();
	m->options = json_deep_copy(json_object_get(j, "options"));
	if (!json_is_object(m->options)) {
		json_decref(m->options);
		m->options = json_object();
	}
	m->local = json_is_true(json_object_get(j, "local"));
	m->seal_wrap = json_is_true(json_object_get(j, "seal_wrap"));
	m->created = json_integer_value(json_object_get(j, "created"));
	m->is_auth = is_auth;
	m->refs = 1;
	return m;
}

/* Append m to the table: 0, or VERR_INTERNAL (m NULL or OOM; the caller
 * still owns m). */
static int add_entry(struct core *c, struct mount_entry *m)
{
	if (!m)
		return VERR_INTERNAL;
	if (c->nmounts == c->capmounts) {
		size_t nc = c->capmounts ? c->capmounts * 2 : 16;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
		struct mount_entry **n = realloc(c->mounts, nc * sizeof(*n));
		if (!n)
			return VERR_INTERNAL;
		c->mounts = n;
		c->capmounts = nc;
	}
	c->mounts[c->nmounts++] = m;
	return 0;
}

static struct mount_entry *new_default(const char *path, const char *type, const char *desc,
				       bool is_auth, bool local)
{
	char uuid[37];
	if (rand_uuid(uuid, NULL))
		return NULL;
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "path", path, "type", type,
			      "description", desc, "uuid", uuid, "accessor", "", "local", local);
	struct mount_entry *m = mount_from_json(j, is_auth);
	json_decref(j);
	if (m) {
		free(m->accessor);
		m->accessor = accessor_for(!strcmp(type, "token") ? "auth_token" :
					   !strcmp(type, "system") ? "system" : type);
		m->created = (int64_t)time(NULL);
		if (!m->accessor) {
			mount_free(m);
			m = NULL;
		}
	}
	return m;
}

static int add_default(struct core *c, const char *path, const char *type, const char *desc,
		       bool is_auth, bool local, struct verr *err)
{
	struct mount_entry *m = new_default(path, type, desc, is_auth, local);
	if (add_entry(c, m)) {
		mount_free(m);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

int router_load(struct core *c, struct verr *err)
{
	struct storage_view v;
	storage_view_init(&v, c->bphys, "core/");
	pthread_rwlock_wrlock(&c->mounts_lock);
	int rc = 0;
	for (int pass = 0; pass < 2 && !rc; pass++) {
		bool is_auth = pass == 1;
		json_t *doc = NULL;
		rc = view_get_json(&v, is_auth ? "auth" : "mounts", &doc, err);
		if (rc)
			break;
		if (!doc) {
			/* first unseal: default mounts, persisted by the active
			 * node's router_initialize */
			c->mounts_fresh = true;
			if (!is_auth) {
				rc = add_default(c, "sys/", "system", "system endpoints used for control, policy and debugging", false, false, err);
				if (!rc)
					rc = add_default(c, "cubbyhole/", "cubbyhole", "per-token private secret storage", false, true, err);
			} else {
				rc = add_default(c, "auth/token/", "token", "token based credentials", true, false, err);
			}
		} else {
			size_t i;
			json_t *e;
			json_array_foreach(json_object_get(doc, "entries"), i, e) {
				struct mount_entry *m = mount_from_json(e, is_auth);
				if (m && add_entry(c, m)) {
					mount_free(m);
					rc = verr_set(err, VERR_INTERNAL, "out of memory");
					break;
				}
			}
			json_decref(doc);
		}
	}
	for (size_t i = 0; i < c->nmounts && !rc; i++) {
		rc = instantiate(c, c->mounts[i], err);
		if (rc)
			log_error("core", "failed to set up mount %s: %s", c->mounts[i]->path, err ? err->msg : "");
	}
	pthread_rwlock_unlock(&c->mounts_lock);
	return rc;
}

int router_initialize(struct core *c, struct verr *err)
{
	int rc = 0;
	pthread_rwlock_wrlock(&c->mounts_lock);
	if (c->mounts_fresh) {
		rc = persist(c, false, err);
		if (!rc)
			rc = persist(c, true, err);
		if (!rc)
			c->mounts_fresh = false;
	}
	for (size_t i = 0; i < c->nmounts && !rc; i++)
		rc = backend_initialize(c->mounts[i], err);
	pthread_rwlock_unlock(&c->mounts_lock);
	return rc;
}

void router_unload(struct core *c)
{
	pthread_rwlock_wrlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts; i++)
		router_release(c->mounts[i]);
	free(c->mounts);
	c->mounts = NULL;
	c->nmounts = c->capmounts = 0;
	pthread_rwlock_unlock(&c->mounts_lock);
}

struct mount_entry *router_route(struct core *c, const char *path)
{
	struct mount_entry *best = NULL;
	size_t bestlen = 0, plen = strlen(path);
	pthread_rwlock_rdlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts; i++) {
		struct mount_entry *m = c->mounts[i];
		size_t ml = strlen(m->path);
		bool match = (plen >= ml && !strncmp(path, m->path, ml)) ||
			     (plen + 1 == ml && !strncmp(path, m->path, plen)); /* "secret" */
		if (match && ml > bestlen) {
			best = m;
			bestlen = ml;
		}
	}
	if (best)
		atomic_fetch_add(&best->refs, 1);
	pthread_rwlock_unlock(&c->mounts_lock);
	return best;
}

struct mount_entry *router_get(struct core *c, bool is_auth, const char *path)
{
	char full[512];
	size_t l = strlen(path);
	snprintf(full, sizeof(full), "%s%s%s", is_auth ? "auth/" : "", path,
		 l && path[l - 1] == '/' ? "" : "/");
	struct mount_entry *found = NULL;
	pthread_rwlock_rdlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts; i++)
		if (c->mounts[i]->is_auth == is_auth && !strcmp(c->mounts[i]->path, full)) {
			found = c->mounts[i];
			atomic_fetch_add(&found->refs, 1);
		}
	pthread_rwlock_unlock(&c->mounts_lock);
	return found;
}

json_t *router_list(struct core *c, bool is_auth)
{
	json_t *o = json_object();
	pthread_rwlock_rdlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts; i++) {
		struct mount_entry *m = c->mounts[i];
		if (m->is_auth != is_auth)
			continue;
		const char *key = is_auth ? m->path + 5 : m->path;
		json_object_set_new(o, key, router_mount_json(m));
	}
	pthread_rwlock_unlock(&c->mounts_lock);
	return o;
}

/* Normalise a user mount path: strip slashes at the ends, add one at the
 * end. Validates segments. */
static int normalise(const char *in, char *out, size_t cap, struct verr *err)
{
	while (*in == '/')
		in++;
	size_t l = strlen(in);
	while (l && in[l - 1] == '/')
		l--;
	if (l == 0)
		return verr_set(err, VERR_INVALID, "path cannot be empty");
	if (l + 2 > cap)
		return verr_set(err, VERR_INVALID, "path is too long");
	memcpy(out, in, l);
	out[l] = '/';
	out[l + 1] = '\0';
	int rc = router_valid_path(out, err);
	if (rc)
		return rc == VERR_NOT_FOUND ? verr_set(err, VERR_INVALID, "invalid mount path") : rc;
	for (const char *p = out; *p; p++)
		if (*p == '*' || *p == '+' || *p == '?' || *p == '#' || *p == '%')
			return verr_set(err, VERR_INVALID, "invalid character in mount path");
	return 0;
}

static int parse_ttl_field(const json_t *v, int64_t *out, const char *name, struct verr *err)
{
	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return verr_set(err, VERR_INVALID, "%s must not be negative", name);
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!*s || !strcmp(s, "system"))
			return 0;
		struct verr e2;
		if (duration_parse(out, s, &e2))
			return verr_set(err, VERR_INVALID, "invalid %s: %s", name, e2.msg);
		return 0;
	}
	return verr_set(err, VERR_INVALID, "%s must be a duration string or integer", name);
}

static int parse_config(struct core *c, const json_t *in, json_t *cfg, struct verr *err)
{
	if (!in || json_is_null(in))
		return 0;
	if (!json_is_object(in))
		return verr_set(err, VERR_INVALID, "config must be an object");
	int64_t d, mx;
	int rc = parse_ttl_field(json_object_get(in, "default_lease_ttl"), &d, "default_lease_ttl", err);
	if (!rc)
		rc = parse_ttl_field(json_object_get(in, "max_lease_ttl"), &mx, "max_lease_ttl", err);
	if (rc)
		return rc;
	if (json_object_get(in, "default_lease_ttl"))
		json_object_set_new(cfg, "default_lease_ttl", json_integer(d));
	if (json_object_get(in, "max_lease_ttl"))
		json_object_set_new(cfg, "max_lease_ttl", json_integer(mx));
	int64_t eff_d = json_integer_value(json_object_get(cfg, "default_lease_ttl"));
	int64_t eff_m = json_integer_value(json_object_get(cfg, "max_lease_ttl"));
	if (eff_m && eff_d > eff_m)
		return verr_set(err, VERR_INVALID, "default_lease_ttl cannot be greater than max_lease_ttl");
	/* Vault lets a mount's max exceed the system max (tuneMountTTLs checks
	 * only default <= max; the PKI guide tunes pki/ to 87600h): leases and
	 * tokens stay capped by the server's (token store, leases) */
	const char *keys[] = {"audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
			      "passthrough_request_headers", "allowed_response_headers", NULL};
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(in, keys[i]);
		if (v) {
			if (!json_is_array(v) && !json_is_string(v))
				return verr_set(err, VERR_INVALID, "%s must be a list of strings", keys[i]);
			json_object_set(cfg, keys[i], v);
		}
	}
	json_t *lv = json_object_get(in, "listing_visibility");
	if (lv) {
		if (!json_is_string(lv) || (strcmp(json_string_value(lv), "unauth") &&
					    strcmp(json_string_value(lv), "hidden") &&
					    *json_string_value(lv)))
			return verr_set(err, VERR_INVALID, "listing_visibility must be \"unauth\" or \"hidden\"");
		json_object_set(cfg, "listing_visibility", lv);
	}
	json_t *tt = json_object_get(in, "token_type");
	if (tt) {
		if (!json_is_string(tt))
			return verr_set(err, VERR_INVALID, "token_type must be a string");
		json_object_set(cfg, "token_type", tt);
	}
	return 0;
}

static int parse_options(const json_t *in, json_t *opts, struct verr *err)
{
	if (!in || json_is_null(in))
		return 0;
	if (!json_is_object(in))
		return verr_set(err, VERR_INVALID, "options must be an object");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)in, k, v) {
		if (json_is_string(v))
			json_object_set(opts, k, v);
		else if (json_is_integer(v)) {
			char b[32];
			snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(v));
			json_object_set_new(opts, k, json_string(b));
		} else if (json_is_boolean(v))
			json_object_set_new(opts, k, json_string(json_is_true(v) ? "true" : "false"));
		else
			return verr_set(err, VERR_INVALID, "option \"%s\" must be a string", k);
	}
	json_t *ver = json_object_get(opts, "version");
	if (ver && strcmp(json_string_value(ver), "1") && strcmp(json_string_value(ver), "2") &&
	    strcmp(json_string_value(ver), ""))
		return verr_set(err, VERR_INVALID, "invalid kv version \"%s\": must be 1 or 2", json_string_value(ver));
	return 0;
}

int router_mount(struct core *c, bool is_auth, const char *path, const json_t *body,
		 struct verr *err)
{
	char norm[512], full[520];
	int rc = normalise(path, norm, sizeof(norm), err);
	if (rc)
		return rc;
	snprintf(full, sizeof(full), "%s%s", is_auth ? "auth/" : "", norm);
	json_t *jt = json_object_get(body, "type");
	if (!json_is_string(jt) || !*json_string_value(jt))
		return verr_set(err, VERR_INVALID, "backend type must be specified as a string");
	const char *type = json_string_value(jt);
	json_t *options = json_object();
	json_t *config = json_object();
	char tbuf[64];
	snprintf(tbuf, sizeof(tbuf), "%s", type);
	if (!is_auth && !strcmp(type, "kv-v2")) {
		snprintf(tbuf, sizeof(tbuf), "kv");
		json_object_set_new(options, "version", json_string("2"));
	}
	if (!is_auth && (!strcmp(type, "kv-v1") || !strcmp(type, "generic"))) {
		snprintf(tbuf, sizeof(tbuf), "kv");
		json_object_set_new(options, "version", json_string("1"));
	}
	rc = parse_options(json_object_get(body, "options"), options, err);
	if (!rc)
		rc = parse_config(c, json_object_get(body, "config"), config, err);
	if (!rc && !strcmp(tbuf, "kv") && !json_object_get(options, "version"))
		json_object_set_new(options, "version", json_string("1"));
	const struct backend_ops *ops = rc ? NULL : backend_type(c, tbuf);
	if (!rc) {
		if (!ops || ops->is_auth != is_auth)
			rc = verr_set(err, VERR_INVALID, "plugin not found in the catalog: %s", tbuf);
		else
			for (int i = 0; protected_types[i]; i++)
				if (!strcmp(tbuf, protected_types[i]))
					rc = verr_set(err, VERR_INVALID, "cannot mount \"%s\" of type \"%s\"", norm, tbuf);
	}
	if (!rc && !is_auth && (!strncmp(norm, "sys/", 4) || !strncmp(norm, "auth/", 5) ||
				!strncmp(norm, "cubbyhole/", 10) || !strncmp(norm, "identity/", 9)))
		rc = verr_set(err, VERR_INVALID, "cannot mount under reserved path \"%s\"", norm);
	if (!rc && is_auth && !strcmp(norm, "token/"))
		rc = verr_set(err, VERR_INVALID, "cannot mount under reserved path \"token/\"");
	if (rc) {
		json_decref(options);
		json_decref(config);
		return rc;
	}
	char uuid[37];
	rc = rand_uuid(uuid, err);
	struct mount_entry *m = rc ? NULL : calloc(1, sizeof(*m));
	if (!m) {
		json_decref(options);
		json_decref(config);
		return rc ? rc : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	m->path = strdup(full);
	m->type = strdup(tbuf);
	m->description = strdup(json_string_value(json_object_get(body, "description")) ?: "");
	m->uuid = strdup(uuid);
	char acc_prefix[80];
	snprintf(acc_prefix, sizeof(acc_prefix), "%s%s", is_auth ? "auth_" : "", tbuf);
	m->accessor = accessor_for(acc_prefix);
	m->config = config;
	m->options = options;
	m->local = json_is_true(json_object_get(body, "local"));
	m->seal_wrap = json_is_true(json_object_get(body, "seal_wrap"));
	m->is_auth = is_auth;
	m->created = (int64_t)time(NULL);
	m->refs = 1;
	if (!m->path || !m->type || !m->description || !m->uuid || !m->accessor) {
		mount_free(m);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}

	pthread_rwlock_wrlock(&c->mounts_lock);
	for (size_t i = 0; i < c->nmounts && !rc; i++) {
		const char *p = c->mounts[i]->path;
		size_t pl = strlen(p), fl = strlen(full);
		if (!strcmp(p, full))
			rc = verr_set(err, VERR_INVALID, "path is already in use at %s", norm);
		else if (pl < fl && !strncmp(full, p, pl) && strcmp(p, "auth/token/") && strcmp(p, "sys/"))
			rc = verr_set(err, VERR_INVALID, "existing mount at %s", p);
		else if (fl < pl && !strncmp(p, full, fl))
			rc = verr_set(err, VERR_INVALID, "path is already in use at %s", p);
	}
	if (!rc)
		rc = instantiate(c, m, err);
	if (!rc)
		rc = backend_initialize(m, err);
	if (!rc && add_entry(c, m))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	else if (!rc) {
		rc = persist(c, is_auth, err);
		if (rc) {
			c->nmounts--;
		}
	}
	pthread_rwlock_unlock(&c->mounts_lock);
	if (rc) {
		mount_free(m);
		return rc;
	}
	log_info("core", "successful mount: path=%s type=%s", full, tbuf);
	return 0;
}

int router_unmount_target(struct core *c, bool is_auth, const char *path, char **out,
			  struct verr *err)
{
	char norm[512];
	*out = NULL;
	int rc = normalise(path, norm, sizeof(norm), err);
	if (rc)
		return rc;
	struct mount_entry *probe = router_get(c, is_auth, norm);
	if (!probe)
		return 0;
	for (int i = 0; protected_types[i]; i++)
		if (!strcmp(probe->type, protected_types[i])) {
			router_release(probe);
			return verr_set(err, VERR_INVALID, "cannot unmount \"%s\"", norm);
		}
	*out = strdup(probe->path);
	router_release(probe);
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int router_unmount(struct core *c, bool is_auth, const char *path, struct verr *err)
{
	char norm[512], full[520];
	int rc = normalise(path, norm, sizeof(norm), err);
	if (rc)
		return rc;
	snprintf(full, sizeof(full), "%s%s", is_auth ? "auth/" : "", norm);
	pthread_rwlock_wrlock(&c->mounts_lock);
	struct mount_entry *m = NULL;
	size_t idx = 0;
	for (size_t i = 0; i < c->nmounts; i++)
		if (c->mounts[i]->is_auth == is_auth && !strcmp(c->mounts[i]->path, full)) {
			m = c->mounts[i];
			idx = i;
		}
	if (!m) {
		pthread_rwlock_unlock(&c->mounts_lock);
		return 0; /* disabled concurrently */
	}
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	memmove(&c->mounts[idx], &c->mounts[idx + 1], (c->nmounts - idx - 1) * sizeof(*c->mounts));
	c->nmounts--;
	rc = persist(c, is_auth, err);
	pthread_rwlock_unlock(&c->mounts_lock);
	if (!rc) /* delete exactly its storage prefix */
		rc = view_clear_prefix(&m->view, "", err);
	log_info("core", "successful unmount: path=%s", full);
	router_release(m);
	return rc;
}

int router_tune(struct core *c, bool is_auth, const char *path, const json_t *body,
		struct verr *err)
{
	struct mount_entry *m = router_get(c, is_auth, path);
	if (!m)
		return verr_set(err, VERR_INVALID, "no mount at \"%s\"", path);
	json_t *config = json_deep_copy(m->config);
	json_t *options = json_deep_copy(m->options);
	int rc = parse_config(c, body, config, err);
	if (!rc && json_object_get(body, "options"))
		rc = parse_options(json_object_get(body, "options"), options, err);
	if (!rc && json_object_get(body, "description") &&
	    !json_is_string(json_object_get(body, "description")))
		rc = verr_set(err, VERR_INVALID, "description must be a string");
	const char *oldv = json_string_value(json_object_get(m->options, "version"));
	const char *newv = json_string_value(json_object_get(options, "version"));
	if (!rc && oldv && newv && !strcmp(oldv, "2") && !strcmp(newv, "1"))
		rc = verr_set(err, VERR_INVALID, "cannot downgrade mount from version 2");
	if (rc) {
		json_decref(config);
		json_decref(options);
		router_release(m);
		return rc;
	}
	bool reinit = oldv && newv && strcmp(oldv, newv);
	pthread_rwlock_wrlock(&c->mounts_lock);
	json_decref(m->config);
	m->config = config;
	json_decref(m->options);
	m->options = options;
	if (json_is_string(json_object_get(body, "description"))) {
		free(m->description);
		m->description = strdup(json_string_value(json_object_get(body, "description")));
	}
	if (reinit && m->ops) {
		/* kv v1 -> v2 upgrade: the engine migrates in initialize */
		void *old = m->inst;
		void *inst = NULL;
		rc = backend_init(c, m, &inst, err);
		if (!rc && m->ops->initialize && (rc = m->ops->initialize(inst, err)) != 0 &&
		    m->ops->cleanup)
			m->ops->cleanup(inst);
		if (!rc) {
			m->inst = inst;
			if (m->ops->cleanup && old)
				m->ops->cleanup(old);
		}
	}
	if (!rc)
		rc = persist(c, is_auth, err);
	pthread_rwlock_unlock(&c->mounts_lock);
	router_release(m);
	return rc;
}

int router_remount(struct core *c, const char *from, const char *to, struct verr *err)
{
	char nf[512], nt[512];
	int rc = normalise(from, nf, sizeof(nf), err);
	if (!rc)
		rc = normalise(to, nt, sizeof(nt), err);
	if (rc)
		return rc;
	bool is_auth = !strncmp(nf, "auth/", 5);
	if (is_auth != !strncmp(nt, "auth/", 5))
		return verr_set(err, VERR_INVALID, "cannot remount between secret and auth mounts");
	if (!is_auth && (!strncmp(nt, "sys/", 4) || !strncmp(nt, "cubbyhole/", 10)))
		return verr_set(err, VERR_INVALID, "cannot remount to reserved path \"%s\"", nt);
	pthread_rwlock_wrlock(&c->mounts_lock);
	struct mount_entry *m = NULL;
	for (size_t i = 0; i < c->nmounts; i++) {
		if (!strcmp(c->mounts[i]->path, nf))
			m = c->mounts[i];
		size_t pl = strlen(c->mounts[i]->path), tl = strlen(nt);
		if (!strcmp(c->mounts[i]->path, nt) ||
		    (pl < tl && !strncmp(nt, c->mounts[i]->path, pl) && strcmp(c->mounts[i]->path, "sys/")) ||
		    (tl < pl && !strncmp(c->mounts[i]->path, nt, tl)))
			rc = verr_set(err, VERR_INVALID, "path already in use at \"%s\"", c->mounts[i]->path);
	}
	if (!m && !rc)
		rc = verr_set(err, VERR_INVALID, "no mount at \"%s\"", nf);
	if (!rc)
		for (int i = 0; protected_types[i]; i++)
			if (!strcmp(m->type, protected_types[i]))
				rc = verr_set(err, VERR_INVALID, "cannot remount \"%s\"", nf);
	if (!rc) {
		/* storage is keyed by UUID, so a move only renames the entry */
		free(m->path);
		m->path = strdup(nt);
		rc = persist(c, is_auth, err);
	}
	pthread_rwlock_unlock(&c->mounts_lock);
	return rc;
}

void router_foreach(struct core *c, void (*fn)(struct mount_entry *m, void *ctx), void *ctx)
{
	pthread_rwlock_rdlock(&c->mounts_lock);
	size_t n = c->nmounts;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	struct mount_entry **snap = n ? malloc(n * sizeof(*snap)) : NULL;
	if (snap)
		for (size_t i = 0; i < n; i++) {
			snap[i] = c->mounts[i];
			atomic_fetch_add(&snap[i]->refs, 1);
		}
	pthread_rwlock_unlock(&c->mounts_lock);
	if (!snap)
		return;
	for (size_t i = 0; i < n; i++) {
		fn(snap[i], ctx);
		router_release(snap[i]);
	}
	free(snap);
}

/* ---- path validation ---- */

static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		int n;
		unsigned int cp;
		if ((*s & 0xe0) == 0xc0) { n = 1; cp = *s & 0x1f; }
		else if ((*s & 0xf0) == 0xe0) { n = 2; cp = *s & 0x0f; }
		else if ((*s & 0xf8) == 0xf0) { n = 3; cp = *s & 0x07; }
		else return 0;
		s++;
		for (int i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*s & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

int router_valid_path(const char *path, struct verr *err)
{
	size_t len = strlen(path);
	if (len == 0)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	if (len > 4096)
		return verr_set(err, VERR_INVALID, "path is too long");
	if (!utf8_valid((const unsigned char *)path))
		return verr_set(err, VERR_INVALID, "path is not valid UTF-8");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return verr_set(err, VERR_INVALID, "path contains a control character");
	/* segments: no empty (except a trailing slash), no "." or ".." */
	const char *s = path;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 0)
			return verr_set(err, VERR_INVALID, "invalid path: empty path segment");
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return verr_set(err, VERR_INVALID, "invalid path: \".\" and \"..\" segments are not allowed");
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

struct inval {
	const char *key;
	int hits;
};

static void invalidate_one(struct mount_entry *m, void *ctx)
{
	struct inval *iv = ctx;
	size_t pl = strlen(m->view.prefix);
	if (!m->ops || !m->ops->invalidate || !m->inst || !pl || strncmp(iv->key, m->view.prefix, pl))
		return;
	m->ops->invalidate(m->inst, iv->key + pl);
	iv->hits++;
}

int router_invalidate(struct core *c, const char *key)
{
	struct inval iv = {.key = key};
	router_foreach(c, invalidate_one, &iv);
	return iv.hits;
}
