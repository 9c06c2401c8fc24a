/*
 * periodic.h - the thread that runs every backend's periodic hook on an
 * ACTIVE core (periodic.c): started by setup_active, stopped (joined) by
 * teardown. It never takes the state lock, so teardown may join it while
 * holding that lock for writing.
 */
#ifndef COFFER_CORE_PERIODIC_H
#define COFFER_CORE_PERIODIC_H

#include "core/core_int.h"

int periodic_start(struct core *c, int interval_ms, struct verr *err);
void periodic_stop(struct core *c); /* NULL-safe on a core without one */

#endif
