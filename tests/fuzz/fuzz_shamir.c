/*
 * tests/fuzz/fuzz_shamir.c - libFuzzer target for src/util/shamir.c.
 *
 * Input byte 0 picks the mode:
 *   even: combine arbitrary shares. Byte 1 = share count (1..32), byte 2 =
 *         share length (0..63); the rest is cut into shares, the last one
 *         possibly short (the length-mismatch path). Combine must never
 *         crash, and must fail exactly when the documented rules say so.
 *   odd:  round trip. Bytes 1-2 = parts/threshold, the rest is the secret;
 *         a valid split followed by a combine of the first `threshold`
 *         shares must give the secret back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/secmem.h"
#include "util/shamir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	secmem_set_mlock(0);
	return 0;
}

static int fuzz_combine(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	int n = 1 + data[1] % 32;
	size_t len = data[2] % 64;
	data += 3;
	size -= 3;
	uint8_t *shares[32];
	size_t lens[32];
	for (int i = 0; i < n; i++) {
		size_t take = size < len ? size : len;
		/* each share gets its own exact-size allocation so ASan sees
		 * any read past its end */
		shares[i] = malloc(take ? take : 1);
		memcpy(shares[i], data, take);
		lens[i] = take;
		data += take;
		size -= take;
	}
	uint8_t *out = NULL;
	size_t out_len = 0;
	struct verr err;
	int rc = shamir_combine(&out, &out_len, shares, lens, n, &err);
	/* The rules, restated independently. */
	int want_ok = n >= 2 && lens[0] >= 2;
	for (int i = 1; want_ok && i < n; i++)
		want_ok = lens[i] == lens[0];
	uint8_t seen[256] = {0};
	for (int i = 0; want_ok && i < n; i++) {
		uint8_t x = shares[i][lens[0] - 1];
		want_ok = x != 0 && !seen[x];
		seen[x] = 1;
	}
	if ((rc == 0) != want_ok)
		abort();
	if (rc == 0) {
		if (out_len != lens[0] - 1)
			abort();
		secmem_free(out, out_len);
	}
	for (int i = 0; i < n; i++)
		free(shares[i]);
	return 0;
}

static int fuzz_round_trip(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	int parts = 1 + data[1] % 12;
	int threshold = 1 + data[2] % parts;
	const uint8_t *secret = data + 3;
	size_t len = size - 3;
	if (len > 256)
		len = 256;
	uint8_t **shares = NULL;
	size_t share_len = 0;
	struct verr err;
	int rc = shamir_split(&shares, &share_len, secret, len, parts, threshold, &err);
	if (parts > 1 && threshold == 1) {
		if (rc == 0)
			abort();
		return 0;
	}
	if (rc != 0)
		abort();
	if (parts == 1) {
		if (share_len != len || memcmp(shares[0], secret, len) != 0)
			abort();
	} else {
		size_t lens[12];
		for (int i = 0; i < threshold; i++)
			lens[i] = share_len;
		uint8_t *out = NULL;
		size_t out_len = 0;
		/* take the last `threshold` shares so the choice varies */
		if (shamir_combine(&out, &out_len, shares + (parts - threshold), lens, threshold,
				   &err) != 0)
			abort();
		if (out_len != len || memcmp(out, secret, len) != 0)
			abort();
		secmem_free(out, out_len);
	}
	shamir_shares_free(shares, parts, share_len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	return (data[0] & 1) ? fuzz_round_trip(data, size) : fuzz_combine(data, size);
}
