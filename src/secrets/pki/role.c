/*
 * role.c - PKI roles (`roles/:name`): the field schema with Vault's
 * defaults, storage (role/<name>, cached parsed per mount), and the checks
 * a role imposes on a request: which names (CN, DNS and email SANs), IP and
 * URI SANs it allows, and the validity period (ttl capped to max_ttl, then
 * to the issuer's notAfter per the issuer's leaf_not_after_behavior).
 */
#include "secrets/pki/pki_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/duration.h"
#include "util/timefmt.h"

/* ---- name rules ---- */

bool pki__glob(const char *pat, const char *s)
{
	/* iterative '*' matcher with backtracking to the last star */
	const char *star = NULL, *ss = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			ss = s;
		} else if (tolower((unsigned char)*pat) == tolower((unsigned char)*s)) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++ss;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

bool pki__valid_hostname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	if (!strncmp(s, "*.", 2)) {
		s += 2;
		n -= 2;
	}
	if (n && s[n - 1] == '.') /* a fully qualified name may end in a dot */
		n--;
	if (n == 0)
		return false;
	size_t label = 0; /* start of the current label */
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t l = i - label;
			if (l == 0 || l > 63 || s[label] == '-' || s[i - 1] == '-')
				return false;
			label = i + 1;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	}
	return true;
}

static bool has_suffix_ci(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls > lx && s[ls - lx - 1] == '.' && !strcasecmp(s + ls - lx, suffix);
}

bool pki__role_name_allowed(const struct pki_role *r, const char *name)
{
	if (!name || !*name)
		return false;
	const char *at = strchr(name, '@');
	const char *host = at ? at + 1 : name;
	bool wildcard = !strncmp(host, "*.", 2);
	if (wildcard && !r->allow_wildcard_certificates)
		return false;
	if (r->enforce_hostnames && !pki__valid_hostname(host))
		return false;
	if (r->allow_any_name)
		return true;
	if (r->allow_localhost && (!strcasecmp(host, "localhost") || !strcasecmp(host, "localdomain")))
		return true;
	size_t i;
	json_t *v;
	json_array_foreach(r->allowed_domains, i, v)
	{
		const char *d = json_string_value(v);
		if (!d || !*d)
			continue;
		if (r->allow_bare_domains && !strcasecmp(host, d))
			return true;
		if (r->allow_subdomains && has_suffix_ci(host, d))
			return true;
		if (r->allow_glob_domains && strchr(d, '*') && pki__glob(d, host))
			return true;
	}
	return false;
}

bool pki__role_uri_allowed(const struct pki_role *r, const char *uri)
{
	size_t i;
	json_t *v;
	json_array_foreach(r->allowed_uri_sans, i, v)
	{
		if (pki__glob(json_string_value(v), uri))
			return true;
	}
	return false;
}

static int64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static bool jbool(json_t *o, const char *k)
{
	return json_is_true(json_object_get(o, k));
}

void pki__role_from_json(struct pki_role *r, json_t *o)
{
	memset(r, 0, sizeof(*r));
	r->allowed_domains = json_object_get(o, "allowed_domains");
	r->allowed_uri_sans = json_object_get(o, "allowed_uri_sans");
	r->allowed_other_sans = json_object_get(o, "allowed_other_sans");
	r->key_usage = json_object_get(o, "key_usage");
	r->ext_key_usage = json_object_get(o, "ext_key_usage");
	r->ext_key_usage_oids = json_object_get(o, "ext_key_usage_oids");
	r->ou = json_object_get(o, "ou");
	r->organization = json_object_get(o, "organization");
	r->country = json_object_get(o, "country");
	r->locality = json_object_get(o, "locality");
	r->province = json_object_get(o, "province");
	r->street_address = json_object_get(o, "street_address");
	r->postal_code = json_object_get(o, "postal_code");
	r->allow_localhost = jbool(o, "allow_localhost");
	r->allow_bare_domains = jbool(o, "allow_bare_domains");
	r->allow_subdomains = jbool(o, "allow_subdomains");
	r->allow_glob_domains = jbool(o, "allow_glob_domains");
	r->allow_wildcard_certificates = jbool(o, "allow_wildcard_certificates");
	r->allow_any_name = jbool(o, "allow_any_name");
	r->enforce_hostnames = jbool(o, "enforce_hostnames");
	r->allow_ip_sans = jbool(o, "allow_ip_sans");
	r->server_flag = jbool(o, "server_flag");
	r->client_flag = jbool(o, "client_flag");
	r->code_signing_flag = jbool(o, "code_signing_flag");
	r->email_protection_flag = jbool(o, "email_protection_flag");
	r->no_store = jbool(o, "no_store");
	r->generate_lease = jbool(o, "generate_lease");
	r->require_cn = jbool(o, "require_cn");
	r->use_csr_common_name = jbool(o, "use_csr_common_name");
	r->use_csr_sans = jbool(o, "use_csr_sans");
	r->basic_constraints_valid_for_non_ca = jbool(o, "basic_constraints_valid_for_non_ca");
	r->key_type = pki__key_type_parse(json_string_value(json_object_get(o, "key_type")));
	r->key_bits = (int)jint(o, "key_bits");
	r->signature_bits = (int)jint(o, "signature_bits");
	r->ttl = jint(o, "ttl");
	r->max_ttl = jint(o, "max_ttl");
	r->not_before_duration = jint(o, "not_before_duration");
	r->issuer_ref = json_string_value(json_object_get(o, "issuer_ref"));
}

/* Parse "not_after" (RFC 3339 "2030-01-02T15:04:05Z"); -1 if malformed. */
static int64_t parse_not_after(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end != 'Z' && *end != '\0'))
		return -1;
	return (int64_t)timegm(&tm);
}

int pki__role_not_after(const struct pki_role *r, int64_t req_ttl, const char *req_not_after,
			int64_t now, int64_t mount_default, int64_t mount_max,
			const struct pki_issuer *iss, int64_t *not_after,
			struct logical_response *resp, struct verr *err)
{
	int64_t max = r && r->max_ttl > 0 ? r->max_ttl : mount_max;
	int64_t ttl = req_ttl > 0 ? req_ttl : (r && r->ttl > 0 ? r->ttl : mount_default);
	int64_t na;
	if (req_not_after && *req_not_after) {
		na = parse_not_after(req_not_after);
		if (na < 0)
			return verr_set(err, VERR_INVALID,
					"cannot parse not_after %.64s: want an RFC 3339 UTC time "
					"(YYYY-MM-ddTHH:MM:SSZ)",
					req_not_after);
		ttl = na - now;
	}
	if (max > 0 && ttl > max) {
		if (resp) {
			char a[48], m[48];
			duration_format(a, sizeof(a), ttl);
			duration_format(m, sizeof(m), max);
			logical_response_warn(resp,
					      "TTL %s is longer than permitted maxTTL %s, so maxTTL is being used",
					      a, m);
		}
		ttl = max;
	}
	na = now + ttl;
	if (iss && na > iss->not_after) {
		if (iss->leaf == PKI_LEAF_ERR) {
			char a[TIMEFMT_MAX], c[TIMEFMT_MAX];
			timefmt_rfc3339(a, na, 0, TIMEFMT_SECONDS);
			timefmt_rfc3339(c, iss->not_after, 0, TIMEFMT_SECONDS);
			return verr_set(err, VERR_INVALID,
					"cannot satisfy request, as TTL would result in notAfter of %s "
					"that is beyond the expiration of the CA certificate at %s",
					a, c);
		}
		if (iss->leaf == PKI_LEAF_TRUNCATE)
			na = iss->not_after;
	}
	*not_after = na;
	return 0;
}

/* ---- storage, cache ---- */

static bool valid_role_name(const char *n)
{
	if (!n || !*n || strlen(n) > 128)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

int pki__role_load(struct pki_backend *b, const char *name, json_t **out, struct verr *err)
{
	*out = NULL;
	if (!valid_role_name(name))
		return 0;
	pthread_mutex_lock(&b->role_lock);
	json_t *c = json_object_get(b->roles, name);
	if (c)
		*out = json_incref(c);
	pthread_mutex_unlock(&b->role_lock);
	if (c)
		return 0;
	char key[160];
	snprintf(key, sizeof(key), "role/%s", name);
	json_t *obj = NULL;
	int rc = view_get_json(b->view, key, &obj, err);
	if (rc || !obj)
		return rc;
	pthread_mutex_lock(&b->role_lock);
	if (json_object_size(b->roles) < 4096)
		json_object_set(b->roles, name, obj);
	pthread_mutex_unlock(&b->role_lock);
	*out = obj;
	return 0;
}

static void role_uncache(struct pki_backend *b, const char *name)
{
	pthread_mutex_lock(&b->role_lock);
	json_object_del(b->roles, name);
	pthread_mutex_unlock(&b->role_lock);
}

/* ---- handlers ---- */

static const char *const bool_fields[] = {
	"allow_localhost", "allow_bare_domains", "allow_subdomains", "allow_glob_domains",
	"allow_wildcard_certificates", "allow_any_name", "enforce_hostnames", "allow_ip_sans",
	"server_flag", "client_flag", "code_signing_flag", "email_protection_flag",
	"generate_lease", "no_store", "require_cn", "use_csr_common_name", "use_csr_sans",
	"basic_constraints_valid_for_non_ca", "allowed_domains_template",
	"allowed_uri_sans_template", "use_pss", NULL,
};
static const char *const list_fields[] = {
	"allowed_domains", "allowed_uri_sans", "allowed_other_sans", "allowed_serial_numbers",
	"key_usage", "ext_key_usage", "ext_key_usage_oids", "ou", "organization", "country",
	"locality", "province", "street_address", "postal_code", "policy_identifiers",
	"cn_validations", "allowed_user_ids", NULL,
};

static int role_write(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *name = request_str(req, "name");
	if (!valid_role_name(name))
		return verr_set(err, VERR_INVALID, "invalid role name");
	json_t *o = json_object();
	if (!o)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	for (int i = 0; bool_fields[i]; i++)
		json_object_set_new(o, bool_fields[i], json_boolean(request_bool(req, bool_fields[i])));
	for (int i = 0; list_fields[i]; i++)
		json_object_set_new(o, list_fields[i], pki__strlist(request_json(req, list_fields[i])));
	json_object_set_new(o, "ttl", json_integer(request_duration(req, "ttl")));
	json_object_set_new(o, "max_ttl", json_integer(request_duration(req, "max_ttl")));
	json_object_set_new(o, "not_before_duration",
			    json_integer(request_duration(req, "not_before_duration")));
	const char *kt = request_str(req, "key_type");
	enum pki_key_type t = pki__key_type_parse(kt);
	int bits = (int)request_int(req, "key_bits");
	int rc;
	if (!t) {
		rc = verr_set(err, VERR_INVALID, "unknown key_type %.32s", kt);
		goto out;
	}
	if ((rc = pki__key_bits_check(t, &bits, err)))
		goto out;
	int sb = (int)request_int(req, "signature_bits");
	if (sb != 0 && sb != 256 && sb != 384 && sb != 512) {
		rc = verr_set(err, VERR_INVALID, "unsupported signature_bits %d", sb);
		goto out;
	}
	int64_t ttl = request_duration(req, "ttl"), max = request_duration(req, "max_ttl");
	if (max > 0 && ttl > max) {
		rc = verr_set(err, VERR_INVALID, "\"ttl\" value must be less than \"max_ttl\" value");
		goto out;
	}
	json_object_set_new(o, "key_type", json_string(pki__key_type_name(t)));
	json_object_set_new(o, "key_bits", json_integer(bits));
	json_object_set_new(o, "signature_bits", json_integer(sb));
	json_object_set_new(o, "not_after", json_string(request_str(req, "not_after")));
	json_object_set_new(o, "issuer_ref", json_string(request_str(req, "issuer_ref")));
	if (!json_string_value(json_object_get(o, "issuer_ref"))[0])
		json_object_set_new(o, "issuer_ref", json_string("default"));
	char key[160];
	snprintf(key, sizeof(key), "role/%s", name);
	rc = view_put_json(req->storage, key, o, err);
	if (!rc) {
		role_uncache(b, name);
		resp->data = o; /* transferred: Vault answers with the role */
		o = NULL;
	}
out:
	json_decref(o);
	return rc;
}

static int role_read(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	json_t *o = NULL;
	int rc = pki__role_load(req->backend, request_str(req, "name"), &o, err);
	if (rc)
		return rc;
	if (!o)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	resp->data = json_deep_copy(o);
	json_decref(o);
	return 0;
}

static int role_delete(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	const char *name = request_str(req, "name");
	if (!valid_role_name(name))
		return 0;
	char key[160];
	snprintf(key, sizeof(key), "role/%s", name);
	int rc = view_delete(req->storage, key, err);
	role_uncache(req->backend, name);
	return rc;
}

static int role_list(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, "role/", &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	resp->data = json_pack("{s:o}", "keys", arr);
	return 0;
}

static int role_exists(struct logical_request *req, struct verr *err)
{
	json_t *o = NULL;
	int rc = pki__role_load(req->backend, request_str(req, "name"), &o, err);
	if (rc)
		return rc;
	rc = o != NULL;
	json_decref(o);
	return rc;
}

static const struct field_def role_fields[] = {
	{"name", FT_STRING, NULL, "role name", true},
	{"ttl", FT_DURATION, "0", "default TTL of issued certificates", false},
	{"max_ttl", FT_DURATION, "0", "maximum TTL of issued certificates", false},
	{"allow_localhost", FT_BOOL, "true", "allow localhost", false},
	{"allowed_domains", FT_STRSLICE, "", "domains the role may issue for", false},
	{"allowed_domains_template", FT_BOOL, "false", "", false},
	{"allow_bare_domains", FT_BOOL, "false", "", false},
	{"allow_subdomains", FT_BOOL, "false", "", false},
	{"allow_glob_domains", FT_BOOL, "false", "", false},
	{"allow_wildcard_certificates", FT_BOOL, "true", "", false},
	{"allow_any_name", FT_BOOL, "false", "", false},
	{"enforce_hostnames", FT_BOOL, "true", "", false},
	{"allow_ip_sans", FT_BOOL, "true", "", false},
	{"allowed_uri_sans", FT_STRSLICE, "", "", false},
	{"allowed_uri_sans_template", FT_BOOL, "false", "", false},
	{"allowed_other_sans", FT_STRSLICE, "", "", false},
	{"allowed_serial_numbers", FT_STRSLICE, "", "", false},
	{"allowed_user_ids", FT_STRSLICE, "", "", false},
	{"server_flag", FT_BOOL, "true", "", false},
	{"client_flag", FT_BOOL, "true", "", false},
	{"code_signing_flag", FT_BOOL, "false", "", false},
	{"email_protection_flag", FT_BOOL, "false", "", false},
	{"key_type", FT_STRING, "rsa", "rsa, ec, ed25519 or any", false},
	{"key_bits", FT_INT, "0", "", false},
	{"signature_bits", FT_INT, "0", "", false},
	{"use_pss", FT_BOOL, "false", "", false},
	{"key_usage", FT_STRSLICE, "DigitalSignature,KeyAgreement,KeyEncipherment", "", false},
	{"ext_key_usage", FT_STRSLICE, "", "", false},
	{"ext_key_usage_oids", FT_STRSLICE, "", "", false},
	{"use_csr_common_name", FT_BOOL, "true", "", false},
	{"use_csr_sans", FT_BOOL, "true", "", false},
	{"ou", FT_STRSLICE, "", "", false},
	{"organization", FT_STRSLICE, "", "", false},
	{"country", FT_STRSLICE, "", "", false},
	{"locality", FT_STRSLICE, "", "", false},
	{"province", FT_STRSLICE, "", "", false},
	{"street_address", FT_STRSLICE, "", "", false},
	{"postal_code", FT_STRSLICE, "", "", false},
	{"generate_lease", FT_BOOL, "false", "", false},
	{"no_store", FT_BOOL, "false", "", false},
	{"require_cn", FT_BOOL, "true", "", false},
	{"policy_identifiers", FT_STRSLICE, "", "", false},
	{"basic_constraints_valid_for_non_ca", FT_BOOL, "false", "", false},
	{"not_before_duration", FT_DURATION, "30", "", false},
	{"not_after", FT_STRING, "", "", false},
	{"cn_validations", FT_STRSLICE, "email,hostname", "", false},
	{"issuer_ref", FT_STRING, "default", "", false},
	{NULL},
};

static const struct path_def role_paths[] = {
	{.pattern = "roles/?", .ops = {{LOP_LIST, role_list}}, .help = "List the roles."},
	{.pattern = "roles/{name}",
	 .fields = role_fields,
	 .ops = {{LOP_READ, role_read},
		 {LOP_CREATE, role_write},
		 {LOP_UPDATE, role_write},
		 {LOP_DELETE, role_delete}},
	 .exists = role_exists,
	 .help = "Manage the roles that can be created with this backend."},
	{NULL},
};

const struct path_def *pki__role_paths(void)
{
	return role_paths;
}
