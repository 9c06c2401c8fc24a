/*
 * core_int.h - the core's internal layout, shared by core/ files only (and the
 * server start-up code, which creates the core).
 *
 * DESIGN
 * States: uninitialized -> (sys/init) -> sealed <-> (sys/unseal | sys/seal)
 * -> unsealed. `state_lock` is a rwlock: every request holds it for reading
 * for its whole life; unseal completion, seal and shutdown take it for
 * writing. A request cannot take it for writing itself (it already reads), so
 * sys/seal marks `seal_requested` and the pipeline performs the seal after
 * releasing its read lock.
 * Storage layout: below the barrier (encrypted):
 *   core/mounts, core/auth     mount tables (JSON)
 *   sys/token/...              token store        sys/policy/...  policies
 *   logical/<uuid>/...         secrets engine views   auth/<uuid>/... auth views
 * Outside the barrier (plain physical): core/seal-config (JSON) and
 * core/shamir-root (root key sealed under the Shamir KEK, AES-256-GCM).
 * Mount entries are refcounted so a mount can be disabled while requests that
 * already routed to it finish.
 */
#ifndef COFFER_CORE_CORE_INT_H
#define COFFER_CORE_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "core/logical.h"

struct barrier;
struct token_store;
struct policy_store;
struct expiration;
struct audit_broker;
struct audit_device_ops;

struct mount_entry {
	char *path;        /* "secret/", "auth/userpass/", "sys/" */
	char *type;
	char *description;
	char *uuid;
	char *accessor;
	json_t *config;    /* {default_lease_ttl, max_lease_ttl, ...} */
	json_t *options;   /* {version: "2"} */
	bool local, seal_wrap, is_auth;
	int64_t created;
	struct storage_view view;
	const struct backend_ops *ops;
	void *inst;
	_Atomic int refs;
};

struct core_opts {
	struct physical *phys;               /* owned by the core from core_new */
	int64_t default_lease_ttl, max_lease_ttl;
	const struct backend_ops *const *backends; /* NULL-terminated registry */
	const struct audit_device_ops *const *audit_types; /* NULL-terminated, may be NULL */
	const char *storage_type;
	const char *api_addr, *cluster_addr, *cluster_name;
	bool allow_audit_log_prefixing;
	/* policy text parser (HCL or JSON -> normalised JSON) */
	int (*policy_parser)(json_t **out, const char *text, size_t len, struct verr *err);
};

struct unseal_progress {
	uint8_t *parts[256];
	size_t lens[256];
	int n;
	char nonce[40];
};

struct rekey_state {
	bool started;
	char nonce[40];
	int new_shares, new_threshold;
	struct unseal_progress prog;
};

struct genroot_state {
	bool started;
	char nonce[40];
	char otp[64];
	struct unseal_progress prog;
};

struct core {
	pthread_rwlock_t state_lock;
	pthread_mutex_t unseal_lock;  /* guards progress/rekey/genroot */
	struct core_opts o;
	struct physical *phys;
	struct barrier *barrier;
	struct physical *bphys;       /* barrier shim */
	_Atomic bool sealed;
	_Atomic bool seal_requested;
	bool standby;
	int64_t active_since;
	char cluster_id[40];
	char cluster_name[64];

	struct unseal_progress unseal;
	struct rekey_state rekey;
	struct genroot_state genroot;

	/* valid while unsealed */
	pthread_rwlock_t mounts_lock;
	struct mount_entry **mounts;  /* secret + auth mounts, any order */
	size_t nmounts, capmounts;
	struct storage_view sys_view;
	struct storage_view token_view;
	struct storage_view policy_view;
	struct token_store *tokens;
	struct policy_store *policies;
	struct expiration *expire;
	struct audit_broker *audit;
};

/* public to the server start-up code */
int core_new(struct core **out, const struct core_opts *o, struct verr *err);
void core_free(struct core *c);
bool core_sealed(struct core *c);
void core_shutdown_seal(struct core *c);
int core_dev_setup(struct core *c, const char *root_token_id, char **out_root,
		   char **out_key, struct verr *err);

/* seal.c */
int core__seal_status(struct core *c, json_t **out);
int core__init(struct core *c, const json_t *req, json_t **out, struct verr *err);
int core__unseal_key(struct core *c, const json_t *req, json_t **out, struct verr *err);
int core__seal_now(struct core *c, struct verr *err);
int core__post_unseal(struct core *c, struct verr *err);
void core__pre_seal(struct core *c);
int core__rekey(struct core *c, enum logical_op op, const char *which, const json_t *data,
		json_t **out, struct verr *err);
int core__generate_root(struct core *c, enum logical_op op, const char *which,
			const json_t *data, json_t **out, struct verr *err);
int core__decode_key(const char *s, uint8_t **out, size_t *len);

/* mounts.c */
int core__mounts_load(struct core *c, struct verr *err);
void core__mounts_unload(struct core *c);
struct mount_entry *core__route(struct core *c, const char *path); /* refcounted */
void core__mount_release(struct mount_entry *m);
int core__mount_enable(struct core *c, bool is_auth, const char *path, const json_t *body,
		       struct verr *err);
int core__mount_disable(struct core *c, bool is_auth, const char *path, struct verr *err);
int core__mount_tune(struct core *c, bool is_auth, const char *path, const json_t *body,
		     struct verr *err);
int core__mount_remount(struct core *c, const char *from, const char *to, struct verr *err);
json_t *core__mount_json(const struct mount_entry *m);
json_t *core__mounts_list(struct core *c, bool is_auth);
struct mount_entry *core__mount_get(struct core *c, bool is_auth, const char *path);
const struct backend_ops *core__backend_type(struct core *c, const char *type);
int core__valid_path(const char *path, struct verr *err);

/* sys.c */
extern const struct backend_ops sys_backend_ops;

/* misc */
void core__raw_json(struct logical_response *resp, json_t *obj);
void core__uuid(char out[37]);
void core__rand_base62(char *out, size_t n);
char *core__rfc3339(int64_t unix_secs, long nanos);
int64_t core__now(void);

#endif
