/* admin.h — Kafka administration for the ops CLI and tests: topics and their offsets, consumer
 * groups (list, describe, committed offsets, reset), record timestamps, and a "cursor": a consumer
 * group member that reads a topic up to the end it saw at start and commits explicitly and
 * synchronously, with commit metadata (the DLQ redrive's progress record).
 *
 * librdkafka errors are translated to pl_err_t here: PL_ERR_TRANSIENT / PL_ERR_TIMEOUT when the
 * broker cannot be reached, PL_ERR_NOT_FOUND for an unknown topic or group, PL_ERR_REJECTED when
 * the broker refuses (e.g. resetting a group that has members). Every failing call writes a
 * human sentence into errstr.
 * Ownership: everything returned through out-parameters is owned by the caller and freed with the
 * matching pl_admin_*_free / _destroy. Thread rules: one thread per pl_admin_t / cursor. */
#ifndef PL_ADMIN_H
#define PL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"
#include "kafka.h"

typedef struct pl_admin pl_admin_t;

/* Connects (brokers from DP_KAFKA_BROKERS, DP_KAFKA_PROP_*) and checks within timeout_ms that a
 * broker answers; timeout_ms is also the limit of every later request. */
pl_err_t pl_admin_new(const pl_cfg_t *cfg, int timeout_ms, pl_admin_t **out, char *errstr,
                      size_t errstr_size);
void pl_admin_destroy(pl_admin_t *admin);

/* ---- topics ---- */

typedef struct pl_admin_topic {
	char *name;
	int partition_count;
} pl_admin_topic_t;

/* Every topic except internal ones (names starting with "__"), sorted by name. */
pl_err_t pl_admin_topics(pl_admin_t *admin, pl_admin_topic_t **topics, size_t *count, char *errstr,
                         size_t errstr_size);
void pl_admin_topics_free(pl_admin_topic_t *topics, size_t count);
/* Partition count of one topic; PL_ERR_NOT_FOUND when it does not exist. */
pl_err_t pl_admin_partition_count(pl_admin_t *admin, const char *topic, int *count, char *errstr,
                                  size_t errstr_size);
/* Creates a topic (replication factor 1 unless the broker default says otherwise); PL_OK when it
 * already exists with any partition count. */
pl_err_t pl_admin_create_topic(pl_admin_t *admin, const char *topic, int partitions, char *errstr,
                               size_t errstr_size);
/* First and end offset of a partition. */
pl_err_t pl_admin_watermarks(pl_admin_t *admin, const char *topic, int32_t partition, int64_t *low,
                             int64_t *high, char *errstr, size_t errstr_size);
/* For partitions 0..count-1: offset of the first record with timestamp >= time_ms, or -1 when
 * there is none (the caller decides: usually the end offset). */
pl_err_t pl_admin_offsets_for_time(pl_admin_t *admin, const char *topic, int count, int64_t time_ms,
                                   int64_t *offsets, char *errstr, size_t errstr_size);
/* Timestamps of the records at (partitions[i], offsets[i]) of topic, -1 where no record could be
 * read within the timeout (e.g. compacted away). Reads at most one record per entry. */
pl_err_t pl_admin_record_timestamps(pl_admin_t *admin, const char *topic, const int32_t *partitions,
                                    const int64_t *offsets, size_t count, int64_t *timestamps,
                                    char *errstr, size_t errstr_size);

/* ---- consumer groups ---- */

typedef struct pl_admin_member {
	char *member_id;
	char *client_id;
	char *host;
} pl_admin_member_t;

typedef struct pl_admin_group {
	char *group_id;
	char *state; /* "Stable", "Empty", "PreparingRebalance", "Dead", ... */
	bool simple; /* offsets committed without group membership (manual assignment) */
	pl_admin_member_t *members;
	size_t member_count;
} pl_admin_group_t;

/* Ids of every consumer group, sorted. */
pl_err_t pl_admin_group_ids(pl_admin_t *admin, char ***groups, size_t *count, char *errstr,
                            size_t errstr_size);
void pl_admin_group_ids_free(char **groups, size_t count);
/* State and members of one group. A group that never existed is reported as state "Dead" with
 * no members (that is what the broker answers). */
pl_err_t pl_admin_group_describe(pl_admin_t *admin, const char *group, pl_admin_group_t *out,
                                 char *errstr, size_t errstr_size);
void pl_admin_group_clear(pl_admin_group_t *group);

typedef struct pl_admin_offset {
	char *topic;
	int32_t partition;
	int64_t offset; /* -1 = no committed offset */
	char *metadata; /* commit metadata, "" when none */
} pl_admin_offset_t;

/* Committed offsets of a group: of every partition it committed when topic is NULL, else of
 * partitions 0..partition_count-1 of topic (offset -1 where none). */
pl_err_t pl_admin_group_offsets(pl_admin_t *admin, const char *group, const char *topic,
                                int partition_count, pl_admin_offset_t **offsets, size_t *count,
                                char *errstr, size_t errstr_size);
void pl_admin_offsets_free(pl_admin_offset_t *offsets, size_t count);
/* Sets the committed offsets of group on topic: offsets[p] for partition p, skipped when < 0.
 * The broker refuses (PL_ERR_REJECTED) while the group has active members. */
pl_err_t pl_admin_group_reset(pl_admin_t *admin, const char *group, const char *topic,
                              int partition_count, const int64_t *offsets, char *errstr,
                              size_t errstr_size);

/* ---- cursor: a group member reading a topic with explicit, synchronous commits ---- */

typedef struct pl_admin_cursor pl_admin_cursor_t;

/* Joins group on topic and waits (timeout_ms) until it owns every partition: a second cursor of
 * the same group takes partitions away, which the first one sees as PL_ERR_FATAL from next/commit,
 * so two runs never work on the same partition. Reading starts at the committed offsets (the
 * beginning where none) and ends at the end offsets seen once assigned. */
pl_err_t pl_admin_cursor_new(const pl_cfg_t *cfg, const char *group, const char *topic,
                             int timeout_ms, pl_admin_cursor_t **out, char *errstr,
                             size_t errstr_size);
/* The same records from the same committed offsets, without joining the group (a running cursor
 * of the group keeps its partitions) and without ever committing (commit: PL_ERR_REJECTED): what
 * a dry run reads. */
pl_err_t pl_admin_cursor_peek(const pl_cfg_t *cfg, const char *group, const char *topic,
                              int timeout_ms, pl_admin_cursor_t **out, char *errstr,
                              size_t errstr_size);
void pl_admin_cursor_destroy(pl_admin_cursor_t *cursor);
int pl_admin_cursor_partitions(const pl_admin_cursor_t *cursor);
/* The committed offset (-1 none) and its metadata ("" none; owned by the cursor) at start. */
int64_t pl_admin_cursor_committed(const pl_admin_cursor_t *cursor, int32_t partition,
                                  const char **metadata);
/* Records between the start positions and the end offsets (for progress). */
int64_t pl_admin_cursor_remaining(const pl_admin_cursor_t *cursor);
/* PL_OK with a record (valid until the next call); PL_ERR_TIMEOUT when none came in timeout_ms;
 * PL_ERR_NOT_FOUND when every partition reached its end; PL_ERR_FATAL when partitions were taken
 * away (another member joined). */
pl_err_t pl_admin_cursor_next(pl_admin_cursor_t *cursor, pl_record_t *record, int timeout_ms);
/* Commits offsets[i] with metadata[i] (may be NULL) for partitions[i], synchronously. */
pl_err_t pl_admin_cursor_commit(pl_admin_cursor_t *cursor, const int32_t *partitions,
                                const int64_t *offsets, const char *const *metadata, size_t count,
                                char *errstr, size_t errstr_size);

#endif
