/*
 * token_store.c - the token store (token.h): service tokens kept only as
 * salted hashes in a storage view below the barrier, with accessors, a
 * parent/child index, num_uses, TTL/renewal rules and token roles.
 *
 * DESIGN
 * Storage layout (keys relative to the store's view):
 *   salt                         32 random bytes, created once
 *   id/<hash>                    the token entry (JSON), hash = hex
 *                                HMAC-SHA256(salt, raw token)
 *   accessor/<ahash>             {"hash": "<hash>", "accessor": "<accessor>"},
 *                                ahash = hex HMAC-SHA256(salt,
 *                                "accessor:" + accessor): a copy of the
 *                                storage lists no accessor (Vault salts
 *                                them too); keys of the older clear form
 *                                are rewritten at open
 *   parent/<parent>/<child>      "1": the children index used by revoke
 *   revoke/<hash>                {"orphan": bool}: a revocation in progress
 *   roles/<name>                 token role (JSON)
 *   batch-key                    32 random bytes, created once: the
 *                                AES-256-GCM key of batch tokens
 *
 * Batch tokens (type "batch", Vault's) are never stored: the token is
 * "b." + base64url(AES-256-GCM(batch-key, entry JSON)), the entry holding
 * policies, meta, display name, path, creation time, TTL, role, entity,
 * CIDRs and the parent's hash. A lookup decrypts it (a forged or altered
 * token fails authentication: 403), refuses it once creation_time + ttl
 * has passed, and refuses it when its parent (if any) is no longer live,
 * so a non-orphan batch token stops working with its parent. They have no
 * hash (cubbyhole refuses them), no accessor, cannot be renewed, revoked,
 * periodic, limited-use or root.
 *
 * Invariants
 *   - The raw token never reaches storage, logs or error messages; it is
 *     hashed on arrival and wiped by the caller.
 *   - A token is valid only if its entry exists, is not marked revoked, is
 *     not used up (num_uses -1), has not expired, and its parent (if any)
 *     exists and is itself neither revoked, used up nor expired.
 *   - Issue writes the parent index before the entry, so a child can never
 *     escape its parent's revocation.
 *   - Revoke writes an intent record, marks the target revoked, marks the
 *     subtree revoked top-down, then deletes it bottom-up (children before
 *     parents) and finally drops the intent. A crash at any point leaves
 *     nothing usable that should be dead, and token_store_new finishes the
 *     job from the intent record.
 *
 * Threads
 *   - `mu` serialises every mutation (issue, use, renew, revoke, tidy,
 *     roles). Lookups do not take it.
 *   - The cache (hash -> immutable entry reference) is guarded by
 *     `cache_lock` (rwlock): hits take it shared. Every mutation bumps `gen`
 *     after writing storage; a lookup that read storage inserts its result
 *     only if `gen` did not move meanwhile, so a stale entry can never be
 *     cached over a concurrent revoke.
 */
#include "core/token.h"
#include "core/telemetry.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/aead.h"
#include "util/b64.h"
#include "util/duration.h"
#include "util/hmac256.h"
#include "util/log.h"
#include "util/policylist.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/timefmt.h"

#define SALT_LEN 32
#define RAW_MAX 512
#define DEFAULT_CACHE 16384

struct cache_node {
	struct cache_node *next;
	struct token_entry *te; /* holds one reference */
};

struct token_store {
	struct storage_view *view;
	struct token_store_opts o;
	/* HMAC-SHA256 under the salt, its key schedule done once
	 * (util/hmac256.h). It is key material (whoever holds it can forge
	 * token hashes), so it lives in secmem and is wiped on free. */
	struct hmac256 salt_mac;
	pthread_mutex_t mu;
	pthread_rwlock_t cache_lock;
	struct cache_node **buckets;
	size_t nbuckets, count, cap, cursor;
	uint64_t gen;
	uint8_t *batch_key; /* secmem, AEAD_KEY_LEN: batch tokens' key */
};

static const char B62[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* ---- entries ---- */

static void entry_destroy(struct token_entry *te)
{
	free(te->hash);
	free(te->accessor);
	free(te->parent_hash);
	json_decref(te->policies);
	json_decref(te->meta);
	free(te->display_name);
	free(te->path);
	free(te->type);
	free(te->entity_id);
	json_decref(te->bound_cidrs);
	free(te->role);
	json_decref(te->internal);
	free(te);
}

void token_entry_free(struct token_entry *te)
{
	if (!te)
		return;
	if (__atomic_sub_fetch(&te->refs, 1, __ATOMIC_ACQ_REL) == 0)
		entry_destroy(te);
}

struct token_entry *token_entry_ref(struct token_entry *te)
{
	if (te)
		__atomic_add_fetch(&te->refs, 1, __ATOMIC_RELAXED);
	return te;
}

void token_free_raw(char *raw)
{
	if (!raw)
		return;
	secmem_wipe(raw, strlen(raw));
	free(raw);
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

static json_t *entry_to_json(const struct token_entry *te)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "hash", json_string(te->hash));
	json_object_set_new(o, "accessor", json_string(te->accessor));
	json_object_set_new(o, "parent", json_string(te->parent_hash));
	json_object_set(o, "policies", te->policies);
	json_object_set(o, "meta", te->meta);
	json_object_set_new(o, "display_name", json_string(te->display_name));
	json_object_set_new(o, "path", json_string(te->path));
	json_object_set_new(o, "creation_time", json_integer(te->creation_time));
	json_object_set_new(o, "creation_ttl", json_integer(te->creation_ttl));
	json_object_set_new(o, "ttl", json_integer(te->ttl));
	json_object_set_new(o, "expire_time", json_integer(te->expire_time));
	json_object_set_new(o, "explicit_max_ttl", json_integer(te->explicit_max_ttl));
	json_object_set_new(o, "period", json_integer(te->period));
	json_object_set_new(o, "num_uses", json_integer(te->num_uses));
	json_object_set_new(o, "renewable", json_boolean(te->renewable));
	json_object_set_new(o, "orphan", json_boolean(te->orphan));
	json_object_set_new(o, "revoked", json_boolean(te->revoked));
	json_object_set_new(o, "type", json_string(te->type));
	json_object_set_new(o, "entity_id", json_string(te->entity_id));
	if (te->bound_cidrs)
		json_object_set(o, "bound_cidrs", te->bound_cidrs);
	json_object_set_new(o, "role", json_string(te->role));
	if (te->internal)
		json_object_set(o, "internal", te->internal);
	json_object_set_new(o, "last_renewal_time", json_integer(te->last_renewal_time));
	return o;
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int64_t jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static struct token_entry *entry_new(void)
{
	struct token_entry *te = calloc(1, sizeof(*te));
	if (te)
		te->refs = 1;
	return te;
}

static struct token_entry *entry_from_json(const json_t *o)
{
	if (!json_is_object(o))
		return NULL;
	struct token_entry *te = entry_new();
	if (!te)
		return NULL;
	te->hash = xstrdup(jstr(o, "hash"));
	te->accessor = xstrdup(jstr(o, "accessor"));
	te->parent_hash = xstrdup(jstr(o, "parent"));
	json_t *pol = json_object_get(o, "policies");
	te->policies = json_is_array(pol) ? json_deep_copy(pol) : json_array();
	json_t *meta = json_object_get(o, "meta");
	te->meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
	te->display_name = xstrdup(jstr(o, "display_name"));
	te->path = xstrdup(jstr(o, "path"));
	te->creation_time = jint(o, "creation_time");
	te->creation_ttl = jint(o, "creation_ttl");
	te->ttl = jint(o, "ttl");
	te->expire_time = jint(o, "expire_time");
	te->explicit_max_ttl = jint(o, "explicit_max_ttl");
	te->period = jint(o, "period");
	te->num_uses = jint(o, "num_uses");
	te->renewable = json_is_true(json_object_get(o, "renewable"));
	te->orphan = json_is_true(json_object_get(o, "orphan"));
	te->revoked = json_is_true(json_object_get(o, "revoked"));
	te->type = xstrdup(*jstr(o, "type") ? jstr(o, "type") : "service");
	te->entity_id = xstrdup(jstr(o, "entity_id"));
	json_t *bc = json_object_get(o, "bound_cidrs");
	te->bound_cidrs = json_is_array(bc) ? json_deep_copy(bc) : NULL;
	te->role = xstrdup(jstr(o, "role"));
	json_t *in = json_object_get(o, "internal");
	te->internal = in && !json_is_null(in) ? json_deep_copy(in) : NULL;
	te->last_renewal_time = jint(o, "last_renewal_time");
	if (!te->hash || !te->accessor || !te->parent_hash || !te->policies || !te->meta ||
	    !te->display_name || !te->path || !te->type || !te->entity_id || !te->role) {
		entry_destroy(te);
		return NULL;
	}
	return te;
}

/* ---- hashing and random ids ---- */

static int hmac_init(struct token_store *ts, const uint8_t *salt, struct verr *err)
{
	if (hmac256_init(&ts->salt_mac, salt, SALT_LEN))
		return verr_set(err, VERR_INTERNAL, "token hash init failed");
	return 0;
}

/* hex HMAC-SHA256(salt, data) into out[65]. */
static int token_hash(const struct token_store *ts, const char *data, size_t len,
		      char out[TOKEN_HASH_LEN + 1])
{
	uint8_t mac[HMAC256_LEN];
	if (!hmac256(&ts->salt_mac, data, len, mac))
		return -1;
	hmac256_hex(mac, out);
	secmem_wipe(mac, sizeof(mac));
	return 0;
}

/* A presented token we are willing to hash: printable ASCII, bounded. */
static bool raw_plausible(const char *raw)
{
	if (!raw || !*raw)
		return false;
	size_t n = 0;
	for (const char *p = raw; *p; p++, n++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || n >= RAW_MAX)
			return false;
	return true;
}

static bool accessor_plausible(const char *a)
{
	if (!a || !*a || strlen(a) > 128)
		return false;
	for (; *a; a++)
		if (!strchr(B62, *a))
			return false;
	return true;
}

static bool hash_plausible(const char *h)
{
	if (!h)
		return false;
	size_t n = 0;
	for (; h[n]; n++)
		if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')) ||
		    n >= TOKEN_HASH_LEN)
			return false;
	return n == TOKEN_HASH_LEN;
}

/* ---- cache ---- */

static size_t bucket_of(const struct token_store *ts, const char *hash)
{
	size_t h = 0;
	for (int i = 0; i < 12 && hash[i]; i++)
		h = h * 16 + (size_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
	return h & (ts->nbuckets - 1);
}

static struct token_entry *cache_get(struct token_store *ts, const char *hash, uint64_t *gen)
{
	struct token_entry *te = NULL;
	pthread_rwlock_rdlock(&ts->cache_lock);
	for (struct cache_node *n = ts->buckets[bucket_of(ts, hash)]; n; n = n->next)
		if (secmem_streq(n->te->hash, hash)) {
			te = token_entry_ref(n->te);
			break;
		}
	if (gen)
		*gen = ts->gen;
	pthread_rwlock_unlock(&ts->cache_lock);
	return te;
}

/* Caller holds cache_lock for writing. Evict one entry, clock-style. */
static void cache_evict_one(struct token_store *ts)
{
	for (size_t k = 0; k < ts->nbuckets; k++) {
		size_t b = (ts->cursor + k) & (ts->nbuckets - 1);
		struct cache_node *n = ts->buckets[b];
		if (n) {
			ts->buckets[b] = n->next;
			token_entry_free(n->te);
			free(n);
			ts->count--;
			ts->cursor = b + 1;
			return;
		}
	}
}

static void cache_put(struct token_store *ts, struct token_entry *te, uint64_t gen)
{
	struct cache_node *node = malloc(sizeof(*node));
	if (!node)
		return;
	pthread_rwlock_wrlock(&ts->cache_lock);
	if (ts->gen != gen) {
		pthread_rwlock_unlock(&ts->cache_lock);
		free(node);
		return;
	}
	size_t b = bucket_of(ts, te->hash);
	for (struct cache_node *n = ts->buckets[b]; n; n = n->next)
		if (!strcmp(n->te->hash, te->hash)) {
			pthread_rwlock_unlock(&ts->cache_lock);
			free(node);
			return;
		}
	if (ts->count >= ts->cap)
		cache_evict_one(ts);
	node->te = token_entry_ref(te);
	node->next = ts->buckets[b];
	ts->buckets[b] = node;
	ts->count++;
	pthread_rwlock_unlock(&ts->cache_lock);
}

static void cache_invalidate(struct token_store *ts, const char *hash)
{
	pthread_rwlock_wrlock(&ts->cache_lock);
	struct cache_node **pp = &ts->buckets[bucket_of(ts, hash)];
	while (*pp) {
		if (!strcmp((*pp)->te->hash, hash)) {
			struct cache_node *n = *pp;
			*pp = n->next;
			token_entry_free(n->te);
			free(n);
			ts->count--;
			break;
		}
		pp = &(*pp)->next;
	}
	ts->gen++;
	pthread_rwlock_unlock(&ts->cache_lock);
}

void token_store_cache_flush(struct token_store *ts)
{
	if (!ts)
		return;
	pthread_rwlock_wrlock(&ts->cache_lock);
	for (size_t b = 0; b < ts->nbuckets; b++) {
		struct cache_node *n = ts->buckets[b];
		while (n) {
			struct cache_node *next = n->next;
			token_entry_free(n->te);
			free(n);
			n = next;
		}
		ts->buckets[b] = NULL;
	}
	ts->count = 0;
	ts->gen++;
	pthread_rwlock_unlock(&ts->cache_lock);
}

/* ---- storage helpers ---- */

int token_store_auth_renew(struct token_store *ts, const struct token_entry *te,
			   int64_t *max_ttl_cap, struct verr *err)
{
	*max_ttl_cap = 0;
	if (!ts->o.auth_renew)
		return 0;
	return ts->o.auth_renew(ts->o.auth_renew_ctx, te, max_ttl_cap, err);
}

int64_t token_store_now(const struct token_store *ts)
{
	return ts->o.now ? ts->o.now(ts->o.now_ctx) : (int64_t)time(NULL);
}
int64_t token_store_max_ttl(const struct token_store *ts)
{
	return ts->o.max_ttl;
}
int64_t token_store_default_ttl(const struct token_store *ts)
{
	return ts->o.default_ttl;
}

static int key_of(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
	int n = snprintf(buf, cap, "%s%s%s", a, b, c ? c : "");
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The storage key of an accessor's index entry: "accessor/" + the salted
 * hash of "accessor:" + accessor (domain-separated from token hashes). */
static int accessor_key(const struct token_store *ts, const char *acc, char *buf, size_t cap)
{
	char in[160], h[TOKEN_HASH_LEN + 1];
	int n = snprintf(in, sizeof(in), "accessor:%s", acc);
	if (n < 0 || (size_t)n >= sizeof(in) || token_hash(ts, in, (size_t)n, h))
		return -1;
	return key_of(buf, cap, "accessor/", h, NULL);
}

/* Load the stored entry for hash (any state). *out NULL when absent. */
static int entry_load(struct token_store *ts, const char *hash, struct token_entry **out,
		      struct verr *err)
{
	char key[128];
	json_t *j = NULL;
	*out = NULL;
	if (!hash_plausible(hash))
		return 0;
	key_of(key, sizeof(key), "id/", hash, NULL);
	int rc = view_get_json(ts->view, key, &j, err);
	if (rc || !j)
		return rc;
	struct token_entry *te = entry_from_json(j);
	json_decref(j);
	if (!te)
		return verr_set(err, VERR_INTERNAL, "corrupt token entry");
	/* the entry must be the one we asked for */
	if (!secmem_streq(te->hash, hash)) {
		token_entry_free(te);
		return verr_set(err, VERR_INTERNAL, "corrupt token entry");
	}
	*out = te;
	return 0;
}

/* Write an entry and drop its cached copy. Caller holds mu. */
static int entry_store(struct token_store *ts, const struct token_entry *te, struct verr *err)
{
	char key[128];
	key_of(key, sizeof(key), "id/", te->hash, NULL);
	json_t *j = entry_to_json(te);
	if (!j)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = view_put_json(ts->view, key, j, err);
	json_decref(j);
	cache_invalidate(ts, te->hash);
	return rc;
}

static bool entry_dead(const struct token_store *ts, const struct token_entry *te, int64_t now)
{
	return te->revoked || te->num_uses < 0 || (te->expire_time && now >= te->expire_time);
}

static int revoke_locked(struct token_store *ts, const char *hash, bool orphan_children,
			 struct verr *err);

/*
 * The live entry for hash: cache first, then storage (checking the parent).
 * Returns 0 and *out (reference) or *out NULL when dead/absent. Expired
 * tokens found here are revoked on the spot (have_mu: the caller holds mu).
 */
static int get_live(struct token_store *ts, const char *hash, bool have_mu,
		    struct token_entry **out, struct verr *err)
{
	uint64_t gen = 0;
	int64_t now = token_store_now(ts);
	*out = NULL;
	struct token_entry *te = cache_get(ts, hash, &gen);
	if (!te) {
		int rc = entry_load(ts, hash, &te, err);
		if (rc)
			return rc;
		if (!te)
			return 0;
		if (!te->revoked && te->num_uses >= 0 && te->parent_hash[0]) {
			/* Only the direct parent: revocation marks whole subtrees
			 * top-down, so checking one level suffices. */
			struct token_entry *p = cache_get(ts, te->parent_hash, NULL);
			if (!p && (rc = entry_load(ts, te->parent_hash, &p, err))) {
				token_entry_free(te);
				return rc;
			}
			bool dead = !p || entry_dead(ts, p, now);
			token_entry_free(p);
			if (dead) {
				token_entry_free(te);
				return 0;
			}
		}
		if (!te->revoked && te->num_uses >= 0 && !(te->expire_time && now >= te->expire_time))
			cache_put(ts, te, gen);
	}
	if (te->revoked || te->num_uses < 0) {
		token_entry_free(te);
		return 0;
	}
	if (te->expire_time && now >= te->expire_time) {
		struct verr e2 = {0};
		if (!have_mu)
			pthread_mutex_lock(&ts->mu);
		if (revoke_locked(ts, te->hash, false, &e2))
			log_warn("token", "revoking an expired token failed: %s", e2.msg);
		if (!have_mu)
			pthread_mutex_unlock(&ts->mu);
		token_entry_free(te);
		return 0;
	}
	*out = te;
	return 0;
}

/* ---- open / close ---- */

static int load_salt(struct token_store *ts, struct verr *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = view_get(ts->view, "salt", &buf, &len, err);
	if (rc)
		return rc;
	if (buf && len != SALT_LEN) {
		secmem_wipe(buf, len);
		free(buf);
		return verr_set(err, VERR_INTERNAL, "token store salt is corrupt");
	}
	if (!buf) {
		uint8_t salt[SALT_LEN];
		if (RAND_bytes(salt, sizeof(salt)) != 1)
			return verr_set(err, VERR_INTERNAL, "random generator failed");
		rc = view_put(ts->view, "salt", salt, sizeof(salt), err);
		if (rc == 0)
			rc = hmac_init(ts, salt, err);
		secmem_wipe(salt, sizeof(salt));
		return rc;
	}
	rc = hmac_init(ts, buf, err);
	secmem_wipe(buf, len);
	free(buf);
	return rc;
}

/* The batch-token key: loaded, or created the first time, into secmem. */
static int load_batch_key(struct token_store *ts, struct verr *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = view_get(ts->view, "batch-key", &buf, &len, err);
	if (rc)
		return rc;
	if (buf && len != AEAD_KEY_LEN) {
		secmem_wipe(buf, len);
		free(buf);
		return verr_set(err, VERR_INTERNAL, "token store batch key is corrupt");
	}
	ts->batch_key = secmem_alloc(AEAD_KEY_LEN);
	if (!ts->batch_key) {
		if (buf)
			secmem_wipe(buf, len);
		free(buf);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	if (buf) {
		memcpy(ts->batch_key, buf, AEAD_KEY_LEN);
		secmem_wipe(buf, len);
		free(buf);
		return 0;
	}
	if (RAND_bytes(ts->batch_key, AEAD_KEY_LEN) != 1)
		return verr_set(err, VERR_INTERNAL, "random generator failed");
	return view_put(ts->view, "batch-key", ts->batch_key, AEAD_KEY_LEN, err);
}

#define BATCH_PREFIX "b."
#define BATCH_AAD "token/batch"
#define BATCH_RAW_MAX 16384

bool token_is_batch(const char *raw)
{
	return raw && !strncmp(raw, BATCH_PREFIX, 2);
}

bool token_entry_is_batch(const struct token_entry *te)
{
	return te && te->type && !strcmp(te->type, "batch");
}

/* te as a batch token: "b." + base64url(seal(entry JSON)). */
static int batch_seal(struct token_store *ts, const struct token_entry *te, char **out,
		      struct verr *err)
{
	*out = NULL;
	json_t *o = json_pack("{s:i, s:s, s:O, s:O, s:s, s:s, s:I, s:I, s:s, s:s}", "v", 1,
			      "parent", te->parent_hash, "policies", te->policies, "meta", te->meta,
			      "display_name", te->display_name, "path", te->path, "creation_time",
			      (json_int_t)te->creation_time, "ttl", (json_int_t)te->ttl, "role",
			      te->role, "entity_id", te->entity_id);
	if (o && te->bound_cidrs)
		json_object_set(o, "bound_cidrs", te->bound_cidrs);
	if (o && te->internal)
		json_object_set(o, "internal", te->internal);
	char *pt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!pt)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	uint8_t *ct = NULL;
	size_t ctlen = 0;
	size_t ptlen = strlen(pt);
	int rc = aead_blob_seal(&ct, &ctlen, ts->batch_key, BATCH_AAD, (const uint8_t *)pt, ptlen,
				err);
	secmem_wipe(pt, ptlen);
	free(pt);
	if (rc)
		return rc;
	char *b = b64_encode(ct, ctlen, true);
	free(ct);
	size_t n = b ? strlen(b) : 0;
	char *raw = b ? malloc(n + 3) : NULL;
	if (raw) {
		memcpy(raw, BATCH_PREFIX, 2);
		memcpy(raw + 2, b, n + 1);
	}
	free(b);
	if (!raw)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (n + 2 > BATCH_RAW_MAX) {
		token_free_raw(raw);
		return verr_set(err, VERR_INVALID, "the token's policies and metadata are too large for a batch token");
	}
	*out = raw;
	return 0;
}

/* The entry inside a presented batch token, or NULL when it does not
 * decrypt (forged, altered, from another store) or is malformed. */
static struct token_entry *batch_open(struct token_store *ts, const char *raw)
{
	size_t n = strlen(raw + 2);
	if (n == 0 || n + 2 > BATCH_RAW_MAX)
		return NULL;
	/* base64url without padding -> standard with padding for b64_decode */
	char *std = malloc(n + 4);
	if (!std)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = raw[2 + i];
		if (ch == '+' || ch == '/' || ch == '=') {
			free(std);
			return NULL;
		}
		std[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
	}
	size_t m = n;
	while (m % 4)
		std[m++] = '=';
	std[m] = '\0';
	uint8_t *ct = NULL, *pt = NULL;
	size_t ctlen = 0, ptlen = 0;
	int rc = b64_decode(&ct, &ctlen, std, false, NULL);
	free(std);
	if (rc)
		return NULL;
	/* one spelling per token: base64 that differs only in the unused low
	 * bits of the last character decodes to the same bytes; refuse it */
	char *canon = b64_encode(ct, ctlen, true);
	bool same = canon && !strcmp(canon, raw + 2);
	free(canon);
	if (!same) {
		b64_free(ct, ctlen, false);
		return NULL;
	}
	rc = aead_blob_open(&pt, &ptlen, ts->batch_key, BATCH_AAD, ct, ctlen, NULL);
	b64_free(ct, ctlen, false);
	if (rc)
		return NULL;
	json_t *o = json_loadb((const char *)pt, ptlen, 0, NULL);
	secmem_free(pt, ptlen);
	if (!json_is_object(o) || jint(o, "v") != 1 || !json_is_array(json_object_get(o, "policies"))) {
		json_decref(o);
		return NULL;
	}
	struct token_entry *te = entry_new();
	if (!te) {
		json_decref(o);
		return NULL;
	}
	te->hash = strdup("");
	te->accessor = strdup("");
	te->parent_hash = xstrdup(jstr(o, "parent"));
	te->policies = json_deep_copy(json_object_get(o, "policies"));
	json_t *meta = json_object_get(o, "meta");
	te->meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
	te->display_name = xstrdup(jstr(o, "display_name"));
	te->path = xstrdup(jstr(o, "path"));
	te->creation_time = jint(o, "creation_time");
	te->creation_ttl = te->ttl = jint(o, "ttl");
	te->expire_time = te->ttl ? te->creation_time + te->ttl : 0;
	te->orphan = !*jstr(o, "parent");
	te->type = strdup("batch");
	te->entity_id = xstrdup(jstr(o, "entity_id"));
	te->role = xstrdup(jstr(o, "role"));
	json_t *bc = json_object_get(o, "bound_cidrs");
	te->bound_cidrs = json_is_array(bc) ? json_deep_copy(bc) : NULL;
	json_t *in = json_object_get(o, "internal");
	te->internal = in && !json_is_null(in) ? json_deep_copy(in) : NULL;
	json_decref(o);
	if (!te->hash || !te->accessor || !te->parent_hash || !te->policies || !te->meta ||
	    !te->display_name || !te->path || !te->type || !te->entity_id || !te->role) {
		entry_destroy(te);
		return NULL;
	}
	return te;
}

/* A presented batch token: valid until creation_time + ttl, and only while
 * its parent (if any) lives. VERR_DENIED otherwise. */
static int batch_lookup(struct token_store *ts, const char *raw, struct token_entry **out,
			struct verr *err)
{
	struct token_entry *te = batch_open(ts, raw);
	if (!te)
		return verr_set(err, VERR_DENIED, "permission denied");
	if (!te->expire_time || token_store_now(ts) >= te->expire_time) {
		token_entry_free(te);
		return verr_set(err, VERR_DENIED, "permission denied");
	}
	if (te->parent_hash[0]) {
		struct token_entry *p = NULL;
		int rc = get_live(ts, te->parent_hash, false, &p, err);
		if (rc || !p) {
			token_entry_free(te);
			return rc ? rc : verr_set(err, VERR_DENIED, "permission denied");
		}
		token_entry_free(p);
	}
	*out = te;
	return 0;
}

/* Rewrite accessor index entries of the older form (the accessor in clear
 * in the key) under their hashed key. Idempotent: a crash between the put
 * and the delete leaves both, and the next open finishes the job. */
static int migrate_accessors(struct token_store *ts, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0, moved = 0;
	int rc = view_list(ts->view, "accessor/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char old[256], neu[256];
		json_t *j = NULL;
		if (hash_plausible(keys[i]) || !accessor_plausible(keys[i]) ||
		    key_of(old, sizeof(old), "accessor/", keys[i], NULL))
			continue;
		if ((rc = view_get_json(ts->view, old, &j, err)))
			break;
		const char *h = jstr(j, "hash");
		if (hash_plausible(h)) {
			json_t *nj = json_pack("{s:s, s:s}", "hash", h, "accessor", keys[i]);
			if (!nj || accessor_key(ts, keys[i], neu, sizeof(neu)))
				rc = verr_set(err, VERR_INTERNAL, "accessor migration failed");
			else
				rc = view_put_json(ts->view, neu, nj, err);
			json_decref(nj);
		}
		json_decref(j);
		if (rc == 0)
			rc = view_delete(ts->view, old, err);
		moved++;
	}
	physical_list_free(keys, n);
	if (rc == 0 && moved)
		log_info("token", "moved %zu token accessor index entries to hashed keys", moved);
	return rc;
}

static int resume_revocations(struct token_store *ts, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(ts->view, "revoke/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char key[128];
		json_t *j = NULL;
		if (key_of(key, sizeof(key), "revoke/", keys[i], NULL))
			continue;
		rc = view_get_json(ts->view, key, &j, err);
		if (rc)
			break;
		bool orphan = json_is_true(json_object_get(j, "orphan"));
		json_decref(j);
		log_info("token", "finishing an interrupted token revocation");
		rc = revoke_locked(ts, keys[i], orphan, err);
		if (rc == 0 && !hash_plausible(keys[i]))
			rc = view_delete(ts->view, key, err);
	}
	physical_list_free(keys, n);
	return rc;
}

int token_store_new(struct token_store **out, struct storage_view *view,
		    const struct token_store_opts *o, struct verr *err)
{
	*out = NULL;
	struct token_store *ts = calloc(1, sizeof(*ts));
	if (!ts)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (o)
		ts->o = *o;
	if (ts->o.default_ttl <= 0)
		ts->o.default_ttl = TOKEN_DEFAULT_TTL;
	if (ts->o.max_ttl <= 0)
		ts->o.max_ttl = TOKEN_DEFAULT_MAX_TTL;
	if (ts->o.default_ttl > ts->o.max_ttl)
		ts->o.default_ttl = ts->o.max_ttl;
	ts->cap = ts->o.cache_size ? ts->o.cache_size : DEFAULT_CACHE;
	ts->nbuckets = 64;
	while (ts->nbuckets < ts->cap)
		ts->nbuckets <<= 1;
	ts->view = view;
	pthread_mutex_init(&ts->mu, NULL);
	pthread_rwlock_init(&ts->cache_lock, NULL);
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	ts->buckets = calloc(ts->nbuckets, sizeof(*ts->buckets));
	int rc;
	if (!ts->buckets) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = load_salt(ts, err);
	if (rc == 0)
		rc = load_batch_key(ts, err);
	if (rc)
		goto out;
	pthread_mutex_lock(&ts->mu);
	rc = migrate_accessors(ts, err);
	if (rc == 0)
		rc = resume_revocations(ts, err);
	pthread_mutex_unlock(&ts->mu);
out:
	if (rc) {
		token_store_free(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

void token_store_free(struct token_store *ts)
{
	if (!ts)
		return;
	if (ts->buckets)
		token_store_cache_flush(ts);
	free(ts->buckets);
	hmac256_free(&ts->salt_mac);
	secmem_free(ts->batch_key, AEAD_KEY_LEN);
	pthread_mutex_destroy(&ts->mu);
	pthread_rwlock_destroy(&ts->cache_lock);
	free(ts);
}

/* ---- policies and TTLs ---- */

json_t *token_policies_sanitize(const json_t *in, bool add_default)
{
	json_t *empty = json_is_array(in) ? NULL : json_array();
	json_t *out = policylist_sanitize(empty ? empty : in, add_default);
	json_decref(empty);
	return out;
}

static json_t *policies_without(json_t *arr, const char *name)
{
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *s = json_string_value(e);
		if (out && s && strcmp(s, name))
			json_array_append(out, e);
	}
	json_decref(arr);
	return out;
}

static bool policies_have(const json_t *arr, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *s = json_string_value(e);
		if (s && !strcmp(s, name))
			return true;
	}
	return false;
}

static void warn(json_t *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(json_t *warnings, const char *fmt, ...)
{
	if (!warnings)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(warnings, json_string(buf));
}

/*
 * Vault's TTL rule (framework.CalculateTTL): the effective max is the
 * system max, lowered by the backend max and explicit max. A period wins
 * (capped at the max; only explicit_max_ttl bounds its lifetime); otherwise
 * increment, else the backend TTL, else the default, bounded so the token
 * never outlives start + max.
 */
static int calc_ttl(const struct token_store *ts, int64_t now, int64_t increment,
		    int64_t backend_ttl, int64_t period, int64_t backend_max, int64_t explicit_max,
		    int64_t start, int64_t *out, json_t *warnings, struct verr *err)
{
	char a[64], b[64];
	int64_t max = ts->o.max_ttl;
	if (backend_max > 0 && backend_max < max)
		max = backend_max;
	if (explicit_max > 0 && explicit_max < max)
		max = explicit_max;
	int64_t ttl, max_valid = 0;
	bool bounded = false;
	if (period > 0) {
		if (period > max) {
			duration_format(a, sizeof(a), period);
			duration_format(b, sizeof(b), max);
			warn(warnings, "period of \"%s\" exceeded the effective max_ttl of \"%s\"; period value is capped accordingly", a, b);
			period = max;
		}
		ttl = period;
		if (explicit_max > 0) {
			max_valid = start + explicit_max;
			bounded = true;
		}
	} else {
		ttl = increment > 0 ? increment : backend_ttl > 0 ? backend_ttl : ts->o.default_ttl;
		max_valid = start + max;
		bounded = true;
	}
	if (bounded) {
		int64_t left = max_valid - now;
		if (left <= 0)
			return verr_set(err, VERR_INVALID, "past the max TTL, cannot renew");
		if (left < ttl) {
			duration_format(a, sizeof(a), ttl);
			duration_format(b, sizeof(b), left);
			warn(warnings, "TTL of \"%s\" exceeded the effective max_ttl of \"%s\"; TTL value is capped accordingly", a, b);
			ttl = left;
		}
	}
	*out = ttl;
	return 0;
}

/* ---- issue ---- */

static int issue_locked(struct token_store *ts, const struct token_params *p, bool root,
			char **out_token, struct token_entry **out_entry, struct verr *err)
{
	struct token_entry *te = NULL;
	char *raw = NULL;
	int rc = 0;
	int64_t now = token_store_now(ts);

	if (p->num_uses < 0)
		return verr_set(err, VERR_INVALID, "number of uses cannot be negative");
	if (p->ttl < 0 || p->explicit_max_ttl < 0 || p->period < 0)
		return verr_set(err, VERR_INVALID, "ttl, explicit_max_ttl and period must be positive");
	if (p->type && *p->type && strcmp(p->type, "service") && strcmp(p->type, "batch"))
		return verr_set(err, VERR_INVALID, "invalid 'token_type' value");
	bool batch = p->type && !strcmp(p->type, "batch");
	if (root)
		batch = false;
	if (batch) {
		const char *bad = p->explicit_max_ttl ? "explicit_max_ttl"
				  : p->num_uses	       ? "num_uses"
				  : p->period	       ? "period"
				  : p->id && *p->id    ? "id"
						       : NULL;
		if (bad)
			return verr_set(err, VERR_INVALID, "batch tokens cannot have \"%s\" set", bad);
	}

	te = entry_new();
	if (!te)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (root) {
		te->policies = json_pack("[s]", "root");
	} else {
		json_t *empty = json_array();
		const json_t *in = p->policies ? p->policies : empty;
		if (p->policies_final) {
			te->policies = token_policies_sanitize(in, false);
		} else {
			te->policies = token_policies_sanitize(in, !p->no_default_policy);
			if (te->policies && p->no_default_policy)
				te->policies = policies_without(te->policies, "default");
		}
		json_decref(empty);
	}
	te->meta = json_object();
	if (!te->policies || !te->meta) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (p->meta) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)p->meta, k, v) {
			if (!json_is_string(v)) {
				rc = verr_set(err, VERR_INVALID, "metadata values must be strings");
				goto out;
			}
			json_object_set(te->meta, k, v);
		}
	}
	bool is_root = policies_have(te->policies, "root");
	if (batch && is_root) {
		/* a batch token cannot be revoked: never a root one */
		rc = verr_set(err, VERR_INVALID, "batch tokens cannot be root tokens");
		goto out;
	}

	/* TTL: Vault computes one for periodic tokens, tokens with a TTL and
	 * every non-root token; a root token without either never expires
	 * (unless explicit_max_ttl bounds it). */
	int64_t ttl = 0;
	if (!root && (p->period > 0 || p->ttl > 0 || !is_root)) {
		rc = calc_ttl(ts, now, 0, p->ttl, p->period, p->max_ttl, p->explicit_max_ttl, now,
			      &ttl, p->warnings, err);
		if (rc)
			goto out;
	}
	if (ttl == 0 && p->explicit_max_ttl > 0)
		ttl = p->explicit_max_ttl;
	if (ttl == 0 && p->deny_non_expiring) {
		rc = verr_set(err, VERR_INVALID,
			      "expiring root tokens cannot create non-expiring root tokens");
		goto out;
	}

	if (batch) {
		if (p->parent) {
			struct token_entry *live = NULL;
			rc = get_live(ts, p->parent->hash, true, &live, err);
			if (rc)
				goto out;
			if (!live) {
				rc = verr_set(err, VERR_INVALID, "parent token not found");
				goto out;
			}
			token_entry_free(live);
		}
		te->hash = strdup("");
		te->accessor = strdup("");
		te->parent_hash = strdup(p->parent ? p->parent->hash : "");
		te->display_name = strdup(p->display_name ? p->display_name : "token");
		te->path = strdup(p->path ? p->path : "auth/token/create");
		te->type = strdup("batch");
		te->entity_id = xstrdup(p->entity_id);
		te->role = xstrdup(p->role);
		if (!te->hash || !te->accessor || !te->parent_hash || !te->display_name ||
		    !te->path || !te->type || !te->entity_id || !te->role) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		te->creation_time = now;
		te->creation_ttl = te->ttl = ttl;
		te->expire_time = now + ttl;
		te->orphan = p->parent == NULL;
		if (p->bound_cidrs && json_array_size(p->bound_cidrs))
			te->bound_cidrs = json_deep_copy(p->bound_cidrs);
		if (p->internal)
			te->internal = json_deep_copy(p->internal);
		rc = batch_seal(ts, te, &raw, err);
		if (rc)
			goto out;
		*out_token = raw;
		raw = NULL; /* transferred */
		if (out_entry) {
			*out_entry = te;
			te = NULL; /* transferred */
		}
		goto out;
	}

	/* the raw token and its hash */
	if (p->id && *p->id) {
		if (!raw_plausible(p->id) || strchr(p->id, '.') || token_is_batch(p->id)) {
			rc = verr_set(err, VERR_INVALID, "custom token ID must be printable ASCII without '.' or spaces");
			goto out;
		}
		raw = strdup(p->id);
	} else {
		raw = malloc(2 + TOKEN_BODY_LEN + 1);
		if (raw) {
			raw[0] = 's';
			raw[1] = '.';
			if (rand_base62(raw + 2, TOKEN_BODY_LEN, NULL)) {
				rc = verr_set(err, VERR_INTERNAL, "random generator failed");
				goto out;
			}
		}
	}
	if (!raw) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	char hash[TOKEN_HASH_LEN + 1];
	if (token_hash(ts, raw, strlen(raw), hash)) {
		rc = verr_set(err, VERR_INTERNAL, "token hash failed");
		goto out;
	}
	struct token_entry *dup = NULL;
	rc = entry_load(ts, hash, &dup, err);
	if (rc)
		goto out;
	if (dup) {
		token_entry_free(dup);
		rc = verr_set(err, VERR_INVALID, "cannot create a token with a duplicate ID");
		goto out;
	}

	char acc[TOKEN_BODY_LEN + 1];
	char key[256];
	for (int tries = 0;; tries++) {
		uint8_t *x = NULL;
		size_t xl = 0;
		if (rand_base62(acc, TOKEN_BODY_LEN, NULL)) {
			rc = verr_set(err, VERR_INTERNAL, "random generator failed");
			goto out;
		}
		if (accessor_key(ts, acc, key, sizeof(key))) {
			rc = verr_set(err, VERR_INTERNAL, "token hash failed");
			goto out;
		}
		rc = view_get(ts->view, key, &x, &xl, err);
		free(x);
		if (rc)
			goto out;
		if (!x)
			break;
		if (tries > 8) {
			rc = verr_set(err, VERR_INTERNAL, "could not allocate a unique accessor");
			goto out;
		}
	}

	te->hash = strdup(hash);
	te->accessor = strdup(acc);
	te->parent_hash = strdup(p->parent ? p->parent->hash : "");
	te->display_name = strdup(root ? "root" : p->display_name ? p->display_name : "token");
	te->path = strdup(root ? "auth/token/root" : p->path ? p->path : "auth/token/create");
	te->type = strdup("service");
	te->entity_id = xstrdup(p->entity_id);
	te->role = xstrdup(p->role);
	if (!te->hash || !te->accessor || !te->parent_hash || !te->display_name || !te->path ||
	    !te->type || !te->entity_id || !te->role) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	te->creation_time = now;
	te->creation_ttl = ttl;
	te->ttl = ttl;
	te->expire_time = ttl ? now + ttl : 0;
	te->explicit_max_ttl = p->explicit_max_ttl;
	te->period = p->period;
	te->num_uses = p->num_uses;
	/* a token that never expires has nothing to renew, and no CIDR bound */
	te->renewable = ttl ? p->renewable : false;
	te->orphan = p->parent == NULL;
	if (ttl && p->bound_cidrs && json_array_size(p->bound_cidrs))
		te->bound_cidrs = json_deep_copy(p->bound_cidrs);
	if (p->internal)
		te->internal = json_deep_copy(p->internal);

	if (p->parent) {
		/* The parent must still be alive, and its index entry goes first
		 * so the child cannot escape the parent's revocation. */
		struct token_entry *live = NULL;
		rc = get_live(ts, p->parent->hash, true, &live, err);
		if (rc)
			goto out;
		if (!live) {
			rc = verr_set(err, VERR_INVALID, "parent token not found");
			goto out;
		}
		token_entry_free(live);
		snprintf(key, sizeof(key), "parent/%s/%s", te->parent_hash, te->hash);
		rc = view_put(ts->view, key, (const uint8_t *)"1", 1, err);
		if (rc)
			goto out;
	}
	json_t *aj = json_pack("{s:s, s:s}", "hash", te->hash, "accessor", te->accessor);
	if (accessor_key(ts, te->accessor, key, sizeof(key))) {
		json_decref(aj);
		rc = verr_set(err, VERR_INTERNAL, "token hash failed");
		goto out;
	}
	rc = aj ? view_put_json(ts->view, key, aj, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(aj);
	if (rc)
		goto out;
	rc = entry_store(ts, te, err);
	if (rc)
		goto out;
	if (ts->o.on_expiry && te->expire_time)
		ts->o.on_expiry(ts->o.expiry_ctx, te);
	*out_token = raw;
	raw = NULL; /* transferred */
	if (out_entry) {
		*out_entry = te;
		te = NULL; /* transferred */
	}
out:
	token_free_raw(raw);
	token_entry_free(te);
	return rc;
}

int token_store_issue(struct token_store *ts, const struct token_params *p, char **out_token,
		      struct token_entry **out_entry, struct verr *err)
{
	*out_token = NULL;
	if (out_entry)
		*out_entry = NULL;
	pthread_mutex_lock(&ts->mu);
	int rc = issue_locked(ts, p, false, out_token, out_entry, err);
	pthread_mutex_unlock(&ts->mu);
	if (rc == 0)
		telemetry_token_created(p->path, p->type, out_entry && *out_entry ? (*out_entry)->ttl : p->ttl);
	return rc;
}

int token_store_root(struct token_store *ts, char **out_token, struct verr *err)
{
	struct token_params p = {.renewable = false};
	*out_token = NULL;
	pthread_mutex_lock(&ts->mu);
	int rc = issue_locked(ts, &p, true, out_token, NULL, err);
	pthread_mutex_unlock(&ts->mu);
	return rc;
}

/* ---- lookup ---- */

int token_store_lookup(struct token_store *ts, const char *raw, struct token_entry **out,
		       struct verr *err)
{
	char hash[TOKEN_HASH_LEN + 1];
	*out = NULL;
	if (token_is_batch(raw))
		return batch_lookup(ts, raw, out, err);
	if (!raw_plausible(raw))
		return verr_set(err, VERR_DENIED, "permission denied");
	if (token_hash(ts, raw, strlen(raw), hash))
		return verr_set(err, VERR_INTERNAL, "token hash failed");
	int rc = get_live(ts, hash, false, out, err);
	if (rc)
		return rc;
	if (!*out)
		return verr_set(err, VERR_DENIED, "permission denied");
	return 0;
}

int token_store_lookup_hash(struct token_store *ts, const char *hash, struct token_entry **out,
			    struct verr *err)
{
	*out = NULL;
	if (!hash_plausible(hash))
		return verr_set(err, VERR_NOT_FOUND, "token not found");
	int rc = get_live(ts, hash, false, out, err);
	if (rc)
		return rc;
	if (!*out)
		return verr_set(err, VERR_NOT_FOUND, "token not found");
	return 0;
}

/* hash for accessor into out; 1 found, 0 absent, <0 error. */
static int accessor_hash(struct token_store *ts, const char *accessor, char out[TOKEN_HASH_LEN + 1],
			 struct verr *err)
{
	char key[256];
	json_t *j = NULL;
	if (!accessor_plausible(accessor))
		return 0;
	if (accessor_key(ts, accessor, key, sizeof(key)))
		return verr_set(err, VERR_INTERNAL, "token hash failed");
	int rc = view_get_json(ts->view, key, &j, err);
	if (rc < 0)
		return rc;
	const char *h = jstr(j, "hash");
	const char *a = jstr(j, "accessor");
	int found = hash_plausible(h) && a && !strcmp(a, accessor);
	if (found)
		memcpy(out, h, TOKEN_HASH_LEN + 1);
	json_decref(j);
	return found;
}

int token_store_lookup_accessor(struct token_store *ts, const char *accessor,
				struct token_entry **out, struct verr *err)
{
	char hash[TOKEN_HASH_LEN + 1];
	*out = NULL;
	int rc = accessor_hash(ts, accessor, hash, err);
	if (rc != 1) /* 1: found and hash written */
		return rc < 0 ? rc : verr_set(err, VERR_NOT_FOUND, "invalid accessor");
	rc = get_live(ts, hash, false, out, err);
	if (rc)
		return rc;
	if (!*out)
		return verr_set(err, VERR_NOT_FOUND, "invalid accessor");
	return 0;
}

/* ---- use / renew ---- */

int token_store_use(struct token_store *ts, const struct token_entry *te, bool *revoke_after,
		    struct verr *err)
{
	*revoke_after = false;
	if (te->num_uses == 0)
		return 0;
	pthread_mutex_lock(&ts->mu);
	struct token_entry *cur = NULL;
	int rc = entry_load(ts, te->hash, &cur, err);
	if (rc)
		goto out;
	if (!cur || cur->revoked || cur->num_uses < 0) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	if (cur->num_uses == 0)
		goto out;
	if (cur->num_uses == 1) {
		cur->num_uses = -1; /* used up: revoked once the request ends */
		*revoke_after = true;
	} else {
		cur->num_uses--;
	}
	rc = entry_store(ts, cur, err);
	if (rc)
		*revoke_after = false;
out:
	pthread_mutex_unlock(&ts->mu);
	token_entry_free(cur);
	return rc;
}

int token_store_renew(struct token_store *ts, const char *hash, int64_t increment,
		      int64_t max_ttl_cap, int64_t *out_ttl, json_t *warnings, struct verr *err)
{
	struct token_entry *cur = NULL;
	int64_t now = token_store_now(ts);
	if (increment < 0)
		return verr_set(err, VERR_INVALID, "increment must be positive");
	pthread_mutex_lock(&ts->mu);
	int rc = entry_load(ts, hash, &cur, err);
	if (rc)
		goto out;
	if (!cur || cur->revoked || cur->num_uses < 0) {
		rc = verr_set(err, VERR_NOT_FOUND, "token not found");
		goto out;
	}
	if (cur->expire_time == 0 || !cur->renewable) {
		rc = verr_set(err, VERR_INVALID, "lease is not renewable");
		goto out;
	}
	if (now >= cur->expire_time) {
		rc = verr_set(err, VERR_INVALID, "lease expired");
		goto out;
	}
	int64_t ttl = 0;
	rc = calc_ttl(ts, now, increment, cur->ttl, cur->period, max_ttl_cap, cur->explicit_max_ttl,
		      cur->creation_time, &ttl, warnings, err);
	if (rc)
		goto out;
	cur->ttl = ttl;
	cur->expire_time = now + ttl;
	cur->last_renewal_time = now;
	rc = entry_store(ts, cur, err);
	if (rc == 0 && ts->o.on_expiry)
		ts->o.on_expiry(ts->o.expiry_ctx, cur);
	if (rc == 0 && out_ttl)
		*out_ttl = ttl;
out:
	pthread_mutex_unlock(&ts->mu);
	token_entry_free(cur);
	return rc;
}

/* ---- revoke ---- */

struct hlist {
	char (*v)[TOKEN_HASH_LEN + 1];
	size_t n, cap;
};

static int hlist_push(struct hlist *l, const char *h)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		void *nv = realloc(l->v, nc * sizeof(*l->v));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	memcpy(l->v[l->n++], h, TOKEN_HASH_LEN + 1);
	return 0;
}

/* Children (hashes) of `hash` from the parent index. */
static int children_of(struct token_store *ts, const char *hash, char ***keys, size_t *n,
		       struct verr *err)
{
	char prefix[128];
	key_of(prefix, sizeof(prefix), "parent/", hash, "/");
	return view_list(ts->view, prefix, keys, n, err);
}

/* Delete one token and its index entries, after telling the core. */
static int destroy_one(struct token_store *ts, const char *hash, struct verr *err)
{
	char key[256];
	struct token_entry *te = NULL;
	int rc = entry_load(ts, hash, &te, err);
	if (rc)
		return rc;
	if (te) {
		if (ts->o.on_revoke)
			ts->o.on_revoke(ts->o.revoke_ctx, te);
		if (te->accessor[0]) {
			rc = accessor_key(ts, te->accessor, key, sizeof(key))
				     ? verr_set(err, VERR_INTERNAL, "token hash failed")
				     : view_delete(ts->view, key, err);
		}
		if (rc == 0 && te->parent_hash[0]) {
			snprintf(key, sizeof(key), "parent/%s/%s", te->parent_hash, hash);
			rc = view_delete(ts->view, key, err);
		}
	}
	if (rc == 0) {
		key_of(key, sizeof(key), "parent/", hash, "/");
		rc = view_clear_prefix(ts->view, key, err);
	}
	if (rc == 0) {
		key_of(key, sizeof(key), "id/", hash, NULL);
		rc = view_delete(ts->view, key, err);
	}
	cache_invalidate(ts, hash);
	token_entry_free(te);
	return rc;
}

static int mark_revoked(struct token_store *ts, const char *hash, struct verr *err)
{
	struct token_entry *te = NULL;
	int rc = entry_load(ts, hash, &te, err);
	if (rc || !te)
		return rc;
	if (!te->revoked) {
		te->revoked = true;
		rc = entry_store(ts, te, err);
	}
	token_entry_free(te);
	return rc;
}

static int revoke_locked(struct token_store *ts, const char *hash, bool orphan_children,
			 struct verr *err)
{
	char key[256];
	struct hlist l = {0};
	char **kids = NULL;
	size_t nk = 0;
	int rc;

	if (!hash_plausible(hash))
		return 0;
	key_of(key, sizeof(key), "revoke/", hash, NULL);
	json_t *intent = json_pack("{s:b}", "orphan", orphan_children);
	rc = intent ? view_put_json(ts->view, key, intent, err)
		    : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(intent);
	if (rc)
		return rc;
	rc = mark_revoked(ts, hash, err);
	if (rc)
		goto out;

	if (orphan_children) {
		rc = children_of(ts, hash, &kids, &nk, err);
		for (size_t i = 0; rc == 0 && i < nk; i++) {
			struct token_entry *c = NULL;
			if (!hash_plausible(kids[i]))
				continue;
			rc = entry_load(ts, kids[i], &c, err);
			if (rc == 0 && c) {
				free(c->parent_hash);
				c->parent_hash = strdup("");
				c->orphan = true;
				rc = c->parent_hash ? entry_store(ts, c, err)
						    : verr_set(err, VERR_INTERNAL, "out of memory");
			}
			token_entry_free(c);
			if (rc == 0) {
				snprintf(key, sizeof(key), "parent/%s/%s", hash, kids[i]);
				rc = view_delete(ts->view, key, err);
			}
		}
		if (rc == 0)
			rc = destroy_one(ts, hash, err);
		goto out;
	}

	/* Collect the subtree breadth-first (parents before children) without
	 * recursion, mark it top-down, delete it bottom-up. */
	if (hlist_push(&l, hash)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		rc = children_of(ts, l.v[i], &kids, &nk, err);
		for (size_t k = 0; rc == 0 && k < nk; k++)
			if (hash_plausible(kids[k]) && hlist_push(&l, kids[k]))
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
		physical_list_free(kids, nk);
		kids = NULL;
		nk = 0;
	}
	for (size_t i = 1; rc == 0 && i < l.n; i++)
		rc = mark_revoked(ts, l.v[i], err);
	for (size_t i = l.n; rc == 0 && i-- > 0;)
		rc = destroy_one(ts, l.v[i], err);
out:
	physical_list_free(kids, nk);
	free(l.v);
	if (rc == 0) {
		key_of(key, sizeof(key), "revoke/", hash, NULL);
		rc = view_delete(ts->view, key, err);
	}
	return rc;
}

int token_store_revoke(struct token_store *ts, const char *hash, bool orphan_children,
		       struct verr *err)
{
	pthread_mutex_lock(&ts->mu);
	int rc = revoke_locked(ts, hash, orphan_children, err);
	pthread_mutex_unlock(&ts->mu);
	return rc;
}

/* ---- accessors, tidy ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int token_store_list_accessors(struct token_store *ts, json_t **out, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = view_list(ts->view, "accessor/", &keys, &n, err);
	if (rc)
		return rc;
	/* the keys are hashes: read each accessor, then sort by accessor */
	char **accs = calloc(n ? n : 1, sizeof(*accs));
	size_t na = 0;
	for (size_t i = 0; rc == 0 && accs && i < n; i++) {
		char key[256];
		json_t *j = NULL;
		if (!hash_plausible(keys[i]) || key_of(key, sizeof(key), "accessor/", keys[i], NULL))
			continue;
		rc = view_get_json(ts->view, key, &j, err);
		const char *a = jstr(j, "accessor");
		if (rc == 0 && accessor_plausible(a) && (accs[na] = strdup(a)))
			na++;
		json_decref(j);
	}
	physical_list_free(keys, n);
	json_t *arr = rc == 0 && accs ? json_array() : NULL;
	if (arr) {
		qsort(accs, na, sizeof(*accs), str_cmp);
		for (size_t i = 0; i < na; i++)
			json_array_append_new(arr, json_string(accs[i]));
	}
	for (size_t i = 0; accs && i < na; i++)
		free(accs[i]);
	free(accs);
	if (rc)
		return rc;
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = arr;
	return 0;
}

int token_store_walk(struct token_store *ts, token_walk_fn fn, void *ctx, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(ts->view, "id/", &keys, &n, err);
	int64_t now = token_store_now(ts);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct token_entry *te = NULL;
		if ((rc = entry_load(ts, keys[i], &te, err)) || !te)
			continue;
		if (!te->revoked && te->num_uses >= 0 && !(te->expire_time && te->expire_time <= now))
			rc = fn(ctx, te);
		token_entry_free(te);
	}
	physical_list_free(keys, n);
	return rc;
}

int token_store_tidy(struct token_store *ts, json_t **out_stats, struct verr *err)
{
	char **keys = NULL, **kids = NULL;
	size_t n = 0, nk = 0;
	json_int_t dangling_acc = 0, dead_parents = 0, expired = 0;
	int64_t now = token_store_now(ts);
	char key[256];
	pthread_mutex_lock(&ts->mu);

	/* 1. accessors whose token is gone */
	int rc = view_list(ts->view, "accessor/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct token_entry *te = NULL;
		json_t *j = NULL;
		if (key_of(key, sizeof(key), "accessor/", keys[i], NULL))
			continue;
		if ((rc = view_get_json(ts->view, key, &j, err)))
			break;
		const char *h = jstr(j, "hash");
		if (hash_plausible(h) && (rc = entry_load(ts, h, &te, err))) {
			json_decref(j);
			break;
		}
		json_decref(j);
		if (!te) {
			rc = view_delete(ts->view, key, err);
			dangling_acc++;
		}
		token_entry_free(te);
	}
	physical_list_free(keys, n);
	keys = NULL;
	n = 0;

	/* 2. children of parents that no longer exist: never valid (see
	 * get_live), so revoke them rather than orphan them. */
	if (rc == 0)
		rc = view_list(ts->view, "parent/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t l = strlen(keys[i]);
		char ph[TOKEN_HASH_LEN + 1];
		if (l != TOKEN_HASH_LEN + 1 || keys[i][l - 1] != '/')
			continue;
		memcpy(ph, keys[i], TOKEN_HASH_LEN);
		ph[TOKEN_HASH_LEN] = '\0';
		struct token_entry *p = NULL;
		rc = entry_load(ts, ph, &p, err);
		if (rc)
			break;
		if (!p) {
			dead_parents++;
			rc = children_of(ts, ph, &kids, &nk, err);
			for (size_t k = 0; rc == 0 && k < nk; k++)
				rc = revoke_locked(ts, kids[k], false, err);
			physical_list_free(kids, nk);
			kids = NULL;
			nk = 0;
			key_of(key, sizeof(key), "parent/", ph, "/");
			if (rc == 0)
				rc = view_clear_prefix(ts->view, key, err);
		}
		token_entry_free(p);
	}
	physical_list_free(keys, n);
	keys = NULL;
	n = 0;

	/* 3. expired or half-revoked tokens */
	if (rc == 0)
		rc = view_list(ts->view, "id/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct token_entry *te = NULL;
		rc = entry_load(ts, keys[i], &te, err);
		if (rc == 0 && te && (te->revoked || (te->expire_time && now >= te->expire_time))) {
			expired++;
			rc = revoke_locked(ts, te->hash, false, err);
		}
		token_entry_free(te);
	}
	physical_list_free(keys, n);
	pthread_mutex_unlock(&ts->mu);
	if (rc == 0 && out_stats)
		*out_stats = json_pack("{s:I,s:I,s:I}", "dangling_accessors", dangling_acc,
				       "missing_parents", dead_parents, "expired_tokens", expired);
	return rc;
}

void token_store_warn_missing_policies(struct token_store *ts, const json_t *policies,
				       json_t *warnings)
{
	size_t i;
	json_t *e;
	if (!ts->o.policy_exists || !warnings)
		return;
	json_array_foreach(policies, i, e) {
		const char *name = json_string_value(e);
		if (name && strcmp(name, "root") && !ts->o.policy_exists(ts->o.policy_ctx, name))
			warn(warnings, "Policy \"%s\" does not exist", name);
	}
}

/* ---- roles ---- */

static int role_key(char *buf, size_t cap, const char *name, struct verr *err)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return verr_set(err, VERR_INVALID, "invalid role name");
	if (key_of(buf, cap, "roles/", name, NULL))
		return verr_set(err, VERR_INVALID, "role name too long");
	return 0;
}

int token_store_role_get(struct token_store *ts, const char *name, json_t **out,
			 struct verr *err)
{
	char key[512];
	*out = NULL;
	int rc = role_key(key, sizeof(key), name, err);
	return rc ? rc : view_get_json(ts->view, key, out, err);
}

int token_store_role_put(struct token_store *ts, const char *name, const json_t *role,
			 struct verr *err)
{
	char key[512];
	int rc = role_key(key, sizeof(key), name, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ts->mu);
	rc = view_put_json(ts->view, key, role, err);
	pthread_mutex_unlock(&ts->mu);
	return rc;
}

int token_store_role_delete(struct token_store *ts, const char *name, struct verr *err)
{
	char key[512];
	int rc = role_key(key, sizeof(key), name, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&ts->mu);
	rc = view_delete(ts->view, key, err);
	pthread_mutex_unlock(&ts->mu);
	return rc;
}

int token_store_role_list(struct token_store *ts, json_t **out, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = view_list(ts->view, "roles/", &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = arr;
	return 0;
}

/* ---- response shapes ---- */

static json_t *rfc3339(int64_t t)
{
	char buf[TIMEFMT_MAX];
	return timefmt_rfc3339(buf, t, 0, TIMEFMT_SECONDS) ? json_string(buf) : json_null();
}

json_t *token_entry_lookup_data(const struct token_entry *te, const char *raw_id, int64_t now)
{
	int64_t left = te->expire_time ? te->expire_time - now : 0;
	if (left < 0)
		left = 0;
	json_t *d = json_object();
	if (!d)
		return NULL;
	json_object_set_new(d, "accessor", json_string(te->accessor));
	json_object_set_new(d, "creation_time", json_integer(te->creation_time));
	json_object_set_new(d, "creation_ttl", json_integer(te->creation_ttl));
	json_object_set_new(d, "display_name", json_string(te->display_name));
	json_object_set_new(d, "entity_id", json_string(te->entity_id));
	json_object_set_new(d, "expire_time", te->expire_time ? rfc3339(te->expire_time) : json_null());
	json_object_set_new(d, "explicit_max_ttl", json_integer(te->explicit_max_ttl));
	json_object_set_new(d, "id", json_string(raw_id ? raw_id : ""));
	if (te->expire_time)
		json_object_set_new(d, "issue_time", rfc3339(te->creation_time));
	json_object_set_new(d, "meta", json_object_size(te->meta) ? json_deep_copy(te->meta) : json_null());
	json_object_set_new(d, "num_uses", json_integer(te->num_uses < 0 ? 0 : te->num_uses));
	json_object_set_new(d, "orphan", json_boolean(te->parent_hash[0] == '\0'));
	json_object_set_new(d, "path", json_string(te->path));
	json_object_set_new(d, "policies", json_deep_copy(te->policies));
	if (te->expire_time)
		json_object_set_new(d, "renewable", json_boolean(te->renewable));
	json_object_set_new(d, "ttl", json_integer(left));
	json_object_set_new(d, "type", json_string(te->type));
	if (te->period)
		json_object_set_new(d, "period", json_integer(te->period));
	if (te->role[0])
		json_object_set_new(d, "role", json_string(te->role));
	if (te->bound_cidrs && json_array_size(te->bound_cidrs))
		json_object_set_new(d, "bound_cidrs", json_deep_copy(te->bound_cidrs));
	if (te->last_renewal_time) {
		json_object_set_new(d, "last_renewal_time", json_integer(te->last_renewal_time));
		json_object_set_new(d, "last_renewal", rfc3339(te->last_renewal_time));
	}
	return d;
}

json_t *token_auth_block(const struct token_entry *te, const char *raw_token,
			 const json_t *identity_policies)
{
	json_t *all = json_deep_copy(te->policies);
	size_t i;
	json_t *e;
	bool have_ident = identity_policies && json_array_size(identity_policies) > 0;
	if (!all)
		return NULL;
	if (have_ident) {
		json_array_foreach(identity_policies, i, e) {
			if (json_is_string(e) && !policies_have(all, json_string_value(e)))
				json_array_append(all, e);
		}
	}
	json_t *a = json_object();
	if (!a) {
		json_decref(all);
		return NULL;
	}
	json_object_set_new(a, "client_token", json_string(raw_token ? raw_token : ""));
	json_object_set_new(a, "accessor", json_string(te->accessor));
	json_object_set_new(a, "policies", all);
	json_object_set_new(a, "token_policies", json_deep_copy(te->policies));
	if (have_ident)
		json_object_set_new(a, "identity_policies", json_deep_copy(identity_policies));
	json_object_set_new(a, "metadata",
			    json_object_size(te->meta) ? json_deep_copy(te->meta) : json_null());
	json_object_set_new(a, "lease_duration", json_integer(te->ttl));
	json_object_set_new(a, "renewable", json_boolean(te->renewable));
	json_object_set_new(a, "entity_id", json_string(te->entity_id));
	json_object_set_new(a, "token_type", json_string(te->type));
	json_object_set_new(a, "orphan", json_boolean(te->parent_hash[0] == '\0'));
	json_object_set_new(a, "mfa_requirement", json_null());
	json_object_set_new(a, "num_uses", json_integer(te->num_uses < 0 ? 0 : te->num_uses));
	return a;
}
