/* test_ended.c — the set of ended deliveries of the simulator (producers/dronesim/ended.c): what
 * was added is found, what was not is not, growth keeps every entry, pruning forgets whole
 * buckets of time (never an entry noted at or after the cut, every entry of a bucket wholly
 * before it) and keeps the rest findable. */
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
	ended_t *e = ended_new(10);
	assert_false(ended_has(e, "a")); /* empty, never grown */
	assert_int_equal(ended_size(e), 0);
	ended_add(e, "a", 10);
	ended_add(e, "a", 20); /* again: one entry, first time kept */
	assert_true(ended_has(e, "a"));
	assert_false(ended_has(e, "b"));
	assert_false(ended_has(e, ""));
	assert_int_equal(ended_size(e), 1);
	assert_int_equal(ended_prune(e, 19), 0); /* its bucket [10, 20) is not wholly before 19 */
	assert_true(ended_has(e, "a"));
	assert_int_equal(ended_prune(e, 20), 1); /* noted at 10, not 20 */
	assert_false(ended_has(e, "a"));
	assert_int_equal(ended_size(e), 0);
	/* negative times and a zero width work too */
	ended_t *z = ended_new(0);
	ended_add(z, "n", -5);
	assert_int_equal(ended_prune(z, -5), 0);
	assert_int_equal(ended_prune(z, -4), 1);
	ended_destroy(z);
	ended_destroy(e);
	ended_destroy(NULL);
}

static void test_growth_and_prune(void **state)
{
	(void)state;
	ended_t *e = ended_new(1000); /* 100 buckets of 1000 ids each */
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
	/* a cut inside a bucket keeps that bucket: 98,000 forgotten, not 98,500 */
	assert_int_equal(ended_prune(e, 98500), 98000);
	assert_int_equal(ended_size(e), 2000);
	assert_int_equal(ended_prune(e, 98500), 0);
	found = 0;
	for (int i = 0; i < 100000; i++) {
		id_of(i, id);
		found += ended_has(e, id) ? (i >= 98000 ? 1 : 1000000) : 0;
	}
	assert_int_equal(found, 2000); /* exactly the later buckets */
	/* an id noted at an earlier time than the newest bucket gets its own bucket, in order */
	ended_add(e, "x", 5);
	assert_true(ended_has(e, "x"));
	assert_int_equal(ended_size(e), 2001);
	assert_int_equal(ended_prune(e, 99000), 1001); /* x's bucket [0, 1000) and [98000, 99000) */
	assert_false(ended_has(e, "x"));
	assert_int_equal(ended_prune(e, 200000), 1000);
	assert_int_equal(ended_size(e), 0);
	id_of(99999, id);
	assert_false(ended_has(e, id));
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
