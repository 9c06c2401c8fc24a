/*
 * cidr.h - IP address / CIDR block matching for bound_cidrs-style lists
 * (token_bound_cidrs, secret_id_bound_cidrs, ...). Used by the core's request
 * pipeline (a token bound to CIDRs) and by auth methods at login.
 *
 * A block is "a.b.c.d/n", "x:y::/n" or a bare address (= /32 or /128).
 * IPv4-mapped IPv6 addresses ("::ffff:10.0.0.1") are treated as their IPv4
 * address on both sides, so a dual-stack listener still matches IPv4 blocks.
 * Pure functions over strings: thread-safe, no allocation.
 */
#ifndef COFFER_UTIL_CIDR_H
#define COFFER_UTIL_CIDR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct cidr {
	int family;        /* AF_INET or AF_INET6 (after unmapping) */
	uint8_t addr[16];  /* network bytes; 4 used for AF_INET */
	int bits;          /* prefix length */
};

/* Parse a block or bare address. 0 on success, -1 if malformed (bad address,
 * prefix out of range, trailing garbage). */
int cidr_parse(struct cidr *out, const char *text);
/* true if addr (an address, no prefix) lies inside block c. */
bool cidr_contains(const struct cidr *c, const char *addr);
/* true if block inner lies entirely inside block outer. */
bool cidr_within(const struct cidr *inner, const struct cidr *outer);
/* true if text is a well-formed block or address. */
bool cidr_valid(const char *text);
/* An empty or NULL list allows every address; otherwise addr must lie in at
 * least one well-formed block (malformed entries never match). A NULL addr
 * is refused by a non-empty list. */
bool cidr_list_allows(const json_t *cidrs, const char *addr);
/* Every block of `inner` lies within some block of `outer` (an empty outer
 * list is unrestricted: always true). */
bool cidr_list_within(const json_t *inner, const json_t *outer);

#endif
