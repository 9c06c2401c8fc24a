/*
 * fuzz_jsonr.c - differential libFuzzer target for the request-body reader
 * (src/util/jsonr.c) against jansson's json_loadb(JSON_DECODE_ANY), which
 * http/request.c falls back to and which words every error.
 *
 * The invariant that makes the pair accept and refuse exactly what jansson
 * alone did: whenever jsonr returns a tree, jansson accepts the same bytes
 * and its tree is json_equal and serialises to the same text (member order,
 * the sign of a zero, duplicate keys: the last value at the first key's
 * place). jsonr may decline what jansson accepts (its subset); that only
 * costs speed. The input is parsed from a private exact-size copy so ASan
 * sees any read past the end. Seeds: tests/fuzz/corpus/jsonr/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonr.h"

static char *dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	json_t *a = jsonr_parse(copy, size);
	if (a) {
		json_error_t e;
		json_t *b = json_loadb(copy, size, JSON_DECODE_ANY, &e);
		if (!b) {
			fprintf(stderr, "jsonr accepted what jansson refuses: %s\n", e.text);
			abort();
		}
		char *da = dump(a), *db = dump(b);
		if (!json_equal(a, b) || json_typeof(a) != json_typeof(b) || !da || !db ||
		    strcmp(da, db) != 0) {
			fprintf(stderr, "trees differ:\n jsonr   %s\n jansson %s\n", da ? da : "?",
				db ? db : "?");
			abort();
		}
		free(da);
		free(db);
		json_decref(b);
		json_decref(a);
	}
	free(copy);
	return 0;
}
