/*
 * x509gen.c - see x509gen.h. OpenSSL 3; keys are written through a
 * secure-heap BIO and copied into secmem.
 */
#include "util/x509gen.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/secmem.h"

static char *bio_take(BIO *b, size_t *len, bool secret)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		return NULL;
	char *out = secret ? secmem_alloc((size_t)n + 1) : malloc((size_t)n + 1);
	if (!out)
		return NULL;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	if (len)
		*len = (size_t)n;
	return out;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -1;
	int ok = X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

/* letters, digits, '-' and '.': usable as a SAN dNSName and in a conf value */
static bool dns_safe(const char *s)
{
	if (!*s || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

/* serial, version, subject CN, validity, public key */
static int fill(X509 *x, const char *cn, long days, EVP_PKEY *pub)
{
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return -1;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	int ok = ai && X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	if (!ok)
		return -1;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), days * 24 * 3600) || !X509_set_pubkey(x, pub))
		return -1;
	return 0;
}

static char *cert_pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = b && PEM_write_bio_X509(b, x) ? bio_take(b, NULL, false) : NULL;
	BIO_free(b);
	return out;
}

static char *key_pem_of(EVP_PKEY *pk, size_t *len)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *out = b && PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
			    ? bio_take(b, len, true)
			    : NULL;
	BIO_free(b);
	return out;
}

int x509gen_ca(const char *cn, const char *san, long days, char **cert_pem, char **key_pem,
	       size_t *key_len)
{
	*cert_pem = *key_pem = NULL;
	*key_len = 0;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = -1;
	char sanv[96];
	if (san)
		snprintf(sanv, sizeof(sanv), "DNS:%s", san);
	if (!pk || !x || fill(x, cn, days, pk) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(x, x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
	    add_ext(x, x, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    (san && (!dns_safe(san) || add_ext(x, x, NID_subject_alt_name, sanv))) ||
	    !X509_sign(x, pk, EVP_sha256()))
		goto out;
	*cert_pem = cert_pem_of(x);
	*key_pem = key_pem_of(pk, key_len);
	if (*cert_pem && *key_pem)
		rc = 0;
out:
	if (rc) {
		free(*cert_pem);
		if (*key_pem)
			secmem_free(*key_pem, *key_len + 1);
		*cert_pem = *key_pem = NULL;
		*key_len = 0;
	}
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

int x509gen_keypair(char **key_pem, size_t *key_len, char **pub_pem)
{
	*key_pem = *pub_pem = NULL;
	*key_len = 0;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	BIO *b = BIO_new(BIO_s_mem());
	int rc = -1;
	if (pk && b && PEM_write_bio_PUBKEY(b, pk)) {
		*pub_pem = bio_take(b, NULL, false);
		*key_pem = key_pem_of(pk, key_len);
		rc = *pub_pem && *key_pem ? 0 : -1;
	}
	if (rc) {
		free(*pub_pem);
		if (*key_pem)
			secmem_free(*key_pem, *key_len + 1);
		*key_pem = *pub_pem = NULL;
		*key_len = 0;
	}
	BIO_free(b);
	EVP_PKEY_free(pk);
	return rc;
}

static X509 *read_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static bool is_p256(EVP_PKEY *pk)
{
	char group[32] = {0};
	size_t gl = 0;
	return EVP_PKEY_is_a(pk, "EC") &&
	       EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), &gl) &&
	       !strcmp(group, "prime256v1");
}

int x509gen_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
		  const char *cn, long days, char **cert_pem)
{
	*cert_pem = NULL;
	X509 *ca = read_cert(ca_cert_pem);
	BIO *kb = BIO_new_mem_buf(ca_key_pem, -1);
	EVP_PKEY *cak = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	BIO *pb = BIO_new_mem_buf(pub_pem, -1);
	EVP_PKEY *pub = pb ? PEM_read_bio_PUBKEY(pb, NULL, NULL, NULL) : NULL;
	X509 *x = X509_new();
	int rc = -1;
	char sanv[96];
	snprintf(sanv, sizeof(sanv), "DNS:%s", cn);
	if (!ca || !cak || !pub || !x || !is_p256(pub) || !X509_check_private_key(ca, cak) ||
	    fill(x, cn, days, pub) || !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ||
	    (dns_safe(cn) && add_ext(x, ca, NID_subject_alt_name, sanv)) ||
	    !X509_sign(x, cak, EVP_sha256()))
		goto out;
	*cert_pem = cert_pem_of(x);
	rc = *cert_pem ? 0 : -1;
out:
	X509_free(x);
	EVP_PKEY_free(pub);
	BIO_free(pb);
	EVP_PKEY_free(cak);
	BIO_free(kb);
	X509_free(ca);
	return rc;
}

int x509gen_cn(const char *cert_pem, char *out, size_t outsz)
{
	X509 *x = read_cert(cert_pem);
	int n = x ? X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
					      (int)outsz)
		  : -1;
	X509_free(x);
	return n > 0 && (size_t)n < outsz ? 0 : -1;
}
