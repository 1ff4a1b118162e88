/* fleet.h — the drone fleet of dronepipe-scheduler, kept in a MongoDB-API server (database
 * chosen by the caller, normally "dronescheduler"), and the pure claim-order logic.
 *
 * Collections:
 *   drones       {_id: "drone-0001", seq, gen, status: "available"|"assigned", deliveryId,
 *                 lat, lon}                                   (status/deliveryId: a hint only)
 *   claims       {_id: "<droneId>@<gen>", droneId, gen, deliveryId, state: "held"|"released",
 *                 lat, lon, claimedAt, releasedAt}            (insert-only lock log)
 *   assignments  {_id: deliveryId, ownerId, status: "assigned"|"completed"|"released",
 *                 droneId (null: released before it ever held a drone), droneGen,
 *                 position{lat,lon}, pickup{lat,lon}, dropoff{lat,lon}, assignedAt,
 *                 releasedAt, releaseReason, routeMeters, traveledMeters, createdAt,
 *                 holdSlots (the delivery's holds slots when it was decided)}
 *   holds        {_id: "<deliveryId>#<slot>", claim: "<droneId>@<gen>"}  (the claims a delivery
 *                 tried, slots 0, 1, ... inserted before each claim insert, so its claims are
 *                 found by _id; insert-only, as an array updated in place loses additions)
 *   releases     {_id: deliveryId, reason, releasedAt}    (the first release of an assignment)
 *
 * ROUND TRIPS. FerretDB spends about 0.5 ms of CPU on each command, so the common cases take
 * the fewest: a first AssignDrone inserts holds slot 0 (a duplicate there sends it to the careful
 * path: read the assignment, then the held claims), the claim and the assignment, and updates the
 * drone hint (4 commands); the first release of an assignment decided with one holds slot reads
 * the assignment, inserts the release, updates the assignment, reads holds slot 1 (crash
 * leftovers of a concurrent copy) and frees the claim: drone hint and claim (6 commands).
 *
 * WHY EVERY FILTER IS AN _id. FerretDB 1.x with SQLite turns only a filter that is exactly
 * {_id: <string>} into SQL; any other filter, {_id, gen} included, reads and decodes the whole
 * collection in Go. Filters on claims or assignments would make every command cost grow with
 * the deliveries ever made, so every per-command read and write names one _id: the claims of a
 * delivery come from its holds slots, its first release from releases/<deliveryId>, and the
 * drones' hints are set by _id with a generation that only grows ($max). Only the start-up
 * repair, the candidate read (cached) and the utilization report filter on other fields.
 *
 * WHY EVERY DECISION IS AN INSERT. FerretDB 1.x (SQLite back end) runs findAndModify and
 * conditional updates as "read, filter in Go, write the new document by _id", with no
 * compare-and-set: 8 threads racing findAndModify({_id, status: "available"}) over 50 drones got
 * 90 "successful" claims in a test, and two copies of one AssignDrone both "finalised" an
 * update-based assignment with different drones. Inserting a unique _id IS atomic there (and in
 * MongoDB): 8 threads inserting the same 50 ids got exactly 50 successes. So:
 *   - a drone is claimed by inserting claims/"<droneId>@<gen>": one delivery wins each
 *     generation of a drone; releasing moves the drone to gen+1, which opens the next claim;
 *   - a delivery's outcome is decided by inserting assignments/<deliveryId>: the first insert
 *     (an assignment with its drone, or a release's "released without a drone" record) wins,
 *     and whoever loses gives back the claim it holds.
 * Updates only move documents their caller already owns by such an insert (hints, release
 * fields), so a lost update can make a hint stale but can never give a drone to two deliveries.
 *
 * INVARIANTS
 *   I1  At most one delivery holds drone X at generation g (unique claims/_id "X@g").
 *   I2  A claim is inserted only while its delivery's AssignDrone is being handled, i.e. before
 *       that record is acknowledged; after a crash the record is delivered again.
 *   I3  No drone leaks: the redelivered AssignDrone finds the claim left held for its delivery
 *       (a held claim noted in its holds slots) and finishes with THAT drone; fleet_release ends
 * the assignment first and then frees every claim held for the delivery, not only the recorded one;
 * fleet_seed repairs drone hints left "assigned" over a released claim. I4  One assignment per
 * delivery (assignments/_id = deliveryId): it never changes drone; a repeated AssignDrone returns
 * the same drone, also after the release; a delivery released before it held a drone never gets one
 * (a late AssignDrone cannot claim a drone that no ReleaseDrone would ever free). I5  Every
 * decision is a unique insert (claim, assignment, release); every update only copies a decision or
 * moves a value one way ($max generation, $min releasedAt), so replaying any command sequence from
 * the start changes nothing.
 *
 * Errors: PL_ERR_TRANSIENT when the server is unreachable or fails (retry; never dead-letter),
 * detail in fleet_errmsg(); PL_ERR_INVALID for malformed input; PL_ERR_NOT_FOUND as documented
 * per function (for fleet_assign it means "no drone available now": reply DroneUnavailable).
 *
 * Thread rules: one fleet_t is shared by every thread of the service and every function is
 * thread-safe (a mongoc client pool, one client per call). The pure functions need no fleet. */
#ifndef SCHEDULER_FLEET_H
#define SCHEDULER_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FLEET_ID_MAX          32  /* drone id buffer, "drone-0001" */
#define FLEET_STR_MAX         512 /* deliveryId / ownerId, bytes of UTF-8 */
#define FLEET_REASON_MAX      64  /* release reason buffer */
#define FLEET_SIZE_MAX        100000
#define FLEET_METERS_PER_MILE 1609.344

typedef struct fleet_point {
	double lat; /* degrees, -90..90 */
	double lon; /* degrees, -180..180 */
} fleet_point_t;

/* A drone that may be claimed (read from the fleet, or built by a test). */
typedef struct fleet_candidate {
	char drone_id[FLEET_ID_MAX];
	int64_t gen;
	fleet_point_t position;
} fleet_candidate_t;

/* One delivery's assignment. status: "assigned", "completed" (released with reason
 * "completed") or "released" (any other reason). Invariant: drone_id is "" only when the
 * delivery was released before it ever held a drone; released_at_ms is 0 while assigned. */
typedef struct fleet_assignment {
	char delivery_id[FLEET_STR_MAX + 1];
	char owner_id[FLEET_STR_MAX + 1];
	char drone_id[FLEET_ID_MAX];
	char status[16];
	char release_reason[FLEET_REASON_MAX];
	int64_t drone_gen;
	fleet_point_t position; /* where the drone was when assigned */
	fleet_point_t pickup;
	fleet_point_t dropoff;
	int64_t assigned_at_ms;
	int64_t released_at_ms;
	double route_m;    /* position -> pickup -> dropoff, metres */
	double traveled_m; /* route_m once completed, 0 when released otherwise; -1 while active */
	unsigned
	    hold_slots; /* holds slots of the delivery when it was assigned (0: not recorded) */
} fleet_assignment_t;

typedef struct fleet_utilization {
	double traveled_miles;
	double assigned_hours;
	size_t assignments; /* how many assignments were counted */
} fleet_utilization_t;

typedef struct fleet fleet_t;

/* ---- pure logic (no server) ------------------------------------------------------------ */

/* Writes the id of the index-th drone (1-based) into out: "drone-0001", ..., "drone-100000".
 * false when index is 0 or over FLEET_SIZE_MAX. */
bool fleet_drone_id(unsigned index, char out[FLEET_ID_MAX]);

/* The seeding position of a drone: pl_geo_resolve of its id (free text), i.e. a stable point in
 * the service area box lat 47.50..47.75, lon -122.45..-122.20. Same id, same point, always. */
fleet_point_t fleet_drone_home(const char *drone_id);

/* Claim order for a pickup: fills order[] with indexes into candidates, nearest first by
 * great-circle distance; equal distances are ordered by drone_id (byte order), so every worker
 * ranks the same fleet the same way. Candidates whose position is not finite or out of range are
 * left out. Returns how many indexes were written (<= n). order must hold n entries. */
size_t fleet_rank(const fleet_candidate_t *candidates, size_t n, fleet_point_t pickup,
                  size_t *order);

/* True when both coordinates are finite and in range (lat -90..90, lon -180..180). */
bool fleet_point_valid(fleet_point_t p);

/* Metres flown for a delivery: from -> pickup -> dropoff. */
double fleet_route_m(fleet_point_t from, fleet_point_t pickup, fleet_point_t dropoff);

/* [*start_ms, *end_ms) of the UTC calendar month. false for year outside 1..9999 or month
 * outside 1..12. */
bool fleet_month_window(int year, int month, int64_t *start_ms, int64_t *end_ms);

/* What one assignment adds to a utilization at time now_ms: miles (traveled_m, or route_m while
 * active) and hours (released_at, or now while active, minus assigned_at; never negative). An
 * assignment without a drone adds nothing and returns false. */
bool fleet_assignment_usage(const fleet_assignment_t *assignment, int64_t now_ms, double *miles,
                            double *hours);

/* ---- the store ------------------------------------------------------------------------- */

/* Creates the fleet store for uri and db_name. Does not connect (but for a background ping each
 * second while no call runs: fleet_ready). Unless the URI sets them, serverSelectionTimeoutMS
 * and connectTimeoutMS = connect_timeout_ms, socketTimeoutMS = timeout_ms (0: 2000 and 10000).
 * NULL with a message in errstr when the URI or name is invalid. */
fleet_t *fleet_new(const char *uri, const char *db_name, int timeout_ms, int connect_timeout_ms,
                   char *errstr, size_t errstr_size);
/* NULL is a no-op. No call may be running. */
void fleet_destroy(fleet_t *fleet);

pl_err_t fleet_ping(fleet_t *fleet);
/* Readiness from what the fleet's calls recorded (pipeline/probe.h): the latest call answered;
 * else false and why. No I/O. */
bool fleet_ready(fleet_t *fleet, char *reason, size_t reason_size);
/* Secondary indexes (idempotent): drones {status}, assignments {ownerId, assignedAt}. */
pl_err_t fleet_ensure_indexes(fleet_t *fleet);

/* Makes sure drones drone-0001..drone-<size> exist (inserting only the missing ones, each
 * available at its home) and repairs drone hints left "assigned" after their claim was released
 * (I3). Never removes or moves a drone: re-seeding an existing fleet changes nothing, and a
 * smaller size keeps the extra drones. *inserted (may be NULL) = drones added now.
 * PL_ERR_INVALID when size is 0 or over FLEET_SIZE_MAX. */
pl_err_t fleet_seed(fleet_t *fleet, unsigned size, unsigned *inserted);

/* Counts drones: *total and *available (hint status "available"); either may be NULL. */
pl_err_t fleet_count(fleet_t *fleet, size_t *total, size_t *available);

/* Assigns a drone to delivery_id (idempotent, see I2..I4):
 *   PL_OK            *out = the assignment (the same drone on every repeat, even if released);
 *   PL_ERR_NOT_FOUND no drone available now (or the delivery was released before it ever held
 *                    one): reply DroneUnavailable; a later attempt may succeed;
 *   PL_ERR_INVALID   bad ids or points;  PL_ERR_TRANSIENT  server trouble (retry).
 * now_ms becomes assignedAt of a new assignment (a claim left by a crash keeps its own time).
 * The drone chosen is the available one nearest to pickup (fleet_rank) that this call manages
 * to claim, ranked from a cache of the available drones (fleet.c; reading 1,000 drones takes
 * ~0.1 s on FerretDB with SQLite, which has no geo queries). */
pl_err_t fleet_assign(fleet_t *fleet, const char *delivery_id, const char *owner_id,
                      fleet_point_t pickup, fleet_point_t dropoff, int64_t now_ms,
                      fleet_assignment_t *out);

/* fleet_assign that claims only a drone within reach_m metres (great-circle) of the pickup:
 * PL_ERR_NOT_FOUND when every available drone is farther. The scheduler passes the drone range
 * minus the route pickup -> dropoff, so the whole flight position -> pickup -> dropoff fits the
 * range. Repeats and crash leftovers (I3, I4) keep their drone whatever its distance. NaN or a
 * negative reach claims nothing; INFINITY is fleet_assign. */
pl_err_t fleet_assign_within(fleet_t *fleet, const char *delivery_id, const char *owner_id,
                             fleet_point_t pickup, fleet_point_t dropoff, double reach_m,
                             int64_t now_ms, fleet_assignment_t *out);

/* Ends the assignment of delivery_id and frees every drone claimed for it (I3). The stored
 * status becomes "completed" when reason is "completed" and a drone was held, else
 * "released"; releasedAt and releaseReason are those of the FIRST release (repeats change
 * nothing). A completed drone becomes available at the dropoff; any other keeps its position.
 * Unknown delivery: a "released without a drone" record is stored (I4). Idempotent: PL_OK with
 * *out (may be NULL) = the stored assignment (drone_id "" when none was ever held).
 * PL_ERR_INVALID (bad id, reason empty or over FLEET_REASON_MAX - 1) or PL_ERR_TRANSIENT. */
pl_err_t fleet_release(fleet_t *fleet, const char *delivery_id, const char *reason, int64_t now_ms,
                       fleet_assignment_t *out);

/* *n = owner_id's assignments that hold a drone now (status "assigned"): one count command on
 * assignments filtered by ownerId (the ownerId_assignedAt index) and status. PL_ERR_INVALID for
 * an empty or invalid owner, else PL_OK or PL_ERR_TRANSIENT. (FerretDB 1.x with SQLite reads the
 * collection in Go for this filter, fleet.h above; MongoDB uses the index.) */
pl_err_t fleet_owner_in_flight(fleet_t *fleet, const char *owner_id, size_t *n);

/* *started = delivery_id has already been decided or holds a drone: an assignment record of any
 * status exists, or a claim left held for it by a crash (I3). For such a delivery fleet_assign
 * claims nothing new (it returns what it has), so a limit on new claims must not refuse it.
 * Reads by _id only (the assignment, then its holds slots and their claims).
 * PL_ERR_INVALID for a bad id, else PL_OK or PL_ERR_TRANSIENT. */
pl_err_t fleet_delivery_started(fleet_t *fleet, const char *delivery_id, bool *started);

/* Reads the assignment of delivery_id. PL_ERR_NOT_FOUND when unknown or when it never held a
 * drone (released before one was assigned). */
pl_err_t fleet_get_assignment(fleet_t *fleet, const char *delivery_id, fleet_assignment_t *out);

/* Sums fleet_assignment_usage over owner_id's assignments whose assignedAt lies in the UTC
 * month. PL_ERR_NOT_FOUND when there is none; PL_ERR_INVALID for an empty owner or bad month. */
pl_err_t fleet_utilization(fleet_t *fleet, const char *owner_id, int year, int month,
                           int64_t now_ms, fleet_utilization_t *out);

/* Detail of this thread's last failed fleet call ("" when none). */
const char *fleet_errmsg(void);

#endif
