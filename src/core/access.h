/*
 * access.h - who is asking and what may they do (access.c): a token's entry
 * from the token store, its ACL from the policy store, capabilities, use
 * counts, and the token a login issues. The pipeline and the sys backend
 * share these; nothing here routes or writes mounts.
 * Thread-safety: any thread, while the core is ACTIVE (the stores exist).
 */
#ifndef COFFER_CORE_ACCESS_H
#define COFFER_CORE_ACCESS_H

#include <stdbool.h>

#include "core/core_int.h"

struct mount_entry;
struct token_entry;

struct access_result {
	bool allowed;
	bool sudo;
	bool is_root;
};

/* The entry of a raw token (VERR_DENIED "permission denied" when unknown). */
int access_token_lookup(struct core *c, const char *raw, struct token_entry **out,
			struct verr *err);
int access_token_lookup_accessor(struct core *c, const char *accessor,
				 struct token_entry **out, struct verr *err);
/* wrap_ttl: the request's X-Vault-Wrap-TTL in seconds (0: not wrapped),
 * checked against min_wrapping_ttl / max_wrapping_ttl rules. */
int access_acl_check(struct core *c, const struct token_entry *te, enum logical_op op,
		     const char *path, const json_t *data, int64_t wrap_ttl,
		     struct access_result *out, struct verr *err);
int access_capabilities(struct core *c, const struct token_entry *te, const char *path,
			json_t **out, struct verr *err);
/* *out = the token holds some capability other than deny on the mount
 * path (ending in '/') or on any path below it (sys/internal/ui/mounts). */
int access_any_below(struct core *c, const struct token_entry *te, const char *path,
		     bool *out, struct verr *err);
int access_token_use(struct core *c, const struct token_entry *te, bool *revoke_after,
		     struct verr *err);
void access_token_revoke(struct core *c, const struct token_entry *te);
/* resp->auth from a login handler -> a token in resp->auth_out. */
int access_issue_login_token(struct core *c, struct mount_entry *m,
			     struct logical_request *req, struct logical_response *resp,
			     struct verr *err);
/* The root token (init, generate-root) and dev mode's fixed-id root token. */
int access_root_token(struct core *c, char **out, struct verr *err);
int access_root_token_with_id(struct core *c, const char *id, struct verr *err);

#endif
