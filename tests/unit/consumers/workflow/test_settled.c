/* test_settled.c — the settled sagas of a partition (consumers/workflow/settled.c): each
 * delivery found with its status and only its seen eventIds, across growth; a saga with too many
 * seen eventIds is refused, not cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workflow/saga.h"
#include "workflow/settled.h"

static void delivery(char *out, size_t size, int i)
{
	snprintf(out, size, "%08x-0000-4000-8000-%012d", (unsigned)i * 2654435761u, i);
}

static void event(char *out, size_t size, int delivery_index, int k)
{
	snprintf(out, size, "%08x-1111-5000-9000-%06d%06d", (unsigned)k, delivery_index, k);
}

static void test_found_across_growth(void **unused __attribute__((unused)))
{
	settled_t *set = settled_new();
	enum { N = 50000 };
	char id[64], ev[8][64];
	const char *seen[8];
	for (int k = 0; k < 8; k++)
		seen[k] = ev[k];
	assert_null(settled_get(set, "nothing yet"));
	for (int i = 0; i < N; i++) {
		delivery(id, sizeof(id), i);
		int n = i % 9; /* 0..8 seen eventIds */
		for (int k = 0; k < n; k++)
			event(ev[k], sizeof(ev[k]), i, k);
		assert_true(settled_put(set, id, SAGA_COMPLETED + i % 3, seen, (size_t)n));
	}
	assert_int_equal(settled_size(set), N);
	for (int i = 0; i < N; i++) {
		delivery(id, sizeof(id), i);
		settled_entry_t *e = settled_get(set, id);
		assert_non_null(e);
		assert_int_equal(e->status, SAGA_COMPLETED + i % 3);
		for (int k = 0; k < 8; k++) {
			event(ev[k], sizeof(ev[k]), i, k);
			assert_int_equal(settled_seen(e, ev[k]), k < i % 9);
		}
		event(ev[0], sizeof(ev[0]), i + 1, 0); /* another delivery's eventId */
		assert_false(settled_seen(e, ev[0]));
	}
	delivery(id, sizeof(id), N);
	assert_null(settled_get(set, id));
	/* settling again replaces: same size, the new status and seen ids */
	delivery(id, sizeof(id), 7);
	event(ev[0], sizeof(ev[0]), 99, 99);
	assert_true(settled_put(set, id, SAGA_FAILED, seen, 1));
	assert_int_equal(settled_size(set), N);
	settled_entry_t *e = settled_get(set, id);
	assert_int_equal(e->status, SAGA_FAILED);
	assert_int_equal(e->nseen, 1);
	assert_true(settled_seen(e, ev[0]));
	settled_destroy(set);
	settled_destroy(NULL);
}

static void test_bounds(void **unused __attribute__((unused)))
{
	settled_t *set = settled_new();
	char ev[SETTLED_SEEN_MAX + 2][64];
	const char *seen[SETTLED_SEEN_MAX + 2];
	for (int k = 0; k < SETTLED_SEEN_MAX + 2; k++) {
		event(ev[k], sizeof(ev[k]), 1, k);
		seen[k] = ev[k];
	}
	/* more seen eventIds than an entry holds: refused whole, nothing stored */
	assert_false(settled_put(set, "d-many", SAGA_COMPLETED, seen, SETTLED_SEEN_MAX + 1));
	assert_null(settled_get(set, "d-many"));
	assert_int_equal(settled_size(set), 0);
	/* exactly the bound: every one of them seen, no other */
	assert_true(settled_put(set, "d-1", SAGA_CANCELLED, seen, SETTLED_SEEN_MAX));
	settled_entry_t *e = settled_get(set, "d-1");
	assert_int_equal(e->nseen, SETTLED_SEEN_MAX);
	for (int k = 0; k < SETTLED_SEEN_MAX; k++)
		assert_true(settled_seen(e, ev[k]));
	assert_false(settled_seen(e, ev[SETTLED_SEEN_MAX]));
	/* ids that differ in one character, and the empty id, are different deliveries */
	assert_true(settled_put(set, "", SAGA_FAILED, NULL, 0));
	assert_null(settled_get(set, "d-2"));
	assert_int_equal(settled_get(set, "")->status, SAGA_FAILED);
	assert_int_equal(settled_get(set, "d-1")->status, SAGA_CANCELLED);
	settled_destroy(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_found_across_growth),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
