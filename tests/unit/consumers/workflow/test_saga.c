/* test_saga.c — the workflow saga state machine (consumers/workflow/saga.c) against the table
 * of STATE_MACHINE.md: every state (and "no saga") x every input, each cell checked for outcome,
 * new status, outputs in order, versions, deterministic eventIds and that re-applying the same
 * input is a duplicate with no new outputs. Then the stories the table cannot tell alone: the
 * happy paths with ETAs, cancel before/after assignment, assignment retry with backoff until the
 * timeout, reschedule values, out-of-order and malformed records, bounded dedup memory.
 * Every event and state produced is encoded with the embedded Avro schemas, and each state is
 * decoded back before it is used again — as the workflow does on restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro.h"
#include "geo.h"
#include "mem.h"
#include "workflow/saga.h"

#define T0  1795773600000LL /* 2026-11-27T10:00:00Z */
#define DID "7d0c8a8e-0b9f-4a47-9d55-2f2b7a1c0001"
#define U   SAGA_STATUS__COUNT /* "no saga" row; as an expected status: no state written */

static const saga_opts_t opts = {.assign_timeout_ms = 600000,
                                 .assign_backoff_min_ms = 2000,
                                 .assign_backoff_max_ms = 30000,
                                 .drone_speed_mps = 10.0};
static pl_avro_registry_t *registry;
static int next_id;

static int setup(void **unused __attribute__((unused)))
{
	char err[512];
	registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		fprintf(stderr, "registry: %s\n", err);
	return registry ? 0 : -1;
}

static int teardown(void **unused __attribute__((unused)))
{
	pl_avro_registry_destroy(registry);
	return 0;
}

/* ---- inputs ---- */

static json_t *input(const char *fmt, ...)
{
	char id[32];
	snprintf(id, sizeof(id), "ev-%d", ++next_id);
	va_list ap;
	va_start(ap, fmt);
	json_t *e = json_vpack_ex(NULL, 0, fmt, ap);
	va_end(ap);
	assert_non_null(e);
	json_object_set_new(e, "eventId", json_string(id));
	json_object_set_new(e, "deliveryId", json_string(DID));
	return e;
}

static json_t *geo(double lat, double lon)
{
	return json_pack("{s:f, s:f, s:f}", "latitude", lat, "longitude", lon, "altitude", 0.0);
}

static json_t *requested(const char *confirmation)
{
	return input("{s:I, s:s, s:s, s:o, s:s, s:o, s:I, s:n, s:b, s:s, s:{s:s, s:s, s:f, s:n}}",
	             "requestedAt", T0 - 1000, "ownerId", "owner-1", "pickupLocation",
	             "47.61,-122.33", "pickup", geo(47.61, -122.33), "dropOffLocation",
	             "Pike Place Market", "dropoff", geo(47.70, -122.30), "pickupTime", T0,
	             "deadline", "expedited", 0, "confirmationRequired", confirmation,
	             "packageInfo", "packageId", "pkg-1", "size", "Small", "weight", 2.5, "tag");
}

static json_t *drone_assigned(const char *drone)
{
	return input("{s:s, s:i, s:o, s:I, s:o, s:o}", "droneId", drone, "attempt", 1, "position",
	             geo(47.60, -122.35), "assignedAt", T0 + 30000, "pickup", geo(47.61, -122.33),
	             "dropoff", geo(47.70, -122.30));
}

static json_t *arrived(const char *phase, int64_t t)
{
	return input("{s:s, s:s, s:I, s:o}", "droneId", "drone-7", "phase", phase, "time", t,
	             "position", geo(47.61, -122.33));
}

static json_t *unavailable(int attempt)
{
	return input("{s:i, s:s, s:I}", "attempt", attempt, "reason", "fleet busy", "time", T0);
}

/* ---- apply with checks ---- */

/* Encodes value with schema_name; fails the test when the schema refuses it. */
static void assert_encodes(const char *schema_name, const json_t *value)
{
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, schema_name);
	void *buf = NULL;
	size_t len = 0;
	char err[256] = "";
	assert_non_null(schema);
	if (pl_avro_encode(schema, value, &buf, &len, err, sizeof(err)) != PL_OK)
		fail_msg("%s does not encode: %s", schema_name, err);
	pl_free(buf);
}

/* saga_apply + the result invariants of saga.h + every event and the state encode. input is
 * borrowed. */
static void apply(const json_t *state, const char *type, const json_t *in, int64_t now,
                  saga_result_t *r)
{
	saga_apply(state, type, in, now, &opts, r);
	if (r->outcome != SAGA_OK) {
		assert_null(r->state);
		assert_int_equal(r->output_count, 0);
	}
	if (r->outcome != SAGA_DUPLICATE)
		assert_int_equal(r->resend_count, 0);
	if (r->outcome != SAGA_OK || r->output_count == 0)
		assert_true(r->outcome == SAGA_OK || r->reason[0] != '\0');
	for (size_t i = 0; i < r->output_count; i++) {
		saga_output_t *o = &r->outputs[i];
		assert_string_equal(json_string_value(json_object_get(o->event, "eventId")),
		                    o->event_id);
		assert_string_equal(json_string_value(json_object_get(o->event, "deliveryId")),
		                    DID);
		assert_encodes(o->schema, o->event);
	}
	if (r->state)
		assert_encodes(SAGA_STATE_SCHEMA, r->state);
}

/* The state as the workflow restores it: encoded and decoded with SagaState. */
static json_t *roundtrip(const json_t *state)
{
	void *buf = NULL;
	size_t len = 0;
	json_t *back = NULL;
	char err[256];
	assert_int_equal(pl_avro_encode(pl_avro_schema_get(registry, SAGA_STATE_SCHEMA), state,
	                                &buf, &len, err, sizeof(err)),
	                 PL_OK);
	assert_int_equal(pl_avro_decode(registry, buf, len, &back, NULL, err, sizeof(err)), PL_OK);
	pl_free(buf);
	return back;
}

/* Applies in (stolen) to *state expecting OK; *state becomes the restored new state. */
static void step(json_t **state, const char *type, json_t *in, int64_t now, saga_result_t *r)
{
	apply(*state, type, in, now, r);
	json_decref(in);
	if (r->outcome != SAGA_OK)
		fail_msg("%s: %s %s", type, saga_outcome_name(r->outcome), r->reason);
	assert_non_null(r->state);
	json_decref(*state);
	*state = roundtrip(r->state);
}

static const char *stage_of(const saga_output_t *o)
{
	if (strcmp(o->schema, "DeliveryLifecycle") == 0)
		return json_string_value(json_object_get(o->event, "stage"));
	return o->schema;
}

/* "Created CreatePackage": lifecycle events by stage, commands by schema, in order. */
static void assert_outputs(const saga_result_t *r, const char *expected)
{
	char got[256] = "";
	for (size_t i = 0; i < r->output_count; i++) {
		strcat(got, i ? " " : "");
		strcat(got, stage_of(&r->outputs[i]));
	}
	assert_string_equal(got, expected);
}

static int64_t ival(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *sval(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* A saga driven from the start into status (conf = confirmationRequired). NULL for U. */
static json_t *fixture(saga_status_t status, const char *conf)
{
	saga_result_t r;
	json_t *st = NULL;
	if (status == U)
		return NULL;
	step(&st, "DeliveryRequested", requested(conf), T0, &r);
	saga_result_clear(&r);
	if (status == SAGA_CANCELLED || status == SAGA_FAILED) {
		if (status == SAGA_CANCELLED)
			step(&st, "DeliveryCancelRequested", input("{s:I}", "requestedAt", T0), T0,
			     &r);
		else
			step(&st, "PackageRejected",
			     input("{s:s, s:s}", "packageId", "pkg-1", "reason", "too heavy"), T0,
			     &r);
		saga_result_clear(&r);
		return st;
	}
	static const struct {
		saga_status_t reached;
		const char *type;
	} path[] = {{SAGA_AWAITING_DRONE, "PackageCreated"},
	            {SAGA_HEADED_TO_PICKUP, "DroneAssigned"},
	            {SAGA_HEADED_TO_DROPOFF, "DroneArrived"},
	            {SAGA_AWAITING_CONFIRMATION, "DroneArrived"},
	            {SAGA_COMPLETED, "DeliveryConfirmed"}};
	for (size_t i = 0; i < 5 && saga_status(st) != status; i++) {
		json_t *in = i == 0   ? input("{s:s}", "packageId", "pkg-1")
		             : i == 1 ? drone_assigned("drone-7")
		             : i == 2 ? arrived("AtPickup", T0 + 200000)
		             : i == 3 ? arrived("AtDropoff", T0 + 400000)
		                      : input("{s:I}", "requestedAt", T0 + 500000);
		step(&st, path[i].type, in, T0 + 1000 * (int64_t)i, &r);
		assert_int_equal(saga_status(st), path[i].reached);
		saga_result_clear(&r);
	}
	assert_int_equal(saga_status(st), status);
	return st;
}

/* ---- the table: every state x every input ---- */

enum {
	C_REQ,
	C_RESCHED,
	C_CANCEL,
	C_CONFIRM,
	C_PKG_OK,
	C_PKG_REJ,
	C_ASSIGNED,
	C_UNAVAIL,
	C_RELEASED,
	C_AT_PICKUP,
	C_AT_DROPOFF,
	C_TIMER,
	C__COUNT
};

typedef struct cell {
	saga_outcome_t outcome;
	saga_status_t status; /* after (OK); U: no state written */
	const char *outputs;
} cell_t;

#define OK(st, out)                                                                                \
	{                                                                                          \
		SAGA_OK, st, out                                                                   \
	}
#define IGN                                                                                        \
	{                                                                                          \
		SAGA_IGNORED, U, ""                                                                \
	}
#define DEAD                                                                                       \
	{                                                                                          \
		SAGA_DEAD, U, ""                                                                   \
	}
#define SAME SAGA_STATUS__COUNT + 1 /* OK, status unchanged */

typedef struct row {
	saga_status_t state;
	cell_t cells[C__COUNT];
} row_t;

static const row_t table[] = {
    {U,
     {OK(SAGA_AWAITING_PACKAGE, "Created CreatePackage"), DEAD, DEAD, DEAD, DEAD, DEAD,
      OK(U, "ReleaseDrone"), DEAD, IGN, DEAD, DEAD, IGN}},
    {SAGA_AWAITING_PACKAGE,
     {IGN, OK(SAME, "Rescheduled"), OK(SAGA_CANCELLED, "Cancelled"), DEAD,
      OK(SAGA_AWAITING_DRONE, "AssignDrone"), OK(SAGA_FAILED, "Failed"), OK(SAME, "ReleaseDrone"),
      IGN, IGN, DEAD, DEAD, IGN}},
    {SAGA_AWAITING_DRONE,
     {IGN,
      OK(SAME, "Rescheduled"),
      OK(SAGA_CANCELLED, "Cancelled ReleaseDrone"),
      {SAGA_RETRY_LATER, U, ""},
      IGN,
      IGN,
      OK(SAGA_HEADED_TO_PICKUP, "Scheduled HeadedToPickup"),
      OK(SAME, ""),
      IGN,
      DEAD,
      DEAD,
      OK(SAGA_FAILED, "Failed ReleaseDrone")}},
    {SAGA_HEADED_TO_PICKUP,
     {IGN, OK(SAME, "Rescheduled"), OK(SAGA_CANCELLED, "Cancelled ReleaseDrone"),
      OK(SAGA_COMPLETED, "Completed ReleaseDrone"), IGN, IGN, IGN, IGN, IGN,
      OK(SAGA_HEADED_TO_DROPOFF, "HeadedToDropoff"),
      OK(SAGA_AWAITING_CONFIRMATION, "HeadedToDropoff"), IGN}},
    {SAGA_HEADED_TO_DROPOFF,
     {IGN, IGN, OK(SAGA_CANCELLED, "Cancelled ReleaseDrone"),
      OK(SAGA_COMPLETED, "Completed ReleaseDrone"), IGN, IGN, IGN, IGN, IGN, IGN,
      OK(SAGA_AWAITING_CONFIRMATION, ""), IGN}},
    {SAGA_AWAITING_CONFIRMATION,
     {IGN, IGN, OK(SAGA_CANCELLED, "Cancelled ReleaseDrone"),
      OK(SAGA_COMPLETED, "Completed ReleaseDrone"), IGN, IGN, IGN, IGN, IGN, IGN, IGN, IGN}},
    {SAGA_COMPLETED,
     {IGN, IGN, IGN, IGN, IGN, IGN, OK(SAME, "ReleaseDrone"), IGN, IGN, IGN, IGN, IGN}},
    {SAGA_CANCELLED,
     {IGN, IGN, IGN, IGN, IGN, IGN, OK(SAME, "ReleaseDrone"), IGN, IGN, IGN, IGN, IGN}},
    {SAGA_FAILED,
     {IGN, IGN, IGN, IGN, IGN, IGN, OK(SAME, "ReleaseDrone"), IGN, IGN, IGN, IGN, IGN}},
};

static const char *column_type(int c)
{
	static const char *const types[C__COUNT] = {"DeliveryRequested",
	                                            "DeliveryRescheduleRequested",
	                                            "DeliveryCancelRequested",
	                                            "DeliveryConfirmed",
	                                            "PackageCreated",
	                                            "PackageRejected",
	                                            "DroneAssigned",
	                                            "DroneUnavailable",
	                                            "DroneReleased",
	                                            "DroneArrived",
	                                            "DroneArrived",
	                                            SAGA_INPUT_TIMER};
	return types[c];
}

static json_t *column_input(int c)
{
	switch (c) {
	case C_REQ:
		return requested("Picture");
	case C_RESCHED:
		return input("{s:I, s:s, s:o, s:I}", "requestedAt", T0, "dropOffLocation",
		             "47.72,-122.31", "dropoff", geo(47.72, -122.31), "pickupTime",
		             T0 + 3600000);
	case C_CANCEL:
	case C_CONFIRM:
		return input("{s:I}", "requestedAt", T0);
	case C_PKG_OK:
		return input("{s:s, s:s, s:s, s:f, s:I}", "packageId", "pkg-1", "ownerId",
		             "owner-1", "size", "Small", "weight", 2.5, "createdAt", T0);
	case C_PKG_REJ:
		return input("{s:s, s:s}", "packageId", "pkg-1", "reason", "too heavy");
	case C_ASSIGNED:
		return drone_assigned("drone-7");
	case C_UNAVAIL:
		return unavailable(1);
	case C_RELEASED:
		return input("{s:s, s:I}", "droneId", "drone-7", "releasedAt", T0);
	case C_AT_PICKUP:
		return arrived("AtPickup", T0 + 200000);
	case C_AT_DROPOFF:
		return arrived("AtDropoff", T0 + 400000);
	default:
		return NULL; /* timer */
	}
}

static void check_cell(const row_t *row, int c)
{
	const cell_t *cell = &row->cells[c];
	json_t *st = fixture(row->state, "Picture");
	json_t *in = column_input(c);
	int64_t now = c == C_TIMER ? T0 + 3600000 : T0 + 60000; /* the timer: past the deadline */
	int64_t version = st ? ival(st, "version") : 0;
	saga_result_t r, again;
	apply(st, column_type(c), in, now, &r);
	if (r.outcome != cell->outcome)
		fail_msg("%s x %s: %s (%s), want %s", saga_status_name(row->state), column_type(c),
		         saga_outcome_name(r.outcome), r.reason, saga_outcome_name(cell->outcome));
	assert_outputs(&r, cell->outputs);
	if (cell->outcome == SAGA_OK && cell->status == U) {
		assert_null(r.state);
	} else if (cell->outcome == SAGA_OK) {
		assert_non_null(r.state);
		assert_int_equal(saga_status(r.state),
		                 cell->status == SAME ? row->state : cell->status);
		/* lifecycle versions continue the saga's, one by one */
		for (size_t i = 0; i < r.output_count; i++)
			if (strcmp(r.outputs[i].schema, "DeliveryLifecycle") == 0)
				assert_int_equal(ival(r.outputs[i].event, "version"), ++version);
		assert_int_equal(ival(r.state, "version"), version);
	}
	/* deterministic: the same input on the same state gives the same eventIds */
	apply(st, column_type(c), in, now + 5000, &again);
	assert_int_equal(again.outcome, r.outcome);
	assert_int_equal(again.output_count, r.output_count);
	for (size_t i = 0; i < r.output_count; i++)
		assert_string_equal(again.outputs[i].event_id, r.outputs[i].event_id);
	saga_result_clear(&again);
	/* applied once: the same record again is a duplicate, no new outputs, outbox re-sent */
	if (r.state && in) {
		json_t *restored = roundtrip(r.state);
		apply(restored, column_type(c), in, now + 9000, &again);
		assert_int_equal(again.outcome, SAGA_DUPLICATE);
		assert_int_equal(again.output_count, 0);
		assert_int_equal(again.resend_count, r.output_count);
		for (size_t i = 0; i < r.output_count; i++) {
			assert_string_equal(again.resend[i].event_id, r.outputs[i].event_id);
			assert_string_equal(again.resend[i].topic, r.outputs[i].topic);
			assert_true(json_equal(again.resend[i].event, r.outputs[i].event));
		}
		saga_result_clear(&again);
		json_decref(restored);
	}
	/* a finished saga's stand-in (what the workflow keeps of a settled saga) answers every
	 * input it has not seen as the whole state does: outcome, reason, outputs and their ids */
	if (st && saga_status_finished(row->state)) {
		json_t *stand_in = saga_settled_state(DID, row->state);
		assert_non_null(stand_in); /* never written, so not a whole SagaState */
		saga_apply(stand_in, column_type(c), in, now, &opts, &again);
		assert_int_equal(again.outcome, r.outcome);
		assert_string_equal(again.reason, r.reason);
		assert_int_equal(again.output_count, r.output_count);
		for (size_t i = 0; i < r.output_count; i++) {
			assert_string_equal(again.outputs[i].event_id, r.outputs[i].event_id);
			assert_string_equal(again.outputs[i].topic, r.outputs[i].topic);
			assert_string_equal(again.outputs[i].schema, r.outputs[i].schema);
			assert_true(json_equal(again.outputs[i].event, r.outputs[i].event));
		}
		saga_result_clear(&again);
		json_decref(stand_in);
	} else {
		assert_null(
		    saga_settled_state(DID, row->state == U ? SAGA_STATUS__COUNT : row->state));
	}
	saga_result_clear(&r);
	json_decref(in);
	json_decref(st);
}

static void test_table_row(void **state)
{
	const row_t *row = *state;
	for (int c = 0; c < C__COUNT; c++)
		check_cell(row, c);
}

/* ---- stories ---- */

static int64_t flight(double m)
{
	return (int64_t)(m / opts.drone_speed_mps * 1000.0 + 0.5);
}

/* No confirmation: the full lifecycle, versions 1..5, ETAs from the drone's position. */
static void test_happy_path_without_confirmation(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = NULL;
	step(&st, "DeliveryRequested", requested("None"), T0, &r);
	assert_outputs(&r, "Created CreatePackage");
	assert_int_equal(ival(r.outputs[0].event, "version"), 1);
	assert_string_equal(sval(r.outputs[0].event, "packageId"), "pkg-1");
	assert_string_equal(r.outputs[1].topic, SAGA_TOPIC_PACKAGE_COMMANDS);
	saga_result_clear(&r);
	step(&st, "PackageCreated", input("{s:s}", "packageId", "pkg-1"), T0 + 1000, &r);
	assert_outputs(&r, "AssignDrone");
	assert_int_equal(ival(r.outputs[0].event, "attempt"), 1);
	assert_string_equal(r.outputs[0].topic, SAGA_TOPIC_DRONE_COMMANDS);
	saga_result_clear(&r);
	step(&st, "DroneAssigned", drone_assigned("drone-7"), T0 + 30000, &r);
	assert_outputs(&r, "Scheduled HeadedToPickup");
	int64_t to_pickup = flight(pl_geo_distance_m(47.60, -122.35, 47.61, -122.33));
	int64_t to_dropoff = flight(pl_geo_distance_m(47.61, -122.33, 47.70, -122.30));
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(sval(r.outputs[i].event, "droneId"), "drone-7");
		assert_int_equal(ival(r.outputs[i].event, "pickupEta"), T0 + 30000 + to_pickup);
		assert_int_equal(ival(r.outputs[i].event, "deliveryEta"),
		                 T0 + 30000 + to_pickup + to_dropoff);
		assert_int_equal(ival(r.outputs[i].event, "version"), 2 + (int64_t)i);
	}
	saga_result_clear(&r);
	step(&st, "DroneArrived", arrived("AtPickup", T0 + 250000), T0 + 250100, &r);
	assert_outputs(&r, "HeadedToDropoff");
	assert_int_equal(ival(r.outputs[0].event, "pickupEta"), T0 + 250000);
	assert_int_equal(ival(r.outputs[0].event, "deliveryEta"), T0 + 250000 + to_dropoff);
	saga_result_clear(&r);
	step(&st, "DroneArrived", arrived("AtDropoff", T0 + 900000), T0 + 900100, &r);
	assert_outputs(&r, "Completed ReleaseDrone");
	assert_int_equal(ival(r.outputs[0].event, "version"), 5);
	assert_string_equal(sval(r.outputs[1].event, "droneId"), "drone-7");
	assert_string_equal(sval(r.outputs[1].event, "reason"), "completed");
	assert_true(json_is_true(json_object_get(st, "finished")));
	assert_int_equal(saga_next_due_ms(st, &opts), SAGA_NEVER);
	saga_result_clear(&r);
	json_decref(st);
}

static void test_confirmation_required_waits(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_HEADED_TO_DROPOFF, "FingerPrint");
	step(&st, "DroneArrived", arrived("AtDropoff", T0 + 400000), T0 + 400000, &r);
	assert_outputs(&r, "");
	assert_int_equal(saga_status(st), SAGA_AWAITING_CONFIRMATION);
	saga_result_clear(&r);
	step(&st, "DeliveryConfirmed", input("{s:I}", "requestedAt", T0), T0 + 500000, &r);
	assert_outputs(&r, "Completed ReleaseDrone");
	assert_string_equal(sval(r.outputs[1].event, "droneId"), "drone-7");
	saga_result_clear(&r);
	json_decref(st);
}

static void test_cancel_before_assignment(void **unused __attribute__((unused)))
{
	saga_result_t r;
	/* before the package step: nothing to release; the late package reply is ignored */
	json_t *st = fixture(SAGA_AWAITING_PACKAGE, "None");
	step(&st, "DeliveryCancelRequested", input("{s:I}", "requestedAt", T0), T0 + 10, &r);
	assert_outputs(&r, "Cancelled");
	assert_string_equal(sval(r.outputs[0].event, "reason"), "cancelled by the client");
	saga_result_clear(&r);
	json_t *in = input("{s:s}", "packageId", "pkg-1");
	apply(st, "PackageCreated", in, T0 + 20, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
	/* AssignDrone in flight: release "whatever was claimed", then compensate the late reply */
	st = fixture(SAGA_AWAITING_DRONE, "None");
	step(&st, "DeliveryCancelRequested", input("{s:I}", "requestedAt", T0), T0 + 10, &r);
	assert_outputs(&r, "Cancelled ReleaseDrone");
	assert_true(json_is_null(json_object_get(r.outputs[1].event, "droneId")));
	assert_string_equal(sval(r.outputs[1].event, "reason"), "cancelled");
	saga_result_clear(&r);
	step(&st, "DroneAssigned", drone_assigned("drone-9"), T0 + 30, &r);
	assert_outputs(&r, "ReleaseDrone");
	assert_string_equal(sval(r.outputs[0].event, "droneId"), "drone-9");
	assert_string_equal(sval(r.outputs[0].event, "reason"), "compensation");
	assert_int_equal(saga_status(st), SAGA_CANCELLED);
	saga_result_clear(&r);
	json_decref(st);
}

static void test_cancel_after_assignment(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_HEADED_TO_PICKUP, "None");
	step(&st, "DeliveryCancelRequested", input("{s:I}", "requestedAt", T0), T0 + 10, &r);
	assert_outputs(&r, "Cancelled ReleaseDrone");
	assert_string_equal(sval(r.outputs[0].event, "droneId"), "drone-7");
	assert_string_equal(sval(r.outputs[1].event, "droneId"), "drone-7");
	assert_int_equal(ival(r.outputs[0].event, "version"), 4);
	saga_result_clear(&r);
	/* the drone keeps reporting until the release reaches it: ignored */
	json_t *in = arrived("AtPickup", T0 + 50);
	apply(st, "DroneArrived", in, T0 + 60, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
}

/* DroneUnavailable -> backoff (timer) -> AssignDrone attempt+1 ... -> Failed at the timeout. */
static void test_assign_retry_until_timeout(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_AWAITING_DRONE, "None"); /* first AssignDrone at T0 */
	int64_t now = T0 + 500, deadline = T0 + opts.assign_timeout_ms, expect = 2000;
	int attempt = 1;
	assert_int_equal(saga_next_due_ms(st, &opts), deadline);
	while (saga_status(st) == SAGA_AWAITING_DRONE) {
		json_t *in = unavailable(attempt);
		apply(st, "DroneUnavailable", in, now, &r);
		json_decref(in);
		if (r.outcome == SAGA_OK && r.output_count) { /* past the deadline */
			assert_true(now >= deadline);
			json_decref(st);
			st = roundtrip(r.state);
			break;
		}
		assert_int_equal(r.outcome, SAGA_OK);
		json_decref(st);
		st = roundtrip(r.state);
		saga_result_clear(&r);
		int64_t due = saga_next_due_ms(st, &opts);
		assert_true(due == deadline ||
		            (due >= now + expect && due <= now + expect * 6 / 5));
		/* too early: nothing; a second refusal of the same attempt: already scheduled */
		apply(st, SAGA_INPUT_TIMER, NULL, due - 1, &r);
		assert_int_equal(r.outcome, SAGA_IGNORED);
		in = unavailable(attempt);
		apply(st, "DroneUnavailable", in, now + 1, &r);
		assert_int_equal(r.outcome, SAGA_IGNORED);
		json_decref(in);
		now = due;
		apply(st, SAGA_INPUT_TIMER, NULL, now, &r);
		assert_int_equal(r.outcome, SAGA_OK);
		json_decref(st);
		st = roundtrip(r.state);
		if (now >= deadline)
			break;
		assert_outputs(&r, "AssignDrone");
		assert_int_equal(ival(r.outputs[0].event, "attempt"), ++attempt);
		saga_result_clear(&r);
		/* a late refusal of the previous attempt is stale */
		in = unavailable(attempt - 1);
		apply(st, "DroneUnavailable", in, now, &r);
		assert_int_equal(r.outcome, SAGA_IGNORED);
		json_decref(in);
		expect = expect * 2 > 30000 ? 30000 : expect * 2;
		now += 100;
	}
	assert_outputs(&r, "Failed ReleaseDrone");
	assert_true(attempt > 5);
	assert_non_null(strstr(sval(r.outputs[0].event, "reason"), "no drone"));
	assert_true(json_is_null(json_object_get(r.outputs[1].event, "droneId")));
	assert_int_equal(saga_status(st), SAGA_FAILED);
	assert_int_equal(saga_next_due_ms(st, &opts), SAGA_NEVER);
	saga_result_clear(&r);
	json_decref(st);
}

/* A permanent DroneUnavailable (outside the service area, over the range) fails the saga at
 * once with the scheduler's reason, even with a retry already due; stale or late ones do not. */
static void test_assign_refused_permanently(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_AWAITING_DRONE, "None");
	const char *why =
	    "route from pickup to drop-off is 41000 m, over the drone range of 30000 m "
	    "(DP_DRONE_RANGE_M)";
	/* a transient refusal first: a retry is scheduled */
	step(&st, "DroneUnavailable", unavailable(1), T0 + 100, &r);
	assert_int_equal(r.output_count, 0);
	saga_result_clear(&r);
	/* an answer to an older attempt is stale, permanent or not */
	json_t *in =
	    input("{s:i, s:s, s:I, s:b}", "attempt", 0, "reason", why, "time", T0, "permanent", 1);
	apply(st, "DroneUnavailable", in, T0 + 150, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	step(&st, "DroneUnavailable",
	     input("{s:i, s:s, s:I, s:b}", "attempt", 1, "reason", why, "time", T0, "permanent", 1),
	     T0 + 200, &r);
	assert_outputs(&r, "Failed ReleaseDrone");
	const char *reason = sval(r.outputs[0].event, "reason");
	assert_non_null(strstr(reason, "drone assignment refused: route from pickup to drop-off"));
	assert_non_null(strstr(reason, "DP_DRONE_RANGE_M"));
	assert_true(json_is_null(json_object_get(r.outputs[1].event, "droneId")));
	assert_string_equal(sval(r.outputs[1].event, "reason"), "failed");
	assert_int_equal(saga_status(st), SAGA_FAILED);
	assert_int_equal(saga_next_due_ms(st, &opts), SAGA_NEVER);
	saga_result_clear(&r);
	/* once failed, another refusal is ignored */
	in = input("{s:i, s:s, s:I, s:b}", "attempt", 1, "reason", why, "time", T0, "permanent", 1);
	apply(st, "DroneUnavailable", in, T0 + 300, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
	/* after assignment a refusal is stale: the drone flies */
	st = fixture(SAGA_HEADED_TO_PICKUP, "None");
	in = input("{s:i, s:s, s:I, s:b}", "attempt", 1, "reason", why, "time", T0, "permanent", 1);
	apply(st, "DroneUnavailable", in, T0 + 300, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
}

/* The scheduler never answers: the deadline timer alone fails the saga. */
static void test_assign_timeout_without_answer(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_AWAITING_DRONE, "None");
	int64_t due = saga_next_due_ms(st, &opts);
	assert_int_equal(due, T0 + opts.assign_timeout_ms);
	apply(st, SAGA_INPUT_TIMER, NULL, due - 1, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	apply(st, SAGA_INPUT_TIMER, NULL, due, &r);
	assert_outputs(&r, "Failed ReleaseDrone");
	assert_true(json_is_null(json_object_get(r.outputs[0].event, "causationId")));
	saga_result_clear(&r);
	json_decref(st);
}

/* What the workflow re-sends after a crash between a timer transition's state and its outputs:
 * the outbox entries of the state's eventId (the timer's cause) are exactly those outputs; the
 * state keeps unsentCause through the changelog's encoding and through a later input. */
static void test_timer_outputs_from_the_outbox(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_AWAITING_DRONE, "None");
	apply(st, SAGA_INPUT_TIMER, NULL, saga_next_due_ms(st, &opts), &r);
	assert_outputs(&r, "Failed ReleaseDrone");
	const char *cause = json_string_value(json_object_get(r.state, "eventId"));
	assert_string_equal(cause, "timer/deadline");
	json_object_set_new(r.state, "unsentCause", json_string(cause));
	json_t *written = roundtrip(r.state);
	assert_string_equal(json_string_value(json_object_get(written, "unsentCause")), cause);
	saga_output_t out[SAGA_OUTBOX_MAX];
	size_t n = saga_outbox(written, cause, out, SAGA_OUTBOX_MAX);
	assert_int_equal(n, r.output_count);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(out[i].event_id, r.outputs[i].event_id);
		assert_string_equal(out[i].topic, r.outputs[i].topic);
		assert_string_equal(out[i].schema, r.outputs[i].schema);
		assert_true(json_equal(out[i].event, r.outputs[i].event));
		json_decref(out[i].event);
	}
	assert_int_equal(saga_outbox(written, "no such cause", out, SAGA_OUTBOX_MAX), 0);
	assert_int_equal(saga_outbox(written, cause, out, 1), 1); /* at most max */
	json_decref(out[0].event);
	/* a state derived from a marked one keeps the mark (an input handled before the re-send
	 * must not lose it) */
	json_t *marked = fixture(SAGA_AWAITING_DRONE, "None");
	json_object_set_new(marked, "unsentCause", json_string("timer/assign/1"));
	saga_result_t next;
	apply(marked, SAGA_INPUT_TIMER, NULL, saga_next_due_ms(marked, &opts), &next);
	assert_non_null(next.state);
	assert_string_equal(json_string_value(json_object_get(next.state, "unsentCause")),
	                    "timer/assign/1");
	saga_result_clear(&next);
	json_decref(marked);
	json_decref(written);
	saga_result_clear(&r);
	json_decref(st);
}

/* With the service-area rule (25 km around 47.61,-122.33, range 30 km), a reschedule whose new
 * points break it is ignored and the delivery keeps its points, in every state before pickup;
 * one that keeps to it applies as usual. */
static void test_reschedule_outside_area_ignored(void **unused __attribute__((unused)))
{
	pl_area_t area;
	char err[200];
	assert_int_equal(pl_area_parse("47.61,-122.33,25000", 30000, &area, err, sizeof(err)),
	                 PL_OK);
	saga_opts_t with_area = opts;
	with_area.area = &area;
	static const saga_status_t before_pickup[] = {SAGA_AWAITING_PACKAGE, SAGA_AWAITING_DRONE,
	                                              SAGA_HEADED_TO_PICKUP};
	for (size_t i = 0; i < 3; i++) {
		json_t *st = fixture(before_pickup[i], "None");
		saga_result_t r;
		/* a drop-off 230 km away */
		json_t *in = input("{s:I, s:s, s:o}", "requestedAt", T0, "dropOffLocation",
		                   "45.52,-122.68", "dropoff", geo(45.52, -122.68));
		saga_apply(st, "DeliveryRescheduleRequested", in, T0 + 40000, &with_area, &r);
		assert_int_equal(r.outcome, SAGA_IGNORED);
		assert_null(r.state);
		assert_non_null(strstr(r.reason, "reschedule refused"));
		assert_non_null(strstr(r.reason, "dropoff 45.52000,-122.68000 is outside"));
		saga_result_clear(&r);
		json_decref(in);
		/* a pickup inside but 33 km from the drop-off (47.70,-122.30): over the range */
		in = input("{s:I, s:s, s:o}", "requestedAt", T0, "pickupLocation", "47.40,-122.33",
		           "pickup", geo(47.40, -122.33));
		saga_apply(st, "DeliveryRescheduleRequested", in, T0 + 40000, &with_area, &r);
		assert_int_equal(r.outcome, SAGA_IGNORED);
		assert_non_null(strstr(r.reason, "route from pickup to drop-off"));
		saga_result_clear(&r);
		json_decref(in);
		/* inside and in range: applied */
		in = input("{s:I, s:s, s:o}", "requestedAt", T0, "pickupLocation", "47.65,-122.33",
		           "pickup", geo(47.65, -122.33));
		saga_apply(st, "DeliveryRescheduleRequested", in, T0 + 40000, &with_area, &r);
		assert_int_equal(r.outcome, SAGA_OK);
		assert_non_null(r.state);
		saga_result_clear(&r);
		json_decref(in);
		json_decref(st);
	}
}

static void test_reschedule_values_applied(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_HEADED_TO_PICKUP, "None");
	int64_t old_eta = ival(st, "deliveryEta");
	step(&st, "DeliveryRescheduleRequested",
	     input("{s:I, s:s, s:o, s:I, s:s}", "requestedAt", T0, "dropOffLocation",
	           "47.80,-122.20", "dropoff", geo(47.80, -122.20), "pickupTime", T0 + 7200000,
	           "deadline", "tomorrow noon"),
	     T0 + 40000, &r);
	assert_outputs(&r, "Rescheduled");
	json_t *e = r.outputs[0].event;
	assert_string_equal(sval(e, "dropOffLocation"), "47.80,-122.20");
	assert_true(json_equal(json_object_get(e, "dropoff"), json_object_get(st, "dropoff")));
	assert_int_equal(ival(e, "pickupTime"), T0 + 7200000);
	assert_string_equal(sval(e, "deadline"), "tomorrow noon");
	assert_string_equal(sval(e, "pickupLocation"), "47.61,-122.33"); /* untouched */
	assert_string_equal(sval(e, "droneId"), "drone-7");
	assert_true(ival(e, "deliveryEta") > old_eta); /* farther dropoff */
	assert_int_equal(ival(e, "version"), 4);
	saga_result_clear(&r);
	/* the same values again change nothing */
	json_t *in = input("{s:I, s:s}", "requestedAt", T0, "dropOffLocation", "47.80,-122.20");
	apply(st, "DeliveryRescheduleRequested", in, T0 + 50000, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
	/* while waiting for a retry: the next AssignDrone carries the new pickup */
	st = fixture(SAGA_AWAITING_DRONE, "None");
	step(&st, "DroneUnavailable", unavailable(1), T0 + 100, &r);
	saga_result_clear(&r);
	step(&st, "DeliveryRescheduleRequested",
	     input("{s:I, s:s, s:o}", "requestedAt", T0, "pickupLocation", "47.55,-122.40",
	           "pickup", geo(47.55, -122.40)),
	     T0 + 200, &r);
	saga_result_clear(&r);
	step(&st, SAGA_INPUT_TIMER, NULL, saga_next_due_ms(st, &opts), &r);
	assert_outputs(&r, "AssignDrone");
	json_t *pickup = json_object_get(r.outputs[0].event, "pickup");
	assert_true(json_number_value(json_object_get(pickup, "latitude")) == 47.55);
	assert_true(json_number_value(json_object_get(pickup, "longitude")) == -122.40);
	saga_result_clear(&r);
	json_decref(st);
}

static void test_out_of_order(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_HEADED_TO_PICKUP, "None"), *in;
	/* AtPickup report lost: AtDropoff implies it */
	step(&st, "DroneArrived", arrived("AtDropoff", T0 + 400000), T0 + 400000, &r);
	assert_outputs(&r, "HeadedToDropoff Completed ReleaseDrone");
	assert_int_equal(ival(r.outputs[1].event, "version"), 5);
	saga_result_clear(&r);
	json_decref(st);
	/* a second, different drone for an assigned saga is released */
	st = fixture(SAGA_HEADED_TO_PICKUP, "None");
	step(&st, "DroneAssigned", drone_assigned("drone-8"), T0 + 10, &r);
	assert_outputs(&r, "ReleaseDrone");
	assert_string_equal(sval(r.outputs[0].event, "droneId"), "drone-8");
	assert_string_equal(sval(st, "droneId"), "drone-7");
	saga_result_clear(&r);
	/* another drone's arrival is not ours */
	in = input("{s:s, s:s, s:I, s:o}", "droneId", "drone-8", "phase", "AtPickup", "time", T0,
	           "position", geo(47.6, -122.3));
	apply(st, "DroneArrived", in, T0 + 20, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(in);
	json_decref(st);
	/* replies for a delivery the workflow never saw */
	in = input("{s:s}", "packageId", "pkg-1");
	apply(NULL, "PackageCreated", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	assert_non_null(strstr(r.reason, "no saga"));
	json_decref(in);
	apply(NULL, SAGA_INPUT_TIMER, NULL, T0, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
}

static void test_duplicates_and_bounded_memory(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = NULL, *first = requested("None");
	apply(NULL, "DeliveryRequested", first, T0, &r);
	st = roundtrip(r.state);
	saga_result_clear(&r);
	/* 20 reschedules: each applied once, each a version */
	for (int i = 0; i < 20; i++) {
		step(&st, "DeliveryRescheduleRequested",
		     input("{s:I, s:I}", "requestedAt", T0, "pickupTime", T0 + 1000 * (i + 1)),
		     T0 + i, &r);
		assert_int_equal(ival(r.outputs[0].event, "version"), 2 + i);
		saga_result_clear(&r);
	}
	assert_int_equal(json_array_size(json_object_get(st, "seenEventIds")), SAGA_SEEN_MAX);
	assert_true(json_array_size(json_object_get(st, "outbox")) <= SAGA_OUTBOX_MAX);
	/* the first request fell out of the dedup memory: the table still ignores it */
	apply(st, "DeliveryRequested", first, T0 + 100, &r);
	assert_int_equal(r.outcome, SAGA_IGNORED);
	json_decref(first);
	json_decref(st);
}

static void test_malformed_inputs(void **unused __attribute__((unused)))
{
	saga_result_t r;
	json_t *st = fixture(SAGA_HEADED_TO_PICKUP, "None"), *in;
	apply(st, "PackageShipped", NULL, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	apply(st, NULL, NULL, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	apply(st, "DeliveryCancelRequested", NULL, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	in = json_pack("{s:s}", "deliveryId", DID);
	apply(st, "DeliveryCancelRequested", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	json_decref(in);
	in = json_pack("{s:s, s:s}", "eventId", "x", "deliveryId", "someone-else");
	apply(st, "DeliveryCancelRequested", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	json_decref(in);
	in = input("{s:s, s:s, s:I}", "droneId", "drone-7", "phase", "Hovering", "time", T0);
	apply(st, "DroneArrived", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	json_decref(in);
	in = input("{s:s}", "ownerId", "owner-1");
	apply(NULL, "DeliveryRequested", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	json_decref(in);
	in = input("{s:s}", "reason", "busy");
	json_object_set_new(st, "status", json_string("Sleeping"));
	apply(st, "DroneUnavailable", in, T0, &r);
	assert_int_equal(r.outcome, SAGA_DEAD);
	json_decref(in);
	json_decref(st);
}

static void test_names_and_schemas(void **unused __attribute__((unused)))
{
	for (size_t i = 0; saga_output_schemas[i]; i++)
		assert_non_null(pl_avro_schema_get(registry, saga_output_schemas[i]));
	for (int c = 0; c < C__COUNT; c++)
		if (c != C_TIMER)
			assert_non_null(pl_avro_schema_get(registry, column_type(c)));
	assert_string_equal(saga_status_name(SAGA_AWAITING_CONFIRMATION), "AwaitingConfirmation");
	assert_string_equal(saga_status_name(SAGA_STATUS__COUNT), "Unknown");
	assert_string_equal(saga_outcome_name(SAGA_RETRY_LATER), "retry_later");
	assert_int_equal(saga_status(NULL), SAGA_STATUS__COUNT);
	saga_result_clear(NULL);
}

int main(void)
{
	static const char *const rows[] = {
	    "no saga",        "AwaitingPackage", "AwaitingDrone",
	    "HeadedToPickup", "HeadedToDropoff", "AwaitingConfirmation",
	    "Completed",      "Cancelled",       "Failed"};
	struct CMUnitTest tests[] = {
	    [9] = cmocka_unit_test(test_happy_path_without_confirmation),
	    cmocka_unit_test(test_confirmation_required_waits),
	    cmocka_unit_test(test_cancel_before_assignment),
	    cmocka_unit_test(test_cancel_after_assignment),
	    cmocka_unit_test(test_assign_retry_until_timeout),
	    cmocka_unit_test(test_assign_refused_permanently),
	    cmocka_unit_test(test_assign_timeout_without_answer),
	    cmocka_unit_test(test_timer_outputs_from_the_outbox),
	    cmocka_unit_test(test_reschedule_values_applied),
	    cmocka_unit_test(test_reschedule_outside_area_ignored),
	    cmocka_unit_test(test_out_of_order),
	    cmocka_unit_test(test_duplicates_and_bounded_memory),
	    cmocka_unit_test(test_malformed_inputs),
	    cmocka_unit_test(test_names_and_schemas),
	};
	char names[9][48];
	for (size_t i = 0; i < 9; i++) { /* one test per row of the table, named after the state */
		snprintf(names[i], sizeof(names[i]), "table row: %s", rows[i]);
		tests[i] =
		    (struct CMUnitTest){names[i], test_table_row, NULL, NULL, (void *)&table[i]};
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
