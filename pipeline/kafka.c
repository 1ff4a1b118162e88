/* kafka.c — the idempotent producer and librdkafka configuration/log glue.
 *
 * Owns: the rd_kafka_t producer handle and its poll thread. Each enqueued record carries a small
 * heap "completion" (callback + opaque) as its librdkafka opaque; the delivery-report callback
 * runs the completion once and frees it. So every successful pl_producer_send completes exactly
 * once, even when the producer is destroyed with records in flight (librdkafka reports them as
 * purged). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kafka.h"
#include "kafka_int.h"
#include "log.h"
#include "mem.h"

struct pl_producer {
	rd_kafka_t *rk;
	pthread_t poller;
	atomic_bool stop;
	/* readiness cache: metadata is asked at most every 2 s */
	pthread_mutex_t ready_lock;
	int64_t ready_checked_ms;
	bool ready_ok;
	char ready_reason[160];
};

typedef struct completion {
	pl_producer_done_fn done;
	void *opaque;
} completion_t;

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug */
	pl_log_level_t lvl = level <= 3   ? PL_LOG_ERROR
	                     : level == 4 ? PL_LOG_WARN
	                     : level <= 6 ? PL_LOG_INFO
	                                  : PL_LOG_DEBUG;
	pl_log(lvl, "kafka_log", PL_LOG_FIELDS(PL_LS("facility", fac)), "%s", buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* all-brokers-down and transport errors are expected while a broker restarts */
	pl_log(PL_LOG_WARN, "kafka_error",
	       PL_LOG_FIELDS(PL_LS("err", rd_kafka_err2name((rd_kafka_resp_err_t)err))), "%s",
	       reason);
}

rd_kafka_conf_t *pl_kafka_conf_new(const pl_cfg_t *cfg, const char *const *extra, char *errstr,
                                   size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", pl_cfg_str(cfg, "DP_KAFKA_BROKERS"),
	                      errstr, errstr_size) != RD_KAFKA_CONF_OK)
		goto fail;
	const char *sasl_password = pl_cfg_str(cfg, "DP_KAFKA_SASL_PASSWORD");
	if (sasl_password && rd_kafka_conf_set(conf, "sasl.password", sasl_password, errstr,
	                                       errstr_size) != RD_KAFKA_CONF_OK)
		goto fail;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	for (size_t i = 0; extra && extra[i]; i += 2) {
		if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], errstr, errstr_size) !=
		    RD_KAFKA_CONF_OK)
			goto fail;
	}
	for (size_t i = 0; i < pl_cfg_kafka_prop_count(cfg); i++) {
		const char *k, *v;
		pl_cfg_kafka_prop(cfg, i, &k, &v);
		char err[256];
		if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
			snprintf(errstr, errstr_size, "DP_KAFKA_PROP for %s: %s", k, err);
			goto fail;
		}
	}
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

void pl_kafka_record_fill(pl_record_t *r, const rd_kafka_message_t *m)
{
	memset(r, 0, sizeof(*r));
	r->topic = rd_kafka_topic_name(m->rkt);
	r->partition = m->partition;
	r->offset = m->offset;
	rd_kafka_timestamp_type_t tstype;
	r->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	r->key = m->key;
	r->key_len = m->key_len;
	r->value = m->payload;
	r->value_len = m->len;
	rd_kafka_headers_t *hdrs = NULL;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
		return;
	const char *name;
	const void *val;
	size_t size;
	for (size_t i = 0; r->header_count < PL_MAX_HEADERS &&
	                   rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0;
	     i++)
		r->headers[r->header_count++] = (pl_header_t){name, val ? val : "", size};
}

pl_err_t pl_kafka_err(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return PL_OK;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL:
		return PL_ERR_QUEUE_FULL;
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return PL_ERR_TIMEOUT;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		return PL_ERR_REJECTED;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
		return PL_ERR_TOO_LARGE;
	case RD_KAFKA_RESP_ERR__FATAL:
		return PL_ERR_FATAL;
	default:
		return PL_ERR_TRANSIENT;
	}
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void)rk;
	(void)opaque;
	completion_t *c = msg->_private;
	if (!c)
		return;
	pl_err_t err = pl_kafka_err(msg->err);
	const char *reason = msg->err ? rd_kafka_err2str(msg->err) : NULL;
	if (c->done)
		c->done(c->opaque, err, reason, msg->partition, msg->offset);
	pl_free(c);
}

static void *poll_main(void *arg)
{
	pl_producer_t *p = arg;
	while (!atomic_load(&p->stop))
		rd_kafka_poll(p->rk, 50);
	return NULL;
}

pl_producer_t *pl_producer_new(const pl_cfg_t *cfg, const char *client_id,
                               const char *const *extra_props, char *errstr, size_t errstr_size)
{
	/* murmur2 is the Java clients' partitioner: a Java producer or Kafka Streams app keyed by
	 * deliveryId lands on the same partitions as dronepipe, so co-partitioning holds. */
	const char *base[] = {"enable.idempotence",
	                      "true",
	                      "acks",
	                      "all",
	                      "linger.ms",
	                      "5",
	                      "partitioner",
	                      "murmur2_random",
	                      "client.id",
	                      client_id ? client_id : "dronepipe",
	                      NULL};
	rd_kafka_conf_t *conf = pl_kafka_conf_new(cfg, base, errstr, errstr_size);
	if (!conf)
		return NULL;
	for (size_t i = 0; extra_props && extra_props[i]; i += 2) {
		if (rd_kafka_conf_set(conf, extra_props[i], extra_props[i + 1], errstr,
		                      errstr_size) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	/* The pass-through must win over extra_props too: apply it again. */
	for (size_t i = 0; i < pl_cfg_kafka_prop_count(cfg); i++) {
		const char *k, *v;
		pl_cfg_kafka_prop(cfg, i, &k, &v);
		rd_kafka_conf_set(conf, k, v, NULL, 0);
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	pl_producer_t *p = pl_calloc(1, sizeof(*p));
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (!p->rk) {
		rd_kafka_conf_destroy(conf);
		pl_free(p);
		return NULL;
	}
	pthread_mutex_init(&p->ready_lock, NULL);
	if (pthread_create(&p->poller, NULL, poll_main, p) != 0) {
		snprintf(errstr, errstr_size, "cannot start producer poll thread");
		rd_kafka_destroy(p->rk);
		pl_free(p);
		return NULL;
	}
	return p;
}

void pl_producer_destroy(pl_producer_t *p, int timeout_ms)
{
	if (!p)
		return;
	rd_kafka_flush(p->rk, timeout_ms);
	atomic_store(&p->stop, true);
	pthread_join(p->poller, NULL);
	/* Whatever is still queued completes (with an error) through dr_msg_cb. */
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(p->rk, 0);
	rd_kafka_destroy(p->rk);
	pthread_mutex_destroy(&p->ready_lock);
	pl_free(p);
}

pl_err_t pl_producer_send(pl_producer_t *p, const char *topic, const void *key, size_t key_len,
                          const void *value, size_t value_len, const pl_header_t *headers,
                          size_t header_count, pl_producer_done_fn done, void *opaque)
{
	completion_t *c = pl_malloc(sizeof(*c));
	c->done = done;
	c->opaque = opaque;
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(header_count ? header_count : 1);
	for (size_t i = 0; i < header_count; i++)
		rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
		                    (ssize_t)headers[i].len);
	rd_kafka_resp_err_t err = rd_kafka_producev(
	    p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key_len),
	    RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(c), RD_KAFKA_V_END);
	if (err) {
		rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
		pl_free(c);
		return pl_kafka_err(err);
	}
	return PL_OK;
}

void pl_event_headers_build(pl_event_headers_t *out, const pl_event_meta_t *meta)
{
	if (meta->event_id)
		snprintf(out->event_id, sizeof(out->event_id), "%s", meta->event_id);
	else
		pl_uuid_v4(out->event_id);
	if (meta->traceparent && pl_traceparent_parse(meta->traceparent, NULL))
		snprintf(out->traceparent, sizeof(out->traceparent), "%s", meta->traceparent);
	else
		pl_traceparent_child(NULL, out->traceparent);
	snprintf(out->produced_at, sizeof(out->produced_at), "%lld", (long long)pl_now_ms());
	size_t n = 0;
	out->h[n++] = (pl_header_t){"event_type", meta->event_type, strlen(meta->event_type)};
	out->h[n++] = (pl_header_t){"event_id", out->event_id, strlen(out->event_id)};
	out->h[n++] = (pl_header_t){"traceparent", out->traceparent, strlen(out->traceparent)};
	out->h[n++] = (pl_header_t){"produced_at", out->produced_at, strlen(out->produced_at)};
	for (size_t i = 0; i < meta->extra_count && n < PL_MAX_HEADERS; i++)
		out->h[n++] = meta->extra[i];
	out->n = n;
}

pl_err_t pl_producer_send_event(pl_producer_t *p, const char *topic, const char *key,
                                const void *value, size_t value_len, const pl_event_meta_t *meta,
                                pl_producer_done_fn done, void *opaque)
{
	pl_event_headers_t eh;
	pl_event_headers_build(&eh, meta);
	return pl_producer_send(p, topic, key, key ? strlen(key) : 0, value, value_len, eh.h, eh.n,
	                        done, opaque);
}

/* ---- groups of sends awaited together ---------------------------------------------------- */

typedef struct group_slot {
	int pending; /* sends of this slot not completed yet */
	pl_err_t err;
	char reason[200];
} group_slot_t;

struct pl_produce_group {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending; /* sends of the group not completed yet */
	size_t n;
	group_slot_t slots[]; /* n */
};

typedef struct group_send {
	pl_produce_group_t *g;
	size_t slot;
} group_send_t;

/* The first error of a slot stays its result. Caller holds g->lock. */
static void slot_fail(group_slot_t *s, pl_err_t err, const char *reason)
{
	if (s->err != PL_OK)
		return;
	s->err = err;
	snprintf(s->reason, sizeof(s->reason), "%s", reason && *reason ? reason : pl_err_str(err));
}

static void group_done(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                       int64_t offset)
{
	(void)partition;
	(void)offset;
	group_send_t *gs = opaque;
	pl_produce_group_t *g = gs->g;
	pthread_mutex_lock(&g->lock);
	group_slot_t *s = &g->slots[gs->slot];
	if (err != PL_OK)
		slot_fail(s, err, reason);
	s->pending--;
	if (--g->pending == 0)
		pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	pl_free(gs);
}

pl_produce_group_t *pl_produce_group_new(size_t slots)
{
	pl_produce_group_t *g =
	    pl_calloc(1, sizeof(*g) + (slots ? slots : 1) * sizeof(group_slot_t));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->n = slots;
	return g;
}

pl_err_t pl_produce_group_send(pl_produce_group_t *g, pl_producer_t *p, size_t slot,
                               const char *topic, const void *key, size_t key_len,
                               const void *value, size_t value_len, const pl_header_t *headers,
                               size_t header_count)
{
	if (slot >= g->n)
		return PL_ERR_INVALID;
	group_send_t *gs = pl_malloc(sizeof(*gs));
	*gs = (group_send_t){.g = g, .slot = slot};
	pthread_mutex_lock(
	    &g->lock); /* counted first: the completion may run before send returns */
	g->pending++;
	g->slots[slot].pending++;
	pthread_mutex_unlock(&g->lock);
	pl_err_t err = pl_producer_send(p, topic, key, key_len, value, value_len, headers,
	                                header_count, group_done, gs);
	if (err != PL_OK) {
		pthread_mutex_lock(&g->lock);
		g->pending--;
		g->slots[slot].pending--;
		slot_fail(&g->slots[slot], err, NULL);
		pthread_mutex_unlock(&g->lock);
		pl_free(gs);
	}
	return err;
}

void pl_produce_group_fail(pl_produce_group_t *g, size_t slot, pl_err_t err, const char *reason)
{
	if (slot >= g->n)
		return;
	pthread_mutex_lock(&g->lock);
	slot_fail(&g->slots[slot], err, reason);
	pthread_mutex_unlock(&g->lock);
}

void pl_produce_group_wait(pl_produce_group_t *g, pl_producer_t *p, int timeout_ms)
{
	int64_t deadline = pl_now_ms() + timeout_ms;
	pthread_mutex_lock(&g->lock);
	while (g->pending > 0 && pl_now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->cond, &g->lock, &ts);
	}
	if (g->pending > 0) {
		for (size_t i = 0; i < g->n; i++)
			if (g->slots[i].pending > 0)
				slot_fail(&g->slots[i], PL_ERR_TIMEOUT,
				          "no delivery report in time");
		pthread_mutex_unlock(&g->lock);
		/* The completions still reference g: wait for them (librdkafka always reports), so
		 * the memory is never used after free. */
		rd_kafka_flush(p->rk, -1);
		pthread_mutex_lock(&g->lock);
		while (g->pending > 0)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
}

pl_err_t pl_produce_group_result(const pl_produce_group_t *g, size_t slot, const char **reason)
{
	if (slot >= g->n)
		return PL_ERR_INVALID;
	if (reason)
		*reason = g->slots[slot].reason;
	return g->slots[slot].err;
}

void pl_produce_group_destroy(pl_produce_group_t *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	pl_free(g);
}

pl_err_t pl_producer_send_sync(pl_producer_t *p, const char *topic, const void *key, size_t key_len,
                               const void *value, size_t value_len, const pl_header_t *headers,
                               size_t header_count, int timeout_ms, char *errstr,
                               size_t errstr_size)
{
	pl_produce_group_t *g = pl_produce_group_new(1);
	pl_err_t err = pl_produce_group_send(g, p, 0, topic, key, key_len, value, value_len,
	                                     headers, header_count);
	const char *reason = "";
	if (err == PL_OK)
		pl_produce_group_wait(g, p, timeout_ms);
	err = pl_produce_group_result(g, 0, &reason);
	if (err != PL_OK)
		snprintf(errstr, errstr_size, "produce to %s: %s", topic, reason);
	pl_produce_group_destroy(g);
	return err;
}

pl_err_t pl_producer_high_watermark(pl_producer_t *producer, const char *topic, int32_t partition,
                                    int timeout_ms, int64_t *high, char *errstr, size_t errstr_size)
{
	int64_t low = 0;
	rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(producer->rk, topic, partition,
	                                                           &low, high, timeout_ms);
	if (!err)
		return PL_OK;
	snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, (int)partition,
	         rd_kafka_err2str(err));
	return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? PL_ERR_TIMEOUT : PL_ERR_TRANSIENT;
}

bool pl_consumer_wake_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                            int64_t next_offset)
{
	int64_t lo, hi;
	if (next_offset < 0 || rd_kafka_get_watermark_offsets(rk, topic, partition, &lo, &hi) ||
	    hi <= next_offset)
		return false;
	/* any request to the partition's broker wakes its thread; the answer is not needed */
	rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 1000);
	return true;
}

bool pl_producer_ready(pl_producer_t *p, char *reason, size_t reason_size)
{
	pthread_mutex_lock(&p->ready_lock);
	int64_t now = pl_now_ms();
	if (now - p->ready_checked_ms > 2000) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, 1000);
		p->ready_ok = err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
		snprintf(p->ready_reason, sizeof(p->ready_reason), "kafka: %s",
		         err ? rd_kafka_err2str(err) : "no broker known");
		if (md)
			rd_kafka_metadata_destroy(md);
		p->ready_checked_ms = now;
	}
	bool ok = p->ready_ok;
	if (!ok && reason)
		snprintf(reason, reason_size, "%s", p->ready_reason);
	pthread_mutex_unlock(&p->ready_lock);
	return ok;
}

int pl_producer_outq_len(pl_producer_t *p)
{
	return rd_kafka_outq_len(p->rk);
}

const char *pl_record_header(const pl_record_t *r, const char *name, char *buf, size_t buf_size)
{
	for (size_t i = 0; i < r->header_count; i++) {
		if (strcmp(r->headers[i].name, name) != 0)
			continue;
		size_t n = r->headers[i].len < buf_size - 1 ? r->headers[i].len : buf_size - 1;
		if (n)
			memcpy(buf, r->headers[i].value, n);
		buf[n] = '\0';
		return buf;
	}
	return NULL;
}
