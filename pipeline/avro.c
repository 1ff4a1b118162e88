/* avro.c — the Avro codec of dronepipe (see avro.h): the schema registry, JSON -> single-object
 * encoding, and decoding of untrusted single-object bytes into JSON resolved to the latest
 * version of the writer's record. Owns pl_avro_registry_t and every pl_avro_schema_t in it.
 *
 * No avro-c: schemas are parsed into our own tree (avro_walk.c), bodies are written and read
 * directly by it. Decoding first lets pl_avro_walk check the body, then reads it (avro_read.h)
 * in the writer's field order, resolved against the reader's tree (field match by name,
 * defaults, enum symbols, promotions, union branches); avro-c's generic values built a tree per
 * record only to copy it (into JSON, or into bytes), and avro-c 1.11 cannot fill a reader field
 * the writer lacks from its default ("Reader field c doesn't appear in writer"), which is the
 * one resolution the event contract needs. Whether every older version resolves to the latest
 * is checked once, when the registry is built. avro-c stays the oracle of the tests: test_avro
 * compares every encoding with its bytes. */
#include "avro.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "avro_read.h"
#include "avro_walk.h"
#include "mem.h"

#define DECODE_MAX_DEPTH       64
#define DECODE_MAX_EMPTY_ITEMS 4096

struct pl_avro_schema {
	char *file;
	char *canonical;
	uint64_t fingerprint;
	int version;
	pl_avro_tree_t *tree; /* root is a record; the codec reads and writes by it */
	const pl_avro_schema_t *latest;
};

struct pl_avro_registry {
	pl_avro_schema_t *schemas; /* count entries, all loaded */
	size_t count;
};

/* ---- registry ---- */

/* The N of "Name.vN.avsc"; 1 when the name has no version. */
static int file_version(const char *file)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	size_t len = strlen(base);
	if (len > 5 && !strcmp(base + len - 5, ".avsc"))
		len -= 5;
	size_t i = len;
	while (i > 0 && base[i - 1] >= '0' && base[i - 1] <= '9')
		i--;
	if (i == len || i < 2 || base[i - 1] != 'v' || base[i - 2] != '.' || len - i > 6)
		return 1;
	int version = 0;
	for (; i < len; i++)
		version = version * 10 + (base[i] - '0');
	return version;
}

static pl_err_t schema_load(pl_avro_schema_t *schema, const pl_avro_source_t *src, char *errstr,
                            size_t errstr_size)
{
	char reason[512];
	schema->file = pl_strdup(src->file ? src->file : "(unnamed)");
	schema->version = file_version(schema->file);
	if (!src->json) {
		pl_avro_errf(errstr, errstr_size, "%s: no schema text", schema->file);
		return PL_ERR_CONFIG;
	}
	schema->tree = pl_avro_tree_parse(src->json, true, reason, sizeof(reason));
	if (!schema->tree) {
		pl_avro_errf(errstr, errstr_size, "%s: %s", schema->file, reason);
		return PL_ERR_CONFIG;
	}
	if (schema->tree->root->kind != PL_AVRO_T_RECORD) {
		pl_avro_errf(errstr, errstr_size, "%s: not a record schema", schema->file);
		return PL_ERR_CONFIG;
	}
	schema->canonical = pl_avro_tree_canonical(schema->tree);
	schema->fingerprint = pl_avro_crc64(schema->canonical, strlen(schema->canonical));
	return PL_OK;
}

static pl_err_t registry_link(pl_avro_registry_t *registry, char *errstr, size_t errstr_size)
{
	char reason[512];
	for (size_t i = 0; i < registry->count; i++) {
		pl_avro_schema_t *a = &registry->schemas[i];
		a->latest = a;
		for (size_t k = 0; k < registry->count; k++) {
			const pl_avro_schema_t *b = &registry->schemas[k];
			bool same_name = !strcmp(a->tree->root->name, b->tree->root->name);
			if (k != i && (a->fingerprint == b->fingerprint ||
			               (same_name && a->version == b->version))) {
				pl_avro_errf(errstr, errstr_size, "%s and %s: same %s", a->file,
				             b->file, same_name ? "name and version" : "schema");
				return PL_ERR_CONFIG;
			}
			if (same_name && b->version > a->latest->version)
				a->latest = b;
		}
	}
	for (size_t i = 0; i < registry->count; i++) {
		const pl_avro_schema_t *a = &registry->schemas[i];
		if (a->latest != a && !pl_avro_resolvable(a->tree->root, a->latest->tree->root,
		                                          reason, sizeof(reason))) {
			pl_avro_errf(errstr, errstr_size, "%s cannot be read as %s: %s", a->file,
			             a->latest->file, reason);
			return PL_ERR_CONFIG;
		}
	}
	return PL_OK;
}

pl_avro_registry_t *pl_avro_registry_new(const pl_avro_source_t *sources, size_t count,
                                         char *errstr, size_t errstr_size)
{
	pl_avro_registry_t *registry = pl_calloc(1, sizeof(*registry));
	registry->schemas = pl_calloc(count ? count : 1, sizeof(*registry->schemas));
	for (size_t i = 0; i < count; i++) {
		registry->count++; /* so that destroy frees a half-loaded entry */
		if (schema_load(&registry->schemas[i], &sources[i], errstr, errstr_size))
			goto fail;
	}
	if (registry_link(registry, errstr, errstr_size))
		goto fail;
	return registry;
fail:
	pl_avro_registry_destroy(registry);
	return NULL;
}

pl_avro_registry_t *pl_avro_registry_embedded(char *errstr, size_t errstr_size)
{
	return pl_avro_registry_new(pl_avro_embedded, pl_avro_embedded_count, errstr, errstr_size);
}

void pl_avro_registry_destroy(pl_avro_registry_t *registry)
{
	if (!registry)
		return;
	for (size_t i = 0; i < registry->count; i++) {
		pl_avro_schema_t *schema = &registry->schemas[i];
		pl_avro_tree_destroy(schema->tree);
		pl_free(schema->canonical);
		pl_free(schema->file);
	}
	pl_free(registry->schemas);
	pl_free(registry);
}

const pl_avro_schema_t *pl_avro_schema_get(const pl_avro_registry_t *registry, const char *name)
{
	for (size_t i = 0; registry && name && i < registry->count; i++) {
		const pl_avro_schema_t *schema = &registry->schemas[i];
		const pl_avro_node_t *root = schema->tree->root;
		if (schema->latest == schema &&
		    (!strcmp(root->name, name) || !strcmp(root->short_name, name)))
			return schema;
	}
	return NULL;
}

const pl_avro_schema_t *pl_avro_schema_by_fingerprint(const pl_avro_registry_t *registry,
                                                      uint64_t fingerprint)
{
	for (size_t i = 0; registry && i < registry->count; i++)
		if (registry->schemas[i].fingerprint == fingerprint)
			return &registry->schemas[i];
	return NULL;
}

const char *pl_avro_schema_name(const pl_avro_schema_t *schema)
{
	return schema->tree->root->name;
}

const char *pl_avro_schema_short_name(const pl_avro_schema_t *schema)
{
	return schema->tree->root->short_name;
}

int pl_avro_schema_version(const pl_avro_schema_t *schema)
{
	return schema->version;
}

uint64_t pl_avro_schema_fingerprint(const pl_avro_schema_t *schema)
{
	return schema->fingerprint;
}

const char *pl_avro_schema_canonical(const pl_avro_schema_t *schema)
{
	return schema->canonical;
}

/* ---- field paths for error messages ---- */

typedef struct codec {
	char path[256];
	size_t path_len;
	const char *root_name;
	size_t empty_items; /* encode: array items of no bytes written so far */
	char *errstr;
	size_t errstr_size;
} codec_t;

/* Appends s to the path, cut to fit. */
static void path_put(codec_t *c, const char *s)
{
	while (*s && c->path_len < sizeof(c->path) - 1)
		c->path[c->path_len++] = *s++;
	c->path[c->path_len] = '\0';
}

/* Appends ".name" (or "[i]" when name is NULL), cut to fit; returns the length to restore.
 * Runs for every field of every record decoded: no printf. */
static size_t path_push(codec_t *c, const char *name, size_t index)
{
	size_t saved = c->path_len;
	if (name) {
		path_put(c, saved ? "." : "");
		path_put(c, name);
		return saved;
	}
	char num[24], *p = num + sizeof(num) - 1;
	*p = '\0';
	*--p = ']';
	do
		*--p = (char)('0' + index % 10);
	while ((index /= 10) != 0);
	*--p = '[';
	path_put(c, p);
	return saved;
}

static void path_pop(codec_t *c, size_t saved)
{
	c->path_len = saved;
	c->path[saved] = '\0';
}

__attribute__((format(printf, 3, 4))) static pl_err_t codec_fail(codec_t *c, pl_err_t err,
                                                                 const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pl_avro_errf(c->errstr, c->errstr_size, "%s: %s", c->path_len ? c->path : c->root_name,
	             msg);
	return err;
}

/* ---- encode: JSON -> Avro binary, written directly ----
 *
 * The bytes are Apache avro-c's for the same value (test_avro compares them): varints in zigzag
 * form, shortest; an array or map as one block of all its items, then the 0 block; a map's
 * entries in the object's order. What the decoder refuses is refused here too, so no record is
 * produced that no consumer could read: a string or bytes value of PL_AVRO_MAX_ALLOC bytes or
 * more, a value nested deeper than DECODE_MAX_DEPTH, more than DECODE_MAX_EMPTY_ITEMS array
 * items that take no bytes. */

typedef struct outbuf {
	uint8_t *p;
	size_t len, cap;
} outbuf_t;

static uint8_t *out_reserve(outbuf_t *o, size_t n)
{
	if (o->cap - o->len < n) {
		size_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n;
		o->p = pl_realloc(o->p, cap);
		o->cap = cap;
	}
	return o->p + o->len;
}

static void out_bytes(outbuf_t *o, const void *data, size_t n)
{
	if (n) {
		memcpy(out_reserve(o, n), data, n);
		o->len += n;
	}
}

static void out_long(outbuf_t *o, int64_t v)
{
	uint8_t *b = out_reserve(o, 10);
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;
	for (; z > 0x7f; z >>= 7)
		b[n++] = (uint8_t)(z | 0x80);
	b[n++] = (uint8_t)z;
	o->len += n;
}

static void out_le(outbuf_t *o, uint64_t bits, size_t n)
{
	uint8_t *b = out_reserve(o, n);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(bits >> (8 * i));
	o->len += n;
}

static pl_err_t encode_value(codec_t *c, const pl_avro_node_t *node, const json_t *json,
                             outbuf_t *o, size_t depth);

static pl_err_t too_long(codec_t *c, size_t n)
{
	return codec_fail(c, PL_ERR_SCHEMA, "%zu bytes, more than the %u a reader accepts", n,
	                  PL_AVRO_MAX_ALLOC - 1);
}

/* The first member of json that is not a field of node (there is one). */
static pl_err_t unknown_member(codec_t *c, const pl_avro_node_t *node, const json_t *json)
{
	const char *key;
	json_t *item;
	json_object_foreach((json_t *)json, key, item)
	{
		bool known = false;
		for (size_t i = 0; !known && i < node->count; i++)
			known = !strcmp(node->fields[i].name, key);
		if (!known) {
			path_push(c, key, 0);
			return codec_fail(c, PL_ERR_SCHEMA, "not a field of %s", node->short_name);
		}
	}
	return codec_fail(c, PL_ERR_SCHEMA, "not an object of %s", node->short_name);
}

static pl_err_t encode_record(codec_t *c, const pl_avro_node_t *node, const json_t *json,
                              outbuf_t *o, size_t depth)
{
	size_t n_given = 0;
	for (size_t i = 0; i < node->count; i++) {
		const pl_avro_field_t *field = &node->fields[i];
		const json_t *given = json_object_get(json, field->name);
		size_t saved = path_push(c, field->name, 0);
		pl_err_t err = PL_OK;
		n_given += given != NULL;
		if (!given && !field->default_value)
			err = codec_fail(c, PL_ERR_SCHEMA, "missing, and the field has no default");
		else
			err = encode_value(c, field->type, given ? given : field->default_value, o,
			                   depth);
		path_pop(c, saved);
		if (err)
			return err;
	}
	/* members the schema lacks are refused rather than silently dropped */
	return n_given == json_object_size(json) ? PL_OK : unknown_member(c, node, json);
}

static pl_err_t encode_union(codec_t *c, const pl_avro_node_t *node, const json_t *json,
                             outbuf_t *o, size_t depth)
{
	/* ["null", T] with a value T rejects: encoded against T for the precise reason. */
	int chosen = pl_avro_json_branch(node, json);
	if (chosen < 0)
		return codec_fail(c, PL_ERR_SCHEMA, "value matches no branch of the union");
	out_long(o, chosen);
	return encode_value(c, node->branches[chosen], json, o, depth);
}

static pl_err_t encode_latin1(codec_t *c, const pl_avro_node_t *node, const json_t *json,
                              outbuf_t *o)
{
	const char *s = json_string_value(json);
	size_t len = json_string_length(json);
	long n = s ? pl_avro_latin1_decode(s, len, NULL) : -1;
	if (n < 0)
		return codec_fail(c, PL_ERR_SCHEMA,
		                  "expected a string of code points U+0000..U+00FF (bytes)");
	if (node->kind == PL_AVRO_T_FIXED && (size_t)n != node->size)
		return codec_fail(c, PL_ERR_SCHEMA, "expected %zu bytes for %s, got %ld",
		                  node->size, node->short_name, n);
	if (node->kind == PL_AVRO_T_BYTES) {
		if ((size_t)n >= PL_AVRO_MAX_ALLOC)
			return too_long(c, (size_t)n);
		out_long(o, n);
	}
	pl_avro_latin1_decode(s, len, out_reserve(o, (size_t)n));
	o->len += (size_t)n;
	return PL_OK;
}

static pl_err_t encode_value(codec_t *c, const pl_avro_node_t *node, const json_t *json,
                             outbuf_t *o, size_t depth)
{
	if (node->kind == PL_AVRO_T_UNION || node->kind == PL_AVRO_T_RECORD ||
	    node->kind == PL_AVRO_T_ARRAY || node->kind == PL_AVRO_T_MAP) {
		if (++depth > DECODE_MAX_DEPTH)
			return codec_fail(c, PL_ERR_SCHEMA,
			                  "nested deeper than the %d levels a reader accepts",
			                  DECODE_MAX_DEPTH);
	}
	if (node->kind == PL_AVRO_T_UNION)
		return encode_union(c, node, json, o, depth);
	if (node->kind == PL_AVRO_T_BYTES || node->kind == PL_AVRO_T_FIXED)
		return encode_latin1(c, node, json, o);
	if (node->kind == PL_AVRO_T_ENUM && json_is_string(json) && !pl_avro_json_fits(node, json))
		return codec_fail(c, PL_ERR_SCHEMA, "'%s' is not a symbol of %s",
		                  json_string_value(json), node->short_name);
	if (!pl_avro_json_fits(node, json)) {
		static const char *const expected[] = {
		    [PL_AVRO_T_NULL] = "null",
		    [PL_AVRO_T_BOOLEAN] = "true or false",
		    [PL_AVRO_T_INT] = "a 32-bit integer",
		    [PL_AVRO_T_LONG] = "an integer",
		    [PL_AVRO_T_FLOAT] = "a number",
		    [PL_AVRO_T_DOUBLE] = "a number",
		    [PL_AVRO_T_STRING] = "a string",
		    [PL_AVRO_T_RECORD] = "an object",
		    [PL_AVRO_T_ENUM] = "a symbol string",
		    [PL_AVRO_T_ARRAY] = "an array",
		    [PL_AVRO_T_MAP] = "an object",
		};
		return codec_fail(c, PL_ERR_SCHEMA, "expected %s", expected[node->kind]);
	}
	switch (node->kind) {
	case PL_AVRO_T_BOOLEAN:
		out_bytes(o, json_is_true(json) ? "\1" : "\0", 1);
		break;
	case PL_AVRO_T_INT: /* in range (pl_avro_json_fits): the same varint as a long */
	case PL_AVRO_T_LONG:
		out_long(o, json_integer_value(json));
		break;
	case PL_AVRO_T_FLOAT: {
		float f = (float)json_number_value(json);
		uint32_t bits;
		memcpy(&bits, &f, sizeof(bits));
		out_le(o, bits, 4);
		break;
	}
	case PL_AVRO_T_DOUBLE: {
		double d = json_number_value(json);
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		out_le(o, bits, 8);
		break;
	}
	case PL_AVRO_T_STRING: { /* jansson holds only valid UTF-8 */
		size_t n = json_string_length(json);
		if (n >= PL_AVRO_MAX_ALLOC)
			return too_long(c, n);
		out_long(o, (int64_t)n);
		out_bytes(o, json_string_value(json), n);
		break;
	}
	case PL_AVRO_T_ENUM:
		for (size_t i = 0; i < node->count; i++)
			if (!strcmp(node->symbols[i], json_string_value(json)))
				out_long(o, (int64_t)i);
		break;
	case PL_AVRO_T_RECORD:
		return encode_record(c, node, json, o, depth);
	case PL_AVRO_T_ARRAY: {
		size_t i;
		json_t *item;
		size_t n = json_array_size(json);
		/* items encoded in 0 bytes (null, empty records): the reader takes DECODE_MAX_
		 * EMPTY_ITEMS per value at most, so nothing can make it loop on no bytes */
		if (node->items->min_size == 0 && n > DECODE_MAX_EMPTY_ITEMS - c->empty_items)
			return codec_fail(c, PL_ERR_SCHEMA,
			                  "more than the %d items of no bytes a reader accepts",
			                  DECODE_MAX_EMPTY_ITEMS);
		c->empty_items += node->items->min_size == 0 ? n : 0;
		if (n)
			out_long(o, (int64_t)n);
		json_array_foreach(json, i, item)
		{
			size_t saved = path_push(c, NULL, i);
			pl_err_t err = encode_value(c, node->items, item, o, depth);
			path_pop(c, saved);
			if (err)
				return err;
		}
		out_long(o, 0);
		break;
	}
	case PL_AVRO_T_MAP: {
		const char *key;
		json_t *item;
		if (json_object_size(json))
			out_long(o, (int64_t)json_object_size(json));
		json_object_foreach((json_t *)json, key, item)
		{
			size_t n = strlen(key), saved = path_push(c, key, 0);
			pl_err_t err = n >= PL_AVRO_MAX_ALLOC ? too_long(c, n) : PL_OK;
			if (!err) {
				out_long(o, (int64_t)n);
				out_bytes(o, key, n);
				err = encode_value(c, node->items, item, o, depth);
			}
			path_pop(c, saved);
			if (err)
				return err;
		}
		out_long(o, 0);
		break;
	}
	default: /* null: no bytes */
		break;
	}
	return PL_OK;
}

pl_err_t pl_avro_encode(const pl_avro_schema_t *schema, const json_t *value, void **out,
                        size_t *out_len, char *errstr, size_t errstr_size)
{
	*out = NULL;
	*out_len = 0;
	if (!schema || !value) {
		pl_avro_errf(errstr, errstr_size, "no schema or no value");
		return PL_ERR_INVALID;
	}
	codec_t c = {.root_name = schema->tree->root->short_name,
	             .errstr = errstr,
	             .errstr_size = errstr_size};
	outbuf_t o = {.p = pl_malloc(256), .cap = 256};
	o.p[0] = PL_AVRO_MAGIC0;
	o.p[1] = PL_AVRO_MAGIC1;
	o.len = 2;
	out_le(&o, schema->fingerprint, 8);
	pl_err_t err = encode_value(&c, schema->tree->root, value, &o, 0);
	if (err) {
		pl_free(o.p);
		return err;
	}
	*out = o.p;
	*out_len = o.len;
	return PL_OK;
}

/* ---- decode: Avro binary of the writer schema -> JSON of the reader schema ----
 *
 * Reads the body directly, in the writer's field order, after pl_avro_walk has checked it
 * (lengths, varints, UTF-8 of strings, enum indexes, union branches, depth). The cursor still
 * checks every read against the end, so a body the walk let through cannot be over-read. */

typedef pl_avro_cursor_t cursor_t;

static json_t *latin1_json(const void *data, size_t len)
{
	char *buf = pl_malloc(2 * len + 1);
	json_t *json = json_stringn(buf, pl_avro_latin1_encode(data, len, buf));
	pl_free(buf);
	return json;
}

static json_t *number_json(codec_t *c, const pl_avro_node_t *r, bool integral, int64_t i, double d)
{
	if (integral && (r->kind == PL_AVRO_T_INT || r->kind == PL_AVRO_T_LONG))
		return json_integer(i);
	if (integral)
		d = r->kind == PL_AVRO_T_FLOAT ? (double)(float)i : (double)i;
	if (!isfinite(d)) {
		codec_fail(c, PL_ERR_DECODE, "%g cannot be represented in JSON", d);
		return NULL;
	}
	return json_real(d);
}

static json_t *truncated(codec_t *c)
{
	codec_fail(c, PL_ERR_DECODE, "truncated value");
	return NULL;
}

static json_t *decode_value(codec_t *c, cursor_t *cur, const pl_avro_node_t *w,
                            const pl_avro_node_t *r);

static json_t *decode_text(codec_t *c, cursor_t *cur, const pl_avro_node_t *w,
                           const pl_avro_node_t *r)
{
	const uint8_t *data;
	size_t size = 0;
	if (w->kind == PL_AVRO_T_FIXED ? !pl_avro_read_fixed(cur, w->size, &data)
	                               : !pl_avro_read_len(cur, &data, &size))
		return truncated(c);
	if (w->kind == PL_AVRO_T_FIXED)
		size = w->size;
	if (r->kind != PL_AVRO_T_STRING)
		return latin1_json(data, size);
	/* a writer string was checked as UTF-8 by the walk; bytes read as a string were not */
	json_t *json = w->kind == PL_AVRO_T_STRING ? json_stringn_nocheck((const char *)data, size)
	                                           : json_stringn((const char *)data, size);
	if (!json)
		codec_fail(c, PL_ERR_DECODE, "string is not valid UTF-8");
	return json;
}

/* The reader field index of writer field k (the same index when the schemas agree there). */
static size_t reader_field(const pl_avro_node_t *w, const pl_avro_node_t *r, size_t k)
{
	const char *name = w->fields[k].name;
	if (k < r->count && strcmp(r->fields[k].name, name) == 0)
		return k;
	size_t j = 0;
	while (j < r->count && strcmp(r->fields[j].name, name))
		j++;
	return j;
}

/* Reads the writer's fields in order, then builds the object in the reader's field order
 * (fields the writer lacks take their default: the registry checked every one has one). */
static json_t *decode_record(codec_t *c, cursor_t *cur, const pl_avro_node_t *w,
                             const pl_avro_node_t *r)
{
	json_t *stack_items[32];
	json_t **items = r->count <= 32 ? stack_items : pl_calloc(r->count, sizeof(*items));
	json_t *object = NULL;
	for (size_t j = 0; j < r->count; j++)
		items[j] = NULL;
	for (size_t k = 0; k < w->count; k++) {
		size_t j = reader_field(w, r, k);
		if (j == r->count) {
			if (!pl_avro_skip(cur, w->fields[k].type, false)) {
				truncated(c);
				goto out;
			}
			continue;
		}
		size_t saved = path_push(c, r->fields[j].name, 0);
		json_t *item = decode_value(c, cur, w->fields[k].type, r->fields[j].type);
		path_pop(c, saved);
		if (!item)
			goto out;
		json_decref(items[j]); /* a writer naming a field twice: the registry refuses it */
		items[j] = item;
	}
	object = json_object();
	for (size_t j = 0; j < r->count; j++) {
		const pl_avro_field_t *rf = &r->fields[j];
		json_t *item = items[j];
		items[j] = NULL;
		if (!item && rf->default_value)
			item = json_deep_copy(rf->default_value);
		if (!item) {
			size_t saved = path_push(c, rf->name, 0);
			codec_fail(c, PL_ERR_DECODE, "not in the writer and no default");
			path_pop(c, saved);
		}
		if (!item || json_object_set_new_nocheck(object, rf->name, item)) {
			json_decref(object);
			object = NULL;
			goto out;
		}
	}
out:
	for (size_t j = 0; j < r->count; j++)
		json_decref(items[j]);
	if (items != stack_items)
		pl_free(items);
	return object;
}

/* A map key as a NUL-terminated name for the error path, cut to fit out. */
static const char *key_name(const uint8_t *key, size_t len, char out[64])
{
	len = len < 63 ? len : 63;
	memcpy(out, key, len);
	out[len] = '\0';
	return out;
}

static json_t *decode_items(codec_t *c, cursor_t *cur, const pl_avro_node_t *w,
                            const pl_avro_node_t *r)
{
	bool map = w->kind == PL_AVRO_T_MAP;
	json_t *out = map ? json_object() : json_array();
	size_t index = 0;
	uint64_t count;
	for (;;) {
		if (!pl_avro_read_block(cur, &count)) {
			truncated(c);
			goto fail;
		}
		if (count == 0)
			return out;
		for (uint64_t i = 0; i < count; i++, index++) {
			const uint8_t *key = NULL;
			size_t key_len = 0;
			if (map && !pl_avro_read_len(cur, &key, &key_len)) {
				truncated(c);
				goto fail;
			}
			char key_text[64];
			size_t saved =
			    path_push(c, map ? key_name(key, key_len, key_text) : NULL, index);
			json_t *item = decode_value(c, cur, w->items, r->items);
			path_pop(c, saved);
			if (!item)
				goto fail;
			if (map ? json_object_setn_new(out, (const char *)key, key_len, item)
			        : json_array_append_new(out, item)) {
				codec_fail(c, PL_ERR_DECODE, "bad map key");
				goto fail;
			}
		}
	}
fail:
	json_decref(out);
	return NULL;
}

static json_t *decode_value(codec_t *c, cursor_t *cur, const pl_avro_node_t *w,
                            const pl_avro_node_t *r)
{
	int64_t i64 = 0;
	const uint8_t *raw;
	if (w->kind == PL_AVRO_T_UNION) {
		if (!pl_avro_read_long(cur, &i64) || i64 < 0 || (uint64_t)i64 >= w->count) {
			codec_fail(c, PL_ERR_DECODE, "bad union value");
			return NULL;
		}
		return decode_value(c, cur, w->branches[i64], r);
	}
	if (r->kind == PL_AVRO_T_UNION) {
		int pick = pl_avro_union_pick(r, w);
		if (pick < 0) {
			codec_fail(c, PL_ERR_DECODE, "writer type matches no reader branch");
			return NULL;
		}
		return decode_value(c, cur, w, r->branches[pick]);
	}
	switch (w->kind) {
	case PL_AVRO_T_NULL:
		return json_null();
	case PL_AVRO_T_BOOLEAN:
		if (!pl_avro_read_fixed(cur, 1, &raw) || raw[0] > 1) {
			codec_fail(c, PL_ERR_DECODE, "bad boolean value");
			return NULL;
		}
		return json_boolean(raw[0]);
	case PL_AVRO_T_INT:
	case PL_AVRO_T_LONG:
		if (!pl_avro_read_long(cur, &i64))
			return truncated(c);
		if (w->kind == PL_AVRO_T_INT && (i64 < INT32_MIN || i64 > INT32_MAX)) {
			codec_fail(c, PL_ERR_DECODE, "int out of range");
			return NULL;
		}
		return number_json(c, r, true, i64, 0);
	case PL_AVRO_T_FLOAT:
		if (!pl_avro_read_fixed(cur, 4, &raw))
			return truncated(c);
		return number_json(c, r, false, 0, pl_avro_float_of(raw));
	case PL_AVRO_T_DOUBLE:
		if (!pl_avro_read_fixed(cur, 8, &raw))
			return truncated(c);
		return number_json(c, r, false, 0, pl_avro_double_of(raw));
	case PL_AVRO_T_STRING:
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED:
		return decode_text(c, cur, w, r);
	case PL_AVRO_T_ENUM: {
		if (!pl_avro_read_long(cur, &i64) || i64 < 0 || (uint64_t)i64 >= w->count) {
			codec_fail(c, PL_ERR_DECODE, "bad enum value");
			return NULL;
		}
		const char *symbol = w->symbols[i64];
		if (r->symbols == w->symbols)
			return json_string_nocheck(symbol);
		for (size_t i = 0; i < r->count; i++)
			if (!strcmp(r->symbols[i], symbol))
				return json_string_nocheck(r->symbols[i]);
		if (r->enum_default)
			return json_string_nocheck(r->enum_default);
		codec_fail(c, PL_ERR_DECODE, "'%s' is not a symbol of the reader's %s", symbol,
		           r->short_name);
		return NULL;
	}
	case PL_AVRO_T_RECORD:
		return decode_record(c, cur, w, r);
	case PL_AVRO_T_ARRAY:
	case PL_AVRO_T_MAP:
		return decode_items(c, cur, w, r);
	case PL_AVRO_T_UNION:
		break;
	}
	return NULL;
}

pl_err_t pl_avro_peek_fingerprint(const void *data, size_t len, uint64_t *fingerprint)
{
	const uint8_t *p = data;
	if (!p || len < PL_AVRO_HEADER_LEN || p[0] != PL_AVRO_MAGIC0 || p[1] != PL_AVRO_MAGIC1)
		return PL_ERR_DECODE;
	uint64_t fp = 0;
	for (int i = 7; i >= 0; i--)
		fp = (fp << 8) | p[2 + i];
	*fingerprint = fp;
	return PL_OK;
}

pl_err_t pl_avro_body(const pl_avro_registry_t *registry, const void *data, size_t len,
                      const pl_avro_schema_t **writer, pl_avro_cursor_t *body, char *errstr,
                      size_t errstr_size)
{
	uint64_t fingerprint;
	if (pl_avro_peek_fingerprint(data, len, &fingerprint)) {
		pl_avro_errf(errstr, errstr_size,
		             "not Avro single-object encoding (%zu bytes, need 0xC3 0x01 and a "
		             "fingerprint)",
		             len);
		return PL_ERR_DECODE;
	}
	*writer = pl_avro_schema_by_fingerprint(registry, fingerprint);
	if (!*writer) {
		pl_avro_errf(errstr, errstr_size, "unknown writer schema fingerprint %016llx",
		             (unsigned long long)fingerprint);
		return PL_ERR_DECODE;
	}
	const uint8_t *start = (const uint8_t *)data + PL_AVRO_HEADER_LEN;
	size_t body_len = len - PL_AVRO_HEADER_LEN;
	const pl_avro_walk_limits_t limits = {DECODE_MAX_DEPTH, PL_AVRO_MAX_ALLOC - 1,
	                                      DECODE_MAX_EMPTY_ITEMS};
	char reason[384];
	pl_err_t err =
	    pl_avro_walk((*writer)->tree->root, start, body_len, &limits, reason, sizeof(reason));
	if (err) {
		pl_avro_errf(errstr, errstr_size, "%s: %s", (*writer)->file, reason);
		return err;
	}
	*body = (pl_avro_cursor_t){start, start + body_len};
	return PL_OK;
}

const pl_avro_tree_t *pl_avro_schema_tree(const pl_avro_schema_t *schema)
{
	return schema->tree;
}

const pl_avro_schema_t *pl_avro_schema_latest(const pl_avro_schema_t *schema)
{
	return schema->latest;
}

pl_err_t pl_avro_decode(const pl_avro_registry_t *registry, const void *data, size_t len,
                        json_t **value, const pl_avro_schema_t **schema, char *errstr,
                        size_t errstr_size)
{
	const pl_avro_schema_t *writer;
	cursor_t cur;
	*value = NULL;
	if (schema)
		*schema = NULL;
	pl_err_t err = pl_avro_body(registry, data, len, &writer, &cur, errstr, errstr_size);
	if (err)
		return err;
	/* The bytes are now known to be one well-formed value. */
	codec_t c = {.root_name = writer->tree->root->short_name,
	             .errstr = errstr,
	             .errstr_size = errstr_size};
	if (errstr && errstr_size)
		errstr[0] = '\0';
	*value = decode_value(&c, &cur, writer->tree->root, writer->latest->tree->root);
	if (*value && cur.p != cur.end) {
		json_decref(*value);
		*value = NULL;
		codec_fail(&c, PL_ERR_DECODE, "%zu trailing bytes", (size_t)(cur.end - cur.p));
	}
	if (!*value) {
		err = PL_ERR_DECODE;
		if (errstr && errstr_size && !errstr[0])
			pl_avro_errf(errstr, errstr_size, "%s: could not read a value",
			             writer->file);
	} else if (schema)
		*schema = writer->latest;
	return err;
}
