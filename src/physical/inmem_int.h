/*
 * inmem_int.h - internals of the inmem backend (inmem.c) for other
 * physical/ files: ordered iteration over every entry, used by the raft
 * backend's state machine (raft_fsm.c) for snapshots and backups.
 */
#ifndef COFFER_PHYSICAL_INMEM_INT_H
#define COFFER_PHYSICAL_INMEM_INT_H

#include "physical/physical.h"

/* fn(ctx, key, val, len) for every entry in key order, under the store's
 * read lock (fn must not call back into the store). Stops at fn's first
 * non-zero return and returns it. p must be an inmem store. */
typedef int (*physical_inmem_foreach_fn)(void *ctx, const char *key, const uint8_t *val,
					 size_t len);
int physical_inmem__foreach(struct physical *p, physical_inmem_foreach_fn fn, void *ctx);

/* A consistent, read-only view of every entry, in key order: one pass over
 * the tree taking a reference to each entry (no value is copied). Writes to
 * the store go on meanwhile without changing the view, and the view may be
 * read and freed on another thread, even after the store is closed. NULL:
 * out of memory. */
struct physical_inmem_view;
struct physical_inmem_view *physical_inmem__view(struct physical *p);
/* sum over the entries of 8 + key length + value length */
size_t physical_inmem__view_bytes(const struct physical_inmem_view *v);
int physical_inmem__view_foreach(const struct physical_inmem_view *v,
				 physical_inmem_foreach_fn fn, void *ctx);
void physical_inmem__view_free(struct physical_inmem_view *v);

#endif
