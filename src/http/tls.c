/*
 * tls.c - server TLS credentials for the listener, and their reload.
 *
 * libmicrohttpd cannot swap a running daemon's certificate, so the listener
 * gives every new connection our own credentials instead: in its
 * connection-started callback (before the handshake) it calls
 * http__tls_attach(), which sets the current reference-counted GnuTLS
 * credentials on the session and asks for a client certificate. A reload
 * builds new credentials from the files and swaps the current pointer under
 * the mutex; connections that hold the old set keep it until they close, and
 * the last one to let go frees it. No connection is dropped by a reload.
 *
 * Client certificates: always requested (GNUTLS_CERT_REQUEST), required when
 * tls_require_client_cert; verified during the handshake only when
 * tls_client_ca_file is set (like Go's VerifyClientCertIfGiven). The leaf
 * and the intermediates the client sent are handed to the core as PEM,
 * leaf first.
 *
 * Thread-safety: attach/detach/reload may run concurrently (t->mu).
 */
#include "http/http_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "core/core.h"
#include "util/secmem.h"

struct cred {
	gnutls_certificate_credentials_t x509;
	unsigned refs; /* connections + 1 while current; guarded by http_tls.mu */
};

struct http_tls {
	pthread_mutex_t mu;
	struct cred *cur;
	struct core *cluster_core; /* cluster mode: credentials from the core */
	uint64_t cluster_gen;      /* of cur, in cluster mode */
	char *cert_file, *key_file, *ca_file;
	bool require_client_cert;
	const char *priorities;
};

static void cred_free(struct cred *c)
{
	if (!c)
		return;
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	free(c);
}

/* Handshake-time check of a presented client certificate against the CA. */
static int verify_client(gnutls_session_t s)
{
	unsigned n = 0, status = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
	if (!peers || n == 0)
		return 0; /* none presented: GNUTLS_CERT_REQUIRE decides */
	if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0)
		return GNUTLS_E_CERTIFICATE_ERROR;
	return 0;
}

static int cred_load(struct cred **out, const struct http_tls *t, struct verr *err)
{
	struct cred *c = calloc(1, sizeof(*c));
	int rc;
	*out = NULL;
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (gnutls_certificate_allocate_credentials(&c->x509) < 0) {
		free(c);
		return verr_set(err, VERR_INTERNAL, "cannot allocate TLS credentials");
	}
	/* also checks that the key matches the certificate */
	rc = gnutls_certificate_set_x509_key_file2(c->x509, t->cert_file, t->key_file,
						   GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		cred_free(c);
		return verr_set(err, VERR_INVALID, "cannot load TLS certificate %s and key %s: %s",
				t->cert_file, t->key_file, gnutls_strerror(rc));
	}
	if (t->ca_file) {
		rc = gnutls_certificate_set_x509_trust_file(c->x509, t->ca_file,
							    GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			cred_free(c);
			return verr_set(err, VERR_INVALID, "cannot load TLS client CA file %s: %s",
					t->ca_file, rc < 0 ? gnutls_strerror(rc) : "no certificate");
		}
		gnutls_certificate_set_verify_function(c->x509, verify_client);
	}
	c->refs = 1;
	*out = c;
	return 0;
}

/* Cluster mode: the cluster certificate is the server's certificate, the
 * only trusted CA, and required of every client. */
static int cred_load_cluster(struct cred **out, struct http_tls *t, uint64_t *gen)
{
	char *cert = NULL, *key = NULL;
	size_t kl = 0;
	*out = NULL;
	if (core_cluster_tls(t->cluster_core, &cert, &key, &kl, gen))
		return -1;
	struct cred *c = calloc(1, sizeof(*c));
	gnutls_datum_t cd = {(unsigned char *)cert, (unsigned)strlen(cert)};
	gnutls_datum_t kd = {(unsigned char *)key, (unsigned)kl};
	int rc = -1;
	if (c && gnutls_certificate_allocate_credentials(&c->x509) >= 0 &&
	    gnutls_certificate_set_x509_key_mem2(c->x509, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) >= 0 &&
	    gnutls_certificate_set_x509_trust_mem(c->x509, &cd, GNUTLS_X509_FMT_PEM) > 0) {
		gnutls_certificate_set_verify_function(c->x509, verify_client);
		c->refs = 1;
		*out = c;
		rc = 0;
	}
	free(cert);
	secmem_free(key, kl + 1);
	if (rc)
		cred_free(c);
	return rc;
}

void http__tls_free(struct http_tls *t)
{
	if (!t)
		return;
	/* every connection is closed by now: only the current set remains */
	cred_free(t->cur);
	free(t->cert_file);
	free(t->key_file);
	free(t->ca_file);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int http__tls_new(struct http_tls **out, const struct http_listener_opts *o, struct verr *err)
{
	struct http_tls *t;
	const char *v = o->tls_min_version;
	int rc;

	*out = NULL;
	if (!o->tls_cert_file || !*o->tls_cert_file || !o->tls_key_file || !*o->tls_key_file)
		return verr_set(err, VERR_INVALID,
				"tls_cert_file and tls_key_file are required unless tls_disable is set");
	t = calloc(1, sizeof(*t));
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	if (!v || !*v || strcmp(v, "tls12") == 0) {
		t->priorities = "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
	} else if (strcmp(v, "tls13") == 0) {
		t->priorities = "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3";
	} else {
		http__tls_free(t);
		return verr_set(err, VERR_INVALID,
				"unsupported tls_min_version \"%s\" (use tls12 or tls13)", v);
	}
	t->cert_file = strdup(o->tls_cert_file);
	t->key_file = strdup(o->tls_key_file);
	t->ca_file = o->tls_client_ca_file && *o->tls_client_ca_file
			     ? strdup(o->tls_client_ca_file) : NULL;
	t->require_client_cert = o->tls_require_client_cert;
	if (!t->cert_file || !t->key_file ||
	    (o->tls_client_ca_file && *o->tls_client_ca_file && !t->ca_file)) {
		http__tls_free(t);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	rc = cred_load(&t->cur, t, err);
	if (rc) {
		http__tls_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int http__tls_new_cluster(struct http_tls **out, struct core *core, struct verr *err)
{
	struct http_tls *t = calloc(1, sizeof(*t));
	*out = NULL;
	if (!t)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	t->priorities = "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3";
	t->require_client_cert = true;
	t->cluster_core = core;
	*out = t;
	return 0;
}

int http__tls_reload(struct http_tls *t, struct verr *err)
{
	if (t->cluster_core)
		return 0; /* follows the core's material by itself */
	struct cred *c, *old;
	int rc = cred_load(&c, t, err);
	if (rc)
		return rc; /* keep serving with the old set */
	pthread_mutex_lock(&t->mu);
	old = t->cur;
	t->cur = c;
	if (--old->refs == 0)
		cred_free(old);
	pthread_mutex_unlock(&t->mu);
	return 0;
}

const char *http__tls_priorities(const struct http_tls *t)
{
	return t->priorities;
}

void *http__tls_attach(struct http_tls *t, void *session)
{
	gnutls_session_t s = session;
	struct cred *c;
	if (t->cluster_core) {
		/* pick up the cluster certificate once the core has it (unseal),
		 * and again whenever it changes */
		uint64_t gen = 0;
		struct cred *fresh = NULL;
		pthread_mutex_lock(&t->mu);
		bool stale = !t->cur;
		pthread_mutex_unlock(&t->mu);
		char *cp = NULL, *kp = NULL;
		size_t kl = 0;
		if (core_cluster_tls(t->cluster_core, &cp, &kp, &kl, &gen) == 0) {
			free(cp);
			secmem_free(kp, kl + 1);
			pthread_mutex_lock(&t->mu);
			stale = stale || gen != t->cluster_gen;
			pthread_mutex_unlock(&t->mu);
		} else {
			return NULL; /* sealed: no credentials, the handshake fails */
		}
		if (stale && cred_load_cluster(&fresh, t, &gen) == 0) {
			pthread_mutex_lock(&t->mu);
			struct cred *old = t->cur;
			t->cur = fresh;
			t->cluster_gen = gen;
			if (old && --old->refs == 0)
				cred_free(old);
			pthread_mutex_unlock(&t->mu);
		}
	}
	pthread_mutex_lock(&t->mu);
	c = t->cur;
	if (!c) {
		pthread_mutex_unlock(&t->mu);
		return NULL;
	}
	c->refs++;
	pthread_mutex_unlock(&t->mu);
	if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509) < 0) {
		http__tls_detach(t, c);
		return NULL;
	}
	gnutls_certificate_server_set_request(
		s, t->require_client_cert ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
	return c;
}

void http__tls_detach(struct http_tls *t, void *handle)
{
	struct cred *c = handle;
	bool last;
	if (!c)
		return;
	pthread_mutex_lock(&t->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&t->mu);
	if (last)
		cred_free(c);
}

char *http__tls_peer_pem(void *session)
{
	unsigned n = 0;
	const gnutls_datum_t *peers;
	char *out = NULL;
	size_t len = 0;

	if (!session)
		return NULL;
	peers = gnutls_certificate_get_peers(session, &n);
	if (!peers || n == 0)
		return NULL;
	/* the leaf first, then the intermediates the client sent (the cert
	 * auth method builds the chain to its trusted CAs from them) */
	for (unsigned i = 0; i < n && i < 8; i++) {
		gnutls_datum_t pem = {NULL, 0};
		if (gnutls_pem_base64_encode2("CERTIFICATE", &peers[i], &pem) < 0)
			break;
		char *grown = realloc(out, len + pem.size + 1);
		if (!grown) {
			gnutls_free(pem.data);
			break;
		}
		out = grown;
		memcpy(out + len, pem.data, pem.size);
		len += pem.size;
		out[len] = '\0';
		gnutls_free(pem.data);
	}
	return out;
}
