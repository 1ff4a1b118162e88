/* delivery_feed.c — integration-test helper of dronepipe-delivery: produces DeliveryLifecycle and
 * DroneTelemetry records the way the workflow and the simulator do (Avro single-object values
 * from the embedded schemas, key = deliveryId, headers event_type / event_id / traceparent /
 * produced_at).
 *
 *   delivery_feed < lines        (DP_KAFKA_BROKERS from the environment)
 *
 * Each input line is one JSON object {"schema": "DeliveryLifecycle" | "DroneTelemetry",
 * "value": {...}}; lifecycle records go to dronedelivery.delivery.events, telemetry to
 * dronedelivery.drone.telemetry, in input order (one partition per key keeps that order).
 * Exits 0 once every record was acknowledged by the broker; 1 on any error (printed). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"

static atomic_int pending, failed;

static void done(void *opaque, pl_err_t err, const char *reason, int32_t partition, int64_t offset)
{
	(void)opaque;
	(void)partition;
	(void)offset;
	if (err != PL_OK) {
		fprintf(stderr, "delivery_feed: send failed: %s\n",
		        reason ? reason : pl_err_str(err));
		atomic_fetch_add(&failed, 1);
	}
	atomic_fetch_sub(&pending, 1);
}

int main(int argc, char **argv)
{
	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, NULL};
	int code = 0, rc = 1;
	pl_cfg_t *cfg = pl_cfg_load("delivery_feed", tables, argc, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init("delivery_feed", PL_LOG_WARN);
	char err[512] = "";
	pl_avro_registry_t *registry = pl_avro_registry_embedded(err, sizeof(err));
	pl_producer_t *producer =
	    registry ? pl_producer_new(cfg, "delivery_feed", NULL, err, sizeof(err)) : NULL;
	if (!producer) {
		fprintf(stderr, "delivery_feed: %s\n", err);
		goto out;
	}
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0, sent = 0;
	while (getline(&line, &cap, stdin) > 0) {
		lineno++;
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		json_error_t jerr;
		json_t *doc = json_loads(line, 0, &jerr);
		const char *schema_name = json_string_value(json_object_get(doc, "schema"));
		json_t *value = json_object_get(doc, "value");
		const char *id = json_string_value(json_object_get(value, "deliveryId"));
		const char *event_id = json_string_value(json_object_get(value, "eventId"));
		const pl_avro_schema_t *schema =
		    schema_name ? pl_avro_schema_get(registry, schema_name) : NULL;
		if (!schema || !id) {
			fprintf(stderr,
			        "delivery_feed: line %ld: need a known schema and a value with "
			        "deliveryId\n",
			        lineno);
			json_decref(doc);
			goto out_line;
		}
		void *bytes = NULL;
		size_t len = 0;
		if (pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)) != PL_OK) {
			fprintf(stderr, "delivery_feed: line %ld: %s\n", lineno, err);
			json_decref(doc);
			goto out_line;
		}
		const char *topic = strcmp(pl_avro_schema_short_name(schema), "DroneTelemetry") == 0
		                        ? "dronedelivery.drone.telemetry"
		                        : "dronedelivery.delivery.events";
		pl_event_meta_t meta = {.event_type = pl_avro_schema_short_name(schema),
		                        .event_id = event_id};
		atomic_fetch_add(&pending, 1);
		pl_err_t e;
		while ((e = pl_producer_send_event(producer, topic, id, bytes, len, &meta, done,
		                                   NULL)) == PL_ERR_QUEUE_FULL)
			usleep(10000);
		pl_free(bytes);
		json_decref(doc);
		if (e != PL_OK) {
			atomic_fetch_sub(&pending, 1);
			fprintf(stderr, "delivery_feed: line %ld: send: %s\n", lineno,
			        pl_err_str(e));
			goto out_line;
		}
		sent++;
	}
	for (int waited = 0; atomic_load(&pending) > 0 && waited < 30000; waited += 10)
		usleep(10000);
	if (atomic_load(&pending) > 0 || atomic_load(&failed) > 0) {
		fprintf(stderr, "delivery_feed: %d records not acknowledged\n",
		        atomic_load(&pending) + atomic_load(&failed));
		goto out_line;
	}
	printf("delivery_feed: %ld records acknowledged\n", sent);
	rc = 0;
out_line:
	free(line);
out:
	pl_producer_destroy(producer, 5000);
	pl_avro_registry_destroy(registry);
	pl_cfg_destroy(cfg);
	return rc;
}
