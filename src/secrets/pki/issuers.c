/*
 * issuers.c - CA material of the PKI engine: the cached state (issuers,
 * keys, default issuer, URLs; see pki_int.h DESIGN), and the paths that
 * create or change it: root/generate/:type, root/sign-intermediate (and
 * issuer/:ref/sign-intermediate), root/sign-self-issued,
 * intermediate/generate/:type, intermediate/set-signed, config/ca,
 * issuers, issuer/:ref (+ /pem /der /json), config/issuers, keys, key/:ref,
 * config/keys, config/urls and DELETE root.
 */
#include "secrets/pki/pki_int.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/rand.h"

/* ---- state ---- */

static void issuer_free(struct pki_issuer *i)
{
	if (!i)
		return;
	X509_free(i->cert);
	free(i->cert_pem);
	json_decref(i->chain);
	EVP_PKEY_free(i->pkey);
	json_decref(i->usage);
	json_decref(i->manual_chain);
	ASN1_OCTET_STRING_free(i->skid);
	OPENSSL_free(i->name_der);
	free(i);
}

static void key_free(struct pki_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

static void state_free(struct pki_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_issuers; i++)
		issuer_free(s->issuers[i]);
	free(s->issuers);
	for (size_t i = 0; i < s->n_keys; i++)
		key_free(s->keys[i]);
	free(s->keys);
	json_decref(s->urls);
	json_decref(s->crl_cfg);
	free(s);
}

struct pki_state *pki__state_get(struct pki_backend *b)
{
	pthread_mutex_lock(&b->state_lock);
	struct pki_state *s = b->state;
	s->refs++;
	pthread_mutex_unlock(&b->state_lock);
	return s;
}

void pki__state_put(struct pki_backend *b, struct pki_state *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&b->state_lock);
	int left = --s->refs;
	pthread_mutex_unlock(&b->state_lock);
	if (left == 0)
		state_free(s);
}

struct pki_issuer *pki__issuer_find(struct pki_state *s, const char *ref)
{
	if (!ref || !*ref || !strcmp(ref, "default"))
		return s->def;
	for (size_t i = 0; i < s->n_issuers; i++)
		if (!strcmp(s->issuers[i]->id, ref) || (s->issuers[i]->name[0] && !strcmp(s->issuers[i]->name, ref)))
			return s->issuers[i];
	return NULL;
}

struct pki_key *pki__key_find(struct pki_state *s, const char *ref)
{
	if (!ref || !*ref || !strcmp(ref, "default"))
		ref = s->default_key;
	for (size_t i = 0; i < s->n_keys; i++)
		if (!strcmp(s->keys[i]->id, ref) || (s->keys[i]->name[0] && !strcmp(s->keys[i]->name, ref)))
			return s->keys[i];
	return NULL;
}

static bool signed_by(X509 *x, const struct pki_issuer *p)
{
	if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(p->cert)) != 0)
		return false;
	EVP_PKEY *pk = X509_get0_pubkey(p->cert);
	bool ok = pk && X509_verify(x, pk) == 1;
	ERR_clear_error();
	return ok;
}

struct pki_issuer *pki__issuer_of(struct pki_state *s, X509 *x)
{
	for (size_t i = 0; i < s->n_issuers; i++)
		if (s->issuers[i]->pkey && signed_by(x, s->issuers[i]))
			return s->issuers[i];
	return NULL;
}

static struct pki_key *key_parse(const char *id, json_t *o)
{
	const char *pem = json_string_value(json_object_get(o, "private_key"));
	if (!pem)
		return NULL;
	struct pki_key *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->name, sizeof(k->name), "%s",
		 json_string_value(json_object_get(o, "key_name")) ?: "");
	k->pkey = pki__key_from_pem(pem, strlen(pem));
	if (!k->pkey) {
		free(k);
		return NULL;
	}
	pki__key_info(k->pkey, &k->type, &k->bits);
	return k;
}

static struct pki_issuer *issuer_parse(const char *id, json_t *o, struct pki_state *s)
{
	const char *pem = json_string_value(json_object_get(o, "certificate"));
	struct pki_issuer *i = pem ? calloc(1, sizeof(*i)) : NULL;
	if (!i)
		return NULL;
	snprintf(i->id, sizeof(i->id), "%s", id);
	snprintf(i->name, sizeof(i->name), "%s",
		 json_string_value(json_object_get(o, "issuer_name")) ?: "");
	snprintf(i->key_id, sizeof(i->key_id), "%s",
		 json_string_value(json_object_get(o, "key_id")) ?: "");
	i->cert = pki__x509_from_pem(pem);
	i->cert_pem = strdup(pem);
	if (!i->cert || !i->cert_pem) {
		issuer_free(i);
		return NULL;
	}
	const char *leaf = json_string_value(json_object_get(o, "leaf_not_after_behavior"));
	i->leaf = leaf && !strcmp(leaf, "truncate") ? PKI_LEAF_TRUNCATE
		  : leaf && !strcmp(leaf, "permit") ? PKI_LEAF_PERMIT
						     : PKI_LEAF_ERR;
	i->usage = json_incref(json_object_get(o, "usage"));
	json_t *mc = json_object_get(o, "manual_chain");
	i->manual_chain = json_array_size(mc) ? json_incref(mc) : NULL;
	i->revoked = json_is_true(json_object_get(o, "revoked"));
	i->not_after = pki__asn1_time_unix(X509_get0_notAfter(i->cert));
	const ASN1_OCTET_STRING *sk = X509_get0_subject_key_id(i->cert);
	i->skid = sk ? ASN1_OCTET_STRING_dup(sk) : NULL;
	i->name_der_len = i2d_X509_NAME(X509_get_subject_name(i->cert), &i->name_der);
	if (i->key_id[0]) {
		struct pki_key *k = NULL;
		for (size_t j = 0; j < s->n_keys; j++)
			if (!strcmp(s->keys[j]->id, i->key_id))
				k = s->keys[j];
		if (k && EVP_PKEY_up_ref(k->pkey)) {
			i->pkey = k->pkey;
			i->md = pki__md_for(i->pkey, 0);
		}
	}
	ERR_clear_error();
	return i;
}

static void build_chain(struct pki_state *s, struct pki_issuer *iss)
{
	iss->chain = json_array();
	json_array_append_new(iss->chain, json_string(iss->cert_pem));
	if (iss->manual_chain) {
		size_t k;
		json_t *v;
		json_array_foreach(iss->manual_chain, k, v)
		{
			struct pki_issuer *p = pki__issuer_find(s, json_string_value(v));
			if (p && p != iss)
				json_array_append_new(iss->chain, json_string(p->cert_pem));
		}
		return;
	}
	X509 *cur = iss->cert;
	for (int depth = 0; depth < 16; depth++) {
		if (pki__self_signed(cur))
			return;
		struct pki_issuer *parent = NULL;
		for (size_t j = 0; j < s->n_issuers && !parent; j++)
			if (s->issuers[j]->cert != cur && signed_by(cur, s->issuers[j]))
				parent = s->issuers[j];
		if (!parent)
			return;
		json_array_append_new(iss->chain, json_string(parent->cert_pem));
		cur = parent->cert;
	}
}

static int load_list(struct storage_view *v, const char *prefix, char ***keys, size_t *n,
		     struct verr *err)
{
	return view_list(v, prefix, keys, n, err);
}

int pki__state_reload(struct pki_backend *b, struct verr *err)
{
	struct pki_state *s = calloc(1, sizeof(*s));
	char **ids = NULL;
	size_t n = 0;
	int rc = VERR_INTERNAL;
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	s->refs = 1;
	if ((rc = load_list(b->view, "key/", &ids, &n, err)))
		goto fail;
	s->keys = calloc(n ? n : 1, sizeof(*s->keys));
	for (size_t i = 0; s->keys && i < n; i++) {
		char key[64];
		json_t *o = NULL;
		snprintf(key, sizeof(key), "key/%s", ids[i]);
		if ((rc = view_get_json(b->view, key, &o, err)))
			goto fail;
		struct pki_key *k = o ? key_parse(ids[i], o) : NULL;
		json_decref(o);
		if (k)
			s->keys[s->n_keys++] = k;
		else if (o)
			sysview_log(b->sys, LOG_WARN, "pki: key %s could not be parsed", ids[i]);
	}
	physical_list_free(ids, n);
	ids = NULL;
	if ((rc = load_list(b->view, "issuer/", &ids, &n, err)))
		goto fail;
	s->issuers = calloc(n ? n : 1, sizeof(*s->issuers));
	for (size_t i = 0; s->issuers && i < n; i++) {
		char key[64];
		json_t *o = NULL;
		snprintf(key, sizeof(key), "issuer/%s", ids[i]);
		if ((rc = view_get_json(b->view, key, &o, err)))
			goto fail;
		struct pki_issuer *is = o ? issuer_parse(ids[i], o, s) : NULL;
		json_decref(o);
		if (is)
			s->issuers[s->n_issuers++] = is;
	}
	physical_list_free(ids, n);
	ids = NULL;
	if (!s->keys || !s->issuers) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < s->n_issuers; i++)
		build_chain(s, s->issuers[i]);
	json_t *cfg = NULL;
	if ((rc = view_get_json(b->view, "config/issuers", &cfg, err)))
		goto fail;
	const char *def = json_string_value(json_object_get(cfg, "default"));
	if (def && *def)
		for (size_t i = 0; i < s->n_issuers; i++)
			if (!strcmp(s->issuers[i]->id, def))
				s->def = s->issuers[i];
	json_decref(cfg);
	cfg = NULL;
	if ((rc = view_get_json(b->view, "config/keys", &cfg, err)))
		goto fail;
	snprintf(s->default_key, sizeof(s->default_key), "%s",
		 json_string_value(json_object_get(cfg, "default")) ?: "");
	json_decref(cfg);
	if ((rc = view_get_json(b->view, "config/urls", &s->urls, err)))
		goto fail;
	if (!s->urls)
		s->urls = json_pack("{s:[],s:[],s:[],s:[]}", "issuing_certificates",
				    "crl_distribution_points", "ocsp_servers",
				    "delta_crl_distribution_points");
	if ((rc = view_get_json(b->view, "config/crl", &s->crl_cfg, err)))
		goto fail;
	if (!s->crl_cfg)
		s->crl_cfg = json_pack("{s:s,s:b,s:b,s:s,s:b,s:s,s:b,s:s}", "expiry", "72h",
				       "disable", 0, "ocsp_disable", 0, "ocsp_expiry", "12h",
				       "auto_rebuild", 0, "auto_rebuild_grace_period", "12h",
				       "enable_delta", 0, "delta_rebuild_interval", "15m");
	pthread_mutex_lock(&b->state_lock);
	struct pki_state *old = b->state;
	b->state = s;
	pthread_mutex_unlock(&b->state_lock);
	pki__state_put(b, old);
	return 0;
fail:
	physical_list_free(ids, n);
	state_free(s);
	return rc;
}

/* ---- writes ---- */

static int key_store(struct pki_backend *b, EVP_PKEY *pk, const char *name, char *id_out,
		     struct verr *err)
{
	char id[RAND_UUID_LEN + 1];
	int rc = rand_uuid(id, err);
	if (rc)
		return rc;
	char *pem = pki__key_to_pem(pk, "pkcs8");
	if (!pem)
		return verr_set(err, VERR_INTERNAL, "could not encode the key");
	enum pki_key_type t;
	int bits;
	pki__key_info(pk, &t, &bits);
	json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s}", "key_id", id, "key_name", name ? name : "",
			      "key_type", pki__key_type_name(t), "key_bits", bits, "private_key", pem);
	pki__free_secret_str(pem);
	if (!o)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char key[64];
	snprintf(key, sizeof(key), "key/%s", id);
	rc = view_put_json(b->view, key, o, err);
	/* wipe the stored copy of the PEM inside the JSON object */
	json_t *pv = json_object_get(o, "private_key");
	if (pv)
		OPENSSL_cleanse((char *)json_string_value(pv), json_string_length(pv));
	json_decref(o);
	if (!rc)
		snprintf(id_out, PKI_ID_LEN + 1, "%s", id);
	return rc;
}

static int issuer_store_obj(struct pki_backend *b, const char *id, json_t *o, struct verr *err)
{
	char key[64];
	snprintf(key, sizeof(key), "issuer/%s", id);
	return view_put_json(b->view, key, o, err);
}

static int issuer_create(struct pki_backend *b, X509 *cert, const char *name, const char *key_id,
			 char *id_out, struct verr *err)
{
	char id[RAND_UUID_LEN + 1];
	int rc = rand_uuid(id, err);
	if (rc)
		return rc;
	char *pem = pki__x509_to_pem(cert);
	if (!pem)
		return verr_set(err, VERR_INTERNAL, "could not encode the certificate");
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[ssss],s:[],s:b}", "issuer_id", id,
			      "issuer_name", name ? name : "", "key_id", key_id ? key_id : "",
			      "certificate", pem, "leaf_not_after_behavior", "err", "usage",
			      "read-only", "issuing-certificates", "crl-signing", "ocsp-signing", "manual_chain",
			      "revoked", 0);
	free(pem);
	if (!o)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = issuer_store_obj(b, id, o, err);
	json_decref(o);
	if (!rc)
		snprintf(id_out, PKI_ID_LEN + 1, "%s", id);
	return rc;
}

static int set_default_if_none(struct pki_backend *b, struct pki_state *s, const char *id,
			       struct verr *err)
{
	if (s->def)
		return 0;
	json_t *o = json_pack("{s:s,s:b}", "default", id, "default_follows_latest_issuer", 0);
	int rc = view_put_json(b->view, "config/issuers", o, err);
	json_decref(o);
	return rc;
}

static int set_default_key_if_none(struct pki_backend *b, struct pki_state *s, const char *id,
				   struct verr *err)
{
	if (s->default_key[0] && pki__key_find(s, s->default_key))
		return 0;
	json_t *o = json_pack("{s:s}", "default", id);
	int rc = view_put_json(b->view, "config/keys", o, err);
	json_decref(o);
	return rc;
}

static bool name_taken(struct pki_state *s, const char *name, bool issuer)
{
	if (!name || !*name)
		return false;
	if (issuer) {
		for (size_t i = 0; i < s->n_issuers; i++)
			if (!strcmp(s->issuers[i]->name, name))
				return true;
	} else {
		for (size_t i = 0; i < s->n_keys; i++)
			if (!strcmp(s->keys[i]->name, name))
				return true;
	}
	return false;
}

static bool bad_ref_name(const char *n)
{
	if (!n || !*n)
		return false;
	if (!strcmp(n, "default") || strlen(n) >= PKI_NAME_MAX)
		return true;
	for (const char *p = n; *p; p++)
		if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return true;
	return false;
}

/* ---- subject from request fields ---- */

struct req_subject {
	struct pki_subject s;
	json_t *dns, *ips, *uris;
	json_t *lists[7];
};

static void req_subject_free(struct req_subject *r)
{
	json_decref(r->dns);
	json_decref(r->ips);
	json_decref(r->uris);
	for (int i = 0; i < 7; i++)
		json_decref(r->lists[i]);
}

static const char *const subj_fields[7] = {"ou",       "organization", "country",    "locality",
					   "province", "street_address", "postal_code"};

static int req_subject_fill(struct req_subject *r, struct logical_request *req, bool cn_in_sans,
			    struct verr *err)
{
	memset(r, 0, sizeof(*r));
	r->dns = json_array();
	r->ips = pki__strlist(request_json(req, "ip_sans"));
	r->uris = pki__strlist(request_json(req, "uri_sans"));
	for (int i = 0; i < 7; i++)
		r->lists[i] = pki__strlist(request_json(req, subj_fields[i]));
	r->s.cn = request_str(req, "common_name");
	const char *cn = r->s.cn;
	if (cn && *cn && cn_in_sans && !request_bool(req, "exclude_cn_from_sans") &&
	    (strchr(cn, '@') || pki__valid_hostname(cn)))
		json_array_append_new(r->dns, json_string(cn));
	int rc = pki__split_alt_names(request_json(req, "alt_names"), r->dns, err);
	if (!rc)
		rc = pki__check_ips(r->ips, err);
	r->s.dns = r->dns;
	r->s.ips = r->ips;
	r->s.uris = r->uris;
	r->s.ou = r->lists[0];
	r->s.organization = r->lists[1];
	r->s.country = r->lists[2];
	r->s.locality = r->lists[3];
	r->s.province = r->lists[4];
	r->s.street_address = r->lists[5];
	r->s.postal_code = r->lists[6];
	r->s.serial_number = request_str(req, "serial_number");
	return rc;
}

/* Effective CA validity: ttl (or the mount default), capped to the mount max. */
static int64_t ca_not_after(struct logical_request *req, int64_t now, struct logical_response *resp,
			    struct verr *err, int *rc)
{
	const char *na = request_str(req, "not_after");
	*rc = 0;
	struct pki_role none = {0};
	int64_t out = 0;
	*rc = pki__role_not_after(&none, request_duration(req, "ttl"), na, now,
				  sysview_default_lease_ttl(req->sys), sysview_max_lease_ttl(req->sys),
				  NULL, &out, resp, err);
	return out;
}

static int add_private_key(json_t *data, EVP_PKEY *pk, const char *format, const char *pkf)
{
	bool der = format && !strcmp(format, "der");
	const char *kf = pkf && !strcmp(pkf, "pkcs8") ? "pkcs8" : "der";
	char *k = der ? pki__key_to_der_b64(pk, kf) : pki__key_to_pem(pk, kf);
	if (!k)
		return -1;
	enum pki_key_type t;
	int bits;
	pki__key_info(pk, &t, &bits);
	json_object_set_new(data, "private_key", json_string(k));
	json_object_set_new(data, "private_key_type", json_string(pki__key_type_name(t)));
	pki__free_secret_str(k);
	return 0;
}

/* ---- root/generate/:type ---- */

static int gen_or_find_key(struct pki_backend *b, struct pki_state *s, struct logical_request *req,
			   const char *type, EVP_PKEY **pk, char *key_id, struct verr *err)
{
	*pk = NULL;
	key_id[0] = '\0';
	if (!strcmp(type, "existing")) {
		struct pki_key *k = pki__key_find(s, request_str(req, "key_ref"));
		if (!k)
			return verr_set(err, VERR_INVALID, "unable to find PKI key for reference: %.64s",
					request_str(req, "key_ref"));
		if (!EVP_PKEY_up_ref(k->pkey))
			return verr_set(err, VERR_INTERNAL, "out of memory");
		*pk = k->pkey;
		snprintf(key_id, PKI_ID_LEN + 1, "%s", k->id);
		return 0;
	}
	if (strcmp(type, "internal") && strcmp(type, "exported"))
		return verr_set(err, VERR_INVALID, "invalid type: %.32s (internal, exported or existing)",
				type);
	const char *kname = request_str(req, "key_name");
	if (bad_ref_name(kname))
		return verr_set(err, VERR_INVALID, "key name contains invalid characters or is \"default\"");
	if (name_taken(s, kname, false))
		return verr_set(err, VERR_INVALID, "key name %.64s already in use", kname);
	enum pki_key_type t = pki__key_type_parse(request_str(req, "key_type"));
	int bits = (int)request_int(req, "key_bits");
	if (!t || t == PKI_KEY_ANY)
		return verr_set(err, VERR_INVALID, "unknown or unsupported key_type %.32s",
				request_str(req, "key_type"));
	int rc = pki__key_bits_check(t, &bits, err);
	if (!rc)
		rc = pki__keygen(pk, t, bits, err);
	if (!rc)
		rc = key_store(b, *pk, kname, key_id, err);
	if (rc) {
		EVP_PKEY_free(*pk);
		*pk = NULL;
	}
	return rc;
}

static int root_generate(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *type = request_str(req, "type");
	const char *format = request_str(req, "format");
	if (!pki__format_ok(format))
		return verr_set(err, VERR_INVALID, "unknown format \"%.32s\"", format);
	const char *iname = request_str(req, "issuer_name");
	if (bad_ref_name(iname))
		return verr_set(err, VERR_INVALID, "issuer name contains invalid characters or is \"default\"");
	struct req_subject rs;
	int rc = req_subject_fill(&rs, req, true, err);
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	if (rc)
		goto out;
	if ((!rs.s.cn || !*rs.s.cn) && !json_array_size(rs.dns) && !json_array_size(rs.ips)) {
		rc = verr_set(err, VERR_INVALID, "the common_name field is required");
		goto out;
	}
	if (name_taken(s, iname, true)) {
		rc = verr_set(err, VERR_INVALID, "issuer name %.64s already in use", iname);
		goto out;
	}
	int64_t now = pki__now(b);
	int64_t na = ca_not_after(req, now, resp, err, &rc);
	if (rc)
		goto out;
	char key_id[PKI_ID_LEN + 1];
	if ((rc = gen_or_find_key(b, s, req, type, &pk, key_id, err)))
		goto out;
	struct pki_cert_params p = {
		.subj = rs.s,
		.pubkey = pk,
		.not_before = now - request_duration(req, "not_before_duration"),
		.not_after = na,
		.is_ca = true,
		.max_path_length = (int)request_int(req, "max_path_length"),
		.permitted_dns_domains = request_json(req, "permitted_dns_domains"),
		.urls = s->urls,
		.self_signed = true,
	};
	if ((rc = pki__cert_build(&x, &p, NULL, pk, err)))
		goto out;
	char issuer_id[PKI_ID_LEN + 1];
	if ((rc = issuer_create(b, x, iname, key_id, issuer_id, err)) ||
	    (rc = set_default_if_none(b, s, issuer_id, err)) ||
	    (rc = set_default_key_if_none(b, s, key_id, err)) || (rc = pki__cert_store(b, x, err)) ||
	    (rc = pki__state_reload(b, err)))
		goto out;
	pki__state_put(b, s);
	s = pki__state_get(b);
	struct pki_issuer *iss = pki__issuer_find(s, issuer_id);
	resp->data = json_object();
	if (!iss || (rc = pki__cert_response(resp->data, x, iss, format, err)))
		goto out;
	if (s->n_issuers > 1)
		logical_response_warn(resp, "this mount already had an issuer; the new root was added as "
					    "another issuer (the default issuer is unchanged unless none was set)");
	json_object_del(resp->data, "ca_chain");
	json_object_set_new(resp->data, "issuer_id", json_string(issuer_id));
	json_object_set_new(resp->data, "issuer_name", json_string(iname));
	json_object_set_new(resp->data, "key_id", json_string(key_id));
	json_object_set_new(resp->data, "key_name", json_string(request_str(req, "key_name")));
	if (!strcmp(type, "exported") &&
	    add_private_key(resp->data, pk, format, request_str(req, "private_key_format")))
		rc = verr_set(err, VERR_INTERNAL, "could not encode the private key");
out:
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	req_subject_free(&rs);
	EVP_PKEY_free(pk);
	X509_free(x);
	return rc;
}

/* ---- intermediate/generate/:type ---- */

static int intermediate_generate(struct logical_request *req, struct logical_response *resp,
				 struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *type = request_str(req, "type");
	const char *format = request_str(req, "format");
	if (!pki__format_ok(format))
		return verr_set(err, VERR_INVALID, "unknown format \"%.32s\"", format);
	struct req_subject rs;
	int rc = req_subject_fill(&rs, req, true, err);
	EVP_PKEY *pk = NULL;
	X509_REQ *csr = NULL;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	char key_id[PKI_ID_LEN + 1];
	if (rc || (rc = gen_or_find_key(b, s, req, type, &pk, key_id, err)))
		goto out;
	if ((rc = pki__csr_build(&csr, &rs.s, pk, request_bool(req, "add_basic_constraints"), err)))
		goto out;
	if ((rc = set_default_key_if_none(b, s, key_id, err)) || (rc = pki__state_reload(b, err)))
		goto out;
	BIO *bio = BIO_new(BIO_s_mem());
	bool der = !strcmp(format, "der");
	if (!bio || (der ? !i2d_X509_REQ_bio(bio, csr) : !PEM_write_bio_X509_REQ(bio, csr))) {
		BIO_free(bio);
		rc = verr_set(err, VERR_INTERNAL, "could not encode the CSR");
		goto out;
	}
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *text = der ? pki__b64((uint8_t *)data, (size_t)n) : strndup(data, (size_t)n);
	BIO_free(bio);
	if (text && !der) {
		size_t l = strlen(text);
		while (l && text[l - 1] == '\n')
			text[--l] = '\0';
	}
	resp->data = json_pack("{s:s?,s:s}", "csr", text, "key_id", key_id);
	free(text);
	if (!strcmp(type, "exported") &&
	    add_private_key(resp->data, pk, format, request_str(req, "private_key_format")))
		rc = verr_set(err, VERR_INTERNAL, "could not encode the private key");
out:
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	req_subject_free(&rs);
	EVP_PKEY_free(pk);
	X509_REQ_free(csr);
	return rc;
}

/* ---- root/sign-intermediate ---- */

static int sign_intermediate(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *format = request_str(req, "format");
	if (!pki__format_ok(format))
		return verr_set(err, VERR_INVALID, "unknown format \"%.32s\"", format);
	const char *pem = request_str(req, "csr");
	X509_REQ *csr = pem && *pem ? pki__csr_from_pem(pem) : NULL;
	if (!csr)
		return verr_set(err, VERR_INVALID, "certificate request could not be parsed");
	struct req_subject rs;
	int rc = req_subject_fill(&rs, req, true, err);
	struct pki_state *s = pki__state_get(b);
	X509 *x = NULL;
	EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
	if (rc)
		goto out;
	if (!pub || X509_REQ_verify(csr, pub) != 1) {
		ERR_clear_error();
		rc = verr_set(err, VERR_INVALID, "request signature invalid");
		goto out;
	}
	struct pki_issuer *iss = pki__issuer_find(s, request_str(req, "issuer_ref"));
	if (!iss || !iss->pkey) {
		rc = verr_set(err, VERR_INVALID, "unable to fetch the issuer: %s",
			      iss ? "it has no key" : "no default issuer is configured");
		goto out;
	}
	bool use_csr = request_bool(req, "use_csr_values");
	char *csr_cn = NULL;
	if (use_csr) {
		pki__csr_names(csr, &csr_cn, rs.dns, rs.ips, rs.uris);
	} else if (!rs.s.cn || !*rs.s.cn) {
		rc = verr_set(err, VERR_INVALID, "the common_name field is required");
		goto out;
	}
	int64_t now = pki__now(b);
	int64_t na = ca_not_after(req, now, resp, err, &rc);
	if (rc) {
		free(csr_cn);
		goto out;
	}
	if (na > iss->not_after && iss->leaf != PKI_LEAF_PERMIT) {
		/* a CA below its parent: never outlive it */
		na = iss->not_after;
	}
	struct pki_cert_params p = {
		.subj = rs.s,
		.subject_name = use_csr ? X509_REQ_get_subject_name(csr) : NULL,
		.pubkey = pub,
		.not_before = now - request_duration(req, "not_before_duration"),
		.not_after = na,
		.is_ca = true,
		.max_path_length = (int)request_int(req, "max_path_length"),
		.permitted_dns_domains = request_json(req, "permitted_dns_domains"),
		.urls = s->urls,
	};
	rc = pki__cert_build(&x, &p, iss, NULL, err);
	free(csr_cn);
	if (rc || (rc = pki__cert_store(b, x, err)))
		goto out;
	resp->data = json_object();
	rc = pki__cert_response(resp->data, x, iss, format, err);
	if (!rc) {
		/* Vault's sign-intermediate chain starts with the new CA */
		json_t *chain = json_object_get(resp->data, "ca_chain");
		char *cp = pki__x509_to_pem(x);
		if (chain && cp)
			json_array_insert_new(chain, 0, json_string(cp));
		free(cp);
	}
out:
	pki__state_put(b, s);
	req_subject_free(&rs);
	X509_REQ_free(csr);
	X509_free(x);
	return rc;
}

/* ---- root/sign-self-issued ---- */

static int sign_self_issued(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *pem = request_str(req, "certificate");
	X509 *in = pem ? pki__x509_from_pem(pem) : NULL;
	if (!in)
		return verr_set(err, VERR_INVALID, "error parsing certificate");
	struct pki_state *s = pki__state_get(b);
	int rc = 0;
	X509 *x = NULL;
	struct pki_issuer *iss = pki__issuer_find(s, request_str(req, "issuer_ref"));
	if (X509_NAME_cmp(X509_get_subject_name(in), X509_get_issuer_name(in)) != 0) {
		rc = verr_set(err, VERR_INVALID, "given certificate is not self-issued");
		goto out;
	}
	if (!(X509_get_extension_flags(in) & EXFLAG_CA) && !request_bool(req, "require_matching_certificate_algorithms")) {
		rc = verr_set(err, VERR_INVALID, "given certificate is not a CA certificate");
		goto out;
	}
	if (!iss || !iss->pkey) {
		rc = verr_set(err, VERR_INVALID, "unable to fetch the issuer");
		goto out;
	}
	x = X509_dup(in);
	if (!x || !X509_set_issuer_name(x, X509_get_subject_name(iss->cert)) ||
	    X509_sign(x, iss->pkey, iss->md) <= 0) {
		rc = verr_set(err, VERR_INTERNAL, "could not sign the certificate");
		goto out;
	}
	char *cp = pki__x509_to_pem(x);
	resp->data = json_pack("{s:s?,s:s}", "certificate", cp, "issuing_ca", iss->cert_pem);
	free(cp);
out:
	ERR_clear_error();
	pki__state_put(b, s);
	X509_free(in);
	X509_free(x);
	return rc;
}

/* ---- import: intermediate/set-signed, config/ca ---- */

static int import_bundle(struct logical_request *req, struct logical_response *resp,
			 const char *pem, bool allow_keys, struct verr *err)
{
	struct pki_backend *b = req->backend;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509) *certs = sk_X509_new_null();
	EVP_PKEY *keys[16];
	int nkeys = 0;
	json_t *imp_iss = json_array(), *imp_keys = json_array(), *mapping = json_object(),
	       *ex_iss = json_array(), *ex_keys = json_array();
	int rc = 0;
	if (!bio || !certs)
		goto oom;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	while (PEM_read_bio(bio, &name, &header, &data, &len)) {
		const unsigned char *p = data;
		if (!strcmp(name, "CERTIFICATE")) {
			X509 *x = d2i_X509(NULL, &p, len);
			if (!x || !sk_X509_push(certs, x)) {
				X509_free(x);
				rc = verr_set(err, VERR_INVALID, "error parsing certificate in the bundle");
			}
		} else if (strstr(name, "PRIVATE KEY")) {
			EVP_PKEY *k = allow_keys ? d2i_AutoPrivateKey(NULL, &p, len) : NULL;
			if (!allow_keys)
				rc = verr_set(err, VERR_INVALID, "private keys are not accepted here; use config/ca");
			else if (!k || nkeys == 16) {
				EVP_PKEY_free(k);
				rc = verr_set(err, VERR_INVALID, "error parsing private key in the bundle");
			} else {
				keys[nkeys++] = k;
			}
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)len);
		name = header = NULL;
		data = NULL;
		if (rc)
			break;
	}
	ERR_clear_error();
	if (rc)
		goto out;
	if (sk_X509_num(certs) == 0 && nkeys == 0) {
		rc = verr_set(err, VERR_INVALID, "no data found in PEM bundle");
		goto out;
	}
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	/* keys first: certificates map onto them */
	for (int i = 0; i < nkeys && !rc; i++) {
		EVP_PKEY *k = keys[i];
		struct pki_key *found = NULL;
		for (size_t j = 0; j < s->n_keys; j++)
			if (EVP_PKEY_eq(s->keys[j]->pkey, k) == 1)
				found = s->keys[j];
		if (found) {
			json_array_append_new(ex_keys, json_string(found->id));
			continue;
		}
		char id[PKI_ID_LEN + 1];
		rc = key_store(b, k, "", id, err);
		if (!rc)
			json_array_append_new(imp_keys, json_string(id));
	}
	if (!rc)
		rc = pki__state_reload(b, err);
	pki__state_put(b, s);
	s = pki__state_get(b);
	char first_with_key[PKI_ID_LEN + 1] = "";
	for (int i = 0; i < sk_X509_num(certs) && !rc; i++) {
		X509 *x = sk_X509_value(certs, i);
		struct pki_issuer *found = NULL;
		for (size_t j = 0; j < s->n_issuers; j++)
			if (X509_cmp(s->issuers[j]->cert, x) == 0)
				found = s->issuers[j];
		if (found) {
			json_array_append_new(ex_iss, json_string(found->id));
			continue;
		}
		if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
			rc = verr_set(err, VERR_INVALID, "refusing to import a non-CA certificate as an issuer");
			break;
		}
		const char *kid = "";
		EVP_PKEY *pub = X509_get0_pubkey(x);
		for (size_t j = 0; j < s->n_keys && pub; j++)
			if (EVP_PKEY_eq(s->keys[j]->pkey, pub) == 1)
				kid = s->keys[j]->id;
		char id[PKI_ID_LEN + 1];
		rc = issuer_create(b, x, "", kid, id, err);
		if (rc)
			break;
		json_array_append_new(imp_iss, json_string(id));
		json_object_set_new(mapping, id, json_string(kid));
		if (*kid && !first_with_key[0])
			snprintf(first_with_key, sizeof(first_with_key), "%s", id);
		if (!(rc = pki__cert_store(b, x, err)) && *kid)
			rc = 0;
	}
	if (!rc && first_with_key[0])
		rc = set_default_if_none(b, s, first_with_key, err);
	if (!rc)
		rc = pki__state_reload(b, err);
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	if (!rc) {
		if (json_array_size(imp_iss) && !json_object_size(mapping))
			logical_response_warn(resp, "none of the imported issuers has a key in this mount");
		resp->data = json_pack("{s:O,s:O,s:O,s:O,s:O}", "imported_issuers", imp_iss,
				       "imported_keys", imp_keys, "mapping", mapping,
				       "existing_issuers", ex_iss, "existing_keys", ex_keys);
	}
	goto out;
oom:
	rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	BIO_free(bio);
	sk_X509_pop_free(certs, X509_free);
	for (int i = 0; i < nkeys; i++)
		EVP_PKEY_free(keys[i]);
	json_decref(imp_iss);
	json_decref(imp_keys);
	json_decref(mapping);
	json_decref(ex_iss);
	json_decref(ex_keys);
	return rc;
}

static int set_signed(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	const char *pem = request_str(req, "certificate");
	if (!pem || !*pem)
		return verr_set(err, VERR_INVALID, "no certificate provided in the \"certificate\" parameter");
	return import_bundle(req, resp, pem, false, err);
}

static int config_ca(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	const char *pem = request_str(req, "pem_bundle");
	if (!pem || !*pem)
		return verr_set(err, VERR_INVALID, "bundle not supplied");
	return import_bundle(req, resp, pem, true, err);
}

/* ---- issuers ---- */

static json_t *issuer_json(struct pki_state *s, struct pki_issuer *i)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:O,s:O,s:b}", "issuer_id", i->id,
			      "issuer_name", i->name, "key_id", i->key_id, "certificate", i->cert_pem,
			      "ca_chain", i->chain, "leaf_not_after_behavior",
			      i->leaf == PKI_LEAF_TRUNCATE ? "truncate"
			      : i->leaf == PKI_LEAF_PERMIT ? "permit"
							   : "err",
			      "manual_chain", i->manual_chain ? i->manual_chain : json_null(), "usage",
			      i->usage ? i->usage : json_null(), "revoked", i->revoked);
	if (!o)
		return NULL;
	const char *uk[] = {"issuing_certificates", "crl_distribution_points", "ocsp_servers"};
	for (int k = 0; k < 3; k++)
		json_object_set(o, uk[k], json_object_get(s->urls, uk[k]));
	if (i->usage && json_is_array(i->usage)) {
		/* Vault prints usage as one comma-joined string */
		struct buf ub;
		buf_init(&ub, 128);
		size_t idx;
		json_t *v;
		json_array_foreach(i->usage, idx, v)
		{
			if (idx)
				buf_char(&ub, ',');
			buf_str(&ub, json_string_value(v));
		}
		char *buf = buf_take(&ub, NULL);
		json_object_set_new(o, "usage", json_string(buf ? buf : ""));
		free(buf);
	}
	return o;
}

static int issuers_list(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	json_t *keys = json_array(), *info = json_object();
	for (size_t i = 0; i < s->n_issuers; i++) {
		struct pki_issuer *is = s->issuers[i];
		char serial[PKI_SERIAL_HEX + 4];
		pki__serial_colon(X509_get0_serialNumber(is->cert), serial, sizeof(serial));
		json_array_append_new(keys, json_string(is->id));
		json_object_set_new(info, is->id,
				    json_pack("{s:s,s:b,s:s,s:s}", "issuer_name", is->name,
					      "is_default", is == s->def, "key_id", is->key_id,
					      "serial_number", serial));
	}
	pki__state_put(b, s);
	resp->data = json_pack("{s:o,s:o}", "keys", keys, "key_info", info);
	return 0;
}

static int issuer_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *i = pki__issuer_find(s, request_str(req, "issuer_ref"));
	int rc = 0;
	if (!i)
		rc = verr_set(err, VERR_NOT_FOUND, "unable to find PKI issuer for reference: %.64s",
			      request_str(req, "issuer_ref"));
	else
		resp->data = issuer_json(s, i);
	pki__state_put(b, s);
	return rc;
}

static int raw_reply(struct logical_response *resp, const void *p, size_t n, const char *ctype)
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

/* issuer/:ref/{pem,der,json}: unauthenticated, like Vault */
static int issuer_read_fmt(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *rp = req->rel_path ? req->rel_path : "";
	size_t rl = strlen(rp);
	const char *fmt = rl >= 4 && !strcmp(rp + rl - 4, "/der")   ? "der"
			  : rl >= 4 && !strcmp(rp + rl - 4, "/pem") ? "pem"
								    : "json";
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *i = pki__issuer_find(s, request_str(req, "issuer_ref"));
	int rc = 0;
	if (!i) {
		rc = verr_set(err, VERR_NOT_FOUND, "unable to find PKI issuer for reference: %.64s",
			      request_str(req, "issuer_ref"));
	} else if (fmt && !strcmp(fmt, "der")) {
		unsigned char *der = NULL;
		int n = i2d_X509(i->cert, &der);
		rc = n > 0 ? raw_reply(resp, der, (size_t)n, "application/pkix-cert") : VERR_INTERNAL;
		OPENSSL_free(der);
	} else if (fmt && !strcmp(fmt, "pem")) {
		char *pem = NULL;
		size_t tot = 0;
		size_t idx;
		json_t *v;
		json_array_foreach(i->chain, idx, v) tot += json_string_length(v) + 1;
		pem = malloc(tot + 1);
		if (pem) {
			size_t o = 0;
			json_array_foreach(i->chain, idx, v)
			{
				memcpy(pem + o, json_string_value(v), json_string_length(v));
				o += json_string_length(v);
				pem[o++] = '\n';
			}
			rc = raw_reply(resp, pem, o, "application/pem-certificate-chain");
			free(pem);
		} else {
			rc = VERR_INTERNAL;
		}
	} else {
		resp->data = json_pack("{s:s,s:O,s:s,s:s}", "certificate", i->cert_pem, "ca_chain",
				       i->chain, "issuer_id", i->id, "issuer_name", i->name);
	}
	if (rc == VERR_INTERNAL)
		verr_set(err, VERR_INTERNAL, "out of memory");
	pki__state_put(b, s);
	return rc;
}

static int issuer_update(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *i = pki__issuer_find(s, request_str(req, "issuer_ref"));
	int rc = 0;
	json_t *o = NULL;
	char key[64];
	if (!i) {
		rc = verr_set(err, VERR_NOT_FOUND, "unable to find PKI issuer for reference: %.64s",
			      request_str(req, "issuer_ref"));
		goto out;
	}
	snprintf(key, sizeof(key), "issuer/%s", i->id);
	if ((rc = view_get_json(b->view, key, &o, err)) || !o) {
		if (!rc)
			rc = verr_set(err, VERR_NOT_FOUND, "issuer vanished");
		goto out;
	}
	if (request_has(req, "issuer_name")) {
		const char *n = request_str(req, "issuer_name");
		if (bad_ref_name(n)) {
			rc = verr_set(err, VERR_INVALID, "issuer name contains invalid characters or is \"default\"");
			goto out;
		}
		if (strcmp(n, i->name) && name_taken(s, n, true)) {
			rc = verr_set(err, VERR_INVALID, "issuer name %.64s already in use", n);
			goto out;
		}
		json_object_set_new(o, "issuer_name", json_string(n));
	}
	if (request_has(req, "leaf_not_after_behavior")) {
		const char *l = request_str(req, "leaf_not_after_behavior");
		if (strcmp(l, "err") && strcmp(l, "truncate") && strcmp(l, "permit")) {
			rc = verr_set(err, VERR_INVALID, "invalid leaf_not_after_behavior: %.32s (err, truncate or permit)", l);
			goto out;
		}
		json_object_set_new(o, "leaf_not_after_behavior", json_string(l));
	}
	if (request_has(req, "usage"))
		json_object_set_new(o, "usage", pki__strlist(request_json(req, "usage")));
	if (request_has(req, "manual_chain")) {
		json_t *mc = pki__strlist(request_json(req, "manual_chain"));
		size_t idx;
		json_t *v;
		json_array_foreach(mc, idx, v)
		{
			struct pki_issuer *p = !strcmp(json_string_value(v), "self")
						       ? i
						       : pki__issuer_find(s, json_string_value(v));
			if (!p) {
				json_decref(mc);
				rc = verr_set(err, VERR_INVALID, "unknown issuer in manual_chain: %.64s",
					      json_string_value(v));
				goto out;
			}
			json_array_set_new(mc, idx, json_string(p->id));
		}
		if (json_array_size(mc) && !strcmp(json_string_value(json_array_get(mc, 0)), i->id))
			json_array_remove(mc, 0);
		json_object_set_new(o, "manual_chain", mc);
	}
	char id[PKI_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", i->id);
	if ((rc = issuer_store_obj(b, id, o, err)) || (rc = pki__state_reload(b, err)))
		goto out;
	pki__state_put(b, s);
	s = pki__state_get(b);
	i = pki__issuer_find(s, id);
	resp->data = i ? issuer_json(s, i) : NULL;
out:
	json_decref(o);
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

static int issuer_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *i = pki__issuer_find(s, request_str(req, "issuer_ref"));
	int rc = 0;
	if (i) {
		char key[64];
		snprintf(key, sizeof(key), "issuer/%s", i->id);
		rc = view_delete(b->view, key, err);
		if (!rc && i == s->def)
			rc = view_delete(b->view, "config/issuers", err);
		if (!rc)
			rc = pki__state_reload(b, err);
	}
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

static int config_issuers_read(struct logical_request *req, struct logical_response *resp,
			       struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	resp->data = json_pack("{s:s,s:b}", "default", s->def ? s->def->id : "",
			       "default_follows_latest_issuer", 0);
	pki__state_put(b, s);
	return 0;
}

static int config_issuers_write(struct logical_request *req, struct logical_response *resp,
				struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	const char *ref = request_str(req, "default");
	struct pki_issuer *i = ref && *ref && strcmp(ref, "default") ? pki__issuer_find(s, ref) : NULL;
	int rc = 0;
	if (!i) {
		rc = verr_set(err, VERR_INVALID, "unable to find PKI issuer for reference: %.64s", ref);
	} else {
		json_t *o = json_pack("{s:s,s:b}", "default", i->id, "default_follows_latest_issuer", 0);
		rc = view_put_json(b->view, "config/issuers", o, err);
		json_decref(o);
		if (!rc)
			rc = pki__state_reload(b, err);
		if (!rc)
			resp->data = json_pack("{s:s,s:b}", "default", i->id,
					       "default_follows_latest_issuer", 0);
	}
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

/* ---- keys ---- */

static int keys_list(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	json_t *keys = json_array(), *info = json_object();
	for (size_t i = 0; i < s->n_keys; i++) {
		json_array_append_new(keys, json_string(s->keys[i]->id));
		json_object_set_new(info, s->keys[i]->id,
				    json_pack("{s:s,s:s}", "key_name", s->keys[i]->name, "key_type",
					      pki__key_type_name(s->keys[i]->type)));
	}
	pki__state_put(b, s);
	resp->data = json_pack("{s:o,s:o}", "keys", keys, "key_info", info);
	return 0;
}

static int key_read(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	struct pki_key *k = pki__key_find(s, request_str(req, "key_ref"));
	int rc = 0;
	if (!k)
		rc = verr_set(err, VERR_NOT_FOUND, "unable to find PKI key for reference: %.64s",
			      request_str(req, "key_ref"));
	else
		resp->data = json_pack("{s:s,s:s,s:s,s:i}", "key_id", k->id, "key_name", k->name,
				       "key_type", pki__key_type_name(k->type), "key_bits", k->bits);
	pki__state_put(b, s);
	return rc;
}

static int key_update(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	struct pki_key *k = pki__key_find(s, request_str(req, "key_ref"));
	const char *n = request_str(req, "key_name");
	json_t *o = NULL;
	int rc = 0;
	char key[64];
	if (!k) {
		rc = verr_set(err, VERR_NOT_FOUND, "unable to find PKI key for reference: %.64s",
			      request_str(req, "key_ref"));
		goto out;
	}
	if (bad_ref_name(n) || (strcmp(n, k->name) && name_taken(s, n, false))) {
		rc = verr_set(err, VERR_INVALID, "key name %.64s is invalid or already in use", n);
		goto out;
	}
	snprintf(key, sizeof(key), "key/%s", k->id);
	if ((rc = view_get_json(b->view, key, &o, err)) || !o)
		goto out;
	json_object_set_new(o, "key_name", json_string(n));
	rc = view_put_json(b->view, key, o, err);
	json_t *pv = json_object_get(o, "private_key");
	if (pv)
		OPENSSL_cleanse((char *)json_string_value(pv), json_string_length(pv));
	if (!rc)
		resp->data = json_pack("{s:s,s:s,s:s}", "key_id", k->id, "key_name", n, "key_type",
				       pki__key_type_name(k->type));
	if (!rc)
		rc = pki__state_reload(b, err);
out:
	json_decref(o);
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

static int key_delete(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	struct pki_key *k = pki__key_find(s, request_str(req, "key_ref"));
	int rc = 0;
	if (k) {
		for (size_t i = 0; i < s->n_issuers; i++)
			if (!strcmp(s->issuers[i]->key_id, k->id)) {
				rc = verr_set(err, VERR_INVALID,
					      "Unable to delete key as it is in use by one or more issuers");
				goto out;
			}
		char key[64];
		snprintf(key, sizeof(key), "key/%s", k->id);
		if (!(rc = view_delete(b->view, key, err)))
			rc = pki__state_reload(b, err);
	}
out:
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

static int config_keys_read(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	resp->data = json_pack("{s:s}", "default", s->default_key);
	pki__state_put(b, s);
	return 0;
}

static int config_keys_write(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	struct pki_state *s = pki__state_get(b);
	const char *ref = request_str(req, "default");
	struct pki_key *k = ref && *ref && strcmp(ref, "default") ? pki__key_find(s, ref) : NULL;
	int rc = 0;
	if (!k) {
		rc = verr_set(err, VERR_INVALID, "unable to find PKI key for reference: %.64s", ref);
	} else {
		json_t *o = json_pack("{s:s}", "default", k->id);
		rc = view_put_json(b->view, "config/keys", o, err);
		json_decref(o);
		if (!rc)
			rc = pki__state_reload(b, err);
		if (!rc)
			resp->data = json_pack("{s:s}", "default", k->id);
	}
	pki__state_put(b, s);
	pthread_mutex_unlock(&b->cfg_lock);
	return rc;
}

/* ---- root DELETE ---- */

static int root_delete(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->cfg_lock);
	int rc = view_clear_prefix(b->view, "issuer/", err);
	if (!rc)
		rc = view_clear_prefix(b->view, "key/", err);
	if (!rc)
		rc = view_delete(b->view, "config/issuers", err);
	if (!rc)
		rc = view_delete(b->view, "config/keys", err);
	if (!rc)
		rc = view_clear_prefix(b->view, "crl/", err);
	if (!rc)
		rc = pki__state_reload(b, err);
	pthread_mutex_unlock(&b->cfg_lock);
	pthread_mutex_lock(&b->crl_lock);
	pki__crl_index_free(b);
	pthread_mutex_unlock(&b->crl_lock);
	return rc;
}

/* ---- config/urls ---- */

static int urls_read(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	resp->data = json_deep_copy(s->urls);
	json_object_set_new(resp->data, "enable_templating", json_false());
	pki__state_put(b, s);
	return 0;
}

static int urls_write(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *k[] = {"issuing_certificates", "crl_distribution_points", "ocsp_servers",
			   "delta_crl_distribution_points"};
	json_t *o = json_object();
	for (int i = 0; i < 4; i++) {
		json_t *l = pki__strlist(request_json(req, k[i]));
		size_t idx;
		json_t *v;
		json_array_foreach(l, idx, v)
		{
			const char *u = json_string_value(v);
			if (!strstr(u, "://")) {
				json_decref(l);
				json_decref(o);
				return verr_set(err, VERR_INVALID, "invalid URL found in %s: %.128s", k[i], u);
			}
		}
		json_object_set_new(o, k[i], l);
	}
	pthread_mutex_lock(&b->cfg_lock);
	int rc = view_put_json(b->view, "config/urls", o, err);
	if (!rc)
		rc = pki__state_reload(b, err);
	pthread_mutex_unlock(&b->cfg_lock);
	json_decref(o);
	return rc;
}

/* ---- table ---- */

#define SUBJECT_FIELDS                                                                         \
	{"common_name", FT_STRING, "", "", false}, {"alt_names", FT_STRSLICE, "", "", false},     \
		{"ip_sans", FT_STRSLICE, "", "", false}, {"uri_sans", FT_STRSLICE, "", "", false}, \
		{"other_sans", FT_STRSLICE, "", "", false},                                        \
		{"exclude_cn_from_sans", FT_BOOL, "false", "", false},                             \
		{"ou", FT_STRSLICE, "", "", false}, {"organization", FT_STRSLICE, "", "", false},  \
		{"country", FT_STRSLICE, "", "", false}, {"locality", FT_STRSLICE, "", "", false}, \
		{"province", FT_STRSLICE, "", "", false},                                          \
		{"street_address", FT_STRSLICE, "", "", false},                                    \
		{"postal_code", FT_STRSLICE, "", "", false},                                       \
		{"serial_number", FT_STRING, "", "", false},                                       \
		{"format", FT_STRING, "pem", "pem, der or pem_bundle", false},                     \
		{"private_key_format", FT_STRING, "der", "der, pem or pkcs8", false},              \
		{"key_type", FT_STRING, "rsa", "", false}, {"key_bits", FT_INT, "0", "", false},  \
		{"key_name", FT_STRING, "", "", false}, {"key_ref", FT_STRING, "default", "", false}, \
		{"signature_bits", FT_INT, "0", "", false}, {"use_pss", FT_BOOL, "false", "", false}

static const struct field_def root_fields[] = {
	{"type", FT_STRING, NULL, "internal, exported or existing", true},
	SUBJECT_FIELDS,
	{"ttl", FT_DURATION, "0", "", false},
	{"not_after", FT_STRING, "", "", false},
	{"not_before_duration", FT_DURATION, "30", "", false},
	{"max_path_length", FT_INT, "-1", "", false},
	{"permitted_dns_domains", FT_STRSLICE, "", "", false},
	{"issuer_name", FT_STRING, "", "", false},
	{"managed_key_name", FT_STRING, "", "", false},
	{"managed_key_id", FT_STRING, "", "", false},
	{NULL},
};

static const struct field_def inter_fields[] = {
	{"type", FT_STRING, NULL, "internal, exported or existing", true},
	SUBJECT_FIELDS,
	{"add_basic_constraints", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct field_def sign_inter_fields[] = {
	{"csr", FT_STRING, "", "PEM CSR", false},
	SUBJECT_FIELDS,
	{"ttl", FT_DURATION, "0", "", false},
	{"not_after", FT_STRING, "", "", false},
	{"not_before_duration", FT_DURATION, "30", "", false},
	{"max_path_length", FT_INT, "-1", "", false},
	{"permitted_dns_domains", FT_STRSLICE, "", "", false},
	{"use_csr_values", FT_BOOL, "false", "", false},
	{"issuer_ref", FT_STRING, "default", "", false},
	{"issuer_name", FT_STRING, "", "", false},
	{NULL},
};

static const struct field_def self_issued_fields[] = {
	{"certificate", FT_STRING, "", "", false},
	{"issuer_ref", FT_STRING, "default", "", false},
	{"require_matching_certificate_algorithms", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct field_def set_signed_fields[] = {
	{"certificate", FT_STRING, "", "PEM bundle", false},
	{NULL},
};

static const struct field_def config_ca_fields[] = {
	{"pem_bundle", FT_STRING, "", "PEM bundle", false},
	{NULL},
};

static const struct field_def issuer_fields[] = {
	{"issuer_ref", FT_STRING, "default", "", false},
	{"issuer_name", FT_STRING, "", "", false},
	{"leaf_not_after_behavior", FT_STRING, "err", "", false},
	{"usage", FT_STRSLICE, "read-only,issuing-certificates,crl-signing,ocsp-signing", "", false},
	{"manual_chain", FT_STRSLICE, "", "", false},
	{"revocation_signature_algorithm", FT_STRING, "", "", false},
	{"issuing_certificates", FT_STRSLICE, "", "", false},
	{"crl_distribution_points", FT_STRSLICE, "", "", false},
	{"ocsp_servers", FT_STRSLICE, "", "", false},
	{"enable_aia_url_templating", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct field_def issuer_fmt_fields[] = {
	{"issuer_ref", FT_STRING, "default", "", false},
	{NULL},
};

static const struct field_def default_fields[] = {
	{"default", FT_STRING, "", "", false},
	{"default_follows_latest_issuer", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct field_def key_fields[] = {
	{"key_ref", FT_STRING, "default", "", false},
	{"key_name", FT_STRING, "", "", false},
	{NULL},
};

static const struct field_def urls_fields[] = {
	{"issuing_certificates", FT_STRSLICE, "", "", false},
	{"crl_distribution_points", FT_STRSLICE, "", "", false},
	{"ocsp_servers", FT_STRSLICE, "", "", false},
	{"delta_crl_distribution_points", FT_STRSLICE, "", "", false},
	{"enable_templating", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct path_def ca_paths[] = {
	{.pattern = "root/generate/{type}", .fields = root_fields,
	 .ops = {{LOP_UPDATE, root_generate}}, .help = "Generate a new self-signed root CA."},
	{.pattern = "issuers/generate/root/{type}", .fields = root_fields,
	 .ops = {{LOP_UPDATE, root_generate}}, .help = "Generate a new self-signed root CA."},
	{.pattern = "root", .ops = {{LOP_DELETE, root_delete}}, .sudo = false,
	 .help = "Delete every issuer and key of this mount."},
	{.pattern = "intermediate/generate/{type}", .fields = inter_fields,
	 .ops = {{LOP_UPDATE, intermediate_generate}},
	 .help = "Generate a key and a CSR for an intermediate CA."},
	{.pattern = "issuers/generate/intermediate/{type}", .fields = inter_fields,
	 .ops = {{LOP_UPDATE, intermediate_generate}},
	 .help = "Generate a key and a CSR for an intermediate CA."},
	{.pattern = "root/sign-intermediate", .fields = sign_inter_fields,
	 .ops = {{LOP_UPDATE, sign_intermediate}}, .help = "Sign an intermediate CA's CSR."},
	{.pattern = "issuer/{issuer_ref}/sign-intermediate", .fields = sign_inter_fields,
	 .ops = {{LOP_UPDATE, sign_intermediate}}, .help = "Sign an intermediate CA's CSR."},
	{.pattern = "root/sign-self-issued", .fields = self_issued_fields,
	 .ops = {{LOP_UPDATE, sign_self_issued}}, .sudo = true,
	 .help = "Re-sign a self-issued CA certificate with this CA."},
	{.pattern = "issuer/{issuer_ref}/sign-self-issued", .fields = self_issued_fields,
	 .ops = {{LOP_UPDATE, sign_self_issued}}, .sudo = true,
	 .help = "Re-sign a self-issued CA certificate with this CA."},
	{.pattern = "intermediate/set-signed", .fields = set_signed_fields,
	 .ops = {{LOP_UPDATE, set_signed}}, .help = "Import the signed intermediate certificate."},
	{.pattern = "config/ca", .fields = config_ca_fields, .ops = {{LOP_UPDATE, config_ca}},
	 .help = "Import a PEM bundle of CA certificates and keys."},
	{.pattern = "issuers/import/{kind}", .fields = config_ca_fields,
	 .ops = {{LOP_UPDATE, config_ca}}, .help = "Import a PEM bundle."},
	{.pattern = "issuers/?", .ops = {{LOP_LIST, issuers_list}}, .unauthenticated = true,
	 .help = "List the issuers."},
	{.pattern = "issuer/{issuer_ref}/json", .fields = issuer_fmt_fields,
	 .ops = {{LOP_READ, issuer_read_fmt}}, .unauthenticated = true,
	 .help = "The issuer's certificate and chain as JSON."},
	{.pattern = "issuer/{issuer_ref}/pem", .fields = issuer_fmt_fields,
	 .ops = {{LOP_READ, issuer_read_fmt}}, .unauthenticated = true,
	 .help = "The issuer's certificate chain as PEM."},
	{.pattern = "issuer/{issuer_ref}/der", .fields = issuer_fmt_fields,
	 .ops = {{LOP_READ, issuer_read_fmt}}, .unauthenticated = true,
	 .help = "The issuer's certificate as DER."},
	{.pattern = "issuer/{issuer_ref}", .fields = issuer_fields,
	 .ops = {{LOP_READ, issuer_read},
		 {LOP_UPDATE, issuer_update},
		 {LOP_PATCH, issuer_update},
		 {LOP_DELETE, issuer_delete}},
	 .help = "Read, update or delete an issuer."},
	{.pattern = "config/issuers", .fields = default_fields,
	 .ops = {{LOP_READ, config_issuers_read}, {LOP_UPDATE, config_issuers_write}},
	 .help = "The default issuer."},
	{.pattern = "root/replace", .fields = default_fields,
	 .ops = {{LOP_UPDATE, config_issuers_write}}, .help = "Set the default issuer."},
	{.pattern = "keys/?", .ops = {{LOP_LIST, keys_list}}, .help = "List the keys."},
	{.pattern = "key/{key_ref}", .fields = key_fields,
	 .ops = {{LOP_READ, key_read}, {LOP_UPDATE, key_update}, {LOP_DELETE, key_delete}},
	 .help = "Read, rename or delete a key."},
	{.pattern = "config/keys", .fields = default_fields,
	 .ops = {{LOP_READ, config_keys_read}, {LOP_UPDATE, config_keys_write}},
	 .help = "The default key."},
	{.pattern = "config/urls", .fields = urls_fields,
	 .ops = {{LOP_READ, urls_read}, {LOP_UPDATE, urls_write}},
	 .help = "URLs embedded in issued certificates (AIA, CRL distribution points, OCSP)."},
	{NULL},
};

const struct path_def *pki__ca_paths(void)
{
	return ca_paths;
}
