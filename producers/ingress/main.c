/* main.c — dronepipe-ingress: wiring only (config -> producer -> HTTP server -> wait for a
 * signal -> drain -> teardown). Exit codes: 0 clean, 1 config, 2 fatal.
 *
 * Drain on SIGTERM/SIGINT: the listening socket closes (a new client is refused at once), a
 * request on a connection already open is answered 503, and every request already received
 * gets its answer: 202 once Kafka acknowledged it, or 503 when DP_SHUTDOWN_TIMEOUT_MS ran out
 * first. Only when no request is open does the HTTP server stop, and only then is the producer
 * flushed and destroyed, so no handler ever reaches a destroyed producer. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "routes.h"
#include "service.h"

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

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

	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, ingress_cfg, pl_area_cfg, pl_auth_cfg,
	                                      NULL};
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
	/* draining first: a handler that starts from now on answers 503 without producing; one
	 * that started before is counted in pl_http_requests_open (both sequentially
	 * consistent), so the wait below sees it. */
	atomic_store(&ing.draining, true);
	pl_http_server_quiesce(server);
	int64_t deadline = pl_now_ms() + pl_cfg_int(cfg, "DP_SHUTDOWN_TIMEOUT_MS");
	while (pl_http_requests_open(server) > 0 && pl_now_ms() < deadline)
		pause_ms(10);
	unsigned left = pl_http_requests_open(server);
	if (left > 0) {
		pl_log(PL_LOG_WARN, "drain_timeout", PL_LOG_FIELDS(PL_LI("requests", left)),
		       "requests still open after DP_SHUTDOWN_TIMEOUT_MS: answering 503 to those "
		       "waiting for Kafka");
		ingress_answer_pending(&ing);
		deadline = pl_now_ms() + 1000; /* for the answers to be sent */
		while (pl_http_requests_open(server) > 0 && pl_now_ms() < deadline)
			pause_ms(10);
	}
	rc = 0;
out:
	if (rc == 2 && err[0])
		pl_log(PL_LOG_FATAL, "start_failed", NULL, "%s", err);
	else if (rc == 1)
		fprintf(stderr, "%s\n", err);
	/* HTTP first: no handler runs any more and no request waits for an answer; then the
	 * producer's last reports (of requests already answered 503) find nobody to answer. */
	pl_http_server_stop(server);
	pl_producer_destroy(producer, 5000);
	if (ing_ready)
		ingress_fini(&ing);
	pl_avro_registry_destroy(registry);
	pl_cfg_destroy(cfg);
	return rc;
}
