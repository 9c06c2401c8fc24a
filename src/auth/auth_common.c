/*
 * auth_common.c - what every auth method shares (auth.h): the token_* config
 * fields (parse, validate, store, show, turn into a logical_auth), policy
 * list hygiene, and small id/time helpers.
 *
 * A token config is a JSON object stored inside the user/role entry:
 *   token_policies [..]  token_ttl  token_max_ttl  token_explicit_max_ttl
 *   token_period  token_num_uses  token_no_default_policy
 *   token_bound_cidrs [..]  token_type "default"|"service"|"batch"|
 *                           "default-service"|"default-batch"
 *   _legacy [..]   deprecated names the last write used ("policies", "ttl")
 * so reads can echo those names back as Vault does.
 */
#include "auth/auth.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cidr.h"
#include "util/policylist.h"
#include "util/timefmt.h"

json_t *auth_token_cfg_new(void)
{
	return json_pack("{s:[],s:I,s:I,s:I,s:I,s:I,s:b,s:[],s:s,s:[]}", "token_policies",
			 "token_ttl", (json_int_t)0, "token_max_ttl", (json_int_t)0,
			 "token_explicit_max_ttl", (json_int_t)0, "token_period", (json_int_t)0,
			 "token_num_uses", (json_int_t)0, "token_no_default_policy", 0,
			 "token_bound_cidrs", "token_type", "default", "_legacy");
}

json_t *auth_policies_sanitize(const json_t *in)
{
	return policylist_sanitize(in, false);
}

static bool list_has(const json_t *list, const char *s)
{
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e)
		if (json_is_string(e) && !strcmp(json_string_value(e), s))
			return true;
	return false;
}

/* every non-"default" entry of a is in b */
static bool subset_nodefault(const json_t *a, const json_t *b)
{
	size_t i;
	const json_t *e;
	json_array_foreach(a, i, e) {
		const char *s = json_string_value(e);
		if (s && strcmp(s, "default") && !list_has(b, s))
			return false;
	}
	return true;
}

bool auth_policies_equivalent(const json_t *a, const json_t *b)
{
	json_t *empty = json_array();
	json_t *sa = auth_policies_sanitize(a ? a : empty);
	json_t *sb = auth_policies_sanitize(b ? b : empty);
	bool eq = sa && sb && subset_nodefault(sa, sb) && subset_nodefault(sb, sa);
	json_decref(sa);
	json_decref(sb);
	json_decref(empty);
	return eq;
}

int auth_cidrs_check(const json_t *list, const char *field, struct verr *err)
{
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e) {
		const char *s = json_string_value(e);
		if (!s || !cidr_valid(s))
			return verr_set(err, VERR_INVALID, "invalid CIDR block \"%.64s\" in %s",
					s ? s : "", field);
	}
	return 0;
}

static void legacy_mark(json_t *cfg, const char *name, bool on)
{
	json_t *l = json_object_get(cfg, "_legacy");
	if (!json_is_array(l)) {
		l = json_array();
		json_object_set_new(cfg, "_legacy", l);
	}
	size_t i;
	json_t *e;
	json_array_foreach(l, i, e) {
		if (!strcmp(json_string_value(e), name)) {
			if (!on)
				json_array_remove(l, i);
			return;
		}
	}
	if (on)
		json_array_append_new(l, json_string(name));
}

/* The value for cfg key `key` comes from the new name when sent, else the
 * old one (if this method accepts it); records which one was used. Returns
 * the field name to read, or NULL when neither was sent. */
static const char *pick(json_t *cfg, const struct logical_request *req, const char *key,
			const char *old)
{
	if (request_has(req, key)) {
		if (old)
			legacy_mark(cfg, old, false);
		return key;
	}
	if (old && request_has(req, old)) {
		legacy_mark(cfg, old, true);
		return old;
	}
	return NULL;
}

int auth_token_cfg_update(json_t *cfg, const struct logical_request *req, unsigned legacy,
			  struct verr *err)
{
	const char *f;
	if ((f = pick(cfg, req, "token_policies", "policies"))) {
		json_t *p = auth_policies_sanitize(request_json(req, f));
		if (!p)
			return verr_set(err, VERR_INTERNAL, "out of memory");
		json_object_set_new(cfg, "token_policies", p);
	}
	static const struct {
		const char *key, *old;
		unsigned bit;
	} durs[] = {
		{"token_ttl", "ttl", AUTH_LEGACY_TTL},
		{"token_max_ttl", "max_ttl", AUTH_LEGACY_TTL},
		{"token_explicit_max_ttl", NULL, 0},
		{"token_period", "period", AUTH_LEGACY_PERIOD},
	};
	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		const char *old = durs[i].bit & legacy ? durs[i].old : NULL;
		if ((f = pick(cfg, req, durs[i].key, old)))
			json_object_set_new(cfg, durs[i].key, json_integer(request_duration(req, f)));
	}
	if (request_has(req, "token_num_uses")) {
		int64_t n = request_int(req, "token_num_uses");
		if (n < 0)
			return verr_set(err, VERR_INVALID, "'token_num_uses' cannot be negative");
		json_object_set_new(cfg, "token_num_uses", json_integer(n));
	}
	if (request_has(req, "token_no_default_policy"))
		json_object_set_new(cfg, "token_no_default_policy",
				    json_boolean(request_bool(req, "token_no_default_policy")));
	if ((f = pick(cfg, req, "token_bound_cidrs",
		      legacy & AUTH_LEGACY_BOUND_CIDRS ? "bound_cidrs" : NULL))) {
		const json_t *l = request_json(req, f);
		int rc = auth_cidrs_check(l, f, err);
		if (rc)
			return rc;
		json_object_set_new(cfg, "token_bound_cidrs",
				    json_is_array(l) ? json_deep_copy(l) : json_array());
	}
	if (request_has(req, "token_type")) {
		const char *t = request_str(req, "token_type");
		if (!t || !*t)
			t = "default";
		if (strcmp(t, "default") && strcmp(t, "service") && strcmp(t, "batch") &&
		    strcmp(t, "default-service") && strcmp(t, "default-batch"))
			return verr_set(err, VERR_INVALID, "invalid 'token_type' value \"%.32s\"", t);
		json_object_set_new(cfg, "token_type", json_string(t));
	}
	json_int_t ttl = json_integer_value(json_object_get(cfg, "token_ttl"));
	json_int_t max = json_integer_value(json_object_get(cfg, "token_max_ttl"));
	if (max > 0 && ttl > max)
		return verr_set(err, VERR_INVALID, "'token_ttl' cannot be greater than 'token_max_ttl'");
	return 0;
}

static json_t *arr_copy(const json_t *v)
{
	return json_is_array(v) ? json_deep_copy(v) : json_array();
}

void auth_token_cfg_to_data(json_t *data, const json_t *cfg)
{
	static const char *const ints[] = {"token_ttl", "token_max_ttl", "token_explicit_max_ttl",
					   "token_period", "token_num_uses", NULL};
	for (int i = 0; ints[i]; i++)
		json_object_set_new(data, ints[i],
				    json_integer(json_integer_value(json_object_get(cfg, ints[i]))));
	json_object_set_new(data, "token_policies", arr_copy(json_object_get(cfg, "token_policies")));
	json_object_set_new(data, "token_bound_cidrs",
			    arr_copy(json_object_get(cfg, "token_bound_cidrs")));
	json_object_set_new(data, "token_no_default_policy",
			    json_boolean(json_is_true(json_object_get(cfg, "token_no_default_policy"))));
	const char *t = json_string_value(json_object_get(cfg, "token_type"));
	json_object_set_new(data, "token_type", json_string(t ? t : "default"));
	/* deprecated names the config was written with */
	static const char *const alias[][2] = {{"policies", "token_policies"},
					       {"ttl", "token_ttl"},
					       {"max_ttl", "token_max_ttl"},
					       {"period", "token_period"},
					       {"bound_cidrs", "token_bound_cidrs"}};
	const json_t *l = json_object_get(cfg, "_legacy");
	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
		if (list_has(l, alias[i][0]))
			json_object_set_new(data, alias[i][0],
					    json_deep_copy(json_object_get(data, alias[i][1])));
}

int auth_token_cfg_fill(struct logical_auth *a, const json_t *cfg, struct verr *err)
{
	a->policies = arr_copy(json_object_get(cfg, "token_policies"));
	a->ttl = json_integer_value(json_object_get(cfg, "token_ttl"));
	a->max_ttl = json_integer_value(json_object_get(cfg, "token_max_ttl"));
	a->explicit_max_ttl = json_integer_value(json_object_get(cfg, "token_explicit_max_ttl"));
	a->period = json_integer_value(json_object_get(cfg, "token_period"));
	a->num_uses = json_integer_value(json_object_get(cfg, "token_num_uses"));
	a->no_default_policy = json_is_true(json_object_get(cfg, "token_no_default_policy"));
	a->renewable = true;
	const json_t *bc = json_object_get(cfg, "token_bound_cidrs");
	if (json_array_size(bc))
		a->bound_cidrs = json_deep_copy(bc);
	const char *t = json_string_value(json_object_get(cfg, "token_type"));
	if (t && (!strcmp(t, "service") || !strcmp(t, "batch")))
		a->token_type = strdup(t);
	else if (t && !strcmp(t, "default-batch"))
		a->token_type = strdup("batch");
	if (a->token_type && !strcmp(a->token_type, "batch"))
		a->renewable = false; /* batch tokens never renew */
	if (!a->policies || (json_array_size(bc) && !a->bound_cidrs) ||
	    (t && (!strcmp(t, "service") || !strcmp(t, "batch")) && !a->token_type))
		return verr_set(err, VERR_INTERNAL, "out of memory");
	return 0;
}

void auth_lower(char *s)
{
	for (; s && *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

void auth_time_format(char *buf, size_t cap, int64_t unix_secs, long nsec)
{
	char t[TIMEFMT_MAX];
	if (unix_secs == 0 || !timefmt_rfc3339(t, unix_secs, nsec, TIMEFMT_NANO9))
		snprintf(t, sizeof(t), "0001-01-01T00:00:00Z");
	snprintf(buf, cap, "%s", t);
}
