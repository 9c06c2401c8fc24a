/*
 * fuzz_policy.c - libFuzzer target for the ACL policy engine
 * (src/core/policy.c).
 *
 * Input: JSON text. It is parsed as a policy; if that succeeds, an ACL is
 * compiled from it (twice, to exercise merging of repeated patterns) and
 * checked against paths derived from the policy's own patterns (with their
 * wildcards filled in, trimmed, extended) and from the input bytes. Request
 * data is the value of the top-level "name" key when that is an object
 * (policy_parse ignores "name"), else the whole input. Invariants asserted: no crash, no leak, a
 * deny-only answer never allows, capabilities lists are non-empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"

static const enum logical_op ops[] = {LOP_READ, LOP_CREATE, LOP_UPDATE, LOP_PATCH,
				      LOP_DELETE, LOP_LIST, LOP_HELP, LOP_RENEW};

static void check_path(const struct acl *a, const char *path, const json_t *data)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct acl_result r;
		if (acl_check(a, ops[i], path, data, &r) != 0)
			abort();
		if (r.allowed && (r.capabilities & POLICY_CAP_DENY))
			abort();
		if (acl_check_wrapped(a, ops[i], path, data, 30, &r) != 0)
			abort();
	}
	json_t *caps = NULL;
	if (acl_capabilities(a, path, &caps, NULL) != 0 || json_array_size(caps) == 0)
		abort();
	json_decref(caps);
}

/* Variants of a pattern: '+' filled with "x", '*' dropped or expanded. */
static void check_pattern(const struct acl *a, const char *pat, const json_t *data)
{
	char buf[512];
	size_t n = strlen(pat);
	if (n > 200)
		n = 200;
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		buf[w++] = pat[i] == '+' ? 'x' : pat[i];
	buf[w] = '\0';
	if (w && buf[w - 1] == '*')
		buf[--w] = '\0';
	check_path(a, buf, data);
	snprintf(buf + w, sizeof(buf) - w, "/more/segments");
	check_path(a, buf, data);
	buf[w] = '\0';
	if (w) {
		buf[w - 1] = '\0';
		check_path(a, buf, data);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!root)
		return 0;
	struct policy *p = NULL;
	if (policy_parse(&p, "fuzz", root, NULL) == 0) {
		const json_t *req = json_object_get(root, "name");
		if (!json_is_object(req))
			req = root;
		struct policy *ps[] = {p, p};
		struct acl *a = NULL;
		if (acl_new(&a, ps, 2, NULL) == 0) {
			const json_t *paths = json_object_get(root, "path");
			const char *key;
			const json_t *val;
			if (json_is_object(paths)) {
				json_object_foreach((json_t *)paths, key, val)
					check_pattern(a, key, req);
			} else if (json_is_array(paths)) {
				size_t i;
				const json_t *el;
				json_array_foreach((json_t *)paths, i, el)
				{
					json_object_foreach((json_t *)el, key, val)
						check_pattern(a, key, req);
				}
			}
			/* a path made of the raw input bytes */
			char raw[256];
			size_t n = size < sizeof(raw) - 1 ? size : sizeof(raw) - 1;
			memcpy(raw, data, n);
			raw[n] = '\0';
			check_path(a, raw, req);
			check_path(a, "", NULL);
			acl_free(a);
		}
		policy_free(p);
	}
	json_decref(root);
	return 0;
}
