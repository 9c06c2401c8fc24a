/*
 * ocsp.c - the OCSP responder of the PKI engine (RFC 6960, Vault's
 * `pki/ocsp` paths): POST ocsp with a DER request body (Content-Type
 * application/ocsp-request; the HTTP layer passes it through unparsed),
 * GET ocsp/<base64 of the DER request>, and the same under
 * issuer/:ref/ocsp to ask one issuer only. Unauthenticated, like Vault.
 *
 * Answers are DER `application/ocsp-response`:
 *   - a request that does not parse: malformedRequest, HTTP 400;
 *   - config/crl ocsp_disable, or the matching issuer lacks the
 *     `ocsp-signing` usage or a key: unauthorized, HTTP 401;
 *   - otherwise a BasicOCSPResponse signed by the issuer named in the
 *     request's CertID (responder id by key hash, no certificates: the
 *     signer is the CA itself), for the first CertID of the request (as
 *     Vault): revoked (with the revocation time) when revoked/<serial>
 *     holds it, good when certs/<serial> holds a certificate that issuer
 *     signed, unknown otherwise (Vault answers good for any serial it has
 *     no revocation for; we do not vouch for serials we never stored, so
 *     `no_store` certificates answer unknown). A CertID of no issuer of
 *     this mount answers unknown signed by the default issuer (Vault).
 *   thisUpdate is now; nextUpdate now + ocsp_expiry (none when 0); the
 *   request's nonce is echoed.
 *
 * Thread-safety: reads the shared state and storage only; no locks held
 * beyond taking a state reference.
 */
#include "secrets/pki/pki_int.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/b64.h"
#include "util/duration.h"

#define OCSP_MAX_REQUEST (64 * 1024)
#define OCSP_CTYPE "application/ocsp-response"

/* A DER OCSP response into resp. Frees r. */
static int send_response(struct logical_response *resp, OCSP_RESPONSE *r, int http_status,
			 struct verr *err)
{
	unsigned char *der = NULL;
	int n = r ? i2d_OCSP_RESPONSE(r, &der) : -1;
	OCSP_RESPONSE_free(r);
	if (n <= 0)
		return verr_set(err, VERR_INTERNAL, "could not encode the OCSP response");
	char *body = malloc((size_t)n);
	if (!body) {
		OPENSSL_free(der);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	memcpy(body, der, (size_t)n);
	OPENSSL_free(der);
	resp->status = http_status;
	if (pki__raw_reply(resp, body, (size_t)n, OCSP_CTYPE))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

/* An unsigned error response: malformedRequest (400), unauthorized (401),
 * internalError (500), as Vault answers them. */
static int send_status(struct logical_response *resp, int ocsp_status, struct verr *err)
{
	int http = ocsp_status == OCSP_RESPONSE_STATUS_MALFORMEDREQUEST ? 400
		   : ocsp_status == OCSP_RESPONSE_STATUS_UNAUTHORIZED   ? 401
									: 500;
	return send_response(resp, OCSP_response_create(ocsp_status, NULL), http, err);
}

/* The DER request: the POST body as sent, or the GET path's base64. */
static int request_der(struct logical_request *req, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	const char *b64 = request_str(req, "req");
	if (b64 && *b64) {
		struct verr e = {0};
		return b64_decode(out, len, b64, false, &e) ? -1 : 0;
	}
	if (req->raw_body_is_fd) {
		if (req->raw_body_len > OCSP_MAX_REQUEST)
			return -1;
		uint8_t *p = malloc(req->raw_body_len + 1);
		ssize_t got = p ? pread(req->raw_body_fd, p, req->raw_body_len, 0) : -1;
		if (got < 0 || (size_t)got != req->raw_body_len) {
			free(p);
			return -1;
		}
		*out = p;
		*len = (size_t)got;
		return 0;
	}
	if (!req->raw_body || !req->raw_body_len || req->raw_body_len > OCSP_MAX_REQUEST)
		return -1;
	*out = malloc(req->raw_body_len);
	if (!*out)
		return -1;
	memcpy(*out, req->raw_body, req->raw_body_len);
	*len = req->raw_body_len;
	return 0;
}

/* 1 when cid names iss (same name and key hashes under cid's algorithm). */
static bool cid_matches(OCSP_CERTID *cid, const struct pki_issuer *iss)
{
	ASN1_OBJECT *alg = NULL;
	if (!OCSP_id_get0_info(NULL, &alg, NULL, NULL, cid) || !alg)
		return false;
	const EVP_MD *md = EVP_get_digestbyobj(alg);
	if (!md)
		return false;
	OCSP_CERTID *mine = OCSP_cert_to_id(md, NULL, iss->cert);
	bool eq = mine && OCSP_id_issuer_cmp(cid, mine) == 0;
	OCSP_CERTID_free(mine);
	return eq;
}

static bool has_usage(const struct pki_issuer *iss, const char *u)
{
	size_t i;
	json_t *v;
	json_array_foreach(iss->usage, i, v)
	{
		const char *s = json_string_value(v);
		if (s && !strcmp(s, u))
			return true;
	}
	return false;
}

static int64_t ocsp_expiry(const struct pki_state *s)
{
	int64_t secs = 12 * 3600;
	const char *e = json_string_value(json_object_get(s->crl_cfg, "ocsp_expiry"));
	if (e && duration_parse(&secs, e, NULL))
		secs = 12 * 3600;
	return secs < 0 ? 0 : secs;
}

/* Sign a one-entry BasicOCSPResponse for cid with iss. */
static int send_signed(struct logical_response *resp, struct pki_backend *b,
		       const struct pki_state *s, OCSP_REQUEST *oreq, OCSP_CERTID *cid,
		       const struct pki_issuer *iss, int status, int64_t rev_time, struct verr *err)
{
	int64_t now = pki__now(b), exp = ocsp_expiry(s);
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)now);
	ASN1_TIME *nu = exp ? ASN1_TIME_set(NULL, (time_t)(now + exp)) : NULL;
	ASN1_TIME *rt = status == V_OCSP_CERTSTATUS_REVOKED ? ASN1_TIME_set(NULL, (time_t)rev_time)
							     : NULL;
	OCSP_CERTID *id = OCSP_CERTID_dup(cid);
	bool ok = bs && tu && id && (!exp || nu) && (status != V_OCSP_CERTSTATUS_REVOKED || rt) &&
		  OCSP_basic_add1_status(bs, id, status, OCSP_REVOKED_STATUS_NOSTATUS, rt, tu, nu) &&
		  OCSP_copy_nonce(bs, oreq) > 0 &&
		  OCSP_basic_sign(bs, iss->cert, iss->pkey, iss->md, NULL,
				  OCSP_RESPID_KEY | OCSP_NOCERTS) > 0;
	OCSP_CERTID_free(id);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_TIME_free(rt);
	OCSP_RESPONSE *r = ok ? OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs) : NULL;
	OCSP_BASICRESP_free(bs);
	if (!r) {
		ERR_clear_error();
		return send_status(resp, OCSP_RESPONSE_STATUS_INTERNALERROR, err);
	}
	return send_response(resp, r, 200, err);
}

static int path_ocsp(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	struct pki_backend *b = req->backend;
	uint8_t *der = NULL;
	size_t len = 0;
	OCSP_REQUEST *oreq = NULL;
	X509 *x = NULL;
	json_t *rev = NULL;
	int rc;
	struct pki_state *s = pki__state_get(b);
	if (json_is_true(json_object_get(s->crl_cfg, "ocsp_disable"))) {
		rc = send_status(resp, OCSP_RESPONSE_STATUS_UNAUTHORIZED, err);
		goto out;
	}
	if (request_der(req, &der, &len) == 0) {
		const unsigned char *p = der;
		oreq = d2i_OCSP_REQUEST(NULL, &p, (long)len);
		if (oreq && p != der + len) { /* trailing bytes */
			OCSP_REQUEST_free(oreq);
			oreq = NULL;
		}
	}
	OCSP_ONEREQ *one = oreq ? OCSP_request_onereq_get0(oreq, 0) : NULL;
	OCSP_CERTID *cid = one ? OCSP_onereq_get0_id(one) : NULL;
	ASN1_INTEGER *serial = NULL;
	if (!cid || !OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid) || !serial) {
		ERR_clear_error();
		rc = send_status(resp, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, err);
		goto out;
	}
	/* the issuers the CertID names (a path's issuer_ref narrows to one) */
	const char *ref = request_str(req, "issuer_ref");
	struct pki_issuer *only = ref && *ref ? pki__issuer_find(s, ref) : NULL;
	if (ref && *ref && !only) {
		rc = verr_set(err, VERR_INVALID, "unable to find issuer for reference: %.128s", ref);
		goto out;
	}
	struct pki_issuer *match = NULL;
	for (size_t i = 0; i < s->n_issuers && !match; i++)
		if ((!only || s->issuers[i] == only) && cid_matches(cid, s->issuers[i]))
			match = s->issuers[i];

	char colon[PKI_SERIAL_HEX + 8], dash[PKI_SERIAL_HEX + 8], key[PKI_SERIAL_HEX + 24];
	int status = V_OCSP_CERTSTATUS_UNKNOWN;
	int64_t rev_time = 0;
	if (match && ASN1_STRING_length(serial) <= PKI_SERIAL_BYTES + 1) {
		pki__serial_colon(serial, colon, sizeof(colon));
		snprintf(dash, sizeof(dash), "%s", colon);
		for (char *c = dash; *c; c++)
			if (*c == ':')
				*c = '-';
		snprintf(key, sizeof(key), "revoked/%s", dash);
		if ((rc = view_get_json(b->view, key, &rev, err)))
			goto out;
		const char *rev_iss = json_string_value(json_object_get(rev, "issuer_id"));
		if (rev && (!rev_iss || !strcmp(rev_iss, match->id) ||
			    !pki__issuer_find(s, rev_iss))) {
			status = V_OCSP_CERTSTATUS_REVOKED;
			rev_time = json_integer_value(json_object_get(rev, "revocation_time"));
		} else if (!rev) {
			if ((rc = pki__cert_load(b, dash, &x, err)))
				goto out;
			if (x && X509_verify(x, X509_get0_pubkey(match->cert)) == 1 &&
			    !X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(match->cert)))
				status = V_OCSP_CERTSTATUS_GOOD;
			ERR_clear_error();
		}
	}
	/* who signs: the named issuer; for a CertID of no issuer here, the
	 * (path's or) default issuer answers unknown */
	struct pki_issuer *signer = match ? match : only ? only : s->def;
	if (!signer || !signer->pkey || !has_usage(signer, "ocsp-signing")) {
		rc = send_status(resp, OCSP_RESPONSE_STATUS_UNAUTHORIZED, err);
		goto out;
	}
	rc = send_signed(resp, b, s, oreq, cid, signer, status, rev_time, err);
out:
	json_decref(rev);
	X509_free(x);
	OCSP_REQUEST_free(oreq);
	free(der);
	pki__state_put(b, s);
	return rc;
}

static const struct field_def ocsp_fields[] = {
	{"req", FT_STRING, "", "base64 of the DER OCSP request (GET)", false},
	{"issuer_ref", FT_STRING, "", "", false},
	{NULL},
};

static const struct path_def ocsp_paths[] = {
	{.pattern = "ocsp", .fields = ocsp_fields, .ops = {{LOP_UPDATE, path_ocsp}},
	 .unauthenticated = true, .help = "OCSP (RFC 6960): POST a DER request."},
	{.pattern = "ocsp/{req*}", .fields = ocsp_fields, .ops = {{LOP_READ, path_ocsp}},
	 .unauthenticated = true, .help = "OCSP (RFC 6960): GET with the base64 DER request."},
	{.pattern = "issuer/{issuer_ref}/ocsp", .fields = ocsp_fields,
	 .ops = {{LOP_UPDATE, path_ocsp}}, .unauthenticated = true,
	 .help = "OCSP answered by one issuer: POST a DER request."},
	{.pattern = "issuer/{issuer_ref}/ocsp/{req*}", .fields = ocsp_fields,
	 .ops = {{LOP_READ, path_ocsp}}, .unauthenticated = true,
	 .help = "OCSP answered by one issuer: GET with the base64 DER request."},
	{NULL},
};

const struct path_def *pki__ocsp_paths(void)
{
	return ocsp_paths;
}
