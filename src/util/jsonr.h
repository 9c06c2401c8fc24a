/*
 * jsonr.h - a fast strict JSON reader for the common request body, building
 * the same jansson tree json_loadb(JSON_DECODE_ANY) would.
 *
 * It handles objects, arrays, strings (valid UTF-8; the escapes \" \\ \/ \b
 * \f \n \r \t and \uXXXX with surrogate pairs), integers of up to 18
 * digits, reals (strtod, as jansson), true, false and null. For anything
 * else - invalid JSON, \u0000 (jansson refuses NUL), lone surrogates,
 * longer integers, real overflow, nesting deeper than 64 - it returns NULL
 * without an error and the caller parses with jansson, which then decides
 * (and words the error). So it never accepts what jansson rejects, and
 * where it succeeds the tree is json_equal to jansson's (duplicate keys:
 * the last wins, as in jansson); tests/fuzz/fuzz_jsonr.c checks both
 * against jansson. jansson reads a byte at a time through a callback
 * (about 140 instructions a byte); this scans strings eight bytes at a
 * time (jsonw_plain_len).
 *
 * Thread-safe, no state. The caller owns the returned tree.
 */
#ifndef COFFER_UTIL_JSONR_H
#define COFFER_UTIL_JSONR_H

#include <jansson.h>
#include <stddef.h>

json_t *jsonr_parse(const char *s, size_t n);

#endif
