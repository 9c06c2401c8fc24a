/*
 * kv.c - the KV secrets engine: the per-mount instance (type "kv"), KV
 * version 1 (plain key/value), and the in-place upgrade of a v1 mount to v2
 * when the core re-initialises it with options.version=2. Version 2's paths
 * live in kv2.c; shared helpers in kv_common.c.
 *
 * v1 contract (Vault's kv-v1 API): GET reads the JSON object written at the
 * path (404 with no errors when absent); POST/PUT replace it with the whole
 * request body (400 "missing data fields" for an empty body); DELETE removes
 * it (204); LIST returns {"keys":[...]} with folders suffixed by '/', and 404
 * when nothing is there. A read reports a lease duration from the secret's
 * own "ttl" (or "lease") key, else the mount's default lease TTL, through
 * resp->lease_out ({"lease_id":"","lease_duration":N,"renewable":false});
 * no lease is registered.
 */
#include "secrets/secrets.h"

#include <stdlib.h>
#include <string.h>

#include "secrets/kv_int.h"
#include "util/duration.h"

/* ---- v1 handlers ---- */

static int kv1_exists(struct logical_request *req, struct verr *err)
{
	return kv__plain_exists(req, KV1_PREFIX, err);
}

/* A secret's "ttl"/"lease" value as seconds; -1 when absent or unparsable
 * (Vault then falls back to the mount default). */
static int64_t secret_ttl(const json_t *secret)
{
	const json_t *v = json_object_get(secret, "ttl");
	if (!v)
		v = json_object_get(secret, "lease");
	if (!v)
		return -1;
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
	if (json_is_real(v))
		return json_real_value(v) >= 0 && json_real_value(v) <= 9.2e18 ? (int64_t)json_real_value(v) : -1;
	if (json_is_string(v)) {
		int64_t secs;
		if (duration_parse(&secs, json_string_value(v), NULL) == 0)
			return secs;
	}
	return -1;
}

static int kv1_read(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct kv_backend *b = req->backend;
	json_t *secret = NULL;
	int rc = kv__plain_read(req, KV1_PREFIX, &secret, err);
	if (rc)
		return rc;
	int64_t ttl = secret_ttl(secret);
	if (ttl < 0)
		ttl = b ? b->default_ttl : KV_SYSTEM_DEFAULT_TTL;
	resp->data = secret; /* transferred */
	resp->lease_out = json_pack("{s:s,s:I,s:b}", "lease_id", "", "lease_duration",
				    (json_int_t)ttl, "renewable", 0);
	return 0;
}

static int kv1_write(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	return kv__plain_write(req, KV1_PREFIX, err);
}

static int kv1_delete(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	return kv__plain_delete(req, KV1_PREFIX, err);
}

static int kv1_list(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	return kv__plain_list(req, KV1_PREFIX, resp, err);
}

/* No field schema: the body is the secret, and declared fields would be
 * converted (and could be rejected) instead of stored verbatim. */
static const struct path_def kv1_paths[] = {
	{.pattern = "{path**}",
	 .ops = {{LOP_READ, kv1_read},
		 {LOP_CREATE, kv1_write},
		 {LOP_UPDATE, kv1_write},
		 {LOP_DELETE, kv1_delete},
		 {LOP_LIST, kv1_list}},
	 .exists = kv1_exists,
	 .help = "Pass-through secret storage: read, write, delete and list arbitrary JSON "
		 "objects. A \"ttl\" key is reported as the read's lease duration.",
	 .allow_unknown_fields = true},
	{NULL},
};

/* ---- instance ---- */

/* options.version: absent, "", "1" or 1 -> 1; "2" or 2 -> 2. */
static int parse_version(const json_t *options, int *out, struct verr *err)
{
	const json_t *v = options ? json_object_get(options, "version") : NULL;
	*out = 1;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		if (x == 0 || x == 1 || x == 2) {
			*out = x == 2 ? 2 : 1;
			return 0;
		}
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!*s || !strcmp(s, "1"))
			return 0;
		if (!strcmp(s, "2")) {
			*out = 2;
			return 0;
		}
	}
	return verr_set(err, VERR_INVALID, "invalid kv version: must be 1 or 2");
}

static int64_t mount_default_ttl(const json_t *config)
{
	const json_t *v = config ? json_object_get(config, "default_lease_ttl") : NULL;
	int64_t secs = 0;
	if (json_is_integer(v))
		secs = json_integer_value(v);
	else if (json_is_string(v) && duration_parse(&secs, json_string_value(v), NULL))
		secs = 0;
	return secs > 0 ? secs : KV_SYSTEM_DEFAULT_TTL;
}

static void kv_cleanup(void *inst)
{
	struct kv_backend *b = inst;
	if (!b)
		return;
	for (int i = 0; i < KV_STRIPES; i++)
		pthread_rwlock_destroy(&b->stripes[i]);
	pthread_mutex_destroy(&b->cfg_lock);
	free(b);
}

static int kv_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	int version;
	int rc = parse_version(mi->options, &version, err);
	if (rc)
		return rc;
	struct kv_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	b->version = version;
	b->default_ttl = mount_default_ttl(mi->config);
	pthread_mutex_init(&b->cfg_lock, NULL);
	for (int i = 0; i < KV_STRIPES; i++)
		pthread_rwlock_init(&b->stripes[i], NULL);
	b->view = mi->storage;
	if (version == 2 && mi->storage) {
		rc = kv2__load_config(b, mi->storage, err);
		if (rc) {
			kv_cleanup(b);
			return rc;
		}
	}
	*out = b;
	return 0;
}

/* Active node only: a v1 mount tuned to v2 (or a v2 mount whose upgrade a
 * crash interrupted) is migrated in place, then its config re-read. */
static int kv_initialize(void *inst, struct verr *err)
{
	struct kv_backend *b = inst;
	if (b->version != 2 || !b->view)
		return 0;
	int rc = kv2__upgrade(b->view, err);
	if (!rc)
		rc = kv2__load_config(b, b->view, err);
	return rc;
}

static const struct path_def *kv_paths(void *inst)
{
	const struct kv_backend *b = inst;
	return b && b->version == 2 ? kv2__paths() : kv1_paths;
}

const struct backend_ops kv_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "kv",
	.init = kv_init,
	.initialize = kv_initialize,
	.cleanup = kv_cleanup,
	.paths = kv_paths,
	.pure_reads = true,
};
