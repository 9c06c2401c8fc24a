/*
 * kv_helpers.h - a tiny harness for the KV and cubbyhole unit tests: an
 * in-memory physical with a mount's storage view, an engine instance made
 * through its backend_ops, and a request runner that goes through
 * framework_handle exactly as the core does.
 */
#ifndef COFFER_TESTS_SECRETS_KV_HELPERS_H
#define COFFER_TESTS_SECRETS_KV_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "logical/logical.h"
#include "secrets/secrets.h"

struct kvt {
	struct physical *phys;
	struct storage_view view;
	const struct backend_ops *ops;
	void *inst;
	struct logical_response resp; /* of the last kvt_do */
	struct verr err;
};

static inline void kvt_init_inst(struct kvt *t, json_t *options)
{
	struct mount_info mi = {.path = "secret/", .uuid = "uuid-1", .accessor = "kv_1",
				.type = t->ops->type, .options = options,
				.storage = &t->view};
	struct verr err = {0};
	int rc = t->ops->init(&t->inst, &mi, &err);
	if (rc == 0 && t->ops->initialize) /* what the active node does next */
		rc = t->ops->initialize(t->inst, &err);
	if (rc)
		print_error("init: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

/* version: NULL (v1), "1" or "2" */
static inline void kvt_open(struct kvt *t, const struct backend_ops *ops, const char *version)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(physical_inmem_new(&t->phys, NULL, NULL), 0);
	storage_view_init(&t->view, t->phys, "logical/uuid-1/");
	t->ops = ops;
	json_t *opts = version ? json_pack("{s:s}", "version", version) : json_object();
	kvt_init_inst(t, opts);
	json_decref(opts);
}

/* What the core does when the mount is tuned: cleanup, then init again. */
static inline void kvt_reinit(struct kvt *t, json_t *options)
{
	t->ops->cleanup(t->inst);
	t->inst = NULL;
	kvt_init_inst(t, options);
}

static inline void kvt_close(struct kvt *t)
{
	logical_response_reset(&t->resp);
	t->ops->cleanup(t->inst);
	physical_close(t->phys);
}

/* Run one request; `data` is consumed. Returns the handler's code; the
 * response stays in t->resp until the next call. */
static inline int kvt_do_as(struct kvt *t, const char *token_hash, enum logical_op op,
			    const char *path, json_t *data)
{
	logical_response_reset(&t->resp);
	memset(&t->err, 0, sizeof(t->err));
	struct logical_request req = {.op = op, .rel_path = path, .data = data,
				      .storage = &t->view, .backend = t->inst,
				      .client_token_hash = token_hash, .mount_type = t->ops->type};
	int rc = framework_handle(t->ops->paths(t->inst), &req, &t->resp, &t->err);
	json_decref(data);
	return rc;
}

static inline int kvt_do(struct kvt *t, enum logical_op op, const char *path, json_t *data)
{
	return kvt_do_as(t, "hash-a", op, path, data);
}

/* t->resp.data at a '/'-separated path of object keys ("metadata/version"). */
static inline json_t *kvt_get(struct kvt *t, const char *path)
{
	json_t *cur = t->resp.data;
	const char *p = path;
	while (cur && *p) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		char key[128];
		assert_true(l < sizeof(key));
		memcpy(key, p, l);
		key[l] = '\0';
		cur = json_object_get(cur, key);
		p += l + (slash ? 1 : 0);
	}
	return cur;
}

static inline int64_t kvt_int(struct kvt *t, const char *path)
{
	json_t *v = kvt_get(t, path);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static inline const char *kvt_str(struct kvt *t, const char *path)
{
	json_t *v = kvt_get(t, path);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

#endif
