/*
 * crl.c - stored certificates, revocation and CRLs of the PKI engine:
 * certs/<serial> (DER), revoke and revoke-with-key, the per-issuer
 * revocation index, CRLs written as DER by hand and signed once, stored in
 * chunks, and the paths certs, certs/revoked, cert/:serial, crl, crl/pem,
 * crl/rotate, config/crl, tidy, tidy-status and issuer/:ref/crl.
 *
 * Why by hand: OpenSSL's X509_CRL keeps every entry as a heap object and
 * re-encodes the whole list through its template machinery; a CRL is a flat
 * SEQUENCE of (INTEGER, UTCTime) pairs, so writing it from a sorted array is
 * one pass over memory. 1,000,000 entries encode in well under a second
 * (docs/secrets-pki.md "Measurements").
 */
#include "secrets/pki/pki_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/duration.h"

/* ---- stored certificates ---- */

static void serial_dash(const ASN1_INTEGER *ai, char *out, size_t cap)
{
	pki__serial_colon(ai, out, cap);
	for (char *p = out; *p; p++)
		if (*p == ':')
			*p = '-';
}

int pki__cert_store(struct pki_backend *b, X509 *x, struct verr *err)
{
	char s[PKI_SERIAL_HEX + 4], key[PKI_SERIAL_HEX + 16];
	serial_dash(X509_get0_serialNumber(x), s, sizeof(s));
	snprintf(key, sizeof(key), "certs/%s", s);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	if (n <= 0)
		return verr_set(err, VERR_INTERNAL, "could not encode the certificate");
	int rc = view_put(b->view, key, der, (size_t)n, err);
	OPENSSL_free(der);
	return rc;
}

int pki__cert_load(struct pki_backend *b, const char *serial_dash_s, X509 **out, struct verr *err)
{
	char key[PKI_SERIAL_HEX + 80];
	*out = NULL;
	snprintf(key, sizeof(key), "certs/%s", serial_dash_s);
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = view_get(b->view, key, &der, &len, err);
	if (rc || !der)
		return rc;
	*out = pki__x509_from_der(der, len);
	free(der);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "stored certificate %.64s is corrupt", serial_dash_s);
	return 0;
}

/* ---- revocation index ---- */

static int rev_cmp(const void *a, const void *b)
{
	const struct pki_revoked *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->serial, y->serial, x->len);
}

void pki__crl_sort(struct pki_revoked *v, size_t n)
{
	if (n > 1) /* v may be NULL when empty: qsort's argument must not be */
		qsort(v, n, sizeof(*v), rev_cmp);
}

void pki__crl_index_free(struct pki_backend *b)
{
	for (size_t i = 0; i < b->n_crls; i++) {
		free(b->crls[i].v);
		free(b->crls[i].der);
		free(b->crls[i].delta_der);
	}
	free(b->crls);
	b->crls = NULL;
	b->n_crls = 0;
	b->index_loaded = false;
}

static struct pki_crl_index *index_for(struct pki_backend *b, const char *issuer)
{
	for (size_t i = 0; i < b->n_crls; i++)
		if (!strcmp(b->crls[i].issuer, issuer))
			return &b->crls[i];
	struct pki_crl_index *n = realloc(b->crls, (b->n_crls + 1) * sizeof(*n));
	if (!n)
		return NULL;
	b->crls = n;
	struct pki_crl_index *c = &b->crls[b->n_crls++];
	memset(c, 0, sizeof(*c));
	snprintf(c->issuer, sizeof(c->issuer), "%s", issuer);
	return c;
}

/* colon/dash hex -> bytes */
static int hex_serial(const char *s, struct pki_revoked *r)
{
	r->len = 0;
	for (const char *p = s; *p;) {
		if (*p == '-' || *p == ':') {
			p++;
			continue;
		}
		unsigned v;
		if (sscanf(p, "%2x", &v) != 1 || r->len >= sizeof(r->serial))
			return -1;
		r->serial[r->len++] = (uint8_t)v;
		p += 2;
	}
	return r->len ? 0 : -1;
}

static int index_add(struct pki_backend *b, const char *issuer, const char *serial, int64_t t)
{
	struct pki_crl_index *c = index_for(b, issuer);
	if (!c)
		return -1;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct pki_revoked *nv = realloc(c->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		c->v = nv;
		c->cap = nc;
	}
	if (hex_serial(serial, &c->v[c->n]))
		return -1;
	c->v[c->n++].time = t;
	return 0;
}

struct load_ctx {
	struct pki_backend *b;
	int rc;
};

/* Caller holds crl_lock. */
static int index_load(struct pki_backend *b, struct verr *err)
{
	if (b->index_loaded)
		return 0;
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(b->view, "revoked/", &keys, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		char key[PKI_SERIAL_HEX + 80];
		json_t *o = NULL;
		snprintf(key, sizeof(key), "revoked/%s", keys[i]);
		rc = view_get_json(b->view, key, &o, err);
		if (!rc && o) {
			const char *iss = json_string_value(json_object_get(o, "issuer_id"));
			json_t *t = json_object_get(o, "revocation_time");
			if (iss && index_add(b, iss, keys[i], json_integer_value(t)))
				rc = verr_set(err, VERR_INTERNAL, "out of memory");
		}
		json_decref(o);
	}
	physical_list_free(keys, n);
	if (!rc)
		b->index_loaded = true;
	return rc;
}

/* ---- DER writer ---- */

void pki__der_len(struct buf *o, size_t n)
{
	if (n < 128) {
		buf_char(o, (char)n);
		return;
	}
	uint8_t tmp[8];
	int k = 0;
	while (n) {
		tmp[k++] = (uint8_t)(n & 0xff);
		n >>= 8;
	}
	buf_char(o, (char)(0x80 | k));
	while (k)
		buf_char(o, (char)tmp[--k]);
}

void pki__der_tlv(struct buf *o, uint8_t tag, const void *p, size_t n)
{
	buf_char(o, (char)tag);
	pki__der_len(o, n);
	buf_add(o, p, n);
}

static size_t der_time(uint8_t *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	int year = tm.tm_year + 1900;
	char s[64];
	if (year >= 1950 && year < 2050) {
		snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		out[0] = 0x17; /* UTCTime */
	} else {
		snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
		out[0] = 0x18; /* GeneralizedTime */
	}
	size_t l = strlen(s);
	out[1] = (uint8_t)l;
	memcpy(out + 2, s, l);
	return l + 2;
}

static size_t der_uint(uint8_t *out, const uint8_t *mag, size_t n)
{
	/* INTEGER from a big-endian magnitude: strip leading zeros, add one if
	 * the high bit is set */
	while (n > 1 && mag[0] == 0) {
		mag++;
		n--;
	}
	bool pad = mag[0] & 0x80;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + pad);
	size_t o = 2;
	if (pad)
		out[o++] = 0;
	memcpy(out + o, mag, n);
	return o + n;
}

static int sig_algor(EVP_PKEY *pk, const EVP_MD *md, uint8_t *out, size_t *len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = ctx && EVP_DigestSignInit_ex(ctx, &pctx, md ? EVP_MD_get0_name(md) : NULL, NULL,
					       NULL, pk, NULL) > 0;
	if (ok) {
		OSSL_PARAM p[2] = {
			OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, out, *len),
			OSSL_PARAM_END};
		ok = EVP_PKEY_CTX_get_params(pctx, p) > 0 && OSSL_PARAM_modified(&p[0]);
		if (ok)
			*len = p[0].return_size;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Freshest CRL (RFC 5280 5.2.6): CRLDistributionPoints syntax, one
 * DistributionPoint { [0] { fullName [0] { URI [6] } } } per URL. */
static void ext_freshest(struct buf *ext, json_t *urls)
{
	static const uint8_t oid[] = {0x06, 0x03, 0x55, 0x1d, 0x2e};
	struct buf dps, one, t1, t2;
	buf_init(&dps, 128);
	buf_init(&one, 128);
	buf_init(&t1, 128);
	buf_init(&t2, 128);
	size_t i;
	json_t *u;
	json_array_foreach(urls, i, u)
	{
		const char *s = json_string_value(u);
		if (!s)
			continue;
		t1.len = t2.len = 0;
		pki__der_tlv(&t1, 0x86, s, strlen(s));
		pki__der_tlv(&t2, 0xa0, t1.p, t1.len); /* fullName */
		t1.len = 0;
		pki__der_tlv(&t1, 0xa0, t2.p, t2.len); /* distributionPoint */
		pki__der_tlv(&dps, 0x30, t1.p, t1.len);
	}
	t1.len = 0;
	pki__der_tlv(&t1, 0x30, dps.p, dps.len);
	buf_add(&one, oid, sizeof(oid));
	pki__der_tlv(&one, 0x04, t1.p, t1.len);
	pki__der_tlv(ext, 0x30, one.p, one.len);
	buf_free(&dps);
	buf_free(&one);
	buf_free(&t1);
	buf_free(&t2);
}

int pki__crl_encode(const struct pki_issuer *iss, const struct pki_revoked *v, size_t n,
		    int64_t number, int64_t this_update, int64_t next_update, uint8_t **out,
		    size_t *out_len, struct verr *err)
{
	return pki__crl_encode_ext(iss, v, n, number, this_update, next_update, NULL, out, out_len,
				   err);
}

int pki__crl_encode_ext(const struct pki_issuer *iss, const struct pki_revoked *v, size_t n,
			int64_t number, int64_t this_update, int64_t next_update,
			const struct pki_crl_opts *opts, uint8_t **out, size_t *out_len,
			struct verr *err)
{
	*out = NULL;
	*out_len = 0;
	if (!iss->pkey)
		return verr_set(err, VERR_INVALID, "the issuer has no key to sign a CRL");
	uint8_t alg[128];
	size_t alg_len = sizeof(alg);
	if (sig_algor(iss->pkey, iss->md, alg, &alg_len))
		return verr_set(err, VERR_INTERNAL, "no signature algorithm for the issuer's key");

	struct buf entries, tbs, body, crl;
	buf_init(&entries, n * 40 + 16);
	buf_init(&tbs, 0);
	buf_init(&body, 0);
	buf_init(&crl, 0);
	uint8_t e[160];
	for (size_t i = 0; i < n; i++) {
		uint8_t inner[128];
		size_t il = der_uint(inner, v[i].serial, v[i].len);
		il += der_time(inner + il, v[i].time);
		e[0] = 0x30;
		e[1] = (uint8_t)il;
		memcpy(e + 2, inner, il);
		buf_add(&entries, e, il + 2);
	}
	/* extensions: AKI (keyid) and CRL number */
	struct buf ext;
	buf_init(&ext, 128);
	{
		struct buf one;
		buf_init(&one, 64);
		static const uint8_t oid_aki[] = {0x06, 0x03, 0x55, 0x1d, 0x23};
		static const uint8_t oid_num[] = {0x06, 0x03, 0x55, 0x1d, 0x14};
		if (iss->skid) {
			uint8_t ki[80];
			size_t kl = (size_t)ASN1_STRING_length(iss->skid);
			if (kl > 64)
				kl = 64;
			/* AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier } */
			uint8_t seq[80];
			seq[0] = 0x30;
			seq[1] = (uint8_t)(kl + 2);
			seq[2] = 0x80;
			seq[3] = (uint8_t)kl;
			memcpy(seq + 4, ASN1_STRING_get0_data(iss->skid), kl);
			buf_add(&one, oid_aki, sizeof(oid_aki));
			pki__der_tlv(&one, 0x04, seq, kl + 4);
			(void)ki;
			pki__der_tlv(&ext, 0x30, one.p, one.len);
			one.len = 0;
		}
		uint8_t nb[9];
		for (int i = 0; i < 8; i++)
			nb[i] = (uint8_t)((uint64_t)number >> (56 - 8 * i));
		uint8_t num[16];
		size_t nl = der_uint(num, nb, 8);
		buf_add(&one, oid_num, sizeof(oid_num));
		pki__der_tlv(&one, 0x04, num, nl);
		pki__der_tlv(&ext, 0x30, one.p, one.len);
		if (opts && opts->delta_base >= 0) {
			/* Delta CRL Indicator: critical, BaseCRLNumber */
			static const uint8_t oid_delta[] = {0x06, 0x03, 0x55, 0x1d, 0x1b, 0x01, 0x01, 0xff};
			for (int i = 0; i < 8; i++)
				nb[i] = (uint8_t)((uint64_t)opts->delta_base >> (56 - 8 * i));
			nl = der_uint(num, nb, 8);
			one.len = 0;
			buf_add(&one, oid_delta, sizeof(oid_delta));
			pki__der_tlv(&one, 0x04, num, nl);
			pki__der_tlv(&ext, 0x30, one.p, one.len);
		}
		buf_free(&one);
		if (opts && json_array_size(opts->freshest))
			ext_freshest(&ext, opts->freshest);
	}
	/* TBSCertList */
	static const uint8_t version[] = {0x02, 0x01, 0x01};
	buf_add(&body, version, sizeof(version));
	buf_add(&body, alg, alg_len);
	buf_add(&body, iss->name_der, (size_t)iss->name_der_len);
	uint8_t t[80];
	buf_add(&body, t, der_time(t, this_update));
	buf_add(&body, t, der_time(t, next_update));
	if (n)
		pki__der_tlv(&body, 0x30, entries.p, entries.len);
	buf_free(&entries);
	{
		struct buf exts;
		buf_init(&exts, ext.len + 8);
		pki__der_tlv(&exts, 0x30, ext.p, ext.len);
		pki__der_tlv(&body, 0xa0, exts.p, exts.len);
		buf_free(&exts);
	}
	buf_free(&ext);
	pki__der_tlv(&tbs, 0x30, body.p, body.len);
	buf_free(&body);
	if (tbs.failed) {
		buf_free(&tbs);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	/* sign */
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = 0;
	uint8_t *sig = NULL;
	int ok = ctx && EVP_DigestSignInit_ex(ctx, NULL, iss->md ? EVP_MD_get0_name(iss->md) : NULL,
					       NULL, NULL, iss->pkey, NULL) > 0 &&
		 EVP_DigestSign(ctx, NULL, &siglen, (uint8_t *)tbs.p, tbs.len) > 0 &&
		 (sig = malloc(siglen + 1)) &&
		 EVP_DigestSign(ctx, sig + 1, &siglen, (uint8_t *)tbs.p, tbs.len) > 0;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(sig);
		buf_free(&tbs);
		ERR_clear_error();
		return verr_set(err, VERR_INTERNAL, "could not sign the CRL");
	}
	sig[0] = 0; /* BIT STRING: no unused bits */
	buf_init(&body, tbs.len + alg_len + siglen + 16);
	buf_add(&body, tbs.p, tbs.len);
	buf_add(&body, alg, alg_len);
	pki__der_tlv(&body, 0x03, sig, siglen + 1);
	free(sig);
	buf_free(&tbs);
	pki__der_tlv(&crl, 0x30, body.p, body.len);
	buf_free(&body);
	size_t l;
	char *p = buf_take(&crl, &l);
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	*out = (uint8_t *)p;
	*out_len = l;
	return 0;
}

/* ---- CRL storage ---- */

static int64_t crl_expiry(struct pki_state *s)
{
	int64_t secs = PKI_DEFAULT_CRL_EXPIRY;
	const char *e = json_string_value(json_object_get(s->crl_cfg, "expiry"));
	if (e && duration_parse(&secs, e, NULL))
		secs = PKI_DEFAULT_CRL_EXPIRY;
	return secs > 0 ? secs : PKI_DEFAULT_CRL_EXPIRY;
}

/* crl/<issuer>/meta: the numbers (complete and delta share the sequence)
 * and the complete CRL's length in chunks. */
static int crl_meta_store(struct pki_backend *b, struct pki_crl_index *c, struct verr *err)
{
	char key[96];
	size_t chunks = (c->der_len + PKI_CRL_CHUNK - 1) / PKI_CRL_CHUNK;
	snprintf(key, sizeof(key), "crl/%s/meta", c->issuer);
	json_t *m = json_pack("{s:I,s:I,s:I,s:I,s:I}", "number", (json_int_t)c->number, "len",
			      (json_int_t)c->der_len, "chunks", (json_int_t)chunks, "base_number",
			      (json_int_t)c->base_number, "this_update", (json_int_t)c->base_time);
	int rc = m ? view_put_json(b->view, key, m, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(m);
	return rc;
}

static int crl_store(struct pki_backend *b, struct pki_crl_index *c, struct verr *err)
{
	size_t chunks = (c->der_len + PKI_CRL_CHUNK - 1) / PKI_CRL_CHUNK;
	int rc = 0;
	for (size_t i = 0; i < chunks && !rc; i++) {
		char key[96];
		snprintf(key, sizeof(key), "crl/%s/%zu", c->issuer, i);
		size_t off = i * PKI_CRL_CHUNK;
		size_t l = c->der_len - off < PKI_CRL_CHUNK ? c->der_len - off : PKI_CRL_CHUNK;
		rc = view_put(b->view, key, c->der + off, l, err);
	}
	if (rc)
		return rc;
	return crl_meta_store(b, c, err);
}

/* Read a stored CRL into c (der NULL when none). */
static int crl_read_stored(struct pki_backend *b, struct pki_crl_index *c, struct verr *err)
{
	char key[96];
	json_t *m = NULL;
	snprintf(key, sizeof(key), "crl/%s/meta", c->issuer);
	int rc = view_get_json(b->view, key, &m, err);
	if (rc || !m)
		return rc;
	c->number = json_integer_value(json_object_get(m, "number"));
	json_t *bn = json_object_get(m, "base_number");
	c->base_number = bn ? json_integer_value(bn) : c->number;
	c->base_time = json_integer_value(json_object_get(m, "this_update"));
	size_t len = (size_t)json_integer_value(json_object_get(m, "len"));
	size_t chunks = (size_t)json_integer_value(json_object_get(m, "chunks"));
	json_decref(m);
	uint8_t *der = malloc(len ? len : 1);
	size_t off = 0;
	if (!der)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < chunks && !rc; i++) {
		uint8_t *p = NULL;
		size_t l = 0;
		snprintf(key, sizeof(key), "crl/%s/%zu", c->issuer, i);
		rc = view_get(b->view, key, &p, &l, err);
		if (!rc && (!p || off + l > len))
			rc = verr_set(err, VERR_INTERNAL, "stored CRL is incomplete");
		if (!rc) {
			memcpy(der + off, p, l);
			off += l;
		}
		free(p);
	}
	if (rc || off != len) {
		free(der);
		return rc ? rc : verr_set(err, VERR_INTERNAL, "stored CRL is incomplete");
	}
	free(c->der);
	c->der = der;
	c->der_len = len;
	uint8_t *d = NULL;
	size_t dl = 0;
	snprintf(key, sizeof(key), "crl/%s/delta", c->issuer);
	if ((rc = view_get(b->view, key, &d, &dl, err)))
		return rc;
	free(c->delta_der);
	c->delta_der = d;
	c->delta_len = dl;
	return 0;
}

static bool delta_enabled(const struct pki_state *s)
{
	return json_is_true(json_object_get(s->crl_cfg, "enable_delta"));
}

/* Build and store the delta CRL of one issuer: the revocations since the
 * last complete CRL, numbered after it, pointing at it. Caller holds
 * crl_lock, index loaded, complete CRL built or read. */
static int delta_build_one(struct pki_backend *b, struct pki_state *s, struct pki_issuer *iss,
			   struct pki_crl_index *c, struct verr *err)
{
	size_t k = 0;
	struct pki_revoked *v = malloc((c->n ? c->n : 1) * sizeof(*v));
	if (!v)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	bool disabled = json_is_true(json_object_get(s->crl_cfg, "disable"));
	for (size_t i = 0; i < c->n && !disabled; i++)
		if (c->base_count_valid ? i >= c->base_count
					: c->v[i].time >= c->base_time) /* same second: in both, harmless */
			v[k++] = c->v[i];
	pki__crl_sort(v, k);
	int64_t now = pki__now(b);
	struct pki_crl_opts o = {.delta_base = c->base_number};
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = pki__crl_encode_ext(iss, v, k, c->number + 1, now, now + crl_expiry(s), &o, &der,
				     &len, err);
	free(v);
	if (rc)
		return rc;
	char key[96];
	snprintf(key, sizeof(key), "crl/%s/delta", c->issuer);
	if ((rc = view_put(b->view, key, der, len, err))) {
		free(der);
		return rc;
	}
	free(c->delta_der);
	c->delta_der = der;
	c->delta_len = len;
	c->number++;
	return crl_meta_store(b, c, err);
}

/* Build and store the CRL of one issuer. Caller holds crl_lock, index loaded. */
static int crl_build_one(struct pki_backend *b, struct pki_state *s, struct pki_issuer *iss,
			 struct verr *err)
{
	struct pki_crl_index *c = index_for(b, iss->id);
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (!c->number && !c->der) {
		int rc = crl_read_stored(b, c, err);
		if (rc)
			return rc;
	}
	pki__crl_sort(c->v, c->n);
	int64_t now = pki__now(b);
	uint8_t *der = NULL;
	size_t len = 0;
	bool disabled = json_is_true(json_object_get(s->crl_cfg, "disable"));
	json_t *fresh = json_object_get(s->urls, "delta_crl_distribution_points");
	struct pki_crl_opts o = {.delta_base = -1, .freshest = delta_enabled(s) ? fresh : NULL};
	int rc = pki__crl_encode_ext(iss, c->v, disabled ? 0 : c->n, c->number + 1, now,
				     now + crl_expiry(s), &o, &der, &len, err);
	if (rc)
		return rc;
	free(c->der);
	c->der = der;
	c->der_len = len;
	c->number++;
	c->base_number = c->number;
	c->base_time = now;
	c->base_count = c->n;
	c->base_count_valid = true;
	if ((rc = crl_store(b, c, err)))
		return rc;
	return delta_enabled(s) ? delta_build_one(b, s, iss, c, err) : 0;
}

/* Rebuild iss's delta over its complete CRL (read, or built first when
 * there is none yet, which builds the delta too). Caller holds crl_lock,
 * index loaded. */
static int delta_refresh(struct pki_backend *b, struct pki_state *s, struct pki_issuer *iss,
			 struct verr *err)
{
	struct pki_crl_index *c = index_for(b, iss->id);
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = c->der ? 0 : crl_read_stored(b, c, err);
	if (rc)
		return rc;
	return c->der ? delta_build_one(b, s, iss, c, err) : crl_build_one(b, s, iss, err);
}

int pki__crl_rebuild_delta(struct pki_backend *b, struct verr *err)
{
	struct pki_state *s = pki__state_get(b);
	int rc = 0;
	if (!delta_enabled(s))
		goto out;
	pthread_mutex_lock(&b->crl_lock);
	rc = index_load(b, err);
	for (size_t i = 0; i < s->n_issuers && !rc; i++) {
		struct pki_issuer *iss = s->issuers[i];
		if (!iss->pkey)
			continue;
		rc = delta_refresh(b, s, iss, err);
	}
	pthread_mutex_unlock(&b->crl_lock);
out:
	pki__state_put(b, s);
	return rc;
}

int pki__crl_delta_get(struct pki_backend *b, const struct pki_issuer *iss, uint8_t **der,
		       size_t *len, struct verr *err)
{
	*der = NULL;
	*len = 0;
	struct pki_state *s = pki__state_get(b);
	bool on = delta_enabled(s);
	pki__state_put(b, s);
	if (!on)
		return verr_set(err, VERR_INVALID, "delta CRLs are not enabled (config/crl enable_delta)");
	/* reading the complete CRL loads the stored delta with it */
	uint8_t *full = NULL;
	size_t fl = 0;
	int rc = pki__crl_get(b, iss, &full, &fl, err);
	free(full);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->crl_lock);
	struct pki_crl_index *c = index_for(b, iss->id);
	bool missing = !c || !c->delta_der;
	pthread_mutex_unlock(&b->crl_lock);
	if (missing && (rc = pki__crl_rebuild_delta(b, err)))
		return rc;
	pthread_mutex_lock(&b->crl_lock);
	c = index_for(b, iss->id);
	if (c && c->delta_der && (*der = malloc(c->delta_len))) {
		memcpy(*der, c->delta_der, c->delta_len);
		*len = c->delta_len;
	}
	pthread_mutex_unlock(&b->crl_lock);
	return *der ? 0 : verr_set(err, VERR_INTERNAL, "no delta CRL available");
}

int pki__crl_rebuild(struct pki_backend *b, struct verr *err)
{
	struct pki_state *s = pki__state_get(b);
	pthread_mutex_lock(&b->crl_lock);
	int rc = index_load(b, err);
	for (size_t i = 0; i < s->n_issuers && !rc; i++)
		if (s->issuers[i]->pkey)
			rc = crl_build_one(b, s, s->issuers[i], err);
	pthread_mutex_unlock(&b->crl_lock);
	pki__state_put(b, s);
	return rc;
}

int pki__crl_get(struct pki_backend *b, const struct pki_issuer *iss, uint8_t **der, size_t *len,
		 struct verr *err)
{
	*der = NULL;
	*len = 0;
	pthread_mutex_lock(&b->crl_lock);
	struct pki_crl_index *c = index_for(b, iss->id);
	int rc = c ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && !c->der)
		rc = crl_read_stored(b, c, err);
	pthread_mutex_unlock(&b->crl_lock);
	if (!rc && !c->der) {
		/* first use: build it */
		rc = pki__crl_rebuild(b, err);
		pthread_mutex_lock(&b->crl_lock);
		c = index_for(b, iss->id);
		pthread_mutex_unlock(&b->crl_lock);
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&b->crl_lock);
	c = index_for(b, iss->id);
	if (c && c->der && (*der = malloc(c->der_len))) {
		memcpy(*der, c->der, c->der_len);
		*len = c->der_len;
	}
	pthread_mutex_unlock(&b->crl_lock);
	return *der ? 0 : verr_set(err, VERR_INTERNAL, "no CRL available");
}

/* ---- revoke ---- */

static int revoke_cert(struct pki_backend *b, X509 *x, struct logical_response *resp,
		       struct verr *err)
{
	char colon[PKI_SERIAL_HEX + 4], dash[PKI_SERIAL_HEX + 4];
	pki__serial_colon(X509_get0_serialNumber(x), colon, sizeof(colon));
	serial_dash(X509_get0_serialNumber(x), dash, sizeof(dash));
	struct pki_state *s = pki__state_get(b);
	int rc = 0;
	json_t *o = NULL;
	char key[PKI_SERIAL_HEX + 16];
	for (size_t i = 0; i < s->n_issuers; i++)
		if (X509_cmp(s->issuers[i]->cert, x) == 0) {
			rc = verr_set(err, VERR_INVALID,
				      "adding issuer (id: %s) to its own CRL is not allowed",
				      s->issuers[i]->id);
			goto out;
		}
	struct pki_issuer *iss = pki__issuer_of(s, x);
	if (!iss) {
		rc = verr_set(err, VERR_INVALID,
			      "unable to revoke certificate: it was not issued by an issuer of this mount");
		goto out;
	}
	snprintf(key, sizeof(key), "revoked/%s", dash);
	if ((rc = view_get_json(b->view, key, &o, err)))
		goto out;
	if (o) { /* already revoked: report the original time */
		int64_t t = json_integer_value(json_object_get(o, "revocation_time"));
		resp->data = json_pack("{s:I,s:o,s:s}", "revocation_time", (json_int_t)t,
				       "revocation_time_rfc3339", pki__rfc3339(t), "state", "revoked");
		goto out;
	}
	int64_t now = pki__now(b);
	int64_t exp = pki__asn1_time_unix(X509_get0_notAfter(x));
	if (exp < now) {
		logical_response_warn(resp, "certificate with serial %s has already expired; refusing "
					    "to add it to the CRL", colon);
		goto out;
	}
	o = json_pack("{s:s,s:I,s:s,s:I}", "serial_number", colon, "revocation_time",
		      (json_int_t)now, "issuer_id", iss->id, "expiration", (json_int_t)exp);
	if (!o) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&b->crl_lock);
	rc = view_put_json(b->view, key, o, err);
	if (rc)
		goto unlock;
	if (b->index_loaded) {
		if (index_add(b, iss->id, dash, now))
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	} else {
		rc = index_load(b, err); /* reads the new entry too */
	}
	bool auto_rebuild = json_is_true(json_object_get(s->crl_cfg, "auto_rebuild"));
	if (!rc && !auto_rebuild) {
		rc = crl_build_one(b, s, iss, err);
	} else if (!rc && delta_enabled(s)) {
		/* auto_rebuild defers the complete CRL; the delta carries it now */
		rc = delta_refresh(b, s, iss, err);
	}
unlock:
	pthread_mutex_unlock(&b->crl_lock);
	if (!rc)
		resp->data = json_pack("{s:I,s:o,s:s}", "revocation_time", (json_int_t)now,
				       "revocation_time_rfc3339", pki__rfc3339(now), "state", "revoked");
out:
	json_decref(o);
	pki__state_put(b, s);
	return rc;
}

int pki__revoke_serial(struct pki_backend *b, const char *serial, struct logical_response *resp,
		       struct verr *err)
{
	char dash[PKI_SERIAL_HEX + 4];
	int rc = pki__serial_normalise(serial, dash, sizeof(dash), err);
	if (rc)
		return rc;
	X509 *x = NULL;
	if ((rc = pki__cert_load(b, dash, &x, err)))
		return rc;
	if (!x)
		return verr_set(err, VERR_INVALID, "certificate with serial %s not found.", serial);
	rc = revoke_cert(b, x, resp, err);
	X509_free(x);
	return rc;
}

static int do_revoke(struct logical_request *req, struct logical_response *resp, bool with_key,
		     struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *serial = request_str(req, "serial_number");
	const char *pem = request_str(req, "certificate");
	X509 *x = NULL;
	int rc = 0;
	if (serial && *serial && pem && *pem)
		return verr_set(err, VERR_INVALID,
				"must provide either the certificate or the serial to revoke; not both");
	if (pem && *pem) {
		x = pki__x509_from_pem(pem);
		if (!x)
			return verr_set(err, VERR_INVALID, "certificate could not be parsed");
	} else if (serial && *serial) {
		char dash[PKI_SERIAL_HEX + 4];
		if ((rc = pki__serial_normalise(serial, dash, sizeof(dash), err)) ||
		    (rc = pki__cert_load(b, dash, &x, err)))
			return rc;
		if (!x)
			return verr_set(err, VERR_INVALID, "certificate with serial %s not found.", serial);
	} else {
		return verr_set(err, VERR_INVALID, "The serial number must be provided");
	}
	if (with_key) {
		const char *kp = request_str(req, "private_key");
		EVP_PKEY *k = kp && *kp ? pki__key_from_pem(kp, strlen(kp)) : NULL;
		ERR_clear_error();
		if (!k) {
			X509_free(x);
			return verr_set(err, VERR_INVALID, "failed to parse the private key");
		}
		int eq = EVP_PKEY_eq(k, X509_get0_pubkey(x));
		EVP_PKEY_free(k);
		if (eq != 1) {
			X509_free(x);
			return verr_set(err, VERR_INVALID, "failed to validate private key match with "
							   "the certificate's public key");
		}
	}
	rc = revoke_cert(b, x, resp, err);
	X509_free(x);
	return rc;
}

static int path_revoke(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return do_revoke(req, resp, false, err);
}

static int path_revoke_with_key(struct logical_request *req, struct logical_response *resp,
				struct verr *err)
{
	return do_revoke(req, resp, true, err);
}

/* ---- reads ---- */

static char *crl_pem(const uint8_t *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio(bio, "X509 CRL", "", der, (long)len)) {
		BIO_free(bio);
		return NULL;
	}
	char *d = NULL;
	long n = BIO_get_mem_data(bio, &d);
	char *s = strndup(d, (size_t)n);
	BIO_free(bio);
	if (s) {
		size_t l = strlen(s);
		while (l && s[l - 1] == '\n')
			s[--l] = '\0';
	}
	return s;
}

static int crl_for_ref(struct logical_request *req, const char *ref, bool delta, uint8_t **der,
		       size_t *len, struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *iss = pki__issuer_find(s, ref);
	int rc;
	if (!iss)
		rc = verr_set(err, VERR_INVALID, "unable to fetch the issuer: no default issuer is configured");
	else if (!iss->pkey)
		rc = verr_set(err, VERR_INVALID, "the issuer has no key and signs no CRL");
	else if (delta)
		rc = pki__crl_delta_get(b, iss, der, len, err);
	else
		rc = pki__crl_get(b, iss, der, len, err);
	pki__state_put(b, s);
	return rc;
}

static int path_crl(struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	const char *rp = req->rel_path ? req->rel_path : "";
	size_t rl = strlen(rp);
	bool pem = rl >= 4 && !strcmp(rp + rl - 4, "/pem");
	bool delta = strstr(rp, "crl/delta") != NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = crl_for_ref(req, request_str(req, "issuer_ref"), delta, &der, &len, err);
	if (rc)
		return rc;
	if (!pem)
		return pki__raw_reply(resp, der, len, "application/pkix-crl");
	char *p = crl_pem(der, len);
	free(der);
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t pl = strlen(p);
	return pki__raw_reply(resp, p, pl, "application/x-pem-file");
}

static int path_crl_rotate(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	int rc = pki__crl_rebuild(req->backend, err);
	if (!rc)
		resp->data = json_pack("{s:b}", "success", 1);
	return rc;
}

static int path_crl_rotate_delta(struct logical_request *req, struct logical_response *resp,
				 struct verr *err)
{
	int rc = pki__crl_rebuild_delta(req->backend, err);
	if (!rc)
		resp->data = json_pack("{s:b}", "success", 1);
	return rc;
}

static int path_cert_read(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	struct pki_backend *b = req->backend;
	const char *serial = request_str(req, "serial");
	if (!strcmp(serial, "ca") || !strcmp(serial, "ca_chain")) {
		struct pki_state *s = pki__state_get(b);
		int rc = 0;
		if (!s->def) {
			rc = verr_set(err, VERR_INVALID, "no default issuer currently configured");
		} else if (!strcmp(serial, "ca")) {
			resp->data = json_pack("{s:s,s:O,s:s}", "certificate", s->def->cert_pem,
					       "ca_chain", s->def->chain, "issuer_id", s->def->id);
		} else {
			struct buf bb;
			buf_init(&bb, 4096);
			size_t i;
			json_t *v;
			json_array_foreach(s->def->chain, i, v)
			{
				buf_str(&bb, json_string_value(v));
				buf_char(&bb, '\n');
			}
			char *all = buf_take(&bb, NULL);
			resp->data = json_pack("{s:s?,s:O}", "certificate", all, "ca_chain",
					       s->def->chain);
			free(all);
		}
		pki__state_put(b, s);
		return rc;
	}
	if (!strcmp(serial, "crl")) {
		uint8_t *der = NULL;
		size_t len = 0;
		int rc = crl_for_ref(req, "default", false, &der, &len, err);
		if (rc)
			return rc;
		char *p = crl_pem(der, len);
		free(der);
		resp->data = json_pack("{s:s?}", "certificate", p);
		free(p);
		return 0;
	}
	char dash[PKI_SERIAL_HEX + 4];
	int rc = pki__serial_normalise(serial, dash, sizeof(dash), err);
	if (rc)
		return rc;
	X509 *x = NULL;
	if ((rc = pki__cert_load(b, dash, &x, err)))
		return rc;
	if (!x)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	char *pem = pki__x509_to_pem(x);
	json_t *r = NULL;
	char key[PKI_SERIAL_HEX + 16];
	snprintf(key, sizeof(key), "revoked/%s", dash);
	rc = view_get_json(b->view, key, &r, err);
	int64_t t = r ? json_integer_value(json_object_get(r, "revocation_time")) : 0;
	struct pki_state *s = pki__state_get(b);
	struct pki_issuer *iss = pki__issuer_of(s, x);
	if (!rc)
		resp->data = json_pack("{s:s?,s:I,s:s,s:s}", "certificate", pem, "revocation_time",
				       (json_int_t)t, "revocation_time_rfc3339",
				       t ? json_string_value(json_object_get(r, "revocation_time_rfc3339"))
						   ?: ""
					 : "",
				       "issuer_id", iss ? iss->id : "");
	if (!rc && t)
		json_object_set_new(resp->data, "revocation_time_rfc3339", pki__rfc3339(t));
	pki__state_put(b, s);
	json_decref(r);
	free(pem);
	X509_free(x);
	return rc;
}

static int list_prefix(struct logical_request *req, struct logical_response *resp,
		       const char *prefix, struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, prefix, &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	resp->data = json_pack("{s:o}", "keys", arr);
	return 0;
}

static int path_certs_list(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	return list_prefix(req, resp, "certs/", err);
}

static int path_revoked_list(struct logical_request *req, struct logical_response *resp,
			     struct verr *err)
{
	return list_prefix(req, resp, "revoked/", err);
}

/* ---- config/crl ---- */

static int crl_cfg_read(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	resp->data = json_deep_copy(s->crl_cfg);
	pki__state_put(b, s);
	return 0;
}

static int crl_cfg_write(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	struct pki_backend *b = req->backend;
	struct pki_state *s = pki__state_get(b);
	json_t *o = json_deep_copy(s->crl_cfg);
	pki__state_put(b, s);
	const char *durs[] = {"expiry", "auto_rebuild_grace_period", "delta_rebuild_interval",
			      "ocsp_expiry"};
	for (int i = 0; i < 4; i++) {
		if (!request_has(req, durs[i]))
			continue;
		const char *v = request_str(req, durs[i]);
		int64_t secs;
		if (duration_parse(&secs, v, err)) {
			json_decref(o);
			return VERR_INVALID;
		}
		json_object_set_new(o, durs[i], json_string(v));
	}
	const char *bools[] = {"disable", "auto_rebuild", "enable_delta", "ocsp_disable"};
	for (int i = 0; i < 4; i++)
		if (request_has(req, bools[i]))
			json_object_set_new(o, bools[i], json_boolean(request_bool(req, bools[i])));
	if (json_is_true(json_object_get(o, "enable_delta")) &&
	    !json_is_true(json_object_get(o, "auto_rebuild"))) {
		json_decref(o);
		return verr_set(err, VERR_INVALID,
				"Delta CRLs cannot be enabled when auto rebuilding is disabled as the "
				"complete CRL is always regenerated!");
	}
	pthread_mutex_lock(&b->cfg_lock);
	int rc = view_put_json(b->view, "config/crl", o, err);
	if (!rc)
		rc = pki__state_reload(b, err);
	pthread_mutex_unlock(&b->cfg_lock);
	json_decref(o);
	if (!rc)
		rc = pki__crl_rebuild(b, err);
	return rc;
}

/* ---- tidy ---- */

struct tidy_ctx {
	struct pki_backend *b;
	int64_t cutoff;
	bool certs, revoked;
	int64_t deleted_certs, deleted_revoked, checked;
	struct verr *err;
	int rc;
};

static bool tidy_cancelled(struct pki_backend *b)
{
	pthread_mutex_lock(&b->role_lock);
	bool c = b->tidy_cancel;
	pthread_mutex_unlock(&b->role_lock);
	return c;
}

static json_t *tidy_status_new(const char *state, bool certs, bool revoked, int64_t safety,
			       int64_t started)
{
	return json_pack("{s:s,s:b,s:b,s:I,s:o,s:n,s:I,s:I,s:n}", "state", state, "tidy_cert_store",
			 certs, "tidy_revoked_certs", revoked, "safety_buffer", (json_int_t)safety,
			 "time_started", pki__rfc3339(started), "time_finished",
			 "cert_store_deleted_count", (json_int_t)0, "revoked_cert_deleted_count",
			 (json_int_t)0, "error");
}

int pki__tidy_run(struct pki_backend *b, bool certs, bool revoked, int64_t safety,
		  bool *started, struct verr *err)
{
	int64_t now = pki__now(b), cutoff = now - safety;
	int64_t n_certs = 0, n_revoked = 0, checked = 0;
	char **keys = NULL;
	size_t n = 0;
	int rc = 0;
	bool cancelled = false;
	*started = false;
	json_t *st = tidy_status_new("Running", certs, revoked, safety, now);
	if (!st)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_lock(&b->role_lock);
	if (b->tidy_running) {
		pthread_mutex_unlock(&b->role_lock);
		json_decref(st);
		return 0;
	}
	b->tidy_running = true;
	b->tidy_cancel = false;
	json_decref(b->tidy_status);
	b->tidy_status = json_incref(st);
	pthread_mutex_unlock(&b->role_lock);
	*started = true;
	if (revoked) {
		if ((rc = view_list(b->view, "revoked/", &keys, &n, err)))
			goto done;
		for (size_t i = 0; i < n && !rc && !(cancelled = tidy_cancelled(b)); i++) {
			char key[PKI_SERIAL_HEX + 80];
			json_t *o = NULL;
			snprintf(key, sizeof(key), "revoked/%s", keys[i]);
			if ((rc = view_get_json(b->view, key, &o, err)))
				break;
			int64_t exp = o ? json_integer_value(json_object_get(o, "expiration")) : 0;
			json_decref(o);
			checked++;
			if (o && exp < cutoff) {
				rc = view_delete(b->view, key, err);
				snprintf(key, sizeof(key), "certs/%s", keys[i]);
				if (!rc)
					rc = view_delete(b->view, key, err);
				n_revoked++;
			}
		}
		physical_list_free(keys, n);
		keys = NULL;
		n = 0;
	}
	if (!rc && certs && !cancelled) {
		if ((rc = view_list(b->view, "certs/", &keys, &n, err)))
			goto done;
		for (size_t i = 0; i < n && !rc && !(cancelled = tidy_cancelled(b)); i++) {
			X509 *x = NULL;
			if ((rc = pki__cert_load(b, keys[i], &x, err)))
				break;
			checked++;
			if (x && pki__asn1_time_unix(X509_get0_notAfter(x)) < cutoff) {
				char key[PKI_SERIAL_HEX + 80];
				json_t *o = NULL;
				snprintf(key, sizeof(key), "revoked/%s", keys[i]);
				rc = view_get_json(b->view, key, &o, err);
				/* a revoked entry stays until tidy_revoked_certs removes it */
				if (!rc && !o) {
					snprintf(key, sizeof(key), "certs/%s", keys[i]);
					rc = view_delete(b->view, key, err);
					n_certs++;
				}
				json_decref(o);
			}
			X509_free(x);
		}
		physical_list_free(keys, n);
	}
done:
	pthread_mutex_lock(&b->crl_lock);
	pki__crl_index_free(b);
	pthread_mutex_unlock(&b->crl_lock);
	if (!rc && revoked && n_revoked)
		rc = pki__crl_rebuild(b, err);
	pthread_mutex_lock(&b->role_lock);
	json_object_set_new(st, "state", json_string(rc ? "Error" : cancelled ? "Cancelled" : "Finished"));
	json_object_set_new(st, "time_finished", pki__rfc3339(pki__now(b)));
	json_object_set_new(st, "cert_store_deleted_count", json_integer(n_certs));
	json_object_set_new(st, "revoked_cert_deleted_count", json_integer(n_revoked));
	json_object_set_new(st, "current_cert_store_count", json_integer(checked));
	json_object_set_new(st, "error", rc && err ? json_string(err->msg) : json_null());
	b->tidy_running = false;
	b->tidy_cancel = false;
	pthread_mutex_unlock(&b->role_lock);
	json_decref(st);
	return rc;
}

static int path_tidy(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	bool certs = request_bool(req, "tidy_cert_store");
	bool revoked = request_bool(req, "tidy_revoked_certs") ||
		       request_bool(req, "tidy_revoked_cert_issuer_associations");
	if (!certs && !revoked)
		return verr_set(err, VERR_INVALID, "at least one tidy operation must be enabled");
	int64_t safety = request_duration(req, "safety_buffer");
	if (safety < 1)
		return verr_set(err, VERR_INVALID, "safety_buffer must be greater than zero");
	bool started = false;
	int rc = pki__tidy_run(req->backend, certs, revoked, safety, &started, err);
	if (rc)
		return rc;
	if (!started) {
		logical_response_warn(resp, "Tidy operation already in progress.");
		return 0;
	}
	resp->status = 202;
	logical_response_warn(resp, "Tidy operation successfully started. Any information from the "
				    "operation will be printed to Vault's server logs.");
	return 0;
}

static int path_tidy_status(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->role_lock);
	resp->data = b->tidy_status ? json_deep_copy(b->tidy_status)
				    : json_pack("{s:s}", "state", "Inactive");
	if (resp->data)
		json_object_set_new(resp->data, "last_auto_tidy_finished",
				    pki__rfc3339(b->auto_tidy_last));
	pthread_mutex_unlock(&b->role_lock);
	return 0;
}

/* Vault: cancels at the next checkpoint (between two entries). */
static int path_tidy_cancel(struct logical_request *req, struct logical_response *resp,
			    struct verr *err)
{
	struct pki_backend *b = req->backend;
	pthread_mutex_lock(&b->role_lock);
	bool running = b->tidy_running;
	if (running) {
		b->tidy_cancel = true;
		json_object_set_new(b->tidy_status, "state", json_string("Cancelling"));
	}
	pthread_mutex_unlock(&b->role_lock);
	if (!running) {
		logical_response_warn(resp, "Tidy operation cannot be cancelled as none is currently "
					    "running.");
		return 0;
	}
	return path_tidy_status(req, resp, err);
}

/* ---- config/auto-tidy ---- */

static const char *const auto_tidy_bools[] = {
	"enabled", "tidy_cert_store", "tidy_revoked_certs", "tidy_revoked_cert_issuer_associations",
	"tidy_expired_issuers", "tidy_move_legacy_ca_bundle", "tidy_revocation_queue",
	"tidy_cross_cluster_revoked_certs", "maintain_stored_certificate_counts",
	"publish_stored_certificate_count_metrics"};
static const char *const auto_tidy_durs[] = {"interval_duration", "safety_buffer",
					     "issuer_safety_buffer", "revocation_queue_safety_buffer"};

/* The stored config over Vault's defaults. */
static int auto_tidy_load(struct pki_backend *b, json_t **out, struct verr *err)
{
	json_t *o = json_pack("{s:b,s:I,s:b,s:b,s:b,s:b,s:I,s:I,s:s,s:b,s:b,s:b,s:b,s:I,s:b}", "enabled",
			      0, "interval_duration", (json_int_t)43200, "tidy_cert_store", 0,
			      "tidy_revoked_certs", 0, "tidy_revoked_cert_issuer_associations", 0,
			      "tidy_expired_issuers", 0, "safety_buffer", (json_int_t)259200,
			      "issuer_safety_buffer", (json_int_t)31536000, "pause_duration", "0s",
			      "maintain_stored_certificate_counts", 0,
			      "publish_stored_certificate_count_metrics", 0, "tidy_move_legacy_ca_bundle",
			      0, "tidy_revocation_queue", 0, "revocation_queue_safety_buffer",
			      (json_int_t)172800, "tidy_cross_cluster_revoked_certs", 0);
	json_t *st = NULL;
	int rc = o ? view_get_json(b->view, "config/auto-tidy", &st, err)
		   : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && st)
		json_object_update(o, st);
	json_decref(st);
	if (rc) {
		json_decref(o);
		o = NULL;
	}
	*out = o;
	return rc;
}

static int auto_tidy_read(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return auto_tidy_load(req->backend, &resp->data, err);
}

static int auto_tidy_write(struct logical_request *req, struct logical_response *resp,
			   struct verr *err)
{
	struct pki_backend *b = req->backend;
	json_t *o = NULL;
	int rc = auto_tidy_load(b, &o, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(auto_tidy_bools) / sizeof(*auto_tidy_bools); i++)
		if (request_has(req, auto_tidy_bools[i]))
			json_object_set_new(o, auto_tidy_bools[i],
					    json_boolean(request_bool(req, auto_tidy_bools[i])));
	for (size_t i = 0; i < sizeof(auto_tidy_durs) / sizeof(*auto_tidy_durs); i++) {
		if (!request_has(req, auto_tidy_durs[i]))
			continue;
		int64_t v = request_duration(req, auto_tidy_durs[i]);
		if (i == 0 ? v < 0 : v < 1) {
			rc = verr_set(err, VERR_INVALID,
				      i == 0 ? "given %s must be greater than or equal to zero seconds; got: %lld"
					     : "given %s must be at least one second; got: %lld",
				      auto_tidy_durs[i], (long long)v);
			goto out;
		}
		json_object_set_new(o, auto_tidy_durs[i], json_integer(v));
	}
	if (request_has(req, "pause_duration")) {
		int64_t v;
		const char *pd = request_str(req, "pause_duration");
		struct verr pe = {0};
		if (duration_parse(&v, pd, &pe)) {
			rc = verr_set(err, VERR_INVALID, "unable to parse given pause_duration: %s", pe.msg);
			goto out;
		}
		json_object_set_new(o, "pause_duration", json_string(pd));
	}
	bool any = false;
	for (size_t i = 1; i < 8; i++)
		any |= json_is_true(json_object_get(o, auto_tidy_bools[i]));
	if (json_is_true(json_object_get(o, "enabled")) && !any) {
		rc = verr_set(err, VERR_INVALID,
			      "Auto-tidy enabled but no tidy operations were requested. Enable at least one "
			      "tidy operation to be run (tidy_cert_store / tidy_revoked_certs / "
			      "tidy_revoked_cert_issuer_associations / tidy_expired_issuers / "
			      "tidy_move_legacy_ca_bundle / tidy_revocation_queue / "
			      "tidy_cross_cluster_revoked_certs).");
		goto out;
	}
	if (json_is_true(json_object_get(o, "publish_stored_certificate_count_metrics")) &&
	    !json_is_true(json_object_get(o, "maintain_stored_certificate_counts"))) {
		rc = verr_set(err, VERR_INVALID,
			      "Can not publish a running storage metrics count to metrics without first "
			      "maintaining that count.  Enable `maintain_stored_certificate_counts` to "
			      "enable `publish_stored_certificate_count_metrics.");
		goto out;
	}
	if ((rc = view_put_json(b->view, "config/auto-tidy", o, err)))
		goto out;
	resp->data = o;
	o = NULL; /* transferred */
out:
	json_decref(o);
	return rc;
}

int pki__auto_tidy(struct pki_backend *b, struct verr *err)
{
	json_t *o = NULL;
	int rc = auto_tidy_load(b, &o, err);
	if (rc)
		return rc;
	int64_t now = pki__now(b);
	pthread_mutex_lock(&b->role_lock);
	bool due = now - b->auto_tidy_last >= json_integer_value(json_object_get(o, "interval_duration"));
	pthread_mutex_unlock(&b->role_lock);
	bool certs = json_is_true(json_object_get(o, "tidy_cert_store"));
	bool revoked = json_is_true(json_object_get(o, "tidy_revoked_certs")) ||
		       json_is_true(json_object_get(o, "tidy_revoked_cert_issuer_associations"));
	if (json_is_true(json_object_get(o, "enabled")) && due && (certs || revoked)) {
		bool started = false;
		rc = pki__tidy_run(b, certs, revoked,
				   json_integer_value(json_object_get(o, "safety_buffer")), &started, err);
		if (started) { /* the interval runs from the end of one to the next (Vault) */
			pthread_mutex_lock(&b->role_lock);
			b->auto_tidy_last = pki__now(b);
			pthread_mutex_unlock(&b->role_lock);
		}
	}
	json_decref(o);
	return rc;
}

static const struct field_def revoke_fields[] = {
	{"serial_number", FT_STRING, "", "", false},
	{"certificate", FT_STRING, "", "", false},
	{"private_key", FT_STRING, "", "", false},
	{NULL},
};

static const struct field_def serial_fields[] = {
	{"serial", FT_STRING, NULL, "", true},
	{NULL},
};

static const struct field_def crl_fields[] = {
	{"issuer_ref", FT_STRING, "default", "", false},
	{NULL},
};

static const struct field_def crl_cfg_fields[] = {
	{"expiry", FT_STRING, "72h", "", false},
	{"disable", FT_BOOL, "false", "", false},
	{"ocsp_disable", FT_BOOL, "false", "", false},
	{"ocsp_expiry", FT_STRING, "12h", "", false},
	{"auto_rebuild", FT_BOOL, "false", "", false},
	{"auto_rebuild_grace_period", FT_STRING, "12h", "", false},
	{"enable_delta", FT_BOOL, "false", "", false},
	{"delta_rebuild_interval", FT_STRING, "15m", "", false},
	{NULL},
};

static const struct field_def tidy_fields[] = {
	{"tidy_cert_store", FT_BOOL, "false", "", false},
	{"tidy_revoked_certs", FT_BOOL, "false", "", false},
	{"tidy_revoked_cert_issuer_associations", FT_BOOL, "false", "", false},
	{"tidy_expired_issuers", FT_BOOL, "false", "", false},
	{"safety_buffer", FT_DURATION, "259200", "", false},
	{"pause_duration", FT_STRING, "0s", "", false},
	{NULL},
};

static const struct field_def auto_tidy_fields[] = {
	{"enabled", FT_BOOL, "false", "", false},
	{"interval_duration", FT_DURATION, "43200", "", false},
	{"tidy_cert_store", FT_BOOL, "false", "", false},
	{"tidy_revoked_certs", FT_BOOL, "false", "", false},
	{"tidy_revoked_cert_issuer_associations", FT_BOOL, "false", "", false},
	{"tidy_expired_issuers", FT_BOOL, "false", "", false},
	{"tidy_move_legacy_ca_bundle", FT_BOOL, "false", "", false},
	{"tidy_revocation_queue", FT_BOOL, "false", "", false},
	{"tidy_cross_cluster_revoked_certs", FT_BOOL, "false", "", false},
	{"tidy_acme", FT_BOOL, "false", "", false},
	{"safety_buffer", FT_DURATION, "259200", "", false},
	{"issuer_safety_buffer", FT_DURATION, "31536000", "", false},
	{"revocation_queue_safety_buffer", FT_DURATION, "172800", "", false},
	{"acme_account_safety_buffer", FT_DURATION, "2592000", "", false},
	{"pause_duration", FT_STRING, "0s", "", false},
	{"maintain_stored_certificate_counts", FT_BOOL, "false", "", false},
	{"publish_stored_certificate_count_metrics", FT_BOOL, "false", "", false},
	{NULL},
};

static const struct path_def crl_paths[] = {
	{.pattern = "revoke", .fields = revoke_fields, .ops = {{LOP_UPDATE, path_revoke}},
	 .help = "Revoke a certificate by serial number (or PEM)."},
	{.pattern = "revoke-with-key", .fields = revoke_fields,
	 .ops = {{LOP_UPDATE, path_revoke_with_key}},
	 .help = "Revoke a certificate, proving possession of its private key."},
	{.pattern = "certs/revoked/?", .ops = {{LOP_LIST, path_revoked_list}},
	 .help = "List revoked certificates' serials."},
	{.pattern = "certs/?", .ops = {{LOP_LIST, path_certs_list}},
	 .help = "List stored certificates' serials."},
	{.pattern = "cert/{serial}", .fields = serial_fields, .ops = {{LOP_READ, path_cert_read}},
	 .unauthenticated = true, .help = "Read a certificate by serial (or ca, ca_chain, crl)."},
	{.pattern = "crl", .fields = crl_fields, .ops = {{LOP_READ, path_crl}},
	 .unauthenticated = true, .help = "The default issuer's CRL (DER)."},
	{.pattern = "crl/pem", .fields = crl_fields, .ops = {{LOP_READ, path_crl}},
	 .unauthenticated = true, .help = "The default issuer's CRL (PEM)."},
	{.pattern = "issuer/{issuer_ref}/crl", .fields = crl_fields, .ops = {{LOP_READ, path_crl}},
	 .unauthenticated = true, .help = "An issuer's CRL."},
	{.pattern = "issuer/{issuer_ref}/crl/der", .fields = crl_fields,
	 .ops = {{LOP_READ, path_crl}}, .unauthenticated = true, .help = "An issuer's CRL (DER)."},
	{.pattern = "issuer/{issuer_ref}/crl/pem", .fields = crl_fields,
	 .ops = {{LOP_READ, path_crl}}, .unauthenticated = true, .help = "An issuer's CRL (PEM)."},
	{.pattern = "crl/delta", .fields = crl_fields, .ops = {{LOP_READ, path_crl}},
	 .unauthenticated = true, .help = "The default issuer's delta CRL (DER)."},
	{.pattern = "crl/delta/pem", .fields = crl_fields, .ops = {{LOP_READ, path_crl}},
	 .unauthenticated = true, .help = "The default issuer's delta CRL (PEM)."},
	{.pattern = "issuer/{issuer_ref}/crl/delta", .fields = crl_fields,
	 .ops = {{LOP_READ, path_crl}}, .unauthenticated = true, .help = "An issuer's delta CRL."},
	{.pattern = "issuer/{issuer_ref}/crl/delta/der", .fields = crl_fields,
	 .ops = {{LOP_READ, path_crl}}, .unauthenticated = true,
	 .help = "An issuer's delta CRL (DER)."},
	{.pattern = "issuer/{issuer_ref}/crl/delta/pem", .fields = crl_fields,
	 .ops = {{LOP_READ, path_crl}}, .unauthenticated = true,
	 .help = "An issuer's delta CRL (PEM)."},
	{.pattern = "crl/rotate-delta",
	 .ops = {{LOP_READ, path_crl_rotate_delta}, {LOP_UPDATE, path_crl_rotate_delta}},
	 .help = "Rebuild every issuer's delta CRL now."},
	{.pattern = "crl/rotate", .ops = {{LOP_READ, path_crl_rotate}, {LOP_UPDATE, path_crl_rotate}},
	 .help = "Rebuild every issuer's CRL now."},
	{.pattern = "config/crl", .fields = crl_cfg_fields,
	 .ops = {{LOP_READ, crl_cfg_read}, {LOP_UPDATE, crl_cfg_write}},
	 .help = "CRL settings: expiry, disable, auto_rebuild."},
	{.pattern = "tidy", .fields = tidy_fields, .ops = {{LOP_UPDATE, path_tidy}},
	 .help = "Remove expired certificates from storage and the CRL."},
	{.pattern = "tidy-status", .ops = {{LOP_READ, path_tidy_status}},
	 .help = "The last tidy run."},
	{.pattern = "tidy-cancel", .ops = {{LOP_UPDATE, path_tidy_cancel}},
	 .help = "Cancel the running tidy at its next checkpoint."},
	{.pattern = "config/auto-tidy", .fields = auto_tidy_fields,
	 .ops = {{LOP_READ, auto_tidy_read}, {LOP_UPDATE, auto_tidy_write}},
	 .help = "Periodic tidy: enabled, interval_duration and the tidy fields."},
	{NULL},
};

const struct path_def *pki__crl_paths(void)
{
	return crl_paths;
}
