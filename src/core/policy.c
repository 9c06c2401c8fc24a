/*
 * policy.c - ACL policies: parsing the JSON form of a policy and compiling a
 * token's policies into an ACL that answers "may this request proceed?".
 *
 * DESIGN
 * A policy is a list of path rules exactly as written. acl_new merges rules
 * with the same pattern (from any of the token's policies: capabilities are
 * OR-ed, deny wins, parameter lists are combined as Vault combines them) into
 * one entry per pattern, and sorts the entries into three lookup structures,
 * mirroring how Vault classifies a pattern:
 *   - exact patterns ("secret/foo"): an open-addressing hash table;
 *   - prefix patterns (ending in a star, like "secret/zip-" + star): a second hash table of
 *     the prefixes plus the list of distinct prefix lengths, longest first,
 *     so the longest matching prefix is found with one probe per length;
 *   - segment-wildcard patterns (a "+" segment, optionally ending in "*"):
 *     a flat list, each pre-split into segments, matched by walking the path.
 * A check takes the exact rule if there is one (for LIST also the path
 * without its trailing '/', as Vault does); otherwise every candidate (the
 * longest prefix rule and each matching segment rule) is ranked by Vault's
 * priority order and the single best rule decides. No allocation happens on
 * the check path.
 *
 * Invariants: a built policy or ACL is never modified, so any number of
 * threads may read it; lifetime is a reference count (atomic).
 */
#include "core/policy.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

/* ---------------------------------------------------------------------- */
/* Internal types                                                          */

struct param {
	char *name;     /* lower-case; "*" is the wildcard key */
	json_t *values; /* array; empty = any value */
};

struct param_set {
	struct param *v;
	size_t n;
	bool has_star; /* a "*" key is present */
};

struct perm {
	uint32_t caps;
	int64_t min_wrap, max_wrap; /* seconds, 0 = unset */
	struct param_set allowed, denied;
	char **required; /* lower-case names */
	size_t nrequired;
};

struct rule {
	char *pattern; /* as written, leading '/' removed, trailing '*' kept */
	bool templated;
	struct perm perm;
};

struct policy {
	atomic_int refs;
	char *name;
	bool is_root;
	struct rule *rules;
	size_t nrules;
};

enum match_kind { MK_EXACT, MK_PREFIX, MK_SEGMENT };

struct seg {
	const char *s; /* points into the entry's key */
	size_t len;
	bool plus;
};

struct acl_entry {
	char *pattern; /* merge key: the pattern as written */
	char *key;     /* exact: the path; prefix/segment: pattern minus trailing '*' */
	size_t keylen;
	enum match_kind kind;
	bool is_prefix;
	size_t first_wc; /* offset of the first '+' (segment) or of the '*' (prefix) */
	int wildcards;   /* number of "+" segments */
	struct seg *segs;
	size_t nsegs;
	struct perm perm;
};

struct acl {
	atomic_int refs;
	bool root;
	struct acl_entry *entries;
	size_t n;
	uint32_t *exact_tab; /* slot = entry index + 1, 0 = empty */
	size_t exact_cap;    /* power of two, or 0 */
	uint32_t *prefix_tab;
	size_t prefix_cap;
	size_t *prefix_lens; /* distinct, descending */
	size_t nprefix_lens;
	uint32_t *seg_idx; /* entry indices of segment rules */
	size_t nseg;
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */

static char *xstrndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void ascii_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t pow2_at_least(size_t n)
{
	size_t c = 8;
	while (c < n)
		c <<= 1;
	return c;
}

/* ---------------------------------------------------------------------- */
/* Capabilities                                                            */

static const struct {
	const char *name;
	uint32_t bit;
} cap_names[] = {
	/* sorted by name: policy_caps_to_json relies on it */
	{"create", POLICY_CAP_CREATE}, {"delete", POLICY_CAP_DELETE},
	{"deny", POLICY_CAP_DENY},     {"list", POLICY_CAP_LIST},
	{"patch", POLICY_CAP_PATCH},   {"read", POLICY_CAP_READ},
	{"subscribe", POLICY_CAP_SUBSCRIBE}, {"sudo", POLICY_CAP_SUDO},
	{"update", POLICY_CAP_UPDATE},
};

static uint32_t cap_from_name(const char *s)
{
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (strcmp(cap_names[i].name, s) == 0)
			return cap_names[i].bit;
	return 0;
}

json_t *policy_caps_to_json(uint32_t caps)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	if (caps == 0 || (caps & POLICY_CAP_DENY)) {
		json_array_append_new(arr, json_string("deny"));
		return arr;
	}
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (caps & cap_names[i].bit)
			json_array_append_new(arr, json_string(cap_names[i].name));
	return arr;
}

/* ---------------------------------------------------------------------- */
/* Permissions: free, copy, merge                                          */

static void param_set_free(struct param_set *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].name);
		json_decref(ps->v[i].values);
	}
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}

static void perm_free(struct perm *p)
{
	param_set_free(&p->allowed);
	param_set_free(&p->denied);
	for (size_t i = 0; i < p->nrequired; i++)
		free(p->required[i]);
	free(p->required);
	memset(p, 0, sizeof(*p));
}

static struct param *param_find(const struct param_set *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->v[i].name, name) == 0)
			return &ps->v[i];
	return NULL;
}

/*
 * Add (name, values) to a set. If the name is already there, combine as
 * Vault does: an empty list (any value) absorbs the other, otherwise the
 * value lists are concatenated. `values` is copied.
 */
static int param_set_add(struct param_set *ps, const char *name, const json_t *values)
{
	struct param *p = param_find(ps, name);
	if (p) {
		if (json_array_size(values) == 0 || json_array_size(p->values) == 0) {
			json_array_clear(p->values);
			return 0;
		}
		json_t *copy = json_deep_copy(values);
		if (!copy || json_array_extend(p->values, copy) != 0) {
			json_decref(copy);
			return -1;
		}
		json_decref(copy);
		return 0;
	}
	struct param *nv = realloc(ps->v, (ps->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	ps->v = nv;
	p = &ps->v[ps->n];
	p->name = strdup(name);
	p->values = json_deep_copy(values);
	if (!p->name || !p->values) {
		free(p->name);
		json_decref(p->values);
		return -1;
	}
	ps->n++;
	if (strcmp(name, "*") == 0)
		ps->has_star = true;
	return 0;
}

static int required_add(struct perm *p, const char *name)
{
	for (size_t i = 0; i < p->nrequired; i++)
		if (strcmp(p->required[i], name) == 0)
			return 0;
	char **nv = realloc(p->required, (p->nrequired + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	p->required = nv;
	if (!(p->required[p->nrequired] = strdup(name)))
		return -1;
	p->nrequired++;
	return 0;
}

static int param_set_merge(struct param_set *dst, const struct param_set *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (param_set_add(dst, src->v[i].name, src->v[i].values) != 0)
			return -1;
	return 0;
}

static int perm_copy(struct perm *dst, const struct perm *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->caps = src->caps;
	dst->min_wrap = src->min_wrap;
	dst->max_wrap = src->max_wrap;
	if (param_set_merge(&dst->allowed, &src->allowed) != 0 ||
	    param_set_merge(&dst->denied, &src->denied) != 0)
		return -1;
	for (size_t i = 0; i < src->nrequired; i++)
		if (required_add(dst, src->required[i]) != 0)
			return -1;
	return 0;
}

/* Merge a rule for the same pattern into an existing entry (Vault's rules). */
static int perm_merge(struct perm *dst, const struct perm *src)
{
	if (dst->caps & POLICY_CAP_DENY)
		return 0; /* an explicit deny stays a deny */
	if (src->caps & POLICY_CAP_DENY) {
		dst->caps = POLICY_CAP_DENY;
		param_set_free(&dst->allowed);
		param_set_free(&dst->denied);
		return 0;
	}
	dst->caps |= src->caps;
	/* Wrapping TTLs: the smaller of two set values (shortest lifetimes). */
	if (src->max_wrap > 0 && (dst->max_wrap == 0 || src->max_wrap < dst->max_wrap))
		dst->max_wrap = src->max_wrap;
	if (src->min_wrap > 0 && (dst->min_wrap == 0 || src->min_wrap < dst->min_wrap))
		dst->min_wrap = src->min_wrap;
	if (param_set_merge(&dst->allowed, &src->allowed) != 0 ||
	    param_set_merge(&dst->denied, &src->denied) != 0)
		return -1;
	for (size_t i = 0; i < src->nrequired; i++)
		if (required_add(dst, src->required[i]) != 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                 */

#define PARSE_PREFIX "failed to parse policy: "

static int oom(struct verr *err)
{
	return verr_set(err, VERR_INTERNAL, "out of memory");
}

/* A JSON value as a list: arrays as they are, null as [], scalars as [x]. */
static json_t *as_list(const json_t *v)
{
	if (json_is_array(v))
		return json_incref((json_t *)v);
	json_t *a = json_array();
	if (a && !json_is_null(v))
		json_array_append(a, (json_t *)v);
	return a;
}

static int parse_param_object(struct param_set *ps, const char *pattern, const char *field,
			      const json_t *obj, struct verr *err)
{
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)obj, key, val)
	{
		if (strchr(key, '*') && strcmp(key, "*") != 0)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": %s: parameter key \"%s\" cannot "
						     "contain wildcards (only \"*\" on its own)",
					pattern, field, key);
		if (key[0] == '/')
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": %s: parameter key \"%s\": "
						     "JSON-pointer keys are not supported",
					pattern, field, key);
		if (json_is_object(val))
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": %s: value of \"%s\" must be a "
						     "list",
					pattern, field, key);
		char *lk = strdup(key);
		json_t *list = as_list(val);
		if (!lk || !list) {
			free(lk);
			json_decref(list);
			return oom(err);
		}
		ascii_lower(lk);
		int rc = param_set_add(ps, lk, list);
		free(lk);
		json_decref(list);
		if (rc != 0)
			return oom(err);
	}
	return 0;
}

/* allowed_parameters / denied_parameters: an object, or (from the HCL block
 * form) an array of objects. */
static int parse_params(struct param_set *ps, const char *pattern, const char *field,
			const json_t *v, struct verr *err)
{
	if (json_is_object(v))
		return parse_param_object(ps, pattern, field, v, err);
	if (json_is_array(v)) {
		size_t i;
		const json_t *el;
		json_array_foreach((json_t *)v, i, el)
		{
			if (!json_is_object(el))
				goto bad;
			int rc = parse_param_object(ps, pattern, field, el, err);
			if (rc)
				return rc;
		}
		return 0;
	}
bad:
	return verr_set(err, VERR_INVALID,
			PARSE_PREFIX "path \"%s\": %s must be a map of parameter names to lists",
			pattern, field);
}

static int parse_ttl(int64_t *out, const char *pattern, const char *field, const json_t *v,
		     struct verr *err)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			goto bad;
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		struct verr e2 = {0};
		if (duration_parse(out, json_string_value(v), &e2) != 0)
			goto bad;
		return 0;
	}
bad:
	return verr_set(err, VERR_INVALID, PARSE_PREFIX "path \"%s\": error parsing %s", pattern,
			field);
}

/* Count the strings of v (a string or an array of strings) into *n;
 * -1 if v is neither. */
static int parse_string_list(const json_t *v, size_t *n)
{
	if (json_is_string(v)) {
		*n = 1;
		return 0;
	}
	if (!json_is_array(v))
		return -1;
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return -1;
	*n = json_array_size(v);
	return 0;
}

static int validate_pattern(const char *pattern, struct verr *err)
{
	const char *star = strchr(pattern, '*');
	if (star && star[1] != '\0')
		return verr_set(err, VERR_INVALID,
				PARSE_PREFIX "path \"%s\": \"*\" is only allowed at the end of a path",
				pattern);
	if (strstr(pattern, "+*"))
		return verr_set(err, VERR_INVALID,
				PARSE_PREFIX "path \"%s\": invalid use of wildcards ('+*' is forbidden)",
				pattern);
	for (const unsigned char *c = (const unsigned char *)pattern; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": control character in path",
					pattern);
	return 0;
}

static int parse_body(struct rule *r, const char *pattern, const json_t *body, struct verr *err)
{
	if (!json_is_object(body))
		return verr_set(err, VERR_INVALID,
				PARSE_PREFIX "path \"%s\": rule body must be an object", pattern);

	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)body, key, val)
	{
		static const char *const known[] = {
			"capabilities",	    "policy",		"allowed_parameters",
			"denied_parameters", "required_parameters", "min_wrapping_ttl",
			"max_wrapping_ttl",  "comment",		NULL,
		};
		bool ok = false;
		for (size_t i = 0; known[i]; i++)
			if (strcmp(known[i], key) == 0)
				ok = true;
		if (ok)
			continue;
		if (strcmp(key, "mfa_methods") == 0 || strcmp(key, "control_group") == 0)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": %s is not supported", pattern,
					key);
		return verr_set(err, VERR_INVALID, PARSE_PREFIX "path \"%s\": invalid key \"%s\"",
				pattern, key);
	}

	const json_t *caps = json_object_get(body, "capabilities");
	const json_t *old = json_object_get(body, "policy");
	if (!caps && !old)
		return verr_set(err, VERR_INVALID,
				PARSE_PREFIX "path \"%s\": no capabilities given", pattern);

	uint32_t bits = 0;
	if (old) {
		const char *o = json_string_value(old);
		if (!o)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": policy must be a string", pattern);
		if (strcmp(o, "deny") == 0)
			bits = POLICY_CAP_DENY;
		else if (strcmp(o, "read") == 0)
			bits = POLICY_CAP_READ | POLICY_CAP_LIST;
		else if (strcmp(o, "write") == 0)
			bits = POLICY_CAP_CREATE | POLICY_CAP_READ | POLICY_CAP_UPDATE |
			       POLICY_CAP_DELETE | POLICY_CAP_LIST;
		else if (strcmp(o, "sudo") == 0)
			bits = POLICY_CAP_CREATE | POLICY_CAP_READ | POLICY_CAP_UPDATE |
			       POLICY_CAP_DELETE | POLICY_CAP_LIST | POLICY_CAP_SUDO;
		else
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": invalid policy \"%s\"", pattern, o);
	}
	if (caps) {
		size_t n = 0;
		if (parse_string_list(caps, &n) != 0)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": capabilities must be a list of "
						     "strings",
					pattern);
		for (size_t i = 0; i < n; i++) {
			const json_t *el = json_is_string(caps) ? caps : json_array_get(caps, i);
			const char *name = json_string_value(el);
			uint32_t b = cap_from_name(name);
			if (!b)
				return verr_set(err, VERR_INVALID,
						PARSE_PREFIX "path \"%s\": invalid capability \"%s\"",
						pattern, name);
			bits |= b;
		}
	}
	if (bits & POLICY_CAP_DENY) {
		/* Deny alone: nothing else on this rule matters. */
		r->perm.caps = POLICY_CAP_DENY;
		return 0;
	}
	r->perm.caps = bits;

	int rc;
	if ((val = json_object_get(body, "allowed_parameters")) &&
	    (rc = parse_params(&r->perm.allowed, pattern, "allowed_parameters", val, err)))
		return rc;
	if ((val = json_object_get(body, "denied_parameters")) &&
	    (rc = parse_params(&r->perm.denied, pattern, "denied_parameters", val, err)))
		return rc;
	if ((val = json_object_get(body, "required_parameters"))) {
		size_t n = 0;
		if (parse_string_list(val, &n) != 0)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": required_parameters must be a "
						     "list of strings",
					pattern);
		for (size_t i = 0; i < n; i++) {
			const json_t *el = json_is_string(val) ? val : json_array_get(val, i);
			const char *name = json_string_value(el);
			if (strchr(name, '*'))
				return verr_set(err, VERR_INVALID,
						PARSE_PREFIX "path \"%s\": required_parameters: "
							     "parameter key \"%s\": wildcard is "
							     "not permitted here",
						pattern, name);
			char *lk = strdup(name);
			if (!lk)
				return oom(err);
			ascii_lower(lk);
			rc = required_add(&r->perm, lk);
			free(lk);
			if (rc)
				return oom(err);
		}
	}
	if ((val = json_object_get(body, "min_wrapping_ttl")) &&
	    (rc = parse_ttl(&r->perm.min_wrap, pattern, "min_wrapping_ttl", val, err)))
		return rc;
	if ((val = json_object_get(body, "max_wrapping_ttl")) &&
	    (rc = parse_ttl(&r->perm.max_wrap, pattern, "max_wrapping_ttl", val, err)))
		return rc;
	if (r->perm.min_wrap && r->perm.max_wrap && r->perm.max_wrap < r->perm.min_wrap)
		return verr_set(err, VERR_INVALID,
				PARSE_PREFIX "path \"%s\": max_wrapping_ttl cannot be less than "
					     "min_wrapping_ttl",
				pattern);
	return 0;
}

static int add_rule(struct policy *p, const char *raw_pattern, const json_t *body,
		    struct verr *err)
{
	/* Paths in Vault start after the '/' of the API path. */
	const char *pattern = raw_pattern[0] == '/' ? raw_pattern + 1 : raw_pattern;
	int rc = validate_pattern(pattern, err);
	if (rc)
		return rc;
	struct rule *nv = realloc(p->rules, (p->nrules + 1) * sizeof(*nv));
	if (!nv)
		return oom(err);
	p->rules = nv;
	struct rule *r = &p->rules[p->nrules];
	memset(r, 0, sizeof(*r));
	if (!(r->pattern = strdup(pattern)))
		return oom(err);
	p->nrules++; /* counted now so policy_free releases it on error */
	/* Identity templating ({{identity.entity.id}}) is not supported: such a
	 * rule is kept (the policy still loads) but never matches anything, so a
	 * path that literally contains the template grants nothing. */
	r->templated = strstr(pattern, "{{") != NULL;
	return parse_body(r, pattern, body, err);
}

/* One `"pattern": value` pair, where value is a body or a list of bodies. */
static int add_occurrences(struct policy *p, const char *pattern, const json_t *v,
			   struct verr *err)
{
	if (json_is_array(v)) {
		size_t i;
		const json_t *el;
		if (json_array_size(v) == 0)
			return verr_set(err, VERR_INVALID,
					PARSE_PREFIX "path \"%s\": rule body must be an object",
					pattern);
		json_array_foreach((json_t *)v, i, el)
		{
			int rc = add_rule(p, pattern, el, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	return add_rule(p, pattern, v, err);
}

int policy_parse(struct policy **out, const char *name, const json_t *root, struct verr *err)
{
	*out = NULL;
	if (!json_is_object(root))
		return verr_set(err, VERR_INVALID, PARSE_PREFIX "does not contain a root object");
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return oom(err);
	atomic_init(&p->refs, 1);
	int rc = 0;
	if (!(p->name = strdup(name ? name : ""))) {
		rc = oom(err);
		goto out;
	}
	p->is_root = strcmp(p->name, "root") == 0;

	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)root, key, val)
	{
		if (strcmp(key, "path") != 0 && strcmp(key, "name") != 0) {
			rc = verr_set(err, VERR_INVALID, PARSE_PREFIX "invalid key \"%s\"", key);
			goto out;
		}
	}
	const json_t *paths = json_object_get(root, "path");
	if (!paths || json_is_null(paths))
		goto out; /* an empty policy grants nothing but is valid */
	if (json_is_object(paths)) {
		json_object_foreach((json_t *)paths, key, val)
		{
			if ((rc = add_occurrences(p, key, val, err)))
				goto out;
		}
	} else if (json_is_array(paths)) {
		size_t i;
		const json_t *el;
		json_array_foreach((json_t *)paths, i, el)
		{
			if (!json_is_object(el)) {
				rc = verr_set(err, VERR_INVALID,
					      PARSE_PREFIX "each path entry must be an object of "
							   "path to rules");
				goto out;
			}
			json_object_foreach((json_t *)el, key, val)
			{
				if ((rc = add_occurrences(p, key, val, err)))
					goto out;
			}
		}
	} else {
		rc = verr_set(err, VERR_INVALID,
			      PARSE_PREFIX "path must be an object of path to rules");
	}
out:
	if (rc) {
		policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

struct policy *policy_ref(struct policy *p)
{
	if (p)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

void policy_free(struct policy *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	for (size_t i = 0; i < p->nrules; i++) {
		free(p->rules[i].pattern);
		perm_free(&p->rules[i].perm);
	}
	free(p->rules);
	free(p->name);
	free(p);
}

const char *policy_name(const struct policy *p)
{
	return p->name;
}

size_t policy_rule_count(const struct policy *p)
{
	return p->nrules;
}

int policy_name_normalize(char *buf, size_t cap, const char *name, struct verr *err)
{
	if (!name)
		return verr_set(err, VERR_INVALID, "missing policy name");
	while (*name && isspace((unsigned char)*name))
		name++;
	size_t n = strlen(name);
	while (n && isspace((unsigned char)name[n - 1]))
		n--;
	if (n == 0)
		return verr_set(err, VERR_INVALID, "missing policy name");
	if (n >= POLICY_NAME_MAX || n >= cap)
		return verr_set(err, VERR_INVALID, "policy name is too long");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return verr_set(err, VERR_INVALID, "invalid policy name");
		buf[i] = (char)tolower(c);
	}
	buf[n] = '\0';
	/* Names are storage keys: no empty, "." or ".." segments. */
	const char *s = buf;
	for (;;) {
		const char *e = strchr(s, '/');
		size_t sl = e ? (size_t)(e - s) : strlen(s);
		if (sl == 0 || (sl == 1 && s[0] == '.') || (sl == 2 && s[0] == '.' && s[1] == '.'))
			return verr_set(err, VERR_INVALID, "invalid policy name \"%s\"", buf);
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* ACL construction                                                        */

static void entry_free(struct acl_entry *e)
{
	free(e->pattern);
	free(e->key);
	free(e->segs);
	perm_free(&e->perm);
}

/* Classify a pattern exactly as Vault does and fill the match fields. */
static int entry_init(struct acl_entry *e, const char *pattern)
{
	size_t len = strlen(pattern);
	bool has_seg = strcmp(pattern, "+") == 0 || strstr(pattern, "/+") != NULL ||
		       strncmp(pattern, "+/", 2) == 0;
	bool star = len > 0 && pattern[len - 1] == '*';
	memset(e, 0, sizeof(*e));
	if (!(e->pattern = strdup(pattern)))
		return -1;
	if (has_seg) {
		e->kind = MK_SEGMENT;
		e->is_prefix = star;
		e->first_wc = (size_t)(strchr(pattern, '+') - pattern);
	} else if (star) {
		e->kind = MK_PREFIX;
		e->is_prefix = true;
		e->first_wc = len - 1;
	} else {
		e->kind = MK_EXACT;
	}
	e->keylen = star ? len - 1 : len;
	if (!(e->key = xstrndup(pattern, e->keylen)))
		return -1;
	if (e->kind == MK_SEGMENT) {
		size_t nseg = 1;
		for (size_t i = 0; i < e->keylen; i++)
			nseg += e->key[i] == '/';
		if (!(e->segs = calloc(nseg, sizeof(*e->segs))))
			return -1;
		const char *s = e->key;
		for (size_t i = 0; i < nseg; i++) {
			const char *sl = strchr(s, '/');
			size_t l = sl ? (size_t)(sl - s) : strlen(s);
			e->segs[i].s = s;
			e->segs[i].len = l;
			e->segs[i].plus = l == 1 && s[0] == '+';
			e->wildcards += e->segs[i].plus;
			s += l + 1;
		}
		e->nsegs = nseg;
	}
	return 0;
}

/* Generic probe over a slot table whose slots index a.entries. */
static const struct acl_entry *tab_get(const struct acl *a, const uint32_t *tab, size_t cap,
				       const char *key, size_t len)
{
	if (!cap)
		return NULL;
	size_t mask = cap - 1;
	for (size_t i = hash_bytes(key, len) & mask;; i = (i + 1) & mask) {
		uint32_t s = tab[i];
		if (!s)
			return NULL;
		const struct acl_entry *e = &a->entries[s - 1];
		if (e->keylen == len && memcmp(e->key, key, len) == 0)
			return e;
	}
}

static void tab_put(uint32_t *tab, size_t cap, uint64_t h, uint32_t idx)
{
	size_t mask = cap - 1;
	size_t i = h & mask;
	while (tab[i])
		i = (i + 1) & mask;
	tab[i] = idx + 1;
}

static int cmp_size_desc(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	return a < b ? 1 : a > b ? -1 : 0;
}

static int acl_index(struct acl *a)
{
	size_t nexact = 0, nprefix = 0, nseg = 0;
	for (size_t i = 0; i < a->n; i++) {
		switch (a->entries[i].kind) {
		case MK_EXACT: nexact++; break;
		case MK_PREFIX: nprefix++; break;
		case MK_SEGMENT: nseg++; break;
		}
	}
	if (nexact) {
		a->exact_cap = pow2_at_least(nexact * 2);
		if (!(a->exact_tab = calloc(a->exact_cap, sizeof(uint32_t))))
			return -1;
	}
	if (nprefix) {
		a->prefix_cap = pow2_at_least(nprefix * 2);
		if (!(a->prefix_tab = calloc(a->prefix_cap, sizeof(uint32_t))) ||
		    !(a->prefix_lens = calloc(nprefix, sizeof(size_t))))
			return -1;
	}
	if (nseg && !(a->seg_idx = calloc(nseg, sizeof(uint32_t))))
		return -1;
	for (size_t i = 0; i < a->n; i++) {
		struct acl_entry *e = &a->entries[i];
		uint64_t h = hash_bytes(e->key, e->keylen);
		if (e->kind == MK_EXACT) {
			tab_put(a->exact_tab, a->exact_cap, h, (uint32_t)i);
		} else if (e->kind == MK_PREFIX) {
			tab_put(a->prefix_tab, a->prefix_cap, h, (uint32_t)i);
			a->prefix_lens[a->nprefix_lens++] = e->keylen;
		} else {
			a->seg_idx[a->nseg++] = (uint32_t)i;
		}
	}
	if (a->nprefix_lens) {
		qsort(a->prefix_lens, a->nprefix_lens, sizeof(size_t), cmp_size_desc);
		size_t w = 1;
		for (size_t i = 1; i < a->nprefix_lens; i++)
			if (a->prefix_lens[i] != a->prefix_lens[w - 1])
				a->prefix_lens[w++] = a->prefix_lens[i];
		a->nprefix_lens = w;
	}
	return 0;
}

int acl_new(struct acl **out, struct policy *const *policies, size_t n, struct verr *err)
{
	*out = NULL;
	struct acl *a = calloc(1, sizeof(*a));
	if (!a)
		return oom(err);
	atomic_init(&a->refs, 1);
	int rc = 0;
	uint32_t *merge = NULL;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!policies[i])
			continue;
		if (policies[i]->is_root)
			a->root = true;
		total += policies[i]->nrules;
	}
	if (a->root || total == 0)
		goto out;

	if (!(a->entries = calloc(total, sizeof(*a->entries)))) {
		rc = oom(err);
		goto out;
	}
	/* Temporary pattern -> entry table for merging repeated patterns. */
	size_t mcap = pow2_at_least(total * 2);
	if (!(merge = calloc(mcap, sizeof(uint32_t)))) {
		rc = oom(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct policy *p = policies[i];
		if (!p)
			continue;
		for (size_t j = 0; j < p->nrules; j++) {
			const struct rule *r = &p->rules[j];
			if (r->templated)
				continue;
			size_t plen = strlen(r->pattern);
			uint64_t h = hash_bytes(r->pattern, plen);
			size_t k = h & (mcap - 1);
			struct acl_entry *found = NULL;
			while (merge[k]) {
				struct acl_entry *e = &a->entries[merge[k] - 1];
				if (strcmp(e->pattern, r->pattern) == 0) {
					found = e;
					break;
				}
				k = (k + 1) & (mcap - 1);
			}
			if (found) {
				if (perm_merge(&found->perm, &r->perm) != 0) {
					rc = oom(err);
					goto out;
				}
				continue;
			}
			struct acl_entry *e = &a->entries[a->n];
			if (entry_init(e, r->pattern) != 0) {
				a->n++;
				rc = oom(err);
				goto out;
			}
			a->n++;
			if (perm_copy(&e->perm, &r->perm) != 0) {
				rc = oom(err);
				goto out;
			}
			merge[k] = (uint32_t)a->n;
		}
	}
	if (acl_index(a) != 0)
		rc = oom(err);
out:
	free(merge);
	if (rc) {
		acl_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

struct acl *acl_ref(struct acl *a)
{
	if (a)
		atomic_fetch_add(&a->refs, 1);
	return a;
}

void acl_free(struct acl *a)
{
	if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
		return;
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->entries[i]);
	free(a->entries);
	free(a->exact_tab);
	free(a->prefix_tab);
	free(a->prefix_lens);
	free(a->seg_idx);
	free(a);
}

bool acl_is_root(const struct acl *a)
{
	return a && a->root;
}

/* ---------------------------------------------------------------------- */
/* Matching                                                                */

/* Does a segment-wildcard entry match the path? Segments are what splitting
 * on '/' gives (a trailing '/' makes an empty last segment); "+" matches one
 * non-empty segment; a prefix pattern's last segment matches as a prefix and
 * anything may follow it. */
static bool seg_match(const struct acl_entry *e, const char *path, size_t plen)
{
	size_t pos = 0;
	bool more = true;
	for (size_t i = 0; i < e->nsegs; i++) {
		if (!more)
			return false;
		const char *s = path + pos;
		const char *slash = memchr(s, '/', plen - pos);
		size_t slen = slash ? (size_t)(slash - s) : plen - pos;
		const struct seg *g = &e->segs[i];
		bool last = i + 1 == e->nsegs;
		if (g->plus) {
			if (slen == 0)
				return false;
		} else if (g->len == slen && memcmp(g->s, s, slen) == 0) {
			/* literal segment */
		} else if (e->is_prefix && last && slen >= g->len && memcmp(g->s, s, g->len) == 0) {
			return true;
		} else {
			return false;
		}
		if (slash)
			pos += slen + 1;
		else
			more = false;
	}
	return e->is_prefix || !more;
}

/* Vault's priority order: >0 if x ranks above y. */
static int rank_cmp(const struct acl_entry *x, const struct acl_entry *y)
{
	if (x->first_wc != y->first_wc)
		return x->first_wc > y->first_wc ? 1 : -1;
	if (x->is_prefix != y->is_prefix)
		return x->is_prefix ? -1 : 1;
	if (x->wildcards != y->wildcards)
		return x->wildcards < y->wildcards ? 1 : -1;
	if (x->keylen != y->keylen)
		return x->keylen > y->keylen ? 1 : -1;
	return strcmp(x->key, y->key);
}

static const struct acl_entry *acl_lookup(const struct acl *a, const char *path, size_t plen,
					  bool list_fallback)
{
	const struct acl_entry *e = tab_get(a, a->exact_tab, a->exact_cap, path, plen);
	if (e)
		return e;
	if (list_fallback && plen && path[plen - 1] == '/' &&
	    (e = tab_get(a, a->exact_tab, a->exact_cap, path, plen - 1)))
		return e;
	const struct acl_entry *best = NULL;
	for (size_t i = 0; i < a->nprefix_lens; i++) {
		size_t l = a->prefix_lens[i];
		if (l > plen)
			continue;
		if ((best = tab_get(a, a->prefix_tab, a->prefix_cap, path, l)))
			break;
	}
	for (size_t i = 0; i < a->nseg; i++) {
		const struct acl_entry *s = &a->entries[a->seg_idx[i]];
		if (seg_match(s, path, plen) && (!best || rank_cmp(s, best) > 0))
			best = s;
	}
	return best;
}

/* ---------------------------------------------------------------------- */
/* Parameter checks                                                        */

/* Case-insensitive (ASCII) equality of a request key with a lower-case name. */
static bool key_eq(const char *key, const char *lname)
{
	for (; *key && *lname; key++, lname++)
		if (tolower((unsigned char)*key) != (unsigned char)*lname)
			return false;
	return *key == *lname;
}

static const struct param *param_lookup(const struct param_set *ps, const char *key)
{
	for (size_t i = 0; i < ps->n; i++)
		if (key_eq(key, ps->v[i].name))
			return &ps->v[i];
	return NULL;
}

/* Value globbing as Vault does it: "*x" suffix, "x*" prefix, "*x*" contains;
 * a bare "*" is literal. */
static bool glob_match(const char *item, size_t il, const char *val, size_t vl)
{
	if (il < 2)
		return il == vl && memcmp(item, val, il) == 0;
	bool pre = item[0] == '*', suf = item[il - 1] == '*';
	if (pre && suf)
		return il == 2 || memmem(val, vl, item + 1, il - 2) != NULL;
	if (pre)
		return vl >= il - 1 && memcmp(val + vl - (il - 1), item + 1, il - 1) == 0;
	if (suf)
		return vl >= il - 1 && memcmp(val, item, il - 1) == 0;
	return il == vl && memcmp(item, val, il) == 0;
}

static bool value_eq(const json_t *el, const json_t *v)
{
	if (json_is_null(el) || json_is_null(v))
		return json_is_null(el) && json_is_null(v);
	if (json_is_string(el) && json_is_string(v))
		return glob_match(json_string_value(el), json_string_length(el),
				  json_string_value(v), json_string_length(v));
	if (json_is_number(el) && json_is_number(v))
		return json_number_value(el) == json_number_value(v);
	return json_equal((json_t *)el, (json_t *)v);
}

static bool value_in(const json_t *v, const json_t *list)
{
	size_t i;
	const json_t *el;
	json_array_foreach((json_t *)list, i, el)
	{
		if (value_eq(el, v))
			return true;
	}
	return false;
}

/* Allowed: an empty list allows any value; a list value passes if it is
 * itself listed or every one of its elements is. */
static bool value_allowed(const json_t *v, const json_t *list)
{
	if (json_array_size(list) == 0 || value_in(v, list))
		return true;
	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	size_t i;
	const json_t *el;
	json_array_foreach((json_t *)v, i, el)
	{
		if (!value_in(el, list))
			return false;
	}
	return true;
}

/* Denied: an empty list denies any value; a list value is denied if it or
 * any of its elements is listed (stricter than Vault, which compares the
 * list as a whole). */
static bool value_denied(const json_t *v, const json_t *list)
{
	if (json_array_size(list) == 0 || value_in(v, list))
		return true;
	if (!json_is_array(v))
		return false;
	size_t i;
	const json_t *el;
	json_array_foreach((json_t *)v, i, el)
	{
		if (value_in(el, list))
			return true;
	}
	return false;
}

static bool params_ok(const struct perm *p, const json_t *data)
{
	bool have_data = json_is_object(data) && json_object_size(data) > 0;
	for (size_t i = 0; i < p->nrequired; i++)
		if (!have_data || !json_object_get(data, p->required[i]))
			return false;
	if (!have_data)
		return true;
	const char *key;
	const json_t *val;
	if (p->denied.n) {
		if (p->denied.has_star)
			return false;
		json_object_foreach((json_t *)data, key, val)
		{
			const struct param *d = param_lookup(&p->denied, key);
			if (d && value_denied(val, d->values))
				return false;
		}
	}
	if (p->allowed.n == 0 || (p->allowed.n == 1 && p->allowed.has_star))
		return true;
	json_object_foreach((json_t *)data, key, val)
	{
		const struct param *al = param_lookup(&p->allowed, key);
		if (!al) {
			if (!p->allowed.has_star)
				return false;
			continue;
		}
		if (!value_allowed(val, al->values))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Checks                                                                  */

int acl_check_wrapped(const struct acl *a, enum logical_op op, const char *path,
		      const json_t *data, int64_t wrap_ttl, struct acl_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!a || !path)
		return VERR_INVALID;
	if (a->root) {
		out->allowed = out->is_root = out->sudo = out->matched = true;
		out->capabilities = POLICY_CAP_ALL;
		return 0;
	}
	if (op == LOP_HELP) {
		out->allowed = true; /* help is always allowed, as in Vault */
		return 0;
	}
	while (*path == '/')
		path++;
	size_t plen = strlen(path);
	const struct acl_entry *e = acl_lookup(a, path, plen, op == LOP_LIST);
	if (!e)
		return 0;
	const struct perm *p = &e->perm;
	out->matched = true;
	out->capabilities = p->caps;
	out->sudo = (p->caps & POLICY_CAP_SUDO) && !(p->caps & POLICY_CAP_DENY);
	if (p->caps & POLICY_CAP_DENY)
		return 0;

	uint32_t need;
	switch (op) {
	case LOP_READ: need = POLICY_CAP_READ; break;
	case LOP_CREATE: need = POLICY_CAP_CREATE; break;
	case LOP_UPDATE: need = POLICY_CAP_UPDATE; break;
	case LOP_PATCH: need = POLICY_CAP_PATCH; break;
	case LOP_DELETE: need = POLICY_CAP_DELETE; break;
	case LOP_LIST: need = POLICY_CAP_LIST; break;
	case LOP_REVOKE:
	case LOP_RENEW: need = POLICY_CAP_UPDATE; break;
	default: return 0;
	}
	if (!(p->caps & need))
		return 0;
	if (p->max_wrap > 0 && (wrap_ttl <= 0 || wrap_ttl > p->max_wrap))
		return 0;
	if (p->min_wrap > 0 && (wrap_ttl <= 0 || wrap_ttl < p->min_wrap))
		return 0;
	if (p->min_wrap && p->max_wrap && p->max_wrap < p->min_wrap)
		return 0; /* possible after merging two rules */
	if ((op == LOP_READ || op == LOP_CREATE || op == LOP_UPDATE || op == LOP_PATCH) &&
	    !params_ok(p, data))
		return 0;
	out->allowed = true;
	return 0;
}

int acl_check(const struct acl *a, enum logical_op op, const char *path, const json_t *data,
	      struct acl_result *out)
{
	return acl_check_wrapped(a, op, path, data, 0, out);
}

int acl_capabilities(const struct acl *a, const char *path, json_t **out_list, struct verr *err)
{
	*out_list = NULL;
	if (!a || !path)
		return verr_set(err, VERR_INVALID, "missing path");
	json_t *arr;
	if (a->root) {
		arr = json_pack("[s]", "root");
	} else {
		while (*path == '/')
			path++;
		const struct acl_entry *e = acl_lookup(a, path, strlen(path), true);
		arr = policy_caps_to_json(e ? e->perm.caps : 0);
	}
	if (!arr)
		return oom(err);
	*out_list = arr;
	return 0;
}

/* Could a segment rule match some path below mount (which ends in '/')?
 * Every segment of the mount must be matched by the rule's segment at the
 * same place ("+" matches any; a prefix rule's last segment may end early). */
static bool seg_could_match_below(const struct acl_entry *e, const char *mount, size_t ml)
{
	size_t pos = 0, i = 0;
	while (pos < ml) {
		const char *s = mount + pos;
		const char *slash = memchr(s, '/', ml - pos);
		size_t slen = slash ? (size_t)(slash - s) : ml - pos;
		if (i == e->nsegs)
			return false; /* the rule is shorter than the mount path */
		const struct seg *g = &e->segs[i];
		bool last = i + 1 == e->nsegs;
		if (g->plus) {
			if (!slen)
				return false;
		} else if (!(g->len == slen && memcmp(g->s, s, slen) == 0)) {
			/* a prefix rule's last segment "se*" covers "secret" */
			return e->is_prefix && last && slen >= g->len && memcmp(g->s, s, g->len) == 0;
		}
		if (!slash)
			break;
		pos += slen + 1;
		i++;
	}
	return true;
}

bool acl_any_under(const struct acl *a, const char *mount)
{
	if (!a || !mount)
		return false;
	if (a->root)
		return true;
	size_t ml = strlen(mount);
	for (size_t i = 0; i < a->n; i++) {
		const struct acl_entry *e = &a->entries[i];
		uint32_t caps = e->perm.caps;
		if (!caps || (caps & POLICY_CAP_DENY))
			continue;
		bool hit;
		switch (e->kind) {
		case MK_EXACT:
			hit = e->keylen >= ml ? !strncmp(e->key, mount, ml)
					      : e->keylen + 1 == ml && !strncmp(e->key, mount, e->keylen);
			break;
		case MK_PREFIX:
			/* a "secret/app/" prefix rule is below "secret/"; "sec" covers it */
			hit = e->keylen >= ml ? !strncmp(e->key, mount, ml)
					      : !strncmp(mount, e->key, e->keylen);
			break;
		default:
			hit = seg_could_match_below(e, mount, ml);
			break;
		}
		if (hit)
			return true;
	}
	return false;
}
