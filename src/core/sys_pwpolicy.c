/*
 * sys_pwpolicy.c - Vault's password policies: sys/policies/password/:name
 * (PUT/GET/DELETE), LIST sys/policies/password, and
 * sys/policies/password/:name/generate (util/passpolicy.h has the HCL and
 * the generator). Stored below the barrier in the sys view at
 * password_policy/<name> as {"policy": "<HCL>"}; engines reach a policy by
 * name through their system view (sysview_password_policy), as the
 * database engine's `password_policy` does.
 */
#include "core/sys.h"

#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "util/passpolicy.h"
#include "util/secmem.h"

#define PWPOL_PREFIX "password_policy/"

static struct core *C(struct logical_request *req)
{
	return req->backend;
}

static int key_for(char *buf, size_t cap, const char *name, struct verr *err)
{
	if (!name || !*name || strlen(name) > 128)
		return verr_set(err, VERR_INVALID, "missing policy name");
	snprintf(buf, cap, PWPOL_PREFIX "%s", name);
	return 0;
}

int sys_password_policy_text(struct core *c, const char *name, char **hcl, struct verr *err)
{
	char key[200];
	*hcl = NULL;
	int rc = key_for(key, sizeof(key), name, err);
	if (rc)
		return rc;
	json_t *j = NULL;
	if ((rc = view_get_json(&c->sys_view, key, &j, err)))
		return rc;
	const char *p = json_string_value(json_object_get(j, "policy"));
	if (!p) {
		json_decref(j);
		return verr_set(err, VERR_NOT_FOUND, "password policy \"%s\" does not exist", name);
	}
	*hcl = strdup(p);
	json_decref(j);
	return *hcl ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int sys_pwpolicy_write(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	const char *name = request_str(req, "name"), *text = request_str(req, "policy");
	char key[200];
	int rc = key_for(key, sizeof(key), name, err);
	if (rc)
		return rc;
	if (!text || !*text)
		return verr_set(err, VERR_INVALID, "missing policy");
	struct passpolicy *p = NULL;
	struct verr pe = {0};
	if (passpolicy_parse(&p, text, strlen(text), &pe))
		return verr_set(err, VERR_INVALID, "invalid password policy: %s", pe.msg);
	/* Vault checks the policy can actually produce a password */
	char pw[PASSPOLICY_MAX_LENGTH + 1];
	rc = passpolicy_generate(p, pw, sizeof(pw), err);
	secmem_wipe(pw, sizeof(pw));
	passpolicy_free(p);
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s}", "policy", text);
	rc = j ? view_put_json(&C(req)->sys_view, key, j, err)
	       : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(j);
	return rc;
}

int sys_pwpolicy_read(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	char *hcl = NULL;
	int rc = sys_password_policy_text(C(req), request_str(req, "name"), &hcl, err);
	if (rc)
		return rc;
	resp->data = json_pack("{s:s}", "policy", hcl);
	free(hcl);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

int sys_pwpolicy_delete(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	char key[200];
	int rc = key_for(key, sizeof(key), request_str(req, "name"), err);
	return rc ? rc : view_delete(&C(req)->sys_view, key, err);
}

int sys_pwpolicy_list(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(&C(req)->sys_view, PWPOL_PREFIX, &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (!strchr(keys[i], '/'))
			json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!json_array_size(arr)) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	return 0;
}

int sys_pwpolicy_generate(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	char *hcl = NULL;
	int rc = sys_password_policy_text(C(req), request_str(req, "name"), &hcl, err);
	if (rc)
		return rc;
	struct passpolicy *p = NULL;
	rc = passpolicy_parse(&p, hcl, strlen(hcl), err);
	free(hcl);
	if (rc)
		return rc;
	char pw[PASSPOLICY_MAX_LENGTH + 1];
	rc = passpolicy_generate(p, pw, sizeof(pw), err);
	passpolicy_free(p);
	if (!rc) {
		resp->data = json_pack("{s:s}", "password", pw);
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	secmem_wipe(pw, sizeof(pw));
	return rc;
}

const struct field_def sys_pwpolicy_fields[] = {
	{"name", FT_NAME, NULL, "password policy name", false},
	{"policy", FT_STRING, NULL, "the policy (HCL)", false},
	{0},
};
