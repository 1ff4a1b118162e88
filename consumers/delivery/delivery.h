/* delivery.h — dronepipe-delivery: consumes dronedelivery.delivery.events (DeliveryLifecycle) and
 * dronedelivery.drone.telemetry (DroneTelemetry) into Redis (store.h) and serves API.md's
 * Delivery routes (routes.c), live status streams (Server-Sent Events) and the tracking page.
 *
 * Live streams: each GET /api/deliveries/{id}/events is a pl_http_stream_t registered in the
 * service's subscriber list. The store's subscription thread reports every change of a delivery
 * (Redis PUBLISH from the apply scripts); live_changed then reads the delivery's status once and
 * writes it to that delivery's streams, each stream getting only statuses newer than the last it
 * sent (status_event_id), and ends the streams after a finished stage.
 *
 * Ownership: dlv_t owns the store and every registered stream handle. Thread rules: the handler
 * and tick run on the stage thread; routes on HTTP threads; live_changed on the subscription
 * thread. The subscriber list is guarded by live_lock; the store is thread-safe. */
#ifndef DELIVERY_DELIVERY_H
#define DELIVERY_DELIVERY_H

#include <pthread.h>

#include "service.h"
#include "store.h"

extern const pl_cfg_opt_t delivery_cfg[];
extern const char *const delivery_topics[];

typedef struct live_sub live_sub_t;

#define DLV_LC_FIELDS 12 /* lifecycle fields the handler reads (delivery.c) */
#define DLV_TM_FIELDS 10 /* telemetry fields */

typedef struct dlv {
	dlv_store_t *store;
	const pl_auth_t *auth; /* borrowed from the service (pl_service_env_t) */
	double default_speed_mps;
	int64_t seq_max; /* DP_TELEMETRY_SEQ_MAX */
	pthread_mutex_t live_lock;
	live_sub_t *subs; /* registered streams (live_lock) */
	int64_t next_sweep_ms;
	pl_metric_family_t *m_applied, *m_reads, *m_store_failures;
	/* records are read through Avro views: the two input schemas and their fields' indexes */
	const pl_avro_registry_t *registry;
	const pl_avro_schema_t *lc_schema, *tm_schema;
	int lc_index[DLV_LC_FIELDS], tm_index[DLV_TM_FIELDS];
} dlv_t;

void *delivery_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error);
void delivery_fini(void *dlv);
/* Finds the input schemas and their fields (delivery_init); false + errstr when one lacks a
 * field the handler reads. */
bool delivery_fields_init(dlv_t *d, const pl_avro_registry_t *registry, char *errstr,
                          size_t errstr_size);
/* The stage's batch handler (the stage is raw: records are read through Avro views, which
 * refuse what the decoder refuses, with the same dead-letter reason): a lane's records applied
 * to Redis in one round trip (store.h). */
void delivery_handle_batch(pl_stage_item_t *items, size_t n, void *dlv);
bool delivery_ready(void *dlv, char *reason, size_t reason_size);
void delivery_tick(void *dlv);

/* routes.c */
size_t delivery_routes(void *dlv, pl_http_route_t *out, size_t max);
/* store_change_fn: a delivery changed (NULL: anything may have changed). */
void live_changed(const char *delivery_id, void *dlv);
/* Drops streams whose client went away. */
void live_sweep(dlv_t *dlv);
/* Ends and releases every stream (shutdown). */
void live_close_all(dlv_t *dlv);

/* track.c: the tracking page served at /track/{id}, its style sheet and its script. */
extern const char track_html[], track_css[], track_js[];

#endif
