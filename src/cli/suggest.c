/*
 * suggest.c - "did you mean": Levenshtein distance between a mistyped
 * command and the known ones, so `coffer raed` suggests `read`.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

size_t cli_levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = malloc((lb + 1) * sizeof(*row));
	if (!row)
		abort();
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

const char *cli_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t limit = strlen(word) / 3;
	if (limit < 2)
		limit = 2;
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		size_t d = cli_levenshtein(word, cands[i]);
		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return bestd <= limit ? best : NULL;
}
