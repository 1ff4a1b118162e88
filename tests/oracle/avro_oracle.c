/* avro_oracle.c — Apache avro-c as the reference encoder of the tests (see avro_oracle.h).
 * avro-c's own avro.h is shadowed by pipeline/avro.h on the include path, so its sub-headers are
 * included one by one. */
#include "avro_oracle.h"

#include <avro/basics.h>
#include <avro/errors.h>
#include <avro/generic.h>
#include <avro/io.h>
#include <avro/schema.h>
#include <avro/value.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_read.h" /* pl_avro_schema_tree */
#include "avro_walk.h"

/* By fingerprint: avro-c's class depends on the canonical form only (defaults come from the
 * tree at each call), so an entry stays right across registries. */
typedef struct cached {
	uint64_t fingerprint;
	avro_schema_t avro;
	avro_value_iface_t *iface;
} cached_t;

static cached_t cache[64];
static size_t n_cached;

void avro_oracle_reset(void)
{
	for (size_t i = 0; i < n_cached; i++) {
		avro_value_iface_decref(cache[i].iface);
		avro_schema_decref(cache[i].avro);
	}
	n_cached = 0;
}

/* avro-c's class of schema, parsed from its Parsing Canonical Form (a valid schema text). */
static avro_value_iface_t *class_of(const pl_avro_schema_t *schema)
{
	for (size_t i = 0; i < n_cached; i++)
		if (cache[i].fingerprint == pl_avro_schema_fingerprint(schema))
			return cache[i].iface;
	if (n_cached == sizeof(cache) / sizeof(cache[0]))
		avro_oracle_reset();
	const char *text = pl_avro_schema_canonical(schema);
	cached_t *c = &cache[n_cached];
	if (avro_schema_from_json_length(text, strlen(text), &c->avro))
		return NULL;
	if (!(c->iface = avro_generic_class_from_schema(c->avro))) {
		avro_schema_decref(c->avro);
		return NULL;
	}
	c->fingerprint = pl_avro_schema_fingerprint(schema);
	n_cached++;
	return c->iface;
}

/* Bytes of the codec's JSON form of bytes/fixed (one code point U+0000..U+00FF per byte). */
static bool latin1(const json_t *json, uint8_t **buf, size_t *n)
{
	const char *s = json_string_value(json);
	long len = s ? pl_avro_latin1_decode(s, json_string_length(json), NULL) : -1;
	if (len < 0)
		return false;
	*buf = malloc((size_t)len + 1);
	pl_avro_latin1_decode(s, json_string_length(json), *buf);
	*n = (size_t)len;
	return true;
}

static bool set(const pl_avro_node_t *node, const json_t *json, avro_value_t *v)
{
	avro_value_t child;
	if (node->kind == PL_AVRO_T_UNION) {
		/* the branch is the mapping's choice (shared); the oracle checks its bytes */
		int chosen = pl_avro_json_branch(node, json);
		return chosen >= 0 && !avro_value_set_branch(v, chosen, &child) &&
		       set(node->branches[chosen], json, &child);
	}
	if (node->kind == PL_AVRO_T_BYTES || node->kind == PL_AVRO_T_FIXED) {
		uint8_t *buf;
		size_t n;
		if (!latin1(json, &buf, &n))
			return false;
		int rc = node->kind == PL_AVRO_T_FIXED ? avro_value_set_fixed(v, buf, n)
		                                       : avro_value_set_bytes(v, buf, n);
		free(buf);
		return rc == 0;
	}
	if (!pl_avro_json_fits(node, json))
		return false;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		return !avro_value_set_null(v);
	case PL_AVRO_T_BOOLEAN:
		return !avro_value_set_boolean(v, json_is_true(json));
	case PL_AVRO_T_INT:
		return !avro_value_set_int(v, (int32_t)json_integer_value(json));
	case PL_AVRO_T_LONG:
		return !avro_value_set_long(v, json_integer_value(json));
	case PL_AVRO_T_FLOAT:
		return !avro_value_set_float(v, (float)json_number_value(json));
	case PL_AVRO_T_DOUBLE:
		return !avro_value_set_double(v, json_number_value(json));
	case PL_AVRO_T_STRING: /* avro-c counts the terminating NUL */
		return !avro_value_set_string_len(v, json_string_value(json),
		                                  json_string_length(json) + 1);
	case PL_AVRO_T_ENUM:
		for (size_t i = 0; i < node->count; i++)
			if (!strcmp(node->symbols[i], json_string_value(json)))
				return !avro_value_set_enum(v, (int)i);
		return false;
	case PL_AVRO_T_RECORD:
		for (size_t i = 0; i < node->count; i++) {
			const json_t *given = json_object_get(json, node->fields[i].name);
			if (!given)
				given = node->fields[i].default_value;
			if (!given || avro_value_get_by_index(v, i, &child, NULL) ||
			    !set(node->fields[i].type, given, &child))
				return false;
		}
		return json_object_size(json) <= node->count;
	case PL_AVRO_T_ARRAY: {
		size_t i;
		json_t *item;
		json_array_foreach(json, i, item)
		{
			if (avro_value_append(v, &child, NULL) || !set(node->items, item, &child))
				return false;
		}
		return true;
	}
	case PL_AVRO_T_MAP: {
		const char *key;
		json_t *item;
		json_object_foreach((json_t *)json, key, item)
		{
			if (avro_value_add(v, key, &child, NULL, NULL) ||
			    !set(node->items, item, &child))
				return false;
		}
		return true;
	}
	default:
		return false;
	}
}

bool avro_oracle_encode(const pl_avro_schema_t *schema, const json_t *value, uint8_t **out,
                        size_t *len, char *errstr, size_t errstr_size)
{
	*out = NULL;
	*len = 0;
	avro_value_iface_t *iface = class_of(schema);
	avro_value_t record;
	if (!iface || avro_generic_value_new(iface, &record)) {
		snprintf(errstr, errstr_size, "avro-c: %s", avro_strerror());
		return false;
	}
	size_t size = 0;
	bool ok = set(pl_avro_schema_tree(schema)->root, value, &record) &&
	          !avro_value_sizeof(&record, &size);
	uint8_t *buf = ok ? malloc(PL_AVRO_HEADER_LEN + size + 1) : NULL;
	if (ok) {
		uint64_t fp = pl_avro_schema_fingerprint(schema);
		buf[0] = PL_AVRO_MAGIC0;
		buf[1] = PL_AVRO_MAGIC1;
		for (int i = 0; i < 8; i++)
			buf[2 + i] = (uint8_t)(fp >> (8 * i));
		avro_writer_t w =
		    avro_writer_memory((const char *)buf + PL_AVRO_HEADER_LEN, (int64_t)size);
		ok = w && !avro_value_write(w, &record);
		if (w)
			avro_writer_free(w);
	}
	avro_value_decref(&record);
	if (!ok) {
		snprintf(errstr, errstr_size, "the value does not fit, or avro-c: %s",
		         avro_strerror());
		free(buf);
		return false;
	}
	*out = buf;
	*len = PL_AVRO_HEADER_LEN + size;
	return true;
}
