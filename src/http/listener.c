/*
 * listener.c - the HTTP(S) listener: libmicrohttpd glue around request.c
 * (raw request -> logical request) and response.c (result -> reply).
 *
 * DESIGN
 * Threads: by default MHD_USE_THREAD_PER_CONNECTION: one polling thread
 *   accepts, each connection gets a thread that runs the core call
 *   synchronously, so a slow core call (PostgreSQL, a KMS, RSA keygen) only
 *   stalls its own connection. thread_pool_size > 0 selects epoll + a pool
 *   of event threads instead: requests the core can answer without
 *   blocking (opts.inline_ok) run on them, every other one on an offload
 *   worker while its connection is suspended (see "offload" below;
 *   docs/http.md has the measurements).
 * Per connection (socket context, struct conn): TCP_NODELAY, the TLS
 *   credentials it holds (tls.c), whether it arrived over the soft limit.
 * Per request (con_cls, struct req): created by the URI-log callback with a
 *   copy of the raw request-target (MHD's own decoding would truncate at
 *   %00), the body buffer, the start time. Freed by the completed callback,
 *   which MHD calls for every request it saw a URI for.
 * Limits: request line + headers must fit MHD's per-connection pool
 *   (MHD answers 414/431 itself); the body cap is ours (413 straight away
 *   from Content-Length, or after discarding a chunked body); a request
 *   must arrive within max_request_duration; idle connections are closed
 *   after idle_timeout. Over connection_limit we answer 503 and close (MHD's
 *   own hard limit, a little higher, would just drop the socket).
 * Framing: every byte MHD reads first passes guard.c's scanner, which
 *   answers malformed framing itself (400/501) before MHD's parser acts.
 * Slow clients (issue: 4,200 sockets trickling a header byte every 20 s
 *   kept everyone out, because MHD's idle timer restarts on every byte):
 *   - per-address limit, checked in the accept-policy callback (before MHD
 *     creates the connection): the count per IPv4 address / IPv6 /64 lives
 *     in an open-addressing table sized for MHD's hard limit;
 *   - deadlines independent of trickled bytes: each connection sits on one
 *     of three lists, ordered by the time it joined (so each list is also
 *     ordered by deadline): HEADER (accepted, header not complete: deadline
 *     read_header_timeout), IDLE (kept alive after a request: idle_timeout
 *     + read_header_timeout, MHD's own idle timer closes the truly idle
 *     ones first), BODY (header done, body arriving: read_timeout). A
 *     reaper thread shuts down the sockets past their deadline; MHD then
 *     sees end-of-stream and closes the connection itself;
 *   - a reserve: when the open count reaches connection_limit minus the
 *     reserve, each new accept first evicts the oldest connection that has
 *     not finished its header (else the oldest idle one), so an attack
 *     that fills the table cannot keep a legitimate client out.
 *   The sockets are only ever shut down (never closed) by us, under l->mu,
 *   and a connection leaves the lists in MHD's "closed" notification, which
 *   MHD sends before it closes the descriptor.
 *   Per request this costs no extra lock: leaving HEADER is folded into the
 *   in-flight count's lock in on_access, joining IDLE into on_completed's.
 * Stop: stop accepting (MHD_quiesce_daemon), refuse new requests on open
 *   connections with 503, wait up to 10 s for requests in flight, then
 *   MHD_stop_daemon closes everything and joins the threads.
 * Guarded by l->mu: conns, inflight, stopping, evicting, the lists, the
 * address table, every struct conn's list fields.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "core/core.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/tmpfd.h"

#define DEFAULT_MAX_BODY (32LL * 1024 * 1024)
#define DEFAULT_MAX_DURATION 90
#define DEFAULT_CONN_LIMIT 4096u
#define DEFAULT_IDLE 30u
#define DEFAULT_PER_IP 256u
#define DEFAULT_HEADER_TIMEOUT 10u
#define DEFAULT_READ_TIMEOUT 30u
#define REAPER_TICK_MS 100
#define CONN_MEMORY (64u * 1024)      /* request line + headers + read buffer */
#define HARD_LIMIT_MARGIN 64u         /* MHD drops sockets past limit+margin */
#define THREAD_STACK (2u * 1024 * 1024)
#define STOP_GRACE_MS 10000
#define MAX_HEADERS 1024
#define CLUSTER_ECHO "/v1/sys/internal/cluster/echo"

enum { L_NONE, L_HEADER, L_IDLE, L_BODY, NLISTS };

struct conn;
struct conn_list {
	struct conn *head, *tail;
};

/* Open connections per client address: linear probing, backward-shift
 * deletion; a slot is free when its count is 0. Sized at twice MHD's hard
 * connection limit, so it never fills. */
struct ip_slot {
	unsigned char key[16];
	uint32_t count;
};
struct ip_table {
	struct ip_slot *slots;
	size_t mask;
	uint64_t seed[2];
};

struct http_listener {
	struct MHD_Daemon *d;
	struct core *core;
	struct http_tls *tls;
	int lfd;
	char addr[INET6_ADDRSTRLEN + 10];
	int port;
	int64_t max_body;
	char *spool_dir; /* snapshot uploads (NULL: tmpfd's default) */
	int64_t max_ms;
	unsigned conn_limit;
	unsigned per_ip;
	unsigned reserve;             /* evict when conns reach limit - reserve */
	int64_t deadline_ms[NLISTS];  /* per list: time allowed on it */
	bool guard;                   /* guard.c's recv is in effect */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned conns;
	unsigned inflight;
	unsigned evicting;            /* shut down by us, not yet closed */
	bool stopping;
	bool cluster; /* the cluster port: forwarded requests from standbys */
	struct conn_list lists[NLISTS];
	struct ip_table ips;
	uint64_t evicted_total, reaped_total, refused_total;
	int64_t last_warn_ms;
	pthread_t reaper;
	pthread_cond_t reaper_cv;     /* CLOCK_MONOTONIC */
	bool reaper_started, reaper_stop;
	bool unauth_metrics; /* telemetry { unauthenticated_metrics_access } */
	/* epoll mode: the offload workers (see "offload" below), under wmu */
	bool offload;
	bool (*inline_ok)(struct core *core, const struct logical_request *req);
	pthread_mutex_t wmu;
	pthread_cond_t wcv;   /* CLOCK_MONOTONIC: work queued, or stop */
	pthread_cond_t wdone; /* a worker exited */
	struct req *qhead, *qtail;
	unsigned qlen, widle, wthreads, wmax;
	bool wstop;
};

struct conn {
	struct http_guard guard;
	void *tls_handle;
	struct conn *prev, *next;     /* on lists[list] */
	int64_t since_ms;             /* when it joined that list */
	int fd;
	uint8_t list;
	bool over_limit;
	bool evicted;                 /* we shut its socket down */
	bool has_ip;
	unsigned char ip[16];
};

/* Headers handed to request.c. Typical requests have a handful, so they go
 * in `small` (inside struct req); only a request with more gets a heap
 * array (a 16 KiB MAX_HEADERS array per request made glibc consolidate its
 * free lists on every request: see docs/performance.md). */
#define SMALL_HEADERS 32
struct header_vec {
	struct http_header *v;
	size_t n, cap;
	struct http_header small[SMALL_HEADERS];
};

struct req {
	/* the request as request.c and the core see it (prepare), kept here
	 * so an offloaded request can run on a worker while MHD holds the
	 * connection suspended; every pointer stays valid until resume (the
	 * connection's pool is not touched while it is suspended) */
	struct header_vec hv;
	struct http_raw_request raw;
	struct http_built built;
	char addr[INET6_ADDRSTRLEN];
	char *pem;
	struct http_reply rep;
	bool reply_ready; /* a worker filled rep: send it on the next call */
	struct MHD_Connection *conn;
	struct req *qnext; /* the offload queue */
	char *target;
	size_t target_len;
	const char *target_ptr; /* MHD's buffer: to find raw NULs */
	char *body;
	size_t body_len, body_cap;
	int spool_fd;     /* a snapshot upload goes to this file, not body */
	bool spool, spool_failed;
	uint64_t received;
	int64_t start_ms;
	bool started, counted, too_large, in_body;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the connection lists ---- */

static void list_unlink(struct http_listener *l, struct conn *cc)
{
	struct conn_list *q;
	if (cc->list == L_NONE)
		return;
	q = &l->lists[cc->list];
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		q->head = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	else
		q->tail = cc->prev;
	cc->prev = cc->next = NULL;
	cc->list = L_NONE;
}

static void list_push(struct http_listener *l, struct conn *cc, uint8_t which, int64_t now)
{
	struct conn_list *q = &l->lists[which];
	list_unlink(l, cc);
	if (cc->evicted)
		return;
	cc->list = which;
	cc->since_ms = now;
	cc->prev = q->tail;
	cc->next = NULL;
	if (q->tail)
		q->tail->next = cc;
	else
		q->head = cc;
	q->tail = cc;
}

/* Shut the socket down; MHD notices end-of-stream and closes it. */
static void evict(struct http_listener *l, struct conn *cc)
{
	list_unlink(l, cc);
	cc->evicted = true;
	l->evicting++;
	shutdown(cc->fd, SHUT_RDWR);
}

/* ---- open connections per client address ---- */

/* IPv4 (or IPv4-mapped) address, or the /64 of an IPv6 address. */
static bool ip_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		memcpy(key, &a->sin6_addr, 16);
		if (!IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			memset(key + 8, 0, 8);
		return true;
	}
	return false;
}

static size_t ip_home(const struct ip_table *t, const unsigned char key[16])
{
	uint64_t a, b, h;
	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (a ^ t->seed[0]) * 0x9e3779b97f4a7c15ULL;
	h ^= (b ^ t->seed[1]) + (h >> 29);
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (size_t)h & t->mask;
}

/* The slot holding key, or the free slot where it would go. */
static size_t ip_find(const struct ip_table *t, const unsigned char key[16])
{
	size_t i = ip_home(t, key);
	while (t->slots[i].count && memcmp(t->slots[i].key, key, 16) != 0)
		i = (i + 1) & t->mask;
	return i;
}

static void ip_inc(struct ip_table *t, const unsigned char key[16])
{
	size_t i = ip_find(t, key);
	if (!t->slots[i].count)
		memcpy(t->slots[i].key, key, 16);
	t->slots[i].count++;
}

static void ip_dec(struct ip_table *t, const unsigned char key[16])
{
	size_t i = ip_find(t, key), j = i;
	if (!t->slots[i].count || --t->slots[i].count)
		return;
	for (;;) { /* backward shift: keep every probe chain unbroken */
		size_t k;
		j = (j + 1) & t->mask;
		if (!t->slots[j].count)
			break;
		k = ip_home(t, t->slots[j].key);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			t->slots[i] = t->slots[j];
			t->slots[j].count = 0;
			i = j;
		}
	}
}

/* Accept policy: runs on the accepting thread before MHD sets up the
 * connection; refusing closes the socket at once. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http_listener *l = cls;
	unsigned char key[16];
	bool refuse = false, pressure = false, warn = false;
	uint64_t evicted = 0, refused = 0, reaped = 0;
	int64_t now = now_ms();

	pthread_mutex_lock(&l->mu);
	if (ip_key(addr, key) && l->ips.slots[ip_find(&l->ips, key)].count >= l->per_ip) {
		refuse = true;
		l->refused_total++;
	} else if (l->conns - l->evicting + l->reserve >= l->conn_limit) {
		struct conn *victim = l->lists[L_HEADER].head ? l->lists[L_HEADER].head
							       : l->lists[L_IDLE].head;
		if (victim) {
			evict(l, victim);
			l->evicted_total++;
			pressure = true;
		}
	}
	if ((refuse || pressure) && now - l->last_warn_ms > 10000) {
		warn = true; /* at most one line per 10 s, whatever the attack rate */
		l->last_warn_ms = now;
		evicted = l->evicted_total;
		refused = l->refused_total;
		reaped = l->reaped_total;
	}
	pthread_mutex_unlock(&l->mu);
	if (warn)
		log_warn("http", "connection pressure on %s (totals): %llu connections refused (per-address limit %u), %llu unfinished connections closed to make room (limit %u), %llu closed at their header/body deadline",
			 l->addr, (unsigned long long)refused, l->per_ip,
			 (unsigned long long)evicted, l->conn_limit, (unsigned long long)reaped);
	return refuse ? MHD_NO : MHD_YES;
}

/* Closes connections past their list's deadline (see DESIGN). */
static void *reaper_main(void *arg)
{
	struct http_listener *l = arg;
	pthread_mutex_lock(&l->mu);
	while (!l->reaper_stop) {
		int64_t now = now_ms();
		struct timespec ts;
		for (int q = L_HEADER; q < NLISTS; q++) {
			struct conn *cc;
			while ((cc = l->lists[q].head) && now - cc->since_ms >= l->deadline_ms[q]) {
				evict(l, cc);
				l->reaped_total++;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += REAPER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->reaper_cv, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_debug("http", "libmicrohttpd: %s", buf);
}

/* MHD needs a certificate source at start; every session gets ours in
 * on_connection() instead, so this is only reached if that failed. */
static int no_cert(gnutls_session_t s, const gnutls_datum_t *req_ca, int nreq,
		   const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **pcert,
		   unsigned int *pcert_len, gnutls_privkey_t *key)
{
	return -1;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->target_ptr = uri;
	r->target_len = strlen(uri);
	r->target = strndup(uri, r->target_len);
	r->start_ms = now_ms();
	r->spool_fd = -1;
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_listener *l = cls;
	struct req *r = *con_cls;
	const union MHD_ConnectionInfo *si =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn *cc = si ? si->socket_context : NULL;

	pthread_mutex_lock(&l->mu);
	if (r && r->counted && --l->inflight == 0)
		pthread_cond_broadcast(&l->cv);
	/* kept alive: the next request's header is on the clock again */
	if (cc && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		list_push(l, cc, L_IDLE, now_ms());
	pthread_mutex_unlock(&l->mu);
	if (!r)
		return;
	/* a worker's reply the client left before (it closed while the
	 * request was suspended) */
	http__reply_free(&r->rep);
	free(r->target);
	free(r->body);
	if (r->spool_fd >= 0)
		close(r->spool_fd);
	free(r);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_listener *l = cls;
	struct conn *cc = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd, *tls = NULL, *ca;
		int one = 1;
		cc = calloc(1, sizeof(*cc));
		fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (fd)
			setsockopt(fd->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (l->tls)
			tls = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		if (cc) {
			cc->fd = fd ? fd->connect_fd : -1;
			ca = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			cc->has_ip = ca && ip_key(ca->client_addr, cc->ip);
			/* before this connection's thread reads anything */
			if (l->guard && cc->fd >= 0)
				http__guard_attach(&cc->guard, cc->fd,
						   tls ? tls->tls_session : NULL);
		}
		pthread_mutex_lock(&l->mu);
		l->conns++;
		if (cc) {
			/* evicted ones are on their way out: do not count them */
			cc->over_limit = l->conns - l->evicting > l->conn_limit;
			if (cc->has_ip)
				ip_inc(&l->ips, cc->ip);
			if (cc->fd >= 0)
				list_push(l, cc, L_HEADER, now_ms());
		}
		pthread_mutex_unlock(&l->mu);
		if (cc && tls && tls->tls_session)
			cc->tls_handle = http__tls_attach(l->tls, tls->tls_session);
		*socket_context = cc;
		return;
	}
	if (cc)
		http__guard_detach(&cc->guard); /* before MHD closes the fd */
	pthread_mutex_lock(&l->mu);
	l->conns--;
	if (cc) {
		list_unlink(l, cc);
		if (cc->has_ip)
			ip_dec(&l->ips, cc->ip);
		if (cc->evicted)
			l->evicting--;
	}
	pthread_mutex_unlock(&l->mu);
	if (cc) {
		if (l->tls)
			http__tls_detach(l->tls, cc->tls_handle);
		free(cc);
	}
	*socket_context = NULL;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct http_reply *rep)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;

	if (rep->body_is_fd) {
		/* MHD reads the file as it sends and closes it */
		mr = MHD_create_response_from_fd64(rep->body_len, rep->body_fd);
		if (mr)
			rep->body_is_fd = false;
	} else if (rep->body)
		mr = MHD_create_response_from_buffer(rep->body_len, rep->body,
						     MHD_RESPMEM_MUST_FREE);
	else
		mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!mr) {
		http__reply_free(rep);
		return MHD_NO;
	}
	rep->body = NULL; /* transferred */
	if (rep->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rep->location)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_LOCATION, rep->location);
	if (rep->close)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)rep->status, mr);
	MHD_destroy_response(mr);
	http__reply_free(rep);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg,
				  bool close)
{
	struct http_reply rep = {0};
	http__reply_error(&rep, status, msg);
	rep.close = close;
	return send_reply(c, &rep);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct header_vec *h = cls;
	if (h->n == h->cap)
		return MHD_NO;
	h->v[h->n].name = key;
	h->v[h->n].value = value;
	h->n++;
	return MHD_YES;
}

static void remote_of(struct MHD_Connection *c, char *buf, size_t cap, int *port)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = '\0';
	*port = 0;
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ci->client_addr;
		inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)cap);
		*port = ntohs(a->sin_port);
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ci->client_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) /* dual-stack: report IPv4 */
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)cap);
		*port = ntohs(a->sin6_port);
	}
}

static const char *header_of(const struct header_vec *hv, const char *name)
{
	for (size_t i = 0; i < hv->n; i++)
		if (!strcasecmp(hv->v[i].name, name))
			return hv->v[i].value;
	return NULL;
}

/* A standby's request: forward it to the active node unless the client
 * asked for the 307 (X-Vault-No-Request-Forwarding) or no active node can
 * be reached; true when *rep holds the active node's answer. */
static bool forward(struct http_listener *l, const struct http_raw_request *raw,
		    const struct header_vec *hv, struct http_reply *rep)
{
	const char *nf = header_of(hv, "X-Vault-No-Request-Forwarding");
	if (nf && *nf)
		return false;
	struct core_forward f;
	struct verr e = {0};
	if (core_forward_target(l->core, &f, &e))
		return false;
	uint64_t t0 = metrics_now();
	int rc = http__forward(raw, &f, rep, &e);
	METRICS_SINCE("vault.ha.rpc.client.forward", t0);
	if (rc)
		METRICS_INC("vault.ha.rpc.client.forward.errors");
	core_forward_free(&f);
	if (rc) {
		log_warn("http", "%s; answering with a redirect", e.msg);
		return false;
	}
	return true;
}

/* Free what prepare() allocated (the reply stays). */
static void req_release(struct req *r)
{
	free(r->pem);
	r->pem = NULL;
	if (r->hv.v && r->hv.v != r->hv.small)
		free(r->hv.v);
	r->hv.v = NULL;
}

/* On the connection's MHD thread: everything the request needs from MHD
 * (headers, address, TLS peer), then the logical request. 1 when r->rep
 * already holds the answer (no core call), 0 when r->built is ready. */
static int prepare(struct http_listener *l, struct MHD_Connection *c, struct req *r,
		   const char *method)
{
	struct header_vec *hv = &r->hv;
	struct http_raw_request *raw = &r->raw;
	int nh = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
	hv->n = 0;
	hv->v = hv->small;
	hv->cap = SMALL_HEADERS;
	if (nh > SMALL_HEADERS) {
		hv->cap = nh < MAX_HEADERS ? (size_t)nh : MAX_HEADERS;
		hv->v = malloc(hv->cap * sizeof(*hv->v));
		if (!hv->v) {
			http__reply_error(&r->rep, 500, "out of memory");
			r->rep.close = true;
			return 1;
		}
	}
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, hv);
	memset(raw, 0, sizeof(*raw));
	remote_of(c, r->addr, sizeof(r->addr), &raw->remote_port);
	if (l->tls) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		r->pem = http__tls_peer_pem(ci ? ci->tls_session : NULL);
	}
	raw->method = method;
	raw->target = r->target;
	raw->target_len = r->target_len;
	raw->headers = hv->v;
	raw->nheaders = hv->n;
	raw->body = r->body;
	raw->body_len = r->body_len;
	raw->body_too_large = r->too_large;
	if (r->spool) {
		if (r->spool_failed) {
			http__reply_error(&r->rep, 500, "cannot spool the upload to disk");
			r->rep.close = true;
			return 1;
		}
		raw->body_is_fd = true;
		raw->body_fd = r->spool_fd;
		raw->body_len = (size_t)r->received;
	}
	raw->remote_addr = r->addr;
	raw->client_cert_pem = r->pem;
	if (l->cluster) {
		/* only a cluster member (verified in the handshake) gets here:
		 * the client it forwards for is the remote address */
		const char *fwd = header_of(hv, "X-Coffer-Forwarded-For");
		if (fwd && *fwd && strlen(fwd) < sizeof(r->addr))
			snprintf(r->addr, sizeof(r->addr), "%s", fwd);
		raw->client_cert_pem = NULL; /* the cluster's, not the client's */
	}
	if (l->cluster && !strcmp(method, "POST") && raw->target_len == strlen(CLUSTER_ECHO) &&
	    !memcmp(raw->target, CLUSTER_ECHO, raw->target_len)) {
		/* a standby's heartbeat (sys/ha-status), cluster members only:
		 * answered by run() */
		memset(&r->built, 0, sizeof(r->built));
		return 0;
	}
	if (http__build_request(&r->built, &r->rep, raw) != 0)
		return 1;
	return 0;
}

static bool is_echo(const struct req *r)
{
	return r->built.req.path == NULL;
}

/* The core call and the reply, on any thread: touches no MHD state. True
 * (and nothing done, r->built kept) if the request was run inline_only and
 * the core would have had to block: run it again on a worker. */
static bool run(struct http_listener *l, struct req *r)
{
	struct http_raw_request *raw = &r->raw;
	struct http_reply *rep = &r->rep;
	struct logical_response resp;
	struct verr err;
	int rc;

	verr_clear(&err);
	if (is_echo(r)) {
		rc = core_ha_echo(l->core, raw->body ? raw->body : "", raw->body_len, &err);
		if (rc) {
			http__reply_error(rep, http_status_for_verr(rc), err.msg);
		} else {
			memset(rep, 0, sizeof(*rep));
			rep->status = 204;
		}
		return false;
	}
	/* sys/metrics (on a standby it asks the HA backend and forwards:
	 * never inline, as core_request_inline says of every sys path) */
	if (!l->cluster && http__metrics(l->core, l->unauth_metrics, &r->built, raw, rep)) {
		http__built_free(&r->built);
		return false;
	}
	memset(&resp, 0, sizeof(resp));
	rc = core_handle_request(l->core, &r->built.req, &resp, &err);
	if (r->built.req.would_block) {
		logical_response_reset(&resp);
		r->built.req.inline_only = r->built.req.would_block = false;
		return true;
	}
	if (rc == VERR_STANDBY && !l->cluster && forward(l, raw, &r->hv, rep)) {
		logical_response_reset(&resp);
		http__built_free(&r->built);
		return false;
	}
	http__reply_from_core(rep, rc, &r->built.req, &resp, &err);
	if (rc == VERR_STANDBY && rep->location && raw->target_len == strlen(raw->target)) {
		/* Vault's redirect names the same request on the active node */
		size_t ll = strlen(rep->location);
		while (ll && rep->location[ll - 1] == '/')
			ll--;
		char *loc = malloc(ll + raw->target_len + 1);
		if (loc) {
			memcpy(loc, rep->location, ll);
			memcpy(loc + ll, raw->target, raw->target_len + 1);
			free(rep->location);
			rep->location = loc;
		}
	}
	logical_response_reset(&resp);
	http__built_free(&r->built);
	return false;
}

/* ---- offload (epoll mode): requests that may block run on workers ----
 *
 * In epoll mode a handful of MHD threads serve every connection, so a core
 * call that blocks (a storage or database round trip, an fsync, a KMS, a
 * standby forwarding) would stall all the connections of its thread. Such
 * a request is handed to a worker instead: its connection is suspended
 * (MHD_suspend_connection), the worker runs the core call and stores the
 * reply in the request, then resumes the connection; MHD calls on_access
 * again and the reply is sent from its thread. Only what the core says
 * cannot block (http_listener_opts.inline_ok: a pure read on local storage
 * with in-process audit devices, on the active node) runs on the MHD
 * thread. Workers are started on demand up to the connection limit, so a
 * slow backend stalls only its own requests, as with a thread per
 * connection; idle ones above WORKERS_MIN exit after WORKER_IDLE_MS. */
#define WORKERS_MIN 4u
#define WORKER_IDLE_MS 30000

static void *worker_main(void *arg)
{
	struct http_listener *l = arg;
	pthread_mutex_lock(&l->wmu);
	for (;;) {
		struct req *r = l->qhead;
		if (r) {
			l->qhead = r->qnext;
			if (!l->qhead)
				l->qtail = NULL;
			l->qlen--;
			l->widle--;
			pthread_mutex_unlock(&l->wmu);
			(void)run(l, r); /* not inline_only: never "would block" */
			req_release(r);
			r->reply_ready = true;
			/* r and its connection are MHD's again after this */
			MHD_resume_connection(r->conn);
			pthread_mutex_lock(&l->wmu);
			l->widle++;
			continue;
		}
		if (l->wstop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += WORKER_IDLE_MS / 1000;
		if (pthread_cond_timedwait(&l->wcv, &l->wmu, &ts) == ETIMEDOUT && !l->qhead &&
		    l->wthreads > WORKERS_MIN)
			break;
	}
	l->wthreads--;
	l->widle--;
	pthread_cond_broadcast(&l->wdone);
	pthread_mutex_unlock(&l->wmu);
	return NULL;
}

/* Queue r for a worker (starting one if none is idle); -1 if no worker
 * can take it (the caller runs it itself). */
static int offload(struct http_listener *l, struct req *r)
{
	pthread_mutex_lock(&l->wmu);
	if (l->wstop) {
		pthread_mutex_unlock(&l->wmu);
		return -1;
	}
	if (l->widle <= l->qlen && l->wthreads < l->wmax) {
		pthread_attr_t a;
		pthread_t t;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, THREAD_STACK);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, worker_main, l) == 0) {
			l->wthreads++;
			l->widle++;
		}
		pthread_attr_destroy(&a);
	}
	if (l->wthreads == 0) {
		pthread_mutex_unlock(&l->wmu);
		return -1;
	}
	r->qnext = NULL;
	l->qlen++;
	if (l->qtail)
		l->qtail->qnext = r;
	else
		l->qhead = r;
	l->qtail = r;
	pthread_cond_signal(&l->wcv);
	pthread_mutex_unlock(&l->wmu);
	return 0;
}

static enum MHD_Result handle(struct http_listener *l, struct MHD_Connection *c,
			      struct req *r, const char *method)
{
	if (r->reply_ready) { /* resumed: a worker has answered */
		r->reply_ready = false;
		return send_reply(c, &r->rep);
	}
	if (prepare(l, c, r, method) == 0) {
		bool inl = !l->offload || (!is_echo(r) && l->inline_ok &&
					   l->inline_ok(l->core, &r->built.req));
		r->built.req.inline_only = l->offload && inl;
		/* run here if it may; if the core finds it would block after
		 * all, or it may not, a worker runs it */
		if (!inl || run(l, r)) {
			r->conn = c;
			MHD_suspend_connection(c);
			if (offload(l, r) == 0)
				return MHD_YES;
			MHD_resume_connection(c); /* no worker: run it here */
			(void)run(l, r);
		}
	}
	req_release(r);
	return send_reply(c, &r->rep);
}

struct cl_seen {
	const char *first;
	bool conflict;
};

static enum MHD_Result cl_dup(void *cls, enum MHD_ValueKind kind, const char *key,
			     const char *value)
{
	struct cl_seen *seen = cls;
	if (!key || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (!seen->first)
		seen->first = value ? value : "";
	else if (strcmp(seen->first, value ? value : "") != 0)
		seen->conflict = true;
	return MHD_YES;
}

/* Only when guard.c's recv is not in effect (see http__guard_active): the
 * framing rules MHD's API lets us see at all. A malformed Content-Length
 * and control bytes in header values cannot be caught here (MHD answers
 * the first itself and truncates the second at a NUL). */
static const char *framing_error(struct MHD_Connection *c, const char *cl, const char *te)
{
	struct cl_seen seen = {0};
	if (te && strcasecmp(te, "chunked") != 0)
		return "unsupported transfer encoding (only chunked is accepted)";
	if (cl && te)
		return "Content-Length and Transfer-Encoding must not both be set";
	if (cl) {
		MHD_get_connection_values(c, MHD_HEADER_KIND, cl_dup, &seen);
		if (seen.conflict)
			return "conflicting Content-Length headers";
	}
	return NULL;
}

/* POST/PUT sys/storage/raft/snapshot[-force]: a snapshot upload, spooled
 * to a file and exempt from max_request_size (Vault exempts it too). Only
 * with a token (the core refuses a bad one once the body is in; without
 * one the body stays under the ordinary cap), and up to SPOOL_MAX: the
 * archive reader refuses more than 16 GiB of tar anyway. */
#define SPOOL_MAX (((uint64_t)16 << 30) + ((uint64_t)64 << 20))
static bool is_snapshot_upload(const char *method, const char *target, size_t len)
{
	static const char p1[] = "/v1/sys/storage/raft/snapshot";
	static const char p2[] = "/v1/sys/storage/raft/snapshot-force";
	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
		return false;
	const char *q = memchr(target, '?', len);
	size_t n = q ? (size_t)(q - target) : len;
	return (n == sizeof(p1) - 1 && !memcmp(target, p1, n)) ||
	       (n == sizeof(p2) - 1 && !memcmp(target, p2, n));
}

static int spool_write(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size,
				 void **con_cls)
{
	struct http_listener *l = cls;
	struct req *r = *con_cls;

	if (!r || !r->target)
		return send_error(c, 500, "out of memory", true);
	if (!r->started) {
		const union MHD_ConnectionInfo *si =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		struct conn *cc = si ? si->socket_context : NULL;
		const char *cl, *te;
		const char *bad = NULL;
		bool stopping;

		r->started = true;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_TRANSFER_ENCODING);
		r->in_body = te || (cl && strcmp(cl, "0") != 0);
		pthread_mutex_lock(&l->mu);
		stopping = l->stopping;
		if (!stopping) {
			l->inflight++;
			r->counted = true;
		}
		if (cc) { /* the header is complete: off its deadline */
			if (r->in_body)
				list_push(l, cc, L_BODY, now_ms());
			else
				list_unlink(l, cc);
		}
		pthread_mutex_unlock(&l->mu);
		if (stopping)
			return send_error(c, 503, "server is shutting down", true);
		if (cc && cc->over_limit)
			return send_error(c, 503, "too many open connections", true);
		if (!l->guard && (bad = framing_error(c, cl, te)) != NULL)
			return send_error(c, strncmp(bad, "unsupported", 11) ? 400 : 501, bad, true);
		/* The target MHD gave the URI callback ends one space before the
		 * version; if strlen() stops earlier, it held a raw NUL byte. */
		if (version && (uintptr_t)version > (uintptr_t)r->target_ptr &&
		    (uintptr_t)version - (uintptr_t)r->target_ptr - 1 != r->target_len &&
		    (uintptr_t)version - (uintptr_t)r->target_ptr - 1 < 1024 * 1024)
			return send_error(c, 400, "request path contains a NUL byte", true);
		const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Vault-Token");
		const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								MHD_HTTP_HEADER_AUTHORIZATION);
		r->spool = r->in_body && ((tok && *tok) || (authz && *authz)) &&
			   is_snapshot_upload(method, r->target, r->target_len);
		if (r->spool) {
			struct verr e = {0};
			r->spool_fd = tmpfd_open(l->spool_dir, &e);
			if (r->spool_fd < 0) {
				log_error("http", "snapshot upload: %s", e.msg);
				return send_error(c, 500, "cannot spool the upload to disk", true);
			}
		}
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (errno == 0 && end != cl &&
			    n > (r->spool ? SPOOL_MAX : (unsigned long long)l->max_body))
				return send_error(c, 413,
						  "failed to parse JSON input: http: request body too large",
						  true);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		r->received += n;
		if (now_ms() - r->start_ms > l->max_ms)
			return MHD_NO; /* trickled too long: drop the connection */
		if (r->too_large)
			return MHD_YES;
		if (r->spool) {
			if (r->received > SPOOL_MAX) {
				r->too_large = true; /* keep reading, stop keeping */
				r->spool = false;
				close(r->spool_fd);
				r->spool_fd = -1;
			} else if (!r->spool_failed && spool_write(r->spool_fd, upload_data, n)) {
				r->spool_failed = true;
			}
			return MHD_YES;
		}
		if (r->body_len + n > (uint64_t)l->max_body) {
			r->too_large = true; /* keep reading, stop keeping */
			free(r->body);
			r->body = NULL;
			r->body_len = r->body_cap = 0;
			return MHD_YES;
		}
		if (r->body_len + n > r->body_cap) {
			size_t cap = r->body_cap ? r->body_cap : 4096;
			char *nb;
			while (cap < r->body_len + n)
				cap *= 2;
			if (cap > (uint64_t)l->max_body)
				cap = (size_t)l->max_body;
			nb = realloc(r->body, cap);
			if (!nb)
				return MHD_NO;
			r->body = nb;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, upload_data, n);
		r->body_len += n;
		return MHD_YES;
	}
	if (r->in_body) { /* the body is complete: off its deadline */
		const union MHD_ConnectionInfo *si =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		struct conn *cc = si ? si->socket_context : NULL;
		r->in_body = false;
		if (cc) {
			pthread_mutex_lock(&l->mu);
			list_unlink(l, cc);
			pthread_mutex_unlock(&l->mu);
		}
	}
	return handle(l, c, r, method);
}

/* "host:port", "[v6]:port", ":port" -> a bound, listening socket. */
static int listen_on(struct http_listener *l, const char *address, struct verr *err)
{
	char host[256], port[16];
	const char *colon;
	struct addrinfo hints = {0}, *res = NULL;
	struct sockaddr_storage ss = {0};
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, zero = 0, rc;

	if (!address || !*address)
		return verr_set(err, VERR_INVALID, "listener address is empty");
	if (address[0] == '[') {
		const char *rb = strchr(address, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - address - 1) >= sizeof(host))
			return verr_set(err, VERR_INVALID, "bad listener address \"%s\"", address);
		snprintf(host, sizeof(host), "%.*s", (int)(rb - address - 1), address + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || (size_t)(colon - address) >= sizeof(host))
			return verr_set(err, VERR_INVALID,
					"bad listener address \"%s\" (want host:port)", address);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return verr_set(err, VERR_INVALID, "bad port in listener address \"%s\"", address);
	snprintf(port, sizeof(port), "%s", colon + 1);

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc && !host[0]) {
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, port, &hints, &res);
	}
	if (rc)
		return verr_set(err, VERR_INVALID, "cannot resolve listener address \"%s\": %s",
				address, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = verr_set(err, VERR_UNAVAILABLE, "socket: %s", strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6 && !host[0]) /* ":8200": both families */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024)) {
		rc = verr_set(err, VERR_UNAVAILABLE, "cannot listen on %s: %s", address,
			      strerror(errno));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		rc = verr_set(err, VERR_UNAVAILABLE, "getsockname: %s", strerror(errno));
		goto out;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss;
		char ip[INET6_ADDRSTRLEN] = "";
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		l->port = ntohs(a->sin6_port);
		snprintf(l->addr, sizeof(l->addr), "[%s]:%d", ip, l->port);
	} else {
		const struct sockaddr_in *a = (const void *)&ss;
		char ip[INET_ADDRSTRLEN] = "";
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): getsockname filled ss (zeroed before) */
		l->port = ntohs(a->sin_port);
		snprintf(l->addr, sizeof(l->addr), "%s:%d", ip, l->port);
	}
	l->lfd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

int http_listener_start(struct http_listener **out, const struct http_listener_opts *o,
			struct core *core, struct verr *err)
{
	struct http_listener *l;
	unsigned flags = MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[20];
	size_t n = 0;
	int rc;

	*out = NULL;
	signal(SIGPIPE, SIG_IGN);
	l = calloc(1, sizeof(*l));
	if (!l)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	l->lfd = -1;
	l->core = core;
	l->max_body = o->max_request_size > 0 ? o->max_request_size : DEFAULT_MAX_BODY;
	l->spool_dir = o->spool_dir ? strdup(o->spool_dir) : NULL;
	l->max_ms = (o->max_request_duration > 0 ? o->max_request_duration : DEFAULT_MAX_DURATION) *
		    1000;
	l->conn_limit = o->connection_limit ? o->connection_limit : DEFAULT_CONN_LIMIT;
	l->per_ip = o->connection_limit_per_ip ? o->connection_limit_per_ip : DEFAULT_PER_IP;
	l->reserve = l->conn_limit / 16 + 1;
	if (l->reserve >= l->conn_limit)
		l->reserve = l->conn_limit - 1;
	{
		int64_t idle = o->idle_timeout ? o->idle_timeout : DEFAULT_IDLE;
		int64_t hdr = o->read_header_timeout ? o->read_header_timeout
						     : DEFAULT_HEADER_TIMEOUT;
		l->deadline_ms[L_HEADER] = hdr * 1000;
		l->deadline_ms[L_IDLE] = (idle + hdr) * 1000;
		l->deadline_ms[L_BODY] =
			(int64_t)(o->read_timeout ? o->read_timeout : DEFAULT_READ_TIMEOUT) * 1000;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	pthread_mutex_init(&l->wmu, NULL);
	pthread_cond_init(&l->wdone, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->reaper_cv, &ca);
		pthread_cond_init(&l->wcv, &ca);
		pthread_condattr_destroy(&ca);
	}
	l->offload = o->thread_pool_size > 0;
	l->inline_ok = o->inline_ok;
	l->wmax = l->conn_limit + HARD_LIMIT_MARGIN;
	{
		size_t cap = 64;
		while (cap < 2 * ((size_t)l->conn_limit + HARD_LIMIT_MARGIN))
			cap *= 2;
		l->ips.slots = calloc(cap, sizeof(*l->ips.slots));
		l->ips.mask = cap - 1;
		if (!l->ips.slots || RAND_bytes((unsigned char *)l->ips.seed, sizeof(l->ips.seed)) != 1) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto fail;
		}
	}
	l->guard = http__guard_active();
	if (!l->guard)
		log_warn("http", "strict request framing is off: libmicrohttpd does not read through this binary's recv()");

	l->cluster = o->cluster;
	l->unauth_metrics = o->unauthenticated_metrics_access;
	if (o->cluster) {
		rc = http__tls_new_cluster(&l->tls, core, err);
		if (rc)
			goto fail;
	} else if (!o->tls_disable) {
		rc = http__tls_new(&l->tls, o, err);
		if (rc)
			goto fail;
	}
	rc = listen_on(l, o->address, err);
	if (rc)
		goto fail;

	/* the logger first, so MHD routes every later message through it */
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
	if (o->thread_pool_size) {
		flags |= MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
						    (intptr_t)o->thread_pool_size, NULL};
	} else {
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL;
	}
	if (l->tls) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
						    (void *)http__tls_priorities(l->tls)};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
						    (void *)no_cert};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->lfd, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
					    (intptr_t)(l->conn_limit + HARD_LIMIT_MARGIN), NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
					    (intptr_t)(o->idle_timeout ? o->idle_timeout : DEFAULT_IDLE),
					    NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE, THREAD_STACK, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, l};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	l->d = MHD_start_daemon(flags, 0, on_accept, l, on_access, l, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (!l->d) {
		rc = verr_set(err, VERR_UNAVAILABLE, "cannot start the HTTP listener on %s",
			      l->addr);
		goto fail;
	}
	if (pthread_create(&l->reaper, NULL, reaper_main, l) != 0) {
		MHD_stop_daemon(l->d);
		l->lfd = -1; /* closed by MHD */
		rc = verr_set(err, VERR_INTERNAL, "cannot start the connection reaper thread");
		goto fail;
	}
	l->reaper_started = true;
	log_info("http", "listening on %s (%s)", l->addr,
		 l->cluster ? "cluster, mutual tls" : l->tls ? "tls" : "tls disabled");
	*out = l;
	return 0;
fail:
	if (l->lfd >= 0)
		close(l->lfd);
	http__tls_free(l->tls);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	pthread_cond_destroy(&l->reaper_cv);
	pthread_mutex_destroy(&l->wmu);
	pthread_cond_destroy(&l->wcv);
	pthread_cond_destroy(&l->wdone);
	free(l->ips.slots);
	free(l->spool_dir);
	free(l);
	return rc;
}

int http_listener_reload_tls(struct http_listener *l, struct verr *err)
{
	int rc;
	if (!l->tls)
		return 0;
	rc = http__tls_reload(l->tls, err);
	if (rc == 0)
		log_info("http", "reloaded TLS certificate for %s", l->addr);
	return rc;
}

void http_listener_stop(struct http_listener *l)
{
	MHD_socket fd;
	struct timespec dl;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	fd = MHD_quiesce_daemon(l->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STOP_GRACE_MS / 1000;
	pthread_mutex_lock(&l->mu);
	while (l->inflight > 0)
		if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT)
			break;
	if (l->inflight)
		log_warn("http", "stopping with %u requests still in flight", l->inflight);
	l->reaper_stop = true;
	pthread_cond_signal(&l->reaper_cv);
	pthread_mutex_unlock(&l->mu);
	if (l->reaper_started)
		pthread_join(l->reaper, NULL);
	/* MHD must not stop with suspended connections: every offloaded
	 * request finishes (and resumes its connection) first */
	pthread_mutex_lock(&l->wmu);
	l->wstop = true;
	pthread_cond_broadcast(&l->wcv);
	while (l->wthreads > 0)
		pthread_cond_wait(&l->wdone, &l->wmu);
	pthread_mutex_unlock(&l->wmu);

	MHD_stop_daemon(l->d);
	http__tls_free(l->tls);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	pthread_cond_destroy(&l->reaper_cv);
	pthread_mutex_destroy(&l->wmu);
	pthread_cond_destroy(&l->wcv);
	pthread_cond_destroy(&l->wdone);
	free(l->ips.slots);
	free(l->spool_dir);
	free(l);
}

const char *http_listener_address(const struct http_listener *l)
{
	return l->addr;
}

int http_listener_port(const struct http_listener *l)
{
	return l->port;
}
