/*
 * Unit tests for util/metrics_sink.c: the statsd and dogstatsd lines a real
 * UDP socket in this process receives (Vault's names, |ms |c |g, labels
 * flattened or as tags, unsafe characters replaced), datagrams of at most
 * 1432 bytes with no line split, and bad addresses refused by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/metrics.h"
#include "util/verr.h"

static int listener(int *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	*port = ntohs(a.sin_port);
	return fd;
}

/* every datagram within `ms` (the gauges come every second, so 1.5 s sees
 * them), newline-joined into out; returns the largest size */
static size_t receive(int fd, int ms, struct buf *out, size_t *ngrams)
{
	size_t max = 0;
	char d[65536];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t end = metrics_now() + (uint64_t)ms * 1000000u;
	for (uint64_t now = metrics_now(); now < end; now = metrics_now()) {
		if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0)
			continue;
		ssize_t n = recv(fd, d, sizeof(d), 0);
		if (n <= 0)
			break;
		if ((size_t)n > max)
			max = (size_t)n;
		buf_add(out, d, (size_t)n);
		buf_char(out, '\n');
		(*ngrams)++;
	}
	buf_char(out, '\0');
	return max;
}

static void test_util_metrics_sink__statsd_and_dogstatsd_lines(void **state)
{
	struct metrics_config mc = {.prometheus_retention_s = 60, .disable_hostname = true};
	metrics_configure(&mc);
	int sp, dp;
	int sfd = listener(&sp), dfd = listener(&dp);
	char sa[64], da[64];
	snprintf(sa, sizeof(sa), "127.0.0.1:%d", sp);
	snprintf(da, sizeof(da), "127.0.0.1:%d", dp);
	const char *tags[] = {"env:unit", "bad|tag", NULL};
	struct metrics_sink_config sc = {.statsd_address = sa, .dogstatsd_addr = da,
					 .dogstatsd_tags = tags};
	struct verr e = {0};
	assert_int_equal(metrics_sinks_start(&sc, &e), 0);
	struct metric *h = metrics_get(METRIC_HISTOGRAM, "vault.core.handle_request", NULL);
	metrics_observe(h, 1250000); /* 1.25 ms */
	metrics_observe(h, 512);     /* 0.000512 ms */
	metrics_observe(h, 1000000000ull * 3 + 7000); /* 3000.007 ms */
	const char *l[] = {"mount_point", "auth/user pass:x/", "result", "success", NULL};
	metrics_incr("vault.auth.login", l);
	metrics_gauge("vault.test.gauge", NULL, 42);
	/* many lines: more than one datagram */
	for (int i = 0; i < 300; i++)
		metrics_observe(h, 2000000);

	struct buf sb, db;
	buf_init(&sb, 0);
	buf_init(&db, 0);
	size_t sg = 0, dg = 0;
	size_t smax = receive(sfd, 1500, &sb, &sg);
	size_t dmax = receive(dfd, 200, &db, &dg); /* queued meanwhile */
	metrics_sinks_stop();
	assert_true(smax > 0 && smax <= 1432);
	assert_true(dmax > 0 && dmax <= 1432);
	assert_true(sg >= 5); /* 300 lines of ~30 bytes cannot fit in fewer */
	assert_non_null(strstr(sb.p, "vault.core.handle_request:1.25|ms\n"));
	assert_non_null(strstr(sb.p, "vault.core.handle_request:2|ms\n"));
	assert_non_null(strstr(sb.p, "vault.core.handle_request:0.000512|ms\n"));
	assert_non_null(strstr(sb.p, "vault.core.handle_request:3000.007|ms\n"));
	/* statsd: label values appended with dots, ':' and ' ' replaced */
	assert_non_null(strstr(sb.p, "vault.auth.login.auth/user_pass_x/.success:1|c\n"));
	assert_non_null(strstr(sb.p, "vault.test.gauge:42|g\n"));
	/* dogstatsd: tags, the configured ones first; '|' cannot end a tag */
	assert_non_null(strstr(db.p, "vault.core.handle_request:1.25|ms|#env:unit,bad_tag\n"));
	assert_non_null(strstr(db.p, "vault.auth.login:1|c|#env:unit,bad_tag,mount_point:auth/user "
				     "pass:x/,result:success\n"));
	assert_non_null(strstr(db.p, "vault.test.gauge:42|g|#env:unit,bad_tag\n"));
	/* each line whole: every line parses as name:value|type */
	for (char *p = sb.p; *p;) {
		char *nl = strchr(p, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (*p) {
			char *colon = strrchr(p, ':'), *bar = strchr(p, '|');
			assert_non_null(colon);
			assert_non_null(bar);
			assert_true(colon < bar);
		}
		p = nl + 1;
	}
	buf_free(&sb);
	buf_free(&db);
	close(sfd);
	close(dfd);
}

static void test_util_metrics_sink__bad_addresses(void **state)
{
	static const struct {
		const char *addr, *msg;
	} cases[] = {
		{"localhost", "telemetry: statsd_address \"localhost\": expected host:port"},
		{":8125", "expected host:port"},
		{"127.0.0.1:", "bad port"},
		{"127.0.0.1:81x", "bad port"},
		{"[::1:8125", "expected host:port"},
		{"no.such.host.invalid:8125", "statsd_address \"no.such.host.invalid:8125\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct metrics_sink_config sc = {.statsd_address = cases[i].addr};
		struct verr e = {0};
		assert_int_equal(metrics_sinks_start(&sc, &e), VERR_INVALID);
		if (!strstr(e.msg, cases[i].msg))
			fail_msg("%s: %s", cases[i].addr, e.msg);
	}
	/* nothing configured: nothing started */
	struct metrics_sink_config none = {0};
	struct verr e = {0};
	assert_int_equal(metrics_sinks_start(&none, &e), 0);
	metrics_sinks_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_metrics_sink__statsd_and_dogstatsd_lines),
		cmocka_unit_test(test_util_metrics_sink__bad_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
