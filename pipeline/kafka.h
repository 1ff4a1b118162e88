/* kafka.h — idempotent Kafka producer (acks=all) with per-record completion, plus the record and
 * header types shared with the stage loop and the ops CLI.
 *
 * Each pl_producer_send completes exactly once through its callback, from the producer's own
 * poll thread, after the broker acknowledged the record (PL_OK) or librdkafka gave up on it
 * (an error). The producer owns that thread; callbacks must not block.
 * Standard headers written by pl_producer_send_event: event_type, event_id (UUID v4, generated
 * when not given), traceparent (W3C, continued or new), produced_at (ms since epoch).
 * Thread rules: pl_producer_* are thread-safe. Ownership noted per function. */
#ifndef PL_KAFKA_H
#define PL_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"

typedef struct pl_header {
	const char *name;
	const void *value;
	size_t len;
} pl_header_t;

#define PL_MAX_HEADERS 16

/* A consumed record, borrowed from librdkafka for the duration of a handler call. */
typedef struct pl_record {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t timestamp_ms; /* -1 when the broker gave none */
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	pl_header_t headers[PL_MAX_HEADERS];
	size_t header_count;
} pl_record_t;

/* Value of a header as a NUL-terminated copy in buf (truncated to buf_size-1); NULL if absent. */
const char *pl_record_header(const pl_record_t *record, const char *name, char *buf,
                             size_t buf_size);

typedef struct pl_producer pl_producer_t;

/* Completion: err is PL_OK when acknowledged; reason is a human text for other errors.
 * offset/partition are where the record landed (valid on PL_OK). */
typedef void (*pl_producer_done_fn)(void *opaque, pl_err_t err, const char *reason,
                                    int32_t partition, int64_t offset);

/* Creates an idempotent producer from the common config (DP_KAFKA_BROKERS, DP_KAFKA_PROP_*).
 * extra_props is a NULL-terminated key/value list applied before the pass-through (may be NULL).
 * NULL + errstr on failure. */
pl_producer_t *pl_producer_new(const pl_cfg_t *cfg, const char *client_id,
                               const char *const *extra_props, char *errstr, size_t errstr_size);
/* Flushes for up to timeout_ms, then destroys. Records still queued complete with an error. */
void pl_producer_destroy(pl_producer_t *producer, int timeout_ms);

/* Enqueues one record. key/value/headers are copied. On PL_OK the callback will run exactly once.
 * Immediate errors (queue full -> PL_ERR_QUEUE_FULL, unknown topic, fatal producer) are returned
 * and the callback is not called. */
pl_err_t pl_producer_send(pl_producer_t *producer, const char *topic, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          const pl_header_t *headers, size_t header_count, pl_producer_done_fn done,
                          void *opaque);

/* Standard event headers. event_id NULL = new UUID; traceparent NULL = new trace.
 * extra headers (may be NULL) are appended. */
typedef struct pl_event_meta {
	const char *event_type;
	const char *event_id;
	const char *traceparent;
	const pl_header_t *extra;
	size_t extra_count;
} pl_event_meta_t;

/* The standard headers of meta, with storage for the generated values. */
typedef struct pl_event_headers {
	char event_id[37];
	char traceparent[56];
	char produced_at[24];
	pl_header_t h[PL_MAX_HEADERS];
	size_t n;
} pl_event_headers_t;

/* Fills out from meta: event_id (given or a new UUID), traceparent (given when valid, else a new
 * trace), produced_at = now, then meta's extra headers. out must not move while h is used. */
void pl_event_headers_build(pl_event_headers_t *out, const pl_event_meta_t *meta);

pl_err_t pl_producer_send_event(pl_producer_t *producer, const char *topic, const char *key,
                                const void *value, size_t value_len, const pl_event_meta_t *meta,
                                pl_producer_done_fn done, void *opaque);

/* A group of sends awaited together, e.g. a batch of records that must all be acknowledged
 * before the next step: one wait for many records instead of one per record. Each send names a
 * slot (0..slots-1, e.g. one per saga); a slot's result is the first error among its sends
 * (PL_OK when all were acknowledged). Owned by the caller; used from one thread, the
 * completions come from librdkafka's. */
typedef struct pl_produce_group pl_produce_group_t;
pl_produce_group_t *pl_produce_group_new(size_t slots);
/* Enqueues one record for slot (key/value/headers copied). An immediate error is returned and
 * also recorded as the slot's result. */
pl_err_t pl_produce_group_send(pl_produce_group_t *group, pl_producer_t *producer, size_t slot,
                               const char *topic, const void *key, size_t key_len,
                               const void *value, size_t value_len, const pl_header_t *headers,
                               size_t header_count);
/* Records an error of the caller's for slot (e.g. a record it could not encode), if the slot
 * has none yet. */
void pl_produce_group_fail(pl_produce_group_t *group, size_t slot, pl_err_t err,
                           const char *reason);
/* Waits until every send completed. A slot with sends still out after timeout_ms reads
 * PL_ERR_TIMEOUT; the call still waits for their completions (librdkafka always reports one)
 * before it returns, so the group can be destroyed. */
void pl_produce_group_wait(pl_produce_group_t *group, pl_producer_t *producer, int timeout_ms);
/* The slot's result; *reason (may be NULL) = its text, valid until destroy. */
pl_err_t pl_produce_group_result(const pl_produce_group_t *group, size_t slot, const char **reason);
void pl_produce_group_destroy(pl_produce_group_t *group);

/* Sends and waits for the completion (a group of one). */
pl_err_t pl_producer_send_sync(pl_producer_t *producer, const char *topic, const void *key,
                               size_t key_len, const void *value, size_t value_len,
                               const pl_header_t *headers, size_t header_count, int timeout_ms,
                               char *errstr, size_t errstr_size);

/* The partition's high watermark (the offset the next record will get), asked of the broker.
 * PL_ERR_TIMEOUT / PL_ERR_TRANSIENT when it does not answer; reason in errstr. */
pl_err_t pl_producer_high_watermark(pl_producer_t *producer, const char *topic, int32_t partition,
                                    int timeout_ms, int64_t *high, char *errstr,
                                    size_t errstr_size);

/* True once the producer has broker metadata (readiness); reason says why not. */
bool pl_producer_ready(pl_producer_t *producer, char *reason, size_t reason_size);
/* Records queued and not yet completed. */
int pl_producer_outq_len(pl_producer_t *producer);

/* Identifiers. buf must hold 37 bytes (UUID) / 56 bytes (traceparent). */
void pl_uuid_v4(char out[37]);
/* UUID v5 (SHA-1, RFC 4122) of name in namespace ns (a UUID text). PL_ERR_INVALID on bad ns. */
pl_err_t pl_uuid_v5(const char *ns, const void *name, size_t name_len, char out[37]);
/* Validates a W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>"; writes the trace-id into trace_id
 * (33 bytes) when valid. */
bool pl_traceparent_parse(const char *traceparent, char trace_id[33]);
/* A child traceparent of parent (same trace, new span), or a new trace when parent is invalid. */
void pl_traceparent_child(const char *parent, char out[56]);

int64_t pl_now_ms(void);

#endif
