/*
 * log.h - process-wide logger: timestamped lines on stderr, text or JSON.
 *
 * Thread-safe (one mutex around each line). Never pass secrets: messages are
 * written as given. The level can change at run time (SIGHUP reload).
 */
#ifndef COFFER_UTIL_LOG_H
#define COFFER_UTIL_LOG_H

#include <stdint.h>

enum log_level { LOG_TRACE = 0, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Parse "trace|debug|info|warn|warning|err|error"; -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_set_json(int json);
/* Also append every line to `path` (Vault's log_file; a path ending in '/'
 * or naming a directory gets "coffer.log" inside it), created 0600.
 * NULL stops writing to a file. Returns 0 or -errno; on error the previous
 * file (if any) stays in use. log_reopen() reopens the same path (SIGHUP,
 * after an external logrotate moved the file). */
int log_set_file(const char *path);
int log_reopen(void);
/*
 * Vault's log_rotate_*: before a line would take the file past `bytes`
 * (0: no limit), or once the file is `duration_s` old (0: never), the file
 * is renamed to <name>-<unix nanoseconds><.ext> beside it and a new one is
 * opened at the path. Then archives beyond `max_files` are deleted, oldest
 * first (0: keep all; -1: delete every archive). Takes effect for the
 * next line; may be called at any time (SIGHUP).
 */
void log_set_rotation(int64_t bytes, int64_t max_files, int64_t duration_s);
void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_trace(mod, ...) log_msg(LOG_TRACE, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
