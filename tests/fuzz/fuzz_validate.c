/* fuzz_validate.c — libFuzzer driver for the ingress request validator (producers/ingress/
 * validate.c): feeds the same bytes to the create, reschedule and confirmation validators and
 * checks their contract on every input: PL_OK <=> an event and an empty problem; otherwise
 * status 400, a detail, at least one error, safe text (valid UTF-8, no control character), and
 * an errors array that renders as JSON. A valid event also goes through the service-area rule
 * (ingress_validate_area), which keeps the same contract. Everything is freed, so
 * LeakSanitizer catches leaks. Built by scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "text.h"
#include "validate.h"

typedef pl_err_t (*validator_t)(const char *, size_t, json_t **, ingress_problem_t *);

/* Text of an answer is safe text (pl_text_clean): valid UTF-8, no control character. */
static void check_printable(const char *s)
{
	if (!pl_text_utf8_valid(s, strlen(s)))
		abort();
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			abort();
}

static void check(validator_t validator, const uint8_t *data, size_t size,
                  ingress_problem_t *problem)
{
	json_t *event = NULL;
	pl_err_t err = validator((const char *)data, size, &event, problem);
	if (err == PL_OK) {
		if (!event || !json_is_object(event) || problem->status != 0 ||
		    problem->error_count != 0 || problem->detail)
			abort();
		/* the event must serialise (valid UTF-8 strings, finite numbers) */
		char *text = json_dumps(event, JSON_COMPACT);
		if (!text)
			abort();
		free(text);
		/* the service-area rule on its points keeps the same problem contract; a small area
		 * so both verdicts occur */
		static const pl_area_t area = {
		    .lat = 47.61, .lon = -122.33, .radius_m = 8000, .range_m = 10000};
		pl_err_t area_err = ingress_validate_area(&area, event, problem);
		json_decref(event);
		if (area_err == PL_OK) {
			if (problem->status != 0 || problem->error_count != 0 || problem->detail)
				abort();
			return;
		}
		event = NULL;
		err = area_err;
	}
	if (err != PL_ERR_INVALID || event || problem->status != 400 || problem->error_count == 0 ||
	    !problem->detail)
		abort();
	check_printable(problem->detail);
	for (size_t i = 0; i < problem->error_count; i++) {
		check_printable(problem->errors[i].field);
		check_printable(problem->errors[i].reason);
	}
	char *errors = ingress_problem_errors_json(problem);
	json_error_t jerr;
	json_t *back = json_loads(errors, 0, &jerr);
	if (!json_is_array(back) || json_array_size(back) != problem->error_count)
		abort();
	json_decref(back);
	pl_free(errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy of exactly size bytes, so ASan flags any read past the end. */
	uint8_t *copy = malloc(size ? size : 1);
	if (size)
		memcpy(copy, data, size);
	ingress_problem_t problem = {0};
	check(ingress_validate_create, copy, size, &problem);
	check(ingress_validate_reschedule, copy, size, &problem); /* reuse: reset inside */
	check(ingress_validate_confirmation, copy, size, &problem);
	ingress_problem_free(&problem);
	free(copy);
	return 0;
}
