/*
 * tests/fuzz/fuzz_barrier.c - libFuzzer target for what the barrier reads
 * back from storage (src/core/barrier.c).
 *
 * One unsealed barrier over the in-memory backend lives for the whole run.
 * Input byte 0 picks the mode:
 *   0: the rest is stored raw under a key and read through the barrier:
 *      must fail cleanly (nobody can forge an AES-GCM tag) with no output.
 *   1: the rest is parsed as a decrypted keyring image (the parser sits
 *      behind authentication, but must still be total).
 *   2: the rest is opened as a sealed blob with a fixed key: must fail.
 *   3: a genuine entry is XOR-ed with the rest and truncated to byte 1's
 *      worth of cuts: it must decrypt only when the mask changed nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/barrier.h"
#include "util/aead.h"
#include "physical/physical.h"
#include "util/secmem.h"

static struct physical *g_under;
static struct barrier *g_barrier;
static uint8_t *g_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct verr err;
	secmem_set_mlock(0);
	if (physical_inmem_new(&g_under, NULL, &err) || barrier_new(&g_barrier, g_under, &err) ||
	    barrier_generate_key(&g_key, &err) ||
	    barrier_initialize(g_barrier, g_key, BARRIER_KEY_LEN, &err) ||
	    barrier_unseal(g_barrier, g_key, BARRIER_KEY_LEN, &err))
		abort();
	return 0;
}

static void read_back_fails(const char *key)
{
	uint8_t *out = NULL;
	size_t len = 0;
	struct verr err;
	if (physical_get(barrier_physical(g_barrier), key, &out, &len, &err) != VERR_INTERNAL ||
	    out)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verr err;
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 4;
	data++;
	size--;
	switch (mode) {
	case 0:
		if (physical_put(g_under, "fuzz/raw", data, size, &err) != 0)
			abort();
		read_back_fails("fuzz/raw");
		break;
	case 1:
		(void)barrier__keyring_check(data, size, &err);
		break;
	case 2: {
		uint8_t *out = NULL;
		size_t out_len = 0;
		if (aead_blob_open(&out, &out_len, g_key, "fuzz/blob", data, size, &err) == 0)
			abort();
		break;
	}
	case 3: {
		static const char plain[] = "a genuine stored value";
		struct physical *p = barrier_physical(g_barrier);
		if (physical_put(p, "fuzz/genuine", (const uint8_t *)plain, sizeof(plain) - 1, &err))
			abort();
		uint8_t *ct = NULL;
		size_t len = 0;
		if (physical_get(g_under, "fuzz/genuine", &ct, &len, &err) || !ct)
			abort();
		size_t cut = size ? data[0] % 4 : 0; /* drop 0..3 trailing bytes */
		int changed = cut != 0;
		for (size_t i = 1; i < size && i - 1 < len; i++) {
			ct[i - 1] ^= data[i];
			changed |= data[i] != 0;
		}
		if (physical_put(g_under, "fuzz/genuine", ct, len - cut, &err))
			abort();
		free(ct);
		if (changed) {
			read_back_fails("fuzz/genuine");
		} else {
			uint8_t *out = NULL;
			size_t out_len = 0;
			if (physical_get(p, "fuzz/genuine", &out, &out_len, &err) || !out ||
			    out_len != sizeof(plain) - 1 || memcmp(out, plain, out_len) != 0)
				abort();
			free(out);
		}
		break;
	}
	}
	return 0;
}
