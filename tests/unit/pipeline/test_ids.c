/* test_ids.c — identifiers (pipeline/ids.c): UUID v4 shape, version and variant, and no repeat
 * across threads; UUID v5 against the RFC 4122 example; W3C traceparent parse and child. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uuid.h>

#include <cmocka.h>

#include "kafka.h"

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void assert_v4(const char *u)
{
	assert_int_equal(strlen(u), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_true(is_lower_hex(u[i]));
	}
	assert_int_equal(u[14], '4');           /* version */
	assert_non_null(strchr("89ab", u[19])); /* variant 10xx */
	uuid_t parsed;
	assert_int_equal(uuid_parse(u, parsed), 0);
	assert_int_equal(uuid_type(parsed), UUID_TYPE_DCE_RANDOM);
}

#define PER_THREAD 20000

static void *make_many(void *arg)
{
	char(*out)[37] = arg;
	for (int i = 0; i < PER_THREAD; i++)
		pl_uuid_v4(out[i]);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	return memcmp(a, b, 37);
}

static void test_uuid_v4(void **state)
{
	(void)state;
	char(*all)[37] = malloc(4 * PER_THREAD * sizeof(*all));
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, make_many, all + i * PER_THREAD);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4 * PER_THREAD; i++)
		assert_v4(all[i]);
	qsort(all, 4 * PER_THREAD, sizeof(*all), cmp);
	for (int i = 1; i < 4 * PER_THREAD; i++)
		assert_int_not_equal(memcmp(all[i - 1], all[i], 37), 0);
	free(all);
}

static void test_uuid_v5(void **state)
{
	(void)state;
	char out[37];
	/* RFC 4122 appendix / Python uuid5(NAMESPACE_DNS, "python.org") */
	assert_int_equal(pl_uuid_v5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org", 10, out),
	                 PL_OK);
	assert_string_equal(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
	assert_int_equal(pl_uuid_v5("not-a-uuid", "x", 1, out), PL_ERR_INVALID);
}

static void test_traceparent(void **state)
{
	(void)state;
	char trace[33], child[56];
	const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	assert_true(pl_traceparent_parse(parent, trace));
	assert_string_equal(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_false(
	    pl_traceparent_parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", NULL));
	assert_false(
	    pl_traceparent_parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL));
	assert_false(
	    pl_traceparent_parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", NULL));
	assert_false(pl_traceparent_parse(NULL, NULL));
	pl_traceparent_child(parent, child);
	assert_true(pl_traceparent_parse(child, trace));
	assert_string_equal(trace, "4bf92f3577b34da6a3ce929d0e0e4736"); /* same trace */
	assert_memory_not_equal(child + 36, parent + 36, 16);           /* new span */
	assert_string_equal(child + 53, "01");                          /* flags kept */
	pl_traceparent_child("garbage", child);                         /* a new trace */
	assert_true(pl_traceparent_parse(child, trace));
	assert_string_not_equal(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid_v4),
	    cmocka_unit_test(test_uuid_v5),
	    cmocka_unit_test(test_traceparent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
