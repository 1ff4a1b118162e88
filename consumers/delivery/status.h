/* status.h — dronepipe-delivery's read models, computed from what the store holds: the Delivery
 * view, the status (stage, last known location, ETAs), a history entry, and Server-Sent Events
 * framing. PURE: no I/O, no clock (the caller passes `now`), no globals; thread-safe.
 *
 * Inputs are the stored documents as JSON objects:
 *   lifecycle  the latest applied DeliveryLifecycle event (schemas/DeliveryLifecycle.v1.avsc),
 *              a full snapshot of the delivery;
 *   telemetry  the latest applied DroneTelemetry record (schemas/DroneTelemetry.v1.avsc:
 *              seq, time, latitude, longitude, altitude, speedMps, phase ToPickup | ToDropoff |
 *              Arrived) or NULL when none.
 *
 * Stage integers (API.md, reference spellings): Created 0, Rescheduled 1, HeadedToPickup 2,
 * HeadedToDropoff 3, Completed 4, Cancelled 5. dronepipe's extra stages map to the nearest
 * reference integer (schemas/README.md): Scheduled -> 0 (a drone is assigned but the flight
 * has not begun: still "created" for a reference client), Failed -> 5 (ended without delivery,
 * like Cancelled). stageName always carries the exact name.
 *
 * ETA formula (status_build):
 *   finished (Completed, Cancelled, Failed)  -> pickupETA = deliveryETA = null.
 *   picked up  = stage HeadedToDropoff, or telemetry phase ToDropoff or Arrived (at the drop-off).
 *   speed v    = telemetry speedMps when >= 1 m/s, else default_speed_mps (DP_DRONE_SPEED_MPS):
 *                a hovering drone (speed 0) would otherwise give an infinite ETA.
 *   d(a, b)    = great-circle distance (pl_geo_distance_m).
 *   With telemetry at position P:
 *     before pickup: pickupETA   = now + d(P, pickup) / v
 *                    deliveryETA = now + (d(P, pickup) + d(pickup, dropoff)) / v
 *     after pickup:  pickupETA   = the snapshot's pickupEta (the actual pickup time), or null
 *                    deliveryETA = now + d(P, dropoff) / v
 *   Without telemetry (drone not flying yet, or no record seen): the snapshot's pickupEta /
 *   deliveryEta (the workflow's estimate at assignment), null when it has none (before a drone
 *   is assigned). Times are rounded to the millisecond and written as ISO-8601 UTC
 *   ("2026-11-27T05:30:00.123Z").
 *   lastKnownLocation = the telemetry position {altitude, latitude, longitude}, null without
 *   telemetry. updatedAt = the later of the snapshot's time and the telemetry's time.
 *
 * Ownership: functions returning json_t* return a new reference; char* results are pl_malloc'd
 * (free with pl_free). Arguments are borrowed. */
#ifndef DELIVERY_STATUS_H
#define DELIVERY_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Reference integer of a stage name; -1 when the name is unknown. */
int status_stage_int(const char *stage_name);
/* Completed, Cancelled or Failed. */
bool status_stage_finished(const char *stage_name);

/* API.md's Delivery JSON: {"id","owner":{"userId","accountId"},"pickup":{...},"dropoff":{...},
 * "deadline","expedited","confirmationRequired","droneId","packageId","stage","stageName"}.
 * owner.userId and owner.accountId are both the ownerId (dronepipe has one owner identity).
 * NULL when lifecycle lacks deliveryId or stage. */
json_t *status_delivery_view(const json_t *lifecycle);

/* {"stage","stageName","lastKnownLocation","pickupETA","deliveryETA","updatedAt"} plus
 * "deliveryId", "phase" (telemetry phase or null) and "reason" (why Cancelled/Failed or null).
 * NULL when lifecycle lacks deliveryId or stage. */
json_t *status_build(const json_t *lifecycle, const json_t *telemetry, int64_t now_ms,
                     double default_speed_mps);

/* The fields of a lifecycle event a history entry is made of (borrowed; NULL when absent). */
typedef struct status_event {
	const char *stage, *event_id, *owner_id, *drone_id, *reason;
	const char *pickup_location, *dropoff_location;
	int64_t version, time_ms;
	int64_t pickup_time; /* when has_pickup_time */
	bool has_pickup_time;
} status_event_t;

/* One history entry for a lifecycle event, as JSON text with its keys in byte order:
 * {"detail","eventId","stage","stageName","time","version"}; detail is a sentence naming what
 * happened (drone, reason, new locations). pl_malloc'd; NULL when the event has no stage. */
char *status_history_entry(const status_event_t *event);

/* The SSE event id of a status: "<version>.<seq + 1>" (".0" without telemetry). It increases with
 * every applied change, so a stream sends a status only when its id is newer (status_id_newer). */
void status_event_id(const json_t *lifecycle, const json_t *telemetry, char out[48]);
/* True when id a is newer than id b ("" is older than anything). */
bool status_id_newer(const char *a, const char *b);

/* One Server-Sent Events frame: "event: <event>\n" (when event is non-empty), "id: <id>\n" (when
 * id is non-empty), one "data: <line>\n" per line of data (lines split at CRLF, CR or LF; an
 * empty data gives one empty data line), then "\n". CR and LF in event and id are dropped (they
 * would end the field). Returns a pl_malloc'd NUL-terminated string; *len (optional) = length. */
char *status_sse_frame(const char *event, const char *id, const char *data, size_t *len);

#endif
