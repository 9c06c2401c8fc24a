/*
 * sigv4.c - AWS Signature Version 4 request signing (sigv4.h).
 *
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n\n SIGNED \n hex(sha256(body))
 *   string to sign    = "AWS4-HMAC-SHA256" \n DATE \n SCOPE \n hex(sha256(canonical))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, day), region), service), "aws4_request")
 *
 * The canonical forms follow botocore's SigV4Auth (the reference the unit
 * test compares against): the path is percent-encoded keeping '/' and '~'
 * (an already encoded '%' is encoded again, as AWS expects for every
 * service but S3), the query pairs are sorted as given, header values are
 * trimmed with inner whitespace collapsed.
 */
#include "util/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/secmem.h"

#define MAX_SIGNED 16

static void sha256_hex(char out[65], const void *p, size_t n)
{
	uint8_t d[32];
	unsigned int dl = 0;
	EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int hmac(uint8_t out[32], const void *key, size_t klen, const char *msg, size_t mlen)
{
	unsigned int ol = 0;
	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &ol) && ol == 32
		       ? 0
		       : -1;
}

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

static void uri_encode_path(struct buf *b, const char *path)
{
	if (!path || !*path) {
		buf_char(b, '/');
		return;
	}
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (unreserved(*p) || *p == '/')
			buf_char(b, (char)*p);
		else
			buf_printf(b, "%%%02X", *p);
	}
}

struct qpair {
	const char *k, *v;
	size_t kl, vl;
};

static int qpair_cmp(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	size_t n = x->kl < y->kl ? x->kl : y->kl;
	int c = memcmp(x->k, y->k, n);
	if (c || x->kl != y->kl)
		return c ? c : (x->kl < y->kl ? -1 : 1);
	n = x->vl < y->vl ? x->vl : y->vl;
	c = memcmp(x->v, y->v, n);
	if (c || x->vl == y->vl)
		return c;
	return x->vl < y->vl ? -1 : 1;
}

static int canonical_query(struct buf *b, const char *q)
{
	if (!q || !*q)
		return 0;
	size_t n = 1;
	for (const char *p = q; *p; p++)
		n += *p == '&';
	struct qpair *pairs = calloc(n, sizeof(*pairs));
	if (!pairs)
		return -1;
	size_t i = 0;
	const char *s = q;
	for (;;) {
		const char *e = strchr(s, '&');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		pairs[i].k = s;
		pairs[i].kl = eq ? (size_t)(eq - s) : len;
		pairs[i].v = eq ? eq + 1 : s + len;
		pairs[i].vl = eq ? len - pairs[i].kl - 1 : 0;
		i++;
		if (!e)
			break;
		s = e + 1;
	}
	qsort(pairs, n, sizeof(*pairs), qpair_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			buf_char(b, '&');
		buf_add(b, pairs[i].k, pairs[i].kl);
		buf_char(b, '=');
		buf_add(b, pairs[i].v, pairs[i].vl);
	}
	free(pairs);
	return 0;
}

struct hdr {
	char name[64];
	const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

/* value trimmed, inner whitespace runs collapsed to one space */
static void trimall(struct buf *b, const char *v)
{
	bool space = false, any = false;
	for (const char *p = v; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f') {
			space = any;
			continue;
		}
		if (space)
			buf_char(b, ' ');
		space = false;
		any = true;
		buf_char(b, *p);
	}
}

static int add_hdr(struct hdr *h, size_t *n, const char *name, const char *value)
{
	if (*n >= MAX_SIGNED || strlen(name) >= sizeof(h[0].name))
		return -1;
	size_t i = 0;
	for (; name[i]; i++)
		h[*n].name[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	h[*n].name[i] = '\0';
	for (size_t j = 0; j < *n; j++)
		if (!strcmp(h[j].name, h[*n].name))
			return -1; /* one value per header */
	h[*n].value = value;
	(*n)++;
	return 0;
}

int sigv4_sign(char **authorization, char amz_date[SIGV4_DATE_LEN], const struct sigv4_request *r,
	       struct verr *err)
{
	*authorization = NULL;
	if (!r->method || !r->host || !r->region || !r->service || !r->access_key ||
	    !r->secret_key || !*r->access_key || !*r->secret_key)
		return verr_set(err, VERR_INVALID, "AWS request signing: credentials, region and host are required");
	struct tm tm;
	time_t now = r->now;
	if (!gmtime_r(&now, &tm) || !strftime(amz_date, SIGV4_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm))
		return verr_set(err, VERR_INTERNAL, "AWS request signing: bad time");
	char day[9];
	memcpy(day, amz_date, 8);
	day[8] = '\0';

	struct hdr h[MAX_SIGNED];
	size_t nh = 0;
	int rc = 0;
	for (size_t i = 0; i < r->nheaders && !rc; i++)
		if (strcasecmp(r->headers[i].name, "host") && strcasecmp(r->headers[i].name, "x-amz-date") &&
		    strcasecmp(r->headers[i].name, "authorization") &&
		    strcasecmp(r->headers[i].name, "user-agent") && strcasecmp(r->headers[i].name, "expect") &&
		    strcasecmp(r->headers[i].name, "x-amzn-trace-id") &&
		    strcasecmp(r->headers[i].name, "x-amz-security-token"))
			rc = add_hdr(h, &nh, r->headers[i].name, r->headers[i].value);
	if (!rc)
		rc = add_hdr(h, &nh, "host", r->host);
	if (!rc)
		rc = add_hdr(h, &nh, "x-amz-date", amz_date);
	if (!rc && r->session_token && *r->session_token)
		rc = add_hdr(h, &nh, "x-amz-security-token", r->session_token);
	if (rc)
		return verr_set(err, VERR_INVALID, "AWS request signing: too many or repeated headers");
	qsort(h, nh, sizeof(h[0]), hdr_cmp);

	struct buf signed_h, cr, sts;
	buf_init(&signed_h, 128);
	buf_init(&cr, 512);
	buf_init(&sts, 256);
	for (size_t i = 0; i < nh; i++) {
		if (i)
			buf_char(&signed_h, ';');
		buf_str(&signed_h, h[i].name);
	}
	buf_str(&cr, r->method);
	buf_char(&cr, '\n');
	uri_encode_path(&cr, r->path);
	buf_char(&cr, '\n');
	if (canonical_query(&cr, r->query))
		cr.failed = true;
	buf_char(&cr, '\n');
	for (size_t i = 0; i < nh; i++) {
		buf_str(&cr, h[i].name);
		buf_char(&cr, ':');
		trimall(&cr, h[i].value);
		buf_char(&cr, '\n');
	}
	buf_char(&cr, '\n');
	buf_add(&cr, signed_h.p, signed_h.len);
	buf_char(&cr, '\n');
	char hx[65];
	sha256_hex(hx, r->body ? (const void *)r->body : "", r->body ? r->body_len : 0);
	buf_str(&cr, hx);
	if (cr.failed || signed_h.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	sha256_hex(hx, cr.p, cr.len);
	buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, day, r->region,
		   r->service, hx);
	if (sts.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}

	/* the signing key chain; every intermediate key is wiped */
	size_t sl = strlen(r->secret_key);
	char *k0 = secmem_alloc(sl + 5);
	uint8_t k[32], sig[32];
	if (!k0) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, r->secret_key, sl);
	rc = hmac(k, k0, sl + 4, day, strlen(day));
	secmem_free(k0, sl + 5);
	if (!rc)
		rc = hmac(k, k, 32, r->region, strlen(r->region));
	if (!rc)
		rc = hmac(k, k, 32, r->service, strlen(r->service));
	if (!rc)
		rc = hmac(k, k, 32, "aws4_request", 12);
	if (!rc)
		rc = hmac(sig, k, 32, sts.p, sts.len);
	secmem_wipe(k, sizeof(k));
	if (rc) {
		rc = verr_set(err, VERR_INTERNAL, "AWS request signing: HMAC failed");
		goto out;
	}
	struct buf a;
	buf_init(&a, 256);
	buf_printf(&a, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=",
		   r->access_key, day, r->region, r->service, signed_h.p);
	for (size_t i = 0; i < 32; i++)
		buf_printf(&a, "%02x", sig[i]);
	*authorization = buf_take(&a, NULL);
	if (!*authorization)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	buf_free(&signed_h);
	buf_free(&cr);
	buf_free(&sts);
	return rc;
}
