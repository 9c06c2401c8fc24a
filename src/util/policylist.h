/*
 * policylist.h - Vault's policy-list sanitizer (policyutil.SanitizePolicies),
 * the one copy used by the token store and every auth method: names are
 * trimmed of whitespace and lower-cased, empty names dropped, duplicates
 * removed, the list sorted; a list naming "root" becomes ["root"]; with
 * add_default, "default" is added unless root.
 */
#ifndef COFFER_UTIL_POLICYLIST_H
#define COFFER_UTIL_POLICYLIST_H

#include <jansson.h>
#include <stdbool.h>

/* A new array, or NULL when `in` is not an array or memory ran out.
 * Non-string elements are skipped. */
json_t *policylist_sanitize(const json_t *in, bool add_default);

#endif
