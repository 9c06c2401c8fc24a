/*
 * kubernetes.h - the kubernetes auth method (type "kubernetes"): pods log in
 * with their service account JWT, which Coffer checks with the Kubernetes
 * TokenReview API (and optionally against configured public keys) before
 * issuing a token with the matching role's policies.
 *
 * Register `kubernetes_backend_ops` in the server's backend table
 * (src/server/registry.c); `coffer auth enable kubernetes` then mounts it.
 * Paths, fields and errors: docs/auth-kubernetes.md.
 */
#ifndef COFFER_AUTH_KUBERNETES_H
#define COFFER_AUTH_KUBERNETES_H

#include "logical/logical.h"

extern const struct backend_ops kubernetes_backend_ops;

#endif
