/*
 * args.c - the client's command-line plumbing: the environment, Go-style flag
 * parsing (Vault's CLI is built on Go's flag package, so "-f=v", "-f v",
 * "--f" all work and parsing stops at the first positional argument), k=v
 * data arguments (Vault's kvbuilder grammar), the token helper file and
 * password prompts. See cli.h.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/duration.h"

void cli_strlist_add(struct cli_strlist *l, const char *s)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n] = strdup(s);
	if (!l->v[l->n])
		abort();
	l->n++;
}

void cli_strlist_clear(struct cli_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

json_t *cli_strlist_object(const struct cli_strlist *l)
{
	json_t *o = json_object();
	for (size_t i = 0; i < l->n; i++) {
		const char *eq = strchr(l->v[i], '=');
		char *k = strndup(l->v[i], (size_t)(eq - l->v[i]));
		if (!k)
			abort();
		json_object_set_new(o, k, json_string(eq + 1));
		free(k);
	}
	return o;
}

int cli_parse_bool(const char *s)
{
	static const char *const t[] = {"1", "t", "T", "true", "TRUE", "True"};
	static const char *const f[] = {"0", "f", "F", "false", "FALSE", "False"};
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(s, t[i]) == 0)
			return 1;
		if (strcmp(s, f[i]) == 0)
			return 0;
	}
	return -1;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void add_common(struct cli *c, const char *name, enum cli_flag_type t, void *dst,
		       const char *usage)
{
	struct cli_flag *f = &c->common[c->ncommon++];
	f->name = name;
	f->type = t;
	f->dst = dst;
	f->usage = usage;
	f->set = NULL;
}

void cli_init(struct cli *c, const char *prog)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog ? prog : "coffer";
	c->out = stdout;
	c->err = stderr;
	c->out_tty = isatty(STDOUT_FILENO);
	c->addr = env("VAULT_ADDR") ? env("VAULT_ADDR") : CLI_DEFAULT_ADDR;
	c->ca_cert = env("VAULT_CACERT");
	c->ca_path = env("VAULT_CAPATH");
	c->client_cert = env("VAULT_CLIENT_CERT");
	c->client_key = env("VAULT_CLIENT_KEY");
	c->tls_server_name = env("VAULT_TLS_SERVER_NAME");
	c->namespace_ = env("VAULT_NAMESPACE");
	c->format = env("VAULT_FORMAT");
	c->wrap_ttl = env("VAULT_WRAP_TTL");
	if (env("VAULT_SKIP_VERIFY")) {
		/* Vault: any value that is not a parseable "false" skips. */
		c->skip_verify = cli_parse_bool(env("VAULT_SKIP_VERIFY")) != 0;
	}
	c->timeout_s = 60;
	if (env("VAULT_CLIENT_TIMEOUT")) {
		int64_t s;
		if (duration_parse(&s, env("VAULT_CLIENT_TIMEOUT"), NULL) == 0 && s > 0)
			c->timeout_s = (long)s;
	}
	c->token = env("VAULT_TOKEN");
	if (!c->token) {
		c->token_owned = cli_token_helper_get();
		c->token = c->token_owned;
	}
	add_common(c, "address", CLI_FLAG_STRING, &c->addr, "Address of the server");
	add_common(c, "ca-cert", CLI_FLAG_STRING, &c->ca_cert, "PEM CA file to verify the server");
	add_common(c, "ca-path", CLI_FLAG_STRING, &c->ca_path, "Directory of PEM CA files");
	add_common(c, "client-cert", CLI_FLAG_STRING, &c->client_cert, "PEM client certificate");
	add_common(c, "client-key", CLI_FLAG_STRING, &c->client_key, "PEM client key");
	add_common(c, "tls-server-name", CLI_FLAG_STRING, &c->tls_server_name, "SNI host name");
	add_common(c, "tls-skip-verify", CLI_FLAG_BOOL, &c->skip_verify, "Do not verify TLS");
	add_common(c, "namespace", CLI_FLAG_STRING, &c->namespace_, "Namespace (X-Vault-Namespace)");
	add_common(c, "ns", CLI_FLAG_STRING, &c->namespace_, "Alias of -namespace");
	add_common(c, "format", CLI_FLAG_STRING, &c->format, "table, json or yaml");
	add_common(c, "field", CLI_FLAG_STRING, &c->field, "Print only this field");
	add_common(c, "wrap-ttl", CLI_FLAG_STRING, &c->wrap_ttl,
		   "Wrap the response in a single-use token with this TTL");
	add_common(c, "non-interactive", CLI_FLAG_BOOL, &c->non_interactive, "Never prompt");
	add_common(c, "detailed", CLI_FLAG_BOOL, &c->detailed, "More columns in lists");
}

void cli_cleanup(struct cli *c)
{
	cli_free_secret(c->token_owned);
	c->token_owned = NULL;
}

static const struct cli_flag *find_flag(const struct cli_flag *flags, const struct cli *c,
					const char *name, size_t nlen)
{
	for (const struct cli_flag *f = flags; f && f->name; f++)
		if (strlen(f->name) == nlen && strncmp(f->name, name, nlen) == 0)
			return f;
	if (c)
		for (size_t i = 0; i < c->ncommon; i++)
			if (strlen(c->common[i].name) == nlen &&
			    strncmp(c->common[i].name, name, nlen) == 0)
				return &c->common[i];
	return NULL;
}

static int set_flag(const struct cli_flag *f, const char *val, struct verr *err)
{
	switch (f->type) {
	case CLI_FLAG_BOOL: {
		int b = val ? cli_parse_bool(val) : 1;
		if (b < 0)
			return verr_set(err, VERR_INVALID,
					"invalid boolean value \"%s\" for -%s: parse error", val,
					f->name);
		*(int *)f->dst = b;
		break;
	}
	case CLI_FLAG_STRING:
		*(const char **)f->dst = val;
		break;
	case CLI_FLAG_INT: {
		char *end;
		errno = 0;
		long v = strtol(val, &end, 0);
		if (errno || end == val || *end)
			return verr_set(err, VERR_INVALID,
					"invalid value \"%s\" for flag -%s: parse error", val, f->name);
		*(long *)f->dst = v;
		break;
	}
	case CLI_FLAG_KV:
		if (!strchr(val, '='))
			return verr_set(err, VERR_INVALID,
					"invalid value \"%s\" for flag -%s: expected key=value", val,
					f->name);
		/* fall through */
	case CLI_FLAG_LIST:
		cli_strlist_add(f->dst, val);
		break;
	}
	if (f->set)
		*f->set = 1;
	return 0;
}

int cli_flags_parse(struct cli *c, const struct cli_flag *flags, int argc, char **argv,
		    int *first_arg, struct verr *err)
{
	int i = 0;
	while (i < argc) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		const char *name = a + 1;
		if (*name == '-')
			name++;
		if (*name == '\0' || *name == '-' || *name == '=')
			return verr_set(err, VERR_INVALID, "bad flag syntax: %s", a);
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_flag *f = find_flag(flags, c, name, nlen);
		if (!f)
			return verr_set(err, VERR_INVALID, "flag provided but not defined: -%.*s",
					(int)nlen, name);
		const char *val = eq ? eq + 1 : NULL;
		i++;
		if (!val && f->type != CLI_FLAG_BOOL) {
			if (i >= argc)
				return verr_set(err, VERR_INVALID, "flag needs an argument: -%s",
						f->name);
			val = argv[i++];
		}
		int rc = set_flag(f, val, err);
		if (rc)
			return rc;
	}
	*first_arg = i;
	/* Vault warns when flags follow positional arguments: they are data. */
	if (c && c->err) {
		int warned = 0;
		for (int j = i; j < argc; j++) {
			if (argv[j][0] == '-' && argv[j][1] != '\0' && strcmp(argv[j], "--") != 0) {
				if (!warned)
					fprintf(c->err,
						"Command flags must be provided before positional "
						"arguments. The following arguments will not be "
						"parsed as flags: [");
				fprintf(c->err, "%s%s", warned ? " " : "", argv[j]);
				warned = 1;
			}
		}
		if (warned)
			fprintf(c->err, "]\n");
	}
	return 0;
}

int cli_read_file(char **out, size_t *len, const char *path, FILE *in, struct verr *err)
{
	*out = NULL;
	FILE *f = strcmp(path, "-") == 0 ? in : fopen(path, "rb");
	if (!f)
		return verr_set(err, VERR_INVALID, "error opening file %s: %s", path,
				strerror(errno));
	struct buf b;
	buf_init(&b, 4096);
	int bad = buf_read_stream(&b, f, 0);
	if (f != in)
		fclose(f);
	if (bad) {
		buf_free(&b);
		return verr_set(err, VERR_INVALID, "error reading %s", path);
	}
	size_t n = 0;
	char *buf = buf_take(&b, &n);
	if (!buf)
		abort();
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

static void kv_add(json_t *obj, const char *key, json_t *val)
{
	json_t *cur = json_object_get(obj, key);
	if (!cur) {
		json_object_set_new(obj, key, val);
	} else if (json_is_array(cur)) {
		json_array_append_new(cur, val);
	} else {
		json_t *arr = json_array();
		json_array_append(arr, cur);
		json_array_append_new(arr, val);
		json_object_set_new(obj, key, arr);
	}
}

static int merge_json_object(json_t *obj, const char *text, const char *src, struct verr *err)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return verr_set(err, VERR_INVALID, "failed to parse JSON input from %s: %s", src,
				j ? "not a JSON object" : je.text);
	}
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) json_object_set(obj, k, v);
	json_decref(j);
	return 0;
}

int cli_kv_parse(json_t **out, int argc, char **argv, FILE *in, struct verr *err)
{
	int rc = 0, stdin_used = 0;
	char *text = NULL;
	json_t *obj = json_object();
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-") == 0 || a[0] == '@') {
			const char *path = a[0] == '@' ? a + 1 : "-";
			if (strcmp(path, "-") == 0) {
				if (stdin_used++) {
					rc = verr_set(err, VERR_INVALID, "stdin already consumed");
					goto out;
				}
			}
			if ((rc = cli_read_file(&text, NULL, path, in, err)) != 0)
				goto out;
			if ((rc = merge_json_object(obj, text, a[0] == '@' ? path : "stdin", err)) != 0)
				goto out;
			free(text);
			text = NULL;
			continue;
		}
		const char *eq = strchr(a, '=');
		if (!eq || eq == a) {
			rc = verr_set(err, VERR_INVALID, "invalid key/value pair \"%s\": format must be key=value", a);
			goto out;
		}
		char *key = strndup(a, (size_t)(eq - a));
		const char *val = eq + 1;
		if (strcmp(val, "-") == 0 || val[0] == '@') {
			const char *path = val[0] == '@' ? val + 1 : "-";
			if (strcmp(path, "-") == 0 && stdin_used++) {
				free(key);
				rc = verr_set(err, VERR_INVALID, "stdin already consumed");
				goto out;
			}
			rc = cli_read_file(&text, NULL, path, in, err);
			if (rc) {
				free(key);
				goto out;
			}
			kv_add(obj, key, json_string(text));
			free(text);
			text = NULL;
		} else {
			/* "\@" escapes a literal leading @ */
			if (val[0] == '\\' && val[1] == '@')
				val++;
			kv_add(obj, key, json_string(val));
		}
		free(key);
	}
out:
	free(text);
	if (rc) {
		json_decref(obj);
		obj = NULL;
	}
	*out = obj;
	return rc;
}

int cli_fail(struct cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(c->err, fmt, ap);
	va_end(ap);
	fputc('\n', c->err);
	return code;
}

int cli_parse_cmd(struct cli *c, const struct cli_flag *flags, int argc, char **argv, int *first_arg,
		  int *rc)
{
	struct verr e = {0};
	if (cli_flags_parse(c, flags, argc, argv, first_arg, &e) != 0) {
		*rc = cli_fail(c, CLI_ELOCAL, "%s", e.msg);
		return 1;
	}
	if (!cli_format_ok(c)) {
		*rc = CLI_ELOCAL;
		return 1;
	}
	return 0;
}

int cli_check_args(struct cli *c, int n, int min, int max)
{
	if (n < min) {
		cli_fail(c, 1, "Not enough arguments (expected %d, got %d)", min, n);
		return -1;
	}
	if (max >= 0 && n > max) {
		cli_fail(c, 1, "Too many arguments (expected %d, got %d)", max, n);
		return -1;
	}
	return 0;
}

int cli_parse_args(struct cli *c, const struct cli_flag *flags, int *argc, char ***argv, int min,
		   int max, int *rc)
{
	int oi;
	if (cli_parse_cmd(c, flags, *argc, *argv, &oi, rc))
		return 1;
	*argc -= oi;
	*argv += oi;
	if (cli_check_args(c, *argc, min, max)) {
		*rc = CLI_ELOCAL;
		return 1;
	}
	*rc = CLI_OK;
	return 0;
}

void cli_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *cli_prompt_secret(struct cli *c, const char *prompt)
{
	int tty = isatty(STDIN_FILENO);
	struct termios old, quiet;
	if (tty) {
		fputs(prompt, c->err);
		fflush(c->err);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		} else {
			tty = 0;
		}
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', c->err);
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int helper_path(char *buf, size_t cap)
{
	const char *home = getenv("HOME");
	if (!home || !*home)
		return -1;
	int n = snprintf(buf, cap, "%s/.vault-token", home);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int cli_token_helper_store(const char *token, struct verr *err)
{
	char path[PATH_MAX];
	if (helper_path(path, sizeof(path)))
		return verr_set(err, VERR_INVALID, "cannot locate the home directory");
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return verr_set(err, VERR_INVALID, "error writing token helper file: %s",
				strerror(errno));
	}
	fputs(token, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return verr_set(err, VERR_INVALID, "error writing token helper file: %s",
				strerror(errno));
	}
	return 0;
}

char *cli_token_helper_get(void)
{
	char path[PATH_MAX];
	if (helper_path(path, sizeof(path)))
		return NULL;
	char *buf = NULL;
	if (cli_read_file(&buf, NULL, path, stdin, NULL) != 0)
		return NULL;
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *cli_sanitize_path(const char *p, int add_slash)
{
	while (*p == '/')
		p++;
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	char *s = malloc(n + 2);
	if (!s)
		abort();
	memcpy(s, p, n);
	if (add_slash && n > 0)
		s[n++] = '/';
	s[n] = '\0';
	return s;
}
