/*
 * Unit tests for util/pgp.c: a transferable public key built here from
 * OpenSSL RSA keys (primary + encryption subkey), its v4 fingerprint, and
 * a full decryption of pgp_encrypt's output with the subkey's private key
 * (PKESK -> session key with checksum -> AES-256-CFB -> prefix check,
 * literal packet, MDC), as an OpenPGP implementation does it; plus the
 * keys that must be refused (secret keys, garbage, non-RSA, short RSA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "util/b64.h"
#include "util/pgp.h"

static size_t put_mpi(uint8_t *o, const uint8_t *v, size_t n)
{
	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	int top = 8;
	while (top > 1 && !(v[0] & (1u << (top - 1))))
		top--;
	size_t bits = (n - 1) * 8 + (size_t)top;
	o[0] = (uint8_t)(bits >> 8);
	o[1] = (uint8_t)bits;
	memcpy(o + 2, v, n);
	return n + 2;
}

/* A v4 key packet body for an RSA key (algo) into o; returns its length. */
static size_t key_body(uint8_t *o, EVP_PKEY *k, int algo)
{
	BIGNUM *n = NULL, *e = NULL;
	assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n));
	assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e));
	uint8_t nb[1024], eb[16];
	int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
	BN_free(n);
	BN_free(e);
	size_t p = 0;
	o[p++] = 4;
	o[p++] = 0x5f, o[p++] = 0, o[p++] = 0, o[p++] = 0; /* creation time */
	o[p++] = (uint8_t)algo;
	p += put_mpi(o + p, nb, (size_t)nl);
	p += put_mpi(o + p, eb, (size_t)el);
	return p;
}

/* An old-format packet (2-byte length), as gpg --export writes keys. */
static size_t packet(uint8_t *o, int tag, const uint8_t *body, size_t len)
{
	o[0] = (uint8_t)(0x80 | (tag << 2) | 1);
	o[1] = (uint8_t)(len >> 8);
	o[2] = (uint8_t)len;
	memcpy(o + 3, body, len);
	return len + 3;
}

static EVP_PKEY *rsa_key(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
	assert_non_null(k);
	return k;
}

struct keyset {
	EVP_PKEY *primary, *sub;
	char *b64;
	uint8_t fpr[20], sub_keyid[8];
};

static void make_keyset(struct keyset *ks, bool with_sub)
{
	static uint8_t pb[1200], sb[1200], out[4096];
	ks->primary = rsa_key(2048);
	ks->sub = with_sub ? rsa_key(2048) : NULL;
	size_t pl = key_body(pb, ks->primary, 1), o = 0;
	o += packet(out + o, 6, pb, pl);
	o += packet(out + o, 13, (const uint8_t *)"test <t@example.test>", 21);
	uint8_t hdr[3] = {0x99, (uint8_t)(pl >> 8), (uint8_t)pl};
	uint8_t tmp[1300];
	memcpy(tmp, hdr, 3);
	memcpy(tmp + 3, pb, pl);
	SHA1(tmp, pl + 3, ks->fpr);
	memcpy(ks->sub_keyid, ks->fpr + 12, 8);
	if (with_sub) {
		size_t sl = key_body(sb, ks->sub, 1);
		o += packet(out + o, 14, sb, sl);
		uint8_t sh[20];
		uint8_t h2[3] = {0x99, (uint8_t)(sl >> 8), (uint8_t)sl};
		memcpy(tmp, h2, 3);
		memcpy(tmp + 3, sb, sl);
		SHA1(tmp, sl + 3, sh);
		memcpy(ks->sub_keyid, sh + 12, 8);
	}
	ks->b64 = b64_encode(out, o, false);
	assert_non_null(ks->b64);
}

static void free_keyset(struct keyset *ks)
{
	EVP_PKEY_free(ks->primary);
	EVP_PKEY_free(ks->sub);
	free(ks->b64);
}

/* Reads a new-format header at m[*p]; returns the body length. */
static size_t read_new_header(const uint8_t *m, size_t *p, int want_tag)
{
	assert_int_equal(m[*p] & 0xC0, 0xC0);
	assert_int_equal(m[*p] & 0x3f, want_tag);
	(*p)++;
	size_t l1 = m[(*p)++];
	if (l1 < 192)
		return l1;
	if (l1 < 224)
		return ((l1 - 192) << 8) + m[(*p)++] + 192;
	assert_int_equal(l1, 255);
	size_t l = ((size_t)m[*p] << 24) | ((size_t)m[*p + 1] << 16) | ((size_t)m[*p + 2] << 8) | m[*p + 3];
	*p += 4;
	return l;
}

static void decrypt_and_check(const uint8_t *m, size_t mlen, EVP_PKEY *priv,
			      const uint8_t keyid[8], const char *want)
{
	size_t p = 0;
	size_t l = read_new_header(m, &p, 1);
	const uint8_t *pk = m + p;
	assert_int_equal(pk[0], 3);
	assert_memory_equal(pk + 1, keyid, 8);
	assert_int_equal(pk[9], 1);
	size_t bits = ((size_t)pk[10] << 8) | pk[11];
	size_t cl = (bits + 7) / 8;
	assert_int_equal(cl + 12, l);
	uint8_t c[512] = {0}, sk[512];
	size_t klen = (size_t)EVP_PKEY_get_size(priv);
	memcpy(c + (klen - cl), pk + 12, cl); /* left-pad to the modulus size */
	EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new(priv, NULL);
	size_t skl = sizeof(sk);
	assert_true(EVP_PKEY_decrypt_init(cx) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(cx, RSA_PKCS1_PADDING) > 0);
	assert_true(EVP_PKEY_decrypt(cx, sk, &skl, c, klen) > 0);
	EVP_PKEY_CTX_free(cx);
	assert_int_equal(skl, 35);
	assert_int_equal(sk[0], 9); /* AES-256 */
	unsigned sum = 0;
	for (int i = 1; i <= 32; i++)
		sum += sk[i];
	assert_int_equal(sk[33], (sum >> 8) & 0xff);
	assert_int_equal(sk[34], sum & 0xff);
	p += l;
	l = read_new_header(m, &p, 18);
	assert_int_equal(p + l, mlen);
	assert_int_equal(m[p], 1);
	uint8_t pt[4096], iv[16] = {0};
	int o1 = 0, o2 = 0;
	EVP_CIPHER_CTX *ec = EVP_CIPHER_CTX_new();
	assert_true(EVP_DecryptInit_ex(ec, EVP_aes_256_cfb128(), NULL, sk + 1, iv));
	assert_true(EVP_DecryptUpdate(ec, pt, &o1, m + p + 1, (int)(l - 1)));
	assert_true(EVP_DecryptFinal_ex(ec, pt + o1, &o2));
	EVP_CIPHER_CTX_free(ec);
	size_t n = (size_t)(o1 + o2);
	assert_memory_equal(pt + 14, pt + 16, 2); /* the quick check */
	/* MDC: the last 22 bytes, SHA-1 over all before the hash */
	assert_int_equal(pt[n - 22], 0xd3);
	assert_int_equal(pt[n - 21], 0x14);
	uint8_t h[20];
	SHA1(pt, n - 20, h);
	assert_memory_equal(h, pt + n - 20, 20);
	size_t q = 18;
	size_t ll = read_new_header(pt, &q, 11);
	assert_int_equal(pt[q], 'b');
	assert_int_equal(pt[q + 1], 0);
	assert_int_equal(ll - 6, strlen(want));
	assert_memory_equal(pt + q + 6, want, strlen(want));
}

static void test_util_pgp__encrypts_to_subkey(void **state)
{
	(void)state;
	struct keyset ks;
	make_keyset(&ks, true);
	char fp[41], want[41];
	struct verr err = {0};
	assert_int_equal(pgp_fingerprint(fp, ks.b64, &err), 0);
	for (int i = 0; i < 20; i++)
		snprintf(want + 2 * i, 3, "%02x", ks.fpr[i]);
	assert_string_equal(fp, want);
	const char *msg = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01";
	uint8_t *out = NULL;
	size_t ol = 0;
	assert_int_equal(pgp_encrypt(&out, &ol, ks.b64, (const uint8_t *)msg, strlen(msg), &err), 0);
	decrypt_and_check(out, ol, ks.sub, ks.sub_keyid, msg);
	/* a fresh session key each time */
	uint8_t *out2 = NULL;
	size_t ol2 = 0;
	assert_int_equal(pgp_encrypt(&out2, &ol2, ks.b64, (const uint8_t *)msg, strlen(msg), &err), 0);
	assert_true(ol != ol2 || memcmp(out, out2, ol) != 0);
	free(out);
	free(out2);
	free_keyset(&ks);
}

static void test_util_pgp__primary_only(void **state)
{
	(void)state;
	struct keyset ks;
	make_keyset(&ks, false);
	struct verr err = {0};
	uint8_t *out = NULL;
	size_t ol = 0;
	assert_int_equal(pgp_encrypt(&out, &ol, ks.b64, (const uint8_t *)"abc", 3, &err), 0);
	decrypt_and_check(out, ol, ks.primary, ks.sub_keyid, "abc");
	free(out);
	free_keyset(&ks);
}

static void test_util_pgp__refuses_bad_keys(void **state)
{
	(void)state;
	char fp[41];
	struct verr err = {0};
	assert_int_equal(pgp_fingerprint(fp, "!!!", &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "base64"));
	char *s = b64_encode((const uint8_t *)"hello world", 11, false);
	assert_int_equal(pgp_fingerprint(fp, s, &err), VERR_INVALID);
	free(s);
	/* a secret key packet (tag 5) */
	uint8_t sec[] = {0x95, 0x00, 0x01, 0x04};
	s = b64_encode(sec, sizeof(sec), false);
	assert_int_equal(pgp_fingerprint(fp, s, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "secret key"));
	free(s);
	/* an EdDSA-only key: a fingerprint, but nothing to encrypt to */
	uint8_t ed[] = {0x99, 0x00, 0x0a, 4, 0, 0, 0, 0, 22, 0x00, 0x08, 0x40, 0x00};
	s = b64_encode(ed, 13, false);
	assert_int_equal(pgp_fingerprint(fp, s, &err), 0);
	uint8_t *out = NULL;
	size_t ol = 0;
	assert_int_equal(pgp_encrypt(&out, &ol, s, (const uint8_t *)"x", 1, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "only RSA"));
	free(s);
	/* a truncated packet */
	uint8_t tr[] = {0x99, 0x01, 0x0d, 4, 0};
	s = b64_encode(tr, sizeof(tr), false);
	assert_int_equal(pgp_fingerprint(fp, s, &err), VERR_INVALID);
	free(s);
	/* RSA shorter than 2048 bits */
	EVP_PKEY *k = rsa_key(1024);
	uint8_t body[600], pkt[700];
	size_t bl = key_body(body, k, 1);
	size_t pl = packet(pkt, 6, body, bl);
	s = b64_encode(pkt, pl, false);
	assert_int_equal(pgp_encrypt(&out, &ol, s, (const uint8_t *)"x", 1, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, "2048"));
	free(s);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_pgp__encrypts_to_subkey),
		cmocka_unit_test(test_util_pgp__primary_only),
		cmocka_unit_test(test_util_pgp__refuses_bad_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
