/* fleet.c — the drone fleet of dronepipe-scheduler over mongoc: seeding, claim by unique insert,
 * assignment records, release, utilization (the pure claim-order logic is in fleet_plan.c).
 * Owns the service's mongoc client pool. The collections, the reason claims are
 * inserts (FerretDB 1.x has no atomic findAndModify) and the invariants I1..I5 are in fleet.h.
 * mongoc/bson errors are translated here: a duplicate key is a normal answer (someone else won
 * the claim or decided the assignment), anything else from the server is PL_ERR_TRANSIENT. */
#include <inttypes.h>
#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "log.h"
#include "mem.h"
#include "mongo.h"
#include "probe.h"

#define ERRMSG_MAX 256

/* The candidate cache: the available drones as last read, so an assignment does not re-read
 * the whole fleet (about 110 ms for 1,000 drones on FerretDB). It is only a hint, like the drones'
 * status field: a stale entry makes a claim insert fail (I1) and the next candidate is tried.
 * A drone this process releases goes back into it at its next generation; one released by
 * another replica reappears at the next read. Read again when older than CACHE_MAX_AGE_MS, and
 * before answering "unavailable" unless it was read in the last CACHE_MIN_AGE_MS (so a busy
 * fleet is not read whole for every waiting delivery). Ages use the monotonic clock. */
#define CACHE_MAX_AGE_MS 30000
#define CACHE_MIN_AGE_MS 250

/* Invariant: uri and pool non-NULL for the life of the fleet; db_name non-empty;
 * cache_n <= cache_cap. */

struct fleet {
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	char *db_name;
	pthread_mutex_t cache_lock; /* guards cache, cache_n, cache_at_ms */
	fleet_candidate_t *cache;
	size_t cache_n, cache_cap;
	int64_t cache_at_ms; /* monotonic ms of the last read; 0 = never read */
	pl_probe_t *probe;   /* what the calls recorded, for readiness */
};

static _Thread_local char last_errmsg[ERRMSG_MAX];
static _Thread_local bool call_failed; /* a server round trip of this thread's call failed */

const char *fleet_errmsg(void)
{
	return last_errmsg;
}

static void set_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_errmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_errmsg, sizeof last_errmsg, fmt, ap);
	va_end(ap);
}

static pl_err_t mongo_fail(const char *op, const bson_error_t *error)
{
	set_errmsg("%s: %s (domain %u, code %u)", op, error->message, error->domain, error->code);
	call_failed = true;
	return PL_ERR_TRANSIENT;
}

static void probe_ping(void *fleet)
{
	fleet_ping(fleet); /* notes its outcome */
}

fleet_t *fleet_new(const char *uri_text, const char *db_name, int timeout_ms,
                   int connect_timeout_ms, char *errstr, size_t errstr_size)
{
	fleet_t *fleet;
	mongoc_uri_t *uri = NULL;
	mongoc_client_pool_t *pool =
	    pl_mongo_pool_new(uri_text, db_name, "dronepipe-scheduler", timeout_ms,
	                      connect_timeout_ms, &uri, errstr, errstr_size);
	if (!pool)
		return NULL;
	fleet = pl_calloc(1, sizeof *fleet);
	fleet->uri = uri;
	fleet->pool = pool;
	fleet->db_name = pl_strdup(db_name);
	pthread_mutex_init(&fleet->cache_lock, NULL);
	int socket_ms = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
	fleet->probe = pl_probe_new("FerretDB/MongoDB", 1000, 2000 + 2 * (int64_t)socket_ms);
	pl_probe_start(fleet->probe, probe_ping, fleet);
	return fleet;
}

void fleet_destroy(fleet_t *fleet)
{
	if (!fleet)
		return;
	pl_probe_destroy(fleet->probe); /* joins the ping thread */
	mongoc_client_pool_destroy(fleet->pool);
	mongoc_uri_destroy(fleet->uri);
	pl_free(fleet->db_name);
	pl_free(fleet->cache);
	pthread_mutex_destroy(&fleet->cache_lock);
	pl_free(fleet);
}

/* One pooled client and the collections, for the duration of one call. */
typedef struct conn {
	mongoc_client_t *client;
	mongoc_collection_t *drones, *claims, *assignments, *holds, *releases;
} conn_t;

static conn_t conn_open(fleet_t *fleet)
{
	conn_t c;
	call_failed = false;
	c.client = mongoc_client_pool_pop(fleet->pool);
	c.drones = mongoc_client_get_collection(c.client, fleet->db_name, "drones");
	c.claims = mongoc_client_get_collection(c.client, fleet->db_name, "claims");
	c.assignments = mongoc_client_get_collection(c.client, fleet->db_name, "assignments");
	c.holds = mongoc_client_get_collection(c.client, fleet->db_name, "holds");
	c.releases = mongoc_client_get_collection(c.client, fleet->db_name, "releases");
	return c;
}

static void conn_close(fleet_t *fleet, conn_t *c)
{
	mongoc_collection_destroy(c->drones);
	mongoc_collection_destroy(c->claims);
	mongoc_collection_destroy(c->assignments);
	mongoc_collection_destroy(c->holds);
	mongoc_collection_destroy(c->releases);
	mongoc_client_pool_push(fleet->pool, c->client);
	pl_probe_note(fleet->probe, PL_PROBE_CALLS, !call_failed, last_errmsg);
}

pl_err_t fleet_ping(fleet_t *fleet)
{
	bson_error_t error;
	pl_err_t e = pl_mongo_ping(fleet->pool, &error) ? PL_OK : mongo_fail("ping", &error);
	pl_probe_note(fleet->probe, PL_PROBE_CALLS, e == PL_OK, last_errmsg);
	return e;
}

bool fleet_ready(fleet_t *fleet, char *reason, size_t reason_size)
{
	return pl_probe_ready(fleet->probe, reason, reason_size);
}

static pl_err_t create_index(mongoc_collection_t *coll, const char *name, bson_t *keys)
{
	bson_error_t error;
	pl_err_t err = PL_OK;
	bson_t *cmd =
	    BCON_NEW("createIndexes", BCON_UTF8(mongoc_collection_get_name(coll)), "indexes", "[",
	             "{", "key", BCON_DOCUMENT(keys), "name", BCON_UTF8(name), "}", "]");
	if (!mongoc_collection_write_command_with_opts(coll, cmd, NULL, NULL, &error))
		err = mongo_fail("createIndexes", &error);
	bson_destroy(cmd);
	bson_destroy(keys);
	return err;
}

pl_err_t fleet_ensure_indexes(fleet_t *fleet)
{
	conn_t c = conn_open(fleet);
	pl_err_t err = create_index(c.drones, "status", BCON_NEW("status", BCON_INT32(1)));
	if (err == PL_OK)
		err = create_index(c.assignments, "ownerId_assignedAt",
		                   BCON_NEW("ownerId", BCON_INT32(1), "assignedAt", BCON_INT32(1)));
	conn_close(fleet, &c);
	return err;
}

/* ---- document helpers ------------------------------------------------------------------- */

static void get_str(const bson_t *doc, const char *key, char *dst, size_t dst_size)
{
	bson_iter_t it;
	uint32_t len = 0;
	const char *s;
	dst[0] = '\0';
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
		return;
	s = bson_iter_utf8(&it, &len);
	if (len >= dst_size)
		len = (uint32_t)dst_size - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static double get_num(const bson_t *doc, const char *dotted, double fallback)
{
	bson_iter_t it, sub;
	if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &sub) &&
	    BSON_ITER_HOLDS_NUMBER(&sub))
		return bson_iter_as_double(&sub);
	return fallback;
}

static int64_t get_i64(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key))
		return 0;
	if (BSON_ITER_HOLDS_DATE_TIME(&it))
		return bson_iter_date_time(&it);
	if (BSON_ITER_HOLDS_NUMBER(&it))
		return bson_iter_as_int64(&it);
	return 0;
}

static fleet_point_t get_point(const bson_t *doc, const char *prefix)
{
	char lat[40], lon[40];
	snprintf(lat, sizeof lat, "%s.lat", prefix);
	snprintf(lon, sizeof lon, "%s.lon", prefix);
	return (fleet_point_t){get_num(doc, lat, NAN), get_num(doc, lon, NAN)};
}

static void assignment_from_bson(const bson_t *doc, fleet_assignment_t *a)
{
	memset(a, 0, sizeof *a);
	get_str(doc, "_id", a->delivery_id, sizeof a->delivery_id);
	get_str(doc, "ownerId", a->owner_id, sizeof a->owner_id);
	get_str(doc, "droneId", a->drone_id, sizeof a->drone_id);
	get_str(doc, "status", a->status, sizeof a->status);
	get_str(doc, "releaseReason", a->release_reason, sizeof a->release_reason);
	a->drone_gen = get_i64(doc, "droneGen");
	a->position = get_point(doc, "position");
	a->pickup = get_point(doc, "pickup");
	a->dropoff = get_point(doc, "dropoff");
	a->assigned_at_ms = get_i64(doc, "assignedAt");
	a->released_at_ms = get_i64(doc, "releasedAt");
	a->route_m = get_num(doc, "routeMeters", 0);
	a->traveled_m = get_num(doc, "traveledMeters", -1);
	a->hold_slots = (unsigned)get_i64(doc, "holdSlots");
}

static bool str_ok(const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;
	return len > 0 && len <= max && bson_utf8_validate(s, len, false);
}

/* Every per-command read and write goes through find_by_id / update_by_id: a filter that is the
 * _id alone is the only one FerretDB 1.x with SQLite pushes down to SQL; any other reads the
 * whole collection (fleet.h). */

/* The document of coll with _id id into *doc_out (caller destroys).
 * PL_OK, PL_ERR_NOT_FOUND or PL_ERR_TRANSIENT. */
static pl_err_t find_by_id(mongoc_collection_t *coll, const char *id, bson_t *doc_out)
{
	bson_error_t error;
	const bson_t *doc;
	pl_err_t err = PL_ERR_NOT_FOUND;
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_copy_to(doc, doc_out);
		err = PL_OK;
	} else if (mongoc_cursor_error(cursor, &error)) {
		err = mongo_fail("find", &error);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

static pl_err_t read_assignment(conn_t *c, const char *delivery_id, fleet_assignment_t *a)
{
	bson_t doc;
	pl_err_t err = find_by_id(c->assignments, delivery_id, &doc);
	if (err == PL_OK) {
		assignment_from_bson(&doc, a);
		bson_destroy(&doc);
	}
	return err;
}

/* update_one (no upsert) of the document of coll with _id id; takes ownership of upd. */
static pl_err_t update_by_id(mongoc_collection_t *coll, const char *id, bson_t *upd)
{
	bson_error_t error;
	bson_t reply;
	pl_err_t err = PL_OK;
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	if (!mongoc_collection_update_one(coll, filter, upd, NULL, &reply, &error))
		err = mongo_fail("update", &error);
	bson_destroy(&reply);
	bson_destroy(filter);
	bson_destroy(upd);
	return err;
}

/* ---- seeding ---------------------------------------------------------------------------- */

/* I3 repair: a drone hint "assigned" whose claim is released (or missing) becomes available. */
static pl_err_t repair_hints(conn_t *c)
{
	bson_error_t error;
	const bson_t *doc;
	pl_err_t err = PL_OK;
	bson_t *filter = BCON_NEW("status", "assigned");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c->drones, filter, NULL, NULL);
	while (err == PL_OK && mongoc_cursor_next(cursor, &doc)) {
		char drone_id[FLEET_ID_MAX], claim_id[FLEET_ID_MAX + 24], state[16] = "";
		int64_t gen = get_i64(doc, "gen");
		bson_t claim;
		get_str(doc, "_id", drone_id, sizeof drone_id);
		snprintf(claim_id, sizeof claim_id, "%s@%" PRId64, drone_id, gen);
		err = find_by_id(c->claims, claim_id, &claim);
		if (err == PL_OK) {
			get_str(&claim, "state", state, sizeof state);
			bson_destroy(&claim);
			if (strcmp(state, "held") == 0)
				continue;
		} else if (err != PL_ERR_NOT_FOUND) {
			break;
		}
		/* released claim: next generation; missing claim: this generation is still free */
		err = update_by_id(c->drones, drone_id,
		                   BCON_NEW("$set", "{", "status", "available", "deliveryId",
		                            BCON_NULL, "}", "$max", "{", "gen",
		                            BCON_INT64(err == PL_OK ? gen + 1 : gen), "}"));
	}
	if (err == PL_OK && mongoc_cursor_error(cursor, &error))
		err = mongo_fail("find assigned drones", &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	return err;
}

pl_err_t fleet_seed(fleet_t *fleet, unsigned size, unsigned *inserted)
{
	bson_error_t error;
	bson_t reply;
	pl_err_t err = PL_OK;
	conn_t c;

	if (inserted)
		*inserted = 0;
	if (size == 0 || size > FLEET_SIZE_MAX) {
		set_errmsg("fleet size %u outside 1..%d", size, FLEET_SIZE_MAX);
		return PL_ERR_INVALID;
	}
	c = conn_open(fleet);
	/* One unordered insert of every drone: an existing _id fails on its own (duplicate key,
	 * ignored) and nothing existing is touched, so re-seeding, or two replicas seeding at
	 * once, store each drone exactly once. */
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	mongoc_bulk_operation_t *bulk =
	    mongoc_collection_create_bulk_operation_with_opts(c.drones, opts);
	for (unsigned i = 1; i <= size; i++) {
		char drone_id[FLEET_ID_MAX];
		fleet_drone_id(i, drone_id);
		fleet_point_t home = fleet_drone_home(drone_id);
		bson_t *d = BCON_NEW("_id", BCON_UTF8(drone_id), "seq", BCON_INT64(i), "gen",
		                     BCON_INT64(0), "status", "available", "deliveryId", BCON_NULL,
		                     "lat", BCON_DOUBLE(home.lat), "lon", BCON_DOUBLE(home.lon));
		mongoc_bulk_operation_insert(bulk, d);
		bson_destroy(d);
	}
	if (!mongoc_bulk_operation_execute(bulk, &reply, &error) &&
	    !pl_mongo_is_duplicate_key(&error))
		err = mongo_fail("insert drones", &error);
	else if (inserted)
		*inserted = (unsigned)get_i64(&reply, "nInserted");
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	if (err == PL_OK)
		err = repair_hints(&c);
	conn_close(fleet, &c);
	return err;
}

pl_err_t fleet_count(fleet_t *fleet, size_t *total, size_t *available)
{
	bson_error_t error;
	conn_t c = conn_open(fleet);
	bson_t *all = bson_new(), *avail = BCON_NEW("status", "available");
	int64_t n_all = mongoc_collection_count_documents(c.drones, all, NULL, NULL, NULL, &error);
	int64_t n_av = n_all < 0 ? -1
	                         : mongoc_collection_count_documents(c.drones, avail, NULL, NULL,
	                                                             NULL, &error);
	pl_err_t err = n_all < 0 || n_av < 0 ? mongo_fail("count drones", &error) : PL_OK;
	if (total)
		*total = err == PL_OK ? (size_t)n_all : 0;
	if (available)
		*available = err == PL_OK ? (size_t)n_av : 0;
	bson_destroy(all);
	bson_destroy(avail);
	conn_close(fleet, &c);
	return err;
}

/* ---- claims ----------------------------------------------------------------------------- */

typedef struct claim {
	char drone_id[FLEET_ID_MAX];
	int64_t gen;
	fleet_point_t position;
	int64_t claimed_at_ms;
} claim_t;

#define HELD_MAX       64  /* claims one delivery can hold at once (crash leftovers included) */
#define HOLD_SLOTS_MAX 256 /* claim attempts noted per delivery */

static void claim_key(const char *drone_id, int64_t gen, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s@%" PRId64, drone_id, gen);
}

/* Frees drone X at generation gen: the drone hint first (next generation, at new_position when
 * given), then the claim. A repeat changes nothing: the generation only grows ($max) and the
 * claim keeps its first releasedAt ($min). The filters are the _id alone, see fleet.h. */
static pl_err_t release_claim(conn_t *c, const claim_t *claim, const fleet_point_t *new_position,
                              int64_t now_ms)
{
	char key[FLEET_ID_MAX + 24];
	bson_t *upd = bson_new(), set, max;
	pl_err_t err;
	bson_append_document_begin(upd, "$set", -1, &set);
	BSON_APPEND_UTF8(&set, "status", "available");
	BSON_APPEND_NULL(&set, "deliveryId");
	if (new_position) {
		BSON_APPEND_DOUBLE(&set, "lat", new_position->lat);
		BSON_APPEND_DOUBLE(&set, "lon", new_position->lon);
	}
	bson_append_document_end(upd, &set);
	bson_append_document_begin(upd, "$max", -1, &max);
	BSON_APPEND_INT64(&max, "gen", claim->gen + 1);
	bson_append_document_end(upd, &max);
	err = update_by_id(c->drones, claim->drone_id, upd);
	if (err != PL_OK)
		return err;
	claim_key(claim->drone_id, claim->gen, key, sizeof key);
	return update_by_id(c->claims, key,
	                    BCON_NEW("$set", "{", "state", "released", "}", "$min", "{",
	                             "releasedAt", BCON_DATE_TIME(now_ms), "}"));
}

static void hold_id(const char *delivery_id, unsigned slot, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s#%u", delivery_id, slot);
}

/* Notes claim key in the first free holds slot of delivery_id from *slot on (an insert, atomic
 * on FerretDB too, where a read-modify-write of one array loses concurrent additions); *slot
 * becomes the next slot. The slots of a delivery are dense: each is inserted only once the one
 * before it exists. first: slot 0 must be free (the fast path of fleet_assign):
 * PL_ERR_REJECTED when it is not. */
static pl_err_t note_hold(conn_t *c, const char *delivery_id, const char *key, unsigned *slot,
                          bool first)
{
	char id[FLEET_STR_MAX + 16];
	for (; *slot < HOLD_SLOTS_MAX; (*slot)++) {
		bson_error_t error;
		hold_id(delivery_id, *slot, id, sizeof id);
		bson_t *doc = BCON_NEW("_id", BCON_UTF8(id), "claim", BCON_UTF8(key));
		bool ok = mongoc_collection_insert_one(c->holds, doc, NULL, NULL, &error);
		bson_destroy(doc);
		if (ok) {
			(*slot)++;
			return PL_OK;
		}
		if (!pl_mongo_is_duplicate_key(&error))
			return mongo_fail("insert hold", &error);
		if (first && *slot == 0)
			return PL_ERR_REJECTED; /* an earlier attempt noted its claim */
	}
	set_errmsg("delivery %s tried %d claims", delivery_id, HOLD_SLOTS_MAX);
	return PL_ERR_TRANSIENT;
}

/* Appends to out[*n] the claims held for delivery_id (state "held", deliveryId matching) noted
 * in its holds slots from slot `from` on, up to HELD_MAX in all: reads by _id only.
 * *slots = the slots in use. */
static pl_err_t held_claims(conn_t *c, const char *delivery_id, unsigned from, claim_t *out,
                            size_t *n, unsigned *slots)
{
	pl_err_t err = PL_OK;
	for (*slots = from; *slots < HOLD_SLOTS_MAX; (*slots)++) {
		char id[FLEET_STR_MAX + 16], key[FLEET_ID_MAX + 24], state[16];
		char owner[FLEET_STR_MAX + 1];
		bson_t hold, doc;
		hold_id(delivery_id, *slots, id, sizeof id);
		err = find_by_id(c->holds, id, &hold);
		if (err != PL_OK)
			break;
		get_str(&hold, "claim", key, sizeof key);
		bson_destroy(&hold);
		err = find_by_id(c->claims, key, &doc);
		if (err ==
		    PL_ERR_NOT_FOUND) /* noted, then a crash or a lost race before the insert */
			continue;
		if (err != PL_OK)
			break;
		get_str(&doc, "state", state, sizeof state);
		get_str(&doc, "deliveryId", owner, sizeof owner);
		if (strcmp(state, "held") == 0 && strcmp(owner, delivery_id) == 0 &&
		    *n < HELD_MAX) {
			claim_t *cl = &out[(*n)++];
			get_str(&doc, "droneId", cl->drone_id, sizeof cl->drone_id);
			cl->gen = get_i64(&doc, "gen");
			cl->position =
			    (fleet_point_t){get_num(&doc, "lat", NAN), get_num(&doc, "lon", NAN)};
			cl->claimed_at_ms = get_i64(&doc, "claimedAt");
		}
		bson_destroy(&doc);
	}
	return err == PL_ERR_NOT_FOUND ? PL_OK : err;
}

/* Reads the available drones (hint) as candidates. *out is pl_malloc'ed, caller frees. The one
 * query that reads the whole drones collection; the cache keeps it rare. */
static pl_err_t list_available(conn_t *c, fleet_candidate_t **out, size_t *n)
{
	bson_error_t error;
	const bson_t *doc;
	size_t cap = 64;
	pl_err_t err = PL_OK;
	bson_t *filter = BCON_NEW("status", "available");
	bson_t *opts = BCON_NEW("projection", "{", "gen", BCON_INT32(1), "lat", BCON_INT32(1),
	                        "lon", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c->drones, filter, opts, NULL);
	fleet_candidate_t *cands = pl_malloc(cap * sizeof *cands);
	*n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (*n == cap) {
			cap *= 2;
			cands = pl_realloc(cands, cap * sizeof *cands);
		}
		get_str(doc, "_id", cands[*n].drone_id, sizeof cands[*n].drone_id);
		cands[*n].gen = get_i64(doc, "gen");
		cands[*n].position.lat = get_num(doc, "lat", NAN);
		cands[*n].position.lon = get_num(doc, "lon", NAN);
		(*n)++;
	}
	if (mongoc_cursor_error(cursor, &error))
		err = mongo_fail("list available drones", &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	*out = cands;
	return err;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A copy of the candidate cache, read again from the store first when older than
 * CACHE_MAX_AGE_MS, or when force and older than CACHE_MIN_AGE_MS. */
static pl_err_t cached_candidates(fleet_t *fleet, conn_t *c, bool force, fleet_candidate_t **out,
                                  size_t *n)
{
	pl_err_t err = PL_OK;
	pthread_mutex_lock(&fleet->cache_lock);
	int64_t age = mono_ms() - fleet->cache_at_ms;
	if (!fleet->cache_at_ms || age > CACHE_MAX_AGE_MS || (force && age > CACHE_MIN_AGE_MS)) {
		fleet_candidate_t *fresh = NULL;
		size_t fresh_n = 0;
		err = list_available(c, &fresh, &fresh_n);
		if (err == PL_OK) {
			pl_free(fleet->cache);
			fleet->cache = fresh;
			fleet->cache_n = fresh_n;
			fleet->cache_cap = fresh_n;
			fleet->cache_at_ms = mono_ms();
		} else {
			pl_free(fresh);
		}
	}
	*n = err == PL_OK ? fleet->cache_n : 0;
	*out = pl_malloc((*n ? *n : 1) * sizeof **out);
	if (*n)
		memcpy(*out, fleet->cache, *n * sizeof **out);
	pthread_mutex_unlock(&fleet->cache_lock);
	return err;
}

/* Takes a drone out of the cache before trying to claim it, so the other threads of this
 * process (stage lanes) rank the drones left instead of racing for the same claim. false when
 * another thread took it first. */
static bool cache_take(fleet_t *fleet, const char *drone_id)
{
	bool taken = false;
	pthread_mutex_lock(&fleet->cache_lock);
	for (size_t i = 0; i < fleet->cache_n; i++) {
		if (strcmp(fleet->cache[i].drone_id, drone_id) == 0) {
			fleet->cache[i] = fleet->cache[--fleet->cache_n];
			taken = true;
			break;
		}
	}
	pthread_mutex_unlock(&fleet->cache_lock);
	return taken;
}

/* Puts a drone this process released back into the cache at its next generation, so the next
 * assignment can claim it without reading the fleet again. */
static void cache_return(fleet_t *fleet, const claim_t *claim, fleet_point_t position)
{
	pthread_mutex_lock(&fleet->cache_lock);
	if (fleet->cache_at_ms) {
		size_t i = 0;
		while (i < fleet->cache_n && strcmp(fleet->cache[i].drone_id, claim->drone_id) != 0)
			i++;
		bool added = i == fleet->cache_n;
		if (added) {
			if (fleet->cache_n == fleet->cache_cap) {
				fleet->cache_cap = fleet->cache_cap ? 2 * fleet->cache_cap : 16;
				fleet->cache = pl_realloc(fleet->cache,
				                          fleet->cache_cap * sizeof *fleet->cache);
			}
			fleet->cache_n++;
		}
		fleet_candidate_t *e = &fleet->cache[i];
		snprintf(e->drone_id, sizeof e->drone_id, "%s", claim->drone_id);
		if (added || e->gen < claim->gen + 1) {
			e->gen = claim->gen + 1;
			e->position = position;
		}
	}
	pthread_mutex_unlock(&fleet->cache_lock);
}

/* Puts back a candidate taken by cache_take but not claimed (same generation). */
static void cache_put(fleet_t *fleet, const fleet_candidate_t *cand)
{
	claim_t as_released = {.gen = cand->gen - 1, .position = cand->position};
	snprintf(as_released.drone_id, sizeof as_released.drone_id, "%s", cand->drone_id);
	cache_return(fleet, &as_released, cand->position);
}

/* Tries to claim the candidates in rank order by inserting claims/"X@gen" until an insert wins
 * (I1); each key is noted in holds/<deliveryId> before its insert (write-ahead, I3).
 * PL_ERR_NOT_FOUND when every candidate was taken; with first, PL_ERR_REJECTED when holds slot
 * 0 was taken already (note_hold). */
static pl_err_t claim_ranked(fleet_t *fleet, conn_t *c, const fleet_candidate_t *cands, size_t n,
                             const char *delivery_id, fleet_point_t pickup, double reach_m,
                             int64_t now_ms, bool first, unsigned *slot, claim_t *claim)
{
	size_t *order = pl_malloc((n ? n : 1) * sizeof *order);
	size_t ranked = fleet_rank(cands, n, pickup, order);
	pl_err_t err = PL_ERR_NOT_FOUND;
	for (size_t i = 0; i < ranked && err == PL_ERR_NOT_FOUND; i++) {
		const fleet_candidate_t *cand = &cands[order[i]];
		char key[FLEET_ID_MAX + 24];
		bson_error_t error;
		if (!(fleet_route_m(cand->position, pickup, pickup) <= reach_m))
			break; /* nearest first: every drone after this one is out of reach too */
		if (!cache_take(fleet, cand->drone_id))
			continue; /* another thread of this process is claiming it */
		claim_key(cand->drone_id, cand->gen, key, sizeof key);
		err = note_hold(c, delivery_id, key, slot, first);
		if (err != PL_OK) {
			cache_put(fleet, cand);
			break;
		}
		bson_t *doc =
		    BCON_NEW("_id", BCON_UTF8(key), "droneId", BCON_UTF8(cand->drone_id), "gen",
		             BCON_INT64(cand->gen), "deliveryId", BCON_UTF8(delivery_id), "state",
		             "held", "lat", BCON_DOUBLE(cand->position.lat), "lon",
		             BCON_DOUBLE(cand->position.lon), "claimedAt", BCON_DATE_TIME(now_ms));
		err = PL_ERR_NOT_FOUND;
		if (mongoc_collection_insert_one(c->claims, doc, NULL, NULL, &error)) {
			snprintf(claim->drone_id, sizeof claim->drone_id, "%s", cand->drone_id);
			claim->gen = cand->gen;
			claim->position = cand->position;
			claim->claimed_at_ms = now_ms;
			err = PL_OK;
		} else if (!pl_mongo_is_duplicate_key(&error)) {
			err = mongo_fail("insert claim", &error);
		} else {
			/* another delivery won this generation of the drone; try the next one */
		}
		bson_destroy(doc);
	}
	pl_free(order);
	return err;
}

/* Claims the nearest available drone for delivery_id within reach_m of the pickup: from the
 * cache, then once more from a fresh read of the store before answering "no drone available".
 * first: see claim_ranked. */
static pl_err_t claim_nearest(fleet_t *fleet, conn_t *c, const char *delivery_id,
                              fleet_point_t pickup, double reach_m, int64_t now_ms, bool first,
                              unsigned *slot, claim_t *claim)
{
	pl_err_t err = PL_ERR_NOT_FOUND;
	for (int pass = 0; pass < 2 && err == PL_ERR_NOT_FOUND; pass++) {
		fleet_candidate_t *cands = NULL;
		size_t n = 0;
		err = cached_candidates(fleet, c, pass == 1, &cands, &n);
		if (err == PL_OK)
			err = claim_ranked(fleet, c, cands, n, delivery_id, pickup, reach_m, now_ms,
			                   first, slot, claim);
		pl_free(cands);
	}
	return err;
}

/* ---- assign / release / read ------------------------------------------------------------ */

static void append_point(bson_t *doc, const char *key, fleet_point_t p)
{
	bson_t sub;
	bson_append_document_begin(doc, key, -1, &sub);
	BSON_APPEND_DOUBLE(&sub, "lat", p.lat);
	BSON_APPEND_DOUBLE(&sub, "lon", p.lon);
	bson_append_document_end(doc, &sub);
}

/* Inserts the assignment of delivery_id (I4: the insert of _id = deliveryId is the one atomic
 * decision; FerretDB's conditional updates are not). claim NULL writes the "released without a
 * drone" record. PL_OK when inserted (*a = what was stored), PL_ERR_NOT_FOUND when one exists
 * already (read it). */
static pl_err_t insert_assignment(conn_t *c, const char *delivery_id, const char *owner_id,
                                  const claim_t *claim, unsigned hold_slots, fleet_point_t pickup,
                                  fleet_point_t dropoff, const char *reason, int64_t now_ms,
                                  fleet_assignment_t *a)
{
	bson_error_t error;
	pl_err_t err = PL_OK;
	bson_t *doc = BCON_NEW("_id", BCON_UTF8(delivery_id));
	if (owner_id)
		BSON_APPEND_UTF8(doc, "ownerId", owner_id);
	BSON_APPEND_UTF8(doc, "status", claim ? "assigned" : "released");
	if (claim) {
		BSON_APPEND_UTF8(doc, "droneId", claim->drone_id);
		BSON_APPEND_INT64(doc, "droneGen", claim->gen);
		append_point(doc, "position", claim->position);
		append_point(doc, "pickup", pickup);
		append_point(doc, "dropoff", dropoff);
		BSON_APPEND_DATE_TIME(doc, "assignedAt", claim->claimed_at_ms);
		BSON_APPEND_DOUBLE(doc, "routeMeters",
		                   fleet_route_m(claim->position, pickup, dropoff));
		BSON_APPEND_INT64(doc, "holdSlots", hold_slots);
	} else {
		BSON_APPEND_NULL(doc, "droneId");
		BSON_APPEND_DATE_TIME(doc, "releasedAt", now_ms);
		BSON_APPEND_UTF8(doc, "releaseReason", reason);
		BSON_APPEND_DOUBLE(doc, "traveledMeters", 0.0);
	}
	BSON_APPEND_DATE_TIME(doc, "createdAt", now_ms);
	if (mongoc_collection_insert_one(c->assignments, doc, NULL, NULL, &error))
		assignment_from_bson(doc, a);
	else
		err = pl_mongo_is_duplicate_key(&error) ? PL_ERR_NOT_FOUND
		                                        : mongo_fail("insert assignment", &error);
	bson_destroy(doc);
	return err;
}

/* The stored assignment, which must exist (a vanished one is a server fault: retry). */
static pl_err_t reread(conn_t *c, const char *delivery_id, fleet_assignment_t *a)
{
	pl_err_t err = read_assignment(c, delivery_id, a);
	if (err == PL_ERR_NOT_FOUND) {
		set_errmsg("assignment %s vanished", delivery_id);
		err = PL_ERR_TRANSIENT;
	}
	return err;
}

pl_err_t fleet_assign(fleet_t *fleet, const char *delivery_id, const char *owner_id,
                      fleet_point_t pickup, fleet_point_t dropoff, int64_t now_ms,
                      fleet_assignment_t *out)
{
	return fleet_assign_within(fleet, delivery_id, owner_id, pickup, dropoff, INFINITY, now_ms,
	                           out);
}

pl_err_t fleet_assign_within(fleet_t *fleet, const char *delivery_id, const char *owner_id,
                             fleet_point_t pickup, fleet_point_t dropoff, double reach_m,
                             int64_t now_ms, fleet_assignment_t *out)
{
	fleet_assignment_t a;
	claim_t held[HELD_MAX], claim;
	size_t n_held = 0;
	unsigned slots = 0;
	pl_err_t err;
	conn_t c;

	if (!str_ok(delivery_id, FLEET_STR_MAX) || !str_ok(owner_id, FLEET_STR_MAX) ||
	    !fleet_point_valid(pickup) || !fleet_point_valid(dropoff)) {
		set_errmsg("invalid deliveryId, ownerId, pickup or dropoff");
		return PL_ERR_INVALID;
	}
	c = conn_open(fleet);
	/* Fast path: the first attempt for a delivery notes its first claim in holds slot 0, so a
	 * slot 0 that is free proves there was no attempt before (no assignment with a drone, no
	 * claim left by a crash). A taken slot 0, or no drone at hand, takes the careful path. */
	err = claim_nearest(fleet, &c, delivery_id, pickup, reach_m, now_ms, true, &slots, &claim);
	if (err == PL_ERR_REJECTED || err == PL_ERR_NOT_FOUND) {
		err = read_assignment(&c, delivery_id, &a);
		if (err ==
		    PL_OK) /* I4: the same drone forever; released without a drone stays so */
			goto done;
		if (err != PL_ERR_NOT_FOUND)
			goto out;
		/* I3: a claim left by a crash */
		err = held_claims(&c, delivery_id, 0, held, &n_held, &slots);
		if (err == PL_OK && n_held)
			claim = held[0];
		else if (err == PL_OK)
			err = claim_nearest(fleet, &c, delivery_id, pickup, reach_m, now_ms, false,
			                    &slots, &claim);
	}
	if (err != PL_OK)
		goto out;
	err = update_by_id(
	    c.drones, claim.drone_id,
	    BCON_NEW("$set", "{", "status", "assigned", "deliveryId", BCON_UTF8(delivery_id), "}"));
	if (err == PL_OK)
		err = insert_assignment(&c, delivery_id, owner_id, &claim, slots, pickup, dropoff,
		                        NULL, now_ms, &a);
	if (err == PL_ERR_NOT_FOUND) /* another writer decided */
		err = reread(&c, delivery_id, &a);
	if (err != PL_OK)
		goto out;
	if (strcmp(a.drone_id, claim.drone_id) != 0 || a.drone_gen != claim.gen) {
		err = release_claim(&c, &claim, NULL, now_ms); /* not the one kept */
		if (err != PL_OK)
			goto out;
		cache_return(fleet, &claim, claim.position);
	}
done:
	err = a.drone_id[0] ? PL_OK : PL_ERR_NOT_FOUND;
	if (out)
		*out = a;
out:
	conn_close(fleet, &c);
	return err;
}

/* The first release of an assigned delivery wins: releases/<deliveryId> is inserted once (I5);
 * a later or concurrent release reads the winner's reason and time. *first = this call won. */
static pl_err_t decide_release(conn_t *c, const char *delivery_id, char *reason, size_t reason_size,
                               int64_t *at_ms, bool *first)
{
	bson_error_t error;
	bson_t doc;
	pl_err_t err = PL_OK;
	bson_t *ins = BCON_NEW("_id", BCON_UTF8(delivery_id), "reason", BCON_UTF8(reason),
	                       "releasedAt", BCON_DATE_TIME(*at_ms));
	*first = mongoc_collection_insert_one(c->releases, ins, NULL, NULL, &error);
	if (!*first) {
		if (!pl_mongo_is_duplicate_key(&error)) {
			err = mongo_fail("insert release", &error);
		} else {
			err = find_by_id(c->releases, delivery_id, &doc);
			if (err == PL_ERR_NOT_FOUND) {
				set_errmsg("release of %s vanished", delivery_id);
				err = PL_ERR_TRANSIENT;
			}
			if (err == PL_OK) {
				get_str(&doc, "reason", reason, reason_size);
				*at_ms = get_i64(&doc, "releasedAt");
				bson_destroy(&doc);
			}
		}
	}
	bson_destroy(ins);
	return err;
}

pl_err_t fleet_release(fleet_t *fleet, const char *delivery_id, const char *reason, int64_t now_ms,
                       fleet_assignment_t *out)
{
	fleet_assignment_t a;
	fleet_point_t none = {NAN, NAN};
	claim_t held[HELD_MAX];
	size_t n_held = 0;
	unsigned slots = 0;
	pl_err_t err;
	conn_t c;

	if (!str_ok(delivery_id, FLEET_STR_MAX) || !str_ok(reason, FLEET_REASON_MAX - 1)) {
		set_errmsg("invalid deliveryId or reason");
		return PL_ERR_INVALID;
	}
	c = conn_open(fleet);
	/* 1. The assignment is ended first, so an AssignDrone racing this release cannot finish
	 *    after it: with no assignment yet, the "released without a drone" record takes _id. */
	err = read_assignment(&c, delivery_id, &a);
	if (err == PL_ERR_NOT_FOUND) {
		err = insert_assignment(&c, delivery_id, NULL, NULL, 0, none, none, reason, now_ms,
		                        &a);
		if (err == PL_ERR_NOT_FOUND)
			err = reread(&c, delivery_id, &a);
	}
	if (err != PL_OK)
		goto out;
	bool first = false;
	if (strcmp(a.status, "assigned") == 0) {
		char won[FLEET_REASON_MAX];
		int64_t at = now_ms;
		snprintf(won, sizeof won, "%s", reason);
		err = decide_release(&c, delivery_id, won, sizeof won, &at, &first);
		if (err != PL_OK)
			goto out;
		bool done = strcmp(won, "completed") == 0;
		double traveled = done ? a.route_m : 0.0;
		err = update_by_id(c.assignments, delivery_id,
		                   BCON_NEW("$set", "{", "status", done ? "completed" : "released",
		                            "releasedAt", BCON_DATE_TIME(at), "releaseReason",
		                            BCON_UTF8(won), "traveledMeters", BCON_DOUBLE(traveled),
		                            "}"));
		if (err != PL_OK)
			goto out;
		snprintf(a.status, sizeof a.status, "%s", done ? "completed" : "released");
		snprintf(a.release_reason, sizeof a.release_reason, "%s", won);
		a.released_at_ms = at;
		a.traveled_m = traveled;
	}
	bool completed = strcmp(a.status, "completed") == 0;
	/* 2. Every claim held for the delivery: the recorded drone (to the dropoff when completed)
	 *    and any crash leftover (I3). The first release of an assignment made with one holds
	 *    slot knows slot 0 is the recorded claim, still held (only this release frees it), so
	 *    only the slots after it are read. */
	unsigned from = 0;
	if (first && a.hold_slots == 1 && a.drone_id[0]) {
		claim_t *cl = &held[n_held++];
		snprintf(cl->drone_id, sizeof cl->drone_id, "%s", a.drone_id);
		cl->gen = a.drone_gen;
		cl->position = a.position;
		cl->claimed_at_ms = a.assigned_at_ms;
		from = 1;
	}
	err = held_claims(&c, delivery_id, from, held, &n_held, &slots);
	for (size_t i = 0; err == PL_OK && i < n_held; i++) {
		bool recorded =
		    strcmp(held[i].drone_id, a.drone_id) == 0 && held[i].gen == a.drone_gen;
		const fleet_point_t *to = recorded && completed ? &a.dropoff : NULL;
		err = release_claim(&c, &held[i], to, now_ms);
		if (err == PL_OK)
			cache_return(fleet, &held[i], to ? *to : held[i].position);
	}
	if (err == PL_OK && out)
		*out = a;
out:
	conn_close(fleet, &c);
	return err;
}

pl_err_t fleet_get_assignment(fleet_t *fleet, const char *delivery_id, fleet_assignment_t *out)
{
	fleet_assignment_t a;
	pl_err_t err;
	conn_t c;
	if (!str_ok(delivery_id, FLEET_STR_MAX)) {
		set_errmsg("invalid deliveryId");
		return PL_ERR_INVALID;
	}
	c = conn_open(fleet);
	err = read_assignment(&c, delivery_id, &a);
	conn_close(fleet, &c);
	if (err == PL_OK && !a.drone_id[0])
		err = PL_ERR_NOT_FOUND;
	if (err == PL_OK)
		*out = a;
	return err;
}

pl_err_t fleet_owner_in_flight(fleet_t *fleet, const char *owner_id, size_t *n)
{
	bson_error_t error;
	*n = 0;
	if (!str_ok(owner_id, FLEET_STR_MAX)) {
		set_errmsg("invalid ownerId");
		return PL_ERR_INVALID;
	}
	bson_t *filter = BCON_NEW("ownerId", BCON_UTF8(owner_id), "status", "assigned");
	conn_t c = conn_open(fleet);
	int64_t count =
	    mongoc_collection_count_documents(c.assignments, filter, NULL, NULL, NULL, &error);
	pl_err_t err = count < 0 ? mongo_fail("count assignments in flight", &error) : PL_OK;
	if (err == PL_OK)
		*n = (size_t)count;
	bson_destroy(filter);
	conn_close(fleet, &c);
	return err;
}

pl_err_t fleet_delivery_started(fleet_t *fleet, const char *delivery_id, bool *started)
{
	fleet_assignment_t a;
	claim_t held[HELD_MAX];
	size_t n_held = 0;
	unsigned slots = 0;
	*started = false;
	if (!str_ok(delivery_id, FLEET_STR_MAX)) {
		set_errmsg("invalid deliveryId");
		return PL_ERR_INVALID;
	}
	conn_t c = conn_open(fleet);
	pl_err_t err = read_assignment(&c, delivery_id, &a);
	if (err == PL_OK) {
		*started = true;
	} else if (err == PL_ERR_NOT_FOUND) {
		err = held_claims(&c, delivery_id, 0, held, &n_held, &slots);
		*started = err == PL_OK && n_held > 0;
	}
	conn_close(fleet, &c);
	return err;
}

pl_err_t fleet_utilization(fleet_t *fleet, const char *owner_id, int year, int month,
                           int64_t now_ms, fleet_utilization_t *out)
{
	bson_error_t error;
	const bson_t *doc;
	int64_t start, end;
	pl_err_t err = PL_OK;
	conn_t c;

	memset(out, 0, sizeof *out);
	if (!str_ok(owner_id, FLEET_STR_MAX) || !fleet_month_window(year, month, &start, &end)) {
		set_errmsg("invalid ownerId, year or month");
		return PL_ERR_INVALID;
	}
	/* Summed here, not in a $group: FerretDB 1.x has no $subtract inside $group. */
	bson_t *filter = BCON_NEW("ownerId", BCON_UTF8(owner_id), "assignedAt", "{", "$gte",
	                          BCON_DATE_TIME(start), "$lt", BCON_DATE_TIME(end), "}");
	c = conn_open(fleet);
	mongoc_cursor_t *cursor =
	    mongoc_collection_find_with_opts(c.assignments, filter, NULL, NULL);
	while (mongoc_cursor_next(cursor, &doc)) {
		fleet_assignment_t a;
		double miles, hours;
		assignment_from_bson(doc, &a);
		if (!fleet_assignment_usage(&a, now_ms, &miles, &hours))
			continue;
		out->traveled_miles += miles;
		out->assigned_hours += hours;
		out->assignments++;
	}
	if (mongoc_cursor_error(cursor, &error))
		err = mongo_fail("find assignments", &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	conn_close(fleet, &c);
	if (err == PL_OK && out->assignments == 0) {
		set_errmsg("no assignments of %s in %04d-%02d", owner_id, year, month);
		err = PL_ERR_NOT_FOUND;
	}
	if (err != PL_OK)
		memset(out, 0, sizeof *out);
	return err;
}
