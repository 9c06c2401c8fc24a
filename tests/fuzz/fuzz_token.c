/*
 * fuzz_token.c - libFuzzer target for the token store's lookup path
 * (src/core/token_store.c): arbitrary bytes presented as a token, an
 * accessor and a hash must never crash and never resolve to a token,
 * unless they are exactly one of the tokens issued at start-up.
 *
 * Build: cmake -DCOFFER_FUZZ=ON -DCOFFER_SANITIZE=ON -DCMAKE_C_COMPILER=clang
 * Run:   ./fuzz_token -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/token.h"

static struct token_store *ts;
static char *issued[3];
static char accessors[3][32];

static void init(void)
{
	static struct physical *phys;
	static struct storage_view view;
	struct verr err = {0};
	if (physical_inmem_new(&phys, NULL, &err))
		abort();
	storage_view_init(&view, phys, "sys/token/");
	struct token_store_opts o = {.cache_size = 64};
	if (token_store_new(&ts, &view, &o, &err))
		abort();
	struct token_entry *te = NULL;
	if (token_store_root(ts, &issued[0], &err))
		abort();
	/* the root token's accessor resolves too (a run found it through the
	 * storage key comparison: tests/fuzz/regressions/token/) */
	if (token_store_lookup(ts, issued[0], &te, &err))
		abort();
	snprintf(accessors[0], sizeof(accessors[0]), "%s", te->accessor);
	token_entry_free(te);
	te = NULL;
	struct token_params p = {.ttl = 3600, .renewable = true};
	if (token_store_issue(ts, &p, &issued[1], &te, &err))
		abort();
	snprintf(accessors[1], sizeof(accessors[1]), "%s", te->accessor);
	struct token_params c = {.ttl = 3600, .parent = te, .num_uses = 0};
	struct token_entry *child = NULL;
	if (token_store_issue(ts, &c, &issued[2], &child, &err))
		abort();
	snprintf(accessors[2], sizeof(accessors[2]), "%s", child->accessor);
	token_entry_free(te);
	token_entry_free(child);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ts)
		init();
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct verr err;
	struct token_entry *te = NULL;

	bool known = false;
	for (int i = 0; i < 3; i++)
		known |= !strcmp(s, issued[i]);
	int rc = token_store_lookup(ts, s, &te, &err);
	if (rc == 0 && !known)
		abort(); /* resolved something that is not a token */
	if (rc != 0 && te)
		abort();
	token_entry_free(te);
	te = NULL;

	known = !strcmp(s, accessors[0]) || !strcmp(s, accessors[1]) || !strcmp(s, accessors[2]);
	rc = token_store_lookup_accessor(ts, s, &te, &err);
	if (rc == 0 && !known)
		abort();
	token_entry_free(te);
	te = NULL;

	rc = token_store_lookup_hash(ts, s, &te, &err);
	if (rc == 0 && (!te || strcmp(te->hash, s)))
		abort();
	token_entry_free(te);
	free(s);
	return 0;
}
