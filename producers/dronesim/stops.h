/* stops.h — while a partition is restored, how each delivery was stopped: by a finished
 * lifecycle or a DroneReleased without a drone (any drone), or by a DroneReleased of one drone.
 * The last record read for a delivery decides, as its value in the history. A map of 64-bit
 * hashes (ended_hash of the deliveryId -> 0 for any drone, else ended_hash of the droneId): 16
 * bytes a slot, where a jansson object of ids took ~150 bytes a delivery, so restoring a day of
 * a million deliveries no longer peaks at 60 MB.
 *
 * Open addressing with linear probing; grows at three quarters full. Ownership: copies nothing.
 * Thread rules: none (the restore runs on the stage thread). */
#ifndef DRONESIM_STOPS_H
#define DRONESIM_STOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STOPS_ANY_DRONE 0

typedef struct stops stops_t;

stops_t *stops_new(void);
void stops_destroy(stops_t *m); /* NULL is a no-op */

/* delivery (a hash, never 0) stopped for drone (STOPS_ANY_DRONE or a drone's hash); replaces. */
void stops_put(stops_t *m, uint64_t delivery, uint64_t drone);
/* true with *drone when delivery was stopped */
bool stops_get(const stops_t *m, uint64_t delivery, uint64_t *drone);
/* Calls fn for every stopped delivery, in no order. */
void stops_each(const stops_t *m, void (*fn)(uint64_t delivery, uint64_t drone, void *arg),
                void *arg);
size_t stops_size(const stops_t *m);

#endif
