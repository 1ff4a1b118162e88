/* topics.c — `dronepipe topics`: topics with their partitions and end offsets, and per consumer
 * group its state, members, committed offsets and lag in records and in seconds (now minus the
 * timestamp of the oldest record the group has not consumed yet). Group names, client ids and
 * hosts come from whoever joined a group: escaped for the terminal, valid in JSON (escape.h). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "escape.h"
#include "mem.h"
#include "ops.h"

static const char topics_usage[] =
    "usage: dronepipe topics [TOPIC...] [--group G] [--partitions] [--json]\n"
    "Lists topics (all but internal ones, or the given ones) with partitions and end offsets,\n"
    "then every consumer group that committed offsets on them: state, members, committed\n"
    "offsets, lag in records and lag in seconds (age of the oldest unconsumed record).\n"
    "  --group G      only this consumer group\n"
    "  --partitions   one line per partition instead of per topic\n"
    "  --json         one JSON document\n"
    "Exit: 0 ok, 1 bad arguments or unknown topic, 2 Kafka unreachable.\n";

typedef struct topic_info {
	char *name;
	int nparts;
	int64_t *low, *high;
} topic_info_t;

static topic_info_t *find_topic(topic_info_t *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

/* Lag of one group on one topic, per partition, into a JSON array; sums into lag and lag_s. */
static json_t *group_topic_lag(pl_admin_t *admin, const topic_info_t *t, const pl_admin_offset_t *o,
                               size_t no, int64_t now, int64_t *lag, double *lag_s,
                               int64_t *committed_sum)
{
	json_t *arr = json_array();
	int32_t *parts = pl_calloc((size_t)t->nparts + 1, sizeof(int32_t));
	int64_t *offs = pl_calloc((size_t)t->nparts + 1, sizeof(int64_t));
	int64_t *ts = pl_calloc((size_t)t->nparts + 1, sizeof(int64_t));
	int64_t *committed = pl_calloc((size_t)t->nparts + 1, sizeof(int64_t));
	size_t k = 0;
	for (int p = 0; p < t->nparts; p++)
		committed[p] = -1;
	for (size_t i = 0; i < no; i++)
		if (strcmp(o[i].topic, t->name) == 0 && o[i].partition < t->nparts)
			committed[o[i].partition] = o[i].offset;
	for (int p = 0; p < t->nparts; p++) {
		int64_t from = committed[p] >= t->low[p] ? committed[p] : t->low[p];
		if (t->high[p] > from) {
			parts[k] = p;
			offs[k++] = from;
		}
	}
	char err[256];
	pl_admin_record_timestamps(admin, t->name, parts, offs, k, ts, err, sizeof(err));
	*lag = 0;
	*lag_s = 0;
	*committed_sum = 0;
	for (int p = 0; p < t->nparts; p++) {
		int64_t from = committed[p] >= t->low[p] ? committed[p] : t->low[p];
		int64_t l = t->high[p] > from ? t->high[p] - from : 0;
		double secs = 0;
		for (size_t i = 0; i < k; i++)
			if (parts[i] == p && ts[i] >= 0)
				secs = (double)(now - ts[i]) / 1000.0;
		if (secs < 0)
			secs = 0;
		secs = (double)(int64_t)(secs * 10 + 0.5) / 10; /* 0.1 s is enough */
		*lag += l;
		*committed_sum += committed[p] > 0 ? committed[p] : 0;
		if (secs > *lag_s)
			*lag_s = secs;
		json_array_append_new(arr, json_pack("{s:i,s:I,s:I,s:I,s:f}", "partition", p,
		                                     "committed", (json_int_t)committed[p], "end",
		                                     (json_int_t)t->high[p], "lag", (json_int_t)l,
		                                     "lag_seconds", secs));
	}
	pl_free(parts);
	pl_free(offs);
	pl_free(ts);
	pl_free(committed);
	return arr;
}

int ops_topics(ops_t *ops, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"partitions", no_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *only_group = NULL;
	bool per_partition = false, json = ops->json;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			only_group = optarg;
			break;
		case 'p':
			per_partition = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(topics_usage, stdout);
			return 0;
		default:
			fprintf(stderr, "dronepipe topics: %s %s\n%s",
			        c == ':' ? "missing value for" : "unknown option", argv[optind - 1],
			        topics_usage);
			return 1;
		}
	}
	char err[512];
	int rc = 2;
	pl_admin_t *admin = NULL;
	pl_admin_topic_t *all = NULL;
	size_t nall = 0, nt = 0, ngroups = 0;
	char **groups = NULL;
	topic_info_t *t = NULL;
	json_t *doc = json_object(), *jtopics = json_array(), *jgroups = json_array();
	if (pl_admin_new(ops->cfg, 10000, &admin, err, sizeof(err)) != PL_OK ||
	    pl_admin_topics(admin, &all, &nall, err, sizeof(err)) != PL_OK)
		goto out;
	t = pl_calloc(nall + (size_t)argc + 1, sizeof(*t));
	for (size_t i = 0; i < nall; i++) {
		bool wanted = optind >= argc;
		for (int a = optind; a < argc && !wanted; a++)
			wanted = strcmp(argv[a], all[i].name) == 0;
		if (wanted)
			t[nt++] = (topic_info_t){pl_strdup(all[i].name), all[i].partition_count};
	}
	for (int a = optind; a < argc; a++)
		if (!find_topic(t, nt, argv[a])) {
			snprintf(err, sizeof(err), "topic %s does not exist", argv[a]);
			rc = 1;
			goto out;
		}
	if (!json)
		printf("%-40s %5s %12s  %s\n", "TOPIC", "PARTS", "RECORDS", "END OFFSETS");
	for (size_t i = 0; i < nt; i++) {
		t[i].low = pl_calloc((size_t)t[i].nparts + 1, sizeof(int64_t));
		t[i].high = pl_calloc((size_t)t[i].nparts + 1, sizeof(int64_t));
		json_t *jp = json_array();
		int64_t records = 0;
		char ends[512] = "";
		size_t el = 0;
		for (int p = 0; p < t[i].nparts; p++) {
			if (pl_admin_watermarks(admin, t[i].name, p, &t[i].low[p], &t[i].high[p],
			                        err, sizeof(err)) != PL_OK) {
				json_decref(jp);
				goto out;
			}
			records += t[i].high[p] - t[i].low[p];
			if (el < sizeof(ends) - 32)
				el += (size_t)snprintf(ends + el, sizeof(ends) - el, "%s%lld",
				                       p ? " " : "", (long long)t[i].high[p]);
			json_array_append_new(jp, json_pack("{s:i,s:I,s:I}", "partition", p,
			                                    "start", (json_int_t)t[i].low[p], "end",
			                                    (json_int_t)t[i].high[p]));
		}
		json_array_append_new(jtopics, json_pack("{s:s,s:i,s:I,s:o}", "topic", t[i].name,
		                                         "partition_count", t[i].nparts, "records",
		                                         (json_int_t)records, "partitions", jp));
		if (!json)
			printf("%-40s %5d %12lld  %s\n", t[i].name, t[i].nparts, (long long)records,
			       ends);
	}
	if (only_group) {
		groups = pl_calloc(2, sizeof(char *));
		groups[0] = pl_strdup(only_group);
		ngroups = 1;
	} else if (pl_admin_group_ids(admin, &groups, &ngroups, err, sizeof(err)) != PL_OK) {
		goto out;
	}
	bool header = false;
	int64_t now = pl_now_ms();
	for (size_t gi = 0; gi < ngroups; gi++) {
		pl_admin_group_t g = {0};
		pl_admin_offset_t *o = NULL;
		size_t no = 0;
		if (pl_admin_group_describe(admin, groups[gi], &g, err, sizeof(err)) != PL_OK ||
		    pl_admin_group_offsets(admin, groups[gi], NULL, 0, &o, &no, err, sizeof(err)) !=
		        PL_OK) {
			pl_admin_group_clear(&g);
			goto out;
		}
		json_t *jgt = json_array();
		char *gname = ops_escape_str(g.group_id, 200),
		     *gstate = ops_escape_str(g.state, 40);
		for (size_t i = 0; i < nt; i++) {
			bool has = false;
			for (size_t k = 0; k < no && !has; k++)
				has = strcmp(o[k].topic, t[i].name) == 0;
			if (!has)
				continue;
			int64_t lag, committed;
			double lag_s;
			json_t *jp =
			    group_topic_lag(admin, &t[i], o, no, now, &lag, &lag_s, &committed);
			if (!json && !header) {
				printf("\n%-28s %-40s %-11s %7s %10s %10s %9s\n", "GROUP", "TOPIC",
				       "STATE", "MEMBERS", "COMMITTED", "LAG", "LAG(s)");
				header = true;
			}
			if (!json && !per_partition)
				printf("%-28s %-40s %-11s %7zu %10lld %10lld %9.1f\n", gname,
				       t[i].name, gstate, g.member_count, (long long)committed,
				       (long long)lag, lag_s);
			for (size_t k = 0; !json && per_partition && k < json_array_size(jp); k++) {
				json_t *r = json_array_get(jp, k);
				char name[64];
				snprintf(name, sizeof(name), "%s [%d]", t[i].name,
				         (int)json_integer_value(json_object_get(r, "partition")));
				printf(
				    "%-28s %-40s %-11s %7zu %10lld %10lld %9.1f\n", gname, name,
				    gstate, g.member_count,
				    (long long)json_integer_value(json_object_get(r, "committed")),
				    (long long)json_integer_value(json_object_get(r, "lag")),
				    json_real_value(json_object_get(r, "lag_seconds")));
			}
			json_array_append_new(jgt,
			                      json_pack("{s:s,s:I,s:f,s:o}", "topic", t[i].name,
			                                "lag", (json_int_t)lag, "lag_seconds",
			                                lag_s, "partitions", jp));
		}
		pl_free(gname);
		pl_free(gstate);
		json_t *jm = json_array();
		for (size_t m = 0; m < g.member_count; m++)
			json_array_append_new(jm, json_pack("{s:o,s:o,s:o}", "client_id",
			                                    ops_json_str(g.members[m].client_id),
			                                    "host", ops_json_str(g.members[m].host),
			                                    "member_id",
			                                    ops_json_str(g.members[m].member_id)));
		if (json_array_size(jgt) > 0 || only_group)
			json_array_append_new(jgroups, json_pack("{s:o,s:o,s:o,s:o}", "group",
			                                         ops_json_str(g.group_id), "state",
			                                         ops_json_str(g.state), "members",
			                                         jm, "topics", jgt));
		else {
			json_decref(jm);
			json_decref(jgt);
		}
		pl_admin_offsets_free(o, no);
		pl_admin_group_clear(&g);
	}
	if (json) {
		json_object_set(doc, "topics", jtopics);
		json_object_set(doc, "groups", jgroups);
		ops_json_print(stdout, doc);
	}
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "dronepipe topics: %s\n", err);
	json_decref(doc);
	json_decref(jtopics);
	json_decref(jgroups);
	for (size_t i = 0; t && i < nt; i++) {
		pl_free(t[i].name);
		pl_free(t[i].low);
		pl_free(t[i].high);
	}
	pl_free(t);
	pl_admin_group_ids_free(groups, ngroups);
	pl_admin_topics_free(all, nall);
	pl_admin_destroy(admin);
	return rc;
}
