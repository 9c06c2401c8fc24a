/*
 * kubernetes.c - the kubernetes auth method: config, roles and login with a
 * service account JWT checked by the Kubernetes TokenReview API. Follows the
 * contract of Vault's kubernetes auth method (paths, fields, metadata,
 * status codes); docs/auth-kubernetes.md is the user-facing description.
 *
 * Login, in order (each step's failure and its status):
 *   1 role and jwt present ............................ 400 "missing role"
 *   2 the role exists ......................... 400 "invalid role name \"x\""
 *   3 client address inside token_bound_cidrs ......... 403 permission denied
 *   4 the mount is configured ...... 500 "could not load backend configuration"
 *   5 the JWT decodes (claims NOT trusted yet); alg none/HMAC refused ... 403
 *   6 pem_keys configured: the signature verifies with one of them ...... 403
 *   7 exp/nbf/iat (150 s leeway), issuer (if configured), role audience . 403
 *   8 the claimed service account name / namespace are bound by the role 403
 *   9 TokenReview on kubernetes_host over HTTPS (CA pinned, 10 s timeout):
 *       unreachable, TLS failure, unexpected answer ............... 500
 *       401, status.error, authenticated=false, other identity ..... 403
 *  10 resp->auth with the role's token settings and Vault's metadata.
 * Steps 5-8 only reject early on claims the client controls; the decision
 * to admit is TokenReview's answer (step 9) and, with pem_keys, step 6.
 *
 * Storage (the mount's view): "config" (JSON, token_reviewer_jwt included -
 * it lies below the barrier) and "role/<lower-case name>".
 *
 * Threads: handlers run concurrently. The parsed config (keys included) is
 * cached in an immutable, reference-counted `struct k8s_config`; `b->lock`
 * guards only the cache pointer, so a login holds a reference during its
 * HTTP call without blocking a concurrent config write, which publishes a
 * new object. Role writes are serialised by `b->role_lock` (read-modify-
 * write of partial updates); role reads need no lock (storage is atomic).
 */
#include "auth/kubernetes.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/cidr.h"
#include "util/jwt.h"
#include "util/log.h"
#include "util/secmem.h"

#define K8S_CONNECT_TIMEOUT_MS 5000L
#define K8S_TIMEOUT_MS 10000L
#define K8S_MAX_RESPONSE (1024 * 1024)
#define K8S_JWT_LEEWAY 150 /* seconds of clock skew on exp/nbf/iat */

/* Where a pod finds its own service account token and the cluster CA.
 * Not const so the unit tests can point it at a temp directory. */
static const char *k8s_local_dir = "/var/run/secrets/kubernetes.io/serviceaccount";

/* ---- config ---- */

/* Immutable after publication; freed when the last reference goes. */
struct k8s_config {
	atomic_int refs;
	char *host;          /* normalised "https://h:p" without trailing '/' */
	char *ca_pem;        /* "" when not set */
	char *reviewer;      /* secmem; "" when not set */
	size_t reviewer_cap;
	json_t *pem_keys;    /* array of PEM strings */
	struct jwt_key **keys;
	size_t nkeys;
	char *issuer;        /* "" when not set */
	bool disable_iss_validation;
	bool disable_local_ca_jwt;
};

struct k8s_backend {
	pthread_mutex_t lock;      /* guards cfg and cfg_loaded */
	struct k8s_config *cfg;    /* NULL: not configured (or not loaded) */
	bool cfg_loaded;
	pthread_mutex_t role_lock; /* serialises role writes */
};

static void config_release(struct k8s_config *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free(c->host);
	free(c->ca_pem);
	if (c->reviewer)
		secmem_free(c->reviewer, c->reviewer_cap);
	json_decref(c->pem_keys);
	for (size_t i = 0; i < c->nkeys; i++)
		jwt_key_free(c->keys[i]);
	free(c->keys);
	free(c->issuer);
	free(c);
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* Overwrite a JSON string's bytes in place before it is released (for the
 * reviewer JWT read back from storage). */
static void wipe_json_str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (json_is_string(v))
		secmem_wipe((char *)json_string_value(v), json_string_length(v));
}

/* "host", "host:port", "https://host:port/" -> "https://host:port". */
static int normalise_host(char **out, const char *in, struct verr *err)
{
	*out = NULL;
	while (isspace((unsigned char)*in))
		in++;
	if (!*in)
		return verr_set(err, VERR_INVALID, "no host provided");
	const char *scheme = strstr(in, "://");
	char *s;
	if (!scheme) {
		size_t n = strlen(in) + 9;
		s = malloc(n);
		if (s)
			snprintf(s, n, "https://%s", in);
	} else {
		if (strncmp(in, "https://", 8) && strncmp(in, "http://", 7))
			return verr_set(err, VERR_INVALID, "kubernetes_host must be an http or https URL");
		s = strdup(in);
	}
	if (!s)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	size_t l = strlen(s);
	while (l && (s[l - 1] == '/' || isspace((unsigned char)s[l - 1])))
		s[--l] = '\0';
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			free(s);
			return verr_set(err, VERR_INVALID, "kubernetes_host contains whitespace or control characters");
		}
	*out = s;
	return 0;
}

/* Build a config object from its stored JSON. */
static int config_from_json(struct k8s_config **out, const json_t *j, struct verr *err)
{
	*out = NULL;
	int rc = 0;
	struct k8s_config *c = calloc(1, sizeof(*c));
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	atomic_init(&c->refs, 1);
	rc = normalise_host(&c->host, jstr(j, "kubernetes_host"), err);
	if (rc)
		goto out;
	c->ca_pem = strdup(jstr(j, "kubernetes_ca_cert"));
	c->issuer = strdup(jstr(j, "issuer"));
	const char *rv = jstr(j, "token_reviewer_jwt");
	c->reviewer_cap = strlen(rv) + 1;
	c->reviewer = secmem_alloc(c->reviewer_cap);
	if (!c->ca_pem || !c->issuer || !c->reviewer) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(c->reviewer, rv, c->reviewer_cap);
	c->disable_iss_validation = json_is_true(json_object_get(j, "disable_iss_validation"));
	c->disable_local_ca_jwt = json_is_true(json_object_get(j, "disable_local_ca_jwt"));
	const json_t *pk = json_object_get(j, "pem_keys");
	c->pem_keys = json_is_array(pk) ? json_deep_copy(pk) : json_array();
	size_t n = json_array_size(c->pem_keys);
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof(pointer) is meant */
	c->keys = calloc(n ? n : 1, sizeof(*c->keys));
	if (!c->pem_keys || !c->keys) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *pem = json_string_value(json_array_get(c->pem_keys, i));
		rc = jwt_key_from_pem(&c->keys[i], pem ? pem : "", pem ? strlen(pem) : 0, err);
		if (rc)
			goto out;
		c->nkeys = i + 1;
	}
	*out = c;
	c = NULL; /* transferred */
out:
	config_release(c);
	return rc;
}

/* A reference to the current config (load it from storage the first time),
 * or *out = NULL when the mount has not been configured. */
static int config_get(struct k8s_backend *b, const struct storage_view *v,
		      struct k8s_config **out, struct verr *err)
{
	*out = NULL;
	int rc = 0;
	pthread_mutex_lock(&b->lock);
	if (!b->cfg_loaded) {
		json_t *j = NULL;
		rc = view_get_json(v, "config", &j, err);
		if (rc == 0 && j)
			rc = config_from_json(&b->cfg, j, err);
		if (j)
			wipe_json_str(j, "token_reviewer_jwt");
		json_decref(j);
		if (rc == 0)
			b->cfg_loaded = true;
	}
	if (b->cfg) {
		atomic_fetch_add(&b->cfg->refs, 1);
		*out = b->cfg;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

static bool valid_ca_pem(const char *pem)
{
	/* curl's PEM blob parser wants at least one certificate */
	return strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL;
}

static int config_write(struct logical_request *req, struct logical_response *resp,
			struct verr *err)
{
	struct k8s_backend *b = req->backend;
	struct k8s_config *c = NULL;
	json_t *j = NULL;
	int rc = 0;
	const char *host = request_str(req, "kubernetes_host");
	if (!host || !*host)
		return verr_set(err, VERR_INVALID, "no host provided");
	const char *ca = request_str(req, "kubernetes_ca_cert");
	if (ca && *ca && !valid_ca_pem(ca))
		return verr_set(err, VERR_INVALID, "kubernetes_ca_cert does not contain a PEM certificate");
	/* Any bearer token the API server accepts (a service account JWT, or an
	 * opaque/static token), as Vault takes it: not parsed here; a bad one
	 * shows at login as TokenReview's 401. Only what cannot go in an
	 * HTTP header is refused. */
	const char *rv_in = request_str(req, "token_reviewer_jwt");
	char *rv = NULL; /* trimmed (a token file read with @file ends in a newline) */
	if (rv_in) {
		while (*rv_in == ' ' || *rv_in == '\t' || *rv_in == '\r' || *rv_in == '\n')
			rv_in++;
		size_t rl = strlen(rv_in);
		while (rl && (rv_in[rl - 1] == ' ' || rv_in[rl - 1] == '\t' || rv_in[rl - 1] == '\r' ||
			      rv_in[rl - 1] == '\n'))
			rl--;
		for (size_t q = 0; q < rl; q++)
			if ((unsigned char)rv_in[q] < 0x21 || (unsigned char)rv_in[q] == 0x7f)
				return verr_set(err, VERR_INVALID, "token_reviewer_jwt must not contain whitespace or control characters");
		rv = secmem_alloc(rl + 1);
		if (!rv)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		memcpy(rv, rv_in, rl);
		rv[rl] = '\0';
	}
	json_t *pk = request_json(req, "pem_keys");
	pk = pk ? json_incref(pk) : json_array();
	/* "o" steals pk even when packing fails */
	j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:b}", "kubernetes_host", host,
		      "kubernetes_ca_cert", ca ? ca : "", "token_reviewer_jwt", rv ? rv : "",
		      "pem_keys", pk, "issuer",
		      request_str(req, "issuer") ? request_str(req, "issuer") : "",
		      "disable_iss_validation", request_bool(req, "disable_iss_validation"),
		      "disable_local_ca_jwt", request_bool(req, "disable_local_ca_jwt"));
	if (rv)
		secmem_free(rv, strlen(rv) + 1); /* json_pack copied it */
	if (!j)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = config_from_json(&c, j, err); /* validates host and every pem key */
	if (rc)
		goto out;
	if (!strncmp(c->host, "http://", 7))
		logical_response_warn(resp, "kubernetes_host uses plain http: service account and "
					    "reviewer tokens will cross the network unencrypted");
	pthread_mutex_lock(&b->lock);
	rc = view_put_json(req->storage, "config", j, err);
	struct k8s_config *old = NULL;
	if (rc == 0) {
		old = b->cfg;
		b->cfg = c;
		b->cfg_loaded = true;
		c = NULL; /* transferred */
	}
	pthread_mutex_unlock(&b->lock);
	config_release(old);
out:
	config_release(c);
	if (j)
		wipe_json_str(j, "token_reviewer_jwt");
	json_decref(j);
	return rc;
}

static int config_read(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	json_t *j = NULL;
	int rc = view_get_json(req->storage, "config", &j, err);
	if (rc)
		return rc;
	if (!j)
		return 0; /* Vault: 204 when not configured */
	resp->data = json_pack("{s:s, s:s, s:O, s:s, s:O, s:O}", "kubernetes_host",
			       jstr(j, "kubernetes_host"), "kubernetes_ca_cert",
			       jstr(j, "kubernetes_ca_cert"), "pem_keys",
			       json_object_get(j, "pem_keys") ? json_object_get(j, "pem_keys") : json_null(),
			       "issuer", jstr(j, "issuer"), "disable_iss_validation",
			       json_is_true(json_object_get(j, "disable_iss_validation")) ? json_true() : json_false(),
			       "disable_local_ca_jwt",
			       json_is_true(json_object_get(j, "disable_local_ca_jwt")) ? json_true() : json_false());
	wipe_json_str(j, "token_reviewer_jwt");
	json_decref(j);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* ---- roles ---- */

#define ALIAS_UID "serviceaccount_uid"
#define ALIAS_NAME "serviceaccount_name"

/* Vault's glob for bound names and namespaces: "*" matches all, "pre*" a
 * prefix, "*suf" a suffix, "*mid*" a substring; otherwise equality. */
static bool glob_match(const char *pat, const char *s)
{
	size_t pl = strlen(pat), sl = strlen(s);
	if (!strcmp(pat, "*"))
		return true;
	bool lead = pl && pat[0] == '*', trail = pl > 1 && pat[pl - 1] == '*';
	if (lead && trail) {
		char mid[256];
		if (pl - 2 >= sizeof(mid))
			return false;
		memcpy(mid, pat + 1, pl - 2);
		mid[pl - 2] = '\0';
		return strstr(s, mid) != NULL;
	}
	if (trail)
		return sl >= pl - 1 && !strncmp(s, pat, pl - 1);
	if (lead)
		return sl >= pl - 1 && !strcmp(s + sl - (pl - 1), pat + 1);
	return !strcmp(pat, s);
}

static bool list_glob_match(const json_t *pats, const char *s)
{
	size_t i;
	json_t *e;
	json_array_foreach(pats, i, e)
		if (json_is_string(e) && glob_match(json_string_value(e), s))
			return true;
	return false;
}

static bool list_has(const json_t *arr, const char *s)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
		if (json_is_string(e) && !strcmp(json_string_value(e), s))
			return true;
	return false;
}

static int role_key(char *buf, size_t cap, const char *name)
{
	int n = snprintf(buf, cap, "role/%s", name);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	for (char *p = buf + 5; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

static int role_load(const struct storage_view *v, const char *name, json_t **out,
		     struct verr *err)
{
	char key[300];
	*out = NULL;
	if (!name || !*name || role_key(key, sizeof(key), name))
		return 0;
	return view_get_json(v, key, out, err);
}

static int role_exists(struct logical_request *req, struct verr *err)
{
	json_t *r = NULL;
	int rc = role_load(req->storage, request_str(req, "name"), &r, err);
	if (rc)
		return rc;
	json_decref(r);
	return r != NULL;
}

/* token_* fields and their pre-1.2 names (Vault's tokenutil upgrade). */
static const struct {
	const char *cur, *old;
} token_pairs[] = {
	{"token_policies", "policies"}, {"token_bound_cidrs", "bound_cidrs"},
	{"token_num_uses", "num_uses"}, {"token_ttl", "ttl"},
	{"token_max_ttl", "max_ttl"},   {"token_period", "period"},
	{NULL, NULL},
};

static const char *const token_types[] = {"default", "service", "batch", "default-service",
					  "default-batch", NULL};

/* Fields of the role JSON object, with their zero values. */
static json_t *role_defaults(void)
{
	return json_pack("{s:[], s:[], s:s, s:s, s:s, s:[], s:I, s:I, s:I, s:I, s:I, s:[], s:b, s:s}",
			 "bound_service_account_names", "bound_service_account_namespaces",
			 "bound_service_account_namespace_selector", "", "audience", "",
			 "alias_name_source", ALIAS_UID, "token_policies", "token_ttl", (json_int_t)0,
			 "token_max_ttl", (json_int_t)0, "token_period", (json_int_t)0,
			 "token_num_uses", (json_int_t)0, "token_explicit_max_ttl", (json_int_t)0,
			 "token_bound_cidrs", "token_no_default_policy", 0, "token_type", "default");
}

static int64_t jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static int role_write(struct logical_request *req, struct logical_response *resp,
		      struct verr *err)
{
	struct k8s_backend *b = req->backend;
	const char *name = request_str(req, "name");
	char key[300];
	json_t *role = NULL;
	int rc = 0;
	if (!name || !*name)
		return verr_set(err, VERR_INVALID, "missing role name");
	if (role_key(key, sizeof(key), name))
		return verr_set(err, VERR_INVALID, "role name is too long");
	pthread_mutex_lock(&b->role_lock);
	rc = view_get_json(req->storage, key, &role, err);
	if (rc)
		goto out;
	if (!role)
		role = role_defaults();
	else { /* roles written by older versions may lack keys */
		json_t *d = role_defaults();
		json_object_update_missing(role, d);
		json_decref(d);
	}
	if (!role) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}

	/* token fields, accepting the deprecated names like Vault */
	for (int i = 0; token_pairs[i].cur; i++) {
		bool has_cur = request_has(req, token_pairs[i].cur);
		bool has_old = request_has(req, token_pairs[i].old);
		json_t *vc = request_json(req, token_pairs[i].cur);
		json_t *vo = request_json(req, token_pairs[i].old);
		if (has_cur && has_old && !json_equal(vc, vo)) {
			rc = verr_set(err, VERR_INVALID, "cannot specify both \"%s\" and \"%s\"",
				      token_pairs[i].cur, token_pairs[i].old);
			goto out;
		}
		if (has_cur) {
			json_object_set(role, token_pairs[i].cur, vc);
			json_object_del(role, token_pairs[i].old);
		} else if (has_old) {
			json_object_set(role, token_pairs[i].cur, vo);
			json_object_set(role, token_pairs[i].old, vo);
		}
	}
	const char *simple[] = {"token_explicit_max_ttl", "token_no_default_policy", "token_type",
				"audience", "alias_name_source",
				"bound_service_account_names", "bound_service_account_namespaces",
				"bound_service_account_namespace_selector", NULL};
	for (int i = 0; simple[i]; i++)
		if (request_has(req, simple[i]))
			json_object_set(role, simple[i], request_json(req, simple[i]));

	/* validation */
	if (jint(role, "token_num_uses") < 0) {
		rc = verr_set(err, VERR_INVALID, "token_num_uses cannot be negative");
		goto out;
	}
	if (jint(role, "token_max_ttl") > 0 && jint(role, "token_ttl") > jint(role, "token_max_ttl")) {
		rc = verr_set(err, VERR_INVALID, "token ttl should not be greater than token max ttl");
		goto out;
	}
	bool tt_ok = false;
	for (int i = 0; token_types[i]; i++)
		tt_ok |= !strcmp(jstr(role, "token_type"), token_types[i]);
	if (!tt_ok) {
		rc = verr_set(err, VERR_INVALID, "invalid 'token_type' value %s", jstr(role, "token_type"));
		goto out;
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(role, "token_bound_cidrs"), i, e) {
		if (!cidr_valid(json_string_value(e))) {
			rc = verr_set(err, VERR_INVALID, "invalid CIDR block in token_bound_cidrs: %s",
				      json_string_value(e));
			goto out;
		}
	}
	const json_t *names = json_object_get(role, "bound_service_account_names");
	const json_t *nss = json_object_get(role, "bound_service_account_namespaces");
	if (json_array_size(names) == 0) {
		rc = verr_set(err, VERR_INVALID, "\"bound_service_account_names\" can not be empty");
		goto out;
	}
	if (json_array_size(names) > 1 && list_has(names, "*")) {
		rc = verr_set(err, VERR_INVALID, "can not mix \"*\" with values");
		goto out;
	}
	if (*jstr(role, "bound_service_account_namespace_selector")) {
		rc = verr_set(err, VERR_INVALID, "bound_service_account_namespace_selector is not supported: "
						 "list the namespaces in bound_service_account_namespaces");
		goto out;
	}
	if (json_array_size(nss) == 0) {
		rc = verr_set(err, VERR_INVALID, "\"bound_service_account_namespaces\" can not be empty "
						 "if \"bound_service_account_namespace_selector\" is not set");
		goto out;
	}
	if (json_array_size(nss) > 1 && list_has(nss, "*")) {
		rc = verr_set(err, VERR_INVALID, "can not mix \"*\" with values");
		goto out;
	}
	const char *src = jstr(role, "alias_name_source");
	if (!*src) {
		json_object_set_new(role, "alias_name_source", json_string(ALIAS_UID));
	} else if (strcmp(src, ALIAS_UID) && strcmp(src, ALIAS_NAME)) {
		rc = verr_set(err, VERR_INVALID, "invalid alias_name_source %s, must be one of: %s, %s",
			      src, ALIAS_UID, ALIAS_NAME);
		goto out;
	}
	if (!*jstr(role, "audience"))
		logical_response_warn(resp, "This role does not specify an audience. In a future "
					    "version of Vault, specifying an audience will be required.");
	rc = view_put_json(req->storage, key, role, err);
out:
	pthread_mutex_unlock(&b->role_lock);
	json_decref(role);
	return rc;
}

static int role_read(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	json_t *role = NULL;
	int rc = role_load(req->storage, request_str(req, "name"), &role, err);
	if (rc)
		return rc;
	if (!role)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	json_t *d = role_defaults();
	json_object_update_existing(d, role);
	/* deprecated names are shown only when the role was written with them */
	for (int i = 0; token_pairs[i].cur; i++) {
		json_t *v = json_object_get(role, token_pairs[i].old);
		if (v)
			json_object_set(d, token_pairs[i].old, v);
	}
	json_decref(role);
	resp->data = d;
	return d ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int role_delete(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	struct k8s_backend *b = req->backend;
	char key[300];
	const char *name = request_str(req, "name");
	if (!name || !*name || role_key(key, sizeof(key), name))
		return verr_set(err, VERR_INVALID, "missing role name");
	pthread_mutex_lock(&b->role_lock);
	int rc = view_delete(req->storage, key, err);
	pthread_mutex_unlock(&b->role_lock);
	return rc;
}

static int role_list(struct logical_request *req, struct logical_response *resp,
		     struct verr *err)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = view_list(req->storage, "role/", &keys, &n, err);
	if (rc)
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(keys[i]));
	physical_list_free(keys, n);
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	}
	resp->data = json_pack("{s:o}", "keys", arr);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

/* ---- the service account in a JWT ---- */

/* Legacy (secret-based) tokens carry flat "kubernetes.io/serviceaccount/..."
 * claims; projected tokens a "kubernetes.io" object. Borrowed strings. */
struct k8s_sa {
	const char *name, *ns, *uid, *secret_name;
};

static void sa_from_claims(struct k8s_sa *sa, const json_t *claims)
{
	sa->name = json_string_value(json_object_get(claims, "kubernetes.io/serviceaccount/service-account.name"));
	sa->uid = json_string_value(json_object_get(claims, "kubernetes.io/serviceaccount/service-account.uid"));
	sa->ns = json_string_value(json_object_get(claims, "kubernetes.io/serviceaccount/namespace"));
	sa->secret_name = json_string_value(json_object_get(claims, "kubernetes.io/serviceaccount/secret.name"));
	const json_t *k = json_object_get(claims, "kubernetes.io");
	if (json_is_object(k)) {
		sa->ns = json_string_value(json_object_get(k, "namespace"));
		const json_t *s = json_object_get(k, "serviceaccount");
		if (json_is_object(s)) {
			sa->name = json_string_value(json_object_get(s, "name"));
			sa->uid = json_string_value(json_object_get(s, "uid"));
		}
	}
	if (!sa->name)
		sa->name = "";
	if (!sa->ns)
		sa->ns = "";
	if (!sa->uid)
		sa->uid = "";
	if (!sa->secret_name)
		sa->secret_name = "";
}

/* Role binding check on (namespace, name): the messages are Vault's. */
static int role_binds(const json_t *role, const char *ns, const char *name, struct verr *err)
{
	const json_t *names = json_object_get(role, "bound_service_account_names");
	const json_t *nss = json_object_get(role, "bound_service_account_namespaces");
	if (!(json_array_size(names) == 1 && list_has(names, "*")) && !list_glob_match(names, name))
		return verr_set(err, VERR_DENIED, "service account name not authorized");
	if (!list_glob_match(nss, ns))
		return verr_set(err, VERR_DENIED, "namespace not authorized");
	return 0;
}

/* ---- TokenReview ---- */

struct http_body {
	struct buf b;
	bool overflow;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_body *hb = ud;
	size_t n = size * nmemb;
	if (hb->b.len + n > K8S_MAX_RESPONSE) {
		hb->overflow = true;
		return 0; /* aborts the transfer */
	}
	buf_add(&hb->b, ptr, n);
	return hb->b.failed ? 0 : n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Read a small local file (the pod's token or CA); NULL if absent. The
 * caller wipes and frees. */
static char *read_local(const char *file, size_t *cap)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", k8s_local_dir, file);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t size = 64 * 1024;
	char *buf = secmem_alloc(size);
	size_t n = buf ? fread(buf, 1, size - 1, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	while (n && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	if (!n) {
		secmem_free(buf, size);
		return NULL;
	}
	*cap = size;
	return buf;
}

/* Short, single-line excerpt of an untrusted server message. */
static void excerpt(char *dst, size_t cap, const char *src)
{
	size_t o = 0;
	for (const char *p = src ? src : ""; *p && o + 1 < cap; p++)
		dst[o++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
	dst[o] = '\0';
}

struct review_result {
	char name[256], ns[256], uid[256];
	json_t *audiences; /* owned: status.audiences, may be NULL */
};

/* POST a TokenReview for jwt. Identity from status.user on success. */
static int token_review(const struct k8s_config *cfg, const char *jwt, const json_t *audiences,
			struct review_result *out, struct verr *err)
{
	CURL *h = NULL;
	struct curl_slist *hdrs = NULL;
	struct http_body body = {0};
	char *req_body = NULL, *auth_hdr = NULL, *local_tok = NULL, *local_ca = NULL;
	size_t local_tok_cap = 0, local_ca_cap = 0, auth_len = 0;
	json_t *resp = NULL;
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;

	pthread_once(&curl_once, curl_init_once);
	int n = snprintf(url, sizeof(url), "%s/apis/authentication.k8s.io/v1/tokenreviews", cfg->host);
	if (n < 0 || (size_t)n >= sizeof(url))
		return verr_set(err, VERR_INTERNAL, "kubernetes_host is too long");

	/* the reviewer: configured JWT, else the pod's own token, else the
	 * client's JWT (Vault's order) */
	const char *bearer = cfg->reviewer;
	if (!*bearer && !cfg->disable_local_ca_jwt)
		bearer = local_tok = read_local("token", &local_tok_cap);
	if (!bearer || !*bearer)
		bearer = jwt;
	const char *ca = cfg->ca_pem;
	if (!*ca && !cfg->disable_local_ca_jwt)
		ca = local_ca = read_local("ca.crt", &local_ca_cap);

	json_t *spec = json_pack("{s:s}", "token", jwt);
	if (spec && json_array_size(audiences))
		json_object_set(spec, "audiences", (json_t *)audiences);
	json_t *tr = spec ? json_pack("{s:s, s:s, s:o}", "apiVersion", "authentication.k8s.io/v1",
				      "kind", "TokenReview", "spec", spec)
			  : NULL;
	req_body = tr ? json_dumps(tr, JSON_COMPACT) : NULL;
	if (tr) {
		wipe_json_str(json_object_get(tr, "spec"), "token");
		json_decref(tr);
	}
	auth_len = strlen(bearer) + 32;
	auth_hdr = secmem_alloc(auth_len);
	h = curl_easy_init();
	if (!req_body || !auth_hdr || !h) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(auth_hdr, auth_len, "Authorization: Bearer %s", bearer);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, auth_hdr);
	if (!hdrs) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, K8S_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, K8S_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca && *ca) {
		struct curl_blob blob = {.data = (void *)ca, .len = strlen(ca),
					 .flags = CURL_BLOB_COPY};
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req_body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req_body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		char ex[200];
		excerpt(ex, sizeof(ex), *errbuf ? errbuf : curl_easy_strerror(cc));
		if (body.overflow)
			rc = verr_set(err, VERR_INTERNAL, "lookup failed: the Kubernetes API server's answer is larger than %d bytes", K8S_MAX_RESPONSE);
		else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
			 cc == CURLE_SSL_CONNECT_ERROR)
			rc = verr_set(err, VERR_INTERNAL,
				      "lookup failed: TLS connection to the Kubernetes API server at %s failed "
				      "(check kubernetes_ca_cert): %s", cfg->host, ex);
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			rc = verr_set(err, VERR_INTERNAL,
				      "lookup failed: the Kubernetes API server at %s did not answer within %ld s",
				      cfg->host, K8S_TIMEOUT_MS / 1000);
		else
			rc = verr_set(err, VERR_INTERNAL,
				      "lookup failed: could not reach the Kubernetes API server at %s: %s",
				      cfg->host, ex);
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	json_error_t je;
	resp = body.b.p ? json_loadb(body.b.p, body.b.len, 0, &je) : NULL;
	if (status == 401) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: service account unauthorized; this could "
						"mean it has been deleted or recreated with a new token");
		goto out;
	}
	if (status < 200 || status > 206) {
		char ex[200];
		excerpt(ex, sizeof(ex), json_string_value(json_object_get(resp, "message")));
		rc = verr_set(err, VERR_INTERNAL,
			      "lookup failed: the Kubernetes API server answered HTTP %ld%s%s", status,
			      *ex ? ": " : "", ex);
		goto out;
	}
	const json_t *st = json_object_get(resp, "status");
	if (!json_is_object(resp) || !json_is_object(st) ||
	    strcmp(jstr(resp, "kind"), "TokenReview")) {
		rc = verr_set(err, VERR_INTERNAL, "lookup failed: the Kubernetes API server's answer is not a TokenReview");
		goto out;
	}
	if (*jstr(st, "error")) {
		char ex[256];
		excerpt(ex, sizeof(ex), jstr(st, "error"));
		rc = verr_set(err, VERR_DENIED, "lookup failed: %s", ex);
		goto out;
	}
	if (!json_is_true(json_object_get(st, "authenticated"))) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: service account jwt not valid");
		goto out;
	}
	/* system:serviceaccount:NAMESPACE:NAME */
	const json_t *user = json_object_get(st, "user");
	const char *un = jstr(user, "username");
	const char *pfx = "system:serviceaccount:";
	const char *rest = !strncmp(un, pfx, strlen(pfx)) ? un + strlen(pfx) : NULL;
	const char *colon = rest ? strchr(rest, ':') : NULL;
	if (!colon || colon == rest || !colon[1] || strchr(colon + 1, ':') ||
	    (size_t)(colon - rest) >= sizeof(out->ns) || strlen(colon + 1) >= sizeof(out->name) ||
	    strlen(jstr(user, "uid")) >= sizeof(out->uid)) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: unexpected username format");
		goto out;
	}
	memcpy(out->ns, rest, (size_t)(colon - rest));
	out->ns[colon - rest] = '\0';
	snprintf(out->name, sizeof(out->name), "%s", colon + 1);
	snprintf(out->uid, sizeof(out->uid), "%s", jstr(user, "uid"));
	const json_t *auds = json_object_get(st, "audiences");
	out->audiences = json_is_array(auds) ? json_incref((json_t *)auds) : NULL;
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	if (auth_hdr)
		secmem_free(auth_hdr, auth_len);
	if (req_body) {
		secmem_wipe(req_body, strlen(req_body));
		free(req_body);
	}
	if (local_tok)
		secmem_free(local_tok, local_tok_cap);
	if (local_ca)
		secmem_free(local_ca, local_ca_cap);
	buf_free(&body.b);
	json_decref(resp);
	return rc;
}

/* ---- login ---- */

static json_t *aud_list(const json_t *aud)
{
	if (json_is_string(aud))
		return json_pack("[O]", aud);
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(aud, i, e)
		if (json_is_string(e))
			json_array_append(out, e);
	return out;
}

static int login(struct logical_request *req, struct logical_response *resp, struct verr *err)
{
	struct k8s_backend *b = req->backend;
	const char *role_name = request_str(req, "role");
	const char *jwt_str = request_str(req, "jwt");
	json_t *role = NULL, *auds = NULL;
	struct k8s_config *cfg = NULL;
	struct jwt *t = NULL;
	struct logical_auth *a = NULL;
	struct review_result rr = {0};
	int rc = 0;

	if (!role_name || !*role_name)
		return verr_set(err, VERR_INVALID, "missing role");
	if (!jwt_str || !*jwt_str)
		return verr_set(err, VERR_INVALID, "missing jwt");
	rc = role_load(req->storage, role_name, &role, err);
	if (rc)
		goto out;
	if (!role) {
		rc = verr_set(err, VERR_INVALID, "invalid role name \"%s\"", role_name);
		goto out;
	}
	const json_t *cidrs = json_object_get(role, "token_bound_cidrs");
	if (!cidr_list_allows(cidrs, req->remote_addr)) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	rc = config_get(b, req->storage, &cfg, err);
	if (rc)
		goto out;
	if (!cfg) {
		rc = verr_set(err, VERR_INTERNAL, "could not load backend configuration");
		goto out;
	}

	/* the claims, not trusted yet */
	struct verr je = {0};
	if (jwt_parse(&t, jwt_str, &je)) {
		rc = verr_set(err, VERR_DENIED, "%s", je.msg);
		goto out;
	}
	if (cfg->nkeys && jwt_verify(t, cfg->keys, cfg->nkeys, &je)) {
		rc = verr_set(err, VERR_DENIED, "%s", je.msg);
		goto out;
	}
	const char *audience = jstr(role, "audience");
	struct jwt_expect x = {
		.leeway = K8S_JWT_LEEWAY,
		.issuer = !cfg->disable_iss_validation && *cfg->issuer ? cfg->issuer : NULL,
		.audience = *audience ? audience : NULL,
	};
	if (jwt_check_claims(t, &x, &je)) {
		rc = verr_set(err, VERR_DENIED, "%s", je.msg);
		goto out;
	}
	struct k8s_sa sa;
	sa_from_claims(&sa, t->claims);
	rc = role_binds(role, sa.ns, sa.name, err);
	if (rc)
		goto out;
	bool by_name = !strcmp(jstr(role, "alias_name_source"), ALIAS_NAME);
	if (!by_name && !*sa.uid) {
		rc = verr_set(err, VERR_INVALID, "could not parse UID from claims");
		goto out;
	}
	if (by_name && (!*sa.ns || !*sa.name)) {
		rc = verr_set(err, VERR_INVALID, "service account namespace and name must be set");
		goto out;
	}

	/* the decision: ask the API server */
	auds = *audience ? json_pack("[s]", audience) : aud_list(json_object_get(t->claims, "aud"));
	rc = token_review(cfg, jwt_str, auds, &rr, err);
	if (rc) {
		log_debug("auth.kubernetes", "login unauthorized for role %s: %s", role_name,
			  err ? err->msg : "");
		goto out;
	}
	if (strcmp(rr.name, sa.name)) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: JWT names did not match");
		goto out;
	}
	if (strcmp(rr.uid, sa.uid)) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: JWT UIDs did not match");
		goto out;
	}
	if (strcmp(rr.ns, sa.ns)) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: JWT namespaces did not match");
		goto out;
	}
	rc = role_binds(role, rr.ns, rr.name, err);
	if (rc)
		goto out;
	if (*audience && !list_has(rr.audiences, audience)) {
		rc = verr_set(err, VERR_DENIED, "lookup failed: the API server did not confirm audience \"%s\"",
			      audience);
		goto out;
	}

	a = calloc(1, sizeof(*a));
	char alias[600], display[520];
	if (by_name)
		snprintf(alias, sizeof(alias), "%s/%s", sa.ns, sa.name);
	else
		snprintf(alias, sizeof(alias), "%s", sa.uid);
	snprintf(display, sizeof(display), "%s-%s", sa.ns, sa.name);
	if (!a) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	const char *tt = jstr(role, "token_type");
	a->policies = json_deep_copy(json_object_get(role, "token_policies"));
	a->metadata = json_pack("{s:s, s:s, s:s, s:s, s:s}", "role", role_name,
				"service_account_name", sa.name, "service_account_namespace", sa.ns,
				"service_account_secret_name", sa.secret_name,
				"service_account_uid", sa.uid);
	a->display_name = strdup(display);
	a->alias_name = strdup(alias);
	a->internal = json_pack("{s:s}", "role", role_name);
	a->ttl = jint(role, "token_ttl");
	a->max_ttl = jint(role, "token_max_ttl");
	a->explicit_max_ttl = jint(role, "token_explicit_max_ttl");
	a->period = jint(role, "token_period");
	a->num_uses = jint(role, "token_num_uses");
	a->renewable = true;
	a->no_default_policy = json_is_true(json_object_get(role, "token_no_default_policy"));
	/* "default*" leaves the choice to the mount/core (service tokens today) */
	a->token_type = strncmp(tt, "default", 7) ? strdup(tt) : NULL;
	if (json_array_size(cidrs))
		a->bound_cidrs = json_deep_copy(cidrs);
	if (!a->policies || !a->metadata || !a->display_name || !a->alias_name || !a->internal) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	resp->auth = a;
	a = NULL; /* transferred */
out:
	logical_auth_free(a);
	json_decref(rr.audiences);
	json_decref(auds);
	jwt_free(t);
	config_release(cfg);
	json_decref(role);
	return rc;
}

/* ---- table ---- */

static const struct field_def config_fields[] = {
	{"kubernetes_host", FT_STRING, NULL,
	 "Host string, host:port pair, or URL to the base of the Kubernetes API server.", false},
	{"kubernetes_ca_cert", FT_STRING, "", "PEM encoded CA cert for the Kubernetes API's TLS.", false},
	{"token_reviewer_jwt", FT_STRING, "",
	 "A service account JWT used to access the TokenReview API (never returned on read).", false},
	{"pem_keys", FT_STRSLICE, NULL,
	 "PEM public keys or certificates that verify service account JWT signatures.", false},
	{"issuer", FT_STRING, "", "Optional JWT issuer to require (deprecated).", false},
	{"disable_iss_validation", FT_BOOL, "true", "Skip issuer validation (deprecated).", false},
	{"disable_local_ca_jwt", FT_BOOL, "false",
	 "Do not default to the pod's local CA cert and service account token.", false},
	{NULL, 0, NULL, NULL, false},
};

static const struct field_def role_fields[] = {
	{"name", FT_NAME, NULL, "Name of the role.", false},
	{"bound_service_account_names", FT_STRSLICE, NULL, "Service account names allowed (\"*\": all).", false},
	{"bound_service_account_namespaces", FT_STRSLICE, NULL, "Namespaces allowed (\"*\": all, \"pre*\": prefix).", false},
	{"bound_service_account_namespace_selector", FT_STRING, NULL, "Not supported.", false},
	{"audience", FT_STRING, NULL, "Audience the JWT must carry.", false},
	{"alias_name_source", FT_STRING, NULL, "serviceaccount_uid (default) or serviceaccount_name.", false},
	{"token_policies", FT_STRSLICE, NULL, "Policies of issued tokens.", false},
	{"policies", FT_STRSLICE, NULL, "Deprecated: use token_policies.", false},
	{"token_ttl", FT_DURATION, NULL, "Initial TTL of issued tokens.", false},
	{"ttl", FT_DURATION, NULL, "Deprecated: use token_ttl.", false},
	{"token_max_ttl", FT_DURATION, NULL, "Maximum TTL of issued tokens.", false},
	{"max_ttl", FT_DURATION, NULL, "Deprecated: use token_max_ttl.", false},
	{"token_period", FT_DURATION, NULL, "Period of issued (periodic) tokens.", false},
	{"period", FT_DURATION, NULL, "Deprecated: use token_period.", false},
	{"token_num_uses", FT_INT, NULL, "Use limit of issued tokens (0: unlimited).", false},
	{"num_uses", FT_INT, NULL, "Deprecated: use token_num_uses.", false},
	{"token_bound_cidrs", FT_STRSLICE, NULL, "CIDRs allowed to log in with and use issued tokens.", false},
	{"bound_cidrs", FT_STRSLICE, NULL, "Deprecated: use token_bound_cidrs.", false},
	{"token_explicit_max_ttl", FT_DURATION, NULL, "Hard cap on the TTL of issued tokens.", false},
	{"token_no_default_policy", FT_BOOL, NULL, "Do not add the default policy.", false},
	{"token_type", FT_STRING, NULL, "default, service, batch, default-service or default-batch.", false},
	{NULL, 0, NULL, NULL, false},
};

static const struct field_def login_fields[] = {
	{"role", FT_STRING, "", "Name of the role against which the login is being attempted.", false},
	{"jwt", FT_STRING, "", "The service account JWT.", false},
	{NULL, 0, NULL, NULL, false},
};

static const struct path_def k8s_paths[] = {
	{.pattern = "config",
	 .fields = config_fields,
	 .ops = {{LOP_READ, config_read}, {LOP_CREATE, config_write}, {LOP_UPDATE, config_write}},
	 .help = "Configure the Kubernetes API server (host, CA, reviewer JWT) and optional "
		 "public keys that verify service account JWTs."},
	{.pattern = "role/?",
	 .ops = {{LOP_LIST, role_list}},
	 .help = "List the roles."},
	{.pattern = "role/{name}",
	 .fields = role_fields,
	 .ops = {{LOP_READ, role_read},
		 {LOP_CREATE, role_write},
		 {LOP_UPDATE, role_write},
		 {LOP_DELETE, role_delete}},
	 .exists = role_exists,
	 .help = "A role binds service account names and namespaces to token policies and settings."},
	{.pattern = "login",
	 .fields = login_fields,
	 .ops = {{LOP_UPDATE, login}, {LOP_CREATE, login}},
	 .unauthenticated = true,
	 .help = "Log in with a role and a service account JWT."},
	{0},
};

/* ---- instance ---- */

static int k8s_init(void **out, const struct mount_info *mi, struct verr *err)
{
	*out = NULL;
	struct k8s_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->role_lock, NULL);
	pthread_once(&curl_once, curl_init_once);
	*out = b;
	return 0;
}

static void k8s_cleanup(void *inst)
{
	struct k8s_backend *b = inst;
	if (!b)
		return;
	config_release(b->cfg);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->role_lock);
	free(b);
}

static const struct path_def *k8s_table(void *inst)
{
	return k8s_paths;
}

const struct backend_ops kubernetes_backend_ops = {
	.version = BACKEND_OPS_VERSION,
	.type = "kubernetes",
	.is_auth = true,
	.init = k8s_init,
	.cleanup = k8s_cleanup,
	.paths = k8s_table,
};
