/*
 * cmd_kv.c - `kv ...`: the key/value helper commands. Like Vault's, each
 * first asks GET /v1/sys/internal/ui/mounts/<path> which mount serves the
 * path and its KV version (404: an old server, assume v1), then talks to
 * <mount>/data/..., <mount>/metadata/... (v2) or the plain path (v1).
 * `kv put secret/foo a=b` and `kv put -mount=secret foo a=b` are the same.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

struct kvpath {
	char *mount;   /* "secret/" (with slash), or "" when unknown */
	char *partial; /* path below the mount */
	int v2;
};

static void kvpath_free(struct kvpath *k)
{
	free(k->mount);
	free(k->partial);
}

/* Resolve mount and version for `arg` (with -mount, `arg` is below it).
 * Prints the error and returns an exit code on failure. */
static int kv_resolve(struct cli *c, struct kvpath *k, const char *mount_flag, const char *arg)
{
	memset(k, 0, sizeof(*k));
	char *probe = mount_flag ? cli_sanitize_path(mount_flag, 0) : cli_sanitize_path(arg, 0);
	char path[2048];
	snprintf(path, sizeof(path), "sys/internal/ui/mounts/%s", probe);
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = path, .no_wrap = 1};
	struct verr e = {0};
	int rc = 0;
	if (cli_http(c, &rq, &r, &e) != 0) {
		rc = cli_fail(c, CLI_EREMOTE, "%s", e.msg);
		goto out;
	}
	if (r.status == 404) {
		k->v2 = 0;
	} else if (r.status >= 300) {
		char buf[8192];
		cli_api_error_text(buf, sizeof(buf), &r);
		rc = cli_fail(c, CLI_EREMOTE, "Error determining the KV version of %s: %s", probe, buf);
		cli_resp_free(&r);
		goto out;
	} else {
		json_t *d = json_object_get(r.json, "data");
		const char *mp = json_string_value(json_object_get(d, "path"));
		const char *ver = json_string_value(json_object_get(json_object_get(d, "options"), "version"));
		k->v2 = ver && strcmp(ver, "2") == 0;
		if (mp)
			k->mount = cli_sanitize_path(mp, 1);
	}
	cli_resp_free(&r);
	if (mount_flag) {
		free(k->mount);
		k->mount = cli_sanitize_path(mount_flag, 1);
		k->partial = cli_sanitize_path(arg, 0);
	} else {
		char *full = cli_sanitize_path(arg, 0);
		if (!k->mount)
			k->mount = strdup("");
		size_t ml = strlen(k->mount);
		if (ml && (strncmp(full, k->mount, ml) == 0)) {
			k->partial = cli_sanitize_path(full + ml, 0);
		} else if (ml && strncmp(full, k->mount, ml - 1) == 0 && full[ml - 1] == '\0') {
			k->partial = strdup("");
		} else {
			/* unknown mount (v1 fallback): the whole path */
			free(k->mount);
			k->mount = strdup("");
			k->partial = strdup(full);
		}
		free(full);
	}
out:
	free(probe);
	return rc;
}

/* <mount><prefix>/<partial> for v2, <mount><partial> for v1. */
static char *kv_full(const struct kvpath *k, const char *prefix)
{
	char *s = NULL;
	int n;
	if (k->v2 && prefix)
		n = asprintf(&s, "%s%s%s%s", k->mount, prefix, *k->partial ? "/" : "", k->partial);
	else
		n = asprintf(&s, "%s%s", k->mount, k->partial);
	if (n < 0)
		abort();
	return s;
}

static void kv_print_path(struct cli *c, const char *title, const char *path)
{
	char hdr[512];
	cli_pad_header(hdr, sizeof(hdr), title, strlen(path));
	fprintf(c->out, "%s\n%s\n\n", hdr, path);
}

static void kv_print_map_section(struct cli *c, const char *title, const json_t *m)
{
	size_t maxk = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)m, k, v)
	{
		if (strlen(k) > maxk)
			maxk = strlen(k);
	}
	char hdr[512];
	cli_pad_header(hdr, sizeof(hdr), title, maxk + 4 + 5);
	fprintf(c->out, "%s\n", hdr);
	cli_out_map(c->out, m);
}

static int kv_need_v2(struct cli *c, const struct kvpath *k, const char *what)
{
	if (k->v2)
		return 0;
	return cli_fail(c, CLI_EREMOTE, "K/V engine mount must be version 2 for %s support", what);
}

static json_t *versions_json(const struct cli_strlist *vs)
{
	json_t *a = json_array();
	for (size_t i = 0; i < vs->n; i++) {
		char *dup = strdup(vs->v[i]), *save = NULL;
		for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			char *end;
			long long x = strtoll(t, &end, 10);
			if (*t && !*end)
				json_array_append_new(a, json_integer(x));
			else
				json_array_append_new(a, json_string(t));
		}
		free(dup);
	}
	return a;
}

#define KV_MOUNT_FLAG(var) {"mount", CLI_FLAG_STRING, &(var), "Mount path of the KV engine", NULL}

/* The start of the kv commands taking one path: flags (fl includes
 * KV_MOUNT_FLAG(*mount)), exactly one argument, then the mount and KV version
 * serving it. Returns 1 (error printed, exit code in *rc, *k needs no free)
 * when the command should stop. */
static int kv_begin(struct cli *c, const struct cli_flag *fl, int argc, char **argv,
		    const char *const *mount, struct kvpath *k, int *rc)
{
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, rc))
		return 1;
	*rc = kv_resolve(c, k, *mount, argv[0]);
	return *rc != 0;
}

int cli_cmd_kv_get(struct cli *c, int argc, char **argv)
{
	int rc;
	long version = 0;
	const char *mount = NULL;
	struct cli_flag fl[] = {
		{"version", CLI_FLAG_INT, &version, "Version to read (v2)", NULL},
		KV_MOUNT_FLAG(mount),
		{0},
	};
	struct kvpath k;
	if (kv_begin(c, fl, argc, argv, &mount, &k, &rc))
		return rc;
	char *full = kv_full(&k, "data");
	char q[64] = "";
	if (k.v2 && version > 0)
		snprintf(q, sizeof(q), "version=%ld", version);
	char what[2200];
	snprintf(what, sizeof(what), "Error reading %s", full);
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = full, .query = q[0] ? q : NULL};
	rc = cli_call(c, &rq, &r, what, 1);
	if (rc)
		goto out;
	if (!r.json) {
		rc = cli_fail(c, CLI_EREMOTE, "No value found at %s", full);
		goto out_r;
	}
	json_t *sd = json_object_get(r.json, "data");
	if (c->field) {
		if (k.v2) {
			json_t *d = json_object_get(sd, "data");
			if (!json_is_object(d)) {
				rc = cli_fail(c, CLI_EREMOTE, "No data found at %s", full);
				goto out_r;
			}
			rc = cli_output_field(c, json_object_get(d, c->field), c->field);
		} else {
			rc = cli_output_secret(c, r.json);
		}
		goto out_r;
	}
	if (strcmp(cli_format(c), "table") != 0 || json_is_object(json_object_get(r.json, "wrap_info"))) {
		rc = cli_output_secret(c, r.json);
		goto out_r;
	}
	cli_out_warnings(c, r.json);
	if (k.v2)
		kv_print_path(c, "Secret Path", full);
	json_t *md = json_object_get(sd, "metadata");
	if (k.v2 && json_is_object(md)) {
		kv_print_map_section(c, "Metadata", md);
		fprintf(c->out, "\n");
	}
	json_t *data = k.v2 ? json_object_get(sd, "data") : sd;
	if (json_is_object(data))
		kv_print_map_section(c, "Data", data);
	rc = CLI_OK;
out_r:
	cli_resp_free(&r);
out:
	free(full);
	kvpath_free(&k);
	return rc;
}

/* Output of a v2 write (put, patch, rollback): path + metadata table. */
static int kv_write_output(struct cli *c, const struct kvpath *k, const char *full,
			   struct cli_resp *r)
{
	if (!r->json) {
		if (strcmp(cli_format(c), "table") == 0 && !c->field)
			fprintf(c->out, "Success! Data written to: %s\n", full);
		return CLI_OK;
	}
	if (c->field)
		return cli_output_secret(c, r->json);
	if (strcmp(cli_format(c), "table") == 0 && k->v2) {
		cli_out_warnings(c, r->json);
		kv_print_path(c, "Secret Path", full);
		json_t *md = json_object_get(r->json, "data");
		if (json_is_object(md))
			kv_print_map_section(c, "Metadata", md);
		return CLI_OK;
	}
	return cli_output_secret(c, r->json);
}

static int kv_put_or_patch(struct cli *c, int argc, char **argv, int patch)
{
	int rc;
	long cas = -1;
	int cas_set = 0;
	const char *mount = NULL, *method = NULL;
	struct cli_flag fl[] = {
		{"cas", CLI_FLAG_INT, &cas, "Check-and-set version", &cas_set},
		KV_MOUNT_FLAG(mount),
		{"method", CLI_FLAG_STRING, &method, "patch or rw (patch only)", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, -1, &rc))
		return rc;
	if (argc < 2)
		return cli_fail(c, CLI_ELOCAL, "Must supply data");
	json_t *data = NULL;
	struct verr e = {0};
	if (cli_kv_parse(&data, argc - 1, argv + 1, stdin, &e))
		return cli_fail(c, CLI_ELOCAL, "Failed to parse K=V data: %s", e.msg);
	struct kvpath k;
	if ((rc = kv_resolve(c, &k, mount, argv[0])) != 0) {
		json_decref(data);
		return rc;
	}
	char *full = kv_full(&k, "data");
	json_t *body = NULL;
	if (patch && (rc = kv_need_v2(c, &k, "patch")) != 0)
		goto out;
	if (k.v2) {
		body = json_object();
		json_object_set(body, "data", data);
		if (cas_set && cas >= 0) {
			json_t *o = json_object();
			json_object_set_new(o, "cas", json_integer(cas));
			json_object_set_new(body, "options", o);
		}
	} else {
		body = json_incref(data);
	}
	char what[2200];
	snprintf(what, sizeof(what), "Error writing data to %s", full);
	struct cli_resp r;
	struct cli_req rq = {.method = patch ? "PATCH" : "PUT",
			     .path = full,
			     .body = body,
			     .content_type = patch ? "application/merge-patch+json" : NULL};
	rc = cli_call(c, &rq, &r, what, 0);
	if (rc == 0) {
		rc = kv_write_output(c, &k, full, &r);
		cli_resp_free(&r);
	}
out:
	json_decref(body);
	json_decref(data);
	free(full);
	kvpath_free(&k);
	return rc;
}

int cli_cmd_kv_put(struct cli *c, int argc, char **argv)
{
	return kv_put_or_patch(c, argc, argv, 0);
}

int cli_cmd_kv_patch(struct cli *c, int argc, char **argv)
{
	return kv_put_or_patch(c, argc, argv, 1);
}

/* Simple request on a derived path, printing `ok_msg <path>` on success. */
static int kv_simple(struct cli *c, const char *method, const char *path, json_t *body,
		     const char *err_what, const char *ok_msg)
{
	char what[2200];
	snprintf(what, sizeof(what), "%s %s", err_what, path);
	struct cli_resp r;
	struct cli_req rq = {.method = method, .path = path, .body = body};
	int rc = cli_call(c, &rq, &r, what, 0);
	if (rc)
		return rc;
	if (r.json && json_is_object(json_object_get(r.json, "data")))
		rc = cli_output_secret(c, r.json);
	else if (strcmp(cli_format(c), "table") == 0)
		fprintf(c->out, "%s%s\n", ok_msg, path);
	cli_resp_free(&r);
	return rc;
}

/* kv delete, undelete and destroy (op): -versions and one path. delete
 * without -versions, or on a v1 mount, deletes the latest data. */
static int kv_versions_cmd(struct cli *c, int argc, char **argv, const char *op)
{
	int rc, del = strcmp(op, "delete") == 0;
	const char *mount = NULL;
	struct cli_strlist vs = {0};
	struct cli_flag fl[] = {
		{"versions", CLI_FLAG_LIST, &vs, del ? "Versions to delete (v2)" : "Versions", NULL},
		KV_MOUNT_FLAG(mount),
		{0},
	};
	const char *err_what = del ? "Error deleting" : "Error writing data to";
	const char *ok_msg = del ? "Success! Data deleted (if it existed) at: "
				 : "Success! Data written to: ";
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		goto out_vs;
	if (!del && vs.n == 0) {
		rc = cli_fail(c, CLI_ELOCAL, "No versions provided, use the \"-versions\" flag to specify the version to %s.", op);
		goto out_vs;
	}
	struct kvpath k;
	if ((rc = kv_resolve(c, &k, mount, argv[0])) != 0)
		goto out_vs;
	if (del && !(k.v2 && vs.n > 0)) {
		char *full = kv_full(&k, "data");
		rc = kv_simple(c, "DELETE", full, NULL, err_what, ok_msg);
		free(full);
	} else if (del || (rc = kv_need_v2(c, &k, op)) == 0) {
		char *full = kv_full(&k, op);
		json_t *body = json_object();
		json_object_set_new(body, "versions", versions_json(&vs));
		rc = kv_simple(c, "PUT", full, body, err_what, ok_msg);
		json_decref(body);
		free(full);
	}
	kvpath_free(&k);
out_vs:
	cli_strlist_clear(&vs);
	return rc;
}

int cli_cmd_kv_delete(struct cli *c, int argc, char **argv)
{
	return kv_versions_cmd(c, argc, argv, "delete");
}

int cli_cmd_kv_undelete(struct cli *c, int argc, char **argv)
{
	return kv_versions_cmd(c, argc, argv, "undelete");
}

int cli_cmd_kv_destroy(struct cli *c, int argc, char **argv)
{
	return kv_versions_cmd(c, argc, argv, "destroy");
}

int cli_cmd_kv_list(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *mount = NULL;
	struct cli_flag fl[] = {
		KV_MOUNT_FLAG(mount),
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 1, &rc))
		return rc;
	if (argc == 0 && !mount)
		return cli_fail(c, CLI_ELOCAL, "Not enough arguments (expected 1, got 0)");
	struct kvpath k;
	if ((rc = kv_resolve(c, &k, mount, argc ? argv[0] : "")) != 0)
		return rc;
	char *full = kv_full(&k, "metadata");
	char *lp = cli_sanitize_path(full, 1);
	char what[2200];
	snprintf(what, sizeof(what), "Error listing %s", lp);
	struct cli_resp r;
	struct cli_req rq = {.method = "LIST", .path = lp};
	rc = cli_call(c, &rq, &r, what, 1);
	if (rc == 0) {
		json_t *keys = json_object_get(json_object_get(r.json, "data"), "keys");
		if (!r.json || !json_is_array(keys))
			rc = cli_fail(c, CLI_EREMOTE, "No value found at %s", lp);
		else
			rc = cli_output_list(c, r.json);
		cli_resp_free(&r);
	}
	free(lp);
	free(full);
	kvpath_free(&k);
	return rc;
}

int cli_cmd_kv_metadata_get(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *mount = NULL;
	struct cli_flag fl[] = {
		KV_MOUNT_FLAG(mount),
		{0},
	};
	struct kvpath k;
	if (kv_begin(c, fl, argc, argv, &mount, &k, &rc))
		return rc;
	char *full = NULL;
	if ((rc = kv_need_v2(c, &k, "metadata")) != 0)
		goto out;
	full = kv_full(&k, "metadata");
	char what[2200];
	snprintf(what, sizeof(what), "Error reading %s", full);
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = full};
	if ((rc = cli_call(c, &rq, &r, what, 1)) != 0)
		goto out;
	if (!r.json) {
		rc = cli_fail(c, CLI_EREMOTE, "No value found at %s", full);
	} else if (c->field || strcmp(cli_format(c), "table") != 0) {
		rc = cli_output_secret(c, r.json);
	} else {
		json_t *d = json_deep_copy(json_object_get(r.json, "data"));
		json_t *versions = json_incref(json_object_get(d, "versions"));
		json_object_del(d, "versions");
		kv_print_path(c, "Metadata Path", full);
		kv_print_map_section(c, "Metadata", d);
		if (json_is_object(versions)) {
			/* numeric order of version keys */
			long maxv = 0;
			const char *key;
			json_t *v;
			json_object_foreach(versions, key, v)
			{
				long x = strtol(key, NULL, 10);
				if (x > maxv)
					maxv = x;
			}
			for (long i = 1; i <= maxv; i++) {
				char ks[32], title[48];
				snprintf(ks, sizeof(ks), "%ld", i);
				json_t *vv = json_object_get(versions, ks);
				if (!json_is_object(vv))
					continue;
				snprintf(title, sizeof(title), "Version %ld", i);
				fprintf(c->out, "\n");
				kv_print_map_section(c, title, vv);
			}
		}
		json_decref(versions);
		json_decref(d);
		rc = CLI_OK;
	}
	cli_resp_free(&r);
out:
	free(full);
	kvpath_free(&k);
	return rc;
}

int cli_cmd_kv_metadata_put(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *mount = NULL, *dva = NULL;
	long maxv = -1;
	int cas_req = 0, cas_set = 0, maxv_set = 0;
	struct cli_strlist cm = {0};
	struct cli_flag fl[] = {
		KV_MOUNT_FLAG(mount),
		{"max-versions", CLI_FLAG_INT, &maxv, "Versions to keep", &maxv_set},
		{"cas-required", CLI_FLAG_BOOL, &cas_req, "Require check-and-set", &cas_set},
		{"delete-version-after", CLI_FLAG_STRING, &dva, "Delete versions after", NULL},
		{"custom-metadata", CLI_FLAG_KV, &cm, "k=v, repeatable", NULL},
		{0},
	};
	struct kvpath k;
	if (kv_begin(c, fl, argc, argv, &mount, &k, &rc))
		goto out_cm;
	if ((rc = kv_need_v2(c, &k, "metadata")) == 0) {
		json_t *body = json_object();
		if (maxv_set)
			json_object_set_new(body, "max_versions", json_integer(maxv));
		if (cas_set)
			json_object_set_new(body, "cas_required", json_boolean(cas_req));
		if (dva)
			json_object_set_new(body, "delete_version_after", json_string(dva));
		if (cm.n)
			json_object_set_new(body, "custom_metadata", cli_strlist_object(&cm));
		char *full = kv_full(&k, "metadata");
		rc = kv_simple(c, "PUT", full, body, "Error writing data to",
			       "Success! Data written to: ");
		free(full);
		json_decref(body);
	}
	kvpath_free(&k);
out_cm:
	cli_strlist_clear(&cm);
	return rc;
}

int cli_cmd_kv_metadata_delete(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *mount = NULL;
	struct cli_flag fl[] = {
		KV_MOUNT_FLAG(mount),
		{0},
	};
	struct kvpath k;
	if (kv_begin(c, fl, argc, argv, &mount, &k, &rc))
		return rc;
	if ((rc = kv_need_v2(c, &k, "metadata")) == 0) {
		char *full = kv_full(&k, "metadata");
		rc = kv_simple(c, "DELETE", full, NULL, "Error deleting",
			       "Success! Data deleted (if it existed) at: ");
		free(full);
	}
	kvpath_free(&k);
	return rc;
}

int cli_cmd_kv_rollback(struct cli *c, int argc, char **argv)
{
	int rc;
	const char *mount = NULL;
	long version = 0;
	struct cli_flag fl[] = {
		KV_MOUNT_FLAG(mount),
		{"version", CLI_FLAG_INT, &version, "Version to roll back to", NULL},
		{0},
	};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	if (version <= 0)
		return cli_fail(c, CLI_ELOCAL, "Must specify a positive -version to roll back to");
	struct kvpath k;
	if ((rc = kv_resolve(c, &k, mount, argv[0])) != 0)
		return rc;
	char *full = NULL, *meta = NULL;
	json_t *body = NULL;
	struct cli_resp r1 = {0}, r2 = {0}, r3 = {0};
	if ((rc = kv_need_v2(c, &k, "rollback")) != 0)
		goto out;
	full = kv_full(&k, "data");
	meta = kv_full(&k, "metadata");
	char what[2200];
	snprintf(what, sizeof(what), "Error reading %s", meta);
	struct cli_req q1 = {.method = "GET", .path = meta};
	if ((rc = cli_call(c, &q1, &r1, what, 0)) != 0)
		goto out;
	json_int_t cur = json_integer_value(
		json_object_get(json_object_get(r1.json, "data"), "current_version"));
	char q[64];
	snprintf(q, sizeof(q), "version=%ld", version);
	snprintf(what, sizeof(what), "Error reading %s", full);
	struct cli_req q2 = {.method = "GET", .path = full, .query = q};
	if ((rc = cli_call(c, &q2, &r2, what, 0)) != 0)
		goto out;
	json_t *d = json_object_get(json_object_get(r2.json, "data"), "data");
	if (!json_is_object(d)) {
		rc = cli_fail(c, CLI_EREMOTE, "No data found at %s version %ld (deleted or destroyed?)",
			      full, version);
		goto out;
	}
	body = json_pack("{s:O, s:{s:I}}", "data", d, "options", "cas", cur);
	snprintf(what, sizeof(what), "Error writing data to %s", full);
	struct cli_req q3 = {.method = "PUT", .path = full, .body = body};
	if ((rc = cli_call(c, &q3, &r3, what, 0)) != 0)
		goto out;
	rc = kv_write_output(c, &k, full, &r3);
out:
	cli_resp_free(&r1);
	cli_resp_free(&r2);
	cli_resp_free(&r3);
	json_decref(body);
	free(full);
	free(meta);
	kvpath_free(&k);
	return rc;
}
