/* test_plan.c — unit tests of the ops CLI's pure parts: `replay` and `dlq` argument parsing
 * (good and bad input, each bad case with the sentence the operator sees), durations, the
 * dead-letter filter and redrive group names, the redrive target (only the pipeline's topics),
 * and the replay plan (targets, clamping,
 * records to reprocess / skip, partitions left alone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replay/ops.h"
#include "topiclist.h"
#include "replay/plan.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define REPLAY(a, err, ...)                                                                        \
	ops_replay_parse_args(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), a, err, sizeof(err))
#define DLQ(a, err, ...)                                                                           \
	ops_dlq_parse_args(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), a, err, sizeof(err))

static void test_duration(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_true(ops_parse_duration("1h", &ms));
	assert_int_equal(ms, 3600000);
	assert_true(ops_parse_duration("1h30m", &ms));
	assert_int_equal(ms, 5400000);
	assert_true(ops_parse_duration("90s", &ms));
	assert_int_equal(ms, 90000);
	assert_true(ops_parse_duration("500ms", &ms));
	assert_int_equal(ms, 500);
	assert_true(ops_parse_duration("2d", &ms));
	assert_int_equal(ms, 172800000);
	assert_true(ops_parse_duration("1w", &ms));
	assert_int_equal(ms, 604800000);
	assert_true(ops_parse_duration("45", &ms)); /* bare number = seconds */
	assert_int_equal(ms, 45000);
	const char *bad[] = {"",      "h",    "1x",   "-1h",          "0s",
	                     "1h 2m", "1.5h", "1h30", "99999999999d", "m5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(ops_parse_duration(bad[i], &ms));
}

static void test_replay_args_good(void **state)
{
	(void)state;
	ops_replay_args_t a;
	char err[256] = "";
	assert_int_equal(REPLAY(&a, err, "replay", "--group", "workflow", "--topic", "t",
	                        "--by-duration", "1h", "--dry-run"),
	                 0);
	assert_string_equal(a.group, "workflow");
	assert_string_equal(a.topic, "t");
	assert_int_equal(a.kind, OPS_RESET_DURATION);
	assert_int_equal(a.duration_ms, 3600000);
	assert_true(a.dry_run);
	assert_false(a.wait);
	assert_int_equal(a.wait_timeout_ms, 60000);

	assert_int_equal(REPLAY(&a, err, "replay", "--topic=t", "--group=g", "--to-time",
	                        "2026-11-27T10:00:00Z", "--wait", "--wait-timeout", "30s",
	                        "--json"),
	                 0);
	assert_int_equal(a.kind, OPS_RESET_TIME);
	assert_int_equal(a.time_ms, 1795773600000LL);
	assert_true(a.wait && a.json);
	assert_int_equal(a.wait_timeout_ms, 30000);

	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-offset", "3:1200"), 0);
	assert_int_equal(a.kind, OPS_RESET_OFFSET);
	assert_int_equal(a.partition, 3);
	assert_int_equal(a.offset, 1200);

	assert_int_equal(REPLAY(&a, err, "replay", "--help"), 0);
	assert_true(a.help);
}

static void test_replay_args_bad(void **state)
{
	(void)state;
	ops_replay_args_t a;
	char err[256];
	struct {
		int rc;
		const char *msg;
	} r[] = {
	    {REPLAY(&a, err, "replay", "--topic", "t", "--to-earliest"), "--group G is required"},
	};
	assert_int_equal(r[0].rc, 1);
	assert_string_equal(err, r[0].msg);
	assert_int_equal(REPLAY(&a, err, "replay", "--group", "g", "--to-earliest"), 1);
	assert_string_equal(err, "--topic T is required");
	assert_int_equal(REPLAY(&a, err, "replay", "--group", "g", "--topic", "t"), 1);
	assert_non_null(strstr(err, "exactly one of --to-time"));
	assert_int_equal(REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-earliest",
	                        "--by-duration", "1h"),
	                 1);
	assert_non_null(strstr(err, "(got 2)"));
	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--by-duration", "an hour"),
	    1);
	assert_non_null(strstr(err, "'an hour' is not a duration"));
	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-time", "yesterday"), 1);
	assert_non_null(strstr(err, "'yesterday' is not an ISO-8601 time"));
	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-offset", "3"), 1);
	assert_non_null(strstr(err, "PARTITION:OFFSET"));
	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-earliest", "--bogus"),
	    1);
	assert_string_equal(err, "unknown option --bogus");
	assert_int_equal(
	    REPLAY(&a, err, "replay", "--group", "g", "--topic", "t", "--to-earliest", "extra"), 1);
	assert_string_equal(err, "unexpected argument 'extra'");
	assert_int_equal(REPLAY(&a, err, "replay", "--to-earliest", "--group"), 1);
	assert_string_equal(err, "--group needs a value");
}

static void test_dlq_args(void **state)
{
	(void)state;
	ops_dlq_args_t a;
	char err[256];
	assert_int_equal(DLQ(&a, err, "dlq", "list", "--topic", "x.dlq", "--filter-error", "size",
	                     "--limit", "10"),
	                 0);
	assert_string_equal(a.action, "list");
	assert_string_equal(a.topic, "x.dlq");
	assert_string_equal(a.filter, "size");
	assert_int_equal(a.limit, 10);
	assert_int_equal(a.batch, 100);
	assert_int_equal(DLQ(&a, err, "dlq", "--topic", "x.dlq", "redrive", "--batch", "20",
	                     "--rate", "0", "--json"),
	                 0);
	assert_string_equal(a.action, "redrive");
	assert_int_equal(a.limit, -1);
	assert_int_equal(a.batch, 20);
	assert_true(a.json);
	assert_int_equal(DLQ(&a, err, "dlq", "show", "--topic", "x.dlq", "--offset", "2:7"), 0);
	assert_true(a.has_offset);
	assert_int_equal(a.partition, 2);
	assert_int_equal(a.offset, 7);

	assert_int_equal(DLQ(&a, err, "dlq", "--topic", "x.dlq"), 1);
	assert_string_equal(err, "give an action: list, show or redrive");
	assert_int_equal(DLQ(&a, err, "dlq", "purge", "--topic", "x.dlq"), 1);
	assert_string_equal(err, "unknown action 'purge' (list, show or redrive)");
	assert_int_equal(DLQ(&a, err, "dlq", "list"), 1);
	assert_string_equal(err, "--topic T.dlq is required");
	assert_int_equal(DLQ(&a, err, "dlq", "list", "--topic", "x", "--limit", "0"), 1);
	assert_string_equal(err, "--limit must be a positive integer, got '0'");
	assert_int_equal(DLQ(&a, err, "dlq", "list", "--topic", "x", "--limit", "ten"), 1);
	assert_int_equal(DLQ(&a, err, "dlq", "redrive", "--topic", "x", "--offset", "1:2"), 1);
	assert_string_equal(err, "--offset is for show only");
	assert_int_equal(DLQ(&a, err, "dlq", "list", "show", "--topic", "x"), 1);
	assert_string_equal(err, "unexpected argument 'show'");
	assert_int_equal(DLQ(&a, err, "dlq", "redrive", "--topic", "x.dlq", "--dry-run"), 0);
	assert_true(a.dry_run);
	assert_int_equal(DLQ(&a, err, "dlq", "redrive", "--topic", "x.dlq"), 0);
	assert_false(a.dry_run);
	assert_int_equal(DLQ(&a, err, "dlq", "list", "--topic", "x.dlq", "--dry-run"), 1);
	assert_string_equal(err, "--dry-run is for redrive only (list and show change nothing)");
}

/* The redrive target: the DLQ's own source topic, both listed in scripts/topics.txt (embedded),
 * and nothing else, whatever the name looks like. */
static void test_redrive_target(void **state)
{
	(void)state;
	char target[256], err[1024];
	assert_true(ops_redrive_target("dronedelivery.package.commands.dlq", target, sizeof(target),
	                               err, sizeof(err)));
	assert_string_equal(target, "dronedelivery.package.commands");
	/* every dead-letter topic of the list redrives into its source, which is listed too */
	size_t dlqs = 0;
	for (size_t i = 0; i < pl_pipeline_topic_count; i++) {
		const char *t = pl_pipeline_topics[i];
		size_t n = strlen(t);
		if (n < 4 || strcmp(t + n - 4, ".dlq") != 0)
			continue;
		dlqs++;
		assert_true(ops_redrive_target(t, target, sizeof(target), err, sizeof(err)));
		assert_int_equal(strlen(target), n - 4);
		assert_memory_equal(target, t, n - 4);
	}
	assert_true(dlqs >= 7);
	static const char *const refused[] = {
	    "dronedelivery.package.commands",         /* not a DLQ: would redrive into .commands */
	    "dronedelivery.workflow.state.dlq",       /* source listed, the DLQ is not */
	    "ops.it.1234.src.dlq",                    /* not the pipeline's */
	    "__consumer_offsets.dlq",                 /* internal */
	    ".dlq",                                   /* no source at all */
	    "dlq",                                    /* */
	    "",                                       /* */
	    "dronedelivery.package.commands.dlq.dlq", /* */
	    "Dronedelivery.package.commands.dlq",     /* case matters to Kafka */
	    "dronedelivery.package.commands .dlq",    /* */
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		strcpy(target, "untouched");
		assert_false(
		    ops_redrive_target(refused[i], target, sizeof(target), err, sizeof(err)));
		assert_string_equal(target, "untouched");
		/* the sentence names the problem and the allowed topics */
		assert_non_null(strstr(err, "redrive writes only into the pipeline's own topics"));
		assert_non_null(strstr(err, "dronedelivery.package.commands.dlq"));
	}
	assert_false(ops_redrive_target("x", target, sizeof(target), err, sizeof(err)));
	assert_non_null(strstr(err, "x is not a dead-letter topic (*.dlq)"));
	assert_false(ops_redrive_target("a.b.dlq", target, sizeof(target), err, sizeof(err)));
	assert_non_null(strstr(err, "a.b.dlq is not a dead-letter topic of the pipeline"));
	/* hostile text in the name is escaped in the sentence */
	assert_false(
	    ops_redrive_target("\x1b[2J\xff.dlq", target, sizeof(target), err, sizeof(err)));
	assert_non_null(strstr(err, "\\x1b[2J\\xff.dlq is not"));
	/* a target buffer too small is a refusal, never a cut name */
	char small[8];
	assert_false(ops_redrive_target("dronedelivery.package.commands.dlq", small, sizeof(small),
	                                err, sizeof(err)));
}

static void test_dlq_filter_and_group(void **state)
{
	(void)state;
	assert_true(ops_dlq_selected(NULL, "x", "decode"));
	assert_true(ops_dlq_selected("size", "weight/size mismatch", "schema"));
	assert_true(ops_dlq_selected("decode", "bad magic", "decode"));
	assert_false(ops_dlq_selected("dec", "bad magic", "decode")); /* class: whole word */
	assert_false(ops_dlq_selected("size", NULL, NULL));
	char g[128];
	ops_dlq_group_name("a.dlq", NULL, g, sizeof(g));
	assert_string_equal(g, "dronepipe-redrive-a.dlq");
	ops_dlq_group_name("a.dlq", "bad size: 7/x", g, sizeof(g));
	assert_string_equal(g, "dronepipe-redrive-a.dlq-f-bad_size__7_x");
}

/* low, high, current, time_offset for 4 partitions */
static void parts4(ops_plan_part_t p[4])
{
	const int64_t v[4][4] = {
	    {0, 100, 80, 40}, {10, 50, 50, -1}, {0, 0, -1, -1}, {5, 30, -1, 20}};
	for (int i = 0; i < 4; i++)
		p[i] = (ops_plan_part_t){.partition = i,
		                         .low = v[i][0],
		                         .high = v[i][1],
		                         .current = v[i][2],
		                         .time_offset = v[i][3]};
}

static void test_plan_earliest(void **state)
{
	(void)state;
	ops_replay_args_t a = {.kind = OPS_RESET_EARLIEST};
	ops_plan_part_t p[4];
	ops_plan_totals_t t;
	parts4(p);
	ops_plan_compute(&a, p, 4, &t);
	assert_int_equal(p[0].target, 0);
	assert_int_equal(p[0].reprocess, 80);
	assert_int_equal(p[1].target, 10);
	assert_int_equal(p[1].reprocess, 40);
	assert_true(p[2].changes); /* no commit yet: written explicitly */
	assert_int_equal(p[2].reprocess, 0);
	assert_int_equal(p[3].target, 5); /* no commit counts as positioned at low */
	assert_int_equal(p[3].reprocess, 0);
	assert_int_equal(t.reprocess, 120);
	assert_int_equal(t.skip, 0);
	assert_int_equal(t.changed, 4);
}

static void test_plan_time(void **state)
{
	(void)state;
	ops_replay_args_t a = {.kind = OPS_RESET_DURATION, .duration_ms = 3600000};
	assert_int_equal(ops_plan_target_time(&a, 10000000), 10000000 - 3600000);
	ops_plan_part_t p[4];
	ops_plan_totals_t t;
	parts4(p);
	ops_plan_compute(&a, p, 4, &t);
	assert_int_equal(p[0].target, 40);
	assert_int_equal(p[0].reprocess, 40);
	assert_int_equal(p[1].target, 50); /* nothing after the time: the end */
	assert_false(p[1].changes);        /* already there */
	assert_int_equal(p[3].target, 20);
	assert_int_equal(p[3].skip, 15); /* from low 5 forward to 20 */
	assert_int_equal(t.reprocess, 40);
	assert_int_equal(t.skip, 15);
	ops_replay_args_t e = {.kind = OPS_RESET_EARLIEST};
	assert_int_equal(ops_plan_target_time(&e, 5), -1);
}

static void test_plan_offset(void **state)
{
	(void)state;
	ops_replay_args_t a = {.kind = OPS_RESET_OFFSET, .partition = 0, .offset = 90};
	ops_plan_part_t p[4];
	ops_plan_totals_t t;
	parts4(p);
	ops_plan_compute(&a, p, 4, &t);
	assert_int_equal(p[0].target, 90);
	assert_int_equal(p[0].skip, 10);
	assert_int_equal(p[0].reprocess, 0);
	for (int i = 1; i < 4; i++) {
		assert_false(p[i].changes);
		assert_int_equal(p[i].target, p[i].current);
	}
	assert_int_equal(t.changed, 1);
	/* clamped into [low, high] */
	a.offset = 5000;
	parts4(p);
	ops_plan_compute(&a, p, 4, &t);
	assert_int_equal(p[0].target, 100);
	a.partition = 1;
	a.offset = 0;
	parts4(p);
	ops_plan_compute(&a, p, 4, &t);
	assert_int_equal(p[1].target, 10);
	assert_int_equal(p[1].reprocess, 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_replay_args_good),
	    cmocka_unit_test(test_replay_args_bad),
	    cmocka_unit_test(test_dlq_args),
	    cmocka_unit_test(test_dlq_filter_and_group),
	    cmocka_unit_test(test_redrive_target),
	    cmocka_unit_test(test_plan_earliest),
	    cmocka_unit_test(test_plan_time),
	    cmocka_unit_test(test_plan_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
