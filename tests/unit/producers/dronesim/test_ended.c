/* test_ended.c — the set of ended deliveries of the simulator (producers/dronesim/ended.c): what
 * was added is found, what was not is not, growth keeps every entry, pruning forgets exactly the
 * entries noted before the cut and keeps the rest findable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "dronesim/ended.h"

static void id_of(int i, char out[64])
{
	snprintf(out, 64, "7d0c8a8e-0b9f-4a47-9d55-%012d", i);
}

static void test_add_has(void **state)
{
	(void)state;
	ended_t *e = ended_new();
	assert_false(ended_has(e, "a")); /* empty, never grown */
	assert_int_equal(ended_size(e), 0);
	ended_add(e, "a", 10);
	ended_add(e, "a", 20); /* again: one entry, first time kept */
	assert_true(ended_has(e, "a"));
	assert_false(ended_has(e, "b"));
	assert_false(ended_has(e, ""));
	assert_int_equal(ended_size(e), 1);
	assert_int_equal(ended_prune(e, 15), 1); /* noted at 10, not 20 */
	assert_false(ended_has(e, "a"));
	ended_destroy(e);
	ended_destroy(NULL);
}

static void test_growth_and_prune(void **state)
{
	(void)state;
	ended_t *e = ended_new();
	char id[64];
	for (int i = 0; i < 100000; i++) {
		id_of(i, id);
		ended_add(e, id, i); /* noted at "time" i */
	}
	assert_int_equal(ended_size(e), 100000);
	int found = 0, false_hits = 0;
	for (int i = 0; i < 100000; i++) {
		id_of(i, id);
		found += ended_has(e, id);
		id_of(i + 1000000, id);
		false_hits += ended_has(e, id);
	}
	assert_int_equal(found, 100000);
	assert_int_equal(false_hits, 0);
	assert_int_equal(ended_prune(e, 99000), 99000); /* and shrinks */
	assert_int_equal(ended_size(e), 1000);
	assert_int_equal(ended_prune(e, 99000), 0);
	found = 0;
	for (int i = 0; i < 100000; i++) {
		id_of(i, id);
		found += ended_has(e, id) ? (i >= 99000 ? 1 : 1000000) : 0;
	}
	assert_int_equal(found, 1000); /* exactly the later ones */
	ended_add(e, "x", 5);
	assert_true(ended_has(e, "x"));
	ended_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_has),
	    cmocka_unit_test(test_growth_and_prune),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
