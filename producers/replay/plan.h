/* plan.h — `dronepipe replay`: its arguments and the reset plan, as pure functions (no I/O, no
 * Kafka) so they are unit-tested: parse the command line, turn durations into milliseconds, and
 * compute per partition the new committed offset and how many records that reprocesses or skips.
 * Thread rules: none (pure, reentrant except ops_replay_parse_args, which uses getopt). */
#ifndef OPS_PLAN_H
#define OPS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ops_reset_kind {
	OPS_RESET_NONE = 0,
	OPS_RESET_TIME,     /* --to-time: first record at/after time_ms */
	OPS_RESET_DURATION, /* --by-duration: first record at/after now - duration_ms */
	OPS_RESET_OFFSET,   /* --to-offset P:O: partition P only */
	OPS_RESET_EARLIEST, /* --to-earliest */
} ops_reset_kind_t;

/* Strings point into argv (borrowed). */
typedef struct ops_replay_args {
	const char *group;
	const char *topic;
	ops_reset_kind_t kind;
	int64_t time_ms;
	int64_t duration_ms;
	int32_t partition;
	int64_t offset;
	bool dry_run;
	bool wait;
	int64_t wait_timeout_ms; /* default 60 s */
	bool json;
	bool help;
} ops_replay_args_t;

/* Parses `replay ...` (argv[0] = "replay"). 0 on success (check args->help), 1 with a sentence
 * in err on bad arguments. */
int ops_replay_parse_args(int argc, char **argv, ops_replay_args_t *args, char *err,
                          size_t err_size);

/* "90s", "15m", "1h", "2d", "1h30m", "500ms", "1w"; a bare number is seconds. false when
 * malformed, zero or overflowing. */
bool ops_parse_duration(const char *text, int64_t *ms);

/* One partition of the plan. Inputs: partition, low, high (watermarks), current (committed, -1
 * none), time_offset (first offset at/after the target time, -1 none; only for TIME/DURATION).
 * Outputs: target, changes, reprocess, skip. */
typedef struct ops_plan_part {
	int32_t partition;
	int64_t low, high, current, time_offset;
	int64_t target;    /* new committed offset (= current when !changes) */
	bool changes;      /* a new offset is written for this partition */
	int64_t reprocess; /* records consumed again: moving back from the current position */
	int64_t skip;      /* records never consumed: moving forward */
} ops_plan_part_t;

typedef struct ops_plan_totals {
	int64_t reprocess, skip;
	int changed; /* partitions with a new offset */
} ops_plan_totals_t;

/* The time the offsets are looked up for (TIME, DURATION), else -1. */
int64_t ops_plan_target_time(const ops_replay_args_t *args, int64_t now_ms);

/* Fills the outputs of parts[0..count-1] and the totals. A group without a committed offset
 * counts as positioned at `low` (dronepipe consumers use auto.offset.reset=earliest). Targets
 * are clamped to [low, high]. For OFFSET, a partition not in the topic changes nothing: check
 * args->partition < count before. */
void ops_plan_compute(const ops_replay_args_t *args, ops_plan_part_t *parts, size_t count,
                      ops_plan_totals_t *totals);

#endif
