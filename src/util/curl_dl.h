/*
 * curl_dl.h - libcurl, loaded on first use.
 *
 * The server calls libcurl only for outbound requests that are configured
 * later (a kubernetes login's TokenReview) and the CLI for every command,
 * yet linking it maps its whole dependency tree (krb5, ldap, sasl, ssh2,
 * nghttp2, brotli, ...: about 1.7 MiB of RSS) and resolves its relocations
 * at every start. So Coffer does not link libcurl: util/curl_dl.c defines
 * the libcurl entry points Coffer uses (curl_global_init/cleanup,
 * curl_easy_init/setopt/perform/getinfo/cleanup/reset/strerror,
 * curl_slist_append/free_all) with libcurl's own signatures, as forwarders
 * to libcurl.so.4 opened with dlopen on the first call. Callers include
 * <curl/curl.h> and call libcurl as usual; nothing else changes.
 *
 * If libcurl cannot be loaded the forwarders fail the way libcurl reports a
 * failure (CURLE_FAILED_INIT, a NULL handle or list) and log one error.
 * Thread-safe (the load runs once, under pthread_once).
 */
#ifndef COFFER_UTIL_CURL_DL_H
#define COFFER_UTIL_CURL_DL_H

#include <stdbool.h>

/* Load libcurl now if it is not loaded; true if it is available. */
bool curl_dl_load(void);
/* true once libcurl has been loaded (for tests and diagnostics). */
bool curl_dl_loaded(void);

#endif
