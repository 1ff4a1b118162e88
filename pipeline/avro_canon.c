/* avro_canon.c — relations between schemas: the Avro "Parsing Canonical Form" of a schema and
 * its CRC-64-AVRO (Rabin) fingerprint, as defined in the Avro specification ("Parsing Canonical
 * Form for Schemas", "Schema Fingerprints"), and the schema-resolution rules that say whether a
 * reader can read a writer's data. Owns nothing beyond the strings it returns.
 *
 * The form is emitted from the schema tree (avro_walk.c), which has already resolved every name
 * to its full name and dropped everything but the canonical attributes: a named type is written
 * in full where it first appears and as its full name afterwards; attributes come in the order
 * name, type, fields, symbols, items, values, size; no whitespace. Names and symbols are
 * validated identifiers, so no string needs escaping. */
#include <stdio.h>
#include <string.h>

#include "avro.h"
#include "avro_walk.h"
#include "mem.h"

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

uint64_t pl_avro_crc64(const void *data, size_t len)
{
	/* Bitwise form of the specification's table-driven algorithm: no table to initialise,
	 * and fingerprints are only computed when a registry is built. */
	const uint8_t *p = data;
	uint64_t fp = CRC64_AVRO_EMPTY;
	for (size_t i = 0; i < len; i++) {
		uint64_t t = (fp ^ p[i]) & 0xff;
		for (int k = 0; k < 8; k++)
			t = (t >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (t & 1)));
		fp = (fp >> 8) ^ t;
	}
	return fp;
}

typedef struct out {
	char *buf;
	size_t len, cap;
	const pl_avro_node_t **seen; /* named types already written in full */
	size_t n_seen, cap_seen;
} out_t;

static void put(out_t *o, const char *s)
{
	size_t n = strlen(s);
	if (o->len + n + 1 > o->cap) {
		while (o->len + n + 1 > o->cap)
			o->cap = o->cap ? o->cap * 2 : 256;
		o->buf = pl_realloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, s, n + 1);
	o->len += n;
}

static void put_quoted(out_t *o, const char *s)
{
	put(o, "\"");
	put(o, s);
	put(o, "\"");
}

const char *const pl_avro_type_names[] = {
    [PL_AVRO_T_NULL] = "null",   [PL_AVRO_T_BOOLEAN] = "boolean", [PL_AVRO_T_INT] = "int",
    [PL_AVRO_T_LONG] = "long",   [PL_AVRO_T_FLOAT] = "float",     [PL_AVRO_T_DOUBLE] = "double",
    [PL_AVRO_T_BYTES] = "bytes", [PL_AVRO_T_STRING] = "string",   [PL_AVRO_T_RECORD] = "record",
    [PL_AVRO_T_ENUM] = "enum",   [PL_AVRO_T_ARRAY] = "array",     [PL_AVRO_T_MAP] = "map",
    [PL_AVRO_T_UNION] = "union", [PL_AVRO_T_FIXED] = "fixed",
};

const char *pl_avro_kind_name(const pl_avro_node_t *node)
{
	return node->name ? node->short_name : pl_avro_type_names[node->kind];
}

static void emit(out_t *o, const pl_avro_node_t *node)
{
	if (node->kind <= PL_AVRO_T_STRING) {
		put_quoted(o, pl_avro_type_names[node->kind]);
		return;
	}
	if (node->kind == PL_AVRO_T_UNION) {
		put(o, "[");
		for (size_t i = 0; i < node->count; i++) {
			if (i)
				put(o, ",");
			emit(o, node->branches[i]);
		}
		put(o, "]");
		return;
	}
	if (node->name) {
		for (size_t i = 0; i < o->n_seen; i++)
			if (o->seen[i] == node) {
				put_quoted(o, node->name);
				return;
			}
		if (o->n_seen == o->cap_seen) {
			o->cap_seen = o->cap_seen ? o->cap_seen * 2 : 8;
			o->seen = pl_realloc(o->seen, o->cap_seen * sizeof(*o->seen));
		}
		o->seen[o->n_seen++] = node;
		put(o, "{\"name\":");
		put_quoted(o, node->name);
		put(o, ",\"type\":");
	} else {
		put(o, "{\"type\":");
	}
	put_quoted(o, pl_avro_type_names[node->kind]);
	switch (node->kind) {
	case PL_AVRO_T_RECORD:
		put(o, ",\"fields\":[");
		for (size_t i = 0; i < node->count; i++) {
			put(o, i ? ",{\"name\":" : "{\"name\":");
			put_quoted(o, node->fields[i].name);
			put(o, ",\"type\":");
			emit(o, node->fields[i].type);
			put(o, "}");
		}
		put(o, "]");
		break;
	case PL_AVRO_T_ENUM:
		put(o, ",\"symbols\":[");
		for (size_t i = 0; i < node->count; i++) {
			if (i)
				put(o, ",");
			put_quoted(o, node->symbols[i]);
		}
		put(o, "]");
		break;
	case PL_AVRO_T_ARRAY:
	case PL_AVRO_T_MAP:
		put(o, node->kind == PL_AVRO_T_ARRAY ? ",\"items\":" : ",\"values\":");
		emit(o, node->items);
		break;
	case PL_AVRO_T_FIXED: {
		char size[32];
		snprintf(size, sizeof(size), ",\"size\":%zu", node->size);
		put(o, size);
		break;
	}
	default:
		break;
	}
	put(o, "}");
}

char *pl_avro_tree_canonical(const pl_avro_tree_t *tree)
{
	out_t o = {0};
	put(&o, "");
	emit(&o, tree->root);
	pl_free(o.seen);
	return o.buf;
}

char *pl_avro_canonical_form(const char *schema_json, char *errstr, size_t errstr_size)
{
	pl_avro_tree_t *tree = pl_avro_tree_parse(schema_json, false, errstr, errstr_size);
	if (!tree)
		return NULL;
	char *canonical = pl_avro_tree_canonical(tree);
	pl_avro_tree_destroy(tree);
	return canonical;
}

/* ---- schema resolution (static) ---- */

bool pl_avro_names_match(const pl_avro_node_t *writer, const pl_avro_node_t *reader)
{
	return !strcmp(writer->name, reader->name) ||
	       !strcmp(writer->short_name, reader->short_name);
}

static bool exact_match(const pl_avro_node_t *w, const pl_avro_node_t *r)
{
	if (w->kind != r->kind)
		return false;
	if (w->name && !pl_avro_names_match(w, r))
		return false;
	return w->kind != PL_AVRO_T_FIXED || w->size == r->size;
}

static bool promotes(pl_avro_kind_t w, pl_avro_kind_t r)
{
	switch (w) {
	case PL_AVRO_T_INT:
		return r == PL_AVRO_T_LONG || r == PL_AVRO_T_FLOAT || r == PL_AVRO_T_DOUBLE;
	case PL_AVRO_T_LONG:
		return r == PL_AVRO_T_FLOAT || r == PL_AVRO_T_DOUBLE;
	case PL_AVRO_T_FLOAT:
		return r == PL_AVRO_T_DOUBLE;
	case PL_AVRO_T_STRING:
		return r == PL_AVRO_T_BYTES;
	case PL_AVRO_T_BYTES:
		return r == PL_AVRO_T_STRING;
	default:
		return false;
	}
}

int pl_avro_union_pick(const pl_avro_node_t *reader_union, const pl_avro_node_t *writer)
{
	for (size_t i = 0; i < reader_union->count; i++)
		if (exact_match(writer, reader_union->branches[i]))
			return (int)i;
	for (size_t i = 0; i < reader_union->count; i++)
		if (promotes(writer->kind, reader_union->branches[i]->kind))
			return (int)i;
	return -1;
}

#define RESOLVE_MAX_DEPTH 64

typedef struct resolve_ctx {
	const pl_avro_node_t *w[RESOLVE_MAX_DEPTH], *r[RESOLVE_MAX_DEPTH];
	size_t n;
	char *errstr;
	size_t errstr_size;
} resolve_ctx_t;

static bool resolvable(resolve_ctx_t *c, const pl_avro_node_t *w, const pl_avro_node_t *r)
{
	if (w->kind == PL_AVRO_T_UNION) {
		for (size_t i = 0; i < w->count; i++)
			if (!resolvable(c, w->branches[i], r))
				return false;
		return true;
	}
	if (r->kind == PL_AVRO_T_UNION) {
		int branch = pl_avro_union_pick(r, w);
		if (branch < 0) {
			pl_avro_errf(c->errstr, c->errstr_size,
			             "writer type '%s' matches no branch of the reader union",
			             pl_avro_kind_name(w));
			return false;
		}
		return resolvable(c, w, r->branches[branch]);
	}
	if (!exact_match(w, r) && !promotes(w->kind, r->kind)) {
		pl_avro_errf(c->errstr, c->errstr_size, "writer type '%s' cannot be read as '%s'",
		             pl_avro_kind_name(w), pl_avro_kind_name(r));
		return false;
	}
	if (r->kind == PL_AVRO_T_ARRAY || r->kind == PL_AVRO_T_MAP)
		return resolvable(c, w->items, r->items);
	if (r->kind == PL_AVRO_T_ENUM) {
		for (size_t i = 0; i < w->count; i++) {
			bool known = r->enum_default != NULL;
			for (size_t k = 0; !known && k < r->count; k++)
				known = !strcmp(w->symbols[i], r->symbols[k]);
			if (!known) {
				pl_avro_errf(c->errstr, c->errstr_size,
				             "symbol '%s' of %s is unknown to the reader",
				             w->symbols[i], w->name);
				return false;
			}
		}
		return true;
	}
	if (r->kind != PL_AVRO_T_RECORD)
		return true;
	for (size_t i = 0; i < c->n; i++)
		if (c->w[i] == w && c->r[i] == r) /* already being checked (recursive type) */
			return true;
	if (c->n == RESOLVE_MAX_DEPTH) {
		pl_avro_errf(c->errstr, c->errstr_size, "schemas nested too deeply");
		return false;
	}
	c->w[c->n] = w, c->r[c->n] = r, c->n++;
	bool ok = true;
	for (size_t i = 0; ok && i < r->count; i++) {
		const pl_avro_field_t *rf = &r->fields[i], *wf = NULL;
		for (size_t k = 0; !wf && k < w->count; k++)
			if (!strcmp(w->fields[k].name, rf->name))
				wf = &w->fields[k];
		if (wf)
			ok = resolvable(c, wf->type, rf->type);
		else if (!rf->default_value) {
			pl_avro_errf(c->errstr, c->errstr_size,
			             "%s.%s is not in the writer and has no default", r->name,
			             rf->name);
			ok = false;
		}
	}
	c->n--;
	return ok;
}

bool pl_avro_resolvable(const pl_avro_node_t *writer, const pl_avro_node_t *reader, char *errstr,
                        size_t errstr_size)
{
	resolve_ctx_t c = {.errstr = errstr, .errstr_size = errstr_size};
	return resolvable(&c, writer, reader);
}
