/*
 * paths_crypto.c - transit operation handlers: encrypt (with Vault's upsert),
 * decrypt, rewrap, datakey, hmac, sign, verify, hash and random.
 *
 * Every batchable operation runs through run_items(): without batch_input
 * the request's own fields are the one item and an item error is the
 * request's error (400, or 500 for internal failures); with batch_input
 * each item is processed on its own, results keep the input order, a
 * failed item carries {"error": "..."} and its "reference" is echoed.
 * encrypt and decrypt then answer 400/500 (or partial_failure_response_code)
 * when items failed, as Vault does; the other operations answer 200.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/transit/transit_int.h"
#include "util/secmem.h"

static struct transit *T(struct logical_request *req)
{
	return req->backend;
}

/* One item: fill `out` (an object) or return an error. */
typedef int (*item_fn)(void *ctx, struct logical_request *req, const json_t *item, json_t *out,
		       struct verr *err);

static int run_items(struct logical_request *req, struct logical_response *resp,
		     const json_t *batch, item_fn fn, void *ctx, bool status_codes,
		     struct verr *err)
{
	if (!batch) {
		json_t *o = json_object();
		if (!o)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		int rc = fn(ctx, req, NULL, o, err);
		if (rc) {
			json_decref(o);
			return rc;
		}
		resp->data = o;
		return 0;
	}
	json_t *results = json_array();
	bool ok_any = false, user_err = false, internal_err = false;
	size_t i;
	json_t *item;
	json_array_foreach(batch, i, item) {
		json_t *o = json_object();
		struct verr e = {0};
		int rc = o ? fn(ctx, req, item, o, &e) : VERR_INTERNAL;
		if (rc) {
			json_object_clear(o);
			json_object_set_new(o, "error", json_string(e.msg));
			if (rc == VERR_INTERNAL)
				internal_err = true;
			else
				user_err = true;
		} else {
			ok_any = true;
		}
		json_t *ref = json_object_get(item, "reference");
		if (json_is_string(ref))
			json_object_set(o, "reference", ref);
		json_array_append_new(results, o);
	}
	resp->data = json_pack("{s:o}", "batch_results", results);
	if (!resp->data)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (status_codes)
		transit__batch_status(req, resp, ok_any, user_err, internal_err);
	return 0;
}

/* A base64 field of an item, decoded (NULL/0 when absent or empty). The
 * error text names the field as Vault's does. */
static int item_b64(uint8_t **out, size_t *len, const struct logical_request *req,
		    const json_t *item, const char *name, bool secure, struct verr *err)
{
	*out = NULL;
	*len = 0;
	const char *s = transit__item_str(req, item, name);
	if (!s || !*s)
		return 0;
	return b64_decode(out, len, s, secure, err);
}

/* A JSON string of our own ASCII output (base64, "vault:vN:..."): jansson
 * need not check it for UTF-8 (about 16 instructions a byte). */
static json_t *ascii(const char *s, size_t n)
{
	return json_stringn_nocheck(s, n);
}

/* Resolve an encryption version as Vault's EncryptWithFactory does. */
static int enc_version(const struct tkey *k, int64_t ver, int *out, struct verr *err)
{
	if (ver == 0)
		ver = k->latest_version;
	else if (ver < 0)
		return verr_set(err, VERR_INVALID, "requested version for encryption is negative");
	else if (ver > k->latest_version)
		return verr_set(err, VERR_INVALID, "requested version for encryption is higher than the latest key version");
	else if (ver < k->min_encryption_version)
		return verr_set(err, VERR_INVALID, "requested version for encryption is less than the minimum encryption key version");
	*out = (int)ver;
	return 0;
}

/* ---- encrypt ---- */

struct enc_ctx {
	struct tkey *k;
	struct transit_aead aead; /* kept across the items */
};

static int encrypt_item(void *vctx, struct logical_request *req, const json_t *item, json_t *out,
			struct verr *err)
{
	struct enc_ctx *c = vctx;
	uint8_t *pt = NULL, *ctx = NULL, *aad = NULL;
	size_t pl = 0, cl = 0, al = 0, ctl = 0;
	char *ct = NULL;
	int ver = 0;
	int64_t rv = 0;
	struct tscratch sp = {0};
	const char *p = transit__item_str(req, item, "plaintext");
	if (!p)
		return verr_set(err, VERR_INVALID, "missing plaintext to encrypt");
	int rc = transit__b64_scratch(&sp, &pt, &pl, p, err);
	if (!rc)
		rc = item_b64(&ctx, &cl, req, item, "context", false, err);
	if (!rc)
		rc = item_b64(&aad, &al, req, item, "associated_data", false, err);
	if (!rc)
		rc = transit__item_int(req, item, "key_version", &rv, err);
	if (!rc)
		rc = enc_version(c->k, rv, &ver, err);
	const char *nonce = transit__item_str(req, item, "nonce");
	if (!rc)
		rc = transit__encrypt(&ct, &ctl, c->k, ver, ctx, cl, pt, pl, aad, al, nonce && *nonce,
				      &c->aead, err);
	if (!rc) {
		json_object_set_new(out, "ciphertext", ascii(ct, ctl));
		json_object_set_new(out, "key_version", json_integer(ver));
	}
	free(ct);
	transit__scratch_put(&sp);
	free(ctx);
	free(aad);
	return rc;
}

/* Vault requires context in all items or in none (it decides derivation
 * of an upserted key). */
static int context_consistent(const struct logical_request *req, const json_t *batch, bool *set,
			      struct verr *err)
{
	const char *c0 = transit__item_str(req, batch ? json_array_get(batch, 0) : NULL, "context");
	*set = c0 && *c0;
	if (!batch)
		return 0;
	size_t i;
	json_t *item;
	json_array_foreach(batch, i, item) {
		const char *c = transit__item_str(req, item, "context");
		if ((c && *c) != *set)
			return verr_set(err, VERR_INVALID, "context should be set either in all the request blocks or in none");
	}
	return 0;
}

int transit__encrypt_path(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	json_t *batch;
	int rc = transit__batch_input(req, &batch, err);
	if (rc)
		return rc;
	if (!batch && !request_has(req, "plaintext"))
		return verr_set(err, VERR_INVALID, "missing plaintext to encrypt");
	bool ctx_set;
	rc = context_consistent(req, batch, &ctx_set, err);
	if (rc)
		return rc;
	struct enc_ctx c = {0};
	const char *name = request_str(req, "name");
	bool creating = req->op == LOP_CREATE, created = false;
	if (creating) {
		struct tkey_params p = {0};
		const char *type = request_str(req, "type");
		if (!type || !*type)
			type = "aes256-gcm96";
		if (tkey_type_parse(type, &p.type))
			return verr_set(err, VERR_INVALID, "unknown key type %.64s", type);
		if (!tkey_is_symmetric(p.type)) {
			if (tkey_is_ecdsa(p.type))
				return verr_set(err, VERR_INVALID, "key type %s not supported for this operation", type);
			return verr_set(err, VERR_INVALID, "unknown key type %s", type);
		}
		p.convergent = request_bool(req, "convergent_encryption");
		if (p.convergent && !ctx_set)
			return verr_set(err, VERR_INVALID, "convergent encryption requires derivation to be enabled, so context is required");
		p.derived = ctx_set;
		rc = transit__key_upsert(T(req), name, &p, &c.k, &created, err);
	} else {
		rc = transit__key_get(T(req), name, &c.k, err);
	}
	if (rc)
		return rc;
	if (!c.k)
		return verr_set(err, VERR_INVALID, "encryption key not found");
	pthread_rwlock_rdlock(&c.k->lock);
	if (!tkey_supports_encryption(c.k->type))
		rc = verr_set(err, VERR_INVALID, "message encryption not supported for key type %s", tkey_type_name(c.k->type));
	else
		rc = run_items(req, resp, batch, encrypt_item, &c, true, err);
	transit__aead_done(&c.aead);
	pthread_rwlock_unlock(&c.k->lock);
	transit__key_release(T(req), c.k);
	if (!rc && creating && !created)
		logical_response_warn(resp, "Attempted creation of the key during the encrypt operation, but it was created beforehand");
	return rc;
}

/* ---- decrypt / rewrap ---- */

struct dec_ctx {
	struct tkey *k;
	bool rewrap;
	struct transit_aead dec, enc; /* kept across the items */
};

static int decrypt_item(void *vctx, struct logical_request *req, const json_t *item, json_t *out,
			struct verr *err)
{
	struct dec_ctx *c = vctx;
	const char *ct = transit__item_str(req, item, "ciphertext");
	if (!ct || !*ct)
		return verr_set(err, VERR_INVALID, "missing ciphertext to decrypt");
	uint8_t *ctx = NULL, *aad = NULL, *pt = NULL;
	size_t cl = 0, al = 0, pl = 0, nl = 0;
	int ver = 0, nv = 0;
	int64_t rv = 0;
	char *nct = NULL;
	struct tscratch sp = {0};
	int rc = item_b64(&ctx, &cl, req, item, "context", false, err);
	if (!rc)
		rc = item_b64(&aad, &al, req, item, "associated_data", false, err);
	if (!rc)
		rc = transit__decrypt(&sp, &pt, &pl, &ver, c->k, ct, ctx, cl, aad, al, &c->dec, err);
	if (!rc && !c->rewrap) {
		char *b = b64_encode(pt, pl, false);
		if (!b)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		else {
			size_t bl = b64_encoded_len(pl, false);
			json_object_set_new(out, "plaintext", ascii(b, bl));
			secmem_wipe(b, bl);
			free(b);
		}
	} else if (!rc) {
		rc = transit__item_int(req, item, "key_version", &rv, err);
		if (!rc)
			rc = enc_version(c->k, rv, &nv, err);
		if (!rc)
			rc = transit__encrypt(&nct, &nl, c->k, nv, ctx, cl, pt, pl, aad, al, false,
					      &c->enc, err);
		if (!rc) {
			json_object_set_new(out, "ciphertext", ascii(nct, nl));
			json_object_set_new(out, "key_version", json_integer(nv));
		}
	}
	transit__scratch_put(&sp);
	free(nct);
	free(ctx);
	free(aad);
	return rc;
}

static int decrypt_common(struct logical_request *req, struct logical_response *resp,
			  bool rewrap, struct verr *err)
{
	json_t *batch;
	int rc = transit__batch_input(req, &batch, err);
	if (rc)
		return rc;
	if (!batch && !request_has(req, "ciphertext"))
		return verr_set(err, VERR_INVALID, "missing ciphertext to decrypt");
	bool ctx_set;
	rc = context_consistent(req, batch, &ctx_set, err);
	if (rc)
		return rc;
	struct dec_ctx c = {.rewrap = rewrap};
	rc = transit__key_get(T(req), request_str(req, "name"), &c.k, err);
	if (rc)
		return rc;
	if (!c.k)
		return verr_set(err, VERR_INVALID, "encryption key not found");
	pthread_rwlock_rdlock(&c.k->lock);
	rc = run_items(req, resp, batch, decrypt_item, &c, !rewrap, err);
	transit__aead_done(&c.dec);
	transit__aead_done(&c.enc);
	pthread_rwlock_unlock(&c.k->lock);
	transit__key_release(T(req), c.k);
	return rc;
}

int transit__decrypt_path(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	return decrypt_common(req, resp, false, err);
}

int transit__rewrap_path(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return decrypt_common(req, resp, true, err);
}

/* ---- datakey ---- */

int transit__datakey_path(struct logical_request *req, struct logical_response *resp,
			  struct verr *err)
{
	const char *kind = request_str(req, "plaintext");
	bool with_plain = !strcmp(kind, "plaintext");
	if (!with_plain && strcmp(kind, "wrapped"))
		return verr_set(err, VERR_INVALID, "Invalid path, must be 'plaintext' or 'wrapped'");
	int64_t bits = request_int(req, "bits");
	if (bits != 128 && bits != 256 && bits != 512)
		return verr_set(err, VERR_INVALID, "invalid bit length");
	uint8_t *ctx = NULL, *aad = NULL;
	size_t cl = 0, al = 0;
	if (item_b64(&ctx, &cl, req, NULL, "context", false, NULL))
		return verr_set(err, VERR_INVALID, "failed to base64-decode context");
	int rc = item_b64(&aad, &al, req, NULL, "associated_data", false, err);
	struct tkey *k = NULL;
	if (!rc)
		rc = transit__key_get(T(req), request_str(req, "name"), &k, err);
	if (!rc && !k)
		rc = verr_set(err, VERR_INVALID, "encryption key not found");
	if (rc) {
		free(ctx);
		free(aad);
		return rc;
	}
	size_t n = (size_t)bits / 8;
	uint8_t *dk = secmem_alloc(n);
	char *ct = NULL;
	int ver = 0;
	pthread_rwlock_rdlock(&k->lock);
	if (!dk)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	else if (!tkey_is_symmetric(k->type) && !tkey_is_rsa(k->type))
		rc = verr_set(err, VERR_INVALID, "message encryption not supported for key type %s", tkey_type_name(k->type));
	else if (RAND_bytes(dk, (int)n) != 1)
		rc = verr_set(err, VERR_INTERNAL, "random generator failed");
	if (!rc)
		rc = enc_version(k, request_int(req, "key_version"), &ver, err);
	if (!rc) {
		const char *nonce = request_str(req, "nonce");
		rc = transit__encrypt(&ct, NULL, k, ver, ctx, cl, dk, n, aad, al, nonce && *nonce, NULL,
				      err);
	}
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
	if (!rc) {
		resp->data = json_pack("{s:s,s:i}", "ciphertext", ct, "key_version", ver);
		if (with_plain && resp->data) {
			char *b = b64_encode(dk, n, false);
			json_object_set_new(resp->data, "plaintext", json_string(b ? b : ""));
			if (b)
				secmem_wipe(b, strlen(b));
			free(b);
		}
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
	}
	secmem_free(dk, n);
	free(ct);
	free(ctx);
	free(aad);
	return rc;
}

/* ---- hmac ---- */

struct hmac_ctx {
	const uint8_t *key;
	size_t key_len;
	enum transit_hash h;
	int ver;
};

static int hmac_item(void *vctx, struct logical_request *req, const json_t *item, json_t *out,
		     struct verr *err)
{
	struct hmac_ctx *c = vctx;
	const char *in = transit__item_str(req, item, "input");
	if (!in)
		return verr_set(err, VERR_INVALID, "missing input for HMAC");
	uint8_t *raw = NULL;
	size_t rl = 0, sl = 0;
	struct verr e = {0};
	struct tscratch sp = {0};
	if (transit__b64_scratch(&sp, &raw, &rl, in, &e))
		return verr_set(err, e.code == VERR_INTERNAL ? VERR_INTERNAL : VERR_INVALID,
				"unable to decode input as base64: %s", e.msg);
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	int rc = transit__hmac(c->h, c->key, c->key_len, raw, rl, mac, &ml);
	transit__scratch_put(&sp);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "HMAC failed");
	char *s = transit__prefixed_b64(c->ver, mac, ml, false, &sl);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	json_object_set_new(out, "hmac", ascii(s, sl));
	free(s);
	return 0;
}

static const char *hash_arg(const struct logical_request *req, const char *primary,
			    const char *secondary)
{
	const char *u = request_str(req, "urlalgorithm");
	if (u && *u)
		return u;
	if (request_has(req, primary) || !secondary || !request_has(req, secondary))
		return request_str(req, primary);
	return request_str(req, secondary);
}

/* The HMAC key of version ver (resolved as Vault's hmac path does). */
static int hmac_key_of(const struct tkey *k, int64_t ver, struct hmac_ctx *c, struct verr *err)
{
	if (ver == 0)
		ver = k->latest_version;
	else if (k->min_encryption_version > 0 && ver < k->min_encryption_version)
		return verr_set(err, VERR_INVALID, "cannot generate HMAC: version is too old (disallowed by policy)");
	if (ver < 0)
		return verr_set(err, VERR_INVALID, "key version does not exist (cannot be negative)");
	if (ver > k->latest_version)
		return verr_set(err, VERR_INVALID, "key version does not exist; latest key version is %d", k->latest_version);
	const struct tkey_version *v = transit__version(k, (int)ver);
	if (!v)
		return verr_set(err, VERR_INVALID, "no such key version");
	c->ver = (int)ver;
	c->key = k->type == TK_HMAC ? v->key : v->hmac_key;
	c->key_len = k->type == TK_HMAC ? v->key_len : TRANSIT_HMAC_KEY_LEN;
	return 0;
}

int transit__hmac_path(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	const char *alg = hash_arg(req, "algorithm", NULL);
	struct hmac_ctx c = {0};
	if (transit__hash_parse(alg, &c.h) || c.h == TH_NONE)
		return verr_set(err, VERR_INVALID, "unsupported algorithm \"%.32s\"", alg ? alg : "");
	json_t *batch;
	int rc = transit__batch_input(req, &batch, err);
	if (rc)
		return rc;
	if (!batch && !request_has(req, "input"))
		return verr_set(err, VERR_INVALID, "missing input for HMAC");
	struct tkey *k = NULL;
	rc = transit__key_get(T(req), request_str(req, "name"), &k, err);
	if (rc)
		return rc;
	if (!k)
		return verr_set(err, VERR_INVALID, "encryption key not found");
	pthread_rwlock_rdlock(&k->lock);
	rc = hmac_key_of(k, request_int(req, "key_version"), &c, err);
	if (!rc)
		rc = run_items(req, resp, batch, hmac_item, &c, false, err);
	pthread_rwlock_unlock(&k->lock);
	transit__key_release(T(req), k);
	return rc;
}

/* ---- sign / verify ---- */

struct sign_ctx {
	struct tkey *k;
	struct sign_opts o;
	bool verify;
	enum { V_NONE, V_SIG, V_HMAC } mode;
};

static int sign_opts_parse(struct logical_request *req, struct sign_opts *o, struct verr *err)
{
	const char *alg = hash_arg(req, "hash_algorithm", "algorithm");
	if (!alg || !*alg)
		alg = "sha2-256";
	if (transit__hash_parse(alg, &o->hash))
		return verr_set(err, VERR_INVALID, "invalid hash algorithm \"%.32s\"", alg);
	const char *m = request_str(req, "marshaling_algorithm");
	if (!m || !*m || !strcmp(m, "asn1"))
		o->jws = false;
	else if (!strcmp(m, "jws"))
		o->jws = true;
	else
		return verr_set(err, VERR_INVALID, "invalid marshaling type \"%.32s\"", m);
	const char *sa = request_str(req, "signature_algorithm");
	if (!sa || !*sa || !strcmp(sa, "pss"))
		o->pkcs1v15 = false;
	else if (!strcmp(sa, "pkcs1v15"))
		o->pkcs1v15 = true;
	else
		return verr_set(err, VERR_INVALID, "unsupported rsa signature algorithm %.32s", sa);
	o->prehashed = request_bool(req, "prehashed");
	const char *sl = request_str(req, "salt_length");
	if (!sl || !*sl || !strcmp(sl, "auto"))
		o->salt_len = -2;
	else if (!strcmp(sl, "hash"))
		o->salt_len = -1;
	else {
		char *end;
		long v = strtol(sl, &end, 10);
		if (*end)
			return verr_set(err, VERR_INVALID, "salt length neither 'auto', 'hash', nor an int: %.32s", sl);
		if (v < -1 || v > 4096)
			return verr_set(err, VERR_INVALID, "salt length is invalid: %ld", v);
		o->salt_len = (int)v;
	}
	if (o->hash == TH_NONE && (!o->prehashed || !o->pkcs1v15))
		return verr_set(err, VERR_INVALID, "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15");
	return 0;
}

static int sign_item(void *vctx, struct logical_request *req, const json_t *item, json_t *out,
		     struct verr *err)
{
	struct sign_ctx *c = vctx;
	const char *in = transit__item_str(req, item, "input");
	if (!in)
		return verr_set(err, VERR_INVALID, "missing input to process");
	uint8_t *raw = NULL, *ctx = NULL;
	size_t rl = 0, cl = 0;
	struct verr e = {0};
	struct tscratch sp = {0};
	if (transit__b64_scratch(&sp, &raw, &rl, in, &e))
		return verr_set(err, e.code == VERR_INTERNAL ? VERR_INTERNAL : VERR_INVALID,
				"unable to decode input as base64: %s", e.msg);
	int rc = 0;
	if (item_b64(&ctx, &cl, req, item, "context", false, NULL))
		rc = verr_set(err, VERR_INVALID, "failed to base64-decode context");
	if (!rc && c->verify && c->mode == V_HMAC) {
		const char *h = transit__item_str(req, item, "hmac");
		int ver = 0;
		const char *b = NULL;
		struct hmac_ctx hc = {.h = c->o.hash};
		const struct tkey_version *hv = NULL;
		rc = !h ? verr_set(err, VERR_INVALID, "missing hmac") :
			  transit__versioned_input(c->k, h, "hmac", &ver, &b, &hv, err);
		if (!rc) {
			hc.key = c->k->type == TK_HMAC ? hv->key : hv->hmac_key;
			hc.key_len = c->k->type == TK_HMAC ? hv->key_len : TRANSIT_HMAC_KEY_LEN;
		}
		uint8_t *given = NULL;
		size_t gl = 0;
		if (!rc && b64_decode(&given, &gl, b, false, NULL))
			rc = verr_set(err, VERR_INVALID, "invalid base64 hmac value");
		uint8_t mac[EVP_MAX_MD_SIZE];
		unsigned ml = 0;
		if (!rc && transit__hmac(hc.h, hc.key, hc.key_len, raw, rl, mac, &ml))
			rc = verr_set(err, VERR_INTERNAL, "HMAC failed");
		if (!rc)
			json_object_set_new(out, "valid", json_boolean(gl == ml && secmem_eq(given, mac, ml)));
		free(given);
	} else if (!rc && c->verify) {
		const char *s = transit__item_str(req, item, "signature");
		bool valid = false;
		rc = !s ? verr_set(err, VERR_INVALID, "missing signature") :
			  transit__verify(&valid, c->k, s, ctx, cl, raw, rl, &c->o, err);
		if (!rc)
			json_object_set_new(out, "valid", json_boolean(valid));
	} else if (!rc) {
		char *sig = NULL, *pub = NULL;
		int64_t ver = 0;
		rc = transit__item_int(req, item, "key_version", &ver, err);
		if (!rc && (ver < INT32_MIN || ver > INT32_MAX))
			rc = verr_set(err, VERR_INVALID, "requested version for signing is higher than the latest key version");
		if (!rc)
			rc = transit__sign(&sig, &pub, c->k, (int)ver, ctx, cl, raw, rl, &c->o, err);
		if (!rc) {
			int used = ver ? (int)ver : c->k->latest_version;
			json_object_set_new(out, "signature", ascii(sig, strlen(sig)));
			json_object_set_new(out, "key_version", json_integer(used));
			if (pub)
				json_object_set_new(out, "public_key", json_string(pub));
		}
		free(sig);
		free(pub);
	}
	transit__scratch_put(&sp);
	free(ctx);
	return rc;
}

static int sign_common(struct logical_request *req, struct logical_response *resp, bool verify,
		       struct verr *err)
{
	struct sign_ctx c = {.verify = verify};
	int rc = sign_opts_parse(req, &c.o, err);
	if (rc)
		return rc;
	json_t *batch;
	rc = transit__batch_input(req, &batch, err);
	if (rc)
		return rc;
	if (verify) {
		/* one kind per request: signatures or HMACs */
		if (!batch) {
			bool s = request_has(req, "signature"), h = request_has(req, "hmac");
			if (s && h)
				return verr_set(err, VERR_INVALID, "provide one of 'signature' or 'hmac'");
			if (!s && !h)
				return verr_set(err, VERR_INVALID, "neither a 'signature' nor an 'hmac' were given to verify");
			c.mode = s ? V_SIG : V_HMAC;
		} else {
			size_t i, ns = 0, nh = 0;
			json_t *it;
			json_array_foreach(batch, i, it) {
				ns += json_object_get(it, "signature") != NULL;
				nh += json_object_get(it, "hmac") != NULL;
			}
			if (ns && nh)
				return verr_set(err, VERR_INVALID, "elements of batch_input must all provide 'signature' or all provide 'hmac'");
			if (!ns && !nh)
				return verr_set(err, VERR_INVALID, "no batch_input elements have 'signature' or 'hmac'");
			if (ns && ns != json_array_size(batch))
				return verr_set(err, VERR_INVALID, "some elements of batch_input are missing 'signature'");
			if (nh && nh != json_array_size(batch))
				return verr_set(err, VERR_INVALID, "some elements of batch_input are missing 'hmac'");
			c.mode = ns ? V_SIG : V_HMAC;
		}
		if (c.mode == V_HMAC && c.o.hash == TH_NONE)
			return verr_set(err, VERR_INVALID, "unsupported algorithm \"none\"");
	}
	if (!batch && !request_has(req, "input"))
		return verr_set(err, VERR_INVALID, "missing input to process");
	rc = transit__key_get(T(req), request_str(req, "name"), &c.k, err);
	if (rc)
		return rc;
	if (!c.k)
		return verr_set(err, VERR_INVALID, verify ? "signature verification key not found" : "signing key not found");
	pthread_rwlock_rdlock(&c.k->lock);
	if (c.mode != V_HMAC && !tkey_supports_signing(c.k->type))
		rc = verr_set(err, VERR_INVALID, "key type %s does not support %s", tkey_type_name(c.k->type), verify ? "verification" : "signing");
	else
		rc = run_items(req, resp, batch, sign_item, &c, false, err);
	pthread_rwlock_unlock(&c.k->lock);
	transit__key_release(T(req), c.k);
	return rc;
}

int transit__sign_path(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	return sign_common(req, resp, false, err);
}

int transit__verify_path(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	return sign_common(req, resp, true, err);
}

