/*
 * syslog.c - the `syslog` audit device: one syslog message per entry, sent
 * to the local syslog daemon's datagram socket (/dev/log).
 *
 * Options (besides the common ones): facility (default "AUTH"), tag
 * (default "vault"). The message is RFC 3164 framed by us rather than by
 * syslog(3): openlog()'s tag is process-wide, and two syslog devices may
 * use different tags and facilities. Sends are non-blocking with a bounded
 * poll (2 s), so a stuck daemon fails the write instead of hanging it.
 */
#include "audit/format.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The daemon's socket; tests point it elsewhere by including this file. */
static const char *syslog_socket_path = "/dev/log";

struct syslog_dev {
	struct audit_base base; /* first */
	int facility;           /* code << 3 */
	char *tag;
	int fd;
};

static const struct {
	const char *name;
	int code;
} facilities[] = {
	{"KERN", 0}, {"USER", 1}, {"MAIL", 2}, {"DAEMON", 3}, {"AUTH", 4}, {"SYSLOG", 5},
	{"LPR", 6}, {"NEWS", 7}, {"UUCP", 8}, {"CRON", 9}, {"AUTHPRIV", 10}, {"FTP", 11},
	{"LOCAL0", 16}, {"LOCAL1", 17}, {"LOCAL2", 18}, {"LOCAL3", 19}, {"LOCAL4", 20},
	{"LOCAL5", 21}, {"LOCAL6", 22}, {"LOCAL7", 23}, {NULL, 0},
};

static int syslog_connect(struct syslog_dev *d, struct verr *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(syslog_socket_path) >= sizeof(sun.sun_path))
		return verr_set(err, VERR_INVALID, "syslog socket path is too long");
	memcpy(sun.sun_path, syslog_socket_path, strlen(syslog_socket_path) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return verr_set(err, VERR_INTERNAL, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		close(fd);
		return verr_set(err, VERR_INVALID, "cannot connect to syslog at %s: %s",
				syslog_socket_path, strerror(e));
	}
	d->fd = fd;
	return 0;
}

static void syslog_free(void *dev)
{
	struct syslog_dev *d = dev;
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	audit_format_free(d->base.fmt);
	free(d->tag);
	free(d);
}

static int syslog_new(void **out, const json_t *options, const struct audit_device_env *env,
		      struct verr *err)
{
	struct syslog_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	d->fd = -1;
	int rc = audit_format_new(&d->base.fmt, options, env, err);
	if (rc)
		goto out;
	const char *fac = audit_opt_str(options, "facility", "AUTH");
	if (!*fac)
		fac = "AUTH";
	d->facility = -1;
	for (int i = 0; facilities[i].name; i++)
		if (!strcasecmp(facilities[i].name, fac))
			d->facility = facilities[i].code << 3;
	if (d->facility < 0) {
		rc = verr_set(err, VERR_INVALID, "unknown syslog facility \"%s\"", fac);
		goto out;
	}
	const char *tag = audit_opt_str(options, "tag", "vault");
	if (!*tag)
		tag = "vault";
	if (strlen(tag) > 48 || strpbrk(tag, " \r\n:[]")) {
		rc = verr_set(err, VERR_INVALID, "syslog tag must be at most 48 characters without spaces, ':' or brackets");
		goto out;
	}
	d->tag = strdup(tag);
	if (!d->tag) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = syslog_connect(d, err);
out:
	if (rc) {
		syslog_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

static int send_one(struct syslog_dev *d, const char *msg, size_t n, int64_t timeout_ms,
		    struct verr *err)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char head[128];
	char ts[32];
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	int hl = snprintf(head, sizeof(head), "<%d>%s %s[%d]: ", d->facility | 6 /* info */, ts,
			  d->tag, (int)getpid());
	struct iovec iov[2] = {{head, (size_t)hl}, {(void *)msg, n}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	for (;;) {
		if (sendmsg(d->fd, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = {.fd = d->fd, .events = POLLOUT};
			if (poll(&p, 1, (int)timeout_ms) > 0)
				continue;
			return verr_set(err, VERR_INTERNAL, "syslog write timed out");
		}
		return verr_set(err, VERR_INTERNAL, "syslog write failed: %s", strerror(errno));
	}
}

static int syslog_log(void *dev, const char *buf, size_t len, int64_t timeout_ms,
		      struct verr *err)
{
	struct syslog_dev *d = dev;
	if (d->fd < 0) {
		int rc = syslog_connect(d, err);
		if (rc)
			return rc;
	}
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int rc = send_one(d, p, n, timeout_ms > 0 ? timeout_ms : AUDIT_DEFAULT_TIMEOUT_MS, err);
		if (rc) {
			close(d->fd);
			d->fd = -1;
			return rc;
		}
		p += n + (nl ? 1 : 0);
	}
	return 0;
}

static int syslog_reopen(void *dev, struct verr *err)
{
	struct syslog_dev *d = dev;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	return syslog_connect(d, err);
}

static int64_t syslog_timeout_ms(void *dev)
{
	return AUDIT_DEFAULT_TIMEOUT_MS;
}

const struct audit_device_ops audit_syslog_ops = {
	.type = "syslog",
	.new = syslog_new,
	.format = audit_base_format,
	.format_entry = audit_base_format_entry,
	.hash = audit_base_hash,
	.log = syslog_log,
	.reopen = syslog_reopen,
	.tail = NULL,
	.timeout_ms = syslog_timeout_ms,
	.free = syslog_free,
};
