/*
 * common.c - helpers shared by physical backends (see physical.h).
 */
#include "physical/physical.h"

#include <stdlib.h>
#include <string.h>

void physical_list_free(char **keys, size_t n)
{
	if (!keys)
		return;
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

int physical__children(char **sorted_keys, size_t nkeys, const char *prefix, char ***out,
		       size_t *n)
{
	size_t plen = strlen(prefix), cap = 16, cnt = 0;
	char **res = malloc(cap * sizeof(*res));
	if (!res)
		return VERR_INTERNAL;
	for (size_t i = 0; i < nkeys; i++) {
		const char *k = sorted_keys[i];
		if (strncmp(k, prefix, plen) != 0)
			continue;
		const char *rest = k + plen;
		if (!*rest)
			continue;
		const char *slash = strchr(rest, '/');
		size_t len = slash ? (size_t)(slash - rest) + 1 : strlen(rest);
		if (cnt && strlen(res[cnt - 1]) == len && !memcmp(res[cnt - 1], rest, len))
			continue;
		if (cnt == cap) {
			cap *= 2;
			char **nr = realloc(res, cap * sizeof(*res));
			if (!nr)
				goto fail;
			res = nr;
		}
		res[cnt] = strndup(rest, len);
		if (!res[cnt])
			goto fail;
		cnt++;
	}
	*out = res;
	*n = cnt;
	return 0;
fail:
	physical_list_free(res, cnt);
	return VERR_INTERNAL;
}
