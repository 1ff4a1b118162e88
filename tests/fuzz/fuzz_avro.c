/* fuzz_avro.c — libFuzzer driver for the Avro decoder (pipeline/avro.c): feeds the bytes to
 * pl_avro_decode over the embedded schemas and checks its contract on every input: PL_OK <=> a
 * value and a reader schema; an error names its reason; a decoded value encodes again with its
 * reader schema and decodes to an equal value (the decoder built nothing the schema does not
 * allow). Everything is freed, so LeakSanitizer catches leaks. Built by scripts/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>

#include "avro.h"
#include "mem.h"

static pl_avro_registry_t *registry;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	if (!registry && !(registry = pl_avro_registry_embedded(err, sizeof(err))))
		abort();
	json_t *value = NULL;
	const pl_avro_schema_t *schema = NULL;
	err[0] = '\0';
	pl_err_t e = pl_avro_decode(registry, data, size, &value, &schema, err, sizeof(err));
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
	json_decref(round);
	pl_free(again);
	json_decref(value);
	return 0;
}
