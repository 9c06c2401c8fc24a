/*
 * cmd_sys.c - mount and policy management: `secrets`, `auth`, `policy` and
 * `audit` (including the Coffer extension `audit verify`, which checks a
 * tamper-evident audit log; the chain format is in docs/cli.md).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

/* One request; on 2xx print ok (a printf format with one %s) unless the
 * response carries data. */
static int sys_simple(struct cli *c, const char *method, const char *path, json_t *body,
		      const char *what, const char *okfmt, const char *okarg)
{
	struct cli_resp r;
	struct cli_req rq = {.method = method, .path = path, .body = body};
	int rc = cli_call(c, &rq, &r, what, 0);
	if (rc)
		return rc;
	cli_out_warnings(c, r.json);
	if (okfmt) {
		fprintf(c->out, okfmt, okarg);
		fputc('\n', c->out);
	}
	cli_resp_free(&r);
	return CLI_OK;
}

static void list_into(json_t *obj, const char *key, const struct cli_strlist *l)
{
	if (!l->n)
		return;
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	json_object_set_new(obj, key, a);
}

/* ---- secrets / auth enable, tune ---- */
struct mount_flags {
	const char *path, *description, *dlt, *mlt, *listing, *plugin_version, *token_type;
	long version;
	int local, seal_wrap, force_no_cache, ext_entropy;
	int local_set, seal_set, fnc_set;
	struct cli_strlist options, ahreq, ahresp, passthrough, allowed_resp, allowed_ids;
};

static void mount_flags_clear(struct mount_flags *m)
{
	cli_strlist_clear(&m->options);
	cli_strlist_clear(&m->ahreq);
	cli_strlist_clear(&m->ahresp);
	cli_strlist_clear(&m->passthrough);
	cli_strlist_clear(&m->allowed_resp);
	cli_strlist_clear(&m->allowed_ids);
}

static json_t *mount_config(const struct mount_flags *m)
{
	json_t *cfg = json_object();
	if (m->dlt)
		json_object_set_new(cfg, "default_lease_ttl", json_string(m->dlt));
	if (m->mlt)
		json_object_set_new(cfg, "max_lease_ttl", json_string(m->mlt));
	if (m->fnc_set)
		json_object_set_new(cfg, "force_no_cache", json_boolean(m->force_no_cache));
	if (m->listing)
		json_object_set_new(cfg, "listing_visibility", json_string(m->listing));
	if (m->token_type)
		json_object_set_new(cfg, "token_type", json_string(m->token_type));
	list_into(cfg, "audit_non_hmac_request_keys", &m->ahreq);
	list_into(cfg, "audit_non_hmac_response_keys", &m->ahresp);
	list_into(cfg, "passthrough_request_headers", &m->passthrough);
	list_into(cfg, "allowed_response_headers", &m->allowed_resp);
	list_into(cfg, "allowed_managed_keys", &m->allowed_ids);
	return cfg;
}

#define MOUNT_FLAGS(m)                                                                            \
	{"path", CLI_FLAG_STRING, &(m).path, "Mount path", NULL},                                  \
	{"description", CLI_FLAG_STRING, &(m).description, "Description", NULL},                   \
	{"default-lease-ttl", CLI_FLAG_STRING, &(m).dlt, "Default lease TTL", NULL},               \
	{"max-lease-ttl", CLI_FLAG_STRING, &(m).mlt, "Max lease TTL", NULL},                       \
	{"listing-visibility", CLI_FLAG_STRING, &(m).listing, "unauth or hidden", NULL},            \
	{"force-no-cache", CLI_FLAG_BOOL, &(m).force_no_cache, "No cache", &(m).fnc_set},           \
	{"options", CLI_FLAG_KV, &(m).options, "k=v, repeatable", NULL},                          \
	{"version", CLI_FLAG_INT, &(m).version, "KV version (sets options version)", NULL},        \
	{"local", CLI_FLAG_BOOL, &(m).local, "Not replicated", &(m).local_set},                      \
	{"seal-wrap", CLI_FLAG_BOOL, &(m).seal_wrap, "Seal wrap", &(m).seal_set},                    \
	{"external-entropy-access", CLI_FLAG_BOOL, &(m).ext_entropy, "Entropy", NULL},               \
	{"plugin-version", CLI_FLAG_STRING, &(m).plugin_version, "Plugin version", NULL},          \
	{"token-type", CLI_FLAG_STRING, &(m).token_type, "Token type (auth)", NULL},               \
	{"audit-non-hmac-request-keys", CLI_FLAG_LIST, &(m).ahreq, "", NULL},                        \
	{"audit-non-hmac-response-keys", CLI_FLAG_LIST, &(m).ahresp, "", NULL},                      \
	{"passthrough-request-headers", CLI_FLAG_LIST, &(m).passthrough, "", NULL},                  \
	{"allowed-response-headers", CLI_FLAG_LIST, &(m).allowed_resp, "", NULL},                    \
	{"allowed-managed-keys", CLI_FLAG_LIST, &(m).allowed_ids, "", NULL}

/* -options k=v and -version as a mount's options object. */
static json_t *mount_options(const struct mount_flags *m)
{
	json_t *opts = cli_strlist_object(&m->options);
	if (m->version > 0) {
		char vs[24];
		snprintf(vs, sizeof(vs), "%ld", m->version);
		json_object_set_new(opts, "version", json_string(vs));
	}
	return opts;
}

/* body.options = opts (taken), left out when empty. */
static void mount_options_set(json_t *body, json_t *opts)
{
	if (json_object_size(opts))
		json_object_set_new(body, "options", opts);
	else
		json_decref(opts);
}

static int mount_enable(struct cli *c, const struct mount_flags *m, const char *type, int auth)
{
	char *path = cli_sanitize_path(m->path ? m->path : type, 1);
	json_t *body = json_object();
	json_t *opts = mount_options(m);
	if (!auth && strcmp(type, "kv-v2") == 0) {
		type = "kv";
		json_object_set_new(opts, "version", json_string("2"));
	}
	json_object_set_new(body, "type", json_string(type));
	json_object_set_new(body, "description", json_string(m->description ? m->description : ""));
	json_object_set_new(body, "config", mount_config(m));
	json_object_set_new(body, "local", json_boolean(m->local));
	json_object_set_new(body, "seal_wrap", json_boolean(m->seal_wrap));
	if (!auth)
		json_object_set_new(body, "external_entropy_access", json_boolean(m->ext_entropy));
	if (m->plugin_version)
		json_object_set_new(body, "plugin_version", json_string(m->plugin_version));
	mount_options_set(body, opts);
	char rp[1200], what[1300], ok[1300];
	snprintf(rp, sizeof(rp), "sys/%s/%s", auth ? "auth" : "mounts", path);
	if (auth) {
		snprintf(what, sizeof(what), "Error enabling %s auth", type);
		snprintf(ok, sizeof(ok), "Success! Enabled %s auth method at: %%s", type);
	} else {
		snprintf(what, sizeof(what), "Error enabling");
		snprintf(ok, sizeof(ok), "Success! Enabled the %s secrets engine at: %%s", type);
	}
	int rc = sys_simple(c, "POST", rp, body, what, ok, path);
	json_decref(body);
	free(path);
	return rc;
}

static int mount_tune(struct cli *c, const struct mount_flags *m, const char *arg, int auth)
{
	char *path = cli_sanitize_path(arg, 1);
	json_t *body = mount_config(m);
	if (m->description)
		json_object_set_new(body, "description", json_string(m->description));
	if (m->plugin_version)
		json_object_set_new(body, "plugin_version", json_string(m->plugin_version));
	mount_options_set(body, mount_options(m));
	char rp[1200], what[1300];
	snprintf(rp, sizeof(rp), "sys/%s/%stune", auth ? "auth" : "mounts", path);
	snprintf(what, sizeof(what), "Error tuning %s %s", auth ? "auth method" : "secrets engine",
		 path);
	int rc = sys_simple(c, "POST", rp, body, what,
			    auth ? "Success! Tuned the auth method at: %s"
				 : "Success! Tuned the secrets engine at: %s",
			    path);
	json_decref(body);
	free(path);
	return rc;
}

/* secrets/auth enable and tune: the mount flags, then one argument (the
 * type to enable, or the path to tune). */
static int mount_write(struct cli *c, int argc, char **argv, int auth, int tune)
{
	int rc;
	struct mount_flags m = {0};
	struct cli_flag fl[] = {MOUNT_FLAGS(m), {0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc) == 0)
		rc = tune ? mount_tune(c, &m, argv[0], auth) : mount_enable(c, &m, argv[0], auth);
	mount_flags_clear(&m);
	return rc;
}

int cli_cmd_secrets_enable(struct cli *c, int argc, char **argv)
{
	return mount_write(c, argc, argv, 0, 0);
}

int cli_cmd_auth_enable(struct cli *c, int argc, char **argv)
{
	return mount_write(c, argc, argv, 1, 0);
}

int cli_cmd_secrets_tune(struct cli *c, int argc, char **argv)
{
	return mount_write(c, argc, argv, 0, 1);
}

int cli_cmd_auth_tune(struct cli *c, int argc, char **argv)
{
	return mount_write(c, argc, argv, 1, 1);
}

static int mount_disable(struct cli *c, int argc, char **argv, int auth)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *path = cli_sanitize_path(argv[0], 1);
	char rp[1200], what[1300];
	snprintf(rp, sizeof(rp), "sys/%s/%s", auth ? "auth" : "mounts", path);
	snprintf(what, sizeof(what), "Error disabling %s at %s",
		 auth ? "auth method" : "secrets engine", path);
	rc = sys_simple(c, "DELETE", rp, NULL, what,
			auth ? "Success! Disabled the auth method (if it existed) at: %s"
			     : "Success! Disabled the secrets engine (if it existed) at: %s",
			path);
	free(path);
	return rc;
}

int cli_cmd_secrets_disable(struct cli *c, int argc, char **argv)
{
	return mount_disable(c, argc, argv, 0);
}

int cli_cmd_auth_disable(struct cli *c, int argc, char **argv)
{
	return mount_disable(c, argc, argv, 1);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The mount map of a sys/mounts or sys/auth response: data, or the top
 * level minus the envelope keys for servers that only inject. */
static json_t *mount_map(json_t *resp)
{
	json_t *d = json_object_get(resp, "data");
	if (json_is_object(d) && json_object_size(d))
		return json_incref(d);
	json_t *m = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(resp, k, v)
	{
		if (json_is_object(v) && json_object_get(v, "type"))
			json_object_set(m, k, v);
	}
	return m;
}

static int mount_list(struct cli *c, int argc, char **argv, int auth)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "GET", auth ? "sys/auth" : "sys/mounts",
			    auth ? "Error listing enabled authentications"
				 : "Error listing secrets engines",
			    &r, &rc))
		return rc;
	json_t *m = mount_map(r.json);
	if (strcmp(cli_format(c), "table") != 0) {
		cli_output_data(c, m);
		goto out;
	}
	size_t n = json_object_size(m);
	const char **ks = calloc(n + 1, sizeof(*ks));
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach(m, k, v) ks[i++] = k;
	qsort(ks, n, sizeof(*ks), cmp_cstr);
	int det = c->detailed;
	size_t ncols = det ? 8 : 4;
	const char **cells = calloc((n + 1) * ncols, sizeof(*cells));
	char **owned = calloc((n + 1) * ncols, sizeof(*owned));
	static const char *const hdr[] = {"Path", "Type", "Accessor", "Description"};
	static const char *const hdr_det[] = {"Path", "Plugin", "Accessor", "Default TTL",
					      "Max TTL", "Replication", "Seal Wrap", "Description"};
	for (size_t col = 0; col < ncols; col++)
		cells[col] = det ? hdr_det[col] : hdr[col];
	for (i = 0; i < n; i++) {
		json_t *e = json_object_get(m, ks[i]);
		const char **row = cells + (i + 1) * ncols;
		char **orow = owned + (i + 1) * ncols;
		row[0] = ks[i];
		row[1] = json_string_value(json_object_get(e, "type"));
		row[2] = json_string_value(json_object_get(e, "accessor"));
		const char *desc = json_string_value(json_object_get(e, "description"));
		if (!det) {
			row[3] = desc;
			continue;
		}
		json_t *cfg = json_object_get(e, "config");
		for (int t = 0; t < 2; t++) {
			json_t *ttl = json_object_get(cfg, t ? "max_lease_ttl" : "default_lease_ttl");
			json_int_t s = json_integer_value(ttl);
			char d[64];
			if (s == 0)
				snprintf(d, sizeof(d), "system");
			else
				cli_fmt_duration(d, sizeof(d), s);
			orow[3 + t] = strdup(d);
			row[3 + t] = orow[3 + t];
		}
		row[5] = json_is_true(json_object_get(e, "local")) ? "local" : "replicated";
		row[6] = json_is_true(json_object_get(e, "seal_wrap")) ? "true" : "false";
		row[7] = desc;
	}
	cli_table(c->out, cells, n + 1, ncols);
	for (i = 0; i < (n + 1) * ncols; i++)
		free(owned[i]);
	free(owned);
	free(cells);
	free(ks);
out:
	json_decref(m);
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_cmd_secrets_list(struct cli *c, int argc, char **argv)
{
	return mount_list(c, argc, argv, 0);
}

int cli_cmd_auth_list(struct cli *c, int argc, char **argv)
{
	return mount_list(c, argc, argv, 1);
}

int cli_cmd_secrets_move(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 2, 2, &rc))
		return rc;
	char *from = cli_sanitize_path(argv[0], 1), *to = cli_sanitize_path(argv[1], 1);
	json_t *body = json_pack("{s:s, s:s}", "from", from, "to", to);
	char what[2600];
	snprintf(what, sizeof(what), "Error moving secrets engine %s to %s", from, to);
	struct cli_resp r;
	struct cli_req rq = {.method = "POST", .path = "sys/remount", .body = body};
	rc = cli_call(c, &rq, &r, what, 0);
	if (rc == 0) {
		const char *mid = json_string_value(json_object_get(r.json, "migration_id"));
		if (!mid)
			mid = json_string_value(
				json_object_get(json_object_get(r.json, "data"), "migration_id"));
		for (int tries = 0; mid && tries < 100; tries++) {
			char sp[512];
			snprintf(sp, sizeof(sp), "sys/remount/status/%s", mid);
			struct cli_resp s;
			struct cli_req sq = {.method = "GET", .path = sp};
			if (cli_call(c, &sq, &s, what, 0) != 0) {
				rc = CLI_EREMOTE;
				break;
			}
			const char *st = json_string_value(json_object_get(
				json_object_get(json_object_get(s.json, "data"), "migration_info"),
				"status"));
			int done = !st || strcmp(st, "success") == 0;
			int failed = st && strcmp(st, "failure") == 0;
			cli_resp_free(&s);
			if (failed) {
				rc = cli_fail(c, CLI_EREMOTE, "%s: migration failed", what);
				break;
			}
			if (done)
				break;
			usleep(100000);
		}
		if (rc == 0)
			fprintf(c->out, "Success! Finished moving secrets engine %s to %s\n", from, to);
		cli_resp_free(&r);
	}
	json_decref(body);
	free(from);
	free(to);
	return rc;
}

/* ---- policy ---- */
int cli_cmd_policy_write(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 2, 2, &rc))
		return rc;
	char *text = NULL;
	struct verr e = {0};
	if (cli_read_file(&text, NULL, argv[1], stdin, &e))
		return cli_fail(c, CLI_ELOCAL, "Error opening policy file: %s", e.msg);
	char *name = cli_sanitize_path(argv[0], 0);
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	json_t *body = json_pack("{s:s}", "policy", text);
	char rp[1200], what[1300];
	snprintf(rp, sizeof(rp), "sys/policies/acl/%s", name);
	snprintf(what, sizeof(what), "Error uploading policy");
	rc = sys_simple(c, "PUT", rp, body, what, "Success! Uploaded policy: %s", name);
	json_decref(body);
	free(text);
	free(name);
	return rc;
}

int cli_cmd_policy_read(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *name = cli_sanitize_path(argv[0], 0);
	char rp[1200], what[1300];
	snprintf(rp, sizeof(rp), "sys/policies/acl/%s", name);
	snprintf(what, sizeof(what), "Error reading policy named %s", name);
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = rp};
	rc = cli_call(c, &rq, &r, what, 1);
	if (rc == 0) {
		json_t *d = json_object_get(r.json, "data");
		const char *pol = json_string_value(json_object_get(d, "policy"));
		if (!pol)
			pol = json_string_value(json_object_get(d, "rules"));
		if (!r.json || !pol) {
			rc = cli_fail(c, CLI_EREMOTE, "No policy named: %s", name);
		} else if (c->field) {
			rc = cli_output_field(c, json_object_get(d, c->field), c->field);
		} else if (strcmp(cli_format(c), "table") == 0) {
			size_t n = strlen(pol);
			while (n > 0 && (pol[n - 1] == '\n' || pol[n - 1] == ' '))
				n--;
			fprintf(c->out, "%.*s\n", (int)n, pol);
		} else {
			json_t *o = json_pack("{s:s, s:s}", "policy", pol, "name", name);
			rc = cli_output_data(c, o);
			json_decref(o);
		}
		cli_resp_free(&r);
	}
	free(name);
	return rc;
}

int cli_cmd_policy_list(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "LIST", "sys/policies/acl", "Error listing policies", &r,
			    &rc))
		return rc;
	json_t *keys = json_object_get(json_object_get(r.json, "data"), "keys");
	if (!json_is_array(keys))
		keys = json_object_get(r.json, "policies");
	if (strcmp(cli_format(c), "table") != 0) {
		cli_output_data(c, keys ? keys : json_array());
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(keys, i, e) fprintf(c->out, "%s\n", json_string_value(e));
	}
	cli_resp_free(&r);
	return CLI_OK;
}

int cli_cmd_policy_delete(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *name = cli_sanitize_path(argv[0], 0);
	char rp[1200], what[1300];
	snprintf(rp, sizeof(rp), "sys/policies/acl/%s", name);
	snprintf(what, sizeof(what), "Error deleting %s", name);
	rc = sys_simple(c, "DELETE", rp, NULL, what, "Success! Deleted policy: %s", name);
	free(name);
	return rc;
}

/* ---- audit ---- */
int cli_cmd_audit_enable(struct cli *c, int argc, char **argv)
{
	int rc, local = 0;
	const char *path = NULL, *desc = NULL;
	struct cli_flag fl[] = {
		{"path", CLI_FLAG_STRING, &path, "Device path", NULL},
		{"description", CLI_FLAG_STRING, &desc, "Description", NULL},
		{"local", CLI_FLAG_BOOL, &local, "Not replicated", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, -1, &rc))
		return rc;
	const char *type = argv[0];
	json_t *opts = NULL;
	struct verr e = {0};
	if (cli_kv_parse(&opts, argc - 1, argv + 1, stdin, &e))
		return cli_fail(c, CLI_ELOCAL, "Failed to parse K=V data: %s", e.msg);
	char *p = cli_sanitize_path(path ? path : type, 1);
	json_t *body = json_object();
	json_object_set_new(body, "type", json_string(type));
	json_object_set_new(body, "description", json_string(desc ? desc : ""));
	json_object_set_new(body, "options", opts);
	json_object_set_new(body, "local", json_boolean(local));
	char rp[1200], ok[1300];
	snprintf(rp, sizeof(rp), "sys/audit/%s", p);
	snprintf(ok, sizeof(ok), "Success! Enabled the %s audit device at: %%s", type);
	rc = sys_simple(c, "PUT", rp, body, "Error enabling audit device", ok, p);
	json_decref(body);
	free(p);
	return rc;
}

int cli_cmd_audit_disable(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *p = cli_sanitize_path(argv[0], 1);
	char rp[1200];
	snprintf(rp, sizeof(rp), "sys/audit/%s", p);
	rc = sys_simple(c, "DELETE", rp, NULL, "Error disabling audit device",
			"Success! Disabled audit device (if it was enabled) at: %s", p);
	free(p);
	return rc;
}

int cli_cmd_audit_list(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_resp r;
	if (cli_call_noargs(c, argc, argv, "GET", "sys/audit", "Error listing audits", &r, &rc))
		return rc;
	json_t *m = mount_map(r.json);
	if (strcmp(cli_format(c), "table") != 0) {
		cli_output_data(c, m);
		rc = CLI_OK;
		goto out;
	}
	size_t n = json_object_size(m);
	if (n == 0) {
		fprintf(c->out, "No audit devices are enabled.\n");
		rc = CLI_EREMOTE;
		goto out;
	}
	const char **ks = calloc(n, sizeof(*ks));
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach(m, k, v) ks[i++] = k;
	qsort(ks, n, sizeof(*ks), cmp_cstr);
	size_t ncols = c->detailed ? 5 : 3;
	const char **cells = calloc((n + 1) * ncols, sizeof(*cells));
	char **owned = calloc(n + 1, sizeof(*owned));
	cells[0] = "Path";
	cells[1] = "Type";
	cells[2] = "Description";
	if (c->detailed) {
		cells[3] = "Replication";
		cells[4] = "Options";
	}
	for (i = 0; i < n; i++) {
		json_t *e = json_object_get(m, ks[i]);
		const char **row = cells + (i + 1) * ncols;
		row[0] = ks[i];
		row[1] = json_string_value(json_object_get(e, "type"));
		row[2] = json_string_value(json_object_get(e, "description"));
		if (c->detailed) {
			row[3] = json_is_true(json_object_get(e, "local")) ? "local" : "replicated";
			owned[i] = cli_fmt_value(json_object_get(e, "options"));
			row[4] = owned[i];
		}
	}
	cli_table(c->out, cells, n + 1, ncols);
	for (i = 0; i <= n; i++)
		free(owned[i]);
	free(owned);
	free(cells);
	free(ks);
	rc = CLI_OK;
out:
	json_decref(m);
	cli_resp_free(&r);
	return rc;
}

/* Decode base64 (standard alphabet, padding optional) into a malloc'd
 * buffer. Returns 0 on success. */
static int b64_decode(unsigned char **out, size_t *outlen, const char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	char *pad = malloc(n + 4);
	if (!pad)
		abort();
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): padded below and passed with its length */
	memcpy(pad, s, n);
	while (n % 4)
		pad[n++] = '=';
	unsigned char *buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		abort();
	int l = EVP_DecodeBlock(buf, (const unsigned char *)pad, (int)n);
	if (l < 0) {
		free(pad);
		free(buf);
		return -1;
	}
	size_t pads = 0;
	for (size_t i = n; i > 0 && pad[i - 1] == '='; i--)
		pads++;
	free(pad);
	*out = buf;
	*outlen = (size_t)l - pads;
	return 0;
}

int cli_cmd_audit_verify(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *device = NULL, *keyfile = NULL;
	struct cli_flag fl[] = {
		{"path", CLI_FLAG_STRING, &device, "Audit device path (fetch its chain key)", NULL},
		{"key-file", CLI_FLAG_STRING, &keyfile, "File with the base64 chain key", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	if (!device && !keyfile)
		return cli_fail(c, CLI_ELOCAL, "Either -path=DEVICE or -key-file=FILE is required");
	char *keyb64 = NULL, *log = NULL;
	unsigned char *key = NULL;
	size_t keylen = 0, loglen = 0;
	struct verr e = {0};
	if (keyfile) {
		if (cli_read_file(&keyb64, NULL, keyfile, stdin, &e)) {
			rc = cli_fail(c, CLI_ELOCAL, "Error reading key file: %s", e.msg);
			goto out;
		}
	} else {
		char *p = cli_sanitize_path(device, 0);
		char rp[1200];
		snprintf(rp, sizeof(rp), "sys/audit/%s/chain-key", p);
		free(p);
		struct cli_resp r;
		struct cli_req rq = {.method = "GET", .path = rp};
		if ((rc = cli_call(c, &rq, &r, "Error fetching the audit chain key", 0)) != 0)
			goto out;
		const char *k = json_string_value(json_object_get(json_object_get(r.json, "data"), "key"));
		keyb64 = k ? strdup(k) : NULL;
		cli_resp_free(&r);
		if (!keyb64) {
			rc = cli_fail(c, CLI_EREMOTE, "Error fetching the audit chain key: no data.key in the response");
			goto out;
		}
	}
	if (b64_decode(&key, &keylen, keyb64) || keylen == 0) {
		rc = cli_fail(c, CLI_ELOCAL, "The chain key is not valid base64");
		goto out;
	}
	if (cli_read_file(&log, &loglen, argv[0], stdin, &e)) {
		rc = cli_fail(c, CLI_ELOCAL, "Error reading audit log: %s", e.msg);
		goto out;
	}
	if (loglen > 0 && log[loglen - 1] == '\n')
		loglen--; /* the last line's terminator does not start a new line */
	struct cli_chain_result res;
	cli_chain_verify(&res, key, keylen, log, loglen);
	if (strcmp(cli_format(c), "json") == 0 || strcmp(cli_format(c), "yaml") == 0) {
		json_t *o = json_pack("{s:b, s:I, s:I, s:s}", "ok", res.problem == CLI_CHAIN_OK,
				      "entries", (json_int_t)res.entries, "line",
				      (json_int_t)res.line, "reason", res.reason);
		cli_output_data(c, o);
		json_decref(o);
	} else if (res.problem == CLI_CHAIN_OK) {
		fprintf(c->out, "%s\n", res.reason);
	} else {
		fprintf(c->err, "line %zu: %s\n", res.line, res.reason);
	}
	rc = res.problem == CLI_CHAIN_OK ? CLI_OK : CLI_EREMOTE;
out:
	if (key) {
		OPENSSL_cleanse(key, keylen);
		free(key);
	}
	if (keyb64) {
		OPENSSL_cleanse(keyb64, strlen(keyb64));
		free(keyb64);
	}
	free(log);
	return rc;
}
