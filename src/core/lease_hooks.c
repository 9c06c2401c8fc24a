/*
 * lease_hooks.c - the pipeline's calls into the expiration manager: register
 * a lease for a secret a backend returned, and revoke a mount's leases when
 * it is disabled.
 */
#include "core/acl_glue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int coreglue_register_lease(struct core *c, struct mount_entry *m, struct logical_request *req,
			    struct logical_response *resp, struct verr *err)
{
	/* The expiration manager (issue 4) tracks and revokes leases; until
	 * then a secret carries its lease id and duration only. */
	char id[25];
	core__rand_base62(id, 24);
	size_t n = strlen(req->path) + 32;
	char *lease = malloc(n);
	if (!lease)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	snprintf(lease, n, "%s/%s", req->path, id);
	int64_t ttl = resp->secret->ttl;
	if (!ttl)
		ttl = json_integer_value(json_object_get(m->config, "default_lease_ttl"));
	if (!ttl)
		ttl = c->o.default_lease_ttl;
	resp->lease_out = json_pack("{s:s,s:I,s:b}", "lease_id", lease, "lease_duration",
				    (json_int_t)ttl, "renewable", resp->secret->renewable);
	free(lease);
	return 0;
}

int coreglue_revoke_mount_leases(struct core *c, const char *prefix)
{
	return 0;
}


