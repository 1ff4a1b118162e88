/* test_avro.c — unit tests of pipeline/avro: CRC-64-AVRO and Parsing Canonical Form against the
 * Avro project's own vectors, the embedded schemas' registry, JSON <-> single-object round trips
 * (every encoding byte for byte Apache avro-c's: tests/oracle), old-writer -> new-reader
 * resolution, and hostile bytes (every one must be PL_ERR_DECODE with a reason, no crash, no
 * leak: the suite also runs under ASan/LSan/UBSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro.h"
#include "avro_read.h" /* a schema's tree */
#include "avro_walk.h" /* the schema tree, to generate sample values */
#include "jsonw.h"
#include "mem.h"
#include "oracle/avro_oracle.h"

/* JSON is written with single quotes in this file, for legibility: dq() turns them into double
 * quotes (into one of a few static buffers, valid until reused). */
static const char *dq(const char *text)
{
	static char buffers[8][4096];
	static unsigned next;
	char *out = buffers[next++ % 8];
	size_t i = 0;
	for (; text[i] && i < sizeof(buffers[0]) - 1; i++)
		out[i] = text[i] == '\'' ? '"' : text[i];
	out[i] = '\0';
	return out;
}

/* ---- CRC-64-AVRO and Parsing Canonical Form ----
 * Vectors copied from the Avro project's shared test data, apache/avro
 * share/test/data/schema-tests.txt (cases 000-033: <<INPUT, <<canonical, <<fingerprint; the
 * fingerprints there are signed 64-bit decimals, cross-checked by the Java implementation),
 * and lang/ruby/test/test_fingerprints.rb ("int" -> 0x7275d51a3f395c8f). Fingerprint 0: the
 * file gives none for that case. Quotes written ' here (dq). */
static const struct {
	const char *input, *canonical;
	int64_t fingerprint;
} vectors[] = {
    {"'null'", "'null'", 7195948357588979594},
    {"{'type':'null'}", "'null'", 0},
    {"'boolean'", "'boolean'", -6970731678124411036},
    {"{'type':'boolean'}", "'boolean'", 0},
    {"'int'", "'int'", 8247732601305521295},
    {"{'type':'int'}", "'int'", 0},
    {"'long'", "'long'", -3434872931120570953},
    {"{'type':'long'}", "'long'", 0},
    {"'float'", "'float'", 5583340709985441680},
    {"{'type':'float'}", "'float'", 0},
    {"'double'", "'double'", -8181574048448539266},
    {"{'type':'double'}", "'double'", 0},
    {"'bytes'", "'bytes'", 5746618253357095269},
    {"{'type':'bytes'}", "'bytes'", 0},
    {"'string'", "'string'", -8142146995180207161},
    {"{'type':'string'}", "'string'", 0},
    {"[  ]", "[]", -1241056759729112623},
    {"[ 'int'  ]", "['int']", -5232228896498058493},
    {"[ 'int' , {'type':'boolean'} ]", "['int','boolean']", 5392556393470105090},
    {"{'fields':[], 'type':'record', 'name':'foo'}", "{'name':'foo','type':'record','fields':[]}",
     -4824392279771201922},
    {"{'fields':[], 'type':'record', 'name':'foo', 'namespace':'x.y'}",
     "{'name':'x.y.foo','type':'record','fields':[]}", 5916914534497305771},
    {"{'fields':[], 'type':'record', 'name':'a.b.foo', 'namespace':'x.y'}",
     "{'name':'a.b.foo','type':'record','fields':[]}", -4616218487480524110},
    {"{'fields':[], 'type':'record', 'name':'foo', 'doc':'Useful info'}",
     "{'name':'foo','type':'record','fields':[]}", -4824392279771201922},
    {"{'fields':[], 'type':'record', 'name':'foo', 'aliases':['foo','bar']}",
     "{'name':'foo','type':'record','fields':[]}", -4824392279771201922},
    {"{'fields':[], 'type':'record', 'name':'foo', 'doc':'foo', 'aliases':['foo','bar']}",
     "{'name':'foo','type':'record','fields':[]}", -4824392279771201922},
    {"{'fields':[{'type':{'type':'boolean'}, 'name':'f1'}], 'type':'record', 'name':'foo'}",
     "{'name':'foo','type':'record','fields':[{'name':'f1','type':'boolean'}]}",
     7843277075252814651},
    {"{ 'fields':[{'type':'boolean', 'aliases':[], 'name':'f1', 'default':'true'},\n "
     "{'order':'descending','name':'f2','doc':'Hello','type':'int'}],\n 'type':'record', "
     "'name':'foo'\n}",
     "{'name':'foo','type':'record','fields':[{'name':'f1','type':'boolean'},{'name':'f2',"
     "'type':'int'}]}",
     -4860222112080293046},
    {"{'type':'enum', 'name':'foo', 'symbols':['A1']}",
     "{'name':'foo','type':'enum','symbols':['A1']}", -6342190197741309591},
    {"{'namespace':'x.y.z', 'type':'enum', 'name':'foo', 'doc':'foo bar', 'symbols':['A1', 'A2']}",
     "{'name':'x.y.z.foo','type':'enum','symbols':['A1','A2']}", -4448647247586288245},
    {"{'name':'foo','type':'fixed','size':15}", "{'name':'foo','type':'fixed','size':15}",
     1756455273707447556},
    {"{'namespace':'x.y.z', 'type':'fixed', 'name':'foo', 'doc':'foo bar', 'size':32}",
     "{'name':'x.y.z.foo','type':'fixed','size':32}", -3064184465700546786},
    {"{ 'items':{'type':'null'}, 'type':'array'}", "{'type':'array','items':'null'}",
     -589620603366471059},
    {"{ 'values':'string', 'type':'map'}", "{'type':'map','values':'string'}",
     -8732877298790414990},
    {"{'name':'PigValue','type':'record',\n 'fields':[{'name':'value', 'type':['null', "
     "'int', 'long', 'PigValue']}]}",
     "{'name':'PigValue','type':'record','fields':[{'name':'value','type':['null','int',"
     "'long','PigValue']}]}",
     -1759257747318642341},
};

static void test_fingerprint_and_canonical_vectors(void **state)
{
	(void)state;
	/* The specification: the fingerprint of no bytes is EMPTY. */
	assert_true(pl_avro_crc64("", 0) == 0xc15d213aa4d7a795ULL);
	assert_true(pl_avro_crc64("\"int\"", 5) == 0x7275d51a3f395c8fULL);
	size_t checked = 0;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		if (!vectors[i].fingerprint)
			continue;
		const char *c = dq(vectors[i].canonical);
		assert_true(pl_avro_crc64(c, strlen(c)) == (uint64_t)vectors[i].fingerprint);
		checked++;
	}
	assert_int_equal(checked, 26);
	/* and each input's canonical form */
	char err[256];
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char *canonical = pl_avro_canonical_form(dq(vectors[i].input), err, sizeof(err));
		if (!canonical)
			fail_msg("vector %zu: %s", i, err);
		assert_string_equal(canonical, dq(vectors[i].canonical));
		pl_free(canonical);
	}
}

static void test_canonical_strips_and_qualifies(void **state)
{
	(void)state;
	char err[256];
	/* Namespaces inherited and overridden (including the empty one), a name defined in one
	 * field and referenced by name later, doc/aliases/defaults/order/logicalType dropped. */
	const char *schema =
	    dq("{'type':'record','name':'Outer','namespace':'a.b','doc':'x',"
	       "'aliases':['Old'],'fields':[{'name':'p','doc':'d','type':{'type':'record',"
	       "'name':'Point','fields':[{'name':'x','type':{'type':'double'},'default':0}]}},"
	       "{'name':'q','type':'Point','order':'ignore'},{'name':'e','type':{'type':'enum',"
	       "'name':'c.E','symbols':['A','B'],'default':'A'}},{'name':'r',"
	       "'type':{'type':'record','name':'Inner','namespace':'','fields':[{'name':'f',"
	       "'type':{'type':'fixed','name':'F','size':4}}]}},{'name':'m','type':{'type':'map',"
	       "'values':{'type':'array','items':'c.E'}}},{'name':'t','type':{'type':'long',"
	       "'logicalType':'timestamp-millis'}}]}");
	const char *expected =
	    dq("{'name':'a.b.Outer','type':'record','fields':[{'name':'p',"
	       "'type':{'name':'a.b.Point','type':'record','fields':[{'name':'x',"
	       "'type':'double'}]}},{'name':'q','type':'a.b.Point'},{'name':'e',"
	       "'type':{'name':'c.E','type':'enum','symbols':['A','B']}},{'name':'r',"
	       "'type':{'name':'Inner','type':'record','fields':[{'name':'f','type':{'name':'F',"
	       "'type':'fixed','size':4}}]}},{'name':'m','type':{'type':'map',"
	       "'values':{'type':'array','items':'c.E'}}},{'name':'t','type':'long'}]}");
	char *canonical = pl_avro_canonical_form(schema, err, sizeof(err));
	if (!canonical)
		fail_msg("%s", err);
	assert_string_equal(canonical, expected);
	pl_free(canonical);
}

static void test_canonical_rejects_bad_schemas(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "not json",
	    "'Nowhere'",
	    "{'type':'record','name':'R','fields':[{'name':'a','type':'Q'}]}",
	    "{'type':'record','name':'R','fields':[{'name':'a','type':'int'},{'name':'a',"
	    "'type':'int'}]}",
	    "{'type':'enum','name':'E','symbols':['A','A']}",
	    "{'type':'fixed','name':'F','size':-1}",
	    "{'type':'record','name':'9bad','fields':[]}",
	    "['int','int']",
	    "[['int']]",
	    "{'type':'array'}",
	};
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		char *canonical = pl_avro_canonical_form(dq(bad[i]), err, sizeof(err));
		if (canonical)
			fail_msg("accepted %s as %s", bad[i], canonical);
		assert_true(err[0] != '\0');
	}
}

/* A DeliveryRequested with every field given (so decoding returns it as is). */
static const char requested[] =
    "{'eventId':'6f1c','deliveryId':'d-1','requestedAt':1700000000123,'ownerId':'owner-7',"
    "'pickupLocation':'Pike Place','pickup':{'latitude':47.6097,'longitude':-122.3422,"
    "'altitude':12.5},'dropOffLocation':'Space Needle','dropoff':{'latitude':47.6205,"
    "'longitude':-122.3493,'altitude':0.0},'pickupTime':1700000600000,"
    "'deadline':'2024-01-01T10:00:00Z','expedited':true,'confirmationRequired':'Picture',"
    "'packageInfo':{'packageId':'pkg-\\u00e9\\u4e2d','size':'Medium','weight':2.25,'tag':null},"
    "'idempotencyKey':'k-1'}";

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *json = json_loads(dq(text), JSON_ALLOW_NUL, &jerr);
	if (!json)
		fail_msg("test JSON: %s", jerr.text);
	return json;
}

static int registry_setup(void **state)
{
	char err[512];
	pl_avro_registry_t *registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!registry)
		fail_msg("embedded registry: %s", err);
	*state = registry;
	return 0;
}

static int registry_teardown(void **state)
{
	pl_avro_registry_destroy(*state);
	return 0;
}

static void test_registry_embedded(void **state)
{
	const pl_avro_registry_t *registry = *state;
	assert_true(pl_avro_embedded_count >= 4);
	const pl_avro_schema_t *by_short = pl_avro_schema_get(registry, "DeliveryRequested");
	assert_non_null(by_short);
	assert_ptr_equal(by_short,
	                 pl_avro_schema_get(registry, "dronepipe.requests.DeliveryRequested"));
	assert_string_equal(pl_avro_schema_name(by_short), "dronepipe.requests.DeliveryRequested");
	assert_string_equal(pl_avro_schema_short_name(by_short), "DeliveryRequested");
	assert_int_equal(pl_avro_schema_version(by_short), 1);
	const char *canonical = pl_avro_schema_canonical(by_short);
	assert_true(pl_avro_schema_fingerprint(by_short) ==
	            pl_avro_crc64(canonical, strlen(canonical)));
	assert_ptr_equal(
	    pl_avro_schema_by_fingerprint(registry, pl_avro_schema_fingerprint(by_short)),
	    by_short);
	/* GeoPoint is defined once, with its full name, and referenced by name afterwards. */
	assert_non_null(strstr(canonical, dq("{'name':'dronepipe.requests.GeoPoint'")));
	assert_non_null(strstr(canonical, dq("{'name':'dropoff',"
	                                     "'type':'dronepipe.requests.GeoPoint'}")));
	assert_null(strstr(canonical, "doc"));
	assert_null(strstr(canonical, "default"));
	assert_null(strstr(canonical, "logicalType"));
	assert_null(pl_avro_schema_get(registry, "NoSuchRecord"));
	assert_null(pl_avro_schema_by_fingerprint(registry, 42));
}

/* The bytes must be those avro-c writes for the same value. */
static void expect_avro_c_bytes(const pl_avro_schema_t *schema, const json_t *value,
                                const void *bytes, size_t len)
{
	char err[512];
	uint8_t *ref = NULL;
	size_t ref_len = 0;
	if (!avro_oracle_encode(schema, value, &ref, &ref_len, err, sizeof(err)))
		fail_msg("avro-c could not encode what pl_avro_encode did: %s", err);
	size_t at = 0;
	while (at < len && at < ref_len && ((const uint8_t *)bytes)[at] == ref[at])
		at++;
	if (at != len || len != ref_len)
		fail_msg("%s: %zu bytes, avro-c %zu; first difference at byte %zu",
		         pl_avro_schema_short_name(schema), len, ref_len, at);
	free(ref);
}

/* Encodes value with schema, checks the single-object header (C3 01, then the fingerprint
 * little-endian) and avro-c's bytes, decodes with registry and returns the decoded value
 * (*reader: its schema). */
static json_t *round_trip(const pl_avro_registry_t *registry, const pl_avro_schema_t *schema,
                          const json_t *value, const pl_avro_schema_t **reader)
{
	char err[512];
	void *bytes = NULL;
	size_t len = 0;
	if (pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)))
		fail_msg("encode: %s", err);
	expect_avro_c_bytes(schema, value, bytes, len);
	const uint8_t *b = bytes;
	uint64_t fp = pl_avro_schema_fingerprint(schema), peeked = 0;
	assert_true(len > PL_AVRO_HEADER_LEN && b[0] == 0xC3 && b[1] == 0x01);
	for (int k = 0; k < 8; k++)
		assert_int_equal(b[2 + k], (fp >> (8 * k)) & 0xff);
	assert_int_equal(pl_avro_peek_fingerprint(bytes, len, &peeked), PL_OK);
	assert_true(peeked == fp);
	json_t *decoded = NULL;
	if (pl_avro_decode(registry, bytes, len, &decoded, reader, err, sizeof(err)))
		fail_msg("decode: %s", err);
	pl_free(bytes);
	return decoded;
}

/* A value of node's type with every field given, for the schemas without a sample above: the
 * last branch of unions (so ["null",T] gets a T) until deep in a recursive type. */
static json_t *generate(const pl_avro_node_t *node, int depth)
{
	static const char text[] =
	    "fixed-text-of-any-size-up-to-64-bytes...........................";
	json_t *json;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		return json_null();
	case PL_AVRO_T_BOOLEAN:
		return json_true();
	case PL_AVRO_T_INT:
	case PL_AVRO_T_LONG:
		return json_integer(-1000 - depth);
	case PL_AVRO_T_FLOAT:
	case PL_AVRO_T_DOUBLE:
		return json_real(0.5 + depth);
	case PL_AVRO_T_STRING:
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED:
		return json_stringn(text, node->kind == PL_AVRO_T_FIXED ? node->size : 9);
	case PL_AVRO_T_ENUM:
		return json_string(node->symbols[node->count - 1]);
	case PL_AVRO_T_UNION:
		return generate(node->branches[depth > 8 ? 0 : node->count - 1], depth + 1);
	case PL_AVRO_T_ARRAY:
		return json_pack("[o]", generate(node->items, depth + 1));
	case PL_AVRO_T_MAP:
		return json_pack("{so}", "key", generate(node->items, depth + 1));
	case PL_AVRO_T_RECORD:
		json = json_object();
		for (size_t i = 0; i < node->count; i++)
			json_object_set_new(json, node->fields[i].name,
			                    generate(node->fields[i].type, depth + 1));
		return json;
	}
	return NULL;
}

static void test_round_trip_every_embedded_schema(void **state)
{
	const pl_avro_registry_t *registry = *state;
	char err[512];
	for (size_t i = 0; i < pl_avro_embedded_count; i++) {
		pl_avro_tree_t *tree = pl_avro_tree_parse(pl_avro_embedded[i].json, true, err, 512);
		if (!tree)
			fail_msg("%s: %s", pl_avro_embedded[i].file, err);
		char *canonical = pl_avro_tree_canonical(tree);
		const pl_avro_schema_t *schema = pl_avro_schema_by_fingerprint(
		                           registry, pl_avro_crc64(canonical, strlen(canonical))),
		                       *reader;
		assert_non_null(schema);
		json_t *value = strcmp(tree->root->short_name, "DeliveryRequested")
		                    ? generate(tree->root, 0)
		                    : load(requested);
		json_t *decoded = round_trip(registry, schema, value, &reader);
		assert_ptr_equal(pl_avro_schema_get(registry, pl_avro_schema_name(schema)), reader);
		if (reader == schema && !json_equal(decoded, value))
			fail_msg("%s round trip gave %s", tree->root->name, json_dumps(decoded, 0));
		json_decref(decoded);
		json_decref(value);
		pl_free(canonical);
		pl_avro_tree_destroy(tree);
	}
}

static void test_encode_fills_defaults_and_accepts_integer_doubles(void **state)
{
	const pl_avro_registry_t *registry = *state;
	json_t *value = load(requested), *expected = load(requested);
	json_object_del(value, "deadline");
	json_object_del(json_object_get(value, "pickup"), "altitude");
	json_object_set_new(json_object_get(value, "dropoff"), "latitude", json_integer(47));
	json_object_set_new(expected, "deadline", json_null());
	json_object_set_new(json_object_get(expected, "pickup"), "altitude", json_real(0.0));
	json_object_set_new(json_object_get(expected, "dropoff"), "latitude", json_real(47.0));
	json_t *decoded =
	    round_trip(registry, pl_avro_schema_get(registry, "DeliveryRequested"), value, NULL);
	assert_true(json_equal(decoded, expected));
	json_decref(decoded);
	json_decref(expected);
	json_decref(value);
}

/* Encodes requested with member key of the object at parent (NULL: the
 * top) replaced by replacement (NULL: removed); returns the error, the reason in err. */
static pl_err_t encode_changed(const pl_avro_registry_t *registry, const char *parent,
                               const char *key, json_t *replacement, char *err, size_t err_size)
{
	json_t *value = load(requested);
	json_t *object = parent ? json_object_get(value, parent) : value;
	if (replacement)
		json_object_set_new(object, key, replacement);
	else
		json_object_del(object, key);
	void *bytes = (void *)1;
	size_t len = 0;
	pl_err_t rc = pl_avro_encode(pl_avro_schema_get(registry, "DeliveryRequested"), value,
	                             &bytes, &len, err, err_size);
	if (rc)
		assert_null(bytes);
	pl_free(bytes);
	json_decref(value);
	return rc;
}

static void expect_encode_error(const pl_avro_registry_t *registry, const char *parent,
                                const char *key, json_t *replacement, const char *reason)
{
	char err[512] = "";
	assert_int_equal(encode_changed(registry, parent, key, replacement, err, sizeof(err)),
	                 PL_ERR_SCHEMA);
	assert_string_equal(err, reason);
}

static void test_encode_errors_name_the_field(void **state)
{
	const pl_avro_registry_t *registry = *state;
	char err[512];
	expect_encode_error(registry, "packageInfo", "size", json_string("Huge"),
	                    "packageInfo.size: 'Huge' is not a symbol of PackageSize");
	expect_encode_error(registry, NULL, "ownerId", NULL,
	                    "ownerId: missing, and the field has no default");
	expect_encode_error(registry, "dropoff", "latitude", NULL,
	                    "dropoff.latitude: missing, and the field has no default");
	expect_encode_error(registry, NULL, "requestedAt", json_string("yesterday"),
	                    "requestedAt: expected an integer");
	expect_encode_error(registry, "pickup", "longitude", json_true(),
	                    "pickup.longitude: expected a number");
	/* ["null","string"]: the reason is the one of the string branch */
	expect_encode_error(registry, NULL, "deadline", json_integer(5),
	                    "deadline: expected a string");
	/* unknown members are refused rather than silently dropped */
	expect_encode_error(registry, NULL, "colour", json_string("red"),
	                    "colour: not a field of DeliveryRequested");
	/* fields with defaults may be left out */
	assert_int_equal(encode_changed(registry, NULL, "idempotencyKey", NULL, err, sizeof(err)),
	                 PL_OK);
	json_t *array = load("[1]");
	void *bytes = NULL;
	size_t len = 0;
	assert_int_equal(pl_avro_encode(pl_avro_schema_get(registry, "DeliveryRequested"), array,
	                                &bytes, &len, err, sizeof(err)),
	                 PL_ERR_SCHEMA);
	assert_string_equal(err, "DeliveryRequested: expected an object");
	json_decref(array);
}

/* Every kind at the sizes where its encoding changes shape (varint lengths and counts of 1, 2
 * and 3 bytes, integer extremes, float rounding, negative zero), byte for byte avro-c's. */
static const char edge_schema[] =
    "{'type':'record','name':'Edge','fields':[{'name':'s','type':'string'},"
    "{'name':'by','type':'bytes'},{'name':'fx','type':{'type':'fixed','name':'F3','size':3}},"
    "{'name':'i','type':'int'},{'name':'l','type':'long'},{'name':'f','type':'float'},"
    "{'name':'d','type':'double'},{'name':'b','type':'boolean'},"
    "{'name':'e','type':{'type':'enum','name':'E','symbols':['A','B','C']}},"
    "{'name':'u','type':['null','long','string',{'type':'array','items':'int'}]},"
    "{'name':'xs','type':{'type':'array','items':'long'}},"
    "{'name':'m','type':{'type':'map','values':['null','double']}},"
    "{'name':'next','type':['null','Edge'],'default':null}]}";

static const char recursive_schema[] =
    "{'type':'record','name':'Deep','fields':[{'name':'next','type':['null','Deep']}]}";

static const char nulls_schema[] =
    "{'type':'record','name':'Nulls','fields':[{'name':'more','type':{'type':'array',"
    "'items':'null'}},{'name':'xs','type':{'type':'array','items':'null'}}]}";

static pl_avro_registry_t *one_schema_registry(const char *file, const char *text)
{
	char err[512];
	const pl_avro_source_t sources[] = {{file, dq(text)}};
	pl_avro_registry_t *registry = pl_avro_registry_new(sources, 1, err, sizeof(err));
	if (!registry)
		fail_msg("%s", err);
	return registry;
}

static json_t *edge_value(size_t n, int64_t integer, double real)
{
	char *text = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)('a' + i % 26);
	text[n] = '\0';
	json_t *xs = json_array(), *m = json_object();
	for (size_t i = 0; i < n && i < 300; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%zu", i);
		json_array_append_new(
		    xs, json_integer(integer > 0 ? integer - (int64_t)i : integer + (int64_t)i));
		json_object_set_new(m, key, i % 2 ? json_null() : json_real(real * (double)i));
	}
	json_t *v = json_pack("{ss ss# ss si sI sf sf sb ss so so so}", "s", text, "by", text,
	                      (int)(n < 70000 ? n : 70000), "fx", "\xc3\xbf\x01z", "i",
	                      (int)(integer % 2 ? INT32_MIN : INT32_MAX), "l", (json_int_t)integer,
	                      "f", real, "d", -real, "b", (int)(n % 2), "e", n % 2 ? "C" : "A", "u",
	                      n % 3 == 0   ? json_integer(integer)
	                      : n % 3 == 1 ? json_string(text)
	                                   : json_pack("[iii]", 1, -64, 64),
	                      "xs", xs, "m", m);
	free(text);
	return v;
}

static void test_encode_matches_avro_c_at_the_edges(void **state)
{
	(void)state;
	pl_avro_registry_t *registry = one_schema_registry("Edge.avsc", edge_schema);
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, "Edge");
	const size_t sizes[] = {0, 1, 63, 64, 127, 128, 8191, 8192, 100000};
	const int64_t integers[] = {0, -1, 63, -64, 64, -65, 8191, -8192, INT64_MAX, INT64_MIN};
	const double reals[] = {0.0, -0.0, 0.1, 1e38, -3.4e38, 1.4e-45, 1e-300, 16777217.0};
	for (size_t a = 0; a < sizeof(sizes) / sizeof(sizes[0]); a++)
		for (size_t b = 0; b < sizeof(integers) / sizeof(integers[0]); b++) {
			json_t *value = edge_value(sizes[a], integers[b], reals[(a + b) % 8]);
			json_t *nested =
			    edge_value(sizes[(a + 1) % 4], integers[(b + 3) % 10], 0.5);
			json_object_set_new(value, "next", nested);
			json_decref(round_trip(registry, schema, value, NULL));
			json_decref(value);
		}
	pl_avro_registry_destroy(registry);
}

/* What no reader would accept is not written: a string or bytes of PL_AVRO_MAX_ALLOC bytes, a
 * value nested deeper than the decoder's limit, more array items of no bytes than it takes.
 * Just inside each limit encodes and decodes. */
static void test_encode_refuses_what_no_reader_accepts(void **state)
{
	(void)state;
	char err[512];
	void *bytes = NULL;
	size_t len = 0;
	pl_avro_registry_t *registry = one_schema_registry("Edge.avsc", edge_schema);
	const pl_avro_schema_t *schema = pl_avro_schema_get(registry, "Edge");
	json_t *value = edge_value(3, 1, 1.0);
	char *big = malloc(PL_AVRO_MAX_ALLOC + 1);
	memset(big, 'x', PL_AVRO_MAX_ALLOC);
	big[PL_AVRO_MAX_ALLOC] = '\0';
	json_object_set_new(value, "s", json_string(big));
	assert_int_equal(pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)),
	                 PL_ERR_SCHEMA);
	assert_null(bytes);
	assert_string_equal(err, "s: 1048576 bytes, more than the 1048575 a reader accepts");
	big[PL_AVRO_MAX_ALLOC - 1] = '\0';
	json_object_set_new(value, "s", json_string(big));
	json_object_set_new(value, "by", json_string(big));
	json_decref(round_trip(registry, schema, value, NULL));
	json_object_set_new(value, "u", json_string(big));
	json_object_set_new(value, "m", json_pack("{s:n}", big));
	json_decref(round_trip(registry, schema, value, NULL));
	big[PL_AVRO_MAX_ALLOC - 1] = 'x';
	json_object_set_new(value, "m", json_pack("{s:n}", big));
	assert_int_equal(pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)),
	                 PL_ERR_SCHEMA);
	assert_non_null(strstr(err, "m.xxxxxxxx"));
	assert_non_null(strstr(err, ": 1048576 bytes, more than the 1048575 a reader accepts"));
	free(big);
	json_decref(value);
	pl_avro_registry_destroy(registry);

	/* Items that take no bytes: 4096 per value, as the decoder reads */
	registry = one_schema_registry("Nulls.avsc", nulls_schema);
	schema = pl_avro_schema_get(registry, "Nulls");
	for (size_t n = 4095; n <= 4097; n++) {
		json_t *xs = json_array(), *more = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(i % 2 ? xs : more, json_null());
		json_t *nulls = json_pack("{s:o, s:o}", "xs", xs, "more", more);
		pl_err_t e = pl_avro_encode(schema, nulls, &bytes, &len, err, sizeof(err));
		if (n <= 4096) {
			assert_int_equal(e, PL_OK);
			pl_free(bytes);
			bytes = NULL;
			json_decref(round_trip(registry, schema, nulls, NULL));
		} else {
			assert_int_equal(e, PL_ERR_SCHEMA);
			assert_null(bytes);
			assert_string_equal(
			    err, "xs: more than the 4096 items of no bytes a reader accepts");
		}
		json_decref(nulls);
	}
	pl_avro_registry_destroy(registry);

	/* Deep: each level is a record in a union, two levels of the decoder's 64 */
	registry = one_schema_registry("Deep.avsc", recursive_schema);
	schema = pl_avro_schema_get(registry, "Deep");
	for (int levels = 31; levels <= 33; levels++) {
		json_t *deep = json_pack("{s:n}", "next");
		for (int i = 1; i < levels; i++)
			deep = json_pack("{s:o}", "next", deep);
		pl_err_t e = pl_avro_encode(schema, deep, &bytes, &len, err, sizeof(err));
		if (levels <= 32) {
			assert_int_equal(e, PL_OK);
			json_decref(round_trip(registry, schema, deep, NULL));
			pl_free(bytes);
			bytes = NULL;
		} else {
			assert_int_equal(e, PL_ERR_SCHEMA);
			assert_non_null(
			    strstr(err, ": nested deeper than the 64 levels a reader accepts"));
		}
		json_decref(deep);
	}
	pl_avro_registry_destroy(registry);
}

static const char thing_v1[] = "{'type':'record','name':'Thing','namespace':'t',"
                               "'fields':[{'name':'a','type':'int'},{'name':'b','type':'string'},"
                               "{'name':'k','type':{'type':'enum','name':'Kind','symbols':['X',"
                               "'Y']}}]}";
/* v2: a promoted int -> long, b becomes nullable, c added with a default, and a new symbol. */
static const char thing_v2[] = "{'type':'record','name':'Thing','namespace':'t',"
                               "'fields':[{'name':'a','type':'long'},{'name':'b','type':['null',"
                               "'string']},{'name':'k','type':{'type':'enum','name':'Kind',"
                               "'symbols':['X','Y','Z']}},{'name':'c','type':'string',"
                               "'default':'none'},{'name':'d','type':'double','default':1}]}";

static void test_resolution_old_writer_new_reader(void **state)
{
	(void)state;
	char err[512];
	/* Listed newest first: the reader is chosen by version, not by order. */
	const pl_avro_source_t sources[] = {{"Thing.v2.avsc", dq(thing_v2)},
	                                    {"Thing.v1.avsc", dq(thing_v1)}};
	pl_avro_registry_t *registry = pl_avro_registry_new(sources, 2, err, sizeof(err));
	if (!registry)
		fail_msg("%s", err);
	const pl_avro_schema_t *latest = pl_avro_schema_get(registry, "Thing");
	assert_int_equal(pl_avro_schema_version(latest), 2);
	char *canonical_v1 = pl_avro_canonical_form(dq(thing_v1), err, sizeof(err));
	const pl_avro_schema_t *v1 = pl_avro_schema_by_fingerprint(
	    registry, pl_avro_crc64(canonical_v1, strlen(canonical_v1)));
	pl_free(canonical_v1);
	assert_non_null(v1);
	assert_int_equal(pl_avro_schema_version(v1), 1);
	json_t *value = load("{'a':7,'b':'bee','k':'Y'}");
	const pl_avro_schema_t *reader = NULL;
	json_t *decoded = round_trip(registry, v1, value, &reader);
	assert_ptr_equal(reader, latest);
	json_t *expected = load("{'a':7,'b':'bee','k':'Y','c':'none','d':1.0}");
	assert_true(json_equal(decoded, expected));
	json_decref(expected);
	json_decref(decoded);
	json_decref(value);
	pl_avro_registry_destroy(registry);
}

/* Every resolution rule the decoder applies while reading the writer's bytes in order: writer
 * fields the reader lacks (of every shape, so they must be skipped exactly), reordered fields,
 * promotions, string <-> bytes, an unknown enum symbol read as the reader's default, a writer
 * union read as a plain type and a plain type read as a union, nested records, arrays and maps
 * whose items resolve too. */
static const char wide_v1[] =
    "{'type':'record','name':'Wide','namespace':'t','fields':["
    "{'name':'gone','type':{'type':'record','name':'Old','fields':["
    "{'name':'xs','type':{'type':'array','items':{'type':'map','values':['null','string',"
    "'double']}}},{'name':'fx','type':{'type':'fixed','name':'F4','size':4}},"
    "{'name':'on','type':'boolean'},{'name':'k','type':{'type':'enum','name':'OldKind',"
    "'symbols':['P','Q']}},{'name':'by','type':'bytes'},{'name':'fl','type':'float'}]}},"
    "{'name':'a','type':'int'},{'name':'i2d','type':'int'},{'name':'l2f','type':'long'},"
    "{'name':'f','type':'float'},{'name':'s','type':'string'},{'name':'b','type':'bytes'},"
    "{'name':'e','type':{'type':'enum','name':'Kind','symbols':['X','W','Y']}},"
    "{'name':'u','type':['int','long']},{'name':'n','type':'string'},"
    "{'name':'in','type':{'type':'record','name':'In','fields':[{'name':'drop','type':"
    "'long'},{'name':'keep','type':'int'}]}},"
    "{'name':'list','type':{'type':'array','items':'In'}},"
    "{'name':'m','type':{'type':'map','values':'int'}}]}";
static const char wide_v2[] =
    "{'type':'record','name':'Wide','namespace':'t','fields':["
    "{'name':'m','type':{'type':'map','values':'long'}},"
    "{'name':'n','type':['null','string']},{'name':'u','type':'long'},"
    "{'name':'e','type':{'type':'enum','name':'Kind','symbols':['X','Y','Z'],'default':'Z'}},"
    "{'name':'b','type':'string'},{'name':'s','type':'bytes'},{'name':'f','type':'double'},"
    "{'name':'l2f','type':'float'},{'name':'i2d','type':'double'},{'name':'a','type':'long'},"
    "{'name':'in','type':{'type':'record','name':'In','fields':[{'name':'keep','type':'long'},"
    "{'name':'new','type':'string','default':'dflt'}]}},"
    "{'name':'list','type':{'type':'array','items':'In'}},"
    "{'name':'added','type':{'type':'array','items':'int'},'default':[1,2]}]}";

/* A registry of Wide v1 and v2, and v1's schema (*v1). */
static pl_avro_registry_t *wide_registry(const pl_avro_schema_t **v1)
{
	char err[512];
	const pl_avro_source_t sources[] = {{"Wide.v1.avsc", dq(wide_v1)},
	                                    {"Wide.v2.avsc", dq(wide_v2)}};
	pl_avro_registry_t *registry = pl_avro_registry_new(sources, 2, err, sizeof(err));
	if (!registry)
		fail_msg("%s", err);
	char *canonical_v1 = pl_avro_canonical_form(dq(wide_v1), err, sizeof(err));
	*v1 = pl_avro_schema_by_fingerprint(registry,
	                                    pl_avro_crc64(canonical_v1, strlen(canonical_v1)));
	pl_free(canonical_v1);
	assert_non_null(*v1);
	return registry;
}

static void test_resolution_skips_reorders_and_promotes(void **state)
{
	(void)state;
	const pl_avro_schema_t *v1;
	pl_avro_registry_t *registry = wide_registry(&v1);
	json_t *value = load("{'gone':{'xs':[{'p':null,'q':'str','r':2.5},{}],'fx':'abcd',"
	                     "'on':true,'k':'Q','by':'\\u00ff\\u0000z','fl':1.5},"
	                     "'a':-7,'i2d':3,'l2f':16777217,'f':0.25,'s':'caf\\u00e9',"
	                     "'b':'bin','e':'W','u':-99,'n':'text',"
	                     "'in':{'drop':5,'keep':6},'list':[{'drop':1,'keep':2},"
	                     "{'drop':3,'keep':4}],'m':{'one':1,'two':-2}}");
	const pl_avro_schema_t *reader = NULL;
	json_t *decoded = round_trip(registry, v1, value, &reader);
	assert_ptr_equal(reader, pl_avro_schema_get(registry, "Wide"));
	/* l2f: 16777217 is not a float; the reader's float gives 16777216. s: the string's UTF-8
	 * bytes, each a code point of the bytes' JSON form (c, a, f, 0xC3, 0xA9). */
	json_t *expected = load("{'m':{'one':1,'two':-2},'n':'text','u':-99,'e':'Z','b':'bin',"
	                        "'s':'caf\\u00c3\\u00a9','f':0.25,'l2f':16777216.0,'i2d':3.0,"
	                        "'a':-7,'in':{'keep':6,'new':'dflt'},'list':[{'keep':2,"
	                        "'new':'dflt'},{'keep':4,'new':'dflt'}],'added':[1,2]}");
	if (!json_equal(decoded, expected))
		fail_msg("decoded %s", json_dumps(decoded, JSON_SORT_KEYS));
	/* the object keeps the reader's field order */
	const char *first = json_object_iter_key(json_object_iter(decoded));
	assert_string_equal(first, "m");
	json_decref(expected);
	json_decref(decoded);
	json_decref(value);
	pl_avro_registry_destroy(registry);
}

/* A registry over one or two sources must fail with a reason containing reason_part. */
static void expect_registry_error(const char *file1, const char *json1, const char *file2,
                                  const char *json2, const char *reason_part)
{
	char err[512] = "";
	char text1[4096], text2[4096];
	snprintf(text1, sizeof(text1), "%s", dq(json1));
	snprintf(text2, sizeof(text2), "%s", json2 ? dq(json2) : "");
	const pl_avro_source_t sources[] = {{file1, text1}, {file2, text2}};
	assert_null(pl_avro_registry_new(sources, file2 ? 2 : 1, err, sizeof(err)));
	if (!strstr(err, reason_part))
		fail_msg("reason '%s' does not mention '%s'", err, reason_part);
}

static void test_registry_rejects_incompatible_versions(void **state)
{
	(void)state;
	/* v2 adds a field without a default: v1 bytes could not be read */
	expect_registry_error("Thing.v1.avsc", thing_v1, "Thing.v2.avsc",
	                      "{'type':'record','name':'t.Thing','fields':[{'name':'c',"
	                      "'type':'string'}]}",
	                      "Thing.v1.avsc cannot be read as Thing.v2.avsc: t.Thing.c is "
	                      "not in the writer and has no default");
	/* a symbol dropped */
	expect_registry_error("Thing.v1.avsc", thing_v1, "Thing.v2.avsc",
	                      "{'type':'record','name':'t.Thing','fields':[{'name':'k',"
	                      "'type':{'type':'enum','name':'Kind','symbols':['X']}}]}",
	                      "symbol 'Y' of t.Kind is unknown to the reader");
	/* same version twice, bad JSON, default of the wrong type, not a record */
	expect_registry_error("Thing.v1.avsc", thing_v1, "Thing.v1.avsc", thing_v2,
	                      "same name and version");
	expect_registry_error("Broken.v1.avsc", "{'type':", NULL, NULL, "Broken.v1.avsc: ");
	expect_registry_error("D.v1.avsc",
	                      "{'type':'record','name':'D','fields':[{'name':'x',"
	                      "'type':'int','default':'one'}]}",
	                      NULL, NULL, "D.x: default does not match the type");
	expect_registry_error("S.v1.avsc", "'string'", NULL, NULL, "not a record");
}

/* ---- hostile bytes ---- */

static const char hostile_schema[] =
    "{'type':'record','name':'Hostile','fields':[{'name':'s','type':'string'},{'name':'e',"
    "'type':{'type':'enum','name':'Four','symbols':['A','B','C','D']}},{'name':'u','type':['null',"
    "'long']},{'name':'arr','type':{'type':'array','items':'long'}},{'name':'nulls',"
    "'type':{'type':'array','items':'null'}},{'name':'b','type':'bytes'},{'name':'i',"
    "'type':'int'}]}";

typedef struct hostile {
	pl_avro_registry_t *registry;
	uint64_t fingerprint;
} hostile_t;

static int hostile_setup(void **state)
{
	char err[512];
	const pl_avro_source_t source = {"Hostile.v1.avsc", dq(hostile_schema)};
	hostile_t *h = calloc(1, sizeof(*h));
	h->registry = pl_avro_registry_new(&source, 1, err, sizeof(err));
	if (!h->registry)
		fail_msg("%s", err);
	h->fingerprint = pl_avro_schema_fingerprint(pl_avro_schema_get(h->registry, "Hostile"));
	*state = h;
	return 0;
}

static int hostile_teardown(void **state)
{
	hostile_t *h = *state;
	pl_avro_registry_destroy(h->registry);
	free(h);
	return 0;
}

/* Appends the zigzag varints of count longs; returns the bytes written. */
static size_t put_longs(uint8_t *p, int count, ...)
{
	size_t n = 0;
	va_list ap;
	va_start(ap, count);
	while (count-- > 0) {
		int64_t v = va_arg(ap, int64_t);
		uint64_t z = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
		do {
			p[n++] = (uint8_t)((z & 0x7f) | (z > 0x7f ? 0x80 : 0));
			z >>= 7;
		} while (z);
	}
	va_end(ap);
	return n;
}
#define L(v) ((int64_t)(v))

/* A message with the given body: header for fingerprint fp, then body. Caller frees. */
static uint8_t *message(uint64_t fp, const uint8_t *body, size_t body_len, size_t *len)
{
	uint8_t *m = malloc(PL_AVRO_HEADER_LEN + body_len + 1);
	m[0] = 0xC3;
	m[1] = 0x01;
	for (int i = 0; i < 8; i++)
		m[2 + i] = (uint8_t)(fp >> (8 * i));
	memcpy(m + PL_AVRO_HEADER_LEN, body, body_len);
	*len = PL_AVRO_HEADER_LEN + body_len;
	return m;
}

static void expect_decode_error(const pl_avro_registry_t *registry, const uint8_t *data, size_t len,
                                const char *reason_part)
{
	char err[512] = "";
	json_t *value = (json_t *)(uintptr_t)1;
	const pl_avro_schema_t *schema = (const pl_avro_schema_t *)(uintptr_t)1;
	pl_err_t rc = pl_avro_decode(registry, data, len, &value, &schema, err, sizeof(err));
	if (rc != PL_ERR_DECODE)
		fail_msg("expected decode error (%s), got %s", reason_part, pl_err_str(rc));
	assert_null(value);
	assert_null(schema);
	assert_true(err[0] != '\0');
	if (reason_part && !strstr(err, reason_part))
		fail_msg("reason '%s' does not mention '%s'", err, reason_part);
	/* a view refuses the same bytes with the same reason */
	char view_err[512] = "";
	pl_avro_view_t *view = (pl_avro_view_t *)(uintptr_t)1;
	assert_int_equal(pl_avro_view_open(registry, data, len, &view, view_err, sizeof(view_err)),
	                 PL_ERR_DECODE);
	assert_null(view);
	assert_string_equal(view_err, err);
}

/* The same, for a Hostile body under a correct header. */
static void expect_body_error(const hostile_t *h, const uint8_t *body, size_t n,
                              const char *reason_part)
{
	size_t len;
	uint8_t *m = message(h->fingerprint, body, n, &len);
	expect_decode_error(h->registry, m, len, reason_part);
	free(m);
}

/* Body of a valid Hostile value: s="hi", e=enum_index (C: 2), u=long 5, arr=[1,2] in one
 * negative-count block with its byte size, nulls=[null x3], b="\x00\xff", i=-1. Byte 4 is the
 * union branch. */
static size_t hostile_body(uint8_t *p, int64_t enum_index)
{
	size_t n = put_longs(p, 1, L(2));
	memcpy(p + n, "hi", 2);
	n += 2;
	n += put_longs(p + n, 11, enum_index, L(1), L(5), L(-2), L(2), L(1), L(2), L(0), L(3), L(0),
	               L(2));
	p[n++] = 0x00;
	p[n++] = 0xff;
	return n + put_longs(p + n, 1, L(-1));
}

/* The valid baseline decodes; every proper prefix of it is refused. */
static void test_hostile_baseline_and_truncations(void **state)
{
	hostile_t *h = *state;
	uint8_t body[64];
	size_t len, body_len = hostile_body(body, 2);
	uint8_t *m = message(h->fingerprint, body, body_len, &len);
	char err[512];
	json_t *value = NULL;
	if (pl_avro_decode(h->registry, m, len, &value, NULL, err, sizeof(err)))
		fail_msg("%s", err);
	json_t *expected = load("{'s':'hi','e':'C','u':5,'arr':[1,2],'nulls':[null,null,"
	                        "null],'b':'\\u0000\\u00ff','i':-1}");
	assert_true(json_equal(value, expected));
	json_decref(expected);
	json_decref(value);
	for (size_t cut = 0; cut < len; cut++)
		expect_decode_error(h->registry, m, cut, NULL);
	free(m);
	/* and a real event, cut at every length */
	pl_avro_registry_t *registry = pl_avro_registry_embedded(err, sizeof(err));
	value = load(requested);
	void *bytes = NULL;
	assert_int_equal(pl_avro_encode(pl_avro_schema_get(registry, "DeliveryRequested"), value,
	                                &bytes, &len, err, sizeof(err)),
	                 PL_OK);
	for (size_t cut = 0; cut < len; cut++)
		expect_decode_error(registry, bytes, cut, NULL);
	pl_free(bytes);
	json_decref(value);
	pl_avro_registry_destroy(registry);
}

static void test_hostile_lengths_and_indexes(void **state)
{
	hostile_t *h = *state;
	uint8_t body[64];
	size_t n;
	/* string length 2^62 with nothing behind it; a negative length; an 11-byte varint */
	expect_body_error(h, body, put_longs(body, 1, L(1) << 62), "exceeds");
	expect_body_error(h, body, put_longs(body, 1, L(-5)), "negative length");
	memset(body, 0x80, 11);
	body[11] = 0;
	expect_body_error(h, body, 12, "varint");
	/* a string of PL_AVRO_MAX_ALLOC bytes that is really there: refused before avro-c would
	 * allocate it */
	uint8_t *huge = malloc(PL_AVRO_MAX_ALLOC + 16);
	n = put_longs(huge, 1, L(PL_AVRO_MAX_ALLOC));
	memset(huge + n, 'a', PL_AVRO_MAX_ALLOC);
	expect_body_error(h, huge, n + PL_AVRO_MAX_ALLOC, "exceeds the limit");
	free(huge);
	/* enum index 7 and -1 of a 4-symbol enum */
	expect_body_error(h, body, hostile_body(body, 7), "enum index 7");
	expect_body_error(h, body, hostile_body(body, -1), "enum index -1");
	/* union branch 2 of a 2-branch union */
	n = hostile_body(body, 2);
	body[4] = 4; /* zigzag(2) */
	expect_body_error(h, body, n, "union branch 2");
	/* invalid UTF-8 (an overlong '/') in the string */
	n = hostile_body(body, 2);
	body[1] = 0xC0;
	body[2] = 0xAF;
	expect_body_error(h, body, n, "UTF-8");
	/* the int field (last byte, -1) replaced by 2^40 */
	n = hostile_body(body, 2) - 1;
	expect_body_error(h, body, n + put_longs(body + n, 1, L(1) << 40), "varint longer");
	/* trailing garbage */
	n = hostile_body(body, 2);
	body[n++] = 0xFF;
	expect_body_error(h, body, n, "trailing");
}

static void test_hostile_blocks(void **state)
{
	hostile_t *h = *state;
	uint8_t body[64];
	/* s = "", e = A, u = null, then the arrays */
	size_t prefix = put_longs(body, 3, L(0), L(0), L(0)), n;
	/* array block count 2^40 with a few bytes behind it */
	n = prefix + put_longs(body + prefix, 1, L(1) << 40);
	memset(body + n, 0x02, 8);
	expect_body_error(h, body, n + 8, "block count");
	/* negative block count with a byte size beyond the end */
	n = prefix + put_longs(body + prefix, 3, L(-1), L(1000), L(1));
	expect_body_error(h, body, n, "byte size 1000 out of range");
	/* block byte size that disagrees with its items */
	n = prefix + put_longs(body + prefix, 4, L(-1), L(2), L(1), L(0));
	expect_body_error(h, body, n, "does not match");
	/* INT64_MIN block count */
	n = prefix + put_longs(body + prefix, 1, INT64_MIN);
	expect_body_error(h, body, n, "block count");
	/* 2^50 nulls: items that take no bytes may still not be counted without bound */
	n = prefix + put_longs(body + prefix, 5, L(0), L(1) << 50, L(0), L(0), L(0));
	expect_body_error(h, body, n, "limit");
}

static void test_hostile_headers(void **state)
{
	hostile_t *h = *state;
	uint8_t body[64], *m;
	size_t len, n = hostile_body(body, 2);
	m = message(h->fingerprint, body, n, &len);
	m[1] = 0x02;
	expect_decode_error(h->registry, m, len, "single-object");
	m[1] = 0x01;
	m[0] = 0x00; /* a Confluent-framed record starts with 0 */
	expect_decode_error(h->registry, m, len, "single-object");
	free(m);
	m = message(h->fingerprint ^ 1, body, n, &len);
	expect_decode_error(h->registry, m, len, "unknown writer schema fingerprint");
	free(m);
	expect_decode_error(h->registry, (const uint8_t *)"", 0, NULL);
	expect_decode_error(h->registry, NULL, 0, NULL);
	uint64_t fp;
	assert_int_equal(pl_avro_peek_fingerprint("\xC3\x01\x00", 3, &fp), PL_ERR_DECODE);
}

/* avro-c allocates through pl_mem: a counting allocator sees it, and everything is freed. */
static size_t n_alloc, n_free;

static void *counting_malloc(size_t size)
{
	n_alloc++;
	return malloc(size);
}

static void *counting_realloc(void *ptr, size_t size)
{
	if (!ptr)
		n_alloc++;
	return realloc(ptr, size);
}

static void counting_free(void *ptr)
{
	if (ptr)
		n_free++;
	free(ptr);
}

/* ---- views ---- */

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A random value of node's type: every union branch, strings with quotes, control characters
 * and UTF-8, bytes above 0x7F, integers and reals of every size, arrays of 0-3 items. */
static json_t *random_value(const pl_avro_node_t *node, int depth)
{
	static const char *const texts[] = {
	    "", "plain", "q\"uo\\te", "tab\tnl\n", "caf\xc3\xa9 \xe2\x82\xac", "\x01\x1f"};
	static const double reals[] = {0.0,   -0.0,      47.6062,       -122.3321, 1e-7,
	                               1e300, 0.1 + 0.2, 123456789.123, -2.5e-5};
	uint64_t r = next_random();
	json_t *json;
	switch (node->kind) {
	case PL_AVRO_T_NULL:
		return json_null();
	case PL_AVRO_T_BOOLEAN:
		return json_boolean(r & 1);
	case PL_AVRO_T_INT:
		return json_integer((int32_t)r);
	case PL_AVRO_T_LONG:
		return json_integer(r & 2 ? (int64_t)r : (int64_t)(r % 1000));
	case PL_AVRO_T_FLOAT:
		return json_real(
		    (float)(reals[r % 9] < 1e30 ? reals[r % 9] * (double)(r % 7) : 3.0e38));
	case PL_AVRO_T_DOUBLE:
		return json_real(r & 1 ? reals[r % 9] : (double)(int64_t)r / 1e6);
	case PL_AVRO_T_STRING:
		return json_string(texts[r % 6]);
	case PL_AVRO_T_BYTES:
	case PL_AVRO_T_FIXED: {
		size_t n = node->kind == PL_AVRO_T_FIXED ? node->size : r % 5;
		json = json_string("");
		for (size_t i = 0; i < n; i++) {
			char cp[3] = {0};
			unsigned b = (unsigned)((r >> (8 * (i % 8))) & 0xFF);
			if (b < 0x80)
				cp[0] = (char)b;
			else
				cp[0] = (char)(0xC0 | (b >> 6)), cp[1] = (char)(0x80 | (b & 0x3F));
			char *t = NULL;
			size_t len = json_string_length(json);
			t = malloc(len + 3);
			memcpy(t, json_string_value(json), len);
			memcpy(t + len, cp, b < 0x80 ? 1 : 2);
			json_string_setn(json, t, len + (b < 0x80 ? 1 : 2));
			free(t);
		}
		return json;
	}
	case PL_AVRO_T_ENUM:
		return json_string(node->symbols[r % node->count]);
	case PL_AVRO_T_UNION:
		return random_value(node->branches[depth > 6 ? 0 : r % node->count], depth + 1);
	case PL_AVRO_T_ARRAY:
		json = json_array();
		for (uint64_t i = 0; i < (depth > 6 ? 0 : r % 4); i++)
			json_array_append_new(json, random_value(node->items, depth + 1));
		return json;
	case PL_AVRO_T_MAP:
		json = json_object();
		for (uint64_t i = 0; i < (depth > 6 ? 0 : r % 4); i++) {
			char key[16];
			snprintf(key, sizeof(key), "k%u", (unsigned)(next_random() % 5));
			json_object_set_new(json, key, random_value(node->items, depth + 1));
		}
		return json;
	case PL_AVRO_T_RECORD:
		json = json_object();
		for (size_t i = 0; i < node->count; i++)
			json_object_set_new(json, node->fields[i].name,
			                    random_value(node->fields[i].type, depth + 1));
		return json;
	}
	return NULL;
}

/* The view of bytes gives what decoding them gives: the outcome, the reader schema, every
 * top-level field, and the JSON text in both key orders. */
static void expect_view_as_decoded(const pl_avro_registry_t *registry, const void *bytes,
                                   size_t len)
{
	char err[512] = "", view_err[512] = "";
	json_t *decoded = NULL;
	const pl_avro_schema_t *schema = NULL;
	pl_err_t de = pl_avro_decode(registry, bytes, len, &decoded, &schema, err, sizeof(err));
	pl_avro_view_t *view = NULL;
	assert_int_equal(pl_avro_view_open(registry, bytes, len, &view, view_err, sizeof(view_err)),
	                 de);
	if (de != PL_OK) {
		assert_null(view);
		assert_string_equal(view_err, err);
		return;
	}
	assert_ptr_equal(pl_avro_view_schema(view), schema);
	const pl_avro_node_t *root = pl_avro_schema_tree(schema)->root;
	for (size_t i = 0; i < root->count; i++) {
		const char *name = root->fields[i].name;
		assert_int_equal(pl_avro_field_index(schema, name), (int)i);
		pl_avro_scalar_t s = pl_avro_view_field(view, (int)i);
		const json_t *j = json_object_get(decoded, name);
		switch (json_typeof(j)) {
		case JSON_NULL:
			assert_int_equal(s.type, PL_AVRO_V_NULL);
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			assert_int_equal(s.type, PL_AVRO_V_BOOLEAN);
			assert_int_equal(s.boolean, json_is_true(j));
			break;
		case JSON_INTEGER:
			assert_int_equal(s.type, PL_AVRO_V_INTEGER);
			assert_true(s.integer == json_integer_value(j));
			break;
		case JSON_REAL:
			assert_int_equal(s.type, PL_AVRO_V_REAL);
			assert_memory_equal(&s.real, &(double){json_real_value(j)}, sizeof(double));
			break;
		case JSON_STRING:
			assert_int_equal(s.type, PL_AVRO_V_STRING);
			assert_int_equal(s.length, json_string_length(j));
			assert_memory_equal(s.string, json_string_value(j), s.length + 1);
			break;
		default:
			assert_int_equal(s.type, PL_AVRO_V_OTHER);
			break;
		}
	}
	assert_int_equal(pl_avro_view_field(view, (int)root->count).type, PL_AVRO_V_ABSENT);
	assert_int_equal(pl_avro_view_field(view, -1).type, PL_AVRO_V_ABSENT);
	assert_int_equal(pl_avro_field_index(schema, "no such field"), -1);
	for (unsigned flags = 0; flags < 2; flags++) {
		size_t vlen = 0, jlen = 0;
		char *vt = pl_avro_view_json(view, flags, &vlen),
		     *jt = pl_json_text(decoded, flags, &jlen);
		assert_non_null(vt);
		assert_string_equal(vt, jt);
		assert_int_equal(vlen, jlen);
		pl_free(vt);
		pl_free(jt);
	}
	pl_avro_view_free(view);
	json_decref(decoded);
}

static void expect_view_of_value(const pl_avro_registry_t *registry, const pl_avro_schema_t *schema,
                                 const json_t *value)
{
	char err[512];
	void *bytes = NULL;
	size_t len = 0;
	if (pl_avro_encode(schema, value, &bytes, &len, err, sizeof(err)))
		fail_msg("encode: %s", err);
	expect_avro_c_bytes(schema, value, bytes, len);
	expect_view_as_decoded(registry, bytes, len);
	/* and of the same bytes changed: a flipped bit, or cut short */
	uint8_t *changed = malloc(len);
	for (int k = 0; k < 8; k++) {
		memcpy(changed, bytes, len);
		size_t at = PL_AVRO_HEADER_LEN + next_random() % (len - PL_AVRO_HEADER_LEN);
		changed[at] ^= (uint8_t)(1u << (next_random() % 8));
		expect_view_as_decoded(registry, changed, k < 6 ? len : at);
	}
	free(changed);
	pl_free(bytes);
}

static void test_view_matches_decode_for_every_embedded_schema(void **state)
{
	const pl_avro_registry_t *registry = *state;
	char err[512];
	for (size_t i = 0; i < pl_avro_embedded_count; i++) {
		pl_avro_tree_t *tree = pl_avro_tree_parse(pl_avro_embedded[i].json, true, err, 512);
		assert_non_null(tree);
		const pl_avro_schema_t *schema = pl_avro_schema_get(registry, tree->root->name);
		assert_non_null(schema);
		for (int k = 0; k < 300; k++) {
			json_t *value = random_value(tree->root, 0);
			expect_view_of_value(registry, schema, value);
			json_decref(value);
		}
		pl_avro_tree_destroy(tree);
	}
}

/* An older writer: the view reads the resolved record. A map: the text falls back to the
 * decoder's (sorted keys, one per key). A double JSON cannot hold: refused like the decoder. */
static void test_view_of_resolved_records_maps_and_nan(void **state)
{
	(void)state;
	char err[512];
	const pl_avro_schema_t *v1;
	pl_avro_registry_t *registry = wide_registry(&v1);
	const pl_avro_schema_t *v2 = pl_avro_schema_get(registry, "Wide");
	for (int k = 0; k < 200; k++) {
		json_t *value = random_value(pl_avro_schema_tree(v1)->root, 0);
		expect_view_of_value(registry, v1, value);
		json_decref(value);
		value = random_value(pl_avro_schema_tree(v2)->root, 0);
		expect_view_of_value(registry, v2, value);
		json_decref(value);
	}
	pl_avro_registry_destroy(registry);

	const pl_avro_source_t real = {"R.v1.avsc",
	                               dq("{'type':'record','name':'R','fields':[{'name':'id',"
	                                  "'type':'string'},{'name':'d','type':'double'}]}")};
	registry = pl_avro_registry_new(&real, 1, err, sizeof(err));
	assert_non_null(registry);
	uint64_t fp = pl_avro_schema_fingerprint(pl_avro_schema_get(registry, "R"));
	uint8_t bytes[PL_AVRO_HEADER_LEN + 3 + 8] = {0xC3, 0x01};
	for (int b = 0; b < 8; b++)
		bytes[2 + b] = (uint8_t)(fp >> (8 * b));
	memcpy(bytes + PL_AVRO_HEADER_LEN, "\x04id", 3);
	const uint64_t specials[] = {0x7FF8000000000000ULL, 0x7FF0000000000000ULL,
	                             0x3FF0000000000000ULL};
	for (int s = 0; s < 3; s++) {
		for (int b = 0; b < 8; b++)
			bytes[PL_AVRO_HEADER_LEN + 3 + b] = (uint8_t)(specials[s] >> (8 * b));
		expect_view_as_decoded(registry, bytes, sizeof(bytes));
		pl_avro_view_t *view = NULL;
		assert_int_equal(
		    pl_avro_view_open(registry, bytes, sizeof(bytes), &view, err, sizeof(err)),
		    s < 2 ? PL_ERR_DECODE : PL_OK);
		if (s < 2)
			assert_non_null(strstr(err, "cannot be represented in JSON"));
		pl_avro_view_free(view);
	}
	pl_avro_registry_destroy(registry);
}

static void test_allocations_go_through_pl_mem(void **state)
{
	(void)state;
	const pl_allocator_t counting = {counting_malloc, counting_realloc, counting_free};
	char err[512];
	n_alloc = n_free = 0;
	pl_mem_set_allocator(&counting);
	pl_avro_registry_t *registry = pl_avro_registry_embedded(err, sizeof(err));
	assert_non_null(registry);
	size_t after_registry = n_alloc;
	json_t *value = load(requested);
	json_t *decoded =
	    round_trip(registry, pl_avro_schema_get(registry, "DeliveryRequested"), value, NULL);
	/* the encoding's buffer was allocated through pl_mem too */
	assert_true(n_alloc > after_registry);
	json_decref(decoded);
	json_decref(value);
	pl_avro_registry_destroy(registry);
	pl_mem_set_allocator(NULL);
	assert_int_equal(n_alloc, n_free);
}

/* DroneUnavailable v1 bytes (a scheduler before the service area) read as not permanent: the
 * workflow keeps retrying them as before. */
static void test_drone_unavailable_v1_is_not_permanent(void **state)
{
	(void)state;
	static const char v1[] =
	    "{'type':'record','name':'DroneUnavailable','namespace':'dronepipe.drone','fields':["
	    "{'name':'eventId','type':'string'},{'name':'deliveryId','type':'string'},"
	    "{'name':'causationId','type':['null','string'],'default':null},"
	    "{'name':'attempt','type':'int'},{'name':'reason','type':'string'},"
	    "{'name':'time','type':{'type':'long','logicalType':'timestamp-millis'}}]}";
	char err[512];
	pl_avro_registry_t *registry = pl_avro_registry_embedded(err, sizeof(err));
	assert_non_null(registry);
	char *canonical = pl_avro_canonical_form(dq(v1), err, sizeof(err));
	assert_non_null(canonical);
	const pl_avro_schema_t *writer =
	    pl_avro_schema_by_fingerprint(registry, pl_avro_crc64(canonical, strlen(canonical)));
	pl_free(canonical);
	assert_non_null(writer);
	assert_int_equal(pl_avro_schema_version(writer), 1);
	json_t *value = json_pack("{s:s, s:s, s:n, s:i, s:s, s:I}", "eventId", "e", "deliveryId",
	                          "d", "causationId", "attempt", 2, "reason", "no drone available",
	                          "time", (json_int_t)1795773600000LL);
	const pl_avro_schema_t *reader = NULL;
	json_t *decoded = round_trip(registry, writer, value, &reader);
	assert_int_equal(pl_avro_schema_version(reader), 2);
	assert_true(json_is_false(json_object_get(decoded, "permanent")));
	assert_int_equal(json_integer_value(json_object_get(decoded, "attempt")), 2);
	json_decref(decoded);
	json_decref(value);
	pl_avro_registry_destroy(registry);
}

int main(void)
{
	const struct CMUnitTest plain[] = {
	    cmocka_unit_test(test_fingerprint_and_canonical_vectors),
	    cmocka_unit_test(test_canonical_strips_and_qualifies),
	    cmocka_unit_test(test_canonical_rejects_bad_schemas),
	    cmocka_unit_test(test_resolution_old_writer_new_reader),
	    cmocka_unit_test(test_drone_unavailable_v1_is_not_permanent),
	    cmocka_unit_test(test_resolution_skips_reorders_and_promotes),
	    cmocka_unit_test(test_view_of_resolved_records_maps_and_nan),
	    cmocka_unit_test(test_registry_rejects_incompatible_versions),
	    cmocka_unit_test(test_allocations_go_through_pl_mem),
	    cmocka_unit_test(test_encode_matches_avro_c_at_the_edges),
	    cmocka_unit_test(test_encode_refuses_what_no_reader_accepts),
	};
	const struct CMUnitTest embedded[] = {
	    cmocka_unit_test(test_registry_embedded),
	    cmocka_unit_test(test_round_trip_every_embedded_schema),
	    cmocka_unit_test(test_encode_fills_defaults_and_accepts_integer_doubles),
	    cmocka_unit_test(test_encode_errors_name_the_field),
	    cmocka_unit_test(test_view_matches_decode_for_every_embedded_schema),
	};
	const struct CMUnitTest hostile[] = {
	    cmocka_unit_test(test_hostile_baseline_and_truncations),
	    cmocka_unit_test(test_hostile_lengths_and_indexes),
	    cmocka_unit_test(test_hostile_blocks),
	    cmocka_unit_test(test_hostile_headers),
	};
	int failed = cmocka_run_group_tests_name("avro", plain, NULL, NULL);
	failed += cmocka_run_group_tests_name("avro_embedded", embedded, registry_setup,
	                                      registry_teardown);
	failed +=
	    cmocka_run_group_tests_name("avro_hostile", hostile, hostile_setup, hostile_teardown);
	avro_oracle_reset();
	return failed ? 1 : 0;
}
