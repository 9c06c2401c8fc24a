/*
 * backend.c - the PKI secrets engine (type "pki"): the per-mount instance,
 * its path table (the tables of role.c, issuers.c and crl.c plus the ones
 * here), and the certificate-issuing paths: issue/:role, sign/:role,
 * sign-verbatim(/:role), issuer/:ref/issue|sign/:role, and the CA reads
 * ca, ca/pem, ca_chain, cert/ca_chain. The contract is Vault's PKI API
 * (see docs/secrets-pki.md); the internal layout is in pki_int.h.
 *
 * A leased certificate (role generate_lease) carries its serial in the
 * lease's internal data; revoking the lease revokes the certificate.
 */
#include "secrets/secrets.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/pki/pki_int.h"
#include "util/buf.h"
#include "util/duration.h"

bool pki__format_ok(const char *f)
{
	return f && (!strcmp(f, "pem") || !strcmp(f, "der") || !strcmp(f, "pem_bundle"));
}

static char *der_b64_of_pem(const char *pem)
{
	X509 *x = pki__x509_from_pem(pem);
	char *s = x ? pki__x509_to_der_b64(x) : NULL;
	X509_free(x);
	return s;
}

int pki__cert_response(json_t *data, X509 *x, const struct pki_issuer *iss, const char *format,
		       struct verr *err)
{
	bool der = !strcmp(format, "der");
	char serial[PKI_SERIAL_HEX + 4];
	pki__serial_colon(X509_get0_serialNumber(x), serial, sizeof(serial));
	char *cert = der ? pki__x509_to_der_b64(x) : pki__x509_to_pem(x);
	json_t *chain = json_array();
	if (!cert || !chain) {
		free(cert);
		json_decref(chain);
		return verr_set(err, VERR_INTERNAL, "could not encode the certificate");
	}
	size_t i;
	json_t *v;
	json_array_foreach(iss->chain, i, v)
	{
		if (der) {
			char *d = der_b64_of_pem(json_string_value(v));
			json_array_append_new(chain, json_string(d ? d : ""));
			free(d);
		} else {
			json_array_append(chain, v);
		}
	}
	const char *ica = json_string_value(json_array_get(chain, 0));
	json_object_set_new(data, "certificate", json_string(cert));
	json_object_set_new(data, "issuing_ca", json_string(ica ? ica : ""));
	json_object_set_new(data, "ca_chain", chain);
	json_object_set_new(data, "serial_number", json_string(serial));
	json_object_set_new(data, "expiration",
			    json_integer(pki__asn1_time_unix(X509_get0_notAfter(x))));
	free(cert);
	return 0;
}

/* ---- issue / sign ---- */

enum sign_mode { MODE_ISSUE, MODE_SIGN, MODE_VERBATIM };

static const char *const subj_keys[7] = {"ou",       "organization",   "country",    "locality",
					 "province", "street_address", "postal_code"};

static int check_names(const struct pki_role *r, const char *cn, json_t *dns, json_t *ips,
		       json_t *uris, struct verr *err)
{
	if (cn && *cn && !pki__role_name_allowed(r, cn))
		return verr_set(err, VERR_INVALID, "common name %.256s not allowed by this role", cn);
	size_t i;
	json_t *v;
	json_array_foreach(dns, i, v)
	{
		if (!pki__role_name_allowed(r, json_string_value(v)))
			return verr_set(err, VERR_INVALID,
					"subject alternate name %.256s not allowed by this role",
					json_string_value(v));
	}
	if (json_array_size(ips) && !r->allow_ip_sans)
		return verr_set(err, VERR_INVALID,
				"IP Subject Alternative Names are not allowed in this role, but was "
				"provided %.64s",
				json_string_value(json_array_get(ips, 0)));
	json_array_foreach(uris, i, v)
	{
		if (!json_array_size(r->allowed_uri_sans))
			return verr_set(err, VERR_INVALID,
					"URI Subject Alternative Names are not allowed in this role, "
					"but were provided via the API");
		if (!pki__role_uri_allowed(r, json_string_value(v)))
			return verr_set(err, VERR_INVALID, "URI Subject Alternative Name %.256s not "
							   "allowed by this role",
					json_string_value(v));
	}
	return 0;
}

static int check_csr_key(const struct pki_role *r, EVP_PKEY *pub, struct verr *err)
{
	enum pki_key_type t;
	int bits;
	pki__key_info(pub, &t, &bits);
	if (!t)
		return verr_set(err, VERR_INVALID, "unsupported key type in the CSR");
	if (r->key_type == PKI_KEY_ANY)
		return 0;
	if (t != r->key_type)
		return verr_set(err, VERR_INVALID, "role requires keys of type %s",
				pki__key_type_name(r->key_type));
	if (r->key_bits && bits < r->key_bits)
		return verr_set(err, VERR_INVALID,
				"role requires a minimum of a %d-bit key, but CSR's key is %d bits",
				r->key_bits, bits);
	return 0;
}

static int do_issue(struct logical_request *req, struct logical_response *resp,
		    enum sign_mode mode, struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *role_name = request_str(req, "role");
	const char *format = request_str(req, "format");
	json_t *ro = NULL;
	struct pki_state *s = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *csr = NULL;
	X509 *x = NULL;
	char *csr_cn = NULL;
	json_t *dns = json_array(), *ips = NULL, *uris = NULL;
	int rc = 0;
	if (!pki__format_ok(format)) {
		rc = verr_set(err, VERR_INVALID, "unknown format \"%.32s\"", format);
		goto out;
	}
	struct pki_role r;
	if (role_name) {
		if ((rc = pki__role_load(b, role_name, &ro, err)))
			goto out;
		if (!ro) {
			rc = verr_set(err, VERR_INVALID, "unknown role: %.128s", role_name);
			goto out;
		}
		pki__role_from_json(&r, ro);
	} else {
		/* sign-verbatim without a role: anything, leaf defaults */
		memset(&r, 0, sizeof(r));
		r.allow_any_name = true;
		r.allow_ip_sans = true;
		r.key_type = PKI_KEY_ANY;
		r.server_flag = r.client_flag = false;
		r.not_before_duration = 30;
	}
	if (mode == MODE_ISSUE && r.key_type == PKI_KEY_ANY) {
		rc = verr_set(err, VERR_INVALID, "role key type \"any\" not allowed for issuing "
						 "certificates, only signing");
		goto out;
	}
	s = pki__state_get(b);
	const char *ref = request_has(req, "issuer_ref") || !r.issuer_ref ? request_str(req, "issuer_ref")
									  : r.issuer_ref;
	struct pki_issuer *iss = pki__issuer_find(s, ref);
	if (!iss) {
		rc = verr_set(err, VERR_INVALID,
			      s->n_issuers ? "unable to find PKI issuer for reference: %.64s"
					   : "no default issuer currently configured%.0s",
			      ref ? ref : "");
		goto out;
	}
	if (!iss->pkey) {
		rc = verr_set(err, VERR_INVALID, "issuer %.64s has no private key in this mount", iss->id);
		goto out;
	}
	ips = pki__strlist(request_json(req, "ip_sans"));
	uris = pki__strlist(request_json(req, "uri_sans"));
	if ((rc = pki__check_ips(ips, err)))
		goto out;
	if (json_array_size(request_json(req, "other_sans"))) {
		rc = verr_set(err, VERR_INVALID, "other_sans are not supported by this server");
		goto out;
	}
	const char *cn = request_str(req, "common_name");
	EVP_PKEY *pub = NULL;
	X509_NAME *verbatim_name = NULL;
	if (mode != MODE_ISSUE) {
		const char *pem = request_str(req, "csr");
		csr = pem && *pem ? pki__csr_from_pem(pem) : NULL;
		if (!csr) {
			rc = verr_set(err, VERR_INVALID,
				      "certificate request could not be parsed: no PEM-encoded CSR found");
			goto out;
		}
		pub = X509_REQ_get0_pubkey(csr);
		if (!pub || X509_REQ_verify(csr, pub) != 1) {
			ERR_clear_error();
			rc = verr_set(err, VERR_INVALID, "request signature invalid");
			goto out;
		}
		if ((rc = check_csr_key(&r, pub, err)))
			goto out;
		json_t *cdns = json_array(), *cips = json_array(), *curis = json_array();
		pki__csr_names(csr, &csr_cn, cdns, cips, curis);
		if (mode == MODE_VERBATIM) {
			verbatim_name = X509_REQ_get_subject_name(csr);
			cn = csr_cn;
			json_array_extend(dns, cdns);
			json_array_extend(ips, cips);
			json_array_extend(uris, curis);
		} else {
			if (r.use_csr_common_name && csr_cn && *csr_cn)
				cn = csr_cn;
			if (r.use_csr_sans && !json_array_size(request_json(req, "alt_names"))) {
				json_array_extend(dns, cdns);
				if (!json_array_size(ips))
					json_array_extend(ips, cips);
				if (!json_array_size(uris))
					json_array_extend(uris, curis);
			}
		}
		json_decref(cdns);
		json_decref(cips);
		json_decref(curis);
	}
	if ((!cn || !*cn) && r.require_cn && mode != MODE_VERBATIM) {
		rc = verr_set(err, VERR_INVALID,
			      "the common_name field is required, or must be provided in a CSR with "
			      "\"use_csr_common_name\" set to true, unless \"require_cn\" is set to false");
		goto out;
	}
	json_t *alt = pki__strlist(request_json(req, "alt_names"));
	json_array_extend(dns, alt);
	json_decref(alt);
	/* the CN goes into the SANs (first) unless excluded */
	bool cn_in_sans = cn && *cn && !request_bool(req, "exclude_cn_from_sans");
	if (cn_in_sans && mode != MODE_VERBATIM) {
		bool dup = false;
		size_t i;
		json_t *v;
		json_array_foreach(dns, i, v) dup |= !strcasecmp(json_string_value(v), cn);
		if (!dup && (strchr(cn, '@') || pki__valid_hostname(cn)))
			json_array_insert_new(dns, 0, json_string(cn));
	}
	if (mode != MODE_VERBATIM && (rc = check_names(&r, cn, dns, ips, uris, err)))
		goto out;
	int64_t now = pki__now(b), not_after = 0;
	if ((rc = pki__role_not_after(&r, request_duration(req, "ttl"), request_str(req, "not_after"),
				      now, sysview_default_lease_ttl(req->sys),
				      sysview_max_lease_ttl(req->sys), iss, &not_after, resp, err)))
		goto out;
	if (mode == MODE_ISSUE) {
		int bits = r.key_bits;
		if ((rc = pki__key_bits_check(r.key_type, &bits, err)) ||
		    (rc = pki__keygen(&key, r.key_type, bits, err)))
			goto out;
		pub = key;
	}
	struct pki_cert_params p = {
		.subj = {.cn = cn, .dns = dns, .ips = ips, .uris = uris,
			 .serial_number = request_str(req, "serial_number")},
		.subject_name = verbatim_name,
		.pubkey = pub,
		.not_before = now - (r.not_before_duration > 0 ? r.not_before_duration : 0),
		.not_after = not_after,
		.key_usage = r.key_usage,
		.ext_key_usage = r.ext_key_usage,
		.ext_key_usage_oids = r.ext_key_usage_oids,
		.server_flag = r.server_flag,
		.client_flag = r.client_flag,
		.code_signing_flag = r.code_signing_flag,
		.email_protection_flag = r.email_protection_flag,
		.basic_constraints = r.basic_constraints_valid_for_non_ca,
		.urls = s->urls,
	};
	json_t **lists[7] = {&p.subj.ou,       &p.subj.organization,   &p.subj.country,
			     &p.subj.locality, &p.subj.province,       &p.subj.street_address,
			     &p.subj.postal_code};
	json_t *role_lists[7] = {r.ou,       r.organization,   r.country,    r.locality,
				 r.province, r.street_address, r.postal_code};
	for (int i = 0; i < 7; i++)
		*lists[i] = role_lists[i];
	(void)subj_keys;
	if (mode == MODE_VERBATIM) {
		if (request_has(req, "key_usage"))
			p.key_usage = request_json(req, "key_usage");
		if (request_has(req, "ext_key_usage"))
			p.ext_key_usage = request_json(req, "ext_key_usage");
	}
	if ((rc = pki__cert_build(&x, &p, iss, NULL, err)))
		goto out;
	if (!r.no_store && (rc = pki__cert_store(b, x, err)))
		goto out;
	resp->data = json_object();
	if ((rc = pki__cert_response(resp->data, x, iss, format, err)))
		goto out;
	if (key) {
		const char *pkf = request_str(req, "private_key_format");
		bool der = !strcmp(format, "der");
		const char *kf = pkf && !strcmp(pkf, "pkcs8") ? "pkcs8" : "der";
		char *k = der ? pki__key_to_der_b64(key, kf) : pki__key_to_pem(key, kf);
		if (!k) {
			rc = verr_set(err, VERR_INTERNAL, "could not encode the private key");
			goto out;
		}
		enum pki_key_type t;
		int bits;
		pki__key_info(key, &t, &bits);
		if (!strcmp(format, "pem_bundle")) {
			/* certificate = key + certificate (+ chain when not a root) */
			struct buf bb;
			buf_init_secret(&bb, 8192);
			buf_str(&bb, k);
			buf_char(&bb, '\n');
			buf_str(&bb, json_string_value(json_object_get(resp->data, "certificate")));
			size_t i;
			json_t *v;
			json_array_foreach(iss->chain, i, v)
			{
				if (json_array_size(iss->chain) == 1 && pki__self_signed(iss->cert))
					break;
				buf_char(&bb, '\n');
				buf_str(&bb, json_string_value(v));
			}
			size_t blen = 0;
			char *bundle = buf_take(&bb, &blen);
			json_object_set_new(resp->data, "certificate", json_string(bundle ? bundle : ""));
			if (bundle)
				OPENSSL_cleanse(bundle, blen);
			free(bundle);
		}
		json_object_set_new(resp->data, "private_key", json_string(k));
		json_object_set_new(resp->data, "private_key_type",
				    json_string(pki__key_type_name(t)));
		pki__free_secret_str(k);
	}
	if (r.generate_lease) {
		resp->secret = calloc(1, sizeof(*resp->secret));
		if (!resp->secret) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		resp->secret->ttl = not_after - now;
		resp->secret->max_ttl = not_after - now;
		resp->secret->renewable = false;
		resp->secret->internal = json_pack(
			"{s:s,s:s}", "secret_type", "pki",
			"serial_number", json_string_value(json_object_get(resp->data, "serial_number")));
	}
out:
	if (s)
		pki__state_put(b, s);
	json_decref(ro);
	json_decref(dns);
	json_decref(ips);
	json_decref(uris);
	free(csr_cn);
	EVP_PKEY_free(key);
	X509_REQ_free(csr);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

static int path_issue(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	return do_issue(req, resp, MODE_ISSUE, err);
}

static int path_sign(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	return do_issue(req, resp, MODE_SIGN, err);
}

static int path_sign_verbatim(struct logical_request *req, struct logical_response *resp,
			      struct verr *err)
{
	return do_issue(req, resp, MODE_VERBATIM, err);
}

/* ---- CA reads ---- */

static int set_raw(struct logical_response *resp, const char *p, size_t n, const char *ctype)
{
	resp->raw = true;
	resp->raw_body = malloc(n ? n : 1);
	resp->raw_content_type = strdup(ctype);
	if (!resp->raw_body || !resp->raw_content_type)
		return VERR_INTERNAL;
	memcpy(resp->raw_body, p, n);
	resp->raw_len = n;
	return 0;
}

static int path_ca(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *rp = req->rel_path ? req->rel_path : "";
	struct pki_state *s = pki__state_get(b);
	int rc = 0;
	if (!s->def) {
		/* Vault answers an empty body for a mount without a CA */
		rc = set_raw(resp, "", 0, "application/pkix-cert");
	} else if (!strcmp(rp, "ca")) {
		unsigned char *der = NULL;
		int n = i2d_X509(s->def->cert, &der);
		rc = n > 0 ? set_raw(resp, (char *)der, (size_t)n, "application/pkix-cert")
			   : VERR_INTERNAL;
		OPENSSL_free(der);
	} else if (!strcmp(rp, "ca/pem")) {
		rc = set_raw(resp, s->def->cert_pem, strlen(s->def->cert_pem),
			     "application/pem-certificate-chain");
	} else { /* ca_chain, cert/ca_chain: the chain as PEM text */
		struct buf bb;
		buf_init(&bb, 4096);
		size_t i;
		json_t *v;
		json_array_foreach(s->def->chain, i, v)
		{
			if (i)
				buf_char(&bb, '\n');
			buf_str(&bb, json_string_value(v));
		}
		size_t n = 0;
		char *all = buf_take(&bb, &n);
		rc = all ? set_raw(resp, all, n, "application/pem-certificate-chain") : VERR_INTERNAL;
		free(all);
	}
	pki__state_put(b, s);
	if (rc == VERR_INTERNAL)
		verr_set(err, VERR_INTERNAL, "out of memory");
	return rc;
}

/* ---- path table ---- */

#define ISSUE_FIELDS                                                                              \
	{"role", FT_STRING, NULL, "", false}, {"common_name", FT_STRING, "", "", false},           \
		{"alt_names", FT_STRSLICE, "", "", false}, {"ip_sans", FT_STRSLICE, "", "", false}, \
		{"uri_sans", FT_STRSLICE, "", "", false},                                           \
		{"other_sans", FT_STRSLICE, "", "", false},                                         \
		{"ttl", FT_DURATION, "0", "", false}, {"not_after", FT_STRING, "", "", false},      \
		{"format", FT_STRING, "pem", "pem, der or pem_bundle", false},                      \
		{"private_key_format", FT_STRING, "der", "der, pem or pkcs8", false},               \
		{"exclude_cn_from_sans", FT_BOOL, "false", "", false},                              \
		{"serial_number", FT_STRING, "", "", false},                                        \
		{"user_ids", FT_STRSLICE, "", "", false},                                           \
		{"remove_roots_from_chain", FT_BOOL, "false", "", false},                           \
		{"issuer_ref", FT_STRING, "default", "", false}

static const struct field_def issue_fields[] = {ISSUE_FIELDS, {NULL}};
static const struct field_def sign_fields[] = {
	ISSUE_FIELDS,
	{"csr", FT_STRING, "", "PEM CSR", false},
	{"key_usage", FT_STRSLICE, "DigitalSignature,KeyAgreement,KeyEncipherment", "", false},
	{"ext_key_usage", FT_STRSLICE, "", "", false},
	{"ext_key_usage_oids", FT_STRSLICE, "", "", false},
	{"signature_bits", FT_INT, "0", "", false},
	{"use_pss", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct path_def issue_paths[] = {
	{.pattern = "issue/{role}", .fields = issue_fields, .ops = {{LOP_UPDATE, path_issue}},
	 .help = "Issue a certificate and private key for a role."},
	{.pattern = "issuer/{issuer_ref}/issue/{role}", .fields = issue_fields,
	 .ops = {{LOP_UPDATE, path_issue}}, .help = "Issue with a named issuer."},
	{.pattern = "sign/{role}", .fields = sign_fields, .ops = {{LOP_UPDATE, path_sign}},
	 .help = "Sign a CSR under a role's rules."},
	{.pattern = "issuer/{issuer_ref}/sign/{role}", .fields = sign_fields,
	 .ops = {{LOP_UPDATE, path_sign}}, .help = "Sign a CSR with a named issuer."},
	{.pattern = "sign-verbatim", .fields = sign_fields,
	 .ops = {{LOP_UPDATE, path_sign_verbatim}}, .help = "Sign a CSR as it is."},
	{.pattern = "sign-verbatim/{role}", .fields = sign_fields,
	 .ops = {{LOP_UPDATE, path_sign_verbatim}}, .help = "Sign a CSR as it is (role TTLs)."},
	{.pattern = "issuer/{issuer_ref}/sign-verbatim", .fields = sign_fields,
	 .ops = {{LOP_UPDATE, path_sign_verbatim}}, .help = "Sign a CSR as it is."},
	{.pattern = "ca", .ops = {{LOP_READ, path_ca}}, .unauthenticated = true,
	 .help = "The default issuer's certificate (DER)."},
	{.pattern = "ca/pem", .ops = {{LOP_READ, path_ca}}, .unauthenticated = true,
	 .help = "The default issuer's certificate (PEM)."},
	{.pattern = "ca_chain", .ops = {{LOP_READ, path_ca}}, .unauthenticated = true,
	 .help = "The default issuer's chain (PEM)."},
	{.pattern = "cert/ca_chain", .ops = {{LOP_READ, path_ca}}, .unauthenticated = true,
	 .help = "The default issuer's chain (PEM)."},
	{NULL},
};

const struct path_def *pki__issue_paths(void)
{
	return issue_paths;
}

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static struct path_def *table;

static size_t count(const struct path_def *t)
{
	size_t n = 0;
	while (t[n].pattern)
		n++;
	return n;
}

static void table_init(void)
{
	/* order matters: specific patterns before {capture} ones */
	const struct path_def *parts[] = {pki__issue_paths(), pki__crl_paths(), pki__ocsp_paths(),
					  pki__ca_paths(), pki__role_paths()};
	const size_t nparts = sizeof(parts) / sizeof(parts[0]);
	size_t n = 0;
	for (size_t i = 0; i < nparts; i++)
		n += count(parts[i]);
	table = calloc(n + 1, sizeof(*table));
	if (!table)
		return;
	size_t o = 0;
	for (size_t i = 0; i < nparts; i++)
		for (size_t k = 0; parts[i][k].pattern; k++)
			table[o++] = parts[i][k];
}

static const struct path_def *pki_paths(void *inst)
{
	pthread_once(&table_once, table_init);
	return table;
}

/* ---- instance ---- */

static void pki_cleanup(void *inst)
{
	struct pki_backend *b = inst;
	if (!b)
		return;
	pki__state_put(b, b->state);
	pki__crl_index_free(b);
	json_decref(b->roles);
	json_decref(b->tidy_status);
	pthread_mutex_destroy(&b->state_lock);
	pthread_mutex_destroy(&b->cfg_lock);
	pthread_mutex_destroy(&b->crl_lock);
	pthread_mutex_destroy(&b->role_lock);
	free(b);
}

static int pki_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	struct pki_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&b->state_lock, NULL);
	pthread_mutex_init(&b->cfg_lock, NULL);
	pthread_mutex_init(&b->crl_lock, NULL);
	pthread_mutex_init(&b->role_lock, NULL);
	b->view = mi->storage;
	b->sys = mi->sys;
	b->auto_tidy_last = pki__now(b); /* the first auto-tidy waits an interval (Vault) */
	b->roles = json_object();
	int rc = b->roles ? pki__state_reload(b, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		pki_cleanup(b);
		return rc;
	}
	*out = b;
	return 0;
}

static void pki_invalidate(void *inst, const char *key)
{
	struct pki_backend *b = inst;
	if (!strncmp(key, "role/", 5)) {
		pthread_mutex_lock(&b->role_lock);
		json_object_del(b->roles, key + 5);
		pthread_mutex_unlock(&b->role_lock);
	} else if (!strncmp(key, "issuer/", 7) || !strncmp(key, "key/", 4) ||
		   !strncmp(key, "config/", 7)) {
		pki__state_reload(b, NULL);
	} else if (!strncmp(key, "revoked/", 8) || !strncmp(key, "crl/", 4)) {
		pthread_mutex_lock(&b->crl_lock);
		pki__crl_index_free(b);
		pthread_mutex_unlock(&b->crl_lock);
	}
}

/* Lease revocation (generate_lease): revoke the certificate. */
static int pki_revoke(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	const char *serial =
		json_string_value(json_object_get(req->secret_internal, "serial_number"));
	if (!serial)
		return 0;
	struct logical_response tmp = {0};
	int rc = pki__revoke_serial(req->backend, serial, &tmp, err);
	logical_response_reset(&tmp);
	/* an unstored (no_store) certificate cannot be revoked: nothing to do */
	if (rc == VERR_INVALID && err && strstr(err->msg, "not found"))
		return 0;
	return rc;
}

static int64_t cfg_secs(json_t *cfg, const char *k, int64_t def)
{
	int64_t v = def;
	const char *t = json_string_value(json_object_get(cfg, k));
	if (t && duration_parse(&v, t, NULL))
		v = def;
	return v;
}

/* Once a minute on the active node. CRLs: under auto_rebuild the complete
 * CRL is rebuilt when it is within auto_rebuild_grace_period of expiring
 * (Vault), otherwise once a day; with enable_delta the delta CRL every
 * delta_rebuild_interval. Then auto-tidy when due. */
static int pki_periodic(void *inst, struct verr *err)
{
	struct pki_backend *b = inst;
	struct pki_state *s = pki__state_get(b);
	bool any = false;
	for (size_t i = 0; i < s->n_issuers; i++)
		any |= s->issuers[i]->pkey != NULL;
	bool auto_rebuild = json_is_true(json_object_get(s->crl_cfg, "auto_rebuild"));
	bool delta = json_is_true(json_object_get(s->crl_cfg, "enable_delta"));
	int64_t expiry = cfg_secs(s->crl_cfg, "expiry", PKI_DEFAULT_CRL_EXPIRY);
	int64_t grace = cfg_secs(s->crl_cfg, "auto_rebuild_grace_period", 12 * 3600);
	int64_t delta_every = cfg_secs(s->crl_cfg, "delta_rebuild_interval", 15 * 60);
	pki__state_put(b, s);
	int64_t now = pki__now(b);
	int rc = 0;
	if (any) {
		int64_t full_every = auto_rebuild ? expiry - grace : 86400;
		if (full_every < 60)
			full_every = 60;
		if (now - b->tidy_last >= full_every) {
			b->tidy_last = b->delta_last = now;
			rc = pki__crl_rebuild(b, err);
		} else if (delta && now - b->delta_last >= delta_every) {
			b->delta_last = now;
			rc = pki__crl_rebuild_delta(b, err);
		}
	}
	struct verr terr = {0};
	int trc = pki__auto_tidy(b, rc ? &terr : err);
	return rc ? rc : trc;
}

const struct backend_ops pki_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "pki",
	.init = pki_init,
	.cleanup = pki_cleanup,
	.paths = pki_paths,
	.revoke = pki_revoke,
	.periodic = pki_periodic,
	.invalidate = pki_invalidate,
};
