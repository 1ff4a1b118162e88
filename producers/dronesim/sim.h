/* sim.h — the drone simulator's flights: state of one flight, the pure step that moves it along
 * its legs, its telemetry record (schemas/DroneTelemetry.v1.avsc) in both directions, and the
 * per-partition table of flights keyed by deliveryId. No I/O, no clock: callers pass the time.
 *
 * A flight flies from the drone's position to the pickup (phase ToPickup), then to the dropoff
 * (ToDropoff), then is Arrived. Legs follow the great circle (pl_geo_interpolate). A leg ends
 * exactly on its end point (never beyond it); the flight then WAITS there, still in its phase,
 * until the caller reports the arrival (sim_arrival_done): the phase only changes once the
 * arrival event is durable, so the telemetry log never runs ahead of the arrival events.
 * Every telemetry record carries what resuming needs (position, phase, pickup, dropoff, seq), so
 * the last record of a delivery is enough to continue its flight after a restart.
 *
 * Ownership: the table owns its flights; sim_table_get/add return borrowed pointers valid until
 * the entry is removed or the table destroyed. JSON in/out is borrowed / a new reference.
 * Thread rules: none (one table per partition, used by one thread). */
#ifndef DRONESIM_SIM_H
#define DRONESIM_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SIM_ID_MAX              129   /* longest deliveryId / droneId + NUL */
#define SIM_CRUISE_ALTITUDE_M   120.0 /* altitude while between two points */
#define SIM_ARRIVAL_TOLERANCE_M 0.001 /* closer than this to a leg's end = on it */
#define SIM_TELEMETRY_SCHEMA    "DroneTelemetry"

typedef enum sim_phase { SIM_TO_PICKUP = 0, SIM_TO_DROPOFF, SIM_ARRIVED } sim_phase_t;

/* Where an entry of the table stands. */
typedef enum sim_state {
	SIM_PENDING = 0, /* known from a lifecycle event (route), no drone assigned yet */
	SIM_FLYING,      /* a flight in progress */
	SIM_DONE,        /* arrived at the dropoff: never flies again */
	SIM_STOPPED, /* cancelled, failed, completed early or drone released: never flies again */
} sim_state_t;

typedef enum sim_arrival {
	SIM_ARRIVAL_NONE = 0,
	SIM_ARRIVAL_PICKUP,
	SIM_ARRIVAL_DROPOFF
} sim_arrival_t;

typedef struct sim_point {
	double latitude, longitude, altitude;
} sim_point_t;

/* Invariants: phase == SIM_ARRIVED iff state == SIM_DONE (for entries that flew); position is
 * on the current leg; seq is the seq the NEXT telemetry record gets (records 0..seq-1 were
 * sent); route_version is the lifecycle version the pickup/dropoff came from (0 = the
 * DroneAssigned or a telemetry record). */
typedef struct sim_flight {
	char delivery_id[SIM_ID_MAX];
	char drone_id[SIM_ID_MAX]; /* "" while pending */
	sim_state_t state;
	sim_phase_t phase;
	sim_point_t position, pickup, dropoff;
	int64_t route_version;
	int64_t seq;
	int64_t last_advance_ms;   /* wall clock of the last sim_advance (caller's bookkeeping) */
	int64_t next_telemetry_ms; /* wall clock the next periodic record is due */
	int64_t touched_ms;        /* when it was created or finished (pruning) */
} sim_flight_t;

const char *sim_phase_name(sim_phase_t phase);       /* "ToPickup", "ToDropoff", "Arrived" */
const char *sim_arrival_name(sim_arrival_t arrival); /* "AtPickup", "AtDropoff" */

/* Simulated seconds in wall_ms of wall-clock time at time_scale (simulated s per wall s). */
double sim_elapsed_s(int64_t wall_ms, double time_scale);

/* The point the current leg ends at (pickup or dropoff; the dropoff once arrived). */
const sim_point_t *sim_target(const sim_flight_t *flight);

/* Moves a flying flight by sim_seconds of simulated time at speed_mps along its current leg.
 * When the leg's end is reached the flight is put exactly on it and the arrival is returned;
 * *leftover_s (may be NULL) receives the simulated seconds not used. A flight already on its
 * leg's end returns the arrival again at once (the caller did not report it yet). Not flying,
 * or sim_seconds <= 0: nothing moves (arrival NONE, or the pending arrival as above). */
sim_arrival_t sim_advance(sim_flight_t *flight, double sim_seconds, double speed_mps,
                          double *leftover_s);

/* The arrival is durable: AtPickup -> phase ToDropoff; AtDropoff -> phase Arrived, state DONE. */
void sim_arrival_done(sim_flight_t *flight, sim_arrival_t arrival, int64_t now_ms);

/* A flight from a DroneAssigned event: drone at `position`, route pickup -> dropoff, phase
 * ToPickup, seq 0. PL_ERR_SCHEMA with a reason when a field is missing or out of range. */
pl_err_t sim_flight_from_assigned(const json_t *assigned, sim_flight_t *flight, char *errstr,
                                  size_t errstr_size);
/* A flight from its last telemetry record: same position, phase and route; seq = record's + 1;
 * state FLYING, or DONE when the record says Arrived. PL_ERR_SCHEMA when unusable. */
pl_err_t sim_flight_from_telemetry(const json_t *telemetry, sim_flight_t *flight, char *errstr,
                                   size_t errstr_size);
/* Reads a GeoPoint object ({latitude, longitude, altitude?}); false when absent or out of
 * range. */
bool sim_point_from_json(const json_t *point, sim_point_t *out);

/* The telemetry record of the flight now (new reference), with seq = flight->seq and the given
 * eventId. speedMps is speed_mps while flying between points, 0 otherwise; the caller passes
 * metres per wall-clock second (simulated speed x time scale), so ETAs computed from telemetry
 * are wall-clock ETAs. */
json_t *sim_telemetry_json(const sim_flight_t *flight, double speed_mps, int64_t now_ms,
                           const char *event_id);

/* Deterministic event ids (UUID v5): telemetry by (deliveryId, seq), arrivals by (deliveryId,
 * phase), so a record re-emitted after a crash keeps its id. */
void sim_telemetry_id(const char *delivery_id, int64_t seq, char out[37]);
void sim_arrival_id(const char *delivery_id, sim_arrival_t arrival, char out[37]);

/* ---- table of one partition's deliveries ---------------------------------------------------- */

typedef struct sim_table sim_table_t;

sim_table_t *sim_table_new(void);
void sim_table_destroy(sim_table_t *table); /* NULL is a no-op */
sim_flight_t *sim_table_get(sim_table_t *table, const char *delivery_id);
/* The entry of delivery_id, created zeroed (state PENDING, id set) when missing. */
sim_flight_t *sim_table_add(sim_table_t *table, const char *delivery_id);
void sim_table_remove(sim_table_t *table, const char *delivery_id);
size_t sim_table_size(const sim_table_t *table);
/* Iteration: start with *cursor = 0; NULL at the end. Removing the returned entry during an
 * iteration may make the iteration skip one entry (fine for pruning). */
sim_flight_t *sim_table_next(sim_table_t *table, size_t *cursor);

typedef enum sim_start {
	SIM_START_NEW = 0, /* the flight was created (or a pending entry started) */
	SIM_START_FLYING,  /* already flying: duplicate assignment, nothing changed */
	SIM_START_DONE,    /* already arrived: never a second flight */
	SIM_START_STOPPED, /* stopped before or while flying: never flies */
} sim_start_t;

/* Idempotent start from a flight built by sim_flight_from_assigned. A pending entry keeps the
 * route it learnt from a newer lifecycle event. *out (may be NULL) is the table's entry. */
sim_start_t sim_table_start(sim_table_t *table, const sim_flight_t *assigned, int64_t now_ms,
                            sim_flight_t **out);

#endif
