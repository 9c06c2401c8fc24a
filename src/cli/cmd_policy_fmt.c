/*
 * cmd_policy_fmt.c - `coffer policy fmt FILE`: parse an HCL (or JSON)
 * policy and rewrite the file in canonical HCL, as `vault policy fmt` does.
 * Purely local: it uses the same HCL parser as the server (util/hcl.c), so
 * a file that formats cleanly is one the server will parse.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/hcl.h"

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		switch (*s) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default: fputc(*s, f);
		}
	}
	fputc('"', f);
}

static void put_value(FILE *f, const json_t *v, int indent);

static int is_ident(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* Block attributes are bare identifiers; keys of nested maps stay quoted
 * (parameter names may hold any character). */
static void put_body(FILE *f, const json_t *obj, int indent, int bare_keys)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		fprintf(f, "%*s", indent, "");
		if (bare_keys && is_ident(k))
			fputs(k, f);
		else
			put_string(f, k);
		fputs(" = ", f);
		put_value(f, v, indent);
		fputc('\n', f);
	}
}

static void put_value(FILE *f, const json_t *v, int indent)
{
	if (json_is_string(v)) {
		put_string(f, json_string_value(v));
	} else if (json_is_array(v)) {
		fputc('[', f);
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (i)
				fputs(", ", f);
			put_value(f, e, indent);
		}
		fputc(']', f);
	} else if (json_is_object(v)) {
		if (json_object_size(v) == 0) {
			fputs("{}", f);
			return;
		}
		fputs("{\n", f);
		put_body(f, v, indent + 2, 0);
		fprintf(f, "%*s}", indent, "");
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		fputs(s ? s : "null", f);
		free(s);
	}
}

/* A labelled block body is an object, or (HCL's normalised form) an array
 * of objects that are merged in order. */
static void put_block(FILE *f, const char *kw, const char *label, const json_t *body)
{
	fprintf(f, "%s ", kw);
	put_string(f, label);
	fputs(" {\n", f);
	if (json_is_array(body)) {
		size_t i;
		json_t *e;
		json_array_foreach(body, i, e)
			if (json_is_object(e))
				put_body(f, e, 2, 1);
	} else if (json_is_object(body)) {
		put_body(f, body, 2, 1);
	}
	fputs("}\n", f);
}

/* Write the canonical HCL of a normalised policy document. */
int cli__policy_fmt(FILE *f, const json_t *doc)
{
	int blocks = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)doc, k, v) {
		if (!json_is_array(v)) {
			fputs(k, f);
			fputs(" = ", f);
			put_value(f, v, 0);
			fputc('\n', f);
			continue;
		}
		size_t i;
		json_t *occ;
		json_array_foreach(v, i, occ) {
			const char *label;
			json_t *body;
			json_object_foreach(occ, label, body) {
				if (blocks++)
					fputc('\n', f);
				put_block(f, k, label, body);
			}
		}
	}
	return 0;
}

int cli_cmd_policy_fmt(struct cli *c, int argc, char **argv)
{
	int rc;
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 1, 1, &rc))
		return rc;
	const char *path = argv[0];
	FILE *in = fopen(path, "rb");
	if (!in)
		return cli_fail(c, CLI_ELOCAL, "Error opening policy file: %s", strerror(errno));
	struct buf b;
	buf_init(&b, 8192);
	int rd = buf_read_stream(&b, in, 0);
	size_t len = 0;
	char *buf = rd ? NULL : buf_take(&b, &len);
	if (!buf) {
		bool oom = b.failed || rd == 0;
		buf_free(&b);
		fclose(in);
		return cli_fail(c, CLI_ELOCAL, "Error reading policy file: %s",
				oom ? "out of memory" : strerror(errno));
	}
	fclose(in);
	json_t *doc = NULL;
	struct verr err = {0};
	rc = hcl_parse_json(&doc, buf ? buf : "", len, path, &err);
	free(buf);
	if (rc)
		return cli_fail(c, CLI_ELOCAL, "Error parsing policy: %s", err.msg);
	/* write next to the file, then rename over it */
	size_t tl = strlen(path) + 16;
	char *tmp = malloc(tl);
	if (!tmp) {
		json_decref(doc);
		return cli_fail(c, CLI_ELOCAL, "Error formatting policy: out of memory");
	}
	snprintf(tmp, tl, "%s.fmt-tmp", path);
	FILE *out = fopen(tmp, "wb");
	if (!out) {
		int e = errno;
		free(tmp);
		json_decref(doc);
		return cli_fail(c, CLI_ELOCAL, "Error writing policy: %s", strerror(e));
	}
	cli__policy_fmt(out, doc);
	json_decref(doc);
	int bad = ferror(out) | (fflush(out) != 0) | (fsync(fileno(out)) != 0);
	bad |= fclose(out) != 0;
	if (bad || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		free(tmp);
		return cli_fail(c, CLI_ELOCAL, "Error writing policy: %s", strerror(e));
	}
	free(tmp);
	fprintf(c->out, "Success! Formatted policy: %s\n", path);
	return CLI_OK;
}
