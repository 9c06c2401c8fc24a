/*
 * registry.c - the tables that tell the core which implementations exist:
 * storage backends, seals, secrets engines, auth methods and audit devices.
 * Adding one means one row here (DESIGN.md "Interfaces").
 */
#include "server/registry.h"

#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "auth/kubernetes.h"
#include "core/token.h"
#include "physical/raft.h"
#include "secrets/secrets.h"

static const struct physical_entry physicals[] = {
	{"inmem", physical_inmem_new},
	{"file", physical_file_new},
	{"etcd", physical_etcd_new},
	{"consul", physical_consul_new},
	{"raft", physical_raft_new},
	{"postgresql", physical_postgresql_new},
	{NULL, NULL},
};

physical_new_fn registry_physical(const char *type)
{
	for (const struct physical_entry *e = physicals; e->name; e++)
		if (!strcmp(e->name, type))
			return e->fn;
	return NULL;
}

struct seal_entry {
	const char *name;
	seal_new_fn fn;
};

static const struct seal_entry seals[] = {
	{"shamir", seal_shamir_new},
	{"awskms", seal_awskms_new},
	{"transit", seal_transit_new},
	{"pkcs11", seal_pkcs11_new},
	{NULL, NULL},
};

seal_new_fn registry_seal(const char *type)
{
	for (const struct seal_entry *e = seals; e->name; e++)
		if (!strcmp(e->name, type))
			return e->fn;
	return NULL;
}

static const struct backend_ops *const backends[] = {
	&kv_backend_ops,
	&cubbyhole_backend_ops,
	&transit_backend_ops,
	&pki_backend_ops,
	&database_backend_ops,
	&token_backend_ops,
	&userpass_backend_ops,
	&approle_backend_ops,
	&kubernetes_backend_ops,
	&cert_backend_ops,
	NULL,
};

const struct backend_ops *const *registry_backends(void)
{
	return backends;
}

static const struct audit_device_ops *const audit_types[] = {
	&audit_file_ops,
	&audit_socket_ops,
	&audit_syslog_ops,
	NULL,
};

const struct audit_device_ops *const *registry_audit_types(void)
{
	return audit_types;
}
