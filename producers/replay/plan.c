/* plan.c — replay argument parsing and the reset plan (plan.h): pure functions. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "plan.h"

bool ops_parse_duration(const char *text, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
	             {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
	const char *s = text;
	int64_t total = 0;
	if (!s || !*s)
		return false;
	while (*s) {
		if (*s < '0' || *s > '9')
			return false;
		char *end;
		long long n = strtoll(s, &end, 10);
		if (n < 0 || n > 1000000000LL)
			return false;
		int64_t unit = 0;
		size_t ulen = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);
			if (strncmp(end, units[i].unit, l) == 0 && l > ulen) {
				unit = units[i].ms;
				ulen = l;
			}
		}
		if (!ulen) {
			if (*end || s != text) /* a bare number only as the whole text */
				return false;
			unit = 1000;
		}
		if (n > (INT64_MAX - total) / unit)
			return false;
		total += n * unit;
		s = end + ulen;
	}
	if (total <= 0)
		return false;
	*ms = total;
	return true;
}

int ops_replay_parse_args(int argc, char **argv, ops_replay_args_t *a, char *err, size_t err_size)
{
	static const struct option longopts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"topic", required_argument, NULL, 't'},
	    {"to-time", required_argument, NULL, 'T'},
	    {"by-duration", required_argument, NULL, 'D'},
	    {"to-offset", required_argument, NULL, 'O'},
	    {"to-earliest", no_argument, NULL, 'E'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"wait", no_argument, NULL, 'w'},
	    {"wait-timeout", required_argument, NULL, 'W'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->wait_timeout_ms = 60000;
	int resets = 0, c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			a->group = optarg;
			break;
		case 't':
			a->topic = optarg;
			break;
		case 'T':
			resets++;
			a->kind = OPS_RESET_TIME;
			if (!ops_parse_time(optarg, &a->time_ms)) {
				snprintf(err, err_size,
				         "--to-time '%s' is not an ISO-8601 time "
				         "(2026-11-27T10:00:00Z) or epoch milliseconds",
				         optarg);
				return 1;
			}
			break;
		case 'D':
			resets++;
			a->kind = OPS_RESET_DURATION;
			if (!ops_parse_duration(optarg, &a->duration_ms)) {
				snprintf(err, err_size,
				         "--by-duration '%s' is not a duration such as 90s, 15m, "
				         "1h, 1h30m, 2d",
				         optarg);
				return 1;
			}
			break;
		case 'O':
			resets++;
			a->kind = OPS_RESET_OFFSET;
			if (!ops_parse_partition_offset(optarg, &a->partition, &a->offset)) {
				snprintf(err, err_size,
				         "--to-offset '%s' must be PARTITION:OFFSET, e.g. 3:1200",
				         optarg);
				return 1;
			}
			break;
		case 'E':
			resets++;
			a->kind = OPS_RESET_EARLIEST;
			break;
		case 'n':
			a->dry_run = true;
			break;
		case 'w':
			a->wait = true;
			break;
		case 'W':
			if (!ops_parse_duration(optarg, &a->wait_timeout_ms)) {
				snprintf(err, err_size,
				         "--wait-timeout '%s' is not a duration (e.g. "
				         "30s, 5m)",
				         optarg);
				return 1;
			}
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			a->help = true;
			return 0;
		case ':':
			snprintf(err, err_size, "%s needs a value", argv[optind - 1]);
			return 1;
		default:
			snprintf(err, err_size, "unknown option %s", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		snprintf(err, err_size, "unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (!a->group || !*a->group) {
		snprintf(err, err_size, "--group G is required");
		return 1;
	}
	if (!a->topic || !*a->topic) {
		snprintf(err, err_size, "--topic T is required");
		return 1;
	}
	if (resets != 1) {
		snprintf(err, err_size,
		         "give exactly one of --to-time, --by-duration, --to-offset, --to-earliest"
		         " (got %d)",
		         resets);
		return 1;
	}
	return 0;
}

int64_t ops_plan_target_time(const ops_replay_args_t *a, int64_t now_ms)
{
	if (a->kind == OPS_RESET_TIME)
		return a->time_ms;
	if (a->kind == OPS_RESET_DURATION)
		return now_ms - a->duration_ms;
	return -1;
}

void ops_plan_compute(const ops_replay_args_t *a, ops_plan_part_t *parts, size_t count,
                      ops_plan_totals_t *totals)
{
	memset(totals, 0, sizeof(*totals));
	for (size_t i = 0; i < count; i++) {
		ops_plan_part_t *p = &parts[i];
		int64_t target = p->current;
		p->changes = true;
		switch (a->kind) {
		case OPS_RESET_EARLIEST:
			target = p->low;
			break;
		case OPS_RESET_TIME:
		case OPS_RESET_DURATION:
			target = p->time_offset >= 0 ? p->time_offset : p->high;
			break;
		case OPS_RESET_OFFSET:
			if (p->partition == a->partition)
				target = a->offset;
			else
				p->changes = false;
			break;
		case OPS_RESET_NONE:
			p->changes = false;
			break;
		}
		if (p->changes) {
			if (target < p->low)
				target = p->low;
			if (target > p->high)
				target = p->high;
		}
		int64_t from = p->current >= 0 ? p->current : p->low;
		if (from > p->high)
			from = p->high;
		p->target = p->changes ? target : p->current;
		p->reprocess = p->changes && target < from ? from - target : 0;
		p->skip = p->changes && target > from ? target - from : 0;
		if (p->changes && p->current == target)
			p->changes = false; /* nothing to write */
		totals->reprocess += p->reprocess;
		totals->skip += p->skip;
		totals->changed += p->changes;
	}
}
