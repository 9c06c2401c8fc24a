/*
 * tests/unit/auth/kubernetes.c - the kubernetes auth method's own logic,
 * without a network peer: role binding (globs), claims of legacy and
 * projected tokens, host normalisation, CIDRs, the config and role paths,
 * and the login steps that fail before or at the TokenReview call (missing
 * role, unconfigured mount, wrong namespace/name, expiry, pem_keys
 * verification, an unreachable API server). The TokenReview exchange itself
 * is tested end to end against tests/e2e/k8s_peer.py. Includes the .c to
 * reach its statics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../../src/auth/kubernetes.c"

#include <openssl/evp.h>
#include <openssl/pem.h>

struct kt {
	struct physical *phys;
	struct storage_view view;
	void *inst;
	struct logical_response resp;
	struct verr err;
};

static void kt_open(struct kt *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(physical_inmem_new(&t->phys, NULL, NULL), 0);
	storage_view_init(&t->view, t->phys, "auth/uuid-k8s/");
	struct mount_info mi = {.path = "auth/kubernetes/", .uuid = "uuid-k8s", .type = "kubernetes",
				.storage = &t->view};
	assert_int_equal(kubernetes_backend_ops.init(&t->inst, &mi, &t->err), 0);
}

static void kt_close(struct kt *t)
{
	logical_response_reset(&t->resp);
	kubernetes_backend_ops.cleanup(t->inst);
	physical_close(t->phys);
}

/* data is consumed */
static int kt_do(struct kt *t, enum logical_op op, const char *path, json_t *data)
{
	logical_response_reset(&t->resp);
	memset(&t->err, 0, sizeof(t->err));
	struct logical_request req = {.op = op, .rel_path = path, .data = data ? data : json_object(),
				      .storage = &t->view, .backend = t->inst,
				      .mount_type = "kubernetes", .remote_addr = "127.0.0.1"};
	int rc = framework_handle(kubernetes_backend_ops.paths(t->inst), &req, &t->resp, &t->err);
	json_decref(req.data);
	return rc;
}

/* ---- tokens ---- */

static char *b64u(const char *in, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = al[(v >> 18) & 63];
		out[o++] = al[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = al[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = al[v & 63];
	}
	out[o] = '\0';
	return out;
}

static EVP_PKEY *sign_key;
static char *sign_key_pem;

/* A legacy service account token for ns/name; signed by sign_key when
 * `sign`, else with a junk signature (the claims are still readable). */
static char *sa_token(const char *ns, const char *name, long exp_delta, bool sign)
{
	char claims[1024];
	long now = (long)time(NULL);
	int n = snprintf(claims, sizeof(claims),
			 "{\"iss\":\"kubernetes/serviceaccount\","
			 "\"kubernetes.io/serviceaccount/namespace\":\"%s\","
			 "\"kubernetes.io/serviceaccount/service-account.name\":\"%s\","
			 "\"kubernetes.io/serviceaccount/service-account.uid\":\"uid-1\","
			 "\"kubernetes.io/serviceaccount/secret.name\":\"%s-token-x\"",
			 ns, name, name);
	if (exp_delta)
		n += snprintf(claims + n, sizeof(claims) - (size_t)n, ",\"exp\":%ld", now + exp_delta);
	snprintf(claims + n, sizeof(claims) - (size_t)n, "}");
	const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	char *h = b64u(hdr, strlen(hdr)), *p = b64u(claims, strlen(claims));
	char input[2048];
	snprintf(input, sizeof(input), "%s.%s", h, p);
	unsigned char sig[512];
	size_t sl = sizeof(sig);
	if (sign) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, sign_key, NULL), 1);
		assert_int_equal(EVP_DigestSign(m, sig, &sl, (unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(m);
	} else {
		memset(sig, 7, 256);
		sl = 256;
	}
	char *s = b64u((const char *)sig, sl);
	size_t tl = strlen(input) + strlen(s) + 2;
	char *tok = malloc(tl);
	snprintf(tok, tl, "%s.%s", input, s);
	free(h);
	free(p);
	free(s);
	return tok;
}

static int setup(void **state)
{
	sign_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, sign_key);
	char *d;
	long n = BIO_get_mem_data(b, &d);
	sign_key_pem = strndup(d, (size_t)n);
	BIO_free(b);
	return sign_key ? 0 : -1;
}

static int teardown(void **state)
{
	EVP_PKEY_free(sign_key);
	free(sign_key_pem);
	return 0;
}

/* a loopback port nobody listens on */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

static void configure(struct kt *t, const char *host, bool with_keys)
{
	json_t *cfg = json_pack("{s:s, s:b}", "kubernetes_host", host, "disable_local_ca_jwt", 1);
	if (with_keys)
		json_object_set_new(cfg, "pem_keys", json_pack("[s]", sign_key_pem));
	assert_int_equal(kt_do(t, LOP_UPDATE, "config", cfg), 0);
}

static void demo_role(struct kt *t)
{
	assert_int_equal(kt_do(t, LOP_CREATE, "role/demo",
			       json_pack("{s:s, s:s, s:s, s:s}", "bound_service_account_names", "app",
					 "bound_service_account_namespaces", "default,team-*",
					 "token_policies", "dev", "token_ttl", "1h")),
			 0);
}

static int do_login(struct kt *t, const char *role, const char *jwt)
{
	return kt_do(t, LOP_UPDATE, "login", json_pack("{s:s, s:s}", "role", role, "jwt", jwt));
}

/* ---- pure logic ---- */

static void test_auth_kubernetes__glob_match(void **state)
{
	assert_true(glob_match("*", "anything"));
	assert_true(glob_match("*", ""));
	assert_true(glob_match("team-*", "team-blue"));
	assert_true(glob_match("team-*", "team-"));
	assert_false(glob_match("team-*", "team"));
	assert_false(glob_match("team-*", "other-team-blue"));
	assert_true(glob_match("*-prod", "api-prod"));
	assert_false(glob_match("*-prod", "api-prod2"));
	assert_true(glob_match("*mid*", "a-mid-b"));
	assert_false(glob_match("*mid*", "a-mi-d"));
	assert_true(glob_match("default", "default"));
	assert_false(glob_match("default", "default2"));
	assert_false(glob_match("default", "Default"));
}

static void test_auth_kubernetes__role_binds(void **state)
{
	struct verr e = {0};
	json_t *role = json_pack("{s:[s], s:[s,s]}", "bound_service_account_names", "app",
				 "bound_service_account_namespaces", "default", "team-*");
	assert_int_equal(role_binds(role, "default", "app", &e), 0);
	assert_int_equal(role_binds(role, "team-red", "app", &e), 0);
	assert_int_equal(role_binds(role, "kube-system", "app", &e), VERR_DENIED);
	assert_string_equal(e.msg, "namespace not authorized");
	assert_int_equal(role_binds(role, "default", "db", &e), VERR_DENIED);
	assert_string_equal(e.msg, "service account name not authorized");
	/* the name is checked first, like Vault */
	assert_int_equal(role_binds(role, "kube-system", "db", &e), VERR_DENIED);
	assert_string_equal(e.msg, "service account name not authorized");
	json_decref(role);
	role = json_pack("{s:[s], s:[s]}", "bound_service_account_names", "*",
			 "bound_service_account_namespaces", "*");
	assert_int_equal(role_binds(role, "x", "y", &e), 0);
	json_decref(role);
}

static void test_auth_kubernetes__claims_legacy_and_projected(void **state)
{
	struct k8s_sa sa;
	json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "kubernetes.io/serviceaccount/namespace", "ns1",
			      "kubernetes.io/serviceaccount/service-account.name", "app",
			      "kubernetes.io/serviceaccount/service-account.uid", "u-1",
			      "kubernetes.io/serviceaccount/secret.name", "app-token-abc");
	sa_from_claims(&sa, c);
	assert_string_equal(sa.ns, "ns1");
	assert_string_equal(sa.name, "app");
	assert_string_equal(sa.uid, "u-1");
	assert_string_equal(sa.secret_name, "app-token-abc");
	json_decref(c);
	/* projected tokens: the "kubernetes.io" object wins */
	c = json_pack("{s:{s:s, s:{s:s, s:s}, s:{s:s, s:s}}}", "kubernetes.io", "namespace", "ns2",
		      "serviceaccount", "name", "worker", "uid", "u-2", "pod", "name", "p", "uid", "pu");
	sa_from_claims(&sa, c);
	assert_string_equal(sa.ns, "ns2");
	assert_string_equal(sa.name, "worker");
	assert_string_equal(sa.uid, "u-2");
	assert_string_equal(sa.secret_name, "");
	json_decref(c);
	c = json_object();
	sa_from_claims(&sa, c);
	assert_string_equal(sa.name, "");
	json_decref(c);
}

/* token_bound_cidrs matching now lives in util/cidr.h; the login check is
 * cidr_list_allows over the role's list, so test it the same way. */
static bool block_contains(const char *block, const char *addr)
{
	json_t *l = json_pack("[s]", block);
	bool ok = cidr_list_allows(l, addr);
	json_decref(l);
	return ok;
}

static void test_auth_kubernetes__host_and_cidrs(void **state)
{
	char *h = NULL;
	struct verr e = {0};
	assert_int_equal(normalise_host(&h, "10.0.0.1:6443", &e), 0);
	assert_string_equal(h, "https://10.0.0.1:6443");
	free(h);
	assert_int_equal(normalise_host(&h, "https://k8s.example:443/", &e), 0);
	assert_string_equal(h, "https://k8s.example:443");
	free(h);
	assert_int_equal(normalise_host(&h, "", &e), VERR_INVALID);
	assert_int_equal(normalise_host(&h, "ftp://x", &e), VERR_INVALID);
	assert_int_equal(normalise_host(&h, "https://a b", &e), VERR_INVALID);
	assert_true(block_contains("127.0.0.0/8", "127.0.0.1"));
	assert_true(block_contains("10.1.2.3", "10.1.2.3"));
	assert_false(block_contains("10.0.0.0/8", "127.0.0.1"));
	assert_true(block_contains("::1/128", "::1"));
	assert_false(block_contains("::1/128", "127.0.0.1"));
	assert_false(block_contains("bogus", "127.0.0.1"));
	assert_false(block_contains("10.0.0.0/33", "10.0.0.1"));
}

/* ---- paths ---- */

static void test_auth_kubernetes__config_write_read(void **state)
{
	struct kt t;
	kt_open(&t);
	assert_int_equal(kt_do(&t, LOP_READ, "config", NULL), 0);
	assert_null(t.resp.data); /* not configured: no data (404 over HTTP) */
	char *rev = sa_token("kube-system", "reviewer", 0, false);
	json_t *cfg = json_pack("{s:s, s:s, s:[s]}", "kubernetes_host", "k8s.local:6443",
				"token_reviewer_jwt", rev, "pem_keys", sign_key_pem);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "config", cfg), 0);
	assert_int_equal(kt_do(&t, LOP_READ, "config", NULL), 0);
	assert_string_equal(json_string_value(json_object_get(t.resp.data, "kubernetes_host")),
			    "k8s.local:6443");
	assert_null(json_object_get(t.resp.data, "token_reviewer_jwt"));
	assert_int_equal(json_array_size(json_object_get(t.resp.data, "pem_keys")), 1);
	assert_true(json_is_true(json_object_get(t.resp.data, "disable_iss_validation")));
	char *dump = json_dumps(t.resp.data, 0);
	assert_null(strstr(dump, rev));
	free(dump);
	/* the cache holds the normalised host and the parsed key */
	struct k8s_config *c = NULL;
	assert_int_equal(config_get(t.inst, &t.view, &c, &t.err), 0);
	assert_string_equal(c->host, "https://k8s.local:6443");
	assert_int_equal(c->nkeys, 1);
	assert_string_equal(c->reviewer, rev);
	config_release(c);
	/* invalid configs are refused and leave the old one in place */
	assert_int_equal(kt_do(&t, LOP_UPDATE, "config", json_pack("{s:s}", "kubernetes_ca_cert", "x")),
			 VERR_INVALID);
	assert_string_equal(t.err.msg, "no host provided");
	assert_int_equal(kt_do(&t, LOP_UPDATE, "config",
			       json_pack("{s:s, s:[s]}", "kubernetes_host", "h", "pem_keys", "junk")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "config",
			       json_pack("{s:s, s:s}", "kubernetes_host", "h", "token_reviewer_jwt", "x y")),
			 VERR_INVALID);
	assert_non_null(strstr(t.err.msg, "whitespace"));
	assert_int_equal(kt_do(&t, LOP_READ, "config", NULL), 0);
	assert_string_equal(json_string_value(json_object_get(t.resp.data, "kubernetes_host")),
			    "k8s.local:6443");
	free(rev);
	kt_close(&t);
}

static void test_auth_kubernetes__config_persists_across_instances(void **state)
{
	struct kt t;
	kt_open(&t);
	configure(&t, "https://127.0.0.1:1", true);
	/* a new instance (unseal, remount) loads it from storage on first use */
	kubernetes_backend_ops.cleanup(t.inst);
	struct mount_info mi = {.path = "auth/kubernetes/", .storage = &t.view};
	assert_int_equal(kubernetes_backend_ops.init(&t.inst, &mi, &t.err), 0);
	struct k8s_config *c = NULL;
	assert_int_equal(config_get(t.inst, &t.view, &c, &t.err), 0);
	assert_non_null(c);
	assert_int_equal(c->nkeys, 1);
	config_release(c);
	kt_close(&t);
}

static void test_auth_kubernetes__role_crud(void **state)
{
	struct kt t;
	kt_open(&t);
	assert_int_equal(kt_do(&t, LOP_LIST, "role", NULL), VERR_NOT_FOUND);
	assert_int_equal(kt_do(&t, LOP_CREATE, "role/Demo",
			       json_pack("{s:s, s:s, s:s, s:i}", "bound_service_account_names", "app",
					 "bound_service_account_namespaces", "default", "policies",
					 "a,b", "ttl", 60)),
			 0);
	assert_non_null(t.resp.warnings); /* no audience */
	assert_int_equal(kt_do(&t, LOP_READ, "role/demo", NULL), 0);
	json_t *d = t.resp.data;
	assert_int_equal(json_array_size(json_object_get(d, "token_policies")), 2);
	assert_int_equal(json_array_size(json_object_get(d, "policies")), 2);
	assert_int_equal(json_integer_value(json_object_get(d, "token_ttl")), 60);
	assert_int_equal(json_integer_value(json_object_get(d, "ttl")), 60);
	assert_null(json_object_get(d, "max_ttl")); /* deprecated names only when used */
	assert_string_equal(json_string_value(json_object_get(d, "alias_name_source")),
			    "serviceaccount_uid");
	/* switching to the new name drops the old one */
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo", json_pack("{s:s}", "token_policies", "c")), 0);
	assert_int_equal(kt_do(&t, LOP_READ, "role/demo", NULL), 0);
	assert_null(json_object_get(t.resp.data, "policies"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(t.resp.data, "token_policies"), 0)), "c");
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(t.resp.data, "bound_service_account_names"), 0)),
			    "app");
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo",
			       json_pack("{s:s, s:s}", "token_policies", "x", "policies", "y")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo", json_pack("{s:s}", "token_type", "weird")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo",
			       json_pack("{s:s}", "token_bound_cidrs", "10.0.0.0/99")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo",
			       json_pack("{s:s}", "bound_service_account_namespace_selector", "{}")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "role/demo",
			       json_pack("{s:s}", "bound_service_account_namespaces", "*,x")),
			 VERR_INVALID);
	assert_int_equal(kt_do(&t, LOP_LIST, "role", NULL), 0);
	assert_int_equal(json_array_size(json_object_get(t.resp.data, "keys")), 1);
	assert_int_equal(kt_do(&t, LOP_DELETE, "role/DEMO", NULL), 0);
	assert_int_equal(kt_do(&t, LOP_READ, "role/demo", NULL), VERR_NOT_FOUND);
	kt_close(&t);
}

/* ---- login failures before / at the TokenReview ---- */

static void test_auth_kubernetes__login_early_errors(void **state)
{
	struct kt t;
	kt_open(&t);
	char *jwt = sa_token("default", "app", 0, false);
	assert_int_equal(kt_do(&t, LOP_UPDATE, "login", json_pack("{s:s}", "jwt", jwt)), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing role");
	assert_int_equal(kt_do(&t, LOP_UPDATE, "login", json_pack("{s:s}", "role", "demo")), VERR_INVALID);
	assert_string_equal(t.err.msg, "missing jwt");
	assert_int_equal(do_login(&t, "nope", jwt), VERR_INVALID);
	assert_string_equal(t.err.msg, "invalid role name \"nope\"");
	demo_role(&t);
	assert_int_equal(do_login(&t, "demo", jwt), VERR_INTERNAL);
	assert_string_equal(t.err.msg, "could not load backend configuration");
	/* configured but unreachable: the early checks still run first */
	char host[64];
	snprintf(host, sizeof(host), "https://127.0.0.1:%d", closed_port());
	configure(&t, host, false);
	char *other_ns = sa_token("kube-system", "app", 0, false);
	char *other_name = sa_token("default", "db", 0, false);
	char *expired = sa_token("default", "app", -3600, false);
	assert_int_equal(do_login(&t, "demo", other_ns), VERR_DENIED);
	assert_string_equal(t.err.msg, "namespace not authorized");
	assert_int_equal(do_login(&t, "demo", other_name), VERR_DENIED);
	assert_string_equal(t.err.msg, "service account name not authorized");
	assert_int_equal(do_login(&t, "demo", expired), VERR_DENIED);
	assert_non_null(strstr(t.err.msg, "expired"));
	assert_int_equal(do_login(&t, "demo", "a.b"), VERR_DENIED);
	assert_non_null(strstr(t.err.msg, "malformed"));
	/* all checks pass: the API server is down -> 500 naming it, no token */
	assert_int_equal(do_login(&t, "demo", jwt), VERR_INTERNAL);
	assert_non_null(strstr(t.err.msg, "could not reach the Kubernetes API server at https://127.0.0.1:"));
	assert_null(t.resp.auth);
	free(jwt);
	free(other_ns);
	free(other_name);
	free(expired);
	kt_close(&t);
}

static void test_auth_kubernetes__login_pem_keys(void **state)
{
	struct kt t;
	kt_open(&t);
	char host[64];
	snprintf(host, sizeof(host), "https://127.0.0.1:%d", closed_port());
	configure(&t, host, true);
	demo_role(&t);
	/* junk signature: refused locally, before any network call */
	char *forged = sa_token("default", "app", 0, false);
	assert_int_equal(do_login(&t, "demo", forged), VERR_DENIED);
	assert_non_null(strstr(t.err.msg, "signature"));
	/* a real signature passes verification and reaches the (down) server */
	char *good = sa_token("team-blue", "app", 0, true);
	assert_int_equal(do_login(&t, "demo", good), VERR_INTERNAL);
	assert_non_null(strstr(t.err.msg, "could not reach"));
	free(forged);
	free(good);
	kt_close(&t);
}

static void test_auth_kubernetes__bound_cidrs_at_login(void **state)
{
	struct kt t;
	kt_open(&t);
	configure(&t, "https://127.0.0.1:1", false);
	assert_int_equal(kt_do(&t, LOP_CREATE, "role/c",
			       json_pack("{s:s, s:s, s:s}", "bound_service_account_names", "*",
					 "bound_service_account_namespaces", "*", "token_bound_cidrs",
					 "10.0.0.0/8")),
			 0);
	char *jwt = sa_token("default", "app", 0, false);
	assert_int_equal(do_login(&t, "c", jwt), VERR_DENIED);
	assert_string_equal(t.err.msg, "permission denied");
	free(jwt);
	kt_close(&t);
}

static void test_auth_kubernetes__local_files(void **state)
{
	char dir[] = "/tmp/coffer-k8s-local-XXXXXX";
	assert_non_null(mkdtemp(dir));
	const char *saved = k8s_local_dir;
	k8s_local_dir = dir;
	size_t cap = 0;
	assert_null(read_local("token", &cap));
	char path[256];
	snprintf(path, sizeof(path), "%s/token", dir);
	FILE *f = fopen(path, "w");
	fputs("eyJhbGciOiJSUzI1NiJ9.e30.AAAA\n", f);
	fclose(f);
	char *tok = read_local("token", &cap);
	assert_non_null(tok);
	assert_string_equal(tok, "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"); /* newline trimmed */
	secmem_free(tok, cap);
	unlink(path);
	rmdir(dir);
	k8s_local_dir = saved;
}

/* Logins take config references while writes replace the config: run both
 * at once (meaningful under ASan/TSan: no use-after-free, no leak). */
struct race {
	struct kt *t;
	atomic_int stop;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop)) {
		struct k8s_config *c = NULL;
		struct verr e = {0};
		if (config_get(r->t->inst, &r->t->view, &c, &e) == 0 && c) {
			assert_non_null(c->host);
			assert_true(c->nkeys == 1);
			config_release(c);
		}
	}
	return NULL;
}

static void test_auth_kubernetes__config_swap_is_thread_safe(void **state)
{
	struct kt t;
	kt_open(&t);
	configure(&t, "https://127.0.0.1:1", true);
	struct race r = {.t = &t};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader, &r);
	for (int i = 0; i < 50; i++) {
		char host[64];
		snprintf(host, sizeof(host), "https://127.0.0.1:%d", 1000 + i);
		configure(&t, host, true);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct k8s_config *c = NULL;
	assert_int_equal(config_get(t.inst, &t.view, &c, &t.err), 0);
	assert_string_equal(c->host, "https://127.0.0.1:1049");
	config_release(c);
	kt_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auth_kubernetes__glob_match),
		cmocka_unit_test(test_auth_kubernetes__role_binds),
		cmocka_unit_test(test_auth_kubernetes__claims_legacy_and_projected),
		cmocka_unit_test(test_auth_kubernetes__host_and_cidrs),
		cmocka_unit_test(test_auth_kubernetes__config_write_read),
		cmocka_unit_test(test_auth_kubernetes__config_persists_across_instances),
		cmocka_unit_test(test_auth_kubernetes__role_crud),
		cmocka_unit_test(test_auth_kubernetes__login_early_errors),
		cmocka_unit_test(test_auth_kubernetes__login_pem_keys),
		cmocka_unit_test(test_auth_kubernetes__bound_cidrs_at_login),
		cmocka_unit_test(test_auth_kubernetes__local_files),
		cmocka_unit_test(test_auth_kubernetes__config_swap_is_thread_safe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
