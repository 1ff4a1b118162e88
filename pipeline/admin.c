/* admin.c — Kafka administration over librdkafka's Admin API and a consumer handle, and the
 * explicit-commit group cursor (admin.h).
 * Owns: the admin's consumer handle (used for Admin requests, watermarks, offsets-for-times and
 * one-record timestamp reads; never subscribed, never commits) and, per cursor, a subscribed
 * consumer with its start/end offsets and committed metadata (in admin_cursor.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "kafka_int.h"
#include "mem.h"

struct pl_admin {
	rd_kafka_t *rk;
	int timeout_ms;
	char brokers[256];
};

static void unreachable(const pl_admin_t *a, rd_kafka_resp_err_t err, char *errstr, size_t size)
{
	snprintf(errstr, size, "cannot reach Kafka at %s: %s", a->brokers, rd_kafka_err2str(err));
}

typedef void (*rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque);

static rd_kafka_t *consumer_new(const pl_cfg_t *cfg, const char *const *props,
                                rebalance_fn rebalance, void *opaque, char *errstr,
                                size_t errstr_size)
{
	rd_kafka_conf_t *conf = pl_kafka_conf_new(cfg, props, errstr, errstr_size);
	if (!conf)
		return NULL;
	if (rebalance)
		rd_kafka_conf_set_rebalance_cb(conf, rebalance);
	rd_kafka_conf_set_opaque(conf, opaque);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

pl_err_t pl_admin_new(const pl_cfg_t *cfg, int timeout_ms, pl_admin_t **out, char *errstr,
                      size_t errstr_size)
{
	*out = NULL;
	pl_admin_t *a = pl_calloc(1, sizeof(*a));
	a->timeout_ms = timeout_ms;
	snprintf(a->brokers, sizeof(a->brokers), "%s", pl_cfg_str(cfg, "DP_KAFKA_BROKERS"));
	const char *props[] = {"group.id",  "dronepipe-admin",      "enable.auto.commit",
	                       "false",     "enable.partition.eof", "true",
	                       "client.id", "dronepipe-admin",      NULL};
	a->rk = consumer_new(cfg, props, NULL, NULL, errstr, errstr_size);
	if (!a->rk) {
		pl_free(a);
		return PL_ERR_CONFIG;
	}
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(a->rk, 0, NULL, &md, timeout_ms);
	if (err) {
		unreachable(a, err, errstr, errstr_size);
		pl_admin_destroy(a);
		return PL_ERR_TRANSIENT;
	}
	rd_kafka_metadata_destroy(md);
	*out = a;
	return PL_OK;
}

void pl_admin_destroy(pl_admin_t *a)
{
	if (!a)
		return;
	rd_kafka_destroy(a->rk);
	pl_free(a);
}

/* ---- Admin request plumbing ---- */

static rd_kafka_AdminOptions_t *options(pl_admin_t *a)
{
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(a->rk, RD_KAFKA_ADMIN_OP_ANY);
	rd_kafka_AdminOptions_set_request_timeout(o, a->timeout_ms, NULL, 0);
	return o;
}

/* Waits for the result event of one request on q; NULL + errstr on timeout or request error. */
static rd_kafka_event_t *wait_result(pl_admin_t *a, rd_kafka_queue_t *q, const char *what,
                                     pl_err_t *rc, char *errstr, size_t errstr_size)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, a->timeout_ms + 2000);
	if (!ev) {
		snprintf(errstr, errstr_size, "%s: no answer from Kafka at %s in %d ms", what,
		         a->brokers, a->timeout_ms);
		*rc = PL_ERR_TIMEOUT;
		return NULL;
	}
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
	if (err) {
		if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT)
			unreachable(a, err, errstr, errstr_size);
		else
			snprintf(errstr, errstr_size, "%s: %s", what,
			         rd_kafka_event_error_string(ev));
		*rc = pl_kafka_err(err);
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	*rc = PL_OK;
	return ev;
}

/* ---- topics ---- */

static int topic_cmp(const void *x, const void *y)
{
	return strcmp(((const pl_admin_topic_t *)x)->name, ((const pl_admin_topic_t *)y)->name);
}

pl_err_t pl_admin_topics(pl_admin_t *a, pl_admin_topic_t **topics, size_t *count, char *errstr,
                         size_t errstr_size)
{
	*topics = NULL;
	*count = 0;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(a->rk, 1, NULL, &md, a->timeout_ms);
	if (err) {
		unreachable(a, err, errstr, errstr_size);
		return PL_ERR_TRANSIENT;
	}
	pl_admin_topic_t *t = pl_calloc((size_t)md->topic_cnt + 1, sizeof(*t));
	size_t n = 0;
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strncmp(md->topics[i].topic, "__", 2) == 0 || md->topics[i].err)
			continue;
		t[n].name = pl_strdup(md->topics[i].topic);
		t[n].partition_count = md->topics[i].partition_cnt;
		n++;
	}
	rd_kafka_metadata_destroy(md);
	qsort(t, n, sizeof(*t), topic_cmp);
	*topics = t;
	*count = n;
	return PL_OK;
}

void pl_admin_topics_free(pl_admin_topic_t *topics, size_t count)
{
	for (size_t i = 0; topics && i < count; i++)
		pl_free(topics[i].name);
	pl_free(topics);
}

pl_err_t pl_admin_partition_count(pl_admin_t *a, const char *topic, int *count, char *errstr,
                                  size_t errstr_size)
{
	*count = 0;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(a->rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(a->rk, 0, rkt, &md, a->timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		unreachable(a, err, errstr, errstr_size);
		return PL_ERR_TRANSIENT;
	}
	pl_err_t rc = PL_OK;
	if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
		rc = PL_ERR_NOT_FOUND;
	} else {
		*count = md->topics[0].partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

pl_err_t pl_admin_create_topic(pl_admin_t *a, const char *topic, int partitions, char *errstr,
                               size_t errstr_size)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof(err));
	if (!nt) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic, err);
		return PL_ERR_INVALID;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
	rd_kafka_AdminOptions_t *o = options(a);
	rd_kafka_CreateTopics(a->rk, &nt, 1, o, q);
	pl_err_t rc;
	rd_kafka_event_t *ev = wait_result(a, q, "create topic", &rc, errstr, errstr_size);
	if (ev) {
		size_t n = 0;
		const rd_kafka_topic_result_t **res =
		    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		rd_kafka_resp_err_t terr = n ? rd_kafka_topic_result_error(res[0]) : 0;
		if (terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			snprintf(errstr, errstr_size, "create topic %s: %s", topic,
			         rd_kafka_topic_result_error_string(res[0]));
			rc = pl_kafka_err(terr);
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	/* The topic is usable once its metadata says so. */
	int64_t deadline = pl_now_ms() + a->timeout_ms;
	int count = 0;
	while (rc == PL_OK &&
	       pl_admin_partition_count(a, topic, &count, errstr, errstr_size) != PL_OK) {
		if (pl_now_ms() > deadline) {
			rc = PL_ERR_TIMEOUT;
			break;
		}
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	return rc;
}

pl_err_t pl_admin_watermarks(pl_admin_t *a, const char *topic, int32_t partition, int64_t *low,
                             int64_t *high, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err =
	    rd_kafka_query_watermark_offsets(a->rk, topic, partition, low, high, a->timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "offsets of %s [%d] at %s: %s", topic, partition,
		         a->brokers, rd_kafka_err2str(err));
		return pl_kafka_err(err);
	}
	return PL_OK;
}

pl_err_t pl_admin_offsets_for_time(pl_admin_t *a, const char *topic, int count, int64_t time_ms,
                                   int64_t *offsets, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(count);
	for (int p = 0; p < count; p++)
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = time_ms;
	rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(a->rk, l, a->timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "offsets of %s for a time: %s", topic,
		         rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(l);
		return pl_kafka_err(err);
	}
	for (int p = 0; p < count; p++)
		offsets[p] = -1;
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].partition >= 0 && l->elems[i].partition < count)
			offsets[l->elems[i].partition] =
			    l->elems[i].err || l->elems[i].offset < 0 ? -1 : l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	return PL_OK;
}

pl_err_t pl_admin_record_timestamps(pl_admin_t *a, const char *topic, const int32_t *partitions,
                                    const int64_t *offsets, size_t count, int64_t *timestamps,
                                    char *errstr, size_t errstr_size)
{
	if (count == 0)
		return PL_OK;
	bool *done = pl_calloc(count, sizeof(bool));
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)count);
	for (size_t i = 0; i < count; i++) {
		timestamps[i] = -1;
		rd_kafka_topic_partition_list_add(l, topic, partitions[i])->offset = offsets[i];
	}
	rd_kafka_resp_err_t err = rd_kafka_assign(a->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	pl_err_t rc = PL_OK;
	if (err) {
		snprintf(errstr, errstr_size, "read %s: %s", topic, rd_kafka_err2str(err));
		rc = pl_kafka_err(err);
		goto out;
	}
	size_t left = count;
	int64_t deadline = pl_now_ms() + a->timeout_ms;
	while (left > 0 && pl_now_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(a->rk, 100);
		if (!m)
			continue;
		for (size_t i = 0; i < count; i++) {
			if (done[i] || partitions[i] != m->partition)
				continue;
			if (!m->err && m->offset >= offsets[i])
				timestamps[i] = rd_kafka_message_timestamp(m, NULL);
			if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				done[i] = true;
				left--;
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_assign(a->rk, NULL);
out:
	pl_free(done);
	return rc;
}

/* ---- consumer groups ---- */

static int str_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

pl_err_t pl_admin_group_ids(pl_admin_t *a, char ***groups, size_t *count, char *errstr,
                            size_t errstr_size)
{
	*groups = NULL;
	*count = 0;
	rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
	rd_kafka_AdminOptions_t *o = options(a);
	rd_kafka_ListConsumerGroups(a->rk, o, q);
	pl_err_t rc;
	rd_kafka_event_t *ev = wait_result(a, q, "list consumer groups", &rc, errstr, errstr_size);
	if (ev) {
		size_t n = 0;
		const rd_kafka_ConsumerGroupListing_t **valid =
		    rd_kafka_ListConsumerGroups_result_valid(
		        rd_kafka_event_ListConsumerGroups_result(ev), &n);
		char **ids = pl_calloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			ids[i] = pl_strdup(rd_kafka_ConsumerGroupListing_group_id(valid[i]));
		qsort(ids, n, sizeof(char *), str_cmp);
		*groups = ids;
		*count = n;
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	return rc;
}

void pl_admin_group_ids_free(char **groups, size_t count)
{
	for (size_t i = 0; groups && i < count; i++)
		pl_free(groups[i]);
	pl_free(groups);
}

pl_err_t pl_admin_group_describe(pl_admin_t *a, const char *group, pl_admin_group_t *out,
                                 char *errstr, size_t errstr_size)
{
	memset(out, 0, sizeof(*out));
	rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
	rd_kafka_AdminOptions_t *o = options(a);
	rd_kafka_DescribeConsumerGroups(a->rk, &group, 1, o, q);
	pl_err_t rc;
	rd_kafka_event_t *ev =
	    wait_result(a, q, "describe consumer group", &rc, errstr, errstr_size);
	if (ev) {
		size_t n = 0;
		const rd_kafka_ConsumerGroupDescription_t **d =
		    rd_kafka_DescribeConsumerGroups_result_groups(
		        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
		const rd_kafka_error_t *gerr =
		    n ? rd_kafka_ConsumerGroupDescription_error(d[0]) : NULL;
		if (n == 0 || gerr) {
			snprintf(errstr, errstr_size, "describe group %s: %s", group,
			         gerr ? rd_kafka_error_string(gerr) : "no answer");
			rc = gerr ? pl_kafka_err(rd_kafka_error_code(gerr)) : PL_ERR_NOT_FOUND;
		} else {
			out->group_id = pl_strdup(group);
			out->state = pl_strdup(rd_kafka_consumer_group_state_name(
			    rd_kafka_ConsumerGroupDescription_state(d[0])));
			out->simple =
			    rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d[0]);
			out->member_count = rd_kafka_ConsumerGroupDescription_member_count(d[0]);
			out->members = pl_calloc(out->member_count + 1, sizeof(pl_admin_member_t));
			for (size_t i = 0; i < out->member_count; i++) {
				const rd_kafka_MemberDescription_t *m =
				    rd_kafka_ConsumerGroupDescription_member(d[0], i);
				const char *cid = rd_kafka_MemberDescription_client_id(m);
				const char *mid = rd_kafka_MemberDescription_consumer_id(m);
				const char *host = rd_kafka_MemberDescription_host(m);
				out->members[i].client_id = pl_strdup(cid ? cid : "");
				out->members[i].member_id = pl_strdup(mid ? mid : "");
				out->members[i].host = pl_strdup(host ? host : "");
			}
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	return rc;
}

void pl_admin_group_clear(pl_admin_group_t *g)
{
	if (!g)
		return;
	for (size_t i = 0; g->members && i < g->member_count; i++) {
		pl_free(g->members[i].member_id);
		pl_free(g->members[i].client_id);
		pl_free(g->members[i].host);
	}
	pl_free(g->members);
	pl_free(g->group_id);
	pl_free(g->state);
	memset(g, 0, sizeof(*g));
}

pl_err_t pl_admin_group_offsets(pl_admin_t *a, const char *group, const char *topic,
                                int partition_count, pl_admin_offset_t **offsets, size_t *count,
                                char *errstr, size_t errstr_size)
{
	*offsets = NULL;
	*count = 0;
	rd_kafka_topic_partition_list_t *want = NULL;
	if (topic) {
		want = rd_kafka_topic_partition_list_new(partition_count);
		for (int p = 0; p < partition_count; p++)
			rd_kafka_topic_partition_list_add(want, topic, p);
	}
	rd_kafka_ListConsumerGroupOffsets_t *req =
	    rd_kafka_ListConsumerGroupOffsets_new(group, want);
	rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
	rd_kafka_AdminOptions_t *o = options(a);
	rd_kafka_ListConsumerGroupOffsets(a->rk, &req, 1, o, q);
	pl_err_t rc;
	rd_kafka_event_t *ev = wait_result(a, q, "list group offsets", &rc, errstr, errstr_size);
	if (ev) {
		size_t n = 0;
		const rd_kafka_group_result_t **g = rd_kafka_ListConsumerGroupOffsets_result_groups(
		    rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
		const rd_kafka_error_t *gerr = n ? rd_kafka_group_result_error(g[0]) : NULL;
		const rd_kafka_topic_partition_list_t *l =
		    n ? rd_kafka_group_result_partitions(g[0]) : NULL;
		if (gerr || !l) {
			snprintf(errstr, errstr_size, "offsets of group %s: %s", group,
			         gerr ? rd_kafka_error_string(gerr) : "no answer");
			rc = gerr ? pl_kafka_err(rd_kafka_error_code(gerr)) : PL_ERR_NOT_FOUND;
		} else {
			size_t cap = topic ? (size_t)partition_count : (size_t)l->cnt;
			pl_admin_offset_t *res = pl_calloc(cap + 1, sizeof(*res));
			size_t k = 0;
			if (topic) {
				for (int p = 0; p < partition_count; p++)
					res[p] = (pl_admin_offset_t){pl_strdup(topic), p, -1,
					                             pl_strdup("")};
				k = cap;
			}
			for (int i = 0; i < l->cnt; i++) {
				const rd_kafka_topic_partition_t *e = &l->elems[i];
				pl_admin_offset_t *r = NULL;
				if (topic && e->partition >= 0 && e->partition < partition_count &&
				    strcmp(e->topic, topic) == 0)
					r = &res[e->partition];
				else if (!topic)
					r = &res[k++];
				if (!r)
					continue;
				if (!topic) {
					r->topic = pl_strdup(e->topic);
					r->partition = e->partition;
				} else {
					pl_free(r->metadata);
				}
				r->offset = e->err || e->offset < 0 ? -1 : e->offset;
				r->metadata = e->metadata
				                  ? pl_strndup(e->metadata, e->metadata_size)
				                  : pl_strdup("");
			}
			*offsets = res;
			*count = k;
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	rd_kafka_ListConsumerGroupOffsets_destroy(req);
	if (want)
		rd_kafka_topic_partition_list_destroy(want);
	return rc;
}

void pl_admin_offsets_free(pl_admin_offset_t *offsets, size_t count)
{
	for (size_t i = 0; offsets && i < count; i++) {
		pl_free(offsets[i].topic);
		pl_free(offsets[i].metadata);
	}
	pl_free(offsets);
}

pl_err_t pl_admin_group_reset(pl_admin_t *a, const char *group, const char *topic,
                              int partition_count, const int64_t *offsets, char *errstr,
                              size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partition_count);
	for (int p = 0; p < partition_count; p++)
		if (offsets[p] >= 0)
			rd_kafka_topic_partition_list_add(l, topic, p)->offset = offsets[p];
	if (l->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(l);
		return PL_OK;
	}
	rd_kafka_AlterConsumerGroupOffsets_t *req =
	    rd_kafka_AlterConsumerGroupOffsets_new(group, l);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
	rd_kafka_AdminOptions_t *o = options(a);
	rd_kafka_AlterConsumerGroupOffsets(a->rk, &req, 1, o, q);
	pl_err_t rc;
	rd_kafka_event_t *ev = wait_result(a, q, "reset group offsets", &rc, errstr, errstr_size);
	if (ev) {
		size_t n = 0;
		const rd_kafka_group_result_t **g =
		    rd_kafka_AlterConsumerGroupOffsets_result_groups(
		        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
		const rd_kafka_error_t *gerr = n ? rd_kafka_group_result_error(g[0]) : NULL;
		const rd_kafka_topic_partition_list_t *res =
		    n ? rd_kafka_group_result_partitions(g[0]) : NULL;
		rd_kafka_resp_err_t perr = 0;
		for (int i = 0; res && i < res->cnt && !perr; i++)
			perr = res->elems[i].err;
		rd_kafka_resp_err_t err = gerr ? rd_kafka_error_code(gerr) : perr;
		if (err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
		    err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
		    err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION) {
			snprintf(errstr, errstr_size,
			         "group %s has active members: the broker refused the reset (%s)",
			         group, rd_kafka_err2str(err));
			rc = PL_ERR_REJECTED;
		} else if (err) {
			snprintf(errstr, errstr_size, "reset group %s: %s", group,
			         rd_kafka_err2str(err));
			rc = pl_kafka_err(err);
		}
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_queue_destroy(q);
	rd_kafka_AlterConsumerGroupOffsets_destroy(req);
	return rc;
}
