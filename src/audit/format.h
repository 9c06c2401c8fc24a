/*
 * format.h - what every audit device shares (src/audit/ only): the common
 * options (format, prefix, log_raw, hmac_accessor, elide_list_responses),
 * the HMAC of sensitive strings, and the JSON / JSONx serialisation of an
 * entry. A device embeds `struct audit_base` as its first member, so the
 * generic `audit_base_format` / `audit_base_hash` fill its ops' format and
 * hash slots.
 *
 * Thread-safety: a `struct audit_format` is immutable after
 * audit_format_new, so format/hash may run on any number of threads.
 */
#ifndef COFFER_AUDIT_FORMAT_H
#define COFFER_AUDIT_FORMAT_H

#include "audit/audit.h"

#define AUDIT_DEFAULT_TIMEOUT_MS 2000

struct audit_format;

struct audit_base {
	struct audit_format *fmt;
};

/* Parse the common options; keeps a secmem copy of env->hmac_key. */
int audit_format_new(struct audit_format **out, const json_t *options,
		     const struct audit_device_env *env, struct verr *err);
void audit_format_free(struct audit_format *f);
/* One line (no newline) for a raw entry; *out malloc'd. */
int audit_format_entry(const struct audit_format *f, const json_t *entry, char **out,
		       size_t *len, struct verr *err);
/* The same line as audit_format_entry(f, audit_entry_json(e)), written
 * straight from the description (JSON: no tree is built). */
int audit_format_entry_direct(const struct audit_format *f, const struct audit_entry *e,
			      char **out, size_t *len, struct verr *err);
/* The raw entry as a JSON tree (new reference; NULL on allocation
 * failure); what the direct writer must match. */
json_t *audit_entry_json(const struct audit_entry *e);
/* "hmac-sha256:<64 hex>" (malloc'd) or NULL on allocation failure. */
char *audit_format_hash(const struct audit_format *f, const char *input);

/* ops slots for devices that embed struct audit_base first */
int audit_base_format(char **out, size_t *len, void *dev, const json_t *entry, struct verr *err);
int audit_base_format_entry(char **out, size_t *len, void *dev, const struct audit_entry *entry,
			    struct verr *err);
char *audit_base_hash(void *dev, const char *input);

/* Option helpers. Values arrive as strings; missing -> def. */
const char *audit_opt_str(const json_t *options, const char *name, const char *def);
int audit_opt_bool(bool *out, const json_t *options, const char *name, bool def,
		   struct verr *err);
/* A duration option ("2s", "500ms", "3") in milliseconds. */
int audit_opt_duration_ms(int64_t *out, const json_t *options, const char *name, int64_t def,
			  struct verr *err);

#endif
