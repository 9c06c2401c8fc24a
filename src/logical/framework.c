/*
 * framework.c - the path-table framework every backend uses (logical.h):
 * pattern matching with captures, field conversion/validation against a
 * schema, operation dispatch with Vault's create/update existence check,
 * request field accessors and response helpers.
 *
 * Field conversion mirrors Vault's framework.FieldData: strings accept any
 * scalar, ints accept numbers and numeric strings, bools accept true/false
 * and "true"/"false"/"1"/"0", durations accept seconds or "1h30m", string
 * lists accept arrays or comma-separated strings, maps accept objects or
 * "k=v,k2=v2". A value of the wrong type is a 400 naming the field.
 */
#include "logical/logical.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/duration.h"

const char *logical_op_name(enum logical_op op)
{
	switch (op) {
	case LOP_READ: return "read";
	case LOP_CREATE: return "create";
	case LOP_UPDATE: return "update";
	case LOP_PATCH: return "patch";
	case LOP_DELETE: return "delete";
	case LOP_LIST: return "list";
	case LOP_HELP: return "help";
	case LOP_REVOKE: return "revoke";
	case LOP_RENEW: return "renew";
	}
	return "unknown";
}

/* ---- pattern matching ---- */

/* Match pattern p against s; captures go into caps (may be NULL). Returns 1
 * on a full match. Backtracks only for {x*}/{x**} which are expected to be
 * last or followed by a short literal tail. */
static int match_at(const char *p, const char *s, json_t *caps)
{
	while (*p) {
		if (p[0] == '/' && p[1] == '?' && p[2] == '\0') {
			if (*s == '/' && s[1] == '\0')
				return 1;
			return *s == '\0';
		}
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (!close)
				return 0;
			size_t nlen = (size_t)(close - p - 1);
			char name[64];
			int kind = 0; /* 0 segment, 1 one-or-more any, 2 zero-or-more any */
			if (nlen >= 2 && p[nlen - 1] == '*' && p[nlen] == '*') {
				kind = 2;
				nlen -= 2;
			} else if (nlen >= 1 && p[nlen] == '*') {
				kind = 1;
				nlen -= 1;
			}
			if (nlen >= sizeof(name))
				return 0;
			memcpy(name, p + 1, nlen);
			name[nlen] = '\0';
			const char *rest = close + 1;
			size_t slen = strlen(s);
			size_t maxlen;
			if (kind == 0) {
				const char *sl = strchr(s, '/');
				maxlen = sl ? (size_t)(sl - s) : slen;
			} else {
				maxlen = slen;
			}
			size_t minlen = kind == 2 ? 0 : 1;
			/* greedy: prefer the longest capture */
			for (size_t l = maxlen + 1; l-- > minlen;) {
				if (match_at(rest, s + l, caps)) {
					if (caps) {
						char *v = strndup(s, l);
						if (!v)
							return 0;
						json_object_set_new(caps, name, json_string(v));
						free(v);
					}
					return 1;
				}
				if (l == 0)
					break;
			}
			return 0;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	return *s == '\0';
}

const struct path_def *framework_match(const struct path_def *table, const char *rel_path,
				       json_t **captures)
{
	if (!table)
		return NULL;
	for (const struct path_def *d = table; d->pattern; d++) {
		/* match without recording first: most patterns of a table miss,
		 * and an object per try was 15 allocations for a transit encrypt */
		if (!match_at(d->pattern, rel_path, NULL))
			continue;
		if (!captures)
			return d;
		json_t *caps = json_object();
		if (!caps || !match_at(d->pattern, rel_path, caps)) {
			json_decref(caps);
			return NULL;
		}
		*captures = caps;
		return d;
	}
	return NULL;
}

/* ---- field conversion ---- */

static int conv_bool(const json_t *v, bool *out)
{
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v)) {
		*out = json_integer_value(v) != 0;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "t") || !strcmp(s, "True") ||
		    !strcmp(s, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "f") || !strcmp(s, "False") ||
		    !strcmp(s, "FALSE") || !*s) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int conv_int(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* range first: casting an out-of-range double is undefined */
		if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(int64_t)d)
			return -1;
		*out = (int64_t)d;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!*s) {
			*out = 0;
			return 0;
		}
		errno = 0;
		char *end;
		long long x = strtoll(s, &end, 10);
		if (errno || *end)
			return -1;
		*out = x;
		return 0;
	}
	return -1;
}

static json_t *conv_strslice(const json_t *v)
{
	json_t *arr = json_array();
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (json_is_string(e))
				json_array_append(arr, e);
			else if (json_is_integer(e) || json_is_real(e) || json_is_boolean(e)) {
				char *s = json_dumps(e, JSON_ENCODE_ANY);
				json_array_append_new(arr, json_string(s ? s : ""));
				free(s);
			} else {
				json_decref(arr);
				return NULL;
			}
		}
		return arr;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		while (*s) {
			const char *c = strchr(s, ',');
			size_t l = c ? (size_t)(c - s) : strlen(s);
			/* trim */
			const char *a = s, *b = s + l;
			while (a < b && isspace((unsigned char)*a))
				a++;
			while (b > a && isspace((unsigned char)b[-1]))
				b--;
			if (b > a) {
				char *part = strndup(a, (size_t)(b - a));
				json_array_append_new(arr, json_string(part ? part : ""));
				free(part);
			}
			if (!c)
				break;
			s = c + 1;
		}
		return arr;
	}
	json_decref(arr);
	return NULL;
}

static json_t *conv_map(const json_t *v)
{
	if (json_is_object(v))
		return json_deep_copy(v);
	if (json_is_string(v)) {
		json_t *obj = json_object();
		json_t *parts = conv_strslice(v);
		size_t i;
		json_t *e;
		json_array_foreach(parts, i, e) {
			const char *kv = json_string_value(e);
			const char *eq = strchr(kv, '=');
			if (!eq) {
				json_decref(parts);
				json_decref(obj);
				return NULL;
			}
			char *k = strndup(kv, (size_t)(eq - kv));
			json_object_set_new(obj, k ? k : "", json_string(eq + 1));
			free(k);
		}
		json_decref(parts);
		return obj;
	}
	return NULL;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

/* Convert raw value v for field f; *out is a new reference. */
static int convert_field(const struct field_def *f, const json_t *v, json_t **out,
			 struct verr *err)
{
	*out = NULL;
	switch (f->type) {
	case FT_STRING:
	case FT_NAME:
		if (json_is_string(v))
			*out = json_incref((json_t *)v);
		else if (json_is_integer(v) || json_is_real(v) || json_is_boolean(v)) {
			char *s = json_dumps(v, JSON_ENCODE_ANY);
			*out = json_string(s ? s : "");
			free(s);
		} else if (json_is_null(v))
			*out = json_string("");
		else
			goto bad;
		if (f->type == FT_NAME && !valid_name(json_string_value(*out))) {
			json_decref(*out);
			*out = NULL;
			return verr_set(err, VERR_INVALID, "invalid value for field \"%s\": must be a name of letters, digits, '-', '_' or '.'", f->name);
		}
		return 0;
	case FT_INT: {
		int64_t x;
		if (conv_int(v, &x))
			goto bad;
		*out = json_integer(x);
		return 0;
	}
	case FT_BOOL: {
		bool b;
		if (conv_bool(v, &b))
			goto bad;
		*out = json_boolean(b);
		return 0;
	}
	case FT_DURATION: {
		int64_t x;
		if (json_is_integer(v) || json_is_real(v)) {
			if (conv_int(v, &x) || x < 0)
				goto bad;
		} else if (json_is_string(v)) {
			const char *s = json_string_value(v);
			if (!*s)
				x = 0;
			else {
				struct verr e2;
				if (duration_parse(&x, s, &e2))
					return verr_set(err, VERR_INVALID, "error converting input for field \"%s\": %s", f->name, e2.msg);
			}
		} else
			goto bad;
		*out = json_integer(x);
		return 0;
	}
	case FT_STRSLICE:
		*out = conv_strslice(v);
		if (!*out)
			goto bad;
		return 0;
	case FT_MAP:
		*out = conv_map(v);
		if (!*out)
			goto bad;
		return 0;
	case FT_ANY:
		*out = json_incref((json_t *)v);
		return 0;
	}
bad:
	return verr_set(err, VERR_INVALID, "error converting input for field \"%s\": expected %s",
			f->name,
			f->type == FT_INT ? "an integer" : f->type == FT_BOOL ? "a boolean" :
			f->type == FT_DURATION ? "a duration" : f->type == FT_STRSLICE ? "a list of strings" :
			f->type == FT_MAP ? "a map" : "a string");
}

static json_t *default_value(const struct field_def *f)
{
	json_t *raw = json_string(f->def);
	json_t *out = NULL;
	if (convert_field(f, raw, &out, NULL))
		out = NULL;
	json_decref(raw);
	return out;
}

int framework_fields(const struct path_def *def, json_t *data, json_t *captures,
		     json_t **out_fields, struct logical_response *resp, struct verr *err)
{
	json_t *fields = json_object();
	json_t *given = json_object();
	if (!fields || !given) {
		json_decref(fields);
		json_decref(given);
		return verr_set(err, VERR_INTERNAL, "out of memory");
	}
	if (def->fields) {
		for (const struct field_def *f = def->fields; f->name; f++) {
			json_t *v = data ? json_object_get(data, f->name) : NULL;
			if (captures && json_object_get(captures, f->name))
				v = json_object_get(captures, f->name);
			/* clients send null for "not set" (hvac passes increment=None
			 * through): a typed field then takes its default, as in Vault */
			if (json_is_null(v) && f->type != FT_ANY && f->type != FT_STRING &&
			    f->type != FT_NAME)
				v = NULL;
			if (v) {
				json_t *conv;
				int rc = convert_field(f, v, &conv, err);
				if (rc) {
					json_decref(fields);
					json_decref(given);
					return rc;
				}
				json_object_set_new(fields, f->name, conv);
				json_object_set_new(given, f->name, json_true());
			} else if (f->def) {
				json_t *d = default_value(f);
				if (d)
					json_object_set_new(fields, f->name, d);
			}
		}
	}
	/* captures not declared as fields are strings */
	const char *k;
	json_t *v;
	json_object_foreach(captures, k, v) {
		if (!json_object_get(fields, k)) {
			json_object_set(fields, k, v);
			json_object_set_new(given, k, json_true());
		}
	}
	/* unknown fields -> warning, like Vault */
	if (data && !def->allow_unknown_fields && def->fields) {
		json_t *unknown = NULL;
		json_object_foreach(data, k, v) {
			int known = 0;
			for (const struct field_def *f = def->fields; f->name; f++)
				if (!strcmp(f->name, k))
					known = 1;
			if (!known && !(captures && json_object_get(captures, k))) {
				if (!unknown)
					unknown = json_array();
				json_array_append_new(unknown, json_string(k));
			}
		}
		if (unknown && resp) {
			char buf[512];
			size_t off = 0;
			size_t i;
			json_t *e;
			json_array_foreach(unknown, i, e) {
				int n = snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? " " : "",
						 json_string_value(e));
				if (n < 0 || (size_t)n >= sizeof(buf) - off)
					break;
				off += (size_t)n;
			}
			logical_response_warn(resp, "Endpoint ignored these unrecognized parameters: [%s]", buf);
		}
		json_decref(unknown);
	}
	json_object_set_new(fields, "\x01given", given);
	*out_fields = fields;
	return 0;
}

int framework_resolve_op(const struct path_def *def, struct logical_request *req,
			 struct verr *err)
{
	if (req->op != LOP_UPDATE && req->op != LOP_CREATE)
		return 0;
	bool has_create = false, has_update = false;
	for (const struct path_op *o = def->ops; o->op; o++) {
		has_create |= o->op == LOP_CREATE;
		has_update |= o->op == LOP_UPDATE;
	}
	enum logical_op op = LOP_UPDATE;
	if (def->exists && has_create) {
		int ex = def->exists(req, err);
		if (ex < 0)
			return ex;
		op = ex ? LOP_UPDATE : LOP_CREATE;
	}
	if (op == LOP_UPDATE && !has_update && has_create)
		op = LOP_CREATE;
	req->op = op;
	return 0;
}

int framework_call(const struct path_def *def, struct logical_request *req,
		   struct logical_response *resp, struct verr *err)
{
	path_handler_fn fn = NULL;
	for (const struct path_op *o = def->ops; o->op; o++)
		if (o->op == req->op)
			fn = o->fn;
	if (!fn) {
		if (req->op == LOP_HELP) {
			resp->data = json_pack("{s:s}", "help", def->help ? def->help : "");
			return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
		}
		return verr_set(err, VERR_UNSUPPORTED, "unsupported operation");
	}
	if (req->op == LOP_CREATE || req->op == LOP_UPDATE)
		for (const struct field_def *f = def->fields; f && f->name; f++)
			if (f->required && !request_has(req, f->name))
				return verr_set(err, VERR_INVALID, "missing required field \"%s\"",
						f->name);
	return fn(req, resp, err);
}

int framework_handle(const struct path_def *table, struct logical_request *req,
		     struct logical_response *resp, struct verr *err)
{
	json_t *caps = NULL;
	const struct path_def *def = framework_match(table, req->rel_path, &caps);
	if (!def) {
		if (req->op == LOP_LIST || req->op == LOP_READ)
			return verr_set(err, VERR_NOT_FOUND, "%s", "");
		return verr_set(err, VERR_NOT_FOUND, "unsupported path"); /* 404, as Vault */
	}
	json_t *fields = NULL;
	int rc = framework_fields(def, req->data, caps, &fields, resp, err);
	json_decref(caps);
	if (rc)
		return rc;
	json_t *saved = req->fields;
	req->fields = fields;
	rc = framework_resolve_op(def, req, err);
	if (!rc)
		rc = framework_call(def, req, resp, err);
	req->fields = saved;
	json_decref(fields);
	return rc;
}

/* ---- accessors ---- */

static json_t *field(const struct logical_request *req, const char *name)
{
	return req->fields ? json_object_get(req->fields, name) : NULL;
}

const char *request_str(const struct logical_request *req, const char *name)
{
	json_t *v = field(req, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t request_int(const struct logical_request *req, const char *name)
{
	json_t *v = field(req, name);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

bool request_bool(const struct logical_request *req, const char *name)
{
	return json_is_true(field(req, name));
}

int64_t request_duration(const struct logical_request *req, const char *name)
{
	return request_int(req, name);
}

json_t *request_json(const struct logical_request *req, const char *name)
{
	return field(req, name);
}

bool request_has(const struct logical_request *req, const char *name)
{
	json_t *g = req->fields ? json_object_get(req->fields, "\x01given") : NULL;
	return g && json_object_get(g, name);
}

/* ---- responses ---- */

void logical_auth_free(struct logical_auth *a)
{
	if (!a)
		return;
	json_decref(a->policies);
	json_decref(a->metadata);
	json_decref(a->bound_cidrs);
	json_decref(a->internal);
	free(a->display_name);
	free(a->token_type);
	free(a->alias_name);
	free(a);
}

void logical_secret_free(struct logical_secret *s)
{
	if (!s)
		return;
	json_decref(s->internal);
	free(s);
}

void logical_response_reset(struct logical_response *r)
{
	if (!r)
		return;
	json_decref(r->data);
	json_decref(r->warnings);
	json_decref(r->auth_out);
	json_decref(r->lease_out);
	logical_secret_free(r->secret);
	logical_auth_free(r->auth);
	free(r->raw_body);
	if (r->raw_is_fd && r->raw_fd >= 0)
		close(r->raw_fd);
	free(r->raw_content_type);
	free(r->redirect);
	free(r->mount_type_out);
	free(r->wrap_creation_path);
	json_decref(r->wrap_info_out);
	memset(r, 0, sizeof(*r));
}

void logical_response_warn(struct logical_response *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!r->warnings)
		r->warnings = json_array();
	json_array_append_new(r->warnings, json_string(buf));
}
