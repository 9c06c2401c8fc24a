/*
 * response.c - the one VERR_* -> HTTP status map, and the bodies Coffer
 * writes: Vault's response envelope (logical.HTTPResponse, with the sys
 * "data at top level" injection), {"errors":[...]}, raw bodies, redirects.
 *
 * Pure functions over the core's struct logical_response; listener.c turns
 * the resulting struct http_reply into a libmicrohttpd response.
 */
#include "http/http_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/jsonw.h"

int http_status_for_verr(int code)
{
	switch (code) {
	case VERR_OK: return 200;
	case VERR_INVALID: return 400;
	case VERR_DENIED: return 403;
	case VERR_NOT_FOUND: return 404;
	case VERR_UNSUPPORTED: return 405;
	case VERR_TOO_LARGE: return 413;
	case VERR_RATE: return 429;
	case VERR_INTERNAL: return 500;
	case VERR_SEALED: return 503;
	case VERR_STANDBY: return 503;
	case VERR_UNAVAILABLE: return 503;
	case VERR_PRECONDITION: return 412;
	/* Vault answers 400 "Vault is not initialized" where the state matters
	 * (sys/unseal, rekey, generate-root); ordinary paths on an uninitialised
	 * server are sealed and the core reports VERR_SEALED (503). */
	case VERR_UNINIT: return 400;
	default: return 500;
	}
}

void http__reply_free(struct http_reply *r)
{
	if (!r)
		return;
	free(r->body);
	if (r->body_is_fd && r->body_fd >= 0)
		close(r->body_fd);
	free(r->content_type);
	free(r->location);
	memset(r, 0, sizeof(*r));
}

/* Fewest digits (15..17) that make every real in j round-trip: Go prints
 * shortest forms, jansson a fixed precision; 17 everywhere turns 0.1 into
 * 0.10000000000000001, 15 everywhere loses bits. */
static int real_precision(const json_t *j, int cur)
{
	if (cur >= 17)
		return 17;
	if (json_is_real(j)) {
		double v = json_real_value(j);
		char buf[40];
		int p = cur;
		for (; p < 17; p++) {
			snprintf(buf, sizeof(buf), "%.*g", p, v);
			if (strtod(buf, NULL) == v)
				break;
		}
		return p;
	}
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v) cur = real_precision(v, cur);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) cur = real_precision(v, cur);
	}
	return cur;
}

/* Bodies are written with util/jsonw (jansson's compact output at a
 * fraction of json_dumps' cost: docs/performance.md). */
char *http__json_dump(const json_t *j, size_t *len)
{
	struct jsonw w;
	jsonw_init(&w, 512);
	w.real_prec = real_precision(j, 15);
	jsonw_value(&w, j);
	jsonw_raw(&w, "\n", 1);
	return jsonw_take(&w, len);
}

static void set_json_body(struct http_reply *r, int status, json_t *body)
{
	r->status = status;
	r->body = body ? http__json_dump(body, &r->body_len) : NULL;
	if (body && !r->body) {
		r->status = 500;
		r->body_len = 0;
	}
	r->content_type = strdup("application/json");
}

/* One line, printable ASCII only: messages may quote client bytes (a JSON
 * parse error near a token) and must neither split headers/logs nor make
 * the JSON body invalid UTF-8. */
static json_t *clean_msg(const char *msg)
{
	size_t n = strlen(msg);
	char *c = malloc(n + 1);
	json_t *s;
	if (!c)
		return NULL;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)msg[i];
		c[i] = (ch == 0) ? 0 : (ch == '\r' || ch == '\n' || ch == '\t') ? ' ' :
		       (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	s = json_string(c);
	free(c);
	return s;
}

static json_t *errors_array(const char *msg)
{
	json_t *a = json_array();
	if (a && msg && *msg)
		json_array_append_new(a, clean_msg(msg));
	return a;
}

void http__reply_error(struct http_reply *r, int status, const char *msg)
{
	json_t *body = json_object();
	http__reply_free(r);
	if (body)
		json_object_set_new(body, "errors", errors_array(msg));
	set_json_body(r, status, body);
	json_decref(body);
}

static bool has_content(const struct logical_response *resp)
{
	/* data {} is content (a KV entry may be empty); NULL is not */
	return resp->data || resp->auth_out || resp->lease_out || resp->wrap_info_out ||
	       (resp->warnings && json_array_size(resp->warnings));
}

static const char *const envelope_keys[] = {
	"request_id", "lease_id", "renewable", "lease_duration", "data",
	"wrap_info", "warnings", "auth", "mount_type", NULL,
};

static bool is_envelope_key(const char *k)
{
	for (size_t i = 0; envelope_keys[i]; i++)
		if (strcmp(k, envelope_keys[i]) == 0)
			return true;
	return false;
}

/* Vault's logical.HTTPResponse, in its field order. With data_at_top the
 * data keys come first (Vault's HTTPSysInjector prepends them), minus any
 * that would collide with an envelope key. */
static json_t *envelope(const struct logical_request *req, const struct logical_response *resp)
{
	json_t *e = json_object();
	json_t *lease = resp->lease_out;
	const char *lease_id = lease ? json_string_value(json_object_get(lease, "lease_id")) : NULL;
	json_t *dur = lease ? json_object_get(lease, "lease_duration") : NULL;
	json_t *ren = lease ? json_object_get(lease, "renewable") : NULL;

	if (!e)
		return NULL;
	if (resp->data_at_top && json_is_object(resp->data)) {
		const char *k;
		json_t *v;
		json_object_foreach(resp->data, k, v) {
			if (!is_envelope_key(k))
				json_object_set(e, k, v);
		}
	}
	json_object_set_new(e, "request_id", json_string(req && req->request_id ? req->request_id : ""));
	json_object_set_new(e, "lease_id", json_string(lease_id ? lease_id : ""));
	json_object_set_new(e, "renewable", json_boolean(ren && json_is_true(ren)));
	json_object_set_new(e, "lease_duration",
			    json_integer(json_is_integer(dur) ? json_integer_value(dur) : 0));
	json_object_set(e, "data", resp->data ? resp->data : json_null());
	json_object_set(e, "wrap_info", resp->wrap_info_out ? resp->wrap_info_out : json_null());
	json_object_set(e, "warnings", resp->warnings ? resp->warnings : json_null());
	json_object_set(e, "auth", resp->auth_out ? resp->auth_out : json_null());
	json_object_set_new(e, "mount_type",
			    json_string(resp->mount_type_out ? resp->mount_type_out : ""));
	return e;
}

static void put_member(struct jsonw *w, const char *key, const json_t *v)
{
	jsonw_raw(w, ",\"", 2);
	jsonw_raw(w, key, strlen(key)); /* our own keys: nothing to escape */
	jsonw_raw(w, "\":", 2);
	jsonw_value(w, v ? v : json_null());
}

static void put_str_member(struct jsonw *w, const char *key, const char *s)
{
	jsonw_raw(w, ",\"", 2);
	jsonw_raw(w, key, strlen(key));
	jsonw_raw(w, "\":", 2);
	jsonw_string(w, s, strlen(s));
}

/* The success body: what set_json_body(envelope(req, resp)) writes, byte
 * for byte, without building the envelope object (the hot path of every
 * read). */
static void set_envelope_body(struct http_reply *r, int status,
			      const struct logical_request *req,
			      const struct logical_response *resp)
{
	json_t *lease = resp->lease_out;
	const char *lease_id = lease ? json_string_value(json_object_get(lease, "lease_id")) : NULL;
	json_t *dur = lease ? json_object_get(lease, "lease_duration") : NULL;
	json_t *ren = lease ? json_object_get(lease, "renewable") : NULL;
	struct jsonw w;
	char num[24];

	jsonw_init(&w, 512);
	w.real_prec = real_precision(resp->data, 15);
	w.real_prec = real_precision(resp->warnings, w.real_prec);
	w.real_prec = real_precision(resp->auth_out, w.real_prec);
	/* "{" then members each led by ","; the first comma becomes the brace */
	size_t start = w.len;
	if (resp->data_at_top && json_is_object(resp->data)) {
		const char *k;
		json_t *v;
		json_object_foreach(resp->data, k, v) {
			if (is_envelope_key(k))
				continue;
			jsonw_raw(&w, ",", 1);
			jsonw_string(&w, k, strlen(k));
			jsonw_raw(&w, ":", 1);
			jsonw_value(&w, v);
		}
	}
	/* a wrapped response is the wrap_info alone (Vault's respondLogical):
	 * the request id went into the wrapped body */
	put_str_member(&w, "request_id",
		       req && req->request_id && !resp->wrap_info_out ? req->request_id : "");
	put_str_member(&w, "lease_id", lease_id ? lease_id : "");
	jsonw_raw(&w, json_is_true(ren) ? ",\"renewable\":true" : ",\"renewable\":false",
		  json_is_true(ren) ? 17 : 18);
	snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		 json_is_integer(dur) ? json_integer_value(dur) : (json_int_t)0);
	jsonw_raw(&w, ",\"lease_duration\":", 18);
	jsonw_raw(&w, num, strlen(num));
	put_member(&w, "data", resp->data);
	put_member(&w, "wrap_info", resp->wrap_info_out);
	put_member(&w, "warnings", resp->warnings);
	put_member(&w, "auth", resp->auth_out);
	put_str_member(&w, "mount_type", resp->mount_type_out ? resp->mount_type_out : "");
	jsonw_raw(&w, "}\n", 2);
	if (!w.failed)
		w.p[start] = '{';
	r->status = status;
	r->body = jsonw_take(&w, &r->body_len);
	if (!r->body) {
		r->status = 500;
		r->body_len = 0;
	}
	r->content_type = strdup("application/json");
}

static void reply_redirect(struct http_reply *out, const char *location)
{
	out->status = 307;
	out->location = strdup(location);
	if (!out->location)
		http__reply_error(out, 500, "out of memory");
}

/* Vault's rule (RespondErrorCommon): a read with nothing, or a list with no
 * keys, is a 404 with {"errors":[]}. */
static bool vault_not_found(const struct logical_request *req, const struct logical_response *resp)
{
	if (!req || resp->status || resp->redirect || resp->raw)
		return false;
	if (req->op == LOP_READ)
		return !has_content(resp);
	if (req->op == LOP_LIST) {
		json_t *keys;
		if (!resp->data || !json_is_object(resp->data) || !json_object_size(resp->data))
			return !(resp->warnings && json_array_size(resp->warnings)) && !resp->auth_out;
		keys = json_object_get(resp->data, "keys");
		if (!keys || json_is_null(keys))
			return false; /* other data: returned as is */
		return json_is_array(keys) && json_array_size(keys) == 0;
	}
	return false;
}

void http__reply_from_core(struct http_reply *out, int rc, const struct logical_request *req,
			   const struct logical_response *resp, const struct verr *err)
{
	memset(out, 0, sizeof(*out));
	if (rc != 0) {
		int status = http_status_for_verr(rc);
		const char *msg = err ? err->msg : "";
		if (rc == VERR_STANDBY && resp && resp->redirect && *resp->redirect) {
			reply_redirect(out, resp->redirect);
			return;
		}
		if (resp && resp->status >= 400 && resp->status <= 599)
			status = resp->status;
		if (rc == VERR_SEALED && !*msg)
			msg = "Vault is sealed";
		if (resp && resp->data) {
			/* e.g. KV v2 read of a deleted version: 404 + the metadata */
			json_t *e = envelope(req, resp);
			if (e && *msg)
				json_object_set_new(e, "errors", errors_array(msg));
			set_json_body(out, status, e);
			json_decref(e);
			return;
		}
		http__reply_error(out, status, msg);
		return;
	}
	if (!resp) {
		out->status = 204;
		return;
	}
	if (resp->redirect && *resp->redirect && (!resp->status || resp->status == 307)) {
		reply_redirect(out, resp->redirect);
		return;
	}
	if (resp->raw) {
		out->status = resp->status ? resp->status : 200;
		if (out->status != 204 && resp->raw_is_fd) {
			/* the reply's own descriptor: the response closes its one */
			out->body_fd = dup(resp->raw_fd);
			if (out->body_fd < 0) {
				http__reply_error(out, 500, "out of file descriptors");
				return;
			}
			out->body_is_fd = true;
			out->body_len = resp->raw_len;
		} else if (out->status != 204 && resp->raw_len) {
			out->body = malloc(resp->raw_len);
			if (!out->body) {
				http__reply_error(out, 500, "out of memory");
				return;
			}
			memcpy(out->body, resp->raw_body, resp->raw_len);
			out->body_len = resp->raw_len;
		}
		out->content_type = strdup(resp->raw_content_type ? resp->raw_content_type
								  : "application/octet-stream");
		return;
	}
	if (vault_not_found(req, resp)) {
		http__reply_error(out, 404, NULL);
		return;
	}
	if (resp->status == 204 || (!resp->status && !has_content(resp))) {
		out->status = 204;
		return;
	}
	set_envelope_body(out, resp->status ? resp->status : 200, req, resp);
}
