/* test_durable.c — when a finished saga may drop its outbox (consumers/workflow/durable.c):
 * never before every input handled up to then is stored, on every topic; in queue order; a
 * restore's entry waits for the end offsets it was given; topics with nothing handled need
 * nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "workflow/durable.h"

/* The next ready entry's id ("*" for a restore entry), or "" when none is ready. */
static const char *next(dur_t *d)
{
	static char buf[64];
	char *id = NULL;
	if (!dur_next_ready(d, &id))
		return "";
	snprintf(buf, sizeof(buf), "%s", id ? id : "*");
	pl_free(id);
	return buf;
}

static void test_waits_for_every_topic(void **state)
{
	(void)state;
	dur_t *d = dur_new();
	dur_handled(d, 0, 10); /* requests up to offset 10 */
	dur_handled(d, 2, 4);  /* drone events up to 4 */
	dur_watch(d, "a");
	assert_string_equal(next(d), ""); /* nothing stored yet */
	dur_stored(d, 0, 11);
	assert_string_equal(next(d), ""); /* drone events not yet */
	dur_stored(d, 2, 4);
	assert_string_equal(next(d), ""); /* offset 4 itself is not stored */
	dur_stored(d, 2, 5);
	assert_string_equal(next(d), "a"); /* topic 1 had nothing handled: needs nothing */
	assert_string_equal(next(d), "");
	assert_int_equal(dur_waiting(d), 0);
	dur_destroy(d);
}

static void test_queue_order_and_positions_only_grow(void **state)
{
	(void)state;
	dur_t *d = dur_new();
	dur_handled(d, 1, 5);
	dur_watch(d, "a");
	dur_handled(d, 1, 3); /* a retry of an earlier record does not move the position back */
	dur_handled(d, 1, 8);
	dur_watch(d, "b");
	dur_stored(d, 1, 9);
	dur_stored(d, 1, 2); /* older news changes nothing */
	assert_string_equal(next(d), "a");
	assert_string_equal(next(d), "b");
	dur_handled(d, 1, 20);
	dur_watch(d, "c");
	dur_handled(d, 0, 1);
	dur_watch(d, "d"); /* d needs topic 0 too; c does not */
	dur_stored(d, 1, 21);
	assert_string_equal(next(d), "c");
	assert_string_equal(next(d), "");
	dur_stored(d, 0, 2);
	assert_string_equal(next(d), "d");
	dur_destroy(d);
}

static void test_restore_entry_holds_back_later_ones(void **state)
{
	(void)state;
	dur_t *d = dur_new();
	int64_t end[DUR_TOPICS] = {100, 0, 50}; /* topic 1 empty */
	dur_watch_all(d, end);
	dur_handled(d, 0, 0);
	dur_watch(d, "late");
	dur_stored(d, 0, 1);
	/* "late" alone would be ready, but the restore entry before it is not */
	assert_string_equal(next(d), "");
	dur_stored(d, 0, 100);
	dur_stored(d, 2, 49);
	assert_string_equal(next(d), "");
	dur_stored(d, 2, 50);
	assert_string_equal(next(d), "*");
	assert_string_equal(next(d), "late");
	dur_destroy(d);
}

static void test_many_entries_and_bad_topics(void **state)
{
	(void)state;
	dur_t *d = dur_new();
	char id[32];
	dur_handled(d, -1, 5); /* not an input topic: ignored */
	dur_handled(d, DUR_TOPICS, 5);
	for (int i = 0; i < 1000; i++) {
		dur_handled(d, i % DUR_TOPICS, i);
		snprintf(id, sizeof(id), "d%d", i);
		dur_watch(d, id);
	}
	assert_int_equal(dur_waiting(d), 1000);
	dur_stored(d, 0, 500);
	dur_stored(d, 1, 500);
	dur_stored(d, 2, 500);
	int ready = 0;
	while (next(d)[0])
		ready++;
	/* entry i needs every topic's last handled offset < 500: i <= 499 */
	assert_int_equal(ready, 500);
	assert_int_equal(dur_waiting(d), 500);
	dur_destroy(d); /* frees the waiting ids (ASan checks) */
	dur_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_waits_for_every_topic),
	    cmocka_unit_test(test_queue_order_and_positions_only_grow),
	    cmocka_unit_test(test_restore_entry_holds_back_later_ones),
	    cmocka_unit_test(test_many_entries_and_bad_topics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
