/*
 * awskms.c - the awskms seal: the root key under an AWS KMS key.
 *
 * Envelope, as Vault's awskms seal does it: a fresh 32-byte data key
 * encrypts the root key locally (AES-256-GCM, util/aead.h, bound to the
 * storage path); KMS encrypts only the data key (TrentService.Encrypt with
 * an encryption context that KMS binds into its own authentication, so a
 * data key wrapped for another purpose does not decrypt here). Stored at
 * core/awskms-root as JSON:
 *
 *   {"type":"awskms","key_id":ARN,"wrapped_key":B64,"ciphertext":B64}
 *
 * KMS speaks JSON 1.1 over HTTPS, every request signed with SigV4 by
 * util/sigv4.c (never libcurl's signer, which mis-signs non-default ports).
 * Settings, Vault's names: region, kms_key_id, access_key, secret_key,
 * session_token, endpoint; environment: VAULT_AWSKMS_SEAL_KEY_ID (wins over
 * kms_key_id, as in Vault), AWS_REGION / AWS_DEFAULT_REGION,
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
 * AWS_KMS_ENDPOINT, AWS_CA_BUNDLE, then the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE
 * or "default").
 *
 * Errors: KMS unreachable, throttled (after two retries) or failing with a
 * 5xx: VERR_UNAVAILABLE (the core stays sealed and retries); a wrong key,
 * an altered blob, InvalidCiphertextException: VERR_INVALID; access
 * denied, key not found or disabled: VERR_DENIED. Messages carry KMS's
 * error type and message, never key material.
 * Thread-safety: the credentials are guarded by s->mu (SIGHUP replaces
 * them); each call signs its own request.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "seal/seal.h"
#include "seal/seal_http.h"
#include "util/aead.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/secmem.h"
#include "util/sigv4.h"

#define AWSKMS_ROOT_PATH "core/awskms-root"
#define KMS_CONTEXT_KEY "coffer"
#define KMS_CONTEXT_VALUE "root-key"
#define KMS_ATTEMPTS 3

struct awskms {
	struct seal base;
	pthread_mutex_t mu;
	char *region, *key_id, *endpoint, *host, *ca_file;
	char *access_key;
	char *secret_key, *session_token; /* secmem, NUL-terminated */
	size_t secret_cap, token_cap;
};

static const char *conf_str(const json_t *conf, const char *k)
{
	const json_t *v = json_object_get(conf, k);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

static const char *env(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? v : NULL;
}

static char *secstr(const char *s, size_t *cap)
{
	if (!s) {
		*cap = 0;
		return NULL;
	}
	*cap = strlen(s) + 1;
	char *p = secmem_alloc(*cap);
	if (p)
		memcpy(p, s, *cap);
	return p;
}

/* The shared credentials file: profile's aws_access_key_id,
 * aws_secret_access_key, aws_session_token. 1 when found. */
static int shared_credentials(struct awskms *k)
{
	char path[1024];
	const char *f = env("AWS_SHARED_CREDENTIALS_FILE");
	if (!f) {
		const char *home = env("HOME");
		if (!home)
			return 0;
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		f = path;
	}
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	FILE *fp = fopen(f, "re");
	if (!fp)
		return 0;
	char line[1024];
	bool in = false;
	char *ak = NULL, *sk = NULL, *tok = NULL;
	size_t skc = 0, tokc = 0;
	while (fgets(line, sizeof(line), fp)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\r\n")] = '\0';
		if (*p == '[') {
			char *e = strchr(p, ']');
			if (e) {
				*e = '\0';
				char *name = p + 1;
				while (*name == ' ')
					name++;
				in = !strcmp(name, profile);
			}
			continue;
		}
		char *eq = strchr(p, '=');
		if (!in || !eq || *p == '#' || *p == ';')
			continue;
		char *ke = eq;
		while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		*ke = '\0';
		char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vl = strlen(v);
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			v[--vl] = '\0';
		if (!strcmp(p, "aws_access_key_id")) {
			free(ak);
			ak = strdup(v);
		} else if (!strcmp(p, "aws_secret_access_key")) {
			secmem_free(sk, skc);
			sk = secstr(v, &skc);
		} else if (!strcmp(p, "aws_session_token")) {
			secmem_free(tok, tokc);
			tok = secstr(v, &tokc);
		}
	}
	secmem_wipe(line, sizeof(line));
	fclose(fp);
	if (!ak || !sk) {
		free(ak);
		secmem_free(sk, skc);
		secmem_free(tok, tokc);
		return 0;
	}
	k->access_key = ak;
	k->secret_key = sk;
	k->secret_cap = skc;
	k->session_token = tok;
	k->token_cap = tokc;
	return 1;
}

static void creds_free(struct awskms *k)
{
	free(k->access_key);
	secmem_free(k->secret_key, k->secret_cap);
	secmem_free(k->session_token, k->token_cap);
	k->access_key = k->secret_key = k->session_token = NULL;
	k->secret_cap = k->token_cap = 0;
}

/* config, then environment, then the shared credentials file */
static int load_credentials(struct awskms *k, const json_t *conf, struct verr *err)
{
	const char *ak = conf_str(conf, "access_key"), *sk = conf_str(conf, "secret_key");
	const char *tok = conf_str(conf, "session_token");
	if (!ak || !sk) {
		ak = env("AWS_ACCESS_KEY_ID");
		sk = env("AWS_SECRET_ACCESS_KEY");
		tok = env("AWS_SESSION_TOKEN");
	}
	if (ak && sk) {
		k->access_key = strdup(ak);
		k->secret_key = secstr(sk, &k->secret_cap);
		k->session_token = secstr(tok, &k->token_cap);
		if (!k->access_key || !k->secret_key || (tok && !k->session_token)) {
			creds_free(k);
			return verr_set(err, VERR_INTERNAL, "out of memory");
		}
		return 0;
	}
	if (shared_credentials(k))
		return 0;
	return verr_set(err, VERR_INVALID,
			"awskms seal: no AWS credentials (set access_key and secret_key, "
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a shared credentials file)");
}

/* "https://host:port/..." -> "host:port" without a default port */
static char *authority(const char *url)
{
	const char *p = strstr(url, "://");
	bool https = !strncmp(url, "https://", 8);
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	char *h = strndup(p, n);
	if (!h)
		return NULL;
	char *colon = strrchr(h, ':');
	if (colon && !strchr(colon, ']') &&
	    ((https && !strcmp(colon, ":443")) || (!https && !strcmp(colon, ":80"))))
		*colon = '\0';
	return h;
}

/*
 * One KMS call: sign, POST, retry throttling and 5xx. *resp is the parsed
 * answer of a 200.
 */
static int kms_call(struct awskms *k, const char *target, json_t *req, json_t **resp,
		    struct verr *err)
{
	*resp = NULL;
	char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t blen = strlen(body);
	char tgt[96];
	snprintf(tgt, sizeof(tgt), "TrentService.%s", target);
	int rc = 0;
	for (int attempt = 0; attempt < KMS_ATTEMPTS; attempt++) {
		if (attempt)
			usleep((useconds_t)(50000 << (attempt - 1)));
		struct sigv4_header sh[2] = {{"Content-Type", "application/x-amz-json-1.1"},
					     {"X-Amz-Target", tgt}};
		char *auth = NULL, date[SIGV4_DATE_LEN];
		pthread_mutex_lock(&k->mu);
		struct sigv4_request sr = {
			.method = "POST",
			.host = k->host,
			.path = "/",
			.headers = sh,
			.nheaders = 2,
			.body = (const uint8_t *)body,
			.body_len = blen,
			.region = k->region,
			.service = "kms",
			.access_key = k->access_key,
			.secret_key = k->secret_key,
			.session_token = k->session_token,
			.now = time(NULL),
		};
		rc = sigv4_sign(&auth, date, &sr, err);
		struct buf tokh;
		buf_init_secret(&tokh, 0);
		if (k->session_token)
			buf_printf(&tokh, "X-Amz-Security-Token: %s", k->session_token);
		pthread_mutex_unlock(&k->mu);
		if (rc) {
			buf_free(&tokh);
			break;
		}
		char hhost[300], hdate[64], htgt[128];
		struct buf hauth;
		buf_init(&hauth, 300);
		buf_printf(&hauth, "Authorization: %s", auth);
		free(auth);
		snprintf(hhost, sizeof(hhost), "Host: %s", k->host);
		snprintf(hdate, sizeof(hdate), "X-Amz-Date: %s", date);
		snprintf(htgt, sizeof(htgt), "X-Amz-Target: %s", tgt);
		const char *hdrs[] = {"Content-Type: application/x-amz-json-1.1", hhost, hdate, htgt,
				      hauth.p, tokh.len ? tokh.p : NULL, NULL};
		struct seal_http_opts o = {.ca_file = k->ca_file};
		long status = 0;
		char *ans = NULL;
		struct verr e2 = {0};
		rc = seal_http("POST", k->endpoint, hdrs, body, blen, &o, &status, &ans, &e2);
		buf_free(&hauth);
		buf_free(&tokh);
		if (rc) {
			verr_set(err, rc, "awskms seal: %s", e2.msg);
			continue; /* unreachable: retry */
		}
		json_t *j = json_loads(ans, 0, NULL);
		free(ans);
		if (status == 200 && json_is_object(j)) {
			*resp = j;
			rc = 0;
			break;
		}
		const char *type = json_string_value(json_object_get(j, "__type"));
		const char *msg = json_string_value(json_object_get(j, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(j, "Message"));
		if (type && strchr(type, '#'))
			type = strchr(type, '#') + 1;
		char what[400];
		snprintf(what, sizeof(what), "awskms seal: KMS %s failed (HTTP %ld): %.80s%s%.200s", target,
			 status, type ? type : "error", msg ? ": " : "", msg ? msg : "");
		bool retry = status >= 500 || (type && (!strcmp(type, "ThrottlingException") ||
							 !strcmp(type, "LimitExceededException")));
		if (retry)
			rc = verr_set(err, VERR_UNAVAILABLE, "%s", what);
		else if (type && !strcmp(type, "InvalidCiphertextException"))
			rc = verr_set(err, VERR_INVALID, "invalid key: %s", what);
		else if (status == 400 && type &&
			 (!strcmp(type, "ValidationException") || !strcmp(type, "SerializationException")))
			rc = verr_set(err, VERR_INVALID, "%s", what);
		else
			rc = verr_set(err, VERR_DENIED, "%s", what);
		json_decref(j);
		if (!retry)
			break;
	}
	free(body);
	return rc;
}

static json_t *context(void)
{
	return json_pack("{s:s}", KMS_CONTEXT_KEY, KMS_CONTEXT_VALUE);
}

static int awskms_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
		       size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	struct awskms *k = (struct awskms *)s;
	(void)kek;
	(void)kek_len;
	uint8_t *dek = secmem_alloc(AEAD_KEY_LEN), *ct = NULL;
	size_t ctl = 0;
	char *dek64 = NULL;
	json_t *resp = NULL, *blob = NULL;
	int rc = dek ? rand_bytes(dek, AEAD_KEY_LEN, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = aead_blob_seal(&ct, &ctl, dek, AWSKMS_ROOT_PATH, root, root_len, err);
	if (!rc && !(dek64 = b64_encode(dek, AEAD_KEY_LEN, false)))
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc) {
		json_t *req = json_pack("{s:s,s:s,s:o}", "KeyId", k->key_id, "Plaintext", dek64,
					"EncryptionContext", context());
		rc = req ? kms_call(k, "Encrypt", req, &resp, err) : verr_set(err, VERR_INTERNAL, "out of memory");
		/* the request held the data key in the clear */
		if (req)
			secmem_wipe((void *)json_string_value(json_object_get(req, "Plaintext")),
				    strlen(dek64));
		json_decref(req);
	}
	const char *wrapped = json_string_value(json_object_get(resp, "CiphertextBlob"));
	const char *arn = json_string_value(json_object_get(resp, "KeyId"));
	if (!rc && !wrapped)
		rc = verr_set(err, VERR_UNAVAILABLE, "awskms seal: KMS Encrypt answered without a CiphertextBlob");
	char *ct64 = rc ? NULL : b64_encode(ct, ctl, false);
	if (!rc && ct64)
		blob = json_pack("{s:s,s:s,s:s,s:s}", "type", "awskms", "key_id", arn ? arn : k->key_id,
				 "wrapped_key", wrapped, "ciphertext", ct64);
	if (!rc) {
		char *txt = blob ? json_dumps(blob, JSON_COMPACT) : NULL;
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
	json_decref(blob);
	return rc;
}

static int awskms_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
			 size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err)
{
	struct awskms *k = (struct awskms *)s;
	(void)kek;
	(void)kek_len;
	json_t *b = json_loadb((const char *)blob, blob_len, 0, NULL);
	const char *wrapped = json_string_value(json_object_get(b, "wrapped_key"));
	const char *ct64 = json_string_value(json_object_get(b, "ciphertext"));
	if (!json_is_object(b) || !wrapped || !ct64 ||
	    strcmp(json_string_value(json_object_get(b, "type")) ? json_string_value(json_object_get(b, "type")) : "", "awskms")) {
		json_decref(b);
		return verr_set(err, VERR_INVALID, "invalid key: the stored root key is not an awskms envelope");
	}
	json_t *req = json_pack("{s:s,s:s,s:o}", "CiphertextBlob", wrapped, "KeyId", k->key_id,
				"EncryptionContext", context());
	json_t *resp = NULL;
	int rc = req ? kms_call(k, "Decrypt", req, &resp, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	json_decref(req);
	uint8_t *dek = NULL, *ct = NULL;
	size_t dekl = 0, ctl = 0;
	const char *pt = json_string_value(json_object_get(resp, "Plaintext"));
	if (!rc && !pt)
		rc = verr_set(err, VERR_UNAVAILABLE, "awskms seal: KMS Decrypt answered without a Plaintext");
	if (!rc && b64_decode(&dek, &dekl, pt, true, NULL))
		rc = verr_set(err, VERR_INVALID, "invalid key: KMS returned a malformed data key");
	if (!rc && dekl != AEAD_KEY_LEN)
		rc = verr_set(err, VERR_INVALID, "invalid key: KMS returned a data key of the wrong length");
	if (!rc && b64_decode(&ct, &ctl, ct64, false, NULL))
		rc = verr_set(err, VERR_INVALID, "invalid key: the stored root key is not valid base64");
	if (!rc)
		rc = aead_blob_open(root, root_len, dek, AWSKMS_ROOT_PATH, ct, ctl, err);
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

static void awskms_free(struct awskms *k)
{
	if (!k)
		return;
	creds_free(k);
	free(k->region);
	free(k->key_id);
	free(k->endpoint);
	free(k->host);
	free(k->ca_file);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static void awskms_close(struct seal *s)
{
	awskms_free((struct awskms *)s);
}

/* SIGHUP: credentials may have been rotated (file or config) */
static int awskms_reload(struct seal *s, const json_t *conf, struct verr *err)
{
	struct awskms *k = (struct awskms *)s;
	struct awskms tmp = {0};
	int rc = load_credentials(&tmp, conf, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&k->mu);
	creds_free(k);
	k->access_key = tmp.access_key;
	k->secret_key = tmp.secret_key;
	k->secret_cap = tmp.secret_cap;
	k->session_token = tmp.session_token;
	k->token_cap = tmp.token_cap;
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static const struct seal_ops awskms_ops = {
	.version = SEAL_OPS_VERSION,
	.type = "awskms",
	.recovery_keys = true,
	.needs_kek = false,
	.root_path = AWSKMS_ROOT_PATH,
	.wrap = awskms_wrap,
	.unwrap = awskms_unwrap,
	.close = awskms_close,
	.reload = awskms_reload,
};

int seal_awskms_new(struct seal **out, const json_t *conf, struct verr *err)
{
	*out = NULL;
	struct awskms *k = calloc(1, sizeof(*k));
	if (!k)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	k->base.ops = &awskms_ops;
	pthread_mutex_init(&k->mu, NULL);
	const char *key = env("VAULT_AWSKMS_SEAL_KEY_ID") ? env("VAULT_AWSKMS_SEAL_KEY_ID")
							 : conf_str(conf, "kms_key_id");
	const char *region = conf_str(conf, "region");
	if (!region)
		region = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	if (!region)
		region = "us-east-1";
	const char *ep = conf_str(conf, "endpoint") ? conf_str(conf, "endpoint") : env("AWS_KMS_ENDPOINT");
	int rc = 0;
	if (!key) {
		rc = verr_set(err, VERR_INVALID, "awskms seal: kms_key_id is required (or VAULT_AWSKMS_SEAL_KEY_ID)");
		goto out;
	}
	for (const char *p = region; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
			rc = verr_set(err, VERR_INVALID, "awskms seal: region \"%.40s\" is not a region name", region);
			goto out;
		}
	char defep[128];
	if (!ep) {
		snprintf(defep, sizeof(defep), "https://kms.%s.amazonaws.com/", region);
		ep = defep;
	}
	if (strncmp(ep, "https://", 8) && strncmp(ep, "http://", 7)) {
		rc = verr_set(err, VERR_INVALID, "awskms seal: endpoint must be an https:// URL");
		goto out;
	}
	k->key_id = strdup(key);
	k->region = strdup(region);
	k->endpoint = strdup(ep);
	k->host = authority(ep);
	if (env("AWS_CA_BUNDLE"))
		k->ca_file = strdup(env("AWS_CA_BUNDLE"));
	if (!k->key_id || !k->region || !k->endpoint || !k->host) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = load_credentials(k, conf, err);
out:
	if (rc) {
		awskms_free(k);
		return rc;
	}
	log_debug("seal", "awskms seal: key %s in %s at %s", k->key_id, k->region, k->endpoint);
	*out = &k->base;
	return 0;
}
