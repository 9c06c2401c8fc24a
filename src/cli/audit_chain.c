/*
 * audit_chain.c - offline verifier for Coffer's tamper-evident audit logs
 * (`coffer audit verify`). The format is specified in docs/cli.md:
 *
 *   Each line is the entry's JSON object with `,"chain":"<hex>"` appended as
 *   its last member (just before the final `}`). <hex> is 64 lowercase hex
 *   digits of HMAC-SHA256(key, P || S), where P is the previous line's chain
 *   hex string (empty for the first line of the log) and S is the line's
 *   bytes with the `,"chain":"<hex>"` member removed.
 *
 * Verdicts, for the first line whose MAC does not match:
 *   reordered  its MAC matches another line of the file as predecessor,
 *              one that comes later (lines swapped or moved);
 *   inserted   the chain continues over it (the next line verifies against
 *              the previous one), or it is a copy of an earlier line;
 *   removed    its "seq" member (Coffer's devices number entries) jumps
 *              past the last verified line's and the chain goes on intact
 *              after it: the lines in between were deleted;
 *   altered    neither: its bytes changed, or (for logs without "seq") the
 *              line(s) just before it were removed (the two cannot be told
 *              apart without the lost line; the message says so).
 *
 * Not tampering: lines torn by a failed write (disk full mid-line) that the
 * server could not take back. The server terminates them and chains an
 * "audit_write_failed" entry right after them whose torn{lines, bytes,
 * sha256} describe exactly those bytes (docs/audit.md, "Failed writes"):
 * when the entry verifies and the torn bytes match, the lines are counted
 * as torn and the chain goes on from the entry. Failure entries for writes
 * that were rolled back are ordinary chained lines; both are counted and
 * named in the verdict.
 */
#include "cli/cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include <jansson.h>

static const char CHAIN_TAG[] = ",\"chain\":\"";
/* the server's AUDIT_FAILURE_TYPE (src/audit/audit.h) */
static const char FAILURE_TAG[] = "\"type\":\"audit_write_failed\"";

void cli_chain_mac(char hex[65], const unsigned char *key, size_t keylen, const char *prev_hex,
		   const char *stripped, size_t stripped_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t outl = 0;
	if (ctx && EVP_MAC_init(ctx, key, keylen, params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)prev_hex, strlen(prev_hex)) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)stripped, stripped_len) == 1 &&
	    EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) == 1)
		maclen = (unsigned int)outl;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	static const char digits[] = "0123456789abcdef";
	for (unsigned int i = 0; i < 32; i++) {
		unsigned char b = i < maclen ? mac[i] : 0;
		hex[2 * i] = digits[b >> 4];
		hex[2 * i + 1] = digits[b & 15];
	}
	hex[64] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
}

struct line {
	const char *p;
	size_t len;
	int ok;         /* chain member found */
	long long seq;  /* the "seq" member just before the chain, or -1 */
	char chain[65];
	char *stripped; /* malloc'd */
	size_t slen;
};

static int is_hex64(const char *p)
{
	for (int i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

static void parse_line(struct line *l)
{
	const size_t tag = sizeof(CHAIN_TAG) - 1;
	/* must end with ,"chain":"<64 hex>"} */
	if (l->len < tag + 64 + 2 + 1)
		return;
	const char *end = l->p + l->len;
	const char *t = end - 2 - 64 - tag;
	if (memcmp(t, CHAIN_TAG, tag) != 0 || !is_hex64(t + tag) || end[-2] != '"' ||
	    end[-1] != '}')
		return;
	memcpy(l->chain, t + tag, 64);
	l->chain[64] = '\0';
	size_t head = (size_t)(t - l->p);
	l->stripped = malloc(head + 2);
	if (!l->stripped)
		abort();
	memcpy(l->stripped, l->p, head);
	l->stripped[head] = '}';
	l->stripped[head + 1] = '\0';
	l->slen = head + 1;
	l->ok = 1;
	/* Coffer's devices put ,"seq":N (1, 2, 3... per device) just before
	 * the chain member: it tells a removal from an alteration */
	static const char stag[] = ",\"seq\":";
	const size_t sl = sizeof(stag) - 1;
	const char *d = t;
	while (d > l->p && d[-1] >= '0' && d[-1] <= '9' && t - d < 19)
		d--;
	if (d < t && (size_t)(d - l->p) >= sl && memcmp(d - sl, stag, sl) == 0) {
		long long v = 0;
		for (const char *q = d; q < t; q++)
			v = v * 10 + (*q - '0');
		l->seq = v;
	}
}

static int verifies(const unsigned char *key, size_t keylen, const char *prev, const struct line *l)
{
	char hex[65];
	if (!l->ok)
		return 0;
	cli_chain_mac(hex, key, keylen, prev, l->stripped, l->slen);
	return CRYPTO_memcmp(hex, l->chain, 64) == 0;
}

/* The failure entry's JSON (after any prefix), or NULL if l is none. */
static json_t *failure_entry(const struct line *l)
{
	if (!l->ok || !memmem(l->stripped, l->slen, FAILURE_TAG, sizeof(FAILURE_TAG) - 1))
		return NULL;
	const char *o = memchr(l->stripped, '{', l->slen);
	json_t *e = o ? json_loadb(o, l->slen - (size_t)(o - l->stripped), 0, NULL) : NULL;
	const char *type = json_string_value(json_object_get(e, "type"));
	if (e && (!type || strcmp(type, "audit_write_failed") != 0)) {
		json_decref(e);
		e = NULL;
	}
	return e;
}

/* Lines i..j-1 are exactly the torn bytes failure entry j describes. */
static bool torn_matches(const struct line *ls, size_t i, size_t j, const json_t *fe)
{
	const json_t *t = json_object_get(fe, "torn");
	const char *want = json_string_value(json_object_get(t, "sha256"));
	json_int_t lines = json_integer_value(json_object_get(t, "lines"));
	json_int_t bytes = json_integer_value(json_object_get(t, "bytes"));
	const char *from = ls[i].p, *to = ls[j].p - 1; /* up to the '\n' before j */
	if (!want || strlen(want) != 64 || lines != (json_int_t)(j - i) || to < from ||
	    bytes != (json_int_t)(to - from))
		return false;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdl = 0;
	if (EVP_Digest(from, (size_t)(to - from), md, &mdl, EVP_sha256(), NULL) != 1 || mdl != 32)
		return false;
	char hex[65];
	for (int k = 0; k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", md[k]);
	return CRYPTO_memcmp(hex, want, 64) == 0;
}

/* Lines the server tore and recorded may stand between two chained lines;
 * longer runs are not looked for. */
#define TORN_MAX_LINES 64

void cli_chain_verify(struct cli_chain_result *out, const unsigned char *key, size_t keylen,
		      const char *buf, size_t len)
{
	memset(out, 0, sizeof(*out));
	size_t n = 0, cap = 0;
	struct line *ls = NULL;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - buf) : len;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			ls = realloc(ls, cap * sizeof(*ls));
			if (!ls)
				abort();
		}
		memset(&ls[n], 0, sizeof(ls[n]));
		ls[n].seq = -1;
		ls[n].p = buf + i;
		ls[n].len = e - i;
		if (ls[n].len > 0 && ls[n].p[ls[n].len - 1] == '\r')
			ls[n].len--;
		parse_line(&ls[n]);
		n++;
		i = e + 1;
	}
	const char *prev = "";
	long long prev_seq = -1; /* seq of the last verified line */
	size_t first_failure = 0, first_torn = 0;
	for (size_t i = 0; i < n; i++) {
		struct line *l = &ls[i];
		if (verifies(key, keylen, prev, l)) {
			json_t *fe = failure_entry(l);
			if (fe && !first_failure)
				first_failure = i + 1;
			out->failures += fe != NULL;
			json_decref(fe);
			prev = l->chain;
			prev_seq = l->seq;
			continue;
		}
		/* torn by a failed write, and recorded as such right after? */
		size_t te = i + 1;
		while (te < n && te - i <= TORN_MAX_LINES && !verifies(key, keylen, prev, &ls[te]))
			te++;
		if (te < n && te - i <= TORN_MAX_LINES) {
			json_t *fe = failure_entry(&ls[te]);
			bool torn = fe && torn_matches(ls, i, te, fe);
			json_decref(fe);
			if (torn) {
				if (!first_torn)
					first_torn = i + 1;
				if (!first_failure)
					first_failure = te + 1;
				out->torn += te - i;
				out->failures++;
				prev = ls[te].chain;
				prev_seq = ls[te].seq;
				i = te;
				continue;
			}
		}
		out->line = i + 1;
		out->entries = i;
		if (!l->ok) {
			out->problem = CLI_CHAIN_MALFORMED;
			snprintf(out->reason, sizeof(out->reason),
				 "altered: no valid chain member at the end of the line");
			goto out;
		}
		/* Which line does this one claim as predecessor? */
		for (size_t j = 0; j <= n; j++) {
			/* j == 0: start of log; else line j (1-based) */
			const char *cand = j == 0 ? "" : ls[j - 1].ok ? ls[j - 1].chain : NULL;
			if (!cand || j == i /* the line we expected */ || j == i + 1)
				continue;
			if (verifies(key, keylen, cand, l)) {
				if (j > i + 1) {
					out->problem = CLI_CHAIN_REORDERED;
					snprintf(out->reason, sizeof(out->reason),
						 "reordered: this entry belongs after line %zu", j);
				} else if (j == 0) {
					out->problem = CLI_CHAIN_INSERTED;
					snprintf(out->reason, sizeof(out->reason),
						 "inserted: a replay of the first entry of the log");
				} else {
					out->problem = CLI_CHAIN_INSERTED;
					snprintf(out->reason, sizeof(out->reason),
						 "inserted: a replay of the entry that followed line %zu", j);
				}
				goto out;
			}
		}
		if (i + 1 < n && verifies(key, keylen, prev, &ls[i + 1])) {
			out->problem = CLI_CHAIN_INSERTED;
			snprintf(out->reason, sizeof(out->reason),
				 "inserted: the chain continues without this line");
			goto out;
		}
		bool next_ok = i + 1 < n && verifies(key, keylen, l->chain, &ls[i + 1]);
		/* a jump in seq, with the chain intact after this line: entries
		 * were removed just before it */
		if ((next_ok || i + 1 == n) && l->seq > 0 &&
		    ((prev_seq >= 0 && l->seq > prev_seq + 1) || (i == 0 && l->seq > 1))) {
			out->problem = CLI_CHAIN_REMOVED;
			if (prev_seq >= 0)
				snprintf(out->reason, sizeof(out->reason),
					 "removed: %lld entries (seq %lld to %lld) are missing before this line",
					 l->seq - prev_seq - 1, prev_seq + 1, l->seq - 1);
			else
				snprintf(out->reason, sizeof(out->reason),
					 "removed: the entries before this line (seq below %lld) are missing",
					 l->seq);
			goto out;
		}
		out->problem = CLI_CHAIN_ALTERED;
		if (next_ok)
			snprintf(out->reason, sizeof(out->reason),
				 "altered, or the line before it was removed: its MAC does not "
				 "match the chain");
		else
			snprintf(out->reason, sizeof(out->reason),
				 "altered: its MAC does not match the chain");
		goto out;
	}
	out->problem = CLI_CHAIN_OK;
	out->entries = n;
	if (out->torn)
		snprintf(out->reason, sizeof(out->reason),
			 "ok, %zu entries; %zu torn by a failed write (from line %zu), recorded by "
			 "the server (line %zu): not tampering", n, out->torn, first_torn,
			 first_failure);
	else if (out->failures)
		snprintf(out->reason, sizeof(out->reason),
			 "ok, %zu entries; %zu failed write(s) rolled back and recorded (line %zu)", n,
			 out->failures, first_failure);
	else
		snprintf(out->reason, sizeof(out->reason), "ok, %zu entries", n);
out:
	for (size_t i = 0; i < n; i++)
		free(ls[i].stripped);
	free(ls);
}
