/*
 * cluster.h - internal to the core: the cluster TLS identity below the
 * barrier, and the active node's advertisement in the HA lock (cluster.c).
 * The public side (core_cluster_tls, core_forward_target) is in core.h.
 */
#ifndef COFFER_CORE_CLUSTER_H
#define COFFER_CORE_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>

#include "core/core.h"
#include "util/verr.h"

/* Load core/cluster/tls (state lock held). create: generate and store it
 * when absent (the active node only; a standby never writes). */
int cluster_tls_load(struct core *c, bool create, struct verr *err);
/* Drop and wipe the loaded material (seal). */
void cluster_tls_clear(struct core *c);
/* {"api_addr","cluster_addr","node_id"} as the HA lock's value (malloc). */
char *cluster_advertisement(struct core *c);
/* Its two addresses ("" when absent); a value that is not JSON is taken as
 * a bare API address. 0, or -1 when out of memory. */
int cluster_parse_advertisement(const char *value, char **api_addr, char **cluster_addr);

/* sys/ha-status's body: this (active) node and every standby that echoed
 * in the last 30 s. */
int cluster_ha_status(struct core *c, json_t **out, struct verr *err);
/* Forget the standbys' echoes (this node stops being active). */
void cluster_echoes_clear(struct core *c);

#endif
