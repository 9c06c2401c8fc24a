/*
 * http.c - the client's only way to reach a server: one libcurl request per
 * call, with Vault's headers (X-Vault-Token, X-Vault-Request: true,
 * X-Vault-Namespace), TLS settings from VAULT_CACERT & co, and errors
 * rendered like Vault's api.ResponseError. See cli.h.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

void cli_resp_free(struct cli_resp *r)
{
	if (!r)
		return;
	free(r->body);
	json_decref(r->json);
	r->body = NULL;
	r->json = NULL;
	r->len = 0;
}

struct sink_ctx {
	CURL *h;
	struct cli_resp *r;
	FILE *sink;
	int sink_ok; /* -1 unknown, 1 stream to sink, 0 buffer */
	size_t cap;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
	struct sink_ctx *s = ud;
	size_t n = sz * nm;
	if (s->sink && s->sink_ok < 0) {
		long code = 0;
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
		s->sink_ok = code >= 200 && code < 300;
	}
	if (s->sink && s->sink_ok == 1)
		return fwrite(p, 1, n, s->sink) == n ? n : 0;
	if (s->r->len + n + 1 > s->cap) {
		size_t nc = s->cap ? s->cap : 4096;
		while (nc < s->r->len + n + 1)
			nc *= 2;
		char *nb = realloc(s->r->body, nc);
		if (!nb)
			return 0;
		s->r->body = nb;
		s->cap = nc;
	}
	memcpy(s->r->body + s->r->len, p, n);
	s->r->len += n;
	s->r->body[s->r->len] = '\0';
	return n;
}

/* Go's url.Error prints the method as "Get", "Put"... */
static void go_method(char *buf, size_t cap, const char *m)
{
	size_t i = 0;
	for (; m[i] && i + 1 < cap; i++)
		buf[i] = (char)(i == 0 ? toupper((unsigned char)m[i]) : tolower((unsigned char)m[i]));
	buf[i] = '\0';
}

int cli_http(struct cli *c, const struct cli_req *rq, struct cli_resp *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	int rc = 0;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char *body = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	if (!h)
		return verr_set(err, VERR_INTERNAL, "cannot initialise libcurl");

	const char *method = rq->method;
	const char *query = rq->query;
	char qbuf[2048];
	if (strcmp(method, "LIST") == 0) {
		/* Vault's client sends LIST as GET ?list=true */
		method = "GET";
		snprintf(qbuf, sizeof(qbuf), "%.1000s%slist=true", query ? query : "",
			 query && *query ? "&" : "");
		query = qbuf;
	}
	const char *addr = c->addr;
	size_t alen = strlen(addr);
	while (alen > 0 && addr[alen - 1] == '/')
		alen--;
	const char *path = rq->path;
	while (*path == '/')
		path++;
	if (snprintf(out->url, sizeof(out->url), "%.*s/v1/%s%s%s", (int)alen, addr, path,
		 query && *query ? "?" : "", query && *query ? query : "") >= (int)sizeof(out->url)) {
		curl_easy_cleanup(h);
		return verr_set(err, VERR_INVALID, "request URL too long");
	}
	snprintf(out->method, sizeof(out->method), "%s", method);

	curl_easy_setopt(h, CURLOPT_URL, out->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s > 0 ? c->timeout_s : 60L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	if (c->ca_cert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
	if (c->ca_path)
		curl_easy_setopt(h, CURLOPT_CAPATH, c->ca_path);
	if (c->client_cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
	if (c->client_key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
	if (c->skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}

	const char *token = rq->token ? rq->token : c->token;
	char hb[8192];
	if (!rq->no_token && token && *token) {
		snprintf(hb, sizeof(hb), "X-Vault-Token: %s", token);
		hdrs = curl_slist_append(hdrs, hb);
		explicit_bzero(hb, sizeof(hb));
	}
	hdrs = curl_slist_append(hdrs, "X-Vault-Request: true");
	if (c->namespace_ && *c->namespace_) {
		snprintf(hb, sizeof(hb), "X-Vault-Namespace: %s", c->namespace_);
		hdrs = curl_slist_append(hdrs, hb);
	}
	/* Vault's DefaultWrappingLookupFunc: -wrap-ttl on every request, and
	 * 5m for sys/wrapping/wrap when none was given */
	{
		const char *wt = c->wrap_ttl && *c->wrap_ttl ? c->wrap_ttl : NULL;
		if (!wt && !strcmp(path, "sys/wrapping/wrap") &&
		    (!strcmp(method, "PUT") || !strcmp(method, "POST")))
			wt = "5m";
		if (wt && !rq->no_wrap) {
			snprintf(hb, sizeof(hb), "X-Vault-Wrap-TTL: %s", wt);
			hdrs = curl_slist_append(hdrs, hb);
		}
	}
	hdrs = curl_slist_append(hdrs, "Expect:");

	if (rq->body || rq->raw) {
		const char *ct = rq->content_type ? rq->content_type
				 : rq->raw ? "application/octet-stream" : "application/json";
		snprintf(hb, sizeof(hb), "Content-Type: %s", ct);
		hdrs = curl_slist_append(hdrs, hb);
		if (rq->body) {
			body = json_dumps(rq->body, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (!body) {
				rc = verr_set(err, VERR_INTERNAL, "cannot encode request body");
				goto out;
			}
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		} else {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->raw_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->raw);
		}
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	struct sink_ctx sc = {.h = h, .r = out, .sink = rq->sink, .sink_ok = -1};
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sc);

	CURLcode cr = curl_easy_perform(h);
	if (cr != CURLE_OK) {
		char gm[16];
		go_method(gm, sizeof(gm), method);
		rc = verr_set(err, VERR_UNAVAILABLE, "%s \"%s\": %s", gm, out->url,
			      errbuf[0] ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if (out->body && out->len > 0)
		out->json = json_loadb(out->body, out->len, 0, NULL);
out:
	cli_free_secret(body);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (rc)
		cli_resp_free(out);
	return rc;
}

void cli_api_error_text(char *buf, size_t cap, const struct cli_resp *r)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, cap - n, "Error making API request.\n\nURL: %s %s\nCode: %ld.",
			      r->method, r->url, r->status);
	if (n >= cap)
		return;
	json_t *errs = r->json ? json_object_get(r->json, "errors") : NULL;
	if (json_is_array(errs) && json_array_size(errs) > 0) {
		n += (size_t)snprintf(buf + n, cap - n, " Errors:\n\n");
		size_t i;
		json_t *e;
		json_array_foreach(errs, i, e)
		{
			if (n >= cap)
				return;
			char *s = cli_fmt_value(e);
			n += (size_t)snprintf(buf + n, cap - n, "%s* %s", i ? "\n" : "", s);
			free(s);
		}
	} else if (r->body && r->len > 0) {
		n += (size_t)snprintf(buf + n, cap - n, " Raw Message:\n\n%.*s", (int)r->len, r->body);
	}
	(void)n;
}

int cli_call(struct cli *c, const struct cli_req *rq, struct cli_resp *out, const char *what,
	     int allow_404)
{
	struct verr e = {0};
	if (cli_http(c, rq, out, &e) != 0)
		return cli_fail(c, CLI_EREMOTE, "%s: %s", what, e.msg);
	if (out->status >= 200 && out->status < 300)
		return 0;
	if (allow_404 && out->status == 404) {
		/* Vault's client turns a 404 without data into "no secret". */
		json_t *d = out->json ? json_object_get(out->json, "data") : NULL;
		json_t *w = out->json ? json_object_get(out->json, "warnings") : NULL;
		if (json_is_object(d) || (json_is_array(w) && json_array_size(w) > 0))
			return 0;
		json_decref(out->json);
		out->json = NULL;
		return 0;
	}
	char buf[8192];
	cli_api_error_text(buf, sizeof(buf), out);
	cli_resp_free(out);
	return cli_fail(c, CLI_EREMOTE, "%s: %s", what, buf);
}

int cli_call_noargs(struct cli *c, int argc, char **argv, const char *method, const char *path,
		    const char *what, struct cli_resp *out, int *rc)
{
	struct cli_flag fl[] = {{0}};
	if (cli_parse_args(c, fl, &argc, &argv, 0, 0, rc))
		return 1;
	struct cli_req rq = {.method = method, .path = path};
	*rc = cli_call(c, &rq, out, what, 0);
	return *rc != 0;
}
