/*
 * output.c - how the client prints: Vault's table layout (columns aligned
 * with four spaces, a "---" underline, empty cells as "n/a", keys sorted,
 * TTL-looking values humanised), JSON as the server sent it (indented two
 * spaces like Go's MarshalIndent), YAML in the block style of ghodss/yaml,
 * and -field raw values (no newline unless stdout is a terminal). See cli.h.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"


/* The CLI's output buffers (util/buf.h); running out of memory while
 * formatting output is fatal for a one-shot command. */
static void sb_addn(struct buf *b, const char *s, size_t n)
{
	buf_add(b, s, n);
	if (b->failed)
		abort();
}

static void sb_add(struct buf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (borrowed strings); caller frees the array. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
	*n = json_object_size(obj);
	const char **ks = calloc(*n ? *n : 1, sizeof(*ks));
	if (!ks)
		abort();
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) ks[i++] = k;
	qsort(ks, *n, sizeof(*ks), cmp_str);
	return ks;
}

/* Numbers and booleans print alike in every format: append v and return 1
 * if it is one, else return 0. */
static int fmt_number_or_bool(struct buf *b, const json_t *v)
{
	char num[64];
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(num, sizeof(num), "true");
		break;
	case JSON_FALSE:
		snprintf(num, sizeof(num), "false");
		break;
	default:
		return 0;
	}
	sb_add(b, num);
	return 1;
}

static void fmt_value_into(struct buf *b, const json_t *v)
{
	if (fmt_number_or_bool(b, v))
		return;
	switch (json_typeof(v)) {
	case JSON_STRING:
		sb_addn(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_NULL:
		sb_add(b, "<nil>");
		break;
	case JSON_ARRAY: {
		sb_add(b, "[");
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (i)
				sb_add(b, " ");
			fmt_value_into(b, e);
		}
		sb_add(b, "]");
		break;
	}
	case JSON_OBJECT: {
		size_t n;
		const char **ks = sorted_keys(v, &n);
		sb_add(b, "map[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_add(b, " ");
			sb_add(b, ks[i]);
			sb_add(b, ":");
			fmt_value_into(b, json_object_get(v, ks[i]));
		}
		sb_add(b, "]");
		free(ks);
		break;
	}
	default:
		break;
	}
}

char *cli_fmt_value(const json_t *v)
{
	struct buf b = {0};
	sb_add(&b, "");
	if (v)
		fmt_value_into(&b, v);
	else
		sb_add(&b, "<nil>");
	return b.p;
}

void cli_fmt_duration(char *buf, size_t cap, int64_t secs)
{
	if (secs == 0) {
		snprintf(buf, cap, "0s");
		return;
	}
	char tmp[64];
	const char *sign = secs < 0 ? "-" : "";
	uint64_t s = secs < 0 ? (uint64_t)(-(secs + 1)) + 1 : (uint64_t)secs;
	uint64_t h = s / 3600, m = (s % 3600) / 60, ss = s % 60;
	/* Go's Duration.String, then Vault trims "m0s" and "h0m". */
	if (h)
		snprintf(tmp, sizeof(tmp), "%s%" PRIu64 "h%" PRIu64 "m%" PRIu64 "s", sign, h, m, ss);
	else if (m)
		snprintf(tmp, sizeof(tmp), "%s%" PRIu64 "m%" PRIu64 "s", sign, m, ss);
	else
		snprintf(tmp, sizeof(tmp), "%s%" PRIu64 "s", sign, ss);
	size_t n = strlen(tmp);
	if (n > 3 && strcmp(tmp + n - 3, "m0s") == 0)
		tmp[n - 2] = '\0';
	char *p = strstr(tmp, "h0m");
	if (p)
		memmove(p + 1, p + 3, strlen(p + 3) + 1);
	snprintf(buf, cap, "%s", tmp);
}

int cli_looks_like_duration(const char *k)
{
	size_t n = strlen(k);
#define SUFFIX(s) (n >= sizeof(s) - 1 && strcmp(k + n - (sizeof(s) - 1), s) == 0)
	return strcmp(k, "period") == 0 || SUFFIX("_period") || strcmp(k, "ttl") == 0 ||
	       SUFFIX("_ttl") || strcmp(k, "duration") == 0 || SUFFIX("_duration") ||
	       strcmp(k, "lease_max") == 0 || strcmp(k, "ttl_max") == 0;
#undef SUFFIX
}

/* A JSON number from a server as an int64 (reals truncate toward zero): 0,
 * or -1 when it is not a number or out of range. Range first: casting an
 * out-of-range double such as 1e300 to an integer is undefined behaviour. */
static int num_int(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d >= -9.2e18 && d <= 9.2e18))
			return -1;
		*out = (int64_t)d;
		return 0;
	}
	return -1;
}

/* Vault's humanDurationInt: integers (or integer strings) become durations,
 * anything else prints as it is. */
static char *fmt_maybe_duration(const char *key, const json_t *v)
{
	if (key && cli_looks_like_duration(key)) {
		int64_t secs;
		int ok = 0;
		if (num_int(v, &secs) == 0) {
			ok = 1;
		} else if (json_is_string(v) && json_string_length(v) > 0) {
			char *end;
			errno = 0;
			long long x = strtoll(json_string_value(v), &end, 10);
			if (*end == '\0' && errno == 0) {
				secs = x;
				ok = 1;
			}
		}
		if (ok) {
			char d[64];
			cli_fmt_duration(d, sizeof(d), secs);
			return strdup(d);
		}
	}
	return cli_fmt_value(v);
}

void cli_table(FILE *f, const char *const *cells, size_t nrows, size_t ncols)
{
	if (nrows == 0 || ncols == 0)
		return;
	size_t *w = calloc(ncols, sizeof(*w));
	if (!w)
		abort();
	for (size_t r = 0; r < nrows; r++)
		for (size_t col = 0; col < ncols; col++) {
			const char *s = cells[r * ncols + col];
			size_t l = s && *s ? strlen(s) : 3;
			if (l > w[col])
				w[col] = l;
		}
	for (size_t r = 0; r < nrows; r++) {
		for (int pass = 0; pass < (r == 0 ? 2 : 1); pass++) {
			for (size_t col = 0; col < ncols; col++) {
				const char *s = cells[r * ncols + col];
				char under[256];
				if (pass == 1) {
					size_t l = s ? strlen(s) : 0;
					if (l >= sizeof(under))
						l = sizeof(under) - 1;
					memset(under, '-', l);
					under[l] = '\0';
					s = under;
				}
				if (!s || !*s)
					s = "n/a";
				if (col + 1 < ncols)
					fprintf(f, "%-*s    ", (int)w[col], s);
				else
					fprintf(f, "%s", s);
			}
			fputc('\n', f);
		}
	}
	free(w);
}

/* Rows of (key, value) strings appended as we go; value strings owned. */
struct rows {
	const char **cells;
	char **owned;
	size_t n, nowned;
};

static void rows_add(struct rows *r, const char *k, char *v /* owned */)
{
	r->cells = realloc(r->cells, (r->n + 1) * 2 * sizeof(*r->cells));
	r->owned = realloc(r->owned, (r->nowned + 1) * sizeof(*r->owned));
	if (!r->cells || !r->owned)
		abort();
	r->cells[r->n * 2] = k;
	r->cells[r->n * 2 + 1] = v;
	r->owned[r->nowned++] = v;
	r->n++;
}

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->nowned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->cells);
}

static void map_rows(struct rows *r, const json_t *obj)
{
	size_t n;
	const char **ks = sorted_keys(obj, &n);
	for (size_t i = 0; i < n; i++)
		rows_add(r, ks[i], fmt_maybe_duration(ks[i], json_object_get(obj, ks[i])));
	free(ks);
}

void cli_out_map(FILE *f, const json_t *obj)
{
	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return;
	struct rows r = {0};
	rows_add(&r, "Key", strdup("Value"));
	map_rows(&r, obj);
	cli_table(f, r.cells, r.n, 2);
	rows_free(&r);
}

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* Go's %q of a []string: ["a" "b"]; null prints []. */
static char *fmt_quoted_list(const json_t *arr)
{
	struct buf b = {0};
	sb_add(&b, "[");
	if (json_is_array(arr)) {
		size_t i;
		json_t *e;
		json_array_foreach(arr, i, e)
		{
			if (i)
				sb_add(&b, " ");
			char *d = json_dumps(e, JSON_ENCODE_ANY);
			sb_add(&b, d ? d : "\"\"");
			free(d);
		}
	}
	sb_add(&b, "]");
	return b.p;
}

static int64_t jint(const json_t *o, const char *k)
{
	int64_t x;
	return num_int(json_object_get(o, k), &x) == 0 ? x : 0;
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

void cli_out_secret_table(FILE *f, const json_t *resp)
{
	struct rows r = {0};
	char d[64];
	rows_add(&r, "Key", strdup("Value"));
	int64_t ld = jint(resp, "lease_duration");
	if (ld > 0) {
		cli_fmt_duration(d, sizeof(d), ld);
		if (*jstr(resp, "lease_id")) {
			rows_add(&r, "lease_id", strdup(jstr(resp, "lease_id")));
			rows_add(&r, "lease_duration", strdup(d));
			rows_add(&r, "lease_renewable",
				 strdup(json_is_true(json_object_get(resp, "renewable")) ? "true" : "false"));
		} else {
			rows_add(&r, "refresh_interval", strdup(d));
		}
	}
	json_t *auth = json_object_get(resp, "auth");
	if (json_is_object(auth)) {
		rows_add(&r, "token", strdup(jstr(auth, "client_token")));
		rows_add(&r, "token_accessor", strdup(jstr(auth, "accessor")));
		int64_t tl = jint(auth, "lease_duration");
		if (tl == 0) {
			rows_add(&r, "token_duration", strdup("∞"));
		} else {
			cli_fmt_duration(d, sizeof(d), tl);
			rows_add(&r, "token_duration", strdup(d));
		}
		rows_add(&r, "token_renewable",
			 strdup(json_is_true(json_object_get(auth, "renewable")) ? "true" : "false"));
		rows_add(&r, "token_policies", fmt_quoted_list(json_object_get(auth, "token_policies")));
		rows_add(&r, "identity_policies",
			 fmt_quoted_list(json_object_get(auth, "identity_policies")));
		rows_add(&r, "policies", fmt_quoted_list(json_object_get(auth, "policies")));
		json_t *meta = json_object_get(auth, "metadata");
		if (json_is_object(meta)) {
			size_t n;
			const char **ks = sorted_keys(meta, &n);
			for (size_t i = 0; i < n; i++) {
				/* the key string must outlive the table: keep it owned */
				char *k = strf("token_meta_%s", ks[i]);
				rows_add(&r, k, cli_fmt_value(json_object_get(meta, ks[i])));
				r.owned = realloc(r.owned, (r.nowned + 1) * sizeof(*r.owned));
				if (!r.owned)
					abort();
				r.owned[r.nowned++] = k;
			}
			free(ks);
		}
	}
	json_t *wrap = json_object_get(resp, "wrap_info");
	if (json_is_object(wrap)) {
		rows_add(&r, "wrapping_token:", strdup(jstr(wrap, "token")));
		rows_add(&r, "wrapping_accessor:", strdup(jstr(wrap, "accessor")));
		cli_fmt_duration(d, sizeof(d), jint(wrap, "ttl"));
		rows_add(&r, "wrapping_token_ttl:", strdup(d));
		rows_add(&r, "wrapping_token_creation_time:", strdup(jstr(wrap, "creation_time")));
		rows_add(&r, "wrapping_token_creation_path:", strdup(jstr(wrap, "creation_path")));
		if (*jstr(wrap, "wrapped_accessor"))
			rows_add(&r, "wrapped_accessor:", strdup(jstr(wrap, "wrapped_accessor")));
	}
	json_t *data = json_object_get(resp, "data");
	if (json_is_object(data))
		map_rows(&r, data);
	if (r.n > 1)
		cli_table(f, r.cells, r.n, 2);
	rows_free(&r);
}

void cli_out_warnings(struct cli *c, const json_t *resp)
{
	json_t *w = resp ? json_object_get(resp, "warnings") : NULL;
	if (!json_is_array(w) || json_array_size(w) == 0)
		return;
	fprintf(c->err, "WARNING! The following warnings were returned from Vault:\n\n");
	size_t i;
	json_t *e;
	json_array_foreach(w, i, e)
	{
		char *s = cli_fmt_value(e);
		fprintf(c->err, "  * %s\n\n", s);
		free(s);
	}
}

void cli_out_json(FILE *f, const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	if (s) {
		fputs(s, f);
		fputc('\n', f);
		free(s);
	}
}

/* ---- YAML ---- */
static int yaml_plain_ok(const char *s)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "y",
					    "n", "null", "~"};
	if (!*s)
		return 0;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			return 0;
	char *end;
	(void)strtod(s, &end);
	if (*end == '\0')
		return 0;
	if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
		return 0;
	size_t n = strlen(s);
	if (s[n - 1] == ' ' || s[n - 1] == ':')
		return 0;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
		if ((p[0] == ':' && p[1] == ' ') || (p[0] == ' ' && p[1] == '#'))
			return 0;
	}
	return 1;
}

static void yaml_str(struct buf *b, const char *s, size_t len)
{
	if (strlen(s) == len && yaml_plain_ok(s)) {
		sb_add(b, s);
		return;
	}
	json_t *j = json_stringn(s, len);
	char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	sb_add(b, d ? d : "\"\"");
	free(d);
	json_decref(j);
}

static void yaml_scalar(struct buf *b, const json_t *v)
{
	if (fmt_number_or_bool(b, v))
		return;
	switch (json_typeof(v)) {
	case JSON_STRING:
		yaml_str(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_NULL:
		sb_add(b, "null");
		break;
	case JSON_ARRAY:
		sb_add(b, "[]");
		break;
	case JSON_OBJECT:
		sb_add(b, "{}");
		break;
	default:
		break;
	}
}

static int yaml_is_block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) ||
	       (json_is_array(v) && json_array_size(v) > 0);
}

static void indent(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		sb_add(b, " ");
}

static void yaml_node(struct buf *b, const json_t *v, int ind, int inline_first);

/* Objects: "k: v" lines at ind; the first line is already indented when
 * inline_first (after "- "). Sequences inside a mapping sit at the key's
 * indentation, as go-yaml writes them. */
static void yaml_node(struct buf *b, const json_t *v, int ind, int inline_first)
{
	if (json_is_object(v) && json_object_size(v) > 0) {
		size_t n;
		const char **ks = sorted_keys(v, &n);
		for (size_t i = 0; i < n; i++) {
			if (!(i == 0 && inline_first))
				indent(b, ind);
			yaml_str(b, ks[i], strlen(ks[i]));
			sb_add(b, ":");
			json_t *e = json_object_get(v, ks[i]);
			if (json_is_object(e) && yaml_is_block(e)) {
				sb_add(b, "\n");
				yaml_node(b, e, ind + 2, 0);
			} else if (json_is_array(e) && yaml_is_block(e)) {
				sb_add(b, "\n");
				yaml_node(b, e, ind, 0);
			} else {
				sb_add(b, " ");
				yaml_scalar(b, e);
				sb_add(b, "\n");
			}
		}
		free(ks);
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (!(i == 0 && inline_first))
				indent(b, ind);
			sb_add(b, "- ");
			if (yaml_is_block(e)) {
				yaml_node(b, e, ind + 2, 1);
			} else {
				yaml_scalar(b, e);
				sb_add(b, "\n");
			}
		}
	} else {
		if (!inline_first)
			indent(b, ind);
		yaml_scalar(b, v);
		sb_add(b, "\n");
	}
}

void cli_out_yaml(FILE *f, const json_t *v)
{
	struct buf b = {0};
	sb_add(&b, "");
	yaml_node(&b, v, 0, 0);
	/* Vault trims surrounding whitespace and prints one newline. */
	size_t n = b.len;
	while (n > 0 && b.p[n - 1] == '\n')
		n--;
	fwrite(b.p, 1, n, f);
	fputc('\n', f);
	free(b.p);
}

/* ---- format selection and the public printers ---- */
const char *cli_format(struct cli *c)
{
	const char *f = c->format && *c->format ? c->format : "table";
	return f;
}

int cli_format_ok(struct cli *c)
{
	const char *f = cli_format(c);
	if (strcmp(f, "table") == 0 || strcmp(f, "json") == 0 || strcmp(f, "yaml") == 0 ||
	    strcmp(f, "yml") == 0 || strcmp(f, "raw") == 0)
		return 1;
	cli_fail(c, CLI_ELOCAL, "Invalid output format: %s", f);
	return 0;
}

static int is_fmt(struct cli *c, const char *f)
{
	const char *cur = cli_format(c);
	if (strcmp(f, "yaml") == 0)
		return strcmp(cur, "yaml") == 0 || strcmp(cur, "yml") == 0;
	return strcmp(cur, f) == 0;
}

int cli_output_data(struct cli *c, const json_t *data)
{
	if (is_fmt(c, "json")) {
		cli_out_json(c->out, data);
	} else if (is_fmt(c, "yaml")) {
		cli_out_yaml(c->out, data);
	} else if (json_is_object(data)) {
		cli_out_map(c->out, data);
	} else if (json_is_array(data)) {
		size_t i;
		json_t *e;
		json_array_foreach(data, i, e)
		{
			char *s = cli_fmt_value(e);
			fprintf(c->out, "%s\n", s);
			free(s);
		}
	} else if (data) {
		char *s = cli_fmt_value(data);
		fprintf(c->out, "%s\n", s);
		free(s);
	}
	return CLI_OK;
}

static const json_t *raw_field(const json_t *resp, const char *field, json_t **tmp)
{
	json_t *auth = json_object_get(resp, "auth");
	json_t *wrap = json_object_get(resp, "wrap_info");
	json_t *data = json_object_get(resp, "data");
	*tmp = NULL;
	if (json_is_object(auth)) {
		static const char *const map[][2] = {
			{"token", "client_token"},	   {"token_accessor", "accessor"},
			{"token_duration", "lease_duration"}, {"token_renewable", "renewable"},
			{"token_policies", "token_policies"}, {"identity_policies", "identity_policies"},
			{"policies", "policies"},
		};
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(field, map[i][0]) == 0)
				return json_object_get(auth, map[i][1]);
	} else if (json_is_object(wrap)) {
		static const char *const map[][2] = {
			{"wrapping_token", "token"},
			{"wrapping_accessor", "accessor"},
			{"wrapping_token_ttl", "ttl"},
			{"wrapping_token_creation_time", "creation_time"},
			{"wrapping_token_creation_path", "creation_path"},
			{"wrapped_accessor", "wrapped_accessor"},
		};
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(field, map[i][0]) == 0)
				return json_object_get(wrap, map[i][1]);
	} else {
		if (strcmp(field, "refresh_interval") == 0 || strcmp(field, "lease_duration") == 0)
			return json_object_get(resp, "lease_duration");
		if (strcmp(field, "lease_id") == 0)
			return json_object_get(resp, "lease_id");
		if (strcmp(field, "lease_renewable") == 0)
			return json_object_get(resp, "renewable");
		if (strcmp(field, "request_id") == 0)
			return json_object_get(resp, "request_id");
	}
	return json_is_object(data) ? json_object_get(data, field) : NULL;
}

int cli_output_field(struct cli *c, const json_t *val, const char *field)
{
	if (!val || json_is_null(val))
		return cli_fail(c, CLI_ELOCAL, "Field \"%s\" not present in secret", field);
	char *s = NULL;
	if (is_fmt(c, "json")) {
		s = json_dumps(val, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	} else if (is_fmt(c, "yaml")) {
		struct buf b = {0};
		sb_add(&b, "");
		yaml_node(&b, val, 0, 0);
		while (b.len > 0 && b.p[b.len - 1] == '\n')
			b.p[--b.len] = '\0';
		s = b.p;
	} else {
		s = cli_fmt_value(val);
	}
	fputs(s ? s : "", c->out);
	if (c->out_tty)
		fputc('\n', c->out);
	free(s);
	return CLI_OK;
}

int cli_output_secret(struct cli *c, const json_t *resp)
{
	if (c->field) {
		json_t *tmp;
		const json_t *v = raw_field(resp, c->field, &tmp);
		return cli_output_field(c, v, c->field);
	}
	if (is_fmt(c, "json")) {
		cli_out_json(c->out, resp);
	} else if (is_fmt(c, "yaml")) {
		cli_out_yaml(c->out, resp);
	} else {
		cli_out_warnings(c, resp);
		cli_out_secret_table(c->out, resp);
	}
	return CLI_OK;
}

int cli_output_list(struct cli *c, const json_t *resp)
{
	json_t *keys = json_object_get(json_object_get(resp, "data"), "keys");
	if (is_fmt(c, "json")) {
		cli_out_json(c->out, c->detailed ? resp : keys);
		return CLI_OK;
	}
	if (is_fmt(c, "yaml")) {
		cli_out_yaml(c->out, c->detailed ? resp : keys);
		return CLI_OK;
	}
	cli_out_warnings(c, resp);
	size_t n = json_array_size(keys);
	const char **cells = calloc(n + 1, sizeof(*cells));
	if (!cells)
		abort();
	cells[0] = "Keys";
	size_t m = 1;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(keys, i));
		if (s)
			cells[m++] = s;
	}
	qsort(cells + 1, m - 1, sizeof(*cells), cmp_str);
	cli_table(c->out, cells, m, 1);
	free(cells);
	return CLI_OK;
}

void cli_pad_header(char *buf, size_t cap, const char *title, size_t total_len)
{
	long eq = (long)total_len - (long)(strlen(title) + 2);
	if (eq <= 0)
		eq = 4;
	if (eq % 2)
		eq++;
	size_t half = (size_t)eq / 2, n = 0;
	for (size_t i = 0; i < half && n + 1 < cap; i++)
		buf[n++] = '=';
	n += (size_t)snprintf(buf + n, cap > n ? cap - n : 0, " %s ", title);
	for (size_t i = 0; i < half && n + 1 < cap; i++)
		buf[n++] = '=';
	if (n < cap)
		buf[n] = '\0';
	else if (cap)
		buf[cap - 1] = '\0';
}
