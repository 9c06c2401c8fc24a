/*
 * tests/unit/audit/file.c - the file audit device (src/audit/file.c) under
 * a real short write: RLIMIT_FSIZE lets the kernel accept only part of a
 * write (as a full disk does mid-line) and then refuse with EFBIG. The
 * failed entry fails closed, the file is truncated back to its last
 * complete line, later entries are written, and the chain verifies with
 * the failure recorded. Before the roll-back, the partial line stayed, the
 * next entry was appended to it, and the verifier reported tampering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "core/audit_broker.h"

static const struct audit_device_ops *const types[] = {&audit_file_ops, NULL};

struct fx {
	struct physical *phys;
	struct audit_broker *b;
	char dir[64], path[96];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-audit-file-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
	assert_int_equal(physical_inmem_new(&f->phys, NULL, NULL), 0);
	struct audit_broker_opts o = {.phys = f->phys, .types = types};
	struct verr err = {0};
	assert_int_equal(audit_broker_new(&f->b, &o, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	audit_broker_free(f->b);
	physical_close(f->phys);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int log_one(struct audit_broker *b, int i)
{
	json_t *e = json_pack("{s:s,s:s,s:{s:i,s:s,s:{s:s}}}", "time", "2026-01-01T00:00:00Z",
			      "type", "request", "request", "n", i, "path", "secret/x", "data", "pw",
			      "a-fairly-long-secret-value-so-the-line-is-long");
	struct verr err = {0};
	int rc = audit_broker_log(b, e, &err);
	json_decref(e);
	return rc;
}

static off_t file_size(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return st.st_size;
}

static char *slurp(const char *p, size_t *len)
{
	FILE *fp = fopen(p, "rb");
	assert_non_null(fp);
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	return buf;
}

static void verify(struct fx *f, struct cli_chain_result *r)
{
	char *k = NULL;
	struct verr err = {0};
	assert_int_equal(audit_broker_chain_key(f->b, "file", &k, &err), 0);
	unsigned char key[48];
	assert_int_equal(EVP_DecodeBlock(key, (const unsigned char *)k, (int)strlen(k)), 33);
	free(k);
	size_t len = 0;
	char *buf = slurp(f->path, &len);
	cli_chain_verify(r, key, 32, buf, len && buf[len - 1] == '\n' ? len - 1 : len);
	free(buf);
}

static void test_audit_file__short_write_rolled_back(void **state)
{
	struct fx *f = *state;
	char opts[256];
	snprintf(opts, sizeof(opts), "{\"file_path\":\"%s\"}", f->path);
	json_t *o = json_loads(opts, 0, NULL);
	struct verr err = {0};
	assert_int_equal(audit_broker_enable(f->b, "file", "file", "", o, false, &err), 0);
	json_decref(o);
	assert_int_equal(log_one(f->b, 1), 0);
	assert_int_equal(log_one(f->b, 2), 0);
	off_t before = file_size(f->path);
	assert_true(before > 200);

	/* room for 40 more bytes: the next line is cut, then EFBIG */
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)before + 40;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(log_one(f->b, 3), VERR_INTERNAL); /* fail closed */
	off_t after = file_size(f->path);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(after, before); /* the partial line was taken back */

	assert_int_equal(log_one(f->b, 4), 0);
	assert_int_equal(log_one(f->b, 5), 0);
	struct cli_chain_result r;
	verify(f, &r);
	if (r.problem != CLI_CHAIN_OK)
		fail_msg("line %zu: %s", r.line, r.reason);
	/* 2 entries, the failure entry, 2 entries; the failed one is not there */
	assert_int_equal(r.entries, 5);
	assert_int_equal(r.failures, 1);
	assert_int_equal(r.torn, 0);
	size_t len = 0;
	char *buf = slurp(f->path, &len);
	assert_null(strstr(buf, "\"n\":3,"));
	assert_non_null(strstr(buf, "\"type\":\"audit_write_failed\",\"failed_writes\":1,"
				    "\"error\":\"audit log write failed: File too large\""));
	assert_non_null(strstr(buf, "\"n\":5,"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_audit_file__short_write_rolled_back, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
