/*
 * raft_transport.c - the raft storage backend's cluster transport: every
 * raft connection runs over TLS 1.3 with mutual certificate verification
 * against the cluster's raft CA (raft_tls.c). There is no plaintext mode.
 *
 * DESIGN
 * libraft drives a struct raft_uv_transport: it asks to listen, to connect
 * to (id, address), and hands every accepted or connected uv stream to its
 * own reader and writer. For each connection this file runs one thread:
 *   1. TCP connect (or the accepted socket), TCP_NODELAY;
 *   2. the TLS handshake: both sides present a node certificate and verify
 *      the other's against the raft CA only;
 *   3. our header over TLS: the connecting node sends its node_id and raft
 *      address; the accepting node checks that node_id equals the CN of the
 *      certificate it verified (no node speaks for another id) and answers
 *      one byte; the connecting node checks that the CN of the server's
 *      certificate is the id raft asked for; both sides refuse a certificate
 *      whose SHA-256 is on the replicated revocation list (a removed member)
 *      and remember the fingerprint each member presented (remove-peer
 *      revokes it with those recorded at issue, for a member whose
 *      certificate predates that record);
 *   4. a socketpair: one end goes to raft as a uv pipe (opened on the loop
 *      thread, delivered with uv_async), the thread pumps bytes between the
 *      other end and the SSL object with poll() until either side ends,
 *      which closes both.
 * The loop thread never blocks on the network. Every handshake has a 5 s
 * deadline; at most 64 incoming handshakes run at once. A refused peer (no
 * certificate, another CA, a mismatched id, plaintext) is logged once per
 * connection, rate-limited to one line a second; nothing about keys is
 * logged. close() shuts every socket down, answers pending connects with
 * RAFT_CANCELED and calls back once no thread can deliver any more; fini
 * waits for the pump threads to end.
 */
#include "physical/raft_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "util/log.h"

#define HS_TIMEOUT_S 5.0
#define MAX_HANDSHAKES 64
#define PUMP_BUF 65536
#define HDR_MAGIC "CRT1"
#define ACK_BYTE 0x5a

struct tdeliv {
	struct tdeliv *next;
	bool outgoing;
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	int fd; /* raft's end of the socketpair, or -1 */
	raft_id id;
	char addr[256];
	int status;
};

struct ttrans;

struct tconn {
	struct ttrans *tt;
	struct tconn *next, *prev;
	int tcp, mine;
	SSL *ssl;
	bool outgoing;
	raft_id id;    /* outgoing: the id raft asked for */
	char addr[256];/* outgoing: the target; incoming: the address it claims */
	char from[80]; /* the peer's socket address, for logs */
	char name[128];/* the CN of the peer's verified certificate */
	char fp[RSTORE_FP_HEX]; /* and its SHA-256 (hex) */
	bool verified; /* header exchanged, fp final (under tt->mu) */
	struct tdeliv *d; /* preallocated; NULL once handed to the loop */
};

struct ttrans {
	uv_loop_t *loop;
	struct rtls *creds;
	struct raft_uv_transport *t;
	raft_id id;
	char addr[256];
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb close_cb;
	/* loop thread only */
	int lfd;
	uv_poll_t lpoll;
	uv_async_t async;
	bool async_on, lpoll_on, close_asked, async_closing;
	int open_handles;
	/* shared, guarded by mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	SSL_CTX *ctx;
	struct tconn *live;
	int threads, undelivered, handshakes;
	struct tdeliv *dq, *dq_tail;
	double last_log;
	unsigned suppressed;
	struct {
		raft_id id;
		char fp[RSTORE_FP_HEX];
	} seen[64]; /* the certificate each member last presented */
	size_t nseen;
	atomic_bool closing;
};

/* ---- small helpers ------------------------------------------------------------- */

static void refuse_log(struct ttrans *tt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void refuse_log(struct ttrans *tt, const char *fmt, ...)
{
	double now = rstore__now();
	pthread_mutex_lock(&tt->mu);
	bool say = now - tt->last_log >= 1.0;
	unsigned sup = tt->suppressed;
	if (say) {
		tt->last_log = now;
		tt->suppressed = 0;
	} else {
		tt->suppressed++;
	}
	pthread_mutex_unlock(&tt->mu);
	if (!say)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sup)
		log_warn("raft", "%s (%u similar lines suppressed)", msg, sup);
	else
		log_warn("raft", "%s", msg);
}

/* the last OpenSSL error (and the verification result) as text */
static void tls_why(SSL *ssl, char *why, size_t n, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	char es[200] = "";
	if (e)
		ERR_error_string_n(e, es, sizeof(es));
	if (vr != X509_V_OK)
		snprintf(why, n, "%s: certificate verification failed: %s", what,
			 X509_verify_cert_error_string(vr));
	else
		snprintf(why, n, "%s: %s", what, es[0] ? es : "the connection was closed");
	ERR_clear_error();
}

static int split_hostport(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) >= hn || strlen(colon + 1) >= pn)
		return -1;
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [v6]:port */
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, pn, "%s", colon + 1);
	return 0;
}

static void sockname(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[64] = "?";
	int port = 0;
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(out, n, "%s:%d", h, port);
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- the SSL_CTX (built once the credentials exist) ----------------------------- */

static SSL_CTX *build_ctx(struct rtls *cr, char *why, size_t n)
{
	pthread_mutex_lock(&cr->mu);
	SSL_CTX *ctx = NULL;
	X509 *cert = NULL, *ca = NULL;
	EVP_PKEY *key = NULL;
	if (!cr->ready) {
		snprintf(why, n, "this node has no raft TLS credentials yet");
		goto out;
	}
	BIO *b = BIO_new_mem_buf(cr->node_cert, -1);
	cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(cr->ca_cert, -1);
	ca = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(cr->node_key, (int)cr->node_key_len);
	key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ctx = SSL_CTX_new(TLS_method());
	if (!cert || !ca || !key || !ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1) {
		snprintf(why, n, "the raft TLS credentials in %s do not load", cr->dir);
		SSL_CTX_free(ctx);
		ctx = NULL;
		ERR_clear_error();
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 1);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
out:
	pthread_mutex_unlock(&cr->mu);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	return ctx;
}

static SSL *new_ssl(struct ttrans *tt, char *why, size_t n)
{
	pthread_mutex_lock(&tt->mu);
	if (!tt->ctx)
		tt->ctx = build_ctx(tt->creds, why, n);
	SSL *ssl = tt->ctx ? SSL_new(tt->ctx) : NULL;
	pthread_mutex_unlock(&tt->mu);
	if (tt->ctx && !ssl)
		snprintf(why, n, "out of memory");
	return ssl;
}

/* ---- blocking-with-deadline I/O on the nonblocking socket ------------------------- */

static int wait_fd(struct tconn *c, int fd, short ev, double deadline)
{
	for (;;) {
		if (atomic_load(&c->tt->closing))
			return -1;
		double left = deadline - rstore__now();
		if (left <= 0)
			return -1;
		struct pollfd p = {.fd = fd, .events = ev};
		int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int ssl_wait(struct tconn *c, int r, double deadline)
{
	int e = SSL_get_error(c->ssl, r);
	short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
	return ev ? wait_fd(c, c->tcp, ev, deadline) : -1;
}

static int ssl_exact(struct tconn *c, bool wr, void *buf, size_t n, double deadline)
{
	size_t done = 0;
	while (done < n) {
		ERR_clear_error();
		int r = wr ? SSL_write(c->ssl, (char *)buf + done, (int)(n - done))
			   : SSL_read(c->ssl, (char *)buf + done, (int)(n - done));
		if (r > 0)
			done += (size_t)r;
		else if (ssl_wait(c, r, deadline))
			return -1;
	}
	return 0;
}

static int tcp_connect(struct tconn *c, double deadline, char *why, size_t n)
{
	char host[256], port[16];
	if (split_hostport(c->addr, host, sizeof(host), port, sizeof(port))) {
		snprintf(why, n, "bad raft address %s", c->addr);
		return -1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int gr = getaddrinfo(host, port, &hints, &res);
	if (gr) {
		snprintf(why, n, "cannot resolve %s: %s", host, gai_strerror(gr));
		return -1;
	}
	int rc = -1;
	for (struct addrinfo *a = res; a && rc; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&c->tt->mu);
		c->tcp = fd; /* close() may shut it down from now on */
		pthread_mutex_unlock(&c->tt->mu);
		int cr = connect(fd, a->ai_addr, a->ai_addrlen);
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (cr && errno == EINPROGRESS && !wait_fd(c, fd, POLLOUT, deadline) &&
		    !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && !soerr)
			cr = 0;
		if (!cr) {
			rc = 0;
			break;
		}
		snprintf(why, n, "cannot connect to %s: %s", c->addr,
			 strerror(soerr ? soerr : errno));
		pthread_mutex_lock(&c->tt->mu);
		c->tcp = -1;
		pthread_mutex_unlock(&c->tt->mu);
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

/* the CN of the verified peer certificate into c->name */
static int peer_name(struct tconn *c, char *why, size_t n)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (!x || SSL_get_verify_result(c->ssl) != X509_V_OK) {
		snprintf(why, n, "the peer presented no verified certificate");
		return -1;
	}
	int l = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->name,
					  (int)sizeof(c->name));
	if (l <= 0 || (size_t)l >= sizeof(c->name) || strlen(c->name) != (size_t)l) {
		snprintf(why, n, "the peer's certificate has no usable common name");
		return -1;
	}
	if (rstore__tls_fp_x509(x, c->fp)) {
		snprintf(why, n, "cannot fingerprint the peer's certificate");
		return -1;
	}
	/* a removed member's certificate (the replicated revocation list) */
	if (rstore__tls_revoked(c->tt->creds, c->fp)) {
		snprintf(why, n, "node %s presents a revoked certificate (the node was removed "
				 "from the cluster; rejoin it with an empty path)", c->name);
		return -1;
	}
	return 0;
}

/* The connection is verified: remember the certificate its member
 * presented (mu not held). -1 if that certificate was revoked since
 * peer_name checked it: checked again under mu, which
 * rstore__transport_drop_revoked also holds, so a connection is either
 * refused here or seen there. */
static int note_seen(struct tconn *c)
{
	struct ttrans *tt = c->tt;
	raft_id id = c->id;
	const char *fp = c->fp;
	pthread_mutex_lock(&tt->mu);
	if (rstore__tls_revoked(tt->creds, fp)) {
		pthread_mutex_unlock(&tt->mu);
		return -1;
	}
	c->verified = true;
	size_t i = 0;
	while (i < tt->nseen && tt->seen[i].id != id)
		i++;
	if (i == tt->nseen && tt->nseen < sizeof(tt->seen) / sizeof(tt->seen[0]))
		tt->nseen++;
	if (i < tt->nseen) {
		tt->seen[i].id = id;
		memcpy(tt->seen[i].fp, fp, RSTORE_FP_HEX);
	}
	pthread_mutex_unlock(&tt->mu);
	return 0;
}

void rstore__transport_drop_revoked(struct raft_uv_transport *t)
{
	struct ttrans *tt = t ? t->impl : NULL;
	if (!tt)
		return;
	char names[4][128];
	size_t nn = 0, dropped = 0;
	pthread_mutex_lock(&tt->mu);
	for (struct tconn *c = tt->live; c; c = c->next) {
		if (!c->verified || !rstore__tls_revoked(tt->creds, c->fp))
			continue;
		if (c->tcp >= 0)
			shutdown(c->tcp, SHUT_RDWR);
		if (c->mine >= 0)
			shutdown(c->mine, SHUT_RDWR);
		c->verified = false; /* once */
		if (nn < 4)
			snprintf(names[nn++], sizeof(names[0]), "%s", c->name);
		dropped++;
	}
	pthread_mutex_unlock(&tt->mu);
	for (size_t i = 0; i < nn; i++)
		log_warn("raft", "closed a raft connection of node %s: its certificate was revoked",
			 names[i]);
	if (dropped > nn)
		log_warn("raft", "closed %zu more raft connections with revoked certificates",
			 dropped - nn);
}

int rstore__transport_seen(struct raft_uv_transport *t, raft_id id, char fp[RSTORE_FP_HEX])
{
	struct ttrans *tt = t->impl;
	int rc = -1;
	if (!tt)
		return -1;
	pthread_mutex_lock(&tt->mu);
	for (size_t i = 0; i < tt->nseen && rc; i++)
		if (tt->seen[i].id == id) {
			memcpy(fp, tt->seen[i].fp, RSTORE_FP_HEX);
			rc = 0;
		}
	pthread_mutex_unlock(&tt->mu);
	return rc;
}

/* steps 1-3 of the DESIGN; 0 or -1 with why */
static int handshake(struct tconn *c, char *why, size_t n)
{
	struct ttrans *tt = c->tt;
	double deadline = rstore__now() + HS_TIMEOUT_S;
	if (c->outgoing && tcp_connect(c, deadline, why, n))
		return -1;
	nodelay(c->tcp);
	if (!c->outgoing)
		sockname(c->tcp, c->from, sizeof(c->from));
	else
		snprintf(c->from, sizeof(c->from), "%.79s", c->addr);
	c->ssl = new_ssl(tt, why, n);
	if (!c->ssl)
		return -1;
	SSL_set_fd(c->ssl, c->tcp);
	if (c->outgoing)
		SSL_set_connect_state(c->ssl);
	else
		SSL_set_accept_state(c->ssl);
	ERR_clear_error();
	int r;
	while ((r = SSL_do_handshake(c->ssl)) != 1)
		if (ssl_wait(c, r, deadline)) {
			tls_why(c->ssl, why, n, "TLS handshake failed");
			return -1;
		}
	if (peer_name(c, why, n))
		return -1;
	if (c->outgoing) {
		if (rstore__id_for(c->name) != c->id) {
			snprintf(why, n, "the node at %s presents a certificate for node %s, not "
					 "the one raft asked for", c->addr, c->name);
			return -1;
		}
		const char *me = tt->creds->node_id;
		uint8_t hdr[4 + 1 + 127 + 1 + 255];
		size_t nl = strlen(me), al = strlen(tt->addr), o = 0;
		if (nl > 127 || al > 255) {
			snprintf(why, n, "node_id or raft address too long");
			return -1;
		}
		memcpy(hdr, HDR_MAGIC, 4);
		o = 4;
		hdr[o++] = (uint8_t)nl;
		memcpy(hdr + o, me, nl);
		o += nl;
		hdr[o++] = (uint8_t)al;
		memcpy(hdr + o, tt->addr, al);
		o += al;
		uint8_t ack = 0;
		if (ssl_exact(c, true, hdr, o, deadline) || ssl_exact(c, false, &ack, 1, deadline) ||
		    ack != ACK_BYTE) {
			tls_why(c->ssl, why, n, "the peer refused this node");
			return -1;
		}
		if (note_seen(c)) {
			snprintf(why, n, "node %s presents a revoked certificate", c->name);
			return -1;
		}
		return 0;
	}
	uint8_t magic[5], name[128], addr[256], al = 0;
	if (ssl_exact(c, false, magic, 5, deadline) || memcmp(magic, HDR_MAGIC, 4) ||
	    magic[4] > 127 || ssl_exact(c, false, name, magic[4], deadline) ||
	    ssl_exact(c, false, &al, 1, deadline) || ssl_exact(c, false, addr, al, deadline)) {
		snprintf(why, n, "no valid raft header after the TLS handshake");
		return -1;
	}
	name[magic[4]] = '\0';
	addr[al] = '\0';
	if (strlen((char *)name) != magic[4] || strcmp((char *)name, c->name)) {
		snprintf(why, n, "it claims node_id %.127s but its certificate is for %s",
			 (char *)name, c->name);
		return -1;
	}
	if (strlen((char *)addr) != al || !strchr((char *)addr, ':')) {
		snprintf(why, n, "its raft header has no valid address");
		return -1;
	}
	snprintf(c->addr, sizeof(c->addr), "%s", (char *)addr);
	c->id = rstore__id_for(c->name);
	uint8_t ack = ACK_BYTE;
	if (ssl_exact(c, true, &ack, 1, deadline)) {
		tls_why(c->ssl, why, n, "the peer went away");
		return -1;
	}
	if (note_seen(c)) {
		snprintf(why, n, "node %s presents a revoked certificate", c->name);
		return -1;
	}
	return 0;
}

/* ---- step 4: the pump ------------------------------------------------------------- */

/* what the socket must become for a failed SSL call to go on (into *ev);
 * -1 when the connection is over */
static int ssl_want(SSL *ssl, int r, short *ev)
{
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		*ev |= POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		*ev |= POLLOUT;
	else
		return -1;
	return 0;
}

static void pump(struct tconn *c)
{
	uint8_t *up = malloc(PUMP_BUF), *down = malloc(PUMP_BUF);
	size_t ulen = 0, uoff = 0, dlen = 0, doff = 0;
	SSL *ssl = c->ssl;
	while (up && down) {
		bool progress = false;
		short tev = 0, mev = 0;
		if (!dlen) { /* peer -> raft */
			ERR_clear_error();
			int r = SSL_read(ssl, down, PUMP_BUF);
			if (r > 0) {
				dlen = (size_t)r;
				doff = 0;
				progress = true;
			} else if (ssl_want(ssl, r, &tev)) {
				break;
			}
		}
		if (dlen) {
			ssize_t w = send(c->mine, down + doff, dlen - doff, MSG_NOSIGNAL);
			if (w > 0) {
				doff += (size_t)w;
				if (doff == dlen)
					dlen = 0;
				progress = true;
			} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
				mev |= POLLOUT;
			} else {
				break;
			}
		}
		if (!ulen) { /* raft -> peer */
			ssize_t r = recv(c->mine, up, PUMP_BUF, 0);
			if (r > 0) {
				ulen = (size_t)r;
				uoff = 0;
				progress = true;
			} else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				mev |= POLLIN;
			} else {
				break; /* raft closed its end */
			}
		}
		if (ulen) {
			ERR_clear_error();
			int r = SSL_write(ssl, up + uoff, (int)(ulen - uoff));
			if (r > 0) {
				uoff += (size_t)r;
				if (uoff == ulen)
					ulen = 0;
				progress = true;
			} else if (ssl_want(ssl, r, &tev)) {
				break;
			}
		}
		if (progress)
			continue;
		if (atomic_load(&c->tt->closing))
			break;
		struct pollfd p[2] = {{.fd = c->tcp, .events = tev}, {.fd = c->mine, .events = mev}};
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
	}
	ERR_clear_error();
	SSL_shutdown(ssl); /* best effort: a close_notify if the socket takes it */
	ERR_clear_error();
	free(up);
	free(down);
}

/* ---- the connection thread ------------------------------------------------------------ */

static void deliver(struct ttrans *tt, struct tdeliv *d)
{
	pthread_mutex_lock(&tt->mu);
	if (d) {
		d->next = NULL;
		if (tt->dq_tail)
			tt->dq_tail->next = d;
		else
			tt->dq = d;
		tt->dq_tail = d;
	}
	/* always wake the loop, even with nothing to hand over: a close that
	 * found this thread still handshaking waits for undelivered to reach 0,
	 * and only the loop finishes it (the handle is alive: close waits for
	 * undelivered == 0, and we hold mu) */
	uv_async_send(&tt->async);
	tt->undelivered--;
	pthread_mutex_unlock(&tt->mu);
}

static void *conn_main(void *arg)
{
	struct tconn *c = arg;
	struct ttrans *tt = c->tt;
	char why[384] = "";
	int rc = handshake(c, why, sizeof(why));
	int sv[2] = {-1, -1};
	if (!rc && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, sizeof(why), "socketpair: %s", strerror(errno));
		rc = -1;
	}
	if (!c->outgoing) {
		pthread_mutex_lock(&tt->mu);
		tt->handshakes--;
		pthread_mutex_unlock(&tt->mu);
	}
	if (rc && !atomic_load(&tt->closing)) {
		if (!c->outgoing)
			refuse_log(tt, "refused a raft connection from %s: %s", c->from, why);
		else if (c->ssl) /* TCP-level failures are routine while a peer is down */
			refuse_log(tt, "raft connection to %s failed: %s", c->addr, why);
	}
	struct tdeliv *d = c->d;
	c->d = NULL;
	if (!rc) {
		fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
		pthread_mutex_lock(&tt->mu);
		c->mine = sv[0];
		pthread_mutex_unlock(&tt->mu);
		d->fd = sv[1];
		d->id = c->id;
		snprintf(d->addr, sizeof(d->addr), "%s", c->addr);
	}
	d->status = rc ? RAFT_NOCONNECTION : 0;
	if (rc && !c->outgoing) {
		free(d);
		d = NULL; /* nothing to tell raft */
	}
	deliver(tt, d);
	if (!rc)
		pump(c);
	SSL_free(c->ssl);
	pthread_mutex_lock(&tt->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		tt->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	int tcp = c->tcp, mine = c->mine;
	c->tcp = c->mine = -1;
	tt->threads--;
	pthread_cond_broadcast(&tt->cv);
	pthread_mutex_unlock(&tt->mu);
	if (tcp >= 0)
		close(tcp);
	if (mine >= 0)
		close(mine);
	free(c);
	return NULL;
}

/* a new connection thread; tt->mu held */
static int spawn(struct ttrans *tt, struct tconn *c)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	pthread_t th;
	c->next = tt->live;
	c->prev = NULL;
	if (tt->live)
		tt->live->prev = c;
	tt->live = c;
	tt->threads++;
	tt->undelivered++;
	int rc = pthread_create(&th, &at, conn_main, c);
	pthread_attr_destroy(&at);
	if (rc) {
		tt->live = c->next;
		if (tt->live)
			tt->live->prev = NULL;
		tt->threads--;
		tt->undelivered--;
	}
	return rc;
}

static struct tconn *conn_new(struct ttrans *tt, bool outgoing)
{
	struct tconn *c = calloc(1, sizeof(*c));
	struct tdeliv *d = calloc(1, sizeof(*d));
	if (!c || !d) {
		free(c);
		free(d);
		return NULL;
	}
	c->tt = tt;
	c->tcp = c->mine = -1;
	c->outgoing = outgoing;
	c->d = d;
	d->fd = -1;
	d->outgoing = outgoing;
	return c;
}

static void conn_drop(struct tconn *c)
{
	free(c->d);
	free(c);
}

/* ---- the loop side ---------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
	struct ttrans *tt = h->data;
	if (h == (uv_handle_t *)&tt->lpoll && tt->lfd >= 0) {
		close(tt->lfd);
		tt->lfd = -1;
	}
	if (--tt->open_handles == 0 && tt->close_cb)
		tt->close_cb(tt->t);
}

static void maybe_finish_close(struct ttrans *tt)
{
	if (!tt->close_asked || tt->async_closing)
		return;
	pthread_mutex_lock(&tt->mu);
	bool ready = tt->undelivered == 0 && !tt->dq;
	pthread_mutex_unlock(&tt->mu);
	if (!ready)
		return;
	tt->async_closing = true;
	if (tt->async_on) {
		uv_close((uv_handle_t *)&tt->async, handle_closed);
	} else if (tt->open_handles == 0 && tt->close_cb) {
		tt->close_cb(tt->t);
	}
}

static void pipe_free(uv_handle_t *h)
{
	raft_free(h);
}

static struct uv_stream_s *open_pipe(struct ttrans *tt, int fd)
{
	uv_pipe_t *p = raft_malloc(sizeof(*p));
	if (!p) {
		close(fd);
		return NULL;
	}
	uv_pipe_init(tt->loop, p, 0);
	if (uv_pipe_open(p, fd)) {
		close(fd);
		uv_close((uv_handle_t *)p, pipe_free);
		return NULL;
	}
	return (struct uv_stream_s *)p;
}

static void on_deliver(uv_async_t *h)
{
	struct ttrans *tt = h->data;
	pthread_mutex_lock(&tt->mu);
	struct tdeliv *list = tt->dq;
	tt->dq = tt->dq_tail = NULL;
	pthread_mutex_unlock(&tt->mu);
	bool closing = tt->close_asked;
	while (list) {
		struct tdeliv *d = list;
		list = d->next;
		struct uv_stream_s *st = NULL;
		if (closing) {
			if (d->fd >= 0)
				close(d->fd);
		} else if (!d->status) {
			st = open_pipe(tt, d->fd);
		}
		if (d->outgoing)
			d->cb(d->req, st, closing ? RAFT_CANCELED : st ? 0 : RAFT_NOCONNECTION);
		else if (st)
			tt->accept_cb(tt->t, d->id, d->addr, st);
		free(d);
	}
	maybe_finish_close(tt);
}

static int ensure_async(struct ttrans *tt)
{
	if (tt->async_on)
		return 0;
	if (uv_async_init(tt->loop, &tt->async, on_deliver))
		return RAFT_NOMEM;
	tt->async.data = tt;
	tt->async_on = true;
	tt->open_handles++;
	return 0;
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	struct ttrans *tt = h->data;
	(void)events;
	if (status < 0)
		return;
	for (;;) {
		int fd = accept4(tt->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct tconn *c = conn_new(tt, false);
		pthread_mutex_lock(&tt->mu);
		bool busy = !c || tt->handshakes >= MAX_HANDSHAKES;
		if (!busy) {
			c->tcp = fd;
			tt->handshakes++;
			if (spawn(tt, c)) {
				tt->handshakes--;
				busy = true;
			}
		}
		pthread_mutex_unlock(&tt->mu);
		if (busy) {
			if (c)
				conn_drop(c);
			close(fd);
			refuse_log(tt, "refused a raft connection: too many handshakes in progress");
		}
	}
}

/* ---- struct raft_uv_transport ------------------------------------------------------------- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct ttrans *tt = t->impl;
	tt->id = id;
	if (strlen(address) >= sizeof(tt->addr)) {
		snprintf(t->errmsg, sizeof(t->errmsg), "raft address too long");
		return RAFT_NAMETOOLONG;
	}
	snprintf(tt->addr, sizeof(tt->addr), "%s", address);
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct ttrans *tt = t->impl;
	char why[256] = "";
	pthread_mutex_lock(&tt->mu);
	if (!tt->ctx)
		tt->ctx = build_ctx(tt->creds, why, sizeof(why));
	bool ok = tt->ctx != NULL;
	pthread_mutex_unlock(&tt->mu);
	if (!ok) {
		snprintf(t->errmsg, sizeof(t->errmsg), "raft TLS: %.200s", why);
		return RAFT_INVALID;
	}
	char host[256], port[16];
	if (split_hostport(tt->addr, host, sizeof(host), port, sizeof(port))) {
		snprintf(t->errmsg, sizeof(t->errmsg), "bad raft address %.200s", tt->addr);
		return RAFT_INVALID;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE},
			*res = NULL;
	if (getaddrinfo(host, port, &hints, &res) || !res) {
		snprintf(t->errmsg, sizeof(t->errmsg), "cannot resolve raft address %.200s", tt->addr);
		return RAFT_IOERR;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 128)) {
		snprintf(t->errmsg, sizeof(t->errmsg), "cannot listen on %.150s: %.60s", tt->addr,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return RAFT_IOERR;
	}
	freeaddrinfo(res);
	if (ensure_async(tt) || uv_poll_init(tt->loop, &tt->lpoll, fd)) {
		close(fd);
		snprintf(t->errmsg, sizeof(t->errmsg), "cannot watch the raft listener");
		return RAFT_NOMEM;
	}
	tt->lfd = fd;
	tt->lpoll.data = tt;
	tt->lpoll_on = true;
	tt->open_handles++;
	tt->accept_cb = cb;
	uv_poll_start(&tt->lpoll, UV_READABLE, on_listen);
	return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		     const char *address, raft_uv_connect_cb cb)
{
	struct ttrans *tt = t->impl;
	if (tt->close_asked)
		return RAFT_CANCELED;
	if (strlen(address) >= sizeof(((struct tconn *)0)->addr))
		return RAFT_NAMETOOLONG;
	struct tconn *c = ensure_async(tt) ? NULL : conn_new(tt, true);
	if (!c)
		return RAFT_NOMEM;
	req->cb = cb;
	c->id = id;
	snprintf(c->addr, sizeof(c->addr), "%s", address);
	c->d->req = req;
	c->d->cb = cb;
	pthread_mutex_lock(&tt->mu);
	int rc = spawn(tt, c);
	pthread_mutex_unlock(&tt->mu);
	if (rc) {
		conn_drop(c);
		return RAFT_NOMEM;
	}
	return 0;
}

/* every thread's sockets: their polls wake and they end (mu held) */
static void shutdown_all(struct ttrans *tt)
{
	atomic_store(&tt->closing, true);
	for (struct tconn *c = tt->live; c; c = c->next) {
		if (c->tcp >= 0)
			shutdown(c->tcp, SHUT_RDWR);
		if (c->mine >= 0)
			shutdown(c->mine, SHUT_RDWR);
	}
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct ttrans *tt = t->impl;
	tt->close_cb = cb;
	tt->close_asked = true;
	pthread_mutex_lock(&tt->mu);
	shutdown_all(tt);
	pthread_mutex_unlock(&tt->mu);
	if (tt->lpoll_on) {
		uv_poll_stop(&tt->lpoll);
		uv_close((uv_handle_t *)&tt->lpoll, handle_closed);
		tt->lpoll_on = false;
	}
	maybe_finish_close(tt);
}

int rstore__transport_init(struct raft_uv_transport *t, uv_loop_t *loop, struct rtls *creds)
{
	memset(t, 0, sizeof(*t));
	struct ttrans *tt = calloc(1, sizeof(*tt));
	if (!tt)
		return RAFT_NOMEM;
	tt->loop = loop;
	tt->creds = creds;
	tt->t = t;
	tt->lfd = -1;
	pthread_mutex_init(&tt->mu, NULL);
	pthread_cond_init(&tt->cv, NULL);
	atomic_init(&tt->closing, false);
	t->impl = tt;
	t->init = t_init;
	t->listen = t_listen;
	t->connect = t_connect;
	t->close = t_close;
	return 0;
}

void rstore__transport_fini(struct raft_uv_transport *t)
{
	struct ttrans *tt = t->impl;
	if (!tt)
		return;
	pthread_mutex_lock(&tt->mu);
	shutdown_all(tt);
	while (tt->threads > 0)
		pthread_cond_wait(&tt->cv, &tt->mu);
	pthread_mutex_unlock(&tt->mu);
	SSL_CTX_free(tt->ctx);
	while (tt->dq) { /* delivered after close: raft will not take them */
		struct tdeliv *d = tt->dq;
		tt->dq = d->next;
		if (d->fd >= 0)
			close(d->fd);
		free(d);
	}
	pthread_cond_destroy(&tt->cv);
	pthread_mutex_destroy(&tt->mu);
	free(tt);
	t->impl = NULL;
}
