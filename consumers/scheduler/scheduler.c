/* scheduler.c — drone command handler and assignment read routes (see scheduler.h).
 * Replies carry a deterministic eventId (UUID v5 of the command's eventId and the reply type):
 * a redelivered command gets the same reply (same drone, fleet.h I4), which the saga dedupes.
 * Reads need credentials when the service has any (auth.h): an owner reads only the
 * assignments of its own deliveries (another owner's answers 404 as a missing one) and its own
 * utilization (else 403 naming ownerId); admin reads all. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area.h"
#include "auth.h"
#include "fleet.h"
#include "hash.h"
#include "httpq.h"
#include "log.h"
#include "mem.h"
#include "quota.h"
#include "scheduler.h"
#include "timefmt.h"

#define REPLY_NS     "8c3f6a1e-0d2b-4e5f-9a7c-3b1d5e7f9a20"
#define TOPIC_EVENTS "dronedelivery.drone.events"

const pl_cfg_opt_t scheduler_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8083", 0, 65535, .help = "drone assignment read API port"},
    {"DP_MONGO_URI", PL_CFG_STR, "mongodb://127.0.0.1:27017/", 1, 4096, .secret = true,
     .help = "MongoDB-API server (MongoDB or FerretDB)"},
    {"DP_MONGO_TIMEOUT_MS", PL_CFG_INT, "10000", 100, 600000,
     .help = "MongoDB-API socket timeout: a call on a server that stops answering fails after "
             "it (retried; /readyz answers 503)"},
    {"DP_MONGO_CONNECT_TIMEOUT_MS", PL_CFG_INT, "2000", 100, 600000,
     .help = "MongoDB-API connect and server selection timeout: a call finding no server "
             "fails after it"},
    {"DP_SCHEDULER_DB", PL_CFG_STR, "dronescheduler", 1, 63, .help = "database of the fleet"},
    {"DP_FLEET_SIZE", PL_CFG_INT, "1000", 1, FLEET_SIZE_MAX,
     .help = "drones seeded at start (drone-0001..); an existing fleet is kept"},
    {"DP_OWNER_MAX_IN_FLIGHT", PL_CFG_INT, QUOTA_DEFAULT_MAX, 0, QUOTA_MAX,
     .help = "deliveries of one owner that may hold drones at once; an AssignDrone over it is "
             "refused (Failed, permanent) and claims nothing; 0 = no limit"},
    {NULL},
};

const char *const scheduler_topics[] = {"dronedelivery.drone.commands", NULL};

/* Lanes whose owners hash to one stripe take turns counting and claiming (owner_lock), so the
 * lanes of one process cannot together exceed the owner limit. */
#define OWNER_STRIPES 64

/* The handler runs on several stage lanes at once (main.c: concurrent); seeded is set once,
 * under seed_lock, by whichever lane seeds first; owner_lock[i] guards the count-then-claim of
 * the owners of stripe i (several processes sharing a fleet may still overshoot by the AssignDrones
 * they count at the same moment). */
typedef struct scheduler_svc {
	fleet_t *fleet;
	pl_area_t area; /* read-only after init */
	pl_metric_family_t *m_refused;
	const pl_auth_t *auth; /* borrowed from the service */
	unsigned fleet_size;
	int64_t owner_max; /* DP_OWNER_MAX_IN_FLIGHT, 0 = no limit */
	pthread_mutex_t owner_lock[OWNER_STRIPES];
	pthread_mutex_t seed_lock;
	atomic_bool seeded;
} scheduler_svc_t;

static bool seed(scheduler_svc_t *svc)
{
	unsigned inserted = 0;
	bool ok = true;
	pthread_mutex_lock(&svc->seed_lock);
	if (atomic_load(&svc->seeded))
		goto out;
	if (fleet_ensure_indexes(svc->fleet) != PL_OK ||
	    fleet_seed(svc->fleet, svc->fleet_size, &inserted) != PL_OK) {
		pl_log(PL_LOG_WARN, "fleet_not_seeded", NULL, "%s (will retry)", fleet_errmsg());
		ok = false;
		goto out;
	}
	pl_log(PL_LOG_INFO, "fleet_seeded",
	       PL_LOG_FIELDS(PL_LI("size", svc->fleet_size), PL_LI("inserted", inserted)),
	       "fleet of %u drones ready", svc->fleet_size);
	atomic_store(&svc->seeded, true);
out:
	pthread_mutex_unlock(&svc->seed_lock);
	return ok;
}

void *scheduler_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                     bool *config_error)
{
	pl_area_t area;
	if (pl_area_from_cfg(env->cfg, &area, errstr, errstr_size) != PL_OK) {
		*config_error = true;
		return NULL;
	}
	fleet_t *fleet = fleet_new(
	    pl_cfg_str(env->cfg, "DP_MONGO_URI"), pl_cfg_str(env->cfg, "DP_SCHEDULER_DB"),
	    (int)pl_cfg_int(env->cfg, "DP_MONGO_TIMEOUT_MS"),
	    (int)pl_cfg_int(env->cfg, "DP_MONGO_CONNECT_TIMEOUT_MS"), errstr, errstr_size);
	if (!fleet) {
		*config_error = true;
		return NULL;
	}
	scheduler_svc_t *svc = pl_calloc(1, sizeof(*svc));
	svc->fleet = fleet;
	svc->area = area;
	svc->m_refused = pl_metrics_family(
	    pl_metrics_default(), "dronepipe_scheduler_assignments_refused_total",
	    "AssignDrone commands refused (no drone claimed): by the service-area rule or the "
	    "owner's in-flight limit (fault owner_quota)",
	    PL_METRIC_COUNTER, "fault", NULL, 0);
	svc->auth = env->auth;
	svc->fleet_size = (unsigned)pl_cfg_int(env->cfg, "DP_FLEET_SIZE");
	svc->owner_max = pl_cfg_int(env->cfg, "DP_OWNER_MAX_IN_FLIGHT");
	for (size_t i = 0; i < OWNER_STRIPES; i++)
		pthread_mutex_init(&svc->owner_lock[i], NULL);
	pthread_mutex_init(&svc->seed_lock, NULL);
	seed(svc); /* a server down now: the handler seeds before its first command */
	return svc;
}

void scheduler_fini(void *state)
{
	scheduler_svc_t *svc = state;
	fleet_destroy(svc->fleet);
	pthread_mutex_destroy(&svc->seed_lock);
	for (size_t i = 0; i < OWNER_STRIPES; i++)
		pthread_mutex_destroy(&svc->owner_lock[i]);
	pl_free(svc);
}

static void reply_id(const char *cmd_event_id, const char *type, char out[37])
{
	char name[128];
	int n = snprintf(name, sizeof(name), "%s/%s", cmd_event_id, type);
	pl_uuid_v5(REPLY_NS, name, (size_t)n, out);
}

static bool point_of(const json_t *ev, const char *field, fleet_point_t *out)
{
	const json_t *p = json_object_get(ev, field);
	out->lat = json_number_value(json_object_get(p, "latitude"));
	out->lon = json_number_value(json_object_get(p, "longitude"));
	return json_is_object(p) && isfinite(out->lat) && isfinite(out->lon);
}

static json_t *geo(fleet_point_t p)
{
	return json_pack("{s:f, s:f, s:f}", "latitude", p.lat, "longitude", p.lon, "altitude", 0.0);
}

/* The refusal metric's label of an area fault. */
static const char *area_fault_label(pl_area_fault_t fault)
{
	static const char *const faults[] = {"", "pickup_outside", "dropoff_outside",
	                                     "route_too_long"};
	return faults[fault];
}

/* Answers an AssignDrone the fleet can never fly (area.h), or one over its owner's in-flight
 * limit (quota.h), with a permanent DroneUnavailable carrying the reason, before anything is
 * claimed: the saga fails with it. why must be valid UTF-8 (outside text through pl_text_clean). */
static pl_stage_outcome_t refuse(pl_stage_ctx_t *ctx, scheduler_svc_t *svc, const char *fault,
                                 const char *why, const char *cmd_id, const char *delivery_id,
                                 json_int_t attempt)
{
	const char *l[] = {fault};
	pl_metric_inc(pl_metric_get(svc->m_refused, l));
	pl_log(PL_LOG_WARN, "assignment_refused",
	       PL_LOG_FIELDS(PL_LS("delivery_id", delivery_id), PL_LS("fault", fault)), "%s", why);
	char id[37];
	reply_id(cmd_id, "DroneUnavailable", id);
	json_t *reply =
	    json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:b}", "eventId", id, "deliveryId",
	              delivery_id, "causationId", cmd_id, "attempt", attempt, "reason", why, "time",
	              (json_int_t)pl_now_ms(), "permanent", 1);
	pl_err_t pe =
	    pl_stage_produce_event(ctx, TOPIC_EVENTS, delivery_id, "DroneUnavailable", reply, id);
	json_decref(reply);
	return pe == PL_OK ? PL_STAGE_OK : PL_STAGE_RETRY;
}

/* The owner's in-flight limit for a delivery about to be assigned: *refused (with the reason in
 * why) when the owner already has svc->owner_max deliveries holding drones and this delivery is
 * not one of them, nor decided before (a repeated AssignDrone gets what it has: fleet.h I4).
 * The count comes first, one command; only an owner at the limit costs the second look. */
static pl_err_t owner_over_limit(scheduler_svc_t *svc, const char *owner_id,
                                 const char *delivery_id, char *why, size_t why_size, bool *refused)
{
	size_t n = 0;
	bool started = false;
	*refused = false;
	pl_err_t e = fleet_owner_in_flight(svc->fleet, owner_id, &n);
	if (e != PL_OK || !quota_exceeded(svc->owner_max, n))
		return e;
	e = fleet_delivery_started(svc->fleet, delivery_id, &started);
	if (e == PL_OK && !started) {
		*refused = true;
		quota_reason(why, why_size, owner_id, n, svc->owner_max);
	}
	return e;
}

static pl_stage_outcome_t on_assign(pl_stage_ctx_t *ctx, scheduler_svc_t *svc, const json_t *ev,
                                    const char *cmd_id, const char *delivery_id)
{
	fleet_point_t pickup, dropoff;
	if (!point_of(ev, "pickup", &pickup) || !point_of(ev, "dropoff", &dropoff)) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "AssignDrone without valid pickup/dropoff");
		return PL_STAGE_DEAD;
	}
	json_int_t attempt = json_integer_value(json_object_get(ev, "attempt"));
	char why[320];
	pl_area_fault_t fault = pl_area_check(&svc->area, pickup.lat, pickup.lon, dropoff.lat,
	                                      dropoff.lon, why, sizeof(why));
	if (fault != PL_AREA_OK)
		return refuse(ctx, svc, area_fault_label(fault), why, cmd_id, delivery_id, attempt);
	/* the drone's way to the pickup must fit what the route leaves of the range */
	double reach_m = svc->area.range_m - fleet_route_m(pickup, pickup, dropoff);
	const char *owner_id = json_string_value(json_object_get(ev, "ownerId"));
	pthread_mutex_t *lock = NULL;
	if (svc->owner_max > 0 && owner_id) {
		lock = &svc->owner_lock[pl_hash_str64(owner_id) % OWNER_STRIPES];
		pthread_mutex_lock(lock);
		bool refused = false;
		pl_err_t qe =
		    owner_over_limit(svc, owner_id, delivery_id, why, sizeof(why), &refused);
		if (qe == PL_ERR_TRANSIENT || refused) {
			pthread_mutex_unlock(lock);
			if (refused)
				return refuse(ctx, svc, "owner_quota", why, cmd_id, delivery_id,
				              attempt);
			pl_stage_set_reason(ctx, qe, "fleet store: %s", fleet_errmsg());
			return PL_STAGE_RETRY;
		}
		/* PL_ERR_INVALID (bad ids): fleet_assign_within below refuses them as before */
	}
	fleet_assignment_t a;
	pl_err_t e = fleet_assign_within(svc->fleet, delivery_id, owner_id, pickup, dropoff,
	                                 reach_m, pl_now_ms(), &a);
	if (lock)
		pthread_mutex_unlock(lock);
	if (e == PL_ERR_TRANSIENT) {
		pl_stage_set_reason(ctx, e, "fleet store: %s", fleet_errmsg());
		return PL_STAGE_RETRY;
	}
	if (e == PL_ERR_INVALID) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "AssignDrone rejected: %s", fleet_errmsg());
		return PL_STAGE_DEAD;
	}
	char id[37];
	json_t *reply;
	const char *type;
	if (e == PL_OK) {
		type = "DroneAssigned";
		reply_id(cmd_id, type, id);
		reply = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:I, s:o, s:o}", "eventId", id,
		                  "deliveryId", delivery_id, "causationId", cmd_id, "attempt",
		                  attempt, "droneId", a.drone_id, "position", geo(a.position),
		                  "assignedAt", (json_int_t)a.assigned_at_ms, "pickup",
		                  geo(a.pickup), "dropoff", geo(a.dropoff));
	} else {
		type = "DroneUnavailable";
		reply_id(cmd_id, type, id);
		snprintf(why, sizeof(why), "no drone available within %.0f m of the pickup",
		         reach_m);
		reply =
		    json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:b}", "eventId", id, "deliveryId",
		              delivery_id, "causationId", cmd_id, "attempt", attempt, "reason", why,
		              "time", (json_int_t)pl_now_ms(), "permanent", 0);
	}
	pl_err_t pe = pl_stage_produce_event(ctx, TOPIC_EVENTS, delivery_id, type, reply, id);
	json_decref(reply);
	return pe == PL_OK ? PL_STAGE_OK : PL_STAGE_RETRY;
}

static pl_stage_outcome_t on_release(pl_stage_ctx_t *ctx, scheduler_svc_t *svc, const json_t *ev,
                                     const char *cmd_id, const char *delivery_id)
{
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	fleet_assignment_t a;
	pl_err_t e =
	    fleet_release(svc->fleet, delivery_id, reason ? reason : "released", pl_now_ms(), &a);
	if (e == PL_ERR_TRANSIENT) {
		pl_stage_set_reason(ctx, e, "fleet store: %s", fleet_errmsg());
		return PL_STAGE_RETRY;
	}
	if (e != PL_OK) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "ReleaseDrone rejected: %s",
		                    fleet_errmsg());
		return PL_STAGE_DEAD;
	}
	char id[37];
	reply_id(cmd_id, "DroneReleased", id);
	json_t *reply = json_pack(
	    "{s:s, s:s, s:s, s:o, s:I, s:o}", "eventId", id, "deliveryId", delivery_id,
	    "causationId", cmd_id, "droneId", a.drone_id[0] ? json_string(a.drone_id) : json_null(),
	    "releasedAt", (json_int_t)(a.released_at_ms ? a.released_at_ms : pl_now_ms()), "reason",
	    reason ? json_string(reason) : json_null());
	pl_err_t pe =
	    pl_stage_produce_event(ctx, TOPIC_EVENTS, delivery_id, "DroneReleased", reply, id);
	json_decref(reply);
	return pe == PL_OK ? PL_STAGE_OK : PL_STAGE_RETRY;
}

pl_stage_outcome_t scheduler_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                    const json_t *ev, const pl_avro_schema_t *schema, void *state)
{
	(void)record;
	scheduler_svc_t *svc = state;
	if (!atomic_load(&svc->seeded) && !seed(svc)) {
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "fleet not seeded: %s", fleet_errmsg());
		return PL_STAGE_RETRY;
	}
	const char *type = pl_avro_schema_short_name(schema);
	const char *cmd_id = json_string_value(json_object_get(ev, "eventId"));
	const char *delivery_id = json_string_value(json_object_get(ev, "deliveryId"));
	if (strcmp(type, "AssignDrone") == 0)
		return on_assign(ctx, svc, ev, cmd_id, delivery_id);
	if (strcmp(type, "ReleaseDrone") == 0)
		return on_release(ctx, svc, ev, cmd_id, delivery_id);
	pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s is not a drone command", type);
	return PL_STAGE_DEAD;
}

static void on_get(pl_http_req_t *req, void *arg)
{
	scheduler_svc_t *svc = arg;
	const char *id = pl_http_param(req, "deliveryId");
	pl_principal_t p;
	if (!pl_auth_http(svc->auth, req, &p))
		return;
	fleet_assignment_t a;
	pl_err_t e = fleet_get_assignment(svc->fleet, id, &a);
	if (e == PL_OK && !pl_auth_may(&p, a.owner_id[0] ? a.owner_id : NULL))
		e = PL_ERR_NOT_FOUND; /* another owner's delivery: as if there were none */
	if (e == PL_OK) {
		char at[32];
		pl_time_format(a.assigned_at_ms, at);
		pl_httpq_json(req, 200,
		              json_pack("{s:s, s:s, s:s, s:s}", "deliveryId", a.delivery_id,
		                        "droneId", a.drone_id, "assignedAt", at, "status",
		                        a.status));
	} else if (e == PL_ERR_NOT_FOUND || e == PL_ERR_INVALID) {
		char detail[200];
		snprintf(detail, sizeof(detail), "no drone assignment for delivery %.128s", id);
		pl_http_problem(req, 404, detail, NULL);
	} else {
		pl_httpq_unavailable(req, "fleet store", fleet_errmsg());
	}
}

static void on_utilization(pl_http_req_t *req, void *arg)
{
	scheduler_svc_t *svc = arg;
	pl_principal_t p;
	if (!pl_auth_http(svc->auth, req, &p))
		return;
	const char *owner = pl_http_query(req, "ownerId");
	if ((!owner || !*owner) && p.role == PL_ROLE_OWNER)
		owner = p.owner_id; /* an owner's own utilization by default */
	if (!owner || !*owner) {
		pl_http_problem(req, 400, "ownerId is required",
		                "[{\"field\":\"ownerId\",\"reason\":\"is required\"}]");
		return;
	}
	int year, month;
	if (!pl_httpq_year_month(req, &year, &month))
		return;
	if (!pl_auth_http_owner_field(req, &p, "ownerId", owner))
		return;
	fleet_utilization_t u;
	pl_err_t e = fleet_utilization(svc->fleet, owner, year, month, pl_now_ms(), &u);
	if (e == PL_OK)
		pl_httpq_json(req, 200,
		              json_pack("{s:f, s:f}", "traveledMiles", u.traveled_miles,
		                        "assignedHours", u.assigned_hours));
	else if (e == PL_ERR_NOT_FOUND)
		pl_http_problem(req, 404, "no drone assignments for this owner in that month",
		                NULL);
	else if (e == PL_ERR_INVALID)
		pl_http_problem(req, 400, "ownerId is not a valid id",
		                "[{\"field\":\"ownerId\",\"reason\":\"must be a valid id\"}]");
	else
		pl_httpq_unavailable(req, "fleet store", fleet_errmsg());
}

size_t scheduler_routes(void *state, pl_http_route_t *out, size_t max)
{
	const pl_http_route_t routes[] = {
	    {"GET", "/api/dronedeliveries/utilization", on_utilization, state},
	    {"GET", "/api/dronedeliveries/{deliveryId}", on_get, state},
	};
	return pl_http_routes_copy(out, max, routes, sizeof(routes) / sizeof(routes[0]));
}

bool scheduler_ready(void *state, char *reason, size_t reason_size)
{
	scheduler_svc_t *svc = state;
	char why[400];
	if (fleet_ready(svc->fleet, why, sizeof(why)))
		return true;
	snprintf(reason, reason_size, "fleet store: %s", why);
	return false;
}
