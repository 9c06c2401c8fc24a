/*
 * core_helpers.h - harness for the core's own unit tests (state, pipeline,
 * router): a real core over an inmem store seen through the fault shim
 * (src/physical/fault.c), so tests count and fail storage calls, optionally
 * with an inmem HA lock shared by several cores; init + unseal through the
 * same entry points the HTTP layer uses; and a request runner over
 * core_handle_request.
 */
#ifndef COFFER_TESTS_CORE_HELPERS_H
#define COFFER_TESTS_CORE_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/core_int.h"
#include "core/state.h"
#include "core/unseal.h"
#include "physical/physical.h"

struct node {
	struct core *c;
	struct physical *shim;       /* the core's storage: fault shim over `store` */
	struct physical_ha *ha;      /* this node's handle on the shared lock, or NULL */
	char api_addr[64];
};

/* A shared inmem store (ha: with an HA lock). */
static inline struct physical *store_new(bool ha)
{
	json_t *conf = json_pack("{s:s}", "ha_enabled", ha ? "true" : "false");
	struct physical *p = NULL;
	assert_int_equal(physical_inmem_new(&p, conf, NULL), 0);
	json_decref(conf);
	return p;
}

/* A sealed core over `store` (borrowed; shared between nodes). */
static inline void node_open(struct node *n, struct physical *store, bool ha, const char *addr,
			     const struct backend_ops *const *backends,
			     const struct audit_device_ops *const *audit_types, int periodic_ms)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->api_addr, sizeof(n->api_addr), "%s", addr);
	assert_int_equal(physical_fault_new(&n->shim, store, false, NULL), 0);
	if (ha)
		assert_int_equal(physical_inmem_ha_new(&n->ha, store, NULL), 0);
	struct core_opts o = {.phys = n->shim, .ha = n->ha, .default_lease_ttl = 3600,
			      .max_lease_ttl = 7200, .backends = backends,
			      .audit_types = audit_types, .api_addr = n->api_addr,
			      .periodic_interval_ms = periodic_ms, .storage_type = "inmem"};
	struct verr err = {0};
	int rc = core_new(&n->c, &o, &err);
	if (rc)
		print_error("core_new: %s\n", err.msg);
	assert_int_equal(rc, 0);
}

static inline void node_close(struct node *n)
{
	core_free(n->c); /* closes the shim, not the store */
	physical_inmem_ha_free(n->ha);
}

/* sys/init with one share; *key and *root are malloc'd. */
static inline void node_init(struct node *n, char **key, char **root)
{
	json_t *in = json_pack("{s:i,s:i}", "secret_shares", 1, "secret_threshold", 1);
	json_t *out = NULL;
	struct verr err = {0};
	int rc = unseal_init(n->c, in, &out, &err);
	if (rc)
		print_error("init: %s\n", err.msg);
	assert_int_equal(rc, 0);
	*key = strdup(json_string_value(json_array_get(json_object_get(out, "keys_base64"), 0)));
	*root = strdup(json_string_value(json_object_get(out, "root_token")));
	json_decref(in);
	json_decref(out);
}

static inline int node_unseal(struct node *n, const char *key, struct verr *err)
{
	json_t *in = json_pack("{s:s}", "key", key);
	json_t *out = NULL;
	int rc = unseal_submit(n->c, in, &out, err);
	json_decref(in);
	json_decref(out);
	return rc;
}

/* Wait up to ms for the node to reach state st. */
static inline bool node_wait(struct node *n, enum core_state st, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (state_get(n->c) == st)
			return true;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return state_get(n->c) == st;
}

static inline struct physical_fault_counts node_counts(struct node *n)
{
	struct physical_fault_counts fc;
	physical_fault_counts(n->shim, &fc);
	return fc;
}

/* One request through core_handle_request; body is JSON text or NULL. The
 * response stays in *resp (caller resets it). */
static inline int node_req(struct node *n, const char *token, enum logical_op op, const char *path,
			   const char *body, struct logical_response *resp, struct verr *err)
{
	memset(resp, 0, sizeof(*resp));
	verr_clear(err);
	json_t *data = body ? json_loads(body, 0, NULL) : json_object();
	assert_non_null(data);
	struct logical_request r = {.op = op, .path = path, .data = data, .client_token = token,
				    .remote_addr = "127.0.0.1", .request_id = "test"};
	int rc = core_handle_request(n->c, &r, resp, err);
	json_decref(data);
	return rc;
}

/* node_req that only wants the code. */
static inline int node_do(struct node *n, const char *token, enum logical_op op, const char *path,
			  const char *body)
{
	struct logical_response resp;
	struct verr err;
	int rc = node_req(n, token, op, path, body, &resp, &err);
	logical_response_reset(&resp);
	return rc;
}

/* One initialised, unsealed node over its own store. */
struct solo {
	struct physical *store;
	struct node n;
	char *key, *root;
};

static inline struct solo *solo_open(const struct backend_ops *const *backends,
				     const struct audit_device_ops *const *audit_types,
				     int periodic_ms)
{
	struct solo *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->store = store_new(false);
	node_open(&f->n, f->store, false, "http://a:8200", backends, audit_types, periodic_ms);
	node_init(&f->n, &f->key, &f->root);
	struct verr err = {0};
	assert_int_equal(node_unseal(&f->n, f->key, &err), 0);
	return f;
}

static inline void solo_close(struct solo *f)
{
	node_close(&f->n);
	physical_close(f->store);
	free(f->key);
	free(f->root);
	free(f);
}

#endif
