/* test_metrics.c — unit tests of pipeline/metrics.c: exact text rendering of counters, gauges and
 * histograms with labels and escaping, number formatting, family reuse and clearing, and exact
 * totals under concurrent increments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "metrics.h"

static void assert_render(pl_metrics_t *metrics, const char *want)
{
	size_t len = 0;
	char *text = pl_metrics_render(metrics, &len);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text, want);
	pl_free(text);
}

static void empty_registry(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	assert_render(metrics, "");
	pl_metrics_destroy(metrics);
	pl_metrics_destroy(NULL);
}

static void counter_with_labels(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *requests =
	    pl_metrics_family(metrics, "dronepipe_ingress_requests_total", "HTTP requests.",
	                      PL_METRIC_COUNTER, "route, status", NULL, 0);
	pl_metric_t *ok = pl_metric_get(requests, (const char *[]){"/v1/deliveries", "202"});
	pl_metric_inc(ok);
	pl_metric_inc(ok);
	pl_metric_add(pl_metric_get(requests, (const char *[]){"/v1/deliveries", "400"}), 3);
	/* the same label values give the same series */
	assert_ptr_equal(pl_metric_get(requests, (const char *[]){"/v1/deliveries", "202"}), ok);
	pl_metric_add(ok, -5); /* counters never go down */
	assert_true(pl_metric_value(ok) == 2);
	assert_render(metrics, "# HELP dronepipe_ingress_requests_total HTTP requests.\n"
	                       "# TYPE dronepipe_ingress_requests_total counter\n"
	                       "dronepipe_ingress_requests_total{route=\"/v1/deliveries\",status="
	                       "\"202\"} 2\n"
	                       "dronepipe_ingress_requests_total{route=\"/v1/deliveries\",status="
	                       "\"400\"} 3\n");
	pl_metrics_destroy(metrics);
}

static void gauge_and_numbers(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *lag = pl_metrics_family(metrics, "dronepipe_stage_lag_records", "Lag.",
	                                            PL_METRIC_GAUGE, "partition", NULL, 0);
	pl_metric_family_t *g = pl_metrics_family(metrics, "dronepipe_test_value", "Values.",
	                                          PL_METRIC_GAUGE, NULL, NULL, 0);
	pl_metric_set(pl_metric_get(lag, (const char *[]){"0"}), 12345678901.0);
	pl_metric_t *p1 = pl_metric_get(lag, (const char *[]){"1"});
	pl_metric_set(p1, 10);
	pl_metric_add(p1, -12.5);
	pl_metric_t *v = pl_metric_get0(g);
	pl_metric_set(v, 0.1);
	assert_render(metrics, "# HELP dronepipe_stage_lag_records Lag.\n"
	                       "# TYPE dronepipe_stage_lag_records gauge\n"
	                       "dronepipe_stage_lag_records{partition=\"0\"} 12345678901\n"
	                       "dronepipe_stage_lag_records{partition=\"1\"} -2.5\n"
	                       "# HELP dronepipe_test_value Values.\n"
	                       "# TYPE dronepipe_test_value gauge\n"
	                       "dronepipe_test_value 0.1\n");
	static const struct {
		double value;
		const char *text;
	} cases[] = {{INFINITY, "+Inf"},
	             {-INFINITY, "-Inf"},
	             {NAN, "NaN"},
	             {1e21, "1e+21"},
	             {1.0 / 3, "0.3333333333333333"},
	             {-0.0, "0"},
	             {2.5e-7, "2.5e-07"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[256];
		pl_metric_set(v, cases[i].value);
		snprintf(want, sizeof(want),
		         "# HELP dronepipe_test_value Values.\n"
		         "# TYPE dronepipe_test_value gauge\n"
		         "dronepipe_test_value %s\n",
		         cases[i].text);
		size_t len;
		char *text = pl_metrics_render(metrics, &len);
		assert_non_null(strstr(text, want));
		pl_free(text);
	}
	pl_metrics_destroy(metrics);
}

static void histogram_buckets(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	static const double buckets[] = {0.1, 1, 5};
	pl_metric_family_t *h =
	    pl_metrics_family(metrics, "dronepipe_stage_handle_seconds", "Handler time.",
	                      PL_METRIC_HISTOGRAM, "topic", buckets, 3);
	pl_metric_t *m = pl_metric_get(h, (const char *[]){"drone.requests"});
	pl_metric_observe(m, 0.05);
	pl_metric_observe(m, 0.1); /* le is inclusive */
	pl_metric_observe(m, 0.5);
	pl_metric_observe(m, 7);
	assert_true(pl_metric_value(m) == 4);
	assert_render(metrics,
	              "# HELP dronepipe_stage_handle_seconds Handler time.\n"
	              "# TYPE dronepipe_stage_handle_seconds histogram\n"
	              "dronepipe_stage_handle_seconds_bucket{topic=\"drone.requests\",le=\"0."
	              "1\"} 2\n"
	              "dronepipe_stage_handle_seconds_bucket{topic=\"drone.requests\",le=\"1\"}"
	              " 3\n"
	              "dronepipe_stage_handle_seconds_bucket{topic=\"drone.requests\",le=\"5\"}"
	              " 3\n"
	              "dronepipe_stage_handle_seconds_bucket{topic=\"drone.requests\",le=\"+"
	              "Inf\"} 4\n"
	              "dronepipe_stage_handle_seconds_sum{topic=\"drone.requests\"} 7.65\n"
	              "dronepipe_stage_handle_seconds_count{topic=\"drone.requests\"} 4\n");
	pl_metrics_destroy(metrics);
}

static void histogram_default_buckets(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *h =
	    pl_metrics_family(metrics, "x_seconds", "X.", PL_METRIC_HISTOGRAM, "", NULL, 0);
	pl_metric_observe(pl_metric_get0(h), 0.003);
	assert_render(metrics, "# HELP x_seconds X.\n"
	                       "# TYPE x_seconds histogram\n"
	                       "x_seconds_bucket{le=\"0.0005\"} 0\n"
	                       "x_seconds_bucket{le=\"0.001\"} 0\n"
	                       "x_seconds_bucket{le=\"0.0025\"} 0\n"
	                       "x_seconds_bucket{le=\"0.005\"} 1\n"
	                       "x_seconds_bucket{le=\"0.01\"} 1\n"
	                       "x_seconds_bucket{le=\"0.025\"} 1\n"
	                       "x_seconds_bucket{le=\"0.05\"} 1\n"
	                       "x_seconds_bucket{le=\"0.1\"} 1\n"
	                       "x_seconds_bucket{le=\"0.25\"} 1\n"
	                       "x_seconds_bucket{le=\"0.5\"} 1\n"
	                       "x_seconds_bucket{le=\"1\"} 1\n"
	                       "x_seconds_bucket{le=\"2.5\"} 1\n"
	                       "x_seconds_bucket{le=\"5\"} 1\n"
	                       "x_seconds_bucket{le=\"10\"} 1\n"
	                       "x_seconds_bucket{le=\"+Inf\"} 1\n"
	                       "x_seconds_sum 0.003\n"
	                       "x_seconds_count 1\n");
	pl_metrics_destroy(metrics);
}

static void escaping(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *f = pl_metrics_family(metrics, "dronepipe_test_total",
	                                          "Help with \\ and\nnewline \"kept\".",
	                                          PL_METRIC_COUNTER, "v", NULL, 0);
	pl_metric_inc(pl_metric_get(f, (const char *[]){"a\\b\"c\nd"}));
	pl_metric_inc(pl_metric_get(f, (const char *[]){""}));
	pl_metric_inc(pl_metric_get(f, (const char *[]){"caf\xC3\xA9"}));
	assert_render(metrics,
	              "# HELP dronepipe_test_total Help with \\\\ and\\nnewline \"kept\".\n"
	              "# TYPE dronepipe_test_total counter\n"
	              "dronepipe_test_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"
	              "dronepipe_test_total{v=\"\"} 1\n"
	              "dronepipe_test_total{v=\"caf\xC3\xA9\"} 1\n");
	pl_metrics_destroy(metrics);
}

static void family_reuse_and_clear(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *a =
	    pl_metrics_family(metrics, "dronepipe_b_total", "B.", PL_METRIC_COUNTER, NULL, NULL, 0);
	pl_metric_family_t *lag = pl_metrics_family(metrics, "dronepipe_a_lag", "A.",
	                                            PL_METRIC_GAUGE, "partition", NULL, 0);
	assert_ptr_equal(pl_metrics_family(metrics, "dronepipe_b_total", "other help",
	                                   PL_METRIC_COUNTER, "", NULL, 0),
	                 a);
	pl_metric_t *held = pl_metric_get(lag, (const char *[]){"3"});
	pl_metric_set(held, 9);
	pl_metric_inc(pl_metric_get0(a));
	pl_metric_family_clear(lag);
	pl_metric_set(held, 1); /* a held series stays valid after clear, just unrendered */
	assert_render(metrics, "# HELP dronepipe_b_total B.\n"
	                       "# TYPE dronepipe_b_total counter\n"
	                       "dronepipe_b_total 1\n"
	                       "# HELP dronepipe_a_lag A.\n"
	                       "# TYPE dronepipe_a_lag gauge\n");
	pl_metric_t *again = pl_metric_get(lag, (const char *[]){"4"});
	pl_metric_set(again, 2);
	assert_true(pl_metric_value(again) == 2);
	pl_metrics_destroy(metrics);
}

static void default_registry_is_one(void **state)
{
	(void)state;
	pl_metrics_t *d = pl_metrics_default();
	assert_non_null(d);
	assert_ptr_equal(pl_metrics_default(), d);
}

#define THREADS 4
#define INCS    100000

static void *hammer(void *arg)
{
	pl_metric_family_t **families = arg;
	pl_metric_t *c = pl_metric_get0(families[0]);
	pl_metric_t *h = pl_metric_get0(families[1]);
	for (int i = 0; i < INCS; i++) {
		pl_metric_inc(c);
		if (i % 10 == 0)
			pl_metric_observe(h, 0.5);
	}
	return NULL;
}

static void concurrent_increments_exact(void **state)
{
	(void)state;
	pl_metrics_t *metrics = pl_metrics_new();
	pl_metric_family_t *families[2] = {
	    pl_metrics_family(metrics, "c_total", "C.", PL_METRIC_COUNTER, NULL, NULL, 0),
	    pl_metrics_family(metrics, "h_seconds", "H.", PL_METRIC_HISTOGRAM, NULL, NULL, 0),
	};
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, families);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(pl_metric_value(pl_metric_get0(families[0])) == THREADS * INCS);
	assert_true(pl_metric_value(pl_metric_get0(families[1])) == THREADS * INCS / 10);
	size_t len;
	char *text = pl_metrics_render(metrics, &len);
	assert_non_null(strstr(text, "\nc_total 400000\n"));
	assert_non_null(strstr(text, "\nh_seconds_sum 20000\n"));
	assert_non_null(strstr(text, "\nh_seconds_count 40000\n"));
	assert_non_null(strstr(text, "h_seconds_bucket{le=\"0.25\"} 0\n"));
	assert_non_null(strstr(text, "h_seconds_bucket{le=\"0.5\"} 40000\n"));
	pl_free(text);
	pl_metrics_destroy(metrics);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_registry),
	    cmocka_unit_test(counter_with_labels),
	    cmocka_unit_test(gauge_and_numbers),
	    cmocka_unit_test(histogram_buckets),
	    cmocka_unit_test(histogram_default_buckets),
	    cmocka_unit_test(escaping),
	    cmocka_unit_test(family_reuse_and_clear),
	    cmocka_unit_test(default_registry_is_one),
	    cmocka_unit_test(concurrent_increments_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
