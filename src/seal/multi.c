/*
 * multi.c - multi-seal ("Seal HA"): up to SEAL_MULTI_MAX auto seals, each
 * wrapping its own copy of the root key, any one of which unseals.
 *
 * DESIGN
 *  - This file only holds the members (their names, priorities and health);
 *    the copies themselves are the core's business (src/core/unseal.c): one
 *    per member at SEAL_MULTI_ROOT_PREFIX<name>, outside the barrier, in the
 *    member seal's own envelope format. The composite's own wrap/unwrap
 *    refuse: the core asks each member through seal_multi_member().
 *  - Members are kept sorted by priority (1 first): the order of the tries.
 *  - Health: a member is healthy until a wrap or unwrap through it fails;
 *    unhealthy_since is the first failure of the current run of failures.
 *  - SIGHUP may change the member set (seal_multi_replace): the core wraps
 *    the root key with each added member before the swap and deletes a
 *    removed member's copy after it (src/core/unseal.c).
 * Thread-safety: the health records and the member set are guarded by a
 * mutex; the pointers seal_multi_member hands out stay valid while the
 * caller holds what serialises it with seal_multi_replace (the core's
 * unseal_lock), since a removed member is closed only after the swap.
 */
#include "seal/seal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct member {
	struct seal *s;
	char name[SEAL_MULTI_NAME_MAX + 1];
	int priority;
	bool healthy;
	time_t unhealthy_since;
	bool copy; /* a good wrapped copy is in storage */
};

struct multi {
	struct seal base;
	pthread_mutex_t mu;
	size_t n;
	struct member m[SEAL_MULTI_MAX];
};

static int multi_wrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *root,
		      size_t root_len, uint8_t **out, size_t *out_len, struct verr *err)
{
	(void)s, (void)kek, (void)kek_len, (void)root, (void)root_len, (void)out, (void)out_len;
	return verr_set(err, VERR_INTERNAL, "the multi-seal wraps through its members");
}

static int multi_unwrap(struct seal *s, const uint8_t *kek, size_t kek_len, const uint8_t *blob,
			size_t blob_len, uint8_t **root, size_t *root_len, struct verr *err)
{
	(void)s, (void)kek, (void)kek_len, (void)blob, (void)blob_len, (void)root, (void)root_len;
	return verr_set(err, VERR_INTERNAL, "the multi-seal unwraps through its members");
}

static void multi_close(struct seal *s)
{
	struct multi *m = (struct multi *)s;
	for (size_t i = 0; i < m->n; i++)
		seal_close(m->m[i].s);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static int multi_reload(struct seal *s, const json_t *conf, struct verr *err)
{
	/* conf: {"<name>": <stanza>, ...} */
	struct multi *m = (struct multi *)s;
	int rc = 0;
	for (size_t i = 0; i < m->n && !rc; i++) {
		const json_t *c = json_object_get(conf, m->m[i].name);
		if (c)
			rc = seal_reload(m->m[i].s, c, err);
	}
	return rc;
}

static const struct seal_ops multi_ops = {
	.version = SEAL_OPS_VERSION,
	.type = SEAL_MULTI_TYPE,
	.recovery_keys = true,
	.needs_kek = false,
	.root_path = SEAL_MULTI_ROOT_PREFIX,
	.wrap = multi_wrap,
	.unwrap = multi_unwrap,
	.close = multi_close,
	.reload = multi_reload,
};

static int by_priority(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	return (x->priority > y->priority) - (x->priority < y->priority);
}

/* The checks a member set passes (seal_multi_new, seal_multi_replace). */
int seal_multi_check(struct seal *const *members, const char *const *names,
		     const int *priorities, size_t n, struct verr *err)
{
	if (n < 1 || n > SEAL_MULTI_MAX)
		return verr_set(err, VERR_INVALID, "a multi-seal takes 1 to %d seals", SEAL_MULTI_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!seal_recovery_keys(members[i]))
			return verr_set(err, VERR_INVALID, "seal \"%s\": a %s seal cannot be one of several seals",
					names[i], seal_type(members[i]));
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(names[i], names[j]))
				return verr_set(err, VERR_INVALID, "two seals are named \"%s\"", names[i]);
			if (priorities[i] == priorities[j])
				return verr_set(err, VERR_INVALID, "seals \"%s\" and \"%s\" have the same priority %d",
						names[j], names[i], priorities[i]);
		}
	}
	return 0;
}

int seal_multi_new(struct seal **out, struct seal **members, const char *const *names,
		   const int *priorities, size_t n, struct verr *err)
{
	*out = NULL;
	struct multi *m = NULL;
	int rc = seal_multi_check(members, names, priorities, n, err);
	if (rc)
		goto fail;
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto fail;
	}
	m->base.ops = &multi_ops;
	pthread_mutex_init(&m->mu, NULL);
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		m->m[i].s = members[i];
		snprintf(m->m[i].name, sizeof(m->m[i].name), "%s", names[i]);
		m->m[i].priority = priorities[i];
		m->m[i].healthy = true;
	}
	qsort(m->m, n, sizeof(m->m[0]), by_priority);
	*out = &m->base;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		seal_close(members[i]);
	return rc;
}

static struct multi *as_multi(const struct seal *s)
{
	return s && s->ops == &multi_ops ? (struct multi *)s : NULL;
}

int seal_multi_replace(struct seal *s, struct seal **members, const char *const *names,
		       const int *priorities, const bool *copies, size_t n, struct seal **removed,
		       size_t *nremoved, struct verr *err)
{
	*nremoved = 0;
	struct multi *m = as_multi(s);
	if (!m)
		return verr_set(err, VERR_INTERNAL, "not a multi-seal");
	int rc = seal_multi_check(members, names, priorities, n, err);
	if (rc)
		return rc;
	struct member next[SEAL_MULTI_MAX];
	memset(next, 0, sizeof(next));
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++) {
		struct member *x = &next[i];
		x->s = members[i];
		snprintf(x->name, sizeof(x->name), "%s", names[i]);
		x->priority = priorities[i];
		x->healthy = true;
		x->copy = copies[i];
		for (size_t j = 0; j < m->n; j++)
			if (m->m[j].s == members[i]) {
				/* a kept member keeps its health record */
				x->healthy = m->m[j].healthy;
				x->unhealthy_since = m->m[j].unhealthy_since;
			}
	}
	for (size_t j = 0; j < m->n; j++) {
		bool kept = false;
		for (size_t i = 0; i < n; i++)
			kept = kept || m->m[j].s == members[i];
		if (!kept)
			removed[(*nremoved)++] = m->m[j].s;
	}
	qsort(next, n, sizeof(next[0]), by_priority);
	memcpy(m->m, next, sizeof(next));
	m->n = n;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

size_t seal_multi_count(const struct seal *s)
{
	const struct multi *m = as_multi(s);
	return m ? m->n : 0;
}

struct seal *seal_multi_member(const struct seal *s, size_t i, const char **name)
{
	struct multi *m = as_multi(s);
	if (!m || i >= m->n)
		return NULL;
	if (name)
		*name = m->m[i].name;
	return m->m[i].s;
}

void seal_multi_report(struct seal *s, size_t i, bool healthy)
{
	struct multi *m = as_multi(s);
	if (!m || i >= m->n)
		return;
	pthread_mutex_lock(&m->mu);
	if (!healthy && m->m[i].healthy)
		m->m[i].unhealthy_since = time(NULL);
	m->m[i].healthy = healthy;
	pthread_mutex_unlock(&m->mu);
}

void seal_multi_set_copy(struct seal *s, size_t i, bool copy)
{
	struct multi *m = as_multi(s);
	if (!m || i >= m->n)
		return;
	pthread_mutex_lock(&m->mu);
	m->m[i].copy = copy;
	pthread_mutex_unlock(&m->mu);
}

int seal_multi_priority(const struct seal *s, size_t i)
{
	const struct multi *m = as_multi(s);
	return m && i < m->n ? m->m[i].priority : 0;
}

bool seal_multi_healthy(struct seal *s, size_t i)
{
	struct multi *m = as_multi(s);
	if (!m || i >= m->n)
		return false;
	pthread_mutex_lock(&m->mu);
	bool h = m->m[i].healthy;
	pthread_mutex_unlock(&m->mu);
	return h;
}

bool seal_multi_has_copy(struct seal *s, size_t i)
{
	struct multi *m = as_multi(s);
	if (!m || i >= m->n)
		return false;
	pthread_mutex_lock(&m->mu);
	bool c = m->m[i].copy;
	pthread_mutex_unlock(&m->mu);
	return c;
}

static json_t *rfc3339(time_t t)
{
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *seal_multi_status(struct seal *s)
{
	json_t *backends = json_array();
	struct multi *m = as_multi(s);
	bool healthy = true, wrapped = true;
	time_t since = 0;
	if (!m) {
		/* one seal: its type is its name */
		json_array_append_new(backends, json_pack("{s:s,s:b,s:b,s:b}", "name", seal_type(s),
							  "healthy", 1, "configured", 1, "disabled", 0));
		return json_pack("{s:b,s:b,s:o}", "healthy", 1, "fully_wrapped", 1, "backends", backends);
	}
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n; i++) {
		const struct member *x = &m->m[i];
		json_t *b = json_pack("{s:s,s:s,s:i,s:b,s:b,s:b,s:b}", "name", x->name, "type",
				      seal_type(x->s), "priority", x->priority, "healthy", x->healthy,
				      "configured", 1, "disabled", 0, "wrapped", x->copy);
		char kid[512];
		seal_key_id(x->s, kid, sizeof(kid));
		if (*kid)
			json_object_set_new(b, "key_id", json_string(kid));
		if (!x->healthy) {
			json_object_set_new(b, "unhealthy_since", rfc3339(x->unhealthy_since));
			if (healthy || x->unhealthy_since < since)
				since = x->unhealthy_since;
			healthy = false;
		}
		wrapped = wrapped && x->copy;
		json_array_append_new(backends, b);
	}
	pthread_mutex_unlock(&m->mu);
	json_t *o = json_pack("{s:b,s:b,s:o}", "healthy", healthy, "fully_wrapped", wrapped,
			      "backends", backends);
	if (!healthy)
		json_object_set_new(o, "unhealthy_since", rfc3339(since));
	return o;
}
