/*
 * keys.c - key pairs for the PKI engine: the key types Vault's PKI accepts
 * (rsa 2048/3072/4096, ec P-256/P-384/P-521, ed25519), generation, and the
 * private-key encodings the API returns (private_key_format der | pem |
 * pkcs8). Every string that held private key material is wiped before it
 * is freed (pki__free_secret_str).
 */
#include "secrets/pki/pki_int.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"
#include "util/buf.h"

enum pki_key_type pki__key_type_parse(const char *s)
{
	if (!s || !*s || !strcmp(s, "rsa"))
		return PKI_KEY_RSA;
	if (!strcmp(s, "ec"))
		return PKI_KEY_EC;
	if (!strcmp(s, "ed25519"))
		return PKI_KEY_ED25519;
	if (!strcmp(s, "any"))
		return PKI_KEY_ANY;
	return 0;
}

const char *pki__key_type_name(enum pki_key_type t)
{
	switch (t) {
	case PKI_KEY_RSA:
		return "rsa";
	case PKI_KEY_EC:
		return "ec";
	case PKI_KEY_ED25519:
		return "ed25519";
	case PKI_KEY_ANY:
		return "any";
	}
	return "unknown";
}

int pki__key_bits_check(enum pki_key_type t, int *bits, struct verr *err)
{
	int b = *bits;
	switch (t) {
	case PKI_KEY_RSA:
		if (b == 0)
			b = 2048;
		if (b != 2048 && b != 3072 && b != 4096 && b != 8192)
			return verr_set(err, VERR_INVALID,
					"unsupported bit length for RSA key: %d", b);
		break;
	case PKI_KEY_EC:
		if (b == 0)
			b = 256;
		if (b != 224 && b != 256 && b != 384 && b != 521)
			return verr_set(err, VERR_INVALID,
					"unsupported bit length for EC key: %d", b);
		break;
	case PKI_KEY_ED25519:
	case PKI_KEY_ANY:
		b = 0;
		break;
	default:
		return verr_set(err, VERR_INVALID, "unknown key type");
	}
	*bits = b;
	return 0;
}

static const char *curve_name(int bits)
{
	switch (bits) {
	case 224:
		return "P-224";
	case 384:
		return "P-384";
	case 521:
		return "P-521";
	default:
		return "P-256";
	}
}

/* One parameter template per curve, made once: EVP_PKEY_CTX_new_from_pkey
 * on a template skips the name lookup and group setup per key. */
static pthread_once_t tmpl_once = PTHREAD_ONCE_INIT;
static EVP_PKEY *ec_tmpl[4]; /* 224, 256, 384, 521 */

static void tmpl_init(void)
{
	static const int sizes[4] = {224, 256, 384, 521};
	for (int i = 0; i < 4; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		if (c && EVP_PKEY_paramgen_init(c) > 0 &&
		    EVP_PKEY_CTX_set_group_name(c, curve_name(sizes[i])) > 0)
			EVP_PKEY_paramgen(c, &ec_tmpl[i]);
		EVP_PKEY_CTX_free(c);
	}
}

static EVP_PKEY *ec_template(int bits)
{
	pthread_once(&tmpl_once, tmpl_init);
	switch (bits) {
	case 224:
		return ec_tmpl[0];
	case 384:
		return ec_tmpl[2];
	case 521:
		return ec_tmpl[3];
	default:
		return ec_tmpl[1];
	}
}

int pki__keygen(EVP_PKEY **out, enum pki_key_type t, int bits, struct verr *err)
{
	*out = NULL;
	EVP_PKEY_CTX *c = NULL;
	int ok = 0;
	if (t == PKI_KEY_EC) {
		EVP_PKEY *tmpl = ec_template(bits);
		c = tmpl ? EVP_PKEY_CTX_new_from_pkey(NULL, tmpl, NULL) : NULL;
		ok = c && EVP_PKEY_keygen_init(c) > 0 && EVP_PKEY_keygen(c, out) > 0;
	} else if (t == PKI_KEY_RSA) {
		c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		ok = c && EVP_PKEY_keygen_init(c) > 0 &&
		     EVP_PKEY_CTX_set_rsa_keygen_bits(c, bits) > 0 && EVP_PKEY_keygen(c, out) > 0;
	} else if (t == PKI_KEY_ED25519) {
		c = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
		ok = c && EVP_PKEY_keygen_init(c) > 0 && EVP_PKEY_keygen(c, out) > 0;
	} else {
		return verr_set(err, VERR_INVALID, "a key type must be chosen to generate a key");
	}
	EVP_PKEY_CTX_free(c);
	if (!ok) {
		EVP_PKEY_free(*out);
		*out = NULL;
		return verr_set(err, VERR_INTERNAL, "key generation failed");
	}
	return 0;
}

void pki__key_info(const EVP_PKEY *pk, enum pki_key_type *type, int *bits)
{
	*type = 0;
	*bits = 0;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		*type = PKI_KEY_RSA;
		*bits = EVP_PKEY_get_bits(pk);
		break;
	case EVP_PKEY_EC:
		*type = PKI_KEY_EC;
		*bits = EVP_PKEY_get_bits(pk);
		break;
	case EVP_PKEY_ED25519:
		*type = PKI_KEY_ED25519;
		break;
	default:
		break;
	}
}

/* Read a memory BIO into a malloc'd NUL-terminated string, wiping the BIO's
 * buffer (it may hold a private key). */
static char *bio_take(BIO *bio)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	if (n > 0)
		OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	return s;
}

static bool want_pkcs8(EVP_PKEY *pk, const char *fmt)
{
	return (fmt && !strcmp(fmt, "pkcs8")) || EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519;
}

/*
 * The SEC 1 ECPrivateKey (RFC 5915) DER of an EC key: what
 * PEM_write_bio_PrivateKey_traditional and i2d_PrivateKey write, byte for
 * byte (version 1, the private scalar padded to the order's length, the
 * named curve as [0], the public point as [1]). Written here because
 * OpenSSL 3.0's traditional encoding exports the provider key into a legacy
 * EC_KEY with a new EC_GROUP per call: 30 % of an EC issue's CPU time
 * (docs/performance.md). `out` is a secret buffer. false when pk is not a
 * named-curve EC key or a step fails (the caller then asks OpenSSL).
 */
static bool ec_sec1_der(EVP_PKEY *pk, struct buf *out)
{
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC)
		return false;
	char group[64];
	unsigned char oid[32], pub[160], priv[66], *op = oid;
	size_t publen = 0;
	int olen = (EVP_PKEY_get_bits(pk) + 7) / 8, oidlen = 0, nid = NID_undef;
	BIGNUM *d = NULL;
	bool ok = false;
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   NULL) &&
	    (nid = OBJ_sn2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	ASN1_OBJECT *obj = nid == NID_undef ? NULL : OBJ_nid2obj(nid);
	if (!obj || i2d_ASN1_OBJECT(obj, NULL) > (int)sizeof(oid) ||
	    (oidlen = i2d_ASN1_OBJECT(obj, &op)) <= 0 || olen <= 0 || olen > (int)sizeof(priv) ||
	    !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
					     sizeof(pub), &publen) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d) ||
	    BN_bn2binpad(d, priv, olen) != olen)
		goto out;
	struct buf c, bits;
	buf_init_secret(&c, 256);
	buf_init(&bits, publen + 8);
	buf_char(&bits, 0x03); /* BIT STRING, no unused bits */
	pki__der_len(&bits, publen + 1);
	buf_char(&bits, 0);
	buf_add(&bits, pub, publen);
	static const uint8_t version[3] = {0x02, 0x01, 0x01};
	buf_add(&c, version, sizeof(version));
	pki__der_tlv(&c, 0x04, priv, (size_t)olen);
	pki__der_tlv(&c, 0xa0, oid, (size_t)oidlen);
	pki__der_tlv(&c, 0xa1, bits.p, bits.len);
	pki__der_tlv(out, 0x30, c.p, c.len);
	ok = !c.failed && !bits.failed && !out->failed;
	buf_free(&c);
	buf_free(&bits);
out:
	BN_clear_free(d);
	OPENSSL_cleanse(priv, sizeof(priv));
	ERR_clear_error();
	return ok;
}

/* PEM text of a DER private key, as PEM_write_bio writes it (64-column
 * base64 lines, a final newline), built in a secret buffer. */
static char *secret_pem(const char *label, const uint8_t *der, size_t n)
{
	struct buf o;
	buf_init_secret(&o, 64 + n * 4 / 3 + n / 48 + 2 * strlen(label));
	buf_printf(&o, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < n; i += 48) {
		char line[66];
		size_t w = b64_encode_to(line, der + i, n - i < 48 ? n - i : 48, false);
		line[w++] = '\n';
		buf_add(&o, line, w);
		OPENSSL_cleanse(line, sizeof(line));
	}
	buf_printf(&o, "-----END %s-----\n", label);
	return buf_take(&o, NULL);
}

char *pki__key_to_pem(EVP_PKEY *pk, const char *fmt)
{
	if (!want_pkcs8(pk, fmt)) {
		struct buf der;
		buf_init_secret(&der, 256);
		if (ec_sec1_der(pk, &der)) {
			char *s = secret_pem("EC PRIVATE KEY", (const uint8_t *)der.p, der.len);
			buf_free(&der);
			return s;
		}
		buf_free(&der);
	}
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return NULL;
	int ok = want_pkcs8(pk, fmt)
			 ? PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL)
			 : PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0, NULL, NULL);
	if (!ok) {
		BIO_free(bio);
		return NULL;
	}
	return bio_take(bio);
}

char *pki__key_to_der_b64(EVP_PKEY *pk, const char *fmt)
{
	unsigned char *der = NULL;
	int n;
	if (want_pkcs8(pk, fmt)) {
		PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
		n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
		PKCS8_PRIV_KEY_INFO_free(p8);
	} else {
		struct buf sec1;
		buf_init_secret(&sec1, 256);
		if (ec_sec1_der(pk, &sec1)) {
			char *s = pki__b64((const uint8_t *)sec1.p, sec1.len);
			buf_free(&sec1);
			return s;
		}
		buf_free(&sec1);
		n = i2d_PrivateKey(pk, &der);
	}
	if (n <= 0)
		return NULL;
	char *s = pki__b64(der, (size_t)n);
	OPENSSL_clear_free(der, (size_t)n);
	return s;
}

EVP_PKEY *pki__key_from_pem(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pk;
}

void pki__free_secret_str(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}
