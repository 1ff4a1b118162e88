/* geo.h — locations as the ingress receives them, resolved to points, and the spherical maths the
 * drone simulator needs. Leaf module: pure functions, no state, thread-safe.
 *
 * A location is either
 *   - "lat,lon": two decimal numbers in degrees (optional sign, digits with an optional '.'
 *     fraction, no exponent), separated by a comma, with optional spaces or tabs around each
 *     number. Latitude must be -90..90 and longitude -180..180; the result is that point.
 *     Numbers are read here, digit by digit (at most 15 significant digits kept), so the result
 *     does not depend on the C locale's decimal point.
 *   - free text (anything else, e.g. "Pike Place Market"): mapped to a STABLE point inside the
 *     service area, a box around Seattle:
 *         latitude  [PL_GEO_AREA_LAT_MIN, PL_GEO_AREA_LAT_MIN + PL_GEO_AREA_SPAN)  47.50..47.75
 *         longitude [PL_GEO_AREA_LON_MIN, PL_GEO_AREA_LON_MIN + PL_GEO_AREA_SPAN) -122.45..-122.20
 *     The text is normalised (ASCII whitespace trimmed at both ends, every inner run of ASCII
 *     whitespace collapsed to one space, ASCII letters folded to lower case; other bytes such
 *     as UTF-8 sequences kept as they are), hashed with 64-bit FNV-1a (pl_geo_text_hash), and
 *     the hash is finalised with the MurmurHash3 fmix64 mixer h' = fmix64(h). Then
 *         latitude  = LAT_MIN + (h' >> 32)        * 2^-32 * SPAN
 *         longitude = LON_MIN + (h' & 0xffffffff) * 2^-32 * SPAN
 *     SPAN is 0.25 = 2^-2, so every step but the final addition is exact: the same text gives
 *     the same bits on every IEEE-754 machine (with or without fused multiply-add), and the
 *     ingress and the simulator always agree.
 */
#ifndef PL_GEO_H
#define PL_GEO_H

#include <stdint.h>

#include "err.h"

#define PL_GEO_AREA_LAT_MIN   47.50
#define PL_GEO_AREA_LON_MIN   (-122.45)
#define PL_GEO_AREA_SPAN      0.25
#define PL_GEO_EARTH_RADIUS_M 6371008.8 /* mean earth radius (IUGG) */

/* Resolves location (NUL-terminated, borrowed) into *lat / *lon (degrees).
 * PL_ERR_INVALID (outputs untouched) when location is NULL, empty or only whitespace, or when it
 * has the "lat,lon" form but a number is out of range (e.g. "91,10"): such text is a mistyped
 * coordinate, not a place name, and is never mapped into the service area. */
pl_err_t pl_geo_resolve(const char *location, double *lat, double *lon);

/* Reads only the "lat,lon" form described above (numbers as there, latitude -90..90, longitude
 * -180..180) into *lat / *lon. PL_ERR_INVALID (outputs untouched) for anything else, free text
 * included: for settings, where a place name would silently become a hashed point. */
pl_err_t pl_geo_parse_point(const char *text, double *lat, double *lon);

/* FNV-1a 64-bit hash of the normalised text (see above), before the fmix64 step. Exposed so
 * tests and tools can pin the mapping. */
uint64_t pl_geo_text_hash(const char *text);

/* Great-circle distance in metres (haversine on a sphere of PL_GEO_EARTH_RADIUS_M). */
double pl_geo_distance_m(double lat1, double lon1, double lat2, double lon2);

/* The point at `fraction` of the way from point 1 to point 2 along the GREAT CIRCLE (spherical
 * linear interpolation), fraction clamped to 0..1 (0 gives point 1, 1 gives point 2). Longitude
 * comes back in -180..180. When the points coincide or are antipodal (no unique great circle)
 * latitude and longitude are interpolated linearly instead. */
void pl_geo_interpolate(double lat1, double lon1, double lat2, double lon2, double fraction,
                        double *lat, double *lon);

#endif
