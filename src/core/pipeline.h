/*
 * pipeline.h - the request pipeline of an ACTIVE core (pipeline.c):
 * route -> fields -> token -> create/update -> ACL -> audit request ->
 * handler -> login token / lease -> audit response.
 * Called by core.c with the state lock held for reading and the state
 * ACTIVE, so every store it uses exists for the whole call.
 */
#ifndef COFFER_CORE_PIPELINE_H
#define COFFER_CORE_PIPELINE_H

#include "core/core_int.h"

int pipeline_run(struct core *c, struct logical_request *req, struct logical_response *resp,
		 struct verr *err);

#endif
