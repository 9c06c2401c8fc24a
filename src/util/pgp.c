/*
 * pgp.c - the minimal OpenPGP (RFC 4880) subset for encrypting key shares
 * to operators' public keys (pgp.h), as Vault's pgp_keys do.
 *
 * Input: a binary transferable public key (base64): a public-key packet
 * (tag 6), user ids, signatures, public-subkey packets (tag 14). Only v4
 * RSA keys (algorithms 1 and 2) are usable; the first RSA subkey is the
 * encryption key, else the primary key. Signatures are not checked: the
 * operator vouches for the keys they hand over, as with Vault.
 *
 * Output: PKESK v3 (tag 1: key id, RSA, PKCS#1 v1.5 of [sym algo 9 |
 * session key | checksum]) + SEIPD v1 (tag 18: AES-256 CFB with a zero
 * IV over [16 random bytes | their last 2 | literal packet | MDC packet],
 * the MDC being SHA-1 of everything before its hash). New-format packet
 * headers. The session key is wiped after use.
 */
#include "util/pgp.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64.h"
#include "util/buf.h"
#include "util/rand.h"

#define TAG_PKESK 1
#define TAG_SECRET_KEY 5
#define TAG_PUBLIC_KEY 6
#define TAG_LITERAL 11
#define TAG_SEIPD 18
#define TAG_PUBLIC_SUBKEY 14
#define SYM_AES256 9

/* One parsed RSA key packet: pointers into the decoded key. */
struct pgp_rsa {
	bool found;
	const uint8_t *n, *e;
	size_t nlen, elen;
	uint8_t keyid[8];
	uint8_t fpr[20];
};

/* The next packet of buf: tag, body. 1 = one read, 0 = end, <0 = bad. */
static int next_packet(const uint8_t *buf, size_t len, size_t *pos, int *tag,
		       const uint8_t **body, size_t *blen)
{
	size_t p = *pos;
	if (p >= len)
		return 0;
	uint8_t h = buf[p++];
	if (!(h & 0x80))
		return -1;
	size_t l = 0;
	if (h & 0x40) { /* new format */
		*tag = h & 0x3f;
		if (p >= len)
			return -1;
		uint8_t l1 = buf[p++];
		if (l1 < 192) {
			l = l1;
		} else if (l1 < 224) {
			if (p >= len)
				return -1;
			l = ((size_t)(l1 - 192) << 8) + buf[p++] + 192;
		} else if (l1 == 255) {
			if (len - p < 4)
				return -1;
			l = ((size_t)buf[p] << 24) | ((size_t)buf[p + 1] << 16) |
			    ((size_t)buf[p + 2] << 8) | buf[p + 3];
			p += 4;
		} else {
			return -1; /* partial lengths: never in a key export */
		}
	} else { /* old format */
		*tag = (h >> 2) & 0x0f;
		int n = (h & 3) == 0 ? 1 : (h & 3) == 1 ? 2 : (h & 3) == 2 ? 4 : 0;
		if (!n || len - p < (size_t)n)
			return -1;
		for (int i = 0; i < n; i++)
			l = (l << 8) | buf[p++];
	}
	if (l > len - p)
		return -1;
	*body = buf + p;
	*blen = l;
	*pos = p + l;
	return 1;
}

/* A multiprecision integer at body[*off]. */
static int read_mpi(const uint8_t *body, size_t blen, size_t *off, const uint8_t **v, size_t *vl)
{
	if (blen - *off < 2)
		return -1;
	size_t bits = ((size_t)body[*off] << 8) | body[*off + 1];
	size_t n = (bits + 7) / 8;
	*off += 2;
	if (n == 0 || blen - *off < n)
		return -1;
	*v = body + *off;
	*vl = n;
	*off += n;
	return 0;
}

/* A v4 key packet body: fingerprint always; RSA n/e when it is RSA. */
static int parse_key(const uint8_t *body, size_t blen, struct pgp_rsa *k, bool *rsa)
{
	*rsa = false;
	if (blen < 6 || body[0] != 4)
		return -1;
	uint8_t hdr[3] = {0x99, (uint8_t)(blen >> 8), (uint8_t)blen};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int fl = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL) && EVP_DigestUpdate(md, hdr, 3) &&
		 EVP_DigestUpdate(md, body, blen) && EVP_DigestFinal_ex(md, k->fpr, &fl);
	EVP_MD_CTX_free(md);
	if (!ok)
		return -1;
	memcpy(k->keyid, k->fpr + 12, 8);
	uint8_t algo = body[5];
	if (algo != 1 && algo != 2)
		return 0;
	size_t off = 6;
	if (read_mpi(body, blen, &off, &k->n, &k->nlen) ||
	    read_mpi(body, blen, &off, &k->e, &k->elen))
		return -1;
	*rsa = true;
	k->found = true;
	return 0;
}

/* Decode and walk the key: the primary's fingerprint and the RSA key to
 * encrypt to (pointers into *raw, which the caller frees). */
static int load_key(const char *key_b64, uint8_t **raw, size_t *rlen, uint8_t primary_fpr[20],
		    struct pgp_rsa *enc, struct verr *err)
{
	struct verr e2 = {0};
	*raw = NULL;
	if (b64_decode(raw, rlen, key_b64, false, &e2))
		return verr_set(err, VERR_INVALID, "the PGP key is not valid base64: %s", e2.msg);
	size_t pos = 0;
	int tag = 0, r, npk = 0;
	const uint8_t *body = NULL;
	size_t blen = 0;
	struct pgp_rsa primary = {0}, sub = {0};
	while ((r = next_packet(*raw, *rlen, &pos, &tag, &body, &blen)) == 1) {
		bool rsa = false;
		if (npk == 0 && tag != TAG_PUBLIC_KEY)
			return verr_set(err, VERR_INVALID, tag == TAG_SECRET_KEY
				       ? "the PGP key is a secret key: give the public key (gpg --export)"
				       : "the PGP key does not start with a public-key packet");
		if (tag == TAG_PUBLIC_KEY) {
			if (npk++)
				break; /* a second key: only the first counts */
			if (parse_key(body, blen, &primary, &rsa))
				return verr_set(err, VERR_INVALID, "the PGP public key packet is malformed or not version 4");
		} else if (tag == TAG_PUBLIC_SUBKEY && !sub.found) {
			struct pgp_rsa s = {0};
			if (parse_key(body, blen, &s, &rsa))
				return verr_set(err, VERR_INVALID, "a PGP public subkey packet is malformed");
			if (rsa)
				sub = s;
		}
	}
	if (r < 0)
		return verr_set(err, VERR_INVALID, "the PGP key has a malformed packet");
	if (!npk)
		return verr_set(err, VERR_INVALID, "the PGP key is empty");
	memcpy(primary_fpr, primary.fpr, 20);
	if (enc) {
		*enc = sub.found ? sub : primary;
		if (!enc->found)
			return verr_set(err, VERR_INVALID, "the PGP key has no RSA key to encrypt to (only RSA keys are supported)");
	}
	return 0;
}

int pgp_fingerprint(char out[41], const char *key_b64, struct verr *err)
{
	uint8_t *raw = NULL, fpr[20];
	size_t rlen = 0;
	int rc = load_key(key_b64, &raw, &rlen, fpr, NULL, err);
	free(raw);
	if (rc)
		return rc;
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", fpr[i]);
	return 0;
}

/* buf_add, reporting the buffer's failure (1) */
static int add(struct buf *b, const void *s, size_t n)
{
	buf_add(b, s, n);
	return b->failed ? 1 : 0;
}

/* A new-format packet header for tag and body length. */
static int put_header(struct buf *b, int tag, size_t len)
{
	uint8_t h[6];
	size_t n = 0;
	h[n++] = (uint8_t)(0xC0 | tag);
	if (len < 192) {
		h[n++] = (uint8_t)len;
	} else if (len < 8384) {
		h[n++] = (uint8_t)(((len - 192) >> 8) + 192);
		h[n++] = (uint8_t)((len - 192) & 0xff);
	} else {
		h[n++] = 0xff;
		h[n++] = (uint8_t)(len >> 24);
		h[n++] = (uint8_t)(len >> 16);
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	}
	return add(b, h, n);
}

/* RSA PKCS#1 v1.5 encryption of m under (n, e). */
static int rsa_encrypt(uint8_t **out, size_t *olen, const struct pgp_rsa *k, const uint8_t *m,
		       size_t mlen, struct verr *err)
{
	int rc = verr_set(err, VERR_INVALID, "the PGP RSA key is unusable");
	BIGNUM *n = BN_bin2bn(k->n, (int)k->nlen, NULL), *e = BN_bin2bn(k->e, (int)k->elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *fctx = NULL, *ectx = NULL;
	EVP_PKEY *pkey = NULL;
	*out = NULL;
	if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	fctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!fctx || EVP_PKEY_fromdata_init(fctx) <= 0 ||
	    EVP_PKEY_fromdata(fctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	if (EVP_PKEY_get_bits(pkey) < 2048) {
		rc = verr_set(err, VERR_INVALID, "the PGP RSA key is shorter than 2048 bits");
		goto out;
	}
	ectx = EVP_PKEY_CTX_new(pkey, NULL);
	size_t cl = 0;
	if (!ectx || EVP_PKEY_encrypt_init(ectx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_encrypt(ectx, NULL, &cl, m, mlen) <= 0)
		goto out;
	*out = malloc(cl);
	if (!*out || EVP_PKEY_encrypt(ectx, *out, &cl, m, mlen) <= 0) {
		free(*out);
		*out = NULL;
		goto out;
	}
	*olen = cl;
	verr_clear(err);
	rc = 0;
out:
	EVP_PKEY_CTX_free(ectx);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(fctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return rc;
}

/* The PKESK packet for session key sk. */
static int put_pkesk(struct buf *b, const struct pgp_rsa *k, const uint8_t sk[32], struct verr *err)
{
	uint8_t m[35];
	unsigned sum = 0;
	m[0] = SYM_AES256;
	memcpy(m + 1, sk, 32);
	for (int i = 0; i < 32; i++)
		sum += sk[i];
	m[33] = (uint8_t)(sum >> 8);
	m[34] = (uint8_t)sum;
	uint8_t *c = NULL;
	size_t cl = 0;
	int rc = rsa_encrypt(&c, &cl, k, m, sizeof(m), err);
	OPENSSL_cleanse(m, sizeof(m));
	if (rc)
		return rc;
	size_t lead = 0; /* the MPI is the integer: no leading zero bytes */
	while (lead < cl - 1 && c[lead] == 0)
		lead++;
	size_t vl = cl - lead;
	int top = 8;
	while (top > 1 && !(c[lead] & (1u << (top - 1))))
		top--;
	size_t bits = (vl - 1) * 8 + (size_t)top;
	uint8_t hdr[10] = {3};
	memcpy(hdr + 1, k->keyid, 8);
	hdr[9] = 1; /* RSA */
	uint8_t mb[2] = {(uint8_t)(bits >> 8), (uint8_t)bits};
	rc = put_header(b, TAG_PKESK, sizeof(hdr) + 2 + vl) || add(b, hdr, sizeof(hdr)) ||
	     add(b, mb, 2) || add(b, c + lead, vl);
	free(c);
	return rc ? verr_set(err, VERR_INTERNAL, "out of memory") : 0;
}

int pgp_encrypt(uint8_t **out, size_t *out_len, const char *key_b64, const uint8_t *msg,
		size_t msg_len, struct verr *err)
{
	uint8_t *raw = NULL, fpr[20], sk[32], iv[16] = {0};
	size_t rlen = 0;
	struct pgp_rsa k = {0};
	struct buf pt, ob;
	buf_init_secret(&pt, 256);
	buf_init(&ob, 1024);
	EVP_CIPHER_CTX *cx = NULL;
	uint8_t *ct = NULL;
	*out = NULL;
	int rc = load_key(key_b64, &raw, &rlen, fpr, &k, err);
	if (!rc)
		rc = rand_bytes(sk, sizeof(sk), err);
	if (!rc)
		rc = put_pkesk(&ob, &k, sk, err);
	if (rc)
		goto out;
	/* the plaintext: prefix, literal data packet, MDC */
	uint8_t prefix[18];
	if ((rc = rand_bytes(prefix, 16, err)) != 0)
		goto out;
	prefix[16] = prefix[14];
	prefix[17] = prefix[15];
	uint8_t lit[6] = {'b', 0, 0, 0, 0, 0};
	rc = add(&pt, prefix, sizeof(prefix)) || put_header(&pt, TAG_LITERAL, 6 + msg_len) ||
	     add(&pt, lit, sizeof(lit)) || add(&pt, msg, msg_len) ||
	     add(&pt, (const uint8_t *)"\xd3\x14", 2);
	if (rc) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	uint8_t mdc[20];
	SHA1((const uint8_t *)pt.p, pt.len, mdc);
	if (add(&pt, mdc, sizeof(mdc))) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	ct = malloc(pt.len + 1);
	int l1 = 0, l2 = 0;
	cx = EVP_CIPHER_CTX_new();
	if (!ct || !cx || !EVP_EncryptInit_ex(cx, EVP_aes_256_cfb128(), NULL, sk, iv) ||
	    !EVP_EncryptUpdate(cx, ct + 1, &l1, (const uint8_t *)pt.p, (int)pt.len) ||
	    !EVP_EncryptFinal_ex(cx, ct + 1 + l1, &l2)) {
		rc = verr_set(err, VERR_INTERNAL, "AES-256-CFB encryption failed");
		goto out;
	}
	ct[0] = 1; /* SEIPD version */
	if (put_header(&ob, TAG_SEIPD, 1 + (size_t)l1 + (size_t)l2) ||
	    add(&ob, ct, 1 + (size_t)l1 + (size_t)l2)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	*out = (uint8_t *)buf_take(&ob, out_len); /* transferred */
	rc = *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
out:
	OPENSSL_cleanse(sk, sizeof(sk));
	buf_free(&pt);
	buf_free(&ob);
	free(ct);
	free(raw);
	EVP_CIPHER_CTX_free(cx);
	return rc;
}
