/*
 * Unit tests for the PKI engine (src/secrets/pki/): the role's name rules
 * (subdomains, globs, bare domains, localhost, wildcards, IP and URI SANs),
 * TTL capping to max_ttl and to the CA's notAfter, key types and sizes, and
 * the engine through its path table: root generation, issue, sign with a
 * CSR, revoke and the CRL, as the core dispatches them; the OCSP responder
 * (good / revoked / unknown, nonce, signature, malformed, unauthorized).
 */
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

/* PEM labels the assertions look for (split so no line of this file reads
 * like a committed key; every key here is generated at test time) */
#define PEM_PRIV "PRIVATE" " KEY"

#include "secrets/kv_helpers.h"
#include "secrets/pki/pki_int.h"

static json_t *role(const char *json)
{
	json_error_t e;
	json_t *o = json_loads(json, 0, &e);
	assert_non_null(o);
	return o;
}

static void test_secrets_pki__names_subdomains(void **state)
{
	json_t *o = role("{\"allowed_domains\":[\"myapp.example.com\"],\"allow_subdomains\":true,"
			 "\"enforce_hostnames\":true,\"allow_wildcard_certificates\":true}");
	struct pki_role r;
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "api.myapp.example.com"));
	assert_true(pki__role_name_allowed(&r, "a.b.myapp.example.com"));
	assert_true(pki__role_name_allowed(&r, "API.MyApp.Example.com")); /* case-insensitive */
	assert_true(pki__role_name_allowed(&r, "*.myapp.example.com"));
	/* the bare domain needs allow_bare_domains */
	assert_false(pki__role_name_allowed(&r, "myapp.example.com"));
	/* a suffix that is not at a label boundary */
	assert_false(pki__role_name_allowed(&r, "evilmyapp.example.com"));
	assert_false(pki__role_name_allowed(&r, "api.example.com"));
	assert_false(pki__role_name_allowed(&r, "myapp.example.com.evil.org"));
	/* not a hostname */
	assert_false(pki__role_name_allowed(&r, "bad_name.myapp.example.com"));
	assert_false(pki__role_name_allowed(&r, "-x.myapp.example.com"));
	/* no wildcards when the role forbids them */
	json_object_set_new(o, "allow_wildcard_certificates", json_false());
	pki__role_from_json(&r, o);
	assert_false(pki__role_name_allowed(&r, "*.myapp.example.com"));
	json_decref(o);
}

static void test_secrets_pki__names_bare_glob_localhost_any(void **state)
{
	json_t *o = role("{\"allowed_domains\":[\"example.com\",\"*.svc.cluster.local\"],"
			 "\"allow_bare_domains\":true,\"enforce_hostnames\":true}");
	struct pki_role r;
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "example.com"));
	assert_false(pki__role_name_allowed(&r, "www.example.com")); /* no subdomains */
	/* a glob needs allow_glob_domains */
	assert_false(pki__role_name_allowed(&r, "db.ns.svc.cluster.local"));
	json_object_set_new(o, "allow_glob_domains", json_true());
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "db.ns.svc.cluster.local"));
	assert_true(pki__role_name_allowed(&r, "x.svc.cluster.local"));
	assert_false(pki__role_name_allowed(&r, "svc.cluster.local.evil"));
	/* localhost */
	assert_false(pki__role_name_allowed(&r, "localhost"));
	json_object_set_new(o, "allow_localhost", json_true());
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "localhost"));
	/* email SANs are checked by their domain */
	assert_true(pki__role_name_allowed(&r, "ops@example.com"));
	assert_false(pki__role_name_allowed(&r, "ops@other.org"));
	/* allow_any_name, but hostnames still enforced */
	json_object_set_new(o, "allow_any_name", json_true());
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "anything.org"));
	assert_false(pki__role_name_allowed(&r, "not a host"));
	json_object_set_new(o, "enforce_hostnames", json_false());
	pki__role_from_json(&r, o);
	assert_true(pki__role_name_allowed(&r, "not a host"));
	json_decref(o);

	assert_true(pki__glob("spiffe://example.com/*", "spiffe://example.com/w/1"));
	assert_false(pki__glob("spiffe://example.com/*", "spiffe://evil.com/w"));
	assert_true(pki__glob("a*b*c", "aXXbYYc"));
	assert_false(pki__glob("a*b*c", "aXXbYY"));
}

static void test_secrets_pki__ttl_capping(void **state)
{
	struct pki_role r = {.max_ttl = 72 * 3600};
	struct pki_issuer iss = {.not_after = 1000000 + 100 * 3600, .leaf = PKI_LEAF_ERR};
	struct logical_response resp = {0};
	struct verr err = {0};
	int64_t na = 0;
	int64_t now = 1000000;
	/* requested 10 days, role max 72h: capped with a warning */
	assert_int_equal(pki__role_not_after(&r, 240 * 3600, "", now, 768 * 3600, 768 * 3600, &iss,
					     &na, &resp, &err),
			 0);
	assert_int_equal(na, now + 72 * 3600);
	assert_non_null(resp.warnings);
	logical_response_reset(&resp);
	/* no ttl: the mount default, capped to the role max */
	assert_int_equal(pki__role_not_after(&r, 0, "", now, 768 * 3600, 768 * 3600, &iss, &na,
					     NULL, &err),
			 0);
	assert_int_equal(na, now + 72 * 3600);
	/* role ttl wins over the mount default */
	r.ttl = 3600;
	assert_int_equal(pki__role_not_after(&r, 0, "", now, 768 * 3600, 768 * 3600, &iss, &na,
					     NULL, &err),
			 0);
	assert_int_equal(na, now + 3600);
	/* without a role max, the mount max caps */
	r.max_ttl = 0;
	r.ttl = 0;
	assert_int_equal(pki__role_not_after(&r, 200 * 3600, "", now, 3600, 90 * 3600, NULL, &na,
					     NULL, &err),
			 0);
	assert_int_equal(na, now + 90 * 3600);
	/* beyond the CA's notAfter: "err" refuses with Vault's message */
	r.max_ttl = 0;
	assert_int_equal(pki__role_not_after(&r, 200 * 3600, "", now, 3600, 1000 * 3600, &iss, &na,
					     NULL, &err),
			 VERR_INVALID);
	assert_non_null(strstr(err.msg, "beyond the expiration of the CA certificate"));
	/* "truncate" caps at the CA's notAfter */
	iss.leaf = PKI_LEAF_TRUNCATE;
	assert_int_equal(pki__role_not_after(&r, 200 * 3600, "", now, 3600, 1000 * 3600, &iss, &na,
					     NULL, &err),
			 0);
	assert_int_equal(na, iss.not_after);
	/* "permit" lets it through */
	iss.leaf = PKI_LEAF_PERMIT;
	assert_int_equal(pki__role_not_after(&r, 200 * 3600, "", now, 3600, 1000 * 3600, &iss, &na,
					     NULL, &err),
			 0);
	assert_int_equal(na, now + 200 * 3600);
	/* not_after as an RFC 3339 time */
	assert_int_equal(pki__role_not_after(&r, 0, "1970-01-13T00:00:00Z", now, 3600, 1000 * 3600,
					     NULL, &na, NULL, &err),
			 0);
	assert_int_equal(na, 12 * 86400);
	assert_int_equal(pki__role_not_after(&r, 0, "tomorrow", now, 3600, 1000 * 3600, NULL, &na,
					     NULL, &err),
			 VERR_INVALID);
}

static void test_secrets_pki__key_types(void **state)
{
	struct verr err = {0};
	int bits = 0;
	assert_int_equal(pki__key_type_parse("rsa"), PKI_KEY_RSA);
	assert_int_equal(pki__key_type_parse("ec"), PKI_KEY_EC);
	assert_int_equal(pki__key_type_parse("ed25519"), PKI_KEY_ED25519);
	assert_int_equal(pki__key_type_parse("any"), PKI_KEY_ANY);
	assert_int_equal(pki__key_type_parse("dsa"), 0);
	assert_int_equal(pki__key_bits_check(PKI_KEY_RSA, &bits, &err), 0);
	assert_int_equal(bits, 2048);
	bits = 0;
	assert_int_equal(pki__key_bits_check(PKI_KEY_EC, &bits, &err), 0);
	assert_int_equal(bits, 256);
	bits = 1024;
	assert_int_equal(pki__key_bits_check(PKI_KEY_RSA, &bits, &err), VERR_INVALID);
	bits = 512;
	assert_int_equal(pki__key_bits_check(PKI_KEY_EC, &bits, &err), VERR_INVALID);
	const struct {
		enum pki_key_type t;
		int bits;
	} gen[] = {{PKI_KEY_EC, 256}, {PKI_KEY_EC, 384}, {PKI_KEY_EC, 521}, {PKI_KEY_ED25519, 0},
		   {PKI_KEY_RSA, 2048}};
	for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
		EVP_PKEY *k = NULL;
		assert_int_equal(pki__keygen(&k, gen[i].t, gen[i].bits, &err), 0);
		enum pki_key_type t;
		int b;
		pki__key_info(k, &t, &b);
		assert_int_equal(t, gen[i].t);
		if (gen[i].bits)
			assert_int_equal(b, gen[i].bits);
		/* the encodings Vault returns */
		char *pem = pki__key_to_pem(k, "der");
		assert_non_null(pem);
		assert_non_null(strstr(pem, gen[i].t == PKI_KEY_RSA  ? "BEGIN RSA " PEM_PRIV
					    : gen[i].t == PKI_KEY_EC ? "BEGIN EC " PEM_PRIV
								     : "BEGIN " PEM_PRIV));
		EVP_PKEY *back = pki__key_from_pem(pem, strlen(pem));
		assert_int_equal(EVP_PKEY_eq(back, k), 1);
		EVP_PKEY_free(back);
		pki__free_secret_str(pem);
		pem = pki__key_to_pem(k, "pkcs8");
		assert_non_null(strstr(pem, "BEGIN " PEM_PRIV));
		pki__free_secret_str(pem);
		EVP_PKEY_free(k);
	}
}

static void test_secrets_pki__serials(void **state)
{
	char out[80];
	struct verr err = {0};
	assert_int_equal(pki__serial_normalise("39:DD:2e", out, sizeof(out), &err), 0);
	assert_string_equal(out, "39-dd-2e");
	assert_int_equal(pki__serial_normalise("39-dd-2e", out, sizeof(out), &err), 0);
	assert_string_equal(out, "39-dd-2e");
	assert_int_equal(pki__serial_normalise("../etc", out, sizeof(out), &err), VERR_INVALID);
	assert_int_equal(pki__serial_normalise("3:dd", out, sizeof(out), &err), VERR_INVALID);
	ASN1_INTEGER *a = NULL, *b = NULL;
	assert_int_equal(pki__serial_random(&a, &err), 0);
	assert_int_equal(pki__serial_random(&b, &err), 0);
	assert_int_not_equal(ASN1_INTEGER_cmp(a, b), 0);
	assert_true(ASN1_STRING_length(a) >= 8); /* >= 64 bits */
	ASN1_INTEGER_free(a);
	ASN1_INTEGER_free(b);
}

/* ---- through the path table ---- */

static X509 *pem_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void test_secrets_pki__issue_sign_revoke(void **state)
{
	struct kvt t;
	kvt_open(&t, &pki_backend_ops, NULL);
	/* no CA yet */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "roles/web",
				json_pack("{s:s,s:b,s:s,s:s}", "allowed_domains", "example.com",
					  "allow_subdomains", 1, "max_ttl", "72h", "key_type", "ec")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web", json_pack("{s:s}", "common_name", "a.example.com")),
			 VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "root/generate/internal",
				json_pack("{s:s,s:s,s:s}", "common_name", "Example Root", "ttl",
					  "8760h", "key_type", "ec")),
			 0);
	assert_null(kvt_get(&t, "private_key")); /* internal: never returned */
	X509 *ca = pem_cert(kvt_str(&t, "certificate"));
	/* issue: a leaf signed by the root, with the key, 72h at most */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web",
				json_pack("{s:s,s:s}", "common_name", "api.example.com", "ttl", "1000h")),
			 0);
	assert_non_null(t.resp.warnings); /* capped to max_ttl */
	X509 *leaf = pem_cert(kvt_str(&t, "certificate"));
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(ca)), 1);
	assert_string_equal(kvt_str(&t, "private_key_type"), "ec");
	assert_non_null(strstr(kvt_str(&t, "private_key"), "EC " PEM_PRIV));
	int64_t exp = kvt_int(&t, "expiration");
	int64_t nb = pki__asn1_time_unix(X509_get0_notBefore(leaf));
	assert_true(exp - nb <= 72 * 3600 + 30 && exp - nb >= 72 * 3600);
	char serial[80];
	snprintf(serial, sizeof(serial), "%s", kvt_str(&t, "serial_number"));
	assert_non_null(strchr(serial, ':'));
	/* names outside the role: Vault's message */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web", json_pack("{s:s}", "common_name", "evil.org")),
			 VERR_INVALID);
	assert_string_equal(t.err.msg, "common name evil.org not allowed by this role");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/nope", json_pack("{s:s}", "common_name", "a.example.com")),
			 VERR_INVALID);
	assert_string_equal(t.err.msg, "unknown role: nope");
	/* sign a CSR: an RSA CSR is refused by an EC role */
	EVP_PKEY *rsa = NULL;
	struct verr err = {0};
	assert_int_equal(pki__keygen(&rsa, PKI_KEY_RSA, 2048, &err), 0);
	json_t *dns = json_array();
	struct pki_subject subj = {.cn = "svc.example.com", .dns = dns};
	X509_REQ *csr = NULL;
	assert_int_equal(pki__csr_build(&csr, &subj, rsa, false, &err), 0);
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_REQ(bio, csr);
	char *cp = NULL;
	long cl = BIO_get_mem_data(bio, &cp);
	char *csr_pem = strndup(cp, (size_t)cl);
	BIO_free(bio);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "sign/web", json_pack("{s:s}", "csr", csr_pem)),
			 VERR_INVALID);
	assert_string_equal(t.err.msg, "role requires keys of type ec");
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "roles/any",
				json_pack("{s:s,s:b,s:s,s:s}", "allowed_domains", "example.com",
					  "allow_subdomains", 1, "key_type", "any", "ttl", "1h")),
			 0);
	int src = kvt_do(&t, LOP_UPDATE, "sign/any", json_pack("{s:s}", "csr", csr_pem));
	if (src)
		print_error("sign: %s\n", t.err.msg);
	assert_int_equal(src, 0);
	X509 *signed_leaf = pem_cert(kvt_str(&t, "certificate"));
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(signed_leaf), X509_REQ_get_subject_name(csr)), 0);
	assert_null(kvt_get(&t, "private_key"));
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "sign/any", json_pack("{s:s}", "csr", "garbage")),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "certificate request could not be parsed"));
	/* revoke -> in the CRL */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "revoke", json_pack("{s:s}", "serial_number", serial)), 0);
	int64_t rt = kvt_int(&t, "revocation_time");
	assert_true(rt > 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "crl", NULL), 0);
	assert_true(t.resp.raw);
	const unsigned char *p = (const unsigned char *)t.resp.raw_body;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)t.resp.raw_len);
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	X509_REVOKED *rev = NULL;
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(leaf)), 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	X509_CRL_free(crl);
	/* revoking again keeps the first time; unknown serials are a 400 */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "revoke", json_pack("{s:s}", "serial_number", serial)), 0);
	assert_int_equal(kvt_int(&t, "revocation_time"), rt);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "revoke", json_pack("{s:s}", "serial_number", "01:02")),
			 VERR_INVALID);
	/* a restarted instance reads the CA and the CRL back from storage */
	kvt_reinit(&t, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web", json_pack("{s:s}", "common_name", "b.example.com")), 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "crl", NULL), 0);
	p = (const unsigned char *)t.resp.raw_body;
	crl = d2i_X509_CRL(NULL, &p, (long)t.resp.raw_len);
	assert_non_null(crl);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
	X509_CRL_free(crl);
	free(csr_pem);
	X509_REQ_free(csr);
	EVP_PKEY_free(rsa);
	json_decref(dns);
	X509_free(signed_leaf);
	X509_free(leaf);
	X509_free(ca);
	kvt_close(&t);
}

/* An EC issuer "CN=CA" with just what the CRL encoder reads. */
static EVP_PKEY *test_ca(struct pki_issuer *iss)
{
	struct verr err = {0};
	EVP_PKEY *k = NULL;
	assert_int_equal(pki__keygen(&k, PKI_KEY_EC, 256, &err), 0);
	X509_NAME *n = X509_NAME_new();
	X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC, (const unsigned char *)"CA", -1, -1, 0);
	*iss = (struct pki_issuer){.pkey = k, .md = pki__md_for(k, 0)};
	iss->name_der_len = i2d_X509_NAME(n, &iss->name_der);
	X509_NAME_free(n);
	return k;
}

/* A hand-written CRL with many entries parses with OpenSSL and stays sorted. */
static void test_secrets_pki__crl_encode_many(void **state)
{
	struct verr err = {0};
	struct pki_issuer iss;
	EVP_PKEY *k = test_ca(&iss);
	size_t cnt = 5000;
	struct pki_revoked *v = calloc(cnt, sizeof(*v));
	for (size_t i = 0; i < cnt; i++) {
		v[i].len = 20;
		for (int j = 0; j < 20; j++)
			v[i].serial[j] = (uint8_t)((i * 2654435761u) >> (j % 4 * 8)) ^ (uint8_t)j;
		v[i].serial[0] |= 0x80; /* high bit: the encoder must pad */
		v[i].time = 1700000000 + (int64_t)i;
	}
	pki__crl_sort(v, cnt);
	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(pki__crl_encode(&iss, v, cnt, 7, 1700000000, 1700003600, &der, &len, &err), 0);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, k), 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), (int)cnt);
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_int_equal(ASN1_INTEGER_get(num), 7);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	free(der);
	free(v);
	OPENSSL_free(iss.name_der);
	EVP_PKEY_free(k);
}

/* POST ocsp with a raw DER body, as the HTTP layer hands it over. */
static int ocsp_post(struct kvt *t, const char *path, const uint8_t *der, size_t len)
{
	logical_response_reset(&t->resp);
	memset(&t->err, 0, sizeof(t->err));
	json_t *data = json_object();
	struct logical_request req = {.op = LOP_UPDATE, .rel_path = path, .data = data,
				      .raw_body = der, .raw_body_len = len, .storage = &t->view,
				      .backend = t->inst, .mount_type = "pki"};
	int rc = framework_handle(t->ops->paths(t->inst), &req, &t->resp, &t->err);
	json_decref(data);
	return rc;
}

/* Ask for x (or a bare serial when x is NULL) and return the parsed reply. */
static OCSP_RESPONSE *ask(struct kvt *t, X509 *ca, X509 *x, long serial, OCSP_REQUEST **reqp)
{
	OCSP_CERTID *id;
	if (x) {
		id = OCSP_cert_to_id(NULL, x, ca);
	} else {
		ASN1_INTEGER *ai = ASN1_INTEGER_new();
		ASN1_INTEGER_set(ai, serial);
		id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), ai);
		ASN1_INTEGER_free(ai);
	}
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	assert_non_null(OCSP_request_add0_id(req, id));
	assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
	unsigned char *der = NULL;
	int n = i2d_OCSP_REQUEST(req, &der);
	assert_true(n > 0);
	assert_int_equal(ocsp_post(t, "ocsp", der, (size_t)n), 0);
	OPENSSL_free(der);
	assert_true(t->resp.raw);
	assert_string_equal(t->resp.raw_content_type, "application/ocsp-response");
	const unsigned char *p = (const unsigned char *)t->resp.raw_body;
	OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)t->resp.raw_len);
	assert_non_null(r);
	*reqp = req;
	return r;
}

/* The single status in r, after checking signature and nonce. */
static int status_of(OCSP_RESPONSE *r, OCSP_REQUEST *req, X509 *ca, int64_t *rev_time)
{
	assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_SUCCESSFUL);
	OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
	assert_non_null(bs);
	STACK_OF(X509) *signers = sk_X509_new_null();
	sk_X509_push(signers, ca);
	X509_STORE *st = X509_STORE_new();
	assert_int_equal(OCSP_basic_verify(bs, signers, st, OCSP_TRUSTOTHER), 1);
	X509_STORE_free(st);
	sk_X509_free(signers);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	OCSP_SINGLERESP *one = OCSP_resp_get0(bs, 0);
	int reason = 0;
	ASN1_GENERALIZEDTIME *rt = NULL, *tu = NULL, *nu = NULL;
	int st_ = OCSP_single_get0_status(one, &reason, &rt, &tu, &nu);
	assert_non_null(tu);
	assert_non_null(nu); /* ocsp_expiry 12h */
	assert_true(pki__asn1_time_unix(nu) - pki__asn1_time_unix(tu) == 12 * 3600);
	if (rev_time)
		*rev_time = rt ? pki__asn1_time_unix(rt) : 0;
	OCSP_BASICRESP_free(bs);
	return st_;
}

static void test_secrets_pki__ocsp_good_revoked_unknown(void **state)
{
	struct kvt t;
	kvt_open(&t, &pki_backend_ops, NULL);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "root/generate/internal",
				json_pack("{s:s,s:s,s:s}", "common_name", "Root", "ttl", "8760h",
					  "key_type", "ec")),
			 0);
	X509 *ca = pem_cert(kvt_str(&t, "certificate"));
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "roles/web",
				json_pack("{s:s,s:b,s:s}", "allowed_domains", "example.com",
					  "allow_subdomains", 1, "key_type", "ec")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web",
				json_pack("{s:s,s:s}", "common_name", "a.example.com", "ttl", "1h")),
			 0);
	X509 *leaf = pem_cert(kvt_str(&t, "certificate"));
	char serial[80];
	snprintf(serial, sizeof(serial), "%s", kvt_str(&t, "serial_number"));

	OCSP_REQUEST *req = NULL;
	OCSP_RESPONSE *r = ask(&t, ca, leaf, 0, &req);
	assert_int_equal(t.resp.status, 200);
	assert_int_equal(status_of(r, req, ca, NULL), V_OCSP_CERTSTATUS_GOOD);
	OCSP_RESPONSE_free(r);
	OCSP_REQUEST_free(req);

	assert_int_equal(kvt_do(&t, LOP_UPDATE, "revoke", json_pack("{s:s}", "serial_number", serial)), 0);
	int64_t when = kvt_int(&t, "revocation_time"), got = 0;
	r = ask(&t, ca, leaf, 0, &req);
	assert_int_equal(status_of(r, req, ca, &got), V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(got, when);
	OCSP_RESPONSE_free(r);
	OCSP_REQUEST_free(req);

	/* never issued here: unknown (not good) */
	r = ask(&t, ca, NULL, 0x1234567, &req);
	assert_int_equal(status_of(r, req, ca, NULL), V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_RESPONSE_free(r);
	OCSP_REQUEST_free(req);

	/* garbage: malformedRequest with HTTP 400, no crash */
	static const uint8_t junk[] = {0x30, 0x82, 0xff, 0xff, 0x01};
	assert_int_equal(ocsp_post(&t, "ocsp", junk, sizeof(junk)), 0);
	assert_int_equal(t.resp.status, 400);
	const unsigned char *p = (const unsigned char *)t.resp.raw_body;
	r = d2i_OCSP_RESPONSE(NULL, &p, (long)t.resp.raw_len);
	assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(r);
	assert_int_equal(ocsp_post(&t, "ocsp", NULL, 0), 0);
	assert_int_equal(t.resp.status, 400);

	/* ocsp_disable: unauthorized with HTTP 401 */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config/crl", json_pack("{s:b}", "ocsp_disable", 1)), 0);
	assert_int_equal(ocsp_post(&t, "ocsp", junk, sizeof(junk)), 0);
	assert_int_equal(t.resp.status, 401);
	p = (const unsigned char *)t.resp.raw_body;
	r = d2i_OCSP_RESPONSE(NULL, &p, (long)t.resp.raw_len);
	assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(r);

	X509_free(leaf);
	X509_free(ca);
	kvt_close(&t);
}

/* A delta CRL carries a critical Delta CRL Indicator with the base number;
 * a complete one the Freshest CRL URLs, as OpenSSL reads them. */
static void test_secrets_pki__crl_delta_extensions(void **state)
{
	struct verr err = {0};
	struct pki_issuer iss;
	EVP_PKEY *k = test_ca(&iss);
	struct pki_revoked v = {.serial = {0x01, 0x02}, .len = 2, .time = 1700000000};
	json_t *urls = json_pack("[s]", "http://127.0.0.1:8200/v1/pki/crl/delta");
	struct pki_crl_opts o[2] = {{.delta_base = 5}, {.delta_base = -1, .freshest = urls}};
	for (int i = 0; i < 2; i++) {
		uint8_t *der = NULL;
		size_t len = 0;
		assert_int_equal(pki__crl_encode_ext(&iss, &v, 1, 9, 1700000000, 1700003600, &o[i], &der,
						     &len, &err),
				 0);
		const unsigned char *p = der;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
		assert_non_null(crl);
		assert_int_equal(X509_CRL_verify(crl, k), 1);
		int crit = -1;
		ASN1_INTEGER *base = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
		STACK_OF(DIST_POINT) *dps = X509_CRL_get_ext_d2i(crl, NID_freshest_crl, NULL, NULL);
		if (i == 0) {
			assert_non_null(base);
			assert_int_equal(ASN1_INTEGER_get(base), 5);
			assert_int_equal(crit, 1);
			assert_null(dps);
		} else {
			assert_null(base);
			assert_non_null(dps);
			DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
			assert_int_equal(gn->type, GEN_URI);
			assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
					    "http://127.0.0.1:8200/v1/pki/crl/delta");
		}
		ASN1_INTEGER_free(base);
		sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
		X509_CRL_free(crl);
		free(der);
	}
	json_decref(urls);
	OPENSSL_free(iss.name_der);
	EVP_PKEY_free(k);
}

/* config/auto-tidy: the periodic hook removes expired certificates by
 * itself; tidy-status records the run; tidy-cancel with nothing running
 * warns (Vault). */
/* The EC private key encodings written by hand (keys.c) are OpenSSL's
 * own, byte for byte, on every curve; Ed25519 and RSA keep OpenSSL's. */
static void test_secrets_pki__ec_key_encoding_matches_openssl(void **state)
{
	struct verr err = {0};
	const int curves[] = {224, 256, 384, 521};
	for (int round = 0; round < 8; round++) {
		for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
			EVP_PKEY *k = NULL;
			assert_int_equal(pki__keygen(&k, PKI_KEY_EC, curves[i], &err), 0);
			BIO *bio = BIO_new(BIO_s_mem());
			assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL), 1);
			char *ref = NULL;
			long n = BIO_get_mem_data(bio, &ref);
			char *pem = pki__key_to_pem(k, "der");
			assert_non_null(pem);
			assert_int_equal(strlen(pem), (size_t)n);
			assert_memory_equal(pem, ref, (size_t)n);
			pki__free_secret_str(pem);
			BIO_free(bio);
			unsigned char *der = NULL;
			int dl = i2d_PrivateKey(k, &der);
			assert_true(dl > 0);
			char *want = pki__b64(der, (size_t)dl);
			char *got = pki__key_to_der_b64(k, "der");
			assert_non_null(got);
			assert_string_equal(got, want);
			pki__free_secret_str(got);
			free(want);
			OPENSSL_clear_free(der, (size_t)dl);
			EVP_PKEY_free(k);
		}
	}
}

/* A leaf's subjectPublicKeyInfo, written from the key's encoded point
 * (cert.c), decodes to the issued key and carries a signature the issuer's
 * key verifies, for EC curves and Ed25519 alike. */
static void test_secrets_pki__leaf_spki_is_the_key(void **state)
{
	struct verr err = {0};
	struct pki_issuer iss;
	EVP_PKEY *ca = test_ca(&iss);
	X509 *cax = NULL;
	json_t *none = json_array();
	struct pki_cert_params cp = {.subj = {.cn = "CA", .dns = none, .ips = none, .uris = none},
				     .not_before = 1700000000, .not_after = 1900000000,
				     .is_ca = true, .max_path_length = -1};
	cp.pubkey = ca;
	assert_int_equal(pki__cert_build(&cax, &cp, NULL, ca, &err), 0);
	iss.cert = cax;
	iss.skid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(cax));
	const struct {
		enum pki_key_type t;
		int bits;
	} gen[] = {{PKI_KEY_EC, 224}, {PKI_KEY_EC, 256}, {PKI_KEY_EC, 384}, {PKI_KEY_EC, 521},
		   {PKI_KEY_ED25519, 0}, {PKI_KEY_RSA, 2048}};
	for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
		EVP_PKEY *k = NULL;
		assert_int_equal(pki__keygen(&k, gen[i].t, gen[i].bits, &err), 0);
		struct pki_cert_params lp = {
			.subj = {.cn = "a.example.com", .dns = none, .ips = none, .uris = none},
			.pubkey = k, .not_before = 1700000000, .not_after = 1800000000,
			.max_path_length = -1, .server_flag = true};
		X509 *x = NULL;
		assert_int_equal(pki__cert_build(&x, &lp, &iss, NULL, &err), 0);
		unsigned char *der = NULL;
		int dl = i2d_X509(x, &der);
		assert_true(dl > 0);
		X509 *back = pki__x509_from_der(der, (size_t)dl);
		assert_non_null(back);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(back), k), 1);
		assert_int_equal(X509_verify(back, ca), 1);
		assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(back), X509_get0_subject_key_id(cax)), 0);
		X509_free(back);
		OPENSSL_free(der);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	json_decref(none);
	X509_free(cax);
	ASN1_OCTET_STRING_free(iss.skid);
	OPENSSL_free(iss.name_der);
	EVP_PKEY_free(ca);
}

/* An engine with an EC root "Root" and the role "web" (subdomains of
 * example.com, EC keys, 1s not_before_duration). */
static void open_root_and_web_role(struct kvt *t)
{
	kvt_open(t, &pki_backend_ops, NULL);
	assert_int_equal(kvt_do(t, LOP_UPDATE, "root/generate/internal",
				json_pack("{s:s,s:s,s:s}", "common_name", "Root", "ttl", "8760h",
					  "key_type", "ec")),
			 0);
	assert_int_equal(kvt_do(t, LOP_UPDATE, "roles/web",
				json_pack("{s:s,s:b,s:s,s:s}", "allowed_domains", "example.com",
					  "allow_subdomains", 1, "key_type", "ec",
					  "not_before_duration", "1s")),
			 0);
}

static void test_secrets_pki__auto_tidy(void **state)
{
	struct kvt t;
	open_root_and_web_role(&t);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config/auto-tidy", json_pack("{s:b}", "enabled", 1)),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "Auto-tidy enabled but no tidy operations were requested"));
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config/auto-tidy",
				json_pack("{s:b,s:b,s:s}", "enabled", 1, "tidy_cert_store", 1,
					  "safety_buffer", "0s")),
			 VERR_INVALID);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "config/auto-tidy",
				json_pack("{s:b,s:b,s:s,s:s}", "enabled", 1, "tidy_cert_store", 1,
					  "interval_duration", "0s", "safety_buffer", "1s")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "config/auto-tidy", NULL), 0);
	assert_int_equal(kvt_int(&t, "safety_buffer"), 1);
	assert_int_equal(kvt_int(&t, "interval_duration"), 0);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web",
				json_pack("{s:s,s:s}", "common_name", "a.example.com", "ttl", "1s")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_LIST, "certs/", NULL), 0);
	size_t before = json_array_size(kvt_get(&t, "keys"));
	assert_true(before >= 1);
	sleep(3); /* past notAfter + safety_buffer */
	struct verr err = {0};
	assert_int_equal(pki_backend_ops.periodic(t.inst, &err), 0);
	assert_int_equal(kvt_do(&t, LOP_LIST, "certs/", NULL), 0);
	assert_int_equal(json_array_size(kvt_get(&t, "keys")), before - 1);
	assert_int_equal(kvt_do(&t, LOP_READ, "tidy-status", NULL), 0);
	assert_string_equal(kvt_str(&t, "state"), "Finished");
	assert_int_equal(kvt_int(&t, "cert_store_deleted_count"), 1);
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "tidy-cancel", json_object()), 0);
	assert_non_null(t.resp.warnings);
	kvt_close(&t);
}

/* A physical that forwards to another and counts the operations on the
 * engine's certs/ and revoked/ keys. */
struct counting_phys {
	struct physical base;
	struct physical *inner;
	int cert_ops;
};

static bool cert_key(const char *key)
{
	return strstr(key, "/certs/") || strstr(key, "/revoked/");
}

static int cp_get(struct physical *p, const char *key, uint8_t **out, size_t *len, struct verr *err)
{
	struct counting_phys *c = (struct counting_phys *)p;
	c->cert_ops += cert_key(key);
	return physical_get(c->inner, key, out, len, err);
}

static int cp_put(struct physical *p, const char *key, const uint8_t *val, size_t len,
		  struct verr *err)
{
	struct counting_phys *c = (struct counting_phys *)p;
	c->cert_ops += cert_key(key);
	return physical_put(c->inner, key, val, len, err);
}

static int cp_del(struct physical *p, const char *key, struct verr *err)
{
	struct counting_phys *c = (struct counting_phys *)p;
	c->cert_ops += cert_key(key);
	return physical_delete(c->inner, key, err);
}

static int cp_list(struct physical *p, const char *prefix, char ***out, size_t *n, struct verr *err)
{
	struct counting_phys *c = (struct counting_phys *)p;
	c->cert_ops += cert_key(prefix);
	return physical_list(c->inner, prefix, out, n, err);
}

static void cp_close(struct physical *p)
{
	(void)p;
}

static const struct physical_ops counting_ops = {
	.version = PHYSICAL_OPS_VERSION, .name = "counting", .get = cp_get, .put = cp_put,
	.del = cp_del, .list = cp_list, .close = cp_close,
};

/* Mounting (init, as at unseal and on a failover) reads the issuers, keys
 * and configuration, and not one certificate or revocation, however many
 * are stored; the first CRL read is what reads the revocations. */
static void test_secrets_pki__mount_reads_no_certificates(void **state)
{
	struct kvt t;
	open_root_and_web_role(&t);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web",
					json_pack("{s:s,s:s}", "common_name", "a.example.com", "ttl", "1h")),
				 0);
		if (i % 10 == 0)
			assert_int_equal(kvt_do(&t, LOP_UPDATE, "revoke",
						json_pack("{s:s}", "serial_number",
							  kvt_str(&t, "serial_number"))),
					 0);
	}
	struct counting_phys cp = {.base = {.ops = &counting_ops, .max_entry_size = t.phys->max_entry_size},
				   .inner = t.phys};
	storage_view_init(&t.view, &cp.base, "logical/uuid-1/");
	kvt_reinit(&t, NULL);
	assert_int_equal(cp.cert_ops, 0);
	/* the engine serves from what it read: an issue writes its one
	 * certificate and reads none */
	assert_int_equal(kvt_do(&t, LOP_UPDATE, "issue/web",
				json_pack("{s:s,s:s}", "common_name", "b.example.com", "ttl", "1h")),
			 0);
	assert_int_equal(kvt_do(&t, LOP_READ, "cert/ca", NULL), 0);
	assert_int_equal(cp.cert_ops, 1);
	/* the counter sees the engine's reads: the CRL reads the revocations */
	assert_int_equal(kvt_do(&t, LOP_READ, "crl/rotate", NULL), 0);
	assert_true(cp.cert_ops > 0);
	kvt_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secrets_pki__names_subdomains),
		cmocka_unit_test(test_secrets_pki__names_bare_glob_localhost_any),
		cmocka_unit_test(test_secrets_pki__ttl_capping),
		cmocka_unit_test(test_secrets_pki__key_types),
		cmocka_unit_test(test_secrets_pki__serials),
		cmocka_unit_test(test_secrets_pki__issue_sign_revoke),
		cmocka_unit_test(test_secrets_pki__crl_encode_many),
		cmocka_unit_test(test_secrets_pki__ocsp_good_revoked_unknown),
		cmocka_unit_test(test_secrets_pki__crl_delta_extensions),
		cmocka_unit_test(test_secrets_pki__auto_tidy),
		cmocka_unit_test(test_secrets_pki__ec_key_encoding_matches_openssl),
		cmocka_unit_test(test_secrets_pki__leaf_spki_is_the_key),
		cmocka_unit_test(test_secrets_pki__mount_reads_no_certificates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
