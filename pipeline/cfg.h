/* cfg.h — configuration from DP_* environment variables, described by tables.
 *
 * Each binary declares a table of options (name, type, default, bounds, required, secret, help);
 * pl_cfg_load reads them all once, reports every error at once, and is then read-only.
 * `--help` prints the tables (secrets show as ***). DP_KAFKA_PROP_<name> variables pass librdkafka
 * properties through: DP_KAFKA_PROP_linger_ms=5 -> linger.ms=5 (underscores become dots).
 * Ownership: pl_cfg_t owns every string it returns. Thread rules: after load, read-only and safe
 * to share. */
#ifndef PL_CFG_H
#define PL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum pl_cfg_type {
	PL_CFG_STR,
	PL_CFG_INT,  /* signed 64-bit, bounds checked */
	PL_CFG_BOOL, /* true/false/1/0/yes/no/on/off */
	PL_CFG_ENUM, /* one of a '|'-separated list in `choices` */
} pl_cfg_type_t;

typedef struct pl_cfg_opt {
	const char *name; /* "DP_HTTP_PORT"; NULL ends a table */
	pl_cfg_type_t type;
	const char *def; /* default as text, NULL = none */
	int64_t min,
	    max; /* PL_CFG_INT bounds (inclusive); for PL_CFG_STR: length bounds, 0/0 = any */
	bool required;
	bool secret;
	const char *choices; /* PL_CFG_ENUM */
	const char *help;
} pl_cfg_opt_t;

typedef struct pl_cfg pl_cfg_t;

#define PL_CFG_KAFKA_PROP_PREFIX "DP_KAFKA_PROP_"

/* Options every binary has (Kafka brokers, log level, HTTP address and port, ...), then the
 * binary's own table. `tables` is a NULL-terminated array of tables. */
extern const pl_cfg_opt_t pl_cfg_common[];

/* Loads from `environ` (envp may be NULL for the process environment). Handles --help and
 * --version in argv itself. On success returns the config. On failure prints every error (one
 * per line, to `err`) and returns NULL with *exit_code = 1; after --help returns NULL with
 * *exit_code = 0. */
pl_cfg_t *pl_cfg_load(const char *prog, const pl_cfg_opt_t *const *tables, int argc, char **argv,
                      char **envp, FILE *err, int *exit_code);
void pl_cfg_destroy(pl_cfg_t *cfg);

/* Value getters. Asking for a name that is not in the tables aborts (a programming error). */
const char *pl_cfg_str(const pl_cfg_t *cfg, const char *name); /* NULL when unset and no default */
int64_t pl_cfg_int(const pl_cfg_t *cfg, const char *name);
bool pl_cfg_bool(const pl_cfg_t *cfg, const char *name);

/* The librdkafka pass-through properties, in environment order. */
size_t pl_cfg_kafka_prop_count(const pl_cfg_t *cfg);
void pl_cfg_kafka_prop(const pl_cfg_t *cfg, size_t i, const char **key, const char **value);

/* Prints the option tables (name, type, default, bounds, required, help) to out. */
void pl_cfg_print_help(const char *prog, const pl_cfg_opt_t *const *tables, FILE *out);

#endif
