/*
 * tests/fuzz/fuzz_path.c - libFuzzer target for the core's path checks
 * (src/core/core.c): core__valid_path, which every request path and mount
 * path goes through before routing, and the CIDR lists that bind tokens and
 * secret IDs to client addresses (util/cidr.c).
 *
 * Input byte 0 picks the mode:
 *   even: the rest (up to the first NUL, as the HTTP layer would hand it on)
 *         is a path. The verdict must agree with an independent reference
 *         written here from the documented rules: 1..4096 bytes, strict
 *         UTF-8 (no overlong forms, no surrogates, <= U+10FFFF), no control
 *         characters, no empty segment except one trailing slash, no "." or
 *         ".." segment. Errors are one line; only the empty path is
 *         NOT_FOUND.
 *   odd:  the rest is "cidr\nADDR" (src/util/cidr.c): the list [cidr] is
 *         checked against ADDR. Must not crash; a CIDR that does not parse
 *         matches nothing; an address always matches a list holding exactly
 *         itself (when it parses as an IP address).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/router.h"
#include "util/cidr.h"

/* decode one UTF-8 sequence strictly; returns its length or 0 */
static size_t ref_utf8(const unsigned char *s, size_t n)
{
	unsigned int cp;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static int ref_valid(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 4096)
		return 0;
	for (size_t i = 0; i < n;) {
		size_t l = ref_utf8((const unsigned char *)p + i, n - i);
		if (!l)
			return 0;
		if (l == 1 && ((unsigned char)p[i] < 0x20 || p[i] == 0x7f))
			return 0;
		i += l;
	}
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		size_t seg = i - start;
		if (seg == 0 && !(i == n && n > 0 && p[n - 1] == '/'))
			return 0;
		if ((seg == 1 && p[start] == '.') || (seg == 2 && p[start] == '.' && p[start + 1] == '.'))
			return 0;
		start = i + 1;
	}
	return 1;
}

static void fuzz_valid_path(const char *p)
{
	struct verr err = {0};
	int rc = router_valid_path(p, &err);
	if ((rc == 0) != ref_valid(p))
		abort();
	if (rc) {
		if (rc != (*p ? VERR_INVALID : VERR_NOT_FOUND))
			abort();
		if (strchr(err.msg, '\n'))
			abort();
	}
}

static void fuzz_cidr(const char *s)
{
	const char *nl = strchr(s, '\n');
	char *cidr = nl ? strndup(s, (size_t)(nl - s)) : strdup(s);
	const char *addr = nl ? nl + 1 : "127.0.0.1";
	json_t *list = json_array();
	if (!cidr || !list)
		abort();
	json_t *entry = json_string(cidr);
	if (!entry) {
		/* not UTF-8: JSON cannot carry it, so no request can either (an
		 * empty list would allow everything: that is the documented
		 * meaning of "no binding", not a bypass) */
		json_decref(list);
		free(cidr);
		return;
	}
	json_array_append_new(list, entry);
	bool allowed = cidr_list_allows(list, addr);
	if (allowed && !cidr_valid(cidr))
		abort(); /* fail closed */
	(void)cidr_list_allows(list, NULL);
	struct cidr c;
	if (cidr_parse(&c, cidr) == 0)
		(void)cidr_contains(&c, addr);

	/* an address always falls inside the list [itself] */
	unsigned char buf[16];
	if (inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1) {
		json_t *self = json_pack("[s]", addr);
		if (!self || !cidr_list_allows(self, addr))
			abort();
		json_decref(self);
	}
	json_decref(list);
	free(cidr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	char *s = malloc(size);
	if (!s)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_cidr(s);
	else
		fuzz_valid_path(s);
	free(s);
	return 0;
}
