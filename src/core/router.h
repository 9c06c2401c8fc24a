/*
 * router.h - the mount tables and longest-prefix routing (router.c).
 *
 * Secret mounts and auth mounts live in one array of refcounted entries
 * (auth paths carry their "auth/" prefix) guarded by c->mounts_lock. The
 * router knows backends (struct backend_ops) and storage views, nothing of
 * leases, tokens or audit: whoever removes a mount revokes its leases first
 * (sys.c). Tables persist below the barrier at core/mounts and core/auth.
 *
 * Life: router_load (reads only: tables, or the default mounts in memory
 * when there are none yet; every backend's init) -> router_initialize
 * (active node: persists tables that were absent, runs every backend's
 * initialize) -> requests -> router_unload.
 * Thread-safety: every function may be called from any thread; entries
 * returned by route/get carry a reference the caller drops with
 * router_release.
 */
#ifndef COFFER_CORE_ROUTER_H
#define COFFER_CORE_ROUTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core_int.h"
#include "logical/logical.h"

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
	struct system_view sys;  /* ctx = this entry */
	struct core *core;       /* back pointer for the system view */
	const struct backend_ops *ops;
	void *inst;
	_Atomic int refs;
};

int router_load(struct core *c, struct verr *err);
int router_initialize(struct core *c, struct verr *err);
void router_unload(struct core *c);

/* The mount serving path (longest prefix; "secret" matches "secret/"), with
 * a reference, or NULL. */
struct mount_entry *router_route(struct core *c, const char *path);
/* The mount at exactly path ("secret", "secret/"; auth paths without
 * "auth/"), with a reference, or NULL. */
struct mount_entry *router_get(struct core *c, bool is_auth, const char *path);
void router_release(struct mount_entry *m);
/* Call fn on every mount (each held by a reference for the call, the table
 * lock not held, so fn may take its time). */
void router_foreach(struct core *c, void (*fn)(struct mount_entry *m, void *ctx), void *ctx);

/* sys/mounts, sys/auth: enable, disable (the caller revoked the mount's
 * leases), tune, remount. Vault's checks and messages. */
int router_mount(struct core *c, bool is_auth, const char *path, const json_t *body,
		 struct verr *err);
int router_unmount(struct core *c, bool is_auth, const char *path, struct verr *err);
int router_tune(struct core *c, bool is_auth, const char *path, const json_t *body,
		struct verr *err);
int router_remount(struct core *c, const char *from, const char *to, struct verr *err);
/* The full path ("auth/x/" or "secret/") of an existing mount that may be
 * disabled; VERR_INVALID for protected types; 0 with *out = NULL when there
 * is no such mount (Vault: disabling a missing mount succeeds). */
int router_unmount_target(struct core *c, bool is_auth, const char *path, char **out,
			  struct verr *err);

json_t *router_mount_json(const struct mount_entry *m);
/* The server's TTLs (config, else Vault's 768h), seconds. */
int64_t router_server_default_ttl(const struct core *c);
int64_t router_server_max_ttl(const struct core *c);
json_t *router_list(struct core *c, bool is_auth);

/* A storage key (as stored below the barrier, "logical/<uuid>/...") changed
 * behind the backends' backs: call the owning mount's invalidate hook with
 * the key relative to its view. Returns how many mounts were told. */
int router_invalidate(struct core *c, const char *key);

/* A request path's syntax (UTF-8, no control characters, no empty, "." or
 * ".." segments): 0, or VERR_INVALID / VERR_NOT_FOUND (empty) naming it. */
int router_valid_path(const char *path, struct verr *err);

#endif
