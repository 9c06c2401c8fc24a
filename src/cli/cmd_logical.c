/*
 * cmd_logical.c - the generic path commands: read, write, list, delete,
 * patch, path-help. Each maps to one request on /v1/<path>, like Vault's.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Query string from k=v arguments (read's extra data), URL-escaped. */
static char *query_from_kv(int argc, char **argv)
{
	size_t cap = 1, n = 0;
	for (int i = 0; i < argc; i++)
		cap += strlen(argv[i]) * 3 + 1;
	char *q = malloc(cap);
	if (!q)
		abort();
	q[0] = '\0';
	for (int i = 0; i < argc; i++) {
		if (i)
			q[n++] = '&';
		for (const char *p = argv[i]; *p; p++) {
			unsigned char ch = (unsigned char)*p;
			if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') || strchr("-_.~=", ch))
				q[n++] = (char)ch;
			else
				n += (size_t)snprintf(q + n, cap - n, "%%%02X", ch);
		}
	}
	q[n] = '\0';
	return q;
}

/* One request on the path argv[0]; k=v arguments after it become the query
 * string, and what_fmt ("Error reading %s") names a failure with the path.
 * Returns 0 with the response in *r and the cleaned path in *path (the caller
 * frees both), or the exit code with nothing left to free. */
static int path_call(struct cli *c, int argc, char **argv, const char *method, int add_slash,
		     const char *what_fmt, int allow_404, struct cli_resp *r, char **path)
{
	*path = cli_sanitize_path(argv[0], add_slash);
	char *query = argc > 1 ? query_from_kv(argc - 1, argv + 1) : NULL;
	char what[1200];
	snprintf(what, sizeof(what), what_fmt, *path);
	struct cli_req rq = {.method = method, .path = *path, .query = query};
	int rc = cli_call(c, &rq, r, what, allow_404);
	free(query);
	if (rc) {
		free(*path);
		*path = NULL;
	}
	return rc;
}

int cli_cmd_read(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, -1, &rc))
		return rc;
	struct cli_resp r;
	char *path;
	if ((rc = path_call(c, argc, argv, "GET", 0, "Error reading %s", 1, &r, &path)) != 0)
		return rc;
	if (!r.json) {
		rc = cli_fail(c, CLI_EREMOTE, "No value found at %s", path);
	} else if (strcmp(cli_format(c), "raw") == 0) {
		fwrite(r.body, 1, r.len, c->out);
		rc = CLI_OK;
	} else {
		rc = cli_output_secret(c, r.json);
	}
	cli_resp_free(&r);
	free(path);
	return rc;
}

/* write and patch: k=v data sent as PUT or as a JSON merge patch. */
static int write_data(struct cli *c, int argc, char **argv, int patch)
{
	int rc, force = 0;
	struct cli_flag write_fl[] = {
		{"force", CLI_FLAG_BOOL, &force, "Allow no data", NULL},
		{"f", CLI_FLAG_BOOL, &force, "Alias of -force", NULL},
		{0},
	};
	struct cli_flag patch_fl[] = {{0}};
	if (cli_parse_args(c, patch ? patch_fl : write_fl, &argc, &argv, patch ? 2 : 1, -1, &rc))
		return rc;
	if (argc == 1 && !force)
		return cli_fail(c, CLI_ELOCAL, "Must supply data or use -force");
	json_t *data = NULL;
	struct verr e = {0};
	if (cli_kv_parse(&data, argc - 1, argv + 1, stdin, &e))
		return cli_fail(c, CLI_ELOCAL, "Failed to parse K=V data: %s", e.msg);
	char *path = cli_sanitize_path(argv[0], 0);
	char what[1200];
	snprintf(what, sizeof(what), "Error writing data to %s", path);
	struct cli_resp r;
	struct cli_req rq = {.method = patch ? "PATCH" : "PUT",
			     .path = path,
			     .body = data,
			     .content_type = patch ? "application/merge-patch+json" : NULL};
	rc = cli_call(c, &rq, &r, what, 0);
	if (rc)
		goto out;
	if (!r.json) {
		if (!c->field && strcmp(cli_format(c), "table") == 0)
			fprintf(c->out, "Success! Data written to: %s\n", path);
		rc = CLI_OK;
	} else {
		rc = cli_output_secret(c, r.json);
	}
	cli_resp_free(&r);
out:
	json_decref(data);
	free(path);
	return rc;
}

int cli_cmd_write(struct cli *c, int argc, char **argv)
{
	return write_data(c, argc, argv, 0);
}

int cli_cmd_patch(struct cli *c, int argc, char **argv)
{
	return write_data(c, argc, argv, 1);
}

int cli_cmd_list(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	struct cli_resp r;
	char *path;
	if ((rc = path_call(c, argc, argv, "LIST", 1, "Error listing %s", 1, &r, &path)) != 0)
		return rc;
	if (!r.json || !json_is_object(json_object_get(r.json, "data")))
		rc = cli_fail(c, CLI_EREMOTE, "No value found at %s", path);
	else if (!json_is_array(json_object_get(json_object_get(r.json, "data"), "keys")))
		rc = cli_fail(c, CLI_EREMOTE, "No entries found at %s", path);
	else
		rc = cli_output_list(c, r.json);
	cli_resp_free(&r);
	free(path);
	return rc;
}

int cli_cmd_delete(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, -1, &rc))
		return rc;
	struct cli_resp r;
	char *path;
	if ((rc = path_call(c, argc, argv, "DELETE", 0, "Error deleting %s", 0, &r, &path)) != 0)
		return rc;
	if (r.json && json_is_object(json_object_get(r.json, "data")))
		rc = cli_output_secret(c, r.json);
	else if (strcmp(cli_format(c), "table") == 0)
		fprintf(c->out, "Success! Data deleted (if it existed) at: %s\n", path);
	cli_resp_free(&r);
	free(path);
	return rc;
}

int cli_cmd_path_help(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	char *path = cli_sanitize_path(argv[0], 0);
	char what[1200];
	snprintf(what, sizeof(what), "Error retrieving help");
	struct cli_resp r;
	struct cli_req rq = {.method = "GET", .path = path, .query = "help=1"};
	rc = cli_call(c, &rq, &r, what, 0);
	if (rc == 0) {
		const char *h = json_string_value(json_object_get(r.json, "help"));
		if (!h)
			h = json_string_value(json_object_get(json_object_get(r.json, "data"), "help"));
		if (strcmp(cli_format(c), "table") != 0)
			cli_output_data(c, r.json);
		else
			fprintf(c->out, "%s\n", h ? h : "");
		cli_resp_free(&r);
	}
	free(path);
	return rc;
}
