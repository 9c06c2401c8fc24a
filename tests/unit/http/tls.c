/*
 * Unit tests for the listener's TLS (src/http/tls.c + listener.c): certs are
 * generated at test time with OpenSSL, the client is OpenSSL over a real
 * socket. Handshake, minimum versions, client certificates passed to the
 * core (and verified against tls_client_ca_file when set), required client
 * certs, and SIGHUP-style reload serving the new certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http_test.h"

static char dir[64];

static char *path_of(const char *name)
{
	static char buf[8][128];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       bool ca, long serial)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

static void write_pem(const char *name, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path_of(name), "w");
	assert_non_null(f);
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static char *read_file(const char *name)
{
	FILE *f = fopen(path_of(name), "r");
	char *buf = calloc(1, 65536);
	size_t n;
	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static X509 *server_a, *server_b;

/* ca.pem/ca.key; server_a.pem/.key, server_b.pem/.key (self-signed EC and
 * RSA); client.pem/.key signed by the CA; rogue.pem/.key self-signed. */
static int make_pki(void **state)
{
	EVP_PKEY *ca_k = EVP_EC_gen("P-256"), *a_k = EVP_EC_gen("P-256");
	EVP_PKEY *b_k = EVP_RSA_gen(2048), *c_k = EVP_EC_gen("P-256"), *r_k = EVP_EC_gen("P-256");
	X509 *ca = make_cert(ca_k, "test ca", NULL, NULL, true, 1);
	X509 *client = make_cert(c_k, "client", ca, ca_k, false, 2);
	X509 *rogue = make_cert(r_k, "rogue", NULL, NULL, false, 3);

	snprintf(dir, sizeof(dir), "/tmp/coffer-http-tls-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	server_a = make_cert(a_k, "server a", NULL, NULL, false, 10);
	server_b = make_cert(b_k, "server b", NULL, NULL, false, 11);
	write_pem("ca.pem", ca, NULL);
	write_pem("server_a.pem", server_a, NULL);
	write_pem("server_a.key", NULL, a_k);
	write_pem("server_b.pem", server_b, NULL);
	write_pem("server_b.key", NULL, b_k);
	write_pem("client.pem", client, NULL);
	write_pem("client.key", NULL, c_k);
	write_pem("rogue.pem", rogue, NULL);
	write_pem("rogue.key", NULL, r_k);
	/* the files the listener is configured with */
	write_pem("server.pem", server_a, NULL);
	write_pem("server.key", NULL, a_k);
	X509_free(ca);
	X509_free(client);
	X509_free(rogue);
	EVP_PKEY_free(ca_k);
	EVP_PKEY_free(a_k);
	EVP_PKEY_free(b_k);
	EVP_PKEY_free(c_k);
	EVP_PKEY_free(r_k);
	return 0;
}

static int drop_pki(void **state)
{
	const char *names[] = {"ca.pem", "server_a.pem", "server_a.key", "server_b.pem",
			       "server_b.key", "client.pem", "client.key", "rogue.pem",
			       "rogue.key", "server.pem", "server.key"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(path_of(names[i]));
	rmdir(dir);
	X509_free(server_a);
	X509_free(server_b);
	fake_reset(NULL);
	return 0;
}

struct tls_conn {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

static void tls_close(struct tls_conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* 0 when the handshake completed. version 0: any. */
static int tls_open(struct tls_conn *c, int port, int version, const char *cert)
{
	memset(c, 0, sizeof(*c));
	c->fd = connect_to(port);
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (c->fd < 0 || !c->ctx)
		return -1;
	if (version) {
		SSL_CTX_set_security_level(c->ctx, 0); /* let the client offer TLS 1.1 */
		SSL_CTX_set_min_proto_version(c->ctx, version);
		SSL_CTX_set_max_proto_version(c->ctx, version);
	}
	if (cert) {
		char name[64];
		snprintf(name, sizeof(name), "%s.pem", cert);
		if (SSL_CTX_use_certificate_file(c->ctx, path_of(name), SSL_FILETYPE_PEM) != 1)
			return -1;
		snprintf(name, sizeof(name), "%s.key", cert);
		if (SSL_CTX_use_PrivateKey_file(c->ctx, path_of(name), SSL_FILETYPE_PEM) != 1)
			return -1;
	}
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* One GET over an open TLS connection; 0 and *out on a full response. */
static int tls_get(struct tls_conn *c, const char *path, struct http_resp *out)
{
	char req[256], buf[65536];
	size_t n = 0;
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	memset(out, 0, sizeof(*out));
	if (SSL_write(c->ssl, req, len) != len) {
		ERR_clear_error();
		return -1;
	}
	for (;;) {
		int r = SSL_read(c->ssl, buf + n, (int)(sizeof(buf) - n));
		if (r <= 0) {
			ERR_clear_error();
			return -1;
		}
		n += (size_t)r;
		if (parse_resp(out, buf, n, false))
			return 0;
	}
}

static bool served_cert_is(struct tls_conn *c, X509 *want)
{
	X509 *got = SSL_get1_peer_certificate(c->ssl);
	bool same = got && X509_cmp(got, want) == 0;
	X509_free(got);
	return same;
}

static struct http_listener *start(const char *ca, bool require, const char *min)
{
	struct http_listener *l = NULL;
	struct http_listener_opts o = {
		.address = "127.0.0.1:0",
		.tls_cert_file = path_of("server.pem"),
		.tls_key_file = path_of("server.key"),
		.tls_client_ca_file = ca ? path_of(ca) : NULL,
		.tls_require_client_cert = require,
		.tls_min_version = min,
	};
	struct verr e;
	if (http_listener_start(&l, &o, NULL, &e))
		fprintf(stderr, "start: %s\n", e.msg);
	return l;
}

static void test_http_tls__handshake_and_request(void **state)
{
	struct http_listener *l = start(NULL, false, NULL);
	struct tls_conn c;
	struct http_resp r;
	assert_non_null(l);
	fake_reset(NULL);
	assert_int_equal(tls_open(&c, http_listener_port(l), 0, NULL), 0);
	assert_true(served_cert_is(&c, server_a));
	assert_int_equal(tls_get(&c, "/v1/secret/tls", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(fake.path, "secret/tls");
	assert_null(fake.cert_pem); /* requested, but none presented */
	http_resp_free(&r);
	/* keep-alive over TLS */
	assert_int_equal(tls_get(&c, "/v1/secret/again", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	tls_close(&c);
	http_listener_stop(l);
}

static void test_http_tls__minimum_versions(void **state)
{
	struct http_listener *l = start(NULL, false, "tls12");
	struct tls_conn c;
	assert_non_null(l);
	assert_int_equal(tls_open(&c, http_listener_port(l), TLS1_2_VERSION, NULL), 0);
	tls_close(&c);
	assert_int_equal(tls_open(&c, http_listener_port(l), TLS1_3_VERSION, NULL), 0);
	tls_close(&c);
	assert_int_not_equal(tls_open(&c, http_listener_port(l), TLS1_1_VERSION, NULL), 0);
	tls_close(&c);
	assert_int_not_equal(tls_open(&c, http_listener_port(l), TLS1_VERSION, NULL), 0);
	tls_close(&c);
	http_listener_stop(l);

	l = start(NULL, false, "tls13");
	assert_non_null(l);
	assert_int_not_equal(tls_open(&c, http_listener_port(l), TLS1_2_VERSION, NULL), 0);
	tls_close(&c);
	assert_int_equal(tls_open(&c, http_listener_port(l), TLS1_3_VERSION, NULL), 0);
	tls_close(&c);
	http_listener_stop(l);

	struct http_listener_opts o = {.address = "127.0.0.1:0",
				       .tls_cert_file = path_of("server.pem"),
				       .tls_key_file = path_of("server.key"),
				       .tls_min_version = "tls10"};
	struct verr e;
	assert_int_equal(http_listener_start(&l, &o, NULL, &e), VERR_INVALID);
	o.tls_min_version = NULL;
	o.tls_key_file = path_of("server_b.key"); /* does not match the cert */
	assert_int_equal(http_listener_start(&l, &o, NULL, &e), VERR_INVALID);
}

static void test_http_tls__client_cert_passed_through(void **state)
{
	struct http_listener *l = start(NULL, false, NULL);
	struct tls_conn c;
	struct http_resp r;
	char *pem = read_file("rogue.pem");
	assert_non_null(l);
	fake_reset(NULL);
	/* without a client CA, any certificate is passed to the core as is */
	assert_int_equal(tls_open(&c, http_listener_port(l), 0, "rogue"), 0);
	assert_int_equal(tls_get(&c, "/v1/auth/cert/login", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(fake.cert_pem);
	assert_string_equal(fake.cert_pem, pem);
	http_resp_free(&r);
	tls_close(&c);
	free(pem);
	http_listener_stop(l);
}

static void test_http_tls__client_ca_verifies(void **state)
{
	struct http_listener *l = start("ca.pem", false, NULL);
	struct tls_conn c;
	struct http_resp r;
	char *pem = read_file("client.pem");
	assert_non_null(l);
	fake_reset(NULL);
	assert_int_equal(tls_open(&c, http_listener_port(l), 0, "client"), 0);
	assert_int_equal(tls_get(&c, "/v1/auth/cert/login", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(fake.cert_pem, pem);
	http_resp_free(&r);
	tls_close(&c);

	/* a certificate from elsewhere is refused (TLS 1.3 reports it on read) */
	fake_reset(NULL);
	if (tls_open(&c, http_listener_port(l), 0, "rogue") == 0)
		assert_int_not_equal(tls_get(&c, "/v1/auth/cert/login", &r), 0);
	tls_close(&c);
	assert_int_equal(fake.calls, 0);

	/* none at all is fine when not required */
	assert_int_equal(tls_open(&c, http_listener_port(l), 0, NULL), 0);
	assert_int_equal(tls_get(&c, "/v1/sys/health", &r), 0);
	assert_int_equal(r.status, 200);
	assert_null(fake.cert_pem);
	http_resp_free(&r);
	tls_close(&c);
	free(pem);
	http_listener_stop(l);
}

static void test_http_tls__client_cert_required(void **state)
{
	struct http_listener *l = start("ca.pem", true, NULL);
	struct tls_conn c;
	struct http_resp r;
	assert_non_null(l);
	fake_reset(NULL);
	if (tls_open(&c, http_listener_port(l), 0, NULL) == 0)
		assert_int_not_equal(tls_get(&c, "/v1/sys/health", &r), 0);
	tls_close(&c);
	assert_int_equal(fake.calls, 0);
	assert_int_equal(tls_open(&c, http_listener_port(l), 0, "client"), 0);
	assert_int_equal(tls_get(&c, "/v1/sys/health", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	tls_close(&c);
	http_listener_stop(l);
}

static void copy_file(const char *from, const char *to)
{
	char *s = read_file(from);
	FILE *f = fopen(path_of(to), "w");
	fputs(s, f);
	fclose(f);
	free(s);
}

static void test_http_tls__reload_serves_new_cert(void **state)
{
	struct http_listener *l = start(NULL, false, NULL);
	struct tls_conn before, after;
	struct http_resp r;
	struct verr e;
	assert_non_null(l);
	assert_int_equal(tls_open(&before, http_listener_port(l), 0, NULL), 0);
	assert_true(served_cert_is(&before, server_a));

	/* a broken file: reload fails, the old certificate stays */
	FILE *f = fopen(path_of("server.pem"), "w");
	fputs("not a certificate\n", f);
	fclose(f);
	assert_int_equal(http_listener_reload_tls(l, &e), VERR_INVALID);
	assert_int_equal(tls_open(&after, http_listener_port(l), 0, NULL), 0);
	assert_true(served_cert_is(&after, server_a));
	tls_close(&after);

	copy_file("server_b.pem", "server.pem");
	copy_file("server_b.key", "server.key");
	assert_int_equal(http_listener_reload_tls(l, &e), 0);
	assert_int_equal(tls_open(&after, http_listener_port(l), 0, NULL), 0);
	assert_true(served_cert_is(&after, server_b));
	assert_int_equal(tls_get(&after, "/v1/secret/new", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);

	/* the connection opened before the reload still works */
	assert_int_equal(tls_get(&before, "/v1/secret/old", &r), 0);
	assert_int_equal(r.status, 200);
	http_resp_free(&r);
	tls_close(&before);
	tls_close(&after);
	http_listener_stop(l);
	copy_file("server_a.pem", "server.pem");
	copy_file("server_a.key", "server.key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_tls__handshake_and_request),
		cmocka_unit_test(test_http_tls__minimum_versions),
		cmocka_unit_test(test_http_tls__client_cert_passed_through),
		cmocka_unit_test(test_http_tls__client_ca_verifies),
		cmocka_unit_test(test_http_tls__client_cert_required),
		cmocka_unit_test(test_http_tls__reload_serves_new_cert),
	};
	return cmocka_run_group_tests(tests, make_pki, drop_pki);
}
