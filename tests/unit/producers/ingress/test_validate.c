/* test_validate.c — the ingress request validator: every field of the three bodies with good
 * values, each kind of bad value and boundary lengths (code points, not bytes); several errors
 * reported at once; body-level refusals (empty, not JSON, invalid UTF-8, NUL, nesting depth, top
 * level not an object); the Avro-ready event; the problem helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingress/validate.h"
#include "geo.h"
#include "mem.h"

#define UNUSED           __attribute__((unused))
#define T_2026_11_27_10Z 1795773600000LL

typedef pl_err_t (*validator_t)(const char *, size_t, json_t **, ingress_problem_t *);

/* A valid POST body as a jansson object; tests change one thing and send it. */
static json_t *good_create(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:f}}", "ownerId", "owner-1",
	                 "pickupLocation", "Pike Place Market", "dropOffLocation",
	                 "47.6205,-122.3493", "pickupTime", "2026-11-27T10:00:00Z",
	                 "confirmationRequired", "Picture", "packageInfo", "packageId", "pkg-1",
	                 "size", "Small", "weight", 2.5);
}

static json_t *good_confirmation(void)
{
	return json_pack("{s:s, s:{s:f, s:f, s:f}, s:s, s:s}", "dateTime", "2026-11-27T10:00:00Z",
	                 "geoCoordinates", "altitude", 10.0, "latitude", 47.6, "longitude", -122.3,
	                 "confirmationType", "Picture", "confirmationBlob", "aGVsbG8=");
}

/* Runs validator on len bytes of text and checks its contract; returns the event or NULL. */
static json_t *run_text(validator_t validator, const char *text, size_t len,
                        ingress_problem_t *problem)
{
	json_t *event = (json_t *)1;
	pl_err_t err = validator(text, len, &event, problem);
	if (err == PL_OK) {
		assert_non_null(event);
		assert_int_equal(problem->status, 0);
		assert_int_equal(problem->error_count, 0);
		assert_null(problem->detail);
	} else {
		assert_int_equal(err, PL_ERR_INVALID);
		assert_null(event);
		assert_int_equal(problem->status, 400);
		assert_true(problem->error_count > 0);
		assert_non_null(problem->detail);
	}
	return event;
}

/* Runs validator on the text of body (stolen). */
static json_t *run(validator_t validator, json_t *body, ingress_problem_t *problem)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	json_t *event = run_text(validator, text, strlen(text), problem);
	free(text);
	return event;
}

/* The error on field, or fail. */
static const char *reason_of(const ingress_problem_t *problem, const char *field)
{
	for (size_t i = 0; i < problem->error_count; i++)
		if (strcmp(problem->errors[i].field, field) == 0)
			return problem->errors[i].reason;
	char *all = ingress_problem_errors_json(problem);
	fail_msg("no error on %s; errors: %s", field, all);
	return NULL;
}

/* Sends good_create() with field (top level or "packageInfo.x") set to value (stolen; NULL
 * removes the field). Returns the event on success. */
static json_t *create_with(const char *field, json_t *value, ingress_problem_t *problem)
{
	json_t *body = good_create();
	json_t *target = body;
	const char *key = field;
	if (strncmp(field, "packageInfo.", 12) == 0) {
		target = json_object_get(body, "packageInfo");
		key = field + 12;
	}
	if (value)
		json_object_set_new(target, key, value);
	else
		json_object_del(target, key);
	return run(ingress_validate_create, body, problem);
}

/* create_with must fail with exactly one error, on field, whose reason is `reason`. */
static void expect_create_error(const char *field, json_t *value, const char *reason)
{
	ingress_problem_t problem = {0};
	json_t *event = create_with(field, value, &problem);
	if (event) {
		json_decref(event);
		fail_msg("%s accepted", field);
	}
	assert_int_equal(problem.error_count, 1);
	assert_string_equal(problem.errors[0].field, field);
	assert_string_equal(problem.errors[0].reason, reason);
	ingress_problem_free(&problem);
}

static void expect_create_ok(const char *field, json_t *value)
{
	ingress_problem_t problem = {0};
	json_t *event = create_with(field, value, &problem);
	if (!event)
		fail_msg("%s rejected: %s", field, problem.errors[0].reason);
	json_decref(event);
	ingress_problem_free(&problem);
}

/* The member at a dotted path ("pickup.latitude") of an event, or NULL. */
static json_t *at(const json_t *event, const char *path)
{
	char key[64];
	const char *dot = strchr(path, '.');
	if (!dot)
		return json_object_get(event, path);
	snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
	return at(json_object_get(event, key), dot + 1);
}
#define NUM(event, path) json_number_value(at(event, path))
#define STR(event, path) json_string_value(at(event, path))

/* A string of n copies of the UTF-8 character ch. */
static json_t *repeat(const char *ch, size_t n)
{
	size_t len = strlen(ch);
	char *s = malloc(len * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, ch, len);
	s[len * n] = '\0';
	json_t *v = json_string(s);
	free(s);
	return v;
}

/* ---- POST /api/deliveryrequests ---- */

static void test_create_valid_event(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	json_t *body = good_create();
	json_object_set_new(body, "deliveryId", json_string("client-chosen"));
	json_object_set_new(body, "somethingElse", json_pack("[i]", 1));
	json_t *event = run(ingress_validate_create, body, &problem);
	assert_non_null(event);
	assert_string_equal(STR(event, "ownerId"), "owner-1");
	assert_string_equal(STR(event, "pickupLocation"), "Pike Place Market");
	assert_true(json_is_real(at(event, "pickup.latitude")));
	assert_true(NUM(event, "pickup.latitude") == 0x1.7de8ff1a98p+5);
	assert_true(NUM(event, "pickup.longitude") == -0x1.e98c538f88ccdp+6);
	assert_true(NUM(event, "pickup.altitude") == 0.0);
	assert_true(NUM(event, "dropoff.latitude") == 47.6205);
	assert_true(NUM(event, "dropoff.longitude") == -122.3493);
	assert_true(json_is_integer(at(event, "pickupTime")));
	assert_true(NUM(event, "pickupTime") == T_2026_11_27_10Z);
	assert_true(json_is_null(at(event, "deadline")));
	assert_true(json_is_false(at(event, "expedited")));
	assert_string_equal(STR(event, "confirmationRequired"), "Picture");
	assert_string_equal(STR(event, "packageInfo.packageId"), "pkg-1");
	assert_string_equal(STR(event, "packageInfo.size"), "Small");
	assert_true(NUM(event, "packageInfo.weight") == 2.5);
	assert_true(json_is_null(at(event, "packageInfo.tag")));
	/* the ingress adds these itself; client extras are dropped */
	const char *absent[] = {"deliveryId", "eventId", "requestedAt", "idempotencyKey",
	                        "somethingElse"};
	for (size_t i = 0; i < 5; i++)
		assert_null(at(event, absent[i]));
	assert_int_equal(json_object_size(event), 10);
	json_decref(event);
	ingress_problem_free(&problem);
}

static void test_create_optional_fields(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	json_t *body = good_create();
	json_object_set_new(body, "deadline", json_string("by noon"));
	json_object_set_new(body, "expedited", json_true());
	json_object_update_new(at(body, "packageInfo"),
	                       json_pack("{s:s, s:i}", "tag", "fragile", "weight", 7));
	json_t *event = run(ingress_validate_create, body, &problem);
	assert_string_equal(STR(event, "deadline"), "by noon");
	assert_true(json_is_true(at(event, "expedited")));
	assert_string_equal(STR(event, "packageInfo.tag"), "fragile");
	assert_true(json_is_real(at(event, "packageInfo.weight")) &&
	            NUM(event, "packageInfo.weight") == 7.0);
	json_decref(event);
	/* null means absent for optional fields */
	body = good_create();
	json_object_set_new(body, "deadline", json_null());
	json_object_set_new(body, "expedited", json_null());
	json_object_set_new(json_object_get(body, "packageInfo"), "tag", json_null());
	event = run(ingress_validate_create, body, &problem);
	assert_true(json_is_null(at(event, "deadline")) && json_is_false(at(event, "expedited")));
	json_decref(event);
	ingress_problem_free(&problem);
}

static void test_owner_id(void **state UNUSED)
{
	expect_create_error("ownerId", NULL, "is required");
	expect_create_error("ownerId", json_null(), "is required");
	expect_create_error("ownerId", json_integer(5), "must be a string (got number)");
	expect_create_error("ownerId", json_true(), "must be a string (got boolean)");
	expect_create_error("ownerId", json_object(), "must be a string (got object)");
	expect_create_error("ownerId", json_string(""), "must not be empty");
	expect_create_ok("ownerId", repeat("a", 1));
	expect_create_ok("ownerId", repeat("a", 128));
	expect_create_error("ownerId", repeat("a", 129),
	                    "must be at most 128 characters (got 129)");
	expect_create_error("ownerId", repeat("a", 130),
	                    "must be at most 128 characters (got 130)");
	/* code points, not bytes: 2-, 3- and 4-byte characters */
	expect_create_ok("ownerId", repeat("\xc3\xa9", 128));
	expect_create_error("ownerId", repeat("\xc3\xa9", 129),
	                    "must be at most 128 characters (got 129)");
	expect_create_ok("ownerId", repeat("\xe6\x97\xa5", 128));
	expect_create_ok("ownerId", repeat("\xf0\x9f\x9a\x81", 128));
	expect_create_error("ownerId", repeat("\xf0\x9f\x9a\x81", 129),
	                    "must be at most 128 characters (got 129)");
	/* unicode survives unchanged, also when sent as \u escapes */
	ingress_problem_t problem = {0};
	const char *text = "{\"ownerId\":\"Zo\\u00eb \\ud83d\\ude81 \xe6\x97\xa5\","
	                   "\"pickupLocation\":\"a\",\"dropOffLocation\":\"b\","
	                   "\"pickupTime\":0,\"confirmationRequired\":\"None\","
	                   "\"packageInfo\":{\"packageId\":\"p\",\"size\":\"Large\",\"weight\":0}}";
	json_t *event = run_text(ingress_validate_create, text, strlen(text), &problem);
	assert_non_null(event);
	assert_string_equal(STR(event, "ownerId"), "Zo\xc3\xab \xf0\x9f\x9a\x81 \xe6\x97\xa5");
	json_decref(event);
	ingress_problem_free(&problem);
}

static void test_locations(void **state UNUSED)
{
	const char *fields[] = {"pickupLocation", "dropOffLocation"};
	for (int i = 0; i < 2; i++) {
		const char *f = fields[i];
		expect_create_error(f, NULL, "is required");
		expect_create_error(f, json_real(47.6), "must be a string (got number)");
		expect_create_error(f, json_pack("[f,f]", 47.6, -122.3),
		                    "must be a string (got array)");
		expect_create_error(f, json_string(""), "must not be empty");
		expect_create_error(f, json_string(" \t "), "must not be blank");
		expect_create_ok(f, repeat("x", 256));
		expect_create_ok(f, repeat("\xc3\xa9", 256));
		expect_create_error(f, repeat("x", 257),
		                    "must be at most 256 characters (got 257)");
		expect_create_error(f, json_string("91,0"),
		                    "looks like \"lat,lon\" but is out of range (latitude -90..90, "
		                    "longitude -180..180)");
		expect_create_error(f, json_string("0, -180.5"),
		                    "looks like \"lat,lon\" but is out of range (latitude -90..90, "
		                    "longitude -180..180)");
		expect_create_ok(f, json_string("-90,180"));
		expect_create_ok(f, json_string("1st Ave & Pike St"));
	}
	/* the location text goes into the event as sent, untrimmed */
	ingress_problem_t problem = {0};
	json_t *event = create_with("pickupLocation", json_string("  47.6 , -122.3 "), &problem);
	assert_string_equal(STR(event, "pickupLocation"), "  47.6 , -122.3 ");
	assert_true(NUM(event, "pickup.latitude") == 47.6 &&
	            NUM(event, "pickup.longitude") == -122.3);
	json_decref(event);
	ingress_problem_free(&problem);
}

static int64_t pickup_time_of(json_t *value)
{
	ingress_problem_t problem = {0};
	json_t *event = create_with("pickupTime", value, &problem);
	if (!event)
		fail_msg("pickupTime rejected: %s", problem.errors[0].reason);
	int64_t ms = NUM(event, "pickupTime");
	json_decref(event);
	ingress_problem_free(&problem);
	return ms;
}

#define TIME_REASON                                                                                \
	"must be an ISO-8601 date-time like 2026-11-27T10:00:00Z or epoch "                        \
	"milliseconds"

static void test_pickup_time(void **state UNUSED)
{
	assert_true(pickup_time_of(json_string("2026-11-27T10:00:00Z")) == T_2026_11_27_10Z);
	assert_true(pickup_time_of(json_string("2026-11-27T15:30:00+05:30")) == T_2026_11_27_10Z);
	assert_true(pickup_time_of(json_string("2026-11-27T02:00:00-0800")) == T_2026_11_27_10Z);
	assert_true(pickup_time_of(json_string("2026-11-27T10:00:00.123456Z")) ==
	            T_2026_11_27_10Z + 123);
	assert_true(pickup_time_of(json_integer(T_2026_11_27_10Z + 7)) == T_2026_11_27_10Z + 7);
	assert_true(pickup_time_of(json_integer(0)) == 0);
	assert_true(pickup_time_of(json_integer(253402300799999LL)) == 253402300799999LL);
	assert_true(pickup_time_of(json_string("2024-02-29T08:00:00Z")) == 1709193600000LL);
	expect_create_error("pickupTime", json_string("2023-02-29T08:00:00Z"), TIME_REASON);
	expect_create_error("pickupTime", json_string("2026-11-27"), TIME_REASON);
	expect_create_error("pickupTime", json_string("2026-11-27T10:00:00"), TIME_REASON);
	expect_create_error("pickupTime", json_string("tomorrow at 10"), TIME_REASON);
	expect_create_error("pickupTime", json_string(""), TIME_REASON);
	expect_create_error("pickupTime", json_string("1795773600000"), TIME_REASON);
	expect_create_error("pickupTime", json_real(1795773600000.5),
	                    TIME_REASON " (got a fractional number)");
	expect_create_error("pickupTime", json_true(), TIME_REASON " (got boolean)");
	expect_create_error("pickupTime", json_object(), TIME_REASON " (got object)");
	expect_create_error("pickupTime", json_integer(-1),
	                    "must be epoch milliseconds between 0 and 253402300799999 (got -1)");
	expect_create_error("pickupTime", json_integer(253402300800000LL),
	                    "must be epoch milliseconds between 0 and 253402300799999 (got "
	                    "253402300800000)");
	expect_create_error("pickupTime", json_string("1969-12-31T23:59:59Z"),
	                    "must not be before 1970-01-01T00:00:00Z");
	expect_create_error("pickupTime", NULL, "is required");
	expect_create_error("pickupTime", json_null(), "is required");
}

static void test_deadline_and_expedited(void **state UNUSED)
{
	expect_create_ok("deadline", json_string(""));
	expect_create_ok("deadline", json_string("2026-11-27T18:00:00Z"));
	expect_create_ok("deadline", repeat("\xc3\xa9", 64));
	expect_create_error("deadline", repeat("d", 65), "must be at most 64 characters (got 65)");
	expect_create_error("deadline", json_integer(5), "must be a string (got number)");
	expect_create_ok("expedited", json_false());
	expect_create_error("expedited", json_string("true"),
	                    "must be a boolean, true or false (got string)");
	expect_create_error("expedited", json_integer(1),
	                    "must be a boolean, true or false (got number)");
}

static void test_confirmation_required(void **state UNUSED)
{
	const char *symbols[] = {"FingerPrint", "Picture", "Voice", "None"};
	for (int i = 0; i < 4; i++)
		expect_create_ok("confirmationRequired", json_string(symbols[i]));
	expect_create_error("confirmationRequired", json_string("picture"),
	                    "must be one of FingerPrint, Picture, Voice, None (case-sensitive: did "
	                    "you mean Picture?)");
	expect_create_error("confirmationRequired", json_string("Photo"),
	                    "must be one of FingerPrint, Picture, Voice, None");
	expect_create_error("confirmationRequired", json_string(""),
	                    "must be one of FingerPrint, Picture, Voice, None");
	expect_create_error("confirmationRequired", json_integer(1),
	                    "must be a string, one of FingerPrint, Picture, Voice, None (got "
	                    "number)");
	expect_create_error("confirmationRequired", NULL, "is required");
}

static void test_package_info(void **state UNUSED)
{
	expect_create_error("packageInfo", NULL, "is required");
	expect_create_error("packageInfo", json_array(), "must be an object (got array)");
	expect_create_error("packageInfo", json_string("pkg"), "must be an object (got string)");
	expect_create_error("packageInfo.packageId", NULL, "is required");
	expect_create_error("packageInfo.packageId", json_integer(1),
	                    "must be a string (got number)");
	expect_create_error("packageInfo.packageId", json_string(""), "must not be empty");
	expect_create_ok("packageInfo.packageId", repeat("\xe6\x97\xa5", 128));
	expect_create_error("packageInfo.packageId", repeat("p", 129),
	                    "must be at most 128 characters (got 129)");
	expect_create_ok("packageInfo.size", json_string("Medium"));
	expect_create_ok("packageInfo.size", json_string("Large"));
	expect_create_error("packageInfo.size", json_string("XL"),
	                    "must be one of Small, Medium, Large");
	expect_create_error("packageInfo.size", json_string("LARGE"),
	                    "must be one of Small, Medium, Large (case-sensitive: did you mean "
	                    "Large?)");
	expect_create_error("packageInfo.size", json_integer(0),
	                    "must be a string, one of Small, Medium, Large (got number)");
	expect_create_error("packageInfo.size", NULL, "is required");
	expect_create_ok("packageInfo.weight", json_integer(0));
	expect_create_ok("packageInfo.weight", json_real(-0.0));
	expect_create_ok("packageInfo.weight", json_integer(100000));
	expect_create_error("packageInfo.weight", json_real(-0.5),
	                    "must be a number >= 0 (got -0.5)");
	expect_create_error("packageInfo.weight", json_integer(-1),
	                    "must be a number >= 0 (got -1)");
	expect_create_error("packageInfo.weight", json_real(100000.5),
	                    "must be a number <= 100000 (got 100000.5)");
	expect_create_error("packageInfo.weight", json_string("5"),
	                    "must be a number (got string)");
	expect_create_error("packageInfo.weight", NULL, "is required");
	expect_create_ok("packageInfo.tag", json_string(""));
	expect_create_ok("packageInfo.tag", repeat("t", 128));
	expect_create_error("packageInfo.tag", repeat("t", 129),
	                    "must be at most 128 characters (got 129)");
	expect_create_error("packageInfo.tag", json_false(), "must be a string (got boolean)");
}

static void test_all_errors_listed(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	const char *text = "{\"ownerId\":\"\",\"pickupLocation\":7,\"pickupTime\":\"soon\","
	                   "\"expedited\":\"yes\",\"confirmationRequired\":\"Photo\","
	                   "\"packageInfo\":{\"size\":\"Huge\",\"weight\":-3,\"tag\":1}}";
	assert_null(run_text(ingress_validate_create, text, strlen(text), &problem));
	char fields[512] = "";
	for (size_t i = 0; i < problem.error_count; i++)
		snprintf(fields + strlen(fields), sizeof(fields) - strlen(fields), "%s%s",
		         i ? "," : "", problem.errors[i].field);
	assert_string_equal(fields, "ownerId,pickupLocation,dropOffLocation,pickupTime,expedited,"
	                            "confirmationRequired,packageInfo.packageId,packageInfo.size,"
	                            "packageInfo.weight,packageInfo.tag");
	assert_string_equal(reason_of(&problem, "dropOffLocation"), "is required");
	assert_string_equal(reason_of(&problem, "packageInfo.weight"),
	                    "must be a number >= 0 (got -3)");
	assert_string_equal(problem.detail,
	                    "The request has 10 invalid fields: ownerId, pickupLocation, "
	                    "dropOffLocation, pickupTime, expedited, confirmationRequired, "
	                    "packageInfo.packageId, packageInfo.size, packageInfo.weight, "
	                    "packageInfo.tag.");
	/* the whole body missing every field */
	assert_null(run_text(ingress_validate_create, "{}", 2, &problem));
	assert_int_equal(problem.error_count, 6);
	assert_string_equal(reason_of(&problem, "packageInfo"), "is required");
	ingress_problem_free(&problem);
}

static void test_problem_rendering_and_reuse(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	char *json = ingress_problem_errors_json(&problem);
	assert_string_equal(json, "[]");
	pl_free(json);
	json_t *event = create_with("packageInfo.size", json_string("XL"), &problem);
	assert_null(event);
	assert_string_equal(problem.detail, "The request has 1 invalid field: packageInfo.size.");
	json = ingress_problem_errors_json(&problem);
	assert_string_equal(json,
	                    "[{\"field\":\"packageInfo.size\",\"reason\":\"must be one of Small, "
	                    "Medium, Large\"}]");
	pl_free(json);
	json_t *array = ingress_problem_errors_array(&problem);
	assert_int_equal(json_array_size(array), 1);
	json_decref(array);
	/* the same struct serves the next request: validation resets it */
	event = run(ingress_validate_create, good_create(), &problem);
	json_decref(event);
	/* routes add their own errors; odd bytes are made safe text (pl_text_clean): control
	 * characters shown as \xNN, bytes that are not UTF-8 as U+FFFD, UTF-8 kept */
	ingress_problem_add(&problem, "x\n", "bad \xff value %d \xC3\xA9", 3);
	assert_int_equal(problem.status, 400);
	assert_string_equal(problem.errors[0].field, "x\\x0a");
	assert_string_equal(problem.errors[0].reason, "bad \xEF\xBF\xBD value 3 \xC3\xA9");
	ingress_problem_set_detail(&problem, "one\ttwo");
	assert_string_equal(problem.detail, "one\\x09two");
	ingress_problem_reset(&problem);
	assert_int_equal(problem.status, 0);
	assert_int_equal(problem.error_count, 0);
	assert_null(problem.detail);
	ingress_problem_free(&problem);
	ingress_problem_free(&problem); /* twice is fine */
	ingress_problem_free(NULL);
	ingress_problem_reset(NULL);
}

/* ---- body-level refusals (all three routes) ---- */

static const validator_t validators[] = {ingress_validate_create, ingress_validate_reschedule,
                                         ingress_validate_confirmation};

static void expect_body_error(const char *text, size_t len, const char *reason,
                              const char *detail_part)
{
	for (int i = 0; i < 3; i++) {
		ingress_problem_t problem = {0};
		assert_null(run_text(validators[i], text, len, &problem));
		assert_int_equal(problem.status, 400);
		assert_int_equal(problem.error_count, 1);
		assert_string_equal(problem.errors[0].field, "body");
		assert_string_equal(problem.errors[0].reason, reason);
		if (!strstr(problem.detail, detail_part))
			fail_msg("detail \"%s\" lacks \"%s\"", problem.detail, detail_part);
		ingress_problem_free(&problem);
	}
}

static void test_body_empty(void **state UNUSED)
{
	expect_body_error("", 0, "is empty", "empty");
	expect_body_error(NULL, 0, "is empty", "empty");
	expect_body_error(" \r\n\t ", 5, "is empty", "empty");
	expect_body_error("\xEF\xBB\xBF", 3, "is empty", "empty");
}

static void test_body_not_json(void **state UNUSED)
{
	expect_body_error("not json", 8, "is not valid JSON", "line 1, column ");
	expect_body_error("{\"a\":1,}", 8, "is not valid JSON",
	                  "The request body is not valid JSON");
	expect_body_error("{\"a\":1} x", 9, "is not valid JSON", "end of file expected");
	expect_body_error("{\n\"a\":\n}", 8, "is not valid JSON", "line 3");
	expect_body_error("{\"a\":1,\"a\":2}", 13, "has a duplicate object key", "duplicate");
	expect_body_error("{\"a\":1e999}", 11, "has a number out of range", "too large");
	expect_body_error("{\"a\":99999999999999999999}", 26, "has a number out of range",
	                  "too large");
	expect_body_error("{\"a\":\"x\\ud800\"}", 15, "is not valid JSON", "invalid Unicode");
}

static void test_body_not_object(void **state UNUSED)
{
	expect_body_error("[]", 2, "must be a JSON object (got array)", "not a JSON array");
	expect_body_error("\"x\"", 3, "must be a JSON object (got string)", "JSON object");
	expect_body_error("42", 2, "must be a JSON object (got number)", "JSON object");
	expect_body_error("null", 4, "must be a JSON object (got null)", "JSON object");
	expect_body_error("true", 4, "must be a JSON object (got boolean)", "JSON object");
}

static void test_body_utf8_and_nul(void **state UNUSED)
{
	expect_body_error("{\"ownerId\":\"\xff\"}", 15, "is not valid UTF-8", "not valid UTF-8");
	expect_body_error("{\"ownerId\":\"\xc3\"}", 15, "is not valid UTF-8", "UTF-8");
	expect_body_error("{\"ownerId\":\"\xed\xa0\x80\"}", 17, "is not valid UTF-8", "UTF-8");
	expect_body_error("{\"\xc0\xaf\":1}", 8, "is not valid UTF-8", "UTF-8");
	expect_body_error("{\"ownerId\":\"a\0b\"}", 17, "contains a NUL byte",
	                  "NUL byte at offset 13");
	expect_body_error("{}\0", 3, "contains a NUL byte", "offset 2");
	expect_body_error("{\"ownerId\":\"a\\u0000b\"}", 22, "contains \\u0000 in a string",
	                  "(NUL)");
	/* the problem text never carries raw body bytes */
	ingress_problem_t problem = {0};
	assert_null(run_text(ingress_validate_create, "\xfe\xff", 2, &problem));
	for (const char *p = problem.detail; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	ingress_problem_free(&problem);
}

/* {"a":{"a":...{}...}} with `depth` objects. */
static char *nested(size_t depth)
{
	char *s = malloc(depth * 6 + 1), *p = s;
	for (size_t i = 0; i < depth; i++)
		p += i + 1 < depth ? sprintf(p, "{\"a\":") : sprintf(p, "{");
	for (size_t i = 0; i < depth; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

static void test_body_depth(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	char *s = nested(32);
	assert_null(run_text(ingress_validate_create, s, strlen(s), &problem));
	assert_int_equal(problem.error_count, 6); /* parsed: only the missing fields */
	free(s);
	s = nested(33);
	expect_body_error(s, strlen(s), "nests deeper than 32 levels", "deeper than 32 levels");
	free(s);
	/* a 100k-deep body is refused by the scan before anything recurses */
	size_t n = 100000;
	s = malloc(2 * n);
	memset(s, '[', n);
	memset(s + n, ']', n);
	expect_body_error(s, 2 * n, "nests deeper than 32 levels", "deeper than 32 levels");
	free(s);
	/* brackets inside strings (also after escaped quotes) do not count */
	const char *quoted = "{\"ownerId\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{"
	                     "{{{{{{{{{{{{{{{{{{{{{{{{{{\",\"pickupLocation\":\"a\","
	                     "\"dropOffLocation\":\"b\",\"pickupTime\":0,"
	                     "\"confirmationRequired\":\"None\",\"packageInfo\":{\"packageId\":"
	                     "\"p\",\"size\":\"Small\",\"weight\":1}}";
	json_t *event = run_text(ingress_validate_create, quoted, strlen(quoted), &problem);
	assert_non_null(event);
	json_decref(event);
	/* arrays count too: an ignored field holding 31 arrays makes 32 levels (fine), 32 make 33
	 */
	for (size_t arrays = 31; arrays <= 32; arrays++) {
		json_t *body = good_create(), *inner = json_array();
		for (size_t i = 1; i < arrays; i++) {
			json_t *outer = json_array();
			json_array_append_new(outer, inner);
			inner = outer;
		}
		json_object_set_new(body, "extra", inner);
		event = run(ingress_validate_create, body, &problem);
		if (arrays == 31) {
			assert_non_null(event);
			json_decref(event);
		} else {
			assert_null(event);
			assert_string_equal(problem.errors[0].reason,
			                    "nests deeper than 32 levels");
		}
	}
	ingress_problem_free(&problem);
}

static void test_body_bom_and_length(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	json_t *body = good_create();
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	size_t len = strlen(text);
	char *with_bom = malloc(len + 3);
	memcpy(with_bom, "\xEF\xBB\xBF", 3);
	memcpy(with_bom + 3, text, len);
	json_t *event = run_text(ingress_validate_create, with_bom, len + 3, &problem);
	assert_non_null(event);
	json_decref(event);
	/* len is honoured: the body need not be NUL-terminated, and bytes past len
	 * are not read */
	char *padded = malloc(len + 10);
	memcpy(padded, text, len);
	memcpy(padded + len, "garbage!!", 9);
	event = run_text(ingress_validate_create, padded, len, &problem);
	assert_non_null(event);
	json_decref(event);
	assert_null(run_text(ingress_validate_create, padded, len - 1, &problem));
	assert_string_equal(problem.errors[0].reason, "is not valid JSON");
	free(padded);
	free(with_bom);
	free(text);
	ingress_problem_free(&problem);
}

/* ---- PATCH /api/deliveryrequests/{id} ---- */

static json_t *reschedule(const char *text, ingress_problem_t *problem)
{
	return run_text(ingress_validate_reschedule, text, strlen(text), problem);
}

static void test_reschedule(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	json_t *event = reschedule("{\"pickupLocation\":\"Space Needle\"}", &problem);
	assert_non_null(event);
	assert_string_equal(STR(event, "pickupLocation"), "Space Needle");
	assert_true(NUM(event, "pickup.latitude") == 0x1.7c6a5cebd8p+5);
	assert_true(json_is_null(at(event, "dropOffLocation")) &&
	            json_is_null(at(event, "dropoff")) && json_is_null(at(event, "pickupTime")) &&
	            json_is_null(at(event, "deadline")));
	assert_int_equal(json_object_size(event), 6);
	json_decref(event);
	event = reschedule("{\"dropOffLocation\":\"1,2\","
	                   "\"pickupTime\":\"2026-11-27T15:30:00+05:30\","
	                   "\"deadline\":\"late\",\"deliveryId\":\"x\"}",
	                   &problem);
	assert_non_null(event);
	assert_true(json_is_null(at(event, "pickup")));
	assert_true(NUM(event, "dropoff.longitude") == 2.0);
	assert_true(NUM(event, "pickupTime") == T_2026_11_27_10Z);
	assert_string_equal(STR(event, "deadline"), "late");
	json_decref(event);
	event = reschedule("{\"pickupTime\":1795773600000}", &problem);
	assert_true(NUM(event, "pickupTime") == T_2026_11_27_10Z);
	json_decref(event);
	event = reschedule("{\"deadline\":\"\"}", &problem);
	assert_non_null(event);
	json_decref(event);
	ingress_problem_free(&problem);
}

static void test_reschedule_errors(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	const char *nothing[] = {"{}", "{\"ownerId\":\"x\"}",
	                         "{\"pickupLocation\":null,\"dropOffLocation\":null,"
	                         "\"deadline\":null,\"pickupTime\":null}"};
	for (int i = 0; i < 3; i++) {
		assert_null(reschedule(nothing[i], &problem));
		assert_int_equal(problem.error_count, 1);
		assert_string_equal(reason_of(&problem, "body"),
		                    "must contain at least one of pickupLocation, dropOffLocation, "
		                    "deadline, pickupTime");
		assert_non_null(strstr(problem.detail, "Nothing to reschedule"));
	}
	/* a bad field is reported as such, not as "nothing given" */
	assert_null(reschedule("{\"pickupTime\":\"noon\",\"pickupLocation\":\"\","
	                       "\"dropOffLocation\":\"95,0\",\"deadline\":[]}",
	                       &problem));
	assert_int_equal(problem.error_count, 4);
	assert_string_equal(reason_of(&problem, "pickupTime"), TIME_REASON);
	assert_string_equal(reason_of(&problem, "pickupLocation"), "must not be empty");
	assert_string_equal(reason_of(&problem, "deadline"), "must be a string (got array)");
	assert_null(reschedule("{\"pickupLocation\":\"ok\",\"deadline\":7}", &problem));
	assert_int_equal(problem.error_count, 1);
	ingress_problem_free(&problem);
}

/* ---- POST .../confirmations ---- */

static void test_confirmation(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	json_t *event = run(ingress_validate_confirmation, good_confirmation(), &problem);
	assert_true(NUM(event, "dateTime") == T_2026_11_27_10Z);
	assert_true(NUM(event, "geoCoordinates.latitude") == 47.6);
	assert_true(NUM(event, "geoCoordinates.longitude") == -122.3);
	assert_true(NUM(event, "geoCoordinates.altitude") == 10.0);
	assert_string_equal(STR(event, "confirmationType"), "Picture");
	assert_string_equal(STR(event, "confirmationBlob"), "aGVsbG8=");
	assert_int_equal(json_object_size(event), 4);
	json_decref(event);
	const char *minimal = "{\"dateTime\":0,\"geoCoordinates\":{\"latitude\":-90,"
	                      "\"longitude\":180},\"confirmationType\":\"None\"}";
	event = run_text(ingress_validate_confirmation, minimal, strlen(minimal), &problem);
	assert_true(json_is_real(at(event, "geoCoordinates.latitude")));
	assert_true(NUM(event, "geoCoordinates.altitude") == 0.0);
	assert_true(json_is_null(at(event, "confirmationBlob")));
	json_decref(event);

	/* blob: 48 KiB in bytes */
	for (int over = 0; over < 2; over++) {
		json_t *body = good_confirmation();
		json_object_set_new(body, "confirmationBlob", repeat("A", 49152 + over));
		event = run(ingress_validate_confirmation, body, &problem);
		if (over) {
			assert_null(event);
			assert_string_equal(reason_of(&problem, "confirmationBlob"),
			                    "must be at most 49152 bytes (got 49153)");
		} else {
			json_decref(event);
		}
	}
	ingress_problem_free(&problem);
}

static void test_confirmation_errors(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	assert_null(run_text(ingress_validate_confirmation, "{}", 2, &problem));
	assert_int_equal(problem.error_count, 3);
	assert_string_equal(reason_of(&problem, "dateTime"), "is required");
	assert_string_equal(reason_of(&problem, "geoCoordinates"), "is required");
	assert_string_equal(reason_of(&problem, "confirmationType"), "is required");
	const char *bad = "{\"dateTime\":\"2026-02-30T00:00:00Z\",\"geoCoordinates\":{"
	                  "\"latitude\":90.5,\"longitude\":-181,\"altitude\":\"high\"},"
	                  "\"confirmationType\":\"voice\",\"confirmationBlob\":5}";
	assert_null(run_text(ingress_validate_confirmation, bad, strlen(bad), &problem));
	assert_int_equal(problem.error_count, 6);
	assert_string_equal(reason_of(&problem, "dateTime"), TIME_REASON);
	assert_string_equal(reason_of(&problem, "geoCoordinates.latitude"),
	                    "must be a number <= 90 (got 90.5)");
	assert_string_equal(reason_of(&problem, "geoCoordinates.longitude"),
	                    "must be a number >= -180 (got -181)");
	assert_string_equal(reason_of(&problem, "geoCoordinates.altitude"),
	                    "must be a number (got string)");
	assert_string_equal(reason_of(&problem, "confirmationType"),
	                    "must be one of FingerPrint, Picture, Voice, None (case-sensitive: did "
	                    "you mean Voice?)");
	assert_string_equal(reason_of(&problem, "confirmationBlob"),
	                    "must be a string (got number)");
	const char *no_coords = "{\"dateTime\":1,\"geoCoordinates\":[47.6,-122.3],"
	                        "\"confirmationType\":\"Voice\"}";
	assert_null(
	    run_text(ingress_validate_confirmation, no_coords, strlen(no_coords), &problem));
	assert_string_equal(reason_of(&problem, "geoCoordinates"), "must be an object (got array)");
	const char *missing =
	    "{\"dateTime\":1,\"geoCoordinates\":{},\"confirmationType\":\"Voice\"}";
	assert_null(run_text(ingress_validate_confirmation, missing, strlen(missing), &problem));
	assert_int_equal(problem.error_count, 2);
	assert_string_equal(reason_of(&problem, "geoCoordinates.latitude"), "is required");
	assert_string_equal(reason_of(&problem, "geoCoordinates.longitude"), "is required");
	ingress_problem_free(&problem);
}

/* The area rule on validated events: a small area (5 km around 47.61,-122.33) and range (8 km),
 * so free text (spread over geo.h's 25 x 28 km box) can land outside too. */
static pl_area_t small_area(void)
{
	pl_area_t area;
	char err[200];
	assert_int_equal(pl_area_parse("47.61,-122.33,5000", 8000, &area, err, sizeof(err)), PL_OK);
	return area;
}

/* Creates with pickup/dropoff text, then applies the area rule: PL_OK or the problem. */
static pl_err_t create_in_area(const char *pickup, const char *dropoff, ingress_problem_t *problem)
{
	pl_area_t area = small_area();
	json_t *body = good_create();
	json_object_set_new(body, "pickupLocation", json_string(pickup));
	json_object_set_new(body, "dropOffLocation", json_string(dropoff));
	json_t *event = run(ingress_validate_create, body, problem);
	assert_non_null(event);
	pl_err_t e = ingress_validate_area(&area, event, problem);
	json_decref(event);
	if (e != PL_OK) {
		assert_int_equal(problem->status, 400);
		assert_non_null(problem->detail);
	}
	return e;
}

static void test_area(void **state UNUSED)
{
	ingress_problem_t problem = {0};
	assert_int_equal(create_in_area("47.61,-122.33", "47.63,-122.30", &problem), PL_OK);
	assert_int_equal(problem.error_count, 0);
	/* outside: each field named with the limit */
	assert_int_equal(create_in_area("48.61,-122.33", "47.63,-122.30", &problem),
	                 PL_ERR_INVALID);
	assert_int_equal(problem.error_count, 1);
	assert_non_null(
	    strstr(reason_of(&problem, "pickupLocation"), "is outside the service area: 111"));
	assert_non_null(strstr(reason_of(&problem, "pickupLocation"),
	                       "over the radius of 5000 m (DP_SERVICE_AREA)"));
	assert_non_null(strstr(problem.detail, "pickupLocation"));
	assert_int_equal(create_in_area("47.61,-122.33", "-89,179.5", &problem), PL_ERR_INVALID);
	assert_int_equal(problem.error_count, 1);
	reason_of(&problem, "dropOffLocation");
	assert_int_equal(create_in_area("90,0", "-90,180", &problem), PL_ERR_INVALID);
	assert_int_equal(problem.error_count, 2); /* both named; no route error on top */
	reason_of(&problem, "pickupLocation");
	reason_of(&problem, "dropOffLocation");
	/* both inside, 9.6 km apart: over the 8 km range */
	assert_int_equal(create_in_area("47.6533,-122.33", "47.5667,-122.33", &problem),
	                 PL_ERR_INVALID);
	assert_int_equal(problem.error_count, 1);
	assert_non_null(strstr(reason_of(&problem, "route"), "from pickup to drop-off is 96"));
	assert_non_null(strstr(reason_of(&problem, "route"),
	                       "over the drone range of 8000 m (DP_DRONE_RANGE_M)"));
	/* free text resolves to a point and meets the same rule: of many place names, some land
	 * inside the 5 km circle and most outside, and each verdict is the point's own */
	pl_area_t area = small_area();
	int inside = 0, outside = 0;
	for (int i = 0; i < 200; i++) {
		char text[32];
		double lat, lon;
		snprintf(text, sizeof(text), "place %d", i);
		assert_int_equal(pl_geo_resolve(text, &lat, &lon), PL_OK);
		bool in = pl_area_contains(&area, lat, lon, NULL);
		pl_err_t e = create_in_area(text, "47.61,-122.33", &problem);
		assert_int_equal(e, in ? PL_OK : PL_ERR_INVALID);
		if (!in)
			reason_of(&problem, "pickupLocation");
		inside += in;
		outside += !in;
	}
	assert_true(inside > 0 && outside > 0);
	ingress_problem_free(&problem);
}

static void test_reschedule_area(void **state UNUSED)
{
	pl_area_t area = small_area();
	ingress_problem_t problem = {0};
	struct {
		const char *body;
		const char *field; /* NULL: accepted */
	} cases[] = {
	    {"{\"pickupTime\":1}", NULL}, /* no location: nothing to check */
	    {"{\"pickupLocation\":\"47.62,-122.33\"}", NULL},
	    {"{\"dropOffLocation\":\"47.62,-122.33\"}", NULL},
	    {"{\"pickupLocation\":\"48.62,-122.33\"}", "pickupLocation"},
	    {"{\"dropOffLocation\":\"0,0\"}", "dropOffLocation"},
	    {"{\"pickupLocation\":\"47.6533,-122.33\",\"dropOffLocation\":\"47.5667,-122.33\"}",
	     "route"},
	    {"{\"pickupLocation\":\"47.62,-122.33\",\"dropOffLocation\":\"47.60,-122.33\"}", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *event = run_text(ingress_validate_reschedule, cases[i].body,
		                         strlen(cases[i].body), &problem);
		assert_non_null(event);
		pl_err_t e = ingress_validate_area(&area, event, &problem);
		json_decref(event);
		if (!cases[i].field) {
			if (e != PL_OK)
				fail_msg("%s refused: %s", cases[i].body, problem.errors[0].reason);
			continue;
		}
		assert_int_equal(e, PL_ERR_INVALID);
		assert_int_equal(problem.error_count, 1);
		reason_of(&problem, cases[i].field);
	}
	ingress_problem_free(&problem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_create_valid_event),
	                                   cmocka_unit_test(test_create_optional_fields),
	                                   cmocka_unit_test(test_owner_id),
	                                   cmocka_unit_test(test_locations),
	                                   cmocka_unit_test(test_pickup_time),
	                                   cmocka_unit_test(test_deadline_and_expedited),
	                                   cmocka_unit_test(test_confirmation_required),
	                                   cmocka_unit_test(test_package_info),
	                                   cmocka_unit_test(test_all_errors_listed),
	                                   cmocka_unit_test(test_problem_rendering_and_reuse),
	                                   cmocka_unit_test(test_body_empty),
	                                   cmocka_unit_test(test_body_not_json),
	                                   cmocka_unit_test(test_body_not_object),
	                                   cmocka_unit_test(test_body_utf8_and_nul),
	                                   cmocka_unit_test(test_body_depth),
	                                   cmocka_unit_test(test_body_bom_and_length),
	                                   cmocka_unit_test(test_reschedule),
	                                   cmocka_unit_test(test_reschedule_errors),
	                                   cmocka_unit_test(test_confirmation),
	                                   cmocka_unit_test(test_confirmation_errors),
	                                   cmocka_unit_test(test_area),
	                                   cmocka_unit_test(test_reschedule_area)};
	return cmocka_run_group_tests_name("producers/ingress/validate", tests, NULL, NULL);
}
