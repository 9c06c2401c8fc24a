/*
 * cubbyhole.c - the cubbyhole secrets engine (type "cubbyhole"): per-token
 * private key/value storage, mounted by default at cubbyhole/.
 *
 * Every key lives under "<token-hash>/" in the mount's view, where the hash
 * is req->client_token_hash (a salted, non-secret id of the token set by the
 * core). A request can only name paths below its own prefix, so no other
 * token - root included, whose hash differs - can read, list or overwrite
 * it. Without a token hash (batch tokens, unauthenticated calls) every
 * operation is a 400, as in Vault. The core calls cubbyhole_destroy() when
 * it revokes a token. Reads carry no lease. Operations otherwise behave as
 * KV v1 (kv_common.c).
 */
#include "secrets/secrets.h"

#include <stdlib.h>
#include <string.h>

#include "secrets/kv_int.h"
#include "util/log.h"

/* The caller's prefix "<hash>/" (malloc'd), or VERR_INVALID. */
static int token_prefix(const char *hash, char **out, struct verr *err)
{
	*out = NULL;
	if (!hash || !*hash || strchr(hash, '/') || !strcmp(hash, ".") || !strcmp(hash, ".."))
		return verr_set(err, VERR_INVALID,
				"cubbyhole operations are only supported by \"service\" type tokens");
	*out = kv__join(hash, "/");
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int cubby_exists(struct logical_request *req, struct verr *err)
{
	char *pfx;
	int rc = token_prefix(req->client_token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = kv__plain_exists(req, pfx, err);
	free(pfx);
	return rc;
}

static int cubby_read(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	char *pfx;
	int rc = token_prefix(req->client_token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = kv__plain_read(req, pfx, &resp->data, err);
	free(pfx);
	return rc;
}

static int cubby_write(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char *pfx;
	int rc = token_prefix(req->client_token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = kv__plain_write(req, pfx, err);
	free(pfx);
	return rc;
}

static int cubby_delete(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	char *pfx;
	int rc = token_prefix(req->client_token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = kv__plain_delete(req, pfx, err);
	free(pfx);
	return rc;
}

static int cubby_list(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	char *pfx;
	int rc = token_prefix(req->client_token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = kv__plain_list(req, pfx, resp, err);
	free(pfx);
	return rc;
}

static const struct path_def cubby_paths[] = {
	{.pattern = "{path**}",
	 .ops = {{LOP_READ, cubby_read},
		 {LOP_CREATE, cubby_write},
		 {LOP_UPDATE, cubby_write},
		 {LOP_DELETE, cubby_delete},
		 {LOP_LIST, cubby_list}},
	 .exists = cubby_exists,
	 .help = "Per-token private secret storage: read, write, delete and list JSON objects "
		 "visible only to the token that wrote them.",
	 .allow_unknown_fields = true},
	{NULL},
};

int cubbyhole_destroy(struct storage_view *view, const char *token_hash, struct verr *err)
{
	char *pfx;
	int rc = token_prefix(token_hash, &pfx, err);
	if (rc)
		return rc;
	rc = view_clear_prefix(view, pfx, err);
	free(pfx);
	return rc;
}

/* The instance is the mount's view (borrowed: it lives as long as the
 * mount), for the token_revoked hook; requests carry their own. */
static int cubby_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = mi->storage;
	return 0;
}

static void cubby_cleanup(void *inst)
{
}

/* A revoked token's cubbyhole goes with it (the core's token_revoked hook). */
static void cubby_token_revoked(void *inst, const char *token_hash)
{
	struct verr e = {0};
	if (inst && cubbyhole_destroy(inst, token_hash, &e))
		log_warn("cubbyhole", "failed to destroy a revoked token's cubbyhole: %s", e.msg);
}

static const struct path_def *cubby_table(void *inst)
{
	return cubby_paths;
}

const struct backend_ops cubbyhole_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "cubbyhole",
	.init = cubby_init,
	.cleanup = cubby_cleanup,
	.paths = cubby_table,
	.token_revoked = cubby_token_revoked,
	.local_default = true,
	.pure_reads = true,
};
