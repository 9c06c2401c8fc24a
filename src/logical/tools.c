/*
 * tools.c - random bytes and hashing without a key (tools.h), with Vault's
 * fields, limits and error messages for sys/tools/ and transit/{random,hash}.
 */
#include "logical/tools.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "logical/system_view.h"
#include "util/b64.h"
#include "util/secmem.h"

#define RANDOM_MAX (128 * 1024)

const struct field_def logical_tools_random_fields[] = {
	{"source", FT_STRING, NULL, "platform, seal or all (path form), or the byte count.", false},
	{"urlbytes", FT_STRING, NULL, "Number of bytes (path form).", false},
	{"bytes", FT_INT, "32", "Number of bytes.", false},
	{"format", FT_STRING, "base64", "hex or base64.", false},
	{NULL},
};

const struct field_def logical_tools_hash_fields[] = {
	{"urlalgorithm", FT_STRING, NULL, "Hash algorithm (path form).", false},
	{"algorithm", FT_STRING, "sha2-256", "Hash algorithm.", false},
	{"input", FT_STRING, NULL, "Base64 input.", false},
	{"format", FT_STRING, "hex", "hex or base64.", false},
	{NULL},
};

static const EVP_MD *tools_md(const char *name)
{
	static const struct {
		const char *name;
		const EVP_MD *(*md)(void);
	} algs[] = {
		{"sha2-224", EVP_sha224},   {"sha2-256", EVP_sha256},   {"sha2-384", EVP_sha384},
		{"sha2-512", EVP_sha512},   {"sha3-224", EVP_sha3_224}, {"sha3-256", EVP_sha3_256},
		{"sha3-384", EVP_sha3_384}, {"sha3-512", EVP_sha3_512},
	};
	for (size_t i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(name, algs[i].name))
			return algs[i].md();
	return NULL;
}

static bool format_ok(const char *fmt)
{
	return !strcmp(fmt, "hex") || !strcmp(fmt, "base64");
}

static char *encode(const char *fmt, const uint8_t *b, size_t n)
{
	return !strcmp(fmt, "hex") ? hex_encode(b, n) : b64_encode(b, n, false);
}

int logical_tools_hash(struct logical_request *req, struct logical_response *resp,
		       struct verr *err)
{
	const char *alg = request_str(req, "urlalgorithm");
	if (!alg || !*alg)
		alg = request_str(req, "algorithm");
	const char *fmt = request_str(req, "format");
	const EVP_MD *md = tools_md(alg);
	if (!md)
		return verr_set(err, VERR_INVALID, "unsupported algorithm %.32s", alg ? alg : "");
	if (!format_ok(fmt))
		return verr_set(err, VERR_INVALID,
				"unsupported encoding format %.32s; must be \"hex\" or \"base64\"", fmt);
	const char *in = request_str(req, "input");
	if (!in || !request_has(req, "input"))
		return verr_set(err, VERR_INVALID, "input missing");
	uint8_t *raw = NULL;
	size_t rl = 0;
	struct verr e = {0};
	if (b64_decode(&raw, &rl, in, false, &e))
		return verr_set(err, VERR_INVALID, "unable to decode input as base64: %s", e.msg);
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	int ok = EVP_Digest(raw, rl, d, &dl, md, NULL);
	free(raw);
	if (!ok)
		return verr_set(err, VERR_INTERNAL, "hashing failed");
	char *s = encode(fmt, d, dl);
	resp->data = s ? json_pack("{s:s}", "sum", s) : NULL;
	free(s);
	return resp->data ? 0 : verr_set(err, VERR_INTERNAL, "out of memory");
}

static int parse_count(const char *s, int64_t *out, struct verr *err)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end)
		return verr_set(err, VERR_INVALID,
				"error parsing url-set byte count: strconv.Atoi: parsing \"%.32s\": "
				"invalid syntax",
				s);
	*out = v;
	return 0;
}

static bool source_ok(const char *s)
{
	return !strcmp(s, "platform") || !strcmp(s, "seal") || !strcmp(s, "all");
}

int logical_tools_random(struct logical_request *req, struct logical_response *resp,
			 struct verr *err)
{
	const char *src = request_str(req, "source"), *ub = request_str(req, "urlbytes");
	const char *source = "platform";
	int64_t n = request_int(req, "bytes");
	int rc = 0;
	bool src_given = src && *src && request_has(req, "source");
	if (src_given && ub && *ub) { /* random/<source>/<bytes> */
		source = src;
		rc = parse_count(ub, &n, err);
	} else if (src_given && source_ok(src)) { /* random/<source> */
		source = src;
	} else if (src_given) { /* random/<bytes> */
		rc = parse_count(src, &n, err);
	}
	if (rc)
		return rc;
	if (!source_ok(source))
		return verr_set(err, VERR_INVALID,
				"unsupported entropy source \"%.32s\"; must be \"platform\" or \"seal\", "
				"or \"all\"",
				source);
	const char *fmt = request_str(req, "format");
	if (n < 1)
		return verr_set(err, VERR_INVALID, "'bytes' cannot be less than 1");
	if (n > RANDOM_MAX)
		return verr_set(err, VERR_INVALID, "'bytes' should be less than %d", RANDOM_MAX);
	if (!format_ok(fmt))
		return verr_set(err, VERR_INVALID,
				"unsupported encoding format \"%.32s\"; must be \"hex\" or \"base64\"",
				fmt);
	uint8_t *buf = malloc((size_t)n);
	if (!buf)
		return verr_set(err, VERR_INTERNAL, "out of memory");
	rc = sysview_random(req->sys, buf, (size_t)n, err);
	char *s = NULL;
	if (!rc) {
		s = encode(fmt, buf, (size_t)n);
		resp->data = s ? json_pack("{s:s}", "random_bytes", s) : NULL;
		if (!resp->data)
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
		else if (!strcmp(source, "seal"))
			logical_response_warn(resp, "no seal/entropy augmentation available, using "
						    "platform entropy source");
	}
	secmem_wipe(buf, (size_t)n);
	if (s)
		secmem_wipe(s, strlen(s));
	free(buf);
	free(s);
	return rc;
}
