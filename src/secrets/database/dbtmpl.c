/*
 * dbtmpl.c - the database engine's templates (database_int.h): SQL statement
 * substitution with quote-aware escaping, statement splitting, Vault's
 * {{expiration}} format, connection strings, URL redaction, and the
 * username-template interpreter.
 *
 * The username template is the subset of Go's text/template that Vault's
 * username_template documents: values are strings, a pipeline is
 * `command (| command)*`, a command is a function name with arguments or a
 * single operand, and a piped value becomes the last argument. The parser and
 * the evaluator are one recursive-descent pass over the action text; in
 * check mode the functions are called on placeholder values, so a template
 * is fully validated at write time.
 */
#include "secrets/database/database_int.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/rand.h"

/* ---- statements ---- */

static const char *var_value(const struct dbtmpl_vars *v, const char *name, size_t n)
{
	if (n == 4 && !memcmp(name, "name", 4))
		return v->name;
	if (n == 8 && !memcmp(name, "username", 8))
		return v->username ? v->username : v->name;
	if (n == 8 && !memcmp(name, "password", 8))
		return v->password;
	if (n == 10 && !memcmp(name, "expiration", 10))
		return v->expiration;
	return NULL;
}

static void add_escaped(struct buf *out, const char *val, char quote)
{
	for (const char *c = val; *c; c++) {
		if (quote && *c == quote)
			buf_char(out, quote);
		buf_char(out, *c);
	}
}

void dbtmpl_statement(struct buf *out, const char *tmpl, const struct dbtmpl_vars *v)
{
	char quote = 0; /* the quoting we are inside in the template text */
	for (const char *p = tmpl; *p;) {
		if (p[0] == '{' && p[1] == '{') {
			const char *end = strstr(p + 2, "}}");
			if (end) {
				const char *a = p + 2, *b = end;
				while (a < b && isspace((unsigned char)*a))
					a++;
				while (b > a && isspace((unsigned char)b[-1]))
					b--;
				const char *val = var_value(v, a, (size_t)(b - a));
				if (val) {
					add_escaped(out, val, quote);
					p = end + 2;
					continue;
				}
			}
		}
		if (*p == '\'' || *p == '"') {
			if (!quote)
				quote = *p;
			else if (quote == *p)
				quote = 0; /* a doubled quote re-enters on the next char */
		}
		buf_char(out, *p++);
	}
}

/* length of a $tag$ opener at p (0 if none) */
static size_t dollar_tag(const char *p)
{
	if (*p != '$')
		return 0;
	size_t i = 1;
	while (isalnum((unsigned char)p[i]) || p[i] == '_')
		i++;
	if (p[i] != '$')
		return 0;
	if (i > 1 && isdigit((unsigned char)p[1]))
		return 0; /* $1 is a parameter, not a tag */
	return i + 1;
}

static void push_stmt(char ***v, size_t *n, size_t *cap, const char *a, const char *b)
{
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	if (a == b)
		return;
	if (*n + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		char **nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return;
		*v = nv;
		*cap = nc;
	}
	char *s = strndup(a, (size_t)(b - a));
	if (!s)
		return;
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

size_t dbtmpl_split(char ***out, const char *sql)
{
	char **v = calloc(1, sizeof(*v));
	size_t n = 0, cap = v ? 1 : 0;
	const char *start = sql, *p = sql;
	while (*p) {
		if (*p == '\'' || *p == '"') {
			char q = *p++;
			while (*p && *p != q)
				p++;
			if (*p)
				p++;
			continue;
		}
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		size_t tl = dollar_tag(p);
		if (tl) {
			const char *close = NULL;
			for (const char *q = p + tl; *q; q++)
				if (!strncmp(q, p, tl)) {
					close = q;
					break;
				}
			p = close ? close + tl : p + strlen(p);
			continue;
		}
		if (*p == ';') {
			push_stmt(&v, &n, &cap, start, p);
			start = ++p;
			continue;
		}
		p++;
	}
	push_stmt(&v, &n, &cap, start, p);
	*out = v;
	return n;
}

void dbtmpl_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void dbtmpl_expiration(char buf[DBTMPL_EXPIRATION_MAX], int64_t unix_secs)
{
	time_t t = (time_t)unix_secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, DBTMPL_EXPIRATION_MAX, "%Y-%m-%d %H:%M:%S+0000", &tm);
}

/* ---- connection strings ---- */

static bool is_url(const char *s)
{
	return !strncmp(s, "postgres://", 11) || !strncmp(s, "postgresql://", 13);
}

static void add_pct(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
			buf_char(out, (char)*c);
		} else {
			buf_char(out, '%');
			buf_char(out, hex[*c >> 4]);
			buf_char(out, hex[*c & 15]);
		}
	}
}

static void add_kv_quoted(struct buf *out, const char *s)
{
	buf_char(out, '\'');
	for (const char *c = s; *c; c++) {
		if (*c == '\'' || *c == '\\')
			buf_char(out, '\\');
		buf_char(out, *c);
	}
	buf_char(out, '\'');
}

void dbtmpl_conninfo(struct buf *out, const char *url, const char *username, const char *password)
{
	bool u = is_url(url);
	for (const char *p = url; *p;) {
		const char *val = NULL;
		size_t skip = 0;
		if (!strncmp(p, "{{username}}", 12)) {
			val = username ? username : "";
			skip = 12;
		} else if (!strncmp(p, "{{password}}", 12)) {
			val = password ? password : "";
			skip = 12;
		}
		if (val) {
			if (u)
				add_pct(out, val);
			else
				add_kv_quoted(out, val);
			p += skip;
			continue;
		}
		buf_char(out, *p++);
	}
}

char *dbtmpl_redact_url(const char *url)
{
	struct buf b;
	buf_init(&b, strlen(url) + 8);
	if (is_url(url)) {
		/* scheme://user:PASSWORD@host...: mask what sits between the
		 * first ':' after the scheme and the last '@' of the authority */
		const char *auth = strstr(url, "://") + 3;
		const char *end = auth + strcspn(auth, "/?#");
		const char *at = NULL;
		for (const char *q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon && strncmp(colon + 1, "{{password}}", 12) != 0) {
			buf_add(&b, url, (size_t)(colon + 1 - url));
			buf_str(&b, "*****");
			buf_str(&b, at);
		} else {
			buf_str(&b, url);
		}
	} else {
		/* keyword form: password=... up to the next blank */
		const char *p = url;
		for (;;) {
			const char *k = strstr(p, "password=");
			if (!k || (k > url && !isspace((unsigned char)k[-1]))) {
				if (!k) {
					buf_str(&b, p);
					break;
				}
				buf_add(&b, p, (size_t)(k + 9 - p));
				p = k + 9;
				continue;
			}
			buf_add(&b, p, (size_t)(k + 9 - p));
			const char *v = k + 9;
			if (!strncmp(v, "{{password}}", 12)) {
				p = v;
				continue;
			}
			buf_str(&b, "*****");
			if (*v == '\'') {
				v++;
				while (*v && *v != '\'')
					v += (*v == '\\' && v[1]) ? 2 : 1;
				if (*v)
					v++;
			} else {
				while (*v && !isspace((unsigned char)*v))
					v++;
			}
			p = v;
		}
	}
	return buf_take(&b, NULL);
}

void dbtmpl_scrub(char *msg, const char *secret)
{
	if (!msg || !secret || strlen(secret) < 4)
		return;
	size_t n = strlen(secret);
	for (char *p = strstr(msg, secret); p; p = strstr(p + n, secret))
		memset(p, '*', n);
}

/* ---- username templates ---- */

#define TMPL_MAX_OUT 1024
#define TMPL_MAX_ARGS 16
#define TMPL_MAX_DEPTH 16

struct tp {
	const char *s; /* action text */
	size_t i, n;
	const char *display, *role;
	int64_t now_ms;
	bool check;
	int depth;
	struct verr *err;
};

static void skip_ws(struct tp *t)
{
	while (t->i < t->n && isspace((unsigned char)t->s[t->i]))
		t->i++;
}

static int fail(struct tp *t, const char *what)
{
	return verr_set(t->err, VERR_INVALID, "username_template: %s", what);
}

static int parse_pipeline(struct tp *t, char **out);

static int to_int(struct tp *t, const char *s, long *out)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > TMPL_MAX_OUT)
		return fail(t, "expected a small non-negative integer argument");
	*out = v;
	return 0;
}

static char *strcat_new(const char *a, size_t an, const char *b, size_t bn)
{
	char *r = malloc(an + bn + 1);
	if (!r)
		return NULL;
	memcpy(r, a, an);
	memcpy(r + an, b, bn);
	r[an + bn] = '\0';
	return r;
}

static int fn_printf(struct tp *t, char **args, int argc, char **out)
{
	if (argc < 1)
		return fail(t, "printf needs a format");
	struct buf b;
	buf_init(&b, 64);
	int next = 1;
	for (const char *f = args[0]; *f; f++) {
		if (*f != '%') {
			buf_char(&b, *f);
			continue;
		}
		f++;
		if (*f == '%') {
			buf_char(&b, '%');
		} else if (*f == 's' || *f == 'd' || *f == 'v') {
			if (next >= argc) {
				buf_free(&b);
				return fail(t, "printf: missing argument for a verb");
			}
			buf_str(&b, args[next++]);
		} else {
			buf_free(&b);
			return fail(t, "printf: only %s, %d, %v and %% are supported");
		}
		if (!*f)
			break;
	}
	*out = buf_take(&b, NULL);
	return *out ? 0 : verr_set(t->err, VERR_INTERNAL, "out of memory");
}

static int call_fn(struct tp *t, const char *name, char **args, int argc, char **out)
{
	*out = NULL;
	long k = 0;
	int rc;
	if (!strcmp(name, "printf"))
		return fn_printf(t, args, argc, out);
	if (!strcmp(name, "truncate") || !strcmp(name, "truncate_sha256")) {
		if (argc != 2)
			return fail(t, "truncate takes a length and a string");
		if ((rc = to_int(t, args[0], &k)))
			return rc;
		size_t len = strlen(args[1]);
		if (len <= (size_t)k || name[8] != '_') {
			*out = strndup(args[1], len < (size_t)k ? len : (size_t)k);
		} else {
			if (k <= 8)
				return fail(t, "truncate_sha256 needs a length above 8");
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned int mdl = 0;
			EVP_Digest(args[1], len, md, &mdl, EVP_sha256(), NULL);
			char hex[9];
			for (int i = 0; i < 4; i++)
				snprintf(hex + 2 * i, 3, "%02x", md[i]);
			*out = strcat_new(args[1], (size_t)k - 8, hex, 8);
		}
	} else if (!strcmp(name, "lowercase") || !strcmp(name, "uppercase")) {
		if (argc != 1)
			return fail(t, "lowercase/uppercase take one string");
		*out = strdup(args[0]);
		for (char *c = *out; c && *c; c++)
			*c = (char)(name[0] == 'l' ? tolower((unsigned char)*c) : toupper((unsigned char)*c));
	} else if (!strcmp(name, "replace")) {
		if (argc != 3)
			return fail(t, "replace takes find, replacement and a string");
		struct buf b;
		buf_init(&b, strlen(args[2]) + 8);
		size_t fl = strlen(args[0]);
		for (const char *p = args[2]; *p;) {
			if (fl && !strncmp(p, args[0], fl)) {
				buf_str(&b, args[1]);
				p += fl;
			} else {
				buf_char(&b, *p++);
			}
		}
		*out = buf_take(&b, NULL);
	} else if (!strcmp(name, "random")) {
		if (argc != 1)
			return fail(t, "random takes a length");
		if ((rc = to_int(t, args[0], &k)))
			return rc;
		char *r = malloc((size_t)k + 1);
		if (!r)
			return verr_set(t->err, VERR_INTERNAL, "out of memory");
		if (k == 0)
			r[0] = '\0';
		else if ((rc = rand_base62(r, (size_t)k, t->err))) {
			free(r);
			return rc;
		}
		*out = r;
	} else if (!strcmp(name, "unix_time") || !strcmp(name, "unix_time_millis")) {
		if (argc != 0)
			return fail(t, "unix_time takes no arguments");
		char b[32];
		snprintf(b, sizeof(b), "%lld",
			 (long long)(name[9] ? t->now_ms : t->now_ms / 1000));
		*out = strdup(b);
	} else if (!strcmp(name, "uuid")) {
		if (argc != 0)
			return fail(t, "uuid takes no arguments");
		char u[RAND_UUID_LEN + 1];
		if ((rc = rand_uuid(u, t->err)))
			return rc;
		*out = strdup(u);
	} else {
		return verr_set(t->err, VERR_INVALID, "username_template: function \"%.40s\" not defined",
				name);
	}
	return *out ? 0 : verr_set(t->err, VERR_INTERNAL, "out of memory");
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* one operand; *is_fn set (and *out = the name) for a bare identifier */
static int parse_operand(struct tp *t, char **out, bool *is_fn)
{
	*out = NULL;
	*is_fn = false;
	skip_ws(t);
	if (t->i >= t->n)
		return fail(t, "unexpected end of action");
	char c = t->s[t->i];
	if (c == '.') {
		size_t a = ++t->i;
		while (t->i < t->n && ident_char(t->s[t->i]))
			t->i++;
		size_t l = t->i - a;
		const char *v = NULL;
		if (l == 11 && !strncmp(t->s + a, "DisplayName", 11))
			v = t->display;
		else if (l == 8 && !strncmp(t->s + a, "RoleName", 8))
			v = t->role;
		else
			return verr_set(t->err, VERR_INVALID,
					"username_template: unknown field \".%.*s\" (only .DisplayName and .RoleName)",
					(int)(l > 40 ? 40 : l), t->s + a);
		*out = strdup(v ? v : "");
	} else if (c == '"' || c == '`') {
		t->i++;
		struct buf b;
		buf_init(&b, 32);
		while (t->i < t->n && t->s[t->i] != c) {
			char ch = t->s[t->i++];
			if (c == '"' && ch == '\\' && t->i < t->n) {
				ch = t->s[t->i++];
				ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
			}
			buf_char(&b, ch);
		}
		if (t->i >= t->n) {
			buf_free(&b);
			return fail(t, "unterminated string");
		}
		t->i++;
		*out = buf_take(&b, NULL);
	} else if (isdigit((unsigned char)c)) {
		size_t a = t->i;
		while (t->i < t->n && isdigit((unsigned char)t->s[t->i]))
			t->i++;
		*out = strndup(t->s + a, t->i - a);
	} else if (c == '(') {
		if (++t->depth > TMPL_MAX_DEPTH)
			return fail(t, "too deeply nested");
		t->i++;
		int rc = parse_pipeline(t, out);
		t->depth--;
		if (rc)
			return rc;
		skip_ws(t);
		if (t->i >= t->n || t->s[t->i] != ')') {
			free(*out);
			*out = NULL;
			return fail(t, "missing \")\"");
		}
		t->i++;
		return 0;
	} else if (isalpha((unsigned char)c) || c == '_') {
		size_t a = t->i;
		while (t->i < t->n && ident_char(t->s[t->i]))
			t->i++;
		*out = strndup(t->s + a, t->i - a);
		*is_fn = true;
	} else {
		return verr_set(t->err, VERR_INVALID, "username_template: unexpected \"%c\"", c);
	}
	return *out ? 0 : verr_set(t->err, VERR_INTERNAL, "out of memory");
}

static bool at_cmd_end(struct tp *t)
{
	skip_ws(t);
	return t->i >= t->n || t->s[t->i] == '|' || t->s[t->i] == ')';
}

static int parse_command(struct tp *t, char *piped, char **out)
{
	char *args[TMPL_MAX_ARGS + 1];
	int argc = 0;
	char *head = NULL;
	bool is_fn = false;
	int rc = parse_operand(t, &head, &is_fn);
	if (rc)
		goto out;
	if (!is_fn) {
		if (!at_cmd_end(t) || piped) {
			rc = fail(t, "only a function can take arguments");
			goto out;
		}
		*out = head;
		head = NULL;
		goto out;
	}
	while (!at_cmd_end(t)) {
		if (argc >= TMPL_MAX_ARGS) {
			rc = fail(t, "too many arguments");
			goto out;
		}
		bool f = false;
		char *a = NULL;
		if ((rc = parse_operand(t, &a, &f)))
			goto out;
		if (f) { /* a bare function name as an argument: call it */
			char *v = NULL;
			rc = call_fn(t, a, NULL, 0, &v);
			free(a);
			if (rc)
				goto out;
			a = v;
		}
		args[argc++] = a;
	}
	if (piped) {
		args[argc++] = piped;
		piped = NULL;
	}
	rc = call_fn(t, head, args, argc, out);
out:
	for (int i = 0; i < argc; i++)
		free(args[i]);
	free(head);
	free(piped);
	return rc;
}

static int parse_pipeline(struct tp *t, char **out)
{
	char *v = NULL;
	int rc = parse_command(t, NULL, &v);
	while (!rc) {
		skip_ws(t);
		if (t->i >= t->n || t->s[t->i] != '|')
			break;
		t->i++;
		char *next = NULL;
		rc = parse_command(t, v, &next); /* v transferred */
		v = next;
	}
	if (rc) {
		free(v);
		v = NULL;
	}
	*out = v;
	return rc;
}

static int render(char **out, const char *tmpl, const char *display, const char *role,
		  int64_t now_ms, bool check, struct verr *err)
{
	*out = NULL;
	if (!tmpl || !*tmpl)
		tmpl = DBTMPL_DEFAULT_USERNAME;
	struct buf b;
	buf_init(&b, 64);
	int rc = 0;
	for (const char *p = tmpl; *p;) {
		if (!(p[0] == '{' && p[1] == '{')) {
			buf_char(&b, *p++);
			continue;
		}
		const char *end = strstr(p + 2, "}}");
		if (!end) {
			rc = verr_set(err, VERR_INVALID, "username_template: unclosed action");
			goto out;
		}
		struct tp t = {.s = p + 2, .n = (size_t)(end - p - 2), .display = display,
			       .role = role, .now_ms = now_ms, .check = check, .err = err};
		char *v = NULL;
		if ((rc = parse_pipeline(&t, &v)))
			goto out;
		skip_ws(&t);
		if (t.i < t.n) {
			free(v);
			rc = verr_set(err, VERR_INVALID, "username_template: unexpected \"%c\"", t.s[t.i]);
			goto out;
		}
		buf_str(&b, v);
		free(v);
		p = end + 2;
		if (b.len > TMPL_MAX_OUT) {
			rc = verr_set(err, VERR_INVALID, "username_template: result too long");
			goto out;
		}
	}
	if (b.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (!check && b.len == 0) {
		rc = verr_set(err, VERR_INVALID, "username_template produced an empty username");
		goto out;
	}
	*out = buf_take(&b, NULL);
out:
	buf_free(&b);
	return rc;
}

int dbtmpl_username_check(const char *tmpl, struct verr *err)
{
	char *s = NULL;
	int rc = render(&s, tmpl, "display", "role", 0, true, err);
	free(s);
	return rc;
}

int dbtmpl_username(char **out, const char *tmpl, const char *display_name, const char *role,
		    int64_t now_ms, struct verr *err)
{
	return render(out, tmpl, display_name, role, now_ms, false, err);
}
