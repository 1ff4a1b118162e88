/* stage.h — the consumer-stage loop: poll -> decode -> handle -> store offset; retry; dead-letter.
 *
 * One stage = one consumer group member with its own producer for replies and dead letters.
 * Delivery semantics (DESIGN.md): at-least-once. enable.auto.offset.store=false; a record's offset
 * is stored only after its handler returned OK or DEAD and every reply it produced (and its
 * dead letter) was acknowledged by the broker. Stored offsets are committed on an interval
 * (auto.commit.interval.ms) and on partition revoke and close. A reply asked with
 * pl_stage_produce_after is held until the record's other replies were acknowledged (e.g. a
 * state write before the commands it caused): the batch then waits for it too.
 *
 * Handler outcomes:
 *   PL_STAGE_OK    effects done; replies sent with pl_stage_produce.
 *   PL_STAGE_RETRY transient: the partition is paused and the same record is handled again after
 *                  an exponential backoff with jitter (DP_RETRY_BACKOFF_MIN_MS..MAX_MS); records of
 *                  other partitions keep flowing; order within the partition is kept.
 *   PL_STAGE_DEAD  poison: the record is produced to "<topic>.dlq" with its key, value, original
 *                  headers and dp_error, dp_error_class, dp_source_topic, dp_source_partition,
 *                  dp_source_offset, dp_group, dp_dead_at; then its offset advances.
 * Records whose value does not decode (pl_avro_decode) are dead-lettered without calling the
 * handler, unless the stage was created with raw = true.
 *
 * Shutdown: pl_stage_stop (async-signal-safe) makes pl_stage_run finish the record in hand, wait
 * for its acknowledgements, store and commit offsets, and leave the group.
 * Thread rules: pl_stage_run runs on the caller's thread; handlers run on it too, one record at
 * a time, unless opts.concurrent: then the records of each polled batch are spread over
 * DP_STAGE_WORKERS lanes by a hash of their key (same key, same lane, offset order) and the
 * handler runs on several threads at once; on_assign, on_revoke and on_tick stay on the stage
 * thread, never during a batch. A batch_handler gets the records of a lane (or of the whole
 * batch when not concurrent) up to 64 at a time; dronepipe_stage_handler_seconds then observes each
 * record's share of the call. Offsets are stored per partition only up to the first record
 * not done, so a retry re-handles the later records of its partition that other lanes had
 * done. pl_stage_produce may only be called from inside a handler. */
#ifndef PL_STAGE_H
#define PL_STAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "avro.h"
#include "cfg.h"
#include "err.h"
#include "kafka.h"
#include "metrics.h"

typedef enum pl_stage_outcome { PL_STAGE_OK = 0, PL_STAGE_RETRY, PL_STAGE_DEAD } pl_stage_outcome_t;

typedef struct pl_stage pl_stage_t;
typedef struct pl_stage_ctx pl_stage_ctx_t; /* per-record handler context */

/* event is the decoded value (borrowed; NULL when raw) and schema its reader schema. */
typedef pl_stage_outcome_t (*pl_stage_handler_fn)(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                                  const json_t *event,
                                                  const pl_avro_schema_t *schema, void *arg);

/* One record given to a batch handler. The handler reads ctx/record/event/schema (borrowed, as
 * for pl_stage_handler_fn) and sets outcome (preset to PL_STAGE_OK). */
typedef struct pl_stage_item {
	pl_stage_ctx_t *ctx; /* for pl_stage_produce, pl_stage_set_reason of this record */
	const pl_record_t *record;
	const json_t *event;
	const pl_avro_schema_t *schema;
	pl_stage_outcome_t outcome;
} pl_stage_item_t;

/* Handles items[0..n): records of one lane, in offset order, every one decoded, so a store can
 * take them in one round trip. Their effects must be as if handled one after the other: once
 * an item is given PL_STAGE_RETRY, no later item may have taken effect (the stage makes every
 * later item a RETRY and handles them again, in order, after the backoff); DEAD items may be
 * skipped over. */
typedef void (*pl_stage_batch_fn)(pl_stage_item_t *items, size_t n, void *arg);

/* Partition assignment hooks (e.g. restore saga state). Called on the stage thread. A non-OK
 * return from on_assign is fatal (pl_stage_run returns it). */
typedef pl_err_t (*pl_stage_assign_fn)(const char *topic, int32_t partition, void *arg);

typedef struct pl_stage_opts {
	const char *group;               /* consumer group id, e.g. "workflow" */
	const char *const *topics;       /* NULL-terminated */
	pl_stage_handler_fn handler;     /* one record per call, or ... */
	pl_stage_batch_fn batch_handler; /* ... up to 64 of a lane per call (set one of the two) */
	void *handler_arg;               /* for either */
	pl_stage_assign_fn on_assign;    /* optional, per partition */
	pl_stage_assign_fn on_revoke;    /* optional, per partition */
	/* optional: every record of topic/partition before next_offset is done (handled, its
	 * replies and dead letter acknowledged, its offset stored): the group will not deliver it
	 * again. Called on the stage thread after offsets are stored, and at assignment with the
	 * group's committed offset when it has one. Gets assign_arg. */
	void (*on_stored)(const char *topic, int32_t partition, int64_t next_offset, void *arg);
	void *assign_arg;
	const pl_avro_registry_t *registry;      /* for decoding; borrowed */
	bool raw;                                /* do not decode; handler gets event == NULL */
	pl_metrics_t *metrics;                   /* NULL = default */
	const char *const *extra_consumer_props; /* NULL-terminated key/value list, may be NULL */
	int max_batch;                           /* records per batch (default 500) */
	/* pre-fetched records held per partition, in KB (0 = 2048); size it to how fast the
	 * handler drains a partition (stage.c says what was measured) */
	int queue_kbytes;
	bool concurrent; /* the handler is thread-safe: handle records of different keys at once */
	/* optional: called on the stage thread after every batch (at least every 100 ms), e.g. for
	 * timers that must see the same state as the handler */
	void (*on_tick)(void *arg);
	void *tick_arg;
} pl_stage_opts_t;

/* Config options the stage reads (DP_RETRY_BACKOFF_MIN_MS, DP_RETRY_BACKOFF_MAX_MS,
 * DP_COMMIT_INTERVAL_MS, DP_STATS_INTERVAL_MS, DP_STAGE_WORKERS); add to a binary's tables. */
extern const pl_cfg_opt_t pl_stage_cfg[];

pl_stage_t *pl_stage_new(const pl_cfg_t *cfg, const pl_stage_opts_t *opts, char *errstr,
                         size_t errstr_size);
/* Runs until pl_stage_stop. Returns PL_OK after a clean shutdown, or the fatal error. */
pl_err_t pl_stage_run(pl_stage_t *stage);
/* Async-signal-safe. */
void pl_stage_stop(pl_stage_t *stage);
void pl_stage_destroy(pl_stage_t *stage);

/* Readiness: partitions assigned (or group joined with nothing to assign yet). */
bool pl_stage_ready(pl_stage_t *stage, char *reason, size_t reason_size);
/* The stage's producer (for services that also produce outside handlers). Owned by the stage. */
pl_producer_t *pl_stage_producer(pl_stage_t *stage);

/* Inside a handler: produce a reply that must be acknowledged before the record's offset is
 * stored. Copies its arguments. A send error other than a full queue makes the record RETRY. */
pl_err_t pl_stage_produce(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                          const void *value, size_t value_len, const pl_event_meta_t *meta);
/* Encodes event with the latest schema of schema_name and produces it (event_type = short name).
 * The record's traceparent is continued. */
pl_err_t pl_stage_produce_event(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                                const char *schema_name, const json_t *event, const char *event_id);
/* As pl_stage_produce_event, but the reply is held until every other produce of the record was
 * acknowledged, then sent (in the order asked, before the record's offset is stored); when one
 * of them fails, or the handler does not return OK, it is dropped with the record's retry. For
 * a handler whose state write must be durable before the commands it caused (a crash in
 * between would otherwise leave replies to a state never written). Encodes at once: an error
 * is returned here. */
pl_err_t pl_stage_produce_after(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                                const char *schema_name, const json_t *event, const char *event_id);
/* Sets the reason recorded with a DEAD or RETRY outcome (copied). */
void pl_stage_set_reason(pl_stage_ctx_t *ctx, pl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The trace-id / traceparent of the record being handled ("" when none). */
const char *pl_stage_traceparent(const pl_stage_ctx_t *ctx);

#endif
