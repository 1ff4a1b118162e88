/* delivery.c — dronepipe-delivery's stage: configuration, state, the record handler (apply a
 * lifecycle event or a telemetry record to the store), readiness. Owns the dlv_t. */
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "log.h"
#include "mem.h"
#include "status.h"

#define TOPIC_LIFECYCLE "dronedelivery.delivery.events"
#define TOPIC_TELEMETRY "dronedelivery.drone.telemetry"

const pl_cfg_opt_t delivery_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8081", 0, 65535, .help = "delivery reads and live tracking port"},
    {"DP_REDIS_URL", PL_CFG_STR, "redis://127.0.0.1:6379", 8, 4096, .secret = true,
     .help = "redis://[[user]:password@]host[:port][/db]; may hold a password: mount it and use "
             "DP_REDIS_URL_FILE"},
    {"DP_REDIS_POOL_SIZE", PL_CFG_INT, "8", 1, 256,
     .help = "Redis connections at most (stage thread + HTTP threads share them)"},
    {"DP_REDIS_TIMEOUT_MS", PL_CFG_INT, "2000", 50, 60000,
     .help = "Redis connect and command timeout; past it a read answers 503, a write retries"},
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
	};
	dlv_store_t *store = store_new(&so, errstr, errstr_size);
	if (!store) {
		*config_error = true;
		return NULL;
	}
	dlv_t *d = pl_calloc(1, sizeof(*d));
	d->store = store;
	d->default_speed_mps = (double)pl_cfg_int(env->cfg, "DP_DRONE_SPEED_MPS");
	pthread_mutex_init(&d->live_lock, NULL);
	d->m_applied = pl_metrics_family(pl_metrics_default(), "dronepipe_delivery_applied_total",
	                                 "records applied to the store, by kind and outcome",
	                                 PL_METRIC_COUNTER, "kind,outcome", NULL, 0);
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

/* Checks a lifecycle event and builds its history entry into op; false + the DEAD reason set
 * when the event cannot be applied. */
static bool prepare_lifecycle(pl_stage_ctx_t *ctx, const json_t *event, store_op_t *op)
{
	const char *stage = json_string_value(json_object_get(event, "stage"));
	json_t *version = json_object_get(event, "version");
	if (status_stage_int(stage) < 0 || !json_is_integer(version) ||
	    json_integer_value(version) < 1 ||
	    !json_string_value(json_object_get(event, "deliveryId"))) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA,
		                    "lifecycle event without a known stage, a version >= 1 or a "
		                    "deliveryId");
		return false;
	}
	json_t *entry = status_history_entry(event);
	if (!entry) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "lifecycle event without a time");
		return false;
	}
	*op = (store_op_t){.record = event, .entry = entry};
	return true;
}

void delivery_handle_batch(pl_stage_item_t *items, size_t n, void *arg)
{
	dlv_t *d = arg;
	store_op_t *ops = pl_calloc(n, sizeof(*ops));
	size_t *item_of = pl_malloc(n * sizeof(*item_of)), nops = 0;
	for (size_t i = 0; i < n; i++) {
		pl_stage_item_t *it = &items[i];
		const char *type = pl_avro_schema_short_name(it->schema);
		if (strcmp(type, "DeliveryLifecycle") == 0) {
			if (!prepare_lifecycle(it->ctx, it->event, &ops[nops])) {
				it->outcome = PL_STAGE_DEAD;
				continue;
			}
		} else if (strcmp(type, "DroneTelemetry") == 0) {
			ops[nops] = (store_op_t){.record = it->event, .telemetry = true};
		} else {
			pl_stage_set_reason(it->ctx, PL_ERR_REJECTED, "%s is not a delivery input",
			                    type);
			it->outcome = PL_STAGE_DEAD;
			continue;
		}
		item_of[nops++] = i;
	}
	store_apply(d->store, ops, nops);
	for (size_t k = 0; k < nops; k++) {
		store_op_t *op = &ops[k];
		pl_stage_item_t *it = &items[item_of[k]];
		const char *kind = op->telemetry ? "telemetry" : "lifecycle";
		if (op->err == PL_OK) {
			count(d, kind, op->applied ? "applied" : "stale");
		} else {
			pl_stage_set_reason(it->ctx, op->err, "%s", op->errstr);
			it->outcome = pl_err_retryable(op->err) ? PL_STAGE_RETRY : PL_STAGE_DEAD;
		}
		json_decref((json_t *)op->entry);
	}
	pl_free(ops);
	pl_free(item_of);
}

bool delivery_ready(void *arg, char *reason, size_t reason_size)
{
	dlv_t *d = arg;
	return store_ping(d->store, reason, reason_size) == PL_OK;
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
