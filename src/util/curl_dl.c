/*
 * curl_dl.c - libcurl's entry points as forwarders to a libcurl loaded with
 * dlopen on first use (see curl_dl.h for why and the contract).
 *
 * Each forwarder resolves its target once (all of them in one pthread_once)
 * from the dlopen handle, so dlsym finds libcurl's definition and never one
 * of these. The two variadic calls take exactly one argument after the
 * option; its type follows from the option number, as libcurl itself
 * decodes it (CURLOPTTYPE_* ranges; every CURLINFO_* argument is a pointer).
 */
#define CURL_DISABLE_TYPECHECK 1
#include "util/curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include <curl/curl.h>

#include "util/log.h"

static struct {
	CURLcode (*global_init)(long);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} fn;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_error("curl", "cannot load libcurl (libcurl.so.4): %s", dlerror());
		return;
	}
	/* POSIX: a data pointer from dlsym converts to a function pointer */
#define SYM(field, name)                                                                  \
	do {                                                                              \
		*(void **)&fn.field = dlsym(h, name);                                     \
		if (!fn.field) {                                                          \
			log_error("curl", "libcurl.so.4 has no %s", name);                \
			return;                                                           \
		}                                                                         \
	} while (0)
	SYM(global_init, "curl_global_init");
	SYM(global_cleanup, "curl_global_cleanup");
	SYM(easy_init, "curl_easy_init");
	SYM(easy_setopt, "curl_easy_setopt");
	SYM(easy_perform, "curl_easy_perform");
	SYM(easy_getinfo, "curl_easy_getinfo");
	SYM(easy_cleanup, "curl_easy_cleanup");
	SYM(easy_reset, "curl_easy_reset");
	SYM(easy_strerror, "curl_easy_strerror");
	SYM(slist_append, "curl_slist_append");
	SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
	/* the handle stays open for the life of the process */
	loaded = true;
}

bool curl_dl_load(void)
{
	pthread_once(&load_once, load);
	return loaded;
}

bool curl_dl_loaded(void)
{
	return loaded;
}

CURLcode curl_global_init(long flags)
{
	return curl_dl_load() ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
	/* nothing to clean up if libcurl was never needed: do not load it */
	if (loaded)
		fn.global_cleanup();
}

CURL *curl_easy_init(void)
{
	return curl_dl_load() ? fn.easy_init() : NULL;
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	if (!curl_dl_load())
		return CURLE_FAILED_INIT;
	va_list ap;
	CURLcode rc;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.easy_setopt(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_OFF_T)
		/* object, string and function pointers: all pointer-sized */
		rc = fn.easy_setopt(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = fn.easy_setopt(h, opt, va_arg(ap, curl_off_t));
	else
		rc = fn.easy_setopt(h, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *h)
{
	return curl_dl_load() ? fn.easy_perform(h) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	if (!curl_dl_load())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fn.easy_getinfo(h, info, arg);
}

void curl_easy_cleanup(CURL *h)
{
	if (loaded)
		fn.easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (loaded)
		fn.easy_reset(h);
}

const char *curl_easy_strerror(CURLcode code)
{
	return curl_dl_load() ? fn.easy_strerror(code) : "libcurl is not available";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return curl_dl_load() ? fn.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (loaded)
		fn.slist_free_all(list);
}
