/*
 * core.h - the core's public entry points, used by the HTTP layer and the
 * server start-up code (which never includes core_int.h).
 *
 * The core owns the seal state (sealed -> standby -> active), the request
 * pipeline (token -> ACL -> audit -> route -> lease -> audit), the mount
 * tables, the token and policy stores, the expiration manager, the audit
 * broker and the HA loop. docs/architecture.md has the layers and the state
 * machine. Thread-safety: every function here may be called from any thread.
 */
#ifndef COFFER_CORE_CORE_H
#define COFFER_CORE_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"

struct core;
struct seal;
struct physical_ha;
struct audit_device_ops;

struct core_opts {
	struct physical *phys;               /* owned by the core from core_new */
	struct physical_ha *ha;              /* borrowed, NULL: no HA (one node);
					      * must outlive the core */
	struct seal *seal;                   /* owned from core_new; NULL: Shamir */
	struct seal *old_seal;               /* borrowed, NULL: none; the disabled
					      * stanza of a seal migration (the seal
					      * the stored root key is still under);
					      * must outlive the core */
	int64_t default_lease_ttl, max_lease_ttl;
	const struct backend_ops *const *backends; /* NULL-terminated registry */
	const struct audit_device_ops *const *audit_types; /* NULL-terminated, may be NULL */
	const char *storage_type;
	const char *api_addr, *cluster_addr, *cluster_name; /* copied */
	bool allow_audit_log_prefixing;
	int periodic_interval_ms;            /* backends' periodic hook; 0: 60 s */
};

/*
 * A sealed core over o->phys. Checks the storage interface version and every
 * backend table's version (VERR_INTERNAL naming the offender). On failure
 * nothing is taken: the caller still owns o->phys and o->seal.
 */
int core_new(struct core **out, const struct core_opts *o, struct verr *err);
/* Seal (wipe every key) and free; closes the storage and the seal. */
void core_free(struct core *c);

/*
 * Handle one API request. The caller (http/) fills, in *req: op (POST and
 * PUT both as LOP_UPDATE; the core decides create vs update), path (decoded
 * URL path after "/v1/"), data (body object, or query arguments for
 * GET/LIST/DELETE; never NULL), client_token (or NULL), remote_addr,
 * remote_port, request_id, headers (object of lower-cased X-Vault-* request
 * headers), client_cert_pem. Every other field is the core's.
 * On success returns 0 and fills *resp (status 0 => 200 with body or 204).
 * On failure returns a negative VERR_* with *err set; resp may still carry
 * data (e.g. KV v2 metadata on 404) and warnings.
 */
int core_handle_request(struct core *c, struct logical_request *req,
			struct logical_response *resp, struct verr *err);

/* True if the core answers req without blocking: a read or list of a
 * backend whose reads change nothing (kv, cubbyhole, token), on the active
 * node, with storage on this machine (file, inmem, raft) and only audit
 * devices written in-process (file). The HTTP listener's epoll mode runs
 * such a request on its event thread and offloads every other one. */
bool core_request_inline(struct core *c, const struct logical_request *req);

bool core_sealed(struct core *c);
bool core_active(struct core *c);
/* Seal now (shutdown): waits for requests in flight. */
void core_seal(struct core *c);
/* A storage key changed outside this node's own writes (a replicated
 * write applied on a follower): the owning backend drops what it cached.
 * No-op unless ACTIVE. */
void core_invalidate(struct core *c, const char *key);
/* SIGHUP: reopen audit files (log rotation). */
void core_reload(struct core *c);
/*
 * SIGHUP with the multi-seal's stanzas as they now read: the member set
 * becomes members[0..n) (names, priorities; a pointer the running set
 * already holds is that member, kept). Takes ownership of every member not
 * already in the set (closed on error). Crash-safe order: each added
 * member wraps the root key and its copy is stored and opened again, then
 * seal-config names the new set (the commit point), then the removed
 * members' copies are deleted. Only while active and unsealed; removing
 * every seal, or leaving no available seal with a copy, is refused. On
 * error (an added seal cannot wrap: its stanza named) nothing changes.
 */
int core_seals_change(struct core *c, struct seal **members, const char *const *names,
		      const int *priorities, size_t n, struct verr *err);
/*
 * Request forwarding (HA). On a standby that knows the active node:
 * *f = the active's cluster and API addresses and this cluster's TLS
 * certificate and key (PEM; the key in locked memory), what a forwarded
 * request is sent with and the active's cluster listener checks. Otherwise
 * VERR_NOT_FOUND (not a standby, no active known, no cluster address or no
 * cluster certificate yet). Free with core_forward_free.
 */
struct core_forward {
	char *cluster_addr, *api_addr;
	char *cert_pem, *key_pem;
	size_t key_len;
};
int core_forward_target(struct core *c, struct core_forward *f, struct verr *err);
void core_forward_free(struct core_forward *f);
/* The cluster certificate and key (PEM) for the cluster listener, while
 * unsealed; -1 otherwise. *gen changes whenever the material does. The key
 * is in locked memory: free it with secmem_free(key, key_len + 1). */
int core_cluster_tls(struct core *c, char **cert_pem, char **key_pem, size_t *key_len,
		     uint64_t *gen);

/*
 * Auto seals (awskms, transit, pkcs11): unseal with no key typed, at start
 * and on standbys too. A background thread tries at once, then retries
 * with backoff (100 ms doubling to 10 s) while the key service is
 * unreachable or the root key cannot be opened, logging why; the sealed
 * endpoints (seal-status, health) answer meanwhile. It waits while the
 * storage is uninitialised (another node may initialise it), does nothing
 * for a Shamir seal or a pending seal migration, and ends once unsealed.
 * core_autounseal_stop (NULL-safe) joins it; call it before core_free.
 */
struct core_autounseal;
int core_autounseal_start(struct core_autounseal **out, struct core *c, struct verr *err);
void core_autounseal_stop(struct core_autounseal *a);

/* HA heartbeats: a standby sends core_ha_echo_body() (malloc'd JSON) to
 * the active node's cluster port every few seconds; the active records it
 * with core_ha_echo for sys/ha-status. VERR_STANDBY when not active,
 * VERR_INVALID for a malformed body. */
char *core_ha_echo_body(struct core *c);
int core_ha_echo(struct core *c, const char *body, size_t len, struct verr *err);

/*
 * GET sys/metrics without the pipeline (a listener with telemetry {
 * unauthenticated_metrics_access = true }, and a standby answering for
 * itself): this node's metrics in `format` ("prometheus", "json", NULL:
 * json) and the Accept header's choice of OpenMetrics. *body and
 * *content_type are malloc'd. VERR_INVALID for an unknown format or
 * "prometheus is not enabled" (prometheus_retention_time = 0).
 */
int core_metrics(struct core *c, const char *format, const char *accept, char **body,
		 size_t *len, char **content_type, struct verr *err);

/* Dev mode: initialise with one share, unseal, optionally replace the root
 * token by one with the given id, mount kv-v2 at secret/. *out_root and
 * *out_key are malloc'd; the caller wipes and frees them. */
int core_dev_setup(struct core *c, const char *root_token_id, char **out_root,
		   char **out_key, struct verr *err);

#endif
