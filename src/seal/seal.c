/*
 * seal.c - the seal_*() wrappers (seal.h): the core calls these, never the
 * function pointers, so a seal type can be wrapped (tests inject faults)
 * without the core knowing.
 */
#include "seal/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- a member that could not be opened (seal_unavailable_new) ---- */

struct unavailable {
	struct seal base;
	struct seal_ops ops; /* per instance: its type is the stanza's */
	char type[32];
	int code;
	char msg[VERR_MSG_MAX];
};

static int unavailable_wrap(struct seal *s, const uint8_t *kek, size_t kek_len,
			    const uint8_t *root, size_t root_len, uint8_t **out, size_t *out_len,
			    struct verr *err)
{
	(void)kek, (void)kek_len, (void)root, (void)root_len, (void)out, (void)out_len;
	const struct unavailable *u = (const struct unavailable *)s;
	return verr_set(err, u->code, "%s (at start; restart once it is fixed)", u->msg);
}

static int unavailable_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len,
			      const uint8_t *blob, size_t blob_len, uint8_t **root, size_t *root_len,
			      struct verr *err)
{
	(void)blob, (void)blob_len, (void)root, (void)root_len;
	return unavailable_wrap(s, kek, kek_len, NULL, 0, NULL, NULL, err);
}

static void unavailable_close(struct seal *s)
{
	free(s);
}

int seal_unavailable_new(struct seal **out, const char *type, const struct verr *why,
			 struct verr *err)
{
	*out = NULL;
	struct unavailable *u = calloc(1, sizeof(*u));
	if (!u)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	snprintf(u->type, sizeof(u->type), "%s", type);
	snprintf(u->msg, sizeof(u->msg), "%s", why->msg);
	u->code = why->code ? why->code : VERR_UNAVAILABLE;
	u->ops = (struct seal_ops){.version = SEAL_OPS_VERSION, .type = u->type, .recovery_keys = true,
				   .root_path = "core/seal-unavailable", .wrap = unavailable_wrap,
				   .unwrap = unavailable_unwrap, .close = unavailable_close};
	u->base.ops = &u->ops;
	*out = &u->base;
	return 0;
}
