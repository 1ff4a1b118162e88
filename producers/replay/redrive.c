/* redrive.c — `dronepipe dlq redrive`: dead letters produced again to the topic they came from.
 *
 * Where to: only into the pipeline. The target is the DLQ's own source topic (its name minus
 * ".dlq"), and both must be topics of the pipeline (scripts/topics.txt, embedded at build time:
 * pipeline/topiclist.h). A dead letter's dp_source_topic header is not trusted to name a target:
 * a letter whose header is not exactly the target (missing, another topic, other bytes) is
 * skipped, counted and reported with the reason, never produced anywhere.
 *
 * Guarantee (also in the --help text): the .dlq topic is read by a consumer group of its own
 * ("dronepipe-redrive-<dlq>", one per --filter-error). Records are handled in batches; for each
 * batch, per partition, an intent is committed first (offset = first record of the batch,
 * metadata "dp-redrive-pending:<first>:<last>:<ms>"), then the records are produced (idempotent
 * producer, acks=all) and every acknowledgement awaited, then the position after the batch is
 * committed. A run that starts on a pending intent (the previous one died between the intent and
 * the final commit) reads the target from <ms> - 10 s and does not produce again any record whose
 * dp_redriven_from (<dlq>:<partition>:<offset>) is already there. So within one redrive group a
 * dead letter is produced to its source at most once, and a completed run has produced every
 * selected one. Each redriven record keeps its key, value and non-dp_* headers (event_id
 * included: consumers are idempotent on it), plus dp_redriven_from and dp_redriven_at.
 *
 * --dry-run reads the same records from the same committed offsets without joining the group
 * (pl_admin_cursor_peek) and reports what would be sent where; it commits and produces nothing.
 * Owns: the cursor, the producer and the batch in hand. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "escape.h"
#include "kafka.h"
#include "mem.h"
#include "ops.h"
#include "progress.h"
#include "reader.h"
#include "topiclist.h"

#define PENDING_PREFIX "dp-redrive-pending:"
#define DLQ_SUFFIX     ".dlq"
/* Skipped dead letters listed one by one in the output (all are counted). */
#define SKIPS_LISTED 20

static bool pipeline_topic(const char *name, size_t len)
{
	for (size_t i = 0; i < pl_pipeline_topic_count; i++)
		if (strlen(pl_pipeline_topics[i]) == len &&
		    memcmp(pl_pipeline_topics[i], name, len) == 0)
			return true;
	return false;
}

bool ops_redrive_target(const char *dlq, char *target, size_t size, char *err, size_t err_size)
{
	size_t n = strlen(dlq), sn = strlen(DLQ_SUFFIX);
	bool is_dlq = n > sn && strcmp(dlq + n - sn, DLQ_SUFFIX) == 0;
	if (is_dlq && pipeline_topic(dlq, n) && pipeline_topic(dlq, n - sn) && n - sn < size) {
		memcpy(target, dlq, n - sn);
		target[n - sn] = '\0';
		return true;
	}
	char *shown = ops_escape_str(dlq, 200);
	ops_buf_t known = {0};
	for (size_t i = 0; i < pl_pipeline_topic_count; i++) {
		const char *t = pl_pipeline_topics[i];
		size_t tn = strlen(t);
		if (tn > sn && strcmp(t + tn - sn, DLQ_SUFFIX) == 0 && pipeline_topic(t, tn - sn))
			ops_buf_printf(&known, "%s%s", known.len ? ", " : "", t);
	}
	char *list = ops_buf_take(&known);
	snprintf(
	    err, err_size,
	    "%s is not %s: redrive writes only into the pipeline's own topics, so --topic must "
	    "be one of its dead-letter topics (%s)",
	    shown, is_dlq ? "a dead-letter topic of the pipeline" : "a dead-letter topic (*.dlq)",
	    list);
	pl_free(list);
	pl_free(shown);
	return false;
}

typedef struct acks {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
	int failed;
	char reason[256];
} acks_t;

static void on_ack(void *opaque, pl_err_t err, const char *reason, int32_t partition,
                   int64_t offset)
{
	(void)partition;
	(void)offset;
	acks_t *k = opaque;
	pthread_mutex_lock(&k->lock);
	if (err != PL_OK && !k->failed++)
		snprintf(k->reason, sizeof(k->reason), "%s", reason ? reason : pl_err_str(err));
	k->pending--;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

/* One dead letter of the batch in hand, copied out of the cursor. */
typedef struct letter {
	int32_t partition;
	int64_t offset;
	bool produce;
	void *key, *value;
	size_t key_len, value_len;
	pl_header_t headers[PL_MAX_HEADERS];
	size_t header_count;
} letter_t;

static void letter_clear(letter_t *l)
{
	pl_free(l->key);
	pl_free(l->value);
	for (size_t i = 0; i < l->header_count; i++) {
		pl_free((void *)l->headers[i].name);
		pl_free((void *)l->headers[i].value);
	}
	memset(l, 0, sizeof(*l));
}

static void *dup_bytes(const void *p, size_t n)
{
	if (!p)
		return NULL;
	void *c = pl_malloc(n + 1);
	memcpy(c, p, n);
	((char *)c)[n] = '\0';
	return c;
}

/* Where a crashed run left intents: per partition [first, last] and the time, or first = -1. */
typedef struct pending {
	int64_t first, last, at_ms;
} pending_t;

/* dp_redriven_from values of this dlq found on the target (for pending intents only). */
typedef struct found {
	bool scanned;
	char **coords;
	size_t ncoords, cap;
} found_t;

static pl_err_t scan_target(ops_t *ops, found_t *f, const char *target, const char *dlq,
                            int64_t since_ms, char *err, size_t err_size)
{
	if (f->scanned)
		return PL_OK;
	pl_reader_opts_t ro = {
	    .start = PL_READER_TIME, .start_time_ms = since_ms, .stop_at_end = true};
	pl_reader_t *reader = NULL;
	pl_err_t e = pl_reader_new(ops->cfg, target, &ro, 10000, &reader, err, err_size);
	if (e != PL_OK)
		return e;
	size_t plen = strlen(dlq);
	pl_record_t r;
	while ((e = pl_reader_next(reader, &r, 10000)) == PL_OK) {
		char from[512];
		if (!pl_record_header(&r, "dp_redriven_from", from, sizeof(from)) ||
		    strncmp(from, dlq, plen) != 0 || from[plen] != ':')
			continue;
		if (f->ncoords == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 64;
			f->coords = pl_realloc(f->coords, f->cap * sizeof(char *));
		}
		f->coords[f->ncoords++] = pl_strdup(from);
	}
	pl_reader_destroy(reader);
	if (e != PL_ERR_NOT_FOUND) {
		snprintf(err, err_size, "reading %s to resolve an interrupted redrive: %s", target,
		         pl_err_str(e));
		return e;
	}
	f->scanned = true;
	return PL_OK;
}

static bool found_has(const found_t *f, const char *coords)
{
	for (size_t i = 0; i < f->ncoords; i++)
		if (strcmp(f->coords[i], coords) == 0)
			return true;
	return false;
}

static void found_clear(found_t *f)
{
	for (size_t i = 0; i < f->ncoords; i++)
		pl_free(f->coords[i]);
	pl_free(f->coords);
}

/* A dead letter that was not redriven because of its headers. */
typedef struct skip {
	int32_t partition;
	int64_t offset;
	const char *reason; /* "no_source_topic" or "other_source_topic" */
	char *source;       /* copy of the dp_source_topic bytes, NULL when missing */
	size_t source_len;
} skip_t;

typedef struct tally {
	int64_t examined, redriven, already, filtered, no_source, other_source;
	skip_t skips[SKIPS_LISTED]; /* the first ones, in the order read */
	size_t nskips;
} tally_t;

static void tally_skip(tally_t *t, const pl_record_t *r, const char *reason, const void *src,
                       size_t src_len)
{
	if (src)
		t->other_source++;
	else
		t->no_source++;
	if (t->nskips == SKIPS_LISTED)
		return;
	t->skips[t->nskips++] = (skip_t){r->partition, r->offset, reason,
	                                 src ? dup_bytes(src, src_len) : NULL, src_len};
}

static void tally_clear(tally_t *t)
{
	for (size_t i = 0; i < t->nskips; i++)
		pl_free(t->skips[i].source);
}

/* Copies r into l and decides whether to produce it. */
static pl_err_t take_letter(ops_t *ops, const ops_dlq_args_t *a, const char *target,
                            const pl_record_t *r, const pending_t *pend, found_t *found,
                            int64_t budget, letter_t *l, tally_t *t, char *err, size_t err_size)
{
	char error[1024], cls[64];
	l->partition = r->partition;
	l->offset = r->offset;
	if (!ops_dlq_selected(a->filter, pl_record_header(r, "dp_error", error, sizeof(error)),
	                      pl_record_header(r, "dp_error_class", cls, sizeof(cls)))) {
		t->filtered++;
		return PL_OK;
	}
	/* The header decides only whether this letter goes back, never where: it must name the
	 * target byte for byte (no NUL, no suffix, no truncation tricks). */
	size_t src_len;
	const void *src = ops_header_bytes(r, "dp_source_topic", &src_len);
	if (!src || src_len == 0) {
		tally_skip(t, r, "no_source_topic", NULL, 0);
		return PL_OK;
	}
	if (src_len != strlen(target) || memcmp(src, target, src_len) != 0) {
		tally_skip(t, r, "other_source_topic", src, src_len);
		return PL_OK;
	}
	if (budget <= 0)
		return PL_OK;
	const pending_t *p = &pend[r->partition];
	if (p->first >= 0 && r->offset >= p->first && r->offset <= p->last) {
		pl_err_t e =
		    scan_target(ops, found, target, a->topic, p->at_ms - 10000, err, err_size);
		if (e != PL_OK)
			return e;
		char coords[512];
		snprintf(coords, sizeof(coords), "%s:%d:%lld", a->topic, r->partition,
		         (long long)r->offset);
		if (found_has(found, coords)) {
			t->already++;
			return PL_OK;
		}
	}
	l->produce = true;
	if (a->dry_run)
		return PL_OK;
	l->key = dup_bytes(r->key, r->key_len);
	l->key_len = r->key_len;
	l->value = dup_bytes(r->value, r->value_len);
	l->value_len = r->value_len;
	char from[512], at[24];
	snprintf(from, sizeof(from), "%s:%d:%lld", a->topic, r->partition, (long long)r->offset);
	snprintf(at, sizeof(at), "%lld", (long long)pl_now_ms());
	for (size_t i = 0; i < r->header_count && l->header_count < PL_MAX_HEADERS - 2; i++) {
		if (strncmp(r->headers[i].name, "dp_", 3) == 0)
			continue;
		l->headers[l->header_count++] = (pl_header_t){
		    pl_strdup(r->headers[i].name),
		    dup_bytes(r->headers[i].value, r->headers[i].len), r->headers[i].len};
	}
	l->headers[l->header_count++] =
	    (pl_header_t){pl_strdup("dp_redriven_from"), pl_strdup(from), strlen(from)};
	l->headers[l->header_count++] =
	    (pl_header_t){pl_strdup("dp_redriven_at"), pl_strdup(at), strlen(at)};
	return PL_OK;
}

/* Commits, per partition present in the batch, either the intent (first offset + metadata) or
 * the position after the batch. Only partitions with something to produce get an intent. */
static pl_err_t commit_batch(pl_admin_cursor_t *cur, const letter_t *b, size_t n, int nparts,
                             bool intent, char *err, size_t err_size)
{
	int64_t *first = pl_calloc((size_t)nparts, sizeof(int64_t));
	int64_t *last = pl_calloc((size_t)nparts, sizeof(int64_t));
	bool *produce = pl_calloc((size_t)nparts, sizeof(bool));
	for (int p = 0; p < nparts; p++)
		first[p] = last[p] = -1;
	for (size_t i = 0; i < n; i++) {
		int32_t p = b[i].partition;
		if (first[p] < 0)
			first[p] = b[i].offset;
		last[p] = b[i].offset;
		produce[p] = produce[p] || b[i].produce;
	}
	int32_t *parts = pl_calloc((size_t)nparts, sizeof(int32_t));
	int64_t *offs = pl_calloc((size_t)nparts, sizeof(int64_t));
	char **meta = pl_calloc((size_t)nparts, sizeof(char *));
	size_t k = 0;
	int64_t now = pl_now_ms();
	for (int p = 0; p < nparts; p++) {
		if (first[p] < 0 || (intent && !produce[p]))
			continue;
		parts[k] = p;
		offs[k] = intent ? first[p] : last[p] + 1;
		meta[k] = intent ? pl_asprintf(PENDING_PREFIX "%lld:%lld:%lld", (long long)first[p],
		                               (long long)last[p], (long long)now)
		                 : NULL;
		k++;
	}
	pl_err_t e = k ? pl_admin_cursor_commit(cur, parts, offs, (const char *const *)meta, k, err,
	                                        err_size)
	               : PL_OK;
	for (size_t i = 0; i < k; i++)
		pl_free(meta[i]);
	pl_free(meta);
	pl_free(offs);
	pl_free(parts);
	pl_free(produce);
	pl_free(last);
	pl_free(first);
	return e;
}

static pl_err_t produce_batch(pl_producer_t *prod, const char *target, letter_t *b, size_t n,
                              char *err, size_t err_size)
{
	acks_t k = {.pending = 0};
	pthread_mutex_init(&k.lock, NULL);
	pthread_cond_init(&k.cond, NULL);
	pl_err_t e = PL_OK;
	for (size_t i = 0; i < n && e == PL_OK; i++) {
		if (!b[i].produce)
			continue;
		pthread_mutex_lock(&k.lock);
		k.pending++;
		pthread_mutex_unlock(&k.lock);
		for (;;) {
			e = pl_producer_send(prod, target, b[i].key, b[i].key_len, b[i].value,
			                     b[i].value_len, b[i].headers, b[i].header_count,
			                     on_ack, &k);
			if (e != PL_ERR_QUEUE_FULL)
				break;
			struct timespec ts = {0, 10 * 1000000};
			nanosleep(&ts, NULL);
		}
		if (e != PL_OK) {
			pthread_mutex_lock(&k.lock);
			k.pending--;
			pthread_mutex_unlock(&k.lock);
			snprintf(err, err_size, "produce to %s: %s", target, pl_err_str(e));
		}
	}
	/* Every accepted record completes exactly once (kafka.h): wait for all of them. */
	pthread_mutex_lock(&k.lock);
	while (k.pending > 0)
		pthread_cond_wait(&k.cond, &k.lock);
	if (e == PL_OK && k.failed) {
		snprintf(err, err_size, "%d record(s) not acknowledged: %s", k.failed, k.reason);
		e = PL_ERR_TRANSIENT;
	}
	pthread_mutex_unlock(&k.lock);
	pthread_mutex_destroy(&k.lock);
	pthread_cond_destroy(&k.cond);
	return e;
}

static const char *skip_text(const char *reason)
{
	return strcmp(reason, "no_source_topic") == 0 ? "no dp_source_topic header"
	                                              : "dp_source_topic names another topic";
}

static void print_summary(const ops_dlq_args_t *a, const char *target, const char *group,
                          const tally_t *t, int rc, const char *err)
{
	int64_t skipped = t->no_source + t->other_source;
	if (a->json) {
		json_t *doc = json_pack(
		    "{s:s,s:s,s:o,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "topic", a->topic,
		    "target", target, "group", ops_json_str(group), "dry_run", a->dry_run, "ok",
		    rc == 0, "examined", (json_int_t)t->examined, "redriven",
		    (json_int_t)t->redriven, "already_redriven", (json_int_t)t->already, "filtered",
		    (json_int_t)t->filtered, "skipped", (json_int_t)skipped, "no_source",
		    (json_int_t)t->no_source, "other_source", (json_int_t)t->other_source);
		/* what was (dry run: would be) sent where */
		json_object_set_new(doc, "targets",
		                    json_pack("{s:I}", target, (json_int_t)t->redriven));
		json_t *skips = json_array();
		for (size_t i = 0; i < t->nskips; i++) {
			const skip_t *s = &t->skips[i];
			json_t *j = json_pack("{s:i,s:I,s:s}", "partition", (int)s->partition,
			                      "offset", (json_int_t)s->offset, "reason", s->reason);
			if (s->source)
				json_object_set_new(j, "source_topic",
				                    ops_json_text(s->source, s->source_len));
			json_array_append_new(skips, j);
		}
		json_object_set_new(doc, "skips", skips);
		json_object_set_new(doc, "skips_listed_max", json_integer(SKIPS_LISTED));
		if (rc != 0)
			json_object_set_new(doc, "error", ops_json_str(err));
		ops_json_print(stdout, doc);
		json_decref(doc);
		return;
	}
	char *group_shown = ops_escape_str(group, 300);
	for (size_t i = 0; i < t->nskips; i++) {
		const skip_t *s = &t->skips[i];
		char *src = s->source ? ops_escape(s->source, s->source_len, 200) : NULL;
		printf("skipped %d:%lld: %s%s%s%s\n", (int)s->partition, (long long)s->offset,
		       skip_text(s->reason), src ? " ('" : "", src ? src : "", src ? "')" : "");
		pl_free(src);
	}
	if (skipped > (int64_t)t->nskips)
		printf("skipped: %lld more not listed\n",
		       (long long)(skipped - (int64_t)t->nskips));
	printf(
	    "%sredrive %s -> %s (group %s): %lld examined, %lld %s, %lld already redriven by an "
	    "interrupted run, %lld not selected by the filter, %lld skipped (%lld: dp_source_topic "
	    "names another topic, %lld: no dp_source_topic)%s\n",
	    a->dry_run ? "dry run: " : "", a->topic, target, group_shown, (long long)t->examined,
	    (long long)t->redriven, a->dry_run ? "would be redriven" : "redriven",
	    (long long)t->already, (long long)t->filtered, (long long)skipped,
	    (long long)t->other_source, (long long)t->no_source,
	    a->dry_run ? "; nothing was produced or committed" : "");
	pl_free(group_shown);
}

static void read_pending(pl_admin_cursor_t *cur, pending_t *pend, int nparts)
{
	for (int p = 0; p < nparts; p++) {
		const char *meta;
		pend[p].first = -1;
		pl_admin_cursor_committed(cur, p, &meta);
		long long f, l, at;
		if (strncmp(meta, PENDING_PREFIX, strlen(PENDING_PREFIX)) == 0 &&
		    sscanf(meta + strlen(PENDING_PREFIX), "%lld:%lld:%lld", &f, &l, &at) == 3)
			pend[p] = (pending_t){f, l, at};
	}
}

int ops_dlq_redrive(ops_t *ops, const ops_dlq_args_t *a)
{
	char group[300], target[256], err[1024] = "";
	if (!ops_redrive_target(a->topic, target, sizeof(target), err, sizeof(err))) {
		fprintf(stderr, "dronepipe dlq redrive: %s\n", err);
		return 1;
	}
	if (a->group)
		snprintf(group, sizeof(group), "%s", a->group);
	else
		ops_dlq_group_name(a->topic, a->filter, group, sizeof(group));
	pl_admin_cursor_t *cur = NULL;
	pl_producer_t *prod = NULL;
	pending_t *pend = NULL;
	letter_t *batch = pl_calloc((size_t)a->batch, sizeof(letter_t));
	found_t found = {0};
	tally_t t = {0};
	int rc = 2, batches = 0;
	pl_err_t e =
	    a->dry_run
	        ? pl_admin_cursor_peek(ops->cfg, group, a->topic, 20000, &cur, err, sizeof(err))
	        : pl_admin_cursor_new(ops->cfg, group, a->topic, 20000, &cur, err, sizeof(err));
	if (e != PL_OK) {
		rc = e == PL_ERR_NOT_FOUND ? 1 : 2;
		goto out;
	}
	int nparts = pl_admin_cursor_partitions(cur);
	pend = pl_calloc((size_t)nparts, sizeof(*pend));
	read_pending(cur, pend, nparts);
	if (!a->dry_run) {
		prod = pl_producer_new(ops->cfg, "dronepipe-redrive", NULL, err, sizeof(err));
		if (!prod)
			goto out;
	}
	ops_progress_t progress;
	ops_progress_init(&progress, stderr, isatty(2),
	                  a->dry_run ? "redrive (dry run)" : "redrive",
	                  pl_admin_cursor_remaining(cur), pl_now_ms());
	int64_t started = pl_now_ms();
	bool end = false;
	while (!end) {
		size_t n = 0;
		while (n < (size_t)a->batch) {
			int64_t budget = a->limit < 0 ? INT64_MAX : a->limit - t.redriven;
			for (size_t i = 0; i < n; i++)
				budget -= batch[i].produce;
			if (budget <= 0) {
				end = true;
				break;
			}
			pl_record_t r;
			e = pl_admin_cursor_next(cur, &r, n ? 200 : 10000);
			if (e == PL_ERR_TIMEOUT && n)
				break;
			if (e == PL_ERR_NOT_FOUND) {
				end = true;
				break;
			}
			if (e != PL_OK) {
				snprintf(err, sizeof(err), "reading %s: %s", a->topic,
				         e == PL_ERR_FATAL ? "another redrive of the same group "
				                             "took partitions away"
				                           : pl_err_str(e));
				goto out;
			}
			e = take_letter(ops, a, target, &r, pend, &found, budget, &batch[n], &t,
			                err, sizeof(err));
			if (e != PL_OK)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if (!a->dry_run) {
			if (commit_batch(cur, batch, n, nparts, true, err, sizeof(err)) != PL_OK ||
			    produce_batch(prod, target, batch, n, err, sizeof(err)) != PL_OK)
				goto out;
			if (a->fault_exit_after_ack && ++batches >= a->fault_exit_after_ack) {
				fprintf(stderr, "dronepipe dlq: fault injection: exiting after the "
				                "acknowledgements, before the commit\n");
				_exit(9);
			}
			if (commit_batch(cur, batch, n, nparts, false, err, sizeof(err)) != PL_OK)
				goto out;
		}
		for (size_t i = 0; i < n; i++) {
			t.redriven += batch[i].produce;
			letter_clear(&batch[i]);
		}
		t.examined += (int64_t)n;
		ops_progress_update(&progress, t.examined, pl_now_ms());
		if (a->rate > 0 && !a->dry_run) {
			int64_t due = started + t.examined * 1000 / a->rate, now = pl_now_ms();
			if (due > now) {
				struct timespec ts = {(due - now) / 1000,
				                      (due - now) % 1000 * 1000000};
				nanosleep(&ts, NULL);
			}
		}
	}
	ops_progress_finish(&progress, t.examined, pl_now_ms());
	rc = 0;
out:
	for (int i = 0; i < a->batch; i++)
		letter_clear(&batch[i]);
	pl_free(batch);
	pl_producer_destroy(prod, 10000);
	if (rc != 0)
		fprintf(stderr, "dronepipe dlq redrive: %s%s\n", err,
		        rc == 2 && !a->dry_run ? " (progress is committed: re-run to continue)"
		                               : "");
	if (rc != 1)
		print_summary(a, target, group, &t, rc, err);
	tally_clear(&t);
	found_clear(&found);
	pl_free(pend);
	pl_admin_cursor_destroy(cur);
	return rc;
}
