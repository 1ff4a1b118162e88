/* test_sim.c — the simulator's flight model (producers/dronesim/sim.h): legs flown at the
 * configured speed along the great circle, arrival exactly on the point (never past it), time
 * scale, resume from a telemetry record (through the real Avro codec) without a jump, the
 * idempotent start, input validation and the flight table. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "avro.h"
#include "dronesim/sim.h"
#include "geo.h"
#include "mem.h"

#define SPEED 15.0

/* Drone at A, pickup B about 1.1 km north, dropoff C about 2.2 km further north-east. */
static const sim_point_t A = {47.6000, -122.3300, 0};
static const sim_point_t B = {47.6100, -122.3300, 0};
static const sim_point_t C = {47.6250, -122.3100, 0};

static double dist(const sim_point_t *p, const sim_point_t *q)
{
	return pl_geo_distance_m(p->latitude, p->longitude, q->latitude, q->longitude);
}

static void assert_near(double got, double want, double tolerance)
{
	if (fabs(got - want) > tolerance)
		fail_msg("got %.9f, want %.9f (+-%g)", got, want, tolerance);
}

static json_t *assigned_json(const char *delivery_id, const char *drone_id)
{
	return json_pack("{s:s, s:s, s:s, s:{s:f, s:f, s:f}, s:I, s:{s:f, s:f, s:f}, "
	                 "s:{s:f, s:f, s:f}}",
	                 "eventId", "e-1", "deliveryId", delivery_id, "droneId", drone_id,
	                 "position", "latitude", A.latitude, "longitude", A.longitude, "altitude",
	                 0.0, "assignedAt", (json_int_t)1700000000000, "pickup", "latitude",
	                 B.latitude, "longitude", B.longitude, "altitude", 0.0, "dropoff",
	                 "latitude", C.latitude, "longitude", C.longitude, "altitude", 0.0);
}

static void new_flight(sim_flight_t *f)
{
	json_t *a = assigned_json("d-1", "drone-7");
	char err[128];
	assert_int_equal(sim_flight_from_assigned(a, f, err, sizeof(err)), PL_OK);
	json_decref(a);
}

static void test_leg_progression(void **state)
{
	(void)state;
	sim_flight_t f;
	new_flight(&f);
	assert_int_equal(f.state, SIM_FLYING);
	assert_int_equal(f.phase, SIM_TO_PICKUP);
	double leg = dist(&A, &B);
	assert_true(leg > 1000 && leg < 1200);
	/* 10 s at 15 m/s: 150 m flown, on the way to B */
	assert_int_equal(sim_advance(&f, 10, SPEED, NULL), SIM_ARRIVAL_NONE);
	assert_near(dist(&A, &f.position), 150, 0.01);
	assert_near(dist(&f.position, &B), leg - 150, 0.01);
	assert_near(f.position.altitude, SIM_CRUISE_ALTITUDE_M, 0);
	/* small steps: the distance to the pickup only ever shrinks, by speed * dt each */
	double before = dist(&f.position, &B);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(sim_advance(&f, 1, SPEED, NULL), SIM_ARRIVAL_NONE);
		double now = dist(&f.position, &B);
		assert_near(before - now, SPEED, 0.01);
		before = now;
	}
	/* zero or negative time moves nothing */
	sim_point_t at = f.position;
	assert_int_equal(sim_advance(&f, 0, SPEED, NULL), SIM_ARRIVAL_NONE);
	assert_int_equal(sim_advance(&f, -5, SPEED, NULL), SIM_ARRIVAL_NONE);
	assert_true(at.latitude == f.position.latitude && at.longitude == f.position.longitude);
}

static void test_arrival_at_exact_distance(void **state)
{
	(void)state;
	sim_flight_t f;
	new_flight(&f);
	double leg1 = dist(&A, &B), leg2 = dist(&B, &C);
	/* a millimetre short of the pickup is not there yet ... */
	double leftover = -1;
	assert_int_equal(sim_advance(&f, (leg1 - 0.01) / SPEED, SPEED, &leftover),
	                 SIM_ARRIVAL_NONE);
	assert_near(leftover, 0, 0);
	assert_near(dist(&f.position, &B), 0.01, 0.001);
	/* ... exactly the rest is: on the pickup, bit for bit, nothing left over */
	assert_int_equal(sim_advance(&f, 0.01 / SPEED, SPEED, &leftover), SIM_ARRIVAL_PICKUP);
	assert_true(f.position.latitude == B.latitude && f.position.longitude == B.longitude);
	assert_near(leftover, 0, 1e-6);
	/* the phase changes only when the arrival is reported */
	assert_int_equal(f.phase, SIM_TO_PICKUP);
	sim_arrival_done(&f, SIM_ARRIVAL_PICKUP, 1000);
	assert_int_equal(f.phase, SIM_TO_DROPOFF);
	assert_int_equal(sim_advance(&f, leg2 / SPEED, SPEED, &leftover), SIM_ARRIVAL_DROPOFF);
	assert_true(f.position.latitude == C.latitude && f.position.longitude == C.longitude);
	sim_arrival_done(&f, SIM_ARRIVAL_DROPOFF, 2000);
	assert_int_equal(f.phase, SIM_ARRIVED);
	assert_int_equal(f.state, SIM_DONE);
	assert_int_equal(f.touched_ms, 2000);
	/* an arrived flight never moves nor arrives again */
	assert_int_equal(sim_advance(&f, 1000, SPEED, NULL), SIM_ARRIVAL_NONE);
	assert_true(f.position.latitude == C.latitude);
	/* a stale report does not rewind the phase */
	sim_arrival_done(&f, SIM_ARRIVAL_PICKUP, 3000);
	assert_int_equal(f.phase, SIM_ARRIVED);
}

static void test_no_overshoot(void **state)
{
	(void)state;
	sim_flight_t f;
	new_flight(&f);
	double leg1 = dist(&A, &B);
	double leftover = 0;
	/* an hour of flight in one step stops on the pickup with the rest left over */
	assert_int_equal(sim_advance(&f, 3600, SPEED, &leftover), SIM_ARRIVAL_PICKUP);
	assert_true(f.position.latitude == B.latitude && f.position.longitude == B.longitude);
	assert_near(leftover, 3600 - leg1 / SPEED, 1e-6);
	/* not reported yet: it waits on the point and reports the arrival again */
	assert_int_equal(sim_advance(&f, 10, SPEED, &leftover), SIM_ARRIVAL_PICKUP);
	assert_true(f.position.latitude == B.latitude && f.position.longitude == B.longitude);
	assert_near(leftover, 10, 1e-9);
	sim_arrival_done(&f, SIM_ARRIVAL_PICKUP, 0);
	/* the dropoff leg in uneven steps: never past the dropoff, never away from it */
	double before = dist(&f.position, &C);
	sim_arrival_t a = SIM_ARRIVAL_NONE;
	for (int i = 0; i < 1000 && a == SIM_ARRIVAL_NONE; i++) {
		a = sim_advance(&f, 7.3, SPEED, NULL);
		double now = dist(&f.position, &C);
		assert_true(now < before || (a == SIM_ARRIVAL_DROPOFF && now == 0));
		before = now;
	}
	assert_int_equal(a, SIM_ARRIVAL_DROPOFF);
	assert_true(f.position.latitude == C.latitude && f.position.longitude == C.longitude);
}

static void test_time_scale(void **state)
{
	(void)state;
	assert_near(sim_elapsed_s(1000, 1), 1, 0);
	assert_near(sim_elapsed_s(1000, 60), 60, 0);
	assert_near(sim_elapsed_s(250, 600), 150, 0);
	assert_near(sim_elapsed_s(0, 600), 0, 0);
	assert_near(sim_elapsed_s(-40, 600), 0, 0); /* a clock step back does not fly backwards */
	/* one wall second at scale 60 flies as far as 60 one-second steps at scale 1 */
	sim_flight_t fast, slow;
	new_flight(&fast);
	new_flight(&slow);
	sim_advance(&fast, sim_elapsed_s(1000, 60), SPEED, NULL);
	for (int i = 0; i < 60; i++)
		sim_advance(&slow, sim_elapsed_s(1000, 1), SPEED, NULL);
	assert_near(dist(&fast.position, &slow.position), 0, 0.001);
	assert_near(dist(&A, &fast.position), 60 * SPEED, 0.01);
}

static void test_resume_from_telemetry(void **state)
{
	(void)state;
	char err[256];
	pl_avro_registry_t *reg = pl_avro_registry_embedded(err, sizeof(err));
	assert_non_null(reg);
	const pl_avro_schema_t *schema = pl_avro_schema_get(reg, SIM_TELEMETRY_SCHEMA);
	assert_non_null(schema);

	sim_flight_t f;
	new_flight(&f);
	assert_int_equal(sim_advance(&f, 3600, SPEED, NULL), SIM_ARRIVAL_PICKUP);
	sim_arrival_done(&f, SIM_ARRIVAL_PICKUP, 0);
	sim_advance(&f, 40, SPEED, NULL); /* 600 m into the dropoff leg */
	f.seq = 41;
	char id[37];
	sim_telemetry_id(f.delivery_id, f.seq, id);
	json_t *t = sim_telemetry_json(&f, SPEED, 1700000000123, id);
	/* the record as the topic holds it */
	void *buf = NULL;
	size_t len = 0;
	assert_int_equal(pl_avro_encode(schema, t, &buf, &len, err, sizeof(err)), PL_OK);
	json_t *back = NULL;
	assert_int_equal(pl_avro_decode(reg, buf, len, &back, NULL, err, sizeof(err)), PL_OK);
	pl_free(buf);
	assert_string_equal(json_string_value(json_object_get(back, "phase")), "ToDropoff");
	assert_int_equal(json_integer_value(json_object_get(back, "seq")), 41);
	assert_int_equal(json_integer_value(json_object_get(back, "time")), 1700000000123);
	assert_near(json_real_value(json_object_get(back, "speedMps")), SPEED, 0);
	assert_string_equal(json_string_value(json_object_get(back, "eventId")), id);

	sim_flight_t r;
	assert_int_equal(sim_flight_from_telemetry(back, &r, err, sizeof(err)), PL_OK);
	json_decref(back);
	json_decref(t);
	/* same place, same leg, same route, same drone, the next seq */
	assert_true(r.position.latitude == f.position.latitude);
	assert_true(r.position.longitude == f.position.longitude);
	assert_int_equal(r.phase, SIM_TO_DROPOFF);
	assert_int_equal(r.state, SIM_FLYING);
	assert_int_equal(r.seq, 42);
	assert_string_equal(r.drone_id, "drone-7");
	assert_string_equal(r.delivery_id, "d-1");
	assert_true(r.dropoff.latitude == C.latitude && r.pickup.latitude == B.latitude);
	/* continuing: no jump back to the start, and exactly where the original goes */
	double before = dist(&r.position, &C);
	sim_advance(&r, 10, SPEED, NULL);
	sim_advance(&f, 10, SPEED, NULL);
	assert_near(before - dist(&r.position, &C), 10 * SPEED, 0.01);
	assert_near(dist(&r.position, &f.position), 0, 0.001);

	/* an Arrived record restores a finished flight that never flies again */
	sim_advance(&f, 3600, SPEED, NULL);
	sim_arrival_done(&f, SIM_ARRIVAL_DROPOFF, 0);
	t = sim_telemetry_json(&f, SPEED, 1, id);
	assert_near(json_real_value(json_object_get(t, "speedMps")), 0, 0);
	assert_int_equal(sim_flight_from_telemetry(t, &r, err, sizeof(err)), PL_OK);
	assert_int_equal(r.state, SIM_DONE);
	assert_int_equal(sim_advance(&r, 100, SPEED, NULL), SIM_ARRIVAL_NONE);
	/* unusable records are refused with the field named */
	json_object_set_new(t, "phase", json_string("Teleporting"));
	assert_int_equal(sim_flight_from_telemetry(t, &r, err, sizeof(err)), PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "phase"));
	json_object_set_new(t, "phase", json_string("ToDropoff"));
	json_object_del(t, "pickup");
	assert_int_equal(sim_flight_from_telemetry(t, &r, err, sizeof(err)), PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "pickup"));
	json_decref(t);
	pl_avro_registry_destroy(reg);
}

static void test_idempotent_start(void **state)
{
	(void)state;
	sim_table_t *t = sim_table_new();
	sim_flight_t a, *f = NULL;
	new_flight(&a);
	assert_int_equal(sim_table_start(t, &a, 5000, &f), SIM_START_NEW);
	assert_int_equal(f->state, SIM_FLYING);
	assert_int_equal(f->seq, 0);
	assert_int_equal(f->last_advance_ms, 5000);
	/* a redelivered assignment changes nothing: not a second flight, not back to the start */
	sim_advance(f, 20, SPEED, NULL);
	f->seq = 3;
	sim_point_t at = f->position;
	sim_flight_t *again = NULL;
	assert_int_equal(sim_table_start(t, &a, 9000, &again), SIM_START_FLYING);
	assert_ptr_equal(again, f);
	assert_true(f->position.latitude == at.latitude && f->seq == 3);
	assert_int_equal(sim_table_size(t), 1);
	/* after arrival: still never a second flight */
	sim_advance(f, 3600, SPEED, NULL);
	sim_arrival_done(f, SIM_ARRIVAL_PICKUP, 0);
	sim_advance(f, 3600, SPEED, NULL);
	sim_arrival_done(f, SIM_ARRIVAL_DROPOFF, 0);
	assert_int_equal(sim_table_start(t, &a, 9000, NULL), SIM_START_DONE);
	/* a delivery stopped before its assignment arrived never flies */
	sim_flight_t *s = sim_table_add(t, "d-2");
	s->state = SIM_STOPPED;
	snprintf(a.delivery_id, sizeof(a.delivery_id), "d-2");
	assert_int_equal(sim_table_start(t, &a, 9000, NULL), SIM_START_STOPPED);
	/* a pending entry that learnt a newer route (reschedule) flies that route */
	sim_flight_t *p = sim_table_add(t, "d-3");
	p->route_version = 4;
	p->pickup = C;
	p->dropoff = B;
	snprintf(a.delivery_id, sizeof(a.delivery_id), "d-3");
	assert_int_equal(sim_table_start(t, &a, 9000, &f), SIM_START_NEW);
	assert_ptr_equal(f, p);
	assert_true(f->pickup.latitude == C.latitude && f->dropoff.latitude == B.latitude);
	assert_true(f->position.latitude == A.latitude); /* from the drone's position */
	assert_string_equal(f->drone_id, "drone-7");
	assert_int_equal(f->route_version, 4);
	sim_table_destroy(t);
	sim_table_destroy(NULL);
}

static void test_assigned_validation(void **state)
{
	(void)state;
	sim_flight_t f;
	char err[256];
	json_t *a = assigned_json("d-1", "drone-7");
	json_object_del(a, "pickup");
	assert_int_equal(sim_flight_from_assigned(a, &f, err, sizeof(err)), PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "pickup"));
	json_decref(a);
	a = assigned_json("d-1", "drone-7");
	json_object_set_new(json_object_get(a, "dropoff"), "latitude", json_real(91));
	assert_int_equal(sim_flight_from_assigned(a, &f, err, sizeof(err)), PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "dropoff"));
	json_decref(a);
	a = assigned_json("d-1", "");
	assert_int_equal(sim_flight_from_assigned(a, &f, err, sizeof(err)), PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "droneId"));
	json_decref(a);
	char long_id[300];
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	a = assigned_json(long_id, "drone-7");
	assert_int_equal(sim_flight_from_assigned(a, &f, err, sizeof(err)), PL_ERR_SCHEMA);
	json_decref(a);
	a = assigned_json("d-1", "drone-7");
	json_object_set_new(json_object_get(a, "position"), "longitude", json_string("east"));
	assert_int_equal(sim_flight_from_assigned(a, &f, err, sizeof(err)), PL_ERR_SCHEMA);
	json_decref(a);
}

static void test_event_ids(void **state)
{
	(void)state;
	char a[37], b[37], c[37], d[37];
	sim_telemetry_id("d-1", 7, a);
	sim_telemetry_id("d-1", 7, b);
	sim_telemetry_id("d-1", 8, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	sim_arrival_id("d-1", SIM_ARRIVAL_PICKUP, a);
	sim_arrival_id("d-1", SIM_ARRIVAL_PICKUP, b);
	sim_arrival_id("d-1", SIM_ARRIVAL_DROPOFF, c);
	sim_arrival_id("d-2", SIM_ARRIVAL_DROPOFF, d);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(c, d);
	assert_int_equal(a[14], '5'); /* UUID version 5 */
}

static void test_table(void **state)
{
	(void)state;
	sim_table_t *t = sim_table_new();
	char id[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		sim_flight_t *f = sim_table_add(t, id);
		f->seq = i;
		assert_ptr_equal(sim_table_add(t, id), f);
	}
	assert_int_equal(sim_table_size(t), 2000);
	for (int i = 0; i < 2000; i += 2) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		sim_table_remove(t, id);
	}
	sim_table_remove(t, "absent");
	assert_int_equal(sim_table_size(t), 1000);
	for (int i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "delivery-%d", i);
		sim_flight_t *f = sim_table_get(t, id);
		if (i % 2) {
			assert_non_null(f);
			assert_int_equal(f->seq, i);
		} else {
			assert_null(f);
		}
	}
	size_t cursor = 0, n = 0;
	for (sim_flight_t *f; (f = sim_table_next(t, &cursor));)
		n++;
	assert_int_equal(n, 1000);
	sim_table_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_leg_progression),
	    cmocka_unit_test(test_arrival_at_exact_distance),
	    cmocka_unit_test(test_no_overshoot),
	    cmocka_unit_test(test_time_scale),
	    cmocka_unit_test(test_resume_from_telemetry),
	    cmocka_unit_test(test_idempotent_start),
	    cmocka_unit_test(test_assigned_validation),
	    cmocka_unit_test(test_event_ids),
	    cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
