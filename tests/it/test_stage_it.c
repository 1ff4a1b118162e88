/* test_stage_it.c — integration test of the consumer-stage loop (pipeline/stage.c) against the
 * real Kafka broker in DP_KAFKA_BROKERS.
 *
 *   test_stage_it                                   runs the scenarios (the parent)
 *   test_stage_it worker <topic> <group> <outfile>  one stage member (re-executed child)
 *
 * The worker's handler appends "partition offset eventId\n" to outfile with one write(2)
 * (O_APPEND) as its effect; deliveryIds "reject-*" are refused (DEAD) and "flakyK-*" fail
 * transiently (RETRY) K times. The parent creates its own topics (unique per run, 6 partitions,
 * plus "<topic>.dlq"), produces Avro single-object records with the embedded registry and checks:
 *   A  10,000 records, ~1% poison (undecodable bytes, rejected events), ~5% transient failures:
 *      every good record handled; the DLQ holds exactly the poison records with their reasons;
 *      the group's committed offsets equal the end offsets; the worker exits 0 on SIGTERM.
 *   B  the worker is killed (SIGKILL) half-way and restarted: no record is lost, and every record
 *      handled twice lies at or after its partition's committed offset at the kill.
 *   C  held replies (pl_stage_produce_after): each record produces a first reply, which the broker
 *      refuses (too large for its topic) on the first two attempts of every tenth record, and a
 *      held one: every record gets its held reply, and never more of them than of its first
 *      replies the broker took (a refused first reply holds its record's held reply back).
 *   D  a poison record never holds its partition: a handler's RETRY whose reason is not
 *      transient (a reply that cannot be built) is dead-lettered; while the .dlq topic is
 *      missing the dead letters are refused, the records are retried with backoff, /readyz
 *      names the held partition and the dead-letter failures are counted; once the .dlq topic
 *      exists every record passes, and a record larger than DP_DLQ_MAX_BYTES is in the DLQ as a
 *      truncated copy (dp_truncated) with its source partition and offset, after the broker
 *      refused a first copy too large for the .dlq topic.
 * Closing line: "stage_it: N passed, M failed"; exit status 1 when a scenario failed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "mem.h"
#include "stage.h"

#define PARTS     6
#define N_RECORDS 10000

extern char **environ;

static const pl_cfg_opt_t *const tables[] = {pl_cfg_common, pl_stage_cfg, NULL};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the worker ----------------------------------------------------------------------------- */

typedef struct worker {
	int out_fd;
	int *attempts; /* per record number, this process only */
	size_t attempts_cap;
	long delay_us;
	const char *first_topic, *then_topic; /* scenario C (DP_TEST_HOLD_TOPICS), else NULL */
} worker_t;

/* The attempt count of record i in this process, after this attempt. */
static int attempt_of(worker_t *w, size_t i)
{
	if (i >= w->attempts_cap) {
		size_t cap = i * 2 + 1024;
		w->attempts = realloc(w->attempts, cap * sizeof(int));
		memset(w->attempts + w->attempts_cap, 0, (cap - w->attempts_cap) * sizeof(int));
		w->attempts_cap = cap;
	}
	return ++w->attempts[i];
}

/* Scenario C: a first reply (150 kB on the first two attempts of every tenth record: the broker
 * refuses it), then the record itself again as a held reply. */
#define BIG_REPLY 150000
static pl_stage_outcome_t hold_handle(worker_t *w, pl_stage_ctx_t *ctx, const pl_record_t *record,
                                      const json_t *event, const pl_avro_schema_t *schema, size_t i,
                                      const char *event_id)
{
	static char big[BIG_REPLY];
	int attempt = attempt_of(w, i);
	bool refused = i % 10 == 0 && attempt <= 2;
	char small[64];
	int n = snprintf(small, sizeof(small), "first %s", event_id);
	pl_event_meta_t meta = {.event_type = "StageItFirst", .event_id = event_id};
	char key[64];
	snprintf(key, sizeof(key), "%.*s", (int)record->key_len, (const char *)record->key);
	if (refused)
		memset(big, 'x', sizeof(big));
	if (pl_stage_produce(ctx, w->first_topic, key, refused ? big : small,
	                     refused ? sizeof(big) : (size_t)n, &meta) != PL_OK ||
	    pl_stage_produce_after(ctx, w->then_topic, key, pl_avro_schema_short_name(schema),
	                           event, event_id) != PL_OK)
		return PL_STAGE_RETRY;
	return PL_STAGE_OK;
}

static pl_stage_t *worker_stage;

static void worker_on_signal(int sig)
{
	(void)sig;
	if (worker_stage)
		pl_stage_stop(worker_stage);
}

static pl_stage_outcome_t worker_handle(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                        const json_t *event, const pl_avro_schema_t *schema,
                                        void *arg)
{
	worker_t *w = arg;
	const char *event_id = json_string_value(json_object_get(event, "eventId"));
	const char *delivery_id = json_string_value(json_object_get(event, "deliveryId"));
	if (!event_id || !delivery_id || strncmp(event_id, "ev-", 3) != 0) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "event without eventId/deliveryId");
		return PL_STAGE_DEAD;
	}
	if (strncmp(delivery_id, "reject-", 7) == 0) {
		pl_stage_set_reason(ctx, PL_ERR_REJECTED,
		                    "delivery %s rejected: cancel of an unknown delivery",
		                    delivery_id);
		return PL_STAGE_DEAD;
	}
	if (strncmp(delivery_id, "unbuildable-", 12) == 0) {
		/* as a handler whose reply cannot be built: it says retry, for a reason that
		 * no retry can change */
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "the reply could not be built");
		return PL_STAGE_RETRY;
	}
	size_t i = (size_t)atol(event_id + 3);
	if (w->first_topic)
		return hold_handle(w, ctx, record, event, schema, i, event_id);
	if (strncmp(delivery_id, "flaky", 5) == 0) {
		int fail_times = delivery_id[5] - '0';
		int attempt = attempt_of(w, i);
		if (attempt <= fail_times) {
			pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "dependency busy (attempt %d)",
			                    attempt);
			return PL_STAGE_RETRY;
		}
	}
	if (w->delay_us > 0) {
		struct timespec ts = {0, w->delay_us * 1000L};
		nanosleep(&ts, NULL);
	}
	char line[128];
	int len = snprintf(line, sizeof(line), "%d %lld %s\n", record->partition,
	                   (long long)record->offset, event_id);
	if (write(w->out_fd, line, (size_t)len) != len) {
		pl_stage_set_reason(ctx, PL_ERR_IO, "append: %s", strerror(errno));
		return PL_STAGE_RETRY;
	}
	return PL_STAGE_OK;
}

/* Scenario D: what /readyz would answer and the stage's metrics, written after every batch
 * to DP_TEST_READY_FILE (atomically: a temporary file renamed). */
static const char *ready_file;

static void worker_tick(void *arg)
{
	(void)arg;
	if (!ready_file || !worker_stage)
		return;
	char reason[600] = "", tmp[600];
	bool ready = pl_stage_ready(worker_stage, reason, sizeof(reason));
	size_t mlen;
	char *metrics = pl_metrics_render(pl_metrics_default(), &mlen);
	snprintf(tmp, sizeof(tmp), "%s.tmp", ready_file);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "ready=%d reason=%s\n%s", ready ? 1 : 0, reason, metrics);
		fclose(f);
		rename(tmp, ready_file);
	}
	pl_free(metrics);
}

static int worker_main(const char *topic, const char *group, const char *outfile)
{
	char *argv[] = {"test_stage_it-worker", NULL};
	int code = 1;
	pl_cfg_t *cfg = pl_cfg_load("test_stage_it-worker", tables, 1, argv, NULL, stderr, &code);
	if (!cfg)
		return code;
	pl_log_init("stage_it_worker",
	            (pl_log_level_t)pl_log_level_parse(pl_cfg_str(cfg, "DP_LOG_LEVEL")));
	char errstr[512];
	pl_avro_registry_t *registry = pl_avro_registry_embedded(errstr, sizeof(errstr));
	if (!registry) {
		fprintf(stderr, "worker: registry: %s\n", errstr);
		return 1;
	}
	worker_t w = {.out_fd = open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0644)};
	if (w.out_fd < 0) {
		fprintf(stderr, "worker: %s: %s\n", outfile, strerror(errno));
		return 1;
	}
	const char *delay = getenv("DP_TEST_HANDLER_DELAY_US");
	w.delay_us = delay ? atol(delay) : 0;
	char hold[512] = "";
	snprintf(hold, sizeof(hold), "%s",
	         getenv("DP_TEST_HOLD_TOPICS") ? getenv("DP_TEST_HOLD_TOPICS") : "");
	char *space = strchr(hold, ' ');
	if (space) {
		*space = '\0';
		w.first_topic = hold;
		w.then_topic = space + 1;
	}
	const char *topics[] = {topic, NULL};
	ready_file = getenv("DP_TEST_READY_FILE");
	pl_stage_opts_t opts = {.group = group,
	                        .topics = topics,
	                        .handler = worker_handle,
	                        .handler_arg = &w,
	                        .on_tick = worker_tick,
	                        .registry = registry};
	worker_stage = pl_stage_new(cfg, &opts, errstr, sizeof(errstr));
	if (!worker_stage) {
		fprintf(stderr, "worker: pl_stage_new: %s\n", errstr);
		return 1;
	}
	struct sigaction sa = {.sa_handler = worker_on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pl_err_t err = pl_stage_run(worker_stage);
	pl_stage_destroy(worker_stage);
	worker_stage = NULL;
	close(w.out_fd);
	free(w.attempts);
	pl_avro_registry_destroy(registry);
	pl_cfg_destroy(cfg);
	return err == PL_OK ? 0 : 1;
}

/* ---- the parent: helpers -------------------------------------------------------------------- */

static const char *brokers;
static pl_avro_registry_t *registry;
static int check_failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			check_failures++;                                                          \
			printf("  FAIL %s:%d: ", __FILE__, __LINE__);                              \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

static rd_kafka_t *client_new(rd_kafka_type_t type, const char *group)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, NULL, 0);
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	if (type == RD_KAFKA_CONSUMER) {
		rd_kafka_conf_set(conf, "group.id", group ? group : "stage-it-reader", NULL, 0);
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
		rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "rd_kafka_new: %s\n", errstr);
		exit(2);
	}
	return rk;
}

/* Creates the topics; small_topic (may be NULL) takes records of at most 100,000 bytes. */
static bool create_topics_small(const char *const *names, int count, const char *small_topic)
{
	char errstr[512];
	rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, NULL);
	rd_kafka_NewTopic_t *nt[4];
	for (int i = 0; i < count; i++) {
		nt[i] = rd_kafka_NewTopic_new(names[i], PARTS, 1, errstr, sizeof(errstr));
		if (small_topic && strcmp(names[i], small_topic) == 0)
			rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes", "100000");
	}
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(o, 20000, errstr, sizeof(errstr));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)count, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	bool ok = ev && !rd_kafka_event_error(ev);
	if (ev && ok) {
		size_t n = 0;
		const rd_kafka_topic_result_t **res =
		    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		for (size_t i = 0; i < n; i++)
			if (rd_kafka_topic_result_error(res[i])) {
				printf("  create %s: %s\n", rd_kafka_topic_result_name(res[i]),
				       rd_kafka_topic_result_error_string(res[i]));
				ok = false;
			}
	} else {
		printf("  create topics: %s\n", ev ? rd_kafka_event_error_string(ev) : "timed out");
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)count);
	rd_kafka_destroy(rk);
	return ok;
}

static bool create_topics(const char *const *names, int count)
{
	return create_topics_small(names, count, NULL);
}

/* Committed offsets of group (-1 when none) and end offsets of topic. */
static bool group_offsets(const char *group, const char *topic, int64_t *committed, int64_t *end)
{
	rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
	for (int p = 0; p < PARTS; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 15000);
	bool ok = err == 0;
	for (int p = 0; p < PARTS && ok; p++) {
		committed[p] = l->elems[p].err || l->elems[p].offset < 0 ? -1 : l->elems[p].offset;
		int64_t low;
		if (end && rd_kafka_query_watermark_offsets(rk, topic, p, &low, &end[p], 15000))
			ok = false;
	}
	if (!ok)
		printf("  offsets of %s/%s: %s\n", group, topic, rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return ok;
}

static int64_t end_offsets_sum(const char *topic)
{
	rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, NULL);
	int64_t sum = 0;
	for (int p = 0; p < PARTS; p++) {
		int64_t low, high;
		if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 15000) == 0)
			sum += high;
	}
	rd_kafka_destroy(rk);
	return sum;
}

/* Reads the whole topic; fn is called for each record. */
static bool read_topic(const char *topic, void (*fn)(const rd_kafka_message_t *, void *), void *arg)
{
	rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, NULL);
	int64_t high[PARTS], left = 0;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
	for (int p = 0; p < PARTS; p++) {
		int64_t low;
		if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 15000))
			high[p] = low = 0;
		left += high[p] - low;
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	int64_t deadline = pl_now_ms() + 30000;
	while (left > 0 && pl_now_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err && m->partition >= 0 && m->partition < PARTS &&
		    m->offset < high[m->partition]) {
			fn(m, arg);
			left--;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return left == 0;
}

/* ---- records -------------------------------------------------------------------------------- */

typedef enum kind { GOOD, FLAKY, GARBAGE, REJECTED } kind_t;

typedef struct rec {
	kind_t kind;
	char key[32];
	void *value;
	size_t len;
	atomic_int done;
	pl_err_t err;
	int32_t partition;
	int64_t offset;
	int handled; /* lines in the worker's file */
	int dead;    /* records in the DLQ */
} rec_t;

static void rec_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                     int64_t offset)
{
	(void)reason;
	rec_t *r = opaque;
	r->err = err;
	r->partition = partition;
	r->offset = offset;
	atomic_store(&r->done, 1);
}

/* Record i of a scenario: poison kinds only when with_poison. */
static void rec_make(rec_t *r, int i, bool with_poison)
{
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, "DeliveryCancelRequested");
	char event_id[32];
	snprintf(event_id, sizeof(event_id), "ev-%d", i);
	r->kind = GOOD;
	if (with_poison && i % 200 == 7)
		r->kind = GARBAGE;
	else if (with_poison && i % 200 == 107)
		r->kind = REJECTED;
	else if (i % 20 == 11)
		r->kind = FLAKY;
	if (r->kind == REJECTED)
		snprintf(r->key, sizeof(r->key), "reject-%d", i);
	else if (r->kind == FLAKY)
		snprintf(r->key, sizeof(r->key), "flaky%d-%d", 1 + (i / 20) % 2, i);
	else if (r->kind == GARBAGE)
		snprintf(r->key, sizeof(r->key), "garbage-%d", i);
	else
		snprintf(r->key, sizeof(r->key), "d-%d", i);
	json_t *ev = json_pack("{s:s, s:s, s:I}", "eventId", event_id, "deliveryId", r->key,
	                       "requestedAt", (json_int_t)1700000000000 + i);
	char err[256];
	if (pl_avro_encode(schema, ev, &r->value, &r->len, err, sizeof(err)) != PL_OK) {
		fprintf(stderr, "encode: %s\n", err);
		exit(2);
	}
	json_decref(ev);
	if (r->kind == GARBAGE) {
		unsigned char *b = r->value;
		switch ((i / 200) % 3) {
		case 0: /* not single-object at all */
			r->len = (size_t)snprintf((char *)b, r->len, "garbage %d", i);
			break;
		case 1: /* single-object header, unknown writer schema */
			b[2] ^= 0x5a;
			break;
		default: /* known schema, body cut short */
			r->len -= 4;
		}
	}
}

static bool produce_records(rec_t *recs, int n, const char *topic)
{
	char *envp[] = {NULL, "DP_LOG_LEVEL=warn", NULL};
	char brokers_env[512];
	snprintf(brokers_env, sizeof(brokers_env), "DP_KAFKA_BROKERS=%s", brokers);
	envp[0] = brokers_env;
	char *argv[] = {"test_stage_it", NULL};
	int code;
	pl_cfg_t *cfg = pl_cfg_load("test_stage_it", tables, 1, argv, envp, stderr, &code);
	char errstr[512];
	pl_producer_t *producer = pl_producer_new(cfg, "stage-it", NULL, errstr, sizeof(errstr));
	if (!producer) {
		printf("  producer: %s\n", errstr);
		return false;
	}
	for (int i = 0; i < n; i++) {
		char event_id[32];
		snprintf(event_id, sizeof(event_id), "ev-%d", i);
		pl_event_meta_t meta = {.event_type = "DeliveryCancelRequested",
		                        .event_id = event_id};
		pl_err_t err;
		while ((err = pl_producer_send_event(producer, topic, recs[i].key, recs[i].value,
		                                     recs[i].len, &meta, rec_done, &recs[i])) ==
		       PL_ERR_QUEUE_FULL)
			sleep_ms(5);
		if (err != PL_OK) {
			printf("  produce: %s\n", pl_err_str(err));
			return false;
		}
	}
	int64_t deadline = pl_now_ms() + 60000;
	int missing;
	do {
		missing = 0;
		for (int i = 0; i < n; i++)
			missing += !atomic_load(&recs[i].done);
		if (missing)
			sleep_ms(20);
	} while (missing && pl_now_ms() < deadline);
	pl_producer_destroy(producer, 5000);
	pl_cfg_destroy(cfg);
	bool ok = missing == 0;
	for (int i = 0; i < n && ok; i++)
		ok = recs[i].err == PL_OK;
	if (!ok)
		printf("  not every record was acknowledged\n");
	return ok;
}

/* Record index by (partition, offset). */
typedef struct index {
	int *at[PARTS];
	int64_t len[PARTS];
} index_t;

static void index_build(index_t *x, rec_t *recs, int n)
{
	memset(x, 0, sizeof(*x));
	for (int i = 0; i < n; i++)
		if (recs[i].offset + 1 > x->len[recs[i].partition])
			x->len[recs[i].partition] = recs[i].offset + 1;
	for (int p = 0; p < PARTS; p++) {
		x->at[p] = malloc((size_t)(x->len[p] + 1) * sizeof(int));
		for (int64_t o = 0; o < x->len[p]; o++)
			x->at[p][o] = -1;
	}
	for (int i = 0; i < n; i++)
		x->at[recs[i].partition][recs[i].offset] = i;
}

static int index_find(const index_t *x, long p, long long o)
{
	if (p < 0 || p >= PARTS || o < 0 || o >= x->len[p])
		return -1;
	return x->at[p][o];
}

static void index_free(index_t *x)
{
	for (int p = 0; p < PARTS; p++)
		free(x->at[p]);
}

/* Parses the worker's file: counts lines per record into recs[].handled; returns the number of
 * distinct good records handled; *bad counts lines that name no record or the wrong one.
 * When dups is not NULL, each line for an already handled record calls dups(p, o). */
static int scan_outfile(const char *path, rec_t *recs, int n, const index_t *x, int *bad,
                        void (*dups)(long, long long, void *), void *dups_arg)
{
	for (int i = 0; i < n; i++)
		recs[i].handled = 0;
	*bad = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int good = 0;
	long p;
	long long o;
	char id[64];
	while (fscanf(f, "%ld %lld %63s", &p, &o, id) == 3) {
		int i = index_find(x, p, o);
		if (i < 0 || strncmp(id, "ev-", 3) != 0 || atoi(id + 3) != i ||
		    recs[i].kind == GARBAGE || recs[i].kind == REJECTED) {
			(*bad)++;
			continue;
		}
		if (recs[i].handled++ == 0)
			good++;
		else if (dups)
			dups(p, o, dups_arg);
	}
	fclose(f);
	return good;
}

/* ---- worker processes ----------------------------------------------------------------------- */

static pid_t worker_start_env(const char *topic, const char *group, const char *outfile,
                              const char *delay_us, const char *extra_env)
{
	char log_path[600];
	snprintf(log_path, sizeof(log_path), "%s.log", outfile);
	/* The child gets the environment without DP_* settings (pl_cfg_load rejects unknown
	 * ones) plus its own. */
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + 16, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DP_", 3) != 0)
			envp[k++] = environ[i];
	char brokers_env[512], delay_env[64];
	snprintf(brokers_env, sizeof(brokers_env), "DP_KAFKA_BROKERS=%s", brokers);
	snprintf(delay_env, sizeof(delay_env), "DP_TEST_HANDLER_DELAY_US=%s", delay_us);
	envp[k++] = brokers_env;
	envp[k++] = delay_env;
	envp[k++] = "DP_LOG_LEVEL=info";
	envp[k++] = "DP_RETRY_BACKOFF_MIN_MS=20";
	envp[k++] = "DP_RETRY_BACKOFF_MAX_MS=200";
	envp[k++] = "DP_COMMIT_INTERVAL_MS=200";
	envp[k++] = "DP_STATS_INTERVAL_MS=0";
	/* a killed member leaves the group after 6 s, not 45 */
	envp[k++] = "DP_KAFKA_PROP_session_timeout_ms=6000";
	envp[k++] = "DP_KAFKA_PROP_heartbeat_interval_ms=1000";
	envp[k++] = "DP_KAFKA_PROP_fetch_wait_max_ms=100";
	char *extra = extra_env ? strdup(extra_env) : NULL; /* "A=1\nB=2": several settings */
	for (char *save = NULL, *e = extra ? strtok_r(extra, "\n", &save) : NULL; e && k < n + 15;
	     e = strtok_r(NULL, "\n", &save))
		envp[k++] = e;
	envp[k] = NULL;
	char *argv[] = {"test_stage_it", "worker",        (char *)topic,
	                (char *)group,   (char *)outfile, NULL};
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	free(envp);
	free(extra);
	return pid;
}

static pid_t worker_start(const char *topic, const char *group, const char *outfile,
                          const char *delay_us)
{
	return worker_start_env(topic, group, outfile, delay_us, NULL);
}

/* Waits up to timeout_ms for pid; returns its wait status, or -1 (then kills it). */
static int worker_wait(pid_t pid, int timeout_ms)
{
	int64_t deadline = pl_now_ms() + timeout_ms;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 || pl_now_ms() > deadline)
			break;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* SIGTERM; the worker must exit 0 within 30 s. */
static void worker_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	int status = worker_wait(pid, 30000);
	CHECK(status != -1, "worker %d did not exit within 30 s of SIGTERM", (int)pid);
	if (status != -1)
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "worker exit status %d (signal %d), want exit 0",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void names(char *topic, char *dlq, char *group, size_t size, const char *scenario)
{
	static unsigned seq;
	snprintf(topic, size, "stage-it.%s.%d.%lld.%u", scenario, (int)getpid(),
	         (long long)pl_now_ms(), seq++);
	snprintf(dlq, size, "%s.dlq", topic);
	snprintf(group, size, "stage-it-%s-%d-%lld", scenario, (int)getpid(),
	         (long long)pl_now_ms());
}

static bool alive(pid_t pid)
{
	int status;
	return waitpid(pid, &status, WNOHANG) == 0;
}

/* Frees a scenario's records; removes the worker's output and log when the scenario passed (no
 * check failed since `failures`), else names them. Returns whether it passed. */
static bool scenario_end(rec_t *recs, int n, const char *outfile, int failures)
{
	for (int i = 0; i < n; i++)
		pl_free(recs[i].value);
	free(recs);
	char log_path[600];
	snprintf(log_path, sizeof(log_path), "%s.log", outfile);
	if (check_failures == failures) {
		unlink(outfile);
		unlink(log_path);
	} else {
		printf("  worker output: %s, log: %s\n", outfile, log_path);
	}
	return check_failures == failures;
}

/* ---- scenario A: poison, transient failures, clean shutdown --------------------------------- */

typedef struct dlq_check {
	rec_t *recs;
	const index_t *x;
	const char *topic, *group;
	int unknown;
	int bad_headers;
} dlq_check_t;

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
	rd_kafka_headers_t *h = NULL;
	const void *v;
	size_t len;
	if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len))
		return NULL;
	if (len >= size)
		len = size - 1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

static void dlq_fn(const rd_kafka_message_t *m, void *arg)
{
	dlq_check_t *c = arg;
	char part[32], off[32], err[600], cls[64], src[300], group[300], at[32];
	if (!header(m, "dp_source_partition", part, sizeof(part)) ||
	    !header(m, "dp_source_offset", off, sizeof(off))) {
		c->unknown++;
		return;
	}
	int i = index_find(c->x, atol(part), atoll(off));
	if (i < 0) {
		c->unknown++;
		return;
	}
	rec_t *r = &c->recs[i];
	r->dead++;
	bool ok = header(m, "dp_error", err, sizeof(err)) &&
	          header(m, "dp_error_class", cls, sizeof(cls)) &&
	          header(m, "dp_source_topic", src, sizeof(src)) &&
	          header(m, "dp_group", group, sizeof(group)) &&
	          header(m, "dp_dead_at", at, sizeof(at));
	if (!ok) {
		printf("  dlq record of %s: missing dp_* headers\n", r->key);
		c->bad_headers++;
		return;
	}
	int64_t dead_at = atoll(at);
	ok = strcmp(src, c->topic) == 0 && strcmp(group, c->group) == 0 &&
	     dead_at > pl_now_ms() - 600000 && dead_at <= pl_now_ms() &&
	     m->key_len == strlen(r->key) && memcmp(m->key, r->key, m->key_len) == 0 &&
	     m->len == r->len && memcmp(m->payload, r->value, r->len) == 0;
	if (r->kind == GARBAGE)
		ok = ok && strcmp(cls, "decode") == 0 && strstr(err, "undecodable");
	else if (r->kind == REJECTED)
		ok = ok && strcmp(cls, "rejected") == 0 && strstr(err, r->key) &&
		     strstr(err, "rejected: cancel of an unknown delivery");
	if (!ok) {
		printf("  dlq record of %s: dp_error=\"%s\" dp_error_class=%s source=%s group=%s "
		       "dead_at=%s\n",
		       r->key, err, cls, src, group, at);
		c->bad_headers++;
	}
}

static bool scenario_a(void)
{
	int failures = check_failures;
	char topic[200], dlq[220], group[200], outfile[512];
	names(topic, dlq, group, sizeof(topic), "a");
	snprintf(outfile, sizeof(outfile), "%s/stage_it.%d.a.out",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(outfile);
	const char *const topics[] = {topic, dlq};
	if (!create_topics(topics, 2))
		return false;
	rec_t *recs = calloc(N_RECORDS, sizeof(*recs));
	int ngood = 0, npoison = 0, nflaky = 0;
	for (int i = 0; i < N_RECORDS; i++) {
		rec_make(&recs[i], i, true);
		ngood += recs[i].kind == GOOD || recs[i].kind == FLAKY;
		npoison += recs[i].kind == GARBAGE || recs[i].kind == REJECTED;
		nflaky += recs[i].kind == FLAKY;
	}
	printf("  topic %s: %d records (%d good of which %d flaky, %d poison)\n", topic, N_RECORDS,
	       ngood, nflaky, npoison);
	int64_t t0 = pl_now_ms();
	if (!produce_records(recs, N_RECORDS, topic)) {
		check_failures++;
		goto out;
	}
	index_t x;
	index_build(&x, recs, N_RECORDS);
	int64_t t1 = pl_now_ms();
	pid_t pid = worker_start(topic, group, outfile, "0");
	int handled = 0, bad = 0;
	int64_t dead = 0, deadline = pl_now_ms() + 90000;
	while (pl_now_ms() < deadline && alive(pid)) {
		handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, NULL, NULL);
		if (handled == ngood && (dead = end_offsets_sum(dlq)) >= npoison)
			break;
		sleep_ms(100);
	}
	int64_t t2 = pl_now_ms();
	CHECK(handled == ngood && dead >= npoison,
	      "after %lld ms: %d of %d good records handled, %lld of %d dead letters",
	      (long long)(t2 - t1), handled, ngood, (long long)dead, npoison);
	worker_stop(pid);
	printf("  produced in %lld ms, handled in %lld ms\n", (long long)(t1 - t0),
	       (long long)(t2 - t1));

	handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, NULL, NULL);
	CHECK(bad == 0, "%d lines of the worker's file name no good record", bad);
	int missing = 0, twice = 0;
	for (int i = 0; i < N_RECORDS; i++) {
		bool good = recs[i].kind == GOOD || recs[i].kind == FLAKY;
		if (good && recs[i].handled == 0 && missing++ < 5)
			printf("  record %s (%d/%lld) was not handled\n", recs[i].key,
			       recs[i].partition, (long long)recs[i].offset);
		twice += recs[i].handled > 1;
	}
	CHECK(missing == 0, "%d good records were not handled", missing);
	/* One member, no rebalance, clean stop: nothing is handled twice. */
	CHECK(twice == 0, "%d records were handled more than once", twice);

	dlq_check_t c = {.recs = recs, .x = &x, .topic = topic, .group = group};
	CHECK(read_topic(dlq, dlq_fn, &c), "could not read the whole dead-letter topic");
	CHECK(c.unknown == 0, "%d dead letters name no source record", c.unknown);
	CHECK(c.bad_headers == 0, "%d dead letters have wrong headers, key or value",
	      c.bad_headers);
	int wrong = 0;
	for (int i = 0; i < N_RECORDS; i++) {
		bool poison = recs[i].kind == GARBAGE || recs[i].kind == REJECTED;
		if (recs[i].dead != (poison ? 1 : 0) && wrong++ < 5)
			printf("  record %s: %d dead letters, want %d\n", recs[i].key, recs[i].dead,
			       poison ? 1 : 0);
	}
	CHECK(wrong == 0, "%d records are wrongly in (or missing from) the dead-letter topic",
	      wrong);

	int64_t committed[PARTS], end[PARTS];
	if (group_offsets(group, topic, committed, end)) {
		for (int p = 0; p < PARTS; p++)
			CHECK(committed[p] == end[p], "partition %d: committed %lld, end %lld", p,
			      (long long)committed[p], (long long)end[p]);
	} else {
		check_failures++;
	}
	index_free(&x);
out:
	return scenario_end(recs, N_RECORDS, outfile, failures);
}

/* ---- scenario B: crash half-way, restart -------------------------------------------------- */

typedef struct dup_check {
	const int64_t *committed_at_kill;
	int dups, early;
} dup_check_t;

static void dup_fn(long p, long long o, void *arg)
{
	dup_check_t *d = arg;
	d->dups++;
	if (o < d->committed_at_kill[p] && d->early++ < 5)
		printf("  partition %ld offset %lld handled twice, but it was committed (%lld) "
		       "at the kill\n",
		       p, o, (long long)d->committed_at_kill[p]);
}

static bool scenario_b(void)
{
	int failures = check_failures;
	char topic[200], dlq[220], group[200], outfile[512];
	names(topic, dlq, group, sizeof(topic), "b");
	snprintf(outfile, sizeof(outfile), "%s/stage_it.%d.b.out",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(outfile);
	const char *const topics[] = {topic, dlq};
	if (!create_topics(topics, 2))
		return false;
	rec_t *recs = calloc(N_RECORDS, sizeof(*recs));
	for (int i = 0; i < N_RECORDS; i++)
		rec_make(&recs[i], i, false);
	printf("  topic %s: %d records\n", topic, N_RECORDS);
	if (!produce_records(recs, N_RECORDS, topic)) {
		check_failures++;
		goto out;
	}
	index_t x;
	index_build(&x, recs, N_RECORDS);
	/* 300 us per record: about 3 s for the whole topic, so the kill lands mid-way. */
	int64_t t0 = pl_now_ms();
	pid_t pid = worker_start(topic, group, outfile, "300");
	int handled = 0, bad = 0;
	int64_t deadline = pl_now_ms() + 60000;
	while (pl_now_ms() < deadline && alive(pid)) {
		handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, NULL, NULL);
		if (handled >= N_RECORDS / 2)
			break;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	int status = worker_wait(pid, 10000);
	CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "the worker was not killed by SIGKILL (it exited before?)");
	int64_t committed_at_kill[PARTS], end[PARTS];
	if (!group_offsets(group, topic, committed_at_kill, end)) {
		check_failures++;
		goto out_index;
	}
	handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, NULL, NULL);
	int64_t committed_sum = 0;
	for (int p = 0; p < PARTS; p++)
		committed_sum += committed_at_kill[p] > 0 ? committed_at_kill[p] : 0;
	printf("  killed after %lld ms: %d records handled, %lld committed\n",
	       (long long)(pl_now_ms() - t0), handled, (long long)committed_sum);
	CHECK(handled < N_RECORDS, "the worker handled everything before the kill");
	CHECK(committed_sum <= handled, "more offsets committed (%lld) than records handled (%d)",
	      (long long)committed_sum, handled);

	int64_t t1 = pl_now_ms();
	pid = worker_start(topic, group, outfile, "0");
	deadline = pl_now_ms() + 60000;
	while (pl_now_ms() < deadline && alive(pid)) {
		handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, NULL, NULL);
		if (handled == N_RECORDS)
			break;
		sleep_ms(100);
	}
	printf("  restarted worker finished in %lld ms\n", (long long)(pl_now_ms() - t1));
	worker_stop(pid);

	dup_check_t d = {.committed_at_kill = committed_at_kill};
	handled = scan_outfile(outfile, recs, N_RECORDS, &x, &bad, dup_fn, &d);
	printf("  %d records handled twice (all from the uncommitted window: %s)\n", d.dups,
	       d.early ? "no" : "yes");
	CHECK(bad == 0, "%d lines of the worker's file name no record", bad);
	CHECK(handled == N_RECORDS, "records lost: %d of %d handled", handled, N_RECORDS);
	CHECK(d.early == 0, "%d records were handled again although committed before the kill",
	      d.early);
	int64_t committed[PARTS];
	if (group_offsets(group, topic, committed, end)) {
		for (int p = 0; p < PARTS; p++)
			CHECK(committed[p] == end[p], "partition %d: committed %lld, end %lld", p,
			      (long long)committed[p], (long long)end[p]);
	} else {
		check_failures++;
	}
out_index:
	index_free(&x);
out:
	return scenario_end(recs, N_RECORDS, outfile, failures);
}

/* ---- scenario C: held replies ------------------------------------------------------------- */

#define N_HOLD 2000

typedef struct hold_count {
	int *count; /* per record number */
	int unknown;
} hold_count_t;

static void hold_fn(const rd_kafka_message_t *m, void *arg)
{
	hold_count_t *c = arg;
	char id[64];
	if (!header(m, "event_id", id, sizeof(id)) || strncmp(id, "ev-", 3) != 0 ||
	    atoi(id + 3) < 0 || atoi(id + 3) >= N_HOLD) {
		c->unknown++;
		return;
	}
	c->count[atoi(id + 3)]++;
}

static bool scenario_c(void)
{
	int failures = check_failures;
	char topic[200], dlq[220], group[200], outfile[512], first[240], then[240], env[600];
	names(topic, dlq, group, sizeof(topic), "c");
	snprintf(first, sizeof(first), "%s.first", topic);
	snprintf(then, sizeof(then), "%s.then", topic);
	snprintf(env, sizeof(env), "DP_TEST_HOLD_TOPICS=%s %s", first, then);
	snprintf(outfile, sizeof(outfile), "%s/stage_it.%d.c.out",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(outfile);
	const char *const topics[] = {topic, dlq, first, then};
	if (!create_topics_small(topics, 4, first))
		return false;
	rec_t *recs = calloc(N_HOLD, sizeof(*recs));
	for (int i = 0; i < N_HOLD; i++) {
		rec_make(&recs[i], i, false);
		if (recs[i].kind == FLAKY) /* no transient failures of its own here */
			snprintf(recs[i].key, sizeof(recs[i].key), "d-%d", i);
	}
	hold_count_t firsts = {.count = calloc(N_HOLD, sizeof(int))};
	hold_count_t thens = {.count = calloc(N_HOLD, sizeof(int))};
	printf("  topic %s: %d records, every tenth's first reply refused twice\n", topic, N_HOLD);
	if (!produce_records(recs, N_HOLD, topic)) {
		check_failures++;
		goto out;
	}
	pid_t pid = worker_start_env(topic, group, outfile, "0", env);
	int64_t t0 = pl_now_ms(), deadline = t0 + 90000, committed[PARTS], end[PARTS];
	bool done = false;
	while (!done && pl_now_ms() < deadline && alive(pid)) {
		sleep_ms(200);
		if (!group_offsets(group, topic, committed, end))
			continue;
		done = true;
		for (int p = 0; p < PARTS; p++)
			done = done && committed[p] == end[p];
	}
	CHECK(done, "the group did not commit every record within 90 s (worker alive: %s)",
	      alive(pid) ? "yes" : "no");
	printf("  every record committed after %lld ms\n", (long long)(pl_now_ms() - t0));
	worker_stop(pid);
	CHECK(read_topic(first, hold_fn, &firsts), "could not read %s", first);
	CHECK(read_topic(then, hold_fn, &thens), "could not read %s", then);
	CHECK(firsts.unknown == 0 && thens.unknown == 0, "%d + %d replies name no record",
	      firsts.unknown, thens.unknown);
	int lost = 0, early = 0, refused_ok = 0;
	for (int i = 0; i < N_HOLD; i++) {
		if (thens.count[i] == 0 && lost++ < 5)
			printf("  record %d: no held reply\n", i);
		if (thens.count[i] > firsts.count[i] && early++ < 5)
			printf(
			    "  record %d: %d held replies, but the broker took %d first replies\n",
			    i, thens.count[i], firsts.count[i]);
		refused_ok += i % 10 == 0 && firsts.count[i] >= 1;
	}
	CHECK(lost == 0, "%d records got no held reply", lost);
	CHECK(early == 0, "%d records had a held reply sent though their first reply was refused",
	      early);
	CHECK(refused_ok == N_HOLD / 10, "%d of %d twice-refused first replies were taken at last",
	      refused_ok, N_HOLD / 10);
out:
	free(firsts.count);
	free(thens.count);
	return scenario_end(recs, N_HOLD, outfile, failures);
}

/* ---- scenario D: poison never holds a partition --------------------------------------------- */

#define N_POISON_RUN 60
#define BIG_GARBAGE  200000

typedef struct d_check {
	rec_t *recs;
	const index_t *x;
	int unknown, truncated_ok, bad;
} d_check_t;

static void d_dlq_fn(const rd_kafka_message_t *m, void *arg)
{
	d_check_t *c = arg;
	char part[32], off[32], cls[64], cut[200];
	if (!header(m, "dp_source_partition", part, sizeof(part)) ||
	    !header(m, "dp_source_offset", off, sizeof(off))) {
		c->unknown++;
		return;
	}
	int i = index_find(c->x, atol(part), atoll(off));
	if (i < 0) {
		c->unknown++;
		return;
	}
	rec_t *r = &c->recs[i];
	r->dead++;
	header(m, "dp_error_class", cls, sizeof(cls));
	if (r->len == BIG_GARBAGE) {
		/* the truncated copy: smaller than the bound, a prefix of the original */
		bool ok = header(m, "dp_truncated", cut, sizeof(cut)) && m->len < 100000 &&
		          m->len > 0 && memcmp(m->payload, r->value, m->len) == 0 &&
		          m->key_len == strlen(r->key) && strcmp(cls, "decode") == 0;
		c->truncated_ok += ok;
		if (!ok)
			printf("  big record's dead letter: %zu bytes, class %s, dp_truncated %s\n",
			       m->len, cls,
			       header(m, "dp_truncated", cut, sizeof(cut)) ? cut : "-");
		return;
	}
	bool want_schema = strncmp(r->key, "unbuildable-", 12) == 0;
	if (m->len != r->len || memcmp(m->payload, r->value, r->len) != 0 ||
	    strcmp(cls, want_schema ? "schema" : "rejected") != 0) {
		printf("  dead letter of %s: class %s, %zu bytes\n", r->key, cls, m->len);
		c->bad++;
	}
}

/* The worker's ready file: ready flag, reason and the metric's value. */
static bool d_ready_state(const char *path, int *ready, char *reason, size_t size,
                          double *dlq_failures)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[4096];
	*dlq_failures = 0;
	bool got = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "ready=", 6) == 0) {
			*ready = line[6] == '1';
			const char *r = strstr(line, "reason=");
			snprintf(reason, size, "%s", r ? r + 7 : "");
			got = true;
		} else if (strncmp(line, "dronepipe_stage_dead_letter_failures_total{",
		                   strlen("dronepipe_stage_dead_letter_failures_total{")) == 0) {
			const char *v = strrchr(line, ' ');
			*dlq_failures += v ? atof(v + 1) : 0;
		}
	}
	fclose(f);
	return got;
}

static bool scenario_d(void)
{
	int failures = check_failures;
	char topic[200], dlq[220], group[200], outfile[512], ready_path[560], env[1200];
	names(topic, dlq, group, sizeof(topic), "d");
	snprintf(outfile, sizeof(outfile), "%s/stage_it.%d.d.out",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	snprintf(ready_path, sizeof(ready_path), "%s.ready", outfile);
	unlink(outfile);
	unlink(ready_path);
	/* the .dlq topic is created only later: until then every dead letter is refused */
	const char *const topics[] = {topic};
	if (!create_topics(topics, 1))
		return false;
	rec_t *recs = calloc(N_POISON_RUN, sizeof(*recs));
	for (int i = 0; i < N_POISON_RUN; i++) {
		rec_make(&recs[i], i, false);
		if (i == 5 || i == 31)
			snprintf(recs[i].key, sizeof(recs[i].key), "unbuildable-%d", i);
		else if (i == 17)
			snprintf(recs[i].key, sizeof(recs[i].key), "reject-%d", i);
		else if (recs[i].kind == FLAKY)
			snprintf(recs[i].key, sizeof(recs[i].key), "d-%d", i);
		if (i == 5 || i == 31 || i == 17) { /* the event names its key */
			const pl_avro_schema_t *schema =
			    pl_avro_schema_get(registry, "DeliveryCancelRequested");
			char event_id[32], err[256];
			snprintf(event_id, sizeof(event_id), "ev-%d", i);
			json_t *ev =
			    json_pack("{s:s, s:s, s:I}", "eventId", event_id, "deliveryId",
			              recs[i].key, "requestedAt", (json_int_t)1700000000000 + i);
			pl_free(recs[i].value);
			pl_avro_encode(schema, ev, &recs[i].value, &recs[i].len, err, sizeof(err));
			json_decref(ev);
		}
		recs[i].kind = i == 5 || i == 31 || i == 17 ? REJECTED : GOOD;
	}
	/* a record far over the dead-letter bound, that does not decode */
	pl_free(recs[44].value);
	recs[44].value = pl_malloc(BIG_GARBAGE);
	memset(recs[44].value, 'g', BIG_GARBAGE);
	recs[44].len = BIG_GARBAGE;
	recs[44].kind = GARBAGE;
	snprintf(recs[44].key, sizeof(recs[44].key), "big-44");
	index_t x = {0};
	d_check_t dc = {.recs = recs, .x = &x};
	printf("  topic %s: %d records, 4 poison, no %s yet\n", topic, N_POISON_RUN, dlq);
	pid_t pid = -1;
	if (!produce_records(recs, N_POISON_RUN, topic)) {
		check_failures++;
		goto out;
	}
	index_build(&x, recs, N_POISON_RUN);
	snprintf(env, sizeof(env),
	         "DP_TEST_READY_FILE=%s\nDP_DLQ_MAX_BYTES=200000\n"
	         "DP_KAFKA_PROP_topic_metadata_propagation_max_ms=500",
	         ready_path);
	pid = worker_start_env(topic, group, outfile, "0", env);
	/* phase 1: the held partitions are named in /readyz, the refusals counted */
	int ready = 1;
	char reason[600] = "";
	double dlq_failures = 0;
	int64_t deadline = pl_now_ms() + 90000;
	bool seen = false;
	while (!seen && pl_now_ms() < deadline && alive(pid)) {
		sleep_ms(200);
		seen = d_ready_state(ready_path, &ready, reason, sizeof(reason), &dlq_failures) &&
		       !ready && strstr(reason, "dead letter refused") && dlq_failures >= 1;
	}
	CHECK(seen,
	      "with no %s: want /readyz not ready naming a refused dead letter and the "
	      "failures counted; got ready=%d reason=%s failures=%g",
	      dlq, ready, reason, dlq_failures);
	printf("  readyz while %s is missing: %s", dlq, reason);
	/* phase 2: the .dlq topic appears; every record passes */
	const char *const dlqs[] = {dlq};
	/* ... taking records of at most 100,000 bytes: the first copy of the big record (cut
	 * to DP_DLQ_MAX_BYTES, 200,000) is refused for its size, the next, smaller, passes */
	CHECK(create_topics_small(dlqs, 1, dlq), "could not create %s", dlq);
	int64_t committed[PARTS], end[PARTS];
	bool done = false;
	deadline = pl_now_ms() + 120000;
	while (!done && pl_now_ms() < deadline && alive(pid)) {
		sleep_ms(200);
		if (!group_offsets(group, topic, committed, end))
			continue;
		done = true;
		for (int p = 0; p < PARTS; p++)
			done = done && committed[p] == end[p];
	}
	CHECK(done, "the group did not commit every record within 120 s of %s being created", dlq);
	deadline = pl_now_ms() + 10000;
	do {
		sleep_ms(200);
		d_ready_state(ready_path, &ready, reason, sizeof(reason), &dlq_failures);
	} while (!ready && pl_now_ms() < deadline);
	CHECK(ready, "still not ready after every record passed: %s", reason);
	worker_stop(pid);
	pid = -1;
	CHECK(read_topic(dlq, d_dlq_fn, &dc), "could not read %s", dlq);
	int bad = 0;
	for (int i = 0; i < N_POISON_RUN; i++) {
		bool poison = recs[i].kind != GOOD;
		if (poison != (recs[i].dead > 0) && bad++ < 5)
			printf("  record %d (%s): %d dead letters\n", i, recs[i].key, recs[i].dead);
	}
	CHECK(bad == 0, "%d records in the DLQ that should not be, or missing from it", bad);
	CHECK(dc.unknown == 0 && dc.bad == 0, "%d unknown and %d wrong dead letters", dc.unknown,
	      dc.bad);
	CHECK(dc.truncated_ok >= 1, "the big record is not in the DLQ as a truncated copy");
	int handled = 0, b2 = 0;
	scan_outfile(outfile, recs, N_POISON_RUN, &x, &b2, NULL, NULL);
	for (int i = 0; i < N_POISON_RUN; i++)
		handled += recs[i].kind == GOOD && recs[i].handled > 0;
	CHECK(handled == N_POISON_RUN - 4, "%d of %d good records handled", handled,
	      N_POISON_RUN - 4);
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	index_free(&x);
	unlink(ready_path);
	return scenario_end(recs, N_POISON_RUN, outfile, failures);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "worker") == 0)
		return worker_main(argv[2], argv[3], argv[4]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	brokers = getenv("DP_KAFKA_BROKERS");
	if (!brokers || !*brokers) {
		printf("stage_it: DP_KAFKA_BROKERS is not set (run through scripts/test-it.sh)\n");
		printf("stage_it: 0 passed, 1 failed\n");
		return 1;
	}
	pl_log_init("test_stage_it", PL_LOG_WARN);
	char errstr[512];
	registry = pl_avro_registry_embedded(errstr, sizeof(errstr));
	if (!registry) {
		printf("stage_it: registry: %s\nstage_it: 0 passed, 1 failed\n", errstr);
		return 1;
	}
	struct {
		const char *name;
		bool (*fn)(void);
	} scenarios[] = {
	    {"A: poison, transient failures, clean stop", scenario_a},
	    {"B: crash half-way and restart", scenario_b},
	    {"C: held replies wait for the record's other replies", scenario_c},
	    {"D: a poison record never holds its partition", scenario_d},
	};
	int passed = 0, failed = 0;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		printf("stage_it: scenario %s\n", scenarios[i].name);
		int64_t t0 = pl_now_ms();
		bool ok = scenarios[i].fn();
		printf("stage_it: scenario %s: %s (%lld ms)\n", scenarios[i].name,
		       ok ? "ok" : "FAILED", (long long)(pl_now_ms() - t0));
		if (ok)
			passed++;
		else
			failed++;
	}
	pl_avro_registry_destroy(registry);
	printf("stage_it: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
