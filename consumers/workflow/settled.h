/* settled.h — the sagas of one partition that are over for good, as little as the workflow must
 * remember of them: their finished status and the eventIds they applied.
 *
 * Why. Every delivery ever made keeps a saga, so the sagas held in memory grow without end. A
 * finished saga whose outbox is gone (durable.h: every input that touched it is stored) only
 * answers late and repeated inputs, and by STATE_MACHINE.md it answers them from two things:
 * its status (every input to a finished saga is ignored, but a DroneAssigned, whose drone is
 * released) and its seenEventIds (a repeat is a duplicate, with nothing to re-send). So such a
 * saga is kept here as a 128-bit hash of its deliveryId, its status and the 64-bit hashes of
 * its seen eventIds: 88 bytes in a slot, against about 700 for its encoded state in a jansson
 * object. Its full state stays the latest value of the changelog.
 *
 * A saga that applied more than SETTLED_SEEN_MAX inputs is not settled (settled_put refuses it)
 * and stays whole, so no answer changes. Hash collisions: two deliveryIds sharing 128 bits, or a
 * new eventId sharing 64 bits with one of a saga's at most 8: below 1 in 10^18 per input.
 *
 * Open addressing with linear probing; slots grow at three quarters full. Ownership: the set
 * copies nothing (ids are hashed); settled_get's entry lives until the next put or destroy.
 * Thread rules: none (the workflow's stage thread only). */
#ifndef WORKFLOW_SETTLED_H
#define WORKFLOW_SETTLED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SETTLED_SEEN_MAX 8

typedef struct settled settled_t;

typedef struct settled_entry {
	uint64_t id[2]; /* hash of the deliveryId; {0, 0} = empty slot */
	uint64_t seen[SETTLED_SEEN_MAX];
	uint8_t nseen;
	uint8_t status; /* saga_status_t, one of the finished ones */
} settled_entry_t;

settled_t *settled_new(void);
void settled_destroy(settled_t *set); /* NULL is a no-op */

/* Settles delivery_id with status and the seen eventIds (replacing an entry it had). false, and
 * nothing stored, when nseen > SETTLED_SEEN_MAX. */
bool settled_put(settled_t *set, const char *delivery_id, int status, const char *const *seen,
                 size_t nseen);
/* delivery_id's entry, or NULL. */
settled_entry_t *settled_get(const settled_t *set, const char *delivery_id);
bool settled_seen(const settled_entry_t *e, const char *event_id);
size_t settled_size(const settled_t *set);

#endif
