/* service.h — the common life of a consumer-stage service, so each main.c is only wiring:
 * config -> logging -> schemas -> stage (consumer group + producer) -> service state -> HTTP
 * server (service routes + /healthz /readyz /metrics) -> run until SIGTERM/SIGINT -> drain,
 * commit, leave the group -> teardown.
 * Exit codes: 0 clean shutdown, 1 configuration error, 2 fatal error.
 * Thread rules: handlers and assign hooks run on the stage (main) thread; routes on HTTP pool
 * threads; a dedicated thread waits for signals. */
#ifndef PL_SERVICE_H
#define PL_SERVICE_H

#include "auth.h"
#include "avro.h"
#include "cfg.h"
#include "http.h"
#include "stage.h"

typedef struct pl_service_env {
	const pl_cfg_t *cfg;
	const pl_avro_registry_t *registry;
	pl_producer_t *producer; /* the stage's producer, for output outside handlers */
	pl_stage_t *stage;
	/* who may call the service's routes (pl_auth_cfg is in the config of a service with
	 * routes; open when none is configured); valid until after fini */
	const pl_auth_t *auth;
} pl_service_env_t;

typedef struct pl_service_def {
	const char *name;              /* binary name, e.g. "dronepipe-package" */
	const char *svc;               /* log/metrics name, e.g. "package" */
	const pl_cfg_opt_t *cfg;       /* the service's own options (must include DP_HTTP_PORT) */
	const pl_cfg_opt_t *extra_cfg; /* NULL, or a shared table more (e.g. pl_area_cfg) */
	const char *group;             /* consumer group */
	const char *const *topics;     /* NULL-terminated */
	/* Builds the service state. Return NULL + errstr to fail; *config_error = true makes the
	 * exit code 1 instead of 2. */
	void *(*init)(const pl_service_env_t *env, char *errstr, size_t errstr_size,
	              bool *config_error);
	void (*fini)(void *state);
	pl_stage_handler_fn handler;     /* arg = state; or ... */
	pl_stage_batch_fn batch_handler; /* ... several records per call (stage.h); arg = state */
	pl_stage_assign_fn on_assign;    /* optional; arg = state */
	pl_stage_assign_fn on_revoke;    /* optional; arg = state */
	/* optional; arg = state (stage.h: opts.on_stored) */
	void (*on_stored)(const char *topic, int32_t partition, int64_t next_offset, void *state);
	size_t (*routes)(void *state, pl_http_route_t *out, size_t max); /* optional */
	bool (*ready)(void *state, char *reason, size_t reason_size);    /* optional, extra */
	int max_batch;                                                   /* 0 = stage default */
	bool raw;         /* records reach the handler undecoded (stage.h: opts.raw) */
	int queue_kbytes; /* pre-fetch per partition (stage.h); 0 = stage default */
	/* One malloc arena for every thread (M_ARENA_MAX 1, set before any starts), for a service
	 * that holds long-lived state and restores it through readers: each reader's librdkafka
	 * threads otherwise free their fetch buffers into arenas of their own, whose pages stay
	 * resident. A stateless consumer (delivery) gained nothing from it. */
	bool one_malloc_arena;
	bool concurrent; /* handler is thread-safe: records of different keys at once (stage.h) */
	void (*tick)(void *state); /* optional: on the stage thread, at least every 100 ms */
} pl_service_def_t;

/* HTTP server options from the common config (DP_HTTP_ADDR, _PORT, _THREADS, _MAX_BODY,
 * _MAX_CONN_PER_IP, _MAX_STREAMS_PER_IP, _REQUEST_TIMEOUT_MS, DP_TLS_*); ready/ready_arg are
 * left NULL. */
void pl_service_http_opts(const pl_cfg_t *cfg, const char *svc, pl_http_opts_t *out);

int pl_service_main(const pl_service_def_t *def, int argc, char **argv);

#endif
