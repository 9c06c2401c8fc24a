/*
 * snaparchive.h - the raft snapshot file, in Vault's layout: a gzipped tar
 * of meta.json, state.bin, SHA256SUMS ("<hex>  <name>" lines for the other
 * two) and SHA256SUMS.sealed (SHA256SUMS encrypted by the cluster's
 * barrier, so only the cluster that made it restores it without -force).
 * Building and checking the archive is here (the server and the offline
 * `coffer operator raft snapshot inspect` share it); sealing is the core's.
 *
 * Memory: the archive is built and parsed in memory (the HTTP layer
 * buffers request and response bodies).
 */
#ifndef COFFER_UTIL_SNAPARCHIVE_H
#define COFFER_UTIL_SNAPARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "util/verr.h"

/* SHA256SUMS for meta and state (malloc'd text). */
char *snaparchive_sums(const uint8_t *meta, size_t meta_len, const uint8_t *state,
		       size_t state_len);

/* The gzipped tar (malloc'd *out). */
int snaparchive_build(uint8_t **out, size_t *out_len, const char *meta, const uint8_t *state,
		      size_t state_len, const char *sums, const uint8_t *sealed, size_t sealed_len,
		      struct verr *err);

struct snaparchive {
	uint8_t *raw; /* the whole tar (owned); the pointers below point into it */
	const char *meta;
	size_t meta_len;
	const uint8_t *state;
	size_t state_len;
	const char *sums;
	size_t sums_len;
	const uint8_t *sealed;
	size_t sealed_len;
};

/* Gunzip and untar, then check that meta.json and state.bin match
 * SHA256SUMS. VERR_INVALID naming the problem: not gzip, truncated, a
 * missing member, a checksum mismatch. Does NOT check the sealed sums. */
int snaparchive_parse(struct snaparchive *out, const uint8_t *buf, size_t len,
		      struct verr *err);
void snaparchive_free(struct snaparchive *a);

#endif
