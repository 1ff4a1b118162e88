/* http_baseline.c — benchmark-only HTTP server (scenario 1 of `make bench`).
 *
 * Same pipeline/ HTTP helper and the same thread settings as dronepipe-ingress (the options come
 * from the common config through pl_service_http_opts, so DP_HTTP_THREADS etc. apply alike), and
 * POST /api/deliveryrequests answers a fixed 202 JSON of the same shape as the ingress's answer,
 * with a Location header, but without validation, Avro or Kafka. It measures what the HTTP layer
 * alone costs on this machine: the ingress's ceiling.
 * Runs until SIGTERM/SIGINT. Exit codes: 0 clean, 1 config, 2 start failure. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "http.h"
#include "log.h"
#include "service.h"

static const pl_cfg_opt_t baseline_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "18790", 0, 65535, .help = "port of the baseline server"},
    {NULL},
};

static const char BODY[] =
    "{\"deliveryId\":\"3f2c1e4a-8b7d-4c2e-9f1a-0b6d5e4c3a21\",\"ownerId\":\"owner-1\","
    "\"pickupLocation\":\"47.6100,-122.3300\",\"dropOffLocation\":\"street 1\","
    "\"pickupTime\":\"2026-11-27T10:00:00Z\",\"deadline\":null,\"expedited\":false,"
    "\"confirmationRequired\":\"None\",\"packageInfo\":{\"packageId\":\"pkg-1\","
    "\"size\":\"Small\",\"weight\":1.5,\"tag\":\"t1\"}}";

static void on_create(pl_http_req_t *req, void *arg)
{
	(void)arg;
	pl_http_add_header(req, "Location", "/api/deliveries/3f2c1e4a-8b7d-4c2e-9f1a-0b6d5e4c3a21");
	pl_http_respond(req, 202, "application/json", BODY, sizeof(BODY) - 1);
}

int main(int argc, char **argv)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, baseline_cfg, NULL};
	int code = 0;
	pl_cfg_t *cfg = pl_cfg_load("bench-http-baseline", tables, argc, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init("bench-baseline",
	            (pl_log_level_t)pl_log_level_parse(pl_cfg_str(cfg, "DP_LOG_LEVEL")));
	const pl_http_route_t routes[] = {
	    {"POST", "/api/deliveryrequests", on_create, NULL, PL_HTTP_BODY_JSON},
	};
	pl_http_opts_t opts;
	pl_service_http_opts(cfg, "baseline", &opts);
	char err[512] = "";
	pl_http_server_t *server = pl_http_server_start(&opts, routes, 1, err, sizeof(err));
	if (!server) {
		fprintf(stderr, "bench-http-baseline: %s\n", err);
		pl_cfg_destroy(cfg);
		return 2;
	}
	fprintf(stderr, "bench-http-baseline: listening on %s:%u with %u threads\n", opts.addr,
	        pl_http_port(server), opts.threads);
	int sig = 0;
	sigwait(&sigs, &sig);
	pl_http_server_stop(server);
	pl_cfg_destroy(cfg);
	return 0;
}
