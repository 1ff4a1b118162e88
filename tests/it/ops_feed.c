/* ops_feed.c — test helper of tests/it/test_ops.sh: creates topics and produces the records the
 * ops CLI test needs (links libpipeline only).
 *
 *   ops_feed create TOPIC PARTITIONS
 *   ops_feed valid TOPIC COUNT KEYPREFIX          COUNT CreatePackage events, keys KEYPREFIX-<i>
 *   ops_feed dead DLQ SOURCE COUNT KEYPREFIX ERROR CLASS
 *                                                 COUNT CreatePackage events carrying the headers
 *                                                 of a dead letter (dp_error=ERROR <i>, ...)
 *   ops_feed raw TOPIC KEY TEXT                   one record whose value is TEXT (garbage)
 * Exit 0 when every record was acknowledged, 1 on bad arguments, 2 on failure. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"

static atomic_int failed;

static void on_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                    int64_t offset)
{
	(void)opaque;
	(void)partition;
	(void)offset;
	if (err != PL_OK) {
		fprintf(stderr, "ops_feed: not acknowledged: %s\n", reason ? reason : "?");
		atomic_fetch_add(&failed, 1);
	}
}

static int produce_events(const pl_cfg_t *cfg, pl_producer_t *prod, int argc, char **argv,
                          bool dead)
{
	char err[512];
	const char *topic = argv[2];
	const char *source = dead ? argv[3] : NULL;
	long count = strtol(argv[dead ? 4 : 3], NULL, 10);
	const char *prefix = argv[dead ? 5 : 4];
	(void)argc;
	(void)cfg;
	pl_avro_registry_t *reg = pl_avro_registry_embedded(err, sizeof(err));
	const pl_avro_schema_t *schema = reg ? pl_avro_schema_get(reg, "CreatePackage") : NULL;
	if (!schema) {
		fprintf(stderr, "ops_feed: no CreatePackage schema: %s\n", err);
		return 2;
	}
	for (long i = 0; i < count; i++) {
		char key[128], event_id[37], part[16], off[24], at[24], error[256];
		snprintf(key, sizeof(key), "%s-%ld", prefix, i);
		pl_uuid_v4(event_id);
		json_t *v = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:f,s:n}", "eventId", event_id,
		                      "deliveryId", key, "requestedAt", (json_int_t)pl_now_ms(),
		                      "ownerId", "owner-ops-it", "packageId", key, "size", "Small",
		                      "weight", 1.5, "tag");
		void *bytes = NULL;
		size_t len = 0;
		if (pl_avro_encode(schema, v, &bytes, &len, err, sizeof(err)) != PL_OK) {
			fprintf(stderr, "ops_feed: encode: %s\n", err);
			return 2;
		}
		json_decref(v);
		pl_header_t h[12];
		size_t n = 0;
		h[n++] = (pl_header_t){"event_type", "CreatePackage", 13};
		h[n++] = (pl_header_t){"event_id", event_id, strlen(event_id)};
		if (dead) {
			snprintf(error, sizeof(error), "%s %ld", argv[6], i);
			snprintf(part, sizeof(part), "%ld", i % 3);
			snprintf(off, sizeof(off), "%ld", 1000 + i);
			snprintf(at, sizeof(at), "%lld", (long long)pl_now_ms());
			h[n++] = (pl_header_t){"dp_error", error, strlen(error)};
			h[n++] = (pl_header_t){"dp_error_class", argv[7], strlen(argv[7])};
			h[n++] = (pl_header_t){"dp_source_topic", source, strlen(source)};
			h[n++] = (pl_header_t){"dp_source_partition", part, strlen(part)};
			h[n++] = (pl_header_t){"dp_source_offset", off, strlen(off)};
			h[n++] = (pl_header_t){"dp_group", "package", 7};
			h[n++] = (pl_header_t){"dp_dead_at", at, strlen(at)};
		}
		pl_err_t e;
		while ((e = pl_producer_send(prod, topic, key, strlen(key), bytes, len, h, n,
		                             on_done, NULL)) == PL_ERR_QUEUE_FULL)
			;
		pl_free(bytes);
		if (e != PL_OK) {
			fprintf(stderr, "ops_feed: send: %s\n", pl_err_str(e));
			return 2;
		}
	}
	pl_avro_registry_destroy(reg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	bool ok_args =
	    (strcmp(cmd, "create") == 0 && argc == 4) || (strcmp(cmd, "valid") == 0 && argc == 5) ||
	    (strcmp(cmd, "dead") == 0 && argc == 8) || (strcmp(cmd, "raw") == 0 && argc == 5);
	if (!ok_args) {
		fprintf(stderr,
		        "usage: ops_feed create TOPIC PARTITIONS | valid TOPIC COUNT PREFIX |"
		        " dead DLQ SOURCE COUNT PREFIX ERROR CLASS | raw TOPIC KEY TEXT\n");
		return 1;
	}
	pl_log_init("ops_feed", PL_LOG_ERROR);
	pl_log_set_fd(2);
	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, NULL};
	char *noargs[] = {argv[0], NULL};
	int code = 0;
	pl_cfg_t *cfg = pl_cfg_load("ops_feed", tables, 1, noargs, NULL, stderr, &code);
	if (!cfg)
		return 2;
	char err[512];
	int rc = 0;
	if (strcmp(cmd, "create") == 0) {
		pl_admin_t *admin = NULL;
		if (pl_admin_new(cfg, 10000, &admin, err, sizeof(err)) != PL_OK ||
		    pl_admin_create_topic(admin, argv[2], atoi(argv[3]), err, sizeof(err)) !=
		        PL_OK) {
			fprintf(stderr, "ops_feed: %s\n", err);
			rc = 2;
		}
		pl_admin_destroy(admin);
		pl_cfg_destroy(cfg);
		return rc;
	}
	pl_producer_t *prod = pl_producer_new(cfg, "ops_feed", NULL, err, sizeof(err));
	if (!prod) {
		fprintf(stderr, "ops_feed: %s\n", err);
		pl_cfg_destroy(cfg);
		return 2;
	}
	if (strcmp(cmd, "raw") == 0) {
		if (pl_producer_send(prod, argv[2], argv[3], strlen(argv[3]), argv[4],
		                     strlen(argv[4]), NULL, 0, on_done, NULL) != PL_OK)
			rc = 2;
	} else {
		rc = produce_events(cfg, prod, argc, argv, strcmp(cmd, "dead") == 0);
	}
	pl_producer_destroy(prod, 30000);
	pl_cfg_destroy(cfg);
	return rc ? rc : atomic_load(&failed) ? 2 : 0;
}
