/* fuzz_avro.c — libFuzzer driver for the Avro decoder (pipeline/avro.c): feeds the bytes to
 * pl_avro_decode over the embedded schemas and checks its contract on every input: PL_OK <=> a
 * value and a reader schema; an error names its reason; a decoded value encodes again with its
 * reader schema and decodes to an equal value (the decoder built nothing the schema does not
 * allow), and those bytes are Apache avro-c's for the same value (tests/oracle); a view of the same
 * bytes (pl_avro_view_open) agrees with the decoder: the same outcome and reason, every top-level
 * field, and the JSON text in both key orders. Everything is freed, so LeakSanitizer catches leaks.
 * Built by scripts/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "avro.h"
#include "oracle/avro_oracle.h"
#include "jsonw.h"
#include "mem.h"

static pl_avro_registry_t *registry;

/* A view field against the decoded object's member of the same name. */
static int same_field(pl_avro_scalar_t s, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		return s.type == PL_AVRO_V_NULL;
	case JSON_TRUE:
	case JSON_FALSE:
		return s.type == PL_AVRO_V_BOOLEAN && s.boolean == json_is_true(j);
	case JSON_INTEGER:
		return s.type == PL_AVRO_V_INTEGER && s.integer == json_integer_value(j);
	case JSON_REAL:
		return s.type == PL_AVRO_V_REAL &&
		       memcmp(&s.real, &(double){json_real_value(j)}, 8) == 0;
	case JSON_STRING:
		return s.type == PL_AVRO_V_STRING && s.length == json_string_length(j) &&
		       memcmp(s.string, json_string_value(j), s.length + 1) == 0;
	default:
		return s.type == PL_AVRO_V_OTHER;
	}
}

static void check_view(const uint8_t *data, size_t size, pl_err_t de, const char *derr,
                       const json_t *value)
{
	char err[512] = "";
	pl_avro_view_t *view = NULL;
	pl_err_t ve = pl_avro_view_open(registry, data, size, &view, err, sizeof(err));
	if (ve != de || (ve != PL_OK && (view || strcmp(err, derr) != 0)))
		abort();
	if (ve != PL_OK)
		return;
	const char *key;
	const json_t *member;
	json_object_foreach((json_t *)value, key, member)
	{
		int index = pl_avro_field_index(pl_avro_view_schema(view), key);
		if (index < 0 || !same_field(pl_avro_view_field(view, index), member))
			abort();
	}
	for (unsigned flags = 0; flags < 2; flags++) {
		char *a = pl_avro_view_json(view, flags, NULL),
		     *b = pl_json_text(value, flags, NULL);
		if (!a || !b || strcmp(a, b) != 0)
			abort();
		pl_free(a);
		pl_free(b);
	}
	pl_avro_view_free(view);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	if (!registry && !(registry = pl_avro_registry_embedded(err, sizeof(err))))
		abort();
	json_t *value = NULL;
	const pl_avro_schema_t *schema = NULL;
	err[0] = '\0';
	pl_err_t e = pl_avro_decode(registry, data, size, &value, &schema, err, sizeof(err));
	check_view(data, size, e, err, value);
	if (e != PL_OK) {
		if (value || !err[0] || (e != PL_ERR_DECODE && e != PL_ERR_SCHEMA))
			abort();
		return 0;
	}
	if (!value || !schema)
		abort();
	void *again = NULL;
	size_t again_len = 0;
	json_t *round = NULL;
	if (pl_avro_encode(schema, value, &again, &again_len, err, sizeof(err)) != PL_OK ||
	    pl_avro_decode(registry, again, again_len, &round, NULL, err, sizeof(err)) != PL_OK ||
	    !json_equal(round, value))
		abort();
	uint8_t *ref = NULL;
	size_t ref_len = 0;
	if (!avro_oracle_encode(schema, value, &ref, &ref_len, err, sizeof(err)) ||
	    ref_len != again_len || memcmp(ref, again, ref_len) != 0)
		abort();
	free(ref);
	json_decref(round);
	pl_free(again);
	json_decref(value);
	return 0;
}
