/*
 * tests/unit/physical/file.c - the `file` storage backend (src/physical/file.c):
 * the shared storage contract, configuration errors, persistence across
 * reopen, compaction, torn tails at every byte, bit-rot detection, and
 * concurrent writers sharing fsyncs (group commit). Kill -9 is in crash.c.
 */
#include "physical/semantics.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "physical/file_int.h"
#include "util/log.h"

/* ---- helpers ---------------------------------------------------------------- */

static char *tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/coffer-file-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmpdir_free(char *dir)
{
	if (dir)
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static struct physical *open_dir(const char *dir)
{
	struct physical *p = NULL;
	struct verr err = {0};
	json_t *conf = json_pack("{s:s}", "path", dir);
	int rc = physical_file_new(&p, conf, &err);
	json_decref(conf);
	if (rc)
		fail_msg("open %s: %s", dir, err.msg);
	return p;
}

static int open_dir_err(const char *dir, struct verr *err)
{
	struct physical *p = NULL;
	json_t *conf = json_pack("{s:s}", "path", dir);
	int rc = physical_file_new(&p, conf, err);
	json_decref(conf);
	physical_close(p);
	return rc;
}

static struct physical_file_stats stats(struct physical *p)
{
	struct physical_file_stats st;
	physical_file__stats(p, &st);
	return st;
}

/* Read the whole log into memory. */
static uint8_t *log_read(const char *dir, size_t *len)
{
	char *path = join(dir, PHYSICAL_FILE_LOG);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	free(path);
	*len = (size_t)st.st_size;
	return buf;
}

static void log_write(const char *dir, const uint8_t *buf, size_t len)
{
	char *path = join(dir, PHYSICAL_FILE_LOG);
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
	free(path);
}

static void log_flip(const char *dir, uint64_t off)
{
	char *path = join(dir, PHYSICAL_FILE_LOG);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
	free(path);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *g_dir; /* directory of the current semantics fixture */

static int sem_setup(void **state)
{
	g_dir = tmpdir_new();
	*state = open_dir(g_dir);
	return 0;
}

static int sem_teardown(void **state)
{
	/* reopen: whatever the test left must replay cleanly */
	physical_close(*state);
	struct physical *p = open_dir(g_dir);
	physical_close(p);
	tmpdir_free(g_dir);
	g_dir = NULL;
	return 0;
}

/* ---- configuration ---------------------------------------------------------- */

static void test_physical_file__config_errors(void **state)
{
	(void)state;
	struct physical *p = NULL;
	struct verr err = {0};
	assert_int_equal(physical_file_new(&p, NULL, &err), VERR_INVALID);
	assert_string_equal(err.msg, "storage \"file\": missing required \"path\"");
	json_t *conf = json_object();
	assert_int_equal(physical_file_new(&p, conf, &err), VERR_INVALID);
	assert_string_equal(err.msg, "storage \"file\": missing required \"path\"");
	json_decref(conf);
	assert_null(p);

	char *dir = tmpdir_new();
	char *file = join(dir, "plain");
	int fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	char *under = join(file, "sub");
	assert_int_equal(open_dir_err(under, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, under));
	assert_int_equal(open_dir_err(file, &err), VERR_INVALID);
	assert_non_null(strstr(err.msg, file));
	assert_non_null(strstr(err.msg, "not a directory"));
	if (geteuid() != 0) {
		char *ro = join(dir, "ro");
		assert_int_equal(mkdir(ro, 0500), 0);
		assert_true(open_dir_err(ro, &err) < 0);
		assert_non_null(strstr(err.msg, ro));
		free(ro);
	}

	const char *bad[] = {"abc", "-5", "0", "12x", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf = json_pack("{s:s,s:s}", "path", dir, "max_entry_size", bad[i]);
		assert_int_equal(physical_file_new(&p, conf, &err), VERR_INVALID);
		assert_non_null(strstr(err.msg, "max_entry_size"));
		json_decref(conf);
	}
	conf = json_pack("{s:s,s:s}", "path", dir, "max_entry_size", "100");
	assert_int_equal(physical_file_new(&p, conf, &err), 0);
	json_decref(conf);
	uint8_t buf[201] = {0};
	assert_int_equal(physical_put(p, "k", buf, 100, &err), 0);
	assert_int_equal(physical_put(p, "k", buf, 101, &err), VERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "k is 101 bytes"));
	physical_close(p);
	conf = json_pack("{s:s,s:i}", "path", dir, "max_entry_size", 200);
	assert_int_equal(physical_file_new(&p, conf, &err), 0);
	json_decref(conf);
	assert_int_equal(physical_put(p, "k", buf, 200, &err), 0);
	assert_int_equal(physical_put(p, "k", buf, 201, &err), VERR_TOO_LARGE);
	assert_true(p->durable);
	physical_close(p);

	free(under);
	free(file);
	tmpdir_free(dir);
}

static void test_physical_file__private_dir_and_files(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	char *sub = join(dir, "a/b/store");
	mode_t old = umask(022);
	struct physical *p = open_dir(sub);
	umask(old);
	sem_put(p, "k", "v");
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char *logp = join(sub, PHYSICAL_FILE_LOG), *lockp = join(sub, PHYSICAL_FILE_LOCK);
	assert_int_equal(stat(logp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(lockp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	physical_close(p);
	free(logp);
	free(lockp);
	free(sub);
	tmpdir_free(dir);
}

static void test_physical_file__lock_excludes_second_open(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	struct verr err = {0};
	assert_int_equal(open_dir_err(dir, &err), VERR_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "in use"));
	assert_non_null(strstr(err.msg, dir));
	physical_close(p);
	p = open_dir(dir); /* released on close */
	physical_close(p);
	tmpdir_free(dir);
}

/* ---- persistence and compaction -------------------------------------------- */

static void test_physical_file__reopen_persists(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	struct verr err = {0};
	char key[64], val[64];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "r/%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		sem_put(p, key, val);
	}
	for (int i = 0; i < 300; i += 3) {
		snprintf(key, sizeof(key), "r/%03d", i);
		assert_int_equal(physical_delete(p, key, &err), 0);
	}
	for (int i = 1; i < 300; i += 3) {
		snprintf(key, sizeof(key), "r/%03d", i);
		snprintf(val, sizeof(val), "new%d", i);
		sem_put(p, key, val);
	}
	physical_close(p);
	for (int round = 0; round < 2; round++) {
		p = open_dir(dir);
		assert_int_equal(stats(p).keys, 200);
		for (int i = 0; i < 300; i++) {
			snprintf(key, sizeof(key), "r/%03d", i);
			snprintf(val, sizeof(val), i % 3 == 1 ? "new%d" : "v%d", i);
			sem_expect(p, key, i % 3 == 0 ? NULL : val);
		}
		physical_close(p);
	}
	tmpdir_free(dir);
}

/* Open builds the index in bulk from the sorted log: it must equal the
 * index the writes built one by one (same keys, values, order, and byte
 * accounting), for keys with long shared prefixes, keys that prefix others,
 * overwrites and deletes in any order. */
static void test_physical_file__bulk_replay_matches_live_index(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	struct verr err = {0};
	enum { NK = 700 };
	static char vals[NK][48]; /* "" = absent */
	char key[96];
	unsigned seed = 42;
	for (int op = 0; op < 5000; op++) {
		int k = rand_r(&seed) % NK;
		/* k/3 picks a shared-prefix family; some keys prefix others */
		snprintf(key, sizeof(key), "logical/0b6f5a6e-2f8b-4c1e-9a7d-1f2e3d4c5b6a/%d%s", k / 3,
			 k % 3 == 0 ? "" : k % 3 == 1 ? "/x" : "/x/y");
		if (rand_r(&seed) % 4 == 0) {
			assert_int_equal(physical_delete(p, key, &err), 0);
			vals[k][0] = '\0';
		} else {
			snprintf(vals[k], sizeof(vals[k]), "v%d-%d", k, op);
			sem_put(p, key, vals[k]);
		}
	}
	struct physical_file_stats live = stats(p);
	physical_close(p);
	p = open_dir(dir);
	struct physical_file_stats re = stats(p);
	assert_int_equal(re.keys, live.keys);
	assert_int_equal(re.live_bytes, live.live_bytes);
	assert_int_equal(re.dead_bytes, live.dead_bytes);
	assert_int_equal(re.file_bytes, live.file_bytes);
	for (int k = 0; k < NK; k++) {
		snprintf(key, sizeof(key), "logical/0b6f5a6e-2f8b-4c1e-9a7d-1f2e3d4c5b6a/%d%s", k / 3,
			 k % 3 == 0 ? "" : k % 3 == 1 ? "/x" : "/x/y");
		sem_expect(p, key, vals[k][0] ? vals[k] : NULL);
	}
	/* the list is sorted and complete */
	char **keys = NULL;
	size_t n = 0;
	assert_int_equal(physical_list(p, "logical/0b6f5a6e-2f8b-4c1e-9a7d-1f2e3d4c5b6a/", &keys, &n,
				       &err), 0);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(keys[i - 1], keys[i]) < 0);
	physical_list_free(keys, n);
	/* and the index keeps working for writes after the bulk load */
	for (int k = 0; k < NK; k += 7) {
		snprintf(key, sizeof(key), "logical/0b6f5a6e-2f8b-4c1e-9a7d-1f2e3d4c5b6a/%d%s", k / 3,
			 k % 3 == 0 ? "" : k % 3 == 1 ? "/x" : "/x/y");
		assert_int_equal(physical_delete(p, key, &err), 0);
		sem_expect(p, key, NULL);
	}
	physical_close(p);
	tmpdir_free(dir);
}

static void check_churned(struct physical *p, int n, int gen)
{
	char key[64], val[128];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "c/%d/k", i);
		snprintf(val, sizeof(val), "gen %d of key %d, padded to be a bit longer", gen, i);
		sem_expect(p, key, i % 5 == 4 ? NULL : val);
	}
}

static void churn(struct physical *p, int n, int gen)
{
	struct verr err = {0};
	char key[64], val[128];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "c/%d/k", i);
		snprintf(val, sizeof(val), "gen %d of key %d, padded to be a bit longer", gen, i);
		sem_put(p, key, val);
		if (i % 5 == 4)
			assert_int_equal(physical_delete(p, key, &err), 0);
	}
}

static void test_physical_file__compaction_preserves_data(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	struct verr err = {0};
	for (int gen = 0; gen < 4; gen++)
		churn(p, 200, gen);
	struct physical_file_stats before = stats(p);
	assert_true(before.dead_bytes > before.live_bytes);
	assert_int_equal(physical_file__compact(p, &err), 0);
	struct physical_file_stats after = stats(p);
	assert_int_equal(after.compactions, 1);
	assert_int_equal(after.dead_bytes, 0);
	assert_int_equal(after.keys, 160);
	assert_int_equal(after.live_bytes, before.live_bytes);
	assert_true(after.file_bytes < before.file_bytes / 3);
	check_churned(p, 200, 3);
	sem_expect_list(p, "c/7/", (const char *const[]){"k", NULL});
	/* writes after compaction append to the new log */
	churn(p, 200, 4);
	check_churned(p, 200, 4);
	physical_close(p);
	p = open_dir(dir);
	check_churned(p, 200, 4);

	/* automatic: dead > live and the log over the (lowered) threshold */
	physical_file__set_compact_min(p, 16 * 1024);
	for (int gen = 5; gen < 12; gen++)
		churn(p, 200, gen);
	struct physical_file_stats st = stats(p);
	assert_true(st.compactions >= 1);
	assert_true(st.file_bytes < 3 * st.live_bytes + 32 * 1024);
	check_churned(p, 200, 11);
	physical_close(p);
	char *leftover = join(dir, PHYSICAL_FILE_LOG ".compact");
	assert_int_equal(access(leftover, F_OK), -1);
	free(leftover);
	p = open_dir(dir);
	check_churned(p, 200, 11);
	physical_close(p);
	tmpdir_free(dir);
}

static void test_physical_file__leftover_compaction_file_ignored(void **state)
{
	(void)state;
	/* killed mid-compaction: a half-written .compact must not matter */
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	sem_put(p, "keep", "me");
	physical_close(p);
	char *c = join(dir, PHYSICAL_FILE_LOG ".compact");
	int fd = open(c, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "CFFRLOG\0garbage", 15), 15);
	close(fd);
	p = open_dir(dir);
	sem_expect(p, "keep", "me");
	assert_int_equal(access(c, F_OK), -1);
	physical_close(p);
	free(c);
	tmpdir_free(dir);
}

/* ---- torn tails ------------------------------------------------------------- */

/* For each kind of last record (new key, overwrite, delete), truncate the
 * log at every byte of that record: earlier records survive, the torn one
 * is absent, and the store keeps working. */
static void test_physical_file__torn_tail_every_offset(void **state)
{
	(void)state;
	enum { NEW, OVERWRITE, DELETE };
	for (int kind = NEW; kind <= DELETE; kind++) {
		char *dir = tmpdir_new();
		struct physical *p = open_dir(dir);
		struct verr err = {0};
		char key[32], val[64];
		for (int i = 0; i < 10; i++) {
			snprintf(key, sizeof(key), "t/%d", i);
			snprintf(val, sizeof(val), "value number %d", i);
			sem_put(p, key, val);
		}
		uint64_t s0 = stats(p).file_bytes;
		if (kind == NEW)
			sem_put(p, "t/new", "the last, torn value");
		else if (kind == OVERWRITE)
			sem_put(p, "t/5", "overwritten, torn");
		else
			assert_int_equal(physical_delete(p, "t/3", &err), 0);
		uint64_t s1 = stats(p).file_bytes;
		physical_close(p);
		size_t len = 0;
		uint8_t *orig = log_read(dir, &len);
		assert_int_equal(len, s1);
		for (uint64_t t = s0; t < s1; t++) {
			log_write(dir, orig, t);
			p = open_dir(dir);
			assert_int_equal(stats(p).torn_bytes, t - s0);
			assert_int_equal(stats(p).file_bytes, s0);
			for (int i = 0; i < 10; i++) {
				snprintf(key, sizeof(key), "t/%d", i);
				snprintf(val, sizeof(val), "value number %d", i);
				sem_expect(p, key, val);
			}
			sem_expect(p, "t/new", NULL);
			sem_put(p, "t/after", "written after recovery");
			physical_close(p);
			p = open_dir(dir);
			assert_int_equal(stats(p).torn_bytes, 0);
			sem_expect(p, "t/after", "written after recovery");
			sem_expect(p, "t/5", "value number 5");
			physical_close(p);
		}
		/* and the untruncated log has the last write */
		log_write(dir, orig, len);
		p = open_dir(dir);
		sem_expect(p, "t/new", kind == NEW ? "the last, torn value" : NULL);
		sem_expect(p, "t/5", kind == OVERWRITE ? "overwritten, torn" : "value number 5");
		sem_expect(p, "t/3", kind == DELETE ? NULL : "value number 3");
		physical_close(p);
		free(orig);
		tmpdir_free(dir);
	}
}

/* ---- corruption ------------------------------------------------------------- */

/* Put a..e; return the offset of c's record. */
static uint64_t five_keys(struct physical *p)
{
	uint64_t off = 0;
	const char *keys[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 5; i++) {
		if (i == 2)
			off = stats(p).file_bytes;
		char val[64];
		snprintf(val, sizeof(val), "the secret value of %s", keys[i]);
		sem_put(p, keys[i], val);
	}
	return off;
}

static void expect_corrupt(struct physical *p, const char *key)
{
	struct verr err = {0};
	uint8_t *out = (uint8_t *)"x";
	size_t len = 7;
	assert_int_equal(physical_get(p, key, &out, &len, &err), VERR_INTERNAL);
	assert_null(out);
	char want[128];
	snprintf(want, sizeof(want), "storage entry for %s is corrupt", key);
	assert_string_equal(err.msg, want);
}

static void test_physical_file__bit_rot_in_value_fails_that_key(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	uint64_t off = five_keys(p);
	physical_close(p);
	log_flip(dir, off + PHYSICAL_FILE_RECORD_HDR + 1 + 4); /* inside c's value */
	p = open_dir(dir);
	assert_int_equal(stats(p).corrupt_records, 1);
	expect_corrupt(p, "c");
	sem_expect(p, "b", "the secret value of b");
	sem_expect(p, "d", "the secret value of d");
	sem_expect_list(p, "", (const char *const[]){"a", "b", "c", "d", "e", NULL});
	/* compaction must not launder the damage */
	struct verr err = {0};
	assert_int_equal(physical_file__compact(p, &err), 0);
	expect_corrupt(p, "c");
	sem_expect(p, "e", "the secret value of e");
	/* overwriting repairs the key */
	sem_put(p, "c", "fresh");
	sem_expect(p, "c", "fresh");
	physical_close(p);
	p = open_dir(dir);
	assert_int_equal(stats(p).corrupt_records, 0);
	sem_expect(p, "c", "fresh");
	physical_close(p);
	tmpdir_free(dir);
}

static void test_physical_file__bit_rot_detected_while_open(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	uint64_t off = five_keys(p);
	sem_expect(p, "c", "the secret value of c");
	log_flip(dir, off + PHYSICAL_FILE_RECORD_HDR + 1 + 10);
	expect_corrupt(p, "c");
	sem_expect(p, "a", "the secret value of a");
	/* a flipped key byte is caught too (header checksum covers the key) */
	log_flip(dir, off + PHYSICAL_FILE_RECORD_HDR + 1 + 10);
	sem_expect(p, "c", "the secret value of c");
	log_flip(dir, off + PHYSICAL_FILE_RECORD_HDR);
	expect_corrupt(p, "c");
	physical_close(p);
	tmpdir_free(dir);
}

static void test_physical_file__bit_rot_in_header_refuses_start(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	uint64_t off = five_keys(p);
	physical_close(p);
	size_t len = 0;
	uint8_t *orig = log_read(dir, &len);
	/* any byte of c's header or key: acknowledged records follow it */
	for (uint64_t b = off; b < off + PHYSICAL_FILE_RECORD_HDR + 1; b++) {
		log_write(dir, orig, len);
		log_flip(dir, b);
		struct verr err = {0};
		assert_int_equal(open_dir_err(dir, &err), VERR_INTERNAL);
		assert_non_null(strstr(err.msg, "corrupt at offset"));
	}
	/* the file is left untouched for the operator */
	size_t len2 = 0;
	uint8_t *now = log_read(dir, &len2);
	assert_int_equal(len2, len);
	free(now);
	/* a bad file header is refused as well */
	log_write(dir, orig, len);
	log_flip(dir, 3);
	struct verr err = {0};
	assert_int_equal(open_dir_err(dir, &err), VERR_INTERNAL);
	assert_non_null(strstr(err.msg, "not a Coffer storage log"));
	free(orig);
	tmpdir_free(dir);

	/* after compaction every record is one fsync'ed batch: damage in the
	 * middle of it is still bit rot, not a torn tail */
	dir = tmpdir_new();
	p = open_dir(dir);
	five_keys(p);
	assert_int_equal(physical_file__compact(p, &err), 0);
	uint64_t rec = (stats(p).file_bytes - PHYSICAL_FILE_HDR) / 5; /* equal sizes */
	physical_close(p);
	log_flip(dir, PHYSICAL_FILE_HDR + 2 * rec + 1);
	assert_int_equal(open_dir_err(dir, &err), VERR_INTERNAL);
	assert_non_null(strstr(err.msg, "corrupt at offset"));
	tmpdir_free(dir);
}

/* ---- concurrency ------------------------------------------------------------ */

struct wctx {
	struct physical *p;
	int tid, n;
	int prefix_all; /* key space: w/<tid>/<i> */
	_Atomic int *acked;
};

static void *writer(void *arg)
{
	struct wctx *w = arg;
	char key[64], val[96];
	for (int i = 0; i < w->n; i++) {
		struct verr err = {0};
		snprintf(key, sizeof(key), "w/%d/%d", w->tid, i);
		snprintf(val, sizeof(val), "value of %d/%d", w->tid, i);
		if (physical_put(w->p, key, (const uint8_t *)val, strlen(val), &err))
			return (void *)1;
		if (w->acked)
			atomic_store(&w->acked[w->tid], i + 1);
	}
	return NULL;
}

static double run_writers(struct physical *p, int threads, int per, _Atomic int *acked)
{
	pthread_t th[64];
	struct wctx ctx[64];
	double t0 = now_s();
	for (int t = 0; t < threads; t++) {
		ctx[t] = (struct wctx){.p = p, .tid = t, .n = per, .acked = acked};
		assert_int_equal(pthread_create(&th[t], NULL, writer, &ctx[t]), 0);
	}
	for (int t = 0; t < threads; t++) {
		void *r = NULL;
		pthread_join(th[t], &r);
		assert_null(r);
	}
	return now_s() - t0;
}

static void check_writers(struct physical *p, int threads, int per)
{
	char key[64], val[96];
	for (int t = 0; t < threads; t++)
		for (int i = 0; i < per; i++) {
			snprintf(key, sizeof(key), "w/%d/%d", t, i);
			snprintf(val, sizeof(val), "value of %d/%d", t, i);
			sem_expect(p, key, val);
		}
}

static void test_physical_file__concurrent_puts(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	run_writers(p, 8, 1000, NULL);
	assert_int_equal(stats(p).keys, 8000);
	check_writers(p, 8, 1000);
	physical_close(p);
	p = open_dir(dir);
	check_writers(p, 8, 1000);
	physical_close(p);
	tmpdir_free(dir);
}

static void test_physical_file__group_commit_shares_fsyncs(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	double t1 = run_writers(p, 1, 500, NULL);
	struct physical_file_stats s1 = stats(p);
	physical_close(p);
	tmpdir_free(dir);

	dir = tmpdir_new();
	p = open_dir(dir);
	double t32 = run_writers(p, 32, 200, NULL);
	struct physical_file_stats s32 = stats(p);
	check_writers(p, 32, 200);
	physical_close(p);
	tmpdir_free(dir);

	print_message("[ bench    ] 1 writer:   %8.0f writes/s, %.3f fsyncs/write\n",
		      500 / t1, (double)s1.fsyncs / (double)s1.writes);
	print_message("[ bench    ] 32 writers: %8.0f writes/s, %.3f fsyncs/write\n",
		      6400 / t32, (double)s32.fsyncs / (double)s32.writes);
	assert_int_equal(s1.writes, 500);
	assert_int_equal(s1.fsyncs, 500); /* alone, each write pays its own */
	assert_int_equal(s32.writes, 6400);
	assert_true(s32.fsyncs < s32.writes);
}

struct rctx {
	struct physical *p;
	int writers;
	_Atomic int *acked;
	_Atomic int *stop;
	int failures;
	long reads;
};

static void *reader(void *arg)
{
	struct rctx *r = arg;
	char key[64], val[96];
	unsigned seed = 12345;
	while (!atomic_load(r->stop)) {
		int t = (int)(rand_r(&seed) % (unsigned)r->writers);
		int upto = atomic_load(&r->acked[t]);
		if (!upto)
			continue;
		int i = (int)(rand_r(&seed) % (unsigned)upto);
		snprintf(key, sizeof(key), "w/%d/%d", t, i);
		snprintf(val, sizeof(val), "value of %d/%d", t, i);
		uint8_t *out = NULL;
		size_t len = 0;
		struct verr err = {0};
		if (physical_get(r->p, key, &out, &len, &err) || !out || len != strlen(val) ||
		    memcmp(out, val, len))
			r->failures++;
		free(out);
		r->reads++;
	}
	return NULL;
}

/* Readers run alongside writers and always find every acknowledged write. */
static void test_physical_file__readers_see_acknowledged_writes(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	physical_file__set_compact_min(p, 0);
	_Atomic int acked[8] = {0};
	_Atomic int stop = 0;
	pthread_t rt[4];
	struct rctx rc[4];
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct rctx){.p = p, .writers = 8, .acked = acked, .stop = &stop};
		assert_int_equal(pthread_create(&rt[i], NULL, reader, &rc[i]), 0);
	}
	run_writers(p, 8, 300, acked);
	struct verr err = {0};
	assert_int_equal(physical_file__compact(p, &err), 0); /* with readers running */
	atomic_store(&stop, 1);
	long reads = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(rt[i], NULL);
		assert_int_equal(rc[i].failures, 0);
		reads += rc[i].reads;
	}
	assert_true(reads > 0);
	check_writers(p, 8, 300);
	physical_close(p);
	tmpdir_free(dir);
}

/* 100,000 keys: the index costs little beyond the key strings. */
static void test_physical_file__index_memory(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	skip(); /* ASan's allocator does not report through mallinfo2 */
#endif
	enum { THREADS = 32, PER = 3125 };
	char *dir = tmpdir_new();
	struct physical *p = open_dir(dir);
	run_writers(p, THREADS, PER, NULL);
	physical_close(p);
	size_t keybytes = 0;
	char key[64];
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER; i++)
			keybytes += (size_t)snprintf(key, sizeof(key), "w/%d/%d", t, i);
	malloc_trim(0);
	struct mallinfo2 m0 = mallinfo2();
	double t0 = now_s();
	p = open_dir(dir);
	double topen = now_s() - t0;
	struct mallinfo2 m1 = mallinfo2();
	size_t n = THREADS * PER;
	assert_int_equal(stats(p).keys, n);
	double per_key = ((double)m1.uordblks - (double)m0.uordblks - (double)keybytes) / (double)n;
	print_message("[ memory   ] %zu keys: %.1f bytes of index per key beyond the key;"
		      " open took %.3f s\n",
		      n, per_key, topen);
	assert_true(per_key <= 150.0);
	sem_expect(p, "w/17/3000", "value of 17/3000");
	physical_close(p);
	tmpdir_free(dir);
}

int main(void)
{
	log_set_level(LOG_OFF);
	const struct CMUnitTest tests[] = {
		SEMANTICS_TESTS(sem_setup, sem_teardown),
		cmocka_unit_test(test_physical_file__config_errors),
		cmocka_unit_test(test_physical_file__private_dir_and_files),
		cmocka_unit_test(test_physical_file__lock_excludes_second_open),
		cmocka_unit_test(test_physical_file__reopen_persists),
		cmocka_unit_test(test_physical_file__bulk_replay_matches_live_index),
		cmocka_unit_test(test_physical_file__compaction_preserves_data),
		cmocka_unit_test(test_physical_file__leftover_compaction_file_ignored),
		cmocka_unit_test(test_physical_file__torn_tail_every_offset),
		cmocka_unit_test(test_physical_file__bit_rot_in_value_fails_that_key),
		cmocka_unit_test(test_physical_file__bit_rot_detected_while_open),
		cmocka_unit_test(test_physical_file__bit_rot_in_header_refuses_start),
		cmocka_unit_test(test_physical_file__concurrent_puts),
		cmocka_unit_test(test_physical_file__group_commit_shares_fsyncs),
		cmocka_unit_test(test_physical_file__readers_see_acknowledged_writes),
		cmocka_unit_test(test_physical_file__index_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
