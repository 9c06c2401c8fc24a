/*
 * tmpfd.c - anonymous temporary files (see tmpfd.h).
 */
#include "util/tmpfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tmpfd_open(const char *dir, struct verr *err)
{
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/var/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/.coffer-spool-XXXXXX", dir) >= sizeof(path)) {
		verr_set(err, VERR_INTERNAL, "the temporary directory's path is too long");
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC); /* glibc creates it 0600 */
	if (fd < 0) {
		verr_set(err, VERR_INTERNAL, "cannot create a temporary file in %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	unlink(path);
	return fd;
}
