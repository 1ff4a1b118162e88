/* store.c — the package store of dronepipe-package over mongoc (see store.h for the document
 * shape and the conflict rule). Owns the mongoc client pool of the service; this file and the
 * scheduler's fleet.c are the only places that include mongoc. mongoc and bson errors are
 * translated to pl_err_t here: a duplicate key is a normal answer of the insert, every other
 * server or connection failure is PL_ERR_TRANSIENT (the stage loop retries; a package command is
 * never dead-lettered because the database is down).
 *
 * Why insert and then compare: an insert of a unique _id is atomic in every MongoDB-API server
 * (FerretDB's SQLite back end included: _id is its primary key), so two concurrent commands for
 * one packageId store exactly one document; the loser gets a duplicate key, reads the stored one
 * and compares. Nothing ever overwrites a stored package. (An upsert with $setOnInsert decides
 * the same way, but FerretDB runs it as a find plus an insert in a transaction: twice the
 * work of the insert, for the common case of a new package.) */
#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "mongo.h"
#include "probe.h"
#include "store.h"
#include "timefmt.h"

#define COLL       "packages"
#define ERRMSG_MAX 256

/* Invariant: pool and uri are non-NULL for the life of the store; db_name is non-empty. */
struct package_store {
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	char *db_name;
	pl_probe_t *probe; /* what the calls recorded, for readiness */
};

static _Thread_local char last_errmsg[ERRMSG_MAX];
static _Thread_local bool call_failed; /* a server round trip of this thread's call failed */

static const char *const size_names[PACKAGE_SIZE__COUNT] = {"Small", "Medium", "Large"};

const char *package_size_name(package_size_t size)
{
	return (unsigned)size < PACKAGE_SIZE__COUNT ? size_names[size] : NULL;
}

int package_size_parse(const char *name)
{
	for (int i = 0; name && i < PACKAGE_SIZE__COUNT; i++)
		if (strcmp(name, size_names[i]) == 0)
			return i;
	return -1;
}

const char *package_store_errmsg(void)
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

static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
{
	va_list ap;
	if (!reason || reason_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, reason_size, fmt, ap);
	va_end(ap);
}

/* ---- mongoc glue ------------------------------------------------------------------------- */

/* Every failure of a server round trip: keep the detail for package_store_errmsg. */
static pl_err_t mongo_fail(const char *op, const bson_error_t *error)
{
	set_errmsg("%s: %s (domain %u, code %u)", op, error->message, error->domain, error->code);
	call_failed = true;
	return PL_ERR_TRANSIENT;
}

static void probe_ping(void *store)
{
	package_store_ping(store); /* notes its outcome */
}

package_store_t *package_store_new(const char *uri_text, const char *db_name, int timeout_ms,
                                   int connect_timeout_ms, char *errstr, size_t errstr_size)
{
	package_store_t *store = NULL;
	mongoc_uri_t *uri = NULL;
	mongoc_client_pool_t *pool =
	    pl_mongo_pool_new(uri_text, db_name, "dronepipe-package", timeout_ms,
	                      connect_timeout_ms, &uri, errstr, errstr_size);
	if (!pool)
		return NULL;
	store = pl_calloc(1, sizeof *store);
	store->uri = uri;
	store->pool = pool;
	store->db_name = pl_strdup(db_name);
	int socket_ms = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
	store->probe = pl_probe_new("FerretDB/MongoDB", 1000, 2000 + 2 * (int64_t)socket_ms);
	pl_probe_start(store->probe, probe_ping, store);
	return store;
}

void package_store_destroy(package_store_t *store)
{
	if (!store)
		return;
	pl_probe_destroy(store->probe); /* joins the ping thread */
	mongoc_client_pool_destroy(store->pool);
	mongoc_uri_destroy(store->uri);
	pl_free(store->db_name);
	pl_free(store);
}

/* One pooled client and the packages collection, for the duration of one call. */
typedef struct conn {
	mongoc_client_t *client;
	mongoc_collection_t *coll;
} conn_t;

static conn_t conn_open(package_store_t *store)
{
	conn_t conn;
	call_failed = false;
	conn.client = mongoc_client_pool_pop(store->pool);
	conn.coll = mongoc_client_get_collection(conn.client, store->db_name, COLL);
	return conn;
}

static void conn_close(package_store_t *store, conn_t *conn)
{
	mongoc_collection_destroy(conn->coll);
	mongoc_client_pool_push(store->pool, conn->client);
	pl_probe_note(store->probe, PL_PROBE_CALLS, !call_failed, last_errmsg);
}

pl_err_t package_store_ping(package_store_t *store)
{
	bson_error_t error;
	pl_err_t e = pl_mongo_ping(store->pool, &error) ? PL_OK : mongo_fail("ping", &error);
	pl_probe_note(store->probe, PL_PROBE_CALLS, e == PL_OK, last_errmsg);
	return e;
}

bool package_store_ready(package_store_t *store, char *reason, size_t reason_size)
{
	return pl_probe_ready(store->probe, reason, reason_size);
}

pl_err_t package_store_ensure_indexes(package_store_t *store)
{
	bson_error_t error;
	pl_err_t err = PL_OK;
	conn_t conn = conn_open(store);
	bson_t *cmd = BCON_NEW("createIndexes", COLL, "indexes", "[", "{", "key", "{", "ownerId",
	                       BCON_INT32(1), "createdAt", BCON_INT32(1), "}", "name",
	                       "ownerId_createdAt", "}", "]");
	if (!mongoc_collection_write_command_with_opts(conn.coll, cmd, NULL, NULL, &error))
		err = mongo_fail("createIndexes", &error);
	bson_destroy(cmd);
	conn_close(store, &conn);
	return err;
}

/* ---- documents --------------------------------------------------------------------------- */

static bool str_ok(const char *s, bool allow_empty)
{
	size_t len;
	if (!s)
		return false;
	len = strlen(s);
	if ((!allow_empty && len == 0) || len > PACKAGE_STR_MAX)
		return false;
	return bson_utf8_validate(s, len, false);
}

static pl_err_t validate(const package_t *pkg, char *reason, size_t reason_size)
{
	if (!str_ok(pkg->package_id, false)) {
		set_reason(reason, reason_size, "packageId must be 1..%d bytes of UTF-8",
		           PACKAGE_STR_MAX);
		return PL_ERR_INVALID;
	}
	if (!str_ok(pkg->owner_id, false)) {
		set_reason(reason, reason_size, "ownerId must be 1..%d bytes of UTF-8",
		           PACKAGE_STR_MAX);
		return PL_ERR_INVALID;
	}
	if (!str_ok(pkg->delivery_id, true) || (pkg->has_tag && !str_ok(pkg->tag, true))) {
		set_reason(reason, reason_size, "deliveryId and tag must be UTF-8 up to %d bytes",
		           PACKAGE_STR_MAX);
		return PL_ERR_INVALID;
	}
	if (!package_size_name(pkg->size)) {
		set_reason(reason, reason_size, "size %d is not Small, Medium or Large",
		           (int)pkg->size);
		return PL_ERR_INVALID;
	}
	if (!isfinite(pkg->weight) || pkg->weight < 0) {
		set_reason(reason, reason_size, "weight must be a finite number >= 0");
		return PL_ERR_INVALID;
	}
	return PL_OK;
}

/* Copies the string field key of doc into dst (size PACKAGE_STR_MAX + 1); "" when absent or
 * not a string. */
static void get_str(const bson_t *doc, const char *key, char *dst, bool *present)
{
	bson_iter_t it;
	uint32_t len = 0;
	const char *s;
	dst[0] = '\0';
	if (present)
		*present = false;
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
		return;
	s = bson_iter_utf8(&it, &len);
	if (len > PACKAGE_STR_MAX)
		len = PACKAGE_STR_MAX;
	memcpy(dst, s, len);
	dst[len] = '\0';
	if (present)
		*present = true;
}

static void from_bson(const bson_t *doc, package_t *out)
{
	bson_iter_t it;
	char size_name[PACKAGE_STR_MAX + 1];
	int size;

	memset(out, 0, sizeof *out);
	get_str(doc, "_id", out->package_id, NULL);
	get_str(doc, "ownerId", out->owner_id, NULL);
	get_str(doc, "deliveryId", out->delivery_id, NULL);
	get_str(doc, "tag", out->tag, &out->has_tag);
	get_str(doc, "size", size_name, NULL);
	size = package_size_parse(size_name);
	out->size = size < 0 ? PACKAGE_SIZE_SMALL : (package_size_t)size;
	if (bson_iter_init_find(&it, doc, "weight") && BSON_ITER_HOLDS_NUMBER(&it))
		out->weight = bson_iter_as_double(&it);
	if (bson_iter_init_find(&it, doc, "createdAt") && BSON_ITER_HOLDS_DATE_TIME(&it))
		out->created_at_ms = bson_iter_date_time(&it);
}

/* Names the first attribute of `stored` that differs from `want` in reason; false when equal. */
static bool differs(const package_t *stored, const package_t *want, char *reason,
                    size_t reason_size)
{
	const char *id = stored->package_id;
	if (strcmp(stored->owner_id, want->owner_id) != 0) {
		set_reason(reason, reason_size,
		           "package %s already exists for another owner (ownerId '%s', got '%s')",
		           id, stored->owner_id, want->owner_id);
		return true;
	}
	if (stored->has_tag != want->has_tag ||
	    (stored->has_tag && strcmp(stored->tag, want->tag) != 0)) {
		set_reason(reason, reason_size,
		           "package %s already exists with tag %s%s%s (got %s%s%s)", id,
		           stored->has_tag ? "'" : "", stored->has_tag ? stored->tag : "none",
		           stored->has_tag ? "'" : "", want->has_tag ? "'" : "",
		           want->has_tag ? want->tag : "none", want->has_tag ? "'" : "");
		return true;
	}
	if (stored->size != want->size) {
		set_reason(reason, reason_size, "package %s already exists with size %s (got %s)",
		           id, package_size_name(stored->size), package_size_name(want->size));
		return true;
	}
	if (stored->weight != want->weight) {
		set_reason(reason, reason_size, "package %s already exists with weight %g (got %g)",
		           id, stored->weight, want->weight);
		return true;
	}
	return false;
}

/* Reads _id == package_id with conn: PL_OK, PL_ERR_NOT_FOUND or PL_ERR_TRANSIENT. */
static pl_err_t read_one(conn_t *conn, const char *package_id, package_t *out)
{
	bson_error_t error;
	const bson_t *doc;
	pl_err_t err = PL_ERR_NOT_FOUND;
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(package_id));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(conn->coll, filter, opts, NULL);

	if (mongoc_cursor_next(cursor, &doc)) {
		from_bson(doc, out);
		err = PL_OK;
	} else if (mongoc_cursor_error(cursor, &error)) {
		err = mongo_fail("find package", &error);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

/* The document of pkg, _id = packageId. */
static bson_t *package_doc(const package_t *pkg)
{
	bson_t *doc = bson_new();
	BSON_APPEND_UTF8(doc, "_id", pkg->package_id);
	BSON_APPEND_UTF8(doc, "ownerId", pkg->owner_id);
	BSON_APPEND_UTF8(doc, "deliveryId", pkg->delivery_id);
	BSON_APPEND_UTF8(doc, "size", package_size_name(pkg->size));
	BSON_APPEND_DOUBLE(doc, "weight", pkg->weight);
	if (pkg->has_tag)
		BSON_APPEND_UTF8(doc, "tag", pkg->tag);
	else
		BSON_APPEND_NULL(doc, "tag");
	BSON_APPEND_DATE_TIME(doc, "createdAt", pkg->created_at_ms);
	return doc;
}

pl_err_t package_store_upsert(package_store_t *store, const package_t *pkg, package_t *stored,
                              char *reason, size_t reason_size)
{
	bson_error_t error;
	package_t existing;
	pl_err_t err;
	conn_t conn;

	set_reason(reason, reason_size, "%s", "");
	err = validate(pkg, reason, reason_size);
	if (err != PL_OK)
		return err;

	conn = conn_open(store);
	bson_t *doc = package_doc(pkg);
	bool inserted = mongoc_collection_insert_one(conn.coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	if (inserted) { /* what is stored is pkg */
		if (stored)
			*stored = *pkg;
		goto out;
	}
	if (!pl_mongo_is_duplicate_key(&error)) {
		err = mongo_fail("insert package", &error);
		goto out;
	}
	/* Stored before (a repeat, or a concurrent command that inserted first): compare. */
	err = read_one(&conn, pkg->package_id, &existing);
	if (err == PL_ERR_NOT_FOUND) {
		set_errmsg("package %s vanished after a duplicate key", pkg->package_id);
		err = PL_ERR_TRANSIENT;
	}
	if (err != PL_OK)
		goto out;
	if (stored)
		*stored = existing;
	if (differs(&existing, pkg, reason, reason_size))
		err = PL_ERR_REJECTED;
out:
	conn_close(store, &conn);
	return err;
}

pl_err_t package_store_get(package_store_t *store, const char *package_id, package_t *out)
{
	pl_err_t err;
	conn_t conn;
	if (!str_ok(package_id, false)) {
		set_errmsg("invalid packageId");
		return PL_ERR_INVALID;
	}
	conn = conn_open(store);
	err = read_one(&conn, package_id, out);
	conn_close(store, &conn);
	return err;
}

/* [start, end) of the UTC calendar month in epoch ms. false when out of range. */
static bool month_window(int year, int month, int64_t *start, int64_t *end)
{
	char text[40];
	if (year < 1 || year > 9999 || month < 1 || month > 12)
		return false;
	snprintf(text, sizeof text, "%04d-%02d-01T00:00:00Z", year, month);
	if (pl_time_parse(text, start) != PL_OK)
		return false;
	if (year == 9999 && month == 12) {
		*end = PL_TIME_MAX_MS + 1;
		return true;
	}
	snprintf(text, sizeof text, "%04d-%02d-01T00:00:00Z", month == 12 ? year + 1 : year,
	         month == 12 ? 1 : month + 1);
	return pl_time_parse(text, end) == PL_OK;
}

pl_err_t package_store_total_weight(package_store_t *store, const char *owner_id, int year,
                                    int month, double *total)
{
	bson_error_t error;
	const bson_t *doc;
	bson_iter_t it;
	int64_t start, end;
	pl_err_t err = PL_OK;
	conn_t conn;
	bson_t *pipeline;
	mongoc_cursor_t *cursor;

	*total = 0;
	if (!str_ok(owner_id, false) || !month_window(year, month, &start, &end)) {
		set_errmsg("invalid ownerId, year or month");
		return PL_ERR_INVALID;
	}
	/* $match + $group/$sum run in the server (FerretDB 1.x supports both; it does not support
	 * $sum of a constant, so no document count is asked for here). */
	pipeline = BCON_NEW("pipeline", "[", "{", "$match", "{", "ownerId", BCON_UTF8(owner_id),
	                    "createdAt", "{", "$gte", BCON_DATE_TIME(start), "$lt",
	                    BCON_DATE_TIME(end), "}", "}", "}", "{", "$group", "{", "_id",
	                    BCON_NULL, "totalWeight", "{", "$sum", "$weight", "}", "}", "}", "]");
	conn = conn_open(store);
	cursor = mongoc_collection_aggregate(conn.coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
	while (mongoc_cursor_next(cursor, &doc))
		if (bson_iter_init_find(&it, doc, "totalWeight") && BSON_ITER_HOLDS_NUMBER(&it))
			*total += bson_iter_as_double(&it);
	if (mongoc_cursor_error(cursor, &error)) {
		*total = 0;
		err = mongo_fail("sum package weights", &error);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(pipeline);
	conn_close(store, &conn);
	return err;
}
