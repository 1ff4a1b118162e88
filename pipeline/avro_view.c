/* avro_view.c — views of single-object records (see avro.h): the top-level fields and the JSON
 * text of a record read straight from its bytes, without a jansson tree.
 *
 * Two forms. Direct, when the writer schema is the reader schema (the latest version, the
 * common case): one pass locates each top-level field and checks the reals JSON cannot hold;
 * a second copies the scalars into the view's one allocation; the text is written from the
 * bytes with jsonw's builder. Resolved, when the writer is an older version: the record is
 * decoded to JSON (pl_avro_decode) and the view reads that. Either way the fields and the text
 * are what pl_avro_decode and pl_json_text give; any record the direct pass refuses goes
 * through pl_avro_decode, so errors are the decoder's own. */
#include <stdio.h>
#include <string.h>

#include "avro_read.h"
#include "jsonw.h"
#include "mem.h"

#define VIEW_MAX_FIELDS 64 /* records with more fields are viewed through their JSON */

struct pl_avro_view {
	const pl_avro_schema_t *schema; /* reader */
	const pl_avro_node_t *root;     /* reader's record */
	const pl_avro_registry_t *registry;
	const void *data; /* the record's bytes (borrowed) */
	size_t len;
	json_t *json;            /* resolved form: the decoded record; direct: NULL */
	const uint8_t **starts;  /* direct: each field's first byte, then the body's end */
	pl_avro_scalar_t *field; /* direct: root->count scalars */
};

int pl_avro_field_index(const pl_avro_schema_t *schema, const char *name)
{
	const pl_avro_node_t *root = pl_avro_schema_tree(schema)->root;
	for (size_t i = 0; i < root->count; i++)
		if (strcmp(root->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The branch of a union value (read from cur), or n itself when it is not a union. */
static const pl_avro_node_t *branch_of(pl_avro_cursor_t *cur, const pl_avro_node_t *n)
{
	int64_t b;
	if (n->kind != PL_AVRO_T_UNION)
		return n;
	if (!pl_avro_read_long(cur, &b) || b < 0 || (uint64_t)b >= n->count)
		return NULL;
	return n->branches[b];
}

/* A value as read from the body. A string, bytes or fixed points into the body (in_body: not
 * NUL-terminated; latin1: bytes or fixed, whose JSON form is their bytes as code points). */
typedef struct raw {
	pl_avro_scalar_t s;
	bool in_body, latin1;
} raw_t;

/* Reads the value of n (a union's branch) at cur and moves past it; records, arrays and maps
 * are moved over as PL_AVRO_V_OTHER. False when the bytes are not one value or hold a real that
 * JSON cannot (the decoder refuses those records). */
static bool read_value(pl_avro_cursor_t *cur, const pl_avro_node_t *n, raw_t *v)
{
	const uint8_t *data;
	size_t len;
	int64_t i;
	*v = (raw_t){.s.type = PL_AVRO_V_OTHER};
	if (!(n = branch_of(cur, n)))
		return false;
	pl_avro_scalar_t *s = &v->s;
	switch (n->kind) {
	case PL_AVRO_T_NULL:
		s->type = PL_AVRO_V_NULL;
		return true;
	case PL_AVRO_T_BOOLEAN:
		if (!pl_avro_read_fixed(cur, 1, &data))
			return false;
		s->type = PL_AVRO_V_BOOLEAN;
		s->boolean = data[0] != 0;
		return true;
	case PL_AVRO_T_INT:
	case PL_AVRO_T_LONG:
		s->type = PL_AVRO_V_INTEGER;
		return pl_avro_read_long(cur, &s->integer);
	case PL_AVRO_T_FLOAT:
	case PL_AVRO_T_DOUBLE:
		if (!pl_avro_read_fixed(cur, n->kind == PL_AVRO_T_FLOAT ? 4 : 8, &data))
			return false;
		s->type = PL_AVRO_V_REAL;
		s->real =
		    n->kind == PL_AVRO_T_FLOAT ? pl_avro_float_of(data) : pl_avro_double_of(data);
		return isfinite(s->real);
	case PL_AVRO_T_ENUM:
		if (!pl_avro_read_long(cur, &i) || i < 0 || (uint64_t)i >= n->count)
			return false;
		s->type = PL_AVRO_V_STRING;
		s->string = n->symbols[i]; /* owned by the registry */
		s->length = strlen(s->string);
		return true;
	case PL_AVRO_T_STRING:
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED:
		if (n->kind == PL_AVRO_T_FIXED ? !pl_avro_read_fixed(cur, len = n->size, &data)
		                               : !pl_avro_read_len(cur, &data, &len))
			return false;
		s->type = PL_AVRO_V_STRING;
		s->string = (const char *)data;
		s->length = len;
		v->in_body = true;
		v->latin1 = n->kind != PL_AVRO_T_STRING;
		return true;
	default:
		return pl_avro_skip(cur, n, true);
	}
}

/* Bytes v's text takes as a NUL-terminated copy (0: nothing to copy). */
static size_t text_size(const raw_t *v)
{
	return !v->in_body ? 0 : v->latin1 ? 2 * v->s.length + 1 : v->s.length + 1;
}

/* Writes v's text in its JSON form, NUL-terminated, at *text (text_size bytes), points v there
 * and moves *text past it. */
static void copy_text(raw_t *v, char **text)
{
	pl_avro_scalar_t *s = &v->s;
	char *to = *text;
	if (v->latin1)
		s->length = pl_avro_latin1_encode((const uint8_t *)s->string, s->length, to);
	else
		memcpy(to, s->string, s->length);
	to[s->length] = '\0';
	s->string = to;
	v->in_body = v->latin1 = false;
	*text = to + s->length + 1;
}

/* The direct form; NULL when the record needs the decoder (a real JSON cannot hold, a record
 * too wide, bytes that are not one value). */
static pl_avro_view_t *open_direct(const pl_avro_schema_t *schema, pl_avro_cursor_t body)
{
	const pl_avro_node_t *root = pl_avro_schema_tree(schema)->root;
	const uint8_t *starts[VIEW_MAX_FIELDS + 1];
	raw_t raws[VIEW_MAX_FIELDS];
	size_t text = 0, n = root->count;
	if (n > VIEW_MAX_FIELDS)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		starts[i] = body.p;
		if (!read_value(&body, root->fields[i].type, &raws[i]))
			return NULL;
		text += text_size(&raws[i]);
	}
	if (body.p != body.end)
		return NULL;
	starts[n] = body.p;
	pl_avro_view_t *v =
	    pl_malloc(sizeof(*v) + (n + 1) * sizeof(*v->starts) + n * sizeof(*v->field) + text);
	*v = (pl_avro_view_t){.schema = schema, .root = root};
	v->field = (pl_avro_scalar_t *)(v + 1);
	v->starts = (const uint8_t **)(v->field + n);
	char *strings = (char *)(v->starts + n + 1);
	memcpy(v->starts, starts, (n + 1) * sizeof(*starts));
	for (size_t i = 0; i < n; i++) {
		if (raws[i].in_body)
			copy_text(&raws[i], &strings);
		v->field[i] = raws[i].s;
	}
	return v;
}

pl_err_t pl_avro_view_open(const pl_avro_registry_t *registry, const void *data, size_t len,
                           pl_avro_view_t **view, char *errstr, size_t errstr_size)
{
	const pl_avro_schema_t *writer;
	pl_avro_cursor_t body;
	*view = NULL;
	pl_err_t err = pl_avro_body(registry, data, len, &writer, &body, errstr, errstr_size);
	if (err)
		return err;
	pl_avro_view_t *v =
	    pl_avro_schema_latest(writer) == writer ? open_direct(writer, body) : NULL;
	if (!v) {
		json_t *json;
		const pl_avro_schema_t *reader;
		err = pl_avro_decode(registry, data, len, &json, &reader, errstr, errstr_size);
		if (err)
			return err;
		v = pl_malloc(sizeof(*v));
		*v = (pl_avro_view_t){
		    .schema = reader, .root = pl_avro_schema_tree(reader)->root, .json = json};
	}
	v->registry = registry;
	v->data = data;
	v->len = len;
	*view = v;
	return PL_OK;
}

void pl_avro_view_free(pl_avro_view_t *view)
{
	if (!view)
		return;
	json_decref(view->json);
	pl_free(view);
}

const pl_avro_schema_t *pl_avro_view_schema(const pl_avro_view_t *view)
{
	return view->schema;
}

pl_avro_scalar_t pl_avro_view_field(const pl_avro_view_t *view, int index)
{
	pl_avro_scalar_t s = {.type = PL_AVRO_V_ABSENT};
	if (index < 0 || (size_t)index >= view->root->count)
		return s;
	if (!view->json)
		return view->field[index];
	const json_t *j = json_object_get(view->json, view->root->fields[index].name);
	switch (json_typeof(j)) {
	case JSON_NULL:
		s.type = PL_AVRO_V_NULL;
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		s.type = PL_AVRO_V_BOOLEAN;
		s.boolean = json_is_true(j);
		break;
	case JSON_INTEGER:
		s.type = PL_AVRO_V_INTEGER;
		s.integer = json_integer_value(j);
		break;
	case JSON_REAL:
		s.type = PL_AVRO_V_REAL;
		s.real = json_real_value(j);
		break;
	case JSON_STRING:
		s.type = PL_AVRO_V_STRING;
		s.string = json_string_value(j);
		s.length = json_string_length(j);
		break;
	default:
		s.type = j ? PL_AVRO_V_OTHER : PL_AVRO_V_ABSENT;
		break;
	}
	return s;
}

/* ---- text: the record's JSON from its bytes ---- */

static bool write_value(pl_jsonw_t *w, pl_avro_cursor_t *cur, const pl_avro_node_t *n);

/* A record's fields, each from its first byte (starts[i]), in the writer's text order. */
static bool write_fields(pl_jsonw_t *w, const pl_avro_node_t *n, const uint8_t *const *starts,
                         const uint8_t *end)
{
	pl_jsonw_char(w, '{');
	for (size_t k = 0; k < n->count; k++) {
		size_t i = w->sorted ? n->sorted[k] : k;
		if (k)
			pl_jsonw_char(w, ',');
		pl_jsonw_string(w, n->fields[i].name, strlen(n->fields[i].name));
		pl_jsonw_char(w, ':');
		pl_avro_cursor_t cur = {starts[i], end};
		if (!write_value(w, &cur, n->fields[i].type))
			return false;
	}
	pl_jsonw_char(w, '}');
	return true;
}

/* A scalar as JSON: a string of the body written from the body (bytes and fixed through a copy
 * in their JSON form). */
static bool write_scalar(pl_jsonw_t *w, raw_t *v)
{
	const pl_avro_scalar_t *s = &v->s;
	char stack_text[256];
	switch (s->type) {
	case PL_AVRO_V_NULL:
		pl_jsonw_raw(w, "null", 4);
		return true;
	case PL_AVRO_V_BOOLEAN:
		pl_jsonw_raw(w, s->boolean ? "true" : "false", s->boolean ? 4 : 5);
		return true;
	case PL_AVRO_V_INTEGER:
		pl_jsonw_integer(w, s->integer);
		return true;
	case PL_AVRO_V_REAL:
		pl_jsonw_real(w, s->real);
		return true;
	case PL_AVRO_V_STRING:
		if (v->latin1) {
			size_t need = text_size(v);
			char *text = need <= sizeof(stack_text) ? stack_text : pl_malloc(need),
			     *t = text;
			copy_text(v, &t);
			pl_jsonw_string(w, s->string, s->length);
			if (text != stack_text)
				pl_free(text);
		} else {
			pl_jsonw_string(w, s->string, s->length);
		}
		return true;
	default:
		return false;
	}
}

static bool write_value(pl_jsonw_t *w, pl_avro_cursor_t *cur, const pl_avro_node_t *n)
{
	const uint8_t *starts[VIEW_MAX_FIELDS + 1];
	raw_t v;
	uint64_t count;
	bool first = true;
	n = branch_of(cur, n);
	if (!n)
		return false;
	switch (n->kind) {
	case PL_AVRO_T_NULL:
	case PL_AVRO_T_BOOLEAN:
	case PL_AVRO_T_INT:
	case PL_AVRO_T_LONG:
	case PL_AVRO_T_FLOAT:
	case PL_AVRO_T_DOUBLE:
	case PL_AVRO_T_ENUM:
	case PL_AVRO_T_STRING:
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED:
		return read_value(cur, n, &v) && write_scalar(w, &v);
	case PL_AVRO_T_RECORD:
		if (n->count > VIEW_MAX_FIELDS)
			return false;
		for (size_t i = 0; i < n->count; i++) {
			starts[i] = cur->p;
			if (!pl_avro_skip(cur, n->fields[i].type, true))
				return false;
		}
		return write_fields(w, n, starts, cur->p);
	case PL_AVRO_T_ARRAY:
		pl_jsonw_char(w, '[');
		for (;;) {
			if (!pl_avro_read_block(cur, &count))
				return false;
			if (count == 0)
				break;
			for (uint64_t i = 0; i < count; i++, first = false) {
				if (!first)
					pl_jsonw_char(w, ',');
				if (!write_value(w, cur, n->items))
					return false;
			}
		}
		pl_jsonw_char(w, ']');
		return true;
	default: /* maps: keys sorted, a repeated key kept once: the decoder's JSON does that */
		return false;
	}
}

char *pl_avro_view_json(const pl_avro_view_t *view, unsigned flags, size_t *len)
{
	if (!view->json) {
		pl_jsonw_t w;
		pl_jsonw_init(&w, flags);
		if (write_fields(&w, view->root, view->starts, view->starts[view->root->count]))
			return pl_jsonw_finish(&w, len);
		pl_free(pl_jsonw_finish(&w, NULL));
	}
	/* the resolved form, or a record the direct text does not write (a map in it) */
	json_t *json = view->json;
	if (!json && pl_avro_decode(view->registry, view->data, view->len, &json, NULL, NULL, 0))
		return NULL;
	char *text = pl_json_text(json, flags, len);
	if (json != view->json)
		json_decref(json);
	return text;
}
