/* ended.h — the deliveries whose flight is over (or that ended before one began), as far as the
 * simulator must remember them: only that they ended, so a late DroneAssigned or reroute of one
 * (the two input topics are not ordered with each other) does not start a flight. A set of
 * 64-bit hashes of deliveryIds, each with the time it was noted: 16 bytes per delivery, against
 * ~450 for a flight record, so a day of deliveries (DP_SIM_RESUME_WINDOW_S) stays small.
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

ended_t *ended_new(void);
void ended_destroy(ended_t *set); /* NULL is a no-op */

/* Notes delivery_id as ended at now_ms (an earlier note keeps its time). */
void ended_add(ended_t *set, const char *delivery_id, int64_t now_ms);
bool ended_has(const ended_t *set, const char *delivery_id);
/* Forgets the deliveries noted before before_ms; returns how many. */
size_t ended_prune(ended_t *set, int64_t before_ms);
size_t ended_size(const ended_t *set);

#endif
