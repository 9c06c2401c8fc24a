/*
 * log.c - the process logger (see log.h).
 */
#include "util/log.h"

#include <dirent.h>
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
/* rotation, under g_lock */
static int64_t g_rot_bytes, g_rot_max_files, g_rot_duration;
static int64_t g_written;  /* bytes in the current file */
static time_t g_opened;    /* when the current file was started */

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

/* What the file holds already, and its age by its change time: a restart
 * keeps counting toward the limits. Under g_lock. */
static void track_new_file(int fd)
{
	struct stat st;
	g_written = 0;
	g_opened = time(NULL);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
		g_written = st.st_size;
		if (st.st_ctime < g_opened)
			g_opened = st.st_ctime;
	}
}

/* "/d/coffer.log" -> dir "/d", stem "coffer", ext ".log" */
static void split_path(const char *path, char *dir, size_t dn, char *stem, size_t sn, char *ext,
		       size_t en)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (slash)
		snprintf(dir, dn, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
	else
		snprintf(dir, dn, ".");
	const char *dot = strrchr(base, '.');
	if (!dot || dot == base)
		dot = base + strlen(base);
	snprintf(stem, sn, "%.*s", (int)(dot - base), base);
	snprintf(ext, en, "%s", dot);
}

/* An archive of stem/ext: stem-<digits>ext */
static bool is_archive(const char *name, const char *stem, const char *ext)
{
	size_t sl = strlen(stem), el = strlen(ext), nl = strlen(name);
	if (nl < sl + 2 + el || strncmp(name, stem, sl) || name[sl] != '-' ||
	    strcmp(name + nl - el, ext))
		return false;
	for (size_t i = sl + 1; i < nl - el; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y); /* numeric order */
}

/* Delete archives beyond g_rot_max_files, oldest first. Under g_lock. */
static void prune_archives(const char *dir, const char *stem, const char *ext)
{
	if (g_rot_max_files == 0)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	char **arch = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	/* readdir_r is deprecated; this DIR is local to the call */
	// cppcheck-suppress readdirCalled
	while ((e = readdir(d))) {
		if (!is_archive(e->d_name, stem, ext))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nn = realloc(arch, nc * sizeof(*nn));
			if (!nn)
				break;
			arch = nn;
			cap = nc;
		}
		if (!(arch[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(arch, n, sizeof(*arch), cmp_str);
	size_t keep = g_rot_max_files < 0 ? 0 : (size_t)g_rot_max_files;
	for (size_t i = 0; i < n; i++) {
		if (i + keep < n) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", dir, arch[i]);
			unlink(p);
		}
		free(arch[i]);
	}
	free(arch);
}

/* Rename the current file aside and start a new one. Under g_lock. */
static void rotate(void)
{
	char dir[2048], stem[512], ext[64], archive[4096];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	split_path(g_path, dir, sizeof(dir), stem, sizeof(stem), ext, sizeof(ext));
	snprintf(archive, sizeof(archive), "%s/%s-%lld%09ld%s", dir, stem, (long long)ts.tv_sec,
		 (long)ts.tv_nsec, ext);
	if (rename(g_path, archive) != 0)
		return; /* keep writing where we are */
	int fd = open_log(g_path);
	if (fd < 0)
		return; /* the old descriptor still writes into the archive */
	close(g_fd);
	g_fd = fd;
	track_new_file(fd);
	prune_archives(dir, stem, ext);
}

void log_set_rotation(int64_t bytes, int64_t max_files, int64_t duration_s)
{
	pthread_mutex_lock(&g_lock);
	g_rot_bytes = bytes > 0 ? bytes : 0;
	g_rot_max_files = max_files;
	g_rot_duration = duration_s > 0 ? duration_s : 0;
	pthread_mutex_unlock(&g_lock);
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
	track_new_file(fd);
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
			track_new_file(fd);
		}
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* One whole line to the log file; a short write is retried, a failure is
 * dropped (stderr still has the line). */
static void file_line(const char *line, size_t len)
{
	if (g_fd >= 0 && g_path &&
	    ((g_rot_bytes && g_written && g_written + (int64_t)len > g_rot_bytes) ||
	     (g_rot_duration && time(NULL) - g_opened >= g_rot_duration)))
		rotate();
	if (g_fd >= 0)
		g_written += (int64_t)len;
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
