/*
 * hcl.h - Coffer's HCL (version 1) parser: configuration files and ACL
 * policies. The accepted language is /work/shared/HCL.md (docs copy in
 * docs/configuration.md); this header is the contract for everyone who reads
 * HCL or Vault-style JSON.
 *
 * Two outputs:
 *
 * 1. The document tree (struct hcl_doc): the ordered list of items exactly as
 *    written, with line and column of every item and value, so callers can
 *    cite "file:line" in their own errors. Repeated keys stay separate items.
 *
 * 2. A JSON view (jansson json_t) in the shapes Vault's JSON configuration
 *    and JSON policies use. Conversion rules (hcl_to_json):
 *
 *      k = v                    "k": v     (a later assignment of k wins)
 *      k = { body }             "k": {body as JSON}
 *      a { body }               "a": [ {body} ]
 *      a "b" { body }           "a": [ {"b": {body}} ]
 *      a "b" "c" { body }       "a": [ {"b": {"c": {body}}} ]
 *
 *    A block key maps to an ARRAY of its occurrences in source order, so
 *    repeated `path "x" {}` or `listener "tcp" {}` blocks are all kept; a
 *    block appended after an assignment of the same key replaces it (and an
 *    assignment after blocks replaces the array). Values: strings and heredocs
 *    -> JSON strings (UTF-8, never containing NUL), integers -> JSON integers
 *    (int64), floats -> JSON reals, true/false -> JSON booleans, lists -> JSON
 *    arrays (elements converted by the same rules).
 *
 *    hcl_parse_json() additionally NORMALISES the top level so a hand-written
 *    JSON document and an HCL document give the same value: every top-level
 *    key whose value is a JSON object becomes a one-element array holding
 *    that object. So {"path": {"a/+": {...}}}, {"path": [{"a/+": {...}}]} and
 *    `path "a/+" {...}` all become {"path": [{"a/+": {...}}]}, and
 *    {"telemetry": {...}} equals `telemetry {...}`. Consumers of a labelled
 *    block must iterate EVERY key of each occurrence object: JSON may carry
 *    several labels in one occurrence ({"path": {"a": {}, "b": {}}}), HCL
 *    always carries exactly one. Only the top level is normalised: nested
 *    values (allowed_parameters = {...}, a listener's telemetry block) keep
 *    the shape they were written in, so consumers of nested blocks accept
 *    both an object and an array of objects.
 *
 * Lexical details beyond HCL.md that callers may notice: integers with a
 * leading 0 are octal (0755 == 493) as in HCL1; input must be UTF-8 without
 * NUL bytes; \u escapes may not name a surrogate or NUL; `<<-ID` heredocs
 * strip the longest whitespace prefix common to all non-blank lines.
 *
 * Limits: HCL_MAX_INPUT bytes of input, HCL_MAX_DEPTH nested objects/lists.
 * Errors (VERR_INVALID, or VERR_TOO_LARGE for oversized input) read
 * "FILE:LINE:COL: what was expected, what was found" and never quote more
 * than a short excerpt of the input.
 *
 * Thread-safety: no global state; a document is immutable after parsing and
 * may be read from several threads.
 */
#ifndef COFFER_UTIL_HCL_H
#define COFFER_UTIL_HCL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/verr.h"

#define HCL_MAX_INPUT (4u * 1024 * 1024)
#define HCL_MAX_DEPTH 64

enum hcl_type {
	HCL_STRING, /* "..." or heredoc (see hcl_value.heredoc) */
	HCL_INT,
	HCL_FLOAT,
	HCL_BOOL,
	HCL_LIST,
	HCL_OBJECT, /* { body } */
};

struct hcl_item;

/* An ordered list of items: a file, a block body or an object value. */
struct hcl_body {
	struct hcl_item *items;
	size_t nitems;
	size_t cap; /* internal */
};

struct hcl_value {
	enum hcl_type type;
	int line, col;
	/* HCL_STRING: NUL-terminated UTF-8, len bytes (no embedded NUL) */
	char *str;
	size_t len;
	int heredoc; /* 1 if written as a heredoc */
	int64_t i;   /* HCL_INT */
	double f;    /* HCL_FLOAT */
	int b;       /* HCL_BOOL: 0 or 1 */
	/* HCL_LIST */
	struct hcl_value *elems;
	size_t nelems;
	size_t cap; /* internal */
	/* HCL_OBJECT */
	struct hcl_body body;
};

/* `keys[0] = value` (is_block 0, nkeys == 1) or
 * `keys[0] "keys[1]" ... { body }` (is_block 1, value.type == HCL_OBJECT). */
struct hcl_item {
	char **keys;
	size_t nkeys;
	int is_block;
	struct hcl_value value;
	int line, col; /* of keys[0] */
};

struct hcl_doc {
	char *filename;
	struct hcl_body body;
};

/* Parse HCL text. src need not be NUL-terminated; filename (may be NULL,
 * then "<input>") is only used in messages and copied. On success the
 * caller owns *out (free with hcl_doc_free); on error *out is NULL. */
int hcl_parse(struct hcl_doc **out, const char *src, size_t len, const char *filename,
	struct verr *err);
void hcl_doc_free(struct hcl_doc *d);

/* The JSON view of a document or body (rules above, not normalised).
 * Returns a new reference, or NULL on allocation failure. */
json_t *hcl_to_json(const struct hcl_doc *d);
json_t *hcl_body_to_json(const struct hcl_body *b);

/* Normalise a top-level JSON object in place (rules above). VERR_INVALID if
 * doc is not an object. */
int hcl_json_normalize(json_t *doc, struct verr *err);

/* Parse HCL or JSON text into the normalised JSON view. Text whose first
 * non-whitespace byte is '{' is JSON (parsed by jansson; it must be an
 * object); anything else is HCL. If doc_out is non-NULL and the text was
 * HCL, *doc_out receives the document tree for line lookups (caller frees);
 * for JSON *doc_out is NULL. */
int hcl_parse_any(json_t **out, struct hcl_doc **doc_out, const char *src, size_t len,
	const char *filename, struct verr *err);
/* Same, without the tree. */
int hcl_parse_json(json_t **out, const char *src, size_t len, const char *filename,
	struct verr *err);

/* Line lookups for callers' error messages (0 when not found; d may be
 * NULL). In a body: the n-th (0-based) block item whose first key is key, in
 * source order -- the item behind element n of the JSON array for key. */
const struct hcl_item *hcl_body_block(const struct hcl_body *b, const char *key, size_t n);
/* The last item (block or assignment) whose first key is key: the one whose
 * value an assignment lookup sees in the JSON view. */
const struct hcl_item *hcl_body_last(const struct hcl_body *b, const char *key);
/* Line of the last top-level item named key. */
int hcl_doc_line(const struct hcl_doc *d, const char *key);
/* Line of the n-th top-level block named stanza (key == NULL), or of the
 * last item named key inside that block's body (falls back to the block's
 * own line when key is not found there). */
int hcl_doc_block_line(const struct hcl_doc *d, const char *stanza, size_t n, const char *key);

#endif
