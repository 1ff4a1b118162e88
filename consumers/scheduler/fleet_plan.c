/* fleet_plan.c — the pure part of the scheduler's fleet (declared in fleet.h): drone ids and
 * home positions for seeding, the claim order for a pickup (fleet_rank), route length, the UTC
 * month window and the utilization of one assignment. No I/O, no state, no mongoc: unit-tested
 * without a server. Thread-safe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "geo.h"
#include "mem.h"
#include "timefmt.h"

bool fleet_drone_id(unsigned index, char out[FLEET_ID_MAX])
{
	if (index == 0 || index > FLEET_SIZE_MAX) {
		out[0] = '\0';
		return false;
	}
	snprintf(out, FLEET_ID_MAX, "drone-%04u", index);
	return true;
}

fleet_point_t fleet_drone_home(const char *drone_id)
{
	fleet_point_t p = {PL_GEO_AREA_LAT_MIN, PL_GEO_AREA_LON_MIN};
	/* Free text always resolves inside the service area; a "lat,lon"-looking id cannot be a
	 * drone id, so the fallback above is never used for ids made by fleet_drone_id. */
	(void)pl_geo_resolve(drone_id, &p.lat, &p.lon);
	return p;
}

bool fleet_point_valid(fleet_point_t p)
{
	return isfinite(p.lat) && isfinite(p.lon) && p.lat >= -90 && p.lat <= 90 && p.lon >= -180 &&
	       p.lon <= 180;
}

double fleet_route_m(fleet_point_t from, fleet_point_t pickup, fleet_point_t dropoff)
{
	return pl_geo_distance_m(from.lat, from.lon, pickup.lat, pickup.lon) +
	       pl_geo_distance_m(pickup.lat, pickup.lon, dropoff.lat, dropoff.lon);
}

typedef struct ranked {
	double distance_m;
	const char *drone_id;
	size_t index;
} ranked_t;

static int ranked_cmp(const void *a, const void *b)
{
	const ranked_t *x = a, *y = b;
	if (x->distance_m < y->distance_m)
		return -1;
	if (x->distance_m > y->distance_m)
		return 1;
	return strcmp(x->drone_id, y->drone_id);
}

size_t fleet_rank(const fleet_candidate_t *candidates, size_t n, fleet_point_t pickup,
                  size_t *order)
{
	size_t used = 0;
	ranked_t *ranked;
	if (n == 0 || !fleet_point_valid(pickup))
		return 0;
	ranked = pl_malloc(n * sizeof *ranked);
	for (size_t i = 0; i < n; i++) {
		if (!fleet_point_valid(candidates[i].position))
			continue;
		ranked[used].distance_m = pl_geo_distance_m(
		    pickup.lat, pickup.lon, candidates[i].position.lat, candidates[i].position.lon);
		ranked[used].drone_id = candidates[i].drone_id;
		ranked[used].index = i;
		used++;
	}
	qsort(ranked, used, sizeof *ranked, ranked_cmp);
	for (size_t i = 0; i < used; i++)
		order[i] = ranked[i].index;
	pl_free(ranked);
	return used;
}

bool fleet_month_window(int year, int month, int64_t *start_ms, int64_t *end_ms)
{
	char text[40];
	if (year < 1 || year > 9999 || month < 1 || month > 12)
		return false;
	snprintf(text, sizeof text, "%04d-%02d-01T00:00:00Z", year, month);
	if (pl_time_parse(text, start_ms) != PL_OK)
		return false;
	if (year == 9999 && month == 12) {
		*end_ms = PL_TIME_MAX_MS + 1;
		return true;
	}
	snprintf(text, sizeof text, "%04d-%02d-01T00:00:00Z", month == 12 ? year + 1 : year,
	         month == 12 ? 1 : month + 1);
	return pl_time_parse(text, end_ms) == PL_OK;
}

bool fleet_assignment_usage(const fleet_assignment_t *a, int64_t now_ms, double *miles,
                            double *hours)
{
	int64_t until;
	*miles = 0;
	*hours = 0;
	if (!a->drone_id[0])
		return false;
	*miles = (a->traveled_m >= 0 ? a->traveled_m : a->route_m) / FLEET_METERS_PER_MILE;
	until = a->released_at_ms > 0 ? a->released_at_ms : now_ms;
	if (until > a->assigned_at_ms)
		*hours = (double)(until - a->assigned_at_ms) / 3600000.0;
	return true;
}
