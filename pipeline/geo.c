/* geo.c — location resolution (coordinates or hashed free text) and great-circle maths.
 * Owns no state. See geo.h for the exact, cross-machine-stable text-to-point mapping. */
#include "geo.h"
#include "hash.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#define DEG2RAD (3.14159265358979323846 / 180.0)

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads [+-]? (digits ['.' digits*] | '.' digits) at *p; advances *p. Keeps 15 significant digits
 * (below 2^53, so the integer mantissa is exact) and divides once by a power of ten. */
static bool read_degrees(const char **p, double *out)
{
	const char *s = *p;
	bool negative = false;
	if (*s == '+' || *s == '-')
		negative = *s++ == '-';
	uint64_t mantissa = 0;
	int significant = 0, scale = 0, ndigits = 0;
	bool fraction = false;
	for (;; s++) {
		if (*s == '.' && !fraction) {
			fraction = true;
			continue;
		}
		if (!is_digit(*s))
			break;
		ndigits++;
		if (significant < 15 && (mantissa > 0 || *s != '0')) {
			mantissa = mantissa * 10 + (uint64_t)(*s - '0');
			significant++;
			if (fraction)
				scale++;
		} else if (significant < 15) {
			/* leading zero: only shifts the scale after the point */
			if (fraction)
				scale++;
		} else if (!fraction) {
			scale--; /* integer digit beyond precision: value grows by 10 */
		}
	}
	if (ndigits == 0)
		return false;
	double value = (double)mantissa;
	for (; scale < 0; scale++)
		value *= 10.0;
	while (scale > 22) {
		value /= 1e22;
		scale -= 22;
	}
	static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
	                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	value /= pow10[scale];
	*out = negative ? -value : value;
	*p = s;
	return true;
}

/* 1 = "lat,lon" in range, 0 = not that form (free text), -1 = that form but out of range. */
static int parse_coordinates(const char *text, double *lat, double *lon)
{
	const char *p = text;
	double a, b;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!read_degrees(&p, &a))
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != ',')
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!read_degrees(&p, &b))
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		return 0;
	if (!(a >= -90.0 && a <= 90.0) || !(b >= -180.0 && b <= 180.0))
		return -1;
	*lat = a + 0.0; /* + 0.0 turns -0 into 0 */
	*lon = b + 0.0;
	return 1;
}

uint64_t pl_geo_text_hash(const char *text)
{
	uint64_t hash = PL_FNV_OFFSET;
	const char *p = text;
	while (is_space(*p))
		p++;
	bool pending_space = false;
	for (; *p; p++) {
		if (is_space(*p)) {
			pending_space = true;
			continue;
		}
		if (pending_space) {
			hash = (hash ^ (uint64_t)' ') * PL_FNV_PRIME;
			pending_space = false;
		}
		unsigned char c = (unsigned char)*p;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		hash = (hash ^ c) * PL_FNV_PRIME;
	}
	return hash;
}

pl_err_t pl_geo_resolve(const char *location, double *lat, double *lon)
{
	if (!location || !lat || !lon)
		return PL_ERR_INVALID;
	const char *p = location;
	while (is_space(*p))
		p++;
	if (*p == '\0')
		return PL_ERR_INVALID;
	int form = parse_coordinates(location, lat, lon);
	if (form < 0)
		return PL_ERR_INVALID;
	if (form > 0)
		return PL_OK;
	uint64_t h = pl_fmix64(pl_geo_text_hash(location));
	/* Power-of-two scaling: exact; only the final addition rounds. */
	double lat_off = (double)(uint32_t)(h >> 32) * 0x1p-32 * PL_GEO_AREA_SPAN;
	double lon_off = (double)(uint32_t)h * 0x1p-32 * PL_GEO_AREA_SPAN;
	*lat = PL_GEO_AREA_LAT_MIN + lat_off;
	*lon = PL_GEO_AREA_LON_MIN + lon_off;
	return PL_OK;
}

pl_err_t pl_geo_parse_point(const char *text, double *lat, double *lon)
{
	if (!text || !lat || !lon)
		return PL_ERR_INVALID;
	return parse_coordinates(text, lat, lon) > 0 ? PL_OK : PL_ERR_INVALID;
}

double pl_geo_distance_m(double lat1, double lon1, double lat2, double lon2)
{
	double phi1 = lat1 * DEG2RAD, phi2 = lat2 * DEG2RAD;
	double dphi = (lat2 - lat1) * DEG2RAD, dlambda = (lon2 - lon1) * DEG2RAD;
	double s1 = sin(dphi / 2), s2 = sin(dlambda / 2);
	double a = s1 * s1 + cos(phi1) * cos(phi2) * s2 * s2;
	if (a > 1.0)
		a = 1.0;
	return 2.0 * PL_GEO_EARTH_RADIUS_M * atan2(sqrt(a), sqrt(1.0 - a));
}

static double wrap_lon(double lon)
{
	if (!isfinite(lon) || (lon >= -180.0 && lon <= 180.0))
		return lon;
	lon = fmod(lon + 180.0, 360.0);
	return (lon < 0 ? lon + 360.0 : lon) - 180.0;
}

void pl_geo_interpolate(double lat1, double lon1, double lat2, double lon2, double fraction,
                        double *lat, double *lon)
{
	if (!(fraction > 0.0))
		fraction = 0.0; /* also NaN */
	if (fraction > 1.0)
		fraction = 1.0;
	double phi1 = lat1 * DEG2RAD, phi2 = lat2 * DEG2RAD;
	double lambda1 = lon1 * DEG2RAD, lambda2 = lon2 * DEG2RAD;
	double delta = pl_geo_distance_m(lat1, lon1, lat2, lon2) / PL_GEO_EARTH_RADIUS_M;
	double sin_delta = sin(delta);
	if (fabs(sin_delta) < 1e-12) {
		*lat = lat1 + (lat2 - lat1) * fraction;
		*lon = wrap_lon(lon1 + (lon2 - lon1) * fraction);
		return;
	}
	double a = sin((1.0 - fraction) * delta) / sin_delta;
	double b = sin(fraction * delta) / sin_delta;
	double x = a * cos(phi1) * cos(lambda1) + b * cos(phi2) * cos(lambda2);
	double y = a * cos(phi1) * sin(lambda1) + b * cos(phi2) * sin(lambda2);
	double z = a * sin(phi1) + b * sin(phi2);
	*lat = atan2(z, sqrt(x * x + y * y)) / DEG2RAD;
	*lon = wrap_lon(atan2(y, x) / DEG2RAD);
}
