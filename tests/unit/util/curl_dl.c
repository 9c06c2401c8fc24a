/*
 * Unit tests for src/util/curl_dl.c: libcurl is not mapped until the first
 * libcurl call, and the forwarders then behave as libcurl does (options of
 * each argument type, getinfo, error strings, lists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "util/curl_dl.h"

static bool libcurl_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "libcurl"))
			found = true;
	fclose(f);
	return found;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	*(size_t *)ud += size * n;
	return size * n;
}

static void test_util_curl_dl__loaded_on_first_use(void **state)
{
	(void)state;
	/* the test binary links no libcurl: nothing is mapped yet */
	assert_false(curl_dl_loaded());
	assert_false(libcurl_mapped());
	curl_global_cleanup(); /* before any use: does not load it */
	assert_false(libcurl_mapped());

	CURL *h = curl_easy_init();
	assert_non_null(h);
	assert_true(curl_dl_loaded());
	assert_true(libcurl_mapped());

	size_t got = 0;
	/* one option of each argument type: long, string, callback, off_t */
	assert_int_equal(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEDATA, &got), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L), CURLE_OK);
	/* an unknown value is refused, as by libcurl */
	assert_int_not_equal(curl_easy_setopt(h, CURLOPT_SSLVERSION, 999L), CURLE_OK);

	/* port 1 on loopback refuses: a connect error, and no HTTP status */
	CURLcode rc = curl_easy_perform(h);
	assert_int_equal(rc, CURLE_COULDNT_CONNECT);
	assert_non_null(strstr(curl_easy_strerror(rc), "connect"));
	long status = -1;
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
	assert_int_equal(status, 0);
	char *url = NULL;
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
	assert_string_equal(url, "http://127.0.0.1:1/");
	curl_easy_cleanup(h);

	struct curl_slist *l = curl_slist_append(NULL, "A: 1");
	l = curl_slist_append(l, "B: 2");
	assert_non_null(l);
	assert_string_equal(l->next->data, "B: 2");
	curl_slist_free_all(l);
	assert_true(curl_dl_load());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_curl_dl__loaded_on_first_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
