/*
 * policy_store.c - the storage-backed store of ACL policies behind
 * sys/policy and sys/policies/acl, with a cache of parsed policies and of
 * compiled ACLs per token policy set.
 *
 * DESIGN
 * Storage: one entry per policy under the store's view, key = the
 * (lower-cased) name, value = {"name", "policy": raw text as written,
 * "modified": unix seconds}. The raw text is kept verbatim because that is
 * what sys/policy reads return; it is re-parsed (through the parser hook, so
 * HCL works) when a policy is first needed after start-up.
 *
 * Built-ins: `root` is never stored (no rules; its ACL allows everything);
 * `response-wrapping` lives in memory only (immutable, not listed);
 * `default` is written to storage on first open and is then an ordinary,
 * editable policy that cannot be deleted.
 *
 * Caches and invalidation: `policies` holds parsed policies by name; `acls`
 * holds compiled ACLs keyed by the sorted, de-duplicated name set. Every
 * write or delete bumps `gen` and empties the ACL cache, so the next request
 * compiles a fresh ACL. A load or compile that started before a change does
 * not insert its (possibly stale) result: it remembers `gen` when it starts
 * and inserts only if `gen` is unchanged.
 *
 * Threads: `lock` (rwlock) guards policies, acls, gen and the parser hook;
 * `modify` serialises writers so storage and cache change in the same order.
 * Storage reads and ACL compilation happen without `lock` held.
 */
#include "core/policy.h"
#include "core/telemetry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACL_CACHE_BUCKETS 256
#define ACL_CACHE_MAX 4096

struct cached_policy {
	char *name;
	struct policy *pol; /* one reference held by the cache */
	char *raw;
	int64_t modified;
};

struct acl_cache_entry {
	char *key;
	uint64_t hash;
	struct acl *acl; /* one reference held by the cache */
	struct acl_cache_entry *next;
};

struct policy_store {
	struct storage_view *view; /* borrowed */
	pthread_rwlock_t lock;
	pthread_mutex_t modify;
	policy_text_parse_fn parse;
	uint64_t gen;
	struct cached_policy *policies;
	size_t npolicies, cappolicies;
	struct acl_cache_entry *acls[ACL_CACHE_BUCKETS];
	size_t nacls;
	struct policy *root;              /* built-in, immutable */
	struct policy *response_wrapping; /* built-in, immutable */
	char *response_wrapping_raw;
	char *default_raw;  /* the shipped default policy's text ... */
	json_t *default_json; /* ... and its parsed form */
};

/* ---------------------------------------------------------------------- */
/* Built-in policies, each from one table so the HCL text users read and the
 * parsed form cannot drift apart. */

struct builtin_rule {
	const char *comment;
	const char *path;
	const char *caps[6];
};

static const struct builtin_rule default_rules[] = {
	{"Allow tokens to look up their own properties", "auth/token/lookup-self", {"read"}},
	{"Allow tokens to renew themselves", "auth/token/renew-self", {"update"}},
	{"Allow tokens to revoke themselves", "auth/token/revoke-self", {"update"}},
	{"Allow a token to look up its own capabilities on a path", "sys/capabilities-self",
	 {"update"}},
	{"Allow a token to read the ACL that results from all of its policies (for UIs)",
	 "sys/internal/ui/resultant-acl", {"read"}},
	{"Allow a token to renew a lease it knows the id of (old and new paths)", "sys/renew",
	 {"update"}},
	{NULL, "sys/leases/renew", {"update"}},
	{"Allow looking up a lease's properties; this needs the lease id", "sys/leases/lookup",
	 {"update"}},
	{"Allow a token to manage its own cubbyhole", "cubbyhole/*",
	 {"create", "read", "update", "delete", "list"}},
	{"Allow a token to wrap arbitrary values in a response-wrapping token",
	 "sys/wrapping/wrap", {"update"}},
	{"Allow a token to look up the creation time and TTL of a wrapping token",
	 "sys/wrapping/lookup", {"update"}},
	{"Allow a token to unwrap a response-wrapping token", "sys/wrapping/unwrap", {"update"}},
	{"Allow hashing data with the general-purpose tools", "sys/tools/hash", {"update"}},
	{NULL, "sys/tools/hash/*", {"update"}},
	{NULL, NULL, {NULL}},
};

static const struct builtin_rule response_wrapping_rules[] = {
	{NULL, "cubbyhole/response", {"create", "read"}},
	{NULL, "sys/wrapping/unwrap", {"update"}},
	{NULL, NULL, {NULL}},
};

/* Build the HCL text (malloc'd) and the JSON form of a built-in policy. */
static int builtin_render(const struct builtin_rule *rules, char **out_text, json_t **out_json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *paths = json_object();
	json_t *root = json_pack("{s:o}", "path", paths);
	if (!f || !root) {
		if (f)
			fclose(f);
		free(buf);
		json_decref(root);
		return -1;
	}
	for (const struct builtin_rule *r = rules; r->path; r++) {
		json_t *caps = json_array();
		if (r->comment)
			fprintf(f, "\n# %s\n", r->comment);
		fprintf(f, "path \"%s\" {\n    capabilities = [", r->path);
		for (size_t i = 0; i < 6 && r->caps[i]; i++) {
			fprintf(f, "%s\"%s\"", i ? ", " : "", r->caps[i]);
			json_array_append_new(caps, json_string(r->caps[i]));
		}
		fprintf(f, "]\n}\n");
		json_object_set_new(paths, r->path, json_pack("{s:o}", "capabilities", caps));
	}
	if (fclose(f) != 0) {
		free(buf);
		json_decref(root);
		return -1;
	}
	*out_text = buf;
	*out_json = root;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static int oom(struct verr *err)
{
	return verr_set(err, VERR_INTERNAL, "out of memory");
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Caller holds lock (read or write). */
static struct cached_policy *cache_find(struct policy_store *s, const char *name)
{
	for (size_t i = 0; i < s->npolicies; i++)
		if (strcmp(s->policies[i].name, name) == 0)
			return &s->policies[i];
	return NULL;
}

static void cached_policy_clear(struct cached_policy *c)
{
	free(c->name);
	free(c->raw);
	policy_free(c->pol);
	memset(c, 0, sizeof(*c));
}

/* Caller holds lock for writing. */
static void cache_remove(struct policy_store *s, const char *name)
{
	struct cached_policy *c = cache_find(s, name);
	if (!c)
		return;
	cached_policy_clear(c);
	*c = s->policies[--s->npolicies];
}

/* Insert or replace; takes ownership of pol (one reference) and raw.
 * Caller holds lock for writing. */
static int cache_set(struct policy_store *s, const char *name, struct policy *pol, char *raw,
		     int64_t modified)
{
	struct cached_policy *c = cache_find(s, name);
	if (!c) {
		if (s->npolicies == s->cappolicies) {
			size_t nc = s->cappolicies ? s->cappolicies * 2 : 16;
			struct cached_policy *nv = realloc(s->policies, nc * sizeof(*nv));
			if (!nv)
				return -1;
			s->policies = nv;
			s->cappolicies = nc;
		}
		c = &s->policies[s->npolicies];
		memset(c, 0, sizeof(*c));
		if (!(c->name = strdup(name)))
			return -1;
		s->npolicies++;
	} else {
		free(c->raw);
		policy_free(c->pol);
	}
	c->pol = pol;
	c->raw = raw;
	c->modified = modified;
	return 0;
}

/* Caller holds lock for writing. */
static void acl_cache_clear(struct policy_store *s)
{
	for (size_t b = 0; b < ACL_CACHE_BUCKETS; b++) {
		struct acl_cache_entry *e = s->acls[b];
		while (e) {
			struct acl_cache_entry *next = e->next;
			free(e->key);
			acl_free(e->acl);
			free(e);
			e = next;
		}
		s->acls[b] = NULL;
	}
	s->nacls = 0;
}

/* Caller holds lock (read or write). */
static struct acl_cache_entry *acl_cache_find(struct policy_store *s, const char *key,
					      uint64_t h)
{
	for (struct acl_cache_entry *e = s->acls[h % ACL_CACHE_BUCKETS]; e; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Everything that depends on policy contents is now stale. Caller holds lock
 * for writing. */
static void changed_locked(struct policy_store *s)
{
	s->gen++;
	acl_cache_clear(s);
}

static int parse_text(struct policy_store *s, json_t **out, const char *text, struct verr *err)
{
	*out = NULL;
	if (s->default_raw && strcmp(text, s->default_raw) == 0) {
		*out = json_incref(s->default_json);
		return 0;
	}
	pthread_rwlock_rdlock(&s->lock);
	policy_text_parse_fn fn = s->parse;
	pthread_rwlock_unlock(&s->lock);
	if (fn)
		return fn(out, text, strlen(text), err);
	json_error_t je;
	*out = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return verr_set(err, VERR_INVALID, "failed to parse policy: %s (line %d)", je.text,
				je.line);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Lifecycle                                                               */

int policy_store_new(struct policy_store **out, struct storage_view *view, struct verr *err)
{
	*out = NULL;
	struct policy_store *s = calloc(1, sizeof(*s));
	if (!s)
		return oom(err);
	s->view = view;
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->modify, NULL);
	int rc = 0;
	json_t *root_json = NULL, *rw_json = NULL;
	uint8_t *existing = NULL;
	size_t existing_len = 0;

	if (!(root_json = json_object()) ||
	    (rc = policy_parse(&s->root, "root", root_json, err)))
		goto fail;
	if (builtin_render(response_wrapping_rules, &s->response_wrapping_raw, &rw_json) != 0) {
		rc = oom(err);
		goto fail;
	}
	if ((rc = policy_parse(&s->response_wrapping, "response-wrapping", rw_json, err)))
		goto fail;

	/* Write `default` once; after that it belongs to the operator. The
	 * shipped text is remembered so that it loads without the parser hook. */
	if (builtin_render(default_rules, &s->default_raw, &s->default_json) != 0) {
		rc = oom(err);
		goto fail;
	}
	if ((rc = view_get(view, "default", &existing, &existing_len, err)))
		goto fail;
	if (!existing &&
	    (rc = policy_store_put(s, "default", s->default_raw, s->default_json, err)))
		goto fail;
	free(existing);
	json_decref(rw_json);
	json_decref(root_json);
	*out = s;
	return 0;
fail:
	free(existing);
	json_decref(rw_json);
	json_decref(root_json);
	policy_store_free(s);
	return rc;
}

void policy_store_free(struct policy_store *s)
{
	if (!s)
		return;
	acl_cache_clear(s);
	for (size_t i = 0; i < s->npolicies; i++)
		cached_policy_clear(&s->policies[i]);
	free(s->policies);
	policy_free(s->root);
	policy_free(s->response_wrapping);
	free(s->response_wrapping_raw);
	free(s->default_raw);
	json_decref(s->default_json);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->modify);
	free(s);
}

void policy_store_set_parser(struct policy_store *s, policy_text_parse_fn parse)
{
	pthread_rwlock_wrlock(&s->lock);
	s->parse = parse;
	/* Policies parsed with the old parser stay valid; nothing to drop. */
	pthread_rwlock_unlock(&s->lock);
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

/*
 * Find a (normalised) stored policy: from the cache, else from storage
 * (parsed and cached). On success *pol (a new reference, may be NULL when
 * not wanted) and/or *raw (malloc'd copy) and *modified are filled; all NULL
 * / 0 when the policy does not exist.
 */
static int load(struct policy_store *s, const char *name, struct policy **pol, char **raw,
		int64_t *modified, struct verr *err)
{
	if (pol)
		*pol = NULL;
	if (raw)
		*raw = NULL;
	if (modified)
		*modified = 0;

	pthread_rwlock_rdlock(&s->lock);
	struct cached_policy *c = cache_find(s, name);
	if (c) {
		if (pol)
			*pol = policy_ref(c->pol);
		if (raw && !(*raw = strdup(c->raw))) {
			pthread_rwlock_unlock(&s->lock);
			policy_free(pol ? *pol : NULL);
			if (pol)
				*pol = NULL;
			return oom(err);
		}
		if (modified)
			*modified = c->modified;
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	uint64_t gen0 = s->gen;
	pthread_rwlock_unlock(&s->lock);

	json_t *entry = NULL, *parsed = NULL;
	struct policy *p = NULL;
	char *text = NULL;
	int rc = view_get_json(s->view, name, &entry, err);
	if (rc || !entry)
		goto out;
	const char *t = json_string_value(json_object_get(entry, "policy"));
	if (!t) {
		rc = verr_set(err, VERR_INTERNAL, "stored policy \"%s\" is corrupt", name);
		goto out;
	}
	int64_t mod = json_integer_value(json_object_get(entry, "modified"));
	if ((rc = parse_text(s, &parsed, t, err)) || (rc = policy_parse(&p, name, parsed, err)))
		goto out;
	if (!(text = strdup(t))) {
		rc = oom(err);
		goto out;
	}
	if (raw && !(*raw = strdup(t))) {
		rc = oom(err);
		goto out;
	}
	if (modified)
		*modified = mod;
	if (pol)
		*pol = policy_ref(p);

	pthread_rwlock_wrlock(&s->lock);
	if (s->gen == gen0 && !cache_find(s, name) && cache_set(s, name, p, text, mod) == 0) {
		p = NULL; /* transferred */
		text = NULL;
	}
	pthread_rwlock_unlock(&s->lock);
out:
	policy_free(p);
	free(text);
	json_decref(parsed);
	json_decref(entry);
	return rc;
}

static int get_policy(struct policy_store *s, const char *name, struct policy **out,
		      struct verr *err)
{
	char n[POLICY_NAME_MAX];
	*out = NULL;
	int rc = policy_name_normalize(n, sizeof(n), name, err);
	if (rc)
		return rc;
	if (strcmp(n, "root") == 0) {
		*out = policy_ref(s->root);
		return 0;
	}
	if (strcmp(n, "response-wrapping") == 0) {
		*out = policy_ref(s->response_wrapping);
		return 0;
	}
	return load(s, n, out, NULL, NULL, err);
}

int policy_store_get(struct policy_store *s, const char *name, struct policy **out,
		     struct verr *err)
{
	uint64_t t0 = metrics_now();
	return telemetry_timed(get_policy(s, name, out, err), "vault.policy.get_policy", t0);
}

int policy_store_raw(struct policy_store *s, const char *name, char **out_text,
		     struct verr *err)
{
	char n[POLICY_NAME_MAX];
	*out_text = NULL;
	int rc = policy_name_normalize(n, sizeof(n), name, err);
	if (rc)
		return rc;
	const char *builtin = NULL;
	if (strcmp(n, "root") == 0)
		builtin = "";
	else if (strcmp(n, "response-wrapping") == 0)
		builtin = s->response_wrapping_raw;
	if (builtin)
		return (*out_text = strdup(builtin)) ? 0 : oom(err);
	return load(s, n, NULL, out_text, NULL, err);
}

int64_t policy_store_modified(struct policy_store *s, const char *name)
{
	char n[POLICY_NAME_MAX];
	int64_t m = 0;
	if (policy_name_normalize(n, sizeof(n), name, NULL) != 0)
		return 0;
	if (load(s, n, NULL, NULL, &m, NULL) != 0)
		return 0;
	return m;
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                 */

static bool immutable(const char *n)
{
	return strcmp(n, "root") == 0 || strcmp(n, "response-wrapping") == 0;
}

int policy_store_put(struct policy_store *s, const char *name, const char *raw_text,
		     const json_t *parsed_root, struct verr *err)
{
	char n[POLICY_NAME_MAX];
	int rc = policy_name_normalize(n, sizeof(n), name, err);
	if (rc)
		return rc;
	if (immutable(n))
		return verr_set(err, VERR_INVALID, "cannot update \"%s\" policy", n);
	if (!raw_text)
		return verr_set(err, VERR_INVALID, "'policy' parameter not supplied or empty");

	json_t *parsed = NULL, *entry = NULL;
	struct policy *p = NULL;
	char *text = NULL;
	if (!parsed_root) {
		if ((rc = parse_text(s, &parsed, raw_text, err)))
			goto out;
		parsed_root = parsed;
	}
	if ((rc = policy_parse(&p, n, parsed_root, err)))
		goto out;
	int64_t now = (int64_t)time(NULL);
	entry = json_pack("{s:s,s:s,s:I}", "name", n, "policy", raw_text, "modified",
			  (json_int_t)now);
	if (!entry || !(text = strdup(raw_text))) {
		rc = oom(err);
		goto out;
	}

	pthread_mutex_lock(&s->modify);
	rc = view_put_json(s->view, n, entry, err);
	if (rc == 0) {
		pthread_rwlock_wrlock(&s->lock);
		if (cache_set(s, n, p, text, now) == 0) {
			p = NULL; /* transferred */
			text = NULL;
		} else {
			cache_remove(s, n); /* reload from storage next time */
		}
		changed_locked(s);
		pthread_rwlock_unlock(&s->lock);
	}
	pthread_mutex_unlock(&s->modify);
out:
	policy_free(p);
	free(text);
	json_decref(entry);
	json_decref(parsed);
	return rc;
}

int policy_store_delete(struct policy_store *s, const char *name, struct verr *err)
{
	char n[POLICY_NAME_MAX];
	int rc = policy_name_normalize(n, sizeof(n), name, err);
	if (rc)
		return rc;
	if (immutable(n))
		return verr_set(err, VERR_INVALID, "cannot delete \"%s\" policy", n);
	if (strcmp(n, "default") == 0)
		return verr_set(err, VERR_INVALID, "cannot delete default policy");
	pthread_mutex_lock(&s->modify);
	rc = view_delete(s->view, n, err);
	if (rc == 0) {
		pthread_rwlock_wrlock(&s->lock);
		cache_remove(s, n);
		changed_locked(s);
		pthread_rwlock_unlock(&s->lock);
	}
	pthread_mutex_unlock(&s->modify);
	return rc;
}

void policy_store_invalidate(struct policy_store *s, const char *name)
{
	char n[POLICY_NAME_MAX];
	pthread_rwlock_wrlock(&s->lock);
	if (!name) {
		for (size_t i = 0; i < s->npolicies; i++)
			cached_policy_clear(&s->policies[i]);
		s->npolicies = 0;
	} else if (policy_name_normalize(n, sizeof(n), name, NULL) == 0) {
		cache_remove(s, n);
	}
	changed_locked(s);
	pthread_rwlock_unlock(&s->lock);
}

/* ---------------------------------------------------------------------- */
/* Listing                                                                 */

static int list_rec(struct policy_store *s, const char *prefix, json_t *names, int depth,
		    struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	if (depth > 32)
		return 0;
	int rc = view_list(s->view, prefix, &keys, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t need = strlen(prefix) + strlen(keys[i]) + 1;
		char *full = malloc(need);
		if (!full) {
			rc = oom(err);
			break;
		}
		snprintf(full, need, "%s%s", prefix, keys[i]);
		size_t kl = strlen(full);
		if (kl && full[kl - 1] == '/')
			rc = list_rec(s, full, names, depth + 1, err);
		else if (json_array_append_new(names, json_string(full)) != 0)
			rc = oom(err);
		free(full);
	}
	physical_list_free(keys, n);
	return rc;
}

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int policy_store_list(struct policy_store *s, json_t **out_names, struct verr *err)
{
	*out_names = NULL;
	json_t *names = json_array();
	if (!names)
		return oom(err);
	int rc = list_rec(s, "", names, 0, err);
	if (rc) {
		json_decref(names);
		return rc;
	}
	size_t n = json_array_size(names);
	const char **v = calloc(n + 1, sizeof(*v));
	json_t *sorted = json_array();
	if (!v || !sorted) {
		free(v);
		json_decref(sorted);
		json_decref(names);
		return oom(err);
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const char *nm = json_string_value(json_array_get(names, i));
		if (strcmp(nm, "root") != 0 && strcmp(nm, "response-wrapping") != 0)
			v[m++] = nm;
	}
	v[m++] = "root";
	qsort(v, m, sizeof(*v), cmp_json_str);
	for (size_t i = 0; i < m; i++)
		json_array_append_new(sorted, json_string(v[i]));
	free(v);
	json_decref(names);
	*out_names = sorted;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* ACLs                                                                    */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_store_acl(struct policy_store *s, const char *const *names, size_t n,
		     struct acl **out, struct verr *err)
{
	*out = NULL;
	int rc = 0;
	char **norm = calloc(n ? n : 1, sizeof(*norm));
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	struct policy **pols = calloc(n ? n : 1, sizeof(*pols));
	char *key = NULL;
	size_t m = 0, npols = 0;
	if (!norm || !pols) {
		rc = oom(err);
		goto out;
	}
	/* Normalise; a name that cannot be a policy simply matches nothing. */
	size_t keylen = 1;
	for (size_t i = 0; i < n; i++) {
		char buf[POLICY_NAME_MAX];
		if (!names[i] || policy_name_normalize(buf, sizeof(buf), names[i], NULL) != 0)
			continue;
		if (!(norm[m] = strdup(buf))) {
			rc = oom(err);
			goto out;
		}
		keylen += strlen(buf) + 1;
		m++;
	}
	qsort(norm, m, sizeof(*norm), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < m; i++) {
		if (w && strcmp(norm[w - 1], norm[i]) == 0) {
			free(norm[i]);
			continue;
		}
		norm[w++] = norm[i];
	}
	m = w;
	if (!(key = malloc(keylen))) {
		rc = oom(err);
		goto out;
	}
	key[0] = '\0';
	size_t kp = 0;
	for (size_t i = 0; i < m; i++) {
		size_t l = strlen(norm[i]);
		memcpy(key + kp, norm[i], l);
		kp += l;
		key[kp++] = '\n'; /* names cannot contain control characters */
	}
	key[kp] = '\0';
	uint64_t h = hash_str(key);

	pthread_rwlock_rdlock(&s->lock);
	struct acl_cache_entry *ce = acl_cache_find(s, key, h);
	if (ce) {
		*out = acl_ref(ce->acl);
		pthread_rwlock_unlock(&s->lock);
		goto out;
	}
	uint64_t gen0 = s->gen;
	pthread_rwlock_unlock(&s->lock);

	for (size_t i = 0; i < m; i++) {
		struct policy *p = NULL;
		if ((rc = policy_store_get(s, norm[i], &p, err)))
			goto out;
		if (p) /* missing policies are ignored, as in Vault */
			pols[npols++] = p;
	}
	struct acl *a = NULL;
	if ((rc = acl_new(&a, pols, npols, err)))
		goto out;

	pthread_rwlock_wrlock(&s->lock);
	if (s->gen == gen0) {
		ce = acl_cache_find(s, key, h);
		if (ce) {
			/* Another thread compiled the same set meanwhile. */
			acl_free(a);
			a = acl_ref(ce->acl);
		} else {
			if (s->nacls >= ACL_CACHE_MAX)
				acl_cache_clear(s); /* crude bound; compiling is cheap */
			struct acl_cache_entry *ne = calloc(1, sizeof(*ne));
			if (ne) {
				ne->key = key;
				key = NULL; /* transferred */
				ne->hash = h;
				ne->acl = acl_ref(a);
				ne->next = s->acls[h % ACL_CACHE_BUCKETS];
				s->acls[h % ACL_CACHE_BUCKETS] = ne;
				s->nacls++;
			}
		}
	}
	pthread_rwlock_unlock(&s->lock);
	*out = a;
out:
	for (size_t i = 0; i < npols; i++)
		policy_free(pols[i]);
	if (norm)
		for (size_t i = 0; i < m; i++)
			free(norm[i]);
	free(norm);
	free(pols);
	free(key);
	return rc;
}
