/*
 * passpolicy.c - password policy parsing and generation (passpolicy.h).
 *
 * The alphabet is kept as a 256-entry membership table plus the sorted list
 * of its bytes; each character is one random byte reduced by rejection
 * sampling (bytes >= the largest multiple of the alphabet size are drawn
 * again), so every character is equally likely. A candidate failing a
 * min-chars rule is wiped and redrawn (at most PP_ATTEMPTS times; with
 * satisfiable rules the chance of exhausting them is negligible).
 */
#include "util/passpolicy.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hcl.h"
#include "util/rand.h"

#define PP_ATTEMPTS 1000

struct pp_rule {
	bool in[256];
	size_t min_chars;
};

struct passpolicy {
	size_t length;
	size_t nrules;
	struct pp_rule rules[PASSPOLICY_MAX_RULES];
	unsigned char alphabet[256];
	size_t nalpha;
};

static void build_alphabet(struct passpolicy *p)
{
	bool in[256] = {false};
	for (size_t r = 0; r < p->nrules; r++)
		for (int c = 0; c < 256; c++)
			in[c] = in[c] || p->rules[r].in[c];
	p->nalpha = 0;
	for (int c = 0; c < 256; c++)
		if (in[c])
			p->alphabet[p->nalpha++] = (unsigned char)c;
}

static int add_rule(struct passpolicy *p, const char *charset, size_t min_chars, struct verr *err)
{
	if (p->nrules >= PASSPOLICY_MAX_RULES)
		return verr_set(err, VERR_INVALID, "password policy: at most %d rules",
				PASSPOLICY_MAX_RULES);
	struct pp_rule *r = &p->rules[p->nrules];
	memset(r, 0, sizeof(*r));
	if (!*charset)
		return verr_set(err, VERR_INVALID, "password policy: rule \"charset\" needs a non-empty charset");
	for (const unsigned char *c = (const unsigned char *)charset; *c; c++) {
		if (*c < 0x21 || *c > 0x7e)
			return verr_set(err, VERR_INVALID,
					"password policy: charset characters must be printable ASCII");
		r->in[*c] = true;
	}
	r->min_chars = min_chars;
	p->nrules++;
	return 0;
}

static struct passpolicy default_policy;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void make_default(void)
{
	struct passpolicy *t = &default_policy;
	t->length = 20;
	add_rule(t, "abcdefghijklmnopqrstuvwxyz", 1, NULL);
	add_rule(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1, NULL);
	add_rule(t, "0123456789", 1, NULL);
	add_rule(t, "-", 1, NULL);
	build_alphabet(t);
}

const struct passpolicy *passpolicy_default(void)
{
	pthread_once(&default_once, make_default);
	return &default_policy;
}

size_t passpolicy_length(const struct passpolicy *p)
{
	return p->length;
}

static int parse_rule_body(struct passpolicy *p, const struct hcl_item *it, struct verr *err)
{
	if (it->nkeys != 2 || strcmp(it->keys[1], "charset") != 0)
		return verr_set(err, VERR_INVALID,
				"password policy line %d: unknown rule type (only rule \"charset\")",
				it->line);
	if (it->value.type != HCL_OBJECT)
		return verr_set(err, VERR_INVALID, "password policy line %d: rule needs a block",
				it->line);
	const char *charset = NULL;
	int64_t min_chars = 0;
	const struct hcl_body *b = &it->value.body;
	for (size_t i = 0; i < b->nitems; i++) {
		const struct hcl_item *f = &b->items[i];
		if (f->nkeys == 1 && !strcmp(f->keys[0], "charset") && f->value.type == HCL_STRING) {
			charset = f->value.str;
		} else if (f->nkeys == 1 && !strcmp(f->keys[0], "min-chars") &&
			   f->value.type == HCL_INT) {
			min_chars = f->value.i;
		} else {
			return verr_set(err, VERR_INVALID,
					"password policy line %d: unknown or mistyped field \"%.40s\" in rule \"charset\"",
					f->line, f->keys[0]);
		}
	}
	if (!charset)
		return verr_set(err, VERR_INVALID,
				"password policy line %d: rule \"charset\" needs a charset", it->line);
	if (min_chars < 0 || min_chars > PASSPOLICY_MAX_LENGTH)
		return verr_set(err, VERR_INVALID, "password policy line %d: min-chars out of range",
				it->line);
	return add_rule(p, charset, (size_t)min_chars, err);
}

int passpolicy_parse(struct passpolicy **out, const char *hcl, size_t len, struct verr *err)
{
	*out = NULL;
	struct hcl_doc *doc = NULL;
	int rc = hcl_parse(&doc, hcl, len, "password policy", err);
	if (rc)
		return rc == VERR_INVALID ? rc : verr_set(err, VERR_INVALID, "password policy: %s",
							  err ? err->msg : "parse error");
	struct passpolicy *p = calloc(1, sizeof(*p));
	if (!p) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	bool have_len = false;
	for (size_t i = 0; i < doc->body.nitems; i++) {
		const struct hcl_item *it = &doc->body.items[i];
		if (it->nkeys == 1 && !strcmp(it->keys[0], "length") && it->value.type == HCL_INT) {
			if (it->value.i < 4 || it->value.i > PASSPOLICY_MAX_LENGTH) {
				rc = verr_set(err, VERR_INVALID,
					      "password policy: length must be between 4 and %d",
					      PASSPOLICY_MAX_LENGTH);
				goto out;
			}
			p->length = (size_t)it->value.i;
			have_len = true;
		} else if (!strcmp(it->keys[0], "rule")) {
			if ((rc = parse_rule_body(p, it, err)))
				goto out;
		} else {
			rc = verr_set(err, VERR_INVALID,
				      "password policy line %d: unknown or mistyped field \"%.40s\"",
				      it->line, it->keys[0]);
			goto out;
		}
	}
	if (!have_len) {
		rc = verr_set(err, VERR_INVALID, "password policy: missing length");
		goto out;
	}
	if (p->nrules == 0) {
		rc = verr_set(err, VERR_INVALID, "password policy: at least one rule \"charset\" is needed");
		goto out;
	}
	size_t need = 0;
	for (size_t r = 0; r < p->nrules; r++)
		need += p->rules[r].min_chars;
	if (need > p->length) {
		rc = verr_set(err, VERR_INVALID,
			      "password policy: the rules need %zu characters but length is %zu", need,
			      p->length);
		goto out;
	}
	build_alphabet(p);
	*out = p;
	p = NULL; /* transferred */
out:
	free(p);
	hcl_doc_free(doc);
	return rc;
}

static bool satisfies(const struct passpolicy *p, const char *pw)
{
	for (size_t r = 0; r < p->nrules; r++) {
		size_t n = 0;
		for (const unsigned char *c = (const unsigned char *)pw; *c; c++)
			n += p->rules[r].in[*c];
		if (n < p->rules[r].min_chars)
			return false;
	}
	return true;
}

static int draw(const struct passpolicy *p, char *out, struct verr *err)
{
	/* largest multiple of nalpha that fits a byte: reject above it */
	unsigned limit = 256u - (256u % (unsigned)p->nalpha);
	uint8_t pool[64];
	size_t have = 0, used = 0;
	for (size_t i = 0; i < p->length;) {
		if (used == have) {
			int rc = rand_bytes(pool, sizeof(pool), err);
			if (rc)
				return rc;
			have = sizeof(pool);
			used = 0;
		}
		unsigned v = pool[used++];
		if (v >= limit)
			continue;
		out[i++] = (char)p->alphabet[v % p->nalpha];
	}
	out[p->length] = '\0';
	OPENSSL_cleanse(pool, sizeof(pool));
	return 0;
}

int passpolicy_generate(const struct passpolicy *p, char *out, size_t cap, struct verr *err)
{
	if (cap < p->length + 1 || p->nalpha == 0)
		return verr_set(err, VERR_INTERNAL, "password buffer too small");
	for (int attempt = 0; attempt < PP_ATTEMPTS; attempt++) {
		int rc = draw(p, out, err);
		if (rc)
			return rc;
		if (satisfies(p, out))
			return 0;
		OPENSSL_cleanse(out, p->length);
	}
	out[0] = '\0';
	return verr_set(err, VERR_INTERNAL, "could not generate a password that meets the policy");
}

void passpolicy_free(struct passpolicy *p)
{
	free(p);
}
