/* saga.c — the delivery saga state machine (see saga.h and STATE_MACHINE.md). Pure: reads the
 * state and the input, builds a new state and the events to produce; owns nothing between calls.
 * Every branch below is one cell (or one row) of the table in STATE_MACHINE.md. */
#include "saga.h"
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "jsonw.h"
#include "kafka.h"
#include "mem.h"

/* Namespace of the UUID v5 of every saga output. Fixed forever: changing it changes the ids of
 * re-emitted events and defeats downstream dedup. */
#define SAGA_ID_NS "3b0f4d7e-5a52-4c8e-9f0d-6a1d2c7b9e41"

static const char *const status_names[SAGA_STATUS__COUNT] = {
    "AwaitingPackage",      "AwaitingDrone", "HeadedToPickup", "HeadedToDropoff",
    "AwaitingConfirmation", "Completed",     "Cancelled",      "Failed"};

enum input {
	IN_REQUESTED,
	IN_RESCHEDULE,
	IN_CANCEL,
	IN_CONFIRMED,
	IN_PACKAGE_CREATED,
	IN_PACKAGE_REJECTED,
	IN_DRONE_ASSIGNED,
	IN_DRONE_UNAVAILABLE,
	IN_DRONE_RELEASED,
	IN_DRONE_ARRIVED,
	IN_TIMER,
	IN__COUNT
};

static const char *const input_names[IN__COUNT] = {
    "DeliveryRequested",       "DeliveryRescheduleRequested",
    "DeliveryCancelRequested", "DeliveryConfirmed",
    "PackageCreated",          "PackageRejected",
    "DroneAssigned",           "DroneUnavailable",
    "DroneReleased",           "DroneArrived",
    SAGA_INPUT_TIMER};

/* What the saga emits, and where each schema goes. */
static const struct {
	const char *schema, *topic;
} routes[] = {{"DeliveryLifecycle", SAGA_TOPIC_DELIVERY_EVENTS},
              {"CreatePackage", SAGA_TOPIC_PACKAGE_COMMANDS},
              {"AssignDrone", SAGA_TOPIC_DRONE_COMMANDS},
              {"ReleaseDrone", SAGA_TOPIC_DRONE_COMMANDS}};
#define ROUTE_LIFECYCLE 0
#define ROUTE_CREATE    1
#define ROUTE_ASSIGN    2
#define ROUTE_RELEASE   3
#define ROUTE_COUNT     4

const char *const saga_output_schemas[] = {"DeliveryLifecycle", "CreatePackage",   "AssignDrone",
                                           "ReleaseDrone",      SAGA_STATE_SCHEMA, NULL};

/* The delivery fields a lifecycle event copies from the state under the same names. */
static const char *const delivery_keys[] = {
    "requestedAt", "ownerId",    "pickupLocation", "pickup",    "dropOffLocation",
    "dropoff",     "pickupTime", "deadline",       "expedited", "confirmationRequired",
    NULL};

/* One saga_apply call. Invariant: st is the working copy (owned) or NULL while no saga exists;
 * cause is the input's eventId or a timer id; delivery_id points into input or state. */
typedef struct apply {
	json_t *st;
	const json_t *in;
	const char *delivery_id;
	const char *cause;
	bool timer;
	char timer_cause[48];
	int64_t now;
	const saga_opts_t *opts;
	saga_result_t *out;
} apply_t;

/* ---- small json helpers ---- */

static const char *jstr(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jint(const json_t *obj, const char *key, int64_t *value)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		return false;
	*value = (int64_t)json_integer_value(v);
	return true;
}

static int64_t jint_or(const json_t *obj, const char *key, int64_t dflt)
{
	int64_t v;
	return jint(obj, key, &v) ? v : dflt;
}

/* Sets key to value (stolen); NULL stores JSON null. */
static void put(json_t *obj, const char *key, json_t *value)
{
	json_object_set_new(obj, key, value ? value : json_null());
}

static json_t *copy_of(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v ? json_deep_copy(v) : json_null();
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static bool is_point(const json_t *p)
{
	return json_is_object(p) && json_is_number(json_object_get(p, "latitude")) &&
	       json_is_number(json_object_get(p, "longitude"));
}

/* ---- outcomes ---- */

static saga_outcome_t verdict(apply_t *a, saga_outcome_t outcome, const char *fmt, va_list ap)
{
	vsnprintf(a->out->reason, sizeof(a->out->reason), fmt, ap);
	pl_text_clean_inplace(a->out->reason, sizeof(a->out->reason)); /* quotes record text */
	return outcome;
}

#define VERDICT_FN(name, outcome)                                                                  \
	__attribute__((format(printf, 2, 3))) static saga_outcome_t name(apply_t *a,               \
	                                                                 const char *fmt, ...)     \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		saga_outcome_t outcome_ = verdict(a, outcome, fmt, ap);                            \
		va_end(ap);                                                                        \
		return outcome_;                                                                   \
	}
VERDICT_FN(ignore, SAGA_IGNORED)
VERDICT_FN(dead, SAGA_DEAD)
VERDICT_FN(retry_later, SAGA_RETRY_LATER)
VERDICT_FN(note, SAGA_OK) /* OK, with a reason worth logging (compensations, scheduled retry) */

/* ---- outputs ---- */

/* Adds event (stolen) with a deterministic eventId: v5(deliveryId|cause|index). */
static void emit(apply_t *a, int route, json_t *event)
{
	saga_result_t *out = a->out;
	if (out->output_count == SAGA_MAX_OUTPUTS)
		abort(); /* the table never emits more; a new row that does must raise the limit */
	saga_output_t *o = &out->outputs[out->output_count];
	char *name = pl_asprintf("%s|%s|%zu", a->delivery_id, a->cause, out->output_count);
	pl_uuid_v5(SAGA_ID_NS, name, strlen(name), o->event_id);
	pl_free(name);
	put(event, "eventId", json_string(o->event_id));
	put(event, "deliveryId", json_string(a->delivery_id));
	o->topic = routes[route].topic;
	o->schema = routes[route].schema;
	o->event = event;
	out->output_count++;
}

static const char *package_id(const json_t *st)
{
	const char *id = jstr(st, "packageId");
	return id ? id : jstr(json_object_get(st, "packageInfo"), "packageId");
}

/* A DeliveryLifecycle snapshot of the state, with the next version. */
static void lifecycle(apply_t *a, const char *stage)
{
	json_t *st = a->st;
	int64_t version = jint_or(st, "version", 0) + 1;
	put(st, "version", json_integer(version));
	json_t *e = json_object();
	put(e, "stage", json_string(stage));
	put(e, "version", json_integer(version));
	put(e, "time", json_integer(a->now));
	put(e, "causationId", a->timer ? NULL : json_string(a->cause));
	for (size_t i = 0; delivery_keys[i]; i++)
		put(e, delivery_keys[i], copy_of(st, delivery_keys[i]));
	put(e, "packageId", str_or_null(package_id(st)));
	put(e, "droneId", copy_of(st, "droneId"));
	put(e, "pickupEta", copy_of(st, "pickupEta"));
	put(e, "deliveryEta", copy_of(st, "deliveryEta"));
	put(e, "reason", copy_of(st, "reason"));
	emit(a, ROUTE_LIFECYCLE, e);
}

static void create_package(apply_t *a)
{
	const json_t *info = json_object_get(a->st, "packageInfo");
	json_t *e = json_object();
	put(e, "requestedAt", json_integer(a->now));
	put(e, "ownerId", copy_of(a->st, "ownerId"));
	put(e, "packageId", copy_of(info, "packageId"));
	put(e, "size", copy_of(info, "size"));
	put(e, "weight", copy_of(info, "weight"));
	put(e, "tag", copy_of(info, "tag"));
	emit(a, ROUTE_CREATE, e);
}

static void assign_drone(apply_t *a)
{
	json_t *st = a->st;
	const json_t *info = json_object_get(st, "packageInfo");
	int64_t attempt = jint_or(st, "assignAttempts", 0) + 1;
	put(st, "assignAttempts", json_integer(attempt));
	if (!json_is_integer(json_object_get(st, "firstAssignAt")))
		put(st, "firstAssignAt", json_integer(a->now));
	put(st, "nextAssignAt", NULL);
	json_t *e = json_object();
	put(e, "attempt", json_integer(attempt));
	put(e, "requestedAt", json_integer(a->now));
	put(e, "ownerId", copy_of(st, "ownerId"));
	put(e, "packageId", str_or_null(package_id(st)));
	put(e, "packageSize", copy_of(info, "size"));
	put(e, "packageWeight", copy_of(info, "weight"));
	put(e, "pickup", copy_of(st, "pickup"));
	put(e, "dropoff", copy_of(st, "dropoff"));
	put(e, "pickupTime", copy_of(st, "pickupTime"));
	put(e, "expedited", copy_of(st, "expedited"));
	emit(a, ROUTE_ASSIGN, e);
}

/* drone_id NULL = "whatever the scheduler claimed for this delivery". */
static void release_drone(apply_t *a, const char *drone_id, const char *reason)
{
	json_t *e = json_object();
	put(e, "droneId", str_or_null(drone_id));
	put(e, "reason", json_string(reason));
	put(e, "requestedAt", json_integer(a->now));
	emit(a, ROUTE_RELEASE, e);
}

/* ---- state edits ---- */

static void set_status(apply_t *a, saga_status_t status)
{
	put(a->st, "status", json_string(status_names[status]));
	put(a->st, "finished", json_boolean(saga_status_finished(status)));
	if (saga_status_finished(status))
		put(a->st, "nextAssignAt", NULL);
}

/* Flight time between two GeoPoints at the configured speed; -1 when unknown. */
static int64_t leg_ms(const saga_opts_t *opts, const json_t *p1, const json_t *p2)
{
	if (opts->drone_speed_mps <= 0 || !is_point(p1) || !is_point(p2))
		return -1;
	double m = pl_geo_distance_m(json_number_value(json_object_get(p1, "latitude")),
	                             json_number_value(json_object_get(p1, "longitude")),
	                             json_number_value(json_object_get(p2, "latitude")),
	                             json_number_value(json_object_get(p2, "longitude")));
	return (int64_t)(m / opts->drone_speed_mps * 1000.0 + 0.5);
}

/* ETAs of a flight starting at start from `from` (a GeoPoint; NULL = at the pickup already):
 * straight to the pickup, then straight to the dropoff, at opts->drone_speed_mps. */
static void plan_etas(apply_t *a, int64_t start, const json_t *from)
{
	const json_t *pickup = json_object_get(a->st, "pickup");
	int64_t to_pickup = from ? leg_ms(a->opts, from, pickup) : 0;
	int64_t to_dropoff = leg_ms(a->opts, pickup, json_object_get(a->st, "dropoff"));
	put(a->st, "pickupEta", to_pickup < 0 ? NULL : json_integer(start + to_pickup));
	put(a->st, "deliveryEta",
	    to_pickup < 0 || to_dropoff < 0 ? NULL : json_integer(start + to_pickup + to_dropoff));
}

/* Retry delay before attempt+1: min_ms doubled per attempt, capped, plus a jitter of up to 20%
 * derived from (deliveryId, attempt) — deterministic, yet deliveries refused together do not
 * retry together. */
static int64_t backoff_ms(const saga_opts_t *opts, const char *delivery_id, int64_t attempt)
{
	int64_t b = opts->assign_backoff_min_ms > 0 ? opts->assign_backoff_min_ms : 1000;
	int64_t max = opts->assign_backoff_max_ms > b ? opts->assign_backoff_max_ms : b;
	for (int64_t i = 1; i < attempt && b < max; i++)
		b *= 2;
	if (b > max)
		b = max;
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const char *p = delivery_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ (uint64_t)attempt) * 1099511628211ULL;
	return b + (int64_t)(h % (uint64_t)(b / 5 + 1));
}

static int64_t assign_deadline(const json_t *st, const saga_opts_t *opts)
{
	int64_t first;
	if (!jint(st, "firstAssignAt", &first))
		return SAGA_NEVER;
	return first + opts->assign_timeout_ms;
}

static saga_outcome_t complete(apply_t *a)
{
	set_status(a, SAGA_COMPLETED);
	lifecycle(a, "Completed");
	release_drone(a, jstr(a->st, "droneId"), "completed");
	return SAGA_OK;
}

/* Ends the saga Failed with reason. release: the saga may hold a drone (AssignDrone was sent). */
static saga_outcome_t fail(apply_t *a, const char *reason, bool release)
{
	put(a->st, "reason", json_string(reason));
	set_status(a, SAGA_FAILED);
	lifecycle(a, "Failed");
	if (release)
		release_drone(a, jstr(a->st, "droneId"), "failed");
	return SAGA_OK;
}

/* ---- handlers: one per input, each a column of the table; s == SAGA_STATUS__COUNT means no
 * saga is known. ---- */

#define UNKNOWN SAGA_STATUS__COUNT

static bool is_finished(saga_status_t s)
{
	return s != UNKNOWN && saga_status_finished(s);
}

static saga_outcome_t on_requested(apply_t *a, saga_status_t s)
{
	static const char *const required[] = {
	    "ownerId",    "pickupLocation",       "dropOffLocation",
	    "pickupTime", "confirmationRequired", NULL};
	const json_t *in = a->in;
	if (s != UNKNOWN)
		return ignore(a, "delivery already exists (%s)", status_names[s]);
	for (size_t i = 0; required[i]; i++)
		if (!json_is_string(json_object_get(in, required[i])) &&
		    !json_is_integer(json_object_get(in, required[i])))
			return dead(a, "DeliveryRequested: missing %s", required[i]);
	const json_t *info = json_object_get(in, "packageInfo");
	if (!is_point(json_object_get(in, "pickup")) || !is_point(json_object_get(in, "dropoff")))
		return dead(a, "DeliveryRequested: pickup and dropoff must be points");
	if (!jstr(info, "packageId") || !jstr(info, "size") ||
	    !json_is_number(json_object_get(info, "weight")))
		return dead(a, "DeliveryRequested: packageInfo needs packageId, size and weight");
	json_t *st = a->st = json_object();
	put(st, "deliveryId", json_string(a->delivery_id));
	put(st, "version", json_integer(0));
	put(st, "createdAt", json_integer(a->now));
	for (size_t i = 0; delivery_keys[i]; i++)
		put(st, delivery_keys[i], copy_of(in, delivery_keys[i]));
	if (!json_is_integer(json_object_get(st, "requestedAt")))
		put(st, "requestedAt", json_integer(a->now));
	put(st, "expedited", json_boolean(json_is_true(json_object_get(in, "expedited"))));
	put(st, "packageInfo", json_deep_copy(info));
	static const char *const none[] = {
	    "packageId",   "droneId",       "dronePosition", "assignedAt", "pickupEta",
	    "deliveryEta", "firstAssignAt", "nextAssignAt",  "reason",     NULL};
	for (size_t i = 0; none[i]; i++)
		put(st, none[i], NULL);
	put(st, "assignAttempts", json_integer(0));
	put(st, "seenEventIds", json_array());
	put(st, "outbox", json_array());
	set_status(a, SAGA_AWAITING_PACKAGE);
	lifecycle(a, "Created");
	create_package(a);
	return SAGA_OK;
}

static saga_outcome_t on_reschedule(apply_t *a, saga_status_t s)
{
	static const char *const fields[] = {
	    "pickupLocation", "pickup", "dropOffLocation", "dropoff", "pickupTime",
	    "deadline",       NULL};
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s: nothing to reschedule", status_names[s]);
	if (s == SAGA_HEADED_TO_DROPOFF || s == SAGA_AWAITING_CONFIRMATION)
		return ignore(a,
		              "package already picked up: a reschedule applies only before pickup");
	bool changed = false;
	for (size_t i = 0; fields[i]; i++) {
		json_t *v = json_object_get(a->in, fields[i]);
		if (!v || json_is_null(v) || json_equal(v, json_object_get(a->st, fields[i])))
			continue;
		bool point = strcmp(fields[i], "pickup") == 0 || strcmp(fields[i], "dropoff") == 0;
		if ((point && !is_point(v)) ||
		    (!point && !json_is_string(v) && !json_is_integer(v)))
			return dead(a, "DeliveryRescheduleRequested: bad %s", fields[i]);
		put(a->st, fields[i], json_deep_copy(v));
		changed = true;
	}
	if (!changed)
		return ignore(a, "reschedule changes nothing");
	/* A reschedule past the ingress (another producer) or one that moved only one end: the
	 * drone must still be able to fly it (area.h), else the delivery keeps its points. */
	const json_t *p = json_object_get(a->st, "pickup"), *d = json_object_get(a->st, "dropoff");
	char why[200];
	if (a->opts->area && is_point(p) && is_point(d) &&
	    pl_area_check(a->opts->area, json_number_value(json_object_get(p, "latitude")),
	                  json_number_value(json_object_get(p, "longitude")),
	                  json_number_value(json_object_get(d, "latitude")),
	                  json_number_value(json_object_get(d, "longitude")), why,
	                  sizeof(why)) != PL_AREA_OK)
		return ignore(a, "reschedule refused, the delivery keeps its points: %s", why);
	if (s == SAGA_HEADED_TO_PICKUP)
		plan_etas(a, jint_or(a->st, "assignedAt", a->now),
		          json_object_get(a->st, "dronePosition"));
	lifecycle(a, "Rescheduled");
	return SAGA_OK;
}

static saga_outcome_t on_cancel(apply_t *a, saga_status_t s)
{
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s: cancel has nothing to undo",
		              status_names[s]);
	put(a->st, "reason", json_string("cancelled by the client"));
	set_status(a, SAGA_CANCELLED);
	lifecycle(a, "Cancelled");
	/* From AwaitingDrone on an AssignDrone was sent: release whatever it claimed. */
	if (s != SAGA_AWAITING_PACKAGE)
		release_drone(a, jstr(a->st, "droneId"), "cancelled");
	return SAGA_OK;
}

static saga_outcome_t on_confirmed(apply_t *a, saga_status_t s)
{
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s", status_names[s]);
	if (s == SAGA_AWAITING_PACKAGE)
		return dead(a, "confirmation before a drone was requested");
	if (s == SAGA_AWAITING_DRONE)
		return retry_later(a, "confirmation before the drone assignment was applied");
	return complete(a);
}

static saga_outcome_t on_package_created(apply_t *a, saga_status_t s)
{
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s: package not used", status_names[s]);
	if (s != SAGA_AWAITING_PACKAGE)
		return ignore(a, "stale: package step already done (%s)", status_names[s]);
	const char *id = jstr(a->in, "packageId");
	put(a->st, "packageId", json_string(id ? id : package_id(a->st)));
	set_status(a, SAGA_AWAITING_DRONE);
	assign_drone(a);
	return SAGA_OK;
}

static saga_outcome_t on_package_rejected(apply_t *a, saga_status_t s)
{
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s", status_names[s]);
	if (s != SAGA_AWAITING_PACKAGE)
		return ignore(a, "stale: package step already done (%s)", status_names[s]);
	const char *why = jstr(a->in, "reason");
	char reason[200];
	snprintf(reason, sizeof(reason), "package rejected: %s", why ? why : "no reason given");
	pl_text_clean_inplace(reason, sizeof(reason)); /* a cut may split a character */
	return fail(a, reason, false);
}

static saga_outcome_t on_drone_assigned(apply_t *a, saga_status_t s)
{
	const char *drone = jstr(a->in, "droneId");
	if (!drone)
		return dead(a, "DroneAssigned: missing droneId");
	if (s == SAGA_AWAITING_DRONE) {
		const json_t *pos = json_object_get(a->in, "position");
		int64_t at = jint_or(a->in, "assignedAt", a->now);
		put(a->st, "droneId", json_string(drone));
		put(a->st, "dronePosition", is_point(pos) ? json_deep_copy(pos) : NULL);
		put(a->st, "assignedAt", json_integer(at));
		put(a->st, "nextAssignAt", NULL);
		plan_etas(a, at, is_point(pos) ? pos : NULL);
		set_status(a, SAGA_HEADED_TO_PICKUP);
		lifecycle(a, "Scheduled");
		lifecycle(a, "HeadedToPickup"); /* the drone departs as soon as it is assigned */
		return SAGA_OK;
	}
	const char *own = s == UNKNOWN ? NULL : jstr(a->st, "droneId");
	if (!is_finished(s) && own && strcmp(own, drone) == 0)
		return ignore(a, "drone %s already assigned", drone);
	/* A drone the saga cannot use (no saga, finished, before the package step, or a second
	 * drone): release it so it is never held. ReleaseDrone is idempotent at the scheduler. */
	release_drone(a, drone, "compensation");
	return note(a, "drone %s not used by the saga (%s): released", drone,
	            s == UNKNOWN ? "unknown delivery" : status_names[s]);
}

static saga_outcome_t on_drone_unavailable(apply_t *a, saga_status_t s)
{
	int64_t attempt, current;
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s", status_names[s]);
	if (s != SAGA_AWAITING_DRONE)
		return ignore(a, "stale: drone step already done (%s)", status_names[s]);
	if (!jint(a->in, "attempt", &attempt))
		return dead(a, "DroneUnavailable: missing attempt");
	current = jint_or(a->st, "assignAttempts", 0);
	if (attempt < current)
		return ignore(a, "stale: answer to attempt %lld, attempt %lld is out",
		              (long long)attempt, (long long)current);
	if (json_is_true(json_object_get(a->in, "permanent"))) {
		/* the scheduler will not fly it (service area, drone range, the owner's
		 * in-flight limit): no retry */
		const char *why = jstr(a->in, "reason");
		char reason[400];
		snprintf(reason, sizeof(reason), "drone assignment refused: %s",
		         why && *why ? why : "no reason given");
		return fail(a, reason, true);
	}
	if (json_is_integer(json_object_get(a->st, "nextAssignAt")))
		return ignore(a, "retry already scheduled");
	int64_t deadline = assign_deadline(a->st, a->opts);
	if (a->now >= deadline) {
		char reason[160];
		snprintf(reason, sizeof(reason), "no drone available within %llds (%lld attempts)",
		         (long long)(a->opts->assign_timeout_ms / 1000), (long long)current);
		return fail(a, reason, true);
	}
	int64_t next = a->now + backoff_ms(a->opts, a->delivery_id, current);
	put(a->st, "nextAssignAt", json_integer(next < deadline ? next : deadline));
	return note(a, "no drone for attempt %lld: retry due in %lld ms", (long long)current,
	            (long long)((next < deadline ? next : deadline) - a->now));
}

static saga_outcome_t on_drone_released(apply_t *a, saga_status_t s)
{
	(void)s;
	return ignore(a, "acknowledgement of a ReleaseDrone: nothing to do");
}

static saga_outcome_t arrive_dropoff(apply_t *a, int64_t t)
{
	put(a->st, "deliveryEta", json_integer(t));
	const char *conf = jstr(a->st, "confirmationRequired");
	if (!conf || strcmp(conf, "None") == 0)
		return complete(a);
	set_status(a, SAGA_AWAITING_CONFIRMATION);
	return SAGA_OK;
}

static saga_outcome_t on_drone_arrived(apply_t *a, saga_status_t s)
{
	const char *phase = jstr(a->in, "phase");
	const char *drone = jstr(a->in, "droneId");
	bool at_pickup = phase && strcmp(phase, "AtPickup") == 0;
	if (!drone || !phase || (!at_pickup && strcmp(phase, "AtDropoff") != 0))
		return dead(a, "DroneArrived: needs droneId and phase AtPickup or AtDropoff");
	if (s == UNKNOWN)
		return dead(a, "no saga for delivery %s", a->delivery_id);
	if (is_finished(s))
		return ignore(a, "delivery already %s", status_names[s]);
	if (s == SAGA_AWAITING_PACKAGE || s == SAGA_AWAITING_DRONE)
		return dead(a, "drone arrival %s before any drone was assigned", phase);
	const char *own = jstr(a->st, "droneId");
	if (!own || strcmp(own, drone) != 0)
		return ignore(a, "drone %s is not the saga's drone", drone);
	int64_t t = jint_or(a->in, "time", a->now);
	if (s == SAGA_AWAITING_CONFIRMATION || (at_pickup && s == SAGA_HEADED_TO_DROPOFF))
		return ignore(a, "stale: drone already %s", phase);
	if (s == SAGA_HEADED_TO_PICKUP) {
		/* AtDropoff here means the AtPickup report was lost: the package is on board. */
		if (at_pickup)
			plan_etas(a, t, NULL);
		set_status(a, SAGA_HEADED_TO_DROPOFF);
		lifecycle(a, "HeadedToDropoff");
	}
	return at_pickup ? SAGA_OK : arrive_dropoff(a, t);
}

static saga_outcome_t on_timer(apply_t *a, saga_status_t s)
{
	if (s != SAGA_AWAITING_DRONE)
		return ignore(a, "nothing due");
	int64_t deadline = assign_deadline(a->st, a->opts);
	int64_t attempts = jint_or(a->st, "assignAttempts", 0), next;
	if (a->now >= deadline) {
		char reason[160];
		snprintf(a->timer_cause, sizeof(a->timer_cause), "timer/deadline");
		snprintf(reason, sizeof(reason), "no drone available within %llds (%lld attempts)",
		         (long long)(a->opts->assign_timeout_ms / 1000), (long long)attempts);
		return fail(a, reason, true);
	}
	if (!jint(a->st, "nextAssignAt", &next) || a->now < next)
		return ignore(a, "nothing due");
	snprintf(a->timer_cause, sizeof(a->timer_cause), "timer/assign/%lld",
	         (long long)attempts + 1);
	assign_drone(a);
	return SAGA_OK;
}

typedef saga_outcome_t (*handler_fn)(apply_t *a, saga_status_t s);
static const handler_fn handlers[IN__COUNT] = {
    on_requested,       on_reschedule,       on_cancel,         on_confirmed,
    on_package_created, on_package_rejected, on_drone_assigned, on_drone_unavailable,
    on_drone_released,  on_drone_arrived,    on_timer};

/* ---- dedup and outbox ---- */

static bool seen(const json_t *state, const char *event_id)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(state, "seenEventIds"), i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), event_id) == 0)
			return true;
	}
	return false;
}

static json_t *array_at(json_t *obj, const char *key)
{
	json_t *arr = json_object_get(obj, key);
	if (!json_is_array(arr)) {
		arr = json_array();
		json_object_set_new(obj, key, arr);
	}
	return arr;
}

static void append_bounded(json_t *arr, json_t *value, size_t max)
{
	json_array_append_new(arr, value);
	while (json_array_size(arr) > max)
		json_array_remove(arr, 0);
}

size_t saga_outbox(const json_t *state, const char *cause, saga_output_t *out, size_t max)
{
	size_t i, n = 0;
	json_t *entry;
	json_array_foreach(json_object_get(state, "outbox"), i, entry)
	{
		const char *c = jstr(entry, "causeId"), *schema = jstr(entry, "schema");
		const char *id = jstr(entry, "eventId"), *payload = jstr(entry, "payload");
		if (!c || !schema || !id || !payload || strcmp(c, cause) != 0 || strlen(id) != 36 ||
		    n == max)
			continue;
		for (int r = 0; r < ROUTE_COUNT; r++) {
			if (strcmp(routes[r].schema, schema) != 0)
				continue;
			json_t *event = json_loads(payload, 0, NULL);
			if (!event)
				break;
			saga_output_t *o = &out[n++];
			o->topic = routes[r].topic;
			o->schema = routes[r].schema;
			memcpy(o->event_id, id, 37);
			o->event = event;
			break;
		}
	}
	return n;
}

/* The input was applied before: no new effects, but re-send what it caused (still in the
 * outbox), in case the state was written and those outputs were lost in a crash. */
static saga_outcome_t duplicate(apply_t *a, const json_t *state)
{
	saga_result_t *out = a->out;
	snprintf(out->reason, sizeof(out->reason), "eventId %s already applied", a->cause);
	out->resend_count = saga_outbox(state, a->cause, out->resend, SAGA_OUTBOX_MAX);
	return SAGA_DUPLICATE;
}

static void record(apply_t *a)
{
	json_t *st = a->st;
	put(st, "eventId", json_string(a->cause));
	put(st, "updatedAt", json_integer(a->now));
	if (!a->timer)
		append_bounded(array_at(st, "seenEventIds"), json_string(a->cause), SAGA_SEEN_MAX);
	json_t *outbox = array_at(st, "outbox");
	for (size_t i = 0; i < a->out->output_count; i++) {
		const saga_output_t *o = &a->out->outputs[i];
		char *payload = pl_json_text(o->event, PL_JSONW_SORTED, NULL);
		append_bounded(outbox,
		               json_pack("{s:s, s:s, s:s, s:s, s:s}", "causeId", a->cause, "topic",
		                         o->topic, "schema", o->schema, "eventId", o->event_id,
		                         "payload", payload ? payload : "{}"),
		               SAGA_OUTBOX_MAX);
		pl_free(payload);
	}
}

/* ---- public ---- */

static int input_parse(const char *name)
{
	for (int i = 0; name && i < IN__COUNT; i++)
		if (strcmp(input_names[i], name) == 0)
			return i;
	return -1;
}

/* Checks the input against the saga (type, ids, duplicate) and runs its handler. */
static saga_outcome_t dispatch(apply_t *a, const json_t *state, const char *input_type)
{
	const json_t *input = a->in;
	int in = input_parse(input_type);
	saga_status_t s = UNKNOWN;
	if (in < 0)
		return dead(a, "not a workflow input: %s", input_type ? input_type : "(none)");
	if (state) {
		s = saga_status(state);
		if (s == UNKNOWN || !jstr(state, "deliveryId"))
			return dead(a, "saga state unreadable: no status or deliveryId");
	}
	if (in == IN_TIMER) {
		if (!state)
			return ignore(a, "nothing due: no saga");
		a->timer = true;
		a->cause = a->timer_cause;
		a->delivery_id = jstr(state, "deliveryId");
	} else {
		if (!json_is_object(input))
			return dead(a, "%s: not a record", input_type);
		a->cause = jstr(input, "eventId");
		a->delivery_id = jstr(input, "deliveryId");
		if (!a->cause || !*a->cause || !a->delivery_id || !*a->delivery_id)
			return dead(a, "%s: missing eventId or deliveryId", input_type);
		if (state && strcmp(jstr(state, "deliveryId"), a->delivery_id) != 0)
			return dead(a, "deliveryId %s does not match the saga's %s", a->delivery_id,
			            jstr(state, "deliveryId"));
		if (state && seen(state, a->cause))
			return duplicate(a, state);
	}
	if (state)
		a->st = json_deep_copy(state);
	return handlers[in](a, s);
}

void saga_apply(const json_t *state, const char *input_type, const json_t *input, int64_t now_ms,
                const saga_opts_t *opts, saga_result_t *out)
{
	memset(out, 0, sizeof(*out));
	apply_t a = {.in = input, .now = now_ms, .opts = opts, .out = out};
	out->outcome = dispatch(&a, state, input_type);
	if (out->outcome == SAGA_OK && a.st) {
		record(&a);
		out->state = a.st;
	} else {
		json_decref(a.st);
	}
	if (out->outcome != SAGA_OK) {
		for (size_t i = 0; i < out->output_count; i++)
			json_decref(out->outputs[i].event);
		out->output_count = 0;
	}
}

void saga_result_clear(saga_result_t *out)
{
	if (!out)
		return;
	json_decref(out->state);
	for (size_t i = 0; i < out->output_count; i++)
		json_decref(out->outputs[i].event);
	for (size_t i = 0; i < out->resend_count; i++)
		json_decref(out->resend[i].event);
	memset(out, 0, sizeof(*out));
}

json_t *saga_settled_state(const char *delivery_id, saga_status_t status)
{
	if (!delivery_id || !saga_status_finished(status))
		return NULL;
	return json_pack("{s:s, s:s, s:b, s:[], s:[]}", "deliveryId", delivery_id, "status",
	                 status_names[status], "finished", 1, "seenEventIds", "outbox");
}

int64_t saga_next_due_ms(const json_t *state, const saga_opts_t *opts)
{
	int64_t next;
	if (saga_status(state) != SAGA_AWAITING_DRONE)
		return SAGA_NEVER;
	int64_t deadline = assign_deadline(state, opts);
	if (jint(state, "nextAssignAt", &next) && next < deadline)
		return next;
	return deadline;
}

saga_status_t saga_status(const json_t *state)
{
	const char *name = jstr(state, "status");
	for (int i = 0; name && i < SAGA_STATUS__COUNT; i++)
		if (strcmp(status_names[i], name) == 0)
			return (saga_status_t)i;
	return SAGA_STATUS__COUNT;
}

bool saga_status_finished(saga_status_t status)
{
	return status == SAGA_COMPLETED || status == SAGA_CANCELLED || status == SAGA_FAILED;
}

const char *saga_status_name(saga_status_t status)
{
	return (unsigned)status < SAGA_STATUS__COUNT ? status_names[status] : "Unknown";
}

const char *saga_outcome_name(saga_outcome_t outcome)
{
	static const char *const names[] = {"ok", "duplicate", "ignored", "retry_later", "dead"};
	return (unsigned)outcome < sizeof(names) / sizeof(names[0]) ? names[outcome] : "unknown";
}
