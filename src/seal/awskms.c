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
 * AWS_KMS_ENDPOINT, then the SDKs' AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL
 * (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), AWS_CA_BUNDLE, then the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE
 * or "default"), then web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 * [+ AWS_ROLE_SESSION_NAME] exchanged at STS AssumeRoleWithWebIdentity;
 * endpoint AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL, else regional per
 * AWS_STS_REGIONAL_ENDPOINTS),
 * then container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on
 * http://169.254.170.2, or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE / _TOKEN in Authorization), then
 * the EC2 instance metadata service (IMDSv2; base URL
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, default http://169.254.169.254, off
 * with AWS_EC2_METADATA_DISABLED=true).
 *
 * DESIGN
 *  - Web identity, container and instance credentials are temporary:
 *    fetched again from their source (the token files re-read, a new
 *    IMDSv2 token) before their Expiration -
 *    5 minutes before, or half-way through a shorter lifetime - at the next
 *    KMS call, and at once when KMS answers ExpiredTokenException (then the
 *    call is retried). A failed refresh keeps credentials that have not
 *    expired yet. Without any other source and an unreachable metadata
 *    service the seal fails at start, unless the endpoint was set explicitly
 *    (then the first call fetches, and the core retries while it cannot);
 *    a configured web identity or container endpoint that refuses or cannot
 *    be reached at start is fetched again the same way (sealed, retried,
 *    its reason in the auto-unseal error).
 *  - At start the configured key (id, ARN or alias) is described
 *    (TrentService.DescribeKey, as Vault does): a key that does not exist,
 *    is disabled or pending deletion, or is not a symmetric encryption key
 *    fails the start with a message saying so. When KMS cannot answer then
 *    (unreachable, throttled, credentials refused) the check runs again
 *    before the first wrap/unwrap. The resolved ARN is logged and reported
 *    (sys/seal-status "seal_key_id").
 *
 * Errors: KMS unreachable, throttled (after two retries) or failing with a
 * 5xx: VERR_UNAVAILABLE (the core stays sealed and retries); a wrong key,
 * an altered blob, InvalidCiphertextException: VERR_INVALID; access
 * denied, key not found or disabled: VERR_DENIED. Messages carry KMS's
 * error type and message, never key material.
 * Thread-safety: the credentials are guarded by s->mu (SIGHUP replaces
 * them); each call signs its own request.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
/* the check at start runs before the listener: one try, bounded */
#define KMS_START_TIMEOUT_MS 2000

#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_TIMEOUT_MS 1000
#define IMDS_TOKEN_TTL "21600"
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"
#define IMDS_REFRESH_MARGIN 300

/* One set of credentials and where they came from. */
/* Where the credentials come from; all but CRED_STATIC are temporary and
 * fetched again before they expire (creds_fresh). */
enum cred_src { CRED_STATIC, CRED_WEB_IDENTITY, CRED_CONTAINER, CRED_IMDS };

struct awscreds {
	char *access_key;
	char *secret_key, *session_token; /* secmem, NUL-terminated */
	size_t secret_cap, token_cap;
	enum cred_src src; /* CRED_STATIC, or where temporary ones come from */
	time_t expires;    /* temporary: their Expiration */
	time_t refresh_at; /* temporary: fetched again from here on */
};

/* Immutable after seal_awskms_new but for c, key_arn and described,
 * which are guarded by mu. */
struct awskms {
	struct seal base;
	pthread_mutex_t mu;
	char *region, *key_id, *endpoint, *host, *ca_file;
	char *imds_url; /* NULL: the metadata service is not used */
	bool imds_explicit;
	/* web identity (NULL token file: not configured): STS endpoint URL */
	char *webid_token_file, *role_arn, *session_name, *sts_url;
	/* container credentials (NULL url: not configured) */
	char *container_url, *container_token_file;
	char *container_token; /* secmem */
	size_t container_token_cap;
	struct awscreds c;
	char *key_arn;  /* DescribeKey's Arn; NULL until described */
	bool described;
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

/* The AWS SDKs' endpoint variables: AWS_ENDPOINT_URL_<SERVICE>, else
 * AWS_ENDPOINT_URL; neither when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true. */
static const char *sdk_endpoint(const char *service)
{
	const char *ign = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	if (ign && !strcasecmp(ign, "true"))
		return NULL;
	char name[64];
	snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", service);
	return env(name) ? env(name) : env("AWS_ENDPOINT_URL");
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
static int shared_credentials(struct awscreds *k)
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

static void creds_free(struct awscreds *k)
{
	free(k->access_key);
	secmem_free(k->secret_key, k->secret_cap);
	secmem_free(k->session_token, k->token_cap);
	memset(k, 0, sizeof(*k));
}

static void wipe_free(char *p)
{
	if (p) {
		secmem_wipe(p, strlen(p));
		free(p);
	}
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

/* "2026-12-07T06:00:00Z" (fraction and "+00:00" accepted) */
static int parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9'; end++)
			;
	if (strcmp(end, "Z") && strcmp(end, "+00:00"))
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* Temporary credentials from `src`, valid until exp: fetched again 5
 * minutes before, or half-way through a shorter lifetime. */
static void creds_expire(struct awscreds *c, enum cred_src src, time_t exp, time_t now)
{
	c->src = src;
	c->expires = exp;
	time_t margin = (exp - now) / 2 < IMDS_REFRESH_MARGIN ? (exp - now) / 2 : IMDS_REFRESH_MARGIN;
	c->refresh_at = exp - margin;
}

/* Copies of a JSON answer's credentials (the secrets into locked memory). */
static int creds_take(struct awscreds *c, enum cred_src src, const char *ak, const char *sk,
		      const char *tk, time_t exp, time_t now, struct verr *err)
{
	c->access_key = strdup(ak);
	c->secret_key = secstr(sk, &c->secret_cap);
	c->session_token = secstr(tk, &c->token_cap);
	if (!c->access_key || !c->secret_key || !c->session_token) {
		creds_free(c);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	creds_expire(c, src, exp, now);
	return 0;
}

/* Free a parsed credentials answer, its copies of the secret and the
 * session token wiped first. */
static void json_wipe_decref(json_t *j)
{
	const char *fields[] = {"SecretAccessKey", "Token"};
	for (size_t i = 0; j && i < 2; i++)
		if (jstr(j, fields[i]))
			secmem_wipe((void *)jstr(j, fields[i]), strlen(jstr(j, fields[i])));
	json_decref(j);
}

/* One request to the metadata service; *body is a secret answer. */
static int imds_req(const char *method, const char *base, const char *path, const char *hdr,
		    long *status, char **body, struct verr *err)
{
	char url[700];
	snprintf(url, sizeof(url), "%s%s", base, path);
	const char *hdrs[] = {hdr, NULL};
	struct seal_http_opts o = {.timeout_ms = IMDS_TIMEOUT_MS, .secret_answer = true};
	return seal_http(method, url, hdrs, NULL, 0, &o, status, body, err);
}

/*
 * IMDSv2: a session token (PUT /latest/api/token), the role name, the
 * role's credentials. Errors: VERR_UNAVAILABLE when the service cannot be
 * reached, VERR_DENIED for an answer that gives no credentials.
 */
static int imds_credentials(const char *base, struct awscreds *c, struct verr *err)
{
	long st = 0;
	char *tok = NULL, *role = NULL, *doc = NULL;
	struct buf th;
	buf_init_secret(&th, 0);
	json_t *j = NULL;
	struct verr e2 = {0};
	int rc = imds_req("PUT", base, "/latest/api/token",
			  "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL, &st, &tok, &e2);
	if (rc) {
		rc = verr_set(err, rc, "instance metadata service: %s", e2.msg);
		goto out;
	}
	tok[strcspn(tok, "\r\n")] = '\0';
	if (st != 200 || !*tok) {
		rc = verr_set(err, st >= 500 ? VERR_UNAVAILABLE : VERR_DENIED,
			      "instance metadata service at %s: PUT /latest/api/token answered HTTP %ld", base, st);
		goto out;
	}
	buf_printf(&th, "X-aws-ec2-metadata-token: %s", tok);
	if (th.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = imds_req("GET", base, IMDS_CREDS_PATH, th.p, &st, &role, &e2)) != 0) {
		rc = verr_set(err, rc, "instance metadata service: %s", e2.msg);
		goto out;
	}
	role[strcspn(role, "\r\n")] = '\0';
	if (st != 200 || !*role || strchr(role, '/') || strlen(role) > 128) {
		rc = verr_set(err, st >= 500 ? VERR_UNAVAILABLE : VERR_DENIED,
			      "instance metadata service at %s: %s", base,
			      st == 404 ? "no IAM role is attached to this instance"
					: "no IAM role name in its answer");
		goto out;
	}
	char path[300];
	snprintf(path, sizeof(path), "%s%s", IMDS_CREDS_PATH, role);
	if ((rc = imds_req("GET", base, path, th.p, &st, &doc, &e2)) != 0) {
		rc = verr_set(err, rc, "instance metadata service: %s", e2.msg);
		goto out;
	}
	j = st == 200 ? json_loads(doc, 0, NULL) : NULL;
	const char *code = jstr(j, "Code"), *ak = jstr(j, "AccessKeyId");
	const char *sk = jstr(j, "SecretAccessKey"), *tk = jstr(j, "Token");
	time_t exp = 0, now = time(NULL);
	if (!ak || !sk || !tk || (code && strcmp(code, "Success")) ||
	    parse_time(jstr(j, "Expiration"), &exp)) {
		rc = verr_set(err, st >= 500 ? VERR_UNAVAILABLE : VERR_DENIED,
			      "instance metadata service at %s: no credentials for role \"%.128s\" (HTTP %ld%s%.40s)",
			      base, role, st, code ? ", Code " : "", code ? code : "");
		goto out;
	}
	if (exp <= now) {
		rc = verr_set(err, VERR_UNAVAILABLE,
			      "instance metadata service at %s: the credentials of role \"%.128s\" have expired",
			      base, role);
		goto out;
	}
	if ((rc = creds_take(c, CRED_IMDS, ak, sk, tk, exp, now, err)) != 0)
		goto out;
out:
	json_wipe_decref(j);
	wipe_free(tok);
	wipe_free(role);
	wipe_free(doc);
	buf_free(&th);
	return rc;
}

/* A token file (web identity JWT, container authorization token), read at
 * every fetch (Kubernetes rotates them): a secret buffer, trimmed. */
static int read_token_file(struct buf *b, const char *path, const char *what, struct verr *err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return verr_set(err, VERR_DENIED, "awskms seal: cannot read the %s file %s", what, path);
	int r = buf_read_stream(b, f, 64 * 1024);
	fclose(f);
	while (r == 0 && b->len && strchr(" \t\r\n", b->p[b->len - 1]))
		b->p[--b->len] = '\0';
	if (r || b->failed || !b->len)
		return verr_set(err, VERR_DENIED, "awskms seal: the %s file %s is %s", what, path,
				r > 0 ? "too large" : "empty or unreadable");
	return 0;
}

/* key=value& with the value percent-encoded (form / query encoding) */
static void form_add(struct buf *b, const char *key, const char *val)
{
	buf_printf(b, "%s%s=", b->len ? "&" : "", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-_.~", *p))
			buf_char(b, (char)*p);
		else
			buf_printf(b, "%%%02X", *p);
	}
}

/* The text of the first <tag>...</tag> in an XML answer (STS's query API),
 * entities decoded, into a new string (secret: secmem, else malloc). */
static char *xml_text(const char *xml, const char *tag, bool secret, size_t *cap)
{
	char open[64], close[64];
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	const char *a = xml ? strstr(xml, open) : NULL;
	const char *e = a ? strstr(a, close) : NULL;
	if (!e)
		return NULL;
	a += strlen(open);
	size_t n = (size_t)(e - a);
	char *out = secret ? secmem_alloc(n + 1) : malloc(n + 1);
	if (!out)
		return NULL;
	if (cap)
		*cap = n + 1;
	static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
					     {"&quot;", "\""}, {"&apos;", "'"}};
	size_t o = 0;
	for (const char *p = a; p < e;) {
		size_t k = 0;
		for (; k < sizeof(ent) / sizeof(ent[0]); k++)
			if (!strncmp(p, ent[k][0], strlen(ent[k][0])))
				break;
		if (k < sizeof(ent) / sizeof(ent[0])) {
			out[o++] = ent[k][1][0];
			p += strlen(ent[k][0]);
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * Web identity (EKS IRSA and the like): the JWT in AWS_WEB_IDENTITY_TOKEN_FILE
 * exchanged at STS for the role AWS_ROLE_ARN's credentials
 * (AssumeRoleWithWebIdentity, query API, unsigned: the JWT is the proof).
 * Errors: VERR_UNAVAILABLE when STS cannot be reached or answers 5xx,
 * VERR_DENIED when it refuses (InvalidIdentityToken, ExpiredTokenException,
 * AccessDenied: its code and message in the error, never the JWT).
 */
static int webid_credentials(const struct awskms *k, struct awscreds *c, struct verr *err)
{
	struct buf jwt, form;
	buf_init_secret(&jwt, 0);
	buf_init_secret(&form, 0);
	char *ans = NULL, *code = NULL, *msg = NULL, *ak = NULL, *sk = NULL, *tk = NULL, *ex = NULL;
	size_t skc = 0, tkc = 0;
	int rc = read_token_file(&jwt, k->webid_token_file, "web identity token", err);
	if (rc)
		goto out;
	form_add(&form, "Action", "AssumeRoleWithWebIdentity");
	form_add(&form, "Version", "2011-06-15");
	form_add(&form, "RoleArn", k->role_arn);
	form_add(&form, "RoleSessionName", k->session_name);
	form_add(&form, "WebIdentityToken", jwt.p);
	if (form.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
			      "Accept: application/xml", NULL};
	struct seal_http_opts o = {.ca_file = k->ca_file, .timeout_ms = IMDS_TIMEOUT_MS * 5,
				   .secret_answer = true};
	long st = 0;
	struct verr e2 = {0};
	if ((rc = seal_http("POST", k->sts_url, hdrs, form.p, form.len, &o, &st, &ans, &e2)) != 0) {
		rc = verr_set(err, rc, "awskms seal: STS AssumeRoleWithWebIdentity: %s", e2.msg);
		goto out;
	}
	ak = xml_text(ans, "AccessKeyId", false, NULL);
	sk = xml_text(ans, "SecretAccessKey", true, &skc);
	tk = xml_text(ans, "SessionToken", true, &tkc);
	ex = xml_text(ans, "Expiration", false, NULL);
	time_t exp = 0, now = time(NULL);
	if (st != 200 || !ak || !sk || !tk || parse_time(ex, &exp)) {
		code = xml_text(ans, "Code", false, NULL);
		msg = xml_text(ans, "Message", false, NULL);
		rc = verr_set(err, st >= 500 ? VERR_UNAVAILABLE : VERR_DENIED,
			      "awskms seal: STS AssumeRoleWithWebIdentity for role %.200s refused (HTTP %ld): %.60s%s%.200s",
			      k->role_arn, st, code ? code : "no credentials in the answer", msg ? ": " : "",
			      msg ? msg : "");
		goto out;
	}
	if (exp <= now) {
		rc = verr_set(err, VERR_DENIED, "awskms seal: STS answered credentials for role %.200s that have already expired",
			      k->role_arn);
		goto out;
	}
	c->access_key = ak;
	c->secret_key = sk;
	c->secret_cap = skc;
	c->session_token = tk;
	c->token_cap = tkc;
	ak = sk = tk = NULL; /* transferred */
	creds_expire(c, CRED_WEB_IDENTITY, exp, now);
out:
	free(ak);
	secmem_free(sk, skc);
	secmem_free(tk, tkc);
	free(ex);
	free(code);
	free(msg);
	wipe_free(ans);
	buf_free(&jwt);
	buf_free(&form);
	return rc;
}

/*
 * Container credentials (ECS task roles, EKS Pod Identity): GET the
 * configured URL with the authorization token (from its file, re-read each
 * time, else from the environment) in Authorization; JSON AccessKeyId,
 * SecretAccessKey, Token, Expiration. Errors as for the metadata service.
 */
static int container_credentials(const struct awskms *k, struct awscreds *c, struct verr *err)
{
	struct buf tok, auth;
	buf_init_secret(&tok, 0);
	buf_init_secret(&auth, 0);
	char *doc = NULL;
	json_t *j = NULL;
	int rc = 0;
	if (k->container_token_file)
		rc = read_token_file(&tok, k->container_token_file, "container authorization token", err);
	else if (k->container_token)
		buf_str(&tok, k->container_token);
	if (rc)
		goto out;
	if (tok.len && strpbrk(tok.p, "\r\n")) {
		rc = verr_set(err, VERR_DENIED, "awskms seal: the container authorization token holds a line break");
		goto out;
	}
	if (tok.len)
		buf_printf(&auth, "Authorization: %s", tok.p);
	if (auth.failed || tok.failed) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const char *hdrs[] = {"Accept: application/json", auth.len ? auth.p : NULL, NULL};
	struct seal_http_opts o = {.ca_file = k->ca_file, .timeout_ms = IMDS_TIMEOUT_MS * 2,
				   .secret_answer = true};
	long st = 0;
	struct verr e2 = {0};
	if ((rc = seal_http("GET", k->container_url, hdrs, NULL, 0, &o, &st, &doc, &e2)) != 0) {
		rc = verr_set(err, rc, "awskms seal: container credentials endpoint: %s", e2.msg);
		goto out;
	}
	j = json_loads(doc, 0, NULL);
	const char *ak = jstr(j, "AccessKeyId"), *sk = jstr(j, "SecretAccessKey"), *tk = jstr(j, "Token");
	time_t exp = 0, now = time(NULL);
	if (st != 200 || !ak || !sk || !tk || parse_time(jstr(j, "Expiration"), &exp)) {
		const char *code = jstr(j, "code") ? jstr(j, "code") : jstr(j, "Code");
		const char *msg = jstr(j, "message") ? jstr(j, "message") : jstr(j, "Message");
		rc = verr_set(err, st >= 500 ? VERR_UNAVAILABLE : VERR_DENIED,
			      "awskms seal: the container credentials endpoint %s refused (HTTP %ld): %.60s%s%.200s",
			      k->container_url, st, code ? code : "no credentials in the answer",
			      msg ? ": " : "", msg ? msg : "");
		goto out;
	}
	if (exp <= now) {
		rc = verr_set(err, VERR_DENIED, "awskms seal: the container credentials endpoint %s answered expired credentials",
			      k->container_url);
		goto out;
	}
	if ((rc = creds_take(c, CRED_CONTAINER, ak, sk, tk, exp, now, err)) != 0)
		goto out;
out:
	json_wipe_decref(j);
	wipe_free(doc);
	buf_free(&tok);
	buf_free(&auth);
	return rc;
}

static const char *const src_name[] = {
	[CRED_STATIC] = "static keys",
	[CRED_WEB_IDENTITY] = "STS (web identity)",
	[CRED_CONTAINER] = "the container credentials endpoint",
	[CRED_IMDS] = "the instance metadata service",
};

static const char *const src_short[] = {
	[CRED_STATIC] = "static",
	[CRED_WEB_IDENTITY] = "web identity",
	[CRED_CONTAINER] = "container",
	[CRED_IMDS] = "instance",
};

/* Temporary credentials from src. */
static int temp_credentials(const struct awskms *k, enum cred_src src, struct awscreds *c,
			    struct verr *err)
{
	switch (src) {
	case CRED_WEB_IDENTITY:
		return webid_credentials(k, c, err);
	case CRED_CONTAINER:
		return container_credentials(k, c, err);
	case CRED_IMDS: {
		struct verr e2 = {0};
		int rc = imds_credentials(k->imds_url, c, &e2);
		return rc ? verr_set(err, rc, "awskms seal: %s", e2.msg) : 0;
	}
	case CRED_STATIC:
		break;
	}
	return 0;
}

/*
 * config, then environment, then the shared credentials file, then web
 * identity, then the container credentials endpoint, then the instance
 * metadata service (botocore's order for these sources). 1 (and nothing in
 * *c but its source) when the source is a configured web identity or
 * container endpoint that refused or could not be reached, or a metadata
 * service at an explicitly set endpoint that could not be reached: the
 * first KMS call fetches again, so the server stays sealed with that error
 * and retries.
 */
static int load_credentials(const struct awskms *ks, struct awscreds *k, const json_t *conf,
			    struct verr *err)
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
	enum cred_src src = ks->webid_token_file ? CRED_WEB_IDENTITY
			    : ks->container_url  ? CRED_CONTAINER
			    : ks->imds_url       ? CRED_IMDS
						 : CRED_STATIC;
	struct verr e2 = {0};
	int rc = src != CRED_STATIC ? temp_credentials(ks, src, k, &e2) : 0;
	if (src != CRED_STATIC && !rc) {
		log_info("seal", "awskms seal: credentials from %s", src_name[src]);
		return 0;
	}
	if (rc == VERR_INTERNAL)
		return verr_set(err, rc, "%s", e2.msg);
	if (src == CRED_WEB_IDENTITY || src == CRED_CONTAINER ||
	    (src == CRED_IMDS && rc == VERR_UNAVAILABLE && ks->imds_explicit)) {
		log_warn("seal", "awskms seal: no credentials yet (%s); retrying at the first KMS call",
			 e2.msg);
		k->src = src;
		return 1;
	}
	return verr_set(err, VERR_INVALID,
			"awskms seal: no AWS credentials (set access_key and secret_key, "
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a shared credentials file, "
			"AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI%s%s)",
			ks->imds_url ? ", or an instance role: " : "", ks->imds_url ? e2.msg : "");
}

/*
 * With k->mu held: temporary credentials that are due (or all of them,
 * with force) are fetched again from their source. A failed refresh keeps
 * unexpired ones.
 */
static int creds_fresh(struct awskms *k, bool force, struct verr *err)
{
	enum cred_src src = k->c.src;
	if (src == CRED_STATIC)
		return 0;
	time_t now = time(NULL);
	if (!force && k->c.access_key && now < k->c.refresh_at)
		return 0;
	struct awscreds n = {0};
	struct verr e2 = {0};
	int rc = temp_credentials(k, src, &n, &e2);
	if (rc) {
		if (!force && k->c.access_key && now < k->c.expires) {
			log_warn("seal", "awskms seal: refreshing the credentials from %s failed (%s); "
				 "the current ones are still valid", src_name[src], e2.msg);
			return 0;
		}
		return verr_set(err, rc, "%s", e2.msg);
	}
	creds_free(&k->c);
	k->c = n; /* transferred */
	char when[32];
	struct tm tm;
	gmtime_r(&k->c.expires, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_info("seal", "awskms seal: new credentials from %s, valid until %s", src_name[src], when);
	return 0;
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
static int kms_call_ex(struct awskms *k, const char *target, json_t *req, int attempts,
		       long timeout_ms, json_t **resp, struct verr *err)
{
	*resp = NULL;
	char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t blen = strlen(body);
	char tgt[96];
	snprintf(tgt, sizeof(tgt), "TrentService.%s", target);
	int rc = 0;
	bool force = false, refreshed = false;
	for (int attempt = 0; attempt < attempts; attempt++) {
		if (attempt && !force)
			usleep((useconds_t)(50000 << (attempt - 1)));
		struct sigv4_header sh[2] = {{"Content-Type", "application/x-amz-json-1.1"},
					     {"X-Amz-Target", tgt}};
		char *auth = NULL, date[SIGV4_DATE_LEN];
		pthread_mutex_lock(&k->mu);
		rc = creds_fresh(k, force, err);
		force = false;
		enum cred_src src = k->c.src;
		if (rc) {
			pthread_mutex_unlock(&k->mu);
			break;
		}
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
			.access_key = k->c.access_key,
			.secret_key = k->c.secret_key,
			.session_token = k->c.session_token,
			.now = time(NULL),
		};
		rc = sigv4_sign(&auth, date, &sr, err);
		struct buf tokh;
		buf_init_secret(&tokh, 0);
		if (k->c.session_token)
			buf_printf(&tokh, "X-Amz-Security-Token: %s", k->c.session_token);
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
		struct seal_http_opts o = {.ca_file = k->ca_file, .timeout_ms = timeout_ms};
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
		/* temporary credentials ended early: fetch new ones, once */
		if (src != CRED_STATIC && !refreshed && type && !strcmp(type, "ExpiredTokenException")) {
			refreshed = force = retry = true;
			log_info("seal", "awskms seal: KMS says the %s credentials expired; fetching new ones",
				 src_short[src]);
		}
		if (retry && !force)
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

static int kms_call(struct awskms *k, const char *target, json_t *req, json_t **resp,
		    struct verr *err)
{
	return kms_call_ex(k, target, req, KMS_ATTEMPTS, 0, resp, err);
}

/*
 * TrentService.DescribeKey on the configured key: its ARN, and whether it
 * can be used. *fatal: KMS answered and the key is unusable (missing,
 * disabled, pending deletion, not a symmetric encryption key), which no
 * retry will mend.
 */
static int describe_key(struct awskms *k, bool at_start, bool *fatal, struct verr *err)
{
	*fatal = false;
	json_t *req = json_pack("{s:s}", "KeyId", k->key_id), *resp = NULL;
	struct verr e2 = {0};
	int rc = req ? kms_call_ex(k, "DescribeKey", req, at_start ? 1 : KMS_ATTEMPTS,
				   at_start ? KMS_START_TIMEOUT_MS : 0, &resp, &e2)
		     : verr_set(&e2, VERR_INTERNAL, "out of memory");
	json_decref(req);
	if (rc) {
		*fatal = strstr(e2.msg, "): NotFoundException") != NULL;
		return verr_set(err, rc, "%s", e2.msg);
	}
	const json_t *md = json_object_get(resp, "KeyMetadata");
	const char *arn = jstr(md, "Arn"), *state = jstr(md, "KeyState");
	const char *usage = jstr(md, "KeyUsage"), *spec = jstr(md, "KeySpec");
	if (!spec)
		spec = jstr(md, "CustomerMasterKeySpec");
	*fatal = true;
	if (!arn || !state)
		rc = verr_set(err, VERR_UNAVAILABLE, "awskms seal: KMS DescribeKey answered without KeyMetadata");
	else if (strcmp(state, "Enabled"))
		rc = verr_set(err, VERR_DENIED, "awskms seal: KMS key %.200s (%.200s) cannot be used: its state is %.40s%s",
			      k->key_id, arn, state,
			      !strcmp(state, "PendingDeletion") ? " (scheduled for deletion; cancel it with CancelKeyDeletion)"
			      : !strcmp(state, "Disabled")      ? " (enable it with EnableKey)"
								: "");
	else if (usage && strcmp(usage, "ENCRYPT_DECRYPT"))
		rc = verr_set(err, VERR_DENIED, "awskms seal: KMS key %.200s is not an encryption key (KeyUsage %.40s)", arn, usage);
	else if (spec && strcmp(spec, "SYMMETRIC_DEFAULT"))
		rc = verr_set(err, VERR_DENIED, "awskms seal: KMS key %.200s is not a symmetric key (KeySpec %.40s)", arn, spec);
	if (!rc) {
		*fatal = false;
		char *dup = strdup(arn);
		pthread_mutex_lock(&k->mu);
		if (dup && !k->key_arn) {
			k->key_arn = dup;
			dup = NULL; /* transferred */
		}
		k->described = true;
		pthread_mutex_unlock(&k->mu);
		free(dup);
		log_info("seal", "awskms seal: KMS key %s is %s (Enabled)", k->key_id, arn);
	}
	json_decref(resp);
	return rc;
}

/* Before a wrap/unwrap: the key check that could not run at start. */
static int ensure_described(struct awskms *k, struct verr *err)
{
	pthread_mutex_lock(&k->mu);
	bool done = k->described;
	pthread_mutex_unlock(&k->mu);
	bool fatal;
	return done ? 0 : describe_key(k, false, &fatal, err);
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
		rc = ensure_described(k, err);
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
	int rc = req ? ensure_described(k, err) : verr_set(err, VERR_INTERNAL, "out of memory");
	if (!rc)
		rc = kms_call(k, "Decrypt", req, &resp, err);
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
	creds_free(&k->c);
	free(k->key_arn);
	free(k->imds_url);
	free(k->webid_token_file);
	free(k->role_arn);
	free(k->session_name);
	free(k->sts_url);
	free(k->container_url);
	free(k->container_token_file);
	secmem_free(k->container_token, k->container_token_cap);
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
	struct awscreds tmp = {0};
	int rc = load_credentials(k, &tmp, conf, err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&k->mu);
	creds_free(&k->c);
	k->c = tmp; /* transferred */
	pthread_mutex_unlock(&k->mu);
	return 0;
}

static void awskms_key_id(struct seal *s, char *buf, size_t cap)
{
	struct awskms *k = (struct awskms *)s;
	pthread_mutex_lock(&k->mu);
	snprintf(buf, cap, "%s", k->key_arn ? k->key_arn : "");
	pthread_mutex_unlock(&k->mu);
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
	.key_id = awskms_key_id,
};

/* botocore's rule for an http:// AWS_CONTAINER_CREDENTIALS_FULL_URI: only a
 * loopback host or the ECS/EKS agent's link-local address. */
static bool container_http_host_ok(const char *url)
{
	const char *h = url + 7, *e = NULL;
	char host[64];
	if (*h == '[')
		e = strchr(h, ']') ? strchr(h, ']') + 1 : NULL;
	else
		e = h + strcspn(h, ":/?#");
	if (!e || (size_t)(e - h) >= sizeof(host))
		return false;
	memcpy(host, h, (size_t)(e - h));
	host[e - h] = '\0';
	struct in_addr a4;
	/* an address, not a name that merely starts like one */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 || !strcmp(host, "169.254.170.2") ||
		       !strcmp(host, "169.254.170.23");
	return !strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
	       !strcmp(host, "169.254.170.2") || !strcmp(host, "169.254.170.23") ||
	       !strcmp(host, "[fd00:ec2::23]");
}

/* The web identity and container credential settings (environment, the
 * AWS SDKs' names); nothing set: neither source is used. */
static int temp_sources(struct awskms *k, struct verr *err)
{
	const char *wf = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
	if (wf && !role)
		return verr_set(err, VERR_INVALID, "awskms seal: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
	if (wf) {
		char defname[64], defurl[128];
		const char *name = env("AWS_ROLE_SESSION_NAME");
		if (!name) {
			snprintf(defname, sizeof(defname), "coffer-session-%lld", (long long)time(NULL));
			name = defname;
		}
		size_t nl = strlen(name);
		bool ok = nl >= 2 && nl <= 64;
		for (size_t i = 0; ok && i < nl; i++)
			ok = (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z') ||
			     (name[i] >= '0' && name[i] <= '9') || strchr("_+=,.@-", name[i]);
		if (!ok)
			return verr_set(err, VERR_INVALID, "awskms seal: AWS_ROLE_SESSION_NAME must be 2 to 64 of A-Z a-z 0-9 _+=,.@-");
		const char *url = sdk_endpoint("STS");
		const char *re = env("AWS_STS_REGIONAL_ENDPOINTS");
		if (!url) {
			if (re && !strcasecmp(re, "legacy"))
				snprintf(defurl, sizeof(defurl), "https://sts.amazonaws.com/");
			else
				snprintf(defurl, sizeof(defurl), "https://sts.%s.amazonaws.com/", k->region);
			url = defurl;
		}
		if (strncmp(url, "https://", 8))
			return verr_set(err, VERR_INVALID, "awskms seal: the STS endpoint (AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL) must be an https:// URL");
		k->webid_token_file = strdup(wf);
		k->role_arn = strdup(role);
		k->session_name = strdup(name);
		k->sts_url = strdup(url);
		if (!k->webid_token_file || !k->role_arn || !k->session_name || !k->sts_url)
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	if (rel) {
		if (*rel != '/')
			return verr_set(err, VERR_INVALID, "awskms seal: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with /");
		size_t n = strlen(CONTAINER_HOST) + strlen(rel) + 1;
		if ((k->container_url = malloc(n)) != NULL)
			snprintf(k->container_url, n, "%s%s", CONTAINER_HOST, rel);
	} else if (full) {
		if (strncmp(full, "https://", 8) && (strncmp(full, "http://", 7) || !container_http_host_ok(full)))
			return verr_set(err, VERR_INVALID,
					"awskms seal: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://, or http:// to a loopback address, 169.254.170.2 or 169.254.170.23");
		k->container_url = strdup(full);
	}
	if ((rel || full) && !k->container_url)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (k->container_url) {
		const char *tf = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
		const char *t = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
		if (tf && !(k->container_token_file = strdup(tf)))
			return verr_set(err, VERR_INTERNAL, "out of memory");
		if (!tf && t && !(k->container_token = secstr(t, &k->container_token_cap)))
			return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	return 0;
}

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
	if (!ep)
		ep = sdk_endpoint("KMS");
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
	const char *md = env("AWS_EC2_METADATA_DISABLED");
	if (!md || strcasecmp(md, "true")) {
		const char *mu = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
		k->imds_explicit = mu != NULL;
		if (mu && strncmp(mu, "http://", 7) && strncmp(mu, "https://", 8)) {
			rc = verr_set(err, VERR_INVALID, "awskms seal: AWS_EC2_METADATA_SERVICE_ENDPOINT must be an http:// URL");
			goto out;
		}
		if ((k->imds_url = strdup(mu ? mu : IMDS_DEFAULT)) != NULL)
			for (size_t n = strlen(k->imds_url); n > 8 && k->imds_url[n - 1] == '/'; n--)
				k->imds_url[n - 1] = '\0';
		if (!k->imds_url) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	if (!k->key_id || !k->region || !k->endpoint || !k->host) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = temp_sources(k, err)) != 0)
		goto out;
	if ((rc = load_credentials(k, &k->c, conf, err)) > 0)
		rc = 0;
	if (rc)
		goto out;
	bool fatal = false;
	struct verr e2 = {0};
	if (describe_key(k, true, &fatal, &e2)) {
		if (fatal) {
			rc = verr_set(err, VERR_INVALID, "%s", e2.msg);
			goto out;
		}
		log_warn("seal", "awskms seal: could not check KMS key %s at start (%s); checking again before its first use",
			 k->key_id, e2.msg);
	}
out:
	if (rc) {
		awskms_free(k);
		return rc;
	}
	log_debug("seal", "awskms seal: key %s in %s at %s", k->key_id, k->region, k->endpoint);
	*out = &k->base;
	return 0;
}
