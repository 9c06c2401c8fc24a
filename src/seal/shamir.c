/*
 * shamir.c - the Shamir seal: the root key wrapped (AES-256-GCM, util/aead.h)
 * under the key combined from the unseal key shares. The shares themselves
 * are the core's business (src/core/unseal.c, util/shamir.c); this seal only
 * holds the format, so the auto seals that replace it are one file each.
 *
 * Stored at core/shamir-root, outside the barrier, bound to that path as
 * additional data.
 */
#include "seal/seal.h"

#include <stdlib.h>

#include "util/aead.h"

#define SHAMIR_ROOT_PATH "core/shamir-root"

static int shamir_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
		       size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	if (kek_len != AEAD_KEY_LEN)
		return verr_set(err, VERR_INVALID, "invalid key: wrong length");
	return aead_blob_seal(out, out_len, kek, SHAMIR_ROOT_PATH, root, root_len, err);
}

static int shamir_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len,
			 const uint8_t *blob, size_t blob_len, uint8_t **root, size_t *root_len,
			 struct verr *err)
{
	if (kek_len != AEAD_KEY_LEN)
		return verr_set(err, VERR_INVALID, "invalid key: wrong length");
	return aead_blob_open(root, root_len, kek, SHAMIR_ROOT_PATH, blob, blob_len, err);
}

static void shamir_close(struct seal *s)
{
	free(s);
}

static const struct seal_ops shamir_ops = {
	.version = SEAL_OPS_VERSION,
	.type = "shamir",
	.recovery_keys = false,
	.needs_kek = true,
	.root_path = SHAMIR_ROOT_PATH,
	.wrap = shamir_wrap,
	.unwrap = shamir_unwrap,
	.close = shamir_close,
};

int seal_shamir_new(struct seal **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	struct seal *s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	s->ops = &shamir_ops;
	*out = s;
	return 0;
}
