/* dronesim_feed.c — test helper of tests/it/test_dronesim.sh: produces one event, given as JSON,
 * Avro-encoded with the latest embedded schema of its record, with the standard headers and the
 * same idempotent producer (and partitioner) as the services:
 *     dronesim_feed TOPIC KEY SCHEMA JSON
 * e.g. dronesim_feed dronedelivery.drone.events d-1 DroneAssigned '{"eventId":...}'.
 * Brokers from DP_KAFKA_BROKERS. Exit 0 once the broker acknowledged, 1 on bad input, 2 when the
 * broker did not. Not a test itself (not named test_*). */
#include <stdio.h>
#include <string.h>

#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "mem.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s TOPIC KEY SCHEMA JSON\n", argv[0]);
		return 1;
	}
	const char *topic = argv[1], *key = argv[2], *schema_name = argv[3];
	int rc = 2, code = 0;
	char err[512] = "";
	json_t *event = NULL;
	void *buf = NULL;
	size_t len = 0;
	pl_avro_registry_t *registry = NULL;
	pl_producer_t *producer = NULL;
	char *cfg_argv[] = {argv[0], NULL};
	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, NULL};
	pl_cfg_t *cfg = pl_cfg_load("dronesim_feed", tables, 1, cfg_argv, NULL, stderr, &code);
	if (!cfg)
		return 1;
	registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		goto out;
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, schema_name);
	json_error_t jerr;
	event = json_loads(argv[4], 0, &jerr);
	if (!schema || !event) {
		snprintf(err, sizeof(err), "%s", !schema ? "unknown schema" : jerr.text);
		rc = 1;
		goto out;
	}
	if (pl_avro_encode(schema, event, &buf, &len, err, sizeof(err)) != PL_OK) {
		rc = 1;
		goto out;
	}
	producer = pl_producer_new(cfg, "dronesim_feed", NULL, err, sizeof(err));
	if (!producer)
		goto out;
	const char *event_id = json_string_value(json_object_get(event, "eventId"));
	char tp[56], produced_at[24], id[37];
	pl_traceparent_child(NULL, tp);
	snprintf(produced_at, sizeof(produced_at), "%lld", (long long)pl_now_ms());
	if (event_id)
		snprintf(id, sizeof(id), "%s", event_id);
	else
		pl_uuid_v4(id);
	const char *short_name = pl_avro_schema_short_name(schema);
	pl_header_t h[] = {{"event_type", short_name, strlen(short_name)},
	                   {"event_id", id, strlen(id)},
	                   {"traceparent", tp, strlen(tp)},
	                   {"produced_at", produced_at, strlen(produced_at)}};
	if (pl_producer_send_sync(producer, topic, key, strlen(key), buf, len, h, 4, 15000, err,
	                          sizeof(err)) == PL_OK)
		rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "dronesim_feed: %s\n", err);
	pl_producer_destroy(producer, 5000);
	pl_free(buf);
	json_decref(event);
	pl_avro_registry_destroy(registry);
	pl_cfg_destroy(cfg);
	return rc;
}
