/* produce.c — raw produce ceiling (scenario 2 of `make bench`).
 *
 * Sends pre-encoded DeliveryRequested payloads (Avro single-object, encoded once with
 * pl_avro_encode) to dronedelivery.requests through pl_producer with exactly the ingress's
 * settings (pl_producer_new: acks=all, idempotent, linger.ms=5, murmur2; message.timeout.ms =
 * DP_INGRESS_ACK_TIMEOUT_MS as the ingress sets it) and the same event headers, keyed by a fresh
 * UUID per record, as fast as the broker takes them. On a full local queue it waits 1 ms and
 * retries. Prints one JSON line: records, seconds (first send to last acknowledgement),
 * records_per_s, errors.
 *
 * Usage: bench-produce [RECORDS [DISTINCT_PAYLOADS [requests|lifecycle|completed]]]
 *        (environment: DP_KAFKA_BROKERS, DP_*)
 * Mode lifecycle (the input of the replay scenario): RECORDS distinct DeliveryLifecycle events on
 * dronedelivery.delivery.events, five per delivery (Created, Scheduled, HeadedToPickup,
 * HeadedToDropoff, Completed with versions 1..5), each encoded as it is sent. Mode completed (the
 * delivery records of the cost-of-growth scenario): one Completed event (version 5) per
 * delivery. */
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"

#define TOPIC           "dronedelivery.requests"
#define TOPIC_LIFECYCLE "dronedelivery.delivery.events"

/* The lifecycle event number i (delivery i / 5, stage i % 5; completed_only: delivery i,
 * Completed), encoded. */
static pl_err_t lifecycle_event(const pl_avro_schema_t *schema, long i, bool completed_only,
                                char key[37], void **out, size_t *len, char *err, size_t errsz)
{
	static const char *stages[] = {"Created", "Scheduled", "HeadedToPickup", "HeadedToDropoff",
	                               "Completed"};
	static char id[37];
	long d = completed_only ? i : i / 5;
	int st = completed_only ? 4 : (int)(i % 5);
	if (st == 0 || completed_only)
		pl_uuid_v4(id);
	memcpy(key, id, 37);
	char ev_id[37], owner[32], pick[48], pkg[32], drone[32];
	pl_uuid_v4(ev_id);
	snprintf(owner, sizeof(owner), "owner-%ld", d % 1000);
	double lat = 47.5 + (double)(d % 2500) / 10000.0,
	       lon = -122.2 - (double)(d % 2500) / 10000.0;
	snprintf(pick, sizeof(pick), "%.4f,%.4f", lat, lon);
	snprintf(pkg, sizeof(pkg), "pkg-%ld", d);
	snprintf(drone, sizeof(drone), "drone-%04ld", d % 1000 + 1);
	int64_t now = pl_now_ms();
	json_t *ev = json_pack(
	    "{s:s, s:s, s:s, s:I, s:I, s:n, s:I, s:s, s:s, s:{s:f, s:f, s:f}, s:s, s:{s:f, s:f, "
	    "s:f},"
	    " s:I, s:n, s:b, s:s, s:s, s:n, s:n, s:n, s:n}",
	    "eventId", ev_id, "deliveryId", id, "stage", stages[st], "version",
	    (json_int_t)(st + 1), "time", (json_int_t)now, "causationId", "requestedAt",
	    (json_int_t)now, "ownerId", owner, "pickupLocation", pick, "pickup", "latitude", lat,
	    "longitude", lon, "altitude", 0.0, "dropOffLocation", pick, "dropoff", "latitude",
	    lat + 0.01, "longitude", lon + 0.01, "altitude", 0.0, "pickupTime", (json_int_t)now,
	    "deadline", "expedited", d % 2 == 0, "confirmationRequired", "None", "packageId", pkg,
	    "droneId", "pickupEta", "deliveryEta", "reason");
	if (!ev)
		return PL_ERR_INVALID;
	if (st >= 1) {
		json_object_set_new(ev, "droneId", json_string(drone));
		json_object_set_new(ev, "deliveryEta", json_integer(now + 600000));
	}
	if (st >= 3)
		json_object_set_new(ev, "pickupEta", json_integer(now + 60000));
	pl_err_t e = pl_avro_encode(schema, ev, out, len, err, errsz);
	json_decref(ev);
	return e;
}

static const pl_cfg_opt_t produce_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "0", 0, 65535, .help = "unused"},
    {"DP_INGRESS_ACK_TIMEOUT_MS", PL_CFG_INT, "5000", 100, 300000,
     .help = "message.timeout.ms, as the ingress sets it"},
    {NULL},
};

static atomic_long acked, failed;

static void on_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                    int64_t offset)
{
	(void)opaque;
	(void)reason;
	(void)partition;
	(void)offset;
	if (err == PL_OK)
		atomic_fetch_add(&acked, 1);
	else
		atomic_fetch_add(&failed, 1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long records = argc > 1 ? atol(argv[1]) : 200000;
	int distinct = argc > 2 ? atoi(argv[2]) : 1000;
	bool completed_only = argc > 3 && strcmp(argv[3], "completed") == 0;
	bool lifecycle = completed_only || (argc > 3 && strcmp(argv[3], "lifecycle") == 0);
	if (records <= 0 || distinct <= 0) {
		fprintf(stderr, "usage: bench-produce [RECORDS [DISTINCT_PAYLOADS]]\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, produce_cfg, NULL};
	int code = 0;
	pl_cfg_t *cfg = pl_cfg_load("bench-produce", tables, 1, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init("bench-produce", PL_LOG_WARN);
	char err[512] = "";
	pl_avro_registry_t *reg = pl_avro_registry_embedded(err, sizeof(err));
	if (!reg) {
		fprintf(stderr, "bench-produce: %s\n", err);
		return 2;
	}
	const pl_avro_schema_t *schema = pl_avro_schema_get(reg, "DeliveryRequested");
	const pl_avro_schema_t *ls = pl_avro_schema_get(reg, "DeliveryLifecycle");
	/* the payloads, as the ingress builds them from varied valid bodies (bench/wrk-post.lua) */
	static const char *sizes[] = {"Small", "Medium", "Large"};
	static const char *conf[] = {"None", "Picture", "FingerPrint", "Voice"};
	void **payload = calloc((size_t)distinct, sizeof(void *));
	size_t *plen = calloc((size_t)distinct, sizeof(size_t));
	size_t bytes = 0;
	for (int i = 0; i < distinct; i++) {
		char id[37], ev_id[37], owner[32], pick[48], drop[32], pkg[32], tag[8];
		pl_uuid_v4(id);
		pl_uuid_v4(ev_id);
		double lat = 47.5 + (i % 2500) / 10000.0, lon = -122.2 - (i % 2500) / 10000.0;
		snprintf(owner, sizeof(owner), "owner-%d", i % 1000);
		snprintf(pick, sizeof(pick), "%.4f,%.4f", lat, lon);
		snprintf(drop, sizeof(drop), "street %d", i % 977);
		snprintf(pkg, sizeof(pkg), "pkg-%d", i);
		snprintf(tag, sizeof(tag), "t%d", i % 7);
		json_t *ev = json_pack(
		    "{s:s, s:s, s:I, s:s, s:s, s:{s:f, s:f, s:f}, s:s, s:{s:f, s:f, s:f}, s:I, "
		    "s:n, "
		    "s:b, s:s, s:{s:s, s:s, s:f, s:s}, s:n}",
		    "eventId", ev_id, "deliveryId", id, "requestedAt", (json_int_t)pl_now_ms(),
		    "ownerId", owner, "pickupLocation", pick, "pickup", "latitude", lat,
		    "longitude", lon, "altitude", 0.0, "dropOffLocation", drop, "dropoff",
		    "latitude", lat + 0.01, "longitude", lon + 0.01, "altitude", 0.0, "pickupTime",
		    (json_int_t)1795773600000LL, "deadline", "expedited", i % 2 == 0,
		    "confirmationRequired", conf[i % 4], "packageInfo", "packageId", pkg, "size",
		    sizes[i % 3], "weight", (double)(i % 20) + 0.5, "tag", tag, "idempotencyKey");
		if (!ev ||
		    pl_avro_encode(schema, ev, &payload[i], &plen[i], err, sizeof(err)) != PL_OK) {
			fprintf(stderr, "bench-produce: encode: %s\n",
			        ev ? err : "json_pack failed");
			return 2;
		}
		bytes += plen[i];
		json_decref(ev);
	}
	char timeout[24];
	snprintf(timeout, sizeof(timeout), "%lld",
	         (long long)pl_cfg_int(cfg, "DP_INGRESS_ACK_TIMEOUT_MS"));
	const char *props[] = {"message.timeout.ms", timeout, NULL};
	pl_producer_t *prod = pl_producer_new(cfg, "bench-produce", props, err, sizeof(err));
	if (!prod) {
		fprintf(stderr, "bench-produce: %s\n", err);
		return 2;
	}
	/* wait for metadata, so connection set-up is not in the figure */
	for (int i = 0; i < 200 && !pl_producer_ready(prod, err, sizeof(err)); i++) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	const char *schema_name = pl_avro_schema_short_name(lifecycle ? ls : schema);
	const char *topic = lifecycle ? TOPIC_LIFECYCLE : TOPIC;
	double t0 = now_s();
	long sent = 0, full_waits = 0, refused = 0;
	while (sent < records) {
		char key[37], tp[56];
		pl_uuid_v4(key);
		pl_traceparent_child(NULL, tp);
		pl_header_t extra[] = {{"request_id", key, 36}};
		pl_event_meta_t meta = {
		    .event_type = schema_name, .traceparent = tp, .extra = extra, .extra_count = 1};
		int k = (int)(sent % distinct);
		void *val = payload[k];
		size_t vlen = plen[k];
		if (lifecycle && lifecycle_event(ls, sent, completed_only, key, &val, &vlen, err,
		                                 sizeof(err)) != PL_OK) {
			fprintf(stderr, "bench-produce: encode lifecycle: %s\n", err);
			return 2;
		}
		pl_err_t e;
		while ((e = pl_producer_send_event(prod, topic, key, val, vlen, &meta, on_done,
		                                   NULL)) == PL_ERR_QUEUE_FULL) {
			full_waits++;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		if (e != PL_OK)
			refused++;
		if (lifecycle)
			pl_free(val);
		sent++;
	}
	while (atomic_load(&acked) + atomic_load(&failed) + refused < records &&
	       now_s() - t0 < 600) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	double dt = now_s() - t0;
	long ok = atomic_load(&acked);
	printf(
	    "{\"records\":%ld,\"acked\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"records_per_s\":%.0f,"
	    "\"avg_payload_bytes\":%.0f,\"queue_full_waits\":%ld}\n",
	    records, ok, atomic_load(&failed) + refused, dt, (double)ok / dt,
	    (double)bytes / distinct, full_waits);
	pl_producer_destroy(prod, 10000);
	for (int i = 0; i < distinct; i++)
		pl_free(payload[i]);
	free(payload);
	free(plen);
	pl_avro_registry_destroy(reg);
	pl_cfg_destroy(cfg);
	return 0;
}
