/*
 * tmpfd.h - an anonymous temporary file: created 0600 in dir and unlinked
 * at once (O_TMPFILE where the file system has it, else mkstemp + unlink),
 * so it disappears when the descriptor is closed, even after a crash.
 * Used to spool snapshot bodies to disk instead of memory.
 */
#ifndef COFFER_UTIL_TMPFD_H
#define COFFER_UTIL_TMPFD_H

#include "util/verr.h"

/* A read-write descriptor, or -1 with err set (VERR_INTERNAL). dir NULL or
 * empty: $TMPDIR, else /var/tmp. */
int tmpfd_open(const char *dir, struct verr *err);

#endif
