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
 *
 * Auto seals (awskms, transit, pkcs11): the seal unwraps the root key by
 * itself. The key shares are then recovery keys: they combine into a
 * 32-byte recovery key that opens nothing; it is kept at core/recovery-key
 * (outside the barrier) encrypted under the root key, so it is verified by
 * opening that blob once the root key is known, in constant time. Recovery
 * keys authorise generate-root, rekey-recovery-key, an unseal after a
 * manual seal, and a seal migration.
 *
 * Seal-config (core/seal-config, plain JSON) names the seal type the root
 * key is stored under: {"type","secret_shares","secret_threshold"} for
 * shamir, {"type","recovery_shares","recovery_threshold"} for an auto seal.
 * When it differs from the configured seal, a migration is pending: the
 * unseal (with migrate=true) uses the stored type's seal (the configured
 * `disabled` stanza, or Shamir), re-wraps the root key under the new seal
 * and writes seal-config last (the commit point, so an interrupted
 * migration is simply done again). Shamir -> auto: the unseal keys become
 * the recovery keys; auto -> Shamir: the recovery keys become the unseal
 * keys; auto -> auto: the recovery keys stay.
 */
#include "core/unseal.h"

#include <assert.h>
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
#include "util/aead.h"
#include "util/log.h"
#include "util/pgp.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/shamir.h"

#define SEAL_CONFIG_KEY "core/seal-config"
#define RECOVERY_KEY_PATH "core/recovery-key"
#define KEY_LEN 32

/* The stored seal configuration, parsed. */
struct sealcfg {
	bool inited;
	char type[32];
	bool recovery;    /* stored under an auto seal: shares are recovery keys */
	int shares, threshold; /* of the key shares an operator types */
};

static int load_cfg(struct core *c, struct sealcfg *o, struct verr *err);

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

/* A single auto seal that is now one member of a multi-seal: its copy is
 * still where it was, and the next unseal makes the members' copies. */
static bool member_type(const struct seal *ms, const char *type)
{
	for (size_t i = 0; i < seal_multi_count(ms); i++)
		if (!strcmp(type, seal_type(seal_multi_member(ms, i, NULL))))
			return true;
	return false;
}

static bool migration_pending(struct core *c, const struct sealcfg *sc)
{
	return sc->inited && strcmp(sc->type, seal_type(c->o.seal)) != 0 &&
	       !member_type(c->o.seal, sc->type);
}

static int load_cfg(struct core *c, struct sealcfg *o, struct verr *err)
{
	json_t *cfg = NULL;
	memset(o, 0, sizeof(*o));
	int rc = read_seal_config(c, &cfg, err);
	if (rc || !cfg)
		return rc;
	o->inited = true;
	const char *t = json_string_value(json_object_get(cfg, "type"));
	snprintf(o->type, sizeof(o->type), "%s", t ? t : "shamir");
	o->recovery = json_object_get(cfg, "recovery_shares") != NULL;
	o->shares = (int)json_integer_value(
		json_object_get(cfg, o->recovery ? "recovery_shares" : "secret_shares"));
	o->threshold = (int)json_integer_value(
		json_object_get(cfg, o->recovery ? "recovery_threshold" : "secret_threshold"));
	json_decref(cfg);
	return 0;
}

/*
 * The seal the stored root key is under (per seal-config's type): the
 * configured seal, the migration's old (disabled) seal, or a Shamir seal
 * made for the occasion (*tmp, closed by the caller with seal_close).
 */
static int stored_seal(struct core *c, const struct sealcfg *sc, struct seal **out,
		       struct seal **tmp, struct verr *err)
{
	*tmp = NULL;
	*out = NULL;
	if (!strcmp(sc->type, seal_type(c->o.seal)) || member_type(c->o.seal, sc->type)) {
		*out = c->o.seal;
		return 0;
	}
	if (c->o.old_seal && !strcmp(sc->type, seal_type(c->o.old_seal))) {
		*out = c->o.old_seal;
		return 0;
	}
	if (!strcmp(sc->type, "shamir")) {
		int rc = seal_shamir_new(tmp, NULL, err);
		*out = *tmp;
		return rc;
	}
	return verr_set(err, VERR_INVALID,
			"the root key is stored under a %s seal, which is not configured: add its seal "
			"stanza (with disabled = \"true\" to migrate away from it)",
			sc->type);
}

static int seal_status(struct core *c, json_t **out, struct verr *err)
{
	struct sealcfg sc;
	*out = NULL;
	/* storage unreachable: say so (5xx), never "not initialized" */
	int rc = load_cfg(c, &sc, err);
	if (rc)
		return rc;
	bool auto_seal = seal_recovery_keys(c->o.seal);
	pthread_mutex_lock(&c->unseal_lock);
	bool sealed = state_get(c) == CORE_SEALED;
	json_t *o = json_pack("{s:s,s:b,s:b,s:I,s:I,s:i,s:s,s:s,s:s,s:b,s:b,s:s}", "type",
			      seal_type(c->o.seal), "initialized", sc.inited, "sealed", sealed, "t",
			      (json_int_t)sc.threshold, "n", (json_int_t)sc.shares, "progress",
			      c->unseal.n, "nonce", c->unseal.nonce, "version", version_string(),
			      "build_date", "2026-11-27T00:00:00Z", "migration",
			      migration_pending(c, &sc), "recovery_seal", auto_seal, "storage_type",
			      c->o.storage_type ? c->o.storage_type : "inmem");
	if (o && auto_seal)
		json_object_set_new(o, "recovery_seal_type", json_string("shamir"));
	pthread_mutex_unlock(&c->unseal_lock);
	char kid[512];
	seal_key_id(c->o.seal, kid, sizeof(kid));
	if (o && *kid)
		json_object_set_new(o, "seal_key_id", json_string(kid));
	if (!sealed && o) {
		char id[sizeof(c->cluster_id)];
		state_cluster_id(c, id);
		json_object_set_new(o, "cluster_name", json_string(c->cluster_name));
		json_object_set_new(o, "cluster_id", json_string(id));
	}
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

/* One share out: hex and base64 of the share itself, or (pgp_key) of the
 * OpenPGP message encrypting its hex form to that key, as Vault does. */
static int emit_share(const uint8_t *share, size_t len, const char *pgp_key, json_t *keys,
		      json_t *keys_b64, struct verr *err)
{
	uint8_t *msg = NULL;
	size_t mlen = 0;
	const uint8_t *src = share;
	size_t slen = len;
	if (pgp_key) {
		char *hx = to_hex(share, len);
		if (!hx)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		int rc = pgp_encrypt(&msg, &mlen, pgp_key, (const uint8_t *)hx, strlen(hx), err);
		secmem_wipe(hx, strlen(hx));
		free(hx);
		if (rc)
			return rc;
		src = msg;
		slen = mlen;
	}
	char *h = to_hex(src, slen), *b = to_b64(src, slen);
	int rc = (h && b) ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc) {
		json_array_append_new(keys, json_string(h));
		json_array_append_new(keys_b64, json_string(b));
	}
	if (h)
		secmem_wipe(h, strlen(h));
	if (b)
		secmem_wipe(b, strlen(b));
	free(h);
	free(b);
	free(msg);
	return rc;
}

/* Split kek into shares and append them to keys/keys_base64 arrays
 * (pgp_keys: a JSON array of as many base64 keys, or NULL). */
static int make_shares(const uint8_t *kek, int shares, int threshold, const json_t *pgp_keys,
		       json_t *keys, json_t *keys_b64, struct verr *err)
{
	const char *pk0 = pgp_keys ? json_string_value(json_array_get(pgp_keys, 0)) : NULL;
	if (shares == 1)
		return emit_share(kek, KEY_LEN, pk0, keys, keys_b64, err);
	uint8_t **parts = NULL;
	size_t plen = 0;
	int rc = shamir_split(&parts, &plen, kek, KEY_LEN, shares, threshold, err);
	if (rc)
		return rc;
	for (int i = 0; i < shares && !rc; i++) {
		const char *pk =
			pgp_keys ? json_string_value(json_array_get(pgp_keys, (size_t)i)) : NULL;
		rc = emit_share(parts[i], plen, pk, keys, keys_b64, err);
	}
	shamir_shares_free(parts, shares, plen);
	return rc;
}

/* pgp_keys of a request: NULL when absent or empty; else *fprs = their
 * fingerprints, and there must be one key per share. */
static int read_pgp_keys(const json_t *data, const char *field, int shares, json_t **keys,
			 json_t **fprs, struct verr *err)
{
	const json_t *pk = json_object_get(data, field);
	*keys = *fprs = NULL;
	if (!pk || json_is_null(pk) || (json_is_array(pk) && json_array_size(pk) == 0))
		return 0;
	json_t *arr = NULL;
	if (json_is_string(pk)) { /* the CLI's comma-separated form */
		arr = json_array();
		char *dup = strdup(json_string_value(pk)), *save = NULL;
		for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(arr, json_string(t));
		free(dup);
	} else if (json_is_array(pk)) {
		arr = json_deep_copy(pk);
	} else {
		return verr_set(err, VERR_INVALID, "%s must be a list of base64-encoded PGP public keys", field);
	}
	if ((int)json_array_size(arr) != shares) {
		size_t got = json_array_size(arr);
		json_decref(arr);
		return verr_set(err, VERR_INVALID, "incorrect number of PGP keys: %zu given for %d shares",
				got, shares);
	}
	json_t *f = json_array();
	size_t i;
	json_t *v;
	json_array_foreach (arr, i, v) {
		char fp[41];
		struct verr e2 = {0};
		int rc = json_is_string(v) ? pgp_fingerprint(fp, json_string_value(v), &e2)
					   : verr_set(&e2, VERR_INVALID, "not a string");
		if (rc) {
			json_decref(arr);
			json_decref(f);
			return verr_set(err, rc, "%s[%zu]: %s", field, i, e2.msg);
		}
		json_array_append_new(f, json_string(fp));
	}
	*keys = arr;
	*fprs = f;
	return 0;
}

static int validate_shares(const json_t *data, int *shares, int *threshold, struct verr *err)
{
	json_t *s = json_object_get(data, "secret_shares");
	json_t *t = json_object_get(data, "secret_threshold");
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

/* recovery_shares/recovery_threshold of an auto seal's sys/init; 0/0 (as
 * OpenBao allows) makes no recovery keys */
static int validate_recovery(const json_t *data, int *shares, int *threshold, struct verr *err)
{
	json_t *s = json_object_get(data, "recovery_shares");
	json_t *t = json_object_get(data, "recovery_threshold");
	if (json_array_size(json_object_get(data, "recovery_pgp_keys")) > 0)
		return verr_set(err, VERR_INVALID, "recovery_pgp_keys are not supported by this server");
	if (!s || !t)
		return verr_set(err, VERR_INVALID, "recovery_shares and recovery_threshold are required with the auto seal");
	if (!json_is_integer(s) || !json_is_integer(t))
		return verr_set(err, VERR_INVALID, "recovery_shares and recovery_threshold must be integers");
	json_int_t sv = json_integer_value(s), tv = json_integer_value(t);
	if (sv == 0 && tv == 0) {
		*shares = *threshold = 0;
		return 0;
	}
	if (sv < 1 || sv > 255)
		return verr_set(err, VERR_INVALID, "invalid recovery configuration: recovery_shares must be between 1 and 255");
	if (tv < 1 || tv > sv)
		return verr_set(err, VERR_INVALID, "invalid recovery configuration: recovery_threshold must be between 1 and recovery_shares");
	if (sv > 1 && tv == 1)
		return verr_set(err, VERR_INVALID, "invalid recovery configuration: recovery_threshold must be greater than one for multiple shares");
	*shares = (int)sv;
	*threshold = (int)tv;
	return 0;
}

/* The root key wrapped by seal `s` (kek for Shamir, NULL for an auto seal),
 * at that seal's path. */
static int multi_wrap_missing(struct core *c, struct seal *ms, const uint8_t *root, bool all,
			      struct verr *err);

static int store_root_with(struct core *c, struct seal *s, const uint8_t *kek, const uint8_t *root,
			   struct verr *err)
{
	if (seal_multi_count(s))
		return multi_wrap_missing(c, s, root, true, err);
	uint8_t *blob = NULL;
	size_t blen = 0;
	int rc = seal_wrap(s, kek, kek ? KEY_LEN : 0, root, KEY_LEN, &blob, &blen, err);
	if (rc)
		return rc;
	rc = physical_put(c->phys, seal_root_path(s), blob, blen, err);
	free(blob);
	return rc;
}

static int store_root(struct core *c, const uint8_t *kek, const uint8_t *root, struct verr *err)
{
	return store_root_with(c, c->o.seal, kek, root, err);
}

/* The recovery key, encrypted under the root key, outside the barrier. */
static int store_recovery(struct core *c, const uint8_t *root, const uint8_t *rkey, struct verr *err)
{
	uint8_t *blob = NULL;
	size_t blen = 0;
	int rc = aead_blob_seal(&blob, &blen, root, RECOVERY_KEY_PATH, rkey, KEY_LEN, err);
	if (!rc)
		rc = physical_put(c->phys, RECOVERY_KEY_PATH, blob, blen, err);
	free(blob);
	return rc;
}

/* 0 when rkey is the recovery key (root opens the stored one and they are
 * equal, compared in constant time); VERR_INVALID otherwise. */
static int verify_recovery(struct core *c, const uint8_t *root, const uint8_t *rkey, struct verr *err)
{
	uint8_t *blob = NULL, *want = NULL;
	size_t blen = 0, wl = 0;
	int rc = physical_get(c->phys, RECOVERY_KEY_PATH, &blob, &blen, err);
	if (rc)
		return rc;
	if (!blob)
		return verr_set(err, VERR_INVALID, "this server has no recovery keys (initialized with recovery_shares = 0)");
	struct verr e2 = {0};
	rc = aead_blob_open(&want, &wl, root, RECOVERY_KEY_PATH, blob, blen, &e2);
	free(blob);
	if (rc)
		return verr_set(err, VERR_INTERNAL, "the stored recovery key does not open: %s", e2.msg);
	bool ok = wl == KEY_LEN && secmem_eq(want, rkey, KEY_LEN);
	secmem_free(want, wl);
	return ok ? 0 : verr_set(err, VERR_INVALID, "invalid recovery key");
}

/* seal-config; `names` (taken; NULL: none) lists a multi-seal's members
 * that have a wrapped copy. */
static int write_cfg_names(struct core *c, const char *type, bool recovery, int shares,
			   int threshold, json_t *names, struct verr *err)
{
	json_t *cfg = json_pack("{s:s,s:i,s:i}", "type", type,
				recovery ? "recovery_shares" : "secret_shares", shares,
				recovery ? "recovery_threshold" : "secret_threshold", threshold);
	if (cfg && names)
		json_object_set(cfg, "seals", names);
	json_decref(names);
	char *s = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = physical_put(c->phys, SEAL_CONFIG_KEY, (const uint8_t *)s, strlen(s), err);
	free(s);
	return rc;
}

static int write_cfg(struct core *c, const char *type, bool recovery, int shares, int threshold,
		     struct verr *err)
{
	json_t *names = NULL;
	if (!strcmp(type, SEAL_MULTI_TYPE)) {
		/* the members that have a wrapped copy */
		names = json_array();
		for (size_t i = 0; i < seal_multi_count(c->o.seal); i++) {
			const char *name = NULL;
			seal_multi_member(c->o.seal, i, &name);
			if (seal_multi_has_copy(c->o.seal, i))
				json_array_append_new(names, json_string(name));
		}
	}
	return write_cfg_names(c, type, recovery, shares, threshold, names, err);
}

int unseal_init(struct core *c, const json_t *data, json_t **out, struct verr *err)
{
	int shares = 0, threshold = 0;
	bool auto_seal = seal_recovery_keys(c->o.seal);
	int rc = auto_seal ? validate_recovery(data, &shares, &threshold, err)
			   : validate_shares(data, &shares, &threshold, err);
	if (rc)
		return rc;
	if (auto_seal && json_array_size(json_object_get(data, "pgp_keys")) > 0)
		return verr_set(err, VERR_INVALID, "pgp_keys are not supported by this server");
	json_t *pgp = NULL, *fprs = NULL;
	if (!auto_seal && (rc = read_pgp_keys(data, "pgp_keys", shares, &pgp, &fprs, err)) != 0)
		return rc;
	json_decref(fprs);
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
	json_t *rkeys = json_array(), *rkeys_b64 = json_array();
	char *root_token = NULL;
	rc = barrier_generate_key(&root, err);
	if (!rc && (!auto_seal || shares > 0))
		rc = barrier_generate_key(&kek, err); /* the KEK, or the recovery key */
	/* the seal first: when it cannot wrap (key service down, key refused)
	 * nothing is initialised yet and sys/init can simply be retried */
	if (!rc)
		rc = store_root(c, auto_seal ? NULL : kek, root, err);
	if (!rc)
		rc = barrier_initialize(c->barrier, root, KEY_LEN, err);
	if (!rc && auto_seal && kek)
		rc = store_recovery(c, root, kek, err);
	if (!rc && kek)
		rc = make_shares(kek, shares, threshold, pgp, auto_seal ? rkeys : keys,
				 auto_seal ? rkeys_b64 : keys_b64, err);
	if (!rc)
		rc = state_init_barrier(c, root, KEY_LEN, &root_token, err);
	/* seal-config last: its presence means "initialized" */
	if (!rc)
		rc = write_cfg(c, seal_type(c->o.seal), auto_seal, shares, threshold, err);
	secmem_free(kek, KEY_LEN);
	json_decref(pgp);
	pthread_mutex_unlock(&c->init_lock);
	/* an auto seal unseals at once, as Vault does */
	if (!rc && auto_seal) {
		bool did = false;
		struct verr e2 = {0};
		if (state_unseal(c, root, KEY_LEN, &did, &e2))
			log_warn("core", "initialized, but the unseal that follows failed: %s", e2.msg);
	}
	secmem_free(root, KEY_LEN);
	if (rc) {
		json_decref(keys);
		json_decref(keys_b64);
		json_decref(rkeys);
		json_decref(rkeys_b64);
		free(root_token);
		return rc;
	}
	*out = json_pack("{s:o,s:o,s:s}", "keys", keys, "keys_base64", keys_b64, "root_token",
			 root_token);
	if (auto_seal) {
		json_object_set_new(*out, "recovery_keys", rkeys);
		json_object_set_new(*out, "recovery_keys_base64", rkeys_b64);
	} else {
		json_decref(rkeys);
		json_decref(rkeys_b64);
	}
	secmem_wipe(root_token, strlen(root_token));
	free(root_token);
	if (auto_seal)
		log_info("core", "security barrier initialized (%s seal, recovery shares=%d threshold=%d)",
			 seal_type(c->o.seal), shares, threshold);
	else
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

/* The root key as seal `s` unwraps the copy at `path` (kek: Shamir's
 * combined key, or NULL). */
static int unwrap_at(struct core *c, struct seal *s, const char *path, const uint8_t *kek,
		     uint8_t **root, struct verr *err)
{
	uint8_t *blob = NULL;
	size_t blen = 0, rlen = 0;
	*root = NULL;
	int rc = physical_get(c->phys, path, &blob, &blen, err);
	if (rc)
		return rc;
	if (!blob)
		return verr_set(err, VERR_INTERNAL, "sealed root key is missing from storage (%s)", path);
	struct verr e2 = {0};
	rc = seal_unwrap(s, kek, kek ? KEY_LEN : 0, blob, blen, root, &rlen, &e2);
	free(blob);
	if (!rc && rlen != KEY_LEN) {
		secmem_free(*root, rlen);
		rc = verr_set(&e2, VERR_INVALID, "invalid key: wrong length");
	}
	if (rc) {
		*root = NULL;
		if (seal_needs_kek(s))
			return verr_set(err, VERR_INVALID, "unseal failed, invalid key");
		/* an auto seal's own reason: key service down, access denied,
		 * the wrapped root key altered */
		return verr_set(err, rc, "%s", e2.msg);
	}
	return 0;
}

/* ---- multi-seal: one wrapped copy per member (seal.h, src/seal/multi.c) ---- */

static void copy_path(char *buf, size_t n, const char *name)
{
	/* names are at most SEAL_MULTI_NAME_MAX; a longer listed key is cut
	 * (and then names nothing) */
	if (snprintf(buf, n, "%s%s", SEAL_MULTI_ROOT_PREFIX, name) >= (int)n)
		buf[n - 1] = '\0';
}

static void why_add(char *why, size_t cap, const char *name, const struct seal *m, const char *msg)
{
	size_t l = strlen(why);
	/* a long list is cut at cap: the first seals' reasons come first */
	if (l + 1 < cap && snprintf(why + l, cap - l, "%s\"%s\" (%s): %s", l ? "; " : "", name,
				    seal_type(m), msg) >= (int)(cap - l))
		why[cap - 1] = '\0';
}

/* Wrap the root key with every member that has no good copy yet (every
 * member when `all`) and store each copy; fails only when no member has a
 * good copy afterwards. */
static int multi_wrap_missing(struct core *c, struct seal *ms, const uint8_t *root, bool all,
			      struct verr *err)
{
	char why[VERR_MSG_MAX] = "";
	int good = 0;
	for (size_t i = 0; i < seal_multi_count(ms); i++) {
		const char *name = NULL;
		struct seal *m = seal_multi_member(ms, i, &name);
		if (!all && seal_multi_has_copy(ms, i)) {
			good++;
			continue;
		}
		char path[128];
		copy_path(path, sizeof(path), name);
		uint8_t *blob = NULL;
		size_t blen = 0;
		struct verr e2 = {0};
		int rc = seal_wrap(m, NULL, 0, root, KEY_LEN, &blob, &blen, &e2);
		if (!rc)
			rc = physical_put(c->phys, path, blob, blen, &e2);
		free(blob);
		seal_multi_set_copy(ms, i, rc == 0);
		seal_multi_report(ms, i, rc == 0);
		if (rc) {
			log_error("core", "multi-seal: seal \"%s\" (%s) could not wrap the root key: %s", name,
				  seal_type(m), e2.msg);
			why_add(why, sizeof(why), name, m, e2.msg);
			continue;
		}
		log_info("core", "multi-seal: root key wrapped by seal \"%s\" (%s)", name, seal_type(m));
		good++;
	}
	return good ? 0 : verr_set(err, VERR_UNAVAILABLE, "no seal could wrap the root key: %s", why);
}

static bool listed(const json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	if (json_is_string(v) && !strcmp(json_string_value(v), name))
		return true;
	return false;
}

/* Try the members in priority order; the first that unwraps its copy wins.
 * A member without a copy of its own is tried on the single seal's copy of
 * its type (the seal-config of a single auto seal, before its first
 * multi-seal unseal). */
static int multi_unwrap_root(struct core *c, struct seal *ms, uint8_t **root, struct verr *err)
{
	json_t *cfg = NULL;
	int rc = read_seal_config(c, &cfg, err);
	if (rc)
		return rc;
	const json_t *names = json_object_get(cfg, "seals");
	const char *stype = json_string_value(json_object_get(cfg, "type"));
	char why[VERR_MSG_MAX] = "";
	bool unavailable = false;
	size_t n = seal_multi_count(ms);
	for (size_t i = 0; i < n; i++) {
		const char *name = NULL;
		seal_multi_member(ms, i, &name);
		seal_multi_set_copy(ms, i, listed(names, name));
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = NULL;
		struct seal *m = seal_multi_member(ms, i, &name);
		bool own = listed(names, name);
		char path[128];
		if (own)
			copy_path(path, sizeof(path), name);
		else if (stype && !strcmp(stype, seal_type(m)))
			snprintf(path, sizeof(path), "%s", seal_root_path(m));
		else {
			why_add(why, sizeof(why), name, m, "no wrapped copy yet");
			continue;
		}
		struct verr e2 = {0};
		rc = unwrap_at(c, m, path, NULL, root, &e2);
		seal_multi_report(ms, i, rc == 0);
		if (!rc) {
			if (*why)
				log_warn("core", "multi-seal: the root key was unwrapped by seal \"%s\" (%s) after: %s",
					 name, seal_type(m), why);
			json_decref(cfg);
			return 0;
		}
		/* refused (altered copy, wrong key): wrap it again once unsealed;
		 * unreachable: the copy stays */
		if (rc != VERR_UNAVAILABLE)
			seal_multi_set_copy(ms, i, false);
		else
			unavailable = true;
		why_add(why, sizeof(why), name, m, e2.msg);
	}
	json_decref(cfg);
	return verr_set(err, unavailable ? VERR_UNAVAILABLE : VERR_INVALID,
			"no configured seal could unwrap the root key: %s", why);
}

/* Delete every copy under SEAL_MULTI_ROOT_PREFIX that no member of `ms`
 * owns: left behind by a removal interrupted after seal-config was written. */
static void multi_sweep(struct core *c, struct seal *ms)
{
	char **keys = NULL;
	size_t nk = 0;
	struct verr e = {0};
	if (physical_list(c->phys, SEAL_MULTI_ROOT_PREFIX, &keys, &nk, &e)) {
		log_warn("core", "multi-seal: cannot list the wrapped copies: %s", e.msg);
		return;
	}
	for (size_t k = 0; k < nk; k++) {
		bool owned = false;
		for (size_t i = 0; i < seal_multi_count(ms); i++) {
			const char *name = NULL;
			seal_multi_member(ms, i, &name);
			owned = owned || !strcmp(name, keys[k]);
		}
		if (owned || strchr(keys[k], '/') || strlen(keys[k]) > SEAL_MULTI_NAME_MAX)
			continue;
		char path[128];
		copy_path(path, sizeof(path), keys[k]);
		if (physical_delete(c->phys, path, &e))
			log_warn("core", "multi-seal: the copy of removed seal \"%s\" stays: %s", keys[k], e.msg);
		else
			log_info("core", "multi-seal: the wrapped copy of seal \"%s\", no longer configured, is deleted",
				 keys[k]);
	}
	physical_list_free(keys, nk);
}

/*
 * Once unsealed with a multi-seal: wrap the root key with the members that
 * have no good copy (added to the configuration, or their copy refused),
 * drop the copies of seals no longer configured, and record the list in
 * seal-config (before deleting, so it never names a missing copy). Errors
 * are logged: the next unseal tries again. Called with c->unseal_lock held,
 * on the active node only (unseal_sync_seals): a standby writes nothing.
 */
static void multi_sync(struct core *c, const uint8_t *root)
{
	struct seal *ms = c->o.seal;
	size_t n = seal_multi_count(ms);
	if (!n)
		return;
	struct sealcfg sc;
	json_t *cfg = NULL;
	struct verr e = {0};
	if (load_cfg(c, &sc, &e) || read_seal_config(c, &cfg, &e) || !cfg) {
		log_error("core", "multi-seal: cannot read the seal configuration: %s", e.msg);
		return;
	}
	const json_t *names = json_object_get(cfg, "seals");
	bool legacy = strcmp(sc.type, SEAL_MULTI_TYPE) != 0;
	if (multi_wrap_missing(c, ms, root, false, &e))
		log_error("core", "multi-seal: %s", e.msg);
	bool changed = legacy;
	for (size_t i = 0; i < n; i++) {
		const char *name = NULL;
		seal_multi_member(ms, i, &name);
		if (seal_multi_has_copy(ms, i) != listed(names, name))
			changed = true;
	}
	size_t k;
	json_t *v;
	json_array_foreach(names, k, v)
	{
		bool configured = false;
		for (size_t i = 0; i < n; i++) {
			const char *name = NULL;
			seal_multi_member(ms, i, &name);
			configured = configured || !strcmp(name, json_string_value(v));
		}
		changed = changed || !configured;
	}
	if (changed && write_cfg(c, SEAL_MULTI_TYPE, sc.recovery, sc.shares, sc.threshold, &e)) {
		log_error("core", "multi-seal: cannot record the wrapped copies: %s", e.msg);
		json_decref(cfg);
		return;
	}
	json_array_foreach(names, k, v)
	{
		bool configured = false;
		for (size_t i = 0; i < n; i++) {
			const char *name = NULL;
			seal_multi_member(ms, i, &name);
			configured = configured || !strcmp(name, json_string_value(v));
		}
		if (configured)
			continue;
		char path[128];
		copy_path(path, sizeof(path), json_string_value(v));
		if (physical_delete(c->phys, path, &e))
			log_warn("core", "multi-seal: the copy of removed seal \"%s\" stays: %s",
				 json_string_value(v), e.msg);
		else
			log_info("core", "multi-seal: seal \"%s\" is no longer configured: its wrapped copy is deleted",
				 json_string_value(v));
	}
	if (legacy) {
		for (size_t i = 0; i < n; i++) {
			struct seal *m = seal_multi_member(ms, i, NULL);
			if (!strcmp(seal_type(m), sc.type) &&
			    physical_delete(c->phys, seal_root_path(m), &e))
				log_warn("core", "multi-seal: the single seal's copy stays: %s", e.msg);
		}
		log_info("core", "multi-seal: the %s seal's root key is now wrapped per seal", sc.type);
	}
	multi_sweep(c, ms);
	json_decref(cfg);
}

void unseal_sync_seals(struct core *c)
{
	pthread_rwlock_rdlock(&c->state_lock); /* stays active throughout */
	pthread_mutex_lock(&c->unseal_lock);
	if (!seal_multi_count(c->o.seal)) {
		/* not a multi-seal: nothing to sync */
	} else if (state_get(c) != CORE_ACTIVE) {
		log_debug("core", "multi-seal: not the active node: the wrapped copies are left to it");
	} else {
		uint8_t *root = NULL;
		size_t rl = 0;
		struct verr e = {0};
		if (barrier_root_key(c->barrier, &root, &rl, &e))
			log_error("core", "multi-seal: the wrapped copies are not synced: %s", e.msg);
		else
			multi_sync(c, root);
		secmem_free(root, rl);
	}
	pthread_mutex_unlock(&c->unseal_lock);
	pthread_rwlock_unlock(&c->state_lock);
}

static bool in_set(struct seal *const *set, size_t n, const struct seal *s)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == s)
			return true;
	return false;
}

/* Store the root key wrapped by an added member and open the copy again:
 * a key that encrypts but may not decrypt is refused here, not at the
 * next restart. */
static int wrap_verified(struct core *c, struct seal *m, const char *path, const uint8_t *root,
			 struct verr *err)
{
	uint8_t *blob = NULL, *back = NULL;
	size_t blen = 0;
	int rc = seal_wrap(m, NULL, 0, root, KEY_LEN, &blob, &blen, err);
	if (!rc)
		rc = physical_put(c->phys, path, blob, blen, err);
	free(blob);
	if (!rc)
		rc = unwrap_at(c, m, path, NULL, &back, err);
	if (!rc && !secmem_eq(back, root, KEY_LEN))
		rc = verr_set(err, VERR_INVALID, "the wrapped copy does not open to the root key");
	if (back)
		secmem_free(back, KEY_LEN);
	return rc;
}

int unseal_seals_change(struct core *c, struct seal **members, const char *const *names,
			const int *prio, size_t n, struct verr *err)
{
	struct seal *ms = c->o.seal;
	bool isnew[SEAL_MULTI_MAX] = {0}, copy[SEAL_MULTI_MAX] = {0}, wrote[SEAL_MULTI_MAX] = {0};
	struct seal *removed[SEAL_MULTI_MAX] = {0};
	char gone[SEAL_MULTI_MAX][SEAL_MULTI_NAME_MAX + 1];
	size_t nrem = 0, ngone = 0;
	uint8_t *root = NULL;
	size_t rl = 0;
	char path[128];
	int rc = 0;
	pthread_rwlock_rdlock(&c->state_lock); /* stays unsealed and active throughout */
	pthread_mutex_lock(&c->unseal_lock);
	size_t n0 = seal_multi_count(ms);
	struct seal *cur[SEAL_MULTI_MAX] = {0};
	for (size_t j = 0; j < n0; j++)
		cur[j] = seal_multi_member(ms, j, NULL);
	bool changed = n != n0;
	for (size_t i = 0; i < n && i < SEAL_MULTI_MAX; i++) {
		isnew[i] = !in_set(cur, n0, members[i]);
		changed = changed || isnew[i];
	}
	if (n > SEAL_MULTI_MAX) {
		rc = seal_multi_check(members, names, prio, n, err);
		goto out;
	}
	if (!n0) {
		rc = verr_set(err, VERR_PRECONDITION,
			      "the %s seal is not a multi-seal: adding seals to it needs a restart",
			      seal_type(ms));
		goto out;
	}
	if (!n) {
		rc = verr_set(err, VERR_PRECONDITION,
			      "removing every seal is a seal migration: the seals are unchanged");
		goto out;
	}
	if ((rc = seal_multi_check(members, names, prio, n, err)) != 0)
		goto out;
	for (size_t j = 0; j < n0; j++) {
		const char *cn = NULL;
		seal_multi_member(ms, j, &cn);
		bool kept = false;
		for (size_t i = 0; i < n; i++) {
			if (members[i] == cur[j]) {
				kept = true;
				changed = changed || strcmp(names[i], cn) || prio[i] != seal_multi_priority(ms, j);
				copy[i] = seal_multi_has_copy(ms, j);
			} else if (isnew[i] && !strcmp(names[i], cn)) {
				rc = verr_set(err, VERR_INVALID,
					      "seal \"%s\" is already configured with other settings: give the new seal a new name",
					      cn);
				goto out;
			}
		}
		if (!kept)
			snprintf(gone[ngone++], sizeof(gone[0]), "%s", cn);
	}
	if (!changed)
		goto out;
	if (state_get(c) != CORE_ACTIVE) {
		rc = verr_set(err, VERR_PRECONDITION,
			      "the seals change only on the active, unsealed node: the running seals stay until a restart");
		goto out;
	}
	struct sealcfg sc;
	if ((rc = load_cfg(c, &sc, err)) != 0)
		goto out;
	if (strcmp(sc.type, SEAL_MULTI_TYPE)) {
		rc = verr_set(err, VERR_PRECONDITION,
			      "the root key is still stored under the single %s seal: the seals are unchanged",
			      sc.type);
		goto out;
	}
	if ((rc = barrier_root_key(c->barrier, &root, &rl, err)) != 0)
		goto out;
	/* 1: the added members' copies (nothing names them yet) */
	int good = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isnew[i]) {
			for (size_t j = 0; j < n0; j++)
				if (cur[j] == members[i] && seal_multi_has_copy(ms, j) &&
				    seal_multi_healthy(ms, j))
					good++;
			continue;
		}
		struct verr e2 = {0};
		copy_path(path, sizeof(path), names[i]);
		wrote[i] = true;
		if ((rc = wrap_verified(c, members[i], path, root, &e2)) != 0) {
			rc = verr_set(err, rc, "seal \"%s\" (%s) cannot wrap the root key: %s; the running seals are unchanged",
				      names[i], seal_type(members[i]), e2.msg);
			goto out;
		}
		copy[i] = true;
		good++;
		log_info("core", "multi-seal: seal \"%s\" (%s) added: the root key is wrapped by it",
			 names[i], seal_type(members[i]));
	}
	if (!good) {
		rc = verr_set(err, VERR_PRECONDITION,
			      "no seal of the new set is available with a wrapped copy of the root key: the running seals are unchanged");
		goto out;
	}
	/* 2: the commit point */
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		if (copy[i])
			json_array_append_new(list, json_string(names[i]));
	if ((rc = write_cfg_names(c, SEAL_MULTI_TYPE, sc.recovery, sc.shares, sc.threshold, list,
				  err)) != 0)
		goto out;
	/* 3: the swap (checked above, so it cannot fail) */
	rc = seal_multi_replace(ms, members, names, prio, copy, n, removed, &nrem, err);
	assert(rc == 0);
	memset(wrote, 0, sizeof(wrote)); /* the new copies stay */
	memset(isnew, 0, sizeof(isnew)); /* the multi-seal owns them now */
	/* 4: the removed members' copies, then any left by an earlier crash */
	for (size_t k = 0; k < ngone; k++) {
		struct verr e2 = {0};
		copy_path(path, sizeof(path), gone[k]);
		if (physical_delete(c->phys, path, &e2))
			log_warn("core", "multi-seal: the copy of removed seal \"%s\" stays: %s", gone[k], e2.msg);
		else
			log_info("core", "multi-seal: seal \"%s\" removed: its wrapped copy is deleted", gone[k]);
	}
	multi_sweep(c, ms);
	char now[VERR_MSG_MAX] = "";
	for (size_t i = 0; i < seal_multi_count(ms); i++) {
		const char *nm = NULL;
		struct seal *m = seal_multi_member(ms, i, &nm);
		size_t l = strlen(now);
		snprintf(now + l, sizeof(now) - l, "%s%s (%s)", l ? ", " : "", nm, seal_type(m));
	}
	log_info("core", "multi-seal: the seals are now, in priority order: %s", now);
out:
	for (size_t i = 0; i < n && i < SEAL_MULTI_MAX; i++) {
		if (wrote[i]) {
			struct verr e2 = {0};
			copy_path(path, sizeof(path), names[i]);
			if (physical_delete(c->phys, path, &e2))
				log_warn("core", "multi-seal: the unused copy of seal \"%s\" stays: %s",
					 names[i], e2.msg);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (i >= SEAL_MULTI_MAX || isnew[i])
			seal_close(members[i]);
	for (size_t k = 0; k < nrem; k++)
		seal_close(removed[k]); /* swapped out under unseal_lock: no one uses it */
	if (root)
		secmem_free(root, rl);
	pthread_mutex_unlock(&c->unseal_lock);
	pthread_rwlock_unlock(&c->state_lock);
	return rc;
}

static int unwrap_root(struct core *c, struct seal *s, const uint8_t *kek, uint8_t **root,
		       struct verr *err)
{
	if (seal_multi_count(s))
		return multi_unwrap_root(c, s, root, err);
	return unwrap_at(c, s, seal_root_path(s), kek, root, err);
}

/*
 * The root key from a combined key-share secret: under Shamir the secret
 * is the KEK that opens it; under an auto seal the seal unwraps it (or,
 * unsealed, the barrier has it) and the secret must be the recovery key.
 */
static int open_root_sc(struct core *c, const struct sealcfg *sc, const uint8_t *key,
			uint8_t **root, struct verr *err)
{
	*root = NULL;
	if (sc->recovery && state_get(c) != CORE_SEALED) {
		size_t rl = 0;
		int rc = barrier_root_key(c->barrier, root, &rl, err);
		if (!rc && rl != KEY_LEN) {
			secmem_free(*root, rl);
			*root = NULL;
			rc = verr_set(err, VERR_INTERNAL, "root key has the wrong length");
		}
		if (!rc && (rc = verify_recovery(c, *root, key, err)) != 0) {
			secmem_free(*root, KEY_LEN);
			*root = NULL;
		}
		if (rc != VERR_SEALED)
			return rc;
		verr_clear(err); /* sealed meanwhile: through the seal */
	}
	struct seal *s = NULL, *tmp = NULL;
	int rc = stored_seal(c, sc, &s, &tmp, err);
	if (!rc)
		rc = unwrap_root(c, s, sc->recovery ? NULL : key, root, err);
	if (!rc && sc->recovery && (rc = verify_recovery(c, *root, key, err)) != 0) {
		secmem_free(*root, KEY_LEN);
		*root = NULL;
	}
	seal_close(tmp);
	return rc;
}

/* Re-wrap the root key under the configured seal (seal migration); the
 * combined key becomes the new Shamir KEK or the recovery key. */
static int migrate(struct core *c, const struct sealcfg *sc, const uint8_t *root,
		   const uint8_t *key, struct verr *err)
{
	struct seal *to = c->o.seal, *from = NULL, *tmp = NULL;
	int rc = stored_seal(c, sc, &from, &tmp, err);
	if (rc)
		return rc;
	bool to_auto = seal_recovery_keys(to);
	log_info("core", "seal migration from %s to %s: starting", sc->type, seal_type(to));
	rc = store_root_with(c, to, to_auto ? NULL : key, root, err);
	if (!rc && to_auto && !sc->recovery)
		rc = store_recovery(c, root, key, err); /* unseal keys -> recovery keys */
	if (!rc) /* the commit point */
		rc = write_cfg(c, seal_type(to), to_auto, sc->shares, sc->threshold, err);
	if (!rc) {
		struct verr e2 = {0};
		if (strcmp(seal_root_path(from), seal_root_path(to)) &&
		    physical_delete(c->phys, seal_root_path(from), &e2))
			log_warn("core", "seal migration: the old wrapped root key stays: %s", e2.msg);
		if (!to_auto && physical_delete(c->phys, RECOVERY_KEY_PATH, &e2))
			log_warn("core", "seal migration: the old recovery key stays: %s", e2.msg);
		log_info("core", "seal migration from %s to %s complete", sc->type, seal_type(to));
	} else {
		log_error("core", "seal migration from %s to %s failed (retry the unseal with migrate): %s",
			  sc->type, seal_type(to), err ? err->msg : "");
	}
	seal_close(tmp);
	return rc;
}

static int new_nonce(char *nonce, struct verr *err)
{
	return rand_uuid(nonce, err);
}

static bool jbool(const json_t *v)
{
	return json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true"));
}

int unseal_submit(struct core *c, const json_t *data, json_t **out, struct verr *err)
{
	struct sealcfg sc;
	int rc = load_cfg(c, &sc, err);
	if (rc)
		return rc;
	if (!sc.inited)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	int threshold = sc.threshold;

	bool do_reset = jbool(json_object_get(data, "reset"));
	bool do_migrate = jbool(json_object_get(data, "migrate"));
	json_t *key = json_object_get(data, "key");
	if (!do_reset && !key)
		return verr_set(err, VERR_INVALID, "'key' must be specified in request body as JSON, or 'reset' set to true");
	if (key && !json_is_string(key))
		return verr_set(err, VERR_INVALID, "'key' must be a string");
	bool pending = migration_pending(c, &sc);
	if (!do_reset && state_get(c) == CORE_SEALED) {
		if (pending && !do_migrate)
			return verr_set(err, VERR_INVALID, "a seal migration from %s to %s is pending: submit the keys with migrate=true", sc.type, seal_type(c->o.seal));
		if (!pending && do_migrate)
			return verr_set(err, VERR_INVALID, "'migrate' parameter set true in JSON body when not in seal migration mode");
		if (sc.recovery && threshold == 0)
			return verr_set(err, VERR_INVALID, "this server has no recovery keys: restart it to auto-unseal");
	}

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
	if (!rc)
		rc = open_root_sc(c, &sc, kek, &root, err);
	if (!rc && pending && (rc = migrate(c, &sc, root, kek, err)) != 0) {
		secmem_free(root, KEY_LEN);
		root = NULL;
	}
	secmem_free(kek, KEY_LEN);
	pthread_mutex_unlock(&c->unseal_lock);
	if (rc) {
		if (rc == VERR_INVALID)
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

int unseal_auto(struct core *c, struct verr *err)
{
	if (!seal_recovery_keys(c->o.seal))
		return verr_set(err, VERR_INVALID, "the %s seal needs key shares", seal_type(c->o.seal));
	if (state_get(c) != CORE_SEALED)
		return 0;
	struct sealcfg sc;
	int rc = load_cfg(c, &sc, err);
	if (rc)
		return rc;
	if (!sc.inited)
		return verr_set(err, VERR_UNINIT, "Vault is not initialized");
	if (migration_pending(c, &sc))
		return verr_set(err, VERR_PRECONDITION,
				"a seal migration from %s to %s is pending: unseal with migrate=true and the %s keys",
				sc.type, seal_type(c->o.seal), sc.recovery ? "recovery" : "unseal");
	uint8_t *root = NULL;
	rc = unwrap_root(c, c->o.seal, NULL, &root, err);
	if (rc)
		return rc;
	bool did = false;
	rc = state_unseal(c, root, KEY_LEN, &did, err);
	secmem_free(root, KEY_LEN);
	return rc;
}

/*
 * One key share for an operation in progress (rekey or generate-root):
 * checks the nonce, records the share, and once `threshold` shares are in,
 * combines them and opens the root key (recovery keys: verifies them).
 * Returns <0 on error, 0 when more shares are needed, 1 with *root (secmem,
 * KEY_LEN) when complete. Called with c->unseal_lock held.
 */
static int collect_share(struct core *c, const struct sealcfg *sc, bool started, const char *what,
			 const char *nonce_want, struct unseal_progress *prog, const json_t *data,
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
	if (sc->threshold < 1)
		return verr_set(err, VERR_INVALID, "this server has no recovery keys");
	uint8_t *kb = NULL;
	size_t kl = 0;
	if (decode_key(json_string_value(key), &kb, &kl) || kl < 16 || kl > 64) {
		free(kb);
		return verr_set(err, VERR_INVALID, "'key' must be a valid hex or base64 string");
	}
	add_part(prog, kb, kl);
	secmem_wipe(kb, kl);
	free(kb);
	if (prog->n < sc->threshold)
		return 0;
	uint8_t *kek = NULL;
	int rc = combine(prog, sc->threshold, &kek, err);
	progress_reset(prog);
	if (!rc)
		rc = open_root_sc(c, sc, kek, root, err);
	secmem_free(kek, KEY_LEN);
	return rc ? rc : 1;
}

/* ---- rekey ---- */

#define BACKUP_PATH "core/unseal-keys-backup"
#define RECOVERY_BACKUP_PATH "core/recovery-keys-backup"

/* Forget the attempt: progress, PGP keys, and the new key waiting for
 * verification (wiped). Called with c->unseal_lock held. */
static void rekey_reset(struct core *c)
{
	progress_reset(&c->rekey.prog);
	progress_reset(&c->rekey.vprog);
	secmem_free(c->rekey.pending_kek, KEY_LEN);
	secmem_free(c->rekey.pending_root, KEY_LEN);
	c->rekey.pending_kek = c->rekey.pending_root = NULL;
	json_decref(c->rekey.pgp_keys);
	json_decref(c->rekey.pgp_fprs);
	c->rekey.pgp_keys = c->rekey.pgp_fprs = NULL;
	c->rekey.started = c->rekey.verify_required = c->rekey.backup = false;
	c->rekey.nonce[0] = c->rekey.verify_nonce[0] = '\0';
}

static json_t *rekey_status(struct core *c, int threshold)
{
	json_t *fprs = c->rekey.pgp_fprs ? json_deep_copy(c->rekey.pgp_fprs) : json_null();
	json_t *o = json_pack("{s:s,s:b,s:i,s:i,s:i,s:i,s:o,s:b,s:b}", "nonce", c->rekey.nonce,
			      "started", c->rekey.started, "t",
			      c->rekey.started ? c->rekey.new_threshold : 0, "n",
			      c->rekey.started ? c->rekey.new_shares : 0, "progress", c->rekey.prog.n,
			      "required", threshold, "pgp_fingerprints", fprs, "backup",
			      c->rekey.backup, "verification_required", c->rekey.verify_required);
	if (o)
		json_object_set_new(o, "verification_nonce", json_string(c->rekey.verify_nonce));
	return o;
}

static json_t *verify_status(struct core *c)
{
	bool on = c->rekey.pending_kek != NULL;
	return json_pack("{s:s,s:b,s:i,s:i,s:i}", "nonce", on ? c->rekey.verify_nonce : "",
			 "started", on, "t", on ? c->rekey.new_threshold : 0, "n",
			 on ? c->rekey.new_shares : 0, "progress", c->rekey.vprog.n);
}

/* The PGP-encrypted new shares, kept for sys/rekey/backup: {nonce, keys:
 * {fingerprint: [hex]}, keys_base64: {fingerprint: [base64]}}, inside the
 * barrier, as Vault keeps them. */
static int store_backup(struct core *c, bool recovery, const json_t *keys, const json_t *keys_b64,
			struct verr *err)
{
	json_t *k = json_object(), *kb = json_object();
	size_t i;
	json_t *fp;
	json_array_foreach (c->rekey.pgp_fprs, i, fp) {
		const char *f = json_string_value(fp);
		if (!json_object_get(k, f)) {
			json_object_set_new(k, f, json_array());
			json_object_set_new(kb, f, json_array());
		}
		json_array_append(json_object_get(k, f), json_array_get(keys, i));
		json_array_append(json_object_get(kb, f), json_array_get(keys_b64, i));
	}
	json_t *o = json_pack("{s:s,s:o,s:o}", "nonce", c->rekey.nonce, "keys", k, "keys_base64", kb);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = physical_put(c->bphys, recovery ? RECOVERY_BACKUP_PATH : BACKUP_PATH,
			      (const uint8_t *)s, strlen(s), err);
	free(s);
	return rc;
}

/* The new KEK in effect: the root key wrapped under it (or the recovery
 * key replaced) and the seal configuration rewritten (the commit point). */
static int rekey_commit(struct core *c, const struct sealcfg *sc, bool recovery,
			const uint8_t *root, const uint8_t *newkek, struct verr *err)
{
	int rc = recovery ? store_recovery(c, root, newkek, err) : store_root(c, newkek, root, err);
	if (!rc)
		rc = write_cfg(c, sc->type, recovery, c->rekey.new_shares, c->rekey.new_threshold, err);
	if (!rc)
		log_info("core", "rekey complete: new shares=%d threshold=%d", c->rekey.new_shares,
			 c->rekey.new_threshold);
	return rc;
}

static int rekey_start(struct core *c, const json_t *data, int threshold, json_t **out,
		       struct verr *err)
{
	int shares = 0, thr = 0, rc;
	if (c->rekey.started)
		return verr_set(err, VERR_INVALID, "rekey already in progress");
	if ((rc = validate_shares(data, &shares, &thr, err)) != 0)
		return rc;
	json_t *pgp = NULL, *fprs = NULL;
	if ((rc = read_pgp_keys(data, "pgp_keys", shares, &pgp, &fprs, err)) != 0)
		return rc;
	bool backup = jbool(json_object_get(data, "backup"));
	if (backup && !pgp)
		return verr_set(err, VERR_INVALID, "cannot request a backup of the new keys without providing PGP keys");
	rekey_reset(c);
	c->rekey.new_shares = shares;
	c->rekey.new_threshold = thr;
	c->rekey.pgp_keys = pgp;
	c->rekey.pgp_fprs = fprs;
	c->rekey.backup = backup;
	c->rekey.verify_required = jbool(json_object_get(data, "require_verification"));
	if ((rc = new_nonce(c->rekey.nonce, err)) != 0) {
		rekey_reset(c);
		return rc;
	}
	c->rekey.started = true;
	*out = rekey_status(c, threshold);
	return 0;
}

/* sys/rekey/verify: the new shares, collected like the old ones; when
 * they combine into the pending KEK, it takes effect. */
static int rekey_verify(struct core *c, const struct sealcfg *sc, bool recovery,
			enum logical_op op, const json_t *data, json_t **out, struct verr *err)
{
	if (op == LOP_READ) {
		*out = verify_status(c);
		return 0;
	}
	if (!c->rekey.pending_kek)
		return verr_set(err, VERR_INVALID, "no rekey verification in progress");
	if (op == LOP_DELETE) { /* only this verification starts over */
		progress_reset(&c->rekey.vprog);
		int rc = new_nonce(c->rekey.verify_nonce, err);
		if (!rc)
			*out = verify_status(c);
		return rc;
	}
	json_t *key = json_object_get(data, "key"), *nonce = json_object_get(data, "nonce");
	if (!json_is_string(key))
		return verr_set(err, VERR_INVALID, "'key' must be specified in request body as JSON");
	if (!json_is_string(nonce) || strcmp(json_string_value(nonce), c->rekey.verify_nonce))
		return verr_set(err, VERR_INVALID, "incorrect nonce");
	uint8_t *kb = NULL;
	size_t kl = 0;
	if (decode_key(json_string_value(key), &kb, &kl) || kl < 16 || kl > 64) {
		free(kb);
		return verr_set(err, VERR_INVALID, "'key' must be a valid hex or base64 string");
	}
	int dup = add_part(&c->rekey.vprog, kb, kl);
	secmem_wipe(kb, kl);
	free(kb);
	if (dup)
		return verr_set(err, VERR_INVALID, "given key has already been provided during this verification operation");
	if (c->rekey.vprog.n < c->rekey.new_threshold) {
		*out = verify_status(c);
		return 0;
	}
	uint8_t *kek = NULL;
	int rc = combine(&c->rekey.vprog, c->rekey.new_threshold, &kek, err);
	progress_reset(&c->rekey.vprog);
	if (!rc && !secmem_eq(kek, c->rekey.pending_kek, KEY_LEN))
		rc = verr_set(err, VERR_INVALID, "rekey verification failed; incorrect key shares supplied");
	secmem_free(kek, KEY_LEN);
	if (!rc)
		rc = rekey_commit(c, sc, recovery, c->rekey.pending_root, c->rekey.pending_kek, err);
	if (rc) {
		if (rc == VERR_INVALID)
			(void)new_nonce(c->rekey.verify_nonce, &(struct verr){0});
		return rc;
	}
	*out = json_pack("{s:s,s:b}", "nonce", c->rekey.verify_nonce, "complete", 1);
	rekey_reset(c);
	return 0;
}

int unseal_rekey(struct core *c, enum logical_op op, const char *which, const json_t *data,
		 json_t **out, struct verr *err)
{
	struct sealcfg sc;
	int rc = load_cfg(c, &sc, err);
	if (rc)
		return rc;
	if (!sc.inited)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	/* "recovery-init"/"recovery-update"/...: sys/rekey-recovery-key */
	bool recovery = !strncmp(which, "recovery-", 9);
	if (recovery)
		which += 9;
	if (recovery && !sc.recovery)
		return verr_set(err, VERR_INVALID, "the %s seal has no recovery keys: rekey the unseal keys at sys/rekey", sc.type);
	if (!recovery && sc.recovery)
		return verr_set(err, VERR_INVALID, "the %s seal unseals by itself and has no unseal keys: rekey the recovery keys at sys/rekey-recovery-key", sc.type);
	int threshold = sc.threshold;
	if (!strcmp(which, "backup")) /* no lock: storage only */
		return unseal_rekey_backup(c, recovery, op, out, err);
	pthread_mutex_lock(&c->unseal_lock);
	if (!strcmp(which, "init")) {
		if (op == LOP_READ)
			*out = rekey_status(c, threshold);
		else if (op == LOP_DELETE)
			rekey_reset(c);
		else
			rc = rekey_start(c, data, threshold, out, err);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	if (!strcmp(which, "verify")) {
		rc = rekey_verify(c, &sc, recovery, op, data, out, err);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	/* update */
	if (c->rekey.pending_kek) {
		pthread_mutex_unlock(&c->unseal_lock);
		return verr_set(err, VERR_INVALID, "rekey verification in progress: submit the new keys to sys/rekey/verify");
	}
	uint8_t *root = NULL, *newkek = NULL;
	rc = collect_share(c, &sc, c->rekey.started, "rekey", c->rekey.nonce, &c->rekey.prog, data,
			   &root, err);
	if (rc <= 0) {
		if (rc == 0)
			*out = rekey_status(c, threshold);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	rc = 0;
	json_t *keys = json_array(), *keys_b64 = json_array();
	if (!rc)
		rc = barrier_generate_key(&newkek, err);
	if (!rc)
		rc = make_shares(newkek, c->rekey.new_shares, c->rekey.new_threshold, c->rekey.pgp_keys,
				 keys, keys_b64, err);
	if (!rc && c->rekey.backup)
		rc = store_backup(c, recovery, keys, keys_b64, err);
	if (!rc && !c->rekey.verify_required)
		rc = rekey_commit(c, &sc, recovery, root, newkek, err);
	if (!rc && c->rekey.verify_required)
		rc = new_nonce(c->rekey.verify_nonce, err);
	if (rc) {
		secmem_free(root, KEY_LEN);
		secmem_free(newkek, KEY_LEN);
		json_decref(keys);
		json_decref(keys_b64);
		pthread_mutex_unlock(&c->unseal_lock);
		return rc;
	}
	json_t *fprs = c->rekey.pgp_fprs ? json_deep_copy(c->rekey.pgp_fprs) : json_null();
	*out = json_pack("{s:s,s:b,s:o,s:o,s:o,s:b,s:b}", "nonce", c->rekey.nonce, "complete", 1,
			 "keys", keys, "keys_base64", keys_b64, "pgp_fingerprints", fprs, "backup",
			 c->rekey.backup, "verification_required", c->rekey.verify_required);
	if (c->rekey.verify_required) {
		/* not in effect until sys/rekey/verify has the new shares */
		json_object_set_new(*out, "verification_nonce", json_string(c->rekey.verify_nonce));
		c->rekey.pending_kek = newkek;   /* transferred */
		c->rekey.pending_root = root;    /* transferred */
	} else {
		secmem_free(root, KEY_LEN);
		secmem_free(newkek, KEY_LEN);
		rekey_reset(c);
	}
	pthread_mutex_unlock(&c->unseal_lock);
	return 0;
}

int unseal_rekey_backup(struct core *c, bool recovery, enum logical_op op, json_t **out,
			struct verr *err)
{
	const char *path = recovery ? RECOVERY_BACKUP_PATH : BACKUP_PATH;
	if (op == LOP_DELETE)
		return physical_delete(c->bphys, path, err);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = physical_get(c->bphys, path, &buf, &len, err);
	if (rc)
		return rc;
	if (!buf)
		return verr_set(err, VERR_NOT_FOUND, "no backed-up keys found");
	*out = json_loadb((const char *)buf, len, 0, NULL);
	free(buf);
	return *out ? 0 : verr_set(err, VERR_INTERNAL, "the key backup is corrupt");
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
	struct sealcfg sc;
	int rc = load_cfg(c, &sc, err);
	if (rc)
		return rc;
	if (!sc.inited)
		return verr_set(err, VERR_INVALID, "Vault is not initialized");
	int threshold = sc.threshold;
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
	rc = collect_share(c, &sc, c->genroot.started, "root generation", c->genroot.nonce,
			   &c->genroot.prog, data, &root, err);
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
			log_info("core", "root token generated with a threshold of %s keys",
				 sc.recovery ? "recovery" : "unseal");
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
	} else if (strip_slash_eq(p, "sys/seal-backend-status")) {
		if (req->op != LOP_READ)
			goto unsupported;
		out = seal_multi_status(c->o.seal);
		*rc = out ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
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
	rekey_reset(c);
	progress_reset(&c->genroot.prog);
	secmem_wipe(c->genroot.otp, sizeof(c->genroot.otp));
	pthread_mutex_unlock(&c->unseal_lock);
}
