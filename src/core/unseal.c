/*
 * unseal.c - the key-share ceremonies and the sealed-state endpoints
 * (unseal.h): sys/init, sys/unseal, sys/seal-status, sys/health, sys/rekey
 * and sys/generate-root.
 *
 * Key hierarchy: unseal-key shares --combine--> KEK (32 bytes) --the seal
 * unwraps--> root key (wrapped at the seal's root path, outside the
 * barrier) --opens--> keyring (core/keyring, managed by the barrier) -->
 * every entry. With one share the share is the KEK itself, as in Vault.
 * Progress of unseal/rekey/generate-root is guarded by c->unseal_lock; the
 * parts collected are wiped as soon as they are combined or reset. The
 * transition itself (the barrier opening, the active set-up) is state.c's,
 * entered after unseal_lock is released.
 */
#include "core/unseal.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/barrier.h"
#include "core/state.h"
#include "core/sys.h"
#include "core/sys_raft.h"
#include "core/token.h"
#include "seal/seal.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/shamir.h"

#define SEAL_CONFIG_KEY "core/seal-config"
#define KEY_LEN 32

static const char *version_string(void)
{
	return "1.15.0+coffer." COFFER_VERSION;
}

static void progress_reset(struct unseal_progress *p)
{
	for (int i = 0; i < p->n; i++) {
		secmem_free(p->parts[i], p->lens[i]); /* wipes */
		p->parts[i] = NULL;
	}
	p->n = 0;
	p->nonce[0] = '\0';
}

static int read_seal_config(struct core *c, json_t **out, struct verr *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = physical_get(c->phys, SEAL_CONFIG_KEY, &buf, &len, err);
	if (rc || !buf)
		return rc;
	*out = json_loadb((const char *)buf, len, 0, NULL);
	free(buf);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "seal configuration is corrupt");
	return 0;
}

static int seal_status(struct core *c, json_t **out, struct verr *err)
{
	json_t *cfg = NULL;
	*out = NULL;
	/* storage unreachable: say so (5xx), never "not initialized" */
	int rc = read_seal_config(c, &cfg, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->unseal_lock);
	bool sealed = state_get(c) == CORE_SEALED;
	json_t *o = json_pack("{s:s,s:b,s:b,s:I,s:I,s:i,s:s,s:s,s:s,s:b,s:b,s:s}", "type",
			      seal_type(c->o.seal), "initialized", cfg != NULL, "sealed", sealed, "t",
			      (json_int_t)(cfg ? json_integer_value(json_object_get(cfg, "secret_threshold")) : 0),
			      "n", (json_int_t)(cfg ? json_integer_value(json_object_get(cfg, "secret_shares")) : 0),
			      "progress", c->unseal.n, "nonce", c->unseal.nonce, "version",
			      version_string(), "build_date", "2026-11-27T00:00:00Z", "migration", 0,
			      "recovery_seal", 0, "storage_type",
			      c->o.storage_type ? c->o.storage_type : "inmem");
	pthread_mutex_unlock(&c->unseal_lock);
	if (!sealed && o) {
		char id[sizeof(c->cluster_id)];
		state_cluster_id(c, id);
		json_object_set_new(o, "cluster_name", json_string(c->cluster_name));
		json_object_set_new(o, "cluster_id", json_string(id));
	}
	json_decref(cfg);
	*out = o;
	return o ? 0 : VERR_INTERNAL;
}

static int qint(const json_t *q, const char *name, int def)
{
	json_t *v = json_object_get(q, name);
	if (json_is_string(v) && *json_string_value(v)) {
		char *end;
		long x = strtol(json_string_value(v), &end, 10);
		if (!*end && x >= 100 && x <= 599)
			return (int)x;
	}
	if (json_is_integer(v))
		return (int)json_integer_value(v);
	return def;
}

static bool qbool(const json_t *q, const char *name)
{
	json_t *v = json_object_get(q, name);
	if (json_is_true(v))
		return true;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		return !strcmp(s, "true") || !strcmp(s, "1") || !*s;
	}
	return false;
}

static int health(struct core *c, const json_t *q, struct logical_response *resp)
{
	json_t *cfg = NULL;
	struct verr e = {0};
	if (read_seal_config(c, &cfg, &e)) {
		/* Vault answers 500 when it cannot tell: a load balancer must not
		 * take "uninitialised" for the truth */
		sys_raw_json(resp, json_pack("{s:[s]}", "errors", e.msg));
		resp->status = 500;
		return 0;
	}
	bool inited = cfg != NULL;
	json_decref(cfg);
	enum core_state st = state_get(c);
	bool sealed = st == CORE_SEALED, standby = st == CORE_STANDBY;
	int code;
	if (!inited)
		code = qint(q, "uninitcode", 501);
	else if (sealed)
		code = qint(q, "sealedcode", 503);
	else if (standby)
		code = qbool(q, "standbyok") ? qint(q, "activecode", 200) : qint(q, "standbycode", 429);
	else
		code = qint(q, "activecode", 200);
	json_t *o = json_pack("{s:b,s:b,s:b,s:b,s:s,s:s,s:I,s:s}", "initialized", inited, "sealed",
			      sealed, "standby", standby, "performance_standby", 0,
			      "replication_performance_mode", "disabled", "replication_dr_mode",
			      "disabled", "server_time_utc", (json_int_t)time(NULL), "version",
			      version_string());
	if (inited && !sealed) {
		char id[sizeof(c->cluster_id)];
		state_cluster_id(c, id);
		json_object_set_new(o, "cluster_name", json_string(c->cluster_name));
		json_object_set_new(o, "cluster_id", json_string(id));
	}
	resp->status = code;
	sys_raw_json(resp, o);
	return 0;
}

static int decode_key(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	*out = NULL;
	/* hex first (Vault prints hex), then standard base64 */
	bool hex = n > 0 && n % 2 == 0;
	for (size_t i = 0; hex && i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			hex = false;
	if (hex) {
		uint8_t *b = malloc(n / 2);
		if (!b)
			return -1;
		for (size_t i = 0; i < n / 2; i++) {
			unsigned int v;
			/* NOLINTNEXTLINE(cert-err34-c): every character was checked with isxdigit above */
			sscanf(s + 2 * i, "%2x", &v);
			b[i] = (uint8_t)v;
		}
		*out = b;
		*len = n / 2;
		return 0;
	}
	if (n == 0 || n % 4 != 0)
		return -1;
	uint8_t *b = malloc(n);
	if (!b)
		return -1;
	int r = EVP_DecodeBlock(b, (const unsigned char *)s, (int)n);
	if (r < 0) {
		free(b);
		return -1;
	}
	size_t l = (size_t)r;
	if (n >= 1 && s[n - 1] == '=')
		l--;
	if (n >= 2 && s[n - 2] == '=')
		l--;
	*out = b;
	*len = l;
	return 0;
}

static char *to_hex(const uint8_t *b, size_t n)
{
	char *s = malloc(n * 2 + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	return s;
}

static char *to_b64(const uint8_t *b, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	if (!s)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, b, (int)n);
	return s;
}

/* Split kek into shares and append them to keys/keys_base64 arrays. */
static int make_shares(const uint8_t *kek, int shares, int threshold, json_t *keys,
		       json_t *keys_b64, struct verr *err)
{
	if (shares == 1) {
		char *h = to_hex(kek, KEY_LEN), *b = to_b64(kek, KEY_LEN);
		json_array_append_new(keys, json_string(h));
		json_array_append_new(keys_b64, json_string(b));
		secmem_wipe(h, strlen(h));
		secmem_wipe(b, strlen(b));
		free(h);
		free(b);
		return 0;
	}
	uint8_t **parts = NULL;
	size_t plen = 0;
	int rc = shamir_split(&parts, &plen, kek, KEY_LEN, shares, threshold, err);
	if (rc)
		return rc;
	for (int i = 0; i < shares; i++) {
		char *h = to_hex(parts[i], plen), *b = to_b64(parts[i], plen);
		json_array_append_new(keys, json_string(h));
		json_array_append_new(keys_b64, json_string(b));
		secmem_wipe(h, strlen(h));
		secmem_wipe(b, strlen(b));
		free(h);
		free(b);
	}
	shamir_shares_free(parts, shares, plen);
	return 0;
}

static int validate_shares(const json_t *data, int *shares, int *threshold, struct verr *err)
{
	json_t *s = json_object_get(data, "secret_shares");
	json_t *t = json_object_get(data, "secret_threshold");
	if (json_object_get(data, "pgp_keys") && !json_is_null(json_object_get(data, "pgp_keys")) &&
	    json_array_size(json_object_get(data, "pgp_keys")) > 0)
		return verr_set(err, VERR_INVALID, "pgp_keys are not supported by this server");
	if (json_object_get(data, "root_token_pgp_key") &&
	    json_is_string(json_object_get(data, "root_token_pgp_key")) &&
	    *json_string_value(json_object_get(data, "root_token_pgp_key")))
		return verr_set(err, VERR_INVALID, "root_token_pgp_key is not supported by this server");
	if (!s || !t)
		return verr_set(err, VERR_INVALID, "secret_shares and secret_threshold are required");
	if (!json_is_integer(s))
		return verr_set(err, VERR_INVALID, "secret_shares must be an integer");
	if (!json_is_integer(t))
		return verr_set(err, VERR_INVALID, "secret_threshold must be an integer");
	json_int_t sv = json_integer_value(s), tv = json_integer_value(t);
	if (sv < 1)
		return verr_set(err, VERR_INVALID, "invalid seal configuration: shares must be at least one");
	if (sv > 255)
		return verr_set(err, VERR_INVALID, "invalid seal configuration: shares must be at most 255");
	if (tv < 1)
		return verr_set(err, VERR_INVALID, "invalid seal configuration: threshold must be at least one");
	if (tv > sv)
		return verr_set(err, VERR_INVALID, "invalid seal configuration: threshold cannot be larger than shares");
	if (sv > 1 && tv == 1)
		return verr_set(err, VERR_INVALID, "invalid seal configuration: threshold must be greater than one for multiple shares");
	*shares = (int)sv;
	*threshold = (int)tv;
	return 0;
}

static int store_root(struct core *c, const uint8_t *kek, const uint8_t *root, struct verr *err)
{
	uint8_t *blob = NULL;
	size_t blen = 0;
	int rc = seal_wrap(c->o.seal, kek, KEY_LEN, root, KEY_LEN, &blob, &blen, err);
	if (rc)
		return rc;
	rc = physical_put(c->phys, seal_root_path(c->o.seal), blob, blen, err);
	free(blob);
	return rc;
}

static int write_seal_config(struct core *c, int shares, int threshold, struct verr *err)
{
	json_t *cfg = json_pack("{s:s,s:i,s:i}", "type", "shamir", "secret_shares", shares,
				"secret_threshold", threshold);
	char *s = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = physical_put(c->phys, SEAL_CONFIG_KEY, (const uint8_t *)s, strlen(s), err);
	free(s);
	return rc;
}

int unseal_init(struct core *c, const json_t *data, json_t **out, struct verr *err)
{
	int shares, threshold;
	int rc = validate_shares(data, &shares, &threshold, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->init_lock);
	json_t *existing = NULL;
	rc = read_seal_config(c, &existing, err);
	if (rc || existing) {
		json_decref(existing);
		pthread_mutex_unlock(&c->init_lock);
		return rc ? rc : verr_set(err, VERR_INVALID, "Vault is already initialized");
	}
	uint8_t *root = NULL, *kek = NULL;
	json_t *keys = json_array(), *keys_b64 = json_array();
	char *root_token = NULL;
	rc = barrier_generate_key(&root, err);
	if (!rc)
		rc = barrier_generate_key(&kek, err);
	if (!rc)
		rc = barrier_initialize(c->barrier, root, KEY_LEN, err);
	if (!rc)
		rc = store_root(c, kek, root, err);
	if (!rc)
		rc = make_shares(kek, shares, threshold, keys, keys_b64, err);
	if (!rc)
		rc = state_init_barrier(c, root, KEY_LEN, &root_token, err);
	/* seal-config last: its presence means "initialized" */
	if (!rc)
		rc = write_seal_config(c, shares, threshold, err);
	secmem_free(root, KEY_LEN);
	secmem_free(kek, KEY_LEN);
	pthread_mutex_unlock(&c->init_lock);
	if (rc) {
		json_decref(keys);
		json_decref(keys_b64);
		free(root_token);
		return rc;
	}
	*out = json_pack("{s:o,s:o,s:s}", "keys", keys, "keys_base64", keys_b64, "root_token",
			 root_token);
	secmem_wipe(root_token, strlen(root_token));
	free(root_token);
	log_info("core", "security barrier initialized (shares=%d threshold=%d)", shares, threshold);
	return 0;
}

/* Add a part to p; returns 1 when it was a duplicate. */
static int add_part(struct unseal_progress *p, const uint8_t *key, size_t len)
{
	for (int i = 0; i < p->n; i++)
		if (p->lens[i] == len && secmem_eq(p->parts[i], key, len))
			return 1;
	if (p->n >= 255)
		return 1;
	/* key shares are key material: locked, non-dumpable, wiped on free */
	p->parts[p->n] = secmem_alloc(len);
	if (!p->parts[p->n])
		return 1; /* out of memory: the part is not counted */
	memcpy(p->parts[p->n], key, len);
	p->lens[p->n] = len;
	p->n++;
	return 0;
}

/* Combine the collected parts into the KEK (secmem, KEY_LEN). */
static int combine(struct unseal_progress *p, int threshold, uint8_t **kek, struct verr *err)
{
	if (threshold == 1) {
		if (p->lens[0] != KEY_LEN)
			return verr_set(err, VERR_INVALID, "invalid key: wrong length");
		*kek = secmem_alloc(KEY_LEN);
		memcpy(*kek, p->parts[0], KEY_LEN);
		return 0;
	}
	uint8_t *secret = NULL;
	size_t slen = 0;
	int rc = shamir_combine(&secret, &slen, p->parts, p->lens, p->n, err);
	if (rc)
		return rc;
	if (slen != KEY_LEN) {
		secmem_free(secret, slen);
		return verr_set(err, VERR_INVALID, "invalid key: combined key has the wrong length");
	}
	*kek = secret;
	return 0;
}

static int open_root(struct core *c, const uint8_t *kek, uint8_t **root, struct verr *err)
{
	uint8_t *blob = NULL;
	size_t blen = 0, rlen = 0;
	int rc = physical_get(c->phys, seal_root_path(c->o.seal), &blob, &blen, err);
	if (rc)
		return rc;
	if (!blob)
		return verr_set(err, VERR_INTERNAL, "sealed root key is missing from storage");
	struct verr e2 = {0};
	rc = seal_unwrap(c->o.seal, kek, KEY_LEN, blob, blen, root, &rlen, &e2);
	free(blob);
	if (rc || rlen != KEY_LEN) {
		if (!rc)
			secmem_free(*root, rlen);
		*root = NULL;
		return verr_set(err, VERR_INVALID, "unseal failed, invalid key");
	}
	return 0;
}

static int new_nonce(char *nonce, struct verr *err)
{
	return rand_uuid(nonce, err);
}

int unseal_submit(struct core *c, const json_t *data, json_t **out, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = read_seal_config(c, &cfg, err);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	int threshold = (int)json_integer_value(json_object_get(cfg, "secret_threshold"));
	json_decref(cfg);

	json_t *reset = json_object_get(data, "reset");
	bool do_reset = json_is_true(reset) ||
			(json_is_string(reset) && !strcmp(json_string_value(reset), "true"));
	json_t *key = json_object_get(data, "key");
	if (!do_reset && !key)
		return verr_set(err, VERR_INVALID, "'key' must be specified in request body as JSON, or 'reset' set to true");
	if (key && !json_is_string(key))
		return verr_set(err, VERR_INVALID, "'key' must be a string");

	pthread_mutex_lock(&c->unseal_lock);
	if (do_reset) {
		progress_reset(&c->unseal);
		pthread_mutex_unlock(&c->unseal_lock);
		return seal_status(c, out, err);
	}
	if (state_get(c) != CORE_SEALED) {
		pthread_mutex_unlock(&c->unseal_lock);
		return seal_status(c, out, err);
	}
	uint8_t *kb = NULL;
	size_t kl = 0;
	if (decode_key(json_string_value(key), &kb, &kl) || kl < 16 || kl > 64) {
		free(kb);
		pthread_mutex_unlock(&c->unseal_lock);
		return verr_set(err, VERR_INVALID, "'key' must be a valid hex or base64 string");
	}
	if (c->unseal.n == 0 && (rc = new_nonce(c->unseal.nonce, err)) != 0) {
		secmem_wipe(kb, kl);
		free(kb);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	add_part(&c->unseal, kb, kl);
	secmem_wipe(kb, kl);
	free(kb);
	if (c->unseal.n < threshold) {
		pthread_mutex_unlock(&c->unseal_lock);
		return seal_status(c, out, err);
	}
	uint8_t *kek = NULL, *root = NULL;
	rc = combine(&c->unseal, threshold, &kek, err);
	progress_reset(&c->unseal);
	if (!rc) {
		rc = open_root(c, kek, &root, err);
		secmem_free(kek, KEY_LEN);
	}
	pthread_mutex_unlock(&c->unseal_lock);
	if (rc) {
		log_warn("core", "unseal attempt failed: the key shares did not open the root key");
		return rc;
	}
	/* the transition: exclusive, in state.c (a parallel submission that
	 * also completed the threshold finds the core unsealed there) */
	bool did = false;
	rc = state_unseal(c, root, KEY_LEN, &did, err);
	secmem_free(root, KEY_LEN);
	if (rc)
		return rc;
	return seal_status(c, out, err);
}

/*
 * One key share for an operation in progress (rekey or generate-root):
 * checks the nonce, records the share, and once `threshold` shares are in,
 * combines them and opens the root key. Returns <0 on error, 0 when more
 * shares are needed, 1 with *root (secmem, KEY_LEN) when complete. Called
 * with c->unseal_lock held.
 */
static int collect_share(struct core *c, bool started, const char *what, const char *nonce_want,
			 struct unseal_progress *prog, const json_t *data, int threshold,
			 uint8_t **root, struct verr *err)
{
	json_t *key = json_object_get(data, "key");
	json_t *nonce = json_object_get(data, "nonce");
	*root = NULL;
	if (!started)
		return verr_set(err, VERR_INVALID, "no %s in progress", what);
	if (!json_is_string(key))
		return verr_set(err, VERR_INVALID, "'key' must be specified in request body as JSON");
	if (!json_is_string(nonce) || strcmp(json_string_value(nonce), nonce_want))
		return verr_set(err, VERR_INVALID, "incorrect nonce");
	uint8_t *kb = NULL;
	size_t kl = 0;
	if (decode_key(json_string_value(key), &kb, &kl) || kl < 16 || kl > 64) {
		free(kb);
		return verr_set(err, VERR_INVALID, "'key' must be a valid hex or base64 string");
	}
	add_part(prog, kb, kl);
	secmem_wipe(kb, kl);
	free(kb);
	if (prog->n < threshold)
		return 0;
	uint8_t *kek = NULL;
	int rc = combine(prog, threshold, &kek, err);
	progress_reset(prog);
	if (!rc)
		rc = open_root(c, kek, root, err);
	secmem_free(kek, KEY_LEN);
	return rc ? rc : 1;
}

/* ---- rekey ---- */

static json_t *rekey_status(struct core *c, int threshold, int shares)
{
	return json_pack("{s:s,s:b,s:i,s:i,s:i,s:i,s:n,s:b,s:b,s:s}", "nonce", c->rekey.nonce,
			 "started", c->rekey.started, "t", c->rekey.started ? c->rekey.new_threshold : 0,
			 "n", c->rekey.started ? c->rekey.new_shares : 0, "progress",
			 c->rekey.prog.n, "required", threshold, "pgp_fingerprints", "backup", 0,
			 "verification_required", 0, "verification_nonce", "");
	(void)shares;
}

int unseal_rekey(struct core *c, enum logical_op op, const char *which, const json_t *data,
		 json_t **out, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = read_seal_config(c, &cfg, err);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	int threshold = (int)json_integer_value(json_object_get(cfg, "secret_threshold"));
	int cur_shares = (int)json_integer_value(json_object_get(cfg, "secret_shares"));
	json_decref(cfg);
	pthread_mutex_lock(&c->unseal_lock);
	if (!strcmp(which, "init")) {
		if (op == LOP_READ) {
			*out = rekey_status(c, threshold, cur_shares);
		} else if (op == LOP_DELETE) {
			progress_reset(&c->rekey.prog);
			c->rekey.started = false;
			c->rekey.nonce[0] = '\0';
		} else {
			int shares, thr;
			if (c->rekey.started) {
				rc = verr_set(err, VERR_INVALID, "rekey already in progress");
			} else if (json_is_true(json_object_get(data, "require_verification"))) {
				rc = verr_set(err, VERR_INVALID, "require_verification is not supported by this server");
			} else if (json_is_true(json_object_get(data, "backup"))) {
				rc = verr_set(err, VERR_INVALID, "backup requires pgp_keys, which are not supported by this server");
			} else if ((rc = validate_shares(data, &shares, &thr, err)) == 0) {
				c->rekey.started = true;
				c->rekey.new_shares = shares;
				c->rekey.new_threshold = thr;
				progress_reset(&c->rekey.prog);
				rc = new_nonce(c->rekey.nonce, err);
				if (rc)
					c->rekey.started = false;
				else
					*out = rekey_status(c, threshold, cur_shares);
			}
		}
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	/* update */
	uint8_t *root = NULL, *newkek = NULL;
	rc = collect_share(c, c->rekey.started, "rekey", c->rekey.nonce, &c->rekey.prog, data,
			   threshold, &root, err);
	if (rc <= 0) {
		if (rc == 0)
			*out = rekey_status(c, threshold, cur_shares);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	rc = 0;
	json_t *keys = json_array(), *keys_b64 = json_array();
	if (!rc)
		rc = barrier_generate_key(&newkek, err);
	if (!rc)
		rc = make_shares(newkek, c->rekey.new_shares, c->rekey.new_threshold, keys, keys_b64, err);
	if (!rc)
		rc = store_root(c, newkek, root, err);
	if (!rc)
		rc = write_seal_config(c, c->rekey.new_shares, c->rekey.new_threshold, err);
	secmem_free(root, KEY_LEN);
	secmem_free(newkek, KEY_LEN);
	if (!rc) {
		*out = json_pack("{s:s,s:b,s:o,s:o,s:n,s:b,s:b}", "nonce", c->rekey.nonce, "complete", 1,
				 "keys", keys, "keys_base64", keys_b64, "pgp_fingerprints", "backup", 0,
				 "verification_required", 0);
		log_info("core", "rekey complete: new shares=%d threshold=%d", c->rekey.new_shares,
			 c->rekey.new_threshold);
		c->rekey.started = false;
	} else {
		json_decref(keys);
		json_decref(keys_b64);
	}
	pthread_mutex_unlock(&c->unseal_lock);
	return rc;
}

/* ---- generate-root ---- */

#define OTP_LEN 26

static json_t *genroot_status(struct core *c, int threshold)
{
	return json_pack("{s:s,s:b,s:i,s:i,s:b,s:s,s:s,s:s,s:i}", "nonce", c->genroot.nonce,
			 "started", c->genroot.started, "progress", c->genroot.prog.n, "required",
			 threshold, "complete", 0, "encoded_token", "", "encoded_root_token", "",
			 "pgp_fingerprint", "", "otp_length", OTP_LEN);
}

static char *b64_raw(const uint8_t *b, size_t n)
{
	char *s = to_b64(b, n);
	if (!s)
		return NULL;
	size_t l = strlen(s);
	while (l && s[l - 1] == '=')
		s[--l] = '\0';
	return s;
}

int unseal_generate_root(struct core *c, enum logical_op op, const char *which,
			 const json_t *data, json_t **out, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = read_seal_config(c, &cfg, err);
	if (rc)
		return rc;
	if (!cfg)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	int threshold = (int)json_integer_value(json_object_get(cfg, "secret_threshold"));
	json_decref(cfg);
	pthread_mutex_lock(&c->unseal_lock);
	if (!strcmp(which, "attempt")) {
		if (op == LOP_READ) {
			*out = genroot_status(c, threshold);
		} else if (op == LOP_DELETE) {
			progress_reset(&c->genroot.prog);
			c->genroot.started = false;
			c->genroot.nonce[0] = '\0';
		} else if (c->genroot.started) {
			rc = verr_set(err, VERR_INVALID, "root generation already in progress");
		} else {
			json_t *otp = json_object_get(data, "otp");
			json_t *pgp = json_object_get(data, "pgp_key");
			bool generated = false;
			if (json_is_string(pgp) && *json_string_value(pgp)) {
				rc = verr_set(err, VERR_INVALID, "pgp_key is not supported by this server");
			} else if (json_is_string(otp) && *json_string_value(otp)) {
				if (strlen(json_string_value(otp)) != OTP_LEN)
					rc = verr_set(err, VERR_INVALID, "OTP string is wrong length");
				else
					snprintf(c->genroot.otp, sizeof(c->genroot.otp), "%s",
						 json_string_value(otp));
			} else {
				rc = rand_base62(c->genroot.otp, OTP_LEN, err);
				generated = true;
			}
			if (!rc)
				rc = new_nonce(c->genroot.nonce, err);
			if (!rc) {
				c->genroot.started = true;
				progress_reset(&c->genroot.prog);
				*out = genroot_status(c, threshold);
				if (generated)
					json_object_set_new(*out, "otp", json_string(c->genroot.otp));
			}
		}
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	uint8_t *root = NULL;
	rc = collect_share(c, c->genroot.started, "root generation", c->genroot.nonce,
			   &c->genroot.prog, data, threshold, &root, err);
	if (rc <= 0) {
		if (rc == 0)
			*out = genroot_status(c, threshold);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	secmem_free(root, KEY_LEN); /* opening it proved the shares */
	rc = 0;
	char *token = NULL;
	if (!rc)
		rc = c->tokens ? token_store_root(c->tokens, &token, err)
			       : verr_set(err, VERR_SEALED, "Vault is sealed");
	if (!rc) {
		size_t tl = strlen(token);
		if (tl != OTP_LEN) {
			rc = verr_set(err, VERR_INTERNAL, "root token length does not match the OTP");
		} else {
			uint8_t x[OTP_LEN];
			for (size_t i = 0; i < OTP_LEN; i++)
				x[i] = (uint8_t)(token[i] ^ c->genroot.otp[i]);
			char *enc = b64_raw(x, OTP_LEN);
			secmem_wipe(x, sizeof(x));
			*out = json_pack("{s:s,s:b,s:i,s:i,s:b,s:s,s:s,s:s,s:i}", "nonce",
					 c->genroot.nonce, "started", 1, "progress", threshold,
					 "required", threshold, "complete", 1, "encoded_token", enc,
					 "encoded_root_token", enc, "pgp_fingerprint", "", "otp_length",
					 OTP_LEN);
			free(enc);
			log_info("core", "root token generated with a threshold of unseal keys");
		}
		secmem_wipe(token, tl);
		free(token);
	}
	c->genroot.started = false;
	secmem_wipe(c->genroot.otp, sizeof(c->genroot.otp));
	pthread_mutex_unlock(&c->unseal_lock);
	return rc;
}

/* ---- the endpoints that work while sealed ---- */

static int strip_slash_eq(const char *path, const char *what)
{
	size_t l = strlen(what);
	return !strncmp(path, what, l) && (path[l] == '\0' || (path[l] == '/' && path[l + 1] == '\0'));
}

int unseal_sealed_path(struct core *c, struct logical_request *req,
		       struct logical_response *resp, int *rc, struct verr *err)
{
	const char *p = req->path;
	json_t *out = NULL;
	bool write = req->op == LOP_UPDATE || req->op == LOP_CREATE;
	if (strip_slash_eq(p, "sys/seal-status")) {
		if (req->op != LOP_READ)
			goto unsupported;
		*rc = seal_status(c, &out, err);
	} else if (strip_slash_eq(p, "sys/health")) {
		if (req->op != LOP_READ)
			goto unsupported;
		*rc = health(c, req->data, resp);
		return 1;
	} else if (strip_slash_eq(p, "sys/init")) {
		if (req->op == LOP_READ) {
			bool inited = false;
			*rc = barrier_initialized(c->barrier, &inited, err);
			out = json_pack("{s:b}", "initialized", inited);
		} else if (write) {
			*rc = unseal_init(c, req->data, &out, err);
		} else
			goto unsupported;
	} else if (strip_slash_eq(p, "sys/unseal")) {
		if (!write)
			goto unsupported;
		*rc = unseal_submit(c, req->data, &out, err);
	} else if (strip_slash_eq(p, "sys/storage/raft/join") && state_get(c) == CORE_SEALED) {
		if (!write)
			goto unsupported;
		*rc = sys_raft_join(c, req->data, &out, err); /* sys_raft.c */
	} else if (strip_slash_eq(p, "sys/leader") && state_get(c) == CORE_STANDBY) {
		/* a standby answers for itself (the active's view would say
		 * is_self); an active node takes the normal route */
		if (req->op != LOP_READ)
			goto unsupported;
		*rc = sys_leader_status(c, &out, err);
	} else {
		return 0;
	}
	if (out)
		sys_raw_json(resp, out);
	return 1;
unsupported:
	*rc = verr_set(err, VERR_UNSUPPORTED, "unsupported operation");
	return 1;
}

void unseal_wipe(struct core *c)
{
	pthread_mutex_lock(&c->unseal_lock);
	progress_reset(&c->unseal);
	progress_reset(&c->rekey.prog);
	progress_reset(&c->genroot.prog);
	secmem_wipe(c->genroot.otp, sizeof(c->genroot.otp));
	pthread_mutex_unlock(&c->unseal_lock);
}
