/*
 * cert.c - the TLS certificate auth method (type "cert"), Vault's API:
 *
 *   certs/NAME   a trusted certificate (CA, intermediate or a leaf itself)
 *                with constraints (allowed_names, allowed_common_names,
 *                allowed_dns_sans, allowed_email_sans, allowed_uri_sans,
 *                allowed_organizational_units, required_extensions),
 *                display_name and the token_* fields
 *   crls/NAME    a CRL (PEM); a certificate of a login chain whose serial
 *                any CRL lists is refused
 *   config       disable_binding, enable_identity_alias_metadata
 *   login        {name?}: the client's TLS certificate (the listener hands
 *                the leaf and the intermediates it sent as PEM) must chain
 *                to the trusted certificates of `name`, or of any entry,
 *                be within its validity period, not be revoked, and meet
 *                the entry's constraints; the first entry that matches
 *                issues the token
 *
 * Verification is OpenSSL's X509_verify_cert with the entry's certificates
 * as trust anchors (partial chains allowed, as Go's verifier treats every
 * pool certificate as a root) and the client's intermediates as untrusted
 * helpers. Renewal re-checks the certificate kept from login against the
 * entry as it is now (still there, same policies, still chains, not
 * expired, not revoked).
 *
 * Storage (the mount's view): cert/NAME, crls/NAME ({crl, serials}),
 * config. Thread-safety: handlers keep no state outside storage.
 */
#include "auth/auth.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/cidr.h"

#define BAD_CERT "invalid certificate or no client certificate supplied"
#define NO_MATCH "no chain matching all constraints could be found for this login certificate"

static const char *const constraint_lists[] = {
	"allowed_names",      "allowed_common_names", "allowed_dns_sans",
	"allowed_email_sans", "allowed_uri_sans",     "allowed_organizational_units",
	"required_extensions", NULL,
};

/* ---- PEM helpers ---- */

/* Every certificate in a PEM text (NULL when none parses). */
static STACK_OF(X509) *pem_certs(const char *pem)
{
	if (!pem || !*pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while (b && sk && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x))
			X509_free(x);
	ERR_clear_error();
	BIO_free(b);
	if (sk && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

static char *bn_dec(const ASN1_INTEGER *ai)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *d = bn ? BN_bn2dec(bn) : NULL;
	char *out = d ? strdup(d) : NULL;
	OPENSSL_free(d);
	BN_free(bn);
	return out;
}

/* aa:bb:cc of a key id (Vault's GetHexFormatted); "" when absent. */
static char *hex_colon(const ASN1_OCTET_STRING *os)
{
	int n = os ? ASN1_STRING_length(os) : 0;
	const unsigned char *p = os ? ASN1_STRING_get0_data(os) : NULL;
	char *out = malloc(n ? (size_t)n * 3 : 1);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(out + i * 3, 4, "%02x%s", p[i], i + 1 < n ? ":" : "");
	return out;
}

/* The subject's first entry of nid as UTF-8 (malloc'd), or NULL. */
static char *subject_field(X509 *x, int nid, int lastpos)
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, nid, lastpos);
	if (i < 0)
		return NULL;
	unsigned char *u = NULL;
	int len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	char *out = len >= 0 ? strndup((const char *)u, (size_t)len) : NULL;
	OPENSSL_free(u);
	return out;
}

/* ---- constraints (Vault's matches* functions) ---- */

static bool glob_any(const json_t *patterns, const char *value)
{
	size_t i;
	json_t *p;
	json_array_foreach(patterns, i, p) {
		const char *s = json_string_value(p);
		if (s && value && fnmatch(s, value, 0) == 0)
			return true;
	}
	return false;
}

/* Does any SAN of this type (GEN_DNS, GEN_EMAIL, GEN_URI) match? */
static bool san_matches(X509 *x, int type, const json_t *patterns)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool ok = false;
	for (int i = 0; gens && !ok && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != type)
			continue;
		const ASN1_IA5STRING *s = g->d.ia5;
		char *v = strndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
		ok = v && glob_any(patterns, v);
		free(v);
	}
	GENERAL_NAMES_free(gens);
	return ok;
}

/* "oid:value" (value may glob) for each required extension; the value is
 * compared with the extension's content as a string (Vault: ASN.1 strings). */
static bool extensions_match(X509 *x, const json_t *required)
{
	size_t i;
	json_t *r;
	json_array_foreach(required, i, r) {
		const char *spec = json_string_value(r);
		const char *colon = spec ? strchr(spec, ':') : NULL;
		if (!colon)
			return false;
		char oid[128];
		snprintf(oid, sizeof(oid), "%.*s", (int)(colon - spec), spec);
		ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
		int idx = obj ? X509_get_ext_by_OBJ(x, obj, -1) : -1;
		ASN1_OBJECT_free(obj);
		if (idx < 0)
			return false;
		ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(x, idx));
		const unsigned char *p = ASN1_STRING_get0_data(os);
		ASN1_TYPE *t = d2i_ASN1_TYPE(NULL, &p, ASN1_STRING_length(os));
		const ASN1_STRING *str = t && (t->type == V_ASN1_UTF8STRING ||
					       t->type == V_ASN1_PRINTABLESTRING ||
					       t->type == V_ASN1_IA5STRING)
						 ? t->value.asn1_string
						 : os;
		char *val = strndup((const char *)ASN1_STRING_get0_data(str),
				    (size_t)ASN1_STRING_length(str));
		ASN1_TYPE_free(t);
		bool ok = val && fnmatch(colon + 1, val, 0) == 0;
		free(val);
		if (!ok)
			return false;
	}
	return true;
}

static bool constraints_match(X509 *leaf, const json_t *entry)
{
	const json_t *names = json_object_get(entry, "allowed_names");
	const json_t *cns = json_object_get(entry, "allowed_common_names");
	const json_t *dns = json_object_get(entry, "allowed_dns_sans");
	const json_t *emails = json_object_get(entry, "allowed_email_sans");
	const json_t *uris = json_object_get(entry, "allowed_uri_sans");
	const json_t *ous = json_object_get(entry, "allowed_organizational_units");
	char *cn = subject_field(leaf, NID_commonName, -1);
	bool ok = true;
	/* allowed_names: the CN, a DNS SAN or an email SAN */
	if (json_array_size(names))
		ok = glob_any(names, cn) || san_matches(leaf, GEN_DNS, names) ||
		     san_matches(leaf, GEN_EMAIL, names);
	if (ok && json_array_size(cns))
		ok = glob_any(cns, cn);
	if (ok && json_array_size(dns))
		ok = san_matches(leaf, GEN_DNS, dns);
	if (ok && json_array_size(emails))
		ok = san_matches(leaf, GEN_EMAIL, emails);
	if (ok && json_array_size(uris))
		ok = san_matches(leaf, GEN_URI, uris);
	if (ok && json_array_size(ous)) {
		ok = false;
		for (int pos = -1;;) {
			X509_NAME *n = X509_get_subject_name(leaf);
			pos = X509_NAME_get_index_by_NID(n, NID_organizationalUnitName, pos);
			if (pos < 0)
				break;
			unsigned char *u = NULL;
			int len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, pos)));
			char *v = len >= 0 ? strndup((const char *)u, (size_t)len) : NULL;
			OPENSSL_free(u);
			ok = v && glob_any(ous, v);
			free(v);
			if (ok)
				break;
		}
	}
	if (ok && json_array_size(json_object_get(entry, "required_extensions")))
		ok = extensions_match(leaf, json_object_get(entry, "required_extensions"));
	free(cn);
	return ok;
}

/* ---- CRLs ---- */

/* Is any certificate of the chain listed by any stored CRL? */
static int chain_revoked(struct logical_request *req, STACK_OF(X509) *chain, bool *out,
			 struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	*out = false;
	int rc = view_list(req->storage, "crls/", &keys, &n, err);
	for (size_t i = 0; rc == 0 && i < n && !*out; i++) {
		char key[300];
		json_t *c = NULL;
		snprintf(key, sizeof(key), "crls/%s", keys[i]);
		rc = view_get_json(req->storage, key, &c, err);
		json_t *serials = json_object_get(c, "serials");
		for (int k = 0; rc == 0 && serials && k < sk_X509_num(chain) && !*out; k++) {
			char *s = bn_dec(X509_get0_serialNumber(sk_X509_value(chain, k)));
			*out = s && json_object_get(serials, s) != NULL;
			free(s);
		}
		json_decref(c);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return rc;
}

/* ---- verification ---- */

/* Does leaf (with the client's intermediates) chain to the entry's
 * certificates, now? *chain_out: the verified chain (caller frees). */
static bool chains_to(X509 *leaf, STACK_OF(X509) *untrusted, const json_t *entry,
		      STACK_OF(X509) **chain_out)
{
	*chain_out = NULL;
	STACK_OF(X509) *anchors = pem_certs(json_string_value(json_object_get(entry, "certificate")));
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;
	if (anchors && st && ctx) {
		for (int i = 0; i < sk_X509_num(anchors); i++)
			X509_STORE_add_cert(st, sk_X509_value(anchors, i));
		X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
		if (X509_STORE_CTX_init(ctx, st, leaf, untrusted) == 1 && X509_verify_cert(ctx) == 1) {
			ok = true;
			*chain_out = X509_STORE_CTX_get1_chain(ctx);
		}
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_pop_free(anchors, X509_free);
	return ok;
}

/*
 * Find the entry the presented chain logs in with: `name` only, or every
 * entry in name order. *out_name, *out_entry and *out_leaf (owned) on success;
 * VERR_INVALID with Vault's messages otherwise.
 */
static int match_entry(struct logical_request *req, const char *pem, const char *name,
		       char **out_name, json_t **out_entry, X509 **out_leaf, struct verr *err)
{
	*out_name = NULL;
	*out_entry = NULL;
	*out_leaf = NULL;
	STACK_OF(X509) *peer = pem_certs(pem);
	if (!peer)
		return verr_set(err, VERR_INVALID, BAD_CERT);
	X509 *leaf = sk_X509_shift(peer); /* the rest: untrusted intermediates */
	char **keys = NULL;
	size_t n = 0;
	int rc = 0;
	if (name && *name) {
		keys = calloc(1, sizeof(*keys));
		if (keys && (keys[0] = strdup(name)))
			n = 1;
	} else {
		rc = view_list(req->storage, "cert/", &keys, &n, err);
	}
	bool any_chain = false;
	for (size_t i = 0; rc == 0 && i < n && !*out_entry; i++) {
		char key[300];
		json_t *e = NULL;
		snprintf(key, sizeof(key), "cert/%s", keys[i]);
		if ((rc = view_get_json(req->storage, key, &e, err)) || !e)
			continue;
		STACK_OF(X509) *chain = NULL;
		if (chains_to(leaf, peer, e, &chain)) {
			any_chain = true;
			bool revoked = false;
			rc = chain_revoked(req, chain, &revoked, err);
			if (rc == 0 && !revoked && constraints_match(leaf, e)) {
				*out_entry = e;
				e = NULL; /* transferred */
				*out_name = strdup(keys[i]);
			}
		}
		sk_X509_pop_free(chain, X509_free);
		json_decref(e);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	sk_X509_pop_free(peer, X509_free);
	if (rc == 0 && !*out_entry)
		rc = verr_set(err, VERR_INVALID, "%s", any_chain ? NO_MATCH : BAD_CERT);
	if (rc == 0 && !*out_name)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (rc) {
		json_decref(*out_entry);
		*out_entry = NULL;
		free(*out_name);
		*out_name = NULL;
		X509_free(leaf);
		return rc;
	}
	*out_leaf = leaf;
	return 0;
}

static char *leaf_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_X509(b, x) == 1) {
		char *p = NULL;
		long n = BIO_get_mem_data(b, &p);
		out = n > 0 ? strndup(p, (size_t)n) : NULL;
	}
	BIO_free(b);
	return out;
}

static int h_login(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	if (!req->client_cert_pem || !*req->client_cert_pem)
		return verr_set(err, VERR_INVALID, "no client certificate found");
	char *name = NULL;
	json_t *e = NULL;
	X509 *leaf = NULL;
	struct logical_auth *a = NULL;
	int rc = match_entry(req, req->client_cert_pem, request_str(req, "name"), &name, &e, &leaf,
			     err);
	if (rc)
		return rc;
	const json_t *cfg = json_object_get(e, "token");
	if (!cidr_list_allows(json_object_get(cfg, "token_bound_cidrs"), req->remote_addr)) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = auth_token_cfg_fill(a, cfg, err)))
		goto out;
	char *cn = subject_field(leaf, NID_commonName, -1);
	char *serial = bn_dec(X509_get0_serialNumber(leaf));
	char *skid = hex_colon(X509_get0_subject_key_id(leaf));
	char *akid = hex_colon(X509_get0_authority_key_id(leaf));
	char *pem = leaf_pem(leaf);
	const char *dn = json_string_value(json_object_get(e, "display_name"));
	a->metadata = json_pack("{s:s, s:s, s:s, s:s, s:s}", "cert_name", name, "common_name",
				cn ? cn : "", "serial_number", serial ? serial : "",
				"subject_key_id", skid ? skid : "", "authority_key_id",
				akid ? akid : "");
	a->internal = json_pack("{s:s, s:s, s:O}", "cert_name", name, "certificate",
				pem ? pem : "", "policies", a->policies);
	a->display_name = strdup(dn && *dn ? dn : name);
	a->alias_name = strdup(cn ? cn : "");
	free(cn);
	free(serial);
	free(skid);
	free(akid);
	free(pem);
	if (!a->metadata || !a->internal || !a->display_name || !a->alias_name) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	resp->auth = a;
	a = NULL; /* transferred */
out:
	logical_auth_free(a);
	X509_free(leaf);
	json_decref(e);
	free(name);
	return rc;
}

/* Renewal: the certificate of the login, checked again against the entry
 * as it is now (same name only). */
static int h_renew(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	const json_t *in = req->secret_internal;
	const char *name = json_string_value(json_object_get(in, "cert_name"));
	const char *pem = json_string_value(json_object_get(in, "certificate"));
	if (!name || !pem || !*pem)
		return verr_set(err, VERR_DENIED, "cannot validate renewal for cert auth for non-stored client certificate");
	char key[300];
	json_t *e = NULL;
	snprintf(key, sizeof(key), "cert/%s", name);
	int rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		return rc;
	if (!e)
		return verr_set(err, VERR_DENIED, "certificate entry no longer exists, not renewing");
	const json_t *cfg = json_object_get(e, "token");
	if (!auth_policies_equivalent(json_object_get(cfg, "token_policies"),
				      json_object_get(in, "policies"))) {
		json_decref(e);
		return verr_set(err, VERR_DENIED, "policies have changed, not renewing");
	}
	json_decref(e);
	char *n2 = NULL;
	X509 *leaf = NULL;
	struct verr e2 = {0};
	rc = match_entry(req, pem, name, &n2, &e, &leaf, &e2);
	free(n2);
	X509_free(leaf);
	if (rc) {
		return verr_set(err, VERR_DENIED, "certificate no longer valid for this role, not renewing: %s",
				e2.msg);
	}
	cfg = json_object_get(e, "token");
	struct logical_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		json_decref(e);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	a->ttl = json_integer_value(json_object_get(cfg, "token_ttl"));
	a->max_ttl = json_integer_value(json_object_get(cfg, "token_max_ttl"));
	a->period = json_integer_value(json_object_get(cfg, "token_period"));
	a->renewable = true;
	resp->auth = a;
	json_decref(e);
	return 0;
}

/* ---- certs/NAME ---- */

static int name_key(char *buf, size_t cap, const char *prefix, struct logical_request *req,
		    struct verr *err)
{
	const char *n = request_str(req, "name");
	if (!n || !*n || strchr(n, '/') || strlen(n) > 200)
		return verr_set(err, VERR_INVALID, "missing or invalid name");
	snprintf(buf, cap, "%s%s", prefix, n);
	return 0;
}

static int cert_exists(struct logical_request *req, struct verr *err)
{
	char key[300];
	json_t *e = NULL;
	int rc = name_key(key, sizeof(key), "cert/", req, err);
	if (!rc)
		rc = view_get_json(req->storage, key, &e, err);
	json_decref(e);
	return rc ? rc : e != NULL;
}

static int h_cert_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	char key[300];
	json_t *e = NULL;
	int rc = name_key(key, sizeof(key), "cert/", req, err);
	if (!rc)
		rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		return rc;
	if (!e && !(e = json_pack("{s:s, s:s, s:o}", "certificate", "", "display_name", "",
				  "token", auth_token_cfg_new())))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (request_has(req, "certificate")) {
		const char *pem = request_str(req, "certificate");
		STACK_OF(X509) *sk = pem_certs(pem);
		if (!sk) {
			json_decref(e);
			return verr_set(err, VERR_INVALID, "failed to parse certificate");
		}
		sk_X509_pop_free(sk, X509_free);
		json_object_set_new(e, "certificate", json_string(pem));
	}
	if (!*json_string_value(json_object_get(e, "certificate"))) {
		json_decref(e);
		return verr_set(err, VERR_INVALID, "must specify certificate");
	}
	for (int i = 0; constraint_lists[i]; i++)
		if (request_has(req, constraint_lists[i]) || !json_object_get(e, constraint_lists[i])) {
			json_t *v = request_json(req, constraint_lists[i]);
			json_object_set_new(e, constraint_lists[i],
					    json_is_array(v) ? json_deep_copy(v) : json_array());
		}
	if (request_has(req, "display_name"))
		json_object_set_new(e, "display_name", json_string(request_str(req, "display_name")));
	json_t *cfg = json_object_get(e, "token");
	rc = auth_token_cfg_update(cfg, req, AUTH_LEGACY_TTL | AUTH_LEGACY_BOUND_CIDRS |
						     AUTH_LEGACY_PERIOD, err);
	if (!rc)
		rc = view_put_json(req->storage, key, e, err);
	json_decref(e);
	return rc;
}

static int h_cert_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char key[300];
	json_t *e = NULL;
	int rc = name_key(key, sizeof(key), "cert/", req, err);
	if (!rc)
		rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		return rc;
	if (!e)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *d = json_pack("{s:O, s:O}", "certificate", json_object_get(e, "certificate"),
			      "display_name", json_object_get(e, "display_name"));
	for (int i = 0; d && constraint_lists[i]; i++)
		json_object_set(d, constraint_lists[i], json_object_get(e, constraint_lists[i]));
	if (d)
		auth_token_cfg_to_data(d, json_object_get(e, "token"));
	json_decref(e);
	resp->data = d;
	return d ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_delete(struct logical_request *req, const char *prefix, struct verr *err)
{
	char key[300];
	int rc = name_key(key, sizeof(key), prefix, req, err);
	return rc ? rc : view_delete(req->storage, key, err);
}

static int h_cert_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return h_delete(req, "cert/", err);
}

static int h_list(struct logical_request *req, struct logical_response *resp, const char *prefix,
		  struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, prefix, &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (arr)
			json_array_append_new(arr, json_string(keys[i]));
		free(keys[i]);
	}
	free(keys);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	resp->data = json_pack("{s:o}", "keys", arr);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_cert_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return h_list(req, resp, "cert/", err);
}

/* ---- crls/NAME ---- */

static int h_crl_write(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char key[300];
	int rc = name_key(key, sizeof(key), "crls/", req, err);
	if (rc)
		return rc;
	const char *pem = request_str(req, "crl");
	if (!pem || !*pem)
		return verr_set(err, VERR_INVALID, "missing CRL");
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	if (!crl)
		return verr_set(err, VERR_INVALID, "failed to parse CRL");
	json_t *serials = json_object();
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	for (int i = 0; serials && i < sk_X509_REVOKED_num(rev); i++) {
		char *s = bn_dec(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i)));
		if (s)
			json_object_set_new(serials, s, json_object());
		free(s);
	}
	X509_CRL_free(crl);
	json_t *e = serials ? json_pack("{s:s, s:o}", "crl", pem, "serials", serials) : NULL;
	rc = e ? view_put_json(req->storage, key, e, err)
	       : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(e);
	return rc;
}

static int h_crl_read(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	char key[300];
	json_t *e = NULL;
	int rc = name_key(key, sizeof(key), "crls/", req, err);
	if (!rc)
		rc = view_get_json(req->storage, key, &e, err);
	if (rc)
		return rc;
	if (!e)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	resp->data = json_pack("{s:O}", "serials", json_object_get(e, "serials"));
	json_decref(e);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_crl_delete(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	return h_delete(req, "crls/", err);
}

static int h_crl_list(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	return h_list(req, resp, "crls/", err);
}

/* ---- config ---- */

static int h_config_write(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	json_t *c = NULL;
	int rc = view_get_json(req->storage, "config", &c, err);
	if (rc)
		return rc;
	if (!c)
		c = json_pack("{s:b, s:b}", "disable_binding", 0, "enable_identity_alias_metadata", 0);
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	static const char *const bools[] = {"disable_binding", "enable_identity_alias_metadata", NULL};
	for (int i = 0; bools[i]; i++)
		if (request_has(req, bools[i]))
			json_object_set_new(c, bools[i], json_boolean(request_bool(req, bools[i])));
	rc = view_put_json(req->storage, "config", c, err);
	json_decref(c);
	return rc;
}

static int h_config_read(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	json_t *c = NULL;
	int rc = view_get_json(req->storage, "config", &c, err);
	if (rc)
		return rc;
	resp->data = c ? c
		       : json_pack("{s:b, s:b}", "disable_binding", 0,
				   "enable_identity_alias_metadata", 0);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* ---- table ---- */

static const struct field_def cert_fields[] = {
	{"name", FT_STRING, NULL, "the certificate entry's name", true},
	{"certificate", FT_STRING, NULL, "PEM: the trusted CA (or leaf) certificate(s)", false},
	{"display_name", FT_STRING, NULL, "display name of issued tokens", false},
	{"allowed_names", FT_STRSLICE, NULL, "CN, DNS or email SAN globs", false},
	{"allowed_common_names", FT_STRSLICE, NULL, "CN globs", false},
	{"allowed_dns_sans", FT_STRSLICE, NULL, "DNS SAN globs", false},
	{"allowed_email_sans", FT_STRSLICE, NULL, "email SAN globs", false},
	{"allowed_uri_sans", FT_STRSLICE, NULL, "URI SAN globs", false},
	{"allowed_organizational_units", FT_STRSLICE, NULL, "OU globs", false},
	{"required_extensions", FT_STRSLICE, NULL, "oid:value extensions the leaf must have", false},
	AUTH_TOKEN_FIELD_DEFS,
	{"ttl", FT_DURATION, NULL, "deprecated: use token_ttl", false},
	{"max_ttl", FT_DURATION, NULL, "deprecated: use token_max_ttl", false},
	{"period", FT_DURATION, NULL, "deprecated: use token_period", false},
	{"bound_cidrs", FT_STRSLICE, NULL, "deprecated: use token_bound_cidrs", false},
	{0},
};

static const struct field_def crl_fields[] = {
	{"name", FT_STRING, NULL, "the CRL's name", true},
	{"crl", FT_STRING, NULL, "PEM CRL", false},
	{0},
};

static const struct field_def config_fields[] = {
	{"disable_binding", FT_BOOL, NULL, "do not bind renewals to the login certificate", false},
	{"enable_identity_alias_metadata", FT_BOOL, NULL, "metadata on the entity alias", false},
	{0},
};

static const struct field_def login_fields[] = {
	{"name", FT_STRING, NULL, "the certificate entry to log in with (default: any)", false},
	{0},
};

static const struct path_def cert_paths[] = {
	{.pattern = "certs/?", .ops = {{LOP_LIST, h_cert_list}}, .help = "List trusted certificates."},
	{.pattern = "certs/{name}",
	 .fields = cert_fields,
	 .ops = {{LOP_CREATE, h_cert_write},
		 {LOP_UPDATE, h_cert_write},
		 {LOP_READ, h_cert_read},
		 {LOP_DELETE, h_cert_delete}},
	 .exists = cert_exists,
	 .help = "Manage a trusted certificate and the tokens it logs in to."},
	{.pattern = "crls/?", .ops = {{LOP_LIST, h_crl_list}}, .help = "List CRLs."},
	{.pattern = "crls/{name}",
	 .fields = crl_fields,
	 .ops = {{LOP_UPDATE, h_crl_write}, {LOP_READ, h_crl_read}, {LOP_DELETE, h_crl_delete}},
	 .help = "Manage a certificate revocation list."},
	{.pattern = "config",
	 .fields = config_fields,
	 .ops = {{LOP_UPDATE, h_config_write}, {LOP_READ, h_config_read}},
	 .help = "Configure the method."},
	{.pattern = "login",
	 .fields = login_fields,
	 .ops = {{LOP_UPDATE, h_login}},
	 .unauthenticated = true,
	 .help = "Log in with the TLS client certificate."},
	{0},
};

static int cert_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	return 0;
}

static const struct path_def *cert_table(void *inst)
{
	return cert_paths;
}

const struct backend_ops cert_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "cert",
	.is_auth = true,
	.init = cert_init,
	.paths = cert_table,
	.auth_renew = h_renew,
};
