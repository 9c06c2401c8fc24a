/*
 * sys_leases.c - the sys/leases/... endpoints (and the legacy sys/renew,
 * sys/revoke, sys/revoke-prefix, sys/revoke-force), Vault's shapes and
 * errors, over the expiration manager (expiration.h). The rows that route
 * here are in sys.c's path table.
 */
#include "core/core_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/expiration.h"
#include "util/timefmt.h"

const struct field_def sys_leases_fields[] = {
	{"lease_id", FT_STRING, NULL, "the lease id", false},
	{"url_lease_id", FT_STRING, NULL, "the lease id (in the URL)", false},
	{"increment", FT_DURATION, "0", "requested extension, seconds", false},
	{"sync", FT_BOOL, "true", "revoke before answering", false},
	{"prefix", FT_STRING, NULL, "lease id prefix", false},
	{"type", FT_STRING, NULL, "lease type (count)", false},
	{"include_child_namespaces", FT_BOOL, "false", "", false},
	{NULL, 0, NULL, NULL, false},
};

static struct expiration *E(struct logical_request *req, struct verr *err)
{
	struct core *c = req->backend; /* the sys backend's instance */
	struct expiration *e = c ? c->expire : NULL;
	if (!e)
		verr_set(err, VERR_SEALED, "Vault is sealed");
	return e;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *time_json(int64_t ms)
{
	if (!ms)
		return json_null();
	char s[TIMEFMT_MAX];
	if (!timefmt_rfc3339(s, ms / 1000, (long)(ms % 1000) * 1000000L, TIMEFMT_NANO9))
		return json_null();
	return json_string(s);
}

/* lease_id from the body, else from the URL (Vault: the body wins). */
static const char *lease_id_of(struct logical_request *req)
{
	const char *id = request_str(req, "lease_id");
	if (!id || !*id)
		id = request_str(req, "url_lease_id");
	return id && *id ? id : NULL;
}

int sys_leases_lookup(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *id = lease_id_of(req);
	if (!id)
		return verr_set(err, VERR_INVALID, "lease_id must be specified");
	json_t *rec = NULL;
	int rc = expiration_lookup(e, id, &rec, err);
	if (rc)
		return rc;
	if (!rec)
		return verr_set(err, VERR_INVALID, "invalid lease");
	int64_t now = wall_ms();
	int64_t expire = json_integer_value(json_object_get(rec, "expire_ms"));
	int64_t ttl = expire > now ? (expire - now) / 1000 : 0;
	bool renewable = json_is_true(json_object_get(rec, "renewable")) && expire > now;
	resp->data = json_object();
	json_object_set_new(resp->data, "id", json_string(id));
	json_object_set_new(resp->data, "issue_time",
			    time_json(json_integer_value(json_object_get(rec, "issue_ms"))));
	json_object_set_new(resp->data, "expire_time", time_json(expire));
	json_object_set_new(resp->data, "last_renewal",
			    time_json(json_integer_value(json_object_get(rec, "last_renewal_ms"))));
	json_object_set_new(resp->data, "renewable", json_boolean(renewable));
	json_object_set_new(resp->data, "ttl", json_integer(ttl));
	json_decref(rec);
	return 0;
}

int sys_leases_list(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *p = request_str(req, "prefix");
	if (!p)
		p = "";
	size_t pl = strlen(p);
	char *prefix = malloc(pl + 2);
	if (!prefix)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	snprintf(prefix, pl + 2, "%s%s", p, pl && p[pl - 1] != '/' ? "/" : "");
	json_t *keys = NULL;
	int rc = expiration_list(e, prefix, &keys, err);
	free(prefix);
	if (rc)
		return rc;
	if (json_array_size(keys) == 0) {
		json_decref(keys);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", keys);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int sys_leases_renew(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *id = lease_id_of(req);
	if (!id)
		return verr_set(err, VERR_INVALID, "lease_id must be specified");
	int64_t inc = request_duration(req, "increment");
	json_t *warnings = json_array();
	json_t *rec = NULL;
	int rc = expiration_renew(e, id, inc, &rec, warnings, err);
	if (!rc) {
		int64_t base = json_integer_value(json_object_get(rec, "last_renewal_ms"));
		int64_t expire = json_integer_value(json_object_get(rec, "expire_ms"));
		resp->lease_out = json_pack("{s:s,s:I,s:b}", "lease_id", id, "lease_duration",
					    (json_int_t)((expire - base) / 1000), "renewable",
					    json_is_true(json_object_get(rec, "renewable")));
		size_t i;
		json_t *w;
		json_array_foreach(warnings, i, w)
			logical_response_warn(resp, "%s", json_string_value(w));
	}
	json_decref(rec);
	json_decref(warnings);
	return rc;
}

int sys_leases_revoke(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *id = lease_id_of(req);
	if (!id)
		return verr_set(err, VERR_INVALID, "lease_id must be specified");
	if (!request_bool(req, "sync"))
		return expiration_revoke_lazy(e, id, err);
	return expiration_revoke(e, id, false, err);
}

static int revoke_prefix(struct logical_request *req, bool force, struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *p = request_str(req, "prefix");
	if (!p || !*p)
		return verr_set(err, VERR_INVALID, "prefix must be specified");
	bool sync = force || request_bool(req, "sync");
	return expiration_revoke_prefix(e, p, force, sync, err);
}

int sys_leases_revoke_prefix(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	return revoke_prefix(req, false, err);
}

int sys_leases_revoke_force(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	return revoke_prefix(req, true, err);
}

int sys_leases_tidy(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	json_t *stats = NULL;
	int rc = expiration_tidy(e, &stats, err);
	if (rc)
		return rc;
	resp->data = stats;
	resp->status = 202;
	logical_response_warn(resp, "Tidy operation successfully started. Any information from the "
				    "operation will be printed to Vault's server logs.");
	return 0;
}

int sys_leases_count(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct expiration *e = E(req, err);
	if (!e)
		return VERR_SEALED;
	const char *type = request_str(req, "type");
	if (!type || !*type)
		return verr_set(err, VERR_INVALID, "lease type is required");
	if (strcmp(type, "irrevocable") != 0)
		return verr_set(err, VERR_INVALID, "invalid lease type: \"%s\"", type);
	/* a lease whose revoke fails is retried forever, never irrevocable */
	resp->data = json_pack("{s:I,s:{}}", "lease_count", (json_int_t)0, "counts");
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}
