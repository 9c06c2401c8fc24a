/*
 * request.c - map one raw HTTP request (method, request-target, headers,
 * body) to a struct logical_request, following Vault's conventions
 * (VAULT-API.md §2; Vault's http/logical.go):
 *
 *   GET -> read (list when ?list=<true>), LIST -> list, POST/PUT -> update,
 *   PATCH -> patch (needs Content-Type application/merge-patch+json),
 *   DELETE -> delete, HEAD -> read, ?help=<non-empty> or HELP -> help,
 *   anything else -> 405 {"errors":[]}.
 *   Body methods take a JSON object (or a url-encoded form); the others take
 *   the query string. List paths get a trailing '/'.
 *
 * Pure: no sockets, no globals, so the fuzz target drives it directly.
 * Paths are decoded here from the raw target (not by libmicrohttpd) so a
 * %00 or a raw NUL can never silently truncate a path: both are rejected.
 */
#include "http/http_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "util/duration.h"
#include "util/jsonr.h"

void http__built_free(struct http_built *b)
{
	if (!b)
		return;
	free(b->path);
	if (b->token) {
		/* the token is a credential: do not leave it in freed memory */
		OPENSSL_cleanse(b->token, strlen(b->token));
		free(b->token);
	}
	json_decref(b->data);
	json_decref(b->headers);
	memset(b, 0, sizeof(*b));
}

/* Request IDs: random (version 4) UUIDs from the CSPRNG, drawn 32 at a time
 * into a per-thread buffer. One RAND_bytes call per request cost about as
 * much as the token check and the ACL together (docs/performance.md). Each
 * byte is used once and wiped when taken. */
#define UUID_BATCH 32
static _Thread_local unsigned char uuid_pool[UUID_BATCH * 16];
static _Thread_local unsigned uuid_left;

int http__uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	if (uuid_left == 0) {
		if (RAND_bytes(uuid_pool, sizeof(uuid_pool)) != 1)
			return VERR_INTERNAL;
		uuid_left = UUID_BATCH;
	}
	uuid_left--;
	memcpy(b, uuid_pool + uuid_left * 16, 16);
	memset(uuid_pool + uuid_left * 16, 0, 16);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *http__unescape(const char *s, size_t len, bool plus_as_space, size_t *n)
{
	char *out = malloc(len + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= len) {
				free(out);
				return NULL;
			}
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (plus_as_space && s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*n = o;
	return out;
}

/* Go's path.Clean, plus ServeMux's rule that a trailing slash is kept.
 * p starts with '/'. Returns a malloc'd string. */
static char *clean_path(const char *p, size_t len)
{
	char *out = malloc(len + 2);
	size_t w = 0, r = 0;
	if (!out)
		return NULL;
	out[w++] = '/';
	r = 1;
	while (r < len) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == len || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == len || p[r + 2] == '/')) {
			r += 2;
			/* back up to the previous '/' (never above the root) */
			if (w > 1) {
				w--;
				while (w > 1 && out[w - 1] != '/')
					w--;
				if (w > 1)
					w--; /* drop the separator too */
			}
		} else {
			if (w > 1)
				out[w++] = '/';
			while (r < len && p[r] != '/')
				out[w++] = p[r++];
		}
	}
	if (w > 1 && out[w - 1] == '/')
		w--;
	if (len > 1 && p[len - 1] == '/' && w > 1)
		out[w++] = '/';
	out[w] = '\0';
	return out;
}

/* Escape a decoded path for a Location header the way Go's URL.String does
 * (keep unreserved and "$&+,/:;=@", escape everything else). */
static char *escape_path(const char *p)
{
	static const char keep[] = "-_.~$&+,/:;=@";
	size_t len = strlen(p);
	char *out = malloc(len * 3 + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (isalnum(c) || (c && strchr(keep, c))) {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, 4, "%%%02X", c);
			o += 3;
		}
	}
	out[o] = '\0';
	return out;
}

static const char *header_get(const struct http_raw_request *in, const char *name)
{
	for (size_t i = 0; i < in->nheaders; i++)
		if (in->headers[i].name && strcasecmp(in->headers[i].name, name) == 0)
			return in->headers[i].value ? in->headers[i].value : "";
	return NULL;
}

/* Go's strconv.ParseBool: 1 true, 0 false, -1 invalid. */
static int parse_bool(const char *s)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, t[i]) == 0)
			return 1;
		if (strcmp(s, f[i]) == 0)
			return 0;
	}
	return -1;
}

/* Add key=value to obj: a single value is a string, repeats make an array
 * (Vault's parseQuery), or a comma-joined string (forms). */
static int add_value(json_t *obj, const char *k, const char *v, bool join)
{
	json_t *cur = json_object_get(obj, k);
	if (!cur)
		return json_object_set_new(obj, k, json_string(v));
	if (join) {
		const char *old = json_string_value(cur);
		size_t n = strlen(old) + strlen(v) + 2;
		char *s = malloc(n);
		int rc;
		if (!s)
			return -1;
		snprintf(s, n, "%s,%s", old, v);
		rc = json_object_set_new(obj, k, json_string(s));
		free(s);
		return rc;
	}
	if (json_is_string(cur)) {
		json_t *arr = json_array();
		json_array_append(arr, cur);
		json_array_append_new(arr, json_string(v));
		return json_object_set_new(obj, k, arr);
	}
	return json_array_append_new(cur, json_string(v));
}

static bool utf8_ok(const char *s)
{
	json_t *probe = json_string(s);
	json_decref(probe);
	return probe != NULL;
}

/* Go's url.ParseQuery, keeping first-seen key order: pairs split on '&',
 * a pair with ';' or a bad escape is skipped, '+' is a space. Keys or
 * values holding NUL are an error (-1): our strings are C strings. */
static int parse_query(json_t *obj, const char *q, size_t len, bool join)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && q[end] != '&')
			end++;
		const char *pair = q + i;
		size_t plen = end - i;
		i = end + 1;
		if (plen == 0 || memchr(pair, ';', plen))
			continue;
		const char *eq = memchr(pair, '=', plen);
		size_t klen = eq ? (size_t)(eq - pair) : plen;
		size_t kn, vn;
		char *k = http__unescape(pair, klen, true, &kn);
		char *v = eq ? http__unescape(eq + 1, plen - klen - 1, true, &vn)
			     : http__unescape("", 0, true, &vn);
		if (!k || !v) {
			free(k);
			free(v);
			continue;
		}
		if (strlen(k) != kn || strlen(v) != vn || !utf8_ok(k) || !utf8_ok(v)) {
			/* a NUL byte, or not UTF-8 (jansson refuses it) */
			free(k);
			free(v);
			return -1;
		}
		int rc = add_value(obj, k, v, join);
		free(k);
		free(v);
		if (rc)
			return -1;
	}
	return 0;
}

/* mime.ParseMediaType, reduced to what we need: the lower-cased type
 * without parameters. Returns -1 for an empty/invalid header. */
static int media_type(const char *ct, char *buf, size_t cap)
{
	size_t n = 0;
	if (!ct)
		return -1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	while (*ct && *ct != ';' && *ct != ' ' && *ct != '\t' && n + 1 < cap)
		buf[n++] = (char)tolower((unsigned char)*ct++);
	buf[n] = '\0';
	if (n == 0 || !strchr(buf, '/'))
		return -1;
	return 0;
}

/* Vault's isOcspRequest: the body is a DER OCSP request, passed through
 * unparsed to the mount (its ocsp path answers DER). */
static bool is_ocsp_request(const struct http_raw_request *in)
{
	char mt[128];
	return !media_type(header_get(in, "Content-Type"), mt, sizeof(mt)) &&
	       !strcmp(mt, "application/ocsp-request");
}

static bool is_form(const struct http_raw_request *in)
{
	char mt[128];
	if (media_type(header_get(in, "Content-Type"), mt, sizeof(mt)) ||
	    strcmp(mt, "application/x-www-form-urlencoded") != 0)
		return false;
	/* curl -d sends JSON with this content type: look at the first byte */
	for (size_t i = 0; i < in->body_len && i < 512; i++) {
		char c = in->body[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		return c != '{' && c != '[';
	}
	return true;
}

static const char *json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "not an object";
	}
}

/* The JSON body: an object, or {} for an empty body or "null". */
static int parse_json_body(json_t **out, struct http_reply *reply,
			   const struct http_raw_request *in)
{
	json_error_t jerr;
	json_t *j;
	size_t i = 0;
	char msg[300];

	*out = NULL;
	while (i < in->body_len && strchr(" \t\r\n", in->body[i]) && in->body[i])
		i++;
	if (i == in->body_len) {
		*out = json_object();
		return 0;
	}
	/* the common body in a fast pass; jansson for the rest (and its errors) */
	j = jsonr_parse(in->body, in->body_len);
	if (!j)
		j = json_loadb(in->body, in->body_len, JSON_DECODE_ANY, &jerr);
	if (!j) {
		snprintf(msg, sizeof(msg), "failed to parse JSON input: %s", jerr.text);
		http__reply_error(reply, 400, msg);
		return 1;
	}
	if (json_is_null(j)) {
		json_decref(j);
		*out = json_object();
		return 0;
	}
	if (!json_is_object(j)) {
		snprintf(msg, sizeof(msg),
			 "failed to parse JSON input: the body must be a JSON object, got %s",
			 json_type_name(j));
		json_decref(j);
		http__reply_error(reply, 400, msg);
		return 1;
	}
	*out = j;
	return 0;
}

static int body_data(json_t **out, struct http_reply *reply, const struct http_raw_request *in)
{
	if (is_form(in)) {
		*out = json_object();
		if (parse_query(*out, in->body ? in->body : "", in->body_len, true)) {
			json_decref(*out);
			*out = NULL;
			http__reply_error(reply, 400, "error parsing form data");
			return 1;
		}
		return 0;
	}
	return parse_json_body(out, reply, in);
}

/* X-Vault-* request headers (lower-cased names, first value wins). The token
 * header is left out: it travels in req->client_token only, so nothing that
 * logs headers can leak it. */
static json_t *vault_headers(const struct http_raw_request *in)
{
	json_t *h = json_object();
	for (size_t i = 0; h && i < in->nheaders; i++) {
		const char *name = in->headers[i].name;
		char lower[128];
		size_t n;
		/* Accept: sys/metrics picks OpenMetrics by it */
		if (!name || (strncasecmp(name, "x-vault-", 8) != 0 && strcasecmp(name, "accept") != 0))
			continue;
		n = strlen(name);
		if (n >= sizeof(lower))
			continue;
		for (size_t k = 0; k <= n; k++)
			lower[k] = (char)tolower((unsigned char)name[k]);
		if (strcmp(lower, "x-vault-token") == 0 || json_object_get(h, lower))
			continue;
		json_t *v = json_string(in->headers[i].value ? in->headers[i].value : "");
		if (v)
			json_object_set_new(h, lower, v);
	}
	return h;
}

/* X-Vault-Token, else "Authorization: Bearer <t>" (Vault's getTokenFromReq). */
static char *find_token(const struct http_raw_request *in)
{
	const char *t = header_get(in, "X-Vault-Token");
	if (t && *t)
		return strdup(t);
	for (size_t i = 0; i < in->nheaders; i++) {
		const char *v = in->headers[i].value;
		if (!in->headers[i].name || strcasecmp(in->headers[i].name, "Authorization") != 0 ||
		    !v || strncmp(v, "Bearer ", 7) != 0)
			continue;
		v += 7;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strlen(v);
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		return n ? strndup(v, n) : NULL;
	}
	return NULL;
}

static int oom(struct http_reply *reply)
{
	http__reply_error(reply, 500, "out of memory");
	return 1;
}

int http__build_request(struct http_built *out, struct http_reply *reply,
			const struct http_raw_request *in)
{
	const char *t = in->target, *q = NULL, *m = in->method ? in->method : "";
	size_t tlen = in->target_len, plen, qlen = 0, dlen;
	char *decoded = NULL, *cleaned = NULL;
	json_t *data = NULL;
	enum logical_op op;
	bool help = false;
	int ret = 1;

	memset(out, 0, sizeof(*out));
	memset(reply, 0, sizeof(*reply));

	if (!t || memchr(t, '\0', tlen)) {
		http__reply_error(reply, 400, "request path contains a NUL byte");
		return 1;
	}
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c == 0x7f) {
			http__reply_error(reply, 400, "invalid character in request URL");
			return 1;
		}
	}
	/* absolute-form (a proxy's "http://host/v1/..."): keep the path */
	if ((tlen > 7 && strncasecmp(t, "http://", 7) == 0) ||
	    (tlen > 8 && strncasecmp(t, "https://", 8) == 0)) {
		size_t pre = t[4] == ':' ? 7 : 8;
		const char *p = memchr(t + pre, '/', tlen - pre);
		size_t skip = p ? (size_t)(p - t) : tlen;
		t += skip;
		tlen -= skip;
	}
	q = memchr(t, '?', tlen);
	plen = q ? (size_t)(q - t) : tlen;
	if (q) {
		q++;
		qlen = tlen - plen - 1;
	}

	decoded = http__unescape(t, plen, false, &dlen);
	if (!decoded) {
		http__reply_error(reply, 400, "invalid URL escape in request path");
		return 1;
	}
	if (strlen(decoded) != dlen) {
		http__reply_error(reply, 400, "request path contains a NUL byte");
		goto out;
	}
	if (dlen < 4 || strncmp(decoded, "/v1/", 4) != 0) {
		http__reply_error(reply, 404, NULL);
		goto out;
	}
	cleaned = clean_path(decoded, dlen);
	if (!cleaned) {
		ret = oom(reply);
		goto out;
	}
	if (strcmp(cleaned, decoded) != 0) {
		/* Go's ServeMux answers 301 to the cleaned path; "secret/../sys"
		 * therefore never reaches the core. */
		char *loc = escape_path(cleaned);
		size_t n = (loc ? strlen(loc) : 0) + qlen + 2;
		reply->status = 301;
		reply->location = loc ? malloc(n) : NULL;
		if (!reply->location) {
			free(loc);
			ret = oom(reply);
			goto out;
		}
		snprintf(reply->location, n, "%s%s%.*s", loc, q ? "?" : "", (int)qlen, q ? q : "");
		free(loc);
		goto out;
	}
	if (decoded[4] == '\0') {
		http__reply_error(reply, 404, NULL);
		goto out;
	}

	/* query arguments; "help" is reserved */
	data = json_object();
	if (!data) {
		ret = oom(reply);
		goto out;
	}
	if (q && parse_query(data, q, qlen, false)) {
		http__reply_error(reply, 400, "invalid query argument");
		goto out;
	}
	{
		json_t *h = json_object_get(data, "help");
		if (h && (!json_is_string(h) || *json_string_value(h)))
			help = true;
		json_object_del(data, "help");
	}
	if (in->body_too_large) {
		http__reply_error(reply, 413, "failed to parse JSON input: http: request body too large");
		reply->close = true;
		goto out;
	}

	if (help || strcmp(m, "HELP") == 0) {
		op = LOP_HELP;
		json_object_clear(data);
	} else if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
		op = LOP_READ;
		json_t *l = json_object_get(data, "list");
		if (l && strcmp(m, "GET") == 0) {
			int b = json_is_string(l) ? parse_bool(json_string_value(l)) : -1;
			if (b < 0 && json_is_string(l) && !*json_string_value(l))
				b = 0; /* "?list=" is no list at all */
			if (b < 0) {
				http__reply_error(reply, 400, "invalid value for the list parameter: expected a boolean");
				goto out;
			}
			if (b) {
				op = LOP_LIST;
				json_object_del(data, "list");
			}
		}
	} else if (strcmp(m, "LIST") == 0) {
		op = LOP_LIST;
	} else if (strcmp(m, "DELETE") == 0) {
		op = LOP_DELETE;
	} else if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) {
		op = LOP_UPDATE;
		json_decref(data);
		data = NULL;
		/* a snapshot restore uploads a gzipped tar, not JSON; an OCSP
		 * request (RFC 6960 A.1, any path: a PKI mount's ocsp) is DER */
		if (!strcmp(decoded, "/v1/sys/storage/raft/snapshot") ||
		    !strcmp(decoded, "/v1/sys/storage/raft/snapshot-force") || is_ocsp_request(in)) {
			data = json_object();
			out->req.raw_body = (const uint8_t *)in->body;
			out->req.raw_body_len = in->body ? in->body_len : 0;
			if (in->body_is_fd) {
				out->req.raw_body_is_fd = true;
				out->req.raw_body_fd = in->body_fd;
				out->req.raw_body_len = in->body_len;
			}
		} else if (body_data(&data, reply, in))
			goto out;
	} else if (strcmp(m, "PATCH") == 0) {
		char mt[128];
		op = LOP_PATCH;
		if (media_type(header_get(in, "Content-Type"), mt, sizeof(mt))) {
			http__reply_error(reply, 400, "mime: no media type");
			goto out;
		}
		if (strcmp(mt, "application/merge-patch+json") != 0) {
			char msg[256];
			snprintf(msg, sizeof(msg),
				 "PATCH requires Content-Type of application/merge-patch+json, provided %s",
				 mt);
			http__reply_error(reply, 415, msg);
			goto out;
		}
		json_decref(data);
		data = NULL;
		if (parse_json_body(&data, reply, in))
			goto out;
	} else {
		http__reply_error(reply, 405, NULL);
		goto out;
	}
	if (!data) {
		ret = oom(reply);
		goto out;
	}
	/* X-Vault-Wrap-TTL: the core wraps the response in a single-use
	 * token (Vault's requestWrapInfo: seconds or a duration, not
	 * negative; a bad value is a 400, never an unwrapped answer). */
	{
		const char *wrap = header_get(in, "X-Vault-Wrap-TTL");
		if (wrap && *wrap) {
			struct verr werr = {0};
			char msg[VERR_MSG_MAX + 40];
			if (wrap[0] == '-') {
				http__reply_error(reply, 400, "requested wrap ttl cannot be negative");
				goto out;
			}
			if (duration_parse(&out->req.wrap_ttl, wrap, &werr)) {
				snprintf(msg, sizeof(msg), "invalid X-Vault-Wrap-TTL: %s", werr.msg);
				http__reply_error(reply, 400, msg);
				goto out;
			}
		}
	}

	/* the core's path: after "/v1/", list paths end in '/' */
	{
		const char *p = decoded + 4;
		size_t n = strlen(p);
		bool slash = op == LOP_LIST && p[n - 1] != '/';
		out->path = malloc(n + 2);
		if (!out->path) {
			ret = oom(reply);
			goto out;
		}
		memcpy(out->path, p, n);
		if (slash)
			out->path[n++] = '/';
		out->path[n] = '\0';
	}
	out->token = find_token(in);
	out->headers = vault_headers(in);
	if (!out->headers || http__uuid4(out->request_id)) {
		ret = oom(reply);
		goto out;
	}
	out->data = data;
	data = NULL;

	out->req.op = op;
	out->req.path = out->path;
	out->req.data = out->data;
	out->req.client_token = out->token;
	out->req.remote_addr = in->remote_addr;
	out->req.remote_port = in->remote_port;
	out->req.request_id = out->request_id;
	out->req.client_cert_pem = in->client_cert_pem;
	out->req.headers = out->headers;
	ret = 0;
out:
	if (ret)
		http__built_free(out);
	json_decref(data);
	free(decoded);
	free(cleaned);
	return ret;
}
