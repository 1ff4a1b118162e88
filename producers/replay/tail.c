/* tail.c — `dronepipe tail`: records of a topic as JSON lines, decoded by fingerprint.
 * A record that does not decode is printed with "error" and its bytes in hex, and the tail
 * goes on. Keys and headers that are not UTF-8 stay valid JSON (escape.h), with their exact bytes
 * in "key_hex" / "headers_hex". */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "mem.h"
#include "ops.h"
#include "reader.h"
#include "timefmt.h"

static const char tail_usage[] =
    "usage: dronepipe tail TOPIC [options]\n"
    "  --from-beginning     start at the first record (default: only new records)\n"
    "  --from-time T        start at the first record at/after T (ISO-8601 or epoch ms)\n"
    "  --from-offset P:O    start partition P at offset O (others from the beginning)\n"
    "  --key K              only records with this key\n"
    "  --limit N            stop after N records printed\n"
    "  --follow             keep waiting for new records (default: stop at the end\n"
    "                       when a start was given)\n"
    "  --timeout-ms MS      stop after MS without a record (default: 0 = never when following)\n";

bool ops_parse_time(const char *text, int64_t *epoch_ms)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	if (*text && !*end && v >= 0) {
		*epoch_ms = v;
		return true;
	}
	return pl_time_parse(text, epoch_ms) == PL_OK;
}

bool ops_parse_partition_offset(const char *text, int32_t *partition, int64_t *offset)
{
	char *end;
	long p = strtol(text, &end, 10);
	if (end == text || *end != ':' || p < 0 || p > 100000)
		return false;
	const char *o = end + 1;
	long long off = strtoll(o, &end, 10);
	if (end == o || *end || off < 0)
		return false;
	*partition = (int32_t)p;
	*offset = off;
	return true;
}

const void *ops_header_bytes(const pl_record_t *r, const char *name, size_t *len)
{
	for (size_t i = 0; i < r->header_count; i++)
		if (strcmp(r->headers[i].name, name) == 0) {
			*len = r->headers[i].len;
			return r->headers[i].value ? r->headers[i].value : "";
		}
	*len = 0;
	return NULL;
}

static char *hex_of(const void *bytes, size_t n)
{
	char *hex = pl_malloc(2 * n + 1);
	for (size_t i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", ((const unsigned char *)bytes)[i]);
	hex[2 * n] = '\0';
	return hex;
}

void ops_record_key(const pl_record_t *r, json_t *doc)
{
	json_object_set_new(doc, "key", ops_json_text(r->key ? r->key : "", r->key_len));
	if (r->key && !ops_utf8_valid(r->key, r->key_len)) {
		char *hex = hex_of(r->key, r->key_len);
		json_object_set_new(doc, "key_hex", json_string(hex));
		pl_free(hex);
	}
}

void ops_record_body(ops_t *ops, const pl_record_t *r, json_t *doc, const char *error_key)
{
	/* Header names and values are whatever a producer sent: not UTF-8 maybe (replaced, see
	 * escape.h), so that the line stays JSON; "headers_hex" keeps such values exactly. */
	json_t *hdrs = json_object(), *hex = NULL;
	for (size_t i = 0; i < r->header_count; i++) {
		json_t *name = ops_json_str(r->headers[i].name);
		const char *v = r->headers[i].value ? r->headers[i].value : "";
		json_object_set_new(hdrs, json_string_value(name),
		                    ops_json_text(v, r->headers[i].len));
		if (!ops_utf8_valid(v, r->headers[i].len)) {
			char *h = hex_of(v, r->headers[i].len);
			if (!hex)
				hex = json_object();
			json_object_set_new(hex, json_string_value(name), json_string(h));
			pl_free(h);
		}
		json_decref(name);
	}
	json_object_set_new(doc, "headers", hdrs);
	if (hex)
		json_object_set_new(doc, "headers_hex", hex);
	json_t *value = NULL;
	const pl_avro_schema_t *schema = NULL;
	char err[256];
	if (pl_avro_decode(ops->registry, r->value, r->value_len, &value, &schema, err,
	                   sizeof(err)) == PL_OK) {
		json_object_set_new(doc, "type", json_string(pl_avro_schema_name(schema)));
		json_object_set_new(doc, "value", value);
	} else {
		char *why = pl_asprintf("undecodable: %s", err);
		json_object_set_new(doc, error_key, ops_json_str(why));
		pl_free(why);
		size_t n = r->value_len < 512 ? r->value_len : 512;
		char *hex = hex_of(r->value ? r->value : "", r->value ? n : 0);
		json_object_set_new(doc, "value_hex", json_string(hex));
		json_object_set_new(doc, "value_len", json_integer((json_int_t)r->value_len));
		pl_free(hex);
	}
}

static json_t *record_json(ops_t *ops, const pl_record_t *r)
{
	char when[32];
	pl_time_format(r->timestamp_ms, when);
	json_t *doc =
	    json_pack("{s:s, s:i, s:I, s:s}", "topic", r->topic, "partition", (int)r->partition,
	              "offset", (json_int_t)r->offset, "timestamp", when);
	ops_record_key(r, doc);
	ops_record_body(ops, r, doc, "error");
	return doc;
}

int ops_tail(ops_t *ops, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"from-beginning", no_argument, NULL, 'b'},
	    {"from-time", required_argument, NULL, 't'},
	    {"from-offset", required_argument, NULL, 'o'},
	    {"key", required_argument, NULL, 'k'},
	    {"limit", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'f'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	pl_reader_opts_t ro = {.start = PL_READER_END};
	bool follow = false, started = false;
	const char *key = NULL;
	long long limit = -1, timeout_ms = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'b':
			ro.start = PL_READER_BEGINNING;
			started = true;
			break;
		case 't':
			if (!ops_parse_time(optarg, &ro.start_time_ms)) {
				fprintf(stderr,
				        "dronepipe tail: --from-time '%s' is not an "
				        "ISO-8601 time or epoch milliseconds\n",
				        optarg);
				return 1;
			}
			ro.start = PL_READER_TIME;
			started = true;
			break;
		case 'o':
			if (!ops_parse_partition_offset(optarg, &ro.start_partition,
			                                &ro.start_offset)) {
				fprintf(stderr,
				        "dronepipe tail: --from-offset '%s' must be "
				        "PARTITION:OFFSET, e.g. 3:1200\n",
				        optarg);
				return 1;
			}
			ro.start = PL_READER_OFFSET;
			started = true;
			break;
		case 'k':
			key = optarg;
			break;
		case 'n':
			limit = strtoll(optarg, &end, 10);
			if (*end || limit < 1) {
				fprintf(stderr,
				        "dronepipe tail: --limit must be a positive integer\n");
				return 1;
			}
			break;
		case 'f':
			follow = true;
			break;
		case 'T':
			timeout_ms = strtoll(optarg, &end, 10);
			if (*end || timeout_ms < 0) {
				fprintf(stderr, "dronepipe tail: --timeout-ms must be >= 0\n");
				return 1;
			}
			break;
		case 'h':
			fputs(tail_usage, stdout);
			return 0;
		default:
			fputs(tail_usage, stderr);
			return 1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "dronepipe tail: give exactly one TOPIC\n%s", tail_usage);
		return 1;
	}
	const char *topic = argv[optind];
	ro.stop_at_end = started && !follow;
	pl_reader_t *reader = NULL;
	char err[512];
	pl_err_t e = pl_reader_new(ops->cfg, topic, &ro, 10000, &reader, err, sizeof(err));
	if (e != PL_OK) {
		fprintf(stderr, "dronepipe tail: %s\n", err);
		return 2;
	}
	long long printed = 0;
	int64_t idle_since = pl_now_ms();
	while (limit < 0 || printed < limit) {
		pl_record_t r;
		e = pl_reader_next(reader, &r, 200);
		if (e == PL_ERR_NOT_FOUND)
			break;
		if (e == PL_ERR_TIMEOUT) {
			if (timeout_ms > 0 && pl_now_ms() - idle_since >= timeout_ms)
				break;
			continue;
		}
		idle_since = pl_now_ms();
		if (key && (r.key_len != strlen(key) || memcmp(r.key, key, r.key_len) != 0))
			continue;
		json_t *doc = record_json(ops, &r);
		ops_json_print(stdout, doc);
		fflush(stdout);
		json_decref(doc);
		printed++;
	}
	pl_reader_destroy(reader);
	return 0;
}
