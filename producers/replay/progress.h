/* progress.h — progress of long operations (redrive, scans): "records done / total, rate, time
 * left". On a terminal one line is redrawn in place at most every 100 ms; otherwise a plain line
 * is printed at most every 2 s (and at the end), so logs of scripts stay readable.
 * The formatting functions are pure (unit-tested); ops_progress_* write to the given stream.
 * Thread rules: one thread per ops_progress_t. */
#ifndef OPS_PROGRESS_H
#define OPS_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "0s", "45s", "2m05s", "1h02m", "3d04h"; negative counts as 0. Returns strlen. */
size_t ops_format_duration(char *buf, size_t size, int64_t ms);

/* "<what>: 512/1000 records (51%), 243 rec/s, 2s left"; without a total (total <= 0):
 * "<what>: 512 records, 243 rec/s". Rate and time left read "-" before 1 s elapsed or when
 * nothing was done yet. Returns strlen (truncated to size - 1). */
size_t ops_progress_format(char *buf, size_t size, const char *what, int64_t done, int64_t total,
                           int64_t elapsed_ms);

typedef struct ops_progress {
	FILE *out; /* borrowed */
	bool tty;
	const char *what; /* borrowed */
	int64_t total;
	int64_t started_ms;
	int64_t printed_ms; /* last print, 0 = never */
	bool drawn;         /* a tty line is on screen */
} ops_progress_t;

void ops_progress_init(ops_progress_t *p, FILE *out, bool tty, const char *what, int64_t total,
                       int64_t now_ms);
/* Prints when due. */
void ops_progress_update(ops_progress_t *p, int64_t done, int64_t now_ms);
/* Prints the final state and ends the line. */
void ops_progress_finish(ops_progress_t *p, int64_t done, int64_t now_ms);

#endif
