/*
 * audit_hooks.c - the pipeline's calls into the audit broker: build the raw
 * entry (Vault's shape, docs/audit.md) from the request, its token and the
 * response, and hand it to the broker. With no audit device enabled every
 * request proceeds; with devices enabled a request whose entry no device
 * could record is refused (coreglue_audit_request returns VERR_INTERNAL and
 * core.c does not run it).
 *
 * The raw entry holds the secrets as they are (raw token, request and
 * response data, borrowed by reference); each device HMACs them while
 * formatting (src/audit/format.c), so nothing raw reaches a log unless the
 * device has log_raw=true.
 */
#include "core/acl_glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit_broker.h"
#include "core/token.h"

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

/* core__rfc3339's text ("...T12:34:56Z", with ".%09ld" when nanos > 0)
 * into buf[40], without snprintf and malloc: two of these per entry were
 * a noticeable part of an audited request. */
static const char *time_text(char buf[40], int64_t secs, long nanos)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return NULL;
	int v[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
	static const char sep[6] = {'-', '-', 'T', ':', ':', '\0'};
	char *p = buf;
	for (int i = 0; i < 6; i++) {
		int width = i == 0 ? 4 : 2;
		for (int d = width - 1; d >= 0; d--, v[i] /= 10)
			p[d] = (char)('0' + v[i] % 10);
		p += width;
		if (sep[i])
			*p++ = sep[i];
	}
	if (nanos > 0) {
		*p++ = '.';
		for (int d = 8; d >= 0; d--, nanos /= 10)
			p[d] = (char)('0' + nanos % 10);
		p += 9;
	}
	*p++ = 'Z';
	*p = '\0';
	return buf;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

static json_t *auth_json(const struct logical_request *req, const struct token_entry *te)
{
	json_t *a = json_object();
	set_str(a, "client_token", req->client_token);
	if (!te)
		return a;
	set_str(a, "accessor", te->accessor);
	set_str(a, "display_name", te->display_name);
	if (te->policies) {
		json_object_set(a, "policies", te->policies);
		json_object_set(a, "token_policies", te->policies);
	}
	if (json_object_size(te->meta))
		json_object_set(a, "metadata", te->meta);
	set_str(a, "entity_id", te->entity_id);
	set_str(a, "token_type", te->type ? te->type : "service");
	if (te->creation_ttl)
		json_object_set_new(a, "token_ttl", json_integer(te->creation_ttl));
	char tb[40];
	if (te->creation_time)
		set_str(a, "token_issue_time", time_text(tb, te->creation_time, 0));
	if (te->num_uses > 0)
		json_object_set_new(a, "remaining_uses", json_integer(te->num_uses));
	return a;
}

static json_t *request_json_of(const struct logical_request *req)
{
	json_t *r = json_object();
	json_object_set_new(r, "id", json_string(req->request_id ? req->request_id : ""));
	json_object_set_new(r, "operation", json_string(logical_op_name(req->op)));
	set_str(r, "mount_point", req->mount_path);
	set_str(r, "mount_type", req->mount_type);
	set_str(r, "mount_accessor", req->mount_accessor);
	set_str(r, "client_token", req->client_token);
	set_str(r, "client_token_accessor", req->client_token_accessor);
	json_t *ns = json_object();
	json_object_set_new(ns, "id", json_string("root"));
	json_object_set_new(r, "namespace", ns);
	json_object_set_new(r, "path", json_string(req->path ? req->path : ""));
	if (json_is_object(req->data) && json_object_size(req->data))
		json_object_set(r, "data", req->data);
	set_str(r, "remote_address", req->remote_addr);
	if (req->remote_port)
		json_object_set_new(r, "remote_port", json_integer(req->remote_port));
	return r;
}

static json_t *response_json_of(const struct logical_request *req,
				const struct logical_response *resp)
{
	json_t *r = json_object();
	set_str(r, "mount_point", req->mount_path);
	set_str(r, "mount_type", req->mount_type);
	set_str(r, "mount_accessor", req->mount_accessor);
	if (!resp)
		return r;
	if (resp->auth_out)
		json_object_set(r, "auth", resp->auth_out);
	if (resp->lease_out) {
		const char *lid = json_string_value(json_object_get(resp->lease_out, "lease_id"));
		json_t *s = json_object();
		set_str(s, "lease_id", lid);
		json_object_set_new(r, "secret", s);
	}
	if (resp->data && !resp->raw)
		json_object_set(r, "data", resp->data);
	if (json_array_size(resp->warnings))
		json_object_set(r, "warnings", resp->warnings);
	if (resp->redirect)
		json_object_set_new(r, "redirect", json_string(resp->redirect));
	return r;
}

static json_t *entry_new(const char *type, const struct logical_request *req,
			 const struct token_entry *te, const struct logical_response *resp,
			 int rc, const struct verr *rerr)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char tb[40];
	const char *t = time_text(tb, (int64_t)ts.tv_sec, ts.tv_nsec ? ts.tv_nsec : 1);
	json_t *e = json_object();
	json_object_set_new(e, "time", json_string(t ? t : ""));
	json_object_set_new(e, "type", json_string(type));
	json_object_set_new(e, "auth", auth_json(req, te));
	json_object_set_new(e, "request", request_json_of(req));
	if (!strcmp(type, "response"))
		json_object_set_new(e, "response", response_json_of(req, resp));
	if (rc)
		json_object_set_new(e, "error", json_string(rerr && rerr->msg[0] ? rerr->msg
									 : verr_name(rc)));
	return e;
}

int coreglue_audit_request(struct core *c, const struct logical_request *req,
			   const struct token_entry *te, int rc, const struct verr *rerr,
			   struct verr *err)
{
	if (!audit_broker_active(c->audit) || is_unaudited(req->path))
		return 0;
	json_t *e = entry_new("request", req, te, NULL, rc, rerr);
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int arc = audit_broker_log(c->audit, e, err);
	json_decref(e);
	return arc;
}

int coreglue_audit_response(struct core *c, const struct logical_request *req,
			    const struct token_entry *te, const struct logical_response *resp,
			    int rc, const struct verr *rerr, struct verr *err)
{
	if (!audit_broker_active(c->audit) || is_unaudited(req->path))
		return 0;
	json_t *e = entry_new("response", req, te, resp, rc, rerr);
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int arc = audit_broker_log(c->audit, e, err);
	json_decref(e);
	return arc;
}

int coreglue_audit_open(struct core *c, struct verr *err)
{
	struct audit_broker_opts o = {
		.phys = c->bphys,
		.types = c->o.audit_types,
		.allow_prefixing = c->o.allow_audit_log_prefixing,
	};
	return audit_broker_new(&c->audit, &o, err);
}

void coreglue_audit_close(struct core *c)
{
	audit_broker_free(c->audit);
	c->audit = NULL;
}

void coreglue_reopen_audit(struct core *c)
{
	/* the broker lives while unsealed: hold the state lock so a seal
	 * cannot free it under us */
	pthread_rwlock_rdlock(&c->state_lock);
	if (!c->sealed && c->audit)
		audit_broker_reopen(c->audit);
	pthread_rwlock_unlock(&c->state_lock);
}
