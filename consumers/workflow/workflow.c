/* workflow.c — the workflow stage around the pure saga (see workflow.h, saga.h and
 * STATE_MACHINE.md).
 *
 * Per input record: state = states[partition][deliveryId]; r = saga_apply(state, input); the
 * new state is produced through the stage, then, once it is acknowledged, the outputs and
 * re-sends (pl_stage_produce_after); the input's offset is stored only after all of them were
 * acknowledged (state written before outputs, and both before offsets, DESIGN.md).
 * All topics are co-partitioned by deliveryId, so input partition p's sagas live in changelog
 * partition p: assignment of p restores them by reading that changelog partition to its end.
 * Invariant: states[p] holds exactly the latest changelog value of every delivery of partition p
 * that this process restored or wrote, as its Avro encoding (the changelog record's bytes): a
 * saga is decoded only while an input or timer of its delivery is handled. A decoded SagaState
 * takes ~4x the memory of its encoding (jansson's tree of small allocations around the outbox
 * payloads). A finished saga is kept without its outbox once every input that may have touched
 * it is stored (durable.h): a repeat of one of them then has nothing left to re-send. The
 * compacted state is written to the changelog as well, so a restore or a replay reads it
 * compact, and the saga leaves states[p] for settled[p] (settled.h): its status and the hashes
 * of its seen eventIds, 88 bytes where its encoding took ~700, so the memory held per delivery
 * ever made is small. An input to a settled saga is applied to saga_settled_state: the same
 * answers (saga.h), and no state is written for it (its full state stays in the changelog).
 * A client's change (reschedule, cancel, confirmation) is applied only when its dp_principal
 * header (set by the ingress: "owner:<id>" or "admin"; absent while the API is open) names the
 * saga's owner or admin: the ingress cannot tell whose a delivery is, the saga can. */
#include <stdio.h>
#include <string.h>

#include "durable.h"
#include "log.h"
#include "mem.h"
#include "reader.h"
#include "saga.h"
#include "settled.h"
#include "workflow.h"

const pl_cfg_opt_t workflow_cfg[] = {
    {"DP_HTTP_PORT", PL_CFG_INT, "8084", 0, 65535, .help = "health and metrics port"},
    {"DP_WORKFLOW_ASSIGN_TIMEOUT_S", PL_CFG_INT, "300", 1, 86400,
     .help = "a delivery with no drone this long after the first attempt ends Failed"},
    {"DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS", PL_CFG_INT, "1000", 10, 3600000,
     .help = "delay before the second drone-assignment attempt (doubles per attempt)"},
    {"DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS", PL_CFG_INT, "30000", 10, 3600000,
     .help = "cap of the drone-assignment retry delay"},
    {"DP_DRONE_SPEED_MPS", PL_CFG_INT, "15", 1, 200, .help = "drone cruise speed used for ETAs"},
    {NULL},
};

const char *const workflow_topics[] = {SAGA_TOPIC_REQUESTS, SAGA_TOPIC_PACKAGE_EVENTS,
                                       SAGA_TOPIC_DRONE_EVENTS, NULL};

#define MAX_PARTITIONS 1024
/* Longest deliveryId a saga is kept for (bytes). The ingress makes UUIDs; a longer id from
 * another producer is dead-lettered rather than kept under a key the restore could not read
 * back whole. */
#define DELIVERY_ID_MAX 127

typedef struct wf {
	const pl_cfg_t *cfg;
	const pl_avro_registry_t *registry;
	pl_producer_t *producer;
	pl_area_t area; /* read-only after init; opts.area points here */
	saga_opts_t opts;
	json_t *states[MAX_PARTITIONS]; /* deliveryId -> encoded SagaState (a json string of its
	                                 * bytes); NULL = not restored */
	const pl_avro_schema_t *state_schema;
	json_t *timers[MAX_PARTITIONS];     /* deliveryId -> due ms, for sagas with a due timer */
	dur_t *durable[MAX_PARTITIONS];     /* finished sagas waiting to drop their outbox; NULL =
	                                     * not restored */
	settled_t *settled[MAX_PARTITIONS]; /* finished sagas without outbox (none of them is in
	                                     * states[p]); NULL = not restored */
	/* Requests partition p since its assignment (see catching_up): its end offset then (-1:
	 * unknown), the position reached (committed or handled), and until when a reply to an
	 * unknown saga may wait for it. */
	int64_t req_end[MAX_PARTITIONS], req_pos[MAX_PARTITIONS], req_wait_until[MAX_PARTITIONS];
	int64_t next_sweep_ms;
	pl_metric_family_t *m_outcomes, *m_sagas, *m_settled, *m_compacted;
} wf_t;

void *workflow_init(const pl_service_env_t *env, char *errstr, size_t errstr_size,
                    bool *config_error)
{
	for (size_t i = 0; saga_output_schemas[i]; i++) {
		if (!pl_avro_schema_get(env->registry, saga_output_schemas[i])) {
			snprintf(errstr, errstr_size, "schema %s is missing from the build",
			         saga_output_schemas[i]);
			return NULL;
		}
	}
	int64_t partitions = pl_cfg_int(env->cfg, "DP_PARTITIONS");
	if (partitions > MAX_PARTITIONS) {
		snprintf(errstr, errstr_size, "DP_PARTITIONS: at most %d for the workflow",
		         MAX_PARTITIONS);
		*config_error = true;
		return NULL;
	}
	wf_t *wf = pl_calloc(1, sizeof(*wf));
	wf->cfg = env->cfg;
	wf->registry = env->registry;
	wf->producer = env->producer;
	wf->state_schema = pl_avro_schema_get(env->registry, SAGA_STATE_SCHEMA);
	if (!wf->state_schema) {
		snprintf(errstr, errstr_size, "schema %s is missing from the build",
		         SAGA_STATE_SCHEMA);
		pl_free(wf);
		return NULL;
	}
	if (pl_area_from_cfg(env->cfg, &wf->area, errstr, errstr_size) != PL_OK) {
		*config_error = true;
		pl_free(wf);
		return NULL;
	}
	wf->opts = (saga_opts_t){
	    .assign_timeout_ms = pl_cfg_int(env->cfg, "DP_WORKFLOW_ASSIGN_TIMEOUT_S") * 1000,
	    .assign_backoff_min_ms = pl_cfg_int(env->cfg, "DP_WORKFLOW_ASSIGN_BACKOFF_MIN_MS"),
	    .assign_backoff_max_ms = pl_cfg_int(env->cfg, "DP_WORKFLOW_ASSIGN_BACKOFF_MAX_MS"),
	    .drone_speed_mps = (double)pl_cfg_int(env->cfg, "DP_DRONE_SPEED_MPS"),
	    .area = &wf->area,
	};
	pl_metrics_t *m = pl_metrics_default();
	wf->m_outcomes = pl_metrics_family(m, "dronepipe_workflow_saga_inputs_total",
	                                   "Saga inputs by type and outcome", PL_METRIC_COUNTER,
	                                   "input,outcome", NULL, 0);
	wf->m_sagas = pl_metrics_family(m, "dronepipe_workflow_sagas",
	                                "Sagas held in memory (restored or written)",
	                                PL_METRIC_GAUGE, "", NULL, 0);
	wf->m_settled = pl_metrics_family(
	    m, "dronepipe_workflow_sagas_settled",
	    "Sagas held as finished only (status and seen eventIds), of dronepipe_workflow_sagas",
	    PL_METRIC_GAUGE, "", NULL, 0);
	wf->m_compacted = pl_metrics_family(
	    m, "dronepipe_workflow_sagas_compacted_total",
	    "Finished sagas whose outbox was dropped from memory once their inputs were stored",
	    PL_METRIC_COUNTER, "", NULL, 0);
	return wf;
}

void workflow_fini(void *arg)
{
	wf_t *wf = arg;
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		json_decref(wf->states[p]);
		json_decref(wf->timers[p]);
		dur_destroy(wf->durable[p]);
		settled_destroy(wf->settled[p]);
	}
	pl_free(wf);
}

static void count_sagas(wf_t *wf)
{
	size_t n = 0, settled = 0;
	for (int p = 0; p < MAX_PARTITIONS; p++) {
		n += wf->states[p] ? json_object_size(wf->states[p]) : 0;
		settled += wf->settled[p] ? settled_size(wf->settled[p]) : 0;
	}
	pl_metric_set(pl_metric_get0(wf->m_sagas), (double)(n + settled));
	pl_metric_set(pl_metric_get0(wf->m_settled), (double)settled);
}

/* The cause whose outputs a state says are not all acknowledged (SagaState.unsentCause), or
 * NULL. */
static const char *unsent_cause(const json_t *state)
{
	return json_string_value(json_object_get(state, "unsentCause"));
}

/* Sets state's due timer in the index (or drops delivery_id's when it has none). */
static void set_timer(wf_t *wf, int32_t p, const char *delivery_id, const json_t *state)
{
	/* outputs to re-send: at once (the next timer sweep) */
	int64_t due = unsent_cause(state) ? pl_now_ms() : saga_next_due_ms(state, &wf->opts);
	if (due == SAGA_NEVER)
		json_object_del(wf->timers[p], delivery_id);
	else
		json_object_set_new(wf->timers[p], delivery_id, json_integer(due));
}

/* Keeps bytes (a SagaState's encoding, copied) as delivery_id's saga and state's due timer in the
 * index. */
static void keep(wf_t *wf, int32_t p, const char *delivery_id, const void *bytes, size_t len,
                 const json_t *state)
{
	json_object_set_new(wf->states[p], delivery_id, json_stringn_nocheck(bytes, len));
	set_timer(wf, p, delivery_id, state);
}

/* Records the state (encoded) in memory and its due timer in the index. */
static pl_err_t remember(wf_t *wf, int32_t p, const char *delivery_id, const json_t *state)
{
	void *buf = NULL;
	size_t len = 0;
	char err[256];
	pl_err_t e = pl_avro_encode(wf->state_schema, state, &buf, &len, err, sizeof(err));
	if (e == PL_OK)
		keep(wf, p, delivery_id, buf, len, state);
	else
		pl_log(PL_LOG_ERROR, "saga_state_unencodable",
		       PL_LOG_FIELDS(PL_LS("delivery_id", delivery_id)), "%s", err);
	pl_free(buf);
	return e;
}

/* The saga of delivery_id, decoded (caller decrefs), or NULL when none is known. PL_ERR_* when
 * the kept bytes do not decode (never expected: they were encoded or read with this registry). */
static pl_err_t recall(wf_t *wf, int32_t p, const char *delivery_id, json_t **state, char *err,
                       size_t err_size)
{
	json_t *bytes = json_object_get(wf->states[p], delivery_id);
	*state = NULL;
	if (!bytes)
		return PL_OK;
	return pl_avro_decode(wf->registry, json_string_value(bytes), json_string_length(bytes),
	                      state, NULL, err, err_size);
}

/* How long after an assignment a reply to an unknown saga may wait for the requests partition
 * to catch up (catching_up). */
#define REPLY_WAIT_MS 60000

/* Index of an input topic in workflow_topics (durable.h positions), -1 for another topic. */
static int topic_index(const char *topic)
{
	for (int t = 0; t < DUR_TOPICS && workflow_topics[t]; t++)
		if (strcmp(workflow_topics[t], topic) == 0)
			return t;
	return -1;
}

static bool is_finished(const json_t *state)
{
	return json_is_true(json_object_get(state, "finished"));
}

static void compact_written(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                            int64_t offset)
{
	(void)opaque, (void)offset;
	if (err != PL_OK) /* the full state stays the latest in the changelog: only larger */
		pl_log(PL_LOG_WARN, "compact_state_not_written",
		       PL_LOG_FIELDS(PL_LI("partition", partition), PL_LS("err", pl_err_str(err))),
		       "%s", reason ? reason : "");
}

/* Writes the saga of delivery_id as kept in memory (its encoding, just compacted) to the
 * changelog, not waiting: a restore (a restart, a replay) then reads it without its outbox too.
 * Finished sagas take no input that would write after it unacknowledged (compact runs once
 * every input is stored), and the stage's producer keeps the order of one partition. */
static void write_kept(wf_t *wf, int32_t p, const char *delivery_id)
{
	json_t *bytes = json_object_get(wf->states[p], delivery_id);
	pl_event_meta_t meta = {.event_type = SAGA_STATE_SCHEMA};
	if (!bytes || pl_producer_send_event(wf->producer, SAGA_TOPIC_STATE, delivery_id,
	                                     json_string_value(bytes), json_string_length(bytes),
	                                     &meta, compact_written, NULL) != PL_OK)
		pl_log(PL_LOG_WARN, "compact_state_not_written",
		       PL_LOG_FIELDS(PL_LS("delivery_id", delivery_id)),
		       "producer queue refused it");
}

/* Moves a finished saga without outbox from states[p] to settled[p] (settled.h); false when it
 * is not one, or applied too many inputs to settle: then it stays whole. When it returns true,
 * delivery_id may have been freed (see below). */
static bool settle(wf_t *wf, int32_t p, const char *delivery_id, const json_t *state)
{
	const json_t *seen = json_object_get(state, "seenEventIds");
	size_t n = json_array_size(seen);
	const char *ids[SETTLED_SEEN_MAX];
	if (!is_finished(state) || json_array_size(json_object_get(state, "outbox")) > 0 ||
	    n > SETTLED_SEEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(ids[i] = json_string_value(json_array_get(seen, i))))
			return false;
	if (!settled_put(wf->settled[p], delivery_id, saga_status(state), ids, n))
		return false;
	/* delivery_id may be states[p]'s own key (the restore's loop): deleting that entry frees
	 * it, so it goes last. */
	json_object_del(wf->timers[p], delivery_id);
	json_object_del(wf->states[p], delivery_id);
	return true;
}

/* A finished saga still holding its outbox is kept and written to the changelog without it;
 * then a finished saga without one is settled. */
static void compact(wf_t *wf, int32_t p, const char *delivery_id)
{
	json_t *state = NULL;
	char err[256];
	if (recall(wf, p, delivery_id, &state, err, sizeof(err)) != PL_OK || !state) {
		json_decref(state);
		return;
	}
	if (unsent_cause(state)) { /* its outbox is still to re-send: the timer sweep re-sends it */
		json_decref(state);
		return;
	}
	json_t *outbox = json_object_get(state, "outbox");
	if (is_finished(state) && json_array_size(outbox) > 0) {
		json_object_set_new(state, "outbox", json_array());
		if (remember(wf, p, delivery_id, state) != PL_OK) {
			json_decref(state);
			return;
		}
		pl_metric_inc(pl_metric_get0(wf->m_compacted));
		write_kept(wf, p,
		           delivery_id); /* the producer copies the bytes: settle may drop them */
	}
	settle(wf, p, delivery_id, state);
	json_decref(state);
}

/* Calls fn(wf, p, key) for every key of index (a deliveryId -> value object of partition p)
 * whose integer value is at most max_value (INT64_MAX: every key). The keys are collected
 * first: fn may edit the index. */
static void each_key(wf_t *wf, int32_t p, json_t *index, int64_t max_value,
                     void (*fn)(wf_t *, int32_t, const char *))
{
	json_t *keys = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(index, key, v)
	{
		if (max_value == INT64_MAX || json_integer_value(v) <= max_value)
			json_array_append_new(keys, json_string(key));
	}
	size_t i;
	json_array_foreach(keys, i, v)
	{
		fn(wf, p, json_string_value(v));
	}
	json_decref(keys);
}

/* Compacts the sagas of partition p whose inputs are all stored. */
static void drain(wf_t *wf, int32_t p)
{
	char *id;
	bool any = false;
	while (wf->durable[p] && dur_next_ready(wf->durable[p], &id)) {
		if (id)
			compact(wf, p, id);
		else /* the restore's entry: every finished saga of the partition */
			each_key(wf, p, wf->states[p], INT64_MAX, compact);
		pl_free(id);
		any = true;
	}
	if (any)
		count_sagas(wf);
}

void workflow_stored(const char *topic, int32_t p, int64_t next_offset, void *arg)
{
	wf_t *wf = arg;
	if (p < 0 || p >= MAX_PARTITIONS || !wf->durable[p])
		return;
	if (topic_index(topic) == 0 && next_offset > wf->req_pos[p])
		wf->req_pos[p] = next_offset;
	dur_stored(wf->durable[p], topic_index(topic), next_offset);
	drain(wf, p);
}

/* The restore's entry in durable[p]: the input partitions' end offsets now (every input behind
 * a restored state lies before them). Unknown ends keep the restored outboxes until the next
 * assignment. */
static void watch_restored(wf_t *wf, int32_t p)
{
	int64_t end[DUR_TOPICS];
	wf->req_end[p] = -1;
	wf->req_pos[p] = 0;
	wf->req_wait_until[p] = pl_now_ms() + REPLY_WAIT_MS;
	for (int t = 0; t < DUR_TOPICS; t++) {
		char err[256];
		if (pl_producer_high_watermark(wf->producer, workflow_topics[t], p, 10000, &end[t],
		                               err, sizeof(err)) != PL_OK) {
			pl_log(PL_LOG_WARN, "restore_end_unknown",
			       PL_LOG_FIELDS(PL_LI("partition", p)),
			       "%s; restored sagas keep their outbox", err);
			return;
		}
	}
	dur_watch_all(wf->durable[p], end);
	wf->req_end[p] = end[0];
}

/* Reads changelog partition p to its end. Pass 1 (redo NULL) keeps each delivery's last value
 * in states[p] as it is, undecoded (a tombstone drops it); pass 2 (redo set) applies only the
 * records of the deliveries in redo, decoding each and skipping the ones that do not decode,
 * so each ends at its last readable state. PL_ERR_NOT_FOUND at the end, as pl_reader_next. */
static pl_err_t read_changelog(wf_t *wf, int32_t p, const json_t *redo, size_t *records,
                               size_t *unreadable)
{
	pl_reader_opts_t ro = {.start = PL_READER_BEGINNING,
	                       .stop_at_end = true,
	                       .one_partition = true,
	                       .partition = p};
	pl_reader_t *reader = NULL;
	char err[512];
	pl_err_t e =
	    pl_reader_new(wf->cfg, SAGA_TOPIC_STATE, &ro, 30000, &reader, err, sizeof(err));
	if (e != PL_OK) {
		pl_log(PL_LOG_ERROR, "saga_restore_failed",
		       PL_LOG_FIELDS(PL_LI("partition", p), PL_LS("err", pl_err_str(e))), "%s",
		       err);
		return e == PL_ERR_NOT_FOUND ? PL_ERR_FATAL : e;
	}
	pl_record_t r;
	while ((e = pl_reader_next(reader, &r, 30000)) == PL_OK) {
		char key[DELIVERY_ID_MAX + 1];
		if (r.key_len > DELIVERY_ID_MAX) { /* never written by this workflow */
			pl_log(PL_LOG_ERROR, "saga_state_key_too_long",
			       PL_LOG_FIELDS(PL_LI("partition", p), PL_LI("offset", r.offset)),
			       "a changelog key of %zu bytes (at most %d): record skipped",
			       r.key_len, DELIVERY_ID_MAX);
			continue;
		}
		memcpy(key, r.key ? r.key : "", r.key_len);
		key[r.key_len] = '\0';
		if (redo && !json_object_get(redo, key))
			continue;
		(*records)++;
		if (!r.value) { /* tombstone */
			json_object_del(wf->states[p], key);
			json_object_del(wf->timers[p], key);
		} else if (!redo) {
			json_object_set_new(wf->states[p], key,
			                    json_stringn_nocheck(r.value, r.value_len));
		} else {
			json_t *state = NULL;
			if (pl_avro_decode(wf->registry, r.value, r.value_len, &state, NULL, err,
			                   sizeof(err)) != PL_OK) {
				(*unreadable)++; /* keep the last readable state of that delivery */
				pl_log(PL_LOG_ERROR, "saga_state_unreadable",
				       PL_LOG_FIELDS(PL_LI("partition", p),
				                     PL_LI("offset", r.offset),
				                     PL_LS("delivery_id", key)),
				       "%s", err);
				continue;
			}
			keep(wf, p, key, r.value, r.value_len, state);
			json_decref(state);
		}
	}
	pl_reader_destroy(reader);
	return e;
}

/* Restores partition p's sagas from its changelog. Only each delivery's last value is decoded
 * (for its timer, and to check it reads): a saga has several records until compaction, and
 * decoding every one was most of a restore. A delivery whose last value does not decode (never
 * expected) is read again record by record, in a second pass, to its last readable state. */
pl_err_t workflow_assigned(const char *topic, int32_t p, void *arg)
{
	(void)topic;
	wf_t *wf = arg;
	if (p < 0 || p >= MAX_PARTITIONS)
		return PL_ERR_FATAL;
	if (wf->states[p])
		return PL_OK; /* restored for another input topic of the same partition */
	wf->states[p] = json_object();
	wf->timers[p] = json_object();
	wf->settled[p] = settled_new();
	size_t records = 0, unreadable = 0;
	int64_t t0 = pl_now_ms();
	json_t *redo = json_object();
	pl_err_t e = read_changelog(wf, p, NULL, &records, &unreadable);
	if (e == PL_ERR_NOT_FOUND) {
		const char *key;
		json_t *bytes, *state;
		void *tmp;
		char err[512];
		json_object_foreach_safe(wf->states[p], tmp, key, bytes)
		{
			if (pl_avro_decode(wf->registry, json_string_value(bytes),
			                   json_string_length(bytes), &state, NULL, err,
			                   sizeof(err)) != PL_OK) {
				json_object_set_new(redo, key, json_true());
				json_object_del(wf->states[p], key);
				continue;
			}
			if (!settle(wf, p, key, state))
				set_timer(wf, p, key,
				          state); /* its bytes are in states[p] already */
			json_decref(state);
		}
		if (json_object_size(redo) > 0) {
			size_t again = 0;
			e = read_changelog(wf, p, redo, &again, &unreadable);
		}
	}
	json_decref(redo);
	if (e != PL_ERR_NOT_FOUND) { /* not read to its end: do not run on a partial view */
		json_decref(wf->states[p]);
		json_decref(wf->timers[p]);
		wf->states[p] = wf->timers[p] = NULL;
		settled_destroy(wf->settled[p]);
		wf->settled[p] = NULL;
		if (e != PL_ERR_TIMEOUT)
			return e; /* the reader could not start (logged) */
		pl_log(PL_LOG_ERROR, "saga_restore_incomplete",
		       PL_LOG_FIELDS(PL_LI("partition", p)),
		       "the changelog could not be read to its end");
		return PL_ERR_TRANSIENT;
	}
	wf->durable[p] = dur_new();
	watch_restored(wf, p);
	pl_log(PL_LOG_INFO, "sagas_restored",
	       PL_LOG_FIELDS(
	           PL_LI("partition", p),
	           PL_LI("sagas", json_object_size(wf->states[p]) + settled_size(wf->settled[p])),
	           PL_LI("settled", settled_size(wf->settled[p])), PL_LI("records", records),
	           PL_LI("unreadable", unreadable), PL_LI("ms", pl_now_ms() - t0)),
	       "restored partition %d", p);
	count_sagas(wf);
	return PL_OK;
}

pl_err_t workflow_revoked(const char *topic, int32_t p, void *arg)
{
	(void)topic;
	wf_t *wf = arg;
	if (p < 0 || p >= MAX_PARTITIONS || !wf->states[p])
		return PL_OK;
	/* Another member owns these sagas now; if p comes back, the changelog is read again. */
	json_decref(wf->states[p]);
	json_decref(wf->timers[p]);
	wf->states[p] = wf->timers[p] = NULL;
	dur_destroy(wf->durable[p]);
	wf->durable[p] = NULL;
	settled_destroy(wf->settled[p]);
	wf->settled[p] = NULL;
	count_sagas(wf);
	return PL_OK;
}

static void count(wf_t *wf, const char *input, saga_outcome_t outcome)
{
	const char *l[] = {input, saga_outcome_name(outcome)};
	pl_metric_inc(pl_metric_get(wf->m_outcomes, l));
}

/* Produces a result's outputs and re-sends; PL_STAGE_RETRY when one was refused. after: hold
 * them until the record's state write is acknowledged (pl_stage_produce_after). */
static pl_stage_outcome_t produce_outputs(pl_stage_ctx_t *ctx, const char *delivery_id,
                                          const saga_result_t *r, bool after)
{
	pl_err_t (*produce)(pl_stage_ctx_t *, const char *, const char *, const char *,
	                    const json_t *, const char *) =
	    after ? pl_stage_produce_after : pl_stage_produce_event;
	pl_stage_outcome_t out = PL_STAGE_OK;
	for (size_t i = 0; i < r->output_count; i++)
		if (produce(ctx, r->outputs[i].topic, delivery_id, r->outputs[i].schema,
		            r->outputs[i].event, r->outputs[i].event_id) != PL_OK)
			out = PL_STAGE_RETRY;
	for (size_t i = 0; i < r->resend_count; i++)
		if (produce(ctx, r->resend[i].topic, delivery_id, r->resend[i].schema,
		            r->resend[i].event, r->resend[i].event_id) != PL_OK)
			out = PL_STAGE_RETRY;
	return out;
}

/* Maps a saga outcome to the stage's (logging an ignored input, setting the reason of the
 * others); *go_on = false when the input has nothing to produce. */
static pl_stage_outcome_t map_outcome(pl_stage_ctx_t *ctx, const char *input,
                                      const saga_result_t *r, bool *go_on)
{
	*go_on = false;
	switch (r->outcome) {
	case SAGA_OK:
	case SAGA_DUPLICATE:
		break;
	case SAGA_IGNORED:
		pl_log(PL_LOG_INFO, "saga_input_ignored", PL_LOG_FIELDS(PL_LS("input", input)),
		       "%s", r->reason);
		break;
	case SAGA_RETRY_LATER:
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "%s", r->reason);
		return PL_STAGE_RETRY;
	case SAGA_DEAD:
		pl_stage_set_reason(ctx, PL_ERR_REJECTED, "%s", r->reason);
		return PL_STAGE_DEAD;
	}
	*go_on = true;
	return PL_STAGE_OK;
}

/* An input to a settled saga: a repeat of a seen eventId is a duplicate with nothing to re-send
 * (its outbox was empty); anything else is applied to the saga's stand-in (saga.h) and its
 * outputs produced (a released drone), with no state written and nothing noted: a settled saga
 * keeps no outbox, so a redelivery of the input (its output not acknowledged, or a replay) must
 * produce the same outputs, with the same eventIds, again. */
static pl_stage_outcome_t apply_settled(wf_t *wf, pl_stage_ctx_t *ctx, settled_entry_t *settled,
                                        const char *input, const json_t *event,
                                        const char *delivery_id)
{
	const char *event_id = json_string_value(json_object_get(event, "eventId"));
	saga_result_t r;
	if (event_id && settled_seen(settled, event_id)) {
		count(wf, input, SAGA_DUPLICATE);
		return PL_STAGE_OK;
	}
	json_t *stand_in = saga_settled_state(delivery_id, (saga_status_t)settled->status);
	saga_apply(stand_in, input, event, pl_now_ms(), &wf->opts, &r);
	count(wf, input, r.outcome);
	bool go_on;
	pl_stage_outcome_t out = map_outcome(ctx, input, &r, &go_on);
	if (go_on) /* no state to write first */
		out = produce_outputs(ctx, delivery_id, &r, false);
	saga_result_clear(&r);
	json_decref(stand_in);
	return out;
}

/* A reply (package or drone event) that finds no saga right after an assignment may be ahead of
 * its own request when the changelog was written by a workflow that sent a command before its
 * saga state was acknowledged (before 2026-11-27): after a crash in between, the command's reply
 * can be read before the request, still behind the committed offset of dronedelivery.requests,
 * is handled again and makes the saga. True while requests partition p has not reached its end
 * offset of the assignment, for at most REPLY_WAIT_MS: such a reply is retried, not
 * dead-lettered. (This workflow writes the state first, so its own crashes leave no such reply.)
 */
static bool catching_up(wf_t *wf, int32_t p, int topic)
{
	if (topic == 0)
		return false;
	return wf->req_end[p] > wf->req_pos[p] && pl_now_ms() < wf->req_wait_until[p];
}

/* True when rec is a client's change of a delivery whose owner is not the one that asked. */
static bool foreign_change(const pl_record_t *rec, const char *input, const json_t *state)
{
	if (strcmp(input, "DeliveryRescheduleRequested") != 0 &&
	    strcmp(input, "DeliveryCancelRequested") != 0 &&
	    strcmp(input, "DeliveryConfirmed") != 0)
		return false;
	char who[256];
	if (!pl_record_header(rec, WORKFLOW_PRINCIPAL_HEADER, who, sizeof(who)) ||
	    strncmp(who, "owner:", 6) != 0)
		return false; /* admin, or the open API */
	const char *owner = json_string_value(json_object_get(state, "ownerId"));
	return !owner || strcmp(owner, who + 6) != 0;
}

pl_stage_outcome_t workflow_handle(pl_stage_ctx_t *ctx, const pl_record_t *rec, const json_t *event,
                                   const pl_avro_schema_t *schema, void *arg)
{
	wf_t *wf = arg;
	int32_t p = rec->partition;
	if (p < 0 || p >= MAX_PARTITIONS || !wf->states[p]) {
		pl_stage_set_reason(ctx, PL_ERR_TRANSIENT, "sagas of partition %d not restored", p);
		return PL_STAGE_RETRY;
	}
	int topic = topic_index(rec->topic);
	dur_handled(wf->durable[p], topic, rec->offset);
	if (topic == 0 && rec->offset + 1 > wf->req_pos[p])
		wf->req_pos[p] = rec->offset + 1;
	const char *input = pl_avro_schema_short_name(schema);
	const char *delivery_id = json_string_value(json_object_get(event, "deliveryId"));
	if (!delivery_id) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s without deliveryId", input);
		return PL_STAGE_DEAD;
	}
	if (strlen(delivery_id) > DELIVERY_ID_MAX) {
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "%s: deliveryId of %zu bytes (at most %d)",
		                    input, strlen(delivery_id), DELIVERY_ID_MAX);
		return PL_STAGE_DEAD;
	}
	if (rec->key_len != strlen(delivery_id) || memcmp(rec->key, delivery_id, rec->key_len)) {
		/* keyed elsewhere = another partition's saga: applying it here would fork it */
		pl_stage_set_reason(ctx, PL_ERR_SCHEMA, "record key is not its deliveryId %s",
		                    delivery_id);
		return PL_STAGE_DEAD;
	}
	json_t *state = NULL;
	char err[256];
	pl_err_t de = recall(wf, p, delivery_id, &state, err, sizeof(err));
	if (de != PL_OK) {
		pl_stage_set_reason(ctx, de, "saga of %s unreadable: %s", delivery_id, err);
		return PL_STAGE_RETRY;
	}
	settled_entry_t *settled = state ? NULL : settled_get(wf->settled[p], delivery_id);
	if (settled)
		return apply_settled(wf, ctx, settled, input, event, delivery_id);
	if (!state && catching_up(wf, p, topic)) {
		pl_stage_set_reason(
		    ctx, PL_ERR_TRANSIENT,
		    "no saga for delivery %s yet: %s partition %d is at offset %lld "
		    "of %lld, where its request may be",
		    delivery_id, SAGA_TOPIC_REQUESTS, p, (long long)wf->req_pos[p],
		    (long long)wf->req_end[p]);
		return PL_STAGE_RETRY;
	}
	if (state && foreign_change(rec, input, state)) {
		pl_log(PL_LOG_WARN, "change_not_owner", PL_LOG_FIELDS(PL_LS("input", input)),
		       "%s from another owner than the delivery's: not applied", input);
		count(wf, input, SAGA_IGNORED);
		json_decref(state);
		return PL_STAGE_OK;
	}
	saga_result_t r;
	saga_apply(state, input, event, pl_now_ms(), &wf->opts, &r);
	count(wf, input, r.outcome);
	bool go_on;
	pl_stage_outcome_t out = map_outcome(ctx, input, &r, &go_on);
	if (!go_on)
		goto done;
	/* The state first, the outputs once it is acknowledged (pl_stage_produce_after): a crash
	 * in between leaves a state whose outbox holds them, and the input, not stored, comes
	 * again as a duplicate that re-sends them. The other order could leave outputs of a state
	 * never written: their replies then met the older state (a DroneAssigned answered with a
	 * release while the saga, still AwaitingPackage, asked again with the same eventId). On a
	 * duplicate the current state is written again too, in case the first write is what failed
	 * (the changelog is compacted, so an identical value costs nothing). */
	json_t *to_write = r.state ? r.state : (r.outcome == SAGA_DUPLICATE ? state : NULL);
	if (to_write && pl_stage_produce_event(ctx, SAGA_TOPIC_STATE, delivery_id,
	                                       SAGA_STATE_SCHEMA, to_write, NULL) != PL_OK)
		out = PL_STAGE_RETRY;
	else
		out = produce_outputs(ctx, delivery_id, &r, to_write != NULL);
	if (r.state && out == PL_STAGE_OK) {
		bool is_new = state == NULL;
		if (remember(wf, p, delivery_id, r.state) != PL_OK) {
			out = PL_STAGE_RETRY; /* written, not kept: handle the input again */
		} else {
			if (is_new)
				count_sagas(wf);
			if (is_finished(r.state))
				dur_watch(wf->durable[p], delivery_id);
		}
	}
done:
	saga_result_clear(&r);
	json_decref(state);
	return out;
}

/* ---- timers ---------------------------------------------------------------------------------- */

/* A timer transition has no input record the group would deliver again, so its state is written
 * first with unsentCause = its cause, then its outputs, then the state without unsentCause, each
 * step acknowledged before the next: a crash in between leaves a state that says so, and the next
 * owner re-sends the outputs from the outbox. A state found marked (after a restore, or a failed
 * produce) only re-sends that cause's outbox entries (same eventIds: consumers drop what they
 * have), then is written unmarked. A sweep takes the due timers of every partition, up to
 * SWEEP_MAX, and runs each of the three steps for all of them at once (one wait per step, not per
 * record): each saga keeps its order, and a sweep over many sagas (a fleet that ran out of drones
 * retries every one of its waiting deliveries) costs three round trips to the broker. */
#define SWEEP_MAX 512

typedef struct due {
	int32_t p;
	char *delivery_id;
	json_t *state;                      /* as recalled (owned) */
	bool resend;                        /* state was marked: re-send its cause's outbox */
	saga_result_t r;                    /* the timer's transition (not resend) */
	saga_output_t out[SAGA_OUTBOX_MAX]; /* resend: the outbox entries (events owned) */
	size_t n_out;
	json_t *marked; /* step 1: the new state marked unsentCause (owned), or NULL */
	json_t *final;  /* step 3: the state to write unmarked (owned), or NULL */
	bool failed;    /* a step failed: retried on a later sweep */
} due_t;

/* Encodes event and sends it into slot of group; an encoding error fails the slot. */
static void emit(wf_t *wf, pl_produce_group_t *group, size_t slot, const char *topic,
                 const char *key, const char *schema_name, const json_t *event,
                 const char *event_id)
{
	const pl_avro_schema_t *schema = pl_avro_schema_get(wf->registry, schema_name);
	void *buf = NULL;
	size_t len = 0;
	char err[256];
	pl_err_t e = pl_avro_encode(schema, event, &buf, &len, err, sizeof(err));
	if (e != PL_OK) {
		pl_log(PL_LOG_ERROR, "encode_failed", PL_LOG_FIELDS(PL_LS("schema", schema_name)),
		       "%s", err);
		pl_produce_group_fail(group, slot, e, err);
		return;
	}
	pl_event_meta_t meta = {.event_type = schema_name, .event_id = event_id};
	pl_event_headers_t eh;
	pl_event_headers_build(&eh, &meta);
	pl_produce_group_send(group, wf->producer, slot, topic, key, strlen(key), buf, len, eh.h,
	                      eh.n);
	pl_free(buf);
}

/* Waits for the step's sends; a saga whose send failed is marked failed and logged. */
static void step_wait(wf_t *wf, pl_produce_group_t *group, due_t *d, size_t n)
{
	pl_produce_group_wait(group, wf->producer, 30000);
	for (size_t i = 0; i < n; i++) {
		const char *reason;
		if (d[i].failed || pl_produce_group_result(group, i, &reason) == PL_OK)
			continue;
		d[i].failed = true;
		pl_log(PL_LOG_WARN, "timer_output_failed",
		       PL_LOG_FIELDS(PL_LS("delivery_id", d[i].delivery_id)), "%s", reason);
	}
}

/* Reads delivery_id's saga and works out what its due timer does; false when there is nothing
 * to write or send (the timer is then dropped, or set again when the saga is unreadable). */
static bool due_prepare(wf_t *wf, due_t *d)
{
	char err[256];
	if (recall(wf, d->p, d->delivery_id, &d->state, err, sizeof(err)) != PL_OK) {
		pl_log(PL_LOG_ERROR, "saga_state_unreadable",
		       PL_LOG_FIELDS(PL_LS("delivery_id", d->delivery_id)), "%s", err);
		json_object_set_new(wf->timers[d->p], d->delivery_id,
		                    json_integer(pl_now_ms() + 1000));
		return false;
	}
	if (d->state && unsent_cause(d->state)) {
		d->resend = true;
		d->n_out = saga_outbox(d->state, unsent_cause(d->state), d->out, SAGA_OUTBOX_MAX);
		d->final = json_deep_copy(d->state);
		json_object_set_new(d->final, "unsentCause", json_null());
		return true;
	}
	saga_apply(d->state, SAGA_INPUT_TIMER, NULL, pl_now_ms(), &wf->opts, &d->r);
	count(wf, SAGA_INPUT_TIMER, d->r.outcome);
	if (d->r.outcome != SAGA_OK) { /* nothing to do after all: forget the timer */
		json_object_del(wf->timers[d->p], d->delivery_id);
		return false;
	}
	if (d->r.state && d->r.output_count > 0) {
		d->marked = json_deep_copy(d->r.state);
		json_object_set_new(d->marked, "unsentCause",
		                    json_copy(json_object_get(d->r.state, "eventId")));
		json_object_set_new(d->r.state, "unsentCause", json_null());
	}
	d->final = json_incref(d->r.state);
	return true;
}

static void due_clear(due_t *d)
{
	for (size_t i = 0; i < d->n_out; i++)
		json_decref(d->out[i].event);
	if (!d->resend)
		saga_result_clear(&d->r);
	json_decref(d->state);
	json_decref(d->marked);
	json_decref(d->final);
	pl_free(d->delivery_id);
}

/* Runs the three steps for d[0..n). */
static void sweep(wf_t *wf, due_t *d, size_t n)
{
	/* 1. the marked states */
	pl_produce_group_t *g = pl_produce_group_new(n);
	for (size_t i = 0; i < n; i++)
		if (d[i].marked)
			emit(wf, g, i, SAGA_TOPIC_STATE, d[i].delivery_id, SAGA_STATE_SCHEMA,
			     d[i].marked, NULL);
	step_wait(wf, g, d, n);
	pl_produce_group_destroy(g);
	for (size_t i = 0; i < n; i++)
		if (d[i].marked && !d[i].failed &&
		    remember(wf, d[i].p, d[i].delivery_id, d[i].marked) != PL_OK)
			d[i].failed = true;
	/* 2. the outputs (a resend: its cause's outbox entries) */
	g = pl_produce_group_new(n);
	for (size_t i = 0; i < n; i++) {
		const saga_output_t *out = d[i].resend ? d[i].out : d[i].r.outputs;
		size_t n_out = d[i].resend ? d[i].n_out : d[i].r.output_count;
		for (size_t j = 0; j < n_out && !d[i].failed; j++)
			emit(wf, g, i, out[j].topic, d[i].delivery_id, out[j].schema, out[j].event,
			     out[j].event_id);
	}
	step_wait(wf, g, d, n);
	pl_produce_group_destroy(g);
	/* 3. the states unmarked */
	g = pl_produce_group_new(n);
	for (size_t i = 0; i < n; i++)
		if (d[i].final && !d[i].failed)
			emit(wf, g, i, SAGA_TOPIC_STATE, d[i].delivery_id, SAGA_STATE_SCHEMA,
			     d[i].final, NULL);
	step_wait(wf, g, d, n);
	pl_produce_group_destroy(g);
	for (size_t i = 0; i < n; i++) {
		due_t *x = &d[i];
		if (x->final && !x->failed && remember(wf, x->p, x->delivery_id, x->final) != PL_OK)
			x->failed = true;
		if (x->failed) { /* try again on a later sweep (re-sending if need be) */
			json_object_set_new(wf->timers[x->p], x->delivery_id,
			                    json_integer(pl_now_ms() + 1000));
			continue;
		}
		if (x->resend)
			pl_log(PL_LOG_INFO, "saga_outputs_resent",
			       PL_LOG_FIELDS(PL_LS("delivery_id", x->delivery_id),
			                     PL_LS("cause", unsent_cause(x->state)),
			                     PL_LI("outputs", x->n_out)),
			       "re-sent the outputs of %s", unsent_cause(x->state));
		if (x->final && is_finished(x->final))
			dur_watch(wf->durable[x->p], x->delivery_id);
	}
}

void workflow_tick(void *arg)
{
	wf_t *wf = arg;
	int64_t now = pl_now_ms();
	if (now < wf->next_sweep_ms)
		return;
	wf->next_sweep_ms = now + 200;
	size_t n = 0;
	for (int32_t p = 0; p < MAX_PARTITIONS; p++) {
		drain(wf, p); /* a saga a timer finished waits for no new input */
		const char *key;
		json_t *v;
		json_object_foreach(wf->timers[p], key, v)
		{
			n += json_integer_value(v) <= now;
		}
	}
	if (n == 0)
		return;
	n = n < SWEEP_MAX ? n : SWEEP_MAX; /* the rest on the next sweep */
	due_t *d = pl_calloc(n, sizeof(*d));
	size_t taken = 0;
	for (int32_t p = 0; p < MAX_PARTITIONS && taken < n; p++) {
		const char *key;
		json_t *v;
		json_object_foreach(wf->timers[p], key, v)
		{
			if (taken == n)
				break;
			if (json_integer_value(v) <= now)
				d[taken++] = (due_t){.p = p, .delivery_id = pl_strdup(key)};
		}
	}
	n = taken;
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (due_prepare(wf, &d[i]))
			d[kept++] = d[i];
		else
			due_clear(&d[i]);
	}
	if (kept) {
		int64_t t0 = pl_now_ms();
		sweep(wf, d, kept);
		pl_log(PL_LOG_INFO, "timers_fired",
		       PL_LOG_FIELDS(PL_LI("sagas", kept), PL_LI("ms", pl_now_ms() - t0)),
		       "%zu due timers written and sent", kept);
	}
	for (size_t i = 0; i < kept; i++)
		due_clear(&d[i]);
	pl_free(d);
}
