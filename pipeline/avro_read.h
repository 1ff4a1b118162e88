/* avro_read.h — internal to the avro module (avro.c, avro_view.c): reading Avro binary that
 * pl_avro_walk has already checked. A cursor over the body and the primitives of the
 * specification's binary encoding; each read still checks the end, so a body the walk let
 * through cannot be over-read. And the checks every reader of single-object bytes begins with
 * (pl_avro_body, in avro.c).
 *
 * Thread rules: pure functions over the caller's cursor. */
#ifndef PL_AVRO_READ_H
#define PL_AVRO_READ_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "avro.h"
#include "avro_walk.h"

typedef struct pl_avro_cursor {
	const uint8_t *p, *end;
} pl_avro_cursor_t;

/* A zig-zag varint (int or long). */
static inline bool pl_avro_read_long(pl_avro_cursor_t *cur, int64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; cur->p < cur->end && shift < 64; shift += 7) {
		uint8_t b = *cur->p++;
		v |= (uint64_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
			return true;
		}
	}
	return false;
}

/* n bytes as they are (fixed, float, double, boolean); *data points into the body. */
static inline bool pl_avro_read_fixed(pl_avro_cursor_t *cur, size_t n, const uint8_t **data)
{
	if (n > (size_t)(cur->end - cur->p))
		return false;
	*data = cur->p;
	cur->p += n;
	return true;
}

/* A length-prefixed string or bytes; *data points into the body. */
static inline bool pl_avro_read_len(pl_avro_cursor_t *cur, const uint8_t **data, size_t *len)
{
	int64_t n;
	if (!pl_avro_read_long(cur, &n) || n < 0)
		return false;
	*len = (size_t)n;
	return pl_avro_read_fixed(cur, *len, data);
}

/* Count of the next array/map block (0 ends the value); a negative count is followed by the
 * block's byte size, which is not needed here. */
static inline bool pl_avro_read_block(pl_avro_cursor_t *cur, uint64_t *count)
{
	int64_t n, size;
	if (!pl_avro_read_long(cur, &n) || n == INT64_MIN ||
	    (n < 0 && !pl_avro_read_long(cur, &size)))
		return false;
	*count = (uint64_t)(n < 0 ? -n : n);
	return true;
}

static inline double pl_avro_float_of(const uint8_t *raw)
{
	uint32_t bits = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 |
	                (uint32_t)raw[3] << 24;
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

static inline double pl_avro_double_of(const uint8_t *raw)
{
	uint64_t bits = 0;
	for (int i = 7; i >= 0; i--)
		bits = bits << 8 | raw[i];
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* Moves the cursor over one value of w. With finite, false also when a float or double in it
 * is not finite (JSON cannot hold it, so the decoder refuses such a record). */
static inline bool pl_avro_skip(pl_avro_cursor_t *cur, const pl_avro_node_t *w, bool finite)
{
	int64_t n;
	const uint8_t *data;
	size_t len;
	uint64_t count;
	switch (w->kind) {
	case PL_AVRO_T_NULL:
		return true;
	case PL_AVRO_T_BOOLEAN:
		return pl_avro_read_fixed(cur, 1, &data);
	case PL_AVRO_T_INT:
	case PL_AVRO_T_LONG:
	case PL_AVRO_T_ENUM:
		return pl_avro_read_long(cur, &n);
	case PL_AVRO_T_FLOAT:
		return pl_avro_read_fixed(cur, 4, &data) &&
		       (!finite || isfinite(pl_avro_float_of(data)));
	case PL_AVRO_T_DOUBLE:
		return pl_avro_read_fixed(cur, 8, &data) &&
		       (!finite || isfinite(pl_avro_double_of(data)));
	case PL_AVRO_T_STRING:
	case PL_AVRO_T_BYTES:
		return pl_avro_read_len(cur, &data, &len);
	case PL_AVRO_T_FIXED:
		return pl_avro_read_fixed(cur, w->size, &data);
	case PL_AVRO_T_RECORD:
		for (size_t i = 0; i < w->count; i++)
			if (!pl_avro_skip(cur, w->fields[i].type, finite))
				return false;
		return true;
	case PL_AVRO_T_ARRAY:
	case PL_AVRO_T_MAP:
		for (;;) {
			if (!pl_avro_read_block(cur, &count))
				return false;
			if (count == 0)
				return true;
			for (uint64_t i = 0; i < count; i++)
				if ((w->kind == PL_AVRO_T_MAP &&
				     !pl_avro_read_len(cur, &data, &len)) ||
				    !pl_avro_skip(cur, w->items, finite))
					return false;
		}
	case PL_AVRO_T_UNION:
		return pl_avro_read_long(cur, &n) && n >= 0 && (uint64_t)n < w->count &&
		       pl_avro_skip(cur, w->branches[n], finite);
	}
	return false;
}

/* Bytes 0x00..0xFF as the UTF-8 of code points U+0000..U+00FF (the JSON form of bytes and
 * fixed); out needs 2 * len bytes. Returns the length written. */
static inline size_t pl_avro_latin1_encode(const uint8_t *p, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x80) {
			out[n++] = (char)p[i];
		} else {
			out[n++] = (char)(0xC0 | (p[i] >> 6));
			out[n++] = (char)(0x80 | (p[i] & 0x3F));
		}
	}
	return n;
}

/* The checks before any read of single-object bytes (avro.c): the header, a known writer
 * schema, and pl_avro_walk of the body. On PL_OK *writer and the body; else the error and
 * its reason, as pl_avro_decode gives them. */
pl_err_t pl_avro_body(const pl_avro_registry_t *registry, const void *data, size_t len,
                      const pl_avro_schema_t **writer, pl_avro_cursor_t *body, char *errstr,
                      size_t errstr_size);
/* The schema's tree, and the latest version of its record (the reader schema). */
const pl_avro_tree_t *pl_avro_schema_tree(const pl_avro_schema_t *schema);
const pl_avro_schema_t *pl_avro_schema_latest(const pl_avro_schema_t *schema);

#endif
