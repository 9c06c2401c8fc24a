/*
 * pki_int.h - internals shared by the files of the PKI secrets engine
 * (src/secrets/pki/): the per-mount instance, the cached CA state, roles,
 * certificate building, revocation and CRLs. Nothing outside pki/ includes
 * this header; the engine's only export is pki_backend_ops (secrets.h).
 *
 * DESIGN
 *
 * Storage layout (inside the mount's view, below the barrier):
 *   config/urls            {issuing_certificates, crl_distribution_points, ocsp_servers}
 *   config/issuers         {default}            default issuer id
 *   config/keys            {default}            default key id
 *   config/crl             {expiry, disable, auto_rebuild, ...}
 *   issuer/<id>            {issuer_id, issuer_name, key_id, certificate, ca_chain,
 *                           leaf_not_after_behavior, usage, manual_chain}
 *   key/<id>               {key_id, key_name, key_type, key_bits, private_key (PKCS#8 PEM)}
 *   role/<name>            the role's fields, normalised
 *   certs/<aa-bb-..>       the certificate's DER bytes (raw, no JSON)
 *   revoked/<aa-bb-..>     {serial_number, revocation_time, issuer_id, expiration}
 *   crl/<issuer>/meta      {number, len, chunks, base_number, this_update}
 *   crl/<issuer>/<i>       the CRL's DER in chunks of PKI_CRL_CHUNK bytes
 *   crl/<issuer>/delta     the delta CRL's DER (enable_delta), whole
 *
 * The CA state (issuers with their parsed certificates and keys, the
 * default issuer, the URLs) is read once at init and after every write to
 * it, into an immutable, reference-counted `struct pki_state`: a request
 * takes a reference (one mutex-protected increment), uses the parsed
 * objects without further locking and drops it. Writers (root generation,
 * imports, issuer updates) serialise on `cfg_lock`, write storage, then
 * rebuild the state and swap it in. Start-up therefore reads the issuers
 * and keys only, never the certificates or revocations.
 *
 * Revocations are indexed in memory per issuer (serials and times) the first
 * time a CRL is built; the index is extended on every revoke and dropped on
 * invalidate. A CRL is written as DER by hand (crl.c) from that sorted index
 * and signed once, so rebuilding is linear in the number of revocations.
 *
 * Thread-safety: handlers run concurrently; `state_lock` guards the state
 * pointer swap, `cfg_lock` serialises CA writers, `crl_lock` the revocation
 * index and CRL rebuilds. Parsed OpenSSL objects in a state are never
 * modified after the state is published (signing with a shared EVP_PKEY
 * from several threads is safe in OpenSSL 3).
 */
#ifndef COFFER_SECRETS_PKI_PKI_INT_H
#define COFFER_SECRETS_PKI_PKI_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "logical/logical.h"

#define PKI_ID_LEN 36
#define PKI_NAME_MAX 128
#define PKI_SERIAL_BYTES 20 /* RFC 5280 maximum; top bit cleared: >= 152 random bits */
#define PKI_SERIAL_HEX (PKI_SERIAL_BYTES * 3)
#define PKI_CRL_CHUNK (512 * 1024)
#define PKI_DEFAULT_CRL_EXPIRY (72 * 3600)
#define PKI_DEFAULT_SAFETY_BUFFER (72 * 3600)

/* ---- keys ---- */

enum pki_key_type { PKI_KEY_RSA = 1, PKI_KEY_EC, PKI_KEY_ED25519, PKI_KEY_ANY };

struct pki_key {
	char id[PKI_ID_LEN + 1];
	char name[PKI_NAME_MAX];
	enum pki_key_type type;
	int bits;
	EVP_PKEY *pkey; /* parsed once, never modified afterwards */
};

/* "rsa"|"ec"|"ed25519"|"any" -> type; 0 if unknown. */
enum pki_key_type pki__key_type_parse(const char *s);
const char *pki__key_type_name(enum pki_key_type t);
/* Default and validity of key_bits for a type (0 = the type's default).
 * Fills *bits with the effective size. */
int pki__key_bits_check(enum pki_key_type t, int *bits, struct verr *err);
/* Generate a key pair. Algorithms are fetched once per process. */
int pki__keygen(EVP_PKEY **out, enum pki_key_type t, int bits, struct verr *err);
/* The type and size of an existing key (RSA modulus, EC curve bits). */
void pki__key_info(const EVP_PKEY *pk, enum pki_key_type *type, int *bits);
/* PEM encodings. fmt: "der" (= traditional: RSA/EC PRIVATE KEY), "pem"
 * (same), "pkcs8". Returned strings are malloc'd; wipe before free. */
char *pki__key_to_pem(EVP_PKEY *pk, const char *fmt);
/* DER of the private key (same formats), base64 - for format=der. */
char *pki__key_to_der_b64(EVP_PKEY *pk, const char *fmt);
/* Parse a PEM private key (any PEM key format). */
EVP_PKEY *pki__key_from_pem(const char *pem, size_t len);
/* Wipe and free a string that held key material. */
void pki__free_secret_str(char *s);

/* ---- certificates and encodings ---- */

/* DER writing into a struct buf (util/buf.h): a definite length, and a
 * whole tag-length-value. */
struct buf;
void pki__der_len(struct buf *o, size_t n);
void pki__der_tlv(struct buf *o, uint8_t tag, const void *p, size_t n);

/* "39:dd:2e:..." from an ASN1_INTEGER; out must hold PKI_SERIAL_HEX+4. */
void pki__serial_colon(const ASN1_INTEGER *ai, char *out, size_t cap);
/* Normalise a serial given by a client ("39:DD:2e", "39-dd-2e") into the
 * storage form "39-dd-2e"; VERR_INVALID if malformed. */
int pki__serial_normalise(const char *in, char *out, size_t cap, struct verr *err);
char *pki__x509_to_pem(X509 *x);
char *pki__x509_to_der_b64(X509 *x);
/* Every certificate in a PEM text (in order). */
STACK_OF(X509) *pki__pem_certs(const char *pem);
X509 *pki__x509_from_pem(const char *pem);
X509 *pki__x509_from_der(const uint8_t *der, size_t len);
int64_t pki__asn1_time_unix(const ASN1_TIME *t);
char *pki__b64(const uint8_t *p, size_t n);
/* 1 when x is self-signed (subject == issuer and the signature verifies). */
bool pki__self_signed(X509 *x);

/* ---- issuers and the cached CA state ---- */

enum pki_leaf_behavior { PKI_LEAF_ERR = 0, PKI_LEAF_TRUNCATE, PKI_LEAF_PERMIT };

struct pki_issuer {
	char id[PKI_ID_LEN + 1];
	char name[PKI_NAME_MAX];
	char key_id[PKI_ID_LEN + 1]; /* "" when no key is held */
	X509 *cert;
	char *cert_pem;
	json_t *chain;   /* array of PEM strings: this cert first, then its parents */
	EVP_PKEY *pkey;  /* the key's pkey (reference held), NULL without a key */
	const EVP_MD *md; /* signature digest for this key (NULL for ed25519) */
	int64_t not_after;
	enum pki_leaf_behavior leaf;
	json_t *usage;   /* array of strings */
	json_t *manual_chain; /* array of issuer ids or NULL */
	ASN1_OCTET_STRING *skid; /* the CA's subject key id (for AKI) */
	uint8_t *name_der; /* DER of the subject name (CRLs) */
	int name_der_len;
	bool revoked;
};

struct pki_state {
	int refs; /* guarded by backend->state_lock */
	struct pki_issuer **issuers;
	size_t n_issuers;
	struct pki_issuer *def; /* default issuer or NULL */
	struct pki_key **keys;
	size_t n_keys;
	char default_key[PKI_ID_LEN + 1];
	json_t *urls; /* {issuing_certificates:[..], crl_distribution_points:[..], ocsp_servers:[..]} */
	json_t *crl_cfg;
};

struct pki_revoked {
	uint8_t serial[PKI_SERIAL_BYTES + 1];
	uint8_t len;
	int64_t time;
};

struct pki_crl_index {
	char issuer[PKI_ID_LEN + 1];
	struct pki_revoked *v;
	size_t n, cap;
	uint8_t *der; /* last built CRL, cached */
	size_t der_len;
	int64_t number;      /* the last CRL number used (complete and delta share it) */
	int64_t base_number; /* the number of the last complete CRL */
	int64_t base_time;   /* its thisUpdate: a delta lists revocations since */
	size_t base_count;   /* v[0..base_count) were in it (valid when built here:
			      * index_add appends); else base_time decides */
	bool base_count_valid;
	uint8_t *delta_der;  /* last built delta CRL (enable_delta), cached */
	size_t delta_len;
};

/* Extensions beyond AKI and CRL number (pki__crl_encode_ext). */
struct pki_crl_opts {
	int64_t delta_base;   /* >= 0: a delta CRL (critical Delta CRL Indicator) */
	json_t *freshest;     /* array of URLs: Freshest CRL extension, or NULL */
};

struct pki_backend {
	struct storage_view *view;
	const struct system_view *sys;
	pthread_mutex_t state_lock;
	struct pki_state *state;
	pthread_mutex_t cfg_lock;
	pthread_mutex_t crl_lock;
	bool index_loaded;
	struct pki_crl_index *crls;
	size_t n_crls;
	pthread_mutex_t role_lock;
	json_t *roles; /* cache: name -> parsed role JSON (validated) */
	int64_t tidy_last;
	/* tidy: guarded by role_lock (with tidy_status) */
	bool tidy_running, tidy_cancel;
	int64_t auto_tidy_last; /* last auto-tidy end (mount time at first: Vault) */
	int64_t delta_last; /* periodic: the last delta rebuild */
	json_t *tidy_status;
};

/* Take a reference on the current state (never NULL after init). */
struct pki_state *pki__state_get(struct pki_backend *b);
void pki__state_put(struct pki_backend *b, struct pki_state *s);
/* Re-read issuers, keys and config from storage and publish them. */
int pki__state_reload(struct pki_backend *b, struct verr *err);
/* Issuer by id, name or "default"; NULL when unknown. */
struct pki_issuer *pki__issuer_find(struct pki_state *s, const char *ref);
struct pki_key *pki__key_find(struct pki_state *s, const char *ref);
/* The issuer (holding a key) that signed cert x, or NULL. */
struct pki_issuer *pki__issuer_of(struct pki_state *s, X509 *x);

/* ---- roles ---- */

struct pki_role {
	json_t *allowed_domains, *allowed_uri_sans, *allowed_other_sans, *key_usage,
		*ext_key_usage, *ext_key_usage_oids;
	json_t *ou, *organization, *country, *locality, *province, *street_address,
		*postal_code;
	bool allow_localhost, allow_bare_domains, allow_subdomains, allow_glob_domains,
		allow_wildcard_certificates, allow_any_name, enforce_hostnames, allow_ip_sans,
		server_flag, client_flag, code_signing_flag, email_protection_flag, no_store,
		generate_lease, require_cn, use_csr_common_name, use_csr_sans,
		basic_constraints_valid_for_non_ca;
	enum pki_key_type key_type;
	int key_bits, signature_bits;
	int64_t ttl, max_ttl, not_before_duration;
	const char *issuer_ref;
};

/* Fill r from a stored role object (borrowed references into obj). */
void pki__role_from_json(struct pki_role *r, json_t *obj);
/* Vault's name rules: 1 when `name` (a CN or DNS/email SAN) is allowed. */
bool pki__role_name_allowed(const struct pki_role *r, const char *name);
/* 1 when uri matches one of allowed_uri_sans (globs). */
bool pki__role_uri_allowed(const struct pki_role *r, const char *uri);
/* Glob match where '*' matches any run of characters (Vault's go-glob). */
bool pki__glob(const char *pattern, const char *s);
/* A valid hostname (optionally "*." wildcard first label). */
bool pki__valid_hostname(const char *s);
/* Effective validity: ttl requested (0 = role ttl, else mount default),
 * capped to max_ttl (role, else the mount's), then checked against the
 * issuer's notAfter per its leaf_not_after_behavior. Fills not_after (unix
 * seconds); a warning may be appended to resp. */
int pki__role_not_after(const struct pki_role *r, int64_t req_ttl, const char *req_not_after,
			int64_t now, int64_t mount_default, int64_t mount_max,
			const struct pki_issuer *iss, int64_t *not_after,
			struct logical_response *resp, struct verr *err);
/* Load a role (cached). *out is a new reference. */
int pki__role_load(struct pki_backend *b, const char *name, json_t **out, struct verr *err);
const struct path_def *pki__role_paths(void);

/* ---- building certificates ---- */

struct pki_subject {
	const char *cn;
	json_t *dns;  /* array of strings (SAN DNS, email with '@') */
	json_t *ips;  /* array of strings */
	json_t *uris; /* array of strings */
	json_t *ou, *organization, *country, *locality, *province, *street_address,
		*postal_code; /* arrays of strings, may be NULL */
	const char *serial_number; /* subject serialNumber attribute */
};

struct pki_cert_params {
	struct pki_subject subj;
	X509_NAME *subject_name; /* overrides subj's name fields when set (verbatim) */
	EVP_PKEY *pubkey;
	int64_t not_before, not_after;
	bool is_ca;
	int max_path_length; /* -1: none */
	json_t *key_usage;   /* array of Vault names (DigitalSignature, ...) */
	json_t *ext_key_usage; /* ServerAuth, ClientAuth, ... */
	json_t *ext_key_usage_oids;
	bool server_flag, client_flag, code_signing_flag, email_protection_flag;
	bool basic_constraints; /* add basicConstraints CA:FALSE to a leaf */
	json_t *permitted_dns_domains;
	json_t *urls;
	bool self_signed;
};

/* Sign a certificate: issuer NULL => self-signed with sign_key. */
int pki__cert_build(X509 **out, const struct pki_cert_params *p, const struct pki_issuer *iss,
		    EVP_PKEY *sign_key, struct verr *err);
/* A CSR for a CA key. */
int pki__csr_build(X509_REQ **out, const struct pki_subject *subj, EVP_PKEY *key,
		   bool add_basic_constraints, struct verr *err);
X509_REQ *pki__csr_from_pem(const char *pem);
/* Names in the CSR: CN and SAN entries appended to subj arrays. */
void pki__csr_names(X509_REQ *req, char **cn, json_t *dns, json_t *ips, json_t *uris);
/* Random serial (PKI_SERIAL_BYTES, top bit clear, never zero). */
int pki__serial_random(ASN1_INTEGER **out, struct verr *err);
/* Split "a,b" SAN strings from fields into the subject arrays (DNS vs email
 * vs IP). Returns VERR_INVALID for a malformed IP. */
int pki__split_alt_names(json_t *alt, json_t *dns, struct verr *err);
int pki__check_ips(json_t *ips, struct verr *err);
const EVP_MD *pki__md_for(EVP_PKEY *pk, int signature_bits);

/* ---- stored certificates, revocation, CRL ---- */

int pki__cert_store(struct pki_backend *b, X509 *x, struct verr *err);
/* certs/<serial> -> X509 (NULL, 0 when absent). */
int pki__cert_load(struct pki_backend *b, const char *serial_dash, X509 **out, struct verr *err);
int pki__revoke_serial(struct pki_backend *b, const char *serial, struct logical_response *resp,
		       struct verr *err);
int pki__crl_rebuild(struct pki_backend *b, struct verr *err);
/* DER of the CRL for an issuer (built on first use), malloc'd. */
int pki__crl_get(struct pki_backend *b, const struct pki_issuer *iss, uint8_t **der,
		 size_t *len, struct verr *err);
/* Build a CRL from a sorted array of entries (exposed for tests/bench). */
int pki__crl_encode(const struct pki_issuer *iss, const struct pki_revoked *v, size_t n,
		    int64_t number, int64_t this_update, int64_t next_update, uint8_t **out,
		    size_t *out_len, struct verr *err);
int pki__crl_encode_ext(const struct pki_issuer *iss, const struct pki_revoked *v, size_t n,
			int64_t number, int64_t this_update, int64_t next_update,
			const struct pki_crl_opts *opts, uint8_t **out, size_t *out_len,
			struct verr *err);
/* DER of the issuer's delta CRL (VERR_INVALID when enable_delta is off). */
int pki__crl_delta_get(struct pki_backend *b, const struct pki_issuer *iss, uint8_t **der,
		       size_t *len, struct verr *err);
/* Rebuild every issuer's delta CRL (a no-op unless enable_delta). */
int pki__crl_rebuild_delta(struct pki_backend *b, struct verr *err);
void pki__crl_sort(struct pki_revoked *v, size_t n);
void pki__crl_index_free(struct pki_backend *b);
const struct path_def *pki__crl_paths(void);
/* Run a tidy now (in the caller's thread), recording tidy-status.
 * *started is false (and nothing done) when another tidy is running. */
int pki__tidy_run(struct pki_backend *b, bool certs, bool revoked, int64_t safety,
		  bool *started, struct verr *err);
/* The periodic hook's part: run config/auto-tidy when enabled and due. */
int pki__auto_tidy(struct pki_backend *b, struct verr *err);

/* ---- paths ---- */

const struct path_def *pki__issue_paths(void);
const struct path_def *pki__ocsp_paths(void); /* ocsp.c */
/* A raw (non-JSON) response body: p (malloc'd) is transferred to resp. */
int pki__raw_reply(struct logical_response *resp, void *p, size_t n, const char *ctype);
const struct path_def *pki__ca_paths(void);
/* Common output of issue/sign: certificate, issuing_ca, ca_chain,
 * serial_number, expiration in `format`. */
int pki__cert_response(json_t *data, X509 *x, const struct pki_issuer *iss, const char *format,
		       struct verr *err);
/* 1 if the format string is one of pem|der|pem_bundle */
bool pki__format_ok(const char *f);
/* Parsed JSON string array helper: a new array of non-empty trimmed strings
 * from a field value (array or comma string). */
json_t *pki__strlist(json_t *v);
/* Time helpers */
json_t *pki__rfc3339(int64_t secs);
int64_t pki__now(const struct pki_backend *b);

#endif
