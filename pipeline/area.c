/* area.c — the service-area and drone-range rule (see area.h). Owns the DP_SERVICE_AREA and
 * DP_DRONE_RANGE_M option table; no state. */
#include "area.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

const pl_cfg_opt_t pl_area_cfg[] = {
    {"DP_SERVICE_AREA", PL_CFG_STR, "47.61,-122.33,25000", 5, PL_AREA_TEXT_MAX,
     .help = "service area as 'lat,lon,radius_m': pickups and drop-offs farther than radius_m "
             "metres (great-circle) from lat,lon are refused"},
    {"DP_DRONE_RANGE_M", PL_CFG_INT, "70000", 100, 40000000,
     .help = "drone range in metres: a route pickup -> drop-off longer than this is refused, "
             "and a drone is claimed only if its way to the pickup plus that route fits"},
    {NULL},
};

/* A radius: [spaces] digits ['.' digits] [spaces], nothing else (no sign, exponent, inf, nan,
 * hex: strtod would take those). */
static bool parse_radius(const char *s, double *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	const char *start = s;
	size_t digits = strspn(s, "0123456789");
	s += digits;
	if (*s == '.') {
		size_t frac = strspn(s + 1, "0123456789");
		if (frac == 0)
			return false;
		s += 1 + frac;
	}
	if (digits == 0)
		return false;
	const char *end = s;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0' || end - start > 32)
		return false;
	char buf[40];
	memcpy(buf, start, (size_t)(end - start));
	buf[end - start] = '\0';
	*out = strtod(buf, NULL);
	return true;
}

pl_err_t pl_area_parse(const char *text, double range_m, pl_area_t *out, char *errstr,
                       size_t errstr_size)
{
	const char *comma = text ? strrchr(text, ',') : NULL;
	size_t len = comma ? (size_t)(comma - text) : 0;
	double lat, lon, radius;
	char centre[PL_AREA_TEXT_MAX + 1];
	if (!comma || len > PL_AREA_TEXT_MAX) {
		snprintf(errstr, errstr_size,
		         "DP_SERVICE_AREA: must be 'lat,lon,radius_m', e.g. 47.61,-122.33,25000");
		return PL_ERR_CONFIG;
	}
	memcpy(centre, text, len);
	centre[len] = '\0';
	if (pl_geo_parse_point(centre, &lat, &lon) != PL_OK) {
		snprintf(
		    errstr, errstr_size,
		    "DP_SERVICE_AREA: the centre must be 'lat,lon' in degrees (latitude -90..90, "
		    "longitude -180..180) before ',radius_m', e.g. 47.61,-122.33,25000");
		return PL_ERR_CONFIG;
	}
	if (!parse_radius(comma + 1, &radius) || !(radius > 0.0) ||
	    !(radius <= PL_AREA_RADIUS_MAX_M)) {
		snprintf(errstr, errstr_size,
		         "DP_SERVICE_AREA: the radius (after the last comma) must be a number of "
		         "metres above 0 and at most %.0f (half the earth's circumference)",
		         PL_AREA_RADIUS_MAX_M);
		return PL_ERR_CONFIG;
	}
	if (!isfinite(range_m) || !(range_m > 0.0)) {
		snprintf(errstr, errstr_size,
		         "DP_DRONE_RANGE_M: must be a number of metres above 0");
		return PL_ERR_CONFIG;
	}
	*out = (pl_area_t){.lat = lat, .lon = lon, .radius_m = radius, .range_m = range_m};
	return PL_OK;
}

pl_err_t pl_area_from_cfg(const pl_cfg_t *cfg, pl_area_t *out, char *errstr, size_t errstr_size)
{
	return pl_area_parse(pl_cfg_str(cfg, "DP_SERVICE_AREA"),
	                     (double)pl_cfg_int(cfg, "DP_DRONE_RANGE_M"), out, errstr, errstr_size);
}

static bool point_valid(double lat, double lon)
{
	return lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0; /* false for NaN */
}

bool pl_area_contains(const pl_area_t *area, double lat, double lon, double *distance_m)
{
	double d = NAN;
	if (point_valid(lat, lon))
		d = pl_geo_distance_m(area->lat, area->lon, lat, lon);
	if (distance_m)
		*distance_m = d;
	return d <= area->radius_m; /* false for NaN */
}

bool pl_area_route_fits(const pl_area_t *area, double lat1, double lon1, double lat2, double lon2,
                        double *route_m)
{
	double d = NAN;
	if (point_valid(lat1, lon1) && point_valid(lat2, lon2))
		d = pl_geo_distance_m(lat1, lon1, lat2, lon2);
	if (route_m)
		*route_m = d;
	return d <= area->range_m;
}

void pl_area_outside_reason(const pl_area_t *area, double distance_m, char *out, size_t size)
{
	if (isnan(distance_m))
		snprintf(out, size, "is not a valid point (latitude -90..90, longitude -180..180)");
	else
		snprintf(out, size,
		         "is outside the service area: %.0f m from its centre %.5f,%.5f, over the "
		         "radius of %.0f m (DP_SERVICE_AREA)",
		         distance_m, area->lat, area->lon, area->radius_m);
}

void pl_area_range_reason(const pl_area_t *area, double route_m, char *out, size_t size)
{
	snprintf(out, size,
	         "from pickup to drop-off is %.0f m, over the drone range of %.0f m "
	         "(DP_DRONE_RANGE_M)",
	         route_m, area->range_m);
}

static void point_reason(const char *what, double lat, double lon, const pl_area_t *area,
                         double distance_m, char *out, size_t size)
{
	char why[200];
	pl_area_outside_reason(area, distance_m, why, sizeof(why));
	if (isnan(distance_m))
		snprintf(out, size, "%s %s", what, why);
	else
		snprintf(out, size, "%s %.5f,%.5f %s", what, lat, lon, why);
}

pl_area_fault_t pl_area_check(const pl_area_t *area, double pickup_lat, double pickup_lon,
                              double dropoff_lat, double dropoff_lon, char *reason,
                              size_t reason_size)
{
	char scratch[8];
	if (!reason) {
		reason = scratch;
		reason_size = sizeof(scratch);
	}
	double d;
	if (!pl_area_contains(area, pickup_lat, pickup_lon, &d)) {
		point_reason("pickup", pickup_lat, pickup_lon, area, d, reason, reason_size);
		return PL_AREA_PICKUP_OUTSIDE;
	}
	if (!pl_area_contains(area, dropoff_lat, dropoff_lon, &d)) {
		point_reason("dropoff", dropoff_lat, dropoff_lon, area, d, reason, reason_size);
		return PL_AREA_DROPOFF_OUTSIDE;
	}
	if (!pl_area_route_fits(area, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon, &d)) {
		char why[160];
		pl_area_range_reason(area, d, why, sizeof(why));
		snprintf(reason, reason_size, "route %s", why);
		return PL_AREA_ROUTE_TOO_LONG;
	}
	if (reason_size)
		reason[0] = '\0';
	return PL_AREA_OK;
}
