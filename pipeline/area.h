/* area.h — the service area and the drone's range: which deliveries the fleet can fly.
 *
 * One rule, applied by the ingress (answer 400), the scheduler (refuse the AssignDrone) and the
 * workflow (ignore a reschedule that breaks it), so a record written onto the topic by another
 * producer cannot tie up a drone either:
 *   1. the pickup and the drop-off lie within the area: a circle on the earth's surface, at most
 *      radius_m metres (great-circle, pl_geo_distance_m) from its centre, the edge included;
 *   2. the route pickup -> drop-off (great-circle) is at most range_m metres. The scheduler also
 *      needs the drone's way to the pickup to fit (position -> pickup -> drop-off <= range_m);
 *      a drone too far away is not a fault of the request (another may come nearer).
 * A point whose coordinates are not finite or out of range (latitude -90..90, longitude
 * -180..180) is never inside. Distances are on a sphere, so the antimeridian and the poles need
 * no special case: 0,179.9 and 0,-179.9 are 22 km apart.
 *
 * Settings (pl_area_cfg, in the tables of every binary that applies the rule):
 *   DP_SERVICE_AREA   "lat,lon,radius_m"  default "47.61,-122.33,25000": 25 km around Seattle,
 *                     which holds every place a free-text location maps to (geo.h's box, at most
 *                     18.4 km from that centre);
 *   DP_DRONE_RANGE_M  default 70000: a drone at 15 m/s (DP_DRONE_SPEED_MPS) flies it in 78 min;
 *                     enough to reach any pickup in that box and fly to any drop-off in it
 *                     (2 x 33.5 km, the box's diagonal).
 *
 * Thread rules: pure functions; a loaded pl_area_t is read-only and may be shared. */
#ifndef PL_AREA_H
#define PL_AREA_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "err.h"

#define PL_AREA_RADIUS_MAX_M 20015115.0 /* half the circumference: the whole earth */
#define PL_AREA_TEXT_MAX     96         /* DP_SERVICE_AREA length limit */

/* Invariant (after pl_area_parse / pl_area_from_cfg): centre in range, 0 < radius_m <=
 * PL_AREA_RADIUS_MAX_M, range_m > 0, everything finite. */
typedef struct pl_area {
	double lat, lon; /* centre, degrees */
	double radius_m;
	double range_m;
} pl_area_t;

typedef enum pl_area_fault {
	PL_AREA_OK = 0,
	PL_AREA_PICKUP_OUTSIDE,
	PL_AREA_DROPOFF_OUTSIDE,
	PL_AREA_ROUTE_TOO_LONG,
} pl_area_fault_t;

/* DP_SERVICE_AREA and DP_DRONE_RANGE_M. */
extern const pl_cfg_opt_t pl_area_cfg[];

/* Parses "lat,lon,radius_m" (lat,lon as geo.h's "lat,lon" form; radius_m a decimal number of
 * metres, > 0 and at most PL_AREA_RADIUS_MAX_M; spaces around each part allowed) with range_m
 * (> 0, finite) into *out. PL_ERR_CONFIG with a sentence in errstr (naming DP_SERVICE_AREA or
 * DP_DRONE_RANGE_M) otherwise; *out untouched then. */
pl_err_t pl_area_parse(const char *text, double range_m, pl_area_t *out, char *errstr,
                       size_t errstr_size);

/* pl_area_parse of the loaded DP_SERVICE_AREA and DP_DRONE_RANGE_M (cfg must have been loaded
 * with pl_area_cfg among its tables). */
pl_err_t pl_area_from_cfg(const pl_cfg_t *cfg, pl_area_t *out, char *errstr, size_t errstr_size);

/* True when lat,lon is a valid point within the area (edge included). *distance_m (may be NULL)
 * = its distance from the centre, or NAN for an invalid point. */
bool pl_area_contains(const pl_area_t *area, double lat, double lon, double *distance_m);

/* True when the great-circle route between two valid points is at most range_m. *route_m (may
 * be NULL) = its length, or NAN when a point is invalid. */
bool pl_area_route_fits(const pl_area_t *area, double lat1, double lon1, double lat2, double lon2,
                        double *route_m);

/* The whole rule for a delivery, checked in this order: pickup inside, drop-off inside, route
 * within range. Returns the first fault; reason (NUL-terminated, may be NULL) says what and
 * names the limit, e.g. "pickup 48.50000,-122.33000 is outside the service area: 98964 m from
 * its centre 47.61000,-122.33000, over the radius of 25000 m (DP_SERVICE_AREA)". */
pl_area_fault_t pl_area_check(const pl_area_t *area, double pickup_lat, double pickup_lon,
                              double dropoff_lat, double dropoff_lon, char *reason,
                              size_t reason_size);

/* The ingress's per-field reasons (they complete "<field> ..."): a point outside, at distance_m
 * (NAN: not a valid point), and a route of route_m over the range. */
void pl_area_outside_reason(const pl_area_t *area, double distance_m, char *out, size_t size);
void pl_area_range_reason(const pl_area_t *area, double route_m, char *out, size_t size);

#endif
