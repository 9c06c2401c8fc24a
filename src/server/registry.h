/*
 * registry.h - implementation tables handed to the core at start-up.
 */
#ifndef COFFER_SERVER_REGISTRY_H
#define COFFER_SERVER_REGISTRY_H

#include "logical/logical.h"
#include "physical/physical.h"
#include "seal/seal.h"

struct physical_entry {
	const char *name;
	physical_new_fn fn;
};

/* Constructor for a storage type, or NULL if not supported. */
physical_new_fn registry_physical(const char *type);
/* Constructor for a seal type, or NULL if not supported. */
seal_new_fn registry_seal(const char *type);
/* NULL-terminated list of secrets engines and auth methods. */
const struct backend_ops *const *registry_backends(void);
/* NULL-terminated list of audit device types (src/audit/audit.h). */
struct audit_device_ops;
const struct audit_device_ops *const *registry_audit_types(void);

#endif
