/*
 * audit_hooks.c - the pipeline's calls into the audit broker: build the raw
 * entry (Vault's shape, docs/audit.md) from the request, its token and the
 * response, and hand it to the broker. With no audit device enabled every
 * request proceeds; with devices enabled a request whose entry no device
 * could record is refused (audit_hooks_request returns VERR_INTERNAL and
 * the pipeline does not run it).
 *
 * The entry is a struct audit_entry (src/audit/audit.h) that borrows the
 * request, token and response fields: no JSON tree is built per entry. It
 * holds the secrets as they are (raw token, request and response data);
 * each device HMACs them while writing its line (src/audit/format.c), so
 * nothing raw reaches a log unless the device has log_raw=true.
 */
#include "core/audit_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/audit_broker.h"
#include "core/telemetry.h"
#include "core/token.h"
#include "util/timefmt.h"

/* Vault leaves these out of the audit log (bao/vault docs/audit "The
 * non-audited paths"): they run while sealed or are part of unsealing. */
static const char *const unaudited[] = {
	"sys/init", "sys/seal-status", "sys/seal", "sys/step-down", "sys/unseal",
	"sys/leader", "sys/health", "sys/rekey/init", "sys/rekey/update", "sys/rekey/verify",
	"sys/rekey-recovery-key/init", "sys/rekey-recovery-key/update",
	"sys/rekey-recovery-key/verify", "sys/storage/raft/bootstrap", "sys/storage/raft/join",
	"sys/internal/ui/feature-flags", "sys/metrics", "sys/in-flight-req", NULL,
};

static bool is_unaudited(const char *path)
{
	for (int i = 0; unaudited[i]; i++) {
		size_t l = strlen(unaudited[i]);
		if (!strncmp(path, unaudited[i], l) &&
		    (path[l] == '\0' || (path[l] == '/' && path[l + 1] == '\0')))
			return true;
	}
	return !strncmp(path, "sys/pprof", 9) && (path[9] == '\0' || path[9] == '/');
}

static const char *time_text(char buf[TIMEFMT_MAX], int64_t secs, long nanos)
{
	return timefmt_rfc3339(buf, secs, nanos, TIMEFMT_NANO9);
}

/* NULL for an absent or empty string (Vault leaves those members out) */
static const char *nz(const char *s)
{
	return s && *s ? s : NULL;
}

/* Describe the entry (struct audit_entry, src/audit/audit.h): the devices
 * write it without a JSON tree being built. tbuf/ibuf hold the times. */
static void entry_fill(struct audit_entry *e, const char *type, const struct logical_request *req,
		       const struct token_entry *te, const struct logical_response *resp, int rc,
		       const struct verr *rerr, const struct timespec *at, char tbuf[TIMEFMT_MAX],
		       char ibuf[TIMEFMT_MAX])
{
	struct timespec ts;
	if (at)
		ts = *at;
	else
		clock_gettime(CLOCK_REALTIME, &ts);
	const char *t = time_text(tbuf, (int64_t)ts.tv_sec, ts.tv_nsec ? ts.tv_nsec : 1);
	*e = (struct audit_entry){
		.time = t ? t : "",
		.type = type,
		.client_token = nz(req->client_token),
		.request_id = req->request_id ? req->request_id : "",
		.operation = logical_op_name(req->op),
		.mount_point = nz(req->mount_path),
		.mount_type = nz(req->mount_type),
		.mount_accessor = nz(req->mount_accessor),
		.client_token_accessor = nz(req->client_token_accessor),
		.path = req->path ? req->path : "",
		.request_data = json_is_object(req->data) && json_object_size(req->data) ? req->data
											 : NULL,
		.remote_address = nz(req->remote_addr),
		.remote_port = req->remote_port,
	};
	if (te) {
		e->has_token = true;
		e->accessor = nz(te->accessor);
		e->display_name = nz(te->display_name);
		e->policies = te->policies;
		e->metadata = json_object_size(te->meta) ? te->meta : NULL;
		e->entity_id = nz(te->entity_id);
		e->token_type = nz(te->type ? te->type : "service");
		e->token_ttl = te->creation_ttl;
		if (te->creation_time)
			e->token_issue_time = time_text(ibuf, te->creation_time, 0);
		e->remaining_uses = te->num_uses > 0 ? te->num_uses : 0;
	}
	if (!strcmp(type, "response")) {
		e->has_response = true;
		if (resp) {
			e->has_resp = true;
			e->resp_auth = resp->auth_out;
			if (resp->lease_out) {
				e->has_secret = true;
				e->lease_id = nz(json_string_value(
					json_object_get(resp->lease_out, "lease_id")));
			}
			e->resp_data = resp->data && !resp->raw ? resp->data : NULL;
			e->resp_warnings = json_array_size(resp->warnings) ? resp->warnings : NULL;
			e->redirect = resp->redirect;
			e->resp_wrap_info = resp->wrap_info_out;
		}
	}
	if (rc)
		e->error = rerr && rerr->msg[0] ? rerr->msg : verr_name(rc);
}

int audit_hooks_request(struct core *c, const struct logical_request *req,
			const struct token_entry *te, int rc, const struct verr *rerr,
			struct verr *err)
{
	if (!audit_hooks_enabled(c, req))
		return 0;
	struct audit_entry e;
	char tbuf[TIMEFMT_MAX], ibuf[TIMEFMT_MAX];
	uint64_t t0 = metrics_now();
	entry_fill(&e, "request", req, te, NULL, rc, rerr, NULL, tbuf, ibuf);
	return telemetry_audit(true, t0, audit_broker_log_entry(c->audit, &e, err));
}

bool audit_hooks_enabled(struct core *c, const struct logical_request *req)
{
	return audit_broker_active(c->audit) && !is_unaudited(req->path);
}

/* The response entry; an unwrap is logged with the response it hands out
 * (Vault: the decoded body, its secrets HMAC'd like any other response).
 * *inner: what the entry borrows from the unwrapped body (json_decref it
 * after logging). */
static void response_fill(struct audit_entry *e, const struct logical_request *req,
			  const struct token_entry *te, const struct logical_response *resp, int rc,
			  const struct verr *rerr, char tbuf[TIMEFMT_MAX], char ibuf[TIMEFMT_MAX],
			  json_t **inner)
{
	entry_fill(e, "response", req, te, resp, rc, rerr, NULL, tbuf, ibuf);
	*inner = NULL;
	if (rc == 0 && resp && resp->raw && resp->raw_len && !strcmp(req->path, "sys/wrapping/unwrap")) {
		*inner = json_loadb(resp->raw_body, resp->raw_len, 0, NULL);
		if (json_is_object(*inner)) {
			json_t *d = json_object_get(*inner, "data");
			json_t *a = json_object_get(*inner, "auth");
			json_t *w = json_object_get(*inner, "warnings");
			e->resp_data = json_is_object(d) ? d : NULL;
			e->resp_auth = json_is_object(a) ? a : NULL;
			e->resp_warnings = json_array_size(w) ? w : NULL;
			const char *lid = json_string_value(json_object_get(*inner, "lease_id"));
			if (lid && *lid) {
				e->has_secret = true;
				e->lease_id = lid;
			}
		}
	}
}

int audit_hooks_response(struct core *c, const struct logical_request *req,
			 const struct token_entry *te, const struct logical_response *resp,
			 int rc, const struct verr *rerr, struct verr *err)
{
	if (!audit_hooks_enabled(c, req))
		return 0;
	struct audit_entry e;
	char tbuf[TIMEFMT_MAX], ibuf[TIMEFMT_MAX];
	json_t *inner;
	uint64_t t0 = metrics_now();
	response_fill(&e, req, te, resp, rc, rerr, tbuf, ibuf, &inner);
	int arc = telemetry_audit(false, t0, audit_broker_log_entry(c->audit, &e, err));
	json_decref(inner);
	return arc;
}

int audit_hooks_pair(struct core *c, const struct logical_request *req,
		     const struct token_entry *te, const struct timespec *req_time,
		     const struct logical_response *resp, int rc, const struct verr *rerr,
		     struct verr *err)
{
	if (!audit_hooks_enabled(c, req))
		return 0;
	struct audit_entry q, e;
	char qt[TIMEFMT_MAX], qi[TIMEFMT_MAX], tbuf[TIMEFMT_MAX], ibuf[TIMEFMT_MAX];
	json_t *inner;
	uint64_t t0 = metrics_now();
	entry_fill(&q, "request", req, te, NULL, 0, NULL, req_time, qt, qi);
	response_fill(&e, req, te, resp, rc, rerr, tbuf, ibuf, &inner);
	int arc = audit_broker_log_pair(c->audit, &q, &e, err);
	/* one measurement per entry, as when they are logged apart */
	telemetry_audit(true, t0, arc);
	telemetry_audit(false, t0, arc);
	json_decref(inner);
	return arc;
}

int audit_hooks_open(struct core *c, struct verr *err)
{
	struct audit_broker_opts o = {
		.phys = c->bphys,
		.types = c->o.audit_types,
		.allow_prefixing = c->o.allow_audit_log_prefixing,
	};
	return audit_broker_new(&c->audit, &o, err);
}

void audit_hooks_close(struct core *c)
{
	audit_broker_free(c->audit);
	c->audit = NULL;
}
