/* reader.c — direct partition reader over a librdkafka consumer with manual assignment.
 * Owns: the consumer handle, the current message, per-partition end offsets. */
#include <stdio.h>
#include <string.h>

#include "kafka_int.h"
#include "mem.h"
#include "reader.h"

struct pl_reader {
	rd_kafka_t *rk;
	char *topic;
	int nparts;
	int64_t *end; /* end offset per partition at start */
	int64_t *pos; /* next offset per partition (from records seen) */
	bool drained; /* the last poll found the queue empty */
	bool stop_at_end;
	int64_t remaining;
	rd_kafka_message_t *msg;
};

void pl_reader_destroy(pl_reader_t *r)
{
	if (!r)
		return;
	if (r->msg)
		rd_kafka_message_destroy(r->msg);
	if (r->rk) {
		rd_kafka_consumer_close(r->rk);
		rd_kafka_destroy(r->rk);
	}
	pl_free(r->end);
	pl_free(r->pos);
	pl_free(r->topic);
	pl_free(r);
}

pl_err_t pl_reader_new(const pl_cfg_t *cfg, const char *topic, const pl_reader_opts_t *opts,
                       int timeout_ms, pl_reader_t **out, char *errstr, size_t errstr_size)
{
	pl_err_t rc = PL_ERR_TRANSIENT;
	*out = NULL;
	pl_reader_t *r = pl_calloc(1, sizeof(*r));
	r->topic = pl_strdup(topic);
	r->stop_at_end = opts->stop_at_end;
	char group[64];
	snprintf(group, sizeof(group), "dronepipe-reader-%lld", (long long)pl_now_ms());
	/* A reader to the end must not wait on the broker for records that never come: a compacted
	 * changelog can end in offsets without a record (removed by the cleaner), and each fetch
	 * there was held the default 500 ms, a restore of 6 partitions up to 1 s longer. Another
	 * reader keeps the default (NULL ends the list before it). */
	const char *wait_max = opts->stop_at_end ? "fetch.wait.max.ms" : NULL;
	const char *props[] = {"group.id",
	                       group,
	                       "enable.auto.commit",
	                       "false",
	                       "enable.partition.eof",
	                       "false",
	                       "queued.max.messages.kbytes", /* per partition, as the stage's */
	                       "2048",
	                       wait_max,
	                       "10",
	                       NULL};
	rd_kafka_conf_t *conf = pl_kafka_conf_new(cfg, props, errstr, errstr_size);
	if (!conf) {
		rc = PL_ERR_CONFIG;
		goto fail;
	}
	r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!r->rk) {
		rd_kafka_conf_destroy(conf);
		rc = PL_ERR_CONFIG;
		goto fail;
	}
	rd_kafka_poll_set_consumer(r->rk);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s",
		         pl_cfg_str(cfg, "DP_KAFKA_BROKERS"), rd_kafka_err2str(err));
		goto fail;
	}
	if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
		rd_kafka_metadata_destroy(md);
		rc = PL_ERR_NOT_FOUND;
		goto fail;
	}
	r->nparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	r->end = pl_calloc((size_t)r->nparts, sizeof(int64_t));
	r->pos = pl_calloc((size_t)r->nparts, sizeof(int64_t));
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
	if (opts->one_partition && (opts->partition < 0 || opts->partition >= r->nparts)) {
		snprintf(errstr, errstr_size, "topic %s has no partition %d", topic,
		         opts->partition);
		rd_kafka_topic_partition_list_destroy(l);
		rc = PL_ERR_NOT_FOUND;
		goto fail;
	}
	for (int p = 0; p < r->nparts; p++) {
		int64_t lo = 0, hi = 0;
		if (opts->one_partition && p != opts->partition)
			continue;
		err = rd_kafka_query_watermark_offsets(r->rk, topic, p, &lo, &hi, timeout_ms);
		if (err) {
			snprintf(errstr, errstr_size, "offsets of %s [%d]: %s", topic, p,
			         rd_kafka_err2str(err));
			rd_kafka_topic_partition_list_destroy(l);
			goto fail;
		}
		r->end[p] = hi;
		int64_t start = lo;
		switch (opts->start) {
		case PL_READER_BEGINNING:
			start = lo;
			break;
		case PL_READER_END:
			start = hi;
			break;
		case PL_READER_OFFSET:
			start = p == opts->start_partition ? opts->start_offset : lo;
			if (start < lo)
				start = lo;
			break;
		case PL_READER_TIME:
			start = opts->start_time_ms;
			break;
		}
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = start;
	}
	if (opts->start == PL_READER_TIME) {
		err = rd_kafka_offsets_for_times(r->rk, l, timeout_ms);
		if (err) {
			snprintf(errstr, errstr_size, "offsets for time: %s",
			         rd_kafka_err2str(err));
			rd_kafka_topic_partition_list_destroy(l);
			goto fail;
		}
		for (int i = 0; i < l->cnt; i++)
			if (l->elems[i].offset < 0) /* no record at or after the time */
				l->elems[i].offset = r->end[l->elems[i].partition];
	}
	for (int i = 0; i < l->cnt; i++) {
		r->pos[l->elems[i].partition] = l->elems[i].offset;
		if (r->end[l->elems[i].partition] > l->elems[i].offset)
			r->remaining += r->end[l->elems[i].partition] - l->elems[i].offset;
	}
	err = rd_kafka_assign(r->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err) {
		snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
		goto fail;
	}
	*out = r;
	return PL_OK;
fail:
	pl_reader_destroy(r);
	return rc;
}

static bool all_done(const pl_reader_t *r)
{
	for (int p = 0; p < r->nparts; p++)
		if (r->pos[p] < r->end[p])
			return false;
	return true;
}

pl_err_t pl_reader_next(pl_reader_t *r, pl_record_t *rec, int timeout_ms)
{
	if (r->msg) {
		rd_kafka_message_destroy(r->msg);
		r->msg = NULL;
	}
	int64_t deadline = pl_now_ms() + timeout_ms;
	for (;;) {
		if (r->stop_at_end && all_done(r))
			return PL_ERR_NOT_FOUND;
		int64_t left = deadline - pl_now_ms();
		if (left < 0)
			return PL_ERR_TIMEOUT;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 0);
		if (!m && !r->drained)
			for (int p = 0; p < r->nparts; p++)
				if (pl_consumer_wake_fetch(r->rk, r->topic, p, r->pos[p]))
					break;
		if (!m)
			m = rd_kafka_consumer_poll(r->rk, left > 100 ? 100 : (int)left);
		r->drained = !m;
		if (!m)
			continue;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->partition >= 0 && m->partition < r->nparts)
			r->pos[m->partition] = m->offset + 1;
		r->msg = m;
		pl_kafka_record_fill(rec, m);
		return PL_OK;
	}
}

int pl_reader_partitions(const pl_reader_t *r)
{
	return r->nparts;
}

int64_t pl_reader_remaining_at_start(const pl_reader_t *r)
{
	return r->remaining;
}
