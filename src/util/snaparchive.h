/*
 * snaparchive.h - the raft snapshot file, in Vault's layout: a gzipped tar
 * of meta.json, state.bin, SHA256SUMS ("<hex>  <name>" lines for the other
 * two) and SHA256SUMS.sealed (SHA256SUMS encrypted by the cluster's
 * barrier, so only the cluster that made it restores it without -force).
 * Building and checking the archive is here (the server and the offline
 * `coffer operator raft snapshot inspect` share it); sealing is the core's.
 *
 * Memory: snaparchive_build/_parse work in memory (the offline inspect of
 * small files, tests); the server uses the streaming calls below, which
 * keep only fixed-size buffers whatever the size of the state.
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


/* ---- streaming: memory independent of the state's size -------------------- */

/* The SHA-256 of d as 64 hex digits. */
void snaparchive_sha_hex(char out[65], const uint8_t *d, size_t n);
/* SHA256SUMS from the two members' hex digests (malloc'd text). */
char *snaparchive_sums_hex(const char *meta_hex, const char *state_hex);

/* Write the gzipped tar to out_fd (at its current offset). state.bin is the
 * first state_len bytes of state_fd (read with pread from offset 0). */
int snaparchive_write(int out_fd, const char *meta, int state_fd, uint64_t state_len,
		      const char *sums, const uint8_t *sealed, size_t sealed_len,
		      struct verr *err);

/* What one streaming pass over an archive keeps: the three small members
 * (each at most 1 MiB) and state.bin's length and digest. */
struct snapcheck {
	char *meta;
	size_t meta_len;
	char *sums;
	size_t sums_len;
	uint8_t *sealed;
	size_t sealed_len;
	uint64_t state_len;
	char state_sha[65];
};

/* snaparchive_parse's checks in one streaming pass over the archive in fd
 * (read from offset 0), or in buf/len when fd < 0; state.bin is hashed,
 * not kept. Also refuses a bad gzip trailer (CRC) and trailing bytes. */
int snaparchive_check(struct snapcheck *out, int fd, const uint8_t *buf, size_t len,
		      struct verr *err);
void snapcheck_free(struct snapcheck *c);

/* state.bin of an archive that passed snaparchive_check, as a stream (a
 * second pass over the same fd or buffer). */
struct snapstate;
int snapstate_open(struct snapstate **out, const struct snapcheck *c, int fd, const uint8_t *buf,
		   size_t len, struct verr *err);
/* Up to len bytes: >0, 0 at the end of state.bin (after checking its digest
 * again, so a file changed between the passes is refused), <0 an error
 * (err set). ctx is the struct snapstate (a physical_raft_read_fn). */
long snapstate_read(void *ctx, void *buf, size_t len, struct verr *err);
void snapstate_close(struct snapstate *s);

#endif
