/*
 * cert.c - building X.509 certificates and CSRs for the PKI engine with
 * OpenSSL 3: subject names in Go's pkix order (C, ST, L, street, postal
 * code, O, OU, CN, serialNumber, as Vault writes them), the extensions
 * Vault puts in leaf and CA certificates (basicConstraints, keyUsage,
 * extKeyUsage, SKI/AKI, subjectAltName, AIA, CRL distribution points, name
 * constraints), random serials, and signing.
 *
 * Extensions are built from OpenSSL's typed structures, never from config
 * strings (no parsing per request). Digests are fetched once per process.
 */
#include "secrets/pki/pki_int.h"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "util/rand.h"

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha1, *md_sha256, *md_sha384, *md_sha512;

static void md_init(void)
{
	md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	md_sha384 = EVP_MD_fetch(NULL, "SHA2-384", NULL);
	md_sha512 = EVP_MD_fetch(NULL, "SHA2-512", NULL);
}

const EVP_MD *pki__md_for(EVP_PKEY *pk, int signature_bits)
{
	pthread_once(&md_once, md_init);
	int id = EVP_PKEY_get_base_id(pk);
	if (id == EVP_PKEY_ED25519)
		return NULL;
	int bits = signature_bits;
	if (!bits && id == EVP_PKEY_EC) {
		int kb = EVP_PKEY_get_bits(pk);
		bits = kb > 384 ? 512 : kb > 256 ? 384 : 256;
	}
	switch (bits) {
	case 384:
		return md_sha384;
	case 512:
		return md_sha512;
	default:
		return md_sha256;
	}
}

int pki__serial_random(ASN1_INTEGER **out, struct verr *err)
{
	uint8_t b[PKI_SERIAL_BYTES];
	*out = NULL;
	do {
		if (rand_bytes(b, sizeof(b), err))
			return VERR_INTERNAL;
		b[0] &= 0x7f; /* positive */
	} while (b[0] == 0); /* keep the full 20-byte width: fixed-length serials */
	BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	*out = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	OPENSSL_cleanse(b, sizeof(b));
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int add_entries(X509_NAME *n, int nid, json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);
		if (s && *s &&
		    !X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8, (const unsigned char *)s, -1, -1, 0))
			return -1;
	}
	return 0;
}

static X509_NAME *subject_name(const struct pki_subject *s)
{
	X509_NAME *n = X509_NAME_new();
	if (!n)
		return NULL;
	int bad = add_entries(n, NID_countryName, s->country) ||
		  add_entries(n, NID_stateOrProvinceName, s->province) ||
		  add_entries(n, NID_localityName, s->locality) ||
		  add_entries(n, NID_streetAddress, s->street_address) ||
		  add_entries(n, NID_postalCode, s->postal_code) ||
		  add_entries(n, NID_organizationName, s->organization) ||
		  add_entries(n, NID_organizationalUnitName, s->ou);
	if (!bad && s->cn && *s->cn)
		bad = !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
						  (const unsigned char *)s->cn, -1, -1, 0);
	if (!bad && s->serial_number && *s->serial_number)
		bad = !X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC,
						  (const unsigned char *)s->serial_number, -1, -1, 0);
	if (bad) {
		X509_NAME_free(n);
		ERR_clear_error();
		return NULL;
	}
	return n;
}

static GENERAL_NAME *gen_str(int type, const char *s)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	if (!g || !ia5 || !ASN1_STRING_set(ia5, s, -1)) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(ia5);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, type, ia5);
	return g;
}

static GENERAL_NAME *gen_ip(const char *s)
{
	unsigned char a[16];
	int len = 0;
	if (inet_pton(AF_INET, s, a) == 1)
		len = 4;
	else if (inet_pton(AF_INET6, s, a) == 1)
		len = 16;
	else
		return NULL;
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
	if (!g || !o || !ASN1_OCTET_STRING_set(o, a, len)) {
		GENERAL_NAME_free(g);
		ASN1_OCTET_STRING_free(o);
		return NULL;
	}
	GENERAL_NAME_set0_value(g, GEN_IPADD, o);
	return g;
}

static int push_gen(GENERAL_NAMES *gens, GENERAL_NAME *g)
{
	if (!g)
		return -1;
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

/* subjectAltName from the subject's arrays; NULL when there is nothing */
static GENERAL_NAMES *san_names(const struct pki_subject *s, int *bad)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	size_t i;
	json_t *v;
	*bad = !gens;
	json_array_foreach(s->dns, i, v)
	{
		const char *n = json_string_value(v);
		if (push_gen(gens, gen_str(strchr(n, '@') ? GEN_EMAIL : GEN_DNS, n)))
			*bad = 1;
	}
	json_array_foreach(s->ips, i, v)
	{
		if (push_gen(gens, gen_ip(json_string_value(v))))
			*bad = 1;
	}
	json_array_foreach(s->uris, i, v)
	{
		if (push_gen(gens, gen_str(GEN_URI, json_string_value(v))))
			*bad = 1;
	}
	if (*bad || sk_GENERAL_NAME_num(gens) == 0) {
		GENERAL_NAMES_free(gens);
		return NULL;
	}
	return gens;
}

static const struct {
	const char *name;
	int bit;
} ku_names[] = {
	{"DigitalSignature", 0}, {"ContentCommitment", 1}, {"KeyEncipherment", 2},
	{"DataEncipherment", 3}, {"KeyAgreement", 4},      {"CertSign", 5},
	{"CRLSign", 6},          {"EncipherOnly", 7},      {"DecipherOnly", 8},
};

static const struct {
	const char *name;
	int nid;
} eku_names[] = {
	{"Any", NID_anyExtendedKeyUsage},
	{"ServerAuth", NID_server_auth},
	{"ClientAuth", NID_client_auth},
	{"CodeSigning", NID_code_sign},
	{"EmailProtection", NID_email_protect},
	{"IPSECEndSystem", NID_ipsecEndSystem},
	{"IPSECTunnel", NID_ipsecTunnel},
	{"IPSECUser", NID_ipsecUser},
	{"TimeStamping", NID_time_stamp},
	{"OCSPSigning", NID_OCSP_sign},
	{"MicrosoftServerGatedCrypto", NID_ms_sgc},
	{"NetscapeServerGatedCrypto", NID_ns_sgc},
};

/* Vault accepts the names case-insensitively and with a "KeyUsage" or
 * "ExtKeyUsage" prefix */
static const char *strip_prefix(const char *s, const char *prefix)
{
	size_t l = strlen(prefix);
	return strncasecmp(s, prefix, l) == 0 ? s + l : s;
}

static int add_ext(X509 *x, int nid, void *val, int crit)
{
	return X509_add1_ext_i2d(x, nid, val, crit, X509V3_ADD_REPLACE) == 1 ? 0 : -1;
}

static int add_key_usage(X509 *x, const struct pki_cert_params *p)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	int any = 0, rc = -1;
	if (!ku)
		return -1;
	if (p->is_ca) {
		ASN1_BIT_STRING_set_bit(ku, 0, 1);
		ASN1_BIT_STRING_set_bit(ku, 5, 1);
		ASN1_BIT_STRING_set_bit(ku, 6, 1);
		any = 1;
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(p->key_usage, i, v)
		{
			const char *n = strip_prefix(json_string_value(v), "KeyUsage");
			for (size_t k = 0; k < sizeof(ku_names) / sizeof(ku_names[0]); k++)
				if (!strcasecmp(n, ku_names[k].name)) {
					ASN1_BIT_STRING_set_bit(ku, ku_names[k].bit, 1);
					any = 1;
				}
		}
	}
	rc = any ? add_ext(x, NID_key_usage, ku, 1) : 0;
	ASN1_BIT_STRING_free(ku);
	return rc;
}

static int add_ext_key_usage(X509 *x, const struct pki_cert_params *p)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	if (!eku)
		return -1;
	int nids[8], nn = 0;
	if (p->server_flag)
		nids[nn++] = NID_server_auth;
	if (p->client_flag)
		nids[nn++] = NID_client_auth;
	if (p->code_signing_flag)
		nids[nn++] = NID_code_sign;
	if (p->email_protection_flag)
		nids[nn++] = NID_email_protect;
	for (int i = 0; i < nn; i++)
		sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nids[i]));
	size_t i;
	json_t *v;
	json_array_foreach(p->ext_key_usage, i, v)
	{
		const char *n = strip_prefix(json_string_value(v), "ExtKeyUsage");
		for (size_t k = 0; k < sizeof(eku_names) / sizeof(eku_names[0]); k++) {
			if (strcasecmp(n, eku_names[k].name))
				continue;
			bool dup = false;
			for (int j = 0; j < nn; j++)
				dup |= nids[j] == eku_names[k].nid;
			if (!dup)
				sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(eku_names[k].nid));
		}
	}
	json_array_foreach(p->ext_key_usage_oids, i, v)
	{
		ASN1_OBJECT *o = OBJ_txt2obj(json_string_value(v), 1);
		if (o && !sk_ASN1_OBJECT_push(eku, o))
			ASN1_OBJECT_free(o);
	}
	int rc = sk_ASN1_OBJECT_num(eku) ? add_ext(x, NID_ext_key_usage, eku, 0) : 0;
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

static int add_urls(X509 *x, json_t *urls)
{
	json_t *issuing = json_object_get(urls, "issuing_certificates");
	json_t *ocsp = json_object_get(urls, "ocsp_servers");
	json_t *crl = json_object_get(urls, "crl_distribution_points");
	size_t i;
	json_t *v;
	int rc = 0;
	if (json_array_size(issuing) || json_array_size(ocsp)) {
		AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
		for (int pass = 0; aia && pass < 2; pass++) {
			json_t *arr = pass ? issuing : ocsp;
			json_array_foreach(arr, i, v)
			{
				ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
				GENERAL_NAME *g = gen_str(GEN_URI, json_string_value(v));
				if (!ad || !g) {
					ACCESS_DESCRIPTION_free(ad);
					GENERAL_NAME_free(g);
					rc = -1;
					continue;
				}
				ASN1_OBJECT_free(ad->method);
				ad->method = OBJ_nid2obj(pass ? NID_ad_ca_issuers : NID_ad_OCSP);
				GENERAL_NAME_free(ad->location);
				ad->location = g;
				if (!sk_ACCESS_DESCRIPTION_push(aia, ad))
					ACCESS_DESCRIPTION_free(ad);
			}
		}
		if (!aia || add_ext(x, NID_info_access, aia, 0))
			rc = -1;
		AUTHORITY_INFO_ACCESS_free(aia);
	}
	if (json_array_size(crl)) {
		CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
		DIST_POINT *dp = DIST_POINT_new();
		DIST_POINT_NAME *dpn = DIST_POINT_NAME_new();
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		if (!dps || !dp || !dpn || !gens) {
			CRL_DIST_POINTS_free(dps);
			DIST_POINT_free(dp);
			DIST_POINT_NAME_free(dpn);
			GENERAL_NAMES_free(gens);
			return -1;
		}
		json_array_foreach(crl, i, v)
		{
			if (push_gen(gens, gen_str(GEN_URI, json_string_value(v))))
				rc = -1;
		}
		dpn->type = 0;
		dpn->name.fullname = gens;
		dp->distpoint = dpn;
		if (!sk_DIST_POINT_push(dps, dp))
			DIST_POINT_free(dp);
		if (add_ext(x, NID_crl_distribution_points, dps, 0))
			rc = -1;
		CRL_DIST_POINTS_free(dps);
	}
	return rc;
}

static int add_name_constraints(X509 *x, json_t *domains)
{
	if (!json_array_size(domains))
		return 0;
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	if (!nc)
		return -1;
	nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
	size_t i;
	json_t *v;
	int rc = nc->permittedSubtrees ? 0 : -1;
	json_array_foreach(domains, i, v)
	{
		GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
		GENERAL_NAME *g = gen_str(GEN_DNS, json_string_value(v));
		if (!st || !g || rc) {
			GENERAL_SUBTREE_free(st);
			GENERAL_NAME_free(g);
			rc = -1;
			continue;
		}
		GENERAL_NAME_free(st->base);
		st->base = g;
		if (!sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st))
			GENERAL_SUBTREE_free(st);
	}
	if (!rc)
		rc = add_ext(x, NID_name_constraints, nc, 1);
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

static ASN1_OCTET_STRING *key_id(X509 *x)
{
	pthread_once(&md_once, md_init);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!X509_pubkey_digest(x, md_sha1, md, &len))
		return NULL;
	ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
	if (o && !ASN1_OCTET_STRING_set(o, md, (int)len)) {
		ASN1_OCTET_STRING_free(o);
		return NULL;
	}
	return o;
}

/*
 * The subjectPublicKeyInfo of a leaf, written from the key's encoded public
 * key (the EC point, the Ed25519 bytes) and its algorithm identifier.
 * X509_set_pubkey in OpenSSL 3.0 encodes the key through the encoder
 * framework and decodes it back through a new decoder context, per call:
 * over half the CPU time of an EC P-256 issue (perf, docs/performance.md).
 * The certificate then holds no decoded key (X509_get0_pubkey is NULL
 * until it is parsed again), which a leaf only ever goes on to be signed,
 * encoded and stored needs not. 1 when done, 0 for another key type (the
 * caller uses X509_set_pubkey), -1 on failure.
 */
static int set_leaf_spki(X509 *x, EVP_PKEY *pk)
{
	int id = EVP_PKEY_get_base_id(pk), alg, ptype = V_ASN1_UNDEF;
	void *pval = NULL;
	if (id == EVP_PKEY_EC) {
		char group[64];
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), NULL))
			return 0;
		int nid = OBJ_sn2nid(group);
		if (nid == NID_undef)
			nid = EC_curve_nist2nid(group);
		if (nid == NID_undef)
			return 0;
		alg = NID_X9_62_id_ecPublicKey;
		ptype = V_ASN1_OBJECT;
		pval = OBJ_nid2obj(nid);
	} else if (id == EVP_PKEY_ED25519) {
		alg = NID_ED25519;
	} else {
		return 0;
	}
	unsigned char buf[160];
	size_t len = 0;
	if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
					     sizeof(buf), &len) ||
	    len == 0) {
		ERR_clear_error();
		return 0;
	}
	unsigned char *enc = OPENSSL_memdup(buf, len);
	if (!enc || !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(alg), ptype, pval,
					    enc, (int)len)) {
		OPENSSL_free(enc);
		return -1;
	}
	return 1;
}

static int set_pubkey(X509 *x, const struct pki_cert_params *p, const struct pki_issuer *iss)
{
	if (iss && !p->is_ca) {
		int r = set_leaf_spki(x, p->pubkey);
		if (r)
			return r > 0 ? 0 : -1;
	}
	return X509_set_pubkey(x, p->pubkey) ? 0 : -1;
}

int pki__cert_build(X509 **out, const struct pki_cert_params *p, const struct pki_issuer *iss,
		    EVP_PKEY *sign_key, struct verr *err)
{
	*out = NULL;
	X509 *x = X509_new();
	X509_NAME *name = p->subject_name ? NULL : subject_name(&p->subj);
	ASN1_INTEGER *serial = NULL;
	ASN1_OCTET_STRING *skid = NULL;
	int rc = VERR_INTERNAL;
	if (!x || (!name && !p->subject_name))
		goto out;
	if ((rc = pki__serial_random(&serial, err)))
		goto out;
	rc = VERR_INTERNAL;
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, p->subject_name ? p->subject_name : name) ||
	    !X509_set_issuer_name(x, iss ? X509_get_subject_name(iss->cert)
					 : (p->subject_name ? p->subject_name : name)) ||
	    set_pubkey(x, p, iss) || !ASN1_TIME_set(X509_getm_notBefore(x), p->not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), p->not_after))
		goto out;

	if (p->is_ca || p->basic_constraints) {
		BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
		if (!bc)
			goto out;
		bc->ca = p->is_ca ? 0xff : 0;
		if (p->is_ca && p->max_path_length >= 0) {
			bc->pathlen = ASN1_INTEGER_new();
			if (bc->pathlen)
				ASN1_INTEGER_set(bc->pathlen, p->max_path_length);
		}
		int brc = add_ext(x, NID_basic_constraints, bc, 1);
		BASIC_CONSTRAINTS_free(bc);
		if (brc)
			goto out;
	}
	if (add_key_usage(x, p) || (!p->is_ca && add_ext_key_usage(x, p)))
		goto out;
	if (!(skid = key_id(x)) || add_ext(x, NID_subject_key_identifier, skid, 0))
		goto out;
	{
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		if (!akid)
			goto out;
		akid->keyid = ASN1_OCTET_STRING_dup(iss && iss->skid ? iss->skid : skid);
		int arc = akid->keyid ? add_ext(x, NID_authority_key_identifier, akid, 0) : -1;
		AUTHORITY_KEYID_free(akid);
		if (arc)
			goto out;
	}
	{
		int bad = 0;
		GENERAL_NAMES *san = san_names(&p->subj, &bad);
		if (bad) {
			rc = verr_set(err, VERR_INVALID, "invalid subject alternative name");
			goto out;
		}
		if (san) {
			int src = add_ext(x, NID_subject_alt_name, san, 0);
			GENERAL_NAMES_free(san);
			if (src)
				goto out;
		}
	}
	if (add_urls(x, p->urls) || (p->is_ca && add_name_constraints(x, p->permitted_dns_domains)))
		goto out;
	EVP_PKEY *signer = iss ? iss->pkey : sign_key;
	if (!signer) {
		rc = verr_set(err, VERR_INVALID, "the issuer has no private key");
		goto out;
	}
	if (X509_sign(x, signer, iss ? iss->md : pki__md_for(signer, 0)) <= 0)
		goto out;
	*out = x;
	x = NULL; /* transferred */
	rc = 0;
out:
	if (rc == VERR_INTERNAL && (!err || !err->msg[0]))
		verr_set(err, VERR_INTERNAL, "could not build the certificate");
	ERR_clear_error();
	X509_free(x);
	X509_NAME_free(name);
	ASN1_INTEGER_free(serial);
	ASN1_OCTET_STRING_free(skid);
	return rc;
}

int pki__csr_build(X509_REQ **out, const struct pki_subject *subj, EVP_PKEY *key,
		   bool add_basic_constraints, struct verr *err)
{
	*out = NULL;
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = subject_name(subj);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	int rc = VERR_INTERNAL, bad = 0;
	if (!req || !name || !exts || !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key))
		goto out;
	GENERAL_NAMES *san = san_names(subj, &bad);
	if (bad) {
		rc = verr_set(err, VERR_INVALID, "invalid subject alternative name");
		goto out;
	}
	if (san) {
		X509_EXTENSION *e = X509V3_EXT_i2d(NID_subject_alt_name, 0, san);
		GENERAL_NAMES_free(san);
		if (!e || !sk_X509_EXTENSION_push(exts, e)) {
			X509_EXTENSION_free(e);
			goto out;
		}
	}
	if (add_basic_constraints) {
		BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
		if (!bc)
			goto out;
		bc->ca = 0xff;
		X509_EXTENSION *e = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
		BASIC_CONSTRAINTS_free(bc);
		if (!e || !sk_X509_EXTENSION_push(exts, e)) {
			X509_EXTENSION_free(e);
			goto out;
		}
	}
	if (sk_X509_EXTENSION_num(exts) && !X509_REQ_add_extensions(req, exts))
		goto out;
	if (X509_REQ_sign(req, key, pki__md_for(key, 0)) <= 0)
		goto out;
	*out = req;
	req = NULL; /* transferred */
	rc = 0;
out:
	if (rc == VERR_INTERNAL)
		verr_set(err, VERR_INTERNAL, "could not build the certificate request");
	ERR_clear_error();
	X509_REQ_free(req);
	X509_NAME_free(name);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

X509_REQ *pki__csr_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_REQ *r = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

void pki__csr_names(X509_REQ *req, char **cn, json_t *dns, json_t *ips, json_t *uris)
{
	X509_NAME *n = X509_REQ_get_subject_name(req);
	int idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	*cn = NULL;
	if (idx >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, idx));
		unsigned char *u = NULL;
		if (ASN1_STRING_to_UTF8(&u, d) >= 0) {
			*cn = strdup((char *)u);
			OPENSSL_free(u);
		}
	}
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int type;
		void *val = GENERAL_NAME_get0_value(g, &type);
		const ASN1_STRING *s = val;
		if (type == GEN_DNS || type == GEN_EMAIL)
			json_array_append_new(dns, json_stringn((const char *)ASN1_STRING_get0_data(s),
								(size_t)ASN1_STRING_length(s)));
		else if (type == GEN_URI)
			json_array_append_new(uris, json_stringn((const char *)ASN1_STRING_get0_data(s),
								 (size_t)ASN1_STRING_length(s)));
		else if (type == GEN_IPADD) {
			char buf[64];
			int fam = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
			if (inet_ntop(fam, ASN1_STRING_get0_data(s), buf, sizeof(buf)))
				json_array_append_new(ips, json_string(buf));
		}
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
}

int pki__split_alt_names(json_t *alt, json_t *dns, struct verr *err)
{
	json_t *l = pki__strlist(alt);
	if (!l)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	json_array_extend(dns, l);
	json_decref(l);
	return 0;
}

int pki__check_ips(json_t *ips, struct verr *err)
{
	size_t i;
	json_t *v;
	json_array_foreach(ips, i, v)
	{
		unsigned char a[16];
		const char *s = json_string_value(v);
		if (inet_pton(AF_INET, s, a) != 1 && inet_pton(AF_INET6, s, a) != 1)
			return verr_set(err, VERR_INVALID, "the value %.64s is not a valid IP address", s);
	}
	return 0;
}
