/* ops.h — the `dronepipe` operator CLI: shared context of its subcommands.
 * Each subcommand is one file: tail.c (tail), topics.c (topics), replay.c (replay, with the pure
 * plan in plan.c), dlq.c (dlq list|show, and the arguments of redrive), redrive.c (dlq redrive);
 * progress.c draws progress lines; escape.c makes text from records and brokers safe to print.
 * Thread rules: the CLI is single-threaded (the producer's delivery reports aside). */
#ifndef OPS_H
#define OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>

#include "avro.h"
#include "cfg.h"

typedef struct ops {
	pl_cfg_t *cfg;
	pl_avro_registry_t *registry;
	bool json; /* --json: machine-readable output */
} ops_t;

/* Subcommands: argv[0] is the subcommand name. Return the process exit code
 * (0 ok, 1 bad arguments, 2 runtime failure such as an unreachable broker). */
/* Adds a record's "headers" and its value to doc: "type" + "value" (decoded by fingerprint), or,
 * for bytes that do not decode, error_key ("undecodable: ..."), "value_hex" (first 512 bytes) and
 * "value_len". Borrows everything. */
struct pl_record;
void ops_record_body(ops_t *ops, const struct pl_record *r, json_t *doc, const char *error_key);
/* Sets doc's "key" (invalid UTF-8 replaced, see escape.h) and, when the key is not UTF-8, its
 * exact bytes as "key_hex". */
void ops_record_key(const struct pl_record *r, json_t *doc);
/* The bytes of r's first header called name (len set), NULL when it has none. */
const void *ops_header_bytes(const struct pl_record *r, const char *name, size_t *len);

int ops_tail(ops_t *ops, int argc, char **argv);
int ops_topics(ops_t *ops, int argc, char **argv);
/* replay also exits 3 when it refuses because the group has active members. */
int ops_replay(ops_t *ops, int argc, char **argv);
int ops_dlq(ops_t *ops, int argc, char **argv);

/* `dlq` arguments. Strings point into argv (borrowed). */
typedef struct ops_dlq_args {
	const char *action; /* "list", "show", "redrive" */
	const char *topic;  /* the .dlq topic */
	const char *filter; /* --filter-error: substring of dp_error, or equal to dp_error_class */
	const char *group; /* --group: redrive progress group (default derived from topic+filter) */
	int64_t limit;     /* --limit: records shown / redriven; -1 = all */
	int batch;         /* --batch: records per produce+commit round (default 100) */
	int64_t rate;      /* --rate: records per second, 0 = unlimited */
	bool has_offset;   /* --offset P:O (show one record) */
	int32_t partition;
	int64_t offset;
	bool dry_run; /* --dry-run (redrive): report what would be sent where, change nothing */
	int fault_exit_after_ack; /* test hook: _exit(9) after N acknowledged batches */
	bool json;
	bool help;
} ops_dlq_args_t;

/* Parses `dlq ACTION ...` (argv[0] = "dlq"). 0 on success (check help), 1 + err when bad. */
int ops_dlq_parse_args(int argc, char **argv, ops_dlq_args_t *args, char *err, size_t err_size);
/* True when a dead letter with this dp_error / dp_error_class passes --filter-error (NULL = all).
 */
bool ops_dlq_selected(const char *filter, const char *error, const char *error_class);
/* The default redrive group: "dronepipe-redrive-<topic>", plus "-f-<filter>" (characters other
 * than [A-Za-z0-9._-] as '_') when filtered. */
void ops_dlq_group_name(const char *topic, const char *filter, char *buf, size_t size);

/* replay.c: "client (host h, member m), ..." for the members of g. Client ids are chosen by
 * whoever joined the group: each text is escaped (escape.h) and cut after OPS_MEMBER_TEXT_MAX
 * bytes (marked "...(truncated, N bytes)"; the whole ids are in `topics --json --group G`), and
 * the text grows with them. Caller frees (pl_free). */
#define OPS_MEMBER_TEXT_MAX 256
struct pl_admin_group;
char *ops_members_text(const struct pl_admin_group *g);

/* redrive.c: the redrive proper (args already parsed). */
int ops_dlq_redrive(ops_t *ops, const ops_dlq_args_t *args);
/* The topic a redrive of dlq writes to: dlq minus ".dlq", when both are topics of the pipeline
 * (scripts/topics.txt, embedded at build time). false + err naming the problem and the allowed
 * dead-letter topics otherwise. */
bool ops_redrive_target(const char *dlq, char *target, size_t target_size, char *err,
                        size_t err_size);

/* Parses "2026-11-27T10:00:00Z" or epoch ms; false when neither. */
bool ops_parse_time(const char *text, int64_t *epoch_ms);
/* Parses "P:O"; false when malformed. */
bool ops_parse_partition_offset(const char *text, int32_t *partition, int64_t *offset);

#endif
