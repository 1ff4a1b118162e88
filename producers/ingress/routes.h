/* routes.h — the ingress's HTTP routes: validate, produce to dronedelivery.requests, answer after
 * the broker's acknowledgement (the connection is suspended meanwhile; no thread waits).
 *
 * Ownership: ingress_t borrows the producer, registry and config; it owns the authenticator
 * (auth.h) and its metrics handles. Thread rules: handlers run on HTTP pool threads; completions on
 * the producer's poll thread; the counters they share are atomics. */
#ifndef INGRESS_ROUTES_H
#define INGRESS_ROUTES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "area.h"
#include "auth.h"
#include "avro.h"
#include "cfg.h"
#include "http.h"
#include "kafka.h"
#include "metrics.h"

#define INGRESS_TOPIC "dronedelivery.requests"
/* Namespace of the UUID v5 delivery ids derived from (ownerId, Idempotency-Key). Fixed forever:
 * changing it changes every derived id. */
#define INGRESS_IDEMPOTENCY_NS "6f1c5a52-2f0e-4d6b-9a57-5b0d7a2c4e11"
/* Kafka header naming who sent a request ("owner:<id>" or "admin"; absent when the API is
 * open): the workflow applies a change only from the delivery's owner or admin. */
#define INGRESS_PRINCIPAL_HEADER "dp_principal"

typedef struct ingress {
	pl_producer_t *producer;
	const pl_avro_registry_t *registry;
	const pl_avro_schema_t *s_requested, *s_reschedule, *s_cancel, *s_confirmed;
	pl_auth_t *auth;      /* who may call the routes (open when nothing is configured) */
	char *track_base_url; /* before trackingUrl's /track/...; "" = relative */
	int retry_after_s;
	pl_area_t area;      /* DP_SERVICE_AREA, DP_DRONE_RANGE_M: deliveries the fleet can fly */
	atomic_int inflight; /* requests between validation and their answer */
	atomic_bool draining;
	/* Requests waiting for their delivery report, oldest first (one timeout for all, so the
	 * list is ordered by deadline). A timer thread answers 503 at the deadline. */
	int64_t ack_timeout_ms;
	pthread_mutex_t pending_lock;
	struct pending *pending_head, *pending_tail;
	pthread_t timer;
	atomic_bool timer_stop;
	bool timer_started;
	pl_metric_family_t *m_produce, *m_unavailable;
} ingress_t;

extern const pl_cfg_opt_t ingress_cfg[];

/* Fills ing from cfg (which holds ingress_cfg and pl_auth_cfg); reads the key file and JWKS.
 * false + errstr on error. */
bool ingress_init(ingress_t *ing, const pl_cfg_t *cfg, pl_producer_t *producer,
                  const pl_avro_registry_t *registry, char *errstr, size_t errstr_size);
void ingress_fini(ingress_t *ing);

/* Answers 503 now to every request still waiting for Kafka's acknowledgement (the end of a
 * drain that ran out of time); their delivery reports, when they come, answer nobody. Any
 * thread. */
void ingress_answer_pending(ingress_t *ing);

/* The service routes (static table bound to ing). */
size_t ingress_routes(ingress_t *ing, pl_http_route_t *out, size_t max);

/* Readiness for /readyz. */
bool ingress_ready(void *ing, char *reason, size_t reason_size);

/* UUID v5 delivery id for (principal tag, ownerId, Idempotency-Key); principal "" (open API)
 * gives the ids of (ownerId, key) alone. */
void ingress_delivery_id(const char *principal, const char *owner_id, const char *idempotency_key,
                         char out[37]);

/* The customer's tracking link of delivery_id (DP_INGRESS_TRACK_BASE_URL + /track/{id}?token=);
 * NULL without DP_TRACK_TOKEN_SECRET. The caller frees it with pl_free. */
char *ingress_tracking_url(const ingress_t *ing, const char *delivery_id);

#endif
