/*
 * Unit tests for util/metrics.c: Vault names sanitised for Prometheus,
 * counters summed across threads (shards), histogram buckets cumulative and
 * in milliseconds, labels escaped, kind conflicts refused, the cardinality
 * cap, retention, the three formats and the "prometheus is not enabled"
 * error, and the render cost of a 1,000-series scrape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

#include "util/metrics.h"
#include "util/verr.h"

static void enable(int64_t retention)
{
	struct metrics_config c = {.prometheus_retention_s = retention, .disable_hostname = true};
	metrics_configure(&c);
}

static char *render(enum metrics_format f)
{
	struct buf b;
	struct verr e = {0};
	buf_init(&b, 0);
	assert_int_equal(metrics_render(&b, f, &e), 0);
	return buf_take(&b, NULL);
}

static void test_util_metrics__prometheus_names_and_histogram(void **state)
{
	enable(3600);
	metrics_reset_for_tests();
	uint64_t t0 = metrics_now();
	METRICS_SINCE("vault.core.handle_request", t0);
	/* an upper bound on that first observation: a loaded machine may stall here */
	uint64_t first = metrics_now() - t0;
	struct metric *h = metrics_get(METRIC_HISTOGRAM, "vault.core.handle_request", NULL);
	assert_non_null(h);
	metrics_observe(h, 200000);   /* 0.2 ms */
	metrics_observe(h, 3000000);  /* 3 ms */
	metrics_observe(h, 20000000000ull); /* 20 s: only +Inf */
	metrics_incr("vault.route.read.secret-", NULL);
	char *t = render(METRICS_PROMETHEUS);
	/* Vault's summary under Vault's name: quantiles, _sum in ms, _count */
	assert_non_null(strstr(t, "# TYPE vault_core_handle_request summary\n"));
	assert_non_null(strstr(t, "vault_core_handle_request{quantile=\"0.5\"} "));
	assert_non_null(strstr(t, "vault_core_handle_request{quantile=\"0.99\"} "));
	assert_non_null(strstr(t, "vault_core_handle_request_count 4\n"));
	/* 0.2 + 3 + 20000 ms plus the first (tiny) observation */
	const char *sum = strstr(t, "vault_core_handle_request_sum ");
	assert_non_null(sum);
	double v = strtod(sum + strlen("vault_core_handle_request_sum "), NULL);
	assert_true(v >= 20003.2 && v <= 20003.2 + (double)first / 1e6 + 0.001);
	/* the histogram under <name>_seconds, buckets and _sum in seconds */
	assert_non_null(strstr(t, "# TYPE vault_core_handle_request_seconds histogram\n"));
	if (first < 250000)
		assert_non_null(strstr(t, "vault_core_handle_request_seconds_bucket{le=\"0.00025\"} 2\n"));
	else /* the stall may have come after the observation */
		assert_true(strstr(t, "vault_core_handle_request_seconds_bucket{le=\"0.00025\"} 1\n") ||
			    strstr(t, "vault_core_handle_request_seconds_bucket{le=\"0.00025\"} 2\n"));
	assert_non_null(strstr(t, "vault_core_handle_request_seconds_bucket{le=\"10.0\"} 3\n"));
	assert_non_null(strstr(t, "vault_core_handle_request_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(t, "vault_core_handle_request_seconds_count 4\n"));
	sum = strstr(t, "vault_core_handle_request_seconds_sum ");
	assert_non_null(sum);
	v = strtod(sum + strlen("vault_core_handle_request_seconds_sum "), NULL);
	assert_true(v >= 20.0032 && v <= 20.0032 + (double)first / 1e9 + 0.000001);
	/* one TYPE per family name */
	assert_null(strstr(strstr(t, "# TYPE vault_core_handle_request summary") + 1,
			   "# TYPE vault_core_handle_request summary"));
	/* the '-' of Vault's route key becomes '_', as its sink does */
	assert_non_null(strstr(t, "# TYPE vault_route_read_secret_ counter\nvault_route_read_secret_ 1\n"));
	/* runtime gauges of this process */
	assert_non_null(strstr(t, "# TYPE vault_runtime_rss_bytes gauge\n"));
	assert_non_null(strstr(t, "vault_runtime_open_fds "));
	free(t);
}

static void test_util_metrics__labels_escaped_and_kinds(void **state)
{
	enable(3600);
	metrics_reset_for_tests();
	const char *l1[] = {"mount", "auth/user\"pass/", "result", "success", NULL};
	const char *l2[] = {"mount", "auth/user\"pass/", "result", "failure", NULL};
	metrics_incr("vault.auth.login", l1);
	metrics_incr("vault.auth.login", l1);
	metrics_incr("vault.auth.login", l2);
	assert_true(metrics_value_for_tests("vault.auth.login", l1) == 2);
	assert_true(metrics_value_for_tests("vault.auth.login", l2) == 1);
	/* the same name as another kind is refused, not mixed into one family */
	assert_null(metrics_get(METRIC_GAUGE, "vault.auth.login", l1));
	char *t = render(METRICS_PROMETHEUS);
	assert_non_null(strstr(t, "vault_auth_login{mount=\"auth/user\\\"pass/\",result=\"success\"} 2\n"));
	assert_non_null(strstr(t, "vault_auth_login{mount=\"auth/user\\\"pass/\",result=\"failure\"} 1\n"));
	/* one TYPE line per family */
	const char *first = strstr(t, "# TYPE vault_auth_login ");
	assert_non_null(first);
	assert_null(strstr(first + 1, "# TYPE vault_auth_login "));
	free(t);
}

#define NTHREADS 4
#define PER_THREAD 100000

static void *adder(void *arg)
{
	struct metric *m = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_add(m, 1);
		METRICS_INC("vault.test.threads");
	}
	return NULL;
}

static void test_util_metrics__counters_exact_across_threads(void **state)
{
	metrics_reset_for_tests();
	struct metric *m = metrics_get(METRIC_COUNTER, "vault.test.direct", NULL);
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, adder, m);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	assert_true(metrics_value_for_tests("vault.test.direct", NULL) == NTHREADS * PER_THREAD);
	assert_true(metrics_value_for_tests("vault.test.threads", NULL) == NTHREADS * PER_THREAD);
}

static void test_util_metrics__disabled_and_formats(void **state)
{
	enable(0);
	struct buf b;
	struct verr e = {0};
	buf_init(&b, 0);
	assert_int_equal(metrics_render(&b, METRICS_PROMETHEUS, &e), VERR_INVALID);
	assert_string_equal(e.msg, "prometheus is not enabled");
	/* JSON (Vault's default format) works without Prometheus */
	assert_int_equal(metrics_render(&b, METRICS_JSON, &e), 0);
	json_t *j = json_loads(b.p, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_array(json_object_get(j, "Gauges")));
	assert_true(json_is_array(json_object_get(j, "Counters")));
	assert_true(json_is_array(json_object_get(j, "Samples")));
	assert_non_null(json_object_get(j, "Timestamp"));
	json_decref(j);
	buf_free(&b);

	assert_int_equal(metrics_format_parse(NULL, NULL), METRICS_JSON);
	assert_int_equal(metrics_format_parse("prometheus", "text/plain"), METRICS_PROMETHEUS);
	assert_int_equal(metrics_format_parse("prometheus",
					      "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
			 METRICS_OPENMETRICS);
	assert_int_equal(metrics_format_parse("xml", NULL), -1);
	assert_string_equal(metrics_content_type(METRICS_PROMETHEUS),
			    "text/plain; version=0.0.4; charset=utf-8");
}

static void test_util_metrics__openmetrics_and_hostname(void **state)
{
	struct metrics_config c = {.prometheus_retention_s = 60, .disable_hostname = false,
				   .prefix = "coffer"};
	metrics_configure(&c);
	metrics_reset_for_tests();
	metrics_gauge("vault.core.unsealed", NULL, 1);
	metrics_incr("vault.audit.log_request_failure", NULL);
	struct buf b;
	struct verr e = {0};
	buf_init(&b, 0);
	assert_int_equal(metrics_render(&b, METRICS_OPENMETRICS, &e), 0);
	char host[256] = {0};
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			*p = '_';
	char want[512];
	/* Vault puts the host name into gauge keys unless disable_hostname */
	snprintf(want, sizeof(want), "coffer_%s_core_unsealed 1\n", host);
	assert_non_null(strstr(b.p, want));
	/* counters keep Vault's sample name in OpenMetrics (type unknown) */
	assert_non_null(strstr(b.p, "# TYPE coffer_audit_log_request_failure unknown\n"
				    "coffer_audit_log_request_failure 1\n"));
	assert_true(b.len > 6 && !strcmp(b.p + b.len - 6, "# EOF\n"));
	buf_free(&b);
	enable(3600);
}

static void test_util_metrics__retention_hides_stale_series(void **state)
{
	enable(3600);
	metrics_reset_for_tests();
	metrics_incr("vault.test.stale", NULL);
	char *t = render(METRICS_PROMETHEUS);
	assert_non_null(strstr(t, "vault_test_stale 1\n"));
	free(t);
	/* a retention of one second: after two idle seconds it is gone */
	enable(1);
	sleep(3);
	t = render(METRICS_PROMETHEUS);
	assert_null(strstr(t, "vault_test_stale "));
	free(t);
	metrics_incr("vault.test.stale", NULL); /* updated again: back */
	t = render(METRICS_PROMETHEUS);
	assert_non_null(strstr(t, "vault_test_stale 2\n"));
	free(t);
	enable(3600);
}

static void test_util_metrics__scrape_of_1000_series_is_cheap(void **state)
{
	enable(3600);
	metrics_reset_for_tests();
	char name[64];
	/* 100 histograms (20 samples each) and 100 counters: 2,100 series lines */
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "vault.route.read.mount%d-", i);
		metrics_since(name, NULL, metrics_now() - (uint64_t)i * 100000);
		snprintf(name, sizeof(name), "vault.test.counter%d", i);
		metrics_incr(name, NULL);
	}
	char *t = render(METRICS_PROMETHEUS);
	size_t lines = 0;
	for (const char *p = t; *p; p++)
		if (*p == '\n' && p[1] != '#')
			lines++;
	free(t);
	assert_true(lines >= 1000);
	uint64_t best = UINT64_MAX;
	for (int r = 0; r < 20; r++) {
		uint64_t t0 = metrics_now();
		t = render(METRICS_PROMETHEUS);
		uint64_t dt = metrics_now() - t0;
		free(t);
		if (dt < best)
			best = dt;
	}
	printf("scrape of %zu series: %.3f ms (best of 20)\n", lines, (double)best / 1e6);
	/* the target is 2 ms for 1,000 series; this render has ~2,600 (the
	 * summaries add 5 lines per latency), so scale it to 1,000 */
	assert_true((double)best * 1000.0 / (double)lines < 2000000);
}

static double quantile_of(const char *t, const char *series)
{
	const char *p = strstr(t, series);
	assert_non_null(p);
	return strtod(p + strlen(series), NULL);
}

static void test_util_metrics__summary_quantiles_over_window(void **state)
{
	enable(3600);
	metrics_reset_for_tests();
	struct metric *h = metrics_get(METRIC_HISTOGRAM, "vault.test.q", NULL);
	/* no observation yet in the window: NaN, as Prometheus' summaries */
	char *t = render(METRICS_PROMETHEUS);
	free(t);
	/* 1..1000 us: p50 = 0.5 ms, p90 = 0.9 ms, p99 = 0.99 ms */
	for (uint64_t i = 1; i <= 1000; i++)
		metrics_observe(h, i * 1000);
	t = render(METRICS_PROMETHEUS);
	double q50 = quantile_of(t, "vault_test_q{quantile=\"0.5\"} ");
	double q90 = quantile_of(t, "vault_test_q{quantile=\"0.9\"} ");
	double q99 = quantile_of(t, "vault_test_q{quantile=\"0.99\"} ");
	printf("p50 %.4f p90 %.4f p99 %.4f ms\n", q50, q90, q99);
	/* within the 9 %-wide bucket, interpolated */
	assert_true(q50 > 0.5 * 0.95 && q50 < 0.5 * 1.05);
	assert_true(q90 > 0.9 * 0.95 && q90 < 0.9 * 1.05);
	assert_true(q99 > 0.99 * 0.95 && q99 < 0.99 * 1.05);
	free(t);
	/* a slow minority moves p99, not p50 */
	for (int i = 0; i < 30; i++)
		metrics_observe(h, 2000000000ull); /* 2 s */
	t = render(METRICS_PROMETHEUS);
	assert_true(quantile_of(t, "vault_test_q{quantile=\"0.5\"} ") < 0.6);
	assert_true(quantile_of(t, "vault_test_q{quantile=\"0.99\"} ") > 1800);
	free(t);
	/* the window is 10 s: 12 s later the quantiles are NaN again, _count stays */
	sleep(12);
	t = render(METRICS_PROMETHEUS);
	assert_non_null(strstr(t, "vault_test_q{quantile=\"0.5\"} NaN\n"));
	assert_non_null(strstr(t, "vault_test_q_count 1030\n"));
	free(t);
	/* a new observation after the gap counts alone */
	metrics_observe(h, 7000000); /* 7 ms */
	t = render(METRICS_PROMETHEUS);
	double q = quantile_of(t, "vault_test_q{quantile=\"0.5\"} ");
	assert_true(q > 6.4 && q < 7.7);
	free(t);
}

static void test_util_metrics__cap_and_null_safety(void **state)
{
	metrics_reset_for_tests();
	char name[64];
	struct metric *last = NULL;
	int made = 0;
	for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
		snprintf(name, sizeof(name), "vault.test.cap%d", i);
		last = metrics_get(METRIC_COUNTER, name, NULL);
		if (last)
			made++;
	}
	assert_null(last);
	assert_true(made <= METRICS_MAX_SERIES);
	metrics_add(NULL, 1);
	metrics_observe(NULL, 1);
	metrics_set(NULL, 1);
	/* an existing series is still found past the cap */
	assert_non_null(metrics_get(METRIC_COUNTER, "vault.test.cap0", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_metrics__prometheus_names_and_histogram),
		cmocka_unit_test(test_util_metrics__labels_escaped_and_kinds),
		cmocka_unit_test(test_util_metrics__counters_exact_across_threads),
		cmocka_unit_test(test_util_metrics__disabled_and_formats),
		cmocka_unit_test(test_util_metrics__openmetrics_and_hostname),
		cmocka_unit_test(test_util_metrics__retention_hides_stale_series),
		cmocka_unit_test(test_util_metrics__scrape_of_1000_series_is_cheap),
		cmocka_unit_test(test_util_metrics__summary_quantiles_over_window),
		/* last: fills the registry */
		cmocka_unit_test(test_util_metrics__cap_and_null_safety),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
