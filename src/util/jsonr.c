/*
 * jsonr.c - the fast strict JSON reader (jsonr.h): a recursive descent over
 * the buffer that gives up (NULL) on anything outside its subset so that
 * jansson parses and judges those bodies itself.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonr.h"
#include "util/jsonw.h"

#define JSONR_MAX_DEPTH 64

struct rd {
	const char *p, *end;
	int depth;
};

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A \u escape at p (after the backslash and the 'u'), with its low
 * surrogate if it is a high one, as UTF-8 into o; the bytes consumed, or 0
 * for what jansson refuses (a bad hex digit, a lone surrogate, \u0000:
 * NUL is not allowed without JSON_ALLOW_NUL). */
static size_t read_u(const char *p, const char *end, char *o, size_t *olen)
{
	uint32_t cp, lo;
	size_t used = 4;
	if (end - p < 4 || hex4(p, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (end - p < 10 || p[4] != '\\' || p[5] != 'u' || hex4(p + 6, &lo) || lo < 0xdc00 ||
		    lo > 0xdfff)
			return 0;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		used = 10;
	}
	unsigned char *u = (unsigned char *)o;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		*olen = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		*olen = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		*olen = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		*olen = 4;
	}
	return used;
}

/* Past the bytes a string holds as they are (plain runs and valid UTF-8
 * sequences) from p: the first quote, backslash or refused byte (a control
 * character, invalid UTF-8), or end. */
static const char *scan_str(const char *p, const char *end)
{
	for (;;) {
		p += jsonw_plain_len(p, (size_t)(end - p));
		if (p >= end || (unsigned char)*p < 0x80)
			return p;
		size_t k = jsonw_utf8_seq(p, (size_t)(end - p));
		if (!k)
			return p;
		p += k;
	}
}

/* A string at r->p (the opening quote). *out points into the input for a
 * string without escapes (*own NULL), or to a malloc'd decoded copy (*own,
 * NUL-terminated). Either way it is valid UTF-8 without NUL, as jansson
 * requires, so the caller may use the _nocheck constructors. */
static int read_str(struct rd *r, const char **out, size_t *len, char **own)
{
	const char *s = r->p + 1, *p = scan_str(s, r->end);
	*own = NULL;
	if (p < r->end && *p == '"') {
		*out = s;
		*len = (size_t)(p - s);
		r->p = p + 1;
		return 0;
	}
	if (p >= r->end || *p != '\\')
		return -1; /* jansson decides (control characters, bad UTF-8) */
	/* escapes: decode into a copy (an escape never decodes longer than
	 * it is written) */
	char *b = malloc((size_t)(r->end - s) + 1);
	if (!b)
		return -1;
	size_t n = (size_t)(p - s);
	memcpy(b, s, n);
	while (p < r->end) {
		if (*p == '"') {
			b[n] = 0;
			*out = b;
			*len = n;
			*own = b;
			r->p = p + 1;
			return 0;
		}
		if (*p != '\\' || ++p >= r->end)
			break;
		switch (*p++) {
		case '"': b[n++] = '"'; break;
		case '\\': b[n++] = '\\'; break;
		case '/': b[n++] = '/'; break;
		case 'b': b[n++] = '\b'; break;
		case 'f': b[n++] = '\f'; break;
		case 'n': b[n++] = '\n'; break;
		case 'r': b[n++] = '\r'; break;
		case 't': b[n++] = '\t'; break;
		case 'u': {
			size_t olen, used = read_u(p, r->end, b + n, &olen);
			if (!used)
				goto out;
			p += used;
			n += olen;
			break;
		}
		default: goto out; /* bad escapes: jansson */
		}
		const char *q = scan_str(p, r->end);
		memcpy(b + n, p, (size_t)(q - p));
		n += (size_t)(q - p);
		p = q;
	}
out:
	free(b);
	return -1;
}

static json_t *read_value(struct rd *r);

static json_t *read_object(struct rd *r)
{
	json_t *o = json_object();
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return o;
	}
	while (o) {
		const char *k;
		size_t kl;
		char *own;
		skip_ws(r);
		if (r->p >= r->end || *r->p != '"' || read_str(r, &k, &kl, &own))
			break;
		skip_ws(r);
		json_t *v = NULL;
		if (r->p < r->end && *r->p == ':') {
			r->p++;
			v = read_value(r);
		}
		/* keys are valid UTF-8 without NUL (read_str), as jansson
		 * requires; the _new_ form takes v over (and frees it on
		 * failure) */
		int bad = !v || json_object_setn_new_nocheck(o, k, kl, v);
		free(own);
		if (bad)
			break;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return o;
		}
		break;
	}
	json_decref(o);
	return NULL;
}

static json_t *read_array(struct rd *r)
{
	json_t *a = json_array();
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return a;
	}
	while (a) {
		json_t *v = read_value(r);
		if (!v || json_array_append_new(a, v))
			break;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return a;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

static bool is_digit(const struct rd *r)
{
	return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static void skip_digits(struct rd *r)
{
	while (is_digit(r))
		r->p++;
}

/* A number, by jansson's grammar (lex_scan_number): an integer of up to 19
 * digits within int64 exactly (stored nanosecond times have 19); a real
 * through strtod as jansson's jsonp_strtod does (overflow refused,
 * underflow accepted). Integers out of int64 (jansson refuses them as too
 * big), longer ones and reals of more than 63 characters: NULL, and
 * jansson decides. */
static json_t *read_number(struct rd *r)
{
	const char *s = r->p;
	bool neg = *r->p == '-';
	if (neg)
		r->p++;
	if (!is_digit(r))
		return NULL;
	if (*r->p == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
		return NULL; /* leading zero: invalid, jansson says so */
	const char *d = r->p;
	skip_digits(r);
	bool real = false;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!is_digit(r))
			return NULL;
		skip_digits(r);
		real = true;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!is_digit(r))
			return NULL;
		skip_digits(r);
		real = true;
	}
	if (!real) {
		if (r->p - d > 19)
			return NULL; /* out of range: jansson words it */
		uint64_t v = 0; /* 19 digits fit in 64 bits unsigned */
		for (; d < r->p; d++)
			v = v * 10 + (uint64_t)(*d - '0');
		if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
			return NULL; /* jansson: too big (negative) integer */
		if (neg && v == (uint64_t)INT64_MAX + 1u)
			return json_integer(INT64_MIN);
		return json_integer(neg ? -(json_int_t)v : (json_int_t)v);
	}
	char buf[64];
	size_t n = (size_t)(r->p - s);
	const struct lconv *lc = localeconv();
	if (n >= sizeof(buf) || !lc->decimal_point || strcmp(lc->decimal_point, "."))
		return NULL;
	memcpy(buf, s, n);
	buf[n] = 0;
	errno = 0;
	double x = strtod(buf, NULL);
	if ((x == HUGE_VAL || x == -HUGE_VAL) && errno == ERANGE)
		return NULL; /* jansson: real number overflow */
	return json_real(x);
}

static json_t *read_word(struct rd *r, const char *w, size_t n, json_t *v)
{
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n)) {
		json_decref(v);
		return NULL;
	}
	r->p += n;
	return v;
}

static json_t *read_value(struct rd *r)
{
	skip_ws(r);
	if (r->p >= r->end)
		return NULL;
	json_t *v = NULL;
	switch (*r->p) {
	case '{':
	case '[':
		if (++r->depth > JSONR_MAX_DEPTH)
			return NULL;
		v = *r->p == '{' ? read_object(r) : read_array(r);
		r->depth--;
		return v;
	case '"': {
		const char *s;
		size_t l;
		char *own;
		if (read_str(r, &s, &l, &own))
			return NULL;
		v = json_stringn_nocheck(s, l); /* read_str: valid UTF-8, no NUL */
		free(own);
		return v;
	}
	case 't': return read_word(r, "true", 4, json_true());
	case 'f': return read_word(r, "false", 5, json_false());
	case 'n': return read_word(r, "null", 4, json_null());
	default: return read_number(r);
	}
}

json_t *jsonr_parse(const char *s, size_t n)
{
	struct rd r = {.p = s, .end = s + n};
	json_t *v = read_value(&r);
	skip_ws(&r);
	if (v && r.p != r.end) {
		json_decref(v);
		return NULL;
	}
	return v;
}
