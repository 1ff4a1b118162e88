/* dlq.c — `dronepipe dlq list|show|redrive`: dead-lettered records with their reasons (list,
 * show), the arguments of all three, and the dispatch to redrive.c. Everything a dead letter
 * carries (key, headers, dp_error) is hostile text: printed through escape.h, for a terminal or
 * as JSON. */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "kafka.h"
#include "mem.h"
#include "ops.h"
#include "reader.h"
#include "timefmt.h"

static const char dlq_usage[] =
    "usage: dronepipe dlq list|show|redrive --topic T.dlq [--filter-error E] [--limit N]\n"
    "                 [--dry-run] [--json]\n"
    "  list      one line per dead-lettered record: where it came from and why it died\n"
    "  show      the records in full: headers, and the value decoded from Avro (or marked\n"
    "            undecodable, with its bytes in hex)\n"
    "  redrive   produce the selected records again to the DLQ's source topic (T), with\n"
    "            their original key, value and headers minus dp_*, plus\n"
    "            dp_redriven_from=<dlq>:<partition>:<offset> and dp_redriven_at=<ms>\n"
    "options:\n"
    "  --topic T.dlq       the dead-letter topic (required)\n"
    "  --filter-error E    only records whose dp_error contains E or whose dp_error_class is E\n"
    "  --limit N           at most N records shown / redriven\n"
    "  --offset P:O        show: only the record at partition P, offset O\n"
    "  --json              JSON lines (list, show) / a JSON summary (redrive)\n"
    "redrive options:\n"
    "  --dry-run           print what would be sent where (counts per target, skipped records\n"
    "                      with the reason); produces nothing, commits nothing\n"
    "  --group G           progress group (default dronepipe-redrive-<dlq>[-f-<filter>])\n"
    "  --batch N           records per produce+commit round (default 100)\n"
    "  --rate R            at most R records per second (default unlimited)\n"
    "redrive writes only into the pipeline: T.dlq must be one of the pipeline's dead-letter\n"
    "topics (scripts/topics.txt, built into this binary) and the target is always T. A dead\n"
    "letter whose dp_source_topic header is not exactly T (missing, or naming any other\n"
    "topic) is skipped: counted and listed with the reason, never produced anywhere.\n"
    "redrive guarantee: progress is committed in the group after the broker acknowledged\n"
    "(acks=all) every record of a batch; an intent committed before each batch lets a re-run\n"
    "after a crash find what the crashed run already produced (by dp_redriven_from on the target\n"
    "topic) and not produce it again. So, per group, each dead letter is redriven at most once,\n"
    "and exactly once when a run completes; re-running is always safe. Records dead-lettered\n"
    "while a run is going are left for the next run. Runs of different groups (other\n"
    "--filter-error or --group) do not see each other's progress: a record both select can be\n"
    "redriven by each; it keeps its event_id, on which every dronepipe consumer is idempotent.\n"
    "Exit: 0 ok, 1 bad arguments, unknown topic or not a dead-letter topic of the pipeline,\n"
    "2 Kafka unreachable or a produce/commit failed (re-run to continue).\n";

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
	    {"dry-run", no_argument, NULL, 'd'},
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
		case 'd':
			a->dry_run = true;
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
	if (a->dry_run && strcmp(a->action, "redrive") != 0) {
		snprintf(err, err_size,
		         "--dry-run is for redrive only (list and show change nothing)");
		return 1;
	}
	if (a->has_offset && strcmp(a->action, "show") != 0) {
		snprintf(err, err_size, "--offset is for show only");
		return 1;
	}
	return 0;
}

/* ---- list / show ---- */

/* Header -> JSON field of a dead letter. */
static const char *const dp_fields[][2] = {
    {"dp_error", "error"},
    {"dp_error_class", "error_class"},
    {"dp_source_topic", "source_topic"},
    {"dp_source_partition", "source_partition"},
    {"dp_source_offset", "source_offset"},
    {"dp_group", "group"},
    {"dp_dead_at", "dead_at"},
    {"dp_redriven_from", "redriven_from"},
};

static json_t *dead_letter_json(ops_t *ops, const pl_record_t *r, bool full)
{
	json_t *doc =
	    json_pack("{s:i,s:I}", "partition", (int)r->partition, "offset", (json_int_t)r->offset);
	ops_record_key(r, doc);
	for (size_t i = 0; i < sizeof(dp_fields) / sizeof(dp_fields[0]); i++) {
		size_t n;
		const void *v = ops_header_bytes(r, dp_fields[i][0], &n);
		if (v)
			json_object_set_new(doc, dp_fields[i][1], ops_json_text(v, n));
	}
	if (!full)
		return doc;
	char when[32];
	pl_time_format(r->timestamp_ms, when);
	json_object_set_new(doc, "timestamp", json_string(when));
	ops_record_body(ops, r, doc, "value_error");
	return doc;
}

/* Appends the header called name, escaped and cut after max bytes, or "-". */
static void put_header(ops_buf_t *b, const pl_record_t *r, const char *name, size_t max)
{
	size_t n;
	const void *v = ops_header_bytes(r, name, &n);
	if (v)
		ops_escape_append(b, v, n, max);
	else
		ops_buf_append(b, "-", 1);
}

static void put_key(ops_buf_t *b, const pl_record_t *r, size_t max)
{
	if (r->key)
		ops_escape_append(b, r->key, r->key_len, max);
	else
		ops_buf_append(b, "-", 1);
}

static void print_list_line(const pl_record_t *r)
{
	char when[32] = "", at[32];
	if (pl_record_header(r, "dp_dead_at", at, sizeof(at)))
		pl_time_format(strtoll(at, NULL, 10), when);
	ops_buf_t b = {0};
	ops_buf_printf(&b, "%d:%-8lld %-24s ", (int)r->partition, (long long)r->offset,
	               when[0] ? when : "-");
	size_t cls = b.len;
	put_header(&b, r, "dp_error_class", 40);
	while (b.len - cls < 10)
		ops_buf_append(&b, " ", 1);
	ops_buf_append(&b, " ", 1);
	put_header(&b, r, "dp_source_topic", 256);
	ops_buf_append(&b, "[", 1);
	put_header(&b, r, "dp_source_partition", 16);
	ops_buf_append(&b, "]@", 2);
	put_header(&b, r, "dp_source_offset", 24);
	ops_buf_append(&b, " key=", 5);
	put_key(&b, r, 256);
	ops_buf_append(&b, ": ", 2);
	put_header(&b, r, "dp_error", 1024);
	puts(b.data);
	pl_free(b.data);
}

/* show prints whole fields up to this many bytes each (then says it cut them). */
#define SHOW_MAX 65536

static void print_show(ops_t *ops, const pl_record_t *r)
{
	ops_buf_t b = {0};
	char when[32];
	pl_time_format(r->timestamp_ms, when);
	ops_buf_printf(&b, "--- record %d:%lld\nerror:       ", (int)r->partition,
	               (long long)r->offset);
	put_header(&b, r, "dp_error", SHOW_MAX);
	ops_buf_append(&b, " (", 2);
	put_header(&b, r, "dp_error_class", 256);
	ops_buf_append(&b, ")\nsource:      ", 14);
	put_header(&b, r, "dp_source_topic", 1024);
	ops_buf_append(&b, " [", 2);
	put_header(&b, r, "dp_source_partition", 64);
	ops_buf_append(&b, "] offset ", 9);
	put_header(&b, r, "dp_source_offset", 64);
	ops_buf_append(&b, ", group ", 8);
	put_header(&b, r, "dp_group", 1024);
	ops_buf_printf(&b, "\ndead at:     %s   key: ", when[0] ? when : "-");
	put_key(&b, r, SHOW_MAX);
	ops_buf_append(&b, "\nheaders:    ", 13);
	for (size_t i = 0; i < r->header_count; i++) {
		ops_buf_append(&b, " ", 1);
		ops_escape_append(&b, r->headers[i].name, strlen(r->headers[i].name), 256);
		ops_buf_append(&b, "=", 1);
		ops_escape_append(&b, r->headers[i].value, r->headers[i].len, SHOW_MAX);
	}
	puts(b.data);
	pl_free(b.data);
	json_t *doc = json_object();
	ops_record_body(ops, r, doc, "value_error");
	json_t *value = json_object_get(doc, "value");
	const char *type = json_string_value(json_object_get(doc, "type"));
	if (value) {
		/* ASCII only: a decoded string cannot carry a control character to the terminal */
		char *val = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
		printf("value (%s):\n%s\n", type ? type : "-", val ? val : "-");
		free(val);
	} else {
		char *why =
		    ops_escape_str(json_string_value(json_object_get(doc, "value_error")), 1024);
		printf("value:       %s, %lld bytes: %s\n", why,
		       (long long)json_integer_value(json_object_get(doc, "value_len")),
		       json_string_value(json_object_get(doc, "value_hex")));
		pl_free(why);
	}
	json_decref(doc);
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
		if (a->json) {
			json_t *doc = dead_letter_json(ops, &r, show);
			ops_json_print(stdout, doc);
			json_decref(doc);
		} else if (show) {
			print_show(ops, &r);
		} else {
			print_list_line(&r);
		}
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
		return ops_dlq_redrive(ops, &a);
	return dlq_read(ops, &a);
}
