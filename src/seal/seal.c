/*
 * seal.c - the seal_*() wrappers (seal.h): the core calls these, never the
 * function pointers, so a seal type can be wrapped (tests inject faults)
 * without the core knowing.
 */
#include "seal/seal.h"

#include <stdlib.h>

int seal_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
	      size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	*out = NULL;
	*out_len = 0;
	if (s->ops->needs_kek && !kek)
		return verr_set(err, VERR_INTERNAL, "the %s seal needs the combined key", s->ops->type);
	return s->ops->wrap(s, kek, kek_len, root, root_len, out, out_len, err);
}

int seal_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
		size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err)
{
	*root = NULL;
	*root_len = 0;
	if (s->ops->needs_kek && !kek)
		return verr_set(err, VERR_INTERNAL, "the %s seal needs the combined key", s->ops->type);
	return s->ops->unwrap(s, kek, kek_len, blob, blob_len, root, root_len, err);
}

const char *seal_type(const struct seal *s)
{
	return s->ops->type;
}

bool seal_recovery_keys(const struct seal *s)
{
	return s->ops->recovery_keys;
}

bool seal_needs_kek(const struct seal *s)
{
	return s->ops->needs_kek;
}

const char *seal_root_path(const struct seal *s)
{
	return s->ops->root_path;
}

void seal_close(struct seal *s)
{
	if (s)
		s->ops->close(s);
}

int seal_reload(struct seal *s, const json_t *conf, struct verr *err)
{
	return s && s->ops->reload ? s->ops->reload(s, conf, err) : 0;
}

void seal_key_id(struct seal *s, char *buf, size_t cap)
{
	if (cap)
		buf[0] = '\0';
	if (s && s->ops->key_id && cap)
		s->ops->key_id(s, buf, cap);
}
