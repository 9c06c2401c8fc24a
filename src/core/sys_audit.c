/*
 * sys_audit.c - the sys/audit endpoints (rows of sys.c's path table, all
 * sudo-protected like Vault's):
 *   GET    sys/audit                       list devices
 *   PUT    sys/audit/<path>                enable {type, description, options, local}
 *   DELETE sys/audit/<path>                disable
 *   PUT    sys/audit-hash/<path>           {input} -> {hash}
 *   GET    sys/audit/<path>/chain-key      {key}: the device's chain key, base64
 *                                          (Coffer: `coffer audit verify`)
 * The work is the broker's (audit_broker.c); these only move fields.
 */
#include "core/core_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/audit_broker.h"
#include "util/secmem.h"

const struct field_def sys_audit_fields[] = {
	{"path", FT_STRING, NULL, "device path", false},
	{"type", FT_STRING, NULL, "device type: file, socket or syslog", false},
	{"description", FT_STRING, "", "description", false},
	{"options", FT_ANY, NULL, "device options (a map of strings)", false},
	{"local", FT_BOOL, "false", "not replicated", false},
	{0},
};

const struct field_def sys_audit_hash_fields[] = {
	{"path", FT_STRING, NULL, "device path", false},
	{"input", FT_STRING, NULL, "the value to hash", false},
	{0},
};

static int broker(struct logical_request *req, struct audit_broker **out, struct verr *err)
{
	struct core *c = req->backend; /* the sys backend's instance */
	if (!c || !c->audit)
		return verr_set(err, VERR_INTERNAL, "the audit broker is not available");
	*out = c->audit;
	return 0;
}

static int top(struct logical_response *resp, json_t *data)
{
	if (!data)
		return VERR_INTERNAL;
	resp->data = data;
	resp->data_at_top = true;
	return 0;
}

int sys_audit_list(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	struct audit_broker *b = NULL;
	int rc = broker(req, &b, err);
	return rc ? rc : top(resp, audit_broker_list(b));
}

int sys_audit_enable(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct audit_broker *b = NULL;
	int rc = broker(req, &b, err);
	if (rc)
		return rc;
	const char *type = request_str(req, "type");
	if (!type || !*type)
		return verr_set(err, VERR_INVALID, "type is required");
	return audit_broker_enable(b, request_str(req, "path"), type,
				   request_str(req, "description"), request_json(req, "options"),
				   request_bool(req, "local"), err);
}

int sys_audit_disable(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct audit_broker *b = NULL;
	int rc = broker(req, &b, err);
	return rc ? rc : audit_broker_disable(b, request_str(req, "path"), err);
}

int sys_audit_hash(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	struct audit_broker *b = NULL;
	int rc = broker(req, &b, err);
	if (rc)
		return rc;
	const char *in = request_str(req, "input");
	if (!in)
		return verr_set(err, VERR_INVALID, "the \"input\" parameter is required");
	char *h = NULL;
	rc = audit_broker_hash(b, request_str(req, "path"), in, &h, err);
	if (rc)
		return rc;
	rc = top(resp, json_pack("{s:s}", "hash", h));
	free(h);
	return rc;
}

int sys_audit_chain_key(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct audit_broker *b = NULL;
	int rc = broker(req, &b, err);
	if (rc)
		return rc;
	char *k = NULL;
	rc = audit_broker_chain_key(b, request_str(req, "path"), &k, err);
	if (rc)
		return rc;
	resp->data = json_pack("{s:s}", "key", k);
	secmem_wipe(k, strlen(k));
	free(k);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}
