/* avro.h — Avro codec for dronepipe events: schemas embedded at build time, single-object
 * encoding, resolution of older writer schemas, safe decoding of untrusted bytes.
 *
 * In-memory form of an event is a jansson object (json_t). Mapping (both directions):
 *   record -> object (field name -> value)      string/bytes -> string
 *   int/long -> integer   float/double -> real (integers accepted on encode)
 *   boolean -> true/false enum -> string symbol  array -> array   map -> object
 *   union ["null", T] -> JSON null or the plain T value (no {"type": v} wrapping)
 *   other unions -> the first branch whose type matches the JSON value
 * Fields missing from the object on encode take the schema default; no default -> PL_ERR_SCHEMA.
 *
 * Wire form of a record value (Avro "single object encoding"):
 *   0xC3 0x01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 *   Canonical Form | Avro binary body.
 *
 * Decoding is hostile-input safe: before a body is read, pl_avro walks it against the writer
 * schema and checks every varint, length (<= remaining bytes and < PL_AVRO_MAX_ALLOC), enum index
 * and union branch; the reader checks every read against the end again. The encoder refuses
 * what a reader would (a string or bytes of PL_AVRO_MAX_ALLOC bytes or more, deeper nesting than
 * the decoder's limit), so nothing is produced that no consumer can read. No avro-c inside.
 * A bad record returns PL_ERR_DECODE (or PL_ERR_SCHEMA) with a reason; never a crash or a leak.
 *
 * Thread rules: the registry is immutable after pl_avro_registry_new and may be shared by any
 * number of threads. Encode/decode allocate per call and are thread-safe. */
#ifndef PL_AVRO_H
#define PL_AVRO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PL_AVRO_MAGIC0     0xC3
#define PL_AVRO_MAGIC1     0x01
#define PL_AVRO_HEADER_LEN 10
#define PL_AVRO_MAX_ALLOC  (1u << 20) /* a string or bytes value is shorter than this */

/* One embedded schema file (generated from the schemas folder by the build). */
typedef struct pl_avro_source {
	const char *file; /* e.g. "DeliveryRequested.v1.avsc" */
	const char *json; /* the file's text */
} pl_avro_source_t;

typedef struct pl_avro_registry pl_avro_registry_t;
typedef struct pl_avro_schema pl_avro_schema_t; /* owned by the registry */

/* The schemas compiled into the binary (build/gen/schemas.c). */
extern const pl_avro_source_t pl_avro_embedded[];
extern const size_t pl_avro_embedded_count;

/* Parses every source. Each file holds one named record schema; its version is the ".vN" in the
 * file name (default 1). For each full name the highest version is the reader schema; every
 * version is known by fingerprint for decoding. On failure returns NULL and writes the reason
 * (naming the file) into errstr. */
pl_avro_registry_t *pl_avro_registry_new(const pl_avro_source_t *sources, size_t count,
                                         char *errstr, size_t errstr_size);
/* Convenience: registry over pl_avro_embedded. */
pl_avro_registry_t *pl_avro_registry_embedded(char *errstr, size_t errstr_size);
void pl_avro_registry_destroy(pl_avro_registry_t *registry);

/* Latest version of a record by full name ("dronepipe.DeliveryRequested") or short name
 * ("DeliveryRequested"); NULL when unknown. */
const pl_avro_schema_t *pl_avro_schema_get(const pl_avro_registry_t *registry, const char *name);
/* Any version, by fingerprint; NULL when unknown. */
const pl_avro_schema_t *pl_avro_schema_by_fingerprint(const pl_avro_registry_t *registry,
                                                      uint64_t fingerprint);
const char *pl_avro_schema_name(const pl_avro_schema_t *schema); /* full name */
const char *
pl_avro_schema_short_name(const pl_avro_schema_t *schema); /* e.g. "DeliveryRequested" */
int pl_avro_schema_version(const pl_avro_schema_t *schema);
uint64_t pl_avro_schema_fingerprint(const pl_avro_schema_t *schema);
/* Parsing Canonical Form, owned by the schema. */
const char *pl_avro_schema_canonical(const pl_avro_schema_t *schema);

/* CRC-64-AVRO (Rabin) fingerprint of the bytes, as defined by the Avro specification. */
uint64_t pl_avro_crc64(const void *data, size_t len);
/* Parsing Canonical Form of a schema JSON text; caller frees with pl_free. NULL + errstr on
 * error. */
char *pl_avro_canonical_form(const char *schema_json, char *errstr, size_t errstr_size);

/* Encodes value with schema into single-object form. On PL_OK *out (pl_malloc'd, caller frees
 * with pl_free) and *out_len are set. Errors: PL_ERR_SCHEMA with a reason naming the field
 * (e.g. "packageInfo.size: not a symbol of Size"). Borrows value. */
pl_err_t pl_avro_encode(const pl_avro_schema_t *schema, const json_t *value, void **out,
                        size_t *out_len, char *errstr, size_t errstr_size);

/* Decodes single-object bytes. The writer schema is found by fingerprint; the result is resolved
 * to the latest version of the same record (new fields take their defaults). On PL_OK *value is a
 * new reference (caller json_decref's it) and *schema (optional) is the reader schema.
 * Errors: PL_ERR_DECODE (not single-object, unknown fingerprint, truncated or malformed body,
 * trailing bytes) with a reason. Never trusts data. */
pl_err_t pl_avro_decode(const pl_avro_registry_t *registry, const void *data, size_t len,
                        json_t **value, const pl_avro_schema_t **schema, char *errstr,
                        size_t errstr_size);

/* Reads just the fingerprint of single-object bytes; PL_ERR_DECODE when not single-object. */
pl_err_t pl_avro_peek_fingerprint(const void *data, size_t len, uint64_t *fingerprint);

/* ---- views (avro_view.c): a record's top-level fields and JSON text without a JSON tree ----
 * For a hot path that needs a few fields of each record and the record as text (a store that
 * keeps events as JSON): decoding builds and frees a jansson tree of every record, which cost
 * the delivery service a third of its CPU. A view reads the same record with one allocation.
 * Its fields and text are exactly what pl_avro_decode and pl_json_text give, and it refuses
 * exactly the records pl_avro_decode refuses, with the same errors. Ownership: the view
 * borrows data (keep the bytes until pl_avro_view_free) and owns its strings. Thread rules: a
 * view is used by one thread at a time. */
typedef struct pl_avro_view pl_avro_view_t;

typedef enum pl_avro_vtype {
	PL_AVRO_V_ABSENT, /* no such field */
	PL_AVRO_V_NULL,
	PL_AVRO_V_BOOLEAN,
	PL_AVRO_V_INTEGER, /* int, long */
	PL_AVRO_V_REAL,    /* float, double */
	PL_AVRO_V_STRING,  /* string, enum symbol, bytes and fixed in their JSON form */
	PL_AVRO_V_OTHER,   /* record, array, map */
} pl_avro_vtype_t;

/* One top-level field's value (a union's is the value of its branch). */
typedef struct pl_avro_scalar {
	pl_avro_vtype_t type;
	bool boolean;
	int64_t integer;
	double real;
	const char *string; /* NUL-terminated; owned by the view (or the registry) */
	size_t length;
} pl_avro_scalar_t;

/* Checks and opens single-object bytes as pl_avro_decode does (same errors). On PL_OK *view
 * (free with pl_avro_view_free); its schema is the reader schema. */
pl_err_t pl_avro_view_open(const pl_avro_registry_t *registry, const void *data, size_t len,
                           pl_avro_view_t **view, char *errstr, size_t errstr_size);
void pl_avro_view_free(pl_avro_view_t *view); /* NULL is a no-op */
const pl_avro_schema_t *pl_avro_view_schema(const pl_avro_view_t *view);
/* Index of a top-level field of a schema, -1 when it has none: look it up once per schema. */
int pl_avro_field_index(const pl_avro_schema_t *schema, const char *name);
/* The field at index of the view's schema; PL_AVRO_V_ABSENT for an index out of range. */
pl_avro_scalar_t pl_avro_view_field(const pl_avro_view_t *view, int index);
/* The record's JSON text, as pl_json_text(decoded record, flags) writes it (jsonw.h flags);
 * caller frees with pl_free. NULL only when the text cannot be written. */
char *pl_avro_view_json(const pl_avro_view_t *view, unsigned flags, size_t *len);

#endif
