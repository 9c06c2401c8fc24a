/*
 * tests/unit/util/jwt.c - JWT decoding, signature verification and claim
 * checks (src/util/jwt.c). Keys are generated at test time; tokens are
 * signed here with OpenSSL, including the forgeries a verifier must refuse
 * (alg none, HS256 keyed with the RSA public key, tampered payloads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/jwt.h"

static EVP_PKEY *rsa_key, *rsa_key2, *ec_key, *ec384_key;
static char *rsa_pem, *rsa2_pem, *ec_pem, *ec384_pem;

static char *b64url(const unsigned char *in, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = al[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = al[v & 63];
	}
	out[o] = '\0';
	return out;
}

static char *pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, k);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

/* sign "h.p" with alg; key NULL + alg "none" gives an empty signature;
 * HS256 uses `secret` */
static char *make_token(const char *alg, EVP_PKEY *key, const char *secret, const char *header_json,
			const char *claims_json)
{
	char hbuf[256];
	if (!header_json) {
		snprintf(hbuf, sizeof(hbuf), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
		header_json = hbuf;
	}
	char *h = b64url((const unsigned char *)header_json, strlen(header_json));
	char *p = b64url((const unsigned char *)claims_json, strlen(claims_json));
	size_t in_len = strlen(h) + strlen(p) + 2;
	char *input = malloc(in_len);
	snprintf(input, in_len, "%s.%s", h, p);
	unsigned char sig[1024];
	size_t sig_len = 0;
	if (!strcmp(alg, "HS256")) {
		unsigned int l = 0;
		HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)input, strlen(input), sig, &l);
		sig_len = l;
	} else if (key) {
		const char *md = strstr(alg, "384") ? "SHA384" : strstr(alg, "512") ? "SHA512" : "SHA256";
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		unsigned char der[1024];
		size_t dl = sizeof(der);
		assert_int_equal(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, key, NULL), 1);
		assert_int_equal(EVP_DigestSign(m, der, &dl, (unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(m);
		if (alg[0] == 'E') {
			size_t n = EVP_PKEY_get_bits(key) == 384 ? 48 : 32;
			const unsigned char *dp = der;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)n);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + n, (int)n);
			ECDSA_SIG_free(es);
			sig_len = 2 * n;
		} else {
			memcpy(sig, der, dl);
			sig_len = dl;
		}
	}
	char *s = b64url(sig, sig_len);
	size_t tl = strlen(input) + strlen(s) + 2;
	char *tok = malloc(tl);
	snprintf(tok, tl, "%s.%s", input, s);
	free(h);
	free(p);
	free(input);
	free(s);
	return tok;
}

static char *claims_fmt(const char *extra)
{
	static char buf[1024];
	long now = (long)time(NULL);
	snprintf(buf, sizeof(buf),
		 "{\"iss\":\"kubernetes/serviceaccount\",\"sub\":\"system:serviceaccount:default:app\","
		 "\"aud\":[\"vault\",\"other\"],\"iat\":%ld,\"exp\":%ld%s%s}",
		 now - 10, now + 600, extra ? "," : "", extra ? extra : "");
	return buf;
}

static int setup(void **state)
{
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec384_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	rsa_pem = pubkey_pem(rsa_key);
	rsa2_pem = pubkey_pem(rsa_key2);
	ec_pem = pubkey_pem(ec_key);
	ec384_pem = pubkey_pem(ec384_key);
	return rsa_key && ec_key && ec384_key ? 0 : -1;
}

static int teardown(void **state)
{
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa_key2);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec384_key);
	free(rsa_pem);
	free(rsa2_pem);
	free(ec_pem);
	free(ec384_pem);
	return 0;
}

static struct jwt_key *key(const char *pem)
{
	struct jwt_key *k = NULL;
	struct verr e = {0};
	assert_int_equal(jwt_key_from_pem(&k, pem, strlen(pem), &e), 0);
	return k;
}

/* parse + verify with one key; returns the rc of the first failing step */
static int check(const char *tok, const char *pem, struct verr *e)
{
	struct jwt *t = NULL;
	int rc = jwt_parse(&t, tok, e);
	if (rc)
		return rc;
	struct jwt_key *k = key(pem);
	rc = jwt_verify(t, &k, 1, e);
	jwt_key_free(k);
	jwt_free(t);
	return rc;
}

static void test_util_jwt__rs256_valid(void **state)
{
	char *tok = make_token("RS256", rsa_key, NULL, NULL, claims_fmt(NULL));
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	assert_string_equal(t->alg, "RS256");
	assert_string_equal(jwt_claim_str(t, "sub"), "system:serviceaccount:default:app");
	struct jwt_key *k = key(rsa_pem);
	assert_string_equal(jwt_key_type(k), "RSA");
	assert_int_equal(jwt_verify(t, &k, 1, &e), 0);
	struct jwt_expect x = {.leeway = 0, .issuer = "kubernetes/serviceaccount", .audience = "vault",
			       .require_exp = true};
	assert_int_equal(jwt_check_claims(t, &x, &e), 0);
	jwt_key_free(k);
	jwt_free(t);
	free(tok);
}

static void test_util_jwt__rs384_rs512_valid(void **state)
{
	struct verr e = {0};
	char *a = make_token("RS384", rsa_key, NULL, NULL, claims_fmt(NULL));
	char *b = make_token("RS512", rsa_key, NULL, NULL, claims_fmt(NULL));
	assert_int_equal(check(a, rsa_pem, &e), 0);
	assert_int_equal(check(b, rsa_pem, &e), 0);
	free(a);
	free(b);
}

static void test_util_jwt__es256_es384_valid(void **state)
{
	struct verr e = {0};
	char *a = make_token("ES256", ec_key, NULL, NULL, claims_fmt(NULL));
	char *b = make_token("ES384", ec384_key, NULL, NULL, claims_fmt(NULL));
	assert_int_equal(check(a, ec_pem, &e), 0);
	assert_int_equal(check(b, ec384_pem, &e), 0);
	/* the curve is pinned: a P-384 key never verifies ES256 */
	assert_int_equal(check(a, ec384_pem, &e), VERR_DENIED);
	free(a);
	free(b);
}

static void test_util_jwt__second_key_verifies(void **state)
{
	char *tok = make_token("RS256", rsa_key, NULL, NULL, claims_fmt(NULL));
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	struct jwt_key *ks[3] = {key(ec_pem), key(rsa2_pem), key(rsa_pem)};
	assert_int_equal(jwt_verify(t, ks, 3, &e), 0);
	assert_int_equal(jwt_verify(t, ks, 2, &e), VERR_DENIED);
	for (int i = 0; i < 3; i++)
		jwt_key_free(ks[i]);
	jwt_free(t);
	free(tok);
}

static void test_util_jwt__hs256_with_public_key_rejected(void **state)
{
	/* the algorithm-confusion forgery: HMAC keyed with the public PEM */
	char *tok = make_token("HS256", NULL, rsa_pem, NULL, claims_fmt(NULL));
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), VERR_INVALID);
	assert_null(t);
	assert_non_null(strstr(e.msg, "algorithm"));
	free(tok);
}

static void test_util_jwt__alg_none_rejected(void **state)
{
	struct verr e = {0};
	struct jwt *t = NULL;
	char *tok = make_token("none", NULL, NULL, NULL, claims_fmt(NULL));
	assert_int_equal(jwt_parse(&t, tok, &e), VERR_INVALID);
	free(tok);
	tok = make_token("RS256", NULL, NULL, "{\"alg\":\"None\"}", claims_fmt(NULL));
	assert_int_equal(jwt_parse(&t, tok, &e), VERR_INVALID);
	free(tok);
	/* no alg at all */
	tok = make_token("RS256", rsa_key, NULL, "{\"typ\":\"JWT\"}", claims_fmt(NULL));
	assert_int_equal(jwt_parse(&t, tok, &e), VERR_INVALID);
	free(tok);
}

static void test_util_jwt__rsa_token_against_ec_key_rejected(void **state)
{
	struct verr e = {0};
	char *tok = make_token("RS256", rsa_key, NULL, NULL, claims_fmt(NULL));
	assert_int_equal(check(tok, ec_pem, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "no RSA key"));
	free(tok);
	/* an ES256 header over an RSA signature, RSA key configured */
	tok = make_token("RS256", rsa_key, NULL, "{\"alg\":\"ES256\"}", claims_fmt(NULL));
	assert_int_equal(check(tok, rsa_pem, &e), VERR_DENIED);
	free(tok);
}

static void test_util_jwt__bad_signature(void **state)
{
	struct verr e = {0};
	char *tok = make_token("RS256", rsa_key2, NULL, NULL, claims_fmt(NULL));
	assert_int_equal(check(tok, rsa_pem, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "signature"));
	free(tok);
	/* tamper with the payload of a good token */
	char *good = make_token("RS256", rsa_key, NULL, NULL, claims_fmt(NULL));
	char *evil = make_token("RS256", rsa_key2, NULL, NULL,
				claims_fmt("\"kubernetes.io/serviceaccount/namespace\":\"kube-system\""));
	char *gsig = strrchr(good, '.');
	char *edot = strrchr(evil, '.');
	size_t n = (size_t)(edot - evil) + strlen(gsig) + 1;
	char *mix = malloc(n);
	snprintf(mix, n, "%.*s%s", (int)(edot - evil), evil, gsig);
	assert_int_equal(check(mix, rsa_pem, &e), VERR_DENIED);
	free(mix);
	free(good);
	free(evil);
	/* ES256 signature of the wrong length */
	tok = make_token("ES256", ec_key, NULL, NULL, claims_fmt(NULL));
	tok[strlen(tok) - 3] = '\0';
	assert_int_not_equal(check(tok, ec_pem, &e), 0);
	free(tok);
}

static void test_util_jwt__expired(void **state)
{
	long now = (long)time(NULL);
	char c[256];
	snprintf(c, sizeof(c), "{\"exp\":%ld,\"iat\":%ld}", now - 100, now - 1000);
	char *tok = make_token("RS256", rsa_key, NULL, NULL, c);
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	struct jwt_expect x = {0};
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "expired"));
	x.leeway = 150; /* within the allowed skew */
	assert_int_equal(jwt_check_claims(t, &x, &e), 0);
	jwt_free(t);
	free(tok);
	/* exp as a string is malformed, not "no expiry" */
	tok = make_token("RS256", rsa_key, NULL, NULL, "{\"exp\":\"never\"}");
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	x.leeway = 0;
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	jwt_free(t);
	free(tok);
	/* require_exp */
	tok = make_token("RS256", rsa_key, NULL, NULL, "{\"sub\":\"x\"}");
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	assert_int_equal(jwt_check_claims(t, &x, &e), 0);
	x.require_exp = true;
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	jwt_free(t);
	free(tok);
}

static void test_util_jwt__nbf_and_iat_in_future(void **state)
{
	long now = (long)time(NULL);
	char c[256];
	snprintf(c, sizeof(c), "{\"exp\":%ld,\"nbf\":%ld}", now + 7200, now + 3600);
	char *tok = make_token("ES256", ec_key, NULL, NULL, c);
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	struct jwt_expect x = {.leeway = 60};
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "nbf"));
	jwt_free(t);
	free(tok);
	snprintf(c, sizeof(c), "{\"exp\":%ld,\"iat\":%ld}", now + 7200, now + 3600);
	tok = make_token("ES256", ec_key, NULL, NULL, c);
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "iat"));
	jwt_free(t);
	free(tok);
}

static void test_util_jwt__wrong_aud_and_iss(void **state)
{
	char *tok = make_token("RS256", rsa_key, NULL, NULL, claims_fmt(NULL));
	struct verr e = {0};
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	struct jwt_expect x = {.audience = "other"};
	assert_int_equal(jwt_check_claims(t, &x, &e), 0);
	x.audience = "vault2";
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "aud"));
	x.audience = NULL;
	x.issuer = "https://kubernetes.default.svc.cluster.local";
	assert_int_equal(jwt_check_claims(t, &x, &e), VERR_DENIED);
	assert_non_null(strstr(e.msg, "iss"));
	jwt_free(t);
	free(tok);
	/* aud as a single string */
	tok = make_token("RS256", rsa_key, NULL, NULL, "{\"aud\":\"vault\"}");
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	x.issuer = NULL;
	x.audience = "vault";
	assert_int_equal(jwt_check_claims(t, &x, &e), 0);
	jwt_free(t);
	free(tok);
}

static void test_util_jwt__malformed(void **state)
{
	struct verr e = {0};
	struct jwt *t = NULL;
	const char *bad[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"eyJhbGciOiJSUzI1NiJ9.e30=.AAAA",        /* padding */
		"eyJhbGciOiJSUzI1NiJ9.e3*.AAAA",         /* foreign char */
		"eyJhbGciOiJSUzI1NiJ9.e30.A",            /* impossible length */
		"eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.AAAA", /* "not json" */
		"eyJhbGciOiJSUzI1NiJ9.WzEsMl0.AAAA",     /* [1,2]: not an object */
		"bm9wZQ.e30.AAAA",                       /* header "nope" */
		"eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA", /* duplicate alg */
		"eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYjY0Il19.e30.AAAA", /* crit */
		"eyJhbGciOjF9.e30.AAAA",                 /* alg not a string */
		".e30.AAAA",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jwt_parse(&t, bad[i], &e), VERR_INVALID);
		assert_null(t);
	}
	/* sanity: the well-formed variant of the above parses */
	assert_int_equal(jwt_parse(&t, "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", &e), 0);
	jwt_free(t);
	/* oversize */
	char *big = malloc(JWT_MAX_LEN + 10);
	memset(big, 'A', JWT_MAX_LEN + 9);
	big[JWT_MAX_LEN + 9] = '\0';
	big[10] = '.';
	big[20] = '.';
	assert_int_equal(jwt_parse(&t, big, &e), VERR_INVALID);
	free(big);
}

static void test_util_jwt__key_parsing(void **state)
{
	struct jwt_key *k = NULL;
	struct verr e = {0};
	assert_int_equal(jwt_key_from_pem(&k, "not a key", 9, &e), VERR_INVALID);
	assert_null(k);
	/* a certificate: its public key is used */
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, ec_key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"sa", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, ec_key, EVP_sha256());
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	assert_int_equal(jwt_key_from_pem(&k, data, (size_t)n, &e), 0);
	assert_string_equal(jwt_key_type(k), "EC");
	char *tok = make_token("ES256", ec_key, NULL, NULL, claims_fmt(NULL));
	struct jwt *t = NULL;
	assert_int_equal(jwt_parse(&t, tok, &e), 0);
	assert_int_equal(jwt_verify(t, &k, 1, &e), 0);
	jwt_free(t);
	free(tok);
	jwt_key_free(k);
	BIO_free(b);
	X509_free(x);
	/* RSA keys below 2048 bits are refused */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char *sp = pubkey_pem(small);
	assert_int_equal(jwt_key_from_pem(&k, sp, strlen(sp), &e), VERR_INVALID);
	free(sp);
	EVP_PKEY_free(small);
	jwt_key_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_jwt__rs256_valid),
		cmocka_unit_test(test_util_jwt__rs384_rs512_valid),
		cmocka_unit_test(test_util_jwt__es256_es384_valid),
		cmocka_unit_test(test_util_jwt__second_key_verifies),
		cmocka_unit_test(test_util_jwt__hs256_with_public_key_rejected),
		cmocka_unit_test(test_util_jwt__alg_none_rejected),
		cmocka_unit_test(test_util_jwt__rsa_token_against_ec_key_rejected),
		cmocka_unit_test(test_util_jwt__bad_signature),
		cmocka_unit_test(test_util_jwt__expired),
		cmocka_unit_test(test_util_jwt__nbf_and_iat_in_future),
		cmocka_unit_test(test_util_jwt__wrong_aud_and_iss),
		cmocka_unit_test(test_util_jwt__malformed),
		cmocka_unit_test(test_util_jwt__key_parsing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
