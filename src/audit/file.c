/*
 * file.c - the `file` audit device: appends lines to a file, to standard
 * output (file_path=stdout) or nowhere (file_path=discard).
 *
 * Options (besides the common ones in format.c): file_path (required), mode
 * (octal string, default "0600"; "0000" leaves the mode alone; any execute
 * bit is refused, the CVE-2025-6000 fix). The file is opened O_APPEND at
 * enable (a file that cannot be opened is refused then) and reopened on
 * SIGHUP (log rotation). The mode is applied to regular files only, so a
 * device path such as /dev/full keeps its permissions.
 *
 * Writes to a file path (and discard) run inline on the request thread
 * that holds the broker's writer role for the device (group commit, see
 * src/core/audit_broker.c); stdout goes through the writer thread, since a
 * pipe can stall without bound. A write that cannot complete (a stuck disk)
 * blocks only the thread writing; every other request stops waiting after
 * the device's timeout (2 s) and counts the write as failed.
 *
 * A failed or short write (disk full mid-line, EFBIG, EIO) is rolled back:
 * the file is truncated to the size it had before the write, so the log
 * still ends with a complete, chained line. If the truncation fails (not a
 * regular file, or ftruncate refused), `kept` reports the bytes left
 * behind and the broker terminates the torn line and records it in the
 * chain. If a write fails the file is closed and opened again before the
 * next one.
 */
#include "audit/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum file_kind { FILE_PATH, FILE_STDOUT, FILE_DISCARD };

struct file_dev {
	struct audit_base base; /* first: format/hash slots */
	enum file_kind kind;
	char *path;
	mode_t mode;            /* 0: leave the mode alone */
	int fd;                 /* -1: closed (reopened on the next write) */
	size_t kept;            /* bytes the last failed write left behind */
};

static int file_open(struct file_dev *d, struct verr *err)
{
	if (d->kind != FILE_PATH)
		return 0;
	/* create the parent directory like Vault does (0700, one level) */
	char *dir = strdup(d->path);
	if (!dir)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			free(dir);
			return verr_set(err, VERR_INVALID, "cannot create the audit log directory: %s",
					strerror(errno));
		}
	}
	free(dir);
	int fd = open(d->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
		      d->mode ? d->mode : 0600);
	if (fd < 0)
		return verr_set(err, VERR_INVALID, "cannot open the audit log file: %s",
				strerror(errno));
	struct stat st;
	if (d->mode && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & 07777) != d->mode && fchmod(fd, d->mode) != 0) {
		int e = errno;
		close(fd);
		return verr_set(err, VERR_INVALID, "cannot set the audit log file mode: %s",
				strerror(e));
	}
	d->fd = fd;
	return 0;
}

static void file_close(struct file_dev *d)
{
	if (d->kind == FILE_PATH && d->fd >= 0)
		close(d->fd);
	if (d->kind == FILE_PATH)
		d->fd = -1;
}

static void file_free(void *dev)
{
	struct file_dev *d = dev;
	if (!d)
		return;
	file_close(d);
	audit_format_free(d->base.fmt);
	free(d->path);
	free(d);
}

static int file_new(void **out, const json_t *options, const struct audit_device_env *env,
		    struct verr *err)
{
	const char *path = audit_opt_str(options, "file_path", NULL);
	if (!path || !*path)
		path = audit_opt_str(options, "path", NULL); /* Vault's old name */
	if (!path || !*path)
		return verr_set(err, VERR_INVALID, "file_path is required");
	struct file_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	d->fd = -1;
	int rc = audit_format_new(&d->base.fmt, options, env, err);
	if (rc)
		goto out;
	const char *mode = audit_opt_str(options, "mode", "0600");
	if (!*mode)
		mode = "0600";
	char *end = NULL;
	errno = 0;
	long m = strtol(mode, &end, 8);
	if (errno || *end || m < 0 || m > 07777) {
		rc = verr_set(err, VERR_INVALID, "mode \"%s\" is not an octal file mode", mode);
		goto out;
	}
	if (m & 0111) {
		rc = verr_set(err, VERR_INVALID,
			      "mode %04lo is not allowed: audit log files must not be executable", m);
		goto out;
	}
	if (m & 07000) {
		rc = verr_set(err, VERR_INVALID, "mode %04lo is not allowed: no setuid, setgid or sticky bits", m);
		goto out;
	}
	d->mode = (mode_t)m;
	if (!strcmp(path, "stdout")) {
		d->kind = FILE_STDOUT;
		d->fd = STDOUT_FILENO;
	} else if (!strcmp(path, "discard")) {
		d->kind = FILE_DISCARD;
	} else if (path[0] != '/') {
		rc = verr_set(err, VERR_INVALID, "file_path must be an absolute path, \"stdout\" or \"discard\"");
		goto out;
	} else {
		d->kind = FILE_PATH;
	}
	d->path = strdup(path);
	if (!d->path) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = file_open(d, err);
out:
	if (rc) {
		file_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* Take back the `written` bytes a failed write appended: the file is
 * O_APPEND and this device its only writer, so they are its last bytes.
 * Returns how many remain (0 when rolled back). */
static size_t file_rollback(struct file_dev *d, size_t written)
{
	struct stat st;
	if (written == 0 || d->kind != FILE_PATH)
		return written;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)written)
		return written;
	if (ftruncate(d->fd, st.st_size - (off_t)written) != 0)
		return written;
	return 0;
}

static int file_log(void *dev, const char *buf, size_t len, int64_t timeout_ms, struct verr *err)
{
	struct file_dev *d = dev;
	if (d->kind == FILE_DISCARD)
		return 0;
	if (d->fd < 0) {
		int rc = file_open(d, err);
		if (rc)
			return rc;
	}
	size_t off = 0;
	d->kept = 0;
	while (off < len) {
		ssize_t n = write(d->fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			d->kept = file_rollback(d, off);
			/* start the next write on a fresh descriptor */
			file_close(d);
			return verr_set(err, VERR_INTERNAL, "audit log write failed: %s", strerror(e));
		}
		off += (size_t)n;
	}
	return 0;
}

static size_t file_kept(void *dev)
{
	return ((struct file_dev *)dev)->kept;
}

static bool file_writes_inline(void *dev)
{
	return ((struct file_dev *)dev)->kind != FILE_STDOUT;
}

static int file_reopen(void *dev, struct verr *err)
{
	struct file_dev *d = dev;
	if (d->kind != FILE_PATH)
		return 0;
	file_close(d);
	return file_open(d, err);
}

static size_t file_tail(void *dev, char *buf, size_t cap)
{
	struct file_dev *d = dev;
	if (d->kind != FILE_PATH || d->fd < 0)
		return 0;
	struct stat st;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
		return 0;
	size_t n = (size_t)st.st_size < cap ? (size_t)st.st_size : cap;
	/* the descriptor is write-only: read through a second one */
	int rfd = open(d->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (rfd < 0)
		return 0;
	ssize_t got = pread(rfd, buf, n, st.st_size - (off_t)n);
	close(rfd);
	return got > 0 ? (size_t)got : 0;
}

static int64_t file_timeout_ms(void *dev)
{
	return AUDIT_DEFAULT_TIMEOUT_MS;
}

const struct audit_device_ops audit_file_ops = {
	.type = "file",
	.new = file_new,
	.format = audit_base_format,
	.format_entry = audit_base_format_entry,
	.hash = audit_base_hash,
	.log = file_log,
	.kept = file_kept,
	.writes_inline = file_writes_inline,
	.reopen = file_reopen,
	.tail = file_tail,
	.timeout_ms = file_timeout_ms,
	.free = file_free,
};
