/* kafka_int.h — private to kafka.c and stage.c (the two modules that include librdkafka):
 * building a librdkafka configuration from the dronepipe config, log routing, error mapping. */
#ifndef PL_KAFKA_INT_H
#define PL_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "cfg.h"
#include "err.h"
#include "kafka.h"

/* New conf with bootstrap.servers, log routing into pl_log, then extra (NULL-terminated key/value
 * list, may be NULL), then the DP_KAFKA_PROP_* pass-through (which wins). Caller owns the conf
 * (rd_kafka_conf_destroy, or hand it to rd_kafka_new). NULL + errstr on a bad property. */
rd_kafka_conf_t *pl_kafka_conf_new(const pl_cfg_t *cfg, const char *const *extra, char *errstr,
                                   size_t errstr_size);

/* Fills r from a consumed message (borrowed: valid while m is). Headers beyond PL_MAX_HEADERS
 * are left out. */
void pl_kafka_record_fill(pl_record_t *r, const rd_kafka_message_t *m);

/* librdkafka error -> pl_err_t (transient vs permanent). */
pl_err_t pl_kafka_err(rd_kafka_resp_err_t err);

/* librdkafka 2.0.2 stops fetching a partition whose queue is over queued.max.messages.kbytes and
 * looks again only when its broker thread wakes: on a fetch reply, an operation, or after 1 s
 * (fetch.queue.backoff.ms, which sets that wait, came in 2.3). A consumer that drains its queue
 * while the log holds more sits idle for the rest of that second: with a 1 MB queue the delivery
 * replay ran at 6k records/s instead of 23k. Call this when the queue runs dry after records:
 * if the partition's last fetch saw records from next_offset on (its cached high watermark),
 * it sends one ListOffsets request, which wakes that thread to fetch again, and returns true.
 * An idle consumer sends nothing: its partitions are at the watermark. Blocks for the round
 * trip (at most 1 s). */
bool pl_consumer_wake_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                            int64_t next_offset);

#endif
