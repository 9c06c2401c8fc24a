/*
 * tests/unit/cli/audit_chain.c - the tamper-evident audit log verifier:
 * build a genuine chain (docs/cli.md format), then alter, delete, insert and
 * swap lines and check the first bad line number and the verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";

#define NLINES 6

/* Lines of a genuine log, each with its chain member appended. */
static void build(char lines[NLINES][512])
{
	char prev[65] = "";
	for (int i = 0; i < NLINES; i++) {
		char entry[256];
		snprintf(entry, sizeof(entry),
			 "{\"time\":\"2026-01-01T00:00:0%dZ\",\"type\":\"%s\",\"request\":{\"id\":\"r%d\","
			 "\"path\":\"secret/data/x\"}}",
			 i, i % 2 ? "response" : "request", i / 2);
		char mac[65];
		cli_chain_mac(mac, KEY, sizeof(KEY), prev, entry, strlen(entry));
		size_t n = strlen(entry);
		snprintf(lines[i], 512, "%.*s,\"chain\":\"%s\"}", (int)(n - 1), entry, mac);
		memcpy(prev, mac, 65);
	}
}

/* The same, as Coffer's devices write them: ,"seq":N before the chain. */
static void build_seq(char lines[NLINES][512])
{
	char prev[65] = "";
	for (int i = 0; i < NLINES; i++) {
		char entry[256];
		snprintf(entry, sizeof(entry),
			 "{\"time\":\"2026-01-01T00:00:0%dZ\",\"type\":\"request\",\"seq\":%d}", i,
			 i + 1);
		char mac[65];
		cli_chain_mac(mac, KEY, sizeof(KEY), prev, entry, strlen(entry));
		size_t n = strlen(entry);
		snprintf(lines[i], 512, "%.*s,\"chain\":\"%s\"}", (int)(n - 1), entry, mac);
		memcpy(prev, mac, 65);
	}
}

static void verify(struct cli_chain_result *res, char lines[][512], const int *order, int n)
{
	char buf[8192];
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", lines[order[i]]);
	cli_chain_verify(res, KEY, sizeof(KEY), buf, len);
}

static void test_cli_audit_chain__intact_log(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	int order[] = {0, 1, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_OK);
	assert_int_equal(r.entries, NLINES);
	assert_string_equal(r.reason, "ok, 6 entries");
}

static void test_cli_audit_chain__altered_line(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	char *p = strstr(l[3], "secret/data/x");
	p[12] = 'y'; /* edit the path of line 4 */
	int order[] = {0, 1, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_ALTERED);
	assert_int_equal(r.line, 4);
	assert_non_null(strstr(r.reason, "altered"));
}

static void test_cli_audit_chain__altered_chain_value(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	char *p = strstr(l[2], "\"chain\":\"") + 9;
	*p = *p == 'a' ? 'b' : 'a';
	int order[] = {0, 1, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_ALTERED);
	assert_int_equal(r.line, 3);
}

static void test_cli_audit_chain__removed_line(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	int order[] = {0, 1, 3, 4, 5}; /* line 3 deleted: the gap shows at line 3 */
	struct cli_chain_result r;
	verify(&r, l, order, 5);
	assert_int_equal(r.line, 3);
	assert_non_null(strstr(r.reason, "removed"));
	int first[] = {1, 2, 3, 4, 5}; /* the first line deleted */
	verify(&r, l, first, 5);
	assert_int_equal(r.line, 1);
	assert_non_null(strstr(r.reason, "removed"));
}

static void test_cli_audit_chain__removed_lines_by_seq(void **state)
{
	(void)state;
	char l[NLINES][512];
	build_seq(l);
	int order[] = {0, 1, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_OK);
	int gap[] = {0, 1, 4, 5}; /* seq 3 and 4 deleted */
	verify(&r, l, gap, 4);
	assert_int_equal(r.problem, CLI_CHAIN_REMOVED);
	assert_int_equal(r.line, 3);
	assert_string_equal(r.reason, "removed: 2 entries (seq 3 to 4) are missing before this line");
	int head[] = {2, 3, 4, 5}; /* the first two deleted */
	verify(&r, l, head, 4);
	assert_int_equal(r.problem, CLI_CHAIN_REMOVED);
	assert_int_equal(r.line, 1);
	int last[] = {0, 1, 2, 3, 5}; /* the one before the last deleted */
	verify(&r, l, last, 5);
	assert_int_equal(r.problem, CLI_CHAIN_REMOVED);
	assert_int_equal(r.line, 5);
	/* an edited line keeps its seq: still "altered" */
	char *p = strstr(l[2], "request");
	p[0] = 'R';
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_ALTERED);
	assert_int_equal(r.line, 3);
}

static void test_cli_audit_chain__inserted_line(void **state)
{
	(void)state;
	char l[NLINES + 1][512];
	build(l);
	snprintf(l[NLINES], 512, "{\"type\":\"request\",\"forged\":true,\"chain\":\"%064d\"}", 0);
	int order[] = {0, 1, NLINES, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES + 1);
	assert_int_equal(r.problem, CLI_CHAIN_INSERTED);
	assert_int_equal(r.line, 3);
	/* a replayed genuine line is an insertion too */
	int replay[] = {0, 1, 2, 1, 3, 4, 5};
	verify(&r, l, replay, NLINES + 1);
	assert_int_equal(r.problem, CLI_CHAIN_INSERTED);
	assert_int_equal(r.line, 4);
}

static void test_cli_audit_chain__swapped_lines(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	int order[] = {0, 1, 3, 2, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_REORDERED);
	assert_int_equal(r.line, 3);
	assert_non_null(strstr(r.reason, "belongs after line 4"));
}

static void test_cli_audit_chain__line_without_chain(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	snprintf(l[1], 512, "{\"type\":\"response\"}");
	int order[] = {0, 1, 2, 3, 4, 5};
	struct cli_chain_result r;
	verify(&r, l, order, NLINES);
	assert_int_equal(r.problem, CLI_CHAIN_MALFORMED);
	assert_int_equal(r.line, 2);
}

static void test_cli_audit_chain__wrong_key(void **state)
{
	(void)state;
	char l[NLINES][512];
	build(l);
	char buf[8192];
	size_t len = 0;
	for (int i = 0; i < NLINES; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", l[i]);
	struct cli_chain_result r;
	cli_chain_verify(&r, (const unsigned char *)"other key", 9, buf, len);
	assert_int_not_equal(r.problem, CLI_CHAIN_OK);
	assert_int_equal(r.line, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_audit_chain__intact_log),
		cmocka_unit_test(test_cli_audit_chain__altered_line),
		cmocka_unit_test(test_cli_audit_chain__altered_chain_value),
		cmocka_unit_test(test_cli_audit_chain__removed_line),
		cmocka_unit_test(test_cli_audit_chain__removed_lines_by_seq),
		cmocka_unit_test(test_cli_audit_chain__inserted_line),
		cmocka_unit_test(test_cli_audit_chain__swapped_lines),
		cmocka_unit_test(test_cli_audit_chain__line_without_chain),
		cmocka_unit_test(test_cli_audit_chain__wrong_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
