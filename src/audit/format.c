/*
 * format.c - the audit entry as a device writes it: common options, HMAC of
 * sensitive strings, JSON or JSONx (XML) serialisation, the optional prefix.
 *
 * The core hands every device the same raw entry (docs/audit.md gives its
 * shape, Vault's): {time, type, auth, request, response, error}. Unless
 * log_raw is set, these become "hmac-sha256:<hex>" (HMAC-SHA256 under the
 * device's key):
 *   auth.client_token, request.client_token, response.auth.client_token;
 *   auth.accessor, request.client_token_accessor, response.auth.accessor
 *     (only when hmac_accessor, the default);
 *   response.wrap_info.token, and its accessor and wrapped_accessor (only
 *     when hmac_accessor);
 *   every string anywhere below request.data and response.data (keys stay).
 * Non-string values pass through (as in Vault: send secrets as strings).
 * With elide_list_responses, a list response's data.keys (array) and
 * data.key_info (object) become their element counts.
 */
#include "audit/format.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "util/duration.h"
#include "util/hmac256.h"
#include "util/jsonw.h"
#include "util/secmem.h"

#define AUDIT_KEY_MAX HMAC256_KEY_MAX

struct audit_format {
	/* the HMAC key's schedule, done once (util/hmac256.h: in secmem),
	 * shared read-only by concurrent requests */
	struct hmac256 pads;
	bool log_raw, hmac_accessor, elide_list, jsonx;
	char *prefix;
};

const char *audit_opt_str(const json_t *options, const char *name, const char *def)
{
	const json_t *v = json_object_get(options, name);
	return json_is_string(v) ? json_string_value(v) : def;
}

int audit_opt_bool(bool *out, const json_t *options, const char *name, bool def,
		   struct verr *err)
{
	const json_t *v = json_object_get(options, name);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s && (!strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "t"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcasecmp(s, "false") || !strcmp(s, "0") || !strcasecmp(s, "f"))) {
		*out = false;
		return 0;
	}
	if (s && !*s) {
		*out = def;
		return 0;
	}
	return verr_set(err, VERR_INVALID, "unable to parse '%s' as a boolean", name);
}

int audit_opt_duration_ms(int64_t *out, const json_t *options, const char *name, int64_t def,
			  struct verr *err)
{
	const char *s = audit_opt_str(options, name, NULL);
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	size_t n = strlen(s);
	if (n > 2 && !strcmp(s + n - 2, "ms")) {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno || end != s + n - 2 || v < 0)
			return verr_set(err, VERR_INVALID, "unable to parse '%s' as a duration", name);
		*out = v;
		return 0;
	}
	int64_t secs = 0;
	struct verr e = {0};
	if (duration_parse(&secs, s, &e))
		return verr_set(err, VERR_INVALID, "unable to parse '%s' as a duration", name);
	*out = secs * 1000;
	return 0;
}

void audit_format_free(struct audit_format *f)
{
	if (!f)
		return;
	hmac256_free(&f->pads);
	free(f->prefix);
	free(f);
}

int audit_format_new(struct audit_format **out, const json_t *options,
		     const struct audit_device_env *env, struct verr *err)
{
	if (!env || !env->hmac_key || env->hmac_key_len == 0 || env->hmac_key_len > AUDIT_KEY_MAX)
		return verr_set(err, VERR_INTERNAL, "audit device without an HMAC key");
	struct audit_format *f = calloc(1, sizeof(*f));
	if (!f)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	int rc = 0;
	if (hmac256_init(&f->pads, env->hmac_key, env->hmac_key_len)) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = audit_opt_bool(&f->log_raw, options, "log_raw", false, err)) ||
	    (rc = audit_opt_bool(&f->hmac_accessor, options, "hmac_accessor", true, err)) ||
	    (rc = audit_opt_bool(&f->elide_list, options, "elide_list_responses", false, err)))
		goto out;
	const char *fmt = audit_opt_str(options, "format", "json");
	if (!*fmt || !strcmp(fmt, "json")) {
		f->jsonx = false;
	} else if (!strcmp(fmt, "jsonx")) {
		f->jsonx = true;
	} else {
		rc = verr_set(err, VERR_INVALID, "unknown format type \"%s\": must be json or jsonx",
			      fmt);
		goto out;
	}
	const char *prefix = audit_opt_str(options, "prefix", "");
	if (*prefix) {
		/* CVE-2025-6000: a prefix lets an API caller write arbitrary bytes
		 * at the start of every line, so the operator must opt in */
		if (!env->allow_prefixing) {
			rc = verr_set(err, VERR_INVALID,
				      "audit log prefixing is not allowed: set "
				      "allow_audit_log_prefixing = true in the server configuration");
			goto out;
		}
		if (strpbrk(prefix, "\r\n")) {
			rc = verr_set(err, VERR_INVALID, "prefix must not contain a line break");
			goto out;
		}
	}
	f->prefix = strdup(prefix);
	if (!f->prefix)
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
out:
	if (rc) {
		audit_format_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* ---- HMAC ---- */

#define HASH_PFX "hmac-sha256:"
#define HASH_TEXT_LEN (sizeof(HASH_PFX) - 1 + 64) /* without the NUL */

/* out = "hmac-sha256:<hex>" + NUL. */
static bool hash_into(const struct audit_format *f, const char *s, size_t n,
		      char out[HASH_TEXT_LEN + 1])
{
	uint8_t mac[HMAC256_LEN];
	if (!hmac256(&f->pads, s, n, mac))
		return false;
	memcpy(out, HASH_PFX, sizeof(HASH_PFX) - 1);
	hmac256_hex(mac, out + sizeof(HASH_PFX) - 1);
	secmem_wipe(mac, sizeof(mac));
	return true;
}

static char *hash_bytes(const struct audit_format *f, const char *s, size_t n)
{
	char buf[HASH_TEXT_LEN + 1];
	return hash_into(f, s, n, buf) ? strdup(buf) : NULL;
}

char *audit_format_hash(const struct audit_format *f, const char *input)
{
	return hash_bytes(f, input, strlen(input));
}

/* Replace the string member `key` of obj by its HMAC (absent/empty: left). */
static int hash_member(const struct audit_format *f, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return 0;
	char *h = hash_bytes(f, json_string_value(v), json_string_length(v));
	if (!h)
		return -1;
	int rc = json_object_set_new(obj, key, json_string(h));
	free(h);
	return rc;
}

/* Every string below v (object values, array elements) by its HMAC. */
static int hash_tree(const struct audit_format *f, json_t *v)
{
	if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) {
			if (json_is_string(e)) {
				char *h = hash_bytes(f, json_string_value(e), json_string_length(e));
				if (!h || json_object_set_new(v, k, json_string(h))) {
					free(h);
					return -1;
				}
				free(h);
			} else if (hash_tree(f, e)) {
				return -1;
			}
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (json_is_string(e)) {
				char *h = hash_bytes(f, json_string_value(e), json_string_length(e));
				if (!h || json_array_set_new(v, i, json_string(h))) {
					free(h);
					return -1;
				}
				free(h);
			} else if (hash_tree(f, e)) {
				return -1;
			}
		}
	}
	return 0;
}

static int hash_entry(const struct audit_format *f, json_t *e)
{
	json_t *auth = json_object_get(e, "auth");
	json_t *req = json_object_get(e, "request");
	json_t *resp = json_object_get(e, "response");
	json_t *rauth = json_object_get(resp, "auth");
	json_t *wrap = json_object_get(resp, "wrap_info");
	if (hash_member(f, auth, "client_token") || hash_member(f, req, "client_token") ||
	    hash_member(f, rauth, "client_token") || hash_member(f, wrap, "token"))
		return -1;
	if (f->hmac_accessor &&
	    (hash_member(f, auth, "accessor") || hash_member(f, req, "client_token_accessor") ||
	     hash_member(f, rauth, "accessor") || hash_member(f, wrap, "accessor") ||
	     hash_member(f, wrap, "wrapped_accessor")))
		return -1;
	if (hash_tree(f, json_object_get(req, "data")) || hash_tree(f, json_object_get(resp, "data")))
		return -1;
	return 0;
}

static void elide_list(json_t *e)
{
	const char *op = json_string_value(json_object_get(json_object_get(e, "request"), "operation"));
	json_t *data = json_object_get(json_object_get(e, "response"), "data");
	if (!op || strcmp(op, "list") != 0 || !json_is_object(data))
		return;
	json_t *keys = json_object_get(data, "keys");
	if (json_is_array(keys))
		json_object_set_new(data, "keys", json_integer((json_int_t)json_array_size(keys)));
	json_t *info = json_object_get(data, "key_info");
	if (json_is_object(info))
		json_object_set_new(data, "key_info", json_integer((json_int_t)json_object_size(info)));
}

/* ---- JSON: one pass over the raw entry ----
 *
 * Writes what json_dumps(JSON_COMPACT) would write for the entry after
 * elide_list() and hash_entry(), without copying the entry: the members
 * that hash_entry replaces are hashed as they are written (same rules:
 * hash_member skips empty strings, hash_tree hashes every string below
 * data, including empty ones). A deep copy, the in-place edits and the
 * free cost more than the rest of the formatting together. */

struct emit {
	const struct audit_format *f;
	struct jsonw *w;
	bool hash;  /* !log_raw */
	bool elide; /* elide_list_responses and a list operation */
	bool fail;  /* an HMAC failed */
	/* the token and its accessor appear twice in every entry (auth and
	 * request): remember their HMACs so each is computed once */
	struct {
		const char *s;
		size_t n;
		char h[HASH_TEXT_LEN + 1];
	} memo[2];
	int nmemo;
};

static bool key_is(void *it, const char *name)
{
	size_t n = strlen(name);
	return json_object_iter_key_len(it) == n && !memcmp(json_object_iter_key(it), name, n);
}

static void emit_hashed(struct emit *x, const json_t *s)
{
	char h[HASH_TEXT_LEN + 1];
	if (!hash_into(x->f, json_string_value(s), json_string_length(s), h)) {
		x->fail = true;
		return;
	}
	jsonw_string(x->w, h, HASH_TEXT_LEN);
}

static void emit_member_str(struct emit *x, const char *s, size_t n);

/* hash_member's rule for one member value */
static void emit_member_hashed(struct emit *x, const json_t *v, bool want)
{
	if (!(want && x->hash && json_is_string(v) && json_string_length(v) > 0)) {
		jsonw_value(x->w, v);
		return;
	}
	emit_member_str(x, json_string_value(v), json_string_length(v));
}

/* a token or accessor (non-empty), hashed once per entry */
static void emit_member_str(struct emit *x, const char *s, size_t n)
{
	for (int i = 0; i < x->nmemo; i++)
		if (x->memo[i].n == n && !memcmp(x->memo[i].s, s, n)) {
			jsonw_string(x->w, x->memo[i].h, HASH_TEXT_LEN);
			return;
		}
	int slot = x->nmemo < 2 ? x->nmemo++ : 1;
	if (!hash_into(x->f, s, n, x->memo[slot].h)) {
		x->fail = true;
		x->nmemo = slot; /* forget the slot */
		return;
	}
	x->memo[slot].s = s;
	x->memo[slot].n = n;
	jsonw_string(x->w, x->memo[slot].h, HASH_TEXT_LEN);
}

#define EMIT_KEY(x, it, first)                                                            	do {                                                                              		if (!(first))                                                             			jsonw_raw((x)->w, ",", 1);                                        		(first) = false;                                                          		jsonw_string((x)->w, json_object_iter_key(it), json_object_iter_key_len(it)); 		jsonw_raw((x)->w, ":", 1);                                                	} while (0)

/* hash_tree: v as is, but every string inside it (not v itself) hashed */
static void emit_tree(struct emit *x, const json_t *v, bool hash_self, int depth)
{
	if (x->fail || x->w->failed)
		return;
	if (depth > 2048) {
		x->w->failed = true;
		return;
	}
	if (json_is_string(v) && hash_self && x->hash) {
		emit_hashed(x, v);
	} else if (json_is_object(v)) {
		bool first = true;
		jsonw_raw(x->w, "{", 1);
		for (void *it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			EMIT_KEY(x, it, first);
			emit_tree(x, json_object_iter_value(it), true, depth + 1);
		}
		jsonw_raw(x->w, "}", 1);
	} else if (json_is_array(v)) {
		jsonw_raw(x->w, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				jsonw_raw(x->w, ",", 1);
			emit_tree(x, json_array_get(v, i), true, depth + 1);
		}
		jsonw_raw(x->w, "]", 1);
	} else {
		jsonw_value(x->w, v);
	}
}

/* response.data of a list with elide_list_responses (elide_list) */
static void emit_elided_data(struct emit *x, const json_t *data)
{
	bool first = true;
	char num[24];
	jsonw_raw(x->w, "{", 1);
	for (void *it = json_object_iter((json_t *)data); it;
	     it = json_object_iter_next((json_t *)data, it)) {
		const json_t *v = json_object_iter_value(it);
		EMIT_KEY(x, it, first);
		if (key_is(it, "keys") && json_is_array(v)) {
			snprintf(num, sizeof(num), "%zu", json_array_size(v));
			jsonw_raw(x->w, num, strlen(num));
		} else if (key_is(it, "key_info") && json_is_object(v)) {
			snprintf(num, sizeof(num), "%zu", json_object_size(v));
			jsonw_raw(x->w, num, strlen(num));
		} else {
			emit_tree(x, v, true, 2);
		}
	}
	jsonw_raw(x->w, "}", 1);
}

enum emit_part { PART_AUTH, PART_REQUEST, PART_RESPONSE, PART_RESPONSE_AUTH, PART_WRAP_INFO };

/* auth, request, response (and response.auth): members by hash_entry's
 * rules; anything that is not an object is written as is (json_object_get
 * on it finds nothing to hash). */
static void emit_part(struct emit *x, const json_t *v, enum emit_part part)
{
	if (!json_is_object(v)) {
		jsonw_value(x->w, v);
		return;
	}
	bool acc = x->f->hmac_accessor, first = true;
	jsonw_raw(x->w, "{", 1);
	for (void *it = json_object_iter((json_t *)v); it;
	     it = json_object_iter_next((json_t *)v, it)) {
		const json_t *m = json_object_iter_value(it);
		EMIT_KEY(x, it, first);
		switch (part) {
		case PART_AUTH:
		case PART_RESPONSE_AUTH:
			emit_member_hashed(x, m, key_is(it, "client_token") ||
						  (acc && key_is(it, "accessor")));
			break;
		case PART_REQUEST:
			if (key_is(it, "data"))
				emit_tree(x, m, false, 2);
			else
				emit_member_hashed(x, m, key_is(it, "client_token") ||
							  (acc && key_is(it, "client_token_accessor")));
			break;
		case PART_WRAP_INFO:
			emit_member_hashed(x, m, key_is(it, "token") ||
						  (acc && (key_is(it, "accessor") ||
							   key_is(it, "wrapped_accessor"))));
			break;
		case PART_RESPONSE:
			if (key_is(it, "auth"))
				emit_part(x, m, PART_RESPONSE_AUTH);
			else if (key_is(it, "wrap_info"))
				emit_part(x, m, PART_WRAP_INFO);
			else if (key_is(it, "data") && x->elide && json_is_object(m))
				emit_elided_data(x, m);
			else if (key_is(it, "data"))
				emit_tree(x, m, false, 2);
			else
				jsonw_value(x->w, m);
			break;
		}
	}
	jsonw_raw(x->w, "}", 1);
}

static void emit_entry(struct emit *x, const json_t *e)
{
	if (!json_is_object(e)) {
		jsonw_value(x->w, e);
		return;
	}
	bool first = true;
	jsonw_raw(x->w, "{", 1);
	for (void *it = json_object_iter((json_t *)e); it;
	     it = json_object_iter_next((json_t *)e, it)) {
		const json_t *v = json_object_iter_value(it);
		EMIT_KEY(x, it, first);
		if (key_is(it, "auth"))
			emit_part(x, v, PART_AUTH);
		else if (key_is(it, "request"))
			emit_part(x, v, PART_REQUEST);
		else if (key_is(it, "response"))
			emit_part(x, v, PART_RESPONSE);
		else
			jsonw_value(x->w, v);
	}
	jsonw_raw(x->w, "}", 1);
}

static int format_json(const struct audit_format *f, const json_t *entry, char **out,
		       size_t *len, struct verr *err)
{
	const char *op = json_string_value(
		json_object_get(json_object_get(entry, "request"), "operation"));
	struct jsonw w;
	jsonw_init(&w, 2048);
	struct emit x = {
		.f = f,
		.w = &w,
		.hash = !f->log_raw,
		.elide = f->elide_list && op && !strcmp(op, "list"),
	};
	jsonw_raw(&w, f->prefix, strlen(f->prefix));
	emit_entry(&x, entry);
	if (x.fail) {
		jsonw_free(&w);
		return verr_set(err, VERR_INTERNAL, "failed to hash an audit entry");
	}
	*out = jsonw_take(&w, len);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "failed to serialise an audit entry");
	return 0;
}

/* ---- JSON straight from a struct audit_entry ----
 *
 * The core describes an entry with a struct audit_entry (audit.h) instead
 * of building a jansson tree of ~40 nodes per entry and freeing it again:
 * with a file device that was the largest part of an audited request after
 * the HMACs. audit_entry_json() builds the tree the description stands for;
 * the direct writer below must write exactly what format_json() writes for
 * it (tests/unit/audit/format.c compares the two). */

static void ej_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v)); /* invalid UTF-8: left out */
}

static void ej_val(json_t *o, const char *k, const json_t *v)
{
	if (v)
		json_object_set(o, k, (json_t *)v);
}

static void ej_int(json_t *o, const char *k, int64_t v)
{
	if (v)
		json_object_set_new(o, k, json_integer((json_int_t)v));
}

json_t *audit_entry_json(const struct audit_entry *e)
{
	json_t *o = json_object(), *a = json_object(), *r = json_object(), *ns = json_object();
	json_t *resp = e->has_response ? json_object() : NULL;
	if (!o || !a || !r || !ns || (e->has_response && !resp)) {
		json_decref(o), json_decref(a), json_decref(r), json_decref(ns), json_decref(resp);
		return NULL;
	}
	ej_str(o, "time", e->time);
	ej_str(o, "type", e->type);
	ej_str(a, "client_token", e->client_token);
	if (e->has_token) {
		ej_str(a, "accessor", e->accessor);
		ej_str(a, "display_name", e->display_name);
		ej_val(a, "policies", e->policies);
		ej_val(a, "token_policies", e->policies);
		ej_val(a, "metadata", e->metadata);
		ej_str(a, "entity_id", e->entity_id);
		ej_str(a, "token_type", e->token_type);
		ej_int(a, "token_ttl", e->token_ttl);
		ej_str(a, "token_issue_time", e->token_issue_time);
		ej_int(a, "remaining_uses", e->remaining_uses);
	}
	json_object_set_new(o, "auth", a);
	ej_str(r, "id", e->request_id);
	ej_str(r, "operation", e->operation);
	ej_str(r, "mount_point", e->mount_point);
	ej_str(r, "mount_type", e->mount_type);
	ej_str(r, "mount_accessor", e->mount_accessor);
	ej_str(r, "client_token", e->client_token);
	ej_str(r, "client_token_accessor", e->client_token_accessor);
	json_object_set_new(ns, "id", json_string("root"));
	json_object_set_new(r, "namespace", ns);
	ej_str(r, "path", e->path);
	ej_val(r, "data", e->request_data);
	ej_str(r, "remote_address", e->remote_address);
	ej_int(r, "remote_port", e->remote_port);
	json_object_set_new(o, "request", r);
	if (resp) {
		ej_str(resp, "mount_point", e->mount_point);
		ej_str(resp, "mount_type", e->mount_type);
		ej_str(resp, "mount_accessor", e->mount_accessor);
		if (e->has_resp) {
			ej_val(resp, "auth", e->resp_auth);
			if (e->has_secret) {
				json_t *sec = json_object();
				ej_str(sec, "lease_id", e->lease_id);
				json_object_set_new(resp, "secret", sec);
			}
			ej_val(resp, "data", e->resp_data);
			ej_val(resp, "warnings", e->resp_warnings);
			ej_str(resp, "redirect", e->redirect);
			ej_val(resp, "wrap_info", e->resp_wrap_info);
		}
		json_object_set_new(o, "response", resp);
	}
	ej_str(o, "error", e->error);
	return o;
}

/* the key of a member (plain ASCII: no escaping needed), with the comma
 * before it, in one piece */
static void dw_key(struct emit *x, bool *first, const char *k)
{
	char buf[48];
	size_t n = strlen(k), o = 0;
	if (n > sizeof(buf) - 4) {
		x->w->failed = true;
		return;
	}
	if (!*first)
		buf[o++] = ',';
	*first = false;
	buf[o++] = '"';
	memcpy(buf + o, k, n);
	o += n;
	buf[o++] = '"';
	buf[o++] = ':';
	jsonw_raw(x->w, buf, o);
}

/* a string member: left out when NULL or not UTF-8 (jansson refuses it);
 * hashed (hash_member's rule: non-empty) when `hashed` */
static void dw_str(struct emit *x, bool *first, const char *k, const char *v, bool hashed)
{
	if (!v)
		return;
	size_t n = strlen(v);
	if (!jsonw_utf8_valid(v, n))
		return;
	dw_key(x, first, k);
	if (hashed && x->hash && n > 0)
		emit_member_str(x, v, n);
	else
		jsonw_string(x->w, v, n);
}

static void dw_int(struct emit *x, bool *first, const char *k, int64_t v)
{
	if (!v)
		return;
	char num[24], *p = num + sizeof(num);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	dw_key(x, first, k);
	jsonw_raw(x->w, p, (size_t)(num + sizeof(num) - p));
}

static void dw_val(struct emit *x, bool *first, const char *k, const json_t *v)
{
	if (!v)
		return;
	dw_key(x, first, k);
	jsonw_value(x->w, v);
}

static void dw_entry(struct emit *x, const struct audit_entry *e)
{
	bool acc = x->f->hmac_accessor, first = true, f2;
	jsonw_raw(x->w, "{", 1);
	dw_str(x, &first, "time", e->time, false);
	dw_str(x, &first, "type", e->type, false);
	dw_key(x, &first, "auth");
	f2 = true;
	jsonw_raw(x->w, "{", 1);
	dw_str(x, &f2, "client_token", e->client_token, true);
	if (e->has_token) {
		dw_str(x, &f2, "accessor", e->accessor, acc);
		dw_str(x, &f2, "display_name", e->display_name, false);
		dw_val(x, &f2, "policies", e->policies);
		dw_val(x, &f2, "token_policies", e->policies);
		dw_val(x, &f2, "metadata", e->metadata);
		dw_str(x, &f2, "entity_id", e->entity_id, false);
		dw_str(x, &f2, "token_type", e->token_type, false);
		dw_int(x, &f2, "token_ttl", e->token_ttl);
		dw_str(x, &f2, "token_issue_time", e->token_issue_time, false);
		dw_int(x, &f2, "remaining_uses", e->remaining_uses);
	}
	jsonw_raw(x->w, "}", 1);
	dw_key(x, &first, "request");
	f2 = true;
	jsonw_raw(x->w, "{", 1);
	dw_str(x, &f2, "id", e->request_id, false);
	dw_str(x, &f2, "operation", e->operation, false);
	dw_str(x, &f2, "mount_point", e->mount_point, false);
	dw_str(x, &f2, "mount_type", e->mount_type, false);
	dw_str(x, &f2, "mount_accessor", e->mount_accessor, false);
	dw_str(x, &f2, "client_token", e->client_token, true);
	dw_str(x, &f2, "client_token_accessor", e->client_token_accessor, acc);
	dw_key(x, &f2, "namespace");
	jsonw_raw(x->w, "{\"id\":\"root\"}", 13);
	dw_str(x, &f2, "path", e->path, false);
	if (e->request_data) {
		dw_key(x, &f2, "data");
		emit_tree(x, e->request_data, false, 2);
	}
	dw_str(x, &f2, "remote_address", e->remote_address, false);
	dw_int(x, &f2, "remote_port", e->remote_port);
	jsonw_raw(x->w, "}", 1);
	if (e->has_response) {
		dw_key(x, &first, "response");
		f2 = true;
		jsonw_raw(x->w, "{", 1);
		dw_str(x, &f2, "mount_point", e->mount_point, false);
		dw_str(x, &f2, "mount_type", e->mount_type, false);
		dw_str(x, &f2, "mount_accessor", e->mount_accessor, false);
		if (e->has_resp) {
			if (e->resp_auth) {
				dw_key(x, &f2, "auth");
				emit_part(x, e->resp_auth, PART_RESPONSE_AUTH);
			}
			if (e->has_secret) {
				bool f3 = true;
				dw_key(x, &f2, "secret");
				jsonw_raw(x->w, "{", 1);
				dw_str(x, &f3, "lease_id", e->lease_id, false);
				jsonw_raw(x->w, "}", 1);
			}
			if (e->resp_data) {
				dw_key(x, &f2, "data");
				if (x->elide && json_is_object(e->resp_data))
					emit_elided_data(x, e->resp_data);
				else
					emit_tree(x, e->resp_data, false, 2);
			}
			dw_val(x, &f2, "warnings", e->resp_warnings);
			dw_str(x, &f2, "redirect", e->redirect, false);
			if (e->resp_wrap_info) {
				dw_key(x, &f2, "wrap_info");
				emit_part(x, e->resp_wrap_info, PART_WRAP_INFO);
			}
		}
		jsonw_raw(x->w, "}", 1);
	}
	dw_str(x, &first, "error", e->error, false);
	jsonw_raw(x->w, "}", 1);
}

int audit_format_entry_direct(const struct audit_format *f, const struct audit_entry *e,
			      char **out, size_t *len, struct verr *err)
{
	if (f->jsonx) {
		json_t *j = audit_entry_json(e);
		if (!j)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		int rc = audit_format_entry(f, j, out, len, err);
		json_decref(j);
		return rc;
	}
	struct jsonw w;
	jsonw_init(&w, 2048);
	const char *op = e->operation;
	struct emit x = {
		.f = f,
		.w = &w,
		.hash = !f->log_raw,
		.elide = f->elide_list && op && !strcmp(op, "list") && jsonw_utf8_valid(op, strlen(op)),
	};
	jsonw_raw(&w, f->prefix, strlen(f->prefix));
	dw_entry(&x, e);
	if (x.fail) {
		jsonw_free(&w);
		return verr_set(err, VERR_INTERNAL, "failed to hash an audit entry");
	}
	*out = jsonw_take(&w, len);
	if (!*out)
		return verr_set(err, VERR_INTERNAL, "failed to serialise an audit entry");
	return 0;
}

/* ---- JSONx (IBM's XML mapping of JSON, as Vault's "jsonx" format) ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_xml_text(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '<': sb_str(b, "&lt;"); break;
		case '>': sb_str(b, "&gt;"); break;
		case '&': sb_str(b, "&amp;"); break;
		case '"': sb_str(b, "&quot;"); break;
		case '\'': sb_str(b, "&apos;"); break;
		default:
			if (c < 0x20) { /* keep the line one line */
				char ent[8];
				snprintf(ent, sizeof(ent), "&#%u;", c);
				sb_str(b, ent);
			} else {
				sb_add(b, (const char *)&c, 1);
			}
		}
	}
}

static void jsonx_value(struct sbuf *b, const char *name, const json_t *v)
{
	const char *tag;
	switch (json_typeof(v)) {
	case JSON_OBJECT: tag = "object"; break;
	case JSON_ARRAY: tag = "array"; break;
	case JSON_STRING: tag = "string"; break;
	case JSON_INTEGER:
	case JSON_REAL: tag = "number"; break;
	case JSON_TRUE:
	case JSON_FALSE: tag = "boolean"; break;
	default: tag = "null"; break;
	}
	sb_str(b, "<json:");
	sb_str(b, tag);
	if (name) {
		sb_str(b, " name=\"");
		sb_xml_text(b, name, strlen(name));
		sb_str(b, "\"");
	}
	if (json_is_null(v)) {
		sb_str(b, "/>");
		return;
	}
	sb_str(b, ">");
	char num[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)v, k, e) jsonx_value(b, k, e);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) jsonx_value(b, NULL, e);
		break;
	}
	case JSON_STRING:
		sb_xml_text(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sb_str(b, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		sb_str(b, num);
		break;
	default:
		sb_str(b, json_is_true(v) ? "true" : "false");
		break;
	}
	sb_str(b, "</json:");
	sb_str(b, tag);
	sb_str(b, ">");
}

static char *to_jsonx(const json_t *e)
{
	struct sbuf b = {0};
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		   "<json:object xmlns:json=\"http://www.ibm.com/xmlns/prod/2009/jsonx\">");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)e, k, v) jsonx_value(&b, k, v);
	sb_str(&b, "</json:object>");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int audit_format_entry(const struct audit_format *f, const json_t *entry, char **out,
		       size_t *len, struct verr *err)
{
	if (!f->jsonx)
		return format_json(f, entry, out, len, err);
	json_t *e = json_deep_copy(entry);
	char *body = NULL;
	int rc = 0;
	if (!e)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	if (f->elide_list)
		elide_list(e);
	if (!f->log_raw && hash_entry(f, e)) {
		rc = verr_set(err, VERR_INTERNAL, "failed to hash an audit entry");
		goto out;
	}
	body = to_jsonx(e);
	if (!body) {
		rc = verr_set(err, VERR_INTERNAL, "failed to serialise an audit entry");
		goto out;
	}
	size_t pl = strlen(f->prefix), bl = strlen(body);
	char *line = malloc(pl + bl + 1);
	if (!line) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	memcpy(line, f->prefix, pl);
	memcpy(line + pl, body, bl + 1);
	*out = line;
	*len = pl + bl;
out:
	free(body);
	json_decref(e);
	return rc;
}

int audit_base_format_entry(char **out, size_t *len, void *dev, const struct audit_entry *entry,
			    struct verr *err)
{
	return audit_format_entry_direct(((struct audit_base *)dev)->fmt, entry, out, len, err);
}

int audit_base_format(char **out, size_t *len, void *dev, const json_t *entry, struct verr *err)
{
	return audit_format_entry(((struct audit_base *)dev)->fmt, entry, out, len, err);
}

char *audit_base_hash(void *dev, const char *input)
{
	return audit_format_hash(((struct audit_base *)dev)->fmt, input);
}
