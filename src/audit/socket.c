/*
 * socket.c - the `socket` audit device: writes lines to a TCP, UDP or Unix
 * stream socket.
 *
 * Options (besides the common ones): address ("127.0.0.1:9090"; a path for
 * unix), socket_type (tcp | udp | unix, default tcp), write_timeout
 * (default "2s"). The peer must be reachable at enable. Every write is
 * bounded by write_timeout: connect and send use non-blocking sockets and
 * poll(), so a peer that accepts but never reads cannot hold the writer
 * thread longer than that. A failed or timed-out write closes the
 * connection (the peer may hold a partial line); the next write reconnects.
 * Before writing, a connection the peer has closed is noticed (readable
 * with EOF) and replaced, so "peer gone" fails the write instead of
 * vanishing into a dead socket.
 */
#include "audit/format.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum sock_kind { SOCK_K_TCP, SOCK_K_UDP, SOCK_K_UNIX };

struct socket_dev {
	struct audit_base base; /* first */
	enum sock_kind kind;
	char *address;
	int64_t timeout_ms;
	int fd;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sock_close(struct socket_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* Connect one non-blocking socket to addr within the deadline. */
static int connect_one(int family, int type, const struct sockaddr *sa, socklen_t salen,
		       int64_t deadline, int *out)
{
	int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, salen) != 0) {
		if (errno != EINPROGRESS) {
			int e = errno;
			close(fd);
			return -e;
		}
		for (;;) {
			int64_t left = deadline - mono_ms();
			if (left <= 0) {
				close(fd);
				return -ETIMEDOUT;
			}
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int r = poll(&p, 1, (int)left);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(fd);
				return r == 0 ? -ETIMEDOUT : -errno;
			}
			int soerr = 0;
			socklen_t l = sizeof(soerr);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
			if (soerr) {
				close(fd);
				return -soerr;
			}
			break;
		}
	}
	*out = fd;
	return 0;
}

static int sock_connect(struct socket_dev *d, struct verr *err)
{
	int64_t deadline = mono_ms() + d->timeout_ms;
	int e = 0;
	if (d->kind == SOCK_K_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		if (strlen(d->address) >= sizeof(sun.sun_path))
			return verr_set(err, VERR_INVALID, "unix socket path is too long");
		memcpy(sun.sun_path, d->address, strlen(d->address) + 1);
		e = connect_one(AF_UNIX, SOCK_STREAM, (struct sockaddr *)&sun, sizeof(sun), deadline,
				&d->fd);
	} else {
		char host[256];
		const char *colon = strrchr(d->address, ':');
		if (!colon || colon == d->address || !colon[1])
			return verr_set(err, VERR_INVALID, "address must be host:port");
		size_t hl = (size_t)(colon - d->address);
		if (hl >= sizeof(host))
			return verr_set(err, VERR_INVALID, "address is too long");
		memcpy(host, d->address, hl);
		host[hl] = '\0';
		if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') { /* [::1]:9090 */
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = '\0';
		}
		struct addrinfo hints = {.ai_family = AF_UNSPEC,
					 .ai_socktype = d->kind == SOCK_K_UDP ? SOCK_DGRAM : SOCK_STREAM};
		struct addrinfo *res = NULL;
		int g = getaddrinfo(host, colon + 1, &hints, &res);
		if (g != 0)
			return verr_set(err, VERR_INVALID, "cannot resolve audit socket address: %s",
					gai_strerror(g));
		e = -EHOSTUNREACH;
		for (struct addrinfo *a = res; a; a = a->ai_next) {
			e = connect_one(a->ai_family, a->ai_socktype, a->ai_addr, a->ai_addrlen, deadline,
					&d->fd);
			if (e == 0)
				break;
		}
		freeaddrinfo(res);
	}
	if (e)
		return verr_set(err, VERR_INVALID, "cannot connect to the audit socket %s: %s",
				d->address, strerror(-e));
	return 0;
}

/* A stream whose peer has closed reads EOF (or an error): not writable. */
static bool sock_peer_gone(struct socket_dev *d)
{
	if (d->kind == SOCK_K_UDP)
		return false;
	struct pollfd p = {.fd = d->fd, .events = POLLIN | POLLRDHUP};
	if (poll(&p, 1, 0) <= 0)
		return false;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return true;
	char c;
	ssize_t n = recv(d->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void socket_free(void *dev)
{
	struct socket_dev *d = dev;
	if (!d)
		return;
	sock_close(d);
	audit_format_free(d->base.fmt);
	free(d->address);
	free(d);
}

static int socket_new(void **out, const json_t *options, const struct audit_device_env *env,
		      struct verr *err)
{
	struct socket_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	d->fd = -1;
	int rc = audit_format_new(&d->base.fmt, options, env, err);
	if (rc)
		goto out;
	const char *type = audit_opt_str(options, "socket_type", "tcp");
	if (!*type || !strcmp(type, "tcp")) {
		d->kind = SOCK_K_TCP;
	} else if (!strcmp(type, "udp")) {
		d->kind = SOCK_K_UDP;
	} else if (!strcmp(type, "unix")) {
		d->kind = SOCK_K_UNIX;
	} else {
		rc = verr_set(err, VERR_INVALID, "socket_type must be tcp, udp or unix");
		goto out;
	}
	const char *addr = audit_opt_str(options, "address", "127.0.0.1:9090");
	if (!*addr)
		addr = "127.0.0.1:9090";
	if ((rc = audit_opt_duration_ms(&d->timeout_ms, options, "write_timeout",
					AUDIT_DEFAULT_TIMEOUT_MS, err)))
		goto out;
	if (d->timeout_ms <= 0)
		d->timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS;
	d->address = strdup(addr);
	if (!d->address) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = sock_connect(d, err);
out:
	if (rc) {
		socket_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

static int socket_log(void *dev, const char *buf, size_t len, int64_t timeout_ms,
		      struct verr *err)
{
	struct socket_dev *d = dev;
	int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : d->timeout_ms);
	if (d->fd >= 0 && sock_peer_gone(d))
		sock_close(d);
	if (d->fd < 0) {
		struct verr ce = {0};
		if (sock_connect(d, &ce))
			return verr_set(err, VERR_INTERNAL, "%s", ce.msg);
	}
	if (d->kind == SOCK_K_UDP) {
		/* one datagram per line */
		const char *p = buf, *end = buf + len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
			if (send(d->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				int e = errno;
				sock_close(d);
				return verr_set(err, VERR_INTERNAL, "audit socket write failed: %s",
						strerror(e));
			}
			p += n;
		}
		return 0;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(d->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int64_t left = deadline - mono_ms();
			struct pollfd p = {.fd = d->fd, .events = POLLOUT};
			int r = left > 0 ? poll(&p, 1, (int)left) : 0;
			if (r > 0 || (r < 0 && errno == EINTR))
				continue;
			sock_close(d);
			return verr_set(err, VERR_INTERNAL, "audit socket write timed out");
		}
		int e = n < 0 ? errno : EIO;
		sock_close(d);
		return verr_set(err, VERR_INTERNAL, "audit socket write failed: %s", strerror(e));
	}
	return 0;
}

static int socket_reopen(void *dev, struct verr *err)
{
	struct socket_dev *d = dev;
	sock_close(d);
	return sock_connect(d, err);
}

static int64_t socket_timeout_ms(void *dev)
{
	return ((struct socket_dev *)dev)->timeout_ms;
}

const struct audit_device_ops audit_socket_ops = {
	.type = "socket",
	.new = socket_new,
	.format = audit_base_format,
	.format_entry = audit_base_format_entry,
	.hash = audit_base_hash,
	.log = socket_log,
	.reopen = socket_reopen,
	.tail = NULL,
	.timeout_ms = socket_timeout_ms,
	.free = socket_free,
};
