/*
 * common.c - small helpers of the PKI engine: serial number spellings
 * (colon hex in responses, dash hex in storage keys), PEM/DER/base64
 * conversions of certificates, ASN.1 time to unix seconds, and the string
 * list and time fields of responses.
 */
#include "secrets/pki/pki_int.h"

#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/timefmt.h"

void pki__serial_colon(const ASN1_INTEGER *ai, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *d = ASN1_STRING_get0_data(ai);
	int n = ASN1_STRING_length(ai);
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n && o + 4 <= cap; i++) {
		if (i)
			out[o++] = ':';
		out[o++] = hex[d[i] >> 4];
		out[o++] = hex[d[i] & 15];
	}
	out[o < cap ? o : cap - 1] = '\0';
}

int pki__serial_normalise(const char *in, char *out, size_t cap, struct verr *err)
{
	size_t o = 0, digits = 0;
	if (!in || !*in)
		return verr_set(err, VERR_INVALID, "The serial number must be provided");
	for (const char *p = in; *p; p++) {
		if (*p == ':' || *p == '-') {
			if (digits != 2)
				return verr_set(err, VERR_INVALID, "invalid serial number: %.64s", in);
			if (o + 1 >= cap)
				return verr_set(err, VERR_INVALID, "serial number too long");
			out[o++] = '-';
			digits = 0;
			continue;
		}
		if (!isxdigit((unsigned char)*p))
			return verr_set(err, VERR_INVALID, "invalid serial number: %.64s", in);
		if (o + 1 >= cap)
			return verr_set(err, VERR_INVALID, "serial number too long");
		out[o++] = (char)tolower((unsigned char)*p);
		digits++;
	}
	if (digits != 2)
		return verr_set(err, VERR_INVALID, "invalid serial number: %.64s", in);
	out[o] = '\0';
	return 0;
}

char *pki__b64(const uint8_t *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	int w = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	s[w < 0 ? 0 : w] = '\0';
	return s;
}

static char *bio_string(BIO *bio)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
		/* Vault's PEM fields carry no trailing newline */
		while (n > 0 && s[n - 1] == '\n')
			s[--n] = '\0';
	}
	BIO_free(bio);
	return s;
}

char *pki__x509_to_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509(bio, x)) {
		BIO_free(bio);
		return NULL;
	}
	return bio_string(bio);
}

char *pki__x509_to_der_b64(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	if (n <= 0)
		return NULL;
	char *s = pki__b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

STACK_OF(X509) *pki__pem_certs(const char *pem)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!sk || !bio) {
		sk_X509_free(sk);
		BIO_free(bio);
		return NULL;
	}
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x))
			X509_free(x);
	ERR_clear_error();
	BIO_free(bio);
	return sk;
}

X509 *pki__x509_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

X509 *pki__x509_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	return d2i_X509(NULL, &p, (long)len);
}

int64_t pki__asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

bool pki__self_signed(X509 *x)
{
	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0)
		return false;
	EVP_PKEY *pk = X509_get0_pubkey(x);
	bool ok = pk && X509_verify(x, pk) == 1;
	ERR_clear_error();
	return ok;
}

json_t *pki__strlist(json_t *v)
{
	json_t *out = json_array();
	if (!out || !v)
		return out;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		while (*s) {
			const char *e = strchr(s, ',');
			size_t l = e ? (size_t)(e - s) : strlen(s);
			while (l && isspace((unsigned char)*s)) {
				s++;
				l--;
			}
			while (l && isspace((unsigned char)s[l - 1]))
				l--;
			if (l)
				json_array_append_new(out, json_stringn(s, l));
			if (!e)
				break;
			s = e + 1;
		}
		return out;
	}
	size_t i;
	json_t *it;
	json_array_foreach(v, i, it)
	{
		if (json_is_string(it) && *json_string_value(it))
			json_array_append(out, it);
	}
	return out;
}

json_t *pki__rfc3339(int64_t secs)
{
	char buf[TIMEFMT_MAX];
	if (!timefmt_rfc3339(buf, secs, 0, TIMEFMT_SECONDS))
		return json_string("");
	return json_string(buf);
}

int64_t pki__now(const struct pki_backend *b)
{
	return sysview_now(b ? b->sys : NULL);
}

int pki__raw_reply(struct logical_response *resp, void *p, size_t n, const char *ctype)
{
	resp->raw = true;
	resp->raw_body = p; /* transferred */
	resp->raw_len = n;
	resp->raw_content_type = strdup(ctype);
	return resp->raw_content_type ? 0 : VERR_INTERNAL;
}
