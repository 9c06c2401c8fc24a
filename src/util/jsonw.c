/*
 * jsonw.c - the compact JSON writer (see jsonw.h for the contract).
 *
 * Mirrors jansson 2.x's dump.c for JSON_COMPACT without JSON_SORT_KEYS,
 * JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH: objects are walked with the
 * iterator API (insertion order, keys may hold NUL), strings are validated
 * as jansson's utf8_iterate does (no overlong forms, no surrogates, nothing
 * above U+10FFFF), and control characters use upper-case \u00XX.
 */
#include "util/jsonw.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && !defined(JSONW_NO_SIMD)
#include <emmintrin.h>
#endif

#define JSONW_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

void jsonw_init(struct jsonw *w, size_t hint)
{
	memset(w, 0, sizeof(*w));
	if (hint) {
		w->p = malloc(hint);
		if (w->p)
			w->cap = hint;
	}
}

void jsonw_free(struct jsonw *w)
{
	if (!w)
		return;
	free(w->p);
	memset(w, 0, sizeof(*w));
}

static bool reserve(struct jsonw *w, size_t n)
{
	if (w->failed)
		return false;
	if (w->len + n + 1 <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < w->len + n + 1) {
		if (cap > SIZE_MAX / 2) {
			w->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *np = realloc(w->p, cap);
	if (!np) {
		w->failed = true;
		return false;
	}
	w->p = np;
	w->cap = cap;
	return true;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

size_t jsonw_utf8_seq(const char *str, size_t left)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0; /* continuation byte, or an overlong 2-byte lead */
	if (c < 0xe0) {
		n = 2;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		n = 3;
		cp = c & 0x0f;
	} else if (c < 0xf5) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool jsonw_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			if (!s[i])
				return false; /* jansson refuses embedded NULs too */
			i++;
			continue;
		}
		size_t k = jsonw_utf8_seq(str + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

size_t jsonw_plain_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
#if defined(__SSE2__) && !defined(JSONW_NO_SIMD)
	/* sixteen bytes a step: a signed compare below 0x20 also catches the
	 * bytes >= 0x80 (negative as signed) */
	const __m128i lo = _mm_set1_epi8(0x20), qu = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i m = _mm_or_si128(_mm_cmplt_epi8(v, lo),
					 _mm_or_si128(_mm_cmpeq_epi8(v, qu), _mm_cmpeq_epi8(v, bs)));
		unsigned bits = (unsigned)_mm_movemask_epi8(m);
		if (bits)
			return i + (size_t)__builtin_ctz(bits);
	}
#endif
	/* eight bytes a step: a byte >= 0x80, < 0x20, '"' or '\\' sets its high
	 * bit in m (the subtractions can flag more bytes after a hit, never
	 * without one), and the byte loop below finds which */
	for (; i + 8 <= n; i += 8) {
		uint64_t v, q, b;
		memcpy(&v, s + i, 8);
		q = v ^ (ones * '"');
		b = v ^ (ones * '\\');
		uint64_t m = (v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
		if (m)
			break;
	}
	while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
		i++;
	return i;
}

void jsonw_string(struct jsonw *w, const char *str, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str;
	/* room for the string as it is; an escape reserves its own (one byte
	 * becomes at most six), so the buffer does not grow to 6n for strings
	 * that need none */
	if (n > (SIZE_MAX - 8) / 6) {
		w->failed = true;
		return;
	}
	if (!reserve(w, n + 2))
		return;
	size_t len = w->len;
	w->p[len++] = '"';
	size_t i = 0;
	while (i < n) {
		/* a run of bytes that need neither escaping nor checking */
		size_t j = i + jsonw_plain_len(str + i, n - i);
		memcpy(w->p + len, s + i, j - i);
		len += j - i;
		i = j;
		if (i >= n)
			break;
		w->len = len;
		if (!reserve(w, n - i + 6))
			return;
		char *o = w->p + len;
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t k = jsonw_utf8_seq(str + i, n - i);
			if (!k) {
				w->failed = true;
				return;
			}
			memcpy(o, s + i, k);
			len += k;
			i += k;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
			break;
		}
		len = (size_t)(o - w->p);
		i++;
	}
	w->p[len++] = '"';
	w->len = len;
}

static void put_int(struct jsonw *w, json_int_t v)
{
	char buf[24], *e = buf + sizeof(buf), *p = e;
	/* negate in unsigned arithmetic so INT64_MIN works */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	jsonw_raw(w, p, (size_t)(e - p));
}

static void put_real(struct jsonw *w, const json_t *v)
{
	/* rare on our paths: jansson formats it, so output stays identical */
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(w->real_prec));
	if (!s) {
		w->failed = true;
		return;
	}
	jsonw_raw(w, s, strlen(s));
	free(s);
}

static void put_value(struct jsonw *w, const json_t *v, int depth)
{
	if (w->failed)
		return;
	if (!v || depth > JSONW_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL: jsonw_raw(w, "null", 4); break;
	case JSON_TRUE: jsonw_raw(w, "true", 4); break;
	case JSON_FALSE: jsonw_raw(w, "false", 5); break;
	case JSON_INTEGER: put_int(w, json_integer_value(v)); break;
	case JSON_REAL: put_real(w, v); break;
	case JSON_STRING: jsonw_string(w, json_string_value(v), json_string_length(v)); break;
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		jsonw_raw(w, "[", 1);
		for (size_t i = 0; i < n; i++) {
			if (i)
				jsonw_raw(w, ",", 1);
			put_value(w, json_array_get(v, i), depth + 1);
		}
		jsonw_raw(w, "]", 1);
		break;
	}
	case JSON_OBJECT: {
		jsonw_raw(w, "{", 1);
		bool first = true;
		for (void *it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			if (!first)
				jsonw_raw(w, ",", 1);
			first = false;
			jsonw_string(w, json_object_iter_key(it), json_object_iter_key_len(it));
			jsonw_raw(w, ":", 1);
			put_value(w, json_object_iter_value(it), depth + 1);
		}
		jsonw_raw(w, "}", 1);
		break;
	}
	default: w->failed = true; break;
	}
}

void jsonw_value(struct jsonw *w, const json_t *v)
{
	put_value(w, v, 1);
}

char *jsonw_take(struct jsonw *w, size_t *len)
{
	if (w->failed || !reserve(w, 0)) {
		jsonw_free(w);
		return NULL;
	}
	char *s = w->p;
	s[w->len] = '\0';
	if (len)
		*len = w->len;
	int prec = w->real_prec;
	memset(w, 0, sizeof(*w));
	w->real_prec = prec;
	return s;
}

char *jsonw_dumps(const json_t *v, int real_prec, size_t *len)
{
	struct jsonw w;
	jsonw_init(&w, 512);
	w.real_prec = real_prec;
	jsonw_value(&w, v);
	return jsonw_take(&w, len);
}
