/*
 * jwt.c - compact JWS decoding, signature verification with OpenSSL and
 * registered-claim checks (see jwt.h for the contract).
 *
 * Why the algorithm is pinned to the key: a verifier that lets the token's
 * "alg" pick the verification routine can be tricked into checking an
 * HMAC keyed with the RSA public key (which the attacker knows). Here the key
 * type decides which algorithms are even considered, and HMAC/"none" are
 * refused at parse time, so that path does not exist.
 */
#include "util/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct jwt_key {
	EVP_PKEY *pkey;
	bool is_ec;
	int ec_bits; /* 256, 384 or 521 */
};

/* ---- base64url (RFC 4648 section 5, no padding, as JWS requires) ---- */

static int b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decode n characters; *out is malloc'd (NUL-terminated for convenience).
 * Rejects padding, foreign characters, an impossible length (n % 4 == 1)
 * and non-zero trailing bits (so each value has one encoding). */
static int b64url_decode(unsigned char **out, size_t *out_len, const char *in, size_t n)
{
	*out = NULL;
	*out_len = 0;
	if (n % 4 == 1)
		return -1;
	unsigned char *buf = malloc(n / 4 * 3 + 3 + 1);
	if (!buf)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)in[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) { /* leftover bits must be zero */
		free(buf);
		return -1;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return 0;
}

/* ---- keys ---- */

static int ec_bits_of(EVP_PKEY *pkey)
{
	char group[64] = "";
	size_t glen = 0;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    &glen))
		return 0;
	if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
		return 256;
	if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
		return 384;
	if (!strcmp(group, "secp521r1") || !strcmp(group, "P-521"))
		return 521;
	return 0;
}

static EVP_PKEY *pem_public_key(const char *pem, size_t len)
{
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL,
							      EVP_PKEY_PUBLIC_KEY, NULL, NULL);
	if (dctx) {
		const unsigned char *p = (const unsigned char *)pem;
		size_t left = len;
		if (!OSSL_DECODER_from_data(dctx, &p, &left))
			pkey = NULL;
		OSSL_DECODER_CTX_free(dctx);
	}
	if (!pkey) { /* a certificate: use its public key */
		BIO *bio = BIO_new_mem_buf(pem, (int)len);
		X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		if (x)
			pkey = X509_get_pubkey(x);
		X509_free(x);
		BIO_free(bio);
	}
	ERR_clear_error();
	return pkey;
}

int jwt_key_from_pem(struct jwt_key **out, const char *pem, size_t len, struct verr *err)
{
	*out = NULL;
	if (!pem || len == 0 || len > INT32_MAX)
		return verr_set(err, VERR_INVALID, "data does not contain any valid RSA or ECDSA public keys");
	EVP_PKEY *pkey = pem_public_key(pem, len);
	if (!pkey)
		return verr_set(err, VERR_INVALID, "data does not contain any valid RSA or ECDSA public keys");
	int rc = 0;
	struct jwt_key *k = calloc(1, sizeof(*k));
	if (!k) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < 2048) {
			rc = verr_set(err, VERR_INVALID, "RSA public key is shorter than 2048 bits");
			goto out;
		}
		break;
	case EVP_PKEY_EC:
		k->is_ec = true;
		k->ec_bits = ec_bits_of(pkey);
		if (!k->ec_bits) {
			rc = verr_set(err, VERR_INVALID, "EC public key is not on P-256, P-384 or P-521");
			goto out;
		}
		break;
	default:
		rc = verr_set(err, VERR_INVALID, "data does not contain any valid RSA or ECDSA public keys");
		goto out;
	}
	k->pkey = pkey;
	pkey = NULL; /* transferred */
	*out = k;
	k = NULL; /* transferred */
out:
	EVP_PKEY_free(pkey);
	free(k);
	return rc;
}

void jwt_key_free(struct jwt_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *jwt_key_type(const struct jwt_key *k)
{
	return k->is_ec ? "EC" : "RSA";
}

/* ---- algorithms ---- */

struct alg_def {
	const char *name;
	bool ec;
	int ec_bits; /* EC: the only curve this algorithm may use */
	const char *md;
};

static const struct alg_def algs[] = {
	{"RS256", false, 0, "SHA256"},
	{"RS384", false, 0, "SHA384"},
	{"RS512", false, 0, "SHA512"},
	{"ES256", true, 256, "SHA256"},
	{"ES384", true, 384, "SHA384"},
	{"ES512", true, 521, "SHA512"},
	{NULL, false, 0, NULL},
};

static const struct alg_def *alg_find(const char *name)
{
	for (const struct alg_def *a = algs; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* ---- parse ---- */

static int decode_object(json_t **out, const char *b64, size_t n)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	*out = NULL;
	if (b64url_decode(&raw, &len, b64, n))
		return -1;
	json_error_t je;
	/* duplicate member names are a known JWT parser-differential trick */
	json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &je);
	free(raw);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	*out = j;
	return 0;
}

void jwt_free(struct jwt *t)
{
	if (!t)
		return;
	json_decref(t->header);
	json_decref(t->claims);
	free(t->signing_input);
	free(t->sig);
	free(t);
}

int jwt_parse(struct jwt **out, const char *token, struct verr *err)
{
	*out = NULL;
	if (!token || !*token)
		return verr_set(err, VERR_INVALID, "token is empty");
	size_t len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN)
		return verr_set(err, VERR_INVALID, "token is too long");
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return verr_set(err, VERR_INVALID, "malformed token: expected three dot-separated parts");
	int rc = 0;
	struct jwt *t = calloc(1, sizeof(*t));
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (decode_object(&t->header, token, (size_t)(d1 - token))) {
		rc = verr_set(err, VERR_INVALID, "malformed token: header is not base64url-encoded JSON object");
		goto out;
	}
	if (decode_object(&t->claims, d1 + 1, (size_t)(d2 - d1 - 1))) {
		rc = verr_set(err, VERR_INVALID, "malformed token: payload is not a base64url-encoded JSON object");
		goto out;
	}
	if (b64url_decode(&t->sig, &t->sig_len, d2 + 1, len - (size_t)(d2 + 1 - token))) {
		rc = verr_set(err, VERR_INVALID, "malformed token: signature is not base64url");
		goto out;
	}
	t->alg = json_string_value(json_object_get(t->header, "alg"));
	if (!t->alg) {
		rc = verr_set(err, VERR_INVALID, "malformed token: missing \"alg\" header");
		goto out;
	}
	if (!alg_find(t->alg)) {
		/* includes "none" and HS256/384/512 */
		rc = verr_set(err, VERR_INVALID, "unsupported token signing algorithm");
		goto out;
	}
	if (json_object_get(t->header, "crit")) {
		rc = verr_set(err, VERR_INVALID, "unsupported critical token header");
		goto out;
	}
	t->signing_input = strndup(token, (size_t)(d2 - token));
	if (!t->signing_input) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	*out = t;
	t = NULL; /* transferred */
out:
	jwt_free(t);
	return rc;
}

/* ---- verify ---- */

/* JWS ECDSA signatures are r||s, each the curve's byte size; OpenSSL wants
 * DER. */
static int ecdsa_raw_to_der(unsigned char **der, int *der_len, const unsigned char *sig,
			    size_t sig_len, int ec_bits)
{
	size_t n = ((size_t)ec_bits + 7) / 8;
	*der = NULL;
	if (sig_len != 2 * n)
		return -1;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)n, NULL);
	BIGNUM *s = BN_bin2bn(sig + n, (int)n, NULL);
	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return -1;
	}
	*der_len = i2d_ECDSA_SIG(es, der);
	ECDSA_SIG_free(es);
	return *der_len > 0 ? 0 : -1;
}

static bool verify_one(const struct jwt *t, const struct alg_def *a, const struct jwt_key *k)
{
	if (k->is_ec != a->ec || (a->ec && k->ec_bits != a->ec_bits))
		return false; /* the key decides which algorithms exist */
	const unsigned char *sig = t->sig;
	size_t sig_len = t->sig_len;
	unsigned char *der = NULL;
	if (a->ec) {
		int dl = 0;
		if (ecdsa_raw_to_der(&der, &dl, t->sig, t->sig_len, a->ec_bits))
			return false;
		sig = der;
		sig_len = (size_t)dl;
	}
	bool ok = false;
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (mctx && EVP_DigestVerifyInit_ex(mctx, &pctx, a->md, NULL, NULL, k->pkey, NULL) == 1) {
		if (!a->ec)
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
		ok = EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)t->signing_input,
				      strlen(t->signing_input)) == 1;
	}
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

int jwt_verify(const struct jwt *t, struct jwt_key *const *keys, size_t n, struct verr *err)
{
	const struct alg_def *a = t && t->alg ? alg_find(t->alg) : NULL;
	if (!a)
		return verr_set(err, VERR_DENIED, "unsupported token signing algorithm");
	bool any_type = false;
	for (size_t i = 0; i < n; i++) {
		if (!keys[i])
			continue;
		if (keys[i]->is_ec == a->ec)
			any_type = true;
		if (verify_one(t, a, keys[i]))
			return 0;
	}
	if (!any_type)
		return verr_set(err, VERR_DENIED,
				"error verifying token signature: no %s key configured for algorithm %s",
				a->ec ? "EC" : "RSA", a->name);
	return verr_set(err, VERR_DENIED, "error verifying token signature: signature is invalid");
}

/* ---- claims ---- */

/* 1: present and numeric (*out set), 0: absent, -1: present but not a number */
static int num_claim(const json_t *claims, const char *name, double *out)
{
	const json_t *v = json_object_get(claims, name);
	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

static bool aud_contains(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	if (json_is_array(aud)) {
		size_t i;
		json_t *e;
		json_array_foreach(aud, i, e)
			if (json_is_string(e) && !strcmp(json_string_value(e), want))
				return true;
	}
	return false;
}

int jwt_check_claims(const struct jwt *t, const struct jwt_expect *e, struct verr *err)
{
	double now = (double)(e->now ? e->now : (int64_t)time(NULL));
	double leeway = (double)(e->leeway > 0 ? e->leeway : 0);
	double v;
	int r = num_claim(t->claims, "exp", &v);
	if (r < 0)
		return verr_set(err, VERR_DENIED, "malformed token: \"exp\" is not a number");
	if (r == 0 && e->require_exp)
		return verr_set(err, VERR_DENIED, "token has no expiry (\"exp\")");
	if (r == 1 && now >= v + leeway)
		return verr_set(err, VERR_DENIED, "token is expired (exp)");
	r = num_claim(t->claims, "nbf", &v);
	if (r < 0)
		return verr_set(err, VERR_DENIED, "malformed token: \"nbf\" is not a number");
	if (r == 1 && v > now + leeway)
		return verr_set(err, VERR_DENIED, "token is not valid yet (nbf)");
	r = num_claim(t->claims, "iat", &v);
	if (r < 0)
		return verr_set(err, VERR_DENIED, "malformed token: \"iat\" is not a number");
	if (r == 1 && v > now + leeway)
		return verr_set(err, VERR_DENIED, "token issued in the future (iat)");
	if (e->issuer) {
		const char *iss = jwt_claim_str(t, "iss");
		if (!iss || strcmp(iss, e->issuer))
			return verr_set(err, VERR_DENIED, "invalid issuer (iss) claim");
	}
	if (e->audience && !aud_contains(json_object_get(t->claims, "aud"), e->audience))
		return verr_set(err, VERR_DENIED, "invalid audience (aud) claim");
	return 0;
}

const char *jwt_claim_str(const struct jwt *t, const char *name)
{
	return t ? json_string_value(json_object_get(t->claims, name)) : NULL;
}
