/*
 * auth_helpers.h - harness for the auth method unit tests: an in-memory
 * physical with a mount's storage view, a backend instance made through its
 * backend_ops, and a request runner that goes through framework_handle as
 * the core does (with a client address for CIDR checks).
 */
#ifndef COFFER_TESTS_AUTH_HELPERS_H
#define COFFER_TESTS_AUTH_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "logical/logical.h"

struct at {
	struct physical *phys;
	struct storage_view view;
	const struct backend_ops *ops;
	void *inst;
	const char *remote_addr;      /* default "127.0.0.1" */
	struct logical_response resp; /* of the last at_do */
	struct verr err;
};

static inline void at_open(struct at *t, const struct backend_ops *ops)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(physical_inmem_new(&t->phys, NULL, NULL), 0);
	storage_view_init(&t->view, t->phys, "auth/uuid-1/");
	t->ops = ops;
	t->remote_addr = "127.0.0.1";
	struct mount_info mi = {.path = "auth/x/", .uuid = "uuid-1", .accessor = "auth_x_1",
				.type = ops->type, .storage = &t->view};
	struct verr err = {0};
	int rc = ops->init(&t->inst, &mi, &err);
	if (rc == 0 && ops->initialize) /* what the active node does next */
		rc = ops->initialize(t->inst, &err);
	if (rc)
		print_error("init: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

/* What the core does at unseal: a new instance over the same storage. */
static inline void at_reinit(struct at *t)
{
	t->ops->cleanup(t->inst);
	struct mount_info mi = {.path = "auth/x/", .uuid = "uuid-1", .accessor = "auth_x_1",
				.type = t->ops->type, .storage = &t->view};
	assert_int_equal(t->ops->init(&t->inst, &mi, NULL), 0);
	if (t->ops->initialize)
		assert_int_equal(t->ops->initialize(t->inst, NULL), 0);
}

static inline void at_close(struct at *t)
{
	logical_response_reset(&t->resp);
	t->ops->cleanup(t->inst);
	physical_close(t->phys);
}

/* Run one request; `data` (may be NULL) is consumed. */
static inline int at_do(struct at *t, enum logical_op op, const char *path, json_t *data)
{
	logical_response_reset(&t->resp);
	memset(&t->err, 0, sizeof(t->err));
	if (!data)
		data = json_object();
	struct logical_request req = {.op = op, .rel_path = path, .data = data,
				      .storage = &t->view, .backend = t->inst,
				      .mount_type = t->ops->type, .remote_addr = t->remote_addr};
	int rc = framework_handle(t->ops->paths(t->inst), &req, &t->resp, &t->err);
	json_decref(data);
	return rc;
}

/* The backend's auth_renew handler with a token's internal data. */
static inline int at_renew(struct at *t, json_t *internal)
{
	logical_response_reset(&t->resp);
	memset(&t->err, 0, sizeof(t->err));
	struct logical_request req = {.op = LOP_RENEW, .rel_path = "", .data = NULL,
				      .storage = &t->view, .backend = t->inst,
				      .secret_internal = internal};
	int rc = t->ops->auth_renew(&req, &t->resp, &t->err);
	json_decref(internal);
	return rc;
}

static inline json_t *at_data(struct at *t, const char *key)
{
	return json_object_get(t->resp.data, key);
}

static inline const char *at_str(struct at *t, const char *key)
{
	json_t *v = at_data(t, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

#endif
