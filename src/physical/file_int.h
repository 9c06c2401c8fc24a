/*
 * file_int.h - internals of the `file` storage backend (src/physical/file.c)
 * that tests and diagnostics may reach; not part of the storage interface.
 *
 * Everything here takes a `struct physical *` that must come from
 * physical_file_new (asserted). Thread-safe: may be called concurrently with
 * the backend's own methods.
 */
#ifndef COFFER_PHYSICAL_FILE_INT_H
#define COFFER_PHYSICAL_FILE_INT_H

#include <stdint.h>

#include "physical/physical.h"

/* On-disk names inside the storage directory. */
#define PHYSICAL_FILE_LOG "coffer.db"
#define PHYSICAL_FILE_LOCK "LOCK"

/* Record header size on disk (see the format in file.c). */
#define PHYSICAL_FILE_RECORD_HDR 24
#define PHYSICAL_FILE_HDR 32

struct physical_file_stats {
	uint64_t writes;	  /* acknowledged put/delete records since open */
	uint64_t fsyncs;	  /* fdatasync calls that acknowledged write batches */
	uint64_t batches;	  /* group commits (== fsyncs unless writes failed) */
	uint64_t compactions;	  /* completed compactions since open */
	uint64_t keys;		  /* live keys in the index */
	uint64_t file_bytes;	  /* size of the log (header included) */
	uint64_t live_bytes;	  /* bytes of records that are the current value of a key */
	uint64_t dead_bytes;	  /* overwritten/deleted records and tombstones */
	uint64_t corrupt_records; /* live records with a bad value checksum at open */
	uint64_t torn_bytes;	  /* bytes truncated from a torn tail at open */
};

/* Snapshot of the counters above. */
void physical_file__stats(struct physical *p, struct physical_file_stats *out);

/* Compact now (normally automatic: when dead bytes exceed live bytes and the
 * log is over the threshold). Waits for in-flight commits. */
int physical_file__compact(struct physical *p, struct verr *err);

/* Change the automatic-compaction size threshold (default 4 MiB). */
void physical_file__set_compact_min(struct physical *p, uint64_t bytes);

#endif
