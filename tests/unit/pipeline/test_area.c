/* test_area.c — pl_area: the service-area and range rule shared by the ingress and the
 * scheduler. Inside, on the edge, outside; the antimeridian and the poles; NaN, infinities and
 * huge numbers; the default setting against every place free text can map to; bad settings. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "area.h"
#include "geo.h"

static pl_area_t area_of(const char *text, double range_m)
{
	pl_area_t area;
	char err[256] = "";
	if (pl_area_parse(text, range_m, &area, err, sizeof(err)) != PL_OK)
		fail_msg("'%s' refused: %s", text, err);
	return area;
}

static void test_parse(void **state)
{
	(void)state;
	pl_area_t a = area_of("47.61,-122.33,25000", 30000);
	assert_true(a.lat == 47.61 && a.lon == -122.33 && a.radius_m == 25000 &&
	            a.range_m == 30000);
	a = area_of(" -33.9 , 151.2 , 1500.5 ", 100);
	assert_true(a.lat == -33.9 && a.lon == 151.2 && a.radius_m == 1500.5);
	a = area_of("90,180,20015115", 1);
	assert_true(a.radius_m == PL_AREA_RADIUS_MAX_M);
}

static void test_bad_settings_are_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "47.61,-122.33",
	    "47.61,-122.33,",
	    "47.61,-122.33,0",
	    "Seattle,25000",
	    "91,0,1000",
	    "0,181,1000",
	    "47.61,-122.33,-5",
	    "1,2,nan",
	    "1,2,inf",
	    "1,2,1e5",
	    "1,2,0x10",
	    "1,2,20015116",
	    "1,2,3,4",
	    "1,2,1000 m",
	    "1,2,.",
	    "1,2,99999999999999999999999999999999999999",
	    ",,5",
	    "nan,nan,5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pl_area_t a = {.lat = 7};
		char err[256] = "";
		if (pl_area_parse(bad[i], 1000, &a, err, sizeof(err)) != PL_ERR_CONFIG)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(err, "DP_SERVICE_AREA"));
		assert_true(a.lat == 7); /* untouched */
	}
	char err[256] = "";
	pl_area_t a;
	assert_int_equal(pl_area_parse(NULL, 1000, &a, err, sizeof(err)), PL_ERR_CONFIG);
	static const double bad_range[] = {0.0, -1.0, NAN, INFINITY};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(pl_area_parse("1,2,3", bad_range[i], &a, err, sizeof(err)),
		                 PL_ERR_CONFIG);
		assert_non_null(strstr(err, "DP_DRONE_RANGE_M"));
	}
}

/* The option table's own defaults load, and a bad value fails the load or the parse. */
static void test_config_table(void **state)
{
	(void)state;
	const pl_cfg_opt_t *const tables[] = {pl_area_cfg, NULL};
	int code = -1;
	char *argv[] = {"x", NULL};
	pl_cfg_t *cfg = pl_cfg_load("x", tables, 1, argv, (char *[]){NULL}, stderr, &code);
	assert_non_null(cfg);
	pl_area_t a;
	char err[256];
	assert_int_equal(pl_area_from_cfg(cfg, &a, err, sizeof(err)), PL_OK);
	assert_true(a.lat == 47.61 && a.lon == -122.33 && a.radius_m == 25000 &&
	            a.range_m == 70000);
	pl_cfg_destroy(cfg);

	cfg = pl_cfg_load("x", tables, 1, argv, (char *[]){"DP_SERVICE_AREA=47.61,-122.33", NULL},
	                  stderr, &code);
	assert_non_null(cfg);
	assert_int_equal(pl_area_from_cfg(cfg, &a, err, sizeof(err)), PL_ERR_CONFIG);
	pl_cfg_destroy(cfg);

	FILE *sink = fopen("/dev/null", "w");
	cfg =
	    pl_cfg_load("x", tables, 1, argv, (char *[]){"DP_DRONE_RANGE_M=0", NULL}, sink, &code);
	assert_null(cfg);
	assert_int_equal(code, 1);
	fclose(sink);
}

static void test_inside_outside(void **state)
{
	(void)state;
	pl_area_t a = area_of("47.61,-122.33,25000", 30000);
	double d;
	assert_true(pl_area_contains(&a, 47.61, -122.33, &d));
	assert_true(d == 0.0);
	assert_true(pl_area_contains(&a, 47.70, -122.30, &d));
	assert_false(pl_area_contains(&a, 48.50, -122.33, &d)); /* ~99 km north */
	assert_true(d > 98000 && d < 100000);
	assert_false(pl_area_contains(&a, -47.61, 57.67, &d)); /* antipode */
	assert_true(d > 2e7);
	assert_true(pl_area_contains(&a, 47.61, -122.33, NULL));

	char reason[256];
	assert_int_equal(pl_area_check(&a, 47.61, -122.33, 47.70, -122.30, reason, sizeof(reason)),
	                 PL_AREA_OK);
	assert_string_equal(reason, "");
	assert_int_equal(pl_area_check(&a, 48.50, -122.33, 47.70, -122.30, reason, sizeof(reason)),
	                 PL_AREA_PICKUP_OUTSIDE);
	assert_non_null(strstr(reason, "pickup 48.50000,-122.33000 is outside the service area"));
	assert_non_null(strstr(reason, "radius of 25000 m (DP_SERVICE_AREA)"));
	assert_int_equal(pl_area_check(&a, 47.61, -122.33, 46.00, -122.33, reason, sizeof(reason)),
	                 PL_AREA_DROPOFF_OUTSIDE);
	assert_non_null(strstr(reason, "dropoff 46.00000,-122.33000"));
	/* both inside (radius 25 km) but 40 km apart: over the 30 km range */
	double north = 47.61 + 20000 / 111195.0, south = 47.61 - 20000 / 111195.0;
	assert_int_equal(pl_area_check(&a, north, -122.33, south, -122.33, reason, sizeof(reason)),
	                 PL_AREA_ROUTE_TOO_LONG);
	assert_non_null(strstr(reason, "route from pickup to drop-off is 4000"));
	assert_non_null(strstr(reason, "over the drone range of 30000 m (DP_DRONE_RANGE_M)"));
	assert_int_equal(pl_area_check(&a, north, -122.33, south, -122.33, NULL, 0),
	                 PL_AREA_ROUTE_TOO_LONG);
}

/* The edge belongs to the area, and the least step beyond does not. */
static void test_edge(void **state)
{
	(void)state;
	pl_area_t a = area_of("47.61,-122.33,25000", 30000);
	double lat = 47.80, lon = -122.10;
	double d = pl_geo_distance_m(a.lat, a.lon, lat, lon);
	a.radius_m = d;
	assert_true(pl_area_contains(&a, lat, lon, NULL));
	a.radius_m = nextafter(d, 0.0);
	assert_false(pl_area_contains(&a, lat, lon, NULL));
	/* the same for the range */
	a.range_m = pl_geo_distance_m(47.61, -122.33, lat, lon);
	assert_true(pl_area_route_fits(&a, 47.61, -122.33, lat, lon, NULL));
	a.range_m = nextafter(a.range_m, 0.0);
	assert_false(pl_area_route_fits(&a, 47.61, -122.33, lat, lon, NULL));
}

static void test_antimeridian_and_poles(void **state)
{
	(void)state;
	double d;
	pl_area_t fiji = area_of("-17.0,179.9,50000", 100000);
	assert_true(pl_area_contains(&fiji, -17.0, -179.9, &d)); /* across the antimeridian */
	assert_true(d > 21000 && d < 22000);
	assert_true(pl_area_contains(&fiji, -17.0, 180, NULL));
	assert_true(pl_area_contains(&fiji, -17.0, -180, NULL));
	assert_false(pl_area_contains(&fiji, -17.0, 0.0, NULL));
	assert_false(pl_area_contains(&fiji, -17.0, -179.0, NULL)); /* ~117 km east */
	assert_true(pl_area_route_fits(&fiji, -17.0, 179.8, -17.0, -179.8, &d));
	assert_true(d > 42000 && d < 43000);

	pl_area_t north = area_of("90,0,100000", 300000);
	for (double lon = -180; lon <= 180; lon += 45) {
		assert_true(pl_area_contains(&north, 89.5, lon, NULL));  /* 55.6 km from the pole */
		assert_false(pl_area_contains(&north, 89.0, lon, NULL)); /* 111 km */
	}
	/* a route over the pole: 89.5,0 -> 89.5,180 is 111 km, not half the earth */
	assert_true(pl_area_route_fits(&north, 89.5, 0, 89.5, 180, &d));
	assert_true(d > 111000 && d < 112000);
	pl_area_t south = area_of("-90,0,1000", 300000);
	assert_true(pl_area_contains(&south, -90, 123, NULL)); /* the pole at any longitude */
	assert_false(pl_area_contains(&south, 90, 0, NULL));
	pl_area_t earth = area_of("0,0,20015115", 40000000);
	assert_true(pl_area_contains(&earth, 0, 180, NULL)); /* the antipode */
	assert_true(pl_area_contains(&earth, -90, 0, NULL));
}

static void test_bad_numbers_are_never_inside(void **state)
{
	(void)state;
	pl_area_t a = area_of("0,0,20015115", 40000000); /* the whole earth */
	static const double bad[] = {NAN,         -NAN,        INFINITY,    -INFINITY,
	                             1e300,       -1e300,      DBL_MAX,     90.0000001,
	                             -90.0000001, 180.0000001, -180.0000001};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double d = 0;
		if (fabs(bad[i]) > 90.0 || isnan(bad[i])) {
			assert_false(pl_area_contains(&a, bad[i], 0, &d));
			assert_true(isnan(d));
		}
		if (fabs(bad[i]) > 180.0 || isnan(bad[i])) {
			assert_false(pl_area_contains(&a, 0, bad[i], &d));
			assert_true(isnan(d));
			assert_false(pl_area_route_fits(&a, 0, 0, 0, bad[i], &d));
			assert_true(isnan(d));
			assert_false(pl_area_route_fits(&a, 0, bad[i], 0, 0, NULL));
		}
		char reason[256];
		pl_area_fault_t f = pl_area_check(&a, bad[i], bad[i], 0, 0, reason, sizeof(reason));
		assert_int_equal(f, PL_AREA_PICKUP_OUTSIDE);
		assert_non_null(strstr(reason, "pickup is not a valid point"));
		assert_int_equal(pl_area_check(&a, 0, 0, bad[i], bad[i], reason, sizeof(reason)),
		                 PL_AREA_DROPOFF_OUTSIDE);
	}
	/* a tiny reason buffer is cut, never overrun */
	char small[8];
	assert_int_equal(pl_area_check(&a, NAN, 0, 0, 0, small, sizeof(small)),
	                 PL_AREA_PICKUP_OUTSIDE);
	assert_int_equal(strlen(small), 7);
}

/* The default setting accepts every delivery between places free text maps to (geo.h's box),
 * so no request that the service took before the rule existed is refused by default. */
static void test_default_holds_every_free_text_place(void **state)
{
	(void)state;
	pl_area_t a = area_of(pl_area_cfg[0].def, 70000);
	const double lat0 = PL_GEO_AREA_LAT_MIN, lon0 = PL_GEO_AREA_LON_MIN;
	const double lat1 = lat0 + PL_GEO_AREA_SPAN, lon1 = lon0 + PL_GEO_AREA_SPAN;
	const double corners[4][2] = {{lat0, lon0}, {lat0, lon1}, {lat1, lon0}, {lat1, lon1}};
	for (int i = 0; i < 4; i++) {
		assert_true(pl_area_contains(&a, corners[i][0], corners[i][1], NULL));
		/* a drone at the opposite corner, a delivery from corner to opposite corner */
		double way = pl_geo_distance_m(corners[3 - i][0], corners[3 - i][1], corners[i][0],
		                               corners[i][1]);
		assert_true(2 * way <= a.range_m);
		assert_int_equal(pl_area_check(&a, corners[i][0], corners[i][1], corners[3 - i][0],
		                               corners[3 - i][1], NULL, 0),
		                 PL_AREA_OK);
	}
	for (int i = 0; i < 1000; i++) {
		char text[32];
		double lat, lon;
		snprintf(text, sizeof(text), "street %d", i);
		assert_int_equal(pl_geo_resolve(text, &lat, &lon), PL_OK);
		assert_true(pl_area_contains(&a, lat, lon, NULL));
	}
}

static void test_parse_point(void **state)
{
	(void)state;
	double lat = 1, lon = 2;
	assert_int_equal(pl_geo_parse_point(" 47.5 , -122 ", &lat, &lon), PL_OK);
	assert_true(lat == 47.5 && lon == -122);
	assert_int_equal(pl_geo_parse_point("Pike Place Market", &lat, &lon), PL_ERR_INVALID);
	assert_int_equal(pl_geo_parse_point("91,0", &lat, &lon), PL_ERR_INVALID);
	assert_int_equal(pl_geo_parse_point("", &lat, &lon), PL_ERR_INVALID);
	assert_int_equal(pl_geo_parse_point(NULL, &lat, &lon), PL_ERR_INVALID);
	assert_true(lat == 47.5 && lon == -122);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_bad_settings_are_refused),
	    cmocka_unit_test(test_config_table),
	    cmocka_unit_test(test_inside_outside),
	    cmocka_unit_test(test_edge),
	    cmocka_unit_test(test_antimeridian_and_poles),
	    cmocka_unit_test(test_bad_numbers_are_never_inside),
	    cmocka_unit_test(test_default_holds_every_free_text_place),
	    cmocka_unit_test(test_parse_point),
	};
	return cmocka_run_group_tests_name("pipeline/area", tests, NULL, NULL);
}
