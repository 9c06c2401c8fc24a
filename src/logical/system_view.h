/*
 * system_view.h - what an engine may ask of the core (Vault's
 * logical.SystemView): the clock, the mount's effective TTLs, whether this
 * node is a standby, random bytes and a logger. Engines get a system view in
 * struct mount_info (at init) and in every request (req->sys); they never
 * see struct core.
 *
 * Leases are not registered through the view: a handler returns a
 * struct logical_secret in its response and the core registers the lease
 * (logical.h).
 *
 * The sysview_*() wrappers accept a NULL view (unit tests that build
 * requests by hand): the wall clock, Vault's 768h defaults, not a standby,
 * OpenSSL's generator and the process logger.
 * Thread-safety: every call may be made from any thread.
 */
#ifndef COFFER_LOGICAL_SYSTEM_VIEW_H
#define COFFER_LOGICAL_SYSTEM_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"
#include "util/verr.h"

struct system_view_ops {
	int64_t (*now_ms)(void *ctx);              /* unix time, milliseconds */
	int64_t (*default_lease_ttl)(void *ctx);   /* seconds: mount, else server */
	int64_t (*max_lease_ttl)(void *ctx);       /* seconds: mount, else server */
	bool (*standby)(void *ctx);                /* true: serve no writes */
	/* n random bytes; 0 or VERR_INTERNAL when the generator failed */
	int (*random_bytes)(void *ctx, uint8_t *buf, size_t n, struct verr *err);
	/* one line, already formatted; the core prefixes the mount path */
	void (*log)(void *ctx, enum log_level lvl, const char *msg);
	/* the HCL of password policy `name` (sys/policies/password), malloc'd;
	 * VERR_NOT_FOUND when there is none */
	int (*password_policy)(void *ctx, const char *name, char **hcl, struct verr *err);
};

struct system_view {
	const struct system_view_ops *ops;
	void *ctx;
};

int64_t sysview_now_ms(const struct system_view *sv);
int64_t sysview_now(const struct system_view *sv); /* seconds */
int64_t sysview_default_lease_ttl(const struct system_view *sv);
int64_t sysview_max_lease_ttl(const struct system_view *sv);
bool sysview_standby(const struct system_view *sv);
int sysview_random(const struct system_view *sv, uint8_t *buf, size_t n, struct verr *err);
/* VERR_UNSUPPORTED without a core behind the view. */
int sysview_password_policy(const struct system_view *sv, const char *name, char **hcl,
			    struct verr *err);
void sysview_log(const struct system_view *sv, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
