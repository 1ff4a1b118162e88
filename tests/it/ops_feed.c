/* ops_feed.c — test helper of tests/it/test_ops.sh: creates topics and produces the records the
 * ops CLI test needs (links libpipeline only).
 *
 *   ops_feed create TOPIC PARTITIONS
 *   ops_feed valid TOPIC COUNT KEYPREFIX          COUNT CreatePackage events, keys KEYPREFIX-<i>
 *   ops_feed dead DLQ SOURCE COUNT KEYPREFIX ERROR CLASS
 *                                                 COUNT CreatePackage events carrying the headers
 *                                                 of a dead letter (dp_error=ERROR <i>, ...)
 *   ops_feed raw TOPIC KEY TEXT                   one record whose value is TEXT (garbage)
 *   ops_feed hostile DLQ SOURCE TAG               4 dead letters (deliveryId TAG-<class>) whose
 * key, dp_error, dp_group, an x-note header and a header name carry hostile text by class: utf8
 * (invalid UTF-8), ctrl (terminal escapes, C1, bidi), nul (an embedded NUL), huge (100,000 bytes);
 * their dp_source_topic is SOURCE (so they redrive) ops_feed badsource DLQ TARGET TAG dead letters
 * whose dp_source_topic is not TARGET (TAG-skip-<i>: other topics, TARGET with a NUL / suffix /
 * invalid byte, escapes, empty, missing, huge) and 2 whose is (TAG-good-<i>) Exit 0 when every
 * record was acknowledged, 1 on bad arguments, 2 on failure. */
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

/* One CreatePackage dead letter to dlq: key, deliveryId, and extra headers (name, bytes, len)
 * after event_type and event_id. */
static int send_letter(pl_producer_t *prod, const pl_avro_schema_t *schema, const char *dlq,
                       const void *key, size_t key_len, const char *delivery_id,
                       const pl_header_t *extra, size_t nextra)
{
	char event_id[37], err[256];
	pl_uuid_v4(event_id);
	json_t *v = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:f,s:n}", "eventId", event_id,
	                      "deliveryId", delivery_id, "requestedAt", (json_int_t)pl_now_ms(),
	                      "ownerId", "owner-ops-it", "packageId", delivery_id, "size", "Small",
	                      "weight", 1.5, "tag");
	void *bytes = NULL;
	size_t len = 0;
	pl_err_t e = pl_avro_encode(schema, v, &bytes, &len, err, sizeof(err));
	json_decref(v);
	if (e != PL_OK) {
		fprintf(stderr, "ops_feed: encode: %s\n", err);
		return 2;
	}
	pl_header_t h[PL_MAX_HEADERS];
	size_t n = 0;
	h[n++] = (pl_header_t){"event_type", "CreatePackage", 13};
	h[n++] = (pl_header_t){"event_id", event_id, strlen(event_id)};
	for (size_t i = 0; i < nextra && n < PL_MAX_HEADERS; i++)
		h[n++] = extra[i];
	while ((e = pl_producer_send(prod, dlq, key, key_len, bytes, len, h, n, on_done, NULL)) ==
	       PL_ERR_QUEUE_FULL)
		;
	pl_free(bytes);
	if (e != PL_OK) {
		fprintf(stderr, "ops_feed: send: %s\n", pl_err_str(e));
		return 2;
	}
	return 0;
}

#define HUGE_LEN 100000

static int produce_hostile(pl_producer_t *prod, const pl_avro_schema_t *schema, char **argv)
{
	const char *dlq = argv[2], *source = argv[3], *tag = argv[4];
	char *huge = pl_malloc(HUGE_LEN);
	for (size_t i = 0; i < HUGE_LEN; i++)
		huge[i] = i % 1000 == 999 ? '\x1b' : (char)('a' + i % 26);
	const struct {
		const char *cls, *payload;
		size_t len;
		const char *header_name;
	} c[] = {
#define PAYLOAD(lit) lit, sizeof(lit) - 1
	    {"utf8", PAYLOAD("\xff\xfe\xc0\xaf\xed\xa0\x80 caf\xc3\xa9 \xf4\x90\x80\x80 \xe2\x82"),
	     "x-\xff\xfe"},
	    {"ctrl",
	     PAYLOAD("\x1b[2J\x1b]0;pwned\x07\r\n\b\x7f\xc2\x9b"
	             "31m\xe2\x80\xae"
	             "txt"),
	     "x-\x1b[1m"},
	    {"nul", PAYLOAD("before\0after"), "x-nul"},
#undef PAYLOAD
	    {"huge", huge, HUGE_LEN, "x-huge"},
	};
	int rc = 0;
	char at[24];
	snprintf(at, sizeof(at), "%lld", (long long)pl_now_ms());
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]) && rc == 0; i++) {
		char id[128], *key = pl_malloc(128 + c[i].len), *error = pl_malloc(128 + c[i].len);
		snprintf(id, sizeof(id), "%s-%s", tag, c[i].cls);
		int kp = snprintf(key, 128, "%s-%s-", tag, c[i].cls);
		memcpy(key + kp, c[i].payload, c[i].len);
		int ep = snprintf(error, 128, "%s %s: ", tag, c[i].cls);
		memcpy(error + ep, c[i].payload, c[i].len);
		pl_header_t x[] = {
		    {"x-note", c[i].payload, c[i].len},
		    {c[i].header_name, "named", 5},
		    {"dp_error", error, (size_t)ep + c[i].len},
		    {"dp_error_class", "hostile", 7},
		    {"dp_source_topic", source, strlen(source)},
		    {"dp_source_partition", "0", 1},
		    {"dp_source_offset", "1", 1},
		    {"dp_group", c[i].payload, c[i].len},
		    {"dp_dead_at", at, strlen(at)},
		};
		rc = send_letter(prod, schema, dlq, key, (size_t)kp + c[i].len, id, x,
		                 sizeof(x) / sizeof(x[0]));
		pl_free(key);
		pl_free(error);
	}
	pl_free(huge);
	return rc;
}

static int produce_badsource(pl_producer_t *prod, const pl_avro_schema_t *schema, char **argv)
{
	const char *dlq = argv[2], *target = argv[3], *tag = argv[4];
	size_t tn = strlen(target);
	char evil[256], nul[300], suffix[300], byte[300], huge[5000];
	snprintf(evil, sizeof(evil), "ops.it.%s.evil", tag);
	snprintf(nul, sizeof(nul), "%s%cevil", target, 0);
	snprintf(suffix, sizeof(suffix), "%s.x", target);
	snprintf(byte, sizeof(byte), "%s\xff", target);
	memset(huge, 'a', sizeof(huge));
	const struct {
		const char *source; /* NULL: no dp_source_topic header */
		size_t len;
	} s[] = {
	    {"dronedelivery.workflow.state", 28},
	    {"dronedelivery.package.commands", 30},
	    {evil, strlen(evil)},
	    {"__consumer_offsets", 18},
	    {nul, tn + 5},
	    {suffix, tn + 2},
	    {byte, tn + 1},
	    {"\x1b[2J\x1b[31mred", 12},
	    {"", 0},
	    {NULL, 0},
	    {huge, sizeof(huge)},
	    {target, tn},
	    {target, tn},
	};
	int rc = 0, skip = 0, good = 0;
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]) && rc == 0; i++) {
		char key[128], error[128];
		bool ok = s[i].source == target;
		snprintf(key, sizeof(key), "%s-%s-%d", tag, ok ? "good" : "skip",
		         ok ? good++ : skip++);
		snprintf(error, sizeof(error), "%s bad source %zu", tag, i);
		pl_header_t x[] = {
		    {"dp_error", error, strlen(error)},
		    {"dp_error_class", "rejected", 8},
		    {"dp_source_topic", s[i].source, s[i].len},
		};
		rc = send_letter(prod, schema, dlq, key, strlen(key), key, x, s[i].source ? 3 : 2);
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	bool ok_args =
	    (strcmp(cmd, "create") == 0 && argc == 4) || (strcmp(cmd, "valid") == 0 && argc == 5) ||
	    (strcmp(cmd, "dead") == 0 && argc == 8) || (strcmp(cmd, "raw") == 0 && argc == 5) ||
	    (strcmp(cmd, "hostile") == 0 && argc == 5) ||
	    (strcmp(cmd, "badsource") == 0 && argc == 5);
	if (!ok_args) {
		fprintf(stderr,
		        "usage: ops_feed create TOPIC PARTITIONS | valid TOPIC COUNT PREFIX |"
		        " dead DLQ SOURCE COUNT PREFIX ERROR CLASS | raw TOPIC KEY TEXT |"
		        " hostile DLQ SOURCE TAG | badsource DLQ TARGET TAG\n");
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
	} else if (strcmp(cmd, "hostile") == 0 || strcmp(cmd, "badsource") == 0) {
		pl_avro_registry_t *reg = pl_avro_registry_embedded(err, sizeof(err));
		const pl_avro_schema_t *schema =
		    reg ? pl_avro_schema_get(reg, "CreatePackage") : NULL;
		if (!schema) {
			fprintf(stderr, "ops_feed: no CreatePackage schema: %s\n", err);
			rc = 2;
		} else {
			rc = strcmp(cmd, "hostile") == 0 ? produce_hostile(prod, schema, argv)
			                                 : produce_badsource(prod, schema, argv);
		}
		pl_avro_registry_destroy(reg);
	} else {
		rc = produce_events(cfg, prod, argc, argv, strcmp(cmd, "dead") == 0);
	}
	pl_producer_destroy(prod, 30000);
	pl_cfg_destroy(cfg);
	return rc ? rc : atomic_load(&failed) ? 2 : 0;
}
