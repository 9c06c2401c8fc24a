/*
 * guard.c - strict HTTP/1.1 request framing, enforced on the bytes
 * libmicrohttpd receives, before its own parser sees them.
 *
 * Why here and not in the request handler: libmicrohttpd 0.9.75 gives the
 * application no hook between "headers received" and its own framing
 * decisions, and some of those decisions are wrong or unobservable:
 *   - a malformed Content-Length ("-1", "abc", "1e20") is answered by MHD
 *     itself, and a state-machine bug writes the status line and headers
 *     twice (the second copy lands in the first answer's body);
 *   - header values are stored as C strings, so a NUL inside X-Vault-Token
 *     silently truncates it (the request authenticates as the prefix);
 *   - ~1,000 query arguments exhaust the per-connection pool while MHD
 *     builds its argument list, and its 431 is then never sent.
 * So the listener registers each plain-HTTP connection's socket here, and
 * this file interposes recv(2) (and gnutls_record_recv for TLS listeners):
 * every byte MHD reads from a registered connection first goes through a
 * small streaming scanner (http__scan) that tracks request boundaries
 * (request line, header lines, Content-Length / chunked bodies) and rejects
 * what a strict parser must reject. On a violation we write one complete
 * error answer ourselves, half-close, and report end-of-stream to MHD, which
 * then closes the connection without writing anything of its own (so the
 * bytes of that read never reach MHD: a good request pipelined ahead of the
 * bad one in the same read is not answered either).
 * Descriptors that are not registered (libpq, curl, everything else) go
 * straight to the real recv. The scanner never buffers or alters bytes.
 *
 * DESIGN
 * State: one struct http_guard per connection, embedded in the listener's
 *   per-connection context; only the thread MHD runs that connection on
 *   touches it (registration happens before that thread starts reading, the
 *   slot is cleared in MHD's "closed" notification, before the descriptor is
 *   closed, so a reused fd number never finds a stale entry).
 * Table: fd -> guard, one process-wide array of atomic pointers sized from
 *   RLIMIT_NOFILE at first use (never freed). Descriptors past its end are
 *   served unguarded (counted in the log).
 * Sync: if the scanner ever meets something it cannot follow (a chunk size
 *   it cannot parse), it switches itself off for the rest of that
 *   connection rather than risk rejecting a valid request: MHD's own checks
 *   still apply there.
 */
/* this file defines recv(); glibc's fortified inline wrapper would clash */
#undef _FORTIFY_SOURCE
#include "http/http_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "util/log.h"

/* ---- the scanner (pure) ---- */

enum {
	S_LINE_START,  /* before a request (empty lines allowed) */
	S_METHOD,
	S_TARGET,
	S_VERSION,
	S_HDR_START,   /* at the start of a header line */
	S_NAME,
	S_VALUE,
	S_VALUE_CR,    /* saw CR inside a header line */
	S_END_CR,      /* saw CR on the empty line */
	S_BODY,        /* Content-Length bytes left */
	S_CHUNK_SIZE,
	S_CHUNK_EXT,
	S_CHUNK_DATA,
	S_CHUNK_DATA_END,
	S_TRAILER_START,
	S_TRAILER,
	S_OFF,         /* lost sync: pass everything through */
};

enum { H_OTHER, H_CL, H_TE };

void http__scan_init(struct http_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->st = S_LINE_START;
}

static void scan_reset_request(struct http_scan *s)
{
	s->nargs = 0;
	s->in_query = false;
	s->have_cl = false;
	s->have_te = false;
	s->chunked = false;
	s->cl = 0;
}

static int scan_fail(struct http_scan *s, int status, const char *msg, const char **why)
{
	*why = msg;
	s->st = S_OFF;
	s->failed = true;
	return status;
}

/* A header line ended: check the value of the headers framing depends on. */
static int scan_header_done(struct http_scan *s, const char **why)
{
	size_t n = s->vlen;
	if (s->hdr == H_OTHER)
		return 0;
	while (n && (s->val[n - 1] == ' ' || s->val[n - 1] == '\t'))
		n--;
	if (s->hdr == H_CL) {
		uint64_t v = 0;
		if (s->vlong || n == 0 || n > 19)
			return scan_fail(s, 400, "invalid Content-Length header", why);
		for (size_t i = 0; i < n; i++) {
			if (s->val[i] < '0' || s->val[i] > '9')
				return scan_fail(s, 400, "invalid Content-Length header", why);
			v = v * 10 + (uint64_t)(s->val[i] - '0');
		}
		if (s->have_cl && s->cl != v)
			return scan_fail(s, 400, "conflicting Content-Length headers", why);
		s->have_cl = true;
		s->cl = v;
		return 0;
	}
	/* Transfer-Encoding: Go's server accepts exactly "chunked" */
	if (s->have_te)
		return scan_fail(s, 400, "more than one Transfer-Encoding header", why);
	s->have_te = true;
	if (s->vlong || n != 7 || strncasecmp(s->val, "chunked", 7) != 0)
		return scan_fail(s, 501, "unsupported transfer encoding (only chunked is accepted)",
				 why);
	s->chunked = true;
	return 0;
}

static int hexdigit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

int http__scan(struct http_scan *s, const char *buf, size_t n, size_t *req_off, const char **why)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	*req_off = 0;
	while (i < n) {
		unsigned char c = p[i];
		switch (s->st) {
		case S_OFF:
			return 0;
		case S_LINE_START:
			if (c == '\r' || c == '\n') {
				i++;
				break;
			}
			*req_off = i;
			scan_reset_request(s);
			s->st = S_METHOD;
			break;
		case S_METHOD:
			if (c == ' ')
				s->st = S_TARGET;
			else if (c == '\n')
				s->st = S_HDR_START; /* malformed: MHD answers it */
			i++;
			break;
		case S_TARGET:
			if (c == ' ') {
				s->st = S_VERSION;
			} else if (c == '\n') {
				s->st = S_HDR_START;
			} else if (c == '?' && !s->in_query) {
				s->in_query = true;
				s->nargs = 1;
			} else if (c == '&' && s->in_query && ++s->nargs > HTTP_MAX_QUERY_ARGS) {
				return scan_fail(s, 400, "too many query parameters", why);
			}
			i++;
			break;
		case S_VERSION:
			if (c == '\n')
				s->st = S_HDR_START;
			i++;
			break;
		case S_HDR_START:
			if (c == '\r') {
				s->st = S_END_CR;
				i++;
				break;
			}
			if (c == '\n') {
				s->st = S_END_CR;
				break; /* handled there */
			}
			if (c == ' ' || c == '\t')
				return scan_fail(s, 400, "obsolete header line folding is not accepted",
						 why);
			s->st = S_NAME;
			s->nlen = 0;
			s->hdr = H_OTHER;
			break;
		case S_NAME:
			if (c == ':') {
				static const char cl[] = "content-length", te[] = "transfer-encoding";
				if (s->nlen == sizeof(cl) - 1 && !memcmp(s->name, cl, s->nlen))
					s->hdr = H_CL;
				else if (s->nlen == sizeof(te) - 1 && !memcmp(s->name, te, s->nlen))
					s->hdr = H_TE;
				s->vlen = 0;
				s->vlong = false;
				s->vstarted = false;
				s->st = S_VALUE;
			} else if (c == '\n') {
				s->st = S_HDR_START; /* no colon: MHD answers it */
			} else if (is_ctl(c) && c != '\r') {
				return scan_fail(s, 400, "control character in a header name", why);
			} else if (s->nlen < sizeof(s->name)) {
				s->name[s->nlen++] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
			} else {
				s->nlen = sizeof(s->name); /* longer than any name we look for */
				s->name[0] = '\0';
			}
			i++;
			break;
		case S_VALUE:
			if (c == '\r') {
				s->st = S_VALUE_CR;
				i++;
				break;
			}
			if (c == '\n') {
				int rc = scan_header_done(s, why);
				if (rc)
					return rc;
				s->st = S_HDR_START;
				i++;
				break;
			}
			if (is_ctl(c))
				return scan_fail(s, 400, c ? "control character in a header value"
							   : "NUL byte in a header value",
						 why);
			if (s->hdr != H_OTHER && (s->vstarted || (c != ' ' && c != '\t'))) {
				s->vstarted = true;
				if (s->vlen < sizeof(s->val))
					s->val[s->vlen++] = (char)c;
				else
					s->vlong = true;
			}
			i++;
			break;
		case S_VALUE_CR:
			if (c != '\n')
				return scan_fail(s, 400, "control character in a header value", why);
			s->st = S_VALUE;
			break; /* the LF ends the line in S_VALUE */
		case S_END_CR:
			if (c != '\n')
				return scan_fail(s, 400, "malformed end of the request header", why);
			i++;
			if (s->have_cl && s->have_te)
				return scan_fail(s, 400,
						 "Content-Length and Transfer-Encoding must not both be set",
						 why);
			if (s->chunked) {
				s->left = 0;
				s->st = S_CHUNK_SIZE;
			} else if (s->cl) {
				s->left = s->cl;
				s->st = S_BODY;
			} else {
				s->st = S_LINE_START;
			}
			break;
		case S_BODY: {
			size_t take = n - i;
			if ((uint64_t)take > s->left)
				take = (size_t)s->left;
			s->left -= take;
			i += take;
			if (s->left == 0)
				s->st = S_LINE_START;
			break;
		}
		case S_CHUNK_SIZE: {
			int h = hexdigit(c);
			if (h >= 0) {
				if (s->left >> 56) { /* absurd size: let MHD refuse it */
					s->st = S_OFF;
					return 0;
				}
				s->left = s->left * 16 + (uint64_t)h;
				s->nchunkdigits = 1;
			} else if (c == ';' || c == ' ' || c == '\t') {
				s->st = S_CHUNK_EXT;
			} else if (c == '\n') {
				if (!s->nchunkdigits) {
					s->st = S_OFF;
					return 0;
				}
				s->nchunkdigits = 0;
				s->st = s->left ? S_CHUNK_DATA : S_TRAILER_START;
			} else if (c != '\r') {
				s->st = S_OFF; /* not a chunk size: MHD rejects it */
				return 0;
			}
			i++;
			break;
		}
		case S_CHUNK_EXT:
			if (c == '\n') {
				s->st = S_CHUNK_SIZE;
				break; /* the LF is taken there */
			}
			i++;
			break;
		case S_CHUNK_DATA: {
			size_t take = n - i;
			if ((uint64_t)take > s->left)
				take = (size_t)s->left;
			s->left -= take;
			i += take;
			if (s->left == 0)
				s->st = S_CHUNK_DATA_END;
			break;
		}
		case S_CHUNK_DATA_END:
			if (c == '\n')
				s->st = S_CHUNK_SIZE;
			else if (c != '\r') {
				s->st = S_OFF;
				return 0;
			}
			i++;
			break;
		case S_TRAILER_START:
			if (c == '\n')
				s->st = S_LINE_START;
			else if (c != '\r')
				s->st = S_TRAILER;
			i++;
			break;
		case S_TRAILER:
			if (c == '\n')
				s->st = S_TRAILER_START;
			i++;
			break;
		default:
			s->st = S_OFF;
			return 0;
		}
	}
	return 0;
}

/* ---- the descriptor table and the interposed receive calls ---- */

/* guard_cap is published (release) after guard_tab is set, so a reader that
 * sees a non-zero capacity (acquire) sees the table. */
static _Atomic(struct http_guard *) *guard_tab;
static atomic_size_t guard_cap;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static atomic_uint guard_overflow;

typedef ssize_t (*tls_recv_fn)(gnutls_session_t s, void *data, size_t n);
static tls_recv_fn real_tls_recv;

static void guard_setup(void)
{
	struct rlimit rl;
	size_t cap = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > 1024)
		cap = rl.rlim_cur < (1u << 20) ? (size_t)rl.rlim_cur : (1u << 20);
	guard_tab = calloc(cap, sizeof(*guard_tab));
	atomic_store_explicit(&guard_cap, guard_tab ? cap : 0, memory_order_release);
	real_tls_recv = (tls_recv_fn)dlsym(RTLD_NEXT, "gnutls_record_recv");
}

bool http__guard_active(void)
{
	/* recv must resolve to the definition below, or nothing is checked */
	void *sym = dlsym(RTLD_DEFAULT, "recv");
	return sym == (void *)recv;
}

void http__guard_attach(struct http_guard *g, int fd, void *tls_session)
{
	pthread_once(&guard_once, guard_setup);
	http__scan_init(&g->scan);
	g->fd = fd;
	g->tls_session = tls_session;
	g->dead = false;
	g->attached = false;
	if (fd < 0 || (size_t)fd >= atomic_load(&guard_cap)) {
		if (atomic_fetch_add(&guard_overflow, 1) == 0)
			log_warn("http", "descriptor %d is past the framing guard's table (%zu); such connections are not pre-parsed",
				 fd, atomic_load(&guard_cap));
		return;
	}
	atomic_store_explicit(&guard_tab[fd], g, memory_order_release);
	g->attached = true;
}

void http__guard_detach(struct http_guard *g)
{
	if (!g->attached)
		return;
	atomic_store_explicit(&guard_tab[g->fd], NULL, memory_order_release);
	g->attached = false;
}

static struct http_guard *guard_lookup(int fd)
{
	if (fd < 0 || (size_t)fd >= atomic_load_explicit(&guard_cap, memory_order_acquire))
		return NULL;
	return atomic_load_explicit(&guard_tab[fd], memory_order_acquire);
}

static const char *reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	default: return "Error";
	}
}

/* Write the whole error answer (small: it fits the empty send buffer of a
 * connection that has not been answered yet), half-close, and drop what the
 * client already sent so the close does not turn into a reset that could
 * destroy the answer in flight. */
static void guard_reject(struct http_guard *g, int status, const char *msg)
{
	char body[256], out[640], date[64];
	time_t t = time(NULL);
	struct tm tm;
	int bl = snprintf(body, sizeof(body), "{\"errors\":[\"%s\"]}\n", msg);
	date[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
			 "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			 status, reason(status), date, bl, body);
	char sink[4096];

	log_debug("http", "rejected a request (%d): %s", status, msg);
	if (g->tls_session) {
		gnutls_record_send(g->tls_session, out, (size_t)n);
	} else {
		(void)send(g->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		shutdown(g->fd, SHUT_WR);
		for (int k = 0; k < 16; k++)
			if (recvfrom(g->fd, sink, sizeof(sink), MSG_DONTWAIT, NULL, NULL) <= 0)
				break;
	}
	g->dead = true;
}

/* What MHD gets back from one read of n bytes that came in as `got`. */
static ssize_t guard_filter(struct http_guard *g, const void *buf, ssize_t got)
{
	const char *msg = NULL;
	size_t off = 0;
	int st;

	if (got <= 0 || g->scan.st == S_OFF)
		return got;
	st = http__scan(&g->scan, buf, (size_t)got, &off, &msg);
	if (!st)
		return got;
	/* Requests pipelined ahead of the bad one in this same read are not
	 * served: MHD may read again before it answers them, so there is no
	 * order in which both answers could be written reliably. */
	(void)off;
	guard_reject(g, st, msg);
	return 0;
}

/* The definitions libmicrohttpd's calls resolve to (the executable's symbols
 * come first in the dynamic lookup). */
ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct http_guard *g = guard_lookup(fd);
	if (!g || g->tls_session || (flags & MSG_PEEK))
		return recvfrom(fd, buf, n, flags, NULL, NULL);
	if (g->dead)
		return 0;
	return guard_filter(g, buf, recvfrom(fd, buf, n, flags, NULL, NULL));
}

ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t n)
{
	struct http_guard *g;
	pthread_once(&guard_once, guard_setup);
	if (!real_tls_recv)
		return GNUTLS_E_INTERNAL_ERROR;
	/* MHD sets the socket as the session's int transport */
	g = guard_lookup(gnutls_transport_get_int(session));
	if (!g || g->tls_session != session)
		return real_tls_recv(session, data, n);
	if (g->dead)
		return 0;
	return guard_filter(g, data, real_tls_recv(session, data, n));
}
