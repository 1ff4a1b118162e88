/* ops.h — the `dronepipe` operator CLI: shared context of its subcommands.
 * Each subcommand is one file: tail.c (tail), and more as they are added. */
#ifndef OPS_H
#define OPS_H

#include <stdbool.h>
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
int ops_tail(ops_t *ops, int argc, char **argv);

/* Parses "2026-11-27T10:00:00Z" or epoch ms; false when neither. */
bool ops_parse_time(const char *text, int64_t *epoch_ms);
/* Parses "P:O"; false when malformed. */
bool ops_parse_partition_offset(const char *text, int32_t *partition, int64_t *offset);

#endif
