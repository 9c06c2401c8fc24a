/*
 * log.c - the process logger (see log.h).
 */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_json;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;      /* the log file, under g_lock */
static char *g_path;       /* its resolved path, under g_lock */

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

static char *resolve_path(const char *path)
{
	struct stat st;
	size_t n = strlen(path);
	bool dir = n && path[n - 1] == '/';
	if (!dir && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		dir = true;
	if (!dir)
		return strdup(path);
	char *out = malloc(n + sizeof("/coffer.log"));
	if (out)
		snprintf(out, n + sizeof("/coffer.log"), "%s%scoffer.log", path,
			 path[n - 1] == '/' ? "" : "/");
	return out;
}

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	return fd; /* owned by the caller (g_fd) */
}

int log_set_file(const char *path)
{
	char *rp = path ? resolve_path(path) : NULL;
	if (path && !rp)
		return -ENOMEM;
	int fd = rp ? open_log(rp) : -1;
	if (rp && fd < 0) {
		free(rp);
		return fd;
	}
	pthread_mutex_lock(&g_lock);
	int old = g_fd;
	char *oldp = g_path;
	g_fd = fd;
	g_path = rp;
	pthread_mutex_unlock(&g_lock);
	if (old >= 0)
		close(old);
	free(oldp);
	return 0;
}

int log_reopen(void)
{
	pthread_mutex_lock(&g_lock);
	int rc = 0;
	if (g_path) {
		int fd = open_log(g_path);
		if (fd < 0) {
			rc = fd;
		} else {
			if (g_fd >= 0)
				close(g_fd);
			g_fd = fd;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* One whole line to the log file; a short write is retried, a failure is
 * dropped (stderr still has the line). */
static void file_line(const char *line, size_t len)
{
	while (g_fd >= 0 && len) {
		ssize_t w = write(g_fd, line, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		line += w;
		len -= (size_t)w;
	}
}

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
		if (s) {
			fprintf(stderr, "%s\n", s);
			size_t n = strlen(s);
			char *l = realloc(s, n + 2);
			if (l) {
				s = l;
				s[n] = '\n';
				file_line(s, n + 1);
			}
		}
		free(s);
		json_decref(o);
	} else {
		char line[2200];
		int n = snprintf(line, sizeof(line), "%s [%-5s] %s: %s\n", ts, names[lvl],
				 module ? module : "core", msg);
		if (n > 0) {
			size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
			line[len - 1] = '\n'; /* a truncated line still ends */
			fputs(line, stderr);
			file_line(line, len);
		}
	}
	fflush(stderr);
	pthread_mutex_unlock(&g_lock);
}
