/* test_stores.c — integration test of the two MongoDB-API stores against the real server in
 * DP_MONGO_URI (scripts/test-it.sh points it at an isolated FerretDB): the package store
 * (consumers/package/store.c) and the drone fleet (consumers/scheduler/fleet.c).
 * Each run uses its own databases (<name>_it_<pid>), so reruns never collide.
 *   package: new / identical / conflicting upserts, concurrent upserts, get, monthly weight;
 *   fleet:   seeding twice, nearest claim, idempotent assign (also 8 threads at once),
 *            20 concurrent assigns on a fleet of 5, release (twice), reuse, utilization,
 *            a claim left by a crash before the assignment, the first release deciding;
 *   both:    a server that is not there answers PL_ERR_TRANSIENT within seconds.
 * Closing line: "stores_it: N passed, M failed"; exit status 1 when a check failed, 2 when
 * DP_MONGO_URI is not set (an integration test that cannot run must not pass). */
#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "package/store.h"
#include "scheduler/fleet.h"
#include "check.h"

#define T0       1795773600000LL /* 2026-11-27T10:00:00Z */
#define NOV_2026 2026, 11
#define DOWN_URI "mongodb://127.0.0.1:1/"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static package_t pkg(const char *id, const char *owner, const char *tag, double weight,
                     int64_t created_at_ms)
{
	package_t p;
	memset(&p, 0, sizeof p);
	snprintf(p.package_id, sizeof p.package_id, "%s", id);
	snprintf(p.owner_id, sizeof p.owner_id, "%s", owner);
	snprintf(p.delivery_id, sizeof p.delivery_id, "del-%s", id);
	p.has_tag = tag != NULL;
	if (tag)
		snprintf(p.tag, sizeof p.tag, "%s", tag);
	p.size = PACKAGE_SIZE_MEDIUM;
	p.weight = weight;
	p.created_at_ms = created_at_ms;
	return p;
}

/* ---- package store ------------------------------------------------------------------------ */

typedef struct upsert_job {
	package_store_t *store;
	package_t pkg;
	pl_err_t err;
} upsert_job_t;

static void *upsert_thread(void *arg)
{
	upsert_job_t *job = arg;
	char reason[256];
	job->err = package_store_upsert(job->store, &job->pkg, NULL, reason, sizeof reason);
	return NULL;
}

static void test_package_store(const char *uri)
{
	char errstr[256], reason[256], db[64];
	package_t stored, got, p;
	double total = -1;
	pl_err_t err;

	snprintf(db, sizeof db, "packages_it_%d", (int)getpid());
	package_store_t *store = package_store_new(uri, db, 0, 0, errstr, sizeof errstr);
	CHECK(store != NULL, "package_store_new: %s", errstr);
	if (!store)
		return;
	CHECK(package_store_ensure_indexes(store) == PL_OK, "%s", package_store_errmsg());
	CHECK(package_store_ensure_indexes(store) == PL_OK, "again: %s", package_store_errmsg());

	/* new, then identical (from another delivery): both OK, first values kept */
	p = pkg("p-1", "owner-a", "fragile", 2.5, T0);
	err = package_store_upsert(store, &p, &stored, reason, sizeof reason);
	CHECK(err == PL_OK, "new upsert: %s %s", pl_err_str(err), package_store_errmsg());
	CHECK(stored.created_at_ms == T0 && strcmp(stored.delivery_id, "del-p-1") == 0,
	      "stored %lld %s", (long long)stored.created_at_ms, stored.delivery_id);
	p = pkg("p-1", "owner-a", "fragile", 2.5, T0 + 5000);
	snprintf(p.delivery_id, sizeof p.delivery_id, "another-delivery");
	err = package_store_upsert(store, &p, &stored, reason, sizeof reason);
	CHECK(err == PL_OK, "identical upsert: %s %s", pl_err_str(err), reason);
	CHECK(stored.created_at_ms == T0 && strcmp(stored.delivery_id, "del-p-1") == 0,
	      "first values kept: %lld %s", (long long)stored.created_at_ms, stored.delivery_id);

	/* same packageId, different tag / no tag / weight / owner / size: rejected with a reason */
	p = pkg("p-1", "owner-a", "other-tag", 2.5, T0);
	err = package_store_upsert(store, &p, NULL, reason, sizeof reason);
	CHECK(err == PL_ERR_REJECTED && strstr(reason, "tag 'fragile'"), "tag: %s '%s'",
	      pl_err_str(err), reason);
	p = pkg("p-1", "owner-a", NULL, 2.5, T0);
	err = package_store_upsert(store, &p, NULL, reason, sizeof reason);
	CHECK(err == PL_ERR_REJECTED && strstr(reason, "tag"), "no tag: %s '%s'", pl_err_str(err),
	      reason);
	p = pkg("p-1", "owner-a", "fragile", 3.0, T0);
	err = package_store_upsert(store, &p, NULL, reason, sizeof reason);
	CHECK(err == PL_ERR_REJECTED && strstr(reason, "weight"), "weight: %s '%s'",
	      pl_err_str(err), reason);
	p = pkg("p-1", "owner-b", "fragile", 2.5, T0);
	err = package_store_upsert(store, &p, NULL, reason, sizeof reason);
	CHECK(err == PL_ERR_REJECTED && strstr(reason, "owner"), "owner: %s '%s'", pl_err_str(err),
	      reason);
	p = pkg("p-1", "owner-a", "fragile", 2.5, T0);
	p.size = PACKAGE_SIZE_LARGE;
	err = package_store_upsert(store, &p, NULL, reason, sizeof reason);
	CHECK(err == PL_ERR_REJECTED && strstr(reason, "size Medium"), "size: %s '%s'",
	      pl_err_str(err), reason);

	/* bad input never reaches the server */
	p = pkg("", "owner-a", NULL, 1, T0);
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_ERR_INVALID,
	      "empty id");
	p = pkg("p-x", "owner-a", NULL, -1, T0);
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_ERR_INVALID,
	      "negative weight");
	p = pkg("p-\xc3", "owner-a", NULL, 1, T0);
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_ERR_INVALID,
	      "bad UTF-8");

	/* get */
	err = package_store_get(store, "p-1", &got);
	CHECK(err == PL_OK && strcmp(got.package_id, "p-1") == 0 && got.weight == 2.5 &&
	          got.has_tag && strcmp(got.tag, "fragile") == 0 &&
	          got.size == PACKAGE_SIZE_MEDIUM && strcmp(got.owner_id, "owner-a") == 0,
	      "get: %s", pl_err_str(err));
	CHECK(package_store_get(store, "nope", &got) == PL_ERR_NOT_FOUND, "unknown id");
	p = pkg("p-untagged", "owner-a", NULL, 4.0, T0 - 86400000LL);
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_OK, "%s", reason);
	CHECK(package_store_get(store, "p-untagged", &got) == PL_OK && !got.has_tag,
	      "untagged read back with a tag");

	/* 8 threads upsert one new package, each with its own tag: exactly one wins */
	upsert_job_t jobs[8];
	pthread_t threads[8];
	for (int i = 0; i < 8; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "t%d", i);
		jobs[i].store = store;
		jobs[i].pkg = pkg("p-race", "owner-c", tag, 1.0, T0);
		pthread_create(&threads[i], NULL, upsert_thread, &jobs[i]);
	}
	int ok = 0, rejected = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		ok += jobs[i].err == PL_OK;
		rejected += jobs[i].err == PL_ERR_REJECTED;
	}
	CHECK(ok == 1 && rejected == 7, "race: %d ok, %d rejected", ok, rejected);

	/* monthly weight: Nov 2026 holds p-1 (2.5) and p-untagged (4.0); boundaries exclusive */
	p = pkg("p-oct", "owner-a", NULL, 100, 1793491200000LL - 1); /* 2026-10-31T23:59:59.999 */
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_OK, "%s", reason);
	p = pkg("p-dec", "owner-a", NULL, 200, 1796083200000LL); /* 2026-12-01T00:00:00 */
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_OK, "%s", reason);
	p = pkg("p-nov1", "owner-a", NULL, 0.25, 1793491200000LL); /* 2026-11-01T00:00:00 */
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_OK, "%s", reason);
	p = pkg("p-b", "owner-b", NULL, 50, T0);
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_OK, "%s", reason);
	err = package_store_total_weight(store, "owner-a", NOV_2026, &total);
	CHECK(err == PL_OK && fabs(total - 6.75) < 1e-9, "nov: %s %g", pl_err_str(err), total);
	err = package_store_total_weight(store, "owner-a", 2026, 12, &total);
	CHECK(err == PL_OK && fabs(total - 200) < 1e-9, "dec: %s %g", pl_err_str(err), total);
	err = package_store_total_weight(store, "owner-z", NOV_2026, &total);
	CHECK(err == PL_OK && total == 0, "nobody: %s %g", pl_err_str(err), total);
	CHECK(package_store_total_weight(store, "owner-a", 2026, 13, &total) == PL_ERR_INVALID,
	      "month 13");
	CHECK(package_store_total_weight(store, "", 2026, 1, &total) == PL_ERR_INVALID, "no owner");
	package_store_destroy(store);
}

/* ---- fleet -------------------------------------------------------------------------------- */

typedef struct assign_job {
	fleet_t *fleet;
	char delivery_id[64];
	fleet_point_t pickup;
	pl_err_t err;
	fleet_assignment_t out;
} assign_job_t;

static void *assign_thread(void *arg)
{
	assign_job_t *job = arg;
	fleet_point_t dropoff = {47.70, -122.30};
	job->err = fleet_assign(job->fleet, job->delivery_id, "owner-f", job->pickup, dropoff, T0,
	                        &job->out);
	return NULL;
}

static fleet_t *open_fleet(const char *uri, const char *name)
{
	char errstr[256], db[64];
	snprintf(db, sizeof db, "%s_it_%d", name, (int)getpid());
	fleet_t *fleet = fleet_new(uri, db, 0, 0, errstr, sizeof errstr);
	CHECK(fleet != NULL, "fleet_new: %s", errstr);
	if (fleet)
		CHECK(fleet_ensure_indexes(fleet) == PL_OK, "indexes: %s", fleet_errmsg());
	return fleet;
}

/* A find by _id is answered from the _id index, not by reading the whole collection: on FerretDB
 * with SQLite, explain's plan says "SEARCH ... USING INDEX" (scripts/patches/README.md); on
 * MongoDB, "IDHACK" or an index scan. A plan that scans makes every fleet call grow with the
 * deliveries ever made. */
static void check_id_lookup_uses_index(const char *uri, const char *db, const char *coll,
                                       const char *id)
{
	bson_error_t error;
	bson_t reply;
	mongoc_client_t *client = mongoc_client_new(uri);
	bson_t *cmd = BCON_NEW("explain", "{", "find", BCON_UTF8(coll), "filter", "{", "_id",
	                       BCON_UTF8(id), "}", "}", "verbosity", "queryPlanner");
	bool ok = client && mongoc_client_command_simple(client, db, cmd, NULL, &reply, &error);
	char *json = ok ? bson_as_relaxed_extended_json(&reply, NULL) : NULL;
	CHECK(json &&
	          (strstr(json, "USING INDEX") || strstr(json, "IDHACK") ||
	           strstr(json, "IXSCAN") || strstr(json, "EXPRESS_IXSCAN")) &&
	          !strstr(json, "SCAN \"") && !strstr(json, "COLLSCAN"),
	      "find {_id} on %s.%s uses the _id index: %s", db, coll, json ? json : error.message);
	bson_free(json);
	if (ok)
		bson_destroy(&reply);
	bson_destroy(cmd);
	mongoc_client_destroy(client);
}

/* The owner limit's count against a store with history: 20,000 assignments of 1,000 owners
 * (a third of them still assigned). The count is exact; its time is printed, not asserted (on
 * FerretDB 1.x with SQLite a filter other than {_id} is evaluated in Go over the collection). */
static void test_fleet_owner_count(const char *uri)
{
	fleet_t *fleet = open_fleet(uri, "fleetq");
	bson_error_t error;
	char db[64];
	size_t n = 99;
	if (!fleet)
		return;
	snprintf(db, sizeof db, "fleetq_it_%d", (int)getpid());
	mongoc_client_t *client = mongoc_client_new(uri);
	mongoc_collection_t *coll = mongoc_client_get_collection(client, db, "assignments");
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	mongoc_bulk_operation_t *bulk =
	    mongoc_collection_create_bulk_operation_with_opts(coll, opts);
	size_t want = 0;
	for (int i = 0; i < 20000; i++) {
		char id[32], owner[32];
		snprintf(id, sizeof id, "hist-%d", i);
		snprintf(owner, sizeof owner, "owner-%d", i % 1000);
		const char *status = i % 3 == 0   ? "assigned"
		                     : i % 3 == 1 ? "completed"
		                                  : "released";
		if (i % 1000 == 7 && i % 3 == 0)
			want++;
		bson_t *d = BCON_NEW("_id", BCON_UTF8(id), "ownerId", BCON_UTF8(owner), "status",
		                     BCON_UTF8(status), "droneId", "drone-0001", "assignedAt",
		                     BCON_DATE_TIME(T0 + i));
		mongoc_bulk_operation_insert(bulk, d);
		bson_destroy(d);
	}
	bson_t reply;
	bool ok = mongoc_bulk_operation_execute(bulk, &reply, &error);
	CHECK(ok, "insert 20000 assignments: %s", error.message);
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	double t = now_s();
	pl_err_t err = fleet_owner_in_flight(fleet, "owner-7", &n);
	t = now_s() - t;
	CHECK(err == PL_OK && n == want, "owner-7 has %zu in flight of 20000 (want %zu): %s", n,
	      want, fleet_errmsg());
	printf("stores_it: counting one owner's in-flight deliveries among 20000 assignments took "
	       "%.3fs\n",
	       t);
	fleet_destroy(fleet);
}

static void test_fleet_big(const char *uri)
{
	fleet_t *fleet = open_fleet(uri, "fleet");
	unsigned inserted = 0;
	size_t total = 0, available = 0;
	fleet_assignment_t a, b;
	pl_err_t err;
	double t;

	if (!fleet)
		return;
	t = now_s();
	err = fleet_seed(fleet, 1000, &inserted);
	CHECK(err == PL_OK && inserted == 1000, "seed: %s %u %s", pl_err_str(err), inserted,
	      fleet_errmsg());
	printf("stores_it: seeding 1000 drones took %.2fs\n", now_s() - t);
	err = fleet_seed(fleet, 1000, &inserted);
	CHECK(err == PL_OK && inserted == 0, "reseed: %s %u", pl_err_str(err), inserted);
	{
		char db[64];
		snprintf(db, sizeof db, "fleet_it_%d", (int)getpid());
		check_id_lookup_uses_index(uri, db, "drones", "drone-0500");
	}
	CHECK(fleet_count(fleet, &total, &available) == PL_OK && total == 1000 && available == 1000,
	      "count %zu/%zu", available, total);

	/* a pickup on drone-0500's home gets drone-0500 (distance 0) */
	fleet_point_t pickup = fleet_drone_home("drone-0500"), dropoff = {47.70, -122.30};
	t = now_s();
	err = fleet_assign(fleet, "d-near", "owner-n", pickup, dropoff, T0, &a);
	printf("stores_it: one assignment on 1000 drones took %.3fs\n", now_s() - t);
	CHECK(err == PL_OK && strcmp(a.drone_id, "drone-0500") == 0 &&
	          strcmp(a.status, "assigned") == 0 && a.assigned_at_ms == T0,
	      "nearest: %s %s %s", pl_err_str(err), a.drone_id, fleet_errmsg());
	err = fleet_assign(fleet, "d-near", "owner-n", pickup, dropoff, T0 + 60000, &b);
	CHECK(err == PL_OK && strcmp(b.drone_id, a.drone_id) == 0 && b.assigned_at_ms == T0,
	      "repeat: %s %s", pl_err_str(err), b.drone_id);
	CHECK(fleet_get_assignment(fleet, "d-near", &b) == PL_OK &&
	          strcmp(b.drone_id, "drone-0500") == 0,
	      "get");
	CHECK(fleet_get_assignment(fleet, "d-unknown", &b) == PL_ERR_NOT_FOUND, "unknown");

	/* a pickup in Portland, 230 km from the fleet: no drone within 1 km, none claimed */
	fleet_point_t far = {45.52, -122.68};
	err = fleet_assign_within(fleet, "d-far", "owner-n", far, far, 1000.0, T0, &b);
	CHECK(err == PL_ERR_NOT_FOUND, "out of reach: %s %s", pl_err_str(err), fleet_errmsg());
	CHECK(fleet_get_assignment(fleet, "d-far", &b) == PL_ERR_NOT_FOUND &&
	          fleet_count(fleet, &total, &available) == PL_OK && available == 999,
	      "out of reach claims nothing: %zu available", available);
	/* within reach: the nearest drone, as fleet_assign */
	fleet_point_t home = fleet_drone_home("drone-0042");
	err = fleet_assign_within(fleet, "d-reach", "owner-n", home, dropoff, 10.0, T0, &b);
	CHECK(err == PL_OK && strcmp(b.drone_id, "drone-0042") == 0, "within reach: %s %s",
	      pl_err_str(err), b.drone_id);
	CHECK(fleet_release(fleet, "d-reach", "cancelled", T0, NULL) == PL_OK, "release d-reach");

	/* the same delivery from 8 threads at once: one drone, the same for all */
	assign_job_t jobs[8];
	pthread_t threads[8];
	for (int i = 0; i < 8; i++) {
		jobs[i].fleet = fleet;
		snprintf(jobs[i].delivery_id, sizeof jobs[i].delivery_id, "d-dup");
		jobs[i].pickup = (fleet_point_t){47.62, -122.35};
		pthread_create(&threads[i], NULL, assign_thread, &jobs[i]);
	}
	int same = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		same +=
		    jobs[i].err == PL_OK && strcmp(jobs[i].out.drone_id, jobs[0].out.drone_id) == 0;
	}
	CHECK(same == 8, "duplicates agree: %d of 8 (%s)", same, fleet_errmsg());
	CHECK(fleet_count(fleet, &total, &available) == PL_OK && available == 998,
	      "two drones out, %zu available", available);
	CHECK(fleet_release(fleet, "d-dup", "cancelled", T0 + 1000, &a) == PL_OK &&
	          fleet_release(fleet, "d-near", "completed", T0 + 2000, &b) == PL_OK,
	      "releases");
	CHECK(fleet_count(fleet, &total, &available) == PL_OK && available == 1000,
	      "all back, %zu available", available);
	fleet_destroy(fleet);
}

static void test_fleet_small(const char *uri)
{
	fleet_t *fleet = open_fleet(uri, "fleet5");
	assign_job_t jobs[20];
	pthread_t threads[20];
	fleet_assignment_t a, r1, r2;
	fleet_utilization_t u;
	size_t available = 99;
	pl_err_t err;

	if (!fleet)
		return;
	unsigned inserted = 0;
	CHECK(fleet_seed(fleet, 3, &inserted) == PL_OK && inserted == 3, "seed 3: %s",
	      fleet_errmsg());
	CHECK(fleet_seed(fleet, 5, &inserted) == PL_OK && inserted == 2, "grow to 5: %u", inserted);
	CHECK(fleet_seed(fleet, 5, &inserted) == PL_OK && inserted == 0, "reseed 5: %u", inserted);
	/* 20 deliveries at once on 5 drones: 5 distinct drones, 15 unavailable */
	for (int i = 0; i < 20; i++) {
		jobs[i].fleet = fleet;
		snprintf(jobs[i].delivery_id, sizeof jobs[i].delivery_id, "d-%02d", i);
		jobs[i].pickup = (fleet_point_t){47.60 + i * 0.005, -122.33};
		pthread_create(&threads[i], NULL, assign_thread, &jobs[i]);
	}
	int ok = 0, unavailable = 0, distinct = 0;
	for (int i = 0; i < 20; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 20; i++) {
		ok += jobs[i].err == PL_OK;
		unavailable += jobs[i].err == PL_ERR_NOT_FOUND;
		if (jobs[i].err != PL_OK)
			continue;
		int seen = 0;
		for (int k = 0; k < i; k++)
			seen |= jobs[k].err == PL_OK &&
			        strcmp(jobs[k].out.drone_id, jobs[i].out.drone_id) == 0;
		distinct += !seen;
	}
	CHECK(ok == 5 && unavailable == 15 && distinct == 5, "%d ok, %d unavailable, %d distinct",
	      ok, unavailable, distinct);
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 0, "%zu available",
	      available);
	/* every command again: the same answers */
	int again_same = 0;
	for (int i = 0; i < 20; i++) {
		fleet_point_t dropoff = {47.70, -122.30};
		err = fleet_assign(fleet, jobs[i].delivery_id, "owner-f", jobs[i].pickup, dropoff,
		                   T0 + 999, &a);
		again_same += err == jobs[i].err &&
		              (err != PL_OK || strcmp(a.drone_id, jobs[i].out.drone_id) == 0);
	}
	CHECK(again_same == 20, "replayed answers equal: %d of 20", again_same);

	/* release the first winner as completed: available again at the dropoff; twice is OK */
	int w = 0;
	while (jobs[w].err != PL_OK)
		w++;
	int loser = 0;
	while (jobs[loser].err == PL_OK)
		loser++;
	err = fleet_release(fleet, jobs[w].delivery_id, "completed", T0 + 3600000, &r1);
	CHECK(err == PL_OK && strcmp(r1.status, "completed") == 0 &&
	          r1.released_at_ms == T0 + 3600000 &&
	          strcmp(r1.drone_id, jobs[w].out.drone_id) == 0,
	      "release: %s %s %s", pl_err_str(err), r1.status, fleet_errmsg());
	err = fleet_release(fleet, jobs[w].delivery_id, "completed", T0 + 7200000, &r2);
	CHECK(err == PL_OK && r2.released_at_ms == T0 + 3600000 &&
	          strcmp(r2.status, "completed") == 0,
	      "release twice: %s %lld", pl_err_str(err), (long long)r2.released_at_ms);
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 1, "%zu available",
	      available);
	err = fleet_release(fleet, "d-never", "cancelled", T0, &r2);
	CHECK(err == PL_OK && r2.drone_id[0] == '\0' && strcmp(r2.status, "released") == 0,
	      "release unknown: %s %s", pl_err_str(err), r2.status);
	CHECK(fleet_assign(fleet, "d-never", "owner-f", jobs[0].pickup, jobs[0].pickup, T0, &a) ==
	          PL_ERR_NOT_FOUND,
	      "an AssignDrone after the release claims nothing");
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 1, "%zu available",
	      available);
	/* the released delivery keeps its drone on a replay; a waiting one gets the freed drone,
	 * which starts from the previous dropoff */
	fleet_point_t dropoff = {47.70, -122.30};
	err = fleet_assign(fleet, jobs[w].delivery_id, "owner-f", jobs[w].pickup, dropoff, T0, &a);
	CHECK(err == PL_OK && strcmp(a.drone_id, r1.drone_id) == 0, "replay after release: %s",
	      pl_err_str(err));
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 1,
	      "a replay claims nothing: %zu available", available);
	err = fleet_assign(fleet, jobs[loser].delivery_id, "owner-f", jobs[loser].pickup, dropoff,
	                   T0 + 3600000, &a);
	CHECK(err == PL_OK && strcmp(a.drone_id, r1.drone_id) == 0 &&
	          fabs(a.position.lat - 47.70) < 1e-9 && fabs(a.position.lon + 122.30) < 1e-9,
	      "reuse: %s %s at %f,%f", pl_err_str(err), a.drone_id, a.position.lat, a.position.lon);
	/* a delivery released while it never held a drone stays without one */
	int loser2 = loser + 1;
	while (jobs[loser2].err == PL_OK)
		loser2++;
	CHECK(fleet_release(fleet, jobs[loser2].delivery_id, "cancelled", T0, &r2) == PL_OK &&
	          strcmp(r2.status, "released") == 0 && r2.drone_id[0] == '\0',
	      "release pending: %s", r2.status);
	CHECK(fleet_assign(fleet, jobs[loser2].delivery_id, "owner-f", jobs[loser2].pickup, dropoff,
	                   T0, &a) == PL_ERR_NOT_FOUND,
	      "released pending stays unavailable");
	CHECK(fleet_get_assignment(fleet, jobs[loser2].delivery_id, &a) == PL_ERR_NOT_FOUND,
	      "never assigned reads as unknown");

	/* utilization of owner-f in Nov 2026 at now = T0 + 2h: the completed one (route, 1h),
	 * four active (route, 2h each) and the reused one (route, 1h active) */
	double want_m = 0, want_h = 0;
	for (int i = 0; i < 20; i++) {
		fleet_assignment_t x;
		if (fleet_get_assignment(fleet, jobs[i].delivery_id, &x) != PL_OK)
			continue;
		want_m += strcmp(x.status, "released") == 0 ? 0 : x.route_m;
		want_h += (double)((x.released_at_ms ? x.released_at_ms : T0 + 7200000) -
		                   x.assigned_at_ms) /
		          3600000.0;
	}
	err = fleet_utilization(fleet, "owner-f", NOV_2026, T0 + 7200000, &u);
	CHECK(err == PL_OK && u.assignments == 6 &&
	          fabs(u.traveled_miles - want_m / FLEET_METERS_PER_MILE) < 1e-6 &&
	          fabs(u.assigned_hours - 10.0) < 1e-9 && fabs(want_h - 10.0) < 1e-9,
	      "utilization: %s n=%zu miles=%f (want %f) hours=%f (want 10)", pl_err_str(err),
	      u.assignments, u.traveled_miles, want_m / FLEET_METERS_PER_MILE, u.assigned_hours);
	CHECK(u.traveled_miles > 0, "miles > 0");
	CHECK(fleet_utilization(fleet, "owner-f", 2026, 10, T0, &u) == PL_ERR_NOT_FOUND,
	      "empty month");
	CHECK(fleet_utilization(fleet, "owner-x", NOV_2026, T0, &u) == PL_ERR_NOT_FOUND,
	      "unknown owner");
	CHECK(fleet_utilization(fleet, "owner-f", 2026, 0, T0, &u) == PL_ERR_INVALID, "month 0");
	fleet_destroy(fleet);
}

/* A crash of dronepipe-scheduler between its claim insert and its assignment insert (I3),
 * written as the store would hold it: holds slot 0 names a held claim, slot 1 a claim whose
 * insert never happened. The redelivered AssignDrone finishes with THAT drone, no other
 * delivery can take it meanwhile, and the release frees it. */
static void test_fleet_leftover(const char *uri)
{
	fleet_t *fleet = open_fleet(uri, "fleetx");
	fleet_assignment_t a, b;
	size_t available = 99;
	bson_error_t error;
	char db[64];
	if (!fleet)
		return;
	CHECK(fleet_seed(fleet, 3, NULL) == PL_OK, "seed: %s", fleet_errmsg());
	snprintf(db, sizeof db, "fleetx_it_%d", (int)getpid());
	fleet_point_t home2 = fleet_drone_home("drone-0002"), dropoff = {47.70, -122.30};
	mongoc_client_t *client = mongoc_client_new(uri);
	mongoc_collection_t *holds = mongoc_client_get_collection(client, db, "holds");
	mongoc_collection_t *claims = mongoc_client_get_collection(client, db, "claims");
	bson_t *h0 = BCON_NEW("_id", "d-crash#0", "claim", "drone-0002@0");
	bson_t *h1 = BCON_NEW("_id", "d-crash#1", "claim", "drone-0003@0");
	bson_t *cl =
	    BCON_NEW("_id", "drone-0002@0", "droneId", "drone-0002", "gen", BCON_INT64(0),
	             "deliveryId", "d-crash", "state", "held", "lat", BCON_DOUBLE(home2.lat), "lon",
	             BCON_DOUBLE(home2.lon), "claimedAt", BCON_DATE_TIME(T0 - 5000));
	CHECK(mongoc_collection_insert_one(holds, h0, NULL, NULL, &error) &&
	          mongoc_collection_insert_one(holds, h1, NULL, NULL, &error) &&
	          mongoc_collection_insert_one(claims, cl, NULL, NULL, &error),
	      "write the leftover: %s", error.message);
	bson_destroy(h0);
	bson_destroy(h1);
	bson_destroy(cl);
	mongoc_collection_destroy(holds);
	mongoc_collection_destroy(claims);
	mongoc_client_destroy(client);

	/* the owner limit's inputs: a crash leftover counts as started, a new delivery does not,
	 * and a held claim without an assignment is not yet counted in flight */
	bool started = true;
	size_t in_flight = 99;
	CHECK(fleet_delivery_started(fleet, "d-crash", &started) == PL_OK && started,
	      "a delivery with a held claim left by a crash has started");
	CHECK(fleet_delivery_started(fleet, "d-other", &started) == PL_OK && !started,
	      "a new delivery has not started");
	CHECK(fleet_owner_in_flight(fleet, "owner-x", &in_flight) == PL_OK && in_flight == 0,
	      "owner-x has 0 in flight before any assignment: %zu", in_flight);
	CHECK(fleet_owner_in_flight(fleet, "", &in_flight) == PL_ERR_INVALID &&
	          fleet_owner_in_flight(fleet, "\xff\xfe", &in_flight) == PL_ERR_INVALID &&
	          fleet_delivery_started(fleet, "\xc3", &started) == PL_ERR_INVALID,
	      "empty or invalid UTF-8 ids are refused");

	/* drone-0002 is nearest to its own home, but its generation 0 is taken */
	pl_err_t err = fleet_assign(fleet, "d-other", "owner-x", home2, dropoff, T0, &a);
	CHECK(err == PL_OK && strcmp(a.drone_id, "drone-0002") != 0,
	      "another delivery cannot take the held drone: %s %s %s", pl_err_str(err), a.drone_id,
	      fleet_errmsg());
	err = fleet_assign(fleet, "d-crash", "owner-x", home2, dropoff, T0, &b);
	CHECK(err == PL_OK && strcmp(b.drone_id, "drone-0002") == 0 && b.drone_gen == 0 &&
	          b.assigned_at_ms == T0 - 5000,
	      "the redelivered AssignDrone finishes with its claim: %s %s gen %lld at %lld",
	      pl_err_str(err), b.drone_id, (long long)b.drone_gen, (long long)b.assigned_at_ms);
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 1,
	      "one drone left, %zu available", available);
	CHECK(fleet_owner_in_flight(fleet, "owner-x", &in_flight) == PL_OK && in_flight == 2,
	      "owner-x has 2 in flight: %zu", in_flight);
	CHECK(fleet_owner_in_flight(fleet, "owner-y", &in_flight) == PL_OK && in_flight == 0,
	      "owner-y has none: %zu", in_flight);
	err = fleet_release(fleet, "d-crash", "completed", T0 + 1000, &b);
	CHECK(err == PL_OK && strcmp(b.status, "completed") == 0, "release: %s %s", pl_err_str(err),
	      b.status);
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 2,
	      "drone-0002 free again, %zu available", available);
	/* the first release decides: a later one with another reason changes nothing */
	CHECK(fleet_release(fleet, "d-other", "cancelled", T0 + 2000, &a) == PL_OK &&
	          fleet_release(fleet, "d-other", "completed", T0 + 3000, &b) == PL_OK &&
	          strcmp(b.status, "released") == 0 && strcmp(b.release_reason, "cancelled") == 0 &&
	          b.released_at_ms == T0 + 2000 && b.traveled_m == 0,
	      "first release wins: %s %s %lld", b.status, b.release_reason,
	      (long long)b.released_at_ms);
	CHECK(fleet_owner_in_flight(fleet, "owner-x", &in_flight) == PL_OK && in_flight == 0,
	      "completed and released assignments are not in flight: %zu", in_flight);
	CHECK(fleet_delivery_started(fleet, "d-other", &started) == PL_OK && started,
	      "a released delivery has started (a repeat gets what it had, never a new drone)");
	/* the freed drone is claimed at its next generation, from its dropoff */
	err = fleet_assign(fleet, "d-next", "owner-x", dropoff, dropoff, T0 + 4000, &a);
	CHECK(err == PL_OK && strcmp(a.drone_id, "drone-0002") == 0 && a.drone_gen == 1,
	      "next generation: %s %s gen %lld", pl_err_str(err), a.drone_id,
	      (long long)a.drone_gen);
	CHECK(fleet_count(fleet, NULL, &available) == PL_OK && available == 2, "%zu available",
	      available);

	/* A copy of an AssignDrone running next to the first (a rebalance) noted holds slot 1 and
	 * claimed a second drone after the first copy had decided the assignment with one slot,
	 * then crashed before giving it back. The first release frees that drone too. */
	err = fleet_assign(fleet, "d-dup", "owner-x", dropoff, dropoff, T0 + 5000, &a);
	CHECK(err == PL_OK, "assign d-dup: %s %s", pl_err_str(err), fleet_errmsg());
	char other[FLEET_ID_MAX] = "", key[64] = "";
	int64_t other_gen = -1;
	client = mongoc_client_new(uri);
	mongoc_collection_t *drones = mongoc_client_get_collection(client, db, "drones");
	holds = mongoc_client_get_collection(client, db, "holds");
	claims = mongoc_client_get_collection(client, db, "claims");
	for (unsigned i = 1; i <= 3 && !other[0]; i++) {
		char id[FLEET_ID_MAX];
		fleet_drone_id(i, id);
		if (strcmp(id, "drone-0002") == 0 || strcmp(id, a.drone_id) == 0)
			continue;
		bson_t *f = BCON_NEW("_id", BCON_UTF8(id));
		mongoc_cursor_t *cur = mongoc_collection_find_with_opts(drones, f, NULL, NULL);
		const bson_t *doc;
		bson_iter_t it;
		if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "gen")) {
			other_gen = bson_iter_as_int64(&it);
			snprintf(other, sizeof other, "%s", id);
		}
		mongoc_cursor_destroy(cur);
		bson_destroy(f);
	}
	snprintf(key, sizeof key, "%s@%lld", other, (long long)other_gen);
	h1 = BCON_NEW("_id", "d-dup#1", "claim", BCON_UTF8(key));
	cl = BCON_NEW("_id", BCON_UTF8(key), "droneId", BCON_UTF8(other), "gen",
	              BCON_INT64(other_gen), "deliveryId", "d-dup", "state", "held", "lat",
	              BCON_DOUBLE(47.6), "lon", BCON_DOUBLE(-122.3), "claimedAt",
	              BCON_DATE_TIME(T0 + 5001));
	CHECK(other[0] && mongoc_collection_insert_one(holds, h1, NULL, NULL, &error) &&
	          mongoc_collection_insert_one(claims, cl, NULL, NULL, &error),
	      "write the second copy's claim %s: %s", key, error.message);
	bson_destroy(h1);
	bson_destroy(cl);
	err = fleet_release(fleet, "d-dup", "completed", T0 + 6000, &b);
	CHECK(err == PL_OK && strcmp(b.drone_id, a.drone_id) == 0, "release d-dup: %s %s",
	      pl_err_str(err), fleet_errmsg());
	bson_t *f = BCON_NEW("_id", BCON_UTF8(key));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(claims, f, NULL, NULL);
	const bson_t *doc;
	bson_iter_t it;
	const char *state = "missing";
	if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "state"))
		state = bson_iter_utf8(&it, NULL);
	CHECK(strcmp(state, "released") == 0, "the second copy's claim %s is %s", key, state);
	mongoc_cursor_destroy(cur);
	bson_destroy(f);
	mongoc_collection_destroy(drones);
	mongoc_collection_destroy(holds);
	mongoc_collection_destroy(claims);
	mongoc_client_destroy(client);
	fleet_destroy(fleet);
}

/* ---- server down --------------------------------------------------------------------------- */

static void test_server_down(void)
{
	char errstr[256], reason[256];
	package_t p = pkg("p-down", "owner-a", NULL, 1, T0), got;
	fleet_assignment_t a;
	fleet_point_t pt = {47.6, -122.3};
	double total, t;
	package_store_t *store =
	    package_store_new(DOWN_URI, "packages", 0, 0, errstr, sizeof errstr);
	fleet_t *fleet = fleet_new(DOWN_URI, "dronescheduler", 0, 0, errstr, sizeof errstr);
	CHECK(store && fleet, "new on a closed port: %s", errstr);
	if (!store || !fleet)
		goto out;
	t = now_s();
	CHECK(package_store_upsert(store, &p, NULL, reason, sizeof reason) == PL_ERR_TRANSIENT,
	      "upsert down");
	CHECK(strlen(package_store_errmsg()) > 0, "errmsg says why");
	CHECK(package_store_get(store, "p-down", &got) == PL_ERR_TRANSIENT, "get down");
	CHECK(package_store_total_weight(store, "o", 2026, 1, &total) == PL_ERR_TRANSIENT,
	      "sum down");
	CHECK(package_store_ping(store) == PL_ERR_TRANSIENT, "ping down");
	CHECK(fleet_seed(fleet, 10, NULL) == PL_ERR_TRANSIENT, "seed down");
	CHECK(fleet_assign(fleet, "d", "o", pt, pt, T0, &a) == PL_ERR_TRANSIENT, "assign down");
	CHECK(fleet_release(fleet, "d", "cancelled", T0, &a) == PL_ERR_TRANSIENT, "release down");
	CHECK(fleet_ensure_indexes(fleet) == PL_ERR_TRANSIENT, "indexes down");
	size_t n;
	bool started;
	CHECK(fleet_owner_in_flight(fleet, "o", &n) == PL_ERR_TRANSIENT, "in-flight count down");
	CHECK(fleet_delivery_started(fleet, "d", &started) == PL_ERR_TRANSIENT, "started down");
	t = now_s() - t;
	char why[512] = "";
	CHECK(!package_store_ready(store, why, sizeof why) && strstr(why, "FerretDB/MongoDB: ") &&
	          strstr(why, "failing since"),
	      "package store not ready, and why: %s", why);
	CHECK(!fleet_ready(fleet, why, sizeof why) && strstr(why, "FerretDB/MongoDB: ") &&
	          strstr(why, "failing since"),
	      "fleet not ready, and why: %s", why);
	printf("stores_it: 10 calls on a down server took %.1fs\n", t);
	CHECK(t < 10 * 4.0, "each call fails within ~2 s (took %.1fs for 10)", t);
out:
	package_store_destroy(store);
	fleet_destroy(fleet);
}

int main(void)
{
	const char *uri = getenv("DP_MONGO_URI");
	pl_log_init("stores_it", PL_LOG_WARN);
	if (!uri || !*uri) {
		printf("stores_it: DP_MONGO_URI is not set (run through scripts/test-it.sh)\n");
		printf("stores_it: 0 passed, 1 failed\n");
		return 2;
	}
	test_package_store(uri);
	test_fleet_big(uri);
	test_fleet_small(uri);
	test_fleet_leftover(uri);
	test_fleet_owner_count(uri);
	test_server_down();
	printf("stores_it: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
