/* stage.c — the consumer-stage loop (see stage.h for the delivery contract).
 *
 * Owns: the consumer handle, the stage's producer (replies, dead letters), the per-partition
 * table (retry state, lag) and the per-batch acknowledgement tracker.
 *
 * Loop: poll a batch (first poll waits up to 100 ms, the rest take what is already fetched) ->
 * for each record: skip if its partition is blocked in this batch or the record predates the
 * latest rebalance; decode; handle; on DEAD produce the dead letter -> wait until every produce of
 * the batch completed -> store, per partition, the offset after the last record whose handler
 * finished and whose produces were all acknowledged, in order. A RETRY, or a produce that failed,
 * blocks its partition at that record: seek back to it, pause, resume after the backoff.
 * Invariant: an offset is stored only if every earlier record of the partition was stored
 * before or in the same batch (records of a partition are handled in order and the first
 * non-completed one stops the partition's store). */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kafka_int.h"
#include "log.h"
#include "mem.h"
#include "stage.h"
#include "text.h"

const pl_cfg_opt_t pl_stage_cfg[] = {
    {"DP_RETRY_BACKOFF_MIN_MS", PL_CFG_INT, "100", 1, 600000,
     .help = "first retry delay of a transient failure"},
    {"DP_RETRY_BACKOFF_MAX_MS", PL_CFG_INT, "30000", 1, 3600000,
     .help = "retry delay cap (exponential backoff with jitter)"},
    {"DP_COMMIT_INTERVAL_MS", PL_CFG_INT, "1000", 10, 600000,
     .help = "how often stored offsets are committed"},
    {"DP_STATS_INTERVAL_MS", PL_CFG_INT, "5000", 0, 600000,
     .help = "consumer statistics (lag metrics) interval, 0 = off"},
    {"DP_DLQ_MAX_BYTES", PL_CFG_INT, "900000", 4096, 100000000,
     .help = "largest dead letter (key, value and headers): a record larger than this is "
             "dead-lettered as a truncated copy (header dp_truncated), so the dead letter fits "
             "the broker's message.max.bytes; each refused dead letter is retried smaller"},
    {"DP_STAGE_WORKERS", PL_CFG_INT, "4", 1, 64,
     .help = "records handled at once by a service whose handler allows it (package, scheduler, "
             "delivery); records with the same key keep their order. Round trips to the stores "
             "bound these stages, so several overlap; 1 handles one record at a time"},
    {NULL},
};

typedef struct part {
	char *topic;
	int32_t partition;
	bool assigned;
	bool paused;
	int64_t resume_at_ms;
	int attempt;             /* consecutive retries of retry_offset */
	int64_t retry_offset;    /* offset being retried, -1 none */
	bool seek_pending;       /* the seek back to retry_offset failed: redo it before resuming */
	int64_t last_ts_ms;      /* timestamp of the last record handled */
	int64_t next_offset;     /* offset after the last record polled, -1 unknown */
	int64_t retry_since_ms;  /* when retry_offset was first retried */
	char retry_reason[256];  /* why retry_offset is retried (for /readyz) */
	int64_t dlq_fail_offset; /* record whose dead letter was refused, -1 none ... */
	int dlq_fails;           /* ... and how often in a row: each try sends a smaller copy */
	pl_metric_t *lag_records, *lag_seconds;
} part_t;

/* One record of the batch whose produces are awaited. */
typedef struct entry {
	struct batch *batch;
	struct pl_stage *stage;
	size_t part; /* index into stage->parts */
	int64_t offset;
	const rd_kafka_message_t *msg; /* borrowed from the batch */
	unsigned lane;                 /* worker that handles it (same key, same lane) */
	bool completed;                /* handler OK or DEAD (not RETRY) */
	bool retry;                    /* handler or dead letter asked for a retry ... */
	char reason[256];              /* ... and why */
	bool ok;                       /* handler OK (the later replies may go) */
	bool dead;                     /* dead-lettered: a failed produce is its dead letter */
	atomic_int refused;            /* pl_err_t of the last produce refused, PL_OK none */
	struct later *later;           /* replies held until the others are acknowledged
	                                * (pl_stage_produce_after), in order; owned */
	atomic_int pending;
	atomic_int failed;
} entry_t;

/* A reply held back by pl_stage_produce_after: the record's other produces first. */
typedef struct later {
	struct later *next;
	char *topic, *key;
	void *value;
	size_t value_len;
	const char *event_type; /* the registry's (outlives the stage) */
	char event_id[37];
	char traceparent[56]; /* this reply's span, made when it was asked for */
} later_t;

typedef struct batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int outstanding;
} batch_t;

struct pl_stage_ctx {
	pl_stage_t *stage;
	const pl_record_t *record;
	entry_t *entry;
	pl_err_t err;
	char reason[512];
	char traceparent[64];
};

struct pl_stage {
	const pl_cfg_t *cfg;
	pl_stage_opts_t opts;
	char *group;
	char **topics;
	rd_kafka_t *rk;
	pl_producer_t *producer;
	atomic_bool stop;
	atomic_bool joined;
	atomic_int assigned_count;
	atomic_bool
	    producer_fatal; /* the idempotent producer failed for good: stop, return FATAL */
	unsigned epoch;     /* incremented on every rebalance */
	part_t *parts;
	size_t nparts;
	int64_t backoff_min, backoff_max;
	size_t dlq_max_bytes;
	unsigned workers; /* lanes per batch: 1 unless opts.concurrent */
	bool drained;     /* the last poll found the consumer queue empty */
	pl_err_t fatal;
	pl_metric_family_t *m_in_progress; /* gauge: handlers running now */
	pl_metric_family_t *m_dlq_failures, *m_blocked;
	/* Why the stage is not doing its job right now ("" when it is): a partition held at a
	 * retried record, e.g. its dead letter refused. Written by the stage thread after each
	 * batch, read by /readyz from HTTP threads. */
	pthread_mutex_t health_lock;
	char not_ready[512];
	pl_metric_family_t *m_records, *m_latency, *m_retries, *m_dead, *m_lag_records,
	    *m_lag_seconds;
	batch_t batch;
};

static part_t *part_get(pl_stage_t *s, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].partition == partition && strcmp(s->parts[i].topic, topic) == 0)
			return &s->parts[i];
	/* The array may move when it grows: entries keep an index, never a pointer. */
	s->parts = pl_realloc(s->parts, (s->nparts + 1) * sizeof(*s->parts));
	part_t *p = &s->parts[s->nparts++];
	memset(p, 0, sizeof(*p));
	p->topic = pl_strdup(topic);
	p->partition = partition;
	p->retry_offset = -1;
	p->dlq_fail_offset = -1;
	char pbuf[16];
	snprintf(pbuf, sizeof(pbuf), "%d", partition);
	const char *labels[] = {s->group, topic, pbuf};
	p->lag_records = pl_metric_get(s->m_lag_records, labels);
	p->lag_seconds = pl_metric_get(s->m_lag_seconds, labels);
	return p;
}

static int64_t backoff_ms(pl_stage_t *s, int attempt)
{
	int64_t d = s->backoff_min;
	for (int i = 0; i < attempt && d < s->backoff_max; i++)
		d *= 2;
	if (d > s->backoff_max)
		d = s->backoff_max;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	/* "equal jitter": half fixed, half random, so retries of many partitions spread out */
	return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
}

/* on_stored with the group's committed offsets of newly assigned partitions (a copy of the list
 * is asked, so the assignment still starts from the committed offsets as librdkafka reads them).
 * Without an answer nothing is reported: the first stored offsets will be. */
static void report_committed(pl_stage_t *s, const rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_resp_err_t err = rd_kafka_committed(s->rk, c, 10000);
	if (err) {
		pl_log(
		    PL_LOG_WARN, "committed_offsets_unknown",
		    PL_LOG_FIELDS(PL_LS("group", s->group), PL_LS("err", rd_kafka_err2name(err))),
		    "%s", rd_kafka_err2str(err));
	} else {
		for (int i = 0; i < c->cnt; i++)
			if (!c->elems[i].err && c->elems[i].offset >= 0)
				s->opts.on_stored(c->elems[i].topic, c->elems[i].partition,
				                  c->elems[i].offset, s->opts.assign_arg);
	}
	rd_kafka_topic_partition_list_destroy(c);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	pl_stage_t *s = opaque;
	s->epoch++;
	atomic_store(&s->joined, true);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++) {
			part_t *p = part_get(s, parts->elems[i].topic, parts->elems[i].partition);
			p->assigned = true;
			p->paused = false;
			p->attempt = 0;
			p->retry_offset = -1;
			p->dlq_fail_offset = -1;
			p->next_offset = -1;
			p->seek_pending = false; /* restarts from its committed offset */
			if (s->opts.on_assign && s->fatal == PL_OK) {
				pl_err_t e =
				    s->opts.on_assign(p->topic, p->partition, s->opts.assign_arg);
				if (e != PL_OK)
					s->fatal = e;
			}
		}
		pl_log(PL_LOG_INFO, "partitions_assigned",
		       PL_LOG_FIELDS(PL_LS("group", s->group), PL_LI("count", parts->cnt)),
		       "assigned %d partitions", parts->cnt);
		if (s->opts.on_stored && s->fatal == PL_OK)
			report_committed(s, parts);
		rd_kafka_assign(rk, parts);
		/* librdkafka keeps an application pause across unassign/assign: a partition
		 * revoked while it waited for a retry would come back paused for good (p->paused
		 * is false now, so resume_due never resumes it). It restarts from its committed
		 * offset, so it must fetch. */
		rd_kafka_resume_partitions(rk, parts);
		atomic_store(&s->assigned_count, parts->cnt);
	} else {
		/* Offsets stored so far belong to fully handled records: commit them before the
		 * partitions go to another member. */
		rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, NULL, 0);
		if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
			pl_log(PL_LOG_WARN, "commit_on_revoke_failed",
			       PL_LOG_FIELDS(PL_LS("group", s->group),
			                     PL_LS("err", rd_kafka_err2name(cerr))),
			       "%s", rd_kafka_err2str(cerr));
		for (int i = 0; i < parts->cnt; i++) {
			part_t *p = part_get(s, parts->elems[i].topic, parts->elems[i].partition);
			p->assigned = false;
			p->paused = false;
			pl_metric_set(p->lag_records, 0);
			pl_metric_set(p->lag_seconds, 0);
			if (s->opts.on_revoke)
				s->opts.on_revoke(p->topic, p->partition, s->opts.assign_arg);
		}
		pl_log(PL_LOG_INFO, "partitions_revoked",
		       PL_LOG_FIELDS(PL_LS("group", s->group), PL_LI("count", parts->cnt)),
		       "revoked %d partitions", parts->cnt);
		rd_kafka_assign(rk, NULL);
		atomic_store(&s->assigned_count, 0);
	}
}

/* Consumer lag per partition from librdkafka statistics (runs on the stage thread). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	pl_stage_t *s = opaque;
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *topics = json_object_get(root, "topics");
	const char *tname;
	json_t *t;
	int64_t now = pl_now_ms();
	json_object_foreach(topics, tname, t)
	{
		const char *pname;
		json_t *pj;
		json_object_foreach(json_object_get(t, "partitions"), pname, pj)
		{
			int32_t pid = atoi(pname);
			if (pid < 0)
				continue; /* the internal UA partition */
			for (size_t i = 0; i < s->nparts; i++) {
				part_t *p = &s->parts[i];
				if (p->partition != pid || strcmp(p->topic, tname) != 0 ||
				    !p->assigned)
					continue;
				json_int_t lag =
				    json_integer_value(json_object_get(pj, "consumer_lag"));
				if (lag < 0)
					lag = 0;
				pl_metric_set(p->lag_records, (double)lag);
				double secs = 0;
				if (lag > 0 && p->last_ts_ms > 0 && now > p->last_ts_ms)
					secs = (double)(now - p->last_ts_ms) / 1000.0;
				pl_metric_set(p->lag_seconds, secs);
			}
		}
	}
	json_decref(root);
	return 0; /* librdkafka frees json */
}

pl_stage_t *pl_stage_new(const pl_cfg_t *cfg, const pl_stage_opts_t *opts, char *errstr,
                         size_t errstr_size)
{
	pl_stage_t *s = pl_calloc(1, sizeof(*s));
	rd_kafka_conf_t *conf = NULL;
	s->cfg = cfg;
	s->opts = *opts;
	s->group = pl_strdup(opts->group);
	size_t n = 0;
	while (opts->topics[n])
		n++;
	s->topics = pl_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->topics[i] = pl_strdup(opts->topics[i]);
	s->opts.topics = (const char *const *)s->topics;
	if (s->opts.max_batch <= 0)
		s->opts.max_batch = 500;
	s->workers = s->opts.concurrent ? (unsigned)pl_cfg_int(cfg, "DP_STAGE_WORKERS") : 1;
	s->backoff_min = pl_cfg_int(cfg, "DP_RETRY_BACKOFF_MIN_MS");
	s->backoff_max = pl_cfg_int(cfg, "DP_RETRY_BACKOFF_MAX_MS");
	if (s->backoff_max < s->backoff_min)
		s->backoff_max = s->backoff_min;
	s->dlq_max_bytes = (size_t)pl_cfg_int(cfg, "DP_DLQ_MAX_BYTES");
	pl_metrics_t *m = opts->metrics ? opts->metrics : pl_metrics_default();
	s->m_records = pl_metrics_family(m, "dronepipe_stage_records_total",
	                                 "Records handled, by outcome (ok, dead, retry)",
	                                 PL_METRIC_COUNTER, "group,topic,outcome", NULL, 0);
	s->m_latency =
	    pl_metrics_family(m, "dronepipe_stage_handler_seconds", "Handler latency per record",
	                      PL_METRIC_HISTOGRAM, "group,topic", NULL, 0);
	s->m_in_progress = pl_metrics_family(
	    m, "dronepipe_stage_records_in_progress",
	    "Records whose handler is running now (one that stays up is a stuck store call)",
	    PL_METRIC_GAUGE, "group", NULL, 0);
	s->m_retries = pl_metrics_family(m, "dronepipe_stage_retries_total",
	                                 "Records paused for a retry (transient failures)",
	                                 PL_METRIC_COUNTER, "group,topic", NULL, 0);
	s->m_dead = pl_metrics_family(m, "dronepipe_stage_dead_letters_total",
	                              "Records sent to the dead-letter topic", PL_METRIC_COUNTER,
	                              "group,topic", NULL, 0);
	s->m_lag_records = pl_metrics_family(m, "dronepipe_consumer_lag_records",
	                                     "Records behind the end of the partition",
	                                     PL_METRIC_GAUGE, "group,topic,partition", NULL, 0);
	s->m_lag_seconds = pl_metrics_family(
	    m, "dronepipe_consumer_lag_seconds",
	    "Age of the last handled record while the partition lags (0 when caught up)",
	    PL_METRIC_GAUGE, "group,topic,partition", NULL, 0);
	s->m_dlq_failures = pl_metrics_family(
	    m, "dronepipe_stage_dead_letter_failures_total",
	    "Dead letters the broker did not take (missing .dlq topic, no permission, too large): "
	    "the record is retried with backoff and a smaller copy",
	    PL_METRIC_COUNTER, "group,topic", NULL, 0);
	s->m_blocked = pl_metrics_family(
	    m, "dronepipe_stage_partitions_blocked",
	    "Partitions held at a record that is retried (a dependency is unavailable, or its "
	    "dead letter cannot be written)",
	    PL_METRIC_GAUGE, "group", NULL, 0);
	pthread_mutex_init(&s->batch.lock, NULL);
	pthread_cond_init(&s->batch.cond, NULL);
	pthread_mutex_init(&s->health_lock, NULL);

	char commit_ms[24], stats_ms[24], queue_kb[24];
	snprintf(queue_kb, sizeof(queue_kb), "%d",
	         s->opts.queue_kbytes > 0 ? s->opts.queue_kbytes : 2048);
	snprintf(commit_ms, sizeof(commit_ms), "%lld",
	         (long long)pl_cfg_int(cfg, "DP_COMMIT_INTERVAL_MS"));
	snprintf(stats_ms, sizeof(stats_ms), "%lld",
	         (long long)pl_cfg_int(cfg, "DP_STATS_INTERVAL_MS"));
	const char *base[] = {"group.id", s->group, "client.id", s->group,
	                      "enable.auto.offset.store", "false", "enable.auto.commit", "true",
	                      "auto.commit.interval.ms", commit_ms, "auto.offset.reset", "earliest",
	                      "statistics.interval.ms", stats_ms, "enable.partition.eof", "false",
	                      /* pre-fetched records held per partition (librdkafka 2.0.2 counts
	                       * each partition's queue): the 64 MB default was most of a replaying
	                       * service's memory. With the fetcher woken when the queue runs dry
	                       * (pl_consumer_wake_fetch), the delivery group's replay measured
	                       * 1 MB 23-24k/s 22 MB RSS, 2 MB 38k/s 27 MB, 8 MB 37-38k/s 55 MB;
	                       * the workflow's (18 partitions, ~3x slower per record) 512 KB
	                       * 13.5k/s 30 MB, 2 MB 14-16k/s 41-52 MB. opts.queue_kbytes sets it,
	                       * DP_KAFKA_PROP_queued_max_messages_kbytes overrides it */
	                      "queued.max.messages.kbytes", queue_kb,
	                      /* a fetch waits up to 10 ms for 64 KB instead of returning for every
	                       * new record: under load the broker answers a few fetches of many
	                       * records (its CPU per delivery fell by 43%), at the price of at most
	                       * 10 ms per hop when traffic is thin */
	                      "fetch.wait.max.ms", "10", "fetch.min.bytes", "65536", NULL};
	conf = pl_kafka_conf_new(cfg, base, errstr, errstr_size);
	if (!conf)
		goto fail;
	for (size_t i = 0; opts->extra_consumer_props && opts->extra_consumer_props[i]; i += 2) {
		if (rd_kafka_conf_set(conf, opts->extra_consumer_props[i],
		                      opts->extra_consumer_props[i + 1], errstr,
		                      errstr_size) != RD_KAFKA_CONF_OK)
			goto fail;
	}
	rd_kafka_conf_set_opaque(conf, s);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!s->rk)
		goto fail;
	conf = NULL; /* owned by rk now */
	rd_kafka_poll_set_consumer(s->rk);
	const char *pprops[] = {"message.timeout.ms", "30000", NULL};
	s->producer = pl_producer_new(cfg, s->group, pprops, errstr, errstr_size);
	if (!s->producer)
		goto fail;
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(subs, s->topics[i], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(s->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (err) {
		snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
		goto fail;
	}
	return s;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	pl_stage_destroy(s);
	return NULL;
}

void pl_stage_destroy(pl_stage_t *s)
{
	if (!s)
		return;
	if (s->rk)
		rd_kafka_destroy(s->rk);
	pl_producer_destroy(s->producer, 5000);
	for (size_t i = 0; i < s->nparts; i++)
		pl_free(s->parts[i].topic);
	pl_free(s->parts);
	for (size_t i = 0; s->topics && s->topics[i]; i++)
		pl_free(s->topics[i]);
	pl_free(s->topics);
	pl_free(s->group);
	pthread_mutex_destroy(&s->batch.lock);
	pthread_mutex_destroy(&s->health_lock);
	pthread_cond_destroy(&s->batch.cond);
	pl_free(s);
}

void pl_stage_stop(pl_stage_t *s)
{
	atomic_store(&s->stop, true);
}

bool pl_stage_ready(pl_stage_t *s, char *reason, size_t reason_size)
{
	if (!atomic_load(&s->joined)) {
		snprintf(reason, reason_size, "consumer group %s: waiting for partition assignment",
		         s->group);
		return false;
	}
	pthread_mutex_lock(&s->health_lock);
	bool ok = s->not_ready[0] == '\0';
	if (!ok)
		snprintf(reason, reason_size, "%s", s->not_ready);
	pthread_mutex_unlock(&s->health_lock);
	return ok;
}

pl_producer_t *pl_stage_producer(pl_stage_t *s)
{
	return s->producer;
}

/* ---- produce completions ---------------------------------------------------------------- */

static void entry_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                       int64_t offset)
{
	(void)partition;
	(void)offset;
	entry_t *e = opaque;
	if (err == PL_ERR_FATAL)
		atomic_store(&e->stage->producer_fatal, true);
	if (err != PL_OK) {
		atomic_fetch_add(&e->failed, 1);
		atomic_store(&e->refused, (int)err);
		pl_log(PL_LOG_WARN, "reply_not_acknowledged",
		       PL_LOG_FIELDS(PL_LS("topic", e->stage->parts[e->part].topic),
		                     PL_LI("partition", e->stage->parts[e->part].partition),
		                     PL_LI("offset", e->offset), PL_LS("err", pl_err_str(err))),
		       "a produced reply failed: %s; the record will be retried", reason);
	}
	atomic_fetch_sub(&e->pending, 1);
	batch_t *b = e->batch;
	pthread_mutex_lock(&b->lock);
	if (--b->outstanding == 0)
		pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static pl_err_t entry_send(pl_stage_t *s, entry_t *e, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const pl_header_t *h, size_t nh)
{
	pthread_mutex_lock(&e->batch->lock);
	e->batch->outstanding++;
	pthread_mutex_unlock(&e->batch->lock);
	atomic_fetch_add(&e->pending, 1);
	pl_err_t err;
	for (int tries = 0;; tries++) {
		err = pl_producer_send(s->producer, topic, key, key_len, value, value_len, h, nh,
		                       entry_done, e);
		if (err != PL_ERR_QUEUE_FULL || tries > 100)
			break;
		struct timespec ts = {0, 10 * 1000000}; /* let the queue drain */
		nanosleep(&ts, NULL);
	}
	if (err != PL_OK) {
		atomic_fetch_sub(&e->pending, 1);
		pthread_mutex_lock(&e->batch->lock);
		e->batch->outstanding--;
		pthread_mutex_unlock(&e->batch->lock);
		/* A fatal producer never recovers: retrying the record would loop forever. */
		if (err == PL_ERR_FATAL)
			atomic_store(&s->producer_fatal, true);
	}
	return err;
}

pl_err_t pl_stage_produce(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                          const void *value, size_t value_len, const pl_event_meta_t *meta)
{
	/* the reply continues the trace of the record being handled (a new span) */
	char traceparent[56];
	pl_traceparent_child(meta->traceparent ? meta->traceparent : ctx->traceparent, traceparent);
	pl_event_meta_t m = *meta;
	m.traceparent = traceparent;
	pl_event_headers_t eh;
	pl_event_headers_build(&eh, &m);
	pl_err_t err = entry_send(ctx->stage, ctx->entry, topic, key, key ? strlen(key) : 0, value,
	                          value_len, eh.h, eh.n);
	if (err != PL_OK)
		atomic_fetch_add(&ctx->entry->failed, 1);
	return err;
}

/* Encodes event with the latest schema of schema_name into *buf (caller frees); sets the
 * record's reason when it cannot. */
static pl_err_t encode_event(pl_stage_ctx_t *ctx, const char *schema_name, const json_t *event,
                             const pl_avro_schema_t **schema, void **buf, size_t *len)
{
	if (!event) {
		/* the handler's builder refused its text (jansson: not UTF-8): a poison reply */
		pl_stage_set_reason(ctx, PL_ERR_INVALID,
		                    "the %s reply could not be built from the record's text",
		                    schema_name);
		return PL_ERR_INVALID;
	}
	*schema = pl_avro_schema_get(ctx->stage->opts.registry, schema_name);
	if (!*schema) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "no schema named %s", schema_name);
		return PL_ERR_SCHEMA;
	}
	char err[256];
	pl_err_t e = pl_avro_encode(*schema, event, buf, len, err, sizeof(err));
	if (e != PL_OK)
		pl_stage_set_reason(ctx, e, "encode %s: %s", schema_name, err);
	return e;
}

pl_err_t pl_stage_produce_event(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                                const char *schema_name, const json_t *event, const char *event_id)
{
	const pl_avro_schema_t *schema;
	void *buf = NULL;
	size_t len = 0;
	pl_err_t e = encode_event(ctx, schema_name, event, &schema, &buf, &len);
	if (e != PL_OK)
		return e;
	pl_event_meta_t meta = {.event_type = pl_avro_schema_short_name(schema),
	                        .event_id = event_id};
	e = pl_stage_produce(ctx, topic, key, buf, len, &meta);
	pl_free(buf);
	return e;
}

pl_err_t pl_stage_produce_after(pl_stage_ctx_t *ctx, const char *topic, const char *key,
                                const char *schema_name, const json_t *event, const char *event_id)
{
	const pl_avro_schema_t *schema;
	later_t *l = pl_calloc(1, sizeof(*l));
	pl_err_t e = encode_event(ctx, schema_name, event, &schema, &l->value, &l->value_len);
	if (e != PL_OK) {
		pl_free(l);
		return e;
	}
	l->topic = pl_strdup(topic);
	l->key = key ? pl_strdup(key) : NULL;
	l->event_type = pl_avro_schema_short_name(schema);
	snprintf(l->event_id, sizeof(l->event_id), "%s", event_id ? event_id : "");
	pl_traceparent_child(ctx->traceparent, l->traceparent);
	later_t **tail = &ctx->entry->later;
	while (*tail)
		tail = &(*tail)->next;
	*tail = l;
	return PL_OK;
}

/* Sends (when send) and frees e's held replies; a send refused makes the record's produce
 * failed (it is retried). */
static void later_flush(pl_stage_t *s, entry_t *e, bool send)
{
	later_t *l = e->later;
	e->later = NULL;
	while (l) {
		later_t *next = l->next;
		if (send) {
			pl_event_meta_t meta = {.event_type = l->event_type,
			                        .event_id = l->event_id[0] ? l->event_id : NULL,
			                        .traceparent = l->traceparent};
			pl_event_headers_t eh;
			pl_event_headers_build(&eh, &meta);
			if (entry_send(s, e, l->topic, l->key, l->key ? strlen(l->key) : 0,
			               l->value, l->value_len, eh.h, eh.n) != PL_OK) {
				atomic_fetch_add(&e->failed, 1);
				send = false; /* in order: none after a refused one */
			}
		}
		pl_free(l->topic);
		pl_free(l->key);
		pl_free(l->value);
		pl_free(l);
		l = next;
	}
}

void pl_stage_set_reason(pl_stage_ctx_t *ctx, pl_err_t err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->reason, sizeof(ctx->reason), fmt, ap);
	va_end(ap);
	/* reasons quote record text (ids, decode errors): they go to a header, a log line and
	 * the DLQ tools, so they are made safe text, never cut inside a character */
	pl_text_clean_inplace(ctx->reason, sizeof(ctx->reason));
	ctx->err = err;
}

const char *pl_stage_traceparent(const pl_stage_ctx_t *ctx)
{
	return ctx->traceparent;
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* Produces the record to <topic>.dlq with its key, value, headers and the reason. A record
 * that would not fit dlq_max_bytes, or whose dead letter was refused before (shrink = refusals
 * in a row), goes as a truncated copy: the original headers dropped, the key and the value cut,
 * and dp_truncated saying what was cut; dp_source_* always name the original. So the dead
 * letter itself cannot fail for its size, and a partition never stays blocked by one. */
static pl_err_t dead_letter(pl_stage_t *s, entry_t *e, const pl_record_t *r, pl_err_t err,
                            const char *reason, int shrink)
{
	char dlq[300], part[16], off[24], at[24], cut[96];
	snprintf(dlq, sizeof(dlq), "%s.dlq", r->topic);
	snprintf(part, sizeof(part), "%d", r->partition);
	snprintf(off, sizeof(off), "%lld", (long long)r->offset);
	snprintf(at, sizeof(at), "%lld", (long long)pl_now_ms());
	const char *cls = pl_err_str(err);
	pl_header_t h[PL_MAX_HEADERS + 8];
	size_t n = 0, own = 0;
	h[n++] = (pl_header_t){"dp_error", reason, strlen(reason)};
	h[n++] = (pl_header_t){"dp_error_class", cls, strlen(cls)};
	h[n++] = (pl_header_t){"dp_source_topic", r->topic, strlen(r->topic)};
	h[n++] = (pl_header_t){"dp_source_partition", part, strlen(part)};
	h[n++] = (pl_header_t){"dp_source_offset", off, strlen(off)};
	h[n++] = (pl_header_t){"dp_group", s->group, strlen(s->group)};
	h[n++] = (pl_header_t){"dp_dead_at", at, strlen(at)};
	for (size_t i = 0; i < n; i++)
		own += strlen(h[i].name) + h[i].len;
	size_t theirs = 0, nkept = 0;
	for (size_t i = 0; i < r->header_count; i++)
		if (strncmp(r->headers[i].name, "dp_", 3) != 0) /* a redriven record's old reason */
			theirs += strlen(r->headers[i].name) + r->headers[i].len, nkept++;
	size_t budget = s->dlq_max_bytes >> (shrink < 30 ? shrink : 30);
	size_t key_len = r->key_len, value_len = r->value_len;
	bool whole = shrink == 0 && own + theirs + key_len + value_len <= budget;
	if (whole) {
		for (size_t i = 0; i < r->header_count; i++)
			if (strncmp(r->headers[i].name, "dp_", 3) != 0)
				h[n++] = r->headers[i];
	} else {
		size_t room = budget > own + sizeof(cut) + 32 ? budget - own - sizeof(cut) - 32 : 0;
		if (key_len > room / 4)
			key_len = room / 4;
		room -= key_len;
		if (value_len > room)
			value_len = room;
		snprintf(cut, sizeof(cut),
		         "value %zu of %zu bytes, key %zu of %zu, headers 0 of %zu", value_len,
		         r->value_len, key_len, r->key_len, nkept);
		h[n++] = (pl_header_t){"dp_truncated", cut, strlen(cut)};
		pl_log(PL_LOG_WARN, "dead_letter_truncated",
		       PL_LOG_FIELDS(PL_LS("topic", r->topic), PL_LI("partition", r->partition),
		                     PL_LI("offset", r->offset)),
		       "dead letter sent as a truncated copy: %s", cut);
	}
	return entry_send(s, e, dlq, r->key, key_len, r->value, value_len, h, n);
}

static void block_partition(pl_stage_t *s, size_t pi, int64_t offset, const char *why)
{
	part_t *p = &s->parts[pi];
	if (p->retry_offset == offset) {
		p->attempt++;
	} else {
		p->attempt = 0;
		p->retry_since_ms = pl_now_ms();
	}
	p->retry_offset = offset;
	snprintf(p->retry_reason, sizeof(p->retry_reason), "%s", why);
	pl_text_clean_inplace(p->retry_reason, sizeof(p->retry_reason));
	int64_t wait = backoff_ms(s, p->attempt);
	p->resume_at_ms = pl_now_ms() + wait;
	p->paused = true;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
	rd_kafka_error_t *err = rd_kafka_seek_partitions(s->rk, l, 5000);
	if (!err && l->elems[0].err)
		err = rd_kafka_error_new(l->elems[0].err, "%s", rd_kafka_err2str(l->elems[0].err));
	/* Without the seek, resuming would fetch after the records of this batch and skip
	 * the one being retried: resume_due seeks again first. */
	p->seek_pending = err != NULL;
	if (err) {
		pl_log(PL_LOG_ERROR, "seek_failed",
		       PL_LOG_FIELDS(PL_LS("topic", p->topic), PL_LI("partition", p->partition),
		                     PL_LI("offset", offset)),
		       "%s", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
	}
	rd_kafka_pause_partitions(s->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	const char *labels[] = {s->group, p->topic};
	pl_metric_inc(pl_metric_get(s->m_retries, labels));
	pl_log(p->attempt < 3 ? PL_LOG_INFO : PL_LOG_WARN, "record_retry",
	       PL_LOG_FIELDS(PL_LS("topic", p->topic), PL_LI("partition", p->partition),
	                     PL_LI("offset", offset), PL_LI("attempt", p->attempt + 1),
	                     PL_LI("backoff_ms", wait)),
	       "retrying in %lld ms: %s", (long long)wait, why);
}

static void resume_due(pl_stage_t *s)
{
	int64_t now = pl_now_ms();
	for (size_t i = 0; i < s->nparts; i++) {
		part_t *p = &s->parts[i];
		if (!p->paused || !p->assigned || now < p->resume_at_ms)
			continue;
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
		if (p->seek_pending) {
			l->elems[0].offset = p->retry_offset;
			rd_kafka_error_t *err = rd_kafka_seek_partitions(s->rk, l, 5000);
			if (err || l->elems[0].err) {
				/* still not repositioned: stay paused, try again later */
				p->resume_at_ms = now + backoff_ms(s, p->attempt);
				if (err)
					rd_kafka_error_destroy(err);
				rd_kafka_topic_partition_list_destroy(l);
				continue;
			}
			p->seek_pending = false;
		}
		rd_kafka_resume_partitions(s->rk, l);
		rd_kafka_topic_partition_list_destroy(l);
		p->paused = false;
	}
}

/* After a batch, an empty queue may only mean librdkafka stopped fetching (see
 * pl_consumer_wake_fetch): wake it for the first running partition that lags. */
static void wake_fetcher(pl_stage_t *s)
{
	for (size_t i = 0; i < s->nparts; i++) {
		part_t *p = &s->parts[i];
		if (p->assigned && !p->paused &&
		    pl_consumer_wake_fetch(s->rk, p->topic, p->partition, p->next_offset))
			return;
	}
}

static int poll_timeout_ms(pl_stage_t *s)
{
	int64_t now = pl_now_ms(), t = 100;
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].paused && s->parts[i].assigned &&
		    s->parts[i].resume_at_ms - now < t)
			t = s->parts[i].resume_at_ms - now;
	return t < 0 ? 0 : (int)t;
}

/* A record on its way through a handler: filled by prepare, closed by finish. Holds the ctx a
 * handler sees, so it stays put (an array slot) while the handler runs. */
typedef struct prepared {
	pl_record_t r;
	pl_stage_ctx_t ctx;
	json_t *event;
	const pl_avro_schema_t *schema;
	char trace_id[33];
	bool decoded; /* false: undecodable, already given DEAD with its reason */
} prepared_t;

/* Fills p for the record m of entry e: record view, trace context, decoded value. */
static void prepare(pl_stage_t *s, const rd_kafka_message_t *m, entry_t *e, prepared_t *p)
{
	memset(p, 0, sizeof(*p));
	pl_kafka_record_fill(&p->r, m);
	p->ctx = (pl_stage_ctx_t){.stage = s, .record = &p->r, .entry = e};
	char tp[60];
	if (pl_record_header(&p->r, "traceparent", tp, sizeof(tp)) &&
	    pl_traceparent_parse(tp, p->trace_id))
		snprintf(p->ctx.traceparent, sizeof(p->ctx.traceparent), "%s", tp);
	p->decoded = true;
	if (s->opts.raw)
		return;
	char err[256];
	pl_err_t de = pl_avro_decode(s->opts.registry, p->r.value, p->r.value_len, &p->event,
	                             &p->schema, err, sizeof(err));
	if (de != PL_OK) {
		pl_stage_set_reason(&p->ctx, de, "undecodable record: %s", err);
		p->decoded = false;
	}
}

/* Sets the log context (trace id, key) of p's record on this thread. */
static void log_ctx_of(const prepared_t *p)
{
	char key[128];
	size_t klen = p->r.key_len < sizeof(key) - 1 ? p->r.key_len : sizeof(key) - 1;
	memcpy(key, p->r.key ? p->r.key : "", klen);
	key[klen] = '\0';
	pl_log_ctx_set(p->trace_id, key);
}

/* Only "a dependency is unavailable" is retried: a RETRY whose reason is of a class that the
 * same input can never pass (a reply that cannot be built or encoded, a record the handler
 * refuses) would hold its partition forever, so it becomes DEAD with that reason. A RETRY
 * without a reason is taken as transient (a failed produce sets none). */
static pl_stage_outcome_t settle_outcome(pl_stage_ctx_t *ctx, pl_stage_outcome_t out)
{
	if (out != PL_STAGE_RETRY || ctx->err == PL_OK || pl_err_retryable(ctx->err))
		return out;
	pl_log(PL_LOG_WARN, "retry_refused",
	       PL_LOG_FIELDS(
	           PL_LS("topic", ctx->record->topic), PL_LI("partition", ctx->record->partition),
	           PL_LI("offset", ctx->record->offset), PL_LS("err", pl_err_str(ctx->err))),
	       "not retried (the same record would fail again), dead-lettered: %s", ctx->reason);
	return PL_STAGE_DEAD;
}

/* Records the handler's outcome for p into its entry: metrics (seconds = its share of the
 * handler time), the dead letter on DEAD, e->retry on RETRY; releases the decoded value. Touches
 * no partition state, so the lanes of a batch run it at once; e->retry asks the stage thread to
 * block the partition at this record. */
static void finish(pl_stage_t *s, entry_t *e, prepared_t *p, pl_stage_outcome_t out, double seconds)
{
	pl_stage_ctx_t *ctx = &p->ctx;
	const pl_record_t *r = &p->r;
	log_ctx_of(p);
	if (out == PL_STAGE_DEAD && !ctx->reason[0])
		pl_stage_set_reason(ctx, PL_ERR_REJECTED, "handler rejected the record");
	out = settle_outcome(ctx, out);
	if (out == PL_STAGE_OK && atomic_load(&e->failed))
		out = PL_STAGE_RETRY; /* a reply could not even be enqueued */
	const char *labels[] = {s->group, r->topic};
	pl_metric_observe(pl_metric_get(s->m_latency, labels), seconds);
	const char *outcome = out == PL_STAGE_OK ? "ok" : out == PL_STAGE_DEAD ? "dead" : "retry";
	const char *olabels[] = {s->group, r->topic, outcome};
	pl_metric_inc(pl_metric_get(s->m_records, olabels));
	if (out == PL_STAGE_DEAD) {
		pl_err_t cls = ctx->err != PL_OK ? ctx->err : PL_ERR_REJECTED;
		pl_log(PL_LOG_WARN, "record_dead_lettered",
		       PL_LOG_FIELDS(PL_LS("topic", r->topic), PL_LI("partition", r->partition),
		                     PL_LI("offset", r->offset), PL_LS("err", pl_err_str(cls))),
		       "%s", ctx->reason);
		pl_metric_inc(pl_metric_get(s->m_dead, labels));
		const part_t *pt = &s->parts[e->part];
		int shrink = pt->dlq_fail_offset == r->offset ? pt->dlq_fails : 0;
		e->dead = true;
		pl_err_t de = dead_letter(s, e, r, cls, ctx->reason, shrink);
		if (de != PL_OK) {
			atomic_store(&e->refused, (int)de);
			out = PL_STAGE_RETRY;
			char why[sizeof(ctx->reason) + 512];
			int n = snprintf(why, sizeof(why),
			                 "its dead letter to %s.dlq was refused (%s): %s", r->topic,
			                 pl_err_str(de), ctx->reason);
			size_t len = n < 0 ? 0 : (size_t)n;
			if (len >= sizeof(ctx->reason))
				len = sizeof(ctx->reason) - 1;
			memcpy(ctx->reason, why, len);
			ctx->reason[len] = '\0';
			pl_text_clean_inplace(ctx->reason, sizeof(ctx->reason));
		}
	}
	if (out == PL_STAGE_RETRY) {
		e->retry = true;
		snprintf(e->reason, sizeof(e->reason), "%.*s", (int)sizeof(e->reason) - 1,
		         ctx->reason[0] ? ctx->reason : "transient failure");
	} else {
		e->completed = true;
		e->ok = out == PL_STAGE_OK;
	}
	json_decref(p->event);
	p->event = NULL;
	pl_log_ctx_clear();
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Handles one record into entry e with opts.handler (its produces are pending in the batch). */
static void handle_one(pl_stage_t *s, const rd_kafka_message_t *m, entry_t *e)
{
	prepared_t p;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	prepare(s, m, e, &p);
	pl_stage_outcome_t out = PL_STAGE_DEAD;
	if (p.decoded) {
		const char *glabels[] = {s->group};
		pl_metric_t *in_progress = pl_metric_get(s->m_in_progress, glabels);
		log_ctx_of(&p);
		pl_metric_add(in_progress, 1);
		out = s->opts.handler(&p.ctx, &p.r, p.event, p.schema, s->opts.handler_arg);
		pl_metric_add(in_progress, -1);
	}
	finish(s, e, &p, out, seconds_since(&t0));
}

/* Handles entries[idx[0..n)] (one lane's, in offset order) with one opts.batch_handler call.
 * Undecodable records are dead-lettered without it. The first RETRY turns every later item into
 * a RETRY too (stage.h: the handler left their effects undone). */
static void handle_many(pl_stage_t *s, entry_t *entries, const size_t *idx, size_t n,
                        prepared_t *prep, pl_stage_item_t *items)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t nitems = 0;
	for (size_t i = 0; i < n; i++) {
		prepare(s, entries[idx[i]].msg, &entries[idx[i]], &prep[i]);
		if (prep[i].decoded)
			items[nitems++] = (pl_stage_item_t){.ctx = &prep[i].ctx,
			                                    .record = &prep[i].r,
			                                    .event = prep[i].event,
			                                    .schema = prep[i].schema,
			                                    .outcome = PL_STAGE_OK};
	}
	if (nitems) {
		const char *glabels[] = {s->group};
		pl_metric_t *in_progress = pl_metric_get(s->m_in_progress, glabels);
		pl_metric_add(in_progress, (double)nitems);
		s->opts.batch_handler(items, nitems, s->opts.handler_arg);
		pl_metric_add(in_progress, -(double)nitems);
		for (size_t i = 0; i < nitems; i++)
			items[i].outcome = settle_outcome(items[i].ctx, items[i].outcome);
		bool retrying = false;
		for (size_t i = 0; i < nitems; i++) {
			if (retrying && items[i].outcome != PL_STAGE_RETRY) {
				items[i].outcome = PL_STAGE_RETRY;
				pl_stage_set_reason(items[i].ctx, PL_ERR_TRANSIENT,
				                    "an earlier record of the batch is retried");
			}
			retrying = retrying || items[i].outcome == PL_STAGE_RETRY;
		}
	}
	double share = seconds_since(&t0) / (double)n;
	for (size_t i = 0, k = 0; i < n; i++) {
		pl_stage_outcome_t out = PL_STAGE_DEAD;
		if (prep[i].decoded)
			out = items[k++].outcome;
		finish(s, &entries[idx[i]], &prep[i], out, share);
	}
}

/* ---- lanes: the records of a batch handled at once ----------------------------------------
 * Records go to lanes by a hash of their key, so records with the same key are handled one
 * after the other in offset order. A lane that sees a RETRY skips the rest of that partition
 * (as the one-at-a-time loop does); other lanes may have handled later records of the partition:
 * their offsets are not stored past the retried record, so they are handled again after the
 * seek (at-least-once; handlers are idempotent). */

typedef struct lane_job {
	pl_stage_t *stage;
	entry_t *entries;
	size_t n;
	unsigned lane;
} lane_job_t;

static unsigned lane_of(const rd_kafka_message_t *m, unsigned lanes)
{
	uint32_t h = 2166136261u; /* FNV-1a of the key; keyless records by partition */
	const unsigned char *k = m->key;
	if (!k)
		return (unsigned)m->partition % lanes;
	for (size_t i = 0; i < m->key_len; i++)
		h = (h ^ k[i]) * 16777619u;
	return h % lanes;
}

/* Records per batch_handler call: bounds the time a store spends on one call. */
#define HANDLER_BATCH 64

static void *lane_main(void *arg)
{
	lane_job_t *job = arg;
	pl_stage_t *s = job->stage;
	size_t *blocked = pl_malloc((job->n ? job->n : 1) * sizeof(*blocked)), nblocked = 0;
	size_t idx[HANDLER_BATCH], nidx = 0;
	prepared_t *prep = NULL;
	pl_stage_item_t *items = NULL;
	if (s->opts.batch_handler) {
		prep = pl_malloc(HANDLER_BATCH * sizeof(*prep));
		items = pl_malloc(HANDLER_BATCH * sizeof(*items));
	}
	for (size_t i = 0; i <= job->n; i++) {
		bool last = i == job->n || atomic_load(&s->stop);
		if (prep && nidx && (last || nidx == HANDLER_BATCH)) {
			handle_many(s, job->entries, idx, nidx, prep, items);
			for (size_t k = 0; k < nidx; k++)
				if (job->entries[idx[k]].retry)
					blocked[nblocked++] = job->entries[idx[k]].part;
			nidx = 0;
		}
		if (last)
			break;
		entry_t *e = &job->entries[i];
		bool skip = e->lane != job->lane;
		for (size_t b = 0; b < nblocked && !skip; b++)
			skip = blocked[b] == e->part;
		if (skip)
			continue;
		if (prep) {
			idx[nidx++] = i;
			continue;
		}
		handle_one(s, e->msg, e);
		if (e->retry)
			blocked[nblocked++] = e->part;
	}
	pl_free(prep);
	pl_free(items);
	pl_free(blocked);
	return NULL;
}

/* Handles entries[0..n) on min(workers, n) lanes, lane 0 on the calling thread. */
static void run_lanes(pl_stage_t *s, entry_t *entries, size_t n)
{
	unsigned lanes = s->workers < n ? s->workers : (unsigned)n;
	pthread_t threads[64];
	lane_job_t jobs[64];
	unsigned started = 0;
	for (size_t i = 0; i < n; i++)
		entries[i].lane = lanes > 1 ? lane_of(entries[i].msg, lanes) : 0;
	for (unsigned l = 0; l < lanes; l++)
		jobs[l] = (lane_job_t){.stage = s, .entries = entries, .n = n, .lane = l};
	for (unsigned l = 1; l < lanes; l++) {
		if (pthread_create(&threads[started], NULL, lane_main, &jobs[l]) != 0)
			break;
		started++;
	}
	/* a lane whose thread could not start runs here, after lane 0 */
	for (unsigned l = 0; l < lanes; l++)
		if (l == 0 || l > started)
			lane_main(&jobs[l]);
	for (unsigned t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
}

static void wait_batch(pl_stage_t *s)
{
	pthread_mutex_lock(&s->batch.lock);
	while (s->batch.outstanding > 0)
		pthread_cond_wait(&s->batch.cond, &s->batch.lock);
	pthread_mutex_unlock(&s->batch.lock);
}

/* A dead letter that was refused (not queued, or not acknowledged) is counted; one refused for
 * its size makes the next one of the same record smaller (a missing topic or a permission does
 * not: the whole record goes once it is fixed); one that went through clears that. */
static void count_dead_letter(pl_stage_t *s, entry_t *e)
{
	part_t *p = &s->parts[e->part];
	bool refused = e->retry || atomic_load(&e->failed);
	if (!refused) {
		if (p->dlq_fail_offset == e->offset) {
			p->dlq_fail_offset = -1;
			p->dlq_fails = 0;
		}
		return;
	}
	if (p->dlq_fail_offset != e->offset) {
		p->dlq_fail_offset = e->offset;
		p->dlq_fails = 0;
	}
	if (atomic_load(&e->refused) == PL_ERR_TOO_LARGE)
		p->dlq_fails++;
	const char *labels[] = {s->group, p->topic};
	pl_metric_inc(pl_metric_get(s->m_dlq_failures, labels));
}

/* After a batch: what /readyz says. A partition is "blocked" once its record was retried
 * three times in a row (one failed call is no outage); the oldest such retry is named. */
static void update_health(pl_stage_t *s)
{
	char text[sizeof(s->not_ready)] = "";
	int64_t now = pl_now_ms(), oldest = INT64_MAX;
	int blocked = 0;
	for (size_t i = 0; i < s->nparts; i++) {
		const part_t *p = &s->parts[i];
		if (!p->assigned || !p->paused || p->retry_offset < 0 || p->attempt < 2)
			continue;
		blocked++;
		if (p->retry_since_ms >= oldest)
			continue;
		oldest = p->retry_since_ms;
		bool dlq = p->dlq_fail_offset == p->retry_offset;
		snprintf(text, sizeof(text),
		         "%s[%d] held at offset %lld for %llds (%d tries): %s%s", p->topic,
		         p->partition, (long long)p->retry_offset,
		         (long long)((now - p->retry_since_ms) / 1000), p->attempt + 1,
		         dlq ? "dead letter refused; " : "", p->retry_reason);
	}
	if (blocked > 1) {
		size_t n = strlen(text);
		snprintf(text + n, sizeof(text) - n, " (and %d more partitions)", blocked - 1);
	}
	pl_text_clean_inplace(text, sizeof(text));
	pthread_mutex_lock(&s->health_lock);
	memcpy(s->not_ready, text, sizeof(text));
	pthread_mutex_unlock(&s->health_lock);
	const char *glabels[] = {s->group};
	pl_metric_set(pl_metric_get(s->m_blocked, glabels), blocked);
}

/* Stores offsets of completed, acknowledged records; blocks partitions whose produces failed. */
static void store_batch(pl_stage_t *s, entry_t *entries, size_t n)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
	for (size_t i = 0; i < n; i++) {
		entry_t *e = &entries[i];
		part_t *p = &s->parts[e->part];
		rd_kafka_topic_partition_t *tp =
		    rd_kafka_topic_partition_list_find(l, p->topic, p->partition);
		if (e->dead)
			count_dead_letter(s, e);
		if (tp && tp->err)
			continue; /* partition stopped at an earlier record */
		if (!e->completed || atomic_load(&e->failed)) {
			if (!tp)
				tp = rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
			tp->err = RD_KAFKA_RESP_ERR__FAIL; /* marker: nothing more for it */
			if (e->completed) /* handled, but a reply was not acknowledged */
				block_partition(s, e->part, e->offset,
				                e->dead ? "its dead letter was not acknowledged"
				                        : "a reply was not acknowledged");
			continue;
		}
		if (!tp) {
			tp = rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
			tp->offset = -1;
		}
		tp->offset = e->offset + 1;
		if (p->retry_offset == e->offset) {
			p->retry_offset = -1;
			p->attempt = 0;
		}
	}
	rd_kafka_topic_partition_list_t *st = rd_kafka_topic_partition_list_new(l->cnt);
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset >= 0)
			rd_kafka_topic_partition_list_add(st, l->elems[i].topic,
			                                  l->elems[i].partition)
			    ->offset = l->elems[i].offset;
	if (st->cnt > 0) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(s->rk, st);
		if (err)
			pl_log(PL_LOG_WARN, "offset_store_failed",
			       PL_LOG_FIELDS(PL_LS("group", s->group),
			                     PL_LS("err", rd_kafka_err2name(err))),
			       "%s", rd_kafka_err2str(err));
		for (int i = 0; s->opts.on_stored && i < st->cnt; i++)
			if (!st->elems[i].err)
				s->opts.on_stored(st->elems[i].topic, st->elems[i].partition,
				                  st->elems[i].offset, s->opts.assign_arg);
	}
	rd_kafka_topic_partition_list_destroy(st);
	rd_kafka_topic_partition_list_destroy(l);
}

pl_err_t pl_stage_run(pl_stage_t *s)
{
	size_t cap = (size_t)s->opts.max_batch;
	rd_kafka_message_t **msgs = pl_calloc(cap, sizeof(*msgs));
	entry_t *entries = pl_calloc(cap, sizeof(*entries));
	size_t *blocked = pl_calloc(cap, sizeof(*blocked)); /* part indexes blocked this batch */
	unsigned *msg_epoch = pl_calloc(cap, sizeof(*msg_epoch));
	pl_log(PL_LOG_INFO, "stage_started", PL_LOG_FIELDS(PL_LS("group", s->group)),
	       "consuming as group %s", s->group);
	while (!atomic_load(&s->stop) && s->fatal == PL_OK && !atomic_load(&s->producer_fatal)) {
		resume_due(s);
		size_t n = 0;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 0);
		if (!m) {
			if (!s->drained)
				wake_fetcher(s);
			m = rd_kafka_consumer_poll(s->rk, poll_timeout_ms(s));
		}
		s->drained = !m;
		while (m) {
			msg_epoch[n] = s->epoch;
			msgs[n++] = m;
			if (n == cap)
				break;
			m = rd_kafka_consumer_poll(s->rk, 0);
		}
		/* A rebalance during the polls restarts every partition from its committed
		 * offset (eager protocol): records returned before it are dropped unhandled and
		 * fetched again; those returned after it are current. */
		unsigned epoch = s->epoch;
		size_t nentries = 0, nblocked = 0;
		for (size_t i = 0; i < n; i++) {
			/* On SIGTERM stop between records: the rest of the batch is not stored and
			 * is handled after the restart, so shutdown never waits for a whole batch.
			 */
			if (atomic_load(&s->stop))
				break;
			m = msgs[i];
			if (m->err) {
				if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					pl_log(
					    PL_LOG_WARN, "consume_error",
					    PL_LOG_FIELDS(PL_LS("group", s->group),
					                  PL_LS("err", rd_kafka_err2name(m->err))),
					    "%s", rd_kafka_message_errstr(m));
				continue;
			}
			if (msg_epoch[i] != epoch || s->fatal != PL_OK)
				continue;
			part_t *p = part_get(s, rd_kafka_topic_name(m->rkt), m->partition);
			size_t pi = (size_t)(p - s->parts);
			p->next_offset = m->offset + 1;
			bool skip = !p->assigned;
			for (size_t b = 0; b < nblocked && !skip; b++)
				skip = blocked[b] == pi;
			if (skip)
				continue;
			entry_t *e = &entries[nentries++];
			memset(e, 0, sizeof(*e));
			e->batch = &s->batch;
			e->stage = s;
			e->part = pi;
			e->offset = m->offset;
			e->msg = m;
			p->last_ts_ms = rd_kafka_message_timestamp(m, NULL);
			if (s->workers > 1 || s->opts.batch_handler)
				continue; /* handled below, on lanes */
			handle_one(s, m, e);
			if (e->retry) {
				block_partition(s, pi, e->offset, e->reason);
				blocked[nblocked++] = pi;
			}
		}
		if ((s->workers > 1 || s->opts.batch_handler) && nentries > 0) {
			run_lanes(s, entries, nentries);
			/* the first retry of each partition blocks it there */
			for (size_t i = 0; i < nentries; i++) {
				bool done = !entries[i].retry;
				for (size_t b = 0; b < nblocked && !done; b++)
					done = blocked[b] == entries[i].part;
				if (done)
					continue;
				block_partition(s, entries[i].part, entries[i].offset,
				                entries[i].reason);
				blocked[nblocked++] = entries[i].part;
			}
		}
		wait_batch(s);
		/* Held replies go once every other produce of their record was acknowledged;
		 * a record not done keeps none (its retry asks again). */
		bool held = false;
		for (size_t i = 0; i < nentries; i++) {
			if (!entries[i].later)
				continue;
			bool send = entries[i].ok && !atomic_load(&entries[i].failed);
			held = held || send;
			later_flush(s, &entries[i], send);
		}
		if (held)
			wait_batch(s);
		store_batch(s, entries, nentries);
		update_health(s);
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
		if (s->opts.on_tick && s->fatal == PL_OK)
			s->opts.on_tick(s->opts.tick_arg);
	}
	pl_free(msgs);
	pl_free(entries);
	pl_free(blocked);
	pl_free(msg_epoch);
	pl_err_t result = s->fatal;
	if (result == PL_OK && atomic_load(&s->producer_fatal)) {
		result = PL_ERR_FATAL;
		pl_log(PL_LOG_ERROR, "producer_fatal", PL_LOG_FIELDS(PL_LS("group", s->group)),
		       "the stage's producer failed for good; stopping");
	}
	pl_log(PL_LOG_INFO, "stage_stopping", PL_LOG_FIELDS(PL_LS("group", s->group)),
	       "committing offsets and leaving the group");
	rd_kafka_resp_err_t err = rd_kafka_consumer_close(s->rk);
	if (err)
		pl_log(PL_LOG_WARN, "consumer_close_failed",
		       PL_LOG_FIELDS(PL_LS("err", rd_kafka_err2name(err))), "%s",
		       rd_kafka_err2str(err));
	return result;
}
