/* test_stops.c — how each delivery was stopped, while the simulator restores a partition
 * (producers/dronesim/stops.c): the last stop of a delivery wins, any-drone and one-drone stops
 * are told apart, growth keeps every entry, and the walk visits each delivery once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "dronesim/ended.h"
#include "dronesim/stops.h"

static void test_last_stop_wins(void **state)
{
	(void)state;
	stops_t *m = stops_new();
	uint64_t d, a = ended_hash("d-a"), b = ended_hash("d-b");
	assert_false(stops_get(m, a, &d)); /* empty, never grown */
	stops_put(m, a, ended_hash("drone-1"));
	assert_true(stops_get(m, a, &d));
	assert_true(d == ended_hash("drone-1"));
	stops_put(m, a, STOPS_ANY_DRONE); /* a finished lifecycle after the release */
	assert_true(stops_get(m, a, &d));
	assert_true(d == STOPS_ANY_DRONE);
	stops_put(m, a, ended_hash("drone-2")); /* a release read later wins again */
	assert_true(stops_get(m, a, &d));
	assert_true(d == ended_hash("drone-2"));
	assert_false(stops_get(m, b, &d));
	assert_false(stops_get(m, 0, &d));
	stops_put(m, 0, STOPS_ANY_DRONE); /* no such hash: ignored */
	assert_int_equal(stops_size(m), 1);
	stops_destroy(m);
	stops_destroy(NULL);
}

static void count(uint64_t delivery, uint64_t drone, void *arg)
{
	uint64_t *sums = arg;
	sums[0]++;
	sums[1] ^= delivery;
	sums[2] += drone == STOPS_ANY_DRONE;
}

static void test_growth_and_walk(void **state)
{
	(void)state;
	stops_t *m = stops_new();
	char id[64];
	uint64_t x = 0;
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "7d0c8a8e-0b9f-4a47-9d55-%012d", i);
		uint64_t h = ended_hash(id);
		x ^= h;
		stops_put(m, h, i % 2 ? STOPS_ANY_DRONE : ended_hash("drone-7"));
	}
	assert_int_equal(stops_size(m), 100000);
	for (int i = 0; i < 100000; i++) {
		uint64_t d;
		snprintf(id, sizeof(id), "7d0c8a8e-0b9f-4a47-9d55-%012d", i);
		assert_true(stops_get(m, ended_hash(id), &d));
		assert_true(d == (i % 2 ? STOPS_ANY_DRONE : ended_hash("drone-7")));
		snprintf(id, sizeof(id), "7d0c8a8e-0b9f-4a47-9d55-%012d", i + 1000000);
		assert_false(stops_get(m, ended_hash(id), &d));
	}
	uint64_t sums[3] = {0, 0, 0};
	stops_each(m, count, sums);
	assert_int_equal(sums[0], 100000);
	assert_true(sums[1] == x); /* every delivery once */
	assert_int_equal(sums[2], 50000);
	stops_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_last_stop_wins),
	    cmocka_unit_test(test_growth_and_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
