/* admin_cursor.c — the explicit-commit group cursor of admin.h (pl_admin_cursor_*): a subscribed
 * consumer that reads a topic from the group's committed offsets up to the end offsets it saw
 * once it owned every partition, and commits synchronously with metadata. A peeking cursor reads
 * the same records from the same committed offsets without joining the group (assigned, not
 * subscribed) and never commits: it changes nothing a real run would see.
 * Owns: its consumer handle, the current and the stashed message, per-partition start/end
 * offsets and the committed metadata read at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "kafka_int.h"
#include "mem.h"

struct pl_admin_cursor {
	rd_kafka_t *rk;
	char *topic;
	int nparts;
	int assigned;       /* partitions of topic in the current assignment */
	bool revoked;       /* partitions were taken away after the first full assignment */
	bool peek;          /* assigned without joining; commit refuses */
	int64_t *end;       /* end offset per partition once assigned */
	int64_t *pos;       /* next offset per partition */
	int64_t *committed; /* at start, -1 = none */
	char **metadata;    /* at start, "" = none */
	int64_t remaining;
	rd_kafka_message_t *msg;   /* returned by the last next() */
	rd_kafka_message_t *stash; /* arrived while waiting for the assignment */
};

static void cursor_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	pl_admin_cursor_t *c = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		c->assigned = parts->cnt;
	} else {
		if (c->assigned == c->nparts && c->end)
			c->revoked = true;
		c->assigned = 0;
		rd_kafka_assign(rk, NULL);
	}
}

void pl_admin_cursor_destroy(pl_admin_cursor_t *c)
{
	if (!c)
		return;
	if (c->msg)
		rd_kafka_message_destroy(c->msg);
	if (c->stash)
		rd_kafka_message_destroy(c->stash);
	if (c->rk) {
		rd_kafka_consumer_close(c->rk);
		rd_kafka_destroy(c->rk);
	}
	for (int p = 0; c->metadata && p < c->nparts; p++)
		pl_free(c->metadata[p]);
	pl_free(c->metadata);
	pl_free(c->committed);
	pl_free(c->end);
	pl_free(c->pos);
	pl_free(c->topic);
	pl_free(c);
}

static pl_err_t cursor_open(const pl_cfg_t *cfg, const char *group, const char *topic,
                            int timeout_ms, bool peek, pl_admin_cursor_t **out, char *errstr,
                            size_t errstr_size)
{
	*out = NULL;
	pl_err_t rc = PL_ERR_TRANSIENT;
	pl_admin_cursor_t *c = pl_calloc(1, sizeof(*c));
	c->topic = pl_strdup(topic);
	c->peek = peek;
	/* A run killed mid-way holds its partitions until its session times out: keep that short
	 * (the broker's minimum by default) so a re-run can take over within seconds. */
	const char *props[] = {"group.id",
	                       group,
	                       "client.id",
	                       group,
	                       "enable.auto.commit",
	                       "false",
	                       "auto.offset.reset",
	                       "earliest",
	                       "enable.partition.eof",
	                       "false",
	                       "session.timeout.ms",
	                       "6000",
	                       "heartbeat.interval.ms",
	                       "1000",
	                       NULL};
	rd_kafka_conf_t *conf = pl_kafka_conf_new(cfg, props, errstr, errstr_size);
	if (!conf) {
		rc = PL_ERR_CONFIG;
		goto fail;
	}
	rd_kafka_conf_set_rebalance_cb(conf, cursor_rebalance);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!c->rk) {
		rd_kafka_conf_destroy(conf);
		rc = PL_ERR_CONFIG;
		goto fail;
	}
	rd_kafka_poll_set_consumer(c->rk);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(c->rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s",
		         pl_cfg_str(cfg, "DP_KAFKA_BROKERS"), rd_kafka_err2str(err));
		goto fail;
	}
	c->nparts = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
	rd_kafka_metadata_destroy(md);
	if (c->nparts == 0) {
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
		rc = PL_ERR_NOT_FOUND;
		goto fail;
	}
	if (!peek) {
		rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
		err = rd_kafka_subscribe(c->rk, sub);
		rd_kafka_topic_partition_list_destroy(sub);
		if (err) {
			snprintf(errstr, errstr_size, "subscribe to %s: %s", topic,
			         rd_kafka_err2str(err));
			goto fail;
		}
	}
	int64_t deadline = pl_now_ms() + timeout_ms;
	while (!peek && c->assigned < c->nparts) {
		if (pl_now_ms() > deadline) {
			snprintf(errstr, errstr_size,
			         "group %s did not get all %d partitions of %s in %d ms (another "
			         "member of the group holds %d)",
			         group, c->nparts, topic, timeout_ms, c->nparts - c->assigned);
			rc = PL_ERR_TIMEOUT;
			goto fail;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
		if (m && !m->err && !c->stash)
			c->stash = m;
		else if (m)
			rd_kafka_message_destroy(m);
	}
	c->committed = pl_calloc((size_t)c->nparts, sizeof(int64_t));
	c->metadata = pl_calloc((size_t)c->nparts, sizeof(char *));
	c->end = pl_calloc((size_t)c->nparts, sizeof(int64_t));
	c->pos = pl_calloc((size_t)c->nparts, sizeof(int64_t));
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts);
	for (int p = 0; p < c->nparts; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	err = rd_kafka_committed(c->rk, l, timeout_ms);
	for (int i = 0; !err && i < l->cnt; i++) {
		const rd_kafka_topic_partition_t *e = &l->elems[i];
		c->committed[e->partition] = e->err || e->offset < 0 ? -1 : e->offset;
		c->metadata[e->partition] =
		    e->metadata ? pl_strndup(e->metadata, e->metadata_size) : pl_strdup("");
	}
	rd_kafka_topic_partition_list_destroy(l);
	if (err) {
		snprintf(errstr, errstr_size, "committed offsets of group %s: %s", group,
		         rd_kafka_err2str(err));
		rc = pl_kafka_err(err);
		goto fail;
	}
	for (int p = 0; p < c->nparts; p++) {
		int64_t lo = 0, hi = 0;
		err = rd_kafka_query_watermark_offsets(c->rk, topic, p, &lo, &hi, timeout_ms);
		if (err) {
			snprintf(errstr, errstr_size, "offsets of %s [%d]: %s", topic, p,
			         rd_kafka_err2str(err));
			rc = pl_kafka_err(err);
			goto fail;
		}
		c->end[p] = hi;
		c->pos[p] = c->committed[p] >= lo ? c->committed[p] : lo;
		if (hi > c->pos[p])
			c->remaining += hi - c->pos[p];
	}
	if (c->stash && c->stash->offset < c->pos[c->stash->partition]) {
		rd_kafka_message_destroy(c->stash);
		c->stash = NULL;
	}
	if (peek) {
		rd_kafka_topic_partition_list_t *a = rd_kafka_topic_partition_list_new(c->nparts);
		for (int p = 0; p < c->nparts; p++)
			rd_kafka_topic_partition_list_add(a, topic, p)->offset = c->pos[p];
		err = rd_kafka_assign(c->rk, a);
		rd_kafka_topic_partition_list_destroy(a);
		if (err) {
			snprintf(errstr, errstr_size, "assign %s: %s", topic,
			         rd_kafka_err2str(err));
			rc = pl_kafka_err(err);
			goto fail;
		}
		c->assigned = c->nparts;
	}
	*out = c;
	return PL_OK;
fail:
	pl_admin_cursor_destroy(c);
	return rc;
}

pl_err_t pl_admin_cursor_new(const pl_cfg_t *cfg, const char *group, const char *topic,
                             int timeout_ms, pl_admin_cursor_t **out, char *errstr,
                             size_t errstr_size)
{
	return cursor_open(cfg, group, topic, timeout_ms, false, out, errstr, errstr_size);
}

pl_err_t pl_admin_cursor_peek(const pl_cfg_t *cfg, const char *group, const char *topic,
                              int timeout_ms, pl_admin_cursor_t **out, char *errstr,
                              size_t errstr_size)
{
	return cursor_open(cfg, group, topic, timeout_ms, true, out, errstr, errstr_size);
}

int pl_admin_cursor_partitions(const pl_admin_cursor_t *c)
{
	return c->nparts;
}

int64_t pl_admin_cursor_committed(const pl_admin_cursor_t *c, int32_t partition,
                                  const char **metadata)
{
	if (partition < 0 || partition >= c->nparts) {
		if (metadata)
			*metadata = "";
		return -1;
	}
	if (metadata)
		*metadata = c->metadata[partition];
	return c->committed[partition];
}

int64_t pl_admin_cursor_remaining(const pl_admin_cursor_t *c)
{
	return c->remaining;
}

pl_err_t pl_admin_cursor_next(pl_admin_cursor_t *c, pl_record_t *rec, int timeout_ms)
{
	if (c->msg) {
		rd_kafka_message_destroy(c->msg);
		c->msg = NULL;
	}
	int64_t deadline = pl_now_ms() + timeout_ms;
	for (;;) {
		if (c->revoked)
			return PL_ERR_FATAL;
		bool done = true;
		for (int p = 0; p < c->nparts && done; p++)
			done = c->pos[p] >= c->end[p];
		if (done)
			return PL_ERR_NOT_FOUND;
		rd_kafka_message_t *m = c->stash;
		c->stash = NULL;
		if (!m) {
			int64_t left = deadline - pl_now_ms();
			if (left < 0)
				return PL_ERR_TIMEOUT;
			m = rd_kafka_consumer_poll(c->rk, left > 100 ? 100 : (int)left);
		}
		if (!m)
			continue;
		/* Records past the end seen at start (e.g. the ones dead-lettered again while a
		 * redrive runs) are left for the next run. */
		if (m->err || m->partition < 0 || m->partition >= c->nparts ||
		    m->offset >= c->end[m->partition] || m->offset < c->pos[m->partition]) {
			rd_kafka_message_destroy(m);
			continue;
		}
		c->pos[m->partition] = m->offset + 1;
		c->msg = m;
		pl_kafka_record_fill(rec, m);
		return PL_OK;
	}
}

pl_err_t pl_admin_cursor_commit(pl_admin_cursor_t *c, const int32_t *partitions,
                                const int64_t *offsets, const char *const *metadata, size_t count,
                                char *errstr, size_t errstr_size)
{
	if (c->peek) {
		snprintf(errstr, errstr_size, "a peeking cursor on %s does not commit", c->topic);
		return PL_ERR_REJECTED;
	}
	if (c->revoked) {
		snprintf(errstr, errstr_size,
		         "another member joined the group: partitions of %s "
		         "were taken away",
		         c->topic);
		return PL_ERR_FATAL;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)count);
	for (size_t i = 0; i < count; i++) {
		rd_kafka_topic_partition_t *e =
		    rd_kafka_topic_partition_list_add(l, c->topic, partitions[i]);
		e->offset = offsets[i];
		if (metadata && metadata[i] && metadata[i][0]) {
			/* freed by librdkafka with the list: libc allocation, not pl_malloc */
			e->metadata = strdup(metadata[i]);
			e->metadata_size = strlen(metadata[i]);
		}
	}
	rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 0);
	for (int i = 0; !err && i < l->cnt; i++)
		err = l->elems[i].err;
	rd_kafka_topic_partition_list_destroy(l);
	if (!err)
		return PL_OK;
	snprintf(errstr, errstr_size, "commit to %s: %s", c->topic, rd_kafka_err2str(err));
	if (err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
	    err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
	    err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || c->revoked)
		return PL_ERR_FATAL;
	return pl_kafka_err(err);
}
