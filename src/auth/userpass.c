/*
 * userpass.c - the userpass auth method (type "userpass"): users with a
 * password and token settings; `login/NAME` trades the password for a token.
 *
 * DESIGN
 * Storage (the mount's view, below the barrier):
 *   user/<name>  {"password": <hash record>, "token": <auth_common cfg>}
 * Names are lower-cased on every path, as in Vault.
 * Hash record: {"alg":"scrypt","n":32768,"r":8,"p":1,"salt":<hex 16 bytes>,
 *   "hash":<hex 32 bytes>} (scrypt via OpenSSL 3's EVP_KDF "SCRYPT"; 32 MiB
 *   and ~70 ms per hash on a 2020s x86 core, see docs/auth-methods.md), or
 *   {"alg":"bcrypt","hash":"$2b$..."} for a `password_hash` given by the
 *   operator (Vault's pre-hashed form), checked with libxcrypt. Parameters
 *   live in each record so they can be raised later without breaking users.
 * Login failures: unknown user and wrong password both answer 400 "invalid
 *   username or password"; for an unknown user the KDF still runs (against a
 *   random salt with the current parameters) so both take the same time.
 *   The final compare is CRYPTO_memcmp.
 * Threads: the KDF runs on the request thread with no lock held. A
 *   process-wide counting gate bounds how many run at once (each needs 32
 *   MiB) to max(4, 2 x CPUs), at most 32: logins run in parallel up to that,
 *   then queue, so a login flood cannot exhaust memory. Writes to a user
 *   (read-modify-write of its entry) take the instance's write lock, after
 *   any hashing; logins only read.
 */
#include "auth/auth.h"

#include <crypt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cidr.h"
#include "util/secmem.h"

#define UP_SCRYPT_N 32768u
#define UP_SCRYPT_R 8u
#define UP_SCRYPT_P 1u
#define UP_SALT_LEN 16
#define UP_HASH_LEN 32
#define UP_BAD_LOGIN "invalid username or password"

struct userpass {
	pthread_mutex_t write_lock; /* serialises read-modify-write of entries */
};

/* ---- the KDF gate (process-wide) ---- */

static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_free;
/* KDF runs so far (unit tests check the unknown-user path runs it too). */
static _Atomic unsigned long kdf_runs;

static void gate_init(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long n = cpus > 0 ? 2 * cpus : 4;
	gate_free = (int)(n < 4 ? 4 : n > 32 ? 32 : n);
}

static void gate_enter(void)
{
	pthread_once(&gate_once, gate_init);
	pthread_mutex_lock(&gate_mu);
	while (gate_free == 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_free--;
	pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_free++;
	pthread_cond_signal(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/* ---- password hashing ---- */

static int scrypt_derive(uint8_t out[UP_HASH_LEN], const char *pw, const uint8_t *salt,
			 size_t salt_len, uint64_t n, uint32_t r, uint32_t p, struct verr *err)
{
	int rc = 0;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!ctx) {
		rc = verr_set(err, VERR_INTERNAL, "scrypt is not available");
		goto out;
	}
	OSSL_PARAM ps[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, strlen(pw)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
		OSSL_PARAM_construct_end(),
	};
	gate_enter();
	int ok = EVP_KDF_derive(ctx, out, UP_HASH_LEN, ps);
	gate_leave();
	kdf_runs++;
	if (ok <= 0)
		rc = verr_set(err, VERR_INTERNAL, "password hashing failed");
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

static void hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_decode(uint8_t *out, size_t n, const char *in)
{
	if (!in || strlen(in) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = in[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

/* A new scrypt hash record for pw. */
static int password_hash_new(json_t **out, const char *pw, struct verr *err)
{
	uint8_t salt[UP_SALT_LEN], hash[UP_HASH_LEN];
	char salt_hex[2 * UP_SALT_LEN + 1], hash_hex[2 * UP_HASH_LEN + 1];
	*out = NULL;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return verr_set(err, VERR_INTERNAL, "random generator failed");
	int rc = scrypt_derive(hash, pw, salt, sizeof(salt), UP_SCRYPT_N, UP_SCRYPT_R,
			       UP_SCRYPT_P, err);
	if (rc)
		return rc;
	hex_encode(salt_hex, salt, sizeof(salt));
	hex_encode(hash_hex, hash, sizeof(hash));
	secmem_wipe(hash, sizeof(hash));
	*out = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s}", "alg", "scrypt", "n",
			 (json_int_t)UP_SCRYPT_N, "r", (json_int_t)UP_SCRYPT_R, "p",
			 (json_int_t)UP_SCRYPT_P, "salt", salt_hex, "hash", hash_hex);
	secmem_wipe(hash_hex, sizeof(hash_hex));
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static bool bcrypt_plausible(const char *h)
{
	return h && strlen(h) == 60 &&
	       (!strncmp(h, "$2a$", 4) || !strncmp(h, "$2b$", 4) || !strncmp(h, "$2y$", 4));
}

/* 1 if pw matches the record, 0 if not, <0 on error. With rec == NULL the
 * KDF runs against a throwaway salt and the answer is 0 (unknown user). */
static int password_verify(const json_t *rec, const char *pw, struct verr *err)
{
	const char *alg = json_string_value(json_object_get(rec, "alg"));
	if (rec && alg && !strcmp(alg, "bcrypt")) {
		const char *stored = json_string_value(json_object_get(rec, "hash"));
		if (!bcrypt_plausible(stored))
			return verr_set(err, VERR_INTERNAL, "stored password hash is malformed");
		struct crypt_data *cd = calloc(1, sizeof(*cd));
		if (!cd)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		gate_enter();
		const char *got = crypt_rn(pw, stored, cd, (int)sizeof(*cd));
		gate_leave();
		int ok = got && strlen(got) == strlen(stored) &&
			 CRYPTO_memcmp(got, stored, strlen(stored)) == 0;
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
		return ok;
	}
	uint8_t salt[UP_SALT_LEN], want[UP_HASH_LEN], got[UP_HASH_LEN];
	uint64_t n = UP_SCRYPT_N;
	uint32_t r = UP_SCRYPT_R, p = UP_SCRYPT_P;
	bool real = rec != NULL;
	if (real) {
		if (!alg || strcmp(alg, "scrypt") ||
		    hex_decode(salt, sizeof(salt), json_string_value(json_object_get(rec, "salt"))) ||
		    hex_decode(want, sizeof(want), json_string_value(json_object_get(rec, "hash"))))
			return verr_set(err, VERR_INTERNAL, "stored password hash is malformed");
		json_int_t jn = json_integer_value(json_object_get(rec, "n"));
		json_int_t jr = json_integer_value(json_object_get(rec, "r"));
		json_int_t jp = json_integer_value(json_object_get(rec, "p"));
		if (jn < 2 || jn > (1 << 22) || jr < 1 || jr > 64 || jp < 1 || jp > 16)
			return verr_set(err, VERR_INTERNAL, "stored password hash is malformed");
		n = (uint64_t)jn;
		r = (uint32_t)jr;
		p = (uint32_t)jp;
	} else {
		if (RAND_bytes(salt, sizeof(salt)) != 1)
			return verr_set(err, VERR_INTERNAL, "random generator failed");
		memset(want, 0, sizeof(want));
	}
	int rc = scrypt_derive(got, pw, salt, sizeof(salt), n, r, p, err);
	if (rc)
		return rc;
	int eq = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
	secmem_wipe(got, sizeof(got));
	secmem_wipe(want, sizeof(want));
	return real && eq;
}

/* ---- entries ---- */

/* Vault: letters, digits, '_', '-', '.'; no leading '-', no leading or
 * trailing '.'. */
static bool username_valid(const char *s)
{
	size_t l = strlen(s);
	if (!l || l > 256 || s[0] == '-' || s[0] == '.' || s[l - 1] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* The request's username, lower-cased, in buf; VERR_INVALID if unusable. */
static int req_name(char *buf, size_t cap, const struct logical_request *req, struct verr *err)
{
	const char *n = request_str(req, "username");
	if (!n || !*n)
		return verr_set(err, VERR_INVALID, "missing username");
	if (strlen(n) >= cap)
		return verr_set(err, VERR_INVALID, "username is too long");
	memcpy(buf, n, strlen(n) + 1);
	auth_lower(buf);
	return 0;
}

static void user_key(char *key, size_t cap, const char *name)
{
	snprintf(key, cap, "user/%s", name);
}

static int user_get(const struct logical_request *req, const char *name, json_t **out,
		    struct verr *err)
{
	char key[300];
	user_key(key, sizeof(key), name);
	return view_get_json(req->storage, key, out, err);
}

static int user_put(const struct logical_request *req, const char *name, const json_t *u,
		    struct verr *err)
{
	char key[300];
	user_key(key, sizeof(key), name);
	return view_put_json(req->storage, key, u, err);
}

/* The hash record a write asks for (password or password_hash), or NULL
 * when neither was sent. */
static int hash_from_request(json_t **out, const struct logical_request *req, struct verr *err)
{
	*out = NULL;
	bool has_pw = request_has(req, "password") && request_str(req, "password") &&
		      *request_str(req, "password");
	bool has_hash = request_has(req, "password_hash") && request_str(req, "password_hash") &&
			*request_str(req, "password_hash");
	if (has_pw && has_hash)
		return verr_set(err, VERR_INVALID, "only one of password or password_hash can be given");
	if (has_pw)
		return password_hash_new(out, request_str(req, "password"), err);
	if (has_hash) {
		const char *h = request_str(req, "password_hash");
		if (!bcrypt_plausible(h))
			return verr_set(err, VERR_INVALID, "password_hash must be a bcrypt hash ($2a$, $2b$ or $2y$)");
		*out = json_pack("{s:s,s:s}", "alg", "bcrypt", "hash", h);
		return *out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

/* ---- handlers ---- */

static int user_exists(struct logical_request *req, struct verr *err)
{
	char name[257];
	json_t *u = NULL;
	if (req_name(name, sizeof(name), req, NULL))
		return 0;
	int rc = user_get(req, name, &u, err);
	if (rc)
		return rc;
	json_decref(u);
	return u != NULL;
}

static int h_user_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct userpass *up = req->backend;
	char name[257];
	json_t *hash = NULL, *u = NULL;
	int rc = req_name(name, sizeof(name), req, err);
	if (rc)
		return rc;
	if (!username_valid(name))
		return verr_set(err, VERR_INVALID,
				"invalid username: use letters, digits, '_', '-' and '.', not starting with '-' or '.' nor ending with '.'");
	/* hash before taking the lock: the KDF is the slow part */
	rc = hash_from_request(&hash, req, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&up->write_lock);
	rc = user_get(req, name, &u, err);
	if (rc)
		goto out;
	if (!u) {
		if (!hash) {
			rc = verr_set(err, VERR_INVALID, "missing password");
			goto out;
		}
		u = json_pack("{s:o}", "token", auth_token_cfg_new());
		if (!u) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	json_t *cfg = json_object_get(u, "token");
	if (!json_is_object(cfg)) {
		cfg = auth_token_cfg_new();
		json_object_set_new(u, "token", cfg);
	}
	rc = auth_token_cfg_update(cfg, req, AUTH_LEGACY_TTL | AUTH_LEGACY_BOUND_CIDRS, err);
	if (rc)
		goto out;
	if (hash) {
		json_object_set_new(u, "password", hash);
		hash = NULL; /* transferred */
	}
	rc = user_put(req, name, u, err);
out:
	pthread_mutex_unlock(&up->write_lock);
	json_decref(hash);
	json_decref(u);
	return rc;
}

static int h_user_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char name[257];
	json_t *u = NULL;
	int rc = req_name(name, sizeof(name), req, err);
	if (!rc)
		rc = user_get(req, name, &u, err);
	if (rc)
		return rc;
	if (!u)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	resp->data = json_object();
	if (resp->data)
		auth_token_cfg_to_data(resp->data, json_object_get(u, "token"));
	json_decref(u);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int h_user_delete(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	char name[257], key[300];
	int rc = req_name(name, sizeof(name), req, err);
	if (rc)
		return rc;
	user_key(key, sizeof(key), name);
	return view_delete(req->storage, key, err);
}

static int h_user_list(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, "user/", &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (arr && !strchr(keys[i], '/'))
			json_array_append_new(arr, json_string(keys[i]));
		free(keys[i]);
	}
	free(keys);
	if (!arr)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* users/NAME/password and users/NAME/policies: the user must exist. */
static int update_existing(struct logical_request *req, bool password, struct verr *err)
{
	struct userpass *up = req->backend;
	char name[257];
	json_t *hash = NULL, *u = NULL;
	int rc = req_name(name, sizeof(name), req, err);
	if (rc)
		return rc;
	if (password) {
		rc = hash_from_request(&hash, req, err);
		if (rc)
			return rc;
		if (!hash)
			return verr_set(err, VERR_INVALID, "missing password");
	}
	pthread_mutex_lock(&up->write_lock);
	rc = user_get(req, name, &u, err);
	if (rc)
		goto out;
	if (!u) {
		rc = verr_set(err, VERR_INVALID, "username does not exist");
		goto out;
	}
	if (password) {
		json_object_set_new(u, "password", hash);
		hash = NULL; /* transferred */
	} else {
		json_t *cfg = json_object_get(u, "token");
		if (!json_is_object(cfg)) {
			cfg = auth_token_cfg_new();
			json_object_set_new(u, "token", cfg);
		}
		rc = auth_token_cfg_update(cfg, req, 0, err);
		if (rc)
			goto out;
	}
	rc = user_put(req, name, u, err);
out:
	pthread_mutex_unlock(&up->write_lock);
	json_decref(hash);
	json_decref(u);
	return rc;
}

static int h_password(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	return update_existing(req, true, err);
}

static int h_policies(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	return update_existing(req, false, err);
}

static int h_login(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	char name[257];
	json_t *u = NULL;
	struct logical_auth *a = NULL;
	const char *pw = request_str(req, "password");
	if (!pw || !*pw)
		return verr_set(err, VERR_INVALID, "missing password");
	/* an over-long name cannot exist: treat it like any unknown user */
	int rc = req_name(name, sizeof(name), req, NULL);
	if (rc == 0) {
		rc = user_get(req, name, &u, err);
		if (rc)
			return rc;
	}
	rc = password_verify(u ? json_object_get(u, "password") : NULL, pw, err);
	if (rc < 0)
		goto out;
	if (rc == 0 || !u) {
		rc = verr_set(err, VERR_INVALID, UP_BAD_LOGIN);
		goto out;
	}
	const json_t *cfg = json_object_get(u, "token");
	if (!cidr_list_allows(json_object_get(cfg, "token_bound_cidrs"), req->remote_addr)) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = auth_token_cfg_fill(a, cfg, err);
	if (rc)
		goto out;
	a->metadata = json_pack("{s:s}", "username", name);
	a->internal = json_pack("{s:s,s:O}", "username", name, "policies", a->policies);
	a->display_name = strdup(name);
	a->alias_name = strdup(name);
	if (!a->metadata || !a->internal || !a->display_name || !a->alias_name) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	resp->auth = a;
	a = NULL; /* transferred */
	rc = 0;
out:
	logical_auth_free(a);
	json_decref(u);
	return rc;
}

/* Token renewal (auth_renew): the user must still exist with the same
 * policies; the renewed token takes the user's current TTLs. */
static int h_renew(struct logical_request *req, struct logical_response *resp,
		   struct verr *err)
{
	const json_t *in = req->secret_internal;
	const char *n = json_string_value(json_object_get(in, "username"));
	char name[257];
	json_t *u = NULL;
	if (!n || strlen(n) >= sizeof(name))
		return verr_set(err, VERR_DENIED, "token was not issued by this userpass mount");
	memcpy(name, n, strlen(n) + 1);
	int rc = user_get(req, name, &u, err);
	if (rc)
		return rc;
	if (!u)
		return verr_set(err, VERR_DENIED, "user no longer exists, not renewing");
	const json_t *cfg = json_object_get(u, "token");
	if (!auth_policies_equivalent(json_object_get(cfg, "token_policies"),
				      json_object_get(in, "policies"))) {
		json_decref(u);
		return verr_set(err, VERR_DENIED, "policies have changed, not renewing");
	}
	struct logical_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		json_decref(u);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	a->ttl = json_integer_value(json_object_get(cfg, "token_ttl"));
	a->max_ttl = json_integer_value(json_object_get(cfg, "token_max_ttl"));
	a->period = json_integer_value(json_object_get(cfg, "token_period"));
	a->renewable = true;
	resp->auth = a;
	json_decref(u);
	return 0;
}

/* ---- table ---- */

static const struct field_def user_fields[] = {
	{"username", FT_STRING, NULL, "the user's name", true},
	{"password", FT_STRING, NULL, "the password (required on create)", false},
	{"password_hash", FT_STRING, NULL, "a bcrypt hash instead of password", false},
	AUTH_TOKEN_FIELD_DEFS,
	{"ttl", FT_DURATION, NULL, "deprecated: use token_ttl", false},
	{"max_ttl", FT_DURATION, NULL, "deprecated: use token_max_ttl", false},
	{"bound_cidrs", FT_STRSLICE, NULL, "deprecated: use token_bound_cidrs", false},
	{0},
};

static const struct field_def password_fields[] = {
	{"username", FT_STRING, NULL, "the user's name", true},
	{"password", FT_STRING, NULL, "the new password", false},
	{"password_hash", FT_STRING, NULL, "a bcrypt hash instead of password", false},
	{0},
};

static const struct field_def policies_fields[] = {
	{"username", FT_STRING, NULL, "the user's name", true},
	{"token_policies", FT_STRSLICE, NULL, "policies of issued tokens", false},
	{"policies", FT_STRSLICE, NULL, "deprecated: use token_policies", false},
	{0},
};

static const struct field_def login_fields[] = {
	{"username", FT_STRING, NULL, "the user's name", true},
	{"password", FT_STRING, NULL, "the user's password", false},
	{0},
};

static const struct path_def userpass_paths[] = {
	{.pattern = "users/?", .ops = {{LOP_LIST, h_user_list}}, .help = "List users."},
	{.pattern = "users/{username}",
	 .fields = user_fields,
	 .ops = {{LOP_CREATE, h_user_write},
		 {LOP_UPDATE, h_user_write},
		 {LOP_READ, h_user_read},
		 {LOP_DELETE, h_user_delete}},
	 .exists = user_exists,
	 .help = "Create, update, read or delete a user."},
	{.pattern = "users/{username}/password",
	 .fields = password_fields,
	 .ops = {{LOP_UPDATE, h_password}},
	 .help = "Change a user's password."},
	{.pattern = "users/{username}/policies",
	 .fields = policies_fields,
	 .ops = {{LOP_UPDATE, h_policies}},
	 .help = "Change a user's token policies."},
	{.pattern = "login/{username}",
	 .fields = login_fields,
	 .ops = {{LOP_UPDATE, h_login}},
	 .unauthenticated = true,
	 .help = "Log in with a username and password."},
	{0},
};

/* ---- instance ---- */

static int userpass_init(void **out, const struct mount_info *mi, struct verr *err)
{
	struct userpass *up = calloc(1, sizeof(*up));
	*out = NULL;
	if (!up)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&up->write_lock, NULL);
	*out = up;
	return 0;
}

static void userpass_cleanup(void *inst)
{
	struct userpass *up = inst;
	if (!up)
		return;
	pthread_mutex_destroy(&up->write_lock);
	free(up);
}

static const struct path_def *userpass_table(void *inst)
{
	return userpass_paths;
}

const struct backend_ops userpass_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "userpass",
	.is_auth = true,
	.init = userpass_init,
	.cleanup = userpass_cleanup,
	.paths = userpass_table,
	.auth_renew = h_renew,
};
