/* test_status.c — dronepipe-delivery's pure read models (consumers/delivery/status.c): stage
 * integers, the Delivery view, the status with its ETA formula (before and after pickup,
 * telemetry ahead of the lifecycle, hovering drone, no telemetry, finished), history entries
 * (one per event, deterministic so a replay writes identical entries), the SSE event ids that
 * keep a stream from going backwards, and SSE framing (multi-line data, CR/LF in fields).
 * Every lifecycle event and telemetry record is first encoded and decoded with the embedded Avro
 * schemas, so the field names are the contract's. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro.h"
#include "delivery/status.h"
#include "geo.h"
#include "jsonw.h"
#include "mem.h"
#include "timefmt.h"

#define T0   1795773600000LL /* 2026-11-27T10:00:00Z */
#define NOW  (T0 + 10 * 60000)
#define DID  "7d0c8a8e-0b9f-4a47-9d55-2f2b7a1c0001"
#define PLAT 47.61
#define PLON (-122.33)
#define DLAT 47.66
#define DLON (-122.30)

static pl_avro_registry_t *registry;

static int setup(void **state)
{
	(void)state;
	char err[512];
	registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		fprintf(stderr, "registry: %s\n", err);
	return registry ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pl_avro_registry_destroy(registry);
	return 0;
}

/* Encodes with the schema and decodes again: what the stage hands the handler. */
static json_t *through_avro(const char *schema_name, json_t *value)
{
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, schema_name);
	assert_non_null(schema);
	void *bytes;
	size_t len;
	char err[256];
	if (pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)) != PL_OK)
		fail_msg("encode %s: %s", schema_name, err);
	json_t *decoded = NULL;
	assert_int_equal(pl_avro_decode(registry, bytes, len, &decoded, NULL, err, sizeof(err)),
	                 PL_OK);
	pl_free(bytes);
	json_decref(value);
	return decoded;
}

static json_t *lifecycle(const char *stage, int version)
{
	bool assigned = version >= 2;
	json_t *v = json_pack(
	    "{s:s, s:s, s:s, s:i, s:I, s:n, s:I, s:s, s:s, s:{s:f, s:f}, s:s, s:{s:f, s:f}, s:I,"
	    " s:s, s:b, s:s, s:s, s:o, s:o, s:o, s:o}",
	    "eventId", "e-1", "deliveryId", DID, "stage", stage, "version", version, "time",
	    (json_int_t)(T0 + version * 60000), "causationId", "requestedAt", (json_int_t)T0,
	    "ownerId", "owner-1", "pickupLocation", "47.61,-122.33", "pickup", "latitude", PLAT,
	    "longitude", PLON, "dropOffLocation", "Pike Place Market", "dropoff", "latitude", DLAT,
	    "longitude", DLON, "pickupTime", (json_int_t)(T0 + 3600000), "deadline", "today",
	    "expedited", 1, "confirmationRequired", "Picture", "packageId", "pkg-1", "droneId",
	    assigned ? json_string("drone-7") : json_null(), "pickupEta",
	    assigned ? json_integer(T0 + 20 * 60000) : json_null(), "deliveryEta",
	    assigned ? json_integer(T0 + 40 * 60000) : json_null(), "reason",
	    strcmp(stage, "Cancelled") == 0 ? json_string("customer cancelled") : json_null());
	return through_avro("DeliveryLifecycle", v);
}

static json_t *telemetry(const char *phase, double lat, double lon, double speed, long long seq)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:I, s:{s:f, s:f},"
	                      " s:{s:f, s:f}}",
	                      "eventId", "t-1", "deliveryId", DID, "droneId", "drone-7", "phase",
	                      phase, "latitude", lat, "longitude", lon, "altitude", 120.0,
	                      "speedMps", speed, "time", (json_int_t)(T0 + 5 * 60000 + seq * 1000),
	                      "seq", (json_int_t)seq, "pickup", "latitude", PLAT, "longitude", PLON,
	                      "dropoff", "latitude", DLAT, "longitude", DLON);
	return through_avro("DroneTelemetry", v);
}

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ISO text of now + metres / speed, rounded to the millisecond as status.c does. */
static void eta_text(double metres, double speed, char out[32])
{
	assert_int_equal(pl_time_format(NOW + (int64_t)llround(metres / speed * 1000.0), out),
	                 PL_OK);
}

static void test_stage_integers(void **state)
{
	(void)state;
	const char *names[] = {"Created",         "Scheduled", "Rescheduled", "HeadedToPickup",
	                       "HeadedToDropoff", "Completed", "Cancelled",   "Failed"};
	const int ints[] = {0, 0, 1, 2, 3, 4, 5, 5};
	const bool fin[] = {false, false, false, false, false, true, true, true};
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(status_stage_int(names[i]), ints[i]);
		assert_int_equal(status_stage_finished(names[i]), fin[i]);
	}
	assert_int_equal(status_stage_int("Lost"), -1);
	assert_int_equal(status_stage_int(NULL), -1);
	assert_false(status_stage_finished("completed")); /* case-sensitive, like the schema */
}

static void test_delivery_view(void **state)
{
	(void)state;
	json_t *lc = lifecycle("HeadedToPickup", 3);
	json_t *v = status_delivery_view(lc);
	assert_non_null(v);
	assert_string_equal(sget(v, "id"), DID);
	assert_string_equal(sget(json_object_get(v, "owner"), "userId"), "owner-1");
	assert_string_equal(sget(json_object_get(v, "owner"), "accountId"), "owner-1");
	json_t *pickup = json_object_get(v, "pickup");
	assert_true(json_real_value(json_object_get(pickup, "latitude")) == PLAT);
	assert_true(json_real_value(json_object_get(pickup, "altitude")) == 0.0);
	assert_string_equal(sget(v, "deadline"), "today");
	assert_true(json_is_true(json_object_get(v, "expedited")));
	assert_string_equal(sget(v, "confirmationRequired"), "Picture");
	assert_string_equal(sget(v, "droneId"), "drone-7");
	assert_string_equal(sget(v, "packageId"), "pkg-1");
	assert_int_equal(json_integer_value(json_object_get(v, "stage")), 2);
	assert_string_equal(sget(v, "stageName"), "HeadedToPickup");
	json_decref(v);
	json_decref(lc);

	lc = lifecycle("Created", 1);
	v = status_delivery_view(lc);
	assert_true(json_is_null(json_object_get(v, "droneId")));
	assert_int_equal(json_integer_value(json_object_get(v, "stage")), 0);
	json_decref(v);
	json_object_del(lc, "deliveryId");
	assert_null(status_delivery_view(lc));
	assert_null(status_build(lc, NULL, NOW, 15));
	json_decref(lc);
}

static void test_eta_before_pickup(void **state)
{
	(void)state;
	json_t *lc = lifecycle("HeadedToPickup", 3);
	json_t *tm = telemetry("ToPickup", 47.58, -122.38, 12.5, 4);
	json_t *s = status_build(lc, tm, NOW, 15);
	double to_pickup = pl_geo_distance_m(47.58, -122.38, PLAT, PLON);
	double leg = pl_geo_distance_m(PLAT, PLON, DLAT, DLON);
	char want[32];
	eta_text(to_pickup, 12.5, want);
	assert_string_equal(sget(s, "pickupETA"), want);
	eta_text(to_pickup + leg, 12.5, want);
	assert_string_equal(sget(s, "deliveryETA"), want);
	json_t *loc = json_object_get(s, "lastKnownLocation");
	assert_true(json_real_value(json_object_get(loc, "latitude")) == 47.58);
	assert_true(json_real_value(json_object_get(loc, "altitude")) == 120.0);
	assert_int_equal(json_integer_value(json_object_get(s, "stage")), 2);
	assert_string_equal(sget(s, "stageName"), "HeadedToPickup");
	assert_string_equal(sget(s, "phase"), "ToPickup");
	/* updatedAt: the telemetry (10:05:04) is later than the event (10:03) */
	assert_string_equal(sget(s, "updatedAt"), "2026-11-27T10:05:04.000Z");
	json_decref(s);
	json_decref(tm);
	json_decref(lc);
}

static void test_eta_after_pickup(void **state)
{
	(void)state;
	json_t *lc = lifecycle("HeadedToDropoff", 4);
	json_object_set_new(lc, "pickupEta", json_integer(T0 + 9 * 60000)); /* actual pickup */
	json_t *tm = telemetry("ToDropoff", 47.63, -122.32, 20.0, 9);
	json_t *s = status_build(lc, tm, NOW, 15);
	assert_string_equal(sget(s, "pickupETA"), "2026-11-27T10:09:00.000Z");
	char want[32];
	eta_text(pl_geo_distance_m(47.63, -122.32, DLAT, DLON), 20.0, want);
	assert_string_equal(sget(s, "deliveryETA"), want);
	json_decref(s);
	json_decref(lc);

	/* Telemetry ahead of the lifecycle (other topic): phase ToDropoff already counts. */
	lc = lifecycle("HeadedToPickup", 3);
	s = status_build(lc, tm, NOW, 15);
	assert_string_equal(sget(s, "deliveryETA"), want);
	assert_string_equal(sget(s, "pickupETA"), "2026-11-27T10:20:00.000Z"); /* snapshot's */
	json_decref(s);
	json_decref(tm);
	json_decref(lc);
}

static void test_eta_default_speed(void **state)
{
	(void)state;
	json_t *lc = lifecycle("HeadedToPickup", 3);
	const double speeds[] = {0.0, 0.5};
	for (size_t i = 0; i < 2; i++) { /* hovering or creeping: the configured speed */
		json_t *tm = telemetry("ToPickup", 47.58, -122.38, speeds[i], 1);
		json_t *s = status_build(lc, tm, NOW, 15);
		char want[32];
		eta_text(pl_geo_distance_m(47.58, -122.38, PLAT, PLON), 15.0, want);
		assert_string_equal(sget(s, "pickupETA"), want);
		json_decref(s);
		json_decref(tm);
	}
	/* at the pickup: pickup ETA is now */
	json_t *tm = telemetry("ToPickup", PLAT, PLON, 0.0, 2);
	json_t *s = status_build(lc, tm, NOW, 15);
	assert_string_equal(sget(s, "pickupETA"), "2026-11-27T10:10:00.000Z");
	json_decref(s);
	json_decref(tm);
	json_decref(lc);
}

static void test_eta_without_telemetry(void **state)
{
	(void)state;
	json_t *lc = lifecycle("Created", 1);
	json_t *s = status_build(lc, NULL, NOW, 15);
	assert_true(json_is_null(json_object_get(s, "pickupETA")));
	assert_true(json_is_null(json_object_get(s, "deliveryETA")));
	assert_true(json_is_null(json_object_get(s, "lastKnownLocation")));
	assert_true(json_is_null(json_object_get(s, "phase")));
	assert_string_equal(sget(s, "updatedAt"), "2026-11-27T10:01:00.000Z");
	json_decref(s);
	json_decref(lc);
	lc = lifecycle("Scheduled", 2); /* the workflow's estimate at assignment */
	s = status_build(lc, NULL, NOW, 15);
	assert_int_equal(json_integer_value(json_object_get(s, "stage")), 0);
	assert_string_equal(sget(s, "pickupETA"), "2026-11-27T10:20:00.000Z");
	assert_string_equal(sget(s, "deliveryETA"), "2026-11-27T10:40:00.000Z");
	json_decref(s);
	json_decref(lc);
}

static void test_finished_has_no_eta(void **state)
{
	(void)state;
	const char *stages[] = {"Completed", "Cancelled", "Failed"};
	json_t *tm = telemetry("Arrived", DLAT, DLON, 0.0, 30);
	for (size_t i = 0; i < 3; i++) {
		json_t *lc = lifecycle(stages[i], 5);
		json_t *s = status_build(lc, tm, NOW, 15);
		assert_true(json_is_null(json_object_get(s, "pickupETA")));
		assert_true(json_is_null(json_object_get(s, "deliveryETA")));
		assert_non_null(
		    json_object_get(json_object_get(s, "lastKnownLocation"), "latitude"));
		assert_int_equal(json_integer_value(json_object_get(s, "stage")), i == 0 ? 4 : 5);
		if (i == 1)
			assert_string_equal(sget(s, "reason"), "customer cancelled");
		else
			assert_true(json_is_null(json_object_get(s, "reason")));
		json_decref(s);
		json_decref(lc);
	}
	json_decref(tm);
}

/* The history fields of a lifecycle event, as the delivery handler reads them. */
static status_event_t event_of(const json_t *lc)
{
	status_event_t e = {
	    .stage = json_string_value(json_object_get(lc, "stage")),
	    .event_id = json_string_value(json_object_get(lc, "eventId")),
	    .owner_id = json_string_value(json_object_get(lc, "ownerId")),
	    .drone_id = json_string_value(json_object_get(lc, "droneId")),
	    .reason = json_string_value(json_object_get(lc, "reason")),
	    .pickup_location = json_string_value(json_object_get(lc, "pickupLocation")),
	    .dropoff_location = json_string_value(json_object_get(lc, "dropOffLocation")),
	    .version = json_integer_value(json_object_get(lc, "version")),
	    .time_ms = json_integer_value(json_object_get(lc, "time")),
	    .pickup_time = json_integer_value(json_object_get(lc, "pickupTime")),
	    .has_pickup_time = json_is_integer(json_object_get(lc, "pickupTime")),
	};
	return e;
}

static void test_history_entry(void **state)
{
	(void)state;
	const char *stages[] = {"Created",         "Scheduled", "Rescheduled", "HeadedToPickup",
	                        "HeadedToDropoff", "Completed", "Cancelled"};
	const char *detail_has[] = {"owner-1",   "drone-7",   "Pike Place Market", "drone-7",
	                            "picked up", "delivered", "customer cancelled"};
	for (size_t i = 0; i < 7; i++) {
		json_t *lc = lifecycle(stages[i], (int)i + 1);
		status_event_t ev = event_of(lc);
		char *text = status_history_entry(&ev);
		assert_non_null(text);
		json_t *e = json_loads(text, 0, NULL);
		assert_non_null(e);
		assert_int_equal(json_object_size(e), 6);
		assert_int_equal(json_integer_value(json_object_get(e, "version")), i + 1);
		assert_string_equal(sget(e, "stageName"), stages[i]);
		assert_int_equal(json_integer_value(json_object_get(e, "stage")),
		                 status_stage_int(stages[i]));
		assert_string_equal(sget(e, "eventId"), "e-1");
		char want[32];
		pl_time_format(T0 + (int64_t)(i + 1) * 60000, want);
		assert_string_equal(sget(e, "time"), want);
		assert_non_null(strstr(sget(e, "detail"), detail_has[i]));
		/* the canonical text (keys in byte order): a replay into an empty store writes
		 * identical entries, and so did the versions before this one */
		char *canonical = pl_json_text(e, PL_JSONW_SORTED, NULL);
		assert_string_equal(text, canonical);
		pl_free(canonical);
		pl_free(text);
		json_decref(e);
		json_decref(lc);
	}
	/* the exact bytes, quotes in a reason escaped; no time and no eventId give nulls */
	status_event_t failed = {
	    .stage = "Failed", .reason = "no \"drone\"", .version = 9, .time_ms = INT64_MAX};
	char *text = status_history_entry(&failed);
	assert_string_equal(text,
	                    "{\"detail\":\"failed: no \\\"drone\\\"\",\"eventId\":null,"
	                    "\"stage\":5,\"stageName\":\"Failed\",\"time\":null,\"version\":9}");
	pl_free(text);
	assert_null(status_history_entry(&(status_event_t){.version = 1}));
}

static void test_event_ids(void **state)
{
	(void)state;
	json_t *lc = lifecycle("HeadedToPickup", 3);
	json_t *tm = telemetry("ToPickup", 47.6, -122.3, 10, 0);
	char without[48], with[48];
	status_event_id(lc, NULL, without);
	status_event_id(lc, tm, with);
	assert_string_equal(without, "3.0");
	assert_string_equal(with, "3.1"); /* the first record (seq 0) is news too */
	assert_true(status_id_newer(with, without));
	assert_true(status_id_newer("3.0", ""));
	assert_true(status_id_newer("4.0", "3.17")); /* a new stage beats any position */
	assert_true(status_id_newer("3.10", "3.9")); /* numbers, not text */
	assert_false(status_id_newer("3.1", "3.1"));
	assert_false(status_id_newer("", ""));
	assert_false(status_id_newer("2.99", "3.0"));
	json_decref(tm);
	json_decref(lc);
}

static void check_frame(const char *event, const char *id, const char *data, const char *want)
{
	size_t len = 0;
	char *frame = status_sse_frame(event, id, data, &len);
	assert_string_equal(frame, want);
	assert_int_equal(len, strlen(want));
	pl_free(frame);
}

static void test_sse_framing(void **state)
{
	(void)state;
	check_frame("status", "3.1", "{\"a\":1}", "event: status\nid: 3.1\ndata: {\"a\":1}\n\n");
	check_frame(NULL, NULL, "x", "data: x\n\n");
	check_frame("", "", "", "data: \n\n");
	check_frame(NULL, NULL, NULL, "data: \n\n");
	/* every line ending splits; a trailing newline is kept as an empty data line */
	check_frame(NULL, NULL, "a\nb\r\nc\rd\n", "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n");
	check_frame(NULL, NULL, "\n\n", "data: \ndata: \ndata: \n\n");
	/* CR/LF in a field would end it and inject another: dropped */
	check_frame("sta\ntus", "1\r\ndata: evil", "ok",
	            "event: status\nid: 1data: evil\ndata: ok\n\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stage_integers),
	    cmocka_unit_test(test_delivery_view),
	    cmocka_unit_test(test_eta_before_pickup),
	    cmocka_unit_test(test_eta_after_pickup),
	    cmocka_unit_test(test_eta_default_speed),
	    cmocka_unit_test(test_eta_without_telemetry),
	    cmocka_unit_test(test_finished_has_no_eta),
	    cmocka_unit_test(test_history_entry),
	    cmocka_unit_test(test_event_ids),
	    cmocka_unit_test(test_sse_framing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
