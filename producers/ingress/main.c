/* main.c — dronepipe-ingress: wiring only (config -> producer -> HTTP server -> wait for a
 * signal -> drain -> teardown). Exit codes: 0 clean, 1 config, 2 fatal. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "routes.h"
#include "service.h"

int main(int argc, char **argv)
{
	/* Signals are taken synchronously by this thread; every thread created later inherits
	 * the mask, so none of them is interrupted. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, ingress_cfg, pl_auth_cfg, NULL};
	int code = 0;
	pl_cfg_t *cfg = pl_cfg_load("dronepipe-ingress", tables, argc, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init("ingress", (pl_log_level_t)pl_log_level_parse(pl_cfg_str(cfg, "DP_LOG_LEVEL")));

	char err[512] = "";
	int rc = 2;
	pl_avro_registry_t *registry = NULL;
	pl_producer_t *producer = NULL;
	pl_http_server_t *server = NULL;
	ingress_t ing;
	bool ing_ready = false;
	registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		goto out;
	char timeout[24];
	snprintf(timeout, sizeof(timeout), "%lld",
	         (long long)pl_cfg_int(cfg, "DP_INGRESS_ACK_TIMEOUT_MS"));
	/* message.timeout.ms bounds the wait for the delivery report: a request is answered 202
	 * or 503 within the ack timeout, never left hanging. */
	const char *props[] = {"message.timeout.ms", timeout, NULL};
	producer = pl_producer_new(cfg, "ingress", props, err, sizeof(err));
	if (!producer)
		goto out;
	if (!ingress_init(&ing, cfg, producer, registry, err, sizeof(err))) {
		rc = 1;
		goto out;
	}
	ing_ready = true;
	pl_http_route_t routes[16];
	size_t nroutes = ingress_routes(&ing, routes, 16);
	pl_http_opts_t opts;
	pl_service_http_opts(cfg, "ingress", &opts);
	opts.ready = ingress_ready;
	opts.ready_arg = &ing;
	server = pl_http_server_start(&opts, routes, nroutes, err, sizeof(err));
	if (!server)
		goto out;
	pl_log(PL_LOG_INFO, "started", PL_LOG_FIELDS(PL_LI("port", pl_http_port(server))),
	       "ingress listening on %s:%u", opts.addr, pl_http_port(server));

	int sig = 0;
	sigwait(&sigs, &sig);
	pl_log(PL_LOG_INFO, "stopping", PL_LOG_FIELDS(PL_LS("signal", strsignal(sig))),
	       "draining requests in flight");
	/* Drain: new requests get 503; requests in flight get their answer from the delivery
	 * report before the server stops. */
	atomic_store(&ing.draining, true);
	int64_t deadline = pl_now_ms() + pl_cfg_int(cfg, "DP_SHUTDOWN_TIMEOUT_MS");
	while (atomic_load(&ing.inflight) > 0 && pl_now_ms() < deadline) {
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	rc = 0;
out:
	if (rc == 2 && err[0])
		pl_log(PL_LOG_FATAL, "start_failed", NULL, "%s", err);
	else if (rc == 1)
		fprintf(stderr, "%s\n", err);
	/* Producer first: its last completions still answer suspended requests. */
	pl_producer_destroy(producer, 5000);
	pl_http_server_stop(server);
	if (ing_ready)
		ingress_fini(&ing);
	pl_avro_registry_destroy(registry);
	pl_cfg_destroy(cfg);
	return rc;
}
