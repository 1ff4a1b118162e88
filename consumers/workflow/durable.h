/* durable.h — when a finished saga's outbox may go: per partition, a queue of deliveries that
 * wait until every input that may have touched their saga is done for good.
 *
 * Why. The outbox of a saga (STATE_MACHINE.md) serves one case: an input applied, its state
 * written, but one of its outputs not acknowledged, so the stage delivers the input again and
 * the duplicate re-sends the outputs from the outbox. Once the stage has stored the offsets of
 * every input handled so far (stage.h: on_stored), no such redelivery can come, and a finished
 * saga, which takes no new input that has outputs of its own to re-send, needs its outbox no
 * more. A finished saga without its outbox is about an eighth of its size (workflow.c keeps it
 * encoded, and writes it so to the changelog), so memory stops growing with the outboxes of
 * every delivery ever made, and a restore reads finished sagas compact.
 *
 * Positions are per input topic (index 0..DUR_TOPICS-1) of the one partition: "handled" = the
 * offset after the last input handled, "stored" = the offset the group will resume from.
 * An entry records the handled positions when it was queued and is ready when every stored
 * position reached them (a topic with nothing handled needs nothing). Entries come out in the
 * order they went in, so one that waits holds back those behind it: late, never early.
 * A restore queues one entry for all the sagas read from the changelog, with the partitions'
 * end offsets at that time: every input behind a restored state lies before them.
 *
 * Pure bookkeeping (no Kafka, no saga): the caller reports positions and acts on what comes out.
 * Ownership: dur_t owns copies of the delivery ids; dur_next_ready hands one to the caller.
 * Thread rules: none (the workflow uses it on its stage thread only). */
#ifndef WORKFLOW_DURABLE_H
#define WORKFLOW_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DUR_TOPICS 3

typedef struct dur dur_t;

dur_t *dur_new(void);
void dur_destroy(dur_t *dur); /* NULL is a no-op */

/* An input of topic at offset was handled (any outcome). Positions only grow. */
void dur_handled(dur_t *dur, int topic, int64_t offset);
/* The group will resume topic at next_offset (stored, or committed at assignment). */
void dur_stored(dur_t *dur, int topic, int64_t next_offset);

/* Queues delivery_id (copied) until the inputs handled so far are done. */
void dur_watch(dur_t *dur, const char *delivery_id);
/* Queues "every saga of the partition" until the stored positions reach end[] (restore). */
void dur_watch_all(dur_t *dur, const int64_t end[DUR_TOPICS]);

/* Takes the first entry if it is ready: true with *delivery_id (caller frees with pl_free) or,
 * for a dur_watch_all entry, *delivery_id = NULL. false when the queue is empty or its first
 * entry still waits. */
bool dur_next_ready(dur_t *dur, char **delivery_id);

size_t dur_waiting(const dur_t *dur);

#endif
