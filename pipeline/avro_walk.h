/* avro_walk.h — internal to the avro module (avro.c, avro_walk.c, avro_canon.c): a small schema
 * tree parsed with jansson and a validator that walks untrusted Avro binary against it
 * (avro_walk.c); the Parsing Canonical Form emitter and the static "can a reader read this
 * writer" check (avro_canon.c).
 *
 * The tree is what the codec reads and writes by (field names, defaults, enum symbols).
 *
 * Thread rules: a tree is immutable after pl_avro_tree_parse and may be shared by any number of
 * threads; pl_avro_walk allocates nothing. */
#ifndef PL_AVRO_WALK_H
#define PL_AVRO_WALK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum pl_avro_kind {
	PL_AVRO_T_NULL,
	PL_AVRO_T_BOOLEAN,
	PL_AVRO_T_INT,
	PL_AVRO_T_LONG,
	PL_AVRO_T_FLOAT,
	PL_AVRO_T_DOUBLE,
	PL_AVRO_T_BYTES,
	PL_AVRO_T_STRING,
	PL_AVRO_T_RECORD,
	PL_AVRO_T_ENUM,
	PL_AVRO_T_ARRAY,
	PL_AVRO_T_MAP,
	PL_AVRO_T_UNION,
	PL_AVRO_T_FIXED,
} pl_avro_kind_t;

struct pl_avro_node;

typedef struct pl_avro_field {
	char *name;
	struct pl_avro_node *type; /* owned by the tree */
	json_t *default_value;     /* NULL: no default. Normalised to the codec's JSON mapping. */
} pl_avro_field_t;

/* One schema node. Named types (record, enum, fixed) exist once per tree; every reference by
 * name points to the same node, so recursive schemas are cyclic graphs. Invariants: fields,
 * symbols and branches each have `count` entries (count == 0 otherwise); `items` is set for
 * arrays (items) and maps (values) only; `short_name` points into `name`. */
typedef struct pl_avro_node {
	pl_avro_kind_t kind;
	char *name;             /* full name of a named type, else NULL */
	const char *short_name; /* after the last '.' of name */
	size_t count;
	pl_avro_field_t *fields;        /* record */
	size_t *sorted;                 /* record: field indexes in byte order of their names */
	char **symbols;                 /* enum */
	const char *enum_default;       /* enum: one of symbols, or NULL */
	struct pl_avro_node **branches; /* union */
	struct pl_avro_node *items;     /* array items, map values */
	size_t size;                    /* fixed */
	size_t min_size;                /* a lower bound of the encoded size in bytes */
	int min_state;                  /* 0 not yet, 1 computing, 2 done (parse time only) */
} pl_avro_node_t;

typedef struct pl_avro_tree {
	pl_avro_node_t *root;
	pl_avro_node_t **nodes; /* every node, owned; freed by pl_avro_tree_destroy */
	size_t n_nodes, cap_nodes;
} pl_avro_tree_t;

/* Parses and validates a schema (names, namespaces, references). With check_defaults, field
 * defaults are checked against their types and kept (normalised); without, they are dropped
 * (the canonical form does not need them). NULL + errstr on error. Caller frees with
 * pl_avro_tree_destroy. */
pl_avro_tree_t *pl_avro_tree_parse(const char *schema_json, bool check_defaults, char *errstr,
                                   size_t errstr_size);
void pl_avro_tree_destroy(pl_avro_tree_t *tree);

/* Limits applied by pl_avro_walk on top of the Avro specification's own rules. */
typedef struct pl_avro_walk_limits {
	size_t max_depth;       /* nesting of records/arrays/maps/unions */
	size_t max_length;      /* longest string/bytes value */
	size_t max_empty_items; /* array/map items per body whose encoding may take 0 bytes */
} pl_avro_walk_limits_t;

/* Checks that body is exactly one value of schema: every varint at most 10 bytes (5 for int)
 * and in range, lengths >= 0 and within the remaining bytes, strings valid UTF-8, enum indexes
 * and union branches in range, array/map blocks consistent, and no trailing bytes.
 * PL_OK or PL_ERR_DECODE with the byte offset and field path in errstr. */
pl_err_t pl_avro_walk(const pl_avro_node_t *schema, const void *body, size_t len,
                      const pl_avro_walk_limits_t *limits, char *errstr, size_t errstr_size);

/* True when data written with writer can be resolved to reader (Avro schema resolution rules:
 * records match by name with defaults for new fields, enum symbols known to the reader or a
 * reader enum default, numeric promotion, string<->bytes, unions). Else false + reason. */
bool pl_avro_resolvable(const pl_avro_node_t *writer, const pl_avro_node_t *reader, char *errstr,
                        size_t errstr_size);

/* The branch of a reader union that a writer (non-union) schema resolves to, or -1. Exact kind
 * and name first, then promotions. */
int pl_avro_union_pick(const pl_avro_node_t *reader_union, const pl_avro_node_t *writer);

/* Named types match by full name or by unqualified name, as the specification allows. */
bool pl_avro_names_match(const pl_avro_node_t *writer, const pl_avro_node_t *reader);

/* True when json has the shape of node's type in the codec's mapping (not for unions; records
 * and maps: any object; arrays: any array; float/double: integers too). */
bool pl_avro_json_fits(const pl_avro_node_t *node, const json_t *json);

/* The branch of union_node that json is written as, or -1: the first branch json fits; else,
 * for a union with one non-null branch and a non-null json, that branch (the encoder then
 * refuses the value against it, with the precise reason). */
int pl_avro_json_branch(const pl_avro_node_t *union_node, const json_t *json);

/* "int", "record"...: type names indexed by pl_avro_kind_t (avro_canon.c). */
extern const char *const pl_avro_type_names[];
/* Short name of a named type, else its type name; for messages. */
const char *pl_avro_kind_name(const pl_avro_node_t *node);

/* Parsing Canonical Form of a tree (avro_canon.c); caller frees with pl_free. */
char *pl_avro_tree_canonical(const pl_avro_tree_t *tree);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool pl_avro_utf8_valid(const char *s, size_t len);

/* Decodes the codec's JSON form of bytes/fixed (UTF-8 text of code points U+0000..U+00FF, one
 * per byte, as in Avro's JSON encoding) into out (may be NULL to count). Returns the byte count,
 * or -1 when a code point is above U+00FF or the text is not UTF-8. */
long pl_avro_latin1_decode(const char *s, size_t len, uint8_t *out);

/* snprintf into errstr when errstr_size > 0; shared by the avro module. */
void pl_avro_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
