/* replay.c — `dronepipe replay`: resets a consumer group's committed offsets on one topic to a
 * time, a duration ago, an offset or the beginning. Prints the plan (per partition: current ->
 * new, records to reprocess or skip) and applies it unless --dry-run. Refuses while the group has
 * active members (the broker would refuse too), naming them; --wait waits for the group to empty.
 * The plan itself is computed by plan.c (pure). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "escape.h"
#include "mem.h"
#include "ops.h"
#include "plan.h"
#include "progress.h"
#include "timefmt.h"

static const char replay_usage[] =
    "usage: dronepipe replay --group G --topic T RESET [--dry-run] [--wait [--wait-timeout D]]\n"
    "                        [--json]\n"
    "Resets the committed offsets of consumer group G on topic T, so its members consume again\n"
    "from there (or skip ahead). Prints the plan per partition: current -> new offset and the\n"
    "records that will be reprocessed (moving back) or skipped (moving forward).\n"
    "RESET is exactly one of:\n"
    "  --to-time T        first record at/after T (ISO-8601, e.g. 2026-11-27T10:00:00Z, or epoch\n"
    "                     ms); partitions without such a record go to their end\n"
    "  --by-duration D    first record at/after now - D (90s, 15m, 1h, 1h30m, 2d)\n"
    "  --to-offset P:O    partition P to offset O (clamped to the partition's range); the other\n"
    "                     partitions are left alone\n"
    "  --to-earliest      every partition to its first retained record\n"
    "options:\n"
    "  --dry-run          print the plan, change nothing\n"
    "  --wait             if the group has active members, wait until it is empty\n"
    "  --wait-timeout D   give up waiting after D (default 60s)\n"
    "  --json             the plan as one JSON document\n"
    "Exit: 0 done (or dry run), 1 bad arguments or unknown topic, 2 Kafka unreachable or failed,\n"
    "3 refused: the group has active members (stop them, or --wait).\n";

#define MEMBER_TEXT_MAX OPS_MEMBER_TEXT_MAX

char *ops_members_text(const pl_admin_group_t *g)
{
	ops_buf_t b = {0};
	for (size_t i = 0; i < g->member_count; i++) {
		const pl_admin_member_t *m = &g->members[i];
		if (i)
			ops_buf_append(&b, ", ", 2);
		ops_escape_append(&b, m->client_id, m->client_id ? strlen(m->client_id) : 0,
		                  MEMBER_TEXT_MAX);
		ops_buf_append(&b, " (host ", 7);
		ops_escape_append(&b, m->host, m->host ? strlen(m->host) : 0, MEMBER_TEXT_MAX);
		ops_buf_append(&b, ", member ", 9);
		ops_escape_append(&b, m->member_id, m->member_id ? strlen(m->member_id) : 0,
		                  MEMBER_TEXT_MAX);
		ops_buf_append(&b, ")", 1);
	}
	return ops_buf_take(&b);
}

static json_t *members_json(const pl_admin_group_t *g)
{
	json_t *a = json_array();
	for (size_t i = 0; i < g->member_count; i++)
		json_array_append_new(a, json_pack("{s:o,s:o,s:o}", "client_id",
		                                   ops_json_str(g->members[i].client_id), "host",
		                                   ops_json_str(g->members[i].host), "member_id",
		                                   ops_json_str(g->members[i].member_id)));
	return a;
}

static const char *reset_name(const ops_replay_args_t *a, char *buf, size_t size)
{
	char when[40];
	switch (a->kind) {
	case OPS_RESET_TIME:
		pl_time_format(a->time_ms, when);
		snprintf(buf, size, "to time %s", when);
		break;
	case OPS_RESET_DURATION:
		ops_format_duration(when, sizeof(when), a->duration_ms);
		snprintf(buf, size, "by duration %s (from now)", when);
		break;
	case OPS_RESET_OFFSET:
		snprintf(buf, size, "to offset %d:%lld", a->partition, (long long)a->offset);
		break;
	default:
		snprintf(buf, size, "to earliest");
	}
	return buf;
}

static void print_plan(const ops_replay_args_t *a, const ops_plan_part_t *parts, int n,
                       const ops_plan_totals_t *t, const pl_admin_group_t *g, bool applied)
{
	char how[80];
	reset_name(a, how, sizeof(how));
	if (a->json) {
		json_t *doc = json_pack(
		    "{s:o,s:o,s:s,s:b,s:b,s:o,s:o}", "group", ops_json_str(a->group), "topic",
		    ops_json_str(a->topic), "reset", how, "dry_run", a->dry_run, "applied", applied,
		    "group_state", ops_json_str(g->state), "members", members_json(g));
		json_t *arr = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(
			    arr, json_pack("{s:i,s:I,s:I,s:I,s:I,s:b,s:I,s:I}", "partition",
			                   parts[i].partition, "start", (json_int_t)parts[i].low,
			                   "end", (json_int_t)parts[i].high, "current",
			                   (json_int_t)parts[i].current, "new",
			                   (json_int_t)parts[i].target, "changes", parts[i].changes,
			                   "reprocess", (json_int_t)parts[i].reprocess, "skip",
			                   (json_int_t)parts[i].skip));
		json_object_set_new(doc, "partitions", arr);
		json_object_set_new(doc, "totals",
		                    json_pack("{s:i,s:I,s:I}", "partitions_changed", t->changed,
		                              "reprocess", (json_int_t)t->reprocess, "skip",
		                              (json_int_t)t->skip));
		ops_json_print(stdout, doc);
		json_decref(doc);
		return;
	}
	char *group = ops_escape_str(a->group, MEMBER_TEXT_MAX);
	printf("replay plan: group %s, topic %s, %s\n", group, a->topic, how);
	pl_free(group);
	printf("%-9s %12s    %-12s %12s %12s %10s\n", "PARTITION", "CURRENT", "NEW", "END",
	       "REPROCESS", "SKIP");
	for (int i = 0; i < n; i++) {
		char cur[24], tgt[24];
		snprintf(cur, sizeof(cur), parts[i].current < 0 ? "-" : "%lld",
		         (long long)parts[i].current);
		snprintf(tgt, sizeof(tgt), parts[i].target < 0 ? "-" : "%lld",
		         (long long)parts[i].target);
		printf("%-9d %12s -> %-12s %12lld %12lld %10lld%s\n", parts[i].partition, cur, tgt,
		       (long long)parts[i].high, (long long)parts[i].reprocess,
		       (long long)parts[i].skip, parts[i].changes ? "" : "  (unchanged)");
	}
	printf("total: %d partition(s) change, %lld record(s) to reprocess, %lld skipped\n",
	       t->changed, (long long)t->reprocess, (long long)t->skip);
}

/* 0 when the group is (or became) empty; 3 when it has members, with *refusal the whole
 * sentence naming them (caller frees); 2 + err when the group cannot be described. */
static int wait_empty(pl_admin_t *admin, const ops_replay_args_t *a, pl_admin_group_t *g, char *err,
                      size_t err_size, char **refusal)
{
	char *group = ops_escape_str(a->group, MEMBER_TEXT_MAX);
	int64_t deadline = pl_now_ms() + a->wait_timeout_ms;
	bool told = false;
	for (;;) {
		pl_admin_group_clear(g);
		if (pl_admin_group_describe(admin, a->group, g, err, err_size) != PL_OK) {
			pl_free(group);
			return 2;
		}
		if (g->member_count == 0 || a->dry_run) {
			pl_free(group);
			return 0;
		}
		if (!a->wait || pl_now_ms() >= deadline)
			break;
		if (!told && !a->json) {
			char *m = ops_members_text(g);
			fprintf(stderr,
			        "dronepipe replay: waiting up to %llds for group %s to empty "
			        "(members: %s)\n",
			        (long long)(a->wait_timeout_ms / 1000), group, m);
			pl_free(m);
			told = true;
		}
		struct timespec ts = {0, 500 * 1000000};
		nanosleep(&ts, NULL);
	}
	char *m = ops_members_text(g);
	*refusal =
	    pl_asprintf("refusing to reset group %s: it has %zu active member(s)%s: %s. Stop "
	                "them first, or pass --wait to wait until the group is empty",
	                group, g->member_count, a->wait ? " after waiting" : "", m);
	pl_free(m);
	pl_free(group);
	return 3;
}

int ops_replay(ops_t *ops, int argc, char **argv)
{
	ops_replay_args_t a;
	char err[1024];
	if (ops_replay_parse_args(argc, argv, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "dronepipe replay: %s\n%s", err, replay_usage);
		return 1;
	}
	if (a.help) {
		fputs(replay_usage, stdout);
		return 0;
	}
	a.json = a.json || ops->json;
	pl_admin_t *admin = NULL;
	pl_admin_group_t g = {0};
	pl_admin_offset_t *committed = NULL;
	size_t ncommitted = 0;
	ops_plan_part_t *parts = NULL;
	int64_t *times = NULL, *targets = NULL;
	char *refusal = NULL;
	int rc = 2, n = 0;
	pl_err_t e = pl_admin_new(ops->cfg, 10000, &admin, err, sizeof(err));
	if (e != PL_OK)
		goto out;
	e = pl_admin_partition_count(admin, a.topic, &n, err, sizeof(err));
	if (e != PL_OK) {
		rc = e == PL_ERR_NOT_FOUND ? 1 : 2;
		goto out;
	}
	if (a.kind == OPS_RESET_OFFSET && a.partition >= n) {
		snprintf(err, sizeof(err), "--to-offset: topic %s has partitions 0..%d", a.topic,
		         n - 1);
		rc = 1;
		goto out;
	}
	rc = wait_empty(admin, &a, &g, err, sizeof(err), &refusal);
	if (rc != 0)
		goto out;
	rc = 2;
	if (pl_admin_group_offsets(admin, a.group, a.topic, n, &committed, &ncommitted, err,
	                           sizeof(err)) != PL_OK)
		goto out;
	parts = pl_calloc((size_t)n, sizeof(*parts));
	times = pl_calloc((size_t)n, sizeof(int64_t));
	int64_t when = ops_plan_target_time(&a, pl_now_ms());
	if (when >= 0 &&
	    pl_admin_offsets_for_time(admin, a.topic, n, when, times, err, sizeof(err)) != PL_OK)
		goto out;
	for (int p = 0; p < n; p++) {
		parts[p].partition = p;
		parts[p].current = (size_t)p < ncommitted ? committed[p].offset : -1;
		parts[p].time_offset = when >= 0 ? times[p] : -1;
		if (pl_admin_watermarks(admin, a.topic, p, &parts[p].low, &parts[p].high, err,
		                        sizeof(err)) != PL_OK)
			goto out;
	}
	ops_plan_totals_t totals;
	ops_plan_compute(&a, parts, (size_t)n, &totals);
	bool applied = false;
	if (!a.dry_run && totals.changed > 0) {
		targets = pl_calloc((size_t)n, sizeof(int64_t));
		for (int p = 0; p < n; p++)
			targets[p] = parts[p].changes ? parts[p].target : -1;
		e = pl_admin_group_reset(admin, a.group, a.topic, n, targets, err, sizeof(err));
		if (e != PL_OK) {
			rc = e == PL_ERR_REJECTED ? 3 : 2;
			goto out;
		}
		applied = true;
	}
	print_plan(&a, parts, n, &totals, &g, applied);
	if (!a.json) {
		if (a.dry_run && g.member_count > 0) {
			char *m = ops_members_text(&g);
			char *group = ops_escape_str(a.group, MEMBER_TEXT_MAX);
			printf("note: group %s has %zu active member(s) (%s): applying would be "
			       "refused\n",
			       group, g.member_count, m);
			pl_free(group);
			pl_free(m);
		}
		if (a.dry_run)
			printf("dry run: nothing changed (run without --dry-run to apply)\n");
		else if (applied) {
			char *group = ops_escape_str(a.group, MEMBER_TEXT_MAX);
			printf("applied: group %s now starts %s at the new offsets\n", group,
			       a.topic);
			pl_free(group);
		} else
			printf("nothing to change\n");
	}
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "dronepipe replay: %s\n", refusal ? refusal : err);
	pl_free(refusal);
	pl_free(targets);
	pl_free(times);
	pl_free(parts);
	pl_admin_offsets_free(committed, ncommitted);
	pl_admin_group_clear(&g);
	pl_admin_destroy(admin);
	return rc;
}
