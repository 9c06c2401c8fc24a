/*
 * system_view.c - the sysview_*() wrappers (system_view.h), with the
 * stand-alone defaults used when a request carries no view (engine unit
 * tests that build requests by hand).
 */
#include "logical/system_view.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "util/rand.h"

#define DEFAULT_TTL (768 * 3600)

int64_t sysview_now_ms(const struct system_view *sv)
{
	if (sv && sv->ops->now_ms)
		return sv->ops->now_ms(sv->ctx);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sysview_now(const struct system_view *sv)
{
	return sysview_now_ms(sv) / 1000;
}

int64_t sysview_default_lease_ttl(const struct system_view *sv)
{
	return sv && sv->ops->default_lease_ttl ? sv->ops->default_lease_ttl(sv->ctx) : DEFAULT_TTL;
}

int64_t sysview_max_lease_ttl(const struct system_view *sv)
{
	return sv && sv->ops->max_lease_ttl ? sv->ops->max_lease_ttl(sv->ctx) : DEFAULT_TTL;
}

bool sysview_standby(const struct system_view *sv)
{
	return sv && sv->ops->standby ? sv->ops->standby(sv->ctx) : false;
}

int sysview_random(const struct system_view *sv, uint8_t *buf, size_t n, struct verr *err)
{
	if (sv && sv->ops->random_bytes)
		return sv->ops->random_bytes(sv->ctx, buf, n, err);
	return rand_bytes(buf, n, err);
}

int sysview_password_policy(const struct system_view *sv, const char *name, char **hcl,
			    struct verr *err)
{
	*hcl = NULL;
	if (sv && sv->ops->password_policy)
		return sv->ops->password_policy(sv->ctx, name, hcl, err);
	return verr_set(err, VERR_UNSUPPORTED, "password policies are not available here");
}

void sysview_log(const struct system_view *sv, enum log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sv && sv->ops->log)
		sv->ops->log(sv->ctx, lvl, msg);
	else
		log_msg(lvl, "engine", "%s", msg);
}
