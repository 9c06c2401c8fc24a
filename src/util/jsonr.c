/*
 * jsonr.c - the fast strict JSON reader (jsonr.h): a recursive descent over
 * the buffer that gives up (NULL) on anything outside its subset so that
 * jansson parses and judges those bodies itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonr.h"

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

/* A string at r->p (the opening quote). *out malloc'd (NUL-terminated) or
 * pointing into the input (*own false) for a run without escapes. */
static int read_str(struct rd *r, const char **out, size_t *len, char **own)
{
	const char *s = ++r->p;
	*own = NULL;
	while (r->p < r->end) {
		unsigned char c = (unsigned char)*r->p;
		if (c == '"') {
			*out = s;
			*len = (size_t)(r->p - s);
			r->p++;
			return 0;
		}
		if (c == '\\')
			break;
		if (c < 0x20 || c >= 0x80)
			return -1; /* jansson decides (UTF-8, control characters) */
		r->p++;
	}
	if (r->p >= r->end)
		return -1;
	/* escapes: decode into a copy */
	size_t cap = (size_t)(r->end - s);
	char *b = malloc(cap + 1);
	if (!b)
		return -1;
	size_t n = (size_t)(r->p - s);
	memcpy(b, s, n);
	while (r->p < r->end) {
		unsigned char c = (unsigned char)*r->p++;
		if (c == '"') {
			b[n] = 0;
			*out = b;
			*len = n;
			*own = b;
			return 0;
		}
		if (c < 0x20 || c >= 0x80)
			break;
		if (c != '\\') {
			b[n++] = (char)c;
			continue;
		}
		if (r->p >= r->end)
			break;
		switch (*r->p++) {
		case '"': b[n++] = '"'; break;
		case '\\': b[n++] = '\\'; break;
		case '/': b[n++] = '/'; break;
		case 'b': b[n++] = '\b'; break;
		case 'f': b[n++] = '\f'; break;
		case 'n': b[n++] = '\n'; break;
		case 'r': b[n++] = '\r'; break;
		case 't': b[n++] = '\t'; break;
		default: free(b); return -1; /* \u and bad escapes: jansson */
		}
	}
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
		/* keys are ASCII without NUL here, as jansson requires; the
		 * _new_ form takes v over (and frees it on failure) */
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

static json_t *read_int(struct rd *r)
{
	const char *s = r->p;
	bool neg = *r->p == '-';
	if (neg)
		r->p++;
	if (r->p >= r->end || *r->p < '0' || *r->p > '9')
		return NULL;
	if (*r->p == '0' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
		return NULL; /* leading zero: invalid, jansson says so */
	uint64_t v = 0;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (r->p - s > 18)
			return NULL; /* maybe out of range: jansson */
		v = v * 10 + (uint64_t)(*r->p++ - '0');
	}
	if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
		return NULL; /* reals: jansson */
	return json_integer(neg ? -(json_int_t)v : (json_int_t)v);
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
		v = json_stringn_nocheck(s, l); /* ASCII, no NUL: valid UTF-8 */
		free(own);
		return v;
	}
	case 't': return read_word(r, "true", 4, json_true());
	case 'f': return read_word(r, "false", 5, json_false());
	case 'n': return read_word(r, "null", 4, json_null());
	default: return read_int(r);
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
