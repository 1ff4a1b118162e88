/* test_fleet.c — the pure part of the scheduler's fleet (consumers/scheduler/fleet.c), no server:
 * drone ids and home positions used by seeding, the claim order (nearest first, ties by drone
 * id, bad positions left out, the same order whatever the input order), route length, the UTC
 * month window of the utilization query, and what one assignment adds to a utilization.
 * The store behaviour against a real MongoDB-API server is in tests/it/test_stores.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "geo.h"
#include "scheduler/fleet.h"

static fleet_candidate_t cand(const char *id, double lat, double lon)
{
	fleet_candidate_t c;
	memset(&c, 0, sizeof c);
	snprintf(c.drone_id, sizeof c.drone_id, "%s", id);
	c.position.lat = lat;
	c.position.lon = lon;
	return c;
}

static void test_drone_ids(void **state)
{
	char id[FLEET_ID_MAX];
	(void)state;
	assert_true(fleet_drone_id(1, id));
	assert_string_equal(id, "drone-0001");
	assert_true(fleet_drone_id(42, id));
	assert_string_equal(id, "drone-0042");
	assert_true(fleet_drone_id(9999, id));
	assert_string_equal(id, "drone-9999");
	assert_true(fleet_drone_id(FLEET_SIZE_MAX, id));
	assert_string_equal(id, "drone-100000");
	assert_false(fleet_drone_id(0, id));
	assert_string_equal(id, "");
	assert_false(fleet_drone_id(FLEET_SIZE_MAX + 1, id));
}

static void test_homes_are_stable_and_in_the_service_area(void **state)
{
	char id[FLEET_ID_MAX];
	int distinct = 0;
	fleet_point_t prev = {0, 0};
	(void)state;
	for (unsigned i = 1; i <= 1000; i++) {
		fleet_drone_id(i, id);
		fleet_point_t p = fleet_drone_home(id), again = fleet_drone_home(id);
		assert_true(p.lat == again.lat && p.lon == again.lon);
		assert_true(p.lat >= PL_GEO_AREA_LAT_MIN);
		assert_true(p.lat < PL_GEO_AREA_LAT_MIN + PL_GEO_AREA_SPAN);
		assert_true(p.lon >= PL_GEO_AREA_LON_MIN);
		assert_true(p.lon < PL_GEO_AREA_LON_MIN + PL_GEO_AREA_SPAN);
		if (p.lat != prev.lat || p.lon != prev.lon)
			distinct++;
		prev = p;
	}
	assert_int_equal(distinct, 1000); /* spread, not piled on one point */
}

static void test_rank_nearest_first(void **state)
{
	fleet_point_t pickup = {47.60, -122.33};
	fleet_candidate_t c[4] = {
	    cand("drone-0001", 47.70, -122.33),  /* ~11 km north */
	    cand("drone-0002", 47.601, -122.33), /* ~110 m */
	    cand("drone-0003", 47.60, -122.40),  /* ~5 km west */
	    cand("drone-0004", 47.61, -122.33),  /* ~1.1 km */
	};
	size_t order[4];
	(void)state;
	assert_int_equal(fleet_rank(c, 4, pickup, order), 4);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 3);
	assert_int_equal(order[2], 2);
	assert_int_equal(order[3], 0);
}

static void test_rank_ties_by_drone_id_whatever_the_input_order(void **state)
{
	fleet_point_t pickup = {47.60, -122.33};
	/* drones at the same spot, and two at the same distance on opposite sides */
	fleet_candidate_t a[5] = {
	    cand("drone-0009", 47.62, -122.33), cand("drone-0003", 47.62, -122.33),
	    cand("drone-0007", 47.62, -122.33), cand("drone-0002", 47.65, -122.33),
	    cand("drone-0001", 47.55, -122.33),
	};
	fleet_candidate_t b[5] = {a[4], a[2], a[3], a[0], a[1]};
	const char *want[5] = {"drone-0003", "drone-0007", "drone-0009", "drone-0001",
	                       "drone-0002"};
	size_t oa[5], ob[5];
	(void)state;
	assert_int_equal(fleet_rank(a, 5, pickup, oa), 5);
	assert_int_equal(fleet_rank(b, 5, pickup, ob), 5);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(a[oa[i]].drone_id, want[i]);
		assert_string_equal(b[ob[i]].drone_id, want[i]);
	}
	/* 0001 (0.05 degrees south) and 0002 (0.05 degrees north) are equally far up to
	 * rounding; whichever comes first, both input orders agree. */
	assert_string_equal(a[oa[3]].drone_id, b[ob[3]].drone_id);
	assert_string_equal(a[oa[4]].drone_id, b[ob[4]].drone_id);
}

static void test_rank_exact_tie_uses_id(void **state)
{
	/* mirror images across the pickup's meridian: exactly the same haversine distance */
	fleet_point_t pickup = {47.60, -122.30};
	fleet_candidate_t c[2] = {cand("drone-0500", 47.60, -122.25),
	                          cand("drone-0499", 47.60, -122.35)};
	size_t order[2];
	(void)state;
	assert_int_equal(fleet_rank(c, 2, pickup, order), 2);
	if (pl_geo_distance_m(47.60, -122.30, 47.60, -122.25) ==
	    pl_geo_distance_m(47.60, -122.30, 47.60, -122.35))
		assert_string_equal(c[order[0]].drone_id, "drone-0499");
}

static void test_rank_leaves_out_bad_positions(void **state)
{
	fleet_point_t pickup = {47.60, -122.33};
	fleet_candidate_t c[5] = {
	    cand("drone-0001", NAN, -122.33),   cand("drone-0002", 47.60, INFINITY),
	    cand("drone-0003", 91.0, -122.33),  cand("drone-0004", 47.60, -181.0),
	    cand("drone-0005", 47.70, -122.33),
	};
	size_t order[5];
	(void)state;
	assert_int_equal(fleet_rank(c, 5, pickup, order), 1);
	assert_int_equal(order[0], 4);
}

static void test_rank_empty_or_bad_pickup(void **state)
{
	fleet_candidate_t c[1] = {cand("drone-0001", 47.6, -122.3)};
	size_t order[1];
	fleet_point_t nan_pickup = {NAN, -122.3};
	fleet_point_t ok = {47.6, -122.3};
	(void)state;
	assert_int_equal(fleet_rank(c, 0, ok, order), 0);
	assert_int_equal(fleet_rank(c, 1, nan_pickup, order), 0);
}

static void test_rank_a_full_fleet(void **state)
{
	enum { N = 1000 };
	static fleet_candidate_t c[N];
	static size_t order[N];
	fleet_point_t pickup = {47.61, -122.33};
	(void)state;
	for (unsigned i = 0; i < N; i++) {
		fleet_drone_id(i + 1, c[i].drone_id);
		c[i].position = fleet_drone_home(c[i].drone_id);
		c[i].gen = 0;
	}
	assert_int_equal(fleet_rank(c, N, pickup, order), N);
	for (unsigned i = 1; i < N; i++) {
		double d0 = pl_geo_distance_m(pickup.lat, pickup.lon, c[order[i - 1]].position.lat,
		                              c[order[i - 1]].position.lon);
		double d1 = pl_geo_distance_m(pickup.lat, pickup.lon, c[order[i]].position.lat,
		                              c[order[i]].position.lon);
		assert_true(d0 <= d1);
	}
}

static void test_route(void **state)
{
	fleet_point_t a = {47.60, -122.33}, b = {47.61, -122.33}, d = {47.61, -122.34};
	double want = pl_geo_distance_m(a.lat, a.lon, b.lat, b.lon) +
	              pl_geo_distance_m(b.lat, b.lon, d.lat, d.lon);
	(void)state;
	assert_float_equal(fleet_route_m(a, b, d), want, 1e-9);
	assert_float_equal(fleet_route_m(a, a, a), 0.0, 1e-9);
	assert_float_equal(fleet_route_m(a, b, d), 1112 + 751, 10); /* ~1.11 km + ~0.75 km */
}

static void test_month_window(void **state)
{
	int64_t s, e;
	(void)state;
	assert_true(fleet_month_window(2026, 11, &s, &e));
	assert_int_equal(s, 1793491200000LL); /* 2026-11-01T00:00:00Z */
	assert_int_equal(e, 1796083200000LL); /* 2026-12-01T00:00:00Z */
	assert_true(fleet_month_window(2026, 12, &s, &e));
	assert_int_equal(e, 1798761600000LL); /* 2027-01-01 */
	assert_true(fleet_month_window(2024, 2, &s, &e));
	assert_int_equal(e - s, 29LL * 86400000); /* leap February */
	assert_true(fleet_month_window(2100, 2, &s, &e));
	assert_int_equal(e - s, 28LL * 86400000); /* 2100 is not a leap year */
	assert_true(fleet_month_window(1, 1, &s, &e));
	assert_true(fleet_month_window(9999, 12, &s, &e));
	assert_true(e > s);
	assert_false(fleet_month_window(0, 5, &s, &e));
	assert_false(fleet_month_window(2026, 0, &s, &e));
	assert_false(fleet_month_window(2026, 13, &s, &e));
	assert_false(fleet_month_window(10000, 1, &s, &e));
	assert_false(fleet_month_window(-1, 1, &s, &e));
}

static void test_usage(void **state)
{
	fleet_assignment_t a;
	double miles, hours;
	(void)state;
	memset(&a, 0, sizeof a);
	snprintf(a.drone_id, sizeof a.drone_id, "drone-0001");
	a.assigned_at_ms = 1000;
	a.route_m = 2 * FLEET_METERS_PER_MILE;
	a.traveled_m = -1; /* active: the planned route, hours until now */
	assert_true(fleet_assignment_usage(&a, 1000 + 5400000, &miles, &hours));
	assert_float_equal(miles, 2.0, 1e-12);
	assert_float_equal(hours, 1.5, 1e-12);

	a.released_at_ms = 1000 + 1800000; /* completed after 30 minutes */
	a.traveled_m = a.route_m;
	assert_true(fleet_assignment_usage(&a, 1000 + 99999999, &miles, &hours));
	assert_float_equal(miles, 2.0, 1e-12);
	assert_float_equal(hours, 0.5, 1e-12);

	a.traveled_m = 0; /* cancelled: the drone went back where it was */
	assert_true(fleet_assignment_usage(&a, 0, &miles, &hours));
	assert_float_equal(miles, 0.0, 1e-12);

	a.released_at_ms = 0; /* clock behind assignedAt: never negative */
	a.traveled_m = -1;
	assert_true(fleet_assignment_usage(&a, 10, &miles, &hours));
	assert_float_equal(hours, 0.0, 1e-12);

	a.drone_id[0] = '\0'; /* pending or released without a drone: nothing */
	assert_false(fleet_assignment_usage(&a, 1000 + 5400000, &miles, &hours));
	assert_float_equal(miles, 0.0, 1e-12);
	assert_float_equal(hours, 0.0, 1e-12);
}

static void test_store_rejects_bad_arguments_without_a_server(void **state)
{
	char errstr[256];
	(void)state;
	assert_null(fleet_new("not a uri", "dronescheduler", 0, 0, errstr, sizeof errstr));
	assert_true(strlen(errstr) > 0);
	assert_null(fleet_new("mongodb://127.0.0.1:1/", "", 0, 0, errstr, sizeof errstr));
	assert_null(fleet_new("mongodb://127.0.0.1:1/", "a.b", 0, 0, errstr, sizeof errstr));
	fleet_t *fleet =
	    fleet_new("mongodb://127.0.0.1:1/", "dronescheduler", 0, 0, errstr, sizeof errstr);
	assert_non_null(fleet);
	fleet_assignment_t a;
	fleet_utilization_t u;
	fleet_point_t ok = {47.6, -122.3}, bad = {NAN, 0};
	/* input checks come before any round trip, so these answer at once */
	assert_int_equal(fleet_assign(fleet, "", "o", ok, ok, 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_assign(fleet, "d", "", ok, ok, 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_assign(fleet, "d", "o", bad, ok, 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_assign(fleet, "d", "o", ok, bad, 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_assign(fleet, "d\xff", "o", ok, ok, 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_release(fleet, "d", "", 0, &a), PL_ERR_INVALID);
	assert_int_equal(fleet_utilization(fleet, "", 2026, 1, 0, &u), PL_ERR_INVALID);
	assert_int_equal(fleet_utilization(fleet, "o", 2026, 0, 0, &u), PL_ERR_INVALID);
	assert_int_equal(fleet_utilization(fleet, "o", 0, 1, 0, &u), PL_ERR_INVALID);
	assert_int_equal(fleet_seed(fleet, 0, NULL), PL_ERR_INVALID);
	assert_int_equal(fleet_seed(fleet, FLEET_SIZE_MAX + 1, NULL), PL_ERR_INVALID);
	fleet_destroy(fleet);
	fleet_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_drone_ids),
	    cmocka_unit_test(test_homes_are_stable_and_in_the_service_area),
	    cmocka_unit_test(test_rank_nearest_first),
	    cmocka_unit_test(test_rank_ties_by_drone_id_whatever_the_input_order),
	    cmocka_unit_test(test_rank_exact_tie_uses_id),
	    cmocka_unit_test(test_rank_leaves_out_bad_positions),
	    cmocka_unit_test(test_rank_empty_or_bad_pickup),
	    cmocka_unit_test(test_rank_a_full_fleet),
	    cmocka_unit_test(test_route),
	    cmocka_unit_test(test_month_window),
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_store_rejects_bad_arguments_without_a_server),
	};
	return cmocka_run_group_tests_name("consumers/scheduler/fleet", tests, NULL, NULL);
}
