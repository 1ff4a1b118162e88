/* progress.c — progress lines (progress.h). */
#include <string.h>

#include "progress.h"

size_t ops_format_duration(char *buf, size_t size, int64_t ms)
{
	int64_t s = ms > 0 ? (ms + 999) / 1000 : 0;
	int n;
	if (s < 60)
		n = snprintf(buf, size, "%llds", (long long)s);
	else if (s < 3600)
		n = snprintf(buf, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		n = snprintf(buf, size, "%lldh%02lldm", (long long)(s / 3600),
		             (long long)(s % 3600 / 60));
	else
		n = snprintf(buf, size, "%lldd%02lldh", (long long)(s / 86400),
		             (long long)(s % 86400 / 3600));
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

size_t ops_progress_format(char *buf, size_t size, const char *what, int64_t done, int64_t total,
                           int64_t elapsed_ms)
{
	char rate[32] = "-", left[32] = "-";
	double per_s =
	    elapsed_ms >= 1000 && done > 0 ? (double)done * 1000.0 / (double)elapsed_ms : 0.0;
	if (per_s > 0) {
		snprintf(rate, sizeof(rate), "%.0f", per_s);
		if (total > 0) {
			int64_t rest = total > done ? total - done : 0;
			ops_format_duration(left, sizeof(left),
			                    (int64_t)((double)rest * 1000.0 / per_s));
		}
	}
	int n;
	if (total > 0) {
		int64_t shown_total = done > total ? done : total;
		int pct = (int)(done * 100 / shown_total);
		n = snprintf(buf, size, "%s: %lld/%lld records (%d%%), %s rec/s, %s left", what,
		             (long long)done, (long long)shown_total, pct, rate, left);
	} else {
		n = snprintf(buf, size, "%s: %lld records, %s rec/s", what, (long long)done, rate);
	}
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

void ops_progress_init(ops_progress_t *p, FILE *out, bool tty, const char *what, int64_t total,
                       int64_t now_ms)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->tty = tty;
	p->what = what;
	p->total = total;
	p->started_ms = now_ms;
}

static void print(ops_progress_t *p, int64_t done, int64_t now_ms, bool final)
{
	char line[256];
	ops_progress_format(line, sizeof(line), p->what, done, p->total, now_ms - p->started_ms);
	if (p->tty) {
		/* \r and erase-to-end-of-line: redraw in place */
		fprintf(p->out, "\r%s\033[K%s", line, final ? "\n" : "");
		p->drawn = !final;
	} else {
		fprintf(p->out, "%s\n", line);
	}
	fflush(p->out);
	p->printed_ms = now_ms;
}

void ops_progress_update(ops_progress_t *p, int64_t done, int64_t now_ms)
{
	int64_t every = p->tty ? 100 : 2000;
	if (p->printed_ms == 0 ? now_ms - p->started_ms >= every : now_ms - p->printed_ms >= every)
		print(p, done, now_ms, false);
}

void ops_progress_finish(ops_progress_t *p, int64_t done, int64_t now_ms)
{
	print(p, done, now_ms, true);
}
