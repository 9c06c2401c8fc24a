/*
 * policylist.c - Vault's policy-list sanitizer (policylist.h).
 */
#include "util/policylist.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *policylist_sanitize(const json_t *in, bool add_default)
{
	if (!json_is_array(in))
		return NULL;
	size_t n = json_array_size(in), k = 0;
	char **v = calloc(n + 1, sizeof(*v));
	json_t *out = json_array();
	bool has_root = false, has_default = false;
	if (!v || !out)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(in, i));
		if (!s)
			continue;
		while (isspace((unsigned char)*s))
			s++;
		size_t l = strlen(s);
		while (l && isspace((unsigned char)s[l - 1]))
			l--;
		if (!l)
			continue;
		char *c = strndup(s, l);
		if (!c)
			goto fail;
		for (char *p = c; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		has_root |= !strcmp(c, "root");
		has_default |= !strcmp(c, "default");
		v[k++] = c;
	}
	if (has_root) {
		if (json_array_append_new(out, json_string("root")))
			goto fail;
		goto done;
	}
	if (add_default && !has_default) {
		if (!(v[k] = strdup("default")))
			goto fail;
		k++;
	}
	qsort(v, k, sizeof(*v), cmp_str);
	for (size_t i = 0; i < k; i++)
		if ((i == 0 || strcmp(v[i], v[i - 1])) &&
		    json_array_append_new(out, json_string(v[i])))
			goto fail;
done:
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(v);
	return out;
fail:
	if (v)
		for (size_t i = 0; i < k; i++)
			free(v[i]);
	free(v);
	json_decref(out);
	return NULL;
}
