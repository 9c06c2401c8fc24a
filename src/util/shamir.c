/*
 * shamir.c - Shamir secret sharing over GF(2^8) (see shamir.h).
 *
 * Each byte of the secret is the constant term of its own random polynomial
 * of degree threshold-1; a share holds that polynomial's value at the share's
 * x-coordinate for every byte. Combining evaluates the Lagrange interpolation
 * at x = 0.
 *
 * Side channels: the secret bytes, the coefficients and the y-values only
 * ever pass through gf_mul/gf_inv and XOR, which use masks instead of
 * branches or table lookups, so timing and cache behaviour do not depend on
 * them. Loops depend only on public sizes (len, parts, threshold).
 *
 * Uniformity: every non-constant coefficient is uniform over all 256 values,
 * zero included. (Forcing the top coefficient non-zero, as some
 * implementations do, lets threshold-1 shares rule out one value of each
 * secret byte.)
 */
#include "util/shamir.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "util/secmem.h"

/* Keys are 32 bytes; the cap keeps len * (threshold-1) within RAND_bytes's
 * int argument. */
#define SHAMIR_MAX_SECRET (64 * 1024)

uint8_t shamir__gf_mul(uint8_t a, uint8_t b)
{
	uint8_t r = 0;
	for (int i = 0; i < 8; i++) {
		/* r += a if the low bit of b is set, without branching */
		r ^= (uint8_t)(-(b & 1)) & a;
		/* a *= x, reducing by 0x11b when the top bit falls off */
		uint8_t carry = (uint8_t)(-(a >> 7));
		a = (uint8_t)((a << 1) ^ (carry & 0x1b));
		b >>= 1;
	}
	return r;
}

/* a^254 = a^-1 in GF(2^8)* (and 0 for 0): 254 = 2+4+...+128, so multiply the
 * seven successive squares together. Fixed sequence, no branches. */
uint8_t shamir__gf_inv(uint8_t a)
{
	uint8_t sq = a, r = 1;
	for (int i = 0; i < 7; i++) {
		sq = shamir__gf_mul(sq, sq);
		r = shamir__gf_mul(r, sq);
	}
	return r;
}

int shamir_validate(int parts, int threshold, struct verr *err)
{
	if (parts < 1)
		return verr_set(err, VERR_INVALID, "shares must be at least one");
	if (threshold < 1)
		return verr_set(err, VERR_INVALID, "threshold must be at least one");
	if (parts > 1 && threshold == 1)
		return verr_set(err, VERR_INVALID,
				"threshold must be greater than one for multiple shares");
	if (parts > SHAMIR_MAX_PARTS)
		return verr_set(err, VERR_INVALID, "shares must be less than 256");
	if (threshold > SHAMIR_MAX_PARTS)
		return verr_set(err, VERR_INVALID, "threshold must be less than 256");
	if (threshold > parts)
		return verr_set(err, VERR_INVALID, "threshold cannot be larger than shares");
	return 0;
}

/* Uniform integer in [0, n) for 1 <= n <= 256, by rejection sampling. */
static int rand_below(unsigned n, unsigned *out)
{
	unsigned limit = 256 - (256 % n);
	for (;;) {
		uint8_t b;
		if (RAND_bytes(&b, 1) != 1)
			return -1;
		if (b < limit) {
			*out = b % n;
			return 0;
		}
	}
}

/* Choose `parts` distinct x-coordinates uniformly from 1..255 (a partial
 * Fisher-Yates shuffle). */
static int pick_xs(uint8_t *xs, int parts)
{
	uint8_t pool[255];
	for (int i = 0; i < 255; i++)
		pool[i] = (uint8_t)(i + 1);
	for (int i = 0; i < parts; i++) {
		unsigned j;
		if (rand_below((unsigned)(255 - i), &j) != 0)
			return -1;
		uint8_t t = pool[i];
		pool[i] = pool[i + j];
		pool[i + j] = t;
		xs[i] = pool[i];
	}
	return 0;
}

void shamir_shares_free(uint8_t **shares, int n, size_t share_len)
{
	if (!shares)
		return;
	for (int i = 0; i < n; i++)
		secmem_free(shares[i], share_len);
	free(shares);
}

int shamir_split(uint8_t ***out_shares, size_t *out_share_len, const uint8_t *secret,
		 size_t len, int parts, int threshold, struct verr *err)
{
	uint8_t **shares = NULL;
	uint8_t *coef = NULL;
	size_t ncoef = 0, share_len = 0;
	int rc = shamir_validate(parts, threshold, err);
	if (rc)
		return rc;
	if (len == 0 || !secret)
		return verr_set(err, VERR_INVALID, "cannot split an empty secret");
	if (len > SHAMIR_MAX_SECRET)
		return verr_set(err, VERR_INVALID, "secret too large to split");

	shares = calloc((size_t)parts, sizeof(*shares));
	if (!shares) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (threshold == 1) {
		/* parts == 1 here (validated): the single unseal key is the key. */
		share_len = len;
		if (!(shares[0] = secmem_alloc(share_len))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		memcpy(shares[0], secret, len);
		goto out;
	}

	share_len = len + 1;
	uint8_t xs[SHAMIR_MAX_PARTS];
	if (pick_xs(xs, parts) != 0) {
		rc = verr_set(err, VERR_INTERNAL, "random number generator failed");
		goto out;
	}
	for (int i = 0; i < parts; i++) {
		if (!(shares[i] = secmem_alloc(share_len))) {
			rc = verr_set(err, VERR_INTERNAL, "out of memory");
			goto out;
		}
		shares[i][len] = xs[i];
	}

	/* coef[b*(t-1) + k] is the coefficient of x^(k+1) for secret byte b. */
	int deg = threshold - 1;
	ncoef = len * (size_t)deg;
	coef = secmem_alloc(ncoef);
	if (!coef) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	if (RAND_bytes(coef, (int)ncoef) != 1) {
		rc = verr_set(err, VERR_INTERNAL, "random number generator failed");
		goto out;
	}
	for (size_t b = 0; b < len; b++) {
		const uint8_t *c = coef + b * (size_t)deg;
		for (int i = 0; i < parts; i++) {
			uint8_t x = xs[i];
			/* Horner: ((c_deg x + c_deg-1) x + ... + c_1) x + secret */
			uint8_t y = c[deg - 1];
			for (int k = deg - 2; k >= 0; k--)
				y = (uint8_t)(shamir__gf_mul(y, x) ^ c[k]);
			y = (uint8_t)(shamir__gf_mul(y, x) ^ secret[b]);
			shares[i][b] = y;
		}
	}

out:
	secmem_free(coef, ncoef);
	if (rc) {
		shamir_shares_free(shares, parts, share_len);
		return rc;
	}
	*out_shares = shares;
	*out_share_len = share_len;
	return 0;
}

int shamir_combine(uint8_t **out_secret, size_t *out_len, uint8_t *const *shares,
		   const size_t *share_lens, int nshares, struct verr *err)
{
	uint8_t *secret = NULL, *basis = NULL;
	size_t slen = 0;
	int rc = 0;

	if (nshares < 2)
		return verr_set(err, VERR_INVALID,
				"less than two parts cannot be used to reconstruct the secret");
	size_t plen = share_lens[0];
	if (plen < 2)
		return verr_set(err, VERR_INVALID, "parts must be at least two bytes");
	for (int i = 1; i < nshares; i++)
		if (share_lens[i] != plen)
			return verr_set(err, VERR_INVALID, "all parts must be the same length");

	/* x-coordinates are the public half of a share; checking them with
	 * ordinary branches leaks nothing about the y-values. */
	uint8_t seen[256] = {0};
	for (int i = 0; i < nshares; i++) {
		uint8_t x = shares[i][plen - 1];
		if (x == 0)
			return verr_set(err, VERR_INVALID, "part has an invalid x-coordinate");
		if (seen[x])
			return verr_set(err, VERR_INVALID, "duplicate part detected");
		seen[x] = 1;
	}

	/* Lagrange basis at 0: l_i = prod_{j!=i} x_j / (x_i + x_j). It depends
	 * only on the x-coordinates, so compute it once for all bytes. */
	basis = secmem_alloc((size_t)nshares);
	slen = plen - 1;
	secret = secmem_alloc(slen);
	if (!basis || !secret) {
		rc = verr_set(err, VERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < nshares; i++) {
		uint8_t xi = shares[i][plen - 1], num = 1, den = 1;
		for (int j = 0; j < nshares; j++) {
			if (j == i)
				continue;
			uint8_t xj = shares[j][plen - 1];
			num = shamir__gf_mul(num, xj);
			den = shamir__gf_mul(den, (uint8_t)(xi ^ xj));
		}
		basis[i] = shamir__gf_mul(num, shamir__gf_inv(den));
	}
	for (size_t b = 0; b < slen; b++) {
		uint8_t acc = 0;
		for (int i = 0; i < nshares; i++)
			acc ^= shamir__gf_mul(shares[i][b], basis[i]);
		secret[b] = acc;
	}

out:
	secmem_free(basis, (size_t)nshares);
	if (rc) {
		secmem_free(secret, slen);
		return rc;
	}
	*out_secret = secret;
	*out_len = slen;
	return 0;
}
