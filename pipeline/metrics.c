/* metrics.c — counters, gauges and histograms, rendered in Prometheus text format 0.0.4.
 *
 * Owns registries, their families (in declaration order) and each family's series (in creation
 * order). Values are doubles stored as bits in _Atomic uint64_t and updated with a CAS loop, so
 * updating a held series takes no lock. The registry mutex guards the family list; a family's mutex
 * guards its series list. Cleared series are parked, not freed, until the registry goes, so a
 * pointer a caller still holds never dangles (its updates are simply no longer rendered). A
 * wrong-type update, a family redeclared with another shape, or a bad name aborts: those are
 * programming errors. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static const double default_buckets[] = {.0005, .001, .0025, .005, .01, .025, .05,
                                         .1,    .25,  .5,    1,    2.5, 5,    10};

struct pl_metric {
	pl_metric_family_t *family;
	char **label_values;    /* family->nlabels copies */
	_Atomic uint64_t value; /* counter/gauge value; histogram sum (double bits) */
	/* histogram: count per bucket (not cumulative); counts[nbuckets] is above every bound */
	_Atomic uint64_t *counts;
	pl_metric_t *next;
};

struct pl_metric_family {
	char *name;
	char *help;
	pl_metric_type_t type;
	char **label_names;
	size_t nlabels;
	double *buckets; /* ascending upper bounds, +Inf excluded */
	size_t nbuckets;
	pthread_mutex_t lock; /* guards the series list */
	pl_metric_t *head, *tail;
	pl_metric_t *retired; /* cleared series, freed with the registry */
	pl_metric_family_t *next;
};

struct pl_metrics {
	pthread_mutex_t lock; /* guards the family list */
	pl_metric_family_t *head, *tail;
};

static void die(const char *what, const char *name)
{
	fprintf(stderr, "pl_metrics: %s: %s\n", what, name ? name : "(null)");
	abort();
}

static double bits_to_double(uint64_t bits)
{
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static uint64_t double_to_bits(double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

static void atomic_add_double(_Atomic uint64_t *slot, double delta)
{
	uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(slot, &old,
	                                              double_to_bits(bits_to_double(old) + delta),
	                                              memory_order_relaxed, memory_order_relaxed))
		;
}

pl_metrics_t *pl_metrics_new(void)
{
	pl_metrics_t *metrics = pl_calloc(1, sizeof(*metrics));
	pthread_mutex_init(&metrics->lock, NULL);
	return metrics;
}

static void metric_free(pl_metric_t *metric, size_t nlabels)
{
	for (size_t i = 0; i < nlabels; i++)
		pl_free(metric->label_values[i]);
	pl_free(metric->label_values);
	pl_free(metric->counts);
	pl_free(metric);
}

static void family_free(pl_metric_family_t *family)
{
	pl_metric_t *lists[2] = {family->head, family->retired};
	for (size_t l = 0; l < 2; l++) {
		for (pl_metric_t *m = lists[l], *next; m; m = next) {
			next = m->next;
			metric_free(m, family->nlabels);
		}
	}
	for (size_t i = 0; i < family->nlabels; i++)
		pl_free(family->label_names[i]);
	pl_free(family->label_names);
	pl_free(family->buckets);
	pl_free(family->name);
	pl_free(family->help);
	pthread_mutex_destroy(&family->lock);
	pl_free(family);
}

void pl_metrics_destroy(pl_metrics_t *metrics)
{
	if (!metrics)
		return;
	for (pl_metric_family_t *f = metrics->head, *next; f; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&metrics->lock);
	pl_free(metrics);
}

static pl_metrics_t *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
	default_registry = pl_metrics_new();
}

pl_metrics_t *pl_metrics_default(void)
{
	pthread_once(&default_once, default_init);
	return default_registry;
}

/* Prometheus names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without ':'. / */
static bool valid_name(const char *s, size_t n, bool colon)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* Splits "route, status" into trimmed, checked names. */
static void parse_labels(pl_metric_family_t *family, const char *label_names)
{
	for (const char *p = label_names; p && *p;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		const char *stop = end;
		while (stop > p && stop[-1] == ' ')
			stop--;
		size_t n = (size_t)(stop - p);
		if (!valid_name(p, n, false) || (n >= 2 && p[0] == '_' && p[1] == '_') ||
		    (family->type == PL_METRIC_HISTOGRAM && n == 2 && strncmp(p, "le", 2) == 0))
			die("bad label names", label_names);
		family->label_names =
		    pl_realloc(family->label_names, (family->nlabels + 1) * sizeof(char *));
		family->label_names[family->nlabels++] = pl_strndup(p, n);
		p = comma ? comma + 1 : end;
	}
}

static bool same_shape(const pl_metric_family_t *a, const pl_metric_family_t *b)
{
	if (a->type != b->type || a->nlabels != b->nlabels || a->nbuckets != b->nbuckets)
		return false;
	for (size_t i = 0; i < a->nlabels; i++)
		if (strcmp(a->label_names[i], b->label_names[i]) != 0)
			return false;
	for (size_t i = 0; i < a->nbuckets; i++)
		if (a->buckets[i] != b->buckets[i])
			return false;
	return true;
}

pl_metric_family_t *pl_metrics_family(pl_metrics_t *metrics, const char *name, const char *help,
                                      pl_metric_type_t type, const char *label_names,
                                      const double *buckets, size_t nbuckets)
{
	if (!name || !valid_name(name, strlen(name), true))
		die("bad metric name", name);
	if (type != PL_METRIC_COUNTER && type != PL_METRIC_GAUGE && type != PL_METRIC_HISTOGRAM)
		die("bad metric type", name);

	pl_metric_family_t *family = pl_calloc(1, sizeof(*family));
	family->name = pl_strdup(name);
	family->help = pl_strdup(help ? help : "");
	family->type = type;
	pthread_mutex_init(&family->lock, NULL);
	parse_labels(family, label_names);
	if (type == PL_METRIC_HISTOGRAM) {
		if (!buckets || nbuckets == 0) {
			buckets = default_buckets;
			nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
		}
		if (isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
			nbuckets--; /* +Inf is always added */
		family->buckets = pl_malloc((nbuckets ? nbuckets : 1) * sizeof(double));
		for (size_t i = 0; i < nbuckets; i++) {
			if (isnan(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
				die("histogram buckets must ascend", name);
			family->buckets[i] = buckets[i];
		}
		family->nbuckets = nbuckets;
	}

	pthread_mutex_lock(&metrics->lock);
	for (pl_metric_family_t *f = metrics->head; f; f = f->next) {
		if (strcmp(f->name, name) != 0)
			continue;
		pthread_mutex_unlock(&metrics->lock);
		if (!same_shape(f, family))
			die("family declared again with another type, labels or buckets", name);
		family_free(family);
		return f;
	}
	if (metrics->tail)
		metrics->tail->next = family;
	else
		metrics->head = family;
	metrics->tail = family;
	pthread_mutex_unlock(&metrics->lock);
	return family;
}

pl_metric_t *pl_metric_get(pl_metric_family_t *family, const char *const *label_values)
{
	pthread_mutex_lock(&family->lock);
	pl_metric_t *m = family->head;
	for (; m; m = m->next) {
		size_t i = 0;
		while (i < family->nlabels &&
		       strcmp(m->label_values[i], label_values[i] ? label_values[i] : "") == 0)
			i++;
		if (i == family->nlabels)
			break;
	}
	if (!m) {
		m = pl_calloc(1, sizeof(*m));
		m->family = family;
		m->label_values = pl_calloc(family->nlabels ? family->nlabels : 1, sizeof(char *));
		for (size_t i = 0; i < family->nlabels; i++)
			m->label_values[i] = pl_strdup(label_values[i] ? label_values[i] : "");
		atomic_init(&m->value, double_to_bits(0.0));
		if (family->type == PL_METRIC_HISTOGRAM) {
			m->counts = pl_malloc((family->nbuckets + 1) * sizeof(*m->counts));
			for (size_t i = 0; i <= family->nbuckets; i++)
				atomic_init(&m->counts[i], 0);
		}
		if (family->tail)
			family->tail->next = m;
		else
			family->head = m;
		family->tail = m;
	}
	pthread_mutex_unlock(&family->lock);
	return m;
}

pl_metric_t *pl_metric_get0(pl_metric_family_t *family)
{
	if (family->nlabels != 0)
		die("family has labels; use pl_metric_get", family->name);
	return pl_metric_get(family, NULL);
}

void pl_metric_family_clear(pl_metric_family_t *family)
{
	pthread_mutex_lock(&family->lock);
	if (family->tail) {
		family->tail->next = family->retired;
		family->retired = family->head;
	}
	family->head = family->tail = NULL;
	pthread_mutex_unlock(&family->lock);
}

static void require(const pl_metric_t *metric, bool ok, const char *what)
{
	if (!ok)
		die(what, metric->family->name);
}

void pl_metric_inc(pl_metric_t *metric)
{
	pl_metric_add(metric, 1.0);
}

void pl_metric_add(pl_metric_t *metric, double delta)
{
	require(metric, metric->family->type != PL_METRIC_HISTOGRAM, "add on a histogram");
	if (metric->family->type == PL_METRIC_COUNTER && !(delta >= 0))
		return; /* counters never go down */
	atomic_add_double(&metric->value, delta);
}

void pl_metric_set(pl_metric_t *metric, double value)
{
	require(metric, metric->family->type != PL_METRIC_HISTOGRAM, "set on a histogram");
	atomic_store_explicit(&metric->value, double_to_bits(value), memory_order_relaxed);
}

void pl_metric_observe(pl_metric_t *metric, double value)
{
	const pl_metric_family_t *family = metric->family;
	require(metric, family->type == PL_METRIC_HISTOGRAM, "observe on a non-histogram");
	size_t i = 0;
	while (i < family->nbuckets && !(value <= family->buckets[i]))
		i++;
	atomic_fetch_add_explicit(&metric->counts[i], 1, memory_order_relaxed);
	atomic_add_double(&metric->value, value);
}

static uint64_t histogram_count(const pl_metric_t *metric)
{
	uint64_t n = 0;
	for (size_t i = 0; i <= metric->family->nbuckets; i++)
		n += atomic_load_explicit(&metric->counts[i], memory_order_relaxed);
	return n;
}

double pl_metric_value(const pl_metric_t *metric)
{
	if (metric->family->type == PL_METRIC_HISTOGRAM)
		return (double)histogram_count(metric);
	return bits_to_double(atomic_load_explicit(&metric->value, memory_order_relaxed));
}

/* Growing output buffer. */
typedef struct out {
	char *buf;
	size_t len, cap;
} out_t;

static void out_raw(out_t *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		while (o->len + n + 1 > o->cap)
			o->cap = o->cap ? o->cap * 2 : 4096;
		o->buf = pl_realloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void out_str(out_t *o, const char *s)
{
	out_raw(o, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void out_escaped(out_t *o, const char *s, bool quote)
{
	for (const char *run = s;; s++) {
		if (*s && *s != '\\' && *s != '\n' && !(quote && *s == '"'))
			continue;
		out_raw(o, run, (size_t)(s - run));
		if (!*s)
			return;
		out_str(o, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
		run = s + 1;
	}
}

/* Prometheus number text: integral values without exponent, others the shortest %g that reads back
 * exactly, and +Inf, -Inf, NaN spelled out. */
static void format_number(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, size, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
}

static void out_number(out_t *o, double v)
{
	char buf[40];
	format_number(v, buf, sizeof(buf));
	out_str(o, buf);
}

/* name{a="x",b="y"[,le="..."]} value\n */
static void out_sample(out_t *o, const pl_metric_family_t *f, const pl_metric_t *m,
                       const char *suffix, const char *le, double value)
{
	out_str(o, f->name);
	out_str(o, suffix);
	if (f->nlabels || le) {
		out_raw(o, "{", 1);
		for (size_t i = 0; i < f->nlabels; i++) {
			if (i)
				out_raw(o, ",", 1);
			out_str(o, f->label_names[i]);
			out_raw(o, "=\"", 2);
			out_escaped(o, m->label_values[i], true);
			out_raw(o, "\"", 1);
		}
		if (le) {
			out_str(o, f->nlabels ? ",le=\"" : "le=\"");
			out_str(o, le);
			out_raw(o, "\"", 1);
		}
		out_raw(o, "}", 1);
	}
	out_raw(o, " ", 1);
	out_number(o, value);
	out_raw(o, "\n", 1);
}

static void render_family(out_t *o, pl_metric_family_t *f)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	out_str(o, "# HELP ");
	out_str(o, f->name);
	out_raw(o, " ", 1);
	out_escaped(o, f->help, false);
	out_str(o, "\n# TYPE ");
	out_str(o, f->name);
	out_raw(o, " ", 1);
	out_str(o, type_names[f->type]);
	out_raw(o, "\n", 1);

	pthread_mutex_lock(&f->lock);
	for (const pl_metric_t *m = f->head; m; m = m->next) {
		double value =
		    bits_to_double(atomic_load_explicit(&m->value, memory_order_relaxed));
		if (f->type != PL_METRIC_HISTOGRAM) {
			out_sample(o, f, m, "", NULL, value);
			continue;
		}
		uint64_t cumulative = 0;
		char le[40];
		for (size_t i = 0; i < f->nbuckets; i++) {
			cumulative += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
			format_number(f->buckets[i], le, sizeof(le));
			out_sample(o, f, m, "_bucket", le, (double)cumulative);
		}
		cumulative += atomic_load_explicit(&m->counts[f->nbuckets], memory_order_relaxed);
		out_sample(o, f, m, "_bucket", "+Inf", (double)cumulative);
		out_sample(o, f, m, "_sum", NULL, value);
		out_sample(o, f, m, "_count", NULL, (double)cumulative);
	}
	pthread_mutex_unlock(&f->lock);
}

char *pl_metrics_render(pl_metrics_t *metrics, size_t *len)
{
	out_t o = {0};
	out_raw(&o, "", 0);
	pthread_mutex_lock(&metrics->lock);
	for (pl_metric_family_t *f = metrics->head; f; f = f->next)
		render_family(&o, f);
	pthread_mutex_unlock(&metrics->lock);
	if (len)
		*len = o.len;
	return o.buf;
}
