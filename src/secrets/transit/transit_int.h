/*
 * transit_int.h - internals shared by the transit engine's files
 * (src/secrets/transit/): the key policy, the key cache, the crypto per key
 * type, base64, and the path handlers' helpers. Nothing outside this folder
 * includes it; the engine is reached through transit_backend_ops
 * (secrets/secrets.h).
 *
 * DESIGN
 * A named key ("policy", as Vault calls it) is a list of versions 1..latest;
 * versions below min_available_version have been trimmed and hold nothing.
 * Each version holds its key material in one secmem buffer (locked,
 * non-dumpable, wiped on free):
 *   aes128/aes256/chacha20  raw key (16/32/32 bytes)
 *   hmac                    raw key (key_size bytes)
 *   ed25519                 seed(32) | public(32), as Vault exports it
 *   ecdsa-*, rsa-*          PKCS#8 DER of the private key
 * plus a 32-byte HMAC key (hmac/:name, verify with hmac) and, for asymmetric
 * types, the formatted public key (base64 for ed25519, PEM otherwise).
 * Asymmetric keys are parsed into an EVP_PKEY on first use and kept with
 * the version while the key is cached (transit__pkey_get): parsing PKCS#8
 * through OpenSSL 3's decoders cost about 5M instructions, 90 % of a P-256
 * sign. The EVP_PKEY lives in OpenSSL's heap, not in secmem: in process
 * memory that is not dumpable (the server sets PR_SET_DUMPABLE 0) but may be
 * swapped; private BIGNUMs are allocated with BN_secure_new, so they go to
 * OpenSSL's secure heap when the process has initialised one, and are
 * cleared on free. It is freed when the version is cleared (trim, eviction,
 * delete, invalidate, seal/unmount).
 *
 * Hot paths (scratch.c): decoded plaintexts and decryption results go to a
 * per-thread locked scratch buffer (no mmap/mlock/munmap per request), AEAD
 * nonces come from a per-thread pool of CSPRNG bytes, and a batch keeps one
 * cipher context (struct transit_aead) so each item only sets its nonce.
 *
 * Storage (the mount's view, below the barrier): "policy/<name>" is the
 * whole key as JSON (key material base64); "config/cache" holds the cache
 * size; "wrapping_key" the BYOK wrapping key (byok.c, its own DESIGN
 * block). Imported keys are ordinary keys with imported=true. Raw bytes read from storage and the JSON strings holding key
 * material are wiped after use (transit__json_wipe).
 *
 * Concurrency: the cache (struct transit) is guarded by t->lock; each key by
 * its own rwlock: operations that use a key (encrypt, sign ...) hold it for
 * reading, those that change it (rotate, config, trim) for writing and
 * persist before unlocking. A key is reference counted: eviction or delete
 * removes it from the cache, the last tkey_release frees (wipes) it.
 * Creation (keys/:name, upsert by encrypt, restore) is serialised by
 * t->create_lock so two upserts cannot both generate a key.
 */
#ifndef COFFER_SECRETS_TRANSIT_TRANSIT_INT_H
#define COFFER_SECRETS_TRANSIT_TRANSIT_INT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logical/logical.h"
#include "util/b64.h"

enum tkey_type {
	TK_AES128_GCM96 = 0,
	TK_AES256_GCM96,
	TK_CHACHA20_POLY1305,
	TK_ED25519,
	TK_ECDSA_P256,
	TK_ECDSA_P384,
	TK_ECDSA_P521,
	TK_RSA2048,
	TK_RSA3072,
	TK_RSA4096,
	TK_HMAC,
	TK__COUNT
};

#define TRANSIT_NONCE_LEN 12
#define TRANSIT_TAG_LEN 16
#define TRANSIT_HMAC_KEY_LEN 32
#define TRANSIT_MAX_BATCH 100000
#define TRANSIT_CONVERGENT_VERSION 3
#define TRANSIT_MIN_CACHE 10
#define TRANSIT_HMAC_MIN 32
#define TRANSIT_HMAC_MAX 512

const char *tkey_type_name(enum tkey_type t);
int tkey_type_parse(const char *s, enum tkey_type *out);
bool tkey_is_symmetric(enum tkey_type t); /* aes/chacha: AEAD */
bool tkey_supports_encryption(enum tkey_type t);
bool tkey_supports_signing(enum tkey_type t);
bool tkey_supports_derivation(enum tkey_type t);
bool tkey_is_rsa(enum tkey_type t);
bool tkey_is_ecdsa(enum tkey_type t);

struct tkey_version {
	uint8_t *key;      /* secmem, key_len bytes; NULL once trimmed */
	size_t key_len;
	uint8_t *hmac_key; /* secmem, TRANSIT_HMAC_KEY_LEN */
	char *public_key;  /* asymmetric: base64 (ed25519) or PEM; else NULL */
	int64_t created;   /* unix seconds */
	/* asymmetric: the parsed private key, set once on first use (atomic
	 * compare-and-swap; readers hold the key's read lock), freed by
	 * transit__version_clear; NULL until then */
	EVP_PKEY *pkey;
};

struct tkey {
	char *name;
	enum tkey_type type;
	bool derived, convergent, exportable, allow_plaintext_backup, deletion_allowed;
	bool imported;       /* BYOK: version 1 came from keys/:name/import */
	bool allow_rotation; /* imported keys: rotate allowed (import's allow_rotation) */
	int convergent_version;
	int latest_version, min_decryption_version, min_encryption_version,
		min_available_version;
	int key_size;               /* hmac keys only */
	int64_t auto_rotate_period; /* seconds; 0 = off */
	int64_t backup_time;        /* 0 = never backed up */
	int backup_version;
	int64_t restore_time;
	int restore_version;
	struct tkey_version *versions; /* [v - 1] for v in 1..latest_version */
	pthread_rwlock_t lock;
	/* cache bookkeeping, under transit.lock */
	int refs;
	uint64_t last_use;
	bool cached;
};

struct transit {
	const struct storage_view *view; /* borrowed: the mount's */
	const struct system_view *sys;
	pthread_mutex_t lock;        /* the cache below */
	pthread_mutex_t create_lock; /* creation of new keys */
	struct tkey **keys;          /* cached keys, unordered */
	size_t nkeys, cap;
	size_t cache_size;           /* 0 = unlimited */
	uint64_t tick;
	/* BYOK wrapping key (byok.c), under wrap_lock: made on first use,
	 * stored below the barrier as "wrapping_key"; while cached the private
	 * half is PKCS#8 DER in secmem (wrap_der), parsed per import */
	pthread_mutex_t wrap_lock;
	uint8_t *wrap_der;
	size_t wrap_der_len;
	char *wrap_pem;
};

/* ---- keys.c: the policy, its storage and the cache ---- */

/* Look a key up (cache, then storage). *out is NULL (and 0 returned) when it
 * does not exist. The caller holds a reference: tkey_release(). */
int transit__key_get(struct transit *t, const char *name, struct tkey **out, struct verr *err);
void transit__key_release(struct transit *t, struct tkey *k);

struct tkey_params {
	enum tkey_type type;
	bool derived, convergent, exportable, allow_plaintext_backup;
	int key_size;
	int64_t auto_rotate_period;
};
/* Vault's 400s for settings that do not go together (convergent without
 * derived, derivation on a type without it). */
int transit__params_check(const struct tkey_params *p, struct verr *err);
/* Get the key, creating it with p when absent (*created tells which). */
int transit__key_upsert(struct transit *t, const char *name, const struct tkey_params *p,
			struct tkey **out, bool *created, struct verr *err);
#define TRANSIT_IMPORT_EXISTS                                                            \
	"the import path cannot be used with an existing key; use import-version to rotate " \
	"an existing imported key"
/* Create key `name` (imported) with v as its version 1; v's material is
 * taken over (and wiped on failure). A 400 TRANSIT_IMPORT_EXISTS when the
 * name is taken. */
int transit__key_import(struct transit *t, const char *name, const struct tkey_params *p,
			bool allow_rotation, struct tkey_version *v, struct verr *err);
/* Append v (taken over, wiped on failure) as the next version and persist.
 * Caller holds k->lock for writing. */
int transit__key_add_version(struct transit *t, struct tkey *k, struct tkey_version *v,
			     struct verr *err);
/* Delete (honours deletion_allowed); VERR_INVALID messages as Vault's. */
int transit__key_delete(struct transit *t, const char *name, struct verr *err);
/* Caller holds k->lock for writing. */
int transit__key_rotate(struct transit *t, struct tkey *k, struct verr *err);
int transit__key_persist(struct transit *t, const struct tkey *k, struct verr *err);
/* Free versions below k->min_available_version (caller holds the write lock). */
void transit__key_trim_memory(struct tkey *k);
/* Drop a key from the cache (invalidate hook, restore). */
void transit__cache_evict(struct transit *t, const char *name);
void transit__cache_set_size(struct transit *t, size_t size);
/* The stored form of a key (for backup): owned JSON with key material. */
json_t *transit__key_to_json(const struct tkey *k);
int transit__key_from_json(const json_t *j, struct tkey **out, struct verr *err);
void transit__key_free(struct tkey *k);
/* Store a restored key under name (force: replace an existing one). */
int transit__key_restore(struct transit *t, const char *name, struct tkey *k, bool force,
			 struct verr *err);
/* Wipe the key-material strings of a key's JSON (before json_decref). */
void transit__json_wipe(json_t *j);
/* Generate the material of one version of a key of type `type`. */
int transit__gen_version(struct tkey_version *v, enum tkey_type type, int key_size,
			 struct verr *err);
void transit__version_clear(struct tkey_version *v);
/* Fill v's key (ed25519 seed|public, else PKCS#8 DER, in secmem) and
 * public key from pk. On error v may hold part: transit__version_clear. */
int transit__version_set_pkey(struct tkey_version *v, enum tkey_type type, EVP_PKEY *pk,
			      struct verr *err);
/* A fresh random per-version HMAC key into v->hmac_key. */
int transit__version_hmac_key(struct tkey_version *v, struct verr *err);
/* Version entry, or NULL if ver is out of range or trimmed. */
const struct tkey_version *transit__version(const struct tkey *k, int ver);
int transit__periodic(struct transit *t, struct verr *err);

/* ---- crypto.c ---- */

struct tscratch;     /* scratch.c, below */
struct transit_aead; /* scratch.c, below */

/* Symmetric or RSA encryption of pt with version ver (resolved, >= 1).
 * *out is "vault:v<ver>:<base64>" (malloc'd), *out_len its length. ctx:
 * derivation context (may be empty when the key is not derived). nonce:
 * only for old convergent keys, otherwise must be empty. a: cipher state
 * kept across a batch, or NULL. */
int transit__encrypt(char **out, size_t *out_len, const struct tkey *k, int ver,
		     const uint8_t *ctx, size_t ctx_len, const uint8_t *pt, size_t pt_len,
		     const uint8_t *aad, size_t aad_len, bool nonce_given, struct transit_aead *a,
		     struct verr *err);
/* Decrypt a "vault:vN:..." value into the scratch s (the caller puts it
 * back): *out, *out_len bytes (NUL after them); *ver_out the version it was
 * encrypted with. a: cipher state kept across a batch, or NULL. */
int transit__decrypt(struct tscratch *s, uint8_t **out, size_t *out_len, int *ver_out,
		     const struct tkey *k, const char *ct, const uint8_t *ctx, size_t ctx_len,
		     const uint8_t *aad, size_t aad_len, struct transit_aead *a, struct verr *err);
/* "vault:v<ver>:" and the base64 (url: base64url, no padding) of in, in one
 * malloc'd string; *len its length. */
char *transit__prefixed_b64(int ver, const uint8_t *in, size_t in_len, bool url, size_t *len);
/* Parse "vault:v<N>:<rest>": 0 or VERR_INVALID with Vault's message using
 * `what` ("ciphertext" or "signature"). */
int transit__parse_prefixed(const char *s, const char *what, int *ver, const char **rest,
			    struct verr *err);

enum transit_hash {
	TH_NONE = 0,
	TH_SHA1,
	TH_SHA224,
	TH_SHA256,
	TH_SHA384,
	TH_SHA512,
	TH_SHA3_224,
	TH_SHA3_256,
	TH_SHA3_384,
	TH_SHA3_512,
};
int transit__hash_parse(const char *s, enum transit_hash *out);
const EVP_MD *transit__hash_md(enum transit_hash h); /* NULL for TH_NONE */
int transit__digest(enum transit_hash h, const uint8_t *in, size_t len, uint8_t *out,
		    unsigned *out_len);
int transit__hmac(enum transit_hash h, const uint8_t *key, size_t key_len, const uint8_t *in,
		  size_t len, uint8_t *out, unsigned *out_len);

struct sign_opts {
	enum transit_hash hash;
	bool prehashed;
	bool pkcs1v15;  /* RSA: pkcs1v15 instead of PSS */
	bool jws;       /* ECDSA: r|s and base64url */
	int salt_len;   /* RSA-PSS: -2 auto, -1 hash length, >= 0 bytes */
};
/* Sign input with version ver; *out is "vault:vN:<sig>" (malloc'd);
 * *pub_out (derived ed25519 only, else NULL) the base64 public key. */
int transit__sign(char **out, char **pub_out, const struct tkey *k, int ver, const uint8_t *ctx,
		  size_t ctx_len, const uint8_t *input, size_t in_len, const struct sign_opts *o,
		  struct verr *err);
/* 0 and *valid set, or an error for a malformed signature. */
int transit__verify(bool *valid, const struct tkey *k, const char *sig, const uint8_t *ctx,
		    size_t ctx_len, const uint8_t *input, size_t in_len, const struct sign_opts *o,
		    struct verr *err);
/* Derived symmetric key (HKDF-SHA256, salt empty, info = ctx), n bytes, into
 * a caller-provided buffer. */
int transit__hkdf(uint8_t *out, size_t n, const uint8_t *ikm, size_t ikm_len, const uint8_t *ctx,
		  size_t ctx_len, struct verr *err);
/* Parse the private key of an asymmetric version (caller EVP_PKEY_free). */
EVP_PKEY *transit__pkey(const struct tkey *k, const struct tkey_version *v);
/* The version's parsed private key, borrowed (valid while the caller holds
 * the key's lock and a reference): parsed on first use and kept in v->pkey.
 * Two first users may both parse; one copy is published, the other freed.
 * NULL when the stored key does not parse. */
EVP_PKEY *transit__pkey_get(const struct tkey *k, const struct tkey_version *v);

/* ---- scratch.c: per-thread working memory of the hot paths ---- */

/* A borrowed locked buffer (secmem) of at least n bytes: the thread's own
 * (kept, up to TRANSIT_SCRATCH_KEEP bytes) or a one-off one. NULL when out
 * of memory. One borrower at a time per thread; a second gets a one-off. */
struct tscratch {
	uint8_t *p;
	size_t n;
	bool oneoff;
};
#define TRANSIT_SCRATCH_KEEP (16 * 1024 - 64)
uint8_t *transit__scratch_get(struct tscratch *s, size_t n);
/* Wipe the n bytes and give the buffer back (a one-off one is freed). NULL
 * s->p is a no-op. */
void transit__scratch_put(struct tscratch *s);
/* Decode base64 `in` into the scratch: *out (NUL-terminated) and *len. */
int transit__b64_scratch(struct tscratch *s, uint8_t **out, size_t *len, const char *in,
			 struct verr *err);
/* A fresh random 12-byte AEAD nonce from the thread's pool of CSPRNG bytes
 * (each byte handed out once, wiped from the pool). -1 when RAND fails. */
int transit__nonce(uint8_t out[TRANSIT_NONCE_LEN]);

/* Cipher state kept across the items of one request: the key schedule of
 * one non-derived version, so each further item only sets its nonce.
 * Zero-initialise; transit__aead_done frees it (OpenSSL wipes the
 * schedule). Pass NULL to the crypto functions for a one-shot context. */
struct transit_aead {
	EVP_CIPHER_CTX *cx;
	const struct tkey_version *v; /* keyed for this version; NULL: none/derived */
	bool enc;
};
void transit__aead_done(struct transit_aead *a);
/* Export formats: encryption-key, signing-key, hmac-key, public-key.
 * *out malloc'd text. */
int transit__export_version(char **out, const struct tkey *k, const struct tkey_version *v,
			    const char *export_type, struct verr *err);

/* Parse "vault:vN:<b64>" (what: "ciphertext", "signature", "hmac") and find
 * the version it names, with the decryption-side limits: newer than the
 * latest, below min_decryption_version, or trimmed are 400s. */
int transit__versioned_input(const struct tkey *k, const char *s, const char *what, int *ver,
			     const char **b64, const struct tkey_version **v, struct verr *err);

/* ---- handlers (paths_keys.c, paths_crypto.c, paths_misc.c) ---- */
#define TRANSIT_HANDLER(fn)                                                                \
	int fn(struct logical_request *req, struct logical_response *resp, struct verr *err)
TRANSIT_HANDLER(transit__keys_write);
TRANSIT_HANDLER(transit__keys_read);
TRANSIT_HANDLER(transit__keys_delete);
TRANSIT_HANDLER(transit__keys_list);
TRANSIT_HANDLER(transit__keys_config);
TRANSIT_HANDLER(transit__keys_rotate);
TRANSIT_HANDLER(transit__keys_trim);
TRANSIT_HANDLER(transit__export);
TRANSIT_HANDLER(transit__backup);
TRANSIT_HANDLER(transit__restore);
TRANSIT_HANDLER(transit__cache_config_read);
TRANSIT_HANDLER(transit__cache_config_write);
TRANSIT_HANDLER(transit__encrypt_path);
TRANSIT_HANDLER(transit__decrypt_path);
TRANSIT_HANDLER(transit__rewrap_path);
TRANSIT_HANDLER(transit__datakey_path);
TRANSIT_HANDLER(transit__hmac_path);
TRANSIT_HANDLER(transit__sign_path);
TRANSIT_HANDLER(transit__verify_path);
TRANSIT_HANDLER(transit__hash_path);
TRANSIT_HANDLER(transit__random_path);
TRANSIT_HANDLER(transit__wrapping_key_path);
TRANSIT_HANDLER(transit__import_path);
TRANSIT_HANDLER(transit__import_version_path);
/* byok.c: wipe the cached wrapping key (cleanup, invalidate) */
void transit__wrap_forget(struct transit *t);
int transit__key_exists(struct logical_request *req, struct verr *err);

/* The status code of a batch answer, as Vault's batchRequestResponse:
 * any user error 400, else any internal error 500, else 200; with
 * partial_failure_response_code and at least one success, that code. */
void transit__batch_status(struct logical_request *req, struct logical_response *resp,
			   bool ok_any, bool user_err, bool internal_err);
/* A batch_input value: NULL when absent, else an array (error when not one,
 * empty, or over TRANSIT_MAX_BATCH). */
int transit__batch_input(const struct logical_request *req, json_t **out, struct verr *err);
/* A string member of a batch item (or of the request when item is NULL). */
const char *transit__item_str(const struct logical_request *req, const json_t *item,
			      const char *name);
int transit__item_int(const struct logical_request *req, const json_t *item, const char *name,
		      int64_t *out, struct verr *err);

#endif
