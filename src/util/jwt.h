/*
 * jwt.h - JSON Web Tokens (RFC 7519, compact JWS only): decode, verify a
 * signature against public keys, and check the registered claims.
 *
 * Used by the kubernetes auth method (and later jwt/oidc) to read service
 * account tokens. Signatures are verified directly with OpenSSL, and the
 * algorithm is pinned to the key, never taken from the token alone: an RSA
 * key verifies only RS256/RS384/RS512, an EC key only ESnnn on its own curve
 * (ES256 = P-256, ES384 = P-384, ES512 = P-521). "none" and every HMAC
 * algorithm are rejected, so a token signed with HS256 using an RSA public
 * key as the secret (the classic algorithm-confusion forgery) never passes.
 *
 * Decoding (jwt_parse) does NOT establish trust: it only splits, base64url-
 * decodes and JSON-parses the three parts so a caller can look at claims
 * before deciding how to verify them. Only jwt_verify makes them trustworthy.
 *
 * Ownership: jwt_parse/jwt_key_from_pem give the caller an object freed with
 * jwt_free/jwt_key_free (NULL is a no-op). Keys are immutable after creation
 * and may be shared between threads; a struct jwt is not thread-safe but is
 * only read by jwt_verify/jwt_check_claims.
 *
 * Errors: 0 or VERR_INVALID (malformed token or key) / VERR_DENIED (bad
 * signature, expired, wrong audience...) with a one-line message that never
 * contains the token.
 */
#ifndef COFFER_UTIL_JWT_H
#define COFFER_UTIL_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

/* Longest token jwt_parse accepts (Kubernetes tokens are ~1 KiB). */
#define JWT_MAX_LEN (64 * 1024)

struct jwt_key;

/* Parse one PEM block: a public key ("PUBLIC KEY", "RSA PUBLIC KEY") or an
 * X.509 certificate, whose public key is used. RSA keys must have at least
 * 2048 bits; EC keys must be on P-256, P-384 or P-521. */
int jwt_key_from_pem(struct jwt_key **out, const char *pem, size_t len, struct verr *err);
void jwt_key_free(struct jwt_key *k);
/* "RSA" or "EC". */
const char *jwt_key_type(const struct jwt_key *k);

struct jwt {
	json_t *header;  /* owned: the decoded JOSE header (object) */
	json_t *claims;  /* owned: the decoded payload (object) */
	const char *alg; /* borrowed from header: "RS256", ... */
	/* private */
	char *signing_input; /* "<b64 header>.<b64 payload>" */
	unsigned char *sig;
	size_t sig_len;
};

/* Split and decode a compact JWS without verifying it. Rejects: not three
 * dot-separated parts, bad base64url (padding or foreign characters), header
 * or payload that is not a JSON object, a missing or non-string "alg",
 * "alg":"none" and HMAC algorithms, a "crit" header, and tokens longer than
 * JWT_MAX_LEN. */
int jwt_parse(struct jwt **out, const char *token, struct verr *err);
void jwt_free(struct jwt *t);

/* Verify the signature with any of keys[0..n): 0 when one key of the right
 * type for the token's algorithm verifies it, VERR_DENIED otherwise. */
int jwt_verify(const struct jwt *t, struct jwt_key *const *keys, size_t n, struct verr *err);

struct jwt_expect {
	int64_t now;          /* unix seconds (0: use the clock) */
	int64_t leeway;       /* seconds of clock skew allowed on exp/nbf/iat */
	const char *issuer;   /* required "iss" value, or NULL: not checked */
	const char *audience; /* must be in "aud" (string or array), or NULL */
	bool require_exp;     /* a token without "exp" is refused */
};

/* Check exp (now < exp + leeway), nbf (nbf <= now + leeway), iat (not in
 * the future beyond leeway), iss and aud. exp/nbf/iat must be numbers when
 * present. VERR_DENIED names the failing claim. */
int jwt_check_claims(const struct jwt *t, const struct jwt_expect *e, struct verr *err);

/* A string claim, or NULL when absent or not a string. Borrowed. */
const char *jwt_claim_str(const struct jwt *t, const char *name);

#endif
