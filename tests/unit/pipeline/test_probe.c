/* test_probe.c — pl_probe: readiness from recorded outcomes (no answer yet, a failed call, a
 * refused write that a later read does not hide, a stale answer) and the idle ping thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "probe.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_records(void **state)
{
	(void)state;
	char reason[256];
	pl_probe_t *p = pl_probe_new("Redis", 1000, 60000);
	assert_false(pl_probe_ready(p, reason, sizeof(reason)));
	assert_string_equal(reason, "Redis: no answer yet");
	pl_probe_note(p, PL_PROBE_CALLS, true, NULL);
	assert_true(pl_probe_ready(p, reason, sizeof(reason)));

	pl_probe_note(p, PL_PROBE_CALLS, false, "redis: Connection refused");
	assert_false(pl_probe_ready(p, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "Redis: redis: Connection refused (failing since "));
	pl_probe_note(p, PL_PROBE_CALLS, true, NULL);
	assert_true(pl_probe_ready(p, reason, sizeof(reason)));

	/* a refused write: reads that work do not make it ready; a write that works does */
	pl_probe_note(p, PL_PROBE_WRITES, false, "redis: OOM command not allowed");
	pl_probe_note(p, PL_PROBE_CALLS, true, NULL);
	assert_false(pl_probe_ready(p, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "Redis: refuses writes: redis: OOM command not allowed"));
	pl_probe_note(p, PL_PROBE_WRITES, true, NULL);
	assert_true(pl_probe_ready(p, reason, sizeof(reason)));
	pl_probe_destroy(p);
	pl_probe_destroy(NULL);
	pl_probe_note(NULL, PL_PROBE_CALLS, true, NULL); /* no-op */
}

static void test_failing_since_the_first_failure(void **state)
{
	(void)state;
	char first[256], later[256];
	pl_probe_t *p = pl_probe_new("X", 1000, 60000);
	pl_probe_note(p, PL_PROBE_CALLS, false, "a");
	pl_probe_ready(p, first, sizeof(first));
	sleep_ms(20);
	pl_probe_note(p, PL_PROBE_CALLS, false, "b");
	pl_probe_ready(p, later, sizeof(later));
	/* the same "since", the latest error */
	assert_string_equal(strstr(first, "since"), strstr(later, "since"));
	assert_non_null(strstr(later, "X: b (failing"));
	pl_probe_destroy(p);
}

static void test_stale_answer(void **state)
{
	(void)state;
	char reason[256];
	pl_probe_t *p = pl_probe_new("FerretDB", 10, 30);
	pl_probe_note(p, PL_PROBE_CALLS, true, NULL);
	assert_true(pl_probe_ready(p, reason, sizeof(reason)));
	sleep_ms(1100);
	assert_false(pl_probe_ready(p, reason, sizeof(reason)));
	assert_string_equal(reason, "FerretDB: no answer for 1 s");
	pl_probe_destroy(p);
}

typedef struct pinger {
	pl_probe_t *probe;
	atomic_int calls;
	bool ok;
} pinger_t;

static void ping(void *arg)
{
	pinger_t *g = arg;
	atomic_fetch_add(&g->calls, 1);
	pl_probe_note(g->probe, PL_PROBE_CALLS, g->ok, "ping failed");
}

static void test_idle_ping(void **state)
{
	(void)state;
	char reason[256];
	pinger_t g = {.probe = pl_probe_new("S", 50, 5000), .ok = true};
	pl_probe_start(g.probe, ping, &g);
	for (int i = 0; i < 200 && atomic_load(&g.calls) < 3; i++)
		sleep_ms(10);
	assert_true(atomic_load(&g.calls) >= 3); /* first at once, then each idle 50 ms */
	assert_true(pl_probe_ready(g.probe, reason, sizeof(reason)));
	g.ok = false;
	for (int i = 0; i < 200 && pl_probe_ready(g.probe, reason, sizeof(reason)); i++)
		sleep_ms(10);
	assert_false(pl_probe_ready(g.probe, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "S: ping failed"));
	/* calls recorded by the store itself keep the ping away */
	int before = atomic_load(&g.calls);
	for (int i = 0; i < 20; i++) {
		pl_probe_note(g.probe, PL_PROBE_CALLS, true, NULL);
		sleep_ms(10);
	}
	assert_true(atomic_load(&g.calls) - before <= 1);
	pl_probe_destroy(g.probe); /* joins the thread */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_failing_since_the_first_failure),
	    cmocka_unit_test(test_stale_answer),
	    cmocka_unit_test(test_idle_ping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
