/* avro_walk.c — the avro module's schema tree (parsed with jansson) and the validator that walks
 * untrusted Avro binary bodies before they are read (lengths within the bytes left and the
 * limits, enum indexes and union branches in range, varints well formed). Owns pl_avro_tree_t
 * and its nodes. */
#include "avro_walk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

#define PARSE_MAX_DEPTH 64 /* schema JSON nesting, and default-value nesting */

void pl_avro_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	if (!errstr || !errstr_size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}

/* ---- UTF-8 ---- */

/* Decodes one code point at s[*i]; -1 when malformed. */
static long utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	size_t n;
	long cp, min;
	if (c < 0x80) {
		(*i)++;
		return c;
	} else if ((c & 0xE0) == 0xC0) {
		n = 1, cp = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 2, cp = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i <= n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[*i + k] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*i += n + 1;
	return cp;
}

bool pl_avro_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len)
		if (utf8_next((const unsigned char *)s, len, &i) < 0)
			return false;
	return true;
}

long pl_avro_latin1_decode(const char *s, size_t len, uint8_t *out)
{
	size_t i = 0;
	long n = 0;
	while (i < len) {
		long cp = utf8_next((const unsigned char *)s, len, &i);
		if (cp < 0 || cp > 0xFF)
			return -1;
		if (out)
			out[n] = (uint8_t)cp;
		n++;
	}
	return n;
}

/* ---- tree ---- */

typedef struct parser {
	pl_avro_tree_t *tree;
	char *errstr;
	size_t errstr_size;
	int depth;
} parser_t;

static pl_avro_node_t *node_new(parser_t *p, pl_avro_kind_t kind)
{
	pl_avro_tree_t *tree = p->tree;
	if (tree->n_nodes == tree->cap_nodes) {
		tree->cap_nodes = tree->cap_nodes ? tree->cap_nodes * 2 : 16;
		tree->nodes = pl_realloc(tree->nodes, tree->cap_nodes * sizeof(*tree->nodes));
	}
	pl_avro_node_t *node = pl_calloc(1, sizeof(*node));
	node->kind = kind;
	tree->nodes[tree->n_nodes++] = node;
	return node;
}

void pl_avro_tree_destroy(pl_avro_tree_t *tree)
{
	if (!tree)
		return;
	for (size_t i = 0; i < tree->n_nodes; i++) {
		pl_avro_node_t *node = tree->nodes[i];
		pl_free(node->name);
		for (size_t k = 0; node->fields && k < node->count; k++) {
			pl_free(node->fields[k].name);
			json_decref(node->fields[k].default_value);
		}
		for (size_t k = 0; node->symbols && k < node->count; k++)
			pl_free(node->symbols[k]);
		pl_free(node->fields);
		pl_free(node->sorted);
		pl_free(node->symbols);
		pl_free(node->branches);
		pl_free(node);
	}
	pl_free(tree->nodes);
	pl_free(tree);
}

static int primitive_kind(const char *s)
{
	for (int k = 0; k <= PL_AVRO_T_STRING; k++)
		if (!strcmp(s, pl_avro_type_names[k]))
			return k;
	return -1;
}

static bool ident_valid(const char *s, size_t len)
{
	if (!len || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* A dotted name: every component an identifier. */
static bool fullname_valid(const char *s)
{
	const char *dot;
	while ((dot = strchr(s, '.'))) {
		if (!ident_valid(s, (size_t)(dot - s)))
			return false;
		s = dot + 1;
	}
	return ident_valid(s, strlen(s));
}

static pl_avro_node_t *named_find(const pl_avro_tree_t *tree, const char *fullname)
{
	for (size_t i = 0; i < tree->n_nodes; i++)
		if (tree->nodes[i]->name && !strcmp(tree->nodes[i]->name, fullname))
			return tree->nodes[i];
	return NULL;
}

static char *qualify(const char *ns, const char *name)
{
	if (strchr(name, '.') || !ns || !*ns)
		return pl_strdup(name);
	return pl_asprintf("%s.%s", ns, name);
}

static pl_avro_node_t *parse(parser_t *p, const json_t *json, const char *ns);

static pl_avro_node_t *parse_reference(parser_t *p, const char *s, const char *ns)
{
	int kind = primitive_kind(s);
	if (kind >= 0)
		return node_new(p, (pl_avro_kind_t)kind);
	char *full = qualify(ns, s);
	pl_avro_node_t *node = named_find(p->tree, full);
	if (!node) /* a name of the null namespace, referenced from inside a namespace */
		node = named_find(p->tree, s);
	if (!node)
		pl_avro_errf(p->errstr, p->errstr_size, "unknown type '%s'", full);
	pl_free(full);
	return node;
}

static pl_avro_node_t *parse_union(parser_t *p, const json_t *json, const char *ns)
{
	pl_avro_node_t *node = node_new(p, PL_AVRO_T_UNION);
	size_t n = json_array_size(json);
	node->branches = pl_calloc(n ? n : 1, sizeof(*node->branches));
	for (size_t i = 0; i < n; i++) {
		pl_avro_node_t *branch = parse(p, json_array_get(json, i), ns);
		if (!branch)
			return NULL;
		if (branch->kind == PL_AVRO_T_UNION) {
			pl_avro_errf(p->errstr, p->errstr_size, "a union directly inside a union");
			return NULL;
		}
		for (size_t k = 0; k < i; k++) {
			const pl_avro_node_t *other = node->branches[k];
			if (other->kind == branch->kind &&
			    (!branch->name || !strcmp(other->name, branch->name))) {
				pl_avro_errf(p->errstr, p->errstr_size, "union has '%s' twice",
				             pl_avro_kind_name(branch));
				return NULL;
			}
		}
		node->branches[node->count++] = branch;
	}
	return node;
}

/* Registers a named type; returns the namespace its children inherit (pl_malloc'd). */
static pl_avro_node_t *parse_named(parser_t *p, pl_avro_kind_t kind, const json_t *json,
                                   const char *ns, char **child_ns)
{
	const char *name = json_string_value(json_object_get(json, "name"));
	const json_t *ns_attr = json_object_get(json, "namespace");
	if (!name || !fullname_valid(name)) {
		pl_avro_errf(p->errstr, p->errstr_size, "a %s needs a valid \"name\"",
		             kind == PL_AVRO_T_RECORD ? "record"
		             : kind == PL_AVRO_T_ENUM ? "enum"
		                                      : "fixed");
		return NULL;
	}
	if (ns_attr && !json_is_null(ns_attr)) {
		ns = json_string_value(ns_attr);
		if (!ns || (*ns && !fullname_valid(ns))) {
			pl_avro_errf(p->errstr, p->errstr_size, "%s: bad \"namespace\"", name);
			return NULL;
		}
	}
	char *full = qualify(ns, name);
	const char *dot = strrchr(full, '.');
	if (primitive_kind(dot ? dot + 1 : full) >= 0 || named_find(p->tree, full)) {
		pl_avro_errf(p->errstr, p->errstr_size, "type '%s' is defined twice", full);
		pl_free(full);
		return NULL;
	}
	pl_avro_node_t *node = node_new(p, kind);
	node->name = full;
	node->short_name = dot ? dot + 1 : full;
	*child_ns = dot ? pl_strndup(full, (size_t)(dot - full)) : pl_strdup("");
	return node;
}

static bool parse_fields(parser_t *p, pl_avro_node_t *node, const json_t *fields, const char *ns)
{
	if (!json_is_array(fields)) {
		pl_avro_errf(p->errstr, p->errstr_size, "%s: \"fields\" must be an array",
		             node->name);
		return false;
	}
	size_t n = json_array_size(fields);
	node->fields = pl_calloc(n ? n : 1, sizeof(*node->fields));
	for (size_t i = 0; i < n; i++) {
		const json_t *f = json_array_get(fields, i);
		const char *fname = json_string_value(json_object_get(f, "name"));
		if (!fname || !ident_valid(fname, strlen(fname))) {
			pl_avro_errf(p->errstr, p->errstr_size, "%s: field %zu needs a valid name",
			             node->name, i);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(node->fields[k].name, fname)) {
				pl_avro_errf(p->errstr, p->errstr_size, "%s: field '%s' twice",
				             node->name, fname);
				return false;
			}
		pl_avro_field_t *field = &node->fields[node->count++];
		field->name = pl_strdup(fname);
		/* Raw default for now; normalised once the whole tree exists. */
		field->default_value = json_incref(json_object_get(f, "default"));
		const json_t *type = json_object_get(f, "type");
		if (!type) {
			pl_avro_errf(p->errstr, p->errstr_size, "%s.%s: no \"type\"", node->name,
			             fname);
			return false;
		}
		field->type = parse(p, type, ns);
		if (!field->type)
			return false;
	}
	/* field indexes in byte order of their names (an insertion sort: records are small) */
	node->sorted = pl_calloc(n ? n : 1, sizeof(*node->sorted));
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		for (; j > 0 &&
		       strcmp(node->fields[i].name, node->fields[node->sorted[j - 1]].name) < 0;
		     j--)
			node->sorted[j] = node->sorted[j - 1];
		node->sorted[j] = i;
	}
	return true;
}

static bool parse_symbols(parser_t *p, pl_avro_node_t *node, const json_t *json)
{
	const json_t *symbols = json_object_get(json, "symbols");
	if (!json_is_array(symbols)) {
		pl_avro_errf(p->errstr, p->errstr_size, "%s: \"symbols\" must be an array",
		             node->name);
		return false;
	}
	size_t n = json_array_size(symbols);
	node->symbols = pl_calloc(n ? n : 1, sizeof(*node->symbols));
	for (size_t i = 0; i < n; i++) {
		const char *sym = json_string_value(json_array_get(symbols, i));
		if (!sym || !ident_valid(sym, strlen(sym))) {
			pl_avro_errf(p->errstr, p->errstr_size, "%s: bad symbol %zu", node->name,
			             i);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(node->symbols[k], sym)) {
				pl_avro_errf(p->errstr, p->errstr_size, "%s: symbol '%s' twice",
				             node->name, sym);
				return false;
			}
		node->symbols[node->count++] = pl_strdup(sym);
	}
	const char *def = json_string_value(json_object_get(json, "default"));
	for (size_t i = 0; def && i < node->count; i++)
		if (!strcmp(node->symbols[i], def))
			node->enum_default = node->symbols[i];
	if (def && !node->enum_default) {
		pl_avro_errf(p->errstr, p->errstr_size, "%s: default '%s' is not a symbol",
		             node->name, def);
		return false;
	}
	return true;
}

static pl_avro_node_t *parse_object(parser_t *p, const json_t *json, const char *ns)
{
	const json_t *type = json_object_get(json, "type");
	if (json_is_object(type) || json_is_array(type))
		return parse(p, type, ns);
	const char *t = json_string_value(type);
	if (!t) {
		pl_avro_errf(p->errstr, p->errstr_size, "a schema object needs a \"type\"");
		return NULL;
	}
	pl_avro_kind_t kind;
	if (!strcmp(t, "record") || !strcmp(t, "error"))
		kind = PL_AVRO_T_RECORD;
	else if (!strcmp(t, "enum"))
		kind = PL_AVRO_T_ENUM;
	else if (!strcmp(t, "fixed"))
		kind = PL_AVRO_T_FIXED;
	else if (!strcmp(t, "array") || !strcmp(t, "map")) {
		bool array = t[0] == 'a';
		const json_t *items = json_object_get(json, array ? "items" : "values");
		if (!items) {
			pl_avro_errf(p->errstr, p->errstr_size, "%s without \"%s\"", t,
			             array ? "items" : "values");
			return NULL;
		}
		pl_avro_node_t *node = node_new(p, array ? PL_AVRO_T_ARRAY : PL_AVRO_T_MAP);
		node->items = parse(p, items, ns);
		return node->items ? node : NULL;
	} else /* a primitive with attributes (logicalType...), or a named reference */
		return parse_reference(p, t, ns);

	char *child_ns = NULL;
	pl_avro_node_t *node = parse_named(p, kind, json, ns, &child_ns);
	bool ok = node != NULL;
	if (ok && kind == PL_AVRO_T_RECORD)
		ok = parse_fields(p, node, json_object_get(json, "fields"), child_ns);
	else if (ok && kind == PL_AVRO_T_ENUM)
		ok = parse_symbols(p, node, json);
	else if (ok) {
		const json_t *size = json_object_get(json, "size");
		ok = json_is_integer(size) && json_integer_value(size) >= 0;
		if (ok)
			node->size = (size_t)json_integer_value(size);
		else
			pl_avro_errf(p->errstr, p->errstr_size, "%s: bad \"size\"", node->name);
	}
	pl_free(child_ns);
	return ok ? node : NULL;
}

static pl_avro_node_t *parse(parser_t *p, const json_t *json, const char *ns)
{
	if (++p->depth > PARSE_MAX_DEPTH) {
		pl_avro_errf(p->errstr, p->errstr_size, "schema nested deeper than %d",
		             PARSE_MAX_DEPTH);
		return NULL;
	}
	pl_avro_node_t *node = NULL;
	if (json_is_string(json))
		node = parse_reference(p, json_string_value(json), ns);
	else if (json_is_array(json))
		node = parse_union(p, json, ns);
	else if (json_is_object(json))
		node = parse_object(p, json, ns);
	else
		pl_avro_errf(p->errstr, p->errstr_size,
		             "a schema must be a string, array or object");
	p->depth--;
	return node;
}

bool pl_avro_json_fits(const pl_avro_node_t *node, const json_t *json)
{
	long n;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		return json_is_null(json);
	case PL_AVRO_T_BOOLEAN:
		return json_is_boolean(json);
	case PL_AVRO_T_INT:
		return json_is_integer(json) && json_integer_value(json) >= INT32_MIN &&
		       json_integer_value(json) <= INT32_MAX;
	case PL_AVRO_T_LONG:
		return json_is_integer(json);
	case PL_AVRO_T_FLOAT:
	case PL_AVRO_T_DOUBLE:
		return json_is_number(json);
	case PL_AVRO_T_STRING:
		return json_is_string(json);
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED:
		n = json_is_string(json) ? pl_avro_latin1_decode(json_string_value(json),
		                                                 json_string_length(json), NULL)
		                         : -1;
		return n >= 0 && (node->kind == PL_AVRO_T_BYTES || (size_t)n == node->size);
	case PL_AVRO_T_ENUM:
		for (size_t i = 0; json_is_string(json) && i < node->count; i++)
			if (!strcmp(node->symbols[i], json_string_value(json)))
				return true;
		return false;
	case PL_AVRO_T_RECORD:
	case PL_AVRO_T_MAP:
		return json_is_object(json);
	case PL_AVRO_T_ARRAY:
		return json_is_array(json);
	case PL_AVRO_T_UNION:
		return false;
	}
	return false;
}

int pl_avro_json_branch(const pl_avro_node_t *union_node, const json_t *json)
{
	int non_null = -1, n_non_null = 0;
	for (size_t i = 0; i < union_node->count; i++) {
		if (pl_avro_json_fits(union_node->branches[i], json))
			return (int)i;
		if (union_node->branches[i]->kind != PL_AVRO_T_NULL)
			non_null = (int)i, n_non_null++;
	}
	return n_non_null == 1 && !json_is_null(json) ? non_null : -1;
}

/* Checks a default against its type and returns it in the codec's JSON mapping (reals for
 * float/double, nested record defaults filled in). Union defaults follow the first branch. */
static json_t *normalise(const pl_avro_node_t *node, const json_t *json, int depth)
{
	if (depth > PARSE_MAX_DEPTH)
		return NULL;
	if (node->kind != PL_AVRO_T_UNION && !pl_avro_json_fits(node, json))
		return NULL;
	switch (node->kind) {
	case PL_AVRO_T_FLOAT:
	case PL_AVRO_T_DOUBLE:
		return json_real(json_number_value(json));
	case PL_AVRO_T_UNION:
		return node->count ? normalise(node->branches[0], json, depth + 1) : NULL;
	case PL_AVRO_T_ARRAY:
	case PL_AVRO_T_MAP: {
		json_t *out = node->kind == PL_AVRO_T_ARRAY ? json_array() : json_object();
		size_t i;
		const char *key;
		json_t *item;
		json_array_foreach(json, i, item)
		{
			json_t *v = normalise(node->items, item, depth + 1);
			if (!v || json_array_append_new(out, v))
				goto bad;
		}
		json_object_foreach((json_t *)json, key, item)
		{
			json_t *v = normalise(node->items, item, depth + 1);
			if (!v || json_object_set_new(out, key, v))
				goto bad;
		}
		return out;
	bad:
		json_decref(out);
		return NULL;
	}
	case PL_AVRO_T_RECORD: {
		json_t *out = json_object();
		for (size_t i = 0; i < node->count; i++) {
			const pl_avro_field_t *f = &node->fields[i];
			const json_t *given = json_object_get(json, f->name);
			json_t *v = NULL;
			if (given || f->default_value)
				v = normalise(f->type, given ? given : f->default_value, depth + 1);
			if (!v || json_object_set_new(out, f->name, v)) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	default:
		return json_incref((json_t *)json);
	}
}

static size_t min_size(pl_avro_node_t *node)
{
	if (node->min_state == 2)
		return node->min_size;
	if (node->min_state == 1) /* recursion: 0 keeps it a lower bound */
		return 0;
	node->min_state = 1;
	size_t n = 0;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		break;
	case PL_AVRO_T_FLOAT:
		n = 4;
		break;
	case PL_AVRO_T_DOUBLE:
		n = 8;
		break;
	case PL_AVRO_T_FIXED:
		n = node->size;
		break;
	case PL_AVRO_T_RECORD:
		for (size_t i = 0; i < node->count; i++) {
			size_t f = min_size(node->fields[i].type);
			n = n + f < n ? SIZE_MAX : n + f;
		}
		break;
	case PL_AVRO_T_UNION:
		n = SIZE_MAX;
		for (size_t i = 0; i < node->count; i++) {
			size_t b = min_size(node->branches[i]);
			n = b < n ? b : n;
		}
		n = node->count ? (n == SIZE_MAX ? n : n + 1) : 1;
		break;
	case PL_AVRO_T_ARRAY:
	case PL_AVRO_T_MAP:
		min_size(node->items);
		n = 1;
		break;
	default: /* boolean, int, long, enum: one byte; bytes, string: a length byte */
		n = 1;
	}
	node->min_size = n;
	node->min_state = 2;
	return n;
}

pl_avro_tree_t *pl_avro_tree_parse(const char *schema_json, bool check_defaults, char *errstr,
                                   size_t errstr_size)
{
	json_error_t jerr;
	json_t *json = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
	if (!json) {
		pl_avro_errf(errstr, errstr_size, "not JSON: line %d: %s", jerr.line, jerr.text);
		return NULL;
	}
	parser_t p = {pl_calloc(1, sizeof(pl_avro_tree_t)), errstr, errstr_size, 0};
	p.tree->root = parse(&p, json, "");
	json_decref(json);
	if (!p.tree->root)
		goto fail;
	for (size_t i = 0; i < p.tree->n_nodes; i++) {
		pl_avro_node_t *node = p.tree->nodes[i];
		for (size_t k = 0; node->fields && k < node->count; k++) {
			pl_avro_field_t *f = &node->fields[k];
			if (!f->default_value)
				continue;
			if (!check_defaults) {
				json_decref(f->default_value);
				f->default_value = NULL;
				continue;
			}
			json_t *norm = normalise(f->type, f->default_value, 0);
			if (!norm) {
				pl_avro_errf(errstr, errstr_size,
				             "%s.%s: default does not match the type", node->name,
				             f->name);
				goto fail;
			}
			json_decref(f->default_value);
			f->default_value = norm;
		}
	}
	for (size_t i = 0; i < p.tree->n_nodes; i++)
		min_size(p.tree->nodes[i]);
	return p.tree;
fail:
	pl_avro_tree_destroy(p.tree);
	return NULL;
}

/* ---- walker ---- */

#define PATH_MAX_SEGMENTS 32

typedef struct walker {
	const uint8_t *body;
	size_t len, pos, empty_items;
	const pl_avro_walk_limits_t *limits;
	const char *path[PATH_MAX_SEGMENTS];
	size_t depth;
	char *errstr;
	size_t errstr_size;
} walker_t;

__attribute__((format(printf, 2, 3))) static pl_err_t fail(walker_t *w, const char *fmt, ...)
{
	char path[256] = "", msg[256];
	size_t used = 0;
	for (size_t i = 0; i < w->depth && i < PATH_MAX_SEGMENTS; i++) {
		if (!w->path[i] || used >= sizeof(path) - 1)
			continue;
		int n =
		    snprintf(path + used, sizeof(path) - used, "%s%s", used ? "." : "", w->path[i]);
		used = n < 0 ? used : used + (size_t)n;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pl_avro_errf(w->errstr, w->errstr_size, "at byte %zu%s%s%s: %s", w->pos, *path ? " (" : "",
	             path, *path ? ")" : "", msg);
	return PL_ERR_DECODE;
}

static pl_err_t read_varint(walker_t *w, int max_bytes, int64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < max_bytes; i++) {
		if (w->pos >= w->len)
			return fail(w, "truncated varint");
		uint8_t b = w->body[w->pos++];
		if (i == 9 && b > 1)
			return fail(w, "varint overflows 64 bits");
		v |= (uint64_t)(b & 0x7F) << (7 * i);
		if (!(b & 0x80)) {
			uint64_t z = (v >> 1) ^ (0 - (v & 1)); /* zigzag */
			memcpy(out, &z, sizeof(*out));
			return PL_OK;
		}
	}
	return fail(w, "varint longer than %d bytes", max_bytes);
}

static pl_err_t read_int(walker_t *w, int64_t *out)
{
	pl_err_t err = read_varint(w, 5, out);
	if (!err && (*out < INT32_MIN || *out > INT32_MAX))
		return fail(w, "int %lld out of range", (long long)*out);
	return err;
}

static pl_err_t need(walker_t *w, size_t n)
{
	if (w->len - w->pos < n)
		return fail(w, "truncated: %zu bytes needed, %zu left", n, w->len - w->pos);
	w->pos += n;
	return PL_OK;
}

static pl_err_t walk_length(walker_t *w, bool utf8)
{
	int64_t n;
	pl_err_t err = read_varint(w, 10, &n);
	if (err)
		return err;
	if (n < 0)
		return fail(w, "negative length %lld", (long long)n);
	if ((uint64_t)n > w->len - w->pos)
		return fail(w, "length %lld exceeds the %zu bytes left", (long long)n,
		            w->len - w->pos);
	if ((uint64_t)n > w->limits->max_length)
		return fail(w, "length %lld exceeds the limit %zu", (long long)n,
		            w->limits->max_length);
	if (utf8 && !pl_avro_utf8_valid((const char *)w->body + w->pos, (size_t)n))
		return fail(w, "string is not valid UTF-8");
	w->pos += (size_t)n;
	return PL_OK;
}

static pl_err_t walk(walker_t *w, const pl_avro_node_t *node);

static pl_err_t walk_blocks(walker_t *w, const pl_avro_node_t *node)
{
	bool map = node->kind == PL_AVRO_T_MAP;
	size_t item_min = node->items->min_size + (map ? 1 : 0);
	for (;;) {
		int64_t count, bytes = -1;
		pl_err_t err = read_varint(w, 10, &count);
		if (err)
			return err;
		if (count == 0)
			return PL_OK;
		if (count < 0) {
			if (count == INT64_MIN)
				return fail(w, "bad block count");
			count = -count;
			if ((err = read_varint(w, 10, &bytes)))
				return err;
			if (bytes < 0 || (uint64_t)bytes > w->len - w->pos)
				return fail(w, "block byte size %lld out of range",
				            (long long)bytes);
		}
		if (item_min > 0 && (uint64_t)count > (w->len - w->pos) / item_min)
			return fail(w, "block count %lld exceeds the bytes left", (long long)count);
		if (item_min == 0) {
			if ((uint64_t)count > w->limits->max_empty_items - w->empty_items)
				return fail(w, "block count %lld exceeds the limit",
				            (long long)count);
			w->empty_items += (size_t)count;
		}
		size_t start = w->pos;
		for (int64_t i = 0; i < count; i++) {
			if (map && (err = walk_length(w, true)))
				return err;
			if ((err = walk(w, node->items)))
				return err;
		}
		if (bytes >= 0 && w->pos - start != (uint64_t)bytes)
			return fail(w, "block byte size %lld does not match its items",
			            (long long)bytes);
	}
}

static pl_err_t walk(walker_t *w, const pl_avro_node_t *node)
{
	int64_t index;
	pl_err_t err = PL_OK;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		return PL_OK;
	case PL_AVRO_T_BOOLEAN:
		if (w->pos < w->len && w->body[w->pos] > 1)
			return fail(w, "boolean byte %u", w->body[w->pos]);
		return need(w, 1);
	case PL_AVRO_T_INT:
		return read_int(w, &index);
	case PL_AVRO_T_LONG:
		return read_varint(w, 10, &index);
	case PL_AVRO_T_FLOAT:
		return need(w, 4);
	case PL_AVRO_T_DOUBLE:
		return need(w, 8);
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_STRING:
		return walk_length(w, node->kind == PL_AVRO_T_STRING);
	case PL_AVRO_T_FIXED:
		return need(w, node->size);
	case PL_AVRO_T_ENUM:
		if ((err = read_int(w, &index)))
			return err;
		if (index < 0 || (uint64_t)index >= node->count)
			return fail(w, "enum index %lld out of range for %s (%zu symbols)",
			            (long long)index, node->short_name, node->count);
		return PL_OK;
	default:
		break;
	}
	/* Container kinds: depth-limited. */
	if (w->depth >= w->limits->max_depth)
		return fail(w, "nested deeper than %zu", w->limits->max_depth);
	w->depth++;
	if (w->depth <= PATH_MAX_SEGMENTS)
		w->path[w->depth - 1] = NULL;
	if (node->kind == PL_AVRO_T_UNION) {
		if (!(err = read_varint(w, 10, &index))) {
			if (index < 0 || (uint64_t)index >= node->count)
				err = fail(w, "union branch %lld out of range (%zu branches)",
				           (long long)index, node->count);
			else
				err = walk(w, node->branches[index]);
		}
	} else if (node->kind == PL_AVRO_T_RECORD) {
		for (size_t i = 0; !err && i < node->count; i++) {
			if (w->depth <= PATH_MAX_SEGMENTS)
				w->path[w->depth - 1] = node->fields[i].name;
			err = walk(w, node->fields[i].type);
		}
	} else {
		err = walk_blocks(w, node);
	}
	w->depth--;
	return err;
}

pl_err_t pl_avro_walk(const pl_avro_node_t *schema, const void *body, size_t len,
                      const pl_avro_walk_limits_t *limits, char *errstr, size_t errstr_size)
{
	walker_t w = {.body = body,
	              .len = len,
	              .limits = limits,
	              .errstr = errstr,
	              .errstr_size = errstr_size};
	pl_err_t err = walk(&w, schema);
	if (!err && w.pos != len)
		return fail(&w, "%zu trailing bytes after the value", len - w.pos);
	return err;
}
