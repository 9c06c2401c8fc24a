/*
 * transit.c - the transit seal: the root key under a transit key of another
 * Coffer (or Vault) server.
 *
 * Same envelope as awskms.c: a fresh data key encrypts the root key locally
 * (AES-256-GCM bound to the storage path) and the remote transit key
 * encrypts only the data key (POST <mount>/encrypt/<key>, /decrypt/<key>).
 * Stored at core/transit-root as JSON:
 *
 *   {"type":"transit","key_name":K,"mount_path":M,"wrapped_key":"vault:v1:...","ciphertext":B64}
 *
 * Settings, Vault's names: address, token, key_name, mount_path
 * ("transit/"), namespace, disable_renewal, tls_ca_cert, tls_client_cert,
 * tls_client_key, tls_server_name, tls_skip_verify; environment:
 * VAULT_ADDR, VAULT_TOKEN, VAULT_TRANSIT_SEAL_KEY_NAME,
 * VAULT_TRANSIT_SEAL_MOUNT_PATH, VAULT_NAMESPACE, VAULT_CACERT,
 * VAULT_SKIP_VERIFY (the stanza wins).
 *
 * DESIGN
 *  - Token renewal (Vault's pain: an expired seal token breaks the next
 *    unseal, rekey and snapshot): unless disable_renewal, a thread looks the
 *    token up and renews it (auth/token/renew-self) at half its TTL; a
 *    failure is logged and retried in 10 s. A non-expiring token is only
 *    looked up again after an hour.
 *  - SIGHUP re-reads the token (stanza or VAULT_TOKEN) and wakes the thread.
 *  - A revoked or under-privileged token is a 403: VERR_DENIED with a
 *    message that says so; the core stays sealed and keeps retrying (Vault
 *    crashes there). Unreachable or sealed remote: VERR_UNAVAILABLE;
 *    "invalid ciphertext" / altered blob: VERR_INVALID.
 * Thread-safety: token and settings guarded by t->mu; the token lives in
 * secmem and is wiped when replaced.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seal/seal.h"
#include "seal/seal_http.h"
#include "util/aead.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"

#define TRANSIT_ROOT_PATH "core/transit-root"
#define RENEW_RETRY_S 10
#define RENEW_IDLE_S 3600

struct transit {
	struct seal base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *address, *key_name, *mount, *ns;
	char *token; /* secmem */
	size_t token_cap;
	struct seal_http_opts tls;
	char *ca, *cert, *key;
	bool renew, stop;
	bool have_thread;
	pthread_t th;
	uint64_t token_gen;
};

static const char *conf_str(const json_t *conf, const char *k)
{
	const json_t *v = json_object_get(conf, k);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

static bool conf_bool(const json_t *conf, const char *k)
{
	const json_t *v = json_object_get(conf, k);
	if (json_is_true(v))
		return true;
	const char *s = json_string_value(v);
	return s && (!strcmp(s, "true") || !strcmp(s, "1"));
}

static const char *env(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int set_token(struct transit *t, const json_t *conf, struct verr *err)
{
	const char *tok = conf_str(conf, "token") ? conf_str(conf, "token") : env("VAULT_TOKEN");
	if (!tok)
		return verr_set(err, VERR_INVALID, "transit seal: token is required (or VAULT_TOKEN)");
	size_t cap = strlen(tok) + 1;
	char *p = secmem_alloc(cap);
	if (!p)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	memcpy(p, tok, cap);
	pthread_mutex_lock(&t->mu);
	secmem_free(t->token, t->token_cap);
	t->token = p;
	t->token_cap = cap;
	t->token_gen++;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* One request to the remote server; *resp: the whole JSON answer of a 200
 * (its "data", or "auth" for the token calls). */
static int call(struct transit *t, const char *method, const char *path, json_t *req,
		json_t **resp, struct verr *err)
{
	*resp = NULL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (req && !body)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	struct buf url, th, nh;
	buf_init(&url, 256);
	buf_init_secret(&th, 128);
	buf_init(&nh, 64);
	pthread_mutex_lock(&t->mu);
	buf_printf(&url, "%s/v1/%s", t->address, path);
	buf_printf(&th, "X-Vault-Token: %s", t->token);
	if (t->ns)
		buf_printf(&nh, "X-Vault-Namespace: %s", t->ns);
	pthread_mutex_unlock(&t->mu);
	const char *hdrs[] = {"Content-Type: application/json", th.p, nh.len ? nh.p : NULL, NULL};
	long status = 0;
	char *ans = NULL;
	struct verr e2 = {0};
	int rc = url.failed || th.failed ? verr_set(&e2, VERR_INTERNAL, "out of memory")
					  : seal_http(method, url.p, hdrs, body, body ? strlen(body) : 0,
						      &t->tls, &status, &ans, &e2);
	if (body) {
		secmem_wipe(body, strlen(body));
		free(body);
	}
	if (rc) {
		rc = verr_set(err, rc, "transit seal: %s", e2.msg);
		goto out;
	}
	json_t *j = json_loads(ans, 0, NULL);
	if (ans) {
		secmem_wipe(ans, strlen(ans));
		free(ans);
	}
	if (status == 200 && json_is_object(j)) {
		*resp = j;
		goto out;
	}
	char first[240] = "";
	json_t *errs = json_object_get(j, "errors");
	if (json_is_string(json_array_get(errs, 0)))
		snprintf(first, sizeof(first), "%s", json_string_value(json_array_get(errs, 0)));
	json_decref(j);
	if (status == 403)
		rc = verr_set(err, VERR_DENIED,
			      "transit seal: %s answered 403 for %s (the seal token was revoked, expired or "
			      "lacks this permission)%s%s",
			      t->address, path, *first ? ": " : "", first);
	else if (status == 503 || status >= 500 || status == 429)
		rc = verr_set(err, VERR_UNAVAILABLE, "transit seal: %s answered %ld for %s%s%s", t->address,
			      status, path, *first ? ": " : "", first);
	else if (status == 400)
		rc = verr_set(err, VERR_INVALID, "invalid key: transit seal: %s failed%s%s", path,
			      *first ? ": " : "", first);
	else
		rc = verr_set(err, VERR_INVALID, "transit seal: %s answered %ld for %s%s%s", t->address,
			      status, path, *first ? ": " : "", first);
out:
	buf_free(&url);
	buf_free(&th);
	buf_free(&nh);
	return rc;
}

static int op_path(struct transit *t, char *out, size_t n, const char *op)
{
	int w = snprintf(out, n, "%s%s/%s", t->mount, op, t->key_name);
	return w > 0 && (size_t)w < n ? 0 : -1;
}

static int transit_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
			size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	struct transit *t = (struct transit *)s;
	(void)kek;
	(void)kek_len;
	uint8_t *dek = secmem_alloc(AEAD_KEY_LEN), *ct = NULL;
	size_t ctl = 0;
	char *dek64 = NULL, *ct64 = NULL, path[512];
	json_t *resp = NULL;
	int rc = dek ? rand_bytes(dek, AEAD_KEY_LEN, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = aead_blob_seal(&ct, &ctl, dek, TRANSIT_ROOT_PATH, root, root_len, err);
	if (!rc && (!(dek64 = b64_encode(dek, AEAD_KEY_LEN, false)) || !(ct64 = b64_encode(ct, ctl, false))))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc && op_path(t, path, sizeof(path), "encrypt"))
		rc = verr_set(err, VERR_INVALID, "transit seal: key_name or mount_path is too long");
	if (!rc) {
		json_t *req = json_pack("{s:s}", "plaintext", dek64);
		rc = call(t, "POST", path, req, &resp, err);
		secmem_wipe((void *)json_string_value(json_object_get(req, "plaintext")), strlen(dek64));
		json_decref(req);
	}
	const char *wrapped = json_string_value(json_object_get(json_object_get(resp, "data"), "ciphertext"));
	if (!rc && !wrapped)
		rc = verr_set(err, VERR_UNAVAILABLE, "transit seal: the encrypt answer has no ciphertext");
	if (!rc) {
		json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "transit", "key_name", t->key_name,
				      "mount_path", t->mount, "wrapped_key", wrapped, "ciphertext", ct64);
		char *txt = b ? json_dumps(b, JSON_COMPACT) : NULL;
		json_decref(b);
		if (!txt) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		} else {
			*out = (uint8_t *)txt;
			*out_len = strlen(txt);
		}
	}
	if (dek64) {
		secmem_wipe(dek64, strlen(dek64));
		free(dek64);
	}
	secmem_free(dek, AEAD_KEY_LEN);
	free(ct);
	free(ct64);
	json_decref(resp);
	return rc;
}

static int transit_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
			  size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err)
{
	struct transit *t = (struct transit *)s;
	(void)kek;
	(void)kek_len;
	json_t *b = json_loadb((const char *)blob, blob_len, 0, NULL);
	const char *wrapped = json_string_value(json_object_get(b, "wrapped_key"));
	const char *ct64 = json_string_value(json_object_get(b, "ciphertext"));
	const char *type = json_string_value(json_object_get(b, "type"));
	if (!wrapped || !ct64 || !type || strcmp(type, "transit")) {
		json_decref(b);
		return verr_set(err, VERR_INVALID, "invalid key: the stored root key is not a transit envelope");
	}
	char path[512];
	json_t *resp = NULL;
	int rc = op_path(t, path, sizeof(path), "decrypt")
			 ? verr_set(err, VERR_INVALID, "transit seal: key_name or mount_path is too long")
			 : 0;
	json_t *req = rc ? NULL : json_pack("{s:s}", "ciphertext", wrapped);
	if (!rc)
		rc = call(t, "POST", path, req, &resp, err);
	json_decref(req);
	const char *pt = json_string_value(json_object_get(json_object_get(resp, "data"), "plaintext"));
	uint8_t *dek = NULL, *ct = NULL;
	size_t dekl = 0, ctl = 0;
	if (!rc && !pt)
		rc = verr_set(err, VERR_UNAVAILABLE, "transit seal: the decrypt answer has no plaintext");
	if (!rc && (b64_decode(&dek, &dekl, pt, true, NULL) || dekl != AEAD_KEY_LEN))
		rc = verr_set(err, VERR_INVALID, "invalid key: transit returned a malformed data key");
	if (!rc && b64_decode(&ct, &ctl, ct64, false, NULL))
		rc = verr_set(err, VERR_INVALID, "invalid key: the stored root key is not valid base64");
	if (!rc)
		rc = aead_blob_open(root, root_len, dek, TRANSIT_ROOT_PATH, ct, ctl, err);
	if (pt)
		secmem_wipe((void *)pt, strlen(pt));
	if (dek)
		b64_free(dek, dekl, true);
	if (ct)
		b64_free(ct, ctl, false);
	json_decref(resp);
	json_decref(b);
	return rc;
}

/* false when stopping */
static bool wait_s(struct transit *t, int secs, uint64_t gen)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&t->mu);
	while (!t->stop && t->token_gen == gen && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0)
		;
	bool go = !t->stop;
	pthread_mutex_unlock(&t->mu);
	return go;
}

static void *renew_main(void *arg)
{
	struct transit *t = arg;
	bool need_lookup = true;
	int wait = 0;
	uint64_t gen = 0;
	for (;;) {
		if (!wait_s(t, wait, gen))
			break;
		pthread_mutex_lock(&t->mu);
		if (t->token_gen != gen)
			need_lookup = true; /* a new token (SIGHUP) */
		gen = t->token_gen;
		pthread_mutex_unlock(&t->mu);
		json_t *resp = NULL;
		struct verr e = {0};
		int rc;
		if (need_lookup) {
			rc = call(t, "GET", "auth/token/lookup-self", NULL, &resp, &e);
			const json_t *d = json_object_get(resp, "data");
			json_int_t ttl = json_integer_value(json_object_get(d, "ttl"));
			if (rc)
				wait = RENEW_RETRY_S;
			else if (ttl <= 0 || !json_is_true(json_object_get(d, "renewable")))
				wait = RENEW_IDLE_S; /* non-expiring or not renewable */
			else {
				wait = ttl > 2 ? (int)(ttl / 2) : 1;
				need_lookup = false;
			}
		} else {
			json_t *empty = json_object();
			rc = call(t, "POST", "auth/token/renew-self", empty, &resp, &e);
			json_decref(empty);
			json_int_t nttl = json_integer_value(
				json_object_get(json_object_get(resp, "auth"), "lease_duration"));
			if (rc) {
				wait = RENEW_RETRY_S;
				need_lookup = true;
			} else {
				log_debug("seal", "transit seal: token renewed (ttl %lld s)", (long long)nttl);
				wait = nttl > 2 ? (int)(nttl / 2) : 1;
			}
		}
		if (rc)
			log_warn("seal", "transit seal: token %s failed (retrying in %d s): %s",
				 need_lookup ? "lookup" : "renewal", RENEW_RETRY_S, e.msg);
		json_decref(resp);
	}
	return NULL;
}

static void transit_free(struct transit *t)
{
	if (!t)
		return;
	if (t->have_thread) {
		pthread_mutex_lock(&t->mu);
		t->stop = true;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->th, NULL);
	}
	secmem_free(t->token, t->token_cap);
	free(t->address);
	free(t->key_name);
	free(t->mount);
	free(t->ns);
	free(t->ca);
	free(t->cert);
	free(t->key);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void transit_close(struct seal *s)
{
	transit_free((struct transit *)s);
}

static int transit_reload(struct seal *s, const json_t *conf, struct verr *err)
{
	int rc = set_token((struct transit *)s, conf, err);
	if (!rc)
		log_info("seal", "transit seal: token re-read");
	return rc;
}

static const struct seal_ops transit_ops = {
	.version = SEAL_OPS_VERSION,
	.type = "transit",
	.recovery_keys = true,
	.needs_kek = false,
	.root_path = TRANSIT_ROOT_PATH,
	.wrap = transit_wrap,
	.unwrap = transit_unwrap,
	.close = transit_close,
	.reload = transit_reload,
};

int seal_transit_new(struct seal **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	struct transit *t = calloc(1, sizeof(*t));
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	t->base.ops = &transit_ops;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	int rc = 0;
	const char *addr = conf_str(conf, "address") ? conf_str(conf, "address") : env("VAULT_ADDR");
	const char *key = conf_str(conf, "key_name") ? conf_str(conf, "key_name")
						     : env("VAULT_TRANSIT_SEAL_KEY_NAME");
	const char *mount = conf_str(conf, "mount_path") ? conf_str(conf, "mount_path")
							 : env("VAULT_TRANSIT_SEAL_MOUNT_PATH");
	const char *ns = conf_str(conf, "namespace") ? conf_str(conf, "namespace") : env("VAULT_NAMESPACE");
	if (!addr || (strncmp(addr, "https://", 8) && strncmp(addr, "http://", 7))) {
		rc = verr_set(err, VERR_INVALID, "transit seal: address must be an http(s):// URL (or VAULT_ADDR)");
		goto out;
	}
	if (!key || strchr(key, '/')) {
		rc = verr_set(err, VERR_INVALID, "transit seal: key_name is required (a transit key name)");
		goto out;
	}
	if (!mount)
		mount = "transit/";
	while (*mount == '/')
		mount++;
	size_t al = strlen(addr);
	while (al && addr[al - 1] == '/')
		al--;
	t->address = strndup(addr, al);
	t->key_name = strdup(key);
	size_t ml = strlen(mount);
	t->mount = malloc(ml + 2);
	if (t->mount)
		snprintf(t->mount, ml + 2, "%s%s", mount, ml && mount[ml - 1] == '/' ? "" : "/");
	t->ns = dup_or_null(ns);
	t->ca = dup_or_null(conf_str(conf, "tls_ca_cert") ? conf_str(conf, "tls_ca_cert") : env("VAULT_CACERT"));
	t->cert = dup_or_null(conf_str(conf, "tls_client_cert"));
	t->key = dup_or_null(conf_str(conf, "tls_client_key"));
	if (conf_str(conf, "tls_server_name")) {
		rc = verr_set(err, VERR_INVALID, "transit seal: tls_server_name is not supported; use an address whose host name the certificate names");
		goto out;
	}
	t->tls.ca_file = t->ca;
	t->tls.client_cert = t->cert;
	t->tls.client_key = t->key;
	t->tls.insecure = conf_bool(conf, "tls_skip_verify") ||
			  (env("VAULT_SKIP_VERIFY") && strcmp(env("VAULT_SKIP_VERIFY"), "false") &&
			   strcmp(env("VAULT_SKIP_VERIFY"), "0"));
	if (!t->address || !t->key_name || !t->mount) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = set_token(t, conf, err);
	if (rc)
		goto out;
	t->renew = !conf_bool(conf, "disable_renewal");
	if (t->renew) {
		if (pthread_create(&t->th, NULL, renew_main, t)) {
			rc = verr_set(err, VERR_INTERNAL, "transit seal: cannot start the token renewal thread");
			goto out;
		}
		t->have_thread = true;
	}
out:
	if (rc) {
		transit_free(t);
		return rc;
	}
	*out = &t->base;
	return 0;
}
