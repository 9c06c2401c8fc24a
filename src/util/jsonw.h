/*
 * jsonw.h - a fast compact JSON writer for jansson values, for the hot
 * paths that serialise every request (the HTTP envelope, audit lines).
 *
 * Output is byte-for-byte what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY
 * | JSON_REAL_PRECISION(p)) writes: object members in jansson's order,
 * the same escapes (\" \\ \b \f \n \r \t, other control characters as
 * \u00XX), UTF-8 passed through, and the same error on invalid UTF-8 or a
 * nesting deeper than 2048. It is about five times cheaper, because it
 * appends to one growing buffer instead of calling back per token and
 * scans strings a run at a time. Reals (rare) are formatted by jansson.
 *
 * A struct jsonw is a buffer the caller owns (stack or embedded); not
 * thread-safe, no global state. Once an append fails (out of memory,
 * invalid input) the writer is marked failed and later appends do nothing.
 */
#ifndef COFFER_UTIL_JSONW_H
#define COFFER_UTIL_JSONW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct jsonw {
	char *p;
	size_t len, cap;
	bool failed;
	int real_prec; /* JSON_REAL_PRECISION for reals; 0: jansson's default (17) */
};

/* An empty writer with room for `hint` bytes (0: allocate on first use). */
void jsonw_init(struct jsonw *w, size_t hint);
/* Free the buffer (NULL-safe on an initialised writer). */
void jsonw_free(struct jsonw *w);

/* Append bytes as they are. */
void jsonw_raw(struct jsonw *w, const char *s, size_t n);
/* Append a quoted, escaped JSON string of n bytes (UTF-8). */
void jsonw_string(struct jsonw *w, const char *s, size_t n);
/* Append v in compact form (see above). */
void jsonw_value(struct jsonw *w, const json_t *v);
/* true if s[0..n) is UTF-8 that jansson's json_stringn would accept (the
 * same check jsonw_string applies) */
bool jsonw_utf8_valid(const char *s, size_t n);
/* Length (1..4) of the valid UTF-8 sequence at s[0..left) by jansson's
 * rules (no overlong forms, no surrogates, nothing above U+10FFFF), 0 if
 * invalid; left >= 1. */
size_t jsonw_utf8_seq(const char *s, size_t left);
/* Length of the leading run of s[0..n) that a JSON string holds as it is:
 * bytes 0x20..0x7f except '"' and '\\' (what jsonw_string copies without
 * escaping, and util/jsonr takes without decoding). Word at a time. */
size_t jsonw_plain_len(const char *s, size_t n);

/* The NUL-terminated text (malloc'd, caller frees) and its length without
 * the NUL; NULL if any append failed. The writer is then empty again. */
char *jsonw_take(struct jsonw *w, size_t *len);

/* One call: v in compact form, malloc'd, or NULL (see json_dumps). */
char *jsonw_dumps(const json_t *v, int real_prec, size_t *len);

#endif
