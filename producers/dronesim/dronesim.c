/* dronesim.c — the simulator stage (see dronesim.h): input handling, restore from the telemetry
 * log on partition assignment, and the tick that flies, reports telemetry and arrivals.
 * Invariant: tables[p] != NULL iff partition p is assigned and was restored, and then ended[p]
 * != NULL too; a delivery whose flight is over (DONE or STOPPED, or ended before it flew) never
 * flies again while it is remembered (DP_SIM_RESUME_WINDOW_S). A finished flight stays in the
 * table until the next prune, then only its id's hash stays, in ended[p] (ended.h). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ended.h"
#include <time.h>

#include "log.h"
#include "mem.h"
#include "reader.h"
#include "sim.h"
#include "stops.h"
#include "dronesim.h"

const pl_cfg_opt_t dronesim_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8085", 0, 65535, .help = "health and metrics port"},
    {"DP_DRONE_SPEED_MPS", PL_CFG_INT, "15", 1, 200,
     .help = "drone cruise speed in simulated time (the workflow's ETAs use the same value)"},
    {"DP_SIM_TIME_SCALE", PL_CFG_INT, "1", 1, 10000,
     .help = "simulated seconds per wall-clock second (e.g. 60 for demos and tests)"},
    {"DP_TELEMETRY_INTERVAL_MS", PL_CFG_INT, "1000", 10, 60000,
     .help = "wall-clock interval between two telemetry records of a flight"},
    {"DP_SIM_RESUME_WINDOW_S", PL_CFG_INT, "86400", 60, 2592000,
     .help = "history read back on partition assignment; assignments older than this are "
             "not flown"},
    {NULL},
};

const char *const dronesim_topics[] = {DRONESIM_TOPIC_DRONE_EVENTS, DRONESIM_TOPIC_DELIVERY_EVENTS,
                                       NULL};

#define MAX_PARTITIONS     1024
#define TICK_MIN_MS        20
#define ARRIVAL_SEND_MS    5000
#define ARRIVAL_BACKOFF_MS 1000
#define PRUNE_EVERY_MS     60000
#define RESTORE_WAIT_MS    30000

typedef struct ds {
	const pl_cfg_t *cfg;
	const pl_avro_registry_t *registry;
	pl_producer_t *producer;
	double speed_mps, time_scale;
	int64_t interval_ms, window_ms;
	sim_table_t *tables[MAX_PARTITIONS];
	ended_t *ended[MAX_PARTITIONS];
	int64_t next_tick_ms, next_prune_ms, arrivals_blocked_until_ms;
	pl_metric_family_t *m_flights, *m_telemetry, *m_telemetry_failed, *m_arrivals;
} ds_t;

void *dronesim_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error)
{
	const char *needed[] = {SIM_TELEMETRY_SCHEMA, "DroneArrived", NULL};
	for (size_t i = 0; needed[i]; i++) {
		if (!pl_avro_schema_get(env->registry, needed[i])) {
			snprintf(errstr, errstr_size, "schema %s is missing from the build",
			         needed[i]);
			return NULL;
		}
	}
	if (pl_cfg_int(env->cfg, "DP_PARTITIONS") > MAX_PARTITIONS) {
		snprintf(errstr, errstr_size, "DP_PARTITIONS: at most %d for the simulator",
		         MAX_PARTITIONS);
		*config_error = true;
		return NULL;
	}
	ds_t *ds = pl_calloc(1, sizeof(*ds));
	ds->cfg = env->cfg;
	ds->registry = env->registry;
	ds->producer = env->producer;
	ds->speed_mps = (double)pl_cfg_int(env->cfg, "DP_DRONE_SPEED_MPS");
	ds->time_scale = (double)pl_cfg_int(env->cfg, "DP_SIM_TIME_SCALE");
	ds->interval_ms = pl_cfg_int(env->cfg, "DP_TELEMETRY_INTERVAL_MS");
	ds->window_ms = pl_cfg_int(env->cfg, "DP_SIM_RESUME_WINDOW_S") * 1000;
	pl_metrics_t *m = pl_metrics_default();
	ds->m_flights = pl_metrics_family(m, "dronepipe_dronesim_flights_in_progress",
	                                  "Flights being flown", PL_METRIC_GAUGE, "", NULL, 0);
	ds->m_telemetry =
	    pl_metrics_family(m, "dronepipe_dronesim_telemetry_records_total",
	                      "Telemetry records produced", PL_METRIC_COUNTER, "", NULL, 0);
	ds->m_telemetry_failed = pl_metrics_family(
	    m, "dronepipe_dronesim_telemetry_failed_total",
	    "Telemetry records not delivered (skipped or failed)", PL_METRIC_COUNTER, "", NULL, 0);
	ds->m_arrivals = pl_metrics_family(m, "dronepipe_dronesim_arrivals_total",
	                                   "Arrival events produced (acknowledged)",
	                                   PL_METRIC_COUNTER, "phase", NULL, 0);
	return ds;
}

void dronesim_fini(void *arg)
{
	ds_t *ds = arg;
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		sim_table_destroy(ds->tables[p]);
		ended_destroy(ds->ended[p]);
	}
	pl_free(ds);
}

static void count_flights(ds_t *ds)
{
	size_t n = 0;
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		if (!ds->tables[p])
			continue;
		size_t c = 0;
		for (sim_flight_t *f; (f = sim_table_next(ds->tables[p], &c));)
			n += f->state == SIM_FLYING;
	}
	pl_metric_set(pl_metric_get0(ds->m_flights), (double)n);
}

/* ---- producing ------------------------------------------------------------------------------- */

/* Delivery report of a telemetry record, on the producer's thread. opaque is the failure counter
 * (owned by the process-wide metrics registry, so it outlives ds and any pending report). */
static void telemetry_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                           int64_t offset)
{
	(void)partition;
	(void)offset;
	if (err == PL_OK)
		return;
	pl_metric_inc(opaque);
	pl_log(PL_LOG_WARN, "telemetry_failed", PL_LOG_FIELDS(PL_LS("err", pl_err_str(err))), "%s",
	       reason ? reason : "");
}

/* Encodes event with the latest version of schema_name (the schemas were checked at init). */
static pl_err_t encode(ds_t *ds, const char *schema_name, const json_t *event, void **buf,
                       size_t *len)
{
	char err[256];
	pl_err_t e = pl_avro_encode(pl_avro_schema_get(ds->registry, schema_name), event, buf, len,
	                            err, sizeof(err));
	if (e != PL_OK)
		pl_log(PL_LOG_ERROR, "encode_failed", PL_LOG_FIELDS(PL_LS("schema", schema_name)),
		       "%s", err);
	return e;
}

/* Telemetry of the flight now, asynchronously. Telemetry is a sampled stream: a record that
 * cannot be queued is counted and skipped (the next one follows an interval later). */
static void send_telemetry(ds_t *ds, sim_flight_t *f, int64_t now)
{
	char id[37];
	sim_telemetry_id(f->delivery_id, f->seq, id);
	json_t *t = sim_telemetry_json(f, ds->speed_mps * ds->time_scale, now, id);
	void *buf = NULL;
	size_t len = 0;
	f->next_telemetry_ms = now + ds->interval_ms;
	pl_err_t e = encode(ds, SIM_TELEMETRY_SCHEMA, t, &buf, &len);
	json_decref(t);
	if (e == PL_OK) {
		pl_event_meta_t meta = {.event_type = SIM_TELEMETRY_SCHEMA, .event_id = id};
		e = pl_producer_send_event(ds->producer, DRONESIM_TOPIC_TELEMETRY, f->delivery_id,
		                           buf, len, &meta, telemetry_done,
		                           pl_metric_get0(ds->m_telemetry_failed));
	}
	pl_free(buf);
	if (e != PL_OK) {
		pl_metric_inc(pl_metric_get0(ds->m_telemetry_failed));
		return;
	}
	f->seq++;
	pl_metric_inc(pl_metric_get0(ds->m_telemetry));
}

/* DroneArrived, waiting for the acknowledgement (arrivals are rare; the phase may change only
 * once the arrival is durable). */
/* The arrivals of one tick, sent together and awaited once: a flight stays on its point until
 * its arrival is acknowledged (sim_advance reports it again meanwhile), so a restart never loses
 * one, and the tick waits for one round trip, not one per arrival. */
typedef struct arrival {
	int32_t partition;
	char delivery_id[SIM_ID_MAX];
	sim_arrival_t arrival;
	pl_err_t result; /* set by the producer's callback; PL_ERR_TIMEOUT until then */
	struct arrivals *batch;
} arrival_t;

/* Invariant: outstanding = callbacks still to run; once abandoned (the tick stopped waiting),
 * the last callback frees the batch. */
typedef struct arrivals {
	arrival_t *v;
	size_t n, cap;
	pthread_mutex_t lock; /* guards outstanding, abandoned and every v[i].result */
	pthread_cond_t done;
	size_t outstanding;
	bool abandoned;
} arrivals_t;

static arrivals_t *arrivals_new(void)
{
	arrivals_t *b = pl_calloc(1, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->done, NULL);
	return b;
}

static void arrivals_free(arrivals_t *b)
{
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->done);
	pl_free(b->v);
	pl_free(b);
}

static void arrivals_add(arrivals_t *b, int32_t partition, const char *delivery_id,
                         sim_arrival_t arrival)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->v = pl_realloc(b->v, b->cap * sizeof(*b->v));
	}
	arrival_t *a = &b->v[b->n++];
	*a = (arrival_t){
	    .partition = partition, .arrival = arrival, .batch = b, .result = PL_ERR_TIMEOUT};
	snprintf(a->delivery_id, sizeof(a->delivery_id), "%s", delivery_id);
}

static void arrival_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                         int64_t offset)
{
	(void)reason, (void)partition, (void)offset;
	arrival_t *a = opaque;
	arrivals_t *b = a->batch;
	pthread_mutex_lock(&b->lock);
	a->result = err;
	bool last = --b->outstanding == 0;
	bool free_it = last && b->abandoned;
	if (last)
		pthread_cond_signal(&b->done);
	pthread_mutex_unlock(&b->lock);
	if (free_it)
		arrivals_free(b);
}

/* Encodes and enqueues one arrival; PL_OK when its callback will run. */
static pl_err_t send_arrival(ds_t *ds, const sim_flight_t *f, arrival_t *a, int64_t now)
{
	char id[37];
	sim_arrival_id(f->delivery_id, a->arrival, id);
	json_t *ev =
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:{s:f, s:f, s:f}}", "eventId", id, "deliveryId",
	              f->delivery_id, "droneId", f->drone_id, "phase", sim_arrival_name(a->arrival),
	              "time", (json_int_t)now, "position", "latitude", f->position.latitude,
	              "longitude", f->position.longitude, "altitude", f->position.altitude);
	void *buf = NULL;
	size_t len = 0;
	pl_err_t e = encode(ds, "DroneArrived", ev, &buf, &len);
	json_decref(ev);
	if (e != PL_OK)
		return e;
	char tp[56], produced_at[24];
	pl_traceparent_child(NULL, tp);
	snprintf(produced_at, sizeof(produced_at), "%lld", (long long)pl_now_ms());
	pl_header_t h[] = {{"event_type", "DroneArrived", strlen("DroneArrived")},
	                   {"event_id", id, strlen(id)},
	                   {"traceparent", tp, strlen(tp)},
	                   {"produced_at", produced_at, strlen(produced_at)}};
	e = pl_producer_send(ds->producer, DRONESIM_TOPIC_DRONE_EVENTS, f->delivery_id,
	                     strlen(f->delivery_id), buf, len, h, 4, arrival_done, a);
	pl_free(buf);
	return e;
}

/* Sends every arrival of the batch and waits up to ARRIVAL_SEND_MS for their acknowledgements;
 * then each acknowledged one moves its flight on. On any failure, arrivals pause for
 * ARRIVAL_BACKOFF_MS (the flights wait on their points and report again). Takes ownership of b. */
static void send_arrivals(ds_t *ds, arrivals_t *b, int64_t now, bool *changed)
{
	bool failed = false;
	for (size_t i = 0; i < b->n; i++) {
		arrival_t *a = &b->v[i];
		sim_flight_t *f = sim_table_get(ds->tables[a->partition], a->delivery_id);
		pthread_mutex_lock(&b->lock);
		b->outstanding++;
		pthread_mutex_unlock(&b->lock);
		if (send_arrival(ds, f, a, now) != PL_OK) {
			pthread_mutex_lock(&b->lock);
			b->outstanding--;
			pthread_mutex_unlock(&b->lock);
			failed = true;
		}
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ARRIVAL_SEND_MS / 1000;
	pl_err_t *results = pl_malloc(b->n * sizeof(*results));
	pthread_mutex_lock(&b->lock);
	while (b->outstanding > 0)
		if (pthread_cond_timedwait(&b->done, &b->lock, &until) != 0)
			break;
	for (size_t i = 0; i < b->n; i++)
		results[i] = b->v[i].result;
	pthread_mutex_unlock(&b->lock);
	/* b->v stays valid below: a late callback only writes a result, and frees nothing until
	 * b is marked abandoned at the end */
	for (size_t i = 0; i < b->n; i++) {
		arrival_t *a = &b->v[i];
		if (results[i] != PL_OK) {
			failed = true;
			continue;
		}
		sim_flight_t *f = sim_table_get(ds->tables[a->partition], a->delivery_id);
		if (!f || f->state != SIM_FLYING)
			continue;
		pl_metric_inc(pl_metric_get(ds->m_arrivals,
		                            (const char *const[]){sim_arrival_name(a->arrival)}));
		sim_arrival_done(f, a->arrival, now);
		pl_log(PL_LOG_INFO, "drone_arrived",
		       PL_LOG_FIELDS(PL_LS("delivery_id", f->delivery_id),
		                     PL_LS("drone_id", f->drone_id),
		                     PL_LS("phase", sim_arrival_name(a->arrival))),
		       "%s", sim_arrival_name(a->arrival));
		send_telemetry(ds, f, now); /* the phase change, at the point */
		if (f->state != SIM_FLYING)
			*changed = true;
	}
	if (failed) {
		pl_log(PL_LOG_WARN, "arrival_failed", PL_LOG_FIELDS(PL_LI("arrivals", b->n)),
		       "not every arrival was acknowledged; the drones wait on their points");
		ds->arrivals_blocked_until_ms = now + ARRIVAL_BACKOFF_MS;
	}
	pl_free(results);
	pthread_mutex_lock(&b->lock);
	bool late = b->outstanding > 0;
	b->abandoned = late; /* then the last callback frees b */
	pthread_mutex_unlock(&b->lock);
	if (!late)
		arrivals_free(b);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static bool key_is(const pl_record_t *r, const char *id)
{
	return r->key && r->key_len == strlen(id) && !memcmp(r->key, id, r->key_len);
}

static void stop(ds_t *ds, int32_t p, const char *id, const char *why, int64_t now)
{
	sim_flight_t *f = sim_table_get(ds->tables[p], id);
	if (!f) { /* never flown here (a replayed or foreign delivery): remember only the end */
		ended_add(ds->ended[p], id, now);
		return;
	}
	if (f->state == SIM_DONE || f->state == SIM_STOPPED)
		return;
	bool was_flying = f->state == SIM_FLYING;
	if (was_flying)
		pl_log(PL_LOG_INFO, "flight_stopped",
		       PL_LOG_FIELDS(PL_LS("drone_id", f->drone_id),
		                     PL_LS("phase", sim_phase_name(f->phase))),
		       "flight stopped: %s", why);
	f->state = SIM_STOPPED;
	f->touched_ms = now;
	/* the gauge walks every flight: only when the number flying changed (the end of a delivery
	 * the simulator never flew, e.g. a replayed or foreign one, leaves it alone) */
	if (was_flying)
		count_flights(ds);
}

static bool same_point(const sim_point_t *a, const sim_point_t *b)
{
	return a->latitude == b->latitude && a->longitude == b->longitude;
}

/* A lifecycle snapshot with a route: newer versions replace the route of a pending entry or of
 * a flight still on its way to the pickup (after pickup the workflow ignores reschedules). */
static void reroute(ds_t *ds, int32_t p, const char *id, const json_t *event, int64_t now)
{
	sim_table_t *t = ds->tables[p];
	if (ended_has(ds->ended[p], id))
		return;
	sim_point_t pickup, dropoff;
	json_int_t version = json_integer_value(json_object_get(event, "version"));
	if (!sim_point_from_json(json_object_get(event, "pickup"), &pickup) ||
	    !sim_point_from_json(json_object_get(event, "dropoff"), &dropoff) || version <= 0)
		return;
	sim_flight_t *f = sim_table_get(t, id);
	if (!f) {
		f = sim_table_add(t, id);
		f->touched_ms = now;
	}
	bool may_change =
	    f->state == SIM_PENDING || (f->state == SIM_FLYING && f->phase == SIM_TO_PICKUP);
	if (!may_change || version <= f->route_version)
		return;
	f->route_version = version;
	if (same_point(&f->pickup, &pickup) && same_point(&f->dropoff, &dropoff))
		return;
	f->pickup = pickup;
	f->dropoff = dropoff;
	if (f->state == SIM_FLYING) {
		f->next_telemetry_ms = now; /* say so at once */
		pl_log(PL_LOG_INFO, "flight_rerouted", PL_LOG_FIELDS(PL_LI("version", version)),
		       "new route from lifecycle version %lld", (long long)version);
	}
}

static pl_stage_outcome_t start(ds_t *ds, pl_stage_ctx_t *ctx, int32_t p, const char *id,
                                const json_t *event, int64_t now)
{
	sim_table_t *t = ds->tables[p];
	sim_flight_t assigned;
	char err[256];
	if (sim_flight_from_assigned(event, &assigned, err, sizeof(err)) != PL_OK) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s", err);
		return PL_STAGE_DEAD;
	}
	if (ended_has(ds->ended[p], id)) {
		pl_log(PL_LOG_INFO, "assignment_ignored", NULL, "flight already over");
		return PL_STAGE_OK;
	}
	sim_flight_t *f = sim_table_get(t, id);
	json_int_t assigned_at = json_integer_value(json_object_get(event, "assignedAt"));
	if ((!f || f->state == SIM_PENDING) && assigned_at < now - ds->window_ms) {
		pl_log(PL_LOG_INFO, "assignment_too_old", NULL,
		       "assigned more than DP_SIM_RESUME_WINDOW_S ago: history, not flown");
		return PL_STAGE_OK;
	}
	switch (sim_table_start(t, &assigned, now, &f)) {
	case SIM_START_NEW:
		pl_log(PL_LOG_INFO, "flight_started", PL_LOG_FIELDS(PL_LS("drone_id", f->drone_id)),
		       "drone departs for the pickup");
		count_flights(ds);
		break;
	case SIM_START_FLYING:
		if (strcmp(f->drone_id, assigned.drone_id))
			pl_log(PL_LOG_WARN, "assignment_ignored",
			       PL_LOG_FIELDS(PL_LS("drone_id", assigned.drone_id)),
			       "already flying drone %s for this delivery", f->drone_id);
		if (f->seq > 0)
			return PL_STAGE_OK; /* duplicate: its departure is already on its way */
		break;
	case SIM_START_DONE:
	case SIM_START_STOPPED:
		pl_log(PL_LOG_INFO, "assignment_ignored", NULL, "flight already %s",
		       f->state == SIM_DONE ? "arrived" : "stopped");
		return PL_STAGE_OK;
	}
	/* The departure record goes through the stage: the assignment's offset is stored only once
	 * the flight is durable in the telemetry log, which is what a restart resumes from. */
	char eid[37];
	sim_telemetry_id(id, f->seq, eid);
	json_t *tel = sim_telemetry_json(f, ds->speed_mps * ds->time_scale, now, eid);
	pl_err_t e = pl_stage_produce_event(ctx, DRONESIM_TOPIC_TELEMETRY, id, SIM_TELEMETRY_SCHEMA,
	                                    tel, eid);
	json_decref(tel);
	if (e != PL_OK) {
		pl_stage_set_reason(ctx, e, "departure telemetry not produced");
		return PL_STAGE_RETRY; /* the flight stays; the retry produces seq 0 again */
	}
	f->seq++;
	f->next_telemetry_ms = now + ds->interval_ms;
	pl_metric_inc(pl_metric_get0(ds->m_telemetry));
	return PL_STAGE_OK;
}

pl_stage_outcome_t dronesim_handle(pl_stage_ctx_t *ctx, const pl_record_t *rec, const json_t *event,
                                   const pl_avro_schema_t *schema, void *arg)
{
	ds_t *ds = arg;
	int32_t p = rec->partition;
	if (p < 0 || p >= MAX_PARTITIONS || !ds->tables[p]) {
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "flights of partition %d not restored",
		                    p);
		return PL_STAGE_RETRY;
	}
	const char *type = pl_avro_schema_short_name(schema);
	bool assigned = !strcmp(type, "DroneAssigned"), released = !strcmp(type, "DroneReleased"),
	     lifecycle = !strcmp(type, "DeliveryLifecycle");
	if (!assigned && !released && !lifecycle)
		return PL_STAGE_OK; /* DroneUnavailable, DroneArrived (ours), ...: not a sim input
		                     */
	const char *id = json_string_value(json_object_get(event, "deliveryId"));
	if (!id || !*id || strlen(id) >= SIM_ID_MAX) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s without a usable deliveryId", type);
		return PL_STAGE_DEAD;
	}
	if (!key_is(rec, id)) { /* its telemetry would land on another partition than its flight */
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "record key is not its deliveryId %s", id);
		return PL_STAGE_DEAD;
	}
	sim_table_t *t = ds->tables[p];
	int64_t now = pl_now_ms();
	if (assigned)
		return start(ds, ctx, p, id, event, now);
	if (released) {
		const char *drone = json_string_value(json_object_get(event, "droneId"));
		sim_flight_t *f = sim_table_get(t, id);
		if (!drone || !f || !f->drone_id[0] || !strcmp(drone, f->drone_id))
			stop(ds, p, id, "drone released", now);
		return PL_STAGE_OK;
	}
	const char *stage = json_string_value(json_object_get(event, "stage"));
	if (!stage)
		return PL_STAGE_OK;
	if (!strcmp(stage, "Completed") || !strcmp(stage, "Cancelled") || !strcmp(stage, "Failed"))
		stop(ds, p, id, stage, now);
	else if (!strcmp(stage, "Scheduled") || !strcmp(stage, "Rescheduled") ||
	         !strcmp(stage, "HeadedToPickup"))
		reroute(ds, p, id, event, now);
	return PL_STAGE_OK;
}

/* ---- restore --------------------------------------------------------------------------------- */

typedef struct restore {
	json_t *last;     /* deliveryId -> last telemetry record (highest seq) */
	stops_t *stopped; /* how each delivery was stopped (stops.h) */
	size_t records, unreadable;
} restore_t;

/* The topics are read in the order of dronesim_assigned's history: the telemetry last, when
 * every stop is known. A delivery stopped for any drone ends whatever its telemetry says, so its
 * telemetry is not kept: the restore holds the flights of the window that may still fly, not
 * the last record of every delivery of the window. */
static void restore_record(restore_t *r, const char *id, const json_t *ev,
                           const pl_avro_schema_t *schema)
{
	const char *type = pl_avro_schema_short_name(schema);
	uint64_t drone;
	if (!strcmp(type, SIM_TELEMETRY_SCHEMA)) {
		if (stops_get(r->stopped, ended_hash(id), &drone) && drone == STOPS_ANY_DRONE)
			return;
		json_t *prev = json_object_get(r->last, id);
		json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
		if (!prev || seq >= json_integer_value(json_object_get(prev, "seq")))
			json_object_set(r->last, id, (json_t *)ev);
	} else if (!strcmp(type, "DroneReleased")) {
		const char *released = json_string_value(json_object_get(ev, "droneId"));
		stops_put(r->stopped, ended_hash(id),
		          released ? ended_hash(released) : STOPS_ANY_DRONE);
	} else if (!strcmp(type, "DeliveryLifecycle")) {
		const char *stage = json_string_value(json_object_get(ev, "stage"));
		if (stage && (!strcmp(stage, "Completed") || !strcmp(stage, "Cancelled") ||
		              !strcmp(stage, "Failed")))
			stops_put(r->stopped, ended_hash(id), STOPS_ANY_DRONE);
	}
}

typedef struct stopped_before {
	ended_t *ended, *flying;
	int64_t now;
	size_t *finished;
} stopped_before_t;

/* A stopped delivery that is not flying (it stopped before it flew, or its telemetry was not
 * kept) is noted ended. */
static void note_stopped(uint64_t delivery, uint64_t drone, void *arg)
{
	(void)drone;
	stopped_before_t *sb = arg;
	if (!ended_has_hash(sb->flying, delivery) && !ended_has_hash(sb->ended, delivery)) {
		ended_add_hash(sb->ended, delivery, sb->now);
		(*sb->finished)++;
	}
}

/* Reads partition p of topic from since_ms to its end into r. */
static pl_err_t read_history(ds_t *ds, const char *topic, int32_t p, int64_t since_ms, restore_t *r)
{
	pl_reader_opts_t ro = {.start = PL_READER_TIME,
	                       .start_time_ms = since_ms,
	                       .stop_at_end = true,
	                       .one_partition = true,
	                       .partition = p};
	pl_reader_t *reader = NULL;
	char err[512];
	pl_err_t e = pl_reader_new(ds->cfg, topic, &ro, RESTORE_WAIT_MS, &reader, err, sizeof(err));
	if (e != PL_OK) {
		pl_log(PL_LOG_ERROR, "restore_failed",
		       PL_LOG_FIELDS(PL_LS("topic", topic), PL_LI("partition", p),
		                     PL_LS("err", pl_err_str(e))),
		       "%s", err);
		return e == PL_ERR_NOT_FOUND ? PL_ERR_FATAL : e;
	}
	pl_record_t rec;
	while ((e = pl_reader_next(reader, &rec, RESTORE_WAIT_MS)) == PL_OK) {
		char key[SIM_ID_MAX];
		if (!rec.value || !rec.key || rec.key_len == 0 || rec.key_len >= sizeof(key))
			continue;
		memcpy(key, rec.key, rec.key_len);
		key[rec.key_len] = '\0';
		json_t *ev = NULL;
		const pl_avro_schema_t *schema = NULL;
		if (pl_avro_decode(ds->registry, rec.value, rec.value_len, &ev, &schema, err,
		                   sizeof(err)) != PL_OK) {
			r->unreadable++; /* the stage dead-letters these; telemetry is ours */
			continue;
		}
		restore_record(r, key, ev, schema);
		json_decref(ev);
		r->records++;
	}
	pl_reader_destroy(reader);
	if (e != PL_ERR_NOT_FOUND) { /* timed out before the end: do not fly on a partial view */
		pl_log(PL_LOG_ERROR, "restore_incomplete",
		       PL_LOG_FIELDS(PL_LS("topic", topic), PL_LI("partition", p)),
		       "%s could not be read to its end", topic);
		return PL_ERR_TRANSIENT;
	}
	return PL_OK;
}

/* Builds the flights still in the air into a new table and notes every delivery whose flight is
 * over (or that ended before one began) in *ended. */
static sim_table_t *build_table(restore_t *r, int64_t now, int64_t window_ms, ended_t **ended,
                                size_t *flying, size_t *finished)
{
	sim_table_t *t = sim_table_new();
	*ended = ended_new(window_ms / 16); /* forgotten within 1/16 of the window after it */
	ended_t *flying_ids = ended_new(INT64_MAX);
	const char *id;
	json_t *v;
	json_object_foreach(r->last, id, v)
	{
		sim_flight_t from;
		char err[256];
		if (sim_flight_from_telemetry(v, &from, err, sizeof(err)) != PL_OK) {
			r->unreadable++;
			continue;
		}
		uint64_t stop_drone;
		if (from.state == SIM_FLYING &&
		    stops_get(r->stopped, ended_hash(id), &stop_drone) &&
		    (stop_drone == STOPS_ANY_DRONE || stop_drone == ended_hash(from.drone_id)))
			from.state = SIM_STOPPED;
		from.last_advance_ms = now; /* resume from the last position: no jump, no rewind */
		from.next_telemetry_ms = now;
		from.touched_ms = now;
		if (from.state == SIM_FLYING) {
			*sim_table_add(t, id) = from;
			ended_add(flying_ids, id, 0);
			(*flying)++;
		} else {
			ended_add(*ended, id, now);
			(*finished)++;
		}
	}
	stopped_before_t sb = {
	    .ended = *ended, .flying = flying_ids, .now = now, .finished = finished};
	stops_each(r->stopped, note_stopped, &sb);
	ended_destroy(flying_ids);
	return t;
}

pl_err_t dronesim_assigned(const char *topic, int32_t p, void *arg)
{
	(void)topic;
	ds_t *ds = arg;
	if (p < 0 || p >= MAX_PARTITIONS)
		return PL_ERR_FATAL;
	if (ds->tables[p])
		return PL_OK; /* restored for the other input topic of the same partition */
	int64_t t0 = pl_now_ms(), since = t0 - ds->window_ms;
	restore_t r = {.last = json_object(), .stopped = stops_new()};
	const char *history[] = {DRONESIM_TOPIC_DRONE_EVENTS, DRONESIM_TOPIC_DELIVERY_EVENTS,
	                         DRONESIM_TOPIC_TELEMETRY, NULL};
	pl_err_t e = PL_OK;
	for (size_t i = 0; e == PL_OK && history[i]; i++)
		e = read_history(ds, history[i], p, since, &r);
	if (e == PL_OK) {
		size_t flying = 0, finished = 0;
		ds->tables[p] =
		    build_table(&r, pl_now_ms(), ds->window_ms, &ds->ended[p], &flying, &finished);
		pl_log(PL_LOG_INFO, "flights_restored",
		       PL_LOG_FIELDS(PL_LI("partition", p), PL_LI("flying", flying),
		                     PL_LI("finished", finished), PL_LI("records", r.records),
		                     PL_LI("unreadable", r.unreadable),
		                     PL_LI("ms", pl_now_ms() - t0)),
		       "restored partition %d", p);
		count_flights(ds);
	}
	json_decref(r.last);
	stops_destroy(r.stopped);
	return e;
}

pl_err_t dronesim_revoked(const char *topic, int32_t p, void *arg)
{
	(void)topic;
	ds_t *ds = arg;
	if (p < 0 || p >= MAX_PARTITIONS || !ds->tables[p])
		return PL_OK;
	/* The next owner restores from the telemetry log: let what we sent land there first. */
	int64_t deadline = pl_now_ms() + 5000;
	while (pl_producer_outq_len(ds->producer) > 0 && pl_now_ms() < deadline) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	sim_table_destroy(ds->tables[p]);
	ended_destroy(ds->ended[p]);
	ds->tables[p] = NULL;
	ds->ended[p] = NULL;
	count_flights(ds);
	return PL_OK;
}

/* ---- the tick -------------------------------------------------------------------------------- */

/* Advances one flight to now: at most two arrivals (pickup then dropoff) per tick, each made
 * durable before the phase changes; then periodic telemetry. */
/* Advances one flight to now. When it reaches the end of a leg, its arrival joins the tick's
 * batch and the flight waits on the point until it is acknowledged (send_arrivals); otherwise
 * periodic telemetry. */
static void fly(ds_t *ds, int32_t p, sim_flight_t *f, int64_t now, arrivals_t **batch)
{
	double sim_s = sim_elapsed_s(now - f->last_advance_ms, ds->time_scale);
	f->last_advance_ms = now;
	sim_arrival_t a = sim_advance(f, sim_s, ds->speed_mps, NULL);
	if (a != SIM_ARRIVAL_NONE && now >= ds->arrivals_blocked_until_ms) {
		if (!*batch)
			*batch = arrivals_new();
		arrivals_add(*batch, p, f->delivery_id, a);
		return;
	}
	if (now >= f->next_telemetry_ms)
		send_telemetry(ds, f, now);
}

/* A finished flight (DONE or STOPPED) leaves the table for ended[p]; a pending entry (a route
 * that never got a drone) and an ended id are forgotten after the window. */
static void prune(ds_t *ds, int64_t now)
{
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		if (!ds->tables[p])
			continue;
		size_t c = 0;
		for (sim_flight_t *f; (f = sim_table_next(ds->tables[p], &c));) {
			bool over = f->state == SIM_DONE || f->state == SIM_STOPPED;
			if (over)
				ended_add(ds->ended[p], f->delivery_id, f->touched_ms);
			if (over ||
			    (f->state == SIM_PENDING && f->touched_ms < now - ds->window_ms)) {
				sim_table_remove(ds->tables[p], f->delivery_id);
				c = c > 0 ? c - 1 : 0; /* the slot may hold a shifted entry now */
			}
		}
		ended_prune(ds->ended[p], now - ds->window_ms);
	}
}

void dronesim_tick(void *arg)
{
	ds_t *ds = arg;
	int64_t now = pl_now_ms();
	if (now < ds->next_tick_ms)
		return;
	ds->next_tick_ms = now + TICK_MIN_MS;
	bool changed = false;
	arrivals_t *batch = NULL;
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		if (!ds->tables[p])
			continue;
		size_t c = 0;
		for (sim_flight_t *f; (f = sim_table_next(ds->tables[p], &c));)
			if (f->state == SIM_FLYING)
				fly(ds, p, f, now, &batch);
	}
	if (batch)
		send_arrivals(ds, batch, now, &changed);
	if (changed)
		count_flights(ds);
	if (now >= ds->next_prune_ms) {
		ds->next_prune_ms = now + PRUNE_EVERY_MS;
		prune(ds, now);
	}
}
