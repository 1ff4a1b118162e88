/* reader.h — reads a topic's partitions directly (no consumer group): for the ops CLI (tail,
 * dlq) and tests. Starts at the beginning, the end, a time or given offsets; optionally stops
 * when every partition reached the end offset it had when the reader started.
 * Ownership: records returned by pl_reader_next are valid until the next call or destroy.
 * Thread rules: one thread per reader. */
#ifndef PL_READER_H
#define PL_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"
#include "kafka.h"

typedef enum pl_reader_start {
	PL_READER_BEGINNING,
	PL_READER_END,
	PL_READER_TIME,   /* start_time_ms */
	PL_READER_OFFSET, /* start_partition/start_offset; other partitions from the beginning */
} pl_reader_start_t;

typedef struct pl_reader_opts {
	pl_reader_start_t start;
	int64_t start_time_ms;
	int32_t start_partition;
	int64_t start_offset;
	bool stop_at_end;   /* end = the end offsets seen at start */
	bool one_partition; /* read only `partition` */
	int32_t partition;
} pl_reader_opts_t;

typedef struct pl_reader pl_reader_t;

/* brokers from DP_KAFKA_BROKERS (and DP_KAFKA_PROP_*). PL_ERR_NOT_FOUND when the topic does not
 * exist; PL_ERR_TRANSIENT when the broker cannot be reached within timeout_ms. */
pl_err_t pl_reader_new(const pl_cfg_t *cfg, const char *topic, const pl_reader_opts_t *opts,
                       int timeout_ms, pl_reader_t **out, char *errstr, size_t errstr_size);
void pl_reader_destroy(pl_reader_t *reader);

/* PL_OK with a record; PL_ERR_TIMEOUT when none arrived in timeout_ms; PL_ERR_NOT_FOUND when
 * stop_at_end and every partition is done. */
pl_err_t pl_reader_next(pl_reader_t *reader, pl_record_t *record, int timeout_ms);

/* Partition count of the topic and the total records between start and end (for progress). */
int pl_reader_partitions(const pl_reader_t *reader);
int64_t pl_reader_remaining_at_start(const pl_reader_t *reader);

#endif
