/*
 * pkcs11.c - the pkcs11 seal: the root key under an AES key inside an HSM
 * (tested with SoftHSM2). In Vault this is Enterprise-only.
 *
 * The module (`lib`) is loaded with dlopen and called only through the
 * function list from C_GetFunctionList (header: p11-kit's pkcs11.h). The
 * token is found by `slot` (id) or `token_label` (SoftHSM2 randomises slot
 * ids, so the label is what tests use), the user logs in with `pin`, the
 * key is found by `key_label` and/or `key_id` (hex), or generated on the
 * token with `generate_key = "true"` (AES-256, sensitive, not extractable).
 * Environment, as Vault: VAULT_HSM_LIB, VAULT_HSM_SLOT,
 * VAULT_HSM_TOKEN_LABEL, VAULT_HSM_PIN, VAULT_HSM_KEY_LABEL,
 * VAULT_HSM_KEY_ID, VAULT_HSM_MECHANISM, VAULT_HSM_GENERATE_KEY (the stanza
 * wins).
 *
 * Envelope as in awskms.c: a fresh data key encrypts the root key locally;
 * the HSM encrypts the data key with the configured mechanism:
 *  - CKM_AES_GCM (0x1087, the default): random 96-bit IV, 128-bit tag,
 *    fixed additional data, under an AES-256 secret key;
 *  - CKM_RSA_PKCS_OAEP (0x0009): RSA-OAEP with SHA-256 and MGF1-SHA256
 *    (rsa_oaep_hash / VAULT_HSM_RSA_OAEP_HASH, as Vault: sha1, sha224,
 *    sha256, sha384, sha512; recorded in the envelope as "oaep_hash")
 *    under an RSA key pair (2048 bits or more): the public key wraps, the
 *    private key (sensitive, not extractable) unwraps on the token;
 *    generate_key makes a 2048-bit pair.
 * Stored at core/pkcs11-root as JSON
 * {"type","mechanism","key_label","iv" (GCM only),"wrapped_key","ciphertext"};
 * an envelope made with the other mechanism is refused ("invalid key").
 *
 * DESIGN
 *  - The HSM is opened lazily, at the first wrap/unwrap, so a token that is
 *    absent at start only keeps the server sealed (VERR_UNAVAILABLE, the
 *    core retries); a wrong PIN is VERR_DENIED naming CKR_PIN_INCORRECT;
 *    a key that is not there VERR_DENIED; a GCM failure (altered blob,
 *    another key) VERR_INVALID "invalid key".
 *  - One session, guarded by p->mu (PKCS#11 sessions are not for
 *    concurrent use); a session the module dropped is reopened once.
 *  - The PIN lives in secmem and is wiped on close.
 */
#include <dlfcn.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "seal/seal.h"
#include "util/aead.h"
#include "util/b64.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"

#define PKCS11_ROOT_PATH "core/pkcs11-root"
#define GCM_AAD "coffer-root-key"
#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16
#define RSA_MIN_BITS 2048
#define RSA_GEN_BITS 2048
#define RSA_MAX_BYTES 1024 /* 8192-bit modulus */

struct oaep_hash {
	const char *name;
	CK_MECHANISM_TYPE hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
};

static const struct oaep_hash oaep_hashes[] = {
	{"sha256", CKM_SHA256, CKG_MGF1_SHA256}, /* the default */
	{"sha1", CKM_SHA_1, CKG_MGF1_SHA1},
	{"sha224", CKM_SHA224, CKG_MGF1_SHA224},
	{"sha384", CKM_SHA384, CKG_MGF1_SHA384},
	{"sha512", CKM_SHA512, CKG_MGF1_SHA512},
	{NULL, 0, 0},
};

static const struct oaep_hash *oaep_find(const char *name)
{
	for (const struct oaep_hash *h = oaep_hashes; h->name; h++)
		if (!strcmp(h->name, name))
			return h;
	return NULL;
}

struct pkcs11 {
	struct seal base;
	pthread_mutex_t mu;
	char *lib, *token_label, *key_label;
	uint8_t key_id[64];
	size_t key_id_len;
	bool have_slot, generate;
	bool rsa; /* CKM_RSA_PKCS_OAEP, else CKM_AES_GCM */
	const struct oaep_hash *oaep; /* rsa: the OAEP hash and its MGF1 */
	CK_SLOT_ID slot;
	char *pin; /* secmem */
	size_t pin_cap;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	bool initialized;
	CK_SESSION_HANDLE sess;
	bool have_sess;
	CK_OBJECT_HANDLE key; /* the AES key, or the RSA private key */
	CK_OBJECT_HANDLE pub; /* the RSA public key */
};

static const char *conf_str(const json_t *conf, const char *k, const char *envname)
{
	const json_t *v = json_object_get(conf, k);
	if (json_is_string(v) && *json_string_value(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		static __thread char num[32];
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return num;
	}
	const char *e = envname ? getenv(envname) : NULL;
	return e && *e ? e : NULL;
}

static const char *ckr_name(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_ENCRYPTED_DATA_LEN_RANGE: return "CKR_ENCRYPTED_DATA_LEN_RANGE";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	default: return "CKR_other";
	}
}

static void drop_session(struct pkcs11 *p)
{
	if (p->have_sess)
		p->f->C_CloseSession(p->sess);
	p->have_sess = false;
	p->key = p->pub = CK_INVALID_HANDLE;
}

/* label fields are 32 bytes, blank-padded */
static bool label_eq(const unsigned char lab[32], const char *want)
{
	size_t n = strlen(want);
	if (n > 32)
		return false;
	if (memcmp(lab, want, n))
		return false;
	for (size_t i = n; i < 32; i++)
		if (lab[i] != ' ')
			return false;
	return true;
}

static int find_slot(struct pkcs11 *p, CK_SLOT_ID *out, struct verr *err)
{
	if (p->have_slot && !p->token_label) {
		*out = p->slot;
		return 0;
	}
	CK_ULONG n = 0;
	CK_RV rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: C_GetSlotList failed: %s", ckr_name(rv));
	CK_SLOT_ID *ids = calloc(n ? n : 1, sizeof(*ids));
	if (!ids)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rv = p->f->C_GetSlotList(CK_TRUE, ids, &n);
	int rc = verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: no token labelled \"%s\"%s", p->token_label ? p->token_label : "",
			  p->have_slot ? " in the configured slot" : "");
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		CK_TOKEN_INFO ti;
		if (p->have_slot && ids[i] != p->slot)
			continue;
		if (p->f->C_GetTokenInfo(ids[i], &ti) == CKR_OK && label_eq(ti.label, p->token_label)) {
			*out = ids[i];
			rc = 0;
			verr_clear(err);
			break;
		}
	}
	free(ids);
	return rc;
}

/* The object of class cls (and key type kt) with the configured label/id:
 * 0 and *out, or 1 when there is none. */
static int find_object(struct pkcs11 *p, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_OBJECT_HANDLE *out,
		       struct verr *err)
{
	CK_ATTRIBUTE tmpl[4] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_ULONG nt = 2;
	if (p->key_label)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, p->key_label, strlen(p->key_label)};
	if (p->key_id_len)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, p->key_id, p->key_id_len};
	CK_RV rv = p->f->C_FindObjectsInit(p->sess, tmpl, nt);
	CK_ULONG found = 0;
	if (rv == CKR_OK) {
		rv = p->f->C_FindObjects(p->sess, out, 1, &found);
		p->f->C_FindObjectsFinal(p->sess);
	}
	if (rv != CKR_OK)
		return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: finding the key failed: %s", ckr_name(rv));
	return found == 1 ? 0 : 1;
}

/* The RSA key pair: found (2048 bits or more), or generated. */
static int find_rsa(struct pkcs11 *p, struct verr *err)
{
	CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
	int a = find_object(p, CKO_PRIVATE_KEY, CKK_RSA, &priv, err);
	int b = a < 0 ? a : find_object(p, CKO_PUBLIC_KEY, CKK_RSA, &pub, err);
	if (a < 0 || b < 0)
		return a < 0 ? a : b;
	const char *lab = p->key_label ? p->key_label : "";
	if (a == 0 && b == 0) {
		CK_ULONG bits = 0;
		CK_ATTRIBUTE mb = {CKA_MODULUS_BITS, &bits, sizeof(bits)};
		CK_RV rv = p->f->C_GetAttributeValue(p->sess, pub, &mb, 1);
		if (rv != CKR_OK)
			return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: reading the RSA key size failed: %s", ckr_name(rv));
		if (bits < RSA_MIN_BITS)
			return verr_set(err, VERR_DENIED, "pkcs11 seal: the RSA key \"%s\" has %lu bits; at least %d are needed",
					lab, (unsigned long)bits, RSA_MIN_BITS);
		p->key = priv;
		p->pub = pub;
		return 0;
	}
	if (a != b)
		return verr_set(err, VERR_DENIED, "pkcs11 seal: the token has the RSA %s key labelled \"%s\" but not its %s key",
				a ? "public" : "private", lab, a ? "private" : "public");
	if (!p->generate)
		return verr_set(err, VERR_DENIED, "pkcs11 seal: no RSA key pair labelled \"%s\" on the token (set generate_key = \"true\" to create it)",
				lab);
	CK_BBOOL t = CK_TRUE, fl = CK_FALSE;
	CK_ULONG bits = RSA_GEN_BITS;
	CK_BYTE e[] = {0x01, 0x00, 0x01};
	CK_ATTRIBUTE pubt[7] = {
		{CKA_TOKEN, &t, sizeof(t)},         {CKA_ENCRYPT, &t, sizeof(t)},
		{CKA_WRAP, &fl, sizeof(fl)},        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
		{CKA_PUBLIC_EXPONENT, e, sizeof(e)},
	};
	CK_ATTRIBUTE privt[8] = {
		{CKA_TOKEN, &t, sizeof(t)},     {CKA_PRIVATE, &t, sizeof(t)},
		{CKA_SENSITIVE, &t, sizeof(t)}, {CKA_EXTRACTABLE, &fl, sizeof(fl)},
		{CKA_DECRYPT, &t, sizeof(t)},   {CKA_UNWRAP, &fl, sizeof(fl)},
	};
	CK_ULONG npub = 5, npriv = 6;
	if (p->key_label) {
		pubt[npub++] = (CK_ATTRIBUTE){CKA_LABEL, p->key_label, strlen(p->key_label)};
		privt[npriv++] = (CK_ATTRIBUTE){CKA_LABEL, p->key_label, strlen(p->key_label)};
	}
	if (p->key_id_len) {
		pubt[npub++] = (CK_ATTRIBUTE){CKA_ID, p->key_id, p->key_id_len};
		privt[npriv++] = (CK_ATTRIBUTE){CKA_ID, p->key_id, p->key_id_len};
	}
	CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_RV rv = p->f->C_GenerateKeyPair(p->sess, &m, pubt, npub, privt, npriv, &pub, &priv);
	if (rv != CKR_OK)
		return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: generating the RSA key pair failed: %s", ckr_name(rv));
	log_info("seal", "pkcs11 seal: generated RSA-%d key pair \"%s\" on the token", RSA_GEN_BITS, lab);
	p->key = priv;
	p->pub = pub;
	return 0;
}

static int find_key(struct pkcs11 *p, struct verr *err)
{
	if (p->rsa)
		return find_rsa(p, err);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	int rc = find_object(p, cls, CKK_AES, &h, err);
	if (rc <= 0) {
		if (!rc)
			p->key = h;
		return rc;
	}
	if (!p->generate)
		return verr_set(err, VERR_DENIED, "pkcs11 seal: no AES key labelled \"%s\" on the token (set generate_key = \"true\" to create it)",
				p->key_label ? p->key_label : "");
	CK_BBOOL t = CK_TRUE, fl = CK_FALSE;
	CK_ULONG len = 32;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE g[10] = {
		{CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &t, sizeof(t)},         {CKA_PRIVATE, &t, sizeof(t)},
		{CKA_SENSITIVE, &t, sizeof(t)},     {CKA_EXTRACTABLE, &fl, sizeof(fl)},
		{CKA_ENCRYPT, &t, sizeof(t)},       {CKA_DECRYPT, &t, sizeof(t)},
		{CKA_VALUE_LEN, &len, sizeof(len)},
	};
	CK_ULONG ng = 9;
	if (p->key_label)
		g[ng++] = (CK_ATTRIBUTE){CKA_LABEL, p->key_label, strlen(p->key_label)};
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_RV rv = p->f->C_GenerateKey(p->sess, &m, g, ng, &h);
	if (rv != CKR_OK)
		return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: generating the key failed: %s", ckr_name(rv));
	if (p->key_id_len) {
		CK_ATTRIBUTE idattr = {CKA_ID, p->key_id, p->key_id_len};
		p->f->C_SetAttributeValue(p->sess, h, &idattr, 1);
	}
	log_info("seal", "pkcs11 seal: generated AES-256 key \"%s\" on the token", p->key_label ? p->key_label : "");
	p->key = h;
	return 0;
}

/* With p->mu held: a logged-in session and the key handle. */
static int ensure(struct pkcs11 *p, struct verr *err)
{
	if (p->have_sess && p->key != CK_INVALID_HANDLE)
		return 0;
	if (!p->initialized) {
		CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
		CK_RV rv = p->f->C_Initialize(&ia);
		if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
			return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: C_Initialize of %s failed: %s", p->lib, ckr_name(rv));
		p->initialized = true;
	}
	CK_SLOT_ID slot = 0;
	int rc = find_slot(p, &slot, err);
	if (rc)
		return rc;
	if (!p->have_sess) {
		CK_RV rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->sess);
		if (rv != CKR_OK)
			return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: C_OpenSession failed: %s", ckr_name(rv));
		p->have_sess = true;
		rv = p->f->C_Login(p->sess, CKU_USER, (CK_UTF8CHAR_PTR)p->pin, strlen(p->pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
			drop_session(p);
			if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
			    rv == CKR_PIN_LEN_RANGE)
				return verr_set(err, VERR_DENIED, "pkcs11 seal: the token refused the PIN (%s)", ckr_name(rv));
			return verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: C_Login failed: %s", ckr_name(rv));
		}
	}
	rc = find_key(p, err);
	if (rc)
		drop_session(p);
	return rc;
}

static bool session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
	       rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_KEY_HANDLE_INVALID;
}

/* The configured mechanism through the token: AES-GCM (iv; in -> out,
 * len + 16 / len - 16) or RSA-OAEP (iv unused; out holds the modulus). */
static int hsm_crypt(struct pkcs11 *p, bool enc, const struct oaep_hash *oh, uint8_t *iv,
		     const uint8_t *in, size_t inl, uint8_t *out, size_t *outl, struct verr *err)
{
	pthread_mutex_lock(&p->mu);
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = ensure(p, err);
		if (rc)
			break;
		CK_GCM_PARAMS gp = {.pIv = iv, .ulIvLen = GCM_IV_LEN, .ulIvBits = GCM_IV_LEN * 8,
				    .pAAD = (CK_BYTE_PTR)GCM_AAD, .ulAADLen = strlen(GCM_AAD),
				    .ulTagBits = GCM_TAG_LEN * 8};
		CK_RSA_PKCS_OAEP_PARAMS op = {oh->hash, oh->mgf, CKZ_DATA_SPECIFIED, NULL, 0};
		CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
		if (p->rsa)
			m = (CK_MECHANISM){CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
		CK_OBJECT_HANDLE key = p->rsa && enc ? p->pub : p->key;
		CK_ULONG ol = (CK_ULONG)*outl;
		CK_RV rv = enc ? p->f->C_EncryptInit(p->sess, &m, key) : p->f->C_DecryptInit(p->sess, &m, key);
		if (rv == CKR_OK)
			rv = enc ? p->f->C_Encrypt(p->sess, (CK_BYTE_PTR)in, inl, out, &ol)
				 : p->f->C_Decrypt(p->sess, (CK_BYTE_PTR)in, inl, out, &ol);
		if (rv == CKR_OK) {
			*outl = ol;
			rc = 0;
			break;
		}
		if (session_lost(rv) && attempt == 0) {
			drop_session(p);
			continue;
		}
		if (!enc && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
			     rv == CKR_FUNCTION_FAILED || rv == CKR_GENERAL_ERROR))
			rc = verr_set(err, VERR_INVALID, "invalid key: the HSM key does not open the wrapped data key (%s)", ckr_name(rv));
		else
			rc = verr_set(err, VERR_UNAVAILABLE, "pkcs11 seal: %s%s %s failed: %s%s",
				      p->rsa ? "RSA-OAEP with " : "AES-GCM", p->rsa ? oh->name : "",
				      enc ? "encryption" : "decryption", ckr_name(rv),
				      p->rsa && (rv == CKR_ARGUMENTS_BAD || rv == CKR_MECHANISM_PARAM_INVALID)
					      ? " (the module may not support this OAEP hash: see rsa_oaep_hash)"
					      : "");
		break;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int pkcs11_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
		       size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	struct pkcs11 *p = (struct pkcs11 *)s;
	(void)kek;
	(void)kek_len;
	uint8_t *dek = secmem_alloc(AEAD_KEY_LEN), *ct = NULL, iv[GCM_IV_LEN], wk[RSA_MAX_BYTES];
	size_t ctl = 0, wkl = sizeof(wk);
	char *iv64 = NULL, *wk64 = NULL, *ct64 = NULL;
	int rc = dek ? rand_bytes(dek, AEAD_KEY_LEN, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = rand_bytes(iv, sizeof(iv), err);
	if (!rc)
		rc = aead_blob_seal(&ct, &ctl, dek, PKCS11_ROOT_PATH, root, root_len, err);
	if (!rc)
		rc = hsm_crypt(p, true, p->oaep, iv, dek, AEAD_KEY_LEN, wk, &wkl, err);
	if (!rc && (!(iv64 = b64_encode(iv, sizeof(iv), false)) || !(wk64 = b64_encode(wk, wkl, false)) ||
		    !(ct64 = b64_encode(ct, ctl, false))))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc) {
		json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "pkcs11", "mechanism",
				      p->rsa ? "CKM_RSA_PKCS_OAEP" : "CKM_AES_GCM", "key_label",
				      p->key_label ? p->key_label : "", "wrapped_key", wk64, "ciphertext", ct64);
		if (b && !p->rsa)
			json_object_set_new(b, "iv", json_string(iv64));
		if (b && p->rsa)
			json_object_set_new(b, "oaep_hash", json_string(p->oaep->name));
		char *txt = b ? json_dumps(b, JSON_COMPACT) : NULL;
		json_decref(b);
		if (!txt) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		} else {
			*out = (uint8_t *)txt;
			*out_len = strlen(txt);
		}
	}
	secmem_free(dek, AEAD_KEY_LEN);
	free(ct);
	free(iv64);
	free(wk64);
	free(ct64);
	return rc;
}

static int pkcs11_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
			 size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err)
{
	struct pkcs11 *p = (struct pkcs11 *)s;
	(void)kek;
	(void)kek_len;
	json_t *b = json_loadb((const char *)blob, blob_len, 0, NULL);
	const char *iv64 = json_string_value(json_object_get(b, "iv"));
	const char *wk64 = json_string_value(json_object_get(b, "wrapped_key"));
	const char *ct64 = json_string_value(json_object_get(b, "ciphertext"));
	const char *mech = json_string_value(json_object_get(b, "mechanism"));
	const char *want = p->rsa ? "CKM_RSA_PKCS_OAEP" : "CKM_AES_GCM";
	uint8_t *iv = NULL, *wk = NULL, *ct = NULL, *dek = NULL;
	size_t ivl = 0, wkl = 0, ctl = 0, dekl = p->rsa ? RSA_MAX_BYTES : AEAD_KEY_LEN + GCM_TAG_LEN;
	int rc = 0;
	const char *hn = json_string_value(json_object_get(b, "oaep_hash"));
	const struct oaep_hash *oh = p->rsa && hn ? oaep_find(hn) : p->oaep;
	if (mech && strcmp(mech, want))
		rc = verr_set(err, VERR_INVALID, "invalid key: the stored root key was wrapped with %.40s, the seal is configured for %s",
			      mech, want);
	else if ((!p->rsa && !iv64) || !wk64 || !ct64 || (p->rsa && !oh) ||
		 (!p->rsa && b64_decode(&iv, &ivl, iv64, false, NULL)) ||
		 b64_decode(&wk, &wkl, wk64, false, NULL) || b64_decode(&ct, &ctl, ct64, false, NULL) ||
		 (!p->rsa && (ivl != GCM_IV_LEN || wkl != AEAD_KEY_LEN + GCM_TAG_LEN)) ||
		 (p->rsa && (wkl < RSA_MIN_BITS / 8 || wkl > RSA_MAX_BYTES)))
		rc = verr_set(err, VERR_INVALID, "invalid key: the stored root key is not a pkcs11 envelope");
	if (!rc && !(dek = secmem_alloc(dekl)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = hsm_crypt(p, false, oh, iv, wk, wkl, dek, &dekl, err);
	if (!rc && dekl != AEAD_KEY_LEN)
		rc = verr_set(err, VERR_INVALID, "invalid key: the HSM returned a data key of the wrong length");
	if (!rc)
		rc = aead_blob_open(root, root_len, dek, PKCS11_ROOT_PATH, ct, ctl, err);
	secmem_free(dek, p->rsa ? RSA_MAX_BYTES : AEAD_KEY_LEN + GCM_TAG_LEN);
	if (iv)
		b64_free(iv, ivl, false);
	if (wk)
		b64_free(wk, wkl, false);
	if (ct)
		b64_free(ct, ctl, false);
	json_decref(b);
	return rc;
}

static void pkcs11_free(struct pkcs11 *p)
{
	if (!p)
		return;
	if (p->f) {
		drop_session(p);
		if (p->initialized)
			p->f->C_Finalize(NULL);
	}
	if (p->dl)
		dlclose(p->dl);
	secmem_free(p->pin, p->pin_cap);
	free(p->lib);
	free(p->token_label);
	free(p->key_label);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static void pkcs11_close(struct seal *s)
{
	pkcs11_free((struct pkcs11 *)s);
}

static const struct seal_ops pkcs11_ops = {
	.version = SEAL_OPS_VERSION,
	.type = "pkcs11",
	.recovery_keys = true,
	.needs_kek = false,
	.root_path = PKCS11_ROOT_PATH,
	.wrap = pkcs11_wrap,
	.unwrap = pkcs11_unwrap,
	.close = pkcs11_close,
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int seal_pkcs11_new(struct seal **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	struct pkcs11 *p = calloc(1, sizeof(*p));
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	p->base.ops = &pkcs11_ops;
	p->key = p->pub = CK_INVALID_HANDLE;
	pthread_mutex_init(&p->mu, NULL);
	int rc = 0;
	const char *lib = conf_str(conf, "lib", "VAULT_HSM_LIB");
	const char *pin = conf_str(conf, "pin", "VAULT_HSM_PIN");
	const char *label = conf_str(conf, "token_label", "VAULT_HSM_TOKEN_LABEL");
	const char *slot = conf_str(conf, "slot", "VAULT_HSM_SLOT");
	const char *klabel = conf_str(conf, "key_label", "VAULT_HSM_KEY_LABEL");
	const char *kid = conf_str(conf, "key_id", "VAULT_HSM_KEY_ID");
	const char *mech = conf_str(conf, "mechanism", "VAULT_HSM_MECHANISM");
	const char *gen = conf_str(conf, "generate_key", "VAULT_HSM_GENERATE_KEY");
	const char *ohash = conf_str(conf, "rsa_oaep_hash", "VAULT_HSM_RSA_OAEP_HASH");
	if (!lib) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: lib (the PKCS#11 module path) is required");
		goto out;
	}
	if (!pin) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: pin is required (or VAULT_HSM_PIN)");
		goto out;
	}
	if (!label && !slot) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: slot or token_label is required");
		goto out;
	}
	if (!klabel && !kid) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: key_label or key_id is required");
		goto out;
	}
	if (mech) {
		char *end = NULL;
		unsigned long m = strtoul(mech, &end, 0);
		bool num = end && end != mech && !*end;
		bool gcm_m = !strcmp(mech, "CKM_AES_GCM") || (num && m == CKM_AES_GCM);
		p->rsa = !strcmp(mech, "CKM_RSA_PKCS_OAEP") || (num && m == CKM_RSA_PKCS_OAEP);
		if (!gcm_m && !p->rsa) {
			rc = verr_set(err, VERR_INVALID,
				      "pkcs11 seal: mechanism \"%.40s\" is not supported; use CKM_AES_GCM (0x1087) or CKM_RSA_PKCS_OAEP (0x0009)",
				      mech);
			goto out;
		}
	}
	if (slot) {
		char *end = NULL;
		unsigned long long v = strtoull(slot, &end, 0);
		if (!end || *end) {
			rc = verr_set(err, VERR_INVALID, "pkcs11 seal: slot must be a number");
			goto out;
		}
		p->slot = (CK_SLOT_ID)v;
		p->have_slot = true;
	}
	if (kid) {
		size_t n = strlen(kid);
		if (!strncmp(kid, "0x", 2)) {
			kid += 2;
			n -= 2;
		}
		if (n == 0 || n % 2 || n / 2 > sizeof(p->key_id)) {
			rc = verr_set(err, VERR_INVALID, "pkcs11 seal: key_id must be hex");
			goto out;
		}
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval(kid[2 * i]), lo = hexval(kid[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				rc = verr_set(err, VERR_INVALID, "pkcs11 seal: key_id must be hex");
				goto out;
			}
			p->key_id[i] = (uint8_t)(hi << 4 | lo);
		}
		p->key_id_len = n / 2;
	}
	p->oaep = oaep_find(ohash ? ohash : "sha256");
	if (!p->oaep) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: rsa_oaep_hash \"%.20s\" is not one of sha1, sha224, sha256, sha384, sha512",
			      ohash);
		goto out;
	}
	p->generate = gen && (!strcmp(gen, "true") || !strcmp(gen, "1"));
	p->lib = strdup(lib);
	p->token_label = label ? strdup(label) : NULL;
	p->key_label = klabel ? strdup(klabel) : NULL;
	p->pin_cap = strlen(pin) + 1;
	p->pin = secmem_alloc(p->pin_cap);
	if (!p->lib || !p->pin || (label && !p->token_label) || (klabel && !p->key_label)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(p->pin, pin, p->pin_cap);
	p->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		const char *why = dlerror();
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: cannot load %s: %.200s", lib, why ? why : "");
		goto out;
	}
	CK_C_GetFunctionList gfl = NULL;
	*(void **)&gfl = dlsym(p->dl, "C_GetFunctionList");
	if (!gfl || gfl(&p->f) != CKR_OK || !p->f) {
		rc = verr_set(err, VERR_INVALID, "pkcs11 seal: %s is not a PKCS#11 module (no C_GetFunctionList)", lib);
		p->f = NULL;
		goto out;
	}
out:
	if (rc) {
		pkcs11_free(p);
		return rc;
	}
	*out = &p->base;
	return 0;
}
