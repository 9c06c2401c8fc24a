/*
 * core.c - the core object and the request pipeline.
 *
 * core_handle_request runs, for every API request, on an HTTP worker thread:
 *   1 validate the path            5 route by longest mount prefix, match the
 *   2 sealed? -> 503 (except the      backend's path table, resolve create vs
 *     sys paths that work sealed)     update with the existence check
 *   3 token -> entry (403)         6 ACL check (403), sudo paths
 *   4 policies -> ACL              7 call the handler; issue tokens for logins,
 *                                    register leases for secrets
 * See core_int.h for the locking design.
 */
#include "core/core_int.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acl_glue.h"
#include "core/barrier.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/secmem.h"

int64_t core__now(void)
{
	return (int64_t)time(NULL);
}

void core__uuid(char out[37])
{
	uint8_t b[16];
	RAND_bytes(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

void core__rand_base62(char *out, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i = 0;
	while (i < n) {
		uint8_t buf[64];
		RAND_bytes(buf, sizeof(buf));
		for (size_t j = 0; j < sizeof(buf) && i < n; j++)
			if (buf[j] < 248) /* 248 = 4*62: no modulo bias */
				out[i++] = al[buf[j] % 62];
	}
	out[n] = '\0';
}

char *core__rfc3339(int64_t unix_secs, long nanos)
{
	time_t t = (time_t)unix_secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[64];
	if (nanos > 0)
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
	else
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return strdup(buf);
}

int core_new(struct core **out, const struct core_opts *o, struct verr *err)
{
	struct core *c = calloc(1, sizeof(*c));
	if (!c)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	c->o = *o;
	c->phys = o->phys;
	pthread_rwlock_init(&c->state_lock, NULL);
	pthread_rwlock_init(&c->mounts_lock, NULL);
	pthread_mutex_init(&c->unseal_lock, NULL);
	c->sealed = true;
	snprintf(c->cluster_name, sizeof(c->cluster_name), "%s",
		 o->cluster_name && *o->cluster_name ? o->cluster_name : "coffer-cluster");
	int rc = barrier_new(&c->barrier, c->phys, err);
	if (rc) {
		free(c);
		return rc;
	}
	c->bphys = barrier_physical(c->barrier);
	*out = c;
	return 0;
}

void core_free(struct core *c)
{
	if (!c)
		return;
	pthread_rwlock_wrlock(&c->state_lock);
	if (!c->sealed) {
		core__pre_seal(c);
		barrier_seal(c->barrier);
		c->sealed = true;
	}
	pthread_rwlock_unlock(&c->state_lock);
	barrier_free(c->barrier);
	physical_close(c->phys);
	pthread_mutex_lock(&c->unseal_lock);
	/* key shares still held by an unfinished unseal, rekey or generate-root */
	struct unseal_progress *progs[] = {&c->unseal, &c->rekey.prog, &c->genroot.prog};
	for (size_t p = 0; p < sizeof(progs) / sizeof(progs[0]); p++)
		for (int i = 0; i < progs[p]->n; i++)
			secmem_free(progs[p]->parts[i], progs[p]->lens[i]); /* wipes */
	pthread_mutex_unlock(&c->unseal_lock);
	pthread_rwlock_destroy(&c->state_lock);
	pthread_rwlock_destroy(&c->mounts_lock);
	pthread_mutex_destroy(&c->unseal_lock);
	free(c);
}

bool core_sealed(struct core *c)
{
	return c->sealed;
}

/* Seal if a request asked for it (called without the state lock held). */
static void core_apply_seal_request(struct core *c)
{
	bool expect = true;
	if (!atomic_compare_exchange_strong(&c->seal_requested, &expect, false))
		return;
	struct verr e = {0};
	pthread_rwlock_wrlock(&c->state_lock);
	core__seal_now(c, &e);
	pthread_rwlock_unlock(&c->state_lock);
}

void core_shutdown_seal(struct core *c)
{
	struct verr e = {0};
	pthread_rwlock_wrlock(&c->state_lock);
	core__seal_now(c, &e);
	pthread_rwlock_unlock(&c->state_lock);
}

/* ---- path validation ---- */

static int utf8_valid(const unsigned char *s)
{
	while (*s) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		int n;
		unsigned int cp;
		if ((*s & 0xe0) == 0xc0) { n = 1; cp = *s & 0x1f; }
		else if ((*s & 0xf0) == 0xe0) { n = 2; cp = *s & 0x0f; }
		else if ((*s & 0xf8) == 0xf0) { n = 3; cp = *s & 0x07; }
		else return 0;
		s++;
		for (int i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*s & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

int core__valid_path(const char *path, struct verr *err)
{
	size_t len = strlen(path);
	if (len == 0)
		return verr_set(err, VERR_NOT_FOUND, "%s", "");
	if (len > 4096)
		return verr_set(err, VERR_INVALID, "path is too long");
	if (!utf8_valid((const unsigned char *)path))
		return verr_set(err, VERR_INVALID, "path is not valid UTF-8");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return verr_set(err, VERR_INVALID, "path contains a control character");
	/* segments: no empty (except a trailing slash), no "." or ".." */
	const char *s = path;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 0)
			return verr_set(err, VERR_INVALID, "invalid path: empty path segment");
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return verr_set(err, VERR_INVALID, "invalid path: \".\" and \"..\" segments are not allowed");
		if (!e)
			break;
		s = e + 1;
	}
	return 0;
}

static int strip_slash_eq(const char *path, const char *what)
{
	size_t l = strlen(what);
	return !strncmp(path, what, l) && (path[l] == '\0' || (path[l] == '/' && path[l + 1] == '\0'));
}

int core__health(struct core *c, const json_t *q, struct logical_response *resp);

/* Vault answers the seal endpoints with a bare JSON object, no envelope. */
void core__raw_json(struct logical_response *resp, json_t *obj)
{
	resp->raw_body = json_dumps(obj, JSON_COMPACT);
	resp->raw_len = resp->raw_body ? strlen(resp->raw_body) : 0;
	resp->raw_content_type = strdup("application/json");
	resp->raw = true;
	json_decref(obj);
}

/* The seal-independent sys endpoints. Returns 1 if handled. */
static int handle_sealed_paths(struct core *c, struct logical_request *req,
			       struct logical_response *resp, int *rc, struct verr *err)
{
	const char *p = req->path;
	json_t *out = NULL;
	if (strip_slash_eq(p, "sys/seal-status")) {
		if (req->op != LOP_READ)
			goto unsupported;
		*rc = core__seal_status(c, &out);
	} else if (strip_slash_eq(p, "sys/health")) {
		if (req->op != LOP_READ)
			goto unsupported;
		*rc = core__health(c, req->data, resp);
		return 1;
	} else if (strip_slash_eq(p, "sys/init")) {
		if (req->op == LOP_READ) {
			bool inited = false;
			*rc = barrier_initialized(c->barrier, &inited, err);
			out = json_pack("{s:b}", "initialized", inited);
		} else if (req->op == LOP_UPDATE || req->op == LOP_CREATE) {
			*rc = core__init(c, req->data, &out, err);
		} else
			goto unsupported;
	} else if (strip_slash_eq(p, "sys/unseal")) {
		if (req->op != LOP_UPDATE && req->op != LOP_CREATE)
			goto unsupported;
		*rc = core__unseal_key(c, req->data, &out, err);
	} else {
		return 0;
	}
	if (out)
		core__raw_json(resp, out);
	return 1;
unsupported:
	*rc = verr_set(err, VERR_UNSUPPORTED, "unsupported operation");
	return 1;
}

static bool cidr_allows(const json_t *cidrs, const char *addr);

static int pipeline(struct core *c, struct logical_request *req, struct logical_response *resp,
		    struct verr *err)
{
	int rc = core__valid_path(req->path, err);
	if (rc)
		return rc;
	if (!req->data)
		return verr_set(err, VERR_INTERNAL, "request without data");

	if (handle_sealed_paths(c, req, resp, &rc, err))
		return rc;
	if (c->sealed)
		return verr_set(err, VERR_SEALED, "Vault is sealed");

	/* route */
	struct mount_entry *m = core__route(c, req->path);
	bool audited = false, audit_failed = false;
	const char *rel = m ? req->path + strlen(m->path) : req->path;
	if (m && strlen(req->path) + 1 == strlen(m->path)) /* "secret" for mount "secret/" */
		rel = "";
	req->mount_path = m ? m->path : "";
	req->rel_path = rel;
	req->mount_type = m ? m->type : "";
	req->mount_accessor = m ? m->accessor : "";
	req->mount_uuid = m ? m->uuid : "";
	req->mount_options = m ? m->options : NULL;
	req->storage = m ? &m->view : NULL;
	req->backend = m ? m->inst : NULL;
	req->core = c;
	if (m)
		resp->mount_type_out = strdup(m->type);

	const struct path_def *table = m && m->ops->paths ? m->ops->paths(m->inst) : NULL;
	json_t *caps = NULL;
	const struct path_def *def = table ? framework_match(table, rel, &caps) : NULL;

	/* field conversion errors are reported after the ACL check */
	json_t *fields = NULL;
	struct verr field_err = {0};
	int field_rc = 0;
	if (def)
		field_rc = framework_fields(def, req->data, caps, &fields, resp, &field_err);
	json_decref(caps);
	req->fields = fields;

	/* authenticate */
	struct token_entry *te = NULL;
	bool unauth = def && def->unauthenticated;
	if (!unauth) {
		if (!req->client_token || !*req->client_token) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		rc = coreglue_token_lookup(c, req->client_token, &te, err);
		if (rc)
			goto out;
		if (!cidr_allows(coreglue_token_cidrs(te), req->remote_addr)) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		req->token = te;
		req->client_token_hash = coreglue_token_hash(te);
		req->client_token_accessor = coreglue_token_accessor(te);
	} else if (req->client_token && *req->client_token) {
		/* optional token on unauthenticated paths (e.g. login with a
		 * token present): resolve it if valid, ignore otherwise */
		if (coreglue_token_lookup(c, req->client_token, &te, NULL) == 0) {
			req->token = te;
			req->client_token_hash = coreglue_token_hash(te);
			req->client_token_accessor = coreglue_token_accessor(te);
		}
	}

	/* resolve create vs update (Vault runs the existence check before ACL) */
	if (def && field_rc == 0 && (req->op == LOP_UPDATE || req->op == LOP_CREATE)) {
		int has_create = 0, has_update = 0;
		for (const struct path_op *o = def->ops; o->op; o++) {
			has_create |= o->op == LOP_CREATE;
			has_update |= o->op == LOP_UPDATE;
		}
		enum logical_op op = LOP_UPDATE;
		if (def->exists && has_create) {
			int ex = def->exists(req, err);
			if (ex < 0) {
				rc = ex;
				goto out;
			}
			op = ex ? LOP_UPDATE : LOP_CREATE;
		}
		if (op == LOP_CREATE && !has_create)
			op = LOP_UPDATE;
		if (op == LOP_UPDATE && !has_update && has_create)
			op = LOP_CREATE;
		req->op = op;
	}

	/* authorise */
	if (!unauth) {
		struct coreglue_acl_result ar = {0};
		rc = coreglue_acl_check(c, te, req->op, req->path, req->data, &ar, err);
		if (rc)
			goto out;
		if (!ar.allowed || (def && def->sudo && !ar.sudo && !ar.is_root)) {
			rc = verr_set(err, VERR_DENIED, "permission denied");
			goto out;
		}
		req->token_is_root = ar.is_root;
		req->sudo = ar.sudo || ar.is_root;
	}

	if (!unauth && !te) {
		rc = verr_set(err, VERR_DENIED, "permission denied");
		goto out;
	}
	if (!m) {
		rc = verr_set(err, VERR_NOT_FOUND, "no handler for route \"%s\". route entry not found.",
			      req->path);
		goto out;
	}
	if (!def) {
		/* Vault: ErrUnsupportedPath is a 404 (405 is for a known path
		 * without the operation); reads and lists say nothing */
		if (req->op == LOP_LIST || req->op == LOP_READ)
			rc = verr_set(err, VERR_NOT_FOUND, "%s", "");
		else
			rc = verr_set(err, VERR_NOT_FOUND, "unsupported path");
		goto out;
	}
	if (field_rc) {
		*err = field_err;
		rc = field_rc;
		goto out;
	}

	/* audit the request before it runs: no device can record it -> no run */
	rc = coreglue_audit_request(c, req, te, 0, NULL, err);
	if (rc) {
		audit_failed = true;
		goto out;
	}
	audited = true;

	/* token use count */
	bool revoke_after = false;
	if (te) {
		rc = coreglue_token_use(c, te, &revoke_after, err);
		if (rc)
			goto out;
	}

	path_handler_fn fn = NULL;
	for (const struct path_op *o = def->ops; o->op; o++)
		if (o->op == req->op)
			fn = o->fn;
	if (!fn) {
		if (req->op == LOP_HELP) {
			resp->data = json_pack("{s:s}", "help", def->help ? def->help : "");
			rc = 0;
		} else {
			rc = verr_set(err, VERR_UNSUPPORTED, "unsupported operation");
		}
	} else {
		bool missing = false;
		for (const struct field_def *f = def->fields; f && f->name; f++)
			if (f->required && !request_has(req, f->name) &&
			    (req->op == LOP_CREATE || req->op == LOP_UPDATE)) {
				rc = verr_set(err, VERR_INVALID, "missing required field \"%s\"", f->name);
				missing = true;
				break;
			}
		if (!missing)
			rc = fn(req, resp, err);
	}

	if (rc == 0 && resp->auth)
		rc = coreglue_issue_login_token(c, m, req, resp, err);
	if (rc == 0 && resp->secret)
		rc = coreglue_register_lease(c, m, req, resp, err);

	if (revoke_after)
		coreglue_token_revoke(c, te);
out:
	if (!audit_failed && m) {
		struct verr aerr = {0};
		if (!audited)
			coreglue_audit_request(c, req, te, rc, err, &aerr);
		int arc = coreglue_audit_response(c, req, te, resp, rc, err, &aerr);
		if (arc && rc == 0) {
			rc = arc;
			if (err)
				*err = aerr;
		}
	}
	req->fields = NULL;
	json_decref(fields);
	if (te)
		coreglue_token_free(te);
	req->token = NULL;
	if (m)
		core__mount_release(m);
	return rc;
}

int core_handle_request(struct core *c, struct logical_request *req,
			struct logical_response *resp, struct verr *err)
{
	pthread_rwlock_rdlock(&c->state_lock);
	int rc = pipeline(c, req, resp, err);
	pthread_rwlock_unlock(&c->state_lock);
	core_apply_seal_request(c);
	if (rc)
		log_debug("core", "request %s %s failed: %s", logical_op_name(req->op), req->path,
			  verr_name(rc));
	return rc;
}

/* ---- CIDR binding (util/cidr.c) ---- */

static bool cidr_allows(const json_t *cidrs, const char *addr)
{
	return cidr_list_allows(cidrs, addr);
}

bool core__cidr_list_allows(const json_t *cidrs, const char *addr)
{
	return cidr_list_allows(cidrs, addr);
}
