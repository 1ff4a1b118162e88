/* seed.c — grows the MongoDB-API stores for scenario 7 of `make bench` (cost of growth).
 *
 * Adds finished deliveries FROM..TO-1 to the stores of dronepipe-package and
 * dronepipe-scheduler, as those services leave a completed delivery: one package document
 * (packages.packages) and, in dronescheduler, one completed assignment, its released claim, its
 * holds slot and its release record (consumers/scheduler/fleet.h). Drone ids are "seed-<n>", so a
 * seeded claim never takes a generation of the real fleet (drone-0001..). Documents go in with
 * unordered bulk inserts of 1,000; an id already there is skipped (re-running is harmless).
 * Delivery tracking (Redis) is grown by bench/run.sh through the pipeline itself
 * (bench-produce ... lifecycle, applied by dronepipe-delivery).
 *
 * Usage: bench-seed MONGO_URI FROM TO
 * Prints one JSON line: deliveries, documents, seconds, documents_per_s. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 1000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct sink {
	mongoc_collection_t *coll;
	mongoc_bulk_operation_t *bulk;
	size_t queued;
} sink_t;

static bool sink_flush(sink_t *s, long *docs)
{
	bson_error_t error;
	bson_t reply;
	bool ok = true;
	if (s->queued) {
		/* a duplicate key (seeded before) is fine; anything else is not */
		if (!mongoc_bulk_operation_execute(s->bulk, &reply, &error) &&
		    !(error.code == 11000 || strstr(error.message, "duplicate key"))) {
			fprintf(stderr, "bench-seed: insert into %s: %s\n",
			        mongoc_collection_get_name(s->coll), error.message);
			ok = false;
		}
		bson_destroy(&reply);
		*docs += (long)s->queued;
	}
	if (s->bulk)
		mongoc_bulk_operation_destroy(s->bulk);
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	s->bulk = mongoc_collection_create_bulk_operation_with_opts(s->coll, opts);
	bson_destroy(opts);
	s->queued = 0;
	return ok;
}

/* Takes doc. */
static bool sink_add(sink_t *s, bson_t *doc, long *docs)
{
	mongoc_bulk_operation_insert(s->bulk, doc);
	bson_destroy(doc);
	return ++s->queued < BATCH || sink_flush(s, docs);
}

static void point(bson_t *doc, const char *key, double lat, double lon)
{
	bson_t sub;
	bson_append_document_begin(doc, key, -1, &sub);
	BSON_APPEND_DOUBLE(&sub, "lat", lat);
	BSON_APPEND_DOUBLE(&sub, "lon", lon);
	bson_append_document_end(doc, &sub);
}

/* mongoc's warnings (FerretDB has no endSessions) are not the seeder's output */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
	(void)arg;
	if (level <= MONGOC_LOG_LEVEL_ERROR)
		fprintf(stderr, "bench-seed: %s: %s\n", domain, message);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench-seed MONGO_URI FROM TO\n");
		return 1;
	}
	long from = atol(argv[2]), to = atol(argv[3]), docs = 0;
	mongoc_log_set_handler(quiet_log, NULL);
	mongoc_init();
	mongoc_client_t *client = mongoc_client_new(argv[1]);
	if (!client) {
		fprintf(stderr, "bench-seed: bad URI %s\n", argv[1]);
		return 1;
	}
	const char *colls[][2] = {{"packages", "packages"},
	                          {"dronescheduler", "assignments"},
	                          {"dronescheduler", "claims"},
	                          {"dronescheduler", "holds"},
	                          {"dronescheduler", "releases"}};
	sink_t sinks[5];
	long dummy = 0;
	for (int c = 0; c < 5; c++) {
		sinks[c] = (sink_t){
		    .coll = mongoc_client_get_collection(client, colls[c][0], colls[c][1])};
		sink_flush(&sinks[c], &dummy);
	}
	double t0 = now_s();
	int64_t at = (int64_t)time(NULL) * 1000 - 86400000; /* yesterday */
	bool ok = true;
	for (long i = from; i < to && ok; i++) {
		char id[32], pkg[32], owner[32], drone[32], claim[48], hold[40];
		snprintf(id, sizeof id, "seed-%ld", i);
		snprintf(pkg, sizeof pkg, "seed-pkg-%ld", i);
		snprintf(owner, sizeof owner, "seed-owner-%ld", i % 1000);
		snprintf(drone, sizeof drone, "seed-%ld", i);
		snprintf(claim, sizeof claim, "%s@0", drone);
		snprintf(hold, sizeof hold, "%s#0", id);
		double lat = 47.5 + (double)(i % 2500) / 10000.0;
		double lon = -122.2 - (double)(i % 2500) / 10000.0;
		ok = sink_add(&sinks[0],
		              BCON_NEW("_id", BCON_UTF8(pkg), "ownerId", BCON_UTF8(owner),
		                       "deliveryId", BCON_UTF8(id), "size", "medium", "weight",
		                       BCON_DOUBLE(2.5), "tag", BCON_NULL, "createdAt",
		                       BCON_DATE_TIME(at)),
		              &docs);
		bson_t *a =
		    BCON_NEW("_id", BCON_UTF8(id), "ownerId", BCON_UTF8(owner), "status",
		             "completed", "droneId", BCON_UTF8(drone), "droneGen", BCON_INT64(0));
		point(a, "position", lat, lon);
		point(a, "pickup", lat + 0.001, lon);
		point(a, "dropoff", lat + 0.01, lon + 0.01);
		BSON_APPEND_DATE_TIME(a, "assignedAt", at);
		BSON_APPEND_DATE_TIME(a, "releasedAt", at + 600000);
		BSON_APPEND_UTF8(a, "releaseReason", "completed");
		BSON_APPEND_DOUBLE(a, "routeMeters", 1500.0);
		BSON_APPEND_DOUBLE(a, "traveledMeters", 1500.0);
		BSON_APPEND_DATE_TIME(a, "createdAt", at);
		ok = ok && sink_add(&sinks[1], a, &docs);
		ok = ok && sink_add(&sinks[2],
		                    BCON_NEW("_id", BCON_UTF8(claim), "droneId", BCON_UTF8(drone),
		                             "gen", BCON_INT64(0), "deliveryId", BCON_UTF8(id),
		                             "state", "released", "lat", BCON_DOUBLE(lat), "lon",
		                             BCON_DOUBLE(lon), "claimedAt", BCON_DATE_TIME(at),
		                             "releasedAt", BCON_DATE_TIME(at + 600000)),
		                    &docs);
		ok = ok &&
		     sink_add(&sinks[3],
		              BCON_NEW("_id", BCON_UTF8(hold), "claim", BCON_UTF8(claim)), &docs);
		ok = ok && sink_add(&sinks[4],
		                    BCON_NEW("_id", BCON_UTF8(id), "reason", "completed",
		                             "releasedAt", BCON_DATE_TIME(at + 600000)),
		                    &docs);
	}
	for (int c = 0; c < 5; c++) {
		ok = sink_flush(&sinks[c], &docs) && ok;
		mongoc_bulk_operation_destroy(sinks[c].bulk);
		mongoc_collection_destroy(sinks[c].coll);
	}
	double secs = now_s() - t0;
	printf("{\"deliveries\":%ld,\"documents\":%ld,\"seconds\":%.2f,\"documents_per_s\":%.0f,"
	       "\"ok\":%s}\n",
	       to - from, docs, secs, secs > 0 ? (double)docs / secs : 0.0, ok ? "true" : "false");
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return ok ? 0 : 1;
}
