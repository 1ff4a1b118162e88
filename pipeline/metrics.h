/* metrics.h — counters, gauges and histograms rendered in Prometheus text format.
 *
 * A family (name + help + type + label names) holds series keyed by label values. Series are
 * created on first use and live as long as the registry. Values are atomics: incrementing a series
 * you hold is lock-free; looking one up by label values takes the family's mutex.
 * Names follow dronepipe_<stage>_<thing>_<unit>, counters end in _total.
 * Thread rules: everything here is thread-safe. pl_metrics_default() is the process registry. */
#ifndef PL_METRICS_H
#define PL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_metrics pl_metrics_t;
typedef struct pl_metric_family pl_metric_family_t;
typedef struct pl_metric pl_metric_t; /* one series; owned by its family */

typedef enum pl_metric_type {
	PL_METRIC_COUNTER,
	PL_METRIC_GAUGE,
	PL_METRIC_HISTOGRAM
} pl_metric_type_t;

pl_metrics_t *pl_metrics_new(void);
void pl_metrics_destroy(pl_metrics_t *metrics);
pl_metrics_t *pl_metrics_default(void);

/* Declares a family; declaring the same name again returns the existing one. label_names is a
 * comma-separated list ("route,status") or NULL/"" for none. buckets (histograms only, ascending,
 * seconds or any unit) may be NULL for the default latency buckets. The family copies its args. */
pl_metric_family_t *pl_metrics_family(pl_metrics_t *metrics, const char *name, const char *help,
                                      pl_metric_type_t type, const char *label_names,
                                      const double *buckets, size_t nbuckets);

/* The series for these label values (one per label name, in order; count must match). */
pl_metric_t *pl_metric_get(pl_metric_family_t *family, const char *const *label_values);
/* Shorthand for families with no labels. */
pl_metric_t *pl_metric_get0(pl_metric_family_t *family);
/* Removes every series of a family (e.g. lag gauges of revoked partitions). */
void pl_metric_family_clear(pl_metric_family_t *family);

void pl_metric_inc(pl_metric_t *metric);
void pl_metric_add(pl_metric_t *metric, double delta);
void pl_metric_set(pl_metric_t *metric, double value);     /* gauges */
void pl_metric_observe(pl_metric_t *metric, double value); /* histograms */
double pl_metric_value(const pl_metric_t *metric); /* counter/gauge value, histogram count */

/* Renders every family in text exposition format 0.0.4. Returns a pl_malloc'd string; caller
 * frees with pl_free. */
char *pl_metrics_render(pl_metrics_t *metrics, size_t *len);

#endif
