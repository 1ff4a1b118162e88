/* test_stage_mock.c — fault tests of the producer (pipeline/kafka.c) and the consumer-stage loop
 * (pipeline/stage.c) on librdkafka's mock cluster.
 *
 * Each test starts its own mock cluster (one broker, id 1), builds its config with pl_cfg_load
 * from an explicit envp, runs the stage on a thread and stops it with pl_stage_stop once a
 * condition holds. Every wait is a polling loop (20 ms) with an overall deadline. Faults are
 * injected on broker 1's error stack so a test can check that every injected error was actually
 * returned to a request (rd_kafka_mock_broker_error_stack_cnt == 0 afterwards).
 * Records are DeliveryCancelRequested events (eventId "ev-<i>", deliveryId "d-<i>"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avro.h"
#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "stage.h"

/* Kafka protocol API keys (librdkafka's rdkafka_protocol.h is not installed). */
#ifndef RD_KAFKAP_Produce
#define RD_KAFKAP_Produce      0
#define RD_KAFKAP_OffsetCommit 8
#endif

#define WAIT_MS   60000
#define MAX_PARTS 4

static const pl_cfg_opt_t *const tables[] = {pl_cfg_common, pl_stage_cfg, NULL};
static pl_avro_registry_t *registry;
static const pl_avro_schema_t *cancel_schema;

/* ---- helpers ------------------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Polls cond(arg) every 20 ms until it holds or timeout_ms passed. */
static bool wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
	int64_t deadline = pl_now_ms() + timeout_ms;
	while (!cond(arg)) {
		if (pl_now_ms() > deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

typedef struct mock {
	rd_kafka_t *rk; /* owns the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	char bootstrap[256];
} mock_t;

static void mock_start(mock_t *m)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "4", NULL, 0); /* no "no bootstrap.servers" notice */
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	assert_non_null(m->rk);
	m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
	assert_non_null(m->mc);
	snprintf(m->bootstrap, sizeof(m->bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
}

static void mock_stop(mock_t *m)
{
	rd_kafka_mock_cluster_destroy(m->mc);
	rd_kafka_destroy(m->rk);
}

static size_t error_stack_left(mock_t *m, int16_t api_key)
{
	size_t cnt = 0;
	assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(m->mc, 1, api_key, &cnt), 0);
	return cnt;
}

/* Pushes n copies of the errors in errs (cycled) onto broker 1's stack for api_key. */
static void push_errors(mock_t *m, int16_t api_key, size_t n, const rd_kafka_resp_err_t *errs,
                        size_t nerrs)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(m->mc, 1, api_key, 1,
		                                                              errs[i % nerrs], 0),
		                 0);
}

/* Config for the mock cluster plus extra "NAME=value" entries (NULL-terminated, may be NULL). */
static pl_cfg_t *cfg_new(const mock_t *m, const char *const *extra)
{
	char brokers[300];
	snprintf(brokers, sizeof(brokers), "DP_KAFKA_BROKERS=%s", m->bootstrap);
	static const char *const base[] = {"DP_RETRY_BACKOFF_MIN_MS=10",
	                                   "DP_RETRY_BACKOFF_MAX_MS=80",
	                                   "DP_STATS_INTERVAL_MS=0",
	                                   "DP_KAFKA_PROP_retry_backoff_ms=20",
	                                   "DP_KAFKA_PROP_fetch_wait_max_ms=50",
	                                   NULL};
	char *envp[32];
	size_t n = 0;
	envp[n++] = brokers;
	for (size_t i = 0; extra && extra[i] && n < 16; i++)
		envp[n++] = (char *)extra[i];
	for (size_t i = 0; base[i]; i++) { /* defaults of these tests, unless extra has them */
		size_t name_len = strcspn(base[i], "=");
		bool given = false;
		for (size_t j = 0; extra && extra[j]; j++)
			given = given || strncmp(extra[j], base[i], name_len + 1) == 0;
		if (!given)
			envp[n++] = (char *)base[i];
	}
	envp[n] = NULL;
	char *argv[] = {"test_stage_mock", NULL};
	int code = -1;
	pl_cfg_t *cfg = pl_cfg_load("test_stage_mock", tables, 1, argv, envp, stderr, &code);
	assert_non_null(cfg);
	return cfg;
}

static void *encode_cancel(int i, size_t *len)
{
	char event_id[32], delivery_id[32];
	snprintf(event_id, sizeof(event_id), "ev-%d", i);
	snprintf(delivery_id, sizeof(delivery_id), "d-%d", i);
	json_t *ev = json_pack("{s:s, s:s, s:I}", "eventId", event_id, "deliveryId", delivery_id,
	                       "requestedAt", (json_int_t)1700000000000 + i);
	void *buf = NULL;
	char err[256];
	pl_err_t e = pl_avro_encode(cancel_schema, ev, &buf, len, err, sizeof(err));
	json_decref(ev);
	if (e != PL_OK)
		fail_msg("encode: %s", err);
	return buf;
}

/* Index i of an event "ev-<i>", -1 when not one. */
static int event_index(const json_t *event)
{
	const char *id = json_string_value(json_object_get(event, "eventId"));
	if (!id || strncmp(id, "ev-", 3) != 0)
		return -1;
	return atoi(id + 3);
}

/* One produce's completion. */
typedef struct sent {
	atomic_int calls;
	pl_err_t err;
	int32_t partition;
	int64_t offset;
} sent_t;

static void sent_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                      int64_t offset)
{
	(void)reason;
	sent_t *s = opaque;
	s->err = err;
	s->partition = partition;
	s->offset = offset;
	atomic_fetch_add(&s->calls, 1);
}

typedef struct sent_all {
	sent_t *sent;
	int n;
} sent_all_t;

static bool all_sent(void *arg)
{
	sent_all_t *a = arg;
	for (int i = 0; i < a->n; i++)
		if (atomic_load(&a->sent[i].calls) == 0)
			return false;
	return true;
}

/* Key of record i: "d-<i>", or "k-<i % key_mod>" while a test sets key_mod (records sharing
 * keys). */
static int key_mod;

/* Produces records 0..n-1 (record i is undecodable when garbage(i)); fills sent[i]. */
static void produce_records(pl_producer_t *producer, const char *topic, int n, sent_t *sent,
                            bool (*garbage)(int))
{
	for (int i = 0; i < n; i++) {
		char key[32];
		if (key_mod)
			snprintf(key, sizeof(key), "k-%d", i % key_mod);
		else
			snprintf(key, sizeof(key), "d-%d", i);
		size_t len = 0;
		void *value;
		if (garbage && garbage(i)) {
			value = strdup("\xc3\x01not avro at all");
			len = strlen(value);
		} else {
			value = encode_cancel(i, &len);
		}
		pl_event_meta_t meta = {.event_type = "DeliveryCancelRequested"};
		char event_id[32];
		snprintf(event_id, sizeof(event_id), "ev-%d", i);
		meta.event_id = event_id;
		pl_err_t err;
		while ((err = pl_producer_send_event(producer, topic, key, value, len, &meta,
		                                     sent_done, &sent[i])) == PL_ERR_QUEUE_FULL)
			sleep_ms(5);
		assert_int_equal(err, PL_OK);
		free(value);
	}
	sent_all_t a = {sent, n};
	assert_true(wait_until(all_sent, &a, WAIT_MS));
}

static void produce_inputs(mock_t *m, const char *topic, int n, sent_t *sent, bool (*garbage)(int))
{
	char errstr[256];
	pl_cfg_t *cfg = cfg_new(m, NULL);
	pl_producer_t *producer = pl_producer_new(cfg, "inputs", NULL, errstr, sizeof(errstr));
	assert_non_null(producer);
	produce_records(producer, topic, n, sent, garbage);
	for (int i = 0; i < n; i++)
		assert_int_equal(sent[i].err, PL_OK);
	pl_producer_destroy(producer, 5000);
	pl_cfg_destroy(cfg);
}

/* Reads every record of topic (partitions 0..nparts-1) from the beginning to the end offsets. */
static int read_topic(const mock_t *m, const char *topic, int nparts,
                      void (*fn)(const rd_kafka_message_t *msg, void *arg), void *arg)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0); /* never joins nor commits */
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	int64_t high[MAX_PARTS], left = 0;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++) {
		int64_t low;
		assert_int_equal(
		    rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000), 0);
		left += high[p] - low;
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	assert_int_equal(rd_kafka_assign(rk, l), 0);
	rd_kafka_topic_partition_list_destroy(l);
	int count = 0;
	int64_t deadline = pl_now_ms() + WAIT_MS;
	while (left > 0 && pl_now_ms() < deadline) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
		if (!msg)
			continue;
		if (!msg->err && msg->offset < high[msg->partition]) {
			fn(msg, arg);
			count++;
			left--;
		}
		rd_kafka_message_destroy(msg);
	}
	assert_int_equal(left, 0);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return count;
}

/* Committed offsets of group (from a separate handle, as a restarted member would see them) and
 * end offsets of topic. */
static void group_offsets(const mock_t *m, const char *group, const char *topic, int nparts,
                          int64_t *committed, int64_t *end)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	for (int tries = 0; tries < 20 && err; tries++) /* the coordinator may be busy */
		err = rd_kafka_committed(rk, l, 5000);
	assert_int_equal(err, 0);
	for (int p = 0; p < nparts; p++) {
		committed[p] = l->elems[p].err ? -1 : l->elems[p].offset;
		if (end) {
			int64_t low;
			assert_int_equal(
			    rd_kafka_query_watermark_offsets(rk, topic, p, &low, &end[p], 10000),
			    0);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
}

/* The stage on its own thread. */
typedef struct runner {
	pl_stage_t *stage;
	pthread_t thread;
	pl_err_t result;
	atomic_bool finished;
} runner_t;

static void *runner_main(void *arg)
{
	runner_t *r = arg;
	r->result = pl_stage_run(r->stage);
	atomic_store(&r->finished, true);
	return NULL;
}

static bool runner_finished(void *arg)
{
	return atomic_load(&((runner_t *)arg)->finished);
}

static void runner_start(runner_t *r, const pl_cfg_t *cfg, const pl_stage_opts_t *opts)
{
	char errstr[256];
	memset(r, 0, sizeof(*r));
	r->stage = pl_stage_new(cfg, opts, errstr, sizeof(errstr));
	if (!r->stage)
		fail_msg("pl_stage_new: %s", errstr);
	assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
}

/* Stops the stage; it must shut down cleanly in time. */
static void runner_stop(runner_t *r)
{
	pl_stage_stop(r->stage);
	if (!wait_until(runner_finished, r, WAIT_MS))
		fail_msg("the stage did not stop within %d ms", WAIT_MS);
	pthread_join(r->thread, NULL);
	assert_int_equal(r->result, PL_OK);
	pl_stage_destroy(r->stage);
}

/* Per-record handler bookkeeping, indexed by record number i (from the eventId). Written by the
 * stage thread, read by the test thread. */
typedef struct tracker {
	int n;
	atomic_int *attempts; /* handler calls per record */
	atomic_int *ok;       /* OK outcomes per record */
	atomic_int ok_unique; /* records with at least one OK */
	atomic_int order_errors;
	int64_t next_ok[MAX_PARTS]; /* stage thread only: expected offset of the next OK */
	int fail_first;             /* records i % 10 == 3 return RETRY this many times */
	const char *reply_topic;    /* when set, each OK produces a reply there ... */
	const char *held_topic;     /* ... and, when set, the record again there, held
	                             * (pl_stage_produce_after) */
	atomic_int reply_send_errors;
	int32_t *partition; /* where record i is (from the produce) */
	int64_t *offset;
} tracker_t;

static void tracker_init(tracker_t *t, int n, const sent_t *sent)
{
	memset(t, 0, sizeof(*t));
	t->n = n;
	t->attempts = calloc((size_t)n, sizeof(*t->attempts));
	t->ok = calloc((size_t)n, sizeof(*t->ok));
	t->partition = calloc((size_t)n, sizeof(*t->partition));
	t->offset = calloc((size_t)n, sizeof(*t->offset));
	for (int i = 0; i < n; i++) {
		t->partition[i] = sent[i].partition;
		t->offset[i] = sent[i].offset;
	}
}

static void tracker_free(tracker_t *t)
{
	free(t->attempts);
	free(t->ok);
	free(t->partition);
	free(t->offset);
}

static bool all_ok(void *arg)
{
	tracker_t *t = arg;
	return atomic_load(&t->ok_unique) == t->n;
}

static pl_stage_outcome_t track_handler(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                        const json_t *event, const pl_avro_schema_t *schema,
                                        void *arg)
{
	tracker_t *t = arg;
	if (strcmp(pl_avro_schema_short_name(schema), "DeliveryCancelRequested") != 0)
		return PL_STAGE_DEAD;
	int i = event_index(event);
	if (i < 0 || i >= t->n) {
		pl_stage_set_reason(ctx, PL_ERR_REJECTED, "unknown event");
		return PL_STAGE_DEAD;
	}
	int attempt = atomic_fetch_add(&t->attempts[i], 1);
	if (t->fail_first && i % 10 == 3 && attempt < t->fail_first) {
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "flaky dependency (attempt %d)",
		                    attempt + 1);
		return PL_STAGE_RETRY;
	}
	if (t->reply_topic) {
		char reply_id[40];
		snprintf(reply_id, sizeof(reply_id), "reply-%d", i);
		size_t len;
		void *value = encode_cancel(i, &len);
		pl_event_meta_t meta = {.event_type = "DeliveryCancelRequested",
		                        .event_id = reply_id};
		char key[32];
		snprintf(key, sizeof(key), "d-%d", i);
		pl_err_t e = pl_stage_produce(ctx, t->reply_topic, key, value, len, &meta);
		free(value);
		if (e == PL_OK && t->held_topic)
			e = pl_stage_produce_after(ctx, t->held_topic, key,
			                           "DeliveryCancelRequested", event, reply_id);
		if (e != PL_OK)
			atomic_fetch_add(&t->reply_send_errors, 1);
	}
	/* Records of a partition are handled in order, each OK at most once without rebalances:
	 * a RETRY resumes at the same record, never before or after it. */
	int32_t p = record->partition;
	if (p >= 0 && p < MAX_PARTS && !t->reply_topic) {
		if (record->offset != t->next_ok[p])
			atomic_fetch_add(&t->order_errors, 1);
		t->next_ok[p] = record->offset + 1;
	}
	if (atomic_fetch_add(&t->ok[i], 1) == 0)
		atomic_fetch_add(&t->ok_unique, 1);
	return PL_STAGE_OK;
}

static int group_setup(void **state)
{
	(void)state;
	char errstr[256];
	registry = pl_avro_registry_embedded(errstr, sizeof(errstr));
	if (!registry) {
		fprintf(stderr, "registry: %s\n", errstr);
		return -1;
	}
	cancel_schema = pl_avro_schema_get(registry, "DeliveryCancelRequested");
	if (!cancel_schema)
		return -1;
	/* Logs of the stage (retries, failed replies) go to a file, not into the test report. */
	const char *path = getenv("TEST_STAGE_MOCK_LOG");
	if (!path)
		path = "/tmp/test_stage_mock.log";
	FILE *f = fopen(path, "w");
	if (f) {
		pl_log_set_fd(dup(fileno(f)));
		fclose(f);
	}
	pl_log_init("test_stage_mock",
	            getenv("TEST_STAGE_MOCK_DEBUG") ? PL_LOG_DEBUG : PL_LOG_INFO);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pl_avro_registry_destroy(registry);
	return 0;
}

/* ---- (a) producer: injected produce errors ------------------------------------------------ */

/* Records read back, by record number (decoded eventId). */
typedef struct seen {
	int n;
	int *count;
	int where_ok;       /* records found at the partition/offset of their delivery report */
	const sent_t *sent; /* may be NULL */
} seen_t;

static void seen_fn(const rd_kafka_message_t *msg, void *arg)
{
	seen_t *seen = arg;
	json_t *event = NULL;
	char err[256];
	if (pl_avro_decode(registry, msg->payload, msg->len, &event, NULL, err, sizeof(err)) !=
	    PL_OK)
		return;
	int i = event_index(event);
	json_decref(event);
	if (i < 0 || i >= seen->n)
		return;
	seen->count[i]++;
	if (seen->sent && seen->sent[i].partition == msg->partition &&
	    seen->sent[i].offset == msg->offset)
		seen->where_ok++;
}

static void test_producer_retries_produce_errors_exactly_once(void **state)
{
	(void)state;
	mock_t m;
	mock_start(&m);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "a.in", 3, 1), 0);
	enum { N = 300 };
	const rd_kafka_resp_err_t errs[] = {
	    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
	    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE};
	push_errors(&m, RD_KAFKAP_Produce, 12, errs, 4);

	char errstr[256];
	pl_cfg_t *cfg = cfg_new(&m, NULL);
	pl_producer_t *producer = pl_producer_new(cfg, "a", NULL, errstr, sizeof(errstr));
	assert_non_null(producer);
	sent_t *sent = calloc(N, sizeof(*sent));
	produce_records(producer, "a.in", N, sent, NULL);
	/* Completions may not come twice: wait until the producer is idle, then count. */
	int64_t deadline = pl_now_ms() + WAIT_MS;
	while (pl_producer_outq_len(producer) > 0 && pl_now_ms() < deadline)
		sleep_ms(20);
	pl_producer_destroy(producer, 5000);
	assert_int_equal(error_stack_left(&m, RD_KAFKAP_Produce), 0); /* the faults happened */
	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&sent[i].calls), 1);
		assert_int_equal(sent[i].err, PL_OK);
		assert_true(sent[i].offset >= 0);
	}

	/* The topic holds each record exactly once, where its delivery report said. */
	seen_t seen = {N, calloc(N, sizeof(int)), 0, sent};
	int total = read_topic(&m, "a.in", 3, seen_fn, &seen);
	assert_int_equal(total, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(seen.count[i], 1);
	assert_int_equal(seen.where_ok, N);
	free(seen.count);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

static void count_fn(const rd_kafka_message_t *msg, void *arg)
{
	(void)msg;
	(*(int *)arg)++;
}

/* A produce group (pl_produce_group_*): one wait for many records, a result per slot that is
 * the first error of its sends, the caller's own failures kept, and a wait that runs out marks
 * only the slots still waiting, yet returns only once their reports came. */
static void test_produce_group_results_per_slot(void **state)
{
	(void)state;
	mock_t m;
	mock_start(&m);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "g.in", 3, 1), 0);
	const rd_kafka_resp_err_t errs[] = {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
	                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT};
	push_errors(&m, RD_KAFKAP_Produce, 4, errs, 2); /* retried: the slots still read OK */

	char errstr[256];
	pl_cfg_t *cfg = cfg_new(&m, NULL);
	pl_producer_t *producer = pl_producer_new(cfg, "g", NULL, errstr, sizeof(errstr));
	assert_non_null(producer);
	pl_produce_group_t *g = pl_produce_group_new(3);
	for (int i = 0; i < 50; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(pl_produce_group_send(g, producer, (size_t)i % 3 == 1 ? 2 : 0,
		                                       "g.in", key, strlen(key), "v", 1, NULL, 0),
		                 PL_OK);
	}
	pl_produce_group_fail(g, 2, PL_ERR_SCHEMA, "could not encode it");
	pl_produce_group_fail(g, 2, PL_ERR_TIMEOUT, "a later error"); /* the first one stays */
	assert_int_equal(pl_produce_group_send(g, producer, 3, "g.in", "k", 1, "v", 1, NULL, 0),
	                 PL_ERR_INVALID); /* no such slot */
	pl_produce_group_wait(g, producer, WAIT_MS);
	const char *reason = NULL;
	assert_int_equal(pl_produce_group_result(g, 0, &reason), PL_OK);
	assert_int_equal(pl_produce_group_result(g, 1, NULL), PL_OK); /* nothing sent */
	assert_int_equal(pl_produce_group_result(g, 2, &reason), PL_ERR_SCHEMA);
	assert_string_equal(reason, "could not encode it");
	pl_produce_group_destroy(g);
	assert_int_equal(error_stack_left(&m, RD_KAFKAP_Produce), 0); /* the faults happened */
	int n = 0;
	read_topic(&m, "g.in", 3, count_fn, &n);
	assert_int_equal(n, 50); /* every record, once */

	/* The broker answers after 1 s, the wait gives up after 50 ms: the slot with a send out
	 * reads PL_ERR_TIMEOUT, the one without stays OK, and the wait still returns only after
	 * the report came (destroying the group then is safe: ASan would say otherwise). */
	assert_int_equal(rd_kafka_mock_broker_set_rtt(m.mc, 1, 1000), 0);
	g = pl_produce_group_new(2);
	assert_int_equal(pl_produce_group_send(g, producer, 1, "g.in", "late", 4, "v", 1, NULL, 0),
	                 PL_OK);
	int64_t t0 = pl_now_ms();
	pl_produce_group_wait(g, producer, 50);
	assert_true(pl_now_ms() - t0 >= 900);
	assert_int_equal(pl_produce_group_result(g, 0, NULL), PL_OK);
	assert_int_equal(pl_produce_group_result(g, 1, &reason), PL_ERR_TIMEOUT);
	assert_string_equal(reason, "no delivery report in time");
	pl_produce_group_destroy(g);
	assert_int_equal(rd_kafka_mock_broker_set_rtt(m.mc, 1, 0), 0);

	pl_producer_destroy(producer, 5000);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

/* ---- (b) stage: offset commits fail -------------------------------------------------------- */

static void stage_commit_errors(int commit_interval_ms)
{
	mock_t m;
	mock_start(&m);
	enum { N = 300, P = 3 };
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "b.in", P, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "b.in.dlq", P, 1), 0);
	sent_t *sent = calloc(N, sizeof(*sent));
	produce_inputs(&m, "b.in", N, sent, NULL);

	const rd_kafka_resp_err_t errs[] = {
	    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
	    RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS};
	char interval[64];
	snprintf(interval, sizeof(interval), "DP_COMMIT_INTERVAL_MS=%d", commit_interval_ms);
	const char *extra[] = {interval, NULL};
	pl_cfg_t *cfg = cfg_new(&m, extra);
	tracker_t t;
	tracker_init(&t, N, sent);
	t.fail_first = 2;
	const char *topics[] = {"b.in", NULL};
	pl_stage_opts_t opts = {.group = "b-group",
	                        .topics = topics,
	                        .handler = track_handler,
	                        .handler_arg = &t,
	                        .registry = registry,
	                        .max_batch = 50};
	if (commit_interval_ms < 1000)
		push_errors(&m, RD_KAFKAP_OffsetCommit, 8, errs, 4); /* during consumption */
	runner_t r;
	runner_start(&r, cfg, &opts);
	assert_true(wait_until(all_ok, &t, WAIT_MS));
	/* ...and while the stage commits its final offsets on the way out. */
	push_errors(&m, RD_KAFKAP_OffsetCommit, 3, errs, 4);
	runner_stop(&r);
	assert_int_equal(error_stack_left(&m, RD_KAFKAP_OffsetCommit), 0);

	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&t.ok[i]), 1);
		if (i % 10 == 3)
			assert_int_equal(atomic_load(&t.attempts[i]), 3); /* 2 RETRY, then OK */
	}
	assert_int_equal(atomic_load(&t.order_errors), 0);
	int64_t committed[P], end[P];
	group_offsets(&m, "b-group", "b.in", P, committed, end);
	for (int p = 0; p < P; p++) {
		print_message("partition %d: committed %lld end %lld\n", p, (long long)committed[p],
		              (long long)end[p]);
		assert_int_equal(committed[p], end[p]);
	}
	tracker_free(&t);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

static void test_stage_commits_through_commit_errors(void **state)
{
	(void)state;
	stage_commit_errors(20);
}

/* No interval commit: only the commit at shutdown stores the progress, and it meets errors. */
static void test_stage_final_commit_through_commit_errors(void **state)
{
	(void)state;
	stage_commit_errors(600000);
}

/* ---- (c) stage: replies not acknowledged at first ------------------------------------------ */

typedef struct attempts_at_least {
	tracker_t *t;
	int record, min;
} attempts_at_least_t;

static bool attempts_reached(void *arg)
{
	attempts_at_least_t *a = arg;
	return atomic_load(&a->t->attempts[a->record]) >= a->min;
}

static void stage_unacknowledged_replies(rd_kafka_resp_err_t fault)
{
	mock_t m;
	mock_start(&m);
	enum { N = 40 };
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "c.in", 1, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "c.out", 1, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "c.held", 1, 1), 0);
	sent_t *sent = calloc(N, sizeof(*sent));
	produce_inputs(&m, "c.in", N, sent, NULL);

	/* Replies time out quickly so a failed one is reported (and the record retried) soon. */
	const char *extra[] = {"DP_COMMIT_INTERVAL_MS=10", "DP_KAFKA_PROP_message_timeout_ms=300",
	                       NULL};
	pl_cfg_t *cfg = cfg_new(&m, extra);
	tracker_t t;
	tracker_init(&t, N, sent);
	t.reply_topic = "c.out";
	t.held_topic = "c.held";
	const char *topics[] = {"c.in", NULL};
	pl_stage_opts_t opts = {.group = "c-group",
	                        .topics = topics,
	                        .handler = track_handler,
	                        .handler_arg = &t,
	                        .registry = registry,
	                        .max_batch = 10};
	/* Every produce request fails until the faults are cleared. */
	rd_kafka_resp_err_t *faults = calloc(5000, sizeof(*faults));
	for (int i = 0; i < 5000; i++)
		faults[i] = fault;
	rd_kafka_mock_push_request_errors_array(m.mc, RD_KAFKAP_Produce, 5000, faults);
	free(faults);
	runner_t r;
	runner_start(&r, cfg, &opts);
	/* Record 0 handled three times: its replies were not acknowledged twice... */
	attempts_at_least_t a = {&t, 0, 3};
	assert_true(wait_until(attempts_reached, &a, WAIT_MS));
	/* ...and its offset was not stored (the group commits every 10 ms). */
	int64_t committed[1], end[1];
	group_offsets(&m, "c-group", "c.in", 1, committed, NULL);
	assert_true(committed[0] < 1);
	assert_int_equal(atomic_load(&t.reply_send_errors), 0); /* failures came asynchronously */

	rd_kafka_mock_clear_request_errors(m.mc, RD_KAFKAP_Produce);
	assert_true(wait_until(all_ok, &t, WAIT_MS));
	/* The stage goes on until every record's offset is committed: that needs its reply. */
	int64_t deadline = pl_now_ms() + WAIT_MS;
	do {
		sleep_ms(20);
		group_offsets(&m, "c-group", "c.in", 1, committed, end);
	} while (committed[0] != end[0] && pl_now_ms() < deadline);
	runner_stop(&r);
	group_offsets(&m, "c-group", "c.in", 1, committed, end);
	assert_int_equal(committed[0], end[0]);

	/* Nothing lost: every record's reply is in the reply topic (duplicates allowed). */
	seen_t seen = {N, calloc(N, sizeof(int)), 0, NULL};
	read_topic(&m, "c.out", 1, seen_fn, &seen);
	/* ...and its held reply, sent once its reply was acknowledged: never more often. */
	seen_t held = {N, calloc(N, sizeof(int)), 0, NULL};
	read_topic(&m, "c.held", 1, seen_fn, &held);
	for (int i = 0; i < N; i++) {
		if (seen.count[i] < 1)
			fail_msg("record %d has no reply", i);
		if (held.count[i] < 1 || held.count[i] > seen.count[i])
			fail_msg("record %d: %d held replies for %d replies", i, held.count[i],
			         seen.count[i]);
	}
	free(seen.count);
	free(held.count);
	tracker_free(&t);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

/* A permanent produce error: librdkafka gives up on the reply at once. */
static void test_stage_retries_record_when_reply_rejected(void **state)
{
	(void)state;
	stage_unacknowledged_replies(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
}

/* A retriable produce error until the reply's message timeout. */
static void test_stage_retries_record_when_reply_times_out(void **state)
{
	(void)state;
	stage_unacknowledged_replies(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
}

/* ---- (d) stage: a rebalance while a partition waits for its retry ------------------------- */

typedef struct rebalance_wait {
	tracker_t *t;
	rd_kafka_t *other; /* the second group member: polled so it takes part in the group */
} rebalance_wait_t;

static bool all_ok_polling_other(void *arg)
{
	rebalance_wait_t *w = arg;
	rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->other, 0);
	if (msg)
		rd_kafka_message_destroy(msg);
	return all_ok(w->t);
}

/* The partition is paused for a long backoff when a second member joins the group: the eager
 * rebalance revokes it and assigns it back, which restarts it from its committed offset. It must
 * not stay paused (librdkafka keeps an application pause across unassign/assign). */
static void test_stage_resumes_partition_reassigned_during_retry(void **state)
{
	(void)state;
	mock_t m;
	mock_start(&m);
	enum { N = 10 };
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "d.in", 1, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "d.other", 1, 1), 0);
	sent_t *sent = calloc(N, sizeof(*sent));
	produce_inputs(&m, "d.in", N, sent, NULL);
	/* A short session timeout: the mock completes a rebalance only after it. */
	const char *extra[] = {"DP_RETRY_BACKOFF_MIN_MS=120000",
	                       "DP_RETRY_BACKOFF_MAX_MS=120000",
	                       "DP_KAFKA_PROP_session_timeout_ms=6000",
	                       "DP_KAFKA_PROP_heartbeat_interval_ms=500",
	                       getenv("TEST_STAGE_MOCK_DEBUG") ? "DP_KAFKA_PROP_debug=cgrp,consumer"
	                                                       : NULL,
	                       NULL};
	pl_cfg_t *cfg = cfg_new(&m, extra);
	tracker_t t;
	tracker_init(&t, N, sent);
	t.fail_first = 1; /* record 3 fails once */
	const char *topics[] = {"d.in", NULL};
	pl_stage_opts_t opts = {.group = "d-group",
	                        .topics = topics,
	                        .handler = track_handler,
	                        .handler_arg = &t,
	                        .registry = registry};
	runner_t r;
	runner_start(&r, cfg, &opts);
	attempts_at_least_t a = {&t, 3, 1};
	assert_true(wait_until(attempts_reached, &a, WAIT_MS));

	/* A member of the same group that subscribes to another topic: every member's partitions
	 * are revoked and the stage gets d.in back. */
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", m.bootstrap, NULL, 0);
	rd_kafka_conf_set(conf, "group.id", "d-group", NULL, 0);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
	rd_kafka_conf_set(conf, "session.timeout.ms", "6000", NULL, 0);
	rd_kafka_conf_set(conf, "heartbeat.interval.ms", "500", NULL, 0);
	rd_kafka_t *other = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(other);
	rd_kafka_poll_set_consumer(other);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, "d.other", RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(other, subs), 0);
	rd_kafka_topic_partition_list_destroy(subs);
	/* Long before the 60-120 s backoff ends. */
	rebalance_wait_t w = {&t, other};
	bool done = wait_until(all_ok_polling_other, &w, 30000);
	rd_kafka_consumer_close(other);
	rd_kafka_destroy(other);
	if (!done)
		fail_msg(
		    "%d of %d records handled: the partition stayed paused after the rebalance",
		    atomic_load(&t.ok_unique), N);
	/* The other member left: once the group is stable again the progress is committed. */
	int64_t committed[1], end[1];
	int64_t deadline = pl_now_ms() + WAIT_MS;
	do {
		sleep_ms(20);
		group_offsets(&m, "d-group", "d.in", 1, committed, end);
	} while (committed[0] != end[0] && pl_now_ms() < deadline);
	runner_stop(&r);
	group_offsets(&m, "d-group", "d.in", 1, committed, end);
	assert_int_equal(committed[0], end[0]);
	tracker_free(&t);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

/* ---- (e) stage: records handled on lanes at once (opts.concurrent) ----------------------------
 */

enum { LANE_KEYS = 7 };

typedef struct lane_tracker {
	tracker_t t;
	atomic_int inflight, max_inflight;
} lane_tracker_t;

/* Records i share key k-<i % LANE_KEYS>. Handling record i while an earlier record of its key
 * has no OK yet is an order error; every record i % 10 == 3 fails twice first. */
static pl_stage_outcome_t lane_handler(pl_stage_ctx_t *ctx, const pl_record_t *record,
                                       const json_t *event, const pl_avro_schema_t *schema,
                                       void *arg)
{
	(void)record;
	(void)schema;
	lane_tracker_t *lt = arg;
	tracker_t *t = &lt->t;
	int i = event_index(event);
	if (i < 0 || i >= t->n)
		return PL_STAGE_DEAD;
	int now = atomic_fetch_add(&lt->inflight, 1) + 1, max = atomic_load(&lt->max_inflight);
	while (now > max && !atomic_compare_exchange_weak(&lt->max_inflight, &max, now))
		;
	for (int j = i % LANE_KEYS; j < i; j += LANE_KEYS)
		if (atomic_load(&t->ok[j]) == 0)
			atomic_fetch_add(&t->order_errors, 1);
	sleep_ms(2); /* a store round trip: long enough for lanes to overlap */
	atomic_fetch_sub(&lt->inflight, 1);
	int attempt = atomic_fetch_add(&t->attempts[i], 1);
	if (i % 10 == 3 && attempt < 2) {
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "flaky (attempt %d)", attempt + 1);
		return PL_STAGE_RETRY;
	}
	if (atomic_fetch_add(&t->ok[i], 1) == 0)
		atomic_fetch_add(&t->ok_unique, 1);
	return PL_STAGE_OK;
}

/* With opts.concurrent and DP_STAGE_WORKERS=4, records of different keys are handled at once,
 * records of one key one after the other in offset order, retries included; every record gets
 * its OK and the group commits to the end of every partition. */
static void test_stage_lanes_keep_key_order(void **state)
{
	(void)state;
	mock_t m;
	mock_start(&m);
	enum { N = 300, P = 3 };
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "e.in", P, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "e.in.dlq", P, 1), 0);
	sent_t *sent = calloc(N, sizeof(*sent));
	key_mod = LANE_KEYS;
	produce_inputs(&m, "e.in", N, sent, NULL);
	key_mod = 0;
	const char *extra[] = {"DP_STAGE_WORKERS=4", NULL};
	pl_cfg_t *cfg = cfg_new(&m, extra);
	lane_tracker_t lt;
	memset(&lt, 0, sizeof(lt));
	tracker_init(&lt.t, N, sent);
	const char *topics[] = {"e.in", NULL};
	pl_stage_opts_t opts = {.group = "e-group",
	                        .topics = topics,
	                        .handler = lane_handler,
	                        .handler_arg = &lt,
	                        .registry = registry,
	                        .max_batch = 50,
	                        .concurrent = true};
	runner_t r;
	runner_start(&r, cfg, &opts);
	assert_true(wait_until(all_ok, &lt.t, WAIT_MS));
	runner_stop(&r);
	print_message("max records in hand at once: %d\n", atomic_load(&lt.max_inflight));
	assert_true(atomic_load(&lt.max_inflight) >= 2);
	assert_true(atomic_load(&lt.max_inflight) <= 4);
	assert_int_equal(atomic_load(&lt.t.order_errors), 0);
	for (int i = 0; i < N; i++) {
		assert_true(atomic_load(&lt.t.ok[i]) >= 1);
		if (i % 10 == 3)
			assert_true(atomic_load(&lt.t.attempts[i]) >= 3);
	}
	int64_t committed[P], end[P];
	group_offsets(&m, "e-group", "e.in", P, committed, end);
	for (int p = 0; p < P; p++) /* 7 keys may leave a partition empty: nothing to commit */
		if (end[p] > 0)
			assert_int_equal(committed[p], end[p]);
	tracker_free(&lt.t);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

/* ---- (f) stage: a batch handler (opts.batch_handler) ------------------------------------------
 * Records i share key k-<i % LANE_KEYS>; i % 10 == 3 fails twice first; i % 25 == 7 is poison.
 * The handler takes the items in order and stops at the first RETRY, leaving the later items
 * untouched (their effects undone, their outcome still the preset OK): the stage must handle
 * them again, in order. Handling a record while an earlier record of its key is neither OK nor
 * dead is an order error. */

typedef struct batch_tracker {
	tracker_t t;
	atomic_int *dead;
	atomic_int calls, max_items;
} batch_tracker_t;

static void batch_handler(pl_stage_item_t *items, size_t n, void *arg)
{
	batch_tracker_t *bt = arg;
	tracker_t *t = &bt->t;
	atomic_fetch_add(&bt->calls, 1);
	int max = atomic_load(&bt->max_items);
	while ((int)n > max && !atomic_compare_exchange_weak(&bt->max_items, &max, (int)n))
		;
	for (size_t k = 0; k < n; k++) {
		int i = event_index(items[k].event);
		if (i < 0 || i >= t->n) {
			items[k].outcome = PL_STAGE_DEAD;
			continue;
		}
		for (int j = i % LANE_KEYS; j < i; j += LANE_KEYS)
			if (atomic_load(&t->ok[j]) == 0 && atomic_load(&bt->dead[j]) == 0)
				atomic_fetch_add(&t->order_errors, 1);
		if (i % 25 == 7) {
			pl_stage_set_reason(items[k].ctx, PL_ERR_REJECTED, "poison record %d", i);
			items[k].outcome = PL_STAGE_DEAD;
			atomic_fetch_add(&bt->dead[i], 1);
			continue;
		}
		int attempt = atomic_fetch_add(&t->attempts[i], 1);
		if (i % 10 == 3 && attempt < 2) {
			pl_stage_set_reason(items[k].ctx, PL_ERR_TRANSIENT, "flaky (attempt %d)",
			                    attempt + 1);
			items[k].outcome = PL_STAGE_RETRY;
			return; /* the later items did not take effect */
		}
		if (atomic_fetch_add(&t->ok[i], 1) == 0)
			atomic_fetch_add(&t->ok_unique, 1);
	}
}

static bool all_ok_or_dead(void *arg)
{
	batch_tracker_t *bt = arg;
	int done = 0;
	for (int i = 0; i < bt->t.n; i++)
		done += atomic_load(&bt->t.ok[i]) > 0 || atomic_load(&bt->dead[i]) > 0;
	return done == bt->t.n;
}

/* Several records per call; the records after a RETRY in a call are handled again in order;
 * poison records are dead-lettered once each and the calls go on past them; the group commits
 * to the end of every partition. Run with 1 lane (the whole batch) and with 4. */
static void stage_batch_handler(const char *workers, bool dead_once)
{
	mock_t m;
	mock_start(&m);
	enum { N = 300, P = 3 };
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "f.in", P, 1), 0);
	assert_int_equal(rd_kafka_mock_topic_create(m.mc, "f.in.dlq", P, 1), 0);
	sent_t *sent = calloc(N, sizeof(*sent));
	key_mod = LANE_KEYS;
	produce_inputs(&m, "f.in", N, sent, NULL);
	key_mod = 0;
	const char *extra[] = {workers, NULL};
	pl_cfg_t *cfg = cfg_new(&m, extra);
	batch_tracker_t bt;
	memset(&bt, 0, sizeof(bt));
	tracker_init(&bt.t, N, sent);
	bt.dead = calloc(N, sizeof(*bt.dead));
	const char *topics[] = {"f.in", NULL};
	pl_stage_opts_t opts = {.group = "f-group",
	                        .topics = topics,
	                        .batch_handler = batch_handler,
	                        .handler_arg = &bt,
	                        .registry = registry,
	                        .max_batch = 100,
	                        .concurrent = true};
	runner_t r;
	runner_start(&r, cfg, &opts);
	assert_true(wait_until(all_ok_or_dead, &bt, WAIT_MS));
	runner_stop(&r);
	print_message("%s: %d calls, up to %d records per call\n", workers, atomic_load(&bt.calls),
	              atomic_load(&bt.max_items));
	assert_true(atomic_load(&bt.max_items) >= 2);
	assert_true(atomic_load(&bt.max_items) <= 64);
	assert_int_equal(atomic_load(&bt.t.order_errors), 0);
	int poison = 0;
	for (int i = 0; i < N; i++) {
		if (i % 25 == 7) {
			poison++;
			if (dead_once)
				assert_int_equal(atomic_load(&bt.dead[i]), 1);
			else
				assert_true(atomic_load(&bt.dead[i]) >= 1);
			assert_int_equal(atomic_load(&bt.t.ok[i]), 0);
		} else {
			assert_true(atomic_load(&bt.t.ok[i]) >= 1);
		}
		if (i % 10 == 3 && i % 25 != 7)
			assert_true(atomic_load(&bt.t.attempts[i]) >= 3);
	}
	int dead_lettered = 0;
	read_topic(&m, "f.in.dlq", P, count_fn, &dead_lettered);
	if (dead_once)
		assert_int_equal(dead_lettered, poison);
	else
		assert_true(dead_lettered >= poison);
	int64_t committed[P], end[P];
	group_offsets(&m, "f-group", "f.in", P, committed, end);
	for (int p = 0; p < P; p++)
		if (end[p] > 0)
			assert_int_equal(committed[p], end[p]);
	tracker_free(&bt.t);
	free(bt.dead);
	free(sent);
	pl_cfg_destroy(cfg);
	mock_stop(&m);
}

static void test_stage_batch_handler_one_lane(void **state)
{
	(void)state;
	stage_batch_handler("DP_STAGE_WORKERS=1", true);
}

static void test_stage_batch_handler_four_lanes(void **state)
{
	(void)state;
	/* a lane's retry sends its partition back past records other lanes had finished: those
	 * poison records are dead-lettered again (at-least-once) */
	stage_batch_handler("DP_STAGE_WORKERS=4", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_producer_retries_produce_errors_exactly_once),
	    cmocka_unit_test(test_produce_group_results_per_slot),
	    cmocka_unit_test(test_stage_commits_through_commit_errors),
	    cmocka_unit_test(test_stage_final_commit_through_commit_errors),
	    cmocka_unit_test(test_stage_retries_record_when_reply_rejected),
	    cmocka_unit_test(test_stage_retries_record_when_reply_times_out),
	    cmocka_unit_test(test_stage_resumes_partition_reassigned_during_retry),
	    cmocka_unit_test(test_stage_lanes_keep_key_order),
	    cmocka_unit_test(test_stage_batch_handler_one_lane),
	    cmocka_unit_test(test_stage_batch_handler_four_lanes),
	};
	if (getenv("TEST_STAGE_MOCK_FILTER")) /* e.g. "*reassigned*" */
		cmocka_set_test_filter(getenv("TEST_STAGE_MOCK_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
