/*
 * config.c - load the server configuration (see config.h): read files and
 * directories, parse them with util/hcl (HCL or JSON give the same JSON
 * view), and apply each document onto one struct server_config through
 * key tables, citing file:line for every error.
 *
 * DESIGN
 * Every document is first normalised by hcl_parse_any, so this file only
 * ever walks JSON: a block stanza is an array of occurrence objects, a
 * scalar is a JSON scalar. Line numbers come from the HCL tree kept next to
 * the JSON (JSON files have none). Key tables (name, kind, offset) drive the
 * scalar keys of the top level, listeners and telemetry, so adding a key is
 * one row plus a field.
 */
#include "server/config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/buf.h"
#include "util/duration.h"
#include "util/hcl.h"

/* One document being applied. */
struct src {
	const char *file;
	const struct hcl_doc *doc; /* NULL for JSON */
	int storage_seen, ha_seen; /* stanzas of each kind in THIS document */
};

/* ---- errors ---- */

static int __attribute__((format(printf, 6, 7)))
cfg_err(struct verr *err, const struct src *s, int line, const char *stanza, const char *key,
	const char *fmt, ...)
{
	char msg[VERR_MSG_MAX], where[64] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	return verr_set(err, VERR_INVALID, "%s%s: %s%s%s%s%s", s->file, where, stanza ? stanza : "",
		stanza ? ": " : "", key ? key : "", key ? ": " : "", msg);
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

/* Where a value sits, for messages. */
struct at {
	const struct src *s;
	int line;
	const char *stanza; /* e.g. `listener "tcp"`, NULL at the top level */
	const char *key;
};

static int at_err(struct verr *err, const struct at *a, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int at_err(struct verr *err, const struct at *a, const char *fmt, ...)
{
	char msg[VERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cfg_err(err, a->s, a->line, a->stanza, a->key, "%s", msg);
}

static int oom(struct verr *err)
{
	return verr_set(err, VERR_INTERNAL, "configuration: out of memory");
}

/* ---- typed values ---- */

static int get_str(char **out, const json_t *v, const struct at *a, struct verr *err)
{
	if (!json_is_string(v))
		return at_err(err, a, "expected a string, found %s", json_kind(v));
	char *s = strdup(json_string_value(v));
	if (!s)
		return oom(err);
	free(*out);
	*out = s;
	return 0;
}

/* Vault's rules (parseutil.ParseBool): a boolean, a number (non-zero is
 * true) or one of the strings Go's strconv.ParseBool knows; "" is false. */
static int get_bool(bool *out, const json_t *v, const struct at *a, struct verr *err)
{
	static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True", NULL};
	static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False", "", NULL};
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v)) {
		*out = json_integer_value(v) != 0;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		for (size_t i = 0; yes[i]; i++)
			if (!strcmp(s, yes[i])) {
				*out = true;
				return 0;
			}
		for (size_t i = 0; no[i]; i++)
			if (!strcmp(s, no[i])) {
				*out = false;
				return 0;
			}
		return at_err(err, a, "expected a boolean (true or false), found \"%.64s\"", s);
	}
	return at_err(err, a, "expected a boolean (true or false), found %s", json_kind(v));
}

/* An integer, an integral real, or a string of decimal digits. */
static int get_int(int64_t *out, const json_t *v, const struct at *a, struct verr *err)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
			*out = (int64_t)d;
			return 0;
		}
		return at_err(err, a, "expected an integer, found %g", d);
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		long long n = strtoll(s, &end, 0);
		if (*s && !*end && !errno) {
			*out = n;
			return 0;
		}
		return at_err(err, a, "expected an integer, found \"%.64s\"", s);
	}
	return at_err(err, a, "expected an integer, found %s", json_kind(v));
}

/* An integer number of seconds or a duration string ("768h", "30m"). */
static int get_dur(int64_t *out, const json_t *v, const struct at *a, struct verr *err)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return at_err(err, a, "invalid duration %lld: negative",
				(long long)json_integer_value(v));
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		struct verr derr = {0};
		if (duration_parse(out, json_string_value(v), &derr))
			return at_err(err, a, "%s (use e.g. \"30s\", \"15m\", \"768h\")", derr.msg);
		return 0;
	}
	return at_err(err, a, "expected a duration, found %s", json_kind(v));
}

/* ---- key tables ---- */

enum kind {
	K_STR,  /* char * */
	K_BOOL, /* bool */
	K_INT,  /* int64_t */
	K_DUR,  /* int64_t seconds */
	K_ANY,  /* accepted for compatibility, kept only in `options` where there is one */
	K_SPECIAL, /* handled by code */
};

struct key_def {
	const char *name;
	enum kind kind;
	size_t off;
};

#define F(st, field) offsetof(struct st, field)

static const struct key_def top_keys[] = {
	{"storage", K_SPECIAL, 0},
	{"backend", K_SPECIAL, 0},
	{"ha_storage", K_SPECIAL, 0},
	{"ha_backend", K_SPECIAL, 0},
	{"seal", K_SPECIAL, 0},
	{"hsm", K_SPECIAL, 0},
	{"listener", K_SPECIAL, 0},
	{"telemetry", K_SPECIAL, 0},
	{"experiments", K_SPECIAL, 0},
	{"api_addr", K_STR, F(server_config, api_addr)},
	{"cluster_addr", K_STR, F(server_config, cluster_addr)},
	{"cluster_name", K_STR, F(server_config, cluster_name)},
	{"cluster_cipher_suites", K_STR, F(server_config, cluster_cipher_suites)},
	{"log_level", K_STR, F(server_config, log_level)},
	{"log_format", K_STR, F(server_config, log_format)},
	{"log_file", K_STR, F(server_config, log_file)},
	{"log_requests_level", K_STR, F(server_config, log_requests_level)},
	{"pid_file", K_STR, F(server_config, pid_file)},
	{"log_rotate_duration", K_DUR, F(server_config, log_rotate_duration)},
	{"log_rotate_bytes", K_INT, F(server_config, log_rotate_bytes)},
	{"log_rotate_max_files", K_INT, F(server_config, log_rotate_max_files)},
	{"plugin_directory", K_STR, F(server_config, plugin_directory)},
	{"license_path", K_STR, F(server_config, license_path)},
	{"disable_mlock", K_BOOL, F(server_config, disable_mlock)},
	{"ui", K_BOOL, F(server_config, ui)},
	{"disable_cache", K_BOOL, F(server_config, disable_cache)},
	{"disable_clustering", K_BOOL, F(server_config, disable_clustering)},
	{"disable_sealwrap", K_BOOL, F(server_config, disable_sealwrap)},
	{"disable_performance_standby", K_BOOL, F(server_config, disable_performance_standby)},
	{"disable_printable_check", K_BOOL, F(server_config, disable_printable_check)},
	{"raw_storage_endpoint", K_BOOL, F(server_config, raw_storage_endpoint)},
	{"introspection_endpoint", K_BOOL, F(server_config, introspection_endpoint)},
	{"allow_audit_log_prefixing", K_BOOL, F(server_config, allow_audit_log_prefixing)},
	{"enable_response_header_hostname", K_BOOL, F(server_config, enable_response_header_hostname)},
	{"enable_response_header_raft_node_id", K_BOOL,
		F(server_config, enable_response_header_raft_node_id)},
	{"default_lease_ttl", K_DUR, F(server_config, default_lease_ttl)},
	{"max_lease_ttl", K_DUR, F(server_config, max_lease_ttl)},
	{"default_max_request_duration", K_DUR, F(server_config, default_max_request_duration)},
	{"periodic_interval", K_DUR, F(server_config, periodic_interval)},
	{"cache_size", K_INT, F(server_config, cache_size)},
	{"plugin_file_uid", K_INT, F(server_config, plugin_file_uid)},
	{"plugin_file_permissions", K_INT, F(server_config, plugin_file_permissions)},
	/* accepted (Vault has them) but without effect in Coffer */
	{"service_registration", K_ANY, 0},
	{"entropy", K_ANY, 0},
	{"kms_library", K_ANY, 0},
	{"user_lockout", K_ANY, 0},
	{"reporting", K_ANY, 0},
	{"administrative_namespace_path", K_ANY, 0},
	{"disable_indexing", K_ANY, 0},
	{"disable_sentinel_trace", K_ANY, 0},
	{"detect_deadlocks", K_ANY, 0},
	{"imprecise_lease_role_tracking", K_ANY, 0},
	{"enable_post_unseal_trace", K_ANY, 0},
	{"post_unseal_trace_directory", K_ANY, 0},
	{"plugin_tmpdir", K_ANY, 0},
	{"disable_ssc_tokens", K_ANY, 0},
	{NULL, K_ANY, 0},
};

static const struct key_def listener_keys[] = {
	{"address", K_STR, F(config_listener, address)},
	{"cluster_address", K_STR, F(config_listener, cluster_address)},
	{"tls_disable", K_BOOL, F(config_listener, tls_disable)},
	{"tls_cert_file", K_STR, F(config_listener, tls_cert_file)},
	{"tls_key_file", K_STR, F(config_listener, tls_key_file)},
	{"tls_client_ca_file", K_STR, F(config_listener, tls_client_ca_file)},
	{"tls_cipher_suites", K_STR, F(config_listener, tls_cipher_suites)},
	{"tls_min_version", K_SPECIAL, 0},
	{"tls_max_version", K_SPECIAL, 0},
	{"tls_require_and_verify_client_cert", K_BOOL,
		F(config_listener, tls_require_and_verify_client_cert)},
	{"tls_disable_client_certs", K_BOOL, F(config_listener, tls_disable_client_certs)},
	{"max_request_size", K_INT, F(config_listener, max_request_size)},
	{"max_request_duration", K_DUR, F(config_listener, max_request_duration)},
	{"thread_pool_size", K_INT, F(config_listener, thread_pool_size)},
	{"http_read_header_timeout", K_DUR, F(config_listener, http_read_header_timeout)},
	{"http_read_timeout", K_DUR, F(config_listener, http_read_timeout)},
	{"http_idle_timeout", K_DUR, F(config_listener, http_idle_timeout)},
	{"max_connections", K_INT, F(config_listener, max_connections)},
	{"max_connections_per_ip", K_INT, F(config_listener, max_connections_per_ip)},
	{"telemetry", K_SPECIAL, 0},
	/* accepted for compatibility; kept in options */
	{"tls_prefer_server_cipher_suites", K_ANY, 0},
	{"tls_key_password", K_ANY, 0},
	{"proxy_protocol_behavior", K_ANY, 0},
	{"proxy_protocol_authorized_addrs", K_ANY, 0},
	{"x_forwarded_for_authorized_addrs", K_ANY, 0},
	{"x_forwarded_for_hop_skips", K_ANY, 0},
	{"x_forwarded_for_reject_not_authorized", K_ANY, 0},
	{"x_forwarded_for_reject_not_present", K_ANY, 0},
	{"x_forwarded_for_client_cert_header", K_ANY, 0},
	{"x_forwarded_for_client_cert_header_decoders", K_ANY, 0},
	{"http_write_timeout", K_ANY, 0},
	{"profiling", K_ANY, 0},
	{"inflight_requests_logging", K_ANY, 0},
	{"custom_response_headers", K_ANY, 0},
	{"cors_enabled", K_ANY, 0},
	{"cors_allowed_origins", K_ANY, 0},
	{"cors_allowed_headers", K_ANY, 0},
	{"agent_api", K_ANY, 0},
	{"purpose", K_ANY, 0},
	{"role", K_ANY, 0},
	{"chroot_namespace", K_ANY, 0},
	{"redact_addresses", K_ANY, 0},
	{"redact_cluster_name", K_ANY, 0},
	{"redact_version", K_ANY, 0},
	{"disable_replication_status_endpoints", K_ANY, 0},
	{"disable_request_limiter", K_ANY, 0},
	{NULL, K_ANY, 0},
};

static const struct key_def telemetry_keys[] = {
	{"prometheus_retention_time", K_DUR, F(config_telemetry, prometheus_retention_time)},
	{"disable_hostname", K_BOOL, F(config_telemetry, disable_hostname)},
	{"enable_hostname_label", K_BOOL, F(config_telemetry, enable_hostname_label)},
	{"usage_gauge_period", K_DUR, F(config_telemetry, usage_gauge_period)},
	{"maximum_gauge_cardinality", K_INT, F(config_telemetry, maximum_gauge_cardinality)},
	{"metrics_prefix", K_STR, F(config_telemetry, metrics_prefix)},
	{"statsd_address", K_STR, F(config_telemetry, statsd_address)},
	{"statsite_address", K_STR, F(config_telemetry, statsite_address)},
	{"dogstatsd_addr", K_STR, F(config_telemetry, dogstatsd_addr)},
	/* accepted for compatibility; kept in options */
	{"dogstatsd_tags", K_ANY, 0},
	{"lease_metrics_epsilon", K_ANY, 0},
	{"num_lease_metrics_buckets", K_ANY, 0},
	{"add_lease_metrics_namespace_labels", K_ANY, 0},
	{"add_mount_point_rollback_metrics", K_ANY, 0},
	{"filter_default", K_ANY, 0},
	{"prefix_filter", K_ANY, 0},
	{"circonus_api_token", K_ANY, 0},
	{"circonus_api_app", K_ANY, 0},
	{"circonus_api_url", K_ANY, 0},
	{"circonus_submission_interval", K_ANY, 0},
	{"circonus_submission_url", K_ANY, 0},
	{"circonus_check_id", K_ANY, 0},
	{"circonus_check_force_metric_activation", K_ANY, 0},
	{"circonus_check_instance_id", K_ANY, 0},
	{"circonus_check_search_tag", K_ANY, 0},
	{"circonus_check_display_name", K_ANY, 0},
	{"circonus_check_tags", K_ANY, 0},
	{"circonus_broker_id", K_ANY, 0},
	{"circonus_broker_select_tag", K_ANY, 0},
	{"stackdriver_project_id", K_ANY, 0},
	{"stackdriver_location", K_ANY, 0},
	{"stackdriver_namespace", K_ANY, 0},
	{"stackdriver_debug_logs", K_ANY, 0},
	{NULL, K_ANY, 0},
};

static const struct key_def *key_find(const struct key_def *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* Apply one table-driven key onto base (a struct of the table's type). */
static int key_apply(void *base, const struct key_def *k, const json_t *v, const struct at *a,
	struct verr *err)
{
	char *p = (char *)base + k->off;
	switch (k->kind) {
	case K_STR: return get_str((char **)(void *)p, v, a, err);
	case K_BOOL: return get_bool((bool *)(void *)p, v, a, err);
	case K_INT: return get_int((int64_t *)(void *)p, v, a, err);
	case K_DUR: return get_dur((int64_t *)(void *)p, v, a, err);
	case K_ANY:
		if (json_is_null(v))
			return at_err(err, a, "expected a value, found null");
		return 0;
	case K_SPECIAL: break;
	}
	return 0;
}

/* ---- stanzas ---- */

static void stanza_fini(struct config_stanza *s)
{
	if (!s)
		return;
	free(s->type);
	json_decref(s->options);
	free(s->file);
	memset(s, 0, sizeof(*s));
}

static void listener_fini(struct config_listener *l)
{
	free(l->type);
	free(l->address);
	free(l->cluster_address);
	free(l->tls_cert_file);
	free(l->tls_key_file);
	free(l->tls_client_ca_file);
	free(l->tls_cipher_suites);
	json_decref(l->options);
	free(l->file);
}

/* Call fn(label, body, index) for every labelled occurrence of a block key.
 * val is the normalised JSON value of `key`; stanza names the block in
 * errors ("storage"). */
typedef int occurrence_fn(void *ctx, struct src *s, const char *key, size_t idx,
	const char *label, json_t *body, struct verr *err);

static int for_each_labelled(void *ctx, struct src *s, const char *key, json_t *val,
	occurrence_fn *fn, struct verr *err)
{
	int line = hcl_doc_line(s->doc, key);
	if (!json_is_array(val))
		return cfg_err(err, s, line, NULL, key, "expected a block, as in %s \"TYPE\" { ... }, found %s",
			key, json_kind(val));
	size_t i;
	json_t *occ;
	json_array_foreach(val, i, occ) {
		line = hcl_doc_block_line(s->doc, key, i, NULL);
		if (!json_is_object(occ) || json_object_size(occ) == 0)
			return cfg_err(err, s, line, NULL, key,
				"expected a type label, as in %s \"TYPE\" { ... }", key);
		const char *label;
		json_t *body;
		json_object_foreach(occ, label, body) {
			if (!json_is_object(body))
				return cfg_err(err, s, line, NULL, key,
					"expected a type label, as in %s \"TYPE\" { ... } (found key \"%.64s\")",
					key, label);
			int rc = fn(ctx, s, key, i, label, body, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int stanza_new(struct config_stanza **out, struct src *s, const char *key, size_t idx,
	const char *label, json_t *body, struct verr *err)
{
	char stanza[160];
	snprintf(stanza, sizeof(stanza), "%s \"%.100s\"", key, label);
	int line = hcl_doc_block_line(s->doc, key, idx, NULL);
	if (!*label)
		return cfg_err(err, s, line, stanza, NULL, "the type must not be empty");
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		if (json_is_null(v))
			return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, k), stanza, k,
				"expected a value, found null");
	}
	struct config_stanza *st = calloc(1, sizeof(*st));
	if (!st || !(st->type = strdup(label)) || !(st->file = strdup(s->file)) ||
	    !(st->options = json_deep_copy(body))) {
		stanza_fini(st);
		free(st);
		return oom(err);
	}
	st->line = line;
	*out = st;
	return 0;
}

static int storage_occ(void *ctx, struct src *s, const char *key, size_t idx, const char *label,
	json_t *body, struct verr *err)
{
	struct server_config *c = ctx;
	int ha = !strcmp(key, "ha_storage") || !strcmp(key, "ha_backend");
	int *seen = ha ? &s->ha_seen : &s->storage_seen;
	struct config_stanza **slot = ha ? &c->ha_storage : &c->storage;
	char stanza[160];
	snprintf(stanza, sizeof(stanza), "%s \"%.100s\"", key, label);
	int line = hcl_doc_block_line(s->doc, key, idx, NULL);
	if (*seen)
		return cfg_err(err, s, line, stanza, NULL,
			"more than one %s stanza (the first is at line %d)", ha ? "ha_storage" : "storage",
			(*slot)->line);
	if (!strcmp(label, "file")) {
		json_t *p = json_object_get(body, "path");
		if (!p)
			return cfg_err(err, s, line, stanza, "path", "required (the directory to store data in)");
		if (!json_is_string(p) || !*json_string_value(p))
			return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, "path"), stanza, "path",
				"expected a non-empty string, found %s", json_kind(p));
	}
	struct config_stanza *st = NULL;
	int rc = stanza_new(&st, s, key, idx, label, body, err);
	if (rc)
		return rc;
	stanza_fini(*slot);
	free(*slot);
	*slot = st;
	(*seen)++;
	return 0;
}

static int seal_occ(void *ctx, struct src *s, const char *key, size_t idx, const char *label,
	json_t *body, struct verr *err)
{
	struct server_config *c = ctx;
	char stanza[160];
	snprintf(stanza, sizeof(stanza), "%s \"%.100s\"", key, label);
	if (c->nseals == CONFIG_MAX_SEALS)
		return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, NULL), stanza, NULL,
			"at most three seal stanzas are allowed (several enabled ones with a priority "
			"each, or two for a seal migration)");
	struct config_stanza *st = NULL;
	int rc = stanza_new(&st, s, key, idx, label, body, err);
	if (rc)
		return rc;
	json_t *d = json_object_get(body, "disabled");
	struct at a = {s, hcl_doc_block_line(s->doc, key, idx, "disabled"), stanza, "disabled"};
	if (d && (rc = get_bool(&st->disabled, d, &a, err))) {
		stanza_fini(st);
		free(st);
		return rc;
	}
	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): stanza_new sets st when it returns 0 (the analyzer does not follow the variadic cfg_err) */
	c->seals[c->nseals++] = *st;
	free(st);
	return 0;
}

static int tls_version(enum config_tls_version *out, const json_t *v, const struct at *a,
	struct verr *err)
{
	if (!json_is_string(v))
		return at_err(err, a, "expected a string (\"tls12\" or \"tls13\"), found %s", json_kind(v));
	const char *s = json_string_value(v);
	if (!strcmp(s, "tls12"))
		*out = CONFIG_TLS12;
	else if (!strcmp(s, "tls13"))
		*out = CONFIG_TLS13;
	else if (!strcmp(s, "tls10") || !strcmp(s, "tls11"))
		return at_err(err, a, "\"%s\" is not supported; the minimum is \"tls12\"", s);
	else
		return at_err(err, a, "expected \"tls12\" or \"tls13\", found \"%.32s\"", s);
	return 0;
}

/* A listener's `telemetry { unauthenticated_metrics_access = true }`, written
 * as a block (array of objects) or, in JSON, as an object. */
static int listener_telemetry(struct config_listener *l, json_t *v, struct at *a, struct verr *err)
{
	json_t *one;
	size_t i, n = json_is_array(v) ? json_array_size(v) : 1;
	for (i = 0; i < n; i++) {
		one = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_object(one))
			return at_err(err, a, "expected a block, as in telemetry { ... }, found %s",
				json_kind(one));
		const char *k;
		json_t *x;
		json_object_foreach(one, k, x) {
			if (strcmp(k, "unauthenticated_metrics_access"))
				return at_err(err, a, "unknown key \"%.64s\" (expected unauthenticated_metrics_access)",
					k);
			struct at b = *a;
			b.key = "telemetry.unauthenticated_metrics_access";
			int rc = get_bool(&l->unauthenticated_metrics_access, x, &b, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int listener_occ(void *ctx, struct src *s, const char *key, size_t idx, const char *label,
	json_t *body, struct verr *err)
{
	struct server_config *c = ctx;
	char stanza[160];
	snprintf(stanza, sizeof(stanza), "%s \"%.100s\"", key, label);
	int line = hcl_doc_block_line(s->doc, key, idx, NULL);
	if (strcmp(label, "tcp"))
		return cfg_err(err, s, line, stanza, NULL, "unsupported listener type (only \"tcp\" is supported)");
	void *p = realloc(c->listeners, (c->nlisteners + 1) * sizeof(*c->listeners));
	if (!p)
		return oom(err);
	c->listeners = p;
	struct config_listener *l = &c->listeners[c->nlisteners];
	memset(l, 0, sizeof(*l));
	c->nlisteners++; /* from here config_free owns l */
	l->tls_min_version = CONFIG_TLS12;
	l->tls_max_version = CONFIG_TLS13;
	l->line = line;
	if (!(l->type = strdup(label)) || !(l->file = strdup(s->file)) ||
	    !(l->options = json_deep_copy(body)))
		return oom(err);
	const char *k;
	json_t *v;
	int rc;
	json_object_foreach(body, k, v) {
		struct at a = {s, hcl_doc_block_line(s->doc, key, idx, k), stanza, k};
		const struct key_def *d = key_find(listener_keys, k);
		if (!d)
			return cfg_err(err, s, a.line, stanza, NULL, "unknown key \"%.64s\"", k);
		if (d->kind != K_SPECIAL)
			rc = key_apply(l, d, v, &a, err);
		else if (!strcmp(k, "tls_min_version"))
			rc = tls_version(&l->tls_min_version, v, &a, err);
		else if (!strcmp(k, "tls_max_version"))
			rc = tls_version(&l->tls_max_version, v, &a, err);
		else
			rc = listener_telemetry(l, v, &a, err);
		if (rc)
			return rc;
	}
	if (!l->address && !(l->address = strdup(CONFIG_DEFAULT_ADDRESS)))
		return oom(err);
	if (!*l->address)
		return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, "address"), stanza, "address",
			"must not be empty");
	if (l->max_request_size < 0)
		l->max_request_size = -1;
	{
		static const struct {
			const char *key;
			size_t off;
			int64_t max;
		} lim[] = {
			{"http_read_header_timeout", offsetof(struct config_listener, http_read_header_timeout), 86400},
			{"http_read_timeout", offsetof(struct config_listener, http_read_timeout), 86400},
			{"http_idle_timeout", offsetof(struct config_listener, http_idle_timeout), 86400},
			{"max_connections", offsetof(struct config_listener, max_connections), 1000000},
			{"max_connections_per_ip", offsetof(struct config_listener, max_connections_per_ip), 1000000},
		};
		for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
			int64_t val = *(const int64_t *)(const void *)((const char *)l + lim[i].off);
			if (val < 0 || val > lim[i].max)
				return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, lim[i].key), stanza,
					lim[i].key, "must be between 0 (the default) and %lld",
					(long long)lim[i].max);
		}
	}
	if (l->thread_pool_size < 0 || l->thread_pool_size > 1024)
		return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, "thread_pool_size"), stanza,
			"thread_pool_size", "must be between 0 (a thread per connection) and 1024");
	if (!l->tls_disable) {
		const char *missing = !l->tls_cert_file ? "tls_cert_file" : !l->tls_key_file ? "tls_key_file" : NULL;
		if (missing)
			return cfg_err(err, s, line, stanza, missing,
				"required when TLS is enabled (or set tls_disable = true to serve plain HTTP)");
	}
	if (l->tls_min_version > l->tls_max_version)
		return cfg_err(err, s, hcl_doc_block_line(s->doc, key, idx, "tls_min_version"), stanza,
			"tls_min_version", "is higher than tls_max_version");
	return 0;
}

static int telemetry_apply(struct server_config *c, struct src *s, json_t *val, struct verr *err)
{
	int line = hcl_doc_line(s->doc, "telemetry");
	if (!json_is_array(val))
		return cfg_err(err, s, line, NULL, "telemetry", "expected a block, as in telemetry { ... }, found %s",
			json_kind(val));
	size_t i;
	json_t *occ;
	json_array_foreach(val, i, occ) {
		if (!json_is_object(occ))
			return cfg_err(err, s, line, NULL, "telemetry",
				"expected a block, as in telemetry { ... }, found %s", json_kind(occ));
		if (!c->telemetry.prometheus_retention_time && !json_object_size(c->telemetry.options))
			c->telemetry.prometheus_retention_time = 24 * 3600; /* a telemetry stanza enables it */
		const char *k;
		json_t *v;
		json_object_foreach(occ, k, v) {
			struct at a = {s, hcl_doc_block_line(s->doc, "telemetry", i, k), "telemetry", k};
			const struct key_def *d = key_find(telemetry_keys, k);
			if (!d)
				return cfg_err(err, s, a.line, "telemetry", NULL, "unknown key \"%.64s\"", k);
			int rc = key_apply(&c->telemetry, d, v, &a, err);
			if (rc)
				return rc;
			if (!strcmp(k, "dogstatsd_tags")) {
				bool ok = json_is_array(v);
				size_t ti;
				json_t *tv;
				json_array_foreach(v, ti, tv) ok = ok && json_is_string(tv);
				if (!ok)
					return at_err(err, &a, "expected a list of strings (\"key:value\"), found %s",
						      json_kind(v));
			}
			if (json_object_set(c->telemetry.options, k, v))
				return oom(err);
		}
	}
	return 0;
}

static int experiments_apply(struct server_config *c, struct src *s, json_t *val, struct verr *err)
{
	struct at a = {s, hcl_doc_line(s->doc, "experiments"), NULL, "experiments"};
	if (!json_is_array(val))
		return at_err(err, &a, "expected a list of strings, found %s", json_kind(val));
	size_t i;
	json_t *e;
	json_array_foreach(val, i, e) {
		if (!json_is_string(e))
			return at_err(err, &a, "expected a list of strings, found %s in it", json_kind(e));
	}
	json_t *copy = json_deep_copy(val);
	if (!copy)
		return oom(err);
	json_decref(c->experiments);
	c->experiments = copy;
	return 0;
}

/* Apply one normalised document. */
static int config_apply(struct server_config *c, struct src *s, json_t *doc, struct verr *err)
{
	const char *k;
	json_t *v;
	int rc = 0;
	json_object_foreach(doc, k, v) {
		const struct key_def *d = key_find(top_keys, k);
		if (!d)
			return cfg_err(err, s, hcl_doc_line(s->doc, k), NULL, NULL, "unknown key \"%.64s\"", k);
		if (d->kind != K_SPECIAL) {
			struct at a = {s, hcl_doc_line(s->doc, k), NULL, k};
			rc = key_apply(c, d, v, &a, err);
		} else if (!strcmp(k, "storage") || !strcmp(k, "backend") || !strcmp(k, "ha_storage") ||
			   !strcmp(k, "ha_backend")) {
			rc = for_each_labelled(c, s, k, v, storage_occ, err);
		} else if (!strcmp(k, "seal") || !strcmp(k, "hsm")) {
			rc = for_each_labelled(c, s, k, v, seal_occ, err);
		} else if (!strcmp(k, "listener")) {
			rc = for_each_labelled(c, s, k, v, listener_occ, err);
		} else if (!strcmp(k, "telemetry")) {
			rc = telemetry_apply(c, s, v, err);
		} else {
			rc = experiments_apply(c, s, v, err);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- life cycle ---- */

static int config_alloc(struct server_config **out, struct verr *err)
{
	struct server_config *c = calloc(1, sizeof(*c));
	if (!c)
		return oom(err);
	c->seals = calloc(CONFIG_MAX_SEALS, sizeof(*c->seals));
	c->telemetry.options = json_object();
	c->experiments = json_array();
	if (!c->seals || !c->telemetry.options || !c->experiments) {
		config_free(c);
		return oom(err);
	}
	c->telemetry.usage_gauge_period = 600;
	c->telemetry.maximum_gauge_cardinality = 500;
	*out = c;
	return 0;
}

void config_free(struct server_config *c)
{
	if (!c)
		return;
	stanza_fini(c->storage);
	free(c->storage);
	stanza_fini(c->ha_storage);
	free(c->ha_storage);
	for (size_t i = 0; i < c->nseals; i++)
		stanza_fini(&c->seals[i]);
	free(c->seals);
	for (size_t i = 0; i < c->nlisteners; i++)
		listener_fini(&c->listeners[i]);
	free(c->listeners);
	free(c->telemetry.metrics_prefix);
	free(c->telemetry.statsd_address);
	free(c->telemetry.statsite_address);
	free(c->telemetry.dogstatsd_addr);
	json_decref(c->telemetry.options);
	free(c->api_addr);
	free(c->cluster_addr);
	free(c->cluster_name);
	free(c->log_level);
	free(c->log_format);
	free(c->log_file);
	free(c->pid_file);
	free(c->plugin_directory);
	free(c->license_path);
	free(c->cluster_cipher_suites);
	free(c->log_requests_level);
	json_decref(c->experiments);
	free(c);
}

/* Checks that need every file: defaults and cross-key rules. */
static int config_finish(struct server_config *c, const char *what, struct verr *err)
{
	if (!c->storage)
		return verr_set(err, VERR_INVALID,
			"%s: no storage backend configured (add e.g. storage \"file\" { path = \"/var/lib/coffer\" })",
			what);
	if (!c->default_lease_ttl)
		c->default_lease_ttl = CONFIG_DEFAULT_LEASE_TTL;
	if (!c->max_lease_ttl)
		c->max_lease_ttl = CONFIG_DEFAULT_LEASE_TTL;
	if (c->default_lease_ttl > c->max_lease_ttl)
		return verr_set(err, VERR_INVALID,
			"%s: default_lease_ttl (%llds) is larger than max_lease_ttl (%llds)", what,
			(long long)c->default_lease_ttl, (long long)c->max_lease_ttl);
	if (!c->default_max_request_duration)
		c->default_max_request_duration = CONFIG_DEFAULT_MAX_REQUEST_DURATION;
	if (!c->periodic_interval)
		c->periodic_interval = CONFIG_DEFAULT_PERIODIC_INTERVAL;
	if (c->periodic_interval > 3600)
		return verr_set(err, VERR_INVALID,
			"%s: periodic_interval (%llds) is longer than 1h: periodic work (CRL rebuilds, tidies) would stall",
			what, (long long)c->periodic_interval);
	if (c->log_format && strcmp(c->log_format, "standard") && strcmp(c->log_format, "json"))
		return verr_set(err, VERR_INVALID, "%s: log_format: expected \"standard\" or \"json\", found \"%.32s\"",
			what, c->log_format);
	size_t ndisabled = 0;
	for (size_t i = 0; i < c->nseals; i++)
		ndisabled += c->seals[i].disabled;
	/* one disabled stanza alone: auto -> Shamir; with one enabled: auto -> auto */
	if (ndisabled > 1 || (ndisabled && c->nseals > 2))
		return verr_set(err, VERR_INVALID,
			"%s:%d: seal \"%s\": a seal migration takes one disabled seal stanza and at most one enabled one",
			c->seals[c->nseals - 1].file, c->seals[c->nseals - 1].line, c->seals[c->nseals - 1].type);
	for (size_t i = 0; c->nseals > 1 && !ndisabled && i < c->nseals; i++)
		if (!json_object_get(c->seals[i].options, "priority"))
			return verr_set(err, VERR_INVALID,
				"%s:%d: seal \"%s\": several enabled seal stanzas (multi-seal) need a priority each",
				c->seals[i].file, c->seals[i].line, c->seals[i].type);
	return 0;
}

static int apply_text(struct server_config *c, const char *buf, size_t len, const char *name,
	struct verr *err)
{
	json_t *doc = NULL;
	struct hcl_doc *tree = NULL;
	int rc = hcl_parse_any(&doc, &tree, buf, len, name, err);
	if (rc)
		return rc;
	struct src s = {.file = name, .doc = tree};
	rc = config_apply(c, &s, doc, err);
	json_decref(doc);
	hcl_doc_free(tree);
	return rc;
}

int config_load_buffer(struct server_config **out, const char *buf, size_t len, const char *name,
	struct verr *err)
{
	struct server_config *c = NULL;
	int rc;
	*out = NULL;
	if (!name)
		name = "<config>";
	if ((rc = config_alloc(&c, err)) || (rc = apply_text(c, buf, len, name, err)) ||
	    (rc = config_finish(c, name, err)))
		goto out;
	*out = c;
	c = NULL; /* transferred */
out:
	config_free(c);
	return rc;
}

static int read_file(char **out, size_t *len, const char *path, struct verr *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return verr_set(err, VERR_NOT_FOUND, "%s: cannot open: %s", path, strerror(errno));
	struct buf b;
	buf_init(&b, 8192);
	int r = buf_read_stream(&b, f, HCL_MAX_INPUT);
	fclose(f);
	int rc = 0;
	if (r > 0)
		rc = verr_set(err, VERR_TOO_LARGE, "%s: larger than %u bytes", path, HCL_MAX_INPUT);
	else if (r < 0)
		rc = b.failed ? oom(err) : verr_set(err, VERR_NOT_FOUND, "%s: read error", path);
	size_t n = 0;
	char *buf = rc ? NULL : buf_take(&b, &n);
	if (!rc && !buf)
		rc = oom(err);
	if (rc) {
		buf_free(&b);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int apply_file(struct server_config *c, const char *path, struct verr *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = read_file(&buf, &len, path, err);
	if (rc)
		return rc;
	rc = apply_text(c, buf ? buf : "", len, path, err);
	free(buf);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && !strcmp(s + n - m, suf);
}

static int apply_dir(struct server_config *c, const char *dir, struct verr *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return verr_set(err, VERR_NOT_FOUND, "%s: cannot open directory: %s", dir, strerror(errno));
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !(has_suffix(e->d_name, ".hcl") || has_suffix(e->d_name, ".json")))
			continue;
		char **p = realloc(names, (n + 1) * sizeof(*names));
		if (!p) {
			rc = oom(err);
			goto out;
		}
		names = p;
		if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0) {
			rc = oom(err);
			goto out;
		}
		n++;
	}
	if (n) /* names is NULL in a directory without config files */
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && !rc; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		rc = apply_file(c, names[i], err);
	}
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int config_load(struct server_config **out, char *const *paths, size_t npaths, struct verr *err)
{
	struct server_config *c = NULL;
	int rc;
	*out = NULL;
	if (npaths == 0)
		return verr_set(err, VERR_INVALID, "no configuration file given (use -config=FILE)");
	if ((rc = config_alloc(&c, err)))
		return rc;
	for (size_t i = 0; i < npaths; i++) {
		struct stat st;
		if (stat(paths[i], &st) != 0) {
			rc = verr_set(err, VERR_NOT_FOUND, "%s: %s", paths[i], strerror(errno));
			goto out;
		}
		rc = S_ISDIR(st.st_mode) ? apply_dir(c, paths[i], err) : apply_file(c, paths[i], err);
		if (rc)
			goto out;
	}
	if ((rc = config_finish(c, npaths == 1 ? paths[0] : "configuration", err)))
		goto out;
	*out = c;
	c = NULL; /* transferred */
out:
	config_free(c);
	return rc;
}

int config_dev(struct server_config **out, const char *listen_addr, struct verr *err)
{
	char text[512];
	const char *addr = listen_addr ? listen_addr : CONFIG_DEFAULT_ADDRESS;
	json_t *a = json_string(addr); /* quote the address safely through jansson */
	char *q = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
	json_decref(a);
	if (!q)
		return oom(err);
	int n = snprintf(text, sizeof(text),
		"{\"storage\": {\"inmem\": {}},"
		" \"listener\": {\"tcp\": {\"address\": %s, \"tls_disable\": true}},"
		" \"disable_mlock\": true, \"ui\": true, \"raw_storage_endpoint\": true,"
		" \"telemetry\": {\"prometheus_retention_time\": \"24h\", \"disable_hostname\": true}}",
		q);
	free(q);
	if (n < 0 || (size_t)n >= sizeof(text))
		return verr_set(err, VERR_INVALID, "dev listen address is too long");
	return config_load_buffer(out, text, (size_t)n, "<dev>", err);
}

int64_t config_listener_max_request_size(const struct config_listener *l)
{
	if (l->max_request_size < 0)
		return -1;
	return l->max_request_size ? l->max_request_size : CONFIG_DEFAULT_MAX_REQUEST_SIZE;
}
