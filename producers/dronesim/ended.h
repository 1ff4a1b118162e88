/* ended.h — the deliveries whose flight is over (or that ended before one began), as far as the
 * simulator must remember them: only that they ended, so a late DroneAssigned or reroute of one
 * (the two input topics are not ordered with each other) does not start a flight.
 *
 * A delivery is a 64-bit hash of its deliveryId, in the bucket of the time it was noted: time is
 * cut into buckets of bucket_ms, each an open-addressing table of bare hashes (8 bytes a slot),
 * so no time is stored per delivery and pruning drops whole buckets. A delivery is therefore
 * forgotten up to one bucket after the cut asked for (the dronesim uses 1/16 of its window). At
 * 1M deliveries over 6 partitions that is about 14 MB; 16-byte slots of (hash, time) in one
 * table took 24-28 MB.
 *
 * A hash shared by two deliveryIds would make the second look ended: about 1 in 2^64 per pair,
 * 3 in 10^8 for a million deliveries in the window.
 *
 * Ownership: the set copies nothing (ids are hashed). Thread rules: none (stage thread only). */
#ifndef DRONESIM_ENDED_H
#define DRONESIM_ENDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ended ended_t;

/* bucket_ms: how finely noting times are kept (>= 1). */
ended_t *ended_new(int64_t bucket_ms);
void ended_destroy(ended_t *set); /* NULL is a no-op */

/* Notes delivery_id as ended at now_ms (an earlier note keeps its time). */
void ended_add(ended_t *set, const char *delivery_id, int64_t now_ms);
bool ended_has(const ended_t *set, const char *delivery_id);
/* Forgets the deliveries noted before before_ms, bucket by bucket: a bucket goes once all of
 * its time is before before_ms, so an entry may outlive the cut by up to bucket_ms. Returns how
 * many were forgotten. */
size_t ended_prune(ended_t *set, int64_t before_ms);
size_t ended_size(const ended_t *set);

/* The 64-bit hash the set keeps of a deliveryId (never 0), and add/has by it, for callers that
 * only kept the hash (stops.h). */
uint64_t ended_hash(const char *delivery_id);
void ended_add_hash(ended_t *set, uint64_t hash, int64_t now_ms);
bool ended_has_hash(const ended_t *set, uint64_t hash);

#endif
