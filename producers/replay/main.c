/* main.c — `dronepipe`, the operator CLI: wiring only. Reads the common DP_* config (brokers)
 * and dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ops.h"

static const char usage[] =
    "usage: dronepipe [--brokers HOST:PORT] [--json] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  tail TOPIC [--from-beginning|--from-time T|--from-offset P:O] [--key K] [--limit N]\n"
    "             [--timeout-ms MS] [--follow]\n"
    "      print records decoded from Avro as JSON lines (undecodable ones are marked)\n"
    "  topics [TOPIC...] [--group G] [--partitions]\n"
    "      topics, partitions, end offsets; per consumer group committed offsets and lag\n"
    "      (records and seconds)\n"
    "  replay --group G --topic T (--to-time T|--by-duration D|--to-offset P:O|--to-earliest)\n"
    "         [--dry-run] [--wait [--wait-timeout D]]\n"
    "      reset a consumer group's committed offsets; prints the plan, applies it unless\n"
    "      --dry-run; refuses while the group has members (names them) unless --wait\n"
    "  dlq list|show|redrive --topic T.dlq [--filter-error E] [--limit N] [--dry-run]\n"
    "      dead-lettered records with their reasons; redrive produces them again to T, the\n"
    "      DLQ's own topic of the pipeline, at most once per record (see `dronepipe dlq --help`)\n"
    "\n"
    "Every command takes --help and --json (JSON output for scripts). Exit status: 0 ok,\n"
    "1 bad arguments, 2 Kafka unreachable or a runtime failure, 3 replay refused.\n"
    "\n"
    "Environment: DP_KAFKA_BROKERS (default 127.0.0.1:9092), DP_KAFKA_PROP_<name>.\n"
    "Run `dronepipe COMMAND --help` for a command's options.\n";

int main(int argc, char **argv)
{
	int i = 1;
	const char *brokers = NULL;
	bool json = false;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
			i++;
			continue;
		}
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
			brokers = argv[i + 1];
			i += 2;
			continue;
		}
		fprintf(stderr, "dronepipe: unknown option %s\n%s", argv[i], usage);
		return 1;
	}
	if (i >= argc) {
		fprintf(stderr, "dronepipe: no command given\n%s", usage);
		return 1;
	}
	if (brokers)
		setenv("DP_KAFKA_BROKERS", brokers, 1);
	/* Library logs go to stderr so stdout stays clean for records. */
	pl_log_init("ops", PL_LOG_ERROR);
	pl_log_set_fd(2);
	const pl_cfg_opt_t *const tables[] = {pl_cfg_common, NULL};
	int code = 0;
	char *noargs[] = {argv[0], NULL};
	ops_t ops = {.json = json};
	ops.cfg = pl_cfg_load("dronepipe", tables, 1, noargs, NULL, stderr, &code);
	if (!ops.cfg)
		return code ? code : 1;
	char err[512];
	ops.registry = pl_avro_registry_embedded(err, sizeof(err));
	if (!ops.registry) {
		fprintf(stderr, "dronepipe: %s\n", err);
		pl_cfg_destroy(ops.cfg);
		return 2;
	}
	int rc;
	const char *cmd = argv[i];
	if (strcmp(cmd, "tail") == 0) {
		rc = ops_tail(&ops, argc - i, argv + i);
	} else if (strcmp(cmd, "topics") == 0) {
		rc = ops_topics(&ops, argc - i, argv + i);
	} else if (strcmp(cmd, "replay") == 0) {
		rc = ops_replay(&ops, argc - i, argv + i);
	} else if (strcmp(cmd, "dlq") == 0) {
		rc = ops_dlq(&ops, argc - i, argv + i);
	} else {
		fprintf(stderr, "dronepipe: unknown command '%s'\n%s", cmd, usage);
		rc = 1;
	}
	pl_avro_registry_destroy(ops.registry);
	pl_cfg_destroy(ops.cfg);
	return rc;
}
