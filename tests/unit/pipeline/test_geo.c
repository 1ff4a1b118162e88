/* test_geo.c — pl_geo: "lat,lon" parsing and ranges, the stable free-text
 * mapping (pinned values computed once and cross-checked with an independent
 * Python implementation), distance and great-circle interpolation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "geo.h"

#define LAT_MAX (PL_GEO_AREA_LAT_MIN + PL_GEO_AREA_SPAN)
#define LON_MAX (PL_GEO_AREA_LON_MIN + PL_GEO_AREA_SPAN)

static void assert_near(double got, double want, double tolerance)
{
	if (fabs(got - want) > tolerance)
		fail_msg("got %.10f, want %.10f (+-%g)", got, want, tolerance);
}

static void assert_in_area(double lat, double lon)
{
	assert_true(lat >= PL_GEO_AREA_LAT_MIN && lat < LAT_MAX);
	assert_true(lon >= PL_GEO_AREA_LON_MIN && lon < LON_MAX);
}

static void test_coordinates_are_that_point(void **state)
{
	(void)state;
	double lat = 0, lon = 0;
	assert_int_equal(pl_geo_resolve("47.6062,-122.3321", &lat, &lon), PL_OK);
	assert_true(lat == 47.6062 && lon == -122.3321); /* exact: one correctly rounded step */
	assert_int_equal(pl_geo_resolve("  47.6 ,\t-122.3  ", &lat, &lon), PL_OK);
	assert_true(lat == 47.6 && lon == -122.3);
	assert_int_equal(pl_geo_resolve("+1.5,-.5", &lat, &lon), PL_OK);
	assert_true(lat == 1.5 && lon == -0.5);
	assert_int_equal(pl_geo_resolve("-90,180", &lat, &lon), PL_OK);
	assert_true(lat == -90.0 && lon == 180.0);
	assert_int_equal(pl_geo_resolve("90.000,-180", &lat, &lon), PL_OK);
	assert_true(lat == 90.0 && lon == -180.0);
	assert_int_equal(pl_geo_resolve("-0,0", &lat, &lon), PL_OK);
	assert_true(lat == 0.0 && !signbit(lat) && lon == 0.0);
	assert_int_equal(pl_geo_resolve("12.", &lat, &lon), PL_OK); /* not "lat,lon": free text */
	assert_in_area(lat, lon);
	/* many digits: the first 15 significant are kept */
	assert_int_equal(
	    pl_geo_resolve("47.60620000000000000001,0.000000000000000000000000001", &lat, &lon),
	    PL_OK);
	assert_near(lat, 47.6062, 1e-12);
	assert_near(lon, 0.0, 1e-20);
	assert_int_equal(pl_geo_resolve("00047.5,0122.25", &lat, &lon), PL_OK);
	assert_true(lat == 47.5 && lon == 122.25);
}

static void test_coordinates_out_of_range_are_invalid(void **state)
{
	(void)state;
	double lat = 1.0, lon = 2.0;
	const char *bad[] = {
	    "91,0", "-90.0001,0", "0,180.5", "0,-181", "1000000000000000000000,0", "  95 , 10 "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pl_geo_resolve(bad[i], &lat, &lon), PL_ERR_INVALID);
		assert_true(lat == 1.0 && lon == 2.0); /* untouched */
	}
}

static void test_empty_and_blank_are_invalid(void **state)
{
	(void)state;
	double lat, lon;
	assert_int_equal(pl_geo_resolve("", &lat, &lon), PL_ERR_INVALID);
	assert_int_equal(pl_geo_resolve(" \t\r\n ", &lat, &lon), PL_ERR_INVALID);
	assert_int_equal(pl_geo_resolve(NULL, &lat, &lon), PL_ERR_INVALID);
}

static void test_coordinate_lookalikes_are_free_text(void **state)
{
	(void)state;
	const char *texts[] = {
	    "1,2,3", "47.6;-122.3", "47.6, -122.3 W", "1e2,3",  "NaN,5",
	    ",",     "47.6,",       "- 1,2",          "1..2,3", "12 Main St, Seattle"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		double lat, lon;
		assert_int_equal(pl_geo_resolve(texts[i], &lat, &lon), PL_OK);
		assert_in_area(lat, lon);
	}
}

static void test_free_text_is_pinned(void **state)
{
	(void)state;
	double lat, lon;
	/* Computed once; a change here moves every delivery a client ever made. */
	assert_true(pl_geo_text_hash("pike place market") == 0x089ac888ca51db27ULL);
	assert_int_equal(pl_geo_resolve("Pike Place Market", &lat, &lon), PL_OK);
	assert_true(lat == 0x1.7de8ff1a98p+5);     /* 47.738767822040245 */
	assert_true(lon == -0x1.e98c538f88ccdp+6); /* -122.38703750870191 */
	assert_int_equal(pl_geo_resolve("Space Needle", &lat, &lon), PL_OK);
	assert_true(lat == 0x1.7c6a5cebd8p+5);                        /* 47.551935045747086 */
	assert_true(lon == -0x1.e9027f42f7ccdp+6);                    /* -122.25243858945323 */
	assert_true(pl_geo_text_hash("") == 14695981039346656037ULL); /* FNV offset basis */
}

static void test_free_text_is_normalised_and_stable(void **state)
{
	(void)state;
	double lat1, lon1, lat2, lon2;
	assert_int_equal(pl_geo_resolve("Pike Place Market", &lat1, &lon1), PL_OK);
	assert_int_equal(pl_geo_resolve("  pike \t PLACE\n\nmarket  ", &lat2, &lon2), PL_OK);
	assert_true(lat1 == lat2 && lon1 == lon2);
	assert_int_equal(pl_geo_resolve("Pike Place Market", &lat2, &lon2), PL_OK);
	assert_true(lat1 == lat2 && lon1 == lon2);
	assert_int_equal(pl_geo_resolve("Pike Place Markets", &lat2, &lon2), PL_OK);
	assert_false(lat1 == lat2 && lon1 == lon2);
	assert_int_equal(pl_geo_resolve("PikePlace Market", &lat2, &lon2), PL_OK);
	assert_false(lat1 == lat2 && lon1 == lon2);
	/* non-ASCII bytes are kept, not folded */
	assert_int_equal(pl_geo_resolve("Caf\xc3\xa9", &lat1, &lon1), PL_OK);
	assert_int_equal(pl_geo_resolve("caf\xc3\xa9", &lat2, &lon2), PL_OK);
	assert_true(lat1 == lat2 && lon1 == lon2);
	assert_int_equal(pl_geo_resolve("CAF\xc3\x89", &lat2, &lon2), PL_OK);
	assert_false(lat1 == lat2 && lon1 == lon2);
}

static void test_free_text_lands_in_area_and_spreads(void **state)
{
	(void)state;
	int north = 0, east = 0;
	for (int i = 0; i < 2000; i++) {
		char text[32];
		snprintf(text, sizeof(text), "%d Pine Street", i);
		double lat, lon;
		assert_int_equal(pl_geo_resolve(text, &lat, &lon), PL_OK);
		assert_in_area(lat, lon);
		north += lat >= PL_GEO_AREA_LAT_MIN + PL_GEO_AREA_SPAN / 2;
		east += lon >= PL_GEO_AREA_LON_MIN + PL_GEO_AREA_SPAN / 2;
	}
	/* roughly half in each half of the box */
	assert_true(north > 850 && north < 1150);
	assert_true(east > 850 && east < 1150);
}

static void test_distance(void **state)
{
	(void)state;
	assert_near(pl_geo_distance_m(0, 0, 1, 0), 111195.0802, 0.001); /* 1 degree of latitude */
	assert_near(pl_geo_distance_m(10, 20, 10, 20), 0.0, 1e-9);
	assert_near(pl_geo_distance_m(0, 0, 0, 180), 20015114.4420, 0.001);   /* half the globe */
	double d = pl_geo_distance_m(47.6062, -122.3321, 45.5152, -122.6784); /* Seattle-Portland */
	assert_near(d, 234010.84, 1.0);
	assert_near(pl_geo_distance_m(45.5152, -122.6784, 47.6062, -122.3321), d, 1e-6);
	assert_near(pl_geo_distance_m(0, 179.5, 0, -179.5), 111195.0802, 0.001); /* antimeridian */
}

static void test_interpolate(void **state)
{
	(void)state;
	double lat, lon;
	pl_geo_interpolate(47.6, -122.3, 45.5, -122.7, 0.0, &lat, &lon);
	assert_near(lat, 47.6, 1e-9);
	assert_near(lon, -122.3, 1e-9);
	pl_geo_interpolate(47.6, -122.3, 45.5, -122.7, 1.0, &lat, &lon);
	assert_near(lat, 45.5, 1e-9);
	assert_near(lon, -122.7, 1e-9);
	pl_geo_interpolate(0, 0, 0, 90, 0.5, &lat, &lon); /* along the equator */
	assert_near(lat, 0.0, 1e-9);
	assert_near(lon, 45.0, 1e-9);
	pl_geo_interpolate(0, 0, 10, 0, 0.25, &lat, &lon); /* along a meridian */
	assert_near(lat, 2.5, 1e-9);
	assert_near(lon, 0.0, 1e-9);
	pl_geo_interpolate(0, 170, 0, -170, 0.5, &lat, &lon); /* across the antimeridian */
	assert_near(fabs(lon), 180.0, 1e-9);
	/* the midpoint halves the distance */
	pl_geo_interpolate(47.6062, -122.3321, 45.5152, -122.6784, 0.5, &lat, &lon);
	double whole = pl_geo_distance_m(47.6062, -122.3321, 45.5152, -122.6784);
	assert_near(pl_geo_distance_m(47.6062, -122.3321, lat, lon), whole / 2, 0.01);
	assert_near(pl_geo_distance_m(lat, lon, 45.5152, -122.6784), whole / 2, 0.01);
	/* fraction is clamped; NaN counts as 0 */
	pl_geo_interpolate(1, 2, 3, 4, -1.0, &lat, &lon);
	assert_near(lat, 1.0, 1e-9);
	pl_geo_interpolate(1, 2, 3, 4, 7.0, &lat, &lon);
	assert_near(lat, 3.0, 1e-9);
	pl_geo_interpolate(1, 2, 3, 4, NAN, &lat, &lon);
	assert_near(lat, 1.0, 1e-9);
	/* same point: stays there */
	pl_geo_interpolate(47.5, -122.4, 47.5, -122.4, 0.3, &lat, &lon);
	assert_near(lat, 47.5, 1e-12);
	assert_near(lon, -122.4, 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_coordinates_are_that_point),
	    cmocka_unit_test(test_coordinates_out_of_range_are_invalid),
	    cmocka_unit_test(test_empty_and_blank_are_invalid),
	    cmocka_unit_test(test_coordinate_lookalikes_are_free_text),
	    cmocka_unit_test(test_free_text_is_pinned),
	    cmocka_unit_test(test_free_text_is_normalised_and_stable),
	    cmocka_unit_test(test_free_text_lands_in_area_and_spreads),
	    cmocka_unit_test(test_distance),
	    cmocka_unit_test(test_interpolate),
	};
	return cmocka_run_group_tests_name("pipeline/geo", tests, NULL, NULL);
}
