/*
 * cidr.c - IP/CIDR matching (cidr.h). Formerly a private helper of the core's
 * pipeline; shared so auth methods check client addresses the same way.
 */
#include "util/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parse a bare address into (family, bytes), unmapping ::ffff:a.b.c.d. */
static int parse_addr(const char *s, int *family, uint8_t out[16])
{
	memset(out, 0, 16);
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, out) != 1)
			return -1;
		if (!memcmp(out, v4mapped, sizeof(v4mapped))) {
			memmove(out, out + 12, 4);
			memset(out + 4, 0, 12);
			*family = AF_INET;
			return 1; /* mapped */
		}
		*family = AF_INET6;
		return 0;
	}
	if (inet_pton(AF_INET, s, out) != 1)
		return -1;
	*family = AF_INET;
	return 0;
}

int cidr_parse(struct cidr *out, const char *text)
{
	char buf[INET6_ADDRSTRLEN + 8];
	if (!text || strlen(text) >= sizeof(buf))
		return -1;
	memcpy(buf, text, strlen(text) + 1);
	int bits = -1;
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		const char *p = slash + 1;
		if (!*p || strlen(p) > 3)
			return -1;
		bits = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			bits = bits * 10 + (*p - '0');
		}
	}
	int mapped = parse_addr(buf, &out->family, out->addr);
	if (mapped < 0)
		return -1;
	int maxbits = out->family == AF_INET ? 32 : 128;
	if (mapped && bits >= 0) {
		/* ::ffff:a.b.c.d/n: n counts the 96-bit mapping prefix */
		if (bits < 96)
			return -1;
		bits -= 96;
	}
	if (bits < 0)
		bits = maxbits;
	if (bits > maxbits)
		return -1;
	out->bits = bits;
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)full))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool cidr_contains(const struct cidr *c, const char *addr)
{
	int fam;
	uint8_t a[16];
	if (!addr || parse_addr(addr, &fam, a) < 0 || fam != c->family)
		return false;
	return prefix_equal(c->addr, a, c->bits);
}

bool cidr_within(const struct cidr *inner, const struct cidr *outer)
{
	return inner->family == outer->family && inner->bits >= outer->bits &&
	       prefix_equal(inner->addr, outer->addr, outer->bits);
}

bool cidr_valid(const char *text)
{
	struct cidr c;
	return cidr_parse(&c, text) == 0;
}

bool cidr_list_allows(const json_t *cidrs, const char *addr)
{
	if (!json_is_array(cidrs) || json_array_size(cidrs) == 0)
		return true;
	if (!addr)
		return false;
	size_t i;
	const json_t *e;
	json_array_foreach(cidrs, i, e) {
		struct cidr c;
		if (json_is_string(e) && cidr_parse(&c, json_string_value(e)) == 0 &&
		    cidr_contains(&c, addr))
			return true;
	}
	return false;
}

bool cidr_list_within(const json_t *inner, const json_t *outer)
{
	if (!json_is_array(outer) || json_array_size(outer) == 0)
		return true;
	size_t i, j;
	const json_t *e, *f;
	json_array_foreach(inner, i, e) {
		struct cidr ci;
		if (!json_is_string(e) || cidr_parse(&ci, json_string_value(e)))
			return false;
		bool ok = false;
		json_array_foreach(outer, j, f) {
			struct cidr co;
			if (json_is_string(f) && cidr_parse(&co, json_string_value(f)) == 0 &&
			    cidr_within(&ci, &co)) {
				ok = true;
				break;
			}
		}
		if (!ok)
			return false;
	}
	return true;
}
