/*
 * passpolicy.h - password policies (Vault's sys/policies/password HCL) and
 * the password generator that follows them.
 *
 * A policy is HCL:
 *
 *   length = 20
 *   rule "charset" {
 *     charset   = "abcdefghijklmnopqrstuvwxyz"
 *     min-chars = 1
 *   }
 *   rule "charset" { charset = "0123456789"  min-chars = 2 }
 *
 * The candidate alphabet is the union of every rule's charset; a password is
 * `length` characters drawn uniformly from it (rejection sampling over
 * OpenSSL's generator), redrawn until every rule's min-chars holds. A policy
 * whose rules cannot all be met within `length` is refused at parse time.
 * Characters are bytes (ASCII charsets; Vault allows any rune, Coffer only
 * printable ASCII, which every database driver accepts unescaped).
 *
 * Ownership: passpolicy_parse allocates *out, passpolicy_free releases it.
 * A parsed policy is immutable, so one may be shared by threads.
 */
#ifndef COFFER_UTIL_PASSPOLICY_H
#define COFFER_UTIL_PASSPOLICY_H

#include <stddef.h>

#include "util/verr.h"

#define PASSPOLICY_MAX_LENGTH 4096
#define PASSPOLICY_MAX_RULES 32

struct passpolicy;

/* Parse HCL policy text. VERR_INVALID with a message naming the problem. */
int passpolicy_parse(struct passpolicy **out, const char *hcl, size_t len, struct verr *err);
/* The database engine's default (Vault's): 20 characters, at least one
 * lower-case, upper-case, digit and '-'. Never fails for lack of memory:
 * returns a static policy. */
const struct passpolicy *passpolicy_default(void);
size_t passpolicy_length(const struct passpolicy *p);
/* Write a NUL-terminated password into out (cap >= length + 1). The caller
 * wipes it when done. VERR_INTERNAL when the generator fails. */
int passpolicy_generate(const struct passpolicy *p, char *out, size_t cap, struct verr *err);
void passpolicy_free(struct passpolicy *p);

#endif
