/* avro_oracle.h — for the tests only: a value's Avro single-object encoding written by Apache
 * avro-c through its generic values, the reference that pl_avro_encode must match byte for byte.
 * The product does not link avro-c; test_avro and fuzz_avro do (Makefile, scripts/fuzz.sh).
 *
 * The JSON mapping (union branch choice, defaults of missing fields) is avro.h's; the bytes are
 * avro-c's. Thread rules: not thread-safe (a per-process cache of avro-c schema classes, keyed
 * by fingerprint; freed by avro_oracle_reset). */
#ifndef TESTS_AVRO_ORACLE_H
#define TESTS_AVRO_ORACLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro.h"

/* True + *out (malloc'd, caller frees with free) when avro-c could write value; false when the
 * value does not fit the schema or avro-c failed (the reason in errstr). */
bool avro_oracle_encode(const pl_avro_schema_t *schema, const json_t *value, uint8_t **out,
                        size_t *len, char *errstr, size_t errstr_size);
/* Frees the cached avro-c classes. */
void avro_oracle_reset(void);

#endif
