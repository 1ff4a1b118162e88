/* service.c — runs a pl_service_def_t (see service.h). Owns the config, registry, stage, HTTP
 * server and the signal thread for the process's life. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "service.h"

typedef struct runner {
	const pl_service_def_t *def;
	void *state;
	pl_stage_t *stage;
	sigset_t sigs;
	atomic_bool finishing; /* set by pl_service_main once the stage returned and cleanup ran */
	int64_t shutdown_ms;   /* DP_SHUTDOWN_TIMEOUT_MS */
} runner_t;

static pl_stage_outcome_t handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                 const json_t *event, const pl_avro_schema_t *schema, void *arg)
{
	runner_t *r = arg;
	return r->def->handler(ctx, record, event, schema, r->state);
}

static void handle_batch(pl_stage_item_t *items, size_t n, void *arg)
{
	runner_t *r = arg;
	r->def->batch_handler(items, n, r->state);
}

static pl_err_t assigned(const char *topic, int32_t partition, void *arg)
{
	runner_t *r = arg;
	return r->def->on_assign ? r->def->on_assign(topic, partition, r->state) : PL_OK;
}

static pl_err_t revoked(const char *topic, int32_t partition, void *arg)
{
	runner_t *r = arg;
	return r->def->on_revoke ? r->def->on_revoke(topic, partition, r->state) : PL_OK;
}

static void stored(const char *topic, int32_t partition, int64_t next_offset, void *arg)
{
	runner_t *r = arg;
	r->def->on_stored(topic, partition, next_offset, r->state);
}

static void tick(void *arg)
{
	runner_t *r = arg;
	if (r->state)
		r->def->tick(r->state);
}

static bool ready(void *arg, char *reason, size_t reason_size)
{
	runner_t *r = arg;
	if (!pl_stage_ready(r->stage, reason, reason_size))
		return false;
	return !r->def->ready || r->def->ready(r->state, reason, reason_size);
}

/* Waits for SIGTERM/SIGINT, stops the stage, then watches the shutdown: when it has not ended
 * within DP_SHUTDOWN_TIMEOUT_MS (a handler stuck on a store that does not answer, or leaving
 * the group waiting for a coordinator an unreachable broker never provides), or a second signal
 * comes, the process exits at once with status 2 — its uncommitted records are consumed again
 * after the restart (at-least-once). */
static void *signal_main(void *arg)
{
	runner_t *r = arg;
	int sig = 0;
	sigwait(&r->sigs, &sig);
	if (atomic_load(&r->finishing))
		return NULL; /* woken by pl_service_main: the stage ended on its own */
	pl_log(PL_LOG_INFO, "stopping", PL_LOG_FIELDS(PL_LS("signal", strsignal(sig))),
	       "finishing the batch in hand, committing, leaving the group");
	pl_stage_stop(r->stage);
	struct timespec timeout = {r->shutdown_ms / 1000, (r->shutdown_ms % 1000) * 1000000};
	sig = sigtimedwait(&r->sigs, NULL, &timeout);
	if (atomic_load(&r->finishing))
		return NULL;
	pl_log(PL_LOG_ERROR, "shutdown_timeout", PL_LOG_FIELDS(PL_LI("after_ms", r->shutdown_ms)),
	       "%s",
	       sig > 0 ? "second signal: exiting now, without a clean leave"
	               : "the shutdown did not finish in time (broker unreachable?): exiting "
	                 "now, without a clean leave");
	_exit(2);
}

void pl_service_http_opts(const pl_cfg_t *cfg, const char *svc, pl_http_opts_t *out)
{
	*out = (pl_http_opts_t){
	    .svc = svc,
	    .addr = pl_cfg_str(cfg, "DP_HTTP_ADDR"),
	    .port = (uint16_t)pl_cfg_int(cfg, "DP_HTTP_PORT"),
	    .threads = (unsigned)pl_cfg_int(cfg, "DP_HTTP_THREADS"),
	    .max_body = (size_t)pl_cfg_int(cfg, "DP_HTTP_MAX_BODY"),
	    .max_conn_per_ip = (unsigned)pl_cfg_int(cfg, "DP_HTTP_MAX_CONN_PER_IP"),
	    .max_streams_per_ip = (unsigned)pl_cfg_int(cfg, "DP_HTTP_MAX_STREAMS_PER_IP"),
	    .request_timeout_ms = (unsigned)pl_cfg_int(cfg, "DP_HTTP_REQUEST_TIMEOUT_MS"),
	    .tls_cert_file = pl_cfg_str(cfg, "DP_TLS_CERT_FILE"),
	    .tls_key_file = pl_cfg_str(cfg, "DP_TLS_KEY_FILE"),
	};
}

int pl_service_main(const pl_service_def_t *def, int argc, char **argv)
{
	runner_t r = {.def = def};
	if (def->one_malloc_arena)
		mallopt(M_ARENA_MAX, 1);
	sigemptyset(&r.sigs);
	sigaddset(&r.sigs, SIGTERM);
	sigaddset(&r.sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &r.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* a shared table more (def->extra_cfg), and the authentication settings (auth.h) for a
	 * service with API routes; the list ends at the first NULL */
	const pl_cfg_opt_t *tables[6];
	size_t ntables = 0;
	tables[ntables++] = pl_cfg_common;
	tables[ntables++] = pl_stage_cfg;
	tables[ntables++] = def->cfg;
	if (def->extra_cfg)
		tables[ntables++] = def->extra_cfg;
	if (def->routes)
		tables[ntables++] = pl_auth_cfg;
	tables[ntables] = NULL;
	int code = 0;
	pl_cfg_t *cfg = pl_cfg_load(def->name, tables, argc, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init(def->svc, (pl_log_level_t)pl_log_level_parse(pl_cfg_str(cfg, "DP_LOG_LEVEL")));
	r.shutdown_ms = pl_cfg_int(cfg, "DP_SHUTDOWN_TIMEOUT_MS");

	char err[512] = "";
	int rc = 2;
	bool config_error = false, have_signal_thread = false;
	pthread_t signal_thread;
	pl_http_server_t *server = NULL;
	pl_auth_t *auth = NULL;
	pl_avro_registry_t *registry = NULL;
	if (def->routes) {
		auth = pl_auth_new(cfg, err, sizeof(err));
		if (!auth) {
			rc = 1;
			goto out;
		}
	}
	registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		goto out;
	pl_stage_opts_t so = {
	    .group = def->group,
	    .topics = def->topics,
	    .handler = def->handler ? handle : NULL,
	    .batch_handler = def->batch_handler ? handle_batch : NULL,
	    .handler_arg = &r,
	    .on_assign = assigned,
	    .on_revoke = revoked,
	    .on_stored = def->on_stored ? stored : NULL,
	    .assign_arg = &r,
	    .registry = registry,
	    .max_batch = def->max_batch,
	    .raw = def->raw,
	    .queue_kbytes = def->queue_kbytes,
	    .concurrent = def->concurrent,
	    .on_tick = def->tick ? tick : NULL,
	    .tick_arg = &r,
	};
	r.stage = pl_stage_new(cfg, &so, err, sizeof(err));
	if (!r.stage)
		goto out;
	pl_service_env_t env = {.cfg = cfg,
	                        .registry = registry,
	                        .producer = pl_stage_producer(r.stage),
	                        .stage = r.stage,
	                        .auth = auth};
	r.state = def->init ? def->init(&env, err, sizeof(err), &config_error) : NULL;
	if (def->init && !r.state) {
		if (config_error)
			rc = 1;
		goto out;
	}
	pl_http_route_t routes[32];
	size_t nroutes = def->routes ? def->routes(r.state, routes, 32) : 0;
	pl_http_opts_t ho;
	pl_service_http_opts(cfg, def->svc, &ho);
	ho.ready = ready;
	ho.ready_arg = &r;
	server = pl_http_server_start(&ho, routes, nroutes, err, sizeof(err));
	if (!server)
		goto out;
	if (pthread_create(&signal_thread, NULL, signal_main, &r) != 0) {
		snprintf(err, sizeof(err), "cannot start the signal thread");
		goto out;
	}
	have_signal_thread = true;
	pl_log(PL_LOG_INFO, "started",
	       PL_LOG_FIELDS(PL_LS("group", def->group), PL_LI("port", pl_http_port(server))),
	       "%s listening on %s:%u", def->name, ho.addr, pl_http_port(server));
	pl_err_t e = pl_stage_run(r.stage);
	if (e == PL_OK) {
		rc = 0;
	} else {
		snprintf(err, sizeof(err), "stage stopped: %s", pl_err_str(e));
	}
out:
	if (rc != 0 && err[0])
		pl_log(PL_LOG_FATAL, rc == 1 ? "config_error" : "fatal", NULL, "%s", err);
	/* the signal thread keeps watching until everything below is done */
	pl_http_server_stop(server);
	if (def->fini && r.state)
		def->fini(r.state);
	pl_stage_destroy(r.stage);
	if (have_signal_thread) {
		atomic_store(&r.finishing, true);
		pthread_kill(signal_thread, SIGTERM); /* wake it, whichever wait it is in */
		pthread_join(signal_thread, NULL);
	}
	pl_avro_registry_destroy(registry);
	pl_auth_destroy(auth);
	pl_cfg_destroy(cfg);
	return rc;
}
