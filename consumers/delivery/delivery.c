/* delivery.c — dronepipe-delivery's stage: configuration, state, the record handler (apply a
 * lifecycle event or a telemetry record to the store), readiness. Owns the dlv_t. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "jsonw.h"
#include "log.h"
#include "mem.h"
#include "status.h"
#include "timefmt.h"

#define TOPIC_LIFECYCLE "dronedelivery.delivery.events"
#define TOPIC_TELEMETRY "dronedelivery.drone.telemetry"
#define TM_AHEAD_MAX_MS (24 * 3600 * 1000LL) /* telemetry time ahead of the clock, at most */

const pl_cfg_opt_t delivery_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8081", 0, 65535, .help = "delivery reads and live tracking port"},
    {"DP_REDIS_URL", PL_CFG_STR, "redis://127.0.0.1:6379", 8, 4096, .secret = true,
     .help = "redis://[[user]:password@]host[:port][/db]; may hold a password: mount it and use "
             "DP_REDIS_URL_FILE"},
    {"DP_REDIS_POOL_SIZE", PL_CFG_INT, "8", 1, 256,
     .help = "Redis connections at most (stage thread + HTTP threads share them)"},
    {"DP_REDIS_TIMEOUT_MS", PL_CFG_INT, "2000", 50, 60000,
     .help = "Redis connect and command timeout; past it a read answers 503, a write retries "
             "and /readyz answers 503"},
    {"DP_DELIVERY_RETENTION_S", PL_CFG_INT, "604800", 60, 3153600000LL,
     .help = "every key of a delivery expires this long after its latest update's time; older "
             "records are not applied"},
    {"DP_DELIVERY_HISTORY_MAX", PL_CFG_INT, "100", 1, 100000,
     .help = "history entries kept per delivery (the latest; older ones are dropped)"},
    {"DP_TELEMETRY_SEQ_MAX", PL_CFG_INT, "10000000", 1000, 9007199254740992LL,
     .help = "largest plausible telemetry seq; a record beyond it is dead-lettered"},
    {"DP_DRONE_SPEED_MPS", PL_CFG_INT, "15", 1, 200,
     .help = "drone speed for ETAs when the telemetry gives none"},
    {NULL},
};

const char *const delivery_topics[] = {TOPIC_LIFECYCLE, TOPIC_TELEMETRY, NULL};

void *delivery_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error)
{
	dlv_store_opts_t so = {
	    .url = pl_cfg_str(env->cfg, "DP_REDIS_URL"),
	    .pool_size = (unsigned)pl_cfg_int(env->cfg, "DP_REDIS_POOL_SIZE"),
	    .timeout_ms = (int)pl_cfg_int(env->cfg, "DP_REDIS_TIMEOUT_MS"),
	    .retention_s = pl_cfg_int(env->cfg, "DP_DELIVERY_RETENTION_S"),
	    .history_max = (long)pl_cfg_int(env->cfg, "DP_DELIVERY_HISTORY_MAX"),
	};
	dlv_store_t *store = store_new(&so, errstr, errstr_size);
	if (!store) {
		*config_error = true;
		return NULL;
	}
	dlv_t *d = pl_calloc(1, sizeof(*d));
	d->store = store;
	d->auth = env->auth;
	d->default_speed_mps = (double)pl_cfg_int(env->cfg, "DP_DRONE_SPEED_MPS");
	d->seq_max = pl_cfg_int(env->cfg, "DP_TELEMETRY_SEQ_MAX");
	pthread_mutex_init(&d->live_lock, NULL);
	if (!delivery_fields_init(d, env->registry, errstr, errstr_size)) {
		delivery_fini(d);
		return NULL;
	}
	d->m_applied = pl_metrics_family(pl_metrics_default(), "dronepipe_delivery_applied_total",
	                                 "records applied to the store, by kind and outcome",
	                                 PL_METRIC_COUNTER, "kind,outcome", NULL, 0);
	d->m_store_failures = pl_metrics_family(
	    pl_metrics_default(), "dronepipe_delivery_store_failures_total",
	    "store calls that failed for now and are retried with backoff, by reason (oom: Redis "
	    "is "
	    "out of memory and refuses writes; unavailable: unreachable, timed out or busy)",
	    PL_METRIC_COUNTER, "reason", NULL, 0);
	if (store_subscribe(store, live_changed, d, errstr, errstr_size) != PL_OK) {
		delivery_fini(d);
		return NULL;
	}
	return d;
}

void delivery_fini(void *arg)
{
	dlv_t *d = arg;
	if (!d)
		return;
	store_destroy(d->store); /* joins the subscription thread first */
	live_close_all(d);
	pthread_mutex_destroy(&d->live_lock);
	pl_free(d);
}

static void count(dlv_t *d, const char *kind, const char *outcome)
{
	const char *labels[] = {kind, outcome};
	pl_metric_inc(pl_metric_get(d->m_applied, labels));
}

/* ---- records: read through Avro views (avro.h), no JSON tree per record ---- */

/* The top-level fields the handler reads, by schema; indexes looked up once (delivery_init). */
enum {
	LC_EVENT_ID,
	LC_DELIVERY_ID,
	LC_STAGE,
	LC_VERSION,
	LC_TIME,
	LC_REQUESTED_AT,
	LC_OWNER_ID,
	LC_PICKUP_LOCATION,
	LC_DROPOFF_LOCATION,
	LC_PICKUP_TIME,
	LC_DRONE_ID,
	LC_REASON,
	LC_N
};
static const char *const lc_names[LC_N] = {
    "eventId", "deliveryId",     "stage",           "version",    "time",    "requestedAt",
    "ownerId", "pickupLocation", "dropOffLocation", "pickupTime", "droneId", "reason"};
enum {
	TM_DELIVERY_ID,
	TM_EVENT_ID,
	TM_SEQ,
	TM_TIME,
	TM_LATITUDE,
	TM_LONGITUDE,
	TM_ALTITUDE,
	TM_SPEED,
	TM_PHASE,
	TM_DRONE_ID,
	TM_N
};
static const char *const tm_names[TM_N] = {"deliveryId", "eventId",   "seq",      "time",
                                           "latitude",   "longitude", "altitude", "speedMps",
                                           "phase",      "droneId"};

_Static_assert(LC_N == DLV_LC_FIELDS && TM_N == DLV_TM_FIELDS, "dlv_t's index arrays");

/* Index of every name of a schema's fields; false + errstr when the schema lacks one. */
static bool field_indexes(const pl_avro_registry_t *registry, const char *schema_name,
                          const char *const *names, int n, const pl_avro_schema_t **schema,
                          int *index, char *errstr, size_t errstr_size)
{
	*schema = pl_avro_schema_get(registry, schema_name);
	for (int i = 0; *schema && i < n; i++)
		if ((index[i] = pl_avro_field_index(*schema, names[i])) < 0) {
			snprintf(errstr, errstr_size, "schema %s has no field %s", schema_name,
			         names[i]);
			return false;
		}
	if (!*schema)
		snprintf(errstr, errstr_size, "no schema %s", schema_name);
	return *schema != NULL;
}

bool delivery_fields_init(dlv_t *d, const pl_avro_registry_t *registry, char *errstr,
                          size_t errstr_size)
{
	d->registry = registry;
	return field_indexes(registry, "DeliveryLifecycle", lc_names, LC_N, &d->lc_schema,
	                     d->lc_index, errstr, errstr_size) &&
	       field_indexes(registry, "DroneTelemetry", tm_names, TM_N, &d->tm_schema, d->tm_index,
	                     errstr, errstr_size);
}

static const char *str_field(const pl_avro_view_t *v, int index)
{
	pl_avro_scalar_t s = pl_avro_view_field(v, index);
	return s.type == PL_AVRO_V_STRING ? s.string : NULL;
}

static bool int_field(const pl_avro_view_t *v, int index, int64_t *out)
{
	pl_avro_scalar_t s = pl_avro_view_field(v, index);
	*out = s.integer;
	return s.type == PL_AVRO_V_INTEGER;
}

static bool real_field(const pl_avro_view_t *v, int index, double *out)
{
	pl_avro_scalar_t s = pl_avro_view_field(v, index);
	*out = s.type == PL_AVRO_V_REAL ? s.real : (double)s.integer;
	return s.type == PL_AVRO_V_REAL || s.type == PL_AVRO_V_INTEGER;
}

/* Reads a lifecycle event into op: its strings borrowed from the view, its JSON text and
 * history entry pl_malloc'd (delivery_handle_batch frees them after store_apply); false + the
 * DEAD reason set when the event cannot be applied. */
static bool prepare_lifecycle(const dlv_t *d, pl_stage_ctx_t *ctx, const pl_avro_view_t *v,
                              store_op_t *op)
{
	const int *x = d->lc_index;
	status_event_t e = {
	    .stage = str_field(v, x[LC_STAGE]),
	    .event_id = str_field(v, x[LC_EVENT_ID]),
	    .owner_id = str_field(v, x[LC_OWNER_ID]),
	    .drone_id = str_field(v, x[LC_DRONE_ID]),
	    .reason = str_field(v, x[LC_REASON]),
	    .pickup_location = str_field(v, x[LC_PICKUP_LOCATION]),
	    .dropoff_location = str_field(v, x[LC_DROPOFF_LOCATION]),
	};
	e.has_pickup_time = int_field(v, x[LC_PICKUP_TIME], &e.pickup_time);
	const char *id = str_field(v, x[LC_DELIVERY_ID]);
	if (status_stage_int(e.stage) < 0 || !int_field(v, x[LC_VERSION], &e.version) ||
	    e.version < 1 || !id) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA,
		                    "lifecycle event without a known stage, a version >= 1 or a "
		                    "deliveryId");
		return false;
	}
	if (!int_field(v, x[LC_TIME], &e.time_ms)) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "lifecycle event without a time");
		return false;
	}
	*op = (store_op_t){.delivery_id = id,
	                   .event_id = e.event_id,
	                   .stage = e.stage,
	                   .owner_id = e.owner_id,
	                   .version = e.version,
	                   .time = e.time_ms,
	                   .entry_json = status_history_entry(&e),
	                   .event_json = pl_avro_view_json(v, PL_JSONW_SORTED, NULL)};
	int_field(v, x[LC_REQUESTED_AT], &op->requested_at);
	return true;
}

/* A real number within [min, max]; else false with why in reason. */
static bool plausible(double v, const char *field, double min, double max, char *reason,
                      size_t reason_size)
{
	if (isfinite(v) && v >= min && v <= max)
		return true;
	snprintf(reason, reason_size, "telemetry %s %.17g is %s [%g, %g]", field, v,
	         isfinite(v) ? "outside" : "not a finite number in", min, max);
	return false;
}

/* Reads a telemetry record into op (strings borrowed from the view); false + the DEAD reason set
 * when a field is missing or absurd: applied, a NaN or an out-of-range position would be drawn
 * as the drone's place, and a seq or time far ahead would make every later record of the
 * delivery look stale (the store keeps only newer ones). */
static bool prepare_telemetry(const dlv_t *d, pl_stage_ctx_t *ctx, const pl_avro_view_t *v,
                              store_op_t *op)
{
	const int *x = d->tm_index;
	*op = (store_op_t){.telemetry = true,
	                   .delivery_id = str_field(v, x[TM_DELIVERY_ID]),
	                   .event_id = str_field(v, x[TM_EVENT_ID]),
	                   .phase = str_field(v, x[TM_PHASE]),
	                   .drone_id = str_field(v, x[TM_DRONE_ID])};
	const char *missing = !op->delivery_id                                  ? "deliveryId"
	                      : !int_field(v, x[TM_SEQ], &op->seq)              ? "seq"
	                      : !int_field(v, x[TM_TIME], &op->time)            ? "time"
	                      : !real_field(v, x[TM_LATITUDE], &op->latitude)   ? "latitude"
	                      : !real_field(v, x[TM_LONGITUDE], &op->longitude) ? "longitude"
	                                                                        : NULL;
	if (missing) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "telemetry without %s", missing);
		return false;
	}
	if (!real_field(v, x[TM_ALTITUDE], &op->altitude))
		op->altitude = 0.0;
	if (!real_field(v, x[TM_SPEED], &op->speed_mps))
		op->speed_mps = 0.0;
	char reason[256] = "", when[32];
	if (op->seq < 0 || op->seq > d->seq_max)
		snprintf(reason, sizeof(reason),
		         "telemetry seq %" PRId64 " is %s (DP_TELEMETRY_SEQ_MAX %" PRId64 ")",
		         op->seq, op->seq < 0 ? "negative" : "beyond any plausible flight",
		         d->seq_max);
	else if (pl_time_format(op->time, when) != PL_OK)
		snprintf(reason, sizeof(reason), "telemetry time %" PRId64 " is not a date",
		         op->time);
	else if (op->time > pl_now_ms() + TM_AHEAD_MAX_MS)
		snprintf(reason, sizeof(reason),
		         "telemetry time %s is more than 24 h ahead of this service's clock", when);
	else if (plausible(op->latitude, "latitude", -90, 90, reason, sizeof(reason)) &&
	         plausible(op->longitude, "longitude", -180, 180, reason, sizeof(reason)) &&
	         plausible(op->altitude, "altitude", -1000, 100000, reason, sizeof(reason)))
		plausible(op->speed_mps, "speedMps", 0, 100000, reason, sizeof(reason));
	if (!reason[0])
		return true;
	pl_stage_set_reason(ctx, PL_ERR_INVALID, "%s", reason);
	return false;
}

/* A store call failed for now: the stage retries its records with backoff; once per attempt
 * (one line per backoff step, not per record) the log and the metric say so, and /readyz says
 * why meanwhile (store_ready). */
static void report_retry(dlv_t *d, const store_op_t *op, size_t records)
{
	bool oom = strstr(op->errstr, "OOM") != NULL;
	const char *labels[] = {oom ? "oom" : "unavailable"};
	pl_metric_inc(pl_metric_get(d->m_store_failures, labels));
	pl_log(PL_LOG_WARN, oom ? "redis_out_of_memory" : "redis_unavailable",
	       PL_LOG_FIELDS(PL_LS("delivery_id", op->delivery_id), PL_LS("err", op->errstr),
	                     PL_LI("records", (long long)records)),
	       "%zu record(s) not applied, retried with backoff%s", records,
	       oom ? ": Redis is out of memory (maxmemory); free memory or raise it" : "");
}

void delivery_handle_batch(pl_stage_item_t *items, size_t n, void *arg)
{
	dlv_t *d = arg;
	store_op_t *ops = pl_malloc(n * sizeof(*ops));
	pl_avro_view_t **views = pl_calloc(n, sizeof(*views));
	size_t *item_of = pl_malloc(n * sizeof(*item_of)), nops = 0;
	for (size_t i = 0; i < n; i++) {
		pl_stage_item_t *it = &items[i];
		char err[256];
		pl_err_t de = pl_avro_view_open(d->registry, it->record->value,
		                                it->record->value_len, &views[i], err, sizeof(err));
		if (de != PL_OK) { /* as the stage words it for the services that decode */
			pl_stage_set_reason(it->ctx, de, "undecodable record: %s", err);
			it->outcome = PL_STAGE_DEAD;
			continue;
		}
		const pl_avro_schema_t *schema = pl_avro_view_schema(views[i]);
		if (schema == d->lc_schema) {
			if (!prepare_lifecycle(d, it->ctx, views[i], &ops[nops])) {
				it->outcome = PL_STAGE_DEAD;
				continue;
			}
		} else if (schema == d->tm_schema) {
			if (!prepare_telemetry(d, it->ctx, views[i], &ops[nops])) {
				it->outcome = PL_STAGE_DEAD;
				continue;
			}
		} else {
			pl_stage_set_reason(it->ctx, PL_ERR_REJECTED, "%s is not a delivery input",
			                    pl_avro_schema_short_name(schema));
			it->outcome = PL_STAGE_DEAD;
			continue;
		}
		item_of[nops++] = i;
	}
	store_apply(d->store, ops, nops);
	size_t retried = 0;
	const store_op_t *first_retried = NULL;
	for (size_t k = 0; k < nops; k++) {
		store_op_t *op = &ops[k];
		pl_stage_item_t *it = &items[item_of[k]];
		const char *kind = op->telemetry ? "telemetry" : "lifecycle";
		if (op->err == PL_OK) {
			count(d, kind, op->applied ? "applied" : op->expired ? "expired" : "stale");
		} else {
			if (op->err == PL_ERR_TRANSIENT && !retried++)
				first_retried = op;
			pl_stage_set_reason(it->ctx, op->err, "%s", op->errstr);
			it->outcome = pl_err_retryable(op->err) ? PL_STAGE_RETRY : PL_STAGE_DEAD;
		}
	}
	if (first_retried)
		report_retry(d, first_retried, retried);
	for (size_t k = 0; k < nops; k++) {
		pl_free((char *)ops[k].event_json);
		pl_free((char *)ops[k].entry_json);
	}
	for (size_t i = 0; i < n; i++)
		pl_avro_view_free(views[i]);
	pl_free(views);
	pl_free(ops);
	pl_free(item_of);
}

bool delivery_ready(void *arg, char *reason, size_t reason_size)
{
	dlv_t *d = arg;
	return store_ready(d->store, reason, reason_size);
}

void delivery_tick(void *arg)
{
	dlv_t *d = arg;
	int64_t now = pl_now_ms();
	if (now < d->next_sweep_ms)
		return;
	d->next_sweep_ms = now + 5000;
	live_sweep(d);
}
