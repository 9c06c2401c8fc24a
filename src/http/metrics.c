/*
 * metrics.c - GET /v1/sys/metrics answered by this node itself, outside the
 * pipeline, in the two cases where the pipeline cannot (Vault serves the
 * same endpoint from its HTTP layer for the first):
 *
 * - the listener sets telemetry { unauthenticated_metrics_access = true }:
 *   no token, no audit, works while sealed and on a standby (as Vault);
 * - a standby with a token: Vault forwards the request to the active node,
 *   so every node reports the active's numbers. Here the standby asks the
 *   active node only whether the token may read sys/metrics (a forwarded
 *   sys/capabilities-self, audited there) and then renders its own.
 *
 * On the active node a request with a token takes the normal route (token,
 * ACL, audit: the sys.c row), answered by the same renderer.
 */
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

static const char *raw_header(const struct http_raw_request *raw, const char *name)
{
	for (size_t i = 0; i < raw->nheaders; i++)
		if (raw->headers[i].name && !strcasecmp(raw->headers[i].name, name))
			return raw->headers[i].value;
	return NULL;
}

static bool has_cap(const json_t *caps, const char *want)
{
	size_t i;
	json_t *v;
	json_array_foreach(caps, i, v) {
		const char *s = json_string_value(v);
		if (s && !strcmp(s, want))
			return true;
	}
	return false;
}

/* 1: the token may read sys/metrics; 0: denied (*rep holds the 403 or the
 * active's error); -1: the active node could not be asked. */
static int standby_authorize(struct core *core, const struct http_raw_request *raw,
			     struct http_reply *rep)
{
	struct core_forward f;
	struct verr e = {0};
	if (core_forward_target(core, &f, &e))
		return -1;
	static const char body[] = "{\"paths\":[\"sys/metrics\"]}";
	struct http_raw_request q = *raw;
	q.method = "POST";
	q.target = "/v1/sys/capabilities-self";
	q.target_len = strlen(q.target);
	q.body = body;
	q.body_len = sizeof(body) - 1;
	q.body_too_large = false;
	struct http_reply ans;
	int rc = http__forward(&q, &f, &ans, &e);
	core_forward_free(&f);
	if (rc)
		return -1;
	if (ans.status != 200) {
		*rep = ans; /* the active's 403 (bad token) or error */
		if (rep->status == 400)
			rep->status = 403;
		return 0;
	}
	json_t *j = json_loadb(ans.body ? ans.body : "", ans.body_len, 0, NULL);
	http__reply_free(&ans);
	json_t *caps = json_object_get(j, "sys/metrics");
	if (!caps)
		caps = json_object_get(j, "capabilities");
	bool ok = !has_cap(caps, "deny") && (has_cap(caps, "read") || has_cap(caps, "root"));
	json_decref(j);
	if (!ok)
		http__reply_error(rep, 403, "permission denied");
	return ok ? 1 : 0;
}

int http__metrics(struct core *core, bool unauthenticated, const struct http_built *b,
		  const struct http_raw_request *raw, struct http_reply *rep)
{
	const char *p = b->req.path;
	if (b->req.op != LOP_READ || !p || (strcmp(p, "sys/metrics") && strcmp(p, "sys/metrics/")))
		return 0;
	if (!unauthenticated) {
		/* only a standby that knows the active gets past the forward
		 * target; the active (the pipeline), a sealed node (503) and a
		 * standby without an active (307/503) carry on as usual */
		int ok = standby_authorize(core, raw, rep);
		if (ok < 0)
			return 0;
		if (ok == 0)
			return 1;
	}
	const char *format = json_string_value(json_object_get(b->req.data, "format"));
	struct verr e = {0};
	memset(rep, 0, sizeof(*rep));
	int rc = core_metrics(core, format, raw_header(raw, "Accept"), &rep->body, &rep->body_len,
			      &rep->content_type, &e);
	if (rc)
		http__reply_error(rep, http_status_for_verr(rc), e.msg);
	else
		rep->status = 200;
	return 1;
}
