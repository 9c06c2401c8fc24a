/*
 * log.c - the process logger (see log.h).
 */
#include "util/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_json;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const names[] = {"trace", "debug", "info", "warn", "error", "off"};

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcasecmp(s, "trace")) return LOG_TRACE;
	if (!strcasecmp(s, "debug")) return LOG_DEBUG;
	if (!strcasecmp(s, "info")) return LOG_INFO;
	if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return LOG_WARN;
	if (!strcasecmp(s, "err") || !strcasecmp(s, "error")) return LOG_ERROR;
	if (!strcasecmp(s, "off")) return LOG_OFF;
	return -1;
}

void log_set_level(enum log_level lvl) { g_level = lvl; }
enum log_level log_get_level(void) { return (enum log_level)g_level; }
void log_set_json(int json) { g_json = json; }

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
	if ((int)lvl < g_level || lvl >= LOG_OFF)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char ts[64];
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (long)(tv.tv_usec / 1000));

	pthread_mutex_lock(&g_lock);
	if (g_json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "@timestamp", ts, "@level", names[lvl],
				      "@module", module ? module : "core", "@message", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "%s [%-5s] %s: %s\n", ts, names[lvl], module ? module : "core", msg);
	}
	fflush(stderr);
	pthread_mutex_unlock(&g_lock);
}
