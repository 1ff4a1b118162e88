/* dlq.c — `dronepipe dlq list|show|redrive`: dead-lettered records with their reasons, and the
 * redrive of selected ones back to their source topic.
 *
 * Redrive guarantee (also in the --help text): the .dlq topic is read by a consumer group of its
 * own ("dronepipe-redrive-<dlq>", one per --filter-error). Records are handled in batches; for
 * each batch, per partition, an intent is committed first (offset = first record of the batch,
 * metadata "dp-redrive-pending:<first>:<last>:<ms>"), then the records are produced (idempotent
 * producer, acks=all) and every acknowledgement awaited, then the position after the batch is
 * committed. A run that starts on a pending intent (the previous one died between the intent and
 * the final commit) reads the target topics from <ms> - 10 s and does not produce again any record
 * whose dp_redriven_from (<dlq>:<partition>:<offset>) is already there. So within one redrive
 * group a dead letter is produced to its source at most once, and a completed run has produced
 * every selected one. Each redriven record keeps its key, value and non-dp_* headers (event_id
 * included: consumers are idempotent on it), plus dp_redriven_from and dp_redriven_at. */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "kafka.h"
#include "mem.h"
#include "ops.h"
#include "progress.h"
#include "reader.h"
#include "timefmt.h"

static const char dlq_usage[] =
    "usage: dronepipe dlq list|show|redrive --topic T.dlq [--filter-error E] [--limit N]\n"
    "                 [--json]\n"
    "  list      one line per dead-lettered record: where it came from and why it died\n"
    "  show      the records in full: headers, and the value decoded from Avro (or marked\n"
    "            undecodable, with its bytes in hex)\n"
    "  redrive   produce the selected records again to their source topic (dp_source_topic),\n"
    "            with their original key, value and headers minus dp_*, plus\n"
    "            dp_redriven_from=<dlq>:<partition>:<offset> and dp_redriven_at=<ms>\n"
    "options:\n"
    "  --topic T.dlq       the dead-letter topic (required)\n"
    "  --filter-error E    only records whose dp_error contains E or whose dp_error_class is E\n"
    "  --limit N           at most N records shown / redriven\n"
    "  --offset P:O        show: only the record at partition P, offset O\n"
    "  --json              JSON lines (list, show) / a JSON summary (redrive)\n"
    "redrive options:\n"
    "  --group G           progress group (default dronepipe-redrive-<dlq>[-f-<filter>])\n"
    "  --batch N           records per produce+commit round (default 100)\n"
    "  --rate R            at most R records per second (default unlimited)\n"
    "redrive guarantee: progress is committed in the group after the broker acknowledged\n"
    "(acks=all) every record of a batch; an intent committed before each batch lets a re-run\n"
    "after a crash find what the crashed run already produced (by dp_redriven_from on the target\n"
    "topic) and not produce it again. So, per group, each dead letter is redriven at most once,\n"
    "and exactly once when a run completes; re-running is always safe. Records dead-lettered\n"
    "while a run is going are left for the next run. Runs of different groups (other\n"
    "--filter-error or --group) do not see each other's progress: a record both select can be\n"
    "redriven by each; it keeps its event_id, on which every dronepipe consumer is idempotent.\n"
    "Exit: 0 ok, 1 bad arguments or unknown topic, 2 Kafka unreachable or a produce/commit\n"
    "failed (re-run to continue).\n";

#define PENDING_PREFIX "dp-redrive-pending:"

bool ops_dlq_selected(const char *filter, const char *error, const char *error_class)
{
	if (!filter || !*filter)
		return true;
	return (error && strstr(error, filter)) ||
	       (error_class && strcmp(error_class, filter) == 0);
}

void ops_dlq_group_name(const char *topic, const char *filter, char *buf, size_t size)
{
	int n = snprintf(buf, size, "dronepipe-redrive-%s", topic);
	if (!filter || !*filter || n < 0 || (size_t)n >= size)
		return;
	snprintf(buf + n, size - (size_t)n, "-f-%s", filter);
	for (char *c = buf + n; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '-')
			*c = '_';
}

int ops_dlq_parse_args(int argc, char **argv, ops_dlq_args_t *a, char *err, size_t err_size)
{
	static const struct option longopts[] = {
	    {"topic", required_argument, NULL, 't'},
	    {"filter-error", required_argument, NULL, 'e'},
	    {"limit", required_argument, NULL, 'n'},
	    {"offset", required_argument, NULL, 'o'},
	    {"group", required_argument, NULL, 'g'},
	    {"batch", required_argument, NULL, 'b'},
	    {"rate", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"fault-exit-after-ack", required_argument, NULL, 'F'},
	    {NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->limit = -1;
	a->batch = 100;
	int c;
	optind = 0;
	opterr = 0;
	int li = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, &li)) != -1) {
		char *end = NULL;
		long long v = 0;
		if (optarg && (c == 'n' || c == 'b' || c == 'r' || c == 'F')) {
			v = strtoll(optarg, &end, 10);
			if (end == optarg || *end || v < (c == 'r' ? 0 : 1) || v > 1000000000LL) {
				snprintf(err, err_size, "--%s must be a %s integer, got '%s'",
				         longopts[li].name, c == 'r' ? "non-negative" : "positive",
				         optarg);
				return 1;
			}
		}
		switch (c) {
		case 't':
			a->topic = optarg;
			break;
		case 'e':
			a->filter = optarg;
			break;
		case 'n':
			a->limit = v;
			break;
		case 'o':
			if (!ops_parse_partition_offset(optarg, &a->partition, &a->offset)) {
				snprintf(err, err_size, "--offset '%s' must be PARTITION:OFFSET",
				         optarg);
				return 1;
			}
			a->has_offset = true;
			break;
		case 'g':
			a->group = optarg;
			break;
		case 'b':
			a->batch = v > 10000 ? 10000 : (int)v;
			break;
		case 'r':
			a->rate = v;
			break;
		case 'F':
			a->fault_exit_after_ack = (int)v;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			a->help = true;
			return 0;
		case ':':
			snprintf(err, err_size, "%s needs a value", argv[optind - 1]);
			return 1;
		default:
			snprintf(err, err_size, "unknown option %s", argv[optind - 1]);
			return 1;
		}
	}
	if (optind >= argc) {
		snprintf(err, err_size, "give an action: list, show or redrive");
		return 1;
	}
	a->action = argv[optind];
	if (strcmp(a->action, "list") != 0 && strcmp(a->action, "show") != 0 &&
	    strcmp(a->action, "redrive") != 0) {
		snprintf(err, err_size, "unknown action '%s' (list, show or redrive)", a->action);
		return 1;
	}
	if (optind + 1 < argc) {
		snprintf(err, err_size, "unexpected argument '%s'", argv[optind + 1]);
		return 1;
	}
	if (!a->topic || !*a->topic) {
		snprintf(err, err_size, "--topic T.dlq is required");
		return 1;
	}
	if (a->has_offset && strcmp(a->action, "show") != 0) {
		snprintf(err, err_size, "--offset is for show only");
		return 1;
	}
	return 0;
}

/* ---- list / show ---- */

static json_t *dead_letter_json(ops_t *ops, const pl_record_t *r, bool full)
{
	char buf[1024];
	json_t *doc =
	    json_pack("{s:i,s:I,s:s%}", "partition", (int)r->partition, "offset",
	              (json_int_t)r->offset, "key", r->key ? (const char *)r->key : "", r->key_len);
	static const char *const fields[][2] = {
	    {"dp_error", "error"},
	    {"dp_error_class", "error_class"},
	    {"dp_source_topic", "source_topic"},
	    {"dp_source_partition", "source_partition"},
	    {"dp_source_offset", "source_offset"},
	    {"dp_group", "group"},
	    {"dp_dead_at", "dead_at"},
	    {"dp_redriven_from", "redriven_from"},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (pl_record_header(r, fields[i][0], buf, sizeof(buf)))
			json_object_set_new(doc, fields[i][1], json_string(buf));
	if (!full)
		return doc;
	char when[32];
	pl_time_format(r->timestamp_ms, when);
	json_object_set_new(doc, "timestamp", json_string(when));
	ops_record_body(ops, r, doc, "value_error");
	return doc;
}

static const char *jstr(const json_t *doc, const char *k)
{
	const char *s = json_string_value(json_object_get(doc, k));
	return s ? s : "-";
}

static void print_list_line(const json_t *d)
{
	char when[32] = "-";
	const char *at = json_string_value(json_object_get(d, "dead_at"));
	if (at)
		pl_time_format(strtoll(at, NULL, 10), when);
	printf("%d:%-8lld %-24s %-10s %s[%s]@%s key=%s: %s\n",
	       (int)json_integer_value(json_object_get(d, "partition")),
	       (long long)json_integer_value(json_object_get(d, "offset")), when,
	       jstr(d, "error_class"), jstr(d, "source_topic"), jstr(d, "source_partition"),
	       jstr(d, "source_offset"), jstr(d, "key"), jstr(d, "error"));
}

static void print_show(const json_t *d)
{
	printf("--- %s %d:%lld\n", "record",
	       (int)json_integer_value(json_object_get(d, "partition")),
	       (long long)json_integer_value(json_object_get(d, "offset")));
	printf("error:       %s (%s)\n", jstr(d, "error"), jstr(d, "error_class"));
	printf("source:      %s [%s] offset %s, group %s\n", jstr(d, "source_topic"),
	       jstr(d, "source_partition"), jstr(d, "source_offset"), jstr(d, "group"));
	printf("dead at:     %s   key: %s\n", jstr(d, "timestamp"), jstr(d, "key"));
	printf("headers:    ");
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(d, "headers"), k, v)
	    printf(" %s=%s", k, json_string_value(v));
	printf("\n");
	if (json_object_get(d, "value")) {
		char *val =
		    json_dumps(json_object_get(d, "value"), JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("value (%s):\n%s\n", jstr(d, "type"), val);
		free(val);
	} else {
		printf("value:       %s, %lld bytes: %s\n", jstr(d, "value_error"),
		       (long long)json_integer_value(json_object_get(d, "value_len")),
		       jstr(d, "value_hex"));
	}
}

static int dlq_read(ops_t *ops, const ops_dlq_args_t *a)
{
	bool show = strcmp(a->action, "show") == 0;
	pl_reader_opts_t ro = {.start = PL_READER_BEGINNING, .stop_at_end = true};
	if (a->has_offset) {
		ro.start = PL_READER_OFFSET;
		ro.one_partition = true;
		ro.partition = a->partition;
		ro.start_partition = a->partition;
		ro.start_offset = a->offset;
	}
	pl_reader_t *reader = NULL;
	char err[512];
	pl_err_t e = pl_reader_new(ops->cfg, a->topic, &ro, 10000, &reader, err, sizeof(err));
	if (e != PL_OK) {
		fprintf(stderr, "dronepipe dlq: %s\n", err);
		return e == PL_ERR_NOT_FOUND ? 1 : 2;
	}
	if (!show && !a->json)
		printf("%-10s %-24s %-10s %s\n", "P:OFFSET", "DEAD AT", "CLASS",
		       "SOURCE[PARTITION]@OFFSET KEY: ERROR");
	long long printed = 0, seen = 0;
	while (a->limit < 0 || printed < a->limit) {
		pl_record_t r;
		e = pl_reader_next(reader, &r, 5000);
		if (e == PL_ERR_NOT_FOUND)
			break;
		if (e == PL_ERR_TIMEOUT) {
			fprintf(stderr, "dronepipe dlq: no record within 5 s, stopping\n");
			break;
		}
		seen++;
		if (a->has_offset && r.offset != a->offset)
			continue;
		char error[1024], cls[64];
		if (!ops_dlq_selected(a->filter,
		                      pl_record_header(&r, "dp_error", error, sizeof(error)),
		                      pl_record_header(&r, "dp_error_class", cls, sizeof(cls))))
			continue;
		json_t *doc = dead_letter_json(ops, &r, show);
		if (a->json) {
			char *line = json_dumps(doc, JSON_COMPACT);
			puts(line);
			free(line);
		} else if (show) {
			print_show(doc);
		} else {
			print_list_line(doc);
		}
		json_decref(doc);
		printed++;
		if (a->has_offset)
			break;
	}
	if (!a->json)
		printf("%lld record(s) %s of %lld read from %s\n", printed,
		       a->filter ? "matching" : "shown", seen, a->topic);
	pl_reader_destroy(reader);
	if (a->has_offset && printed == 0) {
		fprintf(stderr, "dronepipe dlq: no record at %d:%lld in %s\n", a->partition,
		        (long long)a->offset, a->topic);
		return 1;
	}
	return 0;
}

/* ---- redrive ---- */

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
	char *target; /* dp_source_topic, NULL when missing */
	void *key, *value;
	size_t key_len, value_len;
	pl_header_t headers[PL_MAX_HEADERS];
	size_t header_count;
} letter_t;

static void letter_clear(letter_t *l)
{
	pl_free(l->target);
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

/* dp_redriven_from values of this dlq found on target topics (for pending intents only). */
typedef struct found {
	char **topics;
	size_t ntopics;
	char **coords;
	size_t ncoords, cap;
} found_t;

static pl_err_t scan_target(ops_t *ops, found_t *f, const char *target, const char *dlq,
                            int64_t since_ms, char *err, size_t err_size)
{
	for (size_t i = 0; i < f->ntopics; i++)
		if (strcmp(f->topics[i], target) == 0)
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
	f->topics = pl_realloc(f->topics, (f->ntopics + 1) * sizeof(char *));
	f->topics[f->ntopics++] = pl_strdup(target);
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
	for (size_t i = 0; i < f->ntopics; i++)
		pl_free(f->topics[i]);
	for (size_t i = 0; i < f->ncoords; i++)
		pl_free(f->coords[i]);
	pl_free(f->topics);
	pl_free(f->coords);
}

typedef struct tally {
	int64_t examined, redriven, already, filtered, no_source;
} tally_t;

/* Copies r into l and decides whether to produce it. */
static pl_err_t take_letter(ops_t *ops, const ops_dlq_args_t *a, const pl_record_t *r,
                            const pending_t *pend, found_t *found, int64_t budget, letter_t *l,
                            tally_t *t, char *err, size_t err_size)
{
	char error[1024], cls[64], target[256];
	l->partition = r->partition;
	l->offset = r->offset;
	const char *src = pl_record_header(r, "dp_source_topic", target, sizeof(target));
	if (!ops_dlq_selected(a->filter, pl_record_header(r, "dp_error", error, sizeof(error)),
	                      pl_record_header(r, "dp_error_class", cls, sizeof(cls)))) {
		t->filtered++;
		return PL_OK;
	}
	if (!src || !*src) {
		t->no_source++;
		return PL_OK;
	}
	if (budget <= 0)
		return PL_OK;
	const pending_t *p = &pend[r->partition];
	if (p->first >= 0 && r->offset >= p->first && r->offset <= p->last) {
		pl_err_t e =
		    scan_target(ops, found, src, a->topic, p->at_ms - 10000, err, err_size);
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
	l->target = pl_strdup(src);
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

static pl_err_t produce_batch(pl_producer_t *prod, letter_t *b, size_t n, char *err,
                              size_t err_size)
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
			e = pl_producer_send(prod, b[i].target, b[i].key, b[i].key_len, b[i].value,
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
			snprintf(err, err_size, "produce to %s: %s", b[i].target, pl_err_str(e));
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

static void print_summary(const ops_dlq_args_t *a, const char *group, const tally_t *t, int rc,
                          const char *err)
{
	if (a->json) {
		json_t *doc = json_pack(
		    "{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I}", "topic", a->topic, "group", group, "ok",
		    rc == 0, "examined", (json_int_t)t->examined, "redriven",
		    (json_int_t)t->redriven, "already_redriven", (json_int_t)t->already, "filtered",
		    (json_int_t)t->filtered, "no_source", (json_int_t)t->no_source);
		if (rc != 0)
			json_object_set_new(doc, "error", json_string(err));
		char *line = json_dumps(doc, JSON_COMPACT);
		puts(line);
		free(line);
		json_decref(doc);
		return;
	}
	printf("redrive %s (group %s): %lld examined, %lld redriven, %lld already redriven by an "
	       "interrupted run, %lld not selected by the filter, %lld without dp_source_topic\n",
	       a->topic, group, (long long)t->examined, (long long)t->redriven,
	       (long long)t->already, (long long)t->filtered, (long long)t->no_source);
}

static int dlq_redrive(ops_t *ops, const ops_dlq_args_t *a)
{
	char group[300], err[1024] = "";
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
	pl_err_t e = pl_admin_cursor_new(ops->cfg, group, a->topic, 20000, &cur, err, sizeof(err));
	if (e != PL_OK) {
		rc = e == PL_ERR_NOT_FOUND ? 1 : 2;
		goto out;
	}
	int nparts = pl_admin_cursor_partitions(cur);
	pend = pl_calloc((size_t)nparts, sizeof(*pend));
	for (int p = 0; p < nparts; p++) {
		const char *meta;
		pend[p].first = -1;
		pl_admin_cursor_committed(cur, p, &meta);
		long long f, l, at;
		if (strncmp(meta, PENDING_PREFIX, strlen(PENDING_PREFIX)) == 0 &&
		    sscanf(meta + strlen(PENDING_PREFIX), "%lld:%lld:%lld", &f, &l, &at) == 3)
			pend[p] = (pending_t){f, l, at};
	}
	prod = pl_producer_new(ops->cfg, "dronepipe-redrive", NULL, err, sizeof(err));
	if (!prod)
		goto out;
	ops_progress_t progress;
	ops_progress_init(&progress, stderr, isatty(2), "redrive", pl_admin_cursor_remaining(cur),
	                  pl_now_ms());
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
			e = take_letter(ops, a, &r, pend, &found, budget, &batch[n], &t, err,
			                sizeof(err));
			if (e != PL_OK)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if (commit_batch(cur, batch, n, nparts, true, err, sizeof(err)) != PL_OK ||
		    produce_batch(prod, batch, n, err, sizeof(err)) != PL_OK)
			goto out;
		if (a->fault_exit_after_ack && ++batches >= a->fault_exit_after_ack) {
			fprintf(stderr, "dronepipe dlq: fault injection: exiting after the "
			                "acknowledgements, before the commit\n");
			_exit(9);
		}
		if (commit_batch(cur, batch, n, nparts, false, err, sizeof(err)) != PL_OK)
			goto out;
		for (size_t i = 0; i < n; i++) {
			t.redriven += batch[i].produce;
			letter_clear(&batch[i]);
		}
		t.examined += (int64_t)n;
		ops_progress_update(&progress, t.examined, pl_now_ms());
		if (a->rate > 0) {
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
		        rc == 2 ? " (progress is committed: re-run to continue)" : "");
	if (rc != 1)
		print_summary(a, group, &t, rc, err);
	found_clear(&found);
	pl_free(pend);
	pl_admin_cursor_destroy(cur);
	return rc;
}

int ops_dlq(ops_t *ops, int argc, char **argv)
{
	ops_dlq_args_t a;
	char err[512];
	if (ops_dlq_parse_args(argc, argv, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "dronepipe dlq: %s\n%s", err, dlq_usage);
		return 1;
	}
	if (a.help) {
		fputs(dlq_usage, stdout);
		return 0;
	}
	a.json = a.json || ops->json;
	if (strcmp(a.action, "redrive") == 0)
		return dlq_redrive(ops, &a);
	return dlq_read(ops, &a);
}
