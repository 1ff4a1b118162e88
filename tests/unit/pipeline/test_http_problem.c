/* test_http_problem.c — unit tests of the problem+json builder (pipeline/http.c): whatever bytes
 * the detail or the errors text hold (a path, an id from a request), the answer is built, is
 * JSON, and has type, title, status, detail and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "mem.h"
#include "text.h"

static json_t *problem(unsigned status, const char *detail, const char *errors)
{
	char *text;
	size_t len = pl_http_problem_text(&text, status, detail, errors);
	assert_int_equal(strlen(text), len);
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err); /* jansson refuses what is not UTF-8 */
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "type")), "about:blank");
	assert_string_equal(json_string_value(json_object_get(doc, "title")),
	                    pl_http_reason(status));
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), status);
	const char *d = json_string_value(json_object_get(doc, "detail"));
	assert_non_null(d);
	assert_true(strlen(d) < PL_HTTP_DETAIL_MAX);
	assert_true(json_is_array(json_object_get(doc, "errors")));
	pl_free(text);
	return doc;
}

static void detail_plain_and_errors_kept(void **state)
{
	(void)state;
	json_t *doc = problem(400, "bad \"field\"", "[{\"field\":\"x\",\"reason\":\"y\"}]");
	assert_string_equal(json_string_value(json_object_get(doc, "detail")), "bad \"field\"");
	json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "field")), "x");
	json_decref(doc);
	doc = problem(404, NULL, NULL); /* no detail: the reason phrase */
	assert_string_equal(json_string_value(json_object_get(doc, "detail")), "Not Found");
	json_decref(doc);
	doc = problem(400, "x", "not json"); /* errors that are no array: [] */
	assert_int_equal(json_array_size(json_object_get(doc, "errors")), 0);
	json_decref(doc);
	doc = problem(400, "x", "{\"a\":1}");
	assert_int_equal(json_array_size(json_object_get(doc, "errors")), 0);
	json_decref(doc);
}

/* A detail that quotes a path cut mid-character, invalid bytes, controls, a huge text. */
static void detail_any_bytes(void **state)
{
	(void)state;
	char detail[PL_HTTP_DETAIL_MAX * 3];
	const char *parts[] = {"\xF0\x9F\x9A\x81", "\xFF", "\xC3", "\r\n", "\x00",
	                       "\xED\xA0\x80",     "a"};
	srand(4242);
	for (int round = 0; round < 3000; round++) {
		size_t n = 0, want = (size_t)rand() % (sizeof(detail) - 8);
		while (n < want) {
			const char *p = parts[rand() % 7];
			size_t l = p[0] ? strlen(p) : 1;
			memcpy(detail + n, p, l);
			n += l;
		}
		/* a detail is a C string: a NUL ends it */
		detail[n] = '\0';
		json_t *doc = problem(404 + (unsigned)(round % 2) * 96, detail, NULL);
		const char *d = json_string_value(json_object_get(doc, "detail"));
		assert_true(pl_text_utf8_valid(d, strlen(d)));
		assert_null(strchr(d, '\r'));
		assert_null(strchr(d, '\n'));
		json_decref(doc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(detail_plain_and_errors_kept),
	    cmocka_unit_test(detail_any_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
