/*
 * telemetry.h - the core's metrics (telemetry.c): one-line hooks the
 * request path calls at its choke points, the collector that reads the
 * core's state at scrape time, and the sys/metrics handler. The registry
 * itself is util/metrics.c; names are Vault's (docs/telemetry.md).
 * Thread-safety: every hook may be called from any request thread.
 */
#ifndef COFFER_CORE_TELEMETRY_H
#define COFFER_CORE_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"
#include "util/metrics.h"

struct core;

/* vault.core.handle_request / handle_login_request, from t0 */
void telemetry_request(const struct logical_request *req, uint64_t t0);
/* vault.route.<op>.<mount with '/' as '-'>, from t0 */
void telemetry_route(enum logical_op op, const char *mount_path, uint64_t t0);
/* vault.auth.login{mount_point, result}: a login attempt on an auth mount */
void telemetry_login(const char *mount_path, bool ok);
/* vault.token.creation{mount_point, token_type, creation_ttl} */
void telemetry_token_created(const char *path, const char *type, int64_t ttl_s);

/* vault.audit.log_request|log_response from t0, and the _failure counter
 * when rc != 0; returns rc */
int telemetry_audit(bool request, uint64_t t0, int rc);
/* Time a call: METRICS_SINCE under `name`, returns rc (one-line wrappers). */
int telemetry_timed(int rc, const char *name, uint64_t t0);

/* Register the scrape-time collector of core c and start its usage-gauge
 * walker thread (core_new; returns the collector's id); stop and remove
 * both (core_free). */
int telemetry_start(struct core *c);
void telemetry_stop(struct core *c);

/* GET sys/metrics (a sys.c row): ?format=prometheus|json, Accept header. */
int telemetry_sys_metrics(struct logical_request *req, struct logical_response *resp,
			  struct verr *err);
extern const struct field_def telemetry_metrics_fields[];

#endif
