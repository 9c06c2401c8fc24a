/*
 * hcl.c - HCL (version 1) lexer, recursive-descent parser and JSON view
 * (see hcl.h for the language and output contract).
 *
 * DESIGN
 * The lexer is pulled by the parser one token at a time (one token of
 * lookahead is all the grammar needs). A token owns its decoded string until
 * the parser takes it. Every allocation hangs off the tree being built, so on
 * any error the partial tree is freed with hcl_doc_free. Depth is counted on
 * every object/list descent so hostile input cannot exhaust the C stack.
 */
#include "util/hcl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok_type {
	T_EOF,
	T_IDENT,
	T_STRING,
	T_HEREDOC,
	T_INT,
	T_FLOAT,
	T_BOOL,
	T_LBRACE,
	T_RBRACE,
	T_LBRACK,
	T_RBRACK,
	T_COMMA,
	T_EQUAL,
};

struct tok {
	enum tok_type type;
	int line, col;
	char *str; /* T_IDENT, T_STRING, T_HEREDOC: owned, NUL-terminated */
	size_t len;
	int64_t i;
	double f;
	int b;
};

struct lexer {
	const char *src;
	size_t len, pos;
	int line, col;
	const char *file;
	struct verr *err;
	struct tok tok; /* current lookahead */
	int depth;
};

/* ---- errors ---- */

static int lex_errv(struct lexer *lx, int line, int col, const char *fmt, va_list ap)
{
	char msg[VERR_MSG_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	return verr_set(lx->err, VERR_INVALID, "%s:%d:%d: %s", lx->file, line, col, msg);
}

static int __attribute__((format(printf, 4, 5)))
lex_err(struct lexer *lx, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = lex_errv(lx, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *tok_name(enum tok_type t)
{
	switch (t) {
	case T_EOF: return "end of file";
	case T_IDENT: return "identifier";
	case T_STRING: return "string";
	case T_HEREDOC: return "heredoc";
	case T_INT: return "number";
	case T_FLOAT: return "number";
	case T_BOOL: return "boolean";
	case T_LBRACE: return "'{'";
	case T_RBRACE: return "'}'";
	case T_LBRACK: return "'['";
	case T_RBRACK: return "']'";
	case T_COMMA: return "','";
	case T_EQUAL: return "'='";
	}
	return "token";
}

/* Describe the current token for "found ..." (identifiers quoted, short). */
static void tok_describe(const struct tok *t, char *buf, size_t cap)
{
	if (t->type == T_IDENT)
		snprintf(buf, cap, "identifier \"%.40s\"", t->str);
	else
		snprintf(buf, cap, "%s", tok_name(t->type));
}

/* ---- character level ---- */

static int at(const struct lexer *lx, size_t off)
{
	return lx->pos + off < lx->len ? (unsigned char)lx->src[lx->pos + off] : -1;
}

static void adv(struct lexer *lx)
{
	unsigned char c = (unsigned char)lx->src[lx->pos++];
	if (c == '\n') {
		lx->line++;
		lx->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		lx->col++; /* columns count characters, not UTF-8 continuation bytes */
	}
}

static int is_ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(int c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Validate the whole input once: UTF-8, no NUL. Reports the position. */
static int check_utf8(struct lexer *lx)
{
	const unsigned char *s = (const unsigned char *)lx->src;
	int line = 1, col = 1;
	for (size_t i = 0; i < lx->len;) {
		unsigned c = s[i];
		size_t n;
		unsigned cp;
		if (c == 0)
			return lex_err(lx, line, col, "NUL byte in input");
		if (c < 0x80) {
			if (c == '\n') {
				line++;
				col = 0;
			}
			i++;
			col++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
		else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
		else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
		else
			return lex_err(lx, line, col, "invalid UTF-8");
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= lx->len || (s[i + k] & 0xC0) != 0x80)
				return lex_err(lx, line, col, "invalid UTF-8");
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return lex_err(lx, line, col, "invalid UTF-8");
		i += n + 1;
		col++;
	}
	return 0;
}

/* ---- a growable byte buffer for decoded strings ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static int sbuf_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int sbuf_putc(struct sbuf *b, char c) { return sbuf_put(b, &c, 1); }

static int sbuf_put_utf8(struct sbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) { u[0] = (char)cp; n = 1; }
	else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
	else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
	}
	return sbuf_put(b, u, n);
}

static int oom(struct lexer *lx)
{
	return verr_set(lx->err, VERR_INTERNAL, "%s: out of memory", lx->file);
}

/* ---- tokens ---- */

static void tok_clear(struct tok *t)
{
	free(t->str);
	memset(t, 0, sizeof(*t));
}

/* Skip whitespace and comments. */
static int skip_space(struct lexer *lx)
{
	for (;;) {
		int c = at(lx, 0);
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			adv(lx);
		} else if (c == '#' || (c == '/' && at(lx, 1) == '/')) {
			while (at(lx, 0) != -1 && at(lx, 0) != '\n')
				adv(lx);
		} else if (c == '/' && at(lx, 1) == '*') {
			int line = lx->line, col = lx->col;
			adv(lx);
			adv(lx);
			for (;;) {
				if (at(lx, 0) == -1)
					return lex_err(lx, line, col, "unterminated comment: expected \"*/\"");
				if (at(lx, 0) == '*' && at(lx, 1) == '/') {
					adv(lx);
					adv(lx);
					break;
				}
				adv(lx);
			}
		} else if (c == '/') {
			return lex_err(lx, lx->line, lx->col, "unexpected '/': comments start with \"//\" or \"/*\"");
		} else {
			return 0;
		}
	}
}

static int lex_string(struct lexer *lx, struct tok *t)
{
	struct sbuf b = {0};
	int braces = 0; /* inside ${...} quotes and escapes are literal */
	adv(lx);        /* opening quote */
	for (;;) {
		int c = at(lx, 0);
		if (c == -1 || (c == '\n' && braces == 0)) {
			free(b.p);
			return lex_err(lx, t->line, t->col, "unterminated string: expected '\"'");
		}
		if (braces == 0 && c == '"') {
			adv(lx);
			break;
		}
		if (braces == 0 && c == '$' && at(lx, 1) == '{') {
			braces = 1;
			if (sbuf_put(&b, "${", 2))
				goto nomem;
			adv(lx);
			adv(lx);
			continue;
		}
		if (braces > 0) {
			if (c == '{')
				braces++;
			else if (c == '}')
				braces--;
			if (sbuf_putc(&b, (char)c))
				goto nomem;
			adv(lx);
			continue;
		}
		if (c != '\\') {
			if (sbuf_putc(&b, (char)c))
				goto nomem;
			adv(lx);
			continue;
		}
		int eline = lx->line, ecol = lx->col;
		adv(lx);
		int e = at(lx, 0);
		const char *rep = NULL;
		switch (e) {
		case '"': rep = "\""; break;
		case '\\': rep = "\\"; break;
		case 'n': rep = "\n"; break;
		case 'r': rep = "\r"; break;
		case 't': rep = "\t"; break;
		case 'u':
		case 'U': {
			int n = e == 'u' ? 4 : 8;
			uint32_t cp = 0;
			adv(lx);
			for (int k = 0; k < n; k++) {
				int h = hexval(at(lx, 0));
				if (h < 0) {
					free(b.p);
					return lex_err(lx, eline, ecol, "invalid escape: \\%c needs %d hex digits", e, n);
				}
				cp = (cp << 4) | (uint32_t)h;
				adv(lx);
			}
			if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
				free(b.p);
				return lex_err(lx, eline, ecol, "invalid escape: U+%04X is not an allowed character", cp);
			}
			if (sbuf_put_utf8(&b, cp))
				goto nomem;
			continue;
		}
		default:
			free(b.p);
			if (e == -1 || e == '\n')
				return lex_err(lx, t->line, t->col, "unterminated string: expected '\"'");
			if (e >= 0x20 && e < 0x7f)
				return lex_err(lx, eline, ecol, "invalid escape \"\\%c\"", e);
			return lex_err(lx, eline, ecol, "invalid escape");
		}
		if (sbuf_put(&b, rep, 1))
			goto nomem;
		adv(lx);
	}
	if (!b.p && sbuf_put(&b, "", 0))
		goto nomem;
	t->type = T_STRING;
	t->str = b.p;
	t->len = b.len;
	return 0;
nomem:
	free(b.p);
	return oom(lx);
}

/* <<ID or <<-ID, then lines up to one that is (whitespace) ID (\r*). */
static int lex_heredoc(struct lexer *lx, struct tok *t)
{
	adv(lx);
	adv(lx);
	int indent = 0;
	if (at(lx, 0) == '-') {
		indent = 1;
		adv(lx);
	}
	size_t id0 = lx->pos;
	while (is_ident_char(at(lx, 0)))
		adv(lx);
	size_t idlen = lx->pos - id0;
	if (idlen == 0)
		return lex_err(lx, t->line, t->col, "heredoc: expected an anchor identifier after \"<<\"");
	while (at(lx, 0) == '\r')
		adv(lx);
	if (at(lx, 0) != '\n')
		return lex_err(lx, lx->line, lx->col, "heredoc: expected a newline after the anchor");
	adv(lx);
	const char *id = lx->src + id0;

	/* Collect [start,end) of each content line (end excludes '\n'). */
	size_t nlines = 0, cap = 0;
	size_t(*lines)[2] = NULL;
	int found = 0;
	while (lx->pos < lx->len) {
		size_t s = lx->pos, e = s;
		while (e < lx->len && lx->src[e] != '\n')
			e++;
		size_t a = s, z = e;
		while (a < z && (lx->src[a] == ' ' || lx->src[a] == '\t'))
			a++;
		while (z > a && lx->src[z - 1] == '\r')
			z--;
		/* advance over the line */
		while (lx->pos < e)
			adv(lx);
		if (z - a == idlen && memcmp(lx->src + a, id, idlen) == 0) {
			found = 1;
			break;
		}
		if (nlines == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(lines, cap * sizeof(*lines));
			if (!p) {
				free(lines);
				return oom(lx);
			}
			lines = p;
		}
		lines[nlines][0] = s;
		lines[nlines][1] = e;
		nlines++;
		if (lx->pos < lx->len)
			adv(lx); /* '\n' */
	}
	if (!found) {
		free(lines);
		return lex_err(lx, t->line, t->col, "unterminated heredoc: expected a line \"%.*s\"",
			(int)(idlen > 40 ? 40 : idlen), id);
	}
	size_t strip = 0;
	if (indent) {
		/* longest whitespace prefix shared by every non-blank line */
		const char *pfx = NULL;
		size_t plen = 0;
		for (size_t k = 0; k < nlines; k++) {
			const char *l = lx->src + lines[k][0];
			size_t n = lines[k][1] - lines[k][0], w = 0;
			while (w < n && (l[w] == ' ' || l[w] == '\t'))
				w++;
			if (w == n || (w == n - 1 && l[w] == '\r'))
				continue; /* blank */
			if (!pfx) {
				pfx = l;
				plen = w;
			} else {
				size_t m = 0;
				while (m < plen && m < w && pfx[m] == l[m])
					m++;
				plen = m;
			}
		}
		strip = plen;
	}
	struct sbuf b = {0};
	int rc = 0;
	if (sbuf_put(&b, "", 0))
		rc = -1;
	for (size_t k = 0; k < nlines && !rc; k++) {
		const char *l = lx->src + lines[k][0];
		size_t n = lines[k][1] - lines[k][0];
		size_t w = 0;
		while (w < strip && w < n && (l[w] == ' ' || l[w] == '\t'))
			w++;
		if (sbuf_put(&b, l + w, n - w) || sbuf_putc(&b, '\n'))
			rc = -1;
	}
	free(lines);
	if (rc) {
		free(b.p);
		return oom(lx);
	}
	t->type = T_HEREDOC;
	t->str = b.p;
	t->len = b.len;
	return 0;
}

static int lex_number(struct lexer *lx, struct tok *t)
{
	size_t s = lx->pos, p = s;
	int isfloat = 0, hex = 0;
	if (p < lx->len && lx->src[p] == '-')
		p++;
	if (p + 1 < lx->len && lx->src[p] == '0' && (lx->src[p + 1] == 'x' || lx->src[p + 1] == 'X')) {
		hex = 1;
		p += 2;
		while (p < lx->len && hexval((unsigned char)lx->src[p]) >= 0)
			p++;
	} else {
		while (p < lx->len && is_digit((unsigned char)lx->src[p]))
			p++;
		if (p + 1 < lx->len && lx->src[p] == '.' && is_digit((unsigned char)lx->src[p + 1])) {
			isfloat = 1;
			p++;
			while (p < lx->len && is_digit((unsigned char)lx->src[p]))
				p++;
		}
		if (p < lx->len && (lx->src[p] == 'e' || lx->src[p] == 'E')) {
			size_t q = p + 1;
			if (q < lx->len && (lx->src[q] == '+' || lx->src[q] == '-'))
				q++;
			if (q < lx->len && is_digit((unsigned char)lx->src[q])) {
				isfloat = 1;
				p = q;
				while (p < lx->len && is_digit((unsigned char)lx->src[p]))
					p++;
			}
		}
	}
	/* a number glued to letters (1h, 10kb, 1.2.3) is not a number */
	size_t z = p;
	while (z < lx->len && is_ident_char((unsigned char)lx->src[z]))
		z++;
	size_t n = z - s;
	char text[64];
	if (z != p || (hex && p - s <= 2 + (lx->src[s] == '-')) || n >= sizeof(text))
		return lex_err(lx, t->line, t->col,
			"invalid number \"%.*s\" (quote it if it is a string or duration)",
			(int)(n > 40 ? 40 : n), lx->src + s);
	memcpy(text, lx->src + s, n);
	text[n] = '\0';
	char *end;
	errno = 0;
	if (isfloat) {
		double f = strtod(text, &end);
		if (*end || errno || !isfinite(f))
			return lex_err(lx, t->line, t->col, "number \"%s\" is out of range", text);
		t->type = T_FLOAT;
		t->f = f;
	} else {
		const char *digits = text + (text[0] == '-');
		int base = hex ? 16 : (digits[0] == '0' && digits[1] ? 8 : 10);
		if (hex)
			digits += 2;
		/* strtoll would accept a second sign or spaces; digits are checked above
		 * except octal's 8 and 9 */
		long long v = strtoll(digits, &end, base);
		if (*end)
			return lex_err(lx, t->line, t->col, "invalid number \"%s\"", text);
		if (errno == ERANGE) {
			/* -9223372036854775808 */
			if (text[0] == '-' && v == LLONG_MAX) {
				errno = 0;
				unsigned long long u = strtoull(digits, &end, base);
				if (!errno && u == (unsigned long long)LLONG_MAX + 1) {
					t->type = T_INT;
					t->i = INT64_MIN;
					goto done;
				}
			}
			return lex_err(lx, t->line, t->col, "number \"%s\" is out of range", text);
		}
		t->type = T_INT;
		t->i = text[0] == '-' ? -(int64_t)v : (int64_t)v;
	}
done:
	while (lx->pos < p)
		adv(lx);
	return 0;
}

/* Lex the next token into lx->tok (the previous one must have been taken or
 * cleared). */
static int lex_next(struct lexer *lx)
{
	tok_clear(&lx->tok);
	int rc = skip_space(lx);
	if (rc)
		return rc;
	struct tok *t = &lx->tok;
	t->line = lx->line;
	t->col = lx->col;
	int c = at(lx, 0);
	switch (c) {
	case -1: t->type = T_EOF; return 0;
	case '{': t->type = T_LBRACE; adv(lx); return 0;
	case '}': t->type = T_RBRACE; adv(lx); return 0;
	case '[': t->type = T_LBRACK; adv(lx); return 0;
	case ']': t->type = T_RBRACK; adv(lx); return 0;
	case ',': t->type = T_COMMA; adv(lx); return 0;
	case '=': t->type = T_EQUAL; adv(lx); return 0;
	case '"': return lex_string(lx, t);
	default: break;
	}
	if (c == '<' && at(lx, 1) == '<')
		return lex_heredoc(lx, t);
	if (is_digit(c) || (c == '-' && is_digit(at(lx, 1))))
		return lex_number(lx, t);
	if (is_ident_start(c)) {
		size_t s = lx->pos;
		while (is_ident_char(at(lx, 0)))
			adv(lx);
		size_t n = lx->pos - s;
		if ((n == 4 && !memcmp(lx->src + s, "true", 4)) || (n == 5 && !memcmp(lx->src + s, "false", 5))) {
			t->type = T_BOOL;
			t->b = n == 4;
			return 0;
		}
		t->str = strndup(lx->src + s, n);
		if (!t->str)
			return oom(lx);
		t->type = T_IDENT;
		t->len = n;
		return 0;
	}
	if (c >= 0x20 && c < 0x7f)
		return lex_err(lx, t->line, t->col, "unexpected character '%c'", c);
	return lex_err(lx, t->line, t->col, "unexpected character");
}

/* ---- tree ---- */

static void value_fini(struct hcl_value *v);

static void body_fini(struct hcl_body *b)
{
	for (size_t i = 0; i < b->nitems; i++) {
		struct hcl_item *it = &b->items[i];
		for (size_t k = 0; k < it->nkeys; k++)
			free(it->keys[k]);
		free(it->keys);
		value_fini(&it->value);
	}
	free(b->items);
	memset(b, 0, sizeof(*b));
}

static void value_fini(struct hcl_value *v)
{
	free(v->str);
	for (size_t i = 0; i < v->nelems; i++)
		value_fini(&v->elems[i]);
	free(v->elems);
	body_fini(&v->body);
	memset(v, 0, sizeof(*v));
}

void hcl_doc_free(struct hcl_doc *d)
{
	if (!d)
		return;
	body_fini(&d->body);
	free(d->filename);
	free(d);
}

/* ---- parser ---- */

static int parse_body(struct lexer *lx, struct hcl_body *b, int toplevel);

static int expect_err(struct lexer *lx, const char *what)
{
	char found[96];
	tok_describe(&lx->tok, found, sizeof(found));
	return lex_err(lx, lx->tok.line, lx->tok.col, "expected %s, found %s", what, found);
}

static int depth_enter(struct lexer *lx)
{
	if (++lx->depth > HCL_MAX_DEPTH)
		return lex_err(lx, lx->tok.line, lx->tok.col, "nesting deeper than %d levels", HCL_MAX_DEPTH);
	return 0;
}

/* The current token is '{': parse "{ body }" into v. */
static int parse_object(struct lexer *lx, struct hcl_value *v)
{
	int rc;
	v->type = HCL_OBJECT;
	v->line = lx->tok.line;
	v->col = lx->tok.col;
	if ((rc = depth_enter(lx)) || (rc = lex_next(lx)) || (rc = parse_body(lx, &v->body, 0)))
		return rc;
	/* parse_body stops at '}' */
	lx->depth--;
	return lex_next(lx);
}

static int parse_value(struct lexer *lx, struct hcl_value *v);

static int parse_list(struct lexer *lx, struct hcl_value *v)
{
	int rc;
	v->type = HCL_LIST;
	v->line = lx->tok.line;
	v->col = lx->tok.col;
	if ((rc = depth_enter(lx)) || (rc = lex_next(lx)))
		return rc;
	for (;;) {
		if (lx->tok.type == T_RBRACK)
			break;
		if (v->nelems == v->cap) {
			size_t cap = v->cap ? v->cap * 2 : 4;
			void *p = realloc(v->elems, cap * sizeof(*v->elems));
			if (!p)
				return oom(lx);
			v->elems = p;
			v->cap = cap;
		}
		struct hcl_value *e = &v->elems[v->nelems];
		memset(e, 0, sizeof(*e));
		v->nelems++;
		if ((rc = parse_value(lx, e)))
			return rc;
		if (lx->tok.type == T_COMMA) {
			if ((rc = lex_next(lx)))
				return rc;
			continue;
		}
		if (lx->tok.type != T_RBRACK)
			return expect_err(lx, "',' or ']' in list");
	}
	lx->depth--;
	return lex_next(lx);
}

static int parse_value(struct lexer *lx, struct hcl_value *v)
{
	struct tok *t = &lx->tok;
	v->line = t->line;
	v->col = t->col;
	switch (t->type) {
	case T_STRING:
	case T_HEREDOC:
		v->type = HCL_STRING;
		v->heredoc = t->type == T_HEREDOC;
		v->str = t->str;
		v->len = t->len;
		t->str = NULL; /* transferred */
		break;
	case T_INT: v->type = HCL_INT; v->i = t->i; break;
	case T_FLOAT: v->type = HCL_FLOAT; v->f = t->f; break;
	case T_BOOL: v->type = HCL_BOOL; v->b = t->b; break;
	case T_LBRACE: return parse_object(lx, v);
	case T_LBRACK: return parse_list(lx, v);
	case T_IDENT:
		return lex_err(lx, t->line, t->col,
			"expected a value (string, number, boolean, list, object or heredoc), found identifier \"%.40s\" (quote it if it is a string)",
			t->str);
	default:
		return expect_err(lx, "a value (string, number, boolean, list, object or heredoc)");
	}
	return lex_next(lx);
}

static int parse_item(struct lexer *lx, struct hcl_item *it)
{
	int rc;
	it->line = lx->tok.line;
	it->col = lx->tok.col;
	while (lx->tok.type == T_IDENT || lx->tok.type == T_STRING) {
		char **k = realloc(it->keys, (it->nkeys + 1) * sizeof(*k));
		if (!k)
			return oom(lx);
		it->keys = k;
		it->keys[it->nkeys++] = lx->tok.str;
		lx->tok.str = NULL; /* transferred */
		if ((rc = lex_next(lx)))
			return rc;
	}
	if (lx->tok.type == T_EQUAL) {
		if (it->nkeys > 1)
			return lex_err(lx, lx->tok.line, lx->tok.col,
				"expected '{' after \"%.40s\" and its labels, found '=' (only one key may be assigned)",
				it->keys[0]);
		if ((rc = lex_next(lx)))
			return rc;
		return parse_value(lx, &it->value);
	}
	if (lx->tok.type == T_LBRACE) {
		it->is_block = 1;
		return parse_object(lx, &it->value);
	}
	char what[96];
	snprintf(what, sizeof(what), "'=' or '{' after key \"%.40s\"", it->keys[it->nkeys - 1]);
	return expect_err(lx, what);
}

/* Items until EOF (top level) or '}' (nested; left as the current token). */
static int parse_body(struct lexer *lx, struct hcl_body *b, int toplevel)
{
	int rc;
	for (;;) {
		enum tok_type ty = lx->tok.type;
		if (ty == T_EOF) {
			if (toplevel)
				return 0;
			return expect_err(lx, "'}'");
		}
		if (ty == T_RBRACE) {
			if (!toplevel)
				return 0;
			return expect_err(lx, "a key");
		}
		if (ty == T_COMMA) { /* optional separator between items */
			if ((rc = lex_next(lx)))
				return rc;
			continue;
		}
		if (ty != T_IDENT && ty != T_STRING)
			return expect_err(lx, toplevel ? "a key" : "a key or '}'");
		if (b->nitems == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 8;
			void *p = realloc(b->items, cap * sizeof(*b->items));
			if (!p)
				return oom(lx);
			b->items = p;
			b->cap = cap;
		}
		struct hcl_item *it = &b->items[b->nitems++];
		memset(it, 0, sizeof(*it));
		if ((rc = parse_item(lx, it)))
			return rc;
	}
}

int hcl_parse(struct hcl_doc **out, const char *src, size_t len, const char *filename,
	struct verr *err)
{
	int rc;
	*out = NULL;
	struct lexer lx = {.src = src, .len = len, .line = 1, .col = 1,
		.file = filename ? filename : "<input>", .err = err};
	if (len > HCL_MAX_INPUT)
		return verr_set(err, VERR_TOO_LARGE, "%s: input is %zu bytes, the limit is %u", lx.file, len,
			HCL_MAX_INPUT);
	struct hcl_doc *d = calloc(1, sizeof(*d));
	if (!d || !(d->filename = strdup(lx.file))) {
		free(d);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	if ((rc = check_utf8(&lx)) || (rc = lex_next(&lx)) || (rc = parse_body(&lx, &d->body, 1)))
		goto out;
	*out = d;
	d = NULL; /* transferred */
out:
	tok_clear(&lx.tok);
	hcl_doc_free(d);
	return rc;
}

/* ---- JSON view ---- */

static json_t *value_to_json(const struct hcl_value *v);

json_t *hcl_body_to_json(const struct hcl_body *b)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct hcl_item *it = &b->items[i];
		json_t *v = value_to_json(&it->value);
		if (!v)
			goto fail;
		if (!it->is_block) {
			if (json_object_set_new(o, it->keys[0], v))
				goto fail;
			continue;
		}
		/* wrap the body in its labels, innermost last */
		for (size_t k = it->nkeys; k-- > 1;) {
			json_t *w = json_object();
			if (!w || json_object_set_new(w, it->keys[k], v)) {
				json_decref(w);
				goto fail;
			}
			v = w;
		}
		json_t *arr = json_object_get(o, it->keys[0]);
		if (!json_is_array(arr)) {
			arr = json_array();
			if (!arr || json_object_set_new(o, it->keys[0], arr)) {
				json_decref(v);
				goto fail;
			}
		}
		if (json_array_append_new(arr, v))
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *value_to_json(const struct hcl_value *v)
{
	switch (v->type) {
	case HCL_STRING: return json_stringn(v->str, v->len);
	case HCL_INT: return json_integer(v->i);
	case HCL_FLOAT: return json_real(v->f);
	case HCL_BOOL: return json_boolean(v->b);
	case HCL_OBJECT: return hcl_body_to_json(&v->body);
	case HCL_LIST: {
		json_t *a = json_array();
		if (!a)
			return NULL;
		for (size_t i = 0; i < v->nelems; i++) {
			if (json_array_append_new(a, value_to_json(&v->elems[i]))) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	}
	return NULL;
}

json_t *hcl_to_json(const struct hcl_doc *d)
{
	return hcl_body_to_json(&d->body);
}

int hcl_json_normalize(json_t *doc, struct verr *err)
{
	if (!json_is_object(doc))
		return verr_set(err, VERR_INVALID, "expected a JSON object at the top level");
	const char *key;
	json_t *val;
	json_object_foreach(doc, key, val) {
		if (!json_is_object(val))
			continue;
		json_t *arr = json_array();
		if (!arr || json_array_append(arr, val) || json_object_set_new(doc, key, arr))
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

int hcl_parse_any(json_t **out, struct hcl_doc **doc_out, const char *src, size_t len,
	const char *filename, struct verr *err)
{
	int rc;
	struct hcl_doc *d = NULL;
	json_t *j = NULL;
	const char *file = filename ? filename : "<input>";
	*out = NULL;
	if (doc_out)
		*doc_out = NULL;
	if (len > HCL_MAX_INPUT)
		return verr_set(err, VERR_TOO_LARGE, "%s: input is %zu bytes, the limit is %u", file, len,
			HCL_MAX_INPUT);
	size_t p = 0;
	while (p < len && (src[p] == ' ' || src[p] == '\t' || src[p] == '\r' || src[p] == '\n'))
		p++;
	if (p < len && src[p] == '{') {
		json_error_t je;
		j = json_loadb(src, len, 0, &je);
		if (!j)
			return verr_set(err, VERR_INVALID, "%s:%d:%d: invalid JSON: %s", file, je.line, je.column,
				je.text);
	} else {
		if ((rc = hcl_parse(&d, src, len, file, err)))
			return rc;
		if (!(j = hcl_to_json(d))) {
			rc = verr_set(err, VERR_INTERNAL, "%s: out of memory", file);
			goto out;
		}
	}
	if ((rc = hcl_json_normalize(j, err))) {
		if (rc == VERR_INVALID)
			verr_set(err, rc, "%s: expected a JSON object at the top level", file);
		goto out;
	}
	*out = j;
	j = NULL; /* transferred */
	if (doc_out) {
		*doc_out = d;
		d = NULL; /* transferred */
	}
out:
	json_decref(j);
	hcl_doc_free(d);
	return rc;
}

int hcl_parse_json(json_t **out, const char *src, size_t len, const char *filename,
	struct verr *err)
{
	return hcl_parse_any(out, NULL, src, len, filename, err);
}

/* ---- line lookups ---- */

const struct hcl_item *hcl_body_block(const struct hcl_body *b, const char *key, size_t n)
{
	if (!b)
		return NULL;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct hcl_item *it = &b->items[i];
		if (it->is_block && !strcmp(it->keys[0], key) && n-- == 0)
			return it;
	}
	return NULL;
}

const struct hcl_item *hcl_body_last(const struct hcl_body *b, const char *key)
{
	if (!b)
		return NULL;
	for (size_t i = b->nitems; i-- > 0;)
		if (!strcmp(b->items[i].keys[0], key))
			return &b->items[i];
	return NULL;
}

int hcl_doc_line(const struct hcl_doc *d, const char *key)
{
	const struct hcl_item *it = d ? hcl_body_last(&d->body, key) : NULL;
	return it ? it->line : 0;
}

int hcl_doc_block_line(const struct hcl_doc *d, const char *stanza, size_t n, const char *key)
{
	const struct hcl_item *it = d ? hcl_body_block(&d->body, stanza, n) : NULL;
	if (!it)
		return 0;
	if (key) {
		const struct hcl_item *k = hcl_body_last(&it->value.body, key);
		if (k)
			return k->line;
	}
	return it->line;
}
