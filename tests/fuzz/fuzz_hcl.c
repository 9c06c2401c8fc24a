/*
 * fuzz_hcl.c - libFuzzer target for the HCL parser (src/util/hcl.c).
 *
 * Feeds arbitrary bytes to hcl_parse and, when they parse, checks the
 * invariants callers rely on: the JSON view exists, survives normalisation,
 * serialises, and hcl_parse_any agrees with hcl_parse; the line lookups walk
 * the whole tree without faults. Built only with -DCOFFER_FUZZ=ON.
 * The module libraries carry the coverage instrumentation in a
 * -DCOFFER_FUZZ=ON build (-fsanitize=fuzzer-no-link).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hcl.h"

static void walk_lines(const struct hcl_doc *d)
{
	for (size_t i = 0; i < d->body.nitems; i++) {
		const struct hcl_item *it = &d->body.items[i];
		if (it->line < 1 || it->col < 1 || it->nkeys < 1)
			abort();
		(void)hcl_doc_line(d, it->keys[0]);
		(void)hcl_doc_block_line(d, it->keys[0], 0, "path");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verr err = {0};
	struct hcl_doc *d = NULL;
	int rc = hcl_parse(&d, (const char *)data, size, "fuzz.hcl", &err);
	if (rc) {
		if (d || !err.msg[0] || strchr(err.msg, '\n'))
			abort(); /* errors must leave nothing behind and be one line */
		return 0;
	}
	walk_lines(d);
	json_t *j = hcl_to_json(d);
	if (!j)
		abort();
	if (hcl_json_normalize(j, &err))
		abort();
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		abort();
	free(s);

	/* the same text through hcl_parse_any must give the same value (unless
	 * it starts with '{', which it cannot: HCL items start with a key) */
	json_t *k = NULL;
	if (hcl_parse_any(&k, NULL, (const char *)data, size, "fuzz.hcl", &err) || !json_equal(j, k))
		abort();
	json_decref(k);
	json_decref(j);
	hcl_doc_free(d);
	return 0;
}
