/*
 * logical.h - the engine SDK: the contract between the core and every
 * mounted backend (secrets engines, auth methods, the sys and token
 * backends). Engines include this header (and system_view.h) and nothing
 * from src/core/.
 *
 * A backend declares a NULL-terminated table of `struct path_def`: a path
 * pattern relative to its mount, a field schema, and one handler per
 * operation (the C form of Vault's framework.Path). The core routes a request
 * to the mount by longest prefix, checks the ACL, matches the remaining path
 * against the table (framework_route in framework.c), converts and validates
 * the body against the field schema, and calls the handler. Handlers see only
 * their mount's storage view and the parsed request.
 *
 * Pattern syntax (anchored, whole path): literal characters, plus
 *   {name}    one path segment, at least one character, no '/'
 *   {name*}   one or more characters, '/' allowed   (e.g. "data/{path*}")
 *   {name**}  zero or more characters, '/' allowed  (e.g. "metadata/{path**}")
 *   a trailing "/?" makes a final slash optional.
 * Captured values are fields too (request_str(req, "name")).
 *
 * Ownership: the core owns the request; a handler fills the response and the
 * core frees it (logical_response_reset). Thread-safety: handlers run on
 * HTTP worker threads concurrently; a backend guards its own state.
 */
#ifndef COFFER_LOGICAL_LOGICAL_H
#define COFFER_LOGICAL_LOGICAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "logical/system_view.h"
#include "physical/physical.h"
#include "util/verr.h"

enum logical_op {
	LOP_READ = 1,
	LOP_CREATE,
	LOP_UPDATE,
	LOP_PATCH,
	LOP_DELETE,
	LOP_LIST,
	LOP_HELP,
	LOP_REVOKE, /* internal: lease revocation */
	LOP_RENEW,  /* internal: lease renewal */
};
const char *logical_op_name(enum logical_op op); /* "read", "create", ... */

/* A prefix view over a physical (normally the barrier): every key is
 * prepended with `prefix` (e.g. "logical/<mount-uuid>/"). */
struct storage_view {
	struct physical *phys;
	char prefix[256];
};
void storage_view_init(struct storage_view *v, struct physical *phys, const char *prefix);
int view_get(const struct storage_view *v, const char *key, uint8_t **out, size_t *len,
	     struct verr *err);
int view_put(const struct storage_view *v, const char *key, const uint8_t *val, size_t len,
	     struct verr *err);
int view_delete(const struct storage_view *v, const char *key, struct verr *err);
int view_list(const struct storage_view *v, const char *prefix, char ***out, size_t *n,
	      struct verr *err);
/* JSON helpers: *out = NULL (and 0) when the key does not exist. */
int view_get_json(const struct storage_view *v, const char *key, json_t **out,
		  struct verr *err);
int view_put_json(const struct storage_view *v, const char *key, const json_t *val,
		  struct verr *err);
/* Every leaf key under prefix, relative to the view (physical_walk). */
int view_walk(const struct storage_view *v, const char *prefix, physical_walk_fn fn, void *ctx,
	      struct verr *err);
/* Delete every key under prefix (recursively). */
int view_clear_prefix(const struct storage_view *v, const char *prefix, struct verr *err);

/* The identity of the caller, as resolved by the core from the token. */
struct token_entry;

struct logical_request {
	enum logical_op op;
	const char *path;       /* full path after /v1/, normalised, no leading '/' */
	const char *mount_path; /* e.g. "secret/" or "auth/userpass/" */
	const char *rel_path;   /* path inside the mount, e.g. "data/foo" */
	const char *mount_type; /* "kv", "userpass", ... */
	const char *mount_accessor;
	const char *mount_uuid;
	json_t *mount_options;  /* borrowed: the mount's options object */
	json_t *data;           /* borrowed: request body (object) or query args */
	/* borrowed: the body as sent, for the endpoints that take a binary
	 * upload (sys/storage/raft/snapshot); data is then {} */
	const uint8_t *raw_body;
	size_t raw_body_len;
	/* or, for a large upload the HTTP layer spooled to an unlinked
	 * temporary file: the file (borrowed; read it with pread or from
	 * offset 0), raw_body_len bytes long, and raw_body NULL */
	bool raw_body_is_fd;
	int raw_body_fd;
	json_t *fields;         /* borrowed: data converted per the path's schema,
				 * plus captures; read with request_*() */
	const char *client_token;          /* raw token (never log it) */
	const struct token_entry *token;   /* NULL for unauthenticated paths */
	const char *client_token_hash;     /* salted hash of the token: a stable,
					    * non-secret id (cubbyhole keys by it) */
	const char *client_token_accessor;
	const char *display_name;          /* the token's display name ("root",
					    * "token", "userpass-alice"); NULL
					    * without a token */
	bool token_is_root;                /* the token carries the root policy */
	bool sudo;                         /* the ACL granted sudo on this path */
	const char *entity_id;
	const char *remote_addr;
	int remote_port;
	const char *request_id;
	const char *client_cert_pem;       /* TLS client certificate (PEM), then the
					    * intermediates it came with; or NULL */
	struct storage_view *storage;      /* the mount's view */
	void *backend;                     /* the mount's backend instance */
	const struct system_view *sys;     /* what the handler may ask of the core */
	json_t *secret_internal;           /* LOP_REVOKE/RENEW: the lease's data */
	int64_t lease_increment;           /* LOP_RENEW */
	int64_t lease_issue_time;          /* LOP_RENEW: unix seconds */
	json_t *headers;                   /* borrowed: selected request headers */
	int64_t wrap_ttl;                  /* X-Vault-Wrap-TTL, seconds (0: none);
					    * set by http/, the core wraps */
	/* set by http/ on an epoll event thread (core_request_inline said
	 * yes): the core must not wait on a lock or write storage for this
	 * request. If it would have to (a seal or step-down is taking the
	 * state lock, the token has a use limit), it does nothing, audits
	 * nothing, sets would_block and returns VERR_UNAVAILABLE: the caller
	 * then runs the request again on a thread that may block. */
	bool inline_only;
	bool would_block;
};

/* Field accessors (read req->fields). Strings are borrowed. */
const char *request_str(const struct logical_request *req, const char *name);
int64_t request_int(const struct logical_request *req, const char *name);
bool request_bool(const struct logical_request *req, const char *name);
/* duration fields are stored as int64 seconds */
int64_t request_duration(const struct logical_request *req, const char *name);
json_t *request_json(const struct logical_request *req, const char *name);
/* 1 when the client sent the field (not defaulted). */
bool request_has(const struct logical_request *req, const char *name);

/* What a login handler returns: the core creates the token from it. */
struct logical_auth {
	json_t *policies;        /* array of strings */
	json_t *metadata;        /* object of strings */
	char *display_name;
	int64_t ttl, max_ttl, explicit_max_ttl, period; /* seconds, 0 = default */
	int64_t num_uses;
	bool renewable;
	bool no_default_policy;
	char *token_type;        /* NULL => "service" */
	json_t *bound_cidrs;     /* array of strings, may be NULL */
	json_t *internal;        /* backend data kept with the token (for renew) */
	char *alias_name;        /* entity alias name */
};

/* A secret with a lease (dynamic credentials). */
struct logical_secret {
	int64_t ttl, max_ttl;
	bool renewable;
	json_t *internal; /* kept with the lease, given back at revoke/renew */
};

struct logical_response {
	int status;            /* 0: 200 with a body, 204 without */
	json_t *data;          /* owned; NULL for no data */
	json_t *warnings;      /* owned array or NULL */
	struct logical_secret *secret; /* owned; set => core registers a lease */
	struct logical_auth *auth;     /* owned; set on login => core issues a token */
	json_t *auth_out;      /* owned: final auth block (core sets for token create) */
	bool data_at_top;      /* sys routes: copy data keys to the body's top level */
	bool raw;              /* body is raw bytes (metrics, snapshots) */
	char *raw_body;
	size_t raw_len;
	/* or a streamed body: raw_len bytes of this file, from offset 0 (owned:
	 * the HTTP layer sends it without reading it into memory and closes it;
	 * logical_response_reset closes it when it was not sent) */
	bool raw_is_fd;
	int raw_fd;
	char *raw_content_type;
	char *redirect;        /* Location for 307 */
	json_t *lease_out;     /* core: {lease_id, lease_duration, renewable} */
	char *mount_type_out;
	/* Response wrapping. A handler may ask for its response to be wrapped
	 * (wrap_ttl > 0; the request's X-Vault-Wrap-TTL wins when shorter),
	 * with a creation path other than the request's (malloc'd or NULL).
	 * wrap_info_out is the core's: {token, accessor, ttl, creation_time,
	 * creation_path, wrapped_accessor}, set when the response was wrapped
	 * (everything else of the response is then gone). */
	int64_t wrap_ttl;
	char *wrap_creation_path;
	json_t *wrap_info_out;
};
void logical_response_reset(struct logical_response *r);
/* Append a warning (printf style). */
void logical_response_warn(struct logical_response *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void logical_auth_free(struct logical_auth *a);
void logical_secret_free(struct logical_secret *s);

typedef int (*path_handler_fn)(struct logical_request *req, struct logical_response *resp,
			       struct verr *err);

enum field_type {
	FT_STRING = 1,
	FT_INT,
	FT_BOOL,
	FT_DURATION,   /* int seconds, or "90", "1h30m", "10s" */
	FT_STRSLICE,   /* array of strings or "a,b,c" */
	FT_COMMA_STRSLICE = FT_STRSLICE,
	FT_MAP,        /* object; also accepts "k=v,k2=v2" */
	FT_ANY,        /* passed through unchanged */
	FT_NAME,       /* string, [A-Za-z0-9._-]+ */
};

struct field_def {
	const char *name;
	enum field_type type;
	const char *def;   /* default, as text ("", "0", "false", "1h"), NULL = none */
	const char *desc;
	bool required;
};

struct path_op {
	enum logical_op op;
	path_handler_fn fn;
};

#define PATH_MAX_OPS 8

struct path_def {
	const char *pattern;
	const struct field_def *fields; /* terminated by {NULL} ; may be NULL */
	struct path_op ops[PATH_MAX_OPS]; /* terminated by {0} */
	/* Optional: 1 if the target exists (POST/PUT become update), 0 if not
	 * (become create). NULL: always update. */
	int (*exists)(struct logical_request *req, struct verr *err);
	const char *help;
	bool unauthenticated; /* no token needed (login, ...) */
	bool sudo;            /* root-protected: needs sudo capability */
	bool allow_unknown_fields; /* keep unknown body keys in req->data (kv) */
};

/* What a backend instance learns about its mount at init. Every pointer is
 * borrowed and valid until cleanup. */
struct mount_info {
	const char *path;      /* "secret/" */
	const char *uuid;
	const char *accessor;
	const char *type;
	json_t *options;       /* borrowed */
	json_t *config;        /* borrowed: default_lease_ttl... */
	struct storage_view *storage;
	const struct system_view *sys; /* never NULL when the core mounts it */
	void *core_private;    /* the core's own backends (sys, token) only; NULL
				* for every engine */
};

#define BACKEND_OPS_VERSION 2

/*
 * A backend type (one per engine / auth method), registered in a table
 * above the core (src/server/registry.c). The core refuses a table whose
 * version is not BACKEND_OPS_VERSION.
 *
 * Life of an instance: init (any node, reads only) -> initialize (the
 * active node only, once it holds the write side of storage: migrations,
 * first-time keys) -> requests, periodic, invalidate, token_revoked ->
 * cleanup. A standby never calls initialize, so a backend must not write
 * from init. Every hook may be NULL.
 */
struct backend_ops {
	int version;           /* BACKEND_OPS_VERSION */
	const char *type;      /* "kv", "userpass" ... */
	bool is_auth;
	/* Create the per-mount instance. May read storage, never writes. */
	int (*init)(void **out, const struct mount_info *mi, struct verr *err);
	/* Active node only, after init: writes the instance needs before it
	 * serves (kv v1 -> v2 upgrade, a first HMAC key). */
	int (*initialize)(void *inst, struct verr *err);
	void (*cleanup)(void *inst);
	/* The path table for this instance (kv v1 and v2 differ). */
	const struct path_def *(*paths)(void *inst);
	/* Lease callbacks (may be NULL): revoke a secret / renew it. */
	path_handler_fn revoke;
	path_handler_fn renew;
	/* Auth methods: renew a token issued by this method (may be NULL:
	 * renewal allowed within the token's limits). */
	path_handler_fn auth_renew;
	/* Active node only, about once a minute (CRL rebuild, tidy, root
	 * credential rotation). Errors are logged; the next tick runs anyway. */
	int (*periodic)(void *inst, struct verr *err);
	/* A key of this mount's view changed behind the instance's back (a
	 * follower applied a replicated write): drop what it cached. `key` is
	 * relative to the view. May run on any thread, concurrently with
	 * requests. */
	void (*invalidate)(void *inst, const char *key);
	/* A token was revoked: drop what belongs to it (cubbyhole: its whole
	 * prefix). `token_hash` is the value requests carried as
	 * client_token_hash. */
	void (*token_revoked)(void *inst, const char *token_hash);
	bool local_default;     /* cubbyhole */
	/* The read, list and help handlers of this type never write (storage,
	 * an outside system) nor issue a token or a lease. The core may then
	 * record such a request's audit entry together with its response
	 * entry, in one write (pipeline.c); any other request is recorded
	 * before its handler runs. */
	bool pure_reads;
};

/* framework.c: match rel_path against a table. On match returns the def and
 * fills *captures (owned object of name->string). */
const struct path_def *framework_match(const struct path_def *table, const char *rel_path,
				       json_t **captures);
/* Convert/validate req->data against def->fields, producing req->fields.
 * Unknown fields produce a warning in resp (Vault: "Endpoint ignored these
 * unrecognized parameters"). */
int framework_fields(const struct path_def *def, json_t *data, json_t *captures,
		     json_t **out_fields, struct logical_response *resp, struct verr *err);
/* Vault's create-or-update: a POST/PUT (req->op LOP_UPDATE or LOP_CREATE)
 * becomes LOP_CREATE when def->exists says the target is absent and the
 * path has a create handler, LOP_UPDATE otherwise (or LOP_CREATE when the
 * path has only that). Needs req->fields. Other ops are left alone. Returns
 * 0 or the existence check's error. */
int framework_resolve_op(const struct path_def *def, struct logical_request *req,
			 struct verr *err);
/* Run def's handler for req->op: required fields checked first, help
 * answered from def->help, VERR_UNSUPPORTED when the path lacks the op. */
int framework_call(const struct path_def *def, struct logical_request *req,
		   struct logical_response *resp, struct verr *err);
/* The whole dispatch as the core runs it, minus authentication, ACL and
 * audit: match req->rel_path, convert fields, resolve create/update, call.
 * The core's pipeline calls the same four steps (with the ACL check between
 * resolve and call), so engine unit tests exercise production's dispatch. */
int framework_handle(const struct path_def *table, struct logical_request *req,
		     struct logical_response *resp, struct verr *err);

#endif
